"""DEC RZ26 timing model: layout, seek curve, rotation, overheads, bus and read-ahead cache."""
from __future__ import annotations

import random
from fractions import Fraction

import pytest

from hw.disk.geometry import Geometry, Pbn
from hw.disk.mechanism import (DiskMechanism, DiskParams, Drive, DriveState, Op, Request, SeekCurve,
                               load_params)
from sim.time import MS, US


@pytest.fixture(scope="module")
def mech() -> DiskMechanism:
    return DiskMechanism()


# ---- parameters ---------------------------------------------------------------------------------
def test_shipped_parameters_are_the_rz26(mech):
    p = mech.params
    g = p.geometry
    assert (g.surfaces, g.cylinders, g.blocks, g.blocks_per_track) == (14, 2599, 2_050_860, 58)
    assert p.rpm == 5360
    assert p.head_switch_ps == 865 * US
    assert p.bus_block_ps == 70_690_000
    assert p.overheads.read_hit_after_read == 1_229 * US
    assert p.overheads.write_miss_after_write == 1_942 * US
    assert p.cache.segments == 10 and p.cache.max_read_ahead_blocks == 57
    assert len(p.seek.distances) == 64   # the 64 measured distances


def test_params_load_from_a_file_and_report_missing_keys(tmp_path):
    src = DiskParams.load()
    (tmp_path / "seek.csv").write_text("cylinders,seek_ms\n1,1.0\n100,5.0\n")
    text = (pytest.importorskip("importlib.resources").files("hw.disk") / "rz26" / "params.toml").read_text()
    (tmp_path / "p.toml").write_text(text)
    p = DiskParams.load(tmp_path / "p.toml")
    assert p.geometry == src.geometry and p.seek.time(100) == 5 * MS
    (tmp_path / "bad.toml").write_text(text.replace("rpm = 5360", ""))
    with pytest.raises(ValueError, match="missing key 'rpm' in \\[mechanism\\]"):
        DiskParams.load(tmp_path / "bad.toml")
    (tmp_path / "seek.csv").write_text("cylinders,seek_ms\n1,1.0\n5,x\n")
    with pytest.raises(ValueError, match="line 3"):
        DiskParams.load(tmp_path / "p.toml")


# ---- seek ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance, ms", [(1, 1.01), (10, 2.88), (100, 5.49), (1000, 11.66), (2598, 19.10)])
def test_seek_times_match_calibration(mech, distance, ms):
    # CALIBRATION.md: 1.01 / 2.88 / 5.49 / 11.66 ms; full stroke (2598 cylinders) 19.10 ms.
    assert mech.seek_time(distance) == pytest.approx(ms * MS, rel=0.01)


def test_seek_interpolates_and_combines_head_switch_and_write_settle(mech):
    s = mech.params.seek
    # Halfway between the measured 500 and 600 cylinders.
    assert mech.seek_time(550) == (s.time(500) + s.time(600)) // 2
    assert mech.seek_time(0) == 0
    assert mech.seek_time(0, head_change=True) == 865 * US
    assert mech.seek_time(1, head_change=True) == s.time(1)                   # max(1.014, 0.865)
    assert mech.seek_time(0, head_change=True, write=True) == (865 - 483) * US
    assert mech.seek_time(100, write=True) == s.time(100) - 483 * US
    assert mech.seek_time(0, write=True) == 0                                # no move, no settle
    assert all(mech.seek_time(d) <= mech.seek_time(d + 1) for d in range(0, 2598, 7))


def test_seek_curve_rejects_bad_tables():
    with pytest.raises(ValueError, match="increasing"):
        SeekCurve((1, 1), (1, 2))
    with pytest.raises(ValueError, match="line 2"):
        SeekCurve.from_csv("1,1.0\n2\n")


# ---- geometry -----------------------------------------------------------------------------------
def test_geometry_layout_of_the_rz26(mech):
    g = mech.geometry
    assert g.data_per_track == 57
    # 23 142 empty blocks = 29 whole cylinders: LBN 0 is sector 0 of cylinder 29, surface 0.
    assert g.lbn_to_pbn(0) == Pbn(29, 0, 0)
    assert g.lbn_to_pbn(g.blocks - 1) == Pbn(2598, 13, 56)
    assert g.lbn_to_pbn(56) == Pbn(29, 0, 56) and g.lbn_to_pbn(57) == Pbn(29, 1, 0)
    assert g.lbn_to_pbn(57 * 14) == Pbn(30, 0, 0)
    with pytest.raises(ValueError, match="outside the disk"):
        g.lbn_to_pbn(g.blocks)
    with pytest.raises(ValueError, match="spare"):
        g.pbn_to_lbn((100, 3, 57))
    with pytest.raises(ValueError, match="zone front"):
        g.pbn_to_lbn((28, 13, 56))
    with pytest.raises(ValueError, match="cylinder"):
        g.pbn_to_lbn((2599, 0, 0))


def test_geometry_round_trips_random_and_edge_lbns(mech):
    g = mech.geometry
    rng = random.Random(1995)
    edges = {0, 1, g.blocks - 1, g.blocks - 2}
    for c in (29, 30, 500, 2597, 2598):                       # track and cylinder boundaries
        for h in (0, 1, 12, 13):
            first = (c * 14 + h) * 57 - 23142
            edges.update(x for x in (first - 1, first, first + 56, first + 57) if 0 <= x < g.blocks)
    for lbn in sorted(edges) + [rng.randrange(g.blocks) for _ in range(5000)]:
        p = g.lbn_to_pbn(lbn)
        assert g.pbn_to_lbn(p) == lbn
        assert g.track_first_lbn(lbn) <= lbn <= g.track_last_lbn(lbn)
    # Every data sector of a few whole tracks maps back and forth.
    for c, h in ((29, 0), (1000, 7), (2598, 13)):
        lbns = [g.pbn_to_lbn((c, h, s)) for s in range(57)]
        assert lbns == list(range(lbns[0], lbns[0] + 57))
        assert g.track_first_lbn(lbns[5]) == lbns[0] and g.track_last_lbn(lbns[5]) == lbns[-1]


def test_geometry_skews(mech):
    g = mech.geometry
    assert g.track_skew(0, 0) == 0
    assert g.track_skew(0, 1) == 7                       # one head switch
    assert g.track_skew(1, 0) == (13 * 7 + 25) % 58      # 13 head switches and a cylinder switch
    assert (g.track_skew(5, 0) - g.track_skew(4, 13)) % 58 == 25
    assert g.slot((3, 2, 10)) == (g.track_skew(3, 2) + 10) % 58


def test_geometry_rejects_inconsistent_parameters():
    with pytest.raises(ValueError, match="fewer than"):
        Geometry(surfaces=1, cylinders=1, blocks=100, blocks_per_track=58)
    with pytest.raises(ValueError, match="spares_per_track"):
        Geometry(surfaces=1, cylinders=1, blocks=1, blocks_per_track=2, spares_per_track=2)


# ---- rotation -----------------------------------------------------------------------------------
def test_rotation_is_a_pure_function_of_absolute_time(mech):
    rev = mech.revolution
    assert float(rev) == pytest.approx(11.194 * MS, rel=1e-4)     # 5360 rpm
    assert mech.angle(0) == 0
    assert mech.angle(int(rev / 4)) < Fraction(1, 4) <= mech.angle(int(rev / 4) + 1)
    t = 123_456_789_012
    # Same answer however the time was reached, and periodic in 60 s (an integer ps count).
    assert mech.angle(t) == mech.angle(t + 60 * 10**12) and mech.rotational_latency(t, 5) == \
        mech.rotational_latency(t + 60 * 10**12, 5)
    # Slot boundaries are whole ps, never early, less than 1 ps late.
    for k in (1, 57, 58, 10**9 + 7):
        b = mech.slot_boundary(k)
        assert 0 <= b - k * mech.sector_time < 1
        assert mech.first_boundary_at_or_after(b) == k
        assert mech.first_boundary_at_or_after(b + 1) == k + 1


def test_media_transfer_per_sector(mech):
    # One sector passes in a 58th of a revolution: 0.193 ms; 57 blocks per track at 5360 rpm
    # give CALIBRATION's "about 2.65 MB/s".
    assert float(mech.sector_time) == pytest.approx(0.193 * MS, rel=1e-3)
    bytes_per_s = 57 * 512 / (float(mech.revolution) / 1e12)
    assert bytes_per_s == pytest.approx(2.65e6, rel=0.03)


def test_average_rotational_latency_over_random_requests():
    # Random single-block reads and writes at random times: initial rotational latency averages
    # half a revolution, 5.6 ms (CALIBRATION.md), within 2 %.
    drive = Drive()
    g = drive.mechanism.geometry
    rng = random.Random(5360)
    t, latencies = 0, []
    for _ in range(8000):
        op = Op.Read if rng.random() < 0.7 else Op.Write
        completion, b = drive.submit(Request(op, rng.randrange(g.blocks)), t)
        assert b.total == completion - t
        if not b.hit:
            latencies.append(b.rotation)
        t = completion + rng.randrange(20 * MS)
    assert len(latencies) > 7900
    assert sum(latencies) / len(latencies) == pytest.approx(5.6 * MS, rel=0.02)


# ---- requests -----------------------------------------------------------------------------------
def test_a_read_miss_is_overhead_seek_rotation_transfer_and_bus(mech):
    g = mech.geometry
    lbn = g.pbn_to_lbn((1029, 0, 0))        # 1000 cylinders from the arm's home at cylinder 29
    state = DriveState(cylinder=29, surface=0)
    t0 = 1_000_000_000
    completion, b, new = mech.service(Request(Op.Read, lbn, 4), state, t0)
    p = mech.params
    assert not b.hit and b.queue == 0
    assert b.overhead == p.overheads.read_miss_after_read
    assert b.seek == mech.seek_time(1000)
    t_on_track = t0 + b.overhead + b.seek
    assert b.rotation == mech.rotational_latency(t_on_track, g.slot(g.lbn_to_pbn(lbn)))
    assert abs(b.transfer - 4 * mech.sector_time) < 1
    assert b.bus == p.bus_block_ps                      # only the last block's bus time shows
    assert completion - t0 == b.total
    assert (new.cylinder, new.surface) == (1029, 0) and new.last_op is Op.Read


def test_a_write_waits_for_the_media_and_the_completion_message(mech):
    g = mech.geometry
    lbn = g.pbn_to_lbn((129, 3, 10))
    t0 = 0
    completion, b, new = mech.service(Request(Op.Write, lbn, 2), DriveState(cylinder=29), t0)
    o = mech.params.overheads
    assert not b.hit
    assert b.overhead == o.write_miss_after_read + o.write_completion
    assert b.seek == mech.seek_time(100, head_change=True, write=True)
    assert completion - t0 == b.total
    assert new.last_op is Op.Write and new.last_write_end == lbn + 2
    # The next command after a write pays the after-write overhead; a read of what was just
    # written hits the buffer (write-through keeps the data).
    c2, b2, _ = mech.service(Request(Op.Read, lbn, 2), new, completion)
    assert b2.hit and b2.overhead == o.read_hit_after_write
    assert b2.seek == b2.rotation == b2.transfer == 0
    assert c2 - completion == o.read_hit_after_write + 2 * mech.params.bus_block_ps


def test_sequential_writes_combine_but_still_wait_for_the_platter():
    drive = Drive()
    first = drive.mechanism.geometry.track_first_lbn(40_000)   # all four writes on one track
    t = 0
    hits = []
    for i in range(4):
        completion, b = drive.submit(Request(Op.Write, first + 8 * i, 8), t)
        hits.append(b.hit)
        if i:
            # Write-through: the head passed the next sector during the overhead, so a
            # sequential write waits most of a revolution.
            assert b.seek == 0 and b.rotation > 0.5 * float(drive.mechanism.revolution)
        t = completion
    assert hits == [False, True, True, True]


def test_requests_queue_and_must_come_in_time_order(mech):
    c1, _, s1 = mech.service(Request(Op.Read, 0, 1), DriveState(), 0)
    c2, b2, s2 = mech.service(Request(Op.Read, 500_000, 1), s1, 1)
    assert b2.queue == c1 - 1 and c2 - 1 == b2.total
    with pytest.raises(ValueError, match="time order"):
        mech.service(Request(Op.Read, 0, 1), s2, 0)
    with pytest.raises(ValueError, match="runs off the disk"):
        mech.service(Request(Op.Read, mech.geometry.blocks - 1, 2), s2, c2)
    with pytest.raises(ValueError, match="count"):
        Request(Op.Read, 0, 0)


# ---- read-ahead cache ---------------------------------------------------------------------------
def _stream(lbns, count, think_ps, seed=None):
    drive = Drive()
    t, out = 0, []
    for lbn in lbns:
        completion, b = drive.submit(Request(Op.Read, lbn, count), t)
        assert b.total == completion - t
        out.append((completion - t, b))
        t = completion + think_ps
    return drive, out


def test_sequential_reads_hit_after_the_first_miss():
    drive, out = _stream([100_000 + 8 * i for i in range(40)], 8, 1 * MS)
    assert [b.hit for _, b in out] == [False] + [True] * 39
    o = drive.mechanism.params.overheads
    bus = drive.mechanism.params.bus_block_ps
    # Read-ahead keeps ahead of an 8-block stream with 1 ms think time: served from the buffer.
    assert all(b.seek == b.rotation == b.transfer == 0 for _, b in out[1:])
    assert all(s == o.read_hit_after_read + 8 * bus for s, _ in out[1:])
    assert out[0][0] > 3 * out[1][0]


def test_a_sequential_stream_faster_than_read_ahead_streams_from_the_media():
    # 64-block reads with no think time outrun a 57-block read-ahead: still hits, but the
    # drive keeps streaming without repositioning: the only waits are the track and cylinder
    # switches, each hidden within its skew (7 or 25 sectors); no revolution is lost.
    drive, out = _stream([200_000 + 64 * i for i in range(10)], 64, 0)
    mech = drive.mechanism
    sector = float(mech.sector_time)
    assert [b.hit for _, b in out] == [False] + [True] * 9
    for s, b in out[1:]:
        assert b.transfer > 0
        assert b.seek + b.rotation <= 2 * 25 * sector           # at most two switches in 64 blocks
        assert s <= (64 + 2 * 25) * sector + mech.params.bus_block_ps


def test_random_reads_miss():
    rng = random.Random(7)
    g = DiskMechanism().geometry
    _, out = _stream([rng.randrange(g.blocks - 8) for _ in range(300)], 8, 2 * MS)
    assert sum(b.hit for _, b in out) == 0


def test_read_ahead_fills_only_while_idle_and_stops_at_57_blocks():
    mech = DiskMechanism()
    c, _, s = mech.service(Request(Op.Read, 300_000, 8), DriveState(), 0)
    pf = s.prefetch
    assert pf is not None and pf.next_lbn == 300_008 and pf.limit == 300_008 + 57
    # Long after: the whole read-ahead is buffered, and a read of its last block hits...
    c2, b2, s2 = mech.service(Request(Op.Read, 300_008 + 56, 1), s, c + 100 * MS)
    assert b2.hit and b2.transfer == 0
    # ... while the block after the read-ahead window is a miss.
    _, b3, _ = mech.service(Request(Op.Read, 300_008 + 57 + 1, 1), s, c + 100 * MS)
    assert not b3.hit
    # Right after completion only the first few read-ahead blocks are in: a read further on
    # in the window is still a hit (continuous read) but waits for the media.
    _, b4, _ = mech.service(Request(Op.Read, 300_008 + 50, 1), s, c)
    assert b4.hit and b4.transfer > 0


def test_lru_segments_keep_ten_streams():
    mech = DiskMechanism()
    s, t = DriveState(), 0
    starts = [1_000 + 100_000 * i for i in range(11)]
    for lbn in starts[:10]:
        t, _, s = mech.service(Request(Op.Read, lbn, 4), s, t + 30 * MS)
    # Each finished segment holds its stream's 57 read-ahead blocks (the newest 57: read-ahead
    # has pushed out the 4 requested ones); the last is still being filled (lazily evaluated).
    assert sorted(seg.lo for seg in s.segments)[:9] == [lbn + 4 for lbn in starts[:9]]
    t, b, s = mech.service(Request(Op.Read, starts[0] + 10, 4), s, t + 30 * MS)   # still buffered
    assert b.hit
    t, b, s = mech.service(Request(Op.Read, starts[10], 4), s, t + 30 * MS)   # evicts starts[1]'s
    assert not b.hit
    _, b, _ = mech.service(Request(Op.Read, starts[1] + 10, 4), s, t + 30 * MS)
    assert not b.hit


def test_deterministic():
    def run():
        rng = random.Random(3)
        drive = Drive()
        t, out = 0, []
        for _ in range(200):
            op = Op.Read if rng.random() < 0.6 else Op.Write
            lbn = rng.choice([rng.randrange(2_000_000), 5_000 + 8 * len(out)])
            c, b = drive.submit(Request(op, lbn, rng.randint(1, 16)), t)
            out.append((c, b))
            t = c + rng.randrange(5 * MS)
        return out
    assert run() == run()


def test_load_params_default_is_the_shipped_set():
    assert load_params() == DiskParams.load()
