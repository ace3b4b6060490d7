"""The honest protocol's dev/test portions: a hash split of every eval set, disjoint, complete and stable.

The real sets come from ``$GLIZNET_EVAL_DIR`` (the ``eval_dir`` fixture); the tests are parametrized by the pinned
set names, so a missing folder or set fails them instead of collecting nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gliznet.evaluation.data import (
    DEV_FRACTION,
    default_eval_paths,
    load_eval_data,
    portion_of,
)
from gliznet.evaluation.runs import evaluate_suite

# Rows of each real set in dev: pinned, so a change of the hash (or of what it reads) fails here - the split must
# be the same on every machine and in every later session that compares figures.
DEV_ROWS = {"ag_news": 608, "emotion": 586, "imdb": 289, "reuters21578_modapte": 567, "rotten_tomatoes": 335,
            "sst2": 273, "sst5": 622}


def rows(data) -> Counter:
    return Counter((text, tuple(gold)) for text, gold in zip(data.texts, data.gold))


@pytest.fixture(params=sorted(DEV_ROWS))
def path(request, eval_dir) -> Path:
    """One real eval set, by its pinned name."""
    found = eval_dir / f"{request.param}.jsonl"
    if not found.is_file():
        pytest.fail(f"the real eval set {found} is missing: GLIZNET_EVAL_DIR must hold every set of DEV_ROWS")
    return found


def test_dev_and_test_are_disjoint_and_together_hold_every_row(path):
    full = load_eval_data(str(path))
    dev = load_eval_data(str(path), portion="dev")
    test = load_eval_data(str(path), portion="test")
    assert rows(dev) + rows(test) == rows(full)
    assert not set(dev.texts) & set(test.texts)  # duplicate texts share a portion: nothing leaks
    assert dev.candidate_labels == test.candidate_labels == full.candidate_labels
    assert (dev.portion, test.portion, full.portion) == ("dev", "test", None)


def test_dev_is_about_thirty_percent_of_each_real_set_and_pinned(path):
    full, dev = load_eval_data(str(path)), load_eval_data(str(path), portion="dev")
    assert len(dev.texts) / len(full.texts) == pytest.approx(DEV_FRACTION, abs=0.05)
    assert len(dev.texts) == DEV_ROWS[path.stem]


def test_every_shared_set_has_its_pinned_dev_size(eval_dir):
    assert sorted(Path(p).stem for p in default_eval_paths()) == sorted(DEV_ROWS)


def test_portion_is_stable_and_independent_of_seed_and_limit(eval_dir):
    path = str(eval_dir / "emotion.jsonl")
    dev = load_eval_data(path, portion="dev")
    assert load_eval_data(path, portion="dev").texts == dev.texts
    assert load_eval_data(path, portion="dev", seed=7).texts == dev.texts  # the seed only drives --limit
    for limit, seed in ((50, 0), (120, 3)):
        small = load_eval_data(path, portion="dev", limit=limit, seed=seed)
        assert len(small.texts) == limit and set(small.texts) <= set(dev.texts)
    assert load_eval_data(path, portion="dev", limit=50).texts == load_eval_data(path, portion="dev", limit=50).texts


def test_portion_of_reads_only_the_set_name_and_the_text():
    assert portion_of("sst2", "a fine film") == portion_of("sst2", "a fine film")
    names = ["sst2", "sst5", "imdb", "ag_news"]
    assert {portion_of(n, f"text {i}") for n in names for i in range(40)} == {"dev", "test"}
    # the same text may fall on different sides in different sets: each set is split on its own
    assert any(portion_of("sst2", f"text {i}") != portion_of("sst5", f"text {i}") for i in range(40))


def test_an_unknown_portion_names_the_option(eval_dir):
    with pytest.raises(ValueError, match="--portion"):
        load_eval_data(str(eval_dir / "sst2.jsonl"), portion="train")
    with pytest.raises(ValueError, match="--portion"):
        evaluate_suite(object(), [str(eval_dir / "sst2.jsonl")], portion="validation")


class KeywordScorer:
    name = "keyword"

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray:
        return np.array([[float(label in text) for label in labels] for text in texts])


def test_suite_report_names_the_portion(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"{label} story number {i}", "labels": [label]})
                              for i in range(30) for label in ("sports", "film")))
    out = tmp_path / "out"
    summary = evaluate_suite(KeywordScorer(), [str(path)], out_dir=str(out), portion="dev")
    dev = load_eval_data(str(path), portion="dev")
    assert summary["portion"] == "dev" and summary["sets"][0]["n"] == len(dev.texts) < 60
    assert json.loads((out / "summary.json").read_text())["portion"] == "dev"
    assert "Portion `dev`" in (out / "summary.md").read_text()
    report = json.loads((out / "tiny" / "report.json").read_text())
    assert report["portion"] == "dev" and report["n"] == len(dev.texts)
    assert "Portion `dev`" in (out / "tiny" / "report.md").read_text()
    whole = evaluate_suite(KeywordScorer(), [str(path)])
    assert whole["portion"] is None and whole["sets"][0]["n"] == 60
