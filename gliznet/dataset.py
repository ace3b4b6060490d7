"""The ZSHOT-HARDSET dataset: a zero-shot train/test split and its Hugging Face form.

Zero-shot means the test set is scored on labels the model never saw while training.  The split
therefore works on *labels*, not records:

1. ``zero_shot_split`` picks a seeded share of the positive label keys (``label_key``) as held-out
   labels ``H``.  A record with a positive label in ``H`` goes to test and keeps only its ``H`` labels
   (positives and negatives); every other record goes to train and loses any ``H`` label from its
   ``not_labels``.  Records left with nothing to learn from are dropped and counted, never silently.
   Invariant: ``{label_key(l) for l in test} & {label_key(l) for l in train} == set()``.
2. ``build_datasets`` turns the split into two ``datasets.DatasetDict`` (train, test) with explicit
   features: ``triplet`` (text, labels, not_labels) and ``couplet`` (text, labels); ``save_datasets``
   writes them so that even an empty split loads back.
3. ``write_records_jsonl`` / ``load_records_jsonl`` store records one JSON object a line, atomically.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from gliznet.records import Record, label_key


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


def zero_shot_split(records: list[Record], test_label_fraction: float = 0.2, seed: int = 0,
                    min_test_records: int = 1) -> SplitResult:
    """Split so that no label (by ``label_key``) occurs in both train and test.  See the module docstring.

    counts: records_train, records_test, held_out_labels, train_not_labels_removed (held-out negatives
    taken from train records), test_labels_removed / test_not_labels_removed (non-held-out labels taken
    from test records), train_records_dropped_no_label, test_records_dropped_no_label.
    """
    if not isinstance(test_label_fraction, (int, float)) or not 0.0 < test_label_fraction < 1.0:
        raise ValueError(f"test_label_fraction={test_label_fraction!r} is out of range: "
                         "pass a fraction strictly between 0 and 1, e.g. 0.2")
    if min_test_records < 0:
        raise ValueError(f"min_test_records={min_test_records} is negative: pass 0 or more")
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
        raise ValueError(f"the split put {len(test)} records in test, fewer than min_test_records="
                         f"{min_test_records}: raise test_label_fraction, try another seed, or add records")
    counts["records_train"] = len(train)
    counts["records_test"] = len(test)
    counts["held_out_labels"] = len(held)
    test_labels = sorted((shown.get(k, k) for k in held), key=label_key)
    return SplitResult(train=train, test=test, test_labels=test_labels, counts=dict(counts))


# ------------------------------------------------------------------------------------ HF datasets


def _string_list() -> datasets.features.features.FeatureType:
    """``list<string>`` in the installed ``datasets`` (``List`` since 4.0, ``Sequence`` before)."""
    if hasattr(datasets, "List"):
        return datasets.List(datasets.Value("string"))
    return datasets.Sequence(datasets.Value("string"))


def triplet_features() -> datasets.Features:
    return datasets.Features({"text": datasets.Value("string"), "labels": _string_list(),
                              "not_labels": _string_list()})


def couplet_features() -> datasets.Features:
    return datasets.Features({"text": datasets.Value("string"), "labels": _string_list()})


def _table(records: list[Record], features: datasets.Features) -> datasets.Dataset:
    columns = {name: [getattr(r, name) for r in records] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


def build_datasets(split: SplitResult) -> dict[str, datasets.DatasetDict]:
    """``{"triplet": DatasetDict(train, test), "couplet": DatasetDict(train, test)}`` with explicit features."""
    out = {}
    for name, features in (("triplet", triplet_features()), ("couplet", couplet_features())):
        out[name] = datasets.DatasetDict({"train": _table(split.train, features),
                                          "test": _table(split.test, features)})
    return out


def save_datasets(built: dict[str, datasets.DatasetDict], out_dir: str | os.PathLike) -> None:
    """``DatasetDict.save_to_disk`` of each config into ``out_dir/<config>``.

    An empty split is saved as one (empty) shard: plain ``save_to_disk`` writes zero shards for it,
    which ``datasets.load_from_disk`` then cannot read back.
    """
    for name, dsd in built.items():
        shards = {split: 1 for split, ds in dsd.items() if ds.num_rows == 0}
        dsd.save_to_disk(str(Path(out_dir) / name), num_shards=shards or None)


# ------------------------------------------------------------------------------------------ JSONL


def write_records_jsonl(path: str | os.PathLike, records: list) -> None:
    """Write pydantic models (Records or Rejections) one JSON object a line, atomically (temp + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for record in records:
                f.write(record.model_dump_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_records_jsonl(path: str | os.PathLike) -> list[Record]:
    """Read records written by ``write_records_jsonl``; an invalid line raises naming its line number."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(Record.model_validate_json(line))
            except ValueError as err:
                raise ValueError(f"{path}:{number} is not a record ({err.__class__.__name__}): "
                                 "fix or remove that line") from err
    return records
