"""Benchmarks of the client rows: lmbench 1.x on the Pentium-100 (C1) and Ousterhout's on the
SPARCstation 1 (C4), run as processes on a simulated client machine.

Each benchmark boots one client machine of the row's platform (:mod:`sw.clients.bsd`: the BSD
kernel, socket layer, 4.3BSD TCP and ``lo0`` on the client's profile) and runs the measured
program as simulated processes, timing it in simulated time as the original timed it in
wall-clock time:

* C1-1 (lmbench 1.x ``lat_syscall``, "null system call"): one process writes one byte to
  ``/dev/null`` in a loop (lmbench 1.x's null call, before later versions took ``getppid``;
  from the lmbench 1 source as remembered, to check against the database's own sources).
* C4-1 (Ousterhout's ``getpid``): one process calls ``getpid`` in a loop.
* C1-2 (lmbench ``lat_ctx``, 2 processes, no working set): two processes pass a one-byte
  token round a ring of two pipes; lmbench subtracts the same passes made by one process
  through its own pipe (the pipe overhead), and so does this benchmark: the value is the
  remaining time per switch.
* C4-2 (Ousterhout's ``cswitch``): the same two-process ping-pong over two pipes, the whole
  round trip (his value includes the pipe reads and writes).
* C1-6 (lmbench ``lat_pipe``, proposed row: 127 us in the C1 machine's result file): the same
  two-process round trip on the Pentium.
* C1-7 (lmbench ``lat_ctx``'s overhead, proposed row: "size=0 ovr=33" in the same file): one
  process writes a word into a pipe and reads it back, per pass. lmbench's ``pipe_cost`` is
  "the cost of going through one pipe once" and ``lat_ctx`` reports the ring's time per
  process less it, so C1-2 = (C1-6 - 2 x C1-7) / 2: the switch plus what a pass costs more
  when the reader sleeps. The two proposed rows split C1-2's and C1-3's misses between the
  switch and the socket layer (docs/clients.md).
* C4-3 / C4-4 (proposed rows: VALIDATION.md C4's bcopy, 7.6 / 5.6 MB/s cached / uncached):
  Ousterhout's bcopy program (:func:`serveros.validation.memory.bcopy_rate`, the U4 rows'
  benchmark) on the SPARCstation 1, whose copies go through its modelled 64 KB cache.
* C1-3 (lmbench ``lat_tcp``): a server process echoes one word over a TCP connection to
  the machine's own address (``lo0``); the value is the client's write-to-read round trip.
* C1-4 (lmbench ``lat_connect``): the client's ``socket()``, ``connect()`` and ``close()``
  to a server process that accepts and closes, over ``lo0``.

Pipes are socket pairs: 4.3BSD and SunOS 4 implement ``pipe()`` with ``socketpair()`` in the
UNIX domain (4.3BSD ``sys_socket.c``/``uipc_syscalls.c``), as the Ultrix model's
:meth:`~sw.ultrix.SocketLayer.socketpair` does.
"""
from __future__ import annotations

from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sim.time import S, US
from sw.clients.bsd import ClientOS

from .anchors import Anchor
from .memory import CACHED_SIZE, UNCACHED_SIZE, bcopy_rate
from .registry import benchmark

__all__ = ["LOOPS", "client_machine", "null_syscall", "devnull_write", "context_switch", "pipe_round_trip",
           "pipe_pass", "tcp_round_trip", "tcp_connect", "bcopy_cached", "bcopy_uncached"]

#: Timed iterations of each loop (after one untimed warm-up pass); every iteration costs the
#: same apart from the PCB list growing by one TIME_WAIT entry per connect in C1-4.
LOOPS = 20
_PORT = 3001                   # lmbench's TCP benchmarks listen on a fixed port


def client_machine(platform: str, seed: int = 1) -> tuple[Kernel, ClientOS]:
    """A client machine of ``platform`` (a profile of ``serveros.machines.CLIENT_PROFILES``)
    alone on an Ethernet, booted: the event kernel and its OS.

    Raises
    ------
    ValueError
        If ``platform`` is not a client profile.
    """
    from serveros.machines import CLIENT_PROFILES, build_client_machine

    kinds = {v: k for k, v in CLIENT_PROFILES.items()}
    if platform not in kinds:
        raise ValueError(f"{platform!r} is not a client platform ({', '.join(kinds)})")
    k = Kernel()
    host = build_client_machine(k, Segment(k, seed=seed), 0, seed=seed, kind=kinds[platform])
    return k, ClientOS(host)


def _run(k: Kernel, cos: ClientOS, *bodies) -> None:
    """Run the processes ``bodies`` (``async def body(proc)``) until all have returned."""
    procs = [cos.spawn(b, f"bench{i}") for i, b in enumerate(bodies)]

    async def wait() -> None:
        for p in procs:
            await p.task
    t = k.spawn(wait(), name="bench")
    k.run(until=k.now + 600 * S)
    if not t.done:
        raise RuntimeError("the benchmark's processes did not finish in 600 s simulated")
    if t.exception is not None:
        raise t.exception


def _us(ps: int, n: int) -> float:
    return ps / n / US


async def _timed(k: Kernel, step) -> float:
    """Run ``await step()`` once untimed (the warm-up: the process is switched in, the
    connection set up), then :data:`LOOPS` times timed: microseconds per timed run."""
    await step()
    t0 = k.now
    for _ in range(LOOPS):
        await step()
    return _us(k.now - t0, LOOPS)


def null_syscall(platform: str, seed: int = 1) -> float:
    """Microseconds per ``getpid`` in a loop (Ousterhout's null kernel call)."""
    k, cos = client_machine(platform, seed)
    out = {}

    async def body(proc) -> None:
        out["v"] = await _timed(k, lambda: proc.syscall("getpid"))
    _run(k, cos, body)
    return out["v"]


def devnull_write(platform: str, seed: int = 1) -> float:
    """Microseconds per one-byte ``write`` to ``/dev/null`` in a loop (lmbench 1.x)."""
    k, cos = client_machine(platform, seed)
    out = {}

    async def body(proc) -> None:
        out["v"] = await _timed(k, lambda: cos.write_devnull(proc, b"x"))
    _run(k, cos, body)
    return out["v"]


def _ping_pong(platform: str, seed: int, processes: int) -> float:
    """Microseconds per round trip of a one-byte token over two pipes between two processes
    (``processes`` 2), or through one process's own pipe (1: the pipe overhead)."""
    k, cos = client_machine(platform, seed)
    so = cos.sockets
    out: dict = {}
    ready = {}

    async def parent(proc) -> None:
        a = await so.socketpair(proc)                 # parent -> child
        b = await so.socketpair(proc)                 # child -> parent
        if processes == 1:
            async def own_pipes() -> None:
                await so.write(proc, a[0], b"x")
                await so.read(proc, a[1], 1)
                await so.write(proc, b[0], b"x")
                await so.read(proc, b[1], 1)
            out["v"] = await _timed(k, own_pipes)
            return
        ready["pipes"] = (a, b)
        ready["child"] = cos.spawn(child, "child")

        async def trip() -> None:
            await so.write(proc, a[0], b"x")
            await so.read(proc, b[1], 1)
        out["v"] = await _timed(k, trip)

    async def child(proc) -> None:
        a, b = ready["pipes"]
        for _ in range(LOOPS + 1):
            await so.read(proc, a[1], 1)
            await so.write(proc, b[0], b"x")
    _run(k, cos, parent)
    return out["v"]


def pipe_round_trip(platform: str, seed: int = 1) -> float:
    """Ousterhout's ``cswitch``: microseconds per round trip between two processes."""
    return _ping_pong(platform, seed, 2)


def pipe_pass(platform: str, seed: int = 1) -> float:
    """lmbench ``lat_ctx``'s ``pipe_cost``: microseconds for one process to write a token into
    a pipe and read it back (one pass; the one-process loop makes two per iteration)."""
    return _ping_pong(platform, seed, 1) / 2


def context_switch(platform: str, seed: int = 1) -> float:
    """lmbench ``lat_ctx`` with 2 processes: the time per process of one trip round the ring
    of two pipes less one pass (:func:`pipe_pass`), i.e. (round trip - 2 passes) / 2."""
    return (_ping_pong(platform, seed, 2) - 2 * pipe_pass(platform, seed)) / 2


def tcp_round_trip(platform: str, seed: int = 1) -> float:
    """lmbench ``lat_tcp``: microseconds per one-word round trip over a loopback connection."""
    k, cos = client_machine(platform, seed)
    so = cos.sockets
    me = cos.host.ip
    out = {}

    async def server(proc) -> None:
        lst = await so.listen(proc, _PORT)
        out["listening"] = True
        conn = await so.accept(proc, lst)
        while True:
            data = await so.read(proc, conn, 4)
            if not data:
                break
            await so.write(proc, conn, data)
        await so.close(proc, conn)

    async def client(proc) -> None:
        c = await so.connect(proc, me, _PORT)

        async def round_trip() -> None:
            await so.write(proc, c, b"word")
            got = b""
            while len(got) < 4:
                got += await so.read(proc, c, 4 - len(got))
        out["v"] = await _timed(k, round_trip)
        await so.close(proc, c)
    _run(k, cos, server, client)
    return out["v"]


def tcp_connect(platform: str, seed: int = 1) -> float:
    """lmbench ``lat_connect``: microseconds per ``socket()`` + ``connect()`` + ``close()`` to
    a server process on the same machine that accepts and closes."""
    k, cos = client_machine(platform, seed)
    so = cos.sockets
    me = cos.host.ip
    out = {}

    async def server(proc) -> None:
        lst = await so.listen(proc, _PORT)
        for _ in range(LOOPS + 1):
            conn = await so.accept(proc, lst)
            await so.close(proc, conn)

    async def client(proc) -> None:
        async def connect_close() -> None:
            c = await so.connect(proc, me, _PORT)
            await so.close(proc, c)
        out["v"] = await _timed(k, connect_close)
    _run(k, cos, server, client)
    return out["v"]


def bcopy_cached(platform: str, seed: int = 1) -> float:
    """Ousterhout's bcopy, "large blocks that fit in the cache", in MB/s (``seed`` unused:
    the program is deterministic)."""
    return bcopy_rate(platform, CACHED_SIZE)


def bcopy_uncached(platform: str, seed: int = 1) -> float:
    """Ousterhout's bcopy, "large blocks that don't fit in the cache", in MB/s."""
    return bcopy_rate(platform, UNCACHED_SIZE)


def _register(fn, *row_ids: str) -> None:
    """Register ``fn(platform, seed)`` as the benchmark of ``row_ids`` (each row on its own
    platform)."""
    def bench(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
        return {rid: fn(a.platform, seed) for rid, a in rows.items()}
    bench.__name__ = fn.__name__
    benchmark(*row_ids)(bench)


_register(devnull_write, "C1-1")
_register(null_syscall, "C4-1")
_register(context_switch, "C1-2")
_register(pipe_round_trip, "C4-2")
_register(pipe_round_trip, "C1-6")
_register(pipe_pass, "C1-7")
_register(bcopy_cached, "C4-3")
_register(bcopy_uncached, "C4-4")
_register(tcp_round_trip, "C1-3")
_register(tcp_connect, "C1-4")
