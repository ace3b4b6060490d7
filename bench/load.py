"""Load benchmark: generation at concurrency 1, 4, 16 against the local llama-server (optionally through
the fault proxy), records/s and the pipeline's overhead over pure LLM time.

Each run makes exactly ``--calls`` LLM calls (``records`` is set out of reach, ``max_calls = --calls``)
with the real ``groq`` SDK, then builds the dataset folder (validate, dedup, split, write; no hardness).

Definitions (all wall-clock seconds of one run):

* ``llm_busy``  — the union of the intervals in which at least one ``complete_json`` call was in flight
  (from the call's first HTTP attempt to its answer, retries and backoff included).
* ``gen_wall``  — wall time of ``generate_calls`` (planning, concurrent calls, checkpoint appends).
* ``total``     — ``gen_wall`` + the build of the dataset folder.
* ``gen overhead``   = (gen_wall - llm_busy) / llm_busy  — time the generator spends with *no* request in
  flight, relative to pure LLM time.  Target <= 10 %.
* ``total overhead`` = (total - llm_busy) / llm_busy     — the same, counting the dataset build.
* ``slot use``  = sum of call latencies / (concurrency x gen_wall) — how full the concurrency slots were
  kept (below 1 when the last wave leaves slots idle, or the server queues requests).
* ``records/s`` = accepted records / total.

Run: ``python bench/load.py [--calls 16] [--concurrency 1 4 16] [--faults 0.3] [--max-tokens 384]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gliznet._io import Checkpoint
from gliznet.curation.hardset import build_from_checkpoint  # noqa: E402
from gliznet.generation.loop import generate_calls
from gliznet.generation.plan import GenerateConfig
from gliznet.llm.groq import GroqProvider  # noqa: E402
from gliznet.llm.local import LocalLLMServer  # noqa: E402


class TimedProvider(GroqProvider):
    """A ``GroqProvider`` that records ``(start, end)`` of every ``complete_json`` call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.intervals: list[tuple[float, float]] = []
        self._ilock = threading.Lock()

    def complete_json(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().complete_json(*args, **kwargs)
        finally:
            with self._ilock:
                self.intervals.append((start, time.perf_counter()))


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def run_once(base_url: str, alias: str, concurrency: int, calls: int, max_tokens: int, seed: int) -> dict:
    config = GenerateConfig(records=10_000, seed=seed, provider="groq", model=alias, records_per_call=2,
                            concurrency=concurrency, max_calls=calls, max_tokens=max_tokens)
    provider = TimedProvider(alias, api_key="bench-needs-no-key", base_url=base_url, concurrency=concurrency,
                             timeout=600, backoff_s=0.2)
    with tempfile.TemporaryDirectory(prefix="gliznet-load-") as tmp, provider:
        out = Path(tmp)
        t0 = time.perf_counter()
        lines = generate_calls(config, Checkpoint(out / "checkpoint" / "calls.jsonl"), provider=provider).lines
        t1 = time.perf_counter()
        try:
            manifest = build_from_checkpoint(out, config, with_hardness=False)
            accepted = manifest["counts"]["accepted"]
        except RuntimeError:  # no record accepted: still a valid timing of the pipeline
            accepted = 0
        t2 = time.perf_counter()
    busy = union_seconds(provider.intervals)
    latencies = sum(b - a for a, b in provider.intervals)
    return {
        "concurrency": concurrency, "calls": len(lines), "failed": sum(not line["ok"] for line in lines.values()),
        "accepted": accepted, "tokens": provider.usage.completion_tokens, "gen_wall": t1 - t0,
        "build": t2 - t1, "total": t2 - t0, "llm_busy": busy,
        "gen_overhead": (t1 - t0 - busy) / busy, "total_overhead": (t2 - t0 - busy) / busy,
        "slot_use": latencies / (concurrency * (t1 - t0)), "records_per_s": accepted / (t2 - t0),
        "tokens_per_s": provider.usage.completion_tokens / (t1 - t0),
    }


def table(rows: list[dict], label: str) -> str:
    head = ("| target | conc | calls | failed | accepted | records/s | tok/s | gen wall s | LLM busy s | build s "
            "| gen overhead | total overhead | slot use |")
    out = [head, "|" + "|".join(["---"] * 13) + "|"]
    for r in rows:
        out.append(f"| {label} | {r['concurrency']} | {r['calls']} | {r['failed']} | {r['accepted']} | "
                   f"{r['records_per_s']:.3f} | {r['tokens_per_s']:.1f} | {r['gen_wall']:.1f} | {r['llm_busy']:.1f} | "
                   f"{r['build']:.2f} | {100 * r['gen_overhead']:.2f} % | {100 * r['total_overhead']:.1f} % | "
                   f"{r['slot_use']:.2f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="generation load benchmark (see the module docstring)")
    parser.add_argument("--calls", type=int, default=16, help="LLM calls per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--faults", type=float, default=0.0, help="also run through the fault proxy at this rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    slots = max(args.concurrency)
    with LocalLLMServer(parallel=slots, ctx=2048 * slots) as server:
        rows = [run_once(server.base_url, server.alias, c, args.calls, args.max_tokens, args.seed)
                for c in args.concurrency]
        print(table(rows, "llama-server"), flush=True)
        if args.faults > 0:
            from fault_proxy import CONTENT_KINDS, FaultConfig, FaultProxy

            kinds = ("rate_limited", "http_500", "http_503", "cut", *CONTENT_KINDS)
            with FaultProxy(server.base_url, FaultConfig(rate=args.faults, kinds=kinds, retry_after_s=1.0)) as proxy:
                rows = [run_once(proxy.base_url, server.alias, c, args.calls, args.max_tokens, args.seed + 1)
                        for c in args.concurrency]
                print(table(rows, f"fault proxy {args.faults:.0%}"))
                print(f"faults injected: {proxy.stats()['faults']}")


if __name__ == "__main__":
    main()
