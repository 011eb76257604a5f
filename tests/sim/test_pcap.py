"""pcapng captures: format details, independent parsers (dpkt, scapy, tshark), determinism."""
from __future__ import annotations

import io
import shutil
import subprocess
from decimal import Decimal

import dpkt
import pytest

from sim.kernel import Kernel
from sim.media.ethernet import BROADCAST, RxFrame, Segment, build_frame
from sim.media.pcap import (LINKTYPE_ETHERNET, LINKTYPE_SUNATM, PcapError, PcapNgWriter,
                            read_pcapng)
from sim.time import MS, NS, US

ETYPE = 0x88B5   # IEEE local experimental: dissected as plain data, so no dissector complains


def frame(i: int, size: int = 60) -> bytes:
    payload = i.to_bytes(4, "big").ljust(size - 14, b"\x5a")
    return build_frame(BROADCAST, bytes([2, 0, 0, 0, 0, i % 256]), ETYPE, payload)


def test_round_trip_with_own_reader():
    buf = io.BytesIO()
    with PcapNgWriter(buf) as w:
        eth = w.add_interface(name="seg0")
        atm = w.add_interface(linktype=LINKTYPE_SUNATM, name="atm0", fcs_len=None)
        w.write(eth, 57_600_000, frame(1), comment="from a")
        w.write(atm, 57_600_999, bytes(53))            # floored to whole nanoseconds
        w.write(eth, (1 << 33) * 1000 + 5, frame(2, 1514))   # needs the high timestamp word
    assert w.packets == 3 and w.closed
    ifaces, pkts = read_pcapng(buf.getvalue())
    assert ifaces == [
        {"linktype": LINKTYPE_ETHERNET, "snaplen": 0, "name": "seg0", "tsresol": 9, "fcs_len": 4},
        {"linktype": LINKTYPE_SUNATM, "snaplen": 0, "name": "atm0", "tsresol": 9, "fcs_len": None},
    ]
    assert [(p.interface, p.t_ns, p.data, p.comment) for p in pkts] == [
        (0, 57_600, frame(1), "from a"),
        (1, 57_600, bytes(53), None),
        (0, 1 << 33, frame(2, 1514), None),
    ]


def test_writer_refuses_bad_use():
    w = PcapNgWriter(io.BytesIO())
    with pytest.raises(PcapError, match="unknown pcap interface"):
        w.write(0, 0, b"x")
    eth = w.add_interface()
    w.write(eth, 2000, b"x")
    with pytest.raises(PcapError, match="earlier than the previous"):
        w.write(eth, 1000, b"x")
    with pytest.raises(PcapError, match="non-negative integer"):
        w.write(eth, 2.5, b"x")
    with pytest.raises(PcapError, match="must be bytes"):
        w.write(eth, 3000, "text")
    with pytest.raises(PcapError, match="linktype"):
        w.add_interface(linktype=-1)
    w.close()
    w.close()                                        # idempotent
    with pytest.raises(PcapError, match="closed"):
        w.write(eth, 4000, b"x")
    with pytest.raises(PcapError, match="path or a binary file"):
        PcapNgWriter(42)
    with pytest.raises(PcapError, match="not a pcapng"):
        read_pcapng(b"\xd4\xc3\xb2\xa1" + bytes(40))


def test_snaplen_truncates_but_keeps_original_length():
    buf = io.BytesIO()
    w = PcapNgWriter(buf)
    i = w.add_interface(snaplen=20)
    w.write(i, 0, frame(1))
    _, pkts = read_pcapng(buf.getvalue())
    assert pkts[0].data == frame(1)[:20] and pkts[0].orig_len == 64


def test_bytes_depend_only_on_what_is_written(tmp_path):
    def make(path):
        with PcapNgWriter(path) as w:
            i = w.add_interface(name="seg0")
            for n in range(10):
                w.write(i, n * 60 * US, frame(n))
        return path.read_bytes()

    assert make(tmp_path / "a.pcapng") == make(tmp_path / "b.pcapng")


# -- a capture of a simulated segment ----------------------------------------------------------
def capture(path, n_stations: int = 4, n_frames: int = 15, seed: int = 5):
    """Run a contended segment with a capture; returns what a bystander received."""
    k = Kernel()
    with PcapNgWriter(path) as w:
        seg = Segment(k, name="seg0", seed=seed, pcap=w)
        got: list[RxFrame] = []
        seg.attach("monitor", on_frame=got.append)
        stations = [seg.attach(f"s{i}") for i in range(n_stations)]

        async def sender(i, st):
            for j in range(n_frames):
                await st.send(frame(i * 100 + j, 60 + 97 * j))

        for i, st in enumerate(stations):
            k.spawn(sender(i, st))
        k.run()
        k.run(until=k.now + 1 * MS)
    assert seg.stats.collisions > 0            # the capture covers a contended run
    assert len(got) == n_stations * n_frames == seg.stats.frames
    return got


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    path = tmp_path_factory.mktemp("pcap") / "seg0.pcapng"
    return path, capture(path)


def test_segment_capture_has_every_frame_at_its_simulated_time(captured):
    path, got = captured
    ifaces, pkts = read_pcapng(path)
    assert ifaces[0]["name"] == "seg0" and ifaces[0]["fcs_len"] == 4
    assert [p.data for p in pkts] == [rx.data for rx in got]
    # Stamped when the last bit reaches the receivers, in nanoseconds.
    assert [p.t_ns for p in pkts] == [rx.end // NS for rx in got]
    assert [p.comment for p in pkts] == [f"from {rx.src}" for rx in got]


def test_dpkt_reads_every_frame_and_timestamp(captured):
    path, got = captured
    with open(path, "rb") as f:
        recs = list(dpkt.pcapng.Reader(f))
    assert len(recs) == len(got)
    for (ts, buf), rx in zip(recs, got):
        assert buf == rx.data
        assert ts == pytest.approx(rx.end / 1e12, abs=1e-9)
        eth = dpkt.ethernet.Ethernet(buf[:-4])
        assert eth.type == ETYPE and eth.dst == BROADCAST


def test_scapy_reads_every_frame_with_exact_nanosecond_timestamps(captured):
    from scapy.layers.l2 import Ether      # registers the Ethernet link type with the reader
    from scapy.utils import PcapNgReader

    path, got = captured
    with PcapNgReader(str(path)) as r:
        pkts = list(r)
    assert len(pkts) == len(got)
    for p, rx in zip(pkts, got):
        assert isinstance(p, Ether) and bytes(p) == rx.data
        assert Decimal(p.time) == Decimal(rx.end // NS) / Decimal(10**9)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_capture_and_finds_every_fcs_good(captured):
    path, got = captured
    # eth.check_fcs makes Wireshark verify each FCS (it knows the frames carry one from the
    # interface's if_fcslen option).
    res = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "eth.check_fcs:TRUE",
         "-T", "fields", "-E", "separator=|",
         "-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.len",
         "-e", "eth.fcs.status", "-e", "_ws.malformed", "-e", "_ws.expert.severity"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split("|") for line in res.stdout.splitlines()]
    assert len(rows) == len(got)
    for row, rx in zip(rows, got):
        number, epoch, length, fcs_status, malformed, _severity = row
        assert int(length) == len(rx.data)
        assert Decimal(epoch) == Decimal(rx.end // NS) / Decimal(10**9)
        assert fcs_status in ("1", "Good"), row          # 1 == PROTO_CHECKSUM_E_GOOD
        assert malformed == "", row
    # And the whole dissection has no malformed-packet or bad-checksum complaint.
    full = subprocess.run(["tshark", "-n", "-r", str(path), "-o", "eth.check_fcs:TRUE", "-V"],
                          capture_output=True, text=True, timeout=60)
    assert full.returncode == 0
    assert "Malformed" not in full.stdout
    assert "FCS Status: Bad" not in full.stdout
    assert full.stdout.count("FCS Status: Good") == len(got)
