"""The AN2-style ATM card's RTL: registers, VC table, transmit and receive engines, one DMA port.

Design contract: docs/an2_card.md (the pins: "Pins"); register map and memory formats:
:mod:`hw.an2.registers`; every fixed latency: :mod:`hw.an2.timing`. The transaction-level
twin is :class:`hw.an2.model.An2Model`; tests/hw/test_an2_equivalence.py runs both on the
same stimulus.

Structure
---------
* :class:`~hw.an2.regs_target.RegsTarget`: the host bus (2 wait states), Control, Status,
  IrqCause/IrqEnable and the line, the rings' host registers, the counters, Control.Reset.
* The **VC table**: 1024 x 23 bits of SRAM (enable, aal5, pool, owner, rx_csum, rx_swap,
  pipe_start), a write port for the host (VcEntry) and the reset sweep, a read port each for
  the host, the transmit engine and the receive engine.
* :class:`~hw.an2.tx_engine.TxEngine` with the :class:`~hw.an2.cell_issue.CellIssuer` (the
  transmit FIFO, slot pacing, trailer and CRC) and the :class:`~hw.an2.cell_issue.SlotClock`.
* :class:`~hw.an2.rx_ingress.RxIngress` (receive FIFO, per-cell CRC) and
  :class:`~hw.an2.rx_engine.RxEngine` (per-VC reassembly state in its own SRAM).
* :class:`~hw.an2.cq_writer.CqWriter`: completions for both engines, phase bit, coalescing.
* :class:`~hw.an2.dma_arbiter.DmaArbiter`: the card's one DMA master port (receive engine
  first, then completions, then transmit).
* **Control.Reset** holds every part but the register target's bus and the slot clock in reset
  for ``RESET_CYCLES`` while the VC table and the reassembly state are cleared, one entry a
  cycle.
* **Loopback**: the issuer's cells go to the receive FIFO instead of the ``tx_*`` pins, and the
  ``rx_*`` pins are ignored.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from . import timing as T
from .cell_issue import CellIssuer, SlotClock
from .cq_writer import CqWriter
from .dma_arbiter import MASTER_BUS, DmaArbiter
from .registers import ADDR_WIDTH, NUM_POOLS, NUM_VCS, Counter, VcState
from .regs_target import RegsTarget
from .rx_engine import RxEngine, vc_table_layout
from .rx_ingress import RxIngress
from .tx_engine import TxEngine

__all__ = ["An2Card"]


class An2Card(wiring.Component):
    """The AN2-style ATM card (docs/an2_card.md).

    Members
    -------
    bus : In(HostBus(addr_width=ADDR_WIDTH, data_width=32))
        The register window.
    dma : Out(DmaBus(addr_width=32, count_width=8, features={"err", "owner"}))
        The DMA master port into host memory.
    irq : Out(1)
        ``(IrqCause & IrqEnable) != 0``, registered.
    link_status : In(3)
        :class:`~hw.an2.registers.Link` bits from the PHY.
    rx_valid, rx_soc : In(1); rx_data : In(32)
        Received cells, 13 words each (docs/an2_card.md, "Pins").
    tx_valid, tx_soc : Out(1); tx_data : Out(32)
        Transmitted cells, one per slot.
    """

    bus: In(HostBus(addr_width=ADDR_WIDTH, data_width=32))
    dma: Out(MASTER_BUS)
    irq: Out(1)
    link_status: In(3)
    rx_valid: In(1)
    rx_soc: In(1)
    rx_data: In(32)
    tx_valid: Out(1)
    tx_soc: Out(1)
    tx_data: Out(32)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.regs = regs = RegsTarget()
        m.submodules.slots = slots = SlotClock()
        rst = regs.rst
        issuer = CellIssuer(slots)
        txe = TxEngine(issuer)
        ingress = RxIngress(start_cycles=T.RX_DMA_START_CYCLES)
        rxe = RxEngine(ingress)
        cqw = CqWriter(engines=2)
        arb = DmaArbiter(masters=3)
        for name, part in (("issuer", issuer), ("tx", txe), ("ingress", ingress), ("rx", rxe),
                           ("cq", cqw), ("arbiter", arb)):
            m.submodules[name] = ResetInserter(rst)(part)

        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        wiring.connect(m, rxe.dma, arb.m0)
        wiring.connect(m, cqw.dma, arb.m1)
        wiring.connect(m, txe.dma, arb.m2)
        wiring.connect(m, arb.bus, wiring.flipped(self.dma))
        m.d.comb += [self.irq.eq(regs.irq), regs.link_status.eq(self.link_status)]

        # --- the VC table -----------------------------------------------------------------------
        m.submodules.vc_table = vct = Memory(shape=vc_table_layout, depth=NUM_VCS, init=[])
        vw = vct.write_port()
        v_host = vct.read_port(transparent_for=(vw,))
        v_tx = vct.read_port(transparent_for=(vw,))
        v_rx = vct.read_port(transparent_for=(vw,))
        wd = regs.vc_wdata
        swap = Mux(wd[17:19] == 3, 0, wd[17:19])        # the reserved rx_swap: NoSwap
        m.d.comb += [vw.addr.eq(regs.vc_index),
                     vw.data.eq(Cat(wd[0], wd[1], wd[2:4], wd[8:16], wd[16], swap, wd[19:27])),
                     vw.en.eq(regs.vc_we)]
        with m.If(rst):
            m.d.comb += [vw.addr.eq(regs.reset_index), vw.data.eq(0), vw.en.eq(1)]
        m.d.comb += [v_host.addr.eq(regs.vc_index), v_tx.addr.eq(txe.vc_addr[:10]),
                     txe.vc_data.eq(v_tx.data), v_rx.addr.eq(rxe.vt_addr),
                     rxe.vt_data.eq(v_rx.data), rxe.host_index.eq(regs.vc_index),
                     rxe.rst.eq(rst), rxe.reset_index.eq(regs.reset_index),
                     rxe.kill.eq(regs.vc_we & ~wd[0] & (rxe.host_state == VcState.Reassembling)),
                     rxe.kill_index.eq(regs.vc_index)]
        m.d.comb += regs.vc_rdata.eq(Cat(v_host.data.enable, v_host.data.aal5, v_host.data.pool,
                                         rxe.host_state, Const(0, 2), v_host.data.owner,
                                         v_host.data.rx_csum, v_host.data.rx_swap,
                                         v_host.data.pipe_start))

        # --- transmit ---------------------------------------------------------------------------
        m.d.comb += [txe.tx_on.eq(regs.tx_on), txe.base.eq(regs.tx.base),
                     txe.size.eq(regs.tx.size), txe.prod.eq(regs.tx.host),
                     txe.kick.eq(regs.tx_kick), regs.tx_cons.eq(txe.cons)]
        lb = regs.loopback
        m.d.comb += [self.tx_valid.eq(issuer.valid & ~lb), self.tx_soc.eq(issuer.soc & ~lb),
                     self.tx_data.eq(issuer.data)]

        # --- receive ----------------------------------------------------------------------------
        m.d.comb += [ingress.valid.eq(self.rx_valid), ingress.soc.eq(self.rx_soc),
                     ingress.data.eq(self.rx_data), ingress.lb_valid.eq(issuer.valid),
                     ingress.lb_soc.eq(issuer.soc), ingress.lb_data.eq(issuer.data),
                     ingress.loopback.eq(lb), ingress.slot.eq(slots.in1),
                     rxe.rx_on.eq(regs.rx_on)]
        for p in range(NUM_POOLS):
            m.d.comb += [rxe.pool_base[p].eq(regs.pools[p].base),
                         rxe.pool_size[p].eq(regs.pools[p].size),
                         rxe.pool_prod[p].eq(regs.pools[p].host),
                         regs.pool_cons[p].eq(rxe.pool_cons[p])]

        # --- completions --------------------------------------------------------------------------
        rx_req, tx_req = cqw.requests
        for a, b in ((rx_req, rxe.cq), (tx_req, txe.cq)):
            m.d.comb += [a.req.eq(b.req), a.entry.eq(b.entry), b.done.eq(a.done),
                         b.failed.eq(a.failed)]
        m.d.comb += [cqw.base.eq(regs.cq.base), cqw.size.eq(regs.cq.size),
                     cqw.cons_next.eq(regs.cq_cons_next), cqw.cons_check.eq(regs.cq_check),
                     cqw.coalesce_count.eq(regs.coalesce_count),
                     cqw.coalesce_time.eq(regs.coalesce_time), cqw.probe.eq(rxe.cq_probe),
                     rxe.cq_full.eq(cqw.full), regs.cq_prod.eq(cqw.prod),
                     regs.cq_full.eq(cqw.cq_full), regs.cause.eq(cqw.cause)]

        # --- counters and faults ------------------------------------------------------------------
        bits = {c.name: Const(0, 1) for c in Counter}
        for name, sig in rxe.count.items():
            bits[name] = bits[name] | sig
        bits["OversizePdus"] = bits["OversizePdus"] | txe.oversize
        bits["DmaFaults"] = bits["DmaFaults"] | txe.dma_fault
        bits["PdusTx"] = bits["PdusTx"] | txe.pdus_tx
        m.d.comb += [regs.count.eq(Cat(*(bits[c.name] for c in Counter))),
                     regs.cells_tx.eq(txe.cells_tx),
                     regs.fault.eq(txe.fault | rxe.fault | cqw.fault)]
        return m
