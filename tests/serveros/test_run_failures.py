"""A point that fails does not stop ``serveros run``: it is a failed row (parameters, status,
error, traceback) in results.json/csv and the tables, the other points go on, and the command
exits 1 after writing every result. A server that counted internal errors is surfaced too."""
import csv
import json
import logging

import pytest

from serveros.cli import main
from serveros.experiments import paper
from sw.clients.testserver import StaticServer


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img", [100])


class _Crashing(StaticServer):
    """The static server with a bug in its start-up code."""

    async def start(self):
        await super().start()
        raise ZeroDivisionError("injected fault in the server's start-up")


def _second_server_crashes(monkeypatch):
    """The second server built (the 2-client point of ``--figure b``, run in order with
    jobs=1) raises; the others are the real static server."""
    made = []
    real = paper.server_factory

    def factory(name):
        real(name)                                   # still validates the name

        def make(host):
            made.append(host)
            return (_Crashing if len(made) == 2 else StaticServer)(host)
        return make
    monkeypatch.setattr(paper, "server_factory", factory)


def test_a_failing_point_is_a_failed_row_and_the_others_go_on(monkeypatch, image):
    _second_server_crashes(monkeypatch)
    pts = paper.plan_points(("b",), ["static"], requests=3, clients=(1, 2, 3), doc_sizes=())
    rows = paper.run_paper(pts, jobs=1, image_path=image)
    assert [r["clients"] for r in rows] == [1, 2, 3]
    good = [r for r in rows if r["clients"] != 2]
    assert all(not paper.failed(r) and "status" not in r for r in good)
    assert [r["ok"] for r in good] == [3, 9]
    bad = rows[1]
    assert paper.failed(bad) and bad["status"] == "failed"
    assert (bad["server"], bad["doc_bytes"], bad["clients"], bad["requests_per_client"],
            bad["figure"], bad["seed"]) == ("static", 100, 2, 3, "b", 1)
    assert bad["point_seed"] == pts[1].point_seed
    assert "ZeroDivisionError" in bad["error"] and "injected fault" in bad["error"]
    assert "Traceback" in bad["traceback"] and "in start" in bad["traceback"]
    assert "throughput_rps" not in bad


def test_good_rows_are_the_same_with_a_failing_point_beside_them(monkeypatch, image):
    pts = paper.plan_points(("b",), ["static"], requests=3, clients=(1, 2, 3), doc_sizes=())
    alone = paper.run_paper([pts[0], pts[2]], jobs=1, image_path=image)
    _second_server_crashes(monkeypatch)
    rows = paper.run_paper(pts, jobs=1, image_path=image)
    assert paper.rows_without_wall([rows[0], rows[2]]) == paper.rows_without_wall(alone)


def test_cli_run_reports_failed_points_writes_every_row_and_exits_1(monkeypatch, tmp_path,
                                                                    capsys):
    _second_server_crashes(monkeypatch)
    rc = main(["run", "--servers", "static", "--figure", "b", "--requests", "2", "--jobs", "1",
               "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "FAILED" in out and "6 points (1 failed)" in out
    assert "Traceback" not in out + err
    assert "point static 100 B x2" in err and "ZeroDivisionError" in err
    assert "1 of 6 points failed" in err and str(tmp_path / "results.json") in err
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["clients"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.get("status") for r in rows] == [None, "failed", None, None, None, None]
    assert "ZeroDivisionError" in rows[1]["traceback"]
    with (tmp_path / "results.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [t["status"] for t in table] == ["ok", "failed", "ok", "ok", "ok", "ok"]
    assert table[1]["throughput_rps"] == "" and "ZeroDivisionError" in table[1]["error"]
    assert float(table[0]["throughput_rps"]) > 0
    assert (tmp_path / "figure_b.png").exists()


class _CountsInternalErrors(StaticServer):
    """A server that caught two exceptions in its own code, logged and counted them (as NCSA
    does: ``internal_errors``), and kept serving."""

    async def start(self):
        await super().start()
        for _ in range(2):
            try:
                {}["missing"]
            except KeyError:
                logging.getLogger("sw.test").error("internal error serving", exc_info=True)

    def stats(self):
        return dict(super().stats(), internal_errors=2)


def test_internal_errors_counted_by_the_server_mark_the_row(monkeypatch, image):
    monkeypatch.setattr(paper, "server_factory", lambda name: _CountsInternalErrors)
    pt = paper.plan_points(("b",), ["static"], requests=2, clients=(1,), doc_sizes=())[0]
    r, = paper.run_paper([pt], jobs=1, image_path=image)
    assert r["ok"] == 2 and r["throughput_rps"] > 0            # the measurement is kept
    assert paper.failed(r) and r["internal_errors"] == 2
    assert "2 internal error" in r["error"]
    assert r["traceback"].count("KeyError: 'missing'") == 2


@pytest.mark.hdl
def test_waves_run_writes_one_waveform_per_point(monkeypatch, tmp_path, image):
    """``SERVEROS_WAVES=1`` with the card's RTL: every point writes its own VCDs (two worker
    processes never share one file), in a folder named by the point, one per RTL device."""
    from serveros.rtl import simulator_missing
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("SERVEROS_WAVES", "1")
    pts = [paper.Point(("b",), "static", 100, c, 1, "verilator", 1) for c in (1, 2)]
    rows = paper.run_paper(pts, jobs=2, image_path=image, waves_dir=tmp_path / "waves")
    assert [r["ok"] for r in rows] == [1, 2]
    for p in pts:
        vcd = paper.point_waves(p, tmp_path / "waves") / "server_le0.vcd"
        assert vcd.parent.name == p.file_stem and "$enddefinitions" in vcd.read_text()
