"""Every setting is declared once, in its dataclass (``GenerateConfig``, ``BuildConfig``, ``TrainConfig``,
``DescribeConfig``): the CLI's options, the Prefect flows' parameters and the bench scripts' options are checked
against them here: the same names (the CLI's other spellings are the documented ``GENERATE_SPELLINGS`` and
``TRAIN_FIELDS`` of ``gliznet.cli``), the same defaults and the same allowed words."""

from __future__ import annotations

import argparse
import inspect
import json
import types
import typing
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer

from gliznet import cli
from gliznet.curation.hardset import BuildConfig
from gliznet.curation.negatives import NEGATIVE_CHECKS
from gliznet.generation.bundles import CROSS_ROLE_POLICIES
from gliznet.generation.describe import DescribeConfig
from gliznet.generation.plan import GenerateConfig

# settings a config file (--config) or the Python API sets, without a command-line option of their own
NOT_ON_THE_CLI = {"generate": {"temperature", "max_tokens", "prompt_id", "limits", "negative_fraction"},
                  "describe-labels": {"temperature", "max_tokens", "max_chars", "min_chars", "context_labels",
                                      "prompt_id"}}
GENERATE_NOT_SETTINGS = {"out", "config_file"}  # where it goes, and the file itself
ROOT = Path(__file__).resolve().parent.parent


def options(command) -> dict[str, tuple[str, Any, tuple | None]]:
    """A CLI command's options: parameter name -> (its spelling (a switch's "on" word), its default, its allowed
    words or None).  A default read from ``TrainConfig`` (``TrainDefault``) is that field's path; a required
    option's default is ``...``."""
    function = inspect.unwrap(command)
    hints = typing.get_type_hints(function, include_extras=True)
    found = {}
    for name, parameter in inspect.signature(function).parameters.items():
        info, kind = parameter.default, hints[name]
        if typing.get_origin(kind) is typing.Annotated:
            kind, info = kind.__origin__, next(m for m in kind.__metadata__ if isinstance(m, typer.models.OptionInfo))
        if not isinstance(info, typer.models.OptionInfo):
            continue  # the context, a positional argument
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # Optional[Choice]: its words
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        default = info.default_factory if info.default_factory is not None else info.default
        default = default.path if isinstance(default, cli.TrainDefault) else default
        decls = info.param_decls
        if not decls:  # typer.Option("--name") inside Annotated: the spelling is its first argument
            decls, default = (default,), parameter.default
        words = tuple(m.value for m in kind) if isinstance(kind, type) and issubclass(kind, Enum) else None
        found[name] = (decls[0].split("/")[0], cli.word(default) if isinstance(default, Enum) else default, words)
    return found


def spelled(field: str) -> str:
    return "--" + field.rpartition(".")[2].replace("_", "-")


def test_generate_options_are_the_generate_and_build_config_fields():
    generate, build = GenerateConfig(), BuildConfig()
    defaults = {f.name: getattr(generate, f.name) for f in fields(GenerateConfig)}
    defaults |= {f.name: getattr(build, f.name) for f in fields(BuildConfig)}
    allowed = {"negative_check": NEGATIVE_CHECKS, "cross_role_policy": CROSS_ROLE_POLICIES}
    settings = {name: o for name, o in options(cli.generate).items() if name not in GENERATE_NOT_SETTINGS}
    for name, (flag, default, words) in settings.items():
        field = cli.GENERATE_SPELLINGS.get(name, name)
        assert field in defaults, f"generate {flag} sets no GenerateConfig / BuildConfig field"
        assert name in cli.GENERATE_SPELLINGS or flag == spelled(field), f"{flag} is not spelled as {field}"
        assert default == defaults[field], f"{flag} defaults to {default!r}, {field} to {defaults[field]!r}"
        assert words == allowed.get(field), f"{flag} allows {words}, the library {allowed.get(field)}"
    on_cli = {cli.GENERATE_SPELLINGS.get(name, name) for name in settings}
    assert set(defaults) - on_cli == NOT_ON_THE_CLI["generate"]


def test_the_generate_flow_takes_the_same_settings_as_the_cli_with_the_same_defaults():
    pytest.importorskip("prefect")
    from flows.generate_hardset import generate_hardset_flow
    from flows.regenerate_and_retrain import regenerate_and_retrain

    generate, build = GenerateConfig(), BuildConfig()
    defaults = {f.name: getattr(generate, f.name) for f in fields(GenerateConfig)}
    defaults |= {f.name: getattr(build, f.name) for f in fields(BuildConfig)}
    flow = {name: p.default for name, p in inspect.signature(generate_hardset_flow.fn).parameters.items()}
    settings = {name: default for name, default in flow.items() if name not in ("out", "calls_per_task")}
    cli_settings = {cli.GENERATE_SPELLINGS.get(name, name) for name in options(cli.generate)} - GENERATE_NOT_SETTINGS
    assert set(settings) == cli_settings, "the flow's parameters and the CLI's options set different fields"
    for name, default in settings.items():
        assert default == defaults[name], f"flow parameter {name}={default!r}, the library's {defaults[name]!r}"
    weekly = {name: p.default for name, p in inspect.signature(regenerate_and_retrain.fn).parameters.items()}
    for name in set(weekly) & set(defaults) - {"seed"}:  # seed: None is the ISO week's
        assert weekly[name] == defaults[name], f"regenerate-and-retrain {name}={weekly[name]!r}"


def test_the_deployment_file_names_only_flow_parameters_and_train_config_fields():
    pytest.importorskip("prefect")
    import yaml

    from flows.generate_hardset import generate_hardset_flow
    from flows.regenerate_and_retrain import regenerate_and_retrain
    from gliznet.training.config import TrainConfig

    flows = {"generate_hardset_flow": generate_hardset_flow, "regenerate_and_retrain": regenerate_and_retrain}
    for deployment in yaml.safe_load((ROOT / "flows" / "prefect.yaml").read_text())["deployments"]:
        flow = flows[deployment["entrypoint"].rpartition(":")[2]]
        parameters = deployment.get("parameters") or {}
        assert set(parameters) <= set(inspect.signature(flow.fn).parameters), deployment["name"]
        TrainConfig.from_dict(parameters.get("train_params") or {})  # flat TrainConfig keys


def test_train_options_are_train_config_fields_and_read_their_defaults_from_it():
    from gliznet.training.config import TRAIN_LABEL_TEXT, TrainConfig
    from gliznet.modeling.config import GliZNetConfig

    allowed = {"train_label_text": TRAIN_LABEL_TEXT,
               "model.text_pooling": typing.get_args(typing.get_type_hints(GliZNetConfig)["text_pooling"]),
               "model.label_layout": typing.get_args(typing.get_type_hints(GliZNetConfig)["label_layout"])}
    not_settings = {"data", "out", "backbone", "resume", "config_file"}  # what and where; backbone: an argument of train()
    label_text = {"label_template", "text_template", "label_descriptions"}  # not given: GliZNetConfig's, not a copy
    for name, (flag, default, words) in options(cli.train).items():
        if name in not_settings:
            continue
        field = cli.TRAIN_FIELDS.get(name, name)
        part, _, leaf = field.rpartition(".")
        owner = getattr(TrainConfig(), part) if part else TrainConfig()
        assert leaf in {f.name for f in fields(owner)}, f"train {flag} sets no TrainConfig field ({field})"
        assert flag == spelled(field), f"{flag} is not spelled as {field}"
        if name in label_text or name == "init":
            assert default is None
        else:
            assert default == field, f"train {flag} reads its default from {default!r}, not {field}"
        if words is not None or field in allowed:
            assert set(words) == set(allowed[field]), f"{flag} allows {words}, the library {allowed[field]}"


def test_describe_labels_options_are_describe_config_fields():
    described = DescribeConfig()
    for name, (flag, default, _) in options(cli.describe_labels).items():
        if name in ("out", "labels_from", "labels"):
            continue
        field = cli.GENERATE_SPELLINGS.get(name, name)
        assert default == getattr(described, field), f"describe-labels {flag}"
    on_cli = {cli.GENERATE_SPELLINGS.get(n, n) for n in options(cli.describe_labels)}
    assert {f.name for f in fields(DescribeConfig)} - on_cli == NOT_ON_THE_CLI["describe-labels"]


def test_evaluate_choices_are_the_library_s():
    from gliznet.evaluation.baselines import BASELINES
    from gliznet.evaluation.calibration import CALIBRATIONS
    from gliznet.evaluation.data import PORTIONS

    found = options(cli.evaluate)
    from gliznet.modeling.config import CALIBRATIONS as RECORDED

    assert found["calibration"][2] == CALIBRATIONS == RECORDED and found["calibration"][1] is None  # None: the record
    assert found["portion"][2] == (*PORTIONS, "none") and found["baseline"][2] == (*BASELINES, "none")


def test_import_reads_its_policy_from_the_importer():
    from gliznet.curation.importer import IMPORT_LIMITS

    found = options(cli.import_)
    assert (found["min_text_chars"][1], found["min_not_labels"][1]) == (IMPORT_LIMITS.min_text_chars,
                                                                        IMPORT_LIMITS.min_not_labels)


@pytest.mark.parametrize("script", ["accuracy", "sweep"])
def test_bench_scripts_spell_train_settings_as_gliznet_train(script):
    from conftest import load_bench

    train_flags = {flag for name, (flag, _, _) in options(cli.train).items()}
    train_fields = {cli.TRAIN_FIELDS.get(name, name).rpartition(".")[2]: flag
                    for name, (flag, _, _) in options(cli.train).items()}
    parser = load_bench(script).build_parser()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or action.dest not in train_fields:
            continue
        assert action.option_strings[0] == train_fields[action.dest] and action.option_strings[0] in train_flags, (
            f"bench/{script}.py {action.option_strings[0]} sets {action.dest}: spell it {train_fields[action.dest]}")
    old = parser.parse_args(["--out", "x", "--threads", "2", "--limit", "0"])
    new = parser.parse_args(["--out", "x", "--cpu-threads", "2", "--limit", "none"])
    assert (old.cpu_threads, old.limit) == (new.cpu_threads, new.limit) == (2, None)


@pytest.mark.parametrize("args, values", [
    (["--negative-check", "EMBED", "--cross-role-policy", "Reject"], {"negative_check": "embed",
                                                                       "cross_role_policy": "reject"}),
    ([], {"negative_check": "off", "cross_role_policy": "keep"}),
])
def test_enumerated_options_take_any_case(tmp_path, monkeypatch, args, values):
    config, build, result = _cli_generate(tmp_path, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    assert {name: getattr(build, name) for name in values} == values


def test_help_lists_the_allowed_words():
    from typer.testing import CliRunner

    shown = CliRunner().invoke(cli.app, ["generate", "--help"], terminal_width=300).output
    assert "embed|llm|off" in shown and "keep|reject" in shown
    shown = CliRunner().invoke(cli.app, ["evaluate", "--help"], terminal_width=300).output
    assert "none|batch" in shown and "dev|test|none" in shown


def _cli_generate(tmp_path, monkeypatch, *args):
    """The configs ``gliznet generate ARGS`` hands to the library (the run itself replaced), and the result."""
    from typer.testing import CliRunner

    import gliznet.pipeline.generate as pipeline

    seen: dict = {}

    def fake_generate_hardset(config, out, build, **kwargs):
        seen.update(config=config, build=build)
        raise typer.Exit(0)

    monkeypatch.setattr(pipeline, "generate_hardset", fake_generate_hardset)
    result = CliRunner().invoke(cli.app, ["generate", "--out", str(tmp_path / "hs"), *args])
    return seen.get("config"), seen.get("build"), result


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_generate_reads_a_config_file_and_the_options_given_override_it(tmp_path, monkeypatch, suffix):
    import yaml

    settings = {"records": 40, "provider": "groq", "model": "llama-3.1-8b-instant", "temperature": 0.3,
                "limits": {"min_text_chars": 5}, "negative_check": "embed", "with_hardness": False,
                "price_per_mtok": [0.5, 1.5], "records_per_call": 6}
    path = tmp_path / f"run{suffix}"
    path.write_text(json.dumps(settings) if suffix == ".json" else yaml.safe_dump(settings))
    config, build, result = _cli_generate(tmp_path, monkeypatch, "--config", str(path), "--records", "12",
                                          "--llm", "other-model", "--negative-check", "off")
    assert result.exit_code == 0, result.output
    assert (config.provider, config.temperature, config.limits.min_text_chars, config.records_per_call) == (
        "groq", 0.3, 5, 6)  # from the file, including fields that have no option
    assert (build.with_hardness, build.price_per_mtok) == (False, (0.5, 1.5))
    assert (config.records, config.model, build.negative_check) == (12, "other-model", "off")  # the command line wins
    assert config.seed == GenerateConfig().seed and build.cross_role_policy == BuildConfig().cross_role_policy


@pytest.mark.parametrize("content, says", [('{"recods": 4}', "'recods' unknown"), ("[1]", "must be a mapping"),
                                           ('{"records": 0}', "--records must be >= 1")])
def test_generate_names_a_bad_config_file_in_one_line(tmp_path, monkeypatch, content, says):
    path = tmp_path / "run.json"
    path.write_text(content)
    config, _, result = _cli_generate(tmp_path, monkeypatch, "--config", str(path))
    assert config is None and result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.output
