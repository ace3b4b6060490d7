"""Zero-shot by sets: choose on some eval sets, report on label sets no choice has seen.

Every variant (a recipe: model, loss and training options over the measured default) is trained once and
scored on every row-subsample of the *choose* and *report* sets under each label wording; the embedding
baseline is scored under the same wordings.  Then, mechanically and on the choose sets only:

* each variant's scoring is the one with the best choose-set average: a wording (``bare`` or ``template``: no
  hand-written description of any eval label is a candidate), raw or batch-calibrated (``+batch``: each label's
  mean score over the set's texts subtracted, ``gliznet.evaluation.calibration``; the baseline is scored both ways
  too, so the same-scoring baseline column shows what calibration alone gives);
* the new default is the variant (at its wording) with the best choose-set average.

The report table shows, on the report sets: the bare baseline, the baseline with the new default's wording,
today's default (variant ``today`` with today's wording: template + shipped descriptions), the new default, and
one column per variant.  A report set may not share a label (``gliznet.records.label_key``) with a choose set.

    python bench/sweep.py --data runs/ds4 --out runs/sweep --max-steps 450 --limit 300 \\
        --variant today= --variant 'label-pool=model.text_pooling:label'          # all in one process
    python bench/sweep.py ... --only label-pool      # one job: train + score one variant (or `baseline`); a job
                                                     # whose OUT/<name>/train_summary.json exists is only scored
    python bench/sweep.py ... --aggregate            # tables from the jobs' OUT/<name>.json

A variant is ``NAME=KEY:VALUE[;KEY:VALUE]`` with KEY a ``TrainConfig`` field (``lr``, ``head_lr``, ...),
``model.<GliZNetConfig field>``, ``loss.<LossConfig field>`` or ``data`` (another dataset folder); VALUE is JSON
(``0.5``, ``null``, ``true``) or a plain string.  ``NAME=`` is the measured default itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gliznet.evaluation.baselines import EmbeddingBaseline  # noqa: E402
from gliznet.evaluation.data import default_eval_paths, load_eval_data  # noqa: E402
from gliznet.evaluation.calibration import calibrate  # noqa: E402
from gliznet.evaluation.metrics import compute_metrics  # noqa: E402
from gliznet.evaluation.runs import score_all  # noqa: E402
from gliznet.modeling.config import GliZNetConfig  # noqa: E402
from gliznet.modeling.label_text import LabelText  # noqa: E402
from gliznet.modeling.losses import LossConfig  # noqa: E402
from gliznet.modeling.model import GliZNet  # noqa: E402
from gliznet.records import label_key  # noqa: E402
from gliznet.training.config import TrainConfig  # noqa: E402
from gliznet.training.trainer import train  # noqa: E402

TEMPLATE = "This text is about {label}."
# label wordings: (label_template, label_descriptions).  Only the first two are candidates for a default;
# "today" (hand-written descriptions of the eval labels) is shown for today's default alone.
WORDINGS = {"bare": (None, None), "template": (TEMPLATE, None), "today": (TEMPLATE, "shipped")}
# a scoring = a wording, optionally batch-calibrated ("+batch": each label's mean score over the set subtracted,
# gliznet.evaluation.calibration); every candidate scoring is chosen like a wording, on the choose sets only
CALIBRATIONS = ("none", "batch")
BASE_WORDINGS = ("bare", "template")  # the wordings a trained variant is scored with


def scoring(wording: str, calibration: str) -> str:
    """A scoring's key in the jobs' ``scores``: the wording, ``+batch`` when batch-calibrated."""
    return wording if calibration == "none" else f"{wording}+{calibration}"


CANDIDATE_WORDINGS = tuple(scoring(w, c) for c in CALIBRATIONS for w in BASE_WORDINGS)
DEFAULT_CHOOSE = "ag_news,emotion"
DEFAULT_REPORT = "reuters21578_modapte,imdb,rotten_tomatoes,sst2,sst5"


def count_or_none(text: str) -> int | None:
    """A count, or ``none`` (any case) for all, as ``gliznet evaluate`` spells it (0, the old spelling, is all too)."""
    return None if text.strip().lower() == "none" or text.strip() == "0" else int(text)


def build_parser() -> argparse.ArgumentParser:
    """The options; those that set a ``TrainConfig`` field are spelled as ``gliznet train``'s (tests/test_settings.py)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset folder to train on (from `gliznet import` / `gliznet generate`)")
    p.add_argument("--out", required=True)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=KEY:VALUE[;KEY:VALUE]")
    p.add_argument("--choose", default=DEFAULT_CHOOSE, help="eval sets (file stems) every choice is made on")
    p.add_argument("--report", default=DEFAULT_REPORT, help="eval sets (file stems) the tables report")
    p.add_argument("--limit", type=count_or_none, default=300, help="texts per eval set (seeded, label-stratified; "
                   "none: every text)")
    p.add_argument("--max-steps", type=int, default=TrainConfig().max_steps, help="training steps (ignored with --epochs)")
    p.add_argument("--epochs", type=float, default=None, help="train on every row this many times instead")
    p.add_argument("--batch-size", type=int, default=None, help="default: TrainConfig's")
    p.add_argument("--cpu-threads", type=count_or_none, default=TrainConfig().cpu_threads,
                   help="torch threads on CPU (none: one per core)")
    p.add_argument("--threads", dest="cpu_threads", type=count_or_none, help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--only", help="run one job: a variant's name, or `baseline`")
    p.add_argument("--aggregate", action="store_true", help="only build the tables from OUT/*.json")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.variants = dict(parse_variant(spec) for spec in args.variant)
    except ValueError as err:
        p.error(str(err))
    if "today" not in args.variants:
        args.variants = {"today": {}, **args.variants}
    args.choose_sets = [s.strip() for s in args.choose.split(",") if s.strip()]
    args.report_sets = [s.strip() for s in args.report.split(",") if s.strip()]
    if not args.choose_sets or not args.report_sets or set(args.choose_sets) & set(args.report_sets):
        p.error("--choose and --report need one or more eval sets each, and no set in both")
    if args.only and args.only != "baseline" and args.only not in args.variants:
        p.error(f"--only {args.only!r} is neither `baseline` nor a --variant name ({', '.join(args.variants)})")
    if not args.aggregate and args.only != "baseline" and not args.data:
        p.error("--data DIR is needed to train (or pass --aggregate / --only baseline)")
    return args


def parse_variant(spec: str) -> tuple[str, dict]:
    name, sep, body = spec.partition("=")
    if not sep or not name.strip() or name.strip() == "baseline":
        raise ValueError(f"--variant {spec!r} must look like NAME=KEY:VALUE[;KEY:VALUE] (NAME not `baseline`)")
    overrides = {}
    for part in filter(str.strip, body.split(";")):
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"--variant {spec!r}: {part!r} must be KEY:VALUE")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    train_config(overrides, 1, None, None, None)  # a bad key or value fails here, before any training
    return name.strip(), overrides


def train_config(overrides: dict, max_steps: int, epochs: float | None, batch_size: int | None,
                 threads: int | None) -> TrainConfig:
    """The measured recipe (TrainConfig's defaults, as bench/accuracy.py trains it) with a variant's overrides."""
    base = TrainConfig()
    groups = {"model": {}, "loss": {}, "": {}}
    for key, value in overrides.items():
        if key == "data":
            continue
        part, _, name = key.rpartition(".")
        if part not in groups:
            raise ValueError(f"variant key {key!r}: use a TrainConfig field, model.FIELD or loss.FIELD")
        groups[part][name] = value
    known = {"model": {f.name for f in fields(GliZNetConfig)}, "loss": {f.name for f in fields(LossConfig)},
             "": {f.name for f in fields(TrainConfig)} - {"model", "loss"}}
    for part, values in groups.items():
        unknown = set(values) - known[part]
        if unknown:
            raise ValueError(f"variant keys {sorted(unknown)} are not fields of {part or 'TrainConfig'}")
    run = dict(epochs=epochs or 1.0, max_steps=-1 if epochs else max_steps, eval_steps=10**6, save_steps=10**6,
               max_eval_samples=200, cpu_threads=threads)
    if batch_size:
        run["batch_size"] = batch_size
    run.update(groups[""])
    return replace(base, model=replace(base.model, **groups["model"]), loss=replace(base.loss, **groups["loss"]),
                   **run)


def eval_paths(args) -> dict[str, str]:
    paths = {Path(p).stem: p for p in default_eval_paths()}
    missing = [s for s in args.choose_sets + args.report_sets if s not in paths]
    if missing:
        raise SystemExit(f"eval sets {missing} are not in $GLIZNET_EVAL_DIR ({', '.join(paths)})")
    return {s: paths[s] for s in args.choose_sets + args.report_sets}


def label_keys(paths: dict[str, str]) -> dict[str, set[str]]:
    """Each eval set's candidate labels as ``label_key``s: two sets that share one are not zero-shot for each other."""
    return {s: {label_key(x) for x in load_eval_data(paths[s]).candidate_labels} for s in paths}


def check_label_disjoint(args, paths: dict[str, str]) -> None:
    keys = label_keys(paths)
    for r in args.report_sets:
        for c in args.choose_sets:
            shared = keys[r] & keys[c]
            if shared:
                raise SystemExit(f"report set {r} shares labels {sorted(shared)[:5]} with choose set {c}: "
                                 "that is not zero-shot; move one of them")


def score_wordings(scorer_for, wordings, paths: dict[str, str], limit: int | None) -> dict:
    """Macro-F1 per set for each wording, raw (key ``wording``) and batch-calibrated (``wording+batch``): the texts
    are scored once per wording, the two calibrations read the same score matrix."""
    data = {name: load_eval_data(path, limit=limit) for name, path in paths.items()}
    gold = {name: d.gold_matrix() for name, d in data.items()}
    scores = {}
    for wording in wordings:
        scorer = scorer_for(wording)
        for name, d in data.items():
            raw = score_all(scorer, d.texts, d.candidate_labels)
            for calibration in CALIBRATIONS:
                scores.setdefault(scoring(wording, calibration), {})[name] = compute_metrics(
                    calibrate(raw, calibration), gold[name], d.candidate_labels, d.multi_label)["macro_f1"]
        for key in (scoring(wording, c) for c in CALIBRATIONS):
            print(f"  {key}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores[key].items()), flush=True)
    return scores


def run_job(args, name: str, paths: dict[str, str]) -> dict:
    limit = args.limit or None
    started = time.perf_counter()
    if name == "baseline":
        def baseline(wording):
            template, desc = WORDINGS[wording]
            return EmbeddingBaseline(label_text=LabelText.from_options(label_template=template,
                                                                       label_descriptions=desc))
        result = {"name": name, "scores": score_wordings(baseline, WORDINGS, paths, limit)}
    else:
        overrides = args.variants[name]
        config = train_config(overrides, args.max_steps, args.epochs, args.batch_size, args.cpu_threads)
        done = Path(args.out) / name / "train_summary.json"
        if done.exists():  # trained by an earlier run of this job: score it, do not train again
            summary = json.loads(done.read_text())
            print(f"{name}: reusing the model trained before ({done})", flush=True)
        else:
            summary = train(overrides.get("data", args.data), None, str(Path(args.out) / name), config)
        print(f"{name}: {summary['steps']} steps in {summary['train_seconds']:.0f} s", flush=True)
        model = GliZNet.from_pretrained(summary["model_dir"]).to("cuda" if torch.cuda.is_available() else "cpu")

        def gliznet(wording):
            model.config.label_template, model.config.label_descriptions = WORDINGS[wording]
            return model.eval()
        wordings = list(WORDINGS) if name == "today" else list(BASE_WORDINGS)
        result = {"name": name, "overrides": overrides, "steps": summary["steps"],
                  "train_seconds": summary["train_seconds"], "scores": score_wordings(gliznet, wordings, paths, limit)}
    result["seconds"] = time.perf_counter() - started
    (Path(args.out) / f"{name}.json").write_text(json.dumps(result, indent=2))
    return result


def average(scores: dict[str, float], sets: list[str]) -> float:
    return float(np.mean([scores[s] for s in sets]))


def pick(jobs: dict, variants, sets: list[str]) -> tuple[str, dict[str, str]]:
    """The protocol's one choice, made on ``sets`` only: each variant's scoring (best average over ``sets`` among
    ``CANDIDATE_WORDINGS``), then the variant whose scoring averages best.  Returns (variant, {variant: scoring})."""
    wording_of = {n: max(CANDIDATE_WORDINGS, key=lambda w: average(jobs[n]["scores"][w], sets)) for n in variants}
    return max(variants, key=lambda n: average(jobs[n]["scores"][wording_of[n]], sets)), wording_of


def leave_one_set_out(jobs: dict, variants, keys: dict[str, set[str]]) -> dict[str, dict]:
    """Every set reported once, by the choice (``pick``) made on all the *other* sets that share no label with it
    (so sst2 is never chosen on imdb or rotten_tomatoes): {set: its choose sets, the pick, the bare baseline, the
    baseline with the picked scoring, the pick's score}."""
    base = jobs["baseline"]["scores"]
    rows = {}
    for held in keys:
        pool = [s for s in keys if s != held and not keys[s] & keys[held]]
        if not pool:
            continue
        new, wording_of = pick(jobs, variants, pool)
        wording = wording_of[new]
        rows[held] = {"chosen_on": pool, "pick": f"{new} ({wording})", "bare": base["bare"][held],
                      "same": base[wording][held], "picked": jobs[new]["scores"][wording][held]}
    return rows


def loso_markdown(rows: dict[str, dict]) -> list[str]:
    text = ["", "### Leave one set out (each set reported by the choice made on every set that shares no label with "
            "it)", "", "| set | chosen on | pick | baseline (bare) | baseline (pick's scoring) | pick |",
            "|---|---|---|---|---|---|"]
    for held, r in rows.items():
        text.append(f"| {held} | {', '.join(r['chosen_on'])} | {r['pick']} | {r['bare']:.4f} | {r['same']:.4f} | "
                    f"{r['picked']:.4f} |")
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in ("bare", "same", "picked")}
    below = sum(r["picked"] < r["bare"] for r in rows.values())
    text.append(f"| **average** | | | **{mean['bare']:.4f}** | **{mean['same']:.4f}** | **{mean['picked']:.4f}** |")
    text += ["", f"Leave one set out: {mean['picked']:.4f} = bare baseline {mean['picked'] - mean['bare']:+.4f}, "
             f"same-scoring baseline {mean['picked'] - mean['same']:+.4f}, below the bare baseline on {below} of "
             f"{len(rows)} sets."]
    return text


def aggregate(args) -> str:
    out = Path(args.out)
    jobs = {name: json.loads((out / f"{name}.json").read_text()) for name in ["baseline", *args.variants]
            if (out / f"{name}.json").exists()}
    missing = [n for n in ["baseline", *args.variants] if n not in jobs]
    if "baseline" in missing or "today" in missing:
        raise SystemExit(f"jobs {missing} have no {out}/<name>.json yet: run them with --only NAME")
    if missing:
        print(f"left out (no {out}/<name>.json: not run or not finished): {', '.join(missing)}")
        args.variants = {n: v for n, v in args.variants.items() if n in jobs}
    choose, report = args.choose_sets, args.report_sets
    new, wording_of = pick(jobs, args.variants, choose)
    base = jobs["baseline"]["scores"]
    columns = {"baseline (bare)": base["bare"], f"baseline ({wording_of[new]})": base[wording_of[new]],
               "baseline (today's wording)": base["today"], "today's default": jobs["today"]["scores"]["today"],
               f"new default: {new} ({wording_of[new]})": jobs[new]["scores"][wording_of[new]]}
    for n in args.variants:
        columns[f"{n} ({wording_of[n]})"] = jobs[n]["scores"][wording_of[n]]
    text = [f"Choices made on {', '.join(choose)}; reported on {', '.join(report)} (no label shared). "
            f"{args.limit or 'all'} texts per set; macro-F1 (argmax single-label, best threshold multi-label).",
            "", f"New default (best choose-set average): **{new}** with wording `{wording_of[new]}` "
            f"(overrides {jobs[new].get('overrides') or 'none: the measured default'})."]
    for title, sets in (("Report sets (held out from every choice)", report), ("Choose sets", choose)):
        names = list(columns)
        text += ["", f"### {title}", "", "| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for s in sets:
            text.append(f"| {s} | " + " | ".join(f"{columns[n][s]:.4f}" for n in names) + " |")
        text.append("| **average** | " + " | ".join(f"**{average(columns[n], sets):.4f}**" for n in names) + " |")
    bare = average(base["bare"], report)
    same = average(base[wording_of[new]], report)
    got = average(jobs[new]["scores"][wording_of[new]], report)
    below = sum(jobs[new]["scores"][wording_of[new]][s] < base["bare"][s] for s in report)
    met = got >= bare + 0.06 and got >= same + 0.03 and below <= len(report) / 3
    text += ["", f"New default on the report sets: {got:.4f} = bare baseline {got - bare:+.4f} (target +0.06), "
             f"same-worded baseline {got - same:+.4f} (target +0.03), below the bare baseline on {below} of "
             f"{len(report)} sets (allowed {len(report) // 3}): target **{'met' if met else 'not met'}**."]
    loso = leave_one_set_out(jobs, args.variants, label_keys(eval_paths(args)))
    text += loso_markdown(loso)
    md = "\n".join(text)
    (out / "sweep.md").write_text(md + "\n")
    (out / "sweep.json").write_text(json.dumps({"choose": choose, "report": report, "new_default": new,
                                                "wording": wording_of, "columns": columns, "target_met": met,
                                                "leave_one_set_out": loso}, indent=2))
    return md


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.aggregate:
        paths = eval_paths(args)
        check_label_disjoint(args, paths)
        for name in [args.only] if args.only else ["baseline", *args.variants]:
            run_job(args, name, paths)
        if args.only:
            return
    print(aggregate(args))


if __name__ == "__main__":
    main(sys.argv[1:])
