"""Shared fixtures and helpers: one fixture per real component, started for real and once per session.

The LLM, recorded (most tests):

* ``recording`` — the committed answers of the embedded SmolLM2-135M to ``RECORDED_PLAN``
  (``tests/data/recorded_answers.jsonl``, re-recorded by ``python tests/record_answers.py``), loaded once.
* ``replay``    — a started ``FaultProxy`` without upstream serving ``recording`` to the ``groq`` client
  (``base_url`` / ``GROQ_BASE_URL``); ``replay.fork(FaultConfig(...))`` adds faults.  At teardown the
  test fails if any request of it or its forks was not in the recording.

The LLM, live (the ``slow`` smoke tests that assert structure only; started only when such a test asks):

* ``llama_server`` — a started ``LocalLLMServer`` (llama-server + packaged SmolLM2-135M, 4 slots).
* ``ollama_api``   — base URL of ``tests/ollama_api_server.py`` running as a subprocess in front of
  ``llama_server``, so the real ``ollama`` client can be tested against the real model.

Prefect: ``prefect_harness``, one local server (SQLite) for the session.  The real eval sets: ``eval_dir``
(``$GLIZNET_EVAL_DIR``, by default ``../shared/eval`` beside the checkout).

Helpers (plain functions, ``from conftest import ...``): ``run_cli`` / ``assert_one_clear_error`` (a real
``python -m gliznet.cli`` process and its one-line error), ``load_bench`` (a ``bench/`` script as a module),
and the small schema the LLM tests ask for (``SMALL_SCHEMA``: bounded lengths keep the 135M model's
meaningless answers short, so a call takes about a second).

Whatever trains, starts one of these servers or runs the CLI in a subprocess is marked ``slow``.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from fault_proxy import RECORDING, FaultConfig, FaultProxy, Recording
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
EVAL_DIR_UNSET = "GLIZNET_EVAL_DIR" not in os.environ
os.environ.setdefault("GLIZNET_EVAL_DIR", str(ROOT.parent / "shared" / "eval"))
sys.path.insert(0, str(ROOT))

# Property tests run their examples in full on a busy 2-core machine: no deadline (a slow example is not a
# bug), and slow data generation is expected of the text strategies rather than a health problem.
settings.register_profile("gliznet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("gliznet")


# -- helpers ---------------------------------------------------------------------------------------
def run_cli(*args: str, env_drop: tuple[str, ...] = (), timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m gliznet.cli ARGS`` in a real process from the checkout (offline, wide console)."""
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gliznet.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_clear_error(done: subprocess.CompletedProcess, *must_name: str) -> str:
    """A failed command's stderr ends with exactly one ``error:`` line, naming ``must_name`` and the fix."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    for word in must_name:
        assert word in errors[0], errors[0]
    says_fix = ":" in errors[0].removeprefix("error:") or " must be " in errors[0]
    assert says_fix, f"the line names the problem but not the fix: {errors[0]}"
    return errors[0]


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (bench/ is scripts, not a package)."""
    path = ROOT / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


SMALL_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 120},
        "labels": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 24},
                   "minItems": 1, "maxItems": 3},
    },
    "required": ["text", "labels"],
    "additionalProperties": False,
}
SMALL_SYSTEM = "You write short product reviews as JSON."
SMALL_USER = "Write one review of a kettle and list the topic labels that apply."


# -- the real eval sets ----------------------------------------------------------------------------
def shared_eval_dir() -> Path:
    """``$GLIZNET_EVAL_DIR`` (by default ``../shared/eval`` beside the checkout); a missing or empty folder fails
    the calling test with one line saying what to set (it never skips)."""
    path = Path(os.environ.get("GLIZNET_EVAL_DIR") or ROOT.parent / "shared" / "eval")
    if not path.is_dir() or not any(path.glob("*.jsonl")):
        where = f"{path} (GLIZNET_EVAL_DIR is unset: the default)" if EVAL_DIR_UNSET else f"GLIZNET_EVAL_DIR={path}"
        pytest.fail(f"real eval sets not found at {where}: set GLIZNET_EVAL_DIR to ../shared/eval (a folder of "
                    "{text, labels} .jsonl files)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """``shared_eval_dir()``, once per session."""
    return shared_eval_dir()


# -- the LLM, recorded -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def recording() -> Recording:
    """The committed recorded answers (a missing or stale file says to run tests/record_answers.py)."""
    return Recording.load(RECORDING)


@pytest.fixture()
def replay(recording):
    """A replay proxy (no upstream, no faults) over ``recording``; fails the test on any miss."""
    with FaultProxy(None, FaultConfig(replay=True), recording=recording) as proxy:
        yield proxy
    missed = proxy.missed()
    if missed:
        pytest.fail(f"{len(missed)} request(s) were not in the recording; the first: {missed[0]}", pytrace=False)


# -- the LLM, live ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def llama_server():
    """The embedded llama-server, started once per test session."""
    from gliznet.llm.local import LocalLLMServer

    with LocalLLMServer(parallel=4, ctx=8192) as server:
        yield server


@pytest.fixture(scope="session")
def ollama_api(llama_server):
    """``http://127.0.0.1:P`` of the Ollama-API shim forwarding to ``llama_server``."""
    shim = ROOT / "tests" / "ollama_api_server.py"
    from gliznet._process import spawn  # dies with the test process, however it dies

    proc = spawn([sys.executable, str(shim), "--port", "0", "--upstream", llama_server.openai_url],
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = first_line(proc, timeout=20.0)
        if not line.startswith("listening on "):
            raise RuntimeError(f"ollama_api_server.py did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first line ``proc`` writes to its stdout pipe, waiting at most ``timeout`` s (else what happened instead)."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                return proc.stdout.readline().strip()
            if proc.poll() is not None:
                return f"exited with code {proc.returncode}"
    return f"no output within {timeout:.0f}s"


# -- Prefect ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One local Prefect server (SQLite) for the whole session, started for real."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
