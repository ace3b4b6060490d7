"""Files, once: the JSONL reader, the atomic writers and the append-only checkpoint.

Reading JSONL (``read_jsonl``): lines are split on ``\\n`` only, blank lines are skipped, line numbers count
every line from 1.  The policy for a line that is not UTF-8 JSON is the same for every file gliznet reads:
one ``ValueError`` naming the option, the file and the line number, and the fix
(``--data runs/x.jsonl:7 is not JSON (Expecting value): fix or remove that line``).  Two kinds of file say
otherwise, explicitly:

* append-only logs (``Checkpoint``, the ``describe-labels`` output): a killed writer can leave a *torn last
  line* (no newline at its end).  ``torn_tail=True`` skips such a line when it does not decode; the
  checkpoint itself cuts it off the file and skips any other undecodable line too (it never stops a resume);
* rows to be curated (``gliznet.curation.importer``): ``on_bad_line`` hands the line to the caller, which
  accounts for it as an ``invalid_json`` rejection like any other refused candidate.

Writing: ``atomic_write_text`` / ``atomic_write_bytes`` / ``atomic_write_lines`` write a hidden temp file next
to the target, fsync it and rename it over the target (on failure the temp file is removed and the target
is untouched); ``replace_path`` renames a finished file or folder onto its final name.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

FIX_LINE = "fix or remove that line"


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
                    raise ValueError(f"{where}:{number} {what}: {FIX_LINE}") from None
                on_bad_line(number, raw.decode("utf-8", "replace").rstrip("\r\n"), str(err) or type(err).__name__)
                continue
            yield number, value


class Checkpoint:
    """Append-only JSONL log of finished calls.

    Each line is written with one ``write`` + flush + fsync. A process killed mid-write can leave a
    torn last line; ``load`` drops it (and truncates the file to the last complete line) so that
    call is simply asked again.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def entries(self) -> list[dict]:
        """Every complete line, decoded, in file order (a torn last line is cut off the file first)."""
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
        # cannot happen with whole-line writes; never fatal: the call is asked again
        return [entry for _, entry in read_jsonl(self.path, on_bad_line=lambda *bad: None)]

    def load(self) -> dict[int, dict]:
        """``{call index: line}``; the first line of a call wins."""
        lines: dict[int, dict] = {}
        for entry in self.entries():
            lines.setdefault(int(entry["call"]), entry)
        return lines

    def append(self, entry: dict) -> None:
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


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
        raise ValueError(f"--data {data_dir} is not a gliznet dataset folder (no triplet/): "
                         "run `gliznet generate` or `gliznet import` first")
    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"--data {data_dir}: triplet/ is not a saved dataset ({err}): "
                         "rebuild it with `gliznet generate` or `gliznet import`") from None
    for split in ("train", "test"):
        if split not in dataset:
            raise ValueError(f"{path} has no {split!r} split: rebuild it with `gliznet generate` or `gliznet import`")
        missing = {"text", "labels", "not_labels"} - set(dataset[split].column_names)
        if missing:
            raise ValueError(f"{path}[{split}] lacks columns {sorted(missing)}: rebuild it with `gliznet import`")
    return dataset


