"""Training tokens/s of ``gliznet.training.trainer.train`` vs the raw backbone's forward+backward on the same batches.

Fair by construction:

* same batch shapes - ``train()`` reports the (batch, padded length, non-padding tokens) of every step; the raw
  backbone (``AutoModel``, no GliZNet head, no data loading, no optimizer, an all-ones 2-D mask: its fastest
  path) is timed on exactly those shapes, and both sides count non-padding tokens;
* warm-up on both sides - the first ``--warmup`` steps are left out of both measurements (the raw side runs
  them untimed first);
* no evaluation or checkpoint saves in the training figure - ``train()``'s step clock excludes them;
* same process, same threads; the raw backbone is timed twice, right after ``train()``, and the ratio uses
  the mean (two runs far apart mean the machine's load changed: rerun, or use ``--threads 1`` on a CPU shared
  with other busy processes)

Target: ``train()`` >= 70 % of the raw backbone.

    python bench/train_throughput.py --device cpu              # ~2 min on 2 cores
    python bench/train_throughput.py --device cpu --threads 1  # a CPU shared with other busy processes
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gliznet.modeling.config import GliZNetConfig
from gliznet.training.config import TrainConfig
from gliznet.training.trainer import train

SHARED_TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "train"


def build_dataset(root: Path, rows: int) -> None:
    """A dataset folder (``triplet`` DatasetDict) from a shuffled sample of ``../shared/train/*.jsonl``."""
    from datasets import Dataset, DatasetDict

    records = []
    for path in sorted(glob.glob(str(SHARED_TRAIN / "*.jsonl"))):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    if not records:
        raise SystemExit(f"no training data under {SHARED_TRAIN}: pass --data DIR or provide ../shared/train/*.jsonl")
    random.Random(0).shuffle(records)
    records = records[:rows]
    cols = {k: [r[k] for r in records] for k in ("text", "labels", "not_labels")}
    data = Dataset.from_dict(cols)
    DatasetDict({"train": data, "test": data.select(range(min(64, len(data))))}).save_to_disk(str(root / "triplet"))


def raw_backbone_tokens_per_s(backbone, shapes: list, warmup: list, device: str) -> float:
    """Non-padding tokens/s of forward+backward of the bare backbone on ``shapes`` (after ``warmup`` untimed)."""
    use_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()

    def step(b, t):
        ids = torch.randint(1000, 2000, (b, t), device=device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=use_bf16):
            out = backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        out.float().mean().backward()
        backbone.zero_grad(set_to_none=True)

    for b, t, _ in warmup or shapes[:1]:
        step(b, t)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for b, t, _ in shapes:
        step(b, t)
    if device == "cuda":
        torch.cuda.synchronize()
    return sum(s[2] for s in shapes) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default=None, help="a dataset folder (default: a sample of ../shared/train)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 12 cpu, 300 cuda)")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of both measurements")
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 cpu, 64 cuda")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-labels", type=int, default=12, help="TrainConfig.max_labels_per_sample")
    parser.add_argument("--extra-negatives", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: torch's)")
    parser.add_argument("--label-attention", default=GliZNetConfig.label_attention, choices=["isolated", "full"])
    args = parser.parse_args()
    cpu = args.device == "cpu"
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        if args.threads:
            torch.set_num_threads(args.threads)
    steps = args.steps or (12 if cpu else 300)
    batch = args.batch_size or (16 if cpu else 64)
    total = steps + args.warmup

    from transformers import AutoModel

    from gliznet.modeling.backbone import default_backbone_path

    backbone = AutoModel.from_pretrained(default_backbone_path()).to(args.device).train()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = args.data
        if data is None:
            build_dataset(root / "data", rows=total * batch)
            data = str(root / "data")
        config = TrainConfig(max_steps=total, batch_size=batch, max_train_samples=total * batch,
                             max_length=args.max_length, max_labels_per_sample=args.max_labels,
                             extra_negatives=args.extra_negatives, eval_steps=10**9, save_steps=10**9,
                             logging_steps=10**9, max_eval_samples=8, warmup_ratio=0.0,
                             model=GliZNetConfig(label_attention=args.label_attention), cpu_threads=args.threads)
        summary = train(data, None, str(root / "run"), config)
    shapes = [tuple(s) for s in summary["batch_shapes"]]
    timed_steps = summary["step_times"][args.warmup:]
    timed_shapes = shapes[args.warmup:]  # grad_accum = 1: one micro-batch per step
    pipeline = sum(tokens for _, tokens in timed_steps) / sum(sec for sec, _ in timed_steps)
    raw_1 = raw_backbone_tokens_per_s(backbone, timed_shapes, shapes[:args.warmup], args.device)
    raw_2 = raw_backbone_tokens_per_s(backbone, timed_shapes, shapes[:args.warmup], args.device)
    raw = (raw_1 + raw_2) / 2
    padded = sum(s[0] * s[1] for s in timed_shapes)
    print(f"device={args.device} timed_steps={len(timed_steps)} warmup={args.warmup} batch={batch} "
          f"max_length={args.max_length} label_attention={args.label_attention} threads={torch.get_num_threads()} "
          f"mean_padded_len={padded / max(1, sum(s[0] for s in timed_shapes)):.0f} "
          f"padding={1 - sum(s[2] for s in timed_shapes) / max(1, padded):.1%}")
    print(f"{'':<40} {'tokens/s':>10}")
    print(f"{'train() pipeline (steps after warm-up)':<40} {pipeline:>10.0f}")
    print(f"{'train() as reported (all steps)':<40} {summary['tokens_per_s']:>10.0f}")
    print(f"{'raw backbone fwd+bwd (run 1)':<40} {raw_1:>10.0f}")
    print(f"{'raw backbone fwd+bwd (run 2)':<40} {raw_2:>10.0f}")
    print(f"{'ratio train() / raw mean':<40} {100 * pipeline / raw:>9.0f}%")


if __name__ == "__main__":
    main()
