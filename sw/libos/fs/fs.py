"""The library OS's file system: FFS-like, with application-supplied policies.

Usage (inside a kernel task, or any coroutine driver)::

    dev = MemoryBlockDevice(4096)
    await mkfs(dev, block_size=1024, extra_size=32)
    fs = await FileSystem.mount(dev, cache_blocks=128, kernel=k, cpu=cpu)
    await fs.mkdir("/docs")
    await fs.create("/docs/index.html")
    await fs.write("/docs/index.html", page)          # appends; or pass an offset
    data = await fs.read("/docs/index.html")
    await fs.set_extra("/docs/index.html", checksum)   # application inode fields
    await fs.sync()

Every operation is async because a cache miss reads the disk. Operations are not re-entrant:
run one at a time per file system. The non-blocking variants queue their background parts one
after another, and a blocking call first waits for that queue to drain. See :mod:`.layout`
for the disk format, :mod:`.cache` for the policies, :mod:`.alloc` for the allocator.

Non-blocking calls
------------------
:meth:`FileSystem.read_nb` and :meth:`FileSystem.write_nb` do at once what they can do
without I/O (cached blocks, free cache buffers) and return a :class:`Progress` saying how
far they got (``done``, ``count`` bytes, the caller's ``value``). When not done, the rest runs
in a kernel task and ``callback(Completion(value, result, error))`` is called when it ends; a
call that completes at once does not call back. An error found at once (a missing file whose
directory is cached, a bad argument) is raised at once; one found in the background comes back
as ``Completion.error``. The copy cost of the immediate part is charged to the CPU at the file
system's next charging point.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from sim.cache import Region

from .alloc import FFSAllocator
from .cache import DATA, DIRECTORY, GROUP, INDIRECT, INODE, SUPER, Buffer, BufferCache
from .errors import (Busy, Corrupt, Exists, FileTooLarge, FsError, InvalidName, IsADirectory,
                     NameTooLong, NoSpace, NotADirectory, NotEmpty, NotFound, WouldBlock, WriteLocked)
from .layout import (DIR_CHUNK, FT_DIR, FT_REG, NAME_MAX, NDIRECT, ROOT_INO, S_IFDIR, S_IFMT,
                     S_IFREG, CylinderGroup, DirEntry, Inode, Superblock, bit_get, bit_set,
                     dirent_size, find_clear, inode_size_for, pack_dir_chunk_empty, pack_dirent,
                     parse_dir_chunk)

__all__ = ["FileSystem", "File", "Stat", "Progress", "Completion", "mkfs"]

_PTR = struct.Struct("<I")


@dataclass(frozen=True)
class Stat:
    """What :meth:`FileSystem.stat` reports."""

    ino: int
    mode: int
    size: int
    links: int
    mtime: int
    ctime: int
    nblocks: int

    @property
    def is_dir(self) -> bool:
        return self.mode & S_IFMT == S_IFDIR

    @property
    def is_file(self) -> bool:
        return self.mode & S_IFMT == S_IFREG


@dataclass(frozen=True)
class Progress:
    """How far a non-blocking call got at once.

    Attributes
    ----------
    done : bool
        The whole operation completed (no callback will follow).
    count : int
        Bytes read or written so far.
    value : Any
        The caller's value, as given.
    result : Any
        For a read, the bytes read so far; for a completed write, the byte count.
    """

    done: bool
    count: int
    value: Any
    result: Any = None


@dataclass(frozen=True)
class Completion:
    """The completion event of a non-blocking call: the caller's ``value`` comes back."""

    value: Any
    result: Any
    error: BaseException | None = None


# ---- mkfs --------------------------------------------------------------------------------
def _geometry(nblocks: int, block_size: int, extra_size: int, inodes: int | None,
              blocks_per_group: int | None) -> Superblock:
    isz = inode_size_for(extra_size)
    if isz > block_size:
        raise ValueError(f"extra_size {extra_size} makes {isz}-byte inodes, larger than a "
                         f"{block_size}-byte block")
    ipb = block_size // isz
    max_bits = (block_size - 32) * 8
    if blocks_per_group is None:
        blocks_per_group = min(8192, max_bits * 2 // 3)
    if isinstance(blocks_per_group, bool) or not isinstance(blocks_per_group, int) or blocks_per_group < 4:
        raise ValueError(f"blocks_per_group must be an int >= 4, not {blocks_per_group!r}")
    usable = nblocks - 1
    ng = max(1, -(-usable // blocks_per_group))
    if inodes is None:
        inodes = max(16 * ng, nblocks * block_size // 8192)
    if isinstance(inodes, bool) or not isinstance(inodes, int) or inodes < 2:
        raise ValueError(f"inodes must be an int >= 2, not {inodes!r}")
    while True:
        ipg = -(-inodes // ng)
        ipg = -(-ipg // ipb) * ipb
        itb = ipg // ipb
        if 32 + (ipg + 7) // 8 + (blocks_per_group + 7) // 8 > block_size:
            raise ValueError(f"{blocks_per_group} blocks and {ipg} inodes per group do not fit "
                             f"the group bitmaps in a {block_size}-byte block")
        last = usable - (ng - 1) * blocks_per_group
        if last >= itb + 2 or ng == 1:
            break
        ng -= 1                          # the last group is too small to be worth it: drop it
    count = min(nblocks, 1 + ng * blocks_per_group)
    if count - 1 - (ng - 1) * blocks_per_group < itb + 3:
        raise ValueError(f"a device of {nblocks} {block_size}-byte blocks is too small for "
                         f"{ipg} inodes per group")
    return Superblock(block_size, count, ng, blocks_per_group, ipg, isz, extra_size, itb)


async def mkfs(device, *, block_size: int = 4096, inodes: int | None = None,
               blocks_per_group: int | None = None, extra_size: int = 0,
               block_count: int | None = None, time: int = 0) -> Superblock:
    """Make an empty file system (a root directory only) on ``device``.

    Parameters
    ----------
    device : BlockDevice
        Its sector size must divide ``block_size``.
    block_size : int
        File-system block size, a power of two >= 512.
    inodes : int, optional
        Inodes wanted (default one per 8 KiB, at least 16 per group); rounded up to fill
        whole inode-table blocks in every group.
    blocks_per_group : int, optional
        Cylinder-group size in blocks (default 8192, or what fits the bitmaps in a block).
    extra_size : int
        Bytes of application fields in every inode.
    block_count : int, optional
        Use only this many fs blocks of the device.
    time : int
        Creation time stamp.

    Returns
    -------
    Superblock

    Raises
    ------
    ValueError
        For a bad block size, a device too small, or a geometry that does not fit.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 512 \
            or block_size & (block_size - 1):
        raise ValueError(f"block size must be a power of two >= 512, not {block_size!r}")
    if block_size % device.block_size:
        raise ValueError(f"block size {block_size} is not a multiple of the device's "
                         f"{device.block_size}-byte sectors")
    spb = block_size // device.block_size
    avail = device.block_count // spb
    if block_count is not None:
        if isinstance(block_count, bool) or not isinstance(block_count, int) or not 0 < block_count <= avail:
            raise ValueError(f"block_count must be an int in 1 .. {avail}, not {block_count!r}")
        avail = block_count
    sb = _geometry(avail, block_size, extra_size, inodes, blocks_per_group)
    sb.ctime = sb.mtime = time

    # Root directory: inode 1, its first block the first data block of group 0.
    root_block = sb.group_data_start(0)
    root = Inode(mode=S_IFDIR | 0o755, links=2, size=block_size, mtime=time, ctime=time,
                 nblocks=1, extra=b"")
    root.direct[0] = root_block
    dirblk = bytearray(_empty_dir_block(block_size))
    dirblk[:DIR_CHUNK] = _dot_chunk(ROOT_INO, ROOT_INO)

    zero_table = bytes(sb.itable_blocks * block_size)
    for g in range(sb.ngroups):
        cgbuf = CylinderGroup.format(sb, g)
        table = bytearray(zero_table)
        if g == 0:
            cg = CylinderGroup(cgbuf, sb)
            bit_set(cg.inode_bitmap, ROOT_INO, True)
            bit_set(cg.block_bitmap, root_block - sb.group_start(0), True)
            cg.adjust(-1, -1)
            blk, off = sb.inode_location(ROOT_INO)
            rel = (blk - sb.group_start(0) - 1) * block_size + off
            table[rel:rel + sb.inode_size] = root.pack(sb.inode_size, sb.extra_size)
        await device.write(sb.group_start(g) * spb, bytes(cgbuf) + bytes(table))
        sb.free_blocks += CylinderGroup(cgbuf, sb).free_blocks
        sb.free_inodes += CylinderGroup(cgbuf, sb).free_inodes
    await device.write(root_block * spb, bytes(dirblk))
    await device.write(0, sb.pack())
    return sb


def _empty_dir_block(block_size: int) -> bytes:
    return pack_dir_chunk_empty() * (block_size // DIR_CHUNK)


def _dot_chunk(ino: int, parent: int) -> bytes:
    dot = pack_dirent(ino, 12, b".", FT_DIR)
    dotdot = pack_dirent(parent, DIR_CHUNK - 12, b"..", FT_DIR)
    return (dot + dotdot).ljust(DIR_CHUNK, b"\0")


def _check_int(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


# ---- the file system ---------------------------------------------------------------------
class FileSystem:
    """A mounted file system; create with :meth:`mount` (see the module docstring).

    Attributes
    ----------
    sb : Superblock
        The geometry and summary counts.
    cache : BufferCache
        The buffer cache (the application's policies inside).
    allocator : Allocator
        The block/inode allocator.
    """

    def __init__(self, device, sb: Superblock, cache: BufferCache, allocator, *, cpu=None,
                 clock: Callable[[], int] | None = None, kernel=None):
        self.device = device
        self.sb = sb
        self.cache = cache
        self.allocator = allocator
        self.cpu = cpu
        self.kernel = kernel
        if clock is None:
            clock = (lambda: kernel.now) if kernel is not None else (lambda: 0)
        self.clock = clock
        self._cg_bufs: list[Buffer] = []
        self._pending_copy = 0
        self._nb_last = None                 # the last background task of a non-blocking call
        self._nb_tasks: set = set()          # background tasks not yet finished
        self.mounted = False

    @classmethod
    async def mount(cls, device, *, cache_blocks: int = 64, replace=None, miss=None,
                    write_back=None, flush=None, allocator=None, cpu=None,
                    clock: Callable[[], int] | None = None, kernel=None,
                    store=None) -> "FileSystem":
        """Mount the file system on ``device``.

        Parameters
        ----------
        device : BlockDevice
        cache_blocks : int
            Buffer-cache capacity in blocks; must exceed the number of cylinder groups (their
            blocks stay pinned) by at least 8.
        replace, miss, write_back, flush : callable, optional
            Buffer-cache policies (see :mod:`.cache`).
        allocator : Allocator, optional
            Block and inode placement (default :class:`~.alloc.FFSAllocator`).
        cpu : sim.cpu.CPU, optional
            Charged for copies into and out of the cache.
        clock : callable, optional
            Time stamps (default the kernel's time, or 0).
        kernel : sim.kernel.Kernel, optional
            Needed for the non-blocking calls' background work.
        store : PhysicalStore, optional
            Keep the cache's blocks in these physical pages (:mod:`.physical`; the device
            must DMA).

        Raises
        ------
        Corrupt
            If the superblock or a cylinder-group block is malformed.
        ValueError, TypeError
            For bad arguments.
        """
        if allocator is None:
            allocator = FFSAllocator()
        for meth in ("alloc_inode", "alloc_block"):
            if not callable(getattr(allocator, meth, None)):
                raise TypeError(f"allocator {allocator!r} has no {meth}() method")
        raw = await device.read(0, max(1, 512 // device.block_size))
        try:
            sb0 = Superblock.unpack(raw)
            spb = sb0.block_size // device.block_size
            if sb0.block_size % device.block_size:
                raise ValueError(f"block size {sb0.block_size} is not a multiple of the "
                                 f"device's {device.block_size}-byte sectors")
            sb = Superblock.unpack(await device.read(0, spb))
            if sb.block_count * spb > device.block_count:
                raise ValueError(f"file system of {sb.block_count} blocks is larger than the "
                                 f"device ({device.block_count} sectors)")
        except ValueError as exc:
            raise Corrupt(f"cannot mount {device!r}: {exc}") from None
        if isinstance(cache_blocks, bool) or not isinstance(cache_blocks, int) \
                or cache_blocks < sb.ngroups + 8:
            raise ValueError(f"cache_blocks must be an int >= {sb.ngroups + 8} for "
                             f"{sb.ngroups} groups, not {cache_blocks!r}")
        cache = BufferCache(device, sb.block_size, cache_blocks, replace=replace, miss=miss,
                            write_back=write_back, flush=flush, store=store)
        fs = cls(device, sb, cache, allocator, cpu=cpu, clock=clock, kernel=kernel)
        fs.mounted = True
        for g in range(sb.ngroups):
            buf = await cache.get(sb.group_start(g), GROUP)
            cache.pin(buf)
            magic, idx, nb, _, _ = CylinderGroup(buf.data, sb).header()
            if magic != b"CGRP" or idx != g or nb != sb.group_blocks(g):
                raise Corrupt(f"cylinder group {g} (block {sb.group_start(g)}) is malformed: "
                              f"magic {magic!r}, index {idx}, {nb} blocks")
            fs._cg_bufs.append(buf)
        fs.mounted = True
        return fs

    # ---- allocation queries (for allocators) -----------------------------------------------
    def _cg(self, g: int) -> CylinderGroup:
        if not self.mounted:
            raise ValueError("the file system is not mounted")
        return CylinderGroup(self._cg_bufs[g].data, self.sb)

    def group_free_blocks(self, g: int) -> int:
        """Free blocks in group ``g``."""
        return self._cg(g).free_blocks

    def group_free_inodes(self, g: int) -> int:
        """Free inodes in group ``g``."""
        return self._cg(g).free_inodes

    def block_is_free(self, bn: int) -> bool:
        """Whether ``bn`` is a free data block."""
        if not self.sb.is_data_block(bn):
            return False
        g = self.sb.group_of_block(bn)
        return not bit_get(self._cg(g).block_bitmap, bn - self.sb.group_start(g))

    def inode_is_free(self, ino: int) -> bool:
        """Whether inode ``ino`` is free."""
        if not 0 < ino < self.sb.inode_count:
            return False
        g, i = divmod(ino, self.sb.inodes_per_group)
        return not bit_get(self._cg(g).inode_bitmap, i)

    def find_free_block(self, g: int, start: int | None = None) -> int:
        """The first free data block of group ``g`` at or after ``start`` (-1 if none)."""
        sb = self.sb
        base = sb.group_start(g)
        first = 1 + sb.itable_blocks
        if start is not None and base <= start < base + sb.group_blocks(g):
            first = max(first, start - base)
        i = find_clear(self._cg(g).block_bitmap, first, sb.group_blocks(g))
        return -1 if i < 0 else base + i

    def find_free_inode(self, g: int) -> int:
        """A free inode of group ``g`` (-1 if none)."""
        i = find_clear(self._cg(g).inode_bitmap, 0, self.sb.inodes_per_group)
        return -1 if i < 0 else g * self.sb.inodes_per_group + i

    @property
    def free_blocks(self) -> int:
        """Free data blocks (after unmount: as last synced)."""
        if not self.mounted:
            return self.sb.free_blocks
        return sum(self.group_free_blocks(g) for g in range(self.sb.ngroups))

    @property
    def free_inodes(self) -> int:
        """Free inodes (after unmount: as last synced)."""
        if not self.mounted:
            return self.sb.free_inodes
        return sum(self.group_free_inodes(g) for g in range(self.sb.ngroups))

    # ---- marking ----------------------------------------------------------------------------
    def _mark_block(self, bn: int, used: bool) -> None:
        g = self.sb.group_of_block(bn)
        cg = self._cg(g)
        bit_set(cg.block_bitmap, bn - self.sb.group_start(g), used)
        cg.adjust(dblocks=-1 if used else 1)
        self.cache.mark_dirty(self._cg_bufs[g])

    def _mark_inode(self, ino: int, used: bool) -> None:
        g, i = divmod(ino, self.sb.inodes_per_group)
        cg = self._cg(g)
        bit_set(cg.inode_bitmap, i, used)
        cg.adjust(dinodes=-1 if used else 1)
        self.cache.mark_dirty(self._cg_bufs[g])

    def _alloc_block(self, ino: int, index: int, hint: int) -> int:
        bn = self.allocator.alloc_block(self, ino, index, hint)
        if isinstance(bn, bool) or not isinstance(bn, int) or not self.block_is_free(bn):
            raise ValueError(f"allocator {self.allocator!r} returned {bn!r} for block {index} of "
                             f"inode {ino}, which is not a free data block")
        self._mark_block(bn, True)
        return bn

    def _alloc_inode(self, parent: int, is_dir: bool) -> int:
        ino = self.allocator.alloc_inode(self, parent, is_dir)
        if isinstance(ino, bool) or not isinstance(ino, int) or not self.inode_is_free(ino):
            raise ValueError(f"allocator {self.allocator!r} returned inode {ino!r}, which is not free")
        self._mark_inode(ino, True)
        return ino

    def _free_block(self, bn: int) -> None:
        self.cache.discard(bn)
        self._mark_block(bn, False)

    # ---- inodes -----------------------------------------------------------------------------
    def _check_ino(self, ino: int) -> None:
        if isinstance(ino, bool) or not isinstance(ino, int) or not 0 < ino < self.sb.inode_count:
            raise NotFound(f"inode {ino!r} does not exist (1 .. {self.sb.inode_count - 1})")

    async def _iget(self, ino: int) -> Inode:
        if not self.mounted:
            raise ValueError("the file system is not mounted")
        self._check_ino(ino)
        blk, off = self.sb.inode_location(ino)
        buf = await self.cache.get(blk, INODE)
        return Inode.unpack(memoryview(buf.data)[off:off + self.sb.inode_size], self.sb.extra_size)

    async def _iput(self, ino: int, inode: Inode) -> None:
        blk, off = self.sb.inode_location(ino)
        buf = await self.cache.get(blk, INODE)
        buf.data[off:off + self.sb.inode_size] = inode.pack(self.sb.inode_size, self.sb.extra_size)
        self.cache.mark_dirty(buf)

    async def _pin_inode_block(self, ino: int) -> Buffer:
        buf = await self.cache.get(self.sb.inode_location(ino)[0], INODE)
        self.cache.pin(buf)
        return buf

    # ---- block mapping ------------------------------------------------------------------------
    def _split_index(self, index: int) -> tuple[int, ...]:
        """``(i,)`` direct, ``(-1, j)`` single, ``(-2, j, k)`` double."""
        p = self.sb.ptrs_per_block
        if index < NDIRECT:
            return (index,)
        index -= NDIRECT
        if index < p:
            return (-1, index)
        index -= p
        if index < p * p:
            return (-2, index // p, index % p)
        raise FileTooLarge(f"file block {index + NDIRECT + p} is beyond the largest file "
                           f"({self.sb.max_file_blocks} blocks)")

    async def _read_ptr(self, bn: int, i: int) -> int:
        buf = await self.cache.get(bn, INDIRECT)
        return _PTR.unpack_from(buf.data, 4 * i)[0]

    async def _bmap(self, inode: Inode, index: int) -> int:
        """The block holding file block ``index`` (0 for a hole)."""
        path = self._split_index(index)
        if len(path) == 1:
            return inode.direct[path[0]]
        if path[0] == -1:
            return await self._read_ptr(inode.single, path[1]) if inode.single else 0
        if not inode.double:
            return 0
        mid = await self._read_ptr(inode.double, path[1])
        return await self._read_ptr(mid, path[2]) if mid else 0

    def _bmap_cached(self, inode: Inode, index: int) -> tuple[int, int] | None:
        """Without I/O: ``(block or 0, new blocks an allocation would need)``, None if a
        needed indirect block is not cached."""
        path = self._split_index(index)
        if len(path) == 1:
            bn = inode.direct[path[0]]
            return bn, 0 if bn else 1

        def ptr(bn, i):
            buf = self.cache.peek(bn)
            return None if buf is None else _PTR.unpack_from(buf.data, 4 * i)[0]
        if path[0] == -1:
            if not inode.single:
                return 0, 2
            bn = ptr(inode.single, path[1])
            return None if bn is None else (bn, 0 if bn else 1)
        if not inode.double:
            return 0, 3
        mid = ptr(inode.double, path[1])
        if mid is None:
            return None
        if not mid:
            return 0, 2
        bn = ptr(mid, path[2])
        return None if bn is None else (bn, 0 if bn else 1)

    async def _new_block(self, ino: int, index: int, hint: int, kind: str) -> int:
        bn = self._alloc_block(ino, index, hint)
        try:
            await self.cache.get(bn, kind, fill=False)      # zeroed, dirty
        except BaseException:
            self._mark_block(bn, False)
            raise
        return bn

    async def _set_ptr(self, bn: int, i: int, value: int) -> None:
        buf = await self.cache.get(bn, INDIRECT)
        _PTR.pack_into(buf.data, 4 * i, value)
        self.cache.mark_dirty(buf)

    async def _bmap_alloc(self, ino: int, inode: Inode, index: int, hint: int, kind: str = DATA) -> int:
        """The block of file block ``index``, allocating it (and indirect blocks) if a hole.

        The new data block's buffer is zeroed. ``inode`` is updated in memory; the caller
        writes it back.
        """
        path = self._split_index(index)
        if len(path) == 1:
            if not inode.direct[path[0]]:
                inode.direct[path[0]] = await self._new_block(ino, index, hint, kind)
                inode.nblocks += 1
            return inode.direct[path[0]]
        if path[0] == -1:
            if not inode.single:
                inode.single = await self._new_block(ino, index, hint, INDIRECT)
                inode.nblocks += 1
            parent, i = inode.single, path[1]
        else:
            if not inode.double:
                inode.double = await self._new_block(ino, index, hint, INDIRECT)
                inode.nblocks += 1
            mid = await self._read_ptr(inode.double, path[1])
            if not mid:
                mid = await self._new_block(ino, index, hint, INDIRECT)
                inode.nblocks += 1
                await self._set_ptr(inode.double, path[1], mid)
            parent, i = mid, path[2]
        bn = await self._read_ptr(parent, i)
        if not bn:
            bn = await self._new_block(ino, index, hint, kind)
            inode.nblocks += 1
            await self._set_ptr(parent, i, bn)
        return bn

    async def _blocks_from(self, inode: Inode, first: int) -> list[int]:
        """Every block (data and indirect) that truncating to ``first`` blocks would free."""
        out = [b for b in inode.direct[first:] if b] if first < NDIRECT else []
        p = self.sb.ptrs_per_block
        if inode.single:
            start = max(0, first - NDIRECT)
            if start < p:
                buf = await self.cache.get(inode.single, INDIRECT)
                out += [b for b in struct.unpack_from(f"<{p}I", buf.data)[start:] if b]
                if start == 0:
                    out.append(inode.single)
        if inode.double:
            start = max(0, first - NDIRECT - p)
            buf = await self.cache.get(inode.double, INDIRECT)
            mids = struct.unpack_from(f"<{p}I", buf.data)
            for j in range(start // p, p):
                if mids[j]:
                    inner_start = start - j * p if j == start // p else 0
                    ibuf = await self.cache.get(mids[j], INDIRECT)
                    out += [b for b in struct.unpack_from(f"<{p}I", ibuf.data)[inner_start:] if b]
                    if inner_start == 0:
                        out.append(mids[j])
            if start == 0:
                out.append(inode.double)
        return out

    async def _check_not_busy(self, blocks: list[int], what: str) -> None:
        for bn in blocks:
            buf = self.cache.peek(bn)
            if buf is not None and not buf.evictable:
                raise Busy(f"{what}: block {bn} is pinned or write-locked in the cache")

    async def _truncate_blocks(self, inode: Inode, first: int) -> None:
        """Free every block of ``inode`` from file block ``first`` on (in memory + bitmaps)."""
        p = self.sb.ptrs_per_block
        for i in range(first, NDIRECT):
            if inode.direct[i]:
                self._free_block(inode.direct[i])
                inode.direct[i] = 0
                inode.nblocks -= 1
        if inode.single:
            start = max(0, first - NDIRECT)
            if start < p:
                inode.nblocks -= await self._free_ptrs(inode.single, start)
                if start == 0:
                    self._free_block(inode.single)
                    inode.single = 0
                    inode.nblocks -= 1
        if inode.double:
            start = max(0, first - NDIRECT - p)
            for j in range(start // p, p):
                mid = await self._read_ptr(inode.double, j)
                if mid:
                    inner_start = start - j * p if j == start // p else 0
                    inode.nblocks -= await self._free_ptrs(mid, inner_start)
                    if inner_start == 0:
                        await self._set_ptr(inode.double, j, 0)
                        self._free_block(mid)
                        inode.nblocks -= 1
            if start == 0:
                self._free_block(inode.double)
                inode.double = 0
                inode.nblocks -= 1

    async def _free_ptrs(self, bn: int, start: int) -> int:
        buf = await self.cache.get(bn, INDIRECT)
        p = self.sb.ptrs_per_block
        ptrs = struct.unpack_from(f"<{p}I", buf.data)
        freed = 0
        for i in range(start, p):
            if ptrs[i]:
                _PTR.pack_into(buf.data, 4 * i, 0)
                self._free_block(ptrs[i])
                freed += 1
        if freed:
            self.cache.mark_dirty(buf)
        return freed

    # ---- paths ------------------------------------------------------------------------------
    @staticmethod
    def _components(path: str) -> list[bytes]:
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {path!r}")
        out = []
        for comp in path.split("/"):
            if not comp:
                continue
            raw = comp.encode("utf-8")
            if b"\0" in raw:
                raise InvalidName(f"path {path!r} contains a NUL byte")
            if len(raw) > NAME_MAX:
                raise NameTooLong(f"{path!r}: component {comp[:20]!r}... is {len(raw)} bytes, "
                                  f"longer than {NAME_MAX}")
            out.append(raw)
        return out

    async def _namei(self, path: str) -> int:
        ino = ROOT_INO
        for comp in self._components(path):
            inode = await self._iget(ino)
            if not inode.is_dir:
                raise NotADirectory(f"{path!r}: a component before {comp.decode()!r} is not a directory")
            found = await self._dir_lookup(ino, inode, comp)
            if found is None:
                raise NotFound(f"{path!r}: {comp.decode()!r} not found")
            ino = found[0]
        return ino

    async def _parent(self, path: str) -> tuple[int, Inode, bytes]:
        comps = self._components(path)
        if not comps:
            raise Exists(f"{path!r} is the root directory")
        pino = await self._namei("/" + "/".join(c.decode() for c in comps[:-1]))
        pinode = await self._iget(pino)
        if not pinode.is_dir:
            raise NotADirectory(f"{path!r}: the parent is not a directory")
        return pino, pinode, comps[-1]

    async def _resolve(self, target: str | int) -> int:
        if isinstance(target, str):
            return await self._namei(target)
        self._check_ino(target)
        if not self.inode_is_free(target):
            return target
        raise NotFound(f"inode {target} is not allocated")

    # ---- directories ------------------------------------------------------------------------
    async def _dir_chunks(self, dino: int, dinode: Inode):
        """Yield ``(block, chunk offset in block, parsed entries)`` of a directory."""
        bs = self.sb.block_size
        for idx in range(dinode.size // bs):
            bn = await self._bmap(dinode, idx)
            if not bn:
                raise Corrupt(f"directory inode {dino} has a hole at block {idx}")
            buf = await self.cache.get(bn, DIRECTORY)
            for c in range(0, bs, DIR_CHUNK):
                try:
                    ents = parse_dir_chunk(memoryview(buf.data)[c:c + DIR_CHUNK])
                except ValueError as exc:
                    raise Corrupt(f"directory inode {dino}, block {bn}, chunk {c}: {exc}") from None
                yield bn, c, ents

    async def _dir_lookup(self, dino: int, dinode: Inode, name: bytes) -> tuple[int, int] | None:
        async for _bn, _c, ents in self._dir_chunks(dino, dinode):
            for _off, ino, _rl, ftype, nm in ents:
                if ino and nm == name:
                    return ino, ftype
        return None

    async def _dir_entries(self, dino: int, dinode: Inode) -> list[DirEntry]:
        out = []
        async for _bn, _c, ents in self._dir_chunks(dino, dinode):
            out += [DirEntry(nm.decode("utf-8", "replace"), ino, ft) for _o, ino, _r, ft, nm in ents if ino]
        return out

    async def _dir_add(self, dino: int, dinode: Inode, name: bytes, ino: int, ftype: int) -> None:
        need = dirent_size(len(name))
        async for bn, c, ents in self._dir_chunks(dino, dinode):
            for off, eino, reclen, _ft, nm in ents:
                own = dirent_size(len(nm)) if eino else 0
                if reclen - own >= need:
                    buf = await self.cache.get(bn, DIRECTORY)   # cached: no await really blocks
                    base = c + off
                    if eino:
                        struct.pack_into("<H", buf.data, base + 4, own)
                        base += own
                    buf.data[base:base + need] = pack_dirent(ino, reclen - own, name, ftype)
                    self.cache.mark_dirty(buf)
                    return
        # No room: grow the directory by a block.
        bs = self.sb.block_size
        idx = dinode.size // bs
        hint = await self._bmap(dinode, idx - 1) if idx else 0
        bn = await self._bmap_alloc(dino, dinode, idx, hint, DIRECTORY)
        buf = await self.cache.get(bn, DIRECTORY)
        buf.data[:] = _empty_dir_block(bs)
        buf.data[:need] = pack_dirent(ino, DIR_CHUNK, name, ftype)
        self.cache.mark_dirty(buf)
        dinode.size += bs

    async def _dir_remove(self, dino: int, dinode: Inode, name: bytes) -> None:
        async for bn, c, ents in self._dir_chunks(dino, dinode):
            prev = None
            for off, eino, reclen, _ft, nm in ents:
                if eino and nm == name:
                    buf = await self.cache.get(bn, DIRECTORY)
                    if prev is not None:        # merge into the previous entry of the chunk
                        struct.pack_into("<H", buf.data, c + prev[0] + 4, prev[2] + reclen)
                    else:
                        struct.pack_into("<I", buf.data, c + off, 0)
                    self.cache.mark_dirty(buf)
                    return
                prev = (off, eino, reclen)
        raise NotFound(f"directory inode {dino} has no entry {name.decode()!r}")

    async def _dir_set_dotdot(self, dino: int, dinode: Inode, parent: int) -> None:
        bn = await self._bmap(dinode, 0)
        buf = await self.cache.get(bn, DIRECTORY)
        struct.pack_into("<I", buf.data, 12, parent)
        self.cache.mark_dirty(buf)

    # ---- CPU ---------------------------------------------------------------------------------
    async def _charge_copy(self, n: int) -> None:
        if self.cpu is None:
            return
        if self.cache.no_io:
            self._pending_copy += n
            return
        n += self._pending_copy
        self._pending_copy = 0
        if n:
            await self.cpu.copy(n)

    # ---- public operations ------------------------------------------------------------------
    async def lookup(self, path: str) -> int:
        """The inode number ``path`` names.

        Raises
        ------
        NotFound, NotADirectory, NameTooLong
        """
        await self._quiesce()
        return await self._namei(path)

    async def exists(self, path: str) -> bool:
        """Whether ``path`` names something."""
        await self._quiesce()
        try:
            await self._namei(path)
        except (NotFound, NotADirectory):
            return False
        return True

    async def stat(self, target: str | int) -> Stat:
        """Type, size, links, times and blocks of a path or inode number."""
        await self._quiesce()
        ino = await self._resolve(target)
        i = await self._iget(ino)
        return Stat(ino, i.mode, i.size, i.links, i.mtime, i.ctime, i.nblocks)

    async def _make(self, path: str, mode: int, is_dir: bool, extra: bytes | None) -> int:
        pino, pinode, name = await self._parent(path)
        if await self._dir_lookup(pino, pinode, name) is not None:
            raise Exists(f"{path!r} already exists")
        if extra is not None and len(extra) > self.sb.extra_size:
            raise ValueError(f"extra fields of {len(extra)} bytes do not fit the "
                             f"{self.sb.extra_size} bytes of an inode")
        now = self.clock()
        pin = await self._pin_inode_block(pino)
        ino = None
        try:
            ino = self._alloc_inode(pino, is_dir)
            inode = Inode(mode=(S_IFDIR if is_dir else S_IFREG) | (mode & 0o7777),
                          links=2 if is_dir else 1, mtime=now, ctime=now, extra=bytes(extra or b""))
            if is_dir:
                bn = await self._bmap_alloc(ino, inode, 0, 0, DIRECTORY)
                buf = await self.cache.get(bn, DIRECTORY)
                buf.data[:] = _empty_dir_block(self.sb.block_size)
                buf.data[:DIR_CHUNK] = _dot_chunk(ino, pino)
                self.cache.mark_dirty(buf)
                inode.size = self.sb.block_size
            await self._iput(ino, inode)
            await self._dir_add(pino, pinode, name, ino, FT_DIR if is_dir else FT_REG)
        except BaseException:
            if ino is not None:                 # undo: nothing names the new inode
                inode.size = 0
                await self._truncate_blocks(inode, 0)
                await self._iput(ino, Inode())
                self._mark_inode(ino, False)
            await self._iput(pino, pinode)      # the parent may have grown before failing
            raise
        finally:
            self.cache.unpin(pin)
        if is_dir:
            pinode.links += 1
        pinode.mtime = now
        await self._iput(pino, pinode)
        return ino

    async def create(self, path: str, mode: int = 0o644, *, extra: bytes | None = None,
                     exist_ok: bool = False) -> int:
        """Create an empty regular file; returns its inode number.

        Raises
        ------
        Exists
            If ``path`` exists (unless ``exist_ok`` and it is a file).
        NoSpace
            If no inode (or no block to grow the directory) is free.
        NotFound, NotADirectory, NameTooLong
        """
        await self._quiesce()
        try:
            return await self._make(path, mode, False, extra)
        except Exists:
            if exist_ok:
                ino = await self._namei(path)
                if not (await self._iget(ino)).is_dir:
                    return ino
            raise

    async def mkdir(self, path: str, mode: int = 0o755) -> int:
        """Create a directory; returns its inode number (raises like :meth:`create`)."""
        await self._quiesce()
        return await self._make(path, mode, True, None)

    async def readdir(self, path: str | int = "/") -> list[DirEntry]:
        """The entries of a directory, "." and ".." left out, in on-disk order."""
        await self._quiesce()
        ino = await self._resolve(path)
        inode = await self._iget(ino)
        if not inode.is_dir:
            raise NotADirectory(f"{path!r} is not a directory")
        return [e for e in await self._dir_entries(ino, inode) if e.name not in (".", "..")]

    async def unlink(self, path: str) -> None:
        """Remove a file's name; its blocks and inode are freed with its last link.

        Raises
        ------
        IsADirectory
            For a directory (use :meth:`rmdir`).
        Busy
            If the file's blocks are pinned or write-locked in the cache.
        """
        await self._quiesce()
        pino, pinode, name = await self._parent(path)
        found = await self._dir_lookup(pino, pinode, name)
        if found is None:
            raise NotFound(f"{path!r} not found")
        ino = found[0]
        inode = await self._iget(ino)
        if inode.is_dir:
            raise IsADirectory(f"{path!r} is a directory")
        if inode.links <= 1:
            await self._check_not_busy(await self._blocks_from(inode, 0), f"unlink {path!r}")
        await self._dir_remove(pino, pinode, name)
        pinode.mtime = self.clock()
        await self._iput(pino, pinode)
        await self._drop_link(ino)

    async def _drop_link(self, ino: int) -> None:
        inode = await self._iget(ino)
        inode.links -= 1
        if inode.links > 0:
            inode.ctime = self.clock()
            await self._iput(ino, inode)
            return
        await self._truncate_blocks(inode, 0)
        await self._iput(ino, Inode())
        self._mark_inode(ino, False)

    async def rmdir(self, path: str) -> None:
        """Remove an empty directory.

        Raises
        ------
        NotEmpty, NotADirectory, Busy (the root)
        """
        await self._quiesce()
        comps = self._components(path)
        if not comps:
            raise Busy("cannot remove the root directory")
        if comps[-1] in (b".", b".."):
            raise ValueError(f"rmdir {path!r}: cannot remove '.' or '..'")
        pino, pinode, name = await self._parent(path)
        found = await self._dir_lookup(pino, pinode, name)
        if found is None:
            raise NotFound(f"{path!r} not found")
        ino = found[0]
        inode = await self._iget(ino)
        if not inode.is_dir:
            raise NotADirectory(f"{path!r} is not a directory")
        names = [e.name for e in await self._dir_entries(ino, inode) if e.name not in (".", "..")]
        if names:
            raise NotEmpty(f"{path!r} is not empty: {names[:5]}")
        await self._dir_remove(pino, pinode, name)
        pinode.links -= 1
        pinode.mtime = self.clock()
        await self._iput(pino, pinode)
        await self._truncate_blocks(inode, 0)
        await self._iput(ino, Inode())
        self._mark_inode(ino, False)

    async def read(self, target: str | int, offset: int = 0, size: int | None = None, *,
                   dst: Region | None = None) -> bytes:
        """Up to ``size`` bytes (default: to the end) from ``offset`` of a file.

        ``dst`` names the caller's buffer (a :class:`sim.cache.Region` of the CPU's memory):
        the copy out of each cached block then goes through the data cache and the write
        buffer from the block's place in the buffer cache's memory (:meth:`_buffer_address`)
        to the buffer, so a source that is not in the data cache pays its misses (a large
        file, VALIDATION.md U5). Without it the copy is priced by the profile's rows.

        Raises
        ------
        IsADirectory, NotFound
        ValueError
            For a negative offset or size.
        """
        await self._quiesce()
        out = bytearray()
        await self._read(target, offset, size, out, dst)
        return bytes(out)

    def _buffer_address(self, bn: int) -> int:
        """Where block ``bn``'s data lives in the CPU's memory: the buffer cache's memory is
        one region of ``cache_blocks`` blocks, block ``bn`` in slot ``bn mod cache_blocks``
        (a fixed, deterministic placement)."""
        bs = self.sb.block_size
        n = self.cache.capacity
        region = self.cpu.region(f"fs:{id(self):x}:bufcache", n * bs, align=bs)
        return region.at((bn % n) * bs)

    async def _read(self, target, offset, size, out: bytearray,
                    dst: Region | None = None) -> None:
        _check_int("offset", offset)
        if size is not None:
            _check_int("size", size)
        ino = await self._resolve(target)
        inode = await self._iget(ino)
        if inode.is_dir:
            raise IsADirectory(f"{target!r} is a directory")
        end = inode.size if size is None else min(inode.size, offset + size)
        bs = self.sb.block_size
        pos = offset
        start = len(out)
        addressed = (dst is not None and self.cpu is not None and self.cpu.memory is not None
                     and not self.cache.no_io)
        pieces: list[tuple[int, int, int]] = []          # (source address, length, at)
        try:
            while pos < end:
                idx, boff = divmod(pos, bs)
                n = min(bs - boff, end - pos)
                bn = await self._bmap(inode, idx)
                if bn:
                    buf = await self.cache.get(bn, DATA)
                    if addressed:
                        pieces.append((self._buffer_address(bn) + boff, n, len(out) - start))
                    out += buf.data[boff:boff + n]
                else:
                    out += bytes(n)
                pos += n
        finally:
            if addressed:
                for src, n, at in pieces:
                    await self.cpu.copy(n, src=src, dst=dst.at(at % dst.size))
            else:
                await self._charge_copy(len(out) - start)

    async def write(self, target: str | int, data: bytes, offset: int | None = None) -> int:
        """Write ``data`` at ``offset`` (default: append); returns the bytes written.

        Writing past the end leaves a hole (reads as zeros, takes no blocks).

        Raises
        ------
        NoSpace
            When the disk fills; ``exc.written`` bytes were written and are kept, nothing
            else changes.
        WriteLocked
            If a block to modify is write-locked in the cache (nothing is written).
        FileTooLarge, IsADirectory, NotFound
        """
        await self._quiesce()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if offset is not None:
            _check_int("offset", offset)
        ino = await self._resolve(target)
        return await self._write(ino, memoryview(data).cast("B"), offset, str(target))

    async def _write(self, ino: int, data: memoryview, offset: int | None, what: str) -> int:
        inode = await self._iget(ino)
        if inode.is_dir:
            raise IsADirectory(f"{what} is a directory")
        if offset is None:
            offset = inode.size
        bs = self.sb.block_size
        end = offset + len(data)
        if len(data) and (end - 1) // bs >= self.sb.max_file_blocks:
            raise FileTooLarge(f"{what}: writing to byte {end} needs more than "
                               f"{self.sb.max_file_blocks} blocks")
        if any(b.write_locked for b in self.cache.buffers()):
            for idx in range(offset // bs, -(-end // bs)):
                bn = await self._bmap(inode, idx)
                buf = self.cache.peek(bn) if bn else None
                if buf is not None and buf.write_locked:
                    raise WriteLocked(f"{what}: block {bn} (file block {idx}) is write-locked")
        pin = await self._pin_inode_block(ino)
        written = 0
        pos = offset
        hint = 0
        try:
            if pos // bs:
                hint = await self._bmap(inode, pos // bs - 1)
            while pos < end:
                idx, boff = divmod(pos, bs)
                n = min(bs - boff, end - pos)
                whole = n == bs
                if self.cache.no_io:
                    m = self._bmap_cached(inode, idx)
                    # Allocating needs free slots (evicting could drop the indirect blocks
                    # the step is about to update); overwriting a whole uncached block needs
                    # one buffer, which a clean eviction may provide.
                    free_slots = self.cache.capacity - len(self.cache)
                    if m is None or (m[0] and not whole and m[0] not in self.cache) \
                            or (not m[0] and m[1] > free_slots) \
                            or (m[0] and m[0] not in self.cache and self.cache.room_without_io() < 1):
                        raise WouldBlock(f"{what}: file block {idx} needs I/O", written)
                bn = await self._bmap(inode, idx)
                if bn:
                    buf = await self.cache.get(bn, DATA, fill=not whole)
                else:
                    bn = await self._bmap_alloc(ino, inode, idx, hint)
                    buf = await self.cache.get(bn, DATA)
                buf.data[boff:boff + n] = data[written:written + n]
                self.cache.mark_dirty(buf)
                pos += n
                written += n
                hint = bn
                if pos > inode.size:
                    inode.size = pos
        except NoSpace as exc:
            # Give back blocks allocated past the new end (an indirect block with no data).
            await self._truncate_blocks(inode, -(-inode.size // bs))
            raise NoSpace(f"{what}: disk full after {written} of {len(data)} bytes ({exc})",
                          written) from None
        except WouldBlock as exc:
            exc.written = written
            raise
        finally:
            inode.mtime = self.clock()
            await self._iput(ino, inode)
            self.cache.unpin(pin)
            await self._charge_copy(written)
        return written

    async def truncate(self, target: str | int, size: int) -> None:
        """Set a file's size: shrinking frees blocks, growing leaves a hole.

        Raises
        ------
        Busy, WriteLocked
            If blocks to free are pinned/write-locked, or the new last block is write-locked.
        """
        await self._quiesce()
        _check_int("size", size)
        ino = await self._resolve(target)
        inode = await self._iget(ino)
        if inode.is_dir:
            raise IsADirectory(f"{target!r} is a directory")
        bs = self.sb.block_size
        if size // bs >= self.sb.max_file_blocks:
            raise FileTooLarge(f"{target!r}: size {size} is beyond the largest file")
        if size < inode.size:
            first = -(-size // bs)
            await self._check_not_busy(await self._blocks_from(inode, first), f"truncate {target!r}")
            if size % bs:                    # zero the tail of the new last block
                bn = await self._bmap(inode, size // bs)
                if bn:
                    buf = await self.cache.get(bn, DATA)
                    if buf.write_locked:
                        raise WriteLocked(f"truncate {target!r}: block {bn} is write-locked")
                    buf.data[size % bs:] = bytes(bs - size % bs)
                    self.cache.mark_dirty(buf)
            await self._truncate_blocks(inode, first)
        inode.size = size
        inode.mtime = self.clock()
        await self._iput(ino, inode)

    async def get_extra(self, target: str | int) -> bytes:
        """The application's extra inode fields (``extra_size`` bytes)."""
        await self._quiesce()
        ino = await self._resolve(target)
        return (await self._iget(ino)).extra

    async def set_extra(self, target: str | int, data: bytes, offset: int = 0) -> None:
        """Write ``data`` into the extra inode fields at ``offset``.

        Raises
        ------
        ValueError
            If it does not fit in ``extra_size`` bytes.
        """
        await self._quiesce()
        _check_int("offset", offset)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"extra data must be bytes-like, not {type(data).__name__}")
        if offset + len(data) > self.sb.extra_size:
            raise ValueError(f"{len(data)} bytes at offset {offset} do not fit the "
                             f"{self.sb.extra_size}-byte extra inode fields")
        ino = await self._resolve(target)
        inode = await self._iget(ino)
        extra = bytearray(inode.extra)
        extra[offset:offset + len(data)] = data
        inode.extra = bytes(extra)
        await self._iput(ino, inode)

    async def file_blocks(self, target: str | int) -> list[int]:
        """The data block of each file block (0 for holes), in file order."""
        await self._quiesce()
        ino = await self._resolve(target)
        inode = await self._iget(ino)
        n = -(-inode.size // self.sb.block_size)
        return [await self._bmap(inode, i) for i in range(n)]

    async def pin(self, target: str | int, offset: int = 0, size: int | None = None, *,
                  write_lock: bool = False) -> list[Buffer]:
        """Pin (and optionally write-lock) the cache buffers holding a file range.

        The buffers' ``data`` may be handed out (e.g. as a TCP retransmission pool) until
        :meth:`unpin`. Holes are skipped.

        Raises
        ------
        CacheFull
            If the range does not fit in the cache (nothing stays pinned).
        """
        await self._quiesce()
        _check_int("offset", offset)
        ino = await self._resolve(target)
        inode = await self._iget(ino)
        bs = self.sb.block_size
        end = inode.size if size is None else min(inode.size, offset + _check_int("size", size))
        out: list[Buffer] = []
        try:
            for idx in range(offset // bs, -(-end // bs)):
                bn = await self._bmap(inode, idx)
                if bn:
                    buf = await self.cache.get(bn, DATA)
                    self.cache.pin(buf)
                    if write_lock:
                        self.cache.write_lock(buf)
                    out.append(buf)
        except BaseException:
            self.unpin(out, write_lock=write_lock)
            raise
        return out

    def unpin(self, buffers: list[Buffer], *, write_lock: bool = False) -> None:
        """Undo :meth:`pin` (pass the same ``write_lock``)."""
        for buf in buffers:
            self.cache.unpin(buf)
            if write_lock:
                self.cache.write_unlock(buf)

    async def sync(self) -> None:
        """Write the summary counts to the superblock and flush every dirty buffer."""
        await self._quiesce()
        sb = self.sb
        sb.free_blocks = self.free_blocks
        sb.free_inodes = self.free_inodes
        sb.mtime = self.clock()
        buf = await self.cache.get(0, SUPER)
        buf.data[:] = sb.pack()
        self.cache.mark_dirty(buf)
        await self.cache.flush()

    async def unmount(self) -> None:
        """Sync and release the pinned group blocks."""
        await self._quiesce()
        await self.sync()
        for buf in self._cg_bufs:
            self.cache.unpin(buf)
        self._cg_bufs = []
        self.mounted = False

    async def open(self, path: str, *, create: bool = False) -> "File":
        """A :class:`File` handle (position-based reads and writes) on a regular file."""
        await self._quiesce()
        if create:
            ino = await self.create(path, exist_ok=True)
        else:
            ino = await self._namei(path)
        if (await self._iget(ino)).is_dir:
            raise IsADirectory(f"{path!r} is a directory")
        return File(self, ino, path)

    # ---- non-blocking ------------------------------------------------------------------------
    def _pending(self) -> bool:
        """Whether background work of non-blocking calls is still queued or running."""
        return self._nb_last is not None and not self._nb_last.done

    async def _quiesce(self) -> None:
        """Let queued background work finish first (a blocking call must not overlap it)."""
        if self._pending() and self.kernel.current not in self._nb_tasks:
            await self._nb_last

    def _run_sync(self, coro):
        """Run ``coro`` in no-I/O mode; it must finish without suspending."""
        self.cache.no_io = True
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        finally:
            self.cache.no_io = False
        coro.close()
        raise RuntimeError("a non-blocking step suspended (it awaited something other than I/O)")

    def _background(self, make_coro, callback, value, name: str) -> None:
        if self.kernel is None:
            raise ValueError("non-blocking calls that must wait need a kernel (FileSystem.mount(kernel=...))")
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {callback!r}")
        prev = self._nb_last

        async def run():
            if prev is not None and not prev.done:
                await prev
            try:
                result = await make_coro()
            except FsError as exc:
                completion = Completion(value, None, exc)
            else:
                completion = Completion(value, result, None)
            finally:
                self._nb_tasks.discard(task)
            callback(completion)
        task = self.kernel.spawn(run(), name=name)
        self._nb_tasks.add(task)
        self._nb_last = task

    def read_nb(self, target: str | int, offset: int, size: int | None,
                callback: Callable[[Completion], None], value: Any = None) -> Progress:
        """Non-blocking :meth:`read`: the cached prefix now, the rest with the completion.

        Returns
        -------
        Progress
            ``result`` holds the bytes available at once (from ``offset``); when not ``done``,
            ``callback(Completion(value, all_bytes, error))`` follows.
        """
        out = bytearray()
        try:
            if self._pending():               # queued work first: nothing may overtake it
                raise WouldBlock("background work is queued")
            self._run_sync(self._read(target, offset, size, out))
        except WouldBlock:
            self._background(lambda: self.read(target, offset, size), callback, value, "fs.read_nb")
            return Progress(False, len(out), value, bytes(out))
        return Progress(True, len(out), value, bytes(out))

    def write_nb(self, target: str | int, data: bytes, offset: int | None,
                 callback: Callable[[Completion], None], value: Any = None) -> Progress:
        """Non-blocking :meth:`write`: whole steps that need no I/O now, the rest later.

        Returns
        -------
        Progress
            ``count`` bytes written at once; when not ``done``, the remaining bytes are
            written in the background and ``callback(Completion(value, total_written,
            error))`` follows.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
        box: dict[str, int] = {}

        async def first():
            ino = await self._resolve(target)
            box["ino"] = ino
            off = offset
            if off is None:
                off = (await self._iget(ino)).size
            box["offset"] = off
            return await self._write(ino, memoryview(data), off, str(target))
        try:
            if self._pending():
                raise WouldBlock("background work is queued")
            n = self._run_sync(first())
        except WouldBlock as exc:
            done = exc.written
            if "offset" in box:
                start = box["offset"] + done
                rest = lambda: self.write(box["ino"], data[done:], start)   # noqa: E731
            else:
                rest = lambda: self.write(target, data, offset)             # noqa: E731

            async def finish():
                return done + await rest()
            self._background(finish, callback, value, "fs.write_nb")
            return Progress(False, done, value, None)
        return Progress(True, n, value, n)

    def sync_nb(self, callback: Callable[[Completion], None], value: Any = None) -> Progress:
        """Non-blocking :meth:`sync`: done at once when nothing is dirty (count = dirty blocks)."""
        dirty = self.cache.dirty_count
        if dirty == 0 and (self._nb_last is None or self._nb_last.done):
            return Progress(True, 0, value, None)
        self._background(self.sync, callback, value, "fs.sync_nb")
        return Progress(False, dirty, value, None)

    def __repr__(self) -> str:
        sb = self.sb
        return (f"FileSystem({sb.block_count} x {sb.block_size} B blocks, {sb.ngroups} groups, "
                f"{self.free_blocks} blocks and {self.free_inodes} inodes free)")


class File:
    """A position-keeping handle on a regular file (from :meth:`FileSystem.open`)."""

    def __init__(self, fs: FileSystem, ino: int, path: str):
        self.fs = fs
        self.ino = ino
        self.path = path
        self.pos = 0

    async def read(self, size: int | None = None) -> bytes:
        data = await self.fs.read(self.ino, self.pos, size)
        self.pos += len(data)
        return data

    async def write(self, data: bytes) -> int:
        n = await self.fs.write(self.ino, data, self.pos)
        self.pos += n
        return n

    def seek(self, pos: int) -> None:
        self.pos = _check_int("position", pos)

    def tell(self) -> int:
        return self.pos

    async def stat(self) -> Stat:
        return await self.fs.stat(self.ino)

    async def truncate(self, size: int) -> None:
        await self.fs.truncate(self.ino, size)

    def __repr__(self) -> str:
        return f"<File {self.path!r} ino={self.ino} pos={self.pos}>"
