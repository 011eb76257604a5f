"""Benchmarks of the memory rows: bcopy of large blocks, cached and uncached (U4, Ousterhout
1990 Table 5, on the DECstation 5000/200) and on the client Pentium (C1-5, lmbench 1.x).

The program is Ousterhout's ``bcopy`` benchmark (``src/benchmarks/bcopy/bcopy.c`` in
OSPreservProject/sprite), run as a user process on the simulated machine: two static arrays
``src`` and ``dst`` of 500 000 bytes each (so ``dst`` starts 500 000 bytes after ``src``), and
for each transfer size a loop of ``bcopy(src, dst, count)`` calls that moves 5 000 000 bytes in
all, timed from start to end. Its results file gives, per machine, "large blocks that fit in the
cache" and "large blocks that don't fit in the cache". The transfer sizes of the benchmark are
10, 50, 100, 500, 1000, 5000, 10 000, 50 000, 100 000 and 200 000 bytes; the cached row is
the largest size whose source and destination fit in the 5000/200's 64 KB data cache together
(10 000 bytes: 20 KB; at 50 000 they take 100 KB), the uncached row the largest size (200 000).

Each call is a real bcopy through the simulated CPU (:meth:`sim.cpu.CPU.copy` naming its source
and destination), so its time comes from the machine's data cache and write buffer
(:mod:`sim.cache`); the loop adds bcopy's call and a few instructions of loop per call. The
system calls around the loop (two ``gettimeofday``) are outside the timed copies' 5 MB and are
left out (a few microseconds against 0.1-0.4 s).

C1-5 runs the same program on the client profile; a machine whose memory system is not
modelled (``Platform.memory`` is None) prices each call by its profile's uncached bcopy row
(lmbench's ``bcopy`` copies blocks far larger than any cache of the period).
"""
from __future__ import annotations

from sim.cpu import APPLICATION, CPU
from sim.kernel import Kernel
from sim.platforms import PROFILES

from .anchors import Anchor
from .registry import benchmark

__all__ = ["bcopy_rate", "bcopy", "ARRAY_BYTES", "TOTAL_BYTES", "CACHED_SIZE", "UNCACHED_SIZE"]

#: bcopy.c: ``char src[MAX_AT_ONCE], dst[MAX_AT_ONCE]`` with MAX_AT_ONCE 500000.
ARRAY_BYTES = 500_000
#: bcopy.c: ``totalBytes = 5000000`` without an argument.
TOTAL_BYTES = 5_000_000
#: The transfer sizes of the two U4 rows (see the module docstring).
CACHED_SIZE = 10_000
UNCACHED_SIZE = 200_000
#: Instructions of the benchmark's own loop per call (the bytesSoFar / count bookkeeping, the
#: compare with the size and the call): estimate, about 10 MIPS instructions.
LOOP_INSTRUCTIONS = 10
_MB = 1e6                # Ousterhout's "Mbytes/sec" is totalBytes / microseconds


def bcopy_rate(platform: str, size: int, total: int = TOTAL_BYTES) -> float:
    """MB/s of bcopy.c's loop for transfer ``size`` on ``platform``, in simulated time.

    Raises
    ------
    ValueError
        For an unknown platform or a size outside (0, ARRAY_BYTES].
    """
    if platform not in PROFILES:
        raise ValueError(f"no platform profile {platform!r}; known: {', '.join(PROFILES)}")
    if not 0 < size <= ARRAY_BYTES:
        raise ValueError(f"transfer size must be in (0, {ARRAY_BYTES}], not {size!r}")
    profile = PROFILES[platform]
    k = Kernel()
    cpu = CPU(k, profile, f"{platform}.cpu")
    # the two static arrays, one after the other in the program's data segment
    src = cpu.region("bcopy.src", ARRAY_BYTES)
    dst = cpu.region("bcopy.dst", ARRAY_BYTES)
    loop = profile.instructions(LOOP_INSTRUCTIONS)
    span: list[int] = []

    async def program() -> None:
        span.append(k.now)
        done = 0
        while done < total:
            count = min(size, total - done)
            await cpu.charge(loop, APPLICATION)
            await cpu.copy(count, src=src, dst=dst)
            done += count
        span.append(k.now)

    task = k.spawn(program(), name="bcopy")
    k.run()
    if task.exception is not None:
        raise task.exception
    elapsed_us = (span[1] - span[0]) / 1e6
    return total / elapsed_us * 1e6 / _MB


@benchmark("U4-1", "U4-2", "C1-5")
def bcopy(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """U4-1 (cached), U4-2 (uncached) and C1-5 (the client), in MB/s."""
    sizes = {"U4-1": CACHED_SIZE, "U4-2": UNCACHED_SIZE, "C1-5": UNCACHED_SIZE}
    return {rid: bcopy_rate(rows[rid].platform, sizes[rid]) for rid in sizes if rid in rows}
