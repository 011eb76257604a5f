"""Block PIO through HostBusBurster: same accesses, same times as a CPU's back-to-back words."""
import random

import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.burst import HostBusBurster
from hw.bus import HostBus
from sim.bindings import BlockInitiator, HostBusInitiator
from sim.bindings.amaranth import AmaranthAccess, AmaranthDriver, add_clock
from sim.bindings.binder import bind_host_bus
from sim.bus import Bus
from sim.cpu import CPU
from sim.kernel import Kernel
from sim.platforms import PROFILES
from sim.time import Clock

CLOCK = Clock(80_000, "tc")
AW = 8


class WaitRam(wiring.Component):
    """256 words of RAM on a HostBus with fixed read and write wait states, counting accesses."""

    bus: In(HostBus(addr_width=AW))
    accesses: Out(16)

    def __init__(self, read_wait: int, write_wait: int):
        self.read_wait, self.write_wait = read_wait, write_wait
        self.mem = Memory(shape=32, depth=1 << AW, init=[])
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        rp = self.mem.read_port(domain="comb")
        wp = self.mem.write_port()
        b = self.bus
        wait = Signal(8)
        busy = Signal()
        m.d.comb += [rp.addr.eq(b.addr), wp.addr.eq(b.addr), wp.data.eq(b.w_data)]
        m.d.sync += b.ack.eq(0)
        with m.If(~b.ack & ~busy & (b.w_en | b.r_en)):
            m.d.sync += [busy.eq(1), wait.eq(0)]
        with m.If(busy):
            need = Signal(8)
            m.d.comb += need.eq(Mux(b.w_en, self.write_wait, self.read_wait))
            with m.If(wait + 1 >= need):
                m.d.sync += [busy.eq(0), b.ack.eq(1), self.accesses.eq(self.accesses + 1),
                             b.r_data.eq(rp.data)]
                m.d.comb += wp.en.eq(b.w_en)
            with m.Else():
                m.d.sync += wait.eq(wait + 1)
        return m



class Top(wiring.Component):
    def __init__(self, rw, ww):
        self.ram = WaitRam(rw, ww)
        self.burst = HostBusBurster(addr_width=AW)
        # The burster's ports as sim.bindings.binder expects them of a device's harness.
        super().__init__({"bus": In(HostBus(addr_width=AW)), "burst_go": In(1),
                          "burst_write": In(1), "burst_addr": In(AW), "burst_count": In(10),
                          "burst_done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram, m.submodules.burst = self.ram, self.burst
        wiring.connect(m, wiring.flipped(self.bus), self.burst.host)
        wiring.connect(m, self.burst.bus, self.ram.bus)
        m.d.comb += [self.burst.go.eq(self.burst_go), self.burst.write.eq(self.burst_write),
                     self.burst.addr.eq(self.burst_addr), self.burst.count.eq(self.burst_count),
                     self.burst_done.eq(self.burst.done)]
        return m


def run(program, use_blocks: bool, rw=5, ww=3):
    top = Top(rw, ww)
    sim = Simulator(top)
    add_clock(sim, CLOCK)
    k = Kernel()
    drv = AmaranthDriver(sim, k)
    target = bind_host_bus(AmaranthAccess(top, drv), drv, CLOCK, addr_width=AW, name="ram",
                           burst=use_blocks)
    assert isinstance(target, BlockInitiator if use_blocks else HostBusInitiator)
    bus = Bus(k)
    bus.map(0, 4 << AW, target, "ram")
    cpu = CPU(k, PROFILES["decstation-5000-125-aegis"])
    log = []

    async def prog():
        for op, addr, arg in program:
            if op == "sleep":
                await k.sleep(arg)
            elif op == "w":
                await cpu.store_words(bus, addr, arg)
                log.append(("w", k.now))
            elif op == "r":
                log.append(("r", await cpu.load_words(bus, addr, arg), k.now))
            elif op == "w1":
                await cpu.store(bus, addr, arg)
                log.append(("w1", k.now))
    k.spawn(prog())
    sim.run()
    return log, cpu.report().by_category


def program(seed):
    rng = random.Random(seed)
    out = []
    for _ in range(8):
        n = rng.randint(1, 40)
        addr = 4 * rng.randint(0, (1 << AW) - n)
        out.append(("w", addr, [rng.getrandbits(32) for _ in range(n)]))
        out.append(("sleep", 0, rng.randint(0, 700_000)))
        out.append(("r", addr, n))
        out.append(("w1", 4 * rng.randint(0, 255), rng.getrandbits(32)))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_blocks_give_the_same_data_and_times_as_word_by_word(seed):
    p = program(seed)
    words, _ = run(p, use_blocks=False)
    blocks, _ = run(p, use_blocks=True)
    assert blocks == words
    # each read follows the write of the same words with only a sleep between
    written = [arg for op, _, arg in p if op == "w"]
    reads = [x[1] for x in blocks if x[0] == "r"]
    assert reads == written


def test_block_timing_is_the_bus_protocol():
    # a write of n words issued at an edge-aligned time t: each access is sampled one cycle
    # after the previous completion, and takes write_wait + 1 cycles to complete.
    P = CLOCK.period
    log, cats = run([("w", 0, list(range(10)))], use_blocks=True, rw=5, ww=3)
    assert log == [("w", 10 * (3 + 2) * P)]
