"""The weekly DAG with tiny sizes: caching, lineage and the release gate.

Its generate-hardset subflow asks ``--provider groq`` for ``RECORDED_PLAN`` (records 6, seed 7: the flow's
defaults then make the plan's 9 calls of 4), answered from the embedded model's recorded answers by the
``replay`` proxy (``tests/data/recorded_answers.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_proxy import RECORDED_ALIAS, RECORDED_PLAN, FaultConfig, FaultProxy

pytestmark = pytest.mark.slow


def _all_task_runs() -> dict:
    from prefect.client.orchestration import get_client

    runs, offset = {}, 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(limit=200, offset=offset)
            runs.update({run.id: run for run in page})
            if len(page) < 200:
                return runs
            offset += 200


def _all_log_messages() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs travel to the API in batches: send what is queued first

    messages, offset = [], 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(limit=200, offset=offset)
            messages += [log.message for log in page]
            if len(page) < 200:
                return messages
            offset += 200


def _states_of_new_runs(before: dict) -> dict[str, list[str]]:
    """{task name: [state names]} of the task runs that did not exist in ``before``."""
    states: dict[str, list[str]] = {}
    for run_id, run in _all_task_runs().items():
        if run_id not in before:
            states.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name if run.state else "?")
    return states


@pytest.fixture(scope="module")
def replay_env(recording):
    """The replay proxy for this module's runs, as GROQ_BASE_URL; fails the module on any miss."""
    with FaultProxy(None, FaultConfig(replay=True), recording=recording) as proxy, pytest.MonkeyPatch.context() as env:
        env.setenv("GROQ_API_KEY", "replay-no-key")
        env.setenv("GROQ_BASE_URL", proxy.base_url)
        yield proxy
    if proxy.missed():
        pytest.fail(f"{len(proxy.missed())} request(s) were not in the recording; the first: {proxy.missed()[0]}",
                    pytrace=False)


@pytest.fixture(scope="module")
def dag_params(tmp_path_factory, eval_dir, replay_env):
    work = tmp_path_factory.mktemp("weekly")
    return dict(records=RECORDED_PLAN["records"], seed=RECORDED_PLAN["seed"], provider="groq", model=RECORDED_ALIAS,
                workdir=str(work), with_hardness=False,
                train_params={"max_steps": 2, "batch_size": 4, "max_length": 96, "eval_steps": 10**6,
                              "save_steps": 10**6, "max_eval_samples": 8},
                eval_paths=[str(eval_dir / "sst2.jsonl"), str(eval_dir / "emotion.jsonl")], eval_limit=12)


def test_weekly_dag_runs_caches_and_gates(prefect_harness, dag_params):
    from flows.regenerate_and_retrain import regenerate_and_retrain
    from gliznet.curation.publish import latest_version

    work = Path(dag_params["workdir"])
    store = work / "models-released"

    # 1. first run: generates, publishes a snapshot, trains, evaluates, releases (no previous release)
    first = regenerate_and_retrain(**dag_params)
    assert first["decision"] == "released"
    assert latest_version(work / "snapshots") is not None
    released = store / latest_version(store)
    lineage = json.loads((released / "lineage.json").read_text())
    manifest = json.loads((Path(first["dataset"]) / "manifest.json").read_text())
    assert lineage["dataset_fingerprint"] == manifest["fingerprint"]
    assert lineage["prompt_hashes"] == manifest["prompt_hashes"] and lineage["git_commit"]
    assert lineage["train_params"]["max_steps"] == 2 and lineage["seed"] == RECORDED_PLAN["seed"]
    assert "regenerate-and-retrain" in Path(first["report"]).read_text()
    logs = _all_log_messages()
    assert any(m.startswith("gate: released") for m in logs), "the flow logs its decision"
    assert not [m for m in logs if "LOAD_FAST" in m or "RETURN_VALUE" in m], \
        "no bytecode disassembly in the run logs (dill's stdout capture under print-to-log patching)"

    # 2. identical second run: no LLM call is made again, training comes from the Prefect cache
    calls = Path(first["dataset"]) / "checkpoint" / "calls.jsonl"
    n_calls = len(calls.read_text().splitlines())
    before = _all_task_runs()
    second = regenerate_and_retrain(**dag_params)
    states = _states_of_new_runs(before)
    assert set(states.get("generate-batch", [])) <= {"Cached"}, states
    assert len(calls.read_text().splitlines()) == n_calls
    assert states["train"] == ["Cached"], states
    assert second["model_dir"] == first["model_dir"]

    # 3. only a training parameter changes: training re-runs, generation does not
    before = _all_task_runs()
    changed = dict(dag_params, train_params={**dag_params["train_params"], "lr": 3e-5})
    third = regenerate_and_retrain(**changed)
    states = _states_of_new_runs(before)
    assert set(states.get("generate-batch", [])) <= {"Cached"}, states
    assert len(calls.read_text().splitlines()) == n_calls
    assert states["train"] == ["Completed"], states
    assert third["model_dir"] != first["model_dir"]
    assert third["dataset"] == first["dataset"]


def test_gate_holds_a_worse_model_and_keeps_the_release(prefect_harness, dag_params, tmp_path):
    from flows.regenerate_and_retrain import regenerate_and_retrain
    from gliznet.curation.publish import latest_version, publish_local
    from gliznet.pipeline.release import eval_set_identity

    params = dict(dag_params, workdir=str(tmp_path / "gate"))
    store = Path(params["workdir"]) / "models-released"
    # a previous release that scored far better on the same frozen sets
    strong = tmp_path / "strong"
    strong.mkdir()
    (strong / "manifest.json").write_text(json.dumps({"version": "strong-v1"}))
    same_sets = eval_set_identity(params["eval_paths"])
    (strong / "frozen_eval.json").write_text(json.dumps(
        {"average_macro_f1": 0.99, "eval_sets": same_sets, "limit": params["eval_limit"], "sets": []}))
    publish_local(strong, store)

    result = regenerate_and_retrain(**params)
    assert result["decision"] == "held"
    assert latest_version(store) == "strong-v1"
    report = Path(result["report"]).read_text()
    assert "**held**" in report and "0.99" in report

    # a weak previous release: the new model is released and becomes latest
    (store / "strong-v1" / "frozen_eval.json").write_text(json.dumps(
        {"average_macro_f1": 0.0, "eval_sets": same_sets, "limit": params["eval_limit"], "sets": []}))
    result = regenerate_and_retrain(**params)
    assert result["decision"] == "released"
    assert latest_version(store) != "strong-v1"
