"""Groq — and anything speaking Groq's OpenAI-style API — through the official ``groq`` SDK.

``GroqProvider`` sends one chat completion per ``complete_json`` call with
``response_format={"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}``,
so a server that supports structured outputs (llama-server, Groq's structured-output models)
can only produce schema-valid JSON.  Many Groq models answer HTTP 400 "does not support response
format json_schema"; the provider then switches itself to plain JSON mode
(``{"type": "json_object"}`` plus the schema in the system prompt) and resends at once.

The SDK's own retries are switched off (``max_retries=0``): ``LLMProvider`` retries, so that
attempts, Retry-After and usage are counted in one place.  SDK errors map to the base class's
contract: ``APITimeoutError`` -> timeout, ``APIConnectionError`` -> connection, 429 ->
rate_limited (with ``retry-after-ms`` / ``Retry-After``), 5xx -> http_5xx, other 4xx -> bad request.

``base_url`` is the server root: the SDK appends ``/openai/v1/chat/completions`` itself
(default ``https://api.groq.com``; ``LocalLLMServer.base_url`` for the embedded server, which
``local.LocalProvider`` talks to through this class).
"""

from __future__ import annotations

import os

import groq

from gliznet.llm.chat import ChatCompletionsProvider
from gliznet.llm.provider import LLMConfigError

DEFAULT_GROQ_MODEL = "llama-3.1-8b-instant"
DEFAULT_GROQ_URL = "https://api.groq.com"


class GroqProvider(ChatCompletionsProvider):
    """``complete_json`` via ``groq.Groq().chat.completions.create`` (structured outputs; the request, the
    fallback and the error mapping are ``ChatCompletionsProvider``'s)."""

    name = "groq"
    sdk = groq
    key_env = "GROQ_API_KEY"
    reach_hint = "check the network, or set GROQ_BASE_URL"
    models_path = "/openai/v1/models"
    models_hint = "check GROQ_BASE_URL and GROQ_API_KEY"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 **kwargs):
        api_key = api_key or os.environ.get("GROQ_API_KEY")
        if not api_key:
            raise LLMConfigError("GROQ_API_KEY is not set: export it, or use --provider local")
        super().__init__(model or DEFAULT_GROQ_MODEL, **kwargs)
        self.base_url = (base_url or os.environ.get("GROQ_BASE_URL") or DEFAULT_GROQ_URL).rstrip("/")
        self.json_schema_mode = True
        self._api_key = api_key
        self._client = groq.Groq(api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _schema_unsupported(self, err) -> bool:
        text = str(err).lower()
        return err.status_code == 400 and "json_schema" in text and ("support" in text or "response_format" in text)
