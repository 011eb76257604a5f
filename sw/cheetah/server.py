"""Cheetah: the HTTP server of the exokernel, on the library OS (SYSTEM.md section 5).

:class:`CheetahServer` runs on a :class:`~sw.host.Host`: the library OS's TCP/IP stack
(:class:`~sw.libos.net.NetStack`) on the host's interface and CPU, and its file system
(:class:`~sw.libos.fs.FileSystem`) on the host's disk. With an exokernel in
``host.extra["aegis"]`` the server only creates its environment and installs its packet
filters (TCP to port 80 of its address, ARP: :class:`~sw.libos.net.aegis_env.AegisNetwork`);
the kernel, which owns the card's receive path (:meth:`~sw.exokernel.aegis.Aegis.bind_netdev`),
upcalls it with its frames after demultiplexing them (demux and upcall costs show in the CPU
breakdown), and it sends every frame through Aegis's transmit system call
(:meth:`~sw.exokernel.aegis.Aegis.transmit`); otherwise frames go straight between the stack
and the interface.

What each :class:`~sw.cheetah.config.CheetahConfig` switch changes
---------------------------------------------------------------------
=============================  ==================================================================
switch off                     extra work per request
=============================  ==================================================================
``libos``                      a system call per socket/file operation (accept, read, open,
                               read file, write, close), a copy of the response into a socket
                               buffer, BSD-style linear PCB search
``event_loop``                 a thread per request: creation, a switch in and out; the
                               request's ACK is sent alone (the reply comes later)
``request_pool``               allocate and initialize a request structure per connection
``parse_in_place``             the stack copies the request into the application's buffer
``merged_segments``            the header, the data and the FIN go in separate segments
``precomputed_checksums``      the stack sums every byte of the header and the document
``precomputed_headers``        a stat and the formatting of the header per request
``inline_prefetch``            an HTML page's inline images are read from disk on their own
                               (on: the cache's miss policy reads them with the page, one device
                               request per contiguous run, and its replacement policy keeps them
                               until they are asked for)
``cache_as_retransmit_pool``   the document is copied out of the file cache into a buffer
                               the request keeps for retransmissions
=============================  ==================================================================

Zero copy (issue 16)
--------------------
On Aegis, when the disk moves data by DMA (``blockdev.read_into``: the disk driver's block
device), the file cache is physical (:mod:`sw.libos.fs.physical`): its blocks are in pages
Aegis gave the server's environment, and the disk reads them by DMA straight into those pages.
A reply's document pieces are then references to the pinned cache blocks
(:class:`~sw.libos.net.gather.PhysRef` in a :class:`~sw.libos.net.gather.Gather`), and so are
the pieces TCP asks again to retransmit (:meth:`CheetahServer._resupply`): headers are bytes
the CPU built, with their precomputed sums, and the document's sums are precomputed for
pieces of the interface's MSS, at most a page (:attr:`CheetahServer.piece_bytes`). A DMA card
(the AN2) sends the references by DMA: with every specialization on, the CPU never touches,
invalidates or maps a byte of the document. What it does to them otherwise is counted on
``host.doc_touch`` (:mod:`sw.doc_touch`; :meth:`stats` reports the three totals, reset with
``host.doc_touch.reset()``):

* ``cache_as_retransmit_pool`` off: the copy out of the file cache (each byte once; the copy
  lands in pages of the request's own, from which the card takes it by reference; the cache
  pages read and the copy's pages written are mapped);
* ``precomputed_checksums`` off: the stack sums the document where it lies (mapped to read);
* ``libos`` off: the copy into the socket buffer;
* over the LANCE card: its driver's programmed-I/O copy of every byte sent (and sent again),
  through unmapped kernel space; as the CPU reads the data, the file cache invalidates the
  stale data-cache lines of every block the disk DMAs in (counted as flushed), which it
  need not do when no CPU ever reads a document (the R3000's cache is write-through, so a DMA
  out of memory needs no flush).

The closing ASH (issue 17, beyond the paper)
--------------------------------------------
With the ``ash`` switch (stage ``+ash``) Cheetah installs an ASH in Aegis with its TCP filter
(over the AN2, on its VCs) and, after queueing a reply's FIN, arms the connection in the ASH's
table in its own memory (:mod:`sw.cheetah.ash_handlers`; charged ``ash_arm`` and a checksum
of the prebuilt ACK's 52 header bytes). The kernel then takes, without an upcall, the client's
ACK of the FIN and the client's FIN (answered with the prebuilt ACK); their TCP input and the
ACK's output are not done by the library. The library learns what the ASH did when it next
runs (``Tcp.pull``: each segment upcalled, each TCP timer; ``ash_check`` each time,
``ash_scan_slot`` per armed connection when the ASH changed one, ``ash_apply`` per connection
brought forward), so FIN-WAIT-2, TIME-WAIT and the request structure's return happen then
(TIME-WAIT is timed from that moment: it lasts at least 2 MSL after the ASH's ACK). A
connection whose ASH slot is taken is not armed (``ash_not_armed``); any frame the ASH does
not take goes the ordinary way, retransmissions included.

Software ILP (issue 17, beyond the paper)
-----------------------------------------
With the ``ilp`` switch (stage ``+ilp``, after ``+ash``) Cheetah hands the kernel its pipe
list (:data:`ILP_PIPES`: the Internet checksum) for the card's receive and transmit copies
(:meth:`~sw.exokernel.aegis.Aegis.install_rx_pipes`, ``install_tx_pipes``), which compile it
with the bound card's data-movement rule (dynamic ILP, :mod:`sw.libos.ilp.inloop`). Over the
LANCE (programmed I/O) the received frame is summed as the driver copies it out of the card
and the TCP checksum is checked with that sum; every segment sent leaves the stack unsummed
and the driver's copy into the card completes its checksum (the card's posted writes hide the
adds). Over the AN2 the data moves by DMA: no copy to fuse with (``ilp_rx_fused`` and
``ilp_tx_fused`` are 0) and nothing changes; the one pass left is the checksum itself, which
only the card's own pipes (``hwilp``) could take off the CPU.

The card's pipes (issue 17, beyond the paper)
---------------------------------------------
With the ``hwilp`` switch (stage ``+hwilp``, after ``+ilp``) Cheetah asks the kernel to bind
the card's own pipes (:data:`ILP_PIPES`;
:meth:`~sw.exokernel.aegis.Aegis.install_card_rx_pipes`, ``install_card_tx_pipes``), counted
in ``hwilp_rx_bound`` and ``hwilp_tx_bound``. Over the AN2 the kernel writes Cheetah's VC
entries to sum every PDU from its IP header on, and the stack checks each TCP checksum with
the completion's sum and the pseudo-header (a few adds in line) instead of its in_cksum pass.
The card's transmit pipe reads each PDU twice (the link idles during the first read), so
Cheetah binds it only without the precomputed checksums (``no-precomputed_checksums``): then
every segment sent leaves the stack with the pseudo-header's sum in its checksum field and
the card completes it (Csum on the PDU's First descriptor), and the CPU sums no header or
document byte. With them (the stage ``+hwilp``) the CPU sums each header and adds the
document piece's stored sum, as before. The LANCE has no pipes: both counters are 0 and Cheetah does what ``ilp`` does (or,
without it, what the paper's Cheetah does). Without an exokernel nothing binds the card's
pipes (both 0).

Start-up (not part of any measurement: it is charged to no CPU) walks the file system and
stores in every file's extra inode fields (when the image has them) the response header
without its Date, the header's partial checksums and the checksums of the document's pieces
as the MSS cuts them (:func:`encode_extra`); a file whose fields are current (same size and
modification time) is not summed again.

Requests: GET and HEAD (HTTP/1.0 replies with Server, Content-Type, Content-Length,
Last-Modified and Date, in simulated time from :data:`EPOCH`); If-Modified-Since answers 304
when the file is not newer (only the status line of the stored header changes); a request
line that is not ``METHOD /path HTTP/x.y``, a request longer than :data:`MAX_REQUEST` bytes
or one cut short by the client's FIN gets 400; another method 501; a missing file 404; a
document the cache cannot hold pinned 500. An HTTP/0.9 simple request (``GET /path`` and a
line end, RFC 1945 section 4.1) is answered with the document alone (an error with its page
alone) and the connection closed, as NCSA httpd did. Each connection's failure is its own.

Abusive clients (issue 13):

* an unexpected exception while serving is logged with its traceback, counted
  (``internal_errors``) and answered 500 if nothing of the reply was queued yet (else the
  connection is reset); the server goes on;
* a connection that has not delivered a whole request ``idle_timeout_ps`` (75 s) after its
  handshake is reset and its request structure returned (``idle_timeouts``): one kernel timer
  serves all of them, in arrival order, so arming costs no CPU (no charge is made);
* at most ``backlog`` (16) connections may be in SYN-RECEIVED; further SYNs are dropped
  without a reset (``syn_drops``), as a full BSD listen queue drops them; a request
  structure goes back to the pool whenever its connection ends, in any state (reset, the
  stack's 75 s connection-establishment timer, ...);
* on Aegis the library OS also claims the default binding (frames no filter accepts), so its
  stack answers ICMP echo requests and resets connection attempts to closed ports.

Simplifications (documented): invalidating data-cache lines is counted, not charged (no
profile row prices it yet); file-system calls are awaited in line (a cache miss holds the
event loop for the disk read; with the whole document set cached after start-up none
happens); the "prebuilt TCP/IP header" of a pooled request is not modelled apart from the
allocation it saves (the library stack builds its headers itself).
"""
from __future__ import annotations

import email.utils
import logging
import re
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sim.cpu import APPLICATION, CONTEXT_SWITCH, CPU, PROTOCOL, SYSCALL
from sim.kernel import Event, Kernel
from sim.time import S
from sw.host import HTTP_PORT, Host
from sw.libos.fs import FileSystem, FsError, PhysicalStore
from sw.libos.fs.cache import read_miss
from sw.libos.fs.layout import FT_DIR, FT_REG
from sw.libos.ilp.pipes import CKSUM
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net import checksum as ck
from sw.libos.net.aegis_env import AegisNetwork
from sw.libos.net.gather import Gather, PhysRef
from sw.libos.net.ether import MTU as ETHER_MTU
from sw.libos.net.tcp import DROP, TcpConfig, TcpState, mss_for

from .ash_handlers import ACKED, ANSWERED, ClosingTable, closing_program
from .config import APP_COSTS, CheetahConfig

log = logging.getLogger(__name__)

__all__ = ["CheetahServer", "Document", "make_server", "http_date", "encode_extra",
           "decode_extra", "EPOCH", "MAX_REQUEST", "SERVER_NAME"]

#: Simulated time 0 is 1996-01-01 00:00:00 UTC (Unix time); Dates and file times count from it.
EPOCH = 820454400
#: Requests longer than this (without their end) are answered 400.
MAX_REQUEST = 4096
SERVER_NAME = "Cheetah"
#: The segment size the precomputed checksums are cut for on Ethernet (its MSS); on another
#: interface they are cut for its MSS, at most :data:`PIECE_MAX` (:meth:`CheetahServer.piece_bytes`).
PRECOMPUTE_MSS = 1460
#: The largest precomputed piece: a page (4 KB on the R3000), so a full segment of any MSS
#: from a page up carries whole pieces (the TCP ends it at a piece boundary).
PIECE_MAX = 4096
#: The pipes the ``ilp`` switch fuses with the card's copies: the Internet checksum (on
#: receive the stack checks the TCP checksum with its sum of the frame; on transmit it
#: completes the segment's checksum).
ILP_PIPES = (CKSUM,)

_CONTENT_TYPES = {".html": "text/html", ".htm": "text/html", ".gif": "image/gif",
                  ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                  ".txt": "text/plain", ".css": "text/css"}
_DEFAULT_TYPE = "text/plain"
_IMG = re.compile(rb"<img\b[^>]*?\bsrc\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE)
_VERSION = re.compile(rb"HTTP/\d+\.\d+\Z")
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
            500: "Internal Server Error", 501: "Not Implemented"}
_DATE_LEN = 29                      # "Mon, 01 Jan 1996 00:00:00 GMT"
_EXTRA_MAGIC = b"CHT1"
_EXTRA_HEAD = struct.Struct("<4sIIHHHHH")   # magic, size, mtime, mss, hdr_len, sum200, sum304, n


def http_date(seconds: int) -> str:
    """RFC 1123 date of ``seconds`` after :data:`EPOCH` (``"Mon, 01 Jan 1996 00:00:00 GMT"``).

    Raises
    ------
    ValueError
        For a negative or non-integer time.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError(f"time must be a non-negative int of seconds, not {seconds!r}")
    return email.utils.formatdate(EPOCH + seconds, usegmt=True)


def _parse_date(value: bytes) -> int | None:
    """Seconds after :data:`EPOCH` of an HTTP date, or None if it does not parse."""
    try:
        t = email.utils.parsedate_tz(value.decode("latin-1").strip())
        return None if t is None else email.utils.mktime_tz(t) - EPOCH
    except (ValueError, OverflowError, TypeError):
        return None


def content_type(path: str) -> str:
    """The Content-Type served for ``path`` (by suffix)."""
    dot = path.rfind(".")
    return _CONTENT_TYPES.get(path[dot:].lower(), _DEFAULT_TYPE) if dot > path.rfind("/") \
        else _DEFAULT_TYPE


def _status(code: int) -> bytes:
    return f"HTTP/1.0 {code} {_REASONS[code]}\r\n".encode()


def _header(code: int, ctype: str, length: int, mtime: int | None) -> bytes:
    """A response header without the Date line and the final CRLF."""
    h = _status(code) + f"Server: {SERVER_NAME}\r\nContent-Type: {ctype}\r\n" \
        f"Content-Length: {length}\r\n".encode()
    if mtime is not None:
        h += f"Last-Modified: {http_date(mtime)}\r\n".encode()
    return h


def _simple_request(buf: bytes) -> bool:
    """Whether ``buf`` is a whole HTTP/0.9 simple request: one line ``GET /path`` (no
    version) ended by LF (RFC 1945 section 4.1: ``Simple-Request = "GET" SP Request-URI CRLF``;
    NCSA httpd answered such a line at once)."""
    line, sep, _ = buf.partition(b"\n")
    parts = line.rstrip(b"\r").split(b" ")
    return bool(sep) and len(parts) == 2 and parts[0] == b"GET"


def _date_tail(seconds: int) -> bytes:
    return f"Date: {http_date(seconds)}\r\n\r\n".encode()


def _cuts(size: int, first: int, mss: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of the document's pieces: ``first`` bytes share the first segment
    with the header, then one MSS each."""
    out, off = [], 0
    n = max(0, min(first, size))
    if n:
        out.append((0, n))
        off = n
    while off < size:
        n = min(mss, size - off)
        out.append((off, n))
        off += n
    return out


@dataclass
class Document:
    """One file as Cheetah holds it after start-up.

    Attributes
    ----------
    path : str
    ino, size, mtime : int
        The inode, the size in bytes and the modification time (seconds after EPOCH).
    content_type : str
    header : bytes
        The 200 header without Date (ends with the Last-Modified line).
    header_sum, header304_sum : int
        One's-complement sums of the 200 header and of the same header with the 304 status
        line (what the precomputed checksums pass to the stack).
    pieces : list of (offset, length, sum)
        The document cut as the segments will carry it, with each piece's sum.
    inline : tuple of str
        Paths of the inline images of an HTML page.
    blocks : list of int
        Its data blocks (for prefetching).
    """

    path: str
    ino: int
    size: int
    mtime: int
    content_type: str
    header: bytes
    header_sum: int
    header304_sum: int
    pieces: list = field(default_factory=list)
    inline: tuple = ()
    blocks: list = field(default_factory=list)

    @property
    def header304(self) -> bytes:
        return _status(304) + self.header[len(_status(200)):]


def encode_extra(doc: Document, mss: int, extra_size: int) -> bytes:
    """The extra inode fields Cheetah stores for ``doc`` (truncated to what fits: the sums
    first, then the header bytes; :func:`decode_extra` accepts only a complete record)."""
    sums = [s for _, _, s in doc.pieces]
    rec = _EXTRA_HEAD.pack(_EXTRA_MAGIC, doc.size, doc.mtime, mss, len(doc.header),
                           doc.header_sum, doc.header304_sum, len(sums))
    rec += struct.pack(f"<{len(sums)}H", *sums) + doc.header
    return rec[:extra_size]


def decode_extra(raw: bytes, size: int, mtime: int, mss: int) -> tuple | None:
    """``(header, sum200, sum304, sums)`` from extra fields that are complete and current for
    a file of ``size`` bytes modified at ``mtime``, else None."""
    if len(raw) < _EXTRA_HEAD.size:
        return None
    magic, sz, mt, m, hlen, s200, s304, n = _EXTRA_HEAD.unpack_from(raw)
    end = _EXTRA_HEAD.size + 2 * n + hlen
    if magic != _EXTRA_MAGIC or sz != size or mt != mtime or m != mss or end > len(raw):
        return None
    sums = list(struct.unpack_from(f"<{n}H", raw, _EXTRA_HEAD.size))
    header = bytes(raw[_EXTRA_HEAD.size + 2 * n:end])
    return header, s200, s304, sums


class _Mutex:
    """One file-system call at a time (the library's calls are not re-entrant)."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.locked = False
        self._waiters: deque[Event] = deque()

    async def __aenter__(self):
        while self.locked:
            ev = Event(self.kernel, "cheetah.fs-lock")
            self._waiters.append(ev)
            await ev
        self.locked = True

    async def __aexit__(self, *exc):
        self.locked = False
        if self._waiters:
            self._waiters.popleft().set()


class Request(TcpPcb):
    """A request structure: status, the TCP PCB (this object), request state, the reply.

    Kept in the server's pool between connections when ``request_pool`` is on.
    """

    def __init__(self, server: "CheetahServer"):
        super().__init__()
        self.server = server
        self.clear()

    def clear(self) -> None:
        self.buf = b""
        self.answered = False
        self.simple = False                # an HTTP/0.9 simple request: the body alone
        self.embryonic = False             # counted against the backlog (SYN-RECEIVED)
        self.serial = 0                    # which connection: the structure is reused
        self.pending_instructions = 0.0
        #: The reply's layout: ``(offset, bytes or None, length, sum, document offset)``.
        self.stream: list[tuple] = []
        self.doc: Document | None = None
        self.body: bytes | None = None
        self.pinned: list = []
        self.copy_pages: list = []         # pages of the copy of the document (pool off)
        self.busy = False                  # a request thread is still working on it
        self.release_pending = False

    def on_connected(self):
        self.server._established(self)

    def on_readable(self, data: bytes):
        return self.server._on_data(self, data)

    def on_peer_closed(self):
        if not self.answered and self.state is not TcpState.Closed:
            self.answered = True                  # a truncated request is a bad one
            if self.buf:
                return self.server._send_error(self, 400)
            return self.server.stack.close(self)
        return None

    def on_closed(self, reason: str):
        self.server._release(self, reason)

    def resupply(self, offset: int, length: int):
        return self.server._resupply(self, offset, length)


class CheetahServer:
    """Cheetah on a :class:`~sw.host.Host` (the :class:`~sw.host.HttpServer` shape).

    Parameters
    ----------
    host : Host
        The server machine (its ``blockdev`` holds the documents).
    config : CheetahConfig, optional
        The specializations (default: all on).
    cache_blocks : int
        File-cache size in blocks.
    pool_size : int
        Request structures prebuilt when ``request_pool`` is on (the pool grows if a burst
        needs more).
    tcp : TcpConfig, optional
        TCP parameters; ``pcb_lookup`` and ``rx_copy`` are set from the configuration.
    port : int
        The port to listen on (80).

    Raises
    ------
    TypeError, ValueError
        For a bad host, configuration or parameter.
    """

    def __init__(self, host: Host, config: CheetahConfig | None = None, *,
                 cache_blocks: int = 512, pool_size: int = 32, tcp: TcpConfig | None = None,
                 port: int = HTTP_PORT):
        if not isinstance(host, Host):
            raise TypeError(f"CheetahServer needs a sw.host.Host, not {host!r}")
        if config is None:
            config = CheetahConfig()
        if not isinstance(config, CheetahConfig):
            raise TypeError(f"config must be a CheetahConfig, not {config!r}")
        if host.blockdev is None:
            raise ValueError(f"host {host.name!r} has no blockdev holding the documents")
        if config.ash and host.extra.get("aegis") is None:
            raise ValueError(f"host {host.name!r}: the ash switch needs an exokernel "
                             f"(host.extra['aegis']): an ASH runs in Aegis")
        if host.cpu is not None and not isinstance(host.cpu, CPU):
            raise TypeError(f"host.cpu must be a sim.cpu.CPU or None, not {host.cpu!r}")
        for name, v, lo in (("cache_blocks", cache_blocks, 16), ("pool_size", pool_size, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, not {v!r}")
        if tcp is not None and not isinstance(tcp, TcpConfig):
            raise TypeError(f"tcp must be a TcpConfig, not {tcp!r}")
        self.host = host
        self.config = config
        self.name = f"cheetah ({host.name})"
        self.kernel: Kernel = host.kernel
        self.cpu: CPU | None = host.cpu
        self.port = port
        self.cache_blocks = cache_blocks
        self.pool_size = pool_size
        base = tcp or TcpConfig()
        self.tcp_config = TcpConfig(**{**base.__dict__,
                                       "pcb_lookup": "hash" if config.libos else "linear",
                                       "rx_copy": not config.parse_in_place})
        self.stack: NetStack | None = None
        self.fs: FileSystem | None = None
        self.docs: dict[str, Document] = {}
        self.env = None
        self._pool: list[Request] = []
        self._prefetch: dict[int, list[int]] = {}
        self._prefetched: set[int] = set()     # read ahead, not yet asked for
        self._lock = _Mutex(self.kernel)
        self._date_sec = -1
        self._date_tail = b""
        self._date_sum = 0
        self.counters = {"connections": 0, "requests": 0, "responses": {}, "bytes_sent": 0,
                         "body_bytes": 0, "pool_allocs": 0, "pool_hits": 0, "threads": 0,
                         "resupplied_bytes": 0, "date_refreshes": 0, "prefetched_blocks": 0,
                         "extra_reused": 0, "syn_drops": 0, "idle_timeouts": 0,
                         "internal_errors": 0}
        self._embryonic = 0                        # requests in SYN-RECEIVED (the backlog)
        self._serial = 0
        #: Established connections still reading their request, oldest first:
        #: ``(deadline, request, serial)``; one kernel timer serves them all.
        self._idle: deque[tuple[int, Request, int]] = deque()
        self._idle_timer = None
        #: The closing ASH's table (``ash`` on, over Ethernet), and the instructions of its
        #: read-backs made from a TCP timer, charged at the next upcall.
        self._ash: ClosingTable | None = None
        self._ash_owed = 0.0
        if config.ash:
            self.counters.update({"ash_armed": 0, "ash_not_armed": 0, "ash_fin_acks": 0,
                                  "ash_fins": 0})
        self.started = False

    # -- costs -------------------------------------------------------------------------------
    def _instr(self, name: str) -> float:
        return float(APP_COSTS[name].value)

    async def _app(self, instructions: float) -> None:
        if self.cpu is not None and instructions:
            await self.cpu.charge(self.cpu.profile.instructions(instructions), APPLICATION)

    async def _syscalls(self, n: int) -> None:
        if self.cpu is not None and n:
            await self.cpu.charge(float(self.cpu.profile.syscall_cycles) * n, SYSCALL)

    async def _switches(self, n: int) -> None:
        if self.cpu is not None and n:
            await self.cpu.charge(float(self.cpu.profile.context_switch_cycles) * n,
                                  CONTEXT_SWITCH)

    # -- start-up ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Mount the documents, precompute their headers and checksums, listen on port 80.

        Raises
        ------
        RuntimeError
            If called twice.
        """
        if self.started:
            raise RuntimeError(f"{self.name} is already started")
        h = self.host
        aegis = h.extra.get("aegis")
        # On Aegis every frame the library sends is a kernel call (Aegis.transmit), and the
        # frames it receives are upcalls after the kernel demultiplexed them.
        net = h.netdev if aegis is None else AegisNetwork(aegis, f"{h.name}.cheetah", h.netdev.mac)
        if aegis is not None:
            self.env = net.env
        store = self._physical_store(aegis)
        self.fs = await FileSystem.mount(h.blockdev, cache_blocks=self.cache_blocks,
                                         miss=self._miss, replace=self._replace,
                                         kernel=self.kernel, cpu=None,
                                         clock=lambda: self.kernel.now // S, store=store)
        await self._scan()
        self.fs.cpu = self.cpu                     # from now on copies are charged
        self.stack = NetStack(self.kernel, net, h.ip, cpu=self.cpu, config=self.tcp_config,
                              name=f"{h.name}.cheetah", seed=h.seed)
        if store is not None:
            self.stack.tcp.attach_memory(h.memory.read, h.doc_touch,
                                         page_size=h.memory.page_size)
        for ip, mac in h.arp.items():
            self.stack.add_arp(ip, mac)
        if aegis is not None:
            ash = self._ash_table(aegis, net.link_layer) if self.config.ash else None
            net.serve(self.stack, port=self.port, ip=h.ip, ash=ash,
                      on_frame=None if ash is None else self._frame_in)
        else:
            h.netdev.attach(self.stack.input)
        if self.config.ilp:
            self._install_pipes(aegis)
        if self.config.hwilp:
            await self._bind_card_pipes(aegis)
        if self.config.request_pool:
            self._pool = [Request(self) for _ in range(self.pool_size)]
        self.stack.listen(self.port, self._new_request)
        self.started = True

    # -- software ILP (the ilp switch) -------------------------------------------------------
    def _install_pipes(self, aegis) -> None:
        """Hand the pipe list (:data:`ILP_PIPES`) to the kernel (or, without one, to the
        interface), which fuses it with the card's receive and transmit copies; counted in
        ``ilp_rx_fused`` and ``ilp_tx_fused`` (0: the card leaves no copy to fuse with, as the
        AN2's DMA). With the transmit copy fused the TCP leaves every segment's checksum to it
        (``Tcp.sum_in_copy``): the precomputed sums are not needed there."""
        fused = {}
        for way in ("rx", "tx"):
            if aegis is not None:
                fused[way] = getattr(aegis, f"install_{way}_pipes")(self.env, ILP_PIPES)
            else:
                install = getattr(self.host.netdev, f"install_{way}_pipes", None)
                fused[way] = install is not None
                if install is not None:
                    install(ILP_PIPES)
            self.counters[f"ilp_{way}_fused"] = int(fused[way])
        self.stack.tcp.sum_in_copy = fused["tx"]

    # -- the card's pipes (the hwilp switch) ----------------------------------------------------
    def _card_tx_pipe_wanted(self) -> bool:
        """Whether Cheetah asks for the card's transmit pipe (``hwilp`` on a card that has one,
        unless it rereads each PDU while the precomputed checksums leave the CPU only a
        header's sum: :meth:`_bind_card_pipes`)."""
        cfg, netdev = self.config, self.host.netdev
        return (cfg.hwilp and bool(getattr(netdev, "card_pipes", {}).get("tx"))
                and not (cfg.precomputed_checksums
                         and getattr(netdev, "card_tx_rereads", False)))

    async def _bind_card_pipes(self, aegis) -> None:
        """Ask the kernel to bind the card's receive and transmit pipes (:data:`ILP_PIPES`)
        for this environment; counted in ``hwilp_rx_bound`` and ``hwilp_tx_bound`` (0: a card
        without pipes, no kernel to bind them, or a transmit pipe not worth its price, below).
        With the transmit pipes bound the TCP leaves every segment's checksum to the card
        (``Tcp.sum_in_copy``).

        The AN2 card's transmit pipe reads each PDU twice, the link idle during the first
        read (``netdev.card_tx_rereads``). With the precomputed checksums the CPU's share of a
        segment's sum is its header and one add of the document piece's stored sum, so
        Cheetah keeps transmit checksums on the CPU and binds only the receive pipe; without
        them (``no-precomputed_checksums``) the card's pipe saves summing every byte sent and
        is bound."""
        ways = ("rx", "tx") if self._card_tx_pipe_wanted() else ("rx",)
        bound = {"rx": False, "tx": False}
        for way in ways:
            bound[way] = aegis is not None and \
                await getattr(aegis, f"install_card_{way}_pipes")(self.env, ILP_PIPES)
        for way in ("rx", "tx"):
            self.counters[f"hwilp_{way}_bound"] = int(bound[way])
        if bound["tx"]:
            self.stack.tcp.sum_in_copy = True

    # -- the closing ASH (the ash switch; sw/cheetah/ash_handlers.py) ---------------------------
    def _ash_table(self, aegis, link_layer) -> list[tuple]:
        """Give the ASH a page of the environment for its table; return its program for the
        interface's link (Ethernet, or classical IP over ATM: ``link_layer``)."""
        env = self.env
        base = aegis.page_addr(aegis.alloc_pages(env, 1)[0])
        self._ash = ClosingTable(lambda a, n: aegis.read(env, a, n),
                                 lambda a, d: aegis.write(env, a, d), base,
                                 self.host.netdev.mac, link_layer)
        self.stack.tcp.pull = self._ash_pull
        return closing_program(base, self._ash.link)

    async def _frame_in(self, frame: bytes) -> None:
        """The environment's frame upcall with the ASH: charge the read-backs made since the
        last upcall (the TCP's input makes this frame's, :meth:`_ash_pull`), then the
        stack's input."""
        owed, self._ash_owed = self._ash_owed, 0.0
        if self.cpu is not None and owed:
            await self.cpu.charge(self.cpu.profile.instructions(owed), PROTOCOL)
        await self.stack.process(frame)

    def _ash_pull(self) -> None:
        """The TCP is about to act (:attr:`sw.libos.net.tcp.Tcp.pull`: a segment arrived, a
        timer fired): apply what the ASH did to the connections it holds. It runs where no
        time can be charged, so its instructions are owed until the next upcall."""
        t = self._ash
        self._ash_owed += self._instr("ash_check")
        if not t.changed():
            return
        self._ash_owed += self._instr("ash_scan_slot") * t.armed
        for pcb, bits in t.collect():
            if pcb.state not in (TcpState.FinWait1, TcpState.FinWait2, TcpState.LastAck):
                log.info("%s: the ASH's record for %r comes after its end", self.name, pcb)
                continue
            self._ash_owed += self._instr("ash_apply")
            self.counters["ash_fin_acks"] += bool(bits & ACKED)
            self.counters["ash_fins"] += bool(bits & ANSWERED)
            try:
                self.stack.tcp.handled_in_kernel(pcb, fin_acked=bool(bits & ACKED),
                                                 peer_fin=bool(bits & ANSWERED))
            except Exception:                   # noqa: BLE001 - the segment being input goes on
                # A bug, not the peer's doing: counted (the run's rows are marked failed),
                # and the connection left to the library's own timers.
                self.counters["internal_errors"] += 1
                log.error("%s: taking back the ASH's work on %r failed", self.name, pcb,
                          exc_info=True)
                t.disarm(pcb)

    async def _ash_arm(self, r: Request) -> None:
        """Hand the end of ``r``'s connection to the ASH (its FIN is queued)."""
        t = self._ash
        if t is None or r.state not in (TcpState.FinWait1, TcpState.LastAck):
            return
        if not t.arm(r, self.stack.next_ident):
            self.counters["ash_not_armed"] += 1
            return
        self.counters["ash_armed"] += 1
        await self._app(self._instr("ash_arm"))
        if self.cpu is not None:
            await self.cpu.checksum(52)     # the prebuilt ACK's IP header, TCP header + pseudo

    @property
    def piece_bytes(self) -> int:
        """The size of the pieces the documents' checksums are precomputed for: the MSS this
        server's TCP announces over its interface (:data:`PRECOMPUTE_MSS` on Ethernet), but
        at most a page (:data:`PIECE_MAX`). Over classical IP over ATM (MSS 9140) a peer may
        announce a smaller MSS (4.3BSD's clients: 8192); the TCP ends a full segment at the
        last whole piece, so with page-sized pieces every full segment of any MSS of a page
        or more carries whole pieces and needs no sum over document bytes."""
        link = getattr(self.host.netdev, "link_layer", None)
        mtu = ETHER_MTU if link is None else link.mtu
        return min(mss_for(self.tcp_config, mtu), PIECE_MAX)

    def _physical_store(self, aegis) -> PhysicalStore | None:
        """The file cache's pages on an exokernel whose disk DMAs (else None: a cache of
        Python buffers, as on a test's in-memory disk).

        The cache asks Aegis for its pages when it knows its block size, and the disk reads
        into them by DMA on the environment's behalf. The CPU reads the documents' data blocks
        (so their stale data-cache lines must be invalidated after each DMA-in, see
        :mod:`sw.libos.fs.physical`) unless they only ever go to a DMA card by reference:
        ``cache_as_retransmit_pool`` on, ``precomputed_checksums`` on or the card's transmit
        pipes asked for (``hwilp`` on a card that has them: it sums what it sends), and an
        interface whose driver does not copy frames with the CPU (``netdev.cpu_copies``,
        True for the LANCE card's programmed I/O).
        """
        h = self.host
        if aegis is None or h.memory is None \
                or not callable(getattr(h.blockdev, "read_into", None)):
            return None
        env = self.env
        cfg = self.config
        card_sums = self._card_tx_pipe_wanted()
        zero_copy = cfg.cache_as_retransmit_pool \
            and (cfg.precomputed_checksums or card_sums) \
            and not getattr(h.netdev, "cpu_copies", False)
        mem_sys = getattr(self.cpu.profile, "memory", None) if self.cpu is not None else None
        line = int(mem_sys.line_bytes.value) if mem_sys is not None else 4
        return PhysicalStore(h.memory, lambda n: aegis.alloc_pages(env, n), requester=env.id,
                             line_bytes=line, cpu_reads_data=not zero_copy,
                             doc_touch=h.doc_touch)

    async def _scan(self) -> None:
        """Walk the tree; fill (or reuse) every file's extra fields; note inline images."""
        fs = self.fs
        extra_size = fs.sb.extra_size
        mss = self.piece_bytes
        todo, files = ["/"], []
        while todo:
            d = todo.pop()
            for e in await fs.readdir(d):
                p = d.rstrip("/") + "/" + e.name
                if e.ftype == FT_DIR:
                    todo.append(p)
                elif e.ftype == FT_REG:
                    files.append((p, e.ino))
        pages = {}
        for path, ino in sorted(files):
            st = await fs.stat(ino)
            ctype = content_type(path)
            hdr = _header(200, ctype, st.size, st.mtime)
            first = mss - len(hdr) - len(_date_tail(0))
            cuts = _cuts(st.size, first, mss)
            got = decode_extra(await fs.get_extra(ino), st.size, st.mtime, mss) \
                if extra_size else None
            data = None
            if got is not None and got[0] == hdr and len(got[3]) == len(cuts):
                _, s200, s304, sums = got
                self.counters["extra_reused"] += 1
            else:
                data = await fs.read(ino)
                s200, s304 = ck.ones_sum(hdr), ck.ones_sum(_status(304) + hdr[len(_status(200)):])
                sums = [ck.ones_sum(data[o:o + n]) for o, n in cuts]
            doc = Document(path, ino, st.size, st.mtime, ctype, hdr, s200, s304,
                           [(o, n, s) for (o, n), s in zip(cuts, sums)],
                           blocks=[b for b in await fs.file_blocks(ino) if b])
            if extra_size and got is None:
                await fs.set_extra(ino, encode_extra(doc, mss, extra_size))
            if ctype == "text/html":
                pages[path] = data if data is not None else await fs.read(ino)
            self.docs[path] = doc
        for path, html in pages.items():
            base = path[:path.rfind("/") + 1]
            found = []
            for m in _IMG.finditer(html):
                src = m.group(1).decode("latin-1")
                src = src if src.startswith("/") else base + src
                if src in self.docs and src not in found:
                    found.append(src)
            doc = self.docs[path]
            doc.inline = tuple(found)
            if found and doc.blocks:
                group = list(doc.blocks)
                for s in found:
                    group += [b for b in self.docs[s].blocks if b not in group]
                self._prefetch[doc.blocks[0]] = group
        await fs.sync()

    async def _miss(self, cache, lbn: int) -> bytes:
        """The cache's miss policy: a page's first block brings its inline images along."""
        group = self._prefetch.get(lbn) if self.config.inline_prefetch else None
        if not group:
            return await read_miss(cache, lbn)
        bs = cache.block_size
        mine = None
        runs: list[list[int]] = []
        for b in sorted(set(group)):
            if runs and b == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([b, 1])
        if cache.store is not None:                # by DMA straight into the cache's pages
            for start, count in runs:
                new = [b for b in range(start, start + count) if b != lbn and b not in cache]
                await cache.fill(start, count, wanted=lbn)
                for b in new:
                    if b in cache:
                        self._prefetched.add(b)
                        self.counters["prefetched_blocks"] += 1
            return None if lbn in cache else await read_miss(cache, lbn)
        for start, count in runs:
            raw = await cache.read_blocks(start, count)
            for i in range(count):
                blk = raw[i * bs:(i + 1) * bs]
                if start + i == lbn:
                    mine = blk
                elif start + i not in cache:
                    self._prefetched.add(start + i)
                    await cache.insert(start + i, blk)
                    self.counters["prefetched_blocks"] += 1
        return mine if mine is not None else await cache.read_blocks(lbn, 1)

    def _replace(self, cache, candidates: list) -> Any:
        """The cache's replacement policy: LRU, but blocks read ahead with a page stay until
        their document is asked for (unless nothing else can go)."""
        if self._prefetched:
            for buf in candidates:
                if buf.lbn not in self._prefetched:
                    return buf
            self._prefetched.discard(candidates[0].lbn)
        return candidates[0]

    # -- connections -------------------------------------------------------------------------
    def _new_request(self) -> Request | object:
        if self._embryonic >= self.config.backlog:
            # The backlog is full: drop the SYN without a reset, as BSD's tcp_input does when
            # sonewconn fails; the client retransmits it.
            self.counters["syn_drops"] += 1
            return DROP
        self.counters["connections"] += 1
        if self.config.request_pool and self._pool:
            r = self._pool.pop()
            r.pending_instructions = self._instr("pool_get")
            self.counters["pool_hits"] += 1
        else:
            r = Request(self)
            r.pending_instructions = self._instr("request_alloc")
            self.counters["pool_allocs"] += 1
        self._serial += 1
        r.serial = self._serial
        r.embryonic = True
        self._embryonic += 1
        return r

    def _established(self, r: Request) -> None:
        """The handshake completed: the backlog has room again; the request must now arrive
        within ``idle_timeout_ps``."""
        if r.embryonic:
            r.embryonic = False
            self._embryonic -= 1
        if not r.answered:
            self._idle.append((self.kernel.now + self.config.idle_timeout_ps, r, r.serial))
            if self._idle_timer is None:
                self._idle_timer = self.kernel.call_at(self._idle[0][0], self._idle_expire)

    def _idle_expire(self) -> None:
        """Abort the connections whose request has not arrived in time (a reset: the request
        structure is the PCB, and a graceful close would hold it through FIN-WAIT-2 on behalf
        of a client that sends nothing)."""
        self._idle_timer = None
        now = self.kernel.now
        q = self._idle
        while q and q[0][0] <= now:
            _, r, serial = q.popleft()
            if r.serial == serial and not r.answered and r.state is not TcpState.Closed:
                r.answered = True
                self.counters["idle_timeouts"] += 1
                log.info("%s: no request within %d s: connection dropped", self.name,
                         self.config.idle_timeout_ps // S)
                self.kernel.spawn(self.stack.abort(r), name=f"{self.host.name}.cheetah-idle",
                                  daemon=True)
        if q:
            self._idle_timer = self.kernel.call_at(q[0][0], self._idle_expire)

    def _release(self, r: Request, reason: str) -> None:
        if self._ash is not None:
            self._ash.disarm(r)
        if r.embryonic:                                # died in SYN-RECEIVED
            r.embryonic = False
            self._embryonic -= 1
        if r.busy:                                     # its thread finishes first
            r.release_pending = True
            return
        if r.pinned:
            self.fs.unpin(r.pinned)
        self._free_copy(r)
        r.clear()
        if self.config.request_pool:
            self._pool.append(r)

    def _on_data(self, r: Request, data: bytes):
        if r.answered:
            return None                                # e.g. a body after a 400: ignore
        r.buf = data if not r.buf else r.buf + data
        end = r.buf.find(b"\r\n\r\n")
        if end < 0:
            end = r.buf.find(b"\n\n")
        if end < 0 and len(r.buf) <= MAX_REQUEST and not _simple_request(r.buf):
            return self._charge_partial(r, len(data))
        r.answered = True
        if self.config.event_loop:
            return self._serve(r)                       # in line: the ACK rides on the reply
        self.counters["threads"] += 1
        r.busy = True                                   # the thread owns it from now on
        self.kernel.spawn(self._thread(r), name=f"{self.host.name}.cheetah-thread", daemon=True)
        return None

    async def _charge_partial(self, r: Request, n: int) -> None:
        await self._app(self._instr("parse_per_byte") * n)

    async def _thread(self, r: Request) -> None:
        await self._app(self._instr("thread_create"))
        await self._switches(1)                         # the new thread gets the CPU
        await self._serve(r)
        await self._switches(1)                         # it exits: back to the dispatcher

    # -- requests ----------------------------------------------------------------------------
    def _date(self) -> tuple[bytes, int, bool]:
        """The current Date line (+ final CRLF), its sum, and whether it was reformatted."""
        sec = self.kernel.now // S
        if sec == self._date_sec:
            return self._date_tail, self._date_sum, False
        self._date_sec = sec
        self._date_tail = _date_tail(sec)
        self._date_sum = ck.ones_sum(self._date_tail)
        self.counters["date_refreshes"] += 1
        return self._date_tail, self._date_sum, True

    async def _serve(self, r: Request) -> None:
        r.busy = True                                   # not released (pooled) while served
        try:
            await self._serve_request(r)
        except FsError as e:                            # e.g. a document larger than the cache
            log.warning("%s: %s", self.name, e)
            await self._fail(r)
        except Exception:                               # noqa: BLE001 - keep the server serving
            self.counters["internal_errors"] += 1
            log.error("%s: internal error serving a request", self.name, exc_info=True)
            await self._fail(r)
        finally:
            r.busy = False
            if r.release_pending:
                self._release(r, r.close_reason or "closed")

    async def _fail(self, r: Request) -> None:
        """Answer 500 if nothing of the reply was queued yet, else reset the connection."""
        if r.pinned:
            self.fs.unpin(r.pinned)
            r.pinned = []
        if r.state is TcpState.Closed:
            return
        if r.bytes_queued == 0 and not r.fin_queued:
            await self._send_error(r, 500)
        else:
            await self.stack.abort(r)

    async def _serve_request(self, r: Request) -> None:
        cfg = self.config
        req = r.buf
        instr = r.pending_instructions + self._instr("parse_base") \
            + self._instr("parse_per_byte") * min(len(req), MAX_REQUEST)
        r.pending_instructions = 0
        self.counters["requests"] += 1
        syscalls = 0 if cfg.libos else 2                # accept, read
        code, method, doc, ims = self._parse(req)
        r.simple = method == b"GET" and _simple_request(req)
        if code == 200:
            instr += self._instr("name_lookup")
            doc = self.docs.get(doc)
            if doc is None:
                code = 404
            elif ims is not None and doc.mtime <= ims:
                code = 304
        if code not in (200, 304):
            await self._app(instr)
            await self._syscalls(syscalls + (0 if cfg.libos else 2))   # write, close
            await self._send_error(r, code)
            return
        date, dsum, fresh = self._date()
        if cfg.precomputed_headers:
            if fresh:
                instr += self._instr("date_format")
            header = doc.header if code == 200 else doc.header304
            hsum = doc.header_sum if code == 200 else doc.header304_sum
        else:
            instr += self._instr("stat") + self._instr("header_build")
            header = _header(code, doc.content_type, doc.size, doc.mtime)
            hsum = None
        await self._app(instr)
        if not cfg.precomputed_checksums:
            hsum = dsum = None
        if fresh and cfg.precomputed_headers and cfg.precomputed_checksums and self.cpu \
                and not self.stack.tcp.sum_in_copy:     # (ilp: the card's copy sums it all)
            await self.cpu.checksum(len(date))          # the new Date line's sum, once a second
        with_body = code == 200 and method == b"GET" and doc.size > 0
        if with_body:
            syscalls += 0 if cfg.libos else 2           # open, read
            await self._syscalls(syscalls)
            syscalls = 0
            await self._load_body(r, doc)
            if r.state is TcpState.Closed:              # reset while the disk was read
                return
        # An HTTP/0.9 simple request gets the document alone (RFC 1945 section 4.1).
        bufs, sums = ([], []) if r.simple else ([header, date], [hsum, dsum])
        heads = len(bufs)
        if with_body:
            for off, n, s in doc.pieces:
                bufs.append(self._body(r, off, n))
                sums.append(s if cfg.precomputed_checksums else None)
        total = sum(len(b) for b in bufs)
        self._record(r, bufs, sums, heads)
        self.counters["responses"][code] = self.counters["responses"].get(code, 0) + 1
        self.counters["bytes_sent"] += total
        if with_body:
            self.counters["body_bytes"] += doc.size
        if not cfg.libos:
            await self._syscalls(syscalls + 2)          # write, close
            if self.cpu is not None:
                await self.cpu.copy(total)              # into the socket buffer
            if with_body:
                self.host.doc_touch.touched(doc.size)
        await self._transmit(r, bufs, sums)
        await self._ash_arm(r)

    def _parse(self, req: bytes) -> tuple[int, bytes, Any, int | None]:
        """``(code, method, path, if_modified_since)``: code 200 means well-formed."""
        if len(req) > MAX_REQUEST:
            return 400, b"", None, None
        head = req.split(b"\n\n", 1)[0] if b"\r\n\r\n" not in req else req.split(b"\r\n\r\n", 1)[0]
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        parts = lines[0].split(b" ")
        if len(parts) == 2 and parts[0] == b"GET" and _simple_request(req):
            parts.append(b"HTTP/0.9")                   # a simple request: GET only
        if len(parts) != 3 or not _VERSION.match(parts[2]) or not parts[1].startswith(b"/") \
                or not parts[0].isalpha() or not parts[0].isupper():
            return 400, b"", None, None
        method, uri = parts[0], parts[1]
        if method not in (b"GET", b"HEAD"):
            return 501, method, None, None
        path = uri.split(b"?", 1)[0]
        try:
            spath = path.decode("ascii")
        except UnicodeDecodeError:
            return 400, method, None, None
        if "/../" in spath + "/" or "\x00" in spath:
            return 400, method, None, None
        if spath.endswith("/"):
            spath += "index.html"
        ims = None
        for line in lines[1:]:
            if line[:18].lower() == b"if-modified-since:":
                ims = _parse_date(line[18:])
        return 200, method, spath, ims

    async def _load_body(self, r: Request, doc: Document) -> None:
        async with self._lock:
            if self.config.cache_as_retransmit_pool:
                r.pinned = await self.fs.pin(doc.ino)    # no copy: the cache blocks go out
                r.body = None
            else:
                r.body = await self.fs.read(doc.ino)     # a copy the request keeps
                self._copied_out(r, doc)
        if self._prefetched:
            self._prefetched.difference_update(doc.blocks)
        r.doc = doc

    def _copied_out(self, r: Request, doc: Document) -> None:
        """The document was copied out of the file cache (charged by the file system): the
        CPU touched its bytes and mapped its cache pages. With a physical cache the copy is
        a buffer of the request's own pages, from which the card takes it by reference
        (its pages mapped too: the CPU wrote them)."""
        dt = self.host.doc_touch
        dt.touched(doc.size)
        store = self.fs.cache.store
        if store is None:
            return
        ps = self.host.memory.page_size
        bs = self.fs.sb.block_size
        dt.mapped(sum(-(-min(bs, doc.size - i * bs) // ps) for i in range(len(doc.blocks))))
        npages = -(-doc.size // ps)
        r.copy_pages = self.host.extra["aegis"].alloc_pages(self.env, npages)
        refs = []
        for i, page in enumerate(r.copy_pages):
            n = min(ps, doc.size - i * ps)
            self.host.memory.write(page * ps, r.body[i * ps:i * ps + n])
            refs.append(PhysRef(page * ps, n))
        dt.mapped(npages)
        r.body = Gather(refs)

    def _free_copy(self, r: Request) -> None:
        if r.copy_pages:
            self.host.extra["aegis"].free_pages(self.env, r.copy_pages)
            r.copy_pages = []

    def _body(self, r: Request, off: int, n: int) -> bytes | Gather:
        """Document bytes ``off .. off + n``: from the request's copy, or the pinned cache
        blocks (by reference, when they are in physical memory)."""
        if r.body is not None:
            return r.body.slice(off, off + n) if isinstance(r.body, Gather) \
                else r.body[off:off + n]
        bs = self.fs.sb.block_size
        out = []
        while n:
            i, bo = divmod(off, bs)
            k = min(n, bs - bo)
            buf = r.pinned[i]
            out.append(PhysRef(buf.addr + bo, k) if buf.addr is not None
                       else bytes(buf.data[bo:bo + k]))
            off += k
            n -= k
        return Gather(out) if isinstance(out[0], PhysRef) else b"".join(out)

    def _record(self, r: Request, bufs: list, sums: list, heads: int = 2) -> None:
        """Remember the reply's layout for resupply: the ``heads`` leading buffers (header
        and Date) as bytes, the body by offset."""
        r.stream = []
        off = 0
        for i, (b, s) in enumerate(zip(bufs, sums)):
            body_off = None if i < heads else r.doc.pieces[i - heads][0]
            r.stream.append((off, b if i < heads else None, len(b), s, body_off))
            off += len(b)

    def _resupply(self, r: Request, offset: int, length: int):
        """The reply's bytes ``[offset, offset + length)`` again (from the pinned cache blocks,
        by reference when they are in physical memory, or the request's copy), as
        ``(piece, sum)`` pairs: each whole piece with its precomputed sum, a cut one with
        None (the stack sums it)."""
        self.counters["resupplied_bytes"] += length
        out, end = [], offset + length
        for off, data, n, s, body_off in r.stream:
            lo, hi = max(off, offset), min(off + n, end)
            if lo >= hi:
                continue
            if data is not None:
                piece = data[lo - off:hi - off]
            else:
                piece = self._body(r, body_off + lo - off, hi - lo)
            out.append((piece, s if lo == off and hi == off + n else None))
        return out

    async def _transmit(self, r: Request, bufs: list, sums: list) -> None:
        st = self.stack
        if r.state not in (TcpState.Established, TcpState.CloseWait, TcpState.SynReceived):
            return                                      # the peer went away meanwhile
        csum = sums if any(s is not None for s in sums) else None
        if self.config.merged_segments:
            await st.send(r, bufs, last=True, csum=csum)
            return
        # One send for the header, one for the document, then the FIN on its own.
        heads = 0 if r.simple else 2
        if heads:
            await st.send(r, bufs[:heads], csum=None if csum is None else csum[:heads])
        if len(bufs) > heads and r.state in (TcpState.Established, TcpState.CloseWait):
            await st.send(r, bufs[heads:], csum=None if csum is None else csum[heads:])
        await st.close(r)

    async def _send_error(self, r: Request, code: int) -> None:
        body = (f"<html><head><title>{code} {_REASONS[code]}</title></head><body>"
                f"<h1>{code} {_REASONS[code]}</h1></body></html>\n").encode()
        date, _, _ = self._date()
        hdr = b"" if r.simple else _header(code, "text/html", len(body), None) + date
        await self._app(self._instr("header_build"))
        self.counters["responses"][code] = self.counters["responses"].get(code, 0) + 1
        self.counters["bytes_sent"] += len(hdr) + len(body)
        r.stream = [(0, hdr + body, len(hdr) + len(body), None, None)]
        if r.state in (TcpState.Established, TcpState.CloseWait, TcpState.SynReceived):
            await self.stack.send(r, hdr + body, last=True)
            await self._ash_arm(r)

    # -- reports -----------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counters: requests, responses by status, bytes, pool use, TCP and cache counters."""
        c = dict(self.counters)
        c["responses"] = {str(k): v for k, v in sorted(c["responses"].items())}
        c["config"] = self.config.switches()
        c["documents"] = len(self.docs)
        # What the CPU did to the documents (sw/doc_touch.py; reset with the CPU's stats:
        # host.doc_touch.reset()).
        c.update(self.host.doc_touch.as_dict())
        if self.stack is not None:
            t = self.stack.tcp
            c["time_wait_entries"] = len(t.time_wait)
            c["time_wait_pcbs"] = sum(1 for p in t.conns.values()
                                      if p.state is TcpState.TimeWait)
            c["open_connections"] = len(t.conns)
            c["embryonic"] = self._embryonic
            c["pool_free"] = len(self._pool)
            c["tcp"] = dict(t.stats.__dict__)
            c["frames_in"] = self.stack.stats.frames_in
            c["frames_out"] = self.stack.stats.frames_out
        if self.config.ash:
            env = self.env
            c["ash"] = {"link": self._ash.link if self._ash is not None else None,
                        "armed_now": self._ash.armed if self._ash is not None else 0,
                        "frames_by_ash": env.frames_by_ash if env is not None else 0,
                        "aborts": env.ash_aborts if env is not None else 0}
        if self.fs is not None:
            cache = self.fs.cache
            c["cache"] = {"hits": cache.hits, "misses": cache.misses,
                          "evictions": cache.evictions}
        return c

    def __repr__(self) -> str:
        return f"<CheetahServer {self.host.name} {'started' if self.started else 'stopped'}>"


def make_server(host: Host, config: CheetahConfig | None = None, **options) -> CheetahServer:
    """Cheetah on ``host`` with ``config`` (default: every specialization on).

    ``options`` go to :class:`CheetahServer` (``cache_blocks``, ``pool_size``, ``tcp``).
    """
    return CheetahServer(host, config, **options)
