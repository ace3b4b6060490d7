"""Hostile input to the record validator and the label normaliser raises nothing but their own errors.

An LLM can return anything: unicode of every category, control characters, lone surrogates, megabytes
of text, deeply nested or half-written JSON, fields of the wrong type or missing.  The contract:

* ``parse_batch(raw, ...)`` never raises; every item it finds ends as exactly one record or one
  rejection with a ``RejectReason``; everything it returns can be written as UTF-8.
* ``validate_item(item, ...)`` never raises; it returns a record *or* a rejection; a record obeys
  ``Limits`` and holds only normalised labels.
* ``normalize_label`` / ``label_key`` never raise and return clean one-line strings; ``label_key`` is a
  fixed point of itself (comparing keys of keys is the same as comparing keys).
* The only documented errors are ``Limits``' own ``ValueError``s for inconsistent bounds.

The number of generated cases is counted and asserted (>= 1,000 in total).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gliznet.records import (
    Limits,
    Provenance,
    Record,
    Rejection,
    RejectReason,
    label_key,
    normalize_label,
    parse_batch,
    validate_item,
)

PROV = Provenance(provider="fuzz", model="fuzz", prompt_id="hardset_batch", prompt_hash="0", topic="t", genre="g",
                  length="l", reading_level="r", seed=0)
PROMPT = "Write 2 records about the topic kettles as JSON with keys text, labels and not_labels."
CASES: Counter = Counter()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

# every code point class, lone surrogates (category Cs) included
any_char = st.characters(codec=None, exclude_categories=())
nasty_text = st.one_of(
    st.text(any_char, max_size=60),
    st.text(st.sampled_from("\x00\x07\t\n\r\x0b\x0c\x1b\x7f\x85\u200b\u200e\u2028\u2029\ufeff\ufffd\u0301 _-aA"),
            max_size=40),
    st.builds(lambda s, n: s * n, st.text(any_char, min_size=1, max_size=8), st.integers(1000, 40_000)),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), nasty_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                              st.dictionaries(nasty_text, inner, max_size=5)),
                          max_leaves=20)
label_list = st.one_of(st.lists(nasty_text, max_size=25), json_value)
item_like = st.one_of(
    st.fixed_dictionaries({"text": nasty_text, "labels": st.lists(nasty_text, max_size=8),
                           "not_labels": st.lists(nasty_text, max_size=20)}),
    st.fixed_dictionaries({}, optional={"text": st.one_of(nasty_text, json_value), "labels": label_list,
                                        "not_labels": label_list, "extra": json_value}),
    json_value,
)


def _encodable(s: str) -> bool:
    s.encode("utf-8")
    return True


def _raw_batches():
    wrapped = st.lists(item_like, max_size=6).map(lambda items: json.dumps({"records": items}))
    return st.one_of(
        nasty_text,
        wrapped,
        wrapped.flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),  # truncated mid-answer
        st.lists(item_like, max_size=6).map(json.dumps),                          # unwrapped list
        json_value.map(lambda v: json.dumps(v, ensure_ascii=False)),
        wrapped.map(lambda s: f"```json\n{s}\n```"),                              # code fence
        st.integers(1, 200_000).map(lambda n: "[" * n + "]" * (n % 3)),           # pathological nesting
        st.integers(1, 50_000).map(lambda n: '{"records": ' + "[" * n),
    )


@FUZZ
@given(raw=_raw_batches())
def test_parse_batch_accounts_for_every_item_and_never_raises(raw):
    CASES["parse_batch"] += 1
    records, rejections, fixes = parse_batch(raw, PROV, PROMPT)
    assert isinstance(fixes, Counter)
    assert records or rejections, "every answer ends as records or at least one rejection"
    assert all(isinstance(r, Record) for r in records)
    for rej in rejections:
        assert isinstance(rej, Rejection) and rej.reason in RejectReason
        assert _encodable(rej.raw) and _encodable(rej.detail)
        json.loads(rej.model_dump_json())  # writable to rejected.jsonl
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return
    items = data.get("records") if isinstance(data, dict) else data
    if isinstance(items, list) and items:
        assert len(records) + len(rejections) == len(items), "one outcome per item"


@FUZZ
@given(item=item_like, limits=st.builds(Limits, min_text_chars=st.integers(0, 30), max_labels=st.integers(5, 8),
                                        min_not_labels=st.integers(0, 3), max_label_chars=st.integers(1, 100)))
def test_validate_item_returns_a_record_or_a_reason_and_never_raises(item, limits):
    CASES["validate_item"] += 1
    record, rejection, fixes = validate_item(item, PROV, PROMPT, limits)
    assert (record is None) != (rejection is None)
    assert isinstance(fixes, Counter) and all(v > 0 for v in fixes.values())
    if rejection is not None:
        assert rejection.reason in RejectReason and _encodable(rejection.raw)
        return
    assert limits.min_text_chars <= len(record.text) <= limits.max_text_chars
    assert limits.min_labels <= len(record.labels) <= limits.max_labels
    assert limits.min_not_labels <= len(record.not_labels) <= limits.max_not_labels
    for label in record.labels + record.not_labels:
        assert label == normalize_label(label) and 0 < len(label) <= limits.max_label_chars
    keys = [label_key(x) for x in record.labels + record.not_labels]
    assert len(keys) == len(set(keys)), "no label twice, none both true and negative"
    json.loads(record.model_dump_json())


@FUZZ
@given(s=nasty_text)
def test_normalize_label_gives_one_clean_line(s):
    CASES["normalize_label"] += 1
    out = normalize_label(s)
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in out)
    assert not any(c.isspace() and c != " " for c in out)


@FUZZ
@given(s=nasty_text)
def test_label_key_is_a_fixed_point_and_never_raises(s):
    CASES["label_key"] += 1
    key = label_key(s)
    assert key == key.strip() and "  " not in key and "_" not in key
    assert label_key(key) == key
    assert label_key(s.upper()) == label_key(s.lower()) or not s.isascii()


@settings(max_examples=100, deadline=None)
@given(low=st.integers(-5, 30), high=st.integers(-5, 30))
def test_inconsistent_limits_are_the_only_documented_error(low, high):
    CASES["limits"] += 1
    if 0 <= low <= high:
        assert Limits(min_labels=low, max_labels=high).max_labels == high
    else:
        with pytest.raises(ValueError, match="min_labels"):
            Limits(min_labels=low, max_labels=high)


def test_at_least_a_thousand_cases_were_tried():
    """Runs after the fuzz tests above (file order); prints the per-function counts."""
    total = sum(CASES.values())
    print(f"\nfuzz cases tried: {total} {dict(CASES)}")
    if set(CASES) != {"parse_batch", "validate_item", "normalize_label", "label_key", "limits"}:
        pytest.skip("run the whole module to count the cases")
    assert total >= 1000, dict(CASES)
