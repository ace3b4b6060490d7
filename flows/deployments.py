"""Deployments served from one process: ``gliznet serve`` (or ``python -m flows.deployments``).

    generate-hardset/default       no schedule; trigger with `prefect deployment run`
    regenerate-and-retrain/weekly  cron, weekly, explicit timezone, parameters from a YAML file
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import serve
from prefect.schedules import Cron

from flows.generate_hardset import generate_hardset_flow
from flows.regenerate_and_retrain import regenerate_and_retrain

DEFAULT_CONFIG = Path(__file__).resolve().parent / "weekly.yaml"


def load_weekly_config(path: str | Path | None = None) -> dict:
    path = Path(path or DEFAULT_CONFIG)
    if not path.exists():
        raise ValueError(f"--config {path} does not exist: pass a YAML file like flows/weekly.yaml")
    config = yaml.safe_load(path.read_text()) or {}
    for key in ("cron", "timezone", "parameters"):
        if key not in config:
            raise ValueError(f"--config {path} has no '{key}': see flows/weekly.yaml for the expected keys")
    return config


def build_deployments(config_path: str | Path | None = None) -> list:
    config = load_weekly_config(config_path)
    return [
        generate_hardset_flow.to_deployment(name="default", description="Generate a hard zero-shot dataset."),
        regenerate_and_retrain.to_deployment(
            name="weekly",
            schedules=[Cron(config["cron"], timezone=config["timezone"])],
            parameters=config["parameters"],
            description="Weekly: regenerate the dataset, retrain, evaluate, release if not worse.",
        ),
    ]


def serve_all(config_path: str | Path | None = None) -> None:
    serve(*build_deployments(config_path))


if __name__ == "__main__":  # pragma: no cover
    serve_all()
