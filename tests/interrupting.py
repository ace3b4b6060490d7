"""A real ``gliznet generate`` to interrupt (used by ``tests/test_interrupt.py`` and ``bench/interrupt.py``).

``CliRun`` starts ``python -m gliznet.cli generate`` on the replay plan (``fault_proxy.RECORDED_PLAN``, every call
of it: more records than it gives) against a replay proxy's URL, with ``GLIZNET_GRACE_S`` set and a unique
``GLIZNET_TEST_TAG`` in its environment.  Every process it starts inherits the tag, so ``tagged_pids(tag)`` finds
all of them (the embedded llama-server included) by scanning ``/proc``: that is how a test sees that nothing of
the run is left.  The child is started with ``gliznet._process.spawn``: if the test process dies, so does it.
The test waits for what the child reports (a checkpoint line, a request at the proxy, a line on its stderr),
never for a fixed time, then signals it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fault_proxy import plan_cli_args

from gliznet._io import read_jsonl
from gliznet._process import spawn

ROOT = Path(__file__).resolve().parent.parent
TAG_ENV = "GLIZNET_TEST_TAG"
RECORDS = 100  # more than the plan's 9 calls give: a run makes every call of the plan
LINE = re.compile(r"interrupted: (\d+) calls answered and kept \((\d+) abandoned\); re-run the same command to resume")


def tagged_pids(tag: str) -> set[int]:
    """Pids of the live processes whose environment holds ``GLIZNET_TEST_TAG=tag`` (zombies excluded)."""
    marker = f"{TAG_ENV}={tag}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.add(int(entry.name))
    return found


def checkpoint_lines(out: Path, name: str = "calls.jsonl") -> list[dict]:
    path = out / "checkpoint" / name
    if not path.exists():
        return []
    return [row for _, row in read_jsonl(path, torn_tail=True)]  # the run may be appending a line


def call_in_flight(proxy, out: Path, concurrency: int = 2) -> bool:
    """A call past the first round has reached ``proxy`` and its answer is not in the checkpoint yet: with
    answers that take seconds, it is still in flight (a first-round request may already be answered, its
    line being written)."""
    asked = proxy.stats()["chat_requests"]
    return asked > max(concurrency, len(checkpoint_lines(out)))


def generate_args(out: Path, *extra: str, provider_args: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "gliznet.cli", "generate",
            *(provider_args if provider_args is not None else plan_cli_args(records=RECORDS)),
            "--no-hardness", "--out", str(out), *extra]


@dataclass
class Stopped:
    """How an interrupted run ended."""

    returncode: int
    seconds: float  # from the first signal to the exit
    stderr: str
    kept: int | None
    abandoned: int | None
    lines: int  # checkpoint lines after the exit
    left: set[int] = field(default_factory=set)  # processes of the run still alive after its exit


class CliRun:
    """One ``gliznet generate`` process (see the module docstring), or any ``gliznet`` command given as ``args``."""

    def __init__(self, out: Path, base_url: str | None, *, grace_s: float, extra: tuple[str, ...] = (),
                 provider_args: list[str] | None = None, args: list[str] | None = None, with_stdout: bool = False):
        self.out = out
        self.tag = uuid.uuid4().hex
        env = {**os.environ, TAG_ENV: self.tag, "GLIZNET_GRACE_S": str(grace_s), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        if base_url is not None:
            env.update(GROQ_API_KEY="interrupt-test", GROQ_BASE_URL=base_url)
        args = args if args is not None else generate_args(out, *extra, provider_args=provider_args)
        self.proc = spawn(args, cwd=ROOT, env=env,
                          stdout=subprocess.PIPE if with_stdout else subprocess.DEVNULL,
                          stderr=subprocess.STDOUT if with_stdout else subprocess.PIPE, text=True)
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.signalled_at: float | None = None

    def _read(self) -> None:
        for line in self.proc.stderr or self.proc.stdout:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        """What the child wrote to stderr (and to stdout, ``with_stdout``)."""
        return "".join(self._stderr)

    def wait_for(self, what: Callable[[], bool], timeout: float = 120.0, why: str = "") -> None:
        """Until ``what()`` holds; fails if the child exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not what():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run exited ({self.proc.returncode}) before {why}: {self.stderr[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {why} within {timeout:.0f}s: {self.stderr[-2000:]}")
            time.sleep(0.02)

    def send(self, sig: int) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = 120.0) -> Stopped:
        self.proc.wait(timeout=timeout)
        seconds = time.monotonic() - (self.signalled_at or time.monotonic())
        self._reader.join(timeout=10)
        found = LINE.search(self.stderr)
        deadline = time.monotonic() + 10  # a child's exit is reaped by the kernel a moment after ours
        left = tagged_pids(self.tag)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = tagged_pids(self.tag)
        return Stopped(self.proc.returncode, seconds, self.stderr, int(found[1]) if found else None,
                       int(found[2]) if found else None, len(checkpoint_lines(self.out)), left)


def run_to_end(out: Path, base_url: str, *extra: str, timeout: float = 300,
               provider_args: list[str] | None = None) -> subprocess.CompletedProcess:
    """The same command, uninterrupted (a reference run, or the resume)."""
    env = {**os.environ, "GROQ_API_KEY": "interrupt-test", "GROQ_BASE_URL": base_url, "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    return subprocess.run(generate_args(out, *extra, provider_args=provider_args), cwd=ROOT, env=env,
                          capture_output=True, text=True,
                          timeout=timeout)
