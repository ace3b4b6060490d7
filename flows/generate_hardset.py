"""Prefect flow ``generate-hardset``: wiring only; every step is a plain gliznet function.

    plan -> generate batches (mapped, concurrent, checkpointed) -> validate -> dedup -> split -> write
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.task_runners import ThreadPoolTaskRunner

from gliznet.dataset import zero_shot_split
from gliznet.generate import Checkpoint, accepted_in, GenerateConfig, plan_call, prompt_text, run_call, validate_calls
from gliznet.hardset import check_writable, curate, write_hardset
from gliznet.llm.provider import make_provider
from gliznet.prompts import load_prompt
from gliznet.records import Limits

CACHED = INPUTS + TASK_SOURCE


@task(name="generate-batch", retries=2, retry_delay_seconds=2, cache_policy=CACHED - "provider" - "checkpoint_path",
      persist_result=True)
def generate_batch(provider, spec, config: GenerateConfig, checkpoint_path: str) -> dict:
    """One LLM call; its answer is appended to the run's checkpoint before the task returns."""
    line = run_call(provider, load_prompt(config.prompt_id), spec, config)
    Checkpoint(checkpoint_path).append(line)
    return line


@task(name="validate", cache_policy=CACHED, persist_result=True)
def validate(lines: list[dict], config: GenerateConfig):
    prompt = load_prompt(config.prompt_id)
    return validate_calls(lines, lambda line: prompt_text(prompt, line, config), config.limits)


@task(name="dedup", cache_policy=CACHED, persist_result=True)
def dedup(validated, near_dup_threshold: float):
    return curate(validated.records, validated.rejections, validated.counts, near_dup_threshold)


@task(name="split", cache_policy=CACHED, persist_result=True)
def split(curated, test_label_fraction: float, seed: int):
    return zero_shot_split(curated.records, test_label_fraction=test_label_fraction, seed=seed)


@task(name="hardness", cache_policy=CACHED, persist_result=True)
def hardness(curated, seed: int):
    from gliznet.card import hardness as hardness_check
    from gliznet.embeddings import Embedder

    return hardness_check(curated.records, Embedder(), seed=seed)


@task(name="write-dataset", cache_policy=NO_CACHE)
def write(out: str, curated, split_result, params: dict, hard, usage: dict) -> dict:
    return write_hardset(out, records=curated.records, rejections=curated.rejections, counts=curated.counts,
                         split=split_result, params=params, hardness=hard, extra={"llm_usage": usage})


def stats_markdown(manifest: dict) -> str:
    counts = manifest["counts"]
    stats = manifest.get("stats", {})
    rows = "\n".join(f"| {reason} | {n} |" for reason, n in sorted(stats.get("rejections_by_reason", {}).items()))
    hard = manifest.get("hardness") or {}
    return (
        f"# generate-hardset {manifest['version']}\n\n"
        f"| accepted | rejected | train | test | test labels | fingerprint |\n|---|---|---|---|---|---|\n"
        f"| {counts['accepted']} | {counts['rejected']} | {counts['train']} | {counts['test']} | "
        f"{counts['test_labels']} | `{manifest['fingerprint'][:16]}` |\n\n"
        f"## Rejections by reason\n\n| reason | count |\n|---|---|\n{rows or '| (none) | 0 |'}\n\n"
        f"## Hardness (MiniLM reference scorer)\n\nhard negatives above the weakest positive: "
        f"{hard.get('hard_negative_above_weakest_positive', 'n/a')}; random labels: "
        f"{hard.get('random_label_above_weakest_positive', 'n/a')}\n"
    )


@flow(name="generate-hardset", task_runner=ThreadPoolTaskRunner(max_workers=8), log_prints=True)
def generate_hardset_flow(records: int = 60, out: str = "runs/hardset", provider: str = "local",
                          model: str | None = None, seed: int = 0, records_per_call: int = 4,
                          concurrency: int = 4, max_calls: int | None = None, test_label_fraction: float = 0.2,
                          near_dup_threshold: float = 90.0, with_hardness: bool = True) -> dict:
    config = GenerateConfig(records=records, seed=seed, provider=provider, model=model,
                            records_per_call=records_per_call, concurrency=concurrency, max_calls=max_calls,
                            limits=Limits())
    with make_provider(provider, model, concurrency=concurrency) as llm:
        llm.check()  # bad provider settings fail before anything is written
        check_writable(Path(out))
        checkpoint = Checkpoint(Path(out) / "checkpoint" / "calls.jsonl")
        lines = checkpoint.load()
        progress = create_progress_artifact(0.0, description=f"generate-hardset: accepted records of {records}")
        accepted = sum(accepted_in(line, config) for line in lines.values())
        next_index = 0
        while accepted < records and next_index < config.call_budget:
            wave = [i for i in range(next_index, min(next_index + concurrency, config.call_budget)) if i not in lines]
            next_index += concurrency
            futures = generate_batch.map(llm, [plan_call(seed, i) for i in wave], config, str(checkpoint.path))
            for line in futures.result():
                lines[line["call"]] = line
                accepted += accepted_in(line, config)
            update_progress_artifact(progress, min(100.0, 100.0 * accepted / records))
        usage = llm.usage.as_dict()
    validated = validate(sorted(lines.values(), key=lambda line: line["call"]), config)
    curated = dedup(validated, near_dup_threshold)
    split_result = split(curated, test_label_fraction, seed)
    hard = hardness(curated, seed) if with_hardness else None
    params = {**config.as_dict(), "test_label_fraction": test_label_fraction,
              "near_dup_threshold": near_dup_threshold, "call_budget": config.call_budget}
    manifest = write(out, curated, split_result, params, hard, usage)
    create_markdown_artifact(stats_markdown(manifest), key="generate-hardset-stats",
                             description="accepted/rejected counts, rejection reasons, hardness")
    print(f"dataset: {Path(out).resolve()} (version {manifest['version']})")
    return {"out": str(Path(out).resolve()), "version": manifest["version"], "fingerprint": manifest["fingerprint"],
            "counts": manifest["counts"]}

