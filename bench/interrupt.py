"""Seconds from a stop signal to the exit of a real ``gliznet generate``, and what it kept.

    python bench/interrupt.py                     # every case below, 3 times each, a table on stdout
    python bench/interrupt.py --repeats 1 --json bench/results/interrupt.json

Each case runs the CLI on the replay plan (``tests/fault_proxy.py`` answering the recorded answers after
``--delay`` seconds, ``--concurrency 2``) through ``tests/interrupting.py``, waits until the child has written a
checkpoint line and has a call in flight (or, for the second Ctrl-C, until it printed its "stopping" line), then
signals it:

* ``sigint``         Ctrl-C with the default grace: the calls in flight (answering within it) are kept;
* ``sigterm-short``  SIGTERM with a grace shorter than a call: the calls in flight are abandoned;
* ``sigint-twice``   Ctrl-C, then Ctrl-C again during a long grace: stops at once.

Printed per run: seconds to exit, exit code, the ``interrupted:`` line's counts, checkpoint lines, and the
processes of the run left alive (always 0 when it works).  The grace (``GLIZNET_GRACE_S``) bounds the wait for
answers; what is measured beyond it is the exit itself (stopping the server, closing, Python's exit).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fault_proxy import FaultConfig, replay_proxy  # noqa: E402
from interrupting import CliRun, call_in_flight, checkpoint_lines  # noqa: E402

from gliznet._process import DEFAULT_GRACE_S  # noqa: E402

CASES = {  # name: (signal, grace seconds, answer delay factor, twice)
    "sigint": (signal.SIGINT, DEFAULT_GRACE_S, 1.0, False),
    "sigterm-short": (signal.SIGTERM, 0.3, 1.0, False),
    "sigint-twice": (signal.SIGINT, 120.0, 30.0, True),
}


def run_case(name: str, delay: float, folder: Path) -> dict:
    sig, grace, factor, twice = CASES[name]
    proxy = replay_proxy(FaultConfig(replay=True, replay_delay_s=delay * factor))
    try:
        run = CliRun(folder / "hs", proxy.base_url, grace_s=grace, extra=("--concurrency", "2"))
        if twice:
            run.wait_for(lambda: proxy.stats()["chat_requests"] >= 1, why="a call in flight")
            run.send(sig)
            run.wait_for(lambda: "stopping (" in run.stderr, why="the stopping line")
            run.send(sig)
        else:
            run.wait_for(lambda: len(checkpoint_lines(run.out)) >= 1, why="a checkpoint line")
            run.wait_for(lambda: call_in_flight(proxy, run.out), why="a call in flight")
            run.send(sig)
        stopped = run.finish()
    finally:
        proxy.stop()
    return {"case": name, "grace_s": grace, "delay_s": delay * factor, "seconds": round(stopped.seconds, 2),
            "exit": stopped.returncode, "kept": stopped.kept, "abandoned": stopped.abandoned,
            "checkpoint_lines": stopped.lines, "left": len(stopped.left)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds each replayed answer takes")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-interrupt-") as tmp:
        for name in args.cases.split(","):
            for i in range(args.repeats):
                row = run_case(name, args.delay, Path(tmp) / f"{name}-{i}")
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| case | grace s | answer s | exit | seconds to exit (median, max) | kept / abandoned | left |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        mine = [r for r in rows if r["case"] == name]
        secs = [r["seconds"] for r in mine]
        print(f"| {name} | {mine[0]['grace_s']:g} | {mine[0]['delay_s']:g} | {sorted({r['exit'] for r in mine})} | "
              f"{statistics.median(secs):.2f}, {max(secs):.2f} | "
              f"{', '.join(str(r['kept']) + '/' + str(r['abandoned']) for r in mine)} | {sum(r['left'] for r in mine)} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
