"""``bench/scale.py`` at a small size: the real CLI against the bench's answer server finds every planted
duplicate, keeps every negated copy, and a run SIGKILLed at half its calls resumes to the uninterrupted run's
dataset.  Slow (three CLI runs); no time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_scale_bench_finds_the_planted_duplicates_and_resumes_without_loss(tmp_path):
    out = tmp_path / "scale.json"
    # 240 records: 12 calls of 20; rates raised so that every kind is planted at this size
    subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--records", "240", "--concurrency", "2",
                    "--no-hardness", "--exact-rate", "0.05", "--near-rate", "0.05", "--negated-rate", "0.1",
                    "--answer-delay", "0.1",
                    "--work", str(tmp_path / "work"), "--json", str(out)], check=True, cwd=ROOT, timeout=600)
    result = json.loads(out.read_text())
    dup, planted = result["duplicates"], result["planted"]
    assert planted["exact"] > 0 and planted["near"] > 0 and planted["negated"] > 0, planted
    assert dup["exact_found"] == dup["exact_planted"] and dup["near_found"] == dup["near_planted"], dup
    counts = result["cli"]["manifest_counts"]
    assert counts["accepted"] == 240 - dup["exact_found"] - dup["near_found"] and counts["calls"] == 12
    stages = [s["stage"] for s in result["cli"]["timings"]["stages"]]
    assert stages[:3] == ["calls", "validation", "dedup"] and "card" in stages
    resume = result["resume"]
    assert resume["ok"] and resume["fingerprint_equal"], resume
    assert resume["checkpoint_lines"] == resume["checkpoint_calls_distinct"] == 12
    assert 0 < resume["checkpoint_lines_at_kill"] < 12
    assert resume["calls_asked_twice"] <= 2, "only the calls in flight at the kill are asked again"
    # --resume-only: the resume check again, later, against the uninterrupted run saved in the result file
    subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--records", "240", "--concurrency", "2",
                    "--no-hardness", "--exact-rate", "0.05", "--near-rate", "0.05", "--negated-rate", "0.1",
                    "--answer-delay", "0.1", "--work", str(tmp_path / "work2"), "--resume-only", str(out)],
                   check=True, cwd=ROOT, timeout=600)
    again = json.loads(out.read_text())
    assert again["cli"] == result["cli"]  # the saved uninterrupted run is kept; the check ran in the new work folder:
    assert (tmp_path / "work2" / "n240" / "resume-cli" / "manifest.json").exists()
    assert again["resume"]["ok"] and again["resume"]["checkpoint_lines"] == 12
