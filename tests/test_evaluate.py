"""Evaluator: metrics against hand-computed examples, threshold sweep, reports, data loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gliznet.evaluate import (
    EvalData,
    compute_metrics,
    default_eval_paths,
    evaluate,
    evaluate_suite,
    load_eval_data,
)

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"

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


class KeywordScorer:
    """A real (if simple) scorer: 1 if the label occurs in the text, plus a small label-length term."""

    name = "keyword"

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        return np.array([[float(label in text.lower()) + 0.01 * len(label) for label in labels] for text in texts])


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


def test_evaluate_writes_json_markdown_and_plots(tmp_path):
    data = EvalData(name="tiny", texts=["a sports match", "a film review", "sports film night", "nothing"],
                    gold=[["sports"], ["film"], ["sports", "film"], ["film"]],
                    candidate_labels=["film", "sports"], multi_label=True)
    report = evaluate(KeywordScorer(), data, out_dir=str(tmp_path), batch_size=3)
    assert report["scorer"] == "keyword" and report["data"] == "tiny" and report["n"] == 4
    assert report["texts_per_s"] > 0
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["metrics"]["macro_f1"] == pytest.approx(report["metrics"]["macro_f1"])
    md = (tmp_path / "report.md").read_text()
    for png in ("pr_curve.png", "per_label_f1.png", "score_histogram.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert f"({png})" in md
    assert "Headline macro-F1" in md


def test_evaluate_rejects_a_scorer_returning_the_wrong_shape():
    class Transposed:
        def score(self, texts, labels):
            return np.zeros((len(labels), len(texts)))

    data = EvalData("t", ["x", "y", "z"], [["a"], ["b"], ["a"]], ["a", "b"], False)
    with pytest.raises(ValueError, match="expected"):
        evaluate(Transposed(), data)


def test_evaluate_suite_summarises_headline_macro_f1(tmp_path):
    single = tmp_path / "single.jsonl"
    single.write_text("\n".join(json.dumps(r) for r in [
        {"text": "great sports day", "labels": ["sports"]}, {"text": "a film", "labels": ["film"]},
        {"text": "sports again", "labels": ["film"]}]))
    multi = tmp_path / "multi.jsonl"
    multi.write_text("\n".join(json.dumps(r) for r in [
        {"text": "sports film", "labels": ["sports", "film"]}, {"text": "a film", "labels": ["film"]},
        {"text": "news", "labels": ["news"]}]))
    out = tmp_path / "out"
    summary = evaluate_suite(KeywordScorer(), [str(single), str(multi)], out_dir=str(out))
    by_name = {s["data"]: s for s in summary["sets"]}
    assert by_name["single"]["decision"] == "argmax" and by_name["multi"]["decision"] == "threshold"
    # single: argmax -> sports, film, sports ; sports F1 2/3, film F1 2/3
    assert by_name["single"]["macro_f1"] == pytest.approx(2 / 3)
    assert summary["average_macro_f1"] == pytest.approx(np.mean([s["macro_f1"] for s in summary["sets"]]))
    assert json.loads((out / "summary.json").read_text())["average_macro_f1"] == summary["average_macro_f1"]
    assert "average" in (out / "summary.md").read_text()
    assert (out / "multi" / "report.json").exists()


def test_load_eval_data_reads_shared_sst2():
    data = load_eval_data(str(SHARED_EVAL / "sst2.jsonl"))
    assert data.name == "sst2" and len(data.texts) == 872
    assert data.candidate_labels == ["negative", "positive"] and not data.multi_label
    assert data.gold_matrix().sum() == 872


def test_limit_subsamples_stratified_and_keeps_every_candidate():
    data = load_eval_data(str(SHARED_EVAL / "emotion.jsonl"), limit=200, seed=1)
    full = load_eval_data(str(SHARED_EVAL / "emotion.jsonl"))
    assert len(data.texts) == 200 and data.candidate_labels == full.candidate_labels
    share = {label: sum(g == [label] for g in data.gold) / 200 for label in data.candidate_labels}
    full_share = {label: sum(g == [label] for g in full.gold) / 2000 for label in full.candidate_labels}
    assert all(abs(share[k] - full_share[k]) <= 0.01 for k in share)
    assert load_eval_data(str(SHARED_EVAL / "emotion.jsonl"), limit=200, seed=1).texts == data.texts
    assert load_eval_data(str(SHARED_EVAL / "emotion.jsonl"), limit=200, seed=2).texts != data.texts


def test_reuters_is_detected_as_multi_label():
    data = load_eval_data(str(SHARED_EVAL / "reuters21578_modapte.jsonl"))
    assert data.multi_label and len(data.candidate_labels) == 86  # of the source split's 90, 86 occur in the sample


def _save_dataset_folder(root: Path, with_test: bool = True) -> Path:
    from datasets import Dataset, DatasetDict

    train = {"text": ["t1"], "labels": [["seen"]], "not_labels": [["also seen"]]}
    test = {"text": ["a match report", "a budget speech"], "labels": [["sports"], ["politics", "economy"]],
            "not_labels": [["cooking"], ["sports"]]}
    for config, drop in (("triplet", []), ("couplet", ["not_labels"])):
        splits = {"train": Dataset.from_dict(train).remove_columns(drop)}
        if with_test:
            splits["test"] = Dataset.from_dict(test).remove_columns(drop)
        DatasetDict(splits).save_to_disk(str(root / config))
    return root


def test_load_eval_data_reads_a_dataset_folder_test_split(tmp_path):
    root = _save_dataset_folder(tmp_path / "hardset")
    data = load_eval_data(str(root))
    assert data.name == "hardset" and data.texts == ["a match report", "a budget speech"]
    assert data.candidate_labels == ["cooking", "economy", "politics", "sports"]  # negatives are candidates
    assert data.multi_label
    couplet = load_eval_data(str(root / "couplet"))
    assert couplet.candidate_labels == ["economy", "politics", "sports"]


def test_dataset_folder_without_test_split_is_rejected(tmp_path):
    root = _save_dataset_folder(tmp_path / "notest", with_test=False)
    with pytest.raises(ValueError, match="'test' split"):
        load_eval_data(str(root))


@pytest.mark.parametrize("make_bad", [
    lambda p: p / "missing.jsonl",
    lambda p: (p / "rows.txt").write_text("x") and p / "rows.txt",
    lambda p: (p / "empty_dir").mkdir() or p / "empty_dir",
    lambda p: (p / "bad.jsonl").write_text('{"text": "x", "labels": "notalist"}\n') and p / "bad.jsonl",
    lambda p: (p / "blank.jsonl").write_text("\n") and p / "blank.jsonl",
])
def test_bad_data_path_names_the_data_option(tmp_path, make_bad):
    with pytest.raises(ValueError, match="--data"):
        load_eval_data(str(make_bad(tmp_path)))


def test_default_eval_paths_finds_the_shared_sets(monkeypatch):
    monkeypatch.delenv("GLIZNET_EVAL_DIR", raising=False)
    names = [Path(p).name for p in default_eval_paths()]
    assert len(names) == 7 and "sst2.jsonl" in names and "reuters21578_modapte.jsonl" in names


def test_default_eval_paths_honours_env_and_errors_when_empty(monkeypatch, tmp_path):
    (tmp_path / "one.jsonl").write_text('{"text": "x", "labels": ["a"]}\n')
    monkeypatch.setenv("GLIZNET_EVAL_DIR", str(tmp_path))
    assert default_eval_paths() == [str(tmp_path / "one.jsonl")]
    monkeypatch.setenv("GLIZNET_EVAL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="GLIZNET_EVAL_DIR"):
        default_eval_paths()
