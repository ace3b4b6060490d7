"""Batch calibration: each label's prior (its mean score over the texts scored together) removed before the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from gliznet.evaluation.calibration import calibrate
from gliznet.evaluation.data import EvalData
from gliznet.evaluation.runs import evaluate, evaluate_suite, summary_markdown


class BiasedKeywordScorer:
    """1 if the label occurs in the text, plus a large constant for one favoured label (a label prior)."""

    name = "biased-keyword"

    def __init__(self, favoured: str, bias: float = 1.5):
        self.favoured, self.bias = favoured, bias

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        return np.array([[float(label in text) + self.bias * (label == self.favoured) for label in labels]
                         for text in texts])


DATA = EvalData(name="toy", texts=["a sports match", "sports news", "a film review", "an old film", "politics now",
                                   "politics and votes"],
                gold=[["sports"], ["sports"], ["film"], ["film"], ["politics"], ["politics"]],
                candidate_labels=["film", "politics", "sports"], multi_label=False)


def test_calibrate_subtracts_each_labels_mean_and_none_changes_nothing():
    scores = np.array([[0.9, 0.1], [0.7, 0.5], [0.8, 0.0]])
    out = calibrate(scores, "batch")
    assert np.allclose(out.mean(axis=0), 0.0)
    assert np.allclose(out - scores, -scores.mean(axis=0))  # a shift per label, the same for every text
    assert np.array_equal(calibrate(scores, "none"), scores) and np.array_equal(calibrate(scores, None), scores)


def test_a_favoured_label_no_longer_wins_every_argmax():
    raw = evaluate(BiasedKeywordScorer("film"), DATA)
    fixed = evaluate(BiasedKeywordScorer("film"), DATA, calibration="batch")
    assert raw["metrics"]["macro_f1"] < 0.5  # every text predicted "film"
    assert fixed["metrics"]["macro_f1"] == pytest.approx(1.0)
    assert raw["calibration"] == "none" and fixed["calibration"] == "batch"


def test_suite_records_the_calibration(tmp_path):
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(f'{{"text": "{t}", "labels": ["{g[0]}"]}}' for t, g in zip(DATA.texts, DATA.gold)))
    summary = evaluate_suite(BiasedKeywordScorer("film"), [str(path)], calibration="batch")
    assert summary["calibration"] == "batch" and summary["average_macro_f1"] == pytest.approx(1.0)
    assert "batch-calibrated" in summary_markdown(summary)


def test_unknown_calibration_names_the_choices():
    with pytest.raises(ValueError, match=r"calibration='mean'.*'none', 'batch'"):
        calibrate(np.zeros((3, 2)), "mean")
    with pytest.raises(ValueError, match="calibration"):
        evaluate(BiasedKeywordScorer("film"), DATA, calibration="mean")


def test_one_text_cannot_be_calibrated():
    with pytest.raises(ValueError, match="at least 2 texts"):
        calibrate(np.zeros((1, 3)), "batch")
