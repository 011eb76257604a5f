"""Physical main memory: bytes, page ownership, and a timed DMA port for devices.

The CPU side of memory is untimed here: software reads and writes the bytes directly and
charges the CPU for what it did (copy and checksum costs come from the platform profile, see
:meth:`sim.cpu.CPU.copy` and :meth:`sim.cpu.CPU.memcpy`, or, for software that names the
addresses it touches, from the caches and write buffer of :mod:`sim.cache`). Devices use the DMA port, which
takes the main-memory time of the transfer from the profile (on the 3MIN a 64-word DMA read /
write occupies 68 / 66 memory cycles of 80 ns) and serializes DMA masters on the one memory.

Page ownership is the exokernel's hook into memory: :meth:`Memory.set_owner` records which
principal owns each page, and every access that names a ``requester`` (a DMA on behalf of an
application, a copy by an environment) is checked by :attr:`Memory.access_check`, which the
exokernel may replace. The default check allows the kernel (requester ``None``), unowned
pages, and the page's owner; anything else raises :class:`MemoryAccessError` naming the page,
its owner and the requester. The refusal happens before any byte moves.

Not modelled: cache invalidation by DMA (:mod:`sim.cache` keeps only the CPU's view); the CPU
stalls that DMA cycle-stealing causes (DMA has priority over the CPU on
the 3MIN's memory); refresh (5 memory cycles, a fraction of a percent).
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterator

from .kernel import Kernel
from .platforms.base import Platform

#: ``access_check(page, owner, requester, write) -> bool``: may ``requester`` touch ``page``?
AccessCheck = Callable[[int, Hashable | None, Hashable | None, bool], bool]


class MemoryBoundsError(IndexError):
    """An access outside physical memory (the message names the address and the size)."""


class MemoryAccessError(PermissionError):
    """An access refused by the ownership check.

    Attributes
    ----------
    page, owner, requester, write
        What was refused.
    """

    def __init__(self, memory: str, page: int, page_size: int, owner, requester, write: bool):
        self.page, self.owner, self.requester, self.write = page, owner, requester, write
        super().__init__(
            f"{memory}: {requester!r} may not {'write' if write else 'read'} page {page} "
            f"({page * page_size:#x}-{(page + 1) * page_size - 1:#x}), owned by {owner!r}")


def default_access_check(page: int, owner, requester, write: bool) -> bool:
    """The kernel (requester None) and a page's owner may access it; unowned pages are open."""
    return requester is None or owner is None or owner == requester


class Memory:
    """Physical memory of ``size`` bytes in pages of ``page_size``.

    Parameters
    ----------
    kernel : Kernel
        The event kernel (DMA takes simulated time).
    size : int
        Bytes; a positive multiple of ``page_size``.
    page_size : int
        A power of two (4096, the R3000's page).
    profile : Platform
        Supplies the DMA timing (memory cycle, burst size and cycles per burst).
    name : str
        For errors and reports.

    Raises
    ------
    ValueError
        For a bad size or page size.
    """

    def __init__(self, kernel: Kernel, size: int, page_size: int = 4096, *,
                 profile: Platform, name: str = "mem"):
        if not isinstance(page_size, int) or page_size <= 0 or page_size & (page_size - 1):
            raise ValueError(f"page size must be a positive power of two, not {page_size!r}")
        if not isinstance(size, int) or size <= 0 or size % page_size:
            raise ValueError(f"memory size must be a positive multiple of the page size "
                             f"{page_size}, not {size!r}")
        self.kernel = kernel
        self.size = size
        self.page_size = page_size
        self.profile = profile
        self.name = name
        self.data = bytearray(size)
        self._owners: list[Hashable | None] = [None] * (size // page_size)
        self.access_check: AccessCheck = default_access_check
        self._dma_free_at = 0         # the memory serves one DMA burst stream at a time
        self.dma_bytes_read = 0
        self.dma_bytes_written = 0
        self.dma_busy_ps = 0
        self._dma_times: dict[tuple[int, bool], int] = {}

    # -- geometry and checks ------------------------------------------------------------------
    @property
    def pages(self) -> int:
        return len(self._owners)

    def _bounds(self, addr: int, n: int) -> None:
        if not isinstance(addr, int) or not isinstance(n, int):
            raise TypeError(f"{self.name}: address and length must be ints, not {addr!r}, {n!r}")
        if n < 0:
            raise ValueError(f"{self.name}: negative length {n} at {addr:#x}")
        if addr < 0 or addr + n > self.size:
            raise MemoryBoundsError(
                f"{self.name}: access of {n} bytes at {addr:#x} is outside memory "
                f"[0, {self.size:#x})")

    def pages_of(self, addr: int, n: int) -> range:
        """Page numbers that ``[addr, addr + n)`` touches (empty for n == 0)."""
        self._bounds(addr, n)
        if n == 0:
            return range(0)
        return range(addr // self.page_size, (addr + n - 1) // self.page_size + 1)

    def check(self, addr: int, n: int, requester=None, write: bool = False) -> None:
        """Raise unless ``requester`` may access every page of ``[addr, addr + n)``."""
        if type(addr) is int and type(n) is int and 0 <= addr and 0 < n and addr + n <= self.size:
            # The DMA hot path (every burst of every device): pages_of without its checks.
            ps, owners, allowed = self.page_size, self._owners, self.access_check
            for page in range(addr // ps, (addr + n - 1) // ps + 1):
                owner = owners[page]
                if not allowed(page, owner, requester, write):
                    raise MemoryAccessError(self.name, page, self.page_size, owner, requester,
                                            write)
            return
        for page in self.pages_of(addr, n):
            owner = self._owners[page]
            if not self.access_check(page, owner, requester, write):
                raise MemoryAccessError(self.name, page, self.page_size, owner, requester, write)

    # -- ownership ---------------------------------------------------------------------------------
    def set_owner(self, page: int, owner: Hashable | None) -> None:
        """Record ``owner`` (None: unowned) for ``page``."""
        if not isinstance(page, int) or not 0 <= page < self.pages:
            raise MemoryBoundsError(f"{self.name}: no page {page!r} (memory has {self.pages})")
        self._owners[page] = owner

    def owner(self, page: int) -> Hashable | None:
        if not isinstance(page, int) or not 0 <= page < self.pages:
            raise MemoryBoundsError(f"{self.name}: no page {page!r} (memory has {self.pages})")
        return self._owners[page]

    def owned_by(self, owner: Hashable) -> Iterator[int]:
        """The pages ``owner`` holds, in order."""
        return (p for p, o in enumerate(self._owners) if o == owner)

    # -- untimed CPU-side access ------------------------------------------------------------------
    def read(self, addr: int, n: int, requester=None) -> bytes:
        """The bytes at ``[addr, addr + n)`` (untimed: the caller charges the CPU)."""
        if requester is not None:
            self.check(addr, n, requester, write=False)
        else:
            self._bounds(addr, n)
        return bytes(self.data[addr:addr + n])

    def write(self, addr: int, data: bytes | bytearray | memoryview, requester=None) -> None:
        """Store ``data`` at ``addr`` (untimed)."""
        n = len(data)
        if requester is not None:
            self.check(addr, n, requester, write=True)
        else:
            self._bounds(addr, n)
        self.data[addr:addr + n] = data

    def view(self, addr: int, n: int) -> memoryview:
        """A zero-copy view of ``[addr, addr + n)`` (kernel use: no ownership check)."""
        self._bounds(addr, n)
        return memoryview(self.data)[addr:addr + n]

    def read_word(self, addr: int) -> int:
        """A little-endian 32-bit word (the DECstation runs the R3000 little-endian)."""
        if addr & 3:
            raise ValueError(f"{self.name}: unaligned word at {addr:#x}")
        return int.from_bytes(self.read(addr, 4), "little")

    def write_word(self, addr: int, value: int) -> None:
        if addr & 3:
            raise ValueError(f"{self.name}: unaligned word at {addr:#x}")
        if not 0 <= value < 1 << 32:
            raise ValueError(f"{self.name}: {value!r} does not fit a 32-bit word")
        self.write(addr, value.to_bytes(4, "little"))

    # -- timed DMA port ----------------------------------------------------------------------------
    def dma_time(self, nbytes: int, write: bool) -> int:
        """Main-memory time of a DMA transfer of ``nbytes`` (see :meth:`Platform.dma_ps`)."""
        key = (nbytes, write)
        t = self._dma_times.get(key)
        if t is None:       # the profile is frozen: one computation per size and direction
            t = self._dma_times[key] = self.profile.dma_ps(nbytes, write)
        return t

    def dma_done_at(self, nbytes: int, write: bool) -> int:
        """When a DMA transfer of ``nbytes`` requested now would complete, in ps.

        The memory serves DMA masters one at a time in call order, each for
        :meth:`dma_time`: the transfer starts when the memory is free (now, or when the
        transfers already queued end). A bridge between an HDL simulator and this memory uses
        it to know, at the request, when the memory will be done (``sim.bindings.dma``).
        """
        return max(self.kernel.now, self._dma_free_at) + self.dma_time(nbytes, write)

    def dma_claim(self, nbytes: int, *, write: bool) -> int:
        """Queue a DMA transfer of ``nbytes`` requested now and return when it completes, in ps.

        The synchronous half of :meth:`dma_read` / :meth:`dma_write` (which call it): the
        memory counts the transfer as queued behind the ones already claimed (exactly as
        :meth:`dma_done_at` predicts); the caller sleeps until the returned time and then takes
        or lands the bytes with :meth:`dma_read_now` / :meth:`dma_write_now`. It lets a device
        model run a burst without a coroutine per transfer (no ownership check: the caller
        makes it first, with :meth:`check`).
        """
        dur = self.dma_time(nbytes, write)
        done = max(self.kernel.now, self._dma_free_at) + dur
        self._dma_free_at = done
        self.dma_busy_ps += dur
        return done

    def dma_read_now(self, addr: int, n: int) -> bytes:
        """The bytes of a claimed DMA read, taken when it completes (counted as read by DMA)."""
        self.dma_bytes_read += n
        return bytes(self.data[addr:addr + n])

    def dma_write_now(self, addr: int, data: bytes) -> None:
        """Land the bytes of a claimed DMA write when it completes (counted as written)."""
        self.dma_bytes_written += len(data)
        self.data[addr:addr + len(data)] = data

    async def _occupy(self, nbytes: int, write: bool) -> None:
        await self.kernel.sleep_until(self.dma_claim(nbytes, write=write))

    async def dma_read(self, addr: int, n: int, requester=None) -> bytes:
        """A device reads ``n`` bytes from memory by DMA.

        The ownership check happens at once (before any time passes); the bytes are taken
        when the transfer completes. Concurrent DMA transfers queue for the memory in order.

        Raises
        ------
        MemoryBoundsError, MemoryAccessError
        """
        self.check(addr, n, requester, write=False)
        await self._occupy(n, write=False)
        self.dma_bytes_read += n
        return bytes(self.data[addr:addr + n])

    async def dma_write(self, addr: int, data: bytes | bytearray | memoryview, requester=None) -> None:
        """A device writes ``data`` into memory at ``addr`` by DMA.

        Checked at once; refused transfers leave memory untouched. The bytes land when the
        transfer completes.
        """
        data = bytes(data)
        self.check(addr, len(data), requester, write=True)
        await self._occupy(len(data), write=True)
        self.dma_bytes_written += len(data)
        self.data[addr:addr + len(data)] = data

    def __repr__(self) -> str:
        return f"<Memory {self.name} {self.size:#x} bytes, {self.pages} pages of {self.page_size}>"
