"""cocotb bench for the LANCE card's MII engines, through ``hw.lance.mii.MiiLoopback``.

cocotbext-eth's ``MiiSource`` puts frames on the receiver's wire and ``MiiSink`` takes them off
the transmitter's wire; Python acts per frame, the nibbles are clocked inside the simulator
(ARCHITECTURE.md). The loopback strips the received FCS and the transmitter appends a fresh one,
so the expected output of every input frame is its payload (minus the 4 FCS bytes), padded when
``pad`` is set, plus the ``zlib.crc32`` FCS. Run from tests/hw/test_lance_mii.py on Icarus and
Verilator.
"""
from __future__ import annotations

import random
import struct
import zlib

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotbext.eth import GmiiFrame, MiiSink, MiiSource

MII_PERIOD_NS = 400  # 2.5 MHz MII clock at 10 Mbit/s (CALIBRATION.md: 100 ns bit time)
IFG_NIBBLES = 24     # 96 bit times (CALIBRATION.md)


def fcs(payload: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(payload))


class Bench:
    """Clock, reset and the two MII bus-functional models around the loopback."""

    def __init__(self, dut, *, pad: bool = False) -> None:
        self.dut = dut
        Clock(dut.clk, MII_PERIOD_NS, unit="ns").start()
        dut.pad.value = int(pad)
        self.source = MiiSource(dut.rxd, dut.rx_er, dut.rx_dv, dut.clk)
        self.source.ifg = IFG_NIBBLES  # its default (12) is shorter than 802.3 allows
        self.sink = MiiSink(dut.txd, dut.tx_er, dut.tx_en, dut.clk)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def counter(self, name: str) -> int:
        return int(getattr(self.dut, name).value)

    async def expect(self, expected: list[bytes]) -> None:
        """Receive one frame per expected payload (FCS not included) and compare."""
        for n, payload in enumerate(expected):
            frame = await self.sink.recv()
            assert frame.error is None, f"frame {n}: tx_er raised"
            assert frame.get_preamble() == bytes([0x55] * 7 + [0xD5]), f"frame {n}: preamble"
            assert frame.check_fcs(), f"frame {n}: bad FCS"
            got = bytes(frame.get_payload())
            assert got == payload, f"frame {n}: {len(got)} bytes, expected {len(payload)}"
        assert self.sink.empty()


@cocotb.test()
async def random_frames_round_trip(dut) -> None:
    """Random frames 60-1514 B in, the same frames with a regenerated FCS out."""
    tb = Bench(dut)
    await tb.reset()
    rng = random.Random(1995)
    sizes = [60, 1514] + [rng.randrange(60, 1515) for _ in range(3)]
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
    for p in payloads:
        await tb.source.send(GmiiFrame.from_payload(p, min_len=0))
    await tb.expect(payloads)
    await ClockCycles(dut.clk, IFG_NIBBLES)
    assert tb.counter("rx_frames") == len(payloads)
    assert tb.counter("tx_frames") == len(payloads)
    for name in ("rx_crc_errors", "rx_runts", "rx_too_long", "rx_dribbles", "rx_errors",
                 "rx_overflows"):
        assert tb.counter(name) == 0, name


@cocotb.test()
@cocotb.parametrize(pad=[False, True])
async def bad_fcs_and_runts_are_flagged(dut, pad: bool) -> None:
    """A bad FCS and a runt are counted by the receiver; the transmitter pads when asked."""
    tb = Bench(dut, pad=pad)
    await tb.reset()
    rng = random.Random(7990)
    good = bytes(rng.randrange(256) for _ in range(100))
    bad_fcs = bytearray(fcs(good))
    bad_fcs[0] ^= 0x01
    runt = bytes(rng.randrange(256) for _ in range(30))
    frames = [
        GmiiFrame.from_raw_payload(good + bytes(bad_fcs)),
        GmiiFrame.from_raw_payload(runt + fcs(runt)),
        GmiiFrame.from_payload(good, min_len=0),
    ]
    for f in frames:
        await tb.source.send(f)
    padded_runt = runt + bytes(60 - len(runt)) if pad else runt
    await tb.expect([good, padded_runt, good])
    await ClockCycles(dut.clk, IFG_NIBBLES)
    assert tb.counter("rx_frames") == 3
    assert tb.counter("rx_crc_errors") == 1
    assert tb.counter("rx_runts") == 1
    assert tb.counter("rx_errors") == 0
    assert tb.counter("rx_overflows") == 0


@cocotb.test()
async def rx_er_is_counted(dut) -> None:
    """A frame with rx_er raised on one byte is flagged by the receiver."""
    tb = Bench(dut)
    await tb.reset()
    payload = bytes(range(64))
    frame = GmiiFrame.from_payload(payload, min_len=0)
    frame.error = [0] * len(frame.data)
    frame.error[20] = 1
    await tb.source.send(frame)
    await tb.sink.recv()
    await Timer(IFG_NIBBLES * MII_PERIOD_NS, unit="ns")
    assert tb.counter("rx_frames") == 1
    assert tb.counter("rx_errors") == 1
