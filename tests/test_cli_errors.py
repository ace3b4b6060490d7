"""Bad input to the CLI and the flow ends with one clear line, a non-zero exit and nothing that looks done.

For each case a real ``python -m gliznet.cli`` process runs (``slow``; one bad input per command also runs in
process, quickly); the test asserts

* exit code != 0 and no Python traceback;
* exactly one ``error:`` line, the last line of stderr, naming the parameter and saying what to do;
* no ``manifest.json`` anywhere under the output path (a folder without a manifest reads as incomplete).

The same parameters given to the Prefect flow ``generate-hardset`` raise one-line errors naming them; and only
a user's mistake loses its traceback (``clear_errors``): a bug or a failing machine keeps it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_one_clear_error, run_cli
from fault_proxy import RECORDED_ALIAS, plan_flow_params



def no_manifest_under(path: Path) -> bool:
    return not path.exists() or not list(path.rglob("manifest.json"))


@pytest.fixture()
def blocker(tmp_path) -> Path:
    """A regular file; a path under it cannot be created, even by root."""
    f = tmp_path / "a-file"
    f.write_text("in the way")
    return f


@pytest.mark.slow
def test_negative_records_names_the_parameter(tmp_path):
    out = tmp_path / "out"
    line = assert_one_clear_error(run_cli("generate", "--records", "-3", "--out", str(out)), "--records", "at least")
    assert "-3" in line and no_manifest_under(out)


@pytest.mark.slow
def test_unknown_provider_lists_the_known_ones(tmp_path):
    out = tmp_path / "out"
    assert_one_clear_error(run_cli("generate", "--provider", "openai-ish", "--out", str(out)),
                           "--provider", "local", "ollama", "groq")
    assert no_manifest_under(out)


@pytest.mark.slow
def test_missing_groq_key_says_to_export_it(tmp_path):
    out = tmp_path / "out"
    done = run_cli("generate", "--provider", "groq", "--records", "4", "--out", str(out), env_drop=("GROQ_API_KEY",))
    assert_one_clear_error(done, "GROQ_API_KEY", "export")
    assert no_manifest_under(out)
    assert not (out / "checkpoint" / "calls.jsonl").exists(), "no call was made"


@pytest.mark.slow
@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_out_names_out_and_the_fix(blocker, where):
    out = blocker / "dataset" if where == "under-a-file" else blocker
    done = run_cli("generate", "--provider", "groq", "--records", "4", "--out", str(out))
    assert_one_clear_error(done, "--out", "not writable")
    assert blocker.read_text() == "in the way"


@pytest.mark.slow
@pytest.mark.parametrize("flag,value", [("--records-per-call", "0"), ("--concurrency", "0"), ("--max-calls", "-1"),
                                        ("--test-label-fraction", "1.5"), ("--near-dup-threshold", "0")])
def test_out_of_range_generate_options_name_themselves(tmp_path, flag, value):
    out = tmp_path / "out"
    assert_one_clear_error(run_cli("generate", flag, value, "--out", str(out)), flag)
    assert no_manifest_under(out)


@pytest.mark.slow
def test_train_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    data = tmp_path / "holiday-photos"
    data.mkdir()
    (data / "img.txt").write_text("not a dataset")
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(data), "--out", str(model)), "--data", "gliznet generate")
    assert no_manifest_under(model) and not (model / "model").exists()


@pytest.mark.slow
@pytest.mark.parametrize("flag,value,fix", [("--max-text-tokens", "-1", "none for no cap"),
                                            ("--max-text-tokens", "0", "none for no cap"),
                                            ("--max-steps", "-1", "none for --epochs passes"),
                                            ("--frozen-layers", "-1", "all (the whole backbone)")])
def test_off_is_spelled_none_and_the_old_numbers_are_named(tmp_path, flag, value, fix):
    """0 / -1 no longer mean "off": the line names the option and the word to use instead."""
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(tmp_path), "--out", str(model), flag, value), flag, fix)
    assert not model.exists()


@pytest.mark.slow
def test_evaluate_names_a_zero_fusion_top_k(tmp_path):
    assert_one_clear_error(run_cli("evaluate", "--baseline", "embedding", "--data", str(tmp_path), "--fusion-seen",
                                   str(tmp_path), "--fusion-top-k", "0"), "--fusion-top-k", "none for every seen label")


@pytest.mark.slow
def test_evaluate_names_an_unknown_calibration(tmp_path):
    assert_one_clear_error(run_cli("evaluate", "--baseline", "embedding", "--data", str(tmp_path), "--calibration",
                                   "mean", "--out", str(tmp_path / "eval")), "--calibration", "'none', 'batch'")
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", [["predict", "some text", "--labels", "a,b"], ["evaluate", "--data", "x.jsonl"],
                                     ["interpolate", "--alpha", "0.5", "--out", "OUT/half"]])
def test_model_that_is_no_gliznet_folder_names_model_and_both_layouts(tmp_path, command):
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "img.txt").write_text("not a model")
    args = [a.replace("OUT", str(tmp_path)) for a in command]
    assert_one_clear_error(run_cli(*args, "--model", str(folder)), "--model", str(folder), "gliznet train", "model/")
    assert not (tmp_path / "half").exists()


def test_only_user_errors_lose_their_traceback(tmp_path):
    """UserError (a config dataclass's check too), LLMConfigError and a file the user named that is missing are
    one line and exit 2; a ValueError - an internal check of gliznet's or one from inside a dependency -, a
    RuntimeError (CUDA out of memory) or a file missing from the installed package is a bug or a failure of
    the machine and propagates with its traceback."""
    import numpy as np
    import typer

    import gliznet
    from gliznet.cli import clear_errors
    from gliznet.errors import UserError
    from gliznet.llm.provider import LLMConfigError
    from gliznet.training.config import TrainConfig

    def raising(exc: BaseException):
        def fail():
            raise exc
        return clear_errors(fail)

    for user_error in (UserError("--x 0 must be >= 1, or none"), LLMConfigError("GROQ_API_KEY is not set: export it"),
                       FileNotFoundError("no such file: x.jsonl"),
                       FileNotFoundError(2, "No such file or directory", str(tmp_path / "x.jsonl"))):
        with pytest.raises(typer.Exit) as done:
            raising(user_error)()
        assert done.value.exit_code == 2
    with pytest.raises(typer.Exit):
        clear_errors(lambda: TrainConfig(train_label_text="nope"))()  # a config dataclass's input check
    with pytest.raises(RuntimeError, match="out of memory"):
        raising(RuntimeError("CUDA out of memory"))()
    with pytest.raises(ValueError, match="reshape"):
        clear_errors(lambda: np.zeros(3).reshape(2))()  # raised inside numpy: a bug of ours, not the user's
    with pytest.raises(ValueError, match="a bug"):
        raising(ValueError("a bug"))()
    with pytest.raises(ValueError, match="rendering"):  # an internal invariant raised in gliznet's own code
        clear_errors(lambda: _collate_with_the_wrong_rendering())()
    ours = str(Path(gliznet.__file__).parent / "missing-template.j2")
    with pytest.raises(FileNotFoundError):  # a file of the package itself: our bug
        raising(FileNotFoundError(2, "No such file or directory", ours))()


def _collate_with_the_wrong_rendering():
    from gliznet.training.batches import LabelCollator
    from gliznet.training.config import TrainConfig

    LabelCollator(None, TrainConfig())([{"label_text": "another rendering"}])


# -- one bad input per command, in process: exit 2 and one line --------------------------------------

def _jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ROWS = [{"text": f"text {i} about kettles", "labels": [f"label {i % 4}"]} for i in range(12)]


def _bad_input_cases(tmp: Path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """command -> (its arguments with one bad input, what the one error line must name)."""
    (tmp / "no-manifest").mkdir()
    data = _jsonl(tmp / "rows.jsonl", ROWS)
    return {
        "generate": (["generate", "--out", str(tmp / "out"), "--negative-check", "nope"], ("--negative-check", "nope")),
        "import": (["import", "--from", str(data), "--out", str(tmp / "out"), "--test-label-fraction", "1.5"],
                   ("test_label_fraction", "1.5")),
        "train": (["train", "--data", str(tmp / "no-manifest"), "--out", str(tmp / "out")], ("--data", "triplet")),
        "train --config": (["train", "--data", str(tmp), "--out", str(tmp / "out"), "--config", str(tmp / "x.yaml")],
                           ("--config", "does not exist")),
        "evaluate": (["evaluate", "--baseline", "embedding", "--data", str(data), "--portion", "middle",
                      "--out", str(tmp / "out")], ("--portion", "middle")),
        "predict": (["predict", "a text", "--model", str(tmp), "--labels", "a,b", "--label-template", "no slot"],
                    ("label_template", "{label}")),
        "interpolate": (["interpolate", "--model", str(tmp), "--alpha", "2", "--out", str(tmp / "out")],
                        ("--alpha", "[0, 1]")),
        "publish": (["publish", "--data", str(tmp / "no-manifest"), "--store", str(tmp / "out")], ("manifest.json",)),
        "describe-labels": (["describe-labels", "--labels-from", str(tmp / "missing.jsonl"),
                             "--out", str(tmp / "out.jsonl")], ("--labels-from", "does not exist")),
        "serve": (["serve", "--config", str(tmp / "missing.yaml")], ("--config", "does not exist")),
    }


@pytest.mark.parametrize("command", ["generate", "import", "train", "train --config", "evaluate", "predict",
                                     "interpolate", "publish", "describe-labels", "serve"])
def test_each_command_names_a_bad_input_in_one_line_with_exit_2(tmp_path, command):
    from typer.testing import CliRunner

    from gliznet.cli import app

    args, must_name = _bad_input_cases(tmp_path)[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for word in must_name:
        assert word in lines[0], lines[0]
    assert ":" in lines[0].removeprefix("error:") or " must be " in lines[0], lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("manifest.json"))


@pytest.mark.slow
def test_train_refuses_a_dataset_folder_whose_triplet_is_not_a_dataset(tmp_path):
    """A ``triplet/`` that is not a saved DatasetDict (a crash left it half-written) is named as --data."""
    data = tmp_path / "broken"
    (data / "triplet").mkdir(parents=True)
    (data / "triplet" / "junk.arrow").write_bytes(b"\x00" * 16)
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(data), "--out", str(model)), "--data")
    assert no_manifest_under(model)


@pytest.mark.slow
def test_train_refuses_a_dataset_folder_without_manifest(tmp_path):
    """A folder whose manifest.json is missing was never finished (write_hardset writes the manifest
    last): it must not be trained on even if its triplet/ happens to load."""
    from collections import Counter

    from gliznet.curation.hardset import MANIFEST, write_hardset
    from gliznet.curation.split import zero_shot_split
    from gliznet.records import Provenance, Record

    prov = Provenance(provider="t", model="t", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                      reading_level="r", seed=0)
    records = [Record(text=f"text number {i} about kettles and tea", labels=[f"topic {i % 5}"],
                      not_labels=[f"other {i % 7}", f"else {i % 3}", "unrelated"], provenance=prov) for i in range(20)]
    data = tmp_path / "unfinished"
    write_hardset(data, records=records, rejections=[], counts=Counter(), params={},
                  split=zero_shot_split(records, test_label_fraction=0.2, seed=0))
    (data / MANIFEST).unlink()  # what a crash between the datasets and the manifest leaves
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(data), "--out", str(model), "--max-steps", "1"),
                           "--data", "manifest")
    assert no_manifest_under(model)


# -- the Prefect flow --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("params,names", [
    ({"records": -1}, "--records"),
    ({"provider": "nope"}, "provider"),
    ({"provider": "groq"}, "GROQ_API_KEY"),
    ({"concurrency": 0}, "--concurrency"),
    ({"out": "BLOCKER/x", **plan_flow_params()}, "--out"),  # a provider that answers (the recording), a bad --out
])
def test_flow_parameters_out_of_range_fail_with_one_line(prefect_harness, replay, tmp_path, blocker, monkeypatch,
                                                         params, names):
    from flows.generate_hardset import generate_hardset_flow

    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    if params.get("model") == RECORDED_ALIAS:
        monkeypatch.setenv("GROQ_API_KEY", "replay-no-key")
        monkeypatch.setenv("GROQ_BASE_URL", replay.base_url)
    params = {"out": str(tmp_path / "out"), **params}
    params["out"] = params["out"].replace("BLOCKER", str(blocker))
    with pytest.raises(ValueError) as err:  # LLMConfigError is a ValueError
        generate_hardset_flow(**params, with_hardness=False)
    message = str(err.value)
    assert "\n" not in message and names in message
    assert ":" in message or " must be " in message, f"names the problem but not the fix: {message}"
    assert no_manifest_under(Path(params["out"]))
