"""Providers by name: ``make_provider("local" | "ollama" | "groq" | "openai")`` and the secret-free ``ProviderSpec``.

This module sits above the providers: ``provider.py`` is the interface and knows none of them,
``groq.py`` / ``ollama.py`` / ``local.py`` / ``openai.py`` implement it, and only this module maps a name to a
class (importing it on first use, so ``import gliznet.llm`` stays light).

    PROVIDERS                      the names, declared once (the CLI and the flows validate with it)
    make_provider(name, model)     a live provider from arguments and the environment
    ProviderSpec.of(provider)      what another process needs to build the same provider: name,
                                   model, endpoint, limits — picklable, hashable, no secret
    provider_for(spec)             that provider, built once per process

A Prefect task that may run in another process or on another machine gets a ``ProviderSpec``,
never a live provider (HTTP clients, locks, a llama-server child do not travel); the worker
reads keys such as ``GROQ_API_KEY`` / ``OPENAI_API_KEY`` from its own environment.  For ``local`` the spec's
``base_url`` is the running embedded server, so ``provider_for`` attaches to it instead of
starting another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from gliznet._extras import require
from gliznet.llm.provider import LLMConfigError, LLMProvider

PROVIDERS = ("local", "ollama", "groq", "openai")
CLIENTS = {"local": "groq", "ollama": "ollama", "groq": "groq", "openai": "openai"}  # the client each one speaks through ([generate])


def make_provider(name: str, model: str | None = None, *, base_url: str | None = None, concurrency: int = 4,
                  timeout: float = 120.0, max_retries: int = 4) -> LLMProvider:
    """Build the provider called ``name`` (one of ``PROVIDERS``).

    * ``local``: without ``base_url`` starts the embedded llama-server (SmolLM2-135M) and stops it
      on ``close()``; with ``base_url`` attaches to a server already running there.  ``model`` is
      the server alias (default ``smollm2``).
    * ``groq``: key from ``GROQ_API_KEY``; ``base_url`` from the argument or ``GROQ_BASE_URL``.
    * ``ollama``: ``base_url`` from the argument or ``OLLAMA_HOST`` (default ``http://127.0.0.1:11434``).
    * ``openai``: any OpenAI-compatible server (vLLM, SGLang, TGI, LM Studio, llama.cpp): ``base_url`` (ending
      in ``/v1``) from the argument or ``OPENAI_BASE_URL``; key from ``OPENAI_API_KEY``, a placeholder for a
      self-hosted server; ``model`` is required (the name the server serves).

    Only ``local`` without ``base_url`` touches the network here; call ``check()`` to probe.  Without the
    ``[generate]`` extra this raises ``MissingExtra``, one line naming the pip command.
    """
    if name not in PROVIDERS:
        raise LLMConfigError(f"unknown provider {name!r}: use one of {', '.join(PROVIDERS)}")
    require("generate", CLIENTS[name])
    limits = dict(concurrency=concurrency, timeout=timeout, max_retries=max_retries)
    if name == "groq":
        from gliznet.llm.groq import GroqProvider

        return GroqProvider(model, base_url=base_url, **limits)
    if name == "openai":
        from gliznet.llm.openai import OpenAIProvider

        return OpenAIProvider(model, base_url=base_url, **limits)
    if name == "ollama":
        from gliznet.llm.ollama import OllamaProvider

        return OllamaProvider(model, base_url=base_url, **limits)
    from gliznet.llm.local import LocalProvider

    return LocalProvider(model, base_url=base_url, **limits)


@dataclass(frozen=True)
class ProviderSpec:
    """What a task needs to build its own provider; picklable, hashable, and free of secrets.

    ``name``: one of ``PROVIDERS``; ``base_url``: the endpoint the flow checked (for ``local`` the
    running embedded server's ``http://127.0.0.1:P``).  Keys come from the worker's environment.
    """

    name: str
    model: str
    base_url: str
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 4

    @classmethod
    def of(cls, llm: LLMProvider) -> ProviderSpec:
        """The spec of a live (checked) provider."""
        return cls(name=llm.name, model=llm.model, base_url=llm.base_url, concurrency=llm.concurrency,
                   timeout=llm.timeout, max_retries=llm.max_retries)


@lru_cache(maxsize=8)
def provider_for(spec: ProviderSpec) -> LLMProvider:
    """The provider ``spec`` describes, built once per process (its client and concurrency slots are
    shared by every task that runs there)."""
    return make_provider(spec.name, spec.model, base_url=spec.base_url, concurrency=spec.concurrency,
                         timeout=spec.timeout, max_retries=spec.max_retries)


__all__ = ["CLIENTS", "PROVIDERS", "ProviderSpec", "make_provider", "provider_for"]
