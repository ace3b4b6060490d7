"""Deployments served from one process: ``gliznet serve`` (or ``python -m flows.deployments``).

    generate-hardset/default       no schedule; trigger with `prefect deployment run`
    regenerate-and-retrain/weekly  cron, weekly, explicit timezone

Both are declared once, in the deployment file ``flows/prefect.yaml`` (Prefect's own format, shipped
with the package), which ``prefect deploy --prefect-file flows/prefect.yaml`` reads too. Serving
takes from each declared deployment its name, entrypoint, description, cron schedules and
parameters; work pools and pull steps are for ``prefect deploy`` only.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from gliznet.errors import UserError
from gliznet._extras import require

DEFAULT_FILE = Path(__file__).resolve().parent / "prefect.yaml"


def read_deployment_file(path: str | Path | None = None) -> list[dict]:
    """The ``deployments`` of a prefect.yaml-shaped file, each checked for what serving needs."""
    path = Path(path or DEFAULT_FILE)
    if not path.is_file():
        raise UserError(f"--config {path} does not exist: pass a deployment file like flows/prefect.yaml")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or "unreadable"
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise UserError(f"--config {path} is not valid YAML ({where}{problem}): fix it, see flows/prefect.yaml "
                        f"for the layout") from None
    deployments = content.get("deployments") if isinstance(content, dict) else None
    if not isinstance(deployments, list) or not deployments:
        raise UserError(f"--config {path} has no 'deployments' list: see flows/prefect.yaml for the layout")
    for i, deployment in enumerate(deployments):
        missing = [key for key in ("name", "entrypoint") if not isinstance(deployment, dict) or key not in deployment]
        if missing:
            raise UserError(f"--config {path}: deployment #{i + 1} has no '{missing[0]}': "
                            f"see flows/prefect.yaml for the keys")
    return deployments


def flow_of(deployment: dict):
    """The flow of ``entrypoint: flows/<module>.py:<flow>``, imported as a module (works from a wheel too)."""
    entrypoint = deployment["entrypoint"]
    file, _, name = entrypoint.partition(":")
    module = file.removesuffix(".py").replace("/", ".")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        if err.name != module and not module.startswith(f"{err.name}."):
            raise  # the module exists but needs something that is not installed
    except AttributeError:
        pass
    raise UserError(f"deployment '{deployment['name']}': entrypoint {entrypoint} names no flow: use "
                    f"<package>/<module>.py:<flow>, e.g. flows/generate_hardset.py:generate_hardset_flow")


def cron_schedules(deployment: dict) -> list:
    """``schedules: [{cron, timezone, active?}]`` as Prefect ``Cron`` schedules."""
    from prefect.schedules import Cron

    schedules = []
    for entry in deployment.get("schedules") or []:
        if not isinstance(entry, dict) or "cron" not in entry:
            raise UserError(f"deployment '{deployment['name']}': each schedule needs 'cron' (and 'timezone'); "
                            f"got {entry!r}")
        options = {key: entry[key] for key in ("timezone", "active") if key in entry}
        try:
            if "timezone" in entry:
                ZoneInfo(str(entry["timezone"]))  # Prefect checks it only when the server stores the schedule
            schedules.append(Cron(entry["cron"], **options))
        except (ValueError, ZoneInfoNotFoundError) as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise UserError(f"deployment '{deployment['name']}': schedule {entry} is invalid ({reason}): "
                            f"give a 5-field cron and an IANA timezone like Europe/Berlin") from None
    return schedules


def build_deployments(config_path: str | Path | None = None) -> list:
    """The deployments ``gliznet serve`` serves, built from the deployment file (needs the ``[pipeline]`` extra)."""
    require("pipeline", "prefect")
    path = Path(config_path or DEFAULT_FILE)
    deployments = []
    for declared in read_deployment_file(path):
        try:
            flow, schedules = flow_of(declared), cron_schedules(declared)
        except ValueError as err:
            raise UserError(f"--config {path}: {err}") from None
        deployments.append(flow.to_deployment(name=declared["name"], description=declared.get("description"),
                                              schedules=schedules, parameters=declared.get("parameters") or {}))
    return deployments


def serve_all(config_path: str | Path | None = None) -> None:
    prefect = require("pipeline", "prefect")
    prefect.serve(*build_deployments(config_path))


if __name__ == "__main__":  # pragma: no cover
    serve_all()
