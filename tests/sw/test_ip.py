"""Ethernet, ARP, IPv4 and ICMP of the library OS's stack."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP

from sim.kernel import Kernel
from sim.media.ethernet import MIN_FRAME, RxFrame, Segment, build_frame
from sim.time import MS, S, US
from sw.libos.events import Completion, EventLoop
from sw.libos.net import NetDevice, NetStack, StationDevice
from sw.libos.net import arp, ether, icmp, ipv4

from libos_net_harness import IP_A, IP_B, MAC_A, MAC_B, segment_pair


def test_ipv4_header_matches_scapy_and_parses_back():
    hdr = ipv4.build_header(ipv4.addr(IP_A), ipv4.addr(IP_B), ipv4.PROTO_TCP, 100, ident=77)
    ref = IP(bytes(IP(src=IP_A, dst=IP_B, proto=6, id=77, flags="DF", ttl=64, len=120)))
    assert hdr == bytes(ref)[:20]
    h, payload = ipv4.parse(hdr + bytes(100) + b"pad")         # link padding is cut off
    assert (h.src, h.dst, h.proto, h.ident, h.total_length) == (
        ipv4.addr(IP_A), ipv4.addr(IP_B), 6, 77, 120)
    assert payload == bytes(100)
    with pytest.raises(ipv4.IpError, match="checksum") as e:
        ipv4.parse(hdr[:10] + b"\0\0" + hdr[12:] + bytes(100))
    assert e.value.reason == "checksum"
    with pytest.raises(ValueError, match="not an IPv4 address"):
        ipv4.addr("10.0.0.300")


def test_fragments_are_refused_and_counted():
    k = Kernel()
    seg, a, b = segment_pair(k)
    frag = bytes(IP(src=IP_A, dst=IP_B, proto=1, flags="MF", frag=0) / ICMP() / (b"x" * 40))
    last = bytes(IP(src=IP_A, dst=IP_B, proto=1, frag=8) / (b"y" * 40))
    for pkt in (frag, last):
        b.input(ether.build(b.mac, a.mac, ether.ETHERTYPE_IP, pkt))
    k.run(until=1 * MS)
    assert b.stats.ip_dropped == {"fragment": 2}
    assert b.stats.echo_replies_sent == 0


def test_arp_resolution_then_cache_hits():
    k = Kernel()
    seg, a, b = segment_pair(k)
    r1 = k.spawn(a.ping(IP_B))
    k.run(until=1 * S)
    r2 = k.spawn(a.ping(IP_B))
    k.run(until=2 * S)
    assert r1.result and r2.result and r2.result < r1.result      # no ARP round the 2nd time
    assert a.stats.arp_requests_sent == 1 and b.stats.arp_replies_sent == 1
    assert a.arp.lookup(ipv4.addr(IP_B), k.now) == ether.mac(MAC_B)
    # b learned a from the request it answered (RFC 826's merge).
    assert b.arp.lookup(ipv4.addr(IP_A), k.now) == ether.mac(MAC_A)
    assert b.stats.arp_requests_sent == 0


def test_icmp_echo_reply_carries_the_data():
    k = Kernel()
    seg, a, b = segment_pair(k)
    t = k.spawn(a.ping(IP_B, b"0123456789" * 20))
    k.run(until=1 * S)
    assert isinstance(t.result, int) and t.result < 2 * MS
    assert b.stats.echo_replies_sent == 1 and a.stats.icmp_in == 1
    msg = icmp.build_echo(icmp.ECHO_REQUEST, 1, 2, b"abc")
    assert bytes(ICMP(msg)) == bytes(ICMP(type=8, id=1, seq=2) / b"abc")


def test_arp_to_an_absent_host_fails_and_drops_the_queue():
    k = Kernel()
    seg, a, b = segment_pair(k)
    t = k.spawn(a.ping("10.0.0.99", timeout_ps=5 * S))
    k.run(until=10 * S)
    assert t.result is None
    assert a.stats.arp_requests_sent == 3 and a.stats.arp_failed == 1
    assert not a._arp_pending


def test_arp_packet_round_trip_and_errors():
    p = arp.ArpPacket(arp.OP_REQUEST, ether.mac(MAC_A), ipv4.addr(IP_A), bytes(6), ipv4.addr(IP_B))
    assert arp.ArpPacket.parse(bytes(p) + bytes(18)) == p
    with pytest.raises(ValueError, match="shorter"):
        arp.ArpPacket.parse(bytes(p)[:20])
    cache = arp.ArpCache(timeout_ps=10)
    cache.update(ipv4.addr(IP_A), ether.mac(MAC_A), now=0)
    assert cache.lookup(ipv4.addr(IP_A), 5) is not None and cache.lookup(ipv4.addr(IP_A), 10) is None
    with pytest.raises(ValueError, match="timeout"):
        arp.ArpCache(timeout_ps=0)


def test_station_device_is_a_netdevice_that_pads_and_appends_fcs():
    k = Kernel()
    seg = Segment(k)
    dev = StationDevice(seg, "x", MAC_A)
    sink = seg.attach("sink")
    assert isinstance(dev, NetDevice)
    t = k.spawn(dev.send(ether.build(MAC_B, MAC_A, 0x88B5, b"hi")))
    k.run(until=1 * MS)
    rx = sink._rxq[0]
    assert len(rx.data) == MIN_FRAME
    got = []
    dev.attach(got.append)

    async def to_dev():
        await sink.send(build_frame(MAC_A, MAC_B, 0x88B5, b"for x"))
        await sink.send(build_frame("02:00:00:00:00:99", MAC_B, 0x88B5, b"not for x"))

    k.spawn(to_dev())
    k.run(until=2 * MS)
    bad = build_frame(MAC_A, MAC_B, 0x88B5, b"bad")
    dev._on_frame(RxFrame(bad[:-1] + bytes([bad[-1] ^ 1]), "sink", 0, 0))
    assert got == [build_frame(MAC_A, MAC_B, 0x88B5, b"for x")[:-4]]
    assert (dev.stats.rx_frames, dev.stats.rx_filtered, dev.stats.rx_bad_fcs) == (1, 1, 1)
    with pytest.raises(ValueError, match="MAC"):
        StationDevice(seg, "y", "nonsense")
    with pytest.raises(TypeError, match="mac"):
        NetStack(k, object(), IP_A)


def test_event_loop_returns_the_callers_value_with_the_completion():
    k = Kernel()
    done: list[Completion] = []
    loop = EventLoop(k, on_complete=done.append)

    async def slow(x):
        await k.sleep(5 * US)
        return x + 1

    loop.post(slow, 1, value="first")
    loop.post(lambda: 1 / 0, value="second")
    loop.post(slow, 10, value="third")
    k.run(until=1 * MS)
    assert [(c.value, c.result) for c in done] == [("first", 2), ("second", None), ("third", 11)]
    assert isinstance(done[1].error, ZeroDivisionError)
    assert loop.processed == 3 and len(loop) == 0
    with pytest.raises(TypeError, match="callable"):
        loop.post(42)
