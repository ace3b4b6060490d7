"""Zero-shot split (no label in both train and test), HF datasets with exact features, JSONL storage."""

from __future__ import annotations

import os
import random

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gliznet.curation.dataset import (
    build_datasets,
    load_records_jsonl,
    save_datasets,
    write_records_jsonl,
)
from gliznet.curation.split import zero_shot_split
from gliznet.records import Provenance, Record, label_key

PROV = Provenance(provider="local", model="m", prompt_id="p", prompt_hash="h", topic="t", genre="g",
                  length="short", reading_level="adult", seed=0)
VOCAB = ["sports", "Sports", "politics", "Customer_Support", "customer support", "billing", "weather", "travel",
         "finance", "health", "music", "cooking", "gaming", "science", "art", "law", "education", "pets"]


def rec(i: int, labels, not_labels) -> Record:
    return Record(text=f"text number {i} with enough characters", labels=list(labels),
                  not_labels=list(not_labels), provenance=PROV)


def random_records(seed: int, n: int = 60) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        labels = rng.sample(VOCAB, rng.randint(1, 4))
        keys = {label_key(x) for x in labels}
        negatives = [x for x in rng.sample(VOCAB, rng.randint(0, 8)) if label_key(x) not in keys]
        out.append(rec(i, labels, negatives))
    return out


def keys_of(records: list[Record]) -> set[str]:
    return {label_key(x) for r in records for x in [*r.labels, *r.not_labels]}


def check_invariants(records: list[Record], split) -> None:
    assert keys_of(split.train).isdisjoint(keys_of(split.test))
    assert all(r.labels for r in split.train + split.test)
    assert {label_key(x) for x in split.test_labels} >= keys_of(split.test)
    dropped = split.counts.get("test_records_dropped_no_label", 0) + split.counts.get(
        "train_records_dropped_no_label", 0)
    assert len(split.train) + len(split.test) + dropped == len(records)   # nothing silently lost


@pytest.mark.parametrize("seed", range(25))
def test_no_label_key_is_in_both_train_and_test(seed):
    records = random_records(seed)
    split = zero_shot_split(records, test_label_fraction=0.25, seed=seed)
    check_invariants(records, split)
    assert split.train and split.test


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), fraction=st.floats(0.05, 0.95))
def test_split_invariant_holds_for_any_records_and_fraction(seed, n, fraction):
    records = random_records(seed, n)
    split = zero_shot_split(records, test_label_fraction=fraction, seed=seed, min_test_records=0)
    check_invariants(records, split)


def test_split_is_seeded_and_case_insensitive():
    records = random_records(3)
    a = zero_shot_split(records, 0.3, seed=11)
    b = zero_shot_split(records, 0.3, seed=11)
    assert a.test_labels == b.test_labels and [r.text for r in a.test] == [r.text for r in b.test]
    # "Sports" and "sports" (and Customer_Support / customer support) are one label: never split apart
    for pair in (("sports", "Sports"), ("Customer_Support", "customer support")):
        in_test = [any(x in r.labels + r.not_labels for r in a.test) for x in pair]
        in_train = [any(x in r.labels + r.not_labels for r in a.train) for x in pair]
        assert not (any(in_test) and any(in_train))


def test_split_removes_held_out_negatives_from_train_and_foreign_labels_from_test_and_counts_them():
    records = [rec(0, ["A"], ["B", "C"]), rec(1, ["B", "A"], ["C", "D"]), rec(2, ["C"], ["A", "B"]),
               rec(3, ["D"], ["B", "A"])]
    split = None
    for seed in range(50):   # find the seed that holds out exactly "b"
        split = zero_shot_split(records, test_label_fraction=0.25, seed=seed)
        if split.test_labels == ["B"]:
            break
    assert split.test_labels == ["B"]
    assert [(r.labels, r.not_labels) for r in split.test] == [(["B"], [])]
    assert [(r.labels, r.not_labels) for r in split.train] == [(["A"], ["C"]), (["C"], ["A"]), (["D"], ["A"])]
    assert split.counts["test_labels_removed"] == 1          # "A" taken from record 1
    assert split.counts["test_not_labels_removed"] == 2      # "C", "D" taken from record 1
    assert split.counts["train_not_labels_removed"] == 3     # "B" from records 0, 2, 3
    assert split.counts["records_train"] == 3 and split.counts["records_test"] == 1


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan")])
def test_bad_fraction_is_refused_naming_the_parameter(fraction):
    with pytest.raises(ValueError, match="test_label_fraction"):
        zero_shot_split(random_records(0), test_label_fraction=fraction)


def test_too_few_test_records_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="min_test_records"):
        zero_shot_split(random_records(0, 10), test_label_fraction=0.1, min_test_records=1000)


def test_build_datasets_features_match_exactly():
    split = zero_shot_split(random_records(1), 0.25, seed=1)
    built = build_datasets(split)
    assert set(built) == {"triplet", "couplet"}
    string_list = datasets.List(datasets.Value("string")) if hasattr(datasets, "List") else \
        datasets.Sequence(datasets.Value("string"))
    assert built["triplet"]["train"].features == datasets.Features(
        {"text": datasets.Value("string"), "labels": string_list, "not_labels": string_list})
    assert built["couplet"]["test"].features == datasets.Features(
        {"text": datasets.Value("string"), "labels": string_list})
    for name in ("triplet", "couplet"):
        assert set(built[name]) == {"train", "test"}
        assert built[name]["train"].num_rows == len(split.train)
        assert built[name]["test"].num_rows == len(split.test)
    row = built["triplet"]["test"][0]
    assert row == {"text": split.test[0].text, "labels": split.test[0].labels,
                   "not_labels": split.test[0].not_labels}


def test_build_datasets_with_an_empty_split_keeps_features(tmp_path):
    split = zero_shot_split(random_records(2, 5), 0.5, seed=0)
    split.test = []
    built = build_datasets(split)
    assert built["triplet"]["test"].num_rows == 0
    save_datasets(built, tmp_path)
    for name in ("triplet", "couplet"):
        loaded = datasets.load_from_disk(str(tmp_path / name))
        assert loaded["test"].num_rows == 0 and loaded["test"].features == built[name]["test"].features
        assert loaded["train"].num_rows == len(split.train)


def test_jsonl_round_trip_is_atomic_and_lossless(tmp_path):
    records = random_records(4, 20)
    path = tmp_path / "sub" / "records.jsonl"
    write_records_jsonl(path, records)
    assert load_records_jsonl(path) == records
    assert os.listdir(path.parent) == ["records.jsonl"]   # no temp file left behind


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "records.jsonl"
    write_records_jsonl(path, random_records(5, 3))
    before = path.read_text()

    class Boom:
        def model_dump_json(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_records_jsonl(path, [*random_records(6, 3), Boom()])
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["records.jsonl"]


def test_loading_a_corrupt_line_names_the_line(tmp_path):
    path = tmp_path / "records.jsonl"
    write_records_jsonl(path, random_records(7, 2))
    with open(path, "a") as f:
        f.write('{"text": "half a record"\n')
    with pytest.raises(ValueError, match=r"records.jsonl:3"):
        load_records_jsonl(path)


@pytest.mark.parametrize("seed", range(8))
def test_test_split_size_follows_the_fraction_even_with_multi_label_records(seed):
    records = random_records(seed, n=400)
    split = zero_shot_split(records, test_label_fraction=0.2, seed=seed)
    kept = len(split.train) + len(split.test)
    assert split.train, "train is never emptied"
    assert 0.02 <= len(split.test) / kept <= 0.3
    assert not keys_of(split.train) & keys_of(split.test)


def test_tiny_sets_keep_a_non_empty_train():
    for seed in range(20):
        split = zero_shot_split(random_records(seed, n=4), test_label_fraction=0.2, seed=seed, min_test_records=0)
        assert split.train
