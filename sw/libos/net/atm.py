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

The card's pipes (Cheetah's ``hwilp``)
--------------------------------------
The AN2 card computes Internet checksums in its DMA path (docs/an2_card.md "Hardware pipes");
the interface offers them (:data:`CARD_PIPES`) and the kernel binds them for the library that
asks (:meth:`sw.exokernel.aegis.Aegis.install_card_rx_pipes`, ``install_card_tx_pipes``):

* transmit (:meth:`An2Interface.install_card_tx_pipes`): a frame whose checksum is left to
  the interface (:func:`sw.libos.ilp.inloop.mark_sum_at`: a TCP segment with the pseudo-header's
  sum in its field, as Linux's ``CHECKSUM_PARTIAL``) goes with Csum on its First descriptor,
  ``csum_start`` at the summed bytes' start and ``csum_field`` at the field, in 16-bit units of
  the CPCS-SDU (the IP header of 20 bytes puts the TCP header at byte 28 = unit 14 and its
  checksum field 8 units further); the card sums and fills it in. The link layer then lets
  such frames through (:attr:`AtmLinkLayer.card_completes_sums`);
* receive (:meth:`An2Interface.rx_pipe_fields`): the VC entries the kernel writes get
  ``rx_csum`` with ``pipe_start`` at the IP header (:data:`IP_PIPE_START`, after LLC/SNAP);
  each good PDU then comes with the card's sum of its IP datagram (the driver's
  :class:`~sw.drivers.an2.SummedPdu`), handed up as a :class:`CardSumFrame`; the stack checks
  the TCP checksum with it (the verified IP header sums to 0 and needs nothing taken out).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..ilp import inloop   # attributes used at run time (inloop imports this package)
from ..ilp.pipes import CKSUM
from .ether import ReceiverSlot
from .gather import Gather, PhysRef

__all__ = ["LLC_SNAP_IP", "MTU", "FRAME_HEADER_LEN", "HEADER_LEN", "SUNATM_LLC", "NoPvc",
           "build_frame", "frame_vci", "AtmLinkLayer", "AtmLinkStats", "An2Interface",
           "CARD_PIPES", "CARD_TX_REREADS", "IP_PIPE_START", "CardSumFrame", "card_sum"]

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
#: The pipes the AN2 card has in its DMA path, by direction (docs/an2_card.md "Hardware
#: pipes"): the Internet checksum both ways (its receive byte swaps are not offered: no
#: protocol here needs them).
CARD_PIPES = {"rx": (CKSUM,), "tx": (CKSUM,)}
#: Where the card's receive pipes start, in 16-bit units of the CPCS-SDU: the IP header, after
#: the 8 bytes of LLC/SNAP (so the sum covers the whole datagram; a verified IP header sums to
#: 0 mod 0xffff, so the sum is the TCP segment's whatever the header's length).
IP_PIPE_START = len(LLC_SNAP_IP) // 2
#: The card's transmit pipe reads a Csum PDU twice over the TURBOchannel: its checksum field
#: leaves in the first cell and the card has no PDU memory, so a first pass sums the PDU and
#: sends nothing while the link idles (docs/an2_card.md "Hardware pipes"). A library weighs
#: that against the CPU's sum (:attr:`An2Interface.card_tx_rereads`).
CARD_TX_REREADS = True


class CardSumFrame(bytes):
    """A received frame (a ``bytes``) with the card's receive checksum: ``card_sum``, the
    folded, uncomplemented RFC 1071 sum of bytes ``[sum_from, len)``."""

    card_sum: int
    sum_from: int

    def __new__(cls, data: bytes, card_sum: int, sum_from: int) -> "CardSumFrame":
        obj = super().__new__(cls, data)
        obj.card_sum, obj.sum_from = card_sum, sum_from
        return obj


def card_sum(frame) -> tuple[int, int] | None:
    """``(sum, from)`` of a frame the card summed (:class:`CardSumFrame`), else None."""
    s = getattr(frame, "card_sum", None)
    return None if s is None else (s, frame.sum_from)


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
        #: Set when the interface's card completes the checksums of the frames that ask
        #: (:meth:`An2Interface.install_card_tx_pipes`): the stack may then leave a segment's
        #: checksum to it.
        self.card_completes_sums = False

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
            framed = build_frame(vci, packet.prepend(LLC_SNAP_IP))
        else:
            framed = build_frame(vci, LLC_SNAP_IP + bytes(packet))
        # A checksum left to the card is still asked for, past the headers put in front.
        return inloop.prepend_request(packet, framed, HEADER_LEN)

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
        #: The card's pipes this interface offers (:data:`CARD_PIPES`).
        self.card_pipes = CARD_PIPES
        #: Whether the card's transmit pipe costs a second read of each PDU
        #: (:data:`CARD_TX_REREADS`).
        self.card_tx_rereads = CARD_TX_REREADS
        #: Frames sent with the card completing their checksum.
        self.tx_card_sums = 0

    async def start(self, *, owner: int = 0) -> None:
        """Start the driver and open every PVC's VC (DMA owner tag ``owner``: 0, the kernel)."""
        self.driver.on_pdu = self._on_pdu
        await self.driver.start()
        for vci in sorted(self.link_layer.peers):
            await self.driver.open_vc(vci, owner=owner)

    async def send(self, frame: "bytes | Gather") -> None:
        """Send ``frame`` as one AAL5 PDU on the VC it names (see the module docstring); a
        frame whose checksum is left to the interface goes with Csum (the card completes it).

        Raises
        ------
        ValueError
            For a frame asking for its checksum when the card's transmit pipes are not bound
            (:meth:`install_card_tx_pipes`), or asking for it inside the pseudo-header.
        """
        vci = frame_vci(frame)
        at = inloop.sum_request(frame)
        csum = None
        if at is not None:
            start, fld, _zero = at
            if not self.link_layer.card_completes_sums:
                raise ValueError(f"{self!r}: a frame asks for its checksum to be completed and "
                                 f"the card's transmit pipes are not bound")
            if start < FRAME_HEADER_LEN:
                raise ValueError(f"{self!r}: the summed bytes start at {start}, inside the "
                                 f"{FRAME_HEADER_LEN}-byte pseudo-header")
            # mark_sum_at keeps every offset even: whole 16-bit units of the SDU.
            csum = ((start - FRAME_HEADER_LEN) // 2, (fld - start) // 2)
            self.tx_card_sums += 1
        sdu = frame.slice(FRAME_HEADER_LEN, len(frame)) if isinstance(frame, Gather) \
            else bytes(frame[FRAME_HEADER_LEN:])
        self.tx_frames += 1
        if csum is None:
            await self.driver.send(vci, _pieces(sdu), in_place=not self.driver_copies)
        else:
            await self.driver.send(vci, _pieces(sdu), in_place=not self.driver_copies,
                                   csum=csum)

    # -- the card's pipes (Cheetah's hwilp) ---------------------------------------------------
    def install_card_tx_pipes(self, pipes) -> None:
        """Let frames ask the card to complete their checksum (the kernel calls this when it
        binds the card's transmit pipes; the pipes must be the card's, :data:`CARD_PIPES`).

        Raises
        ------
        ValueError
            For a pipe the card does not have.
        """
        self._check_card_pipes(pipes, "tx")
        self.link_layer.card_completes_sums = True

    def rx_pipe_fields(self, pipes) -> dict:
        """The VC-entry fields that run the card's receive ``pipes`` on a VC (for
        :meth:`sw.drivers.an2.An2Driver.open_vc`): its checksum from the IP header on.

        Raises
        ------
        ValueError
            For a pipe the card does not have.
        """
        self._check_card_pipes(pipes, "rx")
        return {"rx_csum": True, "pipe_start": IP_PIPE_START}

    def _check_card_pipes(self, pipes, way: str) -> None:
        have = self.card_pipes[way]
        for p in pipes:
            if p not in have:
                raise ValueError(f"{self!r}: the card has no {way} pipe "
                                 f"{getattr(p, 'name', p)!r} (it has "
                                 f"{[q.name for q in have]})")

    def _on_pdu(self, vci: int, data: bytes) -> None:
        self.rx_frames += 1
        if self._receiver is not None:
            frame = build_frame(vci, data)
            summed = getattr(data, "csum", None)
            if summed is not None:           # the card summed it (its VC has rx_csum)
                frame = CardSumFrame(frame, summed, FRAME_HEADER_LEN + data.csum_from)
            self._receiver(frame)

    def __repr__(self) -> str:
        return f"<An2Interface {self.driver.name} {len(self.link_layer.pvcs)} PVCs>"
