"""Where a flow's mapped tasks run: a thread pool in the flow's process, or a Dask cluster.

Generation fans out with Prefect task mapping (``generate_batch.map``); *where* the mapped task
runs is the flow's task runner, and nothing else in the flow changes with it:

* ``threads`` (default): ``prefect.task_runners.ThreadPoolTaskRunner(max_workers)`` — every task
  in the flow's own process.
* ``dask``: ``prefect_dask.DaskTaskRunner`` — tasks are pickled to Dask workers.  With an
  ``address`` (``tcp://scheduler:8786``) the flow connects to an existing cluster, so generation
  spreads over the machines its workers run on; without one the flow starts a temporary
  ``distributed.LocalCluster`` of ``n_workers`` worker *processes* for the run.

Defaults come from the environment, so a deployment or ``gliznet serve`` switches runner with no
code change: ``GLIZNET_TASK_RUNNER`` (``threads`` | ``dask``) and ``GLIZNET_DASK_ADDRESS``.

Workers of a remote cluster need the gliznet code importable (same version), the provider's
secrets in their own environment (``GROQ_API_KEY``: never shipped with a task), and, for the
Prefect cache to hit across machines, result storage all of them can reach.
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from gliznet.errors import UserError
from gliznet._extras import require

TASK_RUNNERS = ("threads", "dask")
RUNNER_ENV = "GLIZNET_TASK_RUNNER"
ADDRESS_ENV = "GLIZNET_DASK_ADDRESS"


def make_task_runner(kind: str | None = None, *, max_workers: int = 8, address: str | None = None,
                     n_workers: int = 2, cluster_kwargs: dict | None = None) -> TaskRunner:
    """The task runner called ``kind`` (default: ``$GLIZNET_TASK_RUNNER``, else ``threads``).

    ``threads`` -> ``ThreadPoolTaskRunner(max_workers)``.
    ``dask``    -> ``DaskTaskRunner(address=address or $GLIZNET_DASK_ADDRESS)`` when an address is
    known, else a ``LocalCluster`` of ``n_workers`` processes (``cluster_kwargs`` added/overriding).
    """
    kind = (kind or os.environ.get(RUNNER_ENV) or "threads").strip().lower()
    if kind == "threads":
        if max_workers < 1:
            raise UserError(f"max_workers={max_workers} is invalid: pass 1 or more threads")
        return ThreadPoolTaskRunner(max_workers=max_workers)
    if kind == "dask":
        DaskTaskRunner = require("pipeline", "prefect_dask", "the Dask task runner is not installed").DaskTaskRunner
        address = address or os.environ.get(ADDRESS_ENV) or None
        if address:
            return DaskTaskRunner(address=address)
        if n_workers < 1:
            raise UserError(f"n_workers={n_workers} is invalid: pass 1 or more Dask worker processes")
        kwargs = {"n_workers": n_workers, "processes": True, "threads_per_worker": max(1, max_workers // n_workers),
                  **(cluster_kwargs or {})}
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)
    raise UserError(f"task_runner={kind!r} is unknown: use one of {', '.join(TASK_RUNNERS)} "
                    f"(argument or ${RUNNER_ENV})")


__all__ = ["ADDRESS_ENV", "RUNNER_ENV", "TASK_RUNNERS", "make_task_runner"]
