"""Sweep plots (serveros.sweep.plotting, `serveros plot`): the Pareto front, the PNGs from a
synthetic table, and the command's errors naming the bad option."""
import pytest

from serveros.cli import build_parser
from serveros.sweep import plotcli
from serveros.sweep.plotting import measured, pareto_front, plot_metric, plot_pareto, varying
from serveros.sweep.table import write_tables

PNG = b"\x89PNG\r\n\x1a\n"


def rows():
    out = []
    for server, base in (("cheetah", 900.0), ("harvest", 500.0)):
        for pipes, luts in (("sw", 0), ("hw", 420)):
            for mhz in (16, 25, 40):
                out.append({"key": f"{server}-{pipes}-{mhz}", "server": server,
                            "pipes": pipes, "cpu_mhz": mhz, "doc_bytes": 100,
                            "throughput_rps": base * mhz / 25 * (1.2 if pipes == "hw" else 1),
                            "cpu_cycles_per_request": 25e6 / base * (0.8 if pipes == "hw"
                                                                     else 1),
                            "area_luts": luts})
    out.append({"key": "bad", "server": "ncsa", "pipes": "sw", "cpu_mhz": 25,
                "doc_bytes": 100, "status": "failed", "error": "RuntimeError: x"})
    return out


def test_pareto_front_keeps_only_unbeaten_points():
    pts = [(0, 10.0), (5, 8.0), (5, 12.0), (3, 12.0), (10, 20.0), (10, 20.0), (12, 19.0)]
    assert pareto_front(pts) == [0, 3, 4]
    assert pareto_front([]) == []
    assert pareto_front([(1, 1.0)]) == [0]


def test_failed_points_are_left_out_and_varying_columns_found():
    r = rows()
    assert len(measured(r, "throughput_rps")) == len(r) - 1
    assert varying(measured(r, "throughput_rps")) == ["server", "pipes", "cpu_mhz"]


def test_labels_know_every_sweep_parameter():
    from serveros.hardware import HARDWARE_PARAMS
    from serveros.sweep.plan import plan_sweep, row_columns
    from serveros.sweep.plotting import LABEL_COLUMNS
    from serveros.sweep.spec import parse_sweep
    sp = plan_sweep(parse_sweep("[hardware]\npipes = 'sw'\n"))[0]
    columns = {"server", "doc_bytes", "clients", "seed", *row_columns(sp), *HARDWARE_PARAMS}
    assert columns <= set(LABEL_COLUMNS)


def test_plots_are_pngs(tmp_path):
    r = rows()
    a = plot_metric(r, tmp_path / "m.png", x="cpu_mhz", by="pipes")
    b = plot_pareto(r, tmp_path / "p.png", cost="area")
    c = plot_pareto(r, tmp_path / "c.png", cost="cycles", labels=["server"])
    d = plot_metric(r, tmp_path / "cat.png", x="server", y="cpu_cycles_per_request")
    e = plot_metric(r, tmp_path / "two.png", x="cpu_mhz", by=["server", "pipes"])
    f = plot_metric(r, tmp_path / "panels.png", x="cpu_mhz", by="pipes", panels="server")
    for p in (a, b, c, d, e, f):
        assert p.read_bytes().startswith(PNG)


def test_plot_errors_name_the_column():
    with pytest.raises(ValueError, match="no column 'nope'"):
        plot_metric(rows(), "/tmp/never.png", x="nope")
    with pytest.raises(ValueError, match="by nope: no column 'nope'"):
        plot_metric(rows(), "/tmp/never.png", x="server", by=["pipes", "nope"])
    with pytest.raises(ValueError, match="panels: no column 'nope'"):
        plot_metric(rows(), "/tmp/never.png", x="server", panels="nope")
    with pytest.raises(ValueError, match="cost must be one of"):
        plot_pareto(rows(), "/tmp/never.png", cost="power")
    with pytest.raises(ValueError, match="area_luts"):
        plot_pareto([{"throughput_rps": 1.0}], "/tmp/never.png", cost="area")


def parse(argv):
    import argparse
    p = argparse.ArgumentParser()
    plotcli.add_parser(p.add_subparsers())
    return p.parse_args(argv)


def test_plot_command_writes_the_png_it_prints(tmp_path, capsys):
    write_tables(rows(), tmp_path)
    assert plotcli.main(parse(["plot", str(tmp_path), "--x", "cpu_mhz", "--by", "server"])) == 0
    out = tmp_path / "plot_throughput_rps_vs_cpu_mhz_by_server.png"
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes().startswith(PNG)
    assert plotcli.main(parse(["plot", str(tmp_path), "--x", "cpu_mhz", "--by",
                               "server,pipes"])) == 0
    assert (tmp_path / "plot_throughput_rps_vs_cpu_mhz_by_server_pipes.png").is_file()
    assert plotcli.main(parse(["plot", str(tmp_path), "--x", "cpu_mhz", "--by", "pipes",
                               "--panels", "server"])) == 0
    assert (tmp_path / "plot_throughput_rps_vs_cpu_mhz_by_pipes_per_server.png").is_file()
    assert plotcli.main(parse(["plot", str(tmp_path), "--pareto", "area",
                               "--out", str(tmp_path / "f" / "front.png")])) == 0
    assert (tmp_path / "f" / "front.png").read_bytes().startswith(PNG)


def test_plot_command_refuses_bad_options(tmp_path):
    from serveros.cliargs import UsageError
    write_tables(rows(), tmp_path)
    with pytest.raises(UsageError, match="argument DIR"):
        plotcli.main(parse(["plot", str(tmp_path / "missing")]))
    with pytest.raises(UsageError, match="no column 'speed'"):
        plotcli.main(parse(["plot", str(tmp_path), "--x", "speed"]))
    with pytest.raises(UsageError, match="--pareto"):
        plotcli.main(parse(["plot", str(tmp_path), "--pareto", "area", "--by", "server"]))
    with pytest.raises(UsageError, match="--label"):
        plotcli.main(parse(["plot", str(tmp_path), "--label", "server"]))


def test_serveros_cli_has_plot_when_wired():
    """Once SWEEP wires plotcli.add_parser into serveros.cli, `serveros plot` is it."""
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command")
    if "plot" not in subs.choices:
        pytest.skip("serveros.cli does not have `plot` yet (SWEEP wires it)")
    args = parser.parse_args(["plot", "somewhere"])
    assert args.func is plotcli.main
