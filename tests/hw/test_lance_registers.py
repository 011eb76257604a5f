"""The LANCE register map against the Am7990 layout (as the BSD drivers define it)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from hw.lance import registers as r


def test_window_offsets_match_pmad_aa() -> None:
    # 4.4BSD pmax if_le.c: LE_OFFSET_RAM/LANCE/ROM; struct lereg1 {rdp; pad; rap; pad}.
    assert (r.RAM_OFFSET, r.LANCE_OFFSET, r.ROM_OFFSET) == (0x0, 0x100000, 0x1C0000)
    assert (r.RDP_OFFSET, r.RAP_OFFSET) == (0x100000, 0x100004)
    assert r.BUFFER_RAM_SIZE_DEFAULT <= r.LANCE_OFFSET  # the RAM fits below the registers


def test_csr0_bits_match_am7990() -> None:
    # NetBSD am7990reg.h LE_C0_*: ERR 0x8000 ... INIT 0x0001.
    expected = dict(ERR=0x8000, BABL=0x4000, CERR=0x2000, MISS=0x1000, MERR=0x0800,
                    RINT=0x0400, TINT=0x0200, IDON=0x0100, INTR=0x0080, INEA=0x0040,
                    RXON=0x0020, TXON=0x0010, TDMD=0x0008, STOP=0x0004, STRT=0x0002,
                    INIT=0x0001)
    assert {f.name: f.value for f in r.CSR0} == expected
    assert r.CSR0.write_one_to_clear() == 0x7F00
    assert r.CSR0.ERR not in r.CSR0.interrupt_sources()
    assert (r.CSR3.BSWP, r.CSR3.ACON, r.CSR3.BCON) == (4, 2, 1)


def test_descriptor_bits_match_am7990() -> None:
    # NetBSD am7990reg.h LE_R1_* / LE_T1_* are the high byte of RMD1/TMD1; LE_T3_* is TMD3.
    assert {f.name: f.value >> 8 for f in r.RMD1} == dict(
        ENP=0x01, STP=0x02, BUFF=0x04, CRC=0x08, OFLO=0x10, FRAM=0x20, ERR=0x40, OWN=0x80)
    assert {f.name: f.value >> 8 for f in r.TMD1} == dict(
        ENP=0x01, STP=0x02, DEF=0x04, ONE=0x08, MORE=0x10, ADD_FCS=0x20, ERR=0x40, OWN=0x80)
    assert {f.name: f.value for f in r.TMD3} == dict(
        RTRY=0x0400, LCAR=0x0800, LCOL=0x1000, UFLO=0x4000, BUFF=0x8000)
    assert r.Mode.PROM == 0x8000 and r.Mode.DTCR == 0x0008 and r.Mode.DRX == 0x0001


def test_bcnt_is_twos_complement_with_ones() -> None:
    assert r.bcnt_encode(1520) == 0xF000 | (0x1000 - 1520)  # 0xFA10
    assert r.bcnt_encode(1520) == 0xFA10
    assert r.bcnt_decode(0xFA10) == 1520
    assert r.bcnt_decode(r.bcnt_encode(4096)) == 4096
    for bad in (0, 4097, -1):
        with pytest.raises(ValueError, match="buffer size"):
            r.bcnt_encode(bad)


def test_rx_descriptor_layout() -> None:
    d = r.RxDescriptor(addr=0x12_3458, flags=r.RMD1.OWN | r.RMD1.STP | r.RMD1.ENP, size=1520,
                       mcnt=64)
    assert d.encode() == (0x3458, 0x8312, 0xFA10, 64)
    assert d.pack() == bytes([0x58, 0x34, 0x12, 0x83, 0x10, 0xFA, 64, 0])
    assert r.RxDescriptor.unpack(d.pack()) == d


def test_tx_descriptor_layout() -> None:
    d = r.TxDescriptor(addr=0x00_4000, flags=r.TMD1.OWN | r.TMD1.STP | r.TMD1.ENP, size=60,
                       errors=r.TMD3.RTRY, tdr=5)
    assert d.encode() == (0x4000, 0x8300, 0xF000 | (0x1000 - 60), 0x0405)
    assert r.TxDescriptor.decode(d.encode()) == d


@given(addr=st.integers(0, 0xFFFFFF), flags=st.integers(0, 0xFF), size=st.integers(1, 4096),
       mcnt=st.integers(0, 0xFFF))
def test_rx_descriptor_round_trip(addr: int, flags: int, size: int, mcnt: int) -> None:
    d = r.RxDescriptor(addr=addr, flags=r.RMD1(flags << 8), size=size, mcnt=mcnt)
    assert r.RxDescriptor.decode(d.encode()) == d
    assert r.RxDescriptor.unpack(d.pack()) == d


@given(addr=st.integers(0, 0xFFFFFF), flags=st.integers(0, 0xFF), size=st.integers(1, 4096),
       errors=st.sampled_from([0] + [int(f) for f in r.TMD3]), tdr=st.integers(0, 0x3FF))
def test_tx_descriptor_round_trip(addr: int, flags: int, size: int, errors: int,
                                  tdr: int) -> None:
    d = r.TxDescriptor(addr=addr, flags=r.TMD1(flags << 8), size=size, errors=r.TMD3(errors),
                       tdr=tdr)
    assert r.TxDescriptor.decode(d.encode()) == d
    assert r.TxDescriptor.unpack(d.pack()) == d


def test_descriptor_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="addr"):
        r.RxDescriptor(addr=1 << 24)
    with pytest.raises(ValueError, match="RMD1 flags"):
        r.RxDescriptor(flags=0x0001)
    with pytest.raises(ValueError, match="TMD3 errors"):
        r.TxDescriptor(errors=0x2000)  # reserved bit
    with pytest.raises(ValueError, match="8 bytes"):
        r.RxDescriptor.unpack(bytes(7))
    with pytest.raises(ValueError, match="4 16-bit words"):
        r.TxDescriptor.decode((0, 0, 0))


def test_init_block_layout() -> None:
    ib = r.InitBlock(mode=r.Mode.PROM, padr=bytes([0x08, 0x00, 0x2B, 0x01, 0x02, 0x03]),
                     ladrf=0x0123_4567_89AB_CDEF, rdra=0x00_0018, rlen=64,
                     tdra=0x01_0218, tlen=16)
    w = ib.encode()
    assert w[0] == 0x8000
    assert w[1:4] == (0x0008, 0x012B, 0x0302)  # first address byte in the low byte
    assert w[4:8] == (0xCDEF, 0x89AB, 0x4567, 0x0123)
    assert w[8:10] == (0x0018, 6 << 13 | 0x00)  # RLEN = log2(64) in bits 15:13
    assert w[10:12] == (0x0218, 4 << 13 | 0x01)
    assert ib.pack()[2:8] == ib.padr  # little-endian words keep the address in wire order
    assert r.InitBlock.unpack(ib.pack()) == ib


@given(mode=st.integers(0, 0xFFFF), padr=st.binary(min_size=6, max_size=6),
       ladrf=st.integers(0, (1 << 64) - 1), rdra=st.integers(0, 0x1FFFFF),
       rlog=st.integers(0, 7), tdra=st.integers(0, 0x1FFFFF), tlog=st.integers(0, 7))
def test_init_block_round_trip(mode, padr, ladrf, rdra, rlog, tdra, tlog) -> None:
    ib = r.InitBlock(mode=r.Mode(mode), padr=padr, ladrf=ladrf, rdra=rdra * 8, rlen=1 << rlog,
                     tdra=tdra * 8, tlen=1 << tlog)
    assert r.InitBlock.decode(ib.encode()) == ib


def test_init_block_errors() -> None:
    with pytest.raises(ValueError, match="power of two"):
        r.InitBlock(rlen=3)
    with pytest.raises(ValueError, match="power of two"):
        r.InitBlock(tlen=256)
    with pytest.raises(ValueError, match="quadword"):
        r.InitBlock(rdra=4)
    with pytest.raises(ValueError, match="padr"):
        r.InitBlock(padr=bytes(5))


def test_csr1_csr2() -> None:
    assert r.csr1_csr2(0x01_2344) == (0x2344, 0x01)
    assert r.iadr_from_csr1_csr2(0x2344, 0x01) == 0x01_2344
    with pytest.raises(ValueError, match="word aligned"):
        r.csr1_csr2(0x3)
    rng = random.Random(3)
    for _ in range(100):
        a = rng.randrange(0, 1 << 24) & ~1
        assert r.iadr_from_csr1_csr2(*r.csr1_csr2(a)) == a


@pytest.mark.parametrize("ram, rx, tx", [(64 * 1024, 32, 8), (128 * 1024, 64, 16)])
def test_ring_sizes_and_layout(ram: int, rx: int, tx: int) -> None:
    assert r.ring_sizes(ram) == r.RingSizes(rx, tx)
    lay = r.BufferLayout(ram)
    assert lay.end <= ram
    assert lay.rdra % 8 == 0 and lay.tdra % 8 == 0
    assert lay.tdra == lay.rdra + rx * 8
    assert len(lay.rx_buffers) == rx and len(lay.tx_buffers) == tx
    bufs = lay.rx_buffers + lay.tx_buffers
    assert all(b - a == r.BUFFER_SIZE for a, b in zip(bufs, bufs[1:]))
    assert bufs[0] >= lay.tdra + tx * 8
    ib = lay.init(padr=bytes(6))
    assert (ib.rlen, ib.tlen, ib.rdra, ib.tdra) == (rx, tx, lay.rdra, lay.tdra)
    with pytest.raises(IndexError):
        lay.rmd(rx)
    with pytest.raises(ValueError, match="64 KiB or 128 KiB"):
        r.ring_sizes(32 * 1024)


def test_amaranth_layouts_match_words() -> None:
    assert r.csr0_layout.size == 16
    for name, flag in (("own", r.RMD1.OWN), ("stp", r.RMD1.STP), ("crc", r.RMD1.CRC)):
        assert 1 << r.rmd1_layout[name].offset == flag
    for name, flag in (("add_fcs", r.TMD1.ADD_FCS), ("more", r.TMD1.MORE)):
        assert 1 << r.tmd1_layout[name].offset == flag
    assert 1 << r.tmd3_layout["uflo"].offset == r.TMD3.UFLO
    assert 1 << r.csr0_layout["inea"].offset == r.CSR0.INEA
    assert r.rx_descriptor_layout.size == 64 and r.tx_descriptor_layout.size == 64
    # The whole-descriptor layouts agree with the dataclass encoding.
    d = r.RxDescriptor(addr=0x12_3458, flags=r.RMD1.OWN | r.RMD1.ERR, size=100, mcnt=77)
    w = d.encode()
    value = w[0] | w[1] << 16 | w[2] << 32 | w[3] << 48
    lay = r.rx_descriptor_layout

    def field(*path: str) -> int:
        offset, shape = 0, lay
        for name in path:
            f = shape[name]
            offset, shape = offset + f.offset, f.shape
        return (value >> offset) & ((1 << f.width) - 1)

    assert field("ladr") == 0x3458 and field("rmd1", "hadr") == 0x12
    assert field("rmd1", "own") == 1 and field("rmd1", "err") == 1 and field("rmd1", "crc") == 0
    assert field("ones") == 0xF and field("mcnt") == 77
    assert field("bcnt") == (0x1000 - 100)
