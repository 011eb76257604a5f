"""A test rig for the buffer-port pipe block: the block in front of a buffer SRAM, and its twin.

:class:`BufferPortHarness` is :class:`hw.ilp.buffer_port.BufferPort` on the host bus of a
plain buffer SRAM that acknowledges as the LANCE card's register target does (a write takes
effect and raises ``ack`` ``write_wait`` cycles after the request is first sampled, a read
``read_wait``; defaults :data:`hw.lance.timing.BUS_WRITE_WAIT` / ``BUS_READ_WAIT``), so the
block can be checked on its own, in Amaranth's simulator and under cocotb.
:class:`HarnessModel` is the same rig built from :class:`hw.ilp.buffer_port_model.BufferPortModel`
and a closed-form SRAM target: :meth:`HarnessModel.run` answers, for a list of host accesses,
every access's ``ack`` cycle and read data and every window's ``done`` cycle and results.

Host accesses (both rigs): ``(write, addr, data, gap)``; access ``j`` is presented (enable
high) from cycle ``q_j = ack_{j-1} + 1 + gap`` (``q_0 = gap``), held until ``ack``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from ..lance.timing import BUS_READ_WAIT, BUS_WRITE_WAIT
from .buffer_port import BufferPort
from .buffer_port_model import BufferPortModel

__all__ = ["BufferPortHarness", "HarnessModel", "check_waits"]


def check_waits(read_wait: int, write_wait: int) -> None:
    """Check the SRAM target's wait states.

    Raises
    ------
    ValueError
        If either is not an int from 1 to 7.
    """
    for name, v in (("read_wait", read_wait), ("write_wait", write_wait)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 7:
            raise ValueError(f"{name} must be an int from 1 to 7, not {v!r}")


class BufferPortHarness(wiring.Component):
    """The block (``pipes``, ``layout``, ``addr_width``, ``regs_addr``: as
    :class:`~hw.ilp.buffer_port.BufferPort`) in front of a ``2 ** addr_width``-word SRAM.

    Members
    -------
    host : In(HostBus(addr_width, 32))
    done : Out(1)
        The block's.
    """

    def __init__(self, *, pipes, layout="contiguous", addr_width: int = 10, regs_addr: int,
                 read_wait: int = BUS_READ_WAIT, write_wait: int = BUS_WRITE_WAIT):
        check_waits(read_wait, write_wait)
        self.block = BufferPort(pipes=pipes, layout=layout, addr_width=addr_width,
                                regs_addr=regs_addr)
        self.read_wait, self.write_wait = read_wait, write_wait
        self.ram = Memory(shape=32, depth=1 << addr_width, init=[])
        super().__init__({"host": In(HostBus(addr_width=addr_width, data_width=32)),
                          "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self.block
        m.submodules.ram = ram = self.ram
        wiring.connect(m, wiring.flipped(self.host), block.host)
        m.d.comb += self.done.eq(block.done)
        bus = block.card
        rd, wr = ram.read_port(), ram.write_port()
        busy, is_w, cnt = Signal(), Signal(), Signal(3)
        m.d.comb += [rd.addr.eq(bus.addr), wr.addr.eq(bus.addr), wr.data.eq(bus.w_data)]
        m.d.sync += bus.ack.eq(0)
        with m.If((bus.r_en | bus.w_en) & ~busy & ~bus.ack):
            m.d.sync += [busy.eq(1), cnt.eq(1), is_w.eq(bus.w_en)]
        with m.Elif(busy):
            m.d.sync += cnt.eq(cnt + 1)
            with m.If(is_w & (cnt == self.write_wait)):
                m.d.comb += wr.en.eq(1)
                m.d.sync += [busy.eq(0), bus.ack.eq(1)]
            with m.If(~is_w & (cnt == self.read_wait)):
                m.d.sync += [busy.eq(0), bus.ack.eq(1), bus.r_data.eq(rd.data)]
        return m


class HarnessModel:
    """:class:`BufferPortHarness`'s twin (same parameters).

    Attributes
    ----------
    block : BufferPortModel
    ram : numpy.ndarray of uint32
        The SRAM's words.
    """

    def __init__(self, *, pipes, layout="contiguous", addr_width: int = 10, regs_addr: int,
                 read_wait: int = BUS_READ_WAIT, write_wait: int = BUS_WRITE_WAIT):
        check_waits(read_wait, write_wait)
        self.block = BufferPortModel(pipes=pipes, layout=layout, addr_width=addr_width,
                                     regs_addr=regs_addr)
        self.read_wait, self.write_wait = read_wait, write_wait
        self.ram = np.zeros(1 << addr_width, dtype=np.uint32)

    def run(self, accesses: Sequence[tuple]) -> list[tuple[int, int]]:
        """Each access's ``ack`` cycle and data read (0 for a write), from an idle rig at
        cycle 0 (see the module docstring for ``accesses``).

        The SRAM target starts an access in the cycle it is first presented (it is idle then:
        the previous access ended with its ``ack``) and raises ``ack`` ``wait + 1`` cycles
        later (the request is registered at the end of that cycle, the wait counter reaches
        ``wait`` ``wait - 1`` cycles on, and ``ack`` is a register).
        """
        out, ack = [], -1
        for write, addr, data, gap in accesses:
            q = ack + 1 + gap
            if self.block.claims(addr):
                ack, value = self.block.register_access(write=write, addr=addr, data=data,
                                                        cycle=q)
            else:
                ack = q + (self.write_wait if write else self.read_wait) + 1
                if write:
                    self.ram[addr] = data & 0xFFFF_FFFF
                value = 0 if write else int(self.ram[addr])
                self.block.observe(write=write, addr=addr, data=data if write else value,
                                   ack_cycle=ack)
            out.append((ack, value))
        return out
