"""One plan per dataset folder: a resumed run asks the calls of the plan its folder was started with.

``claim_plan(out, config)`` runs once the folder's lock is held and before any LLM is started.  The first run on
a folder writes ``<out>/checkpoint/plan.json``: the settings that decide what each call asks (every
``GenerateConfig`` field except ``NEUTRAL``, plus the prompt template's hash) and a list of runs.  A later run
on the folder:

A plan binds the folder once its checkpoint holds a call (a run that stopped before asking anything, e.g. on a
missing API key, leaves the folder free for other settings).

* with a setting that changes the plan (seed, records per call, prompt, provider, model, limits, bundle size,
  seed texts, and any field added to ``GenerateConfig`` later) is refused with one ``PlanChanged`` line naming
  each differing setting, the folder's value and this run's, and the two ways on: the folder's settings, or a
  new ``--out``;
* with only ``NEUTRAL`` settings changed (``records``: more records extend the plan; ``concurrency``,
  ``max_calls``, ``base_url``: how and how far the same calls are asked) goes on, and its settings are appended
  to the runs list, which the manifest carries (``runs``) so it describes all of the data.

A folder written before ``plan.json`` existed is checked against the first call in its checkpoint (its plan:
topic, seed, bundle, passage; its provider and prompt), then adopted with the settings of the run that finds it.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path

from gliznet._io import atomic_write_text
from gliznet.errors import UserError
from gliznet.generation.plan import GenerateConfig
from gliznet.generation.prompts import load_prompt

PLAN_FILE = "plan.json"
NEUTRAL = ("records", "concurrency", "max_calls", "base_url")  # settings that change no call's request
OPTION = {"model": "--llm", "prompt_id": "the prompt (prompt_id)", "prompt_hash": "the prompt template (its hash)",
          "limits": "the record limits", "temperature": "the temperature", "max_tokens": "max_tokens"}


class PlanChanged(UserError):
    """A run on a folder whose calls were planned with other settings."""


def plan_path(out: str | Path) -> Path:
    return Path(out) / "checkpoint" / PLAN_FILE


def plan_settings(config: GenerateConfig) -> dict:
    """What decides the calls of ``config``: every field but ``NEUTRAL``, and the prompt template's hash."""
    settings = {k: v for k, v in config.as_dict().items() if k not in NEUTRAL}
    settings["prompt_hash"] = load_prompt(config.prompt_id).hash
    return settings


def _default(name: str):
    """A ``GenerateConfig`` field's default (a field added after a folder's plan was written holds it there)."""
    for f in fields(GenerateConfig):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:  # type: ignore[misc]
                value = f.default_factory()  # type: ignore[misc]
                return value.model_dump() if hasattr(value, "model_dump") else value
    return None


def plan_differences(held: dict, now: dict) -> list[tuple[str, object, object]]:
    """``(setting, folder's value, this run's value)`` for every plan setting that differs."""
    diffs = []
    for name in sorted(set(held) | set(now)):
        old = held[name] if name in held else _default(name)
        new = now[name] if name in now else _default(name)
        if json.dumps(old, sort_keys=True, default=str) != json.dumps(new, sort_keys=True, default=str):
            diffs.append((name, old, new))
    return diffs


def _option(name: str) -> str:
    return OPTION.get(name, "--" + name.replace("_", "-"))


def _shown(value) -> str:
    return "none" if value is None else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def claim_plan(out: str | Path, config: GenerateConfig) -> list[dict]:
    """Check ``config`` against ``out``'s plan (``PlanChanged`` when it differs), record this run, and return
    the folder's runs (for the manifest).  Call it with the folder's lock held."""
    path = plan_path(out)
    now = plan_settings(config)
    run = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           **{k: getattr(config, k) for k in NEUTRAL}}
    if path.is_file() and _has_calls(out):  # a plan binds the folder once a call of it is in the checkpoint
        held = json.loads(path.read_text(encoding="utf-8"))
        diffs = plan_differences(held["plan"], now)
        if diffs:
            said = ", ".join(f"{_option(n)} {_shown(old)} (this run: {_shown(new)})" for n, old, new in diffs)
            raise PlanChanged(f"--out {out} holds the calls of another plan: {said}: re-run with the folder's "
                              f"settings to resume it, or pass a new --out for the new settings")
        runs = [*held.get("runs", []), run]
    else:
        _check_legacy(out, config)
        runs = [run]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"plan": now, "runs": runs}, indent=2, default=str) + "\n")
    return runs


def _has_calls(out: str | Path) -> bool:
    calls = Path(out) / "checkpoint" / "calls.jsonl"
    return calls.is_file() and calls.stat().st_size > 0


def _check_legacy(out: str | Path, config: GenerateConfig) -> None:
    """A checkpoint without ``plan.json``: its first call must be the call ``config`` plans under that index."""
    from dataclasses import asdict

    from gliznet._io import Checkpoint
    from gliznet.generation.plan import plan_for

    path = Path(out) / "checkpoint" / "calls.jsonl"
    if not path.is_file():
        return
    lines = Checkpoint(path).entries()
    first = next((line for line in lines if isinstance(line, dict) and isinstance(line.get("call"), int)), None)
    if first is None:
        return
    prompt = load_prompt(config.prompt_id)
    held = {"call plan": first.get("spec"), "--provider": first.get("provider"),
            "the prompt (prompt_id)": first.get("prompt_id"), "the prompt template (its hash)": first.get("prompt_hash")}
    now = {"call plan": json.loads(json.dumps(asdict(plan_for(config, first["call"])))), "--provider": config.provider,
           "the prompt (prompt_id)": prompt.prompt_id, "the prompt template (its hash)": prompt.hash}
    differ = [name for name in held if held[name] != now[name]]
    if differ:
        raise PlanChanged(f"--out {out} holds calls of another plan ({', '.join(differ)} of call {first['call']} "
                          f"differ{'s' if len(differ) == 1 else ''}: --seed, --bundle-size, --seed-texts, --provider or "
                          "the prompt changed): re-run with the folder's settings to resume it, or pass a new --out for "
                          "the new settings")
