"""The pipe datapath (hw/ilp/gateware.py) in Amaranth's simulator against its model and the ISA.

Each case drives :class:`hw.ilp.gateware.PipeDatapath` and :class:`hw.ilp.model.PipeDatapathModel`
with the same packets and the same per-cycle ``in_valid`` / ``out_ready`` patterns, and requires:
every input and output transfer in the same cycle, the same words and ``last`` flags, ``done``
in the same cycles with the same results, and those words and results equal to
:func:`hw.ilp.registers.run` of each pipe in list order (the software semantics).

Pipe lists: the standard ones (copy, Internet checksum, byte swap) and random valid pipes from
:func:`random_pipes` (every opcode, forward branches, accumulations into r6/r7 with every
accumulating op, fini code), which the cocotb benches (tests/hw/cocotb_ilp.py) use too.
"""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.ilp.gateware import PipeDatapath
from hw.ilp.pipelist import check_pipes
from hw.ilp.model import PipeDatapathModel, handshake_cycles
from hw.ilp.registers import ACCUMULATORS, MASK, Pipe, PipeError, run, words_of

#: Stand-ins for sw/libos/ilp/pipes.py's standard pipes, written from the ISA (hw may not
#: import sw; the tests keep their own copies so a change there cannot hide here).
COPY = Pipe("copy", body=(("ldw", 1), ("stw", 1)))
CKSUM = Pipe("cksum", body=(("ldw", 1), ("addc", 6, 6, 1)),
             fini=(("shr", 1, 6, 16), ("li", 2, 0xFFFF), ("and", 3, 6, 2),
                   ("addc", 4, 1, 3), ("shr", 1, 4, 16), ("and", 3, 4, 2), ("add", 6, 1, 3)),
             results=(6,))
BSWAP = Pipe("bswap", body=(("ldw", 1), ("bswap", 2, 1), ("stw", 2)))

_TEMPS = (1, 2, 3, 4, 5)
#: What a run reports (:class:`hw.ilp.model.StreamRun`'s fields).
STREAM_FIELDS = ("in_cycles", "out_cycles", "out_words", "out_last", "done_cycles", "results")
#: Stall fraction of stimulus ``seed`` (each level in turn).
STALLS = (0.0, 0.3, 0.6, 0.9)


def random_pipe(rng: random.Random, name: str) -> Pipe:
    """A random pipe the verifier accepts: 1-12 body instructions of every kind (forward
    branches, stores, accumulations into r6/r7 with one op each), 0-4 fini instructions and
    0-3 results. Operands mostly name registers already written (the word, or values made
    from it), so words, stores and results mostly depend on the data."""
    ops = {r: rng.choice(sorted(ACCUMULATORS)) for r in (6, 7) if rng.random() < 0.6}
    length = rng.randint(1, 12)
    first = rng.choice(_TEMPS)
    body, written = [("ldw", first)], [first]

    def src() -> int:
        return rng.choice(written) if rng.random() < 0.85 else rng.choice((0,) + _TEMPS)

    def dest() -> int:
        rd = rng.choice(_TEMPS)
        written.append(rd)
        return rd

    while len(body) < length:
        i, kind = len(body), rng.random()
        if kind < 0.08:
            body.append(("ldw", dest()))
        elif kind < 0.16:
            body.append(("li", dest(), rng.choice((0, 1, 3, 0xFF, MASK, rng.getrandbits(32)))))
        elif kind < 0.28:
            a = src()
            body.append((rng.choice(("mov", "bswap")), dest(), a))
        elif kind < 0.45:
            a, b = src(), src()
            body.append((rng.choice(("add", "sub", "and", "or", "xor", "addc")), dest(), a, b))
        elif kind < 0.55:
            a = src()
            body.append((rng.choice(("shl", "shr")), dest(), a, rng.randint(0, 31)))
        elif kind < 0.68 and i + 1 < length:
            body.append((rng.choice(("beq", "bne")), src(), src(), rng.randint(i + 1, length)))
        elif kind < 0.78 or not ops:
            body.append(("stw", src()))
        else:
            r = rng.choice(sorted(ops))
            x = src()
            body.append((ops[r], r, r, x) if rng.random() < 0.5 else (ops[r], r, x, r))
    fini, known = [], sorted(ops) or [0]
    for _ in range(rng.randint(0, 4)):
        op = rng.choice(("add", "sub", "and", "or", "xor", "addc", "shl", "shr", "bswap", "li"))
        ra = rng.choice(known) if rng.random() < 0.8 else rng.randint(0, 7)
        rd = rng.randint(1, 7)
        if op in ("shl", "shr"):
            fini.append((op, rd, ra, rng.randint(0, 31)))
        elif op == "bswap":
            fini.append((op, rd, ra))
        elif op == "li":
            fini.append((op, rd, rng.getrandbits(32)))
        else:
            fini.append((op, rd, ra, rng.choice(known + [rng.randint(0, 7)])))
        known.append(rd)
    candidates = sorted(set(known) - {0}) or [6]
    wanted = 0 if rng.random() < 0.15 else rng.randint(1, 3)
    results = tuple(rng.sample(candidates, min(len(candidates), wanted)))
    init = {r: rng.getrandbits(32) for r in ops if rng.random() < 0.5}
    return Pipe(name, body=tuple(body), init=init, fini=tuple(fini), results=results)


def random_pipes(seed: int, *, count: int | None = None) -> list[Pipe]:
    """1-3 random pipes (``count`` to fix it), reproducible from ``seed``."""
    rng = random.Random(seed)
    return [random_pipe(rng, f"rand{seed}_{k}") for k in range(count or rng.choice((1, 2, 3, 3)))]


def random_stimulus(seed: int, *, packets: int = 4, max_words: int = 12, stall: float = 0.4):
    """Packets (some of words in 0..3, so branches on equality go both ways) and
    ``in_valid`` / ``out_ready`` patterns with a fraction ``stall`` of stalled cycles."""
    rng = np.random.default_rng(seed)
    pkts = []
    for _ in range(packets):
        n = int(rng.integers(1, max_words + 1))
        hi = 4 if rng.random() < 0.4 else 1 << 32
        pkts.append([int(w) for w in rng.integers(0, hi, n, dtype=np.uint64)])
    total = sum(map(len, pkts))
    span = 4 * total + 16
    in_valid = [bool(b) for b in rng.random(span) >= stall]
    out_ready = [bool(b) for b in rng.random(span) >= stall]
    return pkts, in_valid, out_ready


def run_amaranth(pipes, packets, in_valid, out_ready, *, limit: int = 10_000) -> dict:
    """Drive the datapath in Amaranth's simulator cycle by cycle (a sticky source that raises
    valid in the cycles ``in_valid`` allows, a sink ready as ``out_ready`` says); return what
    it did, in :class:`hw.ilp.model.StreamRun`'s terms."""
    dut = PipeDatapath(pipes=pipes)
    words = [(w, k == len(p) - 1) for p in packets for k, w in enumerate(p)]
    n_res = len(dut.result_names)
    got = {k: [] for k in STREAM_FIELDS}

    async def bench(ctx):
        i, offering, c = 0, False, 0
        while len(got["done_cycles"]) < len(packets):
            if c > limit:
                raise AssertionError(f"datapath stuck: {got}")
            if i < len(words) and not offering:
                offering = c >= len(in_valid) or in_valid[c]
            ctx.set(dut.i_stream.valid, offering)
            if i < len(words):
                ctx.set(dut.i_stream.payload.data, words[i][0])
                ctx.set(dut.i_stream.payload.last, words[i][1])
            ctx.set(dut.o_stream.ready, c >= len(out_ready) or out_ready[c])
            if offering and ctx.get(dut.i_stream.ready):
                got["in_cycles"].append(c)
                i, offering = i + 1, False
            if ctx.get(dut.o_stream.valid) and ctx.get(dut.o_stream.ready):
                got["out_cycles"].append(c)
                got["out_words"].append(ctx.get(dut.o_stream.payload.data))
                got["out_last"].append(bool(ctx.get(dut.o_stream.payload.last)))
            if ctx.get(dut.done):
                flat = ctx.get(dut.results.as_value())
                got["done_cycles"].append(c)
                got["results"].append(tuple((flat >> (32 * j)) & MASK for j in range(n_res)))
            await ctx.tick()
            c += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return {k: tuple(v) for k, v in got.items()}


def expected_run(pipes, packets, in_valid, out_ready) -> dict:
    """The model's run as a dict (:class:`hw.ilp.model.StreamRun`'s fields), after checking its
    words and results against :func:`hw.ilp.registers.run` of each pipe in turn, per packet
    (the software semantics, independently of the model)."""
    model = PipeDatapathModel(pipes=pipes).run(packets, in_valid=in_valid, out_ready=out_ready)
    pos = 0
    for n, packet in enumerate(packets):
        words, res = np.asarray(packet, dtype=np.uint32), []
        for pipe in check_pipes(pipes):
            words, r = run(pipe, words)
            res.extend(r)
        assert list(model.out_words[pos:pos + len(packet)]) == [int(w) for w in words]
        assert model.results[n] == tuple(res)
        pos += len(packet)
    return {k: tuple(getattr(model, k)) for k in STREAM_FIELDS}


def check_against_model(pipes, packets, in_valid, out_ready) -> dict:
    """Run the gateware and require exactly :func:`expected_run`."""
    got = run_amaranth(pipes, packets, in_valid, out_ready)
    assert got == expected_run(pipes, packets, in_valid, out_ready)
    return got


def _internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum of 16-bit words (not inverted), zero padded."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@pytest.mark.parametrize("stall", [0.0, 0.5, 0.8])
def test_copy_cksum_bswap_checksums_and_swaps(stall):
    rng = random.Random(7)
    payloads = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (1, 5, 64, 37)]
    packets = [[int(w) for w in words_of(p)] for p in payloads]
    _, in_valid, out_ready = random_stimulus(3, stall=stall)
    got = check_against_model([COPY, CKSUM, BSWAP], packets, in_valid, out_ready)
    assert [r[0] for r in got["results"]] == [_internet_checksum(p) for p in payloads]
    swapped = [int.from_bytes(struct.pack(">I", w)[::-1], "big")
               for p in packets for w in p]
    assert list(got["out_words"]) == swapped


@pytest.mark.parametrize("seed", range(12))
def test_random_pipes_random_stalls(seed):
    pipes = random_pipes(seed)
    packets, in_valid, out_ready = random_stimulus(seed, stall=STALLS[seed % len(STALLS)])
    check_against_model(pipes, packets, in_valid, out_ready)


def test_full_rate_latency_and_throughput():
    """No stalls: one word per cycle in and out, each leaving N cycles after it entered."""
    pipes = random_pipes(1, count=3)
    packets = [[1, 2, 3], [4], [5, 6, 7, 8]]
    got = check_against_model(pipes, packets, [], [])
    assert got["in_cycles"] == tuple(range(8))
    assert got["out_cycles"] == tuple(range(3, 11))
    assert got["done_cycles"] == (6, 7, 11)


def test_back_to_back_one_word_packets_keep_their_own_results():
    """Every word its own packet at full rate: each stage finishes a packet every cycle, and
    each ``done`` must still show its own packet's results."""
    words = [[0xFFFF_0000 + k] for k in range(10)]
    got = check_against_model([CKSUM, COPY, CKSUM], words, [], [])
    assert got["done_cycles"] == tuple(range(4, 14))
    assert [r[0] for r in got["results"]] == [_internet_checksum(struct.pack(">I", w[0]))
                                            for w in words]
    assert len(set(got["results"])) == 10


def test_stalled_sink_fills_then_blocks_the_source():
    """A sink that is never ready until cycle 20: N words go in, then the input waits."""
    pipes = random_pipes(2, count=2)
    got = check_against_model(pipes, [[9] * 6], [], [False] * 20)
    assert got["in_cycles"][:3] == (0, 1, 20)
    assert got["out_cycles"] == tuple(range(20, 26))


def test_handshake_closed_form_by_hand():
    a, d = handshake_cycles(4, stages=2, in_valid=[False, True, False, True], out_ready=[])
    assert a == [1, 3, 4, 5] and d == [3, 5, 6, 7]
    a, d = handshake_cycles(3, stages=1, out_ready=[False, False, False, True, False, True])
    assert a == [0, 3, 5] and d == [3, 5, 6]


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="at least one pipe"):
        PipeDatapath(pipes=[])
    with pytest.raises(TypeError, match="sequence of Pipe"):
        PipeDatapath(pipes="copy")
    with pytest.raises(PipeError, match="loop"):
        PipeDatapath(pipes=[Pipe("spin", body=(("beq", 0, 0, 0),))])
    with pytest.raises(ValueError, match="packet 1"):
        PipeDatapathModel(pipes=[COPY]).run([[1], []])
    with pytest.raises(ValueError, match="stages"):
        handshake_cycles(3, stages=0)
