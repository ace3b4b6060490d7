"""Zero-shot macro-F1 of GliZNet (at several WiSE-FT alphas) next to the embedding-similarity baseline.

Trains a model on a dataset folder (or takes ``--model``), then scores every real eval set (``../shared/eval``
or ``$GLIZNET_EVAL_DIR``) on the same seeded subsample with the embedding baseline and with the model
interpolated at each ``--alphas`` value (``gliznet.training.interpolate``: 1 = fine-tuned, 0 = initial weights).
Macro-F1 is argmax for single-label sets, best threshold for multi-label ones (``gliznet.evaluation.metrics``).

The honest protocol: every set is split by ``gliznet.evaluation.runs.portion_of`` into ``dev`` (30 % of its rows) and
``test`` (70 %).  Pick recipe choices on ``dev``, report ``test``.  ``--portion both`` (the default) prints one
table per portion, ``dev`` first; ``--limit`` subsamples inside each portion, and every column of a table is
scored on the same rows.  ``--portion all`` is the earlier protocol (every row, the figures before issue 11).
The columns are the named scorer variants of ``scorer_variants``; ``--fusion-seen`` adds XML0 label fusion
(``gliznet.evaluation.fusion``) over the baseline and over GliZNet at the first alpha, one column pair per
``--fusion-lambdas`` value.  Prints the tables and writes them with the raw numbers to ``OUT/accuracy.{md,json}``.

    python bench/accuracy.py --data DIR --out runs/acc --max-steps 450 --limit 200      # ~25 min on 2 cores
    python bench/accuracy.py --data DIR --out runs/acc0 --anchor-weight 0 --lr 1.5e-5   # without the anchor
    python bench/accuracy.py --model runs/acc/train/model --out runs/acc --alphas 1,0.5,0.25
    python bench/accuracy.py --data DIR --out runs/acc --text-pooling cls               # CLS vs mean
    python bench/accuracy.py --model M --out runs/accf --alphas 1 --portion dev --fusion-seen DIR --fusion-lambdas 0.1,0.3
    python bench/accuracy.py --model M --out runs/accr --alphas 1 --render desc=label_descriptions:shipped \
        --render 'tpl=label_template:This text is about {label}.'   # rendering ablations, baseline and GliZNet

The eval sets are for measuring only: never pass them (or a dataset built from them) as ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gliznet.evaluation.baselines import EmbeddingBaseline  # noqa: E402
from gliznet.evaluation.data import DEV_FRACTION, PORTIONS, default_eval_paths
from gliznet.evaluation.fusion import (  # noqa: E402
    DEFAULT_TAU,
    DEFAULT_TOP_K,
    FusionScorer,
    check_fusion_params,
    load_seen_labels,
)
from gliznet.evaluation.runs import Scorer, evaluate_suite
from gliznet.modeling.config import GliZNetConfig
from gliznet.modeling.label_text import LabelText  # noqa: E402
from gliznet.modeling.losses import LossConfig  # noqa: E402
from gliznet.modeling.model import GliZNet
from gliznet.training.config import TRAIN_LABEL_TEXT, TrainConfig
from gliznet.training.interpolate import (  # noqa: E402
    check_alpha,
    copy_state,
    interpolate_state,
    rebuilt_initial_state,
)
from gliznet.training.trainer import train

RENDER_KEYS = ("label_template", "text_template", "label_descriptions")
DEFAULTS = TrainConfig()  # the library recipe; the options below override only what the measurement fixes


def count_or_none(text: str) -> int | None:
    """A count, or ``none`` (any case) for all, as ``gliznet evaluate`` spells it (0, the old spelling, is all too)."""
    return None if text.strip().lower() == "none" or text.strip() == "0" else int(text)


def build_parser() -> argparse.ArgumentParser:
    """The options; those that set a ``TrainConfig`` field are spelled as ``gliznet train``'s (tests/test_settings.py)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset folder to train on (from `gliznet import` / `gliznet generate`)")
    p.add_argument("--model", help="a trained GliZNet folder instead of training")
    p.add_argument("--out", required=True)
    p.add_argument("--alphas", default="1,0.5,0.25", help="WiSE-FT weights of the fine-tuned model to evaluate")
    p.add_argument("--limit", type=count_or_none, default=200, help="texts per eval set and portion (seeded, "
                   "stratified; none: every text)")
    p.add_argument("--portion", choices=("dev", "test", "both", "all"), default="both",
                   help="dev / test portion of every set, both (two tables), or all rows (the pre-split protocol)")
    p.add_argument("--max-steps", type=int, default=DEFAULTS.max_steps, help="training steps (ignored with --epochs)")
    p.add_argument("--epochs", type=float, default=None, help="train on every row this many times instead of "
                   "--max-steps steps (the full-data run, e.g. on a GPU)")
    p.add_argument("--train-label-text", choices=TRAIN_LABEL_TEXT, default=DEFAULTS.train_label_text,
                   help="what training batches encode: bare strings or the model's rendering")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=DEFAULTS.lr)
    p.add_argument("--anchor-weight", type=float, default=DEFAULTS.loss.anchor_weight, help="PriorAnchor loss weight (0: off)")
    p.add_argument("--frozen-layers", type=int, default=DEFAULTS.frozen_layers)
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length, help="tokens per training sequence")
    p.add_argument("--text-pooling", choices=("mean", "cls", "label"), default=DEFAULTS.model.text_pooling)
    p.add_argument("--label-template", default=DEFAULTS.model.label_template,
                   help="the trained model's label template ('none' = bare, GliZNetConfig's default)")
    p.add_argument("--label-descriptions", default=DEFAULTS.model.label_descriptions,
                   help="the trained model's label descriptions: shipped, a JSONL, or 'none' (the default)")
    p.add_argument("--cpu-threads", type=count_or_none, default=DEFAULTS.cpu_threads,
                   help="torch threads (1 on a busy shared CPU; none: one per core)")
    p.add_argument("--threads", dest="cpu_threads", type=count_or_none, help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--fusion-seen", help="XML0 label fusion columns: the training data whose labels are seen "
                   "(dataset folder or .jsonl, comma-separated); off by default")
    p.add_argument("--fusion-lambdas", default="0.3", help="fusion weights, one column pair each (with --fusion-seen)")
    p.add_argument("--fusion-tau", type=float, default=DEFAULT_TAU)
    p.add_argument("--fusion-top-k", type=count_or_none, default=DEFAULT_TOP_K, help="seen labels per text (none: "
                   "every seen label)")
    p.add_argument("--render", action="append", default=[], metavar="NAME=KEY:VALUE[;KEY:VALUE]",
                   help="a label-text ablation: one baseline and one GliZNet column rendered with these options "
                   f"({', '.join(RENDER_KEYS)}; value 'none' = off), e.g. 'desc=label_descriptions:shipped' or "
                   "'tpl=label_template:This text is about {label}.'; repeatable")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.render = [parse_render(spec) for spec in args.render]
    except ValueError as err:
        p.error(str(err))
    if args.epochs is not None and not args.epochs > 0:
        p.error(f"--epochs {args.epochs:g} must be a positive number of passes (e.g. 2), or leave it out to train "
                "--max-steps steps")
    if bool(args.data) == bool(args.model):
        p.error("pass exactly one of --data (train first) or --model (an existing GliZNet folder)")
    return args


def parse_render(spec: str) -> tuple[str, dict[str, str | None]]:
    """``"desc=label_descriptions:shipped;label_template:About {label}."`` -> ``("desc", {...})``."""
    name, sep, body = spec.partition("=")
    if not sep or not name.strip() or not body.strip():
        raise ValueError(f"--render {spec!r} must look like NAME=KEY:VALUE[;KEY:VALUE], e.g. "
                         "'desc=label_descriptions:shipped'")
    options: dict[str, str | None] = {}
    for part in body.split(";"):
        key, sep, value = part.partition(":")
        if not sep or key.strip() not in RENDER_KEYS:
            raise ValueError(f"--render {spec!r}: {part!r} must be KEY:VALUE with KEY one of {', '.join(RENDER_KEYS)}")
        options[key.strip()] = None if value.strip().lower() == "none" else value
    LabelText.from_options(**{k: options.get(k) for k in RENDER_KEYS})  # a bad template or file fails here
    return name.strip(), options


Variant = tuple[str, Callable[[], Scorer] | str]  # a column: its name and a function building its scorer when
# it runs, or the name of an earlier column that scores the very same strings (its figures are copied, not rerun)


def scorer_variants(args: argparse.Namespace, model: GliZNet, tuned: dict, init: dict, alphas: list[float],
                    baseline: EmbeddingBaseline) -> list[Variant]:
    """Every column of the table, in order: the baseline first, then GliZNet at each alpha, the baseline with
    GliZNet's own rendering, then the ablations.

    An ablation is one more ``(name, build)`` pair here: ``build`` makes the scorer right before it is scored
    (GliZNet columns load their weights in it, since they share one model).  A ``--render`` names options over
    the model's own rendering (label descriptions, templates); it adds a baseline and a GliZNet column, both
    rendered the same way, so each pair isolates what the options do to each scorer.
    """
    saved = {key: getattr(model.config, key) for key in RENDER_KEYS}  # the model's own rendering

    def rendering(render: dict | None) -> LabelText:
        options = {key: (render or {}).get(key, saved[key]) for key in RENDER_KEYS}
        return LabelText.from_options(**options, base_dir=model._config_dir)

    def gliznet_at(alpha: float, render: dict | None = None) -> Callable[[], Scorer]:
        def build() -> Scorer:
            model.load_state_dict(interpolate_state(init, tuned, alpha))
            for key in RENDER_KEYS:  # the label_text property follows the config
                setattr(model.config, key, (render or {}).get(key, saved[key]))
            return model.eval()
        return build

    baseline_of: dict = {baseline.label_text.fingerprint: "embedding baseline"}  # rendering -> its baseline column

    def baseline_column(name: str, label_text: LabelText) -> Variant:
        earlier = baseline_of.setdefault(label_text.fingerprint, name)
        return (name, earlier if earlier != name else lambda: EmbeddingBaseline(label_text=label_text))

    variants: list[Variant] = [("embedding baseline", lambda: baseline)]
    variants += [(f"GliZNet a={alpha:g}", gliznet_at(alpha)) for alpha in alphas]
    own = rendering(None)
    if own.active:  # the fair pair: the baseline encoding the strings GliZNet encodes
        variants.append(baseline_column("embedding + GliZNet's rendering", own))
    if args.fusion_seen:
        seen = load_seen_labels(args.fusion_seen)
        top_k = args.fusion_top_k or None
        for lam in [float(x) for x in args.fusion_lambdas.split(",")]:
            check_fusion_params(lam, args.fusion_tau, top_k)
            variants.append((f"embedding + fusion l={lam:g}",
                             lambda lam=lam: FusionScorer(baseline, seen, lam, args.fusion_tau, top_k)))
            variants.append((f"GliZNet a={alphas[0]:g} + fusion l={lam:g}",
                             lambda lam=lam: FusionScorer(gliznet_at(alphas[0])(), seen, lam, args.fusion_tau, top_k)))
    for name, render in args.render:
        variants.append(baseline_column(f"embedding + {name}", rendering(render)))
        variants.append((f"GliZNet a={alphas[0]:g} + {name}", gliznet_at(alphas[0], render)))
    return variants


def headline(summary: dict) -> dict[str, float]:
    row = {s["data"]: s["macro_f1"] for s in summary["sets"]}
    row["average"] = summary["average_macro_f1"]
    return row


def portion_title(portion: str) -> str:
    if portion == "all":
        return "every row of each set"
    share = DEV_FRACTION if portion == "dev" else 1 - DEV_FRACTION
    return f"portion `{portion}` ({share:.0%} of each set's rows)"


def table(columns: dict[str, dict[str, float]], heading: str) -> str:
    """One markdown table: a row per set and the average, a column per variant; then each variant's margin
    over the baseline and how many sets it is below the baseline on."""
    names = list(columns)
    sets = list(columns[names[0]])
    lines = [heading, "", "| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for s in sets:
        cells = [f"{columns[n][s]:.4f}" for n in names]
        if s == "average":
            cells = [f"**{c}**" for c in cells]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    base = columns["embedding baseline"]
    below = {n: sum(columns[n][s] < base[s] for s in sets if s != "average") for n in names[1:]}
    lines += ["", "average - baseline average (sets below the baseline): " + ", ".join(
        f"{n.removeprefix('GliZNet ')} {columns[n]['average'] - base['average']:+.4f} ({below[n]})" for n in names[1:])]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    alphas = [check_alpha(float(a), "--alphas") for a in args.alphas.split(",")]
    limit = args.limit or None
    portions = list(PORTIONS) if args.portion == "both" else [args.portion]  # "all": every row
    paths = default_eval_paths()
    if args.data:
        def off(value):
            return None if value is None or str(value).lower() == "none" else value
        config = TrainConfig(model=GliZNetConfig(text_pooling=args.text_pooling,
                                                 label_template=off(args.label_template),
                                                 label_descriptions=off(args.label_descriptions)),
                             loss=LossConfig(anchor_weight=args.anchor_weight),
                             lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                             epochs=args.epochs or DEFAULTS.epochs, max_steps=-1 if args.epochs else args.max_steps,
                             eval_steps=10**6, save_steps=10**6,  # no mid-run eval or checkpoint (same weights, less time)
                             cpu_threads=args.cpu_threads, frozen_layers=args.frozen_layers,
                             train_label_text=args.train_label_text)
        summary = train(args.data, None, str(out / "train"), config)
        model_dir = summary["model_dir"]
        print(f"trained {summary['steps']} steps in {summary['train_seconds']:.0f} s ({summary['tokens_per_s']:.0f} tok/s)")
    else:
        model_dir = args.model
    model = GliZNet.from_pretrained(model_dir).to("cuda" if torch.cuda.is_available() else "cpu")
    tuned = copy_state(model)
    init = rebuilt_initial_state(model)

    results: dict[str, dict[str, dict[str, float]]] = {p: {} for p in portions}  # portion -> column -> set
    started = time.perf_counter()
    for name, build in scorer_variants(args, model, tuned, init, alphas, EmbeddingBaseline()):
        if isinstance(build, str):  # the same strings as an earlier column: the same figures
            for portion in portions:
                results[portion][name] = dict(results[portion][build])
                print(f"{name} on {portion}: as {build!r}", flush=True)
            continue
        scorer = build()
        for portion in portions:
            summary = evaluate_suite(scorer, paths, limit=limit, portion=None if portion == "all" else portion)
            results[portion][name] = column = headline(summary)
            print(f"{name} on {portion}: average {column['average']:.4f}", flush=True)

    about = (f"model `{model_dir}` ({model.config.text_pooling} text vector); {limit or 'all'} texts per set; "
             f"macro-F1 (argmax single-label, best threshold multi-label)")
    tables = [table(results[p], f"### {portion_title(p)}\n\n{about}") for p in portions]
    text = "\n\n".join(tables)
    print(text)
    (out / "accuracy.md").write_text(text + "\n")
    (out / "accuracy.json").write_text(json.dumps({
        "model": model_dir, "limit": limit, "portions": results,
        "columns": results["test" if "test" in results else portions[0]],  # the reported table
        "seconds": time.perf_counter() - started}, indent=2))


if __name__ == "__main__":
    main()
