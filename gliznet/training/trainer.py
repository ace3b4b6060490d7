"""Train GliZNet on a dataset folder of the contract with the transformers ``Trainer``.

Recipe, top to bottom:

1. ``TrainConfig`` - every setting of a run, once: the model to build (``model``, a ``GliZNetConfig``), the
   objective (``loss``, a ``LossConfig``) and the training knobs.  ``TrainConfig.from_dict`` reads the flat
   training keys plus nested ``"model"`` / ``"loss"`` dicts (``asdict(config)`` round-trips).
2. ``GliZNetTrainer`` (a ``transformers.Trainer`` subclass) brings mixed precision (bf16 on a GPU), gradient
   accumulation, checkpoints + resume, seed, eval on the ``test`` split during training, DataLoader
   workers, ``group_by_length`` bucketing and multi-GPU through accelerate/torchrun.  Its constructor takes
   ``head_lr`` (the head - score head scales, projections, bilinear - gets its own, larger learning rate, in
   ``create_optimizer``) and ``eval_collator`` (evaluation batches without random label sampling); the
   ``StepClock`` callback times the training steps alone.
3. ``freeze_bottom`` optionally freezes the embeddings and bottom layers (the zero-shot prior lives there).
4. ``train`` runs the steps in order: ``load_triplets``; ``build_model`` (seeded, bottom frozen);
   ``training_rows`` (the data steps of ``gliznet.training.batches``: ``prior_vectors`` with the anchor ->
   ``pretokenize`` of only the rows ``max_train_samples`` / ``max_steps`` can reach; ``LabelCollator`` then
   builds each step's batch); ``make_trainer``; ``trainer.train``; ``last_eval_metrics``; ``finish_model``
   (optionally interpolates the weights back towards the initial ones, ``wise_alpha`` < 1, WiSE-FT, see
   ``gliznet.training.interpolate``); ``save_run`` (``GliZNet.save_pretrained(OUT/model)`` and the summary).
   The summary reports tokens/s of the training steps alone (data loading + forward + backward + optimizer;
   evaluation and checkpoint saves are timed separately), with per-step times so a benchmark can drop
   warm-up steps.

Speed notes (measured on 2 CPU cores): the optimizer is a fused AdamW (8x faster than the default
``foreach`` one on CPU, 0.13 -> 0.02 s/step for MiniLM); on a CPU shared with other busy processes
``cpu_threads=1`` can be 3-4x faster than torch's default of one thread per core (OpenMP threads spin
waiting for a busy core).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from gliznet._io import load_triplets
from gliznet.errors import UserError
from gliznet.modeling.model import GliZNet
from gliznet.training.batches import LabelCollator, pretokenize, prior_vectors
from gliznet.training.config import AIMED_CALIBRATION, TrainConfig, aimed_dataset
from gliznet.training.interpolate import copy_state, interpolate


# -- 2. the Trainer ---------------------------------------------------------------------------------
class StepClock(TrainerCallback):
    """Seconds spent training, apart from evaluation and checkpoint saves.

    The clock runs from the first ``on_step_begin`` to the last ``on_step_end``.  After a step ends the
    Trainer may log, evaluate and save; the time until the last of those callbacks fires is paused time,
    so ``train_seconds`` = data loading + forward + backward + optimizer of every step.  ``steps`` holds,
    per optimizer step, [seconds, non-padding tokens] (seconds include this step's data loading);
    ``steps`` and ``batch_shapes`` keep the first ``KEEP`` entries (enough for a benchmark)."""

    KEEP = 1000

    def __init__(self):
        self.started: float | None = None
        self.last_end: float | None = None
        self.paused = 0.0
        self.resumed_at: float | None = None
        self.step_began: float | None = None
        self.step_tokens = 0
        self.steps: list[list[float]] = []
        self.batch_shapes: list[tuple] = []  # (batch, padded length, non-padding tokens) per micro-batch

    def add_batch(self, shape: tuple) -> None:
        self.step_tokens += shape[-1]
        if len(self.batch_shapes) < self.KEEP:
            self.batch_shapes.append(shape)

    def on_step_begin(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        if self.last_end is not None and self.resumed_at is not None:
            self.paused += self.resumed_at - self.last_end
        self.step_began = self.resumed_at or self.last_end or now  # this step's data loading counts
        self.resumed_at = None

    def on_step_end(self, args, state, control, **kwargs):
        self.last_end = time.perf_counter()
        if len(self.steps) < self.KEEP:
            self.steps.append([self.last_end - self.step_began, self.step_tokens])
        self.step_tokens = 0

    def _after_step_end(self, *args, **kwargs):
        if self.last_end is not None:
            self.resumed_at = time.perf_counter()

    on_log = on_evaluate = on_save = _after_step_end

    @property
    def train_seconds(self) -> float:
        if self.started is None or self.last_end is None:
            return 0.0
        return self.last_end - self.started - self.paused


class GliZNetTrainer(Trainer):
    """``Trainer`` with GliZNet's loss, a separate head learning rate, its own eval batches and a step clock.

    ``head_lr``: the learning rate of every parameter outside the backbone (score head, projections,
    bilinear; None: ``args.learning_rate``).  ``eval_collator``: how evaluation batches are built (no random
    label sampling; None: ``data_collator``, as the Trainer does).  ``step_clock``: the ``StepClock`` callback
    that times the training steps (a fresh one when None); ``tokens_seen`` counts non-padding tokens."""

    def __init__(self, *args, head_lr: float | None = None, eval_collator=None,
                 step_clock: StepClock | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_lr = head_lr if head_lr is not None else self.args.learning_rate
        self.eval_collator = eval_collator
        self.step_clock = step_clock if step_clock is not None else StepClock()
        self.add_callback(self.step_clock)
        self.tokens_seen = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            tokens = int(inputs["attention_mask"].sum())
            self.tokens_seen += tokens
            self.step_clock.add_batch(tuple(inputs["input_ids"].shape) + (tokens,))
        outputs = model(**inputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def create_optimizer(self, model=None):
        """AdamW over three groups: backbone matrices (weight decay), backbone vectors (none), the head
        (none, at ``head_lr``)."""
        if self.optimizer is None:
            model = model if model is not None else self.model
            decay, no_decay, head = [], [], []
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                if not name.startswith("backbone."):
                    head.append(param)
                elif param.ndim < 2:
                    no_decay.append(param)
                else:
                    decay.append(param)
            groups = [{"params": decay, "weight_decay": self.args.weight_decay},
                      {"params": no_decay, "weight_decay": 0.0},
                      {"params": head, "weight_decay": 0.0, "lr": self.head_lr}]
            self.optimizer = _adamw([g for g in groups if g["params"]], lr=self.args.learning_rate)
        return self.optimizer

    def get_eval_dataloader(self, eval_dataset=None):
        """Evaluation batches in order, built by ``eval_collator``."""
        if self.eval_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        return self.accelerator.prepare(DataLoader(dataset, batch_size=self.args.per_device_eval_batch_size,
                                                   collate_fn=self.eval_collator, shuffle=False))


def _adamw(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Fused AdamW (one kernel over all parameters; on CPU 8x faster than the default), else the default."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device/dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr)


def training_args(out: Path, config: TrainConfig, do_eval: bool) -> TrainingArguments:
    """``TrainingArguments`` of a run (transformers 5 spelling; 4.x spells bucketing ``group_by_length`` and
    warm-up ``warmup_ratio``)."""
    on_gpu = torch.cuda.is_available()
    workers = config.num_workers if config.num_workers is not None else (2 if on_gpu else 0)
    common = dict(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        eval_strategy="steps" if do_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        seed=config.seed,
        bf16=_auto_bf16(config.bf16),
        length_column_name="length",
        dataloader_num_workers=workers,
        dataloader_pin_memory=on_gpu,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,
        report_to=[],
        disable_tqdm=True,
    )
    if "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        return TrainingArguments(**common, warmup_steps=config.warmup_ratio, lr_scheduler_type="linear",
                                 train_sampling_strategy="group_by_length" if config.group_by_length else "random",
                                 dataloader_persistent_workers=workers > 0)
    return TrainingArguments(**common, warmup_ratio=config.warmup_ratio, group_by_length=config.group_by_length)


def _auto_bf16(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


# -- 3. freezing the bottom ------------------------------------------------------------------------
def freeze_bottom(model: GliZNet, layers: int) -> None:
    """Freeze the backbone's embeddings and its ``layers`` bottom encoder layers (-1: the whole backbone).

    Lower layers carry the general-purpose features the zero-shot prior relies on; training only the top
    keeps them (the head - score head, projections - always trains)."""
    if layers == 0:
        return
    if layers == -1:
        model.backbone.requires_grad_(False)
        return
    stacks = [m for name, m in model.backbone.named_modules()
              if isinstance(m, torch.nn.ModuleList) and name.split(".")[-1] in ("layer", "layers")]
    if layers < -1:
        raise UserError(f"frozen_layers={layers}: use -1 (whole backbone), 0 (none) or a count of bottom layers")
    if not stacks:
        raise UserError(f"frozen_layers={layers}: use -1 (whole backbone), 0 (none) or a count of bottom layers; "
                        f"{type(model.backbone).__name__} has no encoder layer list, use -1 or 0")
    stack = stacks[0]
    if layers > len(stack):
        raise UserError(f"frozen_layers={layers} but the backbone has {len(stack)} layers: use at most {len(stack)}, or -1")
    model.backbone.get_input_embeddings().requires_grad_(False)
    for module in model.backbone.modules():  # position / token-type embeddings and their LayerNorm
        if type(module).__name__.endswith("Embeddings"):
            module.requires_grad_(False)
    for layer in stack[:layers]:
        layer.requires_grad_(False)


# -- 4. entry point ---------------------------------------------------------------------------------
def train(data_dir: str, backbone: str | None, out_dir: str, config: TrainConfig | None = None,
          resume: bool = False) -> dict:
    """Train, evaluate on ``test`` during training, save ``OUT/model``; returns a summary dict (also written to
    ``OUT/train_summary.json``)."""
    config = config or TrainConfig()
    dataset = load_triplets(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, init_weights = build_model(backbone, config)
    train_rows, test_rows, label_priors = training_rows(dataset, data_dir, model, backbone, config)
    trainer = make_trainer(model, out, config, train_rows, test_rows, label_priors)

    checkpoint = get_last_checkpoint(str(out / "checkpoints")) if resume and (out / "checkpoints").is_dir() else None
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    wall = time.perf_counter() - started
    eval_metrics = last_eval_metrics(trainer)

    finish_model(model, config, init_weights, calibration=recorded_calibration(data_dir, config))
    elapsed = trainer.step_clock.train_seconds  # training steps only: evaluation and checkpoint saves excluded
    summary = {
        "model_dir": str(out / "model"),
        "train_loss": float(result.training_loss),
        "steps": int(result.global_step),
        "tokens_per_s": trainer.tokens_seen / elapsed if elapsed > 0 else 0.0,
        "train_seconds": elapsed,
        "wall_seconds": wall,  # trainer.train() as a whole, evaluation and saves included
        "eval_loss": float(eval_metrics["eval_loss"]) if "eval_loss" in eval_metrics else None,
        "resumed_from": checkpoint,
        "batch_shapes": [list(x) for x in trainer.step_clock.batch_shapes],  # (batch, padded length, tokens), first 1000 micro-batches
        "step_times": trainer.step_clock.steps,  # [seconds, tokens] per optimizer step (the first 1000)
        "config": asdict(config),
    }
    save_run(trainer, model, out, summary)
    return summary


def build_model(backbone: str | None, config: TrainConfig) -> tuple[GliZNet, dict | None]:
    """The seeded GliZNet to train, its bottom frozen per ``config.frozen_layers``, and a copy of its initial
    weights when WiSE-FT will interpolate back towards them (``wise_alpha`` < 1; else None)."""
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)
    set_seed(config.seed)
    if config.init is not None:  # continue from a trained GliZNet: its backbone, head and architecture
        model = GliZNet.from_pretrained(config.init, loss=config.loss)
    else:
        model = GliZNet.from_backbone(backbone, config.model, loss=config.loss)
    init_weights = copy_state(model) if config.wise_alpha < 1.0 else None
    freeze_bottom(model, config.frozen_layers)
    return model, init_weights


def training_rows(dataset, data_dir: str, model: GliZNet, backbone: str | None, config: TrainConfig):
    """``(train rows, test rows, label priors)``: the rows pre-tokenized with ``config.label_text()`` (only the
    train rows ``max_train_samples`` / ``max_steps`` can reach, at most ``max_eval_samples`` test rows), and
    the initial backbone's vector per label for the anchor (None when ``loss.anchor_weight`` is 0)."""
    train_split = _sample(dataset["train"], _reachable_rows(config), config.seed)
    test_split = _sample(dataset["test"], config.max_eval_samples, config.seed)
    label_text = config.label_text()  # bare strings, or config.model's templates / descriptions
    label_priors = None
    if config.loss.anchor_weight > 0:
        train_split, label_priors = prior_vectors(train_split, backbone, config.max_length, label_text=label_text)
    train_split = pretokenize(train_split, model.tokenizer, config.max_length, label_text=label_text)
    test_split = pretokenize(test_split, model.tokenizer, config.max_length, label_text=label_text)
    if len(train_split) == 0:
        raise UserError(f"{data_dir}/triplet train split has no usable rows (non-empty text and >= 1 label): add data (--data)")
    return train_split, test_split, label_priors


def _reachable_rows(config: TrainConfig) -> int | None:
    """Train rows the run can read: ``max_train_samples``, capped by ``max_steps`` x the rows of a step."""
    keep = config.max_train_samples
    if config.max_steps > 0:
        needed = config.max_steps * config.batch_size * config.grad_accum * int(os.environ.get("WORLD_SIZE", "1"))
        keep = min(keep or needed, needed)
    return keep


def _sample(split, rows: int | None, seed: int):
    """``rows`` seeded rows of ``split`` (all of it when ``rows`` is None or 0)."""
    if not rows:
        return split
    return split.shuffle(seed=seed).select(range(min(rows, len(split))))


def make_trainer(model: GliZNet, out: Path, config: TrainConfig, train_rows, test_rows,
                 label_priors: dict | None) -> GliZNetTrainer:
    """The trainer of a run: random label sampling in training batches, none in evaluation batches (and no
    evaluation when the test split is empty)."""
    do_eval = len(test_rows) > 0
    return GliZNetTrainer(
        model=model,
        args=training_args(out, config, do_eval),
        train_dataset=train_rows,
        eval_dataset=test_rows if do_eval else None,
        data_collator=LabelCollator(model.tokenizer, config, train=True, label_priors=label_priors),
        eval_collator=LabelCollator(model.tokenizer, config, train=False) if do_eval else None,
        head_lr=config.head_lr,
    )


def last_eval_metrics(trainer: GliZNetTrainer) -> dict:
    """The metrics of the last evaluation during training; when the Trainer did not evaluate at the end, one
    evaluation now ({} without a test split)."""
    metrics = next((h for h in reversed(trainer.state.log_history) if "eval_loss" in h), None)
    if metrics is None:
        metrics = trainer.evaluate() if trainer.eval_dataset is not None else {}
    return metrics


def recorded_calibration(data_dir: str, config: TrainConfig) -> str | None:
    """The calibration the trained model records (``GliZNetConfig.calibration``): ``config.model``'s when set,
    else ``AIMED_CALIBRATION`` for a dataset aimed at a label set, else None (raw scores)."""
    if config.model.calibration is not None:
        return config.model.calibration
    return AIMED_CALIBRATION if aimed_dataset(data_dir) else None


def finish_model(model: GliZNet, config: TrainConfig, init_weights: dict | None,
                 calibration: str | None = None) -> None:
    """WiSE-FT back towards ``init_weights`` when kept (see ``gliznet.training.interpolate``), and the config the
    saved model predicts with: its ``wise_alpha``, the full context (not the training length) and the calibration
    this run's data calls for (``recorded_calibration``; a ``--init`` model's record is not carried over)."""
    if init_weights is not None:
        interpolate(model, config.wise_alpha, init_weights)
    positions = getattr(model.backbone.config, "max_position_embeddings", None) or config.model.max_length
    model.config = replace(model.config, wise_alpha=config.wise_alpha, calibration=calibration,
                           max_length=max(config.max_length, min(config.model.max_length, positions)))


def save_run(trainer: GliZNetTrainer, model: GliZNet, out: Path, summary: dict) -> None:
    """``OUT/model`` and ``OUT/train_summary.json``, written by one process when several train
    (accelerate/torchrun); the others return once they are saved."""
    if trainer.is_world_process_zero():
        model.save_pretrained(out / "model")
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    trainer.accelerator.wait_for_everyone()
