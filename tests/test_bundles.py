"""Cross-role bundles (``--bundle-size K``): the rule is checked in code per bundle, breaking texts are kept and
counted (``--cross-role-policy keep``, the default) or rejected as ``cross_role_broken`` (``reject``), and the share
of pool labels satisfying it reaches the manifest, the card and the CLI summary."""

from __future__ import annotations

import json

import pytest
from scripted_llm import ScriptedProvider

from gliznet._io import read_jsonl
from gliznet.curation.hardset import BuildConfig
from gliznet.pipeline.generate import generate_hardset
from gliznet.generation.bundles import apply_cross_role_policy, check_cross_role, cross_role_counts, cross_role_report
from gliznet.generation.plan import GenerateConfig, plan_for, render_call, request_schema_for
from gliznet.generation.prompts import load_prompt
from gliznet.records import Provenance, Record

PROV = Provenance(provider="t", model="t", prompt_id="p", prompt_hash="h", topic="t", genre="g", length="l",
                  reading_level="r", seed=0)


def test_a_hand_made_bundle_that_breaks_the_cross_role_rule_is_caught():
    bundle = [
        {"labels": ["Refund delay"], "not_labels": ["praise for support", "billing question"]},
        {"labels": ["praise_for_support"], "not_labels": ["refund delay", "billing question"]},
        {"labels": ["shipping"], "not_labels": ["refund delay"]},  # shipping: never a negative
    ]
    result = check_cross_role(bundle)
    assert result.satisfied == ["praise for support", "refund delay"]  # compared by label_key
    assert result.unsatisfied == ["billing question", "shipping"]  # never a positive / never a negative
    assert result.offending == [0, 1, 2]
    assert result.share == pytest.approx(2 / 4)
    assert result.positive_in["refund delay"] == [0] and result.negative_in["refund delay"] == [1, 2]


def test_a_label_positive_and_negative_only_for_the_same_text_does_not_satisfy_the_rule():
    result = check_cross_role([{"labels": ["a b"], "not_labels": ["a b", "c d"]}, {"labels": ["c d"], "not_labels": []}],
                              pool=["never used"])
    assert result.unsatisfied == ["a b", "never used"] and result.satisfied == ["c d"]
    assert result.offending == [0]


def test_a_bundle_that_keeps_the_rule_has_share_one_and_no_offender():
    bundle = [{"labels": ["x"], "not_labels": ["y"]}, {"labels": ["y"], "not_labels": ["x"]}]
    result = check_cross_role(bundle)
    assert result.share == 1.0 and result.offending == [] and result.unsatisfied == []


def test_cross_role_counts_group_records_by_bundle_and_skip_unbundled_ones():
    def rec(text, labels, not_labels, bundle):
        return Record(text=text, labels=labels, not_labels=not_labels,
                      provenance=PROV.model_copy(update={"bundle": bundle}))

    records = [rec("one", ["x"], ["y"], 3), rec("two", ["y"], ["x"], 3),  # bundle 3: both labels satisfied
               rec("three", ["x"], ["z"], 5),                             # bundle 5 alone: nothing satisfied
               rec("four", ["q"], ["r"], None)]                           # not in a bundle
    counts = cross_role_counts(records)
    assert counts == {"bundles_checked": 2, "bundle_texts": 3, "cross_role_pool_labels": 4,
                      "cross_role_labels_satisfied": 2, "cross_role_texts_breaking": 1}
    report = cross_role_report(counts)
    assert report["share_satisfying_rule"] == 0.5 and report["policy"] == "texts breaking the rule are kept and counted"


def test_bundle_mode_asks_for_one_bundle_per_call_with_its_pool():
    config = GenerateConfig(records=10, bundle_size=5)
    assert config.prompt_id == "hardset_bundle" and config.texts_per_call == 5 and config.call_budget == 12
    schema = request_schema_for(config)
    assert schema["required"] == ["pool", "records"] and list(schema["properties"]) == ["pool", "records"]
    assert schema["properties"]["records"]["minItems"] == schema["properties"]["records"]["maxItems"] == 5
    spec = plan_for(config, 2)
    assert spec.bundle_size == 5 and spec.seed_id is None
    user = render_call(load_prompt(config.prompt_id), spec, config)[1]
    assert "exactly 5 records" in user and "CROSS-ROLE RULE" in user
    with pytest.raises(ValueError, match="--bundle-size must be in 1..10"):
        GenerateConfig(bundle_size=0)


def test_the_default_mode_asks_exactly_what_it_always_did():
    config = GenerateConfig()
    assert config.prompt_id == "hardset_batch" and config.bundle_size == 1 and config.texts_per_call == 4
    assert "pool" not in request_schema_for(config)["properties"]


@pytest.mark.slow
def test_a_bundle_run_end_to_end_reports_the_cross_role_share(tmp_path):
    config = GenerateConfig(records=9, seed=4, provider="local", bundle_size=3, concurrency=2, max_calls=3)
    manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False,
                                provider_factory=lambda: ScriptedProvider())
    counts, cross = manifest["counts"], manifest["cross_role"]
    assert counts["calls"] == 3 and counts["accepted"] == 9
    # each scripted bundle: 5 pool labels, 4 satisfy the rule; 1 of its 3 texts breaks it and is kept
    assert cross["bundles_checked"] == 3 and cross["texts"] == 9
    assert (cross["pool_labels"], cross["pool_labels_satisfying_rule"], cross["texts_breaking_rule"]) == (15, 12, 3)
    assert cross["share_satisfying_rule"] == 0.8
    records = [row for _, row in read_jsonl(tmp_path / "hs" / "records.jsonl")]
    assert sorted({r["provenance"]["bundle"] for r in records}) == [0, 1, 2]
    assert {r["provenance"]["prompt_id"] for r in records} == {"hardset_bundle"}
    assert manifest["prompt_hashes"]["hardset_bundle"] == load_prompt("hardset_bundle").hash
    card = (tmp_path / "hs" / "README.md").read_text()
    assert "## Cross-role bundles" in card and "| 3 | 9 | 15 | 12 | 0.8 | 3 |" in card


def _bundled(text, labels, not_labels, bundle):
    return Record(text=text, labels=labels, not_labels=not_labels, provenance=PROV.model_copy(update={"bundle": bundle}))


# bundle 1 breaks the rule: "shipping" is never a negative, "billing question" never a positive (texts 0-2 use
# one of them); bundle 2 keeps it; the last record is not in a bundle
BREAKING = [_bundled("I am still waiting for my refund.", ["refund delay"], ["praise for support", "billing question"], 1),
            _bundled("Support was quick and kind.", ["praise for support"], ["refund delay", "billing question"], 1),
            _bundled("The parcel arrived two days late.", ["shipping"], ["refund delay"], 1),
            _bundled("The striker scored twice.", ["sports"], ["politics"], 2),
            _bundled("Parliament passed the budget.", ["politics"], ["sports"], 2),
            _bundled("A plain text outside any bundle.", ["x"], ["y"], None)]


def test_policy_keep_keeps_a_hand_made_breaking_bundle_and_counts_it():
    kept, rejections, counts = apply_cross_role_policy(BREAKING, "keep")
    assert kept == BREAKING and rejections == [] and counts == {}
    assert cross_role_counts(BREAKING)["cross_role_texts_breaking"] == 3
    report = cross_role_report(cross_role_counts(BREAKING), "keep")
    assert report["texts_breaking_rule"] == 3 and report["texts_rejected"] == 0
    assert report["policy"] == "texts breaking the rule are kept and counted"


def test_policy_reject_rejects_exactly_the_breaking_texts_under_a_named_reason():
    kept, rejections, counts = apply_cross_role_policy(BREAKING, "reject")
    assert [r.text for r in kept] == [r.text for r in BREAKING[3:]], "the keeping bundle and the unbundled text stay"
    assert [r.reason.value for r in rejections] == ["cross_role_broken"] * 3
    assert [r.provenance.bundle for r in rejections] == [1, 1, 1]
    assert "billing question" in rejections[0].detail and "shipping" in rejections[2].detail
    assert json.loads(rejections[0].raw)["text"] == BREAKING[0].text
    assert counts == {"cross_role_texts_rejected": 3}
    report = cross_role_report(cross_role_counts(BREAKING) + counts, "reject")
    assert (report["texts_breaking_rule"], report["texts_rejected"]) == (3, 3)
    assert report["policy"] == "texts breaking the rule are rejected as cross_role_broken and counted"


def test_an_unknown_cross_role_policy_is_one_error_naming_the_choices():
    with pytest.raises(ValueError, match="--cross-role-policy 'drop' is unknown: use one of keep, reject"):
        BuildConfig(cross_role_policy="drop")
    assert BuildConfig().cross_role_policy == "keep"


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["keep", "reject"])
def test_a_bundle_run_applies_the_stated_policy_end_to_end(tmp_path, policy):
    config = GenerateConfig(records=9, seed=4, provider="local", bundle_size=3, concurrency=2, max_calls=3)
    manifest = generate_hardset(config, tmp_path / "hs", with_hardness=False, cross_role_policy=policy,
                                provider_factory=lambda: ScriptedProvider())
    counts, cross = manifest["counts"], manifest["cross_role"]
    by_reason = manifest["stats"]["rejections_by_reason"]
    assert manifest["parameters"]["cross_role_policy"] == policy
    assert cross["texts_breaking_rule"] == 3, "the rule is judged on every valid text, whatever the policy"
    card = (tmp_path / "hs" / "README.md").read_text()
    rejected = [row for _, row in read_jsonl(tmp_path / "hs" / "rejected.jsonl")]
    if policy == "keep":
        assert counts["accepted"] == 9 and cross["texts_rejected"] == 0 and "cross_role_broken" not in by_reason
        assert "kept and counted" in card
    else:
        assert counts["accepted"] == 6 and counts["cross_role_texts_rejected"] == 3 and cross["texts_rejected"] == 3
        assert by_reason["cross_role_broken"] == 3 == sum(r["reason"] == "cross_role_broken" for r in rejected)
        assert "rejected as cross_role_broken and counted" in card and "| cross_role_broken | 3 |" in card
        assert "| 3 | 9 | 15 | 12 | 0.8 | 3 | 3 |" in card
