"""The ``gliznet`` command line: thin wrappers over the library, one command per job.

Bad input ends with one line naming the parameter and the fix, and exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gliznet.curation.hardset import BuildConfig
from gliznet.evaluation.fusion import (  # the evaluate command's fusion defaults
    DEFAULT_LAMBDA,
    DEFAULT_TAU,
    DEFAULT_TOP_K,
)
from gliznet.generation.describe import (
    DescribeConfig,  # the describe-labels command's option defaults
)
from gliznet.generation.plan import GenerateConfig
from gliznet.llm.registry import PROVIDERS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Generate hard zero-shot datasets with LLMs and train GliZNet on them.")
console = Console(stderr=True)


def clear_errors(fn):
    """Turn expected user errors into one red line + exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from gliznet.llm.provider import LLMConfigError

        try:
            return fn(*args, **kwargs)
        except (ValueError, LLMConfigError, FileNotFoundError, RuntimeError) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


_GEN, _BUILD = GenerateConfig(), BuildConfig()  # option defaults are the library's


@app.command()
@clear_errors
def generate(
    out: Path = typer.Option(..., "--out", help="Output folder (re-run with the same folder to resume)."),
    records: int = typer.Option(_GEN.records, "--records", "-n", help="Accepted records to generate (before dedup)."),
    provider: str = typer.Option(_GEN.provider, "--provider",
                                 help=f"One of {', '.join(PROVIDERS)} (local: the embedded SmolLM2)."),
    model: Optional[str] = typer.Option(_GEN.model, "--model", help="Model name for the provider."),
    seed: int = typer.Option(_GEN.seed, "--seed"),
    records_per_call: int = typer.Option(_GEN.records_per_call, "--records-per-call"),
    concurrency: int = typer.Option(_GEN.concurrency, "--concurrency"),
    max_calls: Optional[int] = typer.Option(_GEN.max_calls, "--max-calls", help="Call budget (default 6x records / batch)."),
    test_label_fraction: float = typer.Option(_BUILD.test_label_fraction, "--test-label-fraction", help="About this share of records goes to the zero-shot test split (labels are held out until it is reached)."),
    near_dup_threshold: float = typer.Option(_BUILD.near_dup_threshold, "--near-dup-threshold"),
    hardness: bool = typer.Option(_BUILD.with_hardness, "--hardness/--no-hardness", help="Score negatives with MiniLM for the card."),
):
    """Generate a ZSHOT-HARDSET-shaped dataset with an LLM."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from gliznet.curation.hardset import check_writable, generate_hardset
    from gliznet.llm.registry import make_provider

    config = GenerateConfig(records=records, seed=seed, provider=provider, model=model,
                            records_per_call=records_per_call, concurrency=concurrency, max_calls=max_calls)
    build = BuildConfig(test_label_fraction=test_label_fraction, near_dup_threshold=near_dup_threshold,
                        with_hardness=hardness)
    check_writable(out)
    llm = make_provider(provider, model, concurrency=concurrency)
    try:
        llm.check()
    except BaseException:
        llm.close()
        raise
    with Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
                  TextColumn("{task.fields[calls]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("generate", total=records, calls="")

        def progress(accepted: int, calls: int, budget: int) -> None:
            bar.update(task, completed=min(accepted, records), calls=f"calls {calls}/{budget}")

        manifest = generate_hardset(config, out, build, progress=progress, provider_factory=lambda: llm)
    _print_summary(manifest, out)


def _print_summary(manifest: dict, out: Path) -> None:
    counts = manifest["counts"]
    console.print(f"accepted {counts['accepted']} (train {counts['train']}, test {counts['test']}), "
                  f"rejected {counts['rejected']}; version {manifest['version']}")
    if counts["accepted"] < manifest["parameters"].get("records", 0):
        console.print(f"[yellow]note:[/] fewer records than requested after the call budget: raise --max-calls")
    typer.echo(f"dataset: {Path(out).resolve()}")


@app.command("import")
@clear_errors
def import_(
    source: Path = typer.Option(..., "--from", help="JSONL of {text, labels[, not_labels]}."),
    out: Path = typer.Option(..., "--out"),
    test_label_fraction: float = typer.Option(0.2, "--test-label-fraction", help="About this share of records goes to the zero-shot test split (labels are held out until it is reached)."),
    mine_hard_negatives: int = typer.Option(0, "--mine-hard-negatives", help="Add up to K embedding-mined negatives."),
    seed: int = typer.Option(0, "--seed"),
    min_text_chars: int = typer.Option(3, "--min-text-chars", help="Human-labelled texts can be short."),
    min_not_labels: int = typer.Option(0, "--min-not-labels", help="Existing data may carry few negatives."),
):
    """Turn existing labelled data into the dataset contract."""
    from gliznet.curation.importer import import_labelled
    from gliznet.records import Limits

    limits = Limits(min_text_chars=min_text_chars, min_not_labels=min_not_labels, max_labels=20, max_not_labels=50)

    if not source.is_file():
        raise ValueError(f"--from {source} is not a file: pass a .jsonl of {{text, labels}} rows")
    manifest = import_labelled(str(source), str(out), test_label_fraction=test_label_fraction, seed=seed,
                               mine_hard_negatives=mine_hard_negatives, limits=limits)
    _print_summary(manifest, out)


class TrainDefault:
    """An option default read from ``TrainConfig()`` (``"batch_size"``, ``"loss.anchor_weight"``) when the command
    runs or shows its help: each value is declared once, in the library, and the CLI's other commands do not
    import torch to start."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self):
        from gliznet.training.config import TrainConfig

        value = TrainConfig()
        for name in self.path.split("."):
            value = getattr(value, name)
        return value

    def __str__(self) -> str:  # what --help shows (nothing for None)
        value = self()
        return "" if value is None else str(value)


def _label_text_options(label_template: str | None, text_template: str | None,
                        label_descriptions: str | None) -> dict:
    """The label text options given on the command line, as ``GliZNetConfig`` fields (``gliznet.modeling.label_text``);
    ``none`` turns one off, a descriptions path is checked and made absolute, options not given are left out."""
    from gliznet.modeling.label_text import check_template, descriptions_option

    given: dict = {}
    for name, value in (("label_template", label_template), ("text_template", text_template)):
        if value is not None:
            given[name] = None if value.strip().lower() == "none" else value
            check_template(given[name], name)
    if label_descriptions is not None:
        given["label_descriptions"] = descriptions_option(label_descriptions)
    return given


def _with_label_text(model, options: dict):
    """A loaded GliZNet with the label text options of the command line over its saved ones."""
    from dataclasses import replace

    if options:
        model.config = replace(model.config, **options)
        model.label_text  # noqa: B018 - a bad descriptions file fails here, before any scoring
    return model


@app.command()
@clear_errors
def train(
    data: Path = typer.Option(..., "--data", help="A dataset folder (from generate or import)."),
    out: Path = typer.Option(..., "--out"),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="HF path or id (default: packaged MiniLM)."),
    epochs: float = typer.Option(..., "--epochs", default_factory=TrainDefault("epochs")),
    lr: float = typer.Option(..., "--lr", default_factory=TrainDefault("lr"), help="Backbone learning rate (measured with the anchor on; ~2e-5 without)."),
    batch_size: int = typer.Option(..., "--batch-size", default_factory=TrainDefault("batch_size")),
    max_steps: int = typer.Option(..., "--max-steps", default_factory=TrainDefault("max_steps")),
    seed: int = typer.Option(..., "--seed", default_factory=TrainDefault("seed")),
    resume: bool = typer.Option(False, "--resume"),
    cpu_threads: Optional[int] = typer.Option(..., "--cpu-threads", default_factory=TrainDefault("cpu_threads"), help="torch threads on CPU (1 is often fastest on a busy machine)."),
    wise_alpha: float = typer.Option(..., "--wise-alpha", default_factory=TrainDefault("wise_alpha"), help="Save (1-A)*initial + A*fine-tuned weights (WiSE-FT); 1 = fine-tuned."),
    anchor_weight: float = typer.Option(..., "--anchor-weight", default_factory=TrainDefault("loss.anchor_weight"), help="Weight of the PriorAnchor loss (hold vectors near the initial backbone's); 0 = off."),
    frozen_layers: int = typer.Option(..., "--frozen-layers", default_factory=TrainDefault("frozen_layers"), help="Freeze the embeddings + N bottom layers (-1: the whole backbone)."),
    train_label_text: str = typer.Option(..., "--train-label-text", default_factory=TrainDefault("train_label_text"), help="What training batches encode: bare (label names and texts as given) or model (the label text options below); the saved model renders with them either way."),
    text_pooling: str = typer.Option(..., "--text-pooling", default_factory=TrainDefault("model.text_pooling"), help="Text vector: mean of the text tokens, or cls."),
    max_text_tokens: int = typer.Option(..., "--max-text-tokens", default_factory=TrainDefault("model.max_text_tokens"), help="Cap on a text's tokens per inference pass, saved with the model (0 = no cap; the default is the backbone's sentence length)."),
    # the label text options: not given = GliZNetConfig's default (template + shipped descriptions); saved with the model
    label_template: Optional[str] = typer.Option(None, "--label-template", help='Encode each label as this hypothesis (default: "This text is about {label}."; "none" = the bare label).'),
    text_template: Optional[str] = typer.Option(None, "--text-template", help='Encode each text inside this template, e.g. "Text: {text}" ("none" = the bare text).'),
    label_descriptions: Optional[str] = typer.Option(None, "--label-descriptions", help='Encode "label: description" from this JSONL (gliznet describe-labels), or "shipped" (data/label_descriptions.jsonl, the default); copied into the model ("none" = off).'),
):
    """Train GliZNet on a dataset folder."""
    if max_text_tokens < 0:
        raise ValueError(f"--max-text-tokens={max_text_tokens} must be >= 0: a token count, or 0 for no cap")
    if (data / "triplet").is_dir() and not (data / "manifest.json").exists():
        raise ValueError(f"--data {data} has no manifest.json: it is an unfinished dataset (interrupted write?); "
                         "run `gliznet generate` or `gliznet import` again on it")
    from gliznet.modeling.config import GliZNetConfig
    from gliznet.modeling.losses import LossConfig
    from gliznet.training.config import TrainConfig
    from gliznet.training.interpolate import check_alpha
    from gliznet.training.trainer import train as run_train

    check_alpha(wise_alpha, "--wise-alpha")
    if anchor_weight < 0:
        raise ValueError(f"--anchor-weight={anchor_weight} must be >= 0: 0 turns the anchor off")
    text_options = _label_text_options(label_template, text_template, label_descriptions)
    config = TrainConfig(model=GliZNetConfig(text_pooling=text_pooling, max_text_tokens=max_text_tokens or None,
                                             **text_options),
                         loss=LossConfig(anchor_weight=anchor_weight),
                         epochs=epochs, lr=lr, batch_size=batch_size, max_steps=max_steps, seed=seed,
                         cpu_threads=cpu_threads, wise_alpha=wise_alpha, frozen_layers=frozen_layers,
                         train_label_text=train_label_text)
    result = run_train(str(data), backbone, str(out), config, resume=resume)
    summary = {k: v for k, v in result.items() if k not in ("batch_shapes", "step_times", "config")}
    console.print_json(json.dumps(summary, default=str))
    typer.echo(f"model: {Path(result['model_dir']).resolve()}")


@app.command()
@clear_errors
def interpolate(
    model: Path = typer.Option(..., "--model", help="A trained GliZNet folder."),
    alpha: float = typer.Option(..., "--alpha", help="Weight of the fine-tuned weights: (1-A)*initial + A*fine-tuned."),
    out: Path = typer.Option(..., "--out", help="Folder for the interpolated model."),
):
    """Write a WiSE-FT interpolation of a trained model and its initial backbone (pick A on held-out data)."""
    from gliznet.modeling.model import GliZNet
    from gliznet.training.interpolate import check_alpha
    from gliznet.training.interpolate import interpolate as mix

    check_alpha(alpha, "--alpha")
    if not model.is_dir():
        raise ValueError(f"--model {model} is not a folder: pass a directory written by `gliznet train`")
    tuned = GliZNet.from_pretrained(str(model))
    mix(tuned, alpha)
    tuned.config.wise_alpha = tuned.config.wise_alpha * alpha
    tuned.save_pretrained(out)
    typer.echo(f"model: {out.resolve()}")


@app.command()
@clear_errors
def evaluate(
    data: str = typer.Option(..., "--data", help="A .jsonl of {text, labels} or a dataset folder ('all' = every shared eval set)."),
    model: Optional[Path] = typer.Option(None, "--model", help="A trained GliZNet folder."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="embedding or cross-encoder instead of --model."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Backbone for --baseline (default packaged MiniLM)."),
    label_template: Optional[str] = typer.Option(None, "--label-template", help='What the encoder sees of a label, e.g. "This text is about {label}." (default: the model\'s; "none" = the bare label).'),
    text_template: Optional[str] = typer.Option(None, "--text-template", help='What the encoder sees of a text, e.g. "Text: {text}" (default: the model\'s; "none" = the bare text).'),
    label_descriptions: Optional[str] = typer.Option(None, "--label-descriptions", help='Descriptions JSONL (gliznet describe-labels), or "shipped" (data/label_descriptions.jsonl); default: the model\'s; "none" = off.'),
    out: Path = typer.Option(Path("runs/eval"), "--out"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate on a seeded subsample of N texts."),
    portion: Optional[str] = typer.Option(None, "--portion", help="dev (30 % of each set's rows, to choose a recipe) or test (the other 70 %, to report); default every row."),
    fusion_seen: Optional[str] = typer.Option(None, "--fusion-seen", help="XML0 label fusion (off by default): the training data whose labels are seen (dataset folder or .jsonl, comma-separated)."),
    fusion_lambda: float = typer.Option(DEFAULT_LAMBDA, "--fusion-lambda", help="Fusion weight of the seen labels' evidence (0 = the model's scores)."),
    fusion_tau: float = typer.Option(DEFAULT_TAU, "--fusion-tau", help="Softmax temperature over the seen labels' scores."),
    fusion_top_k: int = typer.Option(DEFAULT_TOP_K, "--fusion-top-k", help="Seen labels per text in the fusion softmax (0 = all)."),
):
    """Evaluate a model or a baseline; writes report.json, report.md and plots."""
    from gliznet.evaluation.data import check_portion, default_eval_paths
    from gliznet.evaluation.fusion import check_fusion_params, make_fusion_scorer
    from gliznet.evaluation.runs import evaluate as run_eval
    from gliznet.evaluation.runs import evaluate_suite

    if (model is None) == (baseline is None):
        raise ValueError("pass exactly one of --model DIR or --baseline {embedding,cross-encoder}")
    text_options = _label_text_options(label_template, text_template, label_descriptions)
    check_portion(portion)
    check_fusion_params(fusion_lambda, fusion_tau, fusion_top_k or None)
    if baseline is not None:
        from gliznet.evaluation.baselines import make_baseline

        scorer = make_baseline(baseline, backbone, **text_options)
    else:
        from gliznet.modeling.model import GliZNet

        if not (model / "gliznet_config.json").exists():
            raise ValueError(f"--model {model} is not a GliZNet folder (no gliznet_config.json): run `gliznet train` first")
        scorer = _with_label_text(GliZNet.from_pretrained(str(model)), text_options)
    if fusion_seen:
        scorer = make_fusion_scorer(scorer, fusion_seen, fusion_lambda, fusion_tau, fusion_top_k or None)
    if data == "all":
        report = evaluate_suite(scorer, default_eval_paths(), out_dir=str(out), limit=limit, portion=portion)
    else:
        whole = limit is None and portion is None
        report = run_eval(scorer, data if whole else _limited(data, limit, portion), out_dir=str(out))
    console.print_json(json.dumps(_headline(report), default=str))
    typer.echo(f"report: {(out / ('summary.md' if data == 'all' else 'report.md')).resolve()}")


def _limited(data: str, limit: int | None, portion: str | None = None):
    from gliznet.evaluation.data import load_eval_data

    return load_eval_data(data, limit=limit, portion=portion)


def _headline(report: dict) -> dict:
    if "sets" in report:  # a suite
        return {"scorer": report["scorer"], "portion": report.get("portion"), "average_macro_f1": report["average_macro_f1"],
                "sets": {s["data"]: s["macro_f1"] for s in report["sets"]}}
    m = report["metrics"]
    return {"scorer": report["scorer"], "data": report["data"], "portion": report.get("portion"), "n": report["n"],
            "decision": m["decision"],
            "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"], "roc_auc_micro": m["roc_auc_micro"], "p@1": m["p@1"]}


@app.command()
@clear_errors
def predict(
    text: list[str] = typer.Argument(..., help="Text(s) to classify."),
    model: Path = typer.Option(..., "--model"),
    labels: str = typer.Option(..., "--labels", help='Comma-separated candidate labels: "a,b,c".'),
    threshold: Optional[float] = typer.Option(None, "--threshold"),
    label_template: Optional[str] = typer.Option(None, "--label-template", help='What the encoder sees of a label, e.g. "This text is about {label}." (default: the model\'s; "none" = the bare label).'),
    text_template: Optional[str] = typer.Option(None, "--text-template", help='What the encoder sees of a text, e.g. "Text: {text}" (default: the model\'s; "none" = the bare text).'),
    label_descriptions: Optional[str] = typer.Option(None, "--label-descriptions", help='Descriptions JSONL (gliznet describe-labels), or "shipped" (data/label_descriptions.jsonl); default: the model\'s; "none" = off.'),
):
    """Score candidate labels for texts with a trained GliZNet."""
    from gliznet.modeling.model import GliZNet

    names = [x.strip() for x in labels.split(",") if x.strip()]
    if not names:
        raise ValueError('--labels is empty: pass candidate labels like --labels "sports,politics"')
    text_options = _label_text_options(label_template, text_template, label_descriptions)
    tuned = _with_label_text(GliZNet.from_pretrained(str(model)), text_options)
    result = tuned.predict(list(text), names, threshold=threshold)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


_DESC = DescribeConfig()


@app.command("describe-labels")
@clear_errors
def describe_labels(
    out: Path = typer.Option(..., "--out", help="Descriptions JSONL (re-run with the same file to resume; failed and rejected answers go to <out>.rejected.jsonl)."),
    labels_from: Optional[Path] = typer.Option(None, "--labels-from", help="A .jsonl of {text, labels}, a folder of them (one label set per file), or a dataset folder."),
    labels: Optional[str] = typer.Option(None, "--labels", help='Comma-separated labels instead: "a,b,c".'),
    provider: str = typer.Option(_DESC.provider, "--provider", help=f"One of {', '.join(PROVIDERS)} (local: the embedded SmolLM2)."),
    model: Optional[str] = typer.Option(_DESC.model, "--model", help="Model name for the provider."),
    concurrency: int = typer.Option(_DESC.concurrency, "--concurrency"),
):
    """Ask an LLM for a one-sentence description of each label (for --label-descriptions)."""
    from gliznet.generation.describe import describe_labels as run_describe
    from gliznet.generation.describe import label_sets_from
    from gliznet.llm.registry import make_provider

    if (labels_from is None) == (labels is None):
        raise ValueError('pass exactly one of --labels-from FILE_OR_DIR or --labels "a,b,c"')
    if labels is not None:
        names = [x.strip() for x in labels.split(",") if x.strip()]
        if not names:
            raise ValueError('--labels is empty: pass labels like --labels "sports,politics"')
        label_sets = {"labels": names}
    else:
        label_sets = label_sets_from(labels_from)
    config = DescribeConfig(provider=provider, model=model, concurrency=concurrency)
    llm = make_provider(provider, model, concurrency=concurrency)
    try:
        llm.check()
        report = run_describe(label_sets, llm, out, config)
    finally:
        llm.close()
    console.print_json(json.dumps({k: v for k, v in report.as_dict().items() if k != "missing"}))
    if report.missing:
        console.print(f"[yellow]note:[/] {len(report.missing)} label(s) still lack a description "
                      f"({', '.join(report.missing[:10])}{', ...' if len(report.missing) > 10 else ''}): "
                      f"see {report.rejected_file}; re-run the same command to ask again", highlight=False)
    typer.echo(f"descriptions: {Path(report.out).resolve()}")


@app.command()
@clear_errors
def publish(
    data: Path = typer.Option(..., "--data", help="A finished dataset folder."),
    store: Path = typer.Option(Path("runs/snapshots"), "--store", help="Local snapshot store."),
    hub_repo: Optional[str] = typer.Option(None, "--hub-repo", help="HF dataset repo id (needs HF_TOKEN)."),
):
    """Publish a versioned snapshot locally (and to the Hub when --hub-repo is given)."""
    from gliznet.curation.publish import publish_hub, publish_local

    target = publish_local(data, store)
    typer.echo(f"snapshot: {target.resolve()}")
    if hub_repo:
        try:
            info = publish_hub(data, hub_repo)
        except (OSError, ConnectionError) as err:  # HfHubHTTPError is an OSError too
            raise RuntimeError(f"--hub-repo {hub_repo}: the Hub push failed ({type(err).__name__}): check HF_TOKEN "
                               f"and the network; the local snapshot {target} is kept") from None
        typer.echo(f"hub: {info['repo_id']}@{info['version']}")


@app.command()
@clear_errors
def serve(
    config: Optional[Path] = typer.Option(None, "--config", help="Deployment file (prefect.yaml format) with the "
                                          "schedules and parameters; default: the packaged flows/prefect.yaml."),
):
    """Serve the Prefect deployments (generate-hardset/default, regenerate-and-retrain/weekly)."""
    from flows.deployments import (
        serve_all,  # flows import Prefect: only this command needs it
    )

    serve_all(config)


def main() -> None:
    """Entry point: SIGTERM exits normally, so the embedded llama-server is stopped by its atexit hook."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
