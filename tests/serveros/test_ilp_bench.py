"""The ILP microbenchmark's rows (serveros/ilp_bench.py): every case cold and warm, the fused
loop never dearer than the separate passes and cheaper by the second pass when the data is
warm, the compiled copy priced as the calibrated bcopy, deterministic."""
import io

import pytest
from rich.console import Console

from serveros.ilp_bench import ilp_benchmarks, ilp_table


def by(rows, work, rule, how, warm):
    [r] = [r for r in rows if (r.work, r.rule, r.how, r.warm) == (work, rule, how, warm)]
    return r


def test_rows_cover_the_cases_and_fusion_pays():
    rows = ilp_benchmarks(nbytes=1460)
    assert len(rows) == 24 and all(r.nbytes == 1460 and r.cycles > 0 for r in rows)
    for rule in ("memory", "lance-pio", "pmad-pio"):
        for warm in (False, True):
            sep = by(rows, "copy+checksum", rule, "separate passes", warm)
            fused = by(rows, "copy+checksum", rule, "fused", warm)
            copy = by(rows, "copy", rule, "one loop", warm)
            # the same memory traffic as the copy alone, fewer cycles than two passes
            assert (fused.misses, fused.writes, fused.io_writes) == \
                (copy.misses, copy.writes, copy.io_writes)
            assert fused.cycles < sep.cycles
    for warm in (False, True):
        assert by(rows, "copy", "memory", "one loop", warm).cycles == \
            by(rows, "copy", "memory", "calibrated routine", warm).cycles


def test_deterministic_and_renders():
    assert ilp_benchmarks(nbytes=333) == ilp_benchmarks(nbytes=333)
    out = io.StringIO()
    Console(width=160, file=out).print(ilp_table(ilp_benchmarks(nbytes=64)))
    assert "fused" in out.getvalue() and "lance-pio" in out.getvalue()
    with pytest.raises(ValueError, match="nbytes must be a positive int"):
        ilp_benchmarks(nbytes=0)
