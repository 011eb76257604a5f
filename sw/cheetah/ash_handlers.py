"""Cheetah's ASH: the end of a connection handled in the kernel, at frame arrival.

With the ``ash`` switch on (a stage beyond the paper, :mod:`sw.cheetah.config`), Cheetah
installs, with its TCP filter, an application-specific safe handler (:mod:`sw.exokernel.ash`,
verified by Aegis) that takes the last two segments of a connection Cheetah closed, the issue's
first example: once the reply and its FIN are sent, the client's ACK of everything (our FIN
included) and the client's FIN need no decision by the server. The handler

* absorbs the pure ACK that acknowledges our FIN (FIN-WAIT-1 to FIN-WAIT-2; LAST-ACK to
  CLOSED when the client had closed first);
* answers the client's FIN, when it is in sequence and acknowledges our FIN, with the ACK
  Cheetah prebuilt when it armed the connection (on Ethernet its destination MAC patched from
  the frame; over ATM it goes on the peer's PVC), FIN-WAIT-2 to TIME-WAIT, as 4.3BSD does;
* consumes both frames in the kernel: Cheetah is not scheduled for them.

It runs on the frames of Cheetah's TCP filter on Ethernet, and on every PDU of Cheetah's VCs
over the AN2 (Aegis demultiplexes those by VC, :meth:`sw.exokernel.aegis.Aegis.install_vc_ash`),
so it checks the link header (EtherType, or LLC/SNAP of IPv4) and the IP protocol itself.

Everything else is ``accept``\\ ed and goes the ordinary way (an upcall to the library OS):
a segment with data, options, a fragment, an IP header with options, other flags, a sequence
or acknowledgement number other than the armed ones, a bad IP or TCP checksum (the handler
checks both as the library's input would), a connection not armed.

Owner memory (one page of Cheetah's environment, :class:`ClosingTable`)::

    +0    u32 events     the handler adds 1 each time it changes a slot
    +64   SLOTS = 2 BUCKETS slots of SLOT_BYTES, slot i at +64 + 96 i:
          +0  u32 remote IP        +4  u16 remote port, u16 local port (as on the wire)
          +8  u32 the client's next sequence number (wire)
          +12 u32 the acknowledgement number that covers our FIN (wire)
          +16 u32 state: ARMED, PEER_FIN (the client's FIN came before we armed: LAST-ACK),
              ACKED (the handler took the ACK of our FIN), ANSWERED (it answered the FIN)
          +20 u32 local IP (over ATM no filter checked the destination)
          +32 the prebuilt ACK frame (link header, IP, TCP: 54 bytes on Ethernet, 52 over ATM)

A connection's bucket is ``(remote port ^ low 16 bits of the remote IP) & (BUCKETS - 1)``,
two slots (2 b and 2 b + 1, tried in that order: sequential ports of clients on one subnet
collide in a one-way table); a connection whose two slots are taken is not armed (counted).
A free slot's key is zero, which no client's address is. The library learns what the
handler did when it next runs (:attr:`sw.libos.net.tcp.Tcp.pull`: a segment upcalled, a TCP
timer): it reads the events word, and if it moved, the state of each armed slot, and applies
the new bits (:meth:`sw.libos.net.tcp.Tcp.handled_in_kernel`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sw.libos.net import atm, ipv4
from sw.libos.net import checksum as ck
from sw.libos.net.ether import ETHERTYPE_IP
from sw.libos.net.tcp import ACK, TcpState, build_segment

__all__ = ["closing_program", "ClosingTable", "reply_bytes", "reply_checksums_ok", "LINK_HEADER",
           "BUCKETS", "SLOTS", "SLOT_BYTES", "TABLE_BYTES", "ARMED", "PEER_FIN", "ACKED",
           "ANSWERED"]

#: Buckets of the table (a power of two: the bucket is a masked hash), two slots each.
BUCKETS = 16
SLOTS = 2 * BUCKETS
#: Bytes per slot: 32 of fields, the reply (54 bytes on Ethernet, 52 over ATM), padding.
SLOT_BYTES = 96
_HEAD = 64
#: The table's size in owner memory.
TABLE_BYTES = _HEAD + SLOTS * SLOT_BYTES
_REPLY_OFF = 32
ARMED, PEER_FIN, ACKED, ANSWERED = 1, 2, 4, 8

#: The links the handler knows: bytes in front of the IP datagram in a frame (an Ethernet II
#: header; the SunATM pseudo-header and LLC/SNAP of classical IP over ATM, sw/libos/net/atm.py).
LINK_HEADER = {"ethernet": 14, "atm": atm.HEADER_LEN}
_ETYPE, _SMAC = 12, 6                   # Ethernet: the EtherType and the source MAC


def _program(table: int, link: str) -> list:
    """The handler, with branch targets as label names (resolved by :func:`closing_program`)."""
    p: list = []
    ip = LINK_HEADER[link]                              # offsets in the frame: IP header,
    ip_src, tcp = ip + 12, ip + 20                      # its source address, TCP header

    def need(off: int, size: int, value: int, rd: int = 1) -> None:
        p.extend([("ld", rd, size, 0, off), ("li", 2, value), ("bne", rd, 2, "accept")])

    def fold_and_check() -> None:
        # r7 holds a sum of at most 14 halfwords (< 2^20): fold the carries twice and accept
        # the frame unless the one's-complement sum is 0xFFFF (RFC 1071).
        for _ in range(2):
            p.extend([("li", 2, 16), ("shr", 1, 7, 2), ("li", 2, 0xFFFF), ("and", 7, 7, 2),
                      ("add", 7, 7, 1)])
        p.extend([("li", 2, 0xFFFF), ("bne", 7, 2, "accept")])

    if link == "ethernet":
        need(_ETYPE, 2, ETHERTYPE_IP)
    else:                                               # LLC/SNAP of IPv4 after the VC header
        llc = atm.LLC_SNAP_IP
        need(atm.FRAME_HEADER_LEN, 4, int.from_bytes(llc[:4], "big"))
        need(atm.FRAME_HEADER_LEN + 4, 4, int.from_bytes(llc[4:], "big"))
    need(ip, 1, 0x45)                                  # IPv4, no options
    need(ip + 2, 2, ipv4.HEADER_LEN + 20)              # total length: a bare TCP header
    p.extend([("ld", 1, 2, 0, ip + 6), ("li", 2, 0x3FFF), ("and", 1, 1, 2),
              ("bne", 1, 0, "accept")])                 # MF or a fragment offset
    need(ip + 9, 1, ipv4.PROTO_TCP)
    need(tcp + 12, 1, 0x50)                            # data offset 5: no options
    # Flags, PSH ignored: ACK alone or FIN|ACK.
    p.extend([("ld", 3, 1, 0, tcp + 13), ("li", 2, 0xF7), ("and", 3, 3, 2),
              ("li", 2, ACK), ("beq", 3, 2, "flags_ok"), ("li", 2, ACK | 1),
              ("bne", 3, 2, "accept")])
    p.append("flags_ok")
    # The bucket: (remote port ^ low half of the remote IP) & (BUCKETS - 1), times two slots
    # (192 = 128 + 64: two shifts and an add).
    p.extend([("ld", 4, 2, 0, tcp), ("ld", 5, 2, 0, ip_src + 2), ("xor", 4, 4, 5),
              ("li", 2, BUCKETS - 1), ("and", 4, 4, 2),
              ("li", 2, 7), ("shl", 5, 4, 2), ("li", 2, 6), ("shl", 4, 4, 2), ("add", 4, 4, 5),
              ("addi", 4, 4, table + _HEAD)])
    # The slot whose key is the frame's, the first or the second (register-computed
    # addresses: checked by the sandbox).
    p.extend([("ld", 5, 4, 0, ip_src), ("ld", 3, 4, 0, tcp),
              ("ldm", 1, 4, 4, 0), ("bne", 1, 5, "second"),
              ("ldm", 1, 4, 4, 4), ("beq", 1, 3, "found")])
    p.append("second")
    p.extend([("addi", 4, 4, SLOT_BYTES),
              ("ldm", 1, 4, 4, 0), ("bne", 1, 5, "accept"),
              ("ldm", 1, 4, 4, 4), ("bne", 1, 3, "accept")])
    p.append("found")
    p.extend([("ld", 3, 1, 0, tcp + 13), ("li", 2, 0xF7), ("and", 3, 3, 2)])   # flags again
    # Its destination (no filter checked it over ATM) and state.
    p.extend([("ldm", 1, 4, 4, 20), ("ld", 2, 4, 0, ip + 16), ("bne", 1, 2, "accept"),
              ("ldm", 6, 4, 4, 16), ("li", 2, ARMED), ("and", 1, 6, 2), ("beq", 1, 0, "accept"),
              ("ldm", 1, 4, 4, 8), ("ld", 2, 4, 0, tcp + 4), ("bne", 1, 2, "accept"),
              ("ldm", 1, 4, 4, 12), ("ld", 2, 4, 0, tcp + 8), ("bne", 1, 2, "accept")])
    # The IP header's checksum, then TCP's over the pseudo-header and the 20-byte header.
    p.append(("li", 7, 0))
    for off in range(ip, ip + ipv4.HEADER_LEN, 2):
        p.extend([("ld", 1, 2, 0, off), ("add", 7, 7, 1)])
    fold_and_check()
    p.append(("li", 7, ipv4.PROTO_TCP + 20))
    for off in [*range(ip_src, tcp, 2), *range(tcp, tcp + 20, 2)]:
        p.extend([("ld", 1, 2, 0, off), ("add", 7, 7, 1)])
    fold_and_check()
    p.extend([("li", 2, 1), ("and", 1, 3, 2), ("bne", 1, 0, "fin")])
    # The ACK of our FIN: record it, consume the frame.
    p.extend([("li", 2, ACKED), ("or", 6, 6, 2), ("stm", 6, 4, 4, 16), ("beq", 0, 0, "count")])
    p.append("fin")
    # The client's FIN (only after ours was sent and before the client had closed): on
    # Ethernet patch the reply's destination MAC with the frame's source (over ATM the reply
    # goes on the peer's PVC, prebuilt); record; send it.
    p.extend([("li", 2, PEER_FIN), ("and", 1, 6, 2), ("bne", 1, 0, "accept")])
    if link == "ethernet":
        p.extend([("ld", 1, 4, 0, _SMAC), ("stm", 1, 4, 4, _REPLY_OFF),
                  ("ld", 1, 2, 0, _SMAC + 4), ("stm", 1, 2, 4, _REPLY_OFF + 4)])
    p.extend([("li", 2, ACKED | ANSWERED), ("or", 6, 6, 2), ("stm", 6, 4, 4, 16),
              ("addi", 1, 4, _REPLY_OFF), ("li", 2, reply_bytes(link)), ("reply", 1, 2)])
    p.append("count")
    p.extend([("ldm", 1, 4, 0, table), ("addi", 1, 1, 1), ("stm", 1, 4, 0, table),
              ("consume",)])
    p.append("accept")
    p.append(("accept",))
    return p


def reply_bytes(link: str) -> int:
    """The size of the handler's ACK frame on ``link``: its link header, IP and TCP."""
    return LINK_HEADER[link] + ipv4.HEADER_LEN + 20


def _check_link(link) -> None:
    if link not in LINK_HEADER:
        raise ValueError(f"link must be one of {', '.join(LINK_HEADER)}, not {link!r}")


def closing_program(table: int, link: str = "ethernet") -> list[tuple]:
    """The ASH for a :class:`ClosingTable` at physical address ``table``, for frames of
    ``link`` (:data:`LINK_HEADER`): instruction tuples of :mod:`sw.exokernel.ash`, branches
    resolved.

    Raises
    ------
    ValueError
        For an address that is not a non-negative int, or an unknown link.
    """
    if isinstance(table, bool) or not isinstance(table, int) or table < 0:
        raise ValueError(f"table must be a non-negative address, not {table!r}")
    _check_link(link)
    items = _program(table, link)
    labels, prog = {}, []
    for it in items:
        if isinstance(it, str):
            labels[it] = len(prog)
        else:
            prog.append(it)
    return [(*ins[:3], labels[ins[3]]) if ins[0] in ("beq", "bne", "blt") else ins
            for ins in prog]


@dataclass
class _Slot:
    pcb: object
    applied: int = 0                    # state bits already given to the TCP


class ClosingTable:
    """The handler's table in Cheetah's memory, seen from the library OS.

    Parameters
    ----------
    read, write : callables
        ``read(addr, n) -> bytes`` and ``write(addr, data)``: the environment's own loads and
        stores (:meth:`sw.exokernel.aegis.Aegis.read` / ``write``, checked as a TLB refill
        would be).
    base : int
        The table's physical address (in a page the environment owns).
    mac : bytes
        The server's MAC (the source of the reply on Ethernet).
    link_layer : sw.libos.net.atm.AtmLinkLayer, optional
        Classical IP over ATM: the reply goes on the PVC of the peer (None: Ethernet).
    """

    def __init__(self, read, write, base: int, mac: bytes, link_layer=None):
        if isinstance(base, bool) or not isinstance(base, int) or base < 0:
            raise ValueError(f"base must be a non-negative address, not {base!r}")
        if not isinstance(mac, bytes) or len(mac) != 6:
            raise TypeError(f"mac must be 6 bytes, not {mac!r}")
        self._read, self._write = read, write
        self.base = base
        self.mac = mac
        self.link_layer = link_layer
        #: The link whose frames the handler reads (:func:`closing_program`'s ``link``).
        self.link = "ethernet" if link_layer is None else "atm"
        self._slots: dict[int, _Slot] = {}
        self._events = 0
        self._write(base, bytes(TABLE_BYTES))

    @staticmethod
    def bucket_of(remote_ip: bytes, remote_port: int) -> int:
        """The bucket the handler computes for a connection (the module's hash)."""
        return (remote_port ^ int.from_bytes(remote_ip[2:4], "big")) & (BUCKETS - 1)

    def _slot(self, pcb) -> int | None:
        """The slot ``pcb`` is armed in, or None."""
        b = 2 * self.bucket_of(pcb.remote_ip, pcb.remote_port)
        for slot in (b, b + 1):
            s = self._slots.get(slot)
            if s is not None and s.pcb is pcb:
                return slot
        return None

    def _addr(self, slot: int) -> int:
        return self.base + _HEAD + slot * SLOT_BYTES

    def arm(self, pcb, ident: Callable[[], int]) -> bool:
        """Hand ``pcb``'s close to the handler: its FIN is queued (FIN-WAIT-1, or LAST-ACK when
        the client closed first) and nothing more is to be received. Writes the slot's key,
        the expected sequence and acknowledgement numbers and the prebuilt ACK (its IP
        identification taken from ``ident()``, the stack's counter). Returns False, arming
        nothing (and taking no identification), if its bucket's two slots are taken, the
        connection is in another state, or (over ATM) no PVC reaches the peer.
        """
        if pcb.state not in (TcpState.FinWait1, TcpState.LastAck) or not pcb.fin_queued:
            return False
        b = 2 * self.bucket_of(pcb.remote_ip, pcb.remote_port)
        free = [slot for slot in (b, b + 1) if slot not in self._slots]
        if not free or self._slot(pcb) is not None:
            return False
        slot = free[0]
        vci = None
        if self.link_layer is not None:
            try:
                vci = self.link_layer.vci_of(pcb.remote_ip)
            except atm.NoPvc:
                return False                # no PVC for the reply: the library answers
        peer_fin = pcb.state is TcpState.LastAck
        rcv = (pcb.irs + pcb.rcv_nxt) & 0xFFFFFFFF
        fin_ack = (pcb.iss + pcb.snd_end + 1) & 0xFFFFFFFF
        seg, _ = build_segment(pcb.local_ip, pcb.remote_ip, pcb.local_port, pcb.remote_port,
                               fin_ack, (rcv + 1) & 0xFFFFFFFF, ACK, pcb.rcv_wnd)
        ip = ipv4.build_header(pcb.local_ip, pcb.remote_ip, ipv4.PROTO_TCP, len(seg),
                               ident=ident())
        if self.link_layer is None:
            frame = bytes(6) + self.mac + ETHERTYPE_IP.to_bytes(2, "big") + ip + seg
        else:
            frame = atm.build_frame(vci, atm.LLC_SNAP_IP + ip + seg)
        fields = (pcb.remote_ip + pcb.remote_port.to_bytes(2, "big")
                  + pcb.local_port.to_bytes(2, "big") + rcv.to_bytes(4, "big")
                  + fin_ack.to_bytes(4, "big")
                  + (ARMED | (PEER_FIN if peer_fin else 0)).to_bytes(4, "big")
                  + pcb.local_ip + bytes(8))
        self._write(self._addr(slot), fields + frame)
        self._slots[slot] = _Slot(pcb)
        return True

    def disarm(self, pcb) -> bool:
        """Take ``pcb`` out of the table (its connection ended by any path); True if it was in."""
        slot = self._slot(pcb)
        if slot is None:
            return False
        del self._slots[slot]
        self._write(self._addr(slot), bytes(20))          # key and state: free
        return True

    @property
    def armed(self) -> int:
        """Connections armed now."""
        return len(self._slots)

    def changed(self) -> bool:
        """Whether the handler changed a slot since the last :meth:`collect` (one load)."""
        return int.from_bytes(self._read(self.base, 4), "big") != self._events

    def collect(self) -> list[tuple]:
        """``(pcb, new_bits)`` of every armed slot the handler changed (each bit once): read
        its state word."""
        self._events = int.from_bytes(self._read(self.base, 4), "big")
        out = []
        for slot, s in list(self._slots.items()):
            st = int.from_bytes(self._read(self._addr(slot) + 16, 4), "big")
            new = st & (ACKED | ANSWERED) & ~s.applied
            if new:
                s.applied |= new
                out.append((s.pcb, new))
        return out


def reply_checksums_ok(frame: bytes, link: str = "ethernet") -> bool:
    """Whether a reply's IP and TCP checksums verify (for tests and checks)."""
    _check_link(link)
    o = LINK_HEADER[link]
    ip = frame[o:o + 20]
    src, dst = ip[12:16], ip[16:20]
    tcp = frame[o + 20:o + 40]
    return ck.verify(ip) and ck.verify(tcp, ck.pseudo_header_sum(src, dst, ipv4.PROTO_TCP, 20))
