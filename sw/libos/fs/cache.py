"""The buffer cache, whose policies the application supplies at initialization.

Four policy functions decide what the cache does; each has a default:

``replace(cache, candidates) -> Buffer``
    Choose the victim to evict among ``candidates`` (every buffer that may be evicted:
    not pinned, not write-locked), given least recently used first. Default :func:`lru`.
``miss(cache, lbn) -> Awaitable[bytes]``
    Produce the contents of block ``lbn`` on a miss. Default :func:`read_miss` reads it from
    the device; a policy may read ahead and :meth:`BufferCache.insert` the extra blocks (how
    Cheetah prefetches a page's inline images).
``write_back(cache, buffer) -> Awaitable[None]``
    Put one dirty buffer on the disk (called on eviction and by flush). Default
    :func:`write_block` writes it in place. The cache is write-back: a modified buffer is
    only marked dirty; an application wanting write-through calls :meth:`BufferCache.sync_buffer`.
``flush(cache, dirty) -> Awaitable[None]``
    Write out the dirty buffers ``dirty``. Default :func:`ordered_flush`: data first, then
    indirect blocks, inodes, directories, cylinder groups and the superblock, each in block
    order, so that a crash part-way leaves what fsck repairs easily (an inode never points
    to unwritten blocks that were written after it).

Pinned buffers (:meth:`BufferCache.pin`) are never evicted; write-locked buffers
(:meth:`BufferCache.write_lock`) are never evicted or modified by the file system (a write
into one raises :class:`~sw.libos.fs.errors.WriteLocked`). Together they let a buffer double
as a TCP retransmission buffer without copying.

Buffers are only valid between awaits: code that awaits must look a block up again after.

A *physical* cache (``store=``, a :class:`~.physical.PhysicalStore`) keeps every block in
pages of simulated main memory: each buffer has a physical address (:attr:`Buffer.addr`) and
its ``data`` is a view of those bytes; a miss reads the block from the disk by DMA straight
into its slot (:meth:`BufferCache.fill`, over the device's ``read_into``) and a write-back
DMAs it out from there (``write_from``): nothing is copied by the CPU. Miss policies of a
physical cache call :meth:`BufferCache.fill` and return None (:func:`read_miss` does); one that
returns bytes still works (the bytes are stored in the slot).
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Awaitable, Callable, Iterable

from .errors import Busy, CacheFull, WouldBlock

__all__ = ["Buffer", "BufferCache", "lru", "read_miss", "write_block", "ordered_flush",
           "DATA", "INDIRECT", "INODE", "DIRECTORY", "GROUP", "SUPER", "KINDS"]

DATA, INDIRECT, INODE, DIRECTORY, GROUP, SUPER = "data", "indirect", "inode", "directory", "group", "super"
KINDS = (DATA, INDIRECT, INODE, DIRECTORY, GROUP, SUPER)
_FLUSH_ORDER = {k: i for i, k in enumerate(KINDS)}


class Buffer:
    """One cached file-system block.

    Attributes
    ----------
    lbn : int
        File-system block number.
    data : bytearray
        The block's bytes (modify only through the file system, then :meth:`BufferCache.mark_dirty`).
    dirty : bool
        Modified since it was last written.
    pins : int
        Pin count; a pinned buffer is never evicted.
    write_locked : int
        Write-lock count; a write-locked buffer is neither evicted nor modified.
    kind : str
        What the block holds (one of :data:`KINDS`), for flush ordering and policies.
    addr : int or None
        The block's physical address in a physical cache (``data`` is then a view of main
        memory there), else None.
    """

    __slots__ = ("lbn", "data", "dirty", "pins", "write_locked", "kind", "addr")

    def __init__(self, lbn: int, data: bytearray | memoryview, kind: str, addr: int | None = None):
        self.lbn = lbn
        self.data = data
        self.dirty = False
        self.pins = 0
        self.write_locked = 0
        self.kind = kind
        self.addr = addr

    @property
    def evictable(self) -> bool:
        return self.pins == 0 and self.write_locked == 0

    def __repr__(self) -> str:
        flags = "".join(c for c, on in (("D", self.dirty), ("P", self.pins), ("W", self.write_locked)) if on)
        return f"<Buffer {self.lbn} {self.kind} {flags}>"


# ---- default policies ------------------------------------------------------------------
def lru(cache: "BufferCache", candidates: list[Buffer]) -> Buffer:
    """Evict the least recently used candidate."""
    return candidates[0]


async def read_miss(cache: "BufferCache", lbn: int) -> bytes | None:
    """Read block ``lbn`` from the device (a physical cache: by DMA into its slot, None)."""
    if cache.store is not None:
        await cache.fill(lbn, 1)
        return None
    return await cache.read_blocks(lbn, 1)


async def write_block(cache: "BufferCache", buf: Buffer) -> None:
    """Write a buffer to its own block (a physical cache: by DMA from its slot)."""
    if buf.addr is not None:
        await cache.write_from(buf)
        return
    await cache.write_blocks(buf.lbn, bytes(buf.data))


async def ordered_flush(cache: "BufferCache", dirty: list[Buffer]) -> None:
    """Write ``dirty`` ordered by kind (data ... superblock), then by block number."""
    for buf in sorted(dirty, key=lambda b: (_FLUSH_ORDER.get(b.kind, 0), b.lbn)):
        await cache.sync_buffer(buf)


class BufferCache:
    """A write-back cache of ``capacity`` file-system blocks over a block device.

    Parameters
    ----------
    device : BlockDevice
        The device (its sector size must divide ``block_size``).
    block_size : int
        File-system block size in bytes.
    capacity : int
        Buffers held at most.
    replace, miss, write_back, flush : callable, optional
        The policies (see the module docstring); defaults :func:`lru`, :func:`read_miss`,
        :func:`write_block`, :func:`ordered_flush`.
    store : PhysicalStore, optional
        Keep the blocks in these physical pages (a physical cache, see the module docstring);
        the device must DMA (``read_into`` and ``write_from``).

    Attributes
    ----------
    hits, misses, evictions, writes : int
        Counters.
    no_io : bool
        Set by non-blocking calls: any I/O raises :class:`WouldBlock` instead of starting.

    Raises
    ------
    ValueError
        For a capacity < 1, a block size the device's sectors do not divide, or a store
        holding fewer than ``capacity`` blocks.
    TypeError
        For a policy that is not callable, or a store over a device that cannot DMA.
    """

    def __init__(self, device, block_size: int, capacity: int = 64, *,
                 replace: Callable[["BufferCache", list[Buffer]], Buffer] | None = None,
                 miss: Callable[["BufferCache", int], Awaitable[bytes]] | None = None,
                 write_back: Callable[["BufferCache", Buffer], Awaitable[None]] | None = None,
                 flush: Callable[["BufferCache", list[Buffer]], Awaitable[None]] | None = None,
                 store=None):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"cache capacity must be a positive int, not {capacity!r}")
        if not isinstance(block_size, int) or block_size % device.block_size:
            raise ValueError(f"fs block size {block_size!r} is not a multiple of the device's "
                             f"{device.block_size}-byte sectors")
        for name, fn in (("replace", replace), ("miss", miss), ("write_back", write_back),
                         ("flush", flush)):
            if fn is not None and not callable(fn):
                raise TypeError(f"cache policy {name} must be callable, not {fn!r}")
        self.device = device
        self.block_size = block_size
        self.spb = block_size // device.block_size
        self.capacity = capacity
        self.replace = replace or lru
        self.miss = miss or read_miss
        self.write_back = write_back or write_block
        self.flush_policy = flush or ordered_flush
        self._bufs: OrderedDict[int, Buffer] = OrderedDict()   # least recently used first
        self.hits = self.misses = self.evictions = self.writes = 0
        self.no_io = False
        self.store = store
        self._free: list[int] = []           # a physical cache's free slots, lowest first
        self._missing: dict[int, str] = {}   # blocks get() is asking the miss policy for
        if store is not None:
            for meth in ("read_into", "write_from"):
                if not callable(getattr(device, meth, None)):
                    raise TypeError(f"a physical cache needs a device that DMAs: {device!r} "
                                    f"has no {meth}()")
            self._free = store.slots(block_size, capacity)

    # ---- device access (for policies) ------------------------------------------------------
    async def read_blocks(self, lbn: int, count: int = 1) -> bytes:
        """Read ``count`` fs blocks from the device (no caching)."""
        if self.no_io:
            raise WouldBlock(f"reading block {lbn} needs I/O")
        data = await self.device.read(lbn * self.spb, count * self.spb)
        if len(data) != count * self.block_size:
            raise ValueError(f"device returned {len(data)} bytes for {count} blocks at {lbn}")
        return data

    async def write_blocks(self, lbn: int, data: bytes) -> None:
        """Write whole fs blocks to the device (no caching)."""
        if self.no_io:
            raise WouldBlock(f"writing block {lbn} needs I/O")
        self.writes += len(data) // self.block_size
        await self.device.write(lbn * self.spb, data)

    async def write_from(self, buf: Buffer) -> None:
        """Write a physical cache's buffer to its block by DMA from its slot."""
        if self.no_io:
            raise WouldBlock(f"writing block {buf.lbn} needs I/O")
        self.writes += 1
        await self.device.write_from(buf.lbn * self.spb, self.spb, buf.addr,
                                     requester=self.store.requester)

    async def fill(self, lbn: int, count: int = 1, kind: str | None = None, *,
                   wanted: int | None = None) -> int:
        """Read the blocks of ``[lbn, lbn + count)`` that are not cached into a physical
        cache, by DMA straight into their slots (one device request per run of adjacent
        blocks in adjacent slots); returns how many were read.

        The block ``wanted`` (default ``lbn``) becomes the most recently used, of ``kind``
        (default: the kind :meth:`get` was asked for, if a miss policy fills it, else data);
        the others are read ahead (least recently used: the first to go if unused), as
        :meth:`insert` puts them. Each block's stale data-cache lines are invalidated after the DMA (counted by the
        store, see :mod:`.physical`).

        Raises
        ------
        CacheFull, WouldBlock
            As :meth:`get`.
        TypeError
            For a cache that is not physical.
        """
        if self.store is None:
            raise TypeError("fill() is for a physical cache (BufferCache(store=...))")
        wanted = lbn if wanted is None else wanted
        if kind is None:
            kind = self._missing.get(wanted, DATA)
        todo = [b for b in range(lbn, lbn + count) if b not in self._bufs]
        if not todo:
            return 0
        if self.no_io:
            raise WouldBlock(f"block {todo[0]} is not cached")
        await self._make_room(len(todo))
        todo = [b for b in todo if b not in self._bufs]
        slots = self._take_slots(len(todo))
        bs, spb = self.block_size, self.spb
        try:
            i = 0
            while i < len(todo):
                j = i + 1
                while j < len(todo) and todo[j] == todo[j - 1] + 1 \
                        and slots[j] == slots[j - 1] + bs:
                    j += 1
                await self.device.read_into(todo[i] * spb, (j - i) * spb, slots[i],
                                            requester=self.store.requester)
                i = j
        except BaseException:
            self._give_slots(slots)
            raise
        done = 0
        for b, addr in zip(todo, slots):
            if b in self._bufs:                          # read meanwhile by another call
                self._give_slots([addr])
                continue
            k = kind if b == wanted else DATA
            self.store.invalidate(bs, data=k == DATA)
            self._bufs[b] = Buffer(b, self.store.view(addr, bs), k, addr)
            if b != wanted:
                self._bufs.move_to_end(b, last=False)
            done += 1
        return done

    def _take_slots(self, n: int) -> list[int]:
        """``n`` free slots, adjacent ones if there is such a run (lowest first)."""
        free, bs = self._free, self.block_size
        for i in range(len(free) - n + 1):
            if free[i + n - 1] - free[i] == (n - 1) * bs:
                taken = free[i:i + n]
                del free[i:i + n]
                return taken
        taken = free[:n]
        del free[:n]
        return taken

    def _give_slots(self, slots: list[int]) -> None:
        for a in slots:
            bisect.insort(self._free, a)

    def _new_buffer(self, lbn: int, data: bytes, kind: str) -> Buffer:
        """A buffer holding ``data`` (in a free slot of a physical cache)."""
        if self.store is None:
            return Buffer(lbn, bytearray(data), kind)
        addr = self._take_slots(1)[0]
        self.store.memory.write(addr, data)
        return Buffer(lbn, self.store.view(addr, self.block_size), kind, addr)

    def _drop(self, buf: Buffer) -> None:
        del self._bufs[buf.lbn]
        if buf.addr is not None:
            self._give_slots([buf.addr])

    # ---- lookup ------------------------------------------------------------------------------
    def __contains__(self, lbn: int) -> bool:
        return lbn in self._bufs

    def __len__(self) -> int:
        return len(self._bufs)

    def peek(self, lbn: int) -> Buffer | None:
        """The buffer of ``lbn`` if cached (recency unchanged), else None."""
        return self._bufs.get(lbn)

    def buffers(self) -> list[Buffer]:
        """All buffers, least recently used first."""
        return list(self._bufs.values())

    async def get(self, lbn: int, kind: str = DATA, *, fill: bool = True) -> Buffer:
        """The buffer of block ``lbn``: with ``fill``, its contents (read on a miss); without,
        a zeroed dirty buffer (for a block about to be wholly written, e.g. newly allocated;
        a stale read-ahead copy is zeroed too).

        Raises
        ------
        CacheFull
            If room is needed and nothing can be evicted.
        WouldBlock
            In ``no_io`` mode, if a read or a write-back would be needed.
        """
        buf = self._bufs.get(lbn)
        if buf is not None:
            self._bufs.move_to_end(lbn)
            self.hits += 1
            if not fill:                     # the caller defines every byte (a new block)
                buf.data[:] = bytes(self.block_size)
                buf.dirty = True
            return buf
        self.misses += 1
        if fill:
            if self.no_io:
                raise WouldBlock(f"block {lbn} is not cached")
            self._missing[lbn] = kind
            try:
                data = await self.miss(self, lbn)
            finally:
                self._missing.pop(lbn, None)
            if data is None and self.store is not None:
                buf = self._bufs.get(lbn)        # the policy filled it (fill())
                if buf is None:
                    raise ValueError(f"miss policy returned None but did not fill block {lbn}")
                self._bufs.move_to_end(lbn)
                buf.kind = kind
                return buf
            if data is None or len(data) != self.block_size:
                raise ValueError(f"miss policy returned "
                                 f"{'None' if data is None else len(data)} bytes for block "
                                 f"{lbn}, not {self.block_size}")
        else:
            data = bytes(self.block_size)
        await self._make_room()
        buf = self._bufs.get(lbn)            # a read-ahead may have brought it in meanwhile
        if buf is None:
            buf = self._new_buffer(lbn, data, kind)
            self._bufs[lbn] = buf
        else:
            self._bufs.move_to_end(lbn)
            if not fill:
                buf.data[:] = data
        if not fill:
            buf.dirty = True
        return buf

    async def insert(self, lbn: int, data: bytes, kind: str = DATA) -> None:
        """Add a clean block read ahead by a miss policy (ignored if already cached)."""
        if lbn in self._bufs:
            return
        if len(data) != self.block_size:
            raise ValueError(f"cannot insert {len(data)} bytes as block {lbn}")
        await self._make_room()
        if lbn not in self._bufs:
            self._bufs[lbn] = self._new_buffer(lbn, data, kind)
            self._bufs.move_to_end(lbn, last=False)      # read ahead: first to go if unused

    def room_without_io(self) -> int:
        """How many new buffers could be added now without any I/O."""
        free = self.capacity - len(self._bufs)
        clean = sum(1 for b in self._bufs.values() if b.evictable and not b.dirty)
        return free + clean

    def _room(self) -> int:
        return len(self._free) if self.store is not None else self.capacity - len(self._bufs)

    async def _make_room(self, n: int = 1) -> None:
        while self._room() < n:
            candidates = [b for b in self._bufs.values() if b.evictable]
            if self.no_io:
                candidates = [b for b in candidates if not b.dirty] or candidates
            if not candidates:
                raise CacheFull(f"all {len(self._bufs)} buffers are pinned or write-locked")
            victim = self.replace(self, candidates)
            if not any(victim is c for c in candidates):
                raise ValueError(f"replacement policy chose {victim!r}, which is not a candidate")
            if victim.dirty:
                if self.no_io:
                    raise WouldBlock(f"evicting dirty block {victim.lbn} needs I/O")
                await self.sync_buffer(victim)
            if self._bufs.get(victim.lbn) is victim and victim.evictable and not victim.dirty:
                self._drop(victim)
                self.evictions += 1

    # ---- modification -------------------------------------------------------------------------
    def mark_dirty(self, buf: Buffer) -> None:
        """Record that ``buf`` was modified (write-back: it is written later)."""
        buf.dirty = True

    def discard(self, lbn: int) -> None:
        """Drop block ``lbn`` without writing it (it was freed).

        Raises
        ------
        Busy
            If the buffer is pinned or write-locked.
        """
        buf = self._bufs.get(lbn)
        if buf is None:
            return
        if not buf.evictable:
            raise Busy(f"block {lbn} is pinned or write-locked and cannot be freed")
        self._drop(buf)

    def pin(self, buf: Buffer) -> None:
        """Pin ``buf``: never evicted until unpinned as many times."""
        buf.pins += 1

    def unpin(self, buf: Buffer) -> None:
        if buf.pins <= 0:
            raise ValueError(f"block {buf.lbn} is not pinned")
        buf.pins -= 1

    def write_lock(self, buf: Buffer) -> None:
        """Write-lock ``buf``: neither modified nor evicted until unlocked."""
        buf.write_locked += 1

    def write_unlock(self, buf: Buffer) -> None:
        if buf.write_locked <= 0:
            raise ValueError(f"block {buf.lbn} is not write-locked")
        buf.write_locked -= 1

    # ---- writing -----------------------------------------------------------------------------
    async def sync_buffer(self, buf: Buffer) -> None:
        """Write ``buf`` now (through the write-back policy) if it is dirty."""
        if not buf.dirty:
            return
        buf.dirty = False
        try:
            await self.write_back(self, buf)
        except BaseException:
            buf.dirty = True
            raise

    async def flush(self, bufs: Iterable[Buffer] | None = None) -> None:
        """Write every dirty buffer (or those of ``bufs``) through the flush policy."""
        pool = self._bufs.values() if bufs is None else bufs
        dirty = [b for b in pool if b.dirty]
        if dirty:
            await self.flush_policy(self, dirty)

    @property
    def dirty_count(self) -> int:
        return sum(1 for b in self._bufs.values() if b.dirty)
