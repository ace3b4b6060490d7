"""Levers tried on top of the aimed pick of ``bench/targeted.py`` (``--level``: 128 texts a label), judged on its choose sets.

    python bench/targeted_levers.py fusion                      # score mixes of the trained models (no training)
    python bench/targeted_levers.py train filter0.6,init        # retrain variants on the choose sets

``fusion`` reuses the models ``bench/targeted.py evaluate --steps default`` trained (``runs/targeted/<group>-128-
default``) and scores, batch-calibrated: the model (g), prototypes in the trained model's text space (tproto: cos of
the text to the centroid of the label's synthetic texts), and g + lam x (tproto | the frozen logistic regression's
probability | the frozen centroid cosine).  ``train`` trains the aimed recipe again with one change: ``filterP``
drops the synthetic texts that 5-fold logistic regression on frozen MiniLM vectors gives to another label with
probability >= P; ``init`` starts from ``--init-model`` (a model trained on ``../shared/train``); ``OPT=V[+OPT=V]``
adds ``gliznet train`` options (``anchor-weight=1``, ``anchor-weight=0+lr=2e-5``, ``wise-alpha=0.7``).  Results:
``bench/results/targeted-2026-12-06-levers.json``; bench/README.md, "Data aimed at a label set".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import targeted as T  # noqa: E402
from gliznet.evaluation.baselines import EmbeddingBaseline  # noqa: E402
from gliznet.evaluation.data import load_eval_data  # noqa: E402
from gliznet.evaluation.runs import score_all  # noqa: E402
from gliznet.modeling.model import GliZNet  # noqa: E402
from gliznet.modeling.predict import text_vectors  # noqa: E402
from gliznet.records import label_key  # noqa: E402

CHOOSE = ["ag_news", "emotion"]
REPORT = ["sst2", "rotten_tomatoes", "imdb", "sst5"]


@torch.inference_mode()
def model_text_vectors(model: GliZNet, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit text vectors of the trained model (each text alone, cut to half the model's length)."""
    ids = model.tokenizer.encode_pieces(list(texts))
    cap = model.config.max_length // 2
    parts = [torch.nn.functional.normalize(text_vectors(model, [x[:cap] for x in ids[s:s + batch_size]]).float(), dim=-1)
             for s in range(0, len(ids), batch_size)]
    return torch.cat(parts).numpy()


def fusion(args, baseline, embed) -> dict:
    result = {}
    for name in CHOOSE + REPORT:
        group = T.load_sets()["sets"][name]["group"]
        data = load_eval_data(str(T.eval_dir() / f"{name}.jsonl"), limit=args.limit)
        labels, records = data.candidate_labels, T.level_records(group, args.level)
        f = lambda s, c="batch": T.macro_f1(s, data, c)  # noqa: E731
        base = score_all(baseline, data.texts, labels)
        vecs = embed(data.texts)
        proto = T.prototype_scores(vecs, records, labels, embed)
        lr = T.logreg_scores(vecs, records, labels, embed)
        model = GliZNet.from_pretrained(f"{args.work}/{group}-{args.level}-default").eval()
        g = score_all(model, data.texts, labels)
        tp = T.prototype_scores(model_text_vectors(model, data.texts), records, labels,
                                lambda texts: model_text_vectors(model, texts))  # in the trained model's space
        row = {"bare": f(base, "none"), "bare+b": f(base), "proto.5": f(base + .5 * proto), "logreg": f(lr),
               "g": f(g), "g_raw": f(g, "none"), "tproto": f(tp), "tproto_raw": f(tp, "none")}
        for lam in (0.25, 0.5, 1.0, 2.0):
            row[f"g+tp{lam}"] = f(g + lam * tp)
            row[f"g+lr{lam}"] = f(g + lam * np.exp(lr))
            row[f"g+proto{lam}"] = f(g + lam * proto)
        result[name] = row
        print(name, {k: round(v, 4) for k, v in row.items()}, flush=True)
    for key in result[CHOOSE[0]]:
        print(f"{key:12s} choose {np.mean([result[n][key] for n in CHOOSE]):.4f} "
              f"report {np.mean([result[n][key] for n in REPORT]):.4f}")
    return result


def cv_filter(records, threshold: float, embed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    keys = sorted({label_key(r.labels[0]) for r in records})
    ys = np.array([keys.index(label_key(r.labels[0])) for r in records])
    p = cross_val_predict(LogisticRegression(max_iter=2000), embed([r.text for r in records]), ys, cv=5,
                          method="predict_proba")
    keep = ~((p.argmax(1) != ys) & (p.max(1) >= threshold))
    print(f"filter {threshold}: drop {int((~keep).sum())} of {len(records)}", flush=True)
    return [r for r, k in zip(records, keep) if k]


def train_variants(args, embed) -> dict:
    result = {}
    for name in args.sets.split(","):
        group = T.load_sets()["sets"][name]["group"]
        data = load_eval_data(str(T.eval_dir() / f"{name}.jsonl"), limit=args.limit)
        records = T.level_records(group, args.level)
        for variant in args.variants.split(","):
            extra, kept = (), records
            if variant == "init":
                extra = ("--init", args.init_model)
            elif variant.startswith("filter"):
                kept = cv_filter(records, float(variant[len("filter"):]), embed)
            elif "=" in variant:  # train options, e.g. anchor-weight=1 or anchor-weight=0+lr=2e-5
                options = (option.partition("=") for option in variant.split("+"))
                extra = tuple(x for name, _, value in options for x in (f"--{name}", value))
            out = T.train_gliznet(kept, "default", Path(f"{args.work}-levers/{group}-{args.level}-{variant}"),
                                  T.DATA / group, extra)
            scores = score_all(GliZNet.from_pretrained(out).eval(), data.texts, data.candidate_labels)
            row = {c: round(T.macro_f1(scores, data, c), 4) for c in ("none", "batch")}
            result.setdefault(name, {})[variant] = row
            print(name, variant, row, flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("fusion", "train"))
    parser.add_argument("variants", nargs="?", default="filter0.6,init")
    parser.add_argument("--sets", default=",".join(CHOOSE))
    parser.add_argument("--level", type=int, default=128, help="texts a label (the pick of bench/targeted.py: 128)")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--work", default="runs/targeted")
    parser.add_argument("--init-model", default="runs/shared-model/model")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    baseline = EmbeddingBaseline()
    embed = T.cached_embed(baseline)
    result = fusion(args, baseline, embed) if args.what == "fusion" else train_variants(args, embed)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
