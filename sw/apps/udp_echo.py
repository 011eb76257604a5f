"""The UDP echo service (RFC 862) as an application of its own on an Aegis machine.

:class:`UdpEcho` creates an environment, installs one packet filter (IPv4/UDP to port 7 at the
host's address) and answers each datagram the kernel upcalls with the same data, from port 7
to the sender's port, through the kernel's transmit call
(:meth:`sw.exokernel.aegis.Aegis.transmit`). It needs no TCP/IP stack: its own small library is
:mod:`sw.libos.net.udp` (with :mod:`~sw.libos.net.ipv4` and :mod:`~sw.libos.net.ether`). It
runs beside Cheetah: the kernel demultiplexes, so each environment sees only its own frames.

Addressing: the reply goes to the Ethernet source of the request (the sender is on the link,
or the request came through the router that must carry the reply back), so the service needs
no ARP and owns no ARP filter (the web server's library OS answers ARP for the host).

Refused (counted in ``stats()["dropped"]`` by reason, logged, never raised): a frame that is
not a whole IPv4 datagram to the host (``ipv4.parse``'s reasons), a UDP datagram that is short,
has a bad length or a wrong checksum (:mod:`sw.libos.net.udp`'s reasons), one from source
port 0 (RFC 768: no port to answer, ``"no_source_port"``) and one from the echo port itself,
which an echo service answering another would bounce forever (``"loop"``, as BSD inetd refuses
datagrams from its internal services' ports).

Costs (the machine's profile, on its CPU): for the datagram received and again for the reply,
the IP layer's ``ip_per_packet_cycles`` (:data:`~sim.cpu.PROTOCOL`) and the checksums of the IP
header and of the UDP datagram (:data:`~sim.cpu.CHECKSUM`, one checksum call each). Not
charged apart: UDP's own header work (two ports and a length, folded into the IP layer's cost,
an estimate) and the copy of the data into the reply (the reply is built in the received
buffer, swapping addresses and ports).
"""
from __future__ import annotations

import logging

from sim.cpu import CHECKSUM, PROTOCOL
from sw.exokernel import udp_filter
from sw.host import Host
from sw.libos.net import ether, ipv4, udp

log = logging.getLogger(__name__)

__all__ = ["ECHO_PORT", "UdpEcho"]

#: RFC 862's port.
ECHO_PORT = 7


class UdpEcho:
    """RFC 862 echo over UDP, in an environment of its own on ``host``'s Aegis.

    Parameters
    ----------
    host : Host
        An Aegis machine (``host.extra["aegis"]``) whose kernel owns the card's receive path.
    port : int
        The port served (7).

    Raises
    ------
    TypeError
        If ``host`` is not a Host.
    ValueError
        If the host has no Aegis or ``port`` is not 1..65535.
    """

    name = "udp-echo"

    def __init__(self, host: Host, *, port: int = ECHO_PORT):
        if not isinstance(host, Host):
            raise TypeError(f"UdpEcho needs a sw.host.Host, not {host!r}")
        if host.extra.get("aegis") is None:
            raise ValueError(f"host {host.name!r} has no Aegis (host.extra['aegis']): the "
                             f"echo service is an environment of the exokernel")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF:
            raise ValueError(f"port must be 1..65535, not {port!r}")
        self.host = host
        self.aegis = host.extra["aegis"]
        self.port = port
        self.env = None
        self.filter_id: int | None = None
        self._ident = 0
        self.counters = {"frames_in": 0, "echoed": 0, "bytes_echoed": 0, "dropped": {}}

    def start(self) -> None:
        """Create the environment and install its filter (nothing to wait for: the kernel
        upcalls the service from now on).

        Raises
        ------
        RuntimeError
            If called twice.
        FilterConflict
            If another environment owns UDP to the port at the host's address (the message
            names it); nothing was installed.
        """
        if self.env is not None:
            raise RuntimeError(f"{self.name} on {self.host.name} is already started")
        flt = udp_filter(self.port, local_ip=self.host.ip)
        env_name = f"{self.host.name}.{self.name}"
        # Check before creating the environment, so that a refusal leaves nothing behind.
        self.aegis.filters.check(flt, env_name)
        self.env = self.aegis.create_env(env_name, on_frame=self._frame)
        self.filter_id = self.aegis.install_filter(self.env, flt)

    @property
    def started(self) -> bool:
        return self.env is not None

    # -- receive and answer ----------------------------------------------------------------
    def _drop(self, reason: str, message: str) -> None:
        d = self.counters["dropped"]
        d[reason] = d.get(reason, 0) + 1
        log.info("%s: datagram dropped: %s", self.env.id, message)

    async def _charge(self, ip_bytes: int, udp_bytes: int) -> None:
        """One IP packet's processing and the checksums of its header and its datagram."""
        cpu = self.host.cpu
        if cpu is None:
            return
        p = cpu.profile
        pieces = [(p.ip_per_packet_cycles, PROTOCOL)]
        pieces += [(p.checksum_cycles(n), CHECKSUM) for n in (ip_bytes, udp_bytes) if n]
        await cpu.charges(pieces)

    async def _frame(self, frame: bytes) -> None:
        """The kernel's upcall with one frame its filter accepted."""
        self.counters["frames_in"] += 1
        if len(frame) < ether.HEADER_LEN:
            self._drop("runt", f"frame of {len(frame)} bytes")
            return
        _, src_mac, _, data = ether.parse(frame)
        try:
            hdr, payload = ipv4.parse(data)
        except ipv4.IpError as e:
            await self._charge(min(len(data), ipv4.HEADER_LEN), 0)
            self._drop(e.reason, str(e))
            return
        await self._charge(hdr.header_length, len(payload))
        if hdr.dst != self.host.ip or hdr.proto != ipv4.PROTO_UDP:
            self._drop("not_for_us", f"{ipv4.format_addr(hdr.dst)} protocol {hdr.proto}")
            return
        try:
            d = udp.parse(hdr.src, hdr.dst, payload)
        except udp.UdpError as e:
            self._drop(e.reason, str(e))
            return
        if d.src_port == 0:
            self._drop("no_source_port", f"from {ipv4.format_addr(hdr.src)} port 0")
            return
        if d.src_port == self.port:
            self._drop("loop", f"from {ipv4.format_addr(hdr.src)}'s echo port {self.port}")
            return
        reply = udp.build(self.host.ip, hdr.src, self.port, d.src_port, d.payload)
        self._ident = (self._ident + 1) & 0xFFFF
        ip = ipv4.build_header(self.host.ip, hdr.src, ipv4.PROTO_UDP, len(reply),
                               ident=self._ident)
        await self._charge(len(ip), len(reply))
        out = ether.build(src_mac, self.host.netdev.mac, ether.ETHERTYPE_IP, ip + reply)
        self.counters["echoed"] += 1
        self.counters["bytes_echoed"] += len(d.payload)
        await self.aegis.transmit(self.env, out)

    def stats(self) -> dict:
        """Frames upcalled, datagrams echoed and their data bytes, drops by reason."""
        c = dict(self.counters)
        c["dropped"] = dict(sorted(c["dropped"].items()))
        return c

    def __repr__(self) -> str:
        return f"<UdpEcho {self.host.name}:{self.port} {'started' if self.started else 'stopped'}>"
