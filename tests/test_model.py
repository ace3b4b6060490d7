"""GliZNet model on the packaged MiniLM: the isolated pass reproduces the embedding baseline, save/load, errors."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.embeddings import Embedder  # noqa: E402
from gliznet.model import GliZNet, GliZNetConfig  # noqa: E402

TEXTS = ["the striker scored twice in the second half and the crowd went wild",
         "simmer the tomato sauce for twenty minutes, then add basil",
         "parliament passed the new budget after a long night of debate"]
LABELS = ["sports", "cooking", "politics", "weather forecast", "football"]


@pytest.fixture(scope="module")
def isolated():
    torch.manual_seed(0)
    return GliZNet.from_backbone(None, GliZNetConfig(label_attention="isolated")).eval()


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
        isolated.logit_scale.fill_(1.234)
        isolated.loss_fn.bce.bias.fill_(-1.5)
    before = isolated.score(TEXTS, LABELS)
    isolated.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "README.md").exists()
    loaded = GliZNet.from_pretrained(str(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score(TEXTS, LABELS), before, atol=1e-6)
    assert loaded.config == isolated.config
    assert loaded.tokenizer.lab_token_id == isolated.tokenizer.lab_token_id


def test_unknown_backbone_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load"):
        GliZNet.from_backbone(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="cannot find GliZNet model|has no gliznet_config.json"):
        GliZNet.from_pretrained(str(tmp_path / "no-such-model"))


def test_unsupported_config_option_is_a_clear_error():
    with pytest.raises(ValueError, match="label_attention='sideways' is not supported"):
        GliZNetConfig(label_attention="sideways")
