"""The LANCE card's transaction-level model on its own (a sim.kernel.Kernel, no RTL).

Semantics (docs/lance_card.md) and the timing formulas of hw/lance/timing.py: bus wait states,
init, transmit (bytes and FCS against zlib.crc32, padding, DTCR, chaining, the poll timer,
back-to-back gap), receive (chained buffers, ring wrap, MISS with nothing written, bad FCS /
runt / too long dropped and counted, the address filter), STOP, write-one-to-clear, the irq,
the counters, CSMA/CD on a scripted transceiver (deferral, jam, LFSR backoff, DEF, ONE,
MORE, RTRY, LCOL in the descriptors), and bad arguments. Cycle equality with
the RTL itself is tests/hw/test_lance_equivalence.py.
"""
from __future__ import annotations

import random
import zlib

import pytest

from hw.lance import timing as T
from hw.lance.model import COUNTER_NAMES, LanceModel, LanceWire
from hw.lance.registers import (COUNTERS_OFFSET, CSR0, RAP_OFFSET, RDP_OFFSET, RMD1, ROM_OFFSET,
                                TMD1, TMD3, WINDOW_SIZE, InitBlock, Mode, RxDescriptor,
                                TxDescriptor)
from sim.bus import IrqLine
from sim.kernel import Kernel
from sim.media.ethernet import build_frame
from sim.time import NS, Clock

CLOCK = Clock(80 * NS)
P = CLOCK.period
RAM = 16 * 1024
MAC = bytes.fromhex("08002b0a0b0c")
PEER = bytes.fromhex("08002b112233")
RDRA, TDRA, RX_BUF, TX_BUF = 0x40, 0x80, 0x100, 0x2000
GOOD = 0x2144DF1C      # zlib.crc32 of any frame with a correct FCS


class Card:
    """A model on its own kernel, with backdoor set-up of the init block and the rings."""

    def __init__(self, *, rlen: int = 4, tlen: int = 4, rx_size: int = 512,
                 mode: Mode = Mode(0), ladrf: int = 0, wire: LanceWire | None = None):
        self.k = Kernel()
        self.irq = IrqLine(self.k, "lance.irq")
        self.m = LanceModel(self.k, CLOCK, irq=self.irq, ram_bytes=RAM, mac=MAC, wire=wire)
        self.rlen, self.tlen, self.rx_size = rlen, tlen, rx_size
        self.edges: list[tuple[int, int]] = []
        self.irq.on_change(lambda level: self.edges.append((self.k.now // P, level)))
        ib = InitBlock(mode=mode, padr=MAC, ladrf=ladrf, rdra=RDRA, rlen=rlen, tdra=TDRA, tlen=tlen)
        self.m.ram[0:24] = ib.pack()
        for i in range(rlen):
            self.give_rx(i)

    # -- backdoor ---------------------------------------------------------------------------
    def give_rx(self, i: int) -> None:
        d = RxDescriptor(addr=RX_BUF + i * self.rx_size, flags=RMD1.OWN, size=self.rx_size)
        self.m.ram[RDRA + 8 * i:RDRA + 8 * i + 8] = d.pack()

    def rmd(self, i: int) -> RxDescriptor:
        return RxDescriptor.unpack(bytes(self.m.ram[RDRA + 8 * i:RDRA + 8 * i + 8]))

    def tmd(self, i: int) -> TxDescriptor:
        return TxDescriptor.unpack(bytes(self.m.ram[TDRA + 8 * i:TDRA + 8 * i + 8]))

    def queue_tx(self, i: int, data: bytes, flags: TMD1 = TMD1.STP | TMD1.ENP,
                 addr: int | None = None) -> None:
        addr = TX_BUF + 0x600 * i if addr is None else addr
        self.m.ram[addr:addr + len(data)] = data
        d = TxDescriptor(addr=addr, flags=TMD1.OWN | flags, size=len(data))
        self.m.ram[TDRA + 8 * i:TDRA + 8 * i + 8] = d.pack()

    # -- bus --------------------------------------------------------------------------------
    async def csr(self, n: int, value: int | None = None) -> int:
        """Select CSR ``n`` and read it, or write ``value``; returns the value (read) or the
        edge at which the write took effect."""
        await self.m.write(RAP_OFFSET, n)
        if value is None:
            return await self.m.read(RDP_OFFSET)
        edge = self.k.now // P + 1 + T.BUS_WRITE_WAIT  # requests here are edge-aligned
        await self.m.write(RDP_OFFSET, value)
        return edge

    def run(self, coro, cycles: int = 100_000) -> None:
        self.k.spawn(coro, name="test")
        self.k.run(until=self.k.now + cycles * P)

    def start(self, csr0: int = CSR0.INIT | CSR0.STRT | CSR0.INEA) -> int:
        """INIT+STRT now; returns the write's effect edge."""
        out = []

        async def go():
            out.append(await self.csr(0, csr0))
        self.run(go(), cycles=50)
        return out[0]

    def tdmd(self) -> int:
        return self.start(CSR0.TDMD | CSR0.INEA)

    def ack(self) -> int:
        """Clear every interrupt cause (keeps INEA); returns the effect edge."""
        return self.start(CSR0.IDON | CSR0.TINT | CSR0.RINT | CSR0.MISS | CSR0.INEA)

    def receive_at(self, edge: int, frame: bytes) -> int:
        """Put ``frame`` on the pins at ``edge``; returns the tick edge sampling nibble 0."""
        async def go():
            await self.k.sleep_until(edge * P)
            self.m.receive(frame)
        self.run(go(), cycles=edge - self.k.now // P)
        return T.next_tick_at_or_after(edge + 1)


def frame_to(dst: bytes, n: int, seed: int = 0) -> bytes:
    """A good frame of ``n`` bytes (FCS included) for ``dst``."""
    return build_frame(dst, PEER, 0x0800, random.Random(seed).randbytes(n - 18))


def last_beat(t0: int, n: int) -> int:
    """The edge at which the receive engine has the last byte of an ``n``-byte frame."""
    return t0 + T.MII_DIVIDER * (T.wire_nibbles(n) + T.RX_LAST_BEAT_TICKS)


def rising(card: Card) -> list[int]:
    return [c for c, level in card.edges if level]


# --- host bus --------------------------------------------------------------------------------
def test_bus_wait_states_ram_rom_and_window() -> None:
    c = Card()
    m, k = c.m, c.k
    log = []

    async def go():
        await k.sleep(1234)                          # not on an edge: e0 = edge 1
        await m.write(0x100, 0x11223344)
        log.append(("w", k.now))
        v = await m.read(0x100)
        log.append(("r", k.now, v))
        log.append(("bytes", bytes(m.ram[0x100:0x104])))
        await m.write(RAM + 0x104, 0xCAFEF00D)       # wraps modulo the RAM
        log.append(("wrap", await m.read(0x104), await m.read(2 * RAM + 0x104)))
        log.append(("rom", [await m.read(ROM_OFFSET + 4 * i) for i in range(7)]))
        log.append(("unmapped", await m.read(0x180000), await m.read(COUNTERS_OFFSET + 24)))
        await m.write(0x180000, 5)
        await m.write(RAP_OFFSET, 0x7)
        log.append(("rap", await m.read(RAP_OFFSET)))
    c.run(go())
    assert log[0] == ("w", (1 + T.BUS_WRITE_WAIT + 1) * P)
    # The read is requested on edge 5, so first sampled at edge 6.
    assert log[1] == ("r", (6 + T.BUS_READ_WAIT + 1) * P, 0x11223344)
    assert log[2] == ("bytes", bytes.fromhex("44332211"))
    assert log[3] == ("wrap", 0xCAFEF00D, 0xCAFEF00D)
    assert log[4] == ("rom", [b << 16 for b in MAC] + [0])
    assert log[5] == ("unmapped", 0, 0)
    assert log[6] == ("rap", 3)
    assert m.reads == 13 and m.writes == 4


def test_concurrent_accesses_are_served_in_arrival_order() -> None:
    c = Card()
    done = []

    async def one(tag: str, offset: int):
        await c.m.read(offset)
        done.append((tag, c.k.now // P))
    c.k.spawn(one("a", 0))
    c.k.spawn(one("b", 4))
    c.k.run()
    # b is first sampled at the edge after a completed (edge 7), so it completes at edge 14.
    assert done == [("a", 1 + T.BUS_READ_WAIT + 1), ("b", 14)]


def test_csr1_to_csr3_writable_only_while_stopped() -> None:
    c = Card()
    got = []

    async def go():
        await c.csr(1, 0x1235)
        await c.csr(2, 0xAB12)
        await c.csr(3, 0xFF)
        got.append([await c.csr(n) for n in range(4)])
        await c.csr(0, CSR0.STRT)
        await c.csr(1, 0x4000)
        got.append(await c.csr(1))
        await c.csr(0, CSR0.STOP)
        await c.csr(1, 0x4000)
        got.append(await c.csr(1))
    c.run(go())
    assert got[0] == [CSR0.STOP, 0x1234, 0x12, 0x7]
    assert got[1] == 0x1234
    assert got[2] == 0x4000


# --- init, transmit ----------------------------------------------------------------------------
def test_init_reads_the_init_block_and_sets_idon() -> None:
    c = Card(rlen=8, tlen=2, mode=Mode.PROM, ladrf=0x8000_0000_0000_0001)
    w = c.start(CSR0.INIT | CSR0.INEA)
    assert rising(c) == [w + T.INIT_CYCLES + T.IRQ_LATENCY]
    m = c.m
    assert (m.mode, m.padr, m.ladrf, m.rdra, m.rlen, m.tdra, m.tlen) == (
        Mode.PROM, MAC, 0x8000_0000_0000_0001, RDRA, 8, TDRA, 2)
    assert m.csr0_value == CSR0.INIT | CSR0.INEA | CSR0.IDON | CSR0.INTR   # not started


def test_transmit_a_frame_bytes_fcs_and_timing() -> None:
    c = Card()
    w0 = c.start()
    a = c.ack()
    data = PEER + MAC + b"\x08\x00" + bytes(range(200))
    c.queue_tx(0, data)
    w = c.tdmd()
    c.run(k_sleep(c), cycles=10_000)
    (rise, frame), = c.m.transmitted
    assert frame == data + zlib.crc32(data).to_bytes(4, "little")
    assert zlib.crc32(frame) == GOOD
    # TDMD effect edge w -> poll at w + 1 -> decision -> first byte offered -> next tick edge.
    offer = w + 1 + T.TX_FETCH_CYCLES + T.TX_FIRST_BYTE_CYCLES
    assert rise == T.next_tick_at_or_after(offer + 1)
    fall = rise + T.MII_DIVIDER * T.wire_nibbles(len(frame))
    tint = fall + T.TX_STATUS_CYCLES + T.TX_WRITEBACK_PER_DESCRIPTOR + T.TX_WRITEBACK_TAIL
    assert c.edges == [(w0 + T.INIT_CYCLES + T.IRQ_LATENCY, 1), (a + T.IRQ_LATENCY, 0),
                       (tint + T.IRQ_LATENCY, 1)]
    d = c.tmd(0)
    assert d.flags == TMD1.STP | TMD1.ENP and d.errors == TMD3(0)
    assert c.m.tx_index == 1
    assert c.m.csr0_value & CSR0.TINT and c.m.csr0_value & CSR0.TXON


async def k_sleep(c: Card) -> None:
    await c.k.sleep(P)


def test_short_frames_are_padded_and_dtcr_leaves_the_fcs_out() -> None:
    c = Card(mode=Mode.DTCR)
    c.start()
    c.queue_tx(0, b"\x01" * 20)
    c.queue_tx(1, b"\x02" * 70, flags=TMD1.STP | TMD1.ENP | TMD1.ADD_FCS)
    c.tdmd()
    c.run(k_sleep(c), cycles=10_000)
    (r0, f0), (r1, f1) = c.m.transmitted
    assert f0 == b"\x01" * 20 + bytes(40)                       # padded, no FCS
    assert f1 == b"\x02" * 70 + zlib.crc32(b"\x02" * 70).to_bytes(4, "little")
    # Back to back: the second frame waits for the inter-frame gap.
    assert r1 == r0 + T.MII_DIVIDER * (T.wire_nibbles(len(f0)) + T.TX_IFG_TICKS)


def test_poll_timer_finds_a_frame_without_tdmd() -> None:
    c = Card()
    w = c.start()
    start = w + T.INIT_CYCLES                  # the engines start with IDON; poll one edge later
    c.run(k_sleep(c), cycles=100)
    c.queue_tx(0, bytes(64))
    c.run(k_sleep(c), cycles=30_000)
    (rise, _), = c.m.transmitted
    poll = start + 1 + T.TX_POLL_CYCLES
    assert rise == T.next_tick_at_or_after(poll + T.TX_FETCH_CYCLES + T.TX_FIRST_BYTE_CYCLES + 1)


def test_chained_transmit_descriptors_make_one_frame() -> None:
    c = Card()
    c.start()
    a, b = bytes(range(100)), bytes(range(100, 250))
    c.queue_tx(1, b, flags=TMD1.ENP)
    c.queue_tx(0, a, flags=TMD1.STP)
    c.tdmd()
    c.run(k_sleep(c), cycles=10_000)
    (_, frame), = c.m.transmitted
    assert frame == a + b + zlib.crc32(a + b).to_bytes(4, "little")
    assert c.tmd(0).flags == TMD1.STP and c.tmd(1).flags == TMD1.ENP   # OWN cleared
    assert c.m.tx_index == 2


# --- receive -----------------------------------------------------------------------------------
def test_receive_a_frame_chained_over_three_buffers() -> None:
    c = Card(rx_size=128)
    c.start()
    c.ack()
    f = frame_to(MAC, 300)
    t0 = c.receive_at(1000, f)
    c.run(k_sleep(c), cycles=10_000)
    ram = c.m.ram
    assert bytes(ram[RX_BUF:RX_BUF + 128]) + bytes(ram[RX_BUF + 128:RX_BUF + 256]) \
        + bytes(ram[RX_BUF + 256:RX_BUF + 300]) == f
    d = [c.rmd(i) for i in range(4)]
    assert [x.flags for x in d] == [RMD1.STP, RMD1(0), RMD1.ENP, RMD1.OWN]
    assert d[2].mcnt == 300 and c.m.rx_index == 3
    # The last byte lands two edges after it reaches the engine; then one edge per descriptor,
    # MCNT and RINT together (measured on the RTL: tests/hw/test_lance_equivalence.py).
    rint = last_beat(t0, 300) + 2 + 2 + 3
    assert rising(c)[-1] == rint + T.IRQ_LATENCY
    assert c.m.csr0_value & CSR0.RINT


def test_receive_ring_wraps_with_the_host_returning_buffers() -> None:
    c = Card(rlen=2, rx_size=1520)
    c.start()
    frames = [frame_to(MAC, n, seed=n) for n in (64, 1518, 700, 99, 1000)]
    edge = 1000
    for n, f in enumerate(frames):
        c.receive_at(edge, f)
        c.run(k_sleep(c), cycles=T.MII_DIVIDER * T.wire_nibbles(len(f)) + 500)
        i = n % 2
        assert c.rmd(i).flags == RMD1.STP | RMD1.ENP and c.rmd(i).mcnt == len(f)
        assert bytes(c.m.ram[RX_BUF + 1520 * i:RX_BUF + 1520 * i + len(f)]) == f
        c.give_rx(i)
        edge = c.k.now // P + 10
    assert c.m.rx_index == len(frames) % 2


def test_a_frame_with_no_owned_buffer_is_missed_and_writes_nothing() -> None:
    c = Card()
    c.start()
    for i in range(4):
        c.m.ram[RDRA + 8 * i + 3] &= 0x7F        # the host owns every descriptor
    before = bytes(c.m.ram)
    c.receive_at(1000, frame_to(MAC, 500))
    c.run(k_sleep(c), cycles=10_000)
    assert bytes(c.m.ram) == before
    assert c.m.counters["missed"] == 1
    assert c.m.csr0_value & (CSR0.MISS | CSR0.ERR | CSR0.INTR) == CSR0.MISS | CSR0.ERR | CSR0.INTR
    assert c.m.rx_index == 0


@pytest.mark.parametrize("kind", ["bad-fcs", "runt", "too-long", "tiny"])
def test_bad_frames_are_dropped_or_flagged_and_counted(kind: str) -> None:
    c = Card(rx_size=1520)
    c.start()
    f = frame_to(MAC, 300)
    if kind == "bad-fcs":
        f = f[:-1] + bytes([f[-1] ^ 1])
    elif kind == "runt":
        f = frame_to(MAC, 64)[:50]
    elif kind == "too-long":
        f = build_frame(MAC, PEER, 0x0800, bytes(1400))[:-4] + bytes(200)
        f += zlib.crc32(f).to_bytes(4, "little")
    else:
        f = MAC[:3]
    c.receive_at(1000, f)
    c.run(k_sleep(c), cycles=20_000)
    want = {"bad-fcs": "fcs_errors", "runt": "runts", "too-long": "too_long", "tiny": "runts"}
    assert c.m.counters == {n: int(n == want[kind]) for n in COUNTER_NAMES}
    if kind == "bad-fcs":
        # The Am7990 hands a bad-FCS frame up, flagged (and the card counts it).
        assert c.rmd(0).flags == RMD1.STP | RMD1.ENP | RMD1.ERR | RMD1.CRC
        assert c.rmd(0).mcnt == 300 and c.m.rx_index == 1
        assert c.m.csr0_value & CSR0.RINT
        return
    assert c.rmd(0).flags == RMD1.OWN and c.m.rx_index == 0
    assert not c.m.csr0_value & CSR0.RINT


def test_address_filter() -> None:
    mcast = bytes.fromhex("01005e000001")
    h = (zlib.crc32(mcast) ^ 0xFFFF_FFFF) >> 26
    c = Card(rx_size=1520, ladrf=1 << h)
    c.start()
    edge = 1000
    for dst in (PEER, b"\xff" * 6, mcast, bytes.fromhex("01005e000002"), MAC):
        c.receive_at(edge, frame_to(dst, 100))
        c.run(k_sleep(c), cycles=2_000)
        edge = c.k.now // P + 10
    # PEER and the other multicast group are ignored (not counted); three frames accepted.
    assert c.m.rx_index == 3 and all(v == 0 for v in c.m.counters.values())
    assert [bytes(c.m.ram[RX_BUF + 1520 * i:RX_BUF + 1520 * i + 6]) for i in range(3)] == [
        b"\xff" * 6, mcast, MAC]
    p = Card(rx_size=1520, mode=Mode.PROM)
    p.start()
    p.receive_at(1000, frame_to(PEER, 100))
    p.run(k_sleep(p), cycles=2_000)
    assert p.m.rx_index == 1


# --- STOP, interrupts, counters ----------------------------------------------------------------
def test_stop_resets_the_engines_and_keeps_the_counters() -> None:
    c = Card(rx_size=1520)
    c.start()
    c.receive_at(1000, frame_to(MAC, 100))
    c.receive_at(3000, frame_to(MAC, 100)[:-1] + b"\x00")
    c.run(k_sleep(c), cycles=5_000)
    assert c.m.rx_index == 2 and c.m.counters["fcs_errors"] == 1   # the bad one handed up too
    w = c.start(CSR0.STOP)
    assert c.m.csr0_value == CSR0.STOP
    assert (c.m.tx_index, c.m.rx_index) == (0, 0)
    assert c.m.counters["fcs_errors"] == 1
    assert c.edges[-1] == (w + T.IRQ_LATENCY, 0)      # INEA cleared with everything else
    # Stopped: a frame on the wire is ignored.
    c.receive_at(c.k.now // P + 10, frame_to(MAC, 100))
    c.run(k_sleep(c), cycles=5_000)
    assert c.rmd(2).flags == RMD1.OWN


def test_write_one_to_clear_and_the_irq_line() -> None:
    c = Card()
    w = c.start()
    got = []

    async def go():
        got.append(await c.csr(0))
        wc = await c.csr(0, CSR0.IDON | CSR0.INEA)
        got.append((wc, await c.csr(0)))
        await c.csr(0, CSR0.INEA | CSR0.TINT)           # W1C of a clear bit: no effect
        got.append(await c.csr(0))
    c.run(go())
    on = CSR0.INIT | CSR0.STRT | CSR0.TXON | CSR0.RXON | CSR0.INEA
    assert got[0] == on | CSR0.IDON | CSR0.INTR
    wc, v = got[1]
    assert v == on and got[2] == on
    assert c.edges == [(w + T.INIT_CYCLES + 1, 1), (wc + 1, 0)]


def test_counters_read_clear_on_write_and_saturate() -> None:
    c = Card()
    c.m.counters["runts"] = 0xFFFF
    c.m._count("runts")
    assert c.m.counters["runts"] == 0xFFFF
    got = []

    async def go():
        got.append(await c.m.read(COUNTERS_OFFSET + 4 * COUNTER_NAMES.index("runts")))
        await c.m.write(COUNTERS_OFFSET + 4 * COUNTER_NAMES.index("runts"), 0)
        got.append(await c.m.read(COUNTERS_OFFSET + 4 * COUNTER_NAMES.index("runts")))
    c.run(go())
    assert got == [0xFFFF, 0]


# --- a wire ------------------------------------------------------------------------------------
class ScriptedWire:
    """A transceiver that raises ``col`` ``col_after`` cycles into each of the first
    ``collide`` attempts, and can hold ``crs`` high over given cycles. Records every attempt
    as (rise edge, fall edge, frame or None)."""

    def __init__(self, collide: int = 0, col_after: int = 200, crs: tuple = (),
                 crs_phase: int = P // 3):
        self.collide, self.col_after, self.crs = collide, col_after, crs
        self.crs_phase = crs_phase
        self.attempts: list[list] = []
        self.m: LanceModel | None = None

    def bind(self, m: LanceModel) -> None:
        self.m = m
        k = m.kernel
        for lo, hi in self.crs:           # mid-cycle by default, as a far station's signal
            k.call_at(lo * P + self.crs_phase, lambda: m.set_crs(1))
            k.call_at(hi * P + self.crs_phase, lambda: m.set_crs(0))

    def tx_start(self, frame: bytes | None) -> None:
        k = self.m.kernel
        self.attempts.append([k.now // P, None, None])
        if len(self.attempts) <= self.collide:
            k.call_at(k.now + self.col_after * P + P // 3, lambda: self.m.set_col(1))

    def tx_stop(self, frame: bytes | None) -> None:
        self.attempts[-1][1:] = [self.m.kernel.now // P, frame]
        self.m.set_col(0)


def _send_on(wire: ScriptedWire, data: bytes, cycles: int = 400_000) -> Card:
    c = Card(wire=wire)
    wire.bind(c.m)
    c.start()
    c.queue_tx(0, data)
    c.tdmd()
    c.run(k_sleep(c), cycles=cycles)
    return c


def _draws(n: int) -> list[int]:
    """The first ``n`` backoff draws (in slots) of a card with station address MAC."""
    lfsr, out = T.backoff_seed(MAC), []
    for i in range(1, n + 1):
        out.append(lfsr & ((1 << min(i, 10)) - 1))
        lfsr = T.backoff_step(lfsr)
    return out


@pytest.mark.parametrize("collide", [1, 3])
def test_collisions_jam_back_off_and_retry(collide: int) -> None:
    wire = ScriptedWire(collide=collide)
    data = bytes(range(80))
    c = _send_on(wire, data)
    assert len(wire.attempts) == collide + 1
    draws = _draws(collide)
    div = T.MII_DIVIDER
    for i, (rise, fall, frame) in enumerate(wire.attempts[:-1]):
        # col driven mid-cycle col_after cycles in: seen at the next tick, then 32 bits of jam
        col_tick = T.next_tick_at_or_after(rise + wire.col_after + 1)
        assert (fall, frame) == (col_tick + div * T.TX_JAM_TICKS, None)
        # status 3 ticks later, then r slots of backoff, a fresh poll and the gap
        end = fall + div * T.TX_ABORT_END_TICKS
        poll = end + T.TX_STATUS_CYCLES + 1 + draws[i] * T.SLOT_TICKS * div
        offer = poll + T.TX_FETCH_CYCLES + T.TX_FIRST_BYTE_CYCLES
        assert wire.attempts[i + 1][0] == max(T.next_tick_at_or_after(offer + 1),
                                              end + div * T.TX_IFG_TICKS)
    assert wire.attempts[-1][2] == data + zlib.crc32(data).to_bytes(4, "little")
    d = c.tmd(0)
    assert d.flags == TMD1.STP | TMD1.ENP | (TMD1.ONE if collide == 1 else TMD1.MORE)
    assert d.errors == TMD3(0)
    assert c.m.counters == {n: collide if n == "collisions" else 0 for n in COUNTER_NAMES}
    assert c.m.csr0_value & CSR0.TINT


def test_sixteen_collisions_give_up_with_rtry() -> None:
    wire = ScriptedWire(collide=99)
    c = _send_on(wire, bytes(100), cycles=3_000_000)
    assert len(wire.attempts) == T.MAX_ATTEMPTS
    assert all(f is None for _, _, f in wire.attempts)
    d = c.tmd(0)
    assert d.flags == TMD1.STP | TMD1.ENP | TMD1.MORE | TMD1.ERR and d.errors == TMD3.RTRY
    assert c.m.counters["collisions"] == 16 and c.m.counters["retry_errors"] == 1


def test_late_collision_is_not_retried() -> None:
    # 100 bytes in: past the 64-byte slot
    wire = ScriptedWire(collide=1, col_after=5 * (T.PREAMBLE_NIBBLES + 2 * 100))
    c = _send_on(wire, bytes(200))
    assert len(wire.attempts) == 1 and wire.attempts[0][2] is None
    d = c.tmd(0)
    assert d.flags == TMD1.STP | TMD1.ENP | TMD1.ERR and d.errors == TMD3.LCOL
    assert c.m.counters["collisions"] == 1 and c.m.counters["retry_errors"] == 0


def test_deferral_waits_for_the_carrier_and_the_gap() -> None:
    # The carrier is up from before TDMD until cycle 3000: the frame waits, then 24 ticks more.
    wire = ScriptedWire(crs=((10, 3000),))
    c = _send_on(wire, bytes(80))
    (rise, _, frame), = wire.attempts
    last_high = 3000 - (3000 - T.MII_TICK_PHASE) % T.MII_DIVIDER
    assert rise == last_high + T.MII_DIVIDER * T.TX_IFG_TICKS and frame is not None
    assert c.tmd(0).flags == TMD1.STP | TMD1.ENP | TMD1.DEF


@pytest.mark.parametrize("shift", range(-6, 7))
def test_a_carrier_falling_on_an_edge_is_seen_by_that_edge(shift: int) -> None:
    """crs driven low at exactly an edge's time is still high for that edge (a pin driven at
    ``t`` is sampled strictly after ``t``), also when that edge is the first tick at which the
    transmitter holds the frame: the gap counts from the last tick that saw the carrier (the
    model once waited there for a second fall that never came)."""
    free = Card()
    free.start()
    free.queue_tx(0, bytes(80))
    w = free.tdmd()                       # every card here takes TDMD at this edge
    first = T.next_tick_at_or_after(w + 1 + T.TX_FETCH_CYCLES + T.TX_FIRST_BYTE_CYCLES + 1)
    fall = first + shift
    wire = ScriptedWire(crs=((10, fall),), crs_phase=0)
    c = _send_on(wire, bytes(80))
    (rise, _, frame), = wire.attempts
    last_high = fall - (fall - T.MII_TICK_PHASE) % T.MII_DIVIDER
    assert rise == max(first, last_high + T.MII_DIVIDER * T.TX_IFG_TICKS) and frame is not None
    assert c.tmd(0).flags == TMD1.STP | TMD1.ENP | (TMD1.DEF if last_high >= first else 0)


def test_no_deferral_when_the_carrier_is_gone_before_the_frame() -> None:
    wire = ScriptedWire(crs=((10, 20),))
    c = _send_on(wire, bytes(80))
    assert len(wire.attempts) == 1
    assert c.tmd(0).flags == TMD1.STP | TMD1.ENP


def test_stop_mid_frame_ends_the_transmission_on_the_wire() -> None:
    wire = ScriptedWire()
    c = Card(wire=wire)
    wire.bind(c.m)
    c.start()
    c.queue_tx(0, bytes(1000))
    c.tdmd()
    c.run(k_sleep(c), cycles=1_000)                 # the frame is going out
    (rise, fall, _), = wire.attempts
    assert fall is None
    stop = c.start(CSR0.STOP)
    (rise, fall, frame), = wire.attempts
    assert (fall, frame) == (stop, None)


# --- bad arguments -----------------------------------------------------------------------------
def test_bad_arguments_are_rejected() -> None:
    k = Kernel()
    irq = IrqLine(k, "irq")
    with pytest.raises(TypeError, match="clock"):
        LanceModel(k, 80, irq=irq)
    with pytest.raises(TypeError, match="irq"):
        LanceModel(k, CLOCK, irq=None)
    with pytest.raises(ValueError, match="ram_bytes"):
        LanceModel(k, CLOCK, irq=irq, ram_bytes=3000)
    with pytest.raises(ValueError, match="mac"):
        LanceModel(k, CLOCK, irq=irq, mac=b"\x01")
    with pytest.raises(TypeError, match="wire"):
        LanceModel(k, CLOCK, irq=irq, wire=object())
    m = LanceModel(k, CLOCK, irq=irq)
    with pytest.raises(TypeError, match="frame"):
        m.receive("abc")
    with pytest.raises(ValueError, match="empty"):
        m.receive(b"")
    m.receive(bytes(100))
    with pytest.raises(ValueError, match="overlaps"):
        m.receive(bytes(100))
    for bad in (2, -4, WINDOW_SIZE, 1.0):
        with pytest.raises(ValueError, match="offset"):
            m.read(bad).send(None)             # checked before the access starts
    for bad in (1 << 32, -1, "1"):
        with pytest.raises(ValueError, match="value"):
            m.write(0, bad).send(None)


@pytest.mark.parametrize("start_ps", [0, 37_000, 80_000])
def test_block_accesses_equal_back_to_back_single_accesses(start_ps) -> None:
    """read_block/write_block (one kernel wake-up per block) take exactly the time of the
    same words accessed one after another, and leave the same RAM and results."""
    rng = random.Random(start_ps)
    words = [rng.getrandbits(32) for _ in range(37)]
    results = []
    for block in (False, True):
        k = Kernel()
        m = LanceModel(k, CLOCK, irq=IrqLine(k, "irq"), ram_bytes=RAM, mac=MAC)
        out = {}

        async def main():
            await k.sleep(start_ps)
            if block:
                await m.write_block(0x400, words)
                out["w"] = k.now
                out["r"] = await m.read_block(0x400, len(words))
            else:
                for i, w in enumerate(words):
                    await m.write(0x400 + 4 * i, w)
                out["w"] = k.now
                out["r"] = [await m.read(0x400 + 4 * i) for i in range(len(words))]
            out["t"] = k.now
        k.spawn(main())
        k.run()
        results.append((out, bytes(m.ram)))
    assert results[0] == results[1]
    assert results[1][0]["r"] == words
    per_write = (T.BUS_WRITE_WAIT + 2) * P
    assert results[1][0]["w"] - start_ps >= len(words) * per_write - 2 * P


def test_block_access_outside_ram_goes_word_by_word_and_bad_ranges_are_refused() -> None:
    k = Kernel()
    m = LanceModel(k, CLOCK, irq=IrqLine(k, "irq"), ram_bytes=RAM, mac=MAC)
    out = {}

    async def main():
        out["rom"] = await m.read_block(ROM_OFFSET, 8)
        with pytest.raises(ValueError, match="window"):
            await m.read_block(WINDOW_SIZE - 8, 4)
    k.spawn(main())
    k.run()
    assert [w >> 16 & 0xFF for w in out["rom"][:6]] == list(MAC)


def test_a_buffer_ram_word_write_takes_no_kernel_event_of_its_own():
    """A host write to a buffer RAM word changes only the RAM: it lands as a one-word host run
    (no edge of the card's scheduled for it), yet reads see it from its effect edge on."""
    k = Kernel()
    m = LanceModel(k, CLOCK, irq=IrqLine(k, "lance.irq"), ram_bytes=RAM, mac=MAC)
    got = []

    async def host():
        await m.write(0x40, 0x1234_5678)
        got.append(await m.read(0x40))

    k.spawn(host())
    k.run()
    assert got == [0x1234_5678]
    # The write's and the read's own wake-ups only: before, the write also ran an edge.
    assert k.events == 4


def test_a_received_frame_tests_rxon_with_its_first_descriptor_read():
    """The receive engine tests RXON (as after beat 0) in the step that reads RMD0/RMD1 at
    beat 0 + 1, not in a step of its own: the frame lands as before, one kernel event fewer."""
    c = Card()
    c.start()
    c.ack()
    e0 = c.k.events
    f = frame_to(MAC, 100)
    c.receive_at(1000, f)
    c.run(k_sleep(c), cycles=10_000)
    assert bytes(c.m.ram[RX_BUF:RX_BUF + 100]) == f and c.rmd(0).mcnt == 100
    assert c.k.events - e0 == 10
