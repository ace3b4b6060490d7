"""What each stage of a run cost: wall seconds and memory, for the manifest's ``timings`` section.

``StageTimer`` measures named stages (``with timer.stage("dedup"): ...``) in the order they run.  After each
stage it notes the stage's wall seconds, the process's resident memory now (``rss_mib``, from
``/proc/self/statm``; ``None`` where there is none) and its peak so far (``peak_rss_mib``, ``getrusage``'s
``ru_maxrss``: the high-water mark of the whole process, so the first stage whose peak jumps is the one that
set it).  ``report()`` is the JSON-able section: ``{"stages": [...], "seconds": total, "peak_rss_mib": ...}``.

Timings describe one run on one machine; they are never part of the dataset's fingerprint.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from typing import Iterator

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def peak_rss_mib() -> float:
    """The process's peak resident memory so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS; never below the
    resident memory now, which the kernel's high-water mark can trail by a few pages)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1), rss_mib() or 0.0)


def rss_mib() -> float | None:
    """The process's resident memory now, MiB (``None`` without ``/proc``)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return round(int(fh.read().split()[1]) * _PAGE / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError):
        return None


class StageTimer:
    """Wall seconds and memory of named stages, in the order they ran (see the module docstring)."""

    def __init__(self) -> None:
        self.stages: list[dict] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (noted also when the block raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages.append({"stage": name, "seconds": round(time.perf_counter() - start, 3),
                                "rss_mib": rss_mib(), "peak_rss_mib": peak_rss_mib()})

    def report(self) -> dict:
        """The manifest's ``timings``: every stage, the total seconds and the peak resident memory so far."""
        return {"stages": [dict(s) for s in self.stages],
                "seconds": round(sum(s["seconds"] for s in self.stages), 3),
                "peak_rss_mib": peak_rss_mib()}
