"""The shared 10 Mbit/s Ethernet segment: framing, CSMA/CD timing, contention, give-up, determinism."""
from __future__ import annotations

import io
import zlib

import dpkt
import pytest

from sim.kernel import Kernel, SimulationError
from sim.media.ethernet import (ATTEMPT_LIMIT, BROADCAST, ExcessiveCollisions, FrameError,
                                RxFrame, Segment, Transmission, build_frame, check_frame, fcs,
                                format_mac, mac, strip_fcs, wire_bits)
from sim.media.pcap import PcapNgWriter
from sim.time import MS, NS, S, US

BIT = 100 * NS           # CALIBRATION.md: 10 Mbit/s
IFG = 96 * BIT
SLOT = 512 * BIT
PROP = 950 * NS          # the segment's default propagation delay
ETYPE = 0x88B5           # IEEE local experimental EtherType: no dissector second-guesses it


def station_mac(i: int) -> bytes:
    return bytes([0x02, 0, 0, 0, 0, i])


def tagged_frame(sender: int, seq: int, size: int) -> bytes:
    """A frame of ``size`` bytes before FCS whose payload names its sender and sequence."""
    payload = bytes([sender]) + seq.to_bytes(4, "big")
    payload = payload.ljust(size - 14, b"\xa5")
    return build_frame(BROADCAST, station_mac(sender), ETYPE, payload)


# -- frames ------------------------------------------------------------------------------------
def test_build_frame_pads_to_minimum_and_appends_little_endian_crc32():
    f = build_frame("ff:ff:ff:ff:ff:ff", "08:00:2b:01:02:03", 0x0800, b"hi")
    assert len(f) == 64
    assert f[:6] == BROADCAST and f[6:12] == bytes.fromhex("08002b010203")
    assert f[12:14] == b"\x08\x00" and f[14:16] == b"hi" and f[16:60] == bytes(44)
    assert f[60:] == zlib.crc32(f[:60]).to_bytes(4, "little")
    # The CRC of a frame with its own FCS appended is the fixed 802.3 residue (0xC704DD7B
    # complemented): an independent check that the byte order is the wire's.
    assert zlib.crc32(f) == 0x2144DF1C
    check_frame(f)
    assert strip_fcs(f) == f[:60]
    # dpkt, an independent parser, reads the same header.
    eth = dpkt.ethernet.Ethernet(f[:-4])
    assert eth.dst == BROADCAST and eth.type == 0x0800


def test_largest_frame_is_1518_bytes():
    f = build_frame(BROADCAST, station_mac(1), ETYPE, bytes(1500))
    assert len(f) == 1518
    check_frame(f)
    with pytest.raises(FrameError, match="too long"):
        build_frame(BROADCAST, station_mac(1), ETYPE, bytes(1501))


@pytest.mark.parametrize("frame, problem", [
    (bytes(63), "too short"),
    (bytes(10), "too short"),
    (bytes(1519), "too long"),
    (bytes(64), "bad FCS"),
    ("not bytes", "must be bytes"),
])
def test_check_frame_names_the_problem(frame, problem):
    with pytest.raises(FrameError, match=problem):
        check_frame(frame)


def test_bad_fcs_detected_for_any_flipped_bit():
    f = bytearray(build_frame(BROADCAST, station_mac(1), ETYPE, b"payload"))
    for i in (0, 13, 30, 60, 63):
        g = bytearray(f)
        g[i] ^= 0x10
        with pytest.raises(FrameError, match="bad FCS"):
            check_frame(bytes(g))


def test_mac_helpers():
    assert mac("08-00-2B-01-02-03") == bytes.fromhex("08002b010203")
    assert format_mac(bytes.fromhex("08002b010203")) == "08:00:2b:01:02:03"
    for bad in ("08:00:2b:01:02", "zz:00:2b:01:02:03", b"\x01\x02", 7):
        with pytest.raises(FrameError):
            mac(bad)
    with pytest.raises(FrameError, match="EtherType"):
        build_frame(BROADCAST, BROADCAST, 0x10000, b"")
    assert fcs(b"") == zlib.crc32(b"").to_bytes(4, "little")


def test_segment_parameters_are_validated():
    k = Kernel()
    with pytest.raises(ValueError, match="propagation_ps"):
        Segment(k, propagation_ps=-1)
    with pytest.raises(ValueError, match="attempt_limit"):
        Segment(k, attempt_limit=0)
    with pytest.raises(ValueError, match="pcap"):
        Segment(k, pcap="file.pcapng")
    seg = Segment(k)
    seg.attach("a")
    with pytest.raises(ValueError, match="already has a station named 'a'"):
        seg.attach("a")


# -- timing of one station ---------------------------------------------------------------------
def test_single_frame_timing_on_idle_segment():
    k = Kernel()
    seg = Segment(k)
    a, b = seg.attach("a"), seg.attach("b")
    f = tagged_frame(1, 0, 100)
    out = {}

    async def tx():
        out["r1"] = await a.send(f)
        out["r2"] = await a.send(f)

    async def rx():
        out["rx"] = [await b.recv(), await b.recv()]

    k.spawn(tx())
    k.spawn(rx())
    k.run()
    t_frame = wire_bits(104) * BIT
    r1, r2 = out["r1"], out["r2"]
    # An idle medium is used at once; the next frame waits exactly one inter-frame gap.
    assert (r1.start, r1.end, r1.attempts, r1.deferred) == (0, t_frame, 1, False)
    assert (r2.start, r2.end) == (t_frame + IFG, 2 * t_frame + IFG)
    rx1 = out["rx"][0]
    assert rx1 == RxFrame(f, "a", PROP, t_frame + PROP)
    assert seg.stats.frames == 2 and seg.stats.bytes == 2 * len(f)
    assert seg.stats.collisions == 0 and seg.stats.deferrals == 0
    assert seg.busy_time() == 2 * t_frame


def test_deferring_across_a_quiet_gap_is_one_kernel_wake_up():
    """A station with a frame due inside the inter-frame gap waits once, to the gap's end
    (listening until the commit point): the same start as before, one kernel event fewer than
    a wait to the commit point followed by a wait to the end."""
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    seg.attach("b")
    f = tagged_frame(1, 0, 100)
    out = []

    async def tx():
        out.append(await a.send(f))
        out.append(await a.send(f))

    k.spawn(tx())
    k.run()
    t_frame = wire_bits(104) * BIT
    assert (out[1].start, out[1].deferred) == (t_frame + IFG, False)
    assert k.events == 7


@pytest.mark.parametrize("size", [60, 64, 128, 512, 1024, 1460, 1514])
def test_saturation_goodput_matches_framing_arithmetic(size):
    """One station saturates the segment with ``size``-byte frames (header + data, FCS excluded).

    Framing arithmetic: each frame costs preamble+SFD (8 B) + frame (size + 4 B FCS) on the
    wire plus the 96-bit gap; the receiver's goodput is the ``size`` bytes of each frame.
    """
    n = 200
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    got: list[RxFrame] = []
    seg.attach("b", on_frame=got.append)
    frames = [tagged_frame(1, i, size) for i in range(n)]

    async def saturate():
        for f in frames:
            await a.send(f)

    k.spawn(saturate())
    k.run()
    util = seg.utilization()               # up to the last bit sent
    k.run(until=k.now + 1 * MS)            # the last frame reaches b PROP after send returns
    assert [rx.data for rx in got] == frames

    per_frame_bits = (8 + size + 4) * 8 + 96
    predicted = size * 8 / (per_frame_bits * BIT / S)          # bit/s
    # Steady state: bytes delivered between the first and the last delivery.
    steady = (n - 1) * size * 8 / ((got[-1].end - got[0].end) / S)
    # The whole run, from the first bit sent to the last bit received.
    whole = n * size * 8 / (got[-1].end / S)
    assert steady == pytest.approx(predicted, rel=0.01)
    assert whole == pytest.approx(predicted, rel=0.01)
    assert util == pytest.approx((per_frame_bits - 96) / per_frame_bits, rel=0.01)
    if size == 1514:
        # CALIBRATION.md: 1538 wire bytes per maximum frame.
        assert per_frame_bits // 8 == 1538
    assert seg.stats.collisions == 0
    assert k.events < 10 * n                # event-driven: a few kernel events per frame


# -- carrier sense, propagation window, deferral -----------------------------------------------
def _two_senders(offset_ps: int, **seg_kw):
    """a sends at 0, b sends ``offset_ps`` later; returns the segment, results and trace."""
    k = Kernel()
    seg = Segment(k, **seg_kw)
    a, b = seg.attach("a"), seg.attach("b")
    trace: list[Transmission] = []
    seg.monitors.append(trace.append)
    res = {}
    fa, fb = tagged_frame(1, 0, 500), tagged_frame(2, 0, 500)

    async def send(st, f, delay):
        await k.sleep(delay)
        res[st.name] = await st.send(f)

    k.spawn(send(a, fa, 0))
    k.spawn(send(b, fb, offset_ps))
    k.run()
    k.run(until=k.now + 1 * MS)
    return seg, res, trace, (a, b)


def test_start_inside_propagation_window_collides_and_both_jam():
    seg, res, trace, (a, b) = _two_senders(500 * NS)
    first = trace[:2]
    assert all(t.collided and t.corrupted for t in first)
    ta = next(t for t in first if t.station is a)
    tb = next(t for t in first if t.station is b)
    # Each hears the other one propagation delay after the other started...
    assert ta.detected_at == 500 * NS + PROP
    assert tb.detected_at == PROP
    # ...finishes its 64-bit preamble (still running), then jams 32 bits.
    assert ta.jam_start == 64 * BIT and ta.end == 96 * BIT
    assert tb.jam_start == 500 * NS + 64 * BIT and tb.end == 500 * NS + 96 * BIT
    assert seg.stats.collisions >= 1 and seg.stats.jams == 2 * seg.stats.collisions
    assert a.stats.collisions >= 1 and b.stats.collisions >= 1
    # Backoff resolves it and both frames get through.
    assert res["a"].attempts >= 2 and res["b"].attempts >= 2
    assert a.stats.frames_received == 1 and b.stats.frames_received == 1
    assert seg.stats.lost_frames == 0


def test_start_after_propagation_window_defers_instead():
    seg, res, trace, (a, b) = _two_senders(PROP + 100 * NS)
    assert not any(t.collided for t in trace)
    t_frame = wire_bits(504) * BIT
    assert res["a"].start == 0 and res["a"].attempts == 1
    # b heard a's carrier, waited for it to pass (end + PROP) and then one gap.
    assert res["b"].deferred and res["b"].attempts == 1
    assert res["b"].start == t_frame + PROP + IFG
    assert seg.stats.deferrals == 1 and b.stats.deferrals == 1


def test_committed_station_transmits_into_arriving_carrier_and_detects_at_once():
    """802.3 stops listening after the first 64 bits of the gap: a carrier that arrives
    after that does not stop the transmission, which collides from its first bit."""
    k = Kernel()
    seg = Segment(k)
    b = seg.attach("b")
    trace: list[Transmission] = []
    seg.monitors.append(trace.append)
    t_frame = wire_bits(64) * BIT
    box = {}

    async def run_b():
        await b.send(tagged_frame(2, 0, 60))          # 0 .. t_frame
        box["b"] = await b.send(tagged_frame(2, 1, 60))

    async def run_a():
        await k.sleep(1 * US)
        # Attached after b's first frame reached it: a never heard that frame.
        a = seg.attach("a")
        box["a_station"] = a
        # a starts so that its signal reaches b 8 us into b's gap: after b committed (6.4 us)
        # and before b starts (9.6 us).
        await k.sleep_until(t_frame + 8 * US - PROP)
        box["a"] = await a.send(tagged_frame(1, 0, 60))

    k.spawn(run_b())
    k.spawn(run_a())
    k.run()
    k.run(until=k.now + 1 * MS)
    tb = next(t for t in trace if t.station is b and t.attempt == 1 and t.collided)
    start = t_frame + IFG
    assert tb.start == start and tb.detected_at == start
    assert tb.jam_start == start + 64 * BIT and tb.end == start + 96 * BIT
    ta = next(t for t in trace if t.station.name == "a" and t.attempt == 1)
    assert ta.collided and ta.detected_at == start + PROP
    assert box["a"].attempts >= 2 and box["b"].attempts >= 2
    # The late-attached station received only what started reaching it after it attached.
    assert box["a_station"].stats.frames_received == 1
    assert seg.stats.lost_frames == 0


def test_late_collision_counted_when_propagation_exceeds_the_slot():
    # A pathological cable (60 us one way, longer than the 51.2 us slot): stations learn of
    # each other's frame only after 512 bits, which 802.3 calls a late collision.
    seg, res, trace, (a, b) = _two_senders(1 * US, propagation_ps=60 * US)
    assert seg.stats.late_collisions >= 1
    assert a.stats.frames_received == 1 and b.stats.frames_received == 1


def test_carrier_and_collision_signals_for_a_nic_model():
    k = Kernel()
    seg = Segment(k)
    a, b, c = seg.attach("a"), seg.attach("b"), seg.attach("c")
    carrier_c: list[tuple[int, bool]] = []
    collisions_a: list[int] = []

    async def watch_carrier():
        while True:
            v = await c.carrier_changed
            carrier_c.append((k.now, v))

    async def watch_collision():
        while True:
            collisions_a.append(await a.collision)

    k.spawn(watch_carrier(), daemon=True)
    k.spawn(watch_collision(), daemon=True)

    async def send(st, f, delay):
        await k.sleep(delay)
        await st.send(f)

    k.spawn(send(a, tagged_frame(1, 0, 60), 0))
    k.spawn(send(b, tagged_frame(2, 0, 60), 0))
    k.run()
    k.run(until=k.now + 1 * MS)
    # Both start at 0 and collide; a detects b's signal after one propagation delay.
    assert collisions_a and collisions_a[0] == PROP
    # c (a bystander) sees carrier rise when the first signals arrive, fall when they pass.
    assert carrier_c[0] == (PROP, True)
    assert carrier_c[1] == (96 * BIT + PROP, False)
    assert len(carrier_c) % 2 == 0 and not c.carrier
    assert c.stats.frames_received == 2


# -- contention --------------------------------------------------------------------------------
def run_contention(n_stations: int, n_frames: int, seed: int, size: int = 60,
                   pcap: PcapNgWriter | None = None):
    """Every station saturates the segment with ``n_frames`` tagged frames."""
    k = Kernel()
    seg = Segment(k, seed=seed, pcap=pcap)
    got: dict[str, list[RxFrame]] = {}
    stations = []
    for i in range(n_stations):
        name = f"s{i}"
        got[name] = []
        stations.append(seg.attach(name, on_frame=got[name].append))
    trace: list[tuple] = []
    seg.monitors.append(lambda t: trace.append(
        (t.station.name, t.attempt, t.start, t.end, t.collided, t.episode)))

    async def sender(i, st):
        for seq in range(n_frames):
            await st.send(tagged_frame(i, seq, size))

    tasks = [k.spawn(sender(i, st), name=st.name) for i, st in enumerate(stations)]
    k.run()
    k.run(until=k.now + 1 * MS)
    assert all(t.done for t in tasks)
    return seg, stations, got, trace


@pytest.mark.parametrize("n_stations, seed", [(3, 1), (4, 2), (6, 3)])
def test_contention_collides_jams_backs_off_and_delivers_every_frame_once(n_stations, seed):
    n_frames = 40
    seg, stations, got, trace = run_contention(n_stations, n_frames, seed)
    assert seg.stats.collisions > 0
    assert seg.stats.jams >= 2 * seg.stats.collisions      # every party to a collision jams
    assert sum(s.stats.backoff_ps for s in stations) > 0
    assert all(s.stats.backoff_ps % SLOT == 0 for s in stations)   # whole slot times
    assert seg.stats.excessive_collisions == 0 and seg.stats.lost_frames == 0
    assert seg.stats.late_collisions == 0
    assert seg.stats.frames == n_stations * n_frames
    # Every frame reaches every other station exactly once, each sender's in its own order.
    for i, st in enumerate(stations):
        seen: dict[int, list[int]] = {}
        for rx in got[st.name]:
            check_frame(rx.data)
            sender, seq = rx.data[14], int.from_bytes(rx.data[15:19], "big")
            assert rx.src == f"s{sender}" and sender != i
            seen.setdefault(sender, []).append(seq)
        assert seen == {j: list(range(n_frames)) for j in range(n_stations) if j != i}
    # The medium never carried two intact frames at once.
    ok = sorted((s, e) for _, _, s, e, c, _ in trace if not c)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(ok, ok[1:]))
    # A collision episode involves at least two transmissions, all of them jammed.
    episodes: dict[int, list] = {}
    for name, _, _, _, collided, ep in trace:
        if ep is not None:
            episodes.setdefault(ep, []).append((name, collided))
    assert len(episodes) == seg.stats.collisions
    assert all(len({n for n, _ in parts}) >= 2 and all(c for _, c in parts)
               for parts in episodes.values())


def test_contention_throughput_is_below_saturation_but_substantial():
    seg, stations, got, trace = run_contention(4, 40, seed=7, size=1514)
    # Collisions cost little with long frames: the wire stays mostly busy.
    assert 0.8 < seg.utilization() < 1.0


def test_sixteen_collisions_raise_excessive_collisions_and_segment_recovers():
    # backoff_limit=0 makes every backoff 0 slots: two stations that collide once collide on
    # every retry, so both give up after 16 attempts.
    k = Kernel()
    seg = Segment(k, backoff_limit=0)
    a, b = seg.attach("a"), seg.attach("b")
    errors: dict[str, ExcessiveCollisions] = {}
    after = {}

    async def send(st, i):
        try:
            await st.send(tagged_frame(i, 0, 60))
        except ExcessiveCollisions as e:
            errors[st.name] = e
        # The station and the segment still work: a lone frame goes through at once.
        if st is a:
            after["a"] = await a.send(tagged_frame(1, 1, 60))

    k.spawn(send(a, 1))
    k.spawn(send(b, 2))
    k.run()
    k.run(until=k.now + 1 * MS)
    assert set(errors) == {"a", "b"}
    assert errors["a"].attempts == ATTEMPT_LIMIT == 16
    assert "excessive collisions" in str(errors["a"]) and "'a'" in str(errors["a"])
    assert a.stats.collisions == 16 and a.stats.excessive_collisions == 1
    assert seg.stats.excessive_collisions == 2
    assert after["a"].attempts == 1
    assert b.stats.frames_received == 1


def test_unhandled_excessive_collisions_fail_the_run_clearly():
    k = Kernel()
    seg = Segment(k, backoff_limit=0, attempt_limit=3)
    a, b = seg.attach("a"), seg.attach("b")
    k.spawn(a.send(tagged_frame(1, 0, 60)), name="a")
    k.spawn(b.send(tagged_frame(2, 0, 60)), name="b")
    with pytest.raises(SimulationError, match="ExcessiveCollisions.*after 3 attempts"):
        k.run()


@pytest.mark.parametrize("bad, problem", [
    (bytes(40), "too short"),
    (bytes(2000), "too long"),
    (bytes(64), "bad FCS"),
])
def test_malformed_frame_is_refused_and_segment_keeps_working(bad, problem):
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    b = seg.attach("b")
    out = {}

    async def go():
        with pytest.raises(FrameError, match=problem):
            await a.send(bad)
        out["r"] = await a.send(tagged_frame(1, 0, 60))

    k.spawn(go())
    k.run()
    k.run(until=k.now + 1 * MS)
    assert out["r"].start == 0 and a.stats.rejected_frames == 1
    assert b.pending() == 1 and seg.stats.attempts == 1


def test_bad_fcs_carried_when_checking_is_off():
    k = Kernel()
    seg = Segment(k, check_fcs=False)
    a, b = seg.attach("a"), seg.attach("b")
    k.spawn(a.send(bytes(64)))
    k.run()
    k.run(until=k.now + 1 * MS)
    assert b.pending() == 1


def test_concurrent_sends_on_one_station_are_served_in_order():
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    got: list[RxFrame] = []
    seg.attach("b", on_frame=got.append)
    for i in range(5):
        k.spawn(a.send(tagged_frame(1, i, 60)))
    k.run()
    k.run(until=k.now + 1 * MS)
    assert [int.from_bytes(r.data[15:19], "big") for r in got] == list(range(5))
    assert seg.stats.collisions == 0


def test_cancelled_sender_releases_the_wire_and_the_station():
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    got: list[RxFrame] = []
    seg.attach("b", on_frame=got.append)
    big = tagged_frame(1, 0, 1514)
    sending = k.spawn(a.send(big), name="big")
    queued = k.spawn(a.send(tagged_frame(1, 1, 60)), name="queued")
    after = k.spawn(a.send(tagged_frame(1, 2, 60)), name="after")

    async def cancel():
        await k.sleep(100 * US)          # mid-frame (a 1518-byte frame takes 1221.6 us)
        queued.cancel()
        sending.cancel()

    k.spawn(cancel())
    k.run()
    k.run(until=k.now + 1 * MS)
    # The truncated frame is dropped; the third frame goes out one gap after the wire frees.
    assert [int.from_bytes(r.data[15:19], "big") for r in got] == [2]
    assert after.result.start == 100 * US + IFG
    assert not seg.busy and not a.carrier and seg.stats.frames == 1
    assert seg.stats.lost_frames == 0


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_gives_identical_stats_trace_and_pcap():
    runs = []
    for _ in range(2):
        buf = io.BytesIO()
        w = PcapNgWriter(buf)
        seg, stations, got, trace = run_contention(5, 20, seed=42, pcap=w)
        w.close()
        runs.append((seg.stats, [s.stats for s in stations], trace, buf.getvalue()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert runs[0][2] == runs[1][2]
    assert runs[0][3] == runs[1][3] and len(runs[0][3]) > 5 * 20 * 64
    other = run_contention(5, 20, seed=43)
    assert other[3] != runs[0][2]                     # a different collision pattern
    assert other[0].stats.frames == runs[0][0].frames  # but the same frames get through


def test_station_backoff_streams_are_independent_of_other_stations():
    def draws(names):
        seg = Segment(Kernel(), seed=9)
        sts = {n: seg.attach(n) for n in names}
        return [sts["x"].rng.random() for _ in range(5)]

    assert draws(["x"]) == draws(["a", "b", "x", "c"])
    assert draws(["x"]) != [Segment(Kernel(), seed=10).attach("x").rng.random() for _ in range(5)]


def test_docstring_examples_run():
    import doctest

    import sim.media.ethernet
    import sim.media.pcap

    for module in (sim.media.ethernet, sim.media.pcap):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


class _Phy:
    """Records what a transceiver-level attachment hears."""

    def __init__(self, k):
        self.k = k
        self.log = []

    def signal_start(self, tx):
        self.log.append(("start", self.k.now, tx.station.name, bytes(tx.frame)))

    def signal_end(self, tx, intact):
        self.log.append(("end", self.k.now, tx.station.name, intact))


def test_raw_transmission_is_propagated_delivered_and_captured():
    k = Kernel()
    buf = io.BytesIO()
    seg = Segment(k, seed=3, pcap=PcapNgWriter(buf))
    rtl, b = seg.attach("rtl"), seg.attach("b")
    phy = _Phy(k)
    rtl.attach_phy(phy)
    f = build_frame(BROADCAST, "02:00:00:00:00:01", 0x88B5, b"raw" * 20)

    async def mac():
        tx = rtl.begin_raw()
        assert rtl.carrier and rtl.transmitting and not rtl.hearing
        await k.sleep(seg.frame_time(len(f)))
        rtl.end_raw(tx, f)

    k.spawn(mac())
    k.run(until=1 * MS)
    assert b.pending() == 1
    assert rtl.stats.frames_sent == 1 and seg.stats.frames == 1
    assert phy.log == []                   # a station does not hear itself
    assert buf.getvalue().count(f) == 1    # the intact frame is in the capture


def test_raw_sender_hears_others_and_collides_like_any_station():
    k = Kernel()
    seg = Segment(k, seed=4)
    rtl, b = seg.attach("rtl"), seg.attach("b")
    phy = _Phy(k)
    rtl.attach_phy(phy)
    f = build_frame(BROADCAST, "02:00:00:00:00:02", 0x88B5, b"x" * 46)
    got = {}

    async def sender():
        try:
            await b.send(f)
            got["b"] = "sent"
        except ExcessiveCollisions:
            got["b"] = "gave up"

    async def mac():
        tx = rtl.begin_raw()                 # both start at t = 0: a collision
        detected = await rtl.collision
        got["detected"] = detected
        await k.sleep(seg.frame_time(0))     # preamble + jam, then stop
        rtl.end_raw(tx, None)
        got["tx"] = tx

    k.spawn(sender())
    k.spawn(mac())
    k.run(until=10 * MS)
    assert got["detected"] == seg.propagation_ps
    assert got["tx"].collided and not got["tx"].aborted
    assert got["b"] == "sent"                # b backs off and gets through afterwards
    assert rtl.stats.frames_sent == 0
    starts = [e for e in phy.log if e[0] == "start"]
    ends = [e for e in phy.log if e[0] == "end"]
    assert starts[0][1] == seg.propagation_ps and starts[0][3] == f   # frame known at its start
    assert ends[0][3] is False and ends[-1][3] is True                 # garbled, then intact
    assert seg.stats.frames == 1


def test_raw_api_misuse_is_refused():
    k = Kernel()
    seg = Segment(k)
    a = seg.attach("a")
    a.attach_phy(_Phy(k))
    with pytest.raises(RuntimeError, match="already has a PHY"):
        a.attach_phy(_Phy(k))
    tx = a.begin_raw()
    with pytest.raises(RuntimeError, match="already transmitting"):
        a.begin_raw()
    a.end_raw(tx, None)
    with pytest.raises(RuntimeError, match="not in progress"):
        a.end_raw(tx, None)
