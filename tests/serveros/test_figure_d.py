"""Figure d (beyond the paper): Cheetah with ASHs and ILP added one at a time. The plan's
variants, networks and sizes, the planned hardware pipes, the new row fields and CSV columns,
the plot from synthetic rows, the command's parsing, and a short real run of two points."""
import json

import pytest

from serveros.cli import main
from serveros.experiments import figure_c, figure_d, paper
from serveros.plots import plot_figure
from sw.cheetah import variant

PNG = b"\x89PNG\r\n\x1a\n"


def test_plan_is_every_measured_variant_on_both_networks_at_both_sizes():
    pts = paper.plan_points(("d",), ["harvest"], requests=20)    # --servers does not apply
    measured = figure_d.measured_variants()
    assert [v.spec for v in measured] == ["cheetah", "cheetah@+ash", "cheetah@+ilp.no-ash",
                                          "cheetah@+hwilp.no-ash.no-ilp", "cheetah@+ilp",
                                          "cheetah@+hwilp"]      # hwilp exists: none planned
    assert len(pts) == len(measured) * len(figure_c.NETWORKS) * len(figure_d.DOC_SIZES)
    assert {p.server for p in pts} == {v.spec for v in measured}
    assert {p.network for p in pts} == {"ethernet", "an2"}
    assert {(p.doc_bytes, p.clients) for p in pts} == {(1024, 8), (102400, 8)}
    assert all(p.figures == ("d",) and p.requests == 20 for p in pts)
    assert len({p.file_stem for p in pts}) == len(pts)
    # Every variant draws the paper Cheetah's numbers, which are figure c's Cheetah point's.
    c = {(p.doc_bytes, p.clients): p.point_seed
         for p in paper.plan_points(("c",), ["cheetah"], requests=20)}
    assert all(p.point_seed == c[(p.doc_bytes, p.clients)] for p in pts)
    only = paper.plan_points(("d",), ["cheetah"], networks="an2", combos_d=[(0, 1)])
    assert {(p.network, p.doc_bytes, p.clients) for p in only} == {("an2", 0, 1)}
    with pytest.raises(ValueError, match="figure-d point"):
        paper.plan_points(("d",), ["cheetah"], combos_d=[(1024,)])


def test_planned_variants_are_those_cheetah_does_not_know_yet():
    for v in figure_d.VARIANTS:
        try:
            variant(v.spec.partition("@")[2] or "cheetah")
            known = True
        except ValueError:
            known = False
        assert figure_d.variant_available(v) == known
    # The hardware pipes are in the list, planned until sw.cheetah has the switch.
    hw = [v for v in figure_d.VARIANTS if "hwilp" in v.spec]
    assert hw and all(v in figure_d.planned_variants() or v in figure_d.measured_variants()
                      for v in hw)
    assert not {v.spec for v in figure_d.planned_variants()} & {
        p.server for p in paper.plan_points(("d",), ["cheetah"])}


@pytest.mark.parametrize("server, on", [("cheetah", []), ("cheetah@+ash", ["ash"]),
                                        ("cheetah@+ilp.no-ash", ["ilp"]),
                                        ("cheetah@+ilp", ["ash", "ilp"])])
def test_mechanisms_name_the_switches_on(server, on):
    assert figure_d.mechanisms_of(server) == on
    assert figure_d.variant_index(server) < len(figure_d.VARIANTS)


def test_mechanisms_refuse_another_server():
    with pytest.raises(ValueError, match="ncsa"):
        figure_d.mechanisms_of("ncsa")
    assert figure_d.variant_index("ncsa") == len(figure_d.VARIANTS)


def test_fields_are_busy_cycles_per_request():
    f = figure_d.figure_d_fields(server="cheetah@+ash", ok_requests=4, idle="idle",
                                 cycles_by_category={"idle": 1000.0, "protocol": 400.0,
                                                     "kernel": 40.0})
    assert f == {"mechanisms": ["ash"], "cpu_cycles_per_request": 110.0,
                 "cpu_cycles_per_request_breakdown": {"kernel": 10.0, "protocol": 100.0}}
    z = figure_d.figure_d_fields(server="cheetah", ok_requests=0, idle="idle",
                                 cycles_by_category={"idle": 5.0})
    assert z["cpu_cycles_per_request"] is None and z["cpu_cycles_per_request_breakdown"] == {}


def _row(server, network, size, rps, breakdown, clients=8):
    return {"figure": "d", "server": server, "network": network, "doc_bytes": size,
            "clients": clients, "throughput_rps": rps, "failed": 0,
            "mechanisms": figure_d.mechanisms_of(server),
            "cpu_cycles_per_request": sum(breakdown.values()),
            "cpu_cycles_per_request_breakdown": breakdown}


def _synthetic_rows():
    rows = []
    for net in ("ethernet", "an2"):
        for size in (1024, 102400):
            base = {"protocol": 3000.0, "checksum": 1000.0, "io_wait": 5000.0,
                    "context_switch": 300.0, "application": 1000.0}
            rows.append(_row("cheetah", net, size, 500, base))
            rows.append(_row("cheetah@+ash", net, size, 520,
                             {**base, "protocol": 1500.0, "context_switch": 50.0,
                              "kernel": 800.0}))
            ilp = 400.0 if net == "ethernet" else 1000.0
            rows.append(_row("cheetah@+ilp.no-ash", net, size, 505, {**base, "checksum": ilp}))
            rows.append(_row("cheetah@+ilp", net, size, 530,
                             {**base, "checksum": ilp, "protocol": 1500.0,
                              "context_switch": 50.0, "kernel": 800.0}))
    return rows


def test_moving_categories_are_those_a_variant_moves_against_the_paper_cheetah():
    rows = _synthetic_rows()
    assert figure_d.moving_categories(rows) == ["protocol", "kernel", "checksum",
                                                "context_switch"]
    # 5 cycles of 10,300 is noise (below MOVING_FRACTION); nothing moves without a baseline.
    rows[1]["cpu_cycles_per_request_breakdown"]["application"] = 1005.0
    assert "application" not in figure_d.moving_categories(rows)
    assert figure_d.moving_categories([r for r in rows if r["server"] != "cheetah"]) == []


def test_plot_from_synthetic_rows(tmp_path):
    png = plot_figure(_synthetic_rows(), "d", tmp_path / "figure_d.png")
    assert png.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="figure 'd'"):
        plot_figure([{"figure": "c", "throughput_rps": 1.0}], "d", tmp_path / "d.png")
    with pytest.raises(ValueError, match="'e'"):
        plot_figure(_synthetic_rows(), "e", tmp_path / "e.png")


def test_csv_has_the_per_request_columns_only_with_figure_d_rows(tmp_path):
    rows = _synthetic_rows()[:2]
    files = paper.write_results(rows, tmp_path, plots=False)
    head, first, second = files["csv"].read_text().splitlines()[:3]
    cols = head.split(",")
    assert cols[-8:] == ["mechanisms", "cpu_cycles_per_request", "cpu_per_request_application",
                         "cpu_per_request_checksum", "cpu_per_request_context_switch",
                         "cpu_per_request_io_wait", "cpu_per_request_kernel",
                         "cpu_per_request_protocol"]
    assert second.split(",")[-8:] == ["ash", "9350.0", "1000.0", "1000.0", "50.0", "5000.0",
                                      "800.0", "1500.0"]
    assert first.split(",")[-8:-6] == ["", "10300.0"]
    other = paper.write_results([{"figure": "c", "server": "cheetah"}], tmp_path / "c",
                                plots=False)
    assert "mechanisms" not in other["csv"].read_text()


@pytest.mark.parametrize("text, want", [("d", ("d",)), ("d,a", ("a", "d")),
                                        ("c,d", ("c", "d")), ("all", ("a", "b"))])
def test_parse_figures_knows_d(text, want):
    assert paper.parse_figures(text) == want


@pytest.mark.parametrize("bad", ["e", "d,d", "dd", ""])
def test_bad_figure_is_a_usage_error(bad, tmp_path, capsys):
    assert main(["run", "--figure", bad, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--figure" in err and "d" in err


def test_command_plans_the_variants_and_names_them_in_the_meta(tmp_path, planned_run):
    """``--figure d`` runs figure d's variants whatever ``--servers`` says (not simulated)."""
    seen = planned_run
    assert main(["run", "--figure", "d", "--network", "an2", "--servers", "ncsa",
                 "--requests", "3", "--out", str(tmp_path)]) == 0
    specs = [v.spec for v in figure_d.measured_variants()]
    assert seen["meta"]["servers"] == specs and seen["meta"]["figures"] == ["d"]
    assert {(p.network, p.requests, p.figures) for p in seen["points"]} == {("an2", 3, ("d",))}
    json.dumps(seen["meta"])


def test_two_real_points_the_baseline_is_figure_cs_and_ilp_moves_the_checksum(tmp_path):
    """A 1 KiB document, one client, two requests over Ethernet: the paper's Cheetah and
    both mechanisms. The baseline's row is figure c's Cheetah row but for ``figure`` and
    figure d's fields; ILP over the LANCE sums in the card copies (checksum down)."""
    pts = [p for p in paper.plan_points(("d",), ["cheetah"], requests=2, networks="ethernet",
                                        combos_d=[(1024, 1)])
           if p.server in ("cheetah", "cheetah@+ilp")]
    c = paper.plan_points(("c",), ["cheetah"], requests=2, networks="ethernet",
                          combos_c=[(1024, 1)])
    rows = paper.run_paper([*pts, *c], jobs=1)
    (crow,) = [r for r in rows if r["figure"] == "c"]
    base, both = [r for r in rows if r["figure"] == "d"]
    assert (base["server"], both["server"]) == ("cheetah", "cheetah@+ilp")
    for r in (base, both):
        assert not paper.failed(r) and r["ok"] == 2
        assert r["cpu_cycles_per_request"] == pytest.approx(
            sum(r["cpu_cycles_per_request_breakdown"].values()))
        assert "idle" not in r["cpu_cycles_per_request_breakdown"]
    assert base["mechanisms"] == [] and both["mechanisms"] == ["ash", "ilp"]
    strip = ("figure", "wall_seconds", "mechanisms", "cpu_cycles_per_request",
             "cpu_cycles_per_request_breakdown")
    assert ({k: v for k, v in base.items() if k not in strip}
            == {k: v for k, v in crow.items() if k not in strip})
    assert (both["cpu_cycles_per_request_breakdown"]["checksum"]
            < base["cpu_cycles_per_request_breakdown"]["checksum"])
    files = paper.write_results(rows, tmp_path)
    assert files["figure_d"].read_bytes()[:8] == PNG


def test_command_tables_fit_80_columns_and_name_the_planned_variants():
    from rich.console import Console

    from serveros.cli import _figure_d_table
    out = Console(width=80, record=True, file=open("/dev/null", "w"))
    out.print(_figure_d_table(_synthetic_rows(), "synthetic"))
    text = out.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "-15.0%" in text and "+800" in text and "-600" in text       # +ash+ilp, kernel, ilp
    for v in figure_d.planned_variants():
        assert v.label in text
