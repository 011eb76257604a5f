"""sim.bus.RegisterPort: a device model's register accesses, timed as hw.bus.HostBus."""
import pytest

from sim.bus import RegisterPort
from sim.kernel import Kernel, SimulationError
from sim.time import Clock

P = 80_000
CLOCK = Clock(P)
WAIT = 2


class Regs:
    """A register file that logs what the port asks of it, and when."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.words = {0: 7, 4: 9}
        self.log: list[tuple] = []

    def peek(self, offset: int, e: int) -> int:
        self.log.append(("peek", offset, e, self.k.now))
        return self.words.get(offset, 0)

    def poke(self, offset: int, value: int, e: int) -> None:
        self.log.append(("poke", offset, value, e, self.k.now))
        self.words[offset] = value


def rig():
    k = Kernel()
    r = Regs(k)
    port = RegisterPort(k, CLOCK, name="toy", tag="toy", window_size=0x10, wait_cycles=WAIT,
                        peek=r.peek, poke=r.poke)
    return k, r, port


def test_access_takes_effect_wait_cycles_after_the_next_edge_and_completes_a_cycle_later():
    k, r, port = rig()
    done = []

    async def t():
        await k.sleep(P // 2)                       # mid-cycle: sampled at the edge at P
        assert await port.read(4) == 9
        done.append(k.now)
        await port.write(8, 0xDEAD_BEEF)            # requested exactly on an edge: the next one
        done.append(k.now)

    k.spawn(t())
    k.run()
    e1 = P + WAIT * P
    e2 = e1 + P + P + WAIT * P
    assert r.log == [("peek", 4, e1, e1), ("poke", 8, 0xDEAD_BEEF, e2, e2)]
    assert done == [e1 + P, e2 + P]
    assert (port.reads, port.writes) == (1, 1)


def test_concurrent_accesses_are_served_one_at_a_time_in_arrival_order():
    k, r, port = rig()

    async def one(offset):
        await port.read(offset)

    for off in (0, 4, 8):
        k.spawn(one(off))
    k.run()
    edges = [e for (_, _, e, _) in r.log]
    assert [o for (_, o, _, _) in r.log] == [0, 4, 8]
    # Each waits for the previous access's completion (e + P), then its own next edge + WAIT.
    assert edges == [(1 + WAIT) * P, (3 + 2 * WAIT) * P, (5 + 3 * WAIT) * P]


def test_bad_offsets_and_values_are_refused_before_any_time_passes():
    k, r, port = rig()
    offset_msg = r"toy register offset must be a word offset in \[0, 0x10\), not 16"
    value_msg = "toy register value must be a 32-bit unsigned integer"
    for coro, msg in ((port.read(0x10), offset_msg), (port.read(2), "not 2"),
                      (port.read(True), "not True"), (port.write(0, 1 << 32), value_msg),
                      (port.write(0, -1), "not -1")):
        with pytest.raises(ValueError, match=msg):
            coro.send(None)
    assert r.log == [] and k.now == 0


def test_stop_refuses_waiting_and_later_accesses_but_frees_the_bus():
    k, r, port = rig()
    results = []

    async def one(offset):
        try:
            results.append((offset, await port.read(offset)))
        except RuntimeError as exc:
            results.append((offset, str(exc)))

    k.spawn(one(0))
    k.spawn(one(4))
    k.run(until=P)              # the first waits for its edge, the second for its turn
    port.stop()
    k.run()
    refused = "toy is stopped (power cut): no bus access"
    assert results == [(0, refused), (4, refused)]
    assert r.log == [] and port.reads == 0 and port.stopped
    with pytest.raises(SimulationError, match="stopped"):
        k.spawn(port.read(0))
        k.run()


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(window_size=6), ValueError, "positive multiple of 4, not 6"),
    (dict(window_size=0), ValueError, "positive multiple of 4, not 0"),
    (dict(wait_cycles=-1), ValueError, "wait_cycles must be >= 0, not -1"),
    (dict(wait_cycles=1.0), TypeError, "wait_cycles must be an int, not 1.0"),
    (dict(name=""), TypeError, "name must be a non-empty str"),
    (dict(peek=3), TypeError, "peek must be callable, not 3"),
])
def test_constructor_validates(kw, exc, msg):
    k = Kernel()
    args = dict(name="toy", tag="toy", window_size=0x10, wait_cycles=WAIT,
                peek=lambda o, e: 0, poke=lambda o, v, e: None)
    args.update(kw)
    with pytest.raises(exc, match=msg):
        RegisterPort(k, CLOCK, **args)
    with pytest.raises(TypeError, match="clock must be a sim.time.Clock, not 80000"):
        RegisterPort(k, P, **args)
