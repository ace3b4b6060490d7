"""Seed-grounded generation (``--seed-texts``): passages drawn deterministically from the run seed, never reused
before the pool is exhausted (then a counted second pass), the passage id in every record's provenance, and one
clear error for a source that cannot be used."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_clear_error, run_cli
from scripted_llm import ScriptedProvider

from gliznet._io import read_jsonl
from gliznet.pipeline.generate import generate_hardset
from gliznet.errors import UserError
from gliznet.generation import seeds
from gliznet.generation.plan import GenerateConfig, plan_for, render_call
from gliznet.generation.prompts import load_prompt
from gliznet.generation.seeds import load_seed_texts, seed_counts
from gliznet.records import Provenance


@pytest.fixture
def passages(tmp_path):
    path = tmp_path / "passages.jsonl"
    rows = [{"id": f"p{i}", "body": f"Passage number {i} tells of a harbour town and its fishing fleet."}
            for i in range(5)]
    rows.append({"id": "blank", "body": "   "})  # empty passages are skipped
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    yield path
    load_seed_texts.cache_clear()


def test_passages_are_drawn_deterministically_and_never_reused_before_the_pool_is_exhausted(passages):
    pool = load_seed_texts(f"{passages}:body")
    assert [p.id for p in pool.passages] == ["p0", "p1", "p2", "p3", "p4"]
    first = [pool.pick(7, i) for i in range(5)]
    assert sorted(p.id for p, _ in first) == ["p0", "p1", "p2", "p3", "p4"] and {n for _, n in first} == {0}
    assert first == [pool.pick(7, i) for i in range(5)], "the same seed draws the same passages"
    assert [p.id for p, _ in first] != [pool.pick(8, i)[0].id for i in range(5)], "another seed, another order"
    second = [pool.pick(7, i) for i in range(5, 10)]
    assert sorted(p.id for p, _ in second) == ["p0", "p1", "p2", "p3", "p4"] and {n for _, n in second} == {1}


def test_a_seeded_call_carries_its_passage_into_the_plan_and_the_prompt(passages):
    config = GenerateConfig(seed=7, seed_texts=f"{passages}:body", records_per_call=2)
    assert config.prompt_id == "hardset_seeded"
    spec = plan_for(config, 3)
    passage, _ = load_seed_texts(config.seed_texts).pick(7, 3)
    assert (spec.seed_id, spec.seed_text, spec.seed_pass) == (passage.id, passage.text, 0)
    user = render_call(load_prompt(config.prompt_id), spec, config)[1]
    assert passage.text in user and "into 2 different texts" in user
    bundled = GenerateConfig(seed=7, seed_texts=f"{passages}:body", bundle_size=3)
    assert bundled.prompt_id == "hardset_bundle"
    assert passage.text in render_call(load_prompt("hardset_bundle"), plan_for(bundled, 3), bundled)[1]


def test_txt_files_give_one_passage_a_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("first passage about kettles\n\nsecond passage about trains\n")
    pool = load_seed_texts(str(path))
    assert [(p.id, p.text) for p in pool.passages] == [("p.txt:1", "first passage about kettles"),
                                                       ("p.txt:3", "second passage about trains")]


@pytest.mark.parametrize("make, problem", [
    (lambda d: f"{d}/missing.jsonl", "no such file"),
    (lambda d: f"{d}/p.jsonl:nope", "no column 'nope' (columns: body, id)"),
    (lambda d: f"{d}/empty.jsonl:body", "column 'body' holds no non-empty text"),
    (lambda d: f"{d}/p.jsonl", "no column 'text'"),
])
def test_a_bad_seed_source_is_one_user_error_naming_the_fix(tmp_path, make, problem):
    (tmp_path / "p.jsonl").write_text('{"id": 1, "body": "a passage"}\n')
    (tmp_path / "empty.jsonl").write_text('{"id": 1, "body": ""}\n{"id": 2, "body": null}\n')
    with pytest.raises(UserError, match="--seed-texts") as err:
        GenerateConfig(seed_texts=make(tmp_path))
    message = str(err.value)
    assert problem in message and "\n" not in message and ": " in message.split(problem, 1)[1]


def test_a_hub_dataset_goes_through_datasets_load_dataset(monkeypatch):
    import datasets

    asked = []

    def fake_load_dataset(name, split):
        asked.append((name, split))
        return datasets.Dataset.from_dict({"id": ["a", "b"], "article": ["first passage", "second passage"]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    pool = seeds.load_seed_texts("someone/wiki-paragraphs:validation:article")
    assert asked == [("someone/wiki-paragraphs", "validation")]
    assert [(p.id, p.text) for p in pool.passages] == [("a", "first passage"), ("b", "second passage")]
    with pytest.raises(UserError, match="no column 'text' .*columns: article, id"):
        seeds.load_seed_texts("someone/wiki-paragraphs")
    load_seed_texts.cache_clear()


def test_seed_counts_count_reuse_after_the_pool_is_exhausted():
    specs = [{"seed_id": "p1", "seed_pass": 0}, {"seed_id": "p2", "seed_pass": 0}, {"seed_id": "p1", "seed_pass": 1},
             {"seed_id": None}]
    assert seed_counts(specs) == {"seeded_calls": 3, "seed_passages_used": 2, "seeded_calls_reusing_a_passage": 1}


def test_old_records_without_seed_or_bundle_fields_still_load():
    old = {"provider": "groq", "model": "m", "prompt_id": "hardset_batch", "prompt_hash": "h", "topic": "t",
           "genre": "g", "length": "l", "reading_level": "r", "seed": 1, "created_at": "2025-01-01T00:00:00+00:00"}
    prov = Provenance.model_validate(old)
    assert prov.seed_id is None and prov.bundle is None


@pytest.mark.slow
def test_a_seeded_run_records_passage_ids_and_counts_the_second_pass(passages, tmp_path):
    config = GenerateConfig(records=14, seed=2, provider="local", records_per_call=2, max_calls=7, concurrency=2,
                            seed_texts=f"{passages}:body")
    manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False,
                                provider_factory=lambda: ScriptedProvider())
    records = [row for _, row in read_jsonl(tmp_path / "hs" / "records.jsonl")]
    assert {r["provenance"]["seed_id"] for r in records} == {"p0", "p1", "p2", "p3", "p4"}
    assert {r["provenance"]["prompt_id"] for r in records} == {"hardset_seeded"}
    calls = [row for _, row in read_jsonl(tmp_path / "hs" / "checkpoint" / "calls.jsonl")]
    assert sorted(c["spec"]["seed_pass"] for c in calls) == [0, 0, 0, 0, 0, 1, 1]
    assert manifest["seed_texts"] == {**manifest["seed_texts"], "passages_available": 5, "calls_grounded": 7,
                                      "passages_used": 5, "calls_reusing_a_passage": 2}
    assert "## Seed passages" in (tmp_path / "hs" / "README.md").read_text()


@pytest.mark.slow
def test_the_cli_names_the_fix_for_a_missing_seed_file(tmp_path):
    done = run_cli("generate", "--out", str(tmp_path / "o"), "--provider", "groq", "--seed-texts",
                   str(tmp_path / "nope.jsonl"), "--records", "2")
    assert_one_clear_error(done, "--seed-texts", "no such file")
