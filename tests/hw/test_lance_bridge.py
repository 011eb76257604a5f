"""The MII frame bridge: frames injected on its receive side come back whole on its capture side."""
from __future__ import annotations

import random
import zlib

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.lance.bridge import MiiFrameBridge


def _loopback():
    """A bridge whose injected MII frames loop back into its own capture side, with an
    ``mii_clk`` of 2 cycles high and 3 low (the card's divide-by-5)."""
    m = Module()
    m.submodules.br = br = MiiFrameBridge()
    ph = Signal(range(5))
    m.d.sync += ph.eq(ph + 1)
    with m.If(ph == 4):
        m.d.sync += ph.eq(0)
    m.d.comb += [br.mii_clk.eq(ph < 2), br.txd.eq(br.rxd), br.tx_en.eq(br.rx_dv),
                 br.tx_er.eq(br.rx_er)]
    return m, br


def _words(frame: bytes) -> list[int]:
    padded = frame + bytes(-len(frame) % 4)
    return [int.from_bytes(padded[i:i + 4], "little") for i in range(0, len(padded), 4)]


def _frame(rng: random.Random, n: int) -> bytes:
    body = rng.randbytes(n)
    return body + zlib.crc32(body).to_bytes(4, "little")


@pytest.mark.parametrize("sizes", [(60,), (1514, 64, 100)])
def test_injected_frames_are_captured_whole(sizes):
    m, br = _loopback()
    rng = random.Random(len(sizes))
    frames = [_frame(rng, n) for n in sizes]
    seen = []

    async def bench(ctx):
        go = 0
        for f in frames:
            for i, w in enumerate(_words(f)):
                ctx.set(br.rx_mem.data[i], w)
            ctx.set(br.rx_len, len(f))
            go ^= 1
            ctx.set(br.rx_go, go)
            await ctx.tick().until(br.rx_busy == 1)
            await ctx.tick().until(br.tx_en == 1)
            start = ctx.get(br.tx_en)
            await ctx.tick().until(br.tx_en == 0)
            n = ctx.get(br.tx_len)
            raw = b"".join(ctx.get(br.tx_mem.data[i]).to_bytes(4, "little")
                           for i in range((n + 3) // 4))
            seen.append((raw[:n], ctx.get(br.tx_bad)))
            await ctx.tick().repeat(30)

    sim = Simulator(m)
    sim.add_clock(80e-9)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(f, 0) for f in frames]


def test_abort_garbles_the_frame():
    m, br = _loopback()
    f = _frame(random.Random(7), 200)
    out = {}

    async def bench(ctx):
        for i, w in enumerate(_words(f)):
            ctx.set(br.rx_mem.data[i], w)
        ctx.set(br.rx_len, len(f))
        ctx.set(br.rx_go, 1)
        await ctx.tick().until(br.tx_en == 1)
        await ctx.tick().repeat(5 * 40)
        ctx.set(br.rx_abort, 1)
        await ctx.tick().until(br.tx_en == 0)
        out["len"] = ctx.get(br.tx_len)
        out["bad"] = ctx.get(br.tx_bad)
        await ctx.tick().repeat(10)
        out["busy"] = ctx.get(br.rx_busy)

    sim = Simulator(m)
    sim.add_clock(80e-9)
    sim.add_testbench(bench)
    sim.run()
    assert out["bad"] == 1 and out["len"] < len(f) and out["busy"] == 0


def test_bridge_converts_to_verilog():
    from amaranth.back import verilog
    text = verilog.convert(MiiFrameBridge(), name="mii_frame_bridge")
    assert "module mii_frame_bridge" in text
