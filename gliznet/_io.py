"""Files, once: the atomic writer, the JSONL reader and the append-only checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path


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
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):  # torn last line: forget it, the call will be asked again
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
        entries = []
        for raw in data[:good_end].splitlines():
            try:
                entries.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # cannot happen with whole-line writes; never fatal
        return entries

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


def _replace(src: Path, dst: Path) -> None:
    """Rename ``src`` onto ``dst`` (a file or a folder), never leaving a half-written ``dst``."""
    if dst.is_dir() and not dst.is_symlink():
        trash = dst.with_name(f".old-{dst.name}-{uuid.uuid4().hex[:8]}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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


