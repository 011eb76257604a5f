"""The paper's closed-loop HTTP client: one document, again and again, a connection per request.

Each :class:`HttpClient` is a user process on a real client machine (:mod:`.bsd`: a BSD
kernel with its socket layer, TCP and Ethernet driver, on the client's platform profile, a
Pentium-100 under OpenBSD or a SPARCstation 1 under SunOS 4.1). For each request the program
does what the paper's synchronous client did: ``socket()`` and ``connect()`` to port 80 (the
process sleeps until the handshake completes, so the request is never piggybacked on the
handshake's ACK), ``write()`` of ``GET <path> HTTP/1.0``, ``read()`` until end of file, and
``close()``; then the next request. It records, per request, when it started (the connect),
when it ended (the close after the last byte), the bytes received, the status code, and
whether the response was whole (the body length equals the ``Content-Length``).

A request that does not end within ``timeout_ps`` (10 s simulated by default) is aborted
(``close()`` with a zero linger: a RST) and counted as failed; so are refused and reset
connections and malformed or short responses. The deadline is the harness's watchdog (an
interval timer the program does not pay for), so the client never hangs.

CPU costs
---------
Everything the machine does is charged to its own CPU (:attr:`HttpClient.host`'s): system
calls, context switches, the socket layer, mbufs, TCP/IP, checksums, copies and the
Ethernet driver, plus the program's own parsing (:data:`PARSE_INSTRUCTIONS`).
:meth:`HttpClient.cpu_summary` reports the client's busy fraction and breakdown.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable

from sim.cpu import APPLICATION, IDLE
from sim.time import S
from sw.host import HTTP_PORT, Host
from sw.ultrix import Process
from sw.ultrix.kernel import Alarm
from sw.ultrix.sockets import Socket, SocketError

from .bsd import ClientOS, client_os

log = logging.getLogger(__name__)

__all__ = ["HttpClient", "RequestRecord", "ClientStats", "parse_response_head",
           "DEFAULT_TIMEOUT_PS", "READ_SIZE", "PARSE_INSTRUCTIONS"]

#: The program's read() buffer (BUFSIZ of the BSD stdio of the period).
READ_SIZE = 4096
#: The program's own work per request: format the request line, find the head's end and
#: parse the status line and Content-Length (an estimate: about 400 instructions).
PARSE_INSTRUCTIONS = 400
#: A request with no complete answer after this long is aborted and counted failed.
DEFAULT_TIMEOUT_PS = 10 * S
_HEAD_END = b"\r\n\r\n"


def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """``(status, headers)`` of an HTTP response head (without the blank line); header names
    are lower-cased.

    Raises
    ------
    ValueError
        If the status line is not ``HTTP/x.y NNN ...``.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"malformed HTTP status line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(parts[1]), headers


@dataclass
class RequestRecord:
    """One request: times in ps; ``status`` None when no status line arrived.

    Attributes
    ----------
    start, end : int
        The connect, and the close after the last byte (or the failure).
    bytes : int
        Bytes received (head and body).
    body_bytes : int
        Bytes after the head.
    status : int or None
    ok : bool
        A whole response (status line, and the body as long as its Content-Length).
    error : str or None
        Why not ok: ``timeout``, ``refused``, ``reset``, ``malformed``, ``length``, ...
    """

    start: int
    end: int
    bytes: int
    body_bytes: int
    status: int | None
    ok: bool
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClientStats:
    """Counts over a client's run."""

    requests: int = 0
    ok: int = 0
    failed: int = 0
    timeouts: int = 0
    bytes: int = 0


class _Response:
    """What a request has received: the head (once complete) and the byte counts."""

    __slots__ = ("pending", "received", "head", "head_len")

    def __init__(self) -> None:
        self.pending = b""
        self.received = 0
        self.head: bytes | None = None
        self.head_len = 0

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.head is None:
            buf = self.pending + data if self.pending else data
            i = buf.find(_HEAD_END)
            if i >= 0:
                self.head = buf[:i]
                self.head_len = i + len(_HEAD_END)
                self.pending = b""
            else:
                self.pending = buf


def _reason(e: SocketError) -> str:
    """The record's error for a failed socket call."""
    msg = str(e)
    for key, reason in (("ECONNREFUSED", "refused"), ("ETIMEDOUT", "timeout"),
                        ("reset", "reset"), ("EPIPE", "reset")):
        if key in msg:
            return reason
    return msg


class HttpClient:
    """A closed-loop HTTP/1.0 client requesting ``path`` from ``server_ip`` ``requests`` times.

    Parameters
    ----------
    host : Host
        The client machine (its ``netdev``, ``ip``, ``cpu``, ``arp``).
    server_ip : str or bytes
        The server's address (port 80).
    path : str
        The document, e.g. ``"/doc100"``.
    requests : int
        How many requests to make (>= 1).
    on_done : callable, optional
        ``on_done(client)`` when the last request has ended.
    timeout_ps : int
        A request's deadline (default 10 s simulated).
    port : int
        The server's port (default 80).

    Raises
    ------
    TypeError
        If ``host`` is not a Host or ``on_done`` is not callable.
    ValueError
        For a bad address, path, request count or timeout.

    Examples
    --------
    ``k.spawn(HttpClient(host, "10.0.0.1", "/doc100", 1000).run())``; afterwards
    ``client.records`` holds a :class:`RequestRecord` per request.
    """

    def __init__(self, host: Host, server_ip: str | bytes, path: str, requests: int, *,
                 on_done: Callable[["HttpClient"], Any] | None = None,
                 timeout_ps: int = DEFAULT_TIMEOUT_PS, port: int = HTTP_PORT):
        from sw.libos.net import ipv4

        if not isinstance(host, Host):
            raise TypeError(f"host must be a sw.host.Host, not {host!r}")
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            raise ValueError(f"path must be an absolute URL path without spaces, not {path!r}")
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ValueError(f"requests must be an integer >= 1, not {requests!r}")
        if isinstance(timeout_ps, bool) or not isinstance(timeout_ps, int) or timeout_ps <= 0:
            raise ValueError(f"timeout_ps must be a positive integer, not {timeout_ps!r}")
        if on_done is not None and not callable(on_done):
            raise TypeError(f"on_done must be callable, not {on_done!r}")
        self.host = host
        self.kernel = host.kernel
        self.name = f"{host.name}.http"
        self.server_ip = ipv4.addr(server_ip)
        self.port = port
        self.path = path
        self.requests = requests
        self.timeout_ps = timeout_ps
        self.on_done = on_done
        self.request = f"GET {path} HTTP/1.0\r\nUser-Agent: serveros\r\n\r\n".encode("ascii")
        self.os: ClientOS = client_os(host)
        self.records: list[RequestRecord] = []
        self.stats = ClientStats()
        self.finished = False
        self.proc: Process | None = None
        self._started: int | None = None
        self._parse = host.cpu.profile.instructions(PARSE_INSTRUCTIONS)

    async def run(self) -> list[RequestRecord]:
        """Make every request in turn (as a process on the client machine); returns the
        records."""
        self._started = self.kernel.now
        self.proc = self.os.spawn(self._program, "http")
        await self.proc.task
        self.finished = True
        if self.on_done is not None:
            r = self.on_done(self)
            if hasattr(r, "__await__"):
                await r
        return self.records

    async def _program(self, proc: Process) -> None:
        for _ in range(self.requests):
            await self._one(proc)

    async def _one(self, proc: Process) -> None:
        k = self.kernel
        sockets = self.os.sockets
        start = k.now
        resp = _Response()
        proc.alarm_at = start + self.timeout_ps        # the harness's watchdog
        so: Socket | None = None
        try:
            so = await sockets.connect(proc, self.server_ip, self.port)
            await sockets.write(proc, so, self.request)
            while True:
                data = await sockets.read(proc, so, READ_SIZE)
                if not data:
                    break
                resp.feed(data)
            proc.alarm_at = None
            await proc.compute(self._parse, APPLICATION)
            await sockets.close(proc, so)
        except Alarm as e:
            if so is not None:
                await self.os.abort(proc, so)
            elif e.socket is not None:                   # interrupted inside connect()
                await self.os.abort_connect(e.socket)
            self.stats.timeouts += 1
            self._record(start, resp, False, "timeout")
            return
        except SocketError as e:
            proc.alarm_at = None
            if so is not None and not so.closed:
                await sockets.close(proc, so)
            self._record(start, resp, False, _reason(e))
            return
        except ValueError as e:                  # e.g. no ephemeral port free
            proc.alarm_at = None
            self._record(start, resp, False, f"connect: {e}")
            return
        if resp.head is None:
            self._record(start, resp, False, "malformed")
            return
        try:
            status, headers = parse_response_head(resp.head)
        except ValueError:
            self._record(start, resp, False, "malformed")
            return
        body = resp.received - resp.head_len
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) != body):
            self._record(start, resp, False, "length", status)
            return
        self._record(start, resp, 200 <= status < 300, None if 200 <= status < 300 else "status",
                     status)

    def cpu_summary(self) -> dict:
        """The client machine's CPU since :meth:`run` started: ``client`` (its profile name),
        ``client_cpu_busy_fraction`` and ``client_cpu_breakdown`` (category -> fraction of
        the interval, idle included)."""
        rep = self.host.cpu.report()
        t0 = self._started if self._started is not None else rep.start
        span = max(1, rep.end - t0)
        busy = {c: s.ps for c, s in rep.by_category.items() if c != IDLE and s.ps}
        total = sum(busy.values())
        out = {c: ps / span for c, ps in sorted(busy.items())}
        out[IDLE] = 1.0 - total / span
        return {"client": self.host.cpu.profile.name, "client_cpu_busy_fraction": total / span,
                "client_cpu_breakdown": out}

    def _record(self, start: int, resp: _Response, ok: bool, error: str | None,
                status: int | None = None) -> None:
        body = max(0, resp.received - resp.head_len) if resp.head is not None else 0
        self.records.append(RequestRecord(start, self.kernel.now, resp.received, body, status, ok,
                                          error))
        st = self.stats
        st.requests += 1
        st.bytes += resp.received
        if ok:
            st.ok += 1
        else:
            st.failed += 1
            log.debug("%s: request %d failed: %s", self.name, st.requests, error)

    def __repr__(self) -> str:
        return f"<HttpClient {self.host.name} GET {self.path} x{self.requests}>"
