"""A minimal HTTP/1.0 server on the library OS, for tests and smoke runs of the experiment.

Not one of the paper's servers: it has the :class:`sw.host.HttpServer` shape and the simplest
structure that works (the libos TCP/IP stack, the file system library, one PCB per
connection, each file read from the file system once and kept), so the experiment backbone
(machines, clients, results) can be exercised without Cheetah or the Ultrix model.
It charges the CPU only through the stack and the file system. On an Aegis machine
(``host.extra["aegis"]``) it is an environment like Cheetah: it installs its filters and the
kernel, which owns the card's receive path, upcalls it with its frames
(:class:`sw.libos.net.aegis_env.AegisNetwork`).
"""
from __future__ import annotations

import logging

from sw.host import HTTP_PORT, Host
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net.aegis_env import AegisNetwork

log = logging.getLogger(__name__)

__all__ = ["StaticServer", "make_server"]

_HEAD_END = b"\r\n\r\n"


class _Conn(TcpPcb):
    def __init__(self, server: "StaticServer"):
        super().__init__()
        self.server = server
        self.buf = b""
        self.response = b""
        self.answered = False

    async def on_readable(self, data: bytes):
        if self.answered:
            return
        self.buf += data
        if _HEAD_END not in self.buf:
            return
        self.answered = True
        self.response = await self.server.respond(self.buf)
        await self.server.stack.send(self, self.response, last=True)

    def resupply(self, offset: int, length: int) -> bytes:
        return self.response[offset:offset + length]


class StaticServer:
    """Serves ``GET /path HTTP/1.0`` from the file system on ``host.blockdev``.

    Parameters
    ----------
    host : Host
        A booted server machine (``netdev`` and ``blockdev`` set).

    Raises
    ------
    TypeError
        If ``host`` is not a Host.
    """

    name = "static"

    def __init__(self, host: Host):
        if not isinstance(host, Host):
            raise TypeError(f"host must be a sw.host.Host, not {host!r}")
        self.host = host
        self.stack: NetStack | None = None
        self.fs = None
        self.files: dict[str, bytes] = {}
        self.served = 0
        self.errors = 0

    async def start(self) -> None:
        """Mount the file system and listen on port 80."""
        from sw.libos.fs import FileSystem

        h = self.host
        if h.netdev is None or h.blockdev is None:
            raise ValueError(f"host {h.name!r} has no netdev or blockdev (boot it first)")
        self.fs = await FileSystem.mount(h.blockdev, cpu=h.cpu, kernel=h.kernel)
        aegis = h.extra.get("aegis")
        net = h.netdev if aegis is None else AegisNetwork(aegis, f"{h.name}.static", h.netdev.mac)
        self.stack = NetStack(h.kernel, net, h.ip, cpu=h.cpu, name=f"{h.name}.net", seed=h.seed)
        if aegis is None:
            h.netdev.attach(self.stack.input)
        else:
            net.serve(self.stack, port=HTTP_PORT, ip=h.ip)
        for ip, mac in h.arp.items():
            self.stack.add_arp(ip, mac)
        self.stack.listen(HTTP_PORT, lambda: _Conn(self))

    async def respond(self, request: bytes) -> bytes:
        """The whole response to ``request`` (head and body)."""
        from sw.libos.fs import FsError

        parts = request.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or parts[0] != b"GET":
            self.errors += 1
            return b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        path = parts[1].decode("latin-1")
        body = self.files.get(path)
        if body is None:
            try:
                body = await self.fs.read(path)
            except (FsError, ValueError):
                self.errors += 1
                return b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            self.files[path] = body
        self.served += 1
        return (b"HTTP/1.0 200 OK\r\nServer: serveros-static\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body

    def stats(self) -> dict:
        """Requests served, errors, TIME_WAIT entries held, TCP segments in and out."""
        tcp = self.stack.tcp if self.stack is not None else None
        return {"served": self.served, "errors": self.errors,
                "time_wait": len(tcp.time_wait) if tcp else 0,
                "segments_in": tcp.stats.segments_in if tcp else 0,
                "segments_out": tcp.stats.segments_out if tcp else 0}


def make_server(host: Host, config=None) -> StaticServer:
    """A :class:`StaticServer` on ``host`` (``config`` is accepted and ignored)."""
    return StaticServer(host)
