"""Scale-out: the task runner is chosen by name or environment, and generate-hardset runs its mapped
generation tasks on Dask worker processes (a real local cluster); the workers' ``groq`` clients get the
embedded model's recorded answers from the ``replay`` proxy (``tests/data/recorded_answers.jsonl``)."""

from __future__ import annotations

import json
import os
import pickle
import socket

import pytest

from gliznet._io import read_jsonl

GROQ_KEY = "gsk_not-a-real-key-but-a-secret-0123456789"


def test_task_runner_is_threads_by_default_and_dask_by_name_or_env(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.task_runners import make_task_runner

    monkeypatch.delenv("GLIZNET_TASK_RUNNER", raising=False)
    monkeypatch.delenv("GLIZNET_DASK_ADDRESS", raising=False)
    threads = make_task_runner(max_workers=3)
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3

    local = make_task_runner("dask", n_workers=3)
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"] is True

    monkeypatch.setenv("GLIZNET_TASK_RUNNER", "dask")
    monkeypatch.setenv("GLIZNET_DASK_ADDRESS", "tcp://scheduler:8786")
    remote = make_task_runner()
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://scheduler:8786"
    assert make_task_runner("dask", address="tcp://other:8786").address == "tcp://other:8786"
    assert isinstance(make_task_runner("threads"), ThreadPoolTaskRunner)  # the argument wins over the env


@pytest.mark.parametrize("kind", ["ray", "process"])
def test_unknown_task_runner_fails_with_one_line_naming_the_choices(monkeypatch, kind):
    from flows.task_runners import make_task_runner

    with pytest.raises(ValueError) as err:
        make_task_runner(kind)
    assert "task_runner" in str(err.value) and "threads, dask" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("GLIZNET_TASK_RUNNER", kind)
    with pytest.raises(ValueError, match="GLIZNET_TASK_RUNNER"):
        make_task_runner()


def test_tasks_get_a_picklable_provider_spec_without_the_key(monkeypatch):
    from gliznet.llm.groq import GroqProvider
    from gliznet.llm.registry import ProviderSpec, provider_for

    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
    with GroqProvider("some-model", base_url="http://127.0.0.1:9", concurrency=3) as llm:
        spec = ProviderSpec.of(llm)
    blob = pickle.dumps(spec)
    assert GROQ_KEY.encode() not in blob and GROQ_KEY not in repr(spec)
    assert pickle.loads(blob) == spec
    assert (spec.name, spec.model, spec.base_url, spec.concurrency) == ("groq", "some-model", "http://127.0.0.1:9", 3)
    # built once per process from the spec; the worker reads the key from its own environment
    built = provider_for(spec)
    assert built is provider_for(ProviderSpec(**vars(spec))) and built._api_key == GROQ_KEY
    local = provider_for(ProviderSpec(name="local", model="smollm2", base_url="http://127.0.0.1:9"))
    assert local.name == "local" and local.base_url == "http://127.0.0.1:9"


@pytest.mark.slow
def test_generate_hardset_runs_its_batches_on_dask_worker_processes(prefect_harness, replay, tmp_path, monkeypatch):
    import datasets
    from fault_proxy import plan_flow_params

    from flows.generate_hardset import generate_hardset_with
    from flows.task_runners import make_task_runner

    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)  # the workers (started below) read it from their environment
    monkeypatch.setenv("GROQ_BASE_URL", replay.base_url)
    out = tmp_path / "hs-dask"
    runner = make_task_runner("dask", n_workers=2, max_workers=2, cluster_kwargs={"dashboard_address": None})
    result = generate_hardset_with(runner, out=str(out), **plan_flow_params(concurrency=2), test_label_fraction=0.5,
                                   with_hardness=False)

    manifest = json.loads((out / "manifest.json").read_text())
    assert result["fingerprint"] == manifest["fingerprint"]
    assert manifest["parameters"]["provider"] == "groq"
    assert datasets.load_from_disk(str(out / "triplet"))["train"].column_names == ["text", "labels", "not_labels"]
    calls = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    assert len(calls) == manifest["counts"]["calls"] >= 1
    assert manifest["llm_usage"]["calls"] == len(calls)
    assert {line["provider"] for line in calls} == {"groq"}
    # every call was made by a Dask worker process, never by the flow's (this test's) process
    workers = {line["worker"] for line in calls}
    hosts = {w.rsplit(":", 1)[0] for w in workers}
    pids = {int(w.rsplit(":", 1)[1]) for w in workers}
    assert hosts == {socket.gethostname()} and os.getpid() not in pids, workers
