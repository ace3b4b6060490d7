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

from gliznet.llm.provider import (
    BadRequestError,
    LLMConfigError,
    LLMProvider,
    TransientError,
    retry_after_from_headers,
    schema_instruction,
)

DEFAULT_GROQ_MODEL = "llama-3.1-8b-instant"
DEFAULT_GROQ_URL = "https://api.groq.com"
CHECK_TIMEOUT_S = 5.0


def _is_unsupported_json_schema(err: groq.APIStatusError) -> bool:
    text = str(err).lower()
    return err.status_code == 400 and "json_schema" in text and ("support" in text or "response_format" in text)


class GroqProvider(LLMProvider):
    """``complete_json`` via ``groq.Groq().chat.completions.create`` (structured outputs)."""

    name = "groq"

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

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        use_schema = self.json_schema_mode
        if use_schema:
            response_format = {"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}
        else:
            response_format = {"type": "json_object"}
            system = system + schema_instruction(schema)
        extra = {} if seed is None else {"seed": seed}
        try:
            r = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format=response_format, temperature=temperature, max_tokens=max_tokens, **extra)
        except groq.APITimeoutError:
            raise TransientError("timeout", f"no answer from {self.base_url} within {self.timeout:.0f}s") from None
        except groq.APIConnectionError as e:
            raise TransientError("connection", self._redact(f"cannot reach {self.base_url}: {e}")) from None
        except groq.APIStatusError as e:
            if e.status_code == 429:
                raise TransientError("rate_limited", f"HTTP 429 from {self.base_url}",
                                     retry_after_from_headers(e.response.headers)) from None
            if e.status_code >= 500:
                raise TransientError("http_5xx", f"HTTP {e.status_code} from {self.base_url}") from None
            if use_schema and _is_unsupported_json_schema(e):
                self.json_schema_mode = False
                return self._request(system, user, schema, seed=seed, temperature=temperature, max_tokens=max_tokens)
            if e.status_code in (401, 403):  # a revoked key fails every call: stop the run with one line
                raise LLMConfigError(f"GROQ_API_KEY was rejected by {self.base_url} (HTTP {e.status_code}): "
                                     "export a valid key") from None
            raise BadRequestError(self._redact(f"HTTP {e.status_code}: {e.message}")) from None
        except ValueError as e:  # HTTP 200 whose body is not JSON (truncated / garbled on the way)
            raise TransientError("bad_response", self._redact(f"unreadable answer from {self.base_url}: {e}")[:300]) from None
        try:
            content = r.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise TransientError("bad_response", f"answer from {self.base_url} has no choices[0].message") from None
        usage = r.usage
        return (content, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))

    def _redact(self, text: str) -> str:
        """Servers may echo the key in error messages: never let it reach a checkpoint or a log."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def served_models(self) -> list[str]:
        """Model ids the server lists at ``/openai/v1/models``."""
        return [m.id for m in self._client.with_options(timeout=CHECK_TIMEOUT_S, max_retries=0).models.list().data]

    def check(self) -> None:
        try:
            models = self.served_models()
        except groq.AuthenticationError:
            raise LLMConfigError(f"GROQ_API_KEY was rejected by {self.base_url} (HTTP 401): export a valid key") from None
        except groq.APIConnectionError:
            raise LLMConfigError(f"cannot reach {self.base_url}: check the network, or set GROQ_BASE_URL") from None
        except groq.APIStatusError as e:
            raise LLMConfigError(f"{self.base_url} answered HTTP {e.status_code} to /openai/v1/models: "
                                 f"check GROQ_BASE_URL and GROQ_API_KEY") from None
        if self.model not in models:
            raise LLMConfigError(f"model {self.model!r} is not served by {self.base_url}: pass --llm with one of "
                                 f"{', '.join(sorted(models)[:12]) or '(none listed)'}")

    def close(self) -> None:
        self._client.close()
