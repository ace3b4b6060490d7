"""The weekly run's library functions (gliznet.pipeline.weekly): seed, names, measurement, lineage, report. No Prefect."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from gliznet.pipeline import weekly


def test_the_seed_is_the_iso_week_and_stays_the_same_within_it(monkeypatch):
    assert weekly.week_seed(date(2026, 1, 5)) == 202602  # Monday
    assert weekly.week_seed(date(2026, 1, 11)) == 202602  # Sunday of the same ISO week
    assert weekly.week_seed(date(2026, 1, 12)) == 202603
    assert weekly.week_seed(date(2024, 12, 30)) == 202501  # the ISO year, not the calendar year

    class Sunday(date):  # "today" read once, fixed: no race with midnight between two reads of the clock
        @classmethod
        def today(cls):
            return cls(2026, 1, 11)

    monkeypatch.setattr(weekly, "date", Sunday)
    assert weekly.week_seed() == 202602  # no day given: today's week


def test_folder_names_are_unchanged_so_existing_runs_resume():
    # the names earlier versions of the flow gave: a rerun finds its dataset and model folders again
    assert weekly.dataset_dir("w", 10, 5, "local", None) == Path("w/datasets/950214e4d108")
    assert weekly.model_dir("w", "abc123", None, {"batch_size": 4, "max_steps": 2}) == Path("w/models/cbb795145a27")


def test_names_follow_what_decides_the_content():
    assert weekly.dataset_dir("w", 10, 5, "local", None) != weekly.dataset_dir("w", 10, 6, "local", None)
    params = {"batch_size": 4, "max_steps": 2}
    same_params_reordered = {"max_steps": 2, "batch_size": 4}
    assert weekly.model_key("fp", None, params) == weekly.model_key("fp", None, same_params_reordered)
    assert weekly.model_key("fp", None, params) != weekly.model_key("fp", None, {**params, "lr": 3e-5})
    assert weekly.model_key("fp", None, params) != weekly.model_key("other", None, params)
    assert weekly.model_dir("w", "fp", None, params).name == weekly.model_key("fp", None, params)


def test_the_release_version_is_the_dataset_version_and_the_model_key():
    version = weekly.release_version("2026-01-05-abcdef12", "fp", None, {"max_steps": 2})
    assert version == f"2026-01-05-abcdef12-{weekly.model_key('fp', None, {'max_steps': 2})[:8]}"


def test_training_parameters_are_flat_trainconfig_keys_with_library_defaults_for_the_rest():
    from gliznet.training.config import TrainConfig

    config = weekly.train_config({"batch_size": 4, "max_steps": 2})
    assert config.batch_size == 4 and config.max_steps == 2
    assert config.lr == TrainConfig().lr
    assert weekly.train_config({}) == TrainConfig()


def test_the_weekly_length_is_one_pass_or_the_aimed_recipe_unless_train_params_set_one(tmp_path):
    import json

    from datasets import Dataset, DatasetDict

    from gliznet.training.config import TrainConfig, aimed_steps

    rows = {"text": [f"text {i}" for i in range(100)], "labels": [["a"]] * 100, "not_labels": [["b"]] * 100}
    DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows).select(range(5))}).save_to_disk(
        str(tmp_path / "triplet"))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1"}))
    plain = weekly.train_config({"batch_size": 8}, tmp_path)
    assert (plain.max_steps, plain.epochs) == (-1, weekly.WEEKLY_EPOCHS)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1", "aimed": {"labels": 2}}))
    aimed = weekly.train_config({"batch_size": 8}, tmp_path)
    assert aimed.max_steps == aimed_steps(100, 8) == 50  # 4 passes over 100 texts in batches of 8
    assert weekly.train_config({"max_steps": 7}, tmp_path).max_steps == 7
    two = weekly.train_config({"epochs": 2.0}, tmp_path)
    assert (two.max_steps, two.epochs) == (-1, 2.0) != (TrainConfig().max_steps, TrainConfig().epochs)


def test_eval_paths_are_made_absolute_and_default_to_every_real_set(tmp_path, monkeypatch):
    (tmp_path / "b.jsonl").write_text('{"text": "x", "labels": ["y"]}\n')
    (tmp_path / "a.jsonl").write_text('{"text": "x", "labels": ["y"]}\n')
    monkeypatch.chdir(tmp_path)
    assert weekly.resolve_eval_paths(["a.jsonl"]) == [str(tmp_path / "a.jsonl")]
    monkeypatch.setenv("GLIZNET_EVAL_DIR", str(tmp_path))
    assert weekly.resolve_eval_paths(None) == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]


def test_the_frozen_summary_says_which_sets_and_how_many_rows_it_measured(tmp_path):
    from gliznet.pipeline.release import eval_set_identity

    path = tmp_path / "sst2.jsonl"
    path.write_text('{"text": "fine", "labels": ["positive"]}\n')
    summary = weekly.frozen_summary({"average_macro_f1": 0.5, "sets": []}, [str(path)], 12)
    assert summary == {"average_macro_f1": 0.5, "sets": [], "paths": [str(path)],
                       "eval_sets": eval_set_identity([str(path)]), "limit": 12}
    # the sets are named by content: a changed file is a different set
    path.write_text('{"text": "bad", "labels": ["negative"]}\n')
    assert weekly.frozen_summary({}, [str(path)], 12)["eval_sets"] != summary["eval_sets"]


def test_lineage_names_dataset_prompts_llm_backbone_training_and_code():
    dataset = {"fingerprint": "f" * 64, "version": "2026-01-05-ffffffff"}
    manifest = {"prompt_hashes": {"hardset_batch": "123"}, "parameters": {"model": "SmolLM2-135M"}}
    lineage = weekly.lineage(dataset, manifest, provider="local", backbone=None, train_params={"max_steps": 2},
                             seed=202602)
    assert lineage["dataset_fingerprint"] == "f" * 64 and lineage["dataset_version"] == dataset["version"]
    assert lineage["prompt_hashes"] == {"hardset_batch": "123"}
    assert (lineage["llm_provider"], lineage["llm_model"]) == ("local", "SmolLM2-135M")
    assert lineage["backbone"] == "packaged MiniLM-L6"
    assert lineage["train_params"] == {"max_steps": 2} and lineage["seed"] == 202602
    assert lineage["packages"]["torch"] and lineage["git_commit"]
    json.dumps(lineage)  # it is written as lineage.json


def _run(decision: str, previous: float | None, released: bool) -> dict:
    gate = {"decision": decision, "reason": "0.3000 < 0.9900 - 0.01", "previous": previous,
            "previous_summary": {"sets": [{"data": "sst2", "macro_f1": 0.99}]} if previous is not None else None}
    run = {"gate": gate,
           "frozen": {"average_macro_f1": 0.3, "sets": [{"data": "sst2", "n": 12, "macro_f1": 0.4},
                                                        {"data": "emotion", "n": 12, "macro_f1": 0.2}]},
           "dataset": {"version": "2026-01-05-abcdef12",
                       "counts": {"accepted": 10, "rejected": 3, "train": 8, "test": 2}},
           "snapshot": {"snapshot": "runs/weekly/snapshots/2026-01-05-abcdef12"},
           "model": {"model_dir": "/m/models/k/model"}, "own_test": {"macro_f1": 0.25}}
    if released:
        run["release"] = {"model": "/m/models-released/v1"}
    return run


def test_the_report_shows_the_decision_scores_per_set_and_the_previous_release():
    report = weekly.report_markdown(_run("held", 0.99, released=False))
    assert report.startswith("# regenerate-and-retrain: **held**")
    assert "accepted 10, rejected 3, train 8, test 2" in report
    assert "| sst2 | 12 | 0.4000 | 0.9900 |" in report
    assert "| emotion | 12 | 0.2000 | - |" in report  # not in the previous release's summary
    assert "| **average** | | **0.3000** | 0.9900 |" in report
    assert "macro-F1 0.25" in report and "released: `no (held)`" in report


def test_the_report_of_a_first_release_has_no_previous_scores():
    report = weekly.report_markdown(_run("released", None, released=True))
    assert "**released**" in report
    assert "| sst2 | 12 | 0.4000 | - |" in report and "| **average** | | **0.3000** | - |" in report
    assert "released: `/m/models-released/v1`" in report


@pytest.mark.slow
@pytest.mark.parametrize("module", ["gliznet.pipeline.weekly", "gliznet.pipeline.release"])
def test_the_weekly_library_does_not_import_prefect(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_the_weekly_run_on_aimed_data_trains_from_the_aimed_encoder_unless_given(tmp_path):
    from gliznet.training.config import AIMED_BACKBONE, aimed_backbone

    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1", "aimed": {"labels": 2}}))
    assert aimed_backbone(None, tmp_path) == AIMED_BACKBONE and aimed_backbone("minilm", tmp_path) == "minilm"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1"}))
    assert aimed_backbone(None, tmp_path) is None
