"""The host bus's BFM pieces that need no HDL simulator: transactions, the scoreboard, the
reference recorder (against the timer's protocol arithmetic) and the Amaranth initiator's
checks. The cocotb driver and monitor run in tests/hw/cocotb_timer.py, cocotb_disk.py and
cocotb_lance.py."""
from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from bfm import HostBusTransaction, Scoreboard
from bfm.amaranth_hostbus import TestbenchHostBus
from bfm.reference import RecordingTarget
from hw.timer.gateware import Timer
from hw.timer.model import TimerModel
from hw.timer.registers import Reg
from sim.bindings.amaranth import add_clock
from sim.bus import IrqLine
from sim.kernel import Kernel
from sim.time import NS, Clock

CLOCK = Clock(40 * NS, "clk")
P = CLOCK.period


def test_transaction_fields_equality_and_validation() -> None:
    w = HostBusTransaction.writing(8, 0xAB)
    assert (w.addr, w.write, w.data, w.start, w.end) == (8, True, 0xAB, None, None)
    assert HostBusTransaction.reading(4) == HostBusTransaction(4, False)
    assert HostBusTransaction(4, False, 1, 0, P) != HostBusTransaction(4, False, 1, 0, 2 * P)
    assert repr(HostBusTransaction(4, True, 1, 0, P)) == \
        "HostBusTransaction(W 0x4=0x00000001 @0..40000ps)"
    with pytest.raises(ValueError, match="word-aligned byte offset >= 0, not 6"):
        HostBusTransaction.reading(6)
    with pytest.raises(ValueError, match="a write of 0x4 needs data"):
        HostBusTransaction(4, True)
    with pytest.raises(ValueError, match="32-bit unsigned int, not 4294967296"):
        HostBusTransaction.writing(0, 1 << 32)
    with pytest.raises(ValueError, match="end .* must come after start"):
        HostBusTransaction(0, False, 0, P, P)


def test_scoreboard_reports_wrong_unexpected_and_missing() -> None:
    a, b, c = (HostBusTransaction(4 * i, False, i, i * P, (i + 1) * P) for i in range(3))
    sb = Scoreboard(name="t")
    sb.expect([a, b])
    sb.observe(a)
    sb.observe(b)
    sb.check()
    assert (sb.matched, sb.errors, sb.pending) == (2, 0, 0)
    sb.observe(c)
    with pytest.raises(AssertionError, match=r"2 matched, 1 wrong, 0 missing:\n  #2: unexpected"):
        sb.check()
    sb = Scoreboard(name="t")
    sb.expect([a, b, c])
    sb.observe(b)
    with pytest.raises(AssertionError, match="(?s)#0: got .* expected .*never observed"):
        sb.check()
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        Scoreboard(name="")


def test_recording_target_gives_the_protocol_times() -> None:
    """Accesses to the timer model: first sampled at the edge after the request (or one cycle
    after the previous completion, while it waited), completed one cycle after (no wait
    states); two tasks at once are served one at a time."""
    k = Kernel()
    got: list[HostBusTransaction] = []
    bus = RecordingTarget(k, TimerModel(k, CLOCK, IrqLine(k, "irq")), CLOCK, callback=got.append)

    async def a() -> None:
        await k.sleep(1_000)
        await bus.write(Reg.Load, 77)
        assert await bus.read(Reg.Load) == 77

    async def b() -> None:
        await k.sleep(1_000)
        await bus.read(Reg.Ctrl)
    k.spawn(a())
    k.spawn(b())
    k.run()
    assert got == bus.transactions == [
        HostBusTransaction(Reg.Load, True, 77, P, 2 * P),
        HostBusTransaction(Reg.Ctrl, False, 0, 3 * P, 4 * P),
        HostBusTransaction(Reg.Load, False, 77, 5 * P, 6 * P)]
    with pytest.raises(TypeError, match="clock must be a sim.time.Clock"):
        RecordingTarget(k, bus, 40 * NS)


def test_testbench_initiator_counts_edges_and_checks_offsets() -> None:
    dut = Timer()
    sim = Simulator(dut)
    add_clock(sim, CLOCK)
    out = {}

    async def bench(ctx) -> None:
        bus = TestbenchHostBus(ctx, dut.bus)
        out["write"] = await bus.access(Reg.Load, 5)
        out["read"] = await bus.read(Reg.Load)
        with pytest.raises(ValueError, match=r"word-aligned inside the 0x10-byte window, not 16"):
            await bus.read(16)
    sim.add_testbench(bench)
    sim.run()
    assert out == {"write": (0, 2), "read": 5}
