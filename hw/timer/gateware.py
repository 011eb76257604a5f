"""The timer's RTL: a down counter with a reload register, a sticky status bit and an irq.

Register map and cycle semantics: :mod:`hw.timer.registers`. Bus protocol:
:class:`hw.bus.HostBus`.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.bus import HostBus

from .registers import ADDR_WIDTH, DATA_WIDTH, Ctrl, Reg, Status, bit

__all__ = ["Timer"]


class Timer(wiring.Component):
    """A 32-bit interval timer on the host bus.

    Accesses take the bus's minimum of two cycles (no wait states): the request is acted on at
    the first edge that samples it, and ``ack`` is high in the following cycle.

    Members
    -------
    bus : In(HostBus(addr_width=2, data_width=32))
        Register access (:mod:`hw.timer.registers`).
    irq : Out(1)
        Interrupt request, a level: STATUS.Zero and CTRL.IrqEn.
    """

    bus: In(HostBus(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH))
    irq: Out(1)

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus

        en = Signal(name="en")
        periodic = Signal(name="periodic")
        irq_en = Signal(name="irq_en")
        load = Signal(DATA_WIDTH, name="load")
        count = Signal(DATA_WIDTH, name="count")
        zero = Signal(name="zero")

        # A request is acted on once: in the cycle where ack is high the target ignores it
        # (HostBus protocol), which also makes a held request after ack harmless.
        act = ~bus.ack
        wr = Signal(name="wr")
        rd = Signal(name="rd")
        m.d.comb += [wr.eq(bus.w_en & act), rd.eq(bus.r_en & act)]
        m.d.sync += bus.ack.eq(wr | rd)

        ctrl_value = Signal(DATA_WIDTH)
        m.d.comb += ctrl_value.eq(en << bit(Ctrl.En) | periodic << bit(Ctrl.Periodic)
                                  | irq_en << bit(Ctrl.IrqEn))
        with m.If(rd):
            with m.Switch(bus.addr):
                with m.Case(Reg.Ctrl.word):
                    m.d.sync += bus.r_data.eq(ctrl_value)
                with m.Case(Reg.Load.word):
                    m.d.sync += bus.r_data.eq(load)
                with m.Case(Reg.Count.word):
                    m.d.sync += bus.r_data.eq(count)
                with m.Case(Reg.Status.word):
                    m.d.sync += bus.r_data.eq(zero << bit(Status.Zero))
                with m.Default():
                    m.d.sync += bus.r_data.eq(0)

        # Statement order matters: in Amaranth the last assignment in a cycle wins.
        # 1. Write-1-to-clear of STATUS, before the counter so that an underflow on the same
        #    edge sets Zero again (an expiry is never lost).
        with m.If(wr & (bus.addr == Reg.Status.word) & bus.w_data[bit(Status.Zero)]):
            m.d.sync += zero.eq(0)
        # 2. The counter: LOAD, ..., 1, 0, then the underflow edge.
        with m.If(en):
            with m.If(count == 0):
                m.d.sync += zero.eq(1)
                with m.If(periodic):
                    m.d.sync += count.eq(load)
                with m.Else():
                    m.d.sync += en.eq(0)
            with m.Else():
                m.d.sync += count.eq(count - 1)
        # 3. Bus writes of CTRL and LOAD override the counter's own updates.
        with m.If(wr & (bus.addr == Reg.Ctrl.word)):
            m.d.sync += [
                en.eq(bus.w_data[bit(Ctrl.En)]),
                periodic.eq(bus.w_data[bit(Ctrl.Periodic)]),
                irq_en.eq(bus.w_data[bit(Ctrl.IrqEn)]),
            ]
            with m.If(bus.w_data[bit(Ctrl.En)] & ~en):
                m.d.sync += count.eq(load)          # start: count from LOAD
        with m.If(wr & (bus.addr == Reg.Load.word)):
            m.d.sync += load.eq(bus.w_data)

        m.d.comb += self.irq.eq(zero & irq_en)
        return m
