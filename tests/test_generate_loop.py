"""The one generation loop (``gliznet.generation.loop.generate_calls``) on a plain executor.

The CLI runs it on a thread pool of ``run_call``; the Prefect flow on ``generate_batch`` task runs.
Here the executor is a plain ``ThreadPoolExecutor`` and the call function answers from a script,
so the loop's own behaviour — rolling window, stop rules, resume, checkpointing — is exact.
The LLM behind ``run_call`` is tested in test_providers.py / test_generate.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from helpers import Executor, answered, failed

from gliznet._io import Checkpoint
from gliznet.generation.loop import generate_calls, usage_of
from gliznet.generation.plan import CallSpec, GenerateConfig

GUARD_S = 30.0  # deadlock guard only: a correct loop never waits this long


def test_a_finished_call_frees_its_slot_while_the_others_still_run(tmp_path):
    """Rolling window: call 2 starts as soon as call 1 is answered, while call 0 is still in flight."""
    config = GenerateConfig(records=100, concurrency=2, max_calls=3)
    log = tmp_path / "calls.jsonl"
    call_2_started = threading.Event()
    seen_by_call_0: list[bool] = []
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def call(spec):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        if spec.index == 2:
            call_2_started.set()
        if spec.index == 0:
            seen_by_call_0.append(call_2_started.wait(GUARD_S))
            # answer only after call 2's answer is in the log (read as text: loading could cut a line being written)
            deadline = time.monotonic() + GUARD_S
            while log.read_text().count("\n") < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        with lock:
            in_flight[0] -= 1
        return failed(spec)

    with Executor(call) as executor:
        run = generate_calls(config, Checkpoint(log), submit=executor.submit)
    assert seen_by_call_0 == [True], "call 2 started while call 0 was still running"
    assert [line["call"] for line in run.made] == [1, 2, 0], "answers are appended in the order they arrive"
    assert peak[0] == 2, "never more calls in flight than concurrency"


def test_no_call_starts_after_the_call_budget(tmp_path):
    config = GenerateConfig(records=100, concurrency=3, max_calls=7)
    with Executor(failed) as executor:
        run = generate_calls(config, Checkpoint(tmp_path / "calls.jsonl"), submit=executor.submit)
    assert sorted(executor.started) == list(range(7)) and sorted(run.lines) == list(range(7))
    assert len(Checkpoint(tmp_path / "calls.jsonl").load()) == 7


def test_no_call_starts_once_enough_records_are_accepted(tmp_path):
    """Two records per answer, six wanted, one call at a time: exactly three calls."""
    config = GenerateConfig(records=6, concurrency=1, max_calls=50)
    with Executor(lambda spec: answered(spec, records=2)) as executor:
        run = generate_calls(config, Checkpoint(tmp_path / "calls.jsonl"), submit=executor.submit)
    assert executor.started == [0, 1, 2] and len(run.made) == 3


def test_calls_in_flight_when_enough_records_arrive_still_finish_and_are_kept(tmp_path):
    config = GenerateConfig(records=1, concurrency=4, max_calls=50)
    with Executor(lambda spec: answered(spec)) as executor:
        run = generate_calls(config, Checkpoint(tmp_path / "calls.jsonl"), submit=executor.submit)
    assert sorted(executor.started) == [0, 1, 2, 3], "the first window starts before any answer is in"
    assert sorted(Checkpoint(tmp_path / "calls.jsonl").load()) == sorted(run.lines) == [0, 1, 2, 3]


def test_resume_skips_answered_calls_and_reports_only_the_new_ones(tmp_path):
    config = GenerateConfig(records=100, concurrency=2, max_calls=6)
    checkpoint = Checkpoint(tmp_path / "calls.jsonl")
    with Executor(failed) as first:
        generate_calls(GenerateConfig(records=100, concurrency=2, max_calls=3), checkpoint, submit=first.submit)
    progress = []
    with Executor(failed) as second:
        run = generate_calls(config, checkpoint, submit=second.submit, progress=lambda *p: progress.append(p))
    assert sorted(second.started) == [3, 4, 5], "calls 0-2 are in the checkpoint: never asked again"
    assert sorted(line["call"] for line in run.made) == [3, 4, 5] and sorted(run.lines) == list(range(6))
    assert progress[0] == (0, 3, 6) and progress[-1] == (0, 6, 6)
    assert len(checkpoint.path.read_text().splitlines()) == 6, "each call appended exactly once"


def test_a_failing_executor_stops_the_loop_but_keeps_the_answers_that_arrived(tmp_path):
    config = GenerateConfig(records=100, concurrency=1, max_calls=5)

    def call(spec):
        if spec.index == 2:
            raise RuntimeError("the key was revoked")
        return failed(spec)

    checkpoint = Checkpoint(tmp_path / "calls.jsonl")
    with Executor(call) as executor, pytest.raises(RuntimeError, match="revoked"):
        generate_calls(config, checkpoint, submit=executor.submit)
    assert sorted(checkpoint.load()) == [0, 1] and executor.started == [0, 1, 2]


def test_the_loop_needs_a_provider_or_an_executor(tmp_path):
    with pytest.raises(ValueError, match="provider=.*submit="):
        generate_calls(GenerateConfig(), Checkpoint(tmp_path / "calls.jsonl"))


def test_usage_is_summed_from_the_lines_and_skips_cached_answers():
    spec = CallSpec(index=0, seed=1, domain="d", topic="t", genre="g", length="l", reading_level="r")
    lines = [answered(spec), failed(spec), {**answered(spec), "cached": True}]
    assert usage_of(lines) == {"calls": 2, "failed_calls": 1, "retries": 2, "prompt_tokens": 10,
                               "completion_tokens": 20, "llm_seconds": 2.0}
