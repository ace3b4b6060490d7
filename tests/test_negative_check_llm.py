"""``--negative-check llm``: a second pass asks the run's own LLM, one call per record, which listed negatives are
actually true; flagged negatives are dropped and counted like ``embed``'s, through an append-only checkpoint that a
resumed run (even after SIGKILL) continues with nothing lost or asked twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from scripted_llm import ScriptedOpenAI, ScriptedProvider

from gliznet._io import read_jsonl
from gliznet.curation.hardset import NothingAccepted
from gliznet.pipeline.generate import generate_hardset
from gliznet.curation.negatives import check_negatives_llm
from gliznet.generation.plan import GenerateConfig
from gliznet.records import Provenance, Record, text_key

ROOT = Path(__file__).resolve().parent.parent
PROV = Provenance(provider="t", model="t", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                  reading_level="r", seed=0)


def _record(text: str, not_labels: list[str]) -> Record:
    return Record(text=text, labels=["kettle"], not_labels=not_labels, provenance=PROV)


def _answer(named) -> dict:
    return {"ok": True, "raw": json.dumps({"true_labels": named})}


def test_negatives_the_llm_names_as_true_are_dropped_and_counted():
    records = [_record("a kettle review that is long enough", ["Toaster", "oven", "fridge"]),
               _record("no answer arrived for this record", ["a", "b", "c"]),
               _record("the answer to this one is garbage", ["a", "b", "c"]),
               _record("nothing named for this record", ["a", "b", "c"])]
    answers = {records[0].key: _answer(["toaster", "not listed"]),
               records[1].key: {"ok": False, "failure": "transport"},
               records[2].key: {"ok": True, "raw": "no json here"},
               records[3].key: _answer([])}
    checked = check_negatives_llm(records, answers, min_not_labels=3)
    assert [r.not_labels for r in checked.records] == [["oven", "fridge"], ["a", "b", "c"], ["a", "b", "c"],
                                                       ["a", "b", "c"]]
    assert checked.counts == {"negatives_checked": 6, "negatives_dropped_suspect_false_negative": 1,
                              "records_with_suspect_negative": 1, "records_below_min_not_labels_after_check": 1,
                              "negative_check_unknown_labels": 1, "negative_check_records_unanswered": 1,
                              "negative_check_answers_invalid": 1}
    report = checked.report
    assert (report["mode"], report["negatives_checked"], report["negatives_dropped"]) == ("llm", 6, 1)
    assert report["suspect_false_negative_rate"] == round(1 / 6, 4) and report["records_scored"] == 2


@pytest.mark.slow
def test_an_llm_checked_run_drops_counts_and_on_rerun_asks_nothing_again(tmp_path):
    config = GenerateConfig(records=6, seed=1, provider="local", bundle_size=3, max_calls=2, concurrency=2)
    llm = ScriptedProvider()
    manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False, negative_check="llm",
                                provider_factory=lambda: llm)
    asked = [p for p in llm.prompts if "listed as WRONG" in p]
    assert len(asked) == 6, "one check call per record"
    counts, check = manifest["counts"], manifest["negative_check"]
    assert counts["negatives_dropped_suspect_false_negative"] == 6 and counts["negative_check_unknown_labels"] == 6
    assert check["mode"] == "llm" and check["negatives_checked"] == 18 and check["negatives_dropped"] == 6
    assert manifest["llm_usage"]["calls"] == 2 + 6, "the check's calls count in the run's usage and cost"
    lines = [row for _, row in read_jsonl(tmp_path / "hs" / "checkpoint" / "negative_check.jsonl")]
    assert len(lines) == 6 and all(line["ok"] and line["prompt_id"] == "negative_check" for line in lines)
    records = [row for _, row in read_jsonl(tmp_path / "hs" / "records.jsonl")]
    assert len(records) == 6 and all(len(r["not_labels"]) == 2 for r in records), "each lost its first negative"
    again = ScriptedProvider()
    rerun = generate_hardset(config, tmp_path / "hs", with_hardness=False, negative_check="llm",
                             provider_factory=lambda: again)
    assert again.prompts == [] and rerun["fingerprint"] == manifest["fingerprint"]


@pytest.mark.slow
def test_an_llm_check_resumes_after_sigkill_with_nothing_lost_or_repeated(tmp_path):
    """The real CLI through the openai provider against a scripted OpenAI server (slow answers to the check), killed
    with SIGKILL while the check pass runs, then started again on the same folder."""
    out = tmp_path / "hs"
    check_file = out / "checkpoint" / "negative_check.jsonl"
    with ScriptedOpenAI(check_delay_s=0.25) as server:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "scripted"}
        command = [sys.executable, "-m", "gliznet.cli", "generate", "--out", str(out), "--provider", "openai",
                   "--base-url", server.base_url, "--llm", ScriptedOpenAI.MODEL, "--records", "15", "--bundle-size",
                   "3", "--max-calls", "5", "--concurrency", "1", "--negative-check", "llm", "--no-hardness"]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if check_file.exists() and check_file.read_text().count("\n") >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the kill: " + proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = check_file.read_text().splitlines()
        assert 4 <= len(before) < 15 and not (out / "manifest.json").exists()
        resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        asked = Counter(p for p in server.prompts if "listed as WRONG" in p)
    after = check_file.read_text().splitlines()
    assert after[:len(before)] == before, "every answer written before the kill is kept unchanged"
    keys = Counter(row["record"] for _, row in read_jsonl(check_file))
    records = [row for _, row in read_jsonl(out / "records.jsonl")]
    assert len(records) == 15 and set(keys) == {text_key(r["text"]) for r in records}
    assert set(keys.values()) == {1}, "no record was checked twice"
    assert sum(asked.values()) - len(keys) <= 1, "at most the call in flight at the kill was asked again"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["negatives_dropped_suspect_false_negative"] == 15
    assert all(len(r["not_labels"]) == 2 for r in records), "each record lost exactly its named negative"


@pytest.mark.slow
def test_bundles_seeds_and_the_llm_check_run_live_on_the_embedded_model(tmp_path, llama_server):
    """Structure and accounting only: the 135M model writes meaningless content (it may give nothing acceptable)."""
    passages = tmp_path / "passages.jsonl"
    passages.write_text("\n".join(json.dumps({"id": f"p{i}", "text": f"The harbour town of Port {i} lives from "
                                              "fishing; storms closed the port twice this winter."}) for i in range(3)))
    config = GenerateConfig(records=6, seed=5, provider="openai", model=llama_server.alias,
                            base_url=llama_server.openai_url + "/v1", bundle_size=3, max_calls=4, max_tokens=700,
                            seed_texts=str(passages), concurrency=2)
    try:
        manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False, negative_check="llm")
    except NothingAccepted:
        manifest = None
    calls = [row for _, row in read_jsonl(tmp_path / "hs" / "checkpoint" / "calls.jsonl")]
    assert len(calls) >= 1 and all(c["spec"]["bundle_size"] == 3 and c["spec"]["seed_id"] for c in calls)
    assert sorted(c["spec"]["seed_pass"] for c in calls)[:3] == [0] * min(3, len(calls))
    if manifest is None:
        return
    cross, seeds, check = manifest["cross_role"], manifest["seed_texts"], manifest["negative_check"]
    assert 0.0 <= cross["share_satisfying_rule"] <= 1.0 and cross["texts"] >= manifest["counts"]["accepted"]
    assert seeds["calls_grounded"] == len(calls) and seeds["passages_available"] == 3
    assert check["mode"] == "llm"
    lines = (tmp_path / "hs" / "checkpoint" / "negative_check.jsonl").read_text().splitlines()
    assert len(lines) == manifest["counts"]["accepted"]
    print(f"\nlive: accepted {manifest['counts']['accepted']}, cross-role share {cross['share_satisfying_rule']}, "
          f"seed reuse {seeds['calls_reusing_a_passage']}, dropped {check['negatives_dropped']} of "
          f"{check['negatives_checked']}, usage {manifest['llm_usage']}")
