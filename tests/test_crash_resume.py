"""SIGKILL at any moment loses nothing, duplicates nothing, and never leaves a half artefact that loads.

1. Crash-resume.  A real ``python -m gliznet.cli generate`` process is killed with SIGKILL (its whole
   process group) at a random moment, then started again on the same ``--out``; 20 times.  Every LLM
   answer comes from the replay proxy (``tests/fault_proxy.py``) serving the real model's answers recorded
   in ``tests/data/recorded_answers.jsonl``, so an uninterrupted run given the same responses has a known
   fingerprint.  The runs ask for more records than the plan's 9 calls give, so each makes every call
   (a slow answer, ``replay_delay_s``, keeps the generation phase long enough for kills to land in it).  Per kill: the checkpoint
   lines written before the kill survive unchanged, no call appears twice, every record accepted before
   the kill is in the final dataset, no record is duplicated, and ``manifest.json["fingerprint"]`` equals
   the uninterrupted run's.

2. Atomic writes.  ``write_hardset`` writes into a staging folder, renames artefacts into place and writes
   ``manifest.json`` last (after removing the old one first).  A child rewriting a dataset folder is SIGKILLed
   at named points inside the writer (before or after a step: it says where it is and waits there for the
   kill), and an exception is injected into each step of the writer: afterwards a folder either has no
   manifest (reads as unfinished) or has one whose datasets load and whose content has exactly the
   manifest's fingerprint.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import pytest
from conftest import first_line
from fault_proxy import FaultConfig, plan_cli_args, plan_config
from helpers import make_records, write

from gliznet._io import read_jsonl
from gliznet.curation.hardset import MANIFEST, is_complete
from gliznet.curation.publish import dataset_fingerprint
from gliznet.generation.plan import prompt_text
from gliznet.generation.prompts import load_prompt
from gliznet.records import parse_batch, text_key

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20
RECORDS = 100  # more than the plan's calls can give: every run makes all of them




# -- 1. crash-resume ---------------------------------------------------------------------------------

def wait_for_lines(path: Path, lines: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``path`` holds ``lines`` complete lines (or ``proc`` ended, or ``timeout`` seconds: a hang guard)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            return
        time.sleep(0.02)


@pytest.mark.slow
def test_resume_after_20_random_sigkills_loses_and_duplicates_nothing(replay, tmp_path):
    with replay.fork(FaultConfig(replay=True, replay_delay_s=0.3)) as proxy:
        env = {**os.environ, "GROQ_API_KEY": "crash-test", "GROQ_BASE_URL": proxy.base_url, "HF_HUB_OFFLINE": "1"}

        def command(out: Path) -> list[str]:
            return [sys.executable, "-m", "gliznet.cli", "generate", *plan_cli_args(records=RECORDS),
                    "--concurrency", "1", "--no-hardness", "--out", str(out)]

        start = time.monotonic()
        reference = subprocess.run(command(tmp_path / "reference"), cwd=ROOT, env=env, capture_output=True,
                                   text=True, timeout=300)
        ref_seconds = time.monotonic() - start
        assert reference.returncode == 0, reference.stderr[-2000:]
        ref_manifest = json.loads((tmp_path / "reference" / MANIFEST).read_text())
        ref_records = Counter(text_key(r["text"]) for _, r in read_jsonl(tmp_path / "reference" / "records.jsonl"))
        rng = random.Random(20241125)
        # half the kills land at a random moment of a run as long as the reference (imports take its first ~third),
        # half once a random number of calls is in the checkpoint: mid-generation whatever the machine's load
        delays = [rng.uniform(0.35, 1.0) * ref_seconds for _ in range(KILLS)]
        lines_before_kill = [rng.randint(1, ref_manifest["counts"]["calls"] - 2) if i % 2 else None for i in range(KILLS)]

        def kill_then_resume(i: int) -> dict:
            out = tmp_path / f"killed-{i:02d}"
            proc = subprocess.Popen(command(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            if lines_before_kill[i] is None:
                time.sleep(delays[i])
            else:
                wait_for_lines(out / "checkpoint" / "calls.jsonl", lines_before_kill[i], proc)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            calls = out / "checkpoint" / "calls.jsonl"
            before = {c["call"]: c for _, c in read_jsonl(calls, torn_tail=True)} if calls.exists() else {}
            phase = ("finished" if is_complete(out) else "building" if len(before) == ref_manifest["counts"]["calls"]
                     else "generating" if before else "starting")
            resumed = subprocess.run(command(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert resumed.returncode == 0, resumed.stderr[-2000:]
            return {"delay": delays[i], "phase": phase, "before": before, "out": out}

        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(kill_then_resume, range(KILLS)))
        stats = proxy.stats()

    config = plan_config(records=RECORDS)
    prompt = load_prompt(config.prompt_id)
    lost = duplicated = 0
    for run in runs:
        out, before = run["out"], run["before"]
        after = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
        indices = [c["call"] for c in after]
        assert len(indices) == len(set(indices)), f"{out.name}: a call was asked twice"
        for index, line in before.items():
            assert next(c for c in after if c["call"] == index) == line, f"{out.name}: call {index} changed"
        final = Counter(text_key(r["text"]) for _, r in read_jsonl(out / "records.jsonl"))
        duplicated += sum(n - 1 for n in final.values())
        near = {text_key(json.loads(r["raw"])["text"]) for _, r in read_jsonl(out / "rejected.jsonl")
                if r["reason"] == "near_duplicate" and r["raw"].startswith("{")}
        for line in before.values():
            if line.get("ok"):
                kept, _, _ = parse_batch(line["raw"], None, prompt_text(prompt, line, config), config.limits)
                lost += sum(1 for record in kept if record.key not in final and record.key not in near)
        manifest = json.loads((out / MANIFEST).read_text())
        assert manifest["fingerprint"] == ref_manifest["fingerprint"], f"{out.name} ({run['phase']})"
        assert final == ref_records
    assert ref_manifest["counts"]["calls"] == config.call_budget, "the reference run made every call of the plan"
    phases = Counter(run["phase"] for run in runs)
    print(f"\ncrash-resume: kills={len(runs)} phases={dict(phases)} records_lost={lost} duplicated={duplicated} "
          f"reference: {ref_manifest['counts']['calls']} calls, {ref_manifest['counts']['accepted']} accepted, "
          f"{ref_seconds:.1f}s; replayed {stats['replayed']} answers, {stats['chat_requests'] - stats['replayed']} "
          f"not in the recording")
    assert lost == 0 and duplicated == 0
    assert stats["replayed"] == stats["chat_requests"], "every answer came from the recording"
    assert phases["generating"] >= 3, f"too few kills landed mid-generation: {dict(phases)}"


# -- 2. atomic writes --------------------------------------------------------------------------------

def assert_complete_or_unfinished(out: Path) -> str:
    """A folder is either unfinished (no manifest) or complete: its datasets load and match the manifest."""
    if not (out / MANIFEST).exists():
        return "unfinished"
    manifest = json.loads((out / MANIFEST).read_text())
    triplet = datasets.load_from_disk(str(out / "triplet"))
    couplet = datasets.load_from_disk(str(out / "couplet"))
    assert dataset_fingerprint({s: triplet[s] for s in ("train", "test")}) == manifest["fingerprint"]
    assert couplet["train"].num_rows == manifest["counts"]["train"] == triplet["train"].num_rows
    assert sum(1 for _ in open(out / "records.jsonl")) == manifest["counts"]["accepted"]
    return "complete"


WRITER = """
import sys
import time
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
import gliznet.curation.hardset as hardset
from helpers import make_records, write

out, step, nth, when = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
real, calls = getattr(hardset, step), [0]


def stop_here():
    print("at", step, nth, when, flush=True)  # the parent SIGKILLs this process on reading the line
    time.sleep(600)


def announced(*args, **kwargs):
    calls[0] += 1
    if calls[0] == nth and when == "before":
        stop_here()
    result = real(*args, **kwargs)
    if calls[0] == nth and when == "after":
        stop_here()
    return result


setattr(hardset, step, announced)
write(out, make_records(400, "rewrite"))
print("finished without stopping", flush=True)
"""

# Where the SIGKILL lands inside write_hardset: (step, which call of it, before or after that call).  Only a kill
# after the manifest's write leaves a complete folder (the new one); every other leaves it unfinished.
KILL_POINTS = [("write_records_jsonl", 1, "before"), ("write_records_jsonl", 2, "after"),
               ("save_datasets", 1, "before"), ("save_datasets", 1, "after"), ("render_card", 1, "after"),
               ("replace_path", 1, "after"), ("replace_path", 3, "after"),  # mid-swap: 2 of 5 artefacts renamed
               ("atomic_write_text", 1, "before"), ("atomic_write_text", 1, "after")]


@pytest.mark.slow
@pytest.mark.parametrize("step,nth,when", KILL_POINTS)
def test_sigkill_inside_a_rewrite_never_leaves_a_manifest_over_broken_data(tmp_path, step, nth, when):
    """A child rewriting a dataset folder says where it is and waits there; the kill lands exactly at that point."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT), tests=str(ROOT / "tests")))
    out = tmp_path / "ds"
    write(out, make_records(300, "first"))  # a complete folder to be overwritten
    proc = subprocess.Popen([sys.executable, str(script), str(out), step, str(nth), when], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        line = first_line(proc, timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert line == f"at {step} {nth} {when}", f"{line}\n{proc.stderr.read()[-2000:]}"
    after_manifest = (step, when) == ("atomic_write_text", "after")
    assert assert_complete_or_unfinished(out) == ("complete" if after_manifest else "unfinished")
    if after_manifest:
        assert json.loads((out / MANIFEST).read_text())["counts"]["accepted"] == 400, "the new folder, whole"
    write(out, make_records(50, "again"))  # the next run repairs the folder
    assert assert_complete_or_unfinished(out) == "complete"


@pytest.mark.parametrize("step", ["write_records_jsonl", "save_datasets", "render_card", "replace_path"])
def test_an_exception_inside_write_hardset_leaves_the_folder_unfinished(tmp_path, monkeypatch, step):
    import gliznet.curation.hardset as hardset

    out = tmp_path / "ds"
    write(out, make_records(60, "old"))
    real = getattr(hardset, step)
    calls = {"n": 0}

    def crash(*args, **kwargs):
        calls["n"] += 1
        if step == "replace_path" and calls["n"] < 3:  # let two artefacts be renamed, then crash mid-swap
            return real(*args, **kwargs)
        raise OSError(28, f"No space left on device (injected into {step})")

    monkeypatch.setattr(hardset, step, crash)
    with pytest.raises(OSError, match="injected"):
        write(out, make_records(80, "new"))
    monkeypatch.undo()
    assert not is_complete(out) and assert_complete_or_unfinished(out) == "unfinished"
    assert not list(out.glob(".staging-*")), "the staging folder is cleaned up"
    write(out, make_records(80, "new"))
    assert assert_complete_or_unfinished(out) == "complete"
