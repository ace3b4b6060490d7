"""Fixtures for the LLM, recorded and live (``from llm_fixtures import *`` in conftest).

Recorded (most tests):

* ``recording`` — the committed answers of the embedded SmolLM2-135M to ``RECORDED_PLAN``
  (``tests/data/recorded_answers.jsonl``, re-recorded by ``python tests/record_answers.py``), loaded once.
* ``replay``    — a started ``FaultProxy`` without upstream serving ``recording`` to the ``groq`` client
  (``base_url`` / ``GROQ_BASE_URL``); ``replay.fork(FaultConfig(...))`` adds faults.  At teardown the
  test fails if any request of it or its forks was not in the recording.

Live (the ``slow`` smoke tests that assert structure only; started only when such a test asks):

* ``llama_server`` — a started ``LocalLLMServer`` (llama-server + packaged SmolLM2-135M, 4 slots).
* ``ollama_api``   — base URL of ``tests/ollama_api_server.py`` running as a subprocess in front of
  ``llama_server``, so the real ``ollama`` client can be tested against the real model.

Also the small schema the LLM tests ask for: bounded lengths keep the 135M model's (meaningless)
answers short, so a call takes about a second.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_proxy import RECORDING, FaultConfig, FaultProxy, Recording

from gliznet.llm.local import LocalLLMServer

__all__ = ["recording", "replay", "llama_server", "ollama_api", "SMALL_SCHEMA", "SMALL_SYSTEM", "SMALL_USER"]

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

SHIM = Path(__file__).with_name("ollama_api_server.py")


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


@pytest.fixture(scope="session")
def llama_server():
    """The embedded llama-server, started once per test session."""
    with LocalLLMServer(parallel=4, ctx=8192) as server:
        yield server


@pytest.fixture(scope="session")
def ollama_api(llama_server):
    """``http://127.0.0.1:P`` of the Ollama-API shim forwarding to ``llama_server``."""
    proc = subprocess.Popen([sys.executable, str(SHIM), "--port", "0", "--upstream", llama_server.openai_url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = _first_line(proc, timeout=20.0)
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


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                return proc.stdout.readline().strip()
            if proc.poll() is not None:
                return f"exited with code {proc.returncode}"
    return f"no output within {timeout:.0f}s"
