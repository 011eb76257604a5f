"""The simulated cost of fused ILP loops (sw/libos/ilp/cost.py) on the 3MIN's memory system.

The expected cycles are derived from the memory system's parameters (read-miss and word-write
times, the loops' instruction counts), never tuned: a fused copy-and-checksum differs from the
two passes by the second pass's instructions and, when the message does not fit the data
cache, by its read misses."""
import math

import pytest

from sim.cache import MemorySystem
from sim.cpu import CHECKSUM, COPY, CPU, IO_WAIT, MEMORY_STALL
from sim.kernel import Kernel
from sim.platforms import CLIENT_PENTIUM100_OPENBSD as PENTIUM
from sim.platforms import DECSTATION_5000_125_AEGIS as MIN3
from hw.ilp.registers import Pipe
from sw.libos.ilp import compiler, cost, movement, pipes
from sw.libos.ilp.execute import execute

COPY_P = compiler.build([pipes.COPY], movement.MEMORY)
CKSUM_P = compiler.build([pipes.CKSUM], movement.AN2_DMA)
FUSED = compiler.build([pipes.COPY, pipes.CKSUM], movement.MEMORY)


def machine(nbytes):
    ms = MemorySystem(MIN3)
    return ms, ms.space.region("src", nbytes), ms.space.region("dst", nbytes)


def test_compiled_loops_against_the_calibrated_rows():
    # copy: one cycle each for load and store, 3 loop cycles per 8 words: the bcopy row exactly
    assert cost.issue_per_word(COPY_P) == MIN3.memory.copy_issue_cycles_per_word.value
    # cksum: the tuned in_cksum row's 3.25 counts the load inside NetBSD's "3-instruction inner
    # step"; the compiled loop counts the lw and the 3-instruction addc: one cycle more
    assert cost.issue_per_word(CKSUM_P) == MIN3.checksum_cached_cycles_per_word.value + 1
    assert cost.issue_per_word(FUSED) == 1 + 1 + 3 + 3 / 8


def pass_cycles(ms, prog, nbytes, src, dst=None):
    return cost.loop_cost(ms, 0, prog, nbytes, src=src, dst=dst).cycles


def test_fused_copy_and_checksum_that_fits_the_cache_saves_the_second_pass():
    n = 4096
    w = n // 4
    ms, src, dst = machine(n)
    r, d = ms.read_miss, ms.word_write
    # The separate passes: copy (source cold), then checksum the copy (a write-through store
    # left every line of dst in the cache: no misses, no writes: only its own instructions).
    copy = cost.loop_cost(ms, 0, COPY_P, n, src=src, dst=dst)
    ck = cost.loop_cost(ms, 10**12, CKSUM_P, n, src=dst)
    assert (ck.misses, ck.writes, ck.memory_stall) == (0, 0, 0)
    assert ck.cycles == math.ceil(w * cost.issue_per_word(CKSUM_P)
                                  + cost.call_cycles(CKSUM_P, MIN3))
    # The fused loop, cold: memory-bound like the copy, since its own cycles per word plus the
    # miss stall fit under one read miss and one word write.
    assert cost.issue_per_word(FUSED) + (r - 1) < r + d
    ms2, src2, dst2 = machine(n)
    fused = cost.loop_cost(ms2, 0, FUSED, n, src=src2, dst=dst2)
    assert (fused.misses, fused.writes) == (copy.misses, copy.writes) == (w, w)
    # memory-bound: W (r + d) cycles less the last store still draining when the loop ends,
    # after the call (the fused one also runs the checksum's fini)
    stream = math.ceil(w * (r + d) - d)
    assert copy.cycles == cost.call_cycles(COPY_P, MIN3) + stream
    assert fused.cycles == cost.call_cycles(FUSED, MIN3) + stream
    # removed: the second pass's instructions per word and one call
    removed = math.ceil(w * cost.issue_per_word(CKSUM_P) + MIN3.copy_call_cycles.value)
    assert copy.cycles + ck.cycles - fused.cycles == removed


def test_fused_copy_and_checksum_larger_than_the_cache_saves_the_second_read():
    n = 2 * int(MIN3.memory.dcache_bytes.value)
    w = n // 4
    ms, src, dst = machine(n)
    r = ms.read_miss
    # Separate: checksum the source (cold), then copy it: the source is twice the cache, so
    # the copy misses on every word again (the checksum's last lines replaced its first).
    ck = cost.loop_cost(ms, 0, CKSUM_P, n, src=src)
    copy = cost.loop_cost(ms, 10**12, COPY_P, n, src=src, dst=dst)
    assert ck.misses == copy.misses == w
    ms2, src2, dst2 = machine(n)
    fused = cost.loop_cost(ms2, 0, FUSED, n, src=src2, dst=dst2)
    assert fused.misses == w
    # Removed: the second pass's w read misses (each stalls r - 1 beyond its load's own cycle),
    # its own instructions and one call.
    removed = math.ceil(w * (r - 1) + w * cost.issue_per_word(CKSUM_P)
                        + MIN3.copy_call_cycles.value)
    assert copy.cycles + ck.cycles - fused.cycles == removed


def test_cached_fused_loop_goes_at_the_write_buffer_rate():
    n = 4096
    ms, src, dst = machine(n)
    ms.dcache.read(src.base, n)
    fused = cost.loop_cost(ms, 0, FUSED, n, src=src, dst=dst)
    assert fused.misses == 0
    assert cost.issue_per_word(FUSED) < ms.word_write
    # each word's store drains in d cycles; the last depth stores are still queued at the end
    assert fused.cycles == cost.call_cycles(FUSED, MIN3) + math.ceil(
        n // 4 * ms.word_write - ms.depth * ms.word_write)


def test_lance_pio_rule_costs_two_io_writes_per_word():
    n = 1500
    w = -(-n // 4)
    io = MIN3.io_pio_write_ps.value / MIN3.cycle_ps
    prog = compiler.build([pipes.CKSUM], movement.LANCE_PIO)
    ms, src, _ = machine(n)
    ms.dcache.read(src.base, n)
    c = cost.loop_cost(ms, 0, prog, n, src=src)
    assert (c.io_writes, c.misses, c.memory_stall) == (2 * w, 0, 0)
    assert c.issue + c.io_wait == math.ceil(2 * w * io)      # the writes, not the loop, limit
    ms2, src2, _ = machine(n)
    cold = cost.loop_cost(ms2, 0, prog, n, src=src2)
    assert cold.memory_stall == math.ceil(w * ms2.read_miss)   # a full read per word, serial
    # checksumming in the PIO loop is free: the same cycles as the plain PIO copy
    copy = compiler.build([pipes.COPY], movement.LANCE_PIO)
    ms3, src3, _ = machine(n)
    ms3.dcache.read(src3.base, n)
    assert cost.loop_cost(ms3, 0, copy, n, src=src3).cycles == c.cycles


def test_pmad_pio_rule_costs_one_io_write_per_word():
    n = 1500
    w = -(-n // 4)
    io = MIN3.io_pio_write_ps.value / MIN3.cycle_ps
    ms, src, _ = machine(n)
    ms.dcache.read(src.base, n)
    c = cost.loop_cost(ms, 0, compiler.build([pipes.CKSUM], movement.PMAD_PIO), n, src=src)
    assert (c.io_writes, c.misses) == (w, 0)
    # 1 lw + 3 for addc + 1 sw + 3/8 loop overhead = 5.375 < the 8-cycle I/O write
    assert cost.issue_per_word(compiler.build([pipes.CKSUM], movement.PMAD_PIO)) < io
    assert c.cycles == math.ceil(w * io)


def test_memory_rule_needs_dst_and_lengths_are_checked():
    ms, src, _ = machine(64)
    with pytest.raises(ValueError, match="memory rule stores to memory: name its dst"):
        cost.loop_cost(ms, 0, COPY_P, 64, src=src)
    with pytest.raises(ValueError, match="nbytes must be an int >= 0"):
        cost.loop_cost(ms, 0, COPY_P, -1, src=src)
    assert cost.loop_cost(ms, 0, COPY_P, 0, src=src).cycles == 0
    with pytest.raises(TypeError, match="takes a Program"):
        cost.issue_per_word([pipes.COPY])


def run_machine(profile, body):
    k = Kernel()
    cpu = CPU(k, profile, "cpu")
    box = {}

    async def main():
        box["out"] = await body(cpu)

    k.spawn(main())
    k.run()
    return cpu, box["out"]


def test_run_on_charges_the_loop_cost_and_returns_the_outcome():
    data = bytes(range(256)) * 6

    async def body(cpu):
        src, dst = cpu.region("m", len(data)), cpu.region("c", len(data))
        return await cost.run_on(cpu, FUSED, data, src=src, dst=dst)

    cpu, out = run_machine(MIN3, body)
    assert out == execute(FUSED, data)
    ms, src, dst = machine(len(data))
    want = cost.loop_cost(ms, 0, FUSED, len(data), src=src, dst=dst)
    cats = cpu.breakdown()
    assert round(cats[COPY].cycles) == want.issue
    assert round(cats[MEMORY_STALL].cycles) == want.memory_stall
    assert cpu.kernel.now == want.cycles * cpu.period


def test_run_on_pio_and_dma_categories():
    data = bytes(1000)

    async def body(cpu):
        src = cpu.region("m", len(data))
        a = await cost.run_on(cpu, compiler.build([pipes.CKSUM], movement.LANCE_PIO), data,
                              src=src)
        b = await cost.run_on(cpu, CKSUM_P, data, src=src)
        return a, b

    cpu, (a, b) = run_machine(MIN3, body)
    assert a.data == bytes(movement.image_length(movement.LANCE_PIO, 1000))
    assert b.data is None and a.results == b.results == ((0,),)
    cats = cpu.breakdown()
    assert cats[IO_WAIT].cycles > 0 and cats[CHECKSUM].cycles > 0


def test_run_on_without_a_memory_system_charges_instructions():
    data = bytes(400)

    async def body(cpu):
        assert cpu.memory is None
        return await cost.run_on(cpu, FUSED, data, src=0, dst=4096)

    profile = PENTIUM if PENTIUM.memory is None else None
    if profile is None:
        pytest.skip("every profile here models its memory system")
    cpu, _ = run_machine(profile, body)
    assert cpu.kernel.now == math.ceil(100 * cost.issue_per_word(FUSED)
                                       + cost.call_cycles(FUSED, profile)) * cpu.period


def test_run_on_charges_the_instructions_the_words_ran():
    # a pipe that xors only words with the low bit set: the skipped words do not pay the xor
    odd = Pipe("oddxor", body=[("ldw", 1), ("shl", 2, 1, 31), ("beq", 2, 0, 6),
                               ("li", 3, 0xFFFF), ("xor", 1, 1, 3), ("stw", 1)])
    prog = compiler.build([odd], movement.MEMORY)
    data = bytes.fromhex("00000001" "00000002" "00000003" "00000004")
    out = execute(prog, data)
    assert out.data == bytes.fromhex("0000fffe" "00000002" "0000fffc" "00000004")
    static = cost.issue_per_word(prog)
    exact = cost.issue_per_word(prog, out.executed)
    # shl 1 + beq 2 for every word; li 0, xor 1 and the stw renaming 0 for half of them
    assert static - exact == pytest.approx(0.5 * 1)
    # branch-free programs: the counts change nothing
    plain = execute(FUSED, data)
    assert cost.issue_per_word(FUSED, plain.executed) == cost.issue_per_word(FUSED)
    with pytest.raises(ValueError, match="executed has 1 counts"):
        cost.issue_per_word(prog, [4])
