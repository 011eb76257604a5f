"""The LANCE driver's copies with ILP pipes fused (Cheetah's ``ilp`` switch), over the card's
model: two machines on one segment (tests/sw/test_lance_driver.py's rig).

A frame received through a fused receive copy arrives as an ``IlpFrame`` with the sum of its
bytes, and the pipe's instructions are charged to ``checksum``; a frame sent asking for its
checksum reaches the other station byte for byte as the stack would have built it summed,
for one more I/O write than the plain copy.
"""
from __future__ import annotations

import pytest

from sim.cpu import CHECKSUM, IO_WAIT
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sw.drivers.lance import LanceNetDevice
from sw.libos.ilp.inloop import IlpFrame, frame_sum, prepend_request, sum_request
from sw.libos.ilp.pipes import CKSUM
from sw.libos.net import checksum as ck
from sw.libos.net import ether, ipv4
from sw.libos.net.tcp import ACK, PSH, build_segment

from test_lance_driver import make_pair, run

SRC, DST = ipv4.addr("10.0.1.1"), ipv4.addr("10.0.2.1")


def _frame(a_mac: bytes, b_mac: bytes, payload: bytes, *, in_copy: bool):
    seg, _ = build_segment(SRC, DST, 80, 40000, 1, 2, ACK | PSH, 8192, [(payload, None)],
                           sum_in_copy=in_copy)
    ip = ipv4.build_header(SRC, DST, ipv4.PROTO_TCP, len(seg), ident=9)
    packet = prepend_request(seg, ip + seg, ipv4.HEADER_LEN, header_sums_to_zero=True)
    return prepend_request(packet, ether.build(b_mac, a_mac, ether.ETHERTYPE_IP, packet),
                           ether.HEADER_LEN)


@pytest.mark.parametrize("size", [0, 1, 333, 1460])
def test_fused_copies_on_the_card_model(size):
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=5))
    got: list = []
    payload = bytes((i * 7 + 3) & 0xFF for i in range(size))

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        na, nb = LanceNetDevice(a.drv), LanceNetDevice(b.drv)
        nb.attach(got.append)
        marked = _frame(a.mac, b.mac, payload, in_copy=True)
        with pytest.raises(ValueError, match="no pipes run in the transmit copy"):
            await na.send(marked)
        na.install_tx_pipes([CKSUM])
        nb.install_rx_pipes([CKSUM])
        cat = a.cpu.report().by_category
        io = [cat[IO_WAIT].cycles]
        ck0 = cat[CHECKSUM].cycles if CHECKSUM in cat else 0
        await na.send(marked)
        await a.drv.flush()
        io.append(a.cpu.report().by_category[IO_WAIT].cycles)
        plain = _frame(a.mac, b.mac, payload, in_copy=False)
        await na.send(plain)
        await a.drv.flush()
        io.append(a.cpu.report().by_category[IO_WAIT].cycles)
        await k.sleep(2_000_000_000)
        return io, ck0, marked, plain
    io, ck0, marked, plain = run(k, scenario())
    assert sum_request(marked) == (34, 50, 14) and sum_request(plain) is None
    padded = bytes(plain) + bytes(max(0, 60 - len(plain)))
    assert [bytes(f) for f in got] == [padded, padded]      # completed in the copy = summed
    for f in got:
        assert isinstance(f, IlpFrame) and frame_sum(f) % 0xFFFF == ck.ones_sum(f) % 0xFFFF
    rep = b.cpu.report().by_category
    assert rep[CHECKSUM].cycles > 0                          # the receive pipe's instructions
    assert a.cpu.report().by_category[CHECKSUM].cycles > ck0    # the in-line subtraction
    assert io[1] - io[0] > io[2] - io[1]          # the checksum's word written again


def test_a_driver_refuses_pipes_that_change_words():
    from hw.ilp.registers import PipeError
    from sw.libos.ilp.pipes import BSWAP
    k = Kernel()
    a, _ = make_pair(k, Segment(k, seed=5))
    run(k, a.drv.start())
    with pytest.raises(PipeError, match="bswap"):
        LanceNetDevice(a.drv).install_rx_pipes([BSWAP])
    with pytest.raises(PipeError, match="bswap"):
        LanceNetDevice(a.drv).install_tx_pipes([CKSUM, BSWAP])
