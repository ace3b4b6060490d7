"""The false-negative check (``--negative-check embed``): NV-Retriever's positive-aware rule with the packaged
MiniLM encoder; flagged negatives dropped and counted, shown beside hardness in the card."""

from __future__ import annotations


import numpy as np
import pytest
from fault_proxy import plan_config

from gliznet._io import read_jsonl
from gliznet.curation.card import run_summary_markdown
from gliznet.curation.hardset import BuildConfig
from gliznet.pipeline.generate import generate_hardset
from gliznet.curation.negatives import SUSPECT_FRACTION, check_negatives_embed
from gliznet.llm.registry import make_provider
from gliznet.records import Provenance, Record

PROV = Provenance(provider="t", model="t", prompt_id="t", prompt_hash="t", topic="t", genre="t", length="t",
                  reading_level="t", seed=0)


def record(text: str, labels: list[str], not_labels: list[str]) -> Record:
    return Record(text=text, labels=labels, not_labels=not_labels, provenance=PROV)


class TableEmbedder:
    """Unit vectors whose dot product with the text is the similarity given per label."""

    def __init__(self, sims: dict[str, float]):
        self.sims = sims

    def encode(self, strings: list[str]) -> np.ndarray:
        out = []
        for s in strings:
            if s in self.sims:
                c = self.sims[s]
                out.append([c, np.sqrt(max(0.0, 1 - c * c))])
            else:  # the text
                out.append([1.0, 0.0])
        return np.asarray(out, dtype=np.float32)


def test_the_rule_flags_above_95_percent_of_the_best_positive_and_keeps_merely_hard_ones():
    sims = {"best": 0.60, "weak": 0.20, "twin": 0.59, "hard": 0.40, "easy": 0.05, "edge": 0.95 * 0.60 - 0.001}
    r = record("some text here", ["best", "weak"], ["twin", "hard", "easy", "edge"])
    checked = check_negatives_embed([r], TableEmbedder(sims), min_not_labels=3)
    assert checked.records[0].not_labels == ["hard", "easy", "edge"], "only the twin is a suspect"
    assert checked.counts["negatives_checked"] == 4
    assert checked.counts["negatives_dropped_suspect_false_negative"] == 1
    assert checked.counts["records_with_suspect_negative"] == 1
    assert checked.counts["records_below_min_not_labels_after_check"] == 0
    rep = checked.report
    assert rep["fraction"] == SUSPECT_FRACTION and rep["action"] == "dropped"
    assert rep["suspect_false_negative_rate"] == 0.25 and rep["hard_above_weakest_positive"] == 0.75
    assert checked.records[0].labels == r.labels and checked.records[0].text == r.text


def test_records_are_kept_when_negatives_fall_below_the_minimum_and_counted():
    r = record("text", ["pos"], ["same", "also same", "fine"])
    checked = check_negatives_embed([r], TableEmbedder({"pos": 0.5, "same": 0.5, "also same": 0.49, "fine": 0.1}),
                                    min_not_labels=3)
    assert [x.not_labels for x in checked.records] == [["fine"]]
    assert checked.counts["records_below_min_not_labels_after_check"] == 1


@pytest.fixture(scope="module")
def embedder():
    from gliznet.modeling.backbone import Embedder

    return Embedder()


def test_a_negative_identical_in_meaning_to_a_positive_is_flagged_by_the_packaged_encoder(embedder):
    r = record("The striker scored twice and the home team won the football match.",
               ["football", "sports"], ["soccer", "basketball", "politics", "cooking"])
    checked = check_negatives_embed([r], embedder)
    assert checked.records[0].not_labels == ["basketball", "politics", "cooking"]
    assert checked.report["negatives_dropped"] == 1 and checked.report["scorer"].startswith("cosine")


def test_unknown_negative_check_mode_names_the_choices():
    with pytest.raises(ValueError, match="--negative-check 'nli' is unknown: use one of embed, llm, off"):
        BuildConfig(negative_check="nli")


@pytest.mark.slow
def test_a_run_with_the_embed_check_counts_drops_and_shows_both_rates(tmp_path, replay, monkeypatch, embedder):
    monkeypatch.setenv("GROQ_API_KEY", "recorded")
    out = tmp_path / "hs"
    config = plan_config()
    manifest = generate_hardset(config, out, BuildConfig(with_hardness=True, negative_check="embed"),
                                provider_factory=lambda: make_provider("groq", config.model, base_url=replay.base_url))
    check, counts = manifest["negative_check"], manifest["counts"]
    records = [row for _, row in read_jsonl(out / "records.jsonl")]
    assert check["negatives_dropped"] == counts.get("negatives_dropped_suspect_false_negative", 0)
    assert check["negatives_checked"] == counts["negatives_checked"]
    assert sum(len(r["not_labels"]) for r in records) <= check["negatives_checked"] - check["negatives_dropped"]
    assert manifest["parameters"]["negative_check"] == "embed"
    card = (out / "README.md").read_text()
    assert "### False-negative check" in card and str(check["suspect_false_negative_rate"]) in card
    assert "## Hardness" in card and "suspect false negatives" in run_summary_markdown(manifest)
