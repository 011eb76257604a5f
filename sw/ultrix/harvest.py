"""A Harvest httpd-accelerator-like server on the Ultrix model, in front of NCSA httpd.

Structure (Chankhunthod et al., "A Hierarchical Internet Object Cache", USENIX 1996;
CALIBRATION.md, "The baseline servers"): one process, non-blocking I/O driven by a
``select()`` loop, objects cached in memory. As an httpd-accelerator it listens on port 80 in
front of the real web server on the same machine:

* a **hit** (an object cached under the URL) is answered from memory: the stored MIME header
  and body are written to the client with non-blocking ``write()`` calls as ``select()``
  reports room, then the connection is closed; the file system is not touched;
* a **miss** opens a connection to the NCSA server on the same machine (the loopback: an
  in-kernel socket pair, :meth:`~sw.ultrix.sockets.SocketLayer.connect_loopback`), forwards
  the request, reads the whole reply, caches it if it is a ``200`` reply to a GET, and relays
  it to the client.

HEAD requests are answered from a cached object's header; a HEAD miss is forwarded and not
cached. Anything the accelerator cannot parse is forwarded too, so errors are NCSA's.
The cache has no size limit or expiry (the experiment's documents fit, and do not change).

System calls per request besides the socket calls: ``gettimeofday`` after every ``select()``
(the main loop's ``getCurrentTime()``) and three ``fcntl`` calls on each accepted descriptor
(non-blocking and close-on-exec), as Harvest's ``comm.c`` did (from memory of the Harvest
sources: the search tool holds no Harvest ``cached`` source, only Squid's much later 2.x
trees, which are not 1995's program; an estimate).

Robustness: a connection on which nothing happens for :attr:`HarvestOptions.read_timeout`
seconds is closed (Harvest's ``read_timeout``, 15 minutes in its ``cached.conf`` and in the
``squid.conf`` Squid inherited it with; quoted from memory of those files, not checked here):
the ``select()`` loop sleeps at most until the earliest deadline. An unexpected exception while
handling one connection is logged with its traceback, counted (``internal_errors``), answered
500 if nothing was sent yet, and only that connection is closed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sim.kernel import Event
from sim.time import S

from .kernel import Process, cpi_scale
from .ncsa import (NcsaOptions, NcsaServer, answer_internal_error, parse_request,
                   request_complete)
from .sockets import Socket, SocketError, SocketLayer, UltrixMachine, doc_passes

log = logging.getLogger(__name__)

__all__ = ["HarvestOptions", "HarvestServer"]


@dataclass(frozen=True)
class HarvestOptions:
    """The accelerator's configuration and the estimate of its user-level work.

    Attributes
    ----------
    port : int
        Where it accepts clients (80).
    backend_port : int
        The NCSA server's port on the same machine (reached over the loopback).
    request_cycles : float
        User-level work per request, estimate: parse the request line, hash the URL and probe
        the object table, set up the per-connection state and the non-blocking bookkeeping,
        about 1500 instructions at CPI 2.08 = 3100 cycles (the accelerator's own path is far
        shorter than NCSA's: no name translation, access checks or header formatting).
    read_size : int
        Bytes asked of each non-blocking read.
    read_timeout : int
        Seconds a connection may stay without progress (no request bytes, no reply bytes
        taken, no reply from the backend) before it is closed: 900 (15 minutes).
    """

    port: int = 80
    backend_port: int = 8080
    request_cycles: float = 3_100
    read_size: int = 8192
    read_timeout: int = 900

    def __post_init__(self) -> None:
        for name in ("port", "backend_port"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 0xFFFF:
                raise ValueError(f"HarvestOptions.{name} must be 1..65535, not {v!r}")
        if self.port == self.backend_port:
            raise ValueError(f"port and backend_port must differ (both {self.port})")
        for name in ("read_size", "read_timeout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"HarvestOptions.{name} must be a positive int, not {v!r}")
        if isinstance(self.request_cycles, bool) or not isinstance(self.request_cycles, (int, float)) \
                or self.request_cycles < 0:
            raise ValueError(f"request_cycles must be >= 0, not {self.request_cycles!r}")


@dataclass
class _Conn:
    client: Socket
    inbuf: bytes = b""
    state: str = "request"          # request -> (backend ->) sending
    out: bytes = b""
    sent: int = 0
    backend: Socket | None = None
    reply: bytearray = field(default_factory=bytearray)
    key: str = ""
    cacheable: bool = False
    doc_start: int = 0              # where the document's bytes begin in ``out``
    deadline: int = 0               # closed if nothing happens on it before then (ps)


def _split_reply(reply: bytes) -> tuple[bytes, bytes]:
    i = reply.find(b"\r\n\r\n")
    if i < 0:
        return reply, b""
    return reply[:i + 4], reply[i + 4:]


class HarvestServer:
    """The Harvest accelerator and the NCSA server behind it (see the module docstring).
    Built by :func:`sw.ultrix.make_harvest`.

    Parameters
    ----------
    machine : UltrixMachine
    options : HarvestOptions, optional
    backend : NcsaServer, optional
        The server for misses; default an NCSA server on ``options.backend_port`` of the
        same machine.
    name : str
    """

    def __init__(self, machine: UltrixMachine, options: HarvestOptions | None = None, *,
                 backend: NcsaServer | None = None, name: str = "harvest"):
        if not isinstance(machine, UltrixMachine):
            raise TypeError(f"HarvestServer needs an UltrixMachine, not {machine!r}")
        if options is not None and not isinstance(options, HarvestOptions):
            raise TypeError(f"options must be HarvestOptions, not {options!r}")
        self.machine = machine
        self.options = options or HarvestOptions()
        self.name = name
        self.uk = machine.uk
        # The estimate counts instructions at the 3MIN's CPI: re-priced on a derived profile
        # (another clock or memory, issue 18), unchanged (x 1.0) on the paper's.
        self._request_cycles = self.options.request_cycles * cpi_scale(self.uk.profile)
        self.sockets: SocketLayer = machine.sockets
        if backend is None:
            backend = NcsaServer(machine, NcsaOptions(port=self.options.backend_port),
                                 name=f"{name}.ncsa")
        if not isinstance(backend, NcsaServer):
            raise TypeError(f"backend must be an NcsaServer, not {backend!r}")
        self.backend = backend
        self.cache: dict[str, tuple[bytes, bytes]] = {}
        self.hits = self.misses = self.requests = self.errors = 0
        self.timeouts = self.internal_errors = 0
        self.proc: Process | None = None
        self._ready: Event | None = None

    async def start(self) -> None:
        """Start NCSA behind, then the accelerator; return when port 80 accepts."""
        if self._ready is not None:
            raise RuntimeError(f"{self.name} already started")
        await self.backend.start()
        self._ready = Event(self.uk.kernel, f"{self.name}.ready")
        self.proc = self.uk.spawn(self._main, f"{self.name}.cached")
        await self._ready

    def stats(self) -> dict:
        return {"server": self.name, "requests": self.requests, "hits": self.hits,
                "misses": self.misses, "errors": self.errors, "timeouts": self.timeouts,
                "internal_errors": self.internal_errors, "objects": len(self.cache),
                "cached_bytes": sum(len(h) + len(b) for h, b in self.cache.values()),
                "backend": {k: v for k, v in self.backend.stats().items()
                            if k in ("requests", "by_status", "body_bytes", "errors")},
                **self.machine.stats()}

    # -- the select loop -----------------------------------------------------------------------
    async def _main(self, proc: Process) -> None:
        so = self.sockets
        lst = await so.listen(proc, self.options.port, backlog=5)
        self._ready.set()
        conns: list[_Conn] = []
        while True:
            rd: list[Socket] = [lst]
            wr: list[Socket] = []
            for c in conns:
                if c.state == "request":
                    rd.append(c.client)
                elif c.state == "backend":
                    rd.append(c.backend)
                else:
                    wr.append(c.client)
            until = min(c.deadline for c in conns) if conns else None
            r, w = await so.select(proc, rd, wr, until=until)
            await proc.syscall("gettimeofday")         # the loop's getCurrentTime() after select
            r, w = set(map(id, r)), set(map(id, w))
            now = self.uk.kernel.now
            timeout = self.options.read_timeout * S
            if id(lst) in r:
                new = await so.accept(proc, lst, nonblock=True)
                if new is not None:
                    # comm.c: commSetNonBlocking (fcntl F_GETFL, F_SETFL) and
                    # commSetCloseOnExec (fcntl F_SETFD) on every accepted descriptor.
                    for _ in range(3):
                        await proc.syscall("fcntl")
                    conns.append(_Conn(new, deadline=now + timeout))
            for c in list(conns):
                if c.state == "request" and id(c.client) in r:
                    handler = self._on_request
                elif c.state == "backend" and c.backend is not None and id(c.backend) in r:
                    handler = self._on_backend
                elif c.state == "sending" and id(c.client) in w:
                    handler = self._on_writable
                else:
                    handler = None
                try:
                    if handler is not None:
                        c.deadline = now + timeout      # progress: the timer starts again
                        await handler(proc, c)
                    elif c.deadline <= now:
                        self.timeouts += 1
                        log.info("%s: connection idle for %d s: closed", self.name,
                                 self.options.read_timeout)
                        await self._finish(proc, c)
                except SocketError as e:
                    self.errors += 1
                    log.debug("%s: %s", self.name, e)
                    await self._finish(proc, c)
                except Exception:                       # noqa: BLE001 - keep serving the rest
                    await self._internal_error(proc, c)
                if c.state == "done":
                    conns.remove(c)

    async def _internal_error(self, proc: Process, c: _Conn) -> None:
        """An unexpected exception on one connection: log it with its traceback, count it,
        answer 500 if nothing was sent yet, close only that connection."""
        self.internal_errors += 1
        log.error("%s: internal error on a connection", self.name, exc_info=True)
        await answer_internal_error(self.sockets, proc, c.client, c.key, self.uk.kernel.now,
                                    nonblock=True)
        try:
            await self._finish(proc, c)
        except SocketError:
            c.state = "done"

    async def _finish(self, proc: Process, c: _Conn) -> None:
        so = self.sockets
        if c.backend is not None and not c.backend.closed:
            await so.close(proc, c.backend)
        if not c.client.closed:
            await so.close(proc, c.client)
        c.state = "done"

    async def _on_request(self, proc: Process, c: _Conn) -> None:
        so = self.sockets
        got = await so.read(proc, c.client, self.options.read_size, nonblock=True)
        if got is None:
            return
        c.inbuf += got
        if got and not request_complete(c.inbuf) and len(c.inbuf) < 8192:
            return                                  # wait for the rest of the request
        if not c.inbuf:
            await self._finish(proc, c)             # the client went away
            return
        self.requests += 1
        await proc.compute(self._request_cycles)
        req = parse_request(c.inbuf)
        if req.status == 0 and req.version is not None:
            c.key = req.url
            obj = self.cache.get(req.url)
            if obj is not None:
                self.hits += 1
                hdr, body = obj
                c.out = hdr if req.method == "HEAD" else hdr + body
                c.doc_start = len(hdr)
                c.state = "sending"
                await self._on_writable(proc, c)
                return
            c.cacheable = req.method == "GET"
        self.misses += 1
        c.backend = await so.connect_loopback(proc, self.options.backend_port)
        await so.write(proc, c.backend, c.inbuf)
        c.state = "backend"

    async def _on_backend(self, proc: Process, c: _Conn) -> None:
        so = self.sockets
        got = await so.read(proc, c.backend, self.options.read_size, nonblock=True)
        if got is None:
            return
        if got:
            c.reply += got
            return
        await so.close(proc, c.backend)
        c.backend = None
        reply = bytes(c.reply)
        hdr, body = _split_reply(reply)
        self.machine.doc_touch.touched(len(body))   # read(): copied out of the backend's socket
        if c.cacheable and reply.startswith(b"HTTP/1.0 200 "):
            self.cache[c.key] = (hdr, body)
        c.out = reply
        c.doc_start = len(hdr)
        c.state = "sending"
        await self._on_writable(proc, c)

    async def _on_writable(self, proc: Process, c: _Conn) -> None:
        so = self.sockets
        if c.sent < len(c.out):
            before = c.sent
            c.sent += await so.write(proc, c.client, c.out[c.sent:], nonblock=True)
            doc = max(0, c.sent - max(before, c.doc_start))
            self.machine.doc_touch.touched(doc * doc_passes(c.client))
        if c.sent >= len(c.out):
            await self._finish(proc, c)
