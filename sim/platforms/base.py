"""The shape of a platform profile: sourced costs and the helpers that turn them into cycles.

A :class:`Platform` is a frozen dataclass whose cost fields are all :class:`Cost` values; a
cost names its unit and its source, so a test can check that nothing is unsourced and the
command line can print the whole table (:func:`profile_table`).

Units used by the fields:

``Hz``            the CPU clock.
``ps``            a hardware time (memory cycle, bus access).
``mem cycles``    a count of main-memory cycles (DMA bursts).
``words``         a count of 32-bit words.
``cycles``        CPU cycles for one operation (may be fractional: charges round up).
``cycles/word``   CPU cycles per 32-bit word processed.
``cycles/entry``  CPU cycles per list entry examined.
``CPI``           average CPU cycles per instruction.
``bytes``         a size (of a cache).
``entries``       a count of buffer entries.
``bytes/line``    a cache line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Iterator, Optional

from ..time import S

#: Where the calibration table lives in the repository (profile sources cite its rows).
CALIBRATION = "docs/calibration.md"


@dataclass(frozen=True)
class Cost:
    """One sourced number of a profile.

    Parameters
    ----------
    value : float
        The number, in ``unit``.
    unit : str
        Its unit (see the module docstring).
    source : str
        Where it comes from: ``"[P] docs/calibration.md: <row>"`` (or [S]/[D]) for a
        calibration row, or ``"estimate: <reasoning>"``.

    Raises
    ------
    ValueError
        If the value is negative or not finite, or the unit or source is empty.
    """

    value: float
    unit: str
    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"a cost must be a finite non-negative number, not {self.value!r}")
        if not self.unit.strip():
            raise ValueError(f"cost {self.value!r} has no unit")
        if not self.source.strip():
            raise ValueError(f"cost {self.value!r} {self.unit} has no source")

    @property
    def is_estimate(self) -> bool:
        """True when the source is an estimate rather than a calibration row."""
        return self.source.lstrip().lower().startswith("estimate")

    def __float__(self) -> float:
        return float(self.value)


def ceil_cycles(x: float) -> int:
    """``x`` cycles as whole CPU cycles (at least 0): a partial cycle occupies the whole
    cycle. The tiny tolerance keeps a float like 16.375 * 8 = 131.00000000000003 from
    costing 132."""
    return max(0, math.ceil(x - 1e-9))


@dataclass(frozen=True)
class MemorySystemSpec:
    """The caches and write buffer of a machine, for :mod:`sim.cache` (all fields sourced).

    Parameters
    ----------
    icache_bytes, dcache_bytes : Cost
        Sizes of the direct-mapped, physically indexed instruction and data caches.
    line_bytes : Cost
        The line (refill) size of both caches: 4 on the R3000 DECstations, so every word a
        loop reads for the first time is a miss of its own.
    write_buffer_entries : Cost
        Depth of the write buffer between the write-through data cache and memory.
    copy_issue_cycles_per_word : Cost
        Cycles a bcopy loop spends issuing instructions per word, its memory stalls excluded
        (a load, a store and its share of the loop overhead).
    """

    icache_bytes: Cost
    dcache_bytes: Cost
    line_bytes: Cost
    write_buffer_entries: Cost
    copy_issue_cycles_per_word: Cost

    def __post_init__(self) -> None:
        for f in fields(self):
            cost = getattr(self, f.name)
            if not isinstance(cost, Cost):
                raise TypeError(f"memory system field {f.name} must be a Cost, not {cost!r}")
        line = self.line_bytes.value
        if int(line) != line or line < 4 or int(line) & (int(line) - 1):
            raise ValueError(f"a cache line must be a power of two of at least 4 bytes, not {line!r}")
        for name in ("icache_bytes", "dcache_bytes"):
            size = getattr(self, name).value
            if int(size) != size or size < line or int(size) % int(line):
                raise ValueError(f"{name} must be a whole number of {int(line)}-byte lines, not {size!r}")
        wb = self.write_buffer_entries.value
        if int(wb) != wb or wb < 1:
            raise ValueError(f"write_buffer_entries must be a positive whole number, not {wb!r}")

    def costs(self) -> Iterator[tuple[str, Cost]]:
        """``(field name, Cost)`` for every field, in declaration order."""
        for f in fields(self):
            yield f.name, getattr(self, f.name)


@dataclass(frozen=True)
class Platform:
    """A simulated machine running one operating system: its hardware facts and CPU costs.

    Every field after ``description`` is a :class:`Cost`. CPU work is in cycles of this
    platform's clock, so the same software charges the same *operations* on every platform and
    the profile decides what they cost.

    Parameters
    ----------
    name, machine, os, description : str
        Identification for tables and reports.
    cpu_hz : Cost
        CPU clock; its period must be a whole number of picoseconds.
    mem_cycle_ps, word_read_miss_ps, word_write_ps : Cost
        Main-memory cycle; a CPU read that misses the data cache; a CPU word write draining
        through the write buffer.
    dma_burst_words, dma_read_burst_mem_cycles, dma_write_burst_mem_cycles : Cost
        A DMA burst and the memory cycles it occupies reading / writing main memory.
    io_pio_read_ps, io_pio_write_ps : Cost
        A CPU programmed-I/O word access to an option card's memory over the I/O bus (a
        reference for device models, which decide their own access times).
    kernel_cpi : Cost
        Cycles per instruction of kernel-style code, to turn instruction counts into cycles.
    copy_uncached_cycles_per_word, copy_cached_cycles_per_word, copy_call_cycles : Cost
        Memory-to-memory copy (bcopy) per word with the source missing / hitting the data
        cache, and the fixed cost of one call.
    checksum_uncached_cycles_per_word, checksum_cached_cycles_per_word, checksum_call_cycles : Cost
        Internet (one's-complement) checksum per word and per call.
    syscall_cycles : Cost
        A null system call, user to kernel and back.
    context_switch_cycles : Cost
        The kernel's switch from one thread/environment to another.
    exception_dispatch_cycles : Cost
        Dispatching a synchronous exception to its (user-level) handler.
    interrupt_dispatch_cycles : Cost
        Entering and leaving an interrupt handler (the handler's own work is extra).
    demux_dpf_cycles, demux_mpf_cycles : Cost
        Packet demultiplexing with compiled (DPF) / interpreted (MPF) filters.
    pcb_lookup_per_entry_cycles : Cost
        One protocol control block examined by a linear PCB search.
    tcp_per_packet_cycles, ip_per_packet_cycles : Cost
        Common-path TCP and IP processing of one packet (no copy, no checksum).
    select_base_cycles, select_per_fd_cycles : Cost
        A select() call beyond the system call itself, and per descriptor examined.
    fork_cycles : Cost
        fork() of a small server process.
    memory : MemorySystemSpec or None
        The caches and write buffer that :mod:`sim.cache` models for software that names the
        addresses it touches (:meth:`sim.cpu.CPU.copy` with ``src=``/``dst=``); None for a
        machine whose memory system is not modelled (its copies use the per-word rows).
    """

    name: str
    machine: str
    os: str
    description: str
    cpu_hz: Cost
    mem_cycle_ps: Cost
    word_read_miss_ps: Cost
    word_write_ps: Cost
    dma_burst_words: Cost
    dma_read_burst_mem_cycles: Cost
    dma_write_burst_mem_cycles: Cost
    io_pio_read_ps: Cost
    io_pio_write_ps: Cost
    kernel_cpi: Cost
    copy_uncached_cycles_per_word: Cost
    copy_cached_cycles_per_word: Cost
    copy_call_cycles: Cost
    checksum_uncached_cycles_per_word: Cost
    checksum_cached_cycles_per_word: Cost
    checksum_call_cycles: Cost
    syscall_cycles: Cost
    context_switch_cycles: Cost
    exception_dispatch_cycles: Cost
    interrupt_dispatch_cycles: Cost
    demux_dpf_cycles: Cost
    demux_mpf_cycles: Cost
    pcb_lookup_per_entry_cycles: Cost
    tcp_per_packet_cycles: Cost
    ip_per_packet_cycles: Cost
    select_base_cycles: Cost
    select_per_fd_cycles: Cost
    fork_cycles: Cost
    memory: Optional[MemorySystemSpec] = None

    def __post_init__(self) -> None:
        for name, cost in self.costs():
            if not isinstance(cost, Cost):
                raise TypeError(f"{self.name}: field {name} must be a Cost, not {cost!r}")
        hz = self.cpu_hz.value
        if hz <= 0 or S % int(hz) or int(hz) != hz:
            raise ValueError(f"{self.name}: a {hz!r} Hz clock has no whole-picosecond period")
        if int(self.dma_burst_words.value) != self.dma_burst_words.value or self.dma_burst_words.value < 1:
            raise ValueError(f"{self.name}: dma_burst_words must be a positive whole number")
        if self.memory is not None and not isinstance(self.memory, MemorySystemSpec):
            raise TypeError(f"{self.name}: memory must be a MemorySystemSpec or None, not {self.memory!r}")

    # -- introspection ------------------------------------------------------------------------
    def costs(self) -> Iterator[tuple[str, Cost]]:
        """``(field name, Cost)`` for every cost field, in declaration order."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name not in ("name", "machine", "os", "description", "memory"):
                yield f.name, v

    # -- derived quantities -------------------------------------------------------------------
    @property
    def cycle_ps(self) -> int:
        """One CPU cycle in picoseconds (40 000 at 25 MHz)."""
        return S // int(self.cpu_hz.value)

    def instructions(self, n: float) -> int:
        """Cycles for ``n`` instructions of kernel-style code at the profile's CPI."""
        if n < 0:
            raise ValueError(f"instruction count must be >= 0, not {n!r}")
        return ceil_cycles(n * self.kernel_cpi.value)

    def copy_cycles(self, nbytes: int, cached: bool = False) -> int:
        """Cycles for the CPU to copy ``nbytes`` memory to memory (one bcopy call).

        ``cached`` says the source is already in the data cache (e.g. it was just written or
        summed); otherwise every source word is a cache miss.
        """
        if nbytes < 0:
            raise ValueError(f"copy length must be >= 0, not {nbytes!r}")
        if nbytes == 0:
            return 0
        per = self.copy_cached_cycles_per_word if cached else self.copy_uncached_cycles_per_word
        return ceil_cycles(self.copy_call_cycles.value + per.value * -(-nbytes // 4))

    def checksum_cycles(self, nbytes: int, cached: bool = False) -> int:
        """Cycles for the CPU to compute the Internet checksum of ``nbytes`` (one call)."""
        if nbytes < 0:
            raise ValueError(f"checksum length must be >= 0, not {nbytes!r}")
        if nbytes == 0:
            return 0
        per = self.checksum_cached_cycles_per_word if cached else self.checksum_uncached_cycles_per_word
        return ceil_cycles(self.checksum_call_cycles.value + per.value * -(-nbytes // 4))

    def cycles(self, cost: Cost | float) -> int:
        """A per-operation cost (in ``cycles``) as the whole number of cycles a charge takes."""
        if isinstance(cost, Cost):
            if cost.unit != "cycles":
                raise ValueError(f"{cost!r} is in {cost.unit!r}, not cycles")
            return ceil_cycles(cost.value)
        return ceil_cycles(cost)

    def dma_ps(self, nbytes: int, write: bool) -> int:
        """Main-memory time of a DMA transfer of ``nbytes`` (rounded up to whole words).

        A burst of ``dma_burst_words`` costs ``dma_*_burst_mem_cycles``: one memory cycle per
        word plus a fixed per-burst overhead (4 cycles for reads, 2 for writes on the 3MIN);
        a partial final burst pays the overhead and its own words.
        """
        if nbytes < 0:
            raise ValueError(f"DMA length must be >= 0, not {nbytes!r}")
        words = -(-nbytes // 4)
        if words == 0:
            return 0
        burst = int(self.dma_burst_words.value)
        per_burst = (self.dma_write_burst_mem_cycles if write else self.dma_read_burst_mem_cycles).value
        overhead = per_burst - burst
        bursts = -(-words // burst)
        mem_cycles = words + overhead * bursts
        return int(round(mem_cycles * self.mem_cycle_ps.value))


class Profiles(dict):
    """The registered profiles by name, which also answer for derived names.

    Iterating, ``len`` and the views give the registered (built-in) profiles only; a lookup
    or an ``in`` test of a derived profile's name (``base@...``, :mod:`sim.platforms.derived`)
    derives it from the name alone, so every process that names it gets the same profile and
    nothing is registered.
    """

    def __missing__(self, name: str) -> Platform:
        from .derived import by_name, is_derived_name
        if not is_derived_name(name):
            raise KeyError(name)
        try:
            return by_name(name)
        except ValueError as e:
            raise KeyError(f"{name}: {e}") from None

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        try:
            self[name]
        except (KeyError, TypeError):
            return False
        return True

    def get(self, name, default=None):
        return self[name] if name in self else default


#: Every built-in profile by name (filled by the modules that define them); derived profiles'
#: names look up too (:class:`Profiles`).
PROFILES: Profiles = Profiles()


def register(p: Platform) -> Platform:
    """Add ``p`` to :data:`PROFILES` (names must be unique)."""
    if dict.__contains__(PROFILES, p.name):
        raise ValueError(f"a profile named {p.name!r} already exists")
    PROFILES[p.name] = p
    return p


def profile_table(p: Platform) -> list[tuple[str, float, str, str]]:
    """Rows ``(field, value, unit, source)`` of a profile, for printing; the memory system's
    rows, when the profile has one, follow as ``memory.<field>``."""
    rows = [(name, c.value, c.unit, c.source) for name, c in p.costs()]
    if p.memory is not None:
        rows += [(f"memory.{name}", c.value, c.unit, c.source) for name, c in p.memory.costs()]
    return rows
