"""Any OpenAI-compatible server — vLLM, SGLang, TGI, LM Studio, llama.cpp, OpenAI itself — through the
official ``openai`` SDK.

``OpenAIProvider`` (``--provider openai``) sends one chat completion per ``complete_json`` call with
``response_format={"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}``
(vLLM and SGLang enforce it with guided decoding, llama-server with a grammar).  A server that answers
HTTP 400 naming ``json_schema`` / ``response_format`` is switched, once, to plain JSON mode
(``{"type": "json_object"}`` plus the schema in the system prompt) and the request is resent at once:
the same fallback as ``groq.py``.

``base_url`` is the OpenAI root *including* ``/v1`` (the SDK appends ``/chat/completions``):
``http://gpu-box:8000/v1`` for ``vllm serve``, ``http://127.0.0.1:P/openai/v1`` for the embedded
llama-server; from the argument (``--base-url``), else ``OPENAI_BASE_URL``, else
``https://api.openai.com/v1``.  The key comes from ``OPENAI_API_KEY``; a self-hosted server needs none,
so when a base URL is given without a key the placeholder ``NO_KEY`` is sent (vLLM without
``--api-key`` ignores it).  Only ``api.openai.com`` without a key is a configuration error.

The SDK's own retries are off (``max_retries=0``): ``LLMProvider`` retries and counts.  SDK errors map
to the base class's contract exactly as in ``groq.py``.
"""

from __future__ import annotations

import os

import openai

from gliznet.llm.provider import (
    BadRequestError,
    LLMConfigError,
    LLMProvider,
    TransientError,
    retry_after_from_headers,
    schema_instruction,
)

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "no-key-needed"  # sent to a self-hosted server when OPENAI_API_KEY is unset
CHECK_TIMEOUT_S = 5.0


def _is_unsupported_json_schema(err: openai.APIStatusError) -> bool:
    text = str(err).lower()
    return err.status_code == 400 and ("json_schema" in text or "response_format" in text) and (
        "support" in text or "response_format" in text)


class OpenAIProvider(LLMProvider):
    """``complete_json`` via ``openai.OpenAI().chat.completions.create`` (structured outputs)."""

    name = "openai"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 **kwargs):
        base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if not base_url or base_url == DEFAULT_OPENAI_URL:
                raise LLMConfigError("OPENAI_API_KEY is not set: export it, or pass --base-url of a self-hosted "
                                     "server (vLLM, SGLang, llama.cpp) that needs no key")
            api_key = NO_KEY
        if not model:
            raise LLMConfigError("--provider openai needs --llm: the model name the server serves "
                                 "(for vLLM the MODEL given to `vllm serve`)")
        super().__init__(model, **kwargs)
        self.base_url = base_url or DEFAULT_OPENAI_URL
        self.json_schema_mode = True
        self._api_key = api_key
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

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
        except openai.APITimeoutError:
            raise TransientError("timeout", f"no answer from {self.base_url} within {self.timeout:.0f}s") from None
        except openai.APIConnectionError as e:
            raise TransientError("connection", self._redact(f"cannot reach {self.base_url}: {e}")) from None
        except openai.APIStatusError as e:
            if e.status_code == 429:
                raise TransientError("rate_limited", f"HTTP 429 from {self.base_url}",
                                     retry_after_from_headers(e.response.headers)) from None
            if e.status_code >= 500:
                raise TransientError("http_5xx", f"HTTP {e.status_code} from {self.base_url}") from None
            if use_schema and _is_unsupported_json_schema(e):
                self.json_schema_mode = False
                return self._request(system, user, schema, seed=seed, temperature=temperature, max_tokens=max_tokens)
            if e.status_code in (401, 403):  # a bad key fails every call: stop the run with one line
                raise LLMConfigError(f"OPENAI_API_KEY was rejected by {self.base_url} (HTTP {e.status_code}): "
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
        return text.replace(self._api_key, "***") if self._api_key and self._api_key != NO_KEY else text

    def served_models(self) -> list[str]:
        """Model ids the server lists at ``<base_url>/models``."""
        return [m.id for m in self._client.with_options(timeout=CHECK_TIMEOUT_S, max_retries=0).models.list().data]

    def check(self) -> None:
        try:
            models = self.served_models()
        except openai.AuthenticationError:
            raise LLMConfigError(f"OPENAI_API_KEY was rejected by {self.base_url} (HTTP 401): export a valid key") from None
        except openai.APIConnectionError:
            raise LLMConfigError(f"cannot reach {self.base_url}: start the server, or fix --base-url "
                                 "(it ends in /v1, e.g. http://HOST:8000/v1 for vllm serve)") from None
        except openai.APIStatusError as e:
            raise LLMConfigError(f"{self.base_url} answered HTTP {e.status_code} to /models: check --base-url "
                                 "(it ends in /v1) and OPENAI_API_KEY") from None
        if self.model not in models:
            raise LLMConfigError(f"model {self.model!r} is not served by {self.base_url}: pass --llm with one of "
                                 f"{', '.join(sorted(models)[:12]) or '(none listed)'}")

    def close(self) -> None:
        self._client.close()
