"""The file system's errors: :class:`FsError` and one subclass per cause.

Every message names the path, inode or block concerned and the cause.
"""
from __future__ import annotations

__all__ = ["FsError", "NotFound", "Exists", "NotEmpty", "NameTooLong", "InvalidName", "NoSpace",
           "NotADirectory",
           "IsADirectory", "Busy", "WriteLocked", "CacheFull", "FileTooLarge", "Corrupt",
           "WouldBlock", "DeviceCrashed"]


class FsError(Exception):
    """Base class of every file-system error."""


class NotFound(FsError):
    """A path component does not exist."""


class Exists(FsError):
    """The name to create already exists."""


class NotEmpty(FsError):
    """rmdir of a directory that still has entries."""


class NameTooLong(FsError):
    """A path component is longer than :data:`~sw.libos.fs.layout.NAME_MAX` bytes."""


class InvalidName(FsError, ValueError):
    """A path holds a byte no name may contain (NUL: the on-disk names, like the C strings of
    a Unix kernel's ``namei``, cannot carry one). Also a ``ValueError``, for callers that
    checked arguments that way."""


class NoSpace(FsError):
    """No free block or inode.

    Attributes
    ----------
    written : int
        For a write: how many bytes were written before space ran out (they are kept).
    """

    def __init__(self, message: str, written: int = 0):
        super().__init__(message)
        self.written = written


class NotADirectory(FsError):
    """A path component that must be a directory is a file."""


class IsADirectory(FsError):
    """A file operation named a directory."""


class Busy(FsError):
    """The object is in use (the root directory, or blocks pinned or write-locked in the cache)."""


class WriteLocked(Busy):
    """A write would modify a block that is write-locked in the buffer cache."""


class CacheFull(FsError):
    """Every buffer of the cache is pinned, write-locked or held: nothing can be evicted."""


class FileTooLarge(FsError):
    """The file would need more blocks than 12 direct + single + double indirect address."""


class Corrupt(FsError):
    """An on-disk structure is malformed (run fsck)."""


class WouldBlock(FsError):
    """Internal to non-blocking calls: the next step needs device I/O.

    Attributes
    ----------
    written : int
        For a write: bytes written before the step that would block.
    """

    def __init__(self, message: str, written: int = 0):
        super().__init__(message)
        self.written = written


class DeviceCrashed(RuntimeError):
    """An injected crash: the block device stopped accepting writes (see MemoryBlockDevice)."""
