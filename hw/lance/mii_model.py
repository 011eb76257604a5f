"""The LANCE card's MII transmitter on a half-duplex wire, as the transaction-level model computes it.

:class:`MiiTxModel` is the twin of :class:`hw.lance.mii.MiiTransmitter` and of the part of the
transmit engine that reacts to it (hw/lance/tx_engine.py): carrier deferral, the
jam after a collision, and when the aborted frame's status reaches the engine. Like the rest of
the model it never wakes per tick: it computes the tick edge at which ``tx_en`` rises from the
carrier's history, and the edge at which it falls from the frame's length or from the tick at
which ``col`` is seen. The engine (:class:`hw.lance.model.LanceModel`) keeps the rest: the
descriptor fetches, the backoff and the write-back.

The pins, as the RTL sees them (the binding's convention, sim/bindings/verilator.py): a
value driven at time ``t`` is sampled at the first clock edge strictly after ``t``, and the MII
logic samples ``crs`` and ``col`` only at tick edges (:mod:`hw.lance.timing`).

* **Deferral.** The transmitter's gap counter is reloaded with 23 at every idle tick that sees
  ``crs`` and at the tick that ends its own frame (its End), and counts down once per tick: a
  frame offered to it starts at the first tick edge ``r`` at which ``crs`` is low and that is
  at least ``TX_IFG_TICKS`` ticks after both. (802.3 lets a station commit in the last third of
  the gap; this MAC does not: it listens through the whole gap, as the gateware does.)
  TMD1.DEF is set if some tick from the one that could first have started the frame saw
  ``crs``.
* **Collision.** ``col`` seen at tick ``c`` while the preamble, data, padding or FCS goes out
  makes the transmitter jam: ``tx_en`` falls at ``c + TX_JAM_TICKS`` ticks; the status is ready
  at ``TX_ABORT_END_TICKS`` ticks after that (one tick less if the frame's last byte had been
  taken). A ``col`` first seen at the tick at which the frame ends anyway is ignored (the frame
  went out whole; the segment knows it was garbled).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

from . import timing as T
from .registers import MIN_FRAME

__all__ = ["LanceWire", "TxAttempt", "MiiTxModel"]

_DIV = T.MII_DIVIDER
_IFG = T.MII_DIVIDER * T.TX_IFG_TICKS
_NEVER = -(1 << 40)
#: Data byte ``j`` of a frame whose ``tx_en`` rose at ``r`` is taken at tick ``r + _BYTE0 + 10 j``.
_BYTE0 = _DIV * T.PREAMBLE_NIBBLES


@runtime_checkable
class LanceWire(Protocol):
    """The card's transceiver (its PHY on a half-duplex segment), driven by the model's
    ``tx_en``. The binding drives the model's ``crs`` and ``col`` pins back
    (:meth:`hw.lance.model.LanceModel.set_crs`, :meth:`~hw.lance.model.LanceModel.set_col`)."""

    def tx_start(self, frame: bytes | None) -> None:
        """``tx_en`` rises now: the preamble starts on the wire. ``frame`` is the whole frame
        (FCS included) when the card already has it (one buffer), else None."""
        ...

    def tx_stop(self, frame: bytes | None) -> None:
        """``tx_en`` falls now. ``frame`` is what went out (FCS included), or None if the frame
        was cut short (jammed after a collision, or an underflow)."""
        ...


@dataclass(eq=False)
class TxAttempt:
    """One attempt at sending a frame, filled in as it goes.

    Edges are of the card's clock. ``descs`` and ``frame`` belong to the engine; the rest is
    the transmitter's.
    """

    #: The first tick edge at which the transmitter sees the frame's first byte.
    first_tick: int
    #: Called at ``end`` with this attempt (the engine resumes there).
    done: Callable[["TxAttempt"], None]
    rise: int | None = None
    #: Tick edge at which col was seen (the frame was jammed), if it was.
    cut: int | None = None
    #: Runs at ``rise`` (the engine fetches chained buffers from there).
    on_rise: Callable[["TxAttempt"], None] | None = None
    #: Once the engine has fetched every buffer: the frame as it goes out (padded, FCS
    #: included), its bytes before the FCS, and the tick its last data byte is taken.
    frame: bytes | None = None
    padded: int | None = None
    last_byte_tick: int | None = None
    #: Where ``tx_en`` falls if no collision cuts the frame (known with the frame).
    due: int | None = None
    fall: int | None = None
    #: The transmitter's End: the gap counts from here; the engine takes the status at
    #: ``end + TX_STATUS_CYCLES``.
    end: int | None = None
    deferred: bool = False
    late: bool = False
    underflow: bool = False
    descs: list = field(default_factory=list)
    waiting_for_carrier: bool = False

    @property
    def collision(self) -> bool:
        return self.cut is not None

    @property
    def status_edge(self) -> int:
        return self.end + T.TX_STATUS_CYCLES


class MiiTxModel:
    """The transmitter of one card (see the module docstring).

    Parameters
    ----------
    at : callable(edge, fn)
        Runs ``fn()`` at a clock edge, in the transmit engine's turn.
    period : int
        The card's clock period in ps.
    now : callable() -> int
        The kernel's time in ps.
    wire : LanceWire or None
        The transceiver; None is a free wire (no carrier, no collision).
    """

    def __init__(self, at: Callable[[int, Callable[[], None]], None], period: int,
                 now: Callable[[], int], wire: LanceWire | None):
        self._at = at
        self._p = period
        self._now = now
        self.wire = wire
        #: (time, level) of crs's recent changes; the level holds from just after the time.
        self._crs: deque[tuple[int, int]] = deque([(_NEVER, 0)], maxlen=16)
        #: The End tick of the last frame (the gap counts from it).
        self.end_tick = _NEVER
        self._att: TxAttempt | None = None

    def reset(self) -> None:
        """STOP: the transmitter is held in reset; a frame on the wire stops now (the engine
        drops its own steps by epoch)."""
        a, self._att = self._att, None
        if a is not None and a.rise is not None and self.wire is not None:
            self.wire.tx_stop(None)
        self.end_tick = _NEVER

    # -- pins -----------------------------------------------------------------------------------
    def set_crs(self, level: int) -> None:
        """The PHY drives ``crs`` (another station's signal is here) from now on."""
        level = 1 if level else 0
        if level == self._crs[-1][1]:
            return
        now = self._now()
        self._crs.append((now, level))
        a = self._att
        if not level and a is not None and a.waiting_for_carrier:
            # The last tick that saw the carrier is the last one at or before its fall.
            a.waiting_for_carrier = False
            h = _tick_at_or_before(now // self._p)
            if h >= a.first_tick:
                a.deferred = True
            self._check_at(a, max(self.end_tick, h) + _IFG)

    def set_col(self, level: int) -> None:
        """The PHY drives ``col`` from now on; only its rise during a frame matters."""
        a = self._att
        if not level or a is None or a.rise is None or a.cut is not None:
            return
        c = T.next_tick_at_or_after(self._now() // self._p + 1)
        if a.due is not None and c >= a.due:
            return                              # seen only at the frame's own end
        a.cut = c
        # Bytes taken before tick c (padding counts, the FCS does not).
        n = max(0, -(-(c - a.rise - _BYTE0) // (2 * _DIV)))
        if a.padded is not None:
            n = min(n, a.padded)
        a.late = n >= MIN_FRAME
        self._at(c + _DIV * T.TX_JAM_TICKS, lambda: self._jammed(a))

    def _last_high_tick(self, edge: int) -> int | None:
        """The last tick edge at or before ``edge`` that sampled ``crs`` high, if any is known."""
        p = self._p
        upper = edge                            # edges <= upper are still candidates
        for when, level in reversed(self._crs):
            if level:
                e = _tick_at_or_before(upper)
                if e * p > when:
                    return e
            if when == _NEVER:
                return None
            # Edges sampling the level before this change are at or before its time.
            upper = min(upper, when // p)
        return None

    # -- a frame --------------------------------------------------------------------------------
    def offer(self, first_offer_edge: int, done: Callable[[TxAttempt], None],
              on_rise: Callable[[TxAttempt], None]) -> TxAttempt:
        """The engine holds the frame's first byte from edge ``first_offer_edge`` on: start it
        as soon as the wire allows; ``on_rise(attempt)`` runs at the edge ``tx_en`` rises."""
        a = TxAttempt(T.next_tick_at_or_after(first_offer_edge + 1), done, on_rise=on_rise)
        self._att = a
        self._check_at(a, max(a.first_tick, self.end_tick + _IFG))
        return a

    def _check_at(self, a: TxAttempt, edge: int) -> None:
        if self.wire is None:
            self._at(edge, lambda: self._rise(a, edge))
            return
        self._at(edge, lambda: self._check(a, edge))

    def _check(self, a: TxAttempt, edge: int) -> None:
        if a is not self._att:
            return
        h = self._last_high_tick(edge)
        if h is not None and h >= a.first_tick:
            a.deferred = True
        if h == edge and self._crs[-1][1]:
            a.waiting_for_carrier = True        # set_crs(0) goes on from here
            return
        # A carrier that fell at this very edge's time was still seen by it (a pin driven at
        # ``t`` is sampled strictly after ``t``): the gap counts from here, as below.
        start = max(self.end_tick, h if h is not None else _NEVER) + _IFG
        if start > edge:
            self._check_at(a, start)
            return
        self._rise(a, edge)

    def _rise(self, a: TxAttempt, edge: int) -> None:
        if a is not self._att:
            return
        a.rise = edge
        a.on_rise(a)
        if self.wire is not None:
            self.wire.tx_start(a.frame)

    def frame_ready(self, a: TxAttempt, frame: bytes, data_bytes: int, padded: int) -> None:
        """The engine has fetched every buffer: ``frame`` goes out whole (padded, FCS added)
        unless a collision cuts it; ``data_bytes`` is what the engine hands the transmitter,
        ``padded`` the bytes before the FCS (the padding and FCS are the transmitter's)."""
        a.frame = frame
        a.padded = padded
        a.last_byte_tick = a.rise + _BYTE0 + 2 * _DIV * (data_bytes - 1)
        if a.cut is not None:
            return
        a.due = fall = a.rise + _DIV * T.wire_nibbles(len(frame))
        self._at(fall, lambda: self._ended(a, fall))

    def underflow(self, a: TxAttempt, fall: int) -> None:
        """A chained buffer the engine does not own: the transmitter starves and stops at
        ``fall`` (approximate: not modelled to the cycle)."""
        a.underflow = True
        if a.cut is None:
            self._at(fall, lambda: self._ended(a, fall))

    def _ended(self, a: TxAttempt, fall: int) -> None:
        if a is not self._att or a.cut is not None:
            return
        a.fall = a.end = fall
        self.end_tick = fall
        if self.wire is not None:
            self.wire.tx_stop(None if a.underflow else a.frame)
        self._att = None
        a.done(a)

    def _jammed(self, a: TxAttempt) -> None:
        if a is not self._att:
            return
        a.fall = a.cut + _DIV * T.TX_JAM_TICKS
        if self.wire is not None:
            self.wire.tx_stop(None)
        taken = a.last_byte_tick is not None and a.last_byte_tick <= a.cut
        a.end = a.fall + _DIV * (T.TX_ABORT_END_TICKS - (1 if taken else 0))
        self.end_tick = a.end
        self._att = None
        self._at(a.end, lambda: a.done(a))


def _tick_at_or_before(edge: int) -> int:
    return edge - (edge - T.MII_TICK_PHASE) % _DIV
