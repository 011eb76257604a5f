"""The consistency checker: finds (and optionally repairs) what a crash or a bug left behind.

Run it on an unmounted device. It checks, in passes:

1. **Inodes.** Every allocated inode has a known type; every block pointer (direct,
   indirect, and inside indirect blocks) lies in a data area, is claimed by no one else, and
   addresses a block below the file's size; a directory has a whole number of blocks and no
   holes; the block count matches. Bad pointers are cleared; a broken directory inode is
   cleared.
2. **Directories**, walked from the root: every chunk parses; "." and ".." come first and
   name the directory and its parent; entries name allocated inodes with the right type; a
   directory is named by one entry only. Bad entries are removed, bad chunks emptied.
3. **Reachability.** Allocated inodes no directory names are cleared (a file whose creation
   did not complete, or whose deletion did not).
4. **Link counts** are set to the number of entries naming each inode.
5. **Bitmaps and counts**: the inode and block bitmaps and each group's free counts are
   recomputed from what is reachable and compared; the superblock's summary too.

The superblock itself must be intact (a bad one is reported as :class:`Corrupt`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import Corrupt
from .layout import (CG_MAGIC, DIR_CHUNK, FT_DIR, FT_REG, NDIRECT, ROOT_INO, CylinderGroup, Inode,
                     Superblock, bit_get, bit_set, pack_dir_chunk_empty, pack_dirent,
                     parse_dir_chunk)

__all__ = ["fsck", "FsckReport"]


@dataclass
class FsckReport:
    """What :func:`fsck` found.

    Attributes
    ----------
    problems : list[str]
        One line per inconsistency, naming the inode, block or entry.
    repaired : bool
        Whether the repairs were written.
    files, directories : int
        Reachable regular files and directories.
    used_blocks, free_blocks, free_inodes : int
        After the check (and repair).
    """

    problems: list[str] = field(default_factory=list)
    repaired: bool = False
    files: int = 0
    directories: int = 0
    used_blocks: int = 0
    free_blocks: int = 0
    free_inodes: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"fsck: {self.files} files, {self.directories} directories, {self.used_blocks} "
                f"blocks used, {self.free_blocks} free; ")
        if self.clean:
            return head + "clean"
        verdict = "repaired" if self.repaired else "NOT repaired"
        return head + f"{len(self.problems)} problems ({verdict}):\n  " + "\n  ".join(self.problems)


class _Disk:
    """Whole fs blocks read from the device once and written back if changed."""

    def __init__(self, device, block_size: int):
        self.device = device
        self.bs = block_size
        self.spb = block_size // device.block_size
        self.blocks: dict[int, bytearray] = {}
        self.dirty: set[int] = set()

    async def get(self, bn: int) -> bytearray:
        blk = self.blocks.get(bn)
        if blk is None:
            blk = bytearray(await self.device.read(bn * self.spb, self.spb))
            self.blocks[bn] = blk
        return blk

    async def write_back(self) -> None:
        for bn in sorted(self.dirty):
            await self.device.write(bn * self.spb, bytes(self.blocks[bn]))
        self.dirty.clear()


_PTR = struct.Struct("<I")


async def fsck(device, *, repair: bool = False) -> FsckReport:
    """Check the file system on ``device``; with ``repair``, fix what is found.

    Returns
    -------
    FsckReport
        ``clean`` when nothing was found; a repaired file system checks clean afterwards.

    Raises
    ------
    Corrupt
        If the superblock is unreadable or the root directory is not a directory.
    """
    raw = await device.read(0, max(1, 512 // device.block_size))
    try:
        sb = Superblock.unpack(raw)
        if sb.block_size % device.block_size or \
                sb.block_count * (sb.block_size // device.block_size) > device.block_count:
            raise ValueError(f"geometry ({sb.block_count} x {sb.block_size} B) does not fit the device")
    except ValueError as exc:
        raise Corrupt(f"fsck: bad superblock on {device!r}: {exc}") from None
    disk = _Disk(device, sb.block_size)
    report = FsckReport()
    problem = report.problems.append
    bs = sb.block_size
    p = sb.ptrs_per_block
    isz, esz = sb.inode_size, sb.extra_size

    async def iget(ino: int) -> Inode:
        blk, off = sb.inode_location(ino)
        return Inode.unpack(memoryview(await disk.get(blk))[off:off + isz], esz)

    async def iput(ino: int, inode: Inode) -> None:
        blk, off = sb.inode_location(ino)
        buf = await disk.get(blk)
        buf[off:off + isz] = inode.pack(isz, esz)
        disk.dirty.add(blk)

    # ---- pass 1: inodes and their blocks ---------------------------------------------------
    owner: dict[int, int] = {}                  # block -> inode claiming it
    claims: dict[int, list[int]] = {}           # inode -> blocks it claims
    inodes: dict[int, Inode] = {}               # allocated inodes (after fixes)

    def claimable(ino: int, ptr: int, what: str) -> bool:
        if not sb.is_data_block(ptr):
            problem(f"inode {ino}: {what} points to block {ptr}, outside every data area; cleared")
            return False
        if ptr in owner:
            problem(f"inode {ino}: {what} block {ptr} is already claimed by inode {owner[ptr]}; cleared")
            return False
        return True

    def claim(ino: int, ptr: int) -> None:
        owner[ptr] = ino
        claims[ino].append(ptr)

    async def walk_ind(ino: int, ind: int, base: int, nfile: int, level: int, data: dict) -> None:
        """Check the pointers of indirect block ``ind`` (covering file blocks from ``base``)."""
        buf = await disk.get(ind)
        span = p ** (level - 1)
        for j in range(p):
            ptr = _PTR.unpack_from(buf, 4 * j)[0]
            if not ptr:
                continue
            first = base + j * span
            ok = first < nfile
            if not ok:
                problem(f"inode {ino}: block {ptr} at file block {first} lies beyond the "
                        f"end of the file; cleared")
            elif claimable(ino, ptr, f"file block {first}" if level == 1 else "indirect"):
                claim(ino, ptr)
                if level == 1:
                    data[first] = ptr
                else:
                    await walk_ind(ino, ptr, first, nfile, level - 1, data)
                continue
            _PTR.pack_into(buf, 4 * j, 0)
            disk.dirty.add(ind)

    for ino in range(1, sb.inode_count):
        inode = await iget(ino)
        if not inode.allocated:
            continue
        changed = False
        if not (inode.is_reg or inode.is_dir):
            problem(f"inode {ino}: unknown type (mode {inode.mode:o}); cleared")
            await iput(ino, Inode())
            continue
        if inode.is_dir and (inode.size == 0 or inode.size % bs):
            problem(f"inode {ino}: directory size {inode.size} is not a whole number of blocks; "
                    f"directory cleared")
            await iput(ino, Inode())
            continue
        claims[ino] = []
        data: dict[int, int] = {}
        nfile = -(-inode.size // bs)
        for i in range(NDIRECT):
            ptr = inode.direct[i]
            if not ptr:
                continue
            if i >= nfile:
                problem(f"inode {ino}: block {ptr} at file block {i} lies beyond the end of the file; cleared")
            elif claimable(ino, ptr, f"file block {i}"):
                claim(ino, ptr)
                data[i] = ptr
                continue
            inode.direct[i] = 0
            changed = True
        for attr, base, level in (("single", NDIRECT, 1), ("double", NDIRECT + p, 2)):
            ptr = getattr(inode, attr)
            if not ptr:
                continue
            if base >= nfile:
                problem(f"inode {ino}: {attr}-indirect block {ptr} lies beyond the end of the file; cleared")
            elif claimable(ino, ptr, f"{attr}-indirect"):
                claim(ino, ptr)
                await walk_ind(ino, ptr, base, nfile, level, data)
                continue
            setattr(inode, attr, 0)
            changed = True
        if inode.is_dir and len(data) != nfile:
            hole = min(i for i in range(nfile) if i not in data)
            problem(f"inode {ino}: directory has a hole at block {hole}; directory cleared")
            for b in claims.pop(ino):
                del owner[b]
            await iput(ino, Inode())
            continue
        if inode.nblocks != len(claims[ino]):
            problem(f"inode {ino}: block count {inode.nblocks}, but it holds {len(claims[ino])}; fixed")
            inode.nblocks = len(claims[ino])
            changed = True
        if changed:
            await iput(ino, inode)
        inodes[ino] = inode

    # ---- pass 2: directories from the root ---------------------------------------------------
    root = inodes.get(ROOT_INO)
    if root is None or not root.is_dir:
        raise Corrupt(f"fsck: the root directory (inode {ROOT_INO}) is missing or not a directory")
    refs: dict[int, int] = {}
    parent: dict[int, int] = {ROOT_INO: ROOT_INO}
    queue = [ROOT_INO]
    while queue:
        dino = queue.pop(0)
        dinode = inodes[dino]
        data_blocks = await _dir_data_blocks(disk, sb, dinode)
        for idx, bn in enumerate(data_blocks):
            buf = await disk.get(bn)
            for c in range(0, bs, DIR_CHUNK):
                chunk = memoryview(buf)[c:c + DIR_CHUNK]
                where = f"directory inode {dino}, block {bn}, chunk {c // DIR_CHUNK}"
                try:
                    ents = parse_dir_chunk(chunk)
                except ValueError as exc:
                    problem(f"{where}: {exc}; chunk emptied")
                    buf[c:c + DIR_CHUNK] = pack_dir_chunk_empty()
                    disk.dirty.add(bn)
                    ents = parse_dir_chunk(memoryview(buf)[c:c + DIR_CHUNK])
                if idx == 0 and c == 0:
                    names = [(e[0], e[4]) for e in ents if e[1]]
                    if names[:2] != [(0, b"."), (12, b"..")]:
                        problem(f"{where}: '.' and '..' are not the first entries; chunk rebuilt, "
                                f"entries {[n.decode('utf-8', 'replace') for _o, n in names]} lost")
                        buf[c:c + DIR_CHUNK] = _dot_chunk(dino, parent[dino])
                        disk.dirty.add(bn)
                        ents = parse_dir_chunk(memoryview(buf)[c:c + DIR_CHUNK])
                prev = None        # (offset, reclen) of the previous entry kept in this chunk
                for off, eino, reclen, ftype, name in ents:
                    keep = True
                    if eino:
                        shown = name.decode("utf-8", "replace")
                        if name == b"." and off == 0 and idx == 0 and c == 0:
                            want = dino
                        elif name == b".." and off == 12 and idx == 0 and c == 0:
                            want = parent[dino]
                        else:
                            want = None
                        if want is not None and eino != want:
                            problem(f"{where}: {shown!r} names inode {eino}, not {want}; fixed")
                            struct.pack_into("<I", buf, c + off, want)
                            disk.dirty.add(bn)
                            eino = want
                        target = inodes.get(eino)
                        if want is not None:
                            pass
                        elif target is None:
                            problem(f"{where}: entry {shown!r} names inode {eino}, which is not "
                                    f"allocated; removed")
                            keep = False
                        elif target.is_dir and eino in parent:
                            problem(f"{where}: entry {shown!r} is a second name for directory "
                                    f"inode {eino}; removed")
                            keep = False
                        elif name in (b".", b".."):
                            problem(f"{where}: stray {shown!r} entry; removed")
                            keep = False
                        if keep:
                            ft = FT_DIR if inodes[eino].is_dir else FT_REG
                            if ftype != ft:
                                problem(f"{where}: entry {shown!r} has type {ftype}, inode {eino} is "
                                        f"type {ft}; fixed")
                                buf[c + off + 7] = ft
                                disk.dirty.add(bn)
                            refs[eino] = refs.get(eino, 0) + 1
                            if want is None and inodes[eino].is_dir:
                                parent[eino] = dino
                                queue.append(eino)
                    if not keep:
                        disk.dirty.add(bn)
                        if prev is not None:
                            prev = (prev[0], prev[1] + reclen)
                            struct.pack_into("<H", buf, c + prev[0] + 4, prev[1])
                        else:
                            struct.pack_into("<I", buf, c + off, 0)
                            prev = (off, reclen)
                    else:
                        prev = (off, reclen)

    # ---- pass 3: unreachable inodes ---------------------------------------------------------
    for ino in sorted(inodes):
        if ino not in refs:
            inode = inodes.pop(ino)
            kind = "directory" if inode.is_dir else "file"
            problem(f"inode {ino}: unreferenced {kind} of {inode.size} bytes; cleared")
            for b in claims.pop(ino):
                del owner[b]
            await iput(ino, Inode())

    # ---- pass 4: link counts -----------------------------------------------------------------
    for ino, inode in inodes.items():
        if inode.links != refs[ino]:
            problem(f"inode {ino}: link count {inode.links}, but {refs[ino]} entries name it; fixed")
            inode.links = refs[ino]
            await iput(ino, inode)
        if inode.is_dir:
            report.directories += 1
        else:
            report.files += 1

    # ---- pass 5: bitmaps and counts ----------------------------------------------------------
    total_free_b = total_free_i = 0
    for g in range(sb.ngroups):
        start = sb.group_start(g)
        buf = await disk.get(start)
        cg = CylinderGroup(buf, sb)
        magic, idx, nb, fb, fi = cg.header()
        nblocks = sb.group_blocks(g)
        if magic != CG_MAGIC or idx != g or nb != nblocks:
            problem(f"group {g}: bad header (magic {magic!r}, index {idx}, {nb} blocks); rebuilt")
            disk.dirty.add(start)
        ibm, bbm = cg.inode_bitmap, cg.block_bitmap
        bad_used = bad_free = 0
        free_b = 0
        for i in range(nblocks):
            bn = start + i
            want = i <= sb.itable_blocks or bn in owner
            have = bit_get(bbm, i)
            if want != have:
                if want:
                    bad_free += 1
                else:
                    bad_used += 1
                bit_set(bbm, i, want)
                disk.dirty.add(start)
            free_b += not want
        for i in range(nblocks, sb.blocks_per_group):       # past a short last group: clear
            if bit_get(bbm, i):
                bit_set(bbm, i, False)
                disk.dirty.add(start)
        if bad_free:
            problem(f"group {g}: {bad_free} blocks in use are marked free; fixed")
        if bad_used:
            problem(f"group {g}: {bad_used} free blocks are marked in use; fixed")
        ibad = 0
        free_i = 0
        for i in range(sb.inodes_per_group):
            ino = g * sb.inodes_per_group + i
            want = ino == 0 or ino in inodes
            if bit_get(ibm, i) != want:
                ibad += 1
                bit_set(ibm, i, want)
                disk.dirty.add(start)
            free_i += not want
        if ibad:
            problem(f"group {g}: {ibad} inode bitmap bits wrong; fixed")
        if (fb, fi) != (free_b, free_i) and magic == CG_MAGIC:
            problem(f"group {g}: free counts {fb} blocks / {fi} inodes, actually {free_b} / {free_i}; fixed")
        if (magic, idx, nb, fb, fi) != (CG_MAGIC, g, nblocks, free_b, free_i):
            cg.set_header(g, nblocks, free_b, free_i)
            disk.dirty.add(start)
        total_free_b += free_b
        total_free_i += free_i
    if (sb.free_blocks, sb.free_inodes) != (total_free_b, total_free_i):
        problem(f"superblock: summary says {sb.free_blocks} blocks / {sb.free_inodes} inodes free, "
                f"actually {total_free_b} / {total_free_i}; fixed")
        sb.free_blocks, sb.free_inodes = total_free_b, total_free_i
        sb0 = await disk.get(0)
        sb0[:] = sb.pack()
        disk.dirty.add(0)

    report.free_blocks = total_free_b
    report.free_inodes = total_free_i
    report.used_blocks = sb.block_count - total_free_b
    if repair and disk.dirty:
        await disk.write_back()
        report.repaired = True
    return report


def _dot_chunk(ino: int, parent: int) -> bytes:
    return (pack_dirent(ino, 12, b".", FT_DIR)
            + pack_dirent(parent, DIR_CHUNK - 12, b"..", FT_DIR)).ljust(DIR_CHUNK, b"\0")


async def _dir_data_blocks(disk: _Disk, sb: Superblock, inode: Inode) -> list[int]:
    """The data blocks of a (pass-1 checked, hole-free) directory, in order."""
    n = inode.size // sb.block_size
    p = sb.ptrs_per_block
    out = [b for b in inode.direct[:min(n, NDIRECT)]]
    if n > NDIRECT and inode.single:
        buf = await disk.get(inode.single)
        out += list(struct.unpack_from(f"<{p}I", buf))[:n - len(out)]
    if n > NDIRECT + p and inode.double:
        dbl = await disk.get(inode.double)
        for mid in struct.unpack_from(f"<{p}I", dbl):
            if len(out) >= n or not mid:
                break
            buf = await disk.get(mid)
            out += list(struct.unpack_from(f"<{p}I", buf))[:n - len(out)]
    return out
