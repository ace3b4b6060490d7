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

from json_stub import JsonStub, Reply, Request

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


class ScriptedOpenAI(JsonStub):
    """``answer`` as an OpenAI-compatible server (a started ``JsonStub``; ``base_url`` ends in ``/v1``);
    ``check_delay_s`` slows each negative-check answer; ``prompts`` lists the user prompts in arrival order."""

    MODEL = "scripted-model"

    def __init__(self, check_delay_s: float = 0.0):
        self.check_delay_s = check_delay_s
        super().__init__(self._answer)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def prompts(self) -> list[str]:
        return [request.body["messages"][-1]["content"] for request in self.posts]

    def _answer(self, request: Request) -> Reply | dict:
        if request.method == "GET":  # /v1/models
            return {"object": "list", "data": [{"id": self.MODEL, "object": "model", "created": 0, "owned_by": "test"}]}
        user = request.body["messages"][-1]["content"]
        content = answer(user, request.body.get("seed"))
        return Reply({"id": "x", "object": "chat.completion", "created": 0, "model": request.body["model"],
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": content}}],
                      "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}},
                     delay_s=self.check_delay_s if "listed as WRONG" in user else 0.0)
