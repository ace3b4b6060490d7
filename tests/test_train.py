"""Training on a tiny dataset folder with the real MiniLM on CPU."""

import json
import os
from dataclasses import asdict

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import cli_train_config

from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.losses import LossConfig  # noqa: E402
from gliznet.modeling.model import GliZNet
from gliznet._io import load_triplets
from gliznet.training.batches import LabelCollator, pretokenize
from gliznet.training.config import TrainConfig
from gliznet.training.trainer import _adamw, freeze_bottom, train

ROWS = [
    ("the striker scored twice in the final", ["sports"], ["cooking", "politics"]),
    ("the goalkeeper saved a penalty in extra time", ["sports"], ["finance", "weather"]),
    ("whisk the eggs and fold in the flour", ["cooking"], ["sports", "politics"]),
    ("roast the chicken for an hour at high heat", ["cooking"], ["weather", "finance"]),
    ("the senate voted on the new tax bill", ["politics", "finance"], ["cooking", "sports"]),
    ("the minister resigned after the scandal", ["politics"], ["weather", "cooking"]),
    ("stocks fell sharply as interest rates rose", ["finance"], ["sports", "cooking"]),
    ("the bank raised its profit forecast", ["finance"], ["politics", "weather"]),
    ("snow and freezing rain expected overnight", ["weather"], ["finance", "sports"]),
    ("a heatwave will bring record temperatures", ["weather"], ["cooking", "politics"]),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from datasets import Dataset, DatasetDict

    root = tmp_path_factory.mktemp("dataset")
    cols = {"text": [r[0] for r in ROWS], "labels": [r[1] for r in ROWS], "not_labels": [r[2] for r in ROWS]}
    DatasetDict({"train": Dataset.from_dict(cols), "test": Dataset.from_dict(cols).select(range(4))}).save_to_disk(
        str(root / "triplet"))
    return root


def _mean_loss(model, split, config):
    collate = LabelCollator(model.tokenizer, config, train=False)
    batch = collate([split[i] for i in range(len(split))])
    model.eval()
    with torch.no_grad():
        return model(**batch).loss.item()


@pytest.mark.slow
def test_a_few_training_steps_lower_the_loss(data_dir, tmp_path):
    config = TrainConfig(max_steps=12, batch_size=5, lr=1e-4, head_lr=5e-2, eval_steps=6, save_steps=100,
                         logging_steps=4, max_length=64, extra_negatives=2, warmup_ratio=0.0)
    split = pretokenize(load_triplets(str(data_dir))["train"],
                        GliZNet.from_backbone(None).tokenizer, config.max_length)
    before = _mean_loss(GliZNet.from_backbone(None, GliZNetConfig(max_length=64)), split, config)
    summary = train(str(data_dir), None, str(tmp_path / "run"), config)
    assert summary["steps"] == 12 and summary["tokens_per_s"] > 0
    # the step clock: one entry per optimizer step, tokens add up, evaluation/saves are outside train_seconds
    assert len(summary["step_times"]) == 12
    assert sum(tokens for _, tokens in summary["step_times"]) == sum(s[2] for s in summary["batch_shapes"])
    assert sum(sec for sec, _ in summary["step_times"]) <= summary["train_seconds"] + 1e-6
    assert summary["train_seconds"] < summary["wall_seconds"]
    trained = GliZNet.from_pretrained(summary["model_dir"])
    assert trained.config.max_length == 512  # trained on 64-token batches, predicts with the full context
    after = _mean_loss(trained, split, config)
    assert after < before * 0.9, (before, after)
    saved = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert saved["model_dir"] == summary["model_dir"] and saved["eval_loss"] is not None


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(data_dir, tmp_path):
    first = TrainConfig(max_steps=2, batch_size=5, save_steps=2, eval_steps=100, max_length=64)
    train(str(data_dir), None, str(tmp_path / "run"), first)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir()
    second = TrainConfig(max_steps=4, batch_size=5, save_steps=2, eval_steps=100, max_length=64)
    summary = train(str(data_dir), None, str(tmp_path / "run"), second, resume=True)
    assert summary["resumed_from"].endswith("checkpoint-2")
    assert summary["steps"] == 4


def test_collator_caps_labels_keeps_a_positive_and_cuts_targets(data_dir):
    model = GliZNet.from_backbone(None, GliZNetConfig(max_length=64))
    config = TrainConfig(max_labels_per_sample=2, extra_negatives=3, max_length=64)
    split = pretokenize(load_triplets(str(data_dir))["train"], model.tokenizer, 64)
    collate = LabelCollator(model.tokenizer, config, train=True)
    for _ in range(5):
        batch = collate([split[i] for i in range(len(split))])
        n_labels = batch["label_mask"].max(1).values
        assert (n_labels <= 2).all()
        targets = batch["labels"]
        assert ((targets == 1).sum(1) >= 1).all()
        assert ((targets >= 0).sum(1) == n_labels).all()


def test_a_folder_without_triplet_is_rejected_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"not a gliznet dataset folder \(no triplet/\): run `gliznet generate`"):
        train(str(tmp_path), None, str(tmp_path / "out"))


def test_the_optimizer_is_fused_adamw_and_keeps_per_group_learning_rates():
    weight, head = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(1))
    optimizer = _adamw([{"params": [weight], "weight_decay": 0.0}, {"params": [head], "lr": 1e-2, "weight_decay": 0.0}], lr=1e-4)
    assert optimizer.defaults["fused"] is True
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-2]
    (weight.sum() + head.sum()).backward()
    optimizer.step()
    assert torch.allclose(weight, torch.full((3,), 1 - 1e-4)) and torch.allclose(head, torch.tensor([1 - 1e-2]))


@pytest.mark.slow
def test_wise_alpha_saves_the_interpolated_weights(data_dir, tmp_path):
    texts, labels = ["whisk the eggs and fold in the flour"], ["cooking", "sports"]
    config = TrainConfig(max_steps=2, batch_size=5, lr=1e-3, save_steps=100, eval_steps=100, max_length=64,
                         wise_alpha=0.0)
    summary = train(str(data_dir), None, str(tmp_path / "run"), config)
    saved = GliZNet.from_pretrained(summary["model_dir"])
    fresh = GliZNet.from_backbone(None, GliZNetConfig(max_length=saved.config.max_length))
    assert saved.config.wise_alpha == 0.0
    torch.testing.assert_close(torch.tensor(saved.score(texts, labels)), torch.tensor(fresh.score(texts, labels)))
    with pytest.raises(ValueError, match=r"wise_alpha=2.0 is outside \[0, 1\]"):
        train(str(data_dir), None, str(tmp_path / "bad"), TrainConfig(wise_alpha=2.0))


@pytest.mark.slow
def test_frozen_layers_keep_the_bottom_of_the_backbone_fixed(data_dir, tmp_path):
    model = GliZNet.from_backbone(None, GliZNetConfig(max_length=64))
    freeze_bottom(model, 2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("backbone.embeddings.", "backbone.encoder.layer.0.", "backbone.encoder.layer.1."))
                   for n in trainable)
    assert any(n.startswith("backbone.encoder.layer.2.") for n in trainable) and "score_head.logit_scale" in trainable
    with pytest.raises(ValueError, match="frozen_layers=7 but the backbone has 6 layers"):
        freeze_bottom(GliZNet.from_backbone(None), 7)

    before = GliZNet.from_backbone(None).backbone.state_dict()
    config = TrainConfig(max_steps=2, batch_size=5, lr=1e-3, save_steps=100, eval_steps=100, max_length=64,
                         frozen_layers=-1, model=GliZNetConfig(similarity="bilinear"))
    saved = GliZNet.from_pretrained(train(str(data_dir), None, str(tmp_path / "run"), config)["model_dir"])
    after = saved.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(saved.bilinear.detach(), torch.eye(saved.bilinear.shape[0]))  # the head did train


@pytest.mark.slow
def test_prior_anchor_holds_the_vectors_near_the_initial_backbone(data_dir, tmp_path):
    """Same steps, same (high) learning rate: with the anchor the text vectors stay closer to the baseline's."""
    from gliznet.modeling.backbone import Embedder

    texts = [r[0] for r in ROWS]
    prior = torch.tensor(Embedder(None).encode(texts))

    def drift(anchor_weight: float) -> float:
        config = TrainConfig(max_steps=6, batch_size=5, lr=3e-4, save_steps=100, eval_steps=100, max_length=64,
                             warmup_ratio=0.0, loss=LossConfig(anchor_weight=anchor_weight))
        model = GliZNet.from_pretrained(train(str(data_dir), None, str(tmp_path / f"a{anchor_weight}"), config)["model_dir"])
        batch = model.tokenizer([t for t in texts], [["x"]] * len(texts))
        with torch.no_grad():
            text, _, _ = model.encode(batch["input_ids"], batch["attention_mask"], batch["label_mask"])
        return float((1 - torch.nn.functional.cosine_similarity(text, prior)).mean())

    free, anchored = drift(0.0), drift(5.0)
    assert anchored < free * 0.7, (free, anchored)


def test_the_defaults_are_the_measured_recipe():
    """README figures (bench/accuracy.py): batch 16, seed 42, lr 1e-4 with anchor 5, mean text vector, isolated."""
    config = TrainConfig()
    assert (config.batch_size, config.seed, config.lr, config.loss.anchor_weight) == (16, 42, 1e-4, 5.0)
    assert (config.model.text_pooling, config.model.label_attention, config.model.similarity) == ("mean", "isolated", "cosine")


def test_train_config_reads_flat_training_keys_and_nested_model_and_loss():
    flat = TrainConfig(**{"epochs": 1.0, "batch_size": 16, "max_steps": 2, "max_length": 96, "eval_steps": 10**6,
                          "save_steps": 10**6, "max_eval_samples": 8})
    assert flat.max_length == 96 and flat.model == GliZNetConfig() and flat.loss == LossConfig()
    nested = TrainConfig.from_dict({"lr": 3e-5, "model": {"text_pooling": "cls"}, "loss": {"anchor_weight": 0.0}})
    assert nested.model.text_pooling == "cls" and nested.loss.anchor_weight == 0.0 and nested.lr == 3e-5
    assert TrainConfig.from_dict(asdict(nested)) == nested  # what train_summary.json holds reads back
    with pytest.raises(ValueError, match=r"'anchor_weight' is a LossConfig field: pass it as \{'loss': \{'anchor_weight'"):
        TrainConfig.from_dict({"anchor_weight": 5.0})
    with pytest.raises(ValueError, match=r"'text_pooling' is a GliZNetConfig field: pass it as \{'model'"):
        TrainConfig.from_dict({"text_pooling": "cls"})
    with pytest.raises(ValueError, match="'epoch' is unknown"):
        TrainConfig.from_dict({"epoch": 1})
    with pytest.raises(ValueError, match="anchor_weight > 0 needs projection_dim=None"):
        TrainConfig(model=GliZNetConfig(projection_dim=8))


def test_cli_train_options_default_to_the_library_config():
    import click
    import typer

    from gliznet.cli import TRAIN_FIELDS, TrainDefault, app

    command = typer.main.get_command(app).commands["train"]
    defaults = {p.name: p for p in command.params if isinstance(p.default, TrainDefault)}
    assert {"batch_size", "seed", "lr", "epochs", "anchor_weight", "text_pooling", "max_text_tokens"} <= set(defaults)
    library = TrainConfig()
    with click.Context(command) as ctx:
        for name, param in defaults.items():
            part, _, leaf = TRAIN_FIELDS.get(name, name).rpartition(".")  # e.g. model.label_layout
            owner = getattr(library, part) if part else library
            assert param.get_default(ctx) == getattr(owner, leaf), name


@pytest.mark.parametrize("args,steps,epochs,frozen,cap", [
    ([], 450, 1.0, 0, 256),                                            # no flags: the measured recipe
    (["--epochs", "2"], -1, 2.0, 0, 256),                              # --epochs alone trains passes
    (["--epochs", "2", "--max-steps", "7"], 7, 2.0, 0, 256),           # both given: the steps win
    (["--max-steps", "NONE", "--frozen-layers", "all", "--max-text-tokens", "none"], -1, 1.0, -1, None),
    (["--frozen-layers", "None", "--max-text-tokens", "64"], 450, 1.0, 0, 64),
])
def test_cli_train_spells_off_as_none_and_epochs_alone_trains_passes(tmp_path, monkeypatch, args, steps, epochs,
                                                                     frozen, cap):
    config, result = cli_train_config(tmp_path, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    assert (config.max_steps, config.epochs, config.frozen_layers, config.model.max_text_tokens) == (steps, epochs,
                                                                                                    frozen, cap)


def _cli_train_config(tmp_path, monkeypatch, *args):
    """The TrainConfig ``gliznet train ARGS`` hands to the library (training itself replaced), or the result."""
    return cli_train_config(tmp_path, monkeypatch, *args)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_cli_train_reads_a_config_file_and_the_options_given_override_it(tmp_path, monkeypatch, suffix):
    import yaml

    settings = {"eval_steps": 7, "lr": 3e-5, "max_steps": 9, "head_lr": 2e-3,
                "model": {"text_pooling": "cls", "label_template": None}, "loss": {"anchor_weight": 2.0}}
    path = tmp_path / f"recipe{suffix}"
    path.write_text(json.dumps(settings) if suffix == ".json" else yaml.safe_dump(settings))
    config, result = _cli_train_config(tmp_path, monkeypatch, "--config", str(path), "--lr", "1e-3",
                                       "--anchor-weight", "0")
    assert result.exit_code == 0, result.output
    assert (config.eval_steps, config.max_steps, config.head_lr) == (7, 9, 2e-3)  # from the file
    assert (config.model.text_pooling, config.model.label_template) == ("cls", None)
    assert (config.lr, config.loss.anchor_weight) == (1e-3, 0.0)  # given on the command line: they win
    assert config.batch_size == TrainConfig().batch_size  # in neither: the default
    assert TrainConfig.from_file(path) == TrainConfig.from_dict(settings)
    config, result = _cli_train_config(tmp_path, monkeypatch, "--config", str(path), "--epochs", "2")
    assert (config.epochs, config.max_steps) == (2.0, -1)  # --epochs alone still trains passes


def test_cli_train_without_a_config_file_builds_what_the_options_say(tmp_path, monkeypatch):
    config, result = _cli_train_config(tmp_path, monkeypatch, "--lr", "2e-5", "--text-pooling", "cls")
    assert result.exit_code == 0, result.output
    assert config == TrainConfig(lr=2e-5, model=GliZNetConfig(text_pooling="cls"))


@pytest.mark.parametrize("content,says", [('{"learning_rate": 1}', "'learning_rate' is unknown"),
                                          ('{"anchor_weight": 1}', "pass it as {'loss'"),
                                          ("[1, 2]", "must be a mapping"),
                                          ("{", "does not parse")])
def test_cli_train_names_a_bad_config_file_in_one_line(tmp_path, monkeypatch, content, says):
    path = tmp_path / "recipe.json"
    path.write_text(content)
    config, result = _cli_train_config(tmp_path, monkeypatch, "--config", str(path))
    assert config is None and result.exit_code == 2
    assert f"--config {path}" in result.output and says in result.output


@pytest.mark.slow
def test_training_with_a_label_template_and_descriptions_saves_a_model_that_renders_the_same(data_dir, tmp_path):
    """With train_label_text="model" the template and descriptions reach the training batches (no refusal from
    the collator) and the saved
    model scores with them, without options, exactly as the in-memory one does."""
    descriptions = tmp_path / "desc.jsonl"
    descriptions.write_text('{"label": "sports", "description": "games, teams and athletes", "source": "hand"}\n')
    model_config = GliZNetConfig(max_length=64, label_template="This text is about {label}.",
                                 label_descriptions=str(descriptions))
    config = TrainConfig(model=model_config, max_steps=2, batch_size=5, eval_steps=100, save_steps=100,
                         max_length=64, extra_negatives=2, warmup_ratio=0.0, train_label_text="model")
    summary = train(str(data_dir), None, str(tmp_path / "run"), config)
    assert summary["steps"] == 2
    saved = GliZNet.from_pretrained(summary["model_dir"])
    assert saved.config.label_template == "This text is about {label}."
    texts, labels = ["the striker scored twice"], ["sports", "cooking"]
    with_options = saved.score(texts, labels)
    saved.config.label_template = None
    saved.config.label_descriptions = None
    assert not torch.allclose(torch.as_tensor(with_options), torch.as_tensor(saved.score(texts, labels)))


@pytest.mark.slow
def test_cli_train_saves_its_label_text_and_predict_and_evaluate_use_it_without_flags(data_dir, tmp_path):
    """`gliznet train --label-template T --label-descriptions shipped` saves that rendering (the descriptions
    copied into the model); `gliznet predict` and `gliznet evaluate` on that model then score the rendered
    strings without any flag, and `none` on the same flags turns it off for one call."""
    import shutil

    from conftest import run_cli

    from gliznet.modeling.label_text import (
        DESCRIPTIONS_NAME,
        SHIPPED_DESCRIPTIONS,
        TEMPLATE_EXAMPLES,
        load_descriptions,
    )

    template = TEMPLATE_EXAMPLES["label"]

    def cli(*args: str) -> str:
        done = run_cli(*args, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    (data / "manifest.json").write_text("{}")  # the mark of a finished dataset folder that `gliznet train` checks
    out = tmp_path / "gz"
    cli("train", "--data", str(data), "--out", str(out), "--max-steps", "1", "--batch-size", "4",
        "--cpu-threads", "1", "--label-template", template, "--label-descriptions", "shipped")
    model_dir = out / "model"
    saved = json.loads((model_dir / "gliznet_config.json").read_text())
    assert saved["label_template"] == template and saved["text_template"] is None
    assert (model_dir / DESCRIPTIONS_NAME).is_file()
    assert load_descriptions(model_dir / DESCRIPTIONS_NAME) == load_descriptions(SHIPPED_DESCRIPTIONS)

    model = GliZNet.from_pretrained(str(model_dir))
    labels = ["Sports", "Business", "kettles"]  # two described labels (ag_news), one bare
    rendered = model.label_text.labels(labels)
    shipped = load_descriptions(SHIPPED_DESCRIPTIONS)
    assert rendered[0] == template.format(label=f"Sports: {shipped['Sports'].rstrip('.')}")
    assert rendered[2] == template.format(label="kettles")
    text = "the striker scored twice in the cup final"
    predicted = json.loads(cli("predict", text, "--model", str(model_dir), "--labels", ",".join(labels)))
    expected = model.predict([text], labels)
    assert predicted[0].keys() == expected[0].keys()
    for label in labels:
        assert abs(predicted[0][label] - expected[0][label]) < 1e-5, (predicted, expected)
    bare = json.loads(cli("predict", text, "--model", str(model_dir), "--labels", ",".join(labels),
                           "--label-template", "none", "--label-descriptions", "none"))
    assert max(abs(bare[0][lab] - predicted[0][lab]) for lab in labels) > 1e-3  # the rendering is in use

    rows = tmp_path / "eval.jsonl"
    rows.write_text("".join(json.dumps({"text": t, "labels": [lab]}) + "\n" for t, lab in [
        (text, "Sports"), ("shares fell after the quarterly results", "Business"),
        ("descale the kettle with vinegar", "kettles")]))
    report = tmp_path / "report"
    cli("evaluate", "--data", str(rows), "--model", str(model_dir), "--out", str(report))
    from gliznet.evaluation.runs import evaluate as run_eval

    from_cli = json.loads((report / "report.json").read_text())["metrics"]
    in_process = run_eval(model, str(rows))["metrics"]
    for key in ("macro_f1", "roc_auc_micro", "p@1"):
        assert from_cli[key] == pytest.approx(in_process[key], abs=1e-6), key
