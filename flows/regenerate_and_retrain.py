"""Prefect flow ``regenerate-and-retrain``: the weekly DAG, wiring only.

    generate-hardset (subflow) -> publish snapshot -> train -> evaluate (run's test split + frozen
    real sets) -> release gate -> publish model

Tasks are cached on their inputs + source with persisted results: the same parameters reuse
finished steps; changing a training parameter re-runs training and what follows, not generation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flows.generate_hardset import generate_hardset_flow
from gliznet.hardset import atomic_write_text, git_commit, package_versions
from gliznet.publish import publish_local, read_manifest
from gliznet.release import current_release, eval_set_identity, release_gate, release_model

CACHED = INPUTS + TASK_SOURCE


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@task(name="publish-snapshot", cache_policy=NO_CACHE)
def publish_snapshot(dataset_dir: str, store: str, hub_repo: str | None) -> dict:
    target = publish_local(dataset_dir, store)
    info = {"snapshot": str(target), "version": target.name}
    if hub_repo:
        from gliznet.publish import publish_hub

        info["hub"] = publish_hub(dataset_dir, hub_repo)
    return info


@task(name="train", cache_policy=CACHED, persist_result=True)
def train_model(dataset_dir: str, fingerprint: str, backbone: str | None, train_params: dict, workdir: str) -> dict:
    """Cached on the dataset fingerprint + parameters: the same inputs give the same model folder."""
    from gliznet.train import TrainConfig, train

    out = Path(workdir) / "models" / _key(fingerprint, backbone, train_params)
    result = train(dataset_dir, backbone, str(out), TrainConfig(**train_params))
    return {**result, "model_dir": str(Path(result["model_dir"]).resolve())}


@task(name="evaluate", cache_policy=CACHED, persist_result=True)
def evaluate_model(model_dir: str, eval_paths: list[str], eval_limit: int | None, out_dir: str) -> dict:
    from gliznet.evaluate import evaluate_suite
    from gliznet.model import GliZNet

    return evaluate_suite(GliZNet.from_pretrained(model_dir), eval_paths, out_dir=out_dir, limit=eval_limit)


@task(name="evaluate-own-test", cache_policy=CACHED, persist_result=True)
def evaluate_split(model_dir: str, dataset_dir: str, out_dir: str) -> dict:
    from gliznet.evaluate import evaluate
    from gliznet.model import GliZNet

    return evaluate(GliZNet.from_pretrained(model_dir), dataset_dir, out_dir=out_dir)


@task(name="release-gate", cache_policy=NO_CACHE)
def gate(candidate: dict, model_store: str, tolerance: float, eval_paths: list[str], eval_limit: int | None,
         workdir: str) -> dict:
    previous_version, previous = current_release(model_store)
    same_sets = previous is not None and previous.get("eval_sets") == eval_set_identity(eval_paths)
    if previous is not None and (not same_sets or previous.get("limit") != eval_limit):
        # the frozen sets changed: measure the current release again on the same sets
        previous = evaluate_model.fn(str(Path(model_store) / previous_version), eval_paths, eval_limit,
                                     str(Path(workdir) / "eval-previous"))
    decision = release_gate(candidate["average_macro_f1"], previous["average_macro_f1"] if previous else None,
                            tolerance, previous_version)
    return {**decision.as_dict(), "previous_summary": previous}


@task(name="publish-model", cache_policy=NO_CACHE)
def publish_model(model_dir: str, model_store: str, version: str, lineage: dict, frozen: dict,
                  hub_repo: str | None) -> dict:
    atomic_write_text(Path(model_dir) / "lineage.json", json.dumps(lineage, indent=2, default=str) + "\n")
    atomic_write_text(Path(model_dir) / "frozen_eval.json", json.dumps({**frozen}, indent=2, default=str) + "\n")
    atomic_write_text(Path(model_dir) / "manifest.json", json.dumps({"version": version, **lineage}, indent=2,
                                                                    default=str) + "\n")
    target = release_model(model_dir, model_store, version)
    info = {"model": str(target), "version": version}
    if hub_repo:
        from gliznet.release import publish_model_hub

        info["hub"] = publish_model_hub(target, hub_repo, version)
    return info


def report_markdown(run: dict) -> str:
    gate_ = run["gate"]
    frozen = run["frozen"]
    prev = {s["data"]: s["macro_f1"] for s in (gate_.get("previous_summary") or {}).get("sets", [])}
    rows = "\n".join(
        f"| {s['data']} | {s['n']} | {s['macro_f1']:.4f} | "
        f"{prev[s['data']]:.4f} |" if s["data"] in prev else f"| {s['data']} | {s['n']} | {s['macro_f1']:.4f} | - |"
        for s in frozen["sets"])
    counts = run["dataset"]["counts"]
    return (
        f"# regenerate-and-retrain: **{gate_['decision']}**\n\n{gate_['reason']}\n\n"
        f"## Dataset {run['dataset']['version']}\n\naccepted {counts['accepted']}, rejected {counts['rejected']}, "
        f"train {counts['train']}, test {counts['test']}; snapshot `{run['snapshot']['snapshot']}`\n\n"
        f"## Frozen real test sets (macro-F1)\n\n| set | n | candidate | previous release |\n|---|---|---|---|\n"
        f"{rows}\n| **average** | | **{frozen['average_macro_f1']:.4f}** | "
        f"{format(gate_['previous'], '.4f') if gate_['previous'] is not None else '-'} |\n\n"
        f"Run's own zero-shot test split: macro-F1 {run['own_test'].get('macro_f1', 'n/a')}\n\n"
        f"## Model\n\n`{run['model']['model_dir']}`; released: `{run.get('release', {}).get('model', 'no (held)')}`\n"
    )


@flow(name="regenerate-and-retrain", log_prints=True)
def regenerate_and_retrain(records: int = 60, seed: int | None = None, provider: str = "local", model: str | None = None,
                           workdir: str = "runs/weekly", backbone: str | None = None,
                           train_params: dict | None = None, eval_paths: list[str] | None = None,
                           eval_limit: int | None = 200, gate_tolerance: float = 0.01,
                           hub_dataset_repo: str | None = None, hub_model_repo: str | None = None,
                           with_hardness: bool = True) -> dict:
    from gliznet.evaluate import default_eval_paths

    if seed is None:  # a fresh dataset every ISO week, reproducible within the week
        from datetime import date

        seed = int(date.today().strftime("%G%V"))
    work = Path(workdir)
    train_params = {"epochs": 1.0, "batch_size": 16, **(train_params or {})}
    eval_paths = [str(Path(p).resolve()) for p in (eval_paths or default_eval_paths())]
    dataset_dir = str(work / "datasets" / _key(records, seed, provider, model))
    dataset = generate_hardset_flow(records=records, out=dataset_dir, provider=provider, model=model, seed=seed,
                                    with_hardness=with_hardness)
    snapshot = publish_snapshot(dataset_dir, str(work / "snapshots"), hub_dataset_repo)
    trained = train_model(dataset_dir, dataset["fingerprint"], backbone, train_params, workdir)
    model_dir = trained["model_dir"]
    own_test = evaluate_split(model_dir, dataset_dir, str(Path(model_dir) / "eval-own-test"))
    frozen = evaluate_model(model_dir, eval_paths, eval_limit, str(Path(model_dir) / "eval-frozen"))
    frozen = {**frozen, "paths": eval_paths, "eval_sets": eval_set_identity(eval_paths), "limit": eval_limit}
    decision = gate(frozen, str(work / "models-released"), gate_tolerance, eval_paths, eval_limit, workdir)
    manifest = read_manifest(dataset_dir)
    lineage = {
        "dataset_fingerprint": dataset["fingerprint"], "dataset_version": dataset["version"],
        "prompt_hashes": manifest["prompt_hashes"], "llm_provider": provider,
        "llm_model": manifest["parameters"].get("model"), "backbone": backbone or "packaged MiniLM-L6",
        "train_params": train_params, "seed": seed, "packages": package_versions(), "git_commit": git_commit(),
    }
    run = {"dataset": dataset, "snapshot": snapshot, "model": trained, "frozen": frozen, "gate": decision,
           "own_test": own_test["metrics"], "lineage": lineage}
    if decision["decision"] == "released":
        run["release"] = publish_model(model_dir, str(work / "models-released"),
                                       f"{dataset['version']}-{Path(model_dir).parent.name[:8]}", lineage, frozen,
                                       hub_model_repo)
    report = report_markdown(run)
    atomic_write_text(Path(model_dir) / "run_report.md", report)
    create_markdown_artifact(report, key="regenerate-and-retrain", description="dataset, metrics vs previous release, gate")
    print(f"gate: {decision['decision']} ({decision['reason']})")
    return {"decision": decision["decision"], "model_dir": model_dir, "dataset": dataset_dir,
            "snapshot": snapshot["snapshot"], "frozen_average_macro_f1": frozen["average_macro_f1"],
            "report": str(Path(model_dir) / "run_report.md")}
