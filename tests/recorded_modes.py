"""The recorded runs beyond ``RECORDED_PLAN`` (issue 21): a cross-role bundle run, a seed-grounded run and an
``--negative-check llm`` pass, each answered by the embedded SmolLM2-135M's real answers.

``tests/record_answers.py --modes`` records them into ``MODES_RECORDING`` (``tests/data/recorded_modes.jsonl``);
``tests/test_recorded_modes.py`` replays them (together with ``RECORDING``, whose generation answers the ``llm``
check's run reuses) through the real CLI.  Every mode keeps ``RECORDED_PLAN``'s seed, model alias and ``groq``
client, so the request bodies differ from the base plan's only by what the mode changes; each run is asked with
``--concurrency 1`` so the calls it makes are a fixed prefix of its plan.

    MODE_PLANS[mode]     the GenerateConfig overrides of a mode's run (over RECORDED_PLAN)
    mode_config(mode)    its GenerateConfig (what record_answers.py asks)
    mode_cli_args(mode)  the ``gliznet generate`` options that make the same requests
"""

from __future__ import annotations

from pathlib import Path

from fault_proxy import RECORDING, plan_cli_args, plan_config

DATA = Path(__file__).resolve().parent / "data"
MODES_RECORDING = DATA / "recorded_modes.jsonl"
SEED_PASSAGES = DATA / "seed_passages.jsonl"  # 8 short hand-written passages, each with an "id"

MODE_PLANS: dict[str, dict] = {
    # one bundle of 5 texts per call; 6 calls is the budget (the 135M model rarely fills a bundle validly)
    "bundle": {"records": 5, "bundle_size": 5, "max_calls": 6},
    # 2 texts per call, each call grounded in one passage; 10 calls over 8 passages: calls 8 and 9 reuse one
    "seeded": {"records": 6, "records_per_call": 2, "max_calls": 10, "seed_texts": str(SEED_PASSAGES)},
    # RECORDED_PLAN as it is (its answers are in RECORDING), then one check call per record
    "llm-check": {},
}
MODE_BUILD = {"llm-check": ["--negative-check", "llm"]}  # build options that add requests
CONCURRENCY = 1


def mode_config(mode: str):
    """The ``GenerateConfig`` of a recorded mode (``--provider groq --llm smollm2``, seed 7)."""
    plan = MODE_PLANS[mode]
    return plan_config(concurrency=CONCURRENCY, **plan)


def mode_cli_args(mode: str) -> list[str]:
    """``gliznet generate`` options that make exactly the recorded requests of ``mode``."""
    plan = dict(MODE_PLANS[mode])
    extra = []
    if "bundle_size" in plan:
        extra += ["--bundle-size", str(plan.pop("bundle_size"))]
    if "seed_texts" in plan:
        extra += ["--seed-texts", plan.pop("seed_texts")]
    return [*plan_cli_args(**plan), *extra, "--concurrency", str(CONCURRENCY), *MODE_BUILD.get(mode, [])]


__all__ = ["CONCURRENCY", "MODES_RECORDING", "MODE_PLANS", "RECORDING", "SEED_PASSAGES", "mode_cli_args",
           "mode_config"]
