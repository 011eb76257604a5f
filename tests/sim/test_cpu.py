"""The cost-charging CPU: one thread at a time, interrupts at boundaries, exact accounting,
bus wait states, profile-priced operations, determinism."""
import random

import pytest

from sim.bus import Bus, IrqLine
from sim.cpu import (CHECKSUM, COMPUTE, CONTEXT_SWITCH, COPY, CPU, IDLE, INTERRUPT, IO_WAIT,
                     PROTOCOL, SYSCALL)
from sim.kernel import Kernel, SimulationError
from sim.platforms import DECSTATION_5000_125_AEGIS as AEGIS
from sim.platforms import Cost
from sim.time import NS, US

CY = 40_000   # one 25 MHz cycle in ps


def make(**kw):
    k = Kernel()
    return k, CPU(k, AEGIS, "cpu", **kw)


def test_cycle_is_40ns_and_a_charge_takes_cycles_times_period():
    k, cpu = make()
    assert cpu.period == CY == 40 * NS

    async def t():
        await cpu.charge(25, PROTOCOL)
        assert k.now == 1 * US
        await cpu.charge(37.5, PROTOCOL)          # fractional cycles round up
        assert k.now == 1 * US + 38 * CY
        await cpu.charge(AEGIS.exception_dispatch_cycles, INTERRUPT)   # a Cost in cycles
        assert k.now == 1 * US + 76 * CY

    k.spawn(t())
    k.run()


def test_two_threads_are_serialized_and_a_thread_runs_until_it_blocks():
    k, cpu = make()
    log = []

    async def busy(name, n):
        await cpu.charge(n, PROTOCOL)
        log.append((name, k.now))
        await cpu.charge(n, COPY)           # consecutive: keeps the CPU
        log.append((name, k.now))

    k.spawn(busy("a", 10), name="a")
    k.spawn(busy("b", 5), name="b")
    k.run()
    assert log == [("a", 10 * CY), ("a", 20 * CY), ("b", 25 * CY), ("b", 30 * CY)]
    r = cpu.report()
    assert r.by_context == {"a": 20 * CY, "b": 10 * CY}
    assert r.switches == 2


def test_awaiting_anything_else_releases_the_cpu_to_the_next_waiter():
    k, cpu = make()
    log = []

    async def polite(name):
        for _ in range(2):
            await cpu.charge(10)
            log.append((name, k.now))
            await k.sleep(0)                  # blocks (for no time): the CPU goes round

    k.spawn(polite("a"), name="a")
    k.spawn(polite("b"), name="b")
    k.run()
    assert log == [("a", 10 * CY), ("b", 20 * CY), ("a", 30 * CY), ("b", 40 * CY)]
    assert cpu.switches == 4


def test_waiters_are_served_in_fifo_order_and_yield_requeues():
    k, cpu = make()
    log = []

    async def hog():
        await cpu.charge(10)
        await cpu.yield_()                    # b, c, d were waiting: they go first
        log.append(("hog", k.now))
        await cpu.charge(1)

    async def other(name, delay):
        await k.sleep(delay)
        await cpu.charge(2)
        log.append((name, k.now))

    k.spawn(hog(), name="hog")
    k.spawn(other("c", 3 * CY), name="c")
    k.spawn(other("b", 1 * CY), name="b")
    k.spawn(other("d", 3 * CY), name="d")
    k.run()
    assert log == [("b", 12 * CY), ("c", 14 * CY), ("d", 16 * CY), ("hog", 16 * CY)]


def test_idle_accounting_adds_up_exactly_and_fractions_sum_to_one():
    k, cpu = make()

    async def t():
        await cpu.charge(7, SYSCALL)
        await k.sleep(1234)                   # not a whole cycle: idle is exact in ps
        await cpu.charge(3, COPY)
        await k.sleep(5 * US)

    k.spawn(t())
    k.run()
    r = cpu.report()
    assert r.elapsed == k.now == 10 * CY + 1234 + 5 * US
    assert sum(s.ps for s in r.by_category.values()) == r.elapsed
    assert r.by_category[IDLE].ps == 1234 + 5 * US
    assert r.by_category[SYSCALL].cycles == 7 and r.by_category[COPY].cycles == 3
    assert sum(s.fraction for s in cpu.breakdown().values()) == pytest.approx(1.0)
    assert r.rows()[-1][0] == IDLE and r.rows()[0][0] == SYSCALL


def test_reset_stats_starts_a_new_interval():
    k, cpu = make()

    async def t():
        await cpu.charge(10)
        cpu.reset_stats()
        await cpu.charge(4, COPY)
        await k.sleep(6 * CY)

    k.spawn(t())
    k.run()
    r = cpu.report()
    assert (r.start, r.elapsed) == (10 * CY, 10 * CY)
    assert r.by_category[COPY].fraction == pytest.approx(0.4)
    assert COMPUTE not in r.by_category


def _raise_at(k, line, t):
    async def dev():
        await k.sleep_until(t)
        line.set()
    return k.spawn(dev(), name="dev", daemon=True)


def _le0_logging_handler(k, cpu, log):
    """Line ``le0`` with a handler that logs when it runs and charges 20 interrupt cycles."""
    line = IrqLine(k, "le0")

    async def handler():
        log.append(("irq", k.now))
        await cpu.charge(20, INTERRUPT)
        line.clear()

    cpu.attach_irq(line, handler)
    return line


def test_interrupt_mid_charge_is_taken_at_the_next_cycle_boundary():
    k, cpu = make()
    log = []
    line = _le0_logging_handler(k, cpu, log)

    async def thread():
        await cpu.charge(100, PROTOCOL)
        log.append(("done", k.now))

    k.spawn(thread(), name="thread")
    _raise_at(k, line, 30 * CY + 5)           # 5 ps into cycle 30
    k.run()
    assert log == [("irq", 31 * CY), ("done", 120 * CY)]
    r = cpu.report()
    assert r.by_category[PROTOCOL].cycles == 100 and r.by_category[INTERRUPT].cycles == 20
    assert r.by_context == {"thread": 100 * CY, "irq:le0": 20 * CY}
    assert r.interrupts == {"le0": 1}


def test_with_no_quantum_interrupts_wait_for_the_end_of_the_charge():
    k, cpu = make(irq_quantum=None)
    line = IrqLine(k, "le0")
    log = []

    async def handler():
        log.append(("irq", k.now))
        await cpu.charge(20, INTERRUPT)
        line.clear()

    cpu.attach_irq(line, handler)

    async def thread():
        await cpu.charge(100, PROTOCOL)
        log.append(("first", k.now))
        await cpu.charge(10, PROTOCOL)       # the interrupt is taken before this begins
        log.append(("second", k.now))

    k.spawn(thread(), name="thread")
    _raise_at(k, line, 30 * CY + 5)
    k.run()
    assert log == [("first", 100 * CY), ("irq", 100 * CY), ("second", 130 * CY)]


def test_quantum_bounds_latency_and_dispatch_cycles_are_charged():
    k, cpu = make(irq_quantum=8)
    line = IrqLine(k, "le0")
    log = []

    async def handler():
        log.append(("irq", k.now))
        await cpu.charge(5, PROTOCOL)
        line.clear()

    cpu.attach_irq(line, handler, dispatch_cycles=AEGIS.interrupt_dispatch_cycles)

    async def thread():
        await cpu.charge(50)
        log.append(("done", k.now))

    k.spawn(thread(), name="t")
    _raise_at(k, line, 9 * CY)               # quanta boundaries at 0, 8, 16 cycles
    k.run()
    # dispatch is 37.5 -> 38 cycles, then the handler's own 5
    assert log == [("irq", 16 * CY + 38 * CY), ("done", 50 * CY + 43 * CY)]
    assert cpu.report().by_category[INTERRUPT].cycles == 38


def test_idle_cpu_takes_an_interrupt_at_once_and_ahead_of_waiting_threads():
    k, cpu = make()
    line = IrqLine(k, "le0")
    log = []

    async def handler():
        log.append(("irq", k.now))
        await cpu.charge(10, INTERRUPT)
        line.clear()

    cpu.attach_irq(line, handler)

    async def thread():
        await k.sleep(5 * CY)
        line.set()                            # raised and a charge requested at once
        await cpu.charge(3)
        log.append(("thread", k.now))

    k.spawn(thread(), name="t")
    k.run()
    assert log == [("irq", 5 * CY), ("thread", 18 * CY)]
    assert cpu.report().by_context["irq:le0"] == 10 * CY


def test_level_sensitive_line_reruns_the_handler_until_it_drops():
    k, cpu = make()
    line = IrqLine(k, "le0")
    work = [3]
    calls = []

    async def handler():
        calls.append(k.now)
        await cpu.charge(2, INTERRUPT)
        work[0] -= 1
        if work[0] == 0:
            line.clear()

    cpu.attach_irq(line, handler)
    line.set()
    k.run(until=1 * US)
    assert calls == [0, 2 * CY, 4 * CY]


def test_interrupt_storm_is_reported():
    k, cpu = make()
    line = IrqLine(k, "stuck")

    async def handler():
        pass                                   # never clears the device

    cpu.attach_irq(line, handler)
    line.set()
    with pytest.raises(SimulationError, match="interrupt storm on line 'stuck'"):
        k.run(until=1 * US)


def test_spl_masks_until_lowered_and_higher_levels_nest():
    k, cpu = make()
    net = IrqLine(k, "net")
    clock = IrqLine(k, "clock")
    log = []

    async def net_handler():
        log.append(("net", k.now))
        await cpu.charge(10, INTERRUPT)        # the clock interrupts this
        net.clear()
        log.append(("net-end", k.now))

    async def clock_handler():
        log.append(("clock", k.now))
        await cpu.charge(4, INTERRUPT)
        clock.clear()

    cpu.attach_irq(net, net_handler, level=1)
    cpu.attach_irq(clock, clock_handler, level=2)

    async def thread():
        await cpu.charge(1)
        s = cpu.spl(1)                         # splnet: the net line waits
        assert s == 0 and cpu.level == 1
        await cpu.charge(10)
        log.append(("critical-end", k.now))
        cpu.spl(s)
        await cpu.charge(30)
        log.append(("done", k.now))

    async def devices():
        await k.sleep(3 * CY)
        net.set()
        await k.sleep(12 * CY)                # t = 15: inside the net handler (11..21)
        clock.set()

    k.spawn(thread(), name="t")
    k.spawn(devices(), name="dev", daemon=True)
    k.run()
    assert log == [("critical-end", 11 * CY), ("net", 11 * CY), ("clock", 15 * CY),
                   ("net-end", 25 * CY), ("done", 55 * CY)]


def test_spl_by_a_thread_without_the_cpu_is_an_error():
    k, cpu = make()

    async def t():
        cpu.spl(1)

    k.spawn(t())
    with pytest.raises(SimulationError, match="does not hold the CPU"):
        k.run()


class FakeDevice:
    """A BusTarget whose reads take 100 ns and writes 250 ns."""

    def __init__(self, k):
        self.k = k
        self.regs = {}

    async def read(self, offset):
        await self.k.sleep(100 * NS)
        return self.regs.get(offset, 0)

    async def write(self, offset, value):
        await self.k.sleep(250 * NS)
        self.regs[offset] = value


def test_load_and_store_charge_the_devices_wait_states_rounded_up_to_cycles():
    k, cpu = make()
    bus = Bus(k)
    dev = FakeDevice(k)
    bus.map(0x1000, 0x100, dev, "fake")
    got = []

    async def t():
        await cpu.store(bus, 0x1004, 0xCAFE)
        got.append(k.now)                      # 250 ns -> 7 cycles = 280 ns
        got.append(await cpu.load(bus, 0x1004))
        got.append(k.now)                      # + 100 ns -> 3 cycles = 120 ns
        await cpu.store_words(bus, 0x1010, [1, 2])
        words = await cpu.load_words(bus, 0x1010, 2)
        got.append((words, k.now))

    k.spawn(t())
    k.run()
    # A block is one transaction, rounded up once: 2 x 250 ns -> 13 cycles, 2 x 100 ns -> 5.
    assert got == [7 * CY, 0xCAFE, 10 * CY, ([1, 2], 10 * CY + 13 * CY + 5 * CY)]
    r = cpu.report()
    assert r.by_category[IO_WAIT].cycles == 28 and r.by_category[IDLE].ps == 0


def test_bus_access_holds_the_cpu_against_other_threads():
    k, cpu = make()
    bus = Bus(k)
    bus.map(0, 0x100, FakeDevice(k), "fake")
    log = []

    async def a():
        await cpu.load(bus, 0)
        log.append(("a", k.now))

    async def b():
        await k.sleep(1 * CY)
        await cpu.charge(1)
        log.append(("b", k.now))

    k.spawn(a(), name="a")
    k.spawn(b(), name="b")
    k.run()
    assert log == [("a", 3 * CY), ("b", 4 * CY)]


def test_copy_and_checksum_charge_the_profile_costs():
    k, cpu = make()

    async def t():
        await cpu.copy(1460)
        await cpu.checksum(1460, cached=True)

    k.spawn(t())
    k.run()
    b = cpu.breakdown()
    assert b[COPY].cycles == AEGIS.copy_cycles(1460)
    assert b[CHECKSUM].cycles == AEGIS.checksum_cycles(1460, cached=True)


def test_on_switch_hook_sees_each_change_of_thread():
    seen = []
    k = Kernel()
    cpu = CPU(k, AEGIS, on_switch=lambda prev, new: seen.append((prev and prev.name, new.name)))

    async def t(n):
        await cpu.charge(n, CONTEXT_SWITCH)

    for name in "ab":
        k.spawn(t(3), name=name)
    k.run()
    assert seen == [(None, "a"), ("a", "b")]


def test_a_waiting_thread_can_be_cancelled():
    k, cpu = make()
    log = []

    async def a():
        await cpu.charge(10)
        log.append(("a", k.now))

    async def b():
        await cpu.charge(10)
        log.append(("b", k.now))

    async def c():
        await cpu.charge(1)
        log.append(("c", k.now))

    k.spawn(a(), name="a")
    tb = k.spawn(b(), name="b")
    k.spawn(c(), name="c")
    k.call_at(5 * CY, tb.cancel)
    k.run()
    assert log == [("a", 10 * CY), ("c", 11 * CY)]


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (float("nan"), ValueError),
                                      ("3", TypeError), (Cost(5, "ps", "x"), ValueError)])
def test_bad_charges_are_refused(bad, exc):
    k, cpu = make()

    async def t():
        await cpu.charge(bad)

    k.spawn(t())
    with pytest.raises(SimulationError) as info:
        k.run()
    assert isinstance(info.value.__cause__, exc)


def test_idle_is_not_a_chargeable_category_and_charging_needs_a_task():
    k, cpu = make()

    async def t():
        await cpu.charge(1, IDLE)

    k.spawn(t())
    with pytest.raises(SimulationError, match="idle"):
        k.run()
    with pytest.raises(SimulationError, match="from a kernel task"):
        cpu.charge(1).send(None)


def _random_run(seed):
    rng = random.Random(seed)
    k = Kernel()
    cpu = CPU(k, AEGIS)
    line = IrqLine(k, "le0")
    log = []

    async def handler():
        log.append(("irq", k.now))
        await cpu.charge(rng.randrange(1, 30), INTERRUPT)
        line.clear()

    cpu.attach_irq(line, handler)

    async def thread(i):
        for _ in range(20):
            await cpu.charge(rng.randrange(0, 200), rng.choice([COPY, PROTOCOL, SYSCALL]))
            if rng.random() < 0.5:
                await k.sleep(rng.randrange(0, 10_000_000))
            log.append((i, k.now))

    async def device():
        for _ in range(30):
            await k.sleep(rng.randrange(1, 5_000_000))
            line.set()

    for i in range(3):
        k.spawn(thread(i), name=f"t{i}")
    k.spawn(device(), name="dev", daemon=True)
    k.run()
    return log, cpu.report()


def test_runs_are_deterministic():
    a, b = _random_run(7), _random_run(7)
    assert a == b
    log, r = a
    assert sum(s.ps for s in r.by_category.values()) == r.elapsed
    assert r.interrupts["le0"] >= 1


def test_cancelling_the_owner_mid_charge_frees_the_cpu():
    k, cpu = make()
    log = []

    async def a():
        await cpu.charge(100)
        log.append("a finished")

    async def b():
        await cpu.charge(10)
        log.append(("b", k.now))

    ta = k.spawn(a(), name="a")
    k.spawn(b(), name="b")
    k.call_at(20 * CY, ta.cancel)
    k.run()
    assert log == [("b", 30 * CY)]


def test_a_thread_queueing_while_the_idle_owners_release_check_is_due_does_not_freeze_the_cpu():
    # Issue 13 item 1: the owner A ends a charge and goes to wait for something else (a frame);
    # its release check is due at that same picosecond. B asks for the CPU at that instant,
    # before the check runs. B's arrival must not void A's release: A does not hold the CPU
    # while it waits, and B runs at once.
    k, cpu = make()
    frame = k.event("frame")
    log = []

    async def receiver():
        await cpu.charge(10)
        log.append(("a-waits", k.now))
        await frame                          # idle, waiting for the next frame
        await cpu.charge(1)
        log.append(("a", k.now))

    async def retransmit():
        await k.sleep_until(10 * CY)         # due at A's release instant, scheduled earlier
        await cpu.charge(5)
        log.append(("b", k.now))
        frame.set()

    k.spawn(receiver(), name="server.aegis-rx")
    k.spawn(retransmit(), name="tcp-rexmt")
    k.run(until=1_000 * CY)
    assert log == [("a-waits", 10 * CY), ("b", 15 * CY), ("a", 16 * CY)]
    assert cpu.owner is None


def _lose_release_checks(cpu):
    """Break the CPU as issue 13's freeze did: an owner that suspends is never released."""
    cpu._owner_suspends = lambda: None


def test_watchdog_names_the_idle_owner_and_the_waiters_of_a_frozen_cpu():
    k, cpu = make(watchdog=10 * US)
    _lose_release_checks(cpu)
    frame = k.event("frame")

    async def receiver():
        await cpu.charge(10)
        await frame                          # holds the CPU while it waits: the freeze

    async def other(i):
        await k.sleep(20 * CY)
        await cpu.charge(5)

    k.spawn(receiver(), name="server.aegis-rx")
    for i in range(3):
        k.spawn(other(i), name=f"tcp-rexmt-{i}")
    with pytest.raises(SimulationError) as e:
        k.run(until=1_000 * US)
    msg = str(e.value)
    assert "'server.aegis-rx'" in msg and "receiver" in msg      # the owner and where it waits
    assert all(f"'tcp-rexmt-{i}'" in msg for i in range(3)) and "3 task(s)" in msg
    assert k.now <= 20 * CY + 2 * 10 * US + 10 * US               # found within two checks


def test_watchdog_reports_an_unmasked_interrupt_that_no_handler_takes():
    k, cpu = make(watchdog=10 * US)
    _lose_release_checks(cpu)
    line = IrqLine(k, "lance")
    handled = []

    async def handler():
        handled.append(k.now)
        line.clear()

    cpu.attach_irq(line, handler, level=2)

    async def receiver():
        await cpu.charge(10)
        await k.event("never")

    k.spawn(receiver(), name="server.aegis-rx")
    k.call_at(50 * CY, line.set)
    with pytest.raises(SimulationError) as e:
        k.run(until=1_000 * US)
    assert "interrupt line 'lance'" in str(e.value) and "'server.aegis-rx'" in str(e.value)
    assert handled == []


def test_watchdog_stays_quiet_on_long_charges_and_disarms_when_nothing_waits():
    k, cpu = make(watchdog=10 * US)
    line = IrqLine(k, "lance")

    async def handler():
        await cpu.charge(3)
        line.clear()

    cpu.attach_irq(line, handler, level=2)

    async def long_worker():
        await cpu.charge(10_000)             # 400 us: many watchdog intervals, other waits
        await k.sleep(1_000 * US)

    async def waiter():
        await k.sleep(CY)
        await cpu.charge(1)

    k.spawn(long_worker(), name="long")
    k.spawn(waiter(), name="waiter")
    k.call_at(100 * CY, line.set)
    k.run()
    assert not cpu._wd_armed and k.now == 10_003 * CY + 1_000 * US


# -- charges: several (cycles, category) pieces in one CPU operation ------------------------------
def test_charges_split_an_interrupt_between_the_pieces_as_separate_charges_do():
    k, cpu = make()
    log = []
    line = _le0_logging_handler(k, cpu, log)

    async def thread():
        await cpu.charges([(100, PROTOCOL), (50.2, CHECKSUM), (0, COPY)])
        log.append(("done", k.now))

    k.spawn(thread(), name="thread")
    _raise_at(k, line, 120 * CY + 5)          # 20 cycles and 5 ps into the second piece
    k.run()
    # 50.2 rounds up to 51 on its own; the interrupt is taken at the next cycle boundary.
    assert log == [("irq", 121 * CY), ("done", 171 * CY)]
    r = cpu.report()
    assert (r.by_category[PROTOCOL].cycles, r.by_category[CHECKSUM].cycles,
            r.by_category[INTERRUPT].cycles) == (100, 51, 20)
    assert COPY not in r.by_category
    assert r.by_context == {"thread": 151 * CY, "irq:le0": 20 * CY}


def _pieces_run(seed: int, combined: bool, quantum: int | None):
    """Three threads charging random pieces (separately or with ``charges``), interrupts
    raised at random times, many of them exactly on a piece's boundary, and a device task
    logging at random instants (so the order of same-time entries shows)."""
    rng = random.Random(seed)
    k = Kernel()
    cpu = CPU(k, AEGIS, irq_quantum=quantum)
    line = IrqLine(k, "le0")
    log = []

    async def handler():
        log.append(("irq", k.now, cpu.owner.name if cpu.owner else None))
        await cpu.charge(rng.randrange(0, 30), INTERRUPT)
        line.clear()

    cpu.attach_irq(line, handler, dispatch_cycles=3)
    plans = [[[(rng.choice([rng.randrange(0, 60), rng.random() * 40]),
                rng.choice([COPY, PROTOCOL, CHECKSUM, SYSCALL])) for _ in range(rng.randrange(1, 5))]
              for _ in range(15)] for _ in range(3)]
    naps = [[rng.randrange(0, 4) * 25 * CY for _ in range(15)] for _ in range(3)]
    raises = sorted(rng.randrange(1, 400) * CY + rng.choice([0, 0, 0, 1, CY // 2])
                    for _ in range(40))

    async def thread(i):
        for pieces, nap in zip(plans[i], naps[i]):
            if combined:
                await cpu.charges(pieces)
            else:
                for c, cat in pieces:
                    await cpu.charge(c, cat)
            log.append((i, k.now))
            if nap:
                await k.sleep(nap)

    async def device():
        for t in raises:
            if t > k.now:
                await k.sleep_until(t)
            log.append(("dev", k.now))
            line.set()

    for i in range(3):
        k.spawn(thread(i), name=f"t{i}")
    k.spawn(device(), name="dev", daemon=True)
    k.run()
    r = cpu.report()
    return log, r.by_category, r.by_context, r.interrupts, r.switches, k.now, k.events


@pytest.mark.parametrize("quantum", [1, 8, None])
def test_charges_are_the_separate_charges_to_the_picosecond_and_the_event(quantum):
    for seed in range(25):
        separate = _pieces_run(seed, False, quantum)
        assert separate[3]["le0"] >= 1                  # interrupts did land
        assert _pieces_run(seed, True, quantum) == separate, seed


def test_charges_refuse_a_bad_piece_before_charging_and_an_empty_one_takes_nothing():
    k, cpu = make()
    errors = []

    async def thread():
        for bad in ([(10, PROTOCOL), (-1, COPY)], [(10, PROTOCOL), (5, IDLE)]):
            try:
                await cpu.charges(bad)
            except ValueError as e:
                errors.append(str(e))
        await cpu.charges([])

    k.spawn(thread(), name="t")
    k.run()
    assert len(errors) == 2 and "negative" in errors[0] and "idle" in errors[1]
    assert k.now == 0 and cpu.switches == 0          # nothing charged, the CPU never taken
