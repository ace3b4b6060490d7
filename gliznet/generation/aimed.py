"""Data aimed at the user's own label set: ``gliznet generate --labels "a,b,c" --task "..."``.

The user knows the labels; the writer only writes texts.  Each call aims at one *target* label:

* **Balanced and deterministic.** Calls come in blocks of ``L`` (the number of labels); block ``b`` visits every
  label once in the order ``random.Random(f"{seed}:aim:{b}")`` shuffles them, so after ``k * L`` calls every
  label was the target ``k`` times, whatever the timing, and a longer run extends the plan of a shorter one.
* **Confusable siblings.** The labels closest to the target by the packaged MiniLM encoder (cosine of the label
  embeddings, ``SIBLINGS`` of them) are named in the prompt: texts must be clearly the target and *not*
  these, yet close to them.
* **Negatives are known, not written.** The writer answers ``{"texts": [...]}`` only; each text becomes a record
  with ``labels = [target]`` and ``not_labels`` = the siblings the prompt named (the writer was told the text is
  none of them), then, for a set of mutually exclusive labels (the default), the set's other labels, closest
  first, up to ``Limits.max_not_labels``.  With ``--multi-label`` a text may also be another label of the set,
  so only the named siblings are its negatives.

    parse_labels(value)               "a,b,c" or a file (one label a line, optional label<TAB>description)
    LabelSet                          the labels, their descriptions, the siblings of each
    target_of(seed, index, n)         which label call ``index`` aims at
    expand_answer(raw, spec)          ``{"texts": [...]}`` -> ``{"records": [...]}`` for validation
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gliznet.errors import UserError
from gliznet.records import label_key, normalize_label

SIBLINGS = 3  # confusable siblings named in each aimed prompt
MAX_LABEL_CHARS = 80
SIMILARITY_BLOCK = 1024  # label rows scored at once when ranking siblings (10,000 labels: 40 MB a block)


@dataclass(frozen=True)
class LabelSet:
    """A user's labels (display form, in the order given), their optional descriptions, and for each label the
    indices of the others, most similar first (``ranked``; filled by ``rank_labels``)."""

    labels: tuple[str, ...]
    descriptions: tuple[str | None, ...]
    ranked: tuple[tuple[int, ...], ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def siblings(self, i: int, k: int = SIBLINGS) -> list[str]:
        return [self.labels[j] for j in self.ranked[i][:k]]

    def negatives(self, i: int, multi_label: bool, limit: int) -> list[str]:
        """The not_labels of a text aimed at label ``i``: its named siblings, then (exclusive labels) the rest,
        closest first, at most ``limit``."""
        order = self.ranked[i][:SIBLINGS] if multi_label else self.ranked[i]
        return [self.labels[j] for j in order[:max(limit, 0)]]


def parse_labels(value: str) -> LabelSet:
    """``--labels``: a file path (one label a line, optional ``label<TAB>description``; ``#`` lines and blank
    lines skipped) or a comma list.  One clear error for an empty list, a single label, a duplicate after
    normalisation (``"Sports"`` and ``"sports "``) or an over-long label."""
    if value is None or not str(value).strip():
        raise UserError('--labels is empty: pass a comma list such as "sports,politics,finance" or a file with '
                        "one label a line")
    path = Path(str(value).strip())
    pairs: list[tuple[str, str | None]] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            label, _, description = line.partition("\t")
            pairs.append((label, description.strip() or None))
        where = f"--labels file {path}"
    elif path.suffix in (".txt", ".tsv", ".labels") or "/" in str(value) and "," not in str(value):
        raise UserError(f"--labels {value}: no such file: pass an existing file (one label a line) or a comma list")
    else:
        pairs = [(part, None) for part in str(value).split(",")]
        where = "--labels"
    labels, descriptions, seen = [], [], {}
    for raw, description in pairs:
        label = normalize_label(raw)
        if not label:
            continue
        if len(label) > MAX_LABEL_CHARS:
            raise UserError(f"{where}: the label {label[:40]!r}... has {len(label)} characters: keep labels under "
                            f"{MAX_LABEL_CHARS} (put the explanation after a tab, as its description)")
        key = label_key(label)
        if key in seen:
            raise UserError(f"{where}: {seen[key]!r} and {label!r} are the same label after normalisation (case, "
                            "spaces, - and _): keep one of them")
        seen[key] = label
        labels.append(label)
        descriptions.append(description)
    if len(labels) < 2:
        raise UserError(f"{where} holds {len(labels)} label{'s' if len(labels) != 1 else ''}: a classifier needs at "
                        'least two, e.g. --labels "positive,negative"')
    return LabelSet(tuple(labels), tuple(descriptions))


def rank_labels(labels: LabelSet, embedder=None) -> LabelSet:
    """``labels`` with every label's others ranked by the cosine of their MiniLM label vectors, most similar
    first (ties by position).  Deterministic: the same labels give the same ranking, so a resumed run asks the
    same calls."""
    import numpy as np

    if embedder is None:
        from gliznet.modeling.backbone import Embedder

        embedder = Embedder()
    texts = [label if description is None else f"{label}: {description}"
             for label, description in zip(labels.labels, labels.descriptions)]
    vectors = embedder.encode(texts).astype(np.float32)
    n = len(texts)
    ranked: list[tuple[int, ...]] = []
    for start in range(0, n, SIMILARITY_BLOCK):
        sims = vectors[start:start + SIMILARITY_BLOCK] @ vectors.T
        sims = np.round(sims, 5)  # ties broken by position, not by float noise
        for row, i in enumerate(range(start, min(start + SIMILARITY_BLOCK, n))):
            sims[row, i] = -np.inf
            order = np.lexsort((np.arange(n), -sims[row]))
            ranked.append(tuple(int(j) for j in order[:n - 1]))
    return LabelSet(labels.labels, labels.descriptions, tuple(ranked))


@lru_cache(maxsize=8)
def read_label_set(value: str) -> LabelSet:
    """``parse_labels``, once per process and value (cheap: no encoder)."""
    return parse_labels(value)


@lru_cache(maxsize=8)
def load_label_set(value: str) -> LabelSet:
    """``parse_labels`` + ``rank_labels``, once per process and value (the encoder is loaded here, once)."""
    return rank_labels(read_label_set(value))


def target_of(seed: int, index: int, n_labels: int) -> int:
    """The label call ``index`` aims at: block ``index // n_labels`` is a seeded permutation of all labels."""
    block, position = divmod(index, n_labels)
    return _block_order(seed, block, n_labels)[position]


@lru_cache(maxsize=64)
def _block_order(seed: int, block: int, n_labels: int) -> tuple[int, ...]:
    return tuple(random.Random(f"{seed}:aim:{block}").sample(range(n_labels), n_labels))


def expand_answer(raw: str, target: str, not_labels: list[str]) -> str:
    """An aimed answer ``{"texts": [...]}`` as the batch shape validation reads (``{"records": [{text, labels,
    not_labels}]}``), every text labelled ``[target]`` with the call's ``not_labels``.  An answer that is not
    JSON is returned unchanged and one of another shape wrapped, so validation rejects it (``invalid_json``,
    ``wrong_shape``) and never reads labels the writer made up."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return raw
    texts = data.get("texts") if isinstance(data, dict) else data if isinstance(data, list) else None
    if not isinstance(texts, list):  # never pass on labels the writer made up: the shape is wrong
        return json.dumps({"expected_texts": data}, ensure_ascii=False)
    items = [{"text": text, "labels": [target], "not_labels": list(not_labels)} for text in texts]
    return json.dumps({"records": items}, ensure_ascii=False)


def texts_schema(n_texts: int, min_chars: int, max_chars: int) -> dict:
    """What an aimed call asks for: exactly ``n_texts`` strings."""
    text = {"type": "string", "minLength": min_chars, "maxLength": max_chars}
    return {"type": "object",
            "properties": {"texts": {"type": "array", "items": text, "minItems": n_texts, "maxItems": n_texts}},
            "required": ["texts"], "additionalProperties": False}
