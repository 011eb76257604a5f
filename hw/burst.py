"""A HostBus initiator that replays a block of word accesses inside the simulator.

A CPU copying a frame into the LANCE card's buffer by programmed I/O makes hundreds of word
accesses in a row. In a co-simulation each access run from Python costs several wake-ups
(:class:`sim.bindings.HostBusInitiator`); :class:`HostBusBurster` lets the binding hand over the
whole block as one transaction (ARCHITECTURE.md: Python talks to RTL at transaction rate) while
the device sees exactly the accesses, and the timing, of a CPU issuing them back to back:

* the first request is sampled at the first rising edge after ``go`` toggles (as a single
  access requested at that time would be);
* each next request is sampled one cycle after the edge at which the previous ``ack`` was
  seen, which is where a CPU that issues the next access as soon as the previous completes
  (:meth:`sim.cpu.CPU.store_words`) presents it;
* ``done`` toggles at the edge at which the last access completes.

Between blocks the burster passes a single-access initiator (``host``) straight through.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .bus import HostBus

__all__ = ["HostBusBurster", "BURST_WORDS"]

#: Largest block per ``go``: 2 KiB, more than the longest Ethernet frame.
BURST_WORDS = 512


class HostBusBurster(wiring.Component):
    """Block PIO for co-simulation (see the module docstring).

    Parameters
    ----------
    addr_width : int
        Word-address width of the bus.

    Members
    -------
    host : In(HostBus)
        Single accesses, passed through while no block is running.
    bus : Out(HostBus)
        To the device.
    go : In(1)
        Toggle to start a block of ``count`` accesses from word address ``addr``.
    write : In(1)
        The block writes :attr:`mem` words 0..count-1 (else it reads into them).
    addr : In(addr_width)
    count : In(10)
        1..512 accesses.
    done : Out(1)
        Toggles when the block's last access completes.
    busy : Out(1)
    """

    def __init__(self, *, addr_width: int):
        if not isinstance(addr_width, int) or addr_width < 1:
            raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
        self._addr_width = addr_width
        #: The block's data: written by the binding before a write block, read after a read.
        self.mem = Memory(shape=32, depth=BURST_WORDS, init=[])
        super().__init__({
            "host": In(HostBus(addr_width=addr_width)),
            "bus": Out(HostBus(addr_width=addr_width)),
            "go": In(1),
            "write": In(1),
            "addr": In(addr_width),
            "count": In(10),
            "done": Out(1),
            "busy": Out(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = self.mem
        rp = self.mem.read_port(domain="comb")
        wp = self.mem.write_port()

        go_prev = Signal()
        m.d.sync += go_prev.eq(self.go)
        start = Signal()
        m.d.comb += start.eq((self.go != go_prev) & ~self.busy)

        idx = Signal(10)
        base = Signal(self._addr_width)
        count = Signal(10)
        write = Signal()
        # While starting, the block's parameters come straight from the inputs, so the first
        # request is on the bus in the same cycle as the toggle.
        cur_idx = Mux(self.busy, idx, 0)
        cur_base = Mux(self.busy, base, self.addr)
        cur_write = Mux(self.busy, write, self.write)
        active = Signal()
        m.d.comb += [
            active.eq(self.busy | start),
            rp.addr.eq(cur_idx),
            wp.addr.eq(idx),
            wp.data.eq(self.bus.r_data),
        ]
        with m.If(active):
            m.d.comb += [
                self.bus.addr.eq(cur_base + cur_idx),
                self.bus.w_data.eq(rp.data),
                self.bus.w_en.eq(cur_write),
                self.bus.r_en.eq(~cur_write),
            ]
        with m.Else():
            m.d.comb += [
                self.bus.addr.eq(self.host.addr),
                self.bus.w_data.eq(self.host.w_data),
                self.bus.w_en.eq(self.host.w_en),
                self.bus.r_en.eq(self.host.r_en),
            ]
        m.d.comb += [self.host.r_data.eq(self.bus.r_data),
                     self.host.ack.eq(self.bus.ack & ~self.busy)]

        with m.If(start):
            m.d.sync += [self.busy.eq(1), idx.eq(0), base.eq(self.addr), write.eq(self.write),
                         count.eq(self.count)]
        with m.If(self.busy & self.bus.ack):
            # The access completes at this edge; the device ignores the held request in this
            # cycle and samples the next one at the following edge.
            m.d.comb += wp.en.eq(~write)
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx + 1 >= count):
                m.d.sync += [self.busy.eq(0), self.done.eq(~self.done)]
        return m
