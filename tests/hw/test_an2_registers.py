"""The AN2-style card's register map, memory formats and timing contract (hw/an2)."""
from __future__ import annotations

import enum
import random

import pytest

from hw.an2 import registers as r
from hw.an2 import timing as t
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE


# --- the register map -------------------------------------------------------------------------
def _all_offsets() -> dict[int, str]:
    """Every decoded word's byte offset -> a name."""
    out: dict[int, str] = {}

    def put(off: int, name: str) -> None:
        assert off not in out, f"{name} overlaps {out.get(off)} at {off:#x}"
        out[off] = name

    for reg in r.Reg:
        if reg not in r.RING_REGS:
            put(int(reg), reg.name)
    for p in range(r.NUM_POOLS):
        for reg in r.RING_REGS:
            put(r.pool_reg(reg, p), f"{reg.name}({p})")
    for c in r.Counter:
        put(c.offset, f"Counter.{c.name}")
    return out


def test_register_map_has_no_overlaps_and_fits_the_window():
    offsets = _all_offsets()
    assert all(off % 4 == 0 and 0 <= off < r.WINDOW_SIZE for off in offsets)
    assert r.WINDOW_SIZE == 256
    assert r.Reg.TxProducer.word == 0x38 // 4


def test_every_register_has_an_access_and_writable_ones_a_reset_value():
    for reg in r.Reg:
        assert r.ACCESS[reg] in ("rw", "ro", "w1c")
        if reg is not r.Reg.LinkStatus:
            assert reg in r.RESET
    for reg, value in r.RESET.items():
        assert 0 <= value < 1 << r.DATA_WIDTH
    assert r.ring_entries_valid(r.RESET[r.Reg.TxSize])
    assert r.ring_entries_valid(r.RESET[r.Reg.CqSize])
    assert r.ring_entries_valid(r.RESET[r.Reg.PoolSize])
    assert 1 <= r.RESET[r.Reg.CoalesceCount] < 256


def test_pool_reg_validates():
    assert r.pool_reg(r.Reg.PoolConsumer, 3) == 0x8C
    assert r.pool_reg(r.Reg.PoolConsumer, 3) < r.COUNTERS_OFFSET
    with pytest.raises(ValueError, match="pool register"):
        r.pool_reg(r.Reg.TxBase, 0)
    with pytest.raises(ValueError, match="pool must be"):
        r.pool_reg(r.Reg.PoolBase, r.NUM_POOLS)


def test_ring_sizes():
    assert [n for n in range(0, 5000) if r.ring_entries_valid(n)] == [
        1 << k for k in range(1, 13)]
    assert not r.ring_entries_valid(True)


# --- enums and layouts agree ------------------------------------------------------------------
_FLAG_LAYOUTS = [
    (r.Control, r.control_layout, {"Reset": "reset", "TxEnable": "tx_enable",
                                   "RxEnable": "rx_enable", "Loopback": "loopback"}),
    (r.Status, r.status_layout, {"TxOn": "tx_on", "RxOn": "rx_on", "Fault": "fault",
                                 "CqFull": "cq_full"}),
    (r.Irq, r.irq_layout, {"Completion": "completion", "CqFull": "cq_full", "Error": "error",
                           "Link": "link"}),
    (r.Link, r.link_layout, {"Signal": "signal", "FrameLock": "frame_lock",
                             "CellLock": "cell_lock"}),
]


@pytest.mark.parametrize("flags,layout,names", _FLAG_LAYOUTS,
                         ids=lambda x: getattr(x, "__name__", ""))
def test_register_flags_match_their_layouts(flags, layout, names):
    assert layout.size == 32
    assert {m.name for m in flags} == set(names)
    for member in flags:
        field = layout[names[member.name]]
        assert field.width == 1 and int(member) == 1 << field.offset


def test_descriptor_flags_match_the_layouts():
    assert {m.name for m in r.TxFlag} == {"First", "Last", "Csum", "DmaFault", "BadVc",
                                         "PipeError", "Own"}
    for member, name in ((r.TxFlag.First, "first"), (r.TxFlag.Last, "last"),
                         (r.TxFlag.Csum, "csum"), (r.TxFlag.DmaFault, "dma_fault"),
                         (r.TxFlag.BadVc, "bad_vc"), (r.TxFlag.PipeError, "pipe_error"),
                         (r.TxFlag.Own, "own")):
        assert r.tx_descriptor_layout[name].offset == 64 + int(member).bit_length() - 1
    for member, name in ((r.RxFlag.First, "first"), (r.RxFlag.Last, "last"),
                         (r.RxFlag.CrcError, "crc_error"), (r.RxFlag.Oversize, "oversize"),
                         (r.RxFlag.LostCell, "lost_cell"), (r.RxFlag.DmaFault, "dma_fault"),
                         (r.RxFlag.Own, "own")):
        assert r.rx_descriptor_layout[name].offset == 64 + int(member).bit_length() - 1
    assert r.rx_descriptor_layout["vci"].offset == 64 and r.rx_descriptor_layout["vci"].width == 16


@pytest.mark.parametrize("cls", [r.Control, r.Status, r.Irq, r.Link, r.VcState, r.Counter,
                                 r.TxFlag, r.RxFlag, r.CqKind, r.CqError, r.RxSwap],
                         ids=lambda c: c.__name__)
def test_enum_values_distinct_and_camel_case(cls):
    values = [int(m) for m in cls]
    assert len(values) == len(set(values))
    if issubclass(cls, enum.IntFlag):
        assert all(v > 0 and v & (v - 1) == 0 for v in values)
    assert all(m.name[0].isupper() and "_" not in m.name for m in cls)


def test_enum_fields_fit_their_layout_fields():
    assert max(r.VcState) < 1 << r.vc_entry_layout["state"].width
    assert max(r.CqKind) < 1 << r.completion_layout["kind"].width
    assert max(r.CqError) < 1 << r.completion_layout["errors"].width
    assert max(r.RxSwap) < 1 << r.vc_entry_layout["rx_swap"].width
    assert r.CqError.PipeError == 1 << 6 and r.TxFlag.PipeError == 1 << 10
    assert r.NUM_POOLS <= 1 << r.vc_entry_layout["pool"].width
    assert r.NUM_POOLS <= 1 << r.completion_layout["pool"].width
    assert r.NUM_OWNERS == 1 << r.vc_entry_layout["owner"].width
    assert r.NUM_VCS <= 1 << r.tx_descriptor_layout["vci"].width
    assert r.MAX_PDU < 1 << r.tx_descriptor_layout["length"].width
    assert r.MAX_RING <= r.NO_INDEX
    assert r.MAX_PDU_CELLS < 1 << r.completion_layout["cells"].width


# --- memory formats ---------------------------------------------------------------------------
_EXPECTED = {  # (layout, total bits, {field: (offset, width)}): the documented wire format
    "tx": (r.tx_descriptor_layout, 128, {"addr": (0, 32), "length": (32, 16), "vci": (48, 16),
                                         "first": (64, 1), "last": (65, 1), "csum": (66, 1),
                                         "dma_fault": (72, 1), "bad_vc": (73, 1),
                                         "pipe_error": (74, 1), "csum_start": (75, 8),
                                         "csum_field": (83, 8), "own": (95, 1),
                                         "tag": (96, 32)}),
    "rx": (r.rx_descriptor_layout, 128, {"addr": (0, 32), "size": (32, 16), "length": (48, 16),
                                         "vci": (64, 16), "own": (95, 1), "tag": (96, 32)}),
    "cq": (r.completion_layout, 128, {"kind": (0, 2), "pool": (2, 2), "phase": (7, 1),
                                      "errors": (8, 8), "index": (16, 16), "length": (32, 16),
                                      "vci": (48, 16), "csum": (64, 16), "cells": (80, 16),
                                      "tag": (96, 32)}),
    "vc": (r.vc_entry_layout, 32, {"enable": (0, 1), "aal5": (1, 1), "pool": (2, 2),
                                   "state": (4, 2), "owner": (8, 8), "rx_csum": (16, 1),
                                   "rx_swap": (17, 2), "pipe_start": (19, 8)}),
}


@pytest.mark.parametrize("name", sorted(_EXPECTED))
def test_layout_widths_and_offsets(name):
    layout, width, expected = _EXPECTED[name]
    assert layout.size == width
    for field, (offset, bits) in expected.items():
        assert (layout[field].offset, layout[field].width) == (offset, bits), field
    # fields tile the layout with no gap
    pos = 0
    for _, f in layout:
        assert f.offset == pos
        pos += f.width
    assert pos == width


def _random(cls, rng):
    kw = {}
    for name, field in cls._layout:
        if name.startswith("res"):
            continue
        kw[name] = rng.getrandbits(field.width)
    if cls is r.RxDescriptor:
        kw["addr"] &= ~3
        kw["size"] &= ~3
    if cls is r.Completion:
        kw["kind"] = rng.choice(list(r.CqKind))
    if cls is r.VcEntry:
        kw["state"] = rng.choice(list(r.VcState))
        kw["rx_swap"] = rng.choice(list(r.RxSwap))
    return cls(**kw)


@pytest.mark.parametrize("cls", [r.TxDescriptor, r.RxDescriptor, r.Completion, r.VcEntry],
                         ids=lambda c: c.__name__)
def test_pack_unpack_round_trip(cls):
    rng = random.Random(16)
    for _ in range(200):
        e = _random(cls, rng)
        assert cls.unpack(e.pack()) == e
        assert cls.from_words(e.words()) == e
        assert cls.from_int(e.to_int()) == e
        assert len(e.pack()) == cls._layout.size // 8


def test_tx_descriptor_words_are_little_endian_and_documented():
    d = r.TxDescriptor(addr=0x0012_3457, length=1500, vci=42, first=1, last=1, own=1, tag=0xBEEF)
    assert d.words() == (0x0012_3457, 42 << 16 | 1500,
                         int(r.TxFlag.First | r.TxFlag.Last | r.TxFlag.Own), 0xBEEF)
    assert d.pack()[:4] == bytes([0x57, 0x34, 0x12, 0x00])


def test_tx_descriptor_checksum_word():
    d = r.TxDescriptor(length=60, first=1, last=1, csum=1, csum_start=10, csum_field=8, own=1)
    assert d.words()[2] == int(r.TxFlag.First | r.TxFlag.Last | r.TxFlag.Csum | r.TxFlag.Own) \
        | 10 << 11 | 8 << 19
    back = r.TxDescriptor.from_words(d.words()[:2] + (d.words()[2] | r.TxFlag.PipeError, 0))
    assert back.pipe_error == 1 and back.csum_start == 10 and back.csum_field == 8


def test_completion_errors_in_word_0_and_csum_in_word_2():
    c = r.Completion(kind=r.CqKind.Rx, phase=1, errors=r.CqError.CrcError | r.CqError.PipeError,
                     index=5, csum=0xBEEF, cells=3)
    w = c.words()
    assert w[0] == int(r.CqKind.Rx) | 1 << 7 | 0x41 << 8 | 5 << 16
    assert w[2] == 0xBEEF | 3 << 16
    assert r.Completion.from_words(w).errors == r.CqError.CrcError | r.CqError.PipeError


def test_checksum_field_helpers():
    assert r.csum_field_offset(10, 8) == 36
    assert r.csum_field_fits(38, 10, 8) and not r.csum_field_fits(37, 10, 8)
    assert not r.csum_field_fits(0, 0, 0) and r.csum_field_fits(2, 0, 0)
    assert r.tx_csum_result(0x1234) == 0xEDCB
    assert r.tx_csum_result(0xFFFF) == 0xFFFF  # a computed 0 goes out as all ones (RFC 768)
    assert r.tx_csum_result(0) == 0xFFFF
    with pytest.raises(ValueError, match="folded"):
        r.tx_csum_result(0x10000)


def test_vc_entry_pipe_fields():
    e = r.VcEntry(enable=1, rx_csum=1, rx_swap=r.RxSwap.Word, pipe_start=17)
    assert e.to_int() == 1 | 1 << 1 | 1 << 16 | 2 << 17 | 17 << 19
    assert r.VcEntry.from_int(e.to_int()) == e
    with pytest.raises(ValueError, match="RxSwap"):
        r.VcEntry(rx_swap=3)


def test_rx_descriptor_status_word():
    d = r.RxDescriptor(addr=0x1000, size=4096, length=100, vci=7, first=1, last=1, crc_error=1)
    assert d.words()[2] == 7 | int(r.RxFlag.First | r.RxFlag.Last | r.RxFlag.CrcError)
    assert d.words()[1] == 100 << 16 | 4096


def test_reserved_bits_are_ignored_on_unpack():
    d = r.TxDescriptor(addr=4, length=8, own=1)
    words = list(d.words())
    words[2] |= 0x1F << 3 | 0xF << 27  # res0, res1
    assert r.TxDescriptor.from_words(words) == d


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="TxDescriptor.length"):
        r.TxDescriptor(length=1 << 16)
    with pytest.raises(TypeError, match="VcEntry.pool"):
        r.VcEntry(pool="0")
    with pytest.raises(ValueError, match="word aligned"):
        r.RxDescriptor(addr=2, size=64)
    with pytest.raises(ValueError, match="16 bytes"):
        r.Completion.unpack(bytes(15))
    with pytest.raises(ValueError, match="unwritten"):
        r.Completion.unpack(bytes(16))
    with pytest.raises(ValueError, match="4 words"):
        r.TxDescriptor.from_words((0, 0, 0))
    with pytest.raises(ValueError, match="VcState"):
        r.VcEntry(state=3)


def test_aal5_cells():
    assert r.aal5_cells(0) == 1
    assert r.aal5_cells(40) == 1 and r.aal5_cells(41) == 2
    assert r.aal5_cells(r.MAX_PDU) == r.MAX_PDU_CELLS == 1366
    with pytest.raises(ValueError, match="AAL5 PDU"):
        r.aal5_cells(r.MAX_PDU + 1)


# --- timing -----------------------------------------------------------------------------------
def test_clock_and_dma_agree_with_the_platform():
    assert t.CLOCK_HZ * t.CLOCK_PERIOD_PS == 10**12
    assert t.CLOCK_PERIOD_PS == PROFILE.mem_cycle_ps.value
    assert t.DMA_MAX_BURST_WORDS == PROFILE.dma_burst_words.value
    for words in (1, 4, 12, 13, 64):
        for write in (False, True):
            memory_cycles = t.dma_burst_cycles(words, write=write) - t.DMA_SETUP_CYCLES
            assert memory_cycles * t.CLOCK_PERIOD_PS == PROFILE.dma_ps(4 * words, write)
    assert t.dma_burst_cycles(64, write=False) == t.DMA_SETUP_CYCLES + t.DMA_READ_BURST_CYCLES
    with pytest.raises(ValueError, match="DMA burst"):
        t.dma_burst_cycles(65, write=True)


def test_link_rates_and_cell_slot():
    assert t.PAYLOAD_RATE_BPS == 149_760_000 == t.LINE_RATE_BPS * 260 // 270
    assert t.CELL_SLOT_CYCLES == t.Fraction(424 * 12_500_000, 149_760_000)
    assert [t.cell_slot_edge(k) for k in range(4)] == [0, 36, 71, 107]
    # slots never drift: 936 slots are exactly 33125 cycles
    assert t.cell_slot_edge(936) == 33125
    assert t.CELL_WORDS * 4 == 4 + r.CELL_PAYLOAD_BYTES
    assert t.CELL_WORDS < t.CELL_SLOT_CYCLES
    with pytest.raises(ValueError, match="cell slot"):
        t.cell_slot_edge(-1)


def test_the_card_keeps_up_with_the_link_cell_by_cell():
    # Uncontended, one received and one transmitted cell's payload bursts fit in a slot.
    assert t.rx_cell_dma_cycles() + t.tx_cell_dma_cycles() < t.CELL_SLOT_CYCLES
    assert t.RX_DMA_START_CYCLES + t.rx_cell_dma_cycles() < t.CELL_SLOT_CYCLES
    assert t.entry_dma_cycles(write=False) == t.DMA_SETUP_CYCLES + 4 + t.DMA_READ_OVERHEAD
