"""Cheetah's ``ilp`` switch (issue 17): the card copies' ILP pipes and the checksums they give.

The stage and its variants; the kernel's checks of the pipes a library hands it; on random
frames, that the TCP checksum the stack checks with the fused pipe's sum of the frame is the
stack's reference (``checksum.verify`` over the segment): the same segments accepted, a
segment with one bit changed dropped as a bad checksum; and that a segment sent unsummed,
its checksum completed by the transmit copy's pipe, is byte for byte the one the stack
builds when it sums it.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.ilp.registers import PipeError
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sw.cheetah import ALL_STAGES, STAGES, CheetahConfig, stage, variant
from sw.exokernel import Aegis, BindingError
from sw.libos.ilp.compiler import build
from sw.libos.ilp.inloop import (PMAD_PIO_IN, IlpFrame, fill_checksum, frame_sum, mark_sum_at,
                                 prepend_request, run_in_copy, segment_sum, sum_request)
from sw.libos.ilp.movement import PMAD_PIO
from sw.libos.net.gather import Gather, PhysRef
from sw.libos.ilp.pipes import BSWAP, CKSUM, COPY
from sw.libos.net import checksum as ck
from sw.libos.net import ether, ipv4
from sw.libos.net.stack import NetStack
from sw.libos.net.tcp import ACK, PSH, build_segment, parse_segment

SRV, CLI = ipv4.addr("10.0.1.1"), ipv4.addr("10.0.2.1")
SRV_MAC, CLI_MAC = bytes.fromhex("020000000101"), bytes.fromhex("020000000201")


# -- the stage -----------------------------------------------------------------------------------
def test_ilp_is_the_stage_after_ash():
    assert ALL_STAGES[-3:] == ("+ash", "+ilp", "+hwilp")
    assert stage("+ilp") == CheetahConfig(ash=True, ilp=True)
    assert not any(stage(s).ilp for s in STAGES + ("+ash",))
    assert "ilp" not in stage("cheetah").switches() and "ilp" not in stage("+ash").switches()
    assert stage("+ilp").switches()["ilp"] is True
    assert variant("no-ilp") == CheetahConfig(ash=True, hwilp=True)  # the last stage, ilp off
    assert variant("+ilp") == stage("+ilp") == variant("no-hwilp")
    assert variant("no-precomputed_checksums").ilp is False       # paper variants as before
    assert variant("+ilp.no-precomputed_checksums") == \
        CheetahConfig(ash=True, ilp=True, precomputed_checksums=False)
    with pytest.raises(ValueError, match="no-SWITCH, not 'ash'"):
        variant("+ilp.ash")
    with pytest.raises(ValueError, match="unknown Cheetah switch 'turbo'"):
        variant("+ilp.no-turbo")


# -- the kernel's checks -------------------------------------------------------------------------
class _Card:
    """An interface whose receive copy takes pipes (records what it was given)."""

    mac = SRV_MAC

    def __init__(self, fuses: bool = True):
        self.got = None
        if fuses:
            self.install_rx_pipes = lambda pipes: setattr(self, "got", build(pipes, PMAD_PIO_IN))

    async def send(self, frame):
        pass

    def attach(self, fn):
        pass


def _aegis(card) -> Aegis:
    k = Kernel()
    a = Aegis(Memory(k, 1 << 20, profile=AEGIS))
    a.bind_netdev(card)
    k.run(until=1)                                # the kernel's receive task starts
    return a


def test_kernel_fuses_an_observing_pipe_list_with_the_cards_copy():
    card = _Card()
    a = _aegis(card)
    env = a.create_env("cheetah")
    assert a.install_rx_pipes(env, [CKSUM]) is True
    assert card.got.pipes == (CKSUM,) and card.got.movement is PMAD_PIO_IN
    assert a.install_rx_pipes(env, [CKSUM]) is True               # its own again: replaced


def test_kernel_refuses_a_pipe_that_changes_words_and_a_second_owner():
    card = _Card()
    a = _aegis(card)
    env, other = a.create_env("cheetah"), a.create_env("other")
    with pytest.raises(PipeError, match="'bswap'.*changes words"):
        a.install_rx_pipes(env, [CKSUM, BSWAP])
    with pytest.raises(PipeError, match="'copy'"):
        a.install_rx_pipes(env, [COPY])
    assert card.got is None                                       # nothing installed
    a.install_rx_pipes(env, [CKSUM])
    with pytest.raises(BindingError, match="already runs the pipes of 'cheetah'"):
        a.install_rx_pipes(other, [CKSUM])


def test_a_card_without_a_copy_takes_nothing():
    a = _aegis(_Card(fuses=False))                                # a DMA card: no CPU copy
    assert a.install_rx_pipes(a.create_env("cheetah"), [CKSUM]) is False


def test_a_driver_copy_loop_refuses_a_program_that_stores():
    with pytest.raises(PipeError, match="bswap"):
        run_in_copy(build([BSWAP], PMAD_PIO_IN), bytes(64))


# -- the checksum the pipe gives -----------------------------------------------------------------
def _frame(payload: bytes, pad: bytes, seq: int) -> bytes:
    seg, _ = build_segment(CLI, SRV, 40000, 80, seq, 77, ACK | PSH, 8192, [(payload, None)])
    ip = ipv4.build_header(CLI, SRV, ipv4.PROTO_TCP, len(seg), ident=seq & 0xFFFF)
    return ether.build(SRV_MAC, CLI_MAC, ether.ETHERTYPE_IP, ip + seg) + pad


def _pipe_check(frame: bytes) -> bool:
    """Check the TCP checksum as the ilp path does: the copy loop's sum of the frame, the
    segment's taken from it."""
    out, _ = run_in_copy(build([CKSUM], PMAD_PIO_IN), frame)
    assert bytes(out) == frame and isinstance(out, IlpFrame)
    hdr, payload = ipv4.parse(frame[ether.HEADER_LEN:])
    start = ether.HEADER_LEN + hdr.header_length
    seg, _ = segment_sum(frame_sum(out), frame, start, start + len(payload),
                         zero=(ether.HEADER_LEN, start))
    try:
        parse_segment(CLI, SRV, payload, segment_sum=seg)
    except ValueError:
        return False
    return True


def _reference_check(frame: bytes) -> bool:
    hdr, payload = ipv4.parse(frame[ether.HEADER_LEN:])
    return ck.verify(payload, ck.pseudo_header_sum(CLI, SRV, ipv4.PROTO_TCP, len(payload)))


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=1460), pad=st.binary(max_size=7),
       seq=st.integers(0, 2**32 - 1), flip=st.integers(0, 2**16), bit=st.integers(0, 7))
def test_fused_sum_checks_as_the_reference(payload, pad, seq, flip, bit):
    """Random segments (odd lengths, link padding that is not zero): the pipe's check accepts
    the good one and refuses it with one bit of its TCP bytes changed, as the reference does
    (a one-bit change always changes the one's-complement sum)."""
    frame = _frame(payload, pad, seq)
    assert _pipe_check(frame) and _reference_check(frame)
    start = ether.HEADER_LEN + ipv4.HEADER_LEN
    at = start + flip % (len(frame) - len(pad) - start)
    bad = bytearray(frame)
    bad[at] ^= 1 << bit
    assert not _pipe_check(bytes(bad)) and not _reference_check(bytes(bad))


def test_segment_sum_refuses_odd_or_disordered_pieces():
    with pytest.raises(ValueError, match="even"):
        segment_sum(0, bytes(60), 35, 60)
    with pytest.raises(ValueError, match="not in order"):
        segment_sum(0, bytes(60), 34, 70)
    with pytest.raises(ValueError, match="0..0xffff"):
        segment_sum(0x10000, bytes(60), 34, 60)


async def _feed(stack, frames):
    for f in frames:
        await stack.process(f)


def test_the_stack_uses_the_pipes_sum_and_drops_a_bad_segment():
    """An IlpFrame whose pipe sum says the segment is bad is dropped as a bad checksum even
    though its bytes are good (the stack does not sum them again), and the good ones pass."""
    k = Kernel()
    stack = NetStack(k, _Card(), SRV, name="srv")
    good = _frame(b"GET / HTTP/1.0\r\n\r\n", b"", 5)
    prog = build([CKSUM], PMAD_PIO_IN)
    ok, _ = run_in_copy(prog, good)
    lying, _ = run_in_copy(prog, good[:-1] + bytes([good[-1] ^ 0x40]))
    lying = IlpFrame(good, lying.outcome)          # good bytes, the sum of changed ones
    t = k.spawn(_feed(stack, [ok, lying, good]))
    k.run(until=10**9)
    assert t.done and t.exception is None
    assert stack.tcp.stats.bad_checksum == 1 and stack.tcp.stats.segments_in == 3


# -- transmit: the checksum completed in the copy ------------------------------------------------
def _sent(payload: bytes, seq: int, *, in_copy: bool, pad: bool):
    """The frame the driver ends with for ``payload``: built summed by the stack, or unsummed
    and completed by the transmit copy's pipe (the LANCE interface pads to 60 bytes)."""
    seg, summed = build_segment(SRV, CLI, 80, 40000, seq, 77, ACK | PSH, 8192,
                                [(payload, None)], sum_in_copy=in_copy)
    assert summed == (0 if in_copy else 20 + 12 + len(payload))
    ip = ipv4.build_header(SRV, CLI, ipv4.PROTO_TCP, len(seg), ident=seq & 0xFFFF)
    packet = prepend_request(seg, ip + seg, ipv4.HEADER_LEN, header_sums_to_zero=True)
    frame = prepend_request(packet, ether.build(CLI_MAC, SRV_MAC, ether.ETHERTYPE_IP, packet),
                            ether.HEADER_LEN)
    request = sum_request(frame)
    assert (request is not None) == in_copy
    frame = bytes(frame) + (bytes(60 - len(frame)) if pad and len(frame) < 60 else b"")
    if not in_copy:
        return frame, 0
    assert request == (34, 50, 14)               # the IP header sums to 0: only 14 subtracted
    filled, out, outside = fill_checksum(build([CKSUM], PMAD_PIO), frame, request)
    assert out.data == frame and outside == 14
    return filled, outside


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=1460), seq=st.integers(0, 2**32 - 1), pad=st.booleans())
def test_checksum_completed_in_the_copy_is_the_stacks(payload, seq, pad):
    ref, _ = _sent(payload, seq, in_copy=False, pad=pad)
    got, _ = _sent(payload, seq, in_copy=True, pad=pad)
    assert got == ref
    assert _reference_check_from(got, SRV, CLI)


def _reference_check_from(frame: bytes, src: bytes, dst: bytes) -> bool:
    hdr, payload = ipv4.parse(frame[ether.HEADER_LEN:])
    return ck.verify(payload, ck.pseudo_header_sum(src, dst, ipv4.PROTO_TCP, len(payload)))


def test_a_gather_segment_is_marked_too():
    seg, _ = build_segment(SRV, CLI, 80, 40000, 1, 2, ACK, 8192,
                           [(b"HTTP/1.0 200 OK\r\n", None), (Gather([PhysRef(4096, 100)]), None)],
                           sum_in_copy=True)
    assert isinstance(seg, Gather) and sum_request(seg) == (0, 16, 0) and len(seg) == 20 + 117


def test_mark_sum_at_refuses_odd_or_outside_offsets():
    for start, field in ((1, 16), (0, 17), (0, 40), (20, 16)):
        with pytest.raises(ValueError, match="even offsets in order"):
            mark_sum_at(bytes(40), start, field)
