"""The R3000 memory system: direct-mapped caches, the write buffer, and addresses for buffers.

Software that names the memory it touches (a copy's source and destination, a checksum's
buffer, a kernel path's code and data) pays for what the real memory system would have made
it wait for, instead of a fixed per-word price:

* **Caches.** Direct-mapped, physically indexed instruction and data caches of the platform's
  sizes (:class:`~sim.platforms.base.MemorySystemSpec`; on the 3MIN 64 KB + 128 KB, 4-byte
  lines, docs/calibration.md "caches"). A read of a line whose tag is not in its set is a miss
  and refills the line. The data cache is write-through; on the R3000 a word store writes the
  cache line as well as memory, so a buffer just written is cached (with 4-byte lines a word
  store fills a whole line).
* **Write buffer.** Stores go into a FIFO of ``write_buffer_entries`` words that drains one word
  per ``word_write_ps`` (the 3MIN's 3 memory cycles = 240 ns). The CPU stalls on a store only
  when the buffer is full. A read from memory (a cache miss, an I/O read) waits until the buffer
  is empty: the one memory serves the buffered writes first (the R3000's write buffer lets no
  read pass it), then the read's ``word_read_miss_ps`` (5 memory cycles = 400 ns on the 3MIN).
* **Addresses.** :class:`AddressSpace` hands out named :class:`Region` s of a machine's physical
  memory (an allocator, not storage: the bytes live wherever the software keeps them), so two
  buffers that map to the same cache sets conflict as they would on the real machine.

Timing of a stream (one copy, checksum or PIO loop) is computed in closed form with NumPy over
its lines, never with a Python loop per word: the cache state (a tag array per cache) is updated
exactly for the lines touched; the time is a fluid model of one memory serving, in order, the
write-buffer backlog, the read misses and the words written, against the CPU's own issue cycles:

    memory busy  M = backlog + misses x read_miss + writes x word_write
    CPU time     T = max(issue + misses x (read_miss - 1),  M - tail)

where ``tail`` is what is still in the write buffer when the loop's last store has issued (at
most the buffer's depth). An all-miss copy on the 3MIN costs 10 + 6 = 16 cycles per word and a
cached one 6 (the write buffer's drain rate), the shape of the OSF/1 bcopy (docs/calibration.md).

Simplifications: a copy's source lines are looked up before its destination lines are written
(a copy whose source and destination map to the same sets, a multiple of the cache size apart,
is undercharged: on the real machine it thrashes); the I-cache sees only the code of the kernel
paths that declare a footprint (:meth:`MemorySystem.path`); DMA does not invalidate cache lines
(the drivers here copy by programmed I/O); partial-word stores are treated as word stores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from .platforms.base import MemorySystemSpec, Platform, ceil_cycles

#: Where :class:`AddressSpace` starts handing out regions: above the first 4 MB of physical
#: memory, where a kernel image and its static data would be (only the cache sets matter).
DEFAULT_BASE = 0x0040_0000


@dataclass(frozen=True)
class Region:
    """A named range ``[base, base + size)`` of a machine's physical memory."""

    name: str
    base: int
    size: int

    def at(self, offset: int = 0) -> int:
        """The address ``offset`` bytes into the region.

        Raises
        ------
        ValueError
            If the offset is outside the region.
        """
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} is outside region {self.name!r} of {self.size} bytes")
        return self.base + offset

    @property
    def end(self) -> int:
        return self.base + self.size


Address = Union[int, Region]


def address_of(where: Address) -> int:
    """The physical address that ``where`` (an int or a :class:`Region`) names.

    Raises
    ------
    TypeError, ValueError
        For anything else, or a negative address.
    """
    if isinstance(where, Region):
        return where.base
    if isinstance(where, bool) or not isinstance(where, int):
        raise TypeError(f"an address must be an int or a Region, not {where!r}")
    if where < 0:
        raise ValueError(f"an address must be >= 0, not {where!r}")
    return where


class AddressSpace:
    """An allocator of named regions of one machine's physical memory.

    Regions are handed out upward from ``base``, each aligned to ``align`` bytes, in the order
    they are asked for (so a run's layout, and its cache conflicts, are deterministic).
    :meth:`region` returns the same region for the same name.
    """

    def __init__(self, base: int = DEFAULT_BASE, limit: int = 1 << 32):
        if not isinstance(base, int) or base < 0 or not isinstance(limit, int) or limit <= base:
            raise ValueError(f"an address space needs 0 <= base < limit, not {base!r}, {limit!r}")
        self._next = base
        self.limit = limit
        self._regions: dict[str, Region] = {}

    def allocate(self, name: str, size: int, align: int = 4) -> Region:
        """A new region of ``size`` bytes named ``name``.

        Raises
        ------
        ValueError
            For a non-positive size, an alignment that is not a power of two, a name already
            used, or an exhausted address space.
        """
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"region {name!r}: size must be a positive number of bytes, not {size!r}")
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise ValueError(f"region {name!r}: alignment must be a power of two, not {align!r}")
        if name in self._regions:
            raise ValueError(f"a region named {name!r} already exists")
        base = -(-self._next // align) * align
        if base + size > self.limit:
            raise ValueError(f"region {name!r} of {size} bytes does not fit below {self.limit:#x}")
        self._next = base + size
        r = self._regions[name] = Region(name, base, size)
        return r

    def region(self, name: str, size: int, align: int = 4) -> Region:
        """The region named ``name``, allocated with ``size`` bytes on first use.

        Raises
        ------
        ValueError
            If the region exists with another size.
        """
        r = self._regions.get(name)
        if r is None:
            return self.allocate(name, size, align)
        if r.size != size:
            raise ValueError(f"region {name!r} has {r.size} bytes, not {size}")
        return r

    def __contains__(self, name: str) -> bool:
        return name in self._regions


class DirectMappedCache:
    """Tags of a direct-mapped cache of ``size`` bytes in ``line``-byte lines.

    Only tags are kept (the data is wherever the software keeps it): :meth:`read` counts the
    misses of reading a range and refills them, :meth:`fill` installs lines that were written.
    """

    def __init__(self, size: int, line: int, name: str = "cache"):
        if line < 1 or line & (line - 1) or size < line or size % line:
            raise ValueError(f"{name}: a cache of {size!r} bytes in {line!r}-byte lines is not possible")
        self.name = name
        self.line = line
        self.sets = size // line
        self._shift = line.bit_length() - 1
        self._tags = np.full(self.sets, -1, dtype=np.int64)   # the line number held, -1 empty

    def _lines(self, addr: int, nbytes: int) -> tuple[int, int]:
        first = addr >> self._shift
        return first, ((addr + nbytes - 1) >> self._shift) - first + 1

    def read(self, addr: int, nbytes: int) -> int:
        """Misses of reading ``[addr, addr + nbytes)`` in order; the lines are then resident."""
        if nbytes <= 0:
            return 0
        first, count = self._lines(addr, nbytes)
        sets = self.sets
        if count >= sets:
            # Each set is first visited by one of the first `sets` lines, and every later line
            # of the range replaces a line of the same range: only first visits can hit.
            head = np.arange(first, first + sets, dtype=np.int64)
            hits = int(np.count_nonzero(self._tags[head % sets] == head))
            tail = np.arange(first + count - sets, first + count, dtype=np.int64)
            self._tags[tail % sets] = tail
            return count - hits
        lines = np.arange(first, first + count, dtype=np.int64)
        idx = lines % sets
        hits = int(np.count_nonzero(self._tags[idx] == lines))
        self._tags[idx] = lines
        return count - hits

    def fill(self, addr: int, nbytes: int) -> None:
        """Install the lines of ``[addr, addr + nbytes)`` (a write-through store writes them)."""
        if nbytes <= 0:
            return
        first, count = self._lines(addr, nbytes)
        start = first + max(0, count - self.sets)
        lines = np.arange(start, first + count, dtype=np.int64)
        self._tags[lines % self.sets] = lines

    def resident(self, addr: int, nbytes: int) -> int:
        """How many lines of the range are in the cache now (no state change)."""
        if nbytes <= 0:
            return 0
        first, count = self._lines(addr, nbytes)
        lines = np.arange(first, first + count, dtype=np.int64)
        return int(np.count_nonzero(self._tags[lines % self.sets] == lines))

    def invalidate(self) -> None:
        """Empty the cache (a cold start)."""
        self._tags.fill(-1)


@dataclass(frozen=True)
class Stall:
    """The cycles of one stream: ``issue`` of the CPU's own work, ``stall`` waiting for memory,
    and the read ``misses`` and words ``writes`` behind them (for tests and reports)."""

    issue: int
    stall: int
    misses: int
    writes: int

    @property
    def cycles(self) -> int:
        return self.issue + self.stall


class MemorySystem:
    """One machine's caches and write buffer, timed by its platform profile.

    Parameters
    ----------
    profile : Platform
        Supplies the memory system (``profile.memory``), the CPU cycle, the read-miss and
        word-write times.

    Raises
    ------
    ValueError
        If the profile has no memory system.
    """

    def __init__(self, profile: Platform):
        spec: MemorySystemSpec | None = profile.memory
        if spec is None:
            raise ValueError(f"profile {profile.name} has no memory system to model")
        self.profile = profile
        self.spec = spec
        line = int(spec.line_bytes.value)
        self.icache = DirectMappedCache(int(spec.icache_bytes.value), line, f"{profile.name}.icache")
        self.dcache = DirectMappedCache(int(spec.dcache_bytes.value), line, f"{profile.name}.dcache")
        self.space = AddressSpace()
        cp = profile.cycle_ps
        self.cycle_ps = cp
        self.read_miss = profile.word_read_miss_ps.value / cp      # cycles, 10 on the 3MIN
        self.word_write = profile.word_write_ps.value / cp          # cycles, 6 on the 3MIN
        self.depth = int(spec.write_buffer_entries.value)
        self.copy_issue = spec.copy_issue_cycles_per_word.value
        self._drained_at = 0          # ps: when the write buffer will be empty

    # -- the write buffer ----------------------------------------------------------------------
    def backlog(self, now: int) -> float:
        """Cycles until the write buffer is empty, seen at time ``now`` (ps)."""
        return max(0, self._drained_at - now) / self.cycle_ps

    def _stream(self, now: int, issue: float, misses: int, writes: int) -> Stall:
        """Time a loop of ``issue`` cycles that makes ``misses`` read misses and stores
        ``writes`` words, starting at ``now`` (see the module docstring), and advance the
        write buffer."""
        b = self.backlog(now) if (misses or writes) else 0.0
        r, d = self.read_miss, self.word_write
        memory = b + misses * r + writes * d
        own = issue + misses * (r - 1)
        if writes:
            # A read miss empties the buffer, so only the stores after the last miss (about
            # writes - misses of them, at least the last one) can still be queued at the end.
            queued = self.depth if not misses else min(self.depth, max(1, writes - misses))
            cpu = max(own, memory - min(queued * d, memory))
            drained = max(memory, cpu + d)
        else:
            cpu = max(own, memory)
            drained = b
        total = ceil_cycles(cpu)
        whole_issue = min(ceil_cycles(issue), total)
        self._drained_at = max(self._drained_at, now + int(round(drained * self.cycle_ps)))
        return Stall(whole_issue, total - whole_issue, misses, writes)

    # -- streams -------------------------------------------------------------------------------
    def copy(self, now: int, nbytes: int, src: Address, dst: Address, call_cycles: float = 0,
             issue_per_word: float | None = None) -> Stall:
        """A bcopy of ``nbytes`` from ``src`` to ``dst`` starting at ``now`` (ps).

        The source's lines are read through the data cache, then the destination's are written
        (through the write buffer, and into the cache). ``issue_per_word`` is the loop's own
        cycles per word (default the profile's bcopy, ``copy_issue_cycles_per_word``); a loop
        that does more per word than move it (a fused copy and checksum) gives its own.
        """
        words = -(-nbytes // 4)
        if words == 0:
            return Stall(0, 0, 0, 0)
        s, t = address_of(src), address_of(dst)
        start = now + int(round(call_cycles * self.cycle_ps))
        misses = self.dcache.read(s, nbytes)
        self.dcache.fill(t, nbytes)
        per = self.copy_issue if issue_per_word is None else issue_per_word
        st = self._stream(start, words * per, misses, words)
        call = ceil_cycles(call_cycles)
        return Stall(st.issue + call, st.stall, st.misses, st.writes)

    def read(self, now: int, nbytes: int, src: Address, issue_per_word: float,
             call_cycles: float = 0) -> Stall:
        """A loop that reads ``nbytes`` at ``src`` (a checksum) at ``issue_per_word`` cycles."""
        words = -(-nbytes // 4)
        if words == 0:
            return Stall(0, 0, 0, 0)
        start = now + int(round(call_cycles * self.cycle_ps))
        misses = self.dcache.read(address_of(src), nbytes)
        st = self._stream(start, words * issue_per_word, misses, 0)
        return Stall(st.issue + ceil_cycles(call_cycles), st.stall, st.misses, 0)

    def write(self, now: int, nbytes: int, dst: Address, issue_per_word: float = 1.0) -> Stall:
        """A loop that stores ``nbytes`` at ``dst`` (e.g. the host side of a copy out of a
        card's buffer), at ``issue_per_word`` cycles of its own per word."""
        words = -(-nbytes // 4)
        if words == 0:
            return Stall(0, 0, 0, 0)
        self.dcache.fill(address_of(dst), nbytes)
        return self._stream(now, words * issue_per_word, 0, words)

    def path(self, now: int, code: Region, data: Region | None = None) -> Stall:
        """The memory side of running a kernel path whose code is ``code`` and whose data is
        ``data``: one read-miss time for every line not resident in its cache (cold misses,
        VALIDATION X3), after the write buffer has drained. No issue cycles: the caller charges
        the path's instructions."""
        misses = self.icache.read(code.base, code.size)
        if data is not None:
            misses += self.dcache.read(data.base, data.size)
        if not misses:
            return Stall(0, 0, 0, 0)
        # The first refill waits for the write buffer; each miss stalls the read time less the
        # one cycle of the instruction itself, which the caller's instruction count holds.
        return Stall(0, ceil_cycles(self.backlog(now) + misses * (self.read_miss - 1)), misses, 0)

    # -- the host side of programmed I/O -------------------------------------------------------
    def pio_out(self, now: int, nbytes: int, src: Address) -> Stall:
        """The host-memory side of copying ``nbytes`` from ``src`` to a card by PIO stores:
        each source word that misses the data cache is a full memory read (the I/O stores are
        waited for one by one, so nothing overlaps it); the first waits for the write buffer."""
        if nbytes <= 0:
            return Stall(0, 0, 0, 0)
        misses = self.dcache.read(address_of(src), nbytes)
        if not misses:
            return Stall(0, 0, 0, 0)
        return Stall(0, ceil_cycles(self.backlog(now) + misses * self.read_miss), misses, 0)

    def pio_in(self, now: int, nbytes: int, dst: Address) -> Stall:
        """The host-memory side of copying ``nbytes`` from a card by PIO loads into ``dst``:
        each word is stored to memory through the write buffer, and the next I/O read cannot
        pass the buffer, so every store but the last drains in series with the reads (charged
        after the card's reads, at ``now``, the time they are done). The last store is left
        draining."""
        words = -(-nbytes // 4)
        if words == 0:
            return Stall(0, 0, 0, 0)
        self.dcache.fill(address_of(dst), nbytes)
        stall = ceil_cycles(self.backlog(now) + (words - 1) * self.word_write)
        self._drained_at = max(self._drained_at,
                               now + int(round((stall + self.word_write) * self.cycle_ps)))
        return Stall(0, stall, 0, words)
