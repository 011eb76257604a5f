"""The AN2 card's RTL (hw/an2/gateware.py) in Amaranth's simulator, against docs/an2_card.md.

:class:`Rtl` puts :class:`hw.an2.gateware.An2Card` in a testbench with a Python host memory
that answers its DMA bursts with the cycle contract of :mod:`hw.an2.timing` (a burst raised at
edge ``s`` has its last word sampled at ``s + dma_burst_cycles(n) - 1``, so the card may raise
the next at ``s + dma_burst_cycles(n)``, the model's end edge; a refusal is sampled at ``s +
DMA_ERR_CYCLES``), page owners it checks against the burst's ``owner`` tag, a cell source
on the ``rx_*`` pins and a sink on the ``tx_*`` pins. tests/hw/test_an2_equivalence.py uses it
too.
"""
from __future__ import annotations

import random
import re
from collections import deque

import pytest
from amaranth.sim import Simulator

from hw.an2.gateware import An2Card
from hw.an2.registers import (MAX_PDU, NO_INDEX, RESET, Completion, Control, Counter, CqError,
                              CqKind, Irq, Link, Reg, RxDescriptor, TxDescriptor, VcEntry,
                              pool_reg)
from hw.an2.timing import DMA_ERR_CYCLES, dma_burst_cycles
from sim.bindings.amaranth import add_clock
from sim.media.aal5 import segment
from sim.media.atm import Cell
from sim.time import Clock

P = 80_000
CLOCK = Clock(P, "an2")
MEM = 1 << 20
PAGE = 4096
CQ, TXR, POOL0 = 0x1000, 0x2000, 0x3000
RING = 64
TXBUF, RXBUF = 0x10000, 0x60000
BUFSIZE = 2048


def cell_words(cell: Cell) -> list[int]:
    """The 13 words of ``cell`` on the cell interface (header without HEC, network order)."""
    raw = cell.header4() + cell.payload
    return [int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(13)]


def words_cell(words: list[int]) -> Cell:
    """Inverse of :func:`cell_words`."""
    raw = b"".join(w.to_bytes(4, "big") for w in words)
    h = int.from_bytes(raw[:4], "big")
    return Cell(vpi=(h >> 20) & 0xFF, vci=(h >> 4) & 0xFFFF, pt=(h >> 1) & 7, clp=h & 1,
                payload=raw[4:])


class Rtl:
    """The card in Amaranth's simulator with host memory, cell source and sink (see above).

    Attributes
    ----------
    mem : bytearray
    owners : dict page -> owner tag (pages not in it are open to every owner)
    edge : the last edge (0 is the rising edge at time 0)
    cells_out : list of (edge at which ``tx_soc`` was registered, Cell)
    bursts : list of (start edge, write, addr, count, owner, end edge or None if refused)
    irq_edges : list of (edge, level) at each change of ``irq``
    """

    def __init__(self) -> None:
        self.dut = An2Card()
        self.mem = bytearray(MEM)
        self.owners: dict[int, int] = {}
        self.edge = -1
        self.cells_out: list[tuple[int, Cell]] = []
        self.rx: deque = deque()          # (commit edge, words)
        self.bursts: list = []
        self.irq_edges: list = [(0, 0)]
        self.ctx = None
        self._burst = None
        self._gap = False
        self._cell = None

    # -- the simulation ------------------------------------------------------------------------
    def run(self, host) -> None:
        """Run ``host(self)`` (an async function using :meth:`write`, :meth:`read`,
        :meth:`wait`) with the device side in the background."""
        sim = Simulator(self.dut)
        add_clock(sim, CLOCK)

        async def device(ctx):
            self.ctx = ctx
            while True:
                await ctx.tick()
                self.edge += 1
                self._step(ctx)

        async def script(ctx):
            self.ctx = ctx
            await ctx.tick()        # edge 0
            await host(self)

        sim.add_testbench(device, background=True)
        sim.add_testbench(script)
        sim.run()

    def _step(self, ctx) -> None:
        d, k = self.dut, self.edge
        # irq
        level = ctx.get(d.irq)
        if level != self.irq_edges[-1][1]:
            self.irq_edges.append((k, level))
        # cells out
        if ctx.get(d.tx_valid):
            w = ctx.get(d.tx_data)
            if ctx.get(d.tx_soc):
                self._cell = (k, [w])
            elif self._cell is not None:
                self._cell[1].append(w)
                if len(self._cell[1]) == 13:
                    self.cells_out.append((self._cell[0], words_cell(self._cell[1])))
                    self._cell = None
        # cells in: word i of a cell committed at E in the cycle before edge E - 12 + i
        valid = soc = 0
        data = 0
        if self.rx:
            e, words = self.rx[0]
            i = k - (e - 13)
            if 0 <= i < 13:
                valid, soc, data = 1, int(i == 0), words[i]
                if i == 12:
                    self.rx.popleft()
        ctx.set(d.rx_valid, valid)
        ctx.set(d.rx_soc, soc)
        ctx.set(d.rx_data, data)
        self._dma(ctx, k)

    def _dma(self, ctx, k: int) -> None:
        bus = self.dut.dma
        ctx.set(bus.ack, 0)
        ctx.set(bus.err, 0)
        b = self._burst
        if b is None:
            if self._gap:
                self._gap = False           # the bus ignores req in the cycle after a burst
                return
            if not ctx.get(bus.req):
                return
            write, addr, count, owner = (ctx.get(bus.write), ctx.get(bus.addr),
                                         ctx.get(bus.count), ctx.get(bus.owner))
            ok = all(owner == 0 or self.owners.get(p, owner) == owner
                     for p in range(addr // PAGE, (addr + 4 * count - 1) // PAGE + 1))
            last = k + dma_burst_cycles(count, write=bool(write)) - 1
            b = self._burst = {"start": k, "write": write, "addr": addr, "count": count,
                               "owner": owner, "ok": ok, "last": last, "i": 0}
            self.bursts.append([k, write, addr, count, owner, None])
        if not ctx.get(bus.req):            # abandoned (Control.Reset)
            self._burst = None
            return
        if not b["ok"]:
            if k == b["start"] + DMA_ERR_CYCLES - 1:
                ctx.set(bus.err, 1)
                self._burst = None
                self._gap = True
            return
        first = b["last"] - b["count"]      # the cycle after this edge carries word 0
        i = k - first
        if 0 <= i < b["count"]:
            a = b["addr"] + 4 * i
            ctx.set(bus.ack, 1)
            if b["write"]:
                self.mem[a:a + 4] = ctx.get(bus.w_data).to_bytes(4, "little")
            else:
                ctx.set(bus.r_data, int.from_bytes(self.mem[a:a + 4], "little"))
            if i == b["count"] - 1:
                self.bursts[-1][5] = b["last"] + 1
                self._burst = None
                self._gap = True

    # -- host side (awaited from the script) ----------------------------------------------------
    async def wait(self, cycles: int) -> None:
        for _ in range(cycles):
            await self.ctx.tick()

    async def access(self, off: int, value: int | None) -> int:
        """One register access from this cycle: ``value`` None reads. The access completes
        (and this returns) at the edge after ``ack``, as hw.bus.HostBus says."""
        ctx, bus = self.ctx, self.dut.bus
        ctx.set(bus.addr, int(off) >> 2)
        if value is None:
            ctx.set(bus.r_en, 1)
        else:
            ctx.set(bus.w_en, 1)
            ctx.set(bus.w_data, int(value))
        while True:
            await ctx.tick()
            if ctx.get(bus.ack):
                break
        got = ctx.get(bus.r_data)
        ctx.set(bus.r_en, 0)
        ctx.set(bus.w_en, 0)
        await ctx.tick()
        return got

    async def write(self, off, value) -> None:
        await self.access(off, value)

    async def read(self, off) -> int:
        return await self.access(off, None)

    def inject(self, commit_edge: int, cell: Cell) -> None:
        """Drive ``cell`` so that its last word is sampled at ``commit_edge``."""
        if self.rx and commit_edge < self.rx[-1][0] + 13:
            raise ValueError("cells on the pins may not overlap")
        self.rx.append((commit_edge, cell_words(cell)))


class Host:
    """Driver-like helpers over a card (RTL or model): rings, buffers, PDUs."""

    def __init__(self, card, mem) -> None:
        self.card, self.mem = card, mem
        self.tx_next = 0
        self.tx_buf = TXBUF
        self.rx_posted = 0

    async def setup(self, vcs: dict, *, buffers: int = 32, control: int = 0,
                    bufsize: int = BUFSIZE, aal5: int = 1) -> None:
        c = self.card
        for reg, val in ((Reg.CqBase, CQ), (Reg.CqSize, RING), (Reg.TxBase, TXR),
                         (Reg.TxSize, RING), (pool_reg(Reg.PoolBase, 0), POOL0),
                         (pool_reg(Reg.PoolSize, 0), RING), (Reg.IrqEnable, Irq.Completion)):
            await c.write(reg, val)
        for vci, owner in vcs.items():
            await c.write(Reg.VcIndex, vci)
            await c.write(Reg.VcEntry, VcEntry(enable=1, aal5=aal5, owner=owner).to_int())
        self.post(buffers, bufsize=bufsize)
        await c.write(pool_reg(Reg.PoolProducer, 0), self.rx_posted % RING)
        await c.write(Reg.Control, Control.TxEnable | Control.RxEnable | control)

    def post(self, n: int, *, bufsize: int = BUFSIZE) -> None:
        for _ in range(n):
            i = self.rx_posted
            self.mem[POOL0 + 16 * i:POOL0 + 16 * i + 16] = RxDescriptor(
                addr=RXBUF + BUFSIZE * i, size=bufsize, own=1, tag=1000 + i).pack()
            self.rx_posted += 1

    def queue(self, vci: int, payload: bytes, cuts=(), tag: int = 0, align: int = 3,
              csum: tuple[int, int] | None = None) -> None:
        """``payload`` in descriptors split at ``cuts``, buffers at byte offset ``align``; with
        ``csum`` = (csum_start, csum_field) the first descriptor asks for the checksum."""
        edges = [0, *sorted(cuts), len(payload)]
        for j in range(len(edges) - 1):
            part = payload[edges[j]:edges[j + 1]]
            a = self.tx_buf + align
            self.mem[a:a + len(part)] = part
            self.tx_buf += (len(part) + 16) & ~7
            pipe = {} if csum is None or j else dict(csum=1, csum_start=csum[0],
                                                     csum_field=csum[1])
            d = TxDescriptor(addr=a, length=len(part), vci=vci, first=int(j == 0),
                             last=int(j == len(edges) - 2), own=1, tag=tag, **pipe)
            self.mem[TXR + 16 * self.tx_next:TXR + 16 * self.tx_next + 16] = d.pack()
            self.tx_next = (self.tx_next + 1) % RING

    async def doorbell(self) -> None:
        await self.card.write(Reg.TxProducer, self.tx_next)

    def completions(self) -> list[Completion]:
        out = []
        for i in range(RING):
            raw = bytes(self.mem[CQ + 16 * i:CQ + 16 * i + 16])
            if raw[0] & 3:
                out.append(Completion.unpack(raw))
        return out

    def received(self) -> list[tuple[Completion, bytes]]:
        """Rx completions with the bytes their buffers hold (First .. Last)."""
        out = []
        for c in self.completions():
            if c.kind != CqKind.Rx:
                continue
            descs, pos = [], c.index
            while c.index != NO_INDEX:
                d = RxDescriptor.unpack(bytes(self.mem[POOL0 + 16 * pos:POOL0 + 16 * pos + 16]))
                if d.vci == c.vci and not d.own:
                    descs.insert(0, d)
                    if d.first:
                        break
                pos = (pos - 1) % RING
            out.append((c, b"".join(bytes(self.mem[d.addr:d.addr + d.length]) for d in descs)))
        return out


# --- tests ------------------------------------------------------------------------------------
#: A Yosys ``always @*`` with no trigger line whose one statement assigns a literal: Yosys
#: writes the bits of a process-driven signal that no statement drives (they keep their initial
#: value) this way; an event-driven simulator (Icarus) never runs it, so they are X there.
_CONST_ONLY_ALWAYS = re.compile(r"always @\*\n\s*([^\n;]+?) = \d+'[hdb][0-9a-fA-F_]+;\n")


def constant_only_always_blocks(verilog_text: str) -> list[str]:
    """The left-hand sides of constant-only ``always @*`` statements in Yosys's Verilog."""
    return _CONST_ONLY_ALWAYS.findall(verilog_text)


def test_constant_only_always_pattern_is_found():
    """The check below finds the pattern: a struct signal set in a branch, one field never."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal
    from amaranth.lib import data
    m = Module()
    sel = Signal()
    s = Signal(data.StructLayout({"a": 4, "b": 4}))
    with m.If(sel):
        m.d.comb += s.a.eq(3)
    out = Signal(8)
    m.d.comb += out.eq(s)
    text = verilog.convert(m, ports=[sel, out], name="probe")
    found = constant_only_always_blocks(text)       # s or out: Yosys may merge them
    assert len(found) == 1 and found[0].endswith("[7:4]"), found


def test_converts_to_verilog():
    from amaranth.back import verilog
    text = verilog.convert(An2Card(), name="an2_card")
    assert "module an2_card" in text
    for port in ("bus__addr", "dma__owner", "dma__err", "tx_soc", "rx_data", "link_status"):
        assert port in text
    # No bit of the card is X on Icarus for want of a statement driving it.
    assert constant_only_always_blocks(text) == []


def test_register_reset_values_and_access():
    rtl = Rtl()
    seen = {}

    async def host(r):
        for reg, value in RESET.items():
            seen[reg] = await r.read(reg)
        seen["link"] = await r.read(Reg.LinkStatus)
        await r.write(Reg.TxSize, 3)            # not a power of two: ignored
        seen["size3"] = await r.read(Reg.TxSize)
        await r.write(Reg.TxSize, 64)
        seen["size64"] = await r.read(Reg.TxSize)
        await r.write(Reg.TxBase, 0x12345)      # 16-byte aligned
        seen["base"] = await r.read(Reg.TxBase)
        await r.write(Reg.TxProducer, 70)       # modulo the size
        seen["prod"] = await r.read(Reg.TxProducer)
        await r.write(Reg.Control, Control.Loopback)
        seen["link_lb"] = await r.read(Reg.LinkStatus)
        await r.write(Reg.VcIndex, 1030)
        seen["vcindex"] = await r.read(Reg.VcIndex)
        await r.write(Reg.VcEntry, 0xFFFF_FFFF)
        seen["vcentry"] = await r.read(Reg.VcEntry)
        await r.write(Reg.CoalesceCount, 0x1FF)
        seen["ccount"] = await r.read(Reg.CoalesceCount)
        seen["undecoded"] = await r.read(0x28)
        await r.write(Reg.Control, Control.Reset)
        seen["during_reset"] = await r.read(Reg.Control)
        await r.wait(1030)
        seen["after_reset"] = await r.read(Reg.Control)
        seen["vcentry_after"] = await r.read(Reg.VcEntry)
        seen["size_after"] = await r.read(Reg.TxSize)

    rtl.run(host)
    for reg, value in RESET.items():
        assert seen[reg] == value, reg
    assert seen["link"] == 0
    assert seen["size3"] == 2 and seen["size64"] == 64
    assert seen["base"] == 0x12340
    assert seen["prod"] == 70 % 64
    assert seen["link_lb"] == Link.Signal | Link.FrameLock | Link.CellLock
    assert seen["vcindex"] == 1030 % 1024
    # state (5:4) reads Idle, the reserved rx_swap 3 was stored as NoSwap, reserved bits 0
    assert seen["vcentry"] == 0xFF0F | 1 << 16 | 0xFF << 19 == 0x07F9_FF0F
    assert seen["ccount"] == 0xFF
    assert seen["undecoded"] == 0
    assert seen["during_reset"] == Control.Reset
    assert seen["after_reset"] == 0
    assert seen["vcentry_after"] == 0
    assert seen["size_after"] == 2


def _loopback(payloads, *, seed=1, vci=5, aal5=1):
    rtl = Rtl()
    host = Host(rtl, rtl.mem)
    rnd = random.Random(seed)
    counters = {}

    async def script(r):
        await host.setup({vci: 0}, control=Control.Loopback, aal5=aal5)
        for i, p in enumerate(payloads):
            cuts = sorted({rnd.randrange(len(p) + 1) for _ in range(rnd.randrange(4))})
            host.queue(vci, p, cuts=cuts, tag=100 + i, align=rnd.randrange(4))
        await host.doorbell()
        total = sum(-(-(len(p) + 8) // 48) for p in payloads)
        await r.wait(40 * total + 300 * len(payloads) + 200)
        for c in Counter:
            counters[c] = await r.read(c.offset)

    rtl.run(script)
    return rtl, host, counters


def test_loopback_pdus_of_many_sizes_with_gather():
    sizes = [0, 1, 3, 39, 40, 41, 47, 48, 49, 88, 95, 96, 100, 257]
    rnd = random.Random(7)
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in sizes]
    rtl, host, counters = _loopback(payloads)
    tx = [c for c in host.completions() if c.kind == CqKind.Tx]
    assert [c.tag for c in tx] == [100 + i for i in range(len(sizes))]
    assert all(c.errors == 0 for c in tx)
    assert [c.length for c in tx] == sizes
    assert [c.cells for c in tx] == [-(-(n + 8) // 48) for n in sizes]
    got = host.received()
    assert [c.errors for c, _ in got] == [0] * len(sizes)
    assert [data for _, data in got] == payloads
    assert [c.length for c, _ in got] == sizes
    assert counters[Counter.PdusRx] == counters[Counter.PdusTx] == len(sizes)
    assert counters[Counter.CellsTx] == counters[Counter.CellsRx] == sum(c.cells for c in tx)
    assert all(counters[c] == 0 for c in (Counter.CrcErrors, Counter.LostCells,
                                          Counter.NoBuffer, Counter.DmaFaults))
    # One cell per slot, each in a slot of its own.
    assert rtl.cells_out == []          # loopback: nothing on the pins


def test_transmit_cells_on_the_pins_follow_aal5():
    rnd = random.Random(3)
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in (100, 41, 0)]
    rtl = Rtl()
    host = Host(rtl, rtl.mem)

    async def script(r):
        await host.setup({9: 0})
        for i, p in enumerate(payloads):
            host.queue(9, p, cuts=(len(p) // 2,), tag=i, align=i)
        await host.doorbell()
        await r.wait(600)

    rtl.run(script)
    cells = [c for _, c in rtl.cells_out]
    expect = [(9, int(i == len(seg) - 1), c) for p in payloads
              for seg in [segment(p)] for i, c in enumerate(seg)]
    assert [(c.vci, c.pt, c.payload) for c in cells] == expect
    # One cell per slot: header words at edges one before distinct slot edges.
    from hw.an2.timing import cell_slot_edge
    slot_edges = {cell_slot_edge(k) for k in range(400)}
    assert all(e + 1 in slot_edges for e, _ in rtl.cells_out)
    assert len({e for e, _ in rtl.cells_out}) == len(cells)


def _cells(vci: int, payload: bytes, *, vpi: int = 0) -> list[Cell]:
    seg = segment(payload)
    return [Cell(vpi=vpi, vci=vci, payload=c, pt=int(i == len(seg) - 1)) for i, c in enumerate(seg)]


def _receive(cells, *, vcs, buffers=32, bufsize=BUFSIZE, owners=None, first=200, gap=36,
             cq_size=RING, tail=400):
    """Inject ``cells`` (committed ``gap`` cycles apart from edge ``first``) into a card set up
    with ``vcs``; returns (rtl, host, counters)."""
    rtl = Rtl()
    rtl.owners.update(owners or {})
    host = Host(rtl, rtl.mem)
    counters = {}

    async def script(r):
        await host.setup(vcs, buffers=buffers, bufsize=bufsize)
        if cq_size != RING:
            await r.write(Reg.Control, 0)
            await r.write(Reg.CqSize, cq_size)
            await r.write(Reg.Control, Control.TxEnable | Control.RxEnable)
        start = max(first, r.edge + 20)
        for i, c in enumerate(cells):
            r.inject(start + gap * i, c)
        await r.wait(start + gap * len(cells) + tail - r.edge)
        for c in Counter:
            counters[c] = await r.read(c.offset)

    rtl.run(script)
    return rtl, host, counters


def test_receive_interleaved_vcs_scatter_into_small_buffers():
    rnd = random.Random(11)
    pdus = {vci: [bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 5, 44, 60, 130))))
                  for _ in range(2)] for vci in (1, 2, 700)}
    queues = {vci: [c for p in ps for c in _cells(vci, p)] for vci, ps in pdus.items()}
    cells = []
    while any(queues.values()):
        vci = rnd.choice([v for v, q in queues.items() if q])
        cells.append(queues[vci].pop(0))
    rtl, host, counters = _receive(cells, vcs={1: 0, 2: 0, 700: 0}, buffers=60, bufsize=32)
    got = {}
    for c, data in host.received():
        assert c.errors == 0
        assert c.length == len(data)
        got.setdefault(c.vci, []).append(data)
    assert got == pdus
    assert counters[Counter.PdusRx] == 6 and counters[Counter.CellsRx] == len(cells)


def test_receive_errors_are_flagged_and_counted():
    rnd = random.Random(5)
    good = bytes(rnd.randrange(256) for _ in range(100))
    crc_bad = _cells(1, good)
    crc_bad[1] = Cell(vpi=0, vci=1, pt=0, payload=bytes([crc_bad[1].payload[0] ^ 1])
                      + crc_bad[1].payload[1:])
    lost = _cells(2, good)
    del lost[1]
    cells = [*crc_bad, *lost,
             Cell(vpi=0, vci=77, payload=bytes(48)),         # a disabled VC
             Cell(vpi=1, vci=1, payload=bytes(48)),          # VPI 1
             *_cells(3, good),                               # owner 6's buffers: refused
             *_cells(4, good)]                               # still good
    owners = {RXBUF // PAGE + p: 5 for p in range(16)}
    rtl, host, counters = _receive(cells, vcs={1: 0, 2: 0, 3: 6, 4: 0}, owners=owners)
    by_vci = {c.vci: (c, data) for c, data in host.received()}
    assert by_vci[1][0].errors == CqError.CrcError
    assert by_vci[2][0].errors == CqError.LostCell
    assert by_vci[3][0].errors == CqError.DmaFault
    assert by_vci[4] == (by_vci[4][0], good) and by_vci[4][0].errors == 0
    assert counters[Counter.CrcErrors] == 1
    assert counters[Counter.LostCells] == 1
    assert counters[Counter.UnknownVc] == 2
    assert counters[Counter.DmaFaults] == 1
    assert counters[Counter.PdusRx] == 1


def test_receive_no_buffer_and_a_full_completion_queue():
    rnd = random.Random(6)
    p = bytes(rnd.randrange(256) for _ in range(60))
    cells = [*_cells(1, p), *_cells(1, p), *_cells(1, p)]
    # One buffer: the first PDU is delivered, the second finds none (a completion with
    # NO_INDEX); a queue of 2 holds one entry, so the third is dropped without one.
    rtl, host, counters = _receive(cells, vcs={1: 0}, buffers=1)
    got = host.received()
    assert got[0][1] == p and got[0][0].errors == 0
    assert got[1][0].errors == CqError.NoBuffer and got[1][0].index == NO_INDEX
    assert counters[Counter.NoBuffer] == 2
    rtl, host, counters = _receive(cells, vcs={1: 0}, buffers=8, cq_size=2)
    assert len(host.completions()) == 1
    assert counters[Counter.NoBuffer] == 2 and counters[Counter.PdusRx] == 1


def test_transmit_errors_complete_flagged():
    rtl = Rtl()
    rtl.owners.update({(TXBUF + 0x4000) // PAGE: 9})
    host = Host(rtl, rtl.mem)

    # VC 6 is disabled (BadVc); then three descriptors of 30000 bytes (Oversize, nothing is
    # read); then a buffer in owner 9's page for a VC of owner 3 (DmaFault).
    async def script2(r):
        await host.setup({5: 3}, control=Control.Loopback)
        host.queue(6, b"x" * 10, tag=1)
        for j in range(3):
            d = TxDescriptor(addr=TXBUF, length=30000, vci=5, first=int(j == 0),
                             last=int(j == 2), own=1, tag=2)
            rtl.mem[TXR + 16 * host.tx_next:TXR + 16 * host.tx_next + 16] = d.pack()
            host.tx_next += 1
        host.tx_buf = TXBUF + 0x4000                            # owner 9's page
        host.queue(5, b"z" * 100, tag=3, align=0)
        await host.doorbell()
        await r.wait(800)

    rtl.run(script2)
    tx = [c for c in host.completions() if c.kind == CqKind.Tx]
    assert [(c.tag, c.errors) for c in tx] == [(1, CqError.BadVc), (2, CqError.Oversize),
                                               (3, CqError.DmaFault)]
    assert tx[0].length == 0 and tx[1].length == 0
    descs = [TxDescriptor.unpack(bytes(rtl.mem[TXR + 16 * i:TXR + 16 * i + 16])) for i in range(5)]
    assert [d.own for d in descs] == [0] * 5
    assert descs[0].bad_vc and descs[4].dma_fault and not descs[1].dma_fault


@pytest.mark.slow
def test_builds_and_runs_under_verilator():
    """Verilated (about 2 minutes the first time, cached under build/hdl/an2_card_gw): the
    register window answers with its wait states."""
    from sim.bindings.verilator import build
    m = build(lambda: An2Card(), "an2_card", design="an2_card_gw")

    def access(word, value=None):
        m.set("bus__addr", word)
        m.set("bus__w_data", value or 0)
        m.set("bus__w_en" if value is not None else "bus__r_en", 1)
        e0 = m.next_edge
        while True:
            m.run(m.next_edge)
            if m.get("bus__ack"):
                break
        acked = m.next_edge - 1
        data = m.get("bus__r_data")
        m.set("bus__w_en", 0)
        m.set("bus__r_en", 0)
        m.run(m.next_edge)
        return acked - e0, data

    assert access(Reg.CoalesceCount.word) == (2, 1)
    access(Reg.CoalesceCount.word, 7)
    assert access(Reg.CoalesceCount.word) == (2, 7)
    assert access(Reg.TxSize.word)[1] == 2


def test_control_reset_mid_transfer_then_the_card_works_again():
    rnd = random.Random(21)
    big = bytes(rnd.randrange(256) for _ in range(600))
    small = bytes(rnd.randrange(256) for _ in range(70))
    rtl = Rtl()
    host = Host(rtl, rtl.mem)
    seen = {}

    async def script(r):
        await host.setup({5: 0}, control=Control.Loopback)
        host.queue(5, big, tag=1, align=1)
        await host.doorbell()
        await r.wait(150)                       # cells on their way
        await r.write(Reg.Control, Control.Reset)
        seen["status"] = await r.read(Reg.Status)
        await r.wait(1030)
        seen["vc"] = await r.read(Reg.VcEntry)
        rtl.mem[CQ:CQ + 16 * RING] = bytes(16 * RING)
        host.tx_next = host.rx_posted = 0
        await host.setup({5: 0}, control=Control.Loopback)
        host.queue(5, small, tag=2, align=2)
        await host.doorbell()
        await r.wait(500)
        seen["pdus"] = await r.read(Counter.PdusRx.offset)

    rtl.run(script)
    assert seen["status"] == 0 and seen["vc"] == 0
    got = host.received()
    assert [(c.errors, d) for c, d in got] == [(0, small)]
    assert seen["pdus"] == 1


@pytest.mark.slow
def test_receive_oversize_pdu():
    """More than MAX_PDU_CELLS cells without an end: Oversize, the rest discarded to the end
    of the PDU, then the next PDU is good (about 35,000 cycles)."""
    from hw.an2.registers import MAX_PDU_CELLS
    good = bytes(range(90))
    cells = [Cell(vpi=0, vci=1, payload=bytes(48))] * (MAX_PDU_CELLS + 3) + _cells(1, b"x")[-1:]
    cells += _cells(1, good)
    rtl, host, counters = _receive(cells, vcs={1: 0}, buffers=40, gap=24, tail=600)
    got = host.received()
    assert [c.errors for c, _ in got] == [CqError.Oversize, 0]
    assert got[0][0].length == MAX_PDU and got[0][0].cells == MAX_PDU_CELLS + 1
    assert got[1][1] == good
    assert counters[Counter.OversizePdus] == 1


def test_link_status_changes_raise_irq_link():
    rtl = Rtl()
    seen = {}

    async def script(r):
        await r.write(Reg.IrqEnable, Irq.Link)
        r.ctx.set(r.dut.link_status, int(Link.Signal | Link.FrameLock | Link.CellLock))
        await r.wait(3)
        seen["cause"] = await r.read(Reg.IrqCause)
        seen["link"] = await r.read(Reg.LinkStatus)
        seen["irq"] = r.ctx.get(r.dut.irq)
        await r.write(Reg.IrqCause, Irq.Link)
        seen["after"] = await r.read(Reg.IrqCause)

    rtl.run(script)
    assert seen["cause"] == Irq.Link and seen["link"] == 7 and seen["irq"] == 1
    assert seen["after"] == 0


def test_cells_beyond_the_receive_fifo_are_dropped():
    """One-cell PDUs back to back on the pins (a cell every 13 cycles, faster than a link):
    the engine needs about 35 cycles each, the FIFO holds RX_FIFO_CELLS, the rest are lost
    uncounted."""
    from hw.an2.rx_ingress import RX_FIFO_CELLS
    n = 2 * RX_FIFO_CELLS
    cells = [c for i in range(n) for c in _cells(1, bytes([i]) * 8)]
    rtl, host, counters = _receive(cells, vcs={1: 0}, buffers=RING - 1, gap=13, tail=1800)
    got = [d for c, d in host.received() if c.errors == 0]
    assert RX_FIFO_CELLS < len(got) < n
    assert counters[Counter.CellsRx] == len(got) == counters[Counter.PdusRx]
    assert all(d in [bytes([i]) * 8 for i in range(n)] for d in got)


def test_a_doorbell_as_the_engine_stops_is_not_lost():
    """TxProducer written at edges around the one where the transmit engine, done with a PDU,
    finds nothing more posted and stops: the second PDU is sent every time."""
    def run(bell_at):
        rtl = Rtl()
        host = Host(rtl, rtl.mem)

        async def script(r):
            await host.setup({5: 0})
            host.queue(5, b"a" * 20, tag=1, align=0)
            await host.doorbell()
            host.queue(5, b"b" * 20, tag=2, align=0)
            if bell_at is not None:
                await r.wait(bell_at - 3 - r.edge)     # the write takes effect at bell_at
                await host.doorbell()
            await r.wait(400)

        rtl.run(script)
        return rtl, host

    rtl, _ = run(None)
    cq_end = [e for s, w, a, _, _, e in rtl.bursts if w and CQ <= a < CQ + 16 * RING][0]
    stop = cq_end + 2                   # CqProducer advances; the engine looks for more
    for bell in (stop - 1, stop, stop + 1):
        rtl, host = run(bell)
        assert [c.tag for c in host.completions() if c.kind == CqKind.Tx] == [1, 2], bell
