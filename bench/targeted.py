"""Data aimed at a label set, measured with the choose/report protocol (``generate --labels``).

For every eval set the writer gets only its label names (every label of the eval file) and the one-line task of
``bench/targeted/sets.json``, committed before any of its texts was looked at.  Sets that share their labels and
their kind of text share one generation (a *group*).  Choose sets decide everything that is chosen (texts per
label, training steps, the prototypes' weight, raw or batch-calibrated scoring); report sets are only reported,
and share no label with a choose set.

    python bench/targeted.py generate                 # resumable: every group up to 16 texts a label, then 48, ...
    python bench/targeted.py generate --levels 16,48  # stop after 48
    python bench/targeted.py evaluate --limit 500     # train + score every column at every level reached
    python bench/targeted.py table bench/results/targeted-DATE.json

``generate`` runs the real CLI (``gliznet generate --provider local --llm qwen2.5-coder-1.5b --labels FILE --task
TASK --records N --config PROMPT.json``, the prompt ``--prompt`` names) into ``bench/targeted/data/<group>``
(``data-<prompt>/<group>`` for a prompt other than the plain ``hardset_aimed``); the checkpoint (``checkpoint/calls.jsonl``), records and
card are committed, so a later session resumes instead of regenerating.  Wall seconds and tokens of every run go to
``bench/targeted/data/<group>/generation_log.jsonl``; a level's cost in the table is read from the checkpoint
(``generation_cost``), so runs stopped and resumed across sessions count too.  The subset "k texts a label" is the first k accepted texts of
each label in call order, so a level's data is a prefix of the next level's.

Columns of ``evaluate`` (macro-F1 on up to ``--limit`` stratified rows of each set):

* ``bare``: the embedding baseline (MiniLM, cos(text, label)); ``bare+batch``: the same, batch-calibrated.
* ``proto``: frozen label prototypes, cos(text, label) + lam * cos(text, centroid of the label's synthetic texts).
* ``logreg``: logistic regression on the frozen MiniLM vectors of the synthetic texts.
* ``gliznet``: ``gliznet train --data <k texts a label, split by texts> --max-steps S``, scored bare; S ``default``
  is ``gliznet train`` without ``--max-steps``: the aimed recipe a user gets (``AIMED_EPOCHS`` passes).
Each column is scored raw and batch-calibrated; the calibration, lam, S and k are chosen on the choose sets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from gliznet._io import read_jsonl  # noqa: E402
from gliznet._process import spawn  # noqa: E402
from gliznet.evaluation.calibration import calibrate  # noqa: E402
from gliznet.evaluation.data import load_eval_data  # noqa: E402
from gliznet.evaluation.metrics import compute_metrics  # noqa: E402
from gliznet.generation.aimed import parse_labels  # noqa: E402
from gliznet.records import Record, label_key, text_key  # noqa: E402

HERE = Path(__file__).resolve().parent
SETS_FILE = HERE / "targeted" / "sets.json"
DATA = HERE / "targeted" / "data"  # the plain prompt's data; another --prompt ID's is in targeted/data-ID (use_prompt)
SOURCES = [DATA]  # the data folders evaluate reads: DATA, or several for "ID1+ID2" (their texts pooled)
PROMPT = "hardset_aimed"  # the plain prompt (`generate --labels` defaults to the angled AIMED_PROMPT: bench/README.md)
LABELS = HERE / "targeted" / "labels"
RESULTS = HERE / "results"
WRITER = "qwen2.5-coder-1.5b"
LAMBDAS = (0.25, 0.5, 1.0, 2.0)
STEPS = ("default", 40, 80, 160)  # training steps candidates (16 rows a step; default: the aimed recipe's)
CALIBRATIONS = ("none", "batch")


def data_dir(prompt_id: str) -> Path:
    return HERE / "targeted" / ("data" if prompt_id == "hardset_aimed" else f"data-{prompt_id}")


def use_prompt(prompt_id: str) -> None:
    """Measure the data of ``prompt_id``: the plain prompt's in targeted/data, another's in targeted/data-ID;
    ``ID1+ID2`` pools the data of both prompts (k texts a label of each, so 2k a label; evaluate only)."""
    global DATA, PROMPT, SOURCES
    PROMPT = prompt_id
    SOURCES = [data_dir(x) for x in prompt_id.split("+")]
    DATA = SOURCES[0]


def eval_dir() -> Path:
    return Path(os.environ.get("GLIZNET_EVAL_DIR") or HERE.parent.parent / "shared" / "eval")


def load_sets() -> dict:
    return json.loads(SETS_FILE.read_text())


def labels_file(group: str, spec: dict) -> Path:
    """The group's labels, one a line: every label of its eval file, in first-seen order (written once)."""
    path = LABELS / f"{group}.txt"
    if not path.exists():
        seen: dict[str, None] = {}
        for _, row in read_jsonl(eval_dir() / f"{spec['labels_from']}.jsonl"):
            for label in row["labels"]:
                seen.setdefault(label, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{label}\n" for label in seen))
    return path


def group_labels(group: str) -> list[str]:
    """The labels of a group, in the order of its labels file (``labels_file``), read as ``generate --labels``
    reads that file."""
    return list(parse_labels(str(LABELS / f"{group}.txt")).labels)


# -- generate ------------------------------------------------------------------------------------------------------

def generate(args) -> None:
    if len(SOURCES) > 1:
        raise SystemExit(f"--prompt {PROMPT!r}: generate writes one prompt's data; give one prompt id (pooling is for evaluate)")
    sets = load_sets()
    groups = args.groups.split(",") if args.groups else sets["generation_order"]
    for level in [int(x) for x in args.levels.split(",")]:
        for group in groups:
            spec = sets["groups"][group]
            labels = labels_file(group, spec)
            out = DATA / group
            cmd = [sys.executable, "-m", "gliznet.cli", "generate", "--provider", "local", "--llm", args.llm,
                   "--labels", str(labels), "--task", spec["task"], "--seed", "0", "--records-per-call", str(args.records_per_call),
                   "--concurrency", str(args.concurrency), "--no-hardness", "--out", str(out)]
            # the prompt is a --config setting, not a CLI option (always given: the folders keep their prompt)
            out.mkdir(parents=True, exist_ok=True)
            (out.parent / f"{PROMPT}.json").write_text(json.dumps({"prompt_id": PROMPT}) + "\n")
            cmd += ["--config", str(out.parent / f"{PROMPT}.json")]
            if spec.get("multi_label"):
                cmd.append("--multi-label")
            n_labels = len(group_labels(group))
            records = records_for(level, n_labels)
            for _ in range(4):  # acceptance differs by label: top up until every label has `level` texts
                print(f"== {group}: {level} texts a label (--records {records})", flush=True)
                before = calls_in(out)
                started = time.time()
                # spawn: the generate process dies with this one (SIGTERM/Ctrl-C here stops it too, answers kept)
                code = spawn([*cmd, "--records", str(records)]).wait()
                log = {"level": level, "records": records, "started": started,
                       "wall_seconds": round(time.time() - started, 1), "calls_before": before,
                       "calls_after": calls_in(out), "exit": code}
                log.update(tokens_in(out))
                with open(out / "generation_log.jsonl", "a") as f:
                    f.write(json.dumps(log) + "\n")
                if code != 0:
                    raise SystemExit(f"gliznet generate exited {code} for {group}")
                short = level - min(per_label(out).values())
                if short <= 0:
                    break
                records += short * n_labels


def per_label(out: Path) -> dict[str, int]:
    """Accepted records per label of a finished run (its manifest's aimed section)."""
    return {row["label"]: row["accepted"] for row in json.loads((out / "manifest.json").read_text())["aimed"]["per_label"]}


def records_for(level: int, labels: int) -> int:
    """``--records`` for ``level`` texts a label: 15 % more, since dedup and rejections take some of every label's."""
    return -(-level * labels * 115 // 100)


def calls_in(out: Path) -> int:
    path = out / "checkpoint" / "calls.jsonl"
    return sum(1 for _ in path.open()) if path.exists() else 0


def tokens_in(out: Path) -> dict:
    lines = [x for _, x in read_jsonl(out / "checkpoint" / "calls.jsonl")] if (out / "checkpoint" / "calls.jsonl").exists() else []
    return {"completion_tokens": sum(x.get("completion_tokens") or 0 for x in lines),
            "prompt_tokens": sum(x.get("prompt_tokens") or 0 for x in lines),
            "llm_seconds": round(sum(x.get("llm_seconds") or 0 for x in lines), 1)}


# -- the data of one level -----------------------------------------------------------------------------------------

def call_order(out: Path) -> dict[str, tuple[int, int]]:
    """text_key -> (the index of the call that wrote it, its place in the answer) from the checkpoint's answers."""
    order: dict[str, tuple[int, int]] = {}
    for _, line in read_jsonl(out / "checkpoint" / "calls.jsonl"):
        if not line.get("ok"):
            continue
        try:
            texts = json.loads(line["raw"]).get("texts") or []
        except (ValueError, AttributeError):
            continue
        for i, text in enumerate(texts):
            if isinstance(text, str):
                order.setdefault(text_key(text), (line["call"], i))
    return order


def level_records(group: str, level: int) -> list[Record] | None:
    """The first ``level`` accepted records of every label in call order, of each source (pooled: every text once,
    label by label); None when some label of some source has fewer."""
    parts = [_level_records_in(source, group, level) for source in SOURCES]
    if any(part is None for part in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    pooled: dict[str, Record] = {}
    for part in parts:
        for record in part:
            pooled.setdefault(record.key, record)
    return [r for label in group_labels(group) for r in pooled.values() if r.labels[0] == label]


def _level_records_in(data: Path, group: str, level: int) -> list[Record] | None:
    out = data / group
    if not (out / "records.jsonl").exists():
        return None
    order = call_order(out)
    records = [Record.model_validate(r) for _, r in read_jsonl(out / "records.jsonl")]
    records.sort(key=lambda r: order.get(r.key, (10**9, 0)))
    by_label: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_label[record.labels[0]].append(record)
    labels = group_labels(group)
    if any(len(by_label[label]) < level for label in labels):
        return None
    return [r for label in labels for r in by_label[label][:level]]


def generation_cost(group: str, level: int, concurrency: int = 2) -> dict:
    """What the calls that wrote a level's texts cost (every call up to the last one a text of the level came from,
    read from the committed checkpoint, so runs stopped and resumed across sessions all count): calls, completion
    tokens, and writer minutes = the calls' summed latency / ``concurrency`` (the calls in flight; server start and
    dataset build not included).  Pooled sources add up."""
    lines = []
    for source in SOURCES:
        records = _level_records_in(source, group, level)
        if records is None:
            return {}
        order = call_order(source / group)
        last = max(order[r.key][0] for r in records)
        lines += [x for _, x in read_jsonl(source / group / "checkpoint" / "calls.jsonl") if x["call"] <= last]
    return {"minutes": round(sum(x.get("llm_seconds") or 0 for x in lines) / concurrency / 60, 1),
            "completion_tokens": sum(x.get("completion_tokens") or 0 for x in lines), "calls": len(lines)}


# -- evaluate ------------------------------------------------------------------------------------------------------

def macro_f1(scores: np.ndarray, data, calibration: str) -> float:
    return float(compute_metrics(calibrate(scores, calibration), data.gold_matrix(), data.candidate_labels,
                                 data.multi_label)["macro_f1"])


def prototype_scores(text_vecs: np.ndarray, records: list[Record], labels: list[str], embed) -> np.ndarray:
    """cos(text, centroid of each label's synthetic texts): (n_texts, n_labels); a label with no text scores 0."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for label in r.labels:
            by_key[label_key(label)].append(r.text)
    centroids = np.zeros((len(labels), text_vecs.shape[1]), dtype=np.float32)
    for j, label in enumerate(labels):
        texts = by_key.get(label_key(label))
        if texts:
            c = embed(texts).mean(0)
            centroids[j] = c / max(np.linalg.norm(c), 1e-8)
    return text_vecs @ centroids.T


def logreg_scores(text_vecs: np.ndarray, records: list[Record], labels: list[str], embed) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    keys = [label_key(x) for x in labels]
    xs = embed([r.text for r in records])
    ys = [keys.index(label_key(r.labels[0])) for r in records]
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(xs, ys)
    scores = np.full((len(text_vecs), len(labels)), -1e9, dtype=np.float32)
    scores[:, clf.classes_] = clf.predict_log_proba(text_vecs)
    return scores


def _trained_on(data: Path, stamp: Path) -> str | None:
    """The texts digest of a subset folder: its manifest's, else computed from its saved splits."""
    import hashlib

    from datasets import load_from_disk

    known = json.loads(stamp.read_text()).get("subset", {}).get("texts_sha256")
    if known:
        return known
    splits = load_from_disk(str(data / "triplet"))
    texts = sorted(t for split in splits.values() for t in split["text"])
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def cached_embed(baseline):
    """texts -> MiniLM vectors (n, D) of ``baseline``'s embedder, each distinct text encoded once."""
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, baseline.embedder.encode(missing)))
        return np.stack([cache[t] for t in texts])

    return embed


def train_gliznet(records: list[Record], steps: int | str, out: Path, source_dir: Path,
                  extra: tuple[str, ...] = ()) -> Path:
    """``gliznet train`` as a user runs it (``extra``: more of its options, e.g. ``--init``), on a dataset folder
    holding these records split by texts."""
    from gliznet.curation.dataset import build_datasets, save_datasets
    from gliznet.curation.split import text_split

    import hashlib

    digest = hashlib.sha256("\n".join(sorted(r.text for r in records)).encode()).hexdigest()[:16]
    stamp = out / "data" / "manifest.json"
    if (out / "train_summary.json").exists() and stamp.exists() and _trained_on(out / "data", stamp) == digest:
        return out  # trained before on exactly these texts
    shutil.rmtree(out, ignore_errors=True)
    data = out / "data"
    save_datasets(build_datasets(text_split(records, 0.2, seed=0)), data)
    source = json.loads((source_dir / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({  # a dataset folder: the first `level` texts a label of the run
        "format": source["format"], "aimed": source.get("aimed"), "parameters": source.get("parameters"),
        "subset": {"of": str(source_dir), "texts_sha256": digest,
                   "texts_per_label": len(records) // max(1, len({r.labels[0] for r in records}))},
    }, indent=2))
    subprocess.check_call([sys.executable, "-m", "gliznet.cli", "train", "--data", str(data), "--out", str(out),
                           *([] if steps == "default" else ["--max-steps", str(steps)]), *extra])
    return out


def evaluate(args) -> None:
    from gliznet.evaluation.baselines import EmbeddingBaseline
    from gliznet.evaluation.runs import score_all
    from gliznet.modeling.model import GliZNet

    sets = load_sets()
    levels = [int(x) for x in args.levels.split(",")]
    baseline = EmbeddingBaseline(backbone=args.backbone)
    embed = cached_embed(baseline)
    work = Path(args.work + ("" if PROMPT == "hardset_aimed" else f"-{PROMPT}")
                + (f"-{Path(args.backbone).name}" if args.backbone else "")
                + ("" if args.label_layout == "close" else f"-{args.label_layout}"))
    extra = (*(("--backbone", args.backbone) if args.backbone else ()), "--label-layout", args.label_layout)
    names = args.sets.split(",") if args.sets else list(sets["sets"])
    evals = {name: load_eval_data(str(eval_dir() / f"{name}.jsonl"), limit=args.limit) for name in names}
    out = Path(args.out or RESULTS / f"targeted-{date.today().isoformat()}.json")
    result: dict = {"date": date.today().isoformat(), "limit": args.limit, "writer": WRITER, "prompt": PROMPT,
                    "backbone": args.backbone or "minilm", "label_layout": args.label_layout, "sets": {},
                    "roles": {n: s["role"] for n, s in sets["sets"].items()}, "generation": {}}
    if args.merge and out.exists():  # add these columns to an earlier run's (same limit), replacing the same keys
        result = {**json.loads(out.read_text()), "date": result["date"]}
    for name, data in evals.items():
        group = sets["sets"][name]["group"]
        labels = data.candidate_labels
        base = score_all(baseline, data.texts, labels)
        text_vecs = embed(data.texts)
        row: dict = {f"bare|{c}": macro_f1(base, data, c) for c in CALIBRATIONS}
        for level in levels:
            records = level_records(group, level)
            if records is None:
                continue
            result["generation"].setdefault(group, {})[str(level)] = generation_cost(group, level)
            proto = prototype_scores(text_vecs, records, labels, embed)
            for lam in LAMBDAS:
                for c in CALIBRATIONS:
                    row[f"proto@{lam}|{c}|{level}"] = macro_f1(base + lam * proto, data, c)
            if not data.multi_label:
                lr = logreg_scores(text_vecs, records, labels, embed)
                for c in CALIBRATIONS:
                    row[f"logreg|{c}|{level}"] = macro_f1(lr, data, c)
            for steps in args.steps:
                folder = train_gliznet(records, steps, work / f"{group}-{level}-{steps}", DATA / group, extra)
                model = GliZNet.from_pretrained(folder).eval()
                scores = score_all(model, data.texts, labels)
                for c in CALIBRATIONS:
                    row[f"gliznet@{steps}|{c}|{level}"] = macro_f1(scores, data, c)
        result["sets"][name] = {**result["sets"].get(name, {}), **row}
        print(name, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    print(table(result))


# -- the protocol's choices and the table --------------------------------------------------------------------------

def _avg(result: dict, key: str, names: list[str]) -> float | None:
    values = [result["sets"][n].get(key) for n in names]
    return None if any(v is None for v in values) else float(np.mean(values))


def choose(result: dict, prefix: str, choose_sets: list[str]) -> str | None:
    """The key starting with ``prefix`` (a column, any lam/steps, calibration, level) with the best choose-set
    average; only keys present on every choose set compete."""
    keys = {k for n in choose_sets for k in result["sets"][n] if k.startswith(prefix)}
    scored = [(avg, k) for k in sorted(keys) if (avg := _avg(result, k, choose_sets)) is not None]
    return max(scored)[1] if scored else None


def table(result: dict) -> str:
    names = list(result["sets"])
    choose_sets = [n for n in names if result["roles"][n] == "choose"]
    report = [n for n in names if result["roles"][n] == "report"]
    columns = [("bare baseline", "bare|none"), ("baseline + batch calibration", "bare|batch")]
    for title, prefix in (("label+centroid prototypes (frozen)", "proto@"), ("logistic regression (frozen)", "logreg|"),
                          ("GliZNet trained on it", "gliznet@")):
        key = choose(result, prefix, choose_sets)
        if key:
            columns.append((f"{title} [{key}]", key))
    lines = ["| set | role | " + " | ".join(t for t, _ in columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for n in names:
        cells = [result["sets"][n].get(k) for _, k in columns]
        lines.append(f"| {n} | {result['roles'][n]} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    for role, group in (("choose", choose_sets), ("report", report)):
        present = [n for n in group if all(result["sets"][n].get(k) is not None for _, k in columns)]
        if present:
            cells = [_avg(result, k, present) for _, k in columns]
            lines.append(f"| **{role} average** ({', '.join(present)}) | | " + " | ".join(f"**{v:.4f}**" for v in cells) + " |")
    lines.append("")
    lines.append("| group | texts a label | minutes | completion tokens | calls |")
    lines.append("|---|---:|---:|---:|---:|")
    for group, levels in result.get("generation", {}).items():
        for level, cost in levels.items():
            lines.append(f"| {group} | {level} | {cost['minutes']} | {cost['completion_tokens']} | {cost['calls']} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Macro-F1 (choose and report averages) of each column's chosen setting against texts per label and against
    minutes of generation, one line per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["sets"])
    levels = sorted({int(k.rsplit("|", 1)[1]) for n in names for k in result["sets"][n] if k.count("|") == 2})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for role, style in (("choose", "--"), ("report", "-")):
        group = [n for n in names if result["roles"][n] == role  # sets with aimed data (reuters: not generated yet)
                 and any(k.count("|") == 2 for k in result["sets"][n])]
        for column in ("proto@", "logreg|", "gliznet@"):
            key = choose(result, column, [n for n in names if result["roles"][n] == "choose"])
            if key is None:
                continue
            stem = key.rsplit("|", 1)[0]
            points = [(lv, _avg(result, f"{stem}|{lv}", group)) for lv in levels]
            points = [(lv, v) for lv, v in points if v is not None]
            if not points:
                continue
            minutes = [sum(result["generation"][g].get(str(lv), {}).get("minutes", 0) for g in result["generation"])
                       for lv, _ in points]
            label = f"{role}: {stem}"
            axes[0].plot([lv for lv, _ in points], [v for _, v in points], style, marker="o", label=label)
            axes[1].plot(minutes, [v for _, v in points], style, marker="o", label=label)
        for key, title in (("bare|none", "bare"), ("bare|batch", "bare+batch")):
            value = _avg(result, key, group)
            if value is not None:
                for ax in axes:
                    ax.axhline(value, linestyle=":", color="grey" if title == "bare" else "black", linewidth=0.8)
    axes[0].set_xlabel("texts a label")
    axes[1].set_xlabel("minutes of generation (all groups, 2 CPU cores)")
    for ax in axes:
        ax.set_ylabel("macro-F1 (average)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("aimed data (dashed: choose sets, solid: report sets); dotted: bare / bare+batch baselines")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--levels", default=",".join(str(x) for x in load_sets()["texts_per_label"]))
    g.add_argument("--groups", default=None)
    g.add_argument("--llm", default=WRITER)
    g.add_argument("--records-per-call", type=int, default=4)
    g.add_argument("--concurrency", type=int, default=2)
    g.add_argument("--prompt", default=PROMPT, help="prompt id (prompts/ID.j2): hardset_aimed writes targeted/data, another ID targeted/data-ID")
    e = sub.add_parser("evaluate")
    e.add_argument("--levels", default=",".join(str(x) for x in load_sets()["texts_per_label"]))
    e.add_argument("--limit", type=int, default=500)
    e.add_argument("--steps", type=lambda s: [x if x == "default" else int(x) for x in s.split(",") if x != "none"],
                   default=list(STEPS), help="comma list of training steps; default: the aimed recipe (no --max-steps); "
                                             "none: no GliZNet column")
    e.add_argument("--backbone", default=None, help="encoder folder of every column (none: the packaged MiniLM)")
    e.add_argument("--label-layout", default="close", choices=("close", "wrap"), help="gliznet train --label-layout")
    e.add_argument("--work", default="runs/targeted")
    e.add_argument("--sets", default=None, help="comma list (default: every set of sets.json)")
    e.add_argument("--merge", action="store_true", help="add these columns to the rows of an existing --out file")
    e.add_argument("--out", default=None)
    e.add_argument("--prompt", default=PROMPT, help="measure the data generate --prompt ID wrote (ID1+ID2: both pooled)")
    t = sub.add_parser("table")
    t.add_argument("result")
    t.add_argument("--plot", action="store_true", help="also write RESULT.png")
    args = parser.parse_args(argv)
    if getattr(args, "prompt", None):
        use_prompt(args.prompt)
    if args.cmd == "generate":
        generate(args)
    elif args.cmd == "evaluate":
        evaluate(args)
    else:
        result = json.loads(Path(args.result).read_text())
        print(table(result))
        if args.plot:
            plot(result, Path(args.result).with_suffix(".png"))


if __name__ == "__main__":
    main()
