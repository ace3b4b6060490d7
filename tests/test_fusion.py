"""XML0 label fusion: the formula on hand-computed cases, the scorer wrapper, seen labels, GliZNet's label space."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gliznet.evaluation.fusion import (
    FusionScorer,
    fuse,
    label_space,
    load_seen_labels,
    seen_label_probabilities,
)



def test_fuse_matches_a_hand_computed_case():
    # p(s|t) = softmax([ln 3, 0] / 1) = [3/4, 1/4]; prior = 3/4 * 0.8 + 1/4 * 0.4 = 0.7
    # fused = (1 - 1/4) * 0.2 + 1/4 * 0.7 = 0.15 + 0.175 = 0.325
    fused = fuse(np.array([[0.2]]), np.array([[math.log(3), 0.0]]), np.array([[0.8], [0.4]]), lam=0.25, tau=1.0)
    assert fused == pytest.approx(np.array([[0.325]]))


def test_fuse_temperature_and_top_k_by_hand():
    # tau = 0.5: the 1st text's logits are [ln 3 / 2, 0, -1] / 0.5 = [ln 3, 0, -2]; top_k = 2 drops the third
    # seen label (its huge similarity must not count), so p = [3/4, 1/4, 0] and the priors are 0.7 and 0.25.
    scores_seen = np.array([[math.log(3) / 2, 0.0, -1.0],
                            [-1.0, 0.0, math.log(3) / 2]])  # 2nd text: p = [0, 1/4, 3/4]
    sim = np.array([[0.8, 0.0], [0.4, 1.0], [100.0, -1.0]])
    fused = fuse(np.array([[0.2, 0.6], [0.2, 0.6]]), scores_seen, sim, lam=0.5, tau=0.5, top_k=2)
    expected = np.array([[0.5 * 0.2 + 0.5 * 0.7, 0.5 * 0.6 + 0.5 * 0.25],
                         [0.5 * 0.2 + 0.5 * (0.1 + 75.0), 0.5 * 0.6 + 0.5 * (0.25 - 0.75)]])
    assert fused == pytest.approx(expected)
    p = seen_label_probabilities(scores_seen, tau=0.5, top_k=2)
    assert p == pytest.approx(np.array([[0.75, 0.25, 0.0], [0.0, 0.25, 0.75]]))


def test_fuse_with_lambda_zero_is_the_base_scores_exactly():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 3))
    assert np.array_equal(fuse(base, rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), lam=0.0, tau=0.1), base)


@pytest.mark.parametrize("kwargs, option", [({"lam": 1.5}, "--fusion-lambda"), ({"tau": 0.0}, "--fusion-tau"),
                                            ({"top_k": 0}, "--fusion-top-k")])
def test_bad_fusion_parameters_name_their_option(kwargs, option):
    args = {"lam": 0.3, "tau": 0.1, "top_k": None, **kwargs}
    with pytest.raises(ValueError, match=option):
        fuse(np.zeros((1, 1)), np.zeros((1, 2)), np.zeros((2, 1)), **args)


class TableScorer:
    """A fixed score per label, the same for every text (plus the text's index, so rows differ)."""

    name = "table"

    def __init__(self, table: dict[str, float]):
        self.table = table

    def score(self, texts, labels):
        return np.array([[self.table[label] + i for label in labels] for i in range(len(texts))])


class AxisSpace:
    """Hand-made label vectors (unit axes and their mixes) and scores in the cosine range."""

    vectors = {"Sports": [1.0, 0.0], "cinema": [0.0, 1.0], "football": [0.6, 0.8], "film": [0.0, 1.0]}

    def __init__(self, base):
        self.base = base

    def label_vectors(self, labels):
        return np.array([self.vectors[label] for label in labels])

    def to_score(self, cosine):
        return cosine

    def seen_scores(self, texts, seen):
        return self.base.score(texts, seen)


def test_fusion_scorer_fuses_unseen_labels_and_keeps_seen_ones():
    base = TableScorer({"sports": 0.3, "Sports": math.log(3), "cinema": 0.0, "football": 0.1, "film": 0.5})
    scorer = FusionScorer(base, ["Sports", "cinema"], lam=0.5, tau=1.0, top_k=None, space=AxisSpace(base))
    texts, labels = ["t0"], ["sports", "football", "film"]
    fused = scorer.score(texts, labels)
    # "sports" is seen ("Sports", case-folded) and keeps 0.3.  p = softmax([ln 3, 0]) = [3/4, 1/4];
    # football: sim = [0.6, 0.8] -> prior 0.65, fused 0.5*0.1 + 0.5*0.65; film: sim = [0, 1] -> prior 0.25
    assert fused == pytest.approx(np.array([[0.3, 0.05 + 0.325, 0.25 + 0.125]]))
    off = FusionScorer(base, ["Sports", "cinema"], lam=0.0, space=AxisSpace(base))
    assert np.array_equal(off.score(["t0", "t1"], labels), base.score(["t0", "t1"], labels))
    assert "fusion" in scorer.name and scorer.name.startswith("table")


def test_fusion_needs_seen_labels_and_a_known_base():
    base = TableScorer({"a": 0.0})
    with pytest.raises(ValueError, match="fusion-seen"):
        FusionScorer(base, [], space=AxisSpace(base))
    with pytest.raises(ValueError, match="label vectors"):
        label_space(base)


def test_seen_labels_come_from_a_dataset_train_split_or_a_jsonl(tmp_path, eval_dir):
    from datasets import Dataset, DatasetDict

    train = Dataset.from_dict({"text": ["t1", "t2"], "labels": [["alarm set"], ["weather", "alarm set"]],
                               "not_labels": [["cooking"], ["music"]]})
    test = Dataset.from_dict({"text": ["t3"], "labels": [["held out"]], "not_labels": [["weather"]]})
    DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "ds" / "triplet"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "x", "labels": ["banking"], "not_labels": ["travel"]}) + "\n")
    assert load_seen_labels(str(tmp_path / "ds")) == ["alarm set", "weather"]  # positives of train only
    assert load_seen_labels(f"{tmp_path / 'ds'},{rows}") == ["alarm set", "banking", "weather"]
    with pytest.raises(ValueError, match="eval set"):
        load_seen_labels(str(eval_dir / "sst2.jsonl"))
    with pytest.raises(ValueError, match="--fusion-seen"):
        load_seen_labels(str(tmp_path / "missing"))


def test_gliznet_label_space_matches_the_model_own_scores():
    """Isolated attention: a label's vector and a text's seen-label scores equal what a normal pass computes."""
    import torch

    from gliznet.modeling.config import GliZNetConfig
    from gliznet.modeling.model import GliZNet

    model = GliZNet.from_backbone(None, GliZNetConfig(label_template=None, label_descriptions=None)).eval()  # bare
    space = label_space(model)
    texts, seen = ["the match ended in a draw", "a gripping thriller"], ["sports", "movies", "weather report"]
    assert np.allclose(space.seen_scores(texts, seen), model.score(texts, seen), atol=1e-4)
    with torch.inference_mode():
        enc = model.tokenizer(texts[:1], [seen])
        passed = model(**{k: enc[k] for k in ("input_ids", "attention_mask", "label_mask")}).label_embeds[0]
    unit = passed.numpy() / np.linalg.norm(passed.numpy(), axis=1, keepdims=True)
    assert np.allclose(space.label_vectors(seen), unit, atol=1e-4)
    fused = FusionScorer(model, seen, lam=0.3).score(texts, ["football", "sports"])
    base = model.score(texts, ["football", "sports"])
    assert fused[:, 1] == pytest.approx(base[:, 1]) and not np.allclose(fused[:, 0], base[:, 0])
    assert ((0 < fused) & (fused < 1)).all()  # the head maps label similarity into the probability range

    from dataclasses import fields, replace

    if "label_template" in {f.name for f in fields(model.config)}:  # labels rendered as model.score renders them
        bare = space.seen_scores(texts, seen)
        model.config = replace(model.config, label_template="This text is about {label}.")
        templated = label_space(model)
        assert np.allclose(templated.seen_scores(texts, seen), model.score(texts, seen), atol=1e-4)
        assert not np.allclose(templated.seen_scores(texts, seen), bare, atol=1e-4)
        assert np.allclose(space.seen_scores(texts, seen), templated.seen_scores(texts, seen))  # the model's rendering now
