"""gliznet: hard zero-shot classification data from LLMs, and a one-pass GliZNet classifier trained on it.

    from gliznet import GliZNet
    model = GliZNet.from_pretrained("runs/model")
    model.predict(["the match went to penalties"], ["sport", "politics", "cooking"])

The names below are imported on first use, so ``import gliznet`` stays light (no torch until a model is
touched).  The subpackages, bottom to top: ``llm`` and ``modeling``; ``generation``, ``training`` and
``evaluation``; ``curation``; ``pipeline``; then ``cli`` and the Prefect ``flows`` beside the package.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "GliZNet": "gliznet.modeling.model",
    "GliZNetConfig": "gliznet.modeling.config",
    "LossConfig": "gliznet.modeling.losses",
    "TrainConfig": "gliznet.training.config",
    "train": "gliznet.training.trainer",
    "evaluate": "gliznet.evaluation.runs",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gliznet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
