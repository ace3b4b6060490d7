"""Texts/s of GliZNet's one pass vs a per-label cross-encoder on the same backbone.

For each label count n (2, 10, 20, 50, 100), end to end including tokenization:
* GliZNet: one sequence per text, ``[CLS] text [SEP] l_1 [LAB] ... l_n [LAB] [SEP]`` (``model.score``);
* cross-encoder: n sequences per text, ``[CLS] text [SEP] label [SEP]``, backbone + a linear head on [CLS].
Also the backbone-only ideal ratio: the same padded shapes, pre-tokenized, plain forward passes, and the cost of
label-conditioned text pooling (``text_pooling="label"``, same weights): its texts/s and mean/label time ratio.
Texts are ~64 tokens, labels 3 word pieces (4 tokens with [LAB] / [SEP]).  Prints medians of --repeats runs.

    python bench/speed.py --device cpu        # ~2-3 min on 2 idle cores
    python bench/speed.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.model import GliZNet

WORDS = ("market government team music health science travel energy school water police court film "
         "weather price game river city bank player party power road child food art money doctor "
         "storm election season album virus space oil trade language history border island army").split()


def make_texts(tokenizer, n: int, target: int = 64) -> list[str]:
    rng = random.Random(0)
    texts = []
    for _ in range(n):
        words = []
        while len(tokenizer.encode_pieces([" ".join(words)])[0]) < target:
            words.append(rng.choice(WORDS))
        texts.append(" ".join(words))
    return texts


def make_labels(n: int) -> list[str]:
    rng = random.Random(1)
    seen: list[str] = []
    while len(seen) < n:
        label = " ".join(rng.sample(WORDS, 3))
        if label not in seen:
            seen.append(label)
    return seen


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default=None, help="path or Hub id (default: the packaged MiniLM)")
    parser.add_argument("--texts", type=int, default=None, help="texts per measurement (default 4 cpu, 256 cuda)")
    parser.add_argument("--labels", default="2,10,20,50,100")
    parser.add_argument("--repeats", type=int, default=None, help="default 2 cpu, 5 cuda")
    parser.add_argument("--pair-batch", type=int, default=None, help="cross-encoder sequences per forward")
    args = parser.parse_args()
    cpu = args.device == "cpu"
    args.repeats = args.repeats or (2 if cpu else 5)
    n_texts = args.texts or (4 if cpu else 256)
    pair_batch = args.pair_batch or (128 if cpu else 1024)
    text_batch = n_texts if cpu else 64

    model = GliZNet.from_backbone(args.backbone, GliZNetConfig(label_attention="isolated")).to(args.device).eval()
    tok = model.tokenizer
    backbone = model.backbone
    pooled = GliZNet.from_backbone(args.backbone, GliZNetConfig(label_attention="isolated", text_pooling="label"))
    pooled.load_state_dict(model.state_dict(), strict=False)  # the same encoder; only the pool is new
    pooled = pooled.to(args.device).eval()
    head = torch.nn.Linear(backbone.config.hidden_size, 1).to(args.device)
    texts = make_texts(tok, n_texts)
    counts = [int(x) for x in args.labels.split(",")]

    def cross_encoder(labels):
        pairs = [(t, lab) for t in texts for lab in labels]
        out = []
        with torch.inference_mode():
            for start in range(0, len(pairs), pair_batch):
                chunk = pairs[start:start + pair_batch]
                enc = tok.hf([p[0] for p in chunk], [p[1] for p in chunk], padding=True, truncation=True,
                             max_length=512, return_tensors="pt").to(args.device)
                out.append(head(backbone(**enc).last_hidden_state[:, 0]).float().cpu())
        return torch.cat(out)

    def backbone_only(shape_batches):
        with torch.inference_mode():
            for ids in shape_batches:
                backbone(input_ids=ids, attention_mask=torch.ones_like(ids))

    print(f"device={args.device} backbone={model.config.backbone} texts={n_texts} repeats={args.repeats} "
          f"threads={torch.get_num_threads()}")
    header = (f"{'labels':>6} | {'GliZNet texts/s':>15} | {'cross-enc texts/s':>17} | {'speed-up':>8} | "
              f"{'ideal':>6} | {'% of ideal':>10} | {'label-pool texts/s':>18} | {'label-pool cost':>15}")
    print(header)
    print("-" * len(header))
    for n in counts:
        labels = make_labels(n)
        t_gz = timed(lambda: model.score(texts, labels, batch_size=text_batch, max_labels_per_pass=n), args.repeats)
        t_ce = timed(lambda: cross_encoder(labels), args.repeats)
        t_lp = timed(lambda: pooled.score(texts, labels, batch_size=text_batch, max_labels_per_pass=n), args.repeats)
        # ideal: identical padded shapes, no tokenization, plain attention
        one_len = len(tok([texts[0]], [labels])["input_ids"][0])
        pair_len = len(tok.hf(texts[0], labels[0])["input_ids"])
        gz_shapes = [torch.randint(1000, 2000, (min(text_batch, n_texts - s), one_len), device=args.device)
                     for s in range(0, n_texts, text_batch)]
        total_pairs = n_texts * n
        ce_shapes = [torch.randint(1000, 2000, (min(pair_batch, total_pairs - s), pair_len), device=args.device)
                     for s in range(0, total_pairs, pair_batch)]
        i_gz = timed(lambda: backbone_only(gz_shapes), args.repeats)
        i_ce = timed(lambda: backbone_only(ce_shapes), args.repeats)
        speedup, ideal = t_ce / t_gz, i_ce / i_gz
        print(f"{n:>6} | {n_texts / t_gz:>15.1f} | {n_texts / t_ce:>17.1f} | {speedup:>7.2f}x | {ideal:>5.2f}x | "
              f"{100 * speedup / ideal:>9.0f}% | {n_texts / t_lp:>18.1f} | {t_lp / t_gz:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
