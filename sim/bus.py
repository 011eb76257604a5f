"""The host side of the I/O system: an MMIO bus that routes CPU accesses to device registers,
and interrupt lines.

A device (its transaction-level model or a binding to its RTL) is a :class:`BusTarget`:
``read``/``write`` take simulated time (the device's wait states, decided by the device) and
return when the access has completed. The bus knows nothing of devices beyond their address
windows, so a device can be swapped between its model and its RTL without the software
noticing. A transaction-level model gets its bus side, timed as :class:`hw.bus.HostBus`, from
:class:`RegisterPort` (composed through :class:`RegisterTarget`).
"""
from __future__ import annotations

import struct

import bisect
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from .kernel import Event, Kernel
from .time import Clock

_MASK = 0xFFFF_FFFF


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


class RegisterPort:
    """The host-bus side of a device's transaction-level model: one register access at a time.

    Timing follows :class:`hw.bus.HostBus` to the picosecond: a request made at ``t`` waits
    for the bus (concurrent requests are served one at a time, in arrival order), is sampled at
    the edge ``e0`` strictly after the time it gets the bus, takes effect at
    ``e = e0 + wait_cycles`` cycles and completes one cycle later. The device decides what an
    access does through ``peek(offset, e)`` (returns the word read at edge ``e``) and
    ``poke(offset, value, e)``; the port never wakes per cycle. A device model composes one
    port and forwards its :class:`BusTarget` ``read``/``write`` to it.

    Parameters
    ----------
    kernel : Kernel
        The kernel whose time the device lives in.
    clock : Clock
        The device's clock.
    name : str
        The device's name in error messages (e.g. ``"disk controller"``).
    tag : str
        The prefix of the port's kernel event names (``f"{tag}.bus.turn"``).
    window_size : int
        The register window's size in bytes; offsets must be word offsets below it.
    wait_cycles : int
        Wait states between the sampling edge and the access edge.
    peek : callable
        ``peek(offset, e) -> int``: the register word at ``offset`` read at edge ``e``.
    poke : callable
        ``poke(offset, value, e)``: write ``value`` to the register at ``offset`` at edge ``e``.

    Raises
    ------
    TypeError
        If an argument is of the wrong type.
    ValueError
        If ``window_size`` is not a positive multiple of 4 or ``wait_cycles`` is negative.

    Attributes
    ----------
    reads, writes : int
        Accesses served (counted at their access edge).
    stopped : bool
        True after :meth:`stop`.
    """

    def __init__(self, kernel: Kernel, clock: Clock, *, name: str, tag: str, window_size: int,
                 wait_cycles: int, peek: Callable[[int, int], int],
                 poke: Callable[[int, int, int], None]) -> None:
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel must be a sim.kernel.Kernel, not {kernel!r}")
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        for what, v in (("name", name), ("tag", tag)):
            if not isinstance(v, str) or not v:
                raise TypeError(f"{what} must be a non-empty str, not {v!r}")
        for what, v in (("window_size", window_size), ("wait_cycles", wait_cycles)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{what} must be an int, not {v!r}")
        if window_size <= 0 or window_size & 3:
            raise ValueError(f"window_size must be a positive multiple of 4, not {window_size}")
        if wait_cycles < 0:
            raise ValueError(f"wait_cycles must be >= 0, not {wait_cycles}")
        for what, fn in (("peek", peek), ("poke", poke)):
            if not callable(fn):
                raise TypeError(f"{what} must be callable, not {fn!r}")
        self.kernel, self.clock, self.name, self.tag = kernel, clock, name, tag
        self.window_size, self.wait_cycles = window_size, wait_cycles
        self._peek, self._poke, self._p = peek, poke, clock.period
        self._busy = False
        self._turns: list[Event] = []
        self.stopped = False
        self.reads = 0
        self.writes = 0

    async def read(self, offset: int) -> int:
        """Read the word at byte ``offset``; returns ``wait_cycles + 1`` cycles after the
        sampling edge. Bad offsets raise :class:`ValueError` before any time passes."""
        self._check(offset)
        e = await self._access_edge()
        try:
            value = self._peek(offset, e)
            self.reads += 1
            await self.kernel.sleep_until(e + self._p, late=True)
        finally:
            self._release()
        return value

    async def write(self, offset: int, value: int) -> None:
        """Write the 32-bit ``value`` at byte ``offset`` (timing as :meth:`read`)."""
        self._check(offset)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MASK:
            raise ValueError(f"{self.name} register value must be a 32-bit unsigned integer, "
                             f"not {value!r}")
        e = await self._access_edge()
        try:
            self._poke(offset, value, e)
            self.writes += 1
            await self.kernel.sleep_until(e + self._p, late=True)
        finally:
            self._release()

    def stop(self) -> None:
        """Cut the power: later accesses, and those waiting for their edge, raise
        :class:`RuntimeError` (an access already past its edge completes)."""
        self.stopped = True

    def _check(self, offset: int) -> None:
        if isinstance(offset, bool) or not isinstance(offset, int) \
                or not 0 <= offset < self.window_size or offset & 3:
            raise ValueError(f"{self.name} register offset must be a word offset in "
                             f"[0, {self.window_size:#x}), not {offset!r}")

    def _refuse(self) -> None:
        raise RuntimeError(f"{self.name} is stopped (power cut): no bus access")

    async def _access_edge(self) -> int:
        if self.stopped:
            self._refuse()
        if self._busy:
            turn = self.kernel.event(f"{self.tag}.bus.turn")
            self._turns.append(turn)
            await turn
        self._busy = True
        e = self.clock.edge_after(self.kernel.now) + self.wait_cycles * self._p
        await self.kernel.sleep_until(e, late=True)
        if self.stopped:
            self._release()
            self._refuse()
        return e

    def _release(self) -> None:
        if self._turns:
            self._turns.pop(0).set()
        else:
            self._busy = False


class RegisterTarget:
    """A :class:`BusTarget` whose bus side is the :class:`RegisterPort` in ``self.port``.

    A device model subclasses it and sets ``self.port`` in its constructor; ``read``/``write``
    and the access counters are the port's.
    """

    port: RegisterPort

    async def read(self, offset: int) -> int:
        """Read the register at byte ``offset`` (:meth:`RegisterPort.read`)."""
        return await self.port.read(offset)

    async def write(self, offset: int, value: int) -> None:
        """Write the register at byte ``offset`` (:meth:`RegisterPort.write`)."""
        await self.port.write(offset, value)

    @property
    def reads(self) -> int:
        """Register reads served."""
        return self.port.reads

    @property
    def writes(self) -> int:
        """Register writes served."""
        return self.port.writes


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
