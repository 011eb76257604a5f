"""The library OS's FFS-like file system (SYSTEM.md section 4).

* :mod:`.layout`: on-disk structures (superblock, cylinder groups, inodes, directories).
* :mod:`.device`: the :class:`BlockDevice` protocol, an in-memory device with crash
  injection, a device over a disk image, and an adapter to the DMA disk driver.
* :mod:`.cache`: the buffer cache with application-supplied policies, pinning, write locks.
* :mod:`.physical`: the physical pages a cache may keep its blocks in (DMA straight into them).
* :mod:`.alloc`: the replaceable allocator and its FFS-like default.
* :mod:`.fs`: :func:`mkfs` and :class:`FileSystem` (blocking and non-blocking calls).
* :mod:`.fsck`: the consistency checker and repairer.
* :mod:`.build`: :func:`build_image`, a disk image holding a host directory tree.
"""
from .alloc import Allocator, FFSAllocator
from .cache import Buffer, BufferCache
from .device import BlockDevice, DriverBlockDevice, ImageBlockDevice, MemoryBlockDevice
from .errors import (Busy, CacheFull, Corrupt, DeviceCrashed, Exists, FileTooLarge, FsError,
                     InvalidName, IsADirectory, NameTooLong, NoSpace, NotADirectory, NotEmpty, NotFound,
                     WriteLocked)
from .fs import Completion, File, FileSystem, Progress, Stat, mkfs
from .layout import DirEntry
from .physical import PhysicalStore

__all__ = ["Allocator", "FFSAllocator", "Buffer", "BufferCache", "BlockDevice", "DriverBlockDevice",
           "ImageBlockDevice", "MemoryBlockDevice", "Busy", "CacheFull", "Corrupt",
           "DeviceCrashed", "Exists", "FileTooLarge", "FsError", "InvalidName", "IsADirectory",
           "NameTooLong", "NoSpace", "NotADirectory", "NotEmpty", "NotFound", "WriteLocked",
           "Completion", "File", "FileSystem", "Progress", "Stat", "mkfs", "DirEntry",
           "PhysicalStore"]
