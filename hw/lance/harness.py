"""The LANCE card as a co-simulation binds it: the card with an MII frame bridge on its wire.

:class:`LanceHarness` is the top level the card's RTL binding (:mod:`hw.lance.attach`) runs on
Amaranth's simulator or Verilator (through :class:`sim.bindings.session.RtlSimulation`). Its ports are the card's host side (the HostBus and
``irq``), the carrier and collision inputs of the card's MII (driven from the simulated
segment), the bridge's frame-transaction side (docs/lance_card.md, :mod:`hw.lance.bridge`), and
the card's socketed station-address ROM (``rom_mac``, loaded by the binding before the run), so
that one build serves cards of every address.
The host bus goes through a :class:`~hw.burst.HostBusBurster`, so that a driver's copy loop
into or out of the card's buffer is one transaction for Python and the same back-to-back
accesses for the card.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..burst import HostBusBurster
from ..bus import HostBus
from .bridge import MiiFrameBridge
from .gateware import LanceCard
from .registers import BUFFER_RAM_SIZE_DEFAULT

__all__ = ["LanceHarness", "BUS_ADDR_WIDTH"]

#: The 2 MiB PMAD-AA window in 32-bit words.
BUS_ADDR_WIDTH = 19


class LanceHarness(wiring.Component):
    """:class:`~hw.lance.gateware.LanceCard` plus :class:`~hw.lance.bridge.MiiFrameBridge`.

    Parameters
    ----------
    ram_bytes : int
        The card's buffer SRAM (default 128 KiB).

    Members
    -------
    bus : In(HostBus(addr_width=19))
        Single accesses (through the burster's pass-through).
    burst_go, burst_write, burst_addr, burst_count : In; burst_done : Out
        Block accesses (see :class:`~hw.burst.HostBusBurster`; its memory is ``burst.mem``).
    irq : Out(1)
    tx_en : Out(1)
        The card is transmitting (watch this: its rise starts a transmission on the segment,
        its fall ends it).
    tx_len, tx_bad : Out
        The bridge's capture of the card's frame (see :class:`MiiFrameBridge`).
    rx_len, rx_go, rx_abort : In; rx_busy : Out
        The bridge's injection side.
    crs, col : In(1)
        Carrier sense and collision, from the segment.
    rom_mac : In(48)
        The station-address ROM's contents (:func:`hw.lance.regs_target.rom_word` of the
        address), driven once before the card's first bus access.
    """

    def __init__(self, *, ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT):
        self.card = LanceCard(ram_bytes=ram_bytes, mac=None)
        self.bridge = MiiFrameBridge()
        self.burst = HostBusBurster(addr_width=BUS_ADDR_WIDTH)
        super().__init__({
            "bus": In(HostBus(addr_width=BUS_ADDR_WIDTH)),
            "burst_go": In(1),
            "burst_write": In(1),
            "burst_addr": In(BUS_ADDR_WIDTH),
            "burst_count": In(10),
            "burst_done": Out(1),
            "irq": Out(1),
            "tx_en": Out(1),
            "tx_len": Out(12),
            "tx_bad": Out(1),
            "rx_len": In(12),
            "rx_go": In(1),
            "rx_abort": In(1),
            "rx_busy": Out(1),
            "crs": In(1),
            "col": In(1),
            "rom_mac": In(48),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.card = card = self.card
        m.submodules.bridge = br = self.bridge
        m.submodules.burst = burst = self.burst
        wiring.connect(m, wiring.flipped(self.bus), burst.host)
        wiring.connect(m, burst.bus, card.bus)
        m.d.comb += [
            burst.go.eq(self.burst_go), burst.write.eq(self.burst_write),
            burst.addr.eq(self.burst_addr), burst.count.eq(self.burst_count),
            self.burst_done.eq(burst.done),
            self.irq.eq(card.irq),
            br.mii_clk.eq(card.mii_clk),
            br.txd.eq(card.txd), br.tx_en.eq(card.tx_en), br.tx_er.eq(card.tx_er),
            card.rxd.eq(br.rxd), card.rx_dv.eq(br.rx_dv), card.rx_er.eq(br.rx_er),
            card.crs.eq(self.crs), card.col.eq(self.col), card.rom_mac.eq(self.rom_mac),
            self.tx_en.eq(card.tx_en),
            self.tx_len.eq(br.tx_len), self.tx_bad.eq(br.tx_bad),
            br.rx_len.eq(self.rx_len), br.rx_go.eq(self.rx_go), br.rx_abort.eq(self.rx_abort),
            self.rx_busy.eq(br.rx_busy),
        ]
        return m
