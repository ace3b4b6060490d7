"""GliZNet model on the packaged MiniLM: the isolated pass reproduces the embedding baseline, save/load, errors."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling.backbone import Embedder  # noqa: E402
from gliznet.modeling.config import CONFIG_NAME, HEAD_WEIGHTS, GliZNetConfig
from gliznet.modeling.model import GliZNet, ScoreHead

TEXTS = ["the striker scored twice in the second half and the crowd went wild",
         "simmer the tomato sauce for twenty minutes, then add basil",
         "parliament passed the new budget after a long night of debate"]
LABELS = ["sports", "cooking", "politics", "weather forecast", "football"]


@pytest.fixture(scope="module")
def isolated():
    torch.manual_seed(0)  # bare label text: the tests below lay out the strings themselves
    return GliZNet.from_backbone(None, GliZNetConfig(label_attention="isolated", label_template=None,
                                                     label_descriptions=None)).eval()


@pytest.fixture(scope="module")
def embedder():
    return Embedder(device="cpu")


def _encode(model, texts, labels):
    enc = model.tokenizer(texts, [labels] * len(texts))
    with torch.no_grad():
        return model(enc["input_ids"], enc["attention_mask"], enc["label_mask"])


def test_isolated_text_vector_is_the_separately_encoded_embedding(isolated, embedder):
    out = _encode(isolated, TEXTS, LABELS)
    text = torch.nn.functional.normalize(out.text_embeds, dim=-1).numpy()
    reference = embedder.encode(TEXTS)
    np.testing.assert_allclose((text * reference).sum(1), 1.0, atol=1e-4)


def test_isolated_untrained_scores_match_embedding_cosine(isolated, embedder):
    out = _encode(isolated, TEXTS, LABELS)
    cosine = embedder.encode(TEXTS) @ embedder.encode(LABELS).T
    sim = out.similarity.numpy()
    # labels are pooled from "label [LAB]" instead of "[CLS] label [SEP]": close, not identical
    assert np.abs(sim - cosine).max() < 0.1
    assert (sim.argmax(1) == cosine.argmax(1)).all()
    assert np.corrcoef(sim.ravel(), cosine.ravel())[0, 1] > 0.97


def test_isolated_label_vectors_ignore_the_text_but_full_attention_reads_it(isolated):
    a = _encode(isolated, [TEXTS[0]], LABELS).label_embeds
    b = _encode(isolated, [TEXTS[1]], LABELS).label_embeds
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    full = GliZNet.from_backbone(None, GliZNetConfig(label_attention="full")).eval()
    a = _encode(full, [TEXTS[0]], LABELS).label_embeds
    b = _encode(full, [TEXTS[1]], LABELS).label_embeds
    assert (a - b).abs().max() > 1e-2


def test_forward_pads_labels_and_reports_which_exist(isolated):
    enc = isolated.tokenizer(TEXTS[:2], [LABELS, LABELS[:2]])
    targets = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, -100, -100, -100]])
    out = isolated(enc["input_ids"], enc["attention_mask"], enc["label_mask"], labels=targets)
    assert out.logits.shape == (2, 5)
    assert out.label_valid.tolist() == [[True] * 5, [True, True, False, False, False]]
    assert torch.isfinite(out.loss) and out.loss.item() > 0


@pytest.mark.parametrize("options", [dict(text_pooling="cls", label_pooling="lab", similarity="dot"),
                                     dict(similarity="bilinear", projection_dim=32, label_attention="full")])
def test_other_pooling_and_similarity_options_run(options):
    model = GliZNet.from_backbone(None, GliZNetConfig(**options)).eval()
    scores = model.score(TEXTS[:2], LABELS)
    assert scores.shape == (2, 5) and np.isfinite(scores).all()


def test_save_then_load_gives_identical_scores(isolated, tmp_path):
    with torch.no_grad():
        isolated.score_head.logit_scale.fill_(1.234)
        isolated.score_head.bias.fill_(-1.5)
    before = isolated.score(TEXTS, LABELS)
    isolated.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "README.md").exists()
    loaded = GliZNet.from_pretrained(str(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), before, atol=1e-6)
    assert loaded.config == isolated.config
    assert loaded.tokenizer.lab_token_id == isolated.tokenizer.lab_token_id


def test_save_renames_a_whole_folder_with_a_manifest_into_place(isolated, tmp_path):
    """save_pretrained writes a staging folder next to the target and renames it onto it: the target holds one
    whole model (a stray file of the earlier one is gone), with a manifest of the version and every file; a
    save that fails leaves the earlier model as it was, and no staging folder."""
    from gliznet import __version__
    from gliznet.errors import UserError
    from gliznet.modeling.model import MANIFEST_NAME

    folder = tmp_path / "m"
    isolated.save_pretrained(folder)
    (folder / "stray.txt").write_text("from the earlier model")
    isolated.save_pretrained(folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["gliznet_version"] == __version__
    assert CONFIG_NAME in manifest["files"] and HEAD_WEIGHTS in manifest["files"] and "stray.txt" not in manifest["files"]
    assert all((folder / name).stat().st_size == size for name, size in manifest["files"].items())
    assert not (folder / "stray.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    before = (folder / HEAD_WEIGHTS).read_bytes()
    with pytest.raises(OSError), pytest.MonkeyPatch.context() as patch:
        patch.setattr("safetensors.torch.save_file", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        isolated.save_pretrained(folder)
    assert (folder / HEAD_WEIGHTS).read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "img.txt").write_text("not a model")
    with pytest.raises(UserError, match="holds no GliZNet model"):
        isolated.save_pretrained(tmp_path / "photos")  # saving replaces the folder whole: never someone's folder
    assert (tmp_path / "photos" / "img.txt").read_text() == "not a model"


def test_a_folder_saved_before_manifests_loads_and_scores_the_same(isolated, tmp_path):
    from gliznet.modeling.model import MANIFEST_NAME

    before = isolated.score(TEXTS, LABELS)
    isolated.save_pretrained(tmp_path / "old")
    (tmp_path / "old" / MANIFEST_NAME).unlink()  # the layout before manifests
    np.testing.assert_allclose(GliZNet.from_pretrained(tmp_path / "old").score(TEXTS, LABELS), before, atol=1e-6)


def test_from_pretrained_takes_the_train_out_folder_or_its_model_subfolder(isolated, tmp_path):
    """`gliznet train --out RUN` saves RUN/model: RUN and RUN/model both load it; anything else is named."""
    from gliznet.errors import UserError
    from gliznet.modeling.model import model_folder

    isolated.save_pretrained(tmp_path / "run" / "model")
    assert model_folder(tmp_path / "run") == model_folder(tmp_path / "run" / "model") == tmp_path / "run" / "model"
    before = isolated.score(TEXTS, LABELS)
    np.testing.assert_allclose(GliZNet.from_pretrained(str(tmp_path / "run")).score(TEXTS, LABELS), before, atol=1e-6)
    with pytest.raises(UserError, match="has no gliznet_config.json .*--out folder of `gliznet train`"):
        model_folder(tmp_path)


def test_score_head_turns_similarity_into_ranking_and_probability_logits():
    head = ScoreHead(GliZNetConfig(init_scale=2.0, init_temperature=10.0, init_bias=-2.5))
    sim = torch.tensor([[0.5, 0.25, -1.0]])
    logits, score_logits = head(sim)
    torch.testing.assert_close(logits, sim * 2.0)
    torch.testing.assert_close(score_logits, sim * 10.0 - 2.5)
    assert head.probability(torch.tensor(0.25)).item() == pytest.approx(0.5, abs=1e-6)
    with torch.no_grad():
        head.log_temperature.fill_(10.0)  # exp(10) > max_scale: clamped at 100
    assert head(torch.tensor([1.0]))[1].item() == pytest.approx(100.0 - 2.5)


def test_scores_are_the_score_heads_probabilities(isolated):
    out = _encode(isolated, TEXTS, LABELS)
    with torch.no_grad():
        expected = isolated.score_head.probability(out.similarity).numpy()
    np.testing.assert_allclose(isolated.score(TEXTS, LABELS), expected, atol=1e-6)
    np.testing.assert_allclose(torch.sigmoid(out.score_logits).numpy(), expected, atol=1e-6)


def test_a_folder_saved_with_the_old_flat_config_and_head_names_still_loads(isolated, tmp_path):
    """Before the score head: loss weights in gliznet_config.json and the BCE scale under loss_fn.bce.*."""
    from safetensors.torch import load_file, save_file

    with torch.no_grad():
        isolated.score_head.log_temperature.fill_(2.0)
        isolated.score_head.bias.fill_(-1.0)
    before = isolated.score(TEXTS, LABELS)
    folder = tmp_path / "old"
    isolated.save_pretrained(folder)
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["bce_init_temperature"] = config.pop("init_temperature")
    config["bce_init_bias"] = config.pop("init_bias")
    config.update(softmax_weight=1.0, bce_weight=1.0, repulsion_weight=0.1, margin_weight=0.0, anchor_weight=0.0,
                  repulsion_threshold=0.3, margin=0.1)
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    old_names = {"score_head.logit_scale": "logit_scale", "score_head.log_temperature": "loss_fn.bce.log_temperature",
                 "score_head.bias": "loss_fn.bce.bias"}
    head = load_file(str(folder / HEAD_WEIGHTS))
    save_file({old_names.get(k, k): v for k, v in head.items()}, str(folder / HEAD_WEIGHTS))
    from gliznet.modeling.model import MANIFEST_NAME

    (folder / MANIFEST_NAME).unlink()  # that layout predates the manifest (which now checks every file's size and hash)

    loaded = GliZNet.from_pretrained(str(folder))
    assert loaded.config == isolated.config
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), before, atol=1e-6)


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"model config keys \['pooling'\] are unknown"):
        GliZNetConfig.from_dict({"pooling": "mean"})


def test_unknown_backbone_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load"):
        GliZNet.from_backbone(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="cannot find GliZNet model|has no gliznet_config.json"):
        GliZNet.from_pretrained(str(tmp_path / "no-such-model"))


def test_unsupported_config_option_is_a_clear_error():
    with pytest.raises(ValueError, match="label_attention='sideways' is not supported"):
        GliZNetConfig(label_attention="sideways")


def _pooled_pair(**options):
    """The same weights built as text_pooling="mean" and as ``options`` (the new parameters left at their init)."""
    torch.manual_seed(0)
    bare = dict(label_template=None, label_descriptions=None)
    mean = GliZNet.from_backbone(None, GliZNetConfig(**bare)).eval()
    torch.manual_seed(0)
    other = GliZNet.from_backbone(None, GliZNetConfig(**bare, **options)).eval()
    other.load_state_dict(mean.state_dict(), strict=False)
    return mean, other


def test_untrained_label_conditioned_pooling_scores_exactly_as_the_mean():
    mean, label = _pooled_pair(text_pooling="label")
    assert torch.count_nonzero(label.pool_query.weight) == 0  # q starts at zero
    a, b = _encode(mean, TEXTS, LABELS), _encode(label, TEXTS, LABELS)
    assert b.text_embeds.shape == (len(TEXTS), len(LABELS), a.text_embeds.shape[-1])  # one text vector per label
    torch.testing.assert_close(b.similarity, a.similarity, atol=1e-6, rtol=0)
    np.testing.assert_allclose(label.score(TEXTS, LABELS), mean.score(TEXTS, LABELS), atol=1e-6)


def test_trained_query_gives_each_label_its_own_text_vector():
    _, label = _pooled_pair(text_pooling="label")
    with torch.no_grad():
        torch.nn.init.normal_(label.pool_query.weight, std=0.5)
    vecs = _encode(label, TEXTS[:1], LABELS).text_embeds[0]  # (L, D)
    assert torch.linalg.vector_norm(vecs[0] - vecs[1]) > 1e-3


def test_labels_that_read_the_text_leave_the_text_vector_unchanged():
    isolated, reading = _pooled_pair(label_attention="labels_read_text")
    a, b = _encode(isolated, TEXTS, LABELS), _encode(reading, TEXTS, LABELS)
    torch.testing.assert_close(b.text_embeds, a.text_embeds, atol=1e-5, rtol=1e-5)  # the text sees only itself
    assert (b.label_embeds - a.label_embeds).abs().max() > 1e-3  # labels now read the text
    c = _encode(reading, TEXTS[1:2], LABELS).label_embeds[0]
    assert (b.label_embeds[0] - c).abs().max() > 1e-3  # ... so a label's vector depends on the text


def test_label_pooling_model_saves_and_loads_with_its_pool(tmp_path):
    _, label = _pooled_pair(text_pooling="label", pool_dim=16)
    with torch.no_grad():
        torch.nn.init.normal_(label.pool_query.weight, std=0.5)
    label.save_pretrained(tmp_path / "m")
    loaded = GliZNet.from_pretrained(str(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), label.score(TEXTS, LABELS), atol=1e-6)


def _small_mpnet(folder, embedder) -> None:
    """A small random MPNet (relative position biases, positions from padding_idx + 1) on MiniLM's tokenizer."""
    from transformers import MPNetConfig, MPNetModel

    torch.manual_seed(0)
    embedder.tokenizer.save_pretrained(folder)
    MPNetModel(MPNetConfig(vocab_size=len(embedder.tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, pad_token_id=1)).save_pretrained(folder)


def test_a_backbone_whose_positions_start_after_the_padding_row_reads_the_text_as_alone(tmp_path, embedder):
    """MPNet (like RoBERTa) numbers positions from padding_idx + 1: the isolated pass must count from there too, or
    the text is read at positions the backbone never saw in front of a sentence.  A small random MPNet on MiniLM's
    tokenizer: the packed text vector is the mean-pooled text encoded alone."""
    _small_mpnet(tmp_path, embedder)
    model = GliZNet.from_backbone(str(tmp_path), GliZNetConfig(label_attention="isolated", label_template=None,
                                                               label_descriptions=None)).eval()
    assert model._first_position == 2
    text = torch.nn.functional.normalize(_encode(model, TEXTS, LABELS).text_embeds, dim=-1).numpy()
    reference = Embedder(str(tmp_path), device="cpu").encode(TEXTS)
    np.testing.assert_allclose((text * reference).sum(1), 1.0, atol=1e-4)


def test_the_wrapped_layout_reads_every_label_exactly_as_alone(tmp_path, embedder):
    """label_layout="wrap" (``[LAB] label [SEP]``): the one pass reproduces the embedding baseline's label vectors
    exactly, on MiniLM and on an MPNet (relative position biases: the closed layout reads its labels far off)."""
    wrap = GliZNetConfig(label_layout="wrap", label_template=None, label_descriptions=None)
    minilm = GliZNet.from_backbone(None, wrap).eval()
    labels = torch.nn.functional.normalize(_encode(minilm, TEXTS, LABELS).label_embeds[0], dim=-1).numpy()
    np.testing.assert_allclose((labels * embedder.encode(LABELS)).sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(_encode(minilm, TEXTS, LABELS).similarity.numpy(),
                               embedder.encode(TEXTS) @ embedder.encode(LABELS).T, atol=1e-4)
    _small_mpnet(tmp_path, embedder)
    reference = Embedder(str(tmp_path), device="cpu").encode(LABELS)
    for layout, exact in (("wrap", True), ("close", False)):
        model = GliZNet.from_backbone(str(tmp_path), replace(wrap, label_layout=layout)).eval()
        vecs = torch.nn.functional.normalize(_encode(model, TEXTS[:1], LABELS).label_embeds[0], dim=-1).numpy()
        assert np.allclose((vecs * reference).sum(1), 1.0, atol=1e-4) == exact, layout
    model.save_pretrained(tmp_path / "saved")
    assert GliZNet.from_pretrained(str(tmp_path / "saved")).config.label_layout == "close"
    auto = GliZNetConfig(label_template=None, label_descriptions=None)  # label_layout="auto", the default
    assert GliZNet.from_backbone(str(tmp_path), auto).config.label_layout == "wrap"  # relative position biases
    assert minilm.config.label_layout == "wrap" and GliZNet.from_backbone(None, auto).config.label_layout == "close"
    wrapped = GliZNet.from_backbone(str(tmp_path), wrap).eval()
    wrapped.save_pretrained(tmp_path / "wrapped")
    loaded = GliZNet.from_pretrained(str(tmp_path / "wrapped"))
    assert loaded.config.label_layout == "wrap"
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), wrapped.score(TEXTS, LABELS), atol=1e-6)
