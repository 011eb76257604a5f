"""cocotb bench: the timer programs of tests/hw/timer_program.py on the RTL, inside Icarus or
Verilator, with the kernel bound by :class:`sim.bindings.cocotb.CocotbDriver`.

The clock runs inside the simulator (``impl="gpi"``); Python is woken by the kernel's timers and
by the bus ``ack`` and the ``irq`` only. Each test writes its trace and the driver's wake count
with :func:`serveros.rtl.write_result`; tests/hw/test_timer.py compares them with the other
backends.
"""
from __future__ import annotations

import os

import cocotb
from cocotb.clock import Clock

from serveros.rtl import write_result
from sim.bindings.cocotb import CocotbDriver
from sim.kernel import Kernel
from timer_program import CLOCK, Program, bind_timer, stimulus_program, timer_program


async def run_program(dut, program: Program) -> tuple[list, dict]:
    """Bind a fresh kernel to the running design and run ``program`` to completion."""
    k = Kernel()
    driver = CocotbDriver(k)
    bus, irq, _ = bind_timer(driver, k, lambda name: getattr(dut, name))
    trace = program(k, bus, irq)
    await driver.run()
    st = driver.stats
    return trace, {"wakes": st.wakes, "signal_wakes": st.signal_wakes, "end_time": st.end_time,
                   "cycles": st.end_time // CLOCK.period}


async def start(dut) -> None:
    # Inputs idle before the first edge (t = 0), so nothing is sampled as X.
    dut.rst.value = 0
    for name in ("bus__addr", "bus__w_data", "bus__w_en", "bus__r_en"):
        getattr(dut, name).value = 0
    Clock(dut.clk, CLOCK.period, unit="ps", impl="gpi").start()


#: Which program a run executes: "program" or "stimulus:<seed>" (set by tests/hw/test_timer.py).
PROGRAM_ENV = "SERVEROS_TIMER_PROGRAM"


def select(spec: str) -> Program:
    if spec == "program":
        return timer_program
    kind, _, seed = spec.partition(":")
    if kind == "stimulus" and seed.isdigit():
        return stimulus_program(int(seed))
    raise ValueError(f"{PROGRAM_ENV} must be 'program' or 'stimulus:<seed>', not {spec!r}")


@cocotb.test()
async def timer_run(dut) -> None:
    """Run the selected program from time 0 (one program per simulator run, so that every
    backend starts from reset at time 0)."""
    spec = os.environ.get(PROGRAM_ENV, "program")
    await start(dut)
    trace, stats = await run_program(dut, select(spec))
    write_result(spec, {"trace": trace, "stats": stats})
