"""Records: what one generated example is, and how raw LLM output becomes one (or a counted rejection).

A *record* is one zero-shot classification example in the triplet shape::

    {"text": str, "labels": [str, ...], "not_labels": [str, ...], "provenance": {...}}

``labels`` are the true labels of ``text``; ``not_labels`` are *hard negatives*: plausible labels that do
not apply.  Every record carries its ``Provenance`` (which provider, model, prompt and sampling knobs made
it), so the dataset card can break acceptance down by any of them.

Read top to bottom:

1. ``Limits`` - the bounds a record must satisfy (text length, how many labels / negatives).
2. ``RejectReason`` - the one reason a candidate is refused; counted in the dataset card.
3. ``Provenance``, ``Record``, ``Rejection`` - the data models.
4. ``RawItem`` / ``RawBatch`` / ``BATCH_JSON_SCHEMA`` - what the LLM is asked to return.
5. Normalisation: ``normalize_label`` (display form) and ``label_key`` (comparison key);
   ``normalize_text`` and ``text_key``.
6. ``validate_item`` - one raw item -> Record | Rejection, plus counts of the fixes applied;
   ``validate_items`` - the same for a list.
7. ``parse_batch`` - the LLM's raw output string -> records, rejections, fix counts.  Never raises.

Fixes vs rejections: a *fix* repairs an item and keeps it (a duplicate label removed, a label that is in
both lists removed from ``not_labels``); fixes are counted in a ``Counter``.  A *rejection* drops the item
with exactly one ``RejectReason``; the checks run in a fixed order and the first failing one is the reason.

Prompt echo rule (small models often copy their instructions): with ``t = text_key(text)`` and
``p = text_key(prompt_text)``, the text is an echo if ``t`` occurs verbatim in ``p``, or if
``len(t) >= 30`` and ``rapidfuzz.fuzz.partial_ratio(t, p) >= 90`` (a large near-verbatim chunk of the
prompt, or the whole prompt inside the text).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from datetime import datetime, timezone
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz

# --------------------------------------------------------------------------------------------- config


class Limits(BaseModel):
    """Bounds every accepted record satisfies (inclusive)."""

    model_config = ConfigDict(frozen=True)

    min_text_chars: int = 20
    max_text_chars: int = 2000
    min_labels: int = 1
    max_labels: int = 5
    min_not_labels: int = 3
    max_not_labels: int = 15
    max_label_chars: int = 80

    @model_validator(mode="after")
    def _ordered(self) -> "Limits":
        for low, high in (("min_text_chars", "max_text_chars"), ("min_labels", "max_labels"),
                          ("min_not_labels", "max_not_labels")):
            if getattr(self, low) < 0:
                raise ValueError(f"{low} is negative: pass a value >= 0")
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} > {high}: pass {low} <= {high}")
        if self.max_label_chars < 1:
            raise ValueError("max_label_chars < 1: pass a positive maximum label length")
        return self


PROMPT_ECHO_MIN_CHARS = 30
PROMPT_ECHO_MIN_SCORE = 90.0


class RejectReason(StrEnum):
    """Why a candidate was refused. Exactly one per rejection; counted in the dataset card."""

    invalid_json = "invalid_json"              # the LLM output is not (complete) JSON
    wrong_shape = "wrong_shape"                # JSON, but not {"records": [{text, labels, not_labels}]}
    empty_batch = "empty_batch"                # valid shape, zero items
    text_too_short = "text_too_short"
    text_too_long = "text_too_long"
    prompt_echo = "prompt_echo"                # the text copies the prompt
    too_few_labels = "too_few_labels"
    too_many_labels = "too_many_labels"
    too_few_not_labels = "too_few_not_labels"
    too_many_not_labels = "too_many_not_labels"
    near_duplicate = "near_duplicate"          # set by gliznet.curation.dedup
    cross_role_broken = "cross_role_broken"    # --cross-role-policy reject: breaks its bundle's cross-role rule
    llm_call_failed = "llm_call_failed"        # set by the generator when the call itself failed


# --------------------------------------------------------------------------------------------- models


def utc_now_iso() -> str:
    """Current time as ISO-8601 UTC, e.g. ``2025-01-31T12:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Provenance(BaseModel):
    """Where a record came from: enough to group acceptance by provider, model, prompt and knobs."""

    provider: str
    model: str
    prompt_id: str
    prompt_hash: str
    topic: str
    genre: str
    length: str
    reading_level: str
    seed: int
    created_at: str = Field(default_factory=utc_now_iso)
    seed_id: str | None = None  # the seed passage the text was rewritten from (--seed-texts); None: not seeded
    bundle: int | None = None  # the call whose cross-role bundle the text belongs to (--bundle-size > 1)
    target: str | None = None  # the user's label the call aimed at (--labels); None: not aimed


class Record(BaseModel):
    """One accepted example: text, true labels, hard negative labels, provenance."""

    text: str
    labels: list[str]
    not_labels: list[str]
    provenance: Provenance

    @property
    def key(self) -> str:
        """Exact-duplicate key of the text (see ``text_key``)."""
        return text_key(self.text)


class Rejection(BaseModel):
    """One refused candidate: the reason, a human-readable detail, and the raw input it came from."""

    reason: RejectReason
    detail: str
    raw: str
    provenance: Provenance | None = None


class RawItem(BaseModel):
    """One item as the LLM must return it."""

    model_config = ConfigDict(strict=True)

    text: str
    labels: list[str]
    not_labels: list[str]


class RawBatch(BaseModel):
    """The LLM's whole answer: ``{"records": [RawItem, ...]}``."""

    model_config = ConfigDict(strict=True)

    records: list[RawItem]


# Plain JSON schema (no $ref / $defs) so every structured-output backend accepts it.
BATCH_JSON_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "records": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "not_labels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
                "required": ["text", "labels", "not_labels"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["records"],
    "additionalProperties": False,
}

# ------------------------------------------------------------------------------------- normalisation

_WHITESPACE = re.compile(r"\s+")
_LINE_SPACE = re.compile(r"[^\S\n]+")          # whitespace other than newline
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LABEL_SEPARATORS = re.compile(r"[_\-]+")


def _drop_controls(s: str, keep: str = "") -> str:
    """Remove control/format/unassigned characters (category C*); whitespace becomes a space.

    Characters in ``keep`` are left as they are.
    """
    if s.isprintable():   # fast path: no C* character and no whitespace other than " "
        return s
    out = []
    for ch in s:
        if ch in keep:
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def normalize_label(s: str) -> str:
    """Display form of a label: NFKC, control characters removed, whitespace collapsed and stripped.

    Case and spelling are kept as written (``"Customer_Support"`` stays ``"Customer_Support"``).
    """
    s = _drop_controls(unicodedata.normalize("NFKC", s))
    # NFKC again: a combining mark that followed a removed control character composes only now
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", s)).strip()


def label_key(s: str) -> str:
    """Comparison key of a label: ``normalize_label``, casefold, ``_``/``-`` -> space, collapsed.

    ``label_key("Customer_Support") == label_key("customer-support") == "customer support"``.
    """
    s = _LABEL_SEPARATORS.sub(" ", normalize_label(s).casefold())
    return _WHITESPACE.sub(" ", s).strip()


def normalize_text(s: str) -> str:
    """Stored form of a text: NFKC, control characters removed, runs of spaces/tabs collapsed,
    each line stripped, at most one blank line between paragraphs, stripped."""
    s = unicodedata.normalize("NFKC", s).replace("\r\n", "\n").replace("\r", "\n")
    s = unicodedata.normalize("NFKC", _drop_controls(s, keep="\n"))
    lines = [_LINE_SPACE.sub(" ", line).strip() for line in s.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def text_key(s: str) -> str:
    """Exact-duplicate key of a text: ``normalize_text``, casefold, all whitespace collapsed to one space."""
    return _WHITESPACE.sub(" ", normalize_text(s).casefold()).strip()


# ---------------------------------------------------------------------------------------- validation


def _clean_labels(raw: list[str], limits: Limits, fixes: Counter) -> list[str]:
    """Normalise a label list: drop empty and over-long labels, keep the first of each ``label_key``."""
    out: list[str] = []
    seen: set[str] = set()
    for label in raw:
        shown = normalize_label(label)
        key = label_key(shown)
        if not key:
            fixes["empty_labels_dropped"] += 1
            continue
        if len(shown) > limits.max_label_chars:
            fixes["long_labels_dropped"] += 1
            continue
        if key in seen:
            fixes["duplicate_labels_removed"] += 1
            continue
        seen.add(key)
        out.append(shown)
    return out


@lru_cache(maxsize=256)
def _prompt_key(prompt_text: str) -> str:
    """``text_key`` of a prompt, once per prompt (every item of an answer is checked against the same one)."""
    return text_key(prompt_text)


def is_prompt_echo(text: str, prompt_text: str) -> bool:
    """True when ``text`` copies the prompt (see the module docstring for the rule)."""
    t, p = text_key(text), _prompt_key(prompt_text)
    if not t or not p:
        return False
    if t in p:
        return True
    return len(t) >= PROMPT_ECHO_MIN_CHARS and fuzz.partial_ratio(
        t, p, score_cutoff=PROMPT_ECHO_MIN_SCORE) >= PROMPT_ECHO_MIN_SCORE  # the cutoff prunes: same answer, faster


def _safe(s: str) -> str:
    """``s`` with lone surrogates replaced, so it can always be written as UTF-8."""
    return s.encode("utf-8", "replace").decode("utf-8")


def _dump(item: Any) -> str:
    try:
        return _safe(json.dumps(item, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return _safe(repr(item))


def _shape_problem(item: Any) -> str | None:
    """Describe why ``item`` is not ``{"text": str, "labels": [str], "not_labels": [str]}``; None if it is."""
    if not isinstance(item, dict):
        return f"item is {type(item).__name__}, expected an object with text, labels, not_labels"
    try:
        RawItem.model_validate(item)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return None


def validate_item(item: Any, provenance: Provenance | None, prompt_text: str,
                  limits: Limits = Limits()) -> tuple[Record | None, Rejection | None, Counter]:
    """One raw item -> ``(Record, None, fixes)`` or ``(None, Rejection, fixes)``.

    Order: shape -> normalise text and labels (fixes) -> overlap removal (fix) -> text length ->
    prompt echo -> label counts -> not_label counts.  The first failing check is the reason.
    """
    fixes: Counter = Counter()
    problem = _shape_problem(item)
    if problem is not None:
        return None, Rejection(reason=RejectReason.wrong_shape, detail=problem, raw=_dump(item),
                               provenance=provenance), fixes

    text = normalize_text(item["text"])
    labels = _clean_labels(item["labels"], limits, fixes)
    not_labels = _clean_labels(item["not_labels"], limits, fixes)
    positive_keys = {label_key(x) for x in labels}
    kept_negatives = [x for x in not_labels if label_key(x) not in positive_keys]
    if len(kept_negatives) < len(not_labels):
        fixes["overlap_removed"] += len(not_labels) - len(kept_negatives)
    not_labels = kept_negatives

    def reject(reason: RejectReason, detail: str) -> tuple[None, Rejection, Counter]:
        return None, Rejection(reason=reason, detail=detail, raw=_dump(item), provenance=provenance), fixes

    n = len(text)
    if n < limits.min_text_chars:
        return reject(RejectReason.text_too_short, f"text has {n} chars, minimum is {limits.min_text_chars}")
    if n > limits.max_text_chars:
        return reject(RejectReason.text_too_long, f"text has {n} chars, maximum is {limits.max_text_chars}")
    if is_prompt_echo(text, prompt_text):
        return reject(RejectReason.prompt_echo, "text copies the prompt")
    checks = (
        (len(labels), limits.min_labels, limits.max_labels, "labels",
         RejectReason.too_few_labels, RejectReason.too_many_labels),
        (len(not_labels), limits.min_not_labels, limits.max_not_labels, "not_labels",
         RejectReason.too_few_not_labels, RejectReason.too_many_not_labels),
    )
    for count, low, high, name, few, many in checks:
        if count < low:
            return reject(few, f"{count} {name} after cleaning, minimum is {low}")
        if count > high:
            return reject(many, f"{count} {name} after cleaning, maximum is {high}")
    record = Record(text=text, labels=labels, not_labels=not_labels,
                    provenance=provenance if provenance is not None else _unknown_provenance())
    return record, None, fixes


def validate_items(items: list, provenance: Provenance | None, prompt_text: str,
                   limits: Limits = Limits()) -> tuple[list[Record], list[Rejection], Counter]:
    """``validate_item`` on each item: ``(records, rejections, fixes summed)``, in item order."""
    records: list[Record] = []
    rejections: list[Rejection] = []
    fixes: Counter = Counter()
    for item in items:
        record, rejection, item_fixes = validate_item(item, provenance, prompt_text, limits)
        fixes.update(item_fixes)
        if record is not None:
            records.append(record)
        else:
            rejections.append(rejection)
    return records, rejections, fixes


def _unknown_provenance() -> Provenance:
    return Provenance(provider="unknown", model="unknown", prompt_id="", prompt_hash="", topic="",
                      genre="", length="", reading_level="", seed=0)


# ------------------------------------------------------------------------------------------- parsing

_CODE_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def _items_of(data: Any) -> list | None:
    """The list of items in a decoded answer, or None when the shape is wrong.

    Accepts the schema's ``{"records": [...]}``; a bare list of items and a single item object are
    also accepted (small models drop the wrapper) and counted as ``unwrapped_answer``.
    """
    if isinstance(data, dict) and "records" in data:
        return data["records"] if isinstance(data["records"], list) else None
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "text" in data:
        return [data]
    return None


def parse_batch(raw: str, provenance: Provenance | None, prompt_text: str,
                limits: Limits = Limits()) -> tuple[list[Record], list[Rejection], Counter]:
    """The LLM's raw output -> ``(records, rejections, fixes)``.  Never raises.

    Not JSON or truncated JSON -> one ``invalid_json`` rejection holding the whole raw string.
    JSON without a list of items -> one ``wrong_shape`` rejection; an empty list -> one ``empty_batch``.
    Otherwise every item is passed to ``validate_item``.  A surrounding Markdown code fence is
    stripped (counted as ``code_fence_stripped``).
    """
    fixes: Counter = Counter()
    records: list[Record] = []
    rejections: list[Rejection] = []
    try:
        raw = _safe(raw) if isinstance(raw, str) else _dump(raw)
        body = raw.strip()
        fenced = _CODE_FENCE.match(body)
        if fenced:
            body = fenced.group(1).strip()
            fixes["code_fence_stripped"] += 1
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as err:
            detail = f"not valid JSON: {err}"[:300]
            return [], [Rejection(reason=RejectReason.invalid_json, detail=detail, raw=raw,
                                  provenance=provenance)], fixes
        items = _items_of(data)
        if items is None:
            return [], [Rejection(reason=RejectReason.wrong_shape,
                                  detail='expected {"records": [{"text", "labels", "not_labels"}]}',
                                  raw=raw, provenance=provenance)], fixes
        if not (isinstance(data, dict) and "records" in data):
            fixes["unwrapped_answer"] += 1
        if not items:
            return [], [Rejection(reason=RejectReason.empty_batch, detail="the answer holds no records",
                                  raw=raw, provenance=provenance)], fixes
        records, rejections, item_fixes = validate_items(items, provenance, prompt_text, limits)
        fixes.update(item_fixes)
    except Exception as err:  # noqa: BLE001 - the contract is "never raises": account for it instead
        rejections.append(Rejection(reason=RejectReason.wrong_shape, detail=f"unexpected: {err!r}"[:300],
                                    raw=raw if isinstance(raw, str) else repr(raw), provenance=provenance))
    return records, rejections, fixes
