"""The same device binding (sim.bindings.binder over a SignalAccess) on cocotb: CocotbAccess
names the Ticker's ports and its memory in the design hierarchy, and the software sees the
HostBus protocol's times to the picosecond, as on Verilator and Amaranth."""
from __future__ import annotations

from pathlib import Path

import pytest

from serveros.rtl import run_cocotb, simulator_missing

from test_bindings_multi import SLOW, Ticker, _expected

HERE = Path(__file__).parent


@pytest.mark.hdl
def test_ticker_through_cocotb_access_on_icarus() -> None:
    reason = simulator_missing("icarus")
    if reason:
        pytest.skip(reason)
    from bindings_cocotb_ticker import N, START
    run = run_cocotb(Ticker(), toplevel="ticker80", sim="icarus",
                     test_module="bindings_cocotb_ticker", test_dir=HERE,
                     design="test_ticker_cocotb")
    assert run.ok, f"cocotb test failed; see {run.build_dir}"
    r = run.result["ticker"]
    assert r["out"] == _expected(SLOW.clock.period, SLOW.step, START, N)
    assert r["end_time"] == r["out"]["end"] and r["wakes"] < 40
