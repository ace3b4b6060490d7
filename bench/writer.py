"""The embedded writer's speed: output tokens/s and accepted records/min per llama-server setting and prompt.

Each configuration starts the real embedded server (``LocalLLMServer``: threads ``-t``, slots ``-np``), then
makes ``--calls`` real generation calls of a plan (``GenerateConfig`` + ``plan_for`` + ``run_call``, the CLI's
own call) with as many in flight as there are slots, and validates the answers as the build does.  Run it on
idle cores: anything else on the 2 cores slows llama.cpp down many times over.

    python bench/writer.py                                  # the default grid, both prompts
    python bench/writer.py --grid 2x2 --prompts aimed --calls 8
    # -> bench/results/writer-DATE.json and a table on stdout

Prompts: ``topic`` (``hardset_batch``: the writer invents texts, labels and negatives for a topic word, 4 records
a call) and ``aimed`` (``hardset_aimed``: ``--labels`` of five sentiment grades, the writer writes 4 texts and no
label); the records/min ratio of the two is what aiming saves on a slow writer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet.generation.loop import run_call, validate_calls  # noqa: E402
from gliznet.generation.plan import GenerateConfig, plan_for, prompt_text  # noqa: E402
from gliznet.generation.prompts import load_prompt  # noqa: E402
from gliznet.llm.local import LocalLLMServer, LocalProvider  # noqa: E402
from gliznet.llm.weights import embedded_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PROMPTS = {
    "topic": dict(records=40),
    "aimed": dict(records=40, labels="very negative,negative,neutral,positive,very positive",
                  task="a sentence from a movie review by a critic"),
}


def measure(llm: str, threads: int, slots: int, prompt: str, calls: int) -> dict:
    model = embedded_model(llm)
    config = GenerateConfig(provider="local", model=model.name, concurrency=slots, records_per_call=4,
                            **PROMPTS[prompt])
    template = load_prompt(config.prompt_id)
    specs = [plan_for(config, i) for i in range(calls)]
    with LocalLLMServer(alias=model.name, parallel=slots, ctx=model.slot_ctx * slots, threads=threads) as server:
        provider = LocalProvider(server=server, concurrency=slots)
        run_call(provider, template, specs[0], config)  # warm-up: the model's pages in memory
        started = time.perf_counter()
        with ThreadPoolExecutor(slots) as pool:
            lines = list(pool.map(lambda spec: run_call(provider, template, spec, config), specs))
        wall = time.perf_counter() - started
        provider.close()
    validated = validate_calls(lines, lambda line: prompt_text(template, line, config), config.limits)
    tokens = sum(line.get("completion_tokens") or 0 for line in lines)
    return {"llm": model.name, "threads": threads, "slots": slots, "prompt": prompt, "calls": calls,
            "wall_s": round(wall, 1), "completion_tokens": tokens, "tokens_per_s": round(tokens / wall, 2),
            "accepted": len(validated.records), "records_per_min": round(60 * len(validated.records) / wall, 2),
            "tokens_per_record": round(tokens / max(1, len(validated.records)), 1),
            "failed_calls": sum(1 for line in lines if not line.get("ok")),
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="qwen2.5-coder-1.5b")
    parser.add_argument("--grid", default="1x2,2x2,2x4", help="THREADSxSLOTS,...")
    parser.add_argument("--prompts", default="aimed,topic")
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rows = []
    for cell in args.grid.split(","):
        threads, slots = (int(x) for x in cell.split("x"))
        for prompt in args.prompts.split(","):
            row = measure(args.llm, threads, slots, prompt, args.calls)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out or RESULTS / f"writer-{date.today().isoformat()}.json")
    out.write_text(json.dumps({"date": date.today().isoformat(), "argv": sys.argv[1:], "rows": rows}, indent=2) + "\n")
    print("| llm | -t | -np | prompt | calls | output tok/s | records/min | tokens/record | load avg |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['llm']} | {r['threads']} | {r['slots']} | {r['prompt']} | {r['calls']} | {r['tokens_per_s']} | "
              f"{r['records_per_min']} | {r['tokens_per_record']} | {r['load_avg_1min']} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
