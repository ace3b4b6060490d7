"""The rolling window both LLM loops run (``gliznet.generation.loop`` and ``gliznet.generation.describe``).

At most ``concurrency`` calls are in flight; a new one starts as soon as one finishes, in the order of
``items``.  Each result goes to ``on_result`` the moment its call finishes (the caller appends it to its
checkpoint before anything else, so a killed run keeps every answer it saw).  No call starts once
``keep_going()`` is False or ``items`` is spent; calls already in flight still finish and are handed over.
A call that raised ends the window: nothing new starts, the calls still in flight finish and their results
are handed over (an answer that was paid for is never dropped), then the first failure is re-raised.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


def rolling_window(items: Iterable[T], submit: Callable[[T], Future], on_result: Callable[[Any], None], *,
                   concurrency: int, keep_going: Callable[[], bool] = lambda: True) -> None:
    """Run ``submit(item)`` for the items, ``concurrency`` at a time (see the module docstring)."""
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency} must be >= 1")
    todo = iter(items)
    running: set[Future] = set()
    while True:
        while len(running) < concurrency and keep_going():
            item = next(todo, _END)
            if item is _END:
                break
            running.add(submit(item))
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
