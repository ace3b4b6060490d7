"""The chat-completions request both official SDKs share: ``groq`` and ``openai`` (Stainless-generated twins
with the same ``chat.completions.create``, ``models.list`` and error classes).

``ChatCompletionsProvider`` sends one chat completion per ``complete_json`` call with
``response_format={"type": "json_schema", ...}``; a server that answers HTTP 400 rejecting that format
(``_schema_unsupported``, the subclass's test) switches the provider, once, to plain JSON mode
(``{"type": "json_object"}`` plus the schema in the system prompt) and the request is resent at once.  The
SDK's own retries are off (``max_retries=0``): ``LLMProvider`` retries and counts.  SDK errors map to the base
class's contract: timeout, connection, 429 -> rate_limited (with Retry-After), 5xx -> http_5xx, a garbled body
-> bad_response, 401/403 -> a one-line ``LLMConfigError`` naming ``key_env``, other 4xx -> bad request.

A subclass sets ``sdk`` (the SDK module), ``key_env``, the hints of ``check`` and builds ``self._client``.
"""

from __future__ import annotations

from types import ModuleType

from gliznet.llm.provider import (
    BadRequestError,
    LLMConfigError,
    LLMProvider,
    TransientError,
    retry_after_from_headers,
    schema_instruction,
)

CHECK_TIMEOUT_S = 5.0


class ChatCompletionsProvider(LLMProvider):
    sdk: ModuleType  # groq or openai
    key_env: str  # the variable named when the key is rejected
    placeholder_key: str | None = None  # a stand-in key sent to servers that need none (never redacted)
    reach_hint: str  # check(): what to do when the server cannot be reached
    models_path: str  # check(): the route of the model list, for the error
    models_hint: str  # check(): what to do when that route answers an error status
    base_url: str
    json_schema_mode: bool = True
    _api_key: str | None

    def _schema_unsupported(self, err) -> bool:
        """Whether an HTTP 400 says the server does not take ``json_schema`` response formats."""
        raise NotImplementedError

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        use_schema = self.json_schema_mode
        if use_schema:
            response_format = {"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}
        else:
            response_format = {"type": "json_object"}
            system = system + schema_instruction(schema)
        extra = {} if seed is None else {"seed": seed}
        sdk = self.sdk
        try:
            r = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format=response_format, temperature=temperature, max_tokens=max_tokens, **extra)
        except sdk.APITimeoutError:
            raise TransientError("timeout", f"no answer from {self.base_url} within {self.timeout:.0f}s") from None
        except sdk.APIConnectionError as e:
            raise TransientError("connection", self._redact(f"cannot reach {self.base_url}: {e}")) from None
        except sdk.APIStatusError as e:
            if e.status_code == 429:
                raise TransientError("rate_limited", f"HTTP 429 from {self.base_url}",
                                     retry_after_from_headers(e.response.headers)) from None
            if e.status_code >= 500:
                raise TransientError("http_5xx", f"HTTP {e.status_code} from {self.base_url}") from None
            if use_schema and self._schema_unsupported(e):
                self.json_schema_mode = False
                return self._request(system, user, schema, seed=seed, temperature=temperature, max_tokens=max_tokens)
            if e.status_code in (401, 403):  # a bad or revoked key fails every call: stop the run with one line
                raise LLMConfigError(f"{self.key_env} was rejected by {self.base_url} (HTTP {e.status_code}): "
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
        if self._api_key and self._api_key != self.placeholder_key:
            return text.replace(self._api_key, "***")
        return text

    def served_models(self) -> list[str]:
        """Model ids the server lists at ``models_path``."""
        return [m.id for m in self._client.with_options(timeout=CHECK_TIMEOUT_S, max_retries=0).models.list().data]

    def check(self) -> None:
        try:
            models = self.served_models()
        except self.sdk.AuthenticationError:
            raise LLMConfigError(f"{self.key_env} was rejected by {self.base_url} (HTTP 401): export a valid key") from None
        except self.sdk.APIConnectionError:
            raise LLMConfigError(f"cannot reach {self.base_url}: {self.reach_hint}") from None
        except self.sdk.APIStatusError as e:
            raise LLMConfigError(f"{self.base_url} answered HTTP {e.status_code} to {self.models_path}: "
                                 f"{self.models_hint}") from None
        if self.model not in models:
            raise LLMConfigError(f"model {self.model!r} is not served by {self.base_url}: pass --llm with one of "
                                 f"{', '.join(sorted(models)[:12]) or '(none listed)'}")

    def close(self) -> None:
        self._client.close()
