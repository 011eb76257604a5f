"""DiskSim validate traces: parsing, replay against the RZ26 model, comparison statistics."""
from __future__ import annotations

import math
import random

import pytest

from hw.disk.mechanism import DiskMechanism, Op
from hw.disk.trace import (TraceError, TraceRecord, compare, demerit, format_trace, parse_trace,
                           read_trace, replay)
from sim.time import MS, US

TRACE = """\
R Miss 1000 8 18250.0 1000.0
R Hit 1008 8 1795 1000.0
R Hit 1016 8 1795.0 500.5
W Miss 777777 2 20125.5 0
R Miss 2000000 16 25000.000 3000.0
R Miss 12345 1 14500 0.000001
"""


def test_parse_a_synthetic_trace_file(tmp_path):
    path = tmp_path / "t.validate"
    path.write_text(TRACE)
    recs = read_trace(path)
    assert len(recs) == 6
    r = recs[0]
    assert (r.op, r.hit, r.lbn, r.count) == (Op.Read, False, 1000, 8)
    assert r.service_ps == 18_250 * US and r.gap_ps == 1_000 * US and r.line == 1
    assert recs[2].gap_ps == 500_500_000
    assert recs[3].op is Op.Write and recs[3].gap_ps == 0
    assert recs[5].gap_ps == 1                      # 1e-6 us = 1 ps, exactly
    assert parse_trace(format_trace(recs)) == [TraceRecord(*(getattr(x, f) for f in
                                               ("op", "hit", "lbn", "count", "service_ps", "gap_ps")),
                                               line=i + 1) for i, x in enumerate(recs)]


@pytest.mark.parametrize("line, message", [
    ("R Miss 1000 8 18.25", "line 2: expected 6 fields"),
    ("X Miss 1000 8 18.25 1", "line 2: first field must be R or W"),
    ("R Maybe 1000 8 18.25 1", "line 2: second field must be Hit or Miss"),
    ("R Miss 10.5 8 18.25 1", "line 2: starting block must be an integer"),
    ("R Miss 1000 0 18.25 1", "line 2: block count must be >= 1"),
    ("R Miss 1000 8 fast 1", "line 2: service time must be a number"),
    ("R Miss 1000 8 18.25 -1", "line 2: gap to next request must be a finite number >= 0"),
    ("R Miss 1000 8 inf 1", "line 2: service time must be a finite number"),
])
def test_parse_errors_name_the_line(line, message):
    with pytest.raises(TraceError, match=message):
        parse_trace("R Miss 1 1 1 1\n" + line + "\n", "t")


def test_comments_and_blank_lines_are_skipped():
    recs = parse_trace("# header\n\nR hit 5 1 1.0 2.0  # trailing\n")
    assert len(recs) == 1 and recs[0].hit and recs[0].line == 3


def test_replay_issues_requests_one_at_a_time():
    recs = parse_trace(TRACE)
    mech = DiskMechanism()
    result = replay(recs, mech)
    reqs = result.requests
    assert len(reqs) == 6 and reqs[0].arrival_ps == 0
    for prev, nxt in zip(reqs, reqs[1:]):
        # Closed loop: the next request arrives the traced gap after the simulated completion.
        assert nxt.arrival_ps == prev.completion_ps + prev.record.gap_ps
    for r in reqs:
        assert r.service_ps == r.breakdown.total > 0
    # The model reproduces the trace's buffer outcomes: a miss, two sequential hits, misses.
    assert [r.breakdown.hit for r in reqs] == [False, True, True, False, False, False]
    assert result.hit_agreement == 1.0
    # Sequential hits cost the read-hit overhead plus 8 blocks over the bus.
    p = mech.params
    assert reqs[1].service_ps == p.overheads.read_hit_after_read + 8 * p.bus_block_ps
    # Same trace, same answer.
    again = replay(recs, mech)
    assert [r.completion_ps for r in again.requests] == [r.completion_ps for r in reqs]
    stats = result.compare()
    assert stats.n == 6
    assert stats.mean_simulated == pytest.approx(sum(r.service_ps for r in reqs) / 6 / MS)


def test_replay_reports_requests_off_the_disk():
    with pytest.raises(TraceError, match="line 1: .*runs off the disk"):
        replay(parse_trace("R Miss 2050860 1 1 1\n"))


def test_demerit_on_hand_checkable_inputs():
    assert demerit([1, 2, 3], [3, 1, 2]) == 0.0                  # identical distributions
    assert demerit([1, 2, 3], [2, 3, 4]) == pytest.approx(1.0)   # shifted by 1
    assert demerit([5], [2]) == pytest.approx(3.0)
    # Quantiles of [0, 2] are 0 on (0, 1/2] and 2 on (1/2, 1]: sqrt(1/2 * 2^2) = sqrt 2.
    assert demerit([0, 0], [0, 2]) == pytest.approx(math.sqrt(2))
    # Different sizes: [1] against [1, 3] differ by 2 on half the probability range.
    assert demerit([1], [1, 3]) == pytest.approx(math.sqrt(2))
    # [0, 1, 2] vs [0, 3]: breakpoints 1/3, 1/2, 2/3, 1; differences 0, 1, -2, -1 on
    # intervals of 1/3, 1/6, 1/6, 1/3: sqrt(1/6 + 4/6 + 1/3) = sqrt(7/6).
    assert demerit([0, 1, 2], [0, 3]) == pytest.approx(math.sqrt(7 / 6))
    # Symmetric, and zero for the same multiset in any order.
    rng = random.Random(9)
    a = [rng.random() for _ in range(50)]
    b = [rng.random() for _ in range(70)]
    assert demerit(a, b) == pytest.approx(demerit(b, a))
    assert demerit(a, list(reversed(a))) == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        demerit([], [1])


def test_compare_statistics():
    s = compare([10.0, 20.0, 30.0, 40.0], [12.0, 18.0, 33.0, 41.0])
    assert s.n == 4
    assert s.mean_measured == 25.0 and s.mean_simulated == 26.0
    assert s.mean_error == pytest.approx(1.0)                       # (2 - 2 + 3 + 1) / 4
    assert s.rms_error == pytest.approx(math.sqrt((4 + 4 + 9 + 1) / 4))
    assert s.demerit == pytest.approx(math.sqrt((4 + 4 + 9 + 1) / 4))   # same order here
    assert s.demerit_percent == pytest.approx(100 * s.demerit / 25.0)
    same = compare([1.0, 5.0, 3.0], [1.0, 5.0, 3.0])
    assert same.mean_error == same.rms_error == same.demerit == 0.0
    # A permutation: every request wrong, the distributions identical.
    perm = compare([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
    assert perm.rms_error > 0 and perm.demerit == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        compare([1.0], [1.0, 2.0])
