"""False-negative check of every hard negative: a ``not_label`` that is actually true teaches the model the
wrong thing, so each one is scored against the record's positives before the split.

The rule is NV-Retriever's *positive-aware* threshold.  With ``s(x)`` = the reference scorer's similarity
of the text and label ``x`` (the packaged MiniLM encoder, ``gliznet.modeling.backbone.Embedder``: cosine of
mean-pooled, L2-normalised vectors):

    suspect(n)  <=>  s(n) > SUSPECT_FRACTION * max_p s(p)      (95 % of the record's *best* positive)
    hard(n)     <=>  s(n) > min_p s(p)                          (above the *weakest* positive: kept, it is
                                                                 what "hard" means)

    NEGATIVE_CHECKS = ("embed", "llm", "off")   ``--negative-check``; default ``off`` (see BuildConfig)
    check_negatives_embed(records, embedder, fraction) -> NegativeCheck

``llm`` asks the run's own provider instead, one call per record (prompt ``negative_check``): "which of
the listed negatives are actually true?".  It is a second pass after generation, with the generation's
machinery: the provider's retries, an append-only checkpoint (``<out>/checkpoint/negative_check.jsonl``,
one line per record, keyed by the record's ``text_key``), and resume (a record whose line settles it is
never asked again; a transport failure is asked again by a re-run).

    ask_negatives_llm(records, provider, checkpoint, concurrency) -> lines made   the second pass
    load_negative_answers(checkpoint) -> {record key: line}
    check_negatives_llm(records, answers) -> NegativeCheck                        pure: drop what it named

A negative the LLM names as true is dropped like ``embed``'s suspects (same counts).  A record without a
settled answer (its calls failed) or whose answer is not ``{"true_labels": [...]}`` keeps its negatives and
is counted (``negative_check_records_unanswered``, ``negative_check_answers_invalid``); a named label
that is not one of the record's negatives is ignored and counted (``negative_check_unknown_labels``).

A suspect negative is **dropped** from its record (the record is kept with its other negatives, even when
fewer than ``Limits.min_not_labels`` remain; those records are counted).  Counts by reason go into the
manifest's ``counts`` (``negatives_checked``, ``negatives_dropped_suspect_false_negative``,
``records_below_min_not_labels_after_check``); the report (``negative_check`` in the manifest, a table in
the card) gives the hard share and the suspect share over the same scored negatives, side by side.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from gliznet.errors import UserError
from gliznet._io import Checkpoint
from gliznet.generation.loop import MAX_TRANSPORT_FAILURES, LLMUnreachable, ask_into, settles
from gliznet.generation.prompts import PromptTemplate, load_prompt
from gliznet.generation.window import call_pool, rolling_window
from gliznet.llm.provider import EndpointDown, LLMConfigError, LLMProvider
from gliznet.records import Record, label_key

NEGATIVE_CHECKS = ("embed", "llm", "off")
NEGATIVE_CHECK_PROMPT = "negative_check"
NEGATIVE_CHECK_FILE = "negative_check.jsonl"  # in <out>/checkpoint/
SUSPECT_FRACTION = 0.95
DROP_REASON = "suspect_false_negative"


@dataclass
class NegativeCheck:
    """The records after the check, counts by reason, and the report for the manifest and the card."""

    records: list[Record]
    counts: Counter = field(default_factory=Counter)
    report: dict = field(default_factory=dict)


def _drop_flagged(r: Record, flags: list[bool], counts: Counter, flagged_examples: list[dict],
                  min_not_labels: int) -> Record:
    """``r`` without its flagged negatives, each counted (both modes drop and count the same way)."""
    if not any(flags):
        return r
    dropped = [x for x, f in zip(r.not_labels, flags) if f]
    remaining = [x for x, f in zip(r.not_labels, flags) if not f]
    counts[f"negatives_dropped_{DROP_REASON}"] += len(dropped)
    counts["records_with_suspect_negative"] += 1
    if len(remaining) < min_not_labels:
        counts["records_below_min_not_labels_after_check"] += 1
    if len(flagged_examples) < 5:
        flagged_examples.append({"text": r.text[:120], "labels": r.labels, "dropped": dropped})
    return r.model_copy(update={"not_labels": remaining})


def check_negatives_embed(records: list[Record], embedder, fraction: float = SUSPECT_FRACTION,
                          min_not_labels: int = 0) -> NegativeCheck:
    """Drop every negative scored above ``fraction`` of its record's best positive (module docstring).

    ``embedder.encode(list[str]) -> (n, d)`` L2-normalised vectors; every distinct string is embedded once.
    Records without positives or negatives pass unchanged (nothing to compare)."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"negative_fraction must be in (0, 1] (got {fraction}): pass a share such as 0.95")
    scored = [r for r in records if r.labels and r.not_labels]
    strings = sorted({s for r in scored for s in (r.text, *r.labels, *r.not_labels)})
    vectors = np.asarray(embedder.encode(strings), dtype=np.float32) if strings else np.zeros((0, 1), np.float32)
    index = {s: i for i, s in enumerate(strings)}

    def sims(text: str, labels: list[str]) -> np.ndarray:
        return vectors[[index[x] for x in labels]] @ vectors[index[text]]

    counts: Counter = Counter()
    kept: list[Record] = []
    hard = suspect = 0
    flagged_examples: list[dict] = []
    for r in records:
        if not (r.labels and r.not_labels):
            kept.append(r)
            continue
        pos, neg = sims(r.text, r.labels), sims(r.text, r.not_labels)
        best, weakest = float(pos.max()), float(pos.min())
        flags = neg > fraction * best
        hard += int((neg > weakest).sum())
        suspect += int(flags.sum())
        counts["negatives_checked"] += len(r.not_labels)
        kept.append(_drop_flagged(r, list(flags), counts, flagged_examples, min_not_labels))
    checked = counts["negatives_checked"]
    report = {
        "mode": "embed",
        "rule": f"negative scored above {fraction:g} x the record's best positive (NV-Retriever positive-aware)",
        "fraction": fraction,
        "action": "dropped",
        "scorer": _scorer_name(embedder),
        "records_scored": len(scored),
        "negatives_checked": checked,
        "hard_above_weakest_positive": round(hard / checked, 4) if checked else 0.0,
        "suspect_false_negative_rate": round(suspect / checked, 4) if checked else 0.0,
        "negatives_dropped": suspect,
        "examples": flagged_examples,
    }
    return NegativeCheck(kept, counts, report)


# --- llm: the second pass ------------------------------------------------------------------------


def negative_check_schema(record: Record) -> dict:
    label = {"type": "string", "maxLength": max(len(x) for x in record.not_labels) + 10}
    return {"type": "object", "properties": {"true_labels": {"type": "array", "items": label,
                                                             "maxItems": len(record.not_labels)}},
            "required": ["true_labels"], "additionalProperties": False}


def _call_seed(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 2**31


def ask_one(provider: LLMProvider, prompt: PromptTemplate, record: Record, max_tokens: int = 300) -> dict:
    """One record's question -> its checkpoint line (``record``: the text key; the raw answer or the failure),
    the same fields as a generation line so ``usage_of`` counts it."""
    system, user = prompt.render(text=record.text, labels=record.labels, not_labels=record.not_labels)
    line: dict = {"record": record.key, "provider": provider.name, "model": provider.model,
                  "prompt_id": prompt.prompt_id, "prompt_hash": prompt.hash,
                  "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return ask_into(line, provider, system, user, negative_check_schema(record), seed=_call_seed(record.key),
                    temperature=0.0, max_tokens=max_tokens)


def load_negative_answers(checkpoint: Checkpoint) -> dict[str, dict]:
    """``{record key: line}``: the first line that settles a record wins, else its last line."""
    answers: dict[str, dict] = {}
    for entry in checkpoint.entries():
        if not (isinstance(entry, dict) and isinstance(entry.get("record"), str)):
            continue
        held = answers.get(entry["record"])
        if held is None or not settles(held):
            answers[entry["record"]] = entry
    return answers


def ask_negatives_llm(records: list[Record], provider: LLMProvider, checkpoint: Checkpoint, concurrency: int = 4,
                      max_transport_failures: int = MAX_TRANSPORT_FAILURES) -> list[dict]:
    """The ``llm`` pass: one call per record whose checkpoint holds no settling line, ``concurrency`` at a
    time; each line appended the moment it arrives.  Returns the lines made (for the run's usage).
    ``max_transport_failures`` calls in a row without an answer stop it with ``LLMUnreachable``."""
    answers = load_negative_answers(checkpoint)
    todo, seen = [], set()
    for record in records:
        if record.not_labels and record.key not in seen and not settles(answers.get(record.key, {"ok": False,
                                                                                              "failure": "transport"})):
            todo.append(record)
            seen.add(record.key)
    prompt = load_prompt(NEGATIVE_CHECK_PROMPT)
    made: list[dict] = []
    down: list[dict] = []

    def arrived(line: dict) -> None:
        checkpoint.append(line)  # before anything else: a killed run keeps every answer it saw
        made.append(line)
        if settles(line):
            down.clear()
        else:
            down.append(line)

    with call_pool(concurrency, "gliznet-negcheck") as pool:
        try:
            rolling_window(todo, lambda record: pool.submit(ask_one, provider, prompt, record), arrived,
                           concurrency=concurrency, keep_going=lambda: len(down) < max_transport_failures)
        except (LLMConfigError, EndpointDown) as err:
            raise LLMUnreachable(f"{err}; the negative-check answers so far are kept in {checkpoint.path}: "
                                 "re-run the same command to resume") from None
    if len(down) >= max_transport_failures:
        last = down[-1]
        raise LLMUnreachable(f"{last.get('cause') or last.get('detail') or last.get('error')} ({len(down)} "
                             f"negative-check calls in a row got no answer); the answers so far are kept in "
                             f"{checkpoint.path}: re-run the same command to resume")
    return made


def _named_true(raw: str) -> list[str] | None:
    """The labels an answer names as true, or None when it is not ``{"true_labels": [str, ...]}``."""
    try:
        data = json.loads(raw.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
    except (ValueError, AttributeError):
        return None
    named = data.get("true_labels") if isinstance(data, dict) else data if isinstance(data, list) else None
    if not isinstance(named, list) or not all(isinstance(x, str) for x in named):
        return None
    return named


def check_negatives_llm(records: list[Record], answers: dict[str, dict], min_not_labels: int = 0) -> NegativeCheck:
    """Drop every negative the LLM's answer (``answers[record.key]``) names as true (module docstring)."""
    counts: Counter = Counter()
    kept: list[Record] = []
    flagged_examples: list[dict] = []
    answered = dropped_total = 0
    for r in records:
        if not r.not_labels:
            kept.append(r)
            continue
        line = answers.get(r.key)
        if line is None or not line.get("ok"):
            counts["negative_check_records_unanswered"] += 1
            kept.append(r)
            continue
        named = _named_true(line.get("raw", ""))
        if named is None:
            counts["negative_check_answers_invalid"] += 1
            kept.append(r)
            continue
        answered += 1
        counts["negatives_checked"] += len(r.not_labels)
        negatives = {label_key(x) for x in r.not_labels}
        true_keys = {label_key(x) for x in named}
        counts["negative_check_unknown_labels"] += len(true_keys - negatives - {""})
        flags = [label_key(x) in true_keys for x in r.not_labels]
        dropped_total += sum(flags)
        kept.append(_drop_flagged(r, flags, counts, flagged_examples, min_not_labels))
    checked = counts["negatives_checked"]
    report = {
        "mode": "llm",
        "rule": "a negative the run's own LLM names as true for the text (one call per record)",
        "action": "dropped",
        "scorer": "the generating LLM",
        "records_scored": answered,
        "records_unanswered": counts["negative_check_records_unanswered"],
        "answers_invalid": counts["negative_check_answers_invalid"],
        "negatives_checked": checked,
        "hard_above_weakest_positive": "n/a (see Hardness)",
        "suspect_false_negative_rate": round(dropped_total / checked, 4) if checked else 0.0,
        "negatives_dropped": dropped_total,
        "examples": flagged_examples,
    }
    return NegativeCheck(kept, +counts, report)


def _scorer_name(embedder) -> str:
    from gliznet.curation.card import _scorer_name as name  # one wording of the scorer, the card's

    return name(embedder)


__all__ = ["DROP_REASON", "NEGATIVE_CHECKS", "NEGATIVE_CHECK_FILE", "NegativeCheck", "SUSPECT_FRACTION",
           "ask_negatives_llm", "check_negatives_embed", "check_negatives_llm", "load_negative_answers"]
