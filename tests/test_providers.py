"""LLM providers against the real local model (llama-server, Ollama-API shim) and a scripted HTTP server.

The real model proves the request/response plumbing (schema-valid JSON, token accounting); the
scripted server proves the failure handling the real model never shows (429 + Retry-After, 5xx,
400, timeouts) and counts requests in flight to check the concurrency limit.  The package layout
(interface below, registry above the providers, one ``base_url``) is checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import ollama
import pytest
from conftest import SMALL_SCHEMA, SMALL_SYSTEM, SMALL_USER
from json_stub import JsonStub, Reply

from gliznet.llm.groq import GroqProvider
from gliznet.llm.local import LocalProvider, free_port
from gliznet.llm.provider import LLMCallError, LLMConfigError, parse_retry_after
from gliznet.llm.registry import PROVIDERS, ProviderSpec, make_provider, provider_for


@pytest.fixture
def groq_key(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_secret_value")
    return "gsk_test_secret_value"


def assert_small_record(text: str) -> dict:
    record = json.loads(text)
    jsonschema.validate(record, SMALL_SCHEMA)
    assert isinstance(record["text"], str) and all(isinstance(x, str) for x in record["labels"])
    return record


# -- real model: groq SDK -> llama-server --------------------------------------------------------
@pytest.mark.slow
def test_groq_provider_returns_schema_valid_json_from_llama_server(llama_server, groq_key):
    with make_provider("groq", llama_server.alias, base_url=llama_server.base_url) as llm:
        llm.check()
        c = llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA, seed=7, temperature=0.7, max_tokens=400)
    assert_small_record(c.text)
    assert c.model == llama_server.alias and c.attempts == 1 and c.latency_s > 0
    assert c.prompt_tokens > 0 and c.completion_tokens > 0
    assert llm.usage.as_dict() == {"calls": 1, "failed_calls": 0, "retries": 0, "prompt_tokens": c.prompt_tokens,
                                   "completion_tokens": c.completion_tokens, "llm_seconds": llm.usage.llm_seconds}
    assert llm.usage.llm_seconds > 0


@pytest.mark.slow
def test_groq_check_names_a_model_the_server_does_not_serve(llama_server, groq_key):
    with make_provider("groq", "no-such-model", base_url=llama_server.base_url) as llm:
        with pytest.raises(LLMConfigError, match="no-such-model.*smollm2"):
            llm.check()


def test_missing_groq_key_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match=r"^GROQ_API_KEY is not set: .*--provider local"):
        make_provider("groq")


def test_groq_key_never_appears_in_repr_or_errors(groq_key):
    llm = make_provider("groq", "m", base_url=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(LLMCallError) as err:
        llm.complete_json("s", "u", SMALL_SCHEMA)
    with pytest.raises(LLMConfigError) as cfg:
        llm.check()
    assert err.value.reason == "connection"
    for text in (repr(llm), str(err.value), str(cfg.value)):
        assert groq_key not in text


def test_unknown_provider_name_lists_the_choices():
    with pytest.raises(LLMConfigError, match="unknown provider 'vllm': use one of local, ollama, groq, openai"):
        make_provider("vllm")


# -- package layout: interface, providers, registry ---------------------------------------------
@pytest.mark.slow
def test_the_provider_interface_imports_no_provider():
    """``provider.py`` is the interface only: importing it (and the package) loads no provider module."""
    code = ("import sys, gliznet.llm.provider, gliznet.llm; "
            "mods = ('gliznet.llm.groq', 'gliznet.llm.ollama', 'gliznet.llm.local', 'gliznet.llm.openai'); "
            "loaded = [m for m in mods if m in sys.modules]; assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_registry_builds_every_declared_provider_with_one_endpoint_attribute(monkeypatch, groq_key):
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9/")
    url = f"http://127.0.0.1:{free_port()}"
    assert PROVIDERS == ("local", "ollama", "groq", "openai")
    built = {"groq": make_provider("groq", "m", base_url=url), "ollama": make_provider("ollama", "m"),
             "local": make_provider("local", base_url=url),  # local with a URL: attaches, starts nothing
             "openai": make_provider("openai", "m", base_url=url + "/v1")}
    assert set(built) == set(PROVIDERS)
    assert {name: llm.base_url for name, llm in built.items()} == {"groq": url, "ollama": "http://127.0.0.1:9",
                                                                  "local": url, "openai": url + "/v1"}
    assert built["local"].name == "local" and built["local"].server is None and built["local"].model == "qwen2.5-coder-1.5b"  # the default embedded writer
    for llm in built.values():
        assert provider_for(ProviderSpec.of(llm)).base_url == llm.base_url
        llm.close()


def test_a_provider_spec_travels_without_the_key_and_rebuilds_once_per_process(groq_key):
    with GroqProvider("some-model", base_url="http://127.0.0.1:9", concurrency=3, timeout=7.0) as llm:
        spec = ProviderSpec.of(llm)
    blob = pickle.dumps(spec)
    assert groq_key.encode() not in blob and pickle.loads(blob) == spec
    assert (spec.name, spec.base_url, spec.concurrency, spec.timeout) == ("groq", "http://127.0.0.1:9", 3, 7.0)
    assert provider_for(spec) is provider_for(pickle.loads(blob))


@pytest.mark.slow
def test_local_provider_attaches_to_a_running_server_and_leaves_it_running(llama_server):
    by_object = LocalProvider(server=llama_server)
    by_url = provider_for(ProviderSpec.of(by_object))
    assert isinstance(by_url, LocalProvider) and by_url is not by_object and by_url.base_url == llama_server.base_url
    for llm in (by_object, by_url):
        llm.check()  # the server lists the alias
        assert llm.name == "local" and llm.model == llama_server.alias
    by_object.close()
    by_url.close()
    assert llama_server.is_running(), "an attached provider never stops a server it did not start"
    with pytest.raises(LLMConfigError, match="server= or base_url="):
        LocalProvider(server=llama_server, base_url=llama_server.base_url)


# -- real model: ollama client -> shim -> llama-server ---------------------------------------------
@pytest.mark.slow
def test_ollama_provider_returns_schema_valid_json_through_the_api(ollama_api, llama_server):
    with make_provider("ollama", llama_server.alias, base_url=ollama_api) as llm:
        llm.check()
        c = llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA, seed=3, temperature=0.7, max_tokens=400)
    assert_small_record(c.text)
    assert c.prompt_tokens > 0 and c.completion_tokens > 0 and c.attempts == 1
    assert llm.usage.calls == 1 and llm.usage.completion_tokens == c.completion_tokens


@pytest.mark.slow
def test_ollama_api_streams_ndjson_and_generates(ollama_api, llama_server):
    client = ollama.Client(host=ollama_api)
    assert client.list().models[0].model == f"{llama_server.alias}:latest"
    chunks = list(client.chat(model=f"{llama_server.alias}:latest", stream=True, format=SMALL_SCHEMA,
                              messages=[{"role": "user", "content": SMALL_USER}], options={"num_predict": 300}))
    assert [c.done for c in chunks].count(True) == 1 and chunks[-1].done and len(chunks) > 2
    assert chunks[-1].eval_count > 0 and chunks[-1].prompt_eval_count > 0
    assert_small_record("".join(c.message.content for c in chunks))
    gen = client.generate(model=llama_server.alias, prompt=SMALL_USER, system=SMALL_SYSTEM, format="json",
                          options={"num_predict": 64, "temperature": 0.0, "seed": 1}, stream=False)
    assert gen.done and gen.eval_count > 0 and isinstance(gen.response, str)


@pytest.mark.slow
def test_unknown_ollama_model_is_a_config_error(ollama_api):
    llm = make_provider("ollama", "llama3.2", base_url=ollama_api)
    with pytest.raises(LLMConfigError, match=r"model 'llama3.2' is not available .*ollama pull llama3.2"):
        llm.check()
    with pytest.raises(ollama.ResponseError, match="model 'nope' not found") as err:
        ollama.Client(host=ollama_api).chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404


def test_unreachable_ollama_host_is_a_config_error_naming_ollama_host():
    llm = make_provider("ollama", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(LLMConfigError, match="cannot reach Ollama at http://127.0.0.1:.*OLLAMA_HOST"):
        llm.check()


# -- scripted server: retries, Retry-After, concurrency ------------------------------------------
OPENAI_OK = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
             "choices": [{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": '{"text": "t", "labels": ["a"]}'}}],
             "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}
OLLAMA_OK = {"model": "fake", "created_at": "2024-01-01T00:00:00Z", "done": True, "done_reason": "stop",
             "message": {"role": "assistant", "content": '{"text": "t", "labels": ["a"]}'},
             "prompt_eval_count": 11, "eval_count": 5}


@pytest.fixture
def scripted():
    """``scripted(script)`` starts a ``JsonStub`` answering POST ``n`` with ``script(n) -> (status, headers, body,
    delay_s)``."""
    stubs = []

    def start(script) -> JsonStub:
        def answer(request):
            if request.method != "POST":
                return Reply({"error": "only POST is scripted"}, status=501)
            status, headers, body, delay = script(request.nth)
            return Reply(body, status, headers, delay)

        stubs.append(JsonStub(answer))
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.close()


def test_rate_limit_is_retried_after_the_retry_after_delay(scripted, groq_key):
    server = scripted(lambda n: (429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}, 0) if n == 0
                      else (200, {}, OPENAI_OK, 0))
    llm = make_provider("groq", "fake", base_url=server.url, max_retries=3)
    c = llm.complete_json("s", "u", SMALL_SCHEMA)
    assert c.attempts == 2 and json.loads(c.text)["labels"] == ["a"]
    assert server.posts[1].at - server.posts[0].at >= 0.95
    assert llm.usage.as_dict() | {"llm_seconds": 0} == {"calls": 1, "failed_calls": 0, "retries": 1,
                                                        "prompt_tokens": 11, "completion_tokens": 5, "llm_seconds": 0}


def test_rate_limit_retry_after_is_honoured_for_ollama_too(scripted):
    server = scripted(lambda n: (429, {"Retry-After": "1"}, {"error": "busy"}, 0) if n == 0 else (200, {}, OLLAMA_OK, 0))
    llm = make_provider("ollama", "fake", base_url=server.url, max_retries=2)
    c = llm.complete_json("s", "u", SMALL_SCHEMA)
    assert c.attempts == 2 and c.prompt_tokens == 11 and c.completion_tokens == 5
    assert server.posts[1].at - server.posts[0].at >= 0.95


def test_server_errors_exhaust_retries_then_raise(scripted, groq_key):
    server = scripted(lambda n: (500, {}, {"error": {"message": "boom"}}, 0))
    llm = make_provider("groq", "fake", base_url=server.url, max_retries=3)
    llm.backoff_s = 0.05
    with pytest.raises(LLMCallError) as err:
        llm.complete_json("s", "u", SMALL_SCHEMA)
    assert err.value.reason == "http_5xx" and err.value.attempts == 4 == len(server.posts)
    assert err.value.seconds > 0, "the time spent in the attempts travels with the error (checkpoint llm_seconds)"
    gaps = [b.at - a.at for a, b in zip(server.posts, server.posts[1:])]
    assert gaps[2] > gaps[0]  # exponential: 0.05 -> 0.1 -> 0.2 (+ jitter < 0.05)
    assert llm.usage.calls == 1 and llm.usage.failed_calls == 1 and llm.usage.retries == 3


def test_bad_request_is_not_retried(scripted, groq_key):
    server = scripted(lambda n: (400, {}, {"error": {"message": "invalid schema"}}, 0))
    llm = make_provider("groq", "fake", base_url=server.url, max_retries=3)
    with pytest.raises(LLMCallError, match="invalid schema") as err:
        llm.complete_json("s", "u", SMALL_SCHEMA)
    assert err.value.reason == "bad_request" and err.value.attempts == 1 == len(server.posts)


def test_groq_model_without_json_schema_support_falls_back_to_json_mode(scripted, groq_key):
    refusal = {"error": {"message": "This model does not support response format `json_schema`", "type":
                         "invalid_request_error"}}
    server = scripted(lambda n: (400, {}, refusal, 0) if n == 0 else (200, {}, OPENAI_OK, 0))
    llm = make_provider("groq", "llama-3.1-8b-instant", base_url=server.url)
    first = llm.complete_json("Write JSON.", "u", SMALL_SCHEMA)
    second = llm.complete_json("Write JSON.", "u", SMALL_SCHEMA)
    assert first.attempts == 1 and second.attempts == 1 and llm.usage.failed_calls == 0
    assert [r.body["response_format"]["type"] for r in server.posts] == ["json_schema", "json_object", "json_object"]
    system = server.posts[1].body["messages"][0]["content"]
    assert system.startswith("Write JSON.") and json.dumps(SMALL_SCHEMA) in system


def test_timeouts_are_retried_then_reported(scripted, groq_key):
    server = scripted(lambda n: (200, {}, OPENAI_OK, 1.5))
    llm = make_provider("groq", "fake", base_url=server.url, timeout=0.3, max_retries=1)
    llm.backoff_s = 0.05
    with pytest.raises(LLMCallError) as err:
        llm.complete_json("s", "u", SMALL_SCHEMA)
    assert err.value.reason == "timeout" and err.value.attempts == 2 == len(server.posts)


def test_concurrency_limit_bounds_requests_in_flight(scripted, groq_key):
    server = scripted(lambda n: (200, {}, OPENAI_OK, 0.25))
    llm = make_provider("groq", "fake", base_url=server.url, concurrency=3)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: llm.complete_json("s", f"u{i}", SMALL_SCHEMA), range(12)))
    assert len(results) == 12 and server.peak_in_flight == 3
    assert llm.usage.calls == 12 and llm.usage.prompt_tokens == 12 * 11


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_two = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    assert 0.5 < parse_retry_after(in_two) <= 2.0
