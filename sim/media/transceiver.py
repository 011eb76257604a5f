"""A network card's transceiver on a segment station: one wire coupling for a model and its RTL.

The card (its transaction-level model, or its RTL through its package's RTL binding) does its
own CSMA/CD, as the Am7990 does: it defers to ``crs``, jams on ``col`` and backs off. The station
is used at the transceiver level (:meth:`sim.media.ethernet.Station.begin_raw`,
:meth:`~sim.media.ethernet.Station.attach_phy`), and :class:`Transceiver` does what a 10BASE2
transceiver and the co-simulation's MII bridge do between them:

* **transmit**: ``tx_en`` rising starts a raw transmission on the segment, falling ends it, with
  the frame that went out, or none if the card cut it short (a jam, an underflow). While the
  card transmits, a collision the segment detects raises ``col`` until ``tx_en`` falls;
* **carrier**: ``crs`` is high while another station's signal is here;
* **receive**: a frame can still be garbled by a collision just after its signal arrives. A
  station that would overlap it starts at the latest 32 bit times after its signal reaches it
  (the committed second part of the inter-frame gap, 802.3 4.2.3.2.1), so the transceiver
  decides :attr:`Transceiver.decide_bits` (33) bit times after the signal's arrival whether the
  frame is intact and only then hands it to the card (the card locks on 3.3 us into the 6.4 us
  preamble, as a real receiver may); a garbled one is dropped, as the segment drops collision
  fragments. The card's MII receive pins start carrying it at the next rise of the card's MII
  clock (:meth:`PinTiming.rx_start_edge`: an RTL card's injection bridge acts then).
  A raw sender's frame that its MAC did not know whole when it started (an RTL card's, whose
  bytes the bridge captures as they go out) is known only when its last bit has passed: it is
  handed over then, one frame time late, or after the frame before it and an inter-frame gap
  if that one is still on the card's pins.

The card's side of the MII (its divider, the phase of its MII clock, its preamble and gap) is a
:class:`PinTiming` its package fills from its timing contract (the LANCE card's:
:data:`hw.lance.attach.LANCE_PINS`). A card's model binding and its RTL binding both use this
class, so a model card and an RTL card see the same wire to the ps;
tests/serveros/test_lance_cosim.py checks that their transmissions on a contended segment are
identical.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from .ethernet import IFG_BITS, IFG_PART1_BITS, Station, Transmission

__all__ = ["PinTiming", "Transceiver", "TransceiverStats"]


@dataclass(frozen=True)
class PinTiming:
    """A card's MII receive pins, in cycles of the card's clock (edge ``k`` at ``k * period``).

    Attributes
    ----------
    divider : int
        Clock cycles per MII nibble (a tick).
    rise_phase : int
        The card's MII clock rises at the edges ``k`` with ``k % divider == rise_phase``.
    preamble_nibbles : int
        Nibbles of preamble and SFD before a frame's first byte.
    gap_ticks : int
        Ticks of inter-frame gap after a frame before the pins carry the next.

    Raises
    ------
    ValueError
        For a divider below 1, a phase outside ``0 .. divider - 1``, or a negative count.
    """

    divider: int
    rise_phase: int
    preamble_nibbles: int
    gap_ticks: int

    def __post_init__(self) -> None:
        if not isinstance(self.divider, int) or self.divider < 1:
            raise ValueError(f"divider must be an integer >= 1, not {self.divider!r}")
        if not isinstance(self.rise_phase, int) or not 0 <= self.rise_phase < self.divider:
            raise ValueError(f"rise_phase must be 0..{self.divider - 1}, not {self.rise_phase!r}")
        for name in ("preamble_nibbles", "gap_ticks"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, not {v!r}")

    def rx_start_edge(self, t: int, period: int) -> int:
        """The clock edge from which the card's MII receive pins carry a frame handed over at
        ``t`` ps: the injection bridge sees the hand-over at the first edge after ``t`` and
        starts the preamble one edge after the next rise of the MII clock."""
        seen = t // period + 1
        phase = (self.rise_phase + 1) % self.divider
        first = seen + 1
        return first + (phase - first) % self.divider

    def busy_cycles(self, nbytes: int) -> int:
        """Cycles the pins are busy with a frame of ``nbytes`` (FCS included): its preamble,
        two nibbles a byte, and the gap after it."""
        return self.divider * (self.preamble_nibbles + 2 * nbytes + self.gap_ticks)


@dataclass
class TransceiverStats:
    #: Frames this card sent whole, and transmissions it cut short (or that collided).
    frames_sent: int = 0
    frames_cut: int = 0
    #: Frames handed to the card; signals dropped because a collision garbled them; frames
    #: that waited because the card's receive pins were still busy with the previous one.
    delivered: int = 0
    garbled: int = 0
    held: int = 0
    #: Frames of raw senders, known (and handed over) only at their end.
    late: int = 0


class Transceiver:
    """The card's transceiver on ``station`` (see the module docstring).

    Parameters
    ----------
    station : Station
        The card's attachment to the segment; this becomes its PHY listener.
    set_crs, set_col : callable(level)
        Drive the card's ``crs`` / ``col`` input from now on.
    give : callable(frame)
        Hand ``frame`` (FCS included) to the card's receiver now; the pins carry it from
        :meth:`PinTiming.rx_start_edge` of now on.
    period : int
        The card's clock period in ps.
    pins : PinTiming
        The card's MII receive pins.
    decide_bits : int
        Bit times after a frame's signal arrives at which it is judged intact or garbled.

    Raises
    ------
    TypeError
        If ``station`` is not a :class:`Station` or ``pins`` not a :class:`PinTiming`.
    ValueError
        If ``decide_bits`` is negative or ``period`` not a positive integer.
    """

    #: 32 bit times of committed gap, plus one so a same-instant start is seen first.
    DEFAULT_DECIDE_BITS = IFG_BITS - IFG_PART1_BITS + 1

    def __init__(self, station: Station, *, set_crs: Callable[[int], None],
                 set_col: Callable[[int], None], give: Callable[[bytes], None], period: int,
                 pins: PinTiming, decide_bits: int = DEFAULT_DECIDE_BITS):
        if not isinstance(station, Station):
            raise TypeError(f"station must be a sim.media.ethernet.Station, not {station!r}")
        if not isinstance(pins, PinTiming):
            raise TypeError(f"pins must be a PinTiming, not {pins!r}")
        if not isinstance(decide_bits, int) or decide_bits < 0:
            raise ValueError(f"decide_bits must be an integer >= 0, not {decide_bits!r}")
        if not isinstance(period, int) or isinstance(period, bool) or period < 1:
            raise ValueError(f"period must be a positive integer of ps, not {period!r}")
        self.station = station
        self.kernel = station.segment.kernel
        self.decide_bits = decide_bits
        self.period = period
        self.pins = pins
        self.stats = TransceiverStats()
        self._set_crs = set_crs
        self._set_col = set_col
        self._give_now = give
        self._tx: Transmission | None = None
        self._heard = 0
        self._rx_busy_until = -1            # ps: the card's receive pins carry a frame till then
        self._late: set[Transmission] = set()   # signals here whose frame is not known yet
        self._held: deque[bytes] = deque()      # frames waiting for the receive pins
        station.attach_phy(self)
        self.kernel.spawn(self._collisions(), name=f"{station.name}.col", daemon=True)

    # -- the card transmits --------------------------------------------------------------------
    def tx_start(self, frame: bytes | None = None) -> None:
        """``tx_en`` rises now; ``frame`` is the frame if the card knows it whole already."""
        self._tx = self.station.begin_raw(frame)

    def tx_stop(self, frame: bytes | None) -> bool:
        """``tx_en`` falls now; ``frame`` went out (FCS included), or None if it was cut.
        Returns whether the frame went out whole (no collision)."""
        tx, self._tx = self._tx, None
        if tx is None:
            return False
        whole = frame is not None and not tx.collided
        if whole:
            self.stats.frames_sent += 1
        else:
            frame = None
            self.stats.frames_cut += 1
        self.station.end_raw(tx, frame)
        self._set_col(0)
        return whole

    async def _collisions(self) -> None:
        while True:
            await self.station.collision
            if self._tx is not None:
                self._set_col(1)

    # -- PhyListener: others transmit -----------------------------------------------------------
    def signal_start(self, tx: Transmission) -> None:
        self._heard += 1
        if self._heard == 1:
            self._set_crs(1)
        if tx.frame:
            dt = self.decide_bits * self.station.segment.bit_time_ps
            self.kernel.call_after(dt, lambda: self._decide(tx))
        else:
            self._late.add(tx)

    def signal_end(self, tx: Transmission, intact: bool) -> None:
        self._heard -= 1
        if self._heard == 0:
            self._set_crs(0)
        if tx in self._late:                            # a raw sender's: known only now
            self._late.discard(tx)
            if intact and tx.frame:
                self.stats.late += 1
                self._give(tx.frame)
            else:
                self.stats.garbled += 1

    def _decide(self, tx: Transmission) -> None:
        if tx.corrupted or tx.collided or tx.aborted:
            self.stats.garbled += 1
            return
        self._give(tx.frame)

    def _give(self, frame: bytes) -> None:
        if self._held or self.pins.rx_start_edge(self.kernel.now, self.period) * self.period \
                < self._rx_busy_until:
            # Only a raw sender's frame, handed over late, can find the pins still busy (a
            # long frame and a short one right behind it): it waits its turn, like a frame in
            # a bridge's buffer, and keeps its place in the order.
            self.stats.held += 1
            self._held.append(frame)
            if len(self._held) == 1:
                self.kernel.call_at(self._rx_busy_until, self._next_held)
            return
        self._hand_over(frame)

    def _next_held(self) -> None:
        self._hand_over(self._held.popleft())
        if self._held:
            self.kernel.call_at(self._rx_busy_until, self._next_held)

    def _hand_over(self, frame: bytes) -> None:
        p = self.period
        start = self.pins.rx_start_edge(self.kernel.now, p) * p
        # The pins carry the preamble and the frame, one nibble per tick, from `start`; the
        # next frame may follow an inter-frame gap after it.
        self._rx_busy_until = start + p * self.pins.busy_cycles(len(frame))
        self.stats.delivered += 1
        self._give_now(frame)

    def __repr__(self) -> str:
        return f"<Transceiver {self.station.name}>"
