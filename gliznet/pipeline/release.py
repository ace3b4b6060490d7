"""The release gate and the model store.

A trained model is released only if its average macro-F1 on the frozen real test sets is not below
the current release's by more than ``tolerance``. Both scores must be measured alike: the current
release's stored summary counts only if it was measured on the same sets (by content) with the same
row limit; otherwise the release is measured again (``decide_release``).

The model store mirrors the snapshot store: ``store/<version>/`` immutable, ``store/latest`` a
pointer replaced atomically. A released folder carries ``lineage.json``, ``frozen_eval.json`` (the
summary the next run compares against) and ``manifest.json`` (``write_release_files``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gliznet.errors import UserError
from gliznet.curation.publish import latest_version, publish_local

GATE_TOLERANCE = 0.01  # macro-F1 a new model may lose against the current release and still be released


@dataclass
class GateDecision:
    decision: str  # "released" | "held"
    candidate: float
    previous: float | None
    previous_version: str | None
    tolerance: float
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def release_gate(candidate_score: float, previous_score: float | None, tolerance: float = GATE_TOLERANCE,
                 previous_version: str | None = None) -> GateDecision:
    """released iff there is no previous release, or candidate >= previous - tolerance."""
    if tolerance < 0:
        raise UserError(f"gate_tolerance must be >= 0 (got {tolerance})")
    if previous_score is None:
        return GateDecision("released", candidate_score, None, None, tolerance, "first release")
    if candidate_score >= previous_score - tolerance:
        return GateDecision("released", candidate_score, previous_score, previous_version, tolerance,
                            f"{candidate_score:.4f} >= {previous_score:.4f} - {tolerance}")
    return GateDecision("held", candidate_score, previous_score, previous_version, tolerance,
                        f"{candidate_score:.4f} < {previous_score:.4f} - {tolerance}")


def eval_set_identity(paths: list[str]) -> dict[str, str]:
    """{file name: content hash} of the frozen test sets: the same sets compare equal wherever they lie."""
    import hashlib

    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for p in paths}


def current_release(store: str | Path) -> tuple[str | None, dict | None]:
    """(version, frozen-eval summary) of the model store's ``latest``, or (None, None)."""
    version = latest_version(store)
    if version is None:
        return None, None
    summary = Path(store) / version / "frozen_eval.json"
    return version, json.loads(summary.read_text()) if summary.exists() else None


def measured_alike(summary: dict, other: dict) -> bool:
    """Two frozen-eval summaries compare iff they were measured on the same sets with the same limit."""
    return summary.get("eval_sets") == other.get("eval_sets") and summary.get("limit") == other.get("limit")


def decide_release(candidate: dict, store: str | Path, tolerance: float,
                   remeasure: Callable[[Path], dict]) -> dict:
    """The gate's decision for ``candidate`` against the store's current release, as a dict.

    ``candidate`` is a frozen-eval summary (``average_macro_f1``, ``eval_sets``, ``limit``). When the
    current release's stored summary was measured differently, ``remeasure(release_dir)`` measures
    it again the candidate's way. ``previous_summary`` in the result is what was compared against.
    """
    previous_version, previous = current_release(store)
    if previous is not None and not measured_alike(previous, candidate):
        previous = remeasure(Path(store) / previous_version)
    decision = release_gate(candidate["average_macro_f1"], previous["average_macro_f1"] if previous else None,
                            tolerance, previous_version)
    return {**decision.as_dict(), "previous_summary": previous}


def write_release_files(model_dir: str | Path, version: str, lineage: dict, frozen: dict) -> None:
    """lineage.json, frozen_eval.json and manifest.json (last: a folder with a manifest is complete)."""
    from gliznet._io import atomic_write_text

    def write(name: str, data: dict) -> None:
        atomic_write_text(Path(model_dir) / name, json.dumps(data, indent=2, default=str) + "\n")

    write("lineage.json", lineage)
    write("frozen_eval.json", frozen)
    write("manifest.json", {"version": version, **lineage})


def release_model(model_dir: str | Path, store: str | Path, version: str) -> Path:
    return publish_local(model_dir, store, version=version)


def publish_model_hub(model_dir: str | Path, repo_id: str, version: str, token: str | None = None) -> dict:
    """Upload a released model folder to the Hub and tag it with the version. Needs HF_TOKEN."""
    import os

    from huggingface_hub import HfApi

    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise UserError("HF_TOKEN is not set: export it to publish the model, or leave hub_model_repo empty")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=True, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(model_dir), repo_type="model",
                      commit_message=f"gliznet model {version}", ignore_patterns=["checkpoint-*", "eval-*"])
    api.create_tag(repo_id, tag=version, repo_type="model", exist_ok=True)
    return {"repo_id": repo_id, "version": version}
