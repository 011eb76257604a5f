"""A host-memory bus-functional model for cocotb: the target of a device's :class:`hw.bus.DmaBus`.

* :class:`HostMemory`: framework-free host memory, a byte array in pages with an owner table;
  :meth:`HostMemory.may` is :func:`sim.memory.default_access_check` applied to every page of a
  transfer (the kernel, owner tag 0, and a page's owner may touch it; unowned pages are open),
  the rule the exokernel installs in :class:`sim.memory.Memory`.
* :class:`DmaSignals`: the signals of one DmaBus port, by Amaranth's flattened names
  (``dma__req``, separator ``"__"``, STYLE.md #9); ``err`` and ``owner`` when the port has them.
* :class:`DmaMemory`: the target. It sleeps on ``req`` rising and serves one burst at a time
  (hw/bus.py): a registered ``ack`` per word after a number of wait cycles drawn from a pause
  generator (zero: the earliest the protocol allows, ``ack`` first sampled two edges after the
  one that raised ``req``); a burst touching a page its owner may not touch, or outside memory,
  is refused with ``err`` (after the first word's wait cycles) and moves no byte. Every burst is
  recorded as a :class:`Burst`; protocol violations by the initiator (``addr``, ``count``,
  ``write`` or ``owner`` changing mid-burst, an unaligned address, ``count`` 0, ``w_data`` not
  resolvable) are collected in :attr:`DmaMemory.violations`. A device that drops ``req`` before
  the last word abandons the burst (a reset, as hw/dma.py allows): :attr:`Burst.moved` says how
  many words moved.

Python wakes per word of an active burst (the words' data and random waits are its business),
never while the bus is idle.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from bfm.pauses import next_pause, wait_edges
from sim.memory import default_access_check

__all__ = ["Burst", "DmaMemory", "DmaSignals", "HostMemory"]


class HostMemory:
    """Host memory as the bench sees it: bytes, pages and their owners.

    Parameters
    ----------
    size : int
        Bytes; a positive multiple of ``page_size``.
    page_size : int
        A power of two (default 4096, the R3000's page).

    Raises
    ------
    ValueError
        For a bad size or page size.
    """

    def __init__(self, *, size: int, page_size: int = 4096) -> None:
        if not isinstance(page_size, int) or page_size <= 0 or page_size & (page_size - 1):
            raise ValueError(f"page_size must be a positive power of two, not {page_size!r}")
        if not isinstance(size, int) or size <= 0 or size % page_size:
            raise ValueError(f"size must be a positive multiple of page_size {page_size}, "
                             f"not {size!r}")
        self.size, self.page_size = size, page_size
        self.data = bytearray(size)
        self._owners: dict[int, int] = {}

    def _span(self, addr: int, n: int) -> None:
        if not isinstance(addr, int) or not isinstance(n, int) or n < 0:
            raise ValueError(f"a span is a start and a length >= 0, not {addr!r}, {n!r}")
        if addr < 0 or addr + n > self.size:
            raise ValueError(f"[{addr:#x}, +{n}) is outside memory [0, {self.size:#x})")

    def inside(self, addr: int, n: int) -> bool:
        """True when ``[addr, addr + n)`` lies inside memory."""
        return 0 <= addr and addr + n <= self.size

    def set_owner(self, page: int, owner: int | None) -> None:
        """Give ``page`` to owner tag ``owner`` (1 .. 255), or make it unowned (None)."""
        if not isinstance(page, int) or not 0 <= page < self.size // self.page_size:
            raise ValueError(f"page must be 0 .. {self.size // self.page_size - 1}, not {page!r}")
        if owner is None:
            self._owners.pop(page, None)
        elif not isinstance(owner, int) or isinstance(owner, bool) or not 1 <= owner <= 255:
            raise ValueError(f"an owner tag is 1 .. 255 (0 is the kernel), not {owner!r}")
        else:
            self._owners[page] = owner

    def own(self, addr: int, n: int, owner: int | None) -> None:
        """:meth:`set_owner` for every page ``[addr, addr + n)`` touches."""
        self._span(addr, n)
        for page in range(addr // self.page_size, (addr + n - 1) // self.page_size + 1):
            self.set_owner(page, owner)

    def owner(self, page: int) -> int | None:
        """The owner tag of ``page`` (None: unowned)."""
        return self._owners.get(page)

    def may(self, addr: int, n: int, owner: int, write: bool) -> bool:
        """May a transfer on behalf of owner tag ``owner`` (0: the kernel) touch ``[addr,
        addr + n)``? False also for a span outside memory."""
        if not self.inside(addr, n):
            return False
        requester = None if owner == 0 else owner
        return all(default_access_check(page, self._owners.get(page), requester, write)
                   for page in range(addr // self.page_size, (addr + n - 1) // self.page_size + 1))

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (the CPU's view: no ownership check)."""
        self._span(addr, n)
        return bytes(self.data[addr:addr + n])

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` at ``addr`` (the CPU's view)."""
        data = bytes(data)
        self._span(addr, len(data))
        self.data[addr:addr + len(data)] = data

    def read_words(self, addr: int, n: int) -> list[int]:
        """``n`` little-endian 32-bit words at ``addr``."""
        return list(struct.unpack(f"<{n}I", self.read(addr, 4 * n)))

    def write_words(self, addr: int, words) -> None:
        """Store 32-bit ``words`` little-endian at ``addr``."""
        words = list(words)
        self.write(addr, struct.pack(f"<{len(words)}I", *words))


@dataclass(frozen=True)
class Burst:
    """One burst the target saw.

    Parameters
    ----------
    write : bool
        Device to memory.
    addr, count, owner : int
        As requested.
    refused : bool
        Answered with ``err`` (no word moved).
    moved : int
        Words transferred (``count`` for a whole burst; fewer if the device abandoned it).
    start, end : int
        Edge numbers (time / period) at which ``req`` rose and at which the burst's last
        ``ack`` or its ``err`` was sampled.
    """

    write: bool
    addr: int
    count: int
    owner: int
    refused: bool
    moved: int
    start: int
    end: int


class DmaSignals:
    """The signals of one DmaBus port of a cocotb design.

    Parameters
    ----------
    dut
        The cocotb handle of the design.
    prefix : str
        Name of the port (default ``"dma"``).
    separator : str
        Separator of flattened names (default ``"__"``, Amaranth's).

    Raises
    ------
    AttributeError
        If a required signal is missing (the message names it).
    """

    MEMBERS = ("req", "write", "addr", "count", "w_data", "r_data", "ack")
    OPTIONAL = ("err", "owner")

    def __init__(self, dut: Any, *, prefix: str = "dma", separator: str = "__") -> None:
        for member in self.MEMBERS + self.OPTIONAL:
            name = f"{prefix}{separator}{member}"
            try:
                handle = getattr(dut, name)
            except AttributeError:
                if member in self.OPTIONAL:
                    handle = None
                else:
                    raise AttributeError(f"the design has no DmaBus signal {name!r}") from None
            setattr(self, member, handle)
        self.name = prefix


def _resolved(value: Any) -> int:
    """A cocotb logic value as an int, its X/Z/U/W/- bits taken as 0."""
    if value.is_resolvable:
        return int(value)
    return int("".join(c if c in "01" else "0" for c in str(value)), 2)


def _now_edge(period: int) -> int:
    return round(get_sim_time("ps")) // period


class DmaMemory:
    """Host memory answering one DmaBus in a cocotb bench.

    Parameters
    ----------
    bus : DmaSignals
        The port.
    clock
        The clock handle of the bus.
    memory : HostMemory
        The bytes and the owner table.
    period_ps : int
        The clock period (to number edges in :class:`Burst`).
    waits : iterator of int, optional
        Wait cycles before each word's ``ack`` (or the ``err``): ``next(waits)`` per word
        (None: none, every word back to back, the first as early as the protocol allows).
    callback : callable, optional
        Called with each :class:`Burst` when it ends.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter (the message names it).
    """

    def __init__(self, bus: DmaSignals, clock: Any, *, memory: HostMemory, period_ps: int,
                 waits: Iterator[int] | None = None,
                 callback: Callable[[Burst], None] | None = None) -> None:
        if not isinstance(bus, DmaSignals):
            raise TypeError(f"bus must be a DmaSignals, not {bus!r}")
        if not isinstance(memory, HostMemory):
            raise TypeError(f"memory must be a HostMemory, not {memory!r}")
        if not isinstance(period_ps, int) or isinstance(period_ps, bool) or period_ps <= 0:
            raise ValueError(f"period_ps must be a positive int, not {period_ps!r}")
        self.bus, self.clock, self.memory, self.period = bus, clock, memory, period_ps
        self.waits = waits
        self.callback = callback
        #: Every burst served, in order.
        self.bursts: list[Burst] = []
        #: The initiator's protocol violations (messages); a bench asserts it stays empty.
        self.violations: list[str] = []
        self.words_read = self.words_written = self.refusals = 0
        #: Bursts whose ``req`` dropped before their last word or their ``err`` (a device
        #: reset; a bench that resets nothing mid-burst expects 0).
        self.abandoned = 0
        bus.ack.value = 0
        bus.r_data.value = 0
        if bus.err is not None:
            bus.err.value = 0
        self._task = cocotb.start_soon(self._run())

    def set_waits(self, waits: Iterator[int] | None) -> None:
        """Replace the pause generator (None: no wait states)."""
        self.waits = waits

    def _wait(self) -> int:
        return next_pause(self.waits, f"{self.bus.name} wait")

    def _request(self) -> tuple[int, int, int, int]:
        b = self.bus
        owner = 0 if b.owner is None else int(b.owner.value)
        return int(b.write.value), int(b.addr.value), int(b.count.value), owner

    def _violation(self, message: str) -> None:
        self.violations.append(f"{self.bus.name} @edge {_now_edge(self.period)}: {message}")

    async def _idle_cycles(self, n: int) -> None:
        if n:
            await wait_edges(self.clock, n, period_ps=self.period)

    async def _run(self) -> None:
        b, clk, mem = self.bus, self.clock, self.memory
        while True:
            await RisingEdge(b.req)
            await ReadOnly()
            if not int(b.req.value):
                # A pulse within the time step (Icarus shows the delta cycles of the card's
                # combinational logic as its registers change): the bus is synchronous, and
                # only the settled value at an edge is a request.
                continue
            start = _now_edge(self.period)
            req = self._request()
            write, addr, count, owner = req
            if addr % 4 or count == 0:
                self._violation(f"burst at {addr:#x} of {count} words: the address must be "
                                f"word aligned and the count at least 1")
            await RisingEdge(clk)               # the first edge that samples the request
            if not mem.may(addr, 4 * count, owner, bool(write)):
                if b.err is None:
                    self._violation(f"refused burst at {addr:#x} on a bus without err")
                await self._idle_cycles(self._wait())
                if b.err is not None:
                    b.err.value = 1
                await ReadOnly()
                if not int(b.req.value):        # abandoned before the answer
                    self.abandoned += 1
                await RisingEdge(clk)           # the device samples err here and drops req
                if b.err is not None:
                    b.err.value = 0
                self.refusals += 1
                self._end(Burst(bool(write), addr, count, owner, True, 0, start,
                                _now_edge(self.period)))
                continue
            moved = 0
            for i in range(count):
                wait = self._wait()
                if wait:
                    b.ack.value = 0
                    await self._idle_cycles(wait)
                a = addr + 4 * i
                if not write:
                    b.r_data.value = int.from_bytes(mem.data[a:a + 4], "little")
                b.ack.value = 1
                await ReadOnly()
                if not int(b.req.value):     # abandoned (the device was reset): allowed
                    self.abandoned += 1
                    break
                if self._request() != req:
                    self._violation(f"the request changed mid-burst: {req} became "
                                    f"{self._request()}")
                if write:
                    word = b.w_data.value
                    if not word.is_resolvable:   # stored with its unknown bits 0
                        self._violation(f"w_data {word} in word {i} of the burst at {addr:#x}")
                    mem.data[a:a + 4] = _resolved(word).to_bytes(4, "little")
                await RisingEdge(clk)           # the device samples this ack
                moved += 1
            b.ack.value = 0
            if write:
                self.words_written += moved
            else:
                self.words_read += moved
            self._end(Burst(bool(write), addr, count, owner, False, moved, start,
                            _now_edge(self.period)))

    def _end(self, burst: Burst) -> None:
        self.bursts.append(burst)
        if self.callback is not None:
            self.callback(burst)
