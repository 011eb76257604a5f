"""Several RTL devices, each with its own clock, in one RtlSimulation (sim.bindings.session), on
direct Verilator and on Amaranth's simulator: the software reaches each over its host bus and
waits for its interrupt; every time is the HostBus protocol's to the picosecond, equal on both
backends, and Python wakes per transaction, not per cycle."""
from __future__ import annotations

import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.bus import HostBus
from sim.bindings import BindingError
from sim.bindings.binder import bind_host_bus, bind_irq
from sim.bindings.session import RtlSimulation
from sim.devices import DeviceKind, DeviceSpec
from sim.kernel import Kernel
from sim.time import Clock

ADDR_WIDTH = 2
#: Registers (word offsets x 4): COUNT (cycles x step since time 0), LEFT (write n: irq rises
#: n cycles later), ACK (write: irq falls), MEM (read: word 0 of mem; write: word 1 of mem).
COUNT, LEFT, ACK, MEM = 0, 4, 8, 12


class Ticker(wiring.Component):
    """A counter with a countdown interrupt and an 8-word memory, on a HostBus; the counter
    advances by the input ``step`` each cycle (a strap: set once before the clock runs)."""

    def __init__(self):
        self.mem = Memory(shape=32, depth=8, init=[])
        super().__init__({"bus": In(HostBus(addr_width=ADDR_WIDTH)), "irq": Out(1),
                          "step": In(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        bus = self.bus
        count, left = Signal(32), Signal(32)
        rd_port = self.mem.read_port(domain="comb")
        wr_port = self.mem.write_port()
        act = ~bus.ack
        wr, rd = act & bus.w_en, act & bus.r_en
        m.d.sync += [count.eq(count + self.step), bus.ack.eq(wr | rd)]
        m.d.comb += [wr_port.addr.eq(1), wr_port.data.eq(bus.w_data),
                     wr_port.en.eq(wr & (bus.addr == MEM // 4))]
        with m.If(rd):
            m.d.sync += bus.r_data.eq(Mux(bus.addr == COUNT // 4, count,
                                          Mux(bus.addr == MEM // 4, rd_port.data, left)))
        with m.If(left != 0):
            m.d.sync += left.eq(left - 1)
            with m.If(left == 1):
                m.d.sync += self.irq.eq(1)
        with m.If(wr & (bus.addr == LEFT // 4)):
            m.d.sync += left.eq(bus.w_data)
        with m.If(wr & (bus.addr == ACK // 4)):
            m.d.sync += self.irq.eq(0)
        return m


class TickerKind(DeviceKind):
    window = 16
    memories = ("mem",)

    def __init__(self, kind: str, period: int, step: int):
        self.kind, self.clock, self.step = kind, Clock(period), step

    def harness(self, spec):
        return Ticker()

    def harness_key(self, spec):
        # One build for both kinds (they differ by clock and by the step strap). A cached
        # Verilator build is reused while hw/ and this key are unchanged: bump the version
        # when Ticker changes.
        return "test_ticker_v2"

    def strap(self, access, driver) -> None:
        """Drive the instance's ``step`` at the kernel's time 0, before the first edge (a
        kernel entry: every backend's driver runs it inside its simulator)."""
        port = access.port("step")
        driver.kernel.call_at(0, lambda: driver.set(port, self.step))


SLOW = TickerKind("ticker80", 80_000, 1)
FAST = TickerKind("ticker30", 30_000, 3)


def _expected(period: int, step: int, start: int, n: int) -> dict:
    """The HostBus protocol's times (hw.bus.HostBus, sim.bindings.HostBusInitiator), worked out
    by hand: a request at t is sampled at the first edge after t (half a cycle later when t is
    an edge), ack rises at that edge e and the access completes at e + period."""
    def access(t):
        e = (t // period + 1) * period
        return e, e + period
    e0, done_read = access(start)
    e1, done_write = access(done_read)
    irq = e1 + n * period
    _, done_ack = access(irq)
    e3, done_mem_read = access(done_ack)
    _, done_mem_write = access(done_mem_read)
    return {"count": step * (e0 // period), "read_done": done_read, "armed": done_write,
            "irq": irq, "acked": done_ack, "mem0": 0x5EED0000 + start, "mem_read_done": done_mem_read,
            "mem1": [0xC0DE0000 + n], "end": done_mem_write}


def _software(k, bus, irq, access, start: int, n: int, out: dict):
    async def main():
        await k.sleep_until(start)
        access.mem_write("mem", 0, [0x5EED0000 + start])
        out["count"] = await bus.read(COUNT)
        out["read_done"] = k.now
        await bus.write(LEFT, n)
        out["armed"] = k.now
        await irq.wait_high()
        out["irq"] = k.now
        await bus.write(ACK, 0)
        out["acked"] = k.now
        assert irq.level == 0
        out["mem0"] = await bus.read(MEM)
        out["mem_read_done"] = k.now
        await bus.write(MEM, 0xC0DE0000 + n)
        out["mem1"] = access.mem_read("mem", 1, 1)
        out["end"] = k.now
    return main()


#: (instance, kind, software start ps, countdown cycles)
PLAN = [("slow0", SLOW, 1_000_000, 400), ("fast0", FAST, 2_345_678, 1500)]


def _run(backend: str, plan=PLAN, waves_dir=None):
    k = Kernel()
    sim = RtlSimulation(k, backend, waves_dir=waves_dir)
    for inst, kind, _, _ in plan:
        sim.add(inst, kind, DeviceSpec(kind.kind, inst, 0))
    sim.start()
    results = {}
    try:
        for inst, kind, start, n in plan:
            access = sim.access(inst)
            kind.strap(access, sim.driver)
            bus = bind_host_bus(access, sim.driver, kind.clock, addr_width=ADDR_WIDTH, name=inst)
            irq = bind_irq(access, sim.driver, name=f"{inst}.irq")
            results[inst] = {}
            k.spawn(_software(k, bus, irq, access, start, n, results[inst]), name=inst)
        sim.run()
        return (results, sim.stats, sim.waves) if waves_dir else (results, sim.stats)
    finally:
        sim.close()


@pytest.fixture(scope="module")
def runs():
    from serveros.rtl import simulator_missing
    out = {"amaranth": _run("amaranth")}
    if simulator_missing("verilator") is None:
        out["verilator"] = _run("verilator")
    return out


@pytest.mark.parametrize("backend", ["verilator", "amaranth"])
def test_two_clocks_exact_times_few_wakes(runs, backend) -> None:
    if backend not in runs:
        pytest.skip("verilator is not installed")
    results, stats = runs[backend]
    for inst, kind, start, n in PLAN:
        assert results[inst] == _expected(kind.clock.period, kind.step, start, n), inst
    # 10 bus accesses and 2 irq edges: Python wakes per transaction, not per clock cycle.
    cycles = stats.end_time // 30_000 + stats.end_time // 80_000
    assert cycles > 2000
    assert stats.wakes < 60
    assert stats.end_time == max(r["end"] for r in results.values())


def test_backends_agree(runs) -> None:
    if "verilator" not in runs:
        pytest.skip("verilator is not installed")
    assert runs["verilator"][0] == runs["amaranth"][0]
    assert runs["verilator"][1] == runs["amaranth"][1]


@pytest.mark.hdl
def test_two_instances_of_one_build_are_independent() -> None:
    from serveros.rtl import simulator_missing
    if simulator_missing("verilator"):
        pytest.skip("verilator is not installed")
    # b writes its memory and arms its countdown while a's runs: shared state would show.
    plan = [("a", FAST, 500_000, 50), ("b", FAST, 700_000, 20), ("c", SLOW, 100_000, 70)]
    results, _ = _run("verilator", plan)
    for inst, kind, start, n in plan:
        assert results[inst] == _expected(kind.clock.period, kind.step, start, n), inst


@pytest.mark.slow
@pytest.mark.hdl
@pytest.mark.parametrize("backend", ["verilator", "amaranth"])
def test_waves_one_vcd_per_instance(backend, tmp_path, monkeypatch) -> None:
    from serveros.rtl import simulator_missing
    if backend == "verilator" and simulator_missing("verilator"):
        pytest.skip("verilator is not installed")
    monkeypatch.setenv("SERVEROS_WAVES", "1")
    results, _, waves = _run(backend, waves_dir=tmp_path)
    for inst, kind, start, n in PLAN:           # tracing changes no time
        assert results[inst] == _expected(kind.clock.period, kind.step, start, n), inst
    assert sorted(waves) == sorted(inst for inst, *_ in PLAN)
    for inst, path in waves.items():
        text = path.read_text()
        assert path.parent == tmp_path and "$enddefinitions" in text and "irq" in text
    if backend == "verilator":
        assert len(set(waves.values())) == len(PLAN)


def test_session_errors_name_the_problem() -> None:
    k = Kernel()
    with pytest.raises(ValueError, match="backend must be one of"):
        RtlSimulation(k, "icarus")
    sim = RtlSimulation(k, "amaranth")
    spec = DeviceSpec("ticker80", "x", 0)
    with pytest.raises(ValueError, match="instance name"):
        sim.add("1x", SLOW, spec)
    with pytest.raises(ValueError, match="spec is of kind 'ticker80', not 'ticker30'"):
        sim.add("x", FAST, spec)
    with pytest.raises(BindingError, match="start"):
        sim.access("x")
    sim.add("x", SLOW, spec)
    with pytest.raises(ValueError, match="already in"):
        sim.add("x", SLOW, spec)
    sim.start()
    with pytest.raises(BindingError, match="already started"):
        sim.add("y", SLOW, DeviceSpec("ticker80", "y", 0))
    with pytest.raises(BindingError, match="no RTL instance 'y'"):
        sim.access("y")
    with pytest.raises(BindingError, match="no port 'nope'"):
        sim.access("x").port("nope")
    sim.run()                           # no task: returns at once
    with pytest.raises(BindingError, match="already run"):
        sim.run()
    sim.close()
    with pytest.raises(BindingError, match="closed"):
        sim.access("x")
