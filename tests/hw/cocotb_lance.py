"""cocotb bench for the LANCE-style Ethernet card's RTL (``hw.lance.gateware.LanceCard``).

The card runs inside Icarus or Verilator with its clock started in the simulator (``impl="gpi"``,
80 ns = 12.5 MHz, docs/lance_card.md). The host side is the host bus's BFM
(:class:`bfm.cocotb_hostbus.HostBusDriver`, presenting at falling edges) and the driver-like
:class:`lance_bfm.LanceHost`; the wire side is cocotbext-eth's ``MiiSource`` on the
card's receive pins and ``MiiSink`` on its transmit pins, both clocked by the card's own
``mii_clk`` (they drive and sample on its rising edge, the card on its falling edge). ``crs`` and
``col`` are held low: a free wire. Golden models: ``zlib.crc32`` for the FCS, the frames the
bench made for the data, ``hw.lance.registers`` for descriptor formats.

Run from tests/hw/test_lance_cocotb.py; the design parameters come in the environment:
``SERVEROS_LANCE_RAM_BYTES`` and ``SERVEROS_LANCE_MAC`` (hex), which must match the build.
"""
from __future__ import annotations

import logging
import os
import random
import struct
import zlib

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer, with_timeout
from cocotbext.eth import GmiiFrame, MiiSink, MiiSource

from hw.lance import timing
from hw.lance.registers import (BUFFER_SIZE, CSR0, MAX_FRAME, RAM_OFFSET, RAP_OFFSET,
                                RDP_OFFSET, RMD1, ROM_OFFSET, TMD1, TMD3, WINDOW_SIZE, Csr, Mode,
                                TxDescriptor, csr1_csr2)
from bfm.cocotb_hostbus import HostBusDriver, HostBusSignals
from lance_bfm import COUNTER_NAMES, LanceHost, SmallLayout

RAM_BYTES = int(os.environ.get("SERVEROS_LANCE_RAM_BYTES", str(16 * 1024)))
MAC = bytes.fromhex(os.environ.get("SERVEROS_LANCE_MAC", "08002b4c414e"))
CLOCK_NS = 80            # 12.5 MHz TURBOchannel clock (docs/lance_card.md)
NIBBLE_NS = 400          # 10 Mbit/s: one MII nibble per 5 clocks
IFG_NIBBLES = 24         # 96 bit times (IEEE 802.3)
PREAMBLE = bytes([0x55] * 7 + [0xD5])
BROADCAST = b"\xff" * 6
#: Simulated time allowed for the card to finish with a frame after the wire went idle
#: (descriptor write-back, RINT): generous against the cycle counts of hw/lance/timing.py.
SETTLE_NS = 40_000


def fcs(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data))


def frame_to(dst: bytes, rng: random.Random, length: int, src: bytes = b"\x02\x00\x00\x00\x00\x01",
             ) -> bytes:
    """A frame of ``length`` bytes without FCS: dst, src, a length/type word, random payload."""
    if length < 14:
        raise ValueError(f"a frame needs at least 14 bytes, not {length!r}")
    payload = bytes(rng.randrange(256) for _ in range(length - 14))
    return dst + src + struct.pack(">H", 0x0800) + payload


class Bench:
    """Clock, reset, the host bus and the two MII bus-functional models around the card."""

    def __init__(self, dut, *, rx_size: int | None = None, rx: int = 4, tx: int = 4) -> None:
        self.dut = dut
        self.bus = HostBusDriver(HostBusSignals(dut), dut.clk, period_ps=CLOCK_NS * 1000,
                                 phase="falling")
        dut.rst.value = 1
        for name in ("rxd", "rx_dv", "rx_er", "crs", "col"):
            getattr(dut, name).value = 0
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        # The same compact rings whatever the SRAM size, so every build runs the same benches.
        self.layout = SmallLayout(RAM_BYTES, rx=rx, tx=tx,
                                  rx_size=BUFFER_SIZE if rx_size is None else rx_size)
        self.host = LanceHost(self.bus, ram_bytes=RAM_BYTES, layout=self.layout)
        self.irq_edges: list[tuple[int, int]] = []     # (sim time ns, new level)
        self.source: MiiSource | None = None
        self.sink: MiiSink | None = None

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        self.source = MiiSource(self.dut.rxd, self.dut.rx_er, self.dut.rx_dv, self.dut.mii_clk)
        self.source.ifg = IFG_NIBBLES   # its default (12) is shorter than 802.3 allows
        self.sink = MiiSink(self.dut.txd, self.dut.tx_er, self.dut.tx_en, self.dut.mii_clk)
        for bfm in (self.source, self.sink):   # not every frame's bytes in the log
            bfm.log.setLevel(logging.WARNING)
        cocotb.start_soon(self._watch_irq())

    async def _watch_irq(self) -> None:
        from cocotb.simtime import get_sim_time
        while True:
            irq = self.dut.irq
            await (FallingEdge(irq) if int(irq.value) else RisingEdge(irq))
            self.irq_edges.append((get_sim_time("ns"), int(self.dut.irq.value)))

    def irq(self) -> int:
        return int(self.dut.irq.value)

    async def start(self, **kwargs) -> None:
        """Reset, then init and start the card with the ROM's station address."""
        await self.reset()
        mac = await self.host.rom_mac()
        assert mac == MAC, f"ROM holds {mac.hex()}, expected {MAC.hex()}"
        await self.host.init(MAC, **kwargs)

    async def wire_idle(self, settle_ns: int = SETTLE_NS) -> None:
        """Wait until the source has sent everything, then give the card time to finish."""
        await self.source.wait()
        await Timer(settle_ns, unit="ns")

    async def send(self, frames: list[bytes | GmiiFrame]) -> None:
        for f in frames:
            await self.source.send(f if isinstance(f, GmiiFrame)
                                   else GmiiFrame.from_payload(f, min_len=0))

    async def wait_csr0(self, bits: CSR0, timeout_ns: int = 4_000_000) -> CSR0:
        """Poll CSR0 (every 2 us of simulated time) until all of ``bits`` are set."""
        waited = 0
        while True:
            c0 = await self.host.csr0()
            if c0 & bits == bits:
                return c0
            if waited >= timeout_ns:
                raise AssertionError(f"CSR0 {c0!r} lacks {bits!r} after {timeout_ns} ns")
            await Timer(2_000, unit="ns")
            waited += 2_000

    async def receive_and_check(self, frames: list[bytes]) -> list[int]:
        """Take one returned descriptor per frame from the host's receive index and compare
        bytes (FCS included), MCNT and status. Returns the descriptor indices used."""
        used = []
        for n, f in enumerate(frames):
            got = await self.host.take_rx()
            assert got is not None, \
                f"frame {n}: descriptor {self.host.rx_next} still owned by the card"
            i, d, data = got
            used.append(i)
            assert d.flags & (RMD1.STP | RMD1.ENP) == RMD1.STP | RMD1.ENP, f"frame {n}: {d!r}"
            assert not d.flags & (RMD1.ERR | RMD1.CRC | RMD1.BUFF | RMD1.OFLO | RMD1.FRAM), \
                f"frame {n}: error flags {d.flags!r}"
            assert d.mcnt == len(f) + 4, f"frame {n}: MCNT {d.mcnt}, expected {len(f) + 4}"
            assert data == f + fcs(f), f"frame {n}: received bytes differ from those sent"
            assert d.addr == self.layout.rx_buffers[i], f"frame {n}: buffer address changed"
        return used

    async def transmit_and_check(self, frames: list[bytes], *, batch: int | None = None) -> list:
        """Queue frames (``batch`` at a time, default the ring length) and check what the sink
        receives: preamble, payload, FCS against zlib.crc32, then the returned descriptors."""
        batch = batch or self.layout.rings.tx
        got_frames = []
        for start in range(0, len(frames), batch):
            chunk = frames[start:start + batch]
            idx = [await self.host.queue_tx(f) for f in chunk]
            for n, f in enumerate(chunk):
                rx = await with_timeout(self.sink.recv(), 5, "ms")
                got_frames.append(rx)
                assert rx.error is None, f"frame {start + n}: tx_er raised"
                assert rx.get_preamble() == PREAMBLE, f"frame {start + n}: preamble"
                payload = bytes(rx.get_payload())
                assert payload == f, f"frame {start + n}: {len(payload)} bytes out, {len(f)} queued"
                assert bytes(rx.get_fcs()) == fcs(f), f"frame {start + n}: bad FCS"
            await Timer(SETTLE_NS, unit="ns")
            for n, i in enumerate(idx):
                d = await self.host.tmd(i)
                assert not d.flags & TMD1.OWN, f"frame {start + n}: TMD{i} not handed back: {d!r}"
                assert not d.flags & TMD1.ERR and not d.errors, f"frame {start + n}: {d!r}"
                assert d.flags & (TMD1.STP | TMD1.ENP) == TMD1.STP | TMD1.ENP
                assert d.size == len(chunk[n]) and d.addr == self.layout.tx_buffers[i], d
        assert self.sink.empty(), "the card sent more frames than were queued"
        return got_frames


# --- registers and memory --------------------------------------------------------------------
@cocotb.test()
async def registers_rom_and_memory(dut) -> None:
    """Reset state, ROM, CSR1-3 under STOP, counters, unmapped space and buffer memory."""
    tb = Bench(dut)
    await tb.reset()
    h = tb.host
    assert await h.csr0() == CSR0.STOP
    assert tb.irq() == 0
    assert await h.rom_mac() == MAC
    assert await h.counters() == dict.fromkeys(COUNTER_NAMES, 0)
    # CSR1-3 are writable while STOP; RAP reads back its selection.
    for csr, value in ((Csr.CSR1, 0x1234), (Csr.CSR2, 0x0056), (Csr.CSR3, 0x0000)):
        await h.csr_write(csr, value)
        assert await h.rap_read() & 3 == int(csr)
        assert await h.csr_read(csr) & 0xFFFF == value, csr
    # Buffer memory: word i holds bytes 4i..4i+3 little-endian; wraps modulo ram_bytes.
    rng = random.Random(7990)
    blob = bytes(rng.randrange(256) for _ in range(64))
    await h.write_ram(0x100, blob)
    assert await h.read_ram(0x100, 64) == blob
    await h.write_ram(0x203, b"\xaa\xbb\xcc")          # unaligned: read-modify-write
    assert await h.read_ram(0x200, 8) == b"\x00\x00\x00\xaa\xbb\xcc\x00\x00"
    await tb.bus.write(RAM_OFFSET + RAM_BYTES + 0x100, 0xDEADBEEF)   # wraps onto 0x100
    assert await tb.bus.read(RAM_OFFSET + 0x100) == 0xDEADBEEF
    # Unmapped space reads 0 and ignores writes; ROM bytes other than the ESAR read 0.
    for off in (0x180000, WINDOW_SIZE - 4):
        await tb.bus.write(off, 0xFFFFFFFF)
        assert await tb.bus.read(off) == 0, hex(off)
    assert await tb.bus.read(ROM_OFFSET) == MAC[0] << 16            # lane 2 only
    assert await tb.bus.read(ROM_OFFSET + 4 * 6) == 0                  # past the address
    # Wait states (docs/lance_card.md): ack at e0 + 5 for a read, e0 + 3 for a write, the
    # access completing one cycle later. Back to back, the next request is presented in the ack
    # cycle, which the card ignores, so it is sampled one cycle after the completion edge:
    # 7 cycles per read and 5 per write, as for software that issues one access per completion.
    from cocotb.simtime import get_sim_time
    t0 = get_sim_time("ns")
    for _ in range(4):
        await tb.bus.read(RDP_OFFSET)
    t1 = get_sim_time("ns")
    for _ in range(4):
        await tb.bus.write(RAP_OFFSET, 0)
    t2 = get_sim_time("ns")
    assert t1 - t0 == 4 * (timing.BUS_READ_WAIT + 2) * CLOCK_NS, t1 - t0
    assert t2 - t1 == 4 * (timing.BUS_WRITE_WAIT + 2) * CLOCK_NS, t2 - t1
    # CSR1-3 ignore writes once INIT cleared STOP; STOP makes them writable again.
    await h.csr_write(Csr.CSR0, CSR0.INIT)
    c0 = await tb.wait_csr0(CSR0.IDON)
    assert not c0 & (CSR0.STOP | CSR0.TXON | CSR0.RXON), repr(c0)
    await h.csr_write(Csr.CSR1, 0x4320)
    assert await h.csr_read(Csr.CSR1) == 0x1234
    await h.csr_write(Csr.CSR0, CSR0.STOP)
    assert await h.csr0() == CSR0.STOP
    await h.csr_write(Csr.CSR1, 0x4320)
    assert await h.csr_read(Csr.CSR1) == 0x4320


# --- frames both ways ------------------------------------------------------------------------
@cocotb.test()
async def random_frames_both_ways(dut) -> None:
    """Random frames 60-1514 bytes into the card (read back from buffer memory over the bus,
    FCS included) and out of it (MiiSink, FCS checked with zlib.crc32)."""
    tb = Bench(dut)
    await tb.start()
    rng = random.Random(1995)
    sizes = [60, 1514] + [rng.randrange(60, 1515) for _ in range(3)]
    rx_frames = [frame_to(MAC if k % 2 == 0 else BROADCAST, rng, n) for k, n in enumerate(sizes)]
    n_rx = tb.layout.rings.rx
    for start in range(0, len(rx_frames), n_rx):
        chunk = rx_frames[start:start + n_rx]
        await tb.send(chunk)
        await tb.wire_idle()
        c0 = await tb.wait_csr0(CSR0.RINT)
        assert c0 & CSR0.INTR and tb.irq() == 1, f"RINT without irq: {c0!r}"
        await tb.host.csr_write(Csr.CSR0, CSR0.RINT | CSR0.INEA)
        await tb.receive_and_check(chunk)
    tx_frames = [frame_to(bytes.fromhex("020000000002"), rng, n)
                 for n in [1514, 60] + [rng.randrange(60, 1515) for _ in range(3)]]
    await tb.transmit_and_check(tx_frames)
    c0 = await tb.host.csr0()
    assert c0 & CSR0.TINT and c0 & (CSR0.TXON | CSR0.RXON) == CSR0.TXON | CSR0.RXON, repr(c0)
    assert not c0 & CSR0.ERR, repr(c0)
    assert await tb.host.counters() == dict.fromkeys(COUNTER_NAMES, 0)


@cocotb.test()
async def back_to_back_and_ring_wrap(dut) -> None:
    """Bursts of frames at the minimum inter-frame gap, through the rings more than twice."""
    tb = Bench(dut)
    await tb.start()
    rng = random.Random(42)
    n_rx, n_tx = tb.layout.rings.rx, tb.layout.rings.tx
    seen_rx: list[int] = []
    for burst in range(3):
        frames = [frame_to(MAC, rng, rng.choice([60, 61, 64, 128, 300])) for _ in range(n_rx)]
        await tb.send(frames)
        await tb.wire_idle()
        await tb.wait_csr0(CSR0.RINT)
        await tb.host.csr_write(Csr.CSR0, CSR0.RINT | CSR0.INEA)
        seen_rx += await tb.receive_and_check(frames)
    assert seen_rx == [i % n_rx for i in range(3 * n_rx)], seen_rx
    frames = [frame_to(BROADCAST, rng, rng.choice([60, 100, 200])) for _ in range(2 * n_tx + 1)]
    sent = await tb.transmit_and_check(frames)
    # Back to back on the wire: the gap is 96 bit times (the engine fetches the next frame
    # while the gap runs), measured between rising mii_clk edges as MiiSink sees them.
    from cocotb.simtime import convert
    gaps = [convert(sent[k + 1].sim_time_start - sent[k].sim_time_end, "step", to="ns")
            for k in range(len(sent) - 1) if (k + 1) % n_tx]     # within each queued batch
    assert len(gaps) == 2 * (n_tx - 1), gaps
    assert all(g == IFG_NIBBLES * NIBBLE_NS for g in gaps), gaps
    assert tb.host.tx_next == (2 * n_tx + 1) % n_tx


@cocotb.test()
async def ownership_hand_off(dut) -> None:
    """The card writes only descriptors (and buffers) it owns, and hands them back with OWN
    clear; descriptors the host keeps are untouched byte for byte."""
    tb = Bench(dut)
    await tb.start(rx_owned=2)
    h, lay = tb.host, tb.layout
    rng = random.Random(3)
    n_rx, n_tx = lay.rings.rx, lay.rings.tx
    # The host-owned receive descriptors and their buffers, and all transmit descriptors.
    kept = {i: await h.read_ram(lay.rmd(i), 8) for i in range(2, n_rx)}
    kept_buf = {i: await h.read_ram(lay.rx_buffers[i], 128) for i in range(2, n_rx)}
    frames = [frame_to(MAC, rng, 100), frame_to(MAC, rng, 70)]
    await tb.send(frames)
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    for i in range(2, n_rx):
        assert await h.read_ram(lay.rmd(i), 8) == kept[i], f"RMD{i} written while host-owned"
        assert await h.read_ram(lay.rx_buffers[i], 128) == kept_buf[i], f"buffer {i} written"
    assert await tb.receive_and_check(frames) == [0, 1]
    # Transmit: one descriptor handed over, the others (host-owned, with a marker) untouched.
    markers = {}
    for i in range(1, n_tx):
        d = TxDescriptor(addr=lay.tx_buffers[i], flags=TMD1.STP, size=60 + i)
        await h._write_descriptor(lay.tmd(i), d.pack())
        markers[i] = d.pack()
    f = frame_to(BROADCAST, rng, 80)
    await h.queue_tx(f)
    rx = await with_timeout(tb.sink.recv(), 5, "ms")
    assert bytes(rx.get_payload()) == f and rx.check_fcs()
    await Timer(SETTLE_NS, unit="ns")
    assert not (await h.tmd(0)).flags & TMD1.OWN
    for i in range(1, n_tx):
        assert await h.read_ram(lay.tmd(i), 8) == markers[i], f"TMD{i} written while host-owned"
    # Nothing more goes out: the next descriptor is not owned (poll after 1.6 ms included).
    await Timer(2_000_000, unit="ns")
    assert tb.sink.empty()


@cocotb.test()
async def receive_without_owned_buffer_is_missed(dut) -> None:
    """No owned receive descriptor: the frame is dropped, MISS (ERR, INTR, irq) is set, the
    missed counter counts it, and buffer memory is unchanged."""
    tb = Bench(dut)
    await tb.start(rx_owned=0)
    h = tb.host
    await h.csr_write(Csr.CSR0, CSR0.IDON | CSR0.INEA)   # nothing pending
    before = await h.snapshot()
    rng = random.Random(5)
    await tb.send([frame_to(MAC, rng, 200), frame_to(BROADCAST, rng, 64)])
    await tb.wire_idle()
    c0 = await tb.wait_csr0(CSR0.MISS)
    assert c0 & (CSR0.ERR | CSR0.INTR) == CSR0.ERR | CSR0.INTR and not c0 & CSR0.RINT, repr(c0)
    assert tb.irq() == 1
    assert await h.counter("missed") == 2
    assert await h.snapshot() == before, "a missed frame changed buffer memory"
    await h.csr_write(Csr.CSR0, CSR0.MISS | CSR0.INEA)             # write one to clear
    await ClockCycles(dut.clk, 4)
    assert tb.irq() == 0 and not (await h.csr0()) & (CSR0.MISS | CSR0.ERR)
    # Writing a counter clears it; the others keep counting.
    await h.clear_counter("missed")
    assert await h.counter("missed") == 0
    # Hand a buffer over: the next frame is received into descriptor 0.
    await h.give_rx(0)
    f = frame_to(MAC, rng, 90)
    await tb.send([f])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    assert await tb.receive_and_check([f]) == [0]


@cocotb.test()
async def bad_fcs_is_flagged_runt_and_long_frames_are_dropped(dut) -> None:
    """Runts, too-long frames and rx_er frames are dropped and counted: no RINT, no descriptor
    handed back, the ring index stays. A bad FCS is handed up in RMD0 with ERR and CRC (and
    counted), as the Am7990 does; a good frame after it lands in RMD1."""
    tb = Bench(dut)
    await tb.start()
    h = tb.host
    rng = random.Random(11)
    good = frame_to(MAC, rng, 100)
    bad = bytearray(fcs(good))
    bad[0] ^= 0x01
    runt = frame_to(MAC, rng, 40)            # 44 bytes with FCS < 64
    too_long = frame_to(MAC, rng, MAX_FRAME - 4 + 20)
    with_er = GmiiFrame.from_payload(frame_to(MAC, rng, 80), min_len=0)
    with_er.error = [0] * len(with_er.data)
    with_er.error[40] = 1
    await tb.send([GmiiFrame.from_raw_payload(runt + fcs(runt))])
    await tb.wire_idle()
    c0 = await h.csr0()
    assert not c0 & (CSR0.RINT | CSR0.ERR), repr(c0)
    assert tb.irq() == 0
    assert (await h.rmd(0)).flags & RMD1.OWN, "a dropped frame handed RMD0 back"
    counts = await h.counters()
    assert counts["fcs_errors"] == 0 and counts["runts"] == 1, counts
    await tb.send([GmiiFrame.from_raw_payload(too_long + fcs(too_long))])
    await tb.wire_idle()
    counts = await h.counters()
    assert counts["too_long"] == 1, counts
    await tb.send([with_er])
    await tb.wire_idle()
    after = await h.counters()
    assert after == dict(counts, fcs_errors=1), (counts, after)   # rx_er counts as an FCS error
    assert not (await h.csr0()) & CSR0.RINT
    for i in range(tb.layout.rings.rx):
        d = await h.rmd(i)
        assert d.flags & RMD1.OWN and d.mcnt == 0, f"RMD{i} touched by a dropped frame: {d!r}"
    await tb.send([GmiiFrame.from_raw_payload(good + bytes(bad))])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    d = await h.rmd(0)
    flags = RMD1.OWN | RMD1.STP | RMD1.ENP | RMD1.ERR | RMD1.CRC | RMD1.FRAM | RMD1.BUFF
    assert d.flags & flags == RMD1.STP | RMD1.ENP | RMD1.ERR | RMD1.CRC, repr(d)
    assert d.mcnt == len(good) + 4, repr(d)
    assert (await h.counters())["fcs_errors"] == 2
    await h.take_rx()
    await tb.host.csr_write(Csr.CSR0, CSR0.RINT | CSR0.INEA)
    await tb.send([good])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    assert await tb.receive_and_check([good]) == [1]


@cocotb.test()
async def address_filter(dut) -> None:
    """Other stations' unicast frames are ignored (not counted); broadcast is accepted; a
    multicast passes the LADRF hash filter only with its bit set; MODE.PROM accepts everything."""
    tb = Bench(dut)
    await tb.start()
    h = tb.host
    rng = random.Random(21)
    other = frame_to(bytes.fromhex("020000000099"), rng, 64)
    bcast = frame_to(BROADCAST, rng, 64)
    await tb.send([other, bcast])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    assert await tb.receive_and_check([bcast]) == [0]
    assert (await h.rmd(1)).flags & RMD1.OWN
    assert await h.counters() == dict.fromkeys(COUNTER_NAMES, 0)
    # Multicast: accepted when LADRF has the bit that the top six bits of the CRC register
    # (no final inversion, as Linux's ether_crc_le) select, ignored otherwise.
    def hash_bit(addr: bytes) -> int:
        return (zlib.crc32(addr) ^ 0xFFFF_FFFF) >> 26

    wanted = bytes.fromhex("01005e000001")
    unwanted = next(a for a in (bytes.fromhex(f"01005e0000{k:02x}") for k in range(2, 256))
                    if hash_bit(a) != hash_bit(wanted))
    await h.init(MAC, ladrf=1 << hash_bit(wanted))
    mc_in, mc_out = frame_to(wanted, rng, 64), frame_to(unwanted, rng, 64)
    await tb.send([mc_out, mc_in])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    assert await tb.receive_and_check([mc_in]) == [0]
    assert (await h.rmd(1)).flags & RMD1.OWN
    await h.init(MAC, mode=Mode.PROM)
    await tb.send([other])
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    assert await tb.receive_and_check([other]) == [0]


@cocotb.test()
async def irq_follows_intr_and_inea(dut) -> None:
    """irq = INTR & INEA, registered: IDON raises it only with INEA; RINT and TINT raise it;
    write-one-to-clear drops it; INEA off masks it while INTR stays."""
    tb = Bench(dut)
    await tb.reset()
    h, lay = tb.host, tb.layout
    await h.write_ram(lay.init_block, lay.init(MAC).pack())
    for i in range(lay.rings.rx):
        await h.give_rx(i)
    c1, c2 = csr1_csr2(lay.init_block)
    await h.csr_write(Csr.CSR1, c1)
    await h.csr_write(Csr.CSR2, c2)
    await h.csr_write(Csr.CSR0, CSR0.INIT)                 # INEA off: IDON without irq
    c0 = await tb.wait_csr0(CSR0.IDON)
    assert c0 & CSR0.INTR and tb.irq() == 0 and not tb.irq_edges
    await h.csr_write(Csr.CSR0, CSR0.INEA)                 # enabling raises irq for IDON
    await ClockCycles(dut.clk, 3)
    assert tb.irq() == 1
    await h.csr_write(Csr.CSR0, CSR0.IDON | CSR0.INEA | CSR0.STRT)
    await ClockCycles(dut.clk, 3)
    assert tb.irq() == 0
    assert [lvl for _, lvl in tb.irq_edges] == [1, 0]
    c0 = await h.csr0()
    assert c0 & (CSR0.TXON | CSR0.RXON | CSR0.INEA) == CSR0.TXON | CSR0.RXON | CSR0.INEA
    assert not c0 & (CSR0.INTR | CSR0.STOP), repr(c0)
    rng = random.Random(8)
    f = frame_to(MAC, rng, 64)
    await tb.send([f])
    await with_timeout(RisingEdge(dut.irq), 1, "ms")       # RINT
    assert (await h.csr0()) & (CSR0.RINT | CSR0.INTR) == CSR0.RINT | CSR0.INTR
    await h.csr_write(Csr.CSR0, CSR0.RINT | CSR0.INEA)
    await ClockCycles(dut.clk, 3)
    assert tb.irq() == 0
    h.rx_next = 0
    assert await tb.receive_and_check([f]) == [0]
    # INEA off masks TINT; turning it on again raises irq.
    await h.queue_tx(frame_to(BROADCAST, rng, 60), inea=False)
    await with_timeout(tb.sink.recv(), 5, "ms")
    c0 = await tb.wait_csr0(CSR0.TINT)
    assert c0 & CSR0.INTR and not c0 & CSR0.INEA and tb.irq() == 0
    await h.csr_write(Csr.CSR0, CSR0.INEA)
    await ClockCycles(dut.clk, 3)
    assert tb.irq() == 1
    await h.csr_write(Csr.CSR0, CSR0.TINT | CSR0.INEA)
    await ClockCycles(dut.clk, 3)
    assert tb.irq() == 0
    assert [lvl for _, lvl in tb.irq_edges] == [1, 0, 1, 0, 1, 0]
    # STOP resets the engines: CSR0 reads STOP, nothing pending.
    await h.csr_write(Csr.CSR0, CSR0.STOP)
    assert await h.csr0() == CSR0.STOP


# --- chaining, padding and FCS control ---------------------------------------------------------
@cocotb.test()
async def chained_receive_buffers(dut) -> None:
    """256-byte receive buffers: a long frame spans several descriptors (STP on the first,
    ENP and MCNT on the last, OWN cleared on all); with too few owned descriptors the frame is
    cut, the last one it reached getting BUFF and ERR."""
    tb = Bench(dut, rx_size=256, rx=8)
    await tb.start()
    h = tb.host
    rng = random.Random(256)
    frames = [frame_to(MAC, rng, 600), frame_to(MAC, rng, 252), frame_to(MAC, rng, 253)]
    await tb.send(frames)
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT)
    expect_idx = [[0, 1, 2], [3], [4, 5]]     # 604, 256 (exactly one buffer), 257 bytes
    for f, want in zip(frames, expect_idx):
        got = await h.take_frame()
        assert got is not None, "frame not handed back"
        idx, descs, data = got
        assert idx == want, (idx, want)
        assert data == f + fcs(f)
        assert descs[0].flags & RMD1.STP and descs[-1].flags & RMD1.ENP
        assert descs[-1].mcnt == len(f) + 4
        for d in descs[1:]:
            assert not d.flags & RMD1.STP
        for d in descs[:-1]:
            assert not d.flags & RMD1.ENP and d.mcnt == 0
        assert not any(d.flags & (RMD1.ERR | RMD1.BUFF) for d in descs)
    # Cut: only RMD6 and RMD7 owned (the others are the host's), a 700-byte frame needs three.
    await h.csr_write(Csr.CSR0, CSR0.RINT | CSR0.INEA)
    for i in range(6):
        await h.give_rx(i, own=False)
    kept = await h.read_ram(tb.layout.rmd(0), 8 * 6)
    f = frame_to(MAC, rng, 700)
    await tb.send([f])
    await tb.wire_idle()
    c0 = await tb.wait_csr0(CSR0.RINT)
    assert await h.read_ram(tb.layout.rmd(0), 8 * 6) == kept, "host-owned descriptors written"
    d6, d7 = await h.rmd(6), await h.rmd(7)
    assert not (d6.flags | d7.flags) & RMD1.OWN, (d6, d7)
    assert d6.flags & RMD1.STP and not d6.flags & (RMD1.ENP | RMD1.ERR), d6
    assert d7.flags & RMD1.BUFF and d7.flags & RMD1.ERR and not d7.flags & RMD1.ENP, d7
    assert await h.read_ram(d6.addr, 256) == f[:256]
    assert await h.read_ram(d7.addr, 256) == f[256:512]
    assert not c0 & CSR0.MISS, repr(c0)


@cocotb.test()
async def chained_transmit_and_padding(dut) -> None:
    """A frame spread over three transmit descriptors leaves as one; a short frame is padded
    to 60 bytes before the FCS; a chain whose last descriptor is not owned is a buffer error
    (TMD3.BUFF and UFLO, TXON cleared)."""
    tb = Bench(dut)
    await tb.start()
    h = tb.host
    rng = random.Random(77)
    f = frame_to(BROADCAST, rng, 1000)
    idx = await h.queue_tx_chain(f, [14, 500, 486])
    rx = await with_timeout(tb.sink.recv(), 5, "ms")
    assert bytes(rx.get_payload()) == f and rx.check_fcs() and rx.error is None
    await Timer(SETTLE_NS, unit="ns")
    descs = [await h.tmd(i) for i in idx]
    assert all(not d.flags & TMD1.OWN for d in descs), descs
    assert descs[0].flags & TMD1.STP and descs[-1].flags & TMD1.ENP
    assert not any(d.flags & TMD1.ERR or d.errors for d in descs), descs
    short = frame_to(BROADCAST, rng, 20)
    await h.queue_tx(short)
    rx = await with_timeout(tb.sink.recv(), 5, "ms")
    padded = short + bytes(60 - len(short))
    assert bytes(rx.get_payload()) == padded and bytes(rx.get_fcs()) == fcs(padded)
    await Timer(SETTLE_NS, unit="ns")
    # A broken chain: STP owned, ENP not.
    await h.csr_write(Csr.CSR0, CSR0.TINT | CSR0.INEA)
    idx = await h.queue_tx_chain(frame_to(BROADCAST, rng, 200), [100, 100], own_last=False)
    await tb.wait_csr0(CSR0.TINT)
    await Timer(SETTLE_NS, unit="ns")
    d0 = await h.tmd(idx[0])
    assert not d0.flags & TMD1.OWN and d0.flags & TMD1.ERR, d0
    assert d0.errors & TMD3.BUFF and d0.errors & TMD3.UFLO, d0
    assert not (await h.csr0()) & CSR0.TXON
    # Whatever reached the wire was not a good frame.
    while not tb.sink.empty():
        bad = tb.sink.recv_nowait()
        assert bad.error is not None or not bad.check_fcs(), "a broken chain left as a good frame"


@cocotb.test()
async def dtcr_sends_the_hosts_fcs(dut) -> None:
    """MODE.DTCR: the card sends the buffer as is (the host supplies the FCS, good or bad);
    TMD1.ADD_FCS makes it append one anyway."""
    tb = Bench(dut)
    await tb.start(mode=Mode.DTCR)
    h = tb.host
    rng = random.Random(90)
    f = frame_to(BROADCAST, rng, 100)
    bad = bytearray(fcs(f))
    bad[3] ^= 0x80
    await h.queue_tx(f + fcs(f))
    await h.queue_tx(f + bytes(bad))
    await h.queue_tx(f, flags=TMD1.ADD_FCS)
    outs = [await with_timeout(tb.sink.recv(), 5, "ms") for _ in range(3)]
    assert bytes(outs[0].get_payload(strip_fcs=False)) == f + fcs(f) and outs[0].check_fcs()
    assert bytes(outs[1].get_payload(strip_fcs=False)) == f + bytes(bad)
    assert not outs[1].check_fcs()
    assert bytes(outs[2].get_payload(strip_fcs=False)) == f + fcs(f)


@cocotb.test()
async def both_ways_at_once(dut) -> None:
    """Receive and transmit engines at the same time (a free wire: crs and col low)."""
    tb = Bench(dut)
    await tb.start()
    rng = random.Random(2024)
    rx_frames = [frame_to(MAC, rng, rng.randrange(60, 600)) for _ in range(tb.layout.rings.rx)]
    tx_frames = [frame_to(BROADCAST, rng, rng.randrange(60, 600))
                 for _ in range(tb.layout.rings.tx)]
    await tb.send(rx_frames)                      # queued: the source starts at once
    await tb.transmit_and_check(tx_frames)
    await tb.wire_idle()
    await tb.wait_csr0(CSR0.RINT | CSR0.TINT)
    assert await tb.receive_and_check(rx_frames) == list(range(tb.layout.rings.rx))
    assert await tb.host.counters() == dict.fromkeys(COUNTER_NAMES, 0)


@cocotb.test()
async def deferral_and_collision_retry(dut) -> None:
    """Carrier sense defers a transmission (TMD1.DEF); a collision early in the frame makes
    the card jam, back off and send the frame again (TMD1.ONE, the collision counter)."""
    tb = Bench(dut)
    await tb.start()
    h = tb.host
    rng = random.Random(1985)
    # Deferral: someone else's carrier is on the wire when the frame is queued.
    dut.crs.value = 1
    f = frame_to(BROADCAST, rng, 100)
    i = await h.queue_tx(f)
    await Timer(100_000, unit="ns")
    assert tb.sink.empty() and not int(dut.tx_en.value), "transmitted over a busy carrier"
    dut.crs.value = 0
    rx = await with_timeout(tb.sink.recv(), 5, "ms")
    assert bytes(rx.get_payload()) == f and rx.check_fcs()
    await Timer(SETTLE_NS, unit="ns")
    d = await h.tmd(i)
    assert d.flags & TMD1.DEF and not d.flags & (TMD1.OWN | TMD1.ERR | TMD1.ONE | TMD1.MORE), d
    # Collision: col for two nibble times, 40 nibbles into the frame (before the slot time).
    f = frame_to(BROADCAST, rng, 300)
    i = await h.queue_tx(f)
    await with_timeout(RisingEdge(dut.tx_en), 1, "ms")
    await Timer(40 * NIBBLE_NS, unit="ns")
    dut.col.value = 1
    await Timer(2 * NIBBLE_NS, unit="ns")
    dut.col.value = 0
    fragment = await with_timeout(tb.sink.recv(), 1, "ms")
    assert len(fragment.data) < 100 and not fragment.check_fcs(), "the jammed frame looked good"
    rx = await with_timeout(tb.sink.recv(), 5, "ms")
    assert bytes(rx.get_payload()) == f and rx.check_fcs() and rx.error is None
    await Timer(SETTLE_NS, unit="ns")
    d = await h.tmd(i)
    assert d.flags & TMD1.ONE and not d.flags & (TMD1.OWN | TMD1.ERR | TMD1.MORE), d
    assert not d.errors, d
    counts = await h.counters()
    assert counts == dict(dict.fromkeys(COUNTER_NAMES, 0), collisions=1), counts
    assert tb.sink.empty()
