"""A raw peer station on a server's Ethernet: scapy-built frames in, every server frame checked.

The paper's servers are only ever spoken to by well-behaved clients (``sw/clients/http.py``).
This module attaches a *raw* station to the segment of a server machine built by
:mod:`serveros.machines`, so a test can send it any frame at all and watch what comes back:

- :class:`RawPeer` is the station (:meth:`sim.media.ethernet.Segment.attach`): its own MAC and
  IP address(es), answering ARP requests for every address it owns (RFC 826; many spoofed
  addresses for a SYN flood), sending scapy-built ``Ether/IP/TCP`` frames now or at a chosen
  simulated time, and capturing every frame the server sends, parsed with scapy. Every captured
  frame is checked (:func:`check_server_frame`): a valid FCS, a well-formed IPv4 header with a
  valid header checksum (RFC 791 3.1), and a valid TCP (RFC 793 3.1) or ICMP (RFC 792)
  checksum. Problems are collected, never raised inside the simulation, and reported by
  :meth:`RawPeer.check_frames` (which :meth:`Testbed.run` calls after every run).
  It also plays a minimal TCP peer (:class:`PeerConn`): a handshake, data, the server's reply
  acknowledged in order, FIN or RST.
- :class:`Testbed` assembles the world: a fresh kernel and segment, the server machine with the
  paper's documents on its disk (booted, the server started, exactly as
  :func:`serveros.experiments.paper.run_point` does), a :class:`RawPeer`, and
  :meth:`Testbed.fresh_get`: a normal client machine (:func:`serveros.machines.client_spec`
  with :class:`sw.clients.http.HttpClient`) that has taken no part in what came before requests a
  document, which must come back ``200`` with the document's exact bytes (reassembled from the
  server's frames on the wire).

Addresses: the peer is 10.0.0.250 with MAC 08:00:2b:00:00:fa (the machines' plan: the MAC ends
as the IP, clients use 10.0.0.10 to 10.0.0.210); :func:`spoofed_ip` numbers further addresses
10.0.1.1, 10.0.1.2, ... (250 per /24), for which the peer answers ARP with its own MAC.

Example
-------
>>> bed = Testbed("cheetah", image_path)                       # doctest: +SKIP
>>> async def case():
...     conn = await bed.peer.handshake(sport=40000)
...     await bed.peer.send_data(conn, b"GET /doc10 HTTP/1.0\\r\\n\\r\\n")
...     return await bed.peer.receive(conn)
>>> reply = bed.run(case())                                    # doctest: +SKIP
>>> bed.check_fresh_get()                                      # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, Iterable

from scapy.layers.inet import ICMP, IP, TCP, in4_chksum
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from scapy.utils import checksum as inet_checksum

from sim.kernel import Event, Kernel
from sim.media.ethernet import (FCS_LEN, MIN_FRAME, ExcessiveCollisions, FrameError, RxFrame,
                                Segment, check_frame, fcs)
from sim.time import MS, S

from .experiments import paper
from .machines import boot, client_spec, machine_mac, preload_arp, server_ip
from .simulation import RTL_BACKENDS, Simulation

log = logging.getLogger(__name__)

__all__ = ["PEER_IP", "PEER_MAC", "Captured", "PeerConn", "RawPeer", "Testbed", "FrameCheckError",
           "FreshGetFailed", "check_server_frame", "spoofed_ip", "stream_from"]

#: The peer's own address and MAC (the machines' plan: the MAC ends as the IP).
PEER_IP = "10.0.0.250"
PEER_MAC = machine_mac(250)
_MOD = 1 << 32
_ETH_IP, _ETH_ARP = 0x0800, 0x0806
_HEAD_END = b"\r\n\r\n"


def _dotted(ip: str | bytes) -> str:
    """``ip`` (dotted text or 4 bytes) as dotted text; ValueError if it is neither."""
    try:
        return socket.inet_ntoa(socket.inet_aton(ip) if isinstance(ip, str) else bytes(ip))
    except (OSError, TypeError, ValueError):
        raise ValueError(f"not an IPv4 address: {ip!r}") from None


def spoofed_ip(i: int) -> str:
    """The ``i``-th spoofed address: 10.0.(1 + i // 250).(1 + i % 250) (0 <= i < 63750).

    Raises
    ------
    ValueError
        For an index outside that range.
    """
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 250 * 255:
        raise ValueError(f"spoofed address index must be an integer 0..{250 * 255 - 1}, not {i!r}")
    return f"10.0.{1 + i // 250}.{1 + i % 250}"


class FrameCheckError(AssertionError):
    """A frame the server sent is malformed (the message lists every problem)."""


class FreshGetFailed(AssertionError):
    """A fresh client's GET was not answered with 200 and the document's bytes."""


# -- checking the server's frames ------------------------------------------------------------------
def check_server_frame(frame: bytes) -> list[str]:
    """The problems of one frame as it came off the wire (FCS included); ``[]`` if it is sound.

    Checked, with scapy as the parser: the FCS (IEEE 802.3 3.2.9); an ARP or IPv4 EtherType;
    for IPv4, version 4, a header length of at least 5 words, a total length that fits the
    frame, a header checksum that sums to zero (RFC 791 3.1, RFC 1071); for TCP, a data offset
    of at least 5 words within the segment and a checksum over the pseudo-header that sums to
    zero (RFC 793 3.1); for ICMP, its checksum (RFC 792).
    """
    try:
        check_frame(frame)
    except FrameError as e:
        return [str(e)]
    raw = bytes(frame[:-FCS_LEN])
    try:
        pkt = Ether(raw)
    except Exception as e:                       # noqa: BLE001 - scapy's own failure is the finding
        return [f"scapy cannot parse the frame: {e!r}"]
    if pkt.type == _ETH_ARP:
        return [] if pkt.haslayer(ARP) else ["ARP EtherType but scapy finds no ARP packet"]
    if pkt.type != _ETH_IP:
        return [f"unexpected EtherType 0x{pkt.type:04x}"]
    if not pkt.haslayer(IP):
        return ["IPv4 EtherType but scapy finds no IP header"]
    ip = pkt[IP]
    problems = []
    ihl = (ip.ihl or 0) * 4
    data = raw[14:]
    if ip.version != 4:
        problems.append(f"IP version {ip.version}")
    if ihl < 20 or ip.len < ihl or ip.len > len(data):
        return problems + [f"IP header length {ihl} / total length {ip.len} do not fit the "
                           f"{len(data)} bytes after the Ethernet header"]
    if inet_checksum(data[:ihl]) != 0:
        problems.append(f"bad IP header checksum 0x{ip.chksum:04x}")
    body = data[ihl:ip.len]
    if ip.proto == socket.IPPROTO_TCP:
        if not ip.haslayer(TCP) or len(body) < 20:
            return problems + [f"TCP segment of {len(body)} bytes is shorter than its header"]
        off = (ip[TCP].dataofs or 0) * 4
        if off < 20 or off > len(body):
            problems.append(f"TCP data offset {off} outside 20..{len(body)}")
        if in4_chksum(socket.IPPROTO_TCP, ip, body) != 0:
            problems.append(f"bad TCP checksum 0x{ip[TCP].chksum:04x}")
    elif ip.proto == socket.IPPROTO_ICMP:
        if not ip.haslayer(ICMP) or inet_checksum(body) != 0:
            problems.append("bad ICMP checksum")
    return problems


@dataclass(frozen=True)
class Captured:
    """One frame the server sent: when it arrived at the peer (ps), its bytes without FCS, and
    scapy's parse of them."""

    t: int
    raw: bytes
    pkt: Packet

    def tcp_to(self, ip: str, port: int | None = None) -> TCP | None:
        """The frame's TCP header if it is a TCP segment to ``ip`` (and ``port``), else None."""
        p = self.pkt
        if not p.haslayer(TCP) or p[IP].dst != ip:
            return None
        t = p[TCP]
        return t if port is None or t.dport == port else None

    def payload(self) -> bytes:
        """The TCP payload (Ethernet padding excluded)."""
        ip = self.pkt[IP]
        body = self.raw[14 + ip.ihl * 4:14 + ip.len]
        return body[ip[TCP].dataofs * 4:]


def stream_from(frames: Iterable[Captured], ip: str, port: int | None = None) -> bytes:
    """The byte stream the server sent to ``ip`` (``port``), reassembled from ``frames`` by
    sequence number from its SYN (retransmissions overwrite the same bytes)."""
    base = None
    buf = bytearray()
    for c in frames:
        t = c.tcp_to(ip, port)
        if t is None:
            continue
        if t.flags & 0x02:                           # SYN: the stream starts after it
            base = (t.seq + 1) % _MOD
            continue
        data = c.payload()
        if base is None or not data:
            continue
        off = (t.seq - base) % _MOD
        if off > 1 << 30:                            # before the start (a stray old segment)
            continue
        if len(buf) < off + len(data):
            buf.extend(bytes(off + len(data) - len(buf)))
        buf[off:off + len(data)] = data
    return bytes(buf)


# -- the peer ----------------------------------------------------------------------------------
@dataclass
class PeerConn:
    """The peer's side of one TCP connection to the server (sequence numbers modulo 2**32).

    Attributes
    ----------
    src : str
        The peer's address this connection uses.
    sport, dport : int
    snd_nxt : int
        The peer's next sequence number.
    rcv_nxt : int
        The next sequence number expected from the server.
    server_window, server_mss : int
        From the server's SYN-ACK.
    data : bytearray
        What the server sent, in order.
    fin, reset : bool
        The server sent its FIN / a RST.
    scan : int
        Index in :attr:`RawPeer.captured` of the next frame :meth:`RawPeer.receive` looks at.
    """

    src: str
    sport: int
    dport: int
    snd_nxt: int
    rcv_nxt: int
    server_window: int = 0
    server_mss: int = 536
    data: bytearray = field(default_factory=bytearray)
    fin: bool = False
    reset: bool = False
    scan: int = 0


class RawPeer:
    """A raw station on ``segment`` talking to the server at ``server_ip``/``server_mac``.

    Parameters
    ----------
    segment : Segment
    server_mac : bytes
        Frames from this MAC are captured and checked; frames the peer sends go to it.
    server_ip : str or bytes
    name : str
        The station's name on the segment.
    mac : bytes
    ip : str
        The peer's own address; :meth:`add_addresses` adds more (spoofed) ones.

    Raises
    ------
    ValueError
        For a MAC that is not 6 bytes or a malformed IPv4 address.

    Attributes
    ----------
    captured : list[Captured]
        Every frame the server has sent, in arrival order.
    problems : list[str]
        Every problem :func:`check_server_frame` found, with the frame's time.
    sent, lost : int
        Frames the peer has transmitted, and abandoned after 16 collisions.
    arp_replies : int
        ARP replies sent for the peer's addresses.
    """

    def __init__(self, segment: Segment, *, server_mac: bytes, server_ip: str | bytes,
                 name: str = "peer", mac: bytes = PEER_MAC, ip: str = PEER_IP):
        for what, m in (("peer", mac), ("server", server_mac)):
            if not isinstance(m, (bytes, bytearray)) or len(m) != 6:
                raise ValueError(f"the {what} MAC must be 6 bytes, not {m!r}")
        self.kernel: Kernel = segment.kernel
        self.mac = bytes(mac)
        self.ip = _dotted(ip)
        self.server_mac = bytes(server_mac)
        self.server_ip = _dotted(server_ip)
        self.addresses: set[str] = {self.ip}
        self.captured: list[Captured] = []
        self.problems: list[str] = []
        self.sent = 0
        self.lost = 0
        self.arp_replies = 0
        self._arrived = Event(self.kernel, f"{name}.arrived")
        self.station = segment.attach(name, on_frame=self._on_frame)

    # -- addresses and ARP ----------------------------------------------------------------------
    def add_addresses(self, ips: Iterable[str]) -> None:
        """Own (and answer ARP for) every address of ``ips`` too."""
        self.addresses.update(_dotted(ip) for ip in ips)

    def _on_frame(self, rx: RxFrame) -> None:
        data = rx.data
        src = bytes(data[6:12])
        if src == self.server_mac:
            self._capture(rx)
        if bytes(data[12:14]) == b"\x08\x06" and bytes(data[0:6]) in (b"\xff" * 6, self.mac):
            try:
                pkt = Ether(bytes(data[:-FCS_LEN]))
            except Exception:                     # noqa: BLE001 - not ours to judge here
                return
            a = pkt.getlayer(ARP)
            if a is not None and a.op == 1 and a.pdst in self.addresses:
                reply = (Ether(dst=a.hwsrc, src=self.mac)
                         / ARP(op=2, hwsrc=self.mac, psrc=a.pdst, hwdst=a.hwsrc, pdst=a.psrc))
                self.arp_replies += 1
                self.kernel.spawn(self.send(reply), name="peer.arp", daemon=True)

    def _capture(self, rx: RxFrame) -> None:
        problems = check_server_frame(rx.data)
        raw = bytes(rx.data[:-FCS_LEN])
        try:
            pkt = Ether(raw)
        except Exception as e:                    # noqa: BLE001 - recorded as a finding
            problems = problems or [f"scapy cannot parse the frame: {e!r}"]
            pkt = Ether(dst=raw[0:6], src=raw[6:12]) / Raw(raw[12:])
        for p in problems:
            self.problems.append(f"t={rx.end} ps: {p} ({raw[:64].hex()})")
            log.warning("server frame at %d ps: %s", rx.end, p)
        self.captured.append(Captured(rx.end, raw, pkt))
        self._arrived.pulse()

    def check_frames(self) -> None:
        """Raise :class:`FrameCheckError` listing every malformed frame the server sent."""
        if self.problems:
            raise FrameCheckError(f"{len(self.problems)} malformed frame(s) from the server: "
                                  + "; ".join(self.problems[:10]))

    # -- sending --------------------------------------------------------------------------------
    async def send(self, pkt: Packet | bytes) -> bool:
        """Transmit ``pkt`` (an Ethernet frame without FCS, scapy-built or bytes) now, under
        the segment's CSMA/CD; padded to the 60-byte minimum and given its FCS here.

        Returns False if the frame was abandoned after 16 collisions (IEEE 802.3 4.2.3.2.5:
        a busy wire can do that to any station; counted in ``lost``), True once it is sent.
        """
        frame = bytes(pkt)
        if len(frame) < MIN_FRAME - FCS_LEN:
            frame += bytes(MIN_FRAME - FCS_LEN - len(frame))
        try:
            await self.station.send(frame + fcs(frame))
        except ExcessiveCollisions:
            self.lost += 1
            log.debug("peer frame lost to excessive collisions at %d ps", self.kernel.now)
            return False
        self.sent += 1
        return True

    def send_at(self, t: int, pkt: Packet | bytes) -> None:
        """Transmit ``pkt`` at simulated time ``t`` (ps; deferring to a busy wire as 802.3 does).

        Raises
        ------
        ValueError
            If ``t`` is in the past.
        """
        k = self.kernel
        if t < k.now:
            raise ValueError(f"cannot send at {t} ps: it is already {k.now} ps")
        frame = bytes(pkt)

        async def later() -> None:
            await k.sleep_until(t)
            await self.send(frame)
        k.spawn(later(), name="peer.send_at", daemon=True)

    def tcp(self, *, sport: int, dport: int = 80, seq: int = 0, ack: int = 0,
            flags: int | str = "S", window: int = 8192, options: list | None = None,
            payload: bytes = b"", urgptr: int = 0, dataofs: int | None = None,
            src: str | None = None, chksum: int | None = None) -> Packet:
        """A scapy ``Ether/IP/TCP`` frame from the peer (``src``, default its own address) to
        the server. ``dataofs`` forces the data offset (the first bytes of ``payload`` then
        stand for options, malformed or not); ``chksum`` forces the TCP checksum."""
        seg = TCP(sport=sport, dport=dport, seq=seq % _MOD, ack=ack % _MOD, flags=flags,
                  window=window, urgptr=urgptr, options=options or [], dataofs=dataofs,
                  chksum=chksum)
        pkt = (Ether(dst=self.server_mac, src=self.mac)
               / IP(src=src or self.ip, dst=self.server_ip, ttl=64) / seg)
        return pkt / Raw(payload) if payload else pkt

    # -- waiting for the server -----------------------------------------------------------------
    async def wait_for(self, pred: Callable[[Captured], bool], within: int, *,
                       start: int = 0) -> tuple[int, Captured] | None:
        """The first captured frame from index ``start`` on for which ``pred`` holds, waiting
        up to ``within`` ps of simulated time for it; ``(index, frame)`` or None."""
        k = self.kernel
        deadline = k.now + within
        i = start
        while True:
            while i < len(self.captured):
                if pred(self.captured[i]):
                    return i, self.captured[i]
                i += 1
            if k.now >= deadline:
                return None
            await k.timeout(self._arrived, deadline - k.now)

    async def expect(self, pred: Callable[[Captured], bool], within: int = 500 * MS, *,
                     start: int | None = None) -> Captured | None:
        """The first frame matching ``pred`` captured from now on (or from index ``start``)
        within ``within`` ps, or None."""
        r = await self.wait_for(pred, within, start=len(self.captured) if start is None else start)
        return None if r is None else r[1]

    # -- a minimal TCP peer -----------------------------------------------------------------------
    async def handshake(self, sport: int, *, dport: int = 80, src: str | None = None,
                        isn: int = 1000, window: int = 8192, mss: int = 1460,
                        within: int = 3 * S) -> PeerConn | None:
        """Open a connection (SYN, the server's SYN-ACK, ACK: RFC 793 3.4); None if no SYN-ACK
        acknowledging the SYN came within ``within`` ps (a RST ends the wait early)."""
        src = src or self.ip
        mark = len(self.captured)
        await self.send(self.tcp(sport=sport, dport=dport, seq=isn, flags="S", window=window,
                                 options=[("MSS", mss)], src=src))

        def answer(c: Captured) -> bool:
            t = c.tcp_to(src, sport)
            return t is not None and t.sport == dport and (
                bool(t.flags & 0x04) or (t.flags & 0x12 == 0x12 and t.ack == (isn + 1) % _MOD))
        r = await self.wait_for(answer, within, start=mark)
        if r is None or r[1].pkt[TCP].flags & 0x04:
            return None
        idx, c = r
        t = c.pkt[TCP]
        mss_opt = dict((o[0], o[1]) for o in t.options if isinstance(o, tuple) and len(o) == 2)
        conn = PeerConn(src, sport, dport, (isn + 1) % _MOD, (t.seq + 1) % _MOD,
                        server_window=t.window, server_mss=int(mss_opt.get("MSS", 536)),
                        scan=idx + 1)
        await self.send(self.segment(conn, "A"))
        return conn

    def segment(self, conn: PeerConn, flags: int | str = "A", payload: bytes = b"",
                **fields: Any) -> Packet:
        """A segment on ``conn`` at its current sequence numbers (``fields`` override any TCP
        field of :meth:`tcp`)."""
        kw = dict(sport=conn.sport, dport=conn.dport, seq=conn.snd_nxt, ack=conn.rcv_nxt,
                  flags=flags, src=conn.src, payload=payload)
        kw.update(fields)
        return self.tcp(**kw)

    async def send_data(self, conn: PeerConn, data: bytes, *, flags: str = "PA") -> None:
        """Send ``data`` on ``conn`` in segments of at most the server's MSS (no waiting for
        the server's window or acknowledgements: the data is small and the peer is raw)."""
        mss = max(1, conn.server_mss)
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            await self.send(self.segment(conn, flags, chunk))
            conn.snd_nxt = (conn.snd_nxt + len(chunk)) % _MOD

    async def close(self, conn: PeerConn) -> None:
        """Send a FIN on ``conn``."""
        await self.send(self.segment(conn, "FA"))
        conn.snd_nxt = (conn.snd_nxt + 1) % _MOD

    async def reset(self, conn: PeerConn) -> None:
        """Send a RST on ``conn`` (at its next sequence number, so the server accepts it)."""
        await self.send(self.segment(conn, "R", ack=0))

    async def syn_flood(self, count: int, *, dport: int = 80, first_port: int = 1024,
                        isn: int = 1, gap_ps: int = 0) -> list[str]:
        """Send ``count`` SYNs to ``dport``, each from its own spoofed address
        (:func:`spoofed_ip`), one every ``gap_ps`` ps or, with 0, as fast as the wire takes
        them; the peer answers ARP for every one of them but never completes a handshake (the
        classic SYN flood, CERT CA-1996-21). Returns the addresses used.

        Raises
        ------
        ValueError
            For a count outside 1..63750.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 250 * 255:
            raise ValueError(f"flood size must be an integer 1..{250 * 255}, not {count!r}")
        if isinstance(gap_ps, bool) or not isinstance(gap_ps, int) or gap_ps < 0:
            raise ValueError(f"gap between SYNs must be an integer >= 0 ps, not {gap_ps!r}")
        ips = [spoofed_ip(i) for i in range(count)]
        self.add_addresses(ips)
        t = self.kernel.now
        for i, src in enumerate(ips):
            if gap_ps:
                await self.kernel.sleep_until(max(self.kernel.now, t + i * gap_ps))
            await self.send(self.tcp(sport=first_port + i % 60000, dport=dport, seq=isn + i,
                                     flags="S", options=[("MSS", 1460)], src=src))
        return ips

    async def ping(self, within: int = 1 * S, *, ident: int = 0x5E5, seq: int = 1) -> Captured | None:
        """Send an ICMP echo request to the server (RFC 792); its echo reply within ``within``
        ps, or None. A cheap probe that the server's CPU and stack are alive."""
        await self.send(Ether(dst=self.server_mac, src=self.mac)
                        / IP(src=self.ip, dst=self.server_ip, ttl=64)
                        / ICMP(type=8, id=ident, seq=seq) / Raw(b"serveros peer"))

        def reply(c: Captured) -> bool:
            p = c.pkt
            return (p.haslayer(ICMP) and p[IP].dst == self.ip and p[ICMP].type == 0
                    and p[ICMP].id == ident and p[ICMP].seq == seq)
        return await self.expect(reply, within, start=len(self.captured))

    async def receive(self, conn: PeerConn, within: int = 2 * S) -> bytes:
        """Take the server's segments on ``conn`` for up to ``within`` ps, acknowledging each
        in-order one (and re-acknowledging anything else, as RFC 793 3.9 asks), until its FIN
        or a RST; returns everything received in order (``conn.data``)."""
        k = self.kernel
        deadline = k.now + within

        def mine(c: Captured) -> bool:
            t = c.tcp_to(conn.src, conn.sport)
            return t is not None and t.sport == conn.dport
        while not (conn.fin or conn.reset) and k.now < deadline:
            r = await self.wait_for(mine, deadline - k.now, start=conn.scan)
            if r is None:
                break
            conn.scan = r[0] + 1
            c = r[1]
            t = c.pkt[TCP]
            if t.flags & 0x04:
                conn.reset = True
                break
            data = c.payload()
            fin = bool(t.flags & 0x01)
            if not data and not fin:
                continue
            if t.seq == conn.rcv_nxt:
                conn.data += data
                conn.rcv_nxt = (conn.rcv_nxt + len(data) + fin) % _MOD
                conn.fin = fin
            await self.send(self.segment(conn, "A"))
        return bytes(conn.data)


# -- the test bed -----------------------------------------------------------------------------------
class Testbed:
    """A server machine of :mod:`serveros.machines`, booted and serving the paper's documents,
    with a :class:`RawPeer` on its segment.

    Parameters
    ----------
    server : str
        ``cheetah``, ``harvest``, ``ncsa`` (or ``static``, or a ``cheetah@STAGE``).
    image_path : path-like
        A disk image of :func:`serveros.experiments.paper.build_documents_image`.
    backend : str
        The HDL simulator of the ``rtl`` devices (``verilator`` or ``amaranth``), or ``model``;
        an HDL simulator with no ``rtl`` runs the LANCE card's RTL.
    rtl : str or iterable of str
        The server machine's device kinds that run as RTL (``"lance,disk"``; default none).
        With RTL devices the scenario runs once: :meth:`run` may be called once.
    seed : int
        The segment's and the server's seed.
    pcap_path : path-like, optional
        Capture the segment to this pcapng file (closed by :meth:`close`).
    doc_bytes : int
        The document :meth:`fresh_get` requests (``/doc<N>``; one of the image's sizes).

    Raises
    ------
    ValueError
        For an unknown server, backend or device kind, or a bad seed.
    """

    __test__ = False                              # not a pytest class, despite its name

    def __init__(self, server: str, image_path: str | os.PathLike, *, backend: str = "model",
                 seed: int = 1, pcap_path: str | os.PathLike | None = None,
                 doc_bytes: int = 100, rtl: str | Iterable[str] = ()):
        from sim.media.pcap import PcapNgWriter

        factory = paper.server_factory(server)
        rtl, backend = paper.rtl_setup([server], rtl, backend)
        self.kernel = k = Kernel()
        self._writer = PcapNgWriter(str(pcap_path)) if pcap_path else None
        self.segment = Segment(k, seed=seed, pcap=self._writer)
        self.sim = Simulation(k, paper.paper_machines(server, 0, "pentium", image_path, seed),
                              media={"ethernet": self.segment}, rtl=rtl,
                              backend=backend if rtl else RTL_BACKENDS[0])
        self.host = self.sim.hosts["server"]
        self.peer = RawPeer(self.segment, server_mac=machine_mac(1), server_ip=server_ip())
        self.name = server
        self.seed = seed
        self.doc_bytes = doc_bytes
        self.fresh_gets = 0
        self.server = None

        async def start() -> None:
            await boot(self.host)
            self.server = factory(self.host)
            await self.server.start()
        self.run(start())

    def run(self, coro: Coroutine) -> Any:
        """Run the simulation until ``coro`` (a scenario) returns; its result.

        The server's own tasks are daemons, so the run ends with the scenario. Raises the
        simulation's :class:`sim.kernel.SimulationError` if any task (the server's included)
        failed, :class:`FrameCheckError` if the server sent a malformed frame.
        """
        task = self.kernel.spawn(coro, name="peer-scenario")
        self.sim.run()
        if not task.done:
            raise RuntimeError(f"{self.name}: the simulation stopped before the scenario ended "
                               f"(t={self.kernel.now} ps)")
        self.peer.check_frames()
        return task.result

    def run_until(self, t: int) -> None:
        """Let simulated time pass up to ``t`` ps (nothing happens if it is already later)."""
        async def idle() -> None:
            await self.kernel.sleep_until(max(t, self.kernel.now))
        self.run(idle())

    async def fresh_get(self, doc_bytes: int | None = None, *, timeout_ps: int = 10 * S):
        """A new client machine (which took no part in anything before) fetches ``/doc<N>``
        once; returns ``(record, body)``: its :class:`sw.clients.http.RequestRecord` and the
        body as the server sent it on the wire.

        Raises
        ------
        ValueError
            When the 201 client machines of the address plan are used up.
        """
        from sw.clients.http import HttpClient

        n = self.doc_bytes if doc_bytes is None else doc_bytes
        i = self.fresh_gets
        client = self.sim.add(client_spec(i, seed=self.seed + 1 + i))
        self.fresh_gets += 1
        preload_arp([self.host, client])          # the server learns the client by ARP anyway
        http = HttpClient(client, server_ip(), paper.document_path(n), 1, timeout_ps=timeout_ps)
        mark = len(self.peer.captured)
        await http.run()
        stream = stream_from(self.peer.captured[mark:], _dotted(client.ip))
        _head, _sep, body = stream.partition(_HEAD_END)
        return http.records[0], body

    def check_fresh_get(self, doc_bytes: int | None = None) -> None:
        """Run :meth:`fresh_get` and raise :class:`FreshGetFailed` unless it got ``200`` and
        exactly the document's bytes."""
        n = self.doc_bytes if doc_bytes is None else doc_bytes
        record, body = self.run(self.fresh_get(n))
        want = paper.document_content(n)
        if not record.ok or record.status != 200 or body != want:
            raise FreshGetFailed(
                f"{self.name}: a fresh client's GET /doc{n} at t={record.start} ps got status "
                f"{record.status} ({record.error or 'no error'}), {len(body)} body bytes "
                f"{'matching' if body == want else 'NOT matching'} the {n}-byte document")

    def close(self) -> None:
        """Close the capture file and free the RTL simulation."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.sim.close()
