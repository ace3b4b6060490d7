"""The zero-shot split: whole labels are held out, so every test label is unseen in train."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from gliznet.errors import UserError
from gliznet.records import Record, label_key

TEST_LABEL_FRACTION = 0.2  # the default share of records in the zero-shot test split (generate, import)


@dataclass
class SplitResult:
    """Train and test records, the held-out labels (display form), and counts of what the split removed."""

    train: list[Record]
    test: list[Record]
    test_labels: list[str]
    counts: dict = field(default_factory=dict)


def held_out_label_keys(records: list[Record], test_label_fraction: float, seed: int) -> set[str]:
    """Seeded choice of held-out positive label keys, sized so that about ``test_label_fraction`` of
    the *records* land in test.

    Labels are visited in a seeded random order; a label is held out when the records it would move
    to test keep the test share at or under the target (the first label is always taken unless it
    alone would empty train). With multi-label records a plain share of labels would pull most
    records into test; this keeps the test split the size the caller asked for, and train non-empty.
    """
    keys = sorted({label_key(label) for r in records for label in r.labels})
    if not keys:
        return set()
    postings: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        for key in {label_key(label) for label in record.labels}:
            postings.setdefault(key, []).append(i)
    target = test_label_fraction * len(records)
    in_test = [False] * len(records)
    n_test = 0
    held: set[str] = set()
    for key in random.Random(seed).sample(keys, len(keys)):
        moved = [i for i in postings[key] if not in_test[i]]
        would_empty_train = n_test + len(moved) >= len(records) and len(keys) > 1
        if would_empty_train or (held and n_test + len(moved) > target):
            continue
        held.add(key)
        for i in moved:
            in_test[i] = True
        n_test += len(moved)
        if n_test >= target:
            break
    return held or {random.Random(seed).choice(keys)}


def zero_shot_split(records: list[Record], test_label_fraction: float = TEST_LABEL_FRACTION, seed: int = 0,
                    min_test_records: int = 1) -> SplitResult:
    """Split so that no label (by ``label_key``) occurs in both train and test.  See the module docstring.

    counts: records_train, records_test, held_out_labels, train_not_labels_removed (held-out negatives
    taken from train records), test_labels_removed / test_not_labels_removed (non-held-out labels taken
    from test records), train_records_dropped_no_label, test_records_dropped_no_label.
    """
    if not isinstance(test_label_fraction, (int, float)) or not 0.0 < test_label_fraction < 1.0:
        raise UserError(f"test_label_fraction={test_label_fraction!r} is out of range: "
                        "pass a fraction strictly between 0 and 1, e.g. 0.2")
    if min_test_records < 0:
        raise UserError(f"min_test_records={min_test_records} is negative: pass 0 or more")
    held = held_out_label_keys(records, test_label_fraction, seed)
    counts: Counter = Counter()
    train: list[Record] = []
    test: list[Record] = []
    shown: dict[str, str] = {}
    for record in records:
        if any(label_key(x) in held for x in record.labels):
            labels = [x for x in record.labels if label_key(x) in held]
            negatives = [x for x in record.not_labels if label_key(x) in held]
            counts["test_labels_removed"] += len(record.labels) - len(labels)
            counts["test_not_labels_removed"] += len(record.not_labels) - len(negatives)
            if not labels:
                counts["test_records_dropped_no_label"] += 1
                continue
            for x in [*labels, *negatives]:
                shown.setdefault(label_key(x), x)
            test.append(record.model_copy(update={"labels": labels, "not_labels": negatives}))
        else:
            negatives = [x for x in record.not_labels if label_key(x) not in held]
            counts["train_not_labels_removed"] += len(record.not_labels) - len(negatives)
            if not record.labels:
                counts["train_records_dropped_no_label"] += 1
                continue
            train.append(record.model_copy(update={"not_labels": negatives}))
    if len(test) < min_test_records:
        raise UserError(f"the split put {len(test)} records in test, fewer than min_test_records="
                        f"{min_test_records}: raise test_label_fraction, try another seed, or add records")
    counts["records_train"] = len(train)
    counts["records_test"] = len(test)
    counts["held_out_labels"] = len(held)
    test_labels = sorted((shown.get(k, k) for k in held), key=label_key)
    return SplitResult(train=train, test=test, test_labels=test_labels, counts=dict(counts))




def text_split(records: list[Record], test_fraction: float = TEST_LABEL_FRACTION, seed: int = 0) -> SplitResult:
    """Split by texts, for a run aimed at the user's own labels (``generate --labels``): every label is a target,
    so no label can be held out; each label's records are shuffled (seeded) and about ``test_fraction`` of them,
    at least one where a label has two or more, go to test.  Train and test share their labels."""
    if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise UserError(f"test_fraction={test_fraction!r} is out of range: pass a fraction strictly between 0 and 1")
    by_label: dict[str, list[Record]] = {}
    for record in records:
        by_label.setdefault(label_key(record.labels[0]), []).append(record)
    rng = random.Random(seed)
    train: list[Record] = []
    test: list[Record] = []
    for key in sorted(by_label):
        group = list(by_label[key])
        rng.shuffle(group)
        n_test = round(test_fraction * len(group)) if len(group) >= 2 else 0
        n_test = max(n_test, 1) if len(group) >= 2 else 0
        test.extend(group[:n_test])
        train.extend(group[n_test:])
    counts = {"records_train": len(train), "records_test": len(test), "held_out_labels": 0, "by_texts": 1}
    return SplitResult(train=train, test=test, test_labels=[], counts=counts)
