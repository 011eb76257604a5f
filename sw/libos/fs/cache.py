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
"""
from __future__ import annotations

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
    """

    __slots__ = ("lbn", "data", "dirty", "pins", "write_locked", "kind")

    def __init__(self, lbn: int, data: bytearray, kind: str):
        self.lbn = lbn
        self.data = data
        self.dirty = False
        self.pins = 0
        self.write_locked = 0
        self.kind = kind

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


async def read_miss(cache: "BufferCache", lbn: int) -> bytes:
    """Read block ``lbn`` from the device."""
    return await cache.read_blocks(lbn, 1)


async def write_block(cache: "BufferCache", buf: Buffer) -> None:
    """Write a buffer to its own block."""
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

    Attributes
    ----------
    hits, misses, evictions, writes : int
        Counters.
    no_io : bool
        Set by non-blocking calls: any I/O raises :class:`WouldBlock` instead of starting.

    Raises
    ------
    ValueError
        For a capacity < 1 or a block size the device's sectors do not divide.
    TypeError
        For a policy that is not callable.
    """

    def __init__(self, device, block_size: int, capacity: int = 64, *,
                 replace: Callable[["BufferCache", list[Buffer]], Buffer] | None = None,
                 miss: Callable[["BufferCache", int], Awaitable[bytes]] | None = None,
                 write_back: Callable[["BufferCache", Buffer], Awaitable[None]] | None = None,
                 flush: Callable[["BufferCache", list[Buffer]], Awaitable[None]] | None = None):
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
            data = await self.miss(self, lbn)
            if len(data) != self.block_size:
                raise ValueError(f"miss policy returned {len(data)} bytes for block {lbn}, "
                                 f"not {self.block_size}")
        else:
            data = bytes(self.block_size)
        await self._make_room()
        buf = self._bufs.get(lbn)            # a read-ahead may have brought it in meanwhile
        if buf is None:
            buf = Buffer(lbn, bytearray(data), kind)
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
            self._bufs[lbn] = Buffer(lbn, bytearray(data), kind)
            self._bufs.move_to_end(lbn, last=False)      # read ahead: first to go if unused

    def room_without_io(self) -> int:
        """How many new buffers could be added now without any I/O."""
        free = self.capacity - len(self._bufs)
        clean = sum(1 for b in self._bufs.values() if b.evictable and not b.dirty)
        return free + clean

    async def _make_room(self) -> None:
        while len(self._bufs) >= self.capacity:
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
                del self._bufs[victim.lbn]
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
        del self._bufs[lbn]

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
