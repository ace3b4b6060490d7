"""The rolling window both LLM loops run (``gliznet.generation.loop`` and ``gliznet.generation.describe``).

At most ``concurrency`` calls are in flight; a new one starts as soon as one finishes, in the order of
``items``.  Each result goes to ``on_result`` the moment its call finishes (the caller appends it to its
checkpoint before anything else, so a killed run keeps every answer it saw).  No call starts once
``keep_going()`` is False or ``items`` is spent; calls already in flight still finish and are handed over.
A call that raised ends the window: nothing new starts, the calls still in flight finish and their results
are handed over (an answer that was paid for is never dropped), then the first failure is re-raised.

Chunks (``submit_chunk``, ``chunk`` > 1): the items that fill the free slots are handed over ``chunk`` at a time
(the last group of a fill may be smaller), ``submit_chunk(items)`` returning one future per item; an orchestrator
whose unit of work costs more than a call (a Prefect task run) runs several calls in one.  Everything else is
the same: at most ``concurrency`` items in flight, each result handed over as its future finishes.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


def rolling_window(items: Iterable[T], submit: Callable[[T], Future] | None, on_result: Callable[[Any], None], *,
                   concurrency: int, keep_going: Callable[[], bool] = lambda: True, chunk: int = 1,
                   submit_chunk: Callable[[list[T]], list[Future]] | None = None) -> None:
    """Run ``submit(item)`` for the items, ``concurrency`` at a time, or ``submit_chunk`` on ``chunk`` items at a
    time (see the module docstring)."""
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency} must be >= 1")
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    if submit_chunk is None:
        if submit is None:
            raise ValueError("rolling_window needs submit or submit_chunk")
        submit_chunk, chunk = (lambda group: [submit(group[0])]), 1
    todo = iter(items)
    running: set[Future] = set()
    while True:
        fresh: list = []
        while len(running) + len(fresh) < concurrency and keep_going():
            item = next(todo, _END)
            if item is _END:
                break
            fresh.append(item)
            if len(fresh) == chunk:
                running.update(submit_chunk(fresh))
                fresh = []
        if fresh:
            running.update(submit_chunk(fresh))
        if not running:
            return
        done, running = wait(running, return_when=FIRST_COMPLETED)
        failures = [future for future in done if future.exception() is not None]
        for future in done:
            if future not in failures:
                on_result(future.result())
        if failures:
            for future in wait(running).done:  # drain: the others finish and are handed over
                if future.exception() is None:
                    on_result(future.result())
            raise failures[0].exception()


_END = object()
