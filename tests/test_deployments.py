"""The served deployments and prefect.yaml agree."""

from __future__ import annotations


def test_prefect_yaml_declares_the_same_weekly_deployment_as_gliznet_serve():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    declared = {d["name"]: d for d in yaml.safe_load((root / "prefect.yaml").read_text())["deployments"]}
    served = yaml.safe_load((root / "flows" / "weekly.yaml").read_text())
    weekly = declared["weekly"]
    assert weekly["entrypoint"] == "flows/regenerate_and_retrain.py:regenerate_and_retrain"
    assert weekly["schedules"][0] == {"cron": served["cron"], "timezone": served["timezone"]}
    assert weekly["parameters"] == served["parameters"]
    assert declared["default"]["entrypoint"] == "flows/generate_hardset.py:generate_hardset_flow"
