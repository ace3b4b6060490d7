"""Cost per run: tokens in/out per call and per run, a price from the dated table or the run's override, and
"tokens only" said plainly when no price is known; carried into the manifest, the card and the flow's artifact."""

from __future__ import annotations

import json

import pytest
from fault_proxy import plan_config

from gliznet._io import read_jsonl
from gliznet.curation.card import run_summary_markdown
from gliznet.curation.cost import PRICE_TABLE, PRICES_AS_OF, cost_line, parse_price, run_cost
from gliznet.curation.hardset import BuildConfig
from gliznet.pipeline.generate import generate_hardset
from gliznet.llm.registry import make_provider

USAGE = {"calls": 4, "failed_calls": 0, "prompt_tokens": 2_000_000, "completion_tokens": 500_000}


def test_a_listed_groq_model_is_priced_from_the_dated_table():
    cost = run_cost(USAGE, "groq", "llama-3.1-8b-instant")
    price_in, price_out = PRICE_TABLE[("groq", "llama-3.1-8b-instant")]
    assert cost["usd"] == pytest.approx(2 * price_in + 0.5 * price_out)
    assert (cost["prompt_tokens_per_call"], cost["completion_tokens_per_call"]) == (500_000, 125_000)
    assert PRICES_AS_OF in cost["price_source"] and "est. $" in cost_line(cost)


def test_the_per_run_price_wins_over_the_table():
    cost = run_cost(USAGE, "groq", "llama-3.1-8b-instant", parse_price("1,3"))
    assert cost["usd"] == pytest.approx(2 * 1 + 0.5 * 3) and cost["price_source"].startswith("per-run override")
    assert cost["price_per_mtok"] == {"input": 1.0, "output": 3.0}


def test_an_unknown_price_gives_tokens_only_and_says_so():
    cost = run_cost(USAGE, "openai", "some-vllm-model")
    assert cost["usd"] is None and cost["price_per_mtok"] is None
    line = cost_line(cost)
    assert "tokens only" in line and "2,000,000 tokens in / 500,000 out" in line and "--price-per-mtok" in line


@pytest.mark.parametrize("bad", ["0.05", "a,b", "1,2,3", "-1,2"])
def test_a_bad_price_names_the_option_and_the_fix(bad):
    with pytest.raises(ValueError, match=r"--price-per-mtok .* pass IN,OUT in USD per million tokens"):
        parse_price(bad)
    assert parse_price("none") is None and parse_price(None) is None


@pytest.mark.slow
def test_a_run_records_its_cost_in_manifest_card_and_artifact(tmp_path, replay, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "recorded")
    out = tmp_path / "hs"
    config = plan_config()
    manifest = generate_hardset(config, out, BuildConfig(with_hardness=False, price_per_mtok=(0.5, 1.5)),
                                provider_factory=lambda: make_provider("groq", config.model, base_url=replay.base_url))
    calls = [row for _, row in read_jsonl(out / "checkpoint" / "calls.jsonl")]
    tokens_in = sum(c.get("prompt_tokens") or 0 for c in calls)
    tokens_out = sum(c.get("completion_tokens") or 0 for c in calls)
    cost = manifest["cost"]
    assert (cost["calls"], cost["prompt_tokens"], cost["completion_tokens"]) == (len(calls), tokens_in, tokens_out)
    assert tokens_in > 0 and cost["usd"] == pytest.approx(tokens_in * 0.5e-6 + tokens_out * 1.5e-6, abs=1e-6)
    assert manifest["parameters"]["price_per_mtok"] == [0.5, 1.5] or manifest["parameters"]["price_per_mtok"] == (0.5, 1.5)
    line = cost_line(cost)
    assert line in (out / "README.md").read_text() and line in run_summary_markdown(manifest)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["cost"] == cost


@pytest.mark.slow
@pytest.mark.parametrize("args, names", [(["--price-per-mtok", "cheap"], "--price-per-mtok"),
                                         (["--negative-check", "nli"], "--negative-check")])
def test_bad_cost_or_check_options_are_one_clear_error(tmp_path, args, names):
    from conftest import assert_one_clear_error, run_cli

    done = run_cli("generate", "--provider", "groq", "--out", str(tmp_path / "hs"), *args, env_drop=("GROQ_API_KEY",))
    assert_one_clear_error(done, names)
