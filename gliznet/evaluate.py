"""Evaluate any zero-shot scorer on real labelled text: data loading, scoring, JSON/markdown reports and plots.

A *scorer* is anything with ``score(texts, labels) -> (n_texts, n_labels)`` array where higher means
"more likely"; the values need not be probabilities (cosines, logits and sigmoids all work, because
thresholds are swept over quantiles of the scores rather than fixed on a 0..1 grid).  GliZNet and the
baselines in ``gliznet.baselines`` are scorers.

Read top to bottom:

1. ``EvalData`` / ``load_eval_data`` - a ``.jsonl`` of ``{"text", "labels"}`` rows (the format of
   ``../shared/eval/*.jsonl``; candidate labels = every label in the file) or a gliznet dataset folder
   (its ``test`` split; candidates = every label of that split, positives and negatives).
   ``portion="dev"|"test"`` keeps one side of the honest protocol's split (``portion_of``): each row goes to
   ``dev`` (30 %) or ``test`` (70 %) by a hash of the set's name and the row's text, so the split is the same
   on every run and machine, the two portions are disjoint and together hold every row, and ``limit`` only
   subsamples inside the portion.  Recipe choices are made on ``dev``; ``test`` is what gets reported.
2. ``evaluate`` - scores a data set in batches (``score_all``), times it, computes its metrics with
   ``gliznet.metrics.compute_metrics`` (argmax for single-label sets, a swept threshold for multi-label ones;
   headline ``macro_f1``) and writes ``report.json``, ``report.md`` and PNG plots (micro PR curve, per-label
   F1, score histogram of gold vs non-gold pairs).
3. ``evaluate_suite`` / ``default_eval_paths`` - every ``../shared/eval/*.jsonl`` and a summary table
   with the average headline macro-F1.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from gliznet.metrics import NDCG_KS, TOP_KS, compute_metrics

DATA_HELP = ('pass a .jsonl of {"text": str, "labels": [str, ...]} rows, or a gliznet dataset folder '
             "(DIR with triplet/ or couplet/ saved by DatasetDict.save_to_disk, or one of those)")


@runtime_checkable
class Scorer(Protocol):
    """``score(texts, labels)`` -> ``(len(texts), len(labels))`` array, higher = more likely."""

    def score(self, texts: list[str], labels: list[str]) -> np.ndarray: ...


@dataclass
class EvalData:
    """One evaluation set: texts, their gold labels and the candidate label set they are scored against."""

    name: str
    texts: list[str]
    gold: list[list[str]]
    candidate_labels: list[str]
    multi_label: bool
    portion: str | None = None  # "dev" / "test" of the hash split, None = every row

    def gold_matrix(self) -> np.ndarray:
        """0/1 matrix ``(n_texts, n_candidates)`` with 1 where the candidate is a gold label."""
        index = {label: j for j, label in enumerate(self.candidate_labels)}
        matrix = np.zeros((len(self.texts), len(self.candidate_labels)), dtype=np.int8)
        for i, labels in enumerate(self.gold):
            for label in labels:
                matrix[i, index[label]] = 1
        return matrix


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

PORTIONS = ("dev", "test")
DEV_FRACTION = 0.3  # share of every eval set's rows in the dev portion; the rest is test


def portion_of(set_name: str, text: str) -> str:
    """``"dev"`` or ``"test"``: the first 8 bytes of ``sha256(set_name + "\\n" + text)`` read as a fraction of
    2**64, below ``DEV_FRACTION`` -> dev.  Depends on nothing else (no seed, order, limit or machine), and
    duplicate texts of one set share a portion, so none leaks from dev into test."""
    digest = hashlib.sha256(f"{set_name}\n{text}".encode("utf-8")).digest()
    return "dev" if int.from_bytes(digest[:8], "big") / 2**64 < DEV_FRACTION else "test"


def check_portion(portion: str | None) -> str | None:
    if portion not in (None, *PORTIONS):
        raise ValueError(f"--portion {portion!r} is not a portion: use dev (30 % of each set, for choosing a "
                         "recipe), test (the other 70 %, for reporting) or leave it out for every row")
    return portion


def load_eval_data(path: str, limit: int | None = None, seed: int = 0, portion: str | None = None) -> EvalData:
    """Load a ``.jsonl`` eval file or a gliznet dataset folder's ``test`` split.

    The candidate label set is computed on the whole file/split *before* ``portion`` and ``limit`` cut it, so
    dev, test and a quick run score the same label set as the full one.  ``portion`` keeps the rows
    ``portion_of`` assigns to it; ``limit`` then keeps a seeded, label-stratified subsample of those (see
    ``_stratified_subsample``).
    """
    check_portion(portion)
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--data {path!r} does not exist: {DATA_HELP}")
    if p.is_file():
        if p.suffix != ".jsonl":
            raise ValueError(f"--data {path!r} is not a .jsonl file: {DATA_HELP}")
        name, texts, gold, candidates = read_labelled_jsonl(p)
    else:
        name, texts, gold, candidates = _read_dataset_dir(p)
    if not texts:
        raise ValueError(f"--data {path!r} holds no rows: {DATA_HELP}")
    if portion is not None:
        keep = [i for i, text in enumerate(texts) if portion_of(name, text) == portion]
        if not keep:
            raise ValueError(f"--data {path!r} has no row in the {portion} portion ({len(texts)} rows): "
                             "evaluate it without --portion")
        texts = [texts[i] for i in keep]
        gold = [gold[i] for i in keep]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit} must be >= 1 (or None for the whole set)")
        keep = _stratified_subsample(gold, limit, seed)
        texts = [texts[i] for i in keep]
        gold = [gold[i] for i in keep]
    multi_label = any(len(labels) > 1 for labels in gold)
    return EvalData(name=name, texts=texts, gold=gold, candidate_labels=candidates, multi_label=multi_label,
                    portion=portion)


def read_labelled_jsonl(p: Path, option: str = "--data", help: str = DATA_HELP
                        ) -> tuple[str, list[str], list[list[str]], list[str]]:
    """``(set name, texts, gold labels, sorted candidate labels)`` of a ``{"text", "labels"}`` JSONL; a bad line is
    one error naming ``option``, the line and ``help``."""
    texts: list[str] = []
    gold: list[list[str]] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{option} {str(p)!r} line {lineno} is not JSON ({exc.msg}): {help}") from None
            if (not isinstance(row, dict) or not isinstance(row.get("text"), str)
                    or not isinstance(row.get("labels"), list)
                    or not all(isinstance(x, str) for x in row["labels"])):
                raise ValueError(f"{option} {str(p)!r} line {lineno} lacks a string 'text' and a list 'labels': "
                                 f"{help}")
            texts.append(row["text"])
            gold.append(list(dict.fromkeys(row["labels"])))
    candidates = sorted({label for labels in gold for label in labels})
    return p.stem, texts, gold, candidates


def dataset_config_dir(p: Path, option: str = "--data") -> tuple[Path, str]:
    """``(folder of the saved DatasetDict, set name)`` of a gliznet output folder (``triplet/`` preferred, so
    negatives join the candidates) or of one config dir."""
    if (p / "dataset_dict.json").exists():
        return p, (p.parent.name if p.name in ("triplet", "couplet") else p.name)
    for config in ("triplet", "couplet"):
        if (p / config / "dataset_dict.json").exists():
            return p / config, p.name
    raise ValueError(f"{option} {str(p)!r} is a folder without a saved DatasetDict: {DATA_HELP}")


def _read_dataset_dir(p: Path) -> tuple[str, list[str], list[list[str]], list[str]]:
    """A gliznet output folder's ``test`` split (see ``dataset_config_dir``)."""
    from datasets import load_from_disk

    config_dir, name = dataset_config_dir(p)
    dataset = load_from_disk(str(config_dir))
    if "test" not in dataset:
        raise ValueError(f"--data {str(p)!r} has no 'test' split (found {sorted(dataset)}): "
                         "evaluate on a dataset built with a zero-shot test split")
    test = dataset["test"]
    texts = list(test["text"])
    gold = [list(dict.fromkeys(labels)) for labels in test["labels"]]
    candidates = {label for labels in gold for label in labels}
    if "not_labels" in test.column_names:
        candidates |= {label for labels in test["not_labels"] for label in labels}
    return name, texts, gold, sorted(candidates)


def _stratified_subsample(gold: list[list[str]], limit: int, seed: int) -> list[int]:
    """Indices of a seeded subsample of ``limit`` rows, stratified by each row's first gold label.

    Rows are shuffled within their stratum; row r at position k of a stratum of size m gets the key
    (k + 0.5) / m and the ``limit`` smallest keys are kept, so every stratum contributes in proportion
    to its size.  Returned in file order.
    """
    if limit >= len(gold):
        return list(range(len(gold)))
    rng = random.Random(seed)
    strata: dict[str, list[int]] = {}
    for i, labels in enumerate(gold):
        strata.setdefault(labels[0] if labels else "", []).append(i)
    keyed: list[tuple[float, float, int]] = []
    for members in strata.values():
        rng.shuffle(members)
        keyed += [((k + 0.5) / len(members), rng.random(), i) for k, i in enumerate(members)]
    keyed.sort()
    return sorted(i for _, _, i in keyed[:limit])


def default_eval_paths() -> list[str]:
    """Every ``*.jsonl`` in ``$GLIZNET_EVAL_DIR``, else in ``../shared/eval`` next to the repository root."""
    env = os.environ.get("GLIZNET_EVAL_DIR")
    folder = Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
    paths = sorted(str(p) for p in folder.glob("*.jsonl")) if folder.is_dir() else []
    if not paths:
        raise ValueError(f"no *.jsonl eval sets in {folder}: set GLIZNET_EVAL_DIR to a folder of "
                         '{"text", "labels"} .jsonl files, or pass the files explicitly')
    return paths


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
             batch_size: int = 64) -> dict:
    """Score ``data`` (a path or ``EvalData``) with ``scorer`` and compute its metrics.

    ``name`` is the scorer's name in the report (default: ``scorer.name`` or the class name).  The
    report holds ``scorer``, ``data``, ``portion`` (of the data, None = every row), ``n``, ``seconds`` (scoring
    only), ``texts_per_s`` and ``metrics``; with ``out_dir`` it is written as ``report.json`` + ``report.md`` with PNG plots.
    """
    if isinstance(data, (str, os.PathLike)):
        data = load_eval_data(str(data))
    started = time.perf_counter()
    scores = score_all(scorer, data.texts, data.candidate_labels, batch_size)
    seconds = time.perf_counter() - started
    gold = data.gold_matrix()
    report = {
        "scorer": name or scorer_name(scorer),
        "data": data.name,
        "portion": data.portion,
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
    ax.hist(flat_scores[flat_gold == 0], bins=bins, alpha=0.6, density=True, label="non-gold pairs")
    ax.hist(flat_scores[flat_gold == 1], bins=bins, alpha=0.6, density=True, label="gold pairs")
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
    return f"Portion `{portion}` ({share:.0%} of the set's rows, hash split of gliznet.evaluate.portion_of). "


def report_markdown(report: dict) -> str:
    """Human-readable report: headline, metric table, per-label table, plots."""
    m = report["metrics"]
    rule = "argmax" if m["decision"] == "argmax" else f"threshold {m['threshold']:.4g}"
    lines = [
        f"# {report['scorer']} on {report['data']}",
        "",
        _portion_sentence(report.get("portion")) + f"{report['n']} texts × {report['n_labels']} candidate labels "
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
                   portion: str | None = None) -> dict:
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
        report = evaluate(scorer, data, out_dir=str(Path(out_dir) / data.name) if out_dir else None)
        m = report["metrics"]
        sets.append({"data": data.name, "path": str(path), "n": report["n"], "n_labels": report["n_labels"],
                     "multi_label": report["multi_label"], "decision": m["decision"], "threshold": m["threshold"],
                     "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"], "roc_auc_micro": m["roc_auc_micro"],
                     "p@1": m["p@1"], "seconds": report["seconds"], "texts_per_s": report["texts_per_s"]})
    summary = {"scorer": scorer_name(scorer), "limit": limit, "portion": portion, "sets": sets,
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
             _portion_sentence(summary.get("portion"))
             + "Macro-F1 is argmax for single-label sets and best-threshold for multi-label sets."
             + (f" Each set subsampled to {summary['limit']} texts." if summary["limit"] else ""), "",
             "| set | n | labels | decision | macro-F1 | micro-F1 | P@1 | texts/s |", "|---|---|---|---|---|---|---|---|"]
    for s in summary["sets"]:
        lines.append(f"| [{s['data']}]({s['data']}/report.md) | {s['n']} | {s['n_labels']} | {s['decision']} | "
                     f"{s['macro_f1']:.4f} | {s['micro_f1']:.4f} | {_fmt(s['p@1'])} | {_fmt(s['texts_per_s'])} |")
    lines.append(f"| **average** | | | | **{summary['average_macro_f1']:.4f}** | | | |")
    return "\n".join(lines) + "\n"
