"""Scale of the real ``gliznet generate`` path: calls + checkpoint -> validation -> dedup -> split -> dataset -> card.

    python bench/scale.py --records 10000                    # the CLI (python -m gliznet.cli generate)
    python bench/scale.py --records 10000 --flow             # the Prefect flow (a local Prefect server is started)
    python bench/scale.py --records 10000 --compare-flow     # both on the same answers: the flow/CLI wall ratio

What runs.  An *answer server* (``python bench/scale.py serve``, its own process, so its CPU and memory are not
the pipeline's) speaks the OpenAI chat-completions routes (``/v1/models``, ``/v1/chat/completions``, HTTP/1.1
keep-alive) and answers every call at once with ``--records-per-call`` valid records.  The pipeline talks to it
through the ``openai`` provider (``--provider openai --base-url http://127.0.0.1:P/v1``), exactly as to vLLM.

The answers are a pure function of the call (the server maps the request's ``seed`` back to the call index with
the run's own plan, ``plan_call``), so a resumed run gets the same answers as an uninterrupted one.  Record ``g``
(call ``g // K``, item ``g % K``) is, drawn from its own seeded generator:

* an *original*: 22-32 pseudo-words drawn from a Zipf(1) vocabulary of ``--vocab`` words (4-8 letters, none a
  negation cue), 1-3 labels and 3-6 hard negatives from a Zipf(0.8) pool of ``--labels`` two-word labels;
* an *exact duplicate* (rate ``--exact-rate``): the text of an earlier original (fresh labels);
* a *near duplicate* (rate ``--near-rate``): an earlier original with one word replaced by another word of the
  same length (scores >= 93 >= the 90 threshold), never a negation;
* a *negated copy* (rate ``--negated-rate``): an earlier original with "not" inserted: the same words, so a
  fuzzy score alone would merge it; the curation must keep it (negation safety).

The run asks for exactly ``--records`` records with ``--max-calls records / K``: every call of the plan is made
and no call beyond it, so two runs (uninterrupted, killed-and-resumed) make the same calls.

Measured.  Per stage (the manifest's ``timings``, written by ``gliznet.curation.hardset``): wall seconds and
peak RSS of the pipeline process; the whole process's wall and peak RSS (``wait4``); the server's peak RSS;
planted vs found duplicates (``exact_merged``, ``near_duplicates``; negated copies must all be kept).  Resume
(``--resume``, default on): a second run in another folder is SIGKILLed once its checkpoint holds half the calls,
the same command is run again, and the final fingerprint, record count and checkpoint are compared with the
uninterrupted run's (no call missing or twice in the checkpoint; the server counts how often each call was asked:
only the calls in flight at the kill are asked twice).

Results go to ``--json`` (default ``bench/results/scale-<records>.json``) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from bisect import bisect
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gliznet._process import spawn  # noqa: E402 - the servers this bench starts die with it

MODEL = "scale-model"
MIN_HISTORY = 200  # the first records are originals: copies need earlier originals
LOOKBACK = 5000  # a copy's original is at most this many records earlier
NEGATED_OFFSET = 1000  # a negated copy's original is this many records earlier
CONSONANTS = "bcdfgklmprstvz"
VOWELS = "aeiou"
NEGATION_FREE = {"none", "nobody", "nothing", "never", "neither", "nowhere", "without", "cannot"}


# -- 1. the answers: a pure function of (call, item) ------------------------------------------------------------
class Script:
    """The planted corpus: record ``g``'s kind, text and labels, from ``g`` alone."""

    def __init__(self, vocab: int = 50_000, labels: int = 5_000, exact_rate: float = 0.02, near_rate: float = 0.03,
                 negated_rate: float = 0.01, per_call: int = 20, records: int = 10**9, salt: int = 0):
        rng = random.Random(f"vocab:{salt}")
        words: set[str] = set()
        while len(words) < vocab:
            word = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 4)))
            if word not in NEGATION_FREE:
                words.add(word)
        self.words = sorted(words)
        rng.shuffle(self.words)
        self.word_cum = list(accumulate(1.0 / (r + 1) for r in range(vocab)))
        self.by_length: dict[int, list[str]] = {}
        for word in self.words:
            self.by_length.setdefault(len(word), []).append(word)
        pairs = set()
        while len(pairs) < labels:
            word = rng.choice(self.words[:3000])  # before the kind: the draws' order makes the label pool
            kind = rng.choice(["topic", "report", "issue", "story", "review", "notice", "guide", "debate"])
            pairs.add(f"{word} {kind}")
        self.labels = sorted(pairs)
        rng.shuffle(self.labels)
        self.label_cum = list(accumulate(1.0 / (r + 1) ** 0.8 for r in range(labels)))
        self.rates = (exact_rate, near_rate, negated_rate)
        self.per_call = per_call
        self.salt = salt
        self.min_history = min(MIN_HISTORY, records // 10)  # small runs plant copies too
        self.negated_offset = min(NEGATED_OFFSET, records // 4)

    def _draw(self, g: int) -> str:
        if g < self.min_history:
            return "original"
        u = random.Random(g * 2 + 1 + self.salt * 7919).random()
        exact, near, negated = self.rates
        if u < exact:
            return "exact"
        if u < exact + near:
            return "near"
        if u < exact + near + negated:
            return "negated"
        return "original"

    def kind(self, g: int) -> str:
        """A negated copy's original is record ``g - NEGATED_OFFSET`` (one negated copy per original at most, so
        two negated copies never meet); where that one is no original, ``g`` is an original itself."""
        drawn = self._draw(g)
        if drawn == "negated" and (g < self.negated_offset or self._draw(g - self.negated_offset) != "original"):
            return "original"
        return drawn

    def source(self, g: int, rng: random.Random) -> int:
        """An earlier original for copy ``g``."""
        if self.kind(g) == "negated":
            return g - self.negated_offset
        s = g - rng.randint(1, min(LOOKBACK, g))
        while self.kind(s) != "original":
            s -= 1
        return s

    def original_words(self, g: int) -> list[str]:
        rng = random.Random(g * 2 + self.salt * 104729)
        return rng.choices(self.words, cum_weights=self.word_cum, k=rng.randint(22, 32))

    def labels_for(self, rng: random.Random) -> tuple[list[str], list[str]]:
        drawn: list[str] = []
        n_pos, n_neg = rng.randint(1, 3), rng.randint(3, 6)
        while len(drawn) < n_pos + n_neg:
            label = self.labels[bisect(self.label_cum, rng.random() * self.label_cum[-1])]
            if label not in drawn:
                drawn.append(label)
        return drawn[:n_pos], drawn[n_pos:]

    def record(self, g: int) -> dict:
        kind = self.kind(g)
        rng = random.Random(f"r{g}:{self.salt}")
        if kind == "original":
            words = self.original_words(g)
        else:
            words = list(self.original_words(self.source(g, rng)))
            if kind == "near":
                i = rng.randrange(len(words))
                old = words[i]
                new = old
                while new == old:
                    new = rng.choice(self.by_length[len(old)])
                words[i] = new
            elif kind == "negated":
                words.insert(rng.randrange(1, len(words)), "not")
        labels, negatives = self.labels_for(rng)
        return {"text": " ".join(words).capitalize() + ".", "labels": labels, "not_labels": negatives}

    def call(self, index: int) -> dict:
        k = self.per_call
        return {"records": [self.record(index * k + j) for j in range(k)]}

    def planted(self, records: int) -> dict:
        counts = {"exact": 0, "near": 0, "negated": 0, "original": 0}
        for g in range(records):
            counts[self.kind(g)] += 1
        return counts


# -- 2. the answer server ---------------------------------------------------------------------------------------
TOPIC = re.compile(r'about the subject "(.*?)"')


class AnswerServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, script: Script, seed: int, calls: int, port: int = 0, delay_s: float = 0.0):
        from gliznet.generation.plan import plan_call

        super().__init__(("127.0.0.1", port), _Handler)
        self.script = script
        self.calls = calls
        self.delay_s = delay_s
        self.by_seed: dict[int, list[tuple[int, str]]] = {}
        for i in range(calls):
            spec = plan_call(seed, i)
            self.by_seed.setdefault(spec.seed, []).append((i, spec.topic))
        self.asked = bytearray(calls)  # how often each call was asked (saturates at 255)
        self.unknown = 0
        self.lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:  # a client killed mid-answer (the resume check)
        pass

    def index_of(self, seed: int, user: str) -> int | None:
        found = self.by_seed.get(seed)
        if not found:
            return None
        if len(found) == 1:
            return found[0][0]
        topic = TOPIC.search(user)
        for index, planned in found:
            if topic and planned == topic.group(1):
                return index
        return found[0][0]

    def stats(self) -> dict:
        import resource

        asked = self.asked
        return {"calls_asked": sum(1 for a in asked if a), "calls_asked_twice_or_more": sum(1 for a in asked if a > 1),
                "requests": sum(asked) + self.unknown, "unknown_requests": self.unknown,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "cpu_s": round(sum(os.times()[:2]), 1)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: AnswerServer

    def log_message(self, *args):
        pass

    def _send(self, payload: dict, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path.endswith("/stats"):
            self._send(self.server.stats())
        elif self.path.endswith("/reset"):
            with self.server.lock:
                self.server.asked = bytearray(self.server.calls)
                self.server.unknown = 0
            self._send({"ok": True})
        else:
            self._send({"object": "list",
                        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        user = body["messages"][-1]["content"]
        index = self.server.index_of(body.get("seed"), user)
        if index is None:
            with self.server.lock:
                self.server.unknown += 1
            self._send({"error": {"message": "not a call of this run's plan", "type": "invalid_request_error"}}, 400)
            return
        with self.server.lock:
            self.server.asked[index] = min(255, self.server.asked[index] + 1)
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        content = json.dumps(self.server.script.call(index))
        self._send({"id": f"c{index}", "object": "chat.completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 400, "completion_tokens": len(content) // 4,
                              "total_tokens": 400 + len(content) // 4}})


def serve(args) -> None:
    script = Script(args.vocab, args.labels, args.exact_rate, args.near_rate, args.negated_rate, args.records_per_call,
                    args.calls * args.records_per_call)
    server = AnswerServer(script, args.seed, args.calls, delay_s=args.answer_delay)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- 3. driving the pipeline ------------------------------------------------------------------------------------
def _get(url: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


def start_server(args, calls: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--seed", str(args.seed), "--calls", str(calls),
           "--records-per-call", str(args.records_per_call), "--vocab", str(args.vocab), "--labels", str(args.labels),
           "--exact-rate", str(args.exact_rate), "--near-rate", str(args.near_rate),
           "--negated-rate", str(args.negated_rate), "--answer-delay", str(args.answer_delay)]
    proc = spawn(cmd, stdout=subprocess.PIPE, text=True)  # dies with the bench, however it dies
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def cli_command(args, out: Path, base_url: str, calls: int) -> list[str]:
    return [sys.executable, "-m", "gliznet.cli", "generate", "--provider", "openai", "--base-url", base_url,
            "--llm", MODEL, "--records", str(args.records), "--records-per-call", str(args.records_per_call),
            "--max-calls", str(calls), "--concurrency", str(args.concurrency), "--seed", str(args.seed),
            "--hardness" if args.hardness else "--no-hardness", "--out", str(out)]


FLOW_SCRIPT = """
import json, sys
from flows.generate_hardset import generate_hardset_flow
params = json.loads(sys.argv[1])
result = generate_hardset_flow(**params)
print(json.dumps({"fingerprint": result["fingerprint"]}))
"""


def flow_command(args, out: Path, base_url: str, calls: int) -> list[str]:
    params = {"records": args.records, "out": str(out), "provider": "openai", "model": MODEL, "seed": args.seed,
              "records_per_call": args.records_per_call, "concurrency": args.concurrency, "max_calls": calls,
              "with_hardness": args.hardness, "base_url": base_url}
    if args.calls_per_task is not None:
        params["calls_per_task"] = args.calls_per_task
    return [sys.executable, "-c", FLOW_SCRIPT, json.dumps(params)]


def run_measured(cmd: list[str], env: dict, log: Path, kill_at: tuple[Path, int] | None = None) -> dict:
    """Run ``cmd``; its wall seconds, peak RSS (``wait4``) and exit code.  ``kill_at=(checkpoint, lines)``:
    SIGKILL it once the checkpoint holds that many lines."""
    start = time.perf_counter()
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=fh, start_new_session=True)
    killed_at = None
    if kill_at is not None:
        path, lines = kill_at
        seen, offset = 0, 0
        while proc.poll() is None:
            if path.exists():
                with open(path, "rb") as cp:
                    cp.seek(offset)
                    chunk = cp.read()
                offset += len(chunk)
                seen += chunk.count(b"\n")
                if seen >= lines:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed_at = seen
                    break
            time.sleep(0.05)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "exit": proc.returncode, "killed_at_lines": killed_at}


def read_manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def checkpoint_calls(out: Path) -> list[int]:
    calls = []
    with open(out / "checkpoint" / "calls.jsonl", "rb") as fh:
        for raw in fh:
            try:
                calls.append(json.loads(raw)["call"])
            except ValueError:  # a line torn by the kill: the resumed run cuts it off and asks its call again
                continue
    return calls


def pipeline_env(extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(extra or {})}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    return env


def start_prefect(home: Path) -> tuple[subprocess.Popen, dict]:
    """A local Prefect server on SQLite in ``home``; the environment that points a flow at it."""
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = pipeline_env({"PREFECT_HOME": str(home), "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
                        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_LOGGING_LEVEL": "WARNING"})
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    proc = spawn([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                 stdout=open(home / "server.log", "ab"), stderr=subprocess.STDOUT)  # dies with the bench
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            _get(f"http://127.0.0.1:{port}/api/health", timeout=2)
            return proc, env
        except OSError:
            time.sleep(1)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError(f"the Prefect server did not start: see {home / 'server.log'}")


def one_run(args, mode: str, work: Path, calls: int, env: dict, tag: str) -> dict:
    """An uninterrupted run (``mode`` cli|flow) against a fresh answer server."""
    server, base_url = start_server(args, calls)
    try:
        out = work / f"{tag}-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        make = cli_command if mode == "cli" else flow_command
        run = run_measured(make(args, out, base_url, calls), env, work / f"{tag}-{mode}.log")
        served = _get(base_url.replace("/v1", "/stats"))
    finally:
        server.terminate()
        server.wait()
    if run["exit"] != 0:
        raise SystemExit(f"{mode} run failed (exit {run['exit']}): see {work / f'{tag}-{mode}.log'}")
    manifest = read_manifest(out)
    return {"mode": mode, "out": str(out), "run": run, "server": served, "manifest_counts": manifest["counts"],
            "fingerprint": manifest["fingerprint"], "timings": manifest.get("timings")}


def resume_check(args, work: Path, calls: int, reference: dict) -> dict:
    """Kill a run at about half its calls, run the same command again, compare with ``reference``."""
    server, base_url = start_server(args, calls)
    try:
        out = work / "resume-cli"
        shutil.rmtree(out, ignore_errors=True)
        cmd = cli_command(args, out, base_url, calls)
        env = pipeline_env()
        first = run_measured(cmd, env, work / "resume.log", kill_at=(out / "checkpoint" / "calls.jsonl", calls // 2))
        lines_at_kill = len(checkpoint_calls(out)) if (out / "checkpoint" / "calls.jsonl").exists() else 0
        second = run_measured(cmd, env, work / "resume.log")
        served = _get(base_url.replace("/v1", "/stats"))
    finally:
        server.terminate()
        server.wait()
    manifest = read_manifest(out)
    indices = checkpoint_calls(out)
    ok = (second["exit"] == 0 and manifest["fingerprint"] == reference["fingerprint"]
          and manifest["counts"]["accepted"] == reference["manifest_counts"]["accepted"]
          and sorted(indices) == list(range(calls)) and served["calls_asked"] == calls)
    return {"killed_after_lines": first["killed_at_lines"], "checkpoint_lines_at_kill": lines_at_kill,
            "first_run": first, "resumed_run": second, "resume_timings": manifest.get("timings"),
            "fingerprint_equal": manifest["fingerprint"] == reference["fingerprint"],
            "accepted": manifest["counts"]["accepted"], "checkpoint_lines": len(indices),
            "checkpoint_calls_distinct": len(set(indices)), "server": served,
            "calls_asked_twice": served["calls_asked_twice_or_more"], "ok": ok}


def found_duplicates(counts: dict, planted: dict) -> dict:
    return {"exact_planted": planted["exact"], "exact_found": counts.get("exact_merged", 0),
            "near_planted": planted["near"], "near_found": counts.get("near_duplicates", 0),
            "negated_planted": planted["negated"]}


def table(result: dict) -> str:
    rows = ["| stage | seconds | peak RSS MiB (so far) |", "|---|---:|---:|"]
    for s in (result["cli"].get("timings") or {}).get("stages", []):
        rows.append(f"| {s['stage']} | {s['seconds']:.2f} | {s['peak_rss_mib']:.0f} |")
    run = result["cli"]["run"]
    rows.append(f"| **whole CLI process** | {run['seconds']:.2f} | {run['peak_rss_mib']:.0f} |")
    dup = result["duplicates"]
    lines = ["\n".join(rows), "",
             f"duplicates: exact planted {dup['exact_planted']} found {dup['exact_found']}; near planted "
             f"{dup['near_planted']} found {dup['near_found']}; negated copies planted {dup['negated_planted']} "
             f"(must be kept)", f"answer server peak RSS {result['cli']['server']['peak_rss_mib']:.0f} MiB"]
    if result.get("resume"):
        r = result["resume"]
        lines.append(f"resume: killed at {r['checkpoint_lines_at_kill']} of {result['calls']} checkpointed calls; "
                     f"resumed run {r['resumed_run']['seconds']:.1f} s; fingerprint equal {r['fingerprint_equal']}; "
                     f"checkpoint {r['checkpoint_lines']} lines / {r['checkpoint_calls_distinct']} calls; "
                     f"calls asked twice {r['calls_asked_twice']}; ok {r['ok']}")
    if result.get("flow"):
        f = result["flow"]
        lines.append(f"flow: {f['run']['seconds']:.1f} s vs CLI {run['seconds']:.1f} s (ratio "
                     f"{f['run']['seconds'] / run['seconds']:.2f}); calls stage flow "
                     f"{_stage(f, 'calls'):.1f} s vs CLI {_stage(result['cli'], 'calls'):.1f} s; fingerprint equal "
                     f"{f['fingerprint'] == result['cli']['fingerprint']}")
    return "\n".join(lines)


def readme_table(paths: list[Path]) -> str:
    """One Markdown table over several result files (README "Scale-out"): per stage, seconds and peak RSS per
    size, and the growth exponent of the seconds between consecutive sizes (1.0: linear)."""
    import math

    results = sorted((json.loads(Path(p).read_text()) for p in paths), key=lambda r: r["records"])
    sizes = [f"{r['records']:,}" for r in results]
    names: list[str] = []
    for r in results:
        for st in r["cli"]["timings"]["stages"]:
            if st["stage"] not in names:
                names.append(st["stage"])
    head = ("| stage | " + " | ".join(f"{n} s / peak MiB" for n in sizes) + " | growth "
            + ", ".join(f"{a}→{b}" for a, b in zip(sizes, sizes[1:])) + " |")
    rows = [head, "|---|" + "---:|" * len(sizes) + "---|"]

    def growth(values: list[float]) -> str:
        out = []
        for (n1, v1), (n2, v2) in zip(values, values[1:]):
            out.append(f"n^{math.log(v2 / v1) / math.log(n2 / n1):.2f}" if v1 > 0.05 and v2 > 0 else "-")
        return ", ".join(out)

    for name in names:
        cells, values = [], []
        for r in results:
            st = next((x for x in r["cli"]["timings"]["stages"] if x["stage"] == name), None)
            cells.append(f"{st['seconds']:.1f} / {st['peak_rss_mib']:.0f}" if st else "-")
            if st:
                values.append((r["records"], st["seconds"]))
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {growth(values)} |")
    whole = [(r["records"], r["cli"]["run"]["seconds"]) for r in results]
    rows.append("| **whole CLI process** | " + " | ".join(f"{r['cli']['run']['seconds']:.1f} / "
                                                      f"{r['cli']['run']['peak_rss_mib']:.0f}" for r in results)
                + f" | {growth(whole)} |")
    rows.append("| duplicates exact: planted / found | " + " | ".join(
        f"{r['duplicates']['exact_planted']} / {r['duplicates']['exact_found']}" for r in results) + " | |")
    rows.append("| duplicates near: planted / found | " + " | ".join(
        f"{r['duplicates']['near_planted']} / {r['duplicates']['near_found']}" for r in results) + " | |")
    rows.append("| negated copies planted (all kept) | " + " | ".join(
        f"{r['duplicates']['negated_planted']}" for r in results) + " | |")
    rows.append("| answer server peak RSS MiB | " + " | ".join(
        f"{r['cli']['server']['peak_rss_mib']:.0f}" for r in results) + " | |")
    cells = []
    for r in results:
        rs = r.get("resume")
        cells.append("not run" if not rs else
                     f"killed at {rs['checkpoint_lines_at_kill']}/{r['calls']} calls; resumed in "
                     f"{rs['resumed_run']['seconds']:.0f} s; same fingerprint: "
                     f"{'yes' if rs['fingerprint_equal'] else 'NO'}; "
                     f"{rs['checkpoint_calls_distinct']} calls once each; {rs['calls_asked_twice']} asked twice")
    rows.append("| resume (SIGKILL at ~50 %) | " + " | ".join(cells) + " | |")
    return "\n".join(rows)


def _stage(run: dict, name: str) -> float:
    for s in (run.get("timings") or {}).get("stages", []):
        if s["stage"] == name:
            return s["seconds"]
    return float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "serve", "table"])
    parser.add_argument("results", nargs="*", type=Path, help="table: result files (--json of earlier runs)")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--records-per-call", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--labels", type=int, default=5_000)
    parser.add_argument("--exact-rate", type=float, default=0.02)
    parser.add_argument("--near-rate", type=float, default=0.03)
    parser.add_argument("--negated-rate", type=float, default=0.01)
    parser.add_argument("--hardness", action=argparse.BooleanOptionalAction, default=True,
                        help="the card's MiniLM hardness check (a fixed 500-record sample)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--resume-only", type=Path, default=None, metavar="RESULT_JSON",
                        help="only the resume check, against the uninterrupted run saved in RESULT_JSON by an earlier "
                             "run with the same settings; its 'resume' entry is written into that file")
    parser.add_argument("--flow", action="store_true", help="run the Prefect flow instead of the CLI")
    parser.add_argument("--compare-flow", action="store_true", help="run the CLI and the flow on the same answers")
    parser.add_argument("--calls-per-task", type=int, default=None, help="the flow's calls per task run")
    parser.add_argument("--answer-delay", type=float, default=0.0, help="seconds the server waits before each answer")
    parser.add_argument("--calls", type=int, default=None, help=argparse.SUPPRESS)  # serve: the plan's calls
    parser.add_argument("--work", type=Path, default=Path("/tmp/gliznet-scale"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args)
        return {}
    if args.command == "table":
        print(readme_table(args.results))
        return {}
    if args.records % args.records_per_call:
        parser.error("--records must be a multiple of --records-per-call (every call of the plan is made)")
    calls = args.records // args.records_per_call
    work = args.work / f"n{args.records}"
    work.mkdir(parents=True, exist_ok=True)
    script = Script(args.vocab, args.labels, args.exact_rate, args.near_rate, args.negated_rate, args.records_per_call,
                    args.records)
    result: dict = {"records": args.records, "calls": calls, "records_per_call": args.records_per_call,
                    "concurrency": args.concurrency, "cpus": os.cpu_count(), "planted": script.planted(args.records),
                    "argv": sys.argv[1:] if argv is None else argv}
    if args.resume_only:  # the check alone, on the saved run's result (written back into its file below)
        result = json.loads(args.resume_only.read_text(encoding="utf-8"))
        if "cli" not in result or any(result[k] != getattr(args, k) for k in ("records", "records_per_call",
                                                                              "concurrency")):
            parser.error(f"--resume-only {args.resume_only}: needs the CLI result of a run with the same --records, "
                         "--records-per-call and --concurrency")
    prefect = None
    try:
        if args.resume_only:
            result["resume"] = resume_check(args, work, calls, result["cli"])
        else:
            if args.flow or args.compare_flow:
                prefect, flow_env = start_prefect(work / "prefect-home")
            if not args.flow:
                result["cli"] = one_run(args, "cli", work, calls, pipeline_env(), "run")
            if args.flow or args.compare_flow:
                result["flow"] = one_run(args, "flow", work, calls, flow_env, "run")
            main_run = result.get("cli") or result["flow"]
            result["duplicates"] = found_duplicates(main_run["manifest_counts"], result["planted"])
            if args.resume and "cli" in result:
                result["resume"] = resume_check(args, work, calls, result["cli"])
    finally:
        if prefect is not None:
            os.killpg(prefect.pid, signal.SIGTERM)
            prefect.wait()
    out = (args.resume_only or args.json
           or ROOT / "bench" / "results" / f"scale-{args.records}{'-flow' if args.flow else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if "cli" in result:
        print(table(result))
    else:
        print(json.dumps({k: result[k] for k in ("duplicates",)}, indent=2), result["flow"]["run"])
    return result


if __name__ == "__main__":
    main()
