"""The AN2 card's cell slot clock and cell issuer: cells from the transmit FIFO onto the 32-bit
cell interface, one per slot, with the AAL5 trailer and CRC-32 computed as the words go out.

Two parts of :class:`~hw.an2.gateware.An2Card` (docs/an2_card.md, "Pins" and "Link side"):

* :class:`SlotClock` keeps slot time: a counter adding 936 a cycle modulo 33125, so that edge
  ``e`` begins a slot exactly when ``e * 936 mod 33125 < 936``, i.e. at
  :func:`hw.an2.timing.cell_slot_edge`. The counter holds ``e * 936 mod 33125`` in the cycle
  after edge ``e``, where edge 0 is the rising edge at the simulation's time 0 (the clock of
  ``sim.time.Clock`` and cocotb's ``Clock``). Control.Reset does not touch it: the line's
  framing does not stop.
* :class:`CellIssuer` sends the cell at the head of the transmit FIFO in slot ``k`` when it was
  issued (:data:`~hw.an2.timing.TX_CELL_ISSUE_CYCLES` after the engine put it in the FIFO) at
  or before the slot's start: its header goes out in the cycle that begins one edge before
  ``cell_slot_edge(k)`` and its 12 payload words in the 12 cycles after. A cell leaves the
  FIFO's count (``depart``) at ``cell_slot_edge(k)``. For an AAL5 end-of-PDU cell the issuer
  puts the trailer's length in word 11 and the CRC-32 of everything before in word 12; the
  words past a cell's ``words`` are zero (the pad).
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from . import timing as T
from .array_set import array_set
from .crc32 import CRC_INIT, crc32_word

__all__ = ["SlotClock", "CellIssuer", "cell_meta_layout", "TX_FIFO_ENTRIES", "CELL_STRIDE"]

_N, _D = T.CELL_SLOT_CYCLES.denominator, T.CELL_SLOT_CYCLES.numerator   # 936, 33125
#: Physical cell entries of the transmit FIFO: TX_FIFO_CELLS the engine may fill ahead, one
#: being filled, one being sent, rounded to a power of two.
TX_FIFO_ENTRIES = 8
#: Words of FIFO memory per cell (12 used).
CELL_STRIDE = 16

#: What the engine tells the issuer about a cell it puts in the FIFO.
cell_meta_layout = data.StructLayout({
    "vci": 16,      # the header's VCI
    "end": 1,       # AAL5 end of PDU: PTI bit 0, trailer in words 11 and 12
    "first": 1,     # the PDU's first cell: the CRC starts afresh
    "aal5": 1,      # the CRC runs over the payload
    "words": 4,     # payload words in the FIFO (the rest are the pad)
    "length": 16,   # the trailer's length field (with ``end``)
})


class SlotClock(wiring.Component):
    """Slot time of a continuous OC-3c stream (see the module docstring).

    Attributes
    ----------
    in1 : the coming edge begins a slot.
    in2 : the edge after the coming one begins a slot.
    exact2 : with ``in2``: that slot starts exactly on its edge.
    """

    def __init__(self):
        super().__init__({})
        self.in1 = Signal()
        self.in2 = Signal()
        self.exact2 = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        # Edge 0 is the rising edge at time 0 (sim.time.Clock, cocotb's Clock, the bindings'
        # add_clock): the reset value is the one before it, so that after edge e ph = e*936.
        ph = Signal(range(_D), init=_D - _N)
        m.d.sync += ph.eq(Mux(ph + _N >= _D, ph + _N - _D, ph + _N))
        m.d.comb += [self.in1.eq(ph + _N >= _D),
                     self.in2.eq((ph + _N < _D) & (ph + 2 * _N >= _D)),
                     self.exact2.eq(ph + 2 * _N == _D)]
        return m


class CellIssuer(wiring.Component):
    """Sends FIFO cells in their slots (see the module docstring).

    Attributes
    ----------
    fifo : the FIFO's word memory (TX_FIFO_ENTRIES x CELL_STRIDE words, network order); the
        engine writes it through ``fifo_w``.
    push, push2 : strobes from the engine: cell entry ``wr`` (and ``wr + 1`` with ``push2``) is
        complete at the coming edge, with ``meta`` (and, for ``wr + 1``, a trailer-only end
        cell with ``meta2``'s VCI, aal5 and length).
    wr : the entry the engine fills (advanced by the issuer on push).
    valid, soc, data : the cell words (registered), to the pins or the loopback.
    depart : a cell leaves the FIFO's count at the coming edge.
    slots : the :class:`SlotClock`.
    """

    def __init__(self, slots: SlotClock):
        super().__init__({})
        self.slots = slots
        self.fifo = Memory(shape=32, depth=TX_FIFO_ENTRIES * CELL_STRIDE, init=[])
        self.fifo_w = self.fifo.write_port()     # the engine's
        self._fifo_r = self.fifo.read_port()
        self.push = Signal()
        self.push2 = Signal()
        self.meta = Signal(cell_meta_layout)
        self.meta2 = Signal(cell_meta_layout)
        self.wr = Signal(range(TX_FIFO_ENTRIES))
        self.valid = Signal()
        self.soc = Signal()
        self.data = Signal(32)
        self.depart = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fifo = self.fifo
        rport = self._fifo_r
        metas = Array(Signal(cell_meta_layout, name=f"meta{i}") for i in range(TX_FIFO_ENTRIES))
        full = Array(Signal(name=f"full{i}") for i in range(TX_FIFO_ENTRIES))
        aged = Array(Signal(name=f"aged{i}") for i in range(TX_FIFO_ENTRIES))
        rd = Signal(range(TX_FIFO_ENTRIES))
        for i in range(TX_FIFO_ENTRIES):
            m.d.sync += aged[i].eq(full[i])
        second = Signal.like(self.wr)
        m.d.comb += second.eq(self.wr + 1)
        with m.If(self.push):
            array_set(m, metas, self.wr, self.meta)
            array_set(m, full, self.wr, 1)
            with m.If(self.push2):
                # A trailer-only end cell (the issuer sets the constant fields: see
                # docs/an2_card.md, "The gateware", on constant-only comb drivers).
                trailer = Signal(cell_meta_layout)
                m.d.comb += trailer.eq(Cat(self.meta2.vci, Const(1, 1), Const(0, 1),
                                           self.meta2.aal5, Const(0, 4), self.meta2.length))
                array_set(m, metas, second, trailer)
                array_set(m, full, second, 1)
                m.d.sync += self.wr.eq(self.wr + 2)
            with m.Else():
                m.d.sync += self.wr.eq(self.wr + 1)

        head = Signal(cell_meta_layout)
        m.d.comb += head.eq(metas[rd])
        w = Signal(range(14))         # the word registered at the coming edge (0 header)
        crc = Signal(32)
        sending = Signal()
        m.d.comb += rport.addr.eq(Cat(Mux(sending, w, 0)[:4], rd))
        m.d.sync += self.soc.eq(0)
        m.d.comb += self.depart.eq(self.soc)
        with m.If(~sending):
            m.d.sync += self.valid.eq(0)
            go = full[rd] & self.slots.in2 & (aged[rd] | self.slots.exact2)
            with m.If(go):
                m.d.sync += [sending.eq(1), w.eq(1), self.valid.eq(1), self.soc.eq(1),
                             # GFC 0, VPI 0, the VCI, PTI = 0 / 1 (end of PDU), CLP 0.
                             self.data.eq(Cat(Const(0, 1), head.end, Const(0, 2), head.vci,
                                              Const(0, 12))),
                             crc.eq(Mux(head.first, CRC_INIT, crc))]
        with m.Else():
            word = Signal(32)
            trailer = head.aal5 & head.end
            with m.If(trailer & (w == 11)):
                m.d.comb += word.eq(head.length)
            with m.Elif(trailer & (w == 12)):
                m.d.comb += word.eq(~crc)
            with m.Elif(w - 1 < head.words):
                m.d.comb += word.eq(rport.data)
            m.d.sync += [self.data.eq(word), w.eq(w + 1)]
            m.d.sync += crc.eq(crc32_word(crc, word))
            with m.If(w == 12):
                m.d.sync += [sending.eq(0), rd.eq(rd + 1)]
                array_set(m, full, rd, 0)
        return m
