"""The AN2 card's hardware pipes (hw/an2/pipes.py) and what the model does with them: the pipes
are the software's, the checksums the card puts in IP packets are what scapy computes, and the
receive sum with the pseudo-header added verifies good packets and refuses corrupted ones.

The RTL does the same edge for edge: tests/hw/test_an2_equivalence.py's pipe cases; on Icarus
and Verilator: tests/hw/cocotb_an2.py's ``pipes`` test.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import LLC, SNAP
from scapy.packet import Raw

from hw.an2 import pipes as hp
from hw.an2.registers import CqError, Reg, RxSwap, VcEntry
from hw.ilp.registers import words_of
from sim.kernel import Kernel
from sim.media.aal5 import reassemble
from sim.media.atm import AtmLink, slot_start
from sw.libos.ilp import pipes as sp

from test_an2_equivalence import _cells, _ModelCard, _rfc1071, _swapped
from test_an2_gateware import Host, P

#: LLC/SNAP (RFC 2684) and a 20-byte IPv4 header: the transport header's first byte.
_L4 = 8 + 20


def test_the_card_runs_the_software_pipes():
    assert hp.CKSUM == sp.CKSUM and hp.BSWAP == sp.BSWAP
    assert hp.TX_PIPES == (sp.CKSUM,) and hp.RX_PIPES == (sp.CKSUM,)
    words = np.array([0x11223344, 0xAABBCCDD], dtype=np.uint32)
    assert [hex(w) for w in hp.swap_words(words, offset=0, start=0, mode=RxSwap.Halfword)] == \
        ["0x22114433", "0xbbaaddcc"]


@pytest.mark.parametrize("mode", list(RxSwap))
def test_swap_payload_against_a_plain_oracle(mode):
    rnd = random.Random(int(mode))
    for _ in range(50):
        n, start, offset = rnd.randrange(1, 60), 2 * rnd.randrange(20), 4 * rnd.randrange(3)
        data = bytes(rnd.randrange(1, 256) for _ in range(n))
        # the oracle works on a whole PDU from byte 0: put the data at ``offset``
        whole = bytes(offset) + data
        want = _swapped(whole, start, int(mode))[offset:]
        padded = data + bytes(-n % 4)
        assert hp.swap_payload(padded, offset=offset, start=start, mode=mode)[:n] == want


def test_ones_sum_is_rfc_1071_over_the_masked_bytes():
    rnd = random.Random(3)
    for _ in range(100):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 80)))
        start = 2 * rnd.randrange(40)
        end = rnd.randrange(len(data) + 1)
        got = hp.ones_sum(hp.masked_words(data, offset=0, start=start, end=end))
        assert got == _rfc1071(data[start:end] if start < end else b"")
    assert hp.ones_sum(words_of(b"")) == 0


# --- the model with pipes on scapy's packets ---------------------------------------------------
def _run_model(script, rx_cells=(), *, end_edge=4000, reference=True):
    """``script(card, host)`` on the model (its reference or its fast path); ``rx_cells``
    sent one per slot from slot 20. Returns the host helper and the cells the card sent, each
    with its arrival time."""
    k = Kernel()
    link = AtmLink(k)
    model = _ModelCard(k, link.b)
    model.m.reference = reference
    sent = []
    link.a.attach(lambda c: sent.append((k.now, c)))
    for i, c in enumerate(rx_cells):
        k.call_at(slot_start(20 + i), lambda c=c: link.a.send(c))
    host = Host(model, model.mem)
    task = k.spawn(script(model, host))
    k.run(until=end_edge * P)
    assert task.done and task.exception is None, task.exception
    return host, sent


def _packets(rnd):
    """LLC/SNAP IPv4 packets (UDP and TCP), as scapy builds them with their checksums."""
    out = []
    for i in range(6):
        data = bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 1, 13, 40, 99, 600))))
        l4 = UDP(sport=1000 + i, dport=53) if i % 2 else TCP(sport=80, dport=2000 + i, seq=i)
        out.append(bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
                         / IP(src="10.0.0.1", dst=f"10.0.0.{i + 2}") / l4 / Raw(data)))
    return out


def _pseudo_sum(raw: bytes) -> int:
    """The folded sum of ``raw``'s IPv4 pseudo-header (RFC 768 / 793)."""
    ip = LLC(raw)[IP]
    pseudo = (bytes(raw[8 + 12:8 + 20]) + bytes([0, ip.proto])
              + (len(raw) - _L4).to_bytes(2, "big"))
    return _rfc1071(pseudo)


def _field(raw: bytes) -> int:
    """The checksum field's 16-bit index in the transport header."""
    return 3 if LLC(raw).haslayer(UDP) else 8


def test_transmitted_checksums_are_what_scapy_computes():
    packets = _packets(random.Random(7))

    async def script(card, host):
        await host.setup({5: 0}, buffers=4)
        for i, raw in enumerate(packets):
            at = _L4 + 2 * _field(raw)
            # The host's part: the pseudo-header's sum in the field (CHECKSUM_PARTIAL).
            host_copy = raw[:at] + _pseudo_sum(raw).to_bytes(2, "big") + raw[at + 2:]
            host.queue(5, host_copy, cuts=(i * 7 + 3,), tag=i, align=i % 4,
                       csum=(_L4 // 2, _field(raw)))
        await host.doorbell()

    host, sent = _run_model(script, end_edge=6000)
    assert [c.errors for c in host.completions()] == [0] * len(packets)
    cells, pdus = [], []
    for _, c in sent:
        cells.append(c.payload)
        if c.pt & 1:
            pdus.append(reassemble(cells).payload)
            cells = []
    assert pdus == packets          # byte for byte what scapy built, checksums included


def test_receive_sum_verifies_good_packets_and_not_corrupted_ones():
    rnd = random.Random(8)
    packets = _packets(rnd)
    bad = bytearray(packets[3])
    bad[-1 if len(bad) > _L4 + 20 else _L4] ^= 0x10    # a payload bit flipped, AAL5 CRC new
    pdus = [*packets, bytes(bad)]
    rx = [c for p in pdus for c in _cells(9, p)]

    async def script(card, host):
        await host.setup({9: 0}, buffers=40)
        await card.write(Reg.VcIndex, 9)
        await card.write(Reg.VcEntry, VcEntry(enable=1, rx_csum=1, pipe_start=_L4 // 2).to_int())

    host, _ = _run_model(script, rx, end_edge=800 + 40 * len(rx))
    got = host.received()
    assert [data for _, data in got] == pdus
    for (c, data), p in zip(got, pdus):
        assert c.errors == CqError(0)
        folded = c.csum + _pseudo_sum(p)
        folded = (folded & 0xFFFF) + (folded >> 16)
        assert (folded == 0xFFFF) == (p is not pdus[-1]), (c, p)


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_and_reference_paths_agree_with_pipes_on(seed):
    """Csum PDUs out while PDUs come in on summing, swapping VCs: the fast path's memory,
    completions, interrupts and cells (with their times) are the reference path's."""
    rnd = random.Random(seed)
    packets = _packets(rnd)
    entries = {9: VcEntry(enable=1, rx_csum=1, rx_swap=RxSwap.Word, pipe_start=_L4 // 2),
               10: VcEntry(enable=1, rx_csum=1, rx_swap=RxSwap.Halfword, pipe_start=3),
               5: VcEntry(enable=1)}
    rx = [c for i, p in enumerate(packets) for c in _cells(9 + i % 2, p)]

    async def script(card, host):
        await host.setup(dict.fromkeys(entries, 0), buffers=40, bufsize=rnd.choice((64, 256)))
        for v, e in entries.items():
            await card.write(Reg.VcIndex, v)
            await card.write(Reg.VcEntry, e.to_int())
        for i, raw in enumerate(packets):
            host.queue(5, raw, cuts=(i * 5 + 1,), tag=i, align=i % 4,
                       csum=(_L4 // 2, _field(raw)) if i % 3 else None)
        await host.doorbell()

    runs = [_run_model(script, rx, end_edge=1500 + 90 * len(rx), reference=ref)
            for ref in (True, False)]
    (h1, s1), (h2, s2) = runs
    assert s1 == s2 and len(s1) > 0
    assert h1.completions() == h2.completions() and h1.received() == h2.received()
    assert bytes(h1.mem) == bytes(h2.mem)
    # (the burst log sees only the reference path's Memory.dma_read / dma_write calls; the
    # cells' arrival times and the completions' coalesced interrupts pin the timing)
    assert h1.card.irq_edges == h2.card.irq_edges
    assert any(c.csum for c, _ in h1.received())
