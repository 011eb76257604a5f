"""Cheetah's ``hwilp`` over the AN2 card's model with its hardware pipes (hw/an2, issue 17).

The kernel writes the card's pipes into the VC entries of the environment that asks (read back
from the card's VC table); the driver's Csum PDUs leave with TCP checksums the card completed
(scapy recomputes them), and a VC with ``rx_csum`` hands up each PDU with the card's sum, which
verifies a good segment with the pseudo-header and not one corrupted before the card saw it.
"""
from __future__ import annotations

import pytest

from hw.an2.registers import VcEntry
from sim.cpu import IO_WAIT, SYSCALL
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sw.drivers.an2 import SummedPdu
from sw.libos.ilp import inloop
from sw.libos.ilp.pipes import CKSUM
from sw.libos.net import checksum as ck
from sw.libos.net import ipv4
from sw.libos.net.atm import IP_PIPE_START, LLC_SNAP_IP
from sw.libos.net.tcp import ACK, PSH, build_segment

from test_aegis_vc import VC0, VC1, Rig
from test_an2_driver import drain, pair, run, up

SRC, DST = ipv4.addr("10.0.1.1"), ipv4.addr("10.0.2.1")


def _cat(cpu, name):
    c = cpu.report().by_category
    return c[name].cycles if name in c else 0


def test_aegis_writes_the_card_pipes_into_the_environments_vcs_only():
    rig = Rig()
    ae, cpu = rig.aegis, rig.server.cpu
    rig.run(ae.bind_vc(rig.a, VC0))
    rig.run(ae.bind_vc(rig.b, VC1))
    sys0, io0 = _cat(cpu, SYSCALL), _cat(cpu, IO_WAIT)
    assert rig.run(ae.install_card_rx_pipes(rig.a, [CKSUM])) is True
    # One system call; the driver's two register stores (VcIndex, VcEntry) for a's one VC.
    assert _cat(cpu, SYSCALL) - sys0 == AEGIS.cycles(AEGIS.syscall_cycles)
    assert _cat(cpu, IO_WAIT) > io0
    a = VcEntry.from_int(rig.card.vc_table[VC0])
    assert (a.enable, a.rx_csum, a.pipe_start, a.owner) == \
        (1, 1, IP_PIPE_START, ae.owner_tag(rig.a))
    assert VcEntry.from_int(rig.card.vc_table[VC1]).rx_csum == 0      # b's VC untouched
    # Installing again rewrites nothing (the entries already have the pipes).
    io1 = _cat(cpu, IO_WAIT)
    rig.run(ae.install_card_rx_pipes(rig.a, [CKSUM]))
    assert _cat(cpu, IO_WAIT) == io1


def test_a_vc_bound_after_the_pipes_gets_them():
    rig = Rig()
    ae = rig.aegis
    rig.aegis.claim_vc(rig.a, VC1)          # claimed, not yet written
    assert rig.run(ae.install_card_rx_pipes(rig.a, [CKSUM])) is True
    rig.run(ae.program_vc(VC1))
    rig.run(ae.bind_vc(rig.a, VC0))
    for vci in (VC0, VC1):
        e = VcEntry.from_int(rig.card.vc_table[vci])
        assert (e.rx_csum, e.pipe_start) == (1, IP_PIPE_START), vci


# -- the driver over two cards: the card completes and sums ------------------------------------
def _pdu(payload: bytes, *, in_card: bool) -> bytes:
    """LLC/SNAP, IP and a TCP segment (its checksum left to the card: the pseudo-header's sum
    in the field)."""
    seg, _ = build_segment(SRC, DST, 80, 40000, 1, 2, ACK | PSH, 8192, [(payload, None)],
                           sum_in_copy=in_card)
    ip = ipv4.build_header(SRC, DST, ipv4.PROTO_TCP, len(seg), ident=3)
    return LLC_SNAP_IP + ip + bytes(seg)


def _tcp_ok(datagram: bytes) -> bool:
    """scapy's recomputed TCP checksum equals the one the datagram carries."""
    inet = pytest.importorskip("scapy.layers.inet")
    ip = inet.IP(datagram)
    sent = ip[inet.TCP].chksum
    del ip[inet.TCP].chksum
    return inet.IP(bytes(ip))[inet.TCP].chksum == sent


def _sum_verifies(pdu: SummedPdu) -> bool:
    """The stack's check: the card's sum of the datagram, the verified IP header taken as 0,
    plus the pseudo-header is one's-complement zero."""
    dgram = bytes(pdu[pdu.csum_from:])
    hl = (dgram[0] & 15) * 4
    seg, _ = inloop.segment_sum(pdu.csum, dgram, hl, len(dgram), zero=(0, hl))
    return ck.verify_sum(seg, ck.pseudo_header_sum(SRC, DST, ipv4.PROTO_TCP, len(dgram) - hl))


@pytest.mark.parametrize("size", [0, 1, 41, 1000, 9000])
def test_the_card_completes_the_checksum_and_sums_what_it_receives(size):
    k, a, b = pair()
    payload = bytes((i * 13 + 5) & 0xFF for i in range(size))
    marked = _pdu(payload, in_card=True)

    async def go():
        await up(a, b)
        await b.drv.open_vc(5, rx_csum=True, pipe_start=IP_PIPE_START)
        await a.drv.send(5, marked, csum=(14, 8))
        await a.drv.flush()
    run(k, go())
    (vci, got), = drain(b)
    assert vci == 5 and isinstance(got, SummedPdu) and got.csum_from == 2 * IP_PIPE_START
    # What the stack would have sent, summed: the card filled in exactly that field.
    assert bytes(got) == _pdu(payload, in_card=False)
    assert _tcp_ok(bytes(got[8:])) and _sum_verifies(got)
    assert (a.drv.pipe_stats.tx_csum_pdus, b.drv.pipe_stats.rx_csum_pdus,
            a.drv.pipe_stats.pipe_errors) == (1, 1, 0)


def test_a_segment_corrupted_before_the_card_does_not_verify():
    k, a, b = pair()
    bad = bytearray(_pdu(b"x" * 100, in_card=False))
    bad[-1] ^= 0x10                   # after the sender summed it; the AAL5 CRC covers it

    async def go():
        await up(a, b)
        await b.drv.open_vc(5, rx_csum=True, pipe_start=IP_PIPE_START)
        await a.drv.send(5, bytes(bad))
        await a.drv.flush()
    run(k, go())
    (_, got), = drain(b)
    assert bytes(got) == bytes(bad) and b.drv.stats.crc_errors == 0
    assert not _sum_verifies(got) and not _tcp_ok(bytes(got[8:]))


def test_a_field_outside_the_pdu_is_refused_by_the_driver():
    k, a, b = pair()
    errors = []

    async def go():
        await up(a, b)
        try:
            await a.drv.send(5, b"\0" * 30, csum=(14, 8))
        except ValueError as e:
            errors.append(e)
    run(k, go())
    assert "does not lie inside a PDU of 30 bytes" in str(errors[0])
    assert a.drv.pipe_stats.tx_csum_pdus == 0
