"""The LANCE card's transaction-level model against its RTL, to the clock cycle.

One scripted program (kernel coroutines: a driver-like host that sets the card up, queues
frames to send and recycles receive buffers from its interrupt handler, plus frames arriving on
the wire at given cycles) runs twice:

* on the own kernel with :class:`hw.lance.model.LanceModel`;
* on Amaranth's simulator with :class:`hw.lance.gateware.LanceCard`, the same kernel program
  bound through :mod:`sim.bindings` (:class:`~sim.bindings.HostBusInitiator` on the host bus,
  :class:`~sim.bindings.IrqMirror` on ``irq``), a kernel-side adapter that drives the MII
  receive pins nibble by nibble, and one that samples the transmit pins.

Both runs must give the same trace (every bus access's completion time and value read, irq
edges), the same buffer memory (the RTL's read through the simulator's memory backdoor), the
same descriptors, CSR0 and counters, and the same transmitted frames starting at the same cycles.
The stimulus covers random frames both ways, back-to-back sends and receives, both rings
wrapping, chained receive buffers, a frame dropped for want of a buffer (MISS, nothing written),
a bad-FCS frame, a runt, a frame for another station, a broadcast, a padded short frame, TDMD at
every phase of the MII tick, bus reads racing the receive engine's byte and descriptor writes,
and STOP followed by a fresh INIT+STRT. Two scenarios: ``short`` (frames under 400 bytes in
128-byte receive buffers; about 15 s) runs by default, ``full`` (frames of 60-1514 bytes, 512-byte
buffers, the 1.6 ms poll timer; about 2.5 minutes) is marked slow.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

import pytest

from hw.lance.model import COUNTER_NAMES, LanceModel
from hw.lance.registers import (COUNTERS_OFFSET, CSR0, RAP_OFFSET, RDP_OFFSET, RMD1, TMD1,
                                InitBlock, RxDescriptor, TxDescriptor)
from hw.lance import timing as T
from sim.bus import BusTarget, IrqLine
from sim.kernel import Kernel
from sim.media.ethernet import build_frame
from sim.time import Clock

CLOCK = Clock(1_000_000_000_000 // T.CLOCK_HZ, "clk")
P = CLOCK.period
RAM_BYTES = 16 * 1024
MAC = bytes.fromhex("08002b0a0b0c")
PEER = bytes.fromhex("08002b112233")
OTHER = bytes.fromhex("08002b445566")
# Buffer memory layout of the test (LANCE addresses).
IADR = 0x0000
RDRA, RLEN, RX_BUF = 0x0040, 8, 0x0100
TDRA, TLEN, TX_BUF, TX_SIZE = 0x0080, 2, 0x2000, 0x800


#: The last frames are sent one by one with TDMD written at each of these many cycle phases, so
#: that an off-by-one in the poll-to-preamble latency cannot hide behind the 5-cycle MII tick.
PHASES = 5


@dataclass(frozen=True)
class Scenario:
    """A stimulus: ``full`` has frames of 60-1514 bytes and the poll timer; ``short`` keeps
    every frame under 400 bytes and uses TDMD only, so the RTL run stays short."""

    name: str
    rx_size: int
    full: bool


SHORT = Scenario("short", rx_size=128, full=False)
FULL = Scenario("full", rx_size=512, full=True)


def tx_frames(sc: Scenario, seed: int) -> list[bytes]:
    """Frames (without FCS) the host sends: random lengths, the extremes included, and one
    short frame the card pads to 60 bytes."""
    rng = random.Random(seed)
    top = 1515 if sc.full else 301
    lengths = [60, top - 1] + [rng.randrange(60, top) for _ in range(3)] + [30] \
        + [rng.randrange(20, 80) for _ in range(PHASES)]
    return [PEER + MAC + b"\x08\x00" + rng.randbytes(n - 14) for n in lengths]


def rx_frames(sc: Scenario, seed: int) -> list[tuple[int, bytes, str]]:
    """(gap in cycles after the previous frame left the pins, frame with FCS, kind) of the
    frames arriving on the wire. From frame 2 the host stops recycling buffers: frames 2-4 fill
    the eight buffers exactly and frame 5 finds none (MISS); then the host recycles again."""
    rng = random.Random(seed + 1)
    b = sc.rx_size
    ifg = T.MII_DIVIDER * T.TX_IFG_TICKS

    def good(n: int, dst: bytes = MAC) -> bytes:
        return build_frame(dst, PEER, 0x0800, rng.randbytes(n - 18))

    bad = bytearray(good(rng.randrange(64, 2 * b)))
    bad[-1] ^= 0x5A
    top = 1519 if sc.full else 3 * b
    return [
        (2_000, good(64), "good"),
        (ifg, good(top - 1), "good"),                        # back to back: 3 buffers
        (3_000 if sc.full else 500, good(min(3 * b, 1518)), "hold"),  # 3 buffers
        (ifg, good(rng.randrange(2 * b + 1, top)), "hold"),  # 3 buffers
        (ifg, good(rng.randrange(b + 1, 2 * b + 1)), "hold"),  # the last 2 buffers
        (300, good(rng.randrange(64, top)), "miss"),
        (2_000, bytes(bad), "bad-fcs"),
        (400, good(200, OTHER), "other"),
        (400, good(150, b"\xff" * 6), "broadcast"),
        (400, good(500)[:40], "runt"),
    ] + [(400, good(rng.randrange(64, top)), "good") for _ in range(3 if sc.full else 1)]


#: Both runs stop here at the latest (cycles), so a wrong model cannot hang the test.
LIMIT_CYCLES = 600_000


@dataclass
class Run:
    """What one backend produced."""

    trace: list = field(default_factory=list)
    irq_edges: list = field(default_factory=list)
    transmitted: list = field(default_factory=list)
    ram: bytes = b""


def program(k: Kernel, bus: BusTarget, irq: IrqLine, receive, snapshot, sc: Scenario,
            seed: int) -> Run:
    """Spawn the host (setup, sends, interrupt handler) and the wire; return the :class:`Run`
    they fill in. ``receive(frame)`` puts a frame on the card's rx pins from the next edge;
    ``snapshot()`` returns (buffer memory, transmitted frames) at the end."""
    run = Run()
    trace = run.trace
    irq.on_change(lambda level: run.irq_edges.append((k.now // P, level)))
    sends = tx_frames(sc, seed)
    arrivals = rx_frames(sc, seed)
    rx_size = sc.rx_size
    hold = [False]
    rx_next = [0]
    recycling = [False]
    tint = k.event("tint")
    done = k.event("done")

    def log(what: str) -> None:
        trace.append((k.now, what))

    async def wr(addr: int, value: int) -> None:
        await bus.write(addr, value)

    async def csr(n: int, value: int | None = None) -> int:
        await wr(RAP_OFFSET, n)
        if value is None:
            v = await bus.read(RDP_OFFSET)
            log(f"CSR{n}={v:#06x}")
            return v
        await wr(RDP_OFFSET, value)
        return 0

    async def put_words(addr: int, data: bytes) -> None:
        data = data + bytes(-len(data) % 4)
        for i in range(0, len(data), 4):
            await wr(addr + i, int.from_bytes(data[i:i + 4], "little"))

    async def give_rx(i: int) -> None:
        d = RxDescriptor(addr=RX_BUF + i * rx_size, flags=RMD1.OWN, size=rx_size).encode()
        await wr(RDRA + 8 * i + 4, d[2] | d[3] << 16)
        await wr(RDRA + 8 * i, d[0] | d[1] << 16)

    async def recycle() -> None:
        # Hand back every receive descriptor the card has written (a driver's rx loop).
        if recycling[0]:
            return
        recycling[0] = True
        for _ in range(RLEN):
            i = rx_next[0]
            w = await bus.read(RDRA + 8 * i)
            rmd1 = w >> 16
            log(f"RMD{i}.1={rmd1:#06x}")
            if rmd1 & RMD1.OWN:
                break
            if rmd1 & RMD1.ENP:
                mcnt = await bus.read(RDRA + 8 * i + 4) >> 16
                log(f"rx frame ends in {i} mcnt={mcnt}")
            await give_rx(i)
            rx_next[0] = (i + 1) % RLEN
        recycling[0] = False

    async def handler() -> None:
        while True:
            await irq.wait_high()
            log("irq")
            v = await csr(0)
            await csr(0, (v & 0x7F00) | CSR0.INEA)
            if v & CSR0.RINT and not hold[0]:
                await recycle()
            if v & CSR0.TINT:
                tint.set()

    async def queue(n: int, slot: int) -> None:
        buf = TX_BUF + slot * TX_SIZE
        await put_words(buf, sends[n])
        d = TxDescriptor(addr=buf, flags=TMD1.OWN | TMD1.STP | TMD1.ENP,
                         size=len(sends[n])).encode()
        await wr(TDRA + 8 * slot + 4, d[2] | d[3] << 16)
        await wr(TDRA + 8 * slot, d[0] | d[1] << 16)
        log(f"queued tx {n} in {slot}")

    async def wait_sent(slot: int) -> None:
        while True:
            w = await bus.read(TDRA + 8 * slot)
            if not w >> 31:
                log(f"tx slot {slot} back: TMD1={w >> 16:#06x}")
                return
            tint.clear()
            await tint.wait()

    async def host() -> None:
        await k.sleep(3 * P + 1234)
        await put_words(IADR, InitBlock(padr=MAC, rdra=RDRA, rlen=RLEN, tdra=TDRA,
                                        tlen=TLEN).pack())
        for i in range(RLEN):
            await give_rx(i)
        await csr(1, IADR & 0xFFFF)
        await csr(2, IADR >> 16)
        await csr(0, CSR0.INIT | CSR0.STRT | CSR0.INEA)
        # Frame 0 without TDMD: the poll timer finds it (in the full scenario).
        await queue(0, 0)
        if not sc.full:
            await csr(0, CSR0.TDMD | CSR0.INEA)
        await wait_sent(0)
        # Frames 1 and 2 back to back, one TDMD.
        await queue(1, 1)
        await queue(2, 0)
        await csr(0, CSR0.TDMD | CSR0.INEA)
        await wait_sent(1)
        await wait_sent(0)
        # The rest one at a time; the two-entry ring keeps wrapping.
        for n in range(3, len(sends)):
            slot = n % TLEN
            await queue(n, slot)
            if n >= len(sends) - PHASES:
                await k.sleep((n % PHASES) * P + 111)
            await csr(0, CSR0.TDMD | CSR0.INEA)
            if n == len(sends) - 1:
                # A demand while the frame is on the wire is absorbed by the poll after it.
                await k.sleep(200 * P)
                await csr(0, CSR0.TDMD | CSR0.INEA)
            await wait_sent(slot)
        await wire_done.wait()
        await k.sleep(5_000 * P + 777)
        # STOP (ring indices back to 0, counters kept), a fresh INIT+STRT, one frame each way.
        await csr(0, CSR0.STOP)
        await csr(0)
        rx_next[0] = 0
        for i in range(RLEN):
            await give_rx(i)
        await csr(0, CSR0.INIT | CSR0.STRT | CSR0.INEA)
        await queue(len(sends) - 1, 0)
        await csr(0, CSR0.TDMD | CSR0.INEA)
        receive(build_frame(MAC, PEER, 0x0800, bytes(range(100))))
        await wait_sent(0)
        await k.sleep(3_000 * P + 99)
        for c in range(len(COUNTER_NAMES)):
            log(f"counter {c}={await bus.read(COUNTERS_OFFSET + 4 * c)}")
        await csr(0)
        await csr(3)
        run.ram, run.transmitted = snapshot()
        done.set()

    wire_done = k.event("wire done")

    async def snoop(addr: int, cycle: int) -> None:
        await k.sleep_until((cycle - 10) * P + 345)
        for _ in range(10):
            v = await bus.read(addr)
            log(f"snoop {addr:#06x}={v:#010x}")

    async def wire() -> None:
        for n, (gap, frame, kind) in enumerate(arrivals):
            await k.sleep_until(k.now + gap * P)
            hold[0] = kind in ("hold", "miss")
            log(f"rx {n} {kind} {len(frame)}")
            receive(frame)
            if n == 1:
                # Watch frame 1 land (it starts in buffer 1 and chains into 2 and 3): its first
                # bytes, the two chained buffers' first bytes and its last descriptor, read
                # back to back over the bus around the cycles the card writes them.
                t0 = T.next_tick_at_or_after(k.now // P + 1)

                def beat(i: int) -> int:
                    return t0 + T.MII_DIVIDER * (T.PREAMBLE_NIBBLES + T.RX_LAST_BEAT_TICKS
                                                 + 2 + 2 * i)
                # (Each window starts at a different phase of the 7-cycle read rhythm.)
                for j, (addr, cycle) in enumerate(((RX_BUF + rx_size, beat(5)),
                                                   (RX_BUF + 2 * rx_size, beat(rx_size)),
                                                   (RX_BUF + 3 * rx_size, beat(2 * rx_size)),
                                                   (RDRA + 8 * 3, beat(len(frame) - 1)))):
                    k.spawn(snoop(addr, cycle + 3 * j), name="snoop")
            await k.sleep(T.MII_DIVIDER * T.wire_nibbles(len(frame)) * P)
            if kind == "miss":
                await k.sleep(200 * P)
                hold[0] = False
                await recycle()
        wire_done.set()

    k.spawn(host(), name="host")
    k.spawn(handler(), name="handler", daemon=True)
    k.spawn(wire(), name="wire")
    return run


# --- backends ----------------------------------------------------------------------------------
def run_model(sc: Scenario, seed: int) -> tuple[Run, LanceModel]:
    """The program on the own kernel with the transaction-level model."""
    k = Kernel()
    irq = IrqLine(k, "lance.irq")
    card = LanceModel(k, CLOCK, irq=irq, ram_bytes=RAM_BYTES, mac=MAC)
    run = program(k, card, irq, card.receive,
                  lambda: (bytes(card.ram), list(card.transmitted)), sc, seed)
    k.run(until=LIMIT_CYCLES * P)
    assert k.live_tasks == 0, f"the model run did not finish by cycle {LIMIT_CYCLES}"
    return run, card


def run_rtl(sc: Scenario, seed: int) -> Run:
    """The program on Amaranth's simulator with the RTL, bound through sim.bindings."""
    from amaranth.sim import Simulator

    from hw.lance.gateware import BUS_ADDR_WIDTH, LanceCard
    from sim.bindings import HostBusInitiator, IrqMirror
    from sim.bindings.amaranth import AmaranthDriver, add_clock

    dut = LanceCard(ram_bytes=RAM_BYTES, mac=MAC)
    sim = Simulator(dut)
    add_clock(sim, CLOCK)
    k = Kernel()
    driver = AmaranthDriver(sim, k, until=LIMIT_CYCLES * P)
    b = dut.bus
    bus = HostBusInitiator(driver, CLOCK, addr=b.addr, w_data=b.w_data, r_data=b.r_data,
                           w_en=b.w_en, r_en=b.r_en, ack=b.ack, addr_width=BUS_ADDR_WIDTH,
                           name="lance.bus")
    irq = IrqLine(k, "lance.irq")
    IrqMirror(driver, dut.irq, irq)
    half = P // 2
    transmitted: list[tuple[int, bytes]] = []

    def receive(frame: bytes) -> None:
        # Nibble j is on the pins from the middle of cycle e0 + 5 j: no race with any edge.
        e0 = CLOCK.edge_at_or_after(k.now) // P
        nibbles = [0x5] * (T.PREAMBLE_NIBBLES - 1) + [0xD]
        for byte in frame:
            nibbles += [byte & 0xF, byte >> 4]

        def drive(j: int) -> None:
            if j < len(nibbles):
                driver.set(dut.rxd, nibbles[j])
                driver.set(dut.rx_dv, 1)
                k.call_at((e0 + T.MII_DIVIDER * (j + 1)) * P + half, lambda: drive(j + 1))
            else:
                driver.set(dut.rx_dv, 0)
                driver.set(dut.rxd, 0)
        k.call_at(e0 * P + half, lambda: drive(0))

    def on_tx_en(level: int) -> None:
        # Sample txd in the middle of each nibble while tx_en stays high.
        if not level:
            return
        rise = k.now // P
        got: list[int] = []

        def sample() -> None:
            if not driver.get(dut.tx_en):
                raw = bytes(got[i] | got[i + 1] << 4
                            for i in range(T.PREAMBLE_NIBBLES, len(got) - 1, 2))
                transmitted.append((rise, raw))
                return
            got.append(driver.get(dut.txd))
            k.call_at(k.now + T.MII_DIVIDER * P, sample)
        k.call_at(k.now + half, sample)

    driver.watch(dut.tx_en, on_tx_en)

    def snapshot() -> tuple[bytes, list]:
        # The RTL's buffer memory through the simulator's backdoor.
        raw = b"".join(driver.get(dut.ram.data[i]).to_bytes(4, "little")
                       for i in range(RAM_BYTES // 4))
        return raw, list(transmitted)

    run = program(k, bus, irq, receive, snapshot, sc, seed)
    sim.run()
    assert k.live_tasks == 0, f"the RTL run did not finish by cycle {LIMIT_CYCLES}"
    return run


# --- checks -------------------------------------------------------------------------------------
def check_stimulus(sc: Scenario, seed: int, run: Run, card: LanceModel) -> None:
    """The model run did what the stimulus is meant to exercise (so equality means something)."""
    sends = tx_frames(sc, seed)
    sends.append(sends[-1])                          # sent again after STOP and a new INIT
    assert [f for _, f in run.transmitted] == [
        f.ljust(60, b"\0") + zlib.crc32(f.ljust(60, b"\0")).to_bytes(4, "little") for f in sends]
    starts = [c for c, _ in run.transmitted]
    assert starts == sorted(starts) and all(T.is_tick(c) for c in starts)
    assert card.counters == {"missed": 1, "fcs_errors": 1, "runts": 1, "too_long": 0,
                             "collisions": 0, "retry_errors": 0}
    # Good frames for us: all but the missed, bad-FCS, other-station and runt ones.
    ends = [what for _, what in run.trace if what.startswith("rx frame ends")]
    arrivals = rx_frames(sc, seed)
    accepted = [f for _, f, kind in arrivals if kind in ("good", "hold", "broadcast")]
    accepted.append(bytes(118))                      # the frame after the restart
    assert (card.tx_index, card.rx_index) == (1, 1)
    assert any(what == f"CSR0={CSR0.STOP:#06x}" for _, what in run.trace)
    assert len(ends) == len(accepted)
    assert [int(e.rsplit("=", 1)[1]) for e in ends] == [len(f) for f in accepted]
    assert card.rx_index != 0 or len(accepted) > 0
    assert run.irq_edges and run.irq_edges[0][1] == 1


def assert_same(model: Run, rtl: Run) -> None:
    """Model and RTL runs agree on everything observable."""
    for i, (a, b) in enumerate(zip(model.trace, rtl.trace)):
        assert a == b, (f"trace differs at entry {i}: model {a[0] // P} cycles + {a[0] % P} ps "
                        f"{a[1]!r}, RTL {b[0] // P} + {b[0] % P} ps {b[1]!r}")
    assert len(model.trace) == len(rtl.trace)
    assert model.irq_edges == rtl.irq_edges
    assert [(c, len(f)) for c, f in model.transmitted] == [(c, len(f)) for c, f in rtl.transmitted]
    assert model.transmitted == rtl.transmitted
    diff = [i for i in range(RAM_BYTES) if model.ram[i] != rtl.ram[i]]
    assert not diff, (f"{len(diff)} buffer memory bytes differ, first at {diff[0]:#06x}: "
                      f"model {model.ram[diff[0]]:#04x}, RTL {rtl.ram[diff[0]]:#04x}")


@pytest.mark.parametrize("sc", [SHORT, FULL], ids=lambda sc: sc.name)
def test_model_covers_the_stimulus(sc: Scenario) -> None:
    run, card = run_model(sc, seed=1)
    check_stimulus(sc, 1, run, card)


def test_model_equals_rtl_short() -> None:
    """Short frames, chained 128-byte receive buffers, MISS, bad FCS, runt, wrap: to the cycle."""
    model, card = run_model(SHORT, seed=2)
    check_stimulus(SHORT, 2, model, card)
    assert_same(model, run_rtl(SHORT, seed=2))


@pytest.mark.slow
def test_model_equals_rtl_full() -> None:
    """Frames of 60-1514 bytes both ways, the poll timer, 512-byte buffers (about 2 minutes)."""
    model, card = run_model(FULL, seed=1)
    check_stimulus(FULL, 1, model, card)
    assert_same(model, run_rtl(FULL, seed=1))
