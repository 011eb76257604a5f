"""Binding devices to machines: each device as its transaction-level model (and, later, its RTL).

A machine's software sees a device only as a window on a :class:`sim.bus.Bus` and an
:class:`sim.bus.IrqLine`; this module builds those from a device implementation and, for a
network card, connects its wire side to a simulated medium.

LANCE card, model backend
-------------------------
:func:`attach_lance_model` maps a :class:`hw.lance.model.LanceModel` on a bus and gives it a
:class:`StationWire` onto a :class:`sim.media.ethernet.Segment`:

* **transmit**: the model hands the wire each frame (FCS included); the wire sends it with
  :meth:`Station.send`, which does the 802.3 CSMA/CD (deferral, collisions, backoff), and turns
  the :class:`~sim.media.ethernet.TxResult` (or :class:`~sim.media.ethernet.ExcessiveCollisions`)
  into the model's transmit outcome (DEF, ONE/MORE, RTRY in the descriptor);
* **receive**: the wire is the station's PHY listener (:meth:`Station.attach_phy`). The model
  wants each frame at the moment its first preamble nibble reaches the card's pins, but a frame
  can still be garbled by a collision just after its signal arrives. A station that would
  overlap it starts at the latest 32 bit times after the signal reaches it (the committed
  second part of the inter-frame gap, 802.3 4.2.3.2.1), so the wire decides
  :attr:`StationWire.decide_bits` (33) bit times after the signal's arrival: an intact frame
  is then given to :meth:`LanceModel.receive` (the card locks on 3.3 us into the 6.4 us
  preamble, as a real receiver may); a garbled one is dropped, as the segment drops collision
  fragments. A frame from a raw (RTL) sender, whose bytes are known only at its end, is given
  to the model when its last bit has passed.

With a wire, the segment's station does the CSMA/CD, so the model's own backoff (its LFSR,
``timing.BACKOFF_SEED``) is used only by the RTL and by the model on a free wire.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hw.lance.model import LanceModel, TxOutcome
from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, DEFAULT_MAC, WINDOW_SIZE
from hw.lance.timing import CLOCK_HZ
from sim.bus import Bus, IrqLine, Window
from sim.kernel import Kernel
from sim.media.ethernet import (IFG_BITS, IFG_PART1_BITS, ExcessiveCollisions, Segment, Station,
                                Transmission, TxResult, mac as parse_mac)
from sim.time import Clock

log = logging.getLogger(__name__)

__all__ = ["StationWire", "LanceCard", "attach_lance_model", "tx_outcome"]


def tx_outcome(result: TxResult | None = None, *,
               error: ExcessiveCollisions | None = None) -> TxOutcome:
    """The model's :class:`~hw.lance.model.TxOutcome` for what the segment reported.

    Parameters
    ----------
    result : TxResult, optional
        A frame that left: ``attempts - 1`` collisions, DEF if it deferred.
    error : ExcessiveCollisions, optional
        A frame given up: its 16 attempts all collided (TMD3.RTRY).

    Raises
    ------
    ValueError
        Unless exactly one of ``result`` and ``error`` is given.
    """
    if (result is None) == (error is None):
        raise ValueError(f"give exactly one of result and error, not {result!r} and {error!r}")
    if error is not None:
        return TxOutcome(collisions=error.attempts, rtry=True)
    # The segment detects every collision inside the slot time (its propagation delay is well
    # inside it), so late_collision stays False; the station counts late ones if they happen.
    return TxOutcome(collisions=result.collisions, deferred=result.deferred)


class StationWire:
    """A LANCE model's wire (the model's ``LanceWire``) over a segment :class:`Station`.

    Parameters
    ----------
    station : Station
        The card's attachment to the segment; this wire becomes its PHY listener.
    decide_bits : int
        Bit times after a frame's signal arrives at which the wire decides whether it is
        intact and hands it to the card (see the module docstring).

    Raises
    ------
    TypeError
        If ``station`` is not a :class:`Station`.
    ValueError
        If ``decide_bits`` is negative.
    """

    #: 32 bit times of committed gap, plus one so a same-instant start is seen first.
    DEFAULT_DECIDE_BITS = IFG_BITS - IFG_PART1_BITS + 1

    def __init__(self, station: Station, *, decide_bits: int = DEFAULT_DECIDE_BITS):
        if not isinstance(station, Station):
            raise TypeError(f"station must be a sim.media.ethernet.Station, not {station!r}")
        if not isinstance(decide_bits, int) or decide_bits < 0:
            raise ValueError(f"decide_bits must be an integer >= 0, not {decide_bits!r}")
        self.station = station
        self.decide_bits = decide_bits
        self.kernel: Kernel = station.segment.kernel
        self.model: Any = None
        #: Frames given to the card; not given because a collision garbled them; given up
        #: after excessive collisions on transmit.
        self.delivered = 0
        self.garbled = 0
        self.abandoned = 0
        #: Frames dropped because the previous one was still on the card's rx pins.
        self.overlapped = 0
        station.attach_phy(self)

    def bind(self, model: Any) -> None:
        """Feed received frames to ``model`` (anything with ``receive(frame)``)."""
        if not callable(getattr(model, "receive", None)):
            raise TypeError(f"model must have a receive(frame) method, not {model!r}")
        self.model = model

    # -- LanceWire --------------------------------------------------------------------------
    async def transmit(self, frame: bytes) -> TxOutcome:
        """Send ``frame`` (FCS included) with CSMA/CD; return the model's ``TxOutcome`` when
        its last bit has left (or when it was abandoned after 16 collisions)."""
        try:
            result = await self.station.send(frame)
        except ExcessiveCollisions as e:
            self.abandoned += 1
            return tx_outcome(error=e)
        return tx_outcome(result)

    # -- PhyListener ------------------------------------------------------------------------
    def signal_start(self, tx: Transmission) -> None:
        if tx.frame:
            dt = self.decide_bits * self.station.segment.bit_time_ps
            self.kernel.call_after(dt, lambda: self._decide(tx))

    def signal_end(self, tx: Transmission, intact: bool) -> None:
        if not tx.attempt and intact and tx.frame:       # a raw sender: known only now
            self._give(tx.frame)

    def _decide(self, tx: Transmission) -> None:
        if tx.corrupted or tx.collided or tx.aborted:
            self.garbled += 1
            return
        self._give(tx.frame)

    def _give(self, frame: bytes) -> None:
        if self.model is None:
            return
        try:
            self.model.receive(frame)
        except ValueError as e:
            # Only a raw sender's frame, handed over late, can still be on the pins when the
            # next one starts: the card would have missed it.
            self.overlapped += 1
            log.warning("%s: frame dropped, the card's rx pins are busy: %s", self.station.name, e)
            return
        self.delivered += 1

    def __repr__(self) -> str:
        return f"<StationWire {self.station.name}>"


@dataclass
class LanceCard:
    """A LANCE card bound to a machine: its implementation, bus window, interrupt and wire."""

    model: LanceModel
    irq: IrqLine
    window: Window
    base: int
    station: Station | None
    wire: StationWire | None


def attach_lance_model(kernel: Kernel, bus: Bus, base: int, *, segment: Segment | None = None,
                       name: str = "le0", mac: bytes | str = DEFAULT_MAC,
                       ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT,
                       clock: Clock | None = None) -> LanceCard:
    """Map a :class:`hw.lance.model.LanceModel` at ``base`` on ``bus``, wired to ``segment``.

    Parameters
    ----------
    kernel : Kernel
    bus : Bus
        The machine's bus; the card's 2 MiB window is mapped at ``base``.
    base : int
        Base address of the window.
    segment : Segment, optional
        The Ethernet the card is on (a station named ``name`` is attached); without one the
        card sees a free, silent wire.
    name : str
        Station, window and interrupt-line name.
    mac : bytes or str
        The station address in the card's ROM.
    ram_bytes : int
        Buffer SRAM size.
    clock : Clock, optional
        The card's clock; default the 12.5 MHz TURBOchannel clock (:data:`hw.lance.timing.CLOCK_HZ`).

    Raises
    ------
    ValueError
        For a misaligned base, a malformed MAC, or a window that overlaps another.
    """
    if not isinstance(base, int) or base < 0 or base % WINDOW_SIZE:
        raise ValueError(f"LANCE base must be a multiple of {WINDOW_SIZE:#x}, not {base!r}")
    mac_b = parse_mac(mac)
    irq = IrqLine(kernel, f"{name}.irq")
    station = wire = None
    if segment is not None:
        station = segment.attach(name)
        wire = StationWire(station)
    if clock is None:
        clock = Clock.from_hz(CLOCK_HZ, f"{name}.clk")
    model = LanceModel(kernel, clock, irq=irq, ram_bytes=ram_bytes, mac=mac_b, wire=wire)
    if wire is not None:
        wire.bind(model)
    window = bus.map(base, WINDOW_SIZE, model, name)
    return LanceCard(model, irq, window, base, station, wire)
