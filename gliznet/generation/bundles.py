"""Cross-role bundles (``--bundle-size K``): one call asks for K texts over one shared label pool, under the
*cross-role rule*: every pool label is a positive (``labels``) of one text of the bundle and a hard negative
(``not_labels``) of another.  A negative that is a positive elsewhere in the bundle is exactly the hard case
a classifier must learn.  The LLM is asked to follow the rule; this module *checks* it.

    check_cross_role(items, pool=None) -> CrossRole    the rule on one bundle (a pure function)
    cross_role_counts(records) -> Counter               the rule on every bundle of a run's records
    cross_role_report(counts) -> dict                   the manifest's / card's ``cross_role`` section

Labels are compared by ``label_key``.  The pool of a bundle is the labels its texts use (with ``pool``:
those plus the given ones, so a declared label nobody uses counts as unsatisfied).  A pool label
*satisfies* the rule when some text has it as a positive and a *different* text has it as a negative.

Policy for a text whose labels break the rule (one of its labels, positive or negative, does not satisfy
it): the text is **kept and counted** (``cross_role_texts_breaking``), not rejected.  Its labels are still
true and its negatives still wrong for it, only less hard; rejecting would throw away valid examples (and
nearly everything a small model writes).  The share of pool labels that satisfy the rule is reported in
the manifest and the card.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from gliznet.records import Record, label_key

POLICY = "kept and counted"


@dataclass
class CrossRole:
    """The rule on one bundle: per pool label (by ``label_key``) the texts it is positive / negative for."""

    positive_in: dict[str, list[int]] = field(default_factory=dict)
    negative_in: dict[str, list[int]] = field(default_factory=dict)
    satisfied: list[str] = field(default_factory=list)
    unsatisfied: list[str] = field(default_factory=list)
    offending: list[int] = field(default_factory=list)  # indices of the texts that use an unsatisfied label

    @property
    def pool(self) -> list[str]:
        return sorted({*self.satisfied, *self.unsatisfied})

    @property
    def share(self) -> float:
        """Share of pool labels that satisfy the rule (1.0 for an empty pool: nothing breaks it)."""
        return len(self.satisfied) / len(self.pool) if self.pool else 1.0


def _lists(item: Record | dict) -> tuple[list[str], list[str]]:
    if isinstance(item, Record):
        return item.labels, item.not_labels
    return list(item.get("labels") or []), list(item.get("not_labels") or [])


def check_cross_role(items: list[Record | dict], pool: Iterable[str] | None = None) -> CrossRole:
    """The cross-role rule on one bundle (module docstring).  ``items``: records or ``{labels, not_labels}``."""
    positive_in: dict[str, list[int]] = defaultdict(list)
    negative_in: dict[str, list[int]] = defaultdict(list)
    uses: list[set[str]] = []
    for i, item in enumerate(items):
        labels, not_labels = _lists(item)
        used = set()
        for label in labels:
            positive_in[label_key(label)].append(i)
            used.add(label_key(label))
        for label in not_labels:
            negative_in[label_key(label)].append(i)
            used.add(label_key(label))
        uses.append(used)
    keys = {*positive_in, *negative_in, *(label_key(x) for x in (pool or ()))} - {""}
    satisfied, unsatisfied = [], []
    for key in sorted(keys):
        pos, neg = positive_in.get(key, []), negative_in.get(key, [])
        ok = any(i != j for i in pos for j in neg)
        (satisfied if ok else unsatisfied).append(key)
    broken = set(unsatisfied)
    offending = [i for i, used in enumerate(uses) if used & broken]
    return CrossRole(dict(positive_in), dict(negative_in), satisfied, unsatisfied, offending)


def cross_role_counts(records: Iterable[Record]) -> Counter:
    """The rule on every bundle among ``records`` (grouped by ``provenance.bundle``; other records are
    not in a bundle and not counted)."""
    bundles: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        if record.provenance.bundle is not None:
            bundles[record.provenance.bundle].append(record)
    counts: Counter = Counter()
    for members in bundles.values():
        result = check_cross_role(members)
        counts["bundles_checked"] += 1
        counts["bundle_texts"] += len(members)
        counts["cross_role_pool_labels"] += len(result.pool)
        counts["cross_role_labels_satisfied"] += len(result.satisfied)
        counts["cross_role_texts_breaking"] += len(result.offending)
    return counts


def cross_role_report(counts: dict) -> dict:
    """The manifest's and the card's ``cross_role`` section, from ``cross_role_counts``' counts."""
    pool = int(counts.get("cross_role_pool_labels", 0))
    satisfied = int(counts.get("cross_role_labels_satisfied", 0))
    return {"bundles_checked": int(counts.get("bundles_checked", 0)),
            "texts": int(counts.get("bundle_texts", 0)),
            "pool_labels": pool, "pool_labels_satisfying_rule": satisfied,
            "share_satisfying_rule": round(satisfied / pool, 4) if pool else 0.0,
            "texts_breaking_rule": int(counts.get("cross_role_texts_breaking", 0)),
            "policy": f"texts breaking the rule are {POLICY}",
            "rule": "every pool label is a positive of one text of the bundle and a negative of another "
                    "(checked on the accepted texts, before deduplication)"}
