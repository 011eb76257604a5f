"""The paper's closed-loop HTTP client: one document, again and again, a connection per request.

Each :class:`HttpClient` runs on a client :class:`~sw.host.Host` over the library OS's TCP/IP
stack (:class:`sw.libos.net.NetStack`, one per host, kept in ``host.extra["netstack"]``). For
each request it opens a new TCP connection to port 80, sends ``GET <path> HTTP/1.0``, reads
the response until the server closes, closes its side, and starts the next request as soon as
its connection is closed. It records, per request, when it started (the connect), when it
ended (the connection closed after the last byte), the bytes received, the status code, and
whether the response was whole (the body length equals the ``Content-Length``).

A request that does not end within ``timeout_ps`` (10 s simulated by default) is aborted
(a RST) and counted as failed; so are refused and reset connections and malformed or short
responses. The client never hangs and never polls: it waits on one event per request.

CPU costs
---------
The stack charges the client workstation's CPU per packet (its profile). The client program
itself is charged, once per request, the system calls a BSD client makes (``socket``,
``connect``, ``write``, two ``read`` and ``close``: 6 x ``syscall_cycles``, as
:data:`~sim.cpu.SYSCALL`), which is an estimate of the program's structure, not a calibrated
figure. The paper's clients were not the bottleneck; these costs only keep them from being
infinitely fast.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable

from sim.cpu import SYSCALL
from sim.kernel import Event
from sim.time import S
from sw.host import HTTP_PORT, Host
from sw.libos.net import NetStack, TcpPcb

log = logging.getLogger(__name__)

__all__ = ["HttpClient", "RequestRecord", "ClientStats", "client_stack", "parse_response_head",
           "SYSCALLS_PER_REQUEST", "DEFAULT_TIMEOUT_PS"]

#: System calls of one request in a BSD client (socket, connect, write, read, read, close).
SYSCALLS_PER_REQUEST = 6
#: A request with no complete answer after this long is aborted and counted failed.
DEFAULT_TIMEOUT_PS = 10 * S
_HEAD_END = b"\r\n\r\n"


def client_stack(host: Host) -> NetStack:
    """The host's TCP/IP stack, created on first use over ``host.netdev`` with ``host.arp``
    preloaded (kept in ``host.extra["netstack"]``)."""
    stack = host.extra.get("netstack")
    if stack is None:
        stack = NetStack(host.kernel, host.netdev, host.ip, cpu=host.cpu, name=host.name,
                         seed=host.seed)
        host.netdev.attach(stack.input)
        for ip, mac in host.arp.items():
            stack.add_arp(ip, mac)
        host.extra["netstack"] = stack
    return stack


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


class _Request(TcpPcb):
    """One request's connection (the client's PCB)."""

    def __init__(self, client: "HttpClient"):
        super().__init__()
        self.client = client
        self.pending = b""
        self.received = 0
        self.head: bytes | None = None
        self.head_len = 0
        self.peer_closed = False
        self.done = Event(client.kernel, f"{client.name}.req")

    def on_connected(self):
        return self.client.stack.send(self, self.client.request)

    def on_readable(self, data: bytes):
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

    async def on_peer_closed(self):
        self.peer_closed = True
        await self.client.stack.close(self)

    def on_closed(self, reason: str):
        self.done.set(reason)

    def resupply(self, offset: int, length: int) -> bytes:
        return self.client.request[offset:offset + length]


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
        self.stack = client_stack(host)
        self.records: list[RequestRecord] = []
        self.stats = ClientStats()
        self.finished = False
        self._syscalls = float(host.cpu.profile.syscall_cycles) * SYSCALLS_PER_REQUEST

    async def run(self) -> list[RequestRecord]:
        """Make every request in turn; returns the records."""
        for _ in range(self.requests):
            await self._one()
        self.finished = True
        if self.on_done is not None:
            r = self.on_done(self)
            if hasattr(r, "__await__"):
                await r
        return self.records

    async def _one(self) -> None:
        k = self.kernel
        start = k.now
        await self.host.cpu.charge(self._syscalls, SYSCALL)
        req = _Request(self)
        try:
            await self.stack.connect(req, self.server_ip, self.port)
        except ValueError as e:                  # e.g. no ephemeral port free
            self._record(start, req, False, f"connect: {e}")
            return
        idx, reason = await k.timeout(req.done, self.timeout_ps)
        if idx != 0:
            await self.stack.abort(req)
            self.stats.timeouts += 1
            self._record(start, req, False, "timeout")
            return
        if reason != "closed":
            self._record(start, req, False, reason)
            return
        if req.head is None:
            self._record(start, req, False, "malformed")
            return
        try:
            status, headers = parse_response_head(req.head)
        except ValueError:
            self._record(start, req, False, "malformed")
            return
        body = req.received - req.head_len
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) != body):
            self._record(start, req, False, "length", status)
            return
        self._record(start, req, 200 <= status < 300, None if 200 <= status < 300 else "status",
                     status)

    def _record(self, start: int, req: _Request, ok: bool, error: str | None,
                status: int | None = None) -> None:
        body = max(0, req.received - req.head_len) if req.head is not None else 0
        self.records.append(RequestRecord(start, self.kernel.now, req.received, body, status, ok,
                                          error))
        st = self.stats
        st.requests += 1
        st.bytes += req.received
        if ok:
            st.ok += 1
        else:
            st.failed += 1
            log.debug("%s: request %d failed: %s", self.name, st.requests, error)

    def __repr__(self) -> str:
        return f"<HttpClient {self.host.name} GET {self.path} x{self.requests}>"
