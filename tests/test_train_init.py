"""``gliznet train --init MODEL``: training starts from a trained GliZNet (last week's model, say), not a new head."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import assert_one_clear_error, run_cli  # noqa: E402
from helpers import cli_train_config  # noqa: E402

from gliznet.modeling.model import GliZNet  # noqa: E402
from gliznet.training.config import TrainConfig  # noqa: E402
from gliznet.training.trainer import train  # noqa: E402

ROWS = [("the striker scored twice in the final", ["sports"], ["cooking", "politics"]),
        ("whisk the eggs and fold in the flour", ["cooking"], ["sports", "politics"]),
        ("the senate voted on the new tax bill", ["politics"], ["cooking", "sports"]),
        ("stocks fell sharply as interest rates rose", ["finance"], ["sports", "cooking"])]


def _data(root):
    from datasets import Dataset, DatasetDict

    cols = {"text": [r[0] for r in ROWS], "labels": [r[1] for r in ROWS], "not_labels": [r[2] for r in ROWS]}
    DatasetDict({"train": Dataset.from_dict(cols), "test": Dataset.from_dict(cols).select(range(2))}).save_to_disk(
        str(root / "triplet"))
    (root / "manifest.json").write_text('{"format": "gliznet-hardset/1"}')  # a finished dataset folder
    return str(root)


def _weights(model_dir):
    model = GliZNet.from_pretrained(model_dir)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.slow
def test_training_from_init_starts_from_that_models_weights(tmp_path):
    data = _data(tmp_path)
    small = dict(batch_size=4, max_length=48, extra_negatives=1, warmup_ratio=0.0, save_steps=100, eval_steps=100,
                 logging_steps=1)
    first = train(data, None, str(tmp_path / "first"), TrainConfig(max_steps=3, lr=1e-3, head_lr=5e-2, **small))
    frozen = dict(max_steps=2, lr=0.0, head_lr=0.0, **small)  # no step moves a weight: the start is what is saved
    again = train(data, None, str(tmp_path / "again"), TrainConfig(init=first["model_dir"], **frozen))
    fresh = train(data, None, str(tmp_path / "fresh"), TrainConfig(**frozen))
    start, continued, new = _weights(first["model_dir"]), _weights(again["model_dir"]), _weights(fresh["model_dir"])
    assert all(torch.equal(start[name], continued[name]) for name in start)
    assert not all(torch.equal(start[name], new[name]) for name in start)


@pytest.mark.slow
def test_init_that_is_not_a_model_is_one_clear_line(tmp_path):
    done = run_cli("train", "--data", _data(tmp_path), "--out", str(tmp_path / "m"), "--init", str(tmp_path))
    assert_one_clear_error(done, "--init")


def _train_config_for(tmp_path, monkeypatch, manifest: dict, *args):
    """The TrainConfig ``gliznet train --data DIR ARGS`` hands to the library for a folder with ``manifest``."""
    import json

    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    config, result = cli_train_config(tmp_path, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    return config


def test_an_aimed_dataset_trains_the_aimed_recipe_unless_told_otherwise(tmp_path, monkeypatch):
    from gliznet.training.config import AIMED_MIN_STEPS, aimed_steps

    aimed = {"format": "gliznet-hardset/1", "aimed": {"task": "t", "labels": 2}}
    _data(tmp_path)  # 4 train texts: 4 passes are one step, so the floor
    assert _train_config_for(tmp_path, monkeypatch, aimed).max_steps == AIMED_MIN_STEPS != TrainConfig().max_steps
    assert aimed_steps(410, 16) == 103 and aimed_steps(4, 16) == AIMED_MIN_STEPS  # 4 passes over 410 texts
    assert _train_config_for(tmp_path, monkeypatch, aimed, "--max-steps", "7").max_steps == 7
    told = _train_config_for(tmp_path, monkeypatch, aimed, "--epochs", "2")
    assert (told.max_steps, told.epochs) == (-1, 2.0)
    plain = {"format": "gliznet-hardset/1"}
    assert _train_config_for(tmp_path, monkeypatch, plain).max_steps == TrainConfig().max_steps


def test_an_aimed_dataset_trains_from_the_aimed_encoder_unless_a_backbone_is_given(tmp_path, monkeypatch):
    import json

    from gliznet.training.config import AIMED_BACKBONE

    _data(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1", "aimed": {"labels": 2}}))
    _, result = cli_train_config(tmp_path, monkeypatch)
    assert result.backbone == AIMED_BACKBONE == "mpnet" and "from the mpnet encoder" in result.output
    _, result = cli_train_config(tmp_path, monkeypatch, "--backbone", "minilm")
    assert result.backbone == "minilm" and "mpnet" not in result.output
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1"}))
    assert cli_train_config(tmp_path, monkeypatch)[1].backbone is None  # other data: the packaged MiniLM


def test_the_recorded_calibration_follows_the_data_unless_the_config_sets_one(tmp_path):
    import json

    from gliznet.modeling.config import GliZNetConfig
    from gliznet.training.config import AIMED_CALIBRATION
    from gliznet.training.trainer import recorded_calibration

    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1", "aimed": {"labels": 2}}))
    assert recorded_calibration(str(tmp_path), TrainConfig()) == AIMED_CALIBRATION == "batch"
    told = TrainConfig(model=GliZNetConfig(calibration="none"))
    assert recorded_calibration(str(tmp_path), told) == "none"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1"}))
    assert recorded_calibration(str(tmp_path), TrainConfig()) is None
    with pytest.raises(ValueError, match="calibration='mean'"):
        GliZNetConfig(calibration="mean")


@pytest.mark.slow
def test_a_model_trained_on_aimed_data_is_evaluated_calibrated_unless_told(tmp_path):
    import json

    data = _data(tmp_path / "data")
    manifest = tmp_path / "data" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "aimed": {"labels": 4}}))
    small = dict(batch_size=4, max_length=48, extra_negatives=1, save_steps=100, eval_steps=100, logging_steps=1)
    model_dir = train(data, None, str(tmp_path / "m"), TrainConfig(max_steps=2, **small))["model_dir"]
    assert GliZNet.from_pretrained(model_dir).config.calibration == "batch"
    assert "batch`-calibrated" in (tmp_path / "m" / "model" / "README.md").read_text()
    rows = tmp_path / "eval.jsonl"
    rows.write_text("".join(json.dumps({"text": t, "labels": y}) + "\n" for t, y, _ in ROWS))
    reports, said = {}, {}
    for name, extra in (("default", ()), ("raw", ("--calibration", "none"))):
        done = run_cli("evaluate", "--model", str(tmp_path / "m"), "--data", str(rows), "--out",
                       str(tmp_path / name), *extra)
        assert done.returncode == 0, done.stderr[-2000:]
        reports[name], said[name] = json.loads((tmp_path / name / "report.json").read_text()), done.stderr
    assert reports["default"]["calibration"] == "batch" and reports["raw"]["calibration"] == "none"
    assert "the model's recorded recipe" in said["default"] and "recorded recipe" not in said["raw"]
