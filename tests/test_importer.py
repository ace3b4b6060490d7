"""Importer: a slice of the real CLINC150 training file becomes a hardset folder with the same contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest

from gliznet._io import read_jsonl
from gliznet.curation.dataset import load_records_jsonl
from gliznet.curation.importer import import_labelled
from gliznet.records import Limits, RejectReason, label_key

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CLINC = Path(__file__).resolve().parents[1].parent / "shared" / "train" / "clinc150.jsonl"
RELAXED = Limits(min_text_chars=5)


@pytest.fixture(scope="module")
def clinc_rows() -> list[dict]:
    if not CLINC.is_file():
        pytest.fail(f"real training data not found at {CLINC}: the shared/ folder must sit next to the repo")
    rows = [row for _, row in read_jsonl(CLINC)]
    return rows[::150]   # 120 rows spread over the intents (the file is grouped by intent)


def write_slice(path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def rejected(out: Path) -> list[dict]:
    return [row for _, row in read_jsonl(out / "rejected.jsonl")]


def test_import_writes_the_hardset_folder_and_accounts_for_every_row(tmp_path, clinc_rows):
    source = write_slice(tmp_path / "clinc_slice.jsonl", clinc_rows,
                         ("this line is not json", json.dumps({"text": "labels missing here"})))
    out = tmp_path / "out"
    manifest = import_labelled(str(source), str(out), test_label_fraction=0.2, seed=0, limits=RELAXED)

    for name in ("records.jsonl", "rejected.jsonl", "README.md", "manifest.json", "triplet", "couplet"):
        assert (out / name).exists(), name
    records = load_records_jsonl(out / "records.jsonl")
    reasons = [r["reason"] for r in rejected(out)]
    assert reasons.count(RejectReason.invalid_json) == 1 and reasons.count(RejectReason.wrong_shape) == 1
    counts = manifest["counts"]
    assert counts["rows_read"] == len(clinc_rows) + 2
    assert counts["accepted"] == len(records) and counts["rejected"] == len(reasons)
    assert len(records) + len(reasons) + counts["exact_merged"] == counts["rows_read"]

    provenance = records[0].provenance
    assert (provenance.provider, provenance.model, provenance.prompt_hash) == ("import", "clinc_slice.jsonl",
                                                                               "import")
    triplet = datasets.load_from_disk(str(out / "triplet"))
    couplet = datasets.load_from_disk(str(out / "couplet"))
    assert triplet["train"].num_rows == counts["train"] and couplet["test"].num_rows == counts["test"]
    train_keys = {label_key(x) for row in triplet["train"] for x in row["labels"] + row["not_labels"]}
    test_keys = {label_key(x) for row in triplet["test"] for x in row["labels"] + row["not_labels"]}
    assert test_keys and train_keys and not train_keys & test_keys
    assert "zero-shot-classification" in (out / "README.md").read_text()


def test_default_limits_reject_short_clinc_queries_with_a_reason(tmp_path, clinc_rows):
    source = write_slice(tmp_path / "clinc_slice.jsonl", clinc_rows)
    import_labelled(str(source), str(tmp_path / "out"), limits=Limits())
    short = [r for r in rejected(tmp_path / "out") if r["reason"] == RejectReason.text_too_short]
    assert short and all(len(json.loads(r["raw"])["text"]) < 20 for r in short)


def test_missing_file_and_unusable_file_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_labelled(str(tmp_path / "nope.jsonl"), str(tmp_path / "out"))
    bad = write_slice(tmp_path / "bad.jsonl", [], ("{", "[1, 2]"))
    with pytest.raises(ValueError, match="no row .* passed validation"):
        import_labelled(str(bad), str(tmp_path / "out"))


@pytest.mark.slow
def test_mining_adds_similar_non_positive_labels_from_the_file(tmp_path, clinc_rows):
    from gliznet.modeling.backbone import Embedder

    rows = [{"text": r["text"], "labels": r["labels"]} for r in clinc_rows[:60]]   # no not_labels at all
    file_labels = {label_key(x) for r in rows for x in r["labels"]}
    source = write_slice(tmp_path / "positives_only.jsonl", rows)
    out = tmp_path / "mined"
    manifest = import_labelled(str(source), str(out), mine_hard_negatives=4, embedder=Embedder(),
                               limits=RELAXED, seed=0)
    records = load_records_jsonl(out / "records.jsonl")
    assert records and manifest["counts"]["hard_negatives_mined"] == 4 * len(rows)
    for record in records:
        negatives = {label_key(x) for x in record.not_labels}
        assert len(negatives) == 4
        assert negatives <= file_labels
        assert not negatives & {label_key(x) for x in record.labels}
    assert manifest["hardness"]["records_scored"] == len(records)
