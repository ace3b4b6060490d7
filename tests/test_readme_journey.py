"""The README's journey runs exactly as written, and every ``gliznet`` command the documentation shows parses.

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

Every ``gliznet ...`` line of a fenced bash block in ``README.md``, ``docs/*.md`` and ``bench/README.md`` is
parsed by the real CLI (click's ``make_context``: option names, values, required options), one test per line,
named ``FILE:LINE``, so a renamed option fails on the line that still shows the old one.  The code map
(``docs/architecture.md``) names every module of ``gliznet/``, and the user-facing pages (README and docs/)
carry no issue numbers.
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
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]  # pages whose commands parse
USER_PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # what a user reads: no issue numbers there
README_COMMANDS = {"generate", "import", "train", "evaluate", "predict", "publish", "serve"}  # the README shows each


def bash_lines(text: str) -> list[list[tuple[int, str]]]:
    """The lines of every fenced ``bash`` block as (line number in the file, text), continuation lines
    (``\\``) joined and numbered by their first line."""
    blocks, block, pending, start = [], None, "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if block is None:
            if raw.strip() == "```bash":
                block = []
            continue
        if raw.startswith("```"):
            blocks.append(block)
            block = None
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        block.append((start, pending + raw))
        pending = ""
    return blocks


def bash_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced ``bash`` block, continuation lines (``\\``) joined."""
    return [[line for _, line in block] for block in bash_lines(text)]


def journey_lines() -> list[list[str]]:
    """The journey block's commands as argument lists (comments and blank lines dropped)."""
    blocks = [b for b in bash_blocks(README.read_text()) if b and b[0].startswith(JOURNEY_MARK)]
    assert len(blocks) == 1, f"README.md needs exactly one ```bash block starting with {JOURNEY_MARK!r}"
    return [words for line in blocks[0] if (words := shlex.split(line, comments=True))]


def gliznet_args(line: str) -> list[str] | None:
    """The arguments after ``gliznet`` (or ``-m gliznet.cli``) of one shell line, leading ``VAR=value``
    assignments and a trailing ``&`` dropped; None for a line that runs no gliznet command."""
    words = shlex.split(line, comments=True)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    if words and words[0] == "gliznet":
        rest = words[1:]
    elif "-m" in words and words.index("-m") + 1 < len(words) and words[words.index("-m") + 1] == "gliznet.cli":
        rest = words[words.index("-m") + 2:]
    else:
        return None
    return [w for w in rest if w != "&"]


def gliznet_commands(text: str) -> list[list[str]]:
    """Every ``gliznet ...`` line of a page's bash blocks, as the arguments after ``gliznet``."""
    return [args for block in bash_lines(text) for _, line in block if (args := gliznet_args(line)) is not None]


def documented_commands() -> list:
    """One pytest param per ``gliznet`` line of ``DOCS``, named ``FILE:LINE``."""
    params = []
    for page in DOCS:
        if not page.is_file():
            continue
        name = page.relative_to(ROOT).as_posix()
        for block in bash_lines(page.read_text()):
            for number, line in block:
                args = gliznet_args(line)
                if args is not None:
                    params.append(pytest.param(name, number, line, args, id=f"{name}:{number}"))
    return params


def option(args: list[str], name: str) -> str:
    assert name in args, f"the README's command lacks {name}: {args}"
    return args[args.index(name) + 1]


# -- every command the documentation shows parses ---------------------------------------------------
def test_the_readme_shows_every_main_command():
    shown = {c[0] for c in gliznet_commands(README.read_text()) if c}
    assert shown >= README_COMMANDS, f"README.md shows no `gliznet {sorted(README_COMMANDS - shown)}` line"


@pytest.mark.parametrize(("page", "number", "line", "args"), documented_commands())
def test_documented_gliznet_command_parses(page, number, line, args):
    """Option names, values (``none`` included) and required options of one ``gliznet`` line of a page are
    what the CLI accepts; the failure names the page, the line and click's reason."""
    import typer

    from gliznet.cli import app

    group = typer.main.get_command(app)
    where = f"{page}:{number}: {line.strip()}"
    if not args:
        pytest.fail(f"{where}\n  no command after gliznet", pytrace=False)
    name, *rest = args  # the docs give no option before the command's name
    if name not in group.commands:
        pytest.fail(f"{where}\n  gliznet {name}: no such command (have {sorted(group.commands)})", pytrace=False)
    problem = None
    try:
        group.commands[name].make_context(name, rest)  # raises on an unknown option, a bad value, a missing one
    except Exception as err:  # click's usage errors (typer may ship its own click): they carry format_message
        if not hasattr(err, "format_message"):
            raise
        problem = err.format_message()
    if problem is not None:
        pytest.fail(f"{where}\n  does not parse: {problem}", pytrace=False)


# -- the code map and the user-facing pages --------------------------------------------------------
def test_the_code_map_names_every_module():
    """docs/architecture.md names every module of gliznet/ (as ``area/module.py``, or ``gliznet/x.py`` at the
    top), and every module it names exists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "gliznet"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if p.name != "__init__.py"}
    missing = sorted(m for m in modules if f"`{m}`" not in text and f"`gliznet/{m}`" not in text)
    assert not missing, f"docs/architecture.md's code map lacks {missing}: add a row for each"
    named = set(re.findall(r"`(?:gliznet/)?((?:[a-z_]+/)?[a-z_]+\.py)`", text))
    stale = sorted(m for m in named if m not in modules and not (ROOT / m).exists() and not (ROOT / "flows" / m).exists())
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_user_pages_carry_no_issue_numbers(page):
    hits = [f"{page.name}:{n}: {line.strip()}" for n, line in enumerate(page.read_text().splitlines(), start=1)
            if re.search(r"\b[Ii]ssues? #?\d+|(?<![\w/])#\d+\b", line)]
    assert not hits, "issue numbers belong in commits, not in user documentation:\n" + "\n".join(hits)


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
                from gliznet._process import spawn  # a background job dies with the test process, however it dies

                job = spawn(args[:-1], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
