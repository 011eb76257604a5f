"""The timer device, the host bus and the kernel's bindings to HDL simulators.

* HostBus: the signature's parameters, equality and validation.
* Gateware unit tests in Amaranth's simulator, cycle by cycle (STYLE.md #13).
* Model vs RTL: the same seeded random register traffic on the transaction-level model (own
  kernel) and on the RTL (Amaranth's simulator, and cocotb on Icarus and Verilator) gives the
  same values at the same picoseconds, irq edges included.
* The four-backend program (tests/hw/timer_program.py): identical (time, event) traces on the
  own kernel, Amaranth's simulator, cocotb + Icarus and cocotb + Verilator, equal to an
  independently computed expectation for the driver thread; and Python is woken far fewer
  times than there are clock cycles.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.sim import Simulator

from hw.bus import HostBus
from hw.timer.gateware import Timer
from hw.timer.model import TimerModel
from hw.timer.registers import ACCESS, RESET, WINDOW_SIZE, Ctrl, Reg, Status, bit
from serveros.rtl import SIMULATORS, run_cocotb, simulator_missing
from sim.bindings import BindingError
from sim.bindings.amaranth import AmaranthAccess, AmaranthDriver, add_clock, sim_time_ps
from sim.bindings.binder import bind_host_bus
from sim.bus import IrqLine
from sim.kernel import Kernel, SimulationError
from sim.time import NS, Clock

from bfm.amaranth_hostbus import TestbenchHostBus
from timer_program import (CLOCK, FIRST_ACCESS, PAUSE, ROUNDS, run_amaranth, run_model,
                           stimulus_program, timer_program)

P = CLOCK.period
HERE = Path(__file__).parent


# --- HostBus -------------------------------------------------------------------------------------
def test_hostbus_signature() -> None:
    sig = HostBus(addr_width=2)
    assert (sig.addr_width, sig.data_width, sig.window_bytes) == (2, 32, 16)
    assert sig == HostBus(addr_width=2, data_width=32)
    assert sig != HostBus(addr_width=3)
    assert repr(sig) == "HostBus(addr_width=2, data_width=32)"
    assert set(sig.members) == {"addr", "w_data", "w_en", "r_en", "r_data", "ack"}
    assert sig.members["ack"].flow.name == "In" and sig.members["w_en"].flow.name == "Out"
    with pytest.raises(ValueError, match="data_width must be 8, 16 or 32, not 12"):
        HostBus(addr_width=2, data_width=12)
    with pytest.raises(ValueError, match="addr_width"):
        HostBus(addr_width=-1)
    with pytest.raises(TypeError, match="addr_width must be an integer"):
        HostBus(addr_width="2")


def test_register_map_is_consistent() -> None:
    assert [r.word for r in Reg] == [0, 1, 2, 3]
    assert WINDOW_SIZE == 16 and set(RESET) == set(ACCESS) == set(Reg)
    assert [bit(f) for f in Ctrl] == [0, 1, 2] and bit(Status.Zero) == 0
    with pytest.raises(ValueError, match="not a single-bit flag"):
        bit(Ctrl.En | Ctrl.IrqEn)


# --- Gateware, cycle by cycle in Amaranth's simulator -------------------------------------------
class Bench:
    """Drives a Timer's bus from an Amaranth testbench (:class:`TestbenchHostBus`); counts
    rising edges."""

    def __init__(self, ctx, dut: Timer):
        self.ctx, self.dut, self.cycle = ctx, dut, 0
        self.irq_log: list[tuple[int, int]] = []
        self.bus = TestbenchHostBus(ctx, dut.bus, tick=self.tick)

    async def tick(self, n: int = 1) -> None:
        for _ in range(n):
            await self.ctx.tick()
            self.cycle += 1
            irq = self.ctx.get(self.dut.irq)
            if not self.irq_log or self.irq_log[-1][1] != irq:
                self.irq_log.append((self.cycle, irq))

    async def access(self, reg: Reg, value: int | None = None) -> tuple[int, int]:
        """One access presented now (between edges); returns (read value, cycles taken)."""
        return await self.bus.access(int(reg), value)


def run_bench(body) -> None:
    dut = Timer()
    sim = Simulator(dut)
    add_clock(sim, CLOCK)

    async def testbench(ctx):
        await body(Bench(ctx, dut))
    sim.add_testbench(testbench)
    sim.run()


def test_gateware_reset_values_and_two_cycle_access() -> None:
    async def body(b: Bench):
        for reg in Reg:
            value, cycles = await b.access(reg)
            assert value == RESET[reg] and cycles == 2
        _, cycles = await b.access(Reg.Load, 0xDEADBEEF)
        assert cycles == 2
        assert (await b.access(Reg.Load))[0] == 0xDEADBEEF
        await b.access(Reg.Count, 1234)               # read-only: ignored
        assert (await b.access(Reg.Count))[0] == 0
    run_bench(body)


@pytest.mark.parametrize("load", [0, 1, 7, 100])
def test_gateware_one_shot_irq_after_load_cycles(load: int) -> None:
    async def body(b: Bench):
        await b.access(Reg.Load, load)
        await b.access(Reg.Ctrl, Ctrl.En | Ctrl.IrqEn)
        done = b.cycle                                # the start write completed here
        await b.tick(load + 3)
        assert b.irq_log[-1] == (done + load, 1)       # LOAD cycles after completion
        status, _ = await b.access(Reg.Status)
        assert status == Status.Zero
        assert (await b.access(Reg.Ctrl))[0] == Ctrl.IrqEn   # one-shot: En cleared
        assert (await b.access(Reg.Count))[0] == 0
        acting = b.cycle + 1
        await b.access(Reg.Status, Status.Zero)
        assert b.irq_log[-1] == (acting, 0)            # W1C acts at the access's first edge
        assert (await b.access(Reg.Status))[0] == 0
    run_bench(body)


def test_gateware_periodic_reload_and_stop_holds_count() -> None:
    load = 5

    async def body(b: Bench):
        await b.access(Reg.Load, load)
        await b.access(Reg.Ctrl, Ctrl.En | Ctrl.Periodic | Ctrl.IrqEn)
        first = b.cycle + load
        await b.tick(load)
        assert b.irq_log[-1] == (first, 1)
        # COUNT reloaded at the underflow edge; a read acting at the next edge returns the
        # value after the underflow edge (LOAD), one acting two edges later LOAD - 2.
        assert (await b.access(Reg.Count))[0] == load
        assert (await b.access(Reg.Count))[0] == load - 2
        await b.access(Reg.Status, Status.Zero)
        await b.tick(first + (load + 1) - b.cycle)
        assert b.irq_log[-1] == (first + load + 1, 1)  # period LOAD + 1 cycles
        await b.access(Reg.Ctrl, Ctrl.Periodic)        # stop
        held = (await b.access(Reg.Count))[0]
        await b.tick(20)
        assert (await b.access(Reg.Count))[0] == held
        assert (await b.access(Reg.Ctrl))[0] == Ctrl.Periodic
    run_bench(body)


def test_gateware_underflow_beats_clear_on_the_same_edge() -> None:
    load = 6

    async def body(b: Bench):
        await b.access(Reg.Load, load)
        await b.access(Reg.Ctrl, Ctrl.En | Ctrl.IrqEn)
        underflow = b.cycle + load
        await b.tick(underflow - 1 - b.cycle)          # present the W1C so it acts at `underflow`
        await b.access(Reg.Status, Status.Zero)
        assert (await b.access(Reg.Status))[0] == Status.Zero
        assert b.irq_log[-1] == (underflow, 1)
    run_bench(body)


def test_add_clock_is_exact_where_amaranth_would_truncate() -> None:
    # Amaranth's add_clock truncates float seconds: 30 ns would become 29 999 999 fs.
    clock = Clock(30 * NS)
    sim = Simulator(Timer())
    add_clock(sim, clock)
    seen = []

    async def testbench(ctx):
        for _ in range(5):
            await ctx.tick()
            seen.append(sim_time_ps(sim))
    sim.add_testbench(testbench)
    sim.run()
    assert seen == [k * 30 * NS for k in range(5)]   # the first rising edge is at 0


# --- The transaction-level model ---------------------------------------------------------------
def test_model_irq_time_and_bus_alignment() -> None:
    k = Kernel()
    irq = IrqLine(k, "irq")
    m = TimerModel(k, CLOCK, irq)
    seen = {}

    async def prog():
        await k.sleep(1_001)                           # mid-cycle: acted on at 40 ns
        await m.write(Reg.Load, 10)
        seen["load"] = k.now
        await m.write(Reg.Ctrl, Ctrl.En | Ctrl.IrqEn)  # on an edge: acted on one cycle later
        seen["start"] = k.now
        await irq.wait_high()
        seen["irq"] = k.now
    k.spawn(prog())
    k.run()
    assert seen == {"load": 2 * P, "start": 4 * P, "irq": 14 * P}


def test_model_rejects_bad_accesses() -> None:
    cases = [(lambda m: m.read(2), "word offset in [0, 0x10), not 2"),
             (lambda m: m.read(WINDOW_SIZE), "not 16"),
             (lambda m: m.write(0, -1), "32-bit unsigned integer, not -1"),
             (lambda m: m.write(0, 1 << 32), "32-bit unsigned")]
    for access, msg in cases:
        k = Kernel()
        m = TimerModel(k, CLOCK, IrqLine(k, "irq"))

        async def prog():
            await access(m)
        k.spawn(prog())
        with pytest.raises(SimulationError) as info:
            k.run()
        assert isinstance(info.value.__cause__, ValueError) and msg in str(info.value.__cause__)
    with pytest.raises(TypeError, match="sim.time.Clock"):
        TimerModel(k, 40 * NS, IrqLine(k, "irq"))


# --- Model vs RTL on the same stimulus ----------------------------------------------------------
def same_events(a: list, b: list) -> bool:
    """Same (time, event) pairs. Software due at an instant runs before the hardware events of
    that instant on every backend (the model marks its events ``late``), but two hardware events
    of one picosecond (an access completing and an irq edge) may be listed in either order: the
    model runs them in the order it scheduled them, the bindings in the order of their watches. Random traffic hits such coincidences; the four-backend program avoids them and
    is compared in order."""
    return sorted(map(tuple, a)) == sorted(map(tuple, b))


@pytest.mark.parametrize("seed", range(6))
def test_model_matches_rtl_in_amaranth(seed: int) -> None:
    program = stimulus_program(seed)
    model = run_model(program)
    rtl, _ = run_amaranth(program)
    assert len(model) > 150
    assert any("irq=1" in label for _, label in model)
    assert same_events(model, rtl)


# --- Bindings: misuse is reported clearly ---------------------------------------------------------
def test_initiator_rejects_bad_offsets_and_values() -> None:
    dut = Timer()
    sim = Simulator(dut)
    add_clock(sim, CLOCK)
    k = Kernel()
    drv = AmaranthDriver(sim, k)
    bus = bind_host_bus(AmaranthAccess(dut, drv), drv, CLOCK, addr_width=2, name="timer")

    async def prog():
        with pytest.raises(ValueError, match=r"word offset in \[0, 0x10\), not 16"):
            await bus.read(16)
        with pytest.raises(ValueError, match="32-bit unsigned"):
            await bus.write(0, 1 << 32)
        await k.sleep(100)
        assert await bus.read(Reg.Load) == 0
    task = k.spawn(prog())
    sim.run()
    assert task.done and task.exception is None
    with pytest.raises(BindingError, match="kernel must start at time 0"):
        k2 = Kernel()
        k2.run(until=5)
        AmaranthDriver(Simulator(Timer()), k2)


def test_driver_reports_deadlock() -> None:
    sim = Simulator(Timer())
    add_clock(sim, CLOCK)
    k = Kernel()
    AmaranthDriver(sim, k)

    async def stuck():
        await k.event("never")
    k.spawn(stuck())
    with pytest.raises(BindingError, match="deadlock"):
        sim.run()


# --- The four-backend program ----------------------------------------------------------------------
def expected_driver_trace() -> list[tuple[int, str]]:
    """The driver thread's events, computed from the HostBus and timer rules alone."""
    def complete(t: int) -> int:                      # an access requested at t
        return CLOCK.edge_after(t) + P
    out = []
    t = FIRST_ACCESS
    for n, (load, mode, expiries) in enumerate(ROUNDS):
        t = complete(t)
        out.append((t, f"drv: LOAD={load}"))
        t = start_done = complete(t)
        out.append((t, "drv: start"))
        for j in range(expiries):
            t = underflow = start_done + load * P + j * (load + 1) * P
            out.append((t, f"drv: irq {n}.{j}"))
            t = complete(t)                             # STATUS
            count_edge = CLOCK.edge_after(t)            # COUNT read acts here...
            t = complete(t)
            # ...returning the value after the previous edge; periodic reloads at underflow.
            count = load - (count_edge - P - underflow) // P if mode & Ctrl.Periodic else 0
            out.append((t, f"drv: STATUS={int(Status.Zero)} COUNT={count}"))
            t = complete(t)
            out.append((t, "drv: cleared irq=0"))
        if mode & Ctrl.Periodic:
            t = complete(complete(t))
            out.append((t, "drv: stopped CTRL=0"))
        t += PAUSE + 1_111 * n
    out.append((t, "drv: done"))
    return out


@pytest.fixture(scope="module")
def model_trace() -> list[tuple[int, str]]:
    return run_model(timer_program)


def test_program_on_own_kernel_matches_expectation(model_trace) -> None:
    assert [e for e in model_trace if e[1].startswith("drv:")] == expected_driver_trace()
    labels = [label for _, label in model_trace]
    assert any(label.startswith("lst:") for label in labels)
    assert sum(label.startswith("tck:") for label in labels) >= 10
    # Software events are off the clock grid, so bus alignment is exercised.
    assert any(t % P for t, label in model_trace if not label.startswith("drv:"))
    assert FIRST_ACCESS % P


def test_program_on_amaranth_matches_model(model_trace) -> None:
    trace, stats = run_amaranth(timer_program)
    assert trace == model_trace
    cycles = stats.end_time // P
    print(f"\namaranth: {stats.wakes} Python wakes for {cycles} clock cycles")
    assert stats.wakes * 10 < cycles


@pytest.mark.hdl
@pytest.mark.parametrize("sim", SIMULATORS)
def test_program_on_cocotb_matches_model(sim: str, model_trace, record_property) -> None:
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(reason)
    runs = {}
    for spec in ("program", "stimulus:0"):
        run = run_cocotb(Timer(), toplevel="timer", sim=sim, test_module="cocotb_timer",
                         test_dir=HERE, extra_env={"SERVEROS_TIMER_PROGRAM": spec})
        assert run.ok, f"cocotb test failed on {sim} ({spec}); see {run.build_dir}"
        runs[spec] = run.result[spec]
    trace = [tuple(e) for e in runs["program"]["trace"]]
    assert trace == model_trace
    # The bench's scoreboard saw every register access of the model's run, equal to the ps.
    for spec, program in (("program", timer_program), ("stimulus:0", stimulus_program(0))):
        accesses = []
        run_model(program, transactions=accesses.extend)
        assert runs[spec]["stats"]["bus_transactions"] == len(accesses) > 0, spec
    assert same_events(runs["stimulus:0"]["trace"], run_model(stimulus_program(0)))
    # Python is woken by transactions and software timers, not by the clock.
    stats = runs["program"]["stats"]
    record_property("python_wakes", stats["wakes"])
    record_property("clock_cycles", stats["cycles"])
    print(f"\n{sim}: {stats['wakes']} Python wakes for {stats['cycles']} clock cycles")
    assert stats["wakes"] * 10 < stats["cycles"]
