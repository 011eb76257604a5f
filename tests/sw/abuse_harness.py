"""Abusive stations for the servers' robustness tests (issue 13): a SYN flooder whose
half-open connections never complete, from spoofed addresses no one answers ARP for."""
from __future__ import annotations

from sim.media.ethernet import Segment
from sw.libos.net import ether, ipv4
from sw.libos.net.ether import StationDevice
from sw.libos.net.tcp import ACK, RST, SYN, build_segment


class SynFlooder:
    """Sends bare SYNs to ``server_ip`` from spoofed sources 10.99.x.y and records every TCP
    segment that comes back to them (it sees all frames: promiscuous).

    Parameters
    ----------
    segment : Segment
    server_mac, server_ip : str
    """

    def __init__(self, segment: Segment, server_mac: str, server_ip: str, *,
                 name: str = "flooder", mac: str = "02:00:00:00:0f:01"):
        self.dev = StationDevice(segment, name, mac, promiscuous=True)
        self.dev.attach(self._rx)
        self.server_mac = ether.mac(server_mac)
        self.server_ip = ipv4.addr(server_ip)
        self.replies: list[tuple[bytes, int]] = []     # (spoofed source, TCP flags)
        self.arp_requests = 0
        self.sent = 0

    @staticmethod
    def source(i: int) -> bytes:
        return bytes([10, 99, (i >> 8) & 0xFF, i & 0xFF])

    async def syn(self, i: int, port: int = 80) -> None:
        """One SYN from spoofed source ``i`` (port 1024 + i % 60000)."""
        src = self.source(i)
        seg, _ = build_segment(src, self.server_ip, 1024 + i % 60000, port, 1000 * i, 0, SYN,
                               8192, mss=1460)
        packet = ipv4.build_header(src, self.server_ip, ipv4.PROTO_TCP, len(seg)) + seg
        await self.dev.send(ether.build(self.server_mac, self.dev.mac, ether.ETHERTYPE_IP, packet))
        self.sent += 1

    def _rx(self, frame: bytes) -> None:
        _dst, src_mac, etype, payload = ether.parse(frame)
        if src_mac != self.server_mac:
            return
        if etype == ether.ETHERTYPE_ARP:
            self.arp_requests += 1
            return
        if etype != ether.ETHERTYPE_IP:
            return
        try:
            hdr, data = ipv4.parse(payload)
        except ipv4.IpError:
            return
        if hdr.proto == ipv4.PROTO_TCP and hdr.dst[:2] == bytes([10, 99]):
            self.replies.append((hdr.dst, data[13] & (SYN | ACK | RST)))

    @property
    def resets(self) -> int:
        return sum(1 for _, f in self.replies if f & RST)
