"""Cheetah's ``hwilp`` switch (issue 17): the AN2 card's checksum pipes, bound by Aegis.

The stage and its variants; the kernel binding the card's pipes for the environment that asks
(its VC entries written with ``rx_csum``, charged as a system call and the driver's register
writes; refusals naming the pipe; a card without pipes binds none); the stack checking a TCP
checksum with the card's sum (a few adds instead of the in_cksum pass; a corrupted segment
still dropped and counted); and a segment leaving the stack with the pseudo-header's sum in
its field and the interface asking the card to complete it (Csum, csum_start, csum_field).
"""
from __future__ import annotations

import pytest

from hw.an2.registers import VcEntry
from hw.ilp.registers import Pipe, PipeError, verify
from sim.cpu import CHECKSUM, CPU, IO_WAIT, SYSCALL
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sim.time import MS
from sw.cheetah import ALL_STAGES, STAGES, CheetahConfig, stage, variant
from sw.exokernel.aegis import Aegis
from sw.libos.ilp import inloop
from sw.libos.ilp.pipes import BSWAP, CKSUM, COPY
from sw.libos.net import NetStack
from sw.libos.net import checksum as ck
from sw.libos.net import ipv4
from sw.libos.net.atm import (FRAME_HEADER_LEN, HEADER_LEN, IP_PIPE_START, LLC_SNAP_IP,
                              An2Interface, AtmLinkLayer, CardSumFrame, build_frame)
from sw.libos.net.tcp import DROP, SYN, build_segment

from test_aegis_vc import VC0, VC1, Rig

SERVER, CLIENT = ipv4.addr("10.0.0.1"), ipv4.addr("10.0.0.2")


# -- the stage ---------------------------------------------------------------------------------
def test_hwilp_is_the_stage_after_ilp_and_off_everywhere_before():
    assert ALL_STAGES[-1] == "+hwilp"
    assert stage("+hwilp") == CheetahConfig(ash=True, ilp=True, hwilp=True)
    assert not any(stage(s).hwilp for s in STAGES + ("+ash", "+ilp"))
    assert "hwilp" not in stage("+ilp").switches()              # earlier rows unchanged
    assert stage("+hwilp").switches()["hwilp"] is True
    assert variant("+hwilp.no-hwilp") == stage("+ilp")
    assert variant("+hwilp.no-ash.no-ilp") == CheetahConfig(hwilp=True)


# -- the kernel binds the card's pipes ---------------------------------------------------------
def _cat(cpu, name):
    c = cpu.report().by_category
    return c[name].cycles if name in c else 0


#: An observing pipe the card does not have: an xor of the words.
XSUM = verify(Pipe("xsum", body=[("ldw", "r1"), ("xor", "r6", "r6", "r1")], results=["r6"]))


@pytest.mark.parametrize("pipes, match", [([COPY], "changes words"), ([BSWAP], "changes words"),
                                          ([XSUM], "no rx pipe 'xsum'")])
def test_pipes_the_card_lacks_or_that_change_words_are_refused(pipes, match):
    rig = Rig()
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    err = rig.run(rig.aegis.install_card_rx_pipes(rig.a, pipes))
    assert isinstance(err, PipeError) and match in str(err)
    assert VcEntry.from_int(rig.card.vc_table[VC0]).rx_csum == 0
    err = rig.run(rig.aegis.install_card_tx_pipes(rig.a, pipes))
    assert isinstance(err, PipeError)
    assert rig.server.netdev.link_layer.card_completes_sums is False


class _PlainCard:
    """An interface without pipes of its own (as the LANCE's)."""

    mac = bytes(6)

    async def send(self, frame):
        pass

    def attach(self, fn):
        pass


def test_a_card_without_pipes_binds_none():
    k = Kernel()
    ae = Aegis(Memory(k, 1 << 20, profile=AEGIS), cpu=CPU(k, AEGIS, "cpu"))
    ae.bind_netdev(_PlainCard())
    env = ae.create_env("cheetah")
    got = []

    async def go():
        got.append(await ae.install_card_rx_pipes(env, [CKSUM]))
        got.append(await ae.install_card_tx_pipes(env, [CKSUM]))
    k.spawn(go())
    k.run(until=MS)
    assert got == [False, False]
    assert _cat(ae.cpu, SYSCALL) == 0           # nothing bound, nothing charged


# -- receive: the stack checks TCP with the card's sum ----------------------------------------
class _AtmDevice:
    """A stack's ATM interface that records what it is asked to send."""

    mac = bytes(6)

    def __init__(self):
        self.link_layer = AtmLinkLayer({CLIENT: 5})
        self.mtu = self.link_layer.mtu
        self.sent = []

    async def send(self, frame):
        self.sent.append(frame)


def _syn_frame(*, corrupt: bool = False, card: bool = True):
    seg, _ = build_segment(CLIENT, SERVER, 40000, 80, 1000, 0, SYN, 8192, [(b"GET", None)],
                           mss=1460)
    ip = ipv4.build_header(CLIENT, SERVER, ipv4.PROTO_TCP, len(seg), ident=7)
    datagram = bytearray(ip + seg)
    if corrupt:
        datagram[-1] ^= 0x40                   # a bit flipped on the way, after the sender
    frame = build_frame(5, LLC_SNAP_IP + bytes(datagram))
    if not card:
        return frame
    # The card sums the datagram's bytes as they arrived (from the IP header: pipe_start).
    return CardSumFrame(frame, ck.ones_sum(bytes(datagram)), HEADER_LEN)


def _stack_takes(frame):
    k = Kernel()
    cpu = CPU(k, AEGIS, "cpu")
    dev = _AtmDevice()
    st = NetStack(k, dev, SERVER, cpu=cpu)
    accepted = []
    st.listen(80, lambda: accepted.append(1) or DROP)

    async def go():
        await st.process(frame)
    k.spawn(go())
    k.run(until=MS)
    return st, cpu, accepted


def test_the_card_sum_checks_the_segment_for_a_few_adds():
    card, card_cpu, acc = _stack_takes(_syn_frame())
    plain, plain_cpu, acc_plain = _stack_takes(_syn_frame(card=False))
    assert acc == acc_plain == [1]              # the same SYN reached the listener
    assert card.tcp.stats.bad_checksum == plain.tcp.stats.bad_checksum == 0
    # Plain: the IP header and the in_cksum pass over segment + pseudo-header. Card: the IP
    # header and the pseudo-header's adds in line.
    seg_len = len(_syn_frame()) - HEADER_LEN - ipv4.HEADER_LEN
    ip_sum = AEGIS.checksum_cycles(ipv4.HEADER_LEN)
    assert _cat(plain_cpu, CHECKSUM) == ip_sum + AEGIS.checksum_cycles(seg_len + 12)
    assert _cat(card_cpu, CHECKSUM) == ip_sum + inloop.adjust_cycles(12, AEGIS)
    assert _cat(card_cpu, CHECKSUM) < _cat(plain_cpu, CHECKSUM)


def test_a_corrupted_segment_is_still_dropped_as_a_bad_checksum():
    st, _, accepted = _stack_takes(_syn_frame(corrupt=True))
    assert st.tcp.stats.bad_checksum == 1 and accepted == []


# -- transmit: the card completes the checksum ------------------------------------------------
class _Driver:
    name = "an0"

    def __init__(self):
        self.sends = []

    async def send(self, vci, pieces, *, in_place=False, **kw):
        self.sends.append((vci, pieces, kw))


def test_a_segment_left_to_the_card_goes_with_csum_at_the_tcp_header():
    k = Kernel()
    drv = _Driver()
    iface = An2Interface(drv, esi=bytes(6), pvcs={CLIENT: 5})
    st = NetStack(k, iface, SERVER, cpu=CPU(k, AEGIS, "cpu"))
    st.tcp.sum_in_copy = True                   # what Cheetah sets with the pipes bound
    seg, summed = build_segment(SERVER, CLIENT, 80, 40000, 1, 2, SYN, 8192, [(b"x" * 33, None)],
                                sum_in_copy=True)
    assert summed == 0
    errors = []

    async def go():
        try:
            await st.ip_output(CLIENT, ipv4.PROTO_TCP, seg)
        except ValueError as e:                 # no card pipes bound: refused
            errors.append(e)
        iface.install_card_tx_pipes([CKSUM])
        await st.ip_output(CLIENT, ipv4.PROTO_TCP, seg)
        await k.sleep(MS)
    k.spawn(go())
    k.run(until=2 * MS)
    assert len(errors) == 1 and "link without one" in str(errors[0])
    (vci, pieces, kw), = drv.sends
    # LLC/SNAP 8 + IP 20 bytes = the TCP header at 16-bit unit 14, its checksum 8 units on.
    assert vci == 5 and kw == {"csum": (14, 8)}
    sdu = b"".join(pieces)
    tcp = sdu[28:]
    # The field holds the pseudo-header's sum (the seed); the card's sum over the segment
    # completes it to the checksum a receiver verifies.
    assert tcp[16:18] == ck.pseudo_header_sum(SERVER, CLIENT, ipv4.PROTO_TCP,
                                              len(tcp)).to_bytes(2, "big")
    done = tcp[:16] + ck.finish(ck.ones_sum(tcp)).to_bytes(2, "big") + tcp[18:]
    assert ck.verify(done, ck.pseudo_header_sum(SERVER, CLIENT, ipv4.PROTO_TCP, len(tcp)))
    assert iface.tx_card_sums == 1 and FRAME_HEADER_LEN == 4
    with pytest.raises(ValueError, match="card has no tx pipe"):
        iface.install_card_tx_pipes([XSUM])
