"""The AN2 card in the loop: its cell bridge, its link hooks, and its RTL in a machine.

* :class:`hw.an2.link_bridge.CellLinkBridge` on Amaranth's simulator: a written entry's 13 words
  reach the card's pins on 13 consecutive cycles ending at the named edge, and a cell the card
  sends is captured with the edge of its ``tx_soc``.
* :mod:`sim.media.atm`'s hooks the binding needs: ``send(at=)`` and ``attach(ahead=True)``.
* Two bare machines (:func:`serveros.machines.bare`) with an AN2 card each on one OC-3c link,
  driven by :class:`sw.drivers.an2.An2Driver`: first both cards as the model, then one as the
  model and one as the RTL on Verilator, then both RTL: the same PDUs give the same received
  bytes, completions, memory, interrupt times and cell times.
"""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hw.an2.link_bridge import EDGE_WORD, ENTRY_WORDS, CellLinkBridge
from hw.an2.rtl_attach import cell_words, words_cell
from sim.kernel import Kernel
from sim.media.atm import AtmLink, Cell, slot_start

PERIOD_S = 80e-9


def _cell(vci: int, seed: int, pt: int = 0) -> Cell:
    return Cell(vpi=0, vci=vci, pt=pt, payload=random.Random(seed).randbytes(48))


def test_cell_words_are_the_header_then_the_payload_big_endian_and_back() -> None:
    cell = Cell(vpi=3, vci=0x1234, pt=1, clp=1, gfc=5, payload=bytes(range(48)))
    words = cell_words(cell)
    assert len(words) == 13
    assert words[0] == int.from_bytes(cell.header4(), "big") == 0x5031_2343
    assert words[1] == 0x0001_0203 and words[12] == 0x2C2D_2E2F
    assert words_cell(words) == cell


def test_bridge_plays_each_entry_ending_at_its_edge_and_captures_sent_cells() -> None:
    br = CellLinkBridge()
    cells = [_cell(5, 1), _cell(6, 2, pt=1)]
    starts = [20, 60]                   # edges at which word 0 is to be sampled
    seen: list[tuple[int, int, int]] = []   # (edge sampled, soc, word) of every rx word
    sent = _cell(7, 3)
    tx_at = 30                          # the edge that samples the card's tx_soc

    async def bench(ctx):
        for i, (c, s) in enumerate(zip(cells, starts)):
            for j, w in enumerate(cell_words(c) + [s]):
                ctx.set(br.rx_mem.data[i * ENTRY_WORDS + j], w)
        ctx.set(br.rx_put, 2)
        tx = cell_words(sent)
        for _ in range(100):
            e = ctx.get(br.edge)        # the edge at the end of this cycle samples the pins
            if ctx.get(br.rx_valid):
                seen.append((e, ctx.get(br.rx_soc), ctx.get(br.rx_data)))
            k = e - tx_at
            ctx.set(br.tx_valid, 0 <= k < 13)
            ctx.set(br.tx_soc, k == 0)
            ctx.set(br.tx_data, tx[k] if 0 <= k < 13 else 0)
            await ctx.tick()
        assert ctx.get(br.rx_done) == 2 and ctx.get(br.tx_count) == 1
        assert ctx.get(br.tx_errors) == 0
        got = [ctx.get(br.tx_mem.data[j]) for j in range(EDGE_WORD + 1)]
        assert words_cell(got[:13]) == sent and got[EDGE_WORD] == tx_at

    sim = Simulator(br)
    sim.add_clock(PERIOD_S)
    sim.add_testbench(bench)
    sim.run()
    want = [(s + j, int(j == 0), w) for c, s in zip(cells, starts)
            for j, w in enumerate(cell_words(c))]
    assert seen == want


def test_link_gives_a_late_cell_its_slot_and_announces_cells_ahead() -> None:
    k = Kernel()
    link = AtmLink(k, propagation_ps=0)
    ahead: list[tuple[int, int, int]] = []
    link.b.attach(lambda c, t: ahead.append((k.now, t, c.vci)), ahead=True)

    async def go() -> None:
        await k.sleep_until(slot_start(3) + 1000)
        assert link.a.send(_cell(5, 0), at=slot_start(3)) == slot_start(4)
        assert link.a.send(_cell(6, 0)) == slot_start(5)
        with pytest.raises(ValueError, match="at most now"):
            link.a.send(_cell(6, 0), at=k.now + 1)
        with pytest.raises(ValueError, match="ended before now"):
            link.b.send(_cell(6, 0), at=0)      # slot 0 of b -> a is long over
    k.spawn(go())
    k.run()
    t = slot_start(3) + 1000
    assert ahead == [(t, slot_start(4), 5), (t, slot_start(5), 6)]
