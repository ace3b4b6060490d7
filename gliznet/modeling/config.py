"""GliZNetConfig: the architecture a saved model needs to compute the same scores, and its file names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from gliznet.errors import UserError
from gliznet.modeling.label_text import (
    DEFAULT_LABEL_DESCRIPTIONS,
    DEFAULT_LABEL_TEMPLATE,
    check_template,
)
from gliznet.modeling.losses import LossConfig
from gliznet.modeling.tokenizer import (
    LABEL_LAYOUTS,
    MAX_LENGTH,
    MAX_TEXT_TOKENS,
    MIN_TEXT_TOKENS,
    TEXT_BUDGET,
)

CONFIG_NAME = "gliznet_config.json"
HEAD_WEIGHTS = "gliznet_head.safetensors"
BACKBONE_DIR = "backbone"
# how a batch of scores may be calibrated: gliznet.evaluation.calibration.CALIBRATIONS (which imports no torch)
CALIBRATIONS = ("none", "batch")


@dataclass
class GliZNetConfig:
    """The architecture: what a saved model needs to compute the same scores (training settings live in
    ``gliznet.modeling.losses.LossConfig`` and ``gliznet.training.trainer.TrainConfig``)."""

    backbone: str | None = None  # the backbone it was initialised from (path or Hub id), for the card
    label_attention: Literal["full", "isolated", "labels_read_text"] = "isolated"
    # "close": `label [LAB]` (the layout every model before it used); "wrap": `[LAB] label [SEP]`, both ends of a
    # sentence, as a relative-position backbone (MPNet) needs to read a label as it reads it alone; "auto": wrap on
    # such a backbone, else close (GliZNet resolves it when built; a saved model records which)
    label_layout: Literal["auto", "close", "wrap"] = "auto"
    text_pooling: Literal["cls", "mean", "label"] = "mean"
    pool_dim: int = 64  # text_pooling="label": width of the query/key maps of the label-conditioned attention pool
    label_pooling: Literal["mean", "lab"] = "mean"
    projection_dim: int | None = None
    similarity: Literal["cosine", "dot", "bilinear"] = "cosine"
    init_scale: float = 2.0  # ScoreHead: exp(logit_scale) at initialisation (the seed's value)
    init_temperature: float = 10.0  # ScoreHead: exp(log_temperature) at initialisation
    init_bias: float = -2.5  # ScoreHead: bias at initialisation
    max_scale: float = 100.0  # ScoreHead: clamp of both learned scales
    max_length: int = MAX_LENGTH  # tokens per inference pass (predict/score lay out up to this many)
    text_budget: float = TEXT_BUDGET
    min_text_tokens: int = MIN_TEXT_TOKENS
    max_text_tokens: int | None = MAX_TEXT_TOKENS  # the text's tokens per pass, whatever room the labels leave; None: no cap
    wise_alpha: float = 1.0  # a record, not an option: the weights are (1-a)*initial + a*fine-tuned (gliznet.training.interpolate)
    # what the encoder sees of a label / a text (gliznet.modeling.label_text); None = the bare string.  Bare by
    # default: the choice of bench/sweep.py on label sets it did not report (bench/README.md "Zero-shot by sets").
    label_template: str | None = DEFAULT_LABEL_TEMPLATE  # None: the bare label; e.g. "This text is about {label}."
    text_template: str | None = None  # e.g. "Text: {text}"
    label_descriptions: str | None = DEFAULT_LABEL_DESCRIPTIONS  # None, "shipped" (data/label_descriptions.jsonl) or a JSONL
    # a record of the recipe: how `gliznet evaluate` and the weekly gate calibrate a set's scores unless told
    # (gliznet.evaluation.calibration); training on a dataset aimed at a label set records "batch"; None: "none"
    calibration: str | None = None

    def __post_init__(self):
        check_template(self.label_template, "label_template")
        check_template(self.text_template, "text_template")
        choices = {"text_pooling": ("cls", "mean", "label"), "label_pooling": ("mean", "lab"),
                   "similarity": ("cosine", "dot", "bilinear"),
                   "label_attention": ("full", "isolated", "labels_read_text"), "label_layout": ("auto", *LABEL_LAYOUTS)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name}={getattr(self, name)!r} is not supported: use one of {allowed}")
        if not (isinstance(self.pool_dim, int) and self.pool_dim >= 1):
            raise UserError(f"pool_dim={self.pool_dim!r} must be a positive width, e.g. 64")
        if self.calibration is not None and self.calibration not in CALIBRATIONS:
            raise UserError(f"calibration={self.calibration!r} is not supported: use one of {CALIBRATIONS} or None")
        cap = self.max_text_tokens
        if cap is not None and not (isinstance(cap, int) and cap >= 1):
            raise UserError(f"max_text_tokens={cap!r} is not a positive number of tokens: use e.g. "
                            "128, or None for no cap")

    def layout(self, max_length: int | None = None) -> dict:
        """The keywords of ``GliZNetTokenizer.assemble`` for this model, every call site's one source;
        ``max_length`` replaces the inference length (training lays out ``TrainConfig.max_length``)."""
        return {"max_length": self.max_length if max_length is None else max_length, "text_budget": self.text_budget,
                "min_text_tokens": self.min_text_tokens, "max_text_tokens": self.max_text_tokens,
                "label_layout": self.label_layout}

    @classmethod
    def from_dict(cls, data: dict) -> "GliZNetConfig":
        """A config from its ``asdict`` form; also reads the flat configs saved before the loss settings moved to
        ``LossConfig`` (their loss keys are dropped, ``bce_init_*`` become ``init_*``)."""
        data = {LEGACY_CONFIG_KEYS.get(k, k): v for k, v in data.items() if k not in LEGACY_LOSS_KEYS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"model config keys {unknown} are unknown: use fields of GliZNetConfig {sorted(known)}")
        return cls(**data)


# Saved before this layout: loss settings in the model config, the BCE scale in the loss module.
LEGACY_CONFIG_KEYS = {"bce_init_temperature": "init_temperature", "bce_init_bias": "init_bias"}


LEGACY_LOSS_KEYS = {f.name for f in fields(LossConfig)}
