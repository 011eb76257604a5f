"""serveros.validation.memory: Ousterhout's bcopy benchmark on the simulated 5000/200 (U4)."""
import pytest

from serveros.validation.anchors import load_anchors
from serveros.validation.memory import CACHED_SIZE, UNCACHED_SIZE, bcopy, bcopy_rate
from serveros.validation.registry import benchmarks

PLATFORM = "decstation-5000-200-ultrix"


def test_u4_rows_are_registered_and_come_out_of_the_memory_model():
    rows = load_anchors()
    assert benchmarks()["U4-1"] is bcopy and benchmarks()["U4-2"] is bcopy
    got = bcopy({rid: rows[rid] for rid in ("U4-1", "U4-2")}, seed=1)
    for rid in ("U4-1", "U4-2"):
        a = rows[rid]
        assert a.platform == PLATFORM
        assert abs(got[rid] / a.measured - 1) <= a.tolerance, (rid, got[rid], a.measured)
    assert got["U4-1"] > 2 * got["U4-2"]


def test_the_cached_rate_holds_until_source_and_destination_overflow_the_cache():
    # 64 KB data cache: 2 x 10 000 bytes fit, 2 x 50 000 do not; 200 000 never does
    fits, over, big = (bcopy_rate(PLATFORM, n) for n in (CACHED_SIZE, 50_000, UNCACHED_SIZE))
    assert fits > 1.5 * over and over >= big
    # the 5000/125's slower memory (80 ns cycles) is slower on both rows
    assert bcopy_rate("decstation-5000-125-ultrix43", CACHED_SIZE) < fits
    assert bcopy_rate("decstation-5000-125-ultrix43", UNCACHED_SIZE) < big


def test_bcopy_benchmark_is_deterministic_and_checks_its_input():
    assert bcopy_rate(PLATFORM, 5000) == bcopy_rate(PLATFORM, 5000)
    with pytest.raises(ValueError, match="no platform profile"):
        bcopy_rate("vax-780", 100)
    with pytest.raises(ValueError, match="transfer size"):
        bcopy_rate(PLATFORM, 600_000)
