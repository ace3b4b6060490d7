"""A dataset folder belongs to one plan: a resume with settings that change its calls is refused, in one line.

``gliznet.generation.folder_plan.claim_plan`` keeps ``<out>/checkpoint/plan.json``; the CLI runs it with the
folder's lock held and before any LLM is started, so a refused resume asks nothing and writes nothing.  Settings
that change no call (records, concurrency, max calls, base URL) are allowed and recorded in the manifest's
``runs``.
"""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_clear_error, run_cli
from fault_proxy import plan_cli_args, plan_config

from gliznet.generation.folder_plan import NEUTRAL, PlanChanged, claim_plan, plan_path
from gliznet.generation.plan import GenerateConfig


def _a_call_was_made(out) -> None:
    (out / "checkpoint" / "calls.jsonl").write_text('{"call": 0}\n')


def test_the_first_run_writes_the_plan_and_a_neutral_change_is_recorded(tmp_path):
    runs = claim_plan(tmp_path, plan_config())
    assert len(runs) == 1 and plan_path(tmp_path).is_file()
    _a_call_was_made(tmp_path)
    runs = claim_plan(tmp_path, plan_config(records=40, concurrency=3, max_calls=20, base_url="http://x:1"))
    assert [r["records"] for r in runs] == [6, 40] and runs[-1]["concurrency"] == 3 and runs[-1]["max_calls"] == 20
    assert set(NEUTRAL) <= set(runs[-1])


@pytest.mark.parametrize(("change", "option"), [
    ({"seed": 99}, "--seed 7 (this run: 99)"),
    ({"records_per_call": 2}, "--records-per-call 4 (this run: 2)"),
    ({"model": "other"}, "--llm smollm2 (this run: other)"),
    ({"provider": "ollama"}, "--provider groq (this run: ollama)"),
    ({"bundle_size": 3}, "--bundle-size 1 (this run: 3)"),
    ({"temperature": 0.2}, "the temperature 0.8 (this run: 0.2)"),
])
def test_a_change_of_plan_is_refused_naming_the_setting_and_the_ways_on(tmp_path, change, option):
    claim_plan(tmp_path, plan_config())
    _a_call_was_made(tmp_path)
    before = plan_path(tmp_path).read_text()
    with pytest.raises(PlanChanged) as refused:
        claim_plan(tmp_path, plan_config(**change))
    message = str(refused.value)
    assert option in message and "\n" not in message
    assert "re-run with the folder's settings" in message and "new --out" in message
    assert plan_path(tmp_path).read_text() == before, "a refused run records nothing"


def test_a_plan_binds_the_folder_only_once_a_call_is_in_its_checkpoint(tmp_path):
    claim_plan(tmp_path, plan_config())  # e.g. a run that stopped on a missing API key before asking anything
    runs = claim_plan(tmp_path, plan_config(seed=99))
    assert len(runs) == 1 and json.loads(plan_path(tmp_path).read_text())["plan"]["seed"] == 99


def test_a_setting_added_to_the_config_after_the_folder_was_planned_holds_its_default(tmp_path):
    claim_plan(tmp_path, plan_config())
    _a_call_was_made(tmp_path)
    held = json.loads(plan_path(tmp_path).read_text())
    del held["plan"]["seed_texts"]  # as if the folder had been planned before the field existed
    plan_path(tmp_path).write_text(json.dumps(held))
    claim_plan(tmp_path, plan_config())  # the default: the same plan


def test_a_folder_from_before_plan_files_is_checked_against_its_first_call(tmp_path):
    from dataclasses import asdict

    from gliznet.generation.plan import plan_for
    from gliznet.generation.prompts import load_prompt

    config = plan_config()
    prompt = load_prompt(config.prompt_id)
    line = {"call": 0, "spec": asdict(plan_for(config, 0)), "provider": "groq", "model": "smollm2",
            "prompt_id": prompt.prompt_id, "prompt_hash": prompt.hash, "ok": True, "raw": "{}"}
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "calls.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(PlanChanged, match=r"call plan of call 0 differs: --seed"):
        claim_plan(tmp_path, plan_config(seed=99))
    assert not plan_path(tmp_path).exists()
    claim_plan(tmp_path, plan_config(records=30))  # the same plan: adopted
    assert plan_path(tmp_path).is_file()


def test_every_config_field_is_either_plan_or_neutral():
    from dataclasses import fields

    from gliznet.generation.folder_plan import plan_settings

    names = {f.name for f in fields(GenerateConfig)}
    assert names - set(NEUTRAL) <= set(plan_settings(plan_config())), "a field escapes the comparison"


@pytest.mark.slow
def test_resuming_with_another_seed_is_refused_and_asks_nothing(replay, tmp_path, monkeypatch):
    out = tmp_path / "hs"
    monkeypatch.setenv("GROQ_API_KEY", "plan-test")
    monkeypatch.setenv("GROQ_BASE_URL", replay.base_url)
    first = run_cli("generate", *plan_cli_args(), "--no-hardness", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    calls = (out / "checkpoint" / "calls.jsonl").read_bytes()
    asked = replay.stats()["chat_requests"]

    refused = run_cli("generate", *plan_cli_args(seed=99, records_per_call=2), "--no-hardness", "--out", str(out))
    assert_one_clear_error(refused, "--seed 7 (this run: 99)", "--records-per-call 4 (this run: 2)", "new --out")
    assert refused.returncode == 2
    assert replay.stats()["chat_requests"] == asked, "a refused run asks nothing"
    assert (out / "checkpoint" / "calls.jsonl").read_bytes() == calls

    more = run_cli("generate", *plan_cli_args(records=8), "--concurrency", "2", "--no-hardness", "--out", str(out))
    assert more.returncode == 0, more.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(r["records"], r["concurrency"]) for r in manifest["runs"]] == [(6, 4), (8, 2)]
    assert manifest["parameters"]["seed"] == 7 and manifest["parameters"]["records_per_call"] == 4
