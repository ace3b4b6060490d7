"""Prefect: the flows run on a real local Prefect server (one harness per session) and the served
deployments can be triggered through the Prefect API.  The LLM answers are the embedded model's,
recorded (``tests/data/recorded_answers.jsonl``) and served by the ``replay`` proxy to ``--provider groq``."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from fault_proxy import plan_flow_params

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_generate_hardset_flow_runs_end_to_end(prefect_harness, replay, tmp_path, monkeypatch):
    from flows.generate_hardset import calls_per_task_for, generate_hardset_flow

    monkeypatch.setenv("GROQ_API_KEY", "replay-no-key")
    monkeypatch.setenv("GROQ_BASE_URL", replay.base_url)
    out = tmp_path / "hs"
    state = generate_hardset_flow(out=str(out), **plan_flow_params(), concurrency=1, with_hardness=False,
                                  return_state=True)
    result = state.result()
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["fingerprint"] == manifest["fingerprint"]
    # at --concurrency 1 a generate-batch task run makes 4 calls (4 rounds of 1): a killed flow re-asks few calls;
    # and no more than half the calls the records need (two task runs in flight submit all theirs at once)
    assert calls_per_task_for(1) == 4 and calls_per_task_for(16) == 64 == calls_per_task_for(64)
    assert calls_per_task_for(4, calls_wanted=3) == 2 and calls_per_task_for(4, calls_wanted=90) == 16
    per_task = calls_per_task_for(1, calls_wanted=math.ceil(plan_flow_params()["records"] / 4))
    batches = _task_runs_of(state.state_details.flow_run_id, "generate-batch")
    assert len(batches) == math.ceil(manifest["counts"]["calls"] / per_task), [b.name for b in batches]
    assert [b.name for b in _task_runs_of(state.state_details.flow_run_id, "build-dataset")], "the build is one task"
    assert manifest["counts"]["accepted"] > 0
    assert datasets.load_from_disk(str(out / "triplet"))["train"].column_names == ["text", "labels", "not_labels"]
    # every call the flow made is in the checkpoint, so a plain `gliznet generate` can resume the same folder
    calls = (out / "checkpoint" / "calls.jsonl").read_text().splitlines()
    assert len(calls) == manifest["counts"]["calls"]


def _task_runs_of(flow_run_id, task_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
    return [run for run in runs if run.name.rsplit("-", 1)[0] == task_name]


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def test_served_deployments_run_through_the_prefect_api(prefect_harness, replay, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    env = {**os.environ, "PREFECT_API_URL": _api_url(), "PYTHONUNBUFFERED": "1", "GROQ_API_KEY": "replay-no-key",
           "GROQ_BASE_URL": replay.base_url}
    log = open(tmp_path / "serve.log", "w")
    from gliznet._process import spawn  # dies with the test process, however it dies

    server = spawn([sys.executable, "-m", "gliznet.cli", "serve"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    weekly = client.read_deployment_by_name("regenerate-and-retrain/weekly")
                    client.read_deployment_by_name("generate-hardset/default")
                    break
                except Exception:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
                    time.sleep(1)
            schedule = weekly.schedules[0].schedule
            assert schedule.cron == "0 3 * * 1" and schedule.timezone == "Europe/Berlin"
            assert weekly.parameters["provider"] == "local"

        out = tmp_path / "served"
        run = run_deployment("generate-hardset/default",
                             parameters={**plan_flow_params(), "out": str(out), "with_hardness": False},
                             timeout=600)
        assert run.state.is_completed(), (run.state, (tmp_path / "serve.log").read_text()[-3000:])
        assert (out / "manifest.json").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
