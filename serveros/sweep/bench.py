"""The sweep benchmark (issue 18, Must show 3): figures printed, never asserted.

:func:`sweep_benchmarks` runs one small sweep (:func:`bench_points`: Cheetah and Harvest, 100
and 1024-byte documents, 2 and 4 clients: 8 points) three ways and returns
:class:`serveros.bench.BenchResult` rows:

1. **bare**: :func:`serveros.experiments.paper.run_point` of each point in this process, one
   after the other, the documents' image built beforehand (not timed): the simulation alone.
2. **1 worker** and **2 workers**: the engine (:func:`serveros.sweep.engine.run_tasks`, no
   store) on a Dask ``LocalCluster`` of that many single-threaded worker processes, given to
   the engine by address as ``--scheduler`` gives one, timed from submission to the last
   result. Timed apart, as a sweep pays them once: the cluster's start-up, and the workers'
   warm-up (each builds the documents' image itself, as on a remote machine, and imports the
   servers: :func:`_warm`).

Printed: each wall time, the scaling ``1 worker / 2 workers`` (2.0 would be perfect on this
2-core machine), the engine's per-point overhead ``(1 worker - bare) / points``, the same for
the sweep's points at :data:`TINY_REQUESTS` requests (almost no simulation: the fixed part,
scheduling and pickling each task and its rows; the rest of the first figure grows with the
point's work, as a worker runs the same simulation a little slower than this process), and a
worker's warm-up. Each
time is the least of :data:`REPEATS` runs; the figures still vary with the machine's load: the
scaling's note gives the load average at the start (other processes on the two cores take a
second worker's core).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

from ..bench import BenchResult

__all__ = ["bench_points", "sweep_benchmarks", "BENCH_REQUESTS", "TINY_REQUESTS", "REPEATS"]

#: Requests per client of each benchmark point (short points: the overhead shows), and of
#: the tiny points whose overhead is the engine's fixed part.
BENCH_REQUESTS = 50
TINY_REQUESTS = 2
#: Each time is the least of this many runs: other jobs on the two cores only ever add time.
REPEATS = 2


def bench_points(*, requests: int = BENCH_REQUESTS, seed: int = 1) -> list:
    """The benchmark's sweep: Cheetah and Harvest x 100 and 1024 bytes x 2 and 4 clients over
    Ethernet, ``requests`` requests per client (:class:`serveros.experiments.paper.Point`).

    Raises
    ------
    ValueError
        For ``requests`` or ``seed`` not an integer >= 1.
    """
    from ..experiments import paper
    for name, v in (("requests", requests), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, not {v!r}")
    return [paper.Point(figures=("a",), server=s, doc_bytes=d, clients=c, requests=requests,
                        backend="model", seed=seed)
            for s in ("cheetah", "harvest") for d in (100, 1024) for c in (2, 4)]


def _bare(points: Sequence, sizes: tuple[int, ...], repeats: int = 1) -> float:
    """The least wall time of ``repeats`` runs of ``points`` in this process."""
    import tempfile
    from pathlib import Path

    from ..experiments import paper
    with tempfile.TemporaryDirectory(prefix="serveros-bench-") as tmp:
        image = paper.build_documents_image(Path(tmp) / "docs.img", sizes)
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for p in points:
                paper.run_point(p, image)
            best = min(best, time.perf_counter() - t0)
        return best


def _warm(sizes: tuple[int, ...], servers: tuple[str, ...]) -> None:
    """A worker's one-time work before its first point: the documents' image and the
    servers' modules (run on every worker by ``Client.run``)."""
    from ..experiments import paper
    from .tasks import documents_image
    documents_image(sizes)
    for s in servers:
        paper.server_factory(s)


def _on_cluster(tasks: Sequence, workers: int, repeats: int = 1
                ) -> tuple[float, float, float, list[str]]:
    """(start-up s, warm-up s, sweep s, the failed points' errors) of ``tasks`` on a
    LocalCluster of ``workers``: the warm-up builds each worker's documents' image and imports
    the servers (:func:`_warm`), so the sweep's time is the points' and the engine's (the
    least of ``repeats`` runs on the same cluster: nothing is kept between them)."""
    import logging

    from dask.distributed import Client, LocalCluster

    from .engine import run_tasks
    sizes = tasks[0].image
    servers = tuple(sorted({t.point.server for t in tasks}))
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        up = time.perf_counter() - t0
        with Client(cluster.scheduler_address) as client:
            t1 = time.perf_counter()
            client.run(_warm, sizes, servers)
            warm = time.perf_counter() - t1
        wall = math.inf
        for _ in range(repeats):
            t2 = time.perf_counter()
            outs = run_tasks(tasks, scheduler=cluster.scheduler_address)
            wall = min(wall, time.perf_counter() - t2)
    bad = [r.get("error", "") for o in outs for r in o.rows[:1] if r.get("status") == "failed"]
    return up, warm, wall, bad


def sweep_benchmarks(*, requests: int = BENCH_REQUESTS, repeats: int = REPEATS
                     ) -> list[BenchResult]:
    """The sweep benchmark's figures (see the module docstring); each time the least of
    ``repeats`` runs (keyword-only, like ``requests``).

    Raises
    ------
    ValueError
        For ``requests`` or ``repeats`` not an integer >= 1.
    RuntimeError
        If a point failed (the figures would not be of the same work).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, not {repeats!r}")
    from .tasks import Task
    points = bench_points(requests=requests)
    tiny = bench_points(requests=TINY_REQUESTS)
    sizes = tuple(sorted({p.doc_bytes for p in points}))
    tasks = [Task(point=p, image=sizes) for p in points]
    n = len(points)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bare = _bare(points, sizes, repeats)
    bare_tiny = _bare(tiny, sizes, repeats)
    # The workers (started after this) inherit the client's version: the benchmark stores
    # nothing, and a tree edited while it runs must not fail its points as another version.
    from .version import VERSION_ENV, code_version
    before = os.environ.get(VERSION_ENV)
    os.environ[VERSION_ENV] = code_version()
    try:
        up1, warm1, one, bad1 = _on_cluster(tasks, 1, repeats)
        up2, warm2, two, bad2 = _on_cluster(tasks, 2, repeats)
        *_, one_tiny, bad3 = _on_cluster([Task(point=p, image=sizes) for p in tiny], 1,
                                         repeats)
    finally:
        if before is None:
            os.environ.pop(VERSION_ENV, None)
        else:
            os.environ[VERSION_ENV] = before
    bad = bad1 + bad2 + bad3
    if bad:
        raise RuntimeError(f"{len(bad)} benchmark point(s) failed, so the times are not of the "
                           f"same work; the first: {bad[0]}")
    what = f"{n} points x {requests} requests/client, best of {repeats}"

    def apart(up: float, warm: float) -> str:
        return f"{what}; apart: cluster start-up {up:.1f} s, workers' warm-up {warm:.1f} s"
    return [
        BenchResult("sweep: bare run_point, in process", bare, "s", what),
        BenchResult("sweep: engine, 1 local worker", one, "s", apart(up1, warm1)),
        BenchResult("sweep: engine, 2 local workers", two, "s", apart(up2, warm2)),
        BenchResult("sweep: scaling, 1 worker / 2 workers", one / two, "x",
                    f"2.0 = perfect on 2 idle cores; load average {load:.1f} at the start "
                    f"(other processes share the cores)"),
        BenchResult("sweep: engine overhead per point", (one - bare) / n * 1000, "ms",
                    "(1 worker - bare) / points"),
        BenchResult(f"sweep: the same, {TINY_REQUESTS}-request points",
                    (one_tiny - bare_tiny) / n * 1000, "ms",
                    "its fixed part: scheduling, pickling the task and its rows (the rest "
                    "grows with the point's work)"),
        BenchResult("sweep: a worker's warm-up, once", warm1, "s",
                    "its documents' image and the servers' imports, before its first point"),
    ]


if __name__ == "__main__":          # python -m serveros.sweep.bench
    for r in sweep_benchmarks():
        print(f"{r.name:45s} {r.value:10.3f} {r.unit:3s} {r.note}")
