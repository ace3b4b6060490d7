"""The README's journey runs exactly as written, and every ``gliznet`` command the README shows parses.

The journey is the README's fenced bash block whose first line is ``# the journey``: start the replay of the
recorded LLM answers, generate a dataset on them, train two steps, evaluate, predict.  The test runs each of
its lines as its own process, in a fresh folder that sees the checkout's ``tests/`` (for the replay), with the
virtual environment's ``python`` and ``gliznet`` first on PATH:

* ``export K=V ...`` / ``unset K ...`` set / clear the environment of the lines after it;
* ``CMD ... &`` starts a background job (the replay) and waits for its first line of output;
* ``kill %N`` stops the N-th background job;
* any other line must exit 0, and a ``gliznet`` command must leave what it promises (a dataset with a
  manifest, a model folder, a report with macro-F1, a score per candidate label), read from its own options,
  so a README edit that breaks a command, or drops one, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
JOURNEY_MARK = "# the journey"
STEPS = ["generate", "train", "evaluate", "predict"]  # what the journey shows, in this order


# -- reading the README ----------------------------------------------------------------------------
def bash_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced ``bash`` block, continuation lines (``\\``) joined."""
    blocks = []
    for body in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        lines, pending = [], ""
        for raw in body.splitlines():
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            lines.append(pending + raw)
            pending = ""
        blocks.append(lines)
    return blocks


def journey_lines() -> list[list[str]]:
    """The journey block's commands as argument lists (comments and blank lines dropped)."""
    blocks = [b for b in bash_blocks(README.read_text()) if b and b[0].startswith(JOURNEY_MARK)]
    assert len(blocks) == 1, f"README.md needs exactly one ```bash block starting with {JOURNEY_MARK!r}"
    return [words for line in blocks[0] if (words := shlex.split(line, comments=True))]


def gliznet_commands(text: str) -> list[list[str]]:
    """Every ``gliznet ...`` line of the README's bash blocks, as the arguments after ``gliznet`` (leading
    ``VAR=value`` assignments and a trailing ``&`` dropped)."""
    commands = []
    for block in bash_blocks(text):
        for line in block:
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words and words[0] == "gliznet":
                commands.append([w for w in words[1:] if w != "&"])
    return commands


def option(args: list[str], name: str) -> str:
    assert name in args, f"the README's command lacks {name}: {args}"
    return args[args.index(name) + 1]


# -- every command the README shows parses ----------------------------------------------------------
def test_every_gliznet_command_in_the_readme_parses():
    """Option names, values (``none`` included) and required options of every ``gliznet`` line in a README
    bash block are what the CLI accepts, so renaming an option without the README fails here."""
    import typer

    from gliznet.cli import app

    group = typer.main.get_command(app)
    commands = gliznet_commands(README.read_text())
    assert {c[0] for c in commands} >= {"generate", "import", "train", "evaluate", "predict", "publish", "serve"}
    for name, *rest in commands:  # the README gives no option before the command's name
        assert name in group.commands, f"gliznet {name}: no such command"
        group.commands[name].make_context(name, rest)  # raises on an unknown option, a bad value, a missing one


# -- the journey -----------------------------------------------------------------------------------
def check_outputs(args: list[str], done: subprocess.CompletedProcess, cwd: Path, env: dict) -> None:
    """What a ``gliznet`` step of the journey promises, found through its own options."""
    step = args[1]
    if step == "generate":
        manifest = json.loads((cwd / option(args, "--out") / "manifest.json").read_text())
        assert manifest["counts"]["train"] > 0 and manifest["counts"]["test"] > 0, manifest["counts"]
        assert "dataset:" in done.stdout
        with urllib.request.urlopen(env["GROQ_BASE_URL"] + "/_stats", timeout=10) as answer:
            misses = json.load(answer)["misses"]
        assert misses == 0, (f"{misses} request(s) of the journey's generate are not in the recording: keep the "
                             "journey on RECORDED_PLAN (tests/fault_proxy.py) or re-record")
    elif step == "train":
        from gliznet.modeling.model import MANIFEST_NAME, model_folder

        folder = model_folder(cwd / option(args, "--out"))
        assert (folder / MANIFEST_NAME).is_file() and "model:" in done.stdout
    elif step == "evaluate":
        report = json.loads((cwd / option(args, "--out") / "report.json").read_text())
        assert 0.0 <= report["metrics"]["macro_f1"] <= 1.0, report["metrics"]
    elif step == "predict":
        labels = [x.strip() for x in option(args, "--labels").split(",")]
        scores = json.loads(done.stdout)
        assert len(scores) == 1 and set(scores[0]) == set(labels), done.stdout
        assert all(0.0 <= p <= 1.0 for p in scores[0].values()), scores


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline and b"\n" not in buffer:
        if proc.poll() is not None:
            break
        buffer += proc.stdout.read() or b""
        time.sleep(0.05)
    return buffer.decode(errors="replace").split("\n")[0]


@pytest.mark.slow
def test_the_readme_journey_runs_as_written(tmp_path):
    lines = journey_lines()
    steps = [args[1] for args in lines if args[0] == "gliznet"]
    assert steps == STEPS, f"the journey shows {steps}; it is {STEPS}"
    (tmp_path / "tests").symlink_to(ROOT / "tests")  # the replay and its recording, as from the checkout
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": "200"}
    env.pop("GROQ_BASE_URL", None)
    env.pop("GROQ_API_KEY", None)
    jobs: list[subprocess.Popen] = []
    try:
        for args in lines:
            if args[0] == "export":
                env.update(word.split("=", 1) for word in args[1:])
            elif args[0] == "unset":
                for name in args[1:]:
                    env.pop(name, None)
            elif args[0] == "kill":
                job = jobs[int(args[1].removeprefix("%")) - 1]
                job.terminate()
                job.wait(timeout=10)
            elif args[-1] == "&":
                job = subprocess.Popen(args[:-1], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
                jobs.append(job)
                line = first_line(job, timeout=30)
                assert job.poll() is None, f"{shlex.join(args)} exited: {line}"
            else:
                done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, f"{shlex.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
                if args[0] == "gliznet":
                    check_outputs(args, done, tmp_path, env)
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
                job.wait()
