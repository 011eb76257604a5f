"""The AN2 card's receive FIFO: cells from the 32-bit cell interface (or the loopback), with each
cell's part of the AAL5 CRC-32 computed as its words arrive.

One of the parts of :class:`~hw.an2.gateware.An2Card` (docs/an2_card.md, "Pins"). A cell is
*committed* (visible to the receive engine) at the edge that samples its last word, or, from
the loopback, at the first slot edge after it (where the model's looped cell arrives: the end
of its slot). A cell whose entry is still in use is dropped (the FIFO holds
:data:`RX_FIFO_CELLS`; the model has the same rule). Each entry keeps, beside the 12 payload words
(network order), the header, the trailer words (11 and 12) and the CRC-32 of the payload from a
zero register over all 12 words and over the first 11 (:mod:`hw.an2.crc32`), so that the engine
adds the VC's running CRC in one cycle.
"""
from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from .crc32 import crc32_word

__all__ = ["RxIngress", "RX_FIFO_CELLS", "rx_cell_layout"]

#: Cells the receive FIFO holds (2 KiB of payload SRAM): an estimate of ours. The engine
#: needs up to about 45 cycles for a cell that ends a PDU (payload, write-back, completion, the
#: next PDU's buffer fetch) against a slot of 35.4, so a run of one-cell PDUs at line rate
#: gains about a cell in four; 32 cells ride out a run of 100 such PDUs, or the disk's DMA
#: holding the memory for a 64-word burst now and then. The model holds the same number
#: (hw.an2.timing.RX_FIFO_CELLS, checked equal by a test); a real SAR keeps a few KiB of cell buffer on or beside the chip.
RX_FIFO_CELLS = 32

#: What the engine sees of a committed cell besides its payload words.
rx_cell_layout = data.StructLayout({
    "header": 32,       # GFC, VPI, VCI, PTI, CLP
    "w11": 32,          # payload word 11 (an AAL5 end cell: UU, CPI, length)
    "w12": 32,          # payload word 12 (an AAL5 end cell: the CRC-32)
    "crc12": 32,        # CRC register over words 1-12 from 0
    "crc11": 32,        # ... over words 1-11
})


class RxIngress(wiring.Component):
    """The receive FIFO (see the module docstring).

    Attributes
    ----------
    valid, soc, data : inputs, the pins' cell words
    lb_valid, lb_soc, lb_data : inputs, the transmit side's words (loopback)
    loopback : input, take the loopback's words (the pins are ignored)
    slot : input, the coming edge begins a cell slot
    mem, mem_rd, mem_rd2 : the payload words (RX_FIFO_CELLS x 16), the engine's read ports
        (the second feeds its checksum pipe)
    head : the cell at ``rd`` (``rx_cell_layout``); ``ready`` when committed and old enough
        that the engine may start on it at the coming edge (committed at least
        ``RX_DMA_START_CYCLES`` - 1 edges ago)
    rd : the head entry; ``pop`` (input strobe) advances it
    free, free_entry : inputs, the engine is done with entry ``free_entry``
    free2, free2_entry : inputs, likewise, a second port (the engine may finish one cell and
        drop the next in the same cycle)
    """

    def __init__(self, *, start_cycles: int):
        super().__init__({})
        self._start = start_cycles
        self.valid = Signal()
        self.soc = Signal()
        self.data = Signal(32)
        self.lb_valid = Signal()
        self.lb_soc = Signal()
        self.lb_data = Signal(32)
        self.loopback = Signal()
        self.slot = Signal()
        self.mem = Memory(shape=32, depth=RX_FIFO_CELLS * 16, init=[])
        self._mem_w = self.mem.write_port()
        self.mem_rd = self.mem.read_port()      # the engine's
        self.mem_rd2 = self.mem.read_port()     # the engine's checksum pipe's
        # Each entry's trailer words and CRC parts (the header is in registers).
        self._side = Memory(shape=128, depth=RX_FIFO_CELLS, init=[])
        self._side_w = self._side.write_port()
        self._side_r = self._side.read_port()
        self.head = Signal(rx_cell_layout)
        self.ready = Signal()
        self.rd = Signal(range(RX_FIFO_CELLS))
        self.pop = Signal()
        self.free = Signal()
        self.free_entry = Signal(range(RX_FIFO_CELLS))
        self.free2 = Signal()
        self.free2_entry = Signal(range(RX_FIFO_CELLS))

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = self.mem
        m.submodules.side = self._side
        wport = self._mem_w
        headers = Array(Signal(32, name=f"header{i}") for i in range(RX_FIFO_CELLS))
        w11 = Signal(32)
        crc11 = Signal(32)
        used = Array(Signal(name=f"used{i}") for i in range(RX_FIFO_CELLS))      # filled or busy
        committed = Array(Signal(name=f"com{i}") for i in range(RX_FIFO_CELLS))
        pend = Array(Signal(name=f"pend{i}") for i in range(RX_FIFO_CELLS))
        age = Array(Signal(range(self._start), name=f"age{i}") for i in range(RX_FIFO_CELLS))
        wp = Signal(range(RX_FIFO_CELLS))
        count = Signal(range(14))       # words of the cell being received (0: none)
        drop = Signal()
        crc = Signal(32)

        v = Signal()
        soc = Signal()
        d = Signal(32)
        with m.If(self.loopback):
            m.d.comb += [v.eq(self.lb_valid), soc.eq(self.lb_soc), d.eq(self.lb_data)]
        with m.Else():
            m.d.comb += [v.eq(self.valid), soc.eq(self.soc), d.eq(self.data)]

        for i in range(RX_FIFO_CELLS):
            with m.If(committed[i] & (age[i] != self._start - 1)):
                m.d.sync += age[i].eq(age[i] + 1)
        nxt = crc32_word(crc, d)
        m.d.comb += [wport.addr.eq(Cat((count - 1)[:4], wp)), wport.data.eq(d)]
        with m.If(v & soc):
            with m.If(used[wp]):
                m.d.sync += [drop.eq(1), count.eq(0)]      # no room: the cell is lost
            with m.Else():
                m.d.sync += [drop.eq(0), count.eq(1), crc.eq(0), headers[wp].eq(d)]
        with m.Elif(v & (count != 0) & ~drop):
            m.d.comb += wport.en.eq(1)
            m.d.sync += [crc.eq(nxt), count.eq(count + 1)]
            with m.If(count == 11):
                m.d.sync += [w11.eq(d), crc11.eq(nxt)]
            with m.If(count == 12):
                # rx_cell_layout's fields after the header, in its order, as one value (a
                # layout signal whose header no statement drives would be a constant-only
                # `always @*` in the Verilog, never run by an event-driven simulator).
                side = Cat(w11, d, nxt, crc11)
                m.d.comb += [self._side_w.addr.eq(wp), self._side_w.data.eq(side),
                             self._side_w.en.eq(1)]
                m.d.sync += [count.eq(0), used[wp].eq(1), wp.eq(wp + 1)]
                with m.If(self.loopback):
                    m.d.sync += pend[wp].eq(1)
                with m.Else():
                    m.d.sync += [committed[wp].eq(1), age[wp].eq(0)]
        # A looped cell arrives at the end of its slot: commit it at the next slot edge.
        with m.If(self.slot):
            for i in range(RX_FIFO_CELLS):
                with m.If(pend[i]):
                    m.d.sync += [pend[i].eq(0), committed[i].eq(1), age[i].eq(0)]

        # The side SRAM answers a cycle after the head moves: the head is ready from then.
        rd_prev = Signal.like(self.rd)
        m.d.sync += rd_prev.eq(self.rd)
        m.d.comb += [self._side_r.addr.eq(self.rd),
                     self.head.eq(Cat(headers[self.rd], self._side_r.data)),
                     self.ready.eq(committed[self.rd] & (age[self.rd] == self._start - 1)
                                   & (rd_prev == self.rd))]
        with m.If(self.pop):
            m.d.sync += [committed[self.rd].eq(0), self.rd.eq(self.rd + 1)]
        with m.If(self.free):
            m.d.sync += used[self.free_entry].eq(0)
        with m.If(self.free2):
            m.d.sync += used[self.free2_entry].eq(0)
        return m
