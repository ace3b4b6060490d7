"""Dataset card: polars statistics on a hand-made set, the hardness check with the real embedder, rendering."""

from __future__ import annotations

import os

import pytest
import yaml

from gliznet.curation.card import compute_stats, hardness, render_card
from gliznet.curation.split import zero_shot_split
from gliznet.records import Provenance, Record, Rejection, RejectReason

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def prov(provider="groq", model="llama", genre="news", prompt_hash="h1") -> Provenance:
    return Provenance(provider=provider, model=model, prompt_id="p", prompt_hash=prompt_hash, topic="t",
                      genre=genre, length="short", reading_level="adult", seed=0)


RECORDS = [
    Record(text="one two three four", labels=["Sports"], not_labels=["politics", "finance", "music"],
           provenance=prov()),                                                          # 18 chars, 4 words
    Record(text="alpha beta", labels=["sports", "news"], not_labels=["finance", "art", "law", "pets"],
           provenance=prov(genre="review")),                                            # 10 chars, 2 words
    Record(text="a b c d e f", labels=["music", "art", "Sports"], not_labels=["law", "pets", "finance"],
           provenance=prov(provider="ollama", model="qwen")),                           # 11 chars, 6 words
]
REJECTIONS = [
    Rejection(reason=RejectReason.invalid_json, detail="", raw="{", provenance=prov()),
    Rejection(reason=RejectReason.prompt_echo, detail="", raw="", provenance=prov(provider="ollama", model="qwen")),
    Rejection(reason=RejectReason.prompt_echo, detail="", raw="", provenance=prov(provider="ollama", model="qwen")),
    Rejection(reason=RejectReason.llm_call_failed, detail="timeout", raw="", provenance=None),
]


def test_stats_on_a_hand_made_set():
    stats = compute_stats(RECORDS, REJECTIONS, {"overlap_removed": 2, "exact_merged": 1}, None)
    assert stats["records"] == 3 and stats["rejected"] == 4
    assert stats["acceptance_rate"] == round(3 / 7, 4)
    assert stats["rejections_by_reason"] == {"prompt_echo": 2, "invalid_json": 1, "llm_call_failed": 1}
    assert stats["fixes"] == {"exact_merged": 1, "overlap_removed": 2}
    assert stats["text_chars"] == {"min": 10, "median": 11.0, "mean": 13.0, "max": 18}
    assert stats["text_words"] == {"min": 2, "median": 4.0, "mean": 4.0, "max": 6}
    assert stats["labels_per_record"] == {"min": 1, "median": 2.0, "mean": 2.0, "max": 3}
    assert stats["not_labels_per_record"] == {"min": 3, "median": 3.0, "mean": 3.33, "max": 4}
    assert stats["label_frequency"][0] == {"label": "Sports", "count": 3}     # "sports" counted with "Sports"
    assert {x["label"]: x["count"] for x in stats["label_frequency"]} == {"Sports": 3, "news": 1, "music": 1,
                                                                         "art": 1}
    assert stats["not_label_frequency"][0] == {"label": "finance", "count": 3}
    assert stats["distinct_labels"] == 4
    by_provider = {r["value"]: r for r in stats["by"]["provider"]}
    assert by_provider["groq"] == {"value": "groq", "accepted": 2, "rejected": 1, "acceptance_rate": 0.6667}
    assert by_provider["ollama"] == {"value": "ollama", "accepted": 1, "rejected": 2, "acceptance_rate": 0.3333}
    assert by_provider["unknown"]["rejected"] == 1 and by_provider["unknown"]["accepted"] == 0
    assert {r["value"]: r["accepted"] for r in stats["by"]["genre"]} == {"news": 2, "review": 1, "unknown": 0}
    assert "splits" not in stats


def test_stats_include_the_split_and_what_it_removed():
    split = zero_shot_split(RECORDS, test_label_fraction=0.25, seed=0)
    stats = compute_stats(RECORDS, [], {}, split)
    assert stats["splits"]["train"] == len(split.train) and stats["splits"]["test"] == len(split.test)
    assert stats["splits"]["removed_by_split"] == dict(sorted(split.counts.items()))
    assert stats["acceptance_rate"] == 1.0 and stats["rejections_by_reason"] == {}


def test_stats_of_nothing_are_zeros_not_errors():
    stats = compute_stats([], [], {}, None)
    assert stats["records"] == 0 and stats["acceptance_rate"] == 0.0
    assert stats["text_chars"]["max"] == 0 and stats["label_frequency"] == []


def test_card_has_hub_yaml_header_tables_and_usage():
    split = zero_shot_split(RECORDS, test_label_fraction=0.25, seed=0)
    stats = compute_stats(RECORDS, REJECTIONS, {"overlap_removed": 2}, split)
    hard = {"hard_negative_above_weakest_positive": 0.41, "random_label_above_weakest_positive": 0.07,
            "records_scored": 3, "scorer": "cosine (MiniLM)"}
    card = render_card(stats, {"repo_id": "me/zshot-hardset", "version": "v2025.01.01-abc",
                               "parameters": {"provider": "groq", "model": "llama"}}, hard)
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["task_categories"] == ["zero-shot-classification"]
    assert header["license"] and "zero-shot" in header["tags"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"triplet", "couplet"}
    assert configs["triplet"]["data_files"] == [{"split": "train", "path": "triplet/train/*.arrow"},
                                                {"split": "test", "path": "triplet/test/*.arrow"}]
    assert "| prompt_echo | 2 |" in card and "| invalid_json | 1 |" in card
    assert "| overlap_removed | 2 |" in card
    assert "0.41" in card and "0.07" in card
    assert 'load_dataset("me/zshot-hardset", "triplet")' in card and "load_from_disk" in card
    assert "v2025.01.01-abc" in card


def test_card_without_hardness_says_so():
    card = render_card(compute_stats(RECORDS, [], {}, None), {}, None)
    assert "Not computed" in card


@pytest.fixture(scope="module")
def embedder():
    from gliznet.modeling.backbone import Embedder
    return Embedder()


HARD_SET = [
    Record(text="The striker scored twice as the football club won the league match on Saturday.",
           labels=["football"], not_labels=["basketball", "rugby", "tennis"], provenance=prov()),
    Record(text="Preheat the oven, knead the dough and bake the bread loaf for forty minutes.",
           labels=["baking bread"], not_labels=["baking cakes", "making pizza", "cooking pasta"], provenance=prov()),
    Record(text="The central bank raised interest rates to fight inflation this quarter.",
           labels=["monetary policy"], not_labels=["fiscal policy", "inflation", "banking regulation"],
           provenance=prov()),
    Record(text="The new smartphone has a faster chip and a brighter screen than last year's model.",
           labels=["smartphone review"], not_labels=["laptop review", "phone chip", "tablet review"],
           provenance=prov()),
    Record(text="Astronomers spotted a new comet passing close to Jupiter last night.",
           labels=["astronomy"], not_labels=["astrology", "space exploration", "planetary science"],
           provenance=prov()),
    Record(text="My cat keeps scratching the sofa and ignores the scratching post.",
           labels=["cat behaviour"], not_labels=["dog behaviour", "pet training", "cat health"], provenance=prov()),
]


def test_hardness_related_negatives_beat_random_labels(embedder):
    result = hardness(HARD_SET, embedder, seed=0)
    assert result["records_scored"] == len(HARD_SET)
    assert "MiniLM" in result["scorer"] or "mean-pooled" in result["scorer"]
    assert result["mean_cosine_not_label"] > result["mean_cosine_random_label"] + 0.1
    assert result["hard_negative_above_weakest_positive"] > result["random_label_above_weakest_positive"]


def test_hardness_embeds_each_distinct_string_once_and_respects_max_records(embedder):
    calls = []

    class Counting:
        def encode(self, texts):
            calls.append(list(texts))
            return embedder.encode(texts)

    result = hardness(HARD_SET + HARD_SET, Counting(), seed=1, max_records=4)
    assert result["records_scored"] == 4
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))
