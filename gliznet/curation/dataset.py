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
3. ``write_records_jsonl`` / ``load_records_jsonl`` store records one JSON object a line, atomically
   (``gliznet._io``'s writer and reader).
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from gliznet.errors import UserError
from gliznet._io import atomic_write_lines, read_jsonl
from gliznet.curation.split import SplitResult
from gliznet.records import Record

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
    """Write pydantic models (Records or Rejections) one JSON object a line, atomically (``atomic_write_lines``)."""
    atomic_write_lines(path, (record.model_dump_json() for record in records))


def load_records_jsonl(path: str | os.PathLike) -> list[Record]:
    """Read records written by ``write_records_jsonl``; an invalid line raises naming its line number."""
    records = []
    for number, row in read_jsonl(path):
        try:
            records.append(Record.model_validate(row))
        except ValueError as err:
            raise UserError(f"{path}:{number} is not a record ({err.__class__.__name__}): "
                            "fix or remove that line") from err
    return records
