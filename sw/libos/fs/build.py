"""Build a disk image holding a host directory tree (for ``serveros`` to boot Cheetah from).

:func:`build_image` makes a file system in memory, copies the tree in (sorted, so the same
tree gives the same image bit for bit), checks it with fsck, and writes the image file in the
disk-image format of ``hw/disk/image.py`` (version 1: a 64-byte header, then the sectors;
all-zero stretches left as holes). Software may not import ``hw.disk.image``, so the header
is written here from that format's specification; a caller on a higher floor may pass
``image_factory=DiskImage.create`` to have the image written through the real class instead.
"""
from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sim.kernel import Kernel

from .errors import NoSpace
from .fs import FileSystem, mkfs
from .fsck import fsck
from .layout import NDIRECT, inode_size_for

log = logging.getLogger(__name__)

__all__ = ["build_image", "BuildResult", "write_image_file"]

_IMAGE_HEADER = struct.Struct("<8sIIIIQ32s")      # hw/disk/image.py, format version 1
_IMAGE_MAGIC = b"SVOSDISK"


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_image` put in the image."""

    path: Path
    files: int
    directories: int
    bytes: int
    sectors: int
    sector_size: int
    fs_block_size: int


class _SparseDevice:
    """An in-memory block device keeping only the sectors written (a disk may be 1 GB)."""

    def __init__(self, block_count: int, block_size: int):
        if block_count < 1:
            raise ValueError(f"a disk needs at least one sector, not {block_count!r}")
        self.block_count = block_count
        self.block_size = block_size
        self.sectors: dict[int, bytes] = {}

    async def read(self, lbn: int, count: int = 1) -> bytes:
        if lbn < 0 or lbn + count > self.block_count:
            raise ValueError(f"sectors {lbn} .. {lbn + count - 1} are outside the disk")
        zero = bytes(self.block_size)
        return b"".join(self.sectors.get(lbn + i, zero) for i in range(count))

    async def write(self, lbn: int, data: bytes) -> None:
        bs = self.block_size
        if len(data) % bs or lbn < 0 or lbn + len(data) // bs > self.block_count:
            raise ValueError(f"bad write of {len(data)} bytes at sector {lbn}")
        for i in range(len(data) // bs):
            sector = bytes(data[i * bs:(i + 1) * bs])
            if sector.count(0) == bs:
                self.sectors.pop(lbn + i, None)      # zero sectors stay holes
            else:
                self.sectors[lbn + i] = sector


def write_image_file(path: str | os.PathLike, sector_count: int, sector_size: int,
                     sectors: dict[int, bytes], *, overwrite: bool = False) -> None:
    """Write a version-1 disk image file of ``sector_count`` sectors; ``sectors`` maps sector
    numbers to contents, every other sector is zero (a hole).

    Raises
    ------
    FileExistsError
        If ``path`` exists and not ``overwrite``.
    ValueError
        If a sector has the wrong size or lies outside the disk.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o644)
    try:
        os.pwrite(fd, _IMAGE_HEADER.pack(_IMAGE_MAGIC, 1, 64, sector_size, 0, sector_count,
                                         bytes(32)), 0)
        os.ftruncate(fd, 64 + sector_count * sector_size)
        for lbn in sorted(sectors):
            data = sectors[lbn]
            if len(data) != sector_size or not 0 <= lbn < sector_count:
                raise ValueError(f"sector {lbn} of {len(data)} bytes does not fit the image")
            if data.count(0) != len(data):
                os.pwrite(fd, data, 64 + lbn * sector_size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    dirs, files = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for d in dirnames:
            if (here / d).is_symlink():
                log.warning("build_image: skipping symlink %s", here / d)
                continue
            dirs.append(here / d)
        for f in sorted(filenames):
            p = here / f
            if p.is_symlink() or not p.is_file():
                log.warning("build_image: skipping %s (not a regular file)", p)
                continue
            files.append(p)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return dirs, files


def _estimate_blocks(sizes: list[int], ndirs: int, bs: int, extra_size: int, ninodes: int) -> int:
    p = bs // 4
    data = 0
    for s in sizes:
        n = -(-s // bs)
        data += n
        if n > NDIRECT:
            data += 1
        if n > NDIRECT + p:
            data += 1 + -(-(n - NDIRECT - p) // p)
    data += ndirs + (len(sizes) + ndirs) * 300 // bs + 1        # directory blocks, generously
    itable = -(-ninodes * inode_size_for(extra_size) // bs)
    return data + data // 8 + itable + 64


def build_image(host_dir: str | os.PathLike, image_path: str | os.PathLike, *,
                block_size: int = 4096, sector_size: int = 512, sectors: int | None = None,
                extra_size: int = 0, extra: Callable[[str, bytes], bytes] | None = None,
                overwrite: bool = False, image_factory: Callable | None = None) -> BuildResult:
    """Create a disk image at ``image_path`` holding the tree under ``host_dir``.

    Parameters
    ----------
    host_dir : path-like
        The directory to copy (regular files and directories; symlinks are skipped).
    image_path : path-like
        The image file to create.
    block_size : int
        File-system block size.
    sector_size : int
        The disk's sector size (the image's block size).
    sectors : int, optional
        Disk size in sectors (e.g. an RZ26's 2 050 860); default: just big enough.
    extra_size : int
        Bytes of application fields per inode.
    extra : callable, optional
        ``extra(path_in_image, contents) -> bytes`` fills each file's extra fields (e.g.
        Cheetah's precomputed checksums and headers).
    overwrite : bool
        Replace an existing image file.
    image_factory : callable, optional
        ``image_factory(path, block_count, block_size)`` returning an open image with
        ``write(lbn, data)`` (e.g. ``DiskImage.create``); default: written here.

    Returns
    -------
    BuildResult

    Raises
    ------
    NotADirectoryError
        If ``host_dir`` is not a directory.
    FileExistsError
        If the image exists and not ``overwrite``.
    NoSpace
        If the tree does not fit in ``sectors``.
    """
    root = Path(host_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"build_image: {str(root)!r} is not a directory")
    out = Path(image_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"build_image: {str(out)!r} exists (pass overwrite=True)")
    dirs, files = _scan(root)
    sizes = [f.stat().st_size for f in files]
    ninodes = len(files) + len(dirs) + 16
    spb = block_size // sector_size
    if sectors is None:
        nblocks = _estimate_blocks(sizes, len(dirs), block_size, extra_size, ninodes)
    else:
        nblocks = sectors // spb
    while True:
        dev = _SparseDevice(nblocks * spb if sectors is None else sectors, sector_size)
        try:
            _run(_fill(dev, root, dirs, files, block_size, extra_size, extra, ninodes))
            break
        except NoSpace:
            if sectors is not None:
                raise
            nblocks *= 2
            log.info("build_image: retrying with %d blocks", nblocks)
    if image_factory is None:
        write_image_file(out, dev.block_count, sector_size, dev.sectors, overwrite=overwrite)
    else:
        if overwrite and out.exists():
            out.unlink()
        img = image_factory(out, dev.block_count, sector_size)
        try:
            for lbn in sorted(dev.sectors):
                if dev.sectors[lbn].count(0) != sector_size:
                    img.write(lbn, dev.sectors[lbn])
            for meth in ("save", "flush"):
                if callable(getattr(img, meth, None)):
                    getattr(img, meth)()
        finally:
            if callable(getattr(img, "close", None)):
                img.close()
    return BuildResult(out, len(files), len(dirs), sum(sizes), dev.block_count, sector_size, block_size)


def _run(coro):
    k = Kernel()
    task = k.spawn(coro, name="build_image")
    try:
        k.run()
    except Exception as exc:             # unwrap the kernel's SimulationError for the caller
        cause = exc.__cause__
        if isinstance(cause, Exception):
            raise cause from None
        raise
    return task.result


async def _fill(dev, root: Path, dirs: list[Path], files: list[Path], block_size: int,
                extra_size: int, extra, ninodes: int) -> None:
    sb = await mkfs(dev, block_size=block_size, extra_size=extra_size,
                    inodes=max(ninodes, dev.block_count * dev.block_size // 8192))
    fs = await FileSystem.mount(dev, cache_blocks=sb.ngroups + 256)
    for d in dirs:
        await fs.mkdir("/" + d.relative_to(root).as_posix())
    for f in files:
        name = "/" + f.relative_to(root).as_posix()
        data = f.read_bytes()
        await fs.create(name)
        await fs.write(name, data)
        if extra is not None:
            await fs.set_extra(name, extra(name, data))
    await fs.unmount()
    report = await fsck(dev)
    if not report.clean:                  # a bug, not a user error
        raise RuntimeError(f"build_image produced an inconsistent file system:\n{report}")
