"""``serveros replay``: a DiskSim validate trace through driver and controller, the controller
as its model or (``--rtl disk``) as its RTL."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hw.disk.image import DiskImage
from hw.disk.trace import TraceError, format_trace, parse_trace, read_trace
from serveros.cli import main
from serveros.experiments.disk_replay import replay_trace
from serveros.rtl import simulator_missing

TRACE = Path(__file__).parents[1] / "data" / "rz26_small.trace"


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_replays_prints_and_writes_csv(tmp_path, capsys) -> None:
    out = tmp_path / "r.csv"
    assert main(["replay", str(TRACE), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 requests" in text and "demerit" in text and "RMS error" in text
    rows = _csv(out)
    assert [int(r["line"]) for r in rows] == [3, 4, 5, 6, 7, 8, 9, 10]
    for r in rows:
        assert 0.5 < float(r["drive_ms"]) < 60 and float(r["host_ms"]) > float(r["drive_ms"])
    # The two reads the trace marks as buffer hits are hits in the simulated drive too.
    assert [r["sim_hit"] for r in rows] == [r["trace_hit"] for r in rows]
    # Deterministic: a second run gives the same CSV.
    out2 = tmp_path / "r2.csv"
    assert main(["replay", str(TRACE), "--out", str(out2)]) == 0
    assert out.read_bytes() == out2.read_bytes()


def test_limit_and_long_tables(tmp_path, capsys) -> None:
    out = tmp_path / "r.csv"
    assert main(["replay", str(TRACE), "--limit", "3", "--out", str(out)]) == 0
    assert len(_csv(out)) == 3
    assert main(["replay", str(TRACE), "--show", "2"]) == 0
    assert "(4 more)" in capsys.readouterr().out


def test_comparison_against_its_own_times_is_exact() -> None:
    """Measured times equal to the simulated ones give zero error and zero demerit."""
    recs = read_trace(TRACE)
    first = replay_trace(recs)
    # Put the simulated drive times in as "measured" (whole picoseconds survive the us format).
    text = format_trace(recs)
    lines = [ln.split() for ln in text.splitlines()]
    for ln, row in zip(lines, first.rows):
        ln[4] = f"{row.drive_ms * 1000:.6f}"
    again = replay_trace(parse_trace("\n".join(" ".join(ln) for ln in lines)))
    c = again.comparison
    assert c is not None and c.n == 8
    assert c.mean_error == pytest.approx(0, abs=1e-6) and c.demerit == pytest.approx(0, abs=1e-6)


def test_trace_without_measured_times_has_no_comparison(capsys, tmp_path) -> None:
    p = tmp_path / "t.trace"
    p.write_text("R Miss 100 4 0 0\nW Miss 5000 2 0 100\n")
    res = replay_trace(read_trace(p))
    assert res.comparison is None and len(res.rows) == 2 and res.blocks == 6
    assert main(["replay", str(p)]) == 0
    assert "no measured times" in capsys.readouterr().out


def test_bad_trace_line_is_named(tmp_path, capsys) -> None:
    p = tmp_path / "bad.trace"
    p.write_text("R Miss 100 4 10 0\nR Miss 12x 4 10 0\n")
    assert main(["replay", str(p)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "line 2" in err and "starting block must be an integer" in err


def test_request_off_the_disk_is_named(tmp_path, capsys) -> None:
    p = tmp_path / "off.trace"
    p.write_text("R Miss 100 4 10 0\n# comment\nW Miss 2050859 2 10 0\n")
    with pytest.raises(TraceError, match="line 3: blocks 2050859 .. 2050860 run past the end"):
        replay_trace(read_trace(p), source=str(p))
    assert main(["replay", str(p)]) == 2
    assert "line 3" in " ".join(capsys.readouterr().err.split())


def test_image_option_reads_data_and_does_not_change_the_file(tmp_path) -> None:
    path = tmp_path / "small.img"
    with DiskImage.create(path, 1000) as img:
        img.write(10, b"\x5a" * 512 * 4)
    before = path.read_bytes()
    p = tmp_path / "t.trace"
    p.write_text("R Miss 10 4 0 0\nW Miss 10 4 0 0\n")
    res = replay_trace(read_trace(p), image=path)
    assert len(res.rows) == 2
    assert path.read_bytes() == before
    p.write_text("R Miss 999 2 0 0\n")
    with pytest.raises(TraceError, match="line 1: .* run past the end of the disk \\(1000 blocks\\)"):
        replay_trace(read_trace(p), image=path)


def test_bad_options(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="backend must be one of model, verilator, amaranth, "
                                         "not 'icarus'"):
        replay_trace(read_trace(TRACE), backend="icarus")
    with pytest.raises(ValueError, match="limit must be a positive int, not 0"):
        replay_trace(read_trace(TRACE), limit=0)
    assert main(["replay", str(tmp_path / "missing.trace")]) == 2
    assert "missing.trace" in capsys.readouterr().err


@pytest.mark.parametrize("args, what", [
    (["--backend", "verilator"], "--backend: verilator is the HDL simulator of the --rtl"),
    (["--rtl", "lance"], "--rtl: no machine has a lance device (their devices: disk)"),
    (["--rtl", "disk", "--backend", "model"], "--backend: backend 'model' runs no RTL"),
])
def test_bad_rtl_options_are_named(args, what, capsys) -> None:
    assert main(["replay", str(TRACE), *args]) == 2
    assert what in " ".join(capsys.readouterr().err.split())


@pytest.mark.hdl
def test_the_controllers_rtl_gives_the_models_rows(tmp_path, capsys) -> None:
    """``--rtl disk``: the same trace through the controller's RTL on Verilator (the drive
    firmware over the same image) gives the model's rows, to the picosecond."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    recs = parse_trace("R Miss 100 4 0 0\nW Miss 5000 2 0 100\nW Miss 5002 2 0 0\n"
                       "R Miss 5000 8 0 50\nR Miss 100 4 0 0\nR Miss 104 64 0 10\n")
    model, rtl = replay_trace(recs), replay_trace(recs, backend="verilator")
    assert (model.backend, model.python_wakes, rtl.backend) == ("model", 0, "verilator")
    assert rtl.rows == model.rows and rtl.sim_seconds == model.sim_seconds
    assert any(r.sim_hit for r in rtl.rows) and not all(r.sim_hit for r in rtl.rows)
    # Woken per transaction (bus accesses, 64-word DMA bursts, media blocks), not per cycle.
    cycles = int(rtl.sim_seconds * 12_500_000)
    assert 0 < rtl.python_wakes * 100 < cycles
    out, out_rtl = tmp_path / "m.csv", tmp_path / "r.csv"
    assert main(["replay", str(TRACE), "--out", str(out)]) == 0
    assert main(["replay", str(TRACE), "--rtl", "disk", "--out", str(out_rtl)]) == 0
    text = capsys.readouterr().out
    assert "controller's RTL on verilator" in text and "resumed Python" in text
    assert out_rtl.read_bytes() == out.read_bytes()


@pytest.mark.slow
@pytest.mark.hdl
def test_the_controllers_rtl_on_amaranth_gives_the_models_rows() -> None:
    recs = parse_trace("R Miss 100 2 0 0\nW Miss 5000 1 0 0\nR Miss 100 2 0 0\n")
    rtl = replay_trace(recs, backend="amaranth")
    assert rtl.rows == replay_trace(recs).rows and rtl.python_wakes > 0
