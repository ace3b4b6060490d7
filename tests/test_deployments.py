"""One deployment file, flows/prefect.yaml, is what both `gliznet serve` and `prefect deploy` read.

The weekly cron, timezone and parameters are written there and nowhere else; the deployments
`gliznet serve` builds take them from that file (or from the file given with --config).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT_FILE = ROOT / "flows" / "prefect.yaml"


def declared() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load(DEPLOYMENT_FILE.read_text())["deployments"]}


def served(config: Path | None = None) -> dict:
    from flows.deployments import build_deployments

    return {d.name: d for d in build_deployments(config)}


def test_the_weekly_schedule_is_written_in_one_file_only():
    weekly = declared()["weekly"]
    assert weekly["entrypoint"] == "flows/regenerate_and_retrain.py:regenerate_and_retrain"
    assert declared()["default"]["entrypoint"] == "flows/generate_hardset.py:generate_hardset_flow"
    assert not (ROOT / "prefect.yaml").exists() and not (ROOT / "flows" / "weekly.yaml").exists()
    cron = weekly["schedules"][0]["cron"]
    sources = [p for folder in ("flows", "gliznet") for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".yaml"}]
    assert [p for p in sources if cron in p.read_text()] == [DEPLOYMENT_FILE]


def test_gliznet_serve_takes_schedule_and_parameters_from_the_deployment_file():
    weekly, default = declared()["weekly"], declared()["default"]
    deployments = served()
    assert set(deployments) == {"weekly", "default"}
    schedule = deployments["weekly"].schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == (weekly["schedules"][0]["cron"], weekly["schedules"][0]["timezone"])
    assert deployments["weekly"].parameters == weekly["parameters"]
    assert deployments["weekly"].description == weekly["description"]
    assert deployments["weekly"].flow_name == "regenerate-and-retrain"
    assert deployments["default"].flow_name == "generate-hardset" and not deployments["default"].schedules
    assert deployments["default"].parameters == default["parameters"]


def test_a_changed_deployment_file_changes_what_is_served(tmp_path):
    content = yaml.safe_load(DEPLOYMENT_FILE.read_text())
    weekly = next(d for d in content["deployments"] if d["name"] == "weekly")
    weekly["schedules"] = [{"cron": "30 4 * * 2", "timezone": "UTC"}]
    weekly["parameters"] = {**weekly["parameters"], "records": 7, "train_params": {"max_steps": 3}}
    custom = tmp_path / "custom.yaml"
    custom.write_text(yaml.safe_dump(content))
    deployment = served(custom)["weekly"]
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("30 4 * * 2", "UTC")
    assert deployment.parameters["records"] == 7 and deployment.parameters["train_params"] == {"max_steps": 3}


def test_the_weekly_parameters_are_parameters_of_the_flow():
    import inspect

    from flows.regenerate_and_retrain import regenerate_and_retrain

    accepted = inspect.signature(regenerate_and_retrain.fn).parameters
    assert set(declared()["weekly"]["parameters"]) <= set(accepted)
    # the flow does not re-spell the weekly values: its defaults are the library's
    assert accepted["train_params"].default is None and accepted["eval_limit"].default is None


def _serve_error(config: Path) -> str:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "gliznet.cli", "serve", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("content, says", [
    (None, "does not exist"),
    ("deployments: [name: weekly\n", "not valid YAML (line"),
    ("name: gliznet\n", "no 'deployments' list"),
    ("deployments:\n  - name: weekly\n", "no 'entrypoint'"),
    ("deployments:\n  - name: weekly\n    entrypoint: flows/regenerate_and_retrain.py:regenerate_and_retrain\n"
     "    schedules:\n      - interval: 3600\n", "needs 'cron'"),
    ("deployments:\n  - name: weekly\n    entrypoint: flows/nowhere.py:flow\n", "names no flow"),
    ("deployments:\n  - name: weekly\n    entrypoint: flows/regenerate_and_retrain.py:regenerate_and_retrain\n"
     "    schedules:\n      - cron: '61 * * * *'\n", "is invalid (Invalid cron string"),
    ("deployments:\n  - name: weekly\n    entrypoint: flows/regenerate_and_retrain.py:regenerate_and_retrain\n"
     "    schedules:\n      - cron: '0 3 * * 1'\n        timezone: Mars/Base\n", "is invalid ("),
])
def test_serve_with_a_missing_or_bad_file_says_what_is_wrong_in_one_line(tmp_path, content, says):
    config = tmp_path / "prefect.yaml"
    if content is not None:
        config.write_text(content)
    line = _serve_error(config)
    assert says in line and str(config) in line, line


@pytest.mark.slow
def test_prefect_deploy_reads_the_same_file(prefect_harness, tmp_path):
    """`prefect deploy --prefect-file flows/prefect.yaml` registers what `gliznet serve` would serve."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "GLIZNET_HOME": str(ROOT)}
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    for command in (["work-pool", "create", "gliznet", "--type", "process", "--overwrite"],
                    ["deploy", "--all", "--prefect-file", str(DEPLOYMENT_FILE.relative_to(ROOT))]):
        done = subprocess.run(prefect + command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = served()["weekly"]
    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name("regenerate-and-retrain/weekly")
        default = client.read_deployment_by_name("generate-hardset/default")
        for deployment in (weekly, default):  # leave the server as found: other tests serve these names
            client.delete_deployment(deployment.id)
    schedule = weekly.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == (expected.schedules[0].schedule.cron,
                                                  expected.schedules[0].schedule.timezone)
    assert weekly.parameters == expected.parameters
    assert weekly.entrypoint == "flows/regenerate_and_retrain.py:regenerate_and_retrain"


def test_every_build_setting_of_the_cli_is_a_parameter_of_the_generate_flow():
    """A curation setting the CLI takes (BuildConfig) can be given to the flow too, e.g. --cross-role-policy."""
    import dataclasses
    import inspect

    from flows.generate_hardset import generate_hardset_flow
    from gliznet.curation.hardset import BuildConfig

    accepted = inspect.signature(generate_hardset_flow.fn).parameters
    not_on_the_cli = {"negative_fraction"}  # a stated constant (SUSPECT_FRACTION), no CLI option either
    missing = [f.name for f in dataclasses.fields(BuildConfig) if f.name not in accepted and f.name not in not_on_the_cli]
    assert missing == []
    assert accepted["cross_role_policy"].default == BuildConfig().cross_role_policy == "keep"
