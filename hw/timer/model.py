"""The timer's transaction-level model: the RTL's registers and cycle timing, without clocking.

The model never wakes per clock cycle. It keeps the counter as a linear law (``COUNT`` had
value ``c0`` at edge ``s`` and falls by one per edge), computes its state at any edge
arithmetically, and schedules a kernel callback only at the underflow that raises the irq.
Bus accesses follow :class:`hw.bus.HostBus` to the picosecond: a request made at ``t`` is
acted on at the first rising edge ``e0`` strictly after ``t`` and completes at ``e0 + 1``
cycle; concurrent requests from several tasks are served one at a time in arrival order,
as by the RTL bus initiator. Semantics: :mod:`hw.timer.registers`.
"""
from __future__ import annotations

from typing import Callable

from sim.bus import IrqLine
from sim.kernel import Event, Kernel
from sim.time import Clock

from .registers import WINDOW_SIZE, Ctrl, Reg, Status

__all__ = ["TimerModel"]

_MASK = 0xFFFF_FFFF


class TimerModel:
    """Transaction-level model of :class:`hw.timer.gateware.Timer`; a :class:`sim.bus.BusTarget`.

    Parameters
    ----------
    kernel : Kernel
        The kernel whose time the model lives in.
    clock : Clock
        The timer's clock (its rising edges at ``k * period``).
    irq : IrqLine
        The line the model drives (``STATUS.Zero and CTRL.IrqEn``).

    Raises
    ------
    TypeError
        If ``clock`` is not a :class:`sim.time.Clock` or ``irq`` not an :class:`IrqLine`.
    """

    def __init__(self, kernel: Kernel, clock: Clock, irq: IrqLine):
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        self.kernel = kernel
        self.clock = clock
        self.irq = irq
        self._p = clock.period
        # Register state "after edge _at" (reset state before any edge).
        self._at = -self._p
        self.en = self.periodic = self.irq_en = self.zero = 0
        self.load = 0
        self._count = 0          # COUNT while stopped
        self._s = 0              # while running: COUNT was _c0 in the cycle starting at edge _s
        self._c0 = 0
        self._pending_edge: int | None = None   # the edge a bus write is waiting to act on
        self._cancel_cb: Callable[[], None] | None = None
        self._busy = False
        self._queue: list[Event] = []
        self.reads = 0
        self.writes = 0

    # -- BusTarget -------------------------------------------------------------------------
    async def read(self, offset: int) -> int:
        """Read the register at byte ``offset``; takes two cycles from the next edge."""
        self._check(offset)
        await self._acquire()
        k, p = self.kernel, self._p
        edge = self.clock.edge_after(k.now)
        # r_data is registered at `edge` from the values of the cycle before it.
        self._advance(edge - p)
        value = self._peek(offset)
        self._update_irq()
        self._schedule()
        self.reads += 1
        await k.sleep_until(edge + p, late=True)
        self._release()
        return value

    async def write(self, offset: int, value: int) -> None:
        """Write ``value`` to the register at byte ``offset``; takes two cycles from the next edge."""
        self._check(offset)
        if not isinstance(value, int) or not 0 <= value <= _MASK:
            raise ValueError(f"timer write value must be a 32-bit unsigned integer, not {value!r}")
        await self._acquire()
        k, p = self.kernel, self._p
        edge = self.clock.edge_after(k.now)
        self._advance(edge - p)
        self._update_irq()
        self._pending_edge = edge          # the underflow callback at `edge` defers to us
        await k.sleep_until(edge, late=True)
        self._edge(edge, offset, value)
        self._pending_edge = None
        self._update_irq()
        self._schedule()
        self.writes += 1
        await k.sleep_until(edge + p, late=True)
        self._release()

    # -- inspection ------------------------------------------------------------------------
    def count_at(self, edge: int) -> int:
        """COUNT in the cycle starting at ``edge`` (no later bus write assumed)."""
        if self.en:
            return self._c0 - (edge - self._s) // self._p if edge >= self._s else self._c0
        return self._count

    # -- internals -------------------------------------------------------------------------
    def _check(self, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0 or offset >= WINDOW_SIZE or offset & 3:
            raise ValueError(f"timer register offset must be a word offset in "
                             f"[0, {WINDOW_SIZE:#x}), not {offset!r}")

    async def _acquire(self) -> None:
        # One access at a time, in arrival order (the bus has one initiator).
        if self._busy:
            ev = self.kernel.event("timer.bus.turn")
            self._queue.append(ev)
            await ev
        self._busy = True

    def _release(self) -> None:
        if self._queue:
            self._queue.pop(0).set()       # hand the bus over; _busy stays True
        else:
            self._busy = False

    def _peek(self, offset: int) -> int:
        """Register value after edge ``_at`` (what a read sampled at ``_at + 1`` returns)."""
        if offset == Reg.Ctrl:
            return (Ctrl.En * self.en) | (Ctrl.Periodic * self.periodic) | (Ctrl.IrqEn * self.irq_en)
        if offset == Reg.Load:
            return self.load
        if offset == Reg.Count:
            return self.count_at(self._at)
        if offset == Reg.Status:
            return Status.Zero * self.zero
        return 0

    def _underflow_edge(self) -> int:
        return self._s + (self._c0 + 1) * self._p

    def _advance(self, y: int) -> None:
        """Bring the state to "after edge ``y``", with no bus write on the way."""
        if y < self._at:
            raise AssertionError(f"timer model asked to go back from edge {self._at} to {y}")
        p = self._p
        while self.en and self._underflow_edge() <= y:
            u = self._underflow_edge()
            self.zero = 1
            if self.periodic:
                # Skip whole periods at once: the law repeats every LOAD + 1 cycles.
                span = (self.load + 1) * p
                self._s = u + (y - u) // span * span
                self._c0 = self.load
                break
            self.en = 0
            self._count = 0
        self._at = max(self._at, y)

    def _edge(self, x: int, offset: int, value: int) -> None:
        """Edge ``x`` with a bus write, exactly as the RTL's statements order it."""
        p = self._p
        self._advance(x - p)
        en, load = self.en, self.load
        count = self.count_at(x - p)
        n_en, n_count, n_zero = en, count, self.zero
        if offset == Reg.Status and value & Status.Zero:
            n_zero = 0
        if en:
            if count == 0:
                n_zero = 1                 # setting beats the W1C on the same edge
                if self.periodic:
                    n_count = load
                else:
                    n_en = 0
            else:
                n_count = count - 1
        if offset == Reg.Ctrl:
            n_en = 1 if value & Ctrl.En else 0
            self.periodic = 1 if value & Ctrl.Periodic else 0
            self.irq_en = 1 if value & Ctrl.IrqEn else 0
            if n_en and not en:
                n_count = load             # start
        elif offset == Reg.Load:
            self.load = value
        self.en, self.zero = n_en, n_zero
        if n_en:
            self._s, self._c0 = x, n_count
        else:
            self._count = n_count
        self._at = x

    def _update_irq(self) -> None:
        self.irq.drive(self.zero & self.irq_en)

    def _schedule(self) -> None:
        """Keep one callback at the next underflow that changes the irq (and none otherwise)."""
        if self._cancel_cb is not None:
            self._cancel_cb()
            self._cancel_cb = None
        if self.en and self.irq_en and not self.zero:
            self._cancel_cb = self.kernel.call_at(self._underflow_edge(), self._on_underflow, late=True)

    def _on_underflow(self) -> None:
        self._cancel_cb = None
        now = self.kernel.now
        if self._pending_edge == now:
            return                          # the write acting on this edge handles it
        self._advance(now)
        self._update_irq()
        self._schedule()

    def __repr__(self) -> str:
        return (f"<TimerModel en={self.en} periodic={self.periodic} irq_en={self.irq_en} "
                f"load={self.load} zero={self.zero}>")
