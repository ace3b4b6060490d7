"""WiSE-FT weight interpolation with the real MiniLM on CPU."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.model import GliZNet
from gliznet.training.interpolate import (  # noqa: E402
    interpolate,
    interpolate_state,
    rebuilt_initial_state,
)

TEXTS = ["the striker scored twice in the final", "stocks fell sharply as interest rates rose"]
LABELS = ["sports", "finance", "cooking"]


def _tuned(seed: int = 0) -> GliZNet:
    """A model whose weights moved away from the initial ones (a stand-in for fine-tuning: a random step)."""
    model = GliZNet.from_backbone(None, GliZNetConfig(max_length=64))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    return model


def test_alpha_zero_gives_back_the_initial_model_and_one_the_tuned(tmp_path):
    fresh = GliZNet.from_backbone(None, GliZNetConfig(max_length=64))
    tuned = _tuned()
    tuned_scores = tuned.score(TEXTS, LABELS)
    assert not np.allclose(tuned_scores, fresh.score(TEXTS, LABELS), atol=1e-4)

    assert np.array_equal(interpolate(tuned, 1.0).score(TEXTS, LABELS), tuned_scores)
    back = interpolate(_tuned(), 0.0)  # initial weights rebuilt from config.backbone
    np.testing.assert_allclose(back.score(TEXTS, LABELS), fresh.score(TEXTS, LABELS), atol=1e-6)


def test_half_way_is_the_midpoint_of_every_weight():
    init = rebuilt_initial_state(_tuned())
    tuned = _tuned(seed=1)
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    mixed = interpolate(tuned, 0.5, init).state_dict()
    for name, value in mixed.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (init[name] + before[name]) / 2)


def test_bad_alpha_and_mismatched_weights_are_clear_errors():
    with pytest.raises(ValueError, match=r"wise_alpha=1.5 is outside \[0, 1\]"):
        interpolate(_tuned(), 1.5)
    with pytest.raises(ValueError, match="differ in parameters"):
        interpolate_state({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, 0.5)
    projected = GliZNet.from_backbone(None, GliZNetConfig(max_length=64, projection_dim=8))
    with pytest.raises(ValueError, match="projections .* interpolate at training time"):
        interpolate(projected, 0.5)


@pytest.mark.slow
def test_cli_writes_an_interpolated_model_and_refuses_a_bad_alpha(tmp_path):
    from conftest import assert_one_clear_error, run_cli

    tuned = _tuned()
    tuned.save_pretrained(tmp_path / "tuned")
    done = run_cli("interpolate", "--model", str(tmp_path / "tuned"), "--alpha", "0.5", "--out", str(tmp_path / "half"))
    assert done.returncode == 0, done.stderr
    half = GliZNet.from_pretrained(str(tmp_path / "half"))
    assert half.config.wise_alpha == 0.5
    init = rebuilt_initial_state(tuned)
    name = "backbone.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(half.state_dict()[name], (init[name] + tuned.state_dict()[name]) / 2)

    bad = run_cli("interpolate", "--model", str(tmp_path / "tuned"), "--alpha", "2", "--out", str(tmp_path / "bad"))
    assert_one_clear_error(bad, "--alpha", "outside [0, 1]")
    assert not (tmp_path / "bad").exists()
