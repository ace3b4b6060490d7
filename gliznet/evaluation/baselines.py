"""Zero-shot baselines GliZNet is measured against, as ``Scorer``s for ``gliznet.evaluation.runs``.

* ``EmbeddingBaseline`` ("embedding") - the SBERT baseline of the XML0 paper: the cosine between the
  backbone's mean-pooled, L2-normalised text vector and label vector.  Texts and labels are encoded
  separately (each label once, then cached), so it costs one pass per text plus one per new label.
* ``CrossEncoderBaseline`` ("cross-encoder") - the one-pass-per-label approach GliZNet replaces:
  every (text, label) pair is its own encoder input ``[CLS] text [SEP] label [SEP]``, and with no
  trained head the score is the cosine between the mean of the text-segment token states and the
  mean of the label-segment token states.  It needs ``n_texts × n_labels`` sequences per call.
* ``make_baseline`` - the name -> scorer switch the CLI's ``--baseline`` uses.

Both take a ``gliznet.modeling.label_text.LabelText`` (``make_baseline``: the options ``label_template``,
``text_template``, ``label_descriptions``), the rendering GliZNet's config applies, so templates and label
descriptions can be measured on the baseline and on GliZNet alike; off by default (the strings as given).
"""

from __future__ import annotations

import numpy as np

from gliznet.errors import UserError
from gliznet.modeling.backbone import Embedder, load_backbone
from gliznet.modeling.label_text import LabelText
from gliznet.modeling.tokenizer import BACKBONE_MAX_LENGTH, check_labels

BASELINES = ("embedding", "cross-encoder")


class EmbeddingBaseline:
    """score[i, j] = cos(mean_pool(text_i), mean_pool(label_j)) with the backbone's own embeddings."""

    name = "embedding"

    def __init__(self, backbone: str | None = None, device: str | None = None, label_text: LabelText | None = None):
        self.embedder = Embedder(backbone=backbone, device=device)
        self.label_text = label_text or LabelText()
        self._label_vectors: dict[str, np.ndarray] = {}

    def label_vectors(self, labels: list[str]) -> np.ndarray:
        """(n_labels, d) unit vectors of the rendered labels; labels not seen before are encoded once and cached."""
        new = [label for label in dict.fromkeys(labels) if label not in self._label_vectors]
        if new:
            self._label_vectors.update(zip(new, self.embedder.encode(self.label_text.labels(new))))
        return np.stack([self._label_vectors[label] for label in labels])

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        check_labels(labels)
        label_vecs = self.label_vectors(labels)
        if not texts:
            return np.zeros((0, len(labels)), dtype=np.float32)
        return self.embedder.encode(self.label_text.texts(texts)) @ label_vecs.T


class CrossEncoderBaseline:
    """One encoder pass per (text, label) pair; score = cos(mean text-segment state, mean label-segment state).

    Pairs are tokenized as ``tokenizer(text, label)`` (``[CLS] text [SEP] label [SEP]`` for BERT), the
    text truncated first so the label always fits, and run ``batch_size`` pairs per forward call.
    """

    name = "cross-encoder"

    def __init__(self, backbone: str | None = None, device: str | None = None, batch_size: int = 64,
                 max_length: int = BACKBONE_MAX_LENGTH, label_text: LabelText | None = None):
        self.tokenizer, self.model, self.device = load_backbone(backbone, device)
        self.label_text = label_text or LabelText()
        self.batch_size = batch_size
        self.max_length = max_length

    def _segment_means(self, hidden, enc) -> tuple:
        """Mean hidden state over the non-special tokens of segment 0 (text) and segment 1 (label)."""
        import torch

        seg = torch.full(enc["input_ids"].shape, -1, dtype=torch.long)
        for row in range(seg.shape[0]):
            ids = enc.sequence_ids(row)  # None for special and padding tokens
            seg[row] = torch.tensor([-1 if s is None else s for s in ids])
        seg = seg.to(hidden.device)
        means = []
        for segment in (0, 1):
            mask = (seg == segment).unsqueeze(-1).to(hidden.dtype)
            means.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        return means[0], means[1]

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        import torch

        check_labels(labels)
        pairs = [(t, label) for t in self.label_text.texts(texts) for label in self.label_text.labels(labels)]
        out = np.zeros(len(pairs), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start:start + self.batch_size]
                enc = self.tokenizer([p[0] for p in chunk], [p[1] for p in chunk], padding=True,
                                     truncation="only_first", max_length=self.max_length, return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in enc.items()}
                hidden = self.model(**inputs).last_hidden_state
                text_vec, label_vec = self._segment_means(hidden, enc)
                cos = torch.nn.functional.cosine_similarity(text_vec, label_vec, dim=-1)
                out[start:start + len(chunk)] = cos.float().cpu().numpy()
        return out.reshape(len(texts), len(labels))


def make_baseline(name: str, backbone: str | None = None, *, label_template: str | None = None,
                  text_template: str | None = None, label_descriptions: str | None = None):
    """``"embedding"`` -> ``EmbeddingBaseline``, ``"cross-encoder"`` -> ``CrossEncoderBaseline``; the label
    text options as in ``GliZNetConfig`` (``gliznet.modeling.label_text``)."""
    if name not in BASELINES:
        raise UserError("--baseline must be one of embedding, cross-encoder")
    label_text = LabelText.from_options(label_template, text_template, label_descriptions)
    if name == "embedding":
        return EmbeddingBaseline(backbone=backbone, label_text=label_text)
    return CrossEncoderBaseline(backbone=backbone, label_text=label_text)
