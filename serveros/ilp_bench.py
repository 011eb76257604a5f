"""The ILP microbenchmark: simulated cycles per byte of copying and checksumming, as separate
passes and as one fused loop, cold and warm, on the 3MIN's memory system, into memory and by
programmed I/O into a LANCE's buffer (16 bits in 32, and the PMAD-AA's contiguous SRAM that
``hw/lance`` models) (issue 17).

Every row is one or two loops of :mod:`sw.libos.ilp` compiled from the standard pipes and timed
by :func:`sw.libos.ilp.cost.loop_cost` on a fresh :class:`sim.cache.MemorySystem` of the profile
(cold: empty caches; warm: the source already read into the data cache). Two rows price the
same work with the profile's calibrated routines (the bcopy and in_cksum rows, as
``cpu.copy``/``cpu.checksum`` do with addresses) for comparison. Figures, not tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from sim.cache import MemorySystem
from sim.platforms import DECSTATION_5000_125_AEGIS
from sim.platforms.base import Platform
from sw.libos.ilp import compiler, cost, movement, pipes

__all__ = ["IlpRow", "ilp_benchmarks", "ilp_table"]


@dataclass(frozen=True)
class IlpRow:
    """One benchmark row.

    Attributes
    ----------
    work : str
        What is done to the message (``copy``, ``checksum``, ``copy+checksum``).
    rule : str
        The data-movement rule (``memory``, ``lance-pio``, ``pmad-pio``, ``an2-dma``).
    how : str
        ``one loop``, ``separate passes``, ``fused`` or ``calibrated routine``.
    warm : bool
        Whether the source was in the data cache.
    nbytes, cycles : int
        Message length and simulated CPU cycles (the loops' calls included).
    misses, writes, io_writes : int
        Read misses, words stored to memory, I/O writes to a card.
    """

    work: str
    rule: str
    how: str
    warm: bool
    nbytes: int
    cycles: int
    misses: int
    writes: int
    io_writes: int

    @property
    def cycles_per_byte(self) -> float:
        return self.cycles / self.nbytes


class _Machine:
    """A fresh memory system with a source and a destination, and a clock for passes."""

    def __init__(self, profile: Platform, nbytes: int, warm: bool):
        self.ms = MemorySystem(profile)
        self.src = self.ms.space.region("src", nbytes)
        self.dst = self.ms.space.region("dst", nbytes)
        self.now = 0
        if warm:
            self.ms.dcache.read(self.src.base, nbytes)

    def account(self, cycles: int, counts: list, c) -> None:
        self.now += cycles * self.ms.cycle_ps
        counts[0] += cycles
        counts[1] += c.misses
        counts[2] += c.writes
        counts[3] += getattr(c, "io_writes", 0)

    def loops(self, nbytes: int, passes) -> tuple[int, int, int, int]:
        """Run ``passes`` (``(pipes, rule, src_is_dst)``) one after another."""
        counts = [0, 0, 0, 0]
        for plist, rule, from_dst in passes:
            prog = compiler.build(plist, rule)
            src = self.dst if from_dst else self.src
            c = cost.loop_cost(self.ms, self.now, prog, nbytes, src=src, dst=self.dst)
            self.account(c.cycles, counts, c)
        return tuple(counts)

    def calibrated(self, nbytes: int, what: str) -> tuple[int, int, int, int]:
        """The profile's own routine, as ``cpu.copy``/``cpu.checksum`` time it."""
        p = self.ms.profile
        if what == "copy":
            st = self.ms.copy(self.now, nbytes, self.src, self.dst, p.copy_call_cycles.value)
        else:
            st = self.ms.read(self.now, nbytes, self.src,
                              p.checksum_cached_cycles_per_word.value,
                              p.checksum_call_cycles.value)
        counts = [0, 0, 0, 0]
        self.account(st.cycles, counts, st)
        return tuple(counts)


def _cases():
    C, K, M, P, D = pipes.COPY, pipes.CKSUM, movement.MEMORY, movement.LANCE_PIO, movement.AN2_DMA
    A = movement.PMAD_PIO
    return [
        ("copy", "memory", "one loop", [([C], M, False)]),
        ("copy", "memory", "calibrated routine", "copy"),
        ("checksum", "an2-dma", "one loop", [([K], D, False)]),
        ("checksum", "an2-dma", "calibrated routine", "checksum"),
        ("copy+checksum", "memory", "separate passes", [([C], M, False), ([K], D, True)]),
        ("copy+checksum", "memory", "fused", [([C, K], M, False)]),
        ("copy", "lance-pio", "one loop", [([C], P, False)]),
        ("copy+checksum", "lance-pio", "separate passes", [([K], D, False), ([C], P, False)]),
        ("copy+checksum", "lance-pio", "fused", [([K], P, False)]),
        ("copy", "pmad-pio", "one loop", [([C], A, False)]),
        ("copy+checksum", "pmad-pio", "separate passes", [([K], D, False), ([C], A, False)]),
        ("copy+checksum", "pmad-pio", "fused", [([K], A, False)]),
    ]


def ilp_benchmarks(*, nbytes: int = 1460, profile: Platform = DECSTATION_5000_125_AEGIS
                   ) -> list[IlpRow]:
    """The rows: each case cold and warm, for a message of ``nbytes`` (default a full TCP
    segment on Ethernet) on ``profile`` (default the 3MIN under Aegis).

    Raises
    ------
    ValueError
        If ``nbytes`` is not a positive int or the profile models no memory system.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"nbytes must be a positive int, not {nbytes!r}")
    rows = []
    for work, rule, how, spec in _cases():
        for warm in (False, True):
            m = _Machine(profile, nbytes, warm)
            counts = m.calibrated(nbytes, spec) if isinstance(spec, str) else m.loops(nbytes, spec)
            rows.append(IlpRow(work, rule, how, warm, nbytes, *counts))
    return rows


def ilp_table(rows: list[IlpRow], title: str | None = None) -> Table:
    """A rich table of :func:`ilp_benchmarks` rows."""
    n = rows[0].nbytes if rows else 0
    t = Table(title=title or f"ILP: simulated cycles per byte, {n}-byte message (figures, not tests)")
    for col, just in (("work", "left"), ("rule", "left"), ("how", "left"), ("source", "left"),
                      ("cycles", "right"), ("cycles/byte", "right"), ("misses", "right"),
                      ("mem writes", "right"), ("I/O writes", "right")):
        t.add_column(col, justify=just)
    for r in rows:
        t.add_row(r.work, r.rule, r.how, "warm" if r.warm else "cold", f"{r.cycles:,}",
                  f"{r.cycles_per_byte:.2f}", str(r.misses), str(r.writes), str(r.io_writes))
    return t
