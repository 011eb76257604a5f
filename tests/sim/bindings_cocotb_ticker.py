"""cocotb bench for tests/sim/test_bindings_cocotb.py: the Ticker of test_bindings_multi.py under
cocotb, bound through CocotbAccess and sim.bindings.binder like any device's bind_rtl; writes the
software's observations and the driver's wake counts with serveros.rtl.write_result."""
from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadWrite

from serveros.rtl import write_result
from sim.bindings.binder import bind_host_bus, bind_irq
from sim.bindings.cocotb import CocotbAccess, CocotbDriver
from sim.kernel import Kernel
from test_bindings_multi import ADDR_WIDTH, SLOW, _software

START, N = 1_000_000, 400


@cocotb.test()
async def ticker_run(dut) -> None:
    dut.rst.value = 0
    dut.bus__w_en.value = 0
    dut.bus__r_en.value = 0
    dut.step.value = SLOW.step
    # The step strap must hold at the clock's first edge (at 0): an x would stay in the
    # counter for good. Writes land in the ReadWrite phase: start the clock after it.
    await ReadWrite()
    Clock(dut.clk, SLOW.clock.period, unit="ps", impl="gpi").start()
    k = Kernel()
    driver = CocotbDriver(k)
    access = CocotbAccess(dut, driver)
    bus = bind_host_bus(access, driver, SLOW.clock, addr_width=ADDR_WIDTH, name="slow0")
    irq = bind_irq(access, driver, name="slow0.irq")
    out: dict = {}
    k.spawn(_software(k, bus, irq, access, START, N, out), name="slow0")
    await driver.run()
    st = driver.stats
    write_result("ticker", {"out": out, "wakes": st.wakes, "end_time": st.end_time})
