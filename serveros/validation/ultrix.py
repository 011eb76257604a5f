"""Benchmarks of the Ultrix rows (Ousterhout 1990, DECstation 5000/200; SOSP'95 on the 5000/125),
run as processes making system calls on the simulated Ultrix kernel (:mod:`sw.ultrix`).

Each benchmark does what the original program did, one simulated system call at a time, and
its value is simulated time divided by the iterations (warm: a few iterations first, as the
original loops ran many thousands of times):

* U1: ``getpid()`` in a loop (Ousterhout's "kernel entry-exit").
* U2: two processes, two pipes (4.3BSD pipes are UNIX-domain socket pairs): A writes one byte
  to pipe 1 and reads pipe 2, B reads pipe 1 and writes pipe 2; the value is one round trip
  (two context switches, a read and a write in each process).
* U3-1..3: ``select()`` with a zero timeout on 1 empty pipe, 10 empty, 10 ready.
* U5: ``read()`` of a file held in the buffer cache, in 16 KB calls (MB/s).
* U6-1/2: ``open()`` and ``close()`` of an existing local file "foo" and "a/b/c/foo".
* X1-1/X1-3 (SOSP'95 table 5, on the 5000/125): a process that catches ``SIGFPE`` and
  ``SIGSEGV`` takes an overflow (an ``add`` trapping) or a protection fault in a loop; its
  handler advances ``sc_pc`` past the instruction and returns; the value is one whole round
  trip (trap, ``sendsig``, the trampoline, the handler, ``sigreturn``), what a user program
  timing a loop of caught exceptions measures (:mod:`sw.ultrix.signals`).

What is not modelled is listed in docs/ultrix_model.md and, for a row outside its tolerance,
in the row's ``explained`` field.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from sim.cpu import CPU
from sim.kernel import Event, Kernel
from sim.platforms import PROFILES
from sim.time import US
from sw.libos.fs import FileSystem, mkfs
from sw.libos.fs.device import MemoryBlockDevice
from sw.ultrix.kernel import Process, UltrixKernel
from sw.ultrix.signals import deliver_signal
from sw.ultrix.sockets import SocketLayer, UltrixNetStack

from .anchors import Anchor
from .registry import benchmark

__all__ = ["getpid_loop", "pipe_pingpong", "select_zero_timeout", "open_close", "file_cache_read",
           "exception_to_handler", "file_in_cache", "LOOPS"]

#: Measured iterations per benchmark (after :data:`WARM` unmeasured ones); every iteration
#: costs the same in the model, so a few suffice and ``serveros validate`` stays fast.
LOOPS = 20
WARM = 2


class _NullDevice:
    """A network device that is never used (the benchmarks' sockets are local)."""

    mac = bytes(6)

    def attach(self, fn) -> None:
        pass

    async def send(self, frame: bytes) -> None:
        raise RuntimeError("the Ultrix benchmarks send no frames")


def _machine(platform: str) -> tuple[Kernel, UltrixKernel, SocketLayer]:
    """An Ultrix machine of ``platform``'s profile: the event kernel, Ultrix and sockets."""
    profile = PROFILES[platform]
    k = Kernel()
    cpu = CPU(k, profile, name=platform)
    uk = UltrixKernel(k, cpu, name=platform)
    stack = UltrixNetStack(k, _NullDevice(), bytes([10, 0, 0, 1]), cpu=cpu, costs=uk.costs,
                           name=platform)
    return k, uk, SocketLayer(uk, stack)


def _run(k: Kernel, uk: UltrixKernel, body: Callable[[Process], Awaitable[float]],
         name: str) -> float:
    """Run ``body`` as a process and return its result (a value in the row's unit)."""
    out: dict[str, float] = {}
    done = Event(k, name)

    async def main(proc: Process) -> None:
        try:
            out["v"] = await body(proc)
        finally:
            done.set()

    async def wait() -> None:            # processes are daemons: the run lasts while this waits
        await done

    proc = uk.spawn(main, name)
    k.spawn(wait(), name=f"{name}.wait")
    k.run()
    if proc.task.exception is not None:
        raise proc.task.exception
    if "v" not in out:
        raise RuntimeError(f"benchmark {name} did not finish (deadlock in the model)")
    return out["v"]


async def _timed(k: Kernel, once: Callable[[], Awaitable[None]], loops: int = LOOPS) -> float:
    """Mean simulated microseconds of ``once()`` over ``loops`` calls after :data:`WARM`."""
    for _ in range(WARM):
        await once()
    t0 = k.now
    for _ in range(loops):
        await once()
    return (k.now - t0) / loops / US


@benchmark("U1")
def getpid_loop(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U1: microseconds per ``getpid()``."""
    k, uk, _ = _machine(rows["U1"].platform)

    async def body(proc: Process) -> float:
        return await _timed(k, lambda: proc.syscall("getpid"))

    return {"U1": _run(k, uk, body, "getpid")}


@benchmark("U2")
def pipe_pingpong(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U2: microseconds per one-byte round trip over two pipes between two processes."""
    k, uk, sl = _machine(rows["U2"].platform)
    total = WARM + LOOPS

    async def body(proc: Process) -> float:
        p1w, p1r = await sl.socketpair(proc)
        p2w, p2r = await sl.socketpair(proc)

        async def echo(peer: Process) -> None:
            for _ in range(total):
                await sl.read(peer, p1r, 1)
                await sl.write(peer, p2w, b"x")

        uk.spawn(echo, "pong")

        async def round_trip() -> None:
            await sl.write(proc, p1w, b"x")
            await sl.read(proc, p2r, 1)

        return await _timed(k, round_trip)

    return {"U2": _run(k, uk, body, "ping")}


@benchmark("U3-1", "U3-2", "U3-3")
def select_zero_timeout(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U3: microseconds per ``select()`` with a zero timeout on 1 empty pipe (U3-1), 10 empty
    (U3-2) and 10 ready (U3-3)."""
    out = {}
    for rid, n, ready in (("U3-1", 1, False), ("U3-2", 10, False), ("U3-3", 10, True)):
        if rid not in rows:
            continue
        k, uk, sl = _machine(rows[rid].platform)

        async def body(proc: Process, n=n, ready=ready) -> float:
            ends = []
            for _ in range(n):
                w, r = await sl.socketpair(proc)
                if ready:
                    await sl.write(proc, w, b"x")
                ends.append(r)
            return await _timed(k, lambda: sl.select(proc, ends, until=k.now))

        out[rid] = _run(k, uk, body, f"select{n}")
    return out


async def _docs_fs(k: Kernel, cpu: CPU) -> FileSystem:
    """A mounted file system holding "foo" and "a/b/c/foo" (through the buffer cache)."""
    disk = MemoryBlockDevice(2048, 512)
    await mkfs(disk, block_size=4096)
    fs = await FileSystem.mount(disk, cache_blocks=32, cpu=cpu, kernel=k)
    for d in ("/a", "/a/b", "/a/b/c"):
        await fs.mkdir(d)
    for path in ("/foo", "/a/b/c/foo"):
        await fs.create(path)
        await fs.write(path, b"x")
    return fs


@benchmark("U6-1", "U6-2")
def open_close(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U6: milliseconds per ``open()`` + ``close()`` of "foo" (U6-1) and "a/b/c/foo" (U6-2)."""
    out = {}
    for rid, path in (("U6-1", "/foo"), ("U6-2", "/a/b/c/foo")):
        if rid not in rows:
            continue
        k, uk, _ = _machine(rows[rid].platform)

        async def body(proc: Process, path=path) -> float:
            uk.attach_fs(await _docs_fs(k, uk.cpu))

            async def once() -> None:
                await uk.close_file(proc, await uk.open(proc, path))

            return await _timed(k, once) / 1000.0

        out[rid] = _run(k, uk, body, "open")
    return out


#: U5's file: Ousterhout's read benchmark re-read a file that fit in the file cache; 256 KB
#: (64 blocks of 4 KB) fits the benchmark's 128-block buffer cache, and is larger than the
#: data caches, so the copy out of the cache runs at the memory's speed as it did.
U5_FILE = 256 * 1024
U5_CALL = 16 * 1024


async def file_in_cache(k: Kernel, uk: UltrixKernel, path: str, size: int) -> FileSystem:
    """Mount a file system with a 128-block buffer cache on ``uk`` holding ``size`` bytes at
    ``path`` (written through the cache, so its blocks are there)."""
    disk = MemoryBlockDevice(4096, 512)
    await mkfs(disk, block_size=4096)
    fs = await FileSystem.mount(disk, cache_blocks=128, cpu=uk.cpu, kernel=k)
    await fs.create(path)
    await fs.write(path, bytes(size))
    uk.attach_fs(fs)
    return fs


@benchmark("U5")
def file_cache_read(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U5: MB/s of ``read()`` in 16 KB calls of a file held in the buffer cache."""
    k, uk, _ = _machine(rows["U5"].platform)

    async def body(proc: Process) -> float:
        await file_in_cache(k, uk, "/data", U5_FILE)

        user_buffer = uk.cpu.region("u5:buffer", U5_CALL)   # the program's 16 KB buffer

        async def whole_file() -> None:
            f = await uk.open(proc, "/data")
            while await uk.read_file(proc, f, U5_CALL, buf=user_buffer):
                pass
            await uk.close_file(proc, f)

        await whole_file()                    # warm: every block in the cache
        us = await _timed(k, whole_file, loops=4)
        return U5_FILE / us                   # bytes per us = MB/s

    return {"U5": _run(k, uk, body, "read")}


#: The user handler's own work: load sc_pc from the sigcontext, add 4, store it back, return
#: (about 6 instructions).
HANDLER_INSTRUCTIONS = 6


@benchmark("X1-1", "X1-3")
def exception_to_handler(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """X1-1 (overflow, SIGFPE) and X1-3 (protection fault, SIGSEGV): microseconds per caught
    exception, the round trip through the handler."""
    out = {}
    for rid, cause in (("X1-1", "overflow"), ("X1-3", "protection")):
        if rid not in rows:
            continue
        k, uk, _ = _machine(rows[rid].platform)
        handled: list[int] = []

        async def handler(proc: Process) -> None:
            handled.append(k.now)
            await proc.compute(uk.profile.instructions(HANDLER_INSTRUCTIONS))

        async def body(proc: Process, cause=cause) -> float:
            await proc.syscall("sigvec")         # the handler is installed once
            return await _timed(k, lambda: deliver_signal(proc, cause, handler))

        out[rid] = _run(k, uk, body, f"x1-{cause}")
        if len(handled) != WARM + LOOPS:
            raise RuntimeError(f"{rid}: {len(handled)} of {WARM + LOOPS} exceptions reached "
                               "the handler")
    return out
