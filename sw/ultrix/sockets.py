"""BSD sockets on a 4.3BSD-style TCP, as Ultrix 4.3 provides them to the web servers.

The TCP engine is the library's (:mod:`sw.libos.net`), put into 4.3BSD's shape:

* **PCB lookup** (ULTRIX 4.2 ``tcp_input``/``in_pcblookup``, VALIDATION.md K1, K2): for
  **every** segment a linear scan of one list holding every PCB (``insque`` at the head:
  newest first, the listening PCB last), **including the connections in TIME_WAIT**; there is
  no last-PCB cache in ULTRIX's ``tcp_input`` (4.4BSD's ``tcp_last_inpcb`` came later). A scan stops at an exact match; a SYN for
  a new connection matches only the listener's wildcard and so scans the whole list, and
  ``in_pcbconnect`` then scans it once more to check the new 4-tuple is unused. Each entry
  examined costs ``pcb_lookup_per_entry_cycles`` (:data:`~sim.cpu.DEMUX`).
* **TIME_WAIT** lasts 2 MSL = 60 s with the full PCB left in that list (the library's cheap
  TIME_WAIT table holds the protocol state; this module keeps their places in the list).
* **FIN after the data**: the server's ``close()`` sends the FIN; the data went out with its
  ``write()`` calls, so the FIN is its own segment unless data is still queued.
* **No precomputed checksums**: every byte sent and received is summed.
* **Retransmission copy**: the socket's send buffer (``so_snd``, the machine's
  ``tcp_sendspace``: 16 KB on ULTRIX 4.2, :data:`TCP_SPACE`) keeps written data until it is
  acknowledged; a ``write()`` that finds it full sleeps. Retransmissions are taken from it
  (``resupply``). The receive buffer (``tcp_recvspace``, the same size) is the window
  advertised.
* **mbufs**: ``write()`` copies user data into mbufs (112-byte mbufs, or 4096-byte clusters
  for a write of at least ``MINCLSIZE`` = 225 bytes) and ``tcp_output`` builds each segment
  from a header mbuf plus ``m_copy`` of the data (small mbufs copied, clusters shared);
  ``read()`` copies from the mbufs to the user and frees them.

Loopback connections (Harvest to NCSA on the same machine) are a direct in-kernel socket pair:
each ``write()`` copies into the peer's receive buffer and each ``read()`` copies out, with
the system calls and socket-layer work charged; no TCP, no wire. ``socketpair()`` gives the
same pair, and can carry descriptors (``sendmsg`` with access rights, used by NCSA 1.4 to hand
accepted connections to its children).
"""
from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from typing import Awaitable, Sequence

from sim.cpu import COPY, KERNEL, MBUF, SOCKET, SOFTINT
from sim.kernel import DONE, Event
from sim.time import S
from sw.doc_touch import DocTouch
from sw.libos.fs import FileSystem
from sw.libos.net import NetStack, ipv4
from sw.libos.net.tcp import DROP, IpLayer, Tcp, TcpConfig, TcpPcb, TcpState, TimeWaitTable

from .kernel import Alarm, Process, UltrixCosts, UltrixKernel, WaitChannel

log = logging.getLogger(__name__)

__all__ = ["SocketError", "Socket", "SocketLayer", "UltrixTcp", "UltrixNetStack",
           "ultrix_tcp_config", "tcp_mss", "UltrixMachine", "SB_HIWAT", "TCP_SPACE", "socket_space", "MLEN", "MCLBYTES", "MINCLSIZE", "SOMAXCONN"]

#: ``tcp_sendspace`` (= ``tcp_recvspace``: ``soreserve`` in ``tcp_attach`` sets both socket
#: buffers' ``sb_hiwat``) of each machine's system, by the profile's ``os``:
#:
#: * ULTRIX 4.2 ``sys/net/netinet/tcp_usrreq.c`` (1990 change by "lp": "Allow buffering of 16K
#:   of data. This trades off memory for fewer acks by tcp"): ``1024*16`` each. The model's
#:   servers run "Ultrix 4.3", which descends from that source.
#: * OpenBSD (the Pentium clients): 4.4BSD-Lite ``netinet/tcp_usrreq.c``: ``1024*8`` each
#:   (OpenBSD 1.x/2.x came from NetBSD 1.1, itself from 4.4BSD-Lite; not checked in OpenBSD's
#:   own tree of the time).
#: * SunOS 4.1 (the SPARCstation clients): 4096 each, 4.3BSD's ``1024*4`` which SunOS 4 kept
#:   (the ``tcp_sendspace``/``tcp_recvspace`` values tuning guides of the time raise from 4096);
#:   an estimate, SunOS's source is not available to check.
TCP_SPACE: dict[str, int] = {"Ultrix 4.3": 16 * 1024, "OpenBSD": 8 * 1024, "SunOS 4.1": 4 * 1024}
#: ULTRIX 4.2's socket buffer high-water mark (``tcp_sendspace``/``tcp_recvspace``).
SB_HIWAT = TCP_SPACE["Ultrix 4.3"]
#: Data bytes of a small mbuf: ULTRIX 4.2 ``sys/h/mbuf.h``: MSIZE 128 less MMINOFF 20
#: (five header words: m_next, m_off, m_len/m_type, m_act, m_ifp) = 108 (VALIDATION.md K3).
MLEN = 108
#: Cluster size on the MIPS: ULTRIX 4.2 ``sys/h/mbuf.h`` ``M_CLUSTERSZ`` 4096 (K3).
MCLBYTES = 4096
#: A write of at least this many bytes goes into clusters (4.3BSD-Reno's 2 * MLEN + 1).
MINCLSIZE = 2 * MLEN + 1
#: Largest listen backlog (4.3BSD).
SOMAXCONN = 5


def socket_space(profile) -> int:
    """``tcp_sendspace`` (= ``tcp_recvspace``) of the system ``profile`` runs (its ``os``).

    Raises
    ------
    ValueError
        If the profile's system has no known value in :data:`TCP_SPACE`.
    """
    os_name = getattr(profile, "os", None)
    space = TCP_SPACE.get(os_name)
    if space is None:
        raise ValueError(f"no tcp_sendspace known for the system {os_name!r} of profile "
                         f"{getattr(profile, 'name', profile)!r} (known: {', '.join(TCP_SPACE)})")
    return space


def ultrix_tcp_config(**kw) -> TcpConfig:
    """The TCP parameters of ULTRIX 4.2 on Ethernet: windows of ``tcp_recvspace`` (16 KB,
    :data:`SB_HIWAT`; a socket's own window is its machine's :func:`socket_space`), MSS 1460, MSL 30 s
    (TIME_WAIT 60 s), linear PCB lookup, the copy to the user charged by ``read()``;
    delayed ACKs (ULTRIX 4.2 ``tcp_input``: ``tcpnodelack == 0`` sets ``TF_DELACK``) and
    Nagle's rule (no ``TCP_NODELAY``: neither NCSA httpd nor Harvest set it)."""
    base = dict(mss=1460, rcv_wnd=SB_HIWAT, msl_ps=30 * S, pcb_lookup="linear",
                rx_copy=False, delayed_ack=True, nodelay=False)
    base.update(kw)
    return TcpConfig(**base)


def tcp_mss(device) -> int:
    """The MSS 4.3BSD-Tahoe's ``tcp_mss()`` (ULTRIX 4.2's) takes for a peer on the local
    network behind ``device``: the interface's MTU (its link layer's, or Ethernet's 1500) less
    the 40 bytes of TCP and IP headers, rounded down to whole mbuf clusters (:data:`MCLBYTES`)
    when it exceeds one: 1460 on Ethernet, 8192 over classical IP over ATM (MTU 9180)."""
    link = getattr(device, "link_layer", None)
    mss = (link.mtu if link is not None else 1500) - 40
    return mss - mss % MCLBYTES if mss > MCLBYTES else mss


class SocketError(OSError):
    """A socket call failed (``errno``-like ``reason``: ``"EPIPE"``, ``"ECONNRESET"``, ...)."""


def _mbufs(n: int) -> int:
    """mbufs (and clusters) holding ``n`` bytes written at once."""
    if n <= 0:
        return 0
    if n >= MINCLSIZE:
        return 2 * math.ceil(n / MCLBYTES)         # a cluster and the mbuf that points to it
    return math.ceil(n / MLEN)


# -- the 4.3BSD PCB list --------------------------------------------------------------------------
class _TimeWaitList(TimeWaitTable):
    """The library's TIME_WAIT table, telling the TCP when an entry leaves (its PCB is freed)."""

    def __init__(self, stack: IpLayer, tcp: "UltrixTcp"):
        super().__init__(stack)
        self._tcp = tcp

    def remove(self, key: tuple) -> None:
        if key in self._entries:
            self._tcp._forget(key)
        super().remove(key)

    def _expire(self) -> None:
        self._timer = None
        now = self._stack.kernel.now
        q = self._queue
        while q and q[0][0] <= now:
            t, key = q.popleft()
            e = self._entries.get(key)
            if e is not None and e.expires == t:
                del self._entries[key]
                self._tcp._forget(key)
                self.expired += 1
        self._arm()


class UltrixTcp(Tcp):
    """The library's TCP with ULTRIX 4.2's PCB list: every segment's lookup is a linear scan
    of all PCBs (newest first, TIME_WAIT ones included, the listener last), with no cache
    (``in_pcblookup(&tcb, ..., INPLOOKUP_WILDCARD)`` at ``findpcb:`` in tcp_input.c).

    Attributes
    ----------
    lookups : int
        ``in_pcblookup`` calls made for received segments and new connections.
    """

    def __init__(self, stack: IpLayer, config: TcpConfig, seed: int = 0):
        super().__init__(stack, config, seed)
        self.time_wait = _TimeWaitList(stack, self)
        self._serial = 0
        self._serial_of: dict[tuple, int] = {}     # PCB key -> creation serial
        self._order: list[int] = []                # serials of all PCBs in the list, sorted
        self._listener_serial: dict[int, int] = {}
        self.lookups = 0

    # -- the list -------------------------------------------------------------------------------
    def _new_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _remember(self, key: tuple) -> None:
        s = self._new_serial()
        self._serial_of[key] = s
        self._order.append(s)                     # the newest: its serial is the largest

    def _forget(self, key: tuple) -> None:
        s = self._serial_of.pop(key, None)
        if s is not None:
            i = bisect.bisect_left(self._order, s)
            if i < len(self._order) and self._order[i] == s:
                del self._order[i]

    @property
    def pcb_count(self) -> int:
        """PCBs in the list (listeners, connections, TIME_WAIT)."""
        return len(self._order)

    def _position(self, serial: int) -> int:
        """1-based place in the newest-first list."""
        return len(self._order) - bisect.bisect_left(self._order, serial)

    def listen(self, port, factory) -> None:
        super().listen(port, factory)
        s = self._new_serial()
        # Listeners are the oldest PCBs: they sit at the end of the scan.
        s = -s
        self._listener_serial[port] = s
        bisect.insort(self._order, s)

    def unlisten(self, port) -> None:
        super().unlisten(port)
        s = self._listener_serial.pop(port)
        i = bisect.bisect_left(self._order, s)
        del self._order[i]

    def _drop(self, pcb: TcpPcb, reason: str) -> list:
        key = pcb.key
        owned = self.conns.get(key) is pcb
        events = super()._drop(pcb, reason)
        if owned and key not in self.time_wait:
            self._forget(key)
        return events

    def _examined(self, key: tuple, found: bool) -> int:
        """Entries ULTRIX's ``in_pcblookup`` of ``key`` examines: it stops at an exact match
        (``matchwild == 0``); anything else (a SYN for the listener's wildcard, a segment for
        no connection) walks the whole list."""
        self.lookups += 1
        s = self._serial_of.get(key) if found else None
        if s is not None:
            return self._position(s)
        return len(self._order)                   # through to the listener's wildcard

    # -- input: the library's, with the 4.3BSD lookup ------------------------------------------
    def _lookup_cost(self, key: tuple, found: bool, in_time_wait: bool, new_conn: bool) -> int:
        examined = self._examined(key, found or in_time_wait)
        if new_conn and not in_time_wait:
            examined += len(self._order)          # in_pcbconnect's check that the 4-tuple is free
        return examined

    def _accepted(self, key: tuple) -> None:
        if key in self.conns and key not in self._serial_of:
            self._remember(key)

    async def connect(self, pcb, ip, port, local_port) -> None:
        # PRU_CONNECT -> in_pcbconnect: in_pcbsetaddr's in_pcblookup of the new 4-tuple (no
        # wildcard: no exact match, so the whole list), then in_pcbbind's choice of an
        # ephemeral port (one wildcard lookup per port tried, normally one): two full scans.
        examined = 2 * len(self._order)
        self.lookups += 2
        self.stats.pcb_entries_examined += examined
        await self.stack.charge_demux(examined)
        await super().connect(pcb, ip, port, local_port)
        if pcb.key in self.conns and pcb.key not in self._serial_of:
            self._remember(pcb.key)


class UltrixNetStack(NetStack):
    """A :class:`~sw.libos.net.NetStack` whose TCP is :class:`UltrixTcp` (4.3BSD's PCB list),
    with the receive path of ULTRIX 4.2 in front of IP input:

    * the driver copies each frame into an mbuf chain (``m_devget``-style: small mbufs of
      :data:`MLEN` bytes, or a cluster for a frame of :data:`MINCLSIZE` bytes or more), the
      allocations charged as :data:`~sim.cpu.MBUF`; the copy itself is the driver's;
    * ``schednetisr(NETISR_IP)`` and the software interrupt that runs ``ipintr``
      (:data:`~sim.cpu.SOFTINT`): one dispatch per batch, since ``ipintr`` dequeues every
      frame queued on ``ipintrq`` before it returns, plus the ``IF_DEQUEUE`` under
      ``splimp`` for each frame.

    Parameters
    ----------
    costs : UltrixCosts, optional
        The mbuf and software-interrupt costs (defaults to :class:`UltrixCosts`).
    """

    def __init__(self, kernel, device, ip, *, config: TcpConfig | None = None, seed: int = 0,
                 costs: UltrixCosts | None = None, **kw):
        config = config or ultrix_tcp_config()
        super().__init__(kernel, device, ip, config=config, seed=seed, **kw)
        self.tcp = UltrixTcp(self, config, seed)
        self.ucosts = costs or UltrixCosts()
        self._softint_active = False         # ipintr is draining a batch

    async def process(self, frame: bytes) -> None:
        await self.receive(frame)

    async def receive(self, frame: bytes, driver: Sequence[tuple[float, str]] = ()) -> None:
        """Process one received frame: the driver's ``(cycles, category)`` pieces (a
        subclass's receive interrupt, nothing here), the mbuf allocations and the software
        interrupt, charged in one CPU operation (:meth:`sim.cpu.CPU.charges`), then IP input.
        ``_softint_active`` is only changed by this receive task, so reading it before the
        driver's pieces is reading it where separate charges would."""
        cpu = self.cpu
        pieces = list(driver)
        ours = cpu is not None and len(frame) > self.link_header_len
        if ours:
            c = self.ucosts
            dispatch = 0.0 if self._softint_active else c.softint
            pieces += [(c.mbuf * _mbufs(len(frame) - self.link_header_len), MBUF),
                       (dispatch + c.softint_per_packet, SOFTINT)]
        if pieces:
            await cpu.charges(pieces)
        if ours:
            self._softint_active = bool(self._rxq)
        await super().process(frame)


# -- sockets --------------------------------------------------------------------------------------
def doc_passes(so: "Socket") -> int:
    """The passes the CPU makes over each byte written to ``so`` (for counting document bytes
    touched, :mod:`sw.doc_touch`): a loopback socket 1 (the copy into the peer's buffer); a
    TCP socket 3: the copy into ``so_snd``, the checksum every byte sent gets (no precomputed
    sums), and the driver's copy to the card (programmed I/O into the LANCE's buffer memory);
    2 on a DMA card that sends from the mbufs where they lie (the AN2 interface: its
    ``driver_copies`` is False). A retransmission's extra passes (a new checksum and driver
    copy) are not counted: a lower bound."""
    if so.kind == "loop":
        return 1
    return 3 if getattr(so.layer.stack.device, "driver_copies", True) else 2


class _SockPcb(TcpPcb):
    """The TCP PCB of a socket: protocol events become socket-buffer changes and wakeups."""

    def __init__(self, sock: "Socket"):
        super().__init__(rcv_wnd=sock.layer.recvspace)     # tcp_recvspace: the window offered
        self.sock = sock

    def on_connected(self):
        so = self.sock
        so.connected = True
        so.wake()                          # soisconnected: wake a process in connect()
        lst = so.listener
        if lst is not None and so.embryonic:
            so.embryonic = False
            lst.q0 -= 1
            lst.queue.append(so)
            lst.wake()

    def on_readable(self, data):
        so = self.sock
        so.rcv += data
        so.wake()

    def on_peer_closed(self):
        self.sock.rcv_eof = True
        self.sock.wake()

    def on_writable(self, acked):
        so = self.sock
        del so.snd[:acked]
        so.snd_base += acked
        so.wake()

    def on_closed(self, reason):
        so = self.sock
        so.tcp_done = reason
        if so.embryonic and so.listener is not None:
            so.embryonic = False
            so.listener.q0 -= 1
        if reason != "closed":
            so.error = reason
        so.layer._closed(so, reason)
        so.wake()

    def resupply(self, offset, length):
        so = self.sock
        i = offset - so.snd_base
        if i < 0 or i + length > len(so.snd):
            raise ValueError(f"resupply({offset}, {length}) outside so_snd "
                             f"[{so.snd_base}, {so.snd_base + len(so.snd)})")
        return bytes(so.snd[i:i + length])


class Socket:
    """A socket: ``kind`` is ``"listen"``, ``"tcp"`` or ``"loop"`` (a loopback/socketpair end).

    Attributes
    ----------
    rcv : bytearray
        Received data not yet read (``so_rcv``).
    snd : bytearray
        Written data not yet acknowledged (``so_snd``, TCP only).
    rcv_eof : bool
        The peer closed its side.
    error : str or None
        Why the connection failed (``"reset"``, ``"timeout"``, ...).
    """

    def __init__(self, layer: "SocketLayer", kind: str):
        self.layer = layer
        self.kind = kind
        self.rcv = bytearray()
        self.rcv_eof = False
        self.snd = bytearray()
        self.snd_base = 0
        self.error: str | None = None
        self.closed = False
        self.refs = 1                     # descriptors (and messages in flight) naming it
        self.connected = False
        self.tcp_done: str | None = None
        self.chan = WaitChannel(layer.kernel, f"so.{kind}")
        self.pcb: _SockPcb | None = None
        self.peer: Socket | None = None
        self.listener: Socket | None = None
        self.embryonic = False
        # listening sockets
        self.port = 0
        self.queue: deque[Socket] = deque()
        self.q0 = 0
        self.backlog = 0
        # socketpair ends: descriptors in flight
        self.fds: deque = deque()
        self.peer_name: tuple | None = None
        #: Bytes the owner has written (so a server knows whether a reply has begun).
        self.bytes_written = 0

    def wake(self) -> None:
        self.chan.wakeup()

    def readable(self) -> bool:
        """select()'s read condition (``soreadable``, or a pending connection)."""
        if self.kind == "listen":
            return bool(self.queue)
        return bool(self.rcv) or self.rcv_eof or self.error is not None or bool(self.fds)

    def writable(self) -> bool:
        """select()'s write condition: room in ``so_snd`` (or an error)."""
        if self.error is not None or self.kind == "loop":
            return True
        if self.kind != "tcp" or not self.connected:
            return False
        return len(self.snd) < self.layer.sendspace

    def __repr__(self) -> str:
        return f"<Socket {self.kind}{' closed' if self.closed else ''}>"


class SocketLayer:
    """The socket system calls of one Ultrix machine.

    Parameters
    ----------
    uk : UltrixKernel
    stack : NetStack
        The machine's TCP/IP stack (normally an :class:`UltrixNetStack`).

    Attributes
    ----------
    sendspace, recvspace : int
        The ``sb_hiwat`` of every TCP socket's ``so_snd`` and ``so_rcv`` (``tcp_attach``'s
        ``soreserve(so, tcp_sendspace, tcp_recvspace)``): the machine's own system's value,
        :func:`socket_space` of its profile.
    """

    def __init__(self, uk: UltrixKernel, stack: NetStack):
        if not isinstance(uk, UltrixKernel):
            raise TypeError(f"SocketLayer needs an UltrixKernel, not {uk!r}")
        if not isinstance(stack, NetStack):
            raise TypeError(f"SocketLayer needs a NetStack, not {stack!r}")
        self.sendspace = self.recvspace = socket_space(uk.profile)
        self.uk = uk
        self.kernel = uk.kernel
        self.cpu = uk.cpu
        self.costs = uk.costs
        self.stack = stack
        self._loop_listeners: dict[int, Socket] = {}
        self.open_sockets = 0
        self.accepted = 0
        self.refused = 0
        self.connections_closed = 0

    def _charge(self, cycles: float, category: str = SOCKET) -> Awaitable[None]:
        """The charge of ``cycles`` (nothing for zero), as the CPU operation's awaitable."""
        return self.cpu.charge(cycles, category) if cycles else DONE

    def _charges(self, pieces: Sequence[tuple[float, str]],
                 always: Sequence[tuple[float, str]] = ()) -> Awaitable[None]:
        """:meth:`_charge` of each of ``pieces`` (a zero one charges nothing), then a charge
        of each of ``always`` (even of zero cycles, as ``cpu.copy(0)`` charges), in one CPU
        operation (:meth:`sim.cpu.CPU.charges`): the same times and accounting."""
        work = [p for p in pieces if p[0]]
        work += always
        return self.cpu.charges(work) if work else DONE

    def _closed(self, so: Socket, reason: str) -> None:
        self.connections_closed += 1

    # -- set-up ---------------------------------------------------------------------------------
    async def listen(self, proc: Process, port: int, backlog: int = SOMAXCONN) -> Socket:
        """socket(), bind() and listen() on TCP ``port`` (also reachable by loopback)."""
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF:
            raise ValueError(f"port must be 1..65535, not {port!r}")
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
            raise ValueError(f"backlog must be a non-negative int, not {backlog!r}")
        for call in ("socket", "bind", "listen"):
            await proc.syscall(call)
        await self._charge(self.costs.pcb_alloc + self.costs.falloc)
        so = Socket(self, "listen")
        so.port = port
        so.backlog = min(backlog, SOMAXCONN)
        self.stack.listen(port, lambda: self._sonewconn(so))
        self._loop_listeners[port] = so
        self.open_sockets += 1
        return so

    def _full(self, lst: Socket) -> bool:
        # 4.3BSD sonewconn: refuse when so_qlen + so_q0len > 3 * so_qlimit / 2.
        return lst.closed or len(lst.queue) + lst.q0 > 3 * max(lst.backlog, 1) // 2

    def _sonewconn(self, lst: Socket):
        if self._full(lst):
            # 4.3BSD tcp_input: ``so = sonewconn(so); if (so == 0) goto drop;`` -- the SYN is
            # dropped without a reset and the client retransmits it; embryonic connections
            # leave the queue when established, reset or timed out.
            self.refused += 1
            return DROP
        so = Socket(self, "tcp")
        so.listener = lst
        so.embryonic = True
        lst.q0 += 1
        so.pcb = _SockPcb(so)
        return so.pcb

    # -- system calls -----------------------------------------------------------------------------
    async def accept(self, proc: Process, lst: Socket, *, nonblock: bool = False) -> Socket | None:
        """accept(): the next established connection (None if ``nonblock`` and none waits)."""
        self._check(lst, "listen")
        await proc.syscall("accept")
        while not lst.queue:
            if nonblock:
                return None
            ev = lst.chan.sleeper()
            await proc.sleep(ev)
        so = lst.queue.popleft()
        # sonewconn's allocations happened at the SYN, in the network's software interrupt;
        # charged here, on the same CPU, with the descriptor allocation.
        await self._charge(self.costs.pcb_alloc + self.costs.falloc + self.costs.socket_op)
        self.accepted += 1
        self.open_sockets += 1
        if so.pcb is not None:
            so.peer_name = (so.pcb.remote_ip, so.pcb.remote_port)
        return so

    async def read(self, proc: Process, so: Socket, n: int, *,
                   nonblock: bool = False) -> bytes | None:
        """read(): up to ``n`` bytes; b"" at end of stream; None if ``nonblock`` and no data.

        Raises
        ------
        SocketError
            If the connection was reset or timed out.
        """
        self._check(so, "tcp", "loop")
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"read size must be a positive int, not {n!r}")
        await proc.syscall("read")
        while not so.rcv:
            if so.error is not None:
                raise SocketError(f"read: connection {so.error}")
            if so.rcv_eof:
                await self._charge(self.costs.socket_op)
                return b""
            if nonblock:
                return None
            ev = so.chan.sleeper()
            await proc.sleep(ev)
        data = bytes(so.rcv[:n])
        del so.rcv[:n]
        # soreceive: walk and free the mbufs, copy to the user (uiomove).
        await self._charges(((self.costs.socket_op, SOCKET),
                             (self.costs.mbuf * _mbufs(len(data)), MBUF)),
                            ((self.uk.profile.copy_cycles(len(data)), COPY),))
        if so.pcb is not None and self.stack.tcp.conns.get(so.pcb.key) is so.pcb:
            # soreceive ends with PRU_RCVD: tcp_output may send a window update (which
            # carries a delayed ACK) now that the buffer has room.
            await self.stack.tcp.received(so.pcb, len(so.rcv))
        return data

    async def write(self, proc: Process, so: Socket, data: bytes, *,
                    nonblock: bool = False) -> int:
        """write(): copy ``data`` into the socket (sleeping while ``so_snd`` is full unless
        ``nonblock``); returns the bytes taken.

        Raises
        ------
        SocketError
            If the connection is gone (EPIPE) or was reset.
        """
        self._check(so, "tcp", "loop")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        await proc.syscall("write")
        if so.kind == "loop":
            return await self._loop_write(so, data)
        done = 0
        while done < len(data):
            if so.error is not None:
                raise SocketError(f"write: connection {so.error}")
            pcb = so.pcb
            if pcb.state not in (TcpState.Established, TcpState.CloseWait):
                raise SocketError(f"write: EPIPE (connection in {pcb.state.value})")
            space = self.sendspace - len(so.snd)
            if space <= 0:
                if nonblock:
                    break
                ev = so.chan.sleeper()
                await proc.sleep(ev)
                continue
            chunk = data[done:done + space]
            n = len(chunk)
            # sosend: mbufs for the chunk and uiomove from the user's buffer; tcp_output: per
            # segment a header mbuf and m_copy of the data (small mbufs are copied again,
            # clusters are shared by reference). One charge per category.
            segs = math.ceil(n / pcb.mss)
            pieces = 1 if n >= MINCLSIZE else math.ceil(min(n, pcb.mss) / MLEN)
            prof = self.uk.profile
            await self._charges(((self.costs.socket_op, SOCKET),
                                 (self.costs.mbuf * (_mbufs(n) + segs * (1 + pieces)), MBUF),
                                 (prof.copy_cycles(n) * (1 if n >= MINCLSIZE else 2), COPY)))
            so.snd += chunk
            so.bytes_written += n
            await self.stack.send(pcb, chunk)
            done += n
        return done

    async def _loop_write(self, so: Socket, data: bytes) -> int:
        peer = so.peer
        if so.error is not None or peer is None or peer.closed:
            raise SocketError("write: EPIPE (loopback peer closed)")
        n = len(data)
        await self._charges(((self.costs.socket_op * 2, SOCKET),
                             (self.costs.mbuf * _mbufs(n), MBUF)),
                            ((self.uk.profile.copy_cycles(n), COPY),))
        peer.rcv += data
        so.bytes_written += n
        peer.wake()
        return n

    async def close(self, proc: Process, so: Socket) -> None:
        """close(): release the descriptor; a TCP connection then sends its FIN after any
        queued data and lives on (FIN_WAIT, TIME_WAIT) in the kernel."""
        if not isinstance(so, Socket):
            raise TypeError(f"close of a non-socket {so!r}")
        await proc.syscall("close")
        await self._charge(self.costs.socket_op + self.costs.falloc)
        if so.closed:
            raise SocketError("close: EBADF (already closed)")
        so.refs -= 1
        if so.refs > 0:
            return                          # another descriptor (a passed copy) holds it
        so.closed = True
        self.open_sockets -= 1
        if so.kind == "listen":
            self.stack.unlisten(so.port)
            self._loop_listeners.pop(so.port, None)
        elif so.kind == "tcp":
            pcb = so.pcb
            if pcb.state in (TcpState.SynReceived, TcpState.Established, TcpState.CloseWait):
                await self.stack.close(pcb)
        else:
            peer = so.peer
            if peer is not None:
                peer.rcv_eof = True
                peer.wake()

    async def select(self, proc: Process, rd, wr=(), *,
                     until: int | None = None) -> tuple[list[Socket], list[Socket]]:
        """select(): block until a socket of ``rd`` is readable or one of ``wr`` writable,
        or until simulated time ``until`` (select's timeout, as an absolute time): then it
        returns two empty lists.

        Charges ``select_base_cycles`` and ``select_per_fd_cycles`` per descriptor for the
        first scan, and the scan again after every wakeup (BSD rescans all descriptors); a
        timeout returns without a scan (4.3BSD ``select`` returns 0 when its timer fired).
        """
        rd, wr = list(rd), list(wr)
        if not rd and not wr and until is None:
            raise ValueError("select with no descriptors would sleep forever")
        if until is not None and (isinstance(until, bool) or not isinstance(until, int)):
            raise ValueError(f"select's until must be a time in ps, not {until!r}")
        for so in rd + wr:
            if not isinstance(so, Socket):
                raise TypeError(f"select on a non-socket {so!r}")
        prof = self.uk.profile
        await proc.syscall("select")
        nfds = len(rd) + len(wr)
        per = float(prof.select_per_fd_cycles) * nfds
        scan = float(prof.select_base_cycles) + per
        while True:
            await self._charge(scan, KERNEL)
            scan = per
            r = [s for s in rd if s.readable()]
            w = [s for s in wr if s.writable()]
            if r or w:
                return r, w
            if until is not None and self.kernel.now >= until:
                return [], []
            ev = Event(self.kernel, "select")
            chans = {id(s.chan): s.chan for s in rd + wr}.values()
            for ch in chans:
                ch.register(ev)
            try:
                if until is None:
                    idx = await proc.sleep(ev)
                else:
                    idx = await proc.sleep(ev, self.kernel.sleep_until(until))
            finally:
                for ch in chans:
                    ch.forget(ev)
            if idx == 1:
                return [], []

    async def connect(self, proc: Process, ip, port: int) -> Socket:
        """socket() and connect() to TCP ``port`` of the remote host ``ip`` (a dotted string
        or 4 bytes): the active open of 4.3BSD (``soconnect`` -> ``tcp_usrreq(PRU_CONNECT)``:
        ``in_pcbconnect``, ``tcp_output`` sends the SYN); the process sleeps in ``connect()``
        until the connection is established (``soisconnected`` wakes it), as a blocking
        socket does.

        Raises
        ------
        ValueError
            For a bad address or port.
        SocketError
            ECONNREFUSED if the peer answered with a reset, ETIMEDOUT if the connection
            timer (75 s) expired first.
        """
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF:
            raise ValueError(f"port must be 1..65535, not {port!r}")
        dst = ipv4.addr(ip)                   # ValueError naming a bad address
        await proc.syscall("socket")
        # socreate: the socket, its inpcb and tcpcb (tcp_attach), and the descriptor.
        await self._charge(self.costs.pcb_alloc + self.costs.falloc, SOCKET)
        await proc.syscall("connect")
        so = Socket(self, "tcp")
        so.pcb = _SockPcb(so)
        so.peer_name = (dst, port)
        self.open_sockets += 1
        await self._charge(self.costs.socket_op, SOCKET)
        await self.stack.connect(so.pcb, dst, port)
        while not so.connected:
            if so.error is not None or so.tcp_done is not None:
                reason = so.error or so.tcp_done
                so.closed = True
                self.open_sockets -= 1
                errno = {"refused": "ECONNREFUSED", "timeout": "ETIMEDOUT"}.get(reason, reason)
                raise SocketError(f"connect: {errno} ({ipv4.format_addr(dst)}:{port})")
            ev = so.chan.sleeper()
            try:
                await proc.sleep(ev)
            except Alarm as e:
                e.socket = so               # EINTR: the socket stays the process's
                raise
        return so

    # -- loopback and socketpair ------------------------------------------------------------------
    def _pair(self) -> tuple[Socket, Socket]:
        a, b = Socket(self, "loop"), Socket(self, "loop")
        a.peer, b.peer = b, a
        a.connected = b.connected = True
        return a, b

    async def socketpair(self, proc: Process) -> tuple[Socket, Socket]:
        """socketpair(AF_UNIX, SOCK_STREAM): two connected ends."""
        await proc.syscall("socketpair")
        await self._charge(2 * (self.costs.pcb_alloc + self.costs.falloc))
        self.open_sockets += 2
        return self._pair()

    async def connect_loopback(self, proc: Process, port: int) -> Socket:
        """socket() and connect() to ``port`` of this machine over the loopback: the
        connection is an in-kernel socket pair queued on the listener (no TCP, no wire).

        Raises
        ------
        SocketError
            ECONNREFUSED if nothing listens there or its queue is full.
        """
        await proc.syscall("socket")
        await proc.syscall("connect")
        lst = self._loop_listeners.get(port)
        if lst is None or self._full(lst):
            raise SocketError(f"connect: ECONNREFUSED (loopback port {port})")
        await self._charge(2 * self.costs.pcb_alloc + self.costs.falloc + self.costs.socket_op)
        mine, theirs = self._pair()
        theirs.listener = lst
        lst.queue.append(theirs)
        lst.wake()
        self.open_sockets += 1
        return mine

    async def send_fd(self, proc: Process, end: Socket, so: Socket) -> None:
        """sendmsg() with access rights: pass ``so`` to the process holding ``end``'s peer."""
        self._check(end, "loop")
        await proc.syscall("sendmsg")
        await self._charges(((self.costs.fd_pass + self.costs.socket_op, SOCKET),
                             (self.costs.mbuf, MBUF)))
        if end.peer is None or end.peer.closed:
            raise SocketError("sendmsg: EPIPE")
        so.refs += 1                        # the message holds a reference (unp_internalize)
        end.peer.fds.append(so)
        end.peer.wake()

    async def recv_fd(self, proc: Process, end: Socket) -> Socket:
        """recvmsg() of a passed descriptor (sleeps until one arrives)."""
        self._check(end, "loop")
        await proc.syscall("recvmsg")
        while not end.fds:
            ev = end.chan.sleeper()
            await proc.sleep(ev)
        await self._charges(((self.costs.fd_pass + self.costs.socket_op, SOCKET),
                             (self.costs.mbuf, MBUF)))
        return end.fds.popleft()

    @staticmethod
    def _check(so, *kinds) -> None:
        if not isinstance(so, Socket):
            raise TypeError(f"expected a socket, not {so!r}")
        if so.kind not in kinds:
            raise ValueError(f"operation needs a {'/'.join(kinds)} socket, not a {so.kind} one")
        if so.closed:
            raise SocketError(f"EBADF: {so!r} is closed")

    def stats(self) -> dict:
        tcp = self.stack.tcp
        out = {"accepted": self.accepted, "refused": self.refused,
               "open_sockets": self.open_sockets,
               "time_wait": len(tcp.time_wait)}
        if isinstance(tcp, UltrixTcp):
            out.update(pcb_list=tcp.pcb_count, pcb_lookups=tcp.lookups,
                       pcb_entries_examined=tcp.stats.pcb_entries_examined)
        return out


# -- a booted machine -----------------------------------------------------------------------------
class UltrixMachine:
    """One DECstation running Ultrix 4.3: kernel, 4.3BSD TCP/IP stack, sockets, file system.

    Several servers may share a machine (Harvest in front of NCSA).

    Parameters
    ----------
    host : sw.host.Host
        The machine's resources; ``host.cpu`` must carry the Ultrix profile costs.
    costs : UltrixCosts, optional
    tcp_config : TcpConfig, optional
        Defaults to :func:`ultrix_tcp_config`.
    cache_blocks : int
        Buffer-cache size in file-system blocks (Ultrix sizes its cache at about 10 % of
        memory: some hundreds of 4 KB blocks on a 16-32 MB DECstation).
    """

    def __init__(self, host, *, costs=None, tcp_config: TcpConfig | None = None,
                 cache_blocks: int = 256):
        for attr in ("kernel", "cpu", "netdev", "ip"):
            if not hasattr(host, attr):
                raise TypeError(f"an Ultrix machine needs a sw.host.Host, not {host!r}")
        if isinstance(cache_blocks, bool) or not isinstance(cache_blocks, int) or cache_blocks < 16:
            raise ValueError(f"cache_blocks must be an int >= 16, not {cache_blocks!r}")
        self.host = host
        #: What the CPU did to served documents (``host.doc_touch``; its own for a host
        #: without one): the servers count their passes over document bytes here.
        self.doc_touch = getattr(host, "doc_touch", None) or DocTouch()
        self.uk = UltrixKernel(host.kernel, host.cpu, costs=costs, name=host.name)
        self.stack = UltrixNetStack(host.kernel, host.netdev, host.ip, cpu=host.cpu,
                                    seed=host.seed, name=host.name,
                                    config=tcp_config or ultrix_tcp_config(
                                        mss=tcp_mss(host.netdev)),
                                    costs=self.uk.costs)
        host.netdev.attach(self.stack.input)
        for ip, mac in (host.arp or {}).items():
            self.stack.add_arp(ip, mac)
        self.sockets = SocketLayer(self.uk, self.stack)
        self.cache_blocks = cache_blocks
        self._mounting: Event | None = None

    @property
    def fs(self):
        return self.uk.fs

    async def mount(self) -> None:
        """Mount the documents' file system (once; later calls wait for the first)."""
        if self.uk.fs is not None:
            return
        if self._mounting is not None:
            await self._mounting
            return
        if self.host.blockdev is None:
            raise ValueError(f"host {self.host.name!r} has no blockdev holding the documents")
        self._mounting = Event(self.host.kernel, "mount")
        fs = await FileSystem.mount(self.host.blockdev, cache_blocks=self.cache_blocks,
                                    cpu=self.host.cpu, kernel=self.host.kernel)
        self.uk.attach_fs(fs)
        self._mounting.set()

    def stats(self) -> dict:
        out = dict(self.uk.stats())
        out.update(self.sockets.stats())
        out.update(self.doc_touch.as_dict())
        return out
