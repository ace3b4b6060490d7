"""Label text: how a candidate label and a text become the strings the encoder sees.

With every option off (the default) the encoder sees the label and the text exactly as given.  Three
options, each a field of ``gliznet.modeling.model.GliZNetConfig`` (saved with a model, so ``gliznet predict`` /
``gliznet evaluate`` of a saved model render the same way with no extra flags), and each also accepted
by the embedding baseline (``gliznet.evaluation.baselines.make_baseline``) so both can be measured on and off:

* ``label_descriptions`` - a JSONL of ``{"label": ..., "description": ...}`` lines (``gliznet
  describe-labels`` writes one; ``data/label_descriptions.jsonl``, ``SHIPPED_DESCRIPTIONS``, holds
  hand-written ones for the shared eval sets; the value ``"shipped"`` names it).  A described label is
  shown as ``"label: description"``; a label without a description stays bare.
* ``label_template`` - a hypothesis around the (described) label, e.g. ``"This text is about {label}."``.
* ``text_template`` - the same for the text, e.g. ``"Text: {text}"``.

Read in order:

    check_template(template, field)          one clear error for a template without its placeholder
    load_descriptions(path)                  {label: description} from a descriptions JSONL
    render_label(label, template, descr.)    description first, then the template
    render_text(text, template)
    LabelText                                the three options, resolved once; .labels() / .texts()

A description is found by the exact label, else by a loose key (case-folded, ``_``/``-`` read as
spaces), so ``Sci/Tech``'s description also serves ``sci/tech`` and ``money-fx``'s ``money fx``.  Later
lines of a file override earlier ones (append a line to correct a description).

A saved model carries its descriptions: ``GliZNet.save_pretrained`` copies the file into the model folder
as ``DESCRIPTIONS_NAME`` and saves that name, and a relative path in a saved config is read from the
model folder (``LabelText.from_config(config, base_dir)``).
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Mapping

from gliznet.errors import UserError
from gliznet._io import atomic_write_bytes, read_jsonl
from gliznet.records import label_key as loose_key  # the one label normaliser: the descriptions' fallback key

SHIPPED_DESCRIPTIONS: Traversable = resources.files("gliznet.data") / "label_descriptions.jsonl"
SHIPPED = "shipped"  # the option value that names SHIPPED_DESCRIPTIONS
DESCRIPTIONS_NAME = "label_descriptions.jsonl"  # the copy inside a saved model folder
TEMPLATE_EXAMPLES = {"label": "This text is about {label}.", "text": "Text: {text}"}
# GliZNetConfig's defaults: bare labels.  The zero-shot-by-sets protocol (bench/sweep.py, bench/README.md
# "Zero-shot by sets") chose the wording on label sets it then did not report, and bare won for GliZNet; the shipped
# descriptions describe the eval sets' own labels, so they stay an option (`shipped`), never a default.
DEFAULT_LABEL_TEMPLATE: str | None = None
DEFAULT_LABEL_DESCRIPTIONS: str | None = None


# -- 1. templates -------------------------------------------------------------------------------------
def check_template(template: str | None, field_name: str) -> None:
    """``template`` must hold its one placeholder (``{label}`` for ``label_template``, ``{text}`` for
    ``text_template``) and no other; ``{{``/``}}`` write literal braces."""
    if template is None:
        return
    placeholder = "label" if field_name.startswith("label") else "text"
    option = "--" + field_name.replace("_", "-")
    example = TEMPLATE_EXAMPLES[placeholder]
    if not isinstance(template, str):
        raise UserError(f"{field_name} ({option}) must be a string like {example!r}, got {type(template).__name__}")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise UserError(f"{field_name}={template!r} ({option}) is not a valid template ({err}): "
                        f"write it like {example!r}, with {{{{ }}}} for literal braces") from None
    if fields.count(placeholder) < 1 or set(fields) != {placeholder}:
        others = sorted(set(fields) - {placeholder})
        extra = f" and only it (it also has {{{', '.join(others)}}})" if others else ""
        raise UserError(f"{field_name}={template!r} ({option}) must contain {{{placeholder}}}{extra}: "
                        f"write it like {example!r}")


# -- 2. descriptions ----------------------------------------------------------------------------------
def read_description_lines(path: str | Path | Traversable) -> list[dict]:
    """The JSON lines of a descriptions file (blank lines and the torn last line of an interrupted
    ``describe-labels`` run skipped; any other bad line is an error naming it)."""
    source = SHIPPED_DESCRIPTIONS if str(path) == SHIPPED else path
    source = source if hasattr(source, "read_text") else Path(source)
    if not source.is_file():
        raise UserError(f"label_descriptions {path} is not a file (--label-descriptions): pass a JSONL written "
                        f"by `gliznet describe-labels`, or {SHIPPED!r} for the shipped descriptions")
    lines = []
    for number, entry in read_jsonl(source, "--label-descriptions", torn_tail=True):
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str) \
                or not isinstance(entry.get("description"), str):
            raise UserError(f"--label-descriptions {path}:{number} is not a description line: each line needs "
                            'string "label" and "description" fields')
        lines.append(entry)
    return lines


def load_descriptions(path: str | Path | Traversable) -> dict[str, str]:
    """``{label: description}`` (exact labels, plus their ``loose_key`` where that is not itself a label)."""
    exact = {line["label"]: line["description"].strip() for line in read_description_lines(path)
             if line["description"].strip()}
    loose = {loose_key(label): text for label, text in exact.items()}
    return {**{k: v for k, v in loose.items() if k not in exact}, **exact}


def describe(label: str, descriptions: Mapping[str, str] | None) -> str | None:
    """The description of ``label``, or ``None``."""
    if not descriptions:
        return None
    return descriptions.get(label) or descriptions.get(loose_key(label))


# -- 3. rendering -------------------------------------------------------------------------------------
def _fill(template: str, placeholder: str, value: str) -> str:
    after = template.split("{" + placeholder + "}", 1)[-1]
    if value.endswith(".") and after.startswith("."):  # "about sport: News about sport." + "." -> one period
        value = value[:-1]
    return template.format(**{placeholder: value})


def render_label(label: str, template: str | None = None, descriptions: Mapping[str, str] | None = None) -> str:
    """``label``, or ``"label: description"`` when it has one; then the template applied, if any."""
    description = describe(label, descriptions)
    shown = f"{label}: {description}" if description else label
    return _fill(template, "label", shown) if template else shown


def render_text(text: str, template: str | None = None) -> str:
    """``text`` inside ``template`` (``{text}``), or unchanged."""
    return _fill(template, "text", text) if template else text


# -- 4. the options, resolved once ----------------------------------------------------------------------
@dataclass(frozen=True)
class LabelText:
    """The rendering a model or a baseline applies: ``labels(names)`` / ``texts(texts)`` give encoder strings.

    ``descriptions_source`` is the file the descriptions came from (``None`` without descriptions)."""

    label_template: str | None = None
    text_template: str | None = None
    descriptions: Mapping[str, str] = field(default_factory=dict)
    descriptions_source: Path | Traversable | None = None

    def __post_init__(self):
        check_template(self.label_template, "label_template")
        check_template(self.text_template, "text_template")

    @classmethod
    def from_options(cls, label_template: str | None = None, text_template: str | None = None,
                     label_descriptions: str | None = None, base_dir: str | Path | None = None) -> "LabelText":
        """Resolve the three options; a relative ``label_descriptions`` is read from ``base_dir`` when it is
        there (a saved model folder), else from the working directory; ``"shipped"`` is the packaged file."""
        source = None
        if label_descriptions:
            source = resolve_descriptions(label_descriptions, base_dir)
        return cls(label_template, text_template, load_descriptions(source) if source is not None else {}, source)

    @classmethod
    def from_config(cls, config, base_dir: str | Path | None = None) -> "LabelText":
        """From any object with ``label_template`` / ``text_template`` / ``label_descriptions`` (a ``GliZNetConfig``)."""
        return cls.from_options(getattr(config, "label_template", None), getattr(config, "text_template", None),
                                getattr(config, "label_descriptions", None), base_dir)

    @property
    def active(self) -> bool:
        """False when the encoder sees labels and texts as given (every option off)."""
        return bool(self.label_template or self.text_template or self.descriptions)

    @property
    def fingerprint(self) -> str | None:
        """A short hash of what this rendering does (``None`` when it does nothing): training data
        pre-tokenized with one rendering is checked against the model config's."""
        if not self.active:
            return None
        state = [self.label_template, self.text_template, sorted(self.descriptions.items())]
        return hashlib.sha256(json.dumps(state, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

    def label(self, name: str) -> str:
        return render_label(name, self.label_template, self.descriptions)

    def labels(self, names: list[str]) -> list[str]:
        return [self.label(name) for name in names] if self.active else list(names)

    def texts(self, texts: list[str]) -> list[str]:
        return [render_text(t, self.text_template) for t in texts] if self.text_template else list(texts)

    def apply(self, texts, labels):
        """``(texts, labels)`` as the encoder sees them, for one shared label list or one list per text.
        Unchanged when every option is off; malformed input (a string, an empty label) is passed through
        untouched so the scorer's own checks report it."""
        if not self.active or isinstance(texts, str) or isinstance(labels, str) or not labels:
            return texts, labels

        def one(names):
            return [self.label(n) if isinstance(n, str) and n.strip() else n for n in names]

        shown_texts = [render_text(t, self.text_template) if isinstance(t, str) and t.strip() and self.text_template
                       else t for t in texts]
        if all(isinstance(x, str) for x in labels):
            return shown_texts, one(labels)
        return shown_texts, [x if isinstance(x, str) else one(x) for x in labels]

    def names_back(self, results: list[dict], labels) -> list[dict]:
        """``predict`` results keyed by rendered labels -> keyed by the caller's label names again."""
        if not self.active:
            return results
        per_text = [labels] * len(results) if all(isinstance(x, str) for x in labels) else labels
        back = [dict(zip(self.labels(list(names)), names)) for names in per_text]
        return [{b[k]: v for k, v in r.items()} for r, b in zip(results, back)]


def resolve_descriptions(value: str, base_dir: str | Path | None = None) -> Path | Traversable:
    """Where the ``label_descriptions`` option points: the packaged file, a file in ``base_dir``, or a path."""
    if value == SHIPPED:
        return SHIPPED_DESCRIPTIONS
    path = Path(value)
    if not path.is_absolute() and base_dir is not None and (Path(base_dir) / path).is_file():
        return Path(base_dir) / path
    if not path.is_file():
        raise UserError(f"label_descriptions {value} is not a file (--label-descriptions): pass a JSONL written "
                        f"by `gliznet describe-labels`, or {SHIPPED!r} for the shipped descriptions")
    return path


def descriptions_option(value: str | None) -> str | None:
    """The CLI's ``--label-descriptions``: ``shipped`` as is, a path checked and made absolute (a model
    config or a bench run started elsewhere still finds it); ``none`` or empty -> ``None``."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    if value == SHIPPED:
        return SHIPPED
    return str(Path(resolve_descriptions(value)).resolve())


def save_descriptions(label_text: LabelText, directory: str | Path) -> str | None:
    """Copy the descriptions file into a model folder; returns the name to save in its config."""
    if label_text.descriptions_source is None:
        return None
    atomic_write_bytes(Path(directory) / DESCRIPTIONS_NAME, label_text.descriptions_source.read_bytes())
    return DESCRIPTIONS_NAME
