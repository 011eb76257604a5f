"""A host's TCP/IP stack: frames in, frames out, demultiplexed to ARP, IP, ICMP and TCP.

The stack sits on any :class:`~sw.libos.net.ether.NetDevice`. Its link layer is the device's
``link_layer`` when it has one (:class:`sw.libos.net.atm.AtmLinkLayer`: classical IP over ATM, LLC/SNAP
and a PVC table, no ARP, MTU 9180), else Ethernet II with ARP; the MTU defaults to the link's,
and TCP's MSS follows it. A datagram to send may be a :class:`~sw.libos.net.gather.Gather`
(pieces left in memory); every header is prepended to it. Received frames (without FCS)
are given to :meth:`NetStack.input`, which queues them for the stack's receive task; frames to
send are queued for its transmit task, which awaits ``device.send`` one frame at a time. A
device whose ``sends_in_caller`` is true (a library OS's interface on Aegis,
:class:`~sw.libos.net.aegis_env.AegisNetwork`, where a send is the kernel's transmit system
call) gets each datagram of :meth:`NetStack.ip_output` from the task that sent it, at once,
unless an earlier frame still waits for the transmit task (the order stays the sending order).
Timers (retransmission, TIME_WAIT, ARP retries) run on the simulation kernel.

CPU costs
---------
With a :class:`sim.cpu.CPU`, the stack charges it from the platform profile: per packet
``ip_per_packet_cycles`` (IP input or output, ARP and ICMP too) and ``tcp_per_packet_cycles``
(TCP input or output) as :data:`~sim.cpu.PROTOCOL`; every byte it sums through
``cpu.checksum`` (headers always, payload unless the application supplied its sum); a copy of
received payload into the application through ``cpu.copy``; ``pcb_lookup_per_entry_cycles``
per PCB examined as :data:`~sim.cpu.DEMUX`. Without a CPU everything takes zero time.

Example
-------
>>> from sim.kernel import Kernel
>>> from sim.media.ethernet import Segment
>>> k = Kernel(); seg = Segment(k)
>>> a = NetStack.on_segment(k, seg, "a", "02:00:00:00:00:01", "10.0.0.1")
>>> b = NetStack.on_segment(k, seg, "b", "02:00:00:00:00:02", "10.0.0.2")
>>> t = k.spawn(a.ping("10.0.0.2"))
>>> _ = k.run(until=10**10)
>>> t.result is not None
True
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from sim.cpu import CHECKSUM, CPU, DEMUX, PROTOCOL
from sim.kernel import DONE, Event, Kernel, Queue
from sim.media.ethernet import Segment
from sim.platforms.base import Cost, Platform
from sim.time import S

from ..ilp import inloop   # attributes used at run time (inloop imports this package)
from . import arp as arpmod
from . import ether, icmp, ipv4
from .atm import NoPvc, card_sum
from .gather import Gather
from .tcp import Tcp, TcpConfig, TcpPcb

log = logging.getLogger(__name__)

__all__ = ["NetStack", "StackCosts", "NetStats"]


@dataclass(frozen=True)
class StackCosts:
    """The profile costs the stack charges (cycles).

    Built from a :class:`~sim.platforms.base.Platform` by :meth:`from_profile`.
    """

    ip_per_packet: Cost | float
    tcp_per_packet: Cost | float
    pcb_lookup_per_entry: Cost | float

    @classmethod
    def from_profile(cls, p: Platform) -> "StackCosts":
        """Take ``ip_per_packet_cycles``, ``tcp_per_packet_cycles`` and
        ``pcb_lookup_per_entry_cycles`` from ``p``.

        Raises
        ------
        ValueError
            If the profile lacks one of them.
        """
        try:
            return cls(p.ip_per_packet_cycles, p.tcp_per_packet_cycles,
                       p.pcb_lookup_per_entry_cycles)
        except AttributeError as e:
            raise ValueError(f"profile {getattr(p, 'name', p)!r} lacks a TCP/IP cost: {e}") from None


@dataclass
class NetStats:
    """Per-stack counters (TCP's are in ``stack.tcp.stats``)."""

    frames_in: int = 0
    frames_out: int = 0
    tx_errors: int = 0
    runts: int = 0
    unknown_ethertype: int = 0
    arp_in: int = 0
    arp_requests_sent: int = 0
    arp_replies_sent: int = 0
    arp_failed: int = 0
    arp_queue_drops: int = 0
    arp_malformed: int = 0
    ip_in: int = 0
    ip_out: int = 0
    ip_not_for_us: int = 0
    ip_unknown_protocol: int = 0
    #: Dropped datagrams by reason (``"checksum"``, ``"fragment"``, ...; see ipv4.parse).
    ip_dropped: dict = field(default_factory=dict)
    icmp_in: int = 0
    icmp_bad: int = 0
    echo_replies_sent: int = 0


class NetStack:
    """The per-host TCP/IP stack.

    It is its TCP's IP layer (:class:`~sw.libos.net.tcp.IpLayer`: ``kernel``, ``ip``, ``mtu``,
    ``name``, the ``charge_*`` methods and :meth:`ip_output`); the TCP knows it only as that.

    Parameters
    ----------
    kernel : Kernel
    device : NetDevice
        The interface (its ``mac`` and ``async send(frame)``); wire its received frames to
        :meth:`input` (``StationDevice.attach(stack.input)``; :meth:`on_segment` does it).
    ip : str or bytes
        The host's IPv4 address (one interface, one subnet: every peer is on the link).
    cpu : CPU, optional
        Charged for the stack's work (see the module docstring); None runs in zero time.
    costs : StackCosts, optional
        Defaults to the CPU's profile.
    config : TcpConfig, optional
    name : str
        Names the stack's tasks.
    seed : int
        Seeds TCP's initial sequence numbers.
    arp_timeout_ps, arp_retry_ps, arp_retries : int
        ARP entry lifetime (20 min, as BSD), time between requests (1 s) and requests sent
        before the queued packets are dropped (3).
    mtu : int, optional
        Largest IP datagram: by default the link's (1500 on Ethernet; the device's ``mtu``,
        9180 for IP over ATM), and never above it.

    Raises
    ------
    TypeError, ValueError
        For a bad kernel, device, address or parameter.
    """

    ARP_QUEUE = 16

    def __init__(self, kernel: Kernel, device, ip: str | bytes, *, cpu: CPU | None = None,
                 costs: StackCosts | None = None, config: TcpConfig | None = None,
                 name: str = "net", seed: int = 0, arp_timeout_ps: int = 20 * 60 * S,
                 arp_retry_ps: int = 1 * S, arp_retries: int = 3, mtu: int | None = None):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"NetStack needs a sim.kernel.Kernel, not {kernel!r}")
        if not isinstance(getattr(device, "mac", None), bytes) or len(device.mac) != 6 \
                or not callable(getattr(device, "send", None)):
            raise TypeError(f"device must have a 6-byte mac and an async send(), not {device!r}")
        if cpu is not None and not isinstance(cpu, CPU):
            raise TypeError(f"cpu must be a sim.cpu.CPU or None, not {cpu!r}")
        if config is not None and not isinstance(config, TcpConfig):
            raise TypeError(f"config must be a TcpConfig, not {config!r}")
        #: The link layer: None for Ethernet II with ARP, else the device's (IP over ATM).
        self.link_layer = getattr(device, "link_layer", None)
        max_mtu = ether.MTU if self.link_layer is None else self.link_layer.mtu
        mtu = max_mtu if mtu is None else mtu
        for pname, v, lo in (("arp_retry_ps", arp_retry_ps, 1), ("arp_retries", arp_retries, 1),
                             ("mtu", mtu, 68)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{pname} must be an int >= {lo}, not {v!r}")
        if mtu > max_mtu:
            raise ValueError(f"mtu must be at most {max_mtu} (the link's), not {mtu!r}")
        self.kernel = kernel
        self.device = device
        self.mac = device.mac
        self.ip = ipv4.addr(ip)
        self.cpu = cpu
        self.costs = costs if costs is not None or cpu is None else StackCosts.from_profile(cpu.profile)
        self.name = name
        self.mtu = mtu
        #: Bytes of a received frame in front of its IP datagram.
        self.link_header_len = ether.HEADER_LEN if self.link_layer is None else self.link_layer.header_len
        self.stats = NetStats()
        self.arp = arpmod.ArpCache(arp_timeout_ps)
        self.arp_retry_ps = arp_retry_ps
        self.arp_retries = arp_retries
        self._arp_pending: dict[bytes, list[tuple[int, bytes]]] = {}
        self._arp_resolved: dict[bytes, Event] = {}
        self._ident = 0
        self._pings: dict[tuple[int, int], Event] = {}
        self._ping_seq = 0
        self.tcp = Tcp(self, config or TcpConfig(), seed)
        self._rxq: Queue = Queue(kernel, name=f"{name}.rx")
        self._txq: Queue = Queue(kernel, name=f"{name}.tx")
        #: Frames queued for the transmit task and not yet handed to the device.
        self._tx_backlog = 0
        #: A ``device.send`` is in progress; ``_tx_free`` is set when it ends.
        self._tx_busy = False
        self._tx_free = Event(kernel, f"{name}.tx_free")
        #: Datagrams go to the device from the sending task (see the module docstring).
        self.sends_in_caller = getattr(device, "sends_in_caller", False) is True
        kernel.spawn(self._rx_loop(), name=f"{name}.rx", daemon=True)
        kernel.spawn(self._tx_loop(), name=f"{name}.tx", daemon=True)

    @classmethod
    def on_segment(cls, kernel: Kernel, segment: Segment, station: str, mac: str | bytes,
                   ip: str | bytes, **kw) -> "NetStack":
        """A stack on a new :class:`~sw.libos.net.ether.StationDevice` of ``segment``."""
        dev = ether.StationDevice(segment, station, mac)
        stack = cls(kernel, dev, ip, name=kw.pop("name", station), **kw)
        dev.attach(stack.input)
        return stack

    # -- CPU charging ---------------------------------------------------------------------------
    # These return the CPU operation's awaitable itself (or an already finished one) rather than
    # being coroutines of their own: ``await stack.charge_protocol("tcp")`` is the same charge at
    # the same instant, with one coroutine fewer per charge on the per-packet paths.
    def charge_protocol(self, layer: str) -> Awaitable[None]:
        """Charge one packet's processing at ``layer`` (``"ip"`` or ``"tcp"``)."""
        return self.charge_packet(layer, 0)

    def charge_packet(self, layer: str, nbytes: int) -> Awaitable[None]:
        """Charge one packet's processing at ``layer`` and summing ``nbytes`` of it, in one
        CPU operation (:meth:`sim.cpu.CPU.charges`): the same times and accounting as
        :meth:`charge_protocol` followed by :meth:`charge_checksum`."""
        cpu = self.cpu
        if cpu is None:
            return DONE
        cost = self.costs.tcp_per_packet if layer == "tcp" else self.costs.ip_per_packet
        if not nbytes:
            return cpu.charge(cost, PROTOCOL)
        return cpu.charges(((cost, PROTOCOL),
                            (cpu.profile.checksum_cycles(nbytes, False), CHECKSUM)))

    def charge_checksum(self, nbytes: int) -> Awaitable[None]:
        """Charge summing ``nbytes`` (nothing for 0)."""
        if self.cpu is None or not nbytes:
            return DONE
        return self.cpu.checksum(nbytes)

    def charge_copy(self, nbytes: int) -> Awaitable[None]:
        """Charge copying ``nbytes``."""
        if self.cpu is None or not nbytes:
            return DONE
        return self.cpu.copy(nbytes)

    def charge_demux(self, entries: int) -> Awaitable[None]:
        """Charge examining ``entries`` PCBs."""
        if self.cpu is None or not entries:
            return DONE
        return self.cpu.charge(float(self.costs.pcb_lookup_per_entry) * entries, DEMUX)

    # -- frames in ------------------------------------------------------------------------------
    def input(self, frame: bytes) -> None:
        """Hand the stack a received frame (without FCS); processed by the stack's receive
        task in arrival order. Callable from any context (a device callback, a driver)."""
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"a frame must be bytes, not {type(frame).__name__}")
        self._rxq.put_nowait(bytes(frame))

    async def _rx_loop(self) -> None:
        while True:
            await self.process(await self._rxq.get())

    async def process(self, frame: bytes) -> None:
        """Process one received frame now (what the receive task does with each)."""
        self.stats.frames_in += 1
        if self.link_layer is not None:
            got = self.link_layer.parse(frame)        # a PDU that is not LLC/SNAP IP: counted there
            if got is None:
                return
            summed = card_sum(frame)
            if summed is not None and summed[1] == self.link_layer.header_len:
                # The card summed the datagram (Cheetah's hwilp): the TCP checksum is checked
                # with that sum.
                await self._ip_input(None, got[1], frame=got[1], frame_sum=summed[0],
                                     link_len=0)
                return
            await self._ip_input(None, got[1])
            return
        if len(frame) < ether.HEADER_LEN:
            self.stats.runts += 1
            return
        dst, src, etype, payload = ether.parse(frame)
        if etype == ether.ETHERTYPE_IP:
            total = inloop.frame_sum(frame)
            if total is not None:             # the copy loop's ILP pipes summed the frame
                await self._ip_input(src, payload, frame=frame, frame_sum=total)
                return
            await self._ip_input(src, payload)
        elif etype == ether.ETHERTYPE_ARP:
            await self._arp_input(payload)
        else:
            self.stats.unknown_ethertype += 1

    # -- frames out -----------------------------------------------------------------------------
    def _ether(self, hw: bytes, etype: int, packet):
        """The Ethernet frame of ``packet`` to ``hw`` (a checksum the copy loop completes
        still asked for: :func:`sw.libos.ilp.inloop.prepend_request`)."""
        return inloop.prepend_request(packet, ether.build(hw, self.mac, etype, packet),
                                      ether.HEADER_LEN)

    def _queue_frame(self, frame: bytes) -> None:
        self._tx_backlog += 1
        self._txq.put_nowait(frame)

    async def _output(self, frame) -> None:
        """Send ``frame`` from the calling task if the device takes sends there
        (:attr:`sends_in_caller`) and no earlier frame waits, else queue it for the transmit
        task."""
        if not self.sends_in_caller or self._tx_backlog or self._tx_busy:
            self._queue_frame(frame)
            return
        await self._send(frame)

    async def _send(self, frame) -> None:
        """Hand ``frame`` to the device (one send at a time)."""
        self._tx_busy = True
        try:
            await self.device.send(frame)
            self.stats.frames_out += 1
        except Exception as e:              # e.g. excessive collisions: the frame is lost
            self.stats.tx_errors += 1
            log.debug("%s: transmit failed: %r", self.name, e)
        finally:
            self._tx_busy = False
            self._tx_free.set()

    async def _tx_loop(self) -> None:
        while True:
            frame = await self._txq.get()
            while self._tx_busy:                # a task's own send (sends_in_caller) first
                self._tx_free.clear()
                await self._tx_free
            await self._send(frame)
            self._tx_backlog -= 1

    # -- ARP ------------------------------------------------------------------------------------
    def add_arp(self, ip: str | bytes, hw: str | bytes) -> None:
        """A static ARP entry."""
        self.arp.update(ipv4.addr(ip), ether.mac(hw),
                        self.kernel.now, static=True)

    async def _arp_input(self, payload: bytes) -> None:
        self.stats.arp_in += 1
        await self.charge_protocol("ip")
        try:
            p = arpmod.ArpPacket.parse(payload)
        except ValueError:
            self.stats.arp_malformed += 1
            return
        now = self.kernel.now
        for_us = p.tpa == self.ip
        if for_us or p.spa in self.arp:
            self.arp.update(p.spa, p.sha, now)
            self._arp_flush(p.spa, p.sha)
        if for_us and p.op == arpmod.OP_REQUEST:
            reply = arpmod.ArpPacket(arpmod.OP_REPLY, self.mac, self.ip, p.sha, p.spa)
            self.stats.arp_replies_sent += 1
            await self.charge_protocol("ip")
            self._queue_frame(ether.build(p.sha, self.mac, ether.ETHERTYPE_ARP, bytes(reply)))

    def _arp_flush(self, ip: bytes, hw: bytes) -> None:
        for etype, payload in self._arp_pending.pop(ip, []):
            self._queue_frame(self._ether(hw, etype, payload))
        ev = self._arp_resolved.pop(ip, None)
        if ev is not None:
            ev.set(hw)

    async def _arp_resolve(self, ip: bytes) -> None:
        ev = self._arp_resolved[ip]
        req = arpmod.ArpPacket(arpmod.OP_REQUEST, self.mac, self.ip, bytes(6), ip)
        frame = ether.build(ether.BROADCAST, self.mac, ether.ETHERTYPE_ARP, bytes(req))
        for _ in range(self.arp_retries):
            self.stats.arp_requests_sent += 1
            await self.charge_protocol("ip")
            self._queue_frame(frame)
            idx, _v = await self.kernel.timeout(ev, self.arp_retry_ps)
            if idx == 0:
                return
        dropped = self._arp_pending.pop(ip, [])
        self._arp_resolved.pop(ip, None)
        self.stats.arp_failed += 1
        log.debug("%s: ARP for %s failed, %d packets dropped", self.name, ipv4.format_addr(ip),
                  len(dropped))

    # -- IP -------------------------------------------------------------------------------------
    def next_ident(self) -> int:
        """The IP identification of the next datagram this host sends (taken: a frame built
        outside :meth:`ip_output`, e.g. a reply an ASH sends from the kernel, uses it)."""
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    async def ip_output(self, dst: bytes, proto: int, payload: "bytes | Gather") -> None:
        """Send ``payload`` (bytes or a :class:`~sw.libos.net.gather.Gather`) to ``dst`` in
        one datagram (on Ethernet resolving the MAC with ARP; over ATM on the PVC that
        reaches ``dst``, or dropped and counted in the link's ``no_pvc`` if none does).

        Raises
        ------
        ValueError
            If the datagram would exceed the MTU (the library never fragments).
        """
        if ipv4.HEADER_LEN + len(payload) > self.mtu:
            raise ValueError(f"datagram of {ipv4.HEADER_LEN + len(payload)} bytes exceeds the "
                             f"MTU {self.mtu}; the library does not fragment")
        hdr = ipv4.build_header(self.ip, dst, proto, len(payload), ident=self.next_ident())
        await self.charge_packet("ip", ipv4.HEADER_LEN)
        self.stats.ip_out += 1
        packet = payload.prepend(hdr) if isinstance(payload, Gather) else hdr + payload
        if inloop.sum_request(payload) is not None:
            # The interface's copy loop completes the checksum (Cheetah's ilp switch): the
            # pseudo-header's sum in the field was a few adds in line; the request moves past
            # the IP header, which sums to 0 with its checksum.
            if self.link_layer is not None \
                    and not getattr(self.link_layer, "card_completes_sums", False):
                raise ValueError(f"{self.name}: a segment whose checksum the copy loop "
                                 f"completes, over a link without one")
            if self.cpu is not None:
                await self.cpu.charge(inloop.adjust_cycles(12, self.cpu.profile), CHECKSUM)
            packet = inloop.prepend_request(payload, packet, ipv4.HEADER_LEN,
                                            header_sums_to_zero=True)
        if self.link_layer is not None:
            try:
                frame = self.link_layer.frame(dst, packet)
            except NoPvc as e:
                log.debug("%s: %s: datagram dropped", self.name, e)
                return
            await self._output(frame)
            return
        hw = self.arp.lookup(dst, self.kernel.now)
        if hw is not None:
            await self._output(self._ether(hw, ether.ETHERTYPE_IP, packet))
            return
        q = self._arp_pending.setdefault(dst, [])
        if len(q) >= self.ARP_QUEUE:
            self.stats.arp_queue_drops += 1
            return
        q.append((ether.ETHERTYPE_IP, packet))
        if dst not in self._arp_resolved:
            self._arp_resolved[dst] = Event(self.kernel, f"{self.name}.arp")
            self.kernel.spawn(self._arp_resolve(dst), name=f"{self.name}.arp", daemon=True)

    async def _ip_input(self, src_mac: bytes, data: bytes, *, frame: bytes | None = None,
                        frame_sum: int | None = None, link_len: int = ether.HEADER_LEN) -> None:
        """IP input of ``data`` (a datagram and any link padding). ``frame_sum``: the
        one's-complement sum of the whole Ethernet ``frame`` (``data`` from byte ``link_len``,
        14) that the receive copy's ILP pipes computed (:mod:`sw.libos.ilp.inloop`), or of
        the datagram itself (``frame`` is ``data``, ``link_len`` 0) that the card's pipes
        computed (Cheetah's ``hwilp`` over the AN2): the TCP segment's sum is then taken from
        it, not summed again (the verified IP header sums to 0; the bytes outside it
        (Ethernet header, any link padding) and the pseudo-header are summed in line,
        :func:`~sw.libos.ilp.inloop.adjust_cycles`)."""
        self.stats.ip_in += 1
        await self.charge_packet("ip", min(len(data), ipv4.HEADER_LEN))
        try:
            hdr, payload = ipv4.parse(data)
        except ipv4.IpError as e:
            d = self.stats.ip_dropped
            d[e.reason] = d.get(e.reason, 0) + 1
            return
        if hdr.dst != self.ip:
            self.stats.ip_not_for_us += 1
            return
        if hdr.proto == ipv4.PROTO_TCP and frame_sum is not None:
            start = link_len + hdr.header_length
            seg, outside = inloop.segment_sum(frame_sum, frame, start, start + len(payload),
                                              zero=(link_len, start))
            if self.cpu is not None:
                await self.cpu.charge(inloop.adjust_cycles(outside + 12, self.cpu.profile),
                                      CHECKSUM)
            await self.tcp.input(hdr.src, hdr.dst, payload, segment_sum=seg)
        elif hdr.proto == ipv4.PROTO_TCP:
            await self.tcp.input(hdr.src, hdr.dst, payload)
        elif hdr.proto == ipv4.PROTO_ICMP:
            await self._icmp_input(hdr.src, payload)
        else:
            self.stats.ip_unknown_protocol += 1

    # -- ICMP -----------------------------------------------------------------------------------
    async def _icmp_input(self, src: bytes, data: bytes) -> None:
        self.stats.icmp_in += 1
        await self.charge_checksum(len(data))
        try:
            m = icmp.parse(data)
        except ValueError:
            self.stats.icmp_bad += 1
            return
        if m.type == icmp.ECHO_REQUEST:
            reply = icmp.build_echo(icmp.ECHO_REPLY, m.ident, m.seq, m.data)
            self.stats.echo_replies_sent += 1
            await self.charge_checksum(len(reply))
            await self.ip_output(src, ipv4.PROTO_ICMP, reply)
        elif m.type == icmp.ECHO_REPLY:
            ev = self._pings.pop((m.ident, m.seq), None)
            if ev is not None:
                ev.set(m.data)

    async def ping(self, dst: str | bytes, data: bytes = b"serveros", *,
                   timeout_ps: int = 3 * S, ident: int = 0x5E05) -> int | None:
        """Send an ICMP echo request; return the round-trip time in ps, or None on timeout."""
        dst = ipv4.addr(dst)
        self._ping_seq = (self._ping_seq + 1) & 0xFFFF
        key = (ident, self._ping_seq)
        ev = Event(self.kernel, f"{self.name}.ping")
        self._pings[key] = ev
        t0 = self.kernel.now
        msg = icmp.build_echo(icmp.ECHO_REQUEST, ident, self._ping_seq, data)
        await self.charge_checksum(len(msg))
        await self.ip_output(dst, ipv4.PROTO_ICMP, msg)
        idx, got = await self.kernel.timeout(ev, timeout_ps)
        self._pings.pop(key, None)
        if idx != 0 or got != data:
            return None
        return self.kernel.now - t0

    # -- TCP, for applications -------------------------------------------------------------------
    def listen(self, port: int, factory: Callable[[], TcpPcb | None]) -> None:
        """Accept TCP connections to ``port``; ``factory()`` supplies each one's PCB (the
        application's object), or None to refuse with a reset."""
        self.tcp.listen(port, factory)

    def unlisten(self, port: int) -> None:
        """Stop accepting connections to ``port`` (established ones go on)."""
        self.tcp.unlisten(port)

    async def connect(self, pcb: TcpPcb, ip: str | bytes, port: int, *,
                      local_port: int | None = None) -> None:
        """Start opening a connection with the application's ``pcb`` (non-blocking:
        ``pcb.on_connected`` or ``pcb.on_closed("refused"/"timeout")`` tells the outcome)."""
        await self.tcp.connect(pcb, ipv4.addr(ip), port, local_port)

    async def send(self, pcb: TcpPcb, data: bytes | Sequence[bytes], *, last: bool = False,
                   csum: int | Sequence[int | None] | None = None) -> int:
        """Queue ``data`` (bytes or a list of buffers) and transmit what the window allows.

        Parameters
        ----------
        last : bool
            This is the connection's last data: the FIN rides on its last segment.
        csum : int or list, optional
            The one's-complement sum of the data (:func:`~.checksum.ones_sum`), or one per
            buffer (None for buffers without one).

        Returns
        -------
        int
            Bytes of ``data`` transmitted now; the rest is asked of ``pcb.resupply`` when the
            window opens (the stack keeps no copy).

        Raises
        ------
        ValueError, TypeError
            For a connection that cannot send or bad arguments.
        """
        return await self.tcp.send(pcb, data, last=last, csum=csum)

    async def close(self, pcb: TcpPcb) -> None:
        """Send FIN after the queued data (a no-op if already closing)."""
        await self.tcp.close(pcb)

    async def abort(self, pcb: TcpPcb) -> None:
        """Reset the connection at once."""
        await self.tcp.abort(pcb)

    def __repr__(self) -> str:
        return f"<NetStack {self.name} {ipv4.format_addr(self.ip)}>"
