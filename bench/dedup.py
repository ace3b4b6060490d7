"""Benchmark of gliznet.curation.dedup.near_duplicates on synthetic short texts with planted duplicates.

    python bench/dedup.py [--sizes 10000 100000] [--threshold 90] [--seed 0]

Per size it generates short texts (6-14 pseudo-words, ~40-110 chars) and plants, among them:
  * near-duplicate pairs: a copy of an earlier text with 1-2 character typos or two adjacent words swapped;
  * negation pairs: a copy of an earlier text with "not" / "never" / "no" inserted (must never be merged).
Each size runs in a fresh subprocess so peak memory (ru_maxrss) belongs to that size alone.
Printed per size: wall and CPU time (all threads) of ``near_duplicates``, peak RSS and its growth during dedup, recall of the
planted near-duplicate pairs, negation pairs wrongly merged, and other (unplanted) pairs flagged.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SYLLABLES = ["ka", "lo", "mi", "ter", "san", "po", "ril", "ve", "dun", "ho", "bra", "ne", "tis", "gu", "om",
             "fe", "lar", "chi", "wen", "ze", "qua", "ry", "mo", "sel", "tan", "pi", "dro", "ex", "ul", "ba"]
NEGATIONS = ["not", "never", "no"]


def make_vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(chars))
        op = rng.choice(["sub", "del", "ins"])
        letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
        if op == "sub":
            chars[i] = letter
        elif op == "del" and len(chars) > 1:
            del chars[i]
        else:
            chars.insert(i, letter)
    return "".join(chars)


def swap(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def negate(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    words.insert(rng.randrange(1, len(words)), rng.choice(NEGATIONS))
    return " ".join(words)


def make_corpus(n: int, seed: int) -> tuple[list[str], set[tuple[int, int]], set[tuple[int, int]]]:
    """``n`` texts; planted near-dup pairs (5% of n) and negation pairs (2% of n), as (original, copy)."""
    rng = random.Random(seed)
    vocab = make_vocabulary(rng)
    texts: list[str] = []
    dup_pairs: set[tuple[int, int]] = set()
    neg_pairs: set[tuple[int, int]] = set()
    base: list[int] = []          # indices of unplanted texts, eligible as originals
    for _ in range(n):
        roll = rng.random()
        if base and roll < 0.05:
            original = rng.choice(base)
            texts.append((typo if rng.random() < 0.6 else swap)(rng, texts[original]))
            dup_pairs.add((original, len(texts) - 1))
        elif base and roll < 0.07:
            original = rng.choice(base)
            texts.append(negate(rng, texts[original]))
            neg_pairs.add((original, len(texts) - 1))
        else:
            texts.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(6, 14))))
            base.append(len(texts) - 1)
    return texts, dup_pairs, neg_pairs


def negation_count(text: str) -> int:
    return sum(1 for word in text.split(" ") if word in NEGATIONS)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def run_one(n: int, threshold: float, seed: int) -> dict:
    from gliznet.curation.dedup import near_duplicates

    texts, dup_pairs, neg_pairs = make_corpus(n, seed)
    before = rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    pairs = near_duplicates(texts, threshold=threshold)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = {(kept, dup) for kept, dup, _ in pairs}
    flagged = {dup for _, dup, _ in pairs}
    planted_dups = {dup for _, dup in dup_pairs}
    return {
        "texts": n,
        "wall_s": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(peak, 1),
        "rss_growth_mib": round(peak - before, 1),
        "planted_dup_pairs": len(dup_pairs),
        "recall": round(sum(1 for p in dup_pairs if p in found) / max(1, len(dup_pairs)), 4),
        "negation_pairs": len(neg_pairs),
        # independent of gliznet's cue list: any merged pair whose texts differ in negation words
        "negation_merged": sum(1 for kept, dup in found if negation_count(texts[kept]) != negation_count(texts[dup]))
        + sum(1 for p in neg_pairs if p in found),
        "other_flagged": len(flagged - planted_dups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--threshold", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # child mode: run one size, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.threshold, args.seed)))
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--threshold", str(args.threshold),
                              "--seed", str(args.seed)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    columns = list(rows[0])
    print(f"near_duplicates(threshold={args.threshold}) on synthetic short texts, seed {args.seed}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    if any(row["negation_merged"] for row in rows):
        sys.exit("FAIL: a negation pair was merged")


if __name__ == "__main__":
    main()
