"""The host side of the I/O system: an MMIO bus that routes CPU accesses to device registers,
and interrupt lines.

A device (its transaction-level model or a binding to its RTL) is a :class:`BusTarget`:
``read``/``write`` take simulated time (the device's wait states, decided by the device) and
return when the access has completed. The bus knows nothing of devices beyond their address
windows, so a device can be swapped between its model and its RTL without the software
noticing.
"""
from __future__ import annotations

import struct

import bisect
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from .kernel import Event, Kernel


class BusError(Exception):
    """An access to an address no device answers, or an unaligned/oversized access."""


@runtime_checkable
class BusTarget(Protocol):
    """What a device offers the bus: word-wide register/memory access at a byte offset."""

    async def read(self, offset: int) -> int: ...

    async def write(self, offset: int, value: int) -> None: ...


@dataclass(frozen=True)
class Window:
    base: int
    size: int
    target: BusTarget
    name: str

    def __contains__(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.size


class Bus:
    """Routes 32-bit accesses by address to the mapped targets' windows."""

    def __init__(self, kernel: Kernel, name: str = "bus"):
        self.kernel = kernel
        self.name = name
        self._bases: list[int] = []
        self._windows: list[Window] = []
        self.reads = 0
        self.writes = 0

    def map(self, base: int, size: int, target: BusTarget, name: str) -> Window:
        """Map ``target`` at ``[base, base + size)``; windows may not overlap."""
        if size <= 0 or base < 0:
            raise ValueError(f"bad window for {name!r}: base {base:#x} size {size:#x}")
        for w in self._windows:
            if base < w.base + w.size and w.base < base + size:
                raise ValueError(f"window {name!r} at {base:#x}+{size:#x} overlaps {w.name!r} at {w.base:#x}+{w.size:#x}")
        win = Window(base, size, target, name)
        i = bisect.bisect(self._bases, base)
        self._bases.insert(i, base)
        self._windows.insert(i, win)
        return win

    def window(self, addr: int) -> Window:
        i = bisect.bisect(self._bases, addr) - 1
        if i >= 0 and addr in self._windows[i]:
            return self._windows[i]
        raise BusError(f"{self.name}: no device at address {addr:#010x}")

    async def read(self, addr: int) -> int:
        if addr & 3:
            raise BusError(f"{self.name}: unaligned word read at {addr:#010x}")
        w = self.window(addr)
        self.reads += 1
        return await w.target.read(addr - w.base)

    async def write(self, addr: int, value: int) -> None:
        if addr & 3:
            raise BusError(f"{self.name}: unaligned word write at {addr:#010x}")
        if not 0 <= value < 1 << 32:
            raise BusError(f"{self.name}: value {value!r} does not fit a 32-bit word")
        w = self.window(addr)
        self.writes += 1
        await w.target.write(addr - w.base, value)


    def _block_window(self, addr: int, n: int, what: str) -> Window:
        if addr & 3:
            raise BusError(f"{self.name}: unaligned block {what} at {addr:#010x}")
        if not isinstance(n, int) or n < 0:
            raise BusError(f"{self.name}: block {what} of {n!r} words")
        w = self.window(addr)
        if n and addr + 4 * n > w.base + w.size:
            raise BusError(f"{self.name}: block {what} of {n} words at {addr:#010x} runs past "
                           f"the end of {w.name!r}")
        return w

    async def read_block(self, addr: int, n: int) -> list[int]:
        """``n`` consecutive word reads from ``addr``, back to back, as one transaction.

        A target with ``read_block(offset, n)`` serves the whole block (an RTL binding runs it
        inside the simulator); any other target is read word by word. Either way the device
        sees the same accesses at the same times as ``n`` reads issued one after another.
        """
        w = self._block_window(addr, n, "read")
        self.reads += n
        if not n:
            return []
        fn = getattr(w.target, "read_block", None)
        if fn is not None:
            return list(await fn(addr - w.base, n))
        return [await w.target.read(addr - w.base + 4 * i) for i in range(n)]

    async def write_block(self, addr: int, words) -> None:
        """Consecutive word writes of ``words`` from ``addr``, back to back (see
        :meth:`read_block`)."""
        words = list(words)
        w = self._block_window(addr, len(words), "write")
        try:
            struct.pack(f"<{len(words)}I", *words)      # checks every word at C speed
        except (struct.error, TypeError):
            for v in words:
                if not isinstance(v, int) or not 0 <= v < 1 << 32:
                    raise BusError(f"{self.name}: value {v!r} does not fit a 32-bit word") from None
            raise
        self.writes += len(words)
        if not words:
            return
        fn = getattr(w.target, "write_block", None)
        if fn is not None:
            await fn(addr - w.base, words)
            return
        for i, v in enumerate(words):
            await w.target.write(addr - w.base + 4 * i, v)


class IrqLine:
    """A level-sensitive interrupt line driven by one device.

    Devices call :meth:`set`/:meth:`clear` (or ``drive(level)``); the CPU (or a test) awaits
    :meth:`wait_high` or subscribes with :meth:`on_change`.
    """

    def __init__(self, kernel: Kernel, name: str):
        self.kernel = kernel
        self.name = name
        self.level = 0
        self._high = Event(kernel, f"{name}.high")
        self._listeners: list[Callable[[int], None]] = []
        self.raised = 0

    def drive(self, level: int) -> None:
        level = 1 if level else 0
        if level == self.level:
            return
        self.level = level
        if level:
            self.raised += 1
            self._high.set()
        else:
            self._high.clear()
        for fn in self._listeners:
            fn(level)

    def set(self) -> None:
        self.drive(1)

    def clear(self) -> None:
        self.drive(0)

    def wait_high(self):
        """Await until the line is high (returns at once if it already is)."""
        return self._high.wait()

    def on_change(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)
