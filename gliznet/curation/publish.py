"""Versioned snapshots of a dataset folder: content fingerprint, version tag, local store, HF Hub.

    dataset_fingerprint(splits)   SHA-256 over the canonical content (order of records does not matter)
    version_tag(fp, date)         "2026-11-25-3f2a9c1d"
    publish_local(src, store)     store/<version>/ (immutable) + store/latest (a pointer file, atomically replaced)
    publish_hub(src, repo_id)     push_to_hub per config, card merged with the Hub's, a Hub tag per version
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Iterable

from gliznet.errors import UserError
from gliznet._io import atomic_write_text, replace_path

LATEST = "latest"


def _canonical(record) -> str:
    """A record's content as a stable string: text + sorted labels + sorted not_labels."""
    text = record["text"] if isinstance(record, dict) else record.text
    labels = record["labels"] if isinstance(record, dict) else record.labels
    not_labels = (record.get("not_labels", []) if isinstance(record, dict) else record.not_labels)
    return json.dumps([text, sorted(labels), sorted(not_labels)], ensure_ascii=False, separators=(",", ":"))


def dataset_fingerprint(splits: dict[str, Iterable]) -> str:
    """Same records in any order -> same fingerprint; any change of content or split -> a new one."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        rows = sorted(_canonical(r) for r in splits[split])
        digest.update(f"[{split}:{len(rows)}]".encode())
        for row in rows:
            digest.update(row.encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()


def version_tag(fingerprint: str, day: date | None = None) -> str:
    return f"{(day or date.today()).isoformat()}-{fingerprint[:8]}"


def read_manifest(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise UserError(f"{folder} has no manifest.json: it is not a finished gliznet dataset/model folder; "
                        "pass one that `gliznet generate`, `gliznet import` or `gliznet train` finished")
    return json.loads(path.read_text(encoding="utf-8"))


# --- local snapshot store ----------------------------------------------------------------------

def latest_version(store: str | os.PathLike) -> str | None:
    pointer = Path(store) / LATEST
    return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None


def _set_latest(store: Path, version: str) -> None:
    atomic_write_text(store / LATEST, version + "\n")


def publish_local(src: str | os.PathLike, store: str | os.PathLike, version: str | None = None,
                  set_latest: bool = True) -> Path:
    """Copy a finished folder into ``store/<version>`` (never overwritten) and point ``latest`` at it.

    The copy goes to a hidden temp folder first and is renamed into place; ``latest`` is replaced
    only after that rename, so a failure at any point leaves ``latest`` on the previous version.
    """
    src, store = Path(src), Path(store)
    version = version or read_manifest(src)["version"]
    store.mkdir(parents=True, exist_ok=True)
    target = store / version
    if not target.exists():
        tmp = store / f".incoming-{version}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("checkpoint", ".staging-*", ".old-*"))
            replace_path(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if set_latest:
        _set_latest(store, version)
    return target


# --- Hugging Face Hub --------------------------------------------------------------------------

def merge_card_metadata(existing: dict, ours: dict) -> dict:
    """Keep everything the Hub card already has (configs, dataset_info written by push_to_hub, user
    additions); add our keys where absent; lists such as tags are unioned."""
    merged = dict(existing)
    for key, value in ours.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], list) and isinstance(value, list) and key != "configs":
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
    return merged


def publish_hub(src: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = True) -> dict:
    """Push ``triplet`` and ``couplet`` configs, merge the card, tag the version. Needs HF_TOKEN."""
    import datasets
    from huggingface_hub import DatasetCard, HfApi

    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise UserError("HF_TOKEN is not set: export it to publish to the Hub, or leave --hub-repo empty")
    src = Path(src)
    manifest = read_manifest(src)
    version = manifest["version"]
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    for config in ("triplet", "couplet"):
        datasets.load_from_disk(str(src / config)).push_to_hub(
            repo_id, config_name=config, token=token, commit_message=f"gliznet {version}: {config}")
    ours = DatasetCard((src / "README.md").read_text(encoding="utf-8"))
    hub_card = DatasetCard.load(repo_id, token=token)
    merged = merge_card_metadata(hub_card.data.to_dict(), ours.data.to_dict())
    card = DatasetCard(f"---\n{_yaml(merged)}---\n{ours.text}")
    card.push_to_hub(repo_id, token=token, commit_message=f"gliznet {version}: card")
    api.create_tag(repo_id, tag=version, repo_type="dataset", exist_ok=True)
    return {"repo_id": repo_id, "version": version}


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
