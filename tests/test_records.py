"""Record validation and normalisation: raw LLM output -> records, counted fixes and one-reason rejections."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gliznet.records import (
    BATCH_JSON_SCHEMA,
    Limits,
    Provenance,
    RawBatch,
    Record,
    RejectReason,
    label_key,
    normalize_label,
    normalize_text,
    parse_batch,
    text_key,
    validate_item,
)

PROV = Provenance(provider="local", model="smollm2", prompt_id="hard-v1", prompt_hash="abc123", topic="cooking",
                  genre="review", length="short", reading_level="adult", seed=7)
PROMPT = ("You write hard zero-shot classification examples. Write 3 records about the topic cooking, "
          "genre review, length short. Return JSON with keys text, labels and not_labels.")
TEXT = "The sourdough rose beautifully after a long cold proof in the fridge."
NEGS = ["baking failure", "grilling", "wine pairing"]


def item(text=TEXT, labels=("baking", "bread"), not_labels=tuple(NEGS)):
    return {"text": text, "labels": list(labels), "not_labels": list(not_labels)}


def batch(*items) -> str:
    return json.dumps({"records": list(items)})


def test_valid_batch_becomes_records_with_provenance():
    records, rejections, fixes = parse_batch(batch(item(), item(text=TEXT.replace("sourdough", "rye loaf"))),
                                             PROV, PROMPT)
    assert [r.labels for r in records] == [["baking", "bread"]] * 2
    assert records[0].provenance == PROV
    assert rejections == [] and sum(fixes.values()) == 0
    assert records[0].key == text_key(TEXT)


@pytest.mark.parametrize("raw", [
    "this is not json at all",
    "",
    '{"records": [{"text": "The sourdough rose beautifully", "labels": ["baking"], "not_la',   # truncated
    "[[[[[[[[" * 20000,                                                                        # deep nesting
    "[" * 100_000 + "]" * 100_000,                                                             # too deep to parse
    "{'records': []}",                                                                        # python repr
])
def test_non_json_is_one_invalid_json_rejection_keeping_raw(raw):
    records, rejections, _ = parse_batch(raw, PROV, PROMPT)
    assert records == []
    assert [r.reason for r in rejections] == [RejectReason.invalid_json]
    assert rejections[0].raw == raw and rejections[0].provenance == PROV


@pytest.mark.parametrize("raw", ['{"items": []}', '"just a string"', "42", "null", '{"records": "many"}'])
def test_json_without_a_list_of_items_is_wrong_shape(raw):
    records, rejections, _ = parse_batch(raw, PROV, PROMPT)
    assert records == [] and [r.reason for r in rejections] == [RejectReason.wrong_shape]


def test_empty_records_list_is_counted_as_empty_batch():
    _, rejections, _ = parse_batch('{"records": []}', PROV, PROMPT)
    assert [r.reason for r in rejections] == [RejectReason.empty_batch]


@pytest.mark.parametrize("bad", [
    {"text": TEXT, "labels": "baking", "not_labels": NEGS},                     # labels as a string
    {"text": TEXT, "labels": [1, 2], "not_labels": NEGS},                        # numbers
    {"text": TEXT, "labels": [{"name": "baking"}], "not_labels": NEGS},          # nested objects
    {"text": TEXT, "labels": ["baking"]},                                        # missing not_labels
    {"labels": ["baking"], "not_labels": NEGS},                                  # missing text
    {"text": 12345, "labels": ["baking"], "not_labels": NEGS},                   # text not a string
    {"text": TEXT, "labels": ["baking"], "not_labels": NEGS + [None]},           # null inside a list
    ["a", "list"],
    "a bare string",
])
def test_wrong_types_are_rejected_per_item_and_siblings_survive(bad):
    records, rejections, _ = parse_batch(batch(bad, item()), PROV, PROMPT)
    assert len(records) == 1
    assert [r.reason for r in rejections] == [RejectReason.wrong_shape]
    assert rejections[0].detail


@pytest.mark.parametrize("text,reason", [
    ("", RejectReason.text_too_short),
    ("   \n\t  ", RejectReason.text_too_short),
    ("too short", RejectReason.text_too_short),
    ("x" * 2001, RejectReason.text_too_long),
])
def test_text_bounds(text, reason):
    _, rejections, _ = parse_batch(batch(item(text=text)), PROV, PROMPT)
    assert [r.reason for r in rejections] == [reason]


def test_text_at_exact_bounds_is_kept():
    limits = Limits(min_text_chars=20, max_text_chars=40)
    for text in ("a" * 20, "b" * 40):
        record, rejection, _ = validate_item(item(text=text), PROV, PROMPT, limits)
        assert rejection is None and record.text == text


@pytest.mark.parametrize("labels,not_labels,reason", [
    ([], NEGS, RejectReason.too_few_labels),
    (["", "  "], NEGS, RejectReason.too_few_labels),                 # empty labels dropped first
    (["a", "b", "c", "d", "e", "f"], NEGS, RejectReason.too_many_labels),
    (["baking"], ["grilling", "Baking"], RejectReason.too_few_not_labels),   # overlap removed, then too few
    (["baking"], [f"neg {i}" for i in range(16)], RejectReason.too_many_not_labels),
])
def test_label_count_bounds_have_one_reason_each(labels, not_labels, reason):
    _, rejections, _ = parse_batch(batch(item(labels=labels, not_labels=not_labels)), PROV, PROMPT)
    assert [r.reason for r in rejections] == [reason]


def test_label_in_both_lists_is_removed_from_not_labels_and_counted():
    record, rejection, fixes = validate_item(
        item(labels=["Baking", "bread"], not_labels=["baking", "grilling", "BREAD", "wine pairing", "frying"]),
        PROV, PROMPT, Limits())
    assert rejection is None
    assert record.labels == ["Baking", "bread"]
    assert record.not_labels == ["grilling", "wine pairing", "frying"]
    assert fixes["overlap_removed"] == 2


def test_duplicate_labels_within_a_list_are_removed_case_insensitively_and_counted():
    record, _, fixes = validate_item(
        item(labels=["Customer_Support", "customer support", "customer-support", "billing"],
             not_labels=["refund", "Refund ", "shipping", "returns"]), PROV, PROMPT, Limits())
    assert record.labels == ["Customer_Support", "billing"]   # first written form kept
    assert record.not_labels == ["refund", "shipping", "returns"]
    assert fixes["duplicate_labels_removed"] == 3


def test_over_long_labels_are_dropped_and_counted():
    record, _, fixes = validate_item(item(labels=["baking", "x" * 81]), PROV, PROMPT, Limits())
    assert record.labels == ["baking"] and fixes["long_labels_dropped"] == 1


@pytest.mark.parametrize("text", [
    PROMPT,                                                                   # the whole prompt
    "Write 3 records about the topic cooking, genre review, length short.",   # a verbatim chunk
    "write 3 records about the topic cooking genre review length short",      # chunk, case/punct changed
    "Here you go: " + PROMPT,                                                 # prompt inside the text
])
def test_prompt_echo_is_rejected(text):
    _, rejections, _ = parse_batch(batch(item(text=text)), PROV, PROMPT)
    assert [r.reason for r in rejections] == [RejectReason.prompt_echo]


def test_text_sharing_topic_words_with_the_prompt_is_not_an_echo():
    text = "My cooking class review: the short rib was tender, but the sauce was far too salty."
    records, rejections, _ = parse_batch(batch(item(text=text)), PROV, PROMPT)
    assert len(records) == 1 and rejections == []


def test_markdown_fence_and_missing_wrapper_are_repaired_and_counted():
    raw = "```json\n" + json.dumps([item()]) + "\n```"
    records, rejections, fixes = parse_batch(raw, PROV, PROMPT)
    assert len(records) == 1 and rejections == []
    assert fixes["code_fence_stripped"] == 1 and fixes["unwrapped_answer"] == 1


@pytest.mark.parametrize("raw,shown,key", [
    ("  Customer_Support ", "Customer_Support", "customer support"),
    ("Sci-Fi", "Sci-Fi", "sci fi"),
    ("ＦＵＬＬ width", "FULL width", "full width"),          # NFKC
    ("caf\u0065\u0301", "caf\u00e9", "caf\u00e9"),           # combining accent composed
    ("bank\u200bing\tfees\n", "banking fees", "banking fees"),  # zero-width removed, whitespace collapsed
    ("STRASSE", "STRASSE", "strasse"),
    ("Straße", "Straße", "strasse"),                         # casefold, not lower
    ("snake_case__label", "snake_case__label", "snake case label"),
])
def test_label_normalisation(raw, shown, key):
    assert normalize_label(raw) == shown
    assert label_key(raw) == key


def test_text_normalisation_keeps_paragraphs_and_key_ignores_case_and_spacing():
    raw = "  Hello\u00a0 World\r\n\r\n\r\n\tSecond\x07 para  "
    assert normalize_text(raw) == "Hello World\n\nSecond para"
    assert text_key(raw) == text_key("hello world second PARA")


def test_batch_schema_accepts_what_parse_batch_accepts():
    good = {"records": [item()]}
    jsonschema.validate(good, BATCH_JSON_SCHEMA)
    RawBatch.model_validate(good)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"records": [{"text": TEXT, "labels": "x", "not_labels": []}]}, BATCH_JSON_SCHEMA)
    assert "$ref" not in json.dumps(BATCH_JSON_SCHEMA)


def test_limits_reject_inverted_bounds_naming_the_fields():
    with pytest.raises(ValueError, match="min_labels > max_labels"):
        Limits(min_labels=4, max_labels=2)


def test_record_round_trips_through_json():
    record, _, _ = validate_item(item(), PROV, PROMPT, Limits())
    assert Record.model_validate_json(record.model_dump_json()) == record


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["records", "text", "labels", "not_labels", "x"]) | st.text(max_size=5), children,
        max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(), json_values.map(json.dumps), st.binary().map(lambda b: b.decode("latin-1"))))
def test_parse_batch_never_raises_and_accounts_for_every_item(raw):
    records, rejections, fixes = parse_batch(raw, PROV, PROMPT)
    assert all(isinstance(r, Record) for r in records)
    assert records or rejections                      # nothing silently vanishes
    for rejection in rejections:
        rejection.model_dump_json().encode("utf-8")   # always writable


@settings(max_examples=200, deadline=None)
@given(labels=st.lists(st.text(max_size=12), max_size=8), not_labels=st.lists(st.text(max_size=12), max_size=20))
def test_accepted_records_satisfy_the_limits_and_never_overlap(labels, not_labels):
    record, rejection, _ = validate_item(item(labels=labels, not_labels=not_labels), PROV, PROMPT, Limits())
    assert (record is None) != (rejection is None)
    if record is not None:
        limits = Limits()
        assert limits.min_labels <= len(record.labels) <= limits.max_labels
        assert limits.min_not_labels <= len(record.not_labels) <= limits.max_not_labels
        positive = {label_key(x) for x in record.labels}
        assert not positive & {label_key(x) for x in record.not_labels}
        assert len({label_key(x) for x in record.not_labels}) == len(record.not_labels)
        assert all(label_key(x) for x in [*record.labels, *record.not_labels])
