"""describe-labels: answers are checked and appended as they arrive, a re-run asks only labels the cache does not
describe, failures and rejections are counted with their reason, and the counts add up."""

import json

import pytest

from gliznet._io import read_jsonl
from gliznet.generation.describe import (
    DescribeConfig,
    DescriptionCache,
    check_description,
    describe_labels,
    label_sets_from,
)
from gliznet.generation.prompts import load_prompt
from gliznet.llm.provider import LLMConfigError, LLMProvider, TransientError
from gliznet.modeling.label_text import load_descriptions

GOOD = {"sports": "Games, athletes, matches and competitions.", "cooking": "Recipes and preparing food at home.",
        "weather": "Forecasts, rain, storms and temperatures.", "travel": "Trips, flights, hotels and tourism."}


class CountingProvider(LLMProvider):
    """A provider on the real retry/usage machinery whose HTTP attempt is a table look-up: ``answers[label]``
    is the raw answer, or ``TransientError`` to fail every attempt.  ``asked`` lists the labels requested."""

    name = "counting"

    def __init__(self, answers: dict):
        super().__init__("table", concurrency=2, max_retries=1, backoff_s=0.0, max_backoff_s=0.0)
        self.answers = answers
        self.asked: list[str] = []
        self.seeds: dict[str, list[int]] = {}

    def _request(self, system, user, schema, *, seed, temperature, max_tokens):
        label = user.split('"')[1]  # the prompt starts: Describe the classification label "<label>" ...
        with self._lock:
            self.asked.append(label)
            self.seeds.setdefault(label, []).append(seed)
        answer = self.answers[label]
        if answer is TransientError:
            raise TransientError("http_5xx", "HTTP 503 from the table")
        if answer is LLMConfigError:
            raise LLMConfigError("the key was revoked: export a new one")
        return answer, 10, 5

    def check(self):
        pass


def _answers(**overrides):
    table = {label: json.dumps({"description": text}) for label, text in GOOD.items()}
    table.update(overrides)
    return table


def _lines(path):
    return [row for _, row in read_jsonl(path)] if path.exists() else []


def test_a_rerun_asks_only_the_labels_the_cache_does_not_describe(tmp_path):
    out = tmp_path / "descriptions.jsonl"
    out.write_text(json.dumps({"label": "sports", "description": "Written by hand.", "source": "hand"}) + "\n")
    provider = CountingProvider(_answers(weather=json.dumps({"description": "The weather, weather."}),
                                        travel=TransientError))
    report = describe_labels(list(GOOD), provider, out)

    assert sorted(provider.asked) == ["cooking", "travel", "travel", "weather"]  # travel: 1 retry, then failed
    assert (report.labels, report.cached, report.asked, report.accepted, report.failed) == (4, 1, 3, 1, 1)
    assert report.rejected == {"repeats_label": 1} and report.missing == ["travel", "weather"]
    assert report.labels == report.cached + report.accepted + report.failed + sum(report.rejected.values())
    lines = _lines(out)
    assert [line["label"] for line in lines] == ["sports", "cooking"]  # appended, the hand line kept
    assert lines[1]["description"] == GOOD["cooking"] and lines[1]["source"] == "counting:table"
    assert lines[1]["prompt_hash"] == load_prompt("describe_label").hash and lines[1]["attempts"] == 1
    rejected = {line["label"]: line for line in _lines(DescriptionCache(out).rejected_path)}
    assert rejected["weather"]["reason"] == "repeats_label" and rejected["weather"]["raw"]
    assert rejected["travel"]["reason"] == "llm_call_failed" and "http_5xx" in rejected["travel"]["detail"]
    assert provider.usage.calls == 3 and provider.usage.failed_calls == 1 and provider.usage.retries == 1

    provider.answers = _answers()  # the model now answers both: only the two missing labels are asked
    provider.asked.clear()
    again = describe_labels(list(GOOD), provider, out)
    assert sorted(provider.asked) == ["travel", "weather"]
    assert provider.seeds["weather"][0] != provider.seeds["weather"][1]  # asked afresh, not the same seed again
    assert (again.cached, again.asked, again.accepted, again.missing) == (2, 2, 2, [])
    assert load_descriptions(out) == {"sports": "Written by hand.", **{k: v for k, v in GOOD.items() if k != "sports"}}

    provider.asked.clear()
    assert describe_labels(list(GOOD), provider, out).asked == 0 and provider.asked == []


def test_a_torn_last_line_is_cut_and_its_label_asked_again(tmp_path):
    out = tmp_path / "d.jsonl"
    out.write_text(json.dumps({"label": "sports", "description": GOOD["sports"]}) + "\n"
                   + '{"label": "cooking", "descrip')
    provider = CountingProvider(_answers())
    report = describe_labels(["sports", "cooking"], provider, out)
    assert provider.asked == ["cooking"] and report.cached == 1 and report.accepted == 1
    assert [line["label"] for line in _lines(out)] == ["sports", "cooking"]


def test_a_setting_error_ends_the_run_and_keeps_the_answers_already_in(tmp_path):
    out = tmp_path / "d.jsonl"
    provider = CountingProvider(_answers(cooking=LLMConfigError))
    with pytest.raises(LLMConfigError, match="revoked"):
        describe_labels(["sports", "cooking", "weather"], provider, out, DescribeConfig(concurrency=1))
    assert [line["label"] for line in _lines(out)] == ["sports"]
    assert "weather" not in provider.asked


def test_the_prompt_shows_the_other_labels_of_the_same_set(tmp_path):
    seen = {}

    class Recording(CountingProvider):
        def _request(self, system, user, schema, **kw):
            seen[user.split('"')[1]] = (user, schema)
            return super()._request(system, user, schema, **kw)

    describe_labels({"news": ["sports", "weather"], "food": ["cooking"]}, Recording(_answers()), tmp_path / "d.jsonl")
    assert "also holds: weather" in seen["sports"][0] and "also holds" not in seen["cooking"][0]
    assert seen["sports"][1]["properties"]["description"]["maxLength"] == DescribeConfig().max_chars
    assert {line["set"] for line in _lines(tmp_path / "d.jsonl")} == {"news", "food"}


@pytest.mark.parametrize("raw, reason", [
    ("not json", "not_json"),
    ('{"text": "x"}', "not_json"),
    ('{"description": "   "}', "empty"),
    ('{"description": "Balls."}', "too_short"),
    ('{"description": "' + "word " * 60 + '"}', "too_long"),
    ('{"description": "Sports sports, sports!"}', "repeats_label"),
    ('{"description": "Crude oil: production, prices, reserves and trade of crude petroleum."}', "copies_example"),
    ('{"description": "Crude oil: production, prices, reserves, and trade of crude petroleum"}', "copies_example"),
])
def test_answers_are_rejected_with_a_reason(raw, reason):
    assert check_description("sports", raw, DescribeConfig()) == (None, reason)


def test_an_acceptable_answer_is_cleaned():
    raw = json.dumps({"description": ' sports:  Games,\n athletes and matches. '})
    assert check_description("sports", raw, DescribeConfig()) == ("Games, athletes and matches.", None)


def test_label_sets_come_from_a_jsonl_a_folder_or_the_shared_eval_sets(tmp_path, eval_dir):
    (tmp_path / "a.jsonl").write_text('{"text": "t", "labels": ["x", "y"], "not_labels": ["z"]}\n'
                                      '{"text": "u", "labels": ["y"]}\n')
    (tmp_path / "b.jsonl").write_text('{"text": "t", "labels": ["w"]}\n')
    assert label_sets_from(tmp_path / "a.jsonl") == {"a": ["x", "y", "z"]}
    assert label_sets_from(tmp_path) == {"a": ["x", "y", "z"], "b": ["w"]}
    shared = label_sets_from(eval_dir)
    assert len(shared) == 7 and len({lab for labs in shared.values() for lab in labs}) == 101
    with pytest.raises(ValueError, match="--labels-from"):
        label_sets_from(tmp_path / "missing.jsonl")


def test_the_cli_wants_exactly_one_source_of_labels(tmp_path):
    from typer.testing import CliRunner

    from gliznet.cli import app

    result = CliRunner().invoke(app, ["describe-labels", "--out", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 2 and "--labels-from" in result.output


@pytest.mark.slow
def test_describe_labels_on_the_embedded_llm_appends_and_resumes(tmp_path, llama_server):
    """Live smoke test (structure and accounting only: the 135M model's wording is random)."""
    from gliznet.llm.local import LocalProvider

    out = tmp_path / "d.jsonl"
    labels = ["sports", "cooking", "weather forecast"]
    provider = LocalProvider(server=llama_server)
    try:
        first = describe_labels(labels, provider, out)
        calls = provider.usage.calls
        second = describe_labels(labels, provider, out)
    finally:
        provider.close()
    assert first.asked == 3 and first.labels == 3
    assert first.accepted + first.failed + sum(first.rejected.values()) == 3
    accepted, rejected = _lines(out), _lines(DescriptionCache(out).rejected_path)
    assert len(accepted) >= first.accepted and all(line["source"] == f"local:{llama_server.alias}" for line in accepted)
    assert all(len(line["description"]) <= DescribeConfig().max_chars for line in accepted)
    assert all(line["reason"] and "raw" in line for line in rejected)
    # the second run asks only what the first left undescribed
    assert second.cached == first.accepted and second.asked == len(first.missing)
    assert provider.usage.calls - calls == len(first.missing)
    assert second.labels == second.cached + second.accepted + second.failed + sum(second.rejected.values())
