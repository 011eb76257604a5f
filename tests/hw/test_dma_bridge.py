"""hw.dma.DmaBridge in Amaranth's simulator: one Python transaction per burst, exact ack edges.

The testbench plays both sides: the device (a DmaBus initiator that raises ``req`` after an
edge, moves to its next word at each edge that samples ``ack`` and drops ``req`` at the last)
and Python (at the request edge it gives ``mem_cycles``/``fault`` and, for a memory-to-device
burst, fills the bridge's memory). The edges at which the device samples each ``ack`` are
checked against the rule of the module docstring: words ``0 .. n - 2`` at ``F .. F + n - 2``
after the request edge with ``F = max(B - n + 1, 2)``, the last at ``max(B, n + 1, M)``.
"""
from __future__ import annotations

import gc
import random
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator

from hw.dma import DmaBridge

W_CYCLES, R_CYCLES = 66, 68


@dataclass
class Burst:
    write: bool
    n: int
    mem_cycles: int = 0
    fault: bool = False
    drop_after: int | None = None      # the device abandons the burst after this many words
    gap: int = 1                       # idle edges before the request
    words: list[int] = field(default_factory=list)


@dataclass
class Seen:
    acks: list[int]                    # edges (after the request edge) sampling each ack
    toggles: int                       # req_toggle changes during the burst
    data: list[int]                    # words the device received (memory-to-device)
    mem: list[int]                     # the bridge's memory after the burst
    taken: int
    data_toggle: int
    fault_count: int


def expected_acks(b: Burst, fixed: int) -> list[int]:
    first = max(fixed - b.n + 1, 2)
    return [first + i for i in range(b.n - 1)] + [max(fixed, b.n + 1, b.mem_cycles)]


def simulate(bursts: list[Burst], *, write_cycles=W_CYCLES, read_cycles=R_CYCLES,
             depth=64) -> list[Seen]:
    br = DmaBridge(write_cycles=write_cycles, read_cycles=read_cycles, depth=depth)
    sim = Simulator(br)
    sim.add_clock(80e-9)
    seen: list[Seen] = []
    d = br.dma

    async def bench(ctx):
        await ctx.tick()
        for b in bursts:
            for _ in range(b.gap):
                await ctx.tick()
            before = ctx.get(br.req_toggle)
            # The device raises req just after an edge, with its first word.
            ctx.set(d.req, 1)
            ctx.set(d.addr, 0x1000)
            ctx.set(d.count, b.n)
            ctx.set(d.write, int(b.write))
            if b.write:
                ctx.set(d.w_data, b.words[0])
            # Python, woken by req_toggle at this same instant.
            assert ctx.get(br.req_toggle) != before
            assert (ctx.get(br.addr), ctx.get(br.count), ctx.get(br.write)) == (0x1000, b.n, b.write)
            ctx.set(br.mem_cycles, b.mem_cycles)
            ctx.set(br.fault, int(b.fault))
            if not b.write and not b.fault:  # a refused read: Python fills nothing
                for i, w in enumerate(b.words):
                    ctx.set(br.mem.data[i], w)
            acks, data, toggles, edge, word = [], [], 0, 0, 0
            last_toggle = ctx.get(br.req_toggle)
            while word < b.n:
                _, _, ack, r_data = await ctx.tick().sample(d.ack, d.r_data)
                edge += 1
                if ctx.get(br.req_toggle) != last_toggle:
                    toggles += 1
                    last_toggle = ctx.get(br.req_toggle)
                if edge > 100_000:
                    raise AssertionError("the burst never ended")
                if not ack:
                    continue
                acks.append(edge)
                data.append(r_data)
                word += 1
                if word == b.drop_after or word == b.n:
                    ctx.set(d.req, 0)
                    break
                if b.write:
                    ctx.set(d.w_data, b.words[word])
            await ctx.tick()
            seen.append(Seen(acks, toggles, data, [ctx.get(br.mem.data[i]) for i in range(depth)],
                             ctx.get(br.taken), ctx.get(br.data_toggle), ctx.get(br.fault_count)))

    sim.add_testbench(bench)
    sim.run()
    return seen


def words(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(32) for _ in range(n)]


@pytest.mark.parametrize("write", [True, False], ids=["to-memory", "from-memory"])
@pytest.mark.parametrize("mem_cycles", [0, 30, 66, 68, 69, 200],
                         ids=lambda m: f"memory-{m}")
def test_acks_are_fixed_unless_the_memory_is_later(write, mem_cycles) -> None:
    b = Burst(write, 64, mem_cycles, words=words(64, mem_cycles))
    s, = simulate([b])
    fixed = W_CYCLES if write else R_CYCLES
    assert s.acks == expected_acks(b, fixed)
    assert s.acks[-1] == max(fixed, mem_cycles)
    assert s.toggles == 0                    # req_toggle changed once, at the request edge
    if write:
        assert s.mem == b.words and s.data_toggle == 1
    else:
        assert s.data == b.words and s.data_toggle == 0
    assert s.taken == 64 and s.fault_count == 0


def test_back_to_back_bursts_and_a_naive_model_sweep() -> None:
    rng = random.Random(1)
    bursts = []
    for i in range(40):
        n = rng.randint(1, 64)
        bursts.append(Burst(rng.random() < 0.5, n, rng.choice([0, rng.randint(0, 150)]),
                            gap=rng.randint(1, 3), words=words(n, i)))
    for b, s in zip(bursts, simulate(bursts)):
        assert s.acks == expected_acks(b, W_CYCLES if b.write else R_CYCLES), b
        if b.write:
            assert s.mem[:b.n] == b.words
        else:
            assert s.data == b.words


def test_short_bursts_need_at_least_one_cycle_a_word() -> None:
    """With the minimum fixed time (2: the media bridge) a word is acknowledged each cycle
    from the second edge after the request."""
    bursts = [Burst(True, 1, words=[5]), Burst(False, 128, words=words(128, 3)),
              Burst(True, 128, words=words(128, 4))]
    seen = simulate(bursts, write_cycles=2, read_cycles=2, depth=128)
    assert seen[0].acks == [2]
    assert seen[1].acks == list(range(2, 130)) and seen[1].data == bursts[1].words
    assert seen[2].acks == list(range(2, 130)) and seen[2].mem == bursts[2].words


@pytest.mark.parametrize("write", [True, False], ids=["to-memory", "from-memory"])
def test_a_refused_burst_moves_nothing_on_the_fixed_time(write) -> None:
    first = Burst(True, 64, words=words(64, 7))
    refused = Burst(write, 64, mem_cycles=0, fault=True, words=words(64, 8))
    s1, s2 = simulate([first, refused])
    assert s2.acks == expected_acks(refused, W_CYCLES if write else R_CYCLES)
    assert s2.mem == first.words             # a refused write leaves the words untouched
    if not write:
        assert s2.data == [0] * 64           # and a refused read delivers zeros
    assert s2.fault_count == 1


def test_an_abandoned_burst_stops_and_the_next_one_is_served() -> None:
    dropped = Burst(True, 64, words=words(64, 9), drop_after=10)
    after = Burst(False, 64, mem_cycles=90, words=words(64, 10))
    s1, s2 = simulate([dropped, after])
    assert s1.acks == expected_acks(Burst(True, 64), W_CYCLES)[:10]
    assert s1.taken == 10 and s1.data_toggle == 1 and s1.mem[:10] == dropped.words[:10]
    assert s2.acks == expected_acks(after, R_CYCLES) and s2.data == after.words


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters_are_named() -> None:
    for kwargs, error, match in (
            (dict(write_cycles=1, read_cycles=68), ValueError, "write_cycles"),
            (dict(write_cycles=66, read_cycles=68.0), TypeError, "read_cycles"),
            (dict(write_cycles=66, read_cycles=68, depth=300), ValueError, "depth 300")):
        with pytest.raises(error, match=match):
            DmaBridge(**kwargs)
    gc.collect()    # the half-built bridges warn when collected: here, under the filter
