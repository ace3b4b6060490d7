"""The release gate against the model store: what a candidate is compared with, and what a release holds."""

from __future__ import annotations

import json

from gliznet.curation.publish import latest_version
from gliznet.pipeline.release import (
    GATE_TOLERANCE,
    current_release,
    decide_release,
    measured_alike,
    release_model,
    write_release_files,
)

SETS = {"sst2.jsonl": "aaaa", "emotion.jsonl": "bbbb"}


def _candidate(score: float, sets: dict = SETS, limit: int | None = 12) -> dict:
    return {"average_macro_f1": score, "eval_sets": sets, "limit": limit, "sets": []}


def _release(tmp_path, store, version: str, frozen: dict):
    folder = tmp_path / f"model-{version}"
    folder.mkdir()
    write_release_files(folder, version, {"dataset_version": "d1"}, frozen)
    release_model(folder, store, version)


def test_summaries_compare_only_when_measured_on_the_same_sets_with_the_same_limit():
    assert measured_alike(_candidate(0.1), _candidate(0.9))
    assert not measured_alike(_candidate(0.1), _candidate(0.1, sets={"sst2.jsonl": "changed"}))
    assert not measured_alike(_candidate(0.1), _candidate(0.1, limit=None))
    assert not measured_alike({"average_macro_f1": 0.1}, _candidate(0.1))  # an old summary without identity


def test_an_empty_store_gives_a_first_release(tmp_path):
    measured = []
    decision = decide_release(_candidate(0.2), tmp_path / "store", GATE_TOLERANCE, measured.append)
    assert decision["decision"] == "released" and decision["reason"] == "first release"
    assert decision["previous_summary"] is None and measured == []


def test_a_release_measured_alike_is_compared_from_its_stored_summary(tmp_path):
    store = tmp_path / "store"
    _release(tmp_path, store, "v1", _candidate(0.99))
    measured = []
    decision = decide_release(_candidate(0.5), store, GATE_TOLERANCE, measured.append)
    assert measured == []  # not evaluated again
    assert decision["decision"] == "held" and decision["previous"] == 0.99
    assert decision["previous_version"] == "v1" and decision["previous_summary"]["average_macro_f1"] == 0.99


def test_a_release_measured_on_other_sets_is_measured_again_the_candidates_way(tmp_path):
    store = tmp_path / "store"
    _release(tmp_path, store, "v1", _candidate(0.99, sets={"sst2.jsonl": "old"}))
    measured = []

    def remeasure(release_dir):
        measured.append(release_dir)
        return {"average_macro_f1": 0.1, "sets": []}

    decision = decide_release(_candidate(0.5), store, GATE_TOLERANCE, remeasure)
    assert measured == [store / "v1"]
    assert decision["decision"] == "released" and decision["previous"] == 0.1
    assert decision["previous_summary"] == {"average_macro_f1": 0.1, "sets": []}


def test_a_released_folder_carries_lineage_frozen_eval_and_manifest(tmp_path):
    store = tmp_path / "store"
    lineage = {"dataset_fingerprint": "f" * 64, "seed": 5}
    frozen = _candidate(0.4)
    model = tmp_path / "model"
    model.mkdir()
    write_release_files(model, "2026-01-05-abcdef12-0123abcd", lineage, frozen)
    assert json.loads((model / "lineage.json").read_text()) == lineage
    assert json.loads((model / "frozen_eval.json").read_text()) == frozen
    assert json.loads((model / "manifest.json").read_text()) == {"version": "2026-01-05-abcdef12-0123abcd", **lineage}
    release_model(model, store, "2026-01-05-abcdef12-0123abcd")
    assert latest_version(store) == "2026-01-05-abcdef12-0123abcd"
    assert current_release(store) == ("2026-01-05-abcdef12-0123abcd", frozen)
