"""A scripted LLM for the bundle, seed and negative-check tests: valid, deterministic answers chosen from the
prompt, so the pipeline's accounting can be asserted exactly.  Two faces of the same script:

* ``ScriptedProvider`` — an in-process provider on the real retry/usage machinery (``LLMProvider``);
* ``ScriptedOpenAI``   — a real HTTP server with OpenAI routes (``/v1/models``, ``/v1/chat/completions``), for
  runs of the real CLI through the ``openai`` provider (``--base-url``) in a separate process.

The script (``answer(user, seed)``):

* a bundle prompt (``BUNDLE``) -> 3 texts over the pool a..e where exactly one pool label (``extra``) is never
  a positive: 4 of 5 pool labels satisfy the cross-role rule and 1 of 3 texts breaks it;
* a negative-check prompt (``listed as WRONG``) -> the record's first listed negative named as true, plus one
  label that is not among its negatives (ignored and counted);
* an aimed prompt (``generate --labels``: ``{"texts": [...]}``) -> ``n`` texts;
* any other generation prompt -> ``n`` plain records.
Texts are random words seeded by the call, so no two calls' texts are near duplicates.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gliznet.llm.provider import LLMProvider

WORDS = ("harbour kettle violin glacier orchard ledger falcon lantern meadow quarry saddle thimble "
         "compass furnace garnet hammock iceberg juniper kiln lagoon mosaic nectar oyster parchment "
         "quiver rafter sapphire tundra umbrella velvet walnut yarrow zephyr anchor bramble cobalt "
         "dune ember fjord grotto heron inlet jasmine kestrel lichen marble nutmeg obsidian pebble").split()
BUNDLE = [(["alpha topic"], ["beta topic", "gamma topic", "delta topic"]),
          (["beta topic"], ["alpha topic", "gamma topic", "delta topic"]),
          (["gamma topic", "delta topic"], ["alpha topic", "beta topic", "extra topic"])]
ASKED_N = re.compile(r"(?:exactly|into) (\d+) (?:records|different texts|strings)")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + "."


def answer(user: str, seed: int | None) -> str:
    rng = random.Random(seed if seed is not None else hashlib.sha256(user.encode()).hexdigest())
    if "listed as WRONG" in user:
        listed = [line[2:].strip() for line in user.splitlines() if line.startswith("- ")]
        return json.dumps({"true_labels": listed[:1] + ["not one of them"]})
    if "BUNDLE" in user:
        return json.dumps({"pool": ["alpha topic", "beta topic", "gamma topic", "delta topic", "extra topic"],
                           "records": [{"text": _text(rng), "labels": pos, "not_labels": neg} for pos, neg in BUNDLE]})
    found = ASKED_N.search(user)
    n = int(found.group(1)) if found else 1
    if '{"texts"' in user:
        return json.dumps({"texts": [_text(rng) for _ in range(n)]})
    return json.dumps({"records": [{"text": _text(rng), "labels": ["plain topic"],
                                    "not_labels": ["other one", "other two", "other three"]} for _ in range(n)]})


class ScriptedProvider(LLMProvider):
    """``answer`` behind the real ``complete_json`` (retries, usage); ``prompts`` lists the user prompts."""

    name = "scripted"

    def __init__(self, concurrency: int = 2):
        super().__init__("script", concurrency=concurrency, max_retries=0, backoff_s=0.0, max_backoff_s=0.0)
        self.prompts: list[str] = []

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        with self._lock:
            self.prompts.append(user)
        return answer(user, seed), 20, 10

    def check(self):
        pass


class _Handler(BaseHTTPRequestHandler):
    server: "ScriptedOpenAI"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._send({"object": "list", "data": [{"id": ScriptedOpenAI.MODEL, "object": "model", "created": 0,
                                                "owned_by": "test"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        user = body["messages"][-1]["content"]
        self.server.record(user)
        if "listed as WRONG" in user:
            time.sleep(self.server.check_delay_s)
        content = answer(user, body.get("seed"))
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}})


class ScriptedOpenAI(ThreadingHTTPServer):
    """``answer`` as an OpenAI-compatible server; ``check_delay_s`` slows each negative-check answer."""

    MODEL = "scripted-model"
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client killed mid-answer (SIGKILL tests): quiet
        pass

    def __init__(self, check_delay_s: float = 0.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.check_delay_s = check_delay_s
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    def record(self, user: str) -> None:
        with self._lock:
            self.prompts.append(user)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
