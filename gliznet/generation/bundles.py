"""Cross-role bundles (``--bundle-size K``): one call asks for K texts over one shared label pool, under the
*cross-role rule*: every pool label is a positive (``labels``) of one text of the bundle and a hard negative
(``not_labels``) of another.  A negative that is a positive elsewhere in the bundle is exactly the hard case
a classifier must learn.  The LLM is asked to follow the rule; this module *checks* it.

    check_cross_role(items, pool=None) -> CrossRole    the rule on one bundle (a pure function)
    cross_role_counts(records) -> Counter               the rule on every bundle of a run's records
    apply_cross_role_policy(records, policy)            keep, or reject (counted) the texts that break it
    cross_role_report(counts, policy) -> dict           the manifest's / card's ``cross_role`` section

Labels are compared by ``label_key``.  The pool of a bundle is the labels its texts use (with ``pool``:
those plus the given ones, so a declared label nobody uses counts as unsatisfied).  A pool label
*satisfies* the rule when some text has it as a positive and a *different* text has it as a negative.

Policy for a text whose labels break the rule (one of its labels, positive or negative, does not satisfy
it), chosen per run with ``--cross-role-policy`` (``CROSS_ROLE_POLICIES``):

* ``keep`` (the default): the text is **kept and counted** (``cross_role_texts_breaking``).  Its labels are
  still true and its negatives still wrong for it, only less hard; rejecting would throw away valid examples
  (and nearly everything a small model writes).
* ``reject``: the text is counted the same way and **rejected** with reason ``cross_role_broken``
  (``RejectReason``; in ``rejected.jsonl``, the manifest's and the card's rejections by reason, and
  ``cross_role_texts_rejected``).  The rule is judged once per bundle on all its valid texts, before
  anything is removed: rejecting a text does not make another text of its bundle break the rule.

The share of pool labels that satisfy the rule is reported in the manifest and the card, with the policy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from gliznet.errors import UserError
from gliznet.records import Record, Rejection, RejectReason, label_key

CROSS_ROLE_POLICIES = ("keep", "reject")  # --cross-role-policy; "keep" is the default
POLICY_WORDS = {"keep": "kept and counted", "reject": "rejected as cross_role_broken and counted"}


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
    records = list(records)
    counts: Counter = Counter()
    for positions in _bundles(records).values():
        members = [records[i] for i in positions]
        result = check_cross_role(members)
        counts["bundles_checked"] += 1
        counts["bundle_texts"] += len(members)
        counts["cross_role_pool_labels"] += len(result.pool)
        counts["cross_role_labels_satisfied"] += len(result.satisfied)
        counts["cross_role_texts_breaking"] += len(result.offending)
    return counts


def check_policy(policy: str) -> str:
    """``policy`` if it is one of ``CROSS_ROLE_POLICIES``, else one ``ValueError`` naming the choices."""
    if policy not in CROSS_ROLE_POLICIES:
        raise UserError(f"--cross-role-policy '{policy}' is unknown: use one of {', '.join(CROSS_ROLE_POLICIES)}")
    return policy


def _bundles(records: Iterable[Record]) -> dict[int, list[int]]:
    """Positions of the bundled records, grouped by ``provenance.bundle`` (unbundled records are left out)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if record.provenance.bundle is not None:
            groups[record.provenance.bundle].append(i)
    return groups


def apply_cross_role_policy(records: list[Record], policy: str) -> tuple[list[Record], list[Rejection], Counter]:
    """``policy`` on the texts that break the rule in their bundle: ``keep`` returns the records as they are;
    ``reject`` moves each breaking text to a ``cross_role_broken`` rejection naming its unsatisfied labels.
    Returns (kept records, rejections, counts: ``cross_role_texts_rejected``)."""
    check_policy(policy)
    if policy == "keep":
        return list(records), [], Counter()
    drop: dict[int, list[str]] = {}
    for bundle, positions in _bundles(records).items():
        result = check_cross_role([records[i] for i in positions])
        broken = set(result.unsatisfied)
        for j in result.offending:
            record = records[positions[j]]
            drop[positions[j]] = sorted({label_key(x) for x in (*record.labels, *record.not_labels)} & broken)
    rejections = [Rejection(reason=RejectReason.cross_role_broken,
                            detail=f"bundle {records[i].provenance.bundle}: label(s) {', '.join(labels)} are not "
                                   "a positive of one text and a negative of another",
                            raw=records[i].model_dump_json(exclude={"provenance"}), provenance=records[i].provenance)
                  for i, labels in sorted(drop.items())]
    kept = [r for i, r in enumerate(records) if i not in drop]
    return kept, rejections, Counter({"cross_role_texts_rejected": len(rejections)} if rejections else {})


def cross_role_report(counts: dict, policy: str = "keep") -> dict:
    """The manifest's and the card's ``cross_role`` section, from ``cross_role_counts``' counts."""
    pool = int(counts.get("cross_role_pool_labels", 0))
    satisfied = int(counts.get("cross_role_labels_satisfied", 0))
    return {"bundles_checked": int(counts.get("bundles_checked", 0)),
            "texts": int(counts.get("bundle_texts", 0)),
            "pool_labels": pool, "pool_labels_satisfying_rule": satisfied,
            "share_satisfying_rule": round(satisfied / pool, 4) if pool else 0.0,
            "texts_breaking_rule": int(counts.get("cross_role_texts_breaking", 0)),
            "texts_rejected": int(counts.get("cross_role_texts_rejected", 0)),
            "policy": f"texts breaking the rule are {POLICY_WORDS[check_policy(policy)]}",
            "rule": "every pool label is a positive of one text of the bundle and a negative of another "
                    "(checked on the accepted texts, before deduplication)"}
