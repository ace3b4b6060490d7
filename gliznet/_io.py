"""Files, once: the JSONL reader, the atomic writers and the append-only checkpoint.

Reading JSONL (``read_jsonl``): lines are split on ``\\n`` only, blank lines are skipped, line numbers count
every line from 1.  The policy for a line that is not UTF-8 JSON is the same for every file gliznet reads:
one ``ValueError`` naming the option, the file and the line number, and the fix
(``--data runs/x.jsonl:7 is not JSON (Expecting value): fix or remove that line``).  Two kinds of file say
otherwise, explicitly:

* append-only logs (``Checkpoint``, the ``describe-labels`` output): a killed writer can leave a *torn last
  line* (no newline at its end).  ``torn_tail=True`` skips such a line when it does not decode; the
  checkpoint itself cuts it off the file and skips any other undecodable line too, counting it
  (``Checkpoint.unreadable``: the loop reports the count; it never stops a resume);
* rows to be curated (``gliznet.curation.importer``): ``on_bad_line`` hands the line to the caller, which
  accounts for it as an ``invalid_json`` rejection like any other refused candidate.

Writing: ``atomic_write_text`` / ``atomic_write_bytes`` / ``atomic_write_lines`` write a hidden temp file next
to the target, fsync it and rename it over the target (on failure the temp file is removed and the target
is untouched); ``replace_path`` renames a finished file or folder onto its final name.  ``disk_errors(folder)``
turns a full disk or a refused write inside it into one ``UserError`` line naming the path and the fix.

One writer per dataset folder (``FolderLock``): a run holds ``<folder>/.gliznet.lock`` (pid, host, start time,
command) under an exclusive ``flock`` for as long as it writes; a second run fails at once with one line naming
the holder.  A lock file whose holder is gone (same host, the ``flock`` is free) is stale: it is taken over and
the takeover is logged.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from gliznet.errors import UserError

FIX_LINE = "fix or remove that line"
log = logging.getLogger("gliznet")


# -- reading -----------------------------------------------------------------------------------------
def read_jsonl(source: str | os.PathLike | Traversable, option: str = "", *, torn_tail: bool = False,
               on_bad_line: Callable[[int, str, str], None] | None = None,
               errors: str = "strict") -> Iterator[tuple[int, Any]]:
    """``(line number, decoded value)`` of every non-blank line of ``source`` (a path or a package resource).

    A line that is not UTF-8 JSON raises one ``ValueError`` naming ``option`` (the CLI option the file came
    from, if any), the file, the line and the fix; see the module docstring for ``torn_tail`` and
    ``on_bad_line(number, line, error text)``.  ``errors`` is the UTF-8 decoding's (``"replace"``: bad bytes become
    U+FFFD instead of a bad line).
    """
    source = Path(source) if isinstance(source, (str, os.PathLike)) else source
    where = f"{option} {source}" if option else str(source)
    with source.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8", errors))
            except (ValueError, RecursionError) as err:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
                if torn_tail and not raw.endswith(b"\n"):
                    return  # a write cut short by a kill: the log ends before it
                if on_bad_line is None:
                    what = (f"is not UTF-8 ({err.reason} at byte {err.start})" if isinstance(err, UnicodeDecodeError)
                            else f"is not JSON ({getattr(err, 'msg', None) or type(err).__name__})")
                    raise UserError(f"{where}:{number} {what}: {FIX_LINE}") from None
                on_bad_line(number, raw.decode("utf-8", "replace").rstrip("\r\n"), str(err) or type(err).__name__)
                continue
            yield number, value


class Checkpoint:
    """Append-only JSONL log of finished calls.

    Each line is written with one ``write`` + flush + fsync. A process killed mid-write can leave a
    torn last line; ``load`` drops it (and truncates the file to the last complete line) so that
    call is simply asked again.  Any other line that does not decode (a disk error, a hand edit) is
    skipped and counted in ``unreadable``: its call is asked again too.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.unreadable = 0  # lines the last ``entries()`` skipped (besides a torn last line)

    def entries(self) -> list[dict]:
        """Every complete line, decoded, in file order (a torn last line is cut off the file first)."""
        self.unreadable = 0
        if not self.path.exists():
            return []
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - 1))
            torn = size > 0 and fh.read(1) != b"\n"
        if torn:  # forget the torn last line: the call will be asked again
            good_end = self.path.read_bytes().rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)

        def skipped(*bad) -> None:  # never fatal: the call is asked again, and the loop says how many
            self.unreadable += 1

        return [entry for _, entry in read_jsonl(self.path, on_bad_line=skipped)]

    def load(self, settles: Callable[[dict], bool] = lambda line: True) -> dict[int, dict]:
        """``{call index: line}``.  The first line of a call that ``settles`` it wins; a call with no such
        line maps to its last line (one that did not settle it, e.g. a call that never reached the LLM,
        which the loop asks again)."""
        lines: dict[int, dict] = {}
        for entry in self.entries():
            if not (isinstance(entry, dict) and isinstance(entry.get("call"), int)):
                self.unreadable += 1  # JSON, but not a call's line
                continue
            index = entry["call"]
            held = lines.get(index)
            if held is None or not settles(held):
                lines[index] = entry
        return lines

    def append(self, entry: dict) -> None:
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


# -- one writer per folder ----------------------------------------------------------------------------
LOCK_NAME = ".gliznet.lock"


class FolderBusy(UserError):
    """Another run holds the dataset folder."""


class FolderLock:
    """``<folder>/.gliznet.lock``: pid, host, start time and command of the run writing ``folder``.

    ``acquire()`` takes an exclusive, non-blocking ``flock`` on the file (the kernel drops it when the holder
    dies, however it dies) and writes the holder's details into it; ``release()`` deletes the file.  A busy
    lock raises ``FolderBusy`` at once, naming the holder and how to clear a stale lock.  A lock file left by
    a process that is gone (same host, ``flock`` free) is taken over and the takeover logged; one written on
    another host cannot be checked from here and is refused.  ``check()`` does the same test without taking
    the lock (the CLI runs it before starting an LLM server).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def holder(self) -> dict:
        """What the lock file says (``{}`` when absent, empty or unreadable)."""
        try:
            value = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _busy(self, holder: dict, elsewhere: bool = False) -> FolderBusy:
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started_at', '?')}"
               + (f": {holder['command']}" if holder.get("command") else ""))
        if elsewhere:
            return FolderBusy(f"{self.folder} is held by a run on another host ({who}): wait for it to finish; if it "
                              f"is no longer running, delete {self.path} and re-run")
        return FolderBusy(f"{self.folder} is being written by another run ({who}): wait for it to finish, or stop "
                          f"it; a lock whose process is gone is taken over by the next run (else delete {self.path})")

    def _open_locked(self) -> int:
        """An fd of the lock file holding its exclusive flock (``FolderBusy`` if another process holds it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._busy(self.holder()) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file its holder deleted between our open and our flock
                return fd
            os.close(fd)

    def _stale(self, holder: dict) -> dict | None:
        """The previous holder if the lock file names one (its flock is free, so it is gone), else None;
        ``FolderBusy`` if it was written on another host (its flock cannot be seen from here)."""
        if not holder:
            return None
        if holder.get("host") != socket.gethostname():
            raise self._busy(holder, elsewhere=True)
        return holder

    def check(self) -> None:
        """Raise ``FolderBusy`` if another run holds the folder; take nothing."""
        if not self.path.exists():
            return
        fd = self._open_locked()
        try:
            self._stale(self.holder())
        finally:
            os.close(fd)  # closing drops the flock

    def acquire(self) -> FolderLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FolderLock")
        fd = self._open_locked()
        try:
            stale = self._stale(self.holder())
            me = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode("utf-8"), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if stale:
            log.warning(f"took over the stale lock of {self.folder}: pid {stale.get('pid')} on {stale.get('host')} "
                        f"(started {stale.get('started_at')}) is no longer running")
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding the flock: no one can take a deleted file
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- settings files ----------------------------------------------------------------------------------
def read_settings_file(path: str | os.PathLike, fields: str, example: str) -> dict:
    """The mapping of a ``.json`` or ``.yaml`` / ``.yml`` settings file (``--config FILE`` of ``gliznet train`` and
    ``gliznet generate``); ``fields`` names the dataclass(es) whose fields its keys are, ``example`` shows one in
    the error lines.  Its keys are checked by the dataclasses."""
    import yaml

    path = Path(path)
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise UserError(f"--config {path} is not a .json or .yaml file: pass a file of {fields} fields such as "
                        f"{example}")
    if not path.is_file():
        raise UserError(f"--config {path} does not exist: pass a .json or .yaml file of {fields} fields")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"--config {path} does not parse ({problem}): fix the file") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path} must be a mapping of {fields} fields, e.g. {example}")
    return data


# -- disk errors -------------------------------------------------------------------------------------
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


@contextmanager
def disk_errors(folder: str | os.PathLike, option: str = "--out") -> Iterator[None]:
    """A full disk or a refused write inside the block becomes one ``UserError`` naming the path and the fix
    (what was already written stays: re-running the same command resumes); other errors pass unchanged."""
    try:
        yield
    except OSError as err:
        path = err.filename or folder
        if err.errno in NO_SPACE:
            raise UserError(f"no space left on the disk of {path} ({option} {folder}): free some space, or pass "
                            f"another {option}, then re-run the same command") from None
        if err.errno in NO_PERMISSION:
            raise UserError(f"cannot write {path} ({err.strerror}; {option} {folder}): make it writable, or pass "
                            f"another {option}, then re-run the same command") from None
        raise


# -- writing -----------------------------------------------------------------------------------------
def replace_path(src: Path, dst: Path) -> None:
    """Rename ``src`` onto ``dst`` (a file or a folder), never leaving a half-written ``dst``."""
    if dst.is_dir() and not dst.is_symlink():
        trash = dst.with_name(f".old-{dst.name}-{uuid.uuid4().hex[:8]}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def _atomic_write(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(path, [data])


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    _atomic_write(path, [text.encode("utf-8")])


def atomic_write_lines(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """Each string of ``lines`` (a JSON document, for JSONL) followed by a newline; streamed, not joined."""
    _atomic_write(path, ((line + "\n").encode("utf-8") for line in lines))


# -- 1. the dataset folder --------------------------------------------------------------------------
def load_triplets(data_dir: str):
    """The ``triplet`` DatasetDict of a dataset folder, or a ValueError saying how to get one."""
    from datasets import load_from_disk

    path = Path(data_dir) / "triplet"
    if not path.is_dir():
        raise UserError(f"--data {data_dir} is not a gliznet dataset folder (no triplet/): "
                        "run `gliznet generate` or `gliznet import` first")
    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"--data {data_dir}: triplet/ is not a saved dataset ({err}): "
                        "rebuild it with `gliznet generate` or `gliznet import`") from None
    for split in ("train", "test"):
        if split not in dataset:
            raise UserError(f"{path} has no {split!r} split: rebuild it with `gliznet generate` or `gliznet import`")
        missing = {"text", "labels", "not_labels"} - set(dataset[split].column_names)
        if missing:
            raise UserError(f"{path}[{split}] lacks columns {sorted(missing)}: rebuild it with `gliznet import`")
    return dataset


