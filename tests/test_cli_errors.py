"""Bad input to the CLI and the flow ends with one clear line, a non-zero exit and nothing that looks done.

For each case a real ``python -m gliznet.cli`` process runs; the test asserts

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

pytestmark = pytest.mark.slow  # every case runs the CLI in a subprocess or the flow on a Prefect server


def no_manifest_under(path: Path) -> bool:
    return not path.exists() or not list(path.rglob("manifest.json"))


@pytest.fixture()
def blocker(tmp_path) -> Path:
    """A regular file; a path under it cannot be created, even by root."""
    f = tmp_path / "a-file"
    f.write_text("in the way")
    return f


def test_negative_records_names_the_parameter(tmp_path):
    out = tmp_path / "out"
    line = assert_one_clear_error(run_cli("generate", "--records", "-3", "--out", str(out)), "--records", "at least")
    assert "-3" in line and no_manifest_under(out)


def test_unknown_provider_lists_the_known_ones(tmp_path):
    out = tmp_path / "out"
    assert_one_clear_error(run_cli("generate", "--provider", "openai-ish", "--out", str(out)),
                           "--provider", "local", "ollama", "groq")
    assert no_manifest_under(out)


def test_missing_groq_key_says_to_export_it(tmp_path):
    out = tmp_path / "out"
    done = run_cli("generate", "--provider", "groq", "--records", "4", "--out", str(out), env_drop=("GROQ_API_KEY",))
    assert_one_clear_error(done, "GROQ_API_KEY", "export")
    assert no_manifest_under(out)
    assert not (out / "checkpoint" / "calls.jsonl").exists(), "no call was made"


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_out_names_out_and_the_fix(blocker, where):
    out = blocker / "dataset" if where == "under-a-file" else blocker
    done = run_cli("generate", "--provider", "groq", "--records", "4", "--out", str(out))
    assert_one_clear_error(done, "--out", "not writable")
    assert blocker.read_text() == "in the way"


@pytest.mark.parametrize("flag,value", [("--records-per-call", "0"), ("--concurrency", "0"), ("--max-calls", "-1"),
                                        ("--test-label-fraction", "1.5"), ("--near-dup-threshold", "0")])
def test_out_of_range_generate_options_name_themselves(tmp_path, flag, value):
    out = tmp_path / "out"
    assert_one_clear_error(run_cli("generate", flag, value, "--out", str(out)), flag)
    assert no_manifest_under(out)


def test_train_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    data = tmp_path / "holiday-photos"
    data.mkdir()
    (data / "img.txt").write_text("not a dataset")
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(data), "--out", str(model)), "--data", "gliznet generate")
    assert no_manifest_under(model) and not (model / "model").exists()


@pytest.mark.parametrize("flag,value,fix", [("--max-text-tokens", "-1", "none for no cap"),
                                            ("--max-text-tokens", "0", "none for no cap"),
                                            ("--max-steps", "-1", "none for --epochs passes"),
                                            ("--frozen-layers", "-1", "all (the whole backbone)")])
def test_off_is_spelled_none_and_the_old_numbers_are_named(tmp_path, flag, value, fix):
    """0 / -1 no longer mean "off": the line names the option and the word to use instead."""
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(tmp_path), "--out", str(model), flag, value), flag, fix)
    assert not model.exists()


def test_evaluate_names_a_zero_fusion_top_k(tmp_path):
    assert_one_clear_error(run_cli("evaluate", "--baseline", "embedding", "--data", str(tmp_path), "--fusion-seen",
                                   str(tmp_path), "--fusion-top-k", "0"), "--fusion-top-k", "none for every seen label")


def test_evaluate_names_an_unknown_calibration(tmp_path):
    assert_one_clear_error(run_cli("evaluate", "--baseline", "embedding", "--data", str(tmp_path), "--calibration",
                                   "mean", "--out", str(tmp_path / "eval")), "--calibration", "'none', 'batch'")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("command", [["predict", "some text", "--labels", "a,b"], ["evaluate", "--data", "x.jsonl"],
                                     ["interpolate", "--alpha", "0.5", "--out", "OUT/half"]])
def test_model_that_is_no_gliznet_folder_names_model_and_both_layouts(tmp_path, command):
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "img.txt").write_text("not a model")
    args = [a.replace("OUT", str(tmp_path)) for a in command]
    assert_one_clear_error(run_cli(*args, "--model", str(folder)), "--model", str(folder), "gliznet train", "model/")
    assert not (tmp_path / "half").exists()


def test_only_user_errors_lose_their_traceback():
    """UserError, LLMConfigError, a missing file and gliznet's own input checks (ValueErrors it raises) are one
    line and exit 2; a RuntimeError (CUDA out of memory) or a ValueError from inside a dependency is a bug or a
    failure of the machine and propagates with its traceback."""
    import numpy as np
    import typer

    from gliznet.cli import clear_errors
    from gliznet.errors import UserError
    from gliznet.generation.plan import GenerateConfig
    from gliznet.llm.provider import LLMConfigError

    def raising(exc: BaseException):
        def fail():
            raise exc
        return clear_errors(fail)

    for user_error in (UserError("--x 0 must be >= 1, or none"), LLMConfigError("GROQ_API_KEY is not set: export it"),
                       FileNotFoundError("no such file: x.jsonl")):
        with pytest.raises(typer.Exit) as done:
            raising(user_error)()
        assert done.value.exit_code == 2
    with pytest.raises(typer.Exit):
        clear_errors(lambda: GenerateConfig(records=0))()  # a library input check, raised in gliznet code
    with pytest.raises(RuntimeError, match="out of memory"):
        raising(RuntimeError("CUDA out of memory"))()
    with pytest.raises(ValueError, match="reshape"):
        clear_errors(lambda: np.zeros(3).reshape(2))()  # raised inside numpy: a bug of ours, not the user's
    with pytest.raises(ValueError, match="a bug"):
        raising(ValueError("a bug"))()  # raised outside gliznet's modules


def test_train_refuses_a_dataset_folder_whose_triplet_is_not_a_dataset(tmp_path):
    """A ``triplet/`` that is not a saved DatasetDict (a crash left it half-written) is named as --data."""
    data = tmp_path / "broken"
    (data / "triplet").mkdir(parents=True)
    (data / "triplet" / "junk.arrow").write_bytes(b"\x00" * 16)
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(data), "--out", str(model)), "--data")
    assert no_manifest_under(model)


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
