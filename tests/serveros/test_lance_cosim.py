"""RTL in the loop: the driver sends and receives frames through the LANCE card's gateware over
the simulated segment (le0's card is RTL on Verilator or Amaranth's simulator, le1's the model);
the frames land in the pcap and tshark decodes them."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from serveros.experiments.lance import run_lance_exchange
from serveros.rtl import simulator_missing
from sim.media.ethernet import JAM_BITS, build_frame


def _tshark_frames(path) -> list[tuple[str, str, int]]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "eth.src", "-e",
                          "eth.dst", "-e", "frame.len", "-e", "_ws.malformed"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        src, dst, n, *expert = line.split("\t")
        assert not any(expert), f"tshark finds a malformed frame: {line}"
        rows.append((src, dst, int(n)))
    return rows


@pytest.mark.hdl
def test_driver_through_rtl_on_verilator_over_the_segment(tmp_path) -> None:
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    pcap = tmp_path / "rtl.pcapng"
    r = run_lance_exchange(6, None, seed=5, backend="verilator", pcap_path=str(pcap))
    assert (r.frames, r.driver["le0"]["sent"], r.driver["le0"]["received"]) == (12, 6, 6)
    assert r.driver["le0"]["tx_errors"] == 0 and r.driver["le0"]["rx_errors"] == 0
    # Python woke per transaction, not per cycle.
    assert r.python_wakes < r.sim_ps // 80_000 // 10
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: frames were checked by the driver only")
    rows = _tshark_frames(pcap)
    assert len(rows) == 12
    for i, (src, dst, n) in enumerate(rows):
        me, peer = ("08:00:2b:00:00:01", "08:00:2b:00:00:02")[::1 if i % 2 == 0 else -1]
        assert (src, dst) == (me, peer)
        assert 64 <= n <= 1518          # the pcap holds the FCS too
    # Same seed, same run: the RTL co-simulation is deterministic to the byte.
    again = tmp_path / "again.pcapng"
    r2 = run_lance_exchange(6, None, seed=5, backend="verilator", pcap_path=str(again))
    assert r2 == r
    assert again.read_bytes() == pcap.read_bytes()


def test_driver_through_rtl_on_amaranth(tmp_path) -> None:
    pcap = tmp_path / "amaranth.pcapng"
    r = run_lance_exchange(1, 60, seed=3, backend="amaranth", pcap_path=str(pcap))
    assert (r.driver["le0"]["sent"], r.driver["le0"]["received"]) == (1, 1)
    if shutil.which("tshark"):
        assert [n for _, _, n in _tshark_frames(pcap)] == [64, 64]   # 60 bytes and the FCS


@pytest.mark.hdl
def test_rtl_and_model_backends_carry_the_same_frames(tmp_path) -> None:
    """The pcap of the same exchange holds the same frames at the same times (its bytes are
    equal), and the machines spend the same cycles, with ``le0``'s card as model or as RTL: the
    RTL's one-buffer frames are known when ``tx_en`` rises, as the model's are
    (hw.lance.attach.TxLookahead)."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    pcaps, runs = {}, {}
    for backend in ("model", "verilator"):
        pcaps[backend] = tmp_path / f"{backend}.pcapng"
        runs[backend] = run_lance_exchange(3, None, seed=9, backend=backend,
                                           pcap_path=str(pcaps[backend]))
    assert pcaps["model"].read_bytes() == pcaps["verilator"].read_bytes()
    model, rtl = runs["model"], runs["verilator"]
    assert (rtl.sim_ps, rtl.cpu, rtl.driver, rtl.segment) == \
        (model.sim_ps, model.cpu, model.driver, model.segment)


def _le0(backend: str, k, seg):
    """A bare DECstation's driver and LANCE card ``le0`` (model, or RTL on ``backend``) on
    ``seg``, the machine built by :class:`serveros.simulation.Simulation`. Returns (driver, MAC,
    simulation)."""
    from serveros.machines import LANCE_BASE, bare
    from serveros.simulation import Simulation
    from sim.devices import DeviceSpec
    from sw.drivers.lance import LanceDriver

    mac = bytes([0x08, 0x00, 0x2B, 0, 0, 1])
    spec = DeviceSpec("lance", "le0", LANCE_BASE, {"mac": mac, "station": "le0"})
    sim = Simulation(k, [bare("m0", (spec,))], media={"ethernet": seg},
                     rtl=() if backend == "model" else ("lance",),
                     backend="verilator" if backend == "model" else backend)
    host = sim.hosts["m0"]
    return LanceDriver(host.cpu, host.extra["bus"], LANCE_BASE,
                       irq=host.extra["devices"]["le0"].irq, name="le0"), mac, sim


def _run(sim) -> None:
    with sim:
        sim.run()


def _wire_log(seg) -> list[tuple]:
    """Every transmission on ``seg`` as it ends: (sender, start, end, collided, length)."""
    log: list[tuple] = []
    seg.monitors.append(lambda tx: log.append((tx.station.name, tx.start, tx.end, tx.collided,
                                               len(tx.frame))))
    return log


def _contended(backend: str, seed: int, frames: int, peers: int):
    """``le0`` (its card as ``backend``) sends ``frames`` broadcast frames while ``peers``
    plain stations each send as many to it, all at random moments 0-300 us apart: the wire is
    busy, so the card defers, collides, jams and backs off. Returns every transmission on the
    segment (sender, start, end, collided, length), every frame the driver received with its
    time, and the driver's counters."""
    import random

    from sim.kernel import Kernel
    from sim.media.ethernet import Segment, build_frame
    from sim.time import MS, US

    rng = random.Random(seed)
    k = Kernel()
    seg = Segment(k, seed=seed)
    wire = _wire_log(seg)
    drv, mac, rig = _le0(backend, k, seg)
    names = ["le0"] + [f"p{i}" for i in range(peers)]
    plan = {n: [(rng.randrange(300) * US, rng.randrange(60, 400)) for _ in range(frames)]
            for n in names}
    got: list[tuple[int, int]] = []

    async def card() -> None:
        await drv.start()
        await k.sleep_until(1 * MS)
        for gap, size in plan["le0"]:
            await k.sleep(gap)
            await drv.send(b"\xff" * 6 + mac + b"\x88\xb5" + bytes(size - 14))
        await drv.flush()
        for _ in range(100):                    # the peers' last frames in (or give up)
            if len(got) == peers * frames:
                break
            await k.sleep(1 * MS)

    async def receive() -> None:
        while True:
            got.append((k.now, len(await drv.recv())))

    async def peer(st) -> None:
        await k.sleep_until(1 * MS)
        for gap, size in plan[st.name]:
            await k.sleep(gap)
            await st.send(build_frame(mac, bytes([2, 0, 0, 0, 0, 9]), 0x88B5, bytes(size)))

    k.spawn(card(), name="le0")
    for n in names[1:]:
        k.spawn(peer(seg.attach(n)), name=n)
    k.spawn(receive(), name="rx", daemon=True)
    _run(rig)
    return wire, got, drv.stats


@pytest.mark.hdl
@pytest.mark.parametrize("seed,frames,peers", [(1, 30, 3), (3, 30, 2), (7, 60, 4)])
def test_model_and_rtl_cards_contend_for_the_wire_identically(seed, frames, peers) -> None:
    """CSMA/CD to the cycle: the model card (hw/lance/mii_model.py and the engine's backoff) and
    the RTL on Verilator, on the same busy segment, make the same transmissions at the same
    picoseconds (deferrals, collisions, jams, LFSR backoffs, retries) and receive the same
    frames at the same times."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    model = _contended("model", seed, frames, peers)
    rtl = _contended("verilator", seed, frames, peers)
    wire, got, stats = model
    ours = [w for w in wire if w[0] == "le0"]
    # the scenario exercises what it is meant to
    assert sum(1 for w in ours if w[3]) >= 5                       # collided attempts
    assert stats.tx_one_collision + stats.tx_more_collisions >= 5 and stats.tx_deferred >= 3
    assert stats.sent == frames and stats.tx_errors == 0 and stats.received == peers * frames
    for i, (a, b) in enumerate(zip(wire, rtl[0])):
        assert a == b, f"transmission {i} differs: model {a}, RTL {b}"
    assert len(wire) == len(rtl[0])
    assert got == rtl[1]
    assert stats == rtl[2]


class _Jammer:
    """A station that starts a 32-bit burst ``offset`` ps after the signal of ``victim``'s
    next attempt reaches it (one entry of ``offsets`` per attempt; None lets it through): a
    collision at a chosen point of the frame (preamble, data, padding, FCS, or after the slot
    time)."""

    def __init__(self, seg, victim: str, offsets: list[int | None]):
        self.st = seg.attach("jammer")
        self.st.attach_phy(self)
        self.k = seg.kernel
        self.victim, self.offsets = victim, list(offsets)

    def signal_start(self, tx) -> None:
        if tx.station.name != self.victim or not self.offsets:
            return
        off = self.offsets.pop(0)
        if off is not None:
            self.k.call_after(off, self._burst)

    def _burst(self) -> None:
        tx = self.st.begin_raw()
        bits = JAM_BITS * self.st.segment.bit_time_ps
        self.k.call_after(bits, lambda: self.st.end_raw(tx, None))

    def signal_end(self, tx, intact: bool) -> None:
        pass


def _jammed(backend: str, sizes: list[int], offsets: list[int | None]):
    """``le0`` sends one frame of each of ``sizes`` bytes (one at a time) while a jammer
    collides with its attempts at ``offsets`` (see :class:`_Jammer`). Returns the wire log and
    the driver's counters."""
    from sim.kernel import Kernel
    from sim.media.ethernet import Segment
    from sim.time import MS

    k = Kernel()
    seg = Segment(k, seed=1)
    wire = _wire_log(seg)
    drv, mac, rig = _le0(backend, k, seg)
    _Jammer(seg, "le0", offsets)

    async def card() -> None:
        await drv.start()
        for size in sizes:
            await k.sleep(1 * MS)
            await drv.send(b"\xff" * 6 + mac + b"\x88\xb5" + bytes(size - 14))
            await drv.flush()

    k.spawn(card(), name="le0")
    _run(rig)
    return wire, drv.stats


@pytest.mark.hdl
def test_model_and_rtl_cards_abort_identically_wherever_the_collision_falls() -> None:
    """Collisions forced into the preamble, the data, the padding of a short frame (the
    engine has handed over its last byte), the FCS, and past the 64-byte slot (a late
    collision: no retry, TMD3.LCOL): model and RTL jam, report and back off identically."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    us = 1_000_000
    sizes = [100, 30, 30, 400, 200]
    # 100 B: preamble, then data, then through (MORE); 30 B (padded to 60): in the padding
    # (its last byte handed over), then through; 30 B: in the FCS, then through; 400 B: after
    # 64 bytes (late: given up, LCOL); 200 B: through.
    offsets = [2 * us, 12 * us, None, 35 * us, None, 53 * us, None, 80 * us, None]
    model = _jammed("model", sizes, offsets)
    rtl = _jammed("verilator", sizes, offsets)
    wire, stats = model
    ours = [w for w in wire if w[0] == "le0"]
    assert [w[3] for w in ours] == [True, True, False, True, False, True, False, True, False]
    assert (stats.sent, stats.tx_late_collisions, stats.tx_one_collision,
            stats.tx_more_collisions) == (4, 1, 2, 1)
    assert wire == rtl[0]
    assert stats == rtl[1]


@pytest.mark.hdl
def test_rtl_card_streams_frames_of_any_sizes_to_a_model_card() -> None:
    """An RTL card's frames are known only when they end, so a short frame right behind a long
    one reaches the other card while the long one is still on its pins: the transceiver holds
    it for its turn and nothing is lost or reordered."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    r = run_lance_exchange(40, None, seed=3, backend="verilator", stream=True)
    assert (r.driver["le0"]["sent"], r.driver["le1"]["received"]) == (40, 40)
    assert r.driver["le1"]["rx_errors"] == 0 and r.driver["le1"]["missed"] == 0


@pytest.mark.hdl
def test_model_and_rtl_agree_on_the_late_collision_boundary() -> None:
    """Collisions swept in 100 ns steps across the 64th byte of 400-byte frames: the model
    calls the same ones late (TMD3.LCOL, no retry) as the RTL does, to the tick."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    ns = 1_000
    # Each frame: one jammed attempt, then (if it is retried) one clean one.
    steps = range(54_000 * ns, 56_000 * ns, 100 * ns)
    model_runs, rtl_runs = [], []
    for off in steps:
        model_runs.append(_jammed("model", [400], [off, None]))
        rtl_runs.append(_jammed("verilator", [400], [off, None]))
    late = [stats.tx_late_collisions for _, stats in model_runs]
    assert 0 < sum(late) < len(steps)                            # the sweep crosses the boundary
    assert late == sorted(late)                                  # once late, always late
    assert model_runs == rtl_runs


def _carrier_falls_at_the_offer(backend: str, rounds: int, send_ns: int):
    """Round ``i`` (1 ms each): a plain station ``p0`` sends a 64-byte frame timed so that its
    carrier leaves ``le0``'s pins exactly at a clock edge, one edge later each round; ``le0``'s
    driver queues a frame ``send_ns`` after the round began, while that carrier is still
    there, so the card defers to it. Returns every transmission on the segment (sender, start,
    end, collided, length)."""
    from sim.kernel import Kernel
    from sim.media.ethernet import Segment
    from sim.time import MS, NS

    k = Kernel()
    seg = Segment(k, seed=1)
    wire = _wire_log(seg)
    drv, mac, rig = _le0(backend, k, seg)
    peer = seg.attach("p0")
    p = 80_000                                  # the card's clock period
    # p0's frame takes 57.6 us (720 periods): it leaves le0 at an edge if it starts at one
    # less the propagation delay.
    skew = -seg.propagation_ps % p

    async def card() -> None:
        await drv.start()
        for i in range(rounds):
            await k.sleep_until((i + 1) * MS + send_ns * NS)
            await drv.send(b"\xff" * 6 + mac + b"\x88\xb5" + bytes(46))
        await drv.flush()

    async def other() -> None:
        for i in range(rounds):
            await k.sleep_until((i + 1) * MS + i * p + skew)
            await peer.send(build_frame(mac, bytes([2, 0, 0, 0, 0, 9]), 0x88B5, bytes(46)))

    k.spawn(card(), name="le0")
    k.spawn(other(), name="p0")
    _run(rig)
    return wire


@pytest.mark.hdl
def test_a_carrier_that_leaves_at_the_cards_first_tick_is_deferred_to_once() -> None:
    """In round 2, p0's carrier leaves le0's pins at the very edge at which the card first
    holds its frame: that tick still sees the carrier (a pin driven at t is sampled strictly
    after t), so the card starts 24 ticks (9.6 us) later, as the gateware does; the model
    once waited for a second fall of the carrier and sent the frame a round late."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    model = _carrier_falls_at_the_offer("model", 5, 50_800)
    assert [w[0] for w in model] == ["p0", "le0"] * 5
    p0, le0 = model[4], model[5]
    assert le0[1] == p0[2] + 950_000 + 24 * 5 * 80_000
    rtl = _carrier_falls_at_the_offer("verilator", 5, 50_800)
    for i, (a, b) in enumerate(zip(model, rtl)):
        assert a == b, f"transmission {i} differs: model {a}, RTL {b}"
    assert len(model) == len(rtl)
