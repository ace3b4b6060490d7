"""The manifest's ``timings``: each stage of a run, in order, with its wall seconds and memory (``gliznet._timings``).
No bound on any time is asserted: only that every stage is there, in order, with sane numbers."""

from __future__ import annotations

import json

import pytest
from scripted_llm import ScriptedProvider

from gliznet._timings import StageTimer, peak_rss_mib, rss_mib
from gliznet.pipeline.generate import generate_hardset
from gliznet.generation.plan import GenerateConfig

CLI_STAGES = ["calls", "validation", "dedup", "split", "records_jsonl", "dataset_build", "fingerprint", "card"]


def test_a_stage_is_noted_with_its_seconds_and_memory_even_when_it_raises():
    timer = StageTimer()
    with timer.stage("first"):
        buffer = bytearray(32 * 1024 * 1024)  # touched: the peak must see it
        buffer[::4096] = b"x" * len(buffer[::4096])
    with pytest.raises(KeyError):
        with timer.stage("broken"):
            raise KeyError("x")
    report = timer.report()
    assert [s["stage"] for s in report["stages"]] == ["first", "broken"]
    for stage in report["stages"]:
        assert stage["seconds"] >= 0 and stage["peak_rss_mib"] >= 32
        assert stage["rss_mib"] is None or 0 < stage["rss_mib"] <= stage["peak_rss_mib"]
    assert report["seconds"] == pytest.approx(sum(s["seconds"] for s in report["stages"]), abs=0.002)
    assert report["peak_rss_mib"] >= report["stages"][-1]["peak_rss_mib"]
    assert peak_rss_mib() >= (rss_mib() or 0) > 0
    json.dumps(report)  # JSON-able as it is


@pytest.mark.slow
def test_a_generated_folder_states_what_each_stage_cost_in_its_manifest(tmp_path):
    config = GenerateConfig(records=8, seed=3, provider="local", records_per_call=4, concurrency=2, max_calls=2)
    manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False,
                                provider_factory=lambda: ScriptedProvider())
    timings = manifest["timings"]
    assert [s["stage"] for s in timings["stages"]] == CLI_STAGES
    assert all(s["seconds"] >= 0 and s["peak_rss_mib"] > 0 for s in timings["stages"])
    peaks = [s["peak_rss_mib"] for s in timings["stages"]]
    assert peaks == sorted(peaks), "a peak so far never goes down"
    assert json.loads((tmp_path / "hs" / "manifest.json").read_text())["timings"] == timings
