"""The library's UDP (sw/libos/net/udp.py): datagrams scapy and dpkt accept, checksums over the
pseudo-header (0 sent as 0xffff), and every malformed datagram refused with its reason."""
from __future__ import annotations

import dpkt
import pytest
from scapy.layers.inet import IP, UDP

from sw.libos.net import checksum as ck
from sw.libos.net import ipv4, udp

SRC, DST = ipv4.addr("10.0.3.1"), ipv4.addr("10.0.1.1")


def datagram(payload: bytes, sport=1234, dport=7) -> bytes:
    d = udp.build(SRC, DST, sport, dport, payload)
    return ipv4.build_header(SRC, DST, ipv4.PROTO_UDP, len(d)) + d


@pytest.mark.parametrize("payload", [b"", b"x", b"echo me", bytes(range(256)) * 5 + b"odd"])
def test_built_datagrams_parse_in_scapy_and_dpkt_with_their_checksums(payload):
    raw = datagram(payload)
    p = IP(raw)
    assert p[UDP].sport == 1234 and p[UDP].dport == 7 and bytes(p[UDP].payload) == payload
    want = p[UDP].chksum
    del p[UDP].chksum
    assert IP(bytes(p))[UDP].chksum == want                # scapy computes the same sum
    d = dpkt.ip.IP(raw).data
    assert isinstance(d, dpkt.udp.UDP) and d.ulen == 8 + len(payload) and d.data == payload
    back = udp.parse(SRC, DST, raw[20:])
    assert (back.src_port, back.dst_port, back.payload, back.checksummed) == (1234, 7, payload, True)


def test_a_checksum_of_zero_is_sent_as_ffff_and_a_zero_field_means_none():
    # the payload whose sum makes the checksum 0: found by search, deterministic
    payload = next(p for p in (i.to_bytes(2, "big") for i in range(1 << 16))
                   if ck.checksum(udp.build(SRC, DST, 1234, 7, p)[:6] + b"\0\0" + p,
                                  ck.pseudo_header_sum(SRC, DST, 17, 10)) == 0)
    d = udp.build(SRC, DST, 1234, 7, payload)
    assert d[6:8] == b"\xff\xff" and udp.parse(SRC, DST, d).payload == payload
    none = d[:6] + b"\0\0" + d[8:]                          # the sender computed no checksum
    got = udp.parse(SRC, DST, none)
    assert got.payload == payload and not got.checksummed


def test_link_padding_after_the_datagram_is_ignored():
    d = udp.build(SRC, DST, 5, 7, b"hi")
    assert udp.parse(SRC, DST, d + bytes(18)).payload == b"hi"


@pytest.mark.parametrize("mangle, reason", [
    (lambda d: d[:7], "short"),
    (lambda d: d[:4] + (7).to_bytes(2, "big") + d[6:], "length"),
    (lambda d: d[:4] + (len(d) + 1).to_bytes(2, "big") + d[6:], "length"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum"),
])
def test_malformed_datagrams_are_refused_with_their_reason(mangle, reason):
    d = udp.build(SRC, DST, 1234, 7, b"payload")
    with pytest.raises(udp.UdpError) as e:
        udp.parse(SRC, DST, mangle(d))
    assert e.value.reason == reason


def test_a_datagram_checked_against_other_addresses_fails_its_checksum():
    d = udp.build(SRC, DST, 1234, 7, b"payload")
    with pytest.raises(udp.UdpError, match="checksum is wrong"):
        udp.parse(SRC, ipv4.addr("10.0.1.2"), d)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="src_port must be a port number"):
        udp.build(SRC, DST, 70000, 7, b"")
    with pytest.raises(ValueError, match="dst_ip must be 4 bytes"):
        udp.build(SRC, b"\1\2\3", 1, 7, b"")
    with pytest.raises(ValueError, match="exceeds UDP's 65527"):
        udp.build(SRC, DST, 1, 7, bytes(65528))
    with pytest.raises(TypeError, match="payload must be bytes, not str"):
        udp.build(SRC, DST, 1, 7, "text")
    with pytest.raises(TypeError, match="datagram must be bytes, not NoneType"):
        udp.parse(SRC, DST, None)
