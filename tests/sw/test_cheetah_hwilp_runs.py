"""Cheetah's ``hwilp`` switch on the paper's machines (serveros.experiments.paper.run_point):
``cheetah@+hwilp`` against the stage before it, ``cheetah@+ilp`` (= ``+hwilp.no-hwilp``), in
short runs.

Over the AN2 the card sums every PDU Cheetah receives: the in_cksum pass over each received
segment goes, each datagram in leaves its IP header's sum and the pseudo-header's few adds
(``inloop.adjust_cycles(12)``), and the driver adds its few instructions per PDU. The card's
transmit pipe reads each PDU twice, so with the precomputed checksums (``+hwilp``) Cheetah
keeps transmit sums on the CPU; without them (``+hwilp.no-precomputed_checksums``) the card
completes the checksum of every segment sent and the CPU's ``checksum`` cycles are exactly
what the mechanism leaves: each IP datagram's header sum (in and out) and the pseudo-headers'
adds, plus the closing ASH's prebuilt ACK (52 bytes a connection). The client's TCP checks every
checksum the card computed (none bad, nothing sent again), and a capture's TCP checksums are
the ones scapy computes. Over the LANCE the switch binds nothing: the rows are ``+ilp``'s.
"""
from __future__ import annotations

import pytest

from serveros.experiments import paper
from sim.media.pcap import read_pcapng
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sw.cheetah.ash_handlers import passing_instructions
from sw.drivers import an2 as an2_driver
from sw.exokernel.ash import SANDBOX_CHECK_INSTRUCTIONS
from sw.libos.ilp import inloop
from sw.libos.net import ipv4

import test_cheetah_ilp_runs as ilp_runs
from test_cheetah_ilp_runs import _busy, image  # noqa: F401 (image: the documents' fixture)

REQUESTS = ilp_runs.REQUESTS
#: Categories the card's pipes do not touch.
UNTOUCHED = ("application", "context_switch", "copy", "demux", "memory_stall", "protocol",
             "syscall")


def _run(image, server: str, network: str, size: int) -> tuple[dict, dict]:
    """A point's first row and its server CPU's cycles by category over the whole run (so
    they add up from the run's counters)."""
    r, per_request = ilp_runs._run(image, server, network, size)
    return r, {c: v * r["ok"] for c, v in per_request.items()}


@pytest.mark.parametrize("size", [1024, 10240])
def test_over_an2_the_card_takes_the_receive_checksum_pass(image, size):
    off, off_t = _run(image, "cheetah@+hwilp.no-hwilp", "an2", size)
    on, on_t = _run(image, "cheetah@+hwilp", "an2", size)
    s, s_off = on["server_stats"], off["server_stats"]
    # The transmit pipe's second read is not worth it with the stored sums: receive only.
    assert (s["hwilp_rx_bound"], s["hwilp_tx_bound"]) == (1, 0)
    assert "hwilp_rx_bound" not in s_off
    # The same replies, bytes and PDUs; no segment dropped as a bad checksum by either end's
    # TCP, none sent again.
    for k in ("responses", "bytes_sent", "body_bytes", "frames_in", "frames_out"):
        assert s[k] == s_off[k], k
    assert on["packets_per_request"] == off["packets_per_request"]
    assert s["tcp"]["bad_checksum"] == s["tcp"]["retransmit_timeouts"] == 0
    # What went: at least an in_cksum call over a header and a pseudo-header per segment
    # received, less the adds left; at most one over the largest request each.
    gone = off_t["checksum"] - on_t["checksum"]
    per_frame = AEGIS.checksum_cycles(20 + 12) - inloop.adjust_cycles(12, AEGIS)
    assert s["frames_in"] * per_frame <= gone <= s["frames_in"] * AEGIS.checksum_cycles(20 + 12
                                                                                        + 512)
    # The driver's few instructions per received PDU's completion; nothing more per PDU sent.
    drv = on["an2_stats"]["server_driver"]
    lookup = AEGIS.instructions(passing_instructions(looked_up=True) - passing_instructions()
                                + 6 * SANDBOX_CHECK_INSTRUCTIONS) * REQUESTS
    rx_more = on_t["interrupt"] - off_t["interrupt"]
    assert 0 < rx_more <= drv["rx_pdus"] * AEGIS.instructions(an2_driver._RX_CSUM_INSTRUCTIONS + 1)
    assert abs(on_t["kernel"] - off_t["kernel"]) < lookup
    for cat in UNTOUCHED:
        assert on_t.get(cat, 0) == pytest.approx(off_t.get(cat, 0), abs=2), cat
    # Switched off, the switch costs the CPU more: the predicted direction.
    assert _busy(on_t) < _busy(off_t) - 0.5 * gone


@pytest.mark.parametrize("size", [1024, 10240])
def test_without_the_stored_sums_the_card_completes_every_checksum_sent(image, size):
    off, off_t = _run(image, "cheetah@+hwilp.no-hwilp.no-precomputed_checksums", "an2", size)
    on, on_t = _run(image, "cheetah@+hwilp.no-precomputed_checksums", "an2", size)
    s, s_off = on["server_stats"], off["server_stats"]
    assert s["hwilp_rx_bound"] == s["hwilp_tx_bound"] == 1
    for k in ("responses", "bytes_sent", "body_bytes", "frames_in", "frames_out"):
        assert s[k] == s_off[k], k
    assert s["tcp"]["bad_checksum"] == s["tcp"]["retransmit_timeouts"] == 0
    # What the mechanism leaves of checksum, to the cycle: the IP headers' sums and the
    # pseudo-headers' adds of every datagram in and out, and the ASH's prebuilt ACKs.
    frames = s["frames_in"] + s["frames_out"]
    left = frames * (AEGIS.checksum_cycles(ipv4.HEADER_LEN) + inloop.adjust_cycles(12, AEGIS)) \
        + s["ash_armed"] * AEGIS.checksum_cycles(52)
    assert on_t["checksum"] == pytest.approx(left, abs=1)
    # The CPU reads no document byte; the paper's Cheetah without stored sums sums them all.
    assert s["cpu_touched_doc_bytes"] == s["doc_cache_lines_flushed"] == 0
    assert s_off["cpu_touched_doc_bytes"] > 0
    assert off_t["checksum"] - on_t["checksum"] >= s["body_bytes"] // 2
    # The driver's few instructions per PDU sent with Csum.
    drv = on["an2_stats"]["server_driver"]
    lookup = AEGIS.instructions(passing_instructions(looked_up=True) - passing_instructions()
                                + 6 * SANDBOX_CHECK_INSTRUCTIONS) * REQUESTS
    tx_more = on_t["kernel"] - off_t["kernel"]
    assert -lookup < tx_more <= drv["tx_pdus"] * AEGIS.instructions(
        an2_driver._TX_CSUM_INSTRUCTIONS + 1) + lookup
    assert _busy(on_t) < _busy(off_t)


def test_the_capture_carries_the_checksums_the_card_computed(image, tmp_path):
    inet = pytest.importorskip("scapy.layers.inet")
    path = tmp_path / "hwilp.pcapng"
    r = paper.run_point(paper.Point(("c",), "cheetah@+hwilp.no-precomputed_checksums", 1024, 1,
                                    REQUESTS, "model", 1, network="an2"), image,
                        pcap_path=str(path))[0]
    assert r["ok"] == REQUESTS and r["server_stats"]["hwilp_tx_bound"] == 1
    _, pkts = read_pcapng(path.read_bytes())
    from_server = 0
    for p in pkts:
        ip = inet.IP(p.data[12:])
        if inet.TCP not in ip:
            continue
        sent = ip[inet.TCP].chksum
        del ip[inet.TCP].chksum
        assert inet.IP(bytes(ip))[inet.TCP].chksum == sent
        from_server += ip.sport == 80
    assert from_server >= 4 * REQUESTS // 2


def test_over_ethernet_the_switch_binds_nothing(image):
    off, off_t = _run(image, "cheetah@+ilp", "ethernet", 1024)
    on, on_t = _run(image, "cheetah@+hwilp", "ethernet", 1024)
    s = on["server_stats"]
    assert s["hwilp_rx_bound"] == s["hwilp_tx_bound"] == 0
    assert s["ilp_rx_fused"] == s["ilp_tx_fused"] == 1          # ilp's software pipes, as before
    assert on_t == off_t and on["throughput_rps"] == off["throughput_rps"]
