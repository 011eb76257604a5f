"""A pipe list as a block on a card's buffer port: the host's copy loop checksummed in hardware.

Design contract: docs/ilp_pipes.md, "A block at the LANCE buffer port"; register map and
layouts: :mod:`hw.ilp.buffer_port_regs`; cycle-exact twin: :mod:`hw.ilp.buffer_port_model`.

Structure
---------
* **Pass-through.** The block sits on the host bus (:class:`hw.bus.HostBus`) between the CPU
  (``host``) and the card's register target (``card``). Every access not to the block's own
  registers goes through unchanged and combinationally (address, data, enables one way,
  ``ack`` and ``r_data`` the other): the card's wait states, and so its timing, are its own.
* **Tap.** In the cycle the card acknowledges an access of the open window's direction (writes
  for transmit, reads for receive) at the block's *cursor* (the next bus word of the window),
  the block takes the access's data bytes (:class:`~hw.ilp.buffer_port_regs.Layout`: four
  per word, or two in 16-in-32; a write's as the request held them the cycle before, since
  the host may drop its request while ``ack`` is high), drops those before the window's start
  and after its end, and appends them to a *packer* of up to 7 bytes; the cursor moves on.
* **Packer.** Whenever it holds 4 bytes, or the window's last bytes (zero padded), it offers
  them as one network-order word to a :class:`~hw.ilp.gateware.PipeDatapath` of the pipe
  list, whose output is discarded (always ready): the datapath takes a word every cycle, and
  a bus access lasts two cycles at the least, so the pipes always keep up and the block adds
  no wait state to a buffer access. The window's last access can leave two words (7 bytes);
  they go in on consecutive cycles.
* **Interlock.** The block's registers answer in one cycle (``ack`` the cycle after the
  request is first sampled), except while a finished window's words are still in the packer
  or the datapath (``N + 1`` or ``N + 2`` cycles after its last access, ``N`` pipes): then the
  access waits, so the host may read ``RESULT`` right after its last buffer access.
* **Clearing.** A ``CTL`` write resets the datapath (an ``ResetInserter``: accumulators,
  words in flight, results), the packer and the flags in its effect cycle.
"""
from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from .buffer_port_regs import (CTL, LENGTH, RESULT, WINDOW_BITS, WSTART, Ctl, Status,
                               check_layout, check_port, register_count)
from .gateware import PipeDatapath
from .pipelist import PipeList
from .registers import Pipe

__all__ = ["BufferPort"]


class BufferPort(PipeList, wiring.Component):
    """The block (see the module docstring).

    Parameters
    ----------
    pipes : sequence of Pipe
        The pipe list the window's words go through (keyword-only, as all).
    layout : Layout or str
        ``"contiguous"`` (PMAD-AA) or ``"16-in-32"`` (DS3100).
    addr_width : int
        The host bus's word-address width (19: the PMAD-AA's 2 MiB window). The buffer's data
        starts at word address 0.
    regs_addr : int
        The word address of the block's first register (``CTL``).

    Members
    -------
    host : In(HostBus(addr_width, 32))
        From the CPU.
    card : Out(HostBus(addr_width, 32))
        To the card's register target (every access but those to the block's registers).
    done : Out(1)
        High for one cycle when a window's results are in ``RESULT`` (the datapath's ``done``).

    Raises
    ------
    TypeError, ValueError, PipeError
        For a bad pipe list (:func:`hw.ilp.pipelist.check_pipes`), layout or bus parameter.
    """

    def __init__(self, *, pipes: Sequence[Pipe], layout="contiguous", addr_width: int = 19,
                 regs_addr: int):
        try:
            PipeList.__init__(self, pipes=pipes)
            self.layout = check_layout(layout)
            check_port(addr_width=addr_width, regs_addr=regs_addr,
                       results=len(self.result_names))
        except (TypeError, ValueError):
            self._MustUse__silence = True      # refused: no "created but never used" warning
            raise
        self.addr_width, self.regs_addr = addr_width, regs_addr
        bus = HostBus(addr_width=addr_width, data_width=32)
        wiring.Component.__init__(self, {"host": In(bus), "card": Out(bus), "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        host, card = self.host, self.card
        aw, b = self.addr_width, self.layout.bytes_per_word
        nres = len(self.result_names)
        clear = Signal()                        # a CTL write: everything back to idle
        path = PipeDatapath(pipes=self._pipes)
        m.submodules.pipes = ResetInserter(clear)(path)
        m.d.comb += [path.o_stream.ready.eq(1), self.done.eq(path.done)]

        # --- Pass-through and the block's own registers ----------------------------------------
        mine = Signal()
        m.d.comb += mine.eq((host.addr >= self.regs_addr)
                            & (host.addr < self.regs_addr + register_count(nres)))
        ack_mine, rdata_mine = Signal(), Signal(32)
        m.d.comb += [
            card.addr.eq(host.addr), card.w_data.eq(host.w_data),
            card.w_en.eq(host.w_en & ~mine), card.r_en.eq(host.r_en & ~mine),
            host.ack.eq(card.ack | ack_mine),
            host.r_data.eq(Mux(ack_mine, rdata_mine, card.r_data)),
        ]
        armed, rx, done_flag, order, inflight, final = (Signal(name=n) for n in (
            "armed", "rx", "done_flag", "order", "inflight", "final"))
        wstart, length = Signal(WINDOW_BITS), Signal(WINDOW_BITS)
        cursor, first, last = Signal(aw), Signal(aw), Signal(aw)
        left = Signal(WINDOW_BITS)
        skip = Signal(range(b))
        serve = Signal()
        m.d.comb += serve.eq((host.r_en | host.w_en) & mine & ~ack_mine & ~inflight)
        m.d.sync += ack_mine.eq(serve)
        offset = (host.addr - self.regs_addr)[:8]
        status = (Mux(armed, int(Status.ARMED), 0) | Mux(rx, int(Status.RX), 0)
                  | Mux(done_flag, int(Status.DONE), 0) | Mux(order, int(Status.ORDER), 0))
        with m.If(serve & host.r_en):
            with m.Switch(offset):
                with m.Case(CTL):
                    m.d.sync += rdata_mine.eq(status)
                with m.Case(WSTART):
                    m.d.sync += rdata_mine.eq(wstart)
                with m.Case(LENGTH):
                    m.d.sync += rdata_mine.eq(length)
                for k in range(nres):
                    with m.Case(RESULT + k):
                        m.d.sync += rdata_mine.eq(path.results[k])

        # --- The tap: an access of the window's direction at the cursor ------------------------
        # The host may drop (or change) its request in the cycle ``ack`` is high (HostBus), so
        # the request is taken from the cycle before, when the card was still seeing it.
        req_addr, req_data, req_write = Signal(aw), Signal(32), Signal()
        with m.If(card.r_en | card.w_en):
            m.d.sync += [req_addr.eq(card.addr), req_data.eq(card.w_data),
                         req_write.eq(card.w_en)]
        seen = armed & card.ack & (req_write != rx)
        feed = Signal()
        m.d.comb += feed.eq(seen & (req_addr == cursor))
        with m.If(seen & (req_addr != cursor) & (req_addr >= first) & (req_addr <= last)):
            m.d.sync += order.eq(1)
        lanes = Mux(rx, card.r_data, req_data)[:8 * b] >> (skip * 8)
        room = Signal(range(b + 1))
        m.d.comb += room.eq(b - skip)
        take_n = Signal(range(b + 1))
        m.d.comb += take_n.eq(Mux(left < room, left, room))
        incoming = Cat(*(Mux(i < take_n, lanes.word_select(i, 8), 0) for i in range(b)))

        # --- The packer: bytes in buffer order, byte j in bits 8j..8j+7, zero beyond n --------
        pk, n = Signal(64), Signal(range(8))
        word_ready = (n >= 4) | (final & (n != 0))
        m.d.comb += [
            path.i_stream.valid.eq(word_ready),
            path.i_stream.payload.data.eq(Cat(pk[24:32], pk[16:24], pk[8:16], pk[0:8])),
            path.i_stream.payload.last.eq(final & (n <= 4)),
        ]
        taken = path.i_stream.valid & path.i_stream.ready
        base = Mux(taken, pk[32:64], pk)
        nb = Signal(range(8))
        m.d.comb += nb.eq(Mux(taken, Mux(n >= 4, n - 4, 0), n))
        placed = (incoming << (nb * 8))[:64]
        m.d.sync += [pk.eq(base | Mux(feed, placed, 0)), n.eq(nb + Mux(feed, take_n, 0))]
        with m.If(feed):
            m.d.sync += [cursor.eq(cursor + 1), left.eq(left - take_n), skip.eq(0)]
            with m.If(left == take_n):
                m.d.sync += [armed.eq(0), final.eq(1), inflight.eq(1)]
        with m.If(taken & path.i_stream.payload.last):
            m.d.sync += final.eq(0)
        with m.If(path.o_stream.valid & path.o_stream.payload.last):    # always ready
            m.d.sync += [inflight.eq(0), done_flag.eq(1)]

        # --- Register writes (after the tap: a CTL write wins) --------------------------------
        with m.If(serve & host.w_en):
            with m.Switch(offset):
                with m.Case(CTL):
                    sh = b.bit_length() - 1         # b is 2 or 4
                    start_w = wstart[sh:sh + aw]
                    end = (wstart + length - 1)[sh:sh + aw]
                    m.d.comb += clear.eq(1)
                    m.d.sync += [
                        armed.eq(((host.w_data & int(Ctl.START)) != 0) & (length != 0)),
                        rx.eq((host.w_data & int(Ctl.RX)) != 0),
                        done_flag.eq(0), order.eq(0), final.eq(0), pk.eq(0), n.eq(0),
                        cursor.eq(start_w), first.eq(start_w),
                        last.eq(end), left.eq(length), skip.eq(wstart[:sh]),
                    ]
                with m.Case(WSTART):
                    m.d.sync += wstart.eq(host.w_data)
                with m.Case(LENGTH):
                    m.d.sync += length.eq(host.w_data)
        return m
