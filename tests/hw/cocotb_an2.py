"""cocotb benches for the AN2-style ATM card's RTL (``hw.an2.gateware.An2Card``).

The card runs inside Icarus or Verilator with its clock started in the simulator at time 0
(edge 0 = cell slot 0, docs/an2_card.md "Pins"), 80 ns = 12.5 MHz. Around it, the BFMs of
tests/hw/bfm: the host bus's driver under a small register-level driver
(:class:`bfm.an2_driver.An2Host`), host memory answering the card's DMA with random wait states
and refusing pages the VC's owner does not have (:class:`bfm.dma_memory.DmaMemory`), a cell
source on the receive pins and a cell sink on the transmit pins (:mod:`bfm.atm_cells`).
Golden models: :mod:`sim.media.aal5` (segmentation, CRC-32, trailer) for both directions,
scapy for the IP packets some PDUs carry, the payloads the bench made for the data; per VC an
in-order :class:`bfm.Scoreboard` says nothing that should arrive is lost and nothing corrupt is
delivered as good.

Run from tests/hw/test_an2_cocotb.py. ``SERVEROS_AN2_SWEEP=full`` (the slow pytest entry)
widens the random sizes (every size 0-1000 and random sizes up to 65535) and the counts.
"""
from __future__ import annotations

import os
import random
from dataclasses import replace

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import LLC, SNAP
from scapy.packet import Raw

from bfm import Scoreboard
from bfm.an2_driver import An2Host, HostLayout, RxPdu
from bfm.atm_cells import CellSignals, CellSink, CellSource, pdus_of
from bfm.cocotb_hostbus import HostBusDriver, HostBusSignals
from bfm.dma_memory import DmaMemory, DmaSignals, HostMemory
from bfm.pauses import random_pauses
from hw.an2.registers import (MAX_PDU, MAX_PDU_CELLS, NO_INDEX, NUM_VCS, Completion, Counter,
                              CqError, CqKind, Link, Reg, aal5_cells)
from hw.an2.timing import CELL_SLOT_CYCLES, CLOCK_PERIOD_PS
from sim.media.aal5 import Aal5Error, segment
from sim.media.atm import Cell

P = CLOCK_PERIOD_PS
FULL = os.environ.get("SERVEROS_AN2_SWEEP", "quick") == "full"
MEM_BYTES = 4 << 20
PAGE = 4096
#: Cycles the card may take per cell after the last one crossed the pins (descriptor
#: write-back, the completion, the host's polling), generous against hw/an2/timing.py.
SETTLE_CYCLES = 4000
#: Sizes at the cell boundaries (a trailer fits in the last cell or needs one more).
EDGE_SIZES = [0, 1, 2, 3, 4, 5, 39, 40, 41, 47, 48, 49, 87, 88, 89, 95, 96, 97, 1000]


def pdu_cells(vci: int, payload: bytes, *, vpi: int = 0) -> list[Cell]:
    """The cells of ``payload``'s AAL5 PDU on VC ``vci`` (PTI bit 0 on the last)."""
    parts = segment(payload)
    return [Cell(vpi=vpi, vci=vci, pt=int(i == len(parts) - 1), payload=p)
            for i, p in enumerate(parts)]


def interleave(rng: random.Random, streams: list[list[Cell]]) -> list[Cell]:
    """A random merge of cell streams, each kept in order (cell-by-cell interleaving)."""
    streams = [list(s) for s in streams if s]
    pos = [0] * len(streams)
    out: list[Cell] = []
    weights = [len(s) for s in streams]
    while any(p < len(s) for p, s in zip(pos, streams)):
        live = [i for i, s in enumerate(streams) if pos[i] < len(s)]
        i = rng.choices(live, [weights[j] for j in live])[0]
        out.append(streams[i][pos[i]])
        pos[i] += 1
    return out


def ip_payload(rng: random.Random, size: int) -> bytes:
    """An RFC 1483 LLC/SNAP-encapsulated IPv4/UDP packet of ``size`` bytes (at least 36)."""
    pkt = (LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
           / IP(src="10.16.0.1", dst="10.16.0.2") / UDP(sport=rng.randrange(1, 65536), dport=80)
           / Raw(rng.randbytes(size - 36)))
    raw = bytes(pkt)
    assert len(raw) == size
    return raw


def check_ip(data: bytes) -> None:
    """scapy re-parses ``data``: LLC/SNAP, IPv4 with a correct header checksum, UDP."""
    pkt = LLC(data)
    assert pkt.haslayer(IP) and pkt.haslayer(UDP), pkt.summary()
    ip = pkt[IP]
    fresh = ip.copy()
    fresh.chksum = None
    assert IP(bytes(fresh)).chksum == ip.chksum, "bad IPv4 header checksum"
    assert ip.len == len(data) - 8


class Bench:
    """The card and its BFMs.

    Parameters
    ----------
    dut
        The An2Card.
    seed : int
        For every random choice of the bench.
    max_wait : int
        Most wait cycles before a DMA word (0: none).
    cell_gaps : int
        Most idle slots between received cells (0: one cell every slot).
    word_gaps : bool
        Random one- or two-cycle pauses inside received cells.
    layout : HostLayout, optional
        The rings.
    """

    def __init__(self, dut, *, seed: int, max_wait: int = 0, cell_gaps: int = 0,
                 word_gaps: bool = False, layout: HostLayout | None = None) -> None:
        self.dut = dut
        self.rng = random.Random(seed)
        dut.rst.value = 1
        dut.link_status.value = int(Link.Signal | Link.FrameLock | Link.CellLock)
        for name in ("rx_valid", "rx_soc", "rx_data"):
            getattr(dut, name).value = 0
        Clock(dut.clk, P, unit="ps", impl="gpi").start()
        self.memory = HostMemory(size=MEM_BYTES, page_size=PAGE)
        self.dma = DmaMemory(DmaSignals(dut), dut.clk, memory=self.memory, period_ps=P,
                             waits=random_pauses(seed + 1, most=max_wait) if max_wait
                             else None)
        self.bus = HostBusDriver(HostBusSignals(dut), dut.clk, period_ps=P, phase="falling")
        self.host = An2Host(self.bus, self.memory, dut.clk, layout=layout or HostLayout())
        self.source = CellSource(
            CellSignals(dut, prefix="rx"), dut.clk, period_ps=P,
            gaps=random_pauses(seed + 2, most=cell_gaps, chance=0.3) if cell_gaps else None,
            word_gaps=random_pauses(seed + 3, most=2, chance=0.05) if word_gaps else None)
        self.sink = CellSink(CellSignals(dut, prefix="tx"), dut.clk, period_ps=P,
                             callback=lambda c: None)
        #: Received PDUs by VC, good or flagged, in completion order.
        self.received: dict[int, list[RxPdu]] = {}
        self.dropped: list[Completion] = []        # Rx completions without buffers
        self.tx_done: list[Completion] = []
        #: Buffers taken back that wait for room in their pool's ring: (addr, size, tag).
        self.spare: dict[int, list[tuple[int, int, int]]] = {}

    async def start(self, *, loopback: bool = False, coalesce: int = 1) -> None:
        """Reset, the rings, both engines on."""
        # Icarus does not run Amaranth's combinational always-blocks at time 0 until one of
        # their inputs changes: poke Yosys's trigger register so they all settle (as
        # tests/hw/cocotb_disk.py does); Verilator has no such register.
        try:
            self.dut["\\$auto$verilog_backend.cc:2355:dump_module$1\\"].value = 1
        except (AttributeError, KeyError, IndexError):
            pass
        await RisingEdge(self.dut.clk)
        await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        # The card's slot clock leaves reset with this edge's state: slot 0 starts here.
        self.sink.origin = round(get_sim_time("ps")) // P
        await RisingEdge(self.dut.clk)
        await self.host.reset()
        await self.host.setup(coalesce=coalesce)
        await self.host.enable(loopback=loopback)

    def finish(self) -> None:
        """No BFM saw the card break a protocol."""
        assert self.dma.violations == [], self.dma.violations
        assert self.dma.abandoned == 0, f"{self.dma.abandoned} DMA bursts abandoned"
        assert self.sink.violations == [], self.sink.violations

    # -- receive ---------------------------------------------------------------------------------
    async def post_buffers(self, pool: int, count: int, *, lo: int = 64, hi: int = 1024,
                           owner: int | None = None) -> list[tuple[int, int]]:
        """Post ``count`` buffers of random sizes (multiples of 4, ``lo`` .. ``hi``) to
        ``pool``, each filled with a pattern; ``owner``: on pages given to that owner tag."""
        bufs = []
        for _ in range(count):
            size = 4 * self.rng.randint(lo // 4, hi // 4)
            if owner is None:
                addr = self.host.alloc(size, align=4)
            else:
                addr = self.host.alloc_page(-(-size // PAGE))
                self.memory.own(addr, size, owner)
            self.memory.write(addr, bytes([0xA5]) * size)
            bufs.append((addr, size))
        await self.host.post_rx(pool, [(a, s, a) for a, s in bufs])
        return bufs

    async def collect(self, rx: int, tx: int = 0, *, timeout_cycles: int) -> None:
        """Take completions until ``rx`` receive and ``tx`` transmit ones have come (more than
        that fails); each received PDU's buffers go back to its pool at once."""
        waited = 0
        while True:
            for c in await self.host.completions():
                if c.kind == CqKind.Tx:
                    self.tx_done.append(c)
                elif c.index == NO_INDEX:
                    self.dropped.append(c)
                else:
                    pdu = self.host.take_rx(c)
                    self.received.setdefault(c.vci, []).append(pdu)
                    self.spare.setdefault(c.pool, []).extend((d.addr, d.size, d.tag)
                                                             for _, d in pdu.buffers)
            for pool, bufs in self.spare.items():
                n = min(len(bufs), self.host.pool_room(pool))
                if n:
                    await self.host.post_rx(pool, bufs[:n])
                    del bufs[:n]
            n_rx = sum(map(len, self.received.values())) + len(self.dropped)
            assert n_rx <= rx and len(self.tx_done) <= tx, \
                f"more completions than expected: {n_rx}/{rx} rx, {len(self.tx_done)}/{tx} tx"
            if n_rx == rx and len(self.tx_done) == tx:
                return
            if waited >= timeout_cycles:
                counters = {c.name: v for c, v in (await self.host.counters()).items() if v}
                status = await self.host.read(Reg.Status)
                got = {v: [(p.completion.length, p.completion.errors) for p in pdus]
                       for v, pdus in self.received.items()}
                raise AssertionError(
                    f"{n_rx} of {rx} rx and {len(self.tx_done)} of {tx} tx completions after "
                    f"{waited} cycles; status {status:#x}, counters {counters}, received "
                    f"{got}, dropped {self.dropped}; DMA protocol: {self.dma.violations[:8]}")
            await self.host.cycles(200)
            waited += 200

    def cells_cycles(self, cells: int) -> int:
        """A time-out for ``cells`` cells at the line rate plus settling."""
        return int(cells * CELL_SLOT_CYCLES * 3) + SETTLE_CYCLES

    def check_good(self, pdu: RxPdu, payload: bytes, pool: int) -> None:
        """A good PDU: completion fields, buffer chain (First .. Last, full but the last)."""
        c = pdu.completion
        assert c.errors == CqError(0), c
        assert (c.pool, c.length, c.cells) == (pool, len(payload), aal5_cells(len(payload))), c
        bufs = [d for _, d in pdu.buffers]
        assert bufs and bufs[0].first and bufs[-1].last, bufs
        assert not any(d.first for d in bufs[1:]) and not any(d.last for d in bufs[:-1]), bufs
        assert all(d.length == d.size for d in bufs[:-1]) and bufs[-1].length <= bufs[-1].size
        assert not any(d.own or d.crc_error or d.oversize or d.lost_cell or d.dma_fault
                       for d in bufs), bufs
        assert pdu.buffers[-1][0] == c.index and c.tag == bufs[-1].tag
        assert all(d.tag == d.addr for d in bufs), "a buffer's address or tag changed"

    # -- transmit --------------------------------------------------------------------------------
    def place(self, payload: bytes, *, max_pieces: int = 5, owner: int | None = None
              ) -> list[tuple[int, int]]:
        """``payload`` in 1 .. ``max_pieces`` buffers split at random points (zero-length
        pieces included), each at a random byte alignment; ``owner``: on that owner's pages."""
        n = self.rng.randint(1, max_pieces)
        cuts = sorted(self.rng.randint(0, len(payload)) for _ in range(n - 1))
        pieces = []
        for a, b in zip([0] + cuts, cuts + [len(payload)]):
            if owner is None:
                addr = self.host.alloc(b - a, align=4, offset=self.rng.randrange(4))
            else:
                addr = self.host.alloc_page(max(1, -(-(b - a + 3) // PAGE))) + \
                    self.rng.randrange(4)
                self.memory.own(addr - addr % PAGE, PAGE * max(1, -(-(b - a + 3) // PAGE)),
                                owner)
            self.memory.write(addr, payload[a:b])
            pieces.append((addr, b - a))
        return pieces


def scoreboards(expected: dict[int, list[bytes]]) -> dict[int, Scoreboard]:
    """One in-order scoreboard per VC, expecting its good payloads."""
    out = {}
    for vci, payloads in expected.items():
        out[vci] = Scoreboard(name=f"vc{vci}")
        out[vci].expect(payloads)
    return out


def check_scoreboards(boards: dict[int, Scoreboard], received: dict[int, list]) -> None:
    """Every VC's observed good payloads (flagged PDUs observed as their error, so a flagged
    PDU where a good one was due counts as wrong) against its scoreboard."""
    failures = []
    for vci in sorted(set(boards) | set(received)):
        board = boards.get(vci) or Scoreboard(name=f"vc{vci}")
        for got in received.get(vci, []):
            board.observe(got)
        try:
            board.check()
        except AssertionError as e:
            failures.append(str(e)[:2000])
    assert not failures, "\n".join(failures)


# --- receive -----------------------------------------------------------------------------------
def rx_sizes(rng: random.Random) -> list[int]:
    if FULL:
        return list(range(0, 1001)) + [rng.randint(0, MAX_PDU) for _ in range(60)]
    return EDGE_SIZES + [rng.randint(0, 1500) for _ in range(12)]


@cocotb.test()
async def random_pdus_interleaved_on_many_vcs(dut) -> None:
    """Random PDUs of the edge sizes and random ones on 8 VCs over two pools, interleaved cell
    by cell, random idle slots and pauses between words, random DMA wait states: every PDU
    delivered good, in order per VC, with its bytes, buffer chain and completion."""
    tb = Bench(dut, seed=11, max_wait=2, cell_gaps=2, word_gaps=True,
               layout=HostLayout(pool_sizes=(256, 128, 16, 16)))
    await tb.start()
    rng = tb.rng
    # VCI 0 (with VPI 0) is the unassigned cell's header (ITU-T I.361): not used for data.
    vcs = [1, NUM_VCS - 1] + rng.sample(range(2, NUM_VCS - 1), 6)
    pool_of = {v: i % 2 for i, v in enumerate(vcs)}
    for v in vcs:
        await tb.host.open_vc(v, pool=pool_of[v])
    for pool in (0, 1):
        # The full sweep's PDUs reach 65535 bytes, several at once per pool: larger buffers.
        await tb.post_buffers(pool, 200 if pool == 0 else 100, hi=16384 if FULL else 1024)
    expected: dict[int, list[bytes]] = {}
    streams: dict[int, list[Cell]] = {}
    sizes = rx_sizes(rng)
    for k, size in enumerate(sizes):
        v = rng.choice(vcs)
        payload = ip_payload(rng, size) if size >= 36 and k % 3 == 0 else rng.randbytes(size)
        expected.setdefault(v, []).append(payload)
        streams.setdefault(v, []).extend(pdu_cells(v, payload))
    cells = interleave(rng, list(streams.values()))
    for c in cells:
        tb.source.send_nowait(c)
    await tb.collect(len(sizes), timeout_cycles=tb.cells_cycles(len(cells)))
    for v, pdus in tb.received.items():
        for pdu, payload in zip(pdus, expected.get(v, [])):
            if pdu.completion.errors == CqError(0) and pdu.data == payload:
                tb.check_good(pdu, payload, pool_of[v])
                if len(payload) >= 36 and payload[:3] == b"\xaa\xaa\x03":
                    check_ip(pdu.data)
    check_scoreboards(scoreboards(expected),
                      {v: [p.data if p.completion.errors == CqError(0) else p.completion.errors
                           for p in pdus] for v, pdus in tb.received.items()})
    counters = await tb.host.counters()
    assert counters[Counter.PdusRx] == len(sizes)
    assert counters[Counter.CellsRx] == len(cells)
    assert all(counters[c] == 0 for c in (Counter.CrcErrors, Counter.OversizePdus,
                                          Counter.NoBuffer, Counter.LostCells,
                                          Counter.DmaFaults, Counter.UnknownVc)), counters
    assert tb.dropped == [] and tb.sink.cells == []
    tb.finish()


@cocotb.test()
async def largest_pdu_then_an_oversize_one(dut) -> None:
    """A 65535-byte PDU (1366 cells) arrives good; then a run of MAX_PDU_CELLS + 1 cells
    without an end-of-PDU cell is cut (Oversize, counted, flagged, never good) and the VC
    takes the next PDU good again."""
    tb = Bench(dut, seed=12, max_wait=1)
    await tb.start()
    rng = tb.rng
    await tb.host.open_vc(42)
    await tb.post_buffers(0, 60, lo=2048, hi=4096)
    big, after = rng.randbytes(MAX_PDU), rng.randbytes(100)
    cells = pdu_cells(42, big)
    assert len(cells) == MAX_PDU_CELLS
    over = [Cell(vpi=0, vci=42, pt=0, payload=rng.randbytes(48))
            for _ in range(MAX_PDU_CELLS + 1)]
    over += pdu_cells(42, rng.randbytes(40))          # the run's end-of-PDU cell
    cells += over + pdu_cells(42, after)
    for c in cells:
        tb.source.send_nowait(c)
    await tb.collect(3, timeout_cycles=tb.cells_cycles(len(cells)))
    good, cut, again = tb.received[42]
    tb.check_good(good, big, 0)
    assert good.data == big
    assert cut.completion.errors & CqError.Oversize, cut.completion
    assert cut.buffers and cut.buffers[-1][1].oversize
    tb.check_good(again, after, 0)
    assert again.data == after
    counters = await tb.host.counters()
    assert counters[Counter.OversizePdus] == 1 and counters[Counter.PdusRx] == 2, counters
    tb.finish()


@cocotb.test()
async def bad_input_is_flagged_and_never_delivered_good(dut) -> None:
    """A corrupted cell (CrcError), a lost cell (LostCell), a VC whose pool has no buffer
    (NoBuffer, no index), a VC whose owner may not write its buffers' pages (DmaFault, no byte
    moved), a truncated cell, and cells for a disabled VC, a VCI past the table and VPI 1
    (UnknownVc): each reported as the contract says, while good PDUs on another VC, interleaved
    with them, all arrive good."""
    tb = Bench(dut, seed=13, max_wait=2, cell_gaps=1)
    await tb.start()
    rng = tb.rng
    good_vc, crc_vc, lost_vc, nobuf_vc, fault_vc, off_vc = 10, 11, 12, 13, 14, 20
    for v in (good_vc, crc_vc, lost_vc):
        await tb.host.open_vc(v, pool=0)
    await tb.host.open_vc(nobuf_vc, pool=3)                 # pool 3: nothing posted
    await tb.host.open_vc(fault_vc, pool=2, owner=5)
    await tb.host.open_vc(off_vc, enable=False)
    await tb.post_buffers(0, 40)
    fault_bufs = await tb.post_buffers(2, 4, owner=6)       # pages of owner 6, VC owner 5
    goods = [rng.randbytes(rng.randint(0, 600)) for _ in range(6)]
    crc = pdu_cells(crc_vc, rng.randbytes(300))
    k = rng.randrange(len(crc))
    b = bytearray(crc[k].payload)
    b[rng.randrange(48)] ^= 1 << rng.randrange(8)
    crc[k] = Cell(vpi=0, vci=crc_vc, pt=crc[k].pt, payload=bytes(b))
    lost = pdu_cells(lost_vc, rng.randbytes(400))
    del lost[rng.randrange(len(lost) - 1)]
    unknown = [Cell(vpi=0, vci=off_vc, payload=bytes(48)),
               Cell(vpi=0, vci=NUM_VCS + 5, payload=bytes(48)),
               Cell(vpi=1, vci=good_vc, pt=1, payload=bytes(48))]
    streams = [[c for g in goods for c in pdu_cells(good_vc, g)], crc, lost,
               pdu_cells(nobuf_vc, rng.randbytes(100)), pdu_cells(fault_vc, rng.randbytes(200)),
               unknown]
    cells = interleave(rng, streams)
    for c in cells[:len(cells) // 2]:
        tb.source.send_nowait(c)
    tb.source.send_words([good_vc << 4, 1, 2])             # a truncated cell: dropped
    for c in cells[len(cells) // 2:]:
        tb.source.send_nowait(c)
    await tb.collect(len(goods) + 4, timeout_cycles=tb.cells_cycles(len(cells)))
    (c_crc,), (c_lost,), (c_fault,) = (tb.received[v] for v in (crc_vc, lost_vc, fault_vc))
    assert c_crc.completion.errors & CqError.CrcError and c_crc.buffers[-1][1].crc_error
    assert c_lost.completion.errors & CqError.LostCell and c_lost.buffers[-1][1].lost_cell
    assert c_fault.completion.errors & CqError.DmaFault, c_fault.completion
    assert any(d.dma_fault for _, d in c_fault.buffers), c_fault.buffers
    for addr, size in fault_bufs:                           # no byte moved
        assert tb.memory.read(addr, size) == bytes([0xA5]) * size
    assert [b.owner for b in tb.dma.bursts if b.refused] and \
        all(b.owner == 5 and b.write for b in tb.dma.bursts if b.refused)
    (drop,) = tb.dropped
    assert (drop.vci, drop.errors, drop.index) == (nobuf_vc, CqError.NoBuffer, NO_INDEX), drop
    check_scoreboards(scoreboards({good_vc: goods}),
                      {good_vc: [p.data if p.completion.errors == CqError(0) else
                                 p.completion.errors for p in tb.received[good_vc]]})
    for pdu, g in zip(tb.received[good_vc], goods):
        tb.check_good(pdu, g, 0)
    counters = await tb.host.counters()
    lost_also_crc = bool(c_lost.completion.errors & CqError.CrcError)
    assert counters[Counter.PdusRx] == len(goods), counters
    assert 1 <= counters[Counter.CrcErrors] <= 1 + lost_also_crc, counters
    assert counters[Counter.LostCells] == 1 and counters[Counter.NoBuffer] == 1, counters
    assert counters[Counter.DmaFaults] >= 1 and counters[Counter.UnknownVc] == 3, counters
    assert counters[Counter.OversizePdus] == 0, counters
    tb.finish()


# --- transmit ----------------------------------------------------------------------------------
def tx_sizes(rng: random.Random) -> list[int]:
    if FULL:
        return list(range(0, 300)) + [rng.randint(0, MAX_PDU) for _ in range(30)] + [MAX_PDU]
    return EDGE_SIZES + [rng.randint(0, 1500) for _ in range(10)]


@cocotb.test()
async def gather_pdus_reassemble_at_the_sink(dut) -> None:
    """Random PDUs on 5 VCs, each in 1-5 buffers split at random points and placed at random
    byte alignments, with random DMA wait states: at the sink every cell is on a slot edge
    (VPI 0, GFC 0, CLP 0), every PDU reassembles (sim.media.aal5: CRC-32, trailer) to its
    payload, in order per VC, IP packets re-parse in scapy; every descriptor is handed back
    and every completion says length and cells."""
    tb = Bench(dut, seed=21, max_wait=3)
    await tb.start()
    rng = tb.rng
    vcs = rng.sample(range(1, NUM_VCS), 5)
    for v in vcs:
        await tb.host.open_vc(v)
    expected: dict[int, list[bytes]] = {}
    queued: list[tuple[int, int, bytes, list[int]]] = []   # tag, vci, payload, slots
    batch: list[tuple[int, int, bytes, list[int]]] = []
    written: dict[int, list] = {}                          # tag -> (slot, descriptor) posted
    heap = tb.host.heap_mark()

    async def flush() -> None:
        await tb.host.doorbell()
        cells = sum(aal5_cells(len(b[2])) for b in batch)
        await tb.collect(0, len(tb.tx_done) + len(batch),
                         timeout_cycles=tb.cells_cycles(cells) + 20 * SETTLE_CYCLES)
        # Each descriptor handed back: Own = 0, no error, every other field as the host wrote it.
        for k, _, _, _ in batch:
            for i, d in written.pop(k):
                back = tb.host.tx_descriptor(i)
                assert back == replace(d, own=0), f"descriptor {i}: wrote {d}, got back {back}"
        queued.extend(batch)
        batch.clear()
        tb.host.heap_release(heap)         # the batch's buffers are the host's again

    sizes = tx_sizes(rng)
    for k, size in enumerate(sizes):
        if sum(len(b[3]) for b in batch) + 5 > tb.host.layout.tx_size - 1:
            await flush()
        payload = ip_payload(rng, size) if size >= 36 and k % 3 == 0 else rng.randbytes(size)
        v = rng.choice(vcs)
        pieces = tb.place(payload)
        slots = await tb.host.send(v, pieces, tag=k, doorbell=rng.random() < 0.3)
        expected.setdefault(v, []).append(payload)
        batch.append((k, v, payload, slots))
        written[k] = [(i, tb.host.tx_descriptor(i)) for i in slots]
    await flush()
    await tb.host.cycles(2 * int(CELL_SLOT_CYCLES))
    cells = [s.cell for s in tb.sink.cells]
    assert all((c.vpi, c.gfc, c.clp) == (0, 0, 0) and c.pt in (0, 1) for c in cells)
    got = pdus_of(cells)
    check_scoreboards(scoreboards(expected), got)
    for payloads in got.values():
        for p in payloads:
            if isinstance(p, bytes) and len(p) >= 36 and p[:3] == b"\xaa\xaa\x03":
                check_ip(p)
    by_tag = {c.tag: c for c in tb.tx_done}
    for tag, v, payload, slots in queued:
        c = by_tag[tag]
        assert (c.kind, c.vci, c.errors, c.length, c.cells, c.index) == \
            (CqKind.Tx, v, CqError(0), len(payload), aal5_cells(len(payload)), slots[-1]), c
    counters = await tb.host.counters()
    assert counters[Counter.PdusTx] == len(sizes) and counters[Counter.CellsTx] == len(cells)
    assert await tb.host.read(Reg.TxConsumer) == tb.host.tx_next
    tb.finish()


@cocotb.test()
async def transmit_errors_send_nothing_good(dut) -> None:
    """A PDU on a disabled VC (BadVc), one whose buffer is on a page its VC's owner does not
    have (DmaFault: no good PDU leaves), one of more than 65535 bytes (Oversize, nothing sent);
    good PDUs queued around them leave good."""
    tb = Bench(dut, seed=22, max_wait=1)
    await tb.start()
    rng = tb.rng
    good_vc, off_vc, owned_vc = 30, 31, 32
    await tb.host.open_vc(good_vc)
    await tb.host.open_vc(off_vc, enable=False)
    await tb.host.open_vc(owned_vc, owner=5)
    goods = [rng.randbytes(rng.randint(0, 400)) for _ in range(3)]
    fault = rng.randbytes(300)
    fault_pieces = tb.place(fault[:100], max_pieces=1) + tb.place(fault[100:], max_pieces=1,
                                                                   owner=6)
    big = tb.place(rng.randbytes(40000), max_pieces=1) + tb.place(rng.randbytes(30000),
                                                                   max_pieces=1)
    plan = [(good_vc, tb.place(goods[0]), 0), (off_vc, tb.place(rng.randbytes(50)), 1),
            (good_vc, tb.place(goods[1]), 2), (owned_vc, fault_pieces, 3),
            (good_vc, tb.place(goods[2]), 4), (good_vc, big, 5)]
    for v, pieces, tag in plan:
        await tb.host.send(v, pieces, tag=tag, doorbell=False)
    await tb.host.doorbell()
    await tb.collect(0, len(plan), timeout_cycles=40 * SETTLE_CYCLES)
    await tb.host.cycles(2 * int(CELL_SLOT_CYCLES))
    by_tag = {c.tag: c for c in tb.tx_done}
    assert by_tag[1].errors == CqError.BadVc, by_tag[1]
    assert by_tag[3].errors & CqError.DmaFault, by_tag[3]
    assert by_tag[5].errors == CqError.Oversize and by_tag[5].length == 0, by_tag[5]
    assert all(by_tag[t].errors == CqError(0) for t in (0, 2, 4))
    got = pdus_of(s.cell for s in tb.sink.cells)
    assert got[good_vc] == goods, "good PDUs around the bad ones"
    assert sum(s.cell.vci == good_vc for s in tb.sink.cells) == \
        sum(aal5_cells(len(g)) for g in goods), "cells of the oversize PDU left"
    assert off_vc not in got
    assert all(isinstance(p, Aal5Error) for p in got.get(owned_vc, [])), \
        "a PDU whose read was refused left good"
    assert all(b.owner == 5 for b in tb.dma.bursts if b.refused) and tb.dma.refusals >= 1
    flags = [tb.host.tx_descriptor(i) for i in range(sum(len(p) for _, p, _ in plan))]
    assert any(d.bad_vc for d in flags) and any(d.dma_fault for d in flags)
    assert not any(d.own for d in flags)
    counters = await tb.host.counters()
    assert counters[Counter.OversizePdus] == 1 and counters[Counter.PdusTx] == 3, counters
    tb.finish()


@cocotb.test()
async def loopback_receives_what_it_sends(dut) -> None:
    """Control.Loopback: gather PDUs on two VCs come back through the receive engine, good and
    in order per VC, and no cell leaves on the transmit pins."""
    tb = Bench(dut, seed=23, max_wait=1)
    await tb.start(loopback=True)
    rng = tb.rng
    vcs = (100, 200)
    for v in vcs:
        await tb.host.open_vc(v, pool=1 if v == 200 else 0)
    await tb.post_buffers(0, 12)
    await tb.post_buffers(1, 12)
    expected: dict[int, list[bytes]] = {}
    for k in range(8):
        v, payload = rng.choice(vcs), rng.randbytes(rng.randint(0, 700))
        expected.setdefault(v, []).append(payload)
        await tb.host.send(v, tb.place(payload), tag=k)
    cells = sum(aal5_cells(len(p)) for ps in expected.values() for p in ps)
    await tb.collect(8, 8, timeout_cycles=tb.cells_cycles(cells) + 10 * SETTLE_CYCLES)
    check_scoreboards(scoreboards(expected),
                      {v: [p.data if p.completion.errors == CqError(0) else p.completion.errors
                           for p in pdus] for v, pdus in tb.received.items()})
    for v, pdus in tb.received.items():
        for pdu, payload in zip(pdus, expected[v]):
            tb.check_good(pdu, payload, 1 if v == 200 else 0)
    assert tb.sink.cells == [], "a looped-back cell left on the link"
    assert await tb.host.read(Reg.LinkStatus) == int(Link.Signal | Link.FrameLock | Link.CellLock)
    tb.finish()


# --- hardware pipes (issue 17) ---------------------------------------------------------------
#: LLC/SNAP and a 20-byte IPv4 header: where the transport header starts in the PDU.
_L4 = 28


def _ones(data: bytes) -> int:
    """RFC 1071's folded 16-bit ones'-complement sum, written out plainly."""
    data = bytes(data) + bytes(len(data) % 2)
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pseudo(raw: bytes) -> int:
    """The folded sum of an LLC/SNAP IPv4 packet's pseudo-header (RFC 768 / 793)."""
    return _ones(raw[20:28] + bytes([0, raw[17]]) + (len(raw) - _L4).to_bytes(2, "big"))


def tcp_udp_packets(rng: random.Random, n: int) -> list[bytes]:
    """LLC/SNAP IPv4 packets, UDP and TCP by turns, with scapy's checksums."""
    out = []
    for i in range(n):
        l4 = UDP(sport=rng.randrange(1, 65536), dport=53) if i % 2 else \
            TCP(sport=80, dport=rng.randrange(1, 65536), seq=rng.getrandbits(32))
        out.append(bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
                         / IP(src="10.16.0.1", dst="10.16.0.2") / l4
                         / Raw(rng.randbytes(rng.randint(0, 700)))))
    return out


@cocotb.test()
async def pipes_checksums_scapy_accepts(dut) -> None:
    """The card's hardware pipes. Transmit: UDP and TCP packets whose checksum field holds the
    pseudo-header's sum, sent with Csum from random gather pieces, leave with the checksums
    scapy computes (byte for byte the packets scapy built). Receive on a VC with rx_csum from
    the transport header and a halfword swap: each completion's sum plus the pseudo-header is
    0xFFFF for the good packets, not for one with a flipped bit (a good AAL5 CRC), and the
    buffers hold the bytes swapped from there on."""
    tb = Bench(dut, seed=24, max_wait=2)
    await tb.start()
    rng = tb.rng
    tx_vc, rx_vc = 40, 41
    await tb.host.open_vc(tx_vc)
    await tb.host.open_vc(rx_vc, rx_csum=True, rx_swap=1, pipe_start=_L4 // 2)
    await tb.post_buffers(0, 40)
    packets = tcp_udp_packets(rng, 6)
    for k, raw in enumerate(packets):
        field = 3 if raw[17] == 17 else 8       # UDP's or TCP's checksum, 16-bit units
        at = _L4 + 2 * field
        host_copy = raw[:at] + _pseudo(raw).to_bytes(2, "big") + raw[at + 2:]
        await tb.host.send(tx_vc, tb.place(host_copy), tag=k, doorbell=False,
                           csum=(_L4 // 2, field))
    await tb.host.doorbell()
    cells = sum(aal5_cells(len(p)) for p in packets)
    await tb.collect(0, len(packets), timeout_cycles=2 * tb.cells_cycles(cells) + SETTLE_CYCLES)
    assert all(c.errors == CqError(0) for c in tb.tx_done), tb.tx_done
    sent = pdus_of(s.cell for s in tb.sink.cells)[tx_vc]
    assert sent == packets, "the checksums scapy computes"
    for p in sent:
        if p[17] == 17:         # UDP: scapy re-parses it whole
            check_ip(p)
    bad = bytearray(packets[2])
    bad[-1 if len(bad) > _L4 + 20 else _L4] ^= 0x04
    rx = packets[:3] + [bytes(bad)]
    for c in [c for p in rx for c in pdu_cells(rx_vc, p)]:
        tb.source.send_nowait(c)
    await tb.collect(len(rx), len(packets), timeout_cycles=tb.cells_cycles(cells) + SETTLE_CYCLES)
    got = tb.received[rx_vc]
    for pdu, p in zip(got, rx):
        c = pdu.completion
        assert c.errors == CqError(0) and c.length == len(p), c
        ok = _ones(c.csum.to_bytes(2, "big") + _pseudo(p).to_bytes(2, "big")) == 0xFFFF
        assert ok == (p is not rx[-1]), (c, ok)
        swapped = bytearray(p + bytes(len(p) % 2))
        for o in range(_L4, len(swapped), 2):
            swapped[o:o + 2] = swapped[o:o + 2][::-1]
        assert pdu.data == bytes(swapped[:len(p)]), "halfword swap from _L4 (pad: zeros)"
    tb.finish()
