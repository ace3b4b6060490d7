"""Texts/s of GliZNet (label vectors once) vs its pass-by-pass path, the embedding baseline and a per-label cross-encoder.

For each label count n (default 2, 10, 20, 50, 100; try 1000,10000), end to end including tokenization:
* GliZNet: ``model.score`` - with isolated attention each text is encoded once, alone, and compared with the
  cached label vectors (each label encoded once, ``gliznet.modeling.predict``); "first call" is the same with
  an empty cache (the labels encoded too), the texts/s columns are warm (the labels cached, as a served model is);
* passes: the same weights scored as before the cache, ``score_labels(..., cache=False)``: a pass per 32 labels
  (the default ``max_labels_per_pass``), the text repeated in every pass;
* embedding: ``EmbeddingBaseline`` (mean-pooled backbone vectors, label vectors cached) on the same texts;
* cross-encoder: n sequences per text, ``[CLS] text [SEP] label [SEP]``, backbone + a linear head on [CLS];
  with it the backbone-only ideal ratio (the same padded shapes as ``[CLS] text [SEP]`` per text vs the pairs,
  pre-tokenized, plain forward passes) and the cost of label-conditioned text pooling (``text_pooling="label"``, same weights, pass by pass).
  Above ``--cross-max`` labels (default 100) those three are skipped (n x texts sequences take minutes on a
  CPU), and above 1000 labels the pass-by-pass path is timed once, without warm-up.
Texts are ~64 tokens, labels 3 words.  Prints medians of --repeats runs.

    python bench/speed.py --device cpu        # ~2-3 min on 2 idle cores
    python bench/speed.py --device cpu --labels 10,50,1000,10000 --texts 16 --repeats 3
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

from gliznet.evaluation.baselines import EmbeddingBaseline  # noqa: E402
from gliznet.modeling.config import GliZNetConfig  # noqa: E402
from gliznet.modeling.model import GliZNet  # noqa: E402
from gliznet.modeling.predict import score_labels  # noqa: E402

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


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed(fn, repeats: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()
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
    parser.add_argument("--cross-max", type=int, default=100,
                        help="time the cross-encoder, ideal and label pooling only up to this many labels")
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

    embedding = EmbeddingBaseline(backbone=args.backbone, device=args.device)

    def passes(labels):  # today's path before the label-vector cache, on the same weights
        return score_labels(model, *model.label_text.apply(texts, labels), batch_size=text_batch, cache=False)

    def cold(fn, clear) -> float:
        clear()
        return once(fn)

    print(f"device={args.device} backbone={model.config.backbone} texts={n_texts} repeats={args.repeats} "
          f"threads={torch.get_num_threads()}")
    header = (f"{'labels':>6} | {'GliZNet texts/s':>15} | {'first call s':>12} | {'passes texts/s':>14} | "
              f"{'vs passes':>9} | {'embedding texts/s':>17} | {'emb first s':>11} | {'GliZNet/emb':>11} | "
              f"{'cross-enc texts/s':>17} | {'speed-up':>8} | {'ideal':>6} | {'% of ideal':>10} | "
              f"{'label-pool texts/s':>18} | {'label-pool cost':>15}")
    print(header)
    print("-" * len(header))
    for n in counts:
        labels = make_labels(n)
        gliznet = lambda: model.score(texts, labels, batch_size=text_batch)  # noqa: E731
        c_gz = cold(gliznet, lambda: setattr(model, "label_vector_cache", None))
        t_gz = timed(gliznet, args.repeats)
        t_pass = timed(lambda: passes(labels), 1 if n > 1000 else args.repeats, warm_up=n <= 1000)
        c_emb = cold(lambda: embedding.score(texts, labels), embedding._label_vectors.clear)
        t_emb = timed(lambda: embedding.score(texts, labels), args.repeats)
        row = (f"{n:>6} | {n_texts / t_gz:>15.1f} | {c_gz:>12.2f} | {n_texts / t_pass:>14.1f} | "
               f"{t_pass / t_gz:>8.1f}x | {n_texts / t_emb:>17.1f} | {c_emb:>11.2f} | {t_emb / t_gz:>10.2f}x")
        if n > args.cross_max:
            print(f"{row} | skipped: {n_texts * n} cross-encoder pairs (--cross-max {args.cross_max})", flush=True)
            continue
        t_ce = timed(lambda: cross_encoder(labels), args.repeats)
        t_lp = timed(lambda: pooled.score(texts, labels, batch_size=text_batch, max_labels_per_pass=n), args.repeats)
        # ideal: identical padded shapes, no tokenization, plain attention
        one_len = len(tok.encode_pieces(texts[:1])[0]) + 2  # [CLS] text [SEP]: GliZNet's pass with cached labels
        pair_len = len(tok.hf(texts[0], labels[0])["input_ids"])
        gz_shapes = [torch.randint(1000, 2000, (min(text_batch, n_texts - s), one_len), device=args.device)
                     for s in range(0, n_texts, text_batch)]
        total_pairs = n_texts * n
        ce_shapes = [torch.randint(1000, 2000, (min(pair_batch, total_pairs - s), pair_len), device=args.device)
                     for s in range(0, total_pairs, pair_batch)]
        i_gz = timed(lambda: backbone_only(gz_shapes), args.repeats)
        i_ce = timed(lambda: backbone_only(ce_shapes), args.repeats)
        speedup, ideal = t_ce / t_gz, i_ce / i_gz
        print(f"{row} | {n_texts / t_ce:>17.1f} | {speedup:>7.2f}x | {ideal:>5.2f}x | {100 * speedup / ideal:>9.0f}% | "
              f"{n_texts / t_lp:>18.1f} | {t_lp / t_gz:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
