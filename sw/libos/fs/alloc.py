"""Block and inode allocation: the replaceable policy and its FFS-like default.

An allocator *chooses*; the file system checks the choice and marks the bitmaps. It is any
object with two methods (the :class:`Allocator` protocol), called synchronously (the group
bitmaps are pinned in the cache, so asking about them needs no I/O)::

    alloc_inode(fs, parent, is_dir) -> int        # a free inode number
    alloc_block(fs, ino, index, hint) -> int      # a free data block for block `index` of `ino`

``hint`` is the block holding the file's previous logical block (0 if none, or for an
indirect block the block it follows). The queries an allocator may use on ``fs``:
``fs.sb`` (geometry, see :class:`~sw.libos.fs.layout.Superblock`), ``fs.block_is_free(bn)``,
``fs.inode_is_free(ino)``, ``fs.group_free_blocks(g)``, ``fs.group_free_inodes(g)``,
``fs.find_free_block(g, start=None)`` and ``fs.find_free_inode(g)`` (each -1 when none).
An allocator that cannot find space raises :class:`~sw.libos.fs.errors.NoSpace`.

Cheetah's allocator, for instance, places the inline images of a page right after the page's
last block by answering ``alloc_block`` with ``hint + 1`` for the images it is told about.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from .errors import NoSpace

__all__ = ["Allocator", "FFSAllocator"]


@runtime_checkable
class Allocator(Protocol):
    """What the file system asks of a block/inode allocator."""

    def alloc_inode(self, fs, parent: int, is_dir: bool) -> int:
        ...

    def alloc_block(self, fs, ino: int, index: int, hint: int) -> int:
        ...


class FFSAllocator:
    """The default allocator, after the BSD Fast File System's cylinder-group policy.

    * A new directory goes to the group with the most free blocks among those with at least
      the average number of free inodes (spreading directories out); a file goes to its
      parent directory's group (keeping a directory's files together), or the next group
      with a free inode.
    * A file's block goes right after its previous block when that one is free (contiguous
      files read fast), else to the first free block of the inode's group, else the next
      groups in turn.
    """

    def alloc_inode(self, fs, parent: int, is_dir: bool) -> int:
        sb = fs.sb
        ng = sb.ngroups
        if is_dir:
            total = sum(fs.group_free_inodes(g) for g in range(ng))
            avg = total / ng
            best = None
            for g in range(ng):
                fi = fs.group_free_inodes(g)
                if fi and fi >= avg and (best is None or fs.group_free_blocks(g) > fs.group_free_blocks(best)):
                    best = g
            order = ([best] if best is not None else []) + list(range(ng))
        else:
            start = sb.group_of_inode(parent)
            order = [(start + i) % ng for i in range(ng)]
        for g in order:
            if fs.group_free_inodes(g):
                ino = fs.find_free_inode(g)
                if ino >= 0:
                    return ino
        raise NoSpace("no free inode left in any cylinder group")

    def alloc_block(self, fs, ino: int, index: int, hint: int) -> int:
        sb = fs.sb
        if hint and sb.is_data_block(hint + 1) and fs.block_is_free(hint + 1):
            return hint + 1
        start = sb.group_of_block(hint) if hint and sb.is_data_block(hint) else sb.group_of_inode(ino)
        for i in range(sb.ngroups):
            g = (start + i) % sb.ngroups
            if fs.group_free_blocks(g):
                bn = fs.find_free_block(g, hint + 1 if i == 0 and hint and sb.is_data_block(hint) else None)
                if bn < 0 and i == 0:
                    bn = fs.find_free_block(g)
                if bn >= 0:
                    return bn
        raise NoSpace(f"no free block left for block {index} of inode {ino}")
