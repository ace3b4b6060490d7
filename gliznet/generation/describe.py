"""Label descriptions: ask an LLM for one sentence per label, cached in an append-only JSONL.

``gliznet describe-labels`` runs this.  Each label is one call (``provider.complete_json`` with the
schema ``{"description": str}`` and the prompt ``prompts/describe_label.j2`` + ``describe_system.j2``);
its other labels in the same set go into the prompt as context, so a code like ``bop`` among Reuters
topics can be spelled out.  Every answer is checked and appended the moment it arrives:

* accepted -> one line of the out file, ``{"label", "description", "source": "<provider>:<model>",
  "prompt_id", "prompt_hash", "set", "created_at", ...usage}``, the format ``gliznet.modeling.label_text`` reads;
* a failed call or a rejected answer -> one line of ``<out stem>.rejected.jsonl`` with its ``reason``
  (``REJECT_REASONS``), the detail and the raw answer, and a count in the report.

Lines are written by ``gliznet._io.Checkpoint``, as the generation loop writes calls (one write + flush +
fsync; a torn last line is dropped on load), so a killed run started again with the same ``--out`` skips
every label the file already describes and asks only the rest (failed and rejected labels are asked again).  A file may start
as a copy of ``data/label_descriptions.jsonl``: its ``"source": "hand"`` lines count as described.

    label_sets_from(source) -> {set: labels}       a .jsonl of {text, labels}, a folder of them, or a dataset folder
    check_description(label, raw, config)          raw answer -> (description, None) or (None, reason): JSON with
                                                   a non-empty "description" of min..max chars, not the label
                                                   again, not (nearly) the prompt's example
    ask(provider, prompt, label, context, config)  one call -> an accepted line or a rejected line
    DescriptionCache(out)                          the out file + the rejected file; load() -> {label: line}
    describe_labels(label_sets, provider, out)     the loop -> DescribeReport (counts that add up)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rapidfuzz import fuzz

from gliznet.errors import UserError
from gliznet._io import Checkpoint, read_jsonl
from gliznet.generation.plan import check_llm_options
from gliznet.generation.prompts import PromptTemplate, load_prompt
from gliznet.generation.window import call_pool, rolling_window
from gliznet.llm.provider import LLMCallError, LLMConfigError, LLMProvider

REJECT_REASONS = ("llm_call_failed", "not_json", "empty", "too_short", "too_long", "repeats_label",
                  "copies_example")
EXAMPLE = ("crude", "Crude oil: production, prices, reserves and trade of crude petroleum.")  # shown in the prompt


@dataclass
class DescribeConfig:
    """Parameters of a describe-labels run."""

    provider: str = "local"
    model: str | None = None
    concurrency: int = 4
    temperature: float = 0.2
    max_tokens: int = 160
    max_chars: int = 200  # an answer longer than this is rejected (too_long)
    min_chars: int = 12  # shorter is rejected (too_short)
    context_labels: int = 30  # other labels of the same set shown in the prompt
    prompt_id: str = "describe_label"

    def __post_init__(self):
        check_llm_options(self.provider, self.concurrency)
        if not 0 < self.min_chars < self.max_chars:
            raise UserError(f"min_chars={self.min_chars} / max_chars={self.max_chars}: need 0 < min_chars < max_chars")


# -- 1. which labels ------------------------------------------------------------------------------------
def _labels_of_jsonl(path: Path) -> list[str]:
    labels: dict[str, None] = {}
    for _, row in read_jsonl(path, "--labels-from"):
        for col in ("labels", "not_labels"):
            values = row.get(col) if isinstance(row, dict) else None
            for label in values if isinstance(values, list) else []:
                if isinstance(label, str) and label.strip():
                    labels.setdefault(label.strip())
    return list(labels)


def label_sets_from(source: str | Path) -> dict[str, list[str]]:
    """``{set name: labels}``: every label (and not-label) of a ``{text, labels}`` JSONL, of each JSONL in a
    folder (one set per file, e.g. ``../shared/eval``), or of both splits of a dataset folder's ``triplet/``."""
    path = Path(source)
    if path.is_file():
        sets = {path.stem: _labels_of_jsonl(path)}
    elif (path / "triplet").is_dir():
        from gliznet._io import load_triplets

        dataset = load_triplets(str(path))
        names: dict[str, None] = {}
        for split in ("train", "test"):
            for col in ("labels", "not_labels"):
                for labs in dataset[split][col]:
                    names.update(dict.fromkeys(labs))
        sets = {path.name: list(names)}
    elif path.is_dir():
        sets = {f.stem: _labels_of_jsonl(f) for f in sorted(path.glob("*.jsonl"))}
    else:
        raise UserError(f"--labels-from {source} does not exist: pass a .jsonl of {{text, labels}}, a folder of "
                        "them, or a dataset folder")
    sets = {name: labels for name, labels in sets.items() if labels}
    if not sets:
        raise UserError(f"--labels-from {source} holds no labels: pass a .jsonl of {{text, labels}} rows")
    return sets


# -- 2. one answer ----------------------------------------------------------------------------------------
def check_description(label: str, raw: str, config: DescribeConfig) -> tuple[str | None, str | None]:
    """``(description, None)`` for an acceptable answer, else ``(None, reason)``.  A leading ``"label:"``
    is dropped (the label is rendered in front of its description anyway)."""
    try:
        data = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        return None, "not_json"
    text = data.get("description") if isinstance(data, dict) else None
    if not isinstance(text, str):
        return None, "not_json"
    text = " ".join(text.split()).strip(" \"'")
    if text.casefold().startswith(label.casefold() + ":"):
        text = text[len(label) + 1:].strip()
    if not text:
        return None, "empty"
    if len(text) < config.min_chars:
        return None, "too_short"
    if len(text) > config.max_chars:
        return None, "too_long"
    if label != EXAMPLE[0] and fuzz.ratio(text.casefold(), EXAMPLE[1].casefold()) >= 85:  # small models echo it
        return None, "copies_example"
    label_words = set(re.findall(r"\w+", label.casefold()))
    if len([w for w in re.findall(r"\w+", text.casefold()) if w not in label_words]) < 2:
        return None, "repeats_label"
    return text, None


def _seed(label: str) -> int:
    return int(hashlib.sha256(label.encode("utf-8")).hexdigest()[:8], 16) % 2**31


SCHEMA = {"type": "object", "properties": {"description": {"type": "string", "minLength": 1}},
          "required": ["description"], "additionalProperties": False}


def request_schema(config: DescribeConfig) -> dict:
    schema = json.loads(json.dumps(SCHEMA))
    schema["properties"]["description"]["maxLength"] = config.max_chars
    return schema


def ask(provider: LLMProvider, prompt: PromptTemplate, label: str, context: list[str], set_name: str,
        config: DescribeConfig, tries: int = 0) -> dict:
    """One call for ``label``: an accepted line (``"description"``) or a rejected one (``"reason"``).  The LLM
    seed follows the label and ``tries`` (its earlier rejected lines), so asking again asks afresh."""
    system, user = prompt.render(label=label, context_labels=context, max_chars=config.max_chars,
                                 example_label=EXAMPLE[0], example_description=EXAMPLE[1])
    line: dict = {"label": label, "source": f"{provider.name}:{provider.model}", "prompt_id": prompt.prompt_id,
                  "prompt_hash": prompt.hash, "set": set_name,
                  "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        completion = provider.complete_json(system, user, request_schema(config), seed=_seed(f"{label}\x00{tries}"),
                                            temperature=config.temperature, max_tokens=config.max_tokens)
    except LLMCallError as err:
        return {**line, "reason": "llm_call_failed", "detail": f"{err.reason}: {err}"[:500], "raw": "",
                "attempts": err.attempts}
    except LLMConfigError:
        raise  # a setting is wrong: every further call would fail the same way
    except Exception as err:  # noqa: BLE001 - a provider bug costs one counted call, not the run
        return {**line, "reason": "llm_call_failed", "detail": f"unexpected {type(err).__name__}: {err}"[:500],
                "raw": "", "attempts": None}
    usage = {"attempts": completion.attempts, "prompt_tokens": completion.prompt_tokens,
             "completion_tokens": completion.completion_tokens, "llm_seconds": round(completion.seconds, 3)}
    description, reason = check_description(label, completion.text, config)
    if reason:
        return {**line, "reason": reason, "detail": "", "raw": completion.text[:2000], **usage}
    return {"label": label, "description": description, **{k: v for k, v in line.items() if k != "label"}, **usage}


# -- 3. the cache -----------------------------------------------------------------------------------------
class DescriptionCache:
    """``out`` (accepted lines) and ``<out stem>.rejected.jsonl`` (the rest), both append-only."""

    def __init__(self, out: str | Path):
        self.path = Path(out)
        self.rejected_path = self.path.with_name(self.path.stem + ".rejected.jsonl")
        self._accepted, self._rejected = Checkpoint(self.path), Checkpoint(self.rejected_path)

    def load(self) -> dict[str, dict]:
        """``{label: line}`` of every described label (a torn last line is cut off and its label asked again)."""
        described: dict[str, dict] = {}
        for entry in self._accepted.entries():
            if isinstance(entry, dict) and isinstance(entry.get("label"), str) \
                    and isinstance(entry.get("description"), str) and entry["description"].strip():
                described[entry["label"]] = entry
        return described

    def tries(self) -> Counter:
        """Rejected lines per label (earlier failed or refused attempts)."""
        return Counter(entry["label"] for entry in self._rejected.entries()
                       if isinstance(entry, dict) and isinstance(entry.get("label"), str))

    def append(self, line: dict) -> None:
        (self._rejected if "reason" in line else self._accepted).append(line)


# -- 4. the loop ------------------------------------------------------------------------------------------
@dataclass
class DescribeReport:
    """What a run did.  ``labels = cached + accepted + failed + sum(rejected.values())``; ``missing`` lists the
    labels still without a description (``failed + sum(rejected.values())`` of them)."""

    out: str
    rejected_file: str
    labels: int = 0
    cached: int = 0  # already described in the out file: not asked
    asked: int = 0  # calls made in this run
    accepted: int = 0
    failed: int = 0  # calls that failed after retries (reason llm_call_failed)
    rejected: dict = field(default_factory=dict)  # answers refused, by reason
    missing: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _context(label: str, labels: list[str], cap: int) -> list[str]:
    return [other for other in labels if other != label][:cap]


def describe_labels(label_sets: dict[str, list[str]] | list[str], provider: LLMProvider, out: str | Path,
                    config: DescribeConfig | None = None) -> DescribeReport:
    """Describe every label not yet in ``out``, ``config.concurrency`` calls at a time; each answer is appended
    the moment it arrives.  An ``LLMConfigError`` (a wrong setting) ends the run after the calls in flight."""
    config = config or DescribeConfig()
    if not isinstance(label_sets, dict):
        label_sets = {"labels": list(label_sets)}
    prompt = load_prompt(config.prompt_id)
    cache = DescriptionCache(out)
    described = cache.load()
    todo: dict[str, tuple[str, list[str]]] = {}  # label -> (its first set, context)
    for set_name, labels in label_sets.items():
        for label in labels:
            if label not in todo:
                todo[label] = (set_name, _context(label, labels, config.context_labels))
    report = DescribeReport(out=str(cache.path), rejected_file=str(cache.rejected_path), labels=len(todo))
    pending = [label for label in todo if label not in described]
    report.cached = report.labels - len(pending)
    rejected: Counter = Counter()
    tries = cache.tries()

    def arrived(line: dict) -> None:
        cache.append(line)  # before anything else: a killed run keeps every answer it saw
        report.asked += 1
        if "reason" not in line:
            report.accepted += 1
        elif line["reason"] == "llm_call_failed":
            report.failed += 1
            report.missing.append(line["label"])
        else:
            rejected[line["reason"]] += 1
            report.missing.append(line["label"])

    with call_pool(config.concurrency, "gliznet-describe") as pool:
        def start(label: str):
            set_name, context = todo[label]
            return pool.submit(ask, provider, prompt, label, context, set_name, config, tries[label])

        rolling_window(pending, start, arrived, concurrency=config.concurrency)  # re-raises an LLMConfigError
    report.rejected = dict(sorted(rejected.items()))
    report.missing.sort()
    return report
