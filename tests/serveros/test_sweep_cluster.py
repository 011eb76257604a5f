"""Must show (issue 18): a real Dask scheduler and two workers, started as separate processes
on localhost (``dask scheduler``, ``dask worker``), run a sweep through ``--scheduler``; one
worker is killed while it runs a point, and every point is still run and stored exactly once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serveros.experiments import paper
from serveros.sweep.runner import run_sweep
from serveros.sweep.spec import parse_sweep
from serveros.sweep.store import PointStore

VERSION = "test-sweep-cluster"
#: Six real points of about a second each (Cheetah, a few clients and requests): long enough
#: that a worker is busy with one when the first finishes.
SWEEP = """\
[hardware]
network = ["ethernet", "an2"]

[software]
server = "cheetah"

[workload]
doc_bytes = [100, 1024, 10240]
clients = 3
requests = 12
"""


def _dask(*args: str, log: Path) -> subprocess.Popen:
    """``dask <args>`` as a process of its own (the venv's ``dask`` command), its output to
    ``log``, with the fixed code version in its environment."""
    exe = Path(sys.executable).with_name("dask")
    env = dict(os.environ, SERVEROS_CODE_VERSION=VERSION)
    return subprocess.Popen([str(exe), *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _wait(what: str, ok, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = ok()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path):
    """A scheduler (on a free port: it writes its address to a file) and two single-threaded
    workers without a nanny, so the process a test kills is the worker itself. Yields
    ``(address, {worker name: Popen})``; every process is ended at the end."""
    if not Path(sys.executable).with_name("dask").exists():
        pytest.skip("the dask command is not installed")
    sched_file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(sched_file), log=tmp_path / "scheduler.log")]
    try:
        _wait("the scheduler's file", lambda: sched_file.exists() and sched_file.stat().st_size)
        address = json.loads(sched_file.read_text())["address"]
        workers = {}
        for name in ("wa", "wb"):
            workers[name] = _dask("worker", address, "--nthreads", "1", "--no-nanny",
                                  "--no-dashboard", "--name", name, "--host", "127.0.0.1",
                                  log=tmp_path / f"{name}.log")
            procs.append(workers[name])
        yield address, workers
    finally:
        # the workers first (each says goodbye to the scheduler), then the scheduler
        for group in (procs[1:], procs[:1]):
            for p in group:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in group:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def test_a_worker_killed_mid_sweep_loses_no_point_and_stores_none_twice(cluster, tmp_path,
                                                                       monkeypatch):
    from dask.distributed import Client

    address, workers = cluster
    monkeypatch.setenv("SERVEROS_CODE_VERSION", VERSION)
    sweep = parse_sweep(SWEEP)
    killed = {}
    with Client(address, timeout="30s") as watch:
        def two_workers():
            info = watch.scheduler_info()["workers"]
            return len(info) == 2 and info
        info = _wait("two workers", two_workers)
        addr = next(a for a, w in info.items() if w["name"] == "wa")
        victim = workers["wa"]
        # the process we kill is the worker itself (no nanny between)
        assert watch.run(os.getpid, workers=[addr]) == {addr: victim.pid}

        def progress(sp, outcome):
            if killed:
                return
            # the first point is done; kill wa once it is running another point
            busy = _wait("wa to run a point", lambda: watch.processing([addr]).get(addr))
            killed["keys"] = list(busy)
            victim.kill()
            victim.wait(timeout=20)

        res = run_sweep(sweep, tmp_path / "out", scheduler=address, progress=progress)
        def times_sent(keys, dask_scheduler=None) -> dict:
            """On the scheduler (a nested function: cloudpickle sends it by value): how
            many times each of ``keys`` went to a worker."""
            return {k: sum(1 for t in dask_scheduler.transition_log
                           if t.key == k and t.finish == "processing") for k in keys}
        # how often the scheduler sent each point wa held to a worker
        sent = watch.run_on_scheduler(times_sent, killed["keys"])
    assert killed and victim.returncode == -signal.SIGKILL
    assert max(sent.values()) == 2, sent            # run again after wa died
    store = PointStore(tmp_path / "out")
    log = [e["key"] for e in store.log()]
    assert (res.points, res.ran, res.failed) == (6, 6, 0)
    assert sorted(log) == sorted(set(log)) == store.keys()          # each key stored once
    assert sorted(r["key"] for r in res.rows) == store.keys()        # each row once
    assert not any(paper.failed(r) for r in res.rows)
    # the point wa was running when it died was run again (by wb) and stored once
    lost = [k.removeprefix("serveros-point-") for k in killed["keys"]]
    assert all(log.count(k) == 1 for k in lost)
    # rerunning the finished sweep runs no point
    again = run_sweep(sweep, tmp_path / "out", scheduler=address)
    assert (again.ran, again.reused) == (0, 6)
    assert paper.rows_without_wall(again.rows) == paper.rows_without_wall(res.rows)
    # serveros run on the same cluster (the worker left): the rows of a run in this process
    pts = paper.plan_points(("b",), ["static"], requests=2, clients=(1, 2, 3))
    there = paper.run_paper(pts, scheduler=address)
    assert paper.rows_without_wall(there) == paper.rows_without_wall(paper.run_paper(pts, jobs=1))
