"""Bad input to the CLI and the flow ends with one clear line, a non-zero exit and nothing that looks done.

For each case a real ``python -m gliznet.cli`` process runs; the test asserts

* exit code != 0 and no Python traceback;
* exactly one ``error:`` line, the last line of stderr, naming the parameter and saying what to do;
* no ``manifest.json`` anywhere under the output path (a folder without a manifest reads as incomplete).

The same parameters given to the Prefect flow ``generate-hardset`` raise one-line errors naming them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_proxy import RECORDED_ALIAS, plan_flow_params

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env_drop: tuple[str, ...] = (), timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gliznet.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_clear_error(done: subprocess.CompletedProcess, *must_name: str) -> str:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    for word in must_name:
        assert word in errors[0], errors[0]
    says_fix = ":" in errors[0].removeprefix("error:") or " must be " in errors[0]
    assert says_fix, f"the line names the problem but not the fix: {errors[0]}"
    return errors[0]


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


def test_train_names_a_negative_max_text_tokens(tmp_path):
    model = tmp_path / "model"
    assert_one_clear_error(run_cli("train", "--data", str(tmp_path), "--out", str(model), "--max-text-tokens", "-1"),
                           "--max-text-tokens", "0 for no cap")
    assert not model.exists()


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
