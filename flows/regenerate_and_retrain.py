"""Prefect flow ``regenerate-and-retrain``: the weekly DAG, wiring only.

    generate-hardset (subflow) -> publish snapshot -> train -> evaluate (run's test split + frozen
    real sets) -> release gate -> publish model

Seed, folder names, lineage and the report are ``gliznet.pipeline.weekly`` functions; the gate and the model
store are ``gliznet.pipeline.release``. Tasks are cached on their inputs + source with persisted results: the
same parameters reuse finished steps; changing a training parameter re-runs training and what
follows, not generation. The weekly schedule and its parameters are written in ``flows/prefect.yaml``;
the defaults here are the library's.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flows.generate_hardset import generate_hardset_flow
from gliznet._io import atomic_write_text
from gliznet.curation.publish import publish_local, read_manifest
from gliznet.generation.plan import GenerateConfig
from gliznet.pipeline import weekly
from gliznet.pipeline.release import (
    GATE_TOLERANCE,
    decide_release,
    release_model,
    write_release_files,
)
from gliznet.training.config import aimed_backbone

CACHED = INPUTS + TASK_SOURCE


@task(name="publish-snapshot", cache_policy=NO_CACHE)
def publish_snapshot(dataset_dir: str, store: str, hub_repo: str | None) -> dict:
    target = publish_local(dataset_dir, store)
    info = {"snapshot": str(target), "version": target.name}
    if hub_repo:
        from gliznet.curation.publish import publish_hub

        info["hub"] = publish_hub(dataset_dir, hub_repo)
    return info


@task(name="train", cache_policy=CACHED, persist_result=True)
def train_model(dataset_dir: str, fingerprint: str, backbone: str | None, train_params: dict, workdir: str) -> dict:
    """Cached on the dataset fingerprint + parameters: the same inputs give the same model folder."""
    from gliznet.training.trainer import train

    out = weekly.model_dir(workdir, fingerprint, backbone, train_params)
    result = train(dataset_dir, backbone, str(out), weekly.train_config(train_params, dataset_dir))
    return {**result, "model_dir": str(Path(result["model_dir"]).resolve())}


@task(name="evaluate", cache_policy=CACHED, persist_result=True)
def evaluate_model(model_dir: str, eval_paths: list[str], eval_limit: int | None, out_dir: str) -> dict:
    from gliznet.evaluation.runs import evaluate_suite
    from gliznet.modeling.model import GliZNet

    return evaluate_suite(GliZNet.from_pretrained(model_dir), eval_paths, out_dir=out_dir, limit=eval_limit)


@task(name="evaluate-own-test", cache_policy=CACHED, persist_result=True)
def evaluate_split(model_dir: str, dataset_dir: str, out_dir: str) -> dict:
    from gliznet.evaluation.runs import evaluate
    from gliznet.modeling.model import GliZNet

    return evaluate(GliZNet.from_pretrained(model_dir), dataset_dir, out_dir=out_dir)


@task(name="release-gate", cache_policy=NO_CACHE)
def gate(candidate: dict, model_store: str, tolerance: float, eval_paths: list[str], eval_limit: int | None,
         workdir: str) -> dict:
    """A current release measured on other sets is evaluated again on the candidate's."""
    def remeasure(release_dir: Path) -> dict:
        return evaluate_model.fn(str(release_dir), eval_paths, eval_limit, str(Path(workdir) / "eval-previous"))

    return decide_release(candidate, model_store, tolerance, remeasure)


@task(name="publish-model", cache_policy=NO_CACHE)
def publish_model(model_dir: str, model_store: str, version: str, lineage: dict, frozen: dict,
                  hub_repo: str | None) -> dict:
    write_release_files(model_dir, version, lineage, frozen)
    target = release_model(model_dir, model_store, version)
    info = {"model": str(target), "version": version}
    if hub_repo:
        from gliznet.pipeline.release import publish_model_hub

        info["hub"] = publish_model_hub(target, hub_repo, version)
    return info


def write_report(run: dict) -> str:
    report = weekly.report_markdown(run)
    path = Path(run["model"]["model_dir"]) / "run_report.md"
    atomic_write_text(path, report)
    create_markdown_artifact(report, key="regenerate-and-retrain",
                             description="dataset, metrics vs previous release, gate")
    return str(path)


# not log_prints=True: see flows/generate_hardset.py
@flow(name="regenerate-and-retrain")
def regenerate_and_retrain(records: int = GenerateConfig.records, seed: int | None = None,
                           provider: str = GenerateConfig.provider, model: str | None = None,
                           workdir: str = "runs/regenerate-and-retrain", backbone: str | None = None,
                           train_params: dict | None = None, eval_paths: list[str] | None = None,
                           eval_limit: int | None = None, gate_tolerance: float = GATE_TOLERANCE,
                           hub_dataset_repo: str | None = None, hub_model_repo: str | None = None,
                           with_hardness: bool = True, labels: str | None = GenerateConfig.labels,
                           task: str | None = GenerateConfig.task, multi_label: bool = GenerateConfig.multi_label) -> dict:
    """``seed=None``: the ISO week; ``train_params``: flat ``TrainConfig`` keys; ``eval_paths=None``: every
    real test set; ``eval_limit``: rows per set (None: all).  ``labels``/``task``: data aimed at your label set
    (``generate --labels``); give ``eval_paths`` your frozen real test set of those labels, so the release gate
    judges the model on it."""
    seed = weekly.week_seed() if seed is None else seed
    train_params, eval_paths = train_params or {}, weekly.resolve_eval_paths(eval_paths)
    work = Path(workdir)
    store = str(work / "models-released")
    dataset_dir = str(weekly.dataset_dir(work, records, seed, provider, model, labels, task))

    dataset = generate_hardset_flow(records=records, out=dataset_dir, provider=provider, model=model, seed=seed,
                                    with_hardness=with_hardness, labels=labels, task=task, multi_label=multi_label)
    snapshot = publish_snapshot(dataset_dir, str(work / "snapshots"), hub_dataset_repo)
    backbone = aimed_backbone(backbone, dataset_dir)  # aimed at labels: the aimed recipe's encoder unless given
    trained = train_model(dataset_dir, dataset["fingerprint"], backbone, train_params, workdir)
    model_dir = trained["model_dir"]
    own_test = evaluate_split(model_dir, dataset_dir, str(Path(model_dir) / "eval-own-test"))
    frozen = evaluate_model(model_dir, eval_paths, eval_limit, str(Path(model_dir) / "eval-frozen"))
    frozen = weekly.frozen_summary(frozen, eval_paths, eval_limit)
    decision = gate(frozen, store, gate_tolerance, eval_paths, eval_limit, workdir)
    lineage = weekly.lineage(dataset, read_manifest(dataset_dir), provider=provider, backbone=backbone,
                             train_params=train_params, seed=seed)
    run = {"dataset": dataset, "snapshot": snapshot, "model": trained, "frozen": frozen, "gate": decision,
           "own_test": own_test["metrics"], "lineage": lineage}
    if decision["decision"] == "released":
        version = weekly.release_version(dataset["version"], dataset["fingerprint"], backbone, train_params)
        run["release"] = publish_model(model_dir, store, version, lineage, frozen, hub_model_repo)
    report = write_report(run)
    get_run_logger().info(f"gate: {decision['decision']} ({decision['reason']})")
    return {"decision": decision["decision"], "model_dir": model_dir, "dataset": dataset_dir,
            "snapshot": snapshot["snapshot"], "frozen_average_macro_f1": frozen["average_macro_f1"],
            "report": report}
