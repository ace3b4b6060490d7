"""Baselines with the packaged MiniLM: embedding similarity ranks the obvious label first; the
cross-encoder really runs one encoder pass per (text, label) pair."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from gliznet.evaluation.baselines import (
    CrossEncoderBaseline,
    EmbeddingBaseline,
    make_baseline,
)
from gliznet.evaluation.data import EvalData
from gliznet.evaluation.runs import evaluate

TEXTS = ["I love this film, wonderful acting and a moving story",
         "The striker scored twice as the home team won the cup final"]
LABELS = ["positive review", "sports news"]


@pytest.fixture(scope="module")
def embedding() -> EmbeddingBaseline:
    return EmbeddingBaseline(device="cpu")


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoderBaseline:
    return CrossEncoderBaseline(device="cpu")


def test_embedding_baseline_ranks_the_obvious_label_first(embedding):
    scores = embedding.score(TEXTS, LABELS)
    assert scores.shape == (2, 2)
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1
    assert np.all(scores <= 1.0 + 1e-5) and np.all(scores >= -1.0 - 1e-5)  # cosines


def test_embedding_baseline_encodes_each_label_once(embedding):
    calls: list[int] = []
    handle = embedding.embedder.model.register_forward_hook(lambda m, a, kw_out: calls.append(1))
    try:
        embedding.score(["a first text"], ["weather report", "recipe"])
        first = len(calls)  # one pass for the new labels, one for the text
        embedding.score(["another text"], ["recipe", "weather report"])
        assert len(calls) - first == 1  # labels come from the cache: only the text is encoded
    finally:
        handle.remove()


def test_embedding_baseline_scores_are_independent_of_label_order(embedding):
    a = embedding.score(TEXTS, LABELS)
    b = embedding.score(TEXTS, LABELS[::-1])
    np.testing.assert_allclose(a, b[:, ::-1], atol=1e-5)


def test_cross_encoder_runs_one_pass_per_pair(cross_encoder):
    texts = TEXTS + ["Stocks fell sharply after the central bank raised rates"]
    labels = ["positive review", "sports news", "finance", "weather"]
    rows: list[list[int]] = []
    handle = cross_encoder.model.register_forward_pre_hook(
        lambda m, args, kwargs: rows.extend(kwargs["input_ids"].tolist()), with_kwargs=True)
    old_batch = cross_encoder.batch_size
    try:
        cross_encoder.batch_size = 5
        scores = cross_encoder.score(texts, labels)
    finally:
        cross_encoder.batch_size = old_batch
        handle.remove()
    assert scores.shape == (3, 4) and np.isfinite(scores).all()
    assert len(rows) == 3 * 4  # every (text, label) pair is its own encoder sequence
    sep = cross_encoder.tokenizer.sep_token_id
    assert all(row.count(sep) == 2 for row in rows)  # [CLS] text [SEP] label [SEP]: one label per pass
    decoded = cross_encoder.tokenizer.decode(rows[1], skip_special_tokens=True)
    assert decoded.endswith("sports news")


def test_cross_encoder_scores_do_not_depend_on_batching(cross_encoder):
    full = cross_encoder.score(TEXTS, LABELS)
    old_batch = cross_encoder.batch_size
    try:
        cross_encoder.batch_size = 1
        single = cross_encoder.score(TEXTS, LABELS)
    finally:
        cross_encoder.batch_size = old_batch
    np.testing.assert_allclose(full, single, atol=1e-4)


def test_baselines_run_through_the_evaluator(embedding, tmp_path):
    data = EvalData("obvious", TEXTS, [["positive review"], ["sports news"]], LABELS, multi_label=False)
    report = evaluate(embedding, data, out_dir=str(tmp_path))
    assert report["scorer"] == "embedding" and report["metrics"]["macro_f1"] == pytest.approx(1.0)


def test_empty_or_duplicate_labels_are_rejected(embedding, cross_encoder):
    for scorer in (embedding, cross_encoder):
        with pytest.raises(ValueError, match="labels is empty"):
            scorer.score(TEXTS, [])
        with pytest.raises(ValueError, match="duplicates"):
            scorer.score(TEXTS, ["a", "a"])


def test_make_baseline_names():
    assert make_baseline("embedding").name == "embedding"
    with pytest.raises(ValueError, match="--baseline must be one of embedding, cross-encoder"):
        make_baseline("nli")
