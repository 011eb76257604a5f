"""How the LANCE card meets a machine: its bus window, its interrupt and its wire to a segment.

:data:`LANCE` is the card's :class:`sim.devices.DeviceKind`. Model or RTL, the card is a 2 MiB
window (:data:`hw.lance.registers.WINDOW_SIZE`) on the machine's bus, an interrupt line, and a
station on the machine's Ethernet segment (``machine.media["ethernet"]``; without one the card
sees a free, silent wire). Both reach the segment through one
:class:`sim.media.transceiver.Transceiver` with the card's :data:`LANCE_PINS`, so a model card
and an RTL card see the same wire to the picosecond:

* the model (:class:`hw.lance.model.LanceModel`) does its own CSMA/CD (deferral, jam, backoff
  with its LFSR, as the gateware does) through a :class:`StationWire`;
* the RTL runs :class:`hw.lance.harness.LanceHarness` in an HDL simulator; its host bus is a
  block initiator over the harness's :class:`hw.burst.HostBusBurster` (a driver's copy loop is
  one transaction for Python), its ``irq`` is mirrored onto an interrupt line, and its wire side
  is a :class:`SegmentPhy`: a frame the card sends starts on the segment when ``tx_en`` rises
  and ends when it falls (its bytes read from the bridge's capture memory then); a frame another
  station sends is written into the bridge and serialised into the card once the transceiver
  has judged it intact; the segment's carrier and collisions drive ``crs`` and ``col``.

Parameters (:attr:`sim.devices.DeviceSpec.params`): ``mac`` (bytes or ``"08:00:2b:..."``,
default :data:`hw.lance.registers.DEFAULT_MAC`), ``ram_bytes`` (the buffer SRAM, default
:data:`hw.lance.registers.BUFFER_RAM_SIZE_DEFAULT`) and ``station`` (the card's station name on
the segment, default the machine's name).
"""
from __future__ import annotations

from typing import Any

from sim.bus import IrqLine
from sim.devices import Attached, DeviceKind, DeviceSpec, MachinePorts
from sim.media.ethernet import FrameError, Station, mac as parse_mac
from sim.media.transceiver import PinTiming, Transceiver
from sim.time import Clock

from . import timing as T
from .model import LanceModel
from .registers import BUFFER_RAM_SIZE_DEFAULT, DEFAULT_MAC, WINDOW_SIZE

__all__ = ["LANCE_PINS", "StationWire", "SegmentPhy", "LanceKind", "LANCE"]

#: The card's MII receive pins, from its timing contract (:mod:`hw.lance.timing`).
LANCE_PINS = PinTiming(divider=T.MII_DIVIDER, rise_phase=T.MII_CLK_RISE_PHASE,
                       preamble_nibbles=T.PREAMBLE_NIBBLES, gap_ticks=T.TX_IFG_TICKS)

#: The parameters a LANCE :class:`~sim.devices.DeviceSpec` may carry.
PARAMS = ("mac", "ram_bytes", "station")


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
        See :class:`sim.media.transceiver.Transceiver`, which also names what it raises.
    """

    def __init__(self, station: Station, clock: Clock, *,
                 decide_bits: int = Transceiver.DEFAULT_DECIDE_BITS):
        self.model: LanceModel | None = None
        self.transceiver = Transceiver(station, set_crs=self._crs, set_col=self._col,
                                       give=self._give, period=clock.period, pins=LANCE_PINS,
                                       decide_bits=decide_bits)
        self.station = station
        self.kernel = station.segment.kernel
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
        self.kernel.call_at(LANCE_PINS.rx_start_edge(self.kernel.now, p) * p,
                            lambda: m.receive(frame))

    def __repr__(self) -> str:
        return f"<StationWire {self.station.name}>"


class SegmentPhy:
    """Joins a running :class:`~hw.lance.harness.LanceHarness`'s wire side to a segment station
    through a :class:`~sim.media.transceiver.Transceiver` (the coupling :class:`StationWire`
    gives the model).

    Parameters
    ----------
    access : sim.bindings.access.SignalAccess
        The harness's ports and memories.
    driver : sim.bindings.HdlDriver
        The simulation's driver.
    station : Station
        The card's attachment to the segment.
    clock : Clock
        The card's clock.
    """

    def __init__(self, access: Any, driver: Any, station: Station, clock: Clock):
        port = access.port
        self.access = access
        self.driver = driver
        self.station = station
        self._tx_len, self._tx_bad = port("tx_len"), port("tx_bad")
        self._rx_len, self._rx_go = port("rx_len"), port("rx_go")
        crs, col = port("crs"), port("col")
        self._go = 0
        self.transceiver = Transceiver(
            station, set_crs=lambda v: driver.set(crs, v), set_col=lambda v: driver.set(col, v),
            give=self._inject, period=clock.period, pins=LANCE_PINS)
        self.stats = self.transceiver.stats
        driver.watch(port("tx_en"), self._on_tx_en)

    def _on_tx_en(self, level: int) -> None:
        t, d = self.transceiver, self.driver
        if level:
            t.tx_start()
            return
        frame = None
        if not d.get(self._tx_bad):
            n = d.get(self._tx_len)
            words = self.access.mem_read("bridge.tx_mem", 0, (n + 3) // 4)
            frame = b"".join(int(w).to_bytes(4, "little") for w in words)[:n]
        t.tx_stop(frame)

    def _inject(self, frame: bytes) -> None:
        padded = frame + bytes(-len(frame) % 4)
        self.access.mem_write("bridge.rx_mem", 0, [int.from_bytes(padded[i:i + 4], "little")
                                                   for i in range(0, len(padded), 4)])
        self.driver.set(self._rx_len, len(frame))
        self._go ^= 1
        self.driver.set(self._rx_go, self._go)

    def __repr__(self) -> str:
        return f"<SegmentPhy {self.station.name}>"


class LanceKind(DeviceKind):
    """The LANCE-style Ethernet card (see the module docstring)."""

    kind = "lance"
    window = WINDOW_SIZE
    #: The 12.5 MHz TURBOchannel clock (docs/lance_card.md).
    clock = Clock.from_hz(T.CLOCK_HZ, "lance")
    memories = ("bridge.tx_mem", "bridge.rx_mem", "burst.mem")

    def check(self, spec: DeviceSpec) -> None:
        super().check(spec)
        self._params(spec)

    def _params(self, spec: DeviceSpec) -> tuple[bytes, int, str | None]:
        """(mac, ram_bytes, station or None) of ``spec``, checked."""
        p = dict(spec.params)
        unknown = sorted(set(p) - set(PARAMS))
        if unknown:
            raise ValueError(f"lance {spec.name}: unknown parameter {unknown[0]!r} "
                             f"(known: {', '.join(PARAMS)})")
        try:
            mac = parse_mac(p.get("mac", DEFAULT_MAC))
        except FrameError as e:
            raise ValueError(f"lance {spec.name}: mac: {e}") from None
        ram = p.get("ram_bytes", BUFFER_RAM_SIZE_DEFAULT)
        if isinstance(ram, bool) or not isinstance(ram, int) or ram < 64 or ram & (ram - 1):
            raise ValueError(f"lance {spec.name}: ram_bytes must be a power of two of at least "
                             f"64, not {ram!r}")
        station = p.get("station")
        if station is not None and (not isinstance(station, str) or not station):
            raise ValueError(f"lance {spec.name}: station must be a non-empty name, not "
                             f"{station!r}")
        return mac, ram, station

    def _station(self, machine: MachinePorts, spec: DeviceSpec) -> Station | None:
        segment = machine.media.get("ethernet")
        if segment is None:
            return None
        return segment.attach(self._params(spec)[2] or machine.name)

    # -- model --------------------------------------------------------------------------------
    def attach_model(self, machine: MachinePorts, spec: DeviceSpec) -> Attached:
        self.check(spec)
        mac, ram, _ = self._params(spec)
        name = f"{machine.name}.{spec.name}"
        irq = IrqLine(machine.kernel, f"{name}.irq")
        station = self._station(machine, spec)
        wire = StationWire(station, self.clock) if station is not None else None
        model = LanceModel(machine.kernel, self.clock, irq=irq, ram_bytes=ram, mac=mac, wire=wire)
        if wire is not None:
            wire.bind(model)
        return Attached(spec, "model", model, irq,
                        parts={"model": model, "station": station, "wire": wire,
                               "stats": wire.stats if wire is not None else None})

    # -- RTL ----------------------------------------------------------------------------------
    def harness(self, spec: DeviceSpec) -> Any:
        from .harness import LanceHarness
        mac, ram, _ = self._params(spec)
        return LanceHarness(ram_bytes=ram, mac=mac)

    def harness_key(self, spec: DeviceSpec) -> str:
        mac, ram, _ = self._params(spec)
        return f"lance_harness_{ram // 1024}k_{mac.hex()}"

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any,
                 driver: Any) -> Attached:
        from sim.bindings.binder import bind_host_bus, bind_irq

        from .harness import BUS_ADDR_WIDTH
        self.check(spec)
        name = f"{machine.name}.{spec.name}"
        target = bind_host_bus(access, driver, self.clock, addr_width=BUS_ADDR_WIDTH,
                               name=name, burst=True)
        irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
        station = self._station(machine, spec)
        phy = SegmentPhy(access, driver, station, self.clock) if station is not None else None
        return Attached(spec, "rtl", target, irq,
                        parts={"phy": phy, "station": station,
                               "stats": phy.stats if phy is not None else None})


#: The LANCE card's device kind.
LANCE = LanceKind()
