"""Any OpenAI-compatible server — vLLM, SGLang, TGI, LM Studio, llama.cpp, OpenAI itself — through the
official ``openai`` SDK.

``OpenAIProvider`` (``--provider openai``) sends one chat completion per ``complete_json`` call with
``response_format={"type": "json_schema", "json_schema": {"name": "record", "schema": schema}}``
(vLLM and SGLang enforce it with guided decoding, llama-server with a grammar).  A server that answers
HTTP 400 naming ``json_schema`` / ``response_format`` is switched, once, to plain JSON mode
(``{"type": "json_object"}`` plus the schema in the system prompt) and the request is resent at once:
the same fallback as ``groq.py`` (both are ``chat.ChatCompletionsProvider``).

``base_url`` is the OpenAI root *including* ``/v1`` (the SDK appends ``/chat/completions``):
``http://gpu-box:8000/v1`` for ``vllm serve``, ``http://127.0.0.1:P/openai/v1`` for the embedded
llama-server; from the argument (``--base-url``), else ``OPENAI_BASE_URL``, else
``https://api.openai.com/v1``.  The key comes from ``OPENAI_API_KEY``; a self-hosted server needs none,
so when a base URL is given without a key the placeholder ``NO_KEY`` is sent (vLLM without
``--api-key`` ignores it).  Only ``api.openai.com`` without a key is a configuration error.

The SDK's own retries are off (``max_retries=0``): ``LLMProvider`` retries and counts.  SDK errors map
to the base class's contract in ``chat.py``, shared with ``groq.py``.
"""

from __future__ import annotations

import os

import openai

from gliznet.llm.chat import ChatCompletionsProvider
from gliznet.llm.provider import LLMConfigError

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "no-key-needed"  # sent to a self-hosted server when OPENAI_API_KEY is unset


class OpenAIProvider(ChatCompletionsProvider):
    """``complete_json`` via ``openai.OpenAI().chat.completions.create`` (structured outputs; the request, the
    fallback and the error mapping are ``ChatCompletionsProvider``'s)."""

    name = "openai"
    sdk = openai
    key_env = "OPENAI_API_KEY"
    placeholder_key = NO_KEY
    reach_hint = "start the server, or fix --base-url (it ends in /v1, e.g. http://HOST:8000/v1 for vllm serve)"
    models_path = "/models"
    models_hint = "check --base-url (it ends in /v1) and OPENAI_API_KEY"

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

    def _schema_unsupported(self, err) -> bool:
        text = str(err).lower()
        return err.status_code == 400 and ("json_schema" in text or "response_format" in text) and (
            "support" in text or "response_format" in text)
