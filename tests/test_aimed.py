"""Data aimed at the user's own labels (``generate --labels ... --task ...``): the label set and its errors, the
plan (balanced, deterministic, a prefix of any longer run), the answers' labels and negatives, the split by
texts, and a whole run through the real generation loop and build (scripted answers), resumed."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import assert_one_clear_error, run_cli
from scripted_llm import ScriptedProvider

from gliznet._io import Checkpoint, read_jsonl
from gliznet.pipeline.generate import generate_hardset
from gliznet.curation.split import text_split
from gliznet.errors import UserError
from gliznet.generation.aimed import expand_answer, parse_labels, target_of
from gliznet.generation.loop import validate_calls
from gliznet.generation.plan import GenerateConfig, plan_for
from gliznet.records import Provenance, Record, RejectReason

SENTIMENT = "very negative,negative,neutral,positive,very positive"
TASK = "a sentence from a movie review"


def aimed(labels: str = SENTIMENT, **kw) -> GenerateConfig:
    return GenerateConfig(records=kw.pop("records", 20), labels=labels, task=TASK, **kw)


# -- the label set -----------------------------------------------------------------------------------------------
def test_labels_come_from_a_comma_list_or_a_file_with_descriptions(tmp_path):
    assert parse_labels(" sports, politics ,finance").labels == ("sports", "politics", "finance")
    path = tmp_path / "labels.txt"
    path.write_text("# my taxonomy\nrefund request\tthe customer wants money back\n\nlost card\n")
    label_set = parse_labels(str(path))
    assert label_set.labels == ("refund request", "lost card")
    assert label_set.descriptions == ("the customer wants money back", None)


@pytest.mark.parametrize("value, says", [
    ("", "--labels is empty"),
    (" , ,", "holds 0 labels"),
    ("sports", "holds 1 label:"),
    ("Sports,politics,sports ", "are the same label after normalisation"),
    ("Customer_Support,customer-support", "are the same label after normalisation"),
    ("missing/labels.txt", "no such file"),
])
def test_bad_labels_are_one_clear_error(value, says):
    with pytest.raises(UserError, match=says):
        parse_labels(value)


def test_labels_without_a_task_or_with_bundles_are_refused():
    with pytest.raises(UserError, match="--labels needs --task"):
        GenerateConfig(labels="a,b")
    with pytest.raises(UserError, match="cannot be combined"):
        GenerateConfig(labels="a,b", task=TASK, bundle_size=3)


@pytest.mark.slow
@pytest.mark.parametrize("args, names", [
    (("--labels", "positive"), ("--labels", "at least two")),
    (("--labels", "Positive,positive"), ("--labels", "same label")),
    (("--labels", "positive,negative"), ("--labels needs --task",)),
])
def test_the_cli_refuses_bad_labels_in_one_line(tmp_path, args, names):
    done = run_cli("generate", "--provider", "groq", "--out", str(tmp_path / "out"), *args)
    assert_one_clear_error(done, *names)
    assert done.returncode == 2


@pytest.mark.slow
def test_a_ten_thousand_label_file_is_planned_with_siblings(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"category {i} of the catalogue\n" for i in range(10_000)))
    config = GenerateConfig(records=50, labels=str(path), task="a product title", max_calls=30)
    specs = [plan_for(config, i) for i in range(30)]
    assert len({s.target for s in specs}) == 30  # 30 calls of one block: 30 different labels
    assert all(len(s.siblings) == 3 and s.target not in s.siblings for s in specs)
    assert all(len(s.not_labels) == config.limits.max_not_labels == 15 for s in specs)


# -- the plan ------------------------------------------------------------------------------------------------------
def test_every_block_of_calls_aims_once_at_every_label_and_the_plan_is_seeded():
    n = 5
    targets = [target_of(7, i, n) for i in range(40)]
    for block in range(8):
        assert sorted(targets[block * n:(block + 1) * n]) == list(range(n))
    assert targets == [target_of(7, i, n) for i in range(40)]
    assert targets != [target_of(8, i, n) for i in range(40)]
    assert len({tuple(targets[b * n:(b + 1) * n]) for b in range(8)}) > 1  # blocks are shuffled, not cycled


def test_a_longer_run_extends_the_plan_of_a_shorter_one():
    short, long = aimed(records=10), aimed(records=200, max_calls=300)
    assert [plan_for(short, i) for i in range(short.call_budget)] == [plan_for(long, i) for i in range(short.call_budget)]


def test_each_call_names_confusable_siblings_and_gives_the_other_labels_as_negatives():
    config = aimed()
    for i in range(10):
        spec = plan_for(config, i)
        assert spec.target not in spec.not_labels and len(spec.siblings) == 3
        assert list(spec.not_labels[:3]) == list(spec.siblings)  # the named siblings first
        assert set(spec.not_labels) == set(SENTIMENT.split(",")) - {spec.target}  # exclusive: every other label
    very_positive = next(plan_for(config, i) for i in range(5) if plan_for(config, i).target == "very positive")
    assert very_positive.siblings[0] == "positive"  # the encoder ranks the nearest label first
    multi = aimed(multi_label=True)
    assert all(list(plan_for(multi, i).not_labels) == list(plan_for(multi, i).siblings) for i in range(5))


def test_a_two_label_set_gives_one_sibling_and_one_negative():
    config = aimed("positive,negative")
    spec = plan_for(config, 0)
    assert config.limits.min_not_labels == 1 and len(spec.siblings) == 1 and len(spec.not_labels) == 1


def test_each_call_draws_an_angle_that_the_angles_prompt_names_and_older_plans_keep_their_draws():
    from gliznet.generation.plan import load_styles, render_call
    from gliznet.generation.prompts import load_prompt

    angles = load_styles()["angles"]
    config = aimed()
    specs = [plan_for(config, i) for i in range(40)]
    assert all(s.angle in angles for s in specs) and len({s.angle for s in specs}) > len(angles) // 2
    assert specs == [plan_for(aimed(), i) for i in range(40)] and specs != [plan_for(aimed(seed=1), i) for i in range(40)]
    assert config.prompt_id == "hardset_aimed_angles"  # the default of a --labels run
    _, user = render_call(load_prompt(config.prompt_id), specs[0], config)
    assert f"Angle: {specs[0].angle}." in user
    plain = aimed(prompt_id="hardset_aimed")  # the earlier prompt stays selectable (--config), for older folders
    assert plain.prompt_id == "hardset_aimed" and [plan_for(plain, i) for i in range(40)] == specs
    assert "Angle" not in render_call(load_prompt("hardset_aimed"), specs[0], plain)[1]
    # the angle is the call's last draw: the seed, register, length and reading level are those the plan drew
    # before angles existed, so folders generated then (their specs have no "angle") keep their plan and resume
    import random

    styles = load_styles()
    rng = random.Random(f"{config.seed}:3")
    drawn = (rng.randrange(2**31), rng.choice(styles["registers"]), rng.choice(styles["lengths"]),
             rng.choice(styles["reading_levels"]), rng.choice(angles))
    assert (specs[3].seed, specs[3].genre, specs[3].length, specs[3].reading_level, specs[3].angle) == drawn
    old = {k: v for k, v in json.loads(json.dumps(specs[3].__dict__)).items() if k != "angle"}
    assert type(specs[3])(**old).angle == ""


# -- answers -> records ------------------------------------------------------------------------------------------
def _line(config: GenerateConfig, index: int, raw: str) -> dict:
    spec = plan_for(config, index)
    return {"call": index, "spec": json.loads(json.dumps(spec.__dict__)), "provider": "p", "model": "m",
            "prompt_id": config.prompt_id, "prompt_hash": "h", "created_at": "2026-12-06T00:00:00+00:00",
            "ok": True, "raw": raw}


def test_an_aimed_answer_becomes_records_of_the_target_with_the_call_negatives():
    config = aimed()
    text = "The lead actor mumbles through every scene and the plot never arrives anywhere."
    lines = [_line(config, 0, json.dumps({"texts": [text, "Short."]})),
             _line(config, 1, json.dumps({"records": [{"text": text + " Again.", "labels": ["made up"],
                                                       "not_labels": ["a", "b", "c"]}]})),
             _line(config, 2, "not json")]
    validated = validate_calls(lines, lambda line: "prompt", config.limits)
    [record] = validated.records
    spec = plan_for(config, 0)
    assert record.labels == [spec.target] and record.not_labels == list(spec.not_labels)
    assert record.provenance.target == spec.target
    reasons = Counter(r.reason for r in validated.rejections)
    assert reasons == {RejectReason.text_too_short: 1, RejectReason.wrong_shape: 1, RejectReason.invalid_json: 1}
    assert json.loads(expand_answer('{"texts": []}', "x", ["y"])) == {"records": []}


def test_the_split_by_texts_keeps_every_label_in_train_and_test():
    prov = Provenance(provider="p", model="m", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                      reading_level="r", seed=0)
    records = [Record(text=f"text {label} {i}", labels=[label], not_labels=["other"], provenance=prov)
               for label in ("a", "b", "c") for i in range(10)]
    split = text_split(records, 0.2, seed=3)
    assert Counter(r.labels[0] for r in split.test) == {"a": 2, "b": 2, "c": 2}
    assert Counter(r.labels[0] for r in split.train) == {"a": 8, "b": 8, "c": 8}
    assert split.test_labels == [] and split.counts["by_texts"] == 1
    assert {r.text for r in split.test} == {r.text for r in text_split(records, 0.2, seed=3).test}


# -- a whole run ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_aimed_run_is_balanced_counted_in_the_card_and_resumes_without_asking_again(tmp_path):
    config = aimed(records=40, records_per_call=2, concurrency=1, max_calls=30)  # one call at a time: exact counts
    out = tmp_path / "aimed"
    partial = GenerateConfig(**{**config.__dict__, "records": 10})  # the first calls of the same plan
    first = ScriptedProvider()
    generate_hardset(partial, out, provider_factory=lambda: first, with_hardness=False)
    asked_first = len(first.prompts)
    assert asked_first == 5
    second = ScriptedProvider()
    manifest = generate_hardset(config, out, provider_factory=lambda: second, with_hardness=False)
    assert len(second.prompts) == 20 - asked_first  # the answered calls are not asked again
    calls = [x for _, x in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    assert sorted(line["call"] for line in calls) == list(range(20))
    per_label = {row["label"]: row for row in manifest["aimed"]["per_label"]}
    assert {row["accepted"] for row in per_label.values()} == {8}  # 20 calls x 2 texts over 5 labels
    assert all(row["train"] + row["test"] == 8 and row["test"] >= 1 for row in per_label.values())
    assert manifest["counts"]["split_by_texts"] == 1 and manifest["counts"]["test_labels"] == 0
    card = (out / "README.md").read_text()
    assert "## Aimed at a label set" in card and "split is **by texts**" in card and TASK in card
    record = next(read_jsonl(out / "records.jsonl"))[1]
    assert record["provenance"]["target"] == record["labels"][0] and record["provenance"]["topic"] == record["labels"][0]
    assert len(Checkpoint(out / "checkpoint" / "calls.jsonl").load()) == 20


@pytest.mark.slow
def test_the_generate_flow_aims_at_labels_like_the_cli(prefect_harness, tmp_path):
    from scripted_llm import ScriptedOpenAI

    from flows.generate_hardset import generate_hardset_flow

    out = tmp_path / "aimed-flow"
    with ScriptedOpenAI() as server:
        result = generate_hardset_flow(records=12, max_calls=6, out=str(out), provider="openai", model=ScriptedOpenAI.MODEL,
                                       base_url=server.base_url, labels="positive,negative,neutral", task=TASK,
                                       records_per_call=2, concurrency=1, with_hardness=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["fingerprint"] == manifest["fingerprint"]
    assert manifest["parameters"]["labels"] == "positive,negative,neutral" and manifest["parameters"]["task"] == TASK
    assert {row["label"]: row["accepted"] for row in manifest["aimed"]["per_label"]} == {
        "positive": 4, "negative": 4, "neutral": 4}  # 6 calls of 2 texts: two blocks over the three labels
    assert all(len(r["not_labels"]) == 2 for _, r in read_jsonl(out / "records.jsonl"))
