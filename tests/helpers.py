"""Plain helpers shared by test modules (no fixtures, importable from a child process too): checkpoint lines of
scripted LLM calls, an executor that records which calls started, and dataset folders written from made-up records.
Fixtures and the helpers that start real components live in ``conftest.py``."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gliznet.curation.hardset import write_hardset
from gliznet.curation.split import zero_shot_split
from gliznet.generation.plan import CallSpec
from gliznet.records import Provenance, Record


# -- scripted calls of the generation loop ----------------------------------------------------------
def answered(spec: CallSpec, records: int = 1) -> dict:
    """A checkpoint line whose answer holds ``records`` valid records (distinct per call)."""
    items = [{"text": f"Call {spec.index} item {k}: the harbour raised docking fees for cargo ships this spring.",
              "labels": ["shipping"], "not_labels": ["aviation", "railways", "fishing"]} for k in range(records)]
    return {"call": spec.index, "spec": vars(spec), "provider": "local", "model": "m", "prompt_id": "hardset_batch",
            "prompt_hash": "h", "created_at": "2024-01-01T00:00:00+00:00", "ok": True,
            "raw": json.dumps({"records": items}), "prompt_tokens": 10, "completion_tokens": 20,
            "latency_s": 0.5, "llm_seconds": 0.5, "attempts": 1}


def failed(spec: CallSpec) -> dict:
    """A call the LLM answered with a refusal (HTTP 400): it settles the call (a transport failure would not:
    see test_reliability.py)."""
    return {"call": spec.index, "spec": vars(spec), "provider": "local", "model": "m", "prompt_id": "hardset_batch",
            "prompt_hash": "h", "created_at": "2024-01-01T00:00:00+00:00", "ok": False, "error": "bad_request",
            "failure": "answer", "detail": "HTTP 400: refused", "attempts": 3, "llm_seconds": 1.5}


class Executor:
    """A plain thread pool that runs ``call(spec)`` and records which calls started, in order."""

    def __init__(self, call, workers: int = 8):
        self.call = call
        self.started: list[int] = []
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def submit(self, spec: CallSpec):
        self.started.append(spec.index)
        return self.pool.submit(self.call, spec)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True)


# -- dataset folders ---------------------------------------------------------------------------------
PROV = Provenance(provider="t", model="t", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                  reading_level="r", seed=0)


def make_records(n: int, tag: str) -> list[Record]:
    return [Record(text=f"{tag} text {i}: the kettle boiled while the committee argued about budgets",
                   labels=[f"topic {i % 40}"], not_labels=[f"other {i % 13}", f"else {i % 11}", f"none {i % 7}"],
                   provenance=PROV) for i in range(n)]


def write(out: Path, records: list[Record]) -> dict:
    return write_hardset(out, records=records, rejections=[], counts=Counter(), params={"n": len(records)},
                         split=zero_shot_split(records, test_label_fraction=0.2, seed=0))


# -- the train command with training itself replaced -------------------------------------------------
def cli_train_config(tmp_path: Path, monkeypatch, *args: str):
    """``(TrainConfig, result)``: what ``gliznet train --data TMP --out TMP/o ARGS`` hands to the library, training
    itself replaced (the config is None when the command stopped before training); ``result.backbone`` is the
    backbone it handed over."""
    from typer.testing import CliRunner

    import gliznet.training.trainer as trainer
    from gliznet.cli import app

    seen = {}

    def fake_train(data, backbone, out, config, resume=False):
        seen["config"], seen["backbone"] = config, backbone
        return {"model_dir": str(tmp_path / "model")}

    monkeypatch.setattr(trainer, "train", fake_train)
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    result.backbone = seen.get("backbone")
    return seen.get("config"), result
