"""Predictor: chunked label sets, dropped labels re-scored, thresholds, per-text label lists, bad input."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.model import GliZNet

TEXTS = ["the striker scored twice in the second half", "simmer the tomato sauce, then add basil",
         "parliament passed the new budget", "heavy rain and strong winds expected tomorrow"]
LABELS = ["sports", "cooking", "politics", "weather", "finance", "music", "travel", "health", "science"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GliZNet.from_backbone(None, GliZNetConfig(label_attention="isolated")).eval()


def test_chunked_labels_score_like_one_pass_with_isolated_attention(model):
    one_pass = model.score(TEXTS, LABELS, max_labels_per_pass=64)
    chunked = model.score(TEXTS, LABELS, max_labels_per_pass=2, batch_size=3)
    assert one_pass.shape == (4, 9)
    np.testing.assert_allclose(chunked, one_pass, atol=1e-5)


def test_labels_that_do_not_fit_are_scored_in_another_pass(model):
    reference = model.score(TEXTS, LABELS)
    old = model.config.max_length
    model.config.max_length = 40  # room for the text and only a few labels per pass
    try:
        cramped = model.score(TEXTS, LABELS, max_labels_per_pass=64)
    finally:
        model.config.max_length = old
    assert (cramped > 0).all()
    np.testing.assert_allclose(cramped, reference, atol=1e-5)


def test_predict_returns_sorted_scores_and_applies_the_threshold(model):
    results = model.predict(TEXTS[:2], LABELS)
    assert [set(r) for r in results] == [set(LABELS)] * 2
    for r in results:
        values = list(r.values())
        assert values == sorted(values, reverse=True) and all(0 < v < 1 for v in values)
    ranked = sorted(results[0].values())
    cut = (ranked[3] + ranked[4]) / 2  # between two scores: a batch of one pads differently (float noise)
    filtered = model.predict(TEXTS[:1], LABELS, threshold=cut)[0]
    assert set(filtered) == {k for k, v in results[0].items() if v >= cut} and len(filtered) == 5


def test_each_text_can_have_its_own_labels(model):
    per_text = [["sports", "cooking"], ["cooking", "politics", "weather"]]
    scores = model.score(TEXTS[:2], per_text)
    shared = model.score(TEXTS[:2], ["sports", "cooking", "politics", "weather"])
    assert [len(s) for s in scores] == [2, 3]
    np.testing.assert_allclose(scores[0], shared[0, :2], atol=1e-5)
    np.testing.assert_allclose(scores[1], shared[1, 1:], atol=1e-5)


@pytest.mark.parametrize("texts, labels, message", [
    (["a text"], [], "labels is empty"),
    (["a text", ""], ["x", "y"], "text is empty"),
    (["a text"], ["x", "y", "x"], "duplicate labels"),
    ("a text", ["x"], "texts is a string"),
])
def test_bad_input_gives_clear_errors(model, texts, labels, message):
    with pytest.raises(ValueError, match=message):
        model.predict(texts, labels)


def test_max_text_tokens_scores_a_long_text_as_its_first_tokens(model):
    short = TEXTS[0]
    long = short + " " + " ".join(["and the crowd sang songs about the weather all evening"] * 20)
    cap = len(model.tokenizer.encode_pieces([short])[0])
    old = model.config.max_text_tokens
    try:
        model.config.max_text_tokens = None
        uncapped = model.score([long, short], LABELS)
        model.config.max_text_tokens = cap
        capped = model.score([long, short], LABELS)
    finally:
        model.config.max_text_tokens = old
    np.testing.assert_allclose(capped[0], capped[1], atol=1e-5)  # the long text is cut to the short one
    np.testing.assert_allclose(capped[1], uncapped[1], atol=1e-5)  # a text under the cap is untouched
    assert np.abs(uncapped[0] - uncapped[1]).max() > 1e-3  # without the cap the rest of the text counts


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_max_text_tokens_must_be_a_positive_count(bad):
    with pytest.raises(ValueError, match="max_text_tokens"):
        GliZNetConfig(max_text_tokens=bad)
