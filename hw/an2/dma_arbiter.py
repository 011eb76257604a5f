"""The card's one DMA master port, shared by its engines: a fixed-priority burst arbiter.

The transmit engine, the receive engine and the completion writer each have a master port
(:class:`hw.bus.DmaBus`); the card has one (docs/an2_card.md, "Pins"). The arbiter passes a
burst through combinationally, so a master that finds the port free starts its burst on the
edge it raises ``req`` (no added latency: the cycle contract of :mod:`hw.an2.timing` holds for
an uncontended master). A grant lasts until the burst's last ``ack`` or its ``err``; a master
that drops ``req`` before (Control.Reset) ends it too. When several masters wait, the lowest
numbered wins (the card passes the receive engine first: the link never waits for it).
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaBus

__all__ = ["DmaArbiter", "MASTER_BUS"]

#: Every master's port (and the card's): 32-bit byte addresses, bursts up to 255 words, a
#: refusal (``err``) and the owner tag.
MASTER_BUS = DmaBus(addr_width=32, count_width=8, features={"err", "owner"})


class DmaArbiter(wiring.Component):
    """Burst arbiter of ``masters`` :data:`MASTER_BUS` ports onto one.

    Parameters
    ----------
    masters : int
        Number of master ports, 1 .. 8; port 0 has the highest priority.

    Members
    -------
    m0 .. m{masters-1} : In(MASTER_BUS)
        The masters.
    bus : Out(MASTER_BUS)
        The port to host memory.

    Raises
    ------
    ValueError
        If ``masters`` is not 1 .. 8.
    """

    def __init__(self, *, masters: int):
        if not isinstance(masters, int) or isinstance(masters, bool) or not 1 <= masters <= 8:
            raise ValueError(f"masters must be an int in 1 .. 8, not {masters!r}")
        self._n = masters
        super().__init__({**{f"m{i}": In(MASTER_BUS) for i in range(masters)},
                          "bus": Out(MASTER_BUS)})

    @property
    def masters(self) -> int:
        return self._n

    def elaborate(self, platform) -> Module:
        m = Module()
        ports = [getattr(self, f"m{i}") for i in range(self._n)]
        owner = Signal(range(self._n))      # the granted master while `held`
        held = Signal()
        grant = Signal(range(self._n))      # this cycle's master
        active = Signal()
        gap = Signal()      # the cycle after a burst: the bus wants req low there (hw.bus.DmaBus)
        # A held grant stays; otherwise the lowest-numbered requester gets the port now.
        with m.If(held):
            m.d.comb += [grant.eq(owner), active.eq(1)]
        with m.Elif(~gap):
            for i in reversed(range(self._n)):
                with m.If(ports[i].req):
                    m.d.comb += [grant.eq(i), active.eq(1)]
        for i, p in enumerate(ports):
            sel = active & (grant == i)
            with m.If(sel):
                m.d.comb += [self.bus.req.eq(p.req), self.bus.write.eq(p.write),
                             self.bus.addr.eq(p.addr), self.bus.count.eq(p.count),
                             self.bus.w_data.eq(p.w_data), self.bus.owner.eq(p.owner)]
            m.d.comb += [p.r_data.eq(self.bus.r_data), p.ack.eq(sel & self.bus.ack),
                         p.err.eq(sel & self.bus.err)]
        # The burst ends at its last word or its refusal; the master counts its own words, so
        # the arbiter counts them too, to know when to let go.
        left = Signal(8)
        m.d.sync += gap.eq(0)
        with m.If(~held):
            with m.If(active & self.bus.req):
                m.d.sync += [held.eq(1), owner.eq(grant), left.eq(self.bus.count)]
                with m.If(self.bus.ack):        # cannot happen on the first cycle, but be safe
                    m.d.sync += left.eq(self.bus.count - 1)
        with m.Else():
            with m.If(~self.bus.req | self.bus.err | (self.bus.ack & (left == 1))):
                m.d.sync += [held.eq(0), gap.eq(1)]
            with m.Elif(self.bus.ack):
                m.d.sync += left.eq(left - 1)
        return m
