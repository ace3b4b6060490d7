"""``--provider openai`` (the official ``openai`` SDK against any OpenAI-compatible server).

Live against the embedded llama-server's OpenAI routes (``http://127.0.0.1:P/openai/v1``, a real server, no
mock; ``slow``): one call, the model check, and a whole generation run.  The json_schema -> json_object
fallback and the key rules against a small scripted OpenAI-style server.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import SMALL_SCHEMA, SMALL_SYSTEM, SMALL_USER
from json_stub import JsonStub, Reply

from gliznet._io import read_jsonl
from gliznet.curation.hardset import NothingAccepted
from gliznet.pipeline.generate import generate_hardset
from gliznet.generation.plan import GenerateConfig
from gliznet.llm.openai import NO_KEY, OpenAIProvider
from gliznet.llm.provider import LLMConfigError
from gliznet.llm.registry import PROVIDERS, ProviderSpec, make_provider, provider_for


@pytest.fixture
def no_openai_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# -- live: openai SDK -> llama-server's OpenAI routes ------------------------------------------------
@pytest.mark.slow
def test_openai_provider_returns_schema_valid_json_from_llama_server(llama_server, no_openai_env):
    url = llama_server.openai_url + "/v1"
    with make_provider("openai", llama_server.alias, base_url=url) as llm:
        llm.check()
        c = llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA, seed=1, temperature=0.0, max_tokens=200)
    jsonschema.validate(json.loads(c.text), SMALL_SCHEMA)
    assert c.model == llama_server.alias and c.attempts == 1 and c.prompt_tokens > 0 and c.completion_tokens > 0
    assert llm.usage.calls == 1 and llm.usage.prompt_tokens == c.prompt_tokens and llm.json_schema_mode


@pytest.mark.slow
def test_openai_check_names_a_model_the_server_does_not_serve(llama_server, no_openai_env):
    with make_provider("openai", "no-such-model", base_url=llama_server.openai_url + "/v1") as llm:
        with pytest.raises(LLMConfigError, match="'no-such-model' is not served .*pass --llm with one of smollm2"):
            llm.check()


# -- a whole run through the openai client, live ------------------------------------------------------
@pytest.mark.slow
def test_a_generation_run_through_the_openai_client_checkpoints_tokens_and_cost(tmp_path, llama_server,
                                                                                no_openai_env):
    """Structure only (the 135M model may answer nothing acceptable: then the one clear error)."""
    config = GenerateConfig(records=4, seed=3, provider="openai", model=llama_server.alias,
                            base_url=llama_server.openai_url + "/v1", records_per_call=2, max_calls=2, max_tokens=500)
    try:
        manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False, price_per_mtok=(1.0, 2.0))
    except NothingAccepted:
        manifest = None
    calls = [row for _, row in read_jsonl(tmp_path / "hs" / "checkpoint" / "calls.jsonl")]
    assert sorted(c["call"] for c in calls) == [0, 1]
    assert all(c["provider"] == "openai" and c["model"] == llama_server.alias for c in calls)
    assert any(c["ok"] and c["prompt_tokens"] > 0 for c in calls), calls[0].get("detail")
    if manifest is None:
        return
    usage, cost = manifest["llm_usage"], manifest["cost"]
    assert usage["calls"] == 2 and usage["prompt_tokens"] == sum(c.get("prompt_tokens") or 0 for c in calls)
    assert cost["usd"] == pytest.approx(usage["prompt_tokens"] / 1e6 + 2 * usage["completion_tokens"] / 1e6, abs=1e-6)
    assert manifest["parameters"]["base_url"] == config.base_url


# -- json_schema fallback and keys, against a scripted OpenAI-style server ---------------------------
def _refuses_json_schema(request):
    """Refuses ``json_schema`` like many servers do; answers ``json_object`` with a fixed record."""
    if request.method == "GET":
        return {"object": "list", "data": [{"id": "served-model", "object": "model", "created": 0, "owned_by": "me"}]}
    if request.body["response_format"]["type"] == "json_schema":
        return Reply({"error": {"message": "response_format json_schema is not supported by this model",
                                "type": "invalid_request_error"}}, status=400)
    content = json.dumps({"text": "A fine kettle.", "labels": ["kitchen"]})
    return {"id": "x", "object": "chat.completion", "created": 0, "model": request.body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


@pytest.fixture
def scripted_openai():
    """A ``JsonStub`` with OpenAI routes (its ``url`` + ``/v1`` is the base URL) that refuses ``json_schema``."""
    with JsonStub(_refuses_json_schema) as stub:
        yield stub


def test_a_server_without_json_schema_gets_json_mode_with_the_schema_in_the_prompt(scripted_openai, no_openai_env):
    base_url = scripted_openai.url + "/v1"
    with make_provider("openai", "served-model", base_url=base_url, max_retries=0) as llm:
        llm.check()
        first = llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA)
        second = llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA)
    jsonschema.validate(json.loads(first.text), SMALL_SCHEMA)
    bodies = [r.body for r in scripted_openai.posts]
    kinds = [b["response_format"]["type"] for b in bodies]
    assert kinds == ["json_schema", "json_object", "json_object"], "switched once, then stays in JSON mode"
    assert json.dumps(SMALL_SCHEMA) in bodies[1]["messages"][0]["content"]
    assert (first.prompt_tokens, first.completion_tokens, first.attempts) == (11, 7, 1) and second.attempts == 1
    assert llm.usage.calls == 2 and llm.usage.failed_calls == 0
    assert {r.headers.get("authorization") for r in scripted_openai.posts} == {f"Bearer {NO_KEY}"}, "a self-hosted server without a key gets the placeholder"


def test_the_key_comes_from_openai_api_key_and_never_shows(scripted_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    base_url = scripted_openai.url + "/v1"
    with make_provider("openai", "served-model", base_url=base_url, max_retries=0) as llm:
        llm.complete_json(SMALL_SYSTEM, SMALL_USER, SMALL_SCHEMA)
        spec = ProviderSpec.of(llm)
    assert scripted_openai.posts[-1].headers.get("authorization") == "Bearer sk-test-secret-value"
    assert "sk-test-secret-value" not in repr(llm) + repr(spec)
    assert spec.name == "openai" and spec.base_url == base_url
    assert provider_for(spec).base_url == base_url


def test_openai_without_key_or_base_url_is_one_line_naming_both(no_openai_env):
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY is not set: export it, or pass --base-url"):
        make_provider("openai", "gpt-4o-mini")


def test_openai_needs_the_model_name_and_reads_openai_base_url(no_openai_env, monkeypatch):
    with pytest.raises(LLMConfigError, match="--provider openai needs --llm"):
        OpenAIProvider(None, base_url="http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    with OpenAIProvider("m") as llm:
        assert llm.base_url == "http://127.0.0.1:9/v1" and "openai" in PROVIDERS
