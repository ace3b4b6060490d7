"""Ctrl-C and SIGTERM stop a run fast and keep every answer that arrived; nothing we start outlives us.

Real processes throughout: the ``gliznet generate`` CLI (``tests/interrupting.py``) against the replay proxy
(``tests/fault_proxy.py``) answering after a delay, so calls are in flight when the signal lands; the signal is
sent once the child has reported progress (a checkpoint line, a request at the proxy, its "stopping" line).
Time to exit is measured by ``bench/interrupt.py``, not asserted here.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_one_clear_error
from fault_proxy import RECORDED_PLAN, FaultConfig, replay_proxy
from interrupting import CliRun, call_in_flight, checkpoint_lines, run_to_end, tagged_pids

from gliznet._io import FolderLock

PLAN_CALLS = RECORDED_PLAN["max_calls"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The dataset folder of an uninterrupted run of the plan."""
    proxy = replay_proxy()
    try:
        out = tmp_path_factory.mktemp("reference") / "hs"
        done = run_to_end(out, proxy.base_url)
        assert done.returncode == 0, done.stderr[-2000:]
        assert not proxy.missed(), proxy.missed()[:1]
    finally:
        proxy.stop()
    return out


@pytest.fixture(scope="module")
def reference(reference_run) -> str:
    """The fingerprint of an uninterrupted run of the plan."""
    return json.loads((reference_run / "manifest.json").read_text())["fingerprint"]


def _resume_pays_each_answered_call_once(proxy, out, reference) -> None:
    before = len(checkpoint_lines(out))
    proxy.reset_stats()
    done = run_to_end(out, proxy.base_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert proxy.stats()["chat_requests"] == PLAN_CALLS - before, "every call kept before is not asked again"
    assert json.loads((out / "manifest.json").read_text())["fingerprint"] == reference
    assert sorted(line["call"] for line in checkpoint_lines(out)) == list(range(PLAN_CALLS))


def _signal_mid_run(proxy, tmp_path: Path, grace_s: float, signum: int):
    """Start a run, wait for a kept answer and a call in flight, send ``signum`` and wait for the end:
    (the run, the calls in flight when the signal was sent, its result, the requests the proxy saw)."""
    run = CliRun(tmp_path / "hs", proxy.base_url, grace_s=grace_s, extra=("--concurrency", "2"))
    run.wait_for(lambda: len(checkpoint_lines(run.out)) >= 1, why="a checkpoint line")
    run.wait_for(lambda: call_in_flight(proxy, run.out), why="a call in flight")
    in_flight = proxy.stats()["chat_requests"] - len(checkpoint_lines(run.out))
    run.send(signum)
    stopped = run.finish()
    return run, in_flight, stopped, proxy.stats()["chat_requests"]


@pytest.mark.slow
def test_ctrl_c_keeps_the_answers_in_flight_and_the_resume_asks_only_the_rest(replay, tmp_path, reference):
    with replay.fork(FaultConfig(replay=True, replay_delay_s=1.0)) as proxy:
        run, in_flight_at_signal, stopped, asked = _signal_mid_run(proxy, tmp_path, 20, signal.SIGINT)
        assert stopped.returncode == 130, stopped.stderr[-2000:]
        assert stopped.kept is not None, f"no interrupted line: {stopped.stderr[-2000:]}"
        assert "Traceback" not in stopped.stderr
        assert stopped.lines == stopped.kept >= 1 + in_flight_at_signal, "the answers in flight arrived and were kept"
        assert stopped.abandoned == 0, "the grace outlasts a call: all kept"
        assert asked == stopped.kept, "every request that reached the LLM was answered and kept"
        assert stopped.kept < PLAN_CALLS, "stopped before the end of the plan"
        assert not stopped.left, f"processes of the run left: {stopped.left}"
        _resume_pays_each_answered_call_once(proxy, run.out, reference)


@pytest.mark.slow
def test_sigterm_with_a_short_grace_abandons_the_slow_calls_and_keeps_the_rest(replay, tmp_path, reference):
    with replay.fork(FaultConfig(replay=True, replay_delay_s=3.0)) as proxy:
        run, _, stopped, asked = _signal_mid_run(proxy, tmp_path, 0.3, signal.SIGTERM)
        assert stopped.returncode == 143, stopped.stderr[-2000:]
        assert stopped.kept is not None, f"no interrupted line: {stopped.stderr[-2000:]}"
        assert stopped.lines == stopped.kept >= 1
        assert stopped.abandoned >= 1 and stopped.kept + stopped.abandoned >= asked
        assert not stopped.left, f"processes of the run left: {stopped.left}"
        _resume_pays_each_answered_call_once(proxy, run.out, reference)


@pytest.mark.slow
def test_a_second_ctrl_c_during_the_grace_stops_at_once(replay, tmp_path):
    with replay.fork(FaultConfig(replay=True, replay_delay_s=60.0)) as proxy:
        run = CliRun(tmp_path / "hs", proxy.base_url, grace_s=120, extra=("--concurrency", "2"))
        run.wait_for(lambda: proxy.stats()["chat_requests"] >= 1, why="a call in flight")
        run.send(signal.SIGINT)
        run.wait_for(lambda: "stopping (SIGINT)" in run.stderr, why="the stopping line")
        assert "Ctrl-C again" in run.stderr
        run.send(signal.SIGINT)
        stopped = run.finish(timeout=60)  # far less than the 60 s answers or the 120 s grace
        assert stopped.returncode == 130, stopped.stderr[-2000:]
        assert stopped.kept == 0 == stopped.lines and stopped.abandoned >= 1, stopped.stderr[-2000:]
        assert not stopped.left, f"processes of the run left: {stopped.left}"


OWNER = """
import subprocess, sys, threading, time
sys.path.insert(0, {root!r})
from gliznet._process import spawn
children = []
def start():  # from a worker thread that ends at once: the child must live as long as the process
    children.append(spawn([sys.executable, "-c", "import time; time.sleep(600)"]))
worker = threading.Thread(target=start)
worker.start()
worker.join()
time.sleep(0.5)
print(children[0].pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_spawned_child_outlives_the_thread_that_started_it_but_not_its_process(tmp_path):
    from gliznet._process import dies_with_parent

    if not dies_with_parent():
        pytest.skip("PR_SET_PDEATHSIG is Linux only (see gliznet._process)")
    owner = subprocess.Popen([sys.executable, "-c", OWNER.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True)
    try:
        child = int(owner.stdout.readline())
        assert _alive(child), "the child died with the thread that spawned it"
        owner.kill()  # SIGKILL: no handler, no atexit
        owner.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its owner"
    finally:
        owner.kill()


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


LOCAL = ["--provider", "local", "--llm", "smollm2", "--records", "8"]


@pytest.mark.slow
def test_sigkill_of_gliznet_takes_its_llama_server_with_it(tmp_path):
    run = CliRun(tmp_path / "hs", None, grace_s=5, provider_args=LOCAL)

    def server_started() -> bool:
        return any("llama-server" in _cmdline(pid) for pid in tagged_pids(run.tag) - {run.proc.pid})

    run.wait_for(server_started, timeout=180, why="the llama-server")
    servers = {pid for pid in tagged_pids(run.tag) if "llama-server" in _cmdline(pid)}
    run.send(signal.SIGKILL)
    stopped = run.finish()
    assert stopped.returncode == -signal.SIGKILL
    assert not stopped.left, f"left behind: {[(pid, _cmdline(pid)) for pid in stopped.left]}"
    assert servers and not any(_alive(pid) for pid in servers)


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_a_run_refused_by_the_folder_lock_starts_no_process(tmp_path):
    out = tmp_path / "hs"
    with FolderLock(out):
        run = CliRun(out, None, grace_s=5, provider_args=LOCAL)
        seen: set[int] = set()
        while run.proc.poll() is None:  # watch every process the refused run starts while it runs
            seen |= tagged_pids(run.tag)
            time.sleep(0.01)
        stopped = run.finish()
    assert seen <= {run.proc.pid}, f"the refused run started {[(p, _cmdline(p)) for p in seen - {run.proc.pid}]}"
    done = subprocess.CompletedProcess(run.proc.args, stopped.returncode, "", stopped.stderr)
    assert_one_clear_error(done, "is being written by another run", "wait for it to finish")
    assert stopped.returncode == 2 and not stopped.left


@pytest.mark.slow
def test_ctrl_c_during_training_saves_no_half_model_and_keeps_the_last_trainer_checkpoint(reference_run, tmp_path):
    out = tmp_path / "trained"
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"logging_steps": 1, "save_steps": 2}))  # a log line a step, a checkpoint every 2
    run = CliRun(out, None, grace_s=5, with_stdout=True, args=[
        sys.executable, "-m", "gliznet.cli", "train", "--data", str(reference_run), "--out", str(out),
        "--config", str(config), "--max-steps", "400"])
    run.wait_for(lambda: run.stderr.count("'loss'") >= 3, timeout=600, why="three training steps")
    run.send(signal.SIGINT)
    stopped = run.finish()
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    kept = re.search(r"interrupted: training stopped, no model saved; the trainer checkpoint (\S+) is kept: re-run "
                     r"the same command with --resume to continue from it", stopped.stderr)
    assert kept, stopped.stderr[-2000:]
    assert Path(kept[1]).is_dir() and (Path(kept[1]) / "trainer_state.json").is_file()
    assert all((p / "trainer_state.json").is_file() for p in (out / "checkpoints").glob("checkpoint-*")), \
        "a half-written trainer checkpoint is removed"
    assert not (out / "model").exists() and not list(out.glob(".model.staging-*")), "no model is saved"
    assert not stopped.left, f"processes of the run left: {stopped.left}"


def _modes_proxy(delay_s: float):
    """A replay proxy over the base and the recorded modes' answers (the ``--negative-check llm`` pass's)."""
    from fault_proxy import RECORDING, FaultProxy, Recording
    from recorded_modes import MODES_RECORDING

    recording = Recording.load(RECORDING)
    modes = Recording.load(MODES_RECORDING)
    recording.answers.update(modes.answers)
    recording.requests.update(modes.requests)
    return FaultProxy(None, FaultConfig(replay=True, replay_delay_s=delay_s), recording=recording).start()


@pytest.mark.slow
def test_ctrl_c_during_the_llm_negative_check_keeps_both_checkpoints_and_the_resume_asks_only_the_rest(tmp_path):
    from recorded_modes import mode_cli_args

    args = mode_cli_args("llm-check")  # --concurrency 1 --negative-check llm on the recorded plan
    checks = lambda out: checkpoint_lines(out, "negative_check.jsonl")  # noqa: E731
    proxy = _modes_proxy(0.5)
    try:
        reference = tmp_path / "reference"
        done = run_to_end(reference, proxy.base_url, provider_args=args)
        assert done.returncode == 0, done.stderr[-2000:]

        run = CliRun(tmp_path / "hs", proxy.base_url, grace_s=20, provider_args=args)
        run.wait_for(lambda: len(checks(run.out)) >= 1, why="a negative-check line")
        run.send(signal.SIGINT)
        stopped = run.finish()
        assert stopped.returncode == 130, stopped.stderr[-2000:]
        calls, checked = checkpoint_lines(run.out), checks(run.out)
        assert stopped.kept == len(calls) + len(checked) and stopped.abandoned == 0, stopped.stderr[-2000:]
        assert len(checked) < len(checks(reference)), "stopped before the end of the check"
        assert not stopped.left

        proxy.reset_stats()
        done = run_to_end(run.out, proxy.base_url, provider_args=args)
        assert done.returncode == 0, done.stderr[-2000:]
        assert checkpoint_lines(run.out) == calls, "no generation call asked again"
        assert proxy.stats()["chat_requests"] == len(checks(run.out)) - len(checked), "each check asked once"
        fingerprint = lambda out: json.loads((out / "manifest.json").read_text())["fingerprint"]  # noqa: E731
        assert fingerprint(run.out) == fingerprint(reference)
        assert not proxy.missed(), proxy.missed()[:1]
    finally:
        proxy.stop()


FLOW = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from fault_proxy import plan_flow_params
from flows.generate_hardset import generate_hardset_flow
generate_hardset_flow(out=sys.argv[1], **plan_flow_params(records=100), concurrency=2, calls_per_task=1,
                      with_hardness=False)
"""


@pytest.mark.slow
def test_sigterm_to_a_flow_run_keeps_the_answers_of_its_task_runs_and_leaves_no_process(
        prefect_harness, replay, tmp_path, reference, monkeypatch):
    """What a Prefect cancellation sends (SIGTERM) to a process running generate-hardset."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    script = tmp_path / "flow.py"
    script.write_text(FLOW.format(root=str(ROOT), tests=str(ROOT / "tests")))
    with replay.fork(FaultConfig(replay=True, replay_delay_s=1.0)) as proxy:
        out = tmp_path / "hs"
        run = CliRun(out, proxy.base_url, grace_s=20, args=[sys.executable, str(script), str(out)])
        run.wait_for(lambda: len(checkpoint_lines(out)) >= 1, timeout=300, why="a checkpoint line")
        run.wait_for(lambda: call_in_flight(proxy, out), why="a call in flight")
        run.send(signal.SIGTERM)
        stopped = run.finish()
        asked = proxy.stats()["chat_requests"]
        assert stopped.lines == asked < PLAN_CALLS, f"every answer that reached the flow is kept: {stopped.stderr[-3000:]}"
        assert not stopped.left, f"processes of the run left: {stopped.left}"
        _resume_pays_each_answered_call_once(proxy, out, reference)


def _slow_describer(delay_s: float):
    """An OpenAI-compatible stub (``tests/json_stub.py``) that describes any label, ``delay_s`` per answer."""
    from json_stub import JsonStub, Reply

    def answer(request):
        if request.method == "GET":  # /v1/models
            return {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "test"}]}
        return Reply({"id": "x", "object": "chat.completion", "created": 0, "model": "stub",
                      "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content":
                                   json.dumps({"description": f"writing that is mostly about the matter {request.nth}"})}}],
                      "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}, delay_s=delay_s)

    return JsonStub(answer)


@pytest.mark.slow
def test_ctrl_c_during_describe_labels_keeps_the_descriptions_that_arrived(tmp_path, monkeypatch):
    labels = [f"label {i}" for i in range(12)]
    out = tmp_path / "descriptions.jsonl"
    with _slow_describer(1.0) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{stub.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "stub")
        args = [sys.executable, "-m", "gliznet.cli", "describe-labels", "--provider", "openai", "--llm", "stub",
                "--labels", ",".join(labels), "--concurrency", "2", "--out", str(out)]
        described = lambda: [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []  # noqa: E731
        run = CliRun(tmp_path, None, grace_s=20, args=args)
        run.wait_for(lambda: len(described()) >= 1, why="a description")
        run.wait_for(lambda: len(stub.posts) > max(2, len(described())), why="a call in flight")
        run.send(signal.SIGINT)
        stopped = run.finish()
        assert stopped.returncode == 130, stopped.stderr[-2000:]
        kept = len(described())
        assert stopped.kept == kept == len(stub.posts) < len(labels), stopped.stderr[-2000:]
        assert stopped.abandoned == 0 and not stopped.left

        asked = len(stub.posts)
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(stub.posts) - asked == len(labels) - kept, "the resume asks only the labels not described"
        assert sorted(line["label"] for line in described()) == sorted(labels)
