"""ATM: cell HEC, AAL5 CRC/segmentation, OC-3c link timing, the switch, and the capture."""
from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from sim.kernel import Kernel
from sim.media.aal5 import (Aal5Error, Aal5Reassembler, build_pdu, crc32_aal5,
                            crc32_aal5_bitwise, parse_pdu, pdu_len, reassemble, segment)
from sim.media.atm import (CELL_LEN, Cell, CellError, AtmLink, AtmSwitch, first_slot_at, hec,
                           slot_start)
from sim.media.pcap import LINKTYPE_SUNATM, PcapNgWriter, read_pcapng

LLC_SNAP_IP = bytes.fromhex("aaaa030000000800")


def ip_packet(i: int, size: int) -> bytes:
    """A minimal IPv4/UDP packet with a correct header checksum, ``size`` bytes in all."""
    total = size
    hdr = bytearray(bytes.fromhex("45000000000000004011") + bytes(2)
                    + bytes([10, 0, 0, 1, 10, 0, 0, 2]))
    hdr[2:4] = total.to_bytes(2, "big")
    hdr[4:6] = i.to_bytes(2, "big")
    s = sum(int.from_bytes(hdr[j:j + 2], "big") for j in range(0, 20, 2))
    s = (s & 0xFFFF) + (s >> 16)
    hdr[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    udp_len = total - 20
    udp = (1000).to_bytes(2, "big") + (2000).to_bytes(2, "big") + udp_len.to_bytes(2, "big") + bytes(2)
    return bytes(hdr) + udp + bytes((i + j) & 0xFF for j in range(udp_len - 8))


def cells_of(payload: bytes, vpi: int, vci: int) -> list[Cell]:
    parts = segment(payload)
    return [Cell(vpi=vpi, vci=vci, payload=p, pt=1 if n == len(parts) - 1 else 0)
            for n, p in enumerate(parts)]


# -- cells ----------------------------------------------------------------------------------
def test_hec_vectors():
    assert hec(bytes([0, 0, 0, 1])) == 0x52      # idle cell (I.432)
    assert hec(bytes(4)) == 0x55                 # unassigned cell
    c = Cell(vpi=0, vci=5, payload=bytes(48))    # signalling VC
    assert c.to_bytes()[:5] == bytes([0, 0, 0, 0x50, hec(bytes([0, 0, 0, 0x50]))])


def test_cell_round_trip_and_errors():
    c = Cell(vpi=0xAB, vci=0x1234, payload=bytes(range(48)), pt=1, clp=1, gfc=3)
    raw = c.to_bytes()
    assert len(raw) == CELL_LEN and Cell.from_bytes(raw) == c
    bad = bytearray(raw)
    bad[4] ^= 1
    with pytest.raises(CellError, match="bad HEC"):
        Cell.from_bytes(bytes(bad))
    with pytest.raises(CellError, match="53 bytes, not 52"):
        Cell.from_bytes(raw[:52])
    with pytest.raises(CellError, match="VPI must be a 8-bit"):
        Cell(vpi=256, vci=0, payload=bytes(48))
    with pytest.raises(CellError, match="CLP must be a 1-bit"):
        Cell(vpi=0, vci=0, payload=bytes(48), clp=True)
    with pytest.raises(CellError, match="payload must be 48 bytes, not 47"):
        Cell(vpi=0, vci=0, payload=bytes(47))
    with pytest.raises(CellError, match="payload must be bytes, not str"):
        Cell(vpi=0, vci=0, payload="x" * 48)
    assert Cell(vpi=0, vci=0, payload=bytearray(48)).payload == bytes(48)


# -- AAL5 -----------------------------------------------------------------------------------
def test_crc_vectors():
    assert crc32_aal5(b"123456789") == 0xFC891918 == crc32_aal5_bitwise(b"123456789")
    # I.363.5 Appendix: 40-byte payloads, UU = CPI = 0, Length 0x28.
    assert build_pdu(bytes(40))[-4:].hex() == "864d7f99"
    assert build_pdu(b"\xff" * 40)[-4:].hex() == "c55e457a"
    assert build_pdu(bytes(range(1, 41)))[-4:].hex() == "bf671ed0"
    data = bytes((i * 37 + 11) & 0xFF for i in range(300))
    assert crc32_aal5(data) == crc32_aal5_bitwise(data)


def test_aal5_padding_edges():
    assert [pdu_len(n) for n in (0, 40, 41, 48, 88, 89)] == [48, 48, 96, 96, 96, 144]
    assert len(segment(bytes(40))) == 1 and len(segment(bytes(41))) == 2


def test_aal5_round_trips_every_size_up_to_9180():
    for n in range(0, 9181):
        payload = bytes((n + i) & 0xFF for i in range(n)) if n < 200 or n % 97 == 0 else bytes(n)
        parts = segment(payload, uu=n & 0xFF, cpi=0)
        assert len(parts) * 48 == pdu_len(n)
        pdu = reassemble(parts)
        assert pdu.payload == payload and pdu.uu == n & 0xFF


def test_aal5_errors():
    pdu = bytearray(build_pdu(b"hello"))
    pdu[0] ^= 0x80
    with pytest.raises(Aal5Error, match="CRC-32 mismatch"):
        parse_pdu(bytes(pdu))
    with pytest.raises(Aal5Error, match="multiple of 48"):
        parse_pdu(bytes(50))
    with pytest.raises(Aal5Error, match="too long"):
        build_pdu(bytes(65536))
    with pytest.raises(Aal5Error, match="CPI must be a byte"):
        build_pdu(b"x", cpi=False)
    r = Aal5Reassembler(max_pdu=96)
    for _ in range(3):
        assert r.push(bytes(48), False) is None
    assert r.push(bytes(48), True) is None and r.oversize == 1
    assert r.push(segment(b"ok")[0], True).payload == b"ok" and r.pdus == 1
    bad_crc = bytearray(segment(b"ok")[0])
    bad_crc[0] ^= 1
    assert r.push(bytes(bad_crc), True) is None
    bad_len = build_pdu(b"ok")[:-8] + bytes([0, 0]) + (99).to_bytes(2, "big")
    bad_len += crc32_aal5(bad_len).to_bytes(4, "big")      # a good CRC over a Length too big
    assert r.push(bad_len, True) is None
    assert (r.crc_errors, r.length_errors) == (1, 1)


# -- link timing ----------------------------------------------------------------------------
def test_slot_grid_is_exact_and_rounds_down():
    assert slot_start(1) == 2_831_196          # 424 / 149.76e6 s = 2 831 196.58 ps, floored
    assert slot_start(117) == 331_250_000      # 117 slots are exactly 331.25 us: no drift
    assert slot_start(149_760_000) == 424 * 10**12    # 149.76e6 cells of 424 bits: 424 s
    for t in (0, 1, 2_831_196, 2_831_197, 5_662_393, 331_250_000, 331_250_001):
        n = first_slot_at(t)
        assert slot_start(n) >= t and (n == 0 or slot_start(n - 1) < t)


def test_link_delivers_at_slot_end_plus_propagation():
    k = Kernel()
    link = AtmLink(k, propagation_ps=25_000)
    got = []
    link.b.attach(lambda c: got.append((k.now, c.vci)))
    cells = [Cell(vpi=0, vci=v, payload=bytes(48)) for v in (40, 41, 42)]

    def burst():
        for c in cells:
            link.a.send(c)
        assert link.a.backlog == 3            # slot 1 has not started yet: all three wait
    k.call_at(1_000_000, burst)                 # mid-slot 0: the first goes in slot 1
    k.run(until=10**9)
    assert got == [(slot_start(2) + 25_000, 40), (slot_start(3) + 25_000, 41),
                   (slot_start(4) + 25_000, 42)]
    assert link.a.tx_stats.cells == 3 and link.a.tx_stats.max_backlog == 3


def test_link_errors():
    k = Kernel()
    link = AtmLink(k)
    link.a.attach(lambda c: None)
    with pytest.raises(ValueError, match="already attached"):
        link.a.attach(lambda c: None)
    with pytest.raises(ValueError, match="propagation_ps"):
        AtmLink(k, propagation_ps=-1)
    with pytest.raises(CellError, match="bad HEC"):
        link.a.send(bytes(53))


# -- switch ---------------------------------------------------------------------------------
def make_net(k, *, buffer_cells=256, pcap=None):
    sw = AtmSwitch(k, ports=3, buffer_cells=buffer_cells, latency_ps=2_000_000)
    links = [AtmLink(k, name=f"l{i}", pcap=pcap if i == 2 else None) for i in range(3)]
    for i, l in enumerate(links):
        sw.connect(i, l.b)
    return sw, links


def test_switch_routes_and_rewrites():
    k = Kernel()
    sw, links = make_net(k)
    sw.route(0, 0, 100, 2, 1, 200)
    got = []
    links[2].a.attach(lambda c: got.append((k.now, c)))
    c = Cell(vpi=0, vci=100, payload=bytes(range(48)), pt=1)
    links[0].a.send(c)
    links[0].a.send(Cell(vpi=0, vci=101, payload=bytes(48)))        # no route
    k.run(until=10**9)
    arrive = slot_start(1) + 25_000 + 2_000_000
    out_slot = first_slot_at(arrive)
    assert [t for t, _ in got] == [slot_start(out_slot + 1) + 25_000]
    out = got[0][1]
    assert (out.vpi, out.vci, out.payload, out.pt) == (1, 200, c.payload, 1)
    assert Cell.from_bytes(out.to_bytes()) == out                    # HEC recomputed
    assert sw.stats.unroutable == 1 and sw.stats.cells_out == 1
    with pytest.raises(ValueError, match="already routed"):
        sw.route(0, 0, 100, 1, 0, 5)
    with pytest.raises(ValueError, match="no port 3"):
        sw.route(3, 0, 1, 0, 0, 1)


def test_switch_overflow_is_counted_per_port_and_vc():
    k = Kernel()
    sw, links = make_net(k, buffer_cells=4)
    sw.route(0, 0, 100, 2, 0, 300)
    sw.route(1, 0, 100, 2, 0, 301)
    links[2].a.attach(lambda c: None)
    for _ in range(20):                     # two inputs at full rate into one output
        links[0].a.send(Cell(vpi=0, vci=100, payload=bytes(48)))
        links[1].a.send(Cell(vpi=0, vci=100, payload=bytes(48)))
    k.run(until=10**9)
    drops = sw.stats.drops_by_port[2]
    assert drops > 0 and sw.stats.cells_out + drops == 40
    assert sw.stats.drops_by_vc[(0, 0, 100)] + sw.stats.drops_by_vc[(1, 0, 100)] == drops
    assert sw.stats.max_queue[2] == 4


# -- capture --------------------------------------------------------------------------------
def run_capture(buf) -> list[bytes]:
    k = Kernel()
    w = PcapNgWriter(buf)
    sw, links = make_net(k, buffer_cells=1024, pcap=w)
    sw.route(0, 0, 32, 2, 0, 40)
    sw.route(1, 0, 33, 2, 0, 41)
    links[2].a.attach(lambda c: None)
    sent = []
    for i, size in enumerate((28, 40, 41, 1500, 9180 - 8)):
        pkt = ip_packet(i, size)
        sent.append(pkt)
        for c in cells_of(LLC_SNAP_IP + pkt, 0, 32 + i % 2):
            links[i % 2].a.send(c)
    k.run(until=10**10)
    w.close()
    return sent


def test_capture_holds_the_pdus_and_is_deterministic():
    a, b = io.BytesIO(), io.BytesIO()
    sent = run_capture(a)
    run_capture(b)
    assert a.getvalue() == b.getvalue()
    ifaces, pkts = read_pcapng(a.getvalue())
    assert ifaces[0]["linktype"] == LINKTYPE_SUNATM
    got = {p.data[4 + 8:] for p in pkts}                  # SunATM header, LLC/SNAP, packet
    assert got == set(sent) and all(p.data[4:12] == LLC_SNAP_IP for p in pkts)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_the_ip_packets(tmp_path):
    path = tmp_path / "atm.pcapng"
    sent = run_capture(str(path))
    res = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-T", "fields",
         "-E", "separator=|", "-e", "atm.vci", "-e", "llc.type", "-e", "ip.len",
         "-e", "ip.id", "-e", "ip.checksum.status", "-e", "_ws.malformed"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = sorted(line.split("|") for line in res.stdout.splitlines())
    want = sorted([str(40 + i % 2), "0x0800", str(len(p)), f"0x{i:04x}", "1", ""]   # 1: checksum good
                  for i, p in enumerate(sent))
    assert rows == want


def test_capture_counts_a_corrupted_pdu():
    k = Kernel()
    w = PcapNgWriter(io.BytesIO())
    link = AtmLink(k, pcap=w)
    link.b.attach(lambda c: None)
    cells = cells_of(LLC_SNAP_IP + ip_packet(1, 100), 0, 32)
    bad = cells[0].payload[:-1] + bytes([cells[0].payload[-1] ^ 1])
    cells[0] = Cell(vpi=0, vci=32, payload=bad)
    for c in cells + cells_of(LLC_SNAP_IP + ip_packet(2, 60), 0, 32):
        link.a.send(c)
    k.run(until=10**9)
    assert w.packets == 1
    assert link.a.tx_stats.capture_errors == 1 and link.a.tx_stats.pdus_captured == 1
