"""Evaluate any zero-shot scorer on real labelled text: data loading, scoring, JSON/markdown reports and plots.

A *scorer* is anything with ``score(texts, labels) -> (n_texts, n_labels)`` array where higher means
"more likely"; the values need not be probabilities (cosines, logits and sigmoids all work, because
thresholds are swept over quantiles of the scores rather than fixed on a 0..1 grid).  GliZNet and the
baselines in ``gliznet.evaluation.baselines`` are scorers.

Read top to bottom:

1. ``EvalData`` / ``load_eval_data`` - a ``.jsonl`` of ``{"text", "labels"}`` rows (the format of
   ``../shared/eval/*.jsonl``; candidate labels = every label in the file) or a gliznet dataset folder
   (its ``test`` split; candidates = every label of that split, positives and negatives).
   ``portion="dev"|"test"`` keeps one side of the honest protocol's split (``portion_of``): each row goes to
   ``dev`` (30 %) or ``test`` (70 %) by a hash of the set's name and the row's text, so the split is the same
   on every run and machine, the two portions are disjoint and together hold every row, and ``limit`` only
   subsamples inside the portion.  Recipe choices are made on ``dev``; ``test`` is what gets reported.
2. ``evaluate`` - scores a data set in batches (``score_all``), optionally batch-calibrates the whole score matrix
   (``gliznet.evaluation.calibration``), times it, computes its metrics with
   ``gliznet.evaluation.metrics.compute_metrics`` (argmax for single-label sets, a swept threshold for multi-label ones;
   headline ``macro_f1``) and writes ``report.json``, ``report.md`` and PNG plots (micro PR curve, per-label
   F1, score histogram of gold vs non-gold pairs).
3. ``evaluate_suite`` / ``default_eval_paths`` - every ``../shared/eval/*.jsonl`` and a summary table
   with the average headline macro-F1.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from gliznet.evaluation.calibration import calibrate, scorer_calibration
from gliznet.evaluation.data import (
    DEV_FRACTION,
    EvalData,
    check_portion,
    load_eval_data,
)
from gliznet.evaluation.metrics import NDCG_KS, TOP_KS, compute_metrics


@runtime_checkable
class Scorer(Protocol):
    """``score(texts, labels)`` -> ``(len(texts), len(labels))`` array, higher = more likely."""

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------------
# Running a scorer, reports and plots
# --------------------------------------------------------------------------------------------------

def scorer_name(scorer: Scorer) -> str:
    """``scorer.name`` if it has one, else its class name."""
    return str(getattr(scorer, "name", None) or type(scorer).__name__)


def score_all(scorer: Scorer, texts: list[str], labels: list[str], batch_size: int = 64) -> np.ndarray:
    """Scores of every text against every label, ``batch_size`` texts per ``scorer.score`` call."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    parts = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        part = np.asarray(scorer.score(chunk, labels), dtype=float)
        if part.shape != (len(chunk), len(labels)):
            raise ValueError(f"{scorer_name(scorer)}.score returned shape {part.shape}, expected "
                             f"{(len(chunk), len(labels))} (n_texts, n_labels)")
        parts.append(part)
    return np.concatenate(parts) if parts else np.zeros((0, len(labels)))


def evaluate(scorer: Scorer, data: str | EvalData, out_dir: str | None = None, name: str | None = None,
             batch_size: int = 64, calibration: str | None = None) -> dict:
    """Score ``data`` (a path or ``EvalData``) with ``scorer`` and compute its metrics.

    ``name`` is the scorer's name in the report (default: ``scorer.name`` or the class name).  ``calibration``
    (``gliznet.evaluation.calibration``: ``none`` or ``batch``; None: the one the scorer records, a GliZNet's
    ``config.calibration``, else ``none``) is applied to the whole set's score matrix before the metrics.  The report holds ``scorer``, ``data``, ``portion`` (of the data, None = every row), ``calibration``,
    ``n``, ``seconds`` (scoring only), ``texts_per_s`` and ``metrics``; with ``out_dir`` it is written as
    ``report.json`` + ``report.md`` with PNG plots.
    """
    calibration = scorer_calibration(scorer, calibration)
    if isinstance(data, (str, os.PathLike)):
        data = load_eval_data(str(data))
    started = time.perf_counter()
    scores = calibrate(score_all(scorer, data.texts, data.candidate_labels, batch_size), calibration)
    seconds = time.perf_counter() - started
    gold = data.gold_matrix()
    report = {
        "scorer": name or scorer_name(scorer),
        "data": data.name,
        "portion": data.portion,
        "calibration": calibration,
        "n": len(data.texts),
        "n_labels": len(data.candidate_labels),
        "multi_label": data.multi_label,
        "seconds": seconds,
        "texts_per_s": len(data.texts) / seconds if seconds > 0 else None,
        "metrics": compute_metrics(scores, gold, data.candidate_labels, data.multi_label),
    }
    if out_dir:
        write_report(report, scores, gold, data.candidate_labels, out_dir)
    return report


def write_report(report: dict, scores: np.ndarray, gold: np.ndarray, label_names: list[str], out_dir: str) -> None:
    """``report.json``, the PNG plots and ``report.md`` (which links the plots) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = plot_report(report, scores, gold, label_names, out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(report_markdown(report))


def plot_report(report: dict, scores: np.ndarray, gold: np.ndarray, label_names: list[str], out: Path) -> dict:
    """PR curve (all pairs pooled), per-label F1 bars, gold vs non-gold score histograms -> file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    title = f"{report['scorer']} on {report['data']}"
    files = {"pr_curve": "pr_curve.png", "per_label_f1": "per_label_f1.png", "score_histogram": "score_histogram.png"}

    fig, ax = plt.subplots(figsize=(5, 4))
    flat_gold, flat_scores = gold.ravel(), scores.ravel()
    if 0 < flat_gold.sum() < flat_gold.size:
        precision, recall, _ = precision_recall_curve(flat_gold, flat_scores)
        ap = average_precision_score(flat_gold, flat_scores)
        ax.plot(recall, precision, label=f"micro AP = {ap:.3f}")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "undefined: one class only", ha="center")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=f"PR curve - {title}")
    fig.tight_layout()
    fig.savefig(out / files["pr_curve"], dpi=100)
    plt.close(fig)

    per_label = report["metrics"]["per_label"]
    names = sorted(label_names, key=lambda n: per_label[n]["f1"])
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.22 * len(names) + 1)))
    ax.barh(range(len(names)), [per_label[n]["f1"] for n in names])
    ax.set_yticks(range(len(names)), [f"{n} ({per_label[n]['support']})" for n in names],
                  fontsize=8 if len(names) <= 30 else 6)
    ax.set(xlim=(0, 1), xlabel=f"F1 ({report['metrics']['decision']})", title=f"Per-label F1 - {title}")
    fig.tight_layout()
    fig.savefig(out / files["per_label_f1"], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(flat_scores.min(), flat_scores.max() + 1e-9, 41)
    for kind, name in ((0, "non-gold pairs"), (1, "gold pairs")):
        group = flat_scores[flat_gold == kind]
        if group.size:  # a density of no pairs is 0/0: leave that group out of the plot
            ax.hist(group, bins=bins, alpha=0.6, density=True, label=name)
    if report["metrics"]["threshold"] is not None:
        ax.axvline(report["metrics"]["threshold"], color="k", ls="--", label="threshold")
    ax.set(xlabel="score", ylabel="density", title=f"Scores - {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / files["score_histogram"], dpi=100)
    plt.close(fig)
    return files


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _portion_sentence(portion: str | None) -> str:
    if portion is None:
        return ""
    share = DEV_FRACTION if portion == "dev" else 1 - DEV_FRACTION
    return f"Portion `{portion}` ({share:.0%} of the set's rows, hash split of gliznet.evaluation.runs.portion_of). "


def _calibration_sentence(calibration: str | None) -> str:
    if calibration in (None, "none"):
        return ""
    return "Scores batch-calibrated (each label's mean score over the set subtracted; gliznet.evaluation.calibration). "


def report_markdown(report: dict) -> str:
    """Human-readable report: headline, metric table, per-label table, plots."""
    m = report["metrics"]
    rule = "argmax" if m["decision"] == "argmax" else f"threshold {m['threshold']:.4g}"
    lines = [
        f"# {report['scorer']} on {report['data']}",
        "",
        _portion_sentence(report.get("portion")) + _calibration_sentence(report.get("calibration"))
        + f"{report['n']} texts × {report['n_labels']} candidate labels "
        f"({'multi' if report['multi_label'] else 'single'}-label), scored in {report['seconds']:.1f} s "
        f"({_fmt(report['texts_per_s'])} texts/s). Decision rule: {rule}.",
        "",
        f"**Headline macro-F1: {m['macro_f1']:.4f}**",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    keys = ["micro_f1", "macro_f1", "roc_auc_micro", "roc_auc_macro"] + [f"p@{k}" for k in TOP_KS] + \
        [f"ndcg@{k}" for k in NDCG_KS] + ["best_threshold"]
    lines += [f"| {k} | {_fmt(m[k])} |" for k in keys]
    if "default_threshold" in m:
        d = m["default_threshold"]
        lines += [f"| micro_f1 @ {d['threshold']} | {_fmt(d['micro_f1'])} |",
                  f"| macro_f1 @ {d['threshold']} | {_fmt(d['macro_f1'])} |"]
    lines += ["", "## Per label", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, r in sorted(m["per_label"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(f"| {label} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    plots = report.get("plots", {})
    if plots:
        lines += ["", "## Plots", ""] + [f"![{key}]({file})" for key, file in plots.items()]
    return "\n".join(lines) + "\n"


def evaluate_suite(scorer: Scorer, paths: list[str], out_dir: str | None = None, limit: int | None = None,
                   portion: str | None = None, calibration: str | None = None) -> dict:
    """``evaluate`` on each path (its ``portion``, then ``limit`` rows); summary of the headline macro-F1 per set
    and its average.  Every scorer given the same arguments is scored on the same rows.

    With ``out_dir``: one sub-folder of reports per set, plus ``summary.json`` and ``summary.md``.
    """
    if not paths:
        raise ValueError("paths is empty: pass eval files, e.g. default_eval_paths()")
    check_portion(portion)
    sets = []
    for path in paths:
        data = load_eval_data(path, limit=limit, portion=portion)
        report = evaluate(scorer, data, out_dir=str(Path(out_dir) / data.name) if out_dir else None,
                          calibration=calibration)
        m = report["metrics"]
        sets.append({"data": data.name, "path": str(path), "n": report["n"], "n_labels": report["n_labels"],
                     "multi_label": report["multi_label"], "decision": m["decision"], "threshold": m["threshold"],
                     "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"], "roc_auc_micro": m["roc_auc_micro"],
                     "p@1": m["p@1"], "seconds": report["seconds"], "texts_per_s": report["texts_per_s"]})
    summary = {"scorer": scorer_name(scorer), "limit": limit, "portion": portion,
               "calibration": scorer_calibration(scorer, calibration), "sets": sets,
               "average_macro_f1": float(np.mean([s["macro_f1"] for s in sets]))}
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    """Table of the headline macro-F1 per set (argmax single-label, best threshold multi-label) + average."""
    lines = [f"# {summary['scorer']}: zero-shot macro-F1", "",
             _portion_sentence(summary.get("portion")) + _calibration_sentence(summary.get("calibration"))
             + "Macro-F1 is argmax for single-label sets and best-threshold for multi-label sets."
             + (f" Each set subsampled to {summary['limit']} texts." if summary["limit"] else ""), "",
             "| set | n | labels | decision | macro-F1 | micro-F1 | P@1 | texts/s |", "|---|---|---|---|---|---|---|---|"]
    for s in summary["sets"]:
        lines.append(f"| [{s['data']}]({s['data']}/report.md) | {s['n']} | {s['n_labels']} | {s['decision']} | "
                     f"{s['macro_f1']:.4f} | {s['micro_f1']:.4f} | {_fmt(s['p@1'])} | {_fmt(s['texts_per_s'])} |")
    lines.append(f"| **average** | | | | **{summary['average_macro_f1']:.4f}** | | | |")
    return "\n".join(lines) + "\n"
