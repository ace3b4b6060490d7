"""GliZNet training objectives, one small module each, combined by ``GliZNetLoss``.

Every loss reads the same padded tensors the model returns (``gliznet.modeling.model.GliZNetOutput``):

* ``similarity`` (B, L): text-label similarity (cosine by default) for up to L labels per sample;
* ``logits`` (B, L): ``similarity * exp(logit_scale)``, the score head's softmax temperature (seed: exp = 2.0);
* ``score_logits`` (B, L): ``similarity * exp(t) + b``, the score head's probability logits (its sigmoid is the
  reported score, see ``gliznet.modeling.model.ScoreHead``);
* ``label_embeds`` (B, L, D): the pooled label vectors;
* ``targets`` (B, L): 1 for a positive label, 0 for a negative;
* ``valid`` (B, L): True where a label exists (padding is False).

The losses hold no parameters: every learned scale belongs to the model.  ``LossConfig`` holds the weights of
the combination and the thresholds/margins of its terms; the defaults follow the seed recipe (softmax over
labels 1.0, BCE 1.0, label repulsion 0.1) with the hard-negative margin available but off, plus the measured
``PriorAnchor`` weight 5 (active only where a batch carries prior vectors, i.e. in ``gliznet.training.trainer``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from gliznet.errors import UserError


@dataclass
class LossConfig:
    softmax_weight: float = 1.0
    bce_weight: float = 1.0
    repulsion_weight: float = 0.1
    margin_weight: float = 0.0
    ovn_weight: float = 0.0  # OneVsNegatives: each positive against the sample's negatives only, with ovn_margin
    anchor_weight: float = 5.0  # PriorAnchor; measured with lr 1e-4 (bench/accuracy.py); 0 = off (then use lr ~2e-5)
    repulsion_threshold: float = 0.3
    margin: float = 0.1
    ovn_margin: float = 0.1  # in similarity units (scaled by the score head's softmax scale)
    focal_gamma: float = 0.0  # BCE as focal loss: (1 - p_t)^gamma * BCE; 0 = plain BCE

    def __post_init__(self):
        for f in fields(self):
            if f.name.endswith("_weight") and getattr(self, f.name) < 0:
                raise UserError(f"{f.name}={getattr(self, f.name)} must be >= 0: 0 turns that loss term off")
        if self.focal_gamma < 0:
            raise UserError(f"focal_gamma={self.focal_gamma} must be >= 0: 0 is plain binary cross-entropy")

    @classmethod
    def from_dict(cls, data: dict) -> "LossConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"loss config keys {unknown} are unknown: use fields of LossConfig {sorted(known)}")
        return cls(**data)


class SoftmaxOverLabels(nn.Module):
    """The seed's "SupCon": softmax over each sample's labels, averaged over its positives.

    loss_b = -1/|P_b| * sum_{p in P_b} [ z_bp - logsumexp_{j valid} z_bj ];  mean over samples with a positive.
    """

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        z = logits.float().masked_fill(~valid, float("-inf"))
        log_prob = z - torch.logsumexp(z, dim=-1, keepdim=True)
        pos = (targets > 0.5) & valid
        n_pos = pos.sum(-1)
        per_sample = -(log_prob.masked_fill(~pos, 0.0)).sum(-1) / n_pos.clamp(min=1)
        has = n_pos > 0
        if not has.any():
            return logits.sum() * 0.0
        return per_sample[has].mean()


class OneVsNegatives(nn.Module):
    """Each positive against the sample's negatives only (other positives are left out), its logit lowered by a
    margin:  loss_bp = -log( e^(z_p - m) / (e^(z_p - m) + sum_{n in N_b} e^(z_n)) );  mean over every positive of
    samples with a negative.  ``m`` = ``margin`` x the softmax scale, so the margin is in similarity units."""

    def __init__(self, margin: float = 0.1):
        super().__init__()
        self.margin = margin

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        z = logits.float()
        pos = (targets > 0.5) & valid
        neg = (targets <= 0.5) & valid
        use = pos & neg.any(-1, keepdim=True)
        if not use.any():
            return logits.sum() * 0.0
        neg_lse = torch.logsumexp(z.masked_fill(~neg, float("-inf")), dim=-1, keepdim=True)  # (B, 1)
        zp = z - self.margin * scale
        loss = torch.logaddexp(zp, neg_lse) - zp  # -log softmax of the positive among {it} + negatives
        return loss[use].mean()


class LabelRepulsion(nn.Module):
    """mean over label pairs (i != j) of one sample: relu(cos(l_i, l_j) - threshold); mean over all pairs of the batch."""

    def __init__(self, threshold: float = 0.3):
        super().__init__()
        self.threshold = threshold

    def forward(self, label_embeds: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        e = F.normalize(label_embeds.float(), dim=-1)
        cos = e @ e.transpose(1, 2)  # (B, L, L)
        pair = valid.unsqueeze(2) & valid.unsqueeze(1)
        pair &= ~torch.eye(valid.shape[1], dtype=torch.bool, device=valid.device).unsqueeze(0)
        if not pair.any():
            return label_embeds.sum() * 0.0
        return F.relu(cos - self.threshold)[pair].mean()


class BinaryCrossEntropy(nn.Module):
    """Mean binary cross-entropy over valid labels of p = sigmoid(score_logits), the score head's probabilities;
    with ``gamma`` > 0 the focal form (1 - p_t)^gamma * BCE, p_t = p for a positive and 1 - p for a negative."""

    def __init__(self, gamma: float = 0.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, score_logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if not valid.any():
            return score_logits.sum() * 0.0
        x, y = score_logits.float()[valid], targets.float()[valid]
        bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        if self.gamma:
            p = torch.sigmoid(x)
            bce = (1 - (p * y + (1 - p) * (1 - y))).pow(self.gamma) * bce
        return bce.mean()


class HardNegativeMargin(nn.Module):
    """max(0, m + max_neg s - min_pos s) per sample with both a positive and a negative; mean over those samples."""

    def __init__(self, margin: float = 0.1):
        super().__init__()
        self.margin = margin

    def forward(self, similarity: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        s = similarity.float()
        pos = (targets > 0.5) & valid
        neg = (targets <= 0.5) & valid
        has = pos.any(-1) & neg.any(-1)
        if not has.any():
            return similarity.sum() * 0.0
        max_neg = s.masked_fill(~neg, float("-inf")).max(-1).values
        min_pos = s.masked_fill(~pos, float("inf")).min(-1).values
        return F.relu(self.margin + max_neg - min_pos)[has].mean()


class PriorAnchor(nn.Module):
    """Keep the pretrained prior (learning without forgetting, on vectors):

    loss = mean_b [1 - cos(t_b, t*_b)] + mean_{b, k valid} [1 - cos(l_bk, l*_bk)]

    where ``t*``/``l*`` are the vectors the *initial* backbone gives the text and the label each encoded on its
    own (the embedding baseline's vectors, precomputed once by ``gliznet.training.trainer``).  The task losses move the
    vectors where the training labels need them; this term holds everything else near what pretraining knew.
    """

    def forward(self, text: torch.Tensor, labels: torch.Tensor, prior_text: torch.Tensor,
                prior_labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if text.dim() == 3:  # one text vector per label (text_pooling="label"): each stays near the text's prior
            per_label = 1 - F.cosine_similarity(text.float(), prior_text.float().unsqueeze(1), dim=-1)
            text_term = per_label[valid].mean() if valid.any() else per_label.sum() * 0.0
        else:
            text_term = (1 - F.cosine_similarity(text.float(), prior_text.float(), dim=-1)).mean()
        if not valid.any():
            return text_term
        label_term = 1 - F.cosine_similarity(labels.float(), prior_labels.float(), dim=-1)
        return text_term + label_term[valid].mean()


class GliZNetLoss(nn.Module):
    """softmax_weight * SoftmaxOverLabels + bce_weight * BinaryCrossEntropy (focal with focal_gamma > 0)
    + repulsion_weight * LabelRepulsion + margin_weight * HardNegativeMargin + ovn_weight * OneVsNegatives
    (+ anchor_weight * PriorAnchor, when the batch carries prior vectors)."""

    def __init__(self, config: LossConfig | None = None):
        super().__init__()
        self.config = config or LossConfig()
        self.softmax = SoftmaxOverLabels()
        self.bce = BinaryCrossEntropy(self.config.focal_gamma)
        self.ovn = OneVsNegatives(self.config.ovn_margin)
        self.repulsion = LabelRepulsion(self.config.repulsion_threshold)
        self.margin = HardNegativeMargin(self.config.margin)
        self.anchor = PriorAnchor()

    def forward(self, similarity: torch.Tensor, logits: torch.Tensor, score_logits: torch.Tensor,
                label_embeds: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                text_embeds: torch.Tensor | None = None, prior_text: torch.Tensor | None = None,
                prior_labels: torch.Tensor | None = None, scale: torch.Tensor | float = 1.0
                ) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        parts: dict[str, torch.Tensor] = {}
        if c.softmax_weight:
            parts["softmax"] = self.softmax(logits, targets, valid)
        if c.bce_weight:
            parts["bce"] = self.bce(score_logits, targets, valid)
        if c.repulsion_weight:
            parts["repulsion"] = self.repulsion(label_embeds, valid)
        if c.margin_weight:
            parts["margin"] = self.margin(similarity, targets, valid)
        if c.ovn_weight:
            parts["ovn"] = self.ovn(logits, targets, valid, scale)
        if c.anchor_weight and prior_text is not None and text_embeds is not None:
            L = label_embeds.shape[1]
            parts["anchor"] = self.anchor(text_embeds, label_embeds, prior_text, prior_labels[:, :L], valid)
        total = sum(getattr(c, f"{name}_weight") * value for name, value in parts.items())
        if not parts:
            total = similarity.sum() * 0.0
        return total, {name: float(value.detach()) for name, value in parts.items()}
