"""Zero-shot classification metrics from a score matrix and a 0/1 gold matrix (texts x candidate labels).

Scores need not be probabilities (cosines, logits and sigmoids all work): thresholds are swept over quantiles
of the scores rather than fixed on a 0..1 grid.  Read top to bottom:

* ``f1_scores`` - micro-F1 (pooled counts over all labels) and macro-F1 (mean per-label F1 over the labels that
  occur in the gold data; with candidates taken from the data itself that is every label);
* ``argmax_predictions`` - the single-label decision: each text's highest-scoring label;
* ``threshold_sweep`` / ``best_threshold`` - micro- and macro-F1 of ``scores >= t`` for t at quantiles of the
  scores, and the best t by macro-F1 (the multi-label decision, unless a threshold is given);
* ``roc_auc`` - micro (all (text, label) pairs pooled) and macro (mean over labels with both classes);
* ``ranking_metrics`` - P@k = mean over texts of |gold ∩ top-k| / k, and nDCG@k = DCG@k / IDCG@k with
  DCG@k = Σ_{i<k} rel_i / log2(i + 2) and IDCG@k the same for the ideal ranking; texts without any gold label
  are left out; ties are broken by label order;
* ``per_label_report`` - precision / recall / F1 / support per label at the decision rule;
* ``compute_metrics`` - all of the above for one set.  The headline number (as in issue 4) is ``macro_f1``:
  argmax for single-label sets, best-threshold for multi-label ones.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5  # the "default" multi-label threshold, reported next to the swept best one
SWEEP_QUANTILES = 101  # thresholds tried = this many quantiles of the score distribution
TOP_KS = (1, 3, 5)
NDCG_KS = (3, 5)



def _f1_counts(pred: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label tp/fp/fn (arrays of length L) for 0/1 prediction and gold matrices."""
    pred = pred.astype(bool)
    gold = gold.astype(bool)
    return {"tp": (pred & gold).sum(0), "fp": (pred & ~gold).sum(0), "fn": (~pred & gold).sum(0)}


def _safe_div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def f1_scores(pred: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(micro-F1, macro-F1).  micro = 2·ΣTP / (2·ΣTP + ΣFP + ΣFN); macro = mean per-label F1 over
    the labels with at least one gold occurrence (all labels if none has one)."""
    c = _f1_counts(pred, gold)
    tp, fp, fn = c["tp"].sum(), c["fp"].sum(), c["fn"].sum()
    micro = float(_safe_div(2 * tp, 2 * tp + fp + fn))
    per_label = _safe_div(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])
    present = gold.sum(0) > 0
    macro = float(per_label[present].mean() if present.any() else per_label.mean())
    return micro, macro


def argmax_predictions(scores: np.ndarray) -> np.ndarray:
    """One-hot matrix of each row's highest-scoring label (first one on ties)."""
    pred = np.zeros(scores.shape, dtype=np.int8)
    pred[np.arange(scores.shape[0]), scores.argmax(1)] = 1
    return pred


def threshold_sweep(scores: np.ndarray, gold: np.ndarray, n_quantiles: int = SWEEP_QUANTILES) -> list[dict]:
    """micro/macro-F1 of ``scores >= t`` for t at ``n_quantiles`` quantiles of all scores (distinct ones)."""
    thresholds = np.unique(np.quantile(scores.ravel(), np.linspace(0.0, 1.0, n_quantiles)))
    points = []
    for t in thresholds:
        micro, macro = f1_scores(scores >= t, gold)
        points.append({"threshold": float(t), "micro_f1": micro, "macro_f1": macro})
    return points


def best_threshold(sweep: list[dict], key: str = "macro_f1") -> float:
    """Threshold of the sweep point with the highest ``key`` (the lowest such threshold on ties)."""
    return max(sweep, key=lambda p: (p[key], -p["threshold"]))["threshold"]


def roc_auc(scores: np.ndarray, gold: np.ndarray) -> tuple[float | None, float | None]:
    """(micro, macro) ROC-AUC; micro pools all pairs, macro averages labels that have both classes.
    ``None`` where undefined (only one class present)."""
    from sklearn.metrics import roc_auc_score

    flat = gold.ravel()
    micro = float(roc_auc_score(flat, scores.ravel())) if 0 < flat.sum() < flat.size else None
    per_label = [roc_auc_score(gold[:, j], scores[:, j]) for j in range(gold.shape[1])
                 if 0 < gold[:, j].sum() < gold.shape[0]]
    macro = float(np.mean(per_label)) if per_label else None
    return micro, macro


def ranking_metrics(scores: np.ndarray, gold: np.ndarray) -> dict[str, float | None]:
    """P@k for k in TOP_KS and nDCG@k for k in NDCG_KS, averaged over texts with >= 1 gold label.

    P@k = |gold ∩ top-k| / k (k is not capped by the number of labels, as in extreme classification);
    nDCG@k = Σ_{i<k} rel_i/log2(i+2) / Σ_{i<min(k, n_gold)} 1/log2(i+2).
    """
    has_gold = gold.sum(1) > 0
    s, g = scores[has_gold], gold[has_gold].astype(float)
    out: dict[str, float | None] = {}
    if s.shape[0] == 0:
        return {**{f"p@{k}": None for k in TOP_KS}, **{f"ndcg@{k}": None for k in NDCG_KS}}
    order = np.argsort(-s, axis=1, kind="stable")
    rel = np.take_along_axis(g, order, axis=1)  # relevance in ranked order
    for k in TOP_KS:
        out[f"p@{k}"] = float((rel[:, :k].sum(1) / k).mean())
    n_gold = g.sum(1)
    for k in NDCG_KS:
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        kk = min(k, rel.shape[1])
        dcg = (rel[:, :kk] * discounts[:kk]).sum(1)
        ideal = np.array([discounts[:int(min(k, n))].sum() for n in n_gold])
        out[f"ndcg@{k}"] = float((dcg / ideal).mean())
    return out


def per_label_report(pred: np.ndarray, gold: np.ndarray, label_names: list[str]) -> dict[str, dict]:
    """``{label: {precision, recall, f1, support}}`` for the given 0/1 predictions."""
    c = _f1_counts(pred, gold)
    precision = _safe_div(c["tp"], c["tp"] + c["fp"])
    recall = _safe_div(c["tp"], c["tp"] + c["fn"])
    f1 = _safe_div(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])
    support = gold.sum(0)
    return {name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                   "support": int(support[j])} for j, name in enumerate(label_names)}


def compute_metrics(scores: np.ndarray, gold: np.ndarray, label_names: list[str], multi_label: bool,
                    threshold: float | None = None) -> dict:
    """All metrics of one set.  ``macro_f1`` is the headline (argmax / best or given threshold)."""
    scores = np.asarray(scores, dtype=float)
    gold = np.asarray(gold).astype(np.int8)
    if scores.ndim != 2 or scores.shape != gold.shape:
        raise ValueError(f"scores {scores.shape} and gold {gold.shape} must both be (n_texts, n_labels)")
    if scores.shape[1] != len(label_names):
        raise ValueError(f"label_names has {len(label_names)} names for {scores.shape[1]} score columns")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError("scores is empty: evaluate at least one text against at least one label")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf: check the scorer's output")

    sweep = threshold_sweep(scores, gold)
    best = best_threshold(sweep)
    if multi_label:
        decision = "threshold"
        used = best if threshold is None else float(threshold)
        pred = (scores >= used).astype(np.int8)
    else:
        decision, used = "argmax", None
        pred = argmax_predictions(scores)
    micro, macro = f1_scores(pred, gold)
    auc_micro, auc_macro = roc_auc(scores, gold)
    metrics = {
        "n_texts": int(scores.shape[0]),
        "n_labels": int(scores.shape[1]),
        "multi_label": bool(multi_label),
        "decision": decision,
        "threshold": used,
        "micro_f1": micro,
        "macro_f1": macro,
        "roc_auc_micro": auc_micro,
        "roc_auc_macro": auc_macro,
        **ranking_metrics(scores, gold),
        "threshold_sweep": sweep,
        "best_threshold": best,
        "best_threshold_by": "macro_f1",
    }
    if multi_label:
        d_micro, d_macro = f1_scores(scores >= DEFAULT_THRESHOLD, gold)
        metrics["default_threshold"] = {"threshold": DEFAULT_THRESHOLD, "micro_f1": d_micro, "macro_f1": d_macro}
    metrics["per_label"] = per_label_report(pred, gold, label_names)
    return metrics
