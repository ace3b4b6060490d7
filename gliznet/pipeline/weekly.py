"""The weekly run of ``regenerate-and-retrain`` as plain functions; ``flows/`` only wires them.

One run regenerates a dataset, trains GliZNet on it, evaluates the model and releases it if the gate
(``gliznet.pipeline.release``) lets it through. These functions make such a run reproducible and traceable:

1. **Seed** — one per ISO week (``week_seed``): a new dataset every week, the same one when the run
   is repeated within the week.
2. **Names** — folders are named by a hash of what decides their content (``content_key``):
   ``datasets/<records, seed, provider, model>``, ``models/<dataset fingerprint, backbone, training
   parameters>``; a released model is ``<dataset version>-<model key[:8]>`` (``release_version``).
3. **Measurement** — the frozen real test sets, resolved once (``resolve_eval_paths``), and the
   summary a release is compared on: the scores plus which sets (by content) and how many rows
   (``frozen_summary``).
4. **Lineage** — what a model was made from: dataset fingerprint and version, prompt hashes, LLM,
   backbone, training parameters, seed, package versions, git commit (``lineage``).
5. **Report** — one markdown page: the gate's decision, the dataset's counts, macro-F1 on each frozen
   set against the previous release (``report_markdown``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

from gliznet.pipeline.release import eval_set_identity

WEEKLY_EPOCHS = 1.0  # passes over the week's data when train_params sets no length (not aimed: see train_config)


# -- 1. seed ----------------------------------------------------------------------------------------
def week_seed(day: date | None = None) -> int:
    """``YYYYWW`` of the ISO week of ``day`` (default today): 202602 for Monday 2026-01-05."""
    return int((day or date.today()).strftime("%G%V"))


# -- 2. names ---------------------------------------------------------------------------------------
def content_key(*parts) -> str:
    """12 hex digits of the sha256 of ``parts`` as canonical JSON: equal inputs give equal names."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def dataset_dir(workdir: str | Path, records: int, seed: int, provider: str, model: str | None,
                labels: str | None = None, task: str | None = None) -> Path:
    """Where the run's dataset is generated: the same generation parameters resume the same folder (a run aimed at
    a label set is keyed on the set's file content or list and the task too)."""
    if labels is None:
        return Path(workdir) / "datasets" / content_key(records, seed, provider, model)
    source = Path(labels)
    aimed = source.read_text(encoding="utf-8") if source.is_file() else labels
    return Path(workdir) / "datasets" / content_key(records, seed, provider, model, aimed, task)


def model_key(fingerprint: str, backbone: str | None, train_params: dict) -> str:
    """The trained model's name: the dataset's content fingerprint + what training was told."""
    return content_key(fingerprint, backbone, train_params)


def model_dir(workdir: str | Path, fingerprint: str, backbone: str | None, train_params: dict) -> Path:
    return Path(workdir) / "models" / model_key(fingerprint, backbone, train_params)


def release_version(dataset_version: str, fingerprint: str, backbone: str | None, train_params: dict) -> str:
    """``<dataset version>-<first 8 digits of the model key>``: the folder name in the model store."""
    return f"{dataset_version}-{model_key(fingerprint, backbone, train_params)[:8]}"


def train_config(train_params: dict, dataset_dir: str | Path | None = None):
    """The ``TrainConfig`` of the run's flat training parameters (library defaults for the rest; ``epochs``
    alone trains that many passes, as ``gliznet train --epochs``).  With the week's
    ``dataset_dir`` and neither ``max_steps`` nor ``epochs`` given, the length is the weekly's: the aimed recipe
    (``aimed_recipe``) for a dataset aimed at a label set, else ``WEEKLY_EPOCHS`` passes over the week's data."""
    from dataclasses import replace

    from gliznet.training.config import TrainConfig, aimed_recipe

    config = TrainConfig.from_dict(train_params)
    if "epochs" in train_params and "max_steps" not in train_params:
        return replace(config, max_steps=-1)  # epochs alone: that many passes, as `gliznet train --epochs`
    if dataset_dir is None or "max_steps" in train_params:
        return config
    recipe = aimed_recipe(dataset_dir, config.batch_size)
    if recipe is not None:
        return replace(config, max_steps=recipe[0])
    return replace(config, max_steps=-1, epochs=WEEKLY_EPOCHS)


# -- 3. measurement ---------------------------------------------------------------------------------
def resolve_eval_paths(eval_paths: list[str] | None) -> list[str]:
    """Absolute paths of the frozen test sets; ``None``: every real set of ``gliznet.evaluation.runs``."""
    from gliznet.evaluation.data import default_eval_paths

    return [str(Path(p).resolve()) for p in (eval_paths or default_eval_paths())]


def frozen_summary(summary: dict, eval_paths: list[str], eval_limit: int | None) -> dict:
    """An ``evaluate_suite`` summary + what it was measured on, so a later run can tell if it compares."""
    return {**summary, "paths": eval_paths, "eval_sets": eval_set_identity(eval_paths), "limit": eval_limit}


# -- 4. lineage -------------------------------------------------------------------------------------
def lineage(dataset: dict, manifest: dict, *, provider: str, backbone: str | None, train_params: dict,
            seed: int) -> dict:
    """What the model was made from. ``dataset``: the generate flow's result; ``manifest``: its manifest."""
    from gliznet.curation.hardset import git_commit, package_versions

    return {
        "dataset_fingerprint": dataset["fingerprint"], "dataset_version": dataset["version"],
        "prompt_hashes": manifest["prompt_hashes"], "llm_provider": provider,
        "llm_model": manifest["parameters"].get("model"), "backbone": backbone or "packaged MiniLM-L6",
        "train_params": train_params, "seed": seed, "packages": package_versions(), "git_commit": git_commit(),
    }


# -- 5. report --------------------------------------------------------------------------------------
def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report_markdown(run: dict) -> str:
    """The run report. ``run`` holds ``dataset``, ``snapshot``, ``model``, ``frozen``, ``gate``, ``own_test``
    and, when the model was released, ``release``."""
    gate, frozen = run["gate"], run["frozen"]
    previous = {s["data"]: s["macro_f1"] for s in (gate.get("previous_summary") or {}).get("sets", [])}
    rows = "\n".join(f"| {s['data']} | {s['n']} | {s['macro_f1']:.4f} | {_score(previous.get(s['data']))} |"
                     for s in frozen["sets"])
    counts = run["dataset"]["counts"]
    return (
        f"# regenerate-and-retrain: **{gate['decision']}**\n\n{gate['reason']}\n\n"
        f"## Dataset {run['dataset']['version']}\n\naccepted {counts['accepted']}, rejected {counts['rejected']}, "
        f"train {counts['train']}, test {counts['test']}; snapshot `{run['snapshot']['snapshot']}`\n\n"
        f"## Frozen real test sets (macro-F1)\n\n| set | n | candidate | previous release |\n|---|---|---|---|\n"
        f"{rows}\n| **average** | | **{frozen['average_macro_f1']:.4f}** | {_score(gate['previous'])} |\n\n"
        f"Run's own zero-shot test split: macro-F1 {run['own_test'].get('macro_f1', 'n/a')}\n\n"
        f"## Model\n\n`{run['model']['model_dir']}`; released: `{run.get('release', {}).get('model', 'no (held)')}`\n"
    )
