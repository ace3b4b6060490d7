"""LLM providers for data generation: ``make_provider("local" | "ollama" | "groq")``.

``provider.py`` holds the interface (``LLMProvider.complete_json``), retries, concurrency and
usage accounting; ``groq.py``, ``ollama.py`` translate one request each; ``local.py`` runs the
embedded llama-server with the packaged SmolLM2-135M so ``--provider local`` works offline.
``registry.py`` sits above them: the names (``PROVIDERS``), ``make_provider`` (imports a provider
module on first use) and the secret-free ``ProviderSpec`` that tasks on other workers build from.
"""

from gliznet.llm.provider import (
           Completion,
           LLMCallError,
           LLMConfigError,
           LLMProvider,
           Usage,
)
from gliznet.llm.registry import PROVIDERS, ProviderSpec, make_provider, provider_for

__all__ = ["PROVIDERS", "Completion", "LLMCallError", "LLMConfigError", "LLMProvider", "ProviderSpec", "Usage",
           "make_provider", "provider_for"]
