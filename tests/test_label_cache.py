"""Label vectors once: with isolated attention each label is encoded once (cached) and each text once, and the
scores equal the pass-by-pass scores; modes where labels read the text keep the passes."""

import os
import random

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling import predict as predict_module
from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.label_text import SHIPPED
from gliznet.modeling.model import GliZNet
from gliznet.modeling.predict import LabelVectorCache, score_labels

TOLERANCE = 1e-5
TEXTS = ["the striker scored twice in the second half", "simmer the tomato sauce, then add basil",
         "parliament passed the new budget after a long debate", "heavy rain and strong winds expected tomorrow",
         "the band released its third album on friday"]
WORDS = ("sports cooking politics weather finance music travel health science market team film court energy "
         "school water police price game river city bank party power road child food art money storm").split()


def make_labels(n: int, seed: int = 0) -> list[str]:
    rng, labels = random.Random(seed), []
    while len(labels) < n:
        label = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
        if label not in labels:
            labels.append(label)
    return labels


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GliZNet.from_backbone(None, GliZNetConfig(label_attention="isolated")).eval()


def pass_by_pass(model, texts, labels):
    """Today's path: the rendered strings scored in passes of 32 labels, the text repeated per pass."""
    shown_texts, shown_labels = model.label_text.apply(texts, labels)
    return score_labels(model, shown_texts, shown_labels, cache=False)


@pytest.mark.parametrize("n_labels", [10, 100])
@pytest.mark.parametrize("rendered", [False, True], ids=["bare", "template+descriptions"])
def test_cached_label_vectors_score_like_the_passes(model, n_labels, rendered):
    old = model.config.label_template, model.config.label_descriptions
    if rendered:
        model.config.label_template, model.config.label_descriptions = "This text is about {label}.", SHIPPED
    try:
        labels = make_labels(n_labels)
        cached = model.score(TEXTS, labels, batch_size=2)
        np.testing.assert_allclose(cached, pass_by_pass(model, TEXTS, labels), atol=TOLERANCE, rtol=0)
        per_text = [make_labels(n_labels, seed=i) for i in range(len(TEXTS))]
        cached_each = model.score(TEXTS, per_text, batch_size=2)
        for got, want in zip(cached_each, pass_by_pass(model, TEXTS, per_text)):
            np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)
    finally:
        model.config.label_template, model.config.label_descriptions = old


def test_each_label_and_each_text_is_encoded_once(model, monkeypatch):
    encoded_labels, encoded_texts = [], []
    real_labels, real_texts = predict_module._encode_labels, predict_module.text_vectors
    monkeypatch.setattr(predict_module, "_encode_labels",
                        lambda m, labels, *a: encoded_labels.extend(labels) or real_labels(m, labels, *a))
    monkeypatch.setattr(predict_module, "text_vectors",
                        lambda m, ids: encoded_texts.extend(ids) or real_texts(m, ids))
    model.label_vector_cache = None
    labels = make_labels(100)
    first = model.score(TEXTS, labels, batch_size=2)
    assert sorted(encoded_labels) == sorted(labels) and len(encoded_texts) == len(TEXTS)
    again = model.score(TEXTS[:2], labels[:50] + ["brand new label"])  # across calls: only the new label
    assert encoded_labels[len(labels):] == ["brand new label"]
    np.testing.assert_allclose(again[:, :50], first[:2, :50], atol=TOLERANCE, rtol=0)


def test_the_cache_is_emptied_when_the_weights_change():
    torch.manual_seed(0)
    model = GliZNet.from_backbone(None, GliZNetConfig(label_attention="isolated")).eval()
    labels = make_labels(10)
    before = model.score(TEXTS, labels)
    with torch.no_grad():
        model.backbone.embeddings.word_embeddings.weight.mul_(1.1)  # an optimizer step is in place too
    after = model.score(TEXTS, labels)
    assert np.abs(after - before).max() > 1e-4
    np.testing.assert_allclose(after, pass_by_pass(model, TEXTS, labels), atol=TOLERANCE, rtol=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["score_head.bias"] += 1.0
    state["backbone.embeddings.word_embeddings.weight"] /= 1.1
    model.load_state_dict(state)
    np.testing.assert_allclose(model.score(TEXTS, labels), pass_by_pass(model, TEXTS, labels), atol=TOLERANCE, rtol=0)


def test_the_cache_keeps_at_most_its_size_most_recent_labels(model):
    cache = LabelVectorCache(max_labels=5)
    with torch.inference_mode():
        full = cache.vectors(model, make_labels(8))
        assert len(cache) == 5 and full.shape[0] == 8
        again = cache.vectors(model, make_labels(8)[:3])  # evicted ones are encoded again
    torch.testing.assert_close(again, full[:3], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("options", [{"label_attention": "full"}, {"label_attention": "labels_read_text"},
                                     {"label_attention": "isolated", "text_pooling": "label"}])
def test_modes_where_the_two_sides_meet_keep_the_passes(model, options):
    other = GliZNet.from_backbone(None, GliZNetConfig(**options))
    other.load_state_dict(model.state_dict(), strict=False)
    other.eval()
    labels = make_labels(40)
    np.testing.assert_allclose(other.score(TEXTS, labels), pass_by_pass(other, TEXTS, labels), atol=TOLERANCE, rtol=0)
    assert other.label_vector_cache is None


def test_a_label_too_long_for_any_pass_still_names_itself(model):
    old = model.config.max_length
    model.config.max_length = 24
    try:
        with pytest.raises(ValueError, match="does not fit in max_length=24"):
            model.score(TEXTS[:1], ["sports", "a label far too long " * 4])
    finally:
        model.config.max_length = old
