"""Reliability under infrastructure faults (issue 23): a dead LLM endpoint, two runs on one folder, a poisoned
checkpoint, a full disk.

* Failed calls are not answers: a call that got no answer (transport) is asked again on resume; a call that was
  answered with an error stays answered.  The checkpoint marks each (``failure``), the card counts each.
* Fail fast: ``MAX_TRANSPORT_FAILURES`` (5) calls in a row without an answer stop the run with one line naming the
  endpoint and the cause; a dead endpoint costs at most ``5 + concurrency - 1`` calls of at most
  ``max_retries + 1`` attempts.  The embedded llama-server is restarted once, then the run stops.
* One writer per folder: ``.gliznet.lock``; a second run fails at once naming the holder; a stale lock is taken over.
* Unreadable checkpoint lines are counted and said; a full disk is one line naming the path and the fix.

Bounds are counted in calls and HTTP attempts, never in seconds.  The loop's own rules run on a plain executor
(no server); the end-to-end cases run the real CLI against the replay proxy (``tests/fault_proxy.py``), and the
embedded server case a real llama-server killed by pid (all ``slow``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SMALL_SCHEMA, SMALL_SYSTEM, SMALL_USER, assert_one_clear_error
from fault_proxy import RECORDED_ALIAS, FaultConfig, FaultProxy, plan_cli_args, plan_config
from helpers import Executor, answered, failed

from gliznet._io import Checkpoint, FolderBusy, FolderLock, LOCK_NAME, disk_errors, read_jsonl
from gliznet.pipeline.generate import generate_hardset
from gliznet.errors import UserError
from gliznet.generation.loop import (
    MAX_TRANSPORT_FAILURES,
    LLMUnreachable,
    generate_calls,
    settles,
    validate_calls,
)
from gliznet.generation.plan import CallSpec, GenerateConfig
from gliznet.llm.groq import GroqProvider
from gliznet.records import Limits, text_key

ROOT = Path(__file__).resolve().parent.parent
CAUSE = "cannot reach http://127.0.0.1:9: Connection error."


def unreached(spec: CallSpec) -> dict:
    """The checkpoint line of a call that got no answer (connection refused after its retries)."""
    return {**failed(spec), "error": "connection", "failure": "transport", "cause": CAUSE,
            "detail": f"groq call failed after 5 attempts (connection): {CAUSE}", "attempts": 5}


# -- 1. failed calls are not answers -------------------------------------------------------------------

def test_a_call_without_answer_is_asked_again_on_resume_and_an_answered_failure_is_not(tmp_path):
    config = GenerateConfig(records=100, concurrency=2, max_calls=6)
    checkpoint = Checkpoint(tmp_path / "calls.jsonl")
    first_outcome = {0: answered, 1: unreached, 2: failed, 3: unreached, 4: answered, 5: failed}
    with Executor(lambda spec: first_outcome[spec.index](spec)) as first:
        generate_calls(config, checkpoint, submit=first.submit)
    with Executor(answered) as second:
        run = generate_calls(config, checkpoint, submit=second.submit)
    assert sorted(second.started) == [1, 3], "only the calls that got no answer are asked again"
    lines = checkpoint.path.read_text().splitlines()
    assert len(lines) == 8, "the transport failures stay in the log, beside their later answers"
    assert all(settles(line) for line in run.lines.values()) and sorted(run.lines) == list(range(6))
    counts = validate_calls(run.lines.values(), lambda line: "", Limits()).counts
    assert counts["calls"] == 6 and counts["calls_failed"] == 2 == counts["calls_failed_answer"]
    assert counts["calls_failed_transport"] == 0


def test_a_line_written_before_failures_had_kinds_is_judged_by_its_error():
    spec = CallSpec(index=0, seed=1, domain="d", topic="t", genre="g", length="l", reading_level="r")
    old_timeout = {k: v for k, v in unreached(spec).items() if k != "failure"}
    old_refusal = {k: v for k, v in failed(spec).items() if k != "failure"}
    assert not settles(old_timeout) and settles(old_refusal) and settles(answered(spec))


def test_the_card_counts_each_kind_of_failed_call(tmp_path):
    from gliznet.curation.card import _calls_section

    text = "\n".join(_calls_section({"calls": 9, "calls_failed": 3, "calls_failed_transport": 2,
                                     "calls_failed_answer": 1, "checkpoint_lines_unreadable": 2}))
    assert "| failed: no answer (transport; asked again by a re-run) | 2 |" in text
    assert "| failed: answered with an error (kept) | 1 |" in text and "| answered | 6 |" in text
    assert "| unreadable checkpoint lines skipped (their calls asked again) | 2 |" in text


# -- 2. fail fast -------------------------------------------------------------------------------------

@pytest.mark.parametrize("concurrency", [1, 4])
def test_calls_without_answer_in_a_row_stop_the_run_within_the_bound(tmp_path, concurrency):
    """Calls 0-2 answered, then the endpoint is gone: at most N + concurrency - 1 calls fail, the answers stay."""
    config = GenerateConfig(records=100, concurrency=concurrency, max_calls=60)
    checkpoint = Checkpoint(tmp_path / "calls.jsonl")
    with Executor(lambda spec: answered(spec) if spec.index < 3 else unreached(spec), workers=concurrency) as ex, \
            pytest.raises(LLMUnreachable) as stop:
        generate_calls(config, checkpoint, submit=ex.submit)
    message = str(stop.value)
    assert "\n" not in message and isinstance(stop.value, UserError)
    assert message.startswith("cannot reach http://127.0.0.1:9: Connection error ("), message
    assert "calls in a row got no answer" in message and "re-run the same command to resume" in message
    lines = checkpoint.load()
    unanswered = [line for line in lines.values() if not settles(line)]
    assert sorted(i for i, line in lines.items() if settles(line)) == [0, 1, 2], "every answer is kept"
    assert MAX_TRANSPORT_FAILURES <= len(unanswered) <= MAX_TRANSPORT_FAILURES + concurrency - 1
    assert len(ex.started) == len(lines), "every call that started is in the checkpoint"


def test_an_answer_between_failures_resets_the_count(tmp_path):
    """Every third call fails in transport (a flaky endpoint, not a dead one): the run makes all its calls."""
    config = GenerateConfig(records=100, concurrency=1, max_calls=20)
    with Executor(lambda spec: unreached(spec) if spec.index % 3 else answered(spec), workers=1) as ex:
        run = generate_calls(config, Checkpoint(tmp_path / "calls.jsonl"), submit=ex.submit)
    assert len(run.made) == 20


# -- 3. one writer per folder ---------------------------------------------------------------------------

def test_a_second_writer_of_a_folder_is_refused_with_the_holder_named(tmp_path):
    with FolderLock(tmp_path / "ds"):
        holder = json.loads((tmp_path / "ds" / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["started_at"]
        with pytest.raises(FolderBusy) as busy:
            FolderLock(tmp_path / "ds").acquire()
        with pytest.raises(FolderBusy):
            FolderLock(tmp_path / "ds").check()
    message = str(busy.value)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message and "wait for it to finish" in message
    assert "\n" not in message
    assert not (tmp_path / "ds" / LOCK_NAME).exists(), "released: the lock file is gone"
    FolderLock(tmp_path / "ds").acquire().release()


@pytest.mark.slow
def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said_so(tmp_path, caplog):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(),
                                                "started_at": "2024-01-01T00:00:00+00:00", "command": "gliznet"}))
    FolderLock(folder).check()  # a stale lock does not stop a run
    with caplog.at_level(logging.WARNING, logger="gliznet"), FolderLock(folder):
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"took over the stale lock of {folder}: pid {dead_pid}" in caplog.text


def test_a_lock_written_on_another_host_is_refused_with_how_to_clear_it(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started_at": "t"}))
    with pytest.raises(FolderBusy, match=f"another host .*elsewhere.example.*delete {folder / LOCK_NAME}"):
        FolderLock(folder).acquire()


@pytest.mark.slow
def test_a_lock_held_by_another_live_process_is_refused(tmp_path):
    folder = tmp_path / "ds"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from gliznet._io import FolderLock\n"
        "with FolderLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"), str(folder), str(ROOT)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=f"pid {holder.pid} on "):
            generate_hardset(GenerateConfig(records=1), folder, provider_factory=lambda: pytest.fail("no LLM"))
    finally:
        holder.kill()
        holder.wait()
    FolderLock(folder).acquire().release()  # its flock died with it: the folder is free (a stale lock file)


# -- 4. say what was skipped ------------------------------------------------------------------------

def test_a_corrupt_middle_line_is_counted_said_and_its_call_asked_again(tmp_path, caplog):
    config = GenerateConfig(records=100, concurrency=1, max_calls=4)
    checkpoint = Checkpoint(tmp_path / "calls.jsonl")
    with Executor(answered, workers=1) as first:
        generate_calls(config, checkpoint, submit=first.submit)
    lines = checkpoint.path.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"call": 1, "ok": tr\xff\n'  # a damaged line in the middle (not a torn tail)
    lines[2] = b"[1, 2]\n"  # JSON, but not a call's line
    checkpoint.path.write_bytes(b"".join(lines))
    with Executor(answered, workers=1) as second, caplog.at_level(logging.WARNING, logger="gliznet"):
        run = generate_calls(config, checkpoint, submit=second.submit)
    assert second.started == [1, 2]
    assert f"2 unreadable checkpoint lines skipped in {checkpoint.path}; their calls asked again" in caplog.text
    assert run.unreadable == 2 and sorted(run.lines) == [0, 1, 2, 3]


def test_a_full_disk_is_one_line_naming_the_path_and_the_fix(tmp_path):
    with pytest.raises(UserError) as full, disk_errors(tmp_path / "ds"):
        with open("/dev/full", "w") as fh:  # the kernel's always-full device: a real ENOSPC
            fh.write("x")
            fh.flush()
    message = str(full.value)
    assert message.startswith("no space left on the disk of") and f"--out {tmp_path / 'ds'}" in message
    assert "free some space" in message and "re-run the same command" in message
    with pytest.raises(FileNotFoundError), disk_errors(tmp_path):  # other errors pass unchanged
        open(tmp_path / "missing" / "x")


# -- end to end: the real CLI against the replay proxy -----------------------------------------------------

def cli(out: Path, proxy_url: str, concurrency: int = 4) -> list[str]:
    return [sys.executable, "-m", "gliznet.cli", "generate", *plan_cli_args(records=100), "--concurrency",
            str(concurrency), "--no-hardness", "--out", str(out)]


def cli_env(url: str) -> dict:
    return {**os.environ, "GROQ_API_KEY": "replay-no-key", "GROQ_BASE_URL": url, "HF_HUB_OFFLINE": "1",
            "COLUMNS": "250", "PYTHONPATH": str(ROOT)}


def stop_when(proxy: FaultProxy, chat_requests: int) -> threading.Thread:
    """Stop ``proxy`` (a dead endpoint from then on) once it has seen ``chat_requests`` chat requests."""
    def watch():
        deadline = time.monotonic() + 300
        while proxy.stats()["chat_requests"] < chat_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_cli_stops_on_a_dead_endpoint_and_the_same_command_resumes_it(recording, tmp_path):
    """The endpoint dies after the first request of 9 planned calls: the run stops with one line within
    N + concurrency - 1 failed calls; the same command, once it is back, makes exactly the missing calls and
    ends with the uninterrupted run's dataset: no record lost or repeated, no call paid twice."""
    with FaultProxy(None, FaultConfig(replay=True), recording=recording) as proxy:
        reference = subprocess.run(cli(tmp_path / "reference", proxy.base_url), cwd=ROOT,
                                   env=cli_env(proxy.base_url), capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]
    ref = json.loads((tmp_path / "reference" / "manifest.json").read_text())

    out = tmp_path / "hs"
    dying = FaultProxy(None, FaultConfig(replay=True, replay_delay_s=0.5), recording=recording).start()
    url, port = dying.base_url, int(dying.base_url.rsplit(":", 1)[1])
    watcher = stop_when(dying, 1)
    stopped = subprocess.run(cli(out, url), cwd=ROOT, env=cli_env(url), capture_output=True, text=True, timeout=300)
    watcher.join()
    line = assert_one_clear_error(stopped, f"cannot reach {url}", "calls in a row got no answer",
                                  "re-run the same command to resume")
    assert stopped.returncode == 2
    calls = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    answered_before = {c["call"] for c in calls if settles(c)}
    unanswered = [c for c in calls if not settles(c)]
    assert not (out / "manifest.json").exists()
    assert MAX_TRANSPORT_FAILURES <= len(unanswered) <= MAX_TRANSPORT_FAILURES + 4 - 1
    assert all(c["failure"] == "transport" and c["attempts"] <= 5 for c in unanswered)
    assert f"the {len(answered_before)} answered calls are kept" in line
    paid_before = dying.stats()["replayed"]
    assert paid_before == len(answered_before) >= 1

    with FaultProxy(None, FaultConfig(replay=True), port=port, recording=recording) as back:
        resumed = subprocess.run(cli(out, url), cwd=ROOT, env=cli_env(url), capture_output=True, text=True,
                                 timeout=300)
        paid_after = back.stats()["replayed"]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    answers = Counter(c["call"] for c in final if settles(c))
    assert set(answers) == set(range(9)) and max(answers.values()) == 1, "each call answered once"
    assert paid_before + paid_after == 9, "no call paid twice"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"] == ref["fingerprint"]
    records = Counter(text_key(r["text"]) for _, r in read_jsonl(out / "records.jsonl"))
    assert records == Counter(text_key(r["text"]) for _, r in read_jsonl(tmp_path / "reference" / "records.jsonl"))
    print(f"\ndead endpoint: stopped after {len(calls)} checkpoint lines ({len(answered_before)} answered, "
          f"{len(unanswered)} without answer); resumed: {len(final)} lines, {manifest['counts']['accepted']} "
          f"records; the line: {line}")


@pytest.mark.slow
def test_a_503_storm_costs_a_bounded_number_of_attempts_and_resume_pays_each_call_once(recording, tmp_path):
    """Every request answered 503: the run stops after N + concurrency - 1 calls at most, each with
    max_retries + 1 attempts (counted by the proxy); once the server is well, the same run finishes."""
    config = plan_config(records=100, concurrency=3)
    max_retries = 2

    def factory(url):
        return lambda: GroqProvider(RECORDED_ALIAS, api_key="replay-no-key", base_url=url, timeout=5.0,
                                    max_retries=max_retries, backoff_s=0.01, concurrency=3)

    storm = FaultConfig(replay=True, rate=1.0, kinds=("http_503",))
    with FaultProxy(None, storm, recording=recording) as proxy:
        with pytest.raises(LLMUnreachable, match=r"^HTTP 503 from http://127\.0\.0\.1:\d+ \(\d calls in a row"):
            generate_hardset(config, tmp_path / "hs", provider_factory=factory(proxy.base_url), with_hardness=False)
        storm_requests = proxy.stats()["chat_requests"]
        lines = [row for _, row in read_jsonl(tmp_path / "hs" / "checkpoint" / "calls.jsonl")]
        assert MAX_TRANSPORT_FAILURES <= len(lines) <= MAX_TRANSPORT_FAILURES + 3 - 1
        assert storm_requests == sum(c["attempts"] for c in lines) == len(lines) * (max_retries + 1)
        proxy.set_config(FaultConfig(replay=True))
        proxy.reset_stats()
        manifest = generate_hardset(config, tmp_path / "hs", provider_factory=factory(proxy.base_url),
                                    with_hardness=False)
        healthy = proxy.stats()
    assert healthy["chat_requests"] == healthy["replayed"] == config.call_budget, "each call paid once"
    assert manifest["counts"]["calls"] == config.call_budget and not manifest["counts"].get("calls_failed")
    assert manifest["llm_usage"]["calls"] == config.call_budget, "usage counts this run's calls"


@pytest.mark.slow
def test_two_runs_on_one_folder_the_second_refuses_and_the_first_finishes(recording, tmp_path):
    out = tmp_path / "hs"
    with FaultProxy(None, FaultConfig(replay=True, replay_delay_s=0.5), recording=recording) as proxy:
        first = subprocess.Popen(cli(out, proxy.base_url, concurrency=1), cwd=ROOT, env=cli_env(proxy.base_url),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        calls = out / "checkpoint" / "calls.jsonl"
        deadline = time.monotonic() + 120
        while not (calls.exists() and calls.read_bytes().count(b"\n") >= 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(cli(out, proxy.base_url), cwd=ROOT, env=cli_env(proxy.base_url),
                                capture_output=True, text=True, timeout=300)
        first_out, first_err = first.communicate(timeout=300)
        stats = proxy.stats()
    line = assert_one_clear_error(second, f"{out} is being written by another run", f"pid {first.pid} on",
                                  "gliznet")
    assert second.returncode == 2
    assert first.returncode == 0, first_err[-2000:]
    indices = [c["call"] for _, c in read_jsonl(calls)]
    assert sorted(indices) == list(range(9)), "the first run made every call once; the second none"
    assert stats["chat_requests"] == 9
    assert not (out / LOCK_NAME).exists(), "the first run released the folder"
    print(f"\nsecond run: {line}")


# -- the embedded server, killed by pid -----------------------------------------------------------------

@pytest.mark.slow
def test_the_embedded_server_is_restarted_once_then_the_run_stops():
    from gliznet.llm.local import LocalProvider
    from gliznet.llm.provider import EndpointDown

    def ask(provider):
        return provider.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA, max_tokens=24, seed=1)

    with LocalProvider(concurrency=1, max_retries=2, backoff_s=0.05) as provider:
        assert ask(provider).attempts == 1
        first_pid = provider.server.pid
        os.kill(first_pid, signal.SIGKILL)
        provider.server.process.wait()
        again = ask(provider)  # the dead server is seen, restarted, and the call retried
        assert again.attempts >= 2 and provider.restarts == 1 and provider.server.pid != first_pid
        os.kill(provider.server.pid, signal.SIGKILL)
        provider.server.process.wait()
        assert provider.outage() == "the embedded llama-server exited with signal 9 (SIGKILL)"
        with pytest.raises(EndpointDown, match=r"^the embedded llama-server exited with signal 9 \(SIGKILL\) "
                                               r"again after 1 restart"):
            ask(provider)
