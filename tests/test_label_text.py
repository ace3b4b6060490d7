"""Label text: templates and descriptions render as documented, off means the old scores exactly, a saved
model keeps its rendering, the baseline and training see the same strings, the shipped descriptions cover
every shared eval label."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import load_bench

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.label_text import (  # noqa: E402
    DESCRIPTIONS_NAME,
    SHIPPED,
    SHIPPED_DESCRIPTIONS,
    TEMPLATE_EXAMPLES,
    LabelText,
    check_template,
    load_descriptions,
    read_description_lines,
    render_label,
    render_text,
)
from gliznet.modeling.model import GliZNet

TEXTS = ["the striker scored twice in the second half", "simmer the tomato sauce, then add basil"]
LABELS = ["sports", "cooking", "politics"]
DESCRIPTIONS = {"sports": "News about games, athletes and matches.", "cooking": "Recipes and preparing food."}


def _write_descriptions(path, descriptions=DESCRIPTIONS):
    path.write_text("".join(json.dumps({"label": k, "description": v, "source": "hand"}) + "\n"
                            for k, v in descriptions.items()))
    return path


# -- rendering ------------------------------------------------------------------------------------------
def test_a_label_without_options_is_shown_as_given():
    assert render_label("sports") == "sports"
    assert render_text("a text") == "a text"
    assert LabelText().labels(LABELS) == LABELS and not LabelText().active


def test_a_described_label_is_shown_with_its_description_then_the_template():
    assert render_label("sports", None, DESCRIPTIONS) == "sports: News about games, athletes and matches."
    assert render_label("politics", None, DESCRIPTIONS) == "politics"  # no description: the bare label
    assert render_label("politics", "This text is about {label}.", DESCRIPTIONS) == "This text is about politics."
    # the description's period and the template's are not doubled
    assert (render_label("sports", "This text is about {label}.", DESCRIPTIONS)
            == "This text is about sports: News about games, athletes and matches.")


def test_the_default_config_is_bare_and_the_template_with_shipped_descriptions_is_an_option():
    """GliZNetConfig's default renders nothing (bare labels and texts: the zero-shot-by-sets choice); the
    hypothesis template around "label: description" from the shipped file is one option away, labels it does not
    describe stay bare inside the template, and texts are left as given."""
    config = GliZNetConfig()
    assert (config.label_template, config.text_template, config.label_descriptions) == (None, None, None)
    assert not LabelText.from_config(config).active and LabelText.from_config(config).labels(LABELS) == LABELS
    shipped = load_descriptions(SHIPPED_DESCRIPTIONS)
    lt = LabelText.from_config(GliZNetConfig(label_template=TEMPLATE_EXAMPLES["label"], label_descriptions=SHIPPED))
    assert lt.labels(["Sports", "a label nobody described"]) == [
        f"This text is about Sports: {shipped['Sports'].rstrip('.')}.", "This text is about a label nobody described."]
    assert lt.texts(TEXTS) == TEXTS


def test_descriptions_are_found_by_a_loose_key_too(tmp_path):
    loaded = load_descriptions(_write_descriptions(tmp_path / "d.jsonl", {"sports": "Games.", "money-fx": "Currencies."}))
    assert render_label("Sports", None, loaded) == "Sports: Games."
    assert render_label("money fx", None, loaded) == "money fx: Currencies."
    assert render_label("money-fx", None, loaded) == "money-fx: Currencies."


def test_text_template_and_literal_braces():
    assert render_text("great film", "Text: {text}") == "Text: great film"
    assert render_text("x", "{{review}} {text}") == "{review} x"
    assert render_label("a {b}", "about {label}") == "about a {b}"  # braces in a label are data, not fields


@pytest.mark.parametrize("template, field, needle", [
    ("This text is about it.", "label_template", "must contain {label}"),
    ("About {label} and {topic}.", "label_template", "it also has {topic}"),
    ("Review: {label}", "text_template", "must contain {text}"),
    ("About {label", "label_template", "is not a valid template"),
])
def test_a_bad_template_is_one_clear_error_naming_the_option(template, field, needle):
    with pytest.raises(ValueError, match="--" + field.replace("_", "-")) as err:
        check_template(template, field)
    assert needle in str(err.value)
    with pytest.raises(ValueError, match=field):
        GliZNetConfig(**{field: template})


def test_later_lines_override_earlier_ones_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"label": "a", "description": "First."}\n{"label": "a", "description": "Second."}\n'
                    '{"label": "b", "descr')  # a torn last line of an interrupted run is skipped
    assert load_descriptions(path) == {"a": "Second."}
    path.write_text('{"label": "a"}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:1 .*\"description\""):
        load_descriptions(path)
    with pytest.raises(ValueError, match="--label-descriptions"):
        LabelText.from_options(label_descriptions=str(tmp_path / "missing.jsonl"))


def test_apply_renders_shared_and_per_text_label_lists_and_names_come_back():
    lt = LabelText("about {label}", "Text: {text}", DESCRIPTIONS)
    texts, labels = lt.apply(TEXTS, LABELS)
    assert texts[0] == "Text: " + TEXTS[0] and labels[2] == "about politics"
    _, per_text = lt.apply(TEXTS, [["sports"], ["cooking", "politics"]])
    assert per_text == [[lt.label("sports")], [lt.label("cooking"), "about politics"]]
    results = [{lt.label("sports"): 0.9, "about politics": 0.1}]
    assert lt.names_back(results, ["sports", "politics"]) == [{"sports": 0.9, "politics": 0.1}]
    assert LabelText().apply(TEXTS, LABELS) == (TEXTS, LABELS)


# -- the shipped descriptions -------------------------------------------------------------------------------
def test_shipped_descriptions_cover_every_label_of_the_shared_eval_sets(eval_dir):
    lines = read_description_lines(SHIPPED)
    rows = [row for path in eval_dir.glob("*.jsonl") for row in path.read_text(encoding="utf-8").split("\n")]
    labels = {lab for row in rows if row.strip() for lab in json.loads(row)["labels"]}
    described = {line["label"] for line in lines}
    assert labels <= described, f"no description for {sorted(labels - described)}"
    assert len(described) == len(lines), "one line per label"
    for line in lines:
        assert line["source"] == "hand"
        text = line["description"]
        assert 10 < len(text) <= 200 and text.endswith(".") and text.casefold() != line["label"].casefold()
    assert SHIPPED_DESCRIPTIONS.is_file()
    assert render_label("bop", None, load_descriptions(SHIPPED)).startswith("bop: Balance of payments")


# -- GliZNet and the baseline ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # the rendering off, so the tests below switch each option on themselves
    return GliZNet.from_backbone(None, GliZNetConfig(label_template=None, label_descriptions=None)).eval()


def test_templates_off_give_exactly_the_old_scores(model):
    from gliznet.modeling.predict import score_labels

    old = score_labels(model, TEXTS, LABELS)  # the layout before label text existed
    np.testing.assert_array_equal(model.score(TEXTS, LABELS), old)
    assert list(model.predict(TEXTS, LABELS)[0]) == sorted(LABELS, key=lambda lab: -old[0][LABELS.index(lab)])


def test_templates_on_score_the_rendered_strings(model, tmp_path):
    from gliznet.modeling.predict import score_labels

    lt = LabelText("This text is about {label}.", "Text: {text}", DESCRIPTIONS)
    expected = score_labels(model, lt.texts(TEXTS), lt.labels(LABELS))
    model.config.label_template, model.config.text_template = lt.label_template, lt.text_template
    model.config.label_descriptions = str(_write_descriptions(tmp_path / "d.jsonl"))
    try:
        np.testing.assert_allclose(model.score(TEXTS, LABELS), expected, atol=1e-6)
        assert set(model.predict(TEXTS, LABELS)[0]) == set(LABELS)  # the caller's names, not the rendered ones
        assert not np.allclose(expected, score_labels(model, TEXTS, LABELS), atol=1e-3)
    finally:
        model.config.label_template = model.config.text_template = model.config.label_descriptions = None
    np.testing.assert_array_equal(model.score(TEXTS, LABELS), score_labels(model, TEXTS, LABELS))


def test_a_saved_model_keeps_its_templates_and_descriptions_when_moved(tmp_path):
    torch.manual_seed(0)
    config = GliZNetConfig(label_template="This text is about {label}.", text_template="Text: {text}",
                           label_descriptions=str(_write_descriptions(tmp_path / "d.jsonl")))
    model = GliZNet.from_backbone(None, config).eval()
    before = model.score(TEXTS, LABELS)
    model.save_pretrained(tmp_path / "saved")
    shutil.move(tmp_path / "saved", tmp_path / "moved")
    (tmp_path / "d.jsonl").unlink()  # the folder carries its own copy
    loaded = GliZNet.from_pretrained(str(tmp_path / "moved"))
    assert loaded.config.label_template == config.label_template
    assert loaded.config.text_template == config.text_template
    assert loaded.config.label_descriptions == DESCRIPTIONS_NAME
    assert loaded.label_text.descriptions == model.label_text.descriptions
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), before, atol=1e-5)


def test_the_embedding_baseline_encodes_the_same_rendered_strings(tmp_path):
    from gliznet.evaluation.baselines import make_baseline

    path = str(_write_descriptions(tmp_path / "d.jsonl"))
    plain = make_baseline("embedding")
    rendered = make_baseline("embedding", label_template="This text is about {label}.", text_template="Text: {text}",
                             label_descriptions=path)
    lt = rendered.label_text
    expected = plain.embedder.encode(lt.texts(TEXTS)) @ plain.embedder.encode(lt.labels(LABELS)).T
    np.testing.assert_allclose(rendered.score(TEXTS, LABELS), expected, atol=1e-5)
    np.testing.assert_allclose(plain.score(TEXTS, LABELS),
                               plain.embedder.encode(TEXTS) @ plain.embedder.encode(LABELS).T, atol=1e-6)


def test_training_pretokenizes_the_rendered_strings(model):
    from datasets import Dataset

    from gliznet.training.batches import pretokenize

    rows = Dataset.from_dict({"text": TEXTS, "labels": [["sports"], ["cooking"]],
                              "not_labels": [["politics", "home_office"], ["sports"]]})
    lt = LabelText("about {label}", "Text: {text}", DESCRIPTIONS)
    plain = pretokenize(rows, model.tokenizer, 64)
    shown = pretokenize(rows, model.tokenizer, 64, label_text=lt)
    enc = model.tokenizer.encode_pieces
    assert plain[0]["text_ids"] == enc([TEXTS[0]])[0] and plain[0]["pos_ids"] == enc(["sports"])
    assert shown[0]["text_ids"] == enc(["Text: " + TEXTS[0]])[0]
    assert shown[0]["pos_ids"] == enc([lt.label("sports")])
    assert shown[0]["neg_alt"][1] == enc(["about home office"])[0]  # the _->space variant is rendered too


def test_the_collator_refuses_rows_rendered_otherwise_than_the_training_config(model):
    from datasets import Dataset

    from gliznet.modeling.config import GliZNetConfig
    from gliznet.training.batches import LabelCollator, pretokenize
    from gliznet.training.config import TrainConfig

    rows = Dataset.from_dict({"text": TEXTS, "labels": [["sports"], ["cooking"]], "not_labels": [["politics"], []]})
    plain = pretokenize(rows, model.tokenizer, 64)
    assert "label_text" not in plain.column_names  # options off: the columns of before
    templated = TrainConfig(model=GliZNetConfig(label_template="about {label}", label_descriptions=None), train_label_text="model")
    bare = TrainConfig(model=GliZNetConfig(label_template="about {label}", label_descriptions=None))  # train_label_text="bare", the default
    assert templated.label_text().label("sports") == "about sports" and not bare.label_text().active
    shown = pretokenize(rows, model.tokenizer, 64, label_text=templated.label_text())
    batch = LabelCollator(model.tokenizer, templated, train=False)(list(shown))
    assert batch["input_ids"].shape[0] == 2
    LabelCollator(model.tokenizer, bare, train=False)(list(plain))
    for config, split in ((templated, plain), (bare, shown)):
        with pytest.raises(ValueError, match=r"pass label_text=config\.label_text\(\)"):
            LabelCollator(model.tokenizer, config, train=False)(list(split))
    with pytest.raises(ValueError, match="train_label_text='rendered'.*--train-label-text.*bare or model"):
        TrainConfig(train_label_text="rendered")


def test_the_cli_names_a_bad_template_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from gliznet.cli import app

    result = CliRunner().invoke(app, ["predict", "--model", str(tmp_path), "--labels", "a,b",
                                      "--label-template", "about it", "some text"])
    assert result.exit_code == 2
    assert "--label-template" in result.output and "{label}" in result.output


def test_bench_render_specs_parse_and_bad_ones_name_the_fix():
    """``bench/accuracy.py --render``: the same options as the model config, checked before anything runs."""
    bench = load_bench("accuracy")
    assert bench.parse_render("tpl=label_template:It was {label}.;label_descriptions:none") == (
        "tpl", {"label_template": "It was {label}.", "label_descriptions": None})
    assert bench.parse_render("desc=label_descriptions:shipped") == ("desc", {"label_descriptions": "shipped"})
    with pytest.raises(ValueError, match="must look like NAME=KEY:VALUE"):
        bench.parse_render("label_template:It was {label}.")
    with pytest.raises(ValueError, match="KEY one of label_template, text_template, label_descriptions"):
        bench.parse_render("x=label_tmpl:It was {label}.")
    with pytest.raises(ValueError, match=r"must contain \{label\}"):
        bench.parse_render("x=label_template:It was good.")


def test_bench_epochs_must_be_positive_and_name_the_flag(monkeypatch, capsys):
    """``bench/accuracy.py --epochs 0`` is one clear error before anything trains; a positive value parses."""
    bench = load_bench("accuracy")
    monkeypatch.setattr("sys.argv", ["accuracy.py", "--data", "d", "--out", "o", "--epochs", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args()
    assert "--epochs 0 must be a positive number of passes" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["accuracy.py", "--data", "d", "--out", "o", "--epochs", "2"])
    assert bench.parse_args().epochs == 2.0


def test_bench_render_columns_render_the_baseline_like_gliznet_and_reuse_identical_baseline_columns():
    """A ``--render`` column pair applies its options over the model's own rendering for both scorers (the
    baseline of "no desc" keeps the model's template), and a baseline column whose strings an earlier one
    already scored is copied rather than rerun."""
    import argparse

    from gliznet.evaluation.baselines import EmbeddingBaseline
    from gliznet.training.interpolate import copy_state

    bench = load_bench("accuracy")
    model = GliZNet.from_backbone(None, GliZNetConfig(label_template=TEMPLATE_EXAMPLES["label"],
                                                      label_descriptions=SHIPPED)).eval()  # a full rendering
    state = copy_state(model)
    renders = [bench.parse_render(s) for s in ("no desc=label_descriptions:none",
                                                "bare=label_template:none;label_descriptions:none",
                                                "again=label_descriptions:shipped")]
    args = argparse.Namespace(fusion_seen=None, render=renders)
    variants = dict(bench.scorer_variants(args, model, state, state, [1.0], EmbeddingBaseline()))
    assert list(variants) == ["embedding baseline", "GliZNet a=1", "embedding + GliZNet's rendering",
                              "embedding + no desc", "GliZNet a=1 + no desc", "embedding + bare", "GliZNet a=1 + bare",
                              "embedding + again", "GliZNet a=1 + again"]
    assert variants["embedding + bare"] == "embedding baseline"  # the same strings: copied
    assert variants["embedding + again"] == "embedding + GliZNet's rendering"
    no_desc = variants["embedding + no desc"]()
    assert no_desc.label_text.labels(["Sports"]) == [TEMPLATE_EXAMPLES["label"].format(label="Sports")]
    assert variants["GliZNet a=1 + no desc"]().label_text.labels(["Sports"]) == no_desc.label_text.labels(["Sports"])
    rendered = variants["embedding + GliZNet's rendering"]()
    assert rendered.label_text.labels(["Sports"]) == variants["GliZNet a=1"]().label_text.labels(["Sports"])
    assert rendered.label_text.labels(["Sports"]) != no_desc.label_text.labels(["Sports"])
