"""Prefect flow ``generate-hardset``: wiring only; every step is a plain gliznet function.

    generate batches (gliznet.generation.loop.generate_calls, each call a task) -> validate -> dedup
    -> split -> hardness -> write (the gliznet.curation.hardset pieces, each a task)

The loop is the library's: ``generate_calls`` keeps ``concurrency`` calls in flight and appends
each answer to the run's checkpoint as it comes back; the flow only hands it an executor that
submits every call as a ``generate_batch`` task run on the flow's task runner
(``flows.task_runners.make_task_runner``: threads by default, a Dask cluster with
``GLIZNET_TASK_RUNNER=dask`` [+ ``GLIZNET_DASK_ADDRESS``], or per call ``generate_hardset_with``).

A task may run in another process or on another machine, so it gets a ``ProviderSpec`` (name,
model, endpoint, limits; no secret) and builds its provider there (``provider_for``, once per
process).  For ``local`` the flow starts the embedded llama-server once and the tasks attach to
it at its URL.  Tasks write nothing: workers need no access to the output folder.

Caching.  ``generate_batch`` is cached on the call (``spec``, ``config``) and its source, so a
re-run with the same parameters takes answered calls from Prefect's result cache; such a line is
marked ``cached`` and not counted as LLM usage.  A call that got no answer (a transport failure) is
not an answer: its task run fails with ``NoAnswer`` (never cached, not retried by Prefect: the provider
retried already) and the loop gets its line, so a re-run asks it again.  The build steps are cached on
their inputs.

Reliability.  The flow holds the output folder like the CLI (``gliznet._io.FolderLock``), stops like
it on a dead endpoint (``generate_calls``: ``LLMUnreachable``), and a full disk is one line.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import Future
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

from flows.task_runners import make_task_runner
from gliznet._io import Checkpoint, FolderLock, disk_errors
from gliznet.curation import hardset
from gliznet.curation.card import run_summary_markdown
from gliznet.curation.hardset import BuildConfig, check_writable
from gliznet.curation.negatives import NEGATIVE_CHECK_FILE, load_negative_answers
from gliznet.generation.loop import Submit, generate_calls, run_call, settles, usage_of
from gliznet.generation.plan import CallSpec, GenerateConfig
from gliznet.generation.prompts import load_prompt
from gliznet.llm.registry import ProviderSpec, make_provider, provider_for

CACHED = INPUTS + TASK_SOURCE
DEFAULT = GenerateConfig()
BUILD_DEFAULT = BuildConfig()


def worker_id() -> str:
    """``host:pid`` of the process running a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


class NoAnswer(Exception):
    """A call that got no answer (a transport failure): raised so Prefect neither caches nor retries it;
    ``line`` is its checkpoint line."""

    def __init__(self, line: dict):
        super().__init__(line)
        self.line = line

    def __str__(self) -> str:
        return f"call {self.line.get('call')} got no answer: {self.line.get('cause') or self.line.get('detail')}"


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
def generate_batch(provider: ProviderSpec, spec: CallSpec, config: GenerateConfig) -> dict:
    """One LLM call -> its checkpoint line (plus ``worker``: the ``host:pid`` that made the call).

    The cache key is the call (``spec``, ``config``) and this source, not ``provider``: the
    provider name and model are in ``config``, and the endpoint (a fresh port per local server)
    must not defeat the cache of a repeated run.  A transport failure raises ``NoAnswer``."""
    line = run_call(provider_for(provider), load_prompt(config.prompt_id), spec, config)
    line["worker"] = worker_id()
    if not settles(line):
        raise NoAnswer(line)
    return line


def as_line(run: PrefectFuture) -> Future:
    """The checkpoint line of a ``generate_batch`` run as the ``concurrent.futures.Future`` the loop
    waits on; a line Prefect took from its cache is marked ``cached``."""
    line: Future = Future()

    def finished(run: PrefectFuture) -> None:
        try:
            result = run.result()
            line.set_result({**result, "cached": True} if run.state.name == "Cached" else result)
        except NoAnswer as err:  # a failed call, not a failed loop: its line goes to the checkpoint
            line.set_result(err.line)
        except BaseException as err:  # noqa: BLE001 - handed to the loop, which re-raises it
            line.set_exception(err)

    run.add_done_callback(finished)
    return line


def submit_batches(provider: ProviderSpec, config: GenerateConfig) -> Submit:
    """The loop's executor: every call a ``generate_batch`` task run on the flow's task runner."""
    return lambda spec: as_line(generate_batch.submit(provider, spec, config))


validate = task(hardset.validate_lines, name="validate", cache_policy=CACHED, persist_result=True)
dedup = task(hardset.curate, name="dedup", cache_policy=CACHED, persist_result=True)
split = task(hardset.split_curated, name="split", cache_policy=CACHED, persist_result=True)
hardness = task(hardset.score_hardness, name="hardness", cache_policy=CACHED, persist_result=True)
negatives = task(hardset.screen_negatives, name="negative-check", cache_policy=CACHED, persist_result=True)
write = task(hardset.write_curated, name="write-dataset", cache_policy=NO_CACHE)


def build_dataset(out: str, lines: list[dict], config: GenerateConfig, build: BuildConfig, usage: dict) -> dict:
    """``hardset.build_from_checkpoint``'s steps, each a task."""
    curated = dedup(validate(lines, config), build.near_dup_threshold)
    answers = (load_negative_answers(Checkpoint(Path(out) / "checkpoint" / NEGATIVE_CHECK_FILE))
               if build.negative_check == "llm" else None)
    curated, checked = negatives(curated, build, config.limits, answers=answers)
    split_result = split(curated, build.test_label_fraction, config.seed)
    hard = hardness(curated, config.seed) if build.with_hardness else None
    return write(out, curated, split_result, config, build, hard, usage, checked)


def progress_artifact(records: int):
    """A Prefect progress artifact that follows the loop's accepted-record count."""
    artifact = create_progress_artifact(0.0, description=f"generate-hardset: accepted records of {records}")
    return lambda accepted, calls, budget: update_progress_artifact(artifact, min(100.0, 100.0 * accepted / records))


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
                          seed_texts: str | None = DEFAULT.seed_texts) -> dict:
    config = GenerateConfig(records=records, seed=seed, provider=provider, model=model, base_url=base_url,
                            records_per_call=records_per_call, concurrency=concurrency, max_calls=max_calls,
                            bundle_size=bundle_size, seed_texts=seed_texts)
    build = BuildConfig(test_label_fraction, near_dup_threshold, with_hardness, negative_check,
                        price_per_mtok=price_per_mtok)
    check_writable(Path(out))  # before an LLM server starts: writable, and no other run holds it
    with FolderLock(out), disk_errors(out):
        with make_provider(provider, model, base_url=base_url, concurrency=concurrency) as llm:
            llm.check()  # bad provider settings fail before anything is written
            run = generate_calls(config, Checkpoint(Path(out) / "checkpoint" / "calls.jsonl"), provider=llm,
                                 submit=submit_batches(ProviderSpec.of(llm), config),
                                 progress=progress_artifact(records))
            checked = hardset.ask_false_negatives(out, run.lines.values(), config, build, llm)  # --negative-check llm
        lines = sorted(run.lines.values(), key=lambda line: line["call"])
        manifest = build_dataset(out, lines, config, build, usage_of(run.made + checked))
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
