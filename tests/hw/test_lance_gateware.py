"""The LANCE card's RTL on Amaranth's simulator: register semantics, transmit, receive, drops,
and the latencies that hw/lance/timing.py promises (measured here, so model and RTL share them).

The wire side is driven and sampled by the testbench at the card's MII tick edges; the FCS
golden model is ``zlib.crc32``.
"""
from __future__ import annotations

import random
import struct
import zlib

import pytest
from amaranth.sim import Simulator

from hw.lance import timing as T
from hw.lance.gateware import LanceCard
from hw.lance.registers import (COUNTERS_OFFSET, CSR0, DEFAULT_MAC, RAP_OFFSET, RDP_OFFSET,
                                ROM_ESAR_OFFSET, ROM_OFFSET, TMD1, RMD1, BufferLayout, Counter,
                                Csr, InitBlock, RxDescriptor, TxDescriptor, bcnt_encode,
                                csr1_csr2)
from sim.bindings.amaranth import add_clock
from sim.time import Clock

from bfm.amaranth_hostbus import TestbenchHostBus

CLOCK = Clock(80_000, "lance")
RAM = 16 * 1024
PEER = bytes.fromhex("08002b0000ff")


def fcs(b: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(b))


def nibbles(raw: bytes) -> list[int]:
    out = []
    for b in raw:
        out += [b & 0xF, b >> 4]
    return out


class Tb:
    """A host-bus master, a wire driver and a wire monitor around one card, on one simulator."""

    def __init__(self, ctx, card: LanceCard):
        self.ctx, self.card = ctx, card
        self.edge = -1        # the number of the last edge we waited for
        self.bus = TestbenchHostBus(ctx, card.bus, tick=self.tick)

    async def tick(self, n: int = 1) -> None:
        for _ in range(n):
            await self.ctx.tick()
            self.edge += 1

    async def write(self, offset: int, value: int) -> int:
        """Bus write; returns the effect edge."""
        await self.bus.write(offset & ~3, value)
        return self.edge - 1

    async def read(self, offset: int) -> int:
        """Bus read of the word holding byte ``offset``."""
        return await self.bus.read(offset & ~3)

    async def csr_write(self, n: int, value: int) -> int:
        await self.write(RAP_OFFSET, n)
        return await self.write(RDP_OFFSET, value)

    async def csr_read(self, n: int) -> int:
        await self.write(RAP_OFFSET, n)
        return await self.read(RDP_OFFSET)

    def poke(self, addr: int, raw: bytes) -> None:
        """Backdoor write of buffer memory (byte address, any alignment)."""
        ram = self.card.ram.data
        for i, b in enumerate(raw):
            a = addr + i
            w = self.ctx.get(ram[a >> 2])
            sh = 8 * (a & 3)
            self.ctx.set(ram[a >> 2], (w & ~(0xFF << sh)) | b << sh)

    def peek(self, addr: int, n: int) -> bytes:
        ram = self.card.ram.data
        words = [self.ctx.get(ram[i]) for i in range(addr >> 2, (addr + n + 3) >> 2)]
        raw = b"".join(struct.pack("<I", w) for w in words)
        off = addr & 3
        return raw[off:off + n]

    def memory(self) -> bytes:
        return self.peek(0, self.card.ram_bytes)


def run(card: LanceCard, bench, *, vcd: str | None = None) -> None:
    sim = Simulator(card)
    add_clock(sim, CLOCK)
    sim.add_testbench(bench)
    sim.run()


LAYOUT_RX = 4
LAYOUT_TX = 4


def small_layout(rx: int = LAYOUT_RX, tx: int = LAYOUT_TX, size: int = 1520):
    """Init block at 0, rings, then buffers (a 16 KiB memory's version of BufferLayout)."""
    rdra = 24
    tdra = rdra + 8 * rx
    rxb = [tdra + 8 * tx + i * size for i in range(rx)]
    txb = [rxb[-1] + size + i * size for i in range(tx)]
    return rdra, tdra, rxb, txb


async def init_card(tb: Tb, *, rx: int = LAYOUT_RX, tx: int = LAYOUT_TX, size: int = 1520,
                    own_rx: bool = True, mode: int = 0, padr: bytes = DEFAULT_MAC):
    rdra, tdra, rxb, txb = small_layout(rx, tx, size)
    ib = InitBlock(mode=mode, padr=padr, ladrf=0, rdra=rdra, rlen=rx, tdra=tdra, tlen=tx)
    tb.poke(0, ib.pack())
    for i in range(rx):
        tb.poke(rdra + 8 * i, rx_desc(rxb[i], size, own_rx))
    for i in range(tx):
        tb.poke(tdra + 8 * i, tx_desc(txb[i], 60, own=False, stp=True, enp=True))
    c1, c2 = csr1_csr2(0)
    await tb.csr_write(1, c1)
    await tb.csr_write(2, c2)
    w = await tb.csr_write(0, int(CSR0.INIT | CSR0.STRT | CSR0.INEA))
    return w, (rdra, tdra, rxb, txb)


def rx_desc(addr: int, size: int, own: bool) -> bytes:
    w0 = addr & 0xFFFF
    w1 = (addr >> 16) & 0xFF | (int(RMD1.OWN) if own else 0)
    return struct.pack("<4H", w0, w1, bcnt_encode(size), 0)


def tx_desc(addr: int, size: int, *, own: bool, stp: bool, enp: bool) -> bytes:
    w1 = (addr >> 16) & 0xFF | (int(TMD1.OWN) if own else 0) | (int(TMD1.STP) if stp else 0) \
        | (int(TMD1.ENP) if enp else 0)
    return struct.pack("<4H", addr & 0xFFFF, w1, bcnt_encode(size), 0)


async def capture_tx(tb: Tb, max_edges: int):
    """Sample txd/tx_en at tick edges until tx_en falls; returns (rise_edge, fall_edge, bytes)."""
    ctx, card = tb.ctx, tb.card
    nibs, rise = [], None
    for _ in range(max_edges):
        await tb.tick()
        if not T.is_tick(tb.edge):
            continue
        en = ctx.get(card.tx_en)
        if en and rise is None:
            rise = tb.edge
        if en:
            nibs.append(ctx.get(card.txd))
        elif rise is not None:
            fall = tb.edge
            raw = bytes(nibs[i] | nibs[i + 1] << 4 for i in range(0, len(nibs) - 1, 2))
            return rise, fall, raw
    raise AssertionError("no frame transmitted")


async def drive_rx(tb: Tb, frame_with_fcs: bytes, *, rx_er_at: int | None = None) -> int:
    """Put a frame on the card's rx pins; the card samples its first preamble nibble at the
    tick edge returned."""
    ctx, card = tb.ctx, tb.card
    nibs = [5] * 15 + [0xD] + nibbles(frame_with_fcs)
    while not T.is_tick(tb.edge + 1):
        await tb.tick()
    t0 = tb.edge + 1
    for k, n in enumerate(nibs):
        ctx.set(card.rxd, n)
        ctx.set(card.rx_dv, 1)
        ctx.set(card.rx_er, int(rx_er_at == k))
        await tb.tick(T.MII_DIVIDER)
    ctx.set(card.rx_dv, 0)
    ctx.set(card.rx_er, 0)
    ctx.set(card.rxd, 0)
    return t0


async def wait_irq(tb: Tb, max_edges: int = 100_000) -> int:
    for _ in range(max_edges):
        if tb.ctx.get(tb.card.irq):
            return tb.edge
        await tb.tick()
    raise AssertionError("no interrupt")


# ---------------------------------------------------------------------------------------------
def test_registers_rom_counters_and_wait_states() -> None:
    card = LanceCard(ram_bytes=RAM)

    async def bench(ctx):
        tb = Tb(ctx, card)
        assert await tb.csr_read(0) == int(CSR0.STOP)
        # ROM: byte i of the MAC at ROM_ESAR_OFFSET + 4 i, in its byte lane.
        for i in range(6):
            word = await tb.read(ROM_OFFSET + ROM_ESAR_OFFSET + 4 * i - 2)
            assert (word >> 16) & 0xFF == DEFAULT_MAC[i]
        # CSR1..3 writable while stopped.
        await tb.csr_write(1, 0x1234)
        assert await tb.csr_read(1) == 0x1234
        await tb.csr_write(3, 0x4)
        assert await tb.csr_read(3) == 0x4
        # RAM through the bus, wrapping modulo ram_bytes.
        await tb.write(0x100, 0xDEADBEEF)
        assert await tb.read(0x100) == 0xDEADBEEF
        assert await tb.read(0x100 + RAM) == 0xDEADBEEF
        assert tb.peek(0x100, 4) == struct.pack("<I", 0xDEADBEEF)
        for c in Counter:
            assert await tb.read(COUNTERS_OFFSET + 4 * c) == 0
        # Wait states: a read takes BUS_READ_WAIT + 1 edges to ack, a write BUS_WRITE_WAIT + 1;
        # the access completes one edge later.
        _, edges = await tb.bus.access(0x40 << 2)
        assert edges - 1 == T.BUS_READ_WAIT + 1

    run(card, bench)


def test_transmit_frame_timing_and_writeback() -> None:
    card = LanceCard(ram_bytes=RAM)
    rng = random.Random(3)
    payload = bytes(rng.randrange(256) for _ in range(100))
    result = {}

    async def bench(ctx):
        tb = Tb(ctx, card)
        w, (rdra, tdra, rxb, txb) = await init_card(tb)
        idon = await wait_irq(tb)
        assert idon == w + T.INIT_CYCLES + T.IRQ_LATENCY
        await tb.csr_write(0, int(CSR0.IDON | CSR0.INEA))
        tb.poke(txb[0], payload)
        tb.poke(tdra, tx_desc(txb[0], len(payload), own=True, stp=True, enp=True))
        p = await tb.csr_write(0, int(CSR0.TDMD | CSR0.INEA))
        rise, fall, raw = await capture_tx(tb, 50_000)
        # The poll starts at the edge after TDMD's effect edge.
        decide = p + 1 + T.TX_FETCH_CYCLES
        assert rise == T.next_tick_at_or_after(decide + T.TX_FIRST_BYTE_CYCLES + 1)
        assert raw[:8] == bytes([0x55] * 7 + [0xD5])
        assert raw[8:] == payload + fcs(payload)
        assert fall - rise == T.MII_DIVIDER * T.wire_nibbles(len(payload) + 4)
        irq = await wait_irq(tb)
        tint = fall + T.TX_STATUS_CYCLES + T.TX_WRITEBACK_PER_DESCRIPTOR + T.TX_WRITEBACK_TAIL
        assert irq == tint + T.IRQ_LATENCY
        csr0 = await tb.csr_read(0)
        assert csr0 & CSR0.TINT and csr0 & CSR0.INTR and csr0 & CSR0.TXON
        w0, w1, w2, w3 = struct.unpack("<4H", tb.peek(tdra, 8))
        assert not w1 & TMD1.OWN and w1 & TMD1.STP and w1 & TMD1.ENP and not w1 & TMD1.ERR
        assert w3 == 0
        result["ok"] = True

    run(card, bench)
    assert result["ok"]


def test_short_frame_is_padded_and_chained_transmit() -> None:
    card = LanceCard(ram_bytes=RAM)

    async def bench(ctx):
        tb = Tb(ctx, card)
        _, (rdra, tdra, rxb, txb) = await init_card(tb)
        await wait_irq(tb)
        await tb.csr_write(0, int(CSR0.IDON | CSR0.INEA))
        # Two buffers: 14 + 20 bytes, padded to 60 on the wire.
        a, b = bytes(range(14)), bytes(range(100, 120))
        tb.poke(txb[0], a)
        tb.poke(txb[1], b)
        tb.poke(tdra + 8, tx_desc(txb[1], len(b), own=True, stp=False, enp=True))
        tb.poke(tdra, tx_desc(txb[0], len(a), own=True, stp=True, enp=False))
        await tb.csr_write(0, int(CSR0.TDMD | CSR0.INEA))
        _, _, raw = await capture_tx(tb, 50_000)
        frame = (a + b).ljust(60, b"\0")
        assert raw[8:] == frame + fcs(frame)
        await wait_irq(tb)
        for i in range(2):
            w1 = struct.unpack("<4H", tb.peek(tdra + 8 * i, 8))[1]
            assert not w1 & TMD1.OWN
        assert await tb.csr_read(0) & CSR0.TINT

    run(card, bench)


@pytest.mark.parametrize("size", [60, 509, 700])
def test_receive_good_frame_chained_and_timing(size) -> None:
    card = LanceCard(ram_bytes=RAM)
    rng = random.Random(size)
    body = DEFAULT_MAC + PEER + bytes(rng.randrange(256) for _ in range(size - 12))
    frame = body + fcs(body)

    async def bench(ctx):
        tb = Tb(ctx, card)
        _, (rdra, tdra, rxb, txb) = await init_card(tb, size=512)
        await wait_irq(tb)
        await tb.csr_write(0, int(CSR0.IDON | CSR0.INEA))
        t0 = await drive_rx(tb, frame)
        irq = await wait_irq(tb)
        ndesc = -(-len(frame) // 512)
        last_beat = t0 + T.MII_DIVIDER * (T.wire_nibbles(len(frame)) + T.RX_LAST_BEAT_TICKS)
        chained_at_end = len(frame) > 512 and (len(frame) - 1) % 512 == 0
        rint = (last_beat + T.RX_WRITEBACK_START + ndesc + 1
                + (T.RX_CHAIN_CYCLES if chained_at_end else 0))
        assert irq == rint + T.IRQ_LATENCY, (irq, rint)
        got = b"".join(tb.peek(rxb[i], min(512, len(frame) - 512 * i)) for i in range(ndesc))
        assert got == frame
        for i in range(ndesc):
            w0, w1, w2, w3 = struct.unpack("<4H", tb.peek(rdra + 8 * i, 8))
            assert not w1 & RMD1.OWN
            assert bool(w1 & RMD1.STP) == (i == 0)
            assert bool(w1 & RMD1.ENP) == (i == ndesc - 1)
            assert not w1 & RMD1.ERR
        assert struct.unpack("<4H", tb.peek(rdra + 8 * (ndesc - 1), 8))[3] == len(frame)
        assert await tb.csr_read(0) & CSR0.RINT

    run(card, bench)


def test_receive_flags_bad_fcs_drops_runt_and_counts_miss_without_writing() -> None:
    card = LanceCard(ram_bytes=RAM)
    body = DEFAULT_MAC + PEER + bytes(range(60))
    good = body + fcs(body)
    bad = body + bytes(4)
    runt_body = DEFAULT_MAC + PEER + bytes(10)
    runt = runt_body + fcs(runt_body)
    other = PEER + PEER + bytes(60)

    async def bench(ctx):
        tb = Tb(ctx, card)
        _, (rdra, tdra, rxb, txb) = await init_card(tb)
        await wait_irq(tb)
        await tb.csr_write(0, int(CSR0.IDON | CSR0.INEA))
        before = tb.memory()
        for f in (runt, other + fcs(other)):
            await drive_rx(tb, f)
            await tb.tick(200)
        # Descriptors untouched.
        assert tb.peek(rdra, 8 * LAYOUT_RX) == before[rdra:rdra + 8 * LAYOUT_RX]
        assert await tb.read(COUNTERS_OFFSET + 4 * Counter.RUNTS) == 1
        assert not ctx.get(card.irq)
        # A bad FCS: handed up with ERR and CRC, as the Am7990 does (and counted).
        await drive_rx(tb, bad)
        await tb.tick(200)
        w0, w1, w2, w3 = struct.unpack("<4H", tb.peek(rdra, 8))
        assert w1 & 0xFF00 == RMD1.STP | RMD1.ENP | RMD1.ERR | RMD1.CRC and w3 == len(bad)
        assert await tb.read(COUNTERS_OFFSET + 4 * Counter.FCS_ERRORS) == 1
        await tb.csr_write(0, int(CSR0.RINT | CSR0.INEA))
        # Take every buffer away: the next frame is missed and nothing is written.
        for i in range(LAYOUT_RX):
            tb.poke(rdra + 8 * i, rx_desc(rxb[i], 1520, own=False))
        before = tb.memory()
        await drive_rx(tb, good)
        await tb.tick(200)
        assert tb.memory() == before
        assert await tb.read(COUNTERS_OFFSET + 4 * Counter.MISSED) == 1
        csr0 = await tb.csr_read(0)
        assert csr0 & CSR0.MISS and csr0 & CSR0.ERR and ctx.get(card.irq)
        # Counters clear on write.
        await tb.write(COUNTERS_OFFSET + 4 * Counter.MISSED, 0)
        assert await tb.read(COUNTERS_OFFSET + 4 * Counter.MISSED) == 0

    run(card, bench)


def test_stop_resets_engines() -> None:
    card = LanceCard(ram_bytes=RAM)

    async def bench(ctx):
        tb = Tb(ctx, card)
        await init_card(tb)
        await wait_irq(tb)
        await tb.csr_write(0, int(CSR0.STOP))
        assert await tb.csr_read(0) == int(CSR0.STOP)
        assert not ctx.get(card.irq)

    run(card, bench)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="ram_bytes"):
        LanceCard(ram_bytes=5000)
    with pytest.raises(ValueError, match="mac"):
        LanceCard(mac=b"\x00")
