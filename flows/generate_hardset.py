"""Prefect flow ``generate-hardset``: wiring only; every step is a plain gliznet function.

    generate batches (gliznet.generation.loop.generate_calls, ``calls_per_task`` calls a task run)
    -> build-dataset (gliznet.curation.hardset.build_from_checkpoint, the CLI's build, one task)

The loop is the library's: ``generate_calls`` keeps ``concurrency`` calls in flight and appends
each answer to the run's checkpoint as it comes back; the flow only hands it an executor that
submits the calls, ``calls_per_task`` at a time (``calls_per_task_for``), as ``generate_batch`` task runs on the
flow's task runner (``flows.task_runners.make_task_runner``: threads by default, a Dask cluster with
``GLIZNET_TASK_RUNNER=dask`` [+ ``GLIZNET_DASK_ADDRESS``], or per call ``generate_hardset_with``).  A task
run costs far more than a call to a fast server (one task run per call made the flow 6x slower than the
CLI; README, "Scale-out"), so a task run makes ``calls_per_task`` calls in threads (no more threads than the
provider's slots), and ``TASKS_IN_FLIGHT`` (two) task runs are kept in flight; the provider's
``concurrency`` slots still bound the LLM requests in flight per process.  A killed flow loses the answers of
the task runs in flight (up to ``2 x calls_per_task`` calls asked again).

A task may run in another process or on another machine, so it gets a ``ProviderSpec`` (name,
model, endpoint, limits; no secret) and builds its provider there (``provider_for``, once per
process).  For ``local`` the flow starts the embedded llama-server once and the tasks attach to
it at its URL.  Tasks write nothing: workers need no access to the output folder.

Caching.  ``generate_batch`` is cached on its calls (``specs``, ``config``) and its source, so a
re-run with the same parameters takes answered calls from Prefect's result cache; such a line is
marked ``cached`` and not counted as LLM usage.  A call that got no answer (a transport failure) is
not an answer: its task run fails with ``NoAnswer`` (never cached, not retried by Prefect: the provider
retried already) and the loop gets every line of the task run, so a re-run asks only that call again.
The build is not cached (it reads the checkpoint, so a re-run rebuilds the same folder in seconds).

Reliability.  The flow holds the output folder like the CLI (``gliznet._io.FolderLock``, taken before the LLM
starts), keeps its one plan (``gliznet.generation.folder_plan.claim_plan``), stops like it on a dead endpoint
(``generate_calls``: ``LLMUnreachable``), and a full disk is one line.  The embedded server is started with
``gliznet._process.spawn``: a flow run cancelled or killed takes it down with it.  While the flow asks its LLM,
SIGINT / SIGTERM (a Prefect cancellation) stop it like the CLI (``gliznet._process.stop_signals``): no new task
run starts, the task runs that finish within the grace are written to the checkpoint, the server is stopped and
the flow run ends with ``Interrupted``.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner

from gliznet.errors import UserError
from flows.task_runners import make_task_runner
from gliznet._io import Checkpoint, FolderLock, disk_errors
from gliznet._process import stop_signals
from gliznet._timings import StageTimer
from gliznet.curation import hardset
from gliznet.curation.card import run_summary_markdown
from gliznet.curation.hardset import BuildConfig, check_writable
from gliznet.generation.folder_plan import claim_plan
from gliznet.generation.loop import SubmitChunk, generate_calls, run_call, settles, usage_of
from gliznet.generation.plan import CallSpec, GenerateConfig
from gliznet.generation.prompts import load_prompt
from gliznet.llm.registry import ProviderSpec, provider_for
from gliznet.pipeline.generate import open_provider

CACHED = INPUTS + TASK_SOURCE
CALLS_PER_TASK = 64  # the most calls one generate-batch task run makes (README "Scale-out")
ROUNDS_PER_TASK = 4  # ... and at most this many rounds of the provider's concurrent calls (see calls_per_task_for)
TASKS_IN_FLIGHT = 2  # generate-batch task runs kept in flight
DEFAULT = GenerateConfig()
BUILD_DEFAULT = BuildConfig()


def calls_per_task_for(concurrency: int, calls_wanted: int | None = None) -> int:
    """The default calls per ``generate-batch`` task run: ``ROUNDS_PER_TASK`` rounds of the provider's
    ``concurrency`` calls, at most ``CALLS_PER_TASK``, and at most a ``TASKS_IN_FLIGHT``-th of the ``calls_wanted``
    (the calls that would reach ``--records`` if every text were accepted): the task runs in flight submit all their
    calls at once, so a small run on a slow LLM does not pay for a window of calls it does not need.  A task run's answers reach the checkpoint when it ends, so
    a killed flow asks at most ``TASKS_IN_FLIGHT x ROUNDS_PER_TASK`` rounds of calls again, whatever the LLM's
    speed (the embedded model at ``--concurrency 4``: 16 calls a task run; a fast server at 16: 64)."""
    per_task = min(CALLS_PER_TASK, ROUNDS_PER_TASK * concurrency)  # concurrency >= 1: GenerateConfig checks it
    if calls_wanted is not None:
        per_task = min(per_task, max(1, -(-calls_wanted // TASKS_IN_FLIGHT)))
    return per_task


def worker_id() -> str:
    """``host:pid`` of the process running a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


class NoAnswer(Exception):
    """A task run with a call that got no answer (a transport failure): raised so Prefect neither caches nor
    retries it; ``lines`` are the checkpoint lines of all its calls (the answered ones are kept)."""

    def __init__(self, lines: list[dict]):
        super().__init__(lines)
        self.lines = lines

    def __str__(self) -> str:
        failed = [line for line in self.lines if not settles(line)]
        return "; ".join(f"call {line.get('call')} got no answer: {line.get('cause') or line.get('detail')}"
                         for line in failed)


def retry_unless_no_answer(task, task_run, state) -> bool:
    """Prefect's retry condition: a ``NoAnswer`` was retried by the provider already."""
    try:
        state.result()
    except NoAnswer:
        return False
    except Exception:  # noqa: BLE001 - any other failure is worth Prefect's retries
        return True
    return True


@task(name="generate-batch", retries=2, retry_delay_seconds=2, cache_policy=CACHED - "provider",
      persist_result=True, retry_condition_fn=retry_unless_no_answer)
def generate_batch(provider: ProviderSpec, specs: list[CallSpec], config: GenerateConfig) -> list[dict]:
    """Some LLM calls (in parallel threads) -> their checkpoint lines, in ``specs`` order (each with ``worker``:
    the ``host:pid`` that made the call).

    The cache key is the calls (``specs``, ``config``) and this source, not ``provider``: the
    provider name and model are in ``config``, and the endpoint (a fresh port per local server)
    must not defeat the cache of a repeated run.  A transport failure of any call raises ``NoAnswer``."""
    llm, prompt = provider_for(provider), load_prompt(config.prompt_id)
    if len(specs) == 1:
        lines = [run_call(llm, prompt, specs[0], config)]
    else:  # no more threads than the provider's slots: the others would only wait (and contend for the GIL)
        with ThreadPoolExecutor(max_workers=min(len(specs), llm.concurrency), thread_name_prefix="gliznet-call") as pool:
            lines = list(pool.map(lambda spec: run_call(llm, prompt, spec, config), specs))
    for line in lines:
        line["worker"] = worker_id()
    if not all(settles(line) for line in lines):
        raise NoAnswer(lines)
    return lines


def as_lines(run: PrefectFuture, n: int) -> list[Future]:
    """The checkpoint lines of a ``generate_batch`` run of ``n`` calls as the ``concurrent.futures.Future`` objects
    the loop waits on; lines Prefect took from its cache are marked ``cached``."""
    lines: list[Future] = [Future() for _ in range(n)]

    def finished(run: PrefectFuture) -> None:
        try:
            result = run.result()
            if run.state.name == "Cached":
                result = [{**line, "cached": True} for line in result]
        except NoAnswer as err:  # failed calls, not a failed loop: every line goes to the checkpoint
            result = err.lines
        except BaseException as err:  # noqa: BLE001 - handed to the loop, which re-raises it
            for line in lines:
                line.set_exception(err)
            return
        for line, value in zip(lines, result):
            line.set_result(value)

    run.add_done_callback(finished)
    return lines


def submit_batches(provider: ProviderSpec, config: GenerateConfig) -> SubmitChunk:
    """The loop's executor: several calls (``calls_per_task``) per ``generate_batch`` task run on the flow's task
    runner."""
    return lambda specs: as_lines(generate_batch.submit(provider, list(specs), config), len(specs))


# The build is one task: hardset.build_from_checkpoint, the CLI's own steps (validation, dedup, negative check,
# split, hardness, write; each a stage of the manifest's timings).  Not cached and its result not persisted: as
# separate tasks cached on their inputs, Prefect hashed and stored every step's records, which made the flow's build
# 2.6x the CLI's at 40,000 records (README "Scale-out"); the LLM calls, the only costly part to repeat, stay cached.
build_dataset = task(hardset.build_from_checkpoint, name="build-dataset", cache_policy=NO_CACHE,
                     persist_result=False)


def progress_artifact(records: int):
    """A Prefect progress artifact that follows the loop's accepted-record count, updated when the whole percent
    changes: each update is a request to the Prefect API, and one per call cost more than the calls themselves
    (10,000 calls to a fast server: the flow's generation took 3x the CLI's; README "Scale-out")."""
    artifact = create_progress_artifact(0.0, description=f"generate-hardset: accepted records of {records}")
    shown = [0]

    def update(accepted: int, calls: int, budget: int) -> None:
        percent = min(100, 100 * accepted // records)
        if percent != shown[0]:
            shown[0] = percent
            update_progress_artifact(artifact, float(percent))

    return update


# not log_prints=True: it turns print() into logging, which breaks dill's stdout capture inside `datasets`
# (every hashed function's bytecode disassembly then lands in the run log)
@flow(name="generate-hardset", task_runner=make_task_runner())
def generate_hardset_flow(records: int = DEFAULT.records, out: str = "runs/hardset", provider: str = DEFAULT.provider,
                          model: str | None = DEFAULT.model, seed: int = DEFAULT.seed,
                          records_per_call: int = DEFAULT.records_per_call, concurrency: int = DEFAULT.concurrency,
                          max_calls: int | None = DEFAULT.max_calls,
                          test_label_fraction: float = BUILD_DEFAULT.test_label_fraction,
                          near_dup_threshold: float = BUILD_DEFAULT.near_dup_threshold,
                          with_hardness: bool = BUILD_DEFAULT.with_hardness, base_url: str | None = DEFAULT.base_url,
                          negative_check: str = BUILD_DEFAULT.negative_check,
                          price_per_mtok: str | None = None, bundle_size: int = DEFAULT.bundle_size,
                          seed_texts: str | None = DEFAULT.seed_texts, calls_per_task: int | None = None,
                          cross_role_policy: str = BUILD_DEFAULT.cross_role_policy,
                          labels: str | None = DEFAULT.labels, task: str | None = DEFAULT.task,
                          multi_label: bool = DEFAULT.multi_label) -> dict:
    config = GenerateConfig(records=records, seed=seed, provider=provider, model=model, base_url=base_url,
                            records_per_call=records_per_call, concurrency=concurrency, max_calls=max_calls,
                            bundle_size=bundle_size, seed_texts=seed_texts, labels=labels, task=task,
                            multi_label=multi_label)
    build = BuildConfig(test_label_fraction, near_dup_threshold, with_hardness, negative_check,
                        price_per_mtok=price_per_mtok, cross_role_policy=cross_role_policy)
    if calls_per_task is None:
        calls_per_task = calls_per_task_for(concurrency, -(-records // config.texts_per_call))
    if calls_per_task < 1:
        raise UserError(f"calls_per_task must be >= 1 or None for {ROUNDS_PER_TASK} rounds of --concurrency "
                        f"calls (got {calls_per_task})")
    check_writable(Path(out))  # before an LLM server starts: writable, and no other run holds it
    timer = StageTimer()
    with FolderLock(out), disk_errors(out):
        runs = claim_plan(out, config)  # one plan per folder, as the CLI's; before the LLM starts
        with stop_signals(), open_provider(config) as llm:  # made and checked as the CLI's, before any write
            with timer.stage("calls"):
                window = replace(config, concurrency=max(concurrency, TASKS_IN_FLIGHT * calls_per_task))
                run = generate_calls(window, Checkpoint(Path(out) / "checkpoint" / "calls.jsonl"), provider=llm,
                                     submit_chunk=submit_batches(ProviderSpec.of(llm), config), chunk=calls_per_task,
                                     progress=progress_artifact(records))
            checked = hardset.ask_false_negatives(out, run.lines.values(), config, build, llm)  # --negative-check llm
        usage = usage_of(run.made + checked)
        del run  # the build reads the checkpoint again, as the CLI's: the answers need not stay in memory twice
        manifest = build_dataset(out, config, build, usage=usage, timer=timer, runs=runs)
    create_markdown_artifact(run_summary_markdown(manifest), key="generate-hardset-stats",
                             description="accepted/rejected counts, rejection reasons, hardness, false-negative check, cost")
    get_run_logger().info(f"dataset: {Path(out).resolve()} (version {manifest['version']})")
    return {"out": str(Path(out).resolve()), "version": manifest["version"], "fingerprint": manifest["fingerprint"],
            "counts": manifest["counts"]}


def generate_hardset_with(task_runner: str | TaskRunner = "threads", **params) -> dict:
    """Run ``generate-hardset`` with ``params`` on another task runner: a ``TaskRunner``, or a kind
    for ``make_task_runner`` (``threads`` | ``dask``; ``dask`` uses ``$GLIZNET_DASK_ADDRESS`` if set)."""
    runner = make_task_runner(task_runner) if isinstance(task_runner, str) else task_runner
    return generate_hardset_flow.with_options(task_runner=runner)(**params)
