"""GROQ_API_KEY and HF_TOKEN never land in a produced file: outputs, logs, Prefect results or artifacts.

Recognisable fake tokens are planted in the environment, then everything that can touch them runs for
real: generation through the ``groq`` provider (real SDK; the embedded model's recorded answers served by
the replay proxy, ``tests/data/recorded_answers.jsonl``), the same
with a key the server refuses (on every route, and on chat only: a key revoked mid-run) — the proxy's 401
message echoes the key it was given, like the worst real APIs — the Prefect flow ``generate-hardset`` (its
persisted results, artifacts and the API database), and ``publish`` up to the Hub client failing (offline).
Every file produced — the output folders, the snapshot store, captured stdout/stderr, the Prefect home and
database — is searched for the tokens (whole, and their distinctive tails).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_proxy import FaultConfig, plan_cli_args, plan_flow_params

ROOT = Path(__file__).resolve().parent.parent
GROQ_KEY = "gsk_FAKEgliznetSECRET_4f9d2c7a1b8e6d3f5a0c9e2b7d4f1a8c"
HF_TOKEN = "hf_FAKEgliznetTOKEN_9b3e7d1f5a2c8e4b6d0f3a7c9e1b5d2f"
NEEDLES = [GROQ_KEY, HF_TOKEN, GROQ_KEY[-16:], HF_TOKEN[-16:]]


def leaks(*roots: Path) -> list[str]:
    """``path: needle`` for every file under ``roots`` that contains a token (or its tail)."""
    found, files = [], 0
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if not path.is_file():
                continue
            files += 1
            data = path.read_bytes()
            found += [f"{path}: {needle[:12]}..." for needle in NEEDLES if needle.encode() in data]
    assert files > 0, f"nothing to search under {roots}"
    return found


def cli(*args: str, env: dict, log: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "gliznet.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    log.write_text(f"$ {' '.join(args)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n--- rc {done.returncode}\n")
    return done


@pytest.fixture()
def secret_env(tmp_path):
    return {**os.environ, "GROQ_API_KEY": GROQ_KEY, "HF_TOKEN": HF_TOKEN, "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf-home")}


@pytest.mark.slow
def test_tokens_never_reach_outputs_logs_or_snapshots(replay, tmp_path, secret_env):
    logs = tmp_path / "logs"
    logs.mkdir()
    args = [*plan_cli_args(), "--concurrency", "4", "--no-hardness"]
    with replay.fork(FaultConfig(replay=True, require_key=GROQ_KEY)) as good, \
            replay.fork(FaultConfig(replay=True, require_key="gsk_the_right_one")) as refusing, \
            replay.fork(FaultConfig(replay=True, require_key="gsk_the_right_one", require_key_on="chat")) as revoked:
        ok = cli("generate", *args, "--out", str(tmp_path / "hs"), env={**secret_env, "GROQ_BASE_URL": good.base_url},
                 log=logs / "generate.log")
        assert ok.returncode == 0, ok.stderr[-2000:]
        bad = cli("generate", *args, "--out", str(tmp_path / "hs-refused"),
                  env={**secret_env, "GROQ_BASE_URL": refusing.base_url}, log=logs / "refused.log")
        assert bad.returncode != 0 and "GROQ_API_KEY was rejected" in bad.stderr
        cut = cli("generate", *args, "--out", str(tmp_path / "hs-revoked"),
                  env={**secret_env, "GROQ_BASE_URL": revoked.base_url}, log=logs / "revoked.log")
        assert cut.returncode != 0  # every call refused: no record, a clear error
        assert revoked.stats()["requests"].get("/openai/v1/chat/completions", 0) > 0, "the chat path was exercised"
    published = cli("publish", "--data", str(tmp_path / "hs"), "--store", str(tmp_path / "store"),
                    "--hub-repo", "gliznet-test/never-pushed", env=secret_env, log=logs / "publish.log")
    assert published.returncode != 0 and (tmp_path / "store" / "latest").exists(), published.stderr[-1500:]
    assert leaks(tmp_path) == []


@pytest.mark.slow
def test_tokens_never_reach_prefect_results_artifacts_or_database(prefect_harness, replay, tmp_path, monkeypatch):
    from prefect.settings import get_current_settings

    from flows.generate_hardset import generate_hardset_flow

    with replay.fork(FaultConfig(replay=True, require_key=GROQ_KEY)) as proxy:
        monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
        monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
        monkeypatch.setenv("GROQ_BASE_URL", proxy.base_url)
        result = generate_hardset_flow(out=str(tmp_path / "flow-hs"), **plan_flow_params(), with_hardness=False)
    assert result["counts"]["accepted"] >= 1
    home = Path(os.environ["PREFECT_HOME"])
    db_url = str(get_current_settings().server.database.connection_url or "")
    roots = [tmp_path / "flow-hs", home]
    if ":///" in db_url:
        db = Path(db_url.split(":///", 1)[1])
        roots.append(db.parent)  # the database and its WAL files
    assert leaks(*roots) == []
