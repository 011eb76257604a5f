"""The AN2 card's co-simulation harness: the RTL with its DMA port and cell pins bridged.

:class:`An2Harness` is what an HDL simulator runs for an RTL AN2 card (``AN2.harness``, through
:func:`hw.an2.rtl_attach.harness`): the :class:`hw.an2.gateware.An2Card` with

* its host bus (``bus__*``) and ``irq`` as the harness's own ports, joined to the machine by the
  generic binder (:mod:`sim.bindings.binder`);
* ``link_status`` as an input port, driven once before the run (the PHY's Signal, FrameLock and
  CellLock: all three when the card has a fibre);
* its DMA master port (with ``err`` and ``owner``) on a :class:`hw.dma.DmaBridge` (submodule
  ``dma``, ports ``dma_*`` with ``dma_owner``, words in ``dma.mem``), served by
  :class:`sim.bindings.dma.DmaServer` on the machine's memory, each burst checked on behalf of
  the VC's owner tag. The bridge's fixed burst time is its minimum, so a burst ends when the
  memory (its timing and its queue of DMA masters) is done, as the model's does
  (:mod:`hw.an2.timing`: a burst of ``w`` words costs the 3MIN's ``w`` + 4 / ``w`` + 2 memory
  cycles, which the memory charges);
* its cell pins on a :class:`hw.an2.link_bridge.CellLinkBridge` (submodule ``link``, ports
  ``link_*``, cells in ``link.rx_mem`` and ``link.tx_mem``), which plays received cells into
  the card at the edges the binding names and captures the cells it sends, so that Python
  deals in cells.

Every port Python watches changes at transaction rate: a DMA burst, a cell sent, an interrupt,
a bus access.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.bus import HostBus
from hw.dma import DmaBridge, bridge_ports, connect_bridge

from .link_bridge import COUNT_BITS, CellLinkBridge
from .registers import ADDR_WIDTH, DATA_WIDTH
from .timing import DMA_MAX_BURST_WORDS

__all__ = ["An2Harness", "MEMORIES", "LINK_PORTS"]

#: The harness memories the binding reads and writes (:attr:`sim.devices.DeviceKind.memories`).
MEMORIES = ("dma.mem", "link.rx_mem", "link.tx_mem")
#: The cell bridge's Python-facing ports, as harness ports ``link_<name>``.
LINK_PORTS = {"rx_put": In(COUNT_BITS), "rx_done": Out(COUNT_BITS), "tx_count": Out(COUNT_BITS),
              "tx_errors": Out(COUNT_BITS)}
#: The DMA bridge's fixed burst time: its minimum, so that the memory alone times a burst.
_DMA_FIXED_CYCLES = 2


class An2Harness(wiring.Component):
    """An :class:`~hw.an2.gateware.An2Card` with its DMA port and cell pins bridged (module
    docstring).

    Members
    -------
    bus : In(HostBus(addr_width=6, data_width=32))
    irq : Out(1)
    link_status : In(3)
        The PHY's :class:`~hw.an2.registers.Link` bits, held constant while it runs.
    dma_* :
        The DMA bridge's ports (see :class:`hw.dma.DmaBridge`), ``dma_owner`` included.
    link_rx_put, link_rx_done, link_tx_count, link_tx_errors :
        The cell bridge's ports (see :class:`~hw.an2.link_bridge.CellLinkBridge`).
    """

    def __init__(self):
        from .gateware import An2Card       # GW's; imported here so the module loads without it
        self.card = An2Card()
        self.dma = DmaBridge(write_cycles=_DMA_FIXED_CYCLES, read_cycles=_DMA_FIXED_CYCLES,
                             depth=DMA_MAX_BURST_WORDS, features={"err", "owner"})
        self.link = CellLinkBridge()
        super().__init__({
            "bus": In(HostBus(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)),
            "irq": Out(1),
            "link_status": In(3),
            **bridge_ports("dma_", 32, DMA_MAX_BURST_WORDS, owner=True),
            **{f"link_{name}": port for name, port in LINK_PORTS.items()},
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        card, dma, link = self.card, self.dma, self.link
        m.submodules.card = card
        m.submodules.dma = dma
        m.submodules.link = link
        wiring.connect(m, wiring.flipped(self.bus), card.bus)
        wiring.connect(m, card.dma, dma.dma)
        m.d.comb += [self.irq.eq(card.irq), card.link_status.eq(self.link_status)]
        connect_bridge(m, self, dma, "dma_")
        m.d.comb += [card.rx_valid.eq(link.rx_valid), card.rx_soc.eq(link.rx_soc),
                     card.rx_data.eq(link.rx_data),
                     link.tx_valid.eq(card.tx_valid), link.tx_soc.eq(card.tx_soc),
                     link.tx_data.eq(card.tx_data), link.rx_put.eq(self.link_rx_put)]
        m.d.comb += [getattr(self, f"link_{n}").eq(getattr(link, n))
                     for n in ("rx_done", "tx_count", "tx_errors")]
        return m
