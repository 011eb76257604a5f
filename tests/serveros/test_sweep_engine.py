"""The sweep engine: stored points are never run twice, failures are kept, rows do not depend
on the number of workers, and ``serveros sweep`` on the command line."""
from __future__ import annotations

import json

import pytest

from serveros.cli import main
from serveros.experiments import paper
from serveros.sweep.runner import run_sweep
from serveros.sweep.spec import parse_sweep
from serveros.sweep.store import PointStore
from sw.clients.testserver import StaticServer

STATIC = """\
[software]
server = "static"

[workload]
clients = [1, 2]
requests = 2
"""


@pytest.fixture(autouse=True)
def _version(monkeypatch):
    """A fixed code version: other engineers' edits to the tree during a test must not make
    its points new ones."""
    monkeypatch.setenv("SERVEROS_CODE_VERSION", "test-sweep-engine")


def _ran(res):
    return (res.points, res.ran, res.reused, res.failed)


def test_a_rerun_runs_no_point_and_a_new_value_runs_only_the_new_points(tmp_path):
    first = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(first) == (2, 2, 0, 0)
    again = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(again) == (2, 0, 2, 0)
    assert again.rows == first.rows                     # wall_seconds too: the stored rows
    more = run_sweep(parse_sweep(STATIC.replace("[1, 2]", "[1, 2, 3]")), tmp_path, workers=1)
    assert _ran(more) == (3, 1, 2, 0)
    assert [r["clients"] for r in more.rows] == [1, 2, 3] and more.rows[:2] == first.rows
    store = PointStore(tmp_path)
    assert len(store.keys()) == 3 and len(store.log()) == 3
    assert {r["key"] for r in more.rows} == set(store.keys())
    assert all(r["code_version"] == "test-sweep-engine" and r["figure"] == "sweep"
               for r in more.rows)


def test_another_code_version_runs_the_points_again(tmp_path, monkeypatch):
    run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    monkeypatch.setenv("SERVEROS_CODE_VERSION", "test-sweep-engine-2")
    res = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(res) == (2, 2, 0, 0) and len(PointStore(tmp_path).keys()) == 4


class _Crashing(StaticServer):
    async def start(self):
        raise ZeroDivisionError("injected fault in the server's start-up")


def test_a_failed_point_is_stored_and_run_again_only_when_asked(tmp_path, monkeypatch):
    real = paper.server_factory
    monkeypatch.setattr(paper, "server_factory",
                        lambda name: (real(name), _Crashing)[1])
    bad = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(bad) == (2, 2, 0, 2)
    assert all(paper.failed(r) and "ZeroDivisionError" in r["error"] for r in bad.rows)
    monkeypatch.setattr(paper, "server_factory", real)
    kept = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(kept) == (2, 0, 2, 2)
    retried = run_sweep(parse_sweep(STATIC), tmp_path, workers=1, retry_failed=True)
    assert _ran(retried) == (2, 2, 0, 0) and [r["ok"] for r in retried.rows] == [2, 4]
    log = PointStore(tmp_path).log()
    assert [e["status"] for e in log] == ["failed", "failed", "ok", "ok"]


def test_rows_are_the_same_with_one_and_with_two_workers(tmp_path):
    text = ("[hardware]\nnetwork = [\"ethernet\", \"an2\"]\n[software]\nserver = \"cheetah\"\n"
            "[workload]\nclients = 2\nrequests = 4\ndoc_bytes = [100, 1024]\n")
    one = run_sweep(parse_sweep(text), tmp_path / "one", workers=1)
    two = run_sweep(parse_sweep(text), tmp_path / "two", workers=2)
    assert _ran(one) == _ran(two) == (4, 4, 0, 0)
    assert paper.rows_without_wall(one.rows) == paper.rows_without_wall(two.rows)


def test_a_sweep_point_gives_the_rows_of_the_same_serveros_run_point(tmp_path):
    """A sweep's point is the paper's point but for its figure: the same seed, image and
    measurements (its clients' longer watchdog never fires)."""
    text = "[software]\nserver = \"cheetah\"\n[workload]\nclients = 2\nrequests = 5\n"
    sweep, = run_sweep(parse_sweep(text), tmp_path, workers=1).rows
    pt = paper.plan_points(("b",), ["cheetah"], requests=5, clients=(2,))
    run, = paper.run_paper(pt, jobs=1)
    drop = {"wall_seconds", "figure", "key", "code_version"}
    assert {k: v for k, v in sweep.items() if k not in drop} == \
        {k: v for k, v in run.items() if k not in drop}


def test_cli_sweep_writes_its_tables_and_refuses_a_bad_file_naming_the_line(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text(STATIC)
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--out", str(out), "--workers", "1"]) == 0
    assert "2 points: 2 run, 0 from" in capsys.readouterr().out
    for name in ("results.json", "results.csv", "results.parquet"):
        assert (out / name).is_file()
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["clients"] for r in rows] == [1, 2]
    assert main(["sweep", str(f), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("(stored)") == 2
    f.write_text(STATIC + "doc_bytes = -1\n")
    assert main(["sweep", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:7: workload.doc_bytes: must be" in err and "Traceback" not in err
    assert main(["sweep", str(f), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2


def test_the_engine_refuses_a_point_twice_and_workers_with_a_scheduler():
    from serveros.sweep.engine import run_tasks
    from serveros.sweep.tasks import Task
    p = paper.Point(("b",), "static", 100, 1, 1, "model", 1)
    with pytest.raises(ValueError, match="given twice"):
        run_tasks([Task(p, (100,)), Task(p, (100,))])
    with pytest.raises(ValueError, match="one of workers and scheduler"):
        run_tasks([Task(p, (100,))], workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="workers must be"):
        run_tasks([Task(p, (100,))], workers=0)


def test_a_stored_file_cut_short_counts_as_absent_and_is_run_again(tmp_path):
    first = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    store = PointStore(tmp_path)
    path = store.path(first.rows[0]["key"])
    path.write_text(path.read_text()[:40])
    again = run_sweep(parse_sweep(STATIC), tmp_path, workers=1)
    assert _ran(again) == (2, 1, 1, 0)
    assert paper.rows_without_wall(again.rows) == paper.rows_without_wall(first.rows)
    assert not list((tmp_path / "points").glob(".*.tmp"))      # no temporary file left
