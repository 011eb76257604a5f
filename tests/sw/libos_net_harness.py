"""Test helpers for the library OS's TCP/IP stack: recording PCBs, stack pairs, a lossy link."""
from __future__ import annotations

import random

from sim.kernel import Kernel
from sim.media.ethernet import BROADCAST, FCS_LEN, Segment, build_frame, fcs
from sim.media.pcap import PcapNgWriter
from sim.time import NS, US
from sw.libos.net import NetStack, TcpPcb, ether, ipv4
from sw.libos.net.tcp import TcpConfig, TcpSegment, build_segment, parse_segment

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
IP_A, IP_B = "10.0.0.1", "10.0.0.2"


class Conn(TcpPcb):
    """A PCB that records its events and keeps its outgoing stream for :meth:`resupply`.

    The kept stream plays the application's combined cache / retransmission pool.
    """

    def __init__(self, stack: NetStack | None = None, stream: bytes = b"", **kw):
        super().__init__(**kw)
        self.app_stack = stack
        self.stream = bytearray(stream)
        self.got = bytearray()
        self.events: list = []
        self.resupplied: list[tuple[int, int]] = []
        self.acked = 0

    def on_connected(self):
        self.events.append("connected")

    def on_readable(self, data):
        assert data, "on_readable with no data"
        self.got += data

    def on_writable(self, acked):
        self.acked += acked

    def on_peer_closed(self):
        self.events.append("peer_closed")

    def on_closed(self, reason):
        self.events.append(("closed", reason))

    def resupply(self, offset, length):
        self.resupplied.append((offset, length))
        assert 0 <= offset and offset + length <= len(self.stream), (offset, length)
        return bytes(self.stream[offset:offset + length])

    async def write(self, data, **kw):
        self.stream += data if isinstance(data, (bytes, bytearray)) else b"".join(data)
        return await self.app_stack.send(self, data, **kw)

    @property
    def closed(self):
        return any(isinstance(e, tuple) for e in self.events)

    @property
    def reason(self):
        return next((e[1] for e in self.events if isinstance(e, tuple)), None)


def segment_pair(k: Kernel, *, pcap: PcapNgWriter | None = None, cpu_a=None, cpu_b=None,
                 config: TcpConfig | None = None, seed: int = 1):
    """Two stacks on one Ethernet segment."""
    seg = Segment(k, seed=seed, pcap=pcap)
    a = NetStack.on_segment(k, seg, "a", MAC_A, IP_A, cpu=cpu_a, config=config, seed=seed)
    b = NetStack.on_segment(k, seg, "b", MAC_B, IP_B, cpu=cpu_b, config=config, seed=seed + 1)
    return seg, a, b


class LinkDevice:
    """One end of a :class:`LossyLink` (a NetDevice)."""

    def __init__(self, link: "LossyLink", mac: bytes):
        self.link = link
        self.mac = mac
        self.receiver = None
        self.bad_fcs = 0

    def attach(self, receiver):
        self.receiver = receiver

    async def send(self, frame: bytes) -> None:
        full = build_frame(frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big"), frame[14:])
        # 10 Mbit/s serialization: the sender is busy for the frame's time.
        await self.link.kernel.sleep((8 + len(full)) * 8 * 100 * NS)
        self.link.carry(self, full)

    def deliver(self, full: bytes) -> None:
        if fcs(full[:-FCS_LEN]) != full[-FCS_LEN:]:
            self.bad_fcs += 1                   # the receiver drops a bad FCS
            return
        if full[0:6] not in (self.mac, BROADCAST):
            return
        if self.receiver is not None:
            self.receiver(full[:-FCS_LEN])


class LossyLink:
    """A point-to-point link that loses, duplicates, reorders and corrupts frames.

    Corruption flips one byte; half of the IP frames corrupted inside the datagram get a fresh
    FCS, so the IP or TCP checksum has to catch them.
    """

    def __init__(self, kernel: Kernel, *, seed: int = 0, loss: float = 0.0, dup: float = 0.0,
                 corrupt: float = 0.0, delay_ps: int = 50 * US, jitter_ps: int = 0):
        self.kernel = kernel
        self.rng = random.Random(seed)
        self.loss, self.dup, self.corrupt = loss, dup, corrupt
        self.delay_ps, self.jitter_ps = delay_ps, jitter_ps
        self.ends: list[LinkDevice] = []
        self.counts = {"sent": 0, "lost": 0, "dup": 0, "corrupt": 0}
        #: Optional ``drop(frame_without_fcs, sender) -> bool`` hook for targeted losses.
        self.drop_hook = None

    def end(self, mac: str) -> LinkDevice:
        d = LinkDevice(self, bytes(int(x, 16) for x in mac.split(":")))
        self.ends.append(d)
        return d

    def carry(self, sender: LinkDevice, full: bytes) -> None:
        self.counts["sent"] += 1
        (peer,) = [e for e in self.ends if e is not sender]
        if self.drop_hook is not None and self.drop_hook(full[:-FCS_LEN], sender):
            self.counts["lost"] += 1
            return
        r = self.rng
        if r.random() < self.loss:
            self.counts["lost"] += 1
            return
        copies = 2 if r.random() < self.dup else 1
        self.counts["dup"] += copies - 1
        for _ in range(copies):
            f = full
            if r.random() < self.corrupt:
                self.counts["corrupt"] += 1
                b = bytearray(f)
                i = r.randrange(len(b) - FCS_LEN)
                b[i] ^= r.randrange(1, 256)
                # Only IP has checksums of its own to catch what the FCS would miss (ARP and
                # the Ethernet header rely on the FCS alone).
                if i >= 14 and b[12:14] == b"\x08\x00" and r.random() < 0.5:
                    b[-FCS_LEN:] = fcs(bytes(b[:-FCS_LEN]))
                f = bytes(b)
            t = self.kernel.now + self.delay_ps + (r.randrange(self.jitter_ps + 1) if self.jitter_ps else 0)
            self.kernel.call_at(t, lambda f=f: peer.deliver(f))


def link_pair(k: Kernel, link: LossyLink, *, config: TcpConfig | None = None, seed: int = 1):
    """Two stacks on the two ends of ``link``."""
    da, db = link.end(MAC_A), link.end(MAC_B)
    a = NetStack(k, da, IP_A, config=config, name="a", seed=seed)
    b = NetStack(k, db, IP_B, config=config, name="b", seed=seed + 1)
    da.attach(a.input)
    db.attach(b.input)
    return a, b


class ScriptedPeer:
    """A hand-driven TCP peer (address A) facing one stack (address B) with nothing between:
    the test crafts every segment the peer sends (:meth:`inject`) and reads every segment the
    stack sent (:attr:`sent`, ``(time, TcpSegment)`` in order).

    Parameters
    ----------
    k : Kernel
    config : TcpConfig, optional
        The stack's TCP configuration.
    stack_cls : type
        The stack (a :class:`NetStack` or a subclass, e.g. Ultrix's).
    """

    def __init__(self, k: Kernel, *, config: TcpConfig | None = None, seed: int = 1,
                 stack_cls: type = NetStack):
        self.k = k
        self.peer_mac, self.mac = ether.mac(MAC_A), ether.mac(MAC_B)   # .mac: the device's
        self.ip, self.stack_ip = ipv4.addr(IP_A), ipv4.addr(IP_B)
        self.sent: list[tuple[int, TcpSegment]] = []
        self.stack = stack_cls(k, self, IP_B, config=config, name="b", seed=seed)
        self.stack.add_arp(IP_A, MAC_A)

    # -- the stack's device: what it transmits is recorded, in zero time

    async def send(self, frame: bytes) -> None:
        _dst, _src, etype, payload = ether.parse(frame)
        if etype != ether.ETHERTYPE_IP:
            return
        hdr, data = ipv4.parse(payload)
        if hdr.proto == ipv4.PROTO_TCP:
            self.sent.append((self.k.now, parse_segment(hdr.src, hdr.dst, data)))

    def inject(self, sport: int, dport: int, seq: int, ack: int, flags: int, wnd: int,
               payload: bytes = b"", *, mss: int | None = None) -> None:
        """Hand the stack one segment from the peer, now."""
        seg, _ = build_segment(self.ip, self.stack_ip, sport, dport, seq & 0xFFFFFFFF,
                               ack & 0xFFFFFFFF, flags, wnd, [(payload, None)] if payload else (),
                               mss=mss)
        packet = ipv4.build_header(self.ip, self.stack_ip, ipv4.PROTO_TCP, len(seg)) + seg
        self.stack.input(ether.build(self.mac, self.peer_mac, ether.ETHERTYPE_IP, packet))

    def run_to(self, t: int) -> list[tuple[int, TcpSegment]]:
        """Run the kernel to time ``t``; returns the segments the stack sent meanwhile."""
        n = len(self.sent)
        self.k.run(until=t)
        return self.sent[n:]
