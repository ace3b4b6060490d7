"""bench/targeted.py's protocol: every choice (column setting, calibration, texts per label) is made on the choose
sets only, a level's data is a prefix of the next level's, and a group is topped up to its level per label."""

from __future__ import annotations

import json

import pytest

from conftest import load_bench

from gliznet.records import Provenance, Record

targeted = load_bench("targeted")


def result(choose_scores: dict, report_scores: dict) -> dict:
    sets = {"c1": dict(choose_scores), "r1": dict(report_scores)}
    for row in sets.values():
        row.update({"bare|none": 0.5, "bare|batch": 0.5})
    return {"sets": sets, "roles": {"c1": "choose", "r1": "report"}, "generation": {}}


def test_the_choice_is_made_on_the_choose_sets_only():
    r = result({"gliznet@40|none|16": 0.7, "gliznet@120|none|16": 0.6},
               {"gliznet@40|none|16": 0.1, "gliznet@120|none|16": 0.9})
    assert targeted.choose(r, "gliznet@", ["c1"]) == "gliznet@40|none|16"  # best on c1, though worst on r1
    table = targeted.table(r)
    assert "[gliznet@40|none|16]" in table and "| r1 | report | 0.5000 | 0.5000 | 0.1000 |" in table


def test_a_key_missing_on_a_choose_set_does_not_compete():
    r = result({"proto@1.0|none|48": 0.9}, {"proto@1.0|none|48": 0.9})
    r["sets"]["c2"] = {"bare|none": 0.5, "bare|batch": 0.5}
    r["roles"]["c2"] = "choose"
    assert targeted.choose(r, "proto@", ["c1", "c2"]) is None


def write_group(data, labels_dir, prefix: str = "text") -> None:
    """A generated group "g" (labels a, b) in ``data``: 6 calls of 60 s, each aimed at a or b in turn, 2 texts each."""
    out = data / "g"
    (out / "checkpoint").mkdir(parents=True)
    labels_dir.mkdir(exist_ok=True)
    (labels_dir / "g.txt").write_text("a\nb\n")
    prov = Provenance(provider="p", model="m", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                      reading_level="r", seed=0)
    calls, records = [], []
    for call in range(6):
        label = "ab"[call % 2]
        texts = [f"{prefix} {call} {i} for {label}" for i in range(2)]
        calls.append({"call": call, "ok": True, "raw": json.dumps({"texts": texts}), "llm_seconds": 60.0,
                      "completion_tokens": 10})
        records += [Record(text=t, labels=[label], not_labels=["ab"[1 - call % 2]], provenance=prov) for t in texts]
    (out / "checkpoint" / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    (out / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in reversed(records)))


def test_a_level_is_the_first_texts_of_each_label_in_call_order(tmp_path, monkeypatch):
    monkeypatch.setattr(targeted, "SOURCES", [tmp_path / "data"])
    monkeypatch.setattr(targeted, "LABELS", tmp_path / "labels")
    write_group(tmp_path / "data", tmp_path / "labels")
    two = targeted.level_records("g", 2)
    four = targeted.level_records("g", 4)
    assert [r.text for r in two] == ["text 0 0 for a", "text 0 1 for a", "text 1 0 for b", "text 1 1 for b"]
    assert {r.text for r in two} <= {r.text for r in four}
    assert targeted.level_records("g", 7) is None  # a label with fewer texts than the level: not measured
    # a level costs the calls up to the last one its texts came from (2 calls in flight: 60 s calls, 1 min for two)
    assert targeted.generation_cost("g", 2) == {"minutes": 1.0, "completion_tokens": 20, "calls": 2}
    assert targeted.generation_cost("g", 4)["calls"] == 4 and targeted.generation_cost("g", 7) == {}
    assert targeted.records_for(16, 4) == 74


def test_two_prompts_pooled_give_each_ones_level_label_by_label_and_add_their_costs(tmp_path, monkeypatch):
    monkeypatch.setattr(targeted, "LABELS", tmp_path / "labels")
    write_group(tmp_path / "plain", tmp_path / "labels", prefix="plain")
    write_group(tmp_path / "angled", tmp_path / "labels", prefix="angled")
    monkeypatch.setattr(targeted, "SOURCES", [tmp_path / "plain", tmp_path / "angled"])
    pooled = targeted.level_records("g", 2)
    assert [r.text for r in pooled] == ["plain 0 0 for a", "plain 0 1 for a", "angled 0 0 for a", "angled 0 1 for a",
                                        "plain 1 0 for b", "plain 1 1 for b", "angled 1 0 for b", "angled 1 1 for b"]
    assert targeted.generation_cost("g", 2) == {"minutes": 2.0, "completion_tokens": 40, "calls": 4}
    assert targeted.level_records("g", 7) is None
    monkeypatch.setattr(targeted, "SOURCES", [tmp_path / "plain", tmp_path / "plain"])  # a text both wrote: once
    assert [r.text for r in targeted.level_records("g", 2)] == [r.text for r in pooled if r.text.startswith("plain")]
    targeted.use_prompt("hardset_aimed+hardset_aimed_angles")
    try:
        assert [p.name for p in targeted.SOURCES] == ["data", "data-hardset_aimed_angles"]
        with pytest.raises(SystemExit, match="give one prompt id"):
            targeted.generate(None)
    finally:
        targeted.use_prompt("hardset_aimed")
