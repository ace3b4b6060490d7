"""Loss values against hand-computed cases."""

import math

import pytest
import torch

from gliznet.modeling.losses import (
    BinaryCrossEntropy,
    GliZNetLoss,
    HardNegativeMargin,
    LabelRepulsion,
    LossConfig,
    OneVsNegatives,
    PriorAnchor,
    SoftmaxOverLabels,
)


def test_softmax_over_labels_one_positive():
    logits = torch.tensor([[2.0, 0.0, 0.0, 9.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False]])  # the padded 9.0 must not count
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert SoftmaxOverLabels()(logits, targets, valid).item() == pytest.approx(expected, rel=1e-5)


def test_softmax_over_labels_averages_over_positives_and_samples():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # the second sample has no positive
    valid = torch.ones(2, 3, dtype=torch.bool)
    z = math.log(2 * math.e + 1)
    expected = ((z - 1) + (z - 1)) / 2
    assert SoftmaxOverLabels()(logits, targets, valid).item() == pytest.approx(expected, rel=1e-5)


def test_label_repulsion_hand_computed():
    s = 1 / math.sqrt(2)
    emb = torch.tensor([[[1.0, 0.0], [s, s], [0.0, 1.0], [1.0, 0.0]]])
    valid = torch.tensor([[True, True, True, False]])
    # ordered pairs of the 3 valid labels: cos = .707, 0, .707 (each twice); relu(cos - .3)
    expected = (2 * (s - 0.3) * 2) / 6
    assert LabelRepulsion(0.3)(emb, valid).item() == pytest.approx(expected, rel=1e-5)


def test_binary_cross_entropy_on_score_logits_hand_computed():
    score_logits = torch.tensor([[2.5, 2.5, 9.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    valid = torch.tensor([[True, True, False]])
    expected = (math.log(1 + math.exp(-2.5)) + math.log(1 + math.exp(2.5))) / 2
    assert BinaryCrossEntropy()(score_logits, targets, valid).item() == pytest.approx(expected, rel=1e-5)


def test_hard_negative_margin_hand_computed():
    sim = torch.tensor([[0.8, 0.6, 0.7, 0.1], [0.9, 0.1, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, False, False]])
    # sample 1: 0.1 + 0.7 - 0.6 = 0.2; sample 2: 0.1 + 0.1 - 0.9 < 0 -> 0
    assert HardNegativeMargin(0.1)(sim, targets, valid).item() == pytest.approx(0.1, rel=1e-5)


def test_combined_loss_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(0)
    sim = torch.rand(2, 4) * 2 - 1
    logits = sim * 2.0
    emb = torch.randn(2, 4, 8)
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, True, False]])
    score_logits = sim * 10.0 - 2.5
    loss = GliZNetLoss(LossConfig(softmax_weight=1.0, bce_weight=0.5, repulsion_weight=0.1, margin_weight=2.0))
    total, parts = loss(sim, logits, score_logits, emb, targets, valid)
    expected = (SoftmaxOverLabels()(logits, targets, valid) + 0.5 * BinaryCrossEntropy()(score_logits, targets, valid)
                + 0.1 * LabelRepulsion(0.3)(emb, valid) + 2.0 * HardNegativeMargin(0.1)(sim, targets, valid))
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(parts) == {"softmax", "bce", "repulsion", "margin"}  # no anchor without prior vectors
    assert list(loss.parameters()) == []  # every learned scale belongs to the model's score head


def test_loss_config_refuses_negative_weights_and_unknown_keys():
    with pytest.raises(ValueError, match="anchor_weight=-1 must be >= 0"):
        LossConfig(anchor_weight=-1)
    with pytest.raises(ValueError, match=r"loss config keys \['anchor'\] are unknown"):
        LossConfig.from_dict({"anchor": 5.0})


def test_prior_anchor_hand_computed():
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    prior_text = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # cos 1/sqrt(2) and 1
    labels = torch.tensor([[[1.0, 0.0], [5.0, 5.0]], [[0.0, 1.0], [1.0, 0.0]]])
    prior_labels = torch.tensor([[[-1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [7.0, 7.0]]])  # cos -1, 1, 0, (padding)
    valid = torch.tensor([[True, True], [True, False]])
    expected = (1 - 1 / math.sqrt(2) + 0) / 2 + (2 + 0 + 1) / 3
    assert PriorAnchor()(text, labels, prior_text, prior_labels, valid).item() == pytest.approx(expected, rel=1e-5)


def test_focal_binary_cross_entropy_hand_computed():
    score_logits = torch.tensor([[2.5, 2.5]])
    targets = torch.tensor([[1.0, 0.0]])
    valid = torch.tensor([[True, True]])
    p = 1 / (1 + math.exp(-2.5))
    gamma = 2.0  # the easy positive (p_t = p) is down-weighted far more than the hard negative (p_t = 1 - p)
    expected = ((1 - p) ** gamma * math.log(1 + math.exp(-2.5)) + p ** gamma * math.log(1 + math.exp(2.5))) / 2
    assert BinaryCrossEntropy(gamma)(score_logits, targets, valid).item() == pytest.approx(expected, rel=1e-5)
    assert BinaryCrossEntropy(0.0)(score_logits, targets, valid).item() == pytest.approx(
        BinaryCrossEntropy()(score_logits, targets, valid).item())


def test_one_vs_negatives_hand_computed():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0], [3.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, False, False, False]])  # sample 2 has no negative
    m, scale = 0.1, 2.0

    def one(zp, negs):  # -log e^(zp - m*scale) / (e^(zp - m*scale) + sum e^neg); the other positive is left out
        zp -= m * scale
        return -(zp - math.log(math.exp(zp) + sum(math.exp(n) for n in negs)))
    expected = (one(2.0, [0.5, 0.0]) + one(1.0, [0.5, 0.0])) / 2
    assert OneVsNegatives(m)(logits, targets, valid, scale).item() == pytest.approx(expected, rel=1e-5)
