"""Zero-shot macro-F1 of GliZNet (at several WiSE-FT alphas) next to the embedding-similarity baseline.

Trains a model on a dataset folder (or takes ``--model``), then scores every real eval set (``../shared/eval``
or ``$GLIZNET_EVAL_DIR``) on the same seeded subsample with the embedding baseline and with the model
interpolated at each ``--alphas`` value (``gliznet.interpolate``: 1 = fine-tuned, 0 = initial weights).
Macro-F1 is argmax for single-label sets, best threshold for multi-label ones (``gliznet.metrics``).
Prints one markdown table and writes it with the raw numbers to ``OUT/accuracy.{md,json}``.

    python bench/accuracy.py --data DIR --out runs/acc --max-steps 450 --limit 200      # ~25 min on 2 cores
    python bench/accuracy.py --data DIR --out runs/acc0 --anchor-weight 0 --lr 1.5e-5   # without the anchor
    python bench/accuracy.py --model runs/acc/train/model --out runs/acc --alphas 1,0.5,0.25
    python bench/accuracy.py --data DIR --out runs/acc --text-pooling cls               # CLS vs mean

The eval sets are for measuring only: never pass them (or a dataset built from them) as ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gliznet.baselines import EmbeddingBaseline  # noqa: E402
from gliznet.evaluate import default_eval_paths, evaluate_suite  # noqa: E402
from gliznet.interpolate import check_alpha, copy_state, interpolate_state, rebuilt_initial_state  # noqa: E402
from gliznet.losses import LossConfig  # noqa: E402
from gliznet.model import GliZNet, GliZNetConfig  # noqa: E402
from gliznet.train import TrainConfig, train  # noqa: E402

DEFAULTS = TrainConfig()  # the library recipe; the options below override only what the measurement fixes


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset folder to train on (from `gliznet import` / `gliznet generate`)")
    p.add_argument("--model", help="a trained GliZNet folder instead of training")
    p.add_argument("--out", required=True)
    p.add_argument("--alphas", default="1,0.5,0.25", help="WiSE-FT weights of the fine-tuned model to evaluate")
    p.add_argument("--limit", type=int, default=200, help="texts per eval set (seeded, stratified; 0 = all)")
    p.add_argument("--max-steps", type=int, default=450)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=DEFAULTS.lr)
    p.add_argument("--anchor-weight", type=float, default=DEFAULTS.loss.anchor_weight, help="PriorAnchor loss weight (0: off)")
    p.add_argument("--frozen-layers", type=int, default=DEFAULTS.frozen_layers)
    p.add_argument("--max-length", type=int, default=128, help="tokens per training sequence (the measured runs: 128)")
    p.add_argument("--text-pooling", choices=("mean", "cls"), default=DEFAULTS.model.text_pooling)
    p.add_argument("--threads", type=int, default=None, help="torch threads (1 on a busy shared CPU)")
    args = p.parse_args()
    if bool(args.data) == bool(args.model):
        p.error("pass exactly one of --data (train first) or --model (an existing GliZNet folder)")
    return args


def headline(summary: dict) -> dict[str, float]:
    row = {s["data"]: s["macro_f1"] for s in summary["sets"]}
    row["average"] = summary["average_macro_f1"]
    return row


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    alphas = [check_alpha(float(a), "--alphas") for a in args.alphas.split(",")]
    limit = args.limit or None
    paths = default_eval_paths()
    if args.data:
        config = TrainConfig(model=GliZNetConfig(text_pooling=args.text_pooling),
                             loss=LossConfig(anchor_weight=args.anchor_weight),
                             lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps, max_length=args.max_length,
                             max_labels_per_sample=16, warmup_ratio=0.05, eval_steps=10**6, save_steps=10**6,
                             max_eval_samples=200, cpu_threads=args.threads, frozen_layers=args.frozen_layers)
        summary = train(args.data, None, str(out / "train"), config)
        model_dir = summary["model_dir"]
        print(f"trained {summary['steps']} steps in {summary['train_seconds']:.0f} s ({summary['tokens_per_s']:.0f} tok/s)")
    else:
        model_dir = args.model
    model = GliZNet.from_pretrained(model_dir)
    tuned = copy_state(model)
    init = rebuilt_initial_state(model)

    columns: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    columns["embedding baseline"] = headline(evaluate_suite(EmbeddingBaseline(), paths, limit=limit))
    for alpha in alphas:
        model.load_state_dict(interpolate_state(init, tuned, alpha))
        columns[f"GliZNet a={alpha:g}"] = headline(evaluate_suite(model.eval(), paths, limit=limit))
        print(f"a={alpha:g}: average {columns[f'GliZNet a={alpha:g}']['average']:.4f}", flush=True)

    names = list(columns)
    sets = list(columns[names[0]])
    lines = [f"model `{model_dir}` ({model.config.text_pooling} text vector); {limit or 'all'} texts per set; "
             f"macro-F1 (argmax single-label, best threshold multi-label)", "",
             "| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for s in sets:
        cells = [f"{columns[n][s]:.4f}" for n in names]
        if s == "average":
            cells = [f"**{c}**" for c in cells]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    base = columns["embedding baseline"]["average"]
    lines += ["", "GliZNet average - baseline average: " + ", ".join(
        f"{n.removeprefix('GliZNet ')} {columns[n]['average'] - base:+.4f}" for n in names[1:])]
    table = "\n".join(lines)
    print(table)
    (out / "accuracy.md").write_text(table + "\n")
    (out / "accuracy.json").write_text(json.dumps({"model": model_dir, "limit": limit, "columns": columns,
                                                    "seconds": time.perf_counter() - started}, indent=2))


if __name__ == "__main__":
    main()
