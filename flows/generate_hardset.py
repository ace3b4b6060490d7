"""Prefect flow ``generate-hardset``: wiring only; every step is a plain gliznet function.

    plan -> generate batches (mapped, concurrent, checkpointed) -> validate -> dedup -> split -> write

Scale-out.  ``generate_batch`` is mapped over the call plan on the flow's task runner
(``flows.task_runners.make_task_runner``: threads by default, a Dask cluster with
``GLIZNET_TASK_RUNNER=dask`` [+ ``GLIZNET_DASK_ADDRESS``], or per call ``generate_hardset_with``).
A mapped task may run in another process or on another machine, so it never gets a live provider
(HTTP client, locks, the llama-server child): it gets a ``ProviderSpec`` — provider name, model,
endpoint, limits; no secret — and builds the provider itself, once per worker process
(``provider_for``, cached on the spec).  For ``local`` the flow starts the embedded llama-server
once and the tasks reach it at its URL through the groq SDK, their records still saying
``provider="local"``.  The tasks write nothing: the flow appends each answer to the run's
checkpoint as it comes back, so workers need no access to the output folder.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner

from flows.task_runners import make_task_runner
from gliznet.dataset import zero_shot_split
from gliznet.generate import Checkpoint, accepted_in, GenerateConfig, plan_call, prompt_text, run_call, validate_calls
from gliznet.hardset import check_writable, curate, write_hardset
from gliznet.llm.groq import GroqProvider
from gliznet.llm.provider import LLMProvider, Usage, make_provider
from gliznet.prompts import load_prompt
from gliznet.records import Limits

CACHED = INPUTS + TASK_SOURCE


@dataclass(frozen=True)
class ProviderSpec:
    """What a task needs to build its own provider; picklable, hashable, and free of secrets.

    ``name``: ``local`` | ``groq`` | ``ollama``; ``base_url``: the endpoint the flow checked (for
    ``local`` the running embedded server's ``http://127.0.0.1:P``).  Keys come from the worker's env.
    """

    name: str
    model: str
    base_url: str
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 4

    @classmethod
    def of(cls, llm: LLMProvider) -> ProviderSpec:
        """The spec of a live (checked) provider."""
        base_url = getattr(llm, "host", None) or llm.base_url  # ollama: host; groq and local: base_url
        return cls(name=llm.name, model=llm.model, base_url=base_url, concurrency=llm.concurrency,
                   timeout=llm.timeout, max_retries=llm.max_retries)


class LocalServerClient(GroqProvider):
    """A groq-SDK client of an embedded server the flow already runs; ``local`` in provenance."""

    name = "local"


@lru_cache(maxsize=8)
def provider_for(spec: ProviderSpec) -> LLMProvider:
    """The provider ``spec`` describes, built once per process (its client and concurrency slots are
    shared by every task that runs there)."""
    limits = dict(concurrency=spec.concurrency, timeout=spec.timeout, max_retries=spec.max_retries)
    if spec.name == "local":  # the flow owns the server; a task only talks to it
        return LocalServerClient(spec.model, api_key="local-server-needs-no-key", base_url=spec.base_url, **limits)
    return make_provider(spec.name, spec.model, base_url=spec.base_url, **limits)


def worker_id() -> str:
    """``host:pid`` of the process running a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


@task(name="generate-batch", retries=2, retry_delay_seconds=2, cache_policy=CACHED - "provider",
      persist_result=True)
def generate_batch(provider: ProviderSpec, spec, config: GenerateConfig) -> dict:
    """One LLM call -> its checkpoint line (plus ``worker``: the ``host:pid`` that made the call).

    The cache key is the call (``spec``, ``config``) and this source, not ``provider``: the
    provider name and model are in ``config``, and the endpoint (a fresh port per local server)
    must not defeat the cache of a repeated run."""
    line = run_call(provider_for(provider), load_prompt(config.prompt_id), spec, config)
    line["worker"] = worker_id()
    return line


def usage_of(lines: list[dict]) -> dict:
    """LLM usage summed over checkpoint lines (calls made in this run).  ``llm_seconds`` counts the
    successful attempts only: a failed call's attempts are not timed in its line."""
    usage = Usage()
    for line in lines:
        usage.calls += 1
        usage.failed_calls += int(not line.get("ok"))
        usage.retries += max(0, (line.get("attempts") or 1) - 1)
        usage.prompt_tokens += line.get("prompt_tokens") or 0
        usage.completion_tokens += line.get("completion_tokens") or 0
        usage.llm_seconds += line.get("latency_s") or 0.0
    usage.llm_seconds = round(usage.llm_seconds, 3)
    return usage.as_dict()


@task(name="validate", cache_policy=CACHED, persist_result=True)
def validate(lines: list[dict], config: GenerateConfig):
    prompt = load_prompt(config.prompt_id)
    return validate_calls(lines, lambda line: prompt_text(prompt, line, config), config.limits)


@task(name="dedup", cache_policy=CACHED, persist_result=True)
def dedup(validated, near_dup_threshold: float):
    return curate(validated.records, validated.rejections, validated.counts, near_dup_threshold)


@task(name="split", cache_policy=CACHED, persist_result=True)
def split(curated, test_label_fraction: float, seed: int):
    return zero_shot_split(curated.records, test_label_fraction=test_label_fraction, seed=seed)


@task(name="hardness", cache_policy=CACHED, persist_result=True)
def hardness(curated, seed: int):
    from gliznet.card import hardness as hardness_check
    from gliznet.embeddings import Embedder

    return hardness_check(curated.records, Embedder(), seed=seed)


@task(name="write-dataset", cache_policy=NO_CACHE)
def write(out: str, curated, split_result, params: dict, hard, usage: dict) -> dict:
    return write_hardset(out, records=curated.records, rejections=curated.rejections, counts=curated.counts,
                         split=split_result, params=params, hardness=hard, extra={"llm_usage": usage})


def stats_markdown(manifest: dict) -> str:
    counts = manifest["counts"]
    stats = manifest.get("stats", {})
    rows = "\n".join(f"| {reason} | {n} |" for reason, n in sorted(stats.get("rejections_by_reason", {}).items()))
    hard = manifest.get("hardness") or {}
    return (
        f"# generate-hardset {manifest['version']}\n\n"
        f"| accepted | rejected | train | test | test labels | fingerprint |\n|---|---|---|---|---|---|\n"
        f"| {counts['accepted']} | {counts['rejected']} | {counts['train']} | {counts['test']} | "
        f"{counts['test_labels']} | `{manifest['fingerprint'][:16]}` |\n\n"
        f"## Rejections by reason\n\n| reason | count |\n|---|---|\n{rows or '| (none) | 0 |'}\n\n"
        f"## Hardness (MiniLM reference scorer)\n\nhard negatives above the weakest positive: "
        f"{hard.get('hard_negative_above_weakest_positive', 'n/a')}; random labels: "
        f"{hard.get('random_label_above_weakest_positive', 'n/a')}\n"
    )


@flow(name="generate-hardset", task_runner=make_task_runner(), log_prints=True)
def generate_hardset_flow(records: int = 60, out: str = "runs/hardset", provider: str = "local",
                          model: str | None = None, seed: int = 0, records_per_call: int = 4,
                          concurrency: int = 4, max_calls: int | None = None, test_label_fraction: float = 0.2,
                          near_dup_threshold: float = 90.0, with_hardness: bool = True) -> dict:
    config = GenerateConfig(records=records, seed=seed, provider=provider, model=model,
                            records_per_call=records_per_call, concurrency=concurrency, max_calls=max_calls,
                            limits=Limits())
    with make_provider(provider, model, concurrency=concurrency) as llm:
        llm.check()  # bad provider settings fail before anything is written
        check_writable(Path(out))
        checkpoint = Checkpoint(Path(out) / "checkpoint" / "calls.jsonl")
        lines = checkpoint.load()
        provider_spec = ProviderSpec.of(llm)
        made: list[dict] = []  # lines of the calls this run made (not from the cache)
        progress = create_progress_artifact(0.0, description=f"generate-hardset: accepted records of {records}")
        accepted = sum(accepted_in(line, config) for line in lines.values())
        next_index = 0
        while accepted < records and next_index < config.call_budget:
            wave = [i for i in range(next_index, min(next_index + concurrency, config.call_budget)) if i not in lines]
            next_index += concurrency
            futures = generate_batch.map(provider_spec, [plan_call(seed, i) for i in wave], config)
            for future in as_completed(list(futures)):
                line = future.result()
                checkpoint.append(line)  # before the next answer: a killed flow keeps every answer it saw
                lines[line["call"]] = line
                accepted += accepted_in(line, config)
                if not future.state.name == "Cached":
                    made.append(line)
            update_progress_artifact(progress, min(100.0, 100.0 * accepted / records))
        usage = usage_of(made)
    validated = validate(sorted(lines.values(), key=lambda line: line["call"]), config)
    curated = dedup(validated, near_dup_threshold)
    split_result = split(curated, test_label_fraction, seed)
    hard = hardness(curated, seed) if with_hardness else None
    params = {**config.as_dict(), "test_label_fraction": test_label_fraction,
              "near_dup_threshold": near_dup_threshold, "call_budget": config.call_budget}
    manifest = write(out, curated, split_result, params, hard, usage)
    create_markdown_artifact(stats_markdown(manifest), key="generate-hardset-stats",
                             description="accepted/rejected counts, rejection reasons, hardness")
    print(f"dataset: {Path(out).resolve()} (version {manifest['version']})")
    return {"out": str(Path(out).resolve()), "version": manifest["version"], "fingerprint": manifest["fingerprint"],
            "counts": manifest["counts"]}



def generate_hardset_with(task_runner: str | TaskRunner = "threads", **params) -> dict:
    """Run ``generate-hardset`` with ``params`` on another task runner: a ``TaskRunner``, or a kind
    for ``make_task_runner`` (``threads`` | ``dask``; ``dask`` uses ``$GLIZNET_DASK_ADDRESS`` if set)."""
    runner = make_task_runner(task_runner) if isinstance(task_runner, str) else task_runner
    return generate_hardset_flow.with_options(task_runner=runner)(**params)
