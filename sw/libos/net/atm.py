"""Classical IP over ATM with PVCs (RFC 2225 / RFC 1577), LLC/SNAP encapsulated (RFC 2684 /
RFC 1483): the link layer, and the network interface over the AN2 card's driver.

Link layer (:class:`AtmLinkLayer`)
----------------------------------
Every IP datagram travels as one AAL5 CPCS-PDU whose first 8 bytes are the LLC/SNAP header
``AA-AA-03 00-00-00 08-00`` (:data:`LLC_SNAP_IP`: LLC SAPs AA/AA, UI frame; SNAP OUI 0, the
EtherType of IPv4). There is no ARP: with PVCs (RFC 2225 section 7: an ATMARP-less host uses
its configured PVCs) a table maps each peer's IP address to the VCI that reaches it, and a
datagram to an address with no PVC is dropped and counted. The IP MTU is 9180 bytes (RFC 2225
section 5), so TCP's MSS is 9140. A received PDU whose LLC/SNAP header is not IPv4's is
counted and dropped with its reason (``short``: fewer than 8 bytes; ``llc``: not AA-AA-03;
``snap``: another OUI or protocol).

Frames
------
The stack and the operating system pass ATM traffic around as *frames*, as they pass Ethernet
frames: a frame is the 4-byte SunATM pseudo-header (libpcap's DLT_SUNATM: flags, VPI, VCI; the
flags say "LLC-multiplexed", as the captures of :mod:`sim.media.atm` write them) followed by
the CPCS-SDU. So a received PDU carries its VCI to whoever demultiplexes it (Aegis binds VCs to
environments), and a frame to send names its VC. A frame to send may be a
:class:`~sw.libos.net.gather.Gather`.

Interface (:class:`An2Interface`)
---------------------------------
The :class:`~sw.libos.net.ether.NetDevice` of an AN2 card: its driver
(:class:`sw.drivers.an2.An2Driver`) started with every PVC's VC open, received good PDUs
handed up as frames, frames sent as scatter/gather descriptors: each
:class:`~sw.libos.net.gather.PhysRef` piece by its address (the card reads it by DMA; the CPU
touches none of it) and each ``bytes`` piece (a header the CPU built, or a whole packet of a
sender that has no gather list) copied by the CPU into the driver's transmit buffer in kernel
memory, charged as a copy (:meth:`sim.cpu.CPU.copy`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .ether import ReceiverSlot
from .gather import Gather, PhysRef

__all__ = ["LLC_SNAP_IP", "MTU", "FRAME_HEADER_LEN", "HEADER_LEN", "SUNATM_LLC", "NoPvc",
           "build_frame", "frame_vci", "AtmLinkLayer", "AtmLinkStats", "An2Interface"]

#: RFC 2684 / RFC 1483 section 5.1: LLC AA-AA-03, SNAP OUI 00-00-00, EtherType 0x0800 (IPv4).
LLC_SNAP_IP = bytes.fromhex("aaaa030000000800")
#: RFC 2225 section 5: the default IP MTU of classical IP over ATM.
MTU = 9180
#: Bytes of the SunATM pseudo-header in front of every frame.
FRAME_HEADER_LEN = 4
#: Bytes in front of the IP datagram in a frame (pseudo-header and LLC/SNAP).
HEADER_LEN = FRAME_HEADER_LEN + len(LLC_SNAP_IP)
#: SunATM flags byte: traffic type 2, "RFC 1483 LLC-multiplexed" (direction bit 0).
SUNATM_LLC = 0x02


class NoPvc(LookupError):
    """No PVC reaches this IP address."""


def build_frame(vci: int, sdu: "bytes | Gather") -> "bytes | Gather":
    """A frame carrying ``sdu`` (a CPCS-SDU) on VCI ``vci`` of VPI 0."""
    if isinstance(vci, bool) or not isinstance(vci, int) or not 0 <= vci <= 0xFFFF:
        raise ValueError(f"a VCI is a 16-bit integer, not {vci!r}")
    head = bytes([SUNATM_LLC, 0]) + vci.to_bytes(2, "big")
    if isinstance(sdu, Gather):
        return sdu.prepend(head)
    return head + bytes(sdu)


def frame_vci(frame: "bytes | Gather") -> int:
    """The VCI a frame names.

    Raises
    ------
    ValueError
        For a frame shorter than its pseudo-header.
    """
    head = frame.slice(0, min(FRAME_HEADER_LEN, len(frame))).flatten(_no_refs) \
        if isinstance(frame, Gather) else bytes(frame[:FRAME_HEADER_LEN])
    if len(head) < FRAME_HEADER_LEN:
        raise ValueError(f"an ATM frame of {len(frame)} bytes is shorter than its "
                         f"{FRAME_HEADER_LEN}-byte pseudo-header")
    return int.from_bytes(head[2:4], "big")


def _no_refs(addr: int, n: int) -> bytes:
    raise ValueError("an ATM frame's pseudo-header must be bytes the CPU built, not memory")


@dataclass
class AtmLinkStats:
    """Counters of a link layer."""

    tx_pdus: int = 0
    rx_pdus: int = 0
    #: Datagrams to an IP address no PVC reaches, dropped.
    no_pvc: int = 0
    #: Received PDUs dropped, by reason (``short``, ``llc``, ``snap``).
    rx_dropped: dict = field(default_factory=dict)


class AtmLinkLayer:
    """Classical IP over ATM PVCs: LLC/SNAP in, LLC/SNAP out, a PVC table instead of ARP.

    Parameters
    ----------
    pvcs : mapping
        Peer IPv4 address (4 bytes) -> the VCI that reaches it.
    mtu : int
        The interface's IP MTU (68 .. 9180).

    Raises
    ------
    ValueError
        For a bad table entry or MTU.
    """

    #: Bytes a received frame carries in front of its IP datagram.
    header_len = HEADER_LEN

    def __init__(self, pvcs: Mapping[bytes, int], *, mtu: int = MTU):
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= MTU:
            raise ValueError(f"mtu must be an integer 68 .. {MTU}, not {mtu!r}")
        table: dict[bytes, int] = {}
        for ip, vci in dict(pvcs).items():
            if not isinstance(ip, bytes) or len(ip) != 4:
                raise ValueError(f"a PVC table key is a 4-byte IPv4 address, not {ip!r}")
            if isinstance(vci, bool) or not isinstance(vci, int) or not 0 <= vci <= 0xFFFF:
                raise ValueError(f"the VCI of {ip.hex()} must be a 16-bit integer, not {vci!r}")
            table[ip] = vci
        self.pvcs = table
        self.peers = {vci: ip for ip, vci in table.items()}
        self.mtu = mtu
        self.stats = AtmLinkStats()

    def vci_of(self, ip: bytes) -> int:
        """The VCI that reaches ``ip`` (:class:`NoPvc` if none does)."""
        vci = self.pvcs.get(bytes(ip))
        if vci is None:
            raise NoPvc(f"no PVC reaches {'.'.join(map(str, ip))}")
        return vci

    def frame(self, dst: bytes, packet: "bytes | Gather") -> "bytes | Gather":
        """The frame carrying IP datagram ``packet`` to ``dst`` (:class:`NoPvc`, counted in
        ``no_pvc``, if no PVC reaches it)."""
        try:
            vci = self.vci_of(dst)
        except NoPvc:
            self.stats.no_pvc += 1
            raise
        self.stats.tx_pdus += 1
        if isinstance(packet, Gather):
            return build_frame(vci, packet.prepend(LLC_SNAP_IP))
        return build_frame(vci, LLC_SNAP_IP + bytes(packet))

    def parse(self, frame: bytes) -> tuple[int, bytes] | None:
        """``(vci, IP datagram)`` of a received frame, or None for a PDU that is not LLC/SNAP
        IPv4 (counted in ``rx_dropped`` by reason)."""
        reason = None
        if len(frame) < HEADER_LEN:
            reason = "short"
        elif frame[4:7] != LLC_SNAP_IP[:3]:
            reason = "llc"
        elif frame[7:12] != LLC_SNAP_IP[3:]:
            reason = "snap"
        if reason is not None:
            d = self.stats.rx_dropped
            d[reason] = d.get(reason, 0) + 1
            return None
        self.stats.rx_pdus += 1
        return int.from_bytes(frame[2:4], "big"), bytes(frame[HEADER_LEN:])

    def __repr__(self) -> str:
        return f"<AtmLinkLayer {len(self.pvcs)} PVCs, MTU {self.mtu}>"


def _pieces(sdu: "bytes | Gather") -> list:
    """The driver's scatter/gather list of a CPCS-SDU: (addr, length) for each reference, and
    the bytes between references joined into one piece (the headers each layer prepended are
    copied into one transmit buffer: one copy, one descriptor)."""
    if not isinstance(sdu, Gather):
        return [bytes(sdu)]
    out: list = []
    for p in sdu.pieces:
        if isinstance(p, PhysRef):
            out.append((p.addr, p.length))
        elif out and isinstance(out[-1], bytes):
            out[-1] += p
        else:
            out.append(p)
    return out or [b""]


class An2Interface(ReceiverSlot):
    """The IP-over-ATM network interface of one AN2 card (see the module docstring).

    Parameters
    ----------
    driver : sw.drivers.an2.An2Driver
        The card's driver, built with ``on_pdu`` left to this interface (:meth:`start` sets it).
    esi : bytes
        The card's 6-byte IEEE address (the interface's ``mac``; no frame carries it).
    pvcs : mapping
        Peer IPv4 address -> VCI (:class:`AtmLinkLayer`).
    mtu : int
        The IP MTU.
    mbufs : bool
        The operating system hands the interface packets already in kernel buffers the card
        can reach (a BSD kernel's mbuf chains: Ultrix, the BSD clients), so bytes packets are
        given to the card where they lie (``An2Driver.send(in_place=True)``) and nothing is
        copied; the socket layer charged its copy into them. False (the exokernel's library
        OS): bytes are the application's, copied once into the driver's transmit buffers.
        :attr:`driver_copies` says which.

    Raises
    ------
    ValueError
        For a bad address, table or MTU.
    """

    def __init__(self, driver, *, esi: bytes, pvcs: Mapping[bytes, int], mtu: int = MTU,
                 mbufs: bool = False):
        if not isinstance(esi, bytes) or len(esi) != 6:
            raise ValueError(f"esi must be 6 bytes, not {esi!r}")
        if not isinstance(mbufs, bool):
            raise ValueError(f"mbufs must be a bool, not {mbufs!r}")
        #: Whether sending bytes costs the CPU a copy into the driver's buffers.
        self.driver_copies = not mbufs
        self.driver = driver
        self.mac = esi
        self.link_layer = AtmLinkLayer(pvcs, mtu=mtu)
        self.mtu = mtu
        self.tx_frames = 0
        self.rx_frames = 0

    async def start(self, *, owner: int = 0) -> None:
        """Start the driver and open every PVC's VC (DMA owner tag ``owner``: 0, the kernel)."""
        self.driver.on_pdu = self._on_pdu
        await self.driver.start()
        for vci in sorted(self.link_layer.peers):
            await self.driver.open_vc(vci, owner=owner)

    async def send(self, frame: "bytes | Gather") -> None:
        """Send ``frame`` as one AAL5 PDU on the VC it names (see the module docstring)."""
        vci = frame_vci(frame)
        sdu = frame.slice(FRAME_HEADER_LEN, len(frame)) if isinstance(frame, Gather) \
            else bytes(frame[FRAME_HEADER_LEN:])
        self.tx_frames += 1
        await self.driver.send(vci, _pieces(sdu), in_place=not self.driver_copies)

    def _on_pdu(self, vci: int, data: bytes) -> None:
        self.rx_frames += 1
        if self._receiver is not None:
            self._receiver(build_frame(vci, data))

    def __repr__(self) -> str:
        return f"<An2Interface {self.driver.name} {len(self.link_layer.pvcs)} PVCs>"
