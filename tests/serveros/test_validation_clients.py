"""The client rows' benchmarks: lmbench's definitions, and the proposed diagnostic rows."""
import pytest

from serveros.validation import clients
from serveros.validation.registry import benchmarks
from sim.platforms import PROFILES

PENTIUM = "client-pentium100-openbsd"


def test_the_proposed_pipe_rows_have_benchmarks():
    # C1-6 (lat_pipe) and C1-7 (lat_ctx's one-pass overhead) split C1-2's and C1-3's misses
    # between the context switch and the socket layer (docs/clients.md).
    got = benchmarks()
    assert {"C1-6", "C1-7"} <= set(got)
    assert got["C1-7"].__name__ == "pipe_pass"


def test_lat_ctx_is_the_ring_time_per_process_less_one_pass():
    # lmbench lat_ctx.c: time / procs - pipe_cost, pipe_cost being one pass through one pipe
    trip = clients.pipe_round_trip(PENTIUM)
    one = clients.pipe_pass(PENTIUM)
    assert clients.context_switch(PENTIUM) == pytest.approx(trip / 2 - one)
    # a pass is a write and a read: at least two system calls
    prof = PROFILES[PENTIUM]
    assert one > 2 * prof.syscall_cycles.value * prof.cycle_ps / 1e6


def test_the_sparcstation_copies_through_its_own_cache():
    # C4's bcopy (proposed C4-3 / C4-4): blocks that fit in the SPARCstation 1's 64 KB cache
    # copy at the loop's rate, larger ones pay a 16-byte line fill every 4 words.
    sparc = "client-sparcstation1-sunos41"
    got = benchmarks()
    assert got["C4-3"].__name__ == "bcopy_cached" and got["C4-4"].__name__ == "bcopy_uncached"
    cached, uncached = clients.bcopy_cached(sparc), clients.bcopy_uncached(sparc)
    prof = PROFILES[sparc]
    mhz = 1e6 / prof.cycle_ps
    assert cached == pytest.approx(4 * mhz / prof.copy_cached_cycles_per_word.value, rel=0.01)
    assert uncached == pytest.approx(4 * mhz / prof.copy_uncached_cycles_per_word.value, rel=0.02)
    assert cached > uncached
