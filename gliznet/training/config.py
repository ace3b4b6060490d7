"""TrainConfig: every setting of a training run, once (the model to build, the objective, the knobs); read from a dict
(``from_dict``) or a ``.json`` / ``.yaml`` file (``from_file``, ``gliznet train --config FILE``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from gliznet.errors import UserError
from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.label_text import LabelText
from gliznet.modeling.losses import LossConfig
from gliznet.training.interpolate import check_alpha

# -- 1. the configuration ---------------------------------------------------------------------------
TRAIN_LABEL_TEXT = ("bare", "model")
# passes over the train split `gliznet train` makes on a dataset aimed at a label set (its manifest has "aimed")
# when no --max-steps / --epochs is given: chosen on the choose sets of bench/targeted.py (bench/README.md, "Data
# aimed at a label set"), where the best step counts were 3-6 passes at 48 and at 128 texts a label; and at least
# AIMED_MIN_STEPS steps (the best count at 16 texts a label, where 4 passes would be a handful of steps)
AIMED_EPOCHS = 4.0
AIMED_MIN_STEPS = 40
# and the calibration a model trained on such a dataset records (GliZNetConfig.calibration): `gliznet evaluate` and
# the weekly gate score it batch-calibrated unless told otherwise (chosen on the same choose sets)
AIMED_CALIBRATION = "batch"
# and the encoder it starts from when no --backbone / --init is given: all-mpnet-base-v2 (gliznet.modeling.encoders),
# which the same choose sets picked over the packaged MiniLM (bench/README.md "A bigger encoder")
AIMED_BACKBONE = "mpnet"


def aimed_steps(train_rows: int, batch_size: int) -> int:
    """Steps of the aimed recipe for a train split of ``train_rows`` texts: ``AIMED_EPOCHS`` passes, at least
    ``AIMED_MIN_STEPS``."""
    return max(AIMED_MIN_STEPS, math.ceil(AIMED_EPOCHS * train_rows / batch_size))


def train_rows(data_dir: str | Path) -> int:
    """Rows of a dataset folder's train split (``triplet/train``)."""
    from datasets import load_from_disk

    return len(load_from_disk(str(Path(data_dir) / "triplet" / "train")))


def aimed_dataset(data_dir: str | Path) -> bool:
    """Whether the dataset folder was generated aimed at a label set (``generate --labels``: its manifest has
    ``aimed``)."""
    import json

    manifest = Path(data_dir) / "manifest.json"
    return manifest.is_file() and bool(json.loads(manifest.read_text(encoding="utf-8")).get("aimed"))


def aimed_backbone(backbone: str | None, data_dir: str | Path) -> str | None:
    """The backbone a run trains from: ``backbone`` when given, else ``AIMED_BACKBONE`` for a dataset aimed at a
    label set, else None (the packaged MiniLM).  What ``gliznet train`` and the weekly run both use."""
    if backbone not in (None, ""):
        return backbone
    return AIMED_BACKBONE if aimed_dataset(data_dir) else None


def aimed_recipe(data_dir: str | Path, batch_size: int) -> tuple[int, int] | None:
    """``(steps, train rows)`` of the aimed recipe for a dataset folder aimed at a label set (``aimed_steps`` over
    its train split); None for any other dataset.  What ``gliznet train`` and the weekly run both train."""
    if not aimed_dataset(data_dir):
        return None
    rows = train_rows(data_dir)
    return aimed_steps(rows, batch_size), rows


@dataclass
class TrainConfig:
    """One run.  The defaults are the measured recipe (bench/README.md), exactly what ``bench/accuracy.py`` trains
    with its defaults (it reads them from here): 450 steps of batch 16, seed 42, lr 1e-4 with
    ``loss.anchor_weight`` 5, 128 tokens per sequence, 16 labels per sample, 5 % warm-up, mean text pooling,
    isolated label attention.  So ``gliznet train`` with no flags trains the model bench/README.md measured.

    ``max_steps`` wins over ``epochs``: set ``max_steps=-1`` (``--max-steps none``) to train ``epochs`` passes
    over the data instead (the full-data run, e.g. on a GPU)."""

    model: GliZNetConfig = field(default_factory=GliZNetConfig)  # the architecture to build on the backbone
    loss: LossConfig = field(default_factory=LossConfig)  # the objective's weights, thresholds and margins
    epochs: float = 1.0
    lr: float = 1e-4  # measured with loss.anchor_weight=5 (bench/accuracy.py); without the anchor use ~2e-5
    head_lr: float = 1e-3  # score head scales, projections, bilinear
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accum: int = 1
    max_labels_per_sample: int = 16  # labels a training row shows (its own and in-batch negatives; one positive stays)
    extra_negatives: int = 8  # labels of other samples in the batch added as negatives
    label_shuffle: bool = True
    underscore_to_space_prob: float = 0.5
    max_length: int = 128  # tokens per training sequence (cost grows with it); the saved model keeps model.max_length
    seed: int = 42
    eval_steps: int = 500
    save_steps: int = 500
    logging_steps: int = 50
    max_steps: int = 450  # the measured recipe; -1: train `epochs` passes over the data instead (a dataset aimed at a
    #                       label set, `generate --labels`, gets aimed_steps() from `gliznet train` unless told)
    warmup_ratio: float = 0.05
    bf16: bool | None = None  # None: on when a CUDA GPU supports it
    num_workers: int | None = None  # None: 2 on GPU, 0 on CPU
    group_by_length: bool = True
    max_train_samples: int | None = None
    max_eval_samples: int | None = 200  # test-split rows for the eval loss (during and after training)
    cpu_threads: int | None = None  # torch.set_num_threads on CPU; None keeps torch's default (one per core)
    frozen_layers: int = 0  # freeze the embeddings and this many bottom encoder layers; -1 freezes the whole backbone
    wise_alpha: float = 1.0  # saved weights = (1-a)*initial + a*fine-tuned (gliznet.training.interpolate); 1 = fine-tuned
    # what the training batches encode: "bare" label and text strings (measured better on the dev portion, in half
    # the time: bench/README.md "Label text"), or "model", config.model's rendering.  The saved model renders
    # either way.
    train_label_text: str = "bare"
    # start from a trained GliZNet (a `gliznet train --out` folder or its model/): its backbone, head and label text
    # (its saved `model` config wins over this one's), e.g. last week's model retrained on this week's data
    init: str | None = None

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = GliZNetConfig.from_dict(self.model)
        if isinstance(self.loss, dict):
            self.loss = LossConfig.from_dict(self.loss)
        check_alpha(self.wise_alpha)
        if self.train_label_text not in TRAIN_LABEL_TEXT:
            raise UserError(f"train_label_text={self.train_label_text!r} is not supported (--train-label-text): use "
                            f"{' or '.join(TRAIN_LABEL_TEXT)}")
        if self.loss.anchor_weight > 0 and self.model.projection_dim:
            raise UserError("anchor_weight > 0 needs projection_dim=None (the anchor compares GliZNet's vectors with "
                            "the backbone's own): set loss.anchor_weight=0 (--anchor-weight 0) to train projections")

    def label_text(self) -> LabelText:
        """The rendering the training rows are pre-tokenized with and the collator checks (``train_label_text``)."""
        return LabelText.from_config(self.model) if self.train_label_text == "model" else LabelText()

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Flat training keys (``{"epochs": 1.0, "batch_size": 16, "max_length": 96, ...}``) plus optional
        ``"model"`` / ``"loss"`` dicts of ``GliZNetConfig`` / ``LossConfig`` fields."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key in known:
                continue
            for part, part_cls in (("model", GliZNetConfig), ("loss", LossConfig)):
                if key in {f.name for f in fields(part_cls)}:
                    raise UserError(f"train config key {key!r} is a {part_cls.__name__} field: pass it as "
                                    f"{{{part!r}: {{{key!r}: ...}}}}")
            raise UserError(f"train config key {key!r} is unknown: use fields of TrainConfig, or nested "
                            '"model" (GliZNetConfig) / "loss" (LossConfig) dicts')
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """The config of a ``.json`` / ``.yaml`` file of ``from_dict``'s layout (``gliznet train --config FILE``)."""
        return cls.from_dict(read_config_file(path))


def read_config_file(path: str | Path) -> dict:
    """The mapping of a ``.json`` or ``.yaml`` / ``.yml`` config file (``gliznet._io.read_settings_file``), checked to
    be one (``model`` / ``loss``, when present, mappings too); its keys are checked by ``TrainConfig.from_dict``."""
    from gliznet._io import read_settings_file

    example = '{"lr": 1e-4, "loss": {"anchor_weight": 5}}'
    data = read_settings_file(path, "TrainConfig", example)
    if any(not isinstance(data.get(part, {}), dict) for part in ("model", "loss")):
        raise UserError(f"--config {path} must be a mapping of TrainConfig fields, with model / loss as mappings, "
                        f"e.g. {example}")
    return data
