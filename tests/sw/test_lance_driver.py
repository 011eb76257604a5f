"""The LANCE driver over the card's model: two machines on one Ethernet segment.

Each machine is a CPU (DECstation 5000/125 under Aegis), a bus, a LanceModel bound by
:data:`hw.lance.attach.LANCE` (``attach_model``, mapped on the bus by :func:`attach_card`) to a
station on a shared :class:`Segment`, and a
:class:`sw.drivers.lance.LanceDriver`. Everything runs on one kernel; the segment writes a
pcapng that tshark and dpkt/scapy must read back as the frames the drivers exchanged.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from hw.lance.attach import LANCE, StationWire
from hw.lance.registers import (BUFFER_SIZE, FCS_BYTES, RMD1, TMD1, Mode, InitBlock, RxDescriptor,
                                TxDescriptor)
from sim.bus import Bus, IrqLine
from sim.cpu import CPU, IO_WAIT, INTERRUPT
from sim.devices import Attached, DeviceSpec, MachinePorts
from sim.kernel import Kernel
from sim.media.ethernet import Segment, fcs
from sim.media.pcap import PcapNgWriter
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sim.time import MS, US, Clock
from sw.drivers.lance import MAX_SEND, MIN_SEND, LanceDriver

BASE = 0x1E00_0000          # a TURBOchannel option slot
ETHERTYPE = b"\x88\xb5"     # IEEE local experimental


def attach_card(k: Kernel, bus: Bus, base: int, *, segment: Segment | None = None,
                name: str = "le0", **params) -> Attached:
    """A LANCE model (``LANCE.attach_model``) mapped at ``base`` on ``bus``, its station ``name``
    on ``segment`` (none: a free, silent wire); ``parts``: model, station, wire."""
    machine = MachinePorts(k, name, bus, media={} if segment is None else {"ethernet": segment})
    card = LANCE.attach_model(machine, DeviceSpec("lance", name, base, params))
    bus.map(base, LANCE.window, card.target, name)
    return card


@dataclass
class Machine:
    cpu: CPU
    bus: Bus
    card: Attached
    drv: LanceDriver

    @property
    def model(self):
        return self.card.parts["model"]

    @property
    def wire(self) -> StationWire:
        return self.card.parts["wire"]

    @property
    def mac(self) -> bytes:
        return self.model.mac


def make_pair(k: Kernel, seg: Segment, **drv_kw) -> tuple[Machine, Machine]:
    out = []
    for i in range(2):
        bus = Bus(k, f"bus{i}")
        cpu = CPU(k, AEGIS, f"cpu{i}")
        card = attach_card(k, bus, BASE, segment=seg, name=f"le{i}",
                           mac=bytes([0x08, 0x00, 0x2B, 0, 0, i + 1]))
        drv = LanceDriver(cpu, bus, BASE, irq=card.irq, name=f"le{i}", **drv_kw)
        out.append(Machine(cpu, bus, card, drv))
    return out[0], out[1]


def frame(rng: random.Random, dst: bytes, src: bytes, n: int) -> bytes:
    return dst + src + ETHERTYPE + rng.randbytes(n - 14)


def run(k: Kernel, coro, limit_ms: int = 2_000):
    task = k.spawn(coro, name="test")
    k.run(until=k.now + limit_ms * MS)
    assert task.done, "the scenario did not finish in simulated time"
    return task.result


def test_start_programs_card():
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=3))

    async def scenario():
        await a.drv.start()
        return k.now
    t = run(k, scenario())
    assert a.drv.mac == a.mac                    # read from the card's ROM
    m = a.model
    assert m.padr == a.mac
    assert (m.rdra, m.tdra) == (a.drv.layout.rdra, a.drv.layout.tdra)
    assert (m.rlen, m.tlen) == (a.drv.rings.rx, a.drv.rings.tx) == (64, 16)
    assert a.drv.started and a.drv.stats.interrupts >= 1
    assert 0 < t < 1 * MS
    lay = a.drv.layout
    ram = bytes(m.ram)
    assert InitBlock.unpack(ram[:24]) == lay.init(a.mac)
    for i in (0, lay.rings.rx - 1):
        d = RxDescriptor.unpack(ram[lay.rmd(i):lay.rmd(i) + 8])
        assert d == RxDescriptor(addr=lay.rx_buffers[i], flags=RMD1.OWN, size=BUFFER_SIZE)
    d = TxDescriptor.unpack(ram[lay.tmd(3):lay.tmd(3) + 8])
    assert d.addr == lay.tx_buffers[3] and not d.flags & TMD1.OWN
    # bring-up is all programmed I/O: the init block and rings (166 words) plus registers
    rep = a.cpu.report().by_category
    assert rep[IO_WAIT].cycles >= 166 * 8


def test_ping_pong_random_frames_and_pcap(tmp_path: Path):
    rng = random.Random(7)
    k = Kernel()
    pcap = tmp_path / "pingpong.pcapng"
    writer = PcapNgWriter(pcap)
    seg = Segment(k, seed=1, pcap=writer)
    a, b = make_pair(k, seg)
    sent: list[bytes] = []
    rounds = 12

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        for _ in range(rounds):
            f = frame(rng, b.mac, a.mac, rng.randint(60, MAX_SEND))
            sent.append(f)
            await a.drv.send(f)
            assert await b.drv.recv() == f
            g = frame(rng, a.mac, b.mac, rng.randint(60, MAX_SEND))
            sent.append(g)
            await b.drv.send(g)
            assert await a.drv.recv() == g
        await a.drv.flush()
        await b.drv.flush()
    run(k, scenario())
    k.run(until=k.now + 1 * MS)
    writer.close()
    for m in (a, b):
        st = m.drv.stats
        assert st.sent == st.received == st.queued == rounds
        assert st.tx_errors == st.rx_errors == st.missed == 0
        assert st.bytes_sent == sum(len(f) for f in sent if f[6:12] == m.mac)
    assert seg.stats.frames == 2 * rounds

    # dpkt reads the capture (frames with their 4-byte FCS)
    dpkt = pytest.importorskip("dpkt")
    with open(pcap, "rb") as fh:
        caps = [bytes(buf) for _, buf in dpkt.pcapng.Reader(fh)]
    assert caps == [f + fcs(f) for f in sent]
    for f, c in zip(sent, caps):
        eth = dpkt.ethernet.Ethernet(c[:-FCS_BYTES])
        assert (eth.dst, eth.src, eth.type) == (f[:6], f[6:12], 0x88B5)
    # scapy agrees on the addresses
    scapy_all = pytest.importorskip("scapy.all")
    pkts = scapy_all.rdpcap(str(pcap))
    assert [(p.src, p.dst) for p in pkts] == [
        (":".join(f"{x:02x}" for x in f[6:12]), ":".join(f"{x:02x}" for x in f[:6])) for f in sent]
    # tshark, if installed
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: the pcap was checked with dpkt and scapy only")
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "eth.src",
                          "-e", "eth.dst", "-e", "frame.len"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [line.split("\t") for line in out.strip().splitlines()]
    want = [[":".join(f"{x:02x}" for x in f[6:12]), ":".join(f"{x:02x}" for x in f[:6]),
             str(len(f) + FCS_BYTES)] for f in sent]
    assert rows == want


def test_back_to_back_fills_and_wraps_rings():
    rng = random.Random(11)
    k = Kernel()
    seg = Segment(k, seed=2)
    a, b = make_pair(k, seg)
    n = 5 * 16 + 3                                # wraps the 16-entry transmit ring 5 times
    sent = [frame(rng, b.mac, a.mac, rng.choice([60, 61, 62, 63, 200])) for _ in range(n)]
    got: list[bytes] = []

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        for f in sent:
            await a.drv.send(f)
        await a.drv.flush()
        while len(got) < n:
            got.append(await b.drv.recv())
    run(k, scenario())
    assert got == sent                           # every frame, in order, past the ring wraps
    st = a.drv.stats
    assert st.tx_ring_full > 0                   # the sender had to wait for free buffers
    assert st.sent == n and st.tx_errors == 0
    assert b.drv.stats.received == n > b.drv.rings.rx   # the receive ring wrapped too
    assert b.drv.stats.missed == 0
    assert a.drv.tx_pending == 0


def test_cpu_charged_io_wait_per_word():
    """Sending charges the sender the card's write wait state per word, receiving the read
    wait state per word: IO_WAIT is affine in the number of words moved."""
    def measure(size: int, count: int = 4):
        rng = random.Random(size)
        k = Kernel()
        a, b = make_pair(k, Segment(k, seed=5))

        async def scenario():
            await a.drv.start()
            await b.drv.start()
            a.cpu.reset_stats()
            b.cpu.reset_stats()
            for _ in range(count):
                await a.drv.send(frame(rng, b.mac, a.mac, size))
                await b.drv.recv()
            await a.drv.flush()
        run(k, scenario())
        ra, rb = a.cpu.report().by_category, b.cpu.report().by_category
        return ra[IO_WAIT].cycles, rb[IO_WAIT].cycles, ra, rb

    sizes = (60, 60 + 4 * 100, 60 + 4 * 300)
    tx, rx = [], []
    for s in sizes:
        t, r, ra, rb = measure(s)
        assert t > 0 and r > 0
        assert rb[INTERRUPT].cycles > 0          # the receive interrupt's dispatch
        tx.append(t)
        rx.append(r)
    # exactly linear in words: 100 words more per frame cost the same each time
    per_word_tx = (tx[1] - tx[0]) / (4 * 100)
    per_word_rx = (rx[1] - rx[0]) / (4 * 100)
    # (a block's first access may wait up to a card cycle for an edge: a few cycles per frame)
    assert (tx[2] - tx[1]) == pytest.approx(2 * (tx[1] - tx[0]), abs=32)
    assert (rx[2] - rx[1]) == pytest.approx(2 * (rx[1] - rx[0]), abs=32)
    # a PIO word write costs at least the profile's 320 ns (8 cycles), a read 480 ns (12)
    cyc = AEGIS.cycle_ps
    assert per_word_tx >= float(AEGIS.io_pio_write_ps) / cyc
    assert per_word_rx >= float(AEGIS.io_pio_read_ps) / cyc
    assert per_word_rx > per_word_tx


def test_collision_sets_one_or_more_and_frames_arrive():
    rng = random.Random(3)
    k = Kernel()
    seg = Segment(k, seed=9)
    a, b = make_pair(k, seg)
    fa = frame(rng, b.mac, a.mac, 300)
    fb = frame(rng, a.mac, b.mac, 300)

    async def side(m, f):
        await m.drv.start()
        await k.sleep(1 * MS - k.now)          # both send at the same instant: they collide
        await m.drv.send(f)
        got = await m.drv.recv()
        await m.drv.flush()
        return got

    ta = k.spawn(side(a, fa), name="a")
    tb = k.spawn(side(b, fb), name="b")
    k.run(until=100 * MS)
    assert ta.done and tb.done
    assert ta.result == fb and tb.result == fa
    assert seg.stats.collisions >= 1
    # each card's wire saw the other's first attempt garbled and did not hand it to the card
    assert a.wire.stats.garbled >= 1 and b.wire.stats.garbled >= 1
    assert a.wire.stats.delivered == b.wire.stats.delivered == 1
    retried = sum(m.drv.stats.tx_one_collision + m.drv.stats.tx_more_collisions for m in (a, b))
    assert retried >= 1
    assert a.drv.stats.sent == b.drv.stats.sent == 1


def test_a_collision_without_retry_is_reported_as_rtry():
    """With MODE.DRTY the cards give a frame up at its first collision (TMD3.RTRY)."""
    rng = random.Random(4)
    k = Kernel()
    seg = Segment(k, seed=9)
    a, b = make_pair(k, seg, mode=Mode.DRTY)

    async def side(m, f):
        await m.drv.start()
        await k.sleep(1 * MS - k.now)
        await m.drv.send(f)
        await m.drv.flush()

    k.spawn(side(a, frame(rng, b.mac, a.mac, 100)), name="a")
    k.spawn(side(b, frame(rng, a.mac, b.mac, 100)), name="b")
    k.run(until=50 * MS)
    for m in (a, b):
        st = m.drv.stats
        assert (st.tx_errors, st.tx_retry_errors, st.sent) == (1, 1, 0)
        assert m.model.counters["retry_errors"] == 1
        assert m.model.counters["collisions"] == 1
        assert m.wire.stats.frames_cut == 1
        assert st.received == 0


def test_missed_frames_counted_when_ring_full():
    """The receiver's interrupt is masked while 70 frames arrive: 64 fill its ring, 6 are
    missed (the card's missed counter, read and cleared by the handler)."""
    rng = random.Random(5)
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=6))
    sent = [frame(rng, b.mac, a.mac, 60) for _ in range(70)]
    got: list[bytes] = []

    async def hog():
        await b.drv.start()
        await b.cpu.charge(0)
        old = b.cpu.spl(7)                       # mask the card's interrupt (level 1)
        await b.cpu.charge(20 * MS // b.cpu.period)
        b.cpu.spl(old)
        await b.cpu.charge(1)
        while len(got) < 64:
            got.append(await b.drv.recv())

    async def sender():
        await a.drv.start()
        await k.sleep(1 * MS)
        for f in sent:
            await a.drv.send(f)
        await a.drv.flush()

    th = k.spawn(hog(), name="hog")
    k.spawn(sender(), name="sender")
    k.run(until=100 * MS)
    assert th.done
    assert got == sent[:64]
    assert b.drv.stats.missed == 6
    assert b.drv.stats.received == 64 and b.drv.pending() == 0


def test_a_frame_with_a_bad_fcs_is_counted_and_dropped():
    """The card hands a bad-FCS frame up with ERR|CRC, as the Am7990 does: the driver counts
    it as a receive error and delivers only the good frame after it."""
    rng = random.Random(8)
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=8))
    good = frame(rng, b.mac, a.mac, 100)
    bad = bytearray(good + fcs(good))
    bad[40] ^= 1
    got: list[bytes] = []

    async def go():
        await b.drv.start()
        await k.sleep(1 * MS)
        b.model.receive(bytes(bad))
        await k.sleep(1 * MS)
        b.model.receive(good + fcs(good))
        got.append(await b.drv.recv())

    run(k, go())
    assert got == [good]
    assert b.drv.stats.rx_errors == 1 and b.drv.stats.received == 1
    assert b.model.counters["fcs_errors"] == 1


def test_on_frame_callback_async():
    """Frames reach an async on_frame callback in order, shortly after their last bit
    reached the receiving station (card receive, RINT, dispatch, copy-out)."""
    rng = random.Random(8)
    k = Kernel()
    seen: list[tuple[int, bytes]] = []
    seg = Segment(k, seed=1)
    ends: list[int] = []
    seg.monitors.append(lambda tx: ends.append(tx.end + seg.propagation_ps))
    a, b = make_pair(k, seg)

    async def on_frame(f: bytes):
        await b.cpu.charge(100)
        seen.append((k.now, f))
    b.drv.on_frame = on_frame
    fs = [frame(rng, b.mac, a.mac, 100 + i) for i in range(3)]

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        for f in fs:
            await a.drv.send(f)
        await a.drv.flush()
        await k.sleep(1 * MS)
        with pytest.raises(RuntimeError, match="on_frame"):
            await b.drv.recv()
    run(k, scenario())
    assert [f for _, f in seen] == fs
    assert len(ends) == len(fs)
    for (t, _), end in zip(seen, ends):
        assert end < t < end + 200 * US


def test_deterministic():
    def once():
        rng = random.Random(1)
        k = Kernel()
        a, b = make_pair(k, Segment(k, seed=1))

        async def scenario():
            await a.drv.start()
            await b.drv.start()
            for _ in range(5):
                await a.drv.send(frame(rng, b.mac, a.mac, rng.randint(60, 1514)))
                await b.drv.send(frame(rng, a.mac, b.mac, rng.randint(60, 1514)))
            await a.drv.flush()
            await b.drv.flush()
            return k.now
        t = run(k, scenario())
        return t, a.cpu.report().by_category[IO_WAIT].ps, b.cpu.report().by_category[IO_WAIT].ps
    assert once() == once()


def test_bad_arguments():
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=1))
    rng = random.Random(0)

    async def scenario():
        with pytest.raises(RuntimeError, match="before start"):
            await a.drv.send(bytes(60))
        await a.drv.start()
        with pytest.raises(RuntimeError, match="already started"):
            await a.drv.start()
        with pytest.raises(ValueError, match=r"13 bytes"):
            await a.drv.send(bytes(MIN_SEND - 1))
        with pytest.raises(ValueError, match=r"1515 bytes"):
            await a.drv.send(bytes(MAX_SEND + 1))
        with pytest.raises(TypeError, match="str"):
            await a.drv.send("not a frame")
        await a.drv.send(frame(rng, b.mac, a.mac, MIN_SEND))      # extremes are accepted
        await a.drv.send(frame(rng, b.mac, a.mac, MAX_SEND))
        await a.drv.flush()
    run(k, scenario())
    assert a.drv.stats.sent == 2

    cpu, bus, irq = a.cpu, a.bus, a.card.irq
    with pytest.raises(ValueError, match="base"):
        LanceDriver(cpu, bus, BASE + 2, irq=irq)
    with pytest.raises(ValueError, match="6 bytes"):
        LanceDriver(cpu, bus, BASE, irq=irq, mac=b"\x01\x02")
    with pytest.raises(TypeError, match="mac"):
        LanceDriver(cpu, bus, BASE, irq=irq, mac="08:00:2b:00:00:01")
    with pytest.raises(ValueError, match="64 KiB or 128 KiB"):
        LanceDriver(cpu, bus, BASE, irq=irq, buffer_ram=32 * 1024)
    with pytest.raises(ValueError, match="ladrf"):
        LanceDriver(cpu, bus, BASE, irq=irq, ladrf=1 << 64)
    with pytest.raises(ValueError, match="irq_level"):
        LanceDriver(cpu, bus, BASE, irq=irq, irq_level=0)
    with pytest.raises(TypeError, match="IrqLine"):
        LanceDriver(cpu, bus, BASE, irq=None)
    with pytest.raises(TypeError, match="CPU"):
        LanceDriver(None, bus, BASE, irq=irq)
    with pytest.raises(TypeError, match="Bus"):
        LanceDriver(cpu, None, BASE, irq=irq)
    with pytest.raises(TypeError, match="Station"):
        StationWire(object(), Clock(80_000))
    with pytest.raises(ValueError, match="multiple of"):
        attach_card(k, Bus(k), BASE + 4)
    assert IrqLine(k, "x").level == 0


def test_64k_buffer_memory():
    rng = random.Random(2)
    k = Kernel()
    seg = Segment(k, seed=1)
    a, b = make_pair(k, seg, buffer_ram=64 * 1024)
    assert (a.drv.rings.rx, a.drv.rings.tx) == (32, 8)
    fs = [frame(rng, b.mac, a.mac, 1000) for _ in range(20)]

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        for f in fs:
            await a.drv.send(f)
        return [await b.drv.recv() for _ in fs]
    assert run(k, scenario()) == fs
    assert a.model.tlen == 8 and b.model.rlen == 32
    assert a.drv.layout.end <= 64 * 1024 <= BUFFER_SIZE * 64


def test_exchange_and_cli(tmp_path: Path):
    from serveros.cli import build_parser, main
    from serveros.experiments.lance import run_lance_exchange
    pcap = tmp_path / "x.pcapng"
    r = run_lance_exchange(3, 100, seed=2, pcap_path=str(pcap))
    assert (r.frames, r.bytes) == (6, 600)
    assert r.segment["frames"] == 6
    for cats in r.cpu.values():
        assert cats[IO_WAIT] > 0 and cats["idle"] > 0
    assert pcap.stat().st_size > 6 * 104
    assert run_lance_exchange(3, 100, seed=2) == r                 # deterministic
    with pytest.raises(ValueError, match="frames"):
        run_lance_exchange(0)
    with pytest.raises(ValueError, match="size"):
        run_lance_exchange(1, 1515)
    args = build_parser().parse_args(["lance", "--frames", "2", "--size", "60"])
    assert (args.frames, args.size) == (2, 60)
    assert main(["lance", "--frames", "2", "--size", "60"]) == 0


def test_concurrent_senders_both_ways():
    """Two threads per machine send at once while the other machine does the same: slots are
    claimed in call order, the segment sees contention, and every frame arrives in order."""
    rng = random.Random(21)
    k = Kernel()
    seg = Segment(k, seed=4)
    a, b = make_pair(k, seg)
    n = 25
    flows = {(m.drv.name, t): [frame(rng, o.mac, m.mac, rng.randint(60, 700)) for _ in range(n)]
             for m, o in ((a, b), (b, a)) for t in range(2)}
    got: dict[str, list[bytes]] = {"le0": [], "le1": []}
    ready = k.event("ready")

    async def sender(m, t):
        await ready
        for f in flows[(m.drv.name, t)]:
            await m.drv.send(f)
            await m.cpu.charge(50)          # a little per-frame work between sends
        await m.drv.flush()

    async def receiver(m):
        while len(got[m.drv.name]) < 2 * n:
            got[m.drv.name].append(await m.drv.recv())

    async def boot():
        await a.drv.start()
        await b.drv.start()
        ready.set()
    k.spawn(boot(), name="boot")
    tasks = [k.spawn(sender(m, t), name=f"{m.drv.name}.s{t}") for m in (a, b) for t in range(2)]
    tasks += [k.spawn(receiver(m), name=f"{m.drv.name}.r") for m in (a, b)]
    k.run(until=2_000 * MS)
    assert all(t.done for t in tasks)
    for m, o in ((a, b), (b, a)):
        rx = got[o.drv.name]
        for t in range(2):                  # each flow in its own order
            flow = flows[(m.drv.name, t)]
            assert [f for f in rx if f in set(flow)] == flow
        assert m.drv.stats.sent == 2 * n and m.drv.stats.tx_errors == 0
        assert m.drv.tx_pending == 0
    assert seg.stats.frames == 4 * n
    assert seg.stats.collisions > 0                             # they contended for the wire
    # the cards reported the retries in TMD1.ONE/MORE, and the wires dropped the fragments
    assert sum(m.drv.stats.tx_one_collision + m.drv.stats.tx_more_collisions
               for m in (a, b)) > 0
    assert a.wire.stats.garbled + b.wire.stats.garbled > 0
    assert a.wire.stats.delivered == b.wire.stats.delivered == 2 * n


def test_free_wire_without_segment():
    """With no segment the card sends onto a free wire: frames padded to 60 plus FCS."""
    k = Kernel()
    bus = Bus(k)
    cpu = CPU(k, AEGIS, "cpu")
    card = attach_card(k, bus, BASE, name="le0")
    assert card.parts["station"] is None and card.parts["wire"] is None
    model = card.parts["model"]
    drv = LanceDriver(cpu, bus, BASE, irq=card.irq)
    short = b"\xff" * 6 + model.mac + ETHERTYPE + b"hi"

    async def scenario():
        await drv.start()
        await drv.send(short)
        await drv.flush()
    run(k, scenario())
    assert [f for _, f in model.transmitted] == [short.ljust(60, b"\0") + fcs(short.ljust(60, b"\0"))]
    assert drv.stats.sent == 1


def test_the_copy_loops_pay_for_host_memory():
    # Receiving a frame stores every word into host memory: on the 3MIN each store drains
    # through the write buffer (240 ns = 6 cycles) before the next read from the card's
    # buffer can pass it. Sending reads the frame from host memory: a 400 ns (10-cycle) miss
    # for every word not in the data cache, none when the stack has just written it (the
    # driver's default host buffers).
    from sim.cpu import MEMORY_STALL
    rng = random.Random(5)
    k = Kernel()
    a, b = make_pair(k, Segment(k, seed=2))
    n = 1000                                         # 250 words

    async def scenario():
        await a.drv.start()
        await b.drv.start()
        stalls = []
        for src in (None, a.cpu.region("cold-frame", n), None):
            before = (a.cpu.report().by_category.get(MEMORY_STALL), b.cpu.report().by_category.get(MEMORY_STALL))
            await a.drv.send(frame(rng, b.mac, a.mac, n), src=src)
            await b.drv.recv()
            after = (a.cpu.report().by_category.get(MEMORY_STALL), b.cpu.report().by_category.get(MEMORY_STALL))
            stalls.append(tuple((y.cycles if y else 0) - (x.cycles if x else 0)
                                for x, y in zip(before, after)))
        return stalls

    first, cold, warm = run(k, scenario())
    assert cold[0] >= 250 * 10                       # the sender read a frame not in its cache
    assert first[0] == warm[0] == 0                  # just written by the stack: cached
    for rx in (first[1], cold[1], warm[1]):          # the receiver's stores, every time
        assert 249 * 6 <= rx <= 249 * 6 + 4 * 6
