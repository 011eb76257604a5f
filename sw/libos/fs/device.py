"""Block devices the file system runs on: the :class:`BlockDevice` protocol and two devices.

The file system only needs ``block_size`` (the sector size), ``block_count`` and two async
calls. A device that moves sectors by DMA also has ``read_into(lbn, count, addr, requester=)``
and ``write_from(...)``, straight between the disk and physical memory at ``addr`` (what a
physical buffer cache uses, :mod:`.physical`); the pages are checked against ``requester``
first, as the exokernel checks a disk request's buffer. The disk driver (``sw.drivers.disk.DiskDriver``, which DMAs into simulated memory) gets
an adapter to this protocol; tests and image building use :class:`MemoryBlockDevice` and
:class:`ImageBlockDevice`.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from .errors import DeviceCrashed

__all__ = ["BlockDevice", "MemoryBlockDevice", "ImageBlockDevice", "DriverBlockDevice",
           "DeviceCrashed"]


@runtime_checkable
class BlockDevice(Protocol):
    """An async block device of ``block_count`` sectors of ``block_size`` bytes.

    ``write`` must leave each sector wholly old or wholly new (the disk's guarantee); a write
    of several sectors may stop part-way (a crash), leaving a prefix written.
    """

    block_size: int
    block_count: int

    async def read(self, lbn: int, count: int) -> bytes:
        """``count`` sectors from ``lbn``."""
        ...

    async def write(self, lbn: int, data: bytes) -> None:
        """Write whole sectors from ``lbn``."""
        ...


def _check_dma(memory, addr: int, n: int, requester, write: bool) -> None:
    """The pages of a DMA buffer must be the requester's (a read from the disk writes them)."""
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(f"DMA address must be an int, not {addr!r}")
    memory.check(addr, n, requester, write=write)


def _check_range(dev, lbn: int, count: int) -> None:
    if isinstance(lbn, bool) or not isinstance(lbn, int) or isinstance(count, bool) \
            or not isinstance(count, int):
        raise TypeError(f"block number and count must be ints, not {lbn!r} and {count!r}")
    if lbn < 0 or count < 0 or lbn + count > dev.block_count:
        raise ValueError(f"sectors {lbn} .. {lbn + count - 1} are outside the device "
                         f"(0 .. {dev.block_count - 1})")


class MemoryBlockDevice:
    """A block device held in a ``bytearray``, with an optional injected crash.

    Parameters
    ----------
    block_count : int
        Sectors.
    block_size : int
        Bytes per sector (a power of two >= 512).
    crash_after : int or None
        Accept this many sector writes, then crash: the sector that would be the next one
        is not written, :class:`DeviceCrashed` is raised, and every later write raises too
        (reads still work, so a test can inspect what reached the "disk").
    data : bytes-like, optional
        Initial contents (``block_count * block_size`` bytes), e.g. another device's
        :attr:`data` to "reboot" after a crash.
    memory : sim.memory.Memory-like, optional
        Main memory the device DMAs into and out of in zero time (``read_into`` /
        ``write_from``: a test stand-in for the DMA disk).

    Attributes
    ----------
    reads, writes : int
        Sectors read and written so far.
    crashed : bool
        Whether the injected crash has happened.
    """

    def __init__(self, block_count: int, block_size: int = 512, *, crash_after: int | None = None,
                 data: bytes | bytearray | None = None, memory=None):
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 512 \
                or block_size & (block_size - 1):
            raise ValueError(f"sector size must be a power of two >= 512, not {block_size!r}")
        if isinstance(block_count, bool) or not isinstance(block_count, int) or block_count < 1:
            raise ValueError(f"block count must be a positive int, not {block_count!r}")
        if crash_after is not None and (not isinstance(crash_after, int) or crash_after < 0):
            raise ValueError(f"crash_after must be a non-negative int or None, not {crash_after!r}")
        self.block_size = block_size
        self.block_count = block_count
        if data is None:
            self.data = bytearray(block_count * block_size)
        else:
            if len(data) != block_count * block_size:
                raise ValueError(f"initial data is {len(data)} bytes, not {block_count} x {block_size}")
            self.data = bytearray(data)
        self.crash_after = crash_after
        self.crashed = False
        self.reads = 0
        self.writes = 0
        self.memory = memory
        if memory is None:               # no DMA: a physical cache refuses this device
            self.read_into = self.write_from = None

    async def read(self, lbn: int, count: int = 1) -> bytes:
        _check_range(self, lbn, count)
        self.reads += count
        bs = self.block_size
        return bytes(self.data[lbn * bs:(lbn + count) * bs])

    async def read_into(self, lbn: int, count: int, addr: int, *, requester=None) -> None:
        """Read ``count`` sectors into memory at ``addr`` (zero time)."""
        _check_range(self, lbn, count)
        _check_dma(self.memory, addr, count * self.block_size, requester, write=True)
        self.memory.write(addr, await self.read(lbn, count))

    async def write_from(self, lbn: int, count: int, addr: int, *, requester=None) -> None:
        """Write ``count`` sectors from memory at ``addr`` (zero time)."""
        _check_range(self, lbn, count)
        _check_dma(self.memory, addr, count * self.block_size, requester, write=False)
        await self.write(lbn, self.memory.read(addr, count * self.block_size))

    async def write(self, lbn: int, data: bytes) -> None:
        bs = self.block_size
        if not data or len(data) % bs:
            raise ValueError(f"write of {len(data)} bytes is not a whole number of {bs}-byte sectors")
        _check_range(self, lbn, len(data) // bs)
        for i in range(len(data) // bs):
            if self.crashed or (self.crash_after is not None and self.writes >= self.crash_after):
                self.crashed = True
                raise DeviceCrashed(f"injected crash: sector {lbn + i} not written "
                                    f"(after {self.writes} sector writes)")
            self.data[(lbn + i) * bs:(lbn + i + 1) * bs] = data[i * bs:(i + 1) * bs]
            self.writes += 1

    def reboot(self) -> "MemoryBlockDevice":
        """A fresh device (no crash pending) holding this one's current contents."""
        return MemoryBlockDevice(self.block_count, self.block_size, data=self.data,
                                 memory=self.memory)

    def __repr__(self) -> str:
        return (f"MemoryBlockDevice(blocks={self.block_count}, block_size={self.block_size}, "
                f"crash_after={self.crash_after})")


class ImageBlockDevice:
    """A block device over a disk image (``hw.disk.image.DiskImage`` or anything like it).

    The image is duck-typed (software may not import ``hw.disk.image``): it needs
    ``block_size``, ``block_count``, ``read(lbn, count) -> bytes`` and ``write(lbn, data)``,
    whose per-sector atomicity it keeps.

    Parameters
    ----------
    image : DiskImage-like
        The open image.
    """

    def __init__(self, image):
        for attr in ("block_size", "block_count", "read", "write"):
            if not hasattr(image, attr):
                raise TypeError(f"{image!r} is not a disk image: it has no {attr!r}")
        self.image = image
        self.block_size = image.block_size
        self.block_count = image.block_count

    async def read(self, lbn: int, count: int = 1) -> bytes:
        _check_range(self, lbn, count)
        return self.image.read(lbn, count)

    async def write(self, lbn: int, data: bytes) -> None:
        self.image.write(lbn, bytes(data))

    def __repr__(self) -> str:
        return f"ImageBlockDevice({self.image!r})"


class DriverBlockDevice:
    """A block device over a DMA disk driver (``sw.drivers.disk.DiskDriver`` or alike).

    The driver moves sectors between the disk and simulated memory (``driver.read(lbn, count,
    addr)`` / ``driver.write(lbn, count, addr)``); this adapter stages them through a DMA
    buffer of ``buffer_size`` bytes at ``buffer_addr`` in ``memory`` and splits larger
    requests. The buffer stands for the cache block the DMA would target directly, so moving
    bytes between it and the cache is not charged to the CPU (the driver charges its register
    accesses and interrupts itself). A physical cache has the blocks themselves in memory and
    uses :meth:`read_into` / :meth:`write_from`, which DMA straight to and from them (split
    as ``read`` splits, so the driver sees the same requests).

    Parameters
    ----------
    driver : DiskDriver-like
        With async ``read``/``write`` as above, and ``block_size`` and ``blocks`` known (call
        ``await driver.capacity()`` first, or use :meth:`attach`).
    memory : sim.memory.Memory-like
        ``read(addr, n)`` and ``write(addr, data)``.
    buffer_addr, buffer_size : int
        The DMA buffer (at least one sector).

    Raises
    ------
    ValueError
        If the driver's geometry is unknown or the buffer holds no whole sector.
    """

    def __init__(self, driver, memory, buffer_addr: int, buffer_size: int):
        bs, count = getattr(driver, "block_size", None), getattr(driver, "blocks", None)
        if not isinstance(bs, int) or not isinstance(count, int):
            raise ValueError(f"{driver!r} does not know its geometry yet: await driver.capacity() "
                             f"or use DriverBlockDevice.attach()")
        for name, v in (("buffer_addr", buffer_addr), ("buffer_size", buffer_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, not {v!r}")
        if buffer_size < bs:
            raise ValueError(f"a DMA buffer of {buffer_size} bytes holds no {bs}-byte sector")
        self.driver = driver
        self.memory = memory
        self.buffer_addr = buffer_addr
        self.per_request = buffer_size // bs
        self.block_size = bs
        self.block_count = count

    @classmethod
    async def attach(cls, driver, memory, buffer_addr: int, buffer_size: int) -> "DriverBlockDevice":
        """Ask the driver for the disk's capacity, then adapt it."""
        await driver.capacity()
        return cls(driver, memory, buffer_addr, buffer_size)

    async def read(self, lbn: int, count: int = 1) -> bytes:
        _check_range(self, lbn, count)
        out = bytearray()
        bs, addr = self.block_size, self.buffer_addr
        for first in range(lbn, lbn + count, self.per_request):
            n = min(self.per_request, lbn + count - first)
            await self.driver.read(first, n, addr)
            out += self.memory.read(addr, n * bs)
        return bytes(out)

    async def read_into(self, lbn: int, count: int, addr: int, *, requester=None) -> None:
        """Read ``count`` sectors by DMA into memory at ``addr``, whose pages must be
        ``requester``'s (checked before anything moves; None: the kernel's)."""
        await self._dma(lbn, count, addr, requester, False)

    async def write_from(self, lbn: int, count: int, addr: int, *, requester=None) -> None:
        """Write ``count`` sectors by DMA from memory at ``addr`` (checked as
        :meth:`read_into`)."""
        await self._dma(lbn, count, addr, requester, True)

    async def _dma(self, lbn: int, count: int, addr: int, requester, write: bool) -> None:
        _check_range(self, lbn, count)
        bs = self.block_size
        _check_dma(self.memory, addr, count * bs, requester, write=not write)
        move = self.driver.write if write else self.driver.read
        for i in range(0, count, self.per_request):
            n = min(self.per_request, count - i)
            await move(lbn + i, n, addr + i * bs)

    async def write(self, lbn: int, data: bytes) -> None:
        bs, addr = self.block_size, self.buffer_addr
        if not data or len(data) % bs:
            raise ValueError(f"write of {len(data)} bytes is not a whole number of {bs}-byte sectors")
        count = len(data) // bs
        _check_range(self, lbn, count)
        view = memoryview(bytes(data))
        for i in range(0, count, self.per_request):
            n = min(self.per_request, count - i)
            self.memory.write(addr, view[i * bs:(i + n) * bs])
            await self.driver.write(lbn + i, n, addr)

    def __repr__(self) -> str:
        return f"DriverBlockDevice({self.driver!r}, blocks={self.block_count})"
