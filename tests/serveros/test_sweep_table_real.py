"""A real (tiny) sweep's table and plots: Cheetah over the AN2 with its pipes in software and
in hardware at two CPU clocks, run in this process by the engine, then written and plotted.
The table has the sweep's parameters, serveros run's flattened results, the derived cycles
per request and the area of the hardware variant only."""
import pyarrow.parquet as pq
import pytest

from hw.ilp.synth import yosys_missing
from serveros.cli import main
from serveros.sweep.runner import run_sweep
from serveros.sweep.spec import parse_sweep
from serveros.sweep.table import write_tables

SWEEP = """
[hardware]
network = "an2"
pipes = ["sw", "hw"]
cpu_mhz = [16, 40]

[software]
server = "cheetah"

[workload]
doc_bytes = 100
clients = 1
requests = 4
"""


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_a_real_sweeps_table_and_plots(tmp_path, capsys):
    res = run_sweep(parse_sweep(SWEEP, "tiny.toml"), tmp_path, workers=1)
    assert res.points == 4 and res.failed == 0
    files = write_tables(res.rows, tmp_path)
    rows = pq.read_table(files["parquet"]).to_pylist()
    assert len(rows) == 4 and len({r["key"] for r in rows}) == 4
    assert {(r["pipes"], r["cpu_mhz"]) for r in rows} == {("sw", 16), ("sw", 40), ("hw", 16),
                                                          ("hw", 40)}
    for r in rows:
        assert r["throughput_rps"] > 0 and r["cpu_cycles_per_request"] > 0
        assert r["cpu_idle"] is not None and r["server_internal_errors"] == 0
        assert (r["area_luts"] > 0) == (r["pipes"] == "hw")
        assert (r["area_device"] == "an2") == (r["pipes"] == "hw")
    # The card's pipes take the checksum off the CPU: fewer busy cycles at the same clock.
    by = {(r["pipes"], r["cpu_mhz"]): r["cpu_cycles_per_request"] for r in rows}
    assert by["hw", 16] < by["sw", 16] and by["hw", 40] < by["sw", 40]
    for argv in (["--x", "cpu_mhz", "--by", "pipes"], ["--pareto", "area"],
                 ["--pareto", "cycles"]):
        assert main(["plot", str(tmp_path), *argv]) == 0
    pngs = capsys.readouterr().out.split()
    assert len(pngs) == 3 and all(p.endswith(".png") for p in pngs)
