"""One JSON-over-HTTP stub server for the tests, instead of a hand-written ``BaseHTTPRequestHandler`` in each.

    with JsonStub(lambda request: Reply({"error": "busy"}, status=429) if request.index == 0 else OK) as stub:
        provider = make_provider("groq", "fake", base_url=stub.url)
        ...
    stub.posts[1].at - stub.posts[0].at   # arrival times, bodies, headers of every request

``answer(request) -> Reply`` decides each answer from a ``Request`` (its index in arrival order, overall and among
its method's, arrival time, method, path, decoded JSON body, headers); a plain value is a 200 answer with that JSON.  The stub records
every request and the peak number in flight (from arrival until the answer's delay has passed); it listens on
127.0.0.1, answers from a thread per request, and a client that hangs up mid-answer is not an error.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Request:
    index: int  # in arrival order
    nth: int  # in arrival order among the requests of its method (the 0th POST, the 1st POST, ...)
    at: float  # time.monotonic() at arrival
    method: str
    path: str
    body: Any  # the decoded JSON body, None without one
    headers: Message  # .get() ignores the case of the name


@dataclass
class Reply:
    payload: Any
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering (a slow server, a timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client killed mid-answer: quiet
        pass


class JsonStub:
    """A started stub answering with ``answer(request)``; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, answer: Callable[[Request], Reply | Any]):
        self.answer = answer
        self.requests: list[Request] = []
        self.in_flight = self.peak_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                stub._serve(self, "GET")

            def do_POST(self):  # noqa: N802
                stub._serve(self, "POST")

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._lock:
            nth = sum(1 for r in self.requests if r.method == method)
            request = Request(len(self.requests), nth, time.monotonic(), method, handler.path,
                              json.loads(raw) if raw else None, handler.headers)
            self.requests.append(request)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = self.answer(request)
            reply = reply if isinstance(reply, Reply) else Reply(reply)
            time.sleep(reply.delay_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        data = json.dumps(reply.payload).encode()
        try:
            handler.send_response(reply.status)
            for key, value in {**reply.headers, "Content-Type": "application/json",
                               "Content-Length": str(len(data))}.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "JsonStub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
