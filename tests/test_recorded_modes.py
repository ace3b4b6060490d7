"""Issue 21's modes on the embedded model's real (recorded) answers, through the real CLI: a cross-role bundle run
(``--bundle-size 5``, under both ``--cross-role-policy`` values), a seed-grounded run (``--seed-texts``) and an
``--negative-check llm`` pass.

The answers are SmolLM2-135M's, recorded by ``python tests/record_answers.py --modes`` into
``tests/data/recorded_modes.jsonl`` (plans in ``tests/recorded_modes.py``) and served with the base recording by
a replay proxy without any LLM.  The tests assert the pipeline's accounting, never the model's wording: every
figure of the manifest is recomputed here from the run's own checkpoint (``calls.jsonl``,
``negative_check.jsonl``) with the library's pure functions and must agree, and the files, the card and the
printed summary must agree with the manifest.  So a re-recording changes the numbers, not the tests.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli
from fault_proxy import FaultConfig, FaultProxy, Recording
from recorded_modes import MODES_RECORDING, RECORDING, SEED_PASSAGES, mode_cli_args, mode_config

from gliznet._io import Checkpoint
from gliznet.curation.hardset import curate, validate_lines
from gliznet.curation.negatives import check_negatives_llm, load_negative_answers
from gliznet.generation.bundles import cross_role_counts, cross_role_report
from gliznet.generation.prompts import load_prompt
from gliznet.records import Limits, text_key

pytestmark = pytest.mark.slow  # the real CLI in a subprocess
NEAR_DUP = 90.0  # the CLI's default --near-dup-threshold


@pytest.fixture(scope="module")
def modes_replay():
    """One replay proxy over the base and the modes' recordings; fails the module on any request not in them."""
    recording = Recording.load(RECORDING)
    modes = Recording.load(MODES_RECORDING)
    recording.answers.update(modes.answers)
    recording.requests.update(modes.requests)
    with FaultProxy(None, FaultConfig(replay=True), recording=recording) as proxy, pytest.MonkeyPatch.context() as env:
        env.setenv("GROQ_API_KEY", "recorded")
        env.setenv("GROQ_BASE_URL", proxy.base_url)  # run_cli's processes inherit it
        yield proxy
    missed = proxy.missed()
    if missed:
        pytest.fail(f"{len(missed)} request(s) were not in the recording; the first: {missed[0]}", pytrace=False)


def generate(mode: str, out: Path, proxy: FaultProxy, *extra: str):
    """``gliznet generate`` of a recorded mode against the replay proxy: (process, manifest or None, calls)."""
    assert os.environ.get("GROQ_BASE_URL") == proxy.base_url
    done = run_cli("generate", *mode_cli_args(mode), "--no-hardness", "--out", str(out), *extra, timeout=300)
    assert done.returncode in (0, 2), done.stdout + done.stderr
    manifest = json.loads((out / "manifest.json").read_text()) if done.returncode == 0 else None
    calls = [json.loads(x) for x in (out / "checkpoint" / "calls.jsonl").read_text().splitlines()]
    assert calls and all(c["ok"] for c in calls), "every recorded call is answered"
    return done, manifest, calls


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def assert_rejections_agree(out: Path, manifest: dict, calls: list[dict], config, policy: str = "keep") -> None:
    """records / rejected files, the manifest's counts by reason and the card all tell the same story, and it is
    what validating and curating the run's own checkpoint gives."""
    counts, by_reason = manifest["counts"], manifest["stats"]["rejections_by_reason"]
    rejected, records = jsonl(out / "rejected.jsonl"), jsonl(out / "records.jsonl")
    assert Counter(r["reason"] for r in rejected) == by_reason and sum(by_reason.values()) == counts["rejected"]
    assert len(records) == counts["accepted"] and counts["calls"] == len(calls)
    curated = curate(validate_lines(calls, config, policy), NEAR_DUP)
    assert Counter(r.reason.value for r in curated.rejections) == by_reason
    assert counts["accepted"] == len(curated.records)
    card = (out / "README.md").read_text()
    for reason, n in by_reason.items():
        assert f"| {reason} | {n} |" in card
    prompt = load_prompt(config.prompt_id)
    assert manifest["prompt_hashes"] == {config.prompt_id: prompt.hash}
    assert {(c["prompt_id"], c["prompt_hash"]) for c in calls} == {(config.prompt_id, prompt.hash)}
    assert all(r["provenance"]["prompt_hash"] == prompt.hash for r in records + [x for x in rejected if x["provenance"]])


def assert_nothing_accepted(done, calls: list[dict], config, policy: str = "keep") -> None:
    """A run the model gave no valid record: one error line whose counts by reason are the checkpoint's."""
    validated = curate(validate_lines(calls, config, policy), NEAR_DUP)
    assert validated.records == []
    error = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(error) == 1 and f"no record was accepted from {len(calls)} LLM calls" in error[0], done.stderr
    reasons = dict(Counter(r.reason.value for r in validated.rejections))
    assert str(reasons) in error[0]


def test_a_bundle_run_on_recorded_answers_checks_the_cross_role_rule(tmp_path, modes_replay):
    config = mode_config("bundle")
    done, manifest, calls = generate("bundle", tmp_path / "keep", modes_replay)
    assert {c["spec"]["bundle_size"] for c in calls} == {5} and len(calls) <= config.call_budget
    validated = validate_lines(calls, config)
    if manifest is None:  # the 135M model filled no bundle validly: the rejections are the whole story
        assert_nothing_accepted(done, calls, config)
        return
    assert_rejections_agree(tmp_path / "keep", manifest, calls, config)
    cross = manifest["cross_role"]
    assert cross == cross_role_report(cross_role_counts(validated.records), "keep"), "recomputed from calls.jsonl"
    assert cross["texts"] == len(validated.records) and cross["bundles_checked"] >= 1
    assert 0 <= cross["pool_labels_satisfying_rule"] <= cross["pool_labels"] and cross["texts_rejected"] == 0
    records = jsonl(tmp_path / "keep" / "records.jsonl")
    assert {r["provenance"]["bundle"] for r in records} <= {c["call"] for c in calls}
    assert (f"{cross['pool_labels_satisfying_rule']} of {cross['pool_labels']} pool labels satisfy the rule" in done.stdout + done.stderr
            and f"{cross['texts_breaking_rule']} of {cross['texts']} texts break it (kept)" in done.stdout + done.stderr)
    assert "## Cross-role bundles" in (tmp_path / "keep" / "README.md").read_text()
    print(f"\nrecorded bundle run: {len(calls)} calls, accepted {manifest['counts']['accepted']}, "
          f"rejections {manifest['stats']['rejections_by_reason']}, cross-role {cross}")

    # the same recorded answers under --cross-role-policy reject: exactly the breaking texts are rejected
    done, rejected_run, again = generate("bundle", tmp_path / "reject", modes_replay, "--cross-role-policy", "reject")
    assert [c["raw"] for c in again] == [c["raw"] for c in calls]
    if rejected_run is None:  # every valid text broke the rule
        assert cross["texts_breaking_rule"] == cross["texts"]
        assert_nothing_accepted(done, again, config, "reject")
        return
    assert_rejections_agree(tmp_path / "reject", rejected_run, again, config, "reject")
    gone = rejected_run["stats"]["rejections_by_reason"].get("cross_role_broken", 0)
    assert gone == cross["texts_breaking_rule"] == rejected_run["cross_role"]["texts_rejected"]
    assert rejected_run["counts"]["accepted"] <= manifest["counts"]["accepted"]


def test_a_seeded_run_on_recorded_answers_names_its_passages(tmp_path, modes_replay):
    config = mode_config("seeded")
    ids = {json.loads(x)["id"] for x in SEED_PASSAGES.read_text().splitlines()}
    done, manifest, calls = generate("seeded", tmp_path / "hs", modes_replay)
    assert all(c["spec"]["seed_id"] in ids for c in calls)
    assert len({c["spec"]["seed_id"] for c in calls if c["spec"]["seed_pass"] == 0}) == min(len(calls), len(ids))
    if manifest is None:
        assert_nothing_accepted(done, calls, config)
        return
    assert_rejections_agree(tmp_path / "hs", manifest, calls, config)
    seeds = manifest["seed_texts"]
    assert seeds["passages_available"] == len(ids) and seeds["calls_grounded"] == len(calls)
    assert seeds["passages_used"] == len({c["spec"]["seed_id"] for c in calls})
    assert seeds["calls_reusing_a_passage"] == sum(c["spec"]["seed_pass"] > 0 for c in calls)
    passage_of_call = {c["spec"]["seed"]: c["spec"]["seed_id"] for c in calls}  # the LLM seed names the call
    for r in jsonl(tmp_path / "hs" / "records.jsonl") + jsonl(tmp_path / "hs" / "rejected.jsonl"):
        if r["provenance"]:
            assert r["provenance"]["seed_id"] == passage_of_call[r["provenance"]["seed"]]
    assert "## Seed passages" in (tmp_path / "hs" / "README.md").read_text()
    assert f"seed passages: {seeds['passages_used']} of {seeds['passages_available']} used" in done.stdout + done.stderr
    print(f"\nrecorded seeded run: {len(calls)} calls, accepted {manifest['counts']['accepted']}, "
          f"rejections {manifest['stats']['rejections_by_reason']}, seeds {seeds}")


def test_an_llm_negative_check_on_recorded_answers_is_counted_as_its_answers_say(tmp_path, modes_replay):
    config = mode_config("llm-check")
    out = tmp_path / "hs"
    done, manifest, calls = generate("llm-check", out, modes_replay)
    assert manifest is not None, done.stderr  # the base plan's answers always give records
    before = curate(validate_lines(calls, config), NEAR_DUP).records
    checked_keys = [json.loads(x)["record"] for x in (out / "checkpoint" / "negative_check.jsonl").read_text().splitlines()]
    assert sorted(checked_keys) == sorted({r.key for r in before if r.not_labels}), "one check call per record"
    answers = load_negative_answers(Checkpoint(out / "checkpoint" / "negative_check.jsonl"))
    assert {(a["prompt_id"], a["prompt_hash"]) for a in answers.values()} == {
        ("negative_check", load_prompt("negative_check").hash)}
    expected = check_negatives_llm(before, answers, min_not_labels=Limits().min_not_labels)
    check, counts = manifest["negative_check"], manifest["counts"]
    assert {k: v for k, v in check.items() if k != "examples"} == {k: v for k, v in expected.report.items()
                                                                   if k != "examples"}
    for key, n in expected.counts.items():
        assert counts[key] == n, key
    assert check["mode"] == "llm" and check["records_scored"] + check["records_unanswered"] + check[
        "answers_invalid"] == len(checked_keys)
    kept = {r.key: r.not_labels for r in expected.records}
    for r in jsonl(out / "records.jsonl"):
        assert r["not_labels"] == kept[text_key(r["text"])], "each record lost exactly the negatives named true"
    assert manifest["llm_usage"]["calls"] == len(calls) + len(checked_keys), "the check's calls count in the usage"
    assert (f"negative check (llm): {check['negatives_dropped']} of {check['negatives_checked']} negatives dropped"
            in done.stdout + done.stderr)
    print(f"\nrecorded llm check: {len(checked_keys)} records asked, {check['records_scored']} answered validly, "
          f"{check['negatives_dropped']} of {check['negatives_checked']} negatives dropped, counts "
          f"{ {k: v for k, v in expected.counts.items()} }")
