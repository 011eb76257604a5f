"""Disk image files: the simulated disk's contents, loaded and saved by the simulation.

Format (version 1, all integers little-endian)::

    offset  size  field
    0       8     magic b"SVOSDISK"
    8       4     version (1)
    12      4     header size in bytes (64; blocks start here)
    16      4     block size in bytes (a power of two, 512 .. 65536)
    20      4     flags (0; reserved)
    24      8     block count
    32      32    reserved, zero
    64      ...   block 0, block 1, ... block (count - 1), each exactly block-size bytes

The file is always exactly ``header + count * block_size`` bytes long. It is created with
``ftruncate``, so blocks never written are *holes*: they read as zeros and take no space on a
filesystem with sparse files (a whole RZ26, 1.05 GB, costs a few kilobytes until written).

Writes and atomicity
--------------------
An image opened with ``persist=True`` writes through to the file; with ``persist=False`` (the
default) writes go to an in-memory overlay and reach the file only on :meth:`DiskImage.save`.
Either way each block is written with **one** ``os.pwrite`` of exactly one block at a
block-aligned offset, and a multi-block write is a sequence of such calls. Why that makes each
sector wholly old or wholly new:

* Within the running system, a ``pwrite`` of one 512-byte block aligned to 512 bytes lies inside
  one page of the page cache (pages are 4 KiB and a multiple of the block size); Linux copies it
  into the page under the page lock (and ``i_rwsem`` for regular files), so a concurrent reader
  or a process killed between two calls sees the block entirely before or entirely after.
  A write cut off part-way (an exception, a kill between blocks) therefore leaves a prefix of
  the blocks new and the rest old, never a torn block, and the header is never touched.
* Across a power failure, the guarantee is the storage device's: drives commit aligned 512-byte
  (logical-sector) writes atomically, which is the same property a SCSI disk gives its host.
  That is enough for a simulator's disk image; a journal would only be needed for multi-block
  atomicity, which the simulated RZ26 does not offer either. :meth:`DiskImage.flush` fsyncs.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType

__all__ = ["DiskImage", "ImageError", "MAGIC", "VERSION", "HEADER_SIZE"]

MAGIC = b"SVOSDISK"
VERSION = 1
HEADER_SIZE = 64
_HEADER = struct.Struct("<8sIIIIQ32s")
assert _HEADER.size == HEADER_SIZE


class ImageError(ValueError):
    """A disk image file is malformed; the message names the problem and the file."""


def _check_geometry(block_size: int, block_count: int) -> None:
    if not isinstance(block_size, int) or block_size < 512 or block_size > 65536 \
            or block_size & (block_size - 1):
        raise ValueError(f"block size must be a power of two from 512 to 65536, not {block_size!r}")
    if not isinstance(block_count, int) or block_count < 1:
        raise ValueError(f"block count must be a positive int, not {block_count!r}")


class DiskImage:
    """An open disk image: ``read`` and ``write`` blocks, ``save`` to persist.

    Use :meth:`create` or :meth:`open`; close with :meth:`close` or a ``with`` block.

    Parameters
    ----------
    path : path-like
        The image file.
    persist : bool
        Write through to the file (True) or keep writes in memory until :meth:`save` (False).
    """

    def __init__(self, path: str | os.PathLike, *, persist: bool = False, _fd: int | None = None,
                 _block_size: int = 0, _block_count: int = 0) -> None:
        if _fd is None:
            raise TypeError("use DiskImage.open() or DiskImage.create()")
        self.path = Path(path)
        self.persist = persist
        self.block_size = _block_size
        self.block_count = _block_count
        self._fd: int | None = _fd
        self._overlay: dict[int, bytes] = {}

    # ---- opening ------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, block_count: int, block_size: int = 512, *,
               persist: bool = True, overwrite: bool = False) -> "DiskImage":
        """Create a zero-filled (sparse) image and open it.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false.
        ValueError
            For a bad block size or count.
        """
        _check_geometry(block_size, block_count)
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        fd = os.open(path, flags, 0o644)
        try:
            header = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, block_size, 0, block_count, bytes(32))
            os.pwrite(fd, header, 0)
            os.ftruncate(fd, HEADER_SIZE + block_count * block_size)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, persist=persist, _fd=fd, _block_size=block_size, _block_count=block_count)

    @classmethod
    def open(cls, path: str | os.PathLike, *, persist: bool = False) -> "DiskImage":
        """Open and validate an existing image.

        Raises
        ------
        ImageError
            Naming the problem: short header, wrong magic, unsupported version, bad block size
            or count, or a file shorter (truncated) or longer than the header says.
        """
        fd = os.open(path, os.O_RDWR if persist else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            raw = os.pread(fd, HEADER_SIZE, 0)
            if len(raw) < HEADER_SIZE:
                raise ImageError(f"{path}: truncated image: {size} bytes, shorter than the "
                                 f"{HEADER_SIZE}-byte header")
            magic, version, header_size, block_size, flags, count, _ = _HEADER.unpack(raw)
            if magic != MAGIC:
                raise ImageError(f"{path}: not a disk image: magic {magic!r}, expected {MAGIC!r}")
            if version != VERSION:
                raise ImageError(f"{path}: unsupported image version {version} (this reader knows {VERSION})")
            if header_size != HEADER_SIZE:
                raise ImageError(f"{path}: header size {header_size}, expected {HEADER_SIZE}")
            try:
                _check_geometry(block_size, count)
            except ValueError as exc:
                raise ImageError(f"{path}: {exc}") from None
            expected = HEADER_SIZE + count * block_size
            if size < expected:
                raise ImageError(f"{path}: truncated image: {size} bytes, but {count} blocks of "
                                 f"{block_size} bytes need {expected}")
            if size > expected:
                raise ImageError(f"{path}: {size - expected} trailing bytes after the last of "
                                 f"{count} blocks")
        except BaseException:
            os.close(fd)
            raise
        return cls(path, persist=persist, _fd=fd, _block_size=block_size, _block_count=count)

    # ---- access --------------------------------------------------------------------------
    def _fd_or_raise(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: image is closed")
        return self._fd

    def _check_range(self, lbn: int, count: int) -> None:
        if not isinstance(lbn, int) or not isinstance(count, int) or lbn < 0 or count < 0 \
                or lbn + count > self.block_count:
            raise ValueError(f"blocks {lbn} .. {lbn + count - 1} are outside the image "
                             f"(0 .. {self.block_count - 1})")

    def read(self, lbn: int, count: int = 1) -> bytes:
        """``count`` blocks from ``lbn`` (written-but-unsaved data included)."""
        fd = self._fd_or_raise()
        self._check_range(lbn, count)
        bs = self.block_size
        data = bytearray(os.pread(fd, count * bs, HEADER_SIZE + lbn * bs))
        if len(data) != count * bs:   # the file shrank under us
            raise ImageError(f"{self.path}: short read at block {lbn}")
        for i in range(count):
            block = self._overlay.get(lbn + i)
            if block is not None:
                data[i * bs:(i + 1) * bs] = block
        return bytes(data)

    def write(self, lbn: int, data: bytes) -> None:
        """Write whole blocks from ``lbn``: to the file if ``persist``, else to the overlay.

        Each block is one ``os.pwrite`` (see the module docstring for why that is atomic).

        Raises
        ------
        ValueError
            If ``data`` is not a whole number of blocks or runs off the image.
        """
        fd = self._fd_or_raise()
        bs = self.block_size
        if len(data) % bs or not data:
            raise ValueError(f"write of {len(data)} bytes is not a whole number of {bs}-byte blocks")
        count = len(data) // bs
        self._check_range(lbn, count)
        view = memoryview(bytes(data))
        for i in range(count):
            block = view[i * bs:(i + 1) * bs]
            if self.persist:
                self._pwrite_block(fd, lbn + i, block)
            else:
                self._overlay[lbn + i] = bytes(block)

    def _pwrite_block(self, fd: int, lbn: int, block: bytes | memoryview) -> None:
        n = os.pwrite(fd, block, HEADER_SIZE + lbn * self.block_size)
        if n != self.block_size:
            raise OSError(f"{self.path}: short write of block {lbn} ({n} of {self.block_size} bytes)")

    @property
    def dirty_blocks(self) -> int:
        """Blocks written but not yet saved (always 0 when ``persist``)."""
        return len(self._overlay)

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Persist the overlay: into this image's file, or (``path``) into a new image file.

        Saving to ``path`` copies the image, keeping holes for all-zero chunks, then writes
        the overlay there; this image stays as it was.
        """
        fd = self._fd_or_raise()
        if path is None or Path(path) == self.path:
            if self._overlay:
                if not self.persist:
                    wfd = os.open(self.path, os.O_RDWR)
                else:
                    wfd = fd
                try:
                    for lbn in sorted(self._overlay):
                        self._pwrite_block(wfd, lbn, self._overlay[lbn])
                    os.fsync(wfd)
                finally:
                    if wfd != fd:
                        os.close(wfd)
                self._overlay.clear()
            return
        out = DiskImage.create(path, self.block_count, self.block_size, persist=True, overwrite=True)
        try:
            chunk = max(1, (1 << 20) // self.block_size)
            for lbn in range(0, self.block_count, chunk):
                n = min(chunk, self.block_count - lbn)
                raw = os.pread(fd, n * self.block_size, HEADER_SIZE + lbn * self.block_size)
                if raw.count(0) != len(raw):   # leave all-zero chunks as holes
                    os.pwrite(out._fd_or_raise(), raw, HEADER_SIZE + lbn * self.block_size)
            for lbn in sorted(self._overlay):
                out._pwrite_block(out._fd_or_raise(), lbn, self._overlay[lbn])
            out.flush()
        finally:
            out.close()

    def flush(self) -> None:
        """fsync the file (written-through data reaches stable storage)."""
        os.fsync(self._fd_or_raise())

    def close(self) -> None:
        """Close the file. Unsaved overlay writes are discarded."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._overlay.clear()

    def __enter__(self) -> "DiskImage":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DiskImage({str(self.path)!r}, blocks={self.block_count}, "
                f"block_size={self.block_size}, persist={self.persist})")
