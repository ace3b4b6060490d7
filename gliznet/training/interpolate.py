"""Weight interpolation between the initial and the fine-tuned GliZNet (WiSE-FT, Wortsman et al. 2022).

    theta(alpha) = (1 - alpha) * theta_init + alpha * theta_tuned

``alpha = 1`` is the fine-tuned model, ``alpha = 0`` the model as ``GliZNet.from_backbone`` builds it (with
isolated label attention that is, up to the label layout, the embedding-similarity baseline).  Fine-tuning on
one mix of tasks moves the encoder away from what its pretraining knew about others; interpolating keeps part
of that prior for the cost of nothing at inference (still one model, one pass).  Pick ``alpha`` on data that
is neither training nor test data: ``gliznet interpolate --alpha A`` writes a model per value.

The initial weights are rebuilt from ``config.backbone`` when they are not given: that is exact for every
parameter ``from_backbone`` initialises deterministically (backbone, ``[LAB]`` embedding, the score head's
scales and bias, bilinear identity).  Projections start random, so for a model with ``projection_dim`` the
initial state must be passed (``train`` keeps it in memory).
"""

from __future__ import annotations

import copy

import torch

from gliznet.errors import UserError
from gliznet.modeling.model import GliZNet


def check_alpha(alpha: float, name: str = "wise_alpha") -> float:
    if not 0.0 <= float(alpha) <= 1.0:
        raise UserError(f"{name}={alpha} is outside [0, 1]: 1 keeps the fine-tuned weights, 0 the initial ones")
    return float(alpha)


def copy_state(model: GliZNet) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model``'s weights (before training: the initial state to interpolate from)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def rebuilt_initial_state(tuned: GliZNet) -> dict[str, torch.Tensor]:
    """The weights ``GliZNet.from_backbone`` gives ``tuned``'s backbone and config."""
    if tuned.config.projection_dim:
        raise UserError("this model has projections (projection_dim set), whose initial weights were random: "
                        "interpolate at training time (`gliznet train --wise-alpha A`) instead")
    fresh = GliZNet.from_backbone(tuned.config.backbone, copy.deepcopy(tuned.config))
    return copy_state(fresh)


def interpolate_state(init: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * init + alpha * tuned`` for every floating-point tensor; others are taken from ``tuned``."""
    alpha = check_alpha(alpha)
    if init.keys() != tuned.keys():
        diff = sorted(set(init) ^ set(tuned))[:3]
        raise ValueError(f"initial and tuned weights differ in parameters {diff}: they are not the same architecture")
    mixed = {}
    for name, value in tuned.items():
        start = init[name].to(value.device)
        if start.shape != value.shape:
            raise ValueError(f"parameter {name}: initial shape {tuple(start.shape)} != tuned {tuple(value.shape)}")
        mixed[name] = torch.lerp(start.to(value.dtype), value, alpha) if value.is_floating_point() else value
    return mixed


def interpolate(tuned: GliZNet, alpha: float, init: dict[str, torch.Tensor] | None = None) -> GliZNet:
    """Set ``tuned``'s weights to ``theta(alpha)`` in place and return it."""
    alpha = check_alpha(alpha)
    if alpha == 1.0:
        return tuned
    init = init if init is not None else rebuilt_initial_state(tuned)
    tuned.load_state_dict(interpolate_state(init, tuned.state_dict(), alpha))
    return tuned
