"""Training tokens/s of ``gliznet.train.train`` vs the raw backbone's forward+backward on the same batches.

Builds a dataset folder from ``../shared/train`` (a sample), runs ``train()`` for ``--steps`` steps without
eval or checkpoints, then times the bare backbone (forward + backward, no head, no data loading) on the
exact batch shapes ``train()`` saw.  Both count non-padding tokens.  Target: >= 70 %.

    python bench/train_throughput.py --device cpu   # ~1-2 min on 2 cores
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

from gliznet.model import GliZNet  # noqa: E402
from gliznet.train import TrainConfig, train  # noqa: E402

SHARED_TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "train"


def build_dataset(root: Path, rows: int) -> None:
    from datasets import Dataset, DatasetDict

    records = []
    for path in sorted(glob.glob(str(SHARED_TRAIN / "*.jsonl"))):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    if not records:
        raise SystemExit(f"no training data under {SHARED_TRAIN}: this bench needs ../shared/train/*.jsonl")
    random.Random(0).shuffle(records)
    records = records[:rows]
    cols = {k: [r[k] for r in records] for k in ("text", "labels", "not_labels")}
    data = Dataset.from_dict(cols)
    DatasetDict({"train": data, "test": data.select(range(min(64, len(data))))}).save_to_disk(str(root / "triplet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 8 cpu, 300 cuda)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 cpu, 64 cuda")
    parser.add_argument("--label-attention", default="isolated", choices=["isolated", "full"])
    args = parser.parse_args()
    cpu = args.device == "cpu"
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    steps = args.steps or (8 if cpu else 300)
    batch = args.batch_size or (8 if cpu else 64)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_dataset(root / "data", rows=steps * batch)
        config = TrainConfig(max_steps=steps, batch_size=batch, eval_steps=10**9, save_steps=10**9,
                             logging_steps=10**9, max_eval_samples=8, warmup_ratio=0.0, label_attention=args.label_attention)
        summary = train(str(root / "data"), None, str(root / "run"), config)
    shapes = summary["batch_shapes"]
    pipeline = summary["tokens_per_s"]

    model = GliZNet.from_backbone(None).to(args.device).train()
    backbone = model.backbone
    use_bf16 = args.device == "cuda" and torch.cuda.is_bf16_supported()

    def raw_step(b, t):
        ids = torch.randint(1000, 2000, (b, t), device=args.device)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=use_bf16):
            out = backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        out.float().mean().backward()
        backbone.zero_grad(set_to_none=True)

    raw_step(*shapes[0][:2])  # warm-up
    start = time.perf_counter()
    for b, t, _ in shapes:
        raw_step(b, t)
    if args.device == "cuda":
        torch.cuda.synchronize()
    raw = sum(s[2] for s in shapes) / (time.perf_counter() - start)
    padded = sum(s[0] * s[1] for s in shapes)
    print(f"device={args.device} steps={summary['steps']} batch={batch} label_attention={args.label_attention} "
          f"threads={torch.get_num_threads()} padding={1 - sum(s[2] for s in shapes) / padded:.1%}")
    print(f"{'':<34} {'tokens/s':>10}")
    print(f"{'train() pipeline':<34} {pipeline:>10.0f}")
    print(f"{'raw backbone forward+backward':<34} {raw:>10.0f}")
    print(f"{'ratio':<34} {100 * pipeline / raw:>9.0f}%")


if __name__ == "__main__":
    main()
