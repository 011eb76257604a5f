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
  has judged it intact; the segment's carrier and collisions drive ``crs`` and ``col``. A
  one-buffer frame is known whole when ``tx_en`` rises, as the model knows it: a
  :class:`TxLookahead` reads it from the card's buffer RAM where the transmit engine reads it,
  and the capture at the fall checks it. The card's station-address ROM is socketed: the
  binding loads the spec's ``mac`` into the harness's ``rom_mac`` at the start of the run, so
  every address shares one build (:meth:`LanceKind.harness_key` names only ``ram_bytes``).

Parameters (:attr:`sim.devices.DeviceSpec.params`): ``mac`` (bytes or ``"08:00:2b:..."``,
default :data:`hw.lance.registers.DEFAULT_MAC`), ``ram_bytes`` (the buffer SRAM, default
:data:`hw.lance.registers.BUFFER_RAM_SIZE_DEFAULT`) and ``station`` (the card's station name on
the segment, default the machine's name).
"""
from __future__ import annotations

import struct
from typing import Any

from sim.bindings import BindingError
from sim.bindings.access import bytes_of, words_of
from sim.bus import IrqLine
from sim.devices import Attached, DeviceKind, DeviceSpec, MachinePorts
from sim.media.ethernet import FrameError, Station, mac as parse_mac
from sim.media.transceiver import PinTiming, Transceiver
from sim.time import Clock

from . import timing as T
from .model import LanceModel, _on_wire
from .registers import (BUFFER_RAM_SIZE_DEFAULT, CSR0, DEFAULT_MAC, DESCRIPTOR_BYTES,
                        INIT_BLOCK_BYTES, RAP_OFFSET, RDP_OFFSET, TMD1, WINDOW_SIZE, Mode,
                        bcnt_decode)

__all__ = ["LANCE_PINS", "StationWire", "TxLookahead", "SegmentPhy", "LanceKind", "LANCE"]

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


class TxLookahead:
    """The frame an RTL card is about to send, known when ``tx_en`` rises, as the model knows it.

    The model hands its transceiver a one-buffer frame whole when ``tx_en`` rises
    (:class:`hw.lance.mii_model.LanceWire`), so the segment's other cards start receiving it
    33 bit times after its signal reaches them; the RTL's bridge captures the bytes only as
    they go out. So the binding reads the frame where the transmit engine reads it: the
    descriptor at the engine's ring index and its buffer, in the card's RAM (memory
    ``card.ram``), with the ring and MODE from the init block whose address the driver wrote to
    CSR1/CSR2 (seen by :meth:`bus_write`). The engine's index is followed as the gateware moves
    it: to 0 on STOP, past a frame's descriptors once it went out, past descriptors the engine
    gave back after a final failed attempt. A chained frame (more than one buffer) is left
    unknown, as in the model; so is every frame in loopback or before an INIT.

    Parameters
    ----------
    access : sim.bindings.access.SignalAccess
        The harness's ports and memories.
    ram_bytes : int
        The card's buffer RAM.
    """

    def __init__(self, access: Any, ram_bytes: int):
        self.access = access
        self.ram_bytes = ram_bytes
        self.index = 0
        self._rap = 0
        self._csr = [0, 0, 0]
        self._ring: tuple[int, int, int] | None = None      # (TDRA, TLEN, MODE) after INIT

    def _read(self, addr: int, n: int) -> bytes | None:
        if addr + n > self.ram_bytes:
            return None
        first, last = addr >> 2, (addr + n + 3) >> 2
        raw = bytes_of(self.access.mem_read("card.ram", first, last - first))
        return raw[addr & 3:(addr & 3) + n]

    def bus_write(self, offset: int, value: int) -> None:
        """The CPU writes ``value`` at ``offset`` of the card's window."""
        if offset == RAP_OFFSET:
            self._rap = value & 3
        elif offset == RDP_OFFSET and self._rap < 3:
            self._csr[self._rap] = value
            if self._rap == 0 and value & CSR0.STOP:
                self.index = 0
            if self._rap == 0 and value & CSR0.INIT:
                iadr = (self._csr[2] & 0xFF) << 16 | (self._csr[1] & 0xFFFE)
                raw = self._read(iadr, INIT_BLOCK_BYTES)
                w = struct.unpack("<12H", raw) if raw is not None else None
                self._ring = None if w is None else \
                    ((w[11] & 0xFF) << 16 | w[10], 1 << (w[11] >> 13), w[0])

    def _descriptor(self, i: int) -> tuple[int, int] | None:
        tdra, tlen, _ = self._ring
        raw = self._read(tdra + (i % tlen) * DESCRIPTOR_BYTES, DESCRIPTOR_BYTES)
        return None if raw is None else struct.unpack("<2I", raw)

    def frame(self) -> bytes | None:
        """``tx_en`` rose: the frame (FCS included) going out, or None if not known yet."""
        if self._ring is None or self._ring[2] & Mode.LOOP:
            return None
        tdra, tlen, mode = self._ring
        for _ in range(tlen):                 # past descriptors the engine gave back
            d = self._descriptor(self.index)
            if d is None:
                return None
            if d[0] >> 31:
                break
            self.index = (self.index + 1) % tlen
        else:
            return None
        w0, w1 = d
        if not w0 >> 24 & 1:                  # chained: known at its end, as in the model
            return None
        data = self._read(w0 & 0xFF_FFFF, bcnt_decode(w1 & 0xFFFF))
        if data is None:
            return None
        return _on_wire(data, not mode & Mode.DTCR or bool(w0 >> 16 & TMD1.ADD_FCS), True)

    def sent(self) -> None:
        """The frame went out whole: the engine moves past its descriptors."""
        if self._ring is None:
            return
        tlen = self._ring[1]
        for _ in range(tlen):
            d = self._descriptor(self.index)
            self.index = (self.index + 1) % tlen
            if d is None or d[0] >> 24 & 1:
                return

    def __repr__(self) -> str:
        return f"<TxLookahead index={self.index} ring={self._ring}>"


class _Snooped:
    """A bus target that shows the CPU's writes to ``on_write`` before passing them on."""

    def __init__(self, target: Any, on_write):
        self.target = target
        self._on_write = on_write

    async def read(self, offset: int) -> int:
        return await self.target.read(offset)

    async def write(self, offset: int, value: int) -> None:
        self._on_write(offset, value)
        await self.target.write(offset, value)

    async def read_block(self, offset: int, n: int) -> list[int]:
        return await self.target.read_block(offset, n)

    async def write_block(self, offset: int, words: list[int]) -> None:
        await self.target.write_block(offset, words)


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
    lookahead : TxLookahead, optional
        Knows a frame when ``tx_en`` rises; without one every frame is known at its end.

    Raises
    ------
    sim.bindings.BindingError
        When a frame goes out different from the one the lookahead read.
    """

    def __init__(self, access: Any, driver: Any, station: Station, clock: Clock, *,
                 lookahead: TxLookahead | None = None):
        port = access.port
        self.access = access
        self.driver = driver
        self.station = station
        self.lookahead = lookahead
        self._predicted: bytes | None = None
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
        t, d, ahead = self.transceiver, self.driver, self.lookahead
        if level:
            self._predicted = ahead.frame() if ahead is not None else None
            t.tx_start(self._predicted)
            return
        frame = None
        if not d.get(self._tx_bad):
            n = d.get(self._tx_len)
            frame = bytes_of(self.access.mem_read("bridge.tx_mem", 0, (n + 3) // 4))[:n]
        if not t.tx_stop(frame):
            return                            # cut: the engine retries, or gives it back
        if self._predicted is not None and frame != self._predicted:
            raise BindingError(f"{self.station.name}: the card sent {frame.hex()}, not the "
                               f"{self._predicted.hex()} its ring held when tx_en rose")
        if ahead is not None:
            ahead.sent()

    def _inject(self, frame: bytes) -> None:
        self.access.mem_write("bridge.rx_mem", 0, words_of(frame))
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
    memories = ("bridge.tx_mem", "bridge.rx_mem", "burst.mem", "card.ram")

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
        return LanceHarness(ram_bytes=self._params(spec)[1])

    def harness_key(self, spec: DeviceSpec) -> str:
        return f"lance_harness_{self._params(spec)[1] // 1024}k"

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any,
                 driver: Any) -> Attached:
        from sim.bindings.binder import bind_host_bus, bind_irq

        from .harness import BUS_ADDR_WIDTH
        from .regs_target import rom_word
        self.check(spec)
        mac, ram, _ = self._params(spec)
        name = f"{machine.name}.{spec.name}"
        rom = access.port("rom_mac")        # the socketed ROM, loaded before any clock edge
        machine.kernel.call_at(machine.kernel.now, lambda: driver.set(rom, rom_word(mac)))
        bus = bind_host_bus(access, driver, self.clock, addr_width=BUS_ADDR_WIDTH, name=name,
                            burst=True)
        irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
        station = self._station(machine, spec)
        if station is None:
            return Attached(spec, "rtl", bus, irq, parts={"bus": bus, "phy": None,
                                                          "station": None, "stats": None})
        ahead = TxLookahead(access, ram)
        phy = SegmentPhy(access, driver, station, self.clock, lookahead=ahead)
        return Attached(spec, "rtl", _Snooped(bus, ahead.bus_write), irq,
                        parts={"bus": bus, "phy": phy, "station": station, "stats": phy.stats})


#: The LANCE card's device kind.
LANCE = LanceKind()
