"""The LANCE card's RTL bound into a simulated machine: host bus, interrupt and the segment.

A machine whose Ethernet card is RTL runs :class:`hw.lance.harness.LanceHarness` in an HDL
simulator (Amaranth's, or Icarus/Verilator through cocotb) while the rest of the machine (the
CPU, the software, the Ethernet segment and the other stations) runs on serveros' kernel,
driven by a :class:`sim.bindings.HdlDriver`. Three adapters join them, all at transaction rate:

* the card's host bus is a :class:`sim.bindings.BlockInitiator` (a :class:`sim.bus.BusTarget`
  the machine maps where the model would be): single accesses run through a
  :class:`sim.bindings.HostBusInitiator`, block copies (:meth:`sim.cpu.CPU.store_words`) through
  the harness's :class:`hw.burst.HostBusBurster`, one Python transaction per block;
* its ``irq`` is an :class:`sim.bindings.IrqMirror` onto an :class:`sim.bus.IrqLine`;
* its wire is a :class:`SegmentPhy`: a :class:`sim.media.transceiver.Transceiver` on a segment
  station (the coupling the model binding uses too). A frame the card sends starts on the
  segment when ``tx_en`` rises and ends when it falls (its bytes are read from the bridge's
  capture memory then); a frame another station sends is written into the bridge and
  serialised into the card once the transceiver has judged it intact; the segment's carrier
  and collisions drive the card's ``crs`` and ``col``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from sim.bindings import BlockInitiator, HdlDriver, HostBusInitiator, IrqMirror
from sim.bus import IrqLine
from sim.media.ethernet import Station
from sim.time import Clock

from hw.lance.attach import LANCE_PINS
from sim.media.transceiver import Transceiver

from .rtl import BUILD_ROOT, waves_requested


__all__ = ["LANCE_CLOCK", "PhySignals", "SegmentPhy", "LanceRtl", "bind_amaranth", "bind_cocotb",
           "build_direct", "bind_direct", "DIRECT_MEMORIES", "RTL_BACKENDS", "RtlSession",
           "rtl_session"]

#: The card's clock: the 12.5 MHz TURBOchannel clock (docs/lance_card.md).
LANCE_CLOCK = Clock(80_000, "lance")


@dataclass
class PhySignals:
    """Handles (as the driver understands them) of the harness's wire-side ports."""

    tx_en: Any
    tx_len: Any
    tx_bad: Any
    rx_len: Any
    rx_go: Any
    crs: Any
    col: Any


class SegmentPhy:
    """Joins a :class:`~hw.lance.harness.LanceHarness`'s wire side to a segment station through
    a :class:`sim.media.transceiver.Transceiver` (the coupling the model binding uses too).

    Parameters
    ----------
    driver : HdlDriver
        The running binding.
    station : Station
        The card's attachment to the segment.
    sig : PhySignals
        The harness's ports.
    read_tx_words : callable(n) -> list[int]
        Reads the first ``n`` words of the bridge's capture memory.
    write_rx_words : callable(words)
        Writes words into the bridge's injection memory from word 0.
    """

    def __init__(self, driver: HdlDriver, station: Station, sig: PhySignals, *,
                 read_tx_words: Callable[[int], Sequence[int]],
                 write_rx_words: Callable[[Sequence[int]], None]):
        self.driver = driver
        self.kernel = driver.kernel
        self.station = station
        self.sig = sig
        self._read = read_tx_words
        self._write = write_rx_words
        self._go = 0
        self.transceiver = Transceiver(
            station, set_crs=lambda v: driver.set(sig.crs, v),
            set_col=lambda v: driver.set(sig.col, v), give=self._inject,
            period=LANCE_CLOCK.period, pins=LANCE_PINS)
        self.stats = self.transceiver.stats
        driver.watch(sig.tx_en, self._on_tx_en)

    def _on_tx_en(self, level: int) -> None:
        t, d = self.transceiver, self.driver
        if level:
            t.tx_start()
            return
        n = d.get(self.sig.tx_len)
        frame = None
        if not d.get(self.sig.tx_bad):
            raw = b"".join(int(w).to_bytes(4, "little") for w in self._read((n + 3) // 4))
            frame = raw[:n]
        t.tx_stop(frame)

    def _inject(self, frame: bytes) -> None:
        padded = frame + bytes(-len(frame) % 4)
        self._write([int.from_bytes(padded[i:i + 4], "little") for i in range(0, len(padded), 4)])
        self.driver.set(self.sig.rx_len, len(frame))
        self._go ^= 1
        self.driver.set(self.sig.rx_go, self._go)


@dataclass
class LanceRtl:
    """What a machine needs from a bound RTL card."""

    bus: BlockInitiator
    irq: IrqLine
    phy: SegmentPhy | None


def _bind(driver: HdlDriver, bus_sig: Any, burst_sig: dict, irq_sig: Any, sig: PhySignals,
          station: Station | None, read_tx_words, write_rx_words, name: str) -> LanceRtl:
    from hw.lance.harness import BUS_ADDR_WIDTH
    single = HostBusInitiator(driver, LANCE_CLOCK, addr=bus_sig["addr"], w_data=bus_sig["w_data"],
                              r_data=bus_sig["r_data"], w_en=bus_sig["w_en"], r_en=bus_sig["r_en"],
                              ack=bus_sig["ack"], addr_width=BUS_ADDR_WIDTH, name=f"{name}.bus")
    bus = BlockInitiator(driver, LANCE_CLOCK, single=single, name=f"{name}.burst", **burst_sig)
    irq = IrqLine(driver.kernel, f"{name}.irq")
    IrqMirror(driver, irq_sig, irq)
    phy = None
    if station is not None:
        phy = SegmentPhy(driver, station, sig, read_tx_words=read_tx_words,
                         write_rx_words=write_rx_words)
    return LanceRtl(bus, irq, phy)


def bind_amaranth(driver: HdlDriver, harness: Any, station: Station | None,
                  name: str = "le0") -> LanceRtl:
    """Bind a :class:`~hw.lance.harness.LanceHarness` simulated by Amaranth (``driver`` is an
    :class:`sim.bindings.amaranth.AmaranthDriver` of a simulator whose clock is
    :data:`LANCE_CLOCK`)."""
    h = harness
    b = h.bus
    bus_sig = dict(addr=b.addr, w_data=b.w_data, r_data=b.r_data, w_en=b.w_en, r_en=b.r_en, ack=b.ack)
    sig = PhySignals(h.tx_en, h.tx_len, h.tx_bad, h.rx_len, h.rx_go, h.crs, h.col)
    tx_mem, rx_mem, bmem = h.bridge.tx_mem, h.bridge.rx_mem, h.burst.mem

    def read(n: int) -> list[int]:
        return [driver.get(tx_mem.data[i]) for i in range(n)]

    def write(words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            driver.set(rx_mem.data[i], w)

    def bread(n: int) -> list[int]:
        return [driver.get(bmem.data[i]) for i in range(n)]

    def bwrite(words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            driver.set(bmem.data[i], w)

    burst_sig = dict(go=h.burst_go, write=h.burst_write, addr=h.burst_addr, count=h.burst_count,
                     done=h.burst_done, mem_read=bread, mem_write=bwrite)
    return _bind(driver, bus_sig, burst_sig, h.irq, sig, station, read, write, name)


def bind_cocotb(driver: HdlDriver, dut: Any, station: Station | None, name: str = "le0") -> LanceRtl:
    """Bind the harness's Verilog top ``dut`` running under cocotb (``driver`` is a
    :class:`sim.bindings.cocotb.CocotbDriver`; the clock is started by the caller at 80 ns)."""
    bus_sig = {k: getattr(dut, f"bus__{k}") for k in ("addr", "w_data", "r_data", "w_en", "r_en", "ack")}
    sig = PhySignals(dut.tx_en, dut.tx_len, dut.tx_bad, dut.rx_len, dut.rx_go,
                     dut.crs, dut.col)
    tx_mem, rx_mem, bmem = dut.bridge.tx_mem, dut.bridge.rx_mem, dut.burst.mem

    def read(n: int) -> list[int]:
        return [driver.get(tx_mem[i]) for i in range(n)]

    def write(words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            rx_mem[i].value = w

    def bread(n: int) -> list[int]:
        return [driver.get(bmem[i]) for i in range(n)]

    def bwrite(words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            bmem[i].value = w

    burst_sig = dict(go=dut.burst_go, write=dut.burst_write, addr=dut.burst_addr,
                     count=dut.burst_count, done=dut.burst_done, mem_read=bread, mem_write=bwrite)
    return _bind(driver, bus_sig, burst_sig, dut.irq, sig, station, read, write, name)


#: The harness memories a direct-Verilator binding exports (see :func:`build_direct`).
DIRECT_MEMORIES = ("bridge.tx_mem", "bridge.rx_mem", "burst.mem", "card.ram")


def build_direct(*, ram_bytes: int | None = None, mac: bytes | None = None):
    """Verilate a :class:`~hw.lance.harness.LanceHarness` for :func:`bind_direct` (cached under
    build/hdl while its Verilog is unchanged) and load a fresh simulation of it."""
    from hw.lance.harness import LanceHarness

    from .verilator_direct import build
    kwargs = {}
    if ram_bytes is not None:
        kwargs["ram_bytes"] = ram_bytes
    if mac is not None:
        kwargs["mac"] = mac
    design = f"lance_harness_{(ram_bytes or 0) // 1024}k_{(mac or b'').hex() or 'default'}"
    return build(lambda: LanceHarness(**kwargs), "lance_harness", memories=DIRECT_MEMORIES,
                 design=design)


def bind_direct(driver: HdlDriver, station: Station | None, name: str = "le0") -> LanceRtl:
    """Bind a harness loaded by :func:`build_direct` (``driver`` is a
    :class:`serveros.verilator_direct.VerilatorDirectDriver`)."""
    model = driver.model
    bus_sig = {k: f"bus__{k}" for k in ("addr", "w_data", "r_data", "w_en", "r_en", "ack")}
    sig = PhySignals("tx_en", "tx_len", "tx_bad", "rx_len", "rx_go", "crs", "col")

    def read(n: int) -> list[int]:
        return model.mem_read("bridge.tx_mem", 0, n)

    def write(words: Sequence[int]) -> None:
        model.mem_write("bridge.rx_mem", 0, list(words))

    def bread(n: int) -> list[int]:
        return model.mem_read("burst.mem", 0, n)

    def bwrite(words: Sequence[int]) -> None:
        model.mem_write("burst.mem", 0, list(words))

    burst_sig = dict(go="burst_go", write="burst_write", addr="burst_addr", count="burst_count",
                     done="burst_done", mem_read=bread, mem_write=bwrite)
    return _bind(driver, bus_sig, burst_sig, "irq", sig, station, read, write, name)


#: Backends that can run the card's RTL inside a serveros co-simulation.
RTL_BACKENDS = ("amaranth", "verilator")


class RtlSession:
    """One HDL simulation of a LANCE card's harness, driving a kernel (see :func:`rtl_session`).

    Attributes
    ----------
    driver : HdlDriver
        The running binding (its ``stats`` count Python wake-ups).
    card : LanceRtl
        The card's bus target, interrupt line and wire adapter.
    waves : Path or None
        The VCD the simulation writes, when ``SERVEROS_WAVES=1`` asked for one.
    """

    def __init__(self, backend: str, driver: HdlDriver, card: LanceRtl, run: Callable[[], None],
                 close: Callable[[], None] | None = None, waves: Path | None = None):
        self.backend = backend
        self.driver = driver
        self.card = card
        self.waves = waves
        self._run = run
        self._close = close

    def run(self) -> None:
        """Run the co-simulation until every non-daemon kernel task has finished."""
        self._run()

    def close(self) -> None:
        """Free the simulation (a Verilated model's memory); the session cannot run again."""
        if self._close is not None:
            self._close()
            self._close = None


def rtl_session(backend: str, kernel, station: Station | None, *, ram_bytes: int | None = None,
                mac: bytes | None = None, name: str = "le0",
                waves: Path | None = None) -> RtlSession:
    """A LANCE card as RTL on ``backend`` (``amaranth`` or ``verilator``), bound to ``kernel``
    and to the segment ``station``; map ``session.card.bus`` on the machine's bus and call
    ``session.run()`` instead of ``kernel.run()``. With ``SERVEROS_WAVES=1`` the simulation
    writes a VCD (``session.waves``) to ``waves``, by default Verilator's to
    ``build/hdl/<design>/verilator-direct-waves/dump.vcd``, Amaranth's to
    ``build/hdl/lance_harness/amaranth-waves/dump.vcd``.

    Raises
    ------
    ValueError
        For an unknown backend.
    """
    if backend == "verilator":
        from .verilator_direct import VerilatorDirectDriver
        model = build_direct(ram_bytes=ram_bytes, mac=mac)
        driver = VerilatorDirectDriver(model, kernel, LANCE_CLOCK, waves=waves)
        card = bind_direct(driver, station, name)
        return RtlSession(backend, driver, card, driver.run, model.close, waves=driver.waves)
    if backend == "amaranth":
        from amaranth.sim import Simulator

        from hw.lance.harness import LanceHarness
        from sim.bindings.amaranth import AmaranthDriver, add_clock
        kwargs = {}
        if ram_bytes is not None:
            kwargs["ram_bytes"] = ram_bytes
        if mac is not None:
            kwargs["mac"] = mac
        harness = LanceHarness(**kwargs)
        sim = Simulator(harness)
        add_clock(sim, LANCE_CLOCK)
        driver = AmaranthDriver(sim, kernel)
        card = bind_amaranth(driver, harness, station, name)
        if not waves_requested():
            return RtlSession(backend, driver, card, sim.run)
        vcd = Path(waves or BUILD_ROOT / "lance_harness" / "amaranth-waves" / "dump.vcd")
        vcd.parent.mkdir(parents=True, exist_ok=True)

        def run_traced() -> None:
            with sim.write_vcd(str(vcd)):
                sim.run()
        return RtlSession(backend, driver, card, run_traced, waves=vcd)
    raise ValueError(f"LANCE RTL backend must be one of {', '.join(RTL_BACKENDS)}, not {backend!r}")
