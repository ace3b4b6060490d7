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

Stopping (``gliznet._process``).  The window is a cooperative section: a first SIGINT / SIGTERM only requests a
stop, seen within ``POLL_S``.  Then nothing new starts, every result that arrives within ``grace_s()`` seconds is
handed over, the futures still running are abandoned (cancelled where not yet started) and ``Interrupted`` is
raised with ``kept`` (results handed over by this window) and ``abandoned``.  A second signal raises at once.
The calls run on ``call_pool``: leaving it by an exception does not wait for the calls still in flight.
"""

from __future__ import annotations

import logging
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TypeVar

from gliznet._process import Interrupted, cooperative, grace_s, stop_requested

T = TypeVar("T")
log = logging.getLogger("gliznet")
POLL_S = 0.2  # how often a waiting window looks for a requested stop


@contextmanager
def call_pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """The threads the LLM calls run on.  Left normally, it waits for its threads; left by an exception (an
    interruption, a failure) it cancels what has not started and returns at once: a call still waiting for
    its answer is abandoned, not waited for."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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
    handed = 0

    def hand_over(done: Iterable[Future]) -> list[Future]:
        """``on_result`` for each finished future that did not raise; returns those that raised."""
        nonlocal handed
        failures = []
        for future in done:
            if future.exception() is not None:
                failures.append(future)
            else:
                on_result(future.result())
                handed += 1
        return failures

    def collect(until: float | None) -> None:
        """Hand over what finishes until ``running`` is empty or ``until`` (monotonic) passes."""
        nonlocal running
        while running and (until is None or time.monotonic() < until):
            if until is None and stop_requested():
                until = time.monotonic() + grace_s()
            wait_s = POLL_S if until is None else max(0.0, min(POLL_S, until - time.monotonic()))
            done, running = wait(running, timeout=wait_s, return_when=FIRST_COMPLETED)
            hand_over(done)

    def stop(signum: int, drained: bool = False) -> Interrupted:
        if not drained:
            if running:
                log.warning(f"stopping ({signal.Signals(signum).name}): waiting up to {grace_s():g} s for the "
                            f"{len(running)} calls in flight (GLIZNET_GRACE_S); press Ctrl-C again to stop at once")
            collect(time.monotonic() + grace_s())
        for future in running:
            future.cancel()
        return Interrupted(signum, kept=handed, abandoned=len(running))

    with cooperative():
        try:
            while True:
                if stop_requested():
                    raise stop(stop_requested())
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
                    if stop_requested():  # asked while the last calls finished: still a stop
                        raise Interrupted(stop_requested(), kept=handed)
                    return
                done, running = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                failures = hand_over(done)
                if failures:
                    collect(None)  # drain: the others finish and are handed over (a stop cuts it to the grace)
                    if stop_requested():
                        raise stop(stop_requested(), drained=True)
                    raise failures[0].exception()
        except Interrupted as stopped:
            if stopped.kept is None:  # a second signal, raised in the middle: count what we have
                stopped.kept, stopped.abandoned = handed, len(running)
            raise


_END = object()
