"""cocotb self-tests of the AN2 benches' BFMs (tests/hw/bfm/atm_cells.py, dma_memory.py).

The design is test_an2_cocotb.py's ``BfmLoop``: the receive cell pins wired straight to the
transmit pins (so a :class:`~bfm.atm_cells.CellSource` loops back into a
:class:`~bfm.atm_cells.CellSink` at the same edges), and a ``DmaBus`` whose initiator side is
driven by this module (:func:`burst`, a plain Python initiator of hw/bus.py's protocol) and
whose target side is the :class:`~bfm.dma_memory.DmaMemory` under test. The checks compare the
BFMs against plain Python references (cells and AAL5 PDUs as built; a byte array and the
ownership rule for the memory), and show that the checkers catch what they must catch.
"""
from __future__ import annotations

import random
from dataclasses import astuple

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from bfm.atm_cells import CellSignals, CellSink, CellSource, cell_words, pdus_of, slot_at_or_after
from bfm.dma_memory import DmaMemory, DmaSignals, HostMemory
from bfm.pauses import random_pauses
from hw.an2.timing import CELL_WORDS, CLOCK_PERIOD_PS, cell_slot_edge
from sim.media.aal5 import Aal5CrcError, segment
from sim.media.atm import Cell

P = CLOCK_PERIOD_PS
PAGE = 4096


async def start(dut) -> None:
    dut.rst.value = 1
    for name in ("rx_valid", "rx_soc", "rx_data", "m_req", "m_write", "m_addr", "m_count",
                 "m_w_data", "m_owner"):
        getattr(dut, name).value = 0
    Clock(dut.clk, P, unit="ps", impl="gpi").start()
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0


def random_cell(rng: random.Random) -> Cell:
    return Cell(vpi=rng.randrange(256), vci=rng.randrange(1 << 16), pt=rng.randrange(8),
                clp=rng.randrange(2), gfc=rng.randrange(16), payload=rng.randbytes(48))


def pdu_cells(vci: int, payload: bytes) -> list[Cell]:
    parts = segment(payload)
    return [Cell(vpi=0, vci=vci, pt=int(i == len(parts) - 1), payload=p)
            for i, p in enumerate(parts)]


@cocotb.test()
async def cells_loop_back_at_slot_edges(dut) -> None:
    """Random cells, one per slot with random idle slots: the sink takes every one, equal, at
    the edge the source drove it, on the slot grid; AAL5 PDUs reassemble (a corrupted one as a
    CRC error)."""
    await start(dut)
    rng = random.Random(1)
    src = CellSource(CellSignals(dut, prefix="rx"), dut.clk, period_ps=P,
                     gaps=random_pauses(2, most=3, chance=0.3))
    sink = CellSink(CellSignals(dut, prefix="tx"), dut.clk, period_ps=P, callback=lambda c: None)
    cells = [random_cell(rng) for _ in range(20)]
    good, bad = rng.randbytes(100), rng.randbytes(61)
    pdu = pdu_cells(7, good) + pdu_cells(9, bad)
    broken = bytearray(pdu[-2].payload)
    broken[5] ^= 0x10
    pdu[-2] = Cell(vpi=0, vci=9, pt=0, payload=bytes(broken))
    for c in cells + pdu:
        src.send_nowait(c)
    await src.wait()
    await ClockCycles(dut.clk, 4)
    assert sink.violations == [], sink.violations
    assert [s.cell for s in sink.cells] == cells + pdu
    assert [s.edge for s in sink.cells] == [s.edge for s in src.sent]
    assert all(s.words == tuple(cell_words(s.cell)) for s in sink.cells)
    edges = [s.edge for s in src.sent]
    assert all(b - a >= 35 for a, b in zip(edges, edges[1:])), "more than one cell a slot"
    assert all(cell_slot_edge(slot_at_or_after(e)) == e for e in edges)
    got = pdus_of(s.cell for s in sink.cells if s.cell.vpi == 0 and s.cell.vci in (7, 9))
    assert got[7] == [good]
    assert isinstance(got[9][0], Aal5CrcError)


@cocotb.test()
async def the_sink_flags_bad_cells(dut) -> None:
    """Word gaps inside a cell (legal on receive, not on the card's transmit side), a truncated
    cell, and cells back to back off the slot grid: the sink records each as a violation."""
    await start(dut)
    rng = random.Random(3)
    src = CellSource(CellSignals(dut, prefix="rx"), dut.clk, period_ps=P, pacing="back_to_back",
                     word_gaps=iter([0] * (CELL_WORDS - 1) + [0, 0, 2] + [0] * 100))
    sink = CellSink(CellSignals(dut, prefix="tx"), dut.clk, period_ps=P, callback=lambda c: None)
    a, b, c = (random_cell(rng) for _ in range(3))
    src.send_nowait(a)               # whole, back to back: off the slot grid or a shared slot
    src.send_nowait(b)               # a pause after its second word: cut in two
    src.send_words(cell_words(c)[:5])
    src.send_nowait(c)
    await src.wait()
    await ClockCycles(dut.clk, 4)
    text = "\n".join(sink.violations)
    assert "a cell of 3 consecutive words" in text and "a word without soc" in text, text
    assert "a cell of 5 consecutive words" in text, text
    assert "off a slot edge" in text or "two cells in slot" in text, text
    assert [s.cell for s in sink.cells] == [a, c]


async def burst(dut, *, write: bool, addr: int, count: int, owner: int,
                words: list[int] | None = None) -> tuple[bool, list[int], int, int]:
    """One burst as a device runs it (hw/bus.py). Returns (refused, words read, the edge that
    raised req, the edge that sampled the last ack or the err)."""
    await RisingEdge(dut.clk)
    start = round(cocotb.simtime.get_sim_time("ps")) // P
    dut.m_req.value = 1
    dut.m_write.value = int(write)
    dut.m_addr.value = addr
    dut.m_count.value = count
    dut.m_owner.value = owner
    dut.m_w_data.value = words[0] if write else 0
    got, i = [], 0
    while True:
        await ReadOnly()
        ack, err, data = int(dut.m_ack.value), int(dut.m_err.value), int(dut.m_r_data.value)
        await RisingEdge(dut.clk)
        end = round(cocotb.simtime.get_sim_time("ps")) // P
        if err:
            dut.m_req.value = 0
            return True, got, start, end
        if ack:
            if not write:
                got.append(data)
            i += 1
            if i == count:
                dut.m_req.value = 0
                return False, got, start, end
            if write:
                dut.m_w_data.value = words[i]


@cocotb.test()
async def dma_memory_against_a_reference(dut) -> None:
    """Random bursts (reads and writes, 1-64 words, owners 0-3 on pages owned by 1-3 or by
    none) with random wait states: every read and every refusal as a byte array and the
    ownership rule say, the memory equal at the end, no byte moved by a refused burst; without
    wait states, the protocol's earliest times (first ack at S + 2, one word a cycle, err at
    S + 2)."""
    await start(dut)
    rng = random.Random(5)
    mem = HostMemory(size=8 * PAGE)
    ref = bytearray(rng.randbytes(mem.size))
    mem.write(0, ref)
    owners = {1: 1, 2: 2, 3: 3, 5: 1}
    for page, owner in owners.items():
        mem.set_owner(page, owner)
    dmem = DmaMemory(DmaSignals(dut), dut.clk, memory=mem, period_ps=P,
                     waits=random_pauses(6, most=4))

    def allowed(addr: int, n: int, owner: int) -> bool:
        return owner == 0 or all(owners.get(p) in (None, owner)
                                 for p in range(addr // PAGE, (addr + n - 1) // PAGE + 1))

    refused_seen, expected = 0, []
    for k in range(60):
        if k == 40:
            dmem.set_waits(None)
        count = rng.randint(1, 64)
        addr = 4 * rng.randrange((mem.size - 4 * count) // 4)
        owner, write = rng.randrange(4), rng.random() < 0.5
        words = [rng.getrandbits(32) for _ in range(count)] if write else None
        refused, got, s, e = await burst(dut, write=write, addr=addr, count=count, owner=owner,
                                         words=words)
        want_ok = allowed(addr, 4 * count, owner)
        assert refused == (not want_ok), (k, addr, count, owner)
        refused_seen += refused
        if not refused and write:
            ref[addr:addr + 4 * count] = b"".join(w.to_bytes(4, "little") for w in words)
        if not refused and not write:
            assert got == [int.from_bytes(ref[addr + 4 * i:addr + 4 * i + 4], "little")
                           for i in range(count)]
        if k >= 40:                  # no wait states: the earliest the protocol allows
            assert e - s == (2 if refused else 1 + count), (k, s, e, refused)
        expected.append((write, addr, count, owner, refused, 0 if refused else count, s, e))
    await ClockCycles(dut.clk, 2)
    assert [astuple(b) for b in dmem.bursts] == expected
    assert bytes(mem.data) == bytes(ref)
    assert dmem.violations == []
    assert 5 <= refused_seen <= 55 and dmem.refusals == refused_seen
    # A burst outside memory is refused too.
    refused, _, _, _ = await burst(dut, write=False, addr=mem.size - 8, count=4, owner=0)
    assert refused
    # The checker catches an initiator that changes its request mid-burst.
    dmem.set_waits(iter([3] + [0] * 10))
    await RisingEdge(dut.clk)
    dut.m_req.value, dut.m_write.value, dut.m_addr.value = 1, 0, 0x100
    dut.m_count.value, dut.m_owner.value = 2, 0
    await ClockCycles(dut.clk, 2)
    dut.m_addr.value = 0x200
    await ClockCycles(dut.clk, 4)
    dut.m_req.value = 0
    await ClockCycles(dut.clk, 4)
    assert any("changed mid-burst" in v for v in dmem.violations), dmem.violations


@cocotb.test()
async def comb_logic_of_held_registers_is_not_x(dut) -> None:
    """Combinational outputs of registers that never change after time 0 are their values, not
    X: the simulator ran every ``always @*`` block Yosys wrote at time 0 (Icarus under -g2012
    does not; serveros.rtl.run_cocotb builds Icarus as Verilog-2005)."""
    from test_an2_cocotb import MIXED, QUIET
    await start(dut)
    await ReadOnly()
    for name, want in (("quiet", QUIET), ("mixed", MIXED)):
        got = getattr(dut, name).value
        assert got.is_resolvable and int(got) == want, f"{name} is {got}, not {want:#04x}"
