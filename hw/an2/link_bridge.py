"""Whole cells in and out of the AN2 card's cell interface, for co-simulation of its RTL.

The card's link side is a 32-bit cell interface, a cell's 13 words on 13 cycles
(docs/an2_card.md, "Pins"). A co-simulation must not wake Python once per word
(ARCHITECTURE.md: a cell crosses into or out of the RTL as one transaction), so this bridge
sits on the card's cell pins inside the HDL simulator and Python (:mod:`hw.an2.rtl_attach`)
deals in cells:

* **Receive (link to card).** Python writes a cell into an entry of :attr:`CellLinkBridge.rx_mem`
  (:data:`RX_ENTRIES` entries of :data:`ENTRY_WORDS` words: words 0-12 the cell's words as the
  card takes them, word :data:`EDGE_WORD` the edge at which the card is to sample word 0),
  in order, and then sets ``rx_put`` to the number of entries written (modulo 256). The bridge
  plays each entry's 13 words on 13 consecutive cycles with ``rx_valid`` (``rx_soc`` with word
  0) so that the card samples word 0 at the entry's edge and word 12 twelve edges later: the
  edge at or after the cell's arrival, as the contract wants, which Python can meet because the
  link tells it of a cell when the cell is sent (:meth:`sim.media.atm.LinkEnd.attach` with
  ``ahead``), at least a cell slot before it arrives. ``rx_done`` counts the entries played.
  An entry whose edge has passed when the bridge reaches it is never played (the binding
  refuses to write one so late).
* **Transmit (card to link).** The bridge captures every cell the card sends (``tx_soc`` with
  word 0, then 12 more words) into an entry of :attr:`tx_mem` (:data:`TX_ENTRIES` entries,
  used in turn: words 0-12 the cell's, word :data:`EDGE_WORD` the edge that sampled its
  ``tx_soc``) and increments ``tx_count`` at the edge that samples its last word: the one port
  Python watches, changing once per cell. A word with ``tx_valid`` but no cell started, or a
  ``tx_soc`` before the cell in progress has its 13 words, counts in ``tx_errors`` (the
  partial cell is dropped).

Edges are counted by a free-running 32-bit register, :attr:`edge`: in the cycle before edge
``e`` it holds ``e`` (edge 0 is the first rising edge of ``sync``, at time 0), so an entry's
edge is the edge number itself, modulo 2**32 (an hour of simulated time at 12.5 MHz is 2**35
edges; entries are compared for equality only, never more than a few slots ahead).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .timing import CELL_WORDS

__all__ = ["CellLinkBridge", "RX_ENTRIES", "TX_ENTRIES", "ENTRY_WORDS", "EDGE_WORD",
           "COUNT_BITS", "EDGE_BITS"]

#: Receive entries: cells written ahead of their arrival. The link announces a cell at least a
#: slot (35 cycles) before it arrives and the binding writes it a few edges before its first
#: word is due, so at most two are pending at a time; four leave room.
RX_ENTRIES = 4
#: Transmit entries: cells captured and not yet read. Python reads each at its last word, so
#: one would do; a cell starts at most once per slot.
TX_ENTRIES = 4
#: Words per entry: the 13 cell words, the edge word, two unused (a power of two: the entry's
#: base is the entry number shifted).
ENTRY_WORDS = 16
#: The entry word that holds an edge number.
EDGE_WORD = CELL_WORDS
#: Width of ``rx_put``, ``rx_done``, ``tx_count`` and ``tx_errors`` (they wrap).
COUNT_BITS = 8
#: Width of the edge counter.
EDGE_BITS = 32


class CellLinkBridge(wiring.Component):
    """Cells in and out of the card's cell interface as single transactions (module docstring).

    Members
    -------
    rx_valid, rx_soc : Out(1); rx_data : Out(32)
        To the card's receive pins.
    tx_valid, tx_soc : In(1); tx_data : In(32)
        From the card's transmit pins.
    rx_put : In(COUNT_BITS)
        Receive entries Python has written (modulo 256).
    rx_done : Out(COUNT_BITS)
        Receive entries played.
    tx_count : Out(COUNT_BITS)
        Cells captured (changes at the edge that samples a cell's last word).
    tx_errors : Out(COUNT_BITS)
        Transmit words outside a cell, and cells cut short by a new ``tx_soc``.
    """

    rx_valid: Out(1)
    rx_soc: Out(1)
    rx_data: Out(32)
    tx_valid: In(1)
    tx_soc: In(1)
    tx_data: In(32)
    rx_put: In(COUNT_BITS)
    rx_done: Out(COUNT_BITS)
    tx_count: Out(COUNT_BITS)
    tx_errors: Out(COUNT_BITS)

    def __init__(self):
        super().__init__()
        #: Cells to play into the card (written by the binding).
        self.rx_mem = Memory(shape=32, depth=RX_ENTRIES * ENTRY_WORDS, init=[])
        #: Cells the card sent (read by the binding).
        self.tx_mem = Memory(shape=32, depth=TX_ENTRIES * ENTRY_WORDS, init=[])
        #: The edge counter (see the module docstring).
        self.edge = Signal(EDGE_BITS)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rx_mem = self.rx_mem
        m.submodules.tx_mem = self.tx_mem
        edge = self.edge
        m.d.sync += edge.eq(edge + 1)
        shift = ENTRY_WORDS.bit_length() - 1

        # -- receive: play entry rx_done when the edge counter reaches its edge ----------------
        rp = self.rx_mem.read_port(domain="comb")
        playing = Signal()
        idx = Signal(range(CELL_WORDS))
        entry = Signal(range(RX_ENTRIES))
        m.d.comb += [entry.eq(self.rx_done), self.rx_data.eq(rp.data),
                     self.rx_valid.eq(playing), self.rx_soc.eq(playing & (idx == 0))]
        with m.If(playing):
            m.d.comb += rp.addr.eq((entry << shift) | idx)
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx == CELL_WORDS - 1):
                m.d.sync += [playing.eq(0), idx.eq(0), self.rx_done.eq(self.rx_done + 1)]
        with m.Else():
            m.d.comb += rp.addr.eq((entry << shift) | EDGE_WORD)
            # Word 0 goes out in the cycle before the entry's edge: start one edge earlier.
            with m.If((self.rx_done != self.rx_put) & (edge + 1 == rp.data)):
                m.d.sync += playing.eq(1)

        # -- transmit: capture each cell into entry tx_count ------------------------------------
        wp = self.tx_mem.write_port()
        wp_edge = self.tx_mem.write_port()
        capturing = Signal()
        tidx = Signal(range(CELL_WORDS + 1))
        soc_edge = Signal(EDGE_BITS)
        tentry = Signal(range(TX_ENTRIES))
        m.d.comb += [tentry.eq(self.tx_count), wp.data.eq(self.tx_data),
                     wp_edge.data.eq(soc_edge), wp_edge.addr.eq((tentry << shift) | EDGE_WORD)]
        with m.If(self.tx_valid & self.tx_soc):
            m.d.comb += [wp.addr.eq(tentry << shift), wp.en.eq(1)]
            m.d.sync += [capturing.eq(1), tidx.eq(1), soc_edge.eq(edge)]
            with m.If(capturing):
                m.d.sync += self.tx_errors.eq(self.tx_errors + 1)
        with m.Elif(self.tx_valid & capturing):
            m.d.comb += [wp.addr.eq((tentry << shift) | tidx), wp.en.eq(1)]
            m.d.sync += tidx.eq(tidx + 1)
            with m.If(tidx == CELL_WORDS - 1):
                m.d.comb += wp_edge.en.eq(1)
                m.d.sync += [capturing.eq(0), self.tx_count.eq(self.tx_count + 1)]
        with m.Elif(self.tx_valid):
            m.d.sync += self.tx_errors.eq(self.tx_errors + 1)
        return m
