"""cocotb bench: the timer programs of tests/hw/timer_program.py on the RTL, inside Icarus or
Verilator, with the kernel bound by :class:`sim.bindings.cocotb.CocotbDriver`.

The clock runs inside the simulator (``impl="gpi"``); Python is woken by the kernel's timers and
by the bus ``ack`` and the ``irq`` only. A bus monitor and scoreboard (:mod:`bfm`) check every
register access against the transaction-level model's. Each test writes its trace and the
driver's wake count with :func:`serveros.rtl.write_result`; tests/hw/test_timer.py compares
them with the other backends.
"""
from __future__ import annotations

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from bfm import HostBusTransaction, Scoreboard
from bfm.cocotb_hostbus import PHASES, BusReset, HostBusDriver, HostBusMonitor, HostBusSignals
from hw.timer.registers import Reg
from serveros.rtl import write_result
from sim.bindings.cocotb import CocotbAccess, CocotbDriver
from sim.kernel import Kernel
from timer_program import CLOCK, Program, bind_timer, run_model, stimulus_program, timer_program


async def run_program(dut, program: Program) -> tuple[list, dict]:
    """Bind a fresh kernel to the running design and run ``program`` to completion.

    A :class:`HostBusMonitor` on the RTL's bus feeds a :class:`Scoreboard` that expects the
    accesses of the same program on the transaction-level model, in order, to the picosecond.
    """
    scoreboard = Scoreboard(name="timer.bus")
    run_model(program, transactions=scoreboard.expect)
    HostBusMonitor(HostBusSignals(dut), period_ps=CLOCK.period, callback=scoreboard.observe)
    k = Kernel()
    driver = CocotbDriver(k)
    bus, irq = bind_timer(driver, CocotbAccess(dut, driver))
    trace = program(k, bus, irq)
    await driver.run()
    scoreboard.check()
    st = driver.stats
    return trace, {"wakes": st.wakes, "signal_wakes": st.signal_wakes, "end_time": st.end_time,
                   "cycles": st.end_time // CLOCK.period, "bus_transactions": scoreboard.matched}


async def start(dut) -> None:
    # Inputs idle before the first edge (t = 0), so nothing is sampled as X.
    dut.rst.value = 0
    HostBusSignals(dut).idle()
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


@cocotb.test()
async def hostbus_bfm_queue_gaps_and_reset(dut) -> None:
    """The cocotb host-bus BFM (:mod:`bfm.cocotb_hostbus`) on the timer, after the program:
    queued transactions with idle gaps, in both phases, complete in order with the data the
    registers hold, at the times the gaps ask for, exactly as the monitor sees them; while the
    reset signal is asserted an access is refused."""
    p = CLOCK.period
    Clock(dut.clk, p, unit="ps", impl="gpi").start()    # the previous test's clock stopped
    signals = HostBusSignals(dut)
    seen: list[HostBusTransaction] = []
    HostBusMonitor(signals, period_ps=p, callback=seen.append)
    gaps = [0, 2, 0, 1, 3]
    for phase in PHASES:
        driver = HostBusDriver(signals, dut.clk, period_ps=p, phase=phase)
        driver.set_pause_generator(iter(gaps))
        await RisingEdge(dut.clk)             # a "rising" driver starts just after an edge
        load = 1234 if phase == "rising" else 4321
        sent = [HostBusTransaction.writing(Reg.Ctrl, 0), HostBusTransaction.writing(Reg.Load, load),
                HostBusTransaction.reading(Reg.Load), HostBusTransaction.reading(Reg.Ctrl),
                HostBusTransaction.reading(Reg.Load)]
        for txn in sent:
            await driver.send(txn)
        await driver.wait()
        done = [driver.recv_nowait() for _ in sent]
        assert [(t.addr, t.write) for t in done] == [(t.addr, t.write) for t in sent], done
        assert [t.data for t in done] == [0, load, load, 0, load], done
        assert seen[-len(done):] == done, (seen[-len(done):], done)
        for a, b, gap in zip(done, done[1:], gaps[1:]):
            assert b.start - a.end == (1 + gap) * p, (phase, a, b, gap)
        assert all(t.end - t.start == p for t in done), done     # no wait states
    driver.set_reset(dut.rst)
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    try:
        await driver.read(Reg.Load)
    except BusReset:
        pass
    else:
        raise AssertionError("an access went through while rst was asserted")
    dut.rst.value = 0
