"""Binding devices to machines: each device as its transaction-level model (and, later, its RTL).

A machine's software sees a device only as a window on a :class:`sim.bus.Bus` and an
:class:`sim.bus.IrqLine`; this module builds those from a device implementation and, for a
network card, connects its wire side to a simulated medium.

LANCE card, model backend
-------------------------
:func:`attach_lance_model` maps a :class:`hw.lance.model.LanceModel` on a bus and gives it a
:class:`StationWire` onto a :class:`sim.media.ethernet.Segment`: a
:class:`serveros.transceiver.Transceiver`, the same coupling the RTL binding uses
(serveros/lance_rtl.py). The card does its own CSMA/CD (deferral, jam, backoff with its LFSR,
as the gateware does); the segment only carries the signals and detects the overlaps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hw.lance.model import LanceModel
from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, DEFAULT_MAC, WINDOW_SIZE
from hw.lance.timing import CLOCK_HZ
from sim.bus import Bus, IrqLine, Window
from sim.kernel import Kernel
from sim.media.ethernet import Segment, Station, mac as parse_mac
from sim.time import Clock

from .transceiver import Transceiver, rx_start_edge

__all__ = ["StationWire", "LanceCard", "attach_lance_model"]


class StationWire:
    """A LANCE model's transceiver (its :class:`~hw.lance.model.LanceWire`) on a segment
    :class:`Station`.

    Parameters
    ----------
    station : Station
        The card's attachment to the segment.
    clock : Clock
        The card's clock.
    decide_bits : int
        See :class:`serveros.transceiver.Transceiver`, which also names what it raises.
    """

    def __init__(self, station: Station, clock: Clock, *,
                 decide_bits: int = Transceiver.DEFAULT_DECIDE_BITS):
        self.model: Any = None
        self.transceiver = Transceiver(station, set_crs=self._crs, set_col=self._col,
                                       give=self._give, period=clock.period,
                                       decide_bits=decide_bits)
        self.station = station
        self.kernel: Kernel = station.segment.kernel
        self.stats = self.transceiver.stats

    def bind(self, model: LanceModel) -> None:
        """Couple ``model`` (a :class:`~hw.lance.model.LanceModel` built with this wire)."""
        if not isinstance(model, LanceModel):
            raise TypeError(f"model must be a LanceModel, not {model!r}")
        self.model = model

    # -- LanceWire ----------------------------------------------------------------------------
    def tx_start(self, frame: bytes | None) -> None:
        self.transceiver.tx_start(frame)

    def tx_stop(self, frame: bytes | None) -> None:
        self.transceiver.tx_stop(frame)

    # -- the model's pins ---------------------------------------------------------------------
    def _crs(self, level: int) -> None:
        if self.model is not None:
            self.model.set_crs(level)

    def _col(self, level: int) -> None:
        if self.model is not None:
            self.model.set_col(level)

    def _give(self, frame: bytes) -> None:
        m = self.model
        if m is None:
            return
        p = m.clock.period
        self.kernel.call_at(rx_start_edge(self.kernel.now, p) * p, lambda: m.receive(frame))

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
    if clock is None:
        clock = Clock.from_hz(CLOCK_HZ, f"{name}.clk")
    station = wire = None
    if segment is not None:
        station = segment.attach(name)
        wire = StationWire(station, clock)
    model = LanceModel(kernel, clock, irq=irq, ram_bytes=ram_bytes, mac=mac_b, wire=wire)
    if wire is not None:
        wire.bind(model)
    window = bus.map(base, WINDOW_SIZE, model, name)
    return LanceCard(model, irq, window, base, station, wire)
