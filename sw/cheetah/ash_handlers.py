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

Most frames it sees are of that kind (at 100 KiB over Ethernet some 40 data ACKs of the
reply for the two it takes), so it first asks whether the frame's acknowledgement number can
be one that covers an armed connection's FIN: a word at a constant address has bit ``n & 31``
set for each armed number ``n``, and a frame whose bit is clear is accepted after 9
instructions, none of them sandboxed (:func:`passing_instructions`). The others (one in 32
per armed connection, and the two it takes) look up the slot whose number is the frame's: a
hash of the ports and the remote address, two compares (20 instructions in all, two
sandboxed loads). Only a frame that acknowledges an armed connection's FIN meets the header
checks, the other fields and the checksums.

Owner memory (one page of Cheetah's environment, :class:`ClosingTable`)::

    +0    u32 events     the handler adds 1 each time it changes a slot
    +4    u32 the armed numbers' bits: bit (n & 31) set for each armed slot's number n
    +64   SLOTS = 2 BUCKETS fast-path entries of 16 bytes, slot i's at +64 + 16 i:
          +0  u32 the acknowledgement number that covers our FIN (wire)
          +4  u32 remote IP        +8  u16 remote port, u16 local port (as on the wire)
          +12 u32 the client's next sequence number (wire)
    +576  SLOTS other entries of 64 bytes, slot i's at +576 + 64 i:
          +0  u32 state: ARMED, PEER_FIN (the client's FIN came before we armed: LAST-ACK),
              ACKED (the handler took the ACK of our FIN), ANSWERED (it answered the FIN)
          +4  u32 local IP (over ATM no filter checked the destination)
          +8  the prebuilt ACK frame (link header, IP, TCP: 54 bytes on Ethernet, 52 over ATM)

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

__all__ = ["closing_program", "passing_instructions", "ClosingTable", "reply_bytes", "reply_checksums_ok", "LINK_HEADER",
           "BUCKETS", "SLOTS", "SLOT_BYTES", "TABLE_BYTES", "ARMED", "PEER_FIN", "ACKED",
           "ANSWERED"]

#: Buckets of the table (a power of two: the bucket is a masked hash), two slots each.
BUCKETS = 16
SLOTS = 2 * BUCKETS
_HEAD = 64
#: A slot's fast-path entry (what every frame's lookup reads) and its other entry (the state,
#: the local address and the reply: 54 bytes on Ethernet, 52 over ATM); powers of two, so an
#: entry's offset is the bucket shifted.
_HOT_BYTES, _COLD_BYTES = 16, 64
_HOT = _HEAD
#: The word of the armed numbers' bits: bit (n & 31) set for each armed slot's number n.
_ACKS = 4
_COLD = _HOT + SLOTS * _HOT_BYTES
_REPLY_OFF = 8
#: Bytes per slot (its two entries).
SLOT_BYTES = _HOT_BYTES + _COLD_BYTES
#: The table's size in owner memory.
TABLE_BYTES = _COLD + SLOTS * _COLD_BYTES
ARMED, PEER_FIN, ACKED, ANSWERED = 1, 2, 4, 8

#: The links the handler knows: bytes in front of the IP datagram in a frame (an Ethernet II
#: header; the SunATM pseudo-header and LLC/SNAP of classical IP over ATM, sw/libos/net/atm.py).
LINK_HEADER = {"ethernet": 14, "atm": atm.HEADER_LEN}
_ETYPE, _SMAC = 12, 6                   # Ethernet: the EtherType and the source MAC


def _program(table: int, link: str) -> list:
    """The handler, with branch targets as label names (resolved by :func:`_resolve`).

    Its first part (the fast path) is only the lookup: every frame runs it, and the many that
    are none of a connection's closing two (the client's ACKs of the reply's data, its
    request, its SYN) leave it at the test of the armed numbers' bits or at the second slot's
    compare of the acknowledgement number. Only a frame that acknowledges an armed
    connection's FIN goes on to the header checks, the slot's other fields and the two
    checksums. The fast path reads the frame at the offsets of a bare IP header (a frame
    with IP options is looked up with the wrong bytes, and if that finds a slot, the header
    checks refuse it); a frame too short for the fields it reads ends the run at the load
    (Aegis counts an abort and upcalls it).
    """
    p: list = []
    ip = LINK_HEADER[link]                              # offsets in the frame: IP header,
    ip_src, tcp = ip + 12, ip + 20                      # its source address, TCP header
    hot, cold = table + _HOT, table + _COLD

    def need(off: int, size: int, value: int, rd: int = 1) -> None:
        p.extend([("ld", rd, size, 0, off), ("li", 2, value), ("bne", rd, 2, "accept")])

    def fold_and_check() -> None:
        # r7 holds a sum of at most 14 halfwords (< 2^20): fold the carries twice and accept
        # the frame unless the one's-complement sum is 0xFFFF (RFC 1071).
        for _ in range(2):
            p.extend([("li", 2, 16), ("shr", 1, 7, 2), ("li", 2, 0xFFFF), ("and", 7, 7, 2),
                      ("add", 7, 7, 1)])
        p.extend([("li", 2, 0xFFFF), ("bne", 7, 2, "accept")])

    def key(miss: str) -> None:
        # The slot at r4 (its fast-path entry) is the frame's connection: remote address,
        # then both ports (register-computed addresses: checked by the sandbox).
        p.extend([("ld", 5, 4, 0, ip_src), ("ldm", 1, 4, 4, hot + 4), ("bne", 1, 5, miss),
                  ("ld", 5, 4, 0, tcp), ("ldm", 1, 4, 4, hot + 8)])

    # The fast path. r3 = the acknowledgement number: is its bit set in the word of the
    # armed connections' numbers (a constant address: no sandbox check)?
    p.extend([("ld", 3, 4, 0, tcp + 8), ("li", 2, 31), ("and", 5, 3, 2),
              ("ldm", 1, 4, 0, table + _ACKS), ("shr", 1, 1, 5), ("li", 2, 1), ("and", 1, 1, 2),
              ("beq", 1, 0, "accept")])
    p.append("not_filtered")                            # (a marker: no code)
    # r4 = the bucket's offset in the fast-path entries:
    # ((remote port ^ low half of the remote IP) & (BUCKETS - 1)) * 2 * _HOT_BYTES.
    p.extend([("ld", 4, 2, 0, tcp), ("ld", 5, 2, 0, ip_src + 2), ("xor", 4, 4, 5),
              ("li", 2, BUCKETS - 1), ("and", 4, 4, 2),
              ("li", 2, (2 * _HOT_BYTES).bit_length() - 1), ("shl", 4, 4, 2)])
    # Does it cover the FIN of the bucket's first slot?
    p.extend([("ldm", 1, 4, 4, hot), ("bne", 1, 3, "second")])
    p.append("first_missed")                            # (a marker: no code)
    key("second")
    p.append(("beq", 1, 5, "found"))
    p.append("second")                                  # the second slot, the same way
    p.extend([("ldm", 1, 4, 4, hot + _HOT_BYTES), ("bne", 1, 3, "accept")])
    p.append("second_missed")
    p.append(("addi", 4, 4, _HOT_BYTES))
    key("accept")
    p.append(("bne", 1, 5, "accept"))
    p.append("found")
    # A frame that acknowledges an armed connection's FIN. In sequence?
    p.extend([("ldm", 1, 4, 4, hot + 12), ("ld", 2, 4, 0, tcp + 4), ("bne", 1, 2, "accept")])
    # Its headers: the link's, IPv4 without options, a bare TCP header, no fragment.
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
    # Flags, PSH ignored: ACK alone or FIN|ACK (r3 keeps them).
    p.extend([("ld", 3, 1, 0, tcp + 13), ("li", 2, 0xF7), ("and", 3, 3, 2),
              ("li", 2, ACK), ("beq", 3, 2, "flags_ok"), ("li", 2, ACK | 1),
              ("bne", 3, 2, "accept")])
    p.append("flags_ok")
    # The slot's other entry (r4 = its offset there: four times the fast-path one): its
    # destination (no filter checked it over ATM) and state.
    p.extend([("li", 2, (_COLD_BYTES // _HOT_BYTES).bit_length() - 1), ("shl", 4, 4, 2),
              ("ldm", 1, 4, 4, cold + 4), ("ld", 2, 4, 0, ip + 16), ("bne", 1, 2, "accept"),
              ("ldm", 6, 4, 4, cold), ("li", 2, ARMED), ("and", 1, 6, 2),
              ("beq", 1, 0, "accept")])
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
    p.extend([("li", 2, ACKED), ("or", 6, 6, 2), ("stm", 6, 4, 4, cold),
              ("beq", 0, 0, "count")])
    p.append("fin")
    # The client's FIN (only after ours was sent and before the client had closed): on
    # Ethernet patch the reply's destination MAC with the frame's source (over ATM the reply
    # goes on the peer's PVC, prebuilt); record; send it.
    reply = cold + _REPLY_OFF
    p.extend([("li", 2, PEER_FIN), ("and", 1, 6, 2), ("bne", 1, 0, "accept")])
    if link == "ethernet":
        p.extend([("ld", 1, 4, 0, _SMAC), ("stm", 1, 4, 4, reply),
                  ("ld", 1, 2, 0, _SMAC + 4), ("stm", 1, 2, 4, reply + 4)])
    p.extend([("li", 2, ACKED | ANSWERED), ("or", 6, 6, 2), ("stm", 6, 4, 4, cold),
              ("addi", 1, 4, reply), ("li", 2, reply_bytes(link)), ("reply", 1, 2)])
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
    prog, _ = _resolve(_program(table, link))
    return prog


def _resolve(items: list) -> tuple[list[tuple], dict[str, int]]:
    """Instructions with branch targets resolved, and each label's index."""
    labels, prog = {}, []
    for it in items:
        if isinstance(it, str):
            labels[it] = len(prog)
        else:
            prog.append(it)
    return ([(*ins[:3], labels[ins[3]]) if ins[0] in ("beq", "bne", "blt") else ins
             for ins in prog], labels)


def passing_instructions(link: str = "ethernet", *, looked_up: bool = False) -> int:
    """Instructions the handler runs on a frame whose acknowledgement number covers no armed
    connection's FIN (every frame of a connection not armed, and the data ACKs of one that
    is). Most leave at the word of the armed numbers' bits (``accept`` included; no
    sandboxed load). One whose number's bit is set (``looked_up``) goes on to the slots of
    its bucket; the most it runs there is when both slots hold its number but another
    connection (address equal, ports not): the hash, each slot's number, address and ports
    compared, ``accept`` (six sandboxed loads). When neither slot holds its number it runs
    20 (two sandboxed).

    Raises
    ------
    ValueError
        For an unknown link.
    """
    _check_link(link)
    if not isinstance(looked_up, bool):
        raise TypeError(f"looked_up must be a bool, not {looked_up!r}")
    _, labels = _resolve(_program(0, link))
    if not looked_up:
        return labels["not_filtered"] + 1
    return labels["found"] + 1


@dataclass
class _Slot:
    pcb: object
    bit: int                            # its number's bit in the word at _ACKS
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
        self._bits = [0] * 32               # armed slots per bit of the word at _ACKS
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

    def _hot(self, slot: int) -> int:
        return self.base + _HOT + slot * _HOT_BYTES

    def _cold(self, slot: int) -> int:
        return self.base + _COLD + slot * _COLD_BYTES

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
        self._write(self._hot(slot), fin_ack.to_bytes(4, "big") + pcb.remote_ip
                    + pcb.remote_port.to_bytes(2, "big") + pcb.local_port.to_bytes(2, "big")
                    + rcv.to_bytes(4, "big"))
        self._write(self._cold(slot), (ARMED | (PEER_FIN if peer_fin else 0)).to_bytes(4, "big")
                    + pcb.local_ip + frame)
        self._slots[slot] = _Slot(pcb, fin_ack & 31)
        self._count_bit(fin_ack & 31, 1)
        return True

    def _count_bit(self, bit: int, by: int) -> None:
        """One more (``by`` 1) or one fewer (-1) armed number with ``bit``; store the word."""
        self._bits[bit] += by
        word = sum(1 << b for b, n in enumerate(self._bits) if n)
        self._write(self.base + _ACKS, word.to_bytes(4, "big"))

    def disarm(self, pcb) -> bool:
        """Take ``pcb`` out of the table (its connection ended by any path); True if it was in."""
        slot = self._slot(pcb)
        if slot is None:
            return False
        self._write(self._hot(slot), bytes(_HOT_BYTES))   # key and numbers: free
        self._write(self._cold(slot), bytes(4))            # state
        self._count_bit(self._slots.pop(slot).bit, -1)
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
            st = int.from_bytes(self._read(self._cold(slot), 4), "big")
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
