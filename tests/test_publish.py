"""Snapshots: stable fingerprints, immutable versions, an atomic ``latest``, card metadata merge."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from gliznet.curation import publish
from gliznet.curation.publish import (
    dataset_fingerprint,
    latest_version,
    merge_card_metadata,
    publish_local,
    version_tag,
)
from gliznet.pipeline.release import release_gate

ROWS = [{"text": f"text number {i}", "labels": [f"l{i % 3}", "x"], "not_labels": [f"n{i % 5}"]} for i in range(30)]


def test_fingerprint_is_stable_under_shuffling_of_records_and_labels():
    shuffled = [dict(r, labels=list(reversed(r["labels"]))) for r in ROWS]
    random.Random(3).shuffle(shuffled)
    assert dataset_fingerprint({"train": ROWS[:20], "test": ROWS[20:]}) == \
        dataset_fingerprint({"test": shuffled[:0] + [r for r in shuffled if r["text"] in {x["text"] for x in ROWS[20:]}],
                             "train": [r for r in shuffled if r["text"] in {x["text"] for x in ROWS[:20]}]})


def test_fingerprint_changes_with_content_or_split():
    base = dataset_fingerprint({"train": ROWS[:20], "test": ROWS[20:]})
    assert base != dataset_fingerprint({"train": ROWS[:19], "test": ROWS[19:]})
    edited = [dict(ROWS[0], text="text number 0!")] + ROWS[1:20]
    assert base != dataset_fingerprint({"train": edited, "test": ROWS[20:]})


def _folder(tmp_path, name, version):
    src = tmp_path / name
    (src / "triplet").mkdir(parents=True)
    (src / "triplet" / "data.arrow").write_bytes(b"x" * 1000)
    (src / "manifest.json").write_text(json.dumps({"version": version}))
    return src


def test_publish_local_is_immutable_and_moves_latest(tmp_path):
    store = tmp_path / "store"
    v1 = publish_local(_folder(tmp_path, "a", "2026-11-25-aaaaaaaa"), store)
    assert latest_version(store) == "2026-11-25-aaaaaaaa" and (v1 / "manifest.json").exists()
    (tmp_path / "a" / "triplet" / "data.arrow").write_bytes(b"changed")
    publish_local(tmp_path / "a", store)  # same version again: the stored copy is not overwritten
    assert (v1 / "triplet" / "data.arrow").read_bytes() == b"x" * 1000
    publish_local(_folder(tmp_path, "b", "2026-12-02-bbbbbbbb"), store)
    assert latest_version(store) == "2026-12-02-bbbbbbbb"


def test_failure_mid_publish_leaves_latest_on_the_previous_version(tmp_path, monkeypatch):
    store = tmp_path / "store"
    publish_local(_folder(tmp_path, "a", "v1"), store)
    real_copytree = shutil.copytree

    def copy_then_die(src, dst, *args, **kwargs):
        real_copytree(src, dst, *args, **kwargs)  # the files are there, the rename never happens
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", copy_then_die)
    with pytest.raises(OSError, match="No space left"):
        publish_local(_folder(tmp_path, "b", "v2"), store)
    assert latest_version(store) == "v1"
    assert not (store / "v2").exists()
    assert [p.name for p in store.iterdir() if p.name.startswith(".")] == [], "no half snapshot left behind"


def test_card_metadata_merge_keeps_hub_fields_and_adds_ours():
    hub = {"configs": [{"config_name": "triplet", "data_files": "hub"}], "license": "mit", "tags": ["a"],
           "dataset_info": {"x": 1}}
    ours = {"configs": [{"config_name": "triplet", "data_files": "ours"}], "license": "apache-2.0",
            "tags": ["a", "zero-shot"], "task_categories": ["zero-shot-classification"]}
    merged = merge_card_metadata(hub, ours)
    assert merged["configs"] == hub["configs"] and merged["license"] == "mit"
    assert merged["tags"] == ["a", "zero-shot"] and merged["task_categories"] == ["zero-shot-classification"]
    assert merged["dataset_info"] == {"x": 1}


def test_publish_hub_without_token_names_hf_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ValueError, match="HF_TOKEN is not set"):
        publish.publish_hub(_folder(tmp_path, "a", "v1"), "me/ds")


def test_version_tag_is_date_plus_short_fingerprint():
    import datetime

    assert version_tag("0123456789abcdef", datetime.date(2026, 11, 25)) == "2026-11-25-01234567"


@pytest.mark.parametrize("candidate,previous,decision", [
    (0.50, None, "released"), (0.50, 0.50, "released"), (0.495, 0.50, "released"), (0.45, 0.50, "held"),
])
def test_release_gate_holds_a_model_worse_than_the_tolerance(candidate, previous, decision):
    assert release_gate(candidate, previous, tolerance=0.01).decision == decision

