"""A small Ollama-API server for tests, forwarding to an OpenAI-compatible server (llama-server).

No Ollama binary can be installed on the test machines, yet ``OllamaProvider`` should be tested
with the real ``ollama`` client against a real model.  This shim speaks the part of Ollama's
REST API that the client uses and translates each request to the upstream's OpenAI routes
(``UPSTREAM/v1/chat/completions``, ``UPSTREAM/v1/models``):

=====================  ==========================================================================
Ollama route           what it does here
=====================  ==========================================================================
GET  /api/version      ``{"version": ...}``
GET  /api/tags         upstream model ids, as ``NAME:latest``
POST /api/show         details of one model; unknown -> 404 ``{"error": "model 'x' not found"}``
POST /api/chat         chat completion; ``stream`` (default true) -> NDJSON chunks, last ``done``
POST /api/generate     ``system`` + ``prompt`` as a chat; answers with ``response`` instead of ``message``
=====================  ==========================================================================

Mapping: ``format`` = JSON-schema dict -> ``response_format={"type": "json_schema", ...}``,
``format="json"`` -> ``{"type": "json_object"}``; ``options.temperature/seed/top_p/top_k/stop``
pass through, ``options.num_predict`` -> ``max_tokens``; upstream ``usage`` ->
``prompt_eval_count`` / ``eval_count``, upstream ``timings`` -> the ``*_duration`` fields (ns).

Run: ``python tests/ollama_api_server.py --port P --upstream http://127.0.0.1:Q/openai``
(``--port 0`` picks a free port).  It prints ``listening on http://HOST:PORT`` once ready.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.6.0"
OPTION_MAP = {"temperature": "temperature", "seed": "seed", "top_p": "top_p", "top_k": "top_k", "stop": "stop",
              "min_p": "min_p", "repeat_penalty": "repeat_penalty", "presence_penalty": "presence_penalty",
              "frequency_penalty": "frequency_penalty"}


class UpstreamError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def response_format(fmt) -> dict | None:
    """Ollama ``format`` -> OpenAI ``response_format``."""
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt}}
    if fmt == "json":
        return {"type": "json_object"}
    return None


def openai_body(model: str, messages: list[dict], req: dict, stream: bool) -> dict:
    body = {"model": model, "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    options = req.get("options") or {}
    for src, dst in OPTION_MAP.items():
        if options.get(src) is not None:
            body[dst] = options[src]
    if (options.get("num_predict") or -1) > 0:
        body["max_tokens"] = options["num_predict"]
    rf = response_format(req.get("format"))
    if rf:
        body["response_format"] = rf
    return body


def chat_messages(req: dict) -> list[dict]:
    out = []
    for m in req.get("messages") or []:
        out.append({"role": m.get("role", "user"), "content": m.get("content") or ""})
    return out


def generate_messages(req: dict) -> list[dict]:
    messages = [{"role": "system", "content": req["system"]}] if req.get("system") else []
    return messages + [{"role": "user", "content": req.get("prompt") or ""}]


def final_fields(usage: dict | None, timings: dict | None, started: float, finish: str | None) -> dict:
    usage, timings = usage or {}, timings or {}
    return {
        "done": True,
        "done_reason": "length" if finish == "length" else "stop",
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": 0,
        "prompt_eval_count": int(usage.get("prompt_tokens", timings.get("prompt_n", 0)) or 0),
        "prompt_eval_duration": int(float(timings.get("prompt_ms", 0)) * 1e6),
        "eval_count": int(usage.get("completion_tokens", timings.get("predicted_n", 0)) or 0),
        "eval_duration": int(float(timings.get("predicted_ms", 0)) * 1e6),
    }


class Upstream:
    """The OpenAI-compatible server behind the shim (``base`` ends before ``/v1``)."""

    def __init__(self, base: str, timeout: float = 600.0):
        self.base = base.rstrip("/")
        self.timeout = timeout

    def _open(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
                if isinstance(detail, dict):
                    detail = detail.get("message", json.dumps(detail))
            except (ValueError, AttributeError):
                pass
            raise UpstreamError(e.code, str(detail)) from None
        except (urllib.error.URLError, OSError) as e:
            raise UpstreamError(502, f"upstream {self.base} unreachable: {e}") from None

    def models(self) -> list[str]:
        with self._open("/v1/models") as r:
            return [m["id"] for m in json.load(r).get("data", [])]

    def chat(self, body: dict) -> dict:
        with self._open("/v1/chat/completions", body) as r:
            return json.load(r)

    def chat_stream(self, body: dict):
        """Yield the SSE ``data:`` objects of a streamed chat completion."""
        with self._open("/v1/chat/completions", body) as r:
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                yield json.loads(payload)


class Handler(BaseHTTPRequestHandler):
    server_version = "ollama-api-shim/" + VERSION
    upstream: Upstream  # set by serve()

    def log_message(self, fmt, *args):  # quiet: tests read only what matters
        pass

    # -- plumbing -----------------------------------------------------------------------------
    def _json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}") if n else {}

    def _resolve(self, name: str | None) -> tuple[str, str]:
        """Ollama name (``x`` or ``x:latest``) -> (upstream id, Ollama name); 404 if unknown."""
        name = name or ""
        base = name[:-len(":latest")] if name.endswith(":latest") else name
        if base not in self.upstream.models():
            raise UpstreamError(404, f"model '{name}' not found")
        return base, name

    def _dispatch(self, routes: dict) -> None:
        handler = routes.get(self.path.split("?")[0])
        if handler is None:
            self._json(404, {"error": f"404 page not found: {self.path}"})
            return
        try:
            handler()
        except UpstreamError as e:
            self._json(e.status, {"error": e.message})
        except (ValueError, KeyError, TypeError) as e:
            self._json(400, {"error": f"invalid request: {e}"})

    def do_GET(self):
        self._dispatch({"/": self.root, "/api/version": self.version, "/api/tags": self.tags})

    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        self._dispatch({"/api/chat": self.chat, "/api/generate": self.generate, "/api/show": self.show})

    # -- routes -------------------------------------------------------------------------------
    def root(self):
        data = b"Ollama is running"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def version(self):
        self._json(200, {"version": VERSION})

    def tags(self):
        models = []
        for mid in self.upstream.models():
            models.append({"name": f"{mid}:latest", "model": f"{mid}:latest", "modified_at": now_iso(), "size": 0,
                           "digest": hashlib.sha256(mid.encode()).hexdigest(),
                           "details": {"format": "gguf", "family": "llama", "families": ["llama"],
                                       "parameter_size": "", "quantization_level": ""}})
        self._json(200, {"models": models})

    def show(self):
        req = self._body()
        mid, _ = self._resolve(req.get("model") or req.get("name"))
        self._json(200, {"modelfile": f"FROM {mid}", "parameters": "", "template": "{{ .Prompt }}",
                         "details": {"format": "gguf", "family": "llama", "families": ["llama"],
                                     "parameter_size": "", "quantization_level": ""},
                         "model_info": {"general.architecture": "llama"}, "capabilities": ["completion"],
                         "modified_at": now_iso()})

    def chat(self):
        self._complete(self._body(), chat_messages, "message")

    def generate(self):
        req = self._body()
        if not req.get("prompt") and not req.get("system"):  # Ollama's "load the model" request
            _, name = self._resolve(req.get("model"))
            self._json(200, {"model": name, "created_at": now_iso(), "response": "", "done": True,
                             "done_reason": "load"})
            return
        self._complete(req, generate_messages, "response")

    def _complete(self, req: dict, to_messages, key: str) -> None:
        """One chat completion upstream; ``key`` is "message" (chat) or "response" (generate)."""
        mid, name = self._resolve(req.get("model"))
        stream = req.get("stream", True)
        body = openai_body(mid, to_messages(req), req, stream)
        started = time.perf_counter()

        def piece(text: str):
            return {"role": "assistant", "content": text} if key == "message" else text

        if not stream:
            r = self.upstream.chat(body)
            choice = r["choices"][0]
            out = {"model": name, "created_at": now_iso(), key: piece(choice["message"].get("content") or "")}
            out.update(final_fields(r.get("usage"), r.get("timings"), started, choice.get("finish_reason")))
            if key == "response":
                out["context"] = []
            self._json(200, out)
            return

        chunks = self.upstream.chat_stream(body)
        first = next(chunks, None)  # fail before the 200 if upstream refuses
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        usage = timings = finish = None
        for chunk in _prepend(first, chunks):
            usage = chunk.get("usage") or usage
            timings = chunk.get("timings") or timings
            for choice in chunk.get("choices") or []:
                finish = choice.get("finish_reason") or finish
                text = (choice.get("delta") or {}).get("content")
                if text:
                    self._line({"model": name, "created_at": now_iso(), key: piece(text), "done": False})
        last = {"model": name, "created_at": now_iso(), key: piece("")}
        last.update(final_fields(usage, timings, started, finish))
        if key == "response":
            last["context"] = []
        self._line(last)

    def _line(self, obj) -> None:
        self.wfile.write(json.dumps(obj).encode() + b"\n")
        self.wfile.flush()


def _prepend(first, rest):
    if first is not None:
        yield first
    yield from rest


def serve(port: int, upstream: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A ready (bound) server; call ``serve_forever()`` on it."""
    handler = type("BoundHandler", (Handler,), {"upstream": Upstream(upstream)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Ollama-API shim in front of an OpenAI-compatible server (tests only).")
    ap.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--upstream", required=True, help="OpenAI route prefix, e.g. http://127.0.0.1:Q/openai")
    args = ap.parse_args(argv)
    server = serve(args.port, args.upstream, args.host)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
