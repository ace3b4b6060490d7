"""Generation through a proxy that breaks 30 % of the LLM requests completes and accounts for everything.

The real ``groq`` SDK talks to ``tests/fault_proxy.py``, which answers a share of the chat requests with
429 + Retry-After, 500/503, a hang past the client timeout, a connection cut mid-body, or a 200 whose
content is malformed / truncated / wrong-typed JSON, and every other request with the embedded model's
real answers recorded in ``tests/data/recorded_answers.jsonl`` (the ``replay`` fixture; no llama-server),
so runs are fast and do not depend on what the 135M model answers today; faults are real HTTP, drawn per
request (not per arrival), and every run makes all calls of the plan: a run ends the same way every time.

What must hold after each run (``account``):

* calls:  every planned call is in ``calls.jsonl`` once, answered or failed; failed calls are exactly the
  ``llm_call_failed`` rejections; ``calls = answered + failed``;
* items:  every item of every answered call is accepted, merged into an identical text, or rejected with
  one reason: ``items = accepted + exact_merged + near_duplicate + other rejections`` (a whole unreadable
  answer is one item);
* HTTP:   the proxy saw exactly ``sum(attempts)`` chat requests; every transient fault it injected is a
  retry or the last attempt of a failed call (``transient faults = sum(attempts) - answered``);
  ``attempts <= max_retries + 1`` and the provider's ``usage.retries = sum(attempts) - calls``;
* every 429 was followed by its retry no sooner than its ``Retry-After``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest
from fault_proxy import (
    CONTENT_KINDS,
    RECORDED_ALIAS,
    RECORDED_PLAN,
    TRANSIENT_KINDS,
    FaultConfig,
    FaultProxy,
    plan_cli_args,
    plan_config,
)

from gliznet._io import read_jsonl
from gliznet.pipeline.generate import generate_hardset
from gliznet.generation.loop import run_call
from gliznet.generation.plan import GenerateConfig, plan_call, prompt_text
from gliznet.generation.prompts import load_prompt
from gliznet.llm.groq import GroqProvider
from gliznet.llm.provider import LLMCallError
from gliznet.records import parse_batch

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # every case talks to the fault proxy, a real HTTP server
ISSUE_KINDS = TRANSIENT_KINDS + CONTENT_KINDS  # 429, 500, 503, hang, cut, malformed/truncated/wrong-typed JSON
ALL_CALLS = 100  # more records than the plan's calls give: a run makes every call, so it ends the same way each time




def account(out: Path, config: GenerateConfig, proxy_stats: dict, usage: dict, max_retries: int,
            retry_after_s: float) -> dict:
    """Check every identity of the module docstring; return the figures."""
    calls = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    records = [row for _, row in read_jsonl(out / "records.jsonl")]
    rejected = [row for _, row in read_jsonl(out / "rejected.jsonl")]
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = Counter(r["reason"] for r in rejected)

    indices = [c["call"] for c in calls]
    assert len(indices) == len(set(indices)) and set(indices) <= set(range(config.call_budget))
    answered = [c for c in calls if c["ok"]]
    failed = [c for c in calls if not c["ok"]]
    assert len(calls) == len(answered) + len(failed) == manifest["counts"]["calls"]
    assert reasons["llm_call_failed"] == len(failed) == manifest["counts"].get("calls_failed", 0)
    assert all(c["error"] in ("timeout", "http_5xx", "rate_limited", "connection") for c in failed)

    prompt = load_prompt(config.prompt_id)
    items = kept = 0
    for line in answered:
        k, r, _ = parse_batch(line["raw"], None, prompt_text(prompt, line, config), config.limits)
        items += len(k) + len(r)
        kept += len(k)
    merged = manifest["counts"].get("exact_merged", 0)
    assert kept == len(records) + merged + reasons["near_duplicate"], "every valid item accepted, merged or a near-dup"
    assert items == len(records) + merged + sum(reasons.values()) - reasons["llm_call_failed"]
    assert manifest["counts"]["accepted"] == len(records) and manifest["counts"]["rejected"] == len(rejected)

    attempts = [c["attempts"] for c in calls]
    assert max(attempts) <= max_retries + 1, "retries are bounded"
    assert proxy_stats["chat_requests"] == sum(attempts), "every HTTP attempt is accounted for"
    assert proxy_stats["transient_faults"] == sum(attempts) - len(answered)
    assert usage["calls"] == len(calls) and usage["failed_calls"] == len(failed)
    assert usage["retries"] == sum(attempts) - len(calls) <= max_retries * len(calls)
    content_faults = sum(proxy_stats["faults"].get(k, 0) for k in CONTENT_KINDS)
    assert reasons["invalid_json"] + reasons["wrong_shape"] >= content_faults
    gaps = proxy_stats["retry_after_gaps"]
    assert all(g >= retry_after_s - 0.05 for g in gaps), f"a 429 was retried before Retry-After: {gaps}"

    splits = datasets.load_from_disk(str(out / "triplet"))
    assert splits["train"].num_rows + splits["test"].num_rows == manifest["counts"]["train"] + manifest["counts"]["test"]
    figures = {
        "calls": len(calls), "answered": len(answered), "failed_calls": len(failed),
        "items_requested": len(calls) * config.records_per_call, "items_returned": items,
        "accepted": len(records), "rejected_by_reason": dict(sorted(reasons.items())),
        "http_attempts": sum(attempts), "retries": usage["retries"], "max_attempts": max(attempts),
        "faults_injected": proxy_stats["faults"], "faults_total": proxy_stats["faults_total"],
        "retry_after_gaps_s": gaps,
    }
    print("\nfault run:", json.dumps(figures))
    return figures


@pytest.mark.parametrize("max_retries", [3, 0])
def test_generate_hardset_survives_30_percent_faults_and_accounts_for_every_call(replay, tmp_path, max_retries):
    """max_retries=3: transient faults are retried away; max_retries=0: they end as counted failed calls."""
    faults = FaultConfig(rate=0.3, kinds=ISSUE_KINDS, seed=11 + max_retries, retry_after_s=1.0, hang_s=3.0,
                         replay=True)
    config = plan_config(records=ALL_CALLS, concurrency=4)
    made = []

    def factory():
        made.append(GroqProvider(RECORDED_ALIAS, api_key="fault-test", base_url=proxy.base_url, timeout=2.0,
                                 max_retries=max_retries, backoff_s=0.1, concurrency=4))
        return made[-1]

    with replay.fork(faults) as proxy:
        manifest = generate_hardset(config, tmp_path / "hs", provider_factory=factory, with_hardness=False)
        stats = proxy.stats()
    assert stats["faults_total"] > 0 and set(stats["faults"]) <= set(ISSUE_KINDS)
    usage, logged = made[0].usage.as_dict(), manifest["llm_usage"]  # the manifest sums the checkpoint's lines
    assert logged == {**usage, "llm_seconds": pytest.approx(usage["llm_seconds"], abs=0.001 * usage["calls"])}
    figures = account(tmp_path / "hs", config, stats, made[0].usage.as_dict(), max_retries, 1.0)
    if max_retries == 0:
        assert figures["failed_calls"] == stats["transient_faults"] > 0, "no retry: each transient fault fails its call"


def test_cli_generate_survives_30_percent_faults(replay, tmp_path):
    """The real CLI (default timeout 120 s, so no hang faults here; backoff 1 s, 4 retries)."""
    kinds = tuple(k for k in ISSUE_KINDS if k != "hang")
    with replay.fork(FaultConfig(rate=0.3, kinds=kinds, seed=5, retry_after_s=1.0, replay=True)) as proxy:
        out = tmp_path / "hs"
        env = {**os.environ, "GROQ_API_KEY": "fault-test", "GROQ_BASE_URL": proxy.base_url, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-m", "gliznet.cli", "generate", *plan_cli_args(records=ALL_CALLS),
                               "--concurrency", "4", "--no-hardness", "--out", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        stats = proxy.stats()
    assert done.returncode == 0, done.stderr[-2000:]
    assert stats["faults_total"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    account(out, plan_config(records=ALL_CALLS), stats, manifest["llm_usage"], 4, 1.0)


def test_retry_after_is_honoured_and_retries_are_bounded(replay):
    """Every request answered 429 + Retry-After: 1 -> exactly max_retries waits of >= 1 s, then a clear failure."""
    with replay.fork(FaultConfig(rate=1.0, kinds=("rate_limited",), retry_after_s=1.0, replay=True)) as proxy:
        provider = GroqProvider(RECORDED_ALIAS, api_key="fault-test", base_url=proxy.base_url, timeout=5.0,
                                max_retries=2, backoff_s=0.01)
        with pytest.raises(LLMCallError) as err:
            provider.complete_json("Answer in JSON.", "Say hi.", {"type": "object"}, max_tokens=8)
        stats = proxy.stats()
    assert err.value.reason == "rate_limited" and err.value.attempts == 3
    assert provider.usage.retries == 2 and provider.usage.failed_calls == 1
    assert stats["chat_requests"] == 3 and len(stats["retry_after_gaps"]) == 2
    assert all(1.0 - 0.05 <= gap < 3.0 for gap in stats["retry_after_gaps"]), stats["retry_after_gaps"]


def test_a_garbled_http_body_is_retried_not_fatal(replay):
    """HTTP 200 whose JSON body is cut in half (a broken gateway): the call must end as a checkpoint line
    (answered after a retry, or failed with a reason) — never as an exception that kills the run."""
    config = plan_config()
    with replay.fork(FaultConfig(rate=1.0, kinds=("malformed_body",), replay=True)) as proxy:
        provider = GroqProvider(RECORDED_ALIAS, api_key="fault-test", base_url=proxy.base_url, timeout=5.0,
                                max_retries=2, backoff_s=0.01)
        line = run_call(provider, load_prompt(config.prompt_id), plan_call(config.seed, 0), config)
    assert line["ok"] is False and line["error"] and line["attempts"] == 3
    assert provider.usage.failed_calls == 1 and provider.usage.retries == 2


def test_a_request_missing_from_the_recording_fails_loudly(recording):
    """A request body the recording lacks (here: another seed) gets HTTP 400 naming it and the re-record
    command, and is counted; the ``replay`` fixture turns any such miss into a failed test."""
    config = plan_config()
    with FaultProxy(None, FaultConfig(replay=True), recording=recording) as proxy:
        provider = GroqProvider(RECORDED_ALIAS, api_key="fault-test", base_url=proxy.base_url, timeout=5.0,
                                max_retries=2, backoff_s=0.01)
        provider.check()  # GET /openai/v1/models is in the recording
        good = run_call(provider, load_prompt(config.prompt_id), plan_call(config.seed, 0), config)
        other = run_call(provider, load_prompt(config.prompt_id), plan_call(config.seed + 1, 0), config)
        stats = proxy.stats()
    assert good["ok"] and stats["replayed"] == 1
    assert other["ok"] is False and other["error"] == "bad_request" and other["attempts"] == 1, "a 400 is not retried"
    assert stats["misses"] == 1 and len(proxy.missed()) == 1
    message = proxy.missed()[0]
    assert "POST /openai/v1/chat/completions" in message and "python tests/record_answers.py" in message
    assert "record_answers.py" in other["detail"], "the client sees why, too"


def test_the_committed_recording_answers_the_whole_plan_well_enough_for_the_tests(replay, recording):
    """``tests/data/recorded_answers.jsonl`` holds ``GET /openai/v1/models`` and a real answer to every call
    of ``RECORDED_PLAN``, and passes the judgement ``record_answers.py`` recorded it under."""
    from record_answers import problems

    assert recording.meta["plan"] == RECORDED_PLAN, "RECORDED_PLAN changed: run python tests/record_answers.py"
    config = plan_config()
    with GroqProvider(RECORDED_ALIAS, api_key="fault-test", base_url=replay.base_url, max_retries=0) as provider:
        provider.check()
        lines = [run_call(provider, load_prompt(config.prompt_id), plan_call(config.seed, i), config)
                 for i in range(config.call_budget)]
    assert replay.stats()["replayed"] == config.call_budget == sum(m == "POST" for m, _, _ in recording.requests.values())
    assert problems(lines, config) == []
