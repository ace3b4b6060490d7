"""Our process and the processes it starts: a stop signal in, no child left behind.

Stopping (``install_handlers``, called by the ``gliznet`` command).  The first SIGINT (Ctrl-C) or SIGTERM
(``docker stop``, systemd, Kubernetes, a Prefect cancellation) does one of two things:

* inside a loop that asks an LLM (``cooperative()``: the rolling window of ``gliznet.generation.window``), it
  only *requests* a stop (``stop_requested()``): the loop submits nothing more, hands over every answer that
  arrives within ``grace_s()`` seconds (its caller writes each to its checkpoint), abandons the rest and raises
  ``Interrupted`` with the counts;
* anywhere else (loading, building the dataset, training) it raises ``Interrupted`` at once, in the main thread.

A second signal always raises ``Interrupted`` at once (a second Ctrl-C during the grace stops without waiting).
An abandoned request is not cancelled on its own (an HTTP client cannot interrupt a request another thread is
waiting on); the command exits without waiting for it, which closes its connection, and a server that watches its
connections stops working on it (not measured here for llama-server).
``Interrupted`` is a ``KeyboardInterrupt``: ``except Exception`` does not swallow it, and ``finally`` blocks and
context managers (the folder lock, the embedded server) run as it unwinds.  The command prints one line and
exits ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).  The grace is ``GLIZNET_GRACE_S`` seconds (default
``DEFAULT_GRACE_S``).  Without ``install_handlers`` (the library used from Python) nothing changes: Ctrl-C is
Python's ``KeyboardInterrupt``.

Children (``spawn``).  A process we start (the embedded llama-server, a test's helper server) must not outlive
us, however we die.  On Linux ``spawn`` sets ``PR_SET_PDEATHSIG`` (SIGKILL) in the child before it execs, so the
kernel kills it when its parent dies, SIGKILL of the parent included.  The "parent" of that rule is the
*thread* that forked the child, so every child is forked by one daemon thread that lives as long as the
process (a server started from a worker thread that later ends would otherwise die with that thread).  The
child also gets its own session (``start_new_session``): a Ctrl-C typed in the terminal reaches only us, and
we stop the child ourselves (its owner's ``stop()``: SIGTERM to its process group, then SIGKILL) after the
answers in flight have arrived.  On other platforms (macOS, Windows) there is no such kernel rule:
``spawn`` starts the child the same way without it, and a child outlives an owner killed with SIGKILL (a
SIGINT / SIGTERM / normal exit still stops it through ``stop()`` and the ``atexit`` hook).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from queue import SimpleQueue
from typing import Any, Iterator

GRACE_ENV = "GLIZNET_GRACE_S"
DEFAULT_GRACE_S = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# -- 1. the stop -------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal.  ``kept``: calls answered and written to the checkpoint by this run
    (None when not known where it was raised); ``abandoned``: calls in flight given up; ``signum``."""

    def __init__(self, signum: int, kept: int | None = None, abandoned: int = 0, what: str | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.kept = kept
        self.abandoned = abandoned
        self.what = what  # a command that asks no LLM says what it kept instead (``gliznet train``)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        """The one line a command prints."""
        if self.what:
            return f"interrupted: {self.what}"
        if self.kept is None:  # raised outside a loop that counts its calls (a command that asks no LLM)
            return "interrupted: stopped before it finished; re-run the same command"
        return (f"interrupted: {self.kept or 0} calls answered and kept ({self.abandoned} abandoned); "
                "re-run the same command to resume")


def grace_s() -> float:
    """Seconds a stopping loop still waits for answers in flight: ``GLIZNET_GRACE_S`` or ``DEFAULT_GRACE_S``."""
    raw = os.environ.get(GRACE_ENV, "").strip()
    if not raw:
        return DEFAULT_GRACE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        from gliznet.errors import UserError

        raise UserError(f"{GRACE_ENV}={raw!r} is not a number of seconds >= 0: unset it for {DEFAULT_GRACE_S:g} s")
    return value


_state = {"signum": None, "cooperative": 0, "installed": False}


def stop_requested() -> int | None:
    """The signal number of a requested stop, or None."""
    return _state["signum"]


@contextmanager
def cooperative() -> Iterator[None]:
    """A section that polls ``stop_requested()`` (the LLM loops): a first signal inside it only requests a stop."""
    _state["cooperative"] += 1
    try:
        yield
    finally:
        _state["cooperative"] -= 1


def _on_signal(signum: int, frame: Any) -> None:
    first = _state["signum"] is None
    _state["signum"] = _state["signum"] or signum
    if first and _state["cooperative"] > 0:
        return  # the loop sees it within a fraction of a second, keeps what arrives in the grace
    raise Interrupted(_state["signum"])


def install_handlers() -> None:
    """SIGINT and SIGTERM stop the run as the module docstring says (main thread only; idempotent)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    _state["installed"] = True


@contextmanager
def stop_signals() -> Iterator[None]:
    """``install_handlers`` for the block, the earlier handlers back after it: a job inside a process that is not
    the ``gliznet`` command (a Prefect flow run) stops like the command while it asks its LLM."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    install_handlers()
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def reset() -> None:
    """Forget a requested stop (tests, and a process that runs a second job after an interruption)."""
    _state["signum"] = None


# -- 2. children that die with us -------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
_prctl = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
        _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _prctl.restype = ctypes.c_int
    except (OSError, AttributeError):  # no prctl (an unusual libc): children are stopped by stop() only
        _prctl = None


def dies_with_parent() -> bool:
    """Whether ``spawn``'s children are killed by the kernel when we die (Linux: ``PR_SET_PDEATHSIG``)."""
    return _prctl is not None


def _die_with(parent: int):
    def preexec() -> None:  # runs in the child between fork and exec: no locks, no imports
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the rule was set
            os._exit(1)

    return preexec


_spawn_queue: SimpleQueue = SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawn_loop() -> None:
    while True:
        args, kwargs, result = _spawn_queue.get()
        try:
            result.set_result(subprocess.Popen(args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            result.set_exception(err)


def spawn(args: list[str], **popen_kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(args, **popen_kwargs)`` in a new session, for a child that dies with this process
    (see the module docstring for what "dies with" means on each platform)."""
    global _spawner
    popen_kwargs.setdefault("start_new_session", True)
    if _prctl is None:
        return subprocess.Popen(args, **popen_kwargs)
    if "preexec_fn" in popen_kwargs:
        raise ValueError("spawn sets preexec_fn itself")
    popen_kwargs["preexec_fn"] = _die_with(os.getpid())
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawn_loop, name="gliznet-spawner", daemon=True)
            _spawner.start()
    result: Future = Future()
    _spawn_queue.put((args, popen_kwargs, result))
    return result.result()
