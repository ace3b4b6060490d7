"""LLM providers for data generation: ``make_provider("local" | "ollama" | "groq")``.

``provider.py`` holds the interface (``LLMProvider.complete_json``), retries, concurrency and
usage accounting; ``groq.py``, ``ollama.py`` translate one request each; ``local.py`` runs the
embedded llama-server with the packaged SmolLM2-135M so ``--provider local`` works offline.
Provider modules are imported lazily by ``make_provider``.
"""

from gliznet.llm.provider import (
    Completion,
    LLMCallError,
    LLMConfigError,
    LLMProvider,
    Usage,
    make_provider,
)

__all__ = ["Completion", "LLMCallError", "LLMConfigError", "LLMProvider", "Usage", "make_provider"]
