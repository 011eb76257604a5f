"""MII transmit/receive engines of the LANCE card: Amaranth-simulator unit tests and the cocotb
bench (tests/hw/cocotb_lance_mii.py) on Icarus and Verilator.

The golden model for the FCS is ``zlib.crc32`` (STYLE.md #8).
"""
from __future__ import annotations

import os
import random
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.lance.crc import CRC_INIT, CRC_RESIDUE, crc32_update_model
from hw.lance.mii import (IFG_NIBBLES, MiiLoopback, MiiReceiver, MiiTransmitter,
                          PREAMBLE_NIBBLES)

MII_PERIOD = 400e-9  # 2.5 MHz: one nibble per clock at 10 Mbit/s (CALIBRATION.md)
PREAMBLE = bytes([0x55] * 7 + [0xD5])


def fcs(payload: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(payload))


def nibbles(raw: bytes) -> list[int]:
    out = []
    for b in raw:
        out += [b & 0xF, b >> 4]
    return out


# --- CRC ----------------------------------------------------------------------------------------
def test_crc_model_matches_zlib_and_residue() -> None:
    rng = random.Random(1)
    for n in (0, 1, 7, 60, 300):
        payload = bytes(rng.randrange(256) for _ in range(n))
        crc = CRC_INIT
        for nib in nibbles(payload):
            crc = crc32_update_model(crc, nib, 4)
        assert crc ^ 0xFFFFFFFF == zlib.crc32(payload)
        for nib in nibbles(fcs(payload)):
            crc = crc32_update_model(crc, nib, 4)
        assert crc == CRC_RESIDUE


# --- Shared testbench helpers (STYLE.md #13) ----------------------------------------------------
async def stream_put(ctx, stream, payload) -> None:
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


@dataclass
class TxFrame:
    start: int                      # clock index of the first preamble nibble
    end: int                        # clock index after the last nibble
    nibbles: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        """Bytes after the SFD (an odd trailing nibble is dropped)."""
        nib = self.nibbles[PREAMBLE_NIBBLES:]
        return bytes(nib[i] | nib[i + 1] << 4 for i in range(0, len(nib) - 1, 2))


def run_tx(frames: list[tuple[bytes, bool, bool]], *, col_at: dict[int, int] | None = None,
           stall_at: dict[int, int] | None = None, crs_cycles: int = 0,
           ) -> tuple[list[TxFrame], list[dict]]:
    """Send ``(payload, add_fcs, pad)`` frames through a MiiTransmitter.

    ``col_at`` maps frame index -> nibble (from tx_en rising) at which to raise col for one
    clock. ``stall_at`` maps frame index -> byte index before which the producer pauses 6
    clocks. ``crs_cycles`` holds crs high for that many clocks at the start.
    """
    dut = MiiTransmitter()
    sim = Simulator(dut)
    sim.add_clock(MII_PERIOD)
    col_at = col_at or {}
    stall_at = stall_at or {}
    wire: list[TxFrame] = []
    statuses: list[dict] = []
    done = []

    async def producer(ctx):
        for n, (payload, add_fcs, pad) in enumerate(frames):
            for i, b in enumerate(payload):
                if stall_at.get(n) == i:
                    await ctx.tick().repeat(6)
                await stream_put(ctx, dut.i_stream, {
                    "data": b, "first": i == 0, "last": i == len(payload) - 1,
                    "add_fcs": add_fcs, "pad": pad})

    async def carrier(ctx):
        if crs_cycles:
            ctx.set(dut.crs, 1)
            await ctx.tick().repeat(crs_cycles)
            ctx.set(dut.crs, 0)

    async def monitor(ctx):
        ctx.set(dut.o_status.ready, 1)
        cycle = 0
        cur = None
        async for _, _, en, d, er, sv, sp in ctx.tick().sample(
                dut.tx_en, dut.txd, dut.tx_er, dut.o_status.valid, dut.o_status.payload):
            if en:
                if cur is None:
                    cur = TxFrame(start=cycle, end=cycle)
                    wire.append(cur)
                cur.nibbles.append(d)
                cur.errors.append(er)
                nib = len(cur.nibbles)
                hit = col_at.get(len(wire) - 1)
                ctx.set(dut.col, hit is not None and nib == hit)
            elif cur is not None:
                cur.end = cycle
                cur = None
            if sv:
                statuses.append({k: getattr(sp, k) for k in
                                 ("underflow", "collision", "late", "babble", "deferred")})
                if len(statuses) == len(frames):
                    done.append(cycle)
            cycle += 1

    async def waiter(ctx):
        await ctx.tick().until(dut.o_status.valid)  # at least one
        while len(statuses) < len(frames):
            await ctx.tick()
        await ctx.tick().repeat(2)

    sim.add_testbench(producer, background=True)
    sim.add_testbench(carrier, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(waiter)
    sim.run()
    return wire, statuses


def check_preamble(f: TxFrame) -> None:
    assert f.nibbles[:PREAMBLE_NIBBLES] == [0x5] * 15 + [0xD]


# --- Transmitter --------------------------------------------------------------------------------
def test_tx_random_frames_fcs_and_gap() -> None:
    rng = random.Random(2024)
    sizes = [60, 1514] + [rng.randrange(60, 1515) for _ in range(3)]
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
    wire, statuses = run_tx([(p, True, False) for p in payloads])
    assert len(wire) == len(payloads)
    for f, p in zip(wire, payloads):
        check_preamble(f)
        assert f.data == p + fcs(p)
        assert len(f.nibbles) == PREAMBLE_NIBBLES + 2 * (len(p) + 4)
        assert not any(f.errors)
    for a, b in zip(wire, wire[1:]):
        # Back-to-back frames are separated by exactly the 96-bit gap.
        assert b.start - a.end == IFG_NIBBLES
    assert all(not any(s.values()) for s in statuses)


def test_tx_pads_short_frames_and_can_omit_fcs() -> None:
    short = bytes(range(14))
    wire, statuses = run_tx([(short, True, True), (short, True, False), (short, False, False),
                             (bytes(range(61)), True, True)])
    padded = short + bytes(46)
    assert wire[0].data == padded + fcs(padded)
    assert wire[1].data == short + fcs(short)
    assert wire[2].data == short
    assert wire[3].data == bytes(range(61)) + fcs(bytes(range(61)))  # long enough: no pad
    assert all(not any(s.values()) for s in statuses)


def test_tx_babble_flagged_but_sent() -> None:
    p = bytes(1515)  # 1515 + 4 FCS = 1519 > 1518
    wire, statuses = run_tx([(p, True, False), (p, False, False)])
    assert wire[0].data == p + fcs(p)
    assert statuses[0]["babble"] == 1
    assert statuses[1]["babble"] == 0  # 1515 without FCS is legal


def test_tx_collision_jams_and_reports() -> None:
    p = bytes(range(100))
    # Frame 0: early collision (in the preamble); frame 1: late (after 64 bytes); frame 2 clean.
    wire, statuses = run_tx([(p, True, False)] * 3,
                            col_at={0: 10, 1: PREAMBLE_NIBBLES + 2 * 70})
    assert statuses[0] == dict(underflow=0, collision=1, late=0, babble=0, deferred=0)
    assert statuses[1] == dict(underflow=0, collision=1, late=1, babble=0, deferred=0)
    assert statuses[2] == dict(underflow=0, collision=0, late=0, babble=0, deferred=0)
    # Jammed: 32 bits after the collision was seen, then silence.
    assert len(wire[0].nibbles) == 10 + 1 + 8
    assert wire[0].nibbles[-8:] == [0x5] * 8
    assert wire[2].data == p + fcs(p)  # the rest of frames 0 and 1 was drained


def test_tx_underflow_poisons_frame() -> None:
    p = bytes(range(80))
    wire, statuses = run_tx([(p, True, False), (p, True, False)], stall_at={0: 30})
    assert statuses[0]["underflow"] == 1
    assert wire[0].errors[-1] == 1 and len(wire[0].data) == 30
    assert wire[1].data == p + fcs(p)
    assert statuses[1]["underflow"] == 0


def test_tx_defers_to_carrier() -> None:
    p = bytes(range(60))
    wire, statuses = run_tx([(p, True, False)], crs_cycles=40)
    # The frame waits for the carrier to drop, then for a full inter-frame gap.
    assert wire[0].start >= 40 + IFG_NIBBLES - 1
    assert statuses[0]["deferred"] == 1
    assert wire[0].data == p + fcs(p)


# --- Receiver -----------------------------------------------------------------------------------
def run_rx(bursts: list[list[tuple[int, int]]], *, ready_gaps: bool = False,
           ) -> list[tuple[bytes, dict]]:
    """Drive ``(nibble, rx_er)`` bursts on rx_dv (24 idle clocks between), collect frames."""
    dut = MiiReceiver()
    sim = Simulator(dut)
    sim.add_clock(MII_PERIOD)
    frames: list[tuple[bytes, dict]] = []
    total = sum(len(b) + IFG_NIBBLES for b in bursts) + 20

    async def driver(ctx):
        for burst in bursts:
            for nib, er in burst:
                ctx.set(dut.rx_dv, 1)
                ctx.set(dut.rxd, nib)
                ctx.set(dut.rx_er, er)
                await ctx.tick()
            ctx.set(dut.rx_dv, 0)
            ctx.set(dut.rxd, 0)
            ctx.set(dut.rx_er, 0)
            await ctx.tick().repeat(IFG_NIBBLES)

    async def consumer(ctx):
        cur = bytearray()
        cycle = 0
        ctx.set(dut.o_stream.ready, 1)
        async for _, _, valid, ready, p in ctx.tick().sample(
                dut.o_stream.valid, dut.o_stream.ready, dut.o_stream.payload):
            cycle += 1
            if ready_gaps:
                # A consumer that blinks: ready only one clock in four.
                ctx.set(dut.o_stream.ready, cycle % 4 == 0)
            if not (valid and ready):
                continue
            if p.first:
                assert not cur, "first while a frame is open"
            cur.append(p.data)
            if p.last:
                st = {k: getattr(p.status, k) for k in
                      ("crc_error", "dribble", "runt", "too_long", "rx_error", "overflow")}
                frames.append((bytes(cur), st))
                cur = bytearray()

    async def waiter(ctx):
        await ctx.tick().repeat(total)

    sim.add_testbench(driver, background=True)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(waiter)
    sim.run()
    return frames


def burst(raw: bytes, *, extra: list[int] = (), er_at: int | None = None,
          preamble: bytes = PREAMBLE) -> list[tuple[int, int]]:
    nib = nibbles(preamble + raw) + list(extra)
    return [(n, int(i == er_at)) for i, n in enumerate(nib)]


CLEAN = dict(crc_error=0, dribble=0, runt=0, too_long=0, rx_error=0, overflow=0)


def test_rx_random_frames() -> None:
    rng = random.Random(7)
    sizes = [60, 1514] + [rng.randrange(60, 1515) for _ in range(3)]
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
    frames = run_rx([burst(p + fcs(p)) for p in payloads])
    assert [f for f, _ in frames] == [p + fcs(p) for p in payloads]
    assert all(st == CLEAN for _, st in frames)


def test_rx_flags_bad_fcs_runt_long_dribble_and_rx_er() -> None:
    rng = random.Random(8)
    p = bytes(rng.randrange(256) for _ in range(100))
    bad = bytearray(p + fcs(p))
    bad[50] ^= 0x10
    runt = bytes(range(40))
    long = bytes(rng.randrange(256) for _ in range(1600))
    short_preamble = bytes([0x55, 0xD5])  # PHYs may eat most of the preamble
    frames = run_rx([
        burst(bytes(bad)),
        burst(runt + fcs(runt)),
        burst(long + fcs(long)),
        burst(p + fcs(p), extra=[0x3]),                     # dribble nibble, FCS still good
        burst(bytes(bad), extra=[0x3]),                     # dribble + bad FCS = FRAM
        burst(p + fcs(p), er_at=40),
        burst(p + fcs(p), preamble=short_preamble),
    ])
    sts = [st for _, st in frames]
    assert sts[0] == {**CLEAN, "crc_error": 1}
    assert sts[1] == {**CLEAN, "runt": 1}
    assert sts[2] == {**CLEAN, "too_long": 1}
    assert sts[3] == {**CLEAN, "dribble": 1}
    assert sts[4] == {**CLEAN, "dribble": 1, "crc_error": 1}
    assert sts[5] == {**CLEAN, "rx_error": 1}
    assert sts[6] == CLEAN
    assert frames[1][0] == runt + fcs(runt)
    assert frames[3][0] == p + fcs(p)


def test_rx_ignores_false_carrier() -> None:
    p = bytes(range(64))
    frames = run_rx([[(0x3, 0)] * 10, burst(p + fcs(p))])
    assert frames == [(p + fcs(p), CLEAN)]


def test_rx_slow_consumer_overflows() -> None:
    p = bytes(range(64))
    frames = run_rx([burst(p + fcs(p)), burst(p + fcs(p))], ready_gaps=True)
    assert len(frames) == 2
    for data, st in frames:
        assert st["overflow"] == 1
        assert len(data) < len(p) + 4


# --- Transmitter into receiver, through the Amaranth simulator -------------------------------
def test_tx_to_rx_loop() -> None:
    rng = random.Random(11)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in (14, 200, 61)]
    m = Module()
    m.submodules.tx = tx = MiiTransmitter()
    m.submodules.rx = rx = MiiReceiver()
    m.d.comb += [rx.rxd.eq(tx.txd), rx.rx_dv.eq(tx.tx_en), rx.rx_er.eq(tx.tx_er),
                 rx.o_stream.ready.eq(1), tx.o_status.ready.eq(1)]
    sim = Simulator(m)
    sim.add_clock(MII_PERIOD)
    got: list[tuple[bytes, int]] = []

    async def producer(ctx):
        for p in payloads:
            for i, b in enumerate(p):
                await stream_put(ctx, tx.i_stream, {"data": b, "first": i == 0,
                                                    "last": i == len(p) - 1,
                                                    "add_fcs": 1, "pad": 1})

    async def consumer(ctx):
        cur = bytearray()
        async for _, _, valid, p in ctx.tick().sample(rx.o_stream.valid, rx.o_stream.payload):
            if valid:
                cur.append(p.data)
                if p.last:
                    got.append((bytes(cur), p.status.as_value().value))
                    cur = bytearray()
                    if len(got) == len(payloads):
                        return

    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    for (data, status), p in zip(got, payloads):
        padded = p + bytes(max(0, 60 - len(p)))
        assert data == padded + fcs(padded)
        assert status == 0


# --- cocotb on Icarus and Verilator ----------------------------------------------------------
@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_cocotb_mii_loopback(sim: str) -> None:
    from serveros.rtl import run_cocotb, simulator_missing
    if reason := simulator_missing(sim):
        pytest.skip(reason)
    run = run_cocotb(MiiLoopback(), toplevel="mii_loopback", design="lance_mii_loopback", sim=sim,
                     test_module="cocotb_lance_mii", test_dir=Path(__file__).parent)
    assert run.tests > 0 and run.failed == 0, f"{run.failed} of {run.tests} cocotb tests failed on {sim}"
