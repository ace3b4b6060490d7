"""An Ollama server through the official ``ollama`` client.

``complete_json`` is one non-streaming ``POST /api/chat`` with ``format=<the JSON schema>``
(Ollama's structured outputs) and ``options={temperature, seed, num_predict}``; token counts
come from the answer's ``prompt_eval_count`` / ``eval_count``.

Endpoint (``base_url``): the argument, else ``OLLAMA_HOST``, else ``http://127.0.0.1:11434``.

Errors map to ``LLMProvider``'s contract: the client's ``ConnectionError`` and httpx transport
errors -> connection, httpx timeouts -> timeout, ``ResponseError`` 429 -> rate_limited, 5xx ->
http_5xx, other statuses -> bad request.  The client drops response headers when it raises, so a
response hook keeps the last headers per thread to read ``Retry-After`` from.

``check()`` asks ``/api/show`` for the model with a short timeout: an unreachable host or an
unknown model is one ``LLMConfigError`` line.
"""

from __future__ import annotations

import os
import threading

import httpx
import ollama

from gliznet.llm.provider import (
    BadRequestError,
    LLMConfigError,
    LLMProvider,
    TransientError,
    retry_after_from_headers,
)

DEFAULT_OLLAMA_MODEL = "llama3.2"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
CHECK_TIMEOUT_S = 5.0


class OllamaProvider(LLMProvider):
    """``complete_json`` via ``ollama.Client().chat(format=schema)``."""

    name = "ollama"

    def __init__(self, model: str | None = None, *, base_url: str | None = None, **kwargs):
        super().__init__(model or DEFAULT_OLLAMA_MODEL, **kwargs)
        self.base_url = (base_url or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST).rstrip("/")
        self._last = threading.local()
        self._client = ollama.Client(host=self.base_url, timeout=self.timeout,
                                     event_hooks={"response": [self._remember_headers]})

    def _remember_headers(self, response: httpx.Response) -> None:
        self._last.headers = response.headers

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        options = {"temperature": temperature, "num_predict": max_tokens}
        if seed is not None:
            options["seed"] = seed
        self._last.headers = None
        try:
            r = self._client.chat(model=self.model, messages=[{"role": "system", "content": system},
                                                              {"role": "user", "content": user}],
                                  format=schema, options=options, stream=False)
        except ollama.ResponseError as e:
            if e.status_code == 429:
                raise TransientError("rate_limited", f"HTTP 429 from {self.base_url}",
                                     retry_after_from_headers(getattr(self._last, "headers", None))) from None
            if e.status_code >= 500:
                raise TransientError("http_5xx", f"HTTP {e.status_code} from {self.base_url}: {e.error}") from None
            raise BadRequestError(f"HTTP {e.status_code}: {e.error}") from None
        except httpx.TimeoutException:
            raise TransientError("timeout", f"no answer from {self.base_url} within {self.timeout:.0f}s") from None
        except (ConnectionError, httpx.TransportError):
            raise TransientError("connection", f"cannot reach Ollama at {self.base_url}") from None
        return r.message.content or "", int(r.prompt_eval_count or 0), int(r.eval_count or 0)

    def check(self) -> None:
        try:
            with ollama.Client(host=self.base_url, timeout=CHECK_TIMEOUT_S) as probe:
                probe.show(self.model)
        except ollama.ResponseError as e:
            if e.status_code == 404:
                raise LLMConfigError(f"model {self.model!r} is not available on Ollama at {self.base_url}: "
                                     f"run `ollama pull {self.model}`, or pass --llm") from None
            raise LLMConfigError(f"Ollama at {self.base_url} answered HTTP {e.status_code} to /api/show: "
                                 f"check OLLAMA_HOST") from None
        except (ConnectionError, httpx.TransportError):
            raise LLMConfigError(f"cannot reach Ollama at {self.base_url}: start `ollama serve`, or set OLLAMA_HOST") from None

    def close(self) -> None:
        self._client.close()
