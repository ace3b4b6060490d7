"""Importer: turn an existing labelled JSONL file into a ZSHOT-HARDSET folder.

Input: one JSON object a line, ``{"text": str, "labels": [str], "not_labels": [str]?}`` (the format of
``shared/train/*.jsonl``; ``not_labels`` optional).  The rows go through the same curation as generated
data, so an imported folder is interchangeable with a generated one:

1. read rows; a line that is not JSON is an ``invalid_json`` rejection, never a crash;
2. optionally *mine hard negatives*: add up to ``mine_hard_negatives`` labels from the file's own label
   set, the ones most similar to the text (embedding cosine) that are not already a label or negative;
3. ``validate_item`` with the given ``Limits`` (relax them for short-text sets), ``deduplicate``,
   ``zero_shot_split``;
4. write the output folder with ``gliznet.curation.hardset.write_hardset`` (records.jsonl, rejected.jsonl,
   triplet/, couplet/, README.md, manifest.json).

Provenance of an imported record: provider ``"import"``, model = the file name, prompt_id / prompt_hash
``"import"``, empty topic / genre / length / reading_level, the import seed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from gliznet.curation.dedup import deduplicate
from gliznet.curation.split import zero_shot_split
from gliznet.records import (
    Limits,
    Provenance,
    Record,
    Rejection,
    RejectReason,
    label_key,
    utc_now_iso,
    validate_item,
)

IMPORT = "import"
NEAR_DUP_THRESHOLD = 90.0


def import_provenance(path: str | os.PathLike, seed: int) -> Provenance:
    return Provenance(provider=IMPORT, model=Path(path).name, prompt_id=IMPORT, prompt_hash=IMPORT, topic="",
                      genre="", length="", reading_level="", seed=seed, created_at=utc_now_iso())


def read_rows(path: str | os.PathLike, provenance: Provenance) -> tuple[list[dict], list[Rejection]]:
    """JSON objects of the file (missing ``not_labels`` -> ``[]``) and one rejection per unreadable line."""
    rows, rejections = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as err:
                rejections.append(Rejection(reason=RejectReason.invalid_json, detail=f"line {number}: {err}"[:300],
                                            raw=line.rstrip("\n"), provenance=provenance))
                continue
            if isinstance(row, dict) and "not_labels" not in row:
                row = {**row, "not_labels": []}
            rows.append(row)
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


def import_labelled(path: str, out_dir: str, *, test_label_fraction: float = 0.2, seed: int = 0,
                    mine_hard_negatives: int = 0, embedder=None, limits: Limits = Limits()) -> dict:
    """Curate a labelled JSONL file into ``out_dir`` (the hardset folder contract). Returns the manifest.

    ``mine_hard_negatives > 0`` needs an embedder (``gliznet.modeling.backbone.Embedder()`` when None).  When an
    embedder is used, the card's hardness check is computed too.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a JSONL file of {{text, labels, not_labels}} rows")
    if mine_hard_negatives < 0:
        raise ValueError(f"mine_hard_negatives={mine_hard_negatives} is negative: pass 0 (off) or more")
    provenance = import_provenance(path, seed)
    rows, rejections = read_rows(path, provenance)
    counts: Counter = Counter(rows_read=len(rows) + len(rejections))
    if mine_hard_negatives:
        if embedder is None:
            from gliznet.modeling.backbone import Embedder
            embedder = Embedder()
        counts["hard_negatives_mined"] = mine_negatives(rows, mine_hard_negatives, embedder)

    records: list[Record] = []
    for row in rows:
        record, rejection, fixes = validate_item(row, provenance, "", limits)
        counts.update(fixes)
        if record is not None:
            records.append(record)
        else:
            rejections.append(rejection)
    if not records:
        reasons = dict(Counter(r.reason.value for r in rejections))
        raise ValueError(f"no row of {path} passed validation (rejections by reason: {reasons}): "
                         "check the file format or pass relaxed limits")
    deduped = deduplicate(records, threshold=NEAR_DUP_THRESHOLD)
    counts.update(deduped.counts)
    rejections += deduped.rejections
    split = zero_shot_split(deduped.records, test_label_fraction=test_label_fraction, seed=seed)

    hardness = None
    if embedder is not None:
        from gliznet.curation.card import hardness as hardness_check
        hardness = hardness_check(deduped.records, embedder, seed=seed)
    params = {"provider": IMPORT, "source": str(path), "model": Path(path).name,
              "test_label_fraction": test_label_fraction, "seed": seed,
              "mine_hard_negatives": mine_hard_negatives, "near_dup_threshold": NEAR_DUP_THRESHOLD,
              "limits": limits.model_dump()}
    from gliznet.curation.hardset import write_hardset
    return write_hardset(out_dir, records=deduped.records, rejections=rejections, counts=counts, split=split,
                         params=params, hardness=hardness, extra={"source": str(path)})
