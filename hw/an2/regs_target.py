"""The AN2 card's register target: the host bus, Control/Status/IrqCause, the rings' host-side
registers, the counters, interrupt coalescing's registers and Control.Reset.

One of the parts of :class:`~hw.an2.gateware.An2Card`. The register map and reset values are
:mod:`hw.an2.registers` (docs/an2_card.md, "Host bus"). Registers an engine advances (TxConsumer,
CqProducer, PoolConsumer) live in that engine and are only read here. The engines report what
they did with one-cycle strobes (counter increments, interrupt causes, a ring fault), which take
effect at the next edge, after the bus: a cause set on the same edge as a clearing write stays.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..bus import HostBus
from . import timing as T
from .registers import (ADDR_WIDTH, COALESCE_TIME_BITS, COUNTERS_OFFSET, NUM_POOLS, NUM_VCS,
                        RESET, Control, Counter, Irq, Reg, pool_reg)

__all__ = ["RegsTarget", "ERROR_COUNTERS"]

#: The counters whose counting sets IrqCause.Error.
ERROR_COUNTERS = (Counter.CrcErrors, Counter.OversizePdus, Counter.NoBuffer, Counter.LostCells,
                  Counter.DmaFaults, Counter.UnknownVc)


def _any(terms):
    out = Const(0, 1)
    for t in terms:
        out = out | t
    return out


class _Ring:
    """A ring's host-side registers (base, size, and the host's index)."""

    def __init__(self, name: str):
        self.base = Signal(32, name=f"{name}_base")
        self.size = Signal(13, name=f"{name}_size", init=RESET[Reg.TxSize])
        self.host = Signal(12, name=f"{name}_host")     # producer (tx, pools) / consumer (cq)


class RegsTarget(wiring.Component):
    """The host bus side of the card.

    Members
    -------
    bus : In(HostBus(addr_width=ADDR_WIDTH, data_width=32))

    Attributes (the engines' side, plain signals)
    ----------------------------------------------
    tx, cq, pools[p] : rings' ``base``, ``size``, ``host`` (registers)
    tx_cons, cq_prod, pool_cons[p] : inputs, the engines' indices (read by the host)
    tx_on, rx_on : the engines may run (Status.TxOn / RxOn and not Fault)
    loopback, coalesce_count, coalesce_time, irq_enable : registers
    tx_kick : strobe, the cycle before a TxProducer or Control write takes effect
    cq_cons_next : CqConsumer as it is after the coming edge
    cq_check : strobe, a CqConsumer write takes effect at the coming edge
    rst : Control.Reset in progress (the engines are held in reset)
    reset_index : the VC entry the reset clears in this cycle (with ``rst``)
    vc_we, vc_index, vc_wdata : VcEntry writes (to the VC table)
    vc_rdata : input, the VC table entry at ``vc_index`` with its state (VcEntry's value)
    link_status : input, the Link bits from the pins
    count : input, one bit per Counter, count one at the coming edge
    cells_tx : input, cells sent at the coming edge (0 .. 2; CellsTx's bit of ``count`` unused)
    cause : input, Irq bits set at the coming edge
    fault : input, a ring fault at the coming edge (Status.Fault, the engines stop)
    cq_full : input, Status.CqFull
    irq : the interrupt line (registered)
    """

    def __init__(self):
        super().__init__({"bus": In(HostBus(addr_width=ADDR_WIDTH, data_width=32))})
        self.tx = _Ring("tx")
        self.cq = _Ring("cq")
        self.pools = [_Ring(f"pool{p}") for p in range(NUM_POOLS)]
        self.tx_cons = Signal(12)
        self.cq_prod = Signal(12)
        self.pool_cons = [Signal(12, name=f"pool{p}_cons") for p in range(NUM_POOLS)]
        self.tx_on = Signal()
        self.rx_on = Signal()
        self.loopback = Signal()
        self.coalesce_count = Signal(8, init=RESET[Reg.CoalesceCount])
        self.coalesce_time = Signal(COALESCE_TIME_BITS)
        self.irq_enable = Signal(4)
        self.tx_kick = Signal()
        self.cq_cons_next = Signal(12)
        self.cq_check = Signal()
        self.rst = Signal()
        self.reset_index = Signal(range(NUM_VCS))
        self.vc_we = Signal()
        self.vc_index = Signal(range(NUM_VCS))
        self.vc_wdata = Signal(27)
        self.vc_rdata = Signal(27)
        self.link_status = Signal(3)
        self.count = Signal(len(Counter))
        self.cells_tx = Signal(2)
        self.cause = Signal(4)
        self.fault = Signal()
        self.cq_full = Signal()
        self.irq = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        ctl_tx, ctl_rx = Signal(), Signal()
        st_tx, st_rx, st_fault = Signal(), Signal(), Signal()
        irq_cause = Signal(4)
        counters = [Signal(32, name=f"ctr_{c.name}") for c in Counter]
        rst_cnt = Signal(range(T.RESET_CYCLES + 1))
        link_prev = Signal(3)
        m.d.comb += [self.rst.eq(rst_cnt != 0), self.reset_index.eq(T.RESET_CYCLES - rst_cnt),
                     self.tx_on.eq(st_tx & ~st_fault), self.rx_on.eq(st_rx & ~st_fault)]
        link = Signal(3)
        m.d.comb += link.eq(Mux(self.loopback, 0b111, self.link_status))

        # --- the bus: ack at e0 + BUS_WAIT_CYCLES --------------------------------------------
        wait = Signal(range(T.BUS_WAIT_CYCLES + 1))
        act = Signal()      # the access takes effect at the coming edge
        m.d.sync += bus.ack.eq(0)
        with m.If(~bus.ack & (bus.r_en | bus.w_en)):
            with m.If(wait == T.BUS_WAIT_CYCLES):
                m.d.comb += act.eq(1)
                m.d.sync += [wait.eq(0), bus.ack.eq(1)]
            with m.Else():
                m.d.sync += wait.eq(wait + 1)
        we = Signal()
        m.d.comb += we.eq(act & bus.w_en)
        wd = bus.w_data
        word = bus.addr

        # --- read multiplexer (values just before the ack edge) ------------------------------
        rd = Signal(32)
        with m.Switch(word):
            with m.Case(Reg.Control.word):
                m.d.comb += rd.eq(Mux(self.rst, int(Control.Reset),
                                      ctl_tx << 1 | ctl_rx << 2 | self.loopback << 3))
            with m.Case(Reg.Status.word):
                m.d.comb += rd.eq(st_tx | st_rx << 1 | st_fault << 2 | self.cq_full << 3)
            with m.Case(Reg.IrqCause.word):
                m.d.comb += rd.eq(irq_cause)
            with m.Case(Reg.IrqEnable.word):
                m.d.comb += rd.eq(self.irq_enable)
            with m.Case(Reg.CoalesceCount.word):
                m.d.comb += rd.eq(self.coalesce_count)
            with m.Case(Reg.CoalesceTime.word):
                m.d.comb += rd.eq(self.coalesce_time)
            with m.Case(Reg.LinkStatus.word):
                m.d.comb += rd.eq(link)
            with m.Case(Reg.VcIndex.word):
                m.d.comb += rd.eq(self.vc_index)
            with m.Case(Reg.VcEntry.word):
                m.d.comb += rd.eq(self.vc_rdata)
            for ring, regs, idx in ((self.tx, Reg.TxBase, self.tx_cons),
                                    (self.cq, Reg.CqBase, self.cq_prod),
                                    *((self.pools[p], pool_reg(Reg.PoolBase, p), self.pool_cons[p])
                                      for p in range(NUM_POOLS))):
                w0 = int(regs) >> 2
                host_first = regs != Reg.CqBase    # tx/pools: producer is the host's
                with m.Case(w0):
                    m.d.comb += rd.eq(ring.base)
                with m.Case(w0 + 1):
                    m.d.comb += rd.eq(ring.size)
                with m.Case(w0 + 2):
                    m.d.comb += rd.eq(ring.host if host_first else idx)
                with m.Case(w0 + 3):
                    m.d.comb += rd.eq(idx if host_first else ring.host)
            for c in Counter:
                with m.Case((COUNTERS_OFFSET >> 2) + c.value):
                    m.d.comb += rd.eq(counters[c.value])
        with m.If(act):
            m.d.sync += bus.r_data.eq(Mux(bus.r_en, rd, 0))

        # --- writes ----------------------------------------------------------------------------
        def ring_writes(ring, regs, engine_off, host_is_producer, kick=None):
            w0 = int(regs) >> 2
            with m.If(we & (word == w0) & engine_off):
                m.d.sync += ring.base.eq(wd & ~0xF)
            with m.If(we & (word == w0 + 1) & engine_off & _pow2(wd)):
                m.d.sync += ring.size.eq(wd)
            host_word = w0 + 2 if host_is_producer else w0 + 3
            with m.If(we & (word == host_word)):
                m.d.sync += ring.host.eq(wd & (ring.size - 1))
                if kick is not None:
                    m.d.comb += kick.eq(1)

        m.d.comb += self.cq_cons_next.eq(self.cq.host)
        ring_writes(self.tx, Reg.TxBase, ~ctl_tx, True, kick=self.tx_kick)
        ring_writes(self.cq, Reg.CqBase, ~ctl_tx & ~ctl_rx, False, kick=self.cq_check)
        for p in range(NUM_POOLS):
            ring_writes(self.pools[p], pool_reg(Reg.PoolBase, p), ~ctl_rx, True)
        with m.If(self.cq_check):
            m.d.comb += self.cq_cons_next.eq(wd & (self.cq.size - 1))
        with m.If(we & (word == Reg.Control.word) & ~self.rst & ~(wd & Control.Reset).any()):
            m.d.sync += [ctl_tx.eq(wd[1]), ctl_rx.eq(wd[2]), self.loopback.eq(wd[3]),
                         st_tx.eq(wd[1] & ~st_fault), st_rx.eq(wd[2] & ~st_fault)]
            m.d.comb += self.tx_kick.eq(1)
        with m.If(we & (word == Reg.IrqEnable.word)):
            m.d.sync += self.irq_enable.eq(wd[:4])
        with m.If(we & (word == Reg.CoalesceCount.word)):
            m.d.sync += self.coalesce_count.eq(wd[:8])
        with m.If(we & (word == Reg.CoalesceTime.word)):
            m.d.sync += self.coalesce_time.eq(wd[:COALESCE_TIME_BITS])
        with m.If(we & (word == Reg.VcIndex.word)):
            m.d.sync += self.vc_index.eq(wd[:10])
        m.d.comb += [self.vc_we.eq(we & (word == Reg.VcEntry.word)), self.vc_wdata.eq(wd[:27])]

        # --- counters: engines count, a host write clears ---------------------------------------
        for c in Counter:
            ctr = counters[c.value]
            inc = self.cells_tx if c == Counter.CellsTx else self.count[c.value]
            with m.If(we & (word == (COUNTERS_OFFSET >> 2) + c.value)):
                m.d.sync += ctr.eq(0)
            with m.Elif(inc != 0):     # saturating
                m.d.sync += ctr.eq(Mux(ctr > 0xFFFF_FFFF - inc, 0xFFFF_FFFF, ctr + inc))

        # --- interrupt causes and the line --------------------------------------------------------
        error = Signal()
        m.d.comb += error.eq(_any(self.count[c.value] for c in ERROR_COUNTERS) | self.fault)
        clear = Mux(we & (word == Reg.IrqCause.word), wd[:4], 0)
        m.d.sync += link_prev.eq(link)
        set_bits = self.cause | Mux(error, int(Irq.Error), 0) | Mux(link != link_prev,
                                                                   int(Irq.Link), 0)
        m.d.sync += irq_cause.eq((irq_cause & ~clear) | set_bits)
        m.d.sync += self.irq.eq((irq_cause & self.irq_enable).any())
        with m.If(self.fault):
            m.d.sync += [st_fault.eq(1), st_tx.eq(0), st_rx.eq(0)]

        # --- Control.Reset: every register to its reset value at once, then the sweep ----------
        with m.If(rst_cnt != 0):
            m.d.sync += rst_cnt.eq(rst_cnt - 1)
        with m.If(we & (word == Reg.Control.word) & (wd & Control.Reset).any()):
            m.d.sync += rst_cnt.eq(T.RESET_CYCLES)
            regs = [ctl_tx, ctl_rx, self.loopback, st_tx, st_rx, st_fault, irq_cause,
                    self.irq_enable, self.coalesce_count, self.coalesce_time, self.vc_index,
                    self.irq, *counters]
            for ring in (self.tx, self.cq, *self.pools):
                regs += [ring.base, ring.size, ring.host]
            m.d.sync += [r.eq(r.init) for r in regs]
        return m


def _pow2(value):
    """Gateware: ``value`` is a legal ring size (a power of two, 2 .. 4096)."""
    return _any(value == (1 << b) for b in range(1, 13))
