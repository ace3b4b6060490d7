"""Metrics against hand-computed examples and sklearn: F1 decisions, threshold sweep, ROC-AUC, ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gliznet.evaluation.metrics import compute_metrics

# 3 texts x 4 labels (A, B, C, D), used for the hand-computed multi-label and ranking metrics.
LABELS = ["A", "B", "C", "D"]
SCORES = np.array([
    [0.90, 0.10, 0.80, 0.30],  # ranking A C D B ; gold A, D
    [0.20, 0.70, 0.60, 0.50],  # ranking B C D A ; gold C
    [0.40, 0.30, 0.35, 0.95],  # ranking D A C B ; gold B, D
])
GOLD = np.array([
    [1, 0, 0, 1],
    [0, 0, 1, 0],
    [0, 1, 0, 1],
])


def test_single_label_f1_uses_argmax():
    # gold 0,1,2,2 ; argmax 0,1,1,2  ->  label F1s 1, 2/3, 2/3
    scores = np.array([[0.9, 0.0, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    gold = np.eye(3, dtype=int)[[0, 1, 2, 2]]
    m = compute_metrics(scores, gold, ["x", "y", "z"], multi_label=False)
    assert m["decision"] == "argmax" and m["threshold"] is None
    assert m["micro_f1"] == pytest.approx(3 / 4)  # = accuracy for single-label argmax
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["per_label"]["y"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["per_label"]["z"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})


def test_multi_label_f1_at_given_threshold():
    # predictions at 0.5:  [A, C] , [B, C, D] , [D]
    # A: tp1 -> 1 ; B: fp1 fn1 -> 0 ; C: tp1 fp1 -> 2/3 ; D: tp1 fp1 fn1 -> 1/2 ; micro: tp3 fp3 fn2
    m = compute_metrics(SCORES, GOLD, LABELS, multi_label=True, threshold=0.5)
    assert m["decision"] == "threshold" and m["threshold"] == 0.5
    assert m["micro_f1"] == pytest.approx(6 / 11)
    assert m["macro_f1"] == pytest.approx((1 + 0 + 2 / 3 + 1 / 2) / 4)
    assert m["default_threshold"]["micro_f1"] == pytest.approx(6 / 11)
    assert m["per_label"]["D"]["support"] == 2


def test_precision_at_k_and_ndcg_by_hand():
    m = compute_metrics(SCORES, GOLD, LABELS, multi_label=True)
    # relevance in ranked order: [1,0,1,0], [0,1,0,0], [1,0,0,1]
    assert m["p@1"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["p@3"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 3) / 3)
    assert m["p@5"] == pytest.approx((2 / 5 + 1 / 5 + 2 / 5) / 3)  # k is not capped by the 4 labels
    d = [1 / math.log2(i + 2) for i in range(5)]
    ideal2, ideal1 = d[0] + d[1], d[0]
    ndcg3 = [(d[0] + d[2]) / ideal2, d[1] / ideal1, d[0] / ideal2]
    ndcg5 = [(d[0] + d[2]) / ideal2, d[1] / ideal1, (d[0] + d[3]) / ideal2]
    assert m["ndcg@3"] == pytest.approx(sum(ndcg3) / 3)
    assert m["ndcg@5"] == pytest.approx(sum(ndcg5) / 3)


def test_roc_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    gold = (rng.random((60, 5)) < 0.3).astype(int)
    scores = gold * 0.5 + rng.normal(size=gold.shape)
    m = compute_metrics(scores, gold, list("abcde"), multi_label=True)
    assert m["roc_auc_micro"] == pytest.approx(roc_auc_score(gold.ravel(), scores.ravel()))
    assert m["roc_auc_macro"] == pytest.approx(roc_auc_score(gold, scores, average="macro"))


def test_roc_auc_macro_skips_labels_with_one_class():
    gold = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.5], [0.6, 0.3]])
    m = compute_metrics(scores, gold, ["a", "b"], multi_label=False)
    assert m["roc_auc_macro"] == pytest.approx(roc_auc_score(gold[:, 0], scores[:, 0]))


def test_threshold_sweep_picks_the_separating_threshold():
    # every gold pair scores >= 0.8, every other pair <= 0.3: only a threshold in (0.3, 0.8] is perfect
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    scores = np.where(gold == 1, 0.8, 0.3) + np.arange(12).reshape(4, 3) * 0.001
    m = compute_metrics(scores, gold, ["a", "b", "c"], multi_label=True)
    lo, hi = scores[gold == 0].max(), scores[gold == 1].min()
    assert lo < m["best_threshold"] <= hi
    assert m["threshold"] == m["best_threshold"]
    assert m["macro_f1"] == pytest.approx(1.0) and m["micro_f1"] == pytest.approx(1.0)
    best_point = max(m["threshold_sweep"], key=lambda p: p["macro_f1"])
    assert best_point["macro_f1"] == pytest.approx(1.0)
    assert all(p["macro_f1"] < 1.0 for p in m["threshold_sweep"] if not lo < p["threshold"] <= hi)


def test_sweep_is_invariant_to_monotone_rescaling_of_scores():
    plain = compute_metrics(SCORES, GOLD, LABELS, multi_label=True)
    for transformed in (SCORES * 100 - 7, 1 / (1 + np.exp(-5 * SCORES))):
        other = compute_metrics(transformed, GOLD, LABELS, multi_label=True)
        assert [p["macro_f1"] for p in other["threshold_sweep"]] == pytest.approx(
            [p["macro_f1"] for p in plain["threshold_sweep"]])
        assert other["macro_f1"] == pytest.approx(plain["macro_f1"])
        assert other["roc_auc_micro"] == pytest.approx(plain["roc_auc_micro"])


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="scores"):
        compute_metrics(SCORES, GOLD[:2], LABELS, multi_label=True)
    with pytest.raises(ValueError, match="label_names"):
        compute_metrics(SCORES, GOLD, LABELS[:3], multi_label=True)
