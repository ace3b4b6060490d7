"""Train GliZNet on a dataset folder of the contract with the transformers ``Trainer``.

Recipe, top to bottom:

1. ``load_triplets`` reads ``DATA/triplet`` (a ``DatasetDict`` saved with ``save_to_disk``; splits
   ``train``/``test``; columns ``text``, ``labels``, ``not_labels``).
2. ``pretokenize`` runs once, with ``datasets.map``: token ids of the text and of every label (plus the
   ``_``->space variant of labels that have one), and a ``length`` column for length bucketing - only for
   the rows ``max_train_samples`` / ``max_steps`` can reach.  No tokenizer runs inside the training loop.
3. ``LabelCollator`` builds each batch from ids with list operations (cheap, runs in DataLoader workers):
   positives + negatives (+ ``extra_negatives`` other samples' labels from the same batch), shuffled per
   step, capped at ``max_labels_per_sample`` (always keeping a positive), laid out by
   ``GliZNetTokenizer.assemble`` and padded; targets are cut to the labels that fit.
4. ``GliZNetTrainer`` (a ``transformers.Trainer``) brings mixed precision (bf16 on a GPU), gradient
   accumulation, checkpoints + resume, seed, eval on the ``test`` split during training, DataLoader
   workers, ``group_by_length`` bucketing and multi-GPU through accelerate/torchrun.  The head (scales,
   temperatures, projections) gets its own, larger learning rate.
5. ``train`` optionally interpolates the weights back towards the initial ones (``wise_alpha`` < 1, WiSE-FT,
   see ``gliznet.interpolate``), saves the final model with ``GliZNet.save_pretrained(OUT/model)`` and reports tokens/s of the
   training steps alone (data loading + forward + backward + optimizer; evaluation and checkpoint saves are
   timed separately), with per-step times so a benchmark can drop warm-up steps.

Speed notes (measured on 2 CPU cores): the optimizer is a fused AdamW (8x faster than the default
``foreach`` one on CPU, 0.13 -> 0.02 s/step for MiniLM); on a CPU shared with other busy processes
``cpu_threads=1`` can be 3-4x faster than torch's default of one thread per core (OpenMP threads spin
waiting for a busy core).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch

from gliznet.interpolate import check_alpha, copy_state, interpolate
from gliznet.model import GliZNet, GliZNetConfig
from gliznet.tokenizer import GliZNetTokenizer


@dataclass
class TrainConfig:
    epochs: float = 1.0
    lr: float = 1e-4  # measured with anchor_weight=5 (bench/accuracy.py); without the anchor use ~2e-5
    head_lr: float = 1e-3  # logit scale, BCE temperature/bias, projections
    weight_decay: float = 0.01
    batch_size: int = 32
    grad_accum: int = 1
    max_labels_per_sample: int = 20
    extra_negatives: int = 8  # labels of other samples in the batch added as negatives
    label_shuffle: bool = True
    underscore_to_space_prob: float = 0.5
    max_length: int = 256  # of training batches (cost grows with it)
    inference_max_length: int = 512  # saved in the model: what predict/score lay out (texts keep more context)
    seed: int = 42
    eval_steps: int = 500
    save_steps: int = 500
    logging_steps: int = 50
    max_steps: int = -1
    warmup_ratio: float = 0.1
    bf16: bool | None = None  # None: on when a CUDA GPU supports it
    num_workers: int | None = None  # None: 2 on GPU, 0 on CPU
    group_by_length: bool = True
    max_train_samples: int | None = None
    max_eval_samples: int | None = 1000
    text_pooling: Literal["cls", "mean"] = "mean"
    label_pooling: Literal["mean", "lab"] = "mean"
    label_attention: Literal["full", "isolated"] = "isolated"
    similarity: Literal["cosine", "dot", "bilinear"] = "cosine"
    projection_dim: int | None = None
    loss_weights: dict = field(default_factory=dict)  # e.g. {"margin_weight": 0.5}; keys of GliZNetConfig
    cpu_threads: int | None = None  # torch.set_num_threads on CPU; None keeps torch's default (one per core)
    anchor_weight: float = 5.0  # PriorAnchor loss weight (0: off); loss_weights={"anchor_weight": ...} overrides
    frozen_layers: int = 0  # freeze the embeddings and this many bottom encoder layers; -1 freezes the whole backbone
    wise_alpha: float = 1.0  # saved weights = (1-a)*initial + a*fine-tuned (gliznet.interpolate); 1 = fine-tuned


# -- 1. data ----------------------------------------------------------------------------------------
def load_triplets(data_dir: str):
    """The ``triplet`` DatasetDict of a dataset folder, or a ValueError saying how to get one."""
    from datasets import load_from_disk

    path = Path(data_dir) / "triplet"
    if not path.is_dir():
        raise ValueError(f"--data {data_dir} is not a gliznet dataset folder (no triplet/): "
                         "run `gliznet generate` or `gliznet import` first")
    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"--data {data_dir}: triplet/ is not a saved dataset ({err}): "
                         "rebuild it with `gliznet generate` or `gliznet import`") from None
    for split in ("train", "test"):
        if split not in dataset:
            raise ValueError(f"{path} has no {split!r} split: rebuild it with `gliznet generate` or `gliznet import`")
        missing = {"text", "labels", "not_labels"} - set(dataset[split].column_names)
        if missing:
            raise ValueError(f"{path}[{split}] lacks columns {sorted(missing)}: rebuild it with `gliznet import`")
    return dataset


# -- 2. pre-tokenization ----------------------------------------------------------------------------
def pretokenize(split, tokenizer: GliZNetTokenizer, max_length: int, num_proc: int | None = None):
    """Adds ``text_ids``, ``pos_ids``/``neg_ids`` (+ ``*_alt`` for the ``_``->space variants) and ``length``."""

    def encode(batch):
        text_ids = [ids[: max_length - 3] for ids in tokenizer.encode_pieces(batch["text"])]
        out = {"text_ids": text_ids}
        for col, key in (("labels", "pos"), ("not_labels", "neg")):
            flat = [lab for labs in batch[col] for lab in labs]
            alt = [lab.replace("_", " ") for lab in flat]
            ids = tokenizer.encode_pieces(flat)
            alt_ids = tokenizer.encode_pieces([a for a, f in zip(alt, flat) if a != f])
            alt_iter = iter(alt_ids)
            alt_full = [next(alt_iter) if a != f else [] for a, f in zip(alt, flat)]
            sizes = [len(labs) for labs in batch[col]]
            out[f"{key}_ids"], out[f"{key}_alt"] = [], []
            start = 0
            for n in sizes:
                out[f"{key}_ids"].append(ids[start:start + n])
                out[f"{key}_alt"].append(alt_full[start:start + n])
                start += n
        out["length"] = [len(t) + 2 + sum(len(x) + 1 for x in p + n)
                         for t, p, n in zip(text_ids, out["pos_ids"], out["neg_ids"])]
        return out

    split = split.filter(lambda row: bool(row["text"] and row["text"].strip()) and bool(row["labels"]))
    return split.map(encode, batched=True, batch_size=1000, num_proc=num_proc, desc="pre-tokenize")


# -- 3. batches -------------------------------------------------------------------------------------
class LabelCollator:
    """Per-step label sampling and layout from pre-tokenized ids; returns model inputs + ``labels`` targets."""

    def __init__(self, tokenizer: GliZNetTokenizer, config: TrainConfig, model_config: GliZNetConfig,
                 train: bool = True, label_priors: dict[str, torch.Tensor] | None = None):
        self.tokenizer = tokenizer
        self.config = config
        self.model_config = model_config
        self.train = train
        self.label_priors = label_priors  # label -> initial-backbone vector (PriorAnchor); rows carry prior_text

    def _variant(self, ids, alt):
        p = self.config.underscore_to_space_prob
        return alt if (self.train and alt and random.random() < p) else ids

    def __call__(self, features: list[dict]) -> dict:
        cfg, mcfg = self.config, self.model_config
        rows, targets, names = [], [], []
        for index, feat in enumerate(features):
            own = set(feat["labels"]) | set(feat["not_labels"])
            cands = [(self._variant(i, a), 1.0, name) for i, a, name in zip(feat["pos_ids"], feat["pos_alt"], feat["labels"])]
            cands += [(self._variant(i, a), 0.0, name)
                      for i, a, name in zip(feat["neg_ids"], feat["neg_alt"], feat["not_labels"])]
            if self.train and cfg.extra_negatives > 0 and len(features) > 1:
                pool = [(ids, lab) for j, other in enumerate(features) if j != index
                        for ids, lab in zip(other["pos_ids"] + other["neg_ids"], other["labels"] + other["not_labels"])
                        if lab not in own]
                seen = set()
                extra = []
                for ids, lab in random.sample(pool, min(len(pool), cfg.extra_negatives * 2)):
                    if lab not in seen and len(extra) < cfg.extra_negatives:
                        seen.add(lab)
                        extra.append((ids, 0.0, lab))
                cands += extra
            if self.train and cfg.label_shuffle:
                random.shuffle(cands)
            cands = cands[: cfg.max_labels_per_sample] if len(cands) > cfg.max_labels_per_sample else cands
            if not any(c[1] for c in cands):  # the cap dropped every positive: put one back
                positives = [(self._variant(i, a), 1.0, name)
                             for i, a, name in zip(feat["pos_ids"], feat["pos_alt"], feat["labels"])]
                cands[random.randrange(len(cands))] = random.choice(positives)
            row = self.tokenizer.assemble(feat["text_ids"], [c[0] for c in cands], mcfg.max_length,
                                          mcfg.text_budget, mcfg.min_text_tokens)
            rows.append(row)
            targets.append([cands[k][1] for k in row.kept])
            names.append([cands[k][2] for k in row.kept])
        batch = self.tokenizer.pad(rows)
        width = max(1, max(len(t) for t in targets))
        batch["labels"] = torch.tensor([t + [-100.0] * (width - len(t)) for t in targets], dtype=torch.float32)
        if self.train and self.label_priors is not None:
            batch["prior_text"] = torch.tensor([feat["prior_text"] for feat in features], dtype=torch.float32)
            prior = torch.zeros(len(features), width, batch["prior_text"].shape[1])
            for b, row_names in enumerate(names):
                if row_names:
                    prior[b, :len(row_names)] = torch.stack([self.label_priors[n] for n in row_names])
            batch["prior_labels"] = prior
        batch.pop("kept_labels")
        batch.pop("dropped_labels")
        return batch


# -- 4. the Trainer ---------------------------------------------------------------------------------
def _trainer_class():
    from transformers import Trainer

    class GliZNetTrainer(Trainer):
        """``Trainer`` with GliZNet's loss, a separate head learning rate and a non-padding token count."""

        head_lr: float = 1e-3
        tokens_seen: int = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                tokens = int(inputs["attention_mask"].sum())
                self.tokens_seen += tokens
                self.step_clock.add_batch(tuple(inputs["input_ids"].shape) + (tokens,))
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

        def create_optimizer(self, model=None):
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

    return GliZNetTrainer


def _adamw(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Fused AdamW (one kernel over all parameters; on CPU 8x faster than the default), else the default."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device/dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr)


def _step_clock_class():
    from transformers import TrainerCallback

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

    return StepClock


def _auto_bf16(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def prior_vectors(split, backbone: str | None, model_config: GliZNetConfig):
    """``PriorAnchor`` targets, computed once with the initial backbone (the embedding baseline's encoding):
    a ``prior_text`` column on ``split`` and a ``{label: vector}`` dict for every label it holds."""
    from gliznet.embeddings import Embedder

    if model_config.projection_dim:
        raise ValueError("anchor_weight > 0 needs projection_dim=None (the anchor compares GliZNet's vectors with the "
                         "backbone's own): set anchor_weight=0 (--anchor-weight 0) to train projections")
    embedder = Embedder(backbone, max_length=model_config.max_length)
    names = sorted({lab for col in ("labels", "not_labels") for labs in split[col] for lab in labs})
    label_vecs = embedder.encode(names)
    text_vecs = embedder.encode(list(split["text"]))
    split = split.add_column("prior_text", [v.tolist() for v in text_vecs])
    return split, dict(zip(names, torch.from_numpy(label_vecs).unbind()))


def freeze_bottom(model: GliZNet, layers: int) -> None:
    """Freeze the backbone's embeddings and its ``layers`` bottom encoder layers (-1: the whole backbone).

    Lower layers carry the general-purpose features the zero-shot prior relies on; training only the top
    keeps them (the head - scales, temperatures, projections - always trains)."""
    if layers == 0:
        return
    if layers == -1:
        model.backbone.requires_grad_(False)
        return
    stacks = [m for name, m in model.backbone.named_modules()
              if isinstance(m, torch.nn.ModuleList) and name.split(".")[-1] in ("layer", "layers")]
    if layers < -1:
        raise ValueError(f"frozen_layers={layers}: use -1 (whole backbone), 0 (none) or a count of bottom layers")
    if not stacks:
        raise ValueError(f"frozen_layers={layers}: use -1 (whole backbone), 0 (none) or a count of bottom layers; "
                         f"{type(model.backbone).__name__} has no encoder layer list, use -1 or 0")
    stack = stacks[0]
    if layers > len(stack):
        raise ValueError(f"frozen_layers={layers} but the backbone has {len(stack)} layers: use at most {len(stack)}, or -1")
    model.backbone.get_input_embeddings().requires_grad_(False)
    for module in model.backbone.modules():  # position / token-type embeddings and their LayerNorm
        if type(module).__name__.endswith("Embeddings"):
            module.requires_grad_(False)
    for layer in stack[:layers]:
        layer.requires_grad_(False)


# -- 5. entry point ---------------------------------------------------------------------------------
def train(data_dir: str, backbone: str | None, out_dir: str, config: TrainConfig | None = None,
          resume: bool = False) -> dict:
    """Train, evaluate on ``test`` during training, save ``OUT/model``; returns a summary dict."""
    from transformers import TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    config = config or TrainConfig()
    dataset = load_triplets(data_dir)
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)
    set_seed(config.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_config = GliZNetConfig(text_pooling=config.text_pooling, label_pooling=config.label_pooling,
                                 label_attention=config.label_attention, similarity=config.similarity,
                                 projection_dim=config.projection_dim, max_length=config.max_length)
    if config.anchor_weight < 0:
        raise ValueError(f"anchor_weight={config.anchor_weight} must be >= 0: 0 turns the PriorAnchor loss off")
    model_config.anchor_weight = config.anchor_weight
    for key, value in config.loss_weights.items():
        if not hasattr(model_config, key):
            raise ValueError(f"loss_weights key {key!r} is unknown: use fields of GliZNetConfig such as margin_weight")
        setattr(model_config, key, value)
    model = GliZNet.from_backbone(backbone, model_config)
    tokenizer = model.tokenizer
    init_weights = copy_state(model) if check_alpha(config.wise_alpha) < 1.0 else None
    freeze_bottom(model, config.frozen_layers)

    train_split, test_split = dataset["train"], dataset["test"]
    keep = config.max_train_samples
    if config.max_steps > 0:  # pre-tokenize only the rows max_steps can reach
        needed = config.max_steps * config.batch_size * config.grad_accum * int(os.environ.get("WORLD_SIZE", "1"))
        keep = min(keep or needed, needed)
    if keep:
        train_split = train_split.shuffle(seed=config.seed).select(range(min(keep, len(train_split))))
    if config.max_eval_samples:
        test_split = test_split.shuffle(seed=config.seed).select(range(min(config.max_eval_samples, len(test_split))))
    label_priors = None
    if model.config.anchor_weight > 0:
        train_split, label_priors = prior_vectors(train_split, backbone, model.config)
    train_split = pretokenize(train_split, tokenizer, config.max_length)
    test_split = pretokenize(test_split, tokenizer, config.max_length)
    if len(train_split) == 0:
        raise ValueError(f"{data_dir}/triplet train split has no usable rows (non-empty text and >= 1 label): add data")

    on_gpu = torch.cuda.is_available()
    workers = config.num_workers if config.num_workers is not None else (2 if on_gpu else 0)
    do_eval = len(test_split) > 0
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy="steps" if do_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        seed=config.seed,
        bf16=_auto_bf16(config.bf16),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length",
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_pin_memory=on_gpu,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,
        report_to=[],
        disable_tqdm=True,
    ) if _has_sampling_strategy() else _legacy_args(out, config, workers, do_eval)

    trainer_cls = _trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_split,
        eval_dataset=test_split if do_eval else None,
        data_collator=LabelCollator(tokenizer, config, model_config, train=True, label_priors=label_priors),
    )
    clock = trainer.step_clock = _step_clock_class()()
    trainer.add_callback(clock)
    trainer.head_lr = config.head_lr
    if do_eval:  # eval batches: no random label sampling
        eval_collator = LabelCollator(tokenizer, config, model_config, train=False)
        trainer.get_eval_dataloader = _eval_loader(trainer, test_split, eval_collator)

    checkpoint = get_last_checkpoint(str(out / "checkpoints")) if resume and (out / "checkpoints").is_dir() else None
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    wall = time.perf_counter() - started
    elapsed = clock.train_seconds  # training steps only: evaluation and checkpoint saves excluded
    eval_metrics = next((h for h in reversed(trainer.state.log_history) if "eval_loss" in h), None)
    if eval_metrics is None:  # the Trainer did not evaluate at the end: do it once
        eval_metrics = trainer.evaluate() if do_eval else {}
    if init_weights is not None:  # WiSE-FT: keep part of the pretrained prior (see gliznet.interpolate)
        interpolate(model, config.wise_alpha, init_weights)
        model.config.wise_alpha = config.wise_alpha
    model_dir = out / "model"
    positions = getattr(model.backbone.config, "max_position_embeddings", None) or config.inference_max_length
    model.config.max_length = max(config.max_length, min(config.inference_max_length, positions))
    model.save_pretrained(model_dir)
    summary = {
        "model_dir": str(model_dir),
        "train_loss": float(result.training_loss),
        "steps": int(result.global_step),
        "tokens_per_s": trainer.tokens_seen / elapsed if elapsed > 0 else 0.0,
        "train_seconds": elapsed,
        "wall_seconds": wall,  # trainer.train() as a whole, evaluation and saves included
        "eval_loss": float(eval_metrics["eval_loss"]) if "eval_loss" in eval_metrics else None,
        "resumed_from": checkpoint,
        "batch_shapes": [list(x) for x in clock.batch_shapes],  # (batch, padded length, tokens), first 1000 micro-batches
        "step_times": clock.steps,  # [seconds, tokens] per optimizer step (the first 1000)
        "config": asdict(config),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _has_sampling_strategy() -> bool:
    import dataclasses

    from transformers import TrainingArguments

    return "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}


def _legacy_args(out: Path, config: TrainConfig, workers: int, do_eval: bool):
    """transformers 4.x spelling of the same arguments (group_by_length, warmup_ratio)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr, weight_decay=config.weight_decay, num_train_epochs=config.epochs,
        max_steps=config.max_steps, warmup_ratio=config.warmup_ratio,
        eval_strategy="steps" if do_eval else "no", eval_steps=config.eval_steps, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=2, logging_steps=config.logging_steps, seed=config.seed,
        bf16=_auto_bf16(config.bf16), group_by_length=config.group_by_length, length_column_name="length",
        dataloader_num_workers=workers, dataloader_pin_memory=torch.cuda.is_available(), remove_unused_columns=False, label_names=["labels"],
        prediction_loss_only=True, report_to=[], disable_tqdm=True)


def _eval_loader(trainer, dataset, collator):
    from torch.utils.data import DataLoader

    def get_eval_dataloader(eval_dataset=None):
        return trainer.accelerator.prepare(DataLoader(eval_dataset if eval_dataset is not None else dataset,
                                                      batch_size=trainer.args.per_device_eval_batch_size,
                                                      collate_fn=collator, shuffle=False))

    return get_eval_dataloader
