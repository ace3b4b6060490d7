"""False-negative check of every hard negative: a ``not_label`` that is actually true teaches the model the
wrong thing, so each one is scored against the record's positives before the split.

The rule is NV-Retriever's *positive-aware* threshold.  With ``s(x)`` = the reference scorer's similarity
of the text and label ``x`` (the packaged MiniLM encoder, ``gliznet.modeling.backbone.Embedder``: cosine of
mean-pooled, L2-normalised vectors):

    suspect(n)  <=>  s(n) > SUSPECT_FRACTION * max_p s(p)      (95 % of the record's *best* positive)
    hard(n)     <=>  s(n) > min_p s(p)                          (above the *weakest* positive: kept, it is
                                                                 what "hard" means)

    NEGATIVE_CHECKS = ("embed", "off")       ``--negative-check``; default ``off`` (see BuildConfig)
    check_negatives_embed(records, embedder, fraction) -> NegativeCheck

A suspect negative is **dropped** from its record (the record is kept with its other negatives, even when
fewer than ``Limits.min_not_labels`` remain; those records are counted).  Counts by reason go into the
manifest's ``counts`` (``negatives_checked``, ``negatives_dropped_suspect_false_negative``,
``records_below_min_not_labels_after_check``); the report (``negative_check`` in the manifest, a table in
the card) gives the hard share and the suspect share over the same scored negatives, side by side.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from gliznet.records import Record

NEGATIVE_CHECKS = ("embed", "off")
SUSPECT_FRACTION = 0.95
DROP_REASON = "suspect_false_negative"


@dataclass
class NegativeCheck:
    """The records after the check, counts by reason, and the report for the manifest and the card."""

    records: list[Record]
    counts: Counter = field(default_factory=Counter)
    report: dict = field(default_factory=dict)


def check_negatives_embed(records: list[Record], embedder, fraction: float = SUSPECT_FRACTION,
                          min_not_labels: int = 0) -> NegativeCheck:
    """Drop every negative scored above ``fraction`` of its record's best positive (module docstring).

    ``embedder.encode(list[str]) -> (n, d)`` L2-normalised vectors; every distinct string is embedded once.
    Records without positives or negatives pass unchanged (nothing to compare)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"negative_fraction must be in (0, 1] (got {fraction}): pass a share such as 0.95")
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
        if not flags.any():
            kept.append(r)
            continue
        dropped = [x for x, f in zip(r.not_labels, flags) if f]
        counts[f"negatives_dropped_{DROP_REASON}"] += len(dropped)
        counts["records_with_suspect_negative"] += 1
        remaining = [x for x, f in zip(r.not_labels, flags) if not f]
        if len(remaining) < min_not_labels:
            counts["records_below_min_not_labels_after_check"] += 1
        if len(flagged_examples) < 5:
            flagged_examples.append({"text": r.text[:120], "labels": r.labels, "dropped": dropped})
        kept.append(r.model_copy(update={"not_labels": remaining}))
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


def _scorer_name(embedder) -> str:
    from gliznet.curation.card import _scorer_name as name  # one wording of the scorer, the card's

    return name(embedder)


__all__ = ["DROP_REASON", "NEGATIVE_CHECKS", "NegativeCheck", "SUSPECT_FRACTION", "check_negatives_embed"]
