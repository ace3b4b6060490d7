"""A fault-injecting HTTP proxy in front of the real local LLM server (test helper).

The generator must survive what a weekly unattended job meets: rate limits, dead or hanging
servers, connections cut mid-answer and garbage in an otherwise successful answer.  Instead of
mocking the client, this proxy sits on ``127.0.0.1`` between the real ``groq`` SDK and the real
``llama-server`` and breaks a configurable share of the chat-completion requests.

Read top to bottom:

1. ``FAULT_KINDS`` — what can go wrong, one name per fault:

   ============================  ===============================================================
   ``rate_limited``              HTTP 429 with ``Retry-After: <retry_after_s>`` (nothing forwarded)
   ``http_500`` / ``http_503``   HTTP 500 / 503 with a JSON error body (nothing forwarded)
   ``hang``                      no answer for ``hang_s`` seconds (past the client timeout), then close
   ``cut``                       headers + half of the real body, then the connection is closed
   ``malformed_content``         200, a real envelope whose ``content`` is not JSON
   ``truncated_content``         200, the real answer with its ``content`` cut in half
   ``wrong_typed_content``       200, ``content`` is JSON of the wrong shape / types
   ``malformed_body``            200 ``application/json`` whose body itself is cut in half
   ============================  ===============================================================

   The first five are *transient* (the provider must retry them within bounds); the ``*_content``
   ones are *answers* (the validator must turn them into counted rejections); ``malformed_body`` is
   a broken HTTP answer (the provider must not crash the run on it).

   ``max_tokens_cap`` (optional) lowers the ``max_tokens`` of every forwarded chat request: the
   135M model often loops until its token limit, and a cap keeps a test's upstream time bounded
   (such answers are cut JSON either way).  Replay keys use the request as the client sent it.

   ``require_key`` makes the proxy act like a cloud API checking keys: any request whose
   ``Authorization`` is not ``Bearer <require_key>`` gets HTTP 401 — and, like the worst real
   servers, the error message echoes the key it was given (so a client that logs server messages
   leaks it, which the secrets test would catch).

2. ``FaultConfig`` — ``rate`` (probability that a chat request gets a fault), ``kinds`` (drawn
   uniformly), ``seed``, ``retry_after_s``, ``hang_s``; ``replay`` (see 4) and ``replay_delay_s``.

3. ``FaultProxy`` — ``start()`` / ``stop()`` (or ``with``), ``base_url`` (give it to
   ``Groq(base_url=...)`` or ``GROQ_BASE_URL``), ``stats()`` (also served at ``GET /_stats``):
   requests by path, chat requests, faults injected by kind, and for every 429 the seconds until
   the same request body came back (``retry_after_gaps``: proves ``Retry-After`` is honoured).

4. Replay mode.  With ``replay=True`` the first 200 answer of upstream to each distinct request
   body (keyed by SHA-256 of method + path + body) is recorded and every later identical request
   gets the recorded bytes back, after ``replay_delay_s``.  The small local model is not
   reproducible even with a seed; replay makes "the same LLM responses" hold across processes, which
   the crash-resume test needs to compare fingerprints with an uninterrupted run.

Only ``POST .../chat/completions`` is ever faulted; ``/models``, ``/health`` etc. are forwarded as
they are, so ``provider.check()`` still works.  Run standalone:
``python tests/fault_proxy.py --upstream http://127.0.0.1:P --rate 0.3`` prints ``listening on URL``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRANSIENT_KINDS = ("rate_limited", "http_500", "http_503", "hang", "cut")
CONTENT_KINDS = ("malformed_content", "truncated_content", "wrong_typed_content")
FAULT_KINDS = (*TRANSIENT_KINDS, *CONTENT_KINDS, "malformed_body")
CHAT_PATH_SUFFIX = "/chat/completions"

WRONG_TYPED = (
    {"records": [{"text": 42, "labels": "sports", "not_labels": None}]},
    {"records": {"text": "a dict where a list belongs", "labels": ["x"], "not_labels": ["y"]}},
    {"records": [["text", "labels"], 7, None]},
    {"records": [{"text": ["nested", {"deep": [1, 2]}], "labels": [1, 2], "not_labels": [{"a": 1}]}]},
    [1, 2, 3],
    "just a string",
    None,
)


@dataclass
class FaultConfig:
    """What share of chat requests to break, and how."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after_s: float = 1.0
    hang_s: float = 5.0
    replay: bool = False
    replay_delay_s: float = 0.0
    upstream_timeout_s: float = 300.0
    max_tokens_cap: int | None = None
    require_key: str | None = None
    require_key_on: str = "all"  # "all" routes, or "chat" only (key revoked mid-run: check() passes)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate={self.rate} is invalid: pass a probability in [0, 1]")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds {sorted(unknown) or '()'} invalid: use some of {', '.join(FAULT_KINDS)}")


@dataclass
class _Stats:
    requests: Counter = field(default_factory=Counter)
    chat_requests: int = 0
    faults: Counter = field(default_factory=Counter)
    replayed: int = 0
    recorded: int = 0
    retry_after_gaps: list = field(default_factory=list)
    pending_429: dict = field(default_factory=dict)  # body hash -> time the 429 was sent


class FaultProxy:
    """HTTP proxy on 127.0.0.1 that forwards to ``upstream`` and injects faults (see module doc)."""

    def __init__(self, upstream: str, config: FaultConfig | None = None, port: int = 0):
        self.upstream = upstream.rstrip("/")
        self.config = config or FaultConfig()
        self._port = port
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._stats = _Stats()
        self._cache: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fault proxy is not started: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._stopping.clear()
        self._server = _QuietServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- control ---------------------------------------------------------------------------------
    def fork(self, config: FaultConfig) -> "FaultProxy":
        """A new (not started) proxy to the same upstream that shares this one's replay cache."""
        twin = FaultProxy(self.upstream, config)
        twin._cache = self._cache
        return twin

    def set_config(self, config: FaultConfig) -> None:
        """Change rates/kinds on the fly (the replay cache is kept)."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    def stats(self) -> dict:
        with self._lock:
            s = self._stats
            return {
                "requests": dict(s.requests),
                "chat_requests": s.chat_requests,
                "faults": dict(s.faults),
                "faults_total": sum(s.faults.values()),
                "transient_faults": sum(v for k, v in s.faults.items() if k in TRANSIENT_KINDS),
                "replayed": s.replayed,
                "recorded": s.recorded,
                "retry_after_gaps": list(s.retry_after_gaps),
            }

    # -- decisions (called by the handler) ---------------------------------------------------------
    def _arrived(self, path: str, key: str, is_chat: bool) -> str | None:
        """Count the request; return the fault kind to inject, or None."""
        now = time.monotonic()
        with self._lock:
            s = self._stats
            s.requests[path] += 1
            if not is_chat:
                return None
            s.chat_requests += 1
            sent = s.pending_429.pop(key, None)
            if sent is not None:
                s.retry_after_gaps.append(round(now - sent, 3))
            cfg = self.config
            if cfg.rate <= 0 or self._rng.random() >= cfg.rate:
                return None
            kind = self._rng.choice(cfg.kinds)
            s.faults[kind] += 1
            if kind == "rate_limited":
                s.pending_429[key] = now
            return kind

    def _cached(self, key: str):
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._stats.replayed += 1
            return hit

    def _remember(self, key: str, answer) -> None:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = answer
                self._stats.recorded += 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client killed mid-request (the crash tests do that) is expected, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
               "te", "trailer", "upgrade", "host", "accept-encoding"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/_stats":
            self._send(200, [("Content-Type", "application/json")], json.dumps(self.owner.stats()).encode())
            return
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")

    # -- the work ----------------------------------------------------------------------------------
    def _handle(self, body: bytes) -> None:
        owner = self.owner
        cfg = owner.config
        path = self.path.split("?", 1)[0]
        is_chat = self.command == "POST" and path.endswith(CHAT_PATH_SUFFIX)
        key = hashlib.sha256(self.command.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
        kind = owner._arrived(path, key, is_chat)

        presented = self.headers.get("Authorization", "").removeprefix("Bearer ")
        guarded = cfg.require_key_on == "all" or is_chat
        if cfg.require_key is not None and guarded and presented != cfg.require_key:
            self._send(401, [("Content-Type", "application/json")], json.dumps(
                {"error": {"message": f"Invalid API Key: {presented}", "type": "invalid_request_error",
                           "code": "invalid_api_key"}}).encode())
            return

        if kind == "rate_limited":
            self._send(429, [("Content-Type", "application/json"), ("Retry-After", _num(cfg.retry_after_s))],
                       b'{"error": {"message": "rate limited by the fault proxy", "type": "rate_limit"}}')
            return
        if kind in ("http_500", "http_503"):
            code = int(kind[-3:])
            self._send(code, [("Content-Type", "application/json")],
                       json.dumps({"error": {"message": f"fault proxy: HTTP {code}"}}).encode())
            return
        if kind == "hang":
            owner._stopping.wait(cfg.hang_s)
            self._drop()
            return

        answer = owner._cached(key) if cfg.replay and is_chat else None
        if answer is not None:
            if cfg.replay_delay_s:
                time.sleep(cfg.replay_delay_s)
        else:
            answer = self._forward(path, body)
            if answer is None:
                return
            if cfg.replay and is_chat and answer[0] == 200:
                owner._remember(key, answer)
        status, headers, payload = answer

        if kind == "cut":
            self._send(status, headers, payload, cut=True)
            return
        if kind in CONTENT_KINDS and status == 200:
            payload = _mutate_content(payload, kind, owner._rng)
        elif kind == "malformed_body":
            payload = payload[: max(1, len(payload) // 2)]
        self._send(status, headers, payload)

    def _forward(self, path: str, body: bytes):
        cap = self.owner.config.max_tokens_cap
        if cap and body and path.endswith(CHAT_PATH_SUFFIX):
            try:
                request = json.loads(body)
                request["max_tokens"] = min(int(request.get("max_tokens") or cap), cap)
                body = json.dumps(request).encode()
            except (ValueError, TypeError, AttributeError):
                pass
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Content-Length"] = str(len(body))
        req = urllib.request.Request(self.owner.upstream + self.path, data=body if self.command == "POST" else None,
                                     headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(req, timeout=self.owner.config.upstream_timeout_s) as r:
                return r.status, _keep(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, _keep(e.headers.items()), e.read()
        except (urllib.error.URLError, OSError):
            self._send(502, [("Content-Type", "application/json")], b'{"error": {"message": "upstream unreachable"}}')
            return None

    def _send(self, status: int, headers, payload: bytes, cut: bool = False) -> None:
        try:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if cut:
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self._drop()
            else:
                self.wfile.write(payload)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self) -> None:
        """Close the client connection abruptly (no response, or a partial one)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _keep(items) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in HOP_HEADERS]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _mutate_content(payload: bytes, kind: str, rng: random.Random) -> bytes:
    """Replace ``choices[0].message.content`` of a real chat completion according to ``kind``."""
    try:
        envelope = json.loads(payload)
        content = envelope["choices"][0]["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return payload
    if kind == "malformed_content":
        new = rng.choice(['{"records": [{"text": "unterminated', "Sure! Here is your JSON:", "{'records': []}",
                          "\x00\x01 not json \ud800".encode("utf-8", "replace").decode("utf-8"), ""])
    elif kind == "truncated_content":
        new = content[: len(content) // 2]
    else:
        new = json.dumps(rng.choice(WRONG_TYPED))
    envelope["choices"][0]["message"]["content"] = new
    return json.dumps(envelope).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="server root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--hang", type=float, default=5.0)
    parser.add_argument("--replay", action="store_true")
    args = parser.parse_args()
    config = FaultConfig(rate=args.rate, kinds=tuple(k for k in args.kinds.split(",") if k), seed=args.seed,
                         retry_after_s=args.retry_after, hang_s=args.hang, replay=args.replay)
    with FaultProxy(args.upstream, config, port=args.port) as proxy:
        print(f"listening on {proxy.base_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()


# -- one recorded LLM per test session ---------------------------------------------------------------
# Tests of faults, crashes and secrets all run the same small generation plan (``RECORDED_PLAN``)
# through a replay proxy whose cache is filled once from the real model: every run then sees the
# real model's answers, fast and identical, while the faults are injected for real on the HTTP layer.

RECORDED_PLAN = {"seed": 7, "records": 6, "records_per_call": 2, "max_calls": 12}
UPSTREAM_MAX_TOKENS = 320
_SHARED: dict[str, FaultProxy] = {}


def recorded_proxy(upstream_base_url: str, alias: str, calls: int | None = None) -> FaultProxy:
    """A started replay ``FaultProxy`` (no faults) whose cache holds the real model's answers to the
    first ``calls`` calls of ``RECORDED_PLAN``; shared by every test module of the session."""
    from concurrent.futures import ThreadPoolExecutor

    from gliznet.generate import GenerateConfig, plan_call, run_call
    from gliznet.llm.groq import GroqProvider
    from gliznet.prompts import load_prompt

    if upstream_base_url in _SHARED:
        return _SHARED[upstream_base_url]
    proxy = FaultProxy(upstream_base_url, FaultConfig(replay=True, max_tokens_cap=UPSTREAM_MAX_TOKENS)).start()
    config = GenerateConfig(provider="groq", model=alias, **{k: v for k, v in RECORDED_PLAN.items()})
    prompt = load_prompt(config.prompt_id)
    provider = GroqProvider(alias, api_key="recording-needs-no-key", base_url=proxy.base_url, timeout=600,
                            concurrency=4)
    with provider, ThreadPoolExecutor(4) as pool:
        lines = list(pool.map(lambda i: run_call(provider, prompt, plan_call(config.seed, i), config),
                              range(calls or config.call_budget)))
    failed = [line for line in lines if not line.get("ok")]
    if failed:
        proxy.stop()
        raise RuntimeError(f"recording the real model failed: {failed[0].get('detail')}")
    proxy.reset_stats()
    _SHARED[upstream_base_url] = proxy
    return proxy


def plan_cli_args(alias: str) -> list[str]:
    """``gliznet generate`` options that reproduce ``RECORDED_PLAN`` exactly (same request bodies)."""
    p = RECORDED_PLAN
    return ["--provider", "groq", "--model", alias, "--seed", str(p["seed"]), "--records", str(p["records"]),
            "--records-per-call", str(p["records_per_call"]), "--max-calls", str(p["max_calls"])]
