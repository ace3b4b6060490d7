"""Importer: turn an existing labelled JSONL file into a ZSHOT-HARDSET folder.

Input: one JSON object a line, ``{"text": str, "labels": [str], "not_labels": [str]?}`` (the format of
``shared/train/*.jsonl``; ``not_labels`` optional).  The rows go through the same curation as generated
data, so an imported folder is interchangeable with a generated one:

1. read rows; a line that is not JSON is an ``invalid_json`` rejection, never a crash;
2. optionally *mine hard negatives*: add up to ``mine_hard_negatives`` labels from the file's own label
   set, the ones most similar to the text (embedding cosine) that are not already a label or negative;
3. ``validate_items`` with the given ``Limits`` (relax them for short-text sets);
4. the same steps as a generated run (``gliznet.curation.hardset``): ``curate`` (dedup), ``split_curated``,
   ``score_hardness`` (when an embedder is at hand), ``write_hardset`` (records.jsonl, rejected.jsonl,
   triplet/, couplet/, README.md, manifest.json).

Provenance of an imported record: provider ``"import"``, model = the file name, prompt_id / prompt_hash
``"import"``, empty topic / genre / length / reading_level, the import seed.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from gliznet.errors import UserError
from gliznet._io import FolderLock, disk_errors, read_jsonl
from gliznet.curation.dedup import NEAR_DUP_THRESHOLD
from gliznet.curation.hardset import curate, score_hardness, split_curated, write_hardset
from gliznet.curation.split import TEST_LABEL_FRACTION
from gliznet.generation.loop import Validated
from gliznet.records import (
    Limits,
    Provenance,
    Rejection,
    RejectReason,
    label_key,
    utc_now_iso,
    validate_items,
)

IMPORT = "import"
# The import policy: human-labelled data has short texts (3 characters), few or no negatives and more labels than
# an LLM writes; ``gliznet import`` starts from these (its --min-text-chars / --min-not-labels change two of them).
IMPORT_LIMITS = Limits(min_text_chars=3, min_not_labels=0, max_labels=20, max_not_labels=50)


def import_provenance(path: str | os.PathLike, seed: int) -> Provenance:
    return Provenance(provider=IMPORT, model=Path(path).name, prompt_id=IMPORT, prompt_hash=IMPORT, topic="",
                      genre="", length="", reading_level="", seed=seed, created_at=utc_now_iso())


def read_rows(path: str | os.PathLike, provenance: Provenance) -> tuple[list[dict], list[Rejection]]:
    """JSON objects of the file (missing ``not_labels`` -> ``[]``) and one rejection per unreadable line."""
    rows: list = []
    rejections: list[Rejection] = []

    def unreadable(number: int, line: str, why: str) -> None:
        rejections.append(Rejection(reason=RejectReason.invalid_json, detail=f"line {number}: {why}"[:300],
                                    raw=line, provenance=provenance))

    for _, row in read_jsonl(path, on_bad_line=unreadable, errors="replace"):
        rows.append({**row, "not_labels": []} if isinstance(row, dict) and "not_labels" not in row else row)
    return rows, rejections


def mine_negatives(rows: list[dict], k: int, embedder) -> int:
    """Add to each row's ``not_labels`` up to ``k`` labels of the file most similar to its text.

    Candidates are every label written in the file (positives and negatives, one per ``label_key``),
    minus the row's own labels and not_labels.  Rows of the wrong shape are left alone (validation
    rejects them).  Returns the number of labels added.
    """
    usable = [r for r in rows if isinstance(r, dict) and isinstance(r.get("text"), str)
              and isinstance(r.get("labels"), list) and isinstance(r.get("not_labels"), list)
              and all(isinstance(x, str) for x in [*r["labels"], *r["not_labels"]])]
    shown: dict[str, str] = {}
    for r in usable:
        for x in [*r["labels"], *r["not_labels"]]:
            if label_key(x):
                shown.setdefault(label_key(x), x)
    keys = sorted(shown)
    if not usable or not keys:
        return 0
    label_vectors = np.asarray(embedder.encode([shown[key] for key in keys]), dtype=np.float32)
    added = 0
    for start in range(0, len(usable), 1024):
        chunk = usable[start:start + 1024]
        sims = np.asarray(embedder.encode([r["text"] for r in chunk]), dtype=np.float32) @ label_vectors.T
        for row, scores in zip(chunk, sims):
            own = {label_key(x) for x in [*row["labels"], *row["not_labels"]]}
            picked = []
            for j in np.argsort(-scores, kind="stable"):
                if len(picked) == k:
                    break
                if keys[j] not in own:
                    picked.append(shown[keys[j]])
            row["not_labels"] = [*row["not_labels"], *picked]
            added += len(picked)
    return added


def import_labelled(path: str, out_dir: str, *, test_label_fraction: float = TEST_LABEL_FRACTION, seed: int = 0,
                    mine_hard_negatives: int = 0, embedder=None, limits: Limits = IMPORT_LIMITS) -> dict:
    """Curate a labelled JSONL file into ``out_dir`` (the hardset folder contract). Returns the manifest.

    ``mine_hard_negatives > 0`` needs an embedder (``gliznet.modeling.backbone.Embedder()`` when None).  When an
    embedder is used, the card's hardness check is computed too.  The import holds ``out_dir``
    (``gliznet._io.FolderLock``) and a full disk or a refused write is one ``UserError`` line.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a JSONL file of {{text, labels, not_labels}} rows")
    if mine_hard_negatives < 0:
        raise UserError(f"mine_hard_negatives={mine_hard_negatives} is negative: pass 0 (off) or more")
    with FolderLock(out_dir), disk_errors(out_dir):
        return _import(path, out_dir, test_label_fraction, seed, mine_hard_negatives, embedder, limits)


def _import(path: str, out_dir: str, test_label_fraction: float, seed: int, mine_hard_negatives: int, embedder,
            limits: Limits) -> dict:
    provenance = import_provenance(path, seed)
    rows, unreadable = read_rows(path, provenance)
    counts: Counter = Counter(rows_read=len(rows) + len(unreadable))
    if mine_hard_negatives:
        if embedder is None:
            from gliznet.modeling.backbone import Embedder
            embedder = Embedder()
        counts["hard_negatives_mined"] = mine_negatives(rows, mine_hard_negatives, embedder)

    records, rejections, fixes = validate_items(rows, provenance, "", limits)
    counts.update(fixes)
    validated = Validated(records, unreadable + rejections, counts)
    if not validated.records:
        reasons = dict(Counter(r.reason.value for r in validated.rejections))
        raise UserError(f"no row of {path} passed validation (rejections by reason: {reasons}): "
                        "check the file format or pass relaxed limits")
    curated = curate(validated, NEAR_DUP_THRESHOLD)
    split = split_curated(curated, test_label_fraction, seed)
    hardness = score_hardness(curated, seed, embedder) if embedder is not None else None
    params = {"provider": IMPORT, "source": str(path), "model": Path(path).name,
              "test_label_fraction": test_label_fraction, "seed": seed,
              "mine_hard_negatives": mine_hard_negatives, "near_dup_threshold": NEAR_DUP_THRESHOLD,
              "limits": limits.model_dump()}
    return write_hardset(out_dir, records=curated.records, rejections=curated.rejections, counts=curated.counts,
                         split=split, params=params, hardness=hardness, extra={"source": str(path)})
