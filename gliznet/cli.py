"""The ``gliznet`` command line: thin wrappers over the library, one command per job.

One meaning per option name: ``--model`` is a GliZNet folder (the ``--out`` folder of ``gliznet train`` or its
``model/`` subfolder), ``--llm`` the name of an LLM.  One spelling of "off": ``none`` (any case) for every
optional value (``none_or``).  Bad input ends with one line naming the parameter and the fix, and exit code 2
(``clear_errors``); anything else keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from gliznet.curation.hardset import BuildConfig
from gliznet.curation.importer import IMPORT_LIMITS
from gliznet.curation.negatives import NEGATIVE_CHECKS
from gliznet._process import Interrupted, install_handlers, stop_requested
from gliznet.errors import UserError
from gliznet.evaluation.calibration import CALIBRATIONS
from gliznet.evaluation.data import PORTIONS
from gliznet.evaluation.fusion import (  # the evaluate command's fusion defaults
    DEFAULT_LAMBDA,
    DEFAULT_TAU,
    DEFAULT_TOP_K,
)
from gliznet.generation.describe import (
    DescribeConfig,  # the describe-labels command's option defaults
)
from gliznet.generation.bundles import CROSS_ROLE_POLICIES
from gliznet.generation.plan import GenerateConfig
from gliznet.llm.registry import PROVIDERS

EPILOG = ("--model is a GliZNet folder: the --out folder of `gliznet train` or its model/ subfolder; --llm names "
          "the LLM of generate and describe-labels.  Off is spelled none (any case) for every optional value: "
          "--max-steps none (train --epochs passes), --max-text-tokens none (no cap), --fusion-top-k none (every "
          "seen label), --max-calls none (the automatic budget), --label-template none (the bare label), "
          "--frozen-layers none|all|N.  A count or a weight of 0 is zero (--anchor-weight 0: no anchor).")
console = Console(stderr=True)


class OneLineErrors(typer.core.TyperGroup):
    """A bad value caught while the options are parsed (a word not among an option's choices, a word that is not a
    number) is one line and exit 2, like every other bad input, not click's usage box."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except typer.BadParameter as err:
            line = err.format_message().replace(": Value error, ", ": ")
            console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Generate hard zero-shot datasets with LLMs and train GliZNet on them.", epilog=EPILOG)


# -- 1. errors: a user's mistake is one line, our own bug keeps its traceback ---------------------------
def is_user_error(err: BaseException) -> bool:
    """``UserError`` (bad input, raised where the input is checked), ``LLMConfigError`` (a missing key, an
    unknown model) and a ``FileNotFoundError`` of a path the user gave.  Anything else - a ``ValueError`` of an
    internal check or from inside a dependency, a ``RuntimeError`` (CUDA out of memory), a file missing from
    the installed package - is a bug or a failure of the machine and keeps its traceback."""
    from gliznet.llm.provider import LLMConfigError

    if isinstance(err, FileNotFoundError):
        return not _in_package(err.filename)
    return isinstance(err, (UserError, LLMConfigError))


def _in_package(filename: Any) -> bool:
    """Whether ``filename`` lies inside the installed package (code, prompts, data, flows): missing, it is our bug."""
    import importlib.util

    if filename is None:
        return False
    path = Path(str(filename)).resolve()
    for name in ("gliznet", "gliznet.templates", "gliznet.data", "flows"):
        spec = importlib.util.find_spec(name)
        for root in (spec.submodule_search_locations or []) if spec else []:
            if path.is_relative_to(Path(root).resolve()):
                return True
    return False


def clear_errors(fn):
    """A user error becomes one red line + exit 2 (no traceback); every other exception propagates."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Interrupted as stop:  # SIGINT / SIGTERM: one line, exit 128 + signal (main() exits at once)
            console.print(escape(stop.line()), highlight=False, soft_wrap=True)
            raise typer.Exit(stop.exit_code) from None
        except Exception as err:
            if not is_user_error(err):
                raise
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


# -- 2. option values: "none" is off ----------------------------------------------------------------
def is_none(value: Any) -> bool:
    """The word ``none``, in any case: the one spelling of "off" / "not set" on the command line."""
    return isinstance(value, str) and value.strip().lower() == "none"


def none_or(kind: type, none: Any = None, **words: Any):
    """A typer ``parser``: ``none`` (any case) -> ``none``, another of ``words`` -> its value, anything else ->
    ``kind(value)``.  Defaults (already typed) pass through."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if is_none(value):
            return none
        if value.strip().lower() in words:
            return words[value.strip().lower()]
        try:
            return kind(value)
        except ValueError:
            allowed = " or ".join(["none", *words])
            raise typer.BadParameter(f"{value!r} is not {'a number' if kind in (int, float) else 'valid'}, "
                                     f"nor {allowed}") from None

    return parse


METAVARS = {int: "N", float: "X", str: "TEXT", Path: "PATH"}


def optional(default: Any, *names: str, kind: type = str, **kwargs: Any):
    """An option whose value is a ``kind`` or ``none`` (-> None)."""
    return typer.Option(default, *names, parser=none_or(kind), metavar=f"{METAVARS[kind]}|none", **kwargs)


def choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """An option's allowed words (a tuple of the library's) as the Enum typer lists in ``--help``; given with
    ``case_sensitive=False``, any case is accepted.  ``word`` turns the member back into the library's string."""
    return Enum(name, {value: value for value in values}, type=str)


def word(value: Any) -> Any:
    """A ``choices`` member as its word (``none`` -> None); any other value unchanged."""
    if isinstance(value, Enum):
        return None if is_none(value.value) else value.value
    return value


# Enumerated options: the allowed words are the library's (tests/test_settings.py checks the three written here,
# whose modules would import torch when the CLI starts: baselines, text pooling, train label text).
NegativeCheck = choices("NegativeCheck", NEGATIVE_CHECKS)
CrossRolePolicy = choices("CrossRolePolicy", CROSS_ROLE_POLICIES)
Calibration = choices("Calibration", CALIBRATIONS)
Portion = choices("Portion", (*PORTIONS, "none"))
Baseline = choices("Baseline", ("embedding", "cross-encoder", "none"))  # gliznet.evaluation.baselines.BASELINES
TextPooling = choices("TextPooling", ("mean", "cls", "label"))  # GliZNetConfig.text_pooling
LabelLayout = choices("LabelLayout", ("auto", "close", "wrap"))  # GliZNetConfig.label_layout
TrainLabelText = choices("TrainLabelText", ("bare", "model"))  # gliznet.training.config.TRAIN_LABEL_TEXT


def at_least_one(option: str, value: int | None, none_means: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{option} {value} must be >= 1, or none for {none_means}")


# The label text options, declared once for train, evaluate and predict.  Not given: on train GliZNetConfig's
# default (the hypothesis template + the shipped descriptions), on evaluate/predict the model's saved rendering.
LabelTemplate = Annotated[Optional[str], typer.Option(
    "--label-template", metavar="TEXT|none",
    help='Encode each label as this hypothesis, e.g. "This text is about {label}." ("none" = the bare label; '
         "default: train GliZNetConfig's, evaluate/predict the model's).")]
TextTemplate = Annotated[Optional[str], typer.Option(
    "--text-template", metavar="TEXT|none",
    help='Encode each text inside this template, e.g. "Text: {text}" ("none" = the bare text; default: train '
         "none, evaluate/predict the model's).")]
LabelDescriptions = Annotated[Optional[str], typer.Option(
    "--label-descriptions", metavar="TEXT|none",
    help='Encode "label: description" from this JSONL (gliznet describe-labels), or "shipped" '
         '(data/label_descriptions.jsonl); train copies it into the model ("none" = off; default: train shipped, '
         "evaluate/predict the model's).")]


_GEN, _BUILD = GenerateConfig(), BuildConfig()  # option defaults are the library's
# generate's options are the GenerateConfig and BuildConfig fields of the same name, but for these spellings
# (tests/test_settings.py checks every name, default and choice against the dataclasses)
GENERATE_SPELLINGS = {"llm": "model", "hardness": "with_hardness"}


@app.command()
@clear_errors
def generate(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Output folder (re-run with the same folder to resume)."),
    records: int = typer.Option(_GEN.records, "--records", "-n", help="Accepted records to generate (before dedup)."),
    provider: str = typer.Option(_GEN.provider, "--provider",
                                 help=f"One of {', '.join(PROVIDERS)} (local: the embedded llama-server; --llm "
                                 "qwen2.5-coder-1.5b, the default, or smollm2)."),
    llm: Optional[str] = optional(_GEN.model, "--llm", help="The provider's model name (none: its default)."),
    base_url: Optional[str] = optional(_GEN.base_url, "--base-url", help="The provider's endpoint (none: its default "
                                       "or environment); openai: the server's root ending in /v1, e.g. "
                                       "http://HOST:8000/v1 for vllm serve."),
    seed: int = typer.Option(_GEN.seed, "--seed"),
    records_per_call: int = typer.Option(_GEN.records_per_call, "--records-per-call"),
    concurrency: int = typer.Option(_GEN.concurrency, "--concurrency"),
    max_calls: Optional[int] = optional(_GEN.max_calls, "--max-calls", kind=int, help="Call budget (none: enough for 6x the records)."),
    test_label_fraction: float = typer.Option(_BUILD.test_label_fraction, "--test-label-fraction", help="About this share of records goes to the zero-shot test split (labels are held out until it is reached)."),
    near_dup_threshold: float = typer.Option(_BUILD.near_dup_threshold, "--near-dup-threshold"),
    hardness: bool = typer.Option(_BUILD.with_hardness, "--hardness/--no-hardness", help="Score negatives with MiniLM for the card."),
    negative_check: NegativeCheck = typer.Option(NegativeCheck(_BUILD.negative_check), "--negative-check",
                                                 case_sensitive=False, help="embed: drop hard negatives "
                                       "the MiniLM encoder scores above 95 % of the record's best positive "
                                       "(suspect false negatives); llm: drop those the same LLM names as true "
                                       "(a second, resumable pass: one call per record); off: keep every negative."),
    bundle_size: int = typer.Option(_GEN.bundle_size, "--bundle-size", help="K > 1: each call writes one bundle of "
                                    "K texts over one shared label pool, every label positive for one text and "
                                    "negative for another (checked in code; see --cross-role-policy). 1: off."),
    cross_role_policy: CrossRolePolicy = typer.Option(CrossRolePolicy(_BUILD.cross_role_policy), "--cross-role-policy",
                                                      case_sensitive=False, help="With --bundle-size > 1, a text whose labels break the cross-role "
                                          "rule is kept and counted (keep, the default: its labels are still true) "
                                          "or rejected, counted as cross_role_broken (reject)."),
    seed_texts: Optional[str] = optional(_GEN.seed_texts, "--seed-texts", help="PATH.jsonl[:column] | PATH.txt | "
                                         "HF_DATASET[:split[:column]]: real passages each call rewrites into the drawn "
                                         "genre/length/level, then labels (none: texts from a topic word)."),
    labels: Optional[str] = optional(_GEN.labels, "--labels", help='Aim at your own label set: "a,b,c" or a file '
                                     "(one label a line, optional label<TAB>description). Each call aims at one "
                                     "label and writes texts that are clearly it and not its most confusable "
                                     "siblings; the set's other labels become the negatives; split by texts."),
    task: Optional[str] = optional(_GEN.task, "--task", help='With --labels: what the texts are, one line, e.g. '
                                   '"a sentence from a movie review".'),
    multi_label: bool = typer.Option(_GEN.multi_label, "--multi-label/--single-label", help="With --labels: a text "
                                     "may carry several labels, so only the siblings named in its prompt are its "
                                     "negatives (default: labels exclude each other)."),
    price_per_mtok: Optional[str] = typer.Option(_BUILD.price_per_mtok, "--price-per-mtok", metavar="IN,OUT|none",
                                             help="USD per million tokens in,out for the cost estimate (none: the "
                                             "dated Groq price table; unknown models get tokens only)."),
    config_file: Optional[Path] = optional(None, "--config", kind=Path, help="A .json or .yaml of GenerateConfig and "
                                           "BuildConfig fields (e.g. {\"records\": 500, \"model\": \"llama3.2\", "
                                           "\"negative_check\": \"embed\"}); the options given on the command line "
                                           "override it (none: the defaults shown here)."),
):
    """Generate a ZSHOT-HARDSET-shaped dataset with an LLM."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from gliznet.curation.hardset import check_writable
    from gliznet.pipeline.generate import generate_hardset

    config, build = _generate_configs(ctx, config_file)
    check_writable(out)  # the provider (and an embedded server) starts inside generate_hardset, lock held
    bar = Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
                   TextColumn("{task.fields[calls]}"), TimeElapsedColumn(), console=console)
    task = None

    def progress(accepted: int, calls: int, budget: int) -> None:
        nonlocal task
        if task is None:  # shown once the calls start: a run refused by the lock or the plan shows its one line
            bar.start()
            task = bar.add_task("generate", total=config.records, calls="")
        bar.update(task, completed=min(accepted, config.records), calls=f"calls {calls}/{budget}")

    try:
        manifest = generate_hardset(config, out, build, progress=progress)
    finally:
        bar.stop()
    _print_summary(manifest, out)


def _generate_configs(ctx: typer.Context, path: Path | None):
    """``GenerateConfig`` and ``BuildConfig`` of ``--config FILE`` (the defaults without one) with the options
    given on the command line over it (every option, without a file)."""
    from gliznet._io import read_settings_file
    from gliznet.pipeline.generate import configs_from_dict

    data = read_settings_file(path, "GenerateConfig / BuildConfig", '{"records": 500, "negative_check": "embed"}') \
        if path is not None else {}
    for name, value in ctx.params.items():
        if name not in ("out", "config_file") and (path is None or ctx.get_parameter_source(name).name == "COMMANDLINE"):
            data[GENERATE_SPELLINGS.get(name, name)] = word(value)
    return configs_from_dict(data, "generate config" if path is None else f"--config {path}:")


def _print_summary(manifest: dict, out: Path) -> None:
    counts = manifest["counts"]
    console.print(f"accepted {counts['accepted']} (train {counts['train']}, test {counts['test']}), "
                  f"rejected {counts['rejected']}; version {manifest['version']}")
    check = manifest.get("negative_check")
    if check:
        console.print(f"negative check ({check['mode']}): {check['negatives_dropped']} of "
                      f"{check['negatives_checked']} negatives dropped as suspect false negatives "
                      f"(rate {check['suspect_false_negative_rate']}; hard {check['hard_above_weakest_positive']})")
    cross = manifest.get("cross_role")
    if cross:
        console.print(f"cross-role bundles: {cross['pool_labels_satisfying_rule']} of {cross['pool_labels']} pool "
                      f"labels satisfy the rule (share {cross['share_satisfying_rule']}); "
                      f"{cross['texts_breaking_rule']} of {cross['texts']} texts break it ("
                      + ("kept" if manifest["parameters"].get("cross_role_policy", "keep") == "keep"
                         else f"{cross['texts_rejected']} rejected as cross_role_broken") + ")")
    seeds = manifest.get("seed_texts")
    if seeds:
        console.print(f"seed passages: {seeds['passages_used']} of {seeds['passages_available']} used by "
                      f"{seeds['calls_grounded']} calls; {seeds['calls_reusing_a_passage']} calls reused a passage")
    if manifest.get("cost"):
        from gliznet.curation.cost import cost_line

        console.print(cost_line(manifest["cost"]), highlight=False)
    if counts["accepted"] < manifest["parameters"].get("records", 0):
        console.print("[yellow]note:[/] fewer records than requested after the call budget: raise --max-calls")
    if counts.get("calls_failed_transport"):
        console.print(f"[yellow]note:[/] {counts['calls_failed_transport']} calls got no answer from the LLM: "
                      "re-run the same command to ask them again")
    typer.echo(f"dataset: {Path(out).resolve()}")


@app.command("import")
@clear_errors
def import_(
    source: Path = typer.Option(..., "--from", help="JSONL of {text, labels[, not_labels]}."),
    out: Path = typer.Option(..., "--out"),
    test_label_fraction: float = typer.Option(_BUILD.test_label_fraction, "--test-label-fraction", help="About this share of records goes to the zero-shot test split (labels are held out until it is reached)."),
    mine_hard_negatives: int = typer.Option(0, "--mine-hard-negatives", help="Add up to K embedding-mined negatives."),
    seed: int = typer.Option(0, "--seed"),
    min_text_chars: int = typer.Option(IMPORT_LIMITS.min_text_chars, "--min-text-chars", help="Human-labelled texts can be short."),
    min_not_labels: int = typer.Option(IMPORT_LIMITS.min_not_labels, "--min-not-labels", help="Existing data may carry few negatives."),
):
    """Turn existing labelled data into the dataset contract."""
    from gliznet.curation.importer import import_labelled
    from gliznet.records import Limits

    limits = Limits(**{**IMPORT_LIMITS.model_dump(), "min_text_chars": min_text_chars, "min_not_labels": min_not_labels})

    if not source.is_file():
        raise UserError(f"--from {source} is not a file: pass a .jsonl of {{text, labels}} rows")
    manifest = import_labelled(str(source), str(out), test_label_fraction=test_label_fraction, seed=seed,
                               mine_hard_negatives=mine_hard_negatives, limits=limits)
    _print_summary(manifest, out)


# train's options are the TrainConfig fields of the same name, but for these, which set a field of its model
# (GliZNetConfig) or loss (LossConfig); tests/test_settings.py checks names, defaults and choices
TRAIN_FIELDS = {"anchor_weight": "loss.anchor_weight", "text_pooling": "model.text_pooling",
                "label_layout": "model.label_layout",
                "max_text_tokens": "model.max_text_tokens", "label_template": "model.label_template",
                "text_template": "model.text_template", "label_descriptions": "model.label_descriptions"}


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

    def __str__(self) -> str:  # what --help shows
        value = self()
        return "none" if value is None else str(value)


def _label_text_options(label_template: str | None, text_template: str | None,
                        label_descriptions: str | None) -> dict:
    """The label text options given on the command line, as ``GliZNetConfig`` fields (``gliznet.modeling.label_text``);
    ``none`` turns one off, a descriptions path is checked and made absolute, options not given are left out."""
    from gliznet.modeling.label_text import check_template, descriptions_option

    given: dict = {}
    for name, value in (("label_template", label_template), ("text_template", text_template)):
        if value is not None:
            given[name] = None if is_none(value) else value
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


def _load_model(model: Path):
    """The GliZNet at ``--model``: a saved folder, or the ``--out`` folder of ``gliznet train`` (``model_folder``)."""
    from gliznet.modeling.model import GliZNet

    try:
        return GliZNet.from_pretrained(model)
    except UserError as err:
        raise UserError(f"--model {err}") from None


@app.command()
@clear_errors
def train(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="A dataset folder (from generate or import)."),
    out: Path = typer.Option(..., "--out", help="Output folder: the model goes to OUT/model, checkpoints to OUT/checkpoints."),
    backbone: Optional[str] = optional(None, "--backbone", help="HF path or id (none: the packaged MiniLM)."),
    epochs: float = typer.Option(..., "--epochs", default_factory=TrainDefault("epochs"), help="Passes over the data when --max-steps is none (given alone, it sets --max-steps none)."),
    lr: float = typer.Option(..., "--lr", default_factory=TrainDefault("lr"), help="Backbone learning rate (measured with the anchor on; ~2e-5 without)."),
    batch_size: int = typer.Option(..., "--batch-size", default_factory=TrainDefault("batch_size")),
    max_steps: Optional[int] = optional(..., "--max-steps", kind=int, default_factory=TrainDefault("max_steps"), help="Optimizer steps (the measured recipe); none: train --epochs passes."),
    max_length: int = typer.Option(..., "--max-length", default_factory=TrainDefault("max_length"), help="Tokens per training sequence (text + labels; cost grows with it)."),
    seed: int = typer.Option(..., "--seed", default_factory=TrainDefault("seed")),
    resume: bool = typer.Option(False, "--resume"),
    cpu_threads: Optional[int] = optional(..., "--cpu-threads", kind=int, default_factory=TrainDefault("cpu_threads"), help="torch threads on CPU (1 is often fastest on a busy machine; none: one per core)."),
    wise_alpha: float = typer.Option(..., "--wise-alpha", default_factory=TrainDefault("wise_alpha"), help="Save (1-A)*initial + A*fine-tuned weights (WiSE-FT); 1 = fine-tuned."),
    anchor_weight: float = typer.Option(..., "--anchor-weight", default_factory=TrainDefault("loss.anchor_weight"), help="Weight of the PriorAnchor loss (hold vectors near the initial backbone's); 0 = no anchor."),
    frozen_layers: Any = typer.Option(..., "--frozen-layers", parser=none_or(int, none=0, all="all"), metavar="N|all|none", default_factory=TrainDefault("frozen_layers"), help="Freeze the embeddings + N bottom layers (all: the whole backbone; none: no layer)."),
    train_label_text: TrainLabelText = typer.Option(..., "--train-label-text", case_sensitive=False, default_factory=TrainDefault("train_label_text"), help="What training batches encode: bare (label names and texts as given) or model (the label text options below); the saved model renders with them either way."),
    text_pooling: TextPooling = typer.Option(..., "--text-pooling", case_sensitive=False, default_factory=TrainDefault("model.text_pooling"), help="Text vector: mean of the text tokens, cls, or label (a label-conditioned attention pool)."),
    label_layout: LabelLayout = typer.Option(..., "--label-layout", case_sensitive=False, default_factory=TrainDefault("model.label_layout"), help="How each label sits in the one pass: close (label [LAB]), wrap ([LAB] label [SEP]: each label read exactly as alone, which MPNet needs) or auto (wrap on MPNet-like backbones, else close)."),
    max_text_tokens: Optional[int] = optional(..., "--max-text-tokens", kind=int, default_factory=TrainDefault("model.max_text_tokens"), help="Cap on a text's tokens per inference pass, saved with the model (none: no cap; the default is the backbone's sentence length)."),
    label_template: LabelTemplate = None,
    text_template: TextTemplate = None,
    label_descriptions: LabelDescriptions = None,
    init: Optional[str] = optional(None, "--init", help="Start from a trained GliZNet (a train --out folder or its "
                                   "model/): its backbone, head and label text, e.g. last week's model (none: a new "
                                   "head on --backbone)."),
    config_file: Optional[Path] = optional(None, "--config", kind=Path, help="A .json or .yaml of TrainConfig fields, with nested model / loss mappings (e.g. {\"eval_steps\": 100, \"loss\": {\"anchor_weight\": 2}}); the options given on the command line override it (none: the defaults shown here)."),
):
    """Train GliZNet on a dataset folder (no flags: the measured recipe, bench/README.md)."""
    at_least_one("--max-text-tokens", max_text_tokens, "no cap")
    if max_length < 1:
        raise UserError(f"--max-length {max_length} must be >= 1: tokens per training sequence (the recipe: 128)")
    if ctx.get_parameter_source("epochs").name == "COMMANDLINE" and ctx.get_parameter_source("max_steps").name != "COMMANDLINE":
        max_steps = None  # --epochs alone: train that many passes, as bench/accuracy.py does
    at_least_one("--max-steps", max_steps, "--epochs passes over the data")
    if frozen_layers != "all" and frozen_layers < 0:
        raise UserError(f"--frozen-layers {frozen_layers} must be a count >= 0, all (the whole backbone) or none")
    if (data / "triplet").is_dir() and not (data / "manifest.json").exists():
        raise UserError(f"--data {data} has no manifest.json: it is an unfinished dataset (interrupted write?); "
                        "run `gliznet generate` or `gliznet import` again on it")
    from gliznet.training.interpolate import check_alpha
    from gliznet.training.trainer import train as run_train

    check_alpha(wise_alpha, "--wise-alpha")
    if anchor_weight < 0:
        raise UserError(f"--anchor-weight={anchor_weight} must be >= 0: 0 turns the anchor off")
    values = {
        "epochs": epochs, "lr": lr, "batch_size": batch_size, "max_steps": -1 if max_steps is None else max_steps,
        "max_length": max_length, "seed": seed, "cpu_threads": cpu_threads, "wise_alpha": wise_alpha,
        "frozen_layers": -1 if frozen_layers == "all" else frozen_layers, "train_label_text": word(train_label_text),
        "anchor_weight": anchor_weight, "init": _init_folder(init), "text_pooling": word(text_pooling),
        "label_layout": word(label_layout),
        "max_text_tokens": max_text_tokens,
        **_label_text_options(label_template, text_template, label_descriptions),  # only those given
    }
    settings = {name: (TRAIN_FIELDS.get(name, name), value) for name, value in values.items()}  # -> TrainConfig key
    given = {name for name in settings if ctx.get_parameter_source(name).name == "COMMANDLINE"}
    if "epochs" in given:
        given.add("max_steps")  # --epochs alone set it to none above
    config = _train_config(config_file, [key_value for name, key_value in settings.items()
                                         if config_file is None or name in given])
    config = _aimed_recipe(config, data, config_file, "max_steps" in given)
    if init is None:
        backbone = _aimed_encoder(backbone, data)
    try:
        result = run_train(str(data), backbone, str(out), config, resume=resume)
    except Interrupted as stop:
        stop.what = _train_kept(out)
        raise
    summary = {k: v for k, v in result.items() if k not in ("batch_shapes", "step_times", "config")}
    console.print_json(json.dumps(summary, default=str))
    typer.echo(f"model: {Path(result['model_dir']).resolve()}")


def _init_folder(init: str | None) -> str | None:
    """``--init``: the GliZNet folder to start from (``model_folder``), checked before anything trains."""
    if init is None:
        return None
    from gliznet.modeling.model import model_folder

    try:
        return str(model_folder(init))
    except UserError as err:
        raise UserError(f"--init {err}") from None


def _aimed_recipe(config, data: Path, config_file: Path | None, steps_given: bool):
    """A dataset aimed at a label set (``generate --labels``: its manifest has ``aimed``) trains the aimed recipe's
    steps (``aimed_steps``: ``AIMED_EPOCHS`` passes over its train split, at least ``AIMED_MIN_STEPS``) unless
    ``--max-steps``/``--epochs`` or the ``--config`` file says otherwise (a line says so)."""
    from dataclasses import replace

    from gliznet.training.config import AIMED_EPOCHS, AIMED_MIN_STEPS, aimed_recipe, read_config_file

    if steps_given or (config_file is not None and {"max_steps", "epochs"} & set(read_config_file(config_file))):
        return config
    recipe = aimed_recipe(data, config.batch_size)
    if recipe is None:
        return config
    steps, rows = recipe
    console.print(f"aimed dataset: training {steps} steps ({AIMED_EPOCHS:g} passes over its {rows} train texts, at "
                  f"least {AIMED_MIN_STEPS}: the aimed recipe; --max-steps N or --epochs E to change); the model "
                  "records batch calibration for `gliznet evaluate`")
    return replace(config, max_steps=steps)


def _aimed_encoder(backbone: str | None, data: Path) -> str | None:
    """``--backbone``, else the aimed recipe's encoder for a dataset aimed at a label set (a line says so)."""
    from gliznet.training.config import AIMED_BACKBONE, aimed_backbone

    chosen = aimed_backbone(backbone, data)
    if backbone is None and chosen == AIMED_BACKBONE:
        console.print(f"aimed dataset: training from the {AIMED_BACKBONE} encoder, the aimed recipe's (--backbone minilm "
                      "for the packaged MiniLM)")
    return chosen


def _train_config(path: Path | None, options: list[tuple[str, Any]]):
    """The ``TrainConfig`` of ``--config FILE`` (``TrainConfig()`` without one) with ``options``, pairs of a
    TrainConfig key (``"lr"``, ``"loss.anchor_weight"``) and a value, set over it."""
    from gliznet.training.config import TrainConfig, read_config_file

    data = {}
    if path is not None:
        data = read_config_file(path)
        try:
            TrainConfig.from_dict(data)  # the file alone: its own mistakes name it
        except UserError as err:
            raise UserError(f"--config {path}: {err}") from None
    for key, value in options:
        part, _, name = key.rpartition(".")
        (data.setdefault(part, {}) if part else data)[name] = value
    return TrainConfig.from_dict(data)


def _train_kept(out: Path) -> str:
    """What an interrupted ``gliznet train`` leaves: no model (it is saved whole at the end, or not at all) and the
    last complete trainer checkpoint, if any.  A checkpoint cut short (no ``trainer_state.json``, which the Trainer
    writes last) is removed, so that ``--resume`` never starts from half a checkpoint."""
    import shutil

    folders = [p for p in (out / "checkpoints").glob("checkpoint-*") if p.is_dir()]
    for half in (p for p in folders if not (p / "trainer_state.json").is_file()):
        shutil.rmtree(half, ignore_errors=True)
    done = sorted((p for p in folders if (p / "trainer_state.json").is_file()),
                  key=lambda p: int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit() else -1)
    if done:
        return (f"training stopped, no model saved; the trainer checkpoint {done[-1]} is kept: re-run the same "
                "command with --resume to continue from it")
    return "training stopped before its first trainer checkpoint, no model saved: re-run the same command to start again"


@app.command()
@clear_errors
def interpolate(
    model: Path = typer.Option(..., "--model", help="A trained GliZNet: the --out folder of `gliznet train` or its model/ subfolder."),
    alpha: float = typer.Option(..., "--alpha", help="Weight of the fine-tuned weights: (1-A)*initial + A*fine-tuned."),
    out: Path = typer.Option(..., "--out", help="Folder for the interpolated model."),
):
    """Write a WiSE-FT interpolation of a trained model and its initial backbone (pick A on held-out data)."""
    from gliznet.training.interpolate import check_alpha
    from gliznet.training.interpolate import interpolate as mix

    check_alpha(alpha, "--alpha")
    tuned = _load_model(model)
    mix(tuned, alpha)
    tuned.config.wise_alpha = tuned.config.wise_alpha * alpha
    tuned.save_pretrained(out)
    typer.echo(f"model: {out.resolve()}")


@app.command()
@clear_errors
def evaluate(
    data: str = typer.Option(..., "--data", help="A .jsonl of {text, labels} or a dataset folder ('all' = every shared eval set)."),
    model: Optional[Path] = optional(None, "--model", kind=Path, help="A trained GliZNet: the --out folder of `gliznet train` or its model/ subfolder."),
    baseline: Baseline = typer.Option("none", "--baseline", case_sensitive=False, help="embedding or cross-encoder instead of --model (none: --model)."),
    backbone: Optional[str] = optional(None, "--backbone", help="Backbone for --baseline (none: the packaged MiniLM)."),
    label_template: LabelTemplate = None,
    text_template: TextTemplate = None,
    label_descriptions: LabelDescriptions = None,
    out: Path = typer.Option(Path("runs/eval"), "--out"),
    limit: Optional[int] = optional(None, "--limit", kind=int, help="Evaluate on a seeded subsample of N texts (none: every text)."),
    portion: Portion = typer.Option("none", "--portion", case_sensitive=False, help="dev (30 % of each set's rows, to choose a recipe) or test (the other 70 %, to report); none: every row."),
    fusion_seen: Optional[str] = optional(None, "--fusion-seen", help="XML0 label fusion (none: off): the training data whose labels are seen (dataset folder or .jsonl, comma-separated)."),
    fusion_lambda: float = typer.Option(DEFAULT_LAMBDA, "--fusion-lambda", help="Fusion weight of the seen labels' evidence (0 = the model's scores)."),
    fusion_tau: float = typer.Option(DEFAULT_TAU, "--fusion-tau", help="Softmax temperature over the seen labels' scores."),
    fusion_top_k: Optional[int] = optional(DEFAULT_TOP_K, "--fusion-top-k", kind=int, help="Seen labels per text in the fusion softmax (none: every seen label)."),
    calibration: Optional[Calibration] = typer.Option(None, "--calibration", case_sensitive=False, show_default=False, help="batch: subtract each label's mean score over the evaluated texts before the metrics (transductive; needs no gold labels); none: raw scores. Default: the model's recorded recipe (batch for a model trained on data aimed at a label set), else none."),
):
    """Evaluate a model or a baseline; writes report.json, report.md and plots."""
    from gliznet.evaluation.calibration import scorer_calibration
    from gliznet.evaluation.data import check_portion, default_eval_paths
    from gliznet.evaluation.fusion import check_fusion_params, make_fusion_scorer
    from gliznet.evaluation.runs import evaluate as run_eval
    from gliznet.evaluation.runs import evaluate_suite

    baseline, portion = word(baseline), word(portion)
    calibration = None if calibration is None else calibration.value  # None: the model's recorded recipe
    if (model is None) == (baseline is None):
        raise UserError("pass exactly one of --model DIR or --baseline {embedding,cross-encoder}")
    text_options = _label_text_options(label_template, text_template, label_descriptions)
    check_portion(portion)
    at_least_one("--fusion-top-k", fusion_top_k, "every seen label")
    at_least_one("--limit", limit, "every text")
    check_fusion_params(fusion_lambda, fusion_tau, fusion_top_k)
    if baseline is not None:
        from gliznet.evaluation.baselines import make_baseline

        scorer = make_baseline(baseline, backbone, **text_options)
    else:
        scorer = _with_label_text(_load_model(model), text_options)
    if calibration is None and (calibration := scorer_calibration(scorer)) != "none":
        console.print(f"calibration: {calibration} (the model's recorded recipe; --calibration none for raw scores)")
    if fusion_seen:
        scorer = make_fusion_scorer(scorer, fusion_seen, fusion_lambda, fusion_tau, fusion_top_k)
    if data == "all":
        report = evaluate_suite(scorer, default_eval_paths(), out_dir=str(out), limit=limit, portion=portion,
                                calibration=calibration)
    else:
        whole = limit is None and portion is None
        report = run_eval(scorer, data if whole else _limited(data, limit, portion), out_dir=str(out),
                          calibration=calibration)
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
    model: Path = typer.Option(..., "--model", help="A trained GliZNet: the --out folder of `gliznet train` or its model/ subfolder."),
    labels: str = typer.Option(..., "--labels", help='Comma-separated candidate labels: "a,b,c".'),
    threshold: Optional[float] = optional(None, "--threshold", kind=float, help="Keep only labels scoring at least this (none: every label, sorted)."),
    label_template: LabelTemplate = None,
    text_template: TextTemplate = None,
    label_descriptions: LabelDescriptions = None,
):
    """Score candidate labels for texts with a trained GliZNet."""
    names = [x.strip() for x in labels.split(",") if x.strip()]
    if not names:
        raise UserError('--labels is empty: pass candidate labels like --labels "sports,politics"')
    text_options = _label_text_options(label_template, text_template, label_descriptions)
    tuned = _with_label_text(_load_model(model), text_options)
    result = tuned.predict(list(text), names, threshold=threshold)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


_DESC = DescribeConfig()


@app.command("describe-labels")
@clear_errors
def describe_labels(
    out: Path = typer.Option(..., "--out", help="Descriptions JSONL (re-run with the same file to resume; failed and rejected answers go to <out>.rejected.jsonl)."),
    labels_from: Optional[Path] = optional(None, "--labels-from", kind=Path, help="A .jsonl of {text, labels}, a folder of them (one label set per file), or a dataset folder."),
    labels: Optional[str] = optional(None, "--labels", help='Comma-separated labels instead: "a,b,c".'),
    provider: str = typer.Option(_DESC.provider, "--provider", help=f"One of {', '.join(PROVIDERS)} (local: the embedded llama-server; --llm "
                                 "qwen2.5-coder-1.5b, the default, or smollm2)."),
    llm: Optional[str] = optional(_DESC.model, "--llm", help="The provider's model name (none: its default)."),
    concurrency: int = typer.Option(_DESC.concurrency, "--concurrency"),
):
    """Ask an LLM for a one-sentence description of each label (for --label-descriptions)."""
    from gliznet.generation.describe import describe_labels as run_describe
    from gliznet.generation.describe import label_sets_from
    from gliznet.llm.registry import make_provider

    if (labels_from is None) == (labels is None):
        raise UserError('pass exactly one of --labels-from FILE_OR_DIR or --labels "a,b,c"')
    if labels is not None:
        names = [x.strip() for x in labels.split(",") if x.strip()]
        if not names:
            raise UserError('--labels is empty: pass labels like --labels "sports,politics"')
        label_sets = {"labels": names}
    else:
        label_sets = label_sets_from(labels_from)
    config = DescribeConfig(provider=provider, model=llm, concurrency=concurrency)
    client = make_provider(provider, llm, concurrency=concurrency)
    try:
        client.check()
        report = run_describe(label_sets, client, out, config)
    finally:
        client.close()
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
    hub_repo: Optional[str] = optional(None, "--hub-repo", help="HF dataset repo id (needs HF_TOKEN; none: the local store only)."),
):
    """Publish a versioned snapshot locally (and to the Hub when --hub-repo is given)."""
    from gliznet.curation.publish import publish_hub, publish_local

    target = publish_local(data, store)
    typer.echo(f"snapshot: {target.resolve()}")
    if hub_repo:
        try:
            info = publish_hub(data, hub_repo)
        except (OSError, ConnectionError) as err:  # HfHubHTTPError is an OSError too
            raise UserError(f"--hub-repo {hub_repo}: the Hub push failed ({type(err).__name__}): check HF_TOKEN "
                               f"and the network; the local snapshot {target} is kept") from None
        typer.echo(f"hub: {info['repo_id']}@{info['version']}")


@app.command()
@clear_errors
def serve(
    config: Optional[Path] = optional(None, "--config", kind=Path, help="Deployment file (prefect.yaml format) with "
                                      "the schedules and parameters; none: the packaged flows/prefect.yaml."),
):
    """Serve the Prefect deployments (generate-hardset/default, regenerate-and-retrain/weekly)."""
    from flows.deployments import (
        serve_all,  # flows import Prefect: only this command needs it
    )

    try:
        serve_all(config)
    except Interrupted as stop:  # Ctrl-C / SIGTERM: the deployments stop being served; flow runs are Prefect's
        stop.what = "stopped serving the deployments"
        raise


def main() -> None:
    """Entry point.  SIGINT and SIGTERM stop a run fast and keep what arrived (``gliznet._process``): the
    command prints one line and exits 130 / 143 without waiting for abandoned calls (the ``atexit`` hooks,
    which stop an embedded server, run first)."""
    import atexit
    import os

    install_handlers()
    try:
        app()
    except SystemExit as done:
        if stop_requested() is not None and done.code == 128 + stop_requested():
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code)  # threads still waiting for an abandoned answer are not joined
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
