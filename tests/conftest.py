"""Shared fixtures: the LLM, recorded (``replay``) and live (``llama_server``; see llm_fixtures), and a Prefect harness."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm_fixtures import *  # noqa: E402,F401,F403  (recording, replay, llama_server, ollama_api)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One local Prefect server (SQLite) for the whole session, started for real."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    path = Path(os.environ.get("GLIZNET_EVAL_DIR", ROOT.parent / "shared" / "eval"))
    if not path.is_dir():
        pytest.fail(f"real eval sets not found at {path}: set GLIZNET_EVAL_DIR")
    return path
