"""``--provider local``: the embedded llama-server is started, used and stopped for real.

``LocalProvider`` (gliznet/llm/local.py, next to the server) owns the server it starts; attaching
to a running one is tested in test_providers.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest
from conftest import SMALL_SCHEMA, SMALL_SYSTEM, SMALL_USER

from gliznet.llm.local import (
    LocalLLMServer,
    LocalProvider,
    llama_server_binary,
    smollm2_gguf_path,
)
from gliznet.llm.registry import make_provider


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_packaged_model_and_binary_are_found():
    assert smollm2_gguf_path().endswith(".gguf") and os.path.getsize(smollm2_gguf_path()) > 50_000_000
    assert os.access(llama_server_binary(), os.X_OK)


@pytest.mark.slow
def test_make_provider_local_serves_concurrent_calls_and_stops_the_server_on_close():
    llm = make_provider("local", "smollm2", concurrency=4)
    server = llm.server
    pid, health = server.pid, server.openai_url + "/health"
    assert process_exists(pid) and llm.model == "smollm2" and llm.base_url == server.base_url
    assert isinstance(llm, LocalProvider) and llm.name == "local"
    llm.check()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: llm.complete_json(SMALL_SYSTEM, f"{SMALL_USER} #{i}", SMALL_SCHEMA,
                                                            seed=i, max_tokens=400), range(5)))
    wall = time.perf_counter() - start
    for c in results:
        jsonschema.validate(json.loads(c.text), SMALL_SCHEMA)
    usage = llm.usage
    assert usage.calls == 5 and usage.failed_calls == 0 and usage.completion_tokens > 0
    print(f"\n5 calls, concurrency 4: wall {wall:.2f}s, mean latency "
          f"{sum(c.latency_s for c in results) / 5:.2f}s, {usage.completion_tokens / wall:.0f} completion tok/s")
    llm.close()
    assert not process_exists(pid)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(health, timeout=2)


@pytest.mark.slow
def test_startup_failure_reports_the_server_output():
    server = LocalLLMServer(model_path="/nonexistent/model.gguf")
    with pytest.raises(RuntimeError, match=r"llama-server exited with code \d+ before it was ready; last output:\n"):
        server.start()
    assert not server.is_running()


@pytest.mark.slow
def test_context_manager_stops_the_server_it_started():
    with LocalLLMServer(parallel=1, ctx=1024) as server:
        pid = server.pid
        with urllib.request.urlopen(server.openai_url + "/v1/models", timeout=5) as r:
            assert [m["id"] for m in json.load(r)["data"]] == ["smollm2"]
    assert not process_exists(pid) and "stopped" in repr(server)


@pytest.mark.slow
def test_server_left_running_is_stopped_when_python_exits():
    code = ("from gliznet.llm.local import LocalLLMServer; "
            "s = LocalLLMServer(parallel=1, ctx=1024).start(); print(s.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_exists(pid)
