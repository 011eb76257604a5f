"""The AN2 card in the loop: its cell bridge, its link hooks, and its RTL in a machine.

* :class:`hw.an2.link_bridge.CellLinkBridge` on Amaranth's simulator: a written entry's 13 words
  reach the card's pins on 13 consecutive cycles ending at the named edge, and a cell the card
  sends is captured with the edge of its ``tx_soc``.
* :mod:`sim.media.atm`'s hooks the binding needs: ``send(at=)`` and ``attach(ahead=True)``.
* Two bare machines with an AN2 card each on one OC-3c link or a switch
  (:mod:`serveros.experiments.an2_exchange`): first both cards as the model, then one as the
  model and one as the RTL on Verilator, then both RTL: the same PDUs give the same received
  bytes and counters, and the same completions, memory, interrupt times, CPU cycles and
  capture (records of the same nanosecond on different links compared in a canonical order).
"""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hw.an2.attach import AN2
from hw.an2.link_bridge import EDGE_WORD, ENTRY_WORDS, CellLinkBridge
from hw.an2.rtl_attach import cell_words, words_cell
from hw.an2.timing import CLOCK_PERIOD_PS
from serveros.devices import DEVICE_KINDS
from hw.an2.registers import Counter
from serveros.experiments.an2_exchange import BASE, VCS, differences, run_exchange, workload
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.atm import AtmLink, Cell, slot_start

PERIOD_S = 80e-9


def _cell(vci: int, seed: int, pt: int = 0) -> Cell:
    return Cell(vpi=0, vci=vci, pt=pt, payload=random.Random(seed).randbytes(48))


def test_an2_is_a_listed_kind_with_one_build_for_every_card() -> None:
    assert DEVICE_KINDS["an2"] is AN2
    assert AN2.memories == ("dma.mem", "link.rx_mem", "link.tx_mem")
    keys = {AN2.harness_key(DeviceSpec("an2", "an0", BASE, p))
            for p in ({}, {"esi": "08:00:2b:0a:0b:0c", "mtu": 1500})}
    assert keys == {"an2_harness"}
    with pytest.raises(ValueError, match="mtu"):
        AN2.harness_key(DeviceSpec("an2", "an0", BASE, {"mtu": 9181}))


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


def test_model_exchange_delivers_every_pdu_both_ways_deterministically() -> None:
    a = run_exchange("", pdus=6)
    loads = workload(16, 6)
    for i, name in enumerate(("m0", "m1")):
        sent = [p if isinstance(p, bytes) else None for p in loads[1 - i]]
        got = a.received[name]
        assert [v for _, v, _ in got] == [VCS[1 - i]] * 6
        assert all(s is None or s == d for s, (_, _, d) in zip(sent, got))
        assert a.counters[name][Counter.PdusRx] == a.counters[name][Counter.PdusTx] == 6
        assert sum(a.counters[name][c] for c in (Counter.CrcErrors, Counter.LostCells,
                                                 Counter.NoBuffer, Counter.DmaFaults)) == 0
    assert a == run_exchange("", pdus=6)


def _need_verilator() -> None:
    import importlib.util

    from serveros.rtl import simulator_missing
    if simulator_missing("verilator"):
        pytest.skip(simulator_missing("verilator"))
    if importlib.util.find_spec("hw.an2.gateware") is None:
        pytest.skip("the card's gateware (hw/an2/gateware.py) is not there yet")


CASES = [("m1_an0", False), ("an2", False), ("an2", True)]


@pytest.mark.hdl
@pytest.mark.parametrize("rtl, switched", CASES)
def test_rtl_cards_deliver_the_model_runs_pdus_intact(rtl, switched) -> None:
    """The binding's part: every PDU crosses the RTL cards' pins, DMA and interrupts intact,
    Python waking per transaction, not per cycle."""
    _need_verilator()
    model = run_exchange("", pdus=8, switched=switched)
    rtl_run = run_exchange(rtl, pdus=8, switched=switched)
    # Waking per cycle of one card would be a wake per 80 ns; these wake per cell, burst and
    # register access (with the switch's and links' kernel entries), well under half of that.
    assert rtl_run.python_wakes < rtl_run.end_ps // CLOCK_PERIOD_PS / 2
    for m in ("m0", "m1"):
        assert [x[1:] for x in rtl_run.received[m]] == [x[1:] for x in model.received[m]]
        assert rtl_run.counters[m] == model.counters[m]
    assert rtl_run.cells == model.cells


@pytest.mark.hdl
@pytest.mark.parametrize("rtl, switched", CASES)
def test_rtl_cards_give_the_model_runs_bytes_completions_and_times(rtl, switched) -> None:
    _need_verilator()
    model = run_exchange("", pdus=8, switched=switched)
    rtl_run = run_exchange(rtl, pdus=8, switched=switched)
    assert differences(model, rtl_run) == []
    assert model == rtl_run and model.captured      # every PDU on every link is in both


@pytest.mark.hdl
def test_bench_rows_on_a_tiny_exchange() -> None:
    _need_verilator()
    from serveros.bench import an2_benchmarks
    rows = {r.name: r for r in an2_benchmarks(pdus=2, sizes=(1, 100))}
    assert set(rows) == {"an2 model: cells", "an2 model: PDUs", "an2 verilator: cells",
                         "an2 verilator: PDUs", "an2 verilator: RTL cycles",
                         "an2 bare Verilator loop"}
    assert all(r.value > 0 for r in rows.values())


@pytest.mark.hdl
def test_a_server_run_gives_the_same_row_with_the_rtl_card(tmp_path) -> None:
    """Figure c's point (Cheetah, 1 KiB, one client, 5 requests over AN2) with the server's
    card as the model and as RTL on Verilator: the same row to the last digit but for the
    wall time and the backend's name (the clients' cards stay models)."""
    _need_verilator()
    from serveros.experiments import paper
    image = paper.build_documents_image(tmp_path / "docs.img")
    model, rtl = (paper.run_point(paper.Point(("c",), "cheetah", 1024, 1, 5, backend, 1,
                                              rtl=kinds, network="an2"), image)[0]
                  for backend, kinds in (("model", ()), ("verilator", ("an2",))))
    assert (model["rtl"], rtl["rtl"], rtl["backend"]) == ("", "an2", "verilator")
    assert model["ok"] == 5 and model["goodput_bytes_per_s"] > 0
    same = {"rtl", "backend", "wall_seconds"}
    assert {k: v for k, v in rtl.items() if k not in same} == \
        {k: v for k, v in model.items() if k not in same}
