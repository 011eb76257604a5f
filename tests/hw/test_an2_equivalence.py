"""The AN2 card's model (hw/an2/model.py) and RTL (hw/an2/gateware.py) on the same stimulus.

The same host script (register accesses at the same edges, descriptors and buffers written
untimed) runs on :class:`hw.an2.model.An2Model` (with :class:`sim.memory.Memory` and an
:class:`sim.media.atm.AtmLink` whose other end the test drives) and on
:class:`hw.an2.gateware.An2Card` in Amaranth's simulator (tests/hw/test_an2_gateware.py's
:class:`Rtl`, whose memory answers bursts with the same cycle contract). The received cells
are those the link delivers to the model, put on the RTL's pins so that each one's last word
is sampled at the edge the model takes it at. Compared: memory (rings, completion queue,
delivered bytes), counters, every DMA burst's start and end edge, irq edges, and the slot of
every transmitted cell.

Every case compares timing too: the model has the RTL's one DMA port (both engines and the
completion writer at once, a refused burst), its whole-word reads of unaligned transmit
buffers, its receive engine's VC lookups after a cell that needs no DMA and its order for a VC
disabled with cells queued, and Control.Reset's length (docs/an2_card.md, "Timing contract").
"""
from __future__ import annotations

import random

import pytest

from hw.an2.model import An2Model
from hw.an2.registers import Counter, CqError, VcEntry
from hw.an2.timing import BUS_WAIT_CYCLES, RESET_CYCLES, cell_slot_edge
from sim.bus import IrqLine
from sim.kernel import Kernel
from sim.media.aal5 import segment
from sim.media.atm import AtmLink, Cell, first_slot_at, slot_start
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE
from sim.time import Clock

from test_an2_gateware import CQ, MEM, POOL0, RING, TXR, Host, P, Rtl

CLOCK = Clock(P, "an2")


class _LoggedMemory(Memory):
    """Host memory that logs each DMA burst as (start edge, write, word address, end edge):
    the model calls the memory DMA_SETUP_CYCLES after the burst's start."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.log: list[tuple[int, int, int, int]] = []

    async def dma_read(self, addr, n, requester=None):
        s = self.kernel.now // P - 2
        out = await super().dma_read(addr, n, requester)
        self.log.append((s, 0, addr & ~3, -(-self.kernel.now // P)))
        return out

    async def dma_write(self, addr, data, requester=None):
        s = self.kernel.now // P - 2
        await super().dma_write(addr, data, requester)
        self.log.append((s, 1, addr & ~3, -(-self.kernel.now // P)))


class _ModelCard:
    """The model with the same host-side interface as :class:`Rtl`."""

    def __init__(self, k: Kernel, end) -> None:
        self.k = k
        self.memory = _LoggedMemory(k, MEM, profile=PROFILE, name="mem")
        self.mem = self.memory.data
        self.irq = IrqLine(k, "an2")
        self.irq_edges = [(0, 0)]
        self.irq.on_change(lambda level: self.irq_edges.append((k.now // P, level)))
        # The reference path: every burst through Memory.dma_read / dma_write, which the log
        # sees (the fast path has the same results by construction, tests/hw/test_an2_model.py).
        self.m = An2Model(k, CLOCK, memory=self.memory, irq=self.irq, link=end, reference=True)

    async def write(self, off, value) -> None:
        await self.m.write(int(off), int(value))

    async def read(self, off) -> int:
        return await self.m.read(int(off))

    @property
    def edge(self) -> int:
        return self.k.now // P

    async def wait(self, cycles: int) -> None:
        await self.k.sleep_until(self.k.now + cycles * P)


def _cells(vci, payload):
    seg = segment(payload)
    return [Cell(vpi=0, vci=vci, payload=s, pt=int(i == len(seg) - 1)) for i, s in enumerate(seg)]


def run_both(script, rx_cells=(), *, send_slot=20, end_edge=3000, owners=None):
    """Run ``script(card, host)`` on the model and the RTL; ``rx_cells`` are sent to the card
    one per slot from slot ``send_slot``. Returns the two (card, host) pairs and the model's
    transmitted slots."""
    k = Kernel()
    link = AtmLink(k)
    model = _ModelCard(k, link.b)
    for page, owner in (owners or {}).items():
        model.memory.set_owner(page, owner)
    out_model = []
    # A cell sent in slot n arrives at the end of the slot plus the propagation delay.
    link.a.attach(lambda cell: out_model.append(
        (first_slot_at(k.now - link.propagation_ps) - 1, cell)))
    arrivals = []
    for i, c in enumerate(rx_cells):
        k.call_at(slot_start(send_slot + i), lambda c=c: arrivals.append(link.a.send(c)))
    mhost = Host(model, model.mem)

    mcount = {}

    async def mscript():
        await script(model, mhost)
        await k.sleep_until(end_edge * P)
        for c in Counter:
            mcount[c] = await model.read(c.offset)
    task = k.spawn(mscript())
    k.run(until=(end_edge + 4 * len(Counter)) * P)     # where the RTL's script ends too
    assert task.done and task.exception is None, task.exception

    rtl = Rtl()
    rtl.owners.update(owners or {})
    rhost = Host(rtl, rtl.mem)
    for t, c in zip(arrivals, rx_cells):
        rtl.inject(-(-t // P), c)
    rcount = {}

    async def rscript(r):
        await script(r, rhost)
        await r.wait(end_edge - r.edge)
        for c in Counter:
            rcount[c] = await r.read(c.offset)
    rtl.run(rscript)
    return model, mhost, mcount, out_model, rtl, rhost, rcount


def compare(model, mhost, mcount, out_model, rtl, rhost, rcount, *, rx_bufs=(), timing=True,
            reset_at=None):
    """Require the same counters, completions and memory, and with ``timing`` the same DMA
    bursts (start and end edges) and irq edges. With ``reset_at`` (the edge of a
    Control.Reset), a burst in flight at that edge is left out: the RTL cuts it at the next
    edge (the harness logs no end), the model completes it (docs/an2_card.md, "Where the RTL
    differs from the model")."""
    assert rcount == mcount
    assert rhost.completions() == mhost.completions()
    for base, size in ((CQ, 16 * RING), (TXR, 16 * RING), (POOL0, 16 * RING), *rx_bufs):
        assert bytes(rtl.mem[base:base + size]) == bytes(model.mem[base:base + size]), hex(base)
    if timing:
        rb = [(s, w, a, e) for s, w, a, _, _, e in rtl.bursts if e is not None]
        mb = [(s, w, a, e) for s, w, a, e in model.memory.log
              if reset_at is None or not s <= reset_at < e]
        assert rb == mb
        assert rtl.irq_edges == model.irq_edges


def test_one_transmit_pdu_and_one_receive_pdu():
    rnd = random.Random(1)
    payload = bytes(rnd.randrange(256) for _ in range(100))
    rx = _cells(5, bytes(rnd.randrange(256) for _ in range(60)))

    async def script(card, host):
        await host.setup({5: 0}, buffers=4)
        host.queue(5, payload, cuts=(36,), tag=7, align=0)
        await host.doorbell()

    res = run_both(script, rx)
    compare(*res, rx_bufs=((0x60000, 4 * 2048),))
    _, _, _, out_model, rtl, _, _ = res
    assert [(_slot_of(e), c) for e, c in rtl.cells_out] == out_model
    assert len(out_model) == 3


def _slot_of(soc_edge: int) -> int:
    """The slot whose first edge follows the RTL's header word (docs/an2_card.md, "Pins")."""
    k = first_slot_at((soc_edge + 1) * P) - 1
    while cell_slot_edge(k) < soc_edge + 1:
        k += 1
    assert cell_slot_edge(k) == soc_edge + 1, soc_edge
    return k


def _random_rx(rnd: random.Random, vcis, n_pdus: int):
    """Interleaved cells of random PDUs on ``vcis``, some corrupted, lost or unknown."""
    queues = {v: [] for v in vcis}
    for _ in range(n_pdus):
        v = rnd.choice(vcis)
        cells = _cells(v, bytes(rnd.randrange(256) for _ in range(rnd.choice(
            (0, 1, 20, 40, 41, 47, 48, 90, 96, 150)))))
        fault = rnd.random()
        if fault < 0.1 and len(cells) > 1:
            del cells[0]                                            # lost cell
        elif fault < 0.2:
            c = cells[-1]
            cells[-1] = Cell(vpi=0, vci=v, pt=c.pt, payload=bytes([c.payload[0] ^ 0x80])
                             + c.payload[1:])                      # CRC error
        queues[v] += cells
    out = []
    while any(queues.values()):
        v = rnd.choice([v for v, q in queues.items() if q])
        out.append(queues[v].pop(0))
        if rnd.random() < 0.05:
            out.append(Cell(vpi=0, vci=99, payload=bytes(48)))      # unknown VC
    return out


@pytest.mark.parametrize("seed", [1, 9] + [pytest.param(s, marks=pytest.mark.slow)
                                         for s in range(10, 40)])
def test_random_receive(seed):
    rnd = random.Random(seed)
    vcis = [1, 2, 3]
    bufsize = rnd.choice((48, 64, 256))
    rx = _random_rx(rnd, vcis, 8)

    async def script(card, host):
        await host.setup({v: 0 for v in vcis}, buffers=40, bufsize=bufsize)
        await card.write(0x10, 2)               # CoalesceCount
        await card.write(0x14, 150)             # CoalesceTime
        while card.edge < 2000:
            await card.wait(97)
            await card.write(0x08, 0xF)         # IrqCause: clear all

    res = run_both(script, rx, end_edge=2000 + 40 * len(rx))
    compare(*res, rx_bufs=((0x60000, 40 * 2048),))


@pytest.mark.parametrize("seed", [1, 2] + [pytest.param(s, marks=pytest.mark.slow)
                                         for s in range(10, 40)])
def test_random_transmit(seed):
    rnd = random.Random(seed)
    sizes = [rnd.choice((0, 4, 40, 44, 47, 48, 52, 96, 101, 200, 400)) for _ in range(6)]
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in sizes]
    # Pieces at any byte, buffers at any alignment: the RTL reads every word they touch.
    cuts = [sorted({rnd.randrange(n + 1) for _ in range(rnd.randrange(3))}) for n in sizes]
    aligns = [rnd.randrange(4) for _ in sizes]

    async def script(card, host):
        await host.setup({5: 0, 6: 0}, buffers=4)
        for i, p in enumerate(payloads):
            host.queue(5 + i % 2, p, cuts=cuts[i], tag=i, align=aligns[i])
        await host.doorbell()

    res = run_both(script, end_edge=600 + 60 * sum(-(-(n + 8) // 48) for n in sizes))
    compare(*res)
    _, _, _, out_model, rtl, _, _ = res
    assert [(_slot_of(e), c) for e, c in rtl.cells_out] == out_model


def test_disabling_a_reassembling_vc_returns_its_buffers():
    rnd = random.Random(4)
    rx = _cells(3, bytes(rnd.randrange(256) for _ in range(150)))[:2]     # no end of PDU

    async def script(card, host):
        await host.setup({3: 0}, buffers=4)
        while card.edge < 900:
            await card.wait(10)
        await card.write(0x1C, 3)               # VcIndex
        await card.write(0x20, 0)               # VcEntry: disabled

    res = run_both(script, rx, end_edge=1400)
    compare(*res, rx_bufs=((0x60000, 4 * 2048),))
    (c,) = res[5].completions()
    assert c.errors == CqError.LostCell and c.length == 96 and c.cells == 2


def test_a_full_completion_queue_waits_for_the_host():
    rnd = random.Random(8)
    rx = [c for n in (10, 60, 30, 5) for c in _cells(2, bytes(rnd.randrange(256) for _ in range(n)))]

    async def script(card, host):
        await host.setup({2: 0}, buffers=8)
        await card.write(0x00, 0)
        await card.write(0x44, 2)               # CqSize 2: one entry fits
        await card.write(0x0C, 0xF)             # IrqEnable: all
        await card.write(0x00, 0x6)             # TxEnable | RxEnable
        while card.edge < 1100:
            await card.wait(10)
        await card.write(0x4C, 1)               # CqConsumer: room for one more
        await card.write(0x08, 0xF)

    res = run_both(script, rx, end_edge=1600)
    compare(*res, rx_bufs=((0x60000, 8 * 2048),))
    assert res[2][Counter.NoBuffer] >= 1


def test_transmit_errors():
    async def script(card, host):
        await host.setup({5: 0}, buffers=2)
        host.queue(7, b"q" * 30, tag=1, align=0)                 # VC 7 disabled: BadVc
        host.queue(5, b"r" * 90000, cuts=(30000, 60000), tag=2, align=0)    # Oversize
        host.queue(5, b"t" * 52, tag=3, align=0)
        await host.doorbell()

    res = run_both(script, end_edge=1200)
    compare(*res)
    assert [c.errors for c in res[5].completions()] == [CqError.BadVc, CqError.Oversize, 0]


def test_loopback_and_refused_dma():
    """Both engines at once (loopback) and refused bursts: the RTL's one DMA port carries one
    burst at a time and idles a cycle after a refusal; the model's does the same."""
    rnd = random.Random(9)
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in (200, 40, 96, 0)]
    rx = _cells(3, bytes(rnd.randrange(256) for _ in range(70)))

    async def script(card, host):
        await host.setup({5: 0, 3: 4}, buffers=8, control=0x8)       # Loopback
        for i, p in enumerate(payloads):
            host.queue(5, p, tag=i, align=0)
        await host.doorbell()
        await card.wait(1000)
        await card.write(0x00, 0x6)                                   # Loopback off
        host.queue(3, b"u" * 60, tag=9, align=0)                      # owner 4's read refused
        await host.doorbell()

    def run(owners):
        return run_both(script, rx, send_slot=60, end_edge=3200, owners=owners)

    res = run({0x60000 // 4096 + p: 2 for p in range(16)} | {0x10000 // 4096 + p: 2
                                                          for p in range(4)})
    compare(*res, rx_bufs=((0x60000, 8 * 2048),))
    errors = sorted(int(c.errors) for c in res[5].completions())
    assert errors.count(int(CqError.DmaFault)) == 2            # the rx PDU and the tx PDU


@pytest.mark.parametrize("seed", [1, 2, 3] + [pytest.param(s, marks=pytest.mark.slow)
                                            for s in range(10, 40)])
def test_random_duplex(seed):
    """Both directions at line rate on unaligned, randomly cut transmit buffers, and received
    cells with unknown VCs, losses, CRC errors and a pool that runs dry: the engines contend
    for the one DMA port, cells queue, and cells that need no DMA are taken from the queue."""
    rnd = random.Random(seed)
    vcis = [1, 2, 3]
    rx = _random_rx(rnd, vcis, 10)
    sizes = [rnd.choice((0, 4, 40, 45, 48, 53, 96, 101, 200, 400)) for _ in range(6)]
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in sizes]
    cuts = [sorted({rnd.randrange(n + 1) for _ in range(rnd.randrange(3))}) for n in sizes]
    aligns = [rnd.randrange(4) for _ in sizes]
    buffers, bufsize = rnd.choice((6, 40)), rnd.choice((48, 64, 256))

    async def script(card, host):
        await host.setup({v: 0 for v in vcis} | {5: 0}, buffers=buffers, bufsize=bufsize)
        for i, p in enumerate(payloads):
            host.queue(5, p, cuts=cuts[i], tag=i, align=aligns[i])
        await host.doorbell()
        while card.edge < 1500:
            await card.wait(89)
            await card.write(0x08, 0xF)         # IrqCause: clear all

    res = run_both(script, rx, send_slot=10, end_edge=1800 + 40 * len(rx))
    compare(*res, rx_bufs=((0x60000, 40 * 2048),))
    _, _, _, out_model, rtl, _, _ = res
    assert [(_slot_of(e), c) for e, c in rtl.cells_out] == out_model


def test_disabling_a_vc_with_cells_queued():
    """VC 3 disabled while it reassembles and cells (its own and VC 2's) wait behind a
    transmit burst: its buffers go back before those cells are taken."""
    rnd = random.Random(5)
    a = _cells(3, bytes(rnd.randrange(256) for _ in range(300)))
    b = _cells(2, bytes(rnd.randrange(256) for _ in range(300)))
    rx = [c for pair in zip(a, b) for c in pair]
    tx = bytes(rnd.randrange(256) for _ in range(1000))

    async def script(card, host):
        await host.setup({2: 0, 3: 0}, buffers=8)
        host.queue(5, tx, tag=1, align=1)
        await card.write(0x1C, 3)               # VcIndex
        while card.edge < 380:
            await card.wait(1)
        await host.doorbell()                   # transmit bursts delay the receive engine
        while card.edge < 520:
            await card.wait(1)
        await card.write(0x20, 0)               # VcEntry: VC 3 disabled

    res = run_both(script, rx, send_slot=0, end_edge=1400)
    compare(*res, rx_bufs=((0x60000, 8 * 2048),))
    assert any(c.errors == CqError.LostCell and c.vci == 3 for c in res[5].completions())


def test_reset_reads_for_its_length_and_refuses_control_writes():
    """Control.Reset: Control reads Reset and refuses writes until RESET_CYCLES + 1 edges
    after the write; the card works again after."""
    rx = _cells(2, bytes(range(100)))
    seen = {}

    async def script(card, host):
        await host.setup({2: 0}, buffers=4)
        await card.write(0x00, 0x1)             # Control.Reset
        e = card.edge
        await card.wait(RESET_CYCLES - 12)
        reads = []
        while card.edge < e + RESET_CYCLES + 12:
            value = await card.read(0x00)
            reads.append((card.edge - e, value))
            await card.write(0x00, 0x6)         # refused while Reset reads
        seen[card.__class__.__name__] = reads
        host.rx_posted = 0
        await host.setup({2: 0}, buffers=4)

    res = run_both(script, rx, send_slot=40, end_edge=2200)
    compare(*res, rx_bufs=((0x60000, 4 * 2048),))
    model_reads, rtl_reads = seen.values()
    assert model_reads == rtl_reads and {1, 6} <= {v for _, v in model_reads}


def test_raw_cell_vcs():
    """aal5 = 0: a transmit PDU goes as whole cells (the last zero-padded), none marked as an
    end of PDU; every received cell is a 48-byte PDU of its own."""
    rnd = random.Random(12)
    tx = bytes(rnd.randrange(256) for _ in range(100))
    rx = [Cell(vpi=0, vci=6, payload=bytes(rnd.randrange(256) for _ in range(48)))
          for _ in range(3)]

    async def script(card, host):
        await host.setup({5: 0, 6: 0}, buffers=4, aal5=0)
        host.queue(5, tx, tag=1, align=0)
        await host.doorbell()

    res = run_both(script, rx, end_edge=1300)
    compare(*res, rx_bufs=((0x60000, 4 * 2048),))
    _, _, _, out_model, rtl, rhost, _ = res
    assert [(_slot_of(e), c) for e, c in rtl.cells_out] == out_model
    assert [c.pt for _, c in out_model] == [0, 0, 0]
    assert b"".join(c.payload for _, c in out_model) == tx.ljust(144, b"\0")
    assert [d for _, d in rhost.received()] == [c.payload for c in rx]


@pytest.mark.parametrize("release", [1991, 2264, 2450] + [
    pytest.param(r, marks=pytest.mark.slow)
    for r in sorted({1700, *range(1900, 2800, 13), 2600, 2747} - {1991, 2264})])
def test_a_receive_backlog_beyond_the_fifo_drops_cells(release):
    """The engine waits with a PDU's completion for a full queue while cells keep arriving at
    line rate: the receive FIFO holds RX_FIFO_CELLS of them (the one in hand included) and
    drops, uncounted, each cell whose first word finds it full; the host makes room at edge
    ``release``, the engine drains the FIFO, and the PDU whose last cells were dropped runs
    into the next one on its VC (LostCell). Released early, nothing is dropped. (At 1991 and
    2264 a cell's first word comes at the edge the engine is done with the entry's cell: still
    full; a model testing "done after the first word" gives other results there.)"""
    rnd = random.Random(21)
    b = _cells(3, bytes(rnd.randrange(256) for _ in range(60)))             # 2 cells
    a = [_cells(2, bytes(rnd.randrange(256) for _ in range(10))) for _ in range(3)]
    c = _cells(2, bytes(rnd.randrange(256) for _ in range(45 * 48 - 8)))   # 45 cells
    d = _cells(2, bytes(rnd.randrange(256) for _ in range(100)))
    e = _cells(4, bytes(rnd.randrange(256) for _ in range(50)))
    rx = [b[0], *a[0], *a[1], *a[2], b[1], *c, *d, *e]

    async def script(card, host):
        await host.setup({2: 0, 3: 0, 4: 0}, buffers=8)
        await card.write(0x00, 0)
        await card.write(0x44, 4)               # CqSize 4: three entries fit
        await card.write(0x00, 0x6)             # TxEnable | RxEnable
        while card.edge < release:
            await card.wait(10)
        while card.edge < release + 1500:
            await card.write(0x4C, await card.read(0x48))     # CqConsumer = CqProducer
            await card.wait(40)

    res = run_both(script, rx, end_edge=release + 1600)
    compare(*res, rx_bufs=((0x60000, 8 * 2048),))
    mcount = res[2]
    assert mcount[Counter.CellsRx] + mcount[Counter.UnknownVc] <= len(rx)
    if release < 1900:
        assert mcount[Counter.CellsRx] == len(rx)
    else:
        assert mcount[Counter.CellsRx] < len(rx)
    if 2000 < release < 2700:
        assert mcount[Counter.LostCells] == 1


@pytest.mark.parametrize("release", [2950] + [pytest.param(r, marks=pytest.mark.slow)
                                              for r in (1500, 3300)])
def test_a_looped_backlog_beyond_the_fifo_drops_cells(release):
    """Loopback: the receive engine waits with a completion for the full queue while the
    transmit engine loops a long PDU's cells into its FIFO: the cells beyond RX_FIFO_CELLS are
    dropped (their first word goes to the FIFO the edge before their slot)."""
    rnd = random.Random(22)
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in (8 * 48 - 8, 60 * 48 - 8, 30)]

    async def script(card, host):
        await host.setup({5: 0}, buffers=8, control=0x8)                # Loopback
        await card.write(0x00, 0)
        await card.write(0x44, 2)               # CqSize 2: one entry fits
        await card.write(0x00, 0xE)             # TxEnable | RxEnable | Loopback
        for i, p in enumerate(payloads):
            host.queue(5, p, tag=i, align=0)
        await host.doorbell()
        while card.edge < release:
            await card.wait(10)
        while card.edge < release + 1500:
            await card.write(0x4C, await card.read(0x48))     # CqConsumer = CqProducer
            await card.wait(40)

    res = run_both(script, end_edge=release + 1600)
    compare(*res, rx_bufs=((0x60000, 8 * 2048),))
    mcount = res[2]
    if release > 2000:
        assert mcount[Counter.CellsRx] <= mcount[Counter.CellsTx] - 20


def _reset_while_sending(reset_at):
    """A 40-cell PDU going out, Control.Reset written to take effect at edge ``reset_at``, the
    card set up again after and a PDU sent: returns both runs."""
    rnd = random.Random(23)
    first = bytes(rnd.randrange(256) for _ in range(40 * 48 - 8))
    second = bytes(rnd.randrange(256) for _ in range(100))

    async def script(card, host):
        await host.setup({5: 0}, buffers=4)
        host.queue(5, first, tag=1, align=0)
        await host.doorbell()
        while card.edge < reset_at - BUS_WAIT_CYCLES - 1:
            await card.wait(1)
        await card.write(0x00, 0x1)             # Control.Reset at reset_at
        while card.edge < reset_at + RESET_CYCLES + 4:
            await card.wait(1)
        host.rx_posted, host.tx_next = 0, 0
        await host.setup({5: 0}, buffers=4)
        host.queue(5, second, tag=2, align=0)
        await host.doorbell()

    return run_both(script, end_edge=reset_at + RESET_CYCLES + 900)


@pytest.mark.parametrize("offset", [-1, 10, 11] + [
    pytest.param(o, marks=pytest.mark.slow) for o in (-3, -2, *range(0, 10), 12, 13)])
def test_reset_drops_the_cells_in_the_transmit_fifo(offset):
    """Control.Reset with cells in the transmit FIFO, at edges around a cell's: the cells whose
    last word was not on the pins at the Reset edge never reach the link (the RTL's issuer
    stops at the next edge; a cell cut short is no cell), the rest do, and the card sends
    again after its setup."""
    slot = 30
    e = cell_slot_edge(slot) + offset
    res = _reset_while_sending(e)
    compare(*res, reset_at=e)
    _, _, _, out_model, rtl, _, _ = res
    assert [(_slot_of(s), c) for s, c in rtl.cells_out] == out_model
    sent_before = [k for k, c in out_model if k < slot + 20]
    assert (slot in sent_before) == (offset >= 11)


def test_the_model_and_the_rtl_have_one_receive_fifo_depth():
    from hw.an2.rx_ingress import RX_FIFO_CELLS as RTL_CELLS
    from hw.an2.timing import RX_FIFO_CELLS
    assert RX_FIFO_CELLS == RTL_CELLS == 32


@pytest.mark.parametrize("reset_at", [640, pytest.param(653, marks=pytest.mark.slow)])
def test_reset_empties_the_receive_fifo_and_takes_no_cell_meanwhile(reset_at):
    """Control.Reset with received cells queued behind a stalled engine and cells arriving all
    through it: they are lost, the card set up again right after receives the rest."""
    rnd = random.Random(24)
    rx = [c for n in (10, 10, 10, 40 * 48 - 8, 400, 400)
          for c in _cells(2, bytes(rnd.randrange(256) for _ in range(n)))]

    async def script(card, host):
        await host.setup({2: 0}, buffers=8)
        await card.write(0x00, 0)
        await card.write(0x44, 2)               # CqSize 2: the engine soon waits
        await card.write(0x00, 0x6)
        while card.edge < reset_at - BUS_WAIT_CYCLES - 1:
            await card.wait(1)
        await card.write(0x00, 0x1)             # Control.Reset at reset_at
        while card.edge < reset_at + RESET_CYCLES + 1:
            await card.wait(1)
        host.rx_posted = 0
        await host.setup({2: 0}, buffers=8)

    res = run_both(script, rx, send_slot=10, end_edge=reset_at + RESET_CYCLES + 1200)
    compare(*res, rx_bufs=((0x60000, 8 * 2048),), reset_at=reset_at)
    assert 0 < res[2][Counter.CellsRx] < len(rx)


# --- hardware pipes (issue 17): a Csum transmit, receive sums and swaps ---------------------
def _rfc1071(data: bytes) -> int:
    """The folded 16-bit ones'-complement sum of ``data`` (RFC 1071), written out plainly: the
    oracle the card's pipes are checked against."""
    data = bytes(data) + bytes(len(data) % 2)
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _swapped(payload: bytes, start: int, mode: int) -> bytes:
    """What the card stores for ``payload`` with rx_swap ``mode`` from byte ``start``, written
    out plainly (the bytes after the payload are the AAL5 pad: zeros)."""
    b = bytearray(payload + bytes(-len(payload) % 4))
    unit = {1: 2, 2: 4}.get(mode)
    if unit:
        for o in range(0, len(b), unit):
            if o >= start:
                b[o:o + unit] = b[o:o + unit][::-1]
    return bytes(b[:len(payload)])


def _pdus_sent(out_model) -> dict[int, list[bytes]]:
    """The AAL5 PDUs' payloads in the cells a run sent, per VC."""
    from sim.media.aal5 import reassemble
    cells, out = {}, {}
    for _, c in out_model:
        cells.setdefault(c.vci, []).append(c.payload)
        if c.pt & 1:
            out.setdefault(c.vci, []).append(reassemble(cells.pop(c.vci)).payload)
    return out


@pytest.mark.parametrize("seed", [3, 4] + [pytest.param(s, marks=pytest.mark.slow)
                                         for s in range(40, 60)])
def test_transmit_with_checksum(seed):
    rnd = random.Random(seed)
    sizes = [rnd.choice((2, 3, 41, 47, 48, 95, 101, 200, 333)) for _ in range(4)]
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in sizes]
    cuts = [sorted({rnd.randrange(n + 1) for _ in range(rnd.randrange(3))}) for n in sizes]
    aligns = [rnd.randrange(4) for _ in sizes]
    fields = []
    for n in sizes:
        s = rnd.randrange(min(256, n // 2))
        fields.append((s, rnd.randrange(min(256, (n - 2) // 2 - s + 1))))
    bad = len(payloads)                 # a field past the PDU's end: not sent, PipeError
    payloads.append(b"x" * 30)
    fields.append((10, 5))
    cuts.append([7])
    aligns.append(1)
    plain = bytes(rnd.randrange(256) for _ in range(77))    # no Csum, between them

    async def script(card, host):
        await host.setup({5: 0}, buffers=4)
        for i, p in enumerate(payloads):
            host.queue(5, p, cuts=cuts[i], tag=i, align=aligns[i], csum=fields[i])
            if i == 1:
                host.queue(5, plain, cuts=(5,), tag=99, align=2)
        await host.doorbell()

    cells = sum(-(-(n + 8) // 48) for n in sizes) + 2
    res = run_both(script, end_edge=900 + 120 * cells)
    compare(*res)
    _, _, _, out_model, rtl, _, _ = res
    assert [(_slot_of(e), c) for e, c in rtl.cells_out] == out_model
    comps = res[5].completions()
    assert [c.tag for c in comps] == [0, 1, 99, 2, 3, 4]
    assert comps[-1].errors == CqError.PipeError and comps[-1].length == 0
    sent = _pdus_sent(out_model)[5]
    assert len(sent) == 5 and sent[2] == plain
    for p, (s, f), got in zip(payloads[:bad], fields, sent[:2] + sent[3:]):
        at = 2 * (s + f)
        seed16 = int.from_bytes(p[at:at + 2], "big")      # the host's seed, in the field
        assert got[:at] == p[:at] and got[at + 2:] == p[at + 2:]
        want = (~_rfc1071(p[2 * s:]) & 0xFFFF) or 0xFFFF
        assert int.from_bytes(got[at:at + 2], "big") == want
        # The receiver's check: the sum with the seed (its pseudo-header) added is 0xFFFF.
        assert _rfc1071(got[2 * s:] + bytes(len(got[2 * s:]) % 2) + seed16.to_bytes(2, "big")) \
            == 0xFFFF


def _pipe_vcs(rnd: random.Random, swap: int) -> dict[int, VcEntry]:
    return {1: VcEntry(enable=1, rx_csum=1, rx_swap=swap, pipe_start=rnd.randrange(30)),
            2: VcEntry(enable=1, rx_csum=1, rx_swap=(swap + 1) % 3,
                       pipe_start=2 * rnd.randrange(15) + 1),
            3: VcEntry(enable=1, rx_swap=(swap + 2) % 3, pipe_start=rnd.randrange(4))}


def _rx_script(entries, bufsize):
    async def script(card, host):
        await host.setup({v: 0 for v in entries}, buffers=40, bufsize=bufsize)
        for v, e in entries.items():
            await card.write(0x1C, v)
            await card.write(0x20, e.to_int())
        while card.edge < 2000:
            await card.wait(97)
            await card.write(0x08, 0xF)
    return script


@pytest.mark.parametrize("swap,seed", [(0, 1), (1, 2), (2, 3)]
                         + [pytest.param(w, s, marks=pytest.mark.slow)
                            for w in range(3) for s in range(20, 26)])
def test_receive_with_checksum_and_swap(swap, seed):
    rnd = random.Random(seed)
    entries = _pipe_vcs(rnd, swap)
    pdus = [(rnd.choice(list(entries)), bytes(rnd.randrange(256) for _ in range(rnd.choice(
        (1, 6, 37, 41, 46, 47, 48, 90, 130, 150))))) for _ in range(7)]
    queues = {v: [c for vv, p in pdus if vv == v for c in _cells(v, p)] for v in entries}
    rx = []
    while any(queues.values()):
        v = rnd.choice([v for v, q in queues.items() if q])
        rx.append(queues[v].pop(0))
    bufsize = rnd.choice((48, 64, 256))

    res = run_both(_rx_script(entries, bufsize), rx, end_edge=2000 + 40 * len(rx))
    model, mhost, _, _, rtl, rhost, _ = res
    # The bytes after a buffer's length are undefined (the RTL writes whole words, swapped).
    compare(*res)
    assert rhost.received() == mhost.received()
    got = {v: [(c, data) for c, data in mhost.received() if c.vci == v] for v in entries}
    for v, e in entries.items():
        mine = [p for vv, p in pdus if vv == v]
        assert len(got[v]) == len(mine)
        for (c, data), p in zip(got[v], mine):
            assert c.errors == 0 and data == _swapped(p, 2 * e.pipe_start, e.rx_swap)
            assert c.csum == (_rfc1071(p[2 * e.pipe_start:]) if e.rx_csum else 0)


@pytest.mark.parametrize("seed", [5] + [pytest.param(s, marks=pytest.mark.slow)
                                      for s in range(30, 40)])
def test_random_receive_with_pipes(seed):
    """Lost cells, CRC errors and unknown VCs on summing, swapping VCs: the same everything."""
    rnd = random.Random(seed)
    entries = _pipe_vcs(rnd, rnd.randrange(3))
    rx = _random_rx(rnd, list(entries), 8)
    res = run_both(_rx_script(entries, rnd.choice((48, 64, 256))), rx,
                   end_edge=2000 + 40 * len(rx))
    compare(*res)
    assert res[5].received() == res[1].received()


def _cells_with_pad(vci: int, payload: bytes, rnd: random.Random) -> list[Cell]:
    """``payload``'s AAL5 cells with a pad of random non-zero bytes (the CRC over them)."""
    from sim.media.aal5 import crc32_aal5, pdu_len
    n = pdu_len(len(payload))
    body = (payload + bytes(rnd.randrange(1, 256) for _ in range(n - 8 - len(payload)))
            + bytes(2) + len(payload).to_bytes(2, "big"))
    pdu = body + crc32_aal5(body).to_bytes(4, "big")
    k = len(pdu) // 48
    return [Cell(vpi=0, vci=vci, payload=pdu[48 * i:48 * i + 48], pt=int(i == k - 1))
            for i in range(k)]


@pytest.mark.parametrize("seed", [6] + [pytest.param(s, marks=pytest.mark.slow)
                                      for s in range(60, 66)])
def test_receive_sum_takes_out_a_trailer_only_cells_pad(seed):
    """PDUs whose last cell holds only pad and trailer (length mod 48 from 41 to 47) with
    non-zero pad: the pad bytes written before the trailer-only cell are taken out of the sum
    again, which is RFC 1071's over [2 pipe_start, length)."""
    rnd = random.Random(seed)
    entries = {4: VcEntry(enable=1, rx_csum=1, pipe_start=rnd.randrange(20)),
               7: VcEntry(enable=1, rx_csum=1, rx_swap=rnd.randrange(3), pipe_start=1)}
    pdus = [(rnd.choice(list(entries)), bytes(rnd.randrange(256) for _ in range(
        48 * rnd.randrange(3) + rnd.randrange(41, 48)))) for _ in range(6)]
    pdus.append((4, bytes(100)))        # a pad, then none: the last cell carries payload
    queues = {v: [c for vv, p in pdus if vv == v for c in _cells_with_pad(v, p, rnd)]
              for v in entries}
    rx = []
    while any(queues.values()):
        v = rnd.choice([v for v, q in queues.items() if q])
        rx.append(queues[v].pop(0))
    res = run_both(_rx_script(entries, rnd.choice((48, 64, 256))), rx,
                   end_edge=2000 + 40 * len(rx))
    compare(*res)
    got = res[1].received()
    assert got == res[5].received()
    for v, e in entries.items():
        mine = [p for vv, p in pdus if vv == v]
        sums = [c.csum for c, _ in got if c.vci == v]
        assert sums == [_rfc1071(p[2 * e.pipe_start:]) for p in mine]
