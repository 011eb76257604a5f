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
