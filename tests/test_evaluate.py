"""Evaluator: scoring a set, reports and plots, suites, data loading (the metrics: test_metrics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gliznet.evaluation.data import EvalData, default_eval_paths, load_eval_data
from gliznet.evaluation.runs import evaluate, evaluate_suite



class KeywordScorer:
    """A real (if simple) scorer: 1 if the label occurs in the text, plus a small label-length term."""

    name = "keyword"

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        return np.array([[float(label in text.lower()) + 0.01 * len(label) for label in labels] for text in texts])


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


def test_load_eval_data_reads_shared_sst2(eval_dir):
    data = load_eval_data(str(eval_dir / "sst2.jsonl"))
    assert data.name == "sst2" and len(data.texts) == 872
    assert data.candidate_labels == ["negative", "positive"] and not data.multi_label
    assert data.gold_matrix().sum() == 872


def test_limit_subsamples_stratified_and_keeps_every_candidate(eval_dir):
    data = load_eval_data(str(eval_dir / "emotion.jsonl"), limit=200, seed=1)
    full = load_eval_data(str(eval_dir / "emotion.jsonl"))
    assert len(data.texts) == 200 and data.candidate_labels == full.candidate_labels
    share = {label: sum(g == [label] for g in data.gold) / 200 for label in data.candidate_labels}
    full_share = {label: sum(g == [label] for g in full.gold) / 2000 for label in full.candidate_labels}
    assert all(abs(share[k] - full_share[k]) <= 0.01 for k in share)
    assert load_eval_data(str(eval_dir / "emotion.jsonl"), limit=200, seed=1).texts == data.texts
    assert load_eval_data(str(eval_dir / "emotion.jsonl"), limit=200, seed=2).texts != data.texts


def test_reuters_is_detected_as_multi_label(eval_dir):
    data = load_eval_data(str(eval_dir / "reuters21578_modapte.jsonl"))
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


def test_default_eval_paths_finds_the_shared_sets():
    names = [Path(p).name for p in default_eval_paths()]
    assert len(names) == 7 and "sst2.jsonl" in names and "reuters21578_modapte.jsonl" in names


def test_default_eval_paths_without_gliznet_eval_dir_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("GLIZNET_EVAL_DIR", raising=False)
    with pytest.raises(ValueError, match="GLIZNET_EVAL_DIR is not set: .*export GLIZNET_EVAL_DIR=../shared/eval"):
        default_eval_paths()


def test_default_eval_paths_honours_env_and_errors_when_empty(monkeypatch, tmp_path):
    (tmp_path / "one.jsonl").write_text('{"text": "x", "labels": ["a"]}\n')
    monkeypatch.setenv("GLIZNET_EVAL_DIR", str(tmp_path))
    assert default_eval_paths() == [str(tmp_path / "one.jsonl")]
    monkeypatch.setenv("GLIZNET_EVAL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="GLIZNET_EVAL_DIR"):
        default_eval_paths()
