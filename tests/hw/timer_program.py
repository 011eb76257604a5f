"""Programs of kernel coroutines around the timer, and the Python-side backends that run them.

The same program runs on four backends: the own kernel with :class:`hw.timer.model.TimerModel`,
and the RTL (:class:`hw.timer.gateware.Timer`) under Amaranth's simulator, cocotb + Icarus and
cocotb + Verilator (tests/hw/cocotb_timer.py), the last three through :mod:`sim.bindings`. A
program is ``program(kernel, bus, irq) -> trace``: it spawns its tasks and returns the list the
tasks append ``(time_ps, label)`` to while the backend runs.

Software times are deliberately not multiples of the 40 ns clock, so every bus access has to be
aligned to the next edge; they are also chosen so that no software event ever falls on the same
picosecond as a hardware one (whose relative order at one instant is the one thing a binding
does not promise to reproduce).
"""
from __future__ import annotations

import random
from typing import Callable

from amaranth.sim import Simulator

from hw.timer.gateware import Timer
from hw.timer.model import TimerModel
from hw.timer.registers import ADDR_WIDTH, Ctrl, Reg, Status
from sim.bindings import DriverStats, HdlDriver
from sim.bindings.access import SignalAccess
from sim.bindings.amaranth import AmaranthAccess, AmaranthDriver, add_clock
from sim.bindings.binder import bind_host_bus, bind_irq
from sim.bus import BusTarget, IrqLine
from sim.kernel import Kernel
from sim.time import NS, Clock

from bfm import HostBusTransaction
from bfm.reference import RecordingTarget

#: The timer runs on the CPU clock: 25 MHz on the DECstation 5000/125 (CALIBRATION.md).
CLOCK = Clock(40 * NS, "clk")

#: The rounds of :func:`timer_program`: (LOAD, extra CTRL bits, irqs to wait for).
ROUNDS = [(5, 0, 1), (2000, 0, 1), (250, Ctrl.Periodic, 2)]
FIRST_ACCESS = 1_234_567          # ps; not on an edge
PAUSE = 2_345_671                 # ps between rounds (+ 1_111 per round)
TICK = 7_654_321                  # ps; the free-running thread's period (coprime with 40 ns)
LISTENER_DELAY = 777_777          # ps

Trace = list[tuple[int, str]]
Program = Callable[[Kernel, BusTarget, IrqLine], Trace]


def timer_program(k: Kernel, bus: BusTarget, irq: IrqLine) -> Trace:
    """Three threads: a driver that uses the timer, a listener it signals, a ticker.

    The driver programs LOAD, starts the timer with interrupts, waits on the irq line, reads
    STATUS and COUNT, clears STATUS (W1C), and signals the listener; the last round is periodic
    and waits for two expiries before stopping the timer. The ticker sleeps in a loop until the
    driver is done.
    """
    trace: Trace = []

    def log(label: str) -> None:
        trace.append((k.now, label))

    started = k.event("started")
    fired = k.event("fired")
    finished = k.event("finished")

    async def driver() -> None:
        await k.sleep(FIRST_ACCESS)
        for n, (load, mode, expiries) in enumerate(ROUNDS):
            await bus.write(Reg.Load, load)
            log(f"drv: LOAD={load}")
            await bus.write(Reg.Ctrl, Ctrl.En | Ctrl.IrqEn | mode)
            log("drv: start")
            started.pulse(n)
            for j in range(expiries):
                await irq.wait_high()
                log(f"drv: irq {n}.{j}")
                status = await bus.read(Reg.Status)
                count = await bus.read(Reg.Count)
                log(f"drv: STATUS={status} COUNT={count}")
                await bus.write(Reg.Status, Status.Zero)
                log(f"drv: cleared irq={irq.level}")
                fired.pulse((n, j))
            if mode & Ctrl.Periodic:
                await bus.write(Reg.Ctrl, 0)
                ctrl = await bus.read(Reg.Ctrl)
                log(f"drv: stopped CTRL={ctrl}")
            await k.sleep(PAUSE + 1_111 * n)
        log("drv: done")
        finished.set()

    async def listener() -> None:
        while True:
            which, value = await k.wait_any(started, fired, finished)
            if which == 2:
                return
            await k.sleep(LISTENER_DELAY)
            log(f"lst: {'started' if which == 0 else 'fired'} {value}")

    async def ticker() -> None:
        i = 0
        while True:
            which, _ = await k.wait_any(k.sleep(TICK), finished)
            if which == 1:
                log(f"tck: stopped after {i}")
                return
            i += 1
            log(f"tck: {i}")

    k.spawn(driver(), name="driver")
    k.spawn(listener(), name="listener")
    k.spawn(ticker(), name="ticker")
    return trace


def stimulus_program(seed: int, accesses: int = 120) -> Program:
    """Random register traffic for model-vs-RTL equivalence (seeded, so identical everywhere).

    A main task makes ``accesses`` random reads and writes separated by random gaps (zero, a
    whole number of cycles, or any number of ps); a second task makes occasional reads at the
    same time, to exercise the one-at-a-time bus. The trace records every access's completion
    with the value read, and every irq edge.
    """
    def program(k: Kernel, bus: BusTarget, irq: IrqLine) -> Trace:
        rng = random.Random(seed)
        p = CLOCK.period
        trace: Trace = []
        irq.on_change(lambda level: trace.append((k.now, f"irq={level}")))
        regs = list(Reg)
        done = k.event("done")

        def gap() -> int:
            r = rng.random()
            if r < 0.2:
                return 0
            if r < 0.5:
                return rng.randrange(1, 30) * p
            return rng.randrange(1, 40 * p)

        async def main() -> None:
            for i in range(accesses):
                await k.sleep(gap())
                reg = rng.choice(regs)
                if rng.random() < 0.4:
                    v = await bus.read(reg)
                    trace.append((k.now, f"a{i} R {reg.name}={v}"))
                    continue
                if reg is Reg.Ctrl:
                    v = rng.randrange(8) | rng.choice([0, 0x80, 0xFFFF_FFF0])
                elif reg is Reg.Load:
                    v = rng.choice([0, 1, 2, rng.randrange(3, 25), rng.randrange(25, 200)])
                else:
                    v = rng.randrange(1 << 32)
                await bus.write(reg, v)
                trace.append((k.now, f"a{i} W {reg.name}={v}"))
            done.set()

        async def reader() -> None:
            j = 0
            while True:
                which, _ = await k.wait_any(k.sleep(rng.randrange(1, 60 * p)), done)
                if which == 1:
                    return
                v = await bus.read(Reg.Count)
                trace.append((k.now, f"b{j} R Count={v}"))
                j += 1

        k.spawn(main(), name="main")
        k.spawn(reader(), name="reader")
        return trace
    return program


# --- Backends ----------------------------------------------------------------------------
def run_model(program: Program, *,
              transactions: Callable[[list[HostBusTransaction]], None] | None = None) -> Trace:
    """The own kernel with the transaction-level model; ``transactions``, if given, receives
    each register access as a one-item list of :class:`bfm.HostBusTransaction` (a scoreboard's
    ``expect``)."""
    k = Kernel()
    irq = IrqLine(k, "timer.irq")
    model: BusTarget = TimerModel(k, CLOCK, irq)
    if transactions is not None:
        model = RecordingTarget(k, model, CLOCK, callback=lambda t: transactions([t]))
    trace = program(k, model, irq)
    k.run()
    return trace


def bind_timer(driver: HdlDriver, access: SignalAccess) -> tuple[BusTarget, IrqLine]:
    """Wire a running binding to a Timer's ports (``access``: any backend's
    :class:`~sim.bindings.access.SignalAccess`) with the generic binder, as
    :data:`hw.timer.attach.TIMER` does in a machine."""
    bus = bind_host_bus(access, driver, CLOCK, addr_width=ADDR_WIDTH, name="timer")
    irq = bind_irq(access, driver, port="irq", name="timer.irq")
    return bus, irq


def run_amaranth(program: Program, *, vcd: str | None = None) -> tuple[Trace, DriverStats]:
    """The RTL under Amaranth's simulator, the kernel bound with :class:`AmaranthDriver`."""
    dut = Timer()
    sim = Simulator(dut)
    add_clock(sim, CLOCK)
    k = Kernel()
    driver = AmaranthDriver(sim, k)
    bus, irq = bind_timer(driver, AmaranthAccess(dut, driver))
    trace = program(k, bus, irq)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return trace, driver.stats
