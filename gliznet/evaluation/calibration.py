"""Batch calibration: remove each label's prior from the scores of a batch of texts.

A zero-shot scorer has label biases that have nothing to do with the text: some label strings sit closer to every
text than others ("positive" closer than "very negative", "World" closer than "Sci/Tech"), so argmax over raw
scores predicts the favoured labels too often and macro-F1 suffers.  *Batch calibration* (Zhou et al., ICLR 2024,
"Batch Calibration: Rethinking Calibration for In-Context Learning and Prompt Engineering") estimates each label's
prior as its mean score over the texts scored together and subtracts it:

    calibrated[i, j] = score[i, j] - mean_k score[k, j]

It needs no gold labels and no training, only several texts at once (a batch, an eval set), so it is *transductive*:
a text's calibrated score depends on the texts scored with it, and a single text cannot be calibrated.  It is an
option of evaluation (``gliznet evaluate --calibration batch``, ``bench/sweep.py``), applied to a model and to the
baselines alike.  A saved model may *record* the calibration it is meant to be scored with
(``GliZNetConfig.calibration``: training on a dataset aimed at a label set records ``batch``); ``evaluate`` uses
that record when no calibration is given (``scorer_calibration``).  The scores a model returns are never changed.
"""

from __future__ import annotations

import numpy as np

from gliznet.errors import UserError

CALIBRATIONS = ("none", "batch")  # GliZNetConfig.calibration checks the same words (a test compares them)
MIN_BATCH = 2  # fewer texts than this carry no estimate of a label's prior


def check_calibration(calibration: str | None) -> str:
    """``calibration`` as one of ``CALIBRATIONS`` (None means ``none``), or one clear error naming the choices."""
    value = "none" if calibration is None else str(calibration).lower()
    if value not in CALIBRATIONS:
        raise UserError(f"calibration={calibration!r} is not supported: use one of {CALIBRATIONS} "
                        "(batch: subtract each label's mean score over the texts scored together)")
    return value


def scorer_calibration(scorer, calibration: str | None = None) -> str:
    """``calibration`` when given, else the one ``scorer`` records (a GliZNet's ``config.calibration``), else
    ``none``; checked."""
    if calibration is None:
        config = getattr(scorer, "config", None)
        calibration = getattr(config, "calibration", None)
    return check_calibration(calibration)


def calibrate(scores: np.ndarray, calibration: str | None = "batch") -> np.ndarray:
    """``scores`` (n_texts, n_labels) with each label's prior removed (module docstring); ``none`` returns them as is."""
    method = check_calibration(calibration)
    scores = np.asarray(scores, dtype=float)
    if method == "none":
        return scores
    if scores.ndim != 2:
        raise ValueError(f"scores of shape {scores.shape} must be (n_texts, n_labels)")
    if scores.shape[0] < MIN_BATCH:
        raise UserError(f"calibration='batch' needs at least {MIN_BATCH} texts scored together to estimate each "
                        f"label's prior, got {scores.shape[0]}: score more texts at once, or use calibration='none'")
    return scores - scores.mean(axis=0, keepdims=True)
