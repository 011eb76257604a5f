"""The AN2 driver (sw/drivers/an2.py) over the card's model: two machines on an AtmLink.

Each machine is a CPU (DECstation 5000/125 under Aegis), its memory, a bus with an
:class:`hw.an2.model.An2Model` mapped on it, and an :class:`sw.drivers.an2.An2Driver`.
"""
from __future__ import annotations

import random

import pytest

from hw.an2.model import An2Model
from hw.an2.registers import WINDOW_SIZE
from hw.an2.timing import CLOCK_PERIOD_PS
from sim.bus import Bus, IrqLine
from sim.cpu import CPU, INTERRUPT, IO_WAIT
from sim.kernel import Kernel
from sim.media.atm import AtmLink, Cell
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sim.time import S, Clock
from sw.drivers.an2 import An2Driver

BASE = 0x1E00_0000
REGION = 0x10000
MEM = 1 << 20
USER = 0x80000          # where scatter/gather pieces live in host memory


class Machine:
    def __init__(self, k: Kernel, end, i: int, **kw) -> None:
        self.mem = Memory(k, MEM, profile=AEGIS, name=f"m{i}.mem")
        self.cpu = CPU(k, AEGIS, f"cpu{i}")
        self.bus = Bus(k, f"bus{i}")
        self.irq = IrqLine(k, f"an{i}")
        self.card = An2Model(k, Clock(CLOCK_PERIOD_PS, f"an{i}"), memory=self.mem, irq=self.irq,
                             link=end)
        self.bus.map(BASE, WINDOW_SIZE, self.card, f"an{i}")
        size = An2Driver.layout_size(**{key: kw[key] for key in kw
                                        if key in ("tx_ring", "cq_size", "rx_ring")})
        self.drv = An2Driver(self.cpu, self.bus, BASE, self.mem, self.irq,
                             region=(REGION, size), name=f"an{i}", **kw)


def pair(relay=None, **kw):
    """Two machines; with ``relay(cell) -> cell | None`` the a -> b cells pass through it."""
    k = Kernel()
    if relay is None:
        link = AtmLink(k)
        return k, Machine(k, link.a, 0, **kw), Machine(k, link.b, 1, **kw)
    l1, l2 = AtmLink(k, name="atm1"), AtmLink(k, name="atm2")
    l1.b.attach(lambda c: (lambda out: out is not None and l2.a.send(out))(relay(c)))
    l2.a.attach(l1.b.send)
    return k, Machine(k, l1.a, 0, **kw), Machine(k, l2.b, 1, **kw)


def run(k: Kernel, coro):
    task = k.spawn(coro)
    k.run(until=k.now + S)
    assert task.done and task.exception is None, task.exception
    return task.result


async def up(*machines, vcs=(5, 6)):
    for m in machines:
        await m.drv.start()
        for v in vcs:
            await m.drv.open_vc(v)


def drain(m: Machine) -> list[tuple[int, bytes]]:
    out = []
    while m.drv.pending():
        out.append(m.drv._rxq.get_nowait())
    return out


SIZES = [0, 1, 40, 41, 48, 2048, 2049, 9180]


def test_pdus_of_every_size_both_ways_intact():
    k, a, b = pair()
    rng = random.Random(16)
    pa = [rng.randbytes(n) for n in SIZES]
    pb = [rng.randbytes(n) for n in reversed(SIZES)]

    async def go():
        await up(a, b)
        for x, y in zip(pa, pb):
            await a.drv.send(5, x)
            await b.drv.send(6, y)
        await a.drv.flush()
        await b.drv.flush()
    run(k, go())
    assert drain(b) == [(5, x) for x in pa]
    assert drain(a) == [(6, y) for y in pb]
    for m, sent in ((a, pa), (b, pb)):
        st = m.drv.stats
        assert (st.tx_pdus, st.rx_pdus, st.rx_errors, st.tx_errors) == (len(sent), len(sent), 0, 0)
        assert st.tx_bytes == sum(map(len, sent))
        br = m.cpu.breakdown()
        assert br[IO_WAIT].cycles > 0 and br[INTERRUPT].cycles > 0


def test_scatter_gather_send_from_host_memory():
    k, a, b = pair()
    parts = [bytes(range(i, i + 37)) for i in range(0, 200, 50)] + [b"", b"\x01" * 3000]

    async def go():
        await up(a, b)
        addr, pieces = USER + 1, []
        for p in parts:
            a.mem.write(addr, p)
            pieces.append((addr, len(p)))
            addr += len(p) + 5
        await a.drv.send(5, pieces)
        await a.drv.flush()
    run(k, go())
    assert drain(b) == [(5, b"".join(parts))]
    assert a.drv.stats.tx_pdus == 1


def test_corrupted_cell_is_counted_not_delivered():
    seen = []

    def corrupt(cell: Cell):
        seen.append(cell)
        if len(seen) == 2:          # the second cell of the first PDU
            return Cell(vpi=cell.vpi, vci=cell.vci, pt=cell.pt,
                        payload=bytes([cell.payload[0] ^ 0x80]) + cell.payload[1:])
        return cell
    k, a, b = pair(relay=corrupt)
    good = bytes(range(200))

    async def go():
        await up(a, b)
        await a.drv.send(5, good)
        await a.drv.send(5, good[::-1])
        await a.drv.flush()
    run(k, go())
    assert drain(b) == [(5, good[::-1])]
    st = b.drv.stats
    assert (st.crc_errors, st.rx_errors, st.rx_pdus) == (1, 1, 1)


def test_no_buffers_counted_then_later_pdus_fine():
    # 3 receive buffers of 2048 bytes: a 9180-byte PDU needs 5 and runs out mid-PDU.
    k, a, b = pair(rx_ring=4)
    rng = random.Random(3)
    big, small = rng.randbytes(9180), [rng.randbytes(n) for n in (100, 3000, 4000)]

    async def go():
        await up(a, b)
        await a.drv.send(5, big)
        await a.drv.flush()
        await k.sleep(10**9)        # 1 ms: the card and the handler are quiet
        for p in small:
            await a.drv.send(5, p)
            await a.drv.flush()
            await k.sleep(10**8)
    run(k, go())
    assert drain(b) == [(5, p) for p in small]
    st = b.drv.stats
    assert st.no_buffer == 1 and st.rx_pdus == len(small)


def test_small_rings_wrap_phase_and_indices():
    # Every ring wraps many times: the completion queue's phase bit flips, the transmit ring
    # waits for reclaimed descriptors, the pool reposts buffers.
    k, a, b = pair(tx_ring=4, cq_size=4, rx_ring=8)
    rng = random.Random(5)
    payloads = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(30)]

    async def go():
        await up(a, b)
        for p in payloads:
            await a.drv.send(6, p)
        await a.drv.flush()
    run(k, go())
    assert drain(b) == [(6, p) for p in payloads]
    assert a.drv.stats.tx_ring_full > 0 and b.drv.stats.rx_errors == 0


def test_send_on_a_closed_vc_completes_with_bad_vc_and_on_pdu_gets_the_rest():
    k, a, b = pair()
    got = []

    async def on_pdu(vci, data):
        got.append((vci, data))
    b.drv.on_pdu = on_pdu

    async def go():
        await up(a, b)
        await a.drv.send(9, b"nobody")          # VC 9 is not open on the sender's card
        await a.drv.send(5, b"somebody")
        await a.drv.flush()
    run(k, go())
    st = a.drv.stats
    assert (st.bad_vc, st.tx_errors, st.tx_pdus) == (1, 1, 1)
    assert got == [(5, b"somebody")]
    coro = b.drv.recv()
    with pytest.raises(RuntimeError, match="on_pdu"):
        coro.send(None)


def _strict(page, owner, requester, write):
    return requester is None or owner is None or owner == requester


def test_dma_refused_for_the_vc_owner_is_counted_not_delivered():
    k, a, b = pair()
    a.mem.access_check = b.mem.access_check = _strict
    a.mem.set_owner(USER // 4096, 7)                # the sender's owner-7 page
    a.mem.set_owner(USER // 4096 + 1, 9)            # someone else's
    rx = b.drv.rx_bufs
    for page in range(rx // 4096, (rx + 2048) // 4096 + 1):
        b.mem.set_owner(page, 9)                    # the receiver's first buffer: not owner 7's

    async def go():
        for m in (a, b):
            await m.drv.start()
            await m.drv.open_vc(5, owner=7)
        a.mem.write(USER, b"mine" * 10)
        await a.drv.send(5, [(USER, 40)])               # B's first buffer refuses it
        await a.drv.send(5, [(USER + 4096, 40)])        # refused on A: DmaFault, nothing sent
        await a.drv.flush()
    run(k, go())
    assert (a.drv.stats.tx_pdus, a.drv.stats.dma_faults, a.drv.stats.tx_errors) == (1, 1, 1)
    assert (b.drv.stats.dma_faults, b.drv.stats.rx_pdus) == (1, 0)
    assert drain(b) == []


def _trace(seed: int):
    k, a, b = pair()
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.randrange(0, 5000)) for _ in range(8)]

    async def go():
        await up(a, b)
        for p in payloads:
            await a.drv.send(5, p)
        await a.drv.flush()
    run(k, go())
    return drain(b), k.now, a.cpu.report().busy_ps, b.cpu.report().busy_ps, b.drv.stats


def test_deterministic():
    assert _trace(7) == _trace(7)


def test_bad_arguments_are_refused():
    k = Kernel()
    m = Machine(k, AtmLink(k).a, 0)
    with pytest.raises(ValueError, match="tx_ring"):
        An2Driver(m.cpu, m.bus, BASE, m.mem, m.irq, region=(REGION, 1 << 18), tx_ring=3)
    with pytest.raises(ValueError, match="at least"):
        An2Driver(m.cpu, m.bus, BASE, m.mem, m.irq, region=(REGION, 64))
    k.run(until=1)              # let the card's engines start (no coroutine left unawaited)


def test_bad_pieces_are_refused_and_the_driver_keeps_working():
    k, a, b = pair()
    errors = []

    async def go():
        await up(a, b)
        for bad in (["not a pair"], [(USER, 8, 0)], [(USER, 1 << 40)]):
            try:
                await a.drv.send(5, bad)
            except ValueError as e:
                errors.append(str(e))
        await a.drv.send(5, b"still fine")
        await a.drv.flush()
    run(k, go())
    assert len(errors) == 3 and all("(address, length)" in e for e in errors[:2])
    assert drain(b) == [(5, b"still fine")]
