"""TCP (RFC 793 with RFC 1122's corrections) with the server-OS specializations.

The state machine: three-way handshake with the MSS option, simultaneous open, a sliding
window, retransmission on a timer whose timeout follows Jacobson's RTT estimator (RFC 6298)
with exponential backoff and Karn's rule, FIN and RST, simultaneous close and TIME_WAIT.

The specializations of the paper (SYSTEM.md section 4):

* **Application-owned PCBs.** The application creates the :class:`TcpPcb` (usually a subclass
  holding its own per-connection state) and passes it to ``connect``, or returns it from the
  factory it gave ``listen``. The stack allocates nothing per connection: its demultiplexing
  table refers to the application's object.
* **FIN on the last data segment.** ``send(..., last=True)`` queues the FIN with the data, so
  a small response goes out as one segment carrying data and FIN.
* **Precomputed checksums.** ``send`` takes the one's-complement sum of the payload (of the
  whole, or one per buffer); segments that cover summed buffers use it and the CPU sums only
  the headers and any partial buffers.
* **Scatter/gather.** ``send`` takes a list of buffers; segments are gathered from them. A
  full-size segment that would end inside a buffer with a precomputed sum ends before it
  instead (when it has a whole summed piece), so the sums serve whatever the MSS. A
  buffer may be a :class:`~sw.libos.net.gather.Gather` (or a
  :class:`~sw.libos.net.gather.PhysRef`): data left in physical memory (Cheetah's file-cache
  blocks). A segment over such data is itself a gather list, the header bytes the CPU built
  then the references (issue 16, zero copy); the CPU reads the referenced bytes only to sum
  those without a precomputed sum, and that pass is recorded as touching them
  (:meth:`Tcp.attach_memory`: the memory read and the host's
  :class:`~sw.doc_touch.DocTouch`).
* **No retransmission buffer.** The stack keeps no data: bytes to retransmit (or that did not
  fit in the window when they were sent) are asked of the application through
  ``pcb.resupply(offset, length)``, offsets counted from the first data byte of the stream.
* **Cheap TIME_WAIT.** A connection entering TIME_WAIT gives its PCB back to the application
  at once and leaves a three-field entry in a table (:class:`TimeWaitTable`), expired after a
  configurable 2 MSL by one timer for the whole table.

The timers of 4.3BSD-Reno/4.4BSD (``netinet/tcp_timer.c``, constants below):

* **Retransmission** (``TCPT_REXMT``): the connection is dropped (reason ``"timeout"``, with
  ``tcp_drop``'s RST|ACK) at the 13th consecutive timeout (``TCP_MAXRXTSHIFT`` = 12).
* **Persist** (``TCPT_PERSIST``, RFC 1122 4.2.2.17): data waiting on a zero window, or held by
  sender silly-window avoidance, is forced out when it expires: a one-byte window probe into a
  zero window, else what the window takes. ``tcp_setpersist``'s interval is the RTO estimate
  times ``tcp_backoff[]``, bounded to 5..60 s. As in 4.4BSD, probing never gives up by
  itself (a silent peer is dropped only by keepalive, if the PCB asked for it).
* **Connection establishment** (``TCPT_KEEP`` before ESTABLISHED): a connection still in
  SYN-SENT or SYN-RECEIVED after 75 s is dropped (``on_closed("timeout")``; a reset is sent in
  SYN-RECEIVED, as ``tcp_drop`` does). One kernel timer serves every connection (each is due a
  fixed time after it began), so opening a connection costs no kernel entry.
* **FIN-WAIT-2** (``TCPT_2MSL`` there): once our FIN is acknowledged the application receives
  no more (the library's ``close`` and last ``send`` are BSD's ``close()``), so a connection
  idle for ``tcp_maxidle`` (10 min) is closed without a reset (``tcp_close``); the idleness
  is checked at 10 min and then every 75 s, as BSD does.
* **Keepalive** (``TCPT_KEEP`` when ``pcb.keepalive``, BSD's ``SO_KEEPALIVE``): after 2 h
  without a segment from the peer, a probe every 75 s; dropped after 2 h + 10 min of silence.

Sender silly-window avoidance (RFC 1122 4.2.3.4, 4.4BSD ``tcp_output``): a segment shorter than
the MSS goes out only if it takes all the queued data (and, with ``nodelay=False``, nothing is
unacknowledged: Nagle's rule), if it is at least half the largest window the peer offered, if
it is a retransmission, if it carries the FIN (ULTRIX 4.2 ``tcp_output.c`` sends a FIN not yet
sent before it applies these rules: ``close()`` flushes what Nagle held), or when the persist
timer forces it.

Acknowledgements: by default every data segment is acknowledged at once, after the
application's handler has had the chance to send a reply that carries the ACK. With
``TcpConfig(delayed_ack=True)`` the receiver acts as 4.3BSD's ``tcp_input`` (ULTRIX 4.2
``tcp_input.c`` at ``dodata:``): in-order data sets ``TF_DELACK`` instead of answering; the
ACK rides on the next segment the connection sends, or goes out at the next tick of the
stack's 200 ms fast timeout (``tcp_fasttimo``, ``PR_FASTHZ`` = 5: one clock for every
connection, so the delay is 0..200 ms), or when the application's reading opens the window by
two segments or 35 % of the buffer (``tcp_output``'s window update after ``PRU_RCVD``,
:meth:`Tcp.received`). A FIN, an out-of-order or unacceptable segment, and the handshake are
acknowledged at once (``TF_ACKNOW``).

The receiver keeps out-of-order data as 4.4BSD's ``tcp_reass`` does: trimmed to the receive
window and with overlaps removed, so the queue never holds more than the window's bytes.

Simplifications (documented limits): no congestion control (slow start) and no fast
retransmit (a timeout resends from the first unacknowledged byte), no window scaling or timestamps, no urgent data. The receive
window never shrinks (data is handed to the application as it arrives), so this TCP never
advertises a zero window itself. As in the stacks of the period there are none of RFC 5961's
protections: an in-window RST or SYN ends the connection.

Sequence numbers are kept internally as offsets from the initial sequence numbers (the SYN is
offset 0, the first data byte offset 1), so comparisons are plain integer comparisons; they
are converted to 32-bit wire values only in headers.
"""
from __future__ import annotations

import bisect
import enum
import inspect
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence, runtime_checkable

from sim.kernel import Kernel
from sim.time import MS, S

from ..events import Handlers, invoke
from ..ilp import inloop   # attributes used at run time (inloop imports this package)
from . import checksum as ck
from .gather import Gather, PhysRef
from .ipv4 import PROTO_TCP

__all__ = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "DROP", "IpLayer", "TcpState", "TcpConfig",
           "TcpPcb", "TcpSegment", "TimeWaitEntry", "TimeWaitTable", "TcpStats", "FixedDelayTimers", "Tcp",
           "build_segment", "parse_segment", "mss_for", "TCPTV_KEEP_INIT", "TCPTV_KEEP_IDLE",
           "TCPTV_KEEPINTVL", "TCPTV_KEEPCNT", "TCPTV_PERSMIN", "TCPTV_PERSMAX",
           "TCP_MAXRXTSHIFT", "TCP_BACKOFF"]

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
#: What a listener's factory returns to drop a SYN silently (a full listen queue, as BSD).
DROP = object()
_M32 = 0xFFFFFFFF
HEADER_LEN = 20
OPT_MSS = 2

# -- 4.4BSD's TCP timer constants (netinet/tcp_timer.h, the same in 4.3BSD-Reno), converted
# from slow-timeout ticks (PR_SLOWHZ = 2 a second) to picoseconds.
#: Connection-establishment timer: a connection not ESTABLISHED after 75 s is dropped.
TCPTV_KEEP_INIT = 75 * S
#: Idle time before the first keepalive probe (only with SO_KEEPALIVE).
TCPTV_KEEP_IDLE = 2 * 60 * 60 * S
#: Time between keepalive probes, and between FIN-WAIT-2 idleness checks.
TCPTV_KEEPINTVL = 75 * S
#: Keepalive probes left unanswered before the connection is dropped.
TCPTV_KEEPCNT = 8
#: Smallest and largest persist timer interval.
TCPTV_PERSMIN = 5 * S
TCPTV_PERSMAX = 60 * S
#: Consecutive retransmission timeouts before the connection is dropped; also the cap of the
#: persist timer's backoff index.
TCP_MAXRXTSHIFT = 12
#: tcp_timer.c ``tcp_backoff[]``: the multiplier of the persist interval per probe.
TCP_BACKOFF = (1, 2, 4, 8, 16, 32, 64, 64, 64, 64, 64, 64, 64)


@runtime_checkable
class IpLayer(Protocol):
    """What the TCP needs of the IP layer under it: all it calls back into.

    :class:`~sw.libos.net.stack.NetStack` implements it (and owns the :class:`Tcp`); this
    module imports nothing of the stack, so TCP can be read, and tested, on its own.

    Attributes
    ----------
    kernel : Kernel
        The simulation's kernel (time, timers, tasks).
    ip : bytes
        The local IPv4 address (4 bytes), the source of every segment sent.
    mtu : int
        The largest datagram the layer sends (bounds the MSS announced).
    name : str
        For task names and messages.
    """

    kernel: Kernel
    ip: bytes
    mtu: int
    name: str

    def charge_protocol(self, layer: str) -> Awaitable[None]:
        """Charge one packet's processing at ``layer`` (``"tcp"`` here) to the CPU."""

    def charge_checksum(self, nbytes: int) -> Awaitable[None]:
        """Charge summing ``nbytes`` (nothing for 0)."""

    def charge_copy(self, nbytes: int) -> Awaitable[None]:
        """Charge copying ``nbytes`` (received data handed to the application)."""

    def charge_demux(self, entries: int) -> Awaitable[None]:
        """Charge examining ``entries`` PCBs to find a segment's connection."""

    async def ip_output(self, dst: bytes, proto: int, payload: bytes) -> None:
        """Send ``payload`` (a whole TCP segment) to ``dst`` in one datagram."""


class TcpState(enum.Enum):
    """RFC 793's connection states."""

    Closed = "CLOSED"
    Listen = "LISTEN"
    SynSent = "SYN-SENT"
    SynReceived = "SYN-RECEIVED"
    Established = "ESTABLISHED"
    FinWait1 = "FIN-WAIT-1"
    FinWait2 = "FIN-WAIT-2"
    CloseWait = "CLOSE-WAIT"
    Closing = "CLOSING"
    LastAck = "LAST-ACK"
    TimeWait = "TIME-WAIT"


#: States in which data and FIN may be transmitted.
_SENDING = {TcpState.Established, TcpState.CloseWait, TcpState.FinWait1, TcpState.Closing,
            TcpState.LastAck}
#: States in which data and FIN from the peer are accepted.
_RECEIVING = {TcpState.Established, TcpState.FinWait1, TcpState.FinWait2}


@dataclass(frozen=True)
class TcpConfig:
    """TCP parameters (times in picoseconds).

    Parameters
    ----------
    mss : int or None
        The largest MSS announced (and segment sent); None: the IP layer's MTU less 40 (1460
        on Ethernet, 9140 over classical IP over ATM), what RFC 1122 4.2.2.6 has a host
        announce.
    rcv_wnd : int
        The receive window advertised (at most 65535: no window scaling).
    initial_rto_ps : int
        Retransmission timeout before any RTT sample: 3 s (RFC 1122 4.2.3.1).
    min_rto_ps, max_rto_ps : int
        Bounds of the timeout: 1 s (RFC 6298 2.4) and 64 s.
    granularity_ps : int
        The clock granularity G of RFC 6298's ``RTO = SRTT + max(G, 4 RTTVAR)``.
    max_retransmits : int
        Consecutive timeouts after which the connection is dropped (reason ``"timeout"``):
        ``TCP_MAXRXTSHIFT`` = 12.
    msl_ps : int
        Maximum segment lifetime: 30 s as in 4.4BSD (CALIBRATION.md).
    time_wait_ps : int or None
        TIME_WAIT duration; None means 2 MSL.
    pcb_lookup : str
        ``"hash"`` (one entry examined per lookup) or ``"linear"`` (a BSD-style scan: the
        entries before the match are examined too); what the CPU is charged for.
    rx_copy : bool
        Charge a copy of received payload into the application's memory.
    keep_init_ps : int
        Connection-establishment timer: ``TCPTV_KEEP_INIT`` = 75 s.
    keep_idle_ps : int
        Idleness before the first keepalive probe: ``TCPTV_KEEP_IDLE`` = 2 h (BSD's
        ``tcp_keepidle``; only for PCBs with ``keepalive`` set).
    keep_intvl_ps : int
        Between keepalive probes and FIN-WAIT-2 checks: ``TCPTV_KEEPINTVL`` = 75 s.
    keep_count : int
        ``TCPTV_KEEPCNT`` = 8; ``tcp_maxidle`` is ``keep_count * keep_intvl_ps`` (10 min).
    nodelay : bool
        True (the library's default): a short segment that takes all queued data goes at
        once. False applies Nagle's rule as 4.3BSD does without ``TCP_NODELAY``: it waits until
        nothing is unacknowledged.
    delayed_ack : bool
        False (the library's default): every data segment is acknowledged at once. True:
        4.3BSD's delayed ACK (``TF_DELACK``), see the module docstring.
    delack_tick_ps : int
        The period of the fast timeout that sends delayed ACKs: 200 ms (``PR_FASTHZ`` = 5).

    Raises
    ------
    ValueError
        For a value out of range.
    """

    mss: int | None = None
    rcv_wnd: int = 8760
    initial_rto_ps: int = 3 * S
    min_rto_ps: int = 1 * S
    max_rto_ps: int = 64 * S
    granularity_ps: int = 10 * MS
    max_retransmits: int = 12
    msl_ps: int = 30 * S
    time_wait_ps: int | None = None
    pcb_lookup: str = "hash"
    rx_copy: bool = True
    keep_init_ps: int = TCPTV_KEEP_INIT
    keep_idle_ps: int = TCPTV_KEEP_IDLE
    keep_intvl_ps: int = TCPTV_KEEPINTVL
    keep_count: int = TCPTV_KEEPCNT
    nodelay: bool = True
    delayed_ack: bool = False
    delack_tick_ps: int = 200 * MS

    def __post_init__(self) -> None:
        def need(name, ok):
            if not ok:
                raise ValueError(f"TcpConfig.{name} is out of range: {getattr(self, name)!r}")
        ints = ("rcv_wnd", "initial_rto_ps", "min_rto_ps", "max_rto_ps", "granularity_ps",
                "max_retransmits", "msl_ps", "keep_init_ps", "keep_idle_ps", "keep_intvl_ps",
                "keep_count", "delack_tick_ps")
        for n in ints:
            v = getattr(self, n)
            need(n, isinstance(v, int) and not isinstance(v, bool) and v >= 0)
        for n in ("keep_init_ps", "keep_idle_ps", "keep_intvl_ps", "keep_count"):
            need(n, getattr(self, n) > 0)
        need("nodelay", isinstance(self.nodelay, bool))
        need("delayed_ack", isinstance(self.delayed_ack, bool))
        need("delack_tick_ps", self.delack_tick_ps > 0)
        need("mss", self.mss is None or (isinstance(self.mss, int) and not isinstance(self.mss, bool)
                                         and 1 <= self.mss <= 65495))
        need("rcv_wnd", 1 <= self.rcv_wnd <= 0xFFFF)
        need("initial_rto_ps", self.initial_rto_ps > 0)
        need("max_rto_ps", self.max_rto_ps >= self.min_rto_ps > 0)
        need("time_wait_ps", self.time_wait_ps is None
             or (isinstance(self.time_wait_ps, int) and self.time_wait_ps >= 0))
        need("pcb_lookup", self.pcb_lookup in ("hash", "linear"))

    @property
    def time_wait(self) -> int:
        """TIME_WAIT duration in ps (2 MSL unless set)."""
        return 2 * self.msl_ps if self.time_wait_ps is None else self.time_wait_ps

    @property
    def max_idle(self) -> int:
        """BSD's ``tcp_maxidle`` in ps: ``keep_count * keep_intvl_ps`` (10 min)."""
        return self.keep_count * self.keep_intvl_ps


def mss_for(config: TcpConfig, mtu: int) -> int:
    """The MSS a TCP with ``config`` announces over an IP layer of ``mtu`` bytes."""
    return mtu - 40 if config.mss is None else min(config.mss, mtu - 40)


class TcpPcb(Handlers):
    """A protocol control block, owned by the application.

    Subclass it (or assign the handlers of :class:`~sw.libos.events.Handlers` on an instance)
    and implement :meth:`resupply` if the connection sends more than fits in one window or may
    lose a segment (always, in practice).

    Parameters
    ----------
    rcv_wnd : int, optional
        The window to advertise (default: the stack's configuration).
    keepalive : bool
        BSD's ``SO_KEEPALIVE``: probe an idle established connection (set it before
        ``connect``, or in the listener's factory).

    Attributes
    ----------
    state : TcpState
    local_ip, remote_ip : bytes
    local_port, remote_port : int
    snd_una, snd_nxt, snd_max, snd_end : int
        Send-side sequence offsets from the ISS: oldest unacknowledged, next to send, highest
        sent, end of the data queued by the application (the FIN's offset).
    rcv_nxt : int
        Next expected offset from the peer's ISS.
    srtt, rttvar, rto : int
        RTT estimator state in ps (``srtt`` None before the first sample).
    rtt_samples, retransmits, timeouts : int
        Counters.
    max_sndwnd : int
        The largest window the peer has offered (BSD's ``max_sndwnd``, for silly-window
        avoidance).
    persist_shift : int
        The persist timer's backoff index (``t_rxtshift`` while persisting).
    ooo : list
        Out-of-order data as ``(offset, bytes, fin)``, sorted and not overlapping.
    rtt_history : list or None
        Set to a list to have every RTT sample (ps) appended.
    close_reason : str or None
        Why the connection ended.
    """

    def __init__(self, *, rcv_wnd: int | None = None, keepalive: bool = False):
        if rcv_wnd is not None and (not isinstance(rcv_wnd, int) or not 1 <= rcv_wnd <= 0xFFFF):
            raise ValueError(f"rcv_wnd must be 1..65535, not {rcv_wnd!r}")
        if not isinstance(keepalive, bool):
            raise TypeError(f"keepalive must be a bool, not {keepalive!r}")
        self.rcv_wnd = rcv_wnd
        self.keepalive = keepalive
        self.state = TcpState.Closed
        self.stack: IpLayer | None = None
        self.local_ip = self.remote_ip = b""
        self.local_port = self.remote_port = 0
        self.close_reason: str | None = None
        self.rtt_history: list[int] | None = None
        self._reset()

    def _reset(self) -> None:
        self.iss = self.irs = 0
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_end = 1
        self.snd_wnd = self.max_sndwnd = 0
        self.snd_wl1 = self.snd_wl2 = -1
        self.fin_queued = False
        self.rcv_nxt = 0
        self.mss = 536                        # RFC 1122 default until the peer's option
        self.srtt: int | None = None
        self.rttvar = 0
        self.rto = 0
        self.rtt_seq: int | None = None
        self.rtt_start = 0
        self.rtt_samples = self.retransmits = self.timeouts = 0
        self.rexmt_count = 0
        self.bytes_received = 0
        self.ooo: list[tuple[int, bytes, bool]] = []
        self.ack_pending = False
        self.delack = False                   # BSD TF_DELACK: an ACK owed, not urgent
        self.rcv_acked = 0                    # rcv_nxt in the last segment sent (rcv_adv)
        self._timer: Callable[[], None] | None = None      # TCPT_REXMT
        self._timer_at: int | None = None
        self._persist: Callable[[], None] | None = None    # TCPT_PERSIST
        self.persist_shift = 0
        self._keep: Callable[[], None] | None = None       # TCPT_KEEP / FIN-WAIT-2's TCPT_2MSL
        self._keep_kind: str | None = None
        self._last_rcv = 0                                 # when a segment last came (t_idle)
        self._to_time_wait = False

    # -- what the application may override ---------------------------------------------------
    def resupply(self, offset: int, length: int) -> Any:
        """Return ``length`` bytes of the stream starting at ``offset`` (again).

        May return bytes, a list of buffers, ``(data, sum)`` with the one's-complement sum
        of the bytes (:func:`~sw.libos.net.checksum.ones_sum`) so the stack need not sum them,
        or a list of ``(buffer, sum or None)`` pairs (the stack sums only the pieces without
        one). A buffer may be a :class:`~sw.libos.net.gather.Gather` (data left in memory).

        Raises
        ------
        NotImplementedError
            By default: the application keeps the data, not the stack.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.resupply({offset}, {length}): the stack keeps no "
            "retransmission buffer; the application must supply the bytes again")

    # -- read-only views -------------------------------------------------------------------
    @property
    def bytes_acked(self) -> int:
        """Data bytes the peer has acknowledged."""
        return max(0, min(self.snd_una, self.snd_end) - 1)

    @property
    def bytes_queued(self) -> int:
        """Data bytes the application has given to ``send`` so far."""
        return self.snd_end - 1

    @property
    def ooo_bytes(self) -> int:
        """Bytes held in the out-of-order queue."""
        return sum(len(p) for _, p, _ in self.ooo)

    @property
    def key(self) -> tuple[int, bytes, int]:
        return (self.local_port, self.remote_ip, self.remote_port)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.state.value} :{self.local_port} -> "
                f"{'.'.join(map(str, self.remote_ip))}:{self.remote_port}>")


@dataclass(frozen=True)
class TcpSegment:
    """A parsed TCP segment (wire sequence numbers)."""

    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    wnd: int
    mss: int | None
    payload: bytes
    header_length: int

    @property
    def seg_len(self) -> int:
        """Sequence space occupied: payload plus one each for SYN and FIN."""
        return len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)


def build_segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
                  flags: int, wnd: int, payload_parts: Sequence[tuple[bytes, int | None]] = (),
                  *, mss: int | None = None,
                  sum_in_copy: bool = False) -> tuple[bytes | Gather, int]:
    """A TCP segment with its checksum; returns ``(segment, bytes the CPU summed)``.

    ``payload_parts`` are ``(bytes, sum or None)`` pieces; a piece with a known sum is not
    summed again (the caller vouches for it). A piece may be a :class:`Gather` (with its
    sum): the segment is then a :class:`Gather` too, the header then the pieces.

    ``sum_in_copy``: nothing is summed here; the checksum field holds the pseudo-header's sum
    and the segment is marked for the interface's copy loop to complete the checksum over the
    whole segment (:func:`sw.libos.ilp.inloop.mark_sum_at`; Cheetah's ``ilp`` switch); a
    :class:`Gather` piece then needs no sum. The bytes summed are 0 (the pseudo-header's 12 are
    summed in line by the IP layer that completes the request's offsets).

    Raises
    ------
    ValueError
        For a port, window or MSS out of range.
    """
    for name, v, hi in (("sport", sport, 0xFFFF), ("dport", dport, 0xFFFF), ("wnd", wnd, 0xFFFF)):
        if not 0 <= v <= hi:
            raise ValueError(f"TCP {name} out of range: {v!r}")
    opts = b""
    if mss is not None:
        if not 0 < mss <= 0xFFFF:
            raise ValueError(f"MSS option out of range: {mss!r}")
        opts = bytes([OPT_MSS, 4]) + mss.to_bytes(2, "big")
    hl = HEADER_LEN + len(opts)
    h = bytearray(hl)
    h[0:2] = sport.to_bytes(2, "big")
    h[2:4] = dport.to_bytes(2, "big")
    h[4:8] = (seq & _M32).to_bytes(4, "big")
    h[8:12] = (ack & _M32).to_bytes(4, "big")
    h[12] = (hl // 4) << 4
    h[13] = flags
    h[14:16] = wnd.to_bytes(2, "big")
    h[20:] = opts
    plen = sum(len(b) for b, _ in payload_parts)
    if sum_in_copy:
        h[16:18] = ck.pseudo_header_sum(src, dst, PROTO_TCP, hl + plen).to_bytes(2, "big")
        parts = [bytes(h), *(b for b, _ in payload_parts)]
        seg = _join(parts) if any(isinstance(b, Gather) for b, _ in payload_parts) \
            else b"".join(bytes(b) for b in parts)
        return inloop.mark_sum_at(seg, 0, 16), 0
    summed = hl + 12
    pieces = []
    for b, s in payload_parts:
        if s is None:
            if isinstance(b, Gather):
                raise ValueError("a gather-list payload piece needs its sum (the caller reads "
                                 "the memory: Tcp._segment)")
            s = ck.ones_sum(b)
            summed += len(b)
        pieces.append((s, len(b)))
    # The header length is even, so the payload starts at an even offset of the segment.
    total = ck.add(ck.add(ck.pseudo_header_sum(src, dst, PROTO_TCP, hl + plen), ck.ones_sum(h)),
                   ck.combine(pieces))
    h[16:18] = ck.finish(total).to_bytes(2, "big")
    if any(isinstance(b, Gather) for b, _ in payload_parts):
        return _join([bytes(h), *(b for b, _ in payload_parts)]), summed
    return bytes(h) + b"".join(bytes(b) for b, _ in payload_parts), summed


def parse_segment(src: bytes, dst: bytes, data: bytes, *,
                  segment_sum: int | None = None) -> TcpSegment:
    """Check the checksum (with the pseudo-header) and parse a segment.

    ``segment_sum``: the one's-complement sum of ``data`` (0..0xffff, taken mod 0xffff: RFC
    1071) computed elsewhere (an ILP pipe in the copy that brought the segment in); the check
    then uses it instead of summing ``data``.

    Raises
    ------
    ValueError
        For a short segment, a bad data offset or a wrong checksum.
    """
    n = len(data)
    if n < HEADER_LEN:
        raise ValueError(f"TCP segment of {n} bytes is shorter than its header")
    hl = (data[12] >> 4) * 4
    if hl < HEADER_LEN or hl > n:
        raise ValueError(f"TCP data offset {hl} is invalid for {n} bytes")
    pseudo = ck.pseudo_header_sum(src, dst, PROTO_TCP, n)
    if segment_sum is None:
        if not ck.verify(data, pseudo):
            raise ValueError("TCP checksum is wrong")
    elif not ck.verify_sum(segment_sum, pseudo):
        raise ValueError("TCP checksum is wrong")
    mss = None
    opts = data[HEADER_LEN:hl]
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break                               # malformed options: ignore the rest
        ln = opts[i + 1]
        if kind == OPT_MSS and ln == 4 and i + 4 <= len(opts):
            mss = int.from_bytes(opts[i + 2:i + 4], "big")
        i += ln
    return TcpSegment(int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big"),
                      int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"),
                      data[13] & 0x3F, int.from_bytes(data[14:16], "big"), mss,
                      bytes(data[hl:]), hl)


class TimeWaitEntry:
    """What remains of a connection in TIME_WAIT: enough to re-acknowledge a FIN.

    Three slots, no reference to the PCB (which went back to the application).
    """

    __slots__ = ("snd_nxt", "rcv_nxt", "expires")

    def __init__(self, snd_nxt: int, rcv_nxt: int, expires: int):
        self.snd_nxt = snd_nxt          # wire sequence number to send with
        self.rcv_nxt = rcv_nxt          # wire sequence number to acknowledge
        self.expires = expires

    def __repr__(self) -> str:
        return f"<TimeWaitEntry snd {self.snd_nxt} rcv {self.rcv_nxt} until {self.expires}>"


class TimeWaitTable:
    """TIME_WAIT entries keyed by ``(local port, remote ip, remote port)``, in expiry order.

    One kernel timer serves the table (the head's expiry); an entry removed early or
    restarted leaves a stale queue record that the timer skips.
    """

    def __init__(self, stack: IpLayer):
        self._stack = stack
        self._entries: dict[tuple, TimeWaitEntry] = {}
        self._queue: deque[tuple[int, tuple]] = deque()
        self._timer: Callable[[], None] | None = None
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def get(self, key) -> TimeWaitEntry | None:
        return self._entries.get(key)

    def entries(self) -> dict[tuple, TimeWaitEntry]:
        """A copy of the table."""
        return dict(self._entries)

    def add(self, key: tuple, snd_nxt: int, rcv_nxt: int, duration: int) -> TimeWaitEntry:
        expires = self._stack.kernel.now + duration
        e = TimeWaitEntry(snd_nxt & _M32, rcv_nxt & _M32, expires)
        self._entries[key] = e
        self._queue.append((expires, key))
        self._arm()
        return e

    def restart(self, key: tuple, duration: int) -> None:
        e = self._entries[key]
        e.expires = self._stack.kernel.now + duration
        self._queue.append((e.expires, key))
        self._arm()

    def remove(self, key: tuple) -> None:
        self._entries.pop(key, None)

    def _arm(self) -> None:
        if self._timer is None and self._queue:
            self._timer = self._stack.kernel.call_at(self._queue[0][0], self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._stack.kernel.now
        q = self._queue
        while q and q[0][0] <= now:
            t, key = q.popleft()
            e = self._entries.get(key)
            if e is not None and e.expires == t:
                del self._entries[key]
                self.expired += 1
        self._arm()


@dataclass
class TcpStats:
    """Per-stack TCP counters."""

    segments_in: int = 0
    segments_out: int = 0
    bad_checksum: int = 0
    malformed: int = 0
    resets_sent: int = 0
    resets_received: int = 0
    retransmit_timeouts: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    connections_opened: int = 0
    connections_accepted: int = 0
    refused: int = 0
    listen_drops: int = 0
    time_wait_hits: int = 0
    pcb_entries_examined: int = 0
    checksum_bytes_saved: int = 0
    listen_non_syn_drops: int = 0
    persist_timeouts: int = 0
    window_probes: int = 0
    keep_timeouts: int = 0
    keepalive_probes: int = 0
    keep_drops: int = 0
    fin_wait_2_drops: int = 0
    delayed_acks: int = 0


def _reass_insert(q: list[tuple[int, bytes, bool]], seq: int, payload: bytes,
                  fin: bool) -> None:
    """Queue out-of-order data as 4.4BSD ``tcp_reass`` does: ``q`` is sorted by offset
    and never overlaps, so it holds at most the window's bytes however the peer slices it.

    Data already queued before the new segment wins (the new one's front is trimmed, or the
    whole of it dropped as a duplicate); queued data the new segment covers is replaced (a
    segment covered entirely is freed, one covered in part loses its front).
    """
    end = seq + len(payload)
    i = bisect.bisect_left(q, (seq,))
    if i:
        ps, pp, pf = q[i - 1]
        pend = ps + len(pp)
        if pend >= end:                         # a duplicate of queued data
            if fin and pend == end and not pf:
                q[i - 1] = (ps, pp, True)
            return
        if pend > seq:
            payload = payload[pend - seq:]
            seq = pend
    while i < len(q):
        qs, qp, qf = q[i]
        if qs >= end:
            break
        qend = qs + len(qp)
        if qend > end:
            q[i] = (end, qp[end - qs:], qf)
            break
        fin = fin or (qf and qend == end)
        del q[i]
    q.insert(i, (seq, payload, fin))


def _stopped(cancel: Callable[[], None] | None) -> None:
    """Cancel a kernel timer (``cancel`` from ``call_at``, or None); None for its slot."""
    if cancel is not None:
        cancel()
    return None


def _unwrap(wire: int, base: int, ref: int) -> int:
    """The offset (from ``base``) of wire sequence number ``wire`` closest to offset ``ref``."""
    d = ((wire - base - ref + (1 << 31)) & _M32) - (1 << 31)
    return ref + d


class _SendData:
    """The buffers of the ``send`` call in progress (valid only during that call)."""

    __slots__ = ("start", "end", "pieces")

    def __init__(self, start: int, bufs: list[bytes], sums: list[int | None]):
        self.start = start
        self.pieces = []
        off = start
        for b, s in zip(bufs, sums):
            self.pieces.append((off, b, s))
            off += len(b)
        self.end = off

    def parts(self, o: int, n: int) -> list[tuple[bytes | Gather, int | None]] | None:
        if not (self.start <= o and o + n <= self.end):
            return None
        out = []
        for off, b, s in self.pieces:
            lo, hi = max(o, off), min(o + n, off + len(b))
            if lo >= hi:
                continue
            if lo == off and hi == off + len(b):
                out.append((b, s))
            else:
                out.append((_cut(b, lo - off, hi - off), None))
        return out


def _whole_pieces(parts: list, n: int) -> tuple[list, int]:
    """A full-size segment's parts, ended at the last whole precomputed-sum piece: a trailing
    piece the MSS cut (no sum) goes in the next segment, which it starts, so that no segment
    needs a sum over the application's data when its pieces are no longer than the MSS
    (Cheetah's documents over a link whose MSS is not the one the sums were cut for)."""
    last_b, last_s = parts[-1]
    if last_s is not None or all(s is None for _, s in parts[:-1]):
        return parts, n
    return parts[:-1], n - len(last_b)


_BYTES = (bytes, bytearray, memoryview)


def _buffer(b):
    """One send buffer as ``bytes`` or a :class:`Gather` (a reference-free gather list
    becomes bytes), or None if it is neither."""
    if isinstance(b, _BYTES):
        return bytes(b)
    if isinstance(b, PhysRef):
        return Gather((b,))
    if isinstance(b, Gather):
        return b if b.refs else b.flatten(_no_memory)
    return None


def _no_memory(addr: int, n: int) -> bytes:
    raise AssertionError("a gather list without references read memory")


def _as_buffers(data, what: str) -> list[bytes | Gather]:
    one = _buffer(data)
    if one is not None:
        return [one]
    if isinstance(data, (list, tuple)):
        out = [_buffer(b) for b in data]
        if all(b is not None for b in out):
            return out
    raise TypeError(f"{what} must be bytes, a Gather or a list of them, not "
                    f"{type(data).__name__}")


def _cut(b: bytes | Gather, lo: int, hi: int) -> bytes | Gather:
    """Bytes ``lo .. hi`` of a buffer (a gather list's references are cut, not read)."""
    return b.slice(lo, hi) if isinstance(b, Gather) else b[lo:hi]


def _join(bufs: list[bytes | Gather]) -> bytes | Gather:
    """The buffers as one: bytes, or a gather list if any buffer is one."""
    if not any(isinstance(b, Gather) for b in bufs):
        return b"".join(bufs)
    pieces: list = []
    for b in bufs:
        pieces += b.pieces if isinstance(b, Gather) else [b]
    return Gather(pieces)


class FixedDelayTimers:
    """PCBs each due a fixed ``delay`` after it was added, served by one kernel timer.

    Entries are due in the order they were added, so the kernel timer only ever waits for the
    oldest; :meth:`remove` takes an entry out at once (a dict delete), which keeps a timer that
    nearly every connection starts and cancels (TCP's connection-establishment timer) off the
    kernel's event heap. When the kernel timer finds the oldest entry gone it re-arms for the
    next one.

    Parameters
    ----------
    kernel : Kernel
    delay : int
        Picoseconds from :meth:`add` to expiry.
    expire : callable
        ``expire(pcb)``, called from the kernel timer for each PCB that comes due.
    """

    def __init__(self, kernel, delay: int, expire: Callable[[TcpPcb], None]):
        self._kernel = kernel
        self.delay = delay
        self._expire = expire
        self._due: dict[int, tuple[int, TcpPcb]] = {}
        self._armed = False

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, pcb: TcpPcb) -> bool:
        return id(pcb) in self._due

    def add(self, pcb: TcpPcb) -> None:
        """(Re)start ``pcb``'s timer: it expires ``delay`` from now."""
        t = self._kernel.now + self.delay
        self._due.pop(id(pcb), None)
        self._due[id(pcb)] = (t, pcb)
        if not self._armed:
            self._armed = True
            self._kernel.call_at(t, self._fire)

    def remove(self, pcb: TcpPcb) -> None:
        """Stop ``pcb``'s timer (nothing if it has none)."""
        self._due.pop(id(pcb), None)

    def _fire(self) -> None:
        self._armed = False
        now = self._kernel.now
        due = self._due
        while due:
            key = next(iter(due))
            t, pcb = due[key]
            if t > now:
                self._armed = True
                self._kernel.call_at(t, self._fire)
                return
            del due[key]
            self._expire(pcb)


class Tcp:
    """The TCP engine of one :class:`~sw.libos.net.stack.NetStack` (used through the stack).

    Parameters
    ----------
    stack : IpLayer
        The IP layer under it (the NetStack that owns it).
    config : TcpConfig
    seed : int
        Seeds the initial sequence numbers (deterministic runs).

    Raises
    ------
    TypeError
        If ``stack`` is not an :class:`IpLayer`.
    """

    EPHEMERAL = (49152, 65535)

    def __init__(self, stack: IpLayer, config: TcpConfig, seed: int = 0):
        if not isinstance(stack, IpLayer):
            raise TypeError(f"Tcp needs an IP layer (kernel, ip, mtu, name, charge_*, ip_output: "
                            f"tcp.IpLayer), not {stack!r}")
        self.stack = stack
        self.config = config
        self.stats = TcpStats()
        self.conns: dict[tuple, TcpPcb] = {}
        self.listeners: dict[int, Callable[[], TcpPcb | None]] = {}
        self.time_wait = TimeWaitTable(stack)
        self.keep_init = FixedDelayTimers(stack.kernel, config.keep_init_ps,
                                          self._keep_init_expired)
        self._rng = random.Random(seed)
        self._next_port = self.EPHEMERAL[0]
        self._delacks: dict[TcpPcb, None] = {}     # PCBs with TF_DELACK (insertion order)
        self._fasttimo: Callable[[], None] | None = None
        self._read: Callable[[int, int], bytes] | None = None   # attach_memory
        self._doc_touch = None
        self._page_size = 4096
        #: Set by an application with a handler in the kernel acting for some of its
        #: connections (an ASH: Cheetah's closing handler, :mod:`sw.cheetah.ash_handlers`):
        #: called with no argument whenever this TCP is about to act on its connections (a
        #: segment arrived, one of its timers fired), so the application brings back what the
        #: handler did (:meth:`handled_in_kernel`) first. It must not block.
        self.pull: Callable[[], None] | None = None
        #: Set when the interface's copy loop completes the checksums of the segments sent
        #: (Cheetah's ``ilp`` switch over the LANCE): segments are built with the
        #: pseudo-header's sum in the field and marked (``build_segment(sum_in_copy=True)``).
        self.sum_in_copy = False

    # -- application calls -----------------------------------------------------------------
    def listen(self, port: int, factory: Callable[[], TcpPcb | None]) -> None:
        """Accept connections to ``port``; ``factory()`` returns the application's PCB for each
        new connection (or None to refuse it with a reset, or :data:`DROP` to drop the SYN
        silently)."""
        self._check_port(port)
        if not callable(factory):
            raise TypeError(f"listen needs a PCB factory (callable), not {factory!r}")
        if port in self.listeners:
            raise ValueError(f"port {port} already has a listener")
        self.listeners[port] = factory

    def unlisten(self, port: int) -> None:
        if port not in self.listeners:
            raise ValueError(f"port {port} has no listener")
        del self.listeners[port]

    async def connect(self, pcb: TcpPcb, ip: bytes, port: int, local_port: int | None) -> None:
        self._check_pcb(pcb)
        self._check_port(port)
        if pcb.state is not TcpState.Closed:
            raise ValueError(f"connect needs a closed PCB, not one in {pcb.state.value}")
        if local_port is None:
            local_port = self._ephemeral(ip, port)
        else:
            self._check_port(local_port)
        key = (local_port, ip, port)
        if key in self.conns or key in self.time_wait:
            raise ValueError(f"connection {key!r} is in use (or in TIME_WAIT)")
        self._init_pcb(pcb, ip, local_port, port)
        pcb.state = TcpState.SynSent
        self.conns[key] = pcb
        self.keep_init.add(pcb)                 # 4.4BSD PRU_CONNECT: TCPTV_KEEP_INIT
        self.stats.connections_opened += 1
        await self._transmit(self._collect(pcb))

    async def send(self, pcb: TcpPcb, data, *, last: bool = False,
                   csum: int | Sequence[int | None] | None = None) -> int:
        self._check_pcb(pcb)
        bufs = _as_buffers(data, "send data")
        if pcb.state not in (TcpState.Established, TcpState.CloseWait, TcpState.SynSent,
                             TcpState.SynReceived):
            raise ValueError(f"cannot send on a connection in {pcb.state.value}")
        if pcb.fin_queued:
            raise ValueError("cannot send after the last send or close")
        if csum is None:
            sums: list[int | None] = [None] * len(bufs)
        elif isinstance(csum, int) and not isinstance(csum, bool):
            ck._check_sum(csum, "precomputed sum")
            bufs, sums = [_join(bufs)], [csum]
        elif isinstance(csum, (list, tuple)) and len(csum) == len(bufs):
            sums = [None if s is None else ck._check_sum(s, "precomputed sum") for s in csum]
        else:
            raise ValueError(f"csum must be None, a 16-bit sum or one per buffer "
                             f"({len(bufs)}), not {csum!r}")
        total = sum(len(b) for b in bufs)
        start = pcb.snd_end - 1
        pcb.snd_end += total
        if last:
            self._queue_fin(pcb)
        frames = self._collect(pcb, _SendData(start, bufs, sums))
        await self._transmit(frames)
        return max(0, min(total, pcb.snd_max - 1 - start))

    async def close(self, pcb: TcpPcb) -> None:
        self._check_pcb(pcb)
        if pcb.state is TcpState.SynSent:
            self._drop(pcb, "closed")
            return
        if pcb.fin_queued or pcb.state not in (TcpState.SynReceived, TcpState.Established,
                                               TcpState.CloseWait):
            return                              # already closing or closed
        self._queue_fin(pcb)
        await self._transmit(self._collect(pcb))

    async def abort(self, pcb: TcpPcb) -> None:
        self._check_pcb(pcb)
        if pcb.state is TcpState.Closed:
            return
        frames = []
        if pcb.state is not TcpState.SynSent:
            frames.append(self._rst_frame(pcb.remote_ip, pcb.local_port, pcb.remote_port,
                                          pcb.iss + pcb.snd_nxt, 0, 0))
        closed = self._drop(pcb, "aborted")
        await self._transmit(frames)
        await self._dispatch(closed)

    def handled_in_kernel(self, pcb: TcpPcb, *, fin_acked: bool, peer_fin: bool) -> None:
        """A handler in the kernel (an ASH) took segments of ``pcb`` after our FIN was sent:
        bring the connection to where they would have brought it.

        ``fin_acked``: it absorbed a segment that acknowledged everything we sent, our FIN
        included (FIN-WAIT-1 becomes FIN-WAIT-2 with its idle timer, as :meth:`_input_pcb`
        arms it; LAST-ACK ends the connection; already applied: nothing more). ``peer_fin``:
        it answered the peer's FIN, in sequence right after the data we received and
        acknowledging our FIN, with the ACK of it (FIN-WAIT-2 becomes TIME-WAIT: the PCB goes
        back to the application and an entry stays in the table, timed from now, which is no
        earlier than the handler's ACK, so TIME-WAIT lasts at least 2 MSL). The two may come
        in one call or in two. The events (``on_peer_closed``, ``on_closed``) are called now,
        a coroutine handler's rest in a task. Nothing is sent: the handler sent what was owed.

        Raises
        ------
        ValueError
            If ``pcb`` is not one of this TCP's connections with its FIN sent, or
            ``peer_fin`` comes while our FIN is not acknowledged (here or before).
        """
        self._check_pcb(pcb)
        if self.conns.get(pcb.key) is not pcb or not pcb.fin_queued \
                or pcb.state not in (TcpState.FinWait1, TcpState.FinWait2, TcpState.LastAck):
            raise ValueError(f"handled_in_kernel: {pcb!r} is not a connection of this TCP "
                             f"whose FIN was sent")
        if peer_fin and not fin_acked and pcb.snd_una < pcb.snd_end + 1:
            raise ValueError("handled_in_kernel: the peer's FIN is taken in the kernel only "
                             "once ours is acknowledged")
        events: list = []
        if fin_acked and pcb.snd_una < pcb.snd_end + 1:
            pcb.rtt_seq = None                  # when the ACK came is not known here: no sample
            self._ack_advance(pcb, pcb.snd_end + 1, events)
            if pcb.state is TcpState.FinWait1:
                pcb.state = TcpState.FinWait2
                self._arm_keep(pcb, self.config.max_idle, "fin_wait_2")
            elif pcb.state is TcpState.LastAck:
                events += self._drop(pcb, "closed")
        if peer_fin and pcb.state is TcpState.FinWait2:
            pcb.rcv_nxt += 1
            pcb.ack_pending = pcb.delack = False
            pcb.state = TcpState.TimeWait
            events.append((pcb.on_peer_closed, ()))
            events += self._enter_time_wait(pcb)
        for fn, args in events:
            result = fn(*args)
            if inspect.isawaitable(result):
                self.stack.kernel.spawn(result, name=f"{self.stack.name}.tcp-kernel-handled",
                                        daemon=True)

    def _pull(self) -> None:
        if self.pull is not None:
            self.pull()

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _check_pcb(pcb) -> None:
        if not isinstance(pcb, TcpPcb):
            raise TypeError(f"expected a TcpPcb, not {type(pcb).__name__}")

    @staticmethod
    def _check_port(port) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF:
            raise ValueError(f"TCP port must be 1..65535, not {port!r}")

    def _ephemeral(self, ip: bytes, port: int) -> int:
        lo, hi = self.EPHEMERAL
        for _ in range(hi - lo + 1):
            p = self._next_port
            self._next_port = lo if p >= hi else p + 1
            key = (p, ip, port)
            if key not in self.conns and key not in self.time_wait and p not in self.listeners:
                return p
        raise ValueError(f"no ephemeral port free towards {ip!r}:{port}")

    def _init_pcb(self, pcb: TcpPcb, ip: bytes, lport: int, rport: int) -> None:
        pcb._reset()
        pcb.stack = self.stack
        pcb.local_ip, pcb.remote_ip = self.stack.ip, ip
        pcb.local_port, pcb.remote_port = lport, rport
        pcb.iss = self._rng.getrandbits(32)
        pcb.rto = self.config.initial_rto_ps
        pcb._last_rcv = self.stack.kernel.now
        pcb.close_reason = None
        if pcb.rcv_wnd is None:
            pcb.rcv_wnd = self.config.rcv_wnd

    def _queue_fin(self, pcb: TcpPcb) -> None:
        pcb.fin_queued = True
        if pcb.state in (TcpState.SynReceived, TcpState.Established):
            pcb.state = TcpState.FinWait1
        elif pcb.state is TcpState.CloseWait:
            pcb.state = TcpState.LastAck
        # In SYN-SENT the FIN waits for the handshake (the state changes when it completes).

    def _set_timer(self, pcb: TcpPcb) -> None:
        self._cancel_timer(pcb)
        when = self.stack.kernel.now + pcb.rto
        pcb._timer_at = when
        pcb._timer = self.stack.kernel.call_at(when, lambda: self._timeout(pcb))

    @staticmethod
    def _cancel_timer(pcb: TcpPcb) -> None:
        pcb._timer = _stopped(pcb._timer)
        pcb._timer_at = None

    # -- output ----------------------------------------------------------------------------------
    def _payload(self, pcb: TcpPcb, off: int, n: int, data: _SendData | None):
        o = off - 1
        if data is not None:
            parts = data.parts(o, n)
            if parts is not None:
                return parts
        got = pcb.resupply(o, n)
        if (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], int)
                and not isinstance(got[1], bool)):
            bufs = _as_buffers(got[0], "resupplied data")
            parts = [(_join(bufs), ck._check_sum(got[1], "resupplied sum"))]
        elif isinstance(got, list) and got and all(isinstance(p, tuple) for p in got):
            parts = []
            for p in got:
                if len(p) != 2:
                    raise TypeError(f"resupply({o}, {n}) returned a part {p!r}, not a "
                                    f"(buffer, sum or None) pair")
                b = _buffer(p[0])
                if b is None:
                    raise TypeError(f"resupplied data must be bytes or a Gather, not "
                                    f"{type(p[0]).__name__}")
                parts.append((b, None if p[1] is None else ck._check_sum(p[1], "resupplied sum")))
        else:
            parts = [(b, None) for b in _as_buffers(got, "resupplied data")]
        have = sum(len(b) for b, _ in parts)
        if have != n:
            raise ValueError(f"resupply({o}, {n}) returned {have} bytes, not {n}")
        return parts

    def _segment(self, pcb: TcpPcb, off: int, flags: int, parts=(), mss: int | None = None):
        saved = sum(len(b) for b, s in parts if s is not None)
        read = 0
        if not self.sum_in_copy and any(s is None and isinstance(b, Gather) for b, s in parts):
            parts, read = self._sum_in_memory(parts)
        seg, summed = build_segment(pcb.local_ip, pcb.remote_ip, pcb.local_port, pcb.remote_port,
                                    pcb.iss + off, pcb.irs + pcb.rcv_nxt, flags, pcb.rcv_wnd,
                                    parts, mss=mss, sum_in_copy=self.sum_in_copy)
        summed += read
        self.stats.checksum_bytes_saved += saved
        pcb.ack_pending = pcb.delack = False
        pcb.rcv_acked = pcb.rcv_nxt
        return (pcb.remote_ip, seg, summed)

    def _collect(self, pcb: TcpPcb, data: _SendData | None = None, force: bool = False) -> list:
        """Advance the send state and build every segment the window allows now (sync).

        ``force`` is the persist timer's (4.4BSD ``t_force``): a one-byte probe into a zero
        window, or what a small window takes, whatever silly-window avoidance says.
        """
        out = []
        now = self.stack.kernel.now
        st = pcb.state
        if st in (TcpState.SynSent, TcpState.SynReceived):
            if pcb.snd_nxt == 0:
                flags = SYN | (ACK if st is TcpState.SynReceived else 0)
                # In SYN-SENT irs and rcv_nxt are 0, so the ack field goes out as 0.
                seg = self._segment(pcb, 0, flags, mss=self._our_mss())
                if pcb.snd_max == 0 and pcb.rtt_seq is None:
                    pcb.rtt_seq, pcb.rtt_start = 0, now
                pcb.snd_nxt = 1
                pcb.snd_max = max(pcb.snd_max, 1)
                if pcb._timer is None:
                    self._set_timer(pcb)
                out.append(seg)
            elif pcb.ack_pending and st is TcpState.SynReceived:
                out.append(self._segment(pcb, pcb.snd_nxt, ACK))
            return out
        if st in _SENDING:
            self._output_data(pcb, data, force, now, out)
        if pcb.ack_pending and st is not TcpState.Closed:
            out.append(self._segment(pcb, pcb.snd_nxt, ACK))
        return out

    def _output_data(self, pcb: TcpPcb, data: _SendData | None, force: bool, now: int,
                     out: list) -> None:
        """The data and FIN part of 4.4BSD ``tcp_output``: window, silly-window avoidance,
        persist."""
        wnd = pcb.snd_wnd
        if wnd == 0:
            if pcb.snd_una < pcb.snd_nxt and pcb.snd_una < pcb.snd_end and not force:
                # The window shrank to zero after we sent into it: stop retransmitting and
                # pull snd_nxt back to the (closed) window; persist below.
                self._cancel_timer(pcb)
                pcb.snd_nxt = pcb.snd_una
            if force and pcb.snd_nxt < pcb.snd_end:
                # The window probe: one byte, without the FIN. "In persist state, just set
                # snd_max": snd_nxt stays, and no retransmission timer is started.
                off = pcb.snd_nxt
                parts = self._payload(pcb, off, 1, data)
                out.append(self._segment(pcb, off, ACK | (PSH if off + 1 == pcb.snd_end else 0),
                                         parts))
                self.stats.window_probes += 1
                pcb.snd_max = max(pcb.snd_max, off + 1)
                return
        elif force:
            self._cancel_persist(pcb)              # leave persist state: transmit
            pcb.persist_shift = 0
        # "idle" is taken once, before any segment goes (tcp_output's idle).
        nagle_ok = self.config.nodelay or pcb.snd_max == pcb.snd_una
        while True:
            off = pcb.snd_nxt
            n = max(0, min(pcb.snd_end - off, pcb.snd_una + wnd - off, pcb.mss))
            fin = pcb.fin_queued and off + n == pcb.snd_end
            if n == 0 and not fin:
                break
            retrans = off < pcb.snd_max
            if (n and n < pcb.mss and not retrans and not force and not fin
                    and not (nagle_ok and off + n == pcb.snd_end)
                    and n < pcb.max_sndwnd // 2):
                # Sender silly-window avoidance (RFC 1122 4.2.3.4; 4.4BSD tcp_output): a
                # short segment that takes neither all the queued data nor half the largest
                # window offered waits for a larger window or the persist timer. A segment
                # that carries the not yet sent FIN goes before this test (ULTRIX 4.2
                # tcp_output.c: "If our state indicates that FIN should be sent and we have
                # not yet done so ... goto send"), so close() flushes data Nagle held.
                break
            parts = self._payload(pcb, off, n, data) if n else []
            if n == pcb.mss and len(parts) > 1:
                parts, n = _whole_pieces(parts, n)
                fin = pcb.fin_queued and off + n == pcb.snd_end
            flags = ACK | (PSH if n and off + n == pcb.snd_end else 0) | (FIN if fin else 0)
            out.append(self._segment(pcb, off, flags, parts))
            if retrans:
                pcb.retransmits += 1
            elif pcb.rtt_seq is None:
                pcb.rtt_seq, pcb.rtt_start = off, now
            pcb.snd_nxt += n + fin
            pcb.snd_max = max(pcb.snd_max, pcb.snd_nxt)
            if pcb._timer is None:
                self._set_timer(pcb)
                if pcb._persist is not None:       # transmitting ends persisting
                    self._cancel_persist(pcb)
                    pcb.persist_shift = 0
        if pcb.snd_una < pcb.snd_end and pcb._timer is None and pcb._persist is None:
            # Data is waiting and neither timer runs: enter persist state (4.4BSD: t_rxtshift
            # = 0; tcp_setpersist).
            pcb.persist_shift = 0
            pcb.rexmt_count = 0
            self._set_persist(pcb)

    # -- data left in memory (zero copy) ---------------------------------------------------------
    def attach_memory(self, read: Callable[[int, int], bytes], doc_touch=None, *,
                      page_size: int = 4096) -> None:
        """Let the TCP read data that segments carry by reference (:class:`Gather`).

        Parameters
        ----------
        read : callable(addr, n) -> bytes
            The memory's untimed read (``memory.read``); the TCP charges what its CPU does.
        doc_touch : sw.doc_touch.DocTouch, optional
            Told the document bytes the CPU reads (a sum over them) and the pages it maps to
            read them (one per page a read piece spans: the library maps a document page to
            read it and keeps no mapping).
        page_size : int
            The memory's page size.

        Raises
        ------
        TypeError
            For a read that is not callable.
        """
        if not callable(read):
            raise TypeError(f"read must be callable(addr, n), not {read!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, not {page_size!r}")
        self._read, self._doc_touch, self._page_size = read, doc_touch, page_size

    def _read_refs(self, g: Gather) -> bytes:
        """``g``'s bytes, read by the CPU (recorded on the host's DocTouch, the pages too: the
        library maps them to read)."""
        read = self._read
        if read is None:
            raise ValueError(f"{self.stack.name}: a segment carries data by reference and the "
                             f"TCP has no memory to read it (Tcp.attach_memory)")
        dt = self._doc_touch
        if dt is not None and g.doc_bytes:
            ps = self._page_size
            dt.touched(g.doc_bytes)
            dt.mapped(sum((r.addr + r.length - 1) // ps - r.addr // ps + 1
                          for r in g.refs if r.doc))
        return g.flatten(read)

    def _sum_in_memory(self, parts) -> tuple[list, int]:
        """Sum the referenced pieces without a sum (the CPU reads them where they lie);
        returns the parts with sums and the bytes read."""
        out, n = [], 0
        for b, s in parts:
            if s is None and isinstance(b, Gather):
                s = ck.ones_sum(self._read_refs(b))
                n += len(b)
            out.append((b, s))
        return out, n

    def _our_mss(self) -> int:
        return mss_for(self.config, self.stack.mtu)

    def _rst_frame(self, ip: bytes, lport: int, rport: int, seq: int, ack: int, flags: int):
        seg, summed = build_segment(self.stack.ip, ip, lport, rport, seq & _M32, ack & _M32,
                                    RST | flags, 0)
        self.stats.resets_sent += 1
        return (ip, seg, summed)

    async def _transmit(self, frames: list) -> None:
        st = self.stack
        for ip, seg, summed in frames:
            self.stats.segments_out += 1
            await st.charge_protocol("tcp")
            await st.charge_checksum(summed)
            await st.ip_output(ip, PROTO_TCP, seg)

    async def _dispatch(self, events: list) -> None:
        for fn, args in events:
            await invoke(fn, *args)

    def _drop(self, pcb: TcpPcb, reason: str) -> list:
        """Close ``pcb`` now: forget it and return the ``on_closed`` event to dispatch."""
        self._cancel_timer(pcb)
        self._cancel_persist(pcb)
        self._cancel_keep(pcb)
        self.keep_init.remove(pcb)
        if self.conns.get(pcb.key) is pcb:
            del self.conns[pcb.key]
        pcb.state = TcpState.Closed
        pcb.close_reason = reason
        pcb.ooo = []
        return [(pcb.on_closed, (reason,))]

    def _enter_time_wait(self, pcb: TcpPcb) -> list:
        self.time_wait.add(pcb.key, pcb.iss + pcb.snd_nxt, pcb.irs + pcb.rcv_nxt,
                           self.config.time_wait)
        return self._drop(pcb, "closed")

    # -- delayed ACKs (4.3BSD TF_DELACK and tcp_fasttimo) --------------------------------------
    def _delay_ack(self, pcb: TcpPcb) -> None:
        """Owe ``pcb``'s peer an ACK that the next segment or the next fast tick sends."""
        pcb.delack = True
        self._delacks[pcb] = None
        if self._fasttimo is None:
            # tcp_fasttimo runs every 200 ms of the machine's clock (PR_FASTHZ = 5), the same
            # ticks for every connection: the next one after now.
            k = self.stack.kernel
            tick = self.config.delack_tick_ps
            self._fasttimo = k.call_at((k.now // tick + 1) * tick, self._fast_timeout)

    def _fast_timeout(self) -> None:
        """4.3BSD ``tcp_fasttimo``: every connection with TF_DELACK gets TF_ACKNOW and
        ``tcp_output`` (which may send data as well)."""
        self._fasttimo = None
        self._pull()
        pcbs, self._delacks = list(self._delacks), {}
        frames: list = []
        for pcb in pcbs:
            if pcb.delack and self.conns.get(pcb.key) is pcb and pcb.state is not TcpState.Closed:
                self.stats.delayed_acks += 1
                pcb.ack_pending = True
                frames += self._collect(pcb)
        if frames:
            self._from_timer(frames, [], "delack")

    async def received(self, pcb: TcpPcb, unread: int = 0) -> None:
        """The application has taken data from the receive buffer, ``unread`` bytes are left
        (BSD ``PRU_RCVD``): with a delayed ACK owed, ``tcp_output``'s window-update test may
        send it now: the window would open by ``adv`` = bytes received since the last
        segment sent less ``unread``, and an update goes when ``adv`` is two segments with
        the buffer empty, or 35 % of the buffer (ULTRIX 4.2 tcp_output.c).

        Raises
        ------
        ValueError
            If ``unread`` is not a non-negative int.
        """
        self._check_pcb(pcb)
        if isinstance(unread, bool) or not isinstance(unread, int) or unread < 0:
            raise ValueError(f"received: unread must be a byte count >= 0, not {unread!r}")
        if not pcb.delack or self.conns.get(pcb.key) is not pcb:
            return
        adv = pcb.rcv_nxt - pcb.rcv_acked - unread
        if (unread == 0 and adv >= 2 * pcb.mss) or 100 * adv // pcb.rcv_wnd >= 35:
            pcb.ack_pending = True
            await self._transmit(self._collect(pcb))

    # -- timers ----------------------------------------------------------------------------------
    def _timeout(self, pcb: TcpPcb) -> None:
        pcb._timer = None
        pcb._timer_at = None
        self._pull()
        if pcb.state in (TcpState.Closed, TcpState.Listen, TcpState.TimeWait):
            return
        if pcb.snd_una >= pcb.snd_max:
            return
        pcb.timeouts += 1
        self.stats.retransmit_timeouts += 1
        pcb.rexmt_count += 1
        k = self.stack.kernel
        if pcb.rexmt_count > self.config.max_retransmits:
            # 4.4BSD tcp_timer.c: t_rxtshift > TCP_MAXRXTSHIFT: tcp_drop (with its reset).
            self._drop_with_reset(pcb, "timeout", "timeout")
            return
        pcb.rto = min(pcb.rto * 2, self.config.max_rto_ps)
        pcb.rtt_seq = None                      # Karn: nothing retransmitted is timed
        pcb.snd_nxt = pcb.snd_una
        k.spawn(self._retransmit(pcb), name=f"{self.stack.name}.tcp-rexmt", daemon=True)

    async def _retransmit(self, pcb: TcpPcb) -> None:
        await self._transmit(self._collect(pcb))

    def _from_timer(self, frames: list, events: list, what: str) -> None:
        """Send ``frames`` and dispatch ``events`` in a task (a timer runs in no task)."""
        self.stack.kernel.spawn(self._send_and_dispatch(frames, events),
                                name=f"{self.stack.name}.tcp-{what}", daemon=True)

    async def _send_and_dispatch(self, frames: list, events: list) -> None:
        await self._transmit(frames)
        await self._dispatch(events)

    def _drop_with_reset(self, pcb: TcpPcb, reason: str, what: str) -> None:
        """4.4BSD ``tcp_drop`` from a timer: a connection that has received a SYN sends
        RST|ACK (``tcp_outflags[TCPS_CLOSED]``, a segment without data: sequence number
        ``snd_max``), then it is closed."""
        frames = []
        if pcb.state is not TcpState.SynSent:
            frames.append(self._rst_frame(pcb.remote_ip, pcb.local_port, pcb.remote_port,
                                          pcb.iss + pcb.snd_max, pcb.irs + pcb.rcv_nxt, ACK))
        self._from_timer(frames, self._drop(pcb, reason), what)

    # persist (TCPT_PERSIST)
    def _set_persist(self, pcb: TcpPcb) -> None:
        """4.4BSD ``tcp_setpersist``: (re)start the persist timer at the RTO estimate times
        ``tcp_backoff[persist_shift]``, bounded to [TCPTV_PERSMIN, TCPTV_PERSMAX], and back off.

        The estimate is ``srtt + 2 rttvar`` (BSD's ``((t_srtt >> 2) + t_rttvar) >> 1``), or
        the initial RTO before any RTT sample.
        """
        self._cancel_persist(pcb)
        base = self.config.initial_rto_ps if pcb.srtt is None else pcb.srtt + 2 * pcb.rttvar
        t = min(max(base * TCP_BACKOFF[pcb.persist_shift], TCPTV_PERSMIN), TCPTV_PERSMAX)
        if pcb.persist_shift < TCP_MAXRXTSHIFT:
            pcb.persist_shift += 1
        k = self.stack.kernel
        pcb._persist = k.call_at(k.now + t, lambda: self._persist_timeout(pcb))

    @staticmethod
    def _cancel_persist(pcb: TcpPcb) -> None:
        pcb._persist = _stopped(pcb._persist)

    def _persist_timeout(self, pcb: TcpPcb) -> None:
        """4.4BSD tcp_timer.c TCPT_PERSIST: restart the timer (backed off), then force
        output: a window probe into a zero window, else what the window takes."""
        pcb._persist = None
        self._pull()
        if pcb.state not in _SENDING or self.conns.get(pcb.key) is not pcb:
            return
        self.stats.persist_timeouts += 1
        self._set_persist(pcb)
        self._from_timer(self._collect(pcb, force=True), [], "persist")

    # connection establishment, keepalive, FIN-WAIT-2 (TCPT_KEEP, TCPT_2MSL)
    def _keep_init_expired(self, pcb: TcpPcb) -> None:
        """4.4BSD tcp_timer.c TCPT_KEEP before ESTABLISHED: drop the connection (a listener's
        embryonic connection is freed; its owner sees ``on_closed("timeout")``)."""
        if (pcb.state not in (TcpState.SynSent, TcpState.SynReceived)
                or self.conns.get(pcb.key) is not pcb):
            return
        self.stats.keep_timeouts += 1
        self.stats.keep_drops += 1
        self._drop_with_reset(pcb, "timeout", "keep-init")

    def _established(self, pcb: TcpPcb) -> None:
        """The handshake completed: stop the establishment timer; with ``keepalive`` start
        the idle timer (4.4BSD sets TCPT_KEEP to ``tcp_keepidle`` here)."""
        self.keep_init.remove(pcb)
        if pcb.keepalive:
            self._arm_keep(pcb, self.config.keep_idle_ps, "idle")

    def _arm_keep(self, pcb: TcpPcb, delay: int, kind: str) -> None:
        self._cancel_keep(pcb)
        k = self.stack.kernel
        pcb._keep_kind = kind
        pcb._keep = k.call_at(k.now + delay, lambda: self._keep_timeout(pcb))

    @staticmethod
    def _cancel_keep(pcb: TcpPcb) -> None:
        pcb._keep = _stopped(pcb._keep)
        pcb._keep_kind = None

    def _keep_timeout(self, pcb: TcpPcb) -> None:
        """4.4BSD tcp_timer.c: TCPT_2MSL in FIN_WAIT_2 (close after ``tcp_maxidle`` of
        idleness, checking every ``tcp_keepintvl``) and TCPT_KEEP with SO_KEEPALIVE (probe
        after ``tcp_keepidle``, every ``tcp_keepintvl``; drop after ``keepidle + maxidle``)."""
        kind = pcb._keep_kind
        pcb._keep = None
        pcb._keep_kind = None
        self._pull()
        if self.conns.get(pcb.key) is not pcb:
            return
        cfg = self.config
        idle = self.stack.kernel.now - pcb._last_rcv
        if kind == "fin_wait_2":
            if pcb.state is not TcpState.FinWait2:
                return
            if idle <= cfg.max_idle:
                self._arm_keep(pcb, cfg.keep_intvl_ps, kind)
                return
            self.stats.fin_wait_2_drops += 1
            self._from_timer([], self._drop(pcb, "timeout"), "fin-wait-2")   # tcp_close: no RST
            return
        if pcb.state not in (TcpState.Established, TcpState.CloseWait):
            return                              # closing: the other timers take over
        self.stats.keep_timeouts += 1
        if idle >= cfg.keep_idle_ps + cfg.max_idle:
            self.stats.keep_drops += 1
            self._drop_with_reset(pcb, "timeout", "keepalive")
        elif idle >= cfg.keep_idle_ps:
            # tcp_respond(tp, ..., rcv_nxt, snd_una - 1, 0): an old sequence number, so the
            # peer must answer with an ACK.
            self.stats.keepalive_probes += 1
            self._arm_keep(pcb, cfg.keep_intvl_ps, kind)
            self._from_timer([self._segment(pcb, pcb.snd_una - 1, ACK)], [], "keepalive")
        else:                                   # a segment came since: wait from it
            self._arm_keep(pcb, pcb._last_rcv + cfg.keep_idle_ps - self.stack.kernel.now, kind)

    def _rtt_sample(self, pcb: TcpPcb, r: int) -> None:
        cfg = self.config
        if pcb.srtt is None:
            pcb.srtt, pcb.rttvar = r, r // 2
        else:
            pcb.rttvar = (3 * pcb.rttvar + abs(pcb.srtt - r)) // 4
            pcb.srtt = (7 * pcb.srtt + r) // 8
        self._rto_from_estimate(pcb)
        pcb.rtt_samples += 1
        if pcb.rtt_history is not None:
            pcb.rtt_history.append(r)

    def _rto_from_estimate(self, pcb: TcpPcb) -> None:
        cfg = self.config
        pcb.rto = min(max(pcb.srtt + max(cfg.granularity_ps, 4 * pcb.rttvar), cfg.min_rto_ps),
                      cfg.max_rto_ps)

    # -- input -----------------------------------------------------------------------------------
    async def input(self, src: bytes, dst: bytes, data: bytes, *,
                    segment_sum: int | None = None) -> None:
        """Process one segment from ``src`` (the IP layer has checked the IP header).

        ``segment_sum``: the one's-complement sum of ``data`` as an ILP pipe computed it while
        the segment was copied (the caller charged what it took); the checksum is checked
        with it and not summed or charged here."""
        st = self.stack
        self._pull()
        self.stats.segments_in += 1
        await st.charge_protocol("tcp")
        if segment_sum is None:
            await st.charge_checksum(len(data) + 12)
        try:
            seg = parse_segment(src, dst, data, segment_sum=segment_sum)
        except ValueError as e:
            if "checksum" in str(e):
                self.stats.bad_checksum += 1
            else:
                self.stats.malformed += 1
            return
        key = (seg.dport, src, seg.sport)
        pcb = self.conns.get(key)
        tw = self.time_wait.get(key) if pcb is None else None
        factory = self.listeners.get(seg.dport)
        new_conn = pcb is None and factory is not None and seg.flags & (SYN | ACK | RST) == SYN
        examined = self._lookup_cost(key, pcb is not None, tw is not None, new_conn)
        self.stats.pcb_entries_examined += examined
        await st.charge_demux(examined)
        if pcb is not None:
            await self._input_pcb(pcb, seg)
            return
        if tw is not None:
            if await self._input_time_wait(key, tw, src, seg):
                return
        if new_conn:
            await self._accept(factory, src, seg)
            self._accepted(key)
            return
        if factory is not None:
            # RFC 793 p. 65-66, LISTEN: a RST is ignored; an ACK is answered with a reset
            # (below); "any other control or text-bearing segment (not containing SYN) ...
            # drop the segment and return".
            if seg.flags & RST:
                return
            if not seg.flags & ACK:
                self.stats.listen_non_syn_drops += 1
                return
        await self._reset_reply(src, seg)

    def _lookup_cost(self, key: tuple, found: bool, in_time_wait: bool, new_conn: bool) -> int:
        """PCB entries a lookup of ``key`` examines (charged as demultiplexing): one hash probe
        (two on a miss), or with ``pcb_lookup="linear"`` the place of the PCB in the list.
        A stack with another PCB organisation (4.3BSD's, in sw/ultrix) overrides this."""
        if self.config.pcb_lookup != "linear":
            return 1 if found else 2
        if not found:
            return 1 + len(self.conns)
        for i, k in enumerate(self.conns):
            if k == key:
                return i + 1
        return 1

    def _accepted(self, key: tuple) -> None:
        """A listener accepted a new connection ``key`` (a hook for PCB bookkeeping)."""

    async def _reset_reply(self, src: bytes, seg: TcpSegment) -> None:
        """RFC 793: a segment for no connection is answered with a reset (unless it is one)."""
        if seg.flags & RST:
            return
        if seg.flags & ACK:
            f = self._rst_frame(src, seg.dport, seg.sport, seg.ack, 0, 0)
        else:
            f = self._rst_frame(src, seg.dport, seg.sport, 0, seg.seq + seg.seg_len, ACK)
        await self._transmit([f])

    async def _input_time_wait(self, key, tw: TimeWaitEntry, src: bytes, seg: TcpSegment) -> bool:
        """Handle a segment for a TIME_WAIT entry; False lets a new SYN through (reuse)."""
        self.stats.time_wait_hits += 1
        if seg.flags & RST:
            return True                         # RFC 1337: no TIME_WAIT assassination

        if seg.flags & SYN and not seg.flags & ACK:
            # RFC 1122 4.2.2.13: a new SYN beyond the old connection's sequence space may
            # reopen it from TIME_WAIT.
            if ((seg.seq - tw.rcv_nxt) & _M32) < (1 << 31) and seg.dport in self.listeners:
                self.time_wait.remove(key)
                return False
        if not (seg.flags & FIN or seg.payload):
            return True                         # a bare ACK: answering it could ping-pong
        if seg.flags & FIN:
            self.time_wait.restart(key, self.config.time_wait)
        seg_ack, summed = build_segment(self.stack.ip, src, seg.dport, seg.sport, tw.snd_nxt,
                                        tw.rcv_nxt, ACK, self.config.rcv_wnd)
        await self._transmit([(src, seg_ack, summed)])
        return True

    async def _accept(self, factory, src: bytes, seg: TcpSegment) -> None:
        pcb = factory()
        if pcb is DROP:
            # The listener's queue is full: 4.3/4.4BSD tcp_input drops the SYN without a
            # reset (``so = sonewconn(so); if (so == 0) goto drop;``); the peer retransmits.
            self.stats.listen_drops += 1
            return
        if pcb is None:
            self.stats.refused += 1
            await self._reset_reply(src, seg)
            return
        self._check_pcb(pcb)
        if pcb.state is not TcpState.Closed:
            raise ValueError(f"the listener's factory returned a PCB in {pcb.state.value}, "
                             "not a closed one")
        self._init_pcb(pcb, src, seg.dport, seg.sport)
        pcb.irs = seg.seq
        pcb.rcv_nxt = 1
        pcb.snd_wnd = pcb.max_sndwnd = seg.wnd
        pcb.snd_wl1, pcb.snd_wl2 = 0, 0
        pcb.mss = min(seg.mss or 536, self._our_mss())
        pcb.state = TcpState.SynReceived
        self.conns[pcb.key] = pcb
        self.keep_init.add(pcb)                 # 4.4BSD tcp_input, LISTEN: TCPTV_KEEP_INIT
        self.stats.connections_accepted += 1
        await self._transmit(self._collect(pcb))

    async def _input_pcb(self, pcb: TcpPcb, seg: TcpSegment) -> None:
        events: list = []
        frames: list = []
        pcb._last_rcv = self.stack.kernel.now       # BSD: t_idle = 0
        if pcb.state is TcpState.SynSent:
            self._syn_sent(pcb, seg, events, frames)
        else:
            self._synchronized(pcb, seg, events, frames)
        await self._transmit(frames)
        closing = [e for e in events if e[0] == pcb.on_closed]
        await self._dispatch([e for e in events if e[0] != pcb.on_closed])
        if pcb.state is not TcpState.Closed:
            frames = self._collect(pcb)
            if pcb._to_time_wait:
                pcb._to_time_wait = False
                closing += self._enter_time_wait(pcb)
            elif pcb.state is TcpState.FinWait2 and pcb._keep_kind != "fin_wait_2":
                # 4.4BSD tcp_input, FIN_WAIT_1 when our FIN is acked and the user can receive
                # no more: TCPT_2MSL = tcp_maxidle, so a peer that never sends its FIN does
                # not hold the connection forever.
                self._arm_keep(pcb, self.config.max_idle, "fin_wait_2")
            await self._transmit(frames)
        await self._dispatch(closing)

    def _syn_sent(self, pcb: TcpPcb, seg: TcpSegment, events: list, frames: list) -> None:
        ack = None
        if seg.flags & ACK:
            ack = _unwrap(seg.ack, pcb.iss, pcb.snd_una)
            if ack <= 0 or ack > pcb.snd_max:
                if not seg.flags & RST:
                    frames.append(self._rst_frame(pcb.remote_ip, pcb.local_port,
                                                  pcb.remote_port, seg.ack, 0, 0))
                return
        if seg.flags & RST:
            if ack is not None:
                self.stats.resets_received += 1
                events += self._drop(pcb, "refused")
            return
        if not seg.flags & SYN:
            return
        pcb.irs = seg.seq
        pcb.rcv_nxt = 1
        pcb.mss = min(seg.mss or 536, self._our_mss())
        pcb.snd_wnd, pcb.snd_wl1, pcb.snd_wl2 = seg.wnd, 0, ack or 0
        pcb.max_sndwnd = max(pcb.max_sndwnd, seg.wnd)
        if ack is not None:
            self._ack_advance(pcb, ack, events)
            pcb.state = TcpState.FinWait1 if pcb.fin_queued else TcpState.Established
            self._established(pcb)
            pcb.ack_pending = True
            events.insert(0, (pcb.on_connected, ()))
        else:
            # Simultaneous open: answer with SYN-ACK (the SYN is sent again with an ACK).
            pcb.state = TcpState.SynReceived
            pcb.snd_nxt = 0
            pcb.rtt_seq = None

    def _acceptable(self, pcb: TcpPcb, seq: int, seg_len: int) -> bool:
        lo, hi = pcb.rcv_nxt, pcb.rcv_nxt + pcb.rcv_wnd
        if seg_len == 0:
            return lo <= seq < hi or seq == lo
        return lo <= seq < hi or lo <= seq + seg_len - 1 < hi

    def _synchronized(self, pcb: TcpPcb, seg: TcpSegment, events: list, frames: list) -> None:
        seq = _unwrap(seg.seq, pcb.irs, pcb.rcv_nxt)
        flags = seg.flags
        if (pcb.state is TcpState.SynReceived and flags & SYN and not flags & ACK
                and seq == 0):
            pcb.snd_nxt = 0                     # our SYN-ACK was lost: send it again
            return
        if not self._acceptable(pcb, seq, seg.seg_len):
            self.stats.duplicates += 1
            if not flags & RST:
                pcb.ack_pending = True
            return
        if flags & RST:
            self.stats.resets_received += 1
            events += self._drop(pcb, "reset")
            return
        if flags & SYN:
            # A SYN inside the window of a synchronized connection: the peer restarted.
            frames.append(self._rst_frame(pcb.remote_ip, pcb.local_port, pcb.remote_port,
                                          pcb.iss + pcb.snd_nxt, 0, 0))
            events += self._drop(pcb, "reset")
            return
        if not flags & ACK:
            return
        ack = _unwrap(seg.ack, pcb.iss, pcb.snd_una)
        if pcb.state is TcpState.SynReceived:
            if not pcb.snd_una < ack <= pcb.snd_max:
                frames.append(self._rst_frame(pcb.remote_ip, pcb.local_port, pcb.remote_port,
                                              seg.ack, 0, 0))
                return
            pcb.state = TcpState.FinWait1 if pcb.fin_queued else TcpState.Established
            self._established(pcb)
            events.append((pcb.on_connected, ()))
        if ack > pcb.snd_max:
            pcb.ack_pending = True              # acknowledges something never sent
            return
        if ack > pcb.snd_una:
            self._ack_advance(pcb, ack, events)
        if seq > pcb.snd_wl1 or (seq == pcb.snd_wl1 and ack >= pcb.snd_wl2):
            pcb.snd_wnd, pcb.snd_wl1, pcb.snd_wl2 = seg.wnd, seq, ack
            if seg.wnd > pcb.max_sndwnd:
                pcb.max_sndwnd = seg.wnd
        fin_acked = pcb.fin_queued and pcb.snd_una == pcb.snd_end + 1
        if fin_acked:
            if pcb.state is TcpState.FinWait1:
                pcb.state = TcpState.FinWait2
            elif pcb.state is TcpState.Closing:
                pcb._to_time_wait = True
                return
            elif pcb.state is TcpState.LastAck:
                events += self._drop(pcb, "closed")
                return
        # -- data and FIN ---------------------------------------------------------------------
        payload = seg.payload
        fin = bool(flags & FIN)
        if not payload and not fin:
            return
        if self.config.delayed_ack and not fin and pcb.state in _RECEIVING:
            self._delay_ack(pcb)                # 4.3BSD dodata: TF_DELACK (a FIN: TF_ACKNOW)
        else:
            pcb.ack_pending = True
        if pcb.state not in _RECEIVING:
            return                              # after the peer's FIN: ignore, acknowledge
        end = pcb.rcv_nxt + pcb.rcv_wnd
        if seq + len(payload) > end:            # trim to the window (and lose the FIN)
            payload, fin = payload[:max(0, end - seq)], False
        if seq > pcb.rcv_nxt:
            self.stats.out_of_order += 1
            if payload or fin:
                _reass_insert(pcb.ooo, seq, payload, fin)
            return
        self._deliver(pcb, seq, payload, fin, events)
        q = pcb.ooo
        while q and q[0][0] <= pcb.rcv_nxt and pcb.state in _RECEIVING:
            k, p, f = q.pop(0)
            self._deliver(pcb, k, p, f, events)
        if pcb.state not in _RECEIVING:
            pcb.ooo = []

    def _deliver(self, pcb: TcpPcb, seq: int, payload: bytes, fin: bool, events: list) -> None:
        cut = pcb.rcv_nxt - seq
        if cut > len(payload):
            return                              # entirely old (its FIN too)
        payload = payload[cut:]
        if payload:
            pcb.rcv_nxt += len(payload)
            pcb.bytes_received += len(payload)
            if self.config.rx_copy:
                events.append((self.stack.charge_copy, (len(payload),)))
            events.append((pcb.on_readable, (payload,)))
        if fin:
            pcb.rcv_nxt += 1
            if pcb.state is TcpState.Established:
                pcb.state = TcpState.CloseWait
            elif pcb.state is TcpState.FinWait1:
                pcb.state = TcpState.Closing
            elif pcb.state is TcpState.FinWait2:
                pcb._to_time_wait = True
                pcb.state = TcpState.TimeWait
            events.append((pcb.on_peer_closed, ()))

    def _ack_advance(self, pcb: TcpPcb, ack: int, events: list) -> None:
        old = pcb.snd_una
        if pcb.rtt_seq is not None and ack > pcb.rtt_seq:
            self._rtt_sample(pcb, self.stack.kernel.now - pcb.rtt_start)
            pcb.rtt_seq = None
        pcb.snd_una = ack
        if pcb.snd_nxt < ack:
            pcb.snd_nxt = ack
        if pcb.rexmt_count and pcb.srtt is not None:
            # New data was acknowledged: drop the backoff and use the estimate again (as
            # 4.4BSD does). This takes no RTT sample, so Karn's rule still holds; without it
            # a lossy recovery would crawl at the backed-off timeout, one hole per timeout.
            self._rto_from_estimate(pcb)
        pcb.rexmt_count = 0
        if ack >= pcb.snd_max:
            self._cancel_timer(pcb)
        elif pcb._persist is None:              # 4.4BSD: persisting keeps REXMT off
            self._set_timer(pcb)
        data = max(0, min(ack, pcb.snd_end) - max(old, 1))
        if data:
            events.append((pcb.on_writable, (data,)))
