"""Ultrix kernel paths against their measured primitives (VALIDATION.md U1-U3, U6), run as the
validation benchmarks do: processes making simulated system calls."""
from __future__ import annotations

import pytest

from serveros.validation import ultrix as bench
from serveros.validation.anchors import load_anchors
from sim.platforms import PROFILES
from sw.ultrix.kernel import UltrixCosts

ROWS = load_anchors()


def rows(*ids):
    return {i: ROWS[i] for i in ids}


def test_getpid_is_the_locore_path_not_a_full_exception_frame():
    """U1: getpid on the 25 MHz R3000 took 11 us; the syscall path saves a small frame."""
    got = bench.getpid_loop(rows("U1"), 1)["U1"]
    prof = PROFILES[ROWS["U1"].platform]
    assert got == pytest.approx(prof.syscall_cycles.value / prof.cpu_hz.value * 1e6, rel=0.01)
    assert got == pytest.approx(11, rel=0.25)


def test_pipe_round_trip_is_two_switches_and_four_calls():
    got = bench.pipe_pingpong(rows("U2"), 1)["U2"]
    assert got == pytest.approx(180, rel=0.25)


def test_select_costs_grow_per_descriptor():
    got = bench.select_zero_timeout(rows("U3-1", "U3-2", "U3-3"), 1)
    prof = PROFILES[ROWS["U3-1"].platform]
    per_fd_us = prof.select_per_fd_cycles.value / prof.cpu_hz.value * 1e6
    assert got["U3-2"] - got["U3-1"] == pytest.approx(9 * per_fd_us, rel=0.01)
    assert got["U3-3"] == pytest.approx(got["U3-2"], rel=0.01)     # ready or empty, one scan
    assert got["U3-2"] == pytest.approx(91, rel=0.25)


def test_namei_walks_each_component():
    """open("a/b/c/foo") looks up four components, open("foo") one (ULTRIX namei loops per
    component)."""
    got = bench.open_close(rows("U6-1", "U6-2"), 1)
    prof = PROFILES[ROWS["U6-1"].platform]
    three = 3 * UltrixCosts().namei / prof.cpu_hz.value * 1e3           # ms
    assert got["U6-2"] - got["U6-1"] == pytest.approx(three, rel=0.02)


def test_file_cache_read_runs_at_memory_speed_not_free():
    """U5: reading a cached file costs the system call and the copy out of the buffer cache
    per call; the rate is below the bare uncached copy rate of the same machine."""
    got = bench.file_cache_read(rows("U5"), 1)["U5"]
    prof = PROFILES[ROWS["U5"].platform]
    bare = 16 * 1024 / (prof.copy_cycles(16 * 1024) / prof.cpu_hz.value) / 1e6     # MB/s
    assert 0 < got < bare


def test_a_caught_exception_runs_the_signal_path_not_the_sosp_value():
    """X1-1/X1-3: the round trip through a user handler is ULTRIX 4.2's trap, psignal/psig,
    sendsig, trampoline, sigreturn path (sw.ultrix.signals), not the profile's SOSP'95 row:
    its time is the pieces' instructions and stores, and a protection fault costs exactly the
    fault path more than an overflow."""
    from sw.ultrix.signals import FAULT_PATH, SIGNAL_PATH

    got = bench.exception_to_handler(rows("X1-1", "X1-3"), 1)
    prof = PROFILES[ROWS["X1-1"].platform]
    wb = int(prof.memory.write_buffer_entries.value)
    store = prof.word_write_ps.value / prof.cycle_ps

    def cycles(piece):
        return prof.instructions(piece.instructions) + max(0, piece.stores - wb) * store

    us = 1e6 / prof.cpu_hz.value
    expect = (sum(cycles(p) for p in SIGNAL_PATH) + prof.syscall_cycles.value
              + prof.instructions(bench.HANDLER_INSTRUCTIONS)) * us
    assert got["X1-1"] == pytest.approx(expect, abs=0.1)
    assert got["X1-3"] - got["X1-1"] == pytest.approx(cycles(FAULT_PATH) * us, abs=0.1)
    assert got["X1-1"] != pytest.approx(prof.exception_dispatch_cycles.value * us, rel=0.05)


def test_deliver_signal_refuses_an_unknown_cause():
    from sim.kernel import Kernel
    from sim.cpu import CPU
    from sw.ultrix.kernel import UltrixKernel
    from sw.ultrix.signals import deliver_signal

    k = Kernel()
    prof = PROFILES[ROWS["X1-1"].platform]
    uk = UltrixKernel(k, CPU(k, prof), name="u")

    async def body(proc):
        try:
            await deliver_signal(proc, "divide", lambda p: None)
        except ValueError as e:
            return str(e)
        return ""

    assert "divide" in bench._run(k, uk, body, "p")


def _read_costs(size: int, call: int = 16 * 1024):
    """Read a ``size``-byte file twice through the Ultrix read() into a 16 KB user buffer on the
    U5 platform; the CPU's breakdown of the second pass."""
    from sim.cpu import FILESYSTEM, MEMORY_STALL

    k, uk, _ = bench._machine(ROWS["U5"].platform)
    prof = PROFILES[ROWS["U5"].platform]

    async def body(proc):
        fs = await bench.file_in_cache(k, uk, "/f", size)
        # place the user buffer where the data cache does not alias it with the file's first
        # blocks in the buffer cache's memory (a direct-mapped conflict would hide the point)
        inode = await fs._iget(await fs.lookup("/f"))
        src = fs._buffer_address(await fs._bmap(inode, 0))
        dsize = int(prof.memory.dcache_bytes.value)
        here = uk.cpu.region("probe", 4).base + 4          # where the next region starts
        gap = (src + dsize // 2 - here) % dsize
        if gap:
            uk.cpu.region("pad", gap)
        buf = uk.cpu.region("user", call)

        async def whole():
            f = await uk.open(proc, "/f")
            while await uk.read_file(proc, f, call, buf=buf):
                pass
            await uk.close_file(proc, f)

        await whole()
        uk.cpu.reset_stats()
        await whole()
        bd = uk.cpu.breakdown()
        return bd[MEMORY_STALL].cycles, bd[FILESYSTEM].cycles

    return bench._run(k, uk, body, "r")


def test_read_copies_from_the_buffer_cache_through_the_data_cache_per_block():
    """U5's primitives: read() runs ufs_rwgp's block loop once per block touched, and its copy
    comes from the block's place in the buffer cache's memory: a small file read again finds
    its source in the data cache (no read misses), a file larger than the data cache misses on
    every line of it as Ousterhout's large file did."""
    prof = PROFILES[ROWS["U5"].platform]
    small_stall, small_fs = _read_costs(8 * 1024)
    big_stall, big_fs = _read_costs(256 * 1024)
    per_block = prof.instructions(UltrixCosts().read_block_instructions)
    assert big_fs - small_fs >= (64 - 2) * per_block          # one block loop per 4 KB block
    # the big file's copy stalls on its source, per byte far more than the warm small file's
    assert big_stall / (256 * 1024) > 4 * (small_stall / (8 * 1024))


def test_open_close_pays_copen_and_closef_around_namei():
    """U6: open+close of "foo" is two system calls, one namei component, the file entry taken
    and released, and the gfs work around them: copen's name buffer, copyinstr, locks and
    access check, and closef's release of the gnode (ULTRIX 4.2 gfs)."""
    got = bench.open_close(rows("U6-1"), 1)["U6-1"]
    prof = PROFILES[ROWS["U6-1"].platform]
    c = UltrixCosts()
    cycles = (2 * prof.syscall_cycles.value + c.namei + 2 * c.falloc + c.copen + c.closef)
    assert got == pytest.approx(cycles / prof.cpu_hz.value * 1e3, rel=0.02)    # ms


def test_a_namei_component_pays_ufs_namei_s_cache_hit_path():
    """U6: each path component runs ufs_namei's name-cache-hit path (access(), the component
    copy and hash, the nchash probe, ggrab and grele, the gnode's LK_WAIT lock through
    smp_lock_long, the revalidation): counted in ULTRIX 4.2's source at about 470
    instructions at the kernel CPI, plus the NHASH divide's interlock, not the 300
    instructions of the first estimate."""
    got = bench.open_close(rows("U6-1", "U6-2"), 1)
    prof = PROFILES[ROWS["U6-1"].platform]
    per_component_cycles = (got["U6-2"] - got["U6-1"]) / 3 * 1e-3 * prof.cpu_hz.value
    assert per_component_cycles >= prof.instructions(470) + 33


def test_select_s_fixed_path_is_ultrix_4_2_s_select_and_selscan_recounted():
    """U3-1: select()'s fixed path (the bzero of the fd_mask arrays, copyin of the set and the
    timeval through usercopy.s's nofault bracket, itimerfix/timevaladd with their spl calls,
    selscan's walk of the three sets with ffs, copyout of the result) is about 540
    instructions counted in ULTRIX 4.2, at least one cycle each: not the first estimate's
    180 instructions."""
    got = bench.select_zero_timeout(rows("U3-1"), 1)["U3-1"]
    prof = PROFILES[ROWS["U3-1"].platform]
    base_cycles = (got * 1e-6 * prof.cpu_hz.value - prof.syscall_cycles.value
                   - prof.select_per_fd_cycles.value)
    assert base_cycles >= 540
