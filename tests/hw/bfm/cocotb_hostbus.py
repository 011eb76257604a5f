"""The host bus's bus-functional models for cocotb (Icarus and Verilator), in cocotbext style.

* :class:`HostBusSignals`: the six signals of one :class:`hw.bus.HostBus` port of a design,
  found by Amaranth's flattened names (``bus__addr``, separator ``"__"``, STYLE.md #9).
* :class:`HostBusDriver`: the initiator. ``await read(offset)`` / ``await write(offset, value)``
  run one access in the calling task; ``send(txn)`` / ``recv()`` queue transactions for a
  background task. Optional reset signal and pause generator (idle cycles before a request).
* :class:`HostBusMonitor`: rebuilds :class:`~bfm.transaction.HostBusTransaction` objects
  (offset, data, kind, first sampling edge, completion edge) from the signals alone and hands
  them to a callback (a :class:`~bfm.scoreboard.Scoreboard`) or to :meth:`~HostBusMonitor.recv`.

Both follow hw/bus.py and wake Python per access, never per clock cycle: the driver on ``ack``
rising and on one clock edge after it; the monitor on ``ack`` rising and on the request lines
changing.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import cocotb
from cocotb.queue import Queue
from cocotb.simtime import get_sim_time
from cocotb.triggers import (Event, FallingEdge, First, Lock, ReadOnly, RisingEdge, Timer,
                             ValueChange)

from bfm.transaction import HostBusTransaction

__all__ = ["BusReset", "BusTimeout", "HostBusDriver", "HostBusMonitor", "HostBusSignals", "PHASES"]

#: The phases a driver may present requests in (see :class:`HostBusDriver`).
PHASES = ("rising", "falling")


class BusTimeout(AssertionError):
    """The target did not acknowledge an access in time."""


class BusReset(AssertionError):
    """An access was started while the driver's reset signal was asserted."""


class HostBusSignals:
    """The signals of one HostBus port of a cocotb design.

    Parameters
    ----------
    dut
        The cocotb handle of the design.
    prefix : str
        Name of the bus port (default ``"bus"``).
    separator : str
        Separator of flattened names (default ``"__"``, Amaranth's).

    Raises
    ------
    AttributeError
        If the design has no such signal (the message names it).
    """

    MEMBERS = ("addr", "w_data", "w_en", "r_en", "r_data", "ack")

    def __init__(self, dut: Any, *, prefix: str = "bus", separator: str = "__") -> None:
        for member in self.MEMBERS:
            name = f"{prefix}{separator}{member}"
            try:
                setattr(self, member, getattr(dut, name))
            except AttributeError:
                raise AttributeError(f"the design has no HostBus signal {name!r}") from None
        self.name = prefix
        #: The window in bytes: 4 bytes per word address.
        self.window = 4 << len(self.addr)

    def idle(self) -> None:
        """Drive the request lines idle (also before the first clock edge)."""
        for s in (self.addr, self.w_data, self.w_en, self.r_en):
            s.value = 0

    def word(self, offset: int) -> int:
        """The word address of byte ``offset``, checked against the window."""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"{self.name}: offset must be an int, not {offset!r}")
        if offset % 4 or not 0 <= offset < self.window:
            raise ValueError(f"{self.name}: offset must be word-aligned inside the "
                             f"{self.window:#x}-byte window, not {offset:#x}")
        return offset // 4


def _now() -> int:
    """The simulation time in whole picoseconds (cocotb returns a float)."""
    return round(get_sim_time("ps"))


def _first_edge_after(t: int, edge: int, period: int) -> int:
    """The first rising edge strictly after ``t`` on the grid of ``edge`` (``t <= edge``)."""
    return edge - period * ((edge - t - 1) // period)


def _check_period(period_ps: Any) -> int:
    if not isinstance(period_ps, int) or isinstance(period_ps, bool) or period_ps <= 0:
        raise ValueError(f"period_ps must be a positive int, not {period_ps!r}")
    return period_ps


class HostBusDriver:
    """A cocotb initiator for one HostBus (single 32-bit accesses, one at a time).

    The request is presented, held until ``ack`` is seen high, and dropped in the ``ack`` cycle
    (hw/bus.py), in one of two phases:

    * ``"rising"``: presented at once (call from just after a rising edge, as a synchronous
      testbench does); ``r_data`` is sampled in the ``ack`` cycle and the request dropped just
      after the next rising edge, where the call returns: the access's completion edge.
    * ``"falling"``: presented at the next falling edge (callers may be anywhere, even exactly
      on a rising edge), or at once when the previous access ended at this very instant (back to
      back); sampled and dropped at the falling edge in the middle of the ``ack`` cycle, where
      the call returns, half a cycle before the completion edge.

    Either way the target first sees a back-to-back request one cycle after the completion edge.

    Parameters
    ----------
    bus : HostBusSignals
        The signals.
    clock
        The clock handle of the bus.
    period_ps : int
        The clock period (for the time-out and the transactions' times).
    phase : str
        ``"rising"`` or ``"falling"``.
    timeout_cycles : int
        Cycles to wait for ``ack`` before raising :class:`BusTimeout`.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter (the message names it).
    """

    def __init__(self, bus: HostBusSignals, clock: Any, *, period_ps: int, phase: str = "rising",
                 timeout_cycles: int = 64) -> None:
        if not isinstance(bus, HostBusSignals):
            raise TypeError(f"bus must be a HostBusSignals, not {bus!r}")
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles <= 0:
            raise ValueError(f"timeout_cycles must be a positive int, not {timeout_cycles!r}")
        self.bus, self.clock, self.phase = bus, clock, phase
        self.period = _check_period(period_ps)
        self._timeout_ps = timeout_cycles * self.period
        self._lock = Lock()
        self._free_at: int | None = None     # when the last access released the bus (ps)
        self._last_end = -1                  # its completion edge (ps)
        self._pause: Iterator[int] | None = None
        self._reset: Any = None
        self._reset_level = 1
        self._queue: Queue[HostBusTransaction] = Queue()
        self._done: Queue[HostBusTransaction] = Queue()
        self._idle = Event()
        self._idle.set()
        self._worker: Any = None
        #: Completed accesses.
        self.reads = 0
        self.writes = 0
        bus.idle()

    # --- configuration -------------------------------------------------------------------------
    def set_pause_generator(self, generator: Iterator[int] | None) -> None:
        """Insert ``next(generator)`` idle cycles before each request (None: no gaps): the
        request is first sampled ``1 + gap`` cycles after the previous completion edge."""
        self._pause = generator

    def set_reset(self, signal: Any, *, active_level: bool = True) -> None:
        """Watch ``signal``: while it is at ``active_level`` the request lines are held idle,
        queued transactions are dropped and a new access raises :class:`BusReset`."""
        self._reset, self._reset_level = signal, int(active_level)
        cocotb.start_soon(self._watch_reset())

    def _in_reset(self) -> bool:
        if self._reset is None:
            return False
        v = self._reset.value
        return v.is_resolvable and int(v) == self._reset_level

    async def _watch_reset(self) -> None:
        while True:
            await ValueChange(self._reset)
            if self._in_reset():
                self.bus.idle()
                while not self._queue.empty():
                    self._queue.get_nowait()

    # --- single accesses -------------------------------------------------------------------------
    async def read(self, offset: int) -> int:
        """Read the word at byte ``offset``."""
        return (await self._access(HostBusTransaction.reading(offset))).data

    async def write(self, offset: int, value: int) -> None:
        """Write the 32-bit ``value`` at byte ``offset``."""
        await self._access(HostBusTransaction.writing(offset, value))

    async def _present_at_phase(self, now: int) -> None:
        # ``gap`` idle cycles: the target's next request starts ``gap`` cycles later than
        # back to back would (one cycle after the previous completion edge).
        gap = next(self._pause) if self._pause is not None else 0
        if not isinstance(gap, int) or gap < 0:
            raise ValueError(f"{self.bus.name}: the pause generator gave {gap!r}, not a "
                             f"non-negative int")
        if self.phase == "rising":
            edges, edge = gap, RisingEdge
        else:                        # back to back without a gap: present in the ack cycle
            edges, edge = (0 if gap == 0 and self._free_at == now else gap + 1), FallingEdge
        for _ in range(edges):
            await edge(self.clock)

    async def _access(self, txn: HostBusTransaction) -> HostBusTransaction:
        b = self.bus
        word = b.word(txn.addr)
        async with self._lock:
            if self._in_reset():
                raise BusReset(f"{b.name}: access to {txn.addr:#x} while in reset")
            await self._present_at_phase(_now())
            presented = _now()
            b.addr.value = word
            b.w_data.value = txn.data if txn.write else 0
            b.w_en.value = int(txn.write)
            b.r_en.value = int(not txn.write)
            ack = RisingEdge(b.ack)
            if await First(ack, Timer(self._timeout_ps, unit="ps")) is not ack:
                b.w_en.value = 0
                b.r_en.value = 0
                kind = "write" if txn.write else "read"
                raise BusTimeout(f"{b.name}: no ack for the {kind} of offset {txn.addr:#x} "
                                 f"within {self._timeout_ps} ps")
            acked = _now()
            if self.phase == "falling":
                await FallingEdge(self.clock)        # the middle of the ack cycle
                if not int(b.ack.value):
                    raise BusTimeout(f"{b.name}: ack of offset {txn.addr:#x} was not high for "
                                     f"a whole cycle")
                data = self._sample(txn)
            else:
                await ReadOnly()
                data = self._sample(txn)
                await RisingEdge(self.clock)         # the initiator sees ack: completion
            b.w_en.value = 0
            b.r_en.value = 0
            self._free_at = _now()
            start = max(_first_edge_after(presented, acked, self.period),
                        self._last_end + self.period)
            self._last_end = acked + self.period
            if txn.write:
                self.writes += 1
            else:
                self.reads += 1
            return HostBusTransaction(txn.addr, txn.write, data, start, self._last_end)

    def _sample(self, txn: HostBusTransaction) -> int:
        if txn.write:
            return txn.data
        v = self.bus.r_data.value
        if not v.is_resolvable:
            raise AssertionError(f"{self.bus.name}: r_data {v} reading offset {txn.addr:#x} at "
                                 f"{_now()} ps")
        return int(v)

    # --- the queue -------------------------------------------------------------------------------
    def send_nowait(self, txn: HostBusTransaction) -> None:
        """Queue ``txn`` (a :meth:`HostBusTransaction.reading` or ``writing``)."""
        if not isinstance(txn, HostBusTransaction):
            raise TypeError(f"send takes a HostBusTransaction, not {txn!r}")
        self.bus.word(txn.addr)
        if self._worker is None:
            self._worker = cocotb.start_soon(self._run_queue())
        self._idle.clear()
        self._queue.put_nowait(txn)

    async def send(self, txn: HostBusTransaction) -> None:
        """Queue ``txn``; returns at once (the queue is unbounded)."""
        self.send_nowait(txn)

    async def recv(self) -> HostBusTransaction:
        """The next completed queued transaction, with its data and times."""
        return await self._done.get()

    def recv_nowait(self) -> HostBusTransaction:
        """Like :meth:`recv`; raises :class:`cocotb.queue.QueueEmpty` if none completed."""
        return self._done.get_nowait()

    def idle(self) -> bool:
        """True when no queued transaction is waiting or running."""
        return self._idle.is_set()

    async def wait(self) -> None:
        """Wait until every queued transaction has completed."""
        await self._idle.wait()

    async def _run_queue(self) -> None:
        while True:
            txn = await self._queue.get()
            self._done.put_nowait(await self._access(txn))
            if self._queue.empty():
                self._idle.set()


class HostBusMonitor:
    """Watches one HostBus and rebuilds its transactions from the signals.

    Each ``ack`` pulse is one transaction: its kind, offset and written data as the request
    lines hold them, the read data from ``r_data``, sampled in the ``ack`` cycle. Its ``start``
    is the first rising edge after the request lines rose, or one cycle after the previous
    completion for a request held or re-presented back to back (the target ignores the ``ack``
    cycle); its ``end`` is one cycle after ``ack`` rose.

    Parameters
    ----------
    bus : HostBusSignals
        The signals.
    period_ps : int
        The bus clock's period.
    callback : callable, optional
        Called with each transaction; without one they queue for :meth:`recv`.
    """

    def __init__(self, bus: HostBusSignals, *, period_ps: int,
                 callback: Callable[[HostBusTransaction], None] | None = None) -> None:
        if not isinstance(bus, HostBusSignals):
            raise TypeError(f"bus must be a HostBusSignals, not {bus!r}")
        self.bus = bus
        self.period = _check_period(period_ps)
        self.callback = callback
        self.count = 0
        self._queue: Queue[HostBusTransaction] = Queue()
        self._task = cocotb.start_soon(self._run())

    async def recv(self) -> HostBusTransaction:
        return await self._queue.get()

    def empty(self) -> bool:
        return self._queue.empty()

    def _requesting(self) -> bool:
        b = self.bus
        return any(v.is_resolvable and int(v) for v in (b.w_en.value, b.r_en.value))

    async def _run(self) -> None:
        b, period = self.bus, self.period
        since: int | None = None     # when the request lines last rose; -1: held past an ack
        last_end = -1
        while True:
            ack = RisingEdge(b.ack)
            fired = await First(ack, ValueChange(b.w_en), ValueChange(b.r_en))
            now = _now()
            if fired is not ack:
                if not self._requesting():
                    since = None
                elif since is None:
                    since = now
                continue
            await ReadOnly()
            write = bool(int(b.w_en.value))
            data = int(b.w_data.value if write else b.r_data.value)
            if since is None:        # the request rose before the monitor started
                start = None
            else:
                start = max(_first_edge_after(since, now, period) if since >= 0 else 0,
                            last_end + period)
            last_end = now + period
            since = -1
            txn = HostBusTransaction(4 * int(b.addr.value), write, data, start, last_end)
            self.count += 1
            if self.callback is not None:
                self.callback(txn)
            else:
                self._queue.put_nowait(txn)
