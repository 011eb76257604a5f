"""Where a physical buffer cache keeps its blocks: block-sized slots in simulated main memory.

A library OS on an exokernel owns physical pages (Aegis's ``alloc_pages``); its buffer cache
may keep every block in them, so that each :class:`~.cache.Buffer` has a physical address
(``buf.addr``): the disk reads a block by DMA straight into its pages
(``device.read_into``), and a DMA network card sends the block from there by reference
(:class:`sw.libos.net.gather.PhysRef`): the CPU copies nothing (issue 16, Cheetah's
zero-copy path). The buffer's ``data`` is then a view of those bytes of memory, so the file
system reads and writes metadata (inodes, directories) in place as before.

The R3000's data cache is write-through, physically indexed and not coherent with DMA
(CALIBRATION.md, "caches"): a DMA out of memory always sees current data, so nothing is ever
written back before a card or a disk reads a block; but a DMA into memory leaves whatever
lines of those addresses the cache held stale, so software that will read the block with
the CPU must invalidate them first (Ultrix does it after every DMA-in). The store counts the
lines a cache invalidates (:attr:`PhysicalStore.lines_invalidated`; a document's data lines
also go to the host's :class:`~sw.doc_touch.DocTouch`). A cache whose owner never reads its
data blocks with the CPU (Cheetah with every specialization on, over a DMA card) invalidates
only its metadata blocks (:attr:`PhysicalStore.cpu_reads_data`).
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable

__all__ = ["PhysicalStore"]


def _pos_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, not {v!r}")
    return v


class PhysicalStore:
    """Physical pages a buffer cache cuts into block slots.

    Parameters
    ----------
    memory : sim.memory.Memory-like
        ``page_size``, ``pages``, ``view(addr, n)`` and ``write(addr, data)``.
    pages : iterable of int, or callable(n) -> list of int
        Page numbers the cache's owner holds (e.g. from ``Aegis.alloc_pages``), or how to get
        ``n`` of them when the cache knows its block size (:meth:`slots`); a slot never
        straddles two pages that are not adjacent.
    requester : hashable, optional
        Whose the pages are: the device checks DMA into a slot against it (None: the kernel).
    line_bytes : int
        The data cache's line size (4 on the R3000), for counting invalidated lines.
    cpu_reads_data : bool
        Whether the CPU reads data blocks after they are read from the disk (so their lines
        must be invalidated after the DMA); metadata blocks are always invalidated.
    doc_touch : sw.doc_touch.DocTouch, optional
        Told the data-block lines invalidated (the cache's data blocks are documents).

    Raises
    ------
    ValueError
        For a page outside memory, a repeated page, or a bad parameter.
    """

    def __init__(self, memory, pages: Iterable[int] | Callable[[int], list[int]], *,
                 requester: Hashable | None = None, line_bytes: int = 4,
                 cpu_reads_data: bool = True, doc_touch=None):
        self.memory = memory
        self._alloc = pages if callable(pages) else None
        self.pages: list[int] = []
        if self._alloc is None:
            self._set_pages(pages)
        if doc_touch is not None and not callable(getattr(doc_touch, "flushed", None)):
            raise TypeError(f"doc_touch must be a sw.doc_touch.DocTouch, not {doc_touch!r}")
        self.requester = requester
        self.line_bytes = _pos_int("line_bytes", line_bytes)
        self.cpu_reads_data = bool(cpu_reads_data)
        self.doc_touch = doc_touch
        self.lines_invalidated = 0

    def _set_pages(self, pages) -> None:
        pages = sorted(pages)
        for p in pages:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < self.memory.pages:
                raise ValueError(f"page {p!r} is not a page of {self.memory!r}")
        if len(set(pages)) != len(pages):
            raise ValueError("a page is given to the store twice")
        self.pages = pages

    @property
    def bytes(self) -> int:
        """Bytes of memory in the store."""
        return len(self.pages) * self.memory.page_size

    def slots(self, block_size: int, count: int) -> list[int]:
        """Addresses of ``count`` slots of ``block_size`` bytes, lowest first: each a run of
        adjacent pages (or a part of one page, for blocks smaller than a page).

        Raises
        ------
        ValueError
            If the pages hold fewer slots, or for a block size that is not a multiple or a
            divisor of the page size.
        """
        ps = self.memory.page_size
        _pos_int("block size", block_size)
        _pos_int("slot count", count)
        if block_size % ps and ps % block_size:
            raise ValueError(f"block size {block_size} is neither a multiple nor a divisor of "
                             f"the {ps}-byte page")
        if self._alloc is not None and not self.pages:
            self._set_pages(self._alloc(-(-block_size * count // ps)))
        out: list[int] = []
        run: list[int] = []
        for p in self.pages + [None]:
            if run and (p is None or p != run[-1] + 1):
                start, length = run[0] * ps, len(run) * ps
                out += range(start, start + length - block_size + 1, block_size)
                run = []
            if p is not None:
                run.append(p)
        if len(out) < count:
            raise ValueError(f"{len(self.pages)} pages of {ps} bytes hold {len(out)} blocks of "
                             f"{block_size} bytes, not {count}")
        return out[:count]

    def view(self, addr: int, n: int) -> memoryview:
        """The bytes of a slot, in place."""
        return self.memory.view(addr, n)

    def zero(self, addr: int, n: int) -> None:
        """Clear a slot (a new block the file system will fill)."""
        self.memory.write(addr, bytes(n))

    def invalidate(self, nbytes: int, data: bool) -> None:
        """Count the lines of ``nbytes`` just written by DMA that the CPU will read: all of
        a metadata block, a data block's only if :attr:`cpu_reads_data`."""
        if data and not self.cpu_reads_data:
            return
        lines = -(-nbytes // self.line_bytes)
        self.lines_invalidated += lines
        if data and self.doc_touch is not None:
            self.doc_touch.flushed(lines)

    def __repr__(self) -> str:
        return f"<PhysicalStore {len(self.pages)} pages for {self.requester!r}>"
