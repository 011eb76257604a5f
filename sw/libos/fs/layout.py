"""On-disk structures of the library file system, packed with :mod:`struct` (little-endian).

The file system is FFS-like. It counts in *file-system blocks* of ``block_size`` bytes (a
power of two and a multiple of the device's sector size); block ``n`` covers device sectors
``n * spb .. n * spb + spb - 1`` where ``spb = block_size // sector_size``::

    block 0                    superblock
    blocks 1 .. 1+bpg-1        cylinder group 0: [cg block][inode table ...][data blocks ...]
    blocks 1+bpg .. 1+2bpg-1   cylinder group 1: same shape
    ...                        (the last group may be shorter)

A **cylinder-group block** holds a 32-byte header (magic, index, blocks in the group, free
counts), then the inode bitmap (``inodes_per_group`` bits) and the block bitmap
(``blocks_per_group`` bits, one per block of the group, metadata blocks marked used). Bit
``i`` is bit ``i % 8`` of byte ``i // 8``; a set bit means *in use*.

**Inodes** are numbered from 0: inode ``n`` is entry ``n % ipg`` of group ``n // ipg``'s table.
Inode 0 is reserved (0 means "no inode" in a directory entry); inode 1 is the root directory.
An inode is ``inode_size`` bytes (a power of two), the 96-byte fixed part then ``extra_size``
bytes of application fields (Cheetah keeps precomputed checksums, headers and prefetch hints
there). Block pointers are 32-bit fs-block numbers, 0 for a hole (block 0 is the superblock,
never a data block): 12 direct, one single-indirect and one double-indirect.

**Directories** are files made of 512-byte chunks (:data:`DIR_CHUNK`, one disk sector, so a
crash leaves each chunk wholly old or wholly new); entries never cross a chunk. An entry is
``ino (4) reclen (2) namelen (1) type (1) name`` padded to 4 bytes; ``reclen`` covers the
entry and any free space after it, and the entries of a chunk tile it exactly. An unused
entry has ``ino == 0``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "FS_MAGIC", "FS_VERSION", "CG_MAGIC", "NDIRECT", "ROOT_INO", "DIR_CHUNK", "NAME_MAX",
    "S_IFMT", "S_IFREG", "S_IFDIR", "FT_UNKNOWN", "FT_REG", "FT_DIR", "INODE_BASE_SIZE",
    "Superblock", "CylinderGroup", "Inode", "DirEntry", "CG_HEADER_SIZE",
    "pack_dir_chunk_empty", "parse_dir_chunk", "dirent_size", "pack_dirent", "inode_size_for",
    "bit_get", "bit_set", "find_clear",
]

FS_MAGIC = b"SVOSFFS1"
FS_VERSION = 1
CG_MAGIC = b"CGRP"
NDIRECT = 12
ROOT_INO = 1
DIR_CHUNK = 512
NAME_MAX = 255

S_IFMT = 0o170000
S_IFREG = 0o100000
S_IFDIR = 0o040000

FT_UNKNOWN, FT_REG, FT_DIR = 0, 1, 2


# ---- bitmaps -----------------------------------------------------------------------------
def bit_get(bm: bytes | bytearray | memoryview, i: int) -> bool:
    """Whether bit ``i`` of bitmap ``bm`` is set."""
    return bool(bm[i >> 3] & (1 << (i & 7)))


def bit_set(bm: bytearray | memoryview, i: int, value: bool) -> None:
    """Set or clear bit ``i`` of ``bm``."""
    if value:
        bm[i >> 3] |= 1 << (i & 7)
    else:
        bm[i >> 3] &= ~(1 << (i & 7)) & 0xFF


def find_clear(bm: bytes | bytearray | memoryview, start: int, end: int) -> int:
    """The first clear bit in ``start .. end - 1`` of ``bm``, or -1 if there is none."""
    i = start
    while i < end:
        if (i & 7) == 0 and i + 8 <= end and bm[i >> 3] == 0xFF:
            i += 8                      # skip a full byte at once
            continue
        if not bm[i >> 3] & (1 << (i & 7)):
            return i
        i += 1
    return -1


# ---- superblock --------------------------------------------------------------------------
_SB = struct.Struct("<8sIIIIIIIIIIIIQQ")


@dataclass
class Superblock:
    """The file system's geometry and summary counts (fs block 0).

    Attributes
    ----------
    block_size : int
        Bytes per file-system block.
    block_count : int
        File-system blocks in use by the file system (superblock included).
    ngroups, blocks_per_group, inodes_per_group : int
        Cylinder-group geometry; group ``g`` starts at block ``1 + g * blocks_per_group``.
    inode_size, extra_size : int
        Bytes per on-disk inode, and of those the application's extra fields.
    itable_blocks : int
        Inode-table blocks per group (right after the group's cg block).
    free_blocks, free_inodes : int
        Summary counts, advisory (the group blocks are authoritative; fsck recomputes them).
    mtime : int
        Time of the last sync, in the clock's unit (simulated picoseconds by default).
    """

    block_size: int
    block_count: int
    ngroups: int
    blocks_per_group: int
    inodes_per_group: int
    inode_size: int
    extra_size: int
    itable_blocks: int
    root_ino: int = ROOT_INO
    free_blocks: int = 0
    free_inodes: int = 0
    flags: int = 0
    mtime: int = 0
    ctime: int = 0
    magic: bytes = FS_MAGIC
    version: int = FS_VERSION

    SIZE = _SB.size

    def pack(self) -> bytes:
        """The superblock as one zero-padded fs block."""
        raw = _SB.pack(self.magic, self.version, self.block_size, self.block_count, self.ngroups,
                       self.blocks_per_group, self.inodes_per_group, self.inode_size,
                       self.extra_size, self.itable_blocks, self.root_ino, self.free_blocks,
                       self.free_inodes, self.mtime, self.ctime)
        return raw + bytes(self.block_size - len(raw))

    @classmethod
    def unpack(cls, raw: bytes) -> "Superblock":
        """Parse a superblock; raises ``ValueError`` naming what is wrong."""
        if len(raw) < _SB.size:
            raise ValueError(f"superblock needs {_SB.size} bytes, got {len(raw)}")
        (magic, version, bs, count, ng, bpg, ipg, isz, esz, itb, root, fb, fi, mtime,
         ctime) = _SB.unpack_from(raw)
        if magic != FS_MAGIC:
            raise ValueError(f"not a serveros file system: magic {magic!r}, expected {FS_MAGIC!r}")
        if version != FS_VERSION:
            raise ValueError(f"unsupported file-system version {version} (this code knows {FS_VERSION})")
        sb = cls(bs, count, ng, bpg, ipg, isz, esz, itb, root, fb, fi, 0, mtime, ctime, magic, version)
        sb.validate()
        return sb

    def validate(self) -> None:
        """Check the geometry is self-consistent; raises ``ValueError`` naming the bad field."""
        bs = self.block_size
        if bs < 512 or bs & (bs - 1):
            raise ValueError(f"superblock: block size {bs} is not a power of two >= 512")
        if self.inode_size < INODE_BASE_SIZE + self.extra_size or self.inode_size > bs \
                or self.inode_size & (self.inode_size - 1):
            raise ValueError(f"superblock: inode size {self.inode_size} does not fit "
                             f"{self.extra_size} extra bytes in a {bs}-byte block")
        if self.ngroups < 1 or self.blocks_per_group < 1 or self.inodes_per_group < 1:
            raise ValueError(f"superblock: bad group geometry ({self.ngroups} groups of "
                             f"{self.blocks_per_group} blocks, {self.inodes_per_group} inodes)")
        if self.itable_blocks * (bs // self.inode_size) < self.inodes_per_group:
            raise ValueError(f"superblock: {self.itable_blocks} inode-table blocks cannot hold "
                             f"{self.inodes_per_group} inodes")
        if CG_HEADER_SIZE + (self.inodes_per_group + 7) // 8 + (self.blocks_per_group + 7) // 8 > bs:
            raise ValueError("superblock: group bitmaps do not fit in one block")
        if self.block_count > 1 + self.ngroups * self.blocks_per_group \
                or self.block_count <= 1 + (self.ngroups - 1) * self.blocks_per_group:
            raise ValueError(f"superblock: {self.block_count} blocks do not match {self.ngroups} "
                             f"groups of {self.blocks_per_group}")

    # ---- geometry helpers (pure functions of the superblock) --------------------------------
    @property
    def inodes_per_block(self) -> int:
        return self.block_size // self.inode_size

    @property
    def ptrs_per_block(self) -> int:
        return self.block_size // 4

    @property
    def inode_count(self) -> int:
        return self.ngroups * self.inodes_per_group

    def group_start(self, g: int) -> int:
        """The first block (the cg block) of group ``g``."""
        return 1 + g * self.blocks_per_group

    def group_blocks(self, g: int) -> int:
        """Blocks in group ``g`` (the last one may be short)."""
        return min(self.blocks_per_group, self.block_count - self.group_start(g))

    def group_data_start(self, g: int) -> int:
        """The first data block of group ``g``."""
        return self.group_start(g) + 1 + self.itable_blocks

    def group_of_block(self, bn: int) -> int:
        return (bn - 1) // self.blocks_per_group

    def group_of_inode(self, ino: int) -> int:
        return ino // self.inodes_per_group

    def inode_location(self, ino: int) -> tuple[int, int]:
        """``(fs block, byte offset)`` of inode ``ino``."""
        g, idx = divmod(ino, self.inodes_per_group)
        blk, slot = divmod(idx, self.inodes_per_block)
        return self.group_start(g) + 1 + blk, slot * self.inode_size

    def is_data_block(self, bn: int) -> bool:
        """Whether ``bn`` lies in some group's data area (a legal file block pointer)."""
        if bn < 1 or bn >= self.block_count:
            return False
        g = self.group_of_block(bn)
        return bn >= self.group_data_start(g)

    @property
    def max_file_blocks(self) -> int:
        p = self.ptrs_per_block
        return NDIRECT + p + p * p


# ---- cylinder groups ---------------------------------------------------------------------
_CG = struct.Struct("<4sIIII12x")
CG_HEADER_SIZE = _CG.size
assert CG_HEADER_SIZE == 32


class CylinderGroup:
    """A view of one cylinder-group block (a ``bytearray`` the buffer cache holds).

    Parameters
    ----------
    buf : bytearray or memoryview
        The whole cg block; changes through this view change it in place.
    sb : Superblock
        For the bitmap sizes.
    """

    def __init__(self, buf: bytearray | memoryview, sb: Superblock):
        self.buf = buf
        self.sb = sb
        self._ibm_off = CG_HEADER_SIZE
        self._bbm_off = CG_HEADER_SIZE + (sb.inodes_per_group + 7) // 8

    @staticmethod
    def format(sb: Superblock, g: int) -> bytearray:
        """A fresh cg block for group ``g``: metadata blocks (and inode 0 in group 0) in use."""
        buf = bytearray(sb.block_size)
        cg = CylinderGroup(buf, sb)
        nblocks = sb.group_blocks(g)
        for i in range(1 + sb.itable_blocks):
            bit_set(cg.block_bitmap, i, True)
        nfree_i = sb.inodes_per_group
        if g == 0:
            bit_set(cg.inode_bitmap, 0, True)
            nfree_i -= 1
        cg.set_header(g, nblocks, nblocks - 1 - sb.itable_blocks, nfree_i)
        return buf

    def header(self) -> tuple[bytes, int, int, int, int]:
        """``(magic, index, nblocks, free_blocks, free_inodes)``."""
        return _CG.unpack_from(self.buf, 0)

    def set_header(self, index: int, nblocks: int, free_blocks: int, free_inodes: int) -> None:
        _CG.pack_into(self.buf, 0, CG_MAGIC, index, nblocks, free_blocks, free_inodes)

    @property
    def inode_bitmap(self) -> memoryview:
        return memoryview(self.buf)[self._ibm_off:self._bbm_off]

    @property
    def block_bitmap(self) -> memoryview:
        return memoryview(self.buf)[self._bbm_off:self._bbm_off + (self.sb.blocks_per_group + 7) // 8]

    @property
    def free_blocks(self) -> int:
        return self.header()[3]

    @property
    def free_inodes(self) -> int:
        return self.header()[4]

    def adjust(self, dblocks: int = 0, dinodes: int = 0) -> None:
        magic, idx, nb, fb, fi = self.header()
        self.set_header(idx, nb, fb + dblocks, fi + dinodes)


# ---- inodes ------------------------------------------------------------------------------
_INODE = struct.Struct(f"<HHIQQQI{NDIRECT}IIII")
INODE_BASE_SIZE = _INODE.size
assert INODE_BASE_SIZE == 96


def inode_size_for(extra_size: int) -> int:
    """The on-disk inode size holding ``extra_size`` application bytes: a power of two >= 128."""
    if not isinstance(extra_size, int) or isinstance(extra_size, bool) or extra_size < 0:
        raise ValueError(f"extra inode size must be a non-negative int, not {extra_size!r}")
    size = 128
    while size < INODE_BASE_SIZE + extra_size:
        size *= 2
    return size


@dataclass
class Inode:
    """An in-core copy of an on-disk inode.

    Attributes
    ----------
    mode : int
        Type (:data:`S_IFREG` or :data:`S_IFDIR`) and permission bits; 0 for a free inode.
    links : int
        Directory entries naming it ("." and ".." included for directories).
    size : int
        Bytes.
    mtime, ctime : int
        Modification and change times in the file system's clock unit.
    nblocks : int
        Blocks held, indirect blocks included.
    direct : list[int]
        12 direct block pointers (0 = hole).
    single, double : int
        Single- and double-indirect block pointers.
    extra : bytes
        The application's extra fields (``extra_size`` bytes).
    """

    mode: int = 0
    links: int = 0
    flags: int = 0
    size: int = 0
    mtime: int = 0
    ctime: int = 0
    nblocks: int = 0
    direct: list[int] = field(default_factory=lambda: [0] * NDIRECT)
    single: int = 0
    double: int = 0
    gen: int = 0
    extra: bytes = b""

    @property
    def is_dir(self) -> bool:
        return self.mode & S_IFMT == S_IFDIR

    @property
    def is_reg(self) -> bool:
        return self.mode & S_IFMT == S_IFREG

    @property
    def allocated(self) -> bool:
        return self.mode != 0

    def pack(self, inode_size: int, extra_size: int) -> bytes:
        raw = _INODE.pack(self.mode, self.links, self.flags, self.size, self.mtime, self.ctime,
                          self.nblocks, *self.direct, self.single, self.double, self.gen)
        extra = bytes(self.extra[:extra_size]).ljust(extra_size, b"\0")
        return (raw + extra).ljust(inode_size, b"\0")

    @classmethod
    def unpack(cls, raw: bytes | memoryview, extra_size: int) -> "Inode":
        vals = _INODE.unpack_from(raw, 0)
        mode, links, flags, size, mtime, ctime, nblocks = vals[:7]
        direct = list(vals[7:7 + NDIRECT])
        single, double, gen = vals[7 + NDIRECT:10 + NDIRECT]
        extra = bytes(raw[INODE_BASE_SIZE:INODE_BASE_SIZE + extra_size])
        return cls(mode, links, flags, size, mtime, ctime, nblocks, direct, single, double, gen, extra)


# ---- directory entries -------------------------------------------------------------------
_DIRENT = struct.Struct("<IHBB")
DIRENT_HEADER = _DIRENT.size


@dataclass(frozen=True)
class DirEntry:
    """One directory entry: ``name`` -> inode ``ino`` of type ``ftype`` (FT_REG/FT_DIR)."""

    name: str
    ino: int
    ftype: int


def dirent_size(namelen: int) -> int:
    """Bytes an entry with a ``namelen``-byte name needs (header + name, padded to 4)."""
    return (DIRENT_HEADER + namelen + 3) & ~3


def pack_dirent(ino: int, reclen: int, name: bytes, ftype: int) -> bytes:
    """An entry's bytes: header and name, padded to ``dirent_size`` (not to ``reclen``)."""
    raw = _DIRENT.pack(ino, reclen, len(name), ftype) + name
    return raw.ljust(dirent_size(len(name)), b"\0")


def pack_dir_chunk_empty() -> bytes:
    """A chunk holding one unused entry that spans it."""
    return _DIRENT.pack(0, DIR_CHUNK, 0, 0).ljust(DIR_CHUNK, b"\0")


def parse_dir_chunk(chunk: bytes | memoryview) -> list[tuple[int, int, int, int, bytes]]:
    """The entries of one chunk as ``(offset, ino, reclen, ftype, name)``, unused ones included.

    Raises
    ------
    ValueError
        If the chunk is malformed (a reclen that is not a multiple of 4, too small for its
        name, or running past the chunk); the message names the offset.
    """
    out = []
    off = 0
    while off < DIR_CHUNK:
        if off + DIRENT_HEADER > DIR_CHUNK:
            raise ValueError(f"entry header at {off} runs past the chunk")
        ino, reclen, namelen, ftype = _DIRENT.unpack_from(chunk, off)
        if reclen < DIRENT_HEADER or reclen & 3 or off + reclen > DIR_CHUNK:
            raise ValueError(f"entry at {off} has a bad record length {reclen}")
        if ino and (namelen == 0 or dirent_size(namelen) > reclen):
            raise ValueError(f"entry at {off} has a bad name length {namelen} for record {reclen}")
        name = bytes(chunk[off + DIRENT_HEADER:off + DIRENT_HEADER + namelen]) if ino else b""
        out.append((off, ino, reclen, ftype, name))
        off += reclen
    return out
