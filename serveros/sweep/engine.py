"""The engine: every point a task on Dask's distributed scheduler, each finished point stored
by the client under its key.

:func:`run_tasks` takes the points (:class:`~serveros.sweep.tasks.Task`), reuses those the
store already holds, and runs the others:

- on a ``LocalCluster`` of ``workers`` single-threaded worker processes (default: one per
  core), or on an existing cluster (``scheduler="tcp://host:8786"``: a ``dask scheduler``
  and ``dask worker`` processes started by hand, on this machine or others);
- in this process when there is no scheduler and one worker or one point would do: no
  cluster's start-up for a small run (the same :func:`~serveros.sweep.tasks.run_task`).

Each task's Dask key is ``serveros-point-<key>``, so the scheduler runs a point once however
often it is submitted; a worker that dies mid-point loses its task and the scheduler runs it
again on another (``distributed.scheduler.allowed-failures`` deaths, default 3, make it a
``KilledWorker``). Only the client writes the store, as each result arrives, so a point is
stored once whatever happened to its workers, and a sweep interrupted anywhere resumes with the
points it had finished.

A point whose simulation raises is a *result* (its failed rows, :func:`paper.failed_rows`),
stored like any other: the same code fails the same way again. ``retry_failed`` runs stored
failures again. A point lost to the machinery (a worker killed too often, a worker running
another code version: with a store, every worker must run the client's code) is reported
failed but not stored, so the next run tries it again.
"""
from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

from .store import PointStore, point_key, point_params
from .tasks import Task, run_task
from .version import code_version

__all__ = ["Outcome", "run_tasks", "task_key", "default_workers", "DASK_KEY_PREFIX"]

log = logging.getLogger(__name__)

#: Prefix of a point's task key on the scheduler (the rest is its store key).
DASK_KEY_PREFIX = "serveros-point-"
#: Dask settings of the local cluster's processes. A point is pure Python on one thread, and
#: every periodic callback of a worker's event loop takes the interpreter lock from it: with
#: Dask's defaults (a loop health check every 20 ms, the statistical profiler every 10 ms, the
#: system monitor every 500 ms, the GIL monitor) a Cheetah point ran about 12 % slower in a
#: worker than in a plain process, 7-9 % with these (one point, 4.52-4.63 s against 4.24 s;
#: any thread waking every 10 ms costs a CPU-bound thread about 8 % here; what is left is not
#: yet found). None of them is used:
#: no dashboard, and a blocked loop is not our failure mode. An existing cluster
#: (``--scheduler``) keeps its own configuration.
LOCAL_CLUSTER_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
}


@dataclass(frozen=True)
class Outcome:
    """What became of one task.

    Attributes
    ----------
    task : Task
    key : str
        Its store key (:func:`task_key`).
    rows : list of dict
        Its rows (:func:`paper.run_point`'s, or failed rows).
    ran : bool
        Simulated by this call (False: taken from the store).
    stored : bool
        In the store now (False without a store, and for a point lost to the machinery).
    """

    task: Task
    key: str
    rows: list
    ran: bool
    stored: bool


def task_key(task: Task, version: str | None = None) -> str:
    """The store key of ``task``'s point under code ``version`` (default this code's)."""
    return point_key(task.point, task.image, version or code_version())


def default_workers() -> int:
    """One worker process per core (at least one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def _failed(point, error: BaseException | str, trace: str = "") -> list[dict]:
    from ..experiments import paper
    return paper.failed_rows(point, error, trace)


def _check(tasks: Sequence[Task], workers: int | None, scheduler: str | None) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, not {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("workers are the scheduler's when a scheduler is given: pass one "
                         "of workers and scheduler")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(f"scheduler must be an address such as tcp://127.0.0.1:8786, not "
                         f"{scheduler!r}")
    for t in tasks:
        if not isinstance(t, Task):
            raise TypeError(f"tasks must be Task objects, not {t!r}")


def run_tasks(tasks: Sequence[Task], *, workers: int | None = None,
              scheduler: str | None = None, store: PointStore | None = None,
              retry_failed: bool = False, progress: Callable[[Outcome], None] | None = None,
              cost: Callable[[Task], float] | None = None) -> list[Outcome]:
    """Run ``tasks`` (each point once) and return their outcomes in the order of ``tasks``.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the ``LocalCluster`` (default :func:`default_workers`); 1 (or a
        single point to run) runs in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler: its workers run the points.
    store : PointStore, optional
        Reuse the points it holds; store each point run here.
    retry_failed : bool
        Run stored failed points again (default: keep their stored failure).
    progress : callable, optional
        ``progress(outcome)`` as each point is reused or finishes (in completion order).
    cost : callable, optional
        A task's expected wall time, relative: on a cluster the longest are started first, so
        the workers finish together (in this process the tasks run in their order).

    Raises
    ------
    ValueError
        For a bad ``workers`` or ``scheduler``, both given, or two tasks with one key.
    """
    _check(tasks, workers, scheduler)
    version = code_version()
    keys = [task_key(t, version) for t in tasks]
    seen: set[str] = set()
    for t, k in zip(tasks, keys):
        if k in seen:
            raise ValueError(f"point {t.point.label} is given twice")
        seen.add(k)
    out: list[Outcome | None] = [None] * len(tasks)
    pending: list[int] = []
    for i, (t, k) in enumerate(zip(tasks, keys)):
        rec = store.get(k) if store is not None else None
        if rec is not None and not (retry_failed and _any_failed(rec["rows"])):
            out[i] = Outcome(t, k, rec["rows"], ran=False, stored=True)
            if progress:
                progress(out[i])
        else:
            pending.append(i)

    def finish(i: int, result: dict | None, error: BaseException | None = None,
               trace: str = "") -> None:
        t, k = tasks[i], keys[i]
        if error is not None:
            rows, keep = _failed(t.point, error, trace), False
        elif store is not None and result["code_version"] != version:
            rows, keep = _failed(t.point, f"the worker runs code version "
                                          f"{result['code_version']}, this client "
                                          f"{version}: install the same serveros on every "
                                          f"machine"), False
        else:
            rows, keep = result["rows"], True
        stored = False
        if keep and store is not None:
            store.put(k, {"code_version": version, "point": point_params(t.point, t.image),
                          "rows": rows})
            stored = True
        out[i] = Outcome(t, k, rows, ran=True, stored=stored)
        if progress:
            progress(out[i])

    if pending and scheduler is None and ((workers or default_workers()) == 1
                                          or len(pending) == 1):
        for i in pending:
            finish(i, run_task(tasks[i]))
    elif pending:
        if cost is not None:
            pending.sort(key=lambda i: -cost(tasks[i]))
        _run_distributed(tasks, keys, pending, finish, workers, scheduler)
    return out


def _any_failed(rows: list[dict]) -> bool:
    return any(r.get("status") == "failed" for r in rows)


def _run_distributed(tasks, keys, pending, finish, workers, scheduler) -> None:
    """Submit ``pending`` (longest first: highest priority) and finish each as it completes."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    t0 = time.perf_counter()
    # The scheduler and the client log their routine (workers joining, closing) at INFO:
    # this is a command's output, so only their warnings.
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    if scheduler is None:
        import dask

        with dask.config.set(LOCAL_CLUSTER_CONFIG):      # the workers start with a copy of it
            cluster = LocalCluster(n_workers=min(workers or default_workers(), len(pending)),
                                   threads_per_worker=1, processes=True,
                                   # no dashboard; the scheduler's HTTP routes on a free port
                                   # (default 8787: another cluster may have it)
                                   scheduler_kwargs={"dashboard": False,
                                                     "dashboard_address": ":0"},
                                   silence_logs=logging.ERROR)
    try:
        try:
            client = Client(cluster if cluster is not None else scheduler, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: "
                                  f"{e}") from e
        with client:
            log.info("cluster up in %.1f s: %s", time.perf_counter() - t0, client)
            futs = {}
            for rank, i in enumerate(pending):
                f = client.submit(run_task, tasks[i], key=DASK_KEY_PREFIX + keys[i],
                                  priority=len(pending) - rank, pure=False)
                futs[f] = i
            for f in as_completed(futs):
                i = futs[f]
                try:
                    result = f.result()
                except Exception as e:      # noqa: BLE001 - lost to the machinery, not stored
                    finish(i, None, e, traceback.format_exc())
                else:
                    finish(i, result)
                f.release()
    finally:
        if cluster is not None:
            cluster.close()
        quiet.setLevel(level)
