"""Generation: the call plan, prompts, the append-only checkpoint, a resumed run on the recorded answers,
and one live run on the embedded LLM (``--provider local``) that checks structure only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from fault_proxy import FaultConfig, plan_cli_args, plan_config

from gliznet._io import Checkpoint, read_jsonl
from gliznet.pipeline.generate import generate_hardset
from gliznet.generation.plan import GenerateConfig, load_topics, plan_call, prompt_text
from gliznet.generation.prompts import PromptTemplate, load_prompt
from gliznet.llm.local import LocalProvider
from gliznet.records import Provenance, parse_batch, text_key

ROOT = Path(__file__).resolve().parent.parent


def test_topic_list_has_at_least_1000_distinct_subjects():
    topics = load_topics()
    assert len({subject.lower() for _, subject in topics}) >= 1000


def test_call_plan_depends_only_on_seed_and_index():
    assert plan_call(7, 3) == plan_call(7, 3)
    assert plan_call(7, 3) != plan_call(8, 3)
    specs = [plan_call(0, i) for i in range(50)]
    assert len({s.topic for s in specs}) > 30, "topics are sampled, not repeated"
    assert len({s.genre for s in specs}) > 5


def test_prompt_hash_changes_with_template_content():
    prompt = load_prompt("hardset_batch")
    edited = PromptTemplate(prompt.prompt_id, prompt.system_source, prompt.user_source + " ")
    assert len(prompt.hash) == 16 and prompt.hash != edited.hash
    system, user = prompt.render(n_records=3, topic="bike lanes", domain="cities", genre="news report",
                                 length="one sentence", reading_level="expert", min_labels=1, max_labels=5,
                                 min_not_labels=3, max_not_labels=15)
    assert "bike lanes" in user and "JSON" in system


def test_unknown_prompt_id_names_the_parameter():
    with pytest.raises(ValueError, match="--prompt 'nope' not found"):
        load_prompt("nope")


@pytest.mark.parametrize("field,value,message", [
    ("records", 0, "--records must be >= 1"),
    ("records", -5, "--records must be >= 1"),
    ("concurrency", 0, "--concurrency must be >= 1"),
    ("records_per_call", 50, "--records-per-call must be in 1..20"),
    ("max_calls", 0, "--max-calls must be >= 1"),
])
def test_out_of_range_parameters_fail_with_the_parameter_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        GenerateConfig(**{field: value})


def test_checkpoint_drops_a_torn_last_line_and_keeps_the_rest(tmp_path):
    ck = Checkpoint(tmp_path / "calls.jsonl")
    ck.append({"call": 0, "ok": True, "raw": "{}"})
    ck.append({"call": 1, "ok": False})
    with open(ck.path, "ab") as fh:
        fh.write(b'{"call": 2, "ok": tr')  # killed mid-write
    lines = ck.load()
    assert sorted(lines) == [0, 1]
    assert ck.path.read_bytes().endswith(b"\n"), "torn line truncated so the next append starts clean"
    ck.append({"call": 2, "ok": True, "raw": "{}"})
    assert sorted(Checkpoint(ck.path).load()) == [0, 1, 2]


# --- runs ---------------------------------------------------------------------------------------



def _schema_shaped(raw: str, n_records: int) -> bool:
    """``raw`` is the JSON the request schema asks for: ``records``, ``n_records`` objects of strings."""
    try:
        items = json.loads(raw)["records"]
    except (ValueError, TypeError, KeyError):
        return False
    return len(items) == n_records and all(
        isinstance(item, dict) and set(item) == {"text", "labels", "not_labels"} and isinstance(item["text"], str)
        and all(isinstance(label, str) for label in item["labels"] + item["not_labels"]) for item in items)


@pytest.mark.slow
def test_generate_hardset_on_the_embedded_llm_keeps_the_folder_contract(tmp_path, llama_server):
    """Live smoke test of ``--provider local`` (the only test here that needs the model): structure only.
    The 135M model may answer nothing acceptable, so the run ends either with the folder contract or
    with the one clear "no record was accepted" error; either way every call is in the checkpoint and
    every answer the token limit did not cut is JSON of the request schema's shape."""
    out = tmp_path / "hs"
    config = GenerateConfig(records=8, seed=1, records_per_call=2, concurrency=4, max_calls=4, max_tokens=600)
    try:
        manifest = generate_hardset(config, out, provider_factory=lambda: LocalProvider(server=llama_server),
                                    with_hardness=True)
    except RuntimeError as err:
        assert "no record was accepted from 4 LLM calls" in str(err), err
        manifest = None
    calls = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    assert sorted(c["call"] for c in calls) == [0, 1, 2, 3], "8 records need all 4 calls of 2"
    assert all(c["provider"] == "local" and c["model"] == llama_server.alias for c in calls)
    answered = [c for c in calls if c["ok"]]
    assert answered, f"the embedded server answered no call: {calls[0].get('detail')}"
    for c in answered:
        assert c["completion_tokens"] >= config.max_tokens or _schema_shaped(c["raw"], 2), c["raw"][:300]
    if manifest is None:
        assert not (out / "manifest.json").exists()
        return
    for name in ["records.jsonl", "rejected.jsonl", "README.md", "manifest.json", "checkpoint/calls.jsonl"]:
        assert (out / name).exists(), name
    records = [row for _, row in read_jsonl(out / "records.jsonl")]
    rejected = [row for _, row in read_jsonl(out / "rejected.jsonl")]
    counts = manifest["counts"]
    assert counts["accepted"] == len(records) and counts["rejected"] == len(rejected) and counts["calls"] == 4
    # every record keeps its provenance; every rejection says why and keeps what the model wrote
    prov = records[0]["provenance"]
    assert prov["provider"] == "local" and prov["prompt_hash"] == load_prompt("hardset_batch").hash
    assert {"model", "seed", "topic", "genre", "created_at"} <= prov.keys()
    assert all(r["reason"] and "raw" in r for r in rejected)
    # datasets shaped like ZSHOT-HARDSET, with a true zero-shot split
    triplet = datasets.load_from_disk(str(out / "triplet"))
    couplet = datasets.load_from_disk(str(out / "couplet"))
    assert set(triplet) == {"train", "test"} == set(couplet)
    assert triplet["train"].column_names == ["text", "labels", "not_labels"]
    assert couplet["train"].column_names == ["text", "labels"]
    assert triplet["train"].num_rows + triplet["test"].num_rows == counts["train"] + counts["test"]
    train_labels = {l.casefold() for row in triplet["train"] for l in row["labels"] + row["not_labels"]}
    test_labels = {l.casefold() for row in triplet["test"] for l in row["labels"] + row["not_labels"]}
    assert not train_labels & test_labels
    card = (out / "README.md").read_text()
    assert card.startswith("---") and "config_name: triplet" in card and "config_name: couplet" in card
    assert "hard_negative_above_weakest_positive" in json.dumps(manifest["hardness"])
    assert len(manifest["fingerprint"]) == 64 and manifest["version"].endswith(manifest["fingerprint"][:8])


@pytest.mark.slow
def test_resume_after_sigkill_loses_nothing(tmp_path, replay):
    """A real `gliznet generate` process is SIGKILLed mid-run, then started again on the same --out
    (answers from the recording, each after 0.5 s, so the kill lands mid-generation)."""
    out = tmp_path / "hs"
    cmd = [sys.executable, "-m", "gliznet.cli", "generate", *plan_cli_args(records=100), "--concurrency", "2",
           "--no-hardness", "--out", str(out)]
    with replay.fork(FaultConfig(replay=True, replay_delay_s=0.5)) as proxy:
        env = {**os.environ, "GROQ_API_KEY": "replay-no-key", "GROQ_BASE_URL": proxy.base_url}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        calls = out / "checkpoint" / "calls.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if calls.exists() and calls.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = {c["call"]: c for _, c in read_jsonl(calls, torn_tail=True)}
        assert len(before) >= 3 and not (out / "manifest.json").exists()

        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = [row for _, row in read_jsonl(calls)]
    indices = [c["call"] for c in after]
    assert len(indices) == len(set(indices)), "no call answered twice"
    for index, line in before.items():  # nothing already generated is lost or changed
        assert next(c for c in after if c["call"] == index) == line
    manifest = json.loads((out / "manifest.json").read_text())
    records = [row for _, row in read_jsonl(out / "records.jsonl")]
    rejected = [row for _, row in read_jsonl(out / "rejected.jsonl")]
    assert manifest["counts"]["accepted"] == len(records)
    keys = [text_key(r["text"]) for r in records]
    assert len(keys) == len(set(keys)), "no record duplicated"
    # every record accepted before the kill is in the final dataset (or accounted as a near-duplicate)
    near = {text_key(json.loads(r["raw"])["text"]) for r in rejected
            if r["reason"] == "near_duplicate" and r["raw"].startswith("{")}
    config = plan_config(records=100)
    prompt = load_prompt(config.prompt_id)
    for line in before.values():
        if line.get("ok"):
            kept, _, _ = parse_batch(line["raw"], _blank(), prompt_text(prompt, line, config), config.limits)
            for record in kept:
                assert record.key in set(keys) | near




def _blank() -> Provenance:
    return Provenance(provider="", model="", prompt_id="", prompt_hash="", topic="", genre="", length="",
                      reading_level="", seed=0, created_at="")
