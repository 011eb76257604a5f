"""The AN2 card's transmit engine: descriptor fetch, gather DMA, segmentation, write-back.

One of the parts of :class:`~hw.an2.gateware.An2Card` (docs/an2_card.md, "Transmit"). After a
doorbell (a TxProducer or Control write) it fetches the descriptors First .. Last of the PDU at
TxConsumer, one 4-word burst each, then reads the buffers by DMA (any byte alignment: a burst
reads every word the bytes touch and a byte packer realigns them) in pieces that never cross a
cell boundary, puts each cell's words in the transmit FIFO of the :class:`CellIssuer` and
hands it the cell when it is whole; after the Last buffer it hands over the last cell(s), whose
pad, trailer and CRC-32 the issuer adds. Then it writes every descriptor back (Own = 0,
DmaFault, BadVc), advances TxConsumer and asks the :class:`~hw.an2.cq_writer.CqWriter` for
the completion.

Timing (edges, :mod:`hw.an2.timing`; "a burst at ``t``" raises ``req`` at ``t``, and the next
burst may start at its end edge, the one after its last ``ack``): a doorbell taking effect at
``e`` starts the first fetch at ``e + TX_DOORBELL_CYCLES``; every later burst starts at the end
of the one before, unless the FIFO holds TX_FIFO_CELLS cells that have not begun their slot
(then at the edge the oldest begins it); a cell handed over at ``t`` is issued at ``t +
TX_CELL_ISSUE_CYCLES``, and the cells after the Last buffer are handed over at the end of its
last burst. This is :class:`hw.an2.model.An2Model`'s transmit timing.

A PDU with TxFlag.Csum is read twice (docs/an2_card.md, "Hardware pipes"): pass 1 runs the
same bursts back to back through the packer into a ``PipeDatapath`` of
:data:`hw.an2.pipes.TX_PIPES`, handing no cell over; pass 2 starts at the end of its last
burst and sends, the packer putting the checksum field into its word.

Limits (docs/an2_card.md): a PDU has at most :data:`MAX_DESCRIPTORS` descriptors (the card
keeps them for the write-back).
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from . import timing as T
from .array_set import array_set
from .cq_writer import CqRequest
from .cell_issue import CELL_STRIDE, CellIssuer
from ..ilp.gateware import PipeDatapath
from .dma_arbiter import MASTER_BUS
from .pipe_logic import masked, tx_field_value
from .pipes import TX_PIPES
from .registers import (CELL_PAYLOAD_BYTES, ENTRY_WORDS, MAX_PDU, NUM_VCS, CqError, CqKind,
                        TxFlag)

__all__ = ["TxEngine", "MAX_DESCRIPTORS", "bswap32"]

#: Descriptors of one PDU the card holds (an estimate of ours: 16 x 16 bytes of registers; a
#: gather list longer than that is rare, and the limit is the docs').
MAX_DESCRIPTORS = 16
_CELL = CELL_PAYLOAD_BYTES


def bswap32(v):
    """Gateware: the 32-bit value with its bytes reversed (little-endian memory <-> network)."""
    return Cat(v[24:32], v[16:24], v[8:16], v[0:8])


class TxEngine(wiring.Component):
    """The transmit engine (see the module docstring).

    Members
    -------
    dma : Out(MASTER_BUS)

    Attributes (plain signals; the card wires them)
    ------------------------------------------------
    tx_on, base, size, prod, kick : inputs from the register target
    cons : TxConsumer
    vc_addr, vc_data : the VC table read port (address out, entry in, a cycle later)
    cq : :class:`~hw.an2.cq_writer.CqRequest`
    cells_tx (2 bits), pdus_tx, oversize, dma_fault, fault : counts and the ring fault, at the
        coming edge
    """

    def __init__(self, issuer: CellIssuer):
        super().__init__({"dma": Out(MASTER_BUS)})
        self.issuer = issuer
        self.tx_on = Signal()
        self.base = Signal(32)
        self.size = Signal(13)
        self.prod = Signal(12)
        self.kick = Signal()
        self.cons = Signal(12)
        self.vc_addr = Signal(16)
        self.vc_data = Signal(23)
        self.cq = CqRequest("tx")
        self.cells_tx = Signal(2)
        self.pdus_tx = Signal()
        self.oversize = Signal()
        self.dma_fault = Signal()
        self.fault = Signal()

    def elaborate(self, platform) -> Module:  # noqa: C901 - one FSM, the model's order
        m = Module()
        dma, iss = self.dma, self.issuer
        wport = iss.fifo_w
        mask = Signal(12)
        m.d.comb += mask.eq(self.size - 1)

        # --- the PDU's descriptors -----------------------------------------------------------
        d_addr = Array(Signal(32, name=f"d_addr{i}") for i in range(MAX_DESCRIPTORS))
        d_w1 = Array(Signal(32, name=f"d_w1_{i}") for i in range(MAX_DESCRIPTORS))
        d_w2 = Array(Signal(32, name=f"d_w2_{i}") for i in range(MAX_DESCRIPTORS))
        d_tag = Array(Signal(32, name=f"d_tag{i}") for i in range(MAX_DESCRIPTORS))
        nd = Signal(range(MAX_DESCRIPTORS + 1))      # fetched
        first_idx = Signal(12)                        # ring index of descriptor 0
        idx = Signal(12)                              # ring index being fetched
        total_len = Signal(21)                        # their lengths summed
        word = Signal(range(64))
        kick = Signal()
        errors = Signal(7)
        vci = Signal(16)
        m.d.comb += self.vc_addr.eq(d_w1[0][16:32])
        aal5 = Signal()
        owner = Signal(8)

        # --- gather state ----------------------------------------------------------------------
        gd = Signal(range(MAX_DESCRIPTORS))           # the descriptor being read
        pos = Signal(16)                              # bytes of it read
        cb = Signal(range(_CELL + 1))                 # bytes of the current cell
        total = Signal(17)                            # bytes of the PDU read
        sent = Signal(16)                             # cells handed over
        n = Signal(range(_CELL + 1))                  # bytes of the burst in progress
        b_addr = Signal(32)                           # its first byte
        b_words = Signal(range(_CELL // 4 + 2))
        acc = Signal(64)                              # byte packer, oldest byte lowest
        acc_n = Signal(range(4))
        wword = Signal(range(CELL_STRIDE))            # FIFO word of the current cell
        inflight = Signal(range(T.TX_FIFO_CELLS + 3))
        wb = Signal(range(MAX_DESCRIPTORS))           # descriptor being written back

        # --- the checksum pass (TxFlag.Csum; docs/an2_card.md, "Hardware pipes") ------------
        m.submodules.csum_pipe = pipe = PipeDatapath(pipes=TX_PIPES)
        m.d.comb += pipe.o_stream.ready.eq(1)
        p1 = Signal()                                 # pass 1: summing, sending nothing
        csum_on = Signal()                            # the PDU has Csum (pass 2: the field)
        pw = Signal(15)                               # PDU word of the next packed word
        w2_0 = d_w2[0]
        c_start = Signal(9)
        c_field = Signal(16)                          # the field's byte offset
        m.d.comb += [c_start.eq(w2_0[11:19] << 1),
                     c_field.eq((w2_0[11:19] + w2_0[19:27]) << 1)]
        field = tx_field_value(m, pipe.results[0])

        def sum_word(value, last):
            """Feed the packed word ``value`` (PDU word ``pw``) to the pipe, masked."""
            m.d.comb += [pipe.i_stream.valid.eq(1), pipe.i_stream.payload.last.eq(last),
                         pipe.i_stream.payload.data.eq(
                             masked(m, value, pw << 2, c_start, total_len, name="tx_sum_in"))]

        def with_field(value):
            """``value`` (PDU word ``pw``) with the checksum field put in, in pass 2."""
            out = Signal(32, name="tx_word_out")
            m.d.comb += out.eq(value)
            with m.If(csum_on & ~p1 & (pw == c_field[2:])):
                with m.If(c_field[1]):
                    m.d.comb += out[:16].eq(field)
                with m.Else():
                    m.d.comb += out[16:].eq(field)
            return out

        # --- the FIFO's count: cells handed over that have not begun their slot ---------------
        pushes = Signal(2)
        m.d.comb += pushes.eq(iss.push + (iss.push & iss.push2))
        m.d.sync += inflight.eq(inflight + pushes - iss.depart)
        m.d.comb += self.cells_tx.eq(pushes)

        def room(extra):
            """The FIFO has room for another cell at the coming edge (``extra`` handed over)."""
            return inflight + extra - iss.depart < T.TX_FIFO_CELLS

        # --- planning a gather burst ----------------------------------------------------------
        def plan(j, p, cell_bytes):
            """Signals for a burst of descriptor ``j`` from byte ``p`` with ``cell_bytes`` in the
            cell: (address, bytes, words)."""
            a = Signal(32)
            nb = Signal(range(_CELL + 1))
            wds = Signal(range(_CELL // 4 + 2))
            left = Signal(17)
            m.d.comb += [a.eq(d_addr[j] + p), left.eq(d_w1[j][:16] - p)]
            m.d.comb += nb.eq(Mux(left < _CELL - cell_bytes, left, _CELL - cell_bytes))
            m.d.comb += wds.eq((a[:2] + nb + 3) >> 2)
            return a, nb, wds

        def next_nonempty(k):
            """(found, index): the first descriptor >= ``k`` (of ``nd``) with bytes."""
            found = Signal()
            j = Signal(range(MAX_DESCRIPTORS))
            for i in reversed(range(MAX_DESCRIPTORS)):
                with m.If((i >= k) & (i < nd) & (d_w1[i][:16] != 0)):
                    m.d.comb += [found.eq(1), j.eq(i)]
            return found, j

        def start_burst(j, p, cell_bytes):
            a, nb, wds = plan(j, p, cell_bytes)
            m.d.sync += [gd.eq(j), pos.eq(p), b_addr.eq(a), n.eq(nb), b_words.eq(wds),
                         word.eq(0), dma.req.eq(1), dma.write.eq(0),
                         dma.addr.eq(Cat(Const(0, 2), a[2:])), dma.count.eq(wds),
                         dma.owner.eq(owner)]

        def start_fetch(i):
            m.d.sync += [idx.eq(i), word.eq(0), dma.req.eq(1), dma.write.eq(0),
                         dma.addr.eq(self.base + (i << 4)), dma.count.eq(ENTRY_WORDS),
                         dma.owner.eq(0)]

        def start_write_back(i):
            m.d.sync += [wb.eq(i), word.eq(0), dma.req.eq(1), dma.write.eq(1),
                         dma.addr.eq(self.base + (((first_idx + i) & mask) << 4)),
                         dma.count.eq(ENTRY_WORDS), dma.owner.eq(0)]

        def next_pdu():
            """The PDU at TxConsumer, if the engine runs and the host has posted one."""
            with m.If(self.tx_on & (self.cons != self.prod)):
                m.d.sync += [nd.eq(0), total_len.eq(0), errors.eq(0), total.eq(0), sent.eq(0),
                             cb.eq(0), acc.eq(0), acc_n.eq(0), wword.eq(0),
                             first_idx.eq(self.cons), p1.eq(0), csum_on.eq(0), pw.eq(0)]
                start_fetch(self.cons)
                m.next = "Fetch"

        def ring_burst(then):
            """A 4-word burst of the ring (the kernel's memory): a refusal is a ring fault
            (the engines halt); after the last word, state ``then``."""
            with m.If(dma.err):
                m.d.sync += dma.req.eq(0)
                m.d.comb += self.fault.eq(1)
                m.next = "Idle"
            with m.Elif(dma.ack):
                m.d.sync += word.eq(word + 1)
                with m.If(word == ENTRY_WORDS - 1):
                    m.d.sync += dma.req.eq(0)
                    m.next = then

        # Finishing a PDU: the last partial cell (and a trailer-only cell when the trailer does
        # not fit), handed over at the end of the last burst when the FIFO has room, the
        # write-back right after (the model's _tx_finish).
        flush_word = Signal(32)
        m.d.comb += flush_word.eq(bswap32(acc[:32]))
        fin_words = Signal(range(CELL_STRIDE))
        m.d.comb += fin_words.eq(wword + (acc_n != 0))
        # The PDU's VC as registered, or (in the cycle it is looked up) as the table says.
        vcic, aal5c = Signal(16), Signal()
        m.d.comb += [vcic.eq(vci), aal5c.eq(aal5)]
        m.d.comb += [iss.meta.vci.eq(vcic), iss.meta.first.eq(sent == 0), iss.meta.aal5.eq(aal5c),
                     iss.meta.length.eq(total)]
        m.d.comb += [iss.meta2.vci.eq(vcic), iss.meta2.aal5.eq(aal5c),
                     iss.meta2.length.eq(total)]      # the issuer makes it a trailer-only cell

        def finish(cbv, totv):
            """Hand over the PDU's last cell(s) from this cycle's state (``cbv`` bytes in the
            current cell, ``totv`` in the PDU); start the write-back when all are out."""
            trailer_alone = cbv + 8 > _CELL
            fin_cells = Mux(aal5c, Mux(trailer_alone, 2, 1), cbv != 0)
            m.d.comb += [iss.meta.length.eq(totv), iss.meta2.length.eq(totv)]
            # meta2's other fields, which the issuer does not read, get values here too: a
            # field no statement drives becomes a constant-only `always @*` in the Verilog,
            # which an event-driven simulator never runs (X on Icarus; docs/an2_card.md).
            m.d.comb += [iss.meta2.end.eq(1), iss.meta2.first.eq(0), iss.meta2.words.eq(0)]
            with m.If(fin_cells == 0):
                start_write_back(0)
                m.next = "WriteBack"
            with m.Elif(room(0)):
                with m.If(acc_n != 0):
                    m.d.comb += [wport.en.eq(1), wport.data.eq(with_field(flush_word))]
                    m.d.sync += [acc_n.eq(0), acc.eq(0), pw.eq(pw + 1)]
                m.d.comb += [iss.push.eq(1), iss.meta.words.eq(fin_words),
                             iss.meta.end.eq(aal5c & ~trailer_alone)]
                m.d.sync += [sent.eq(sent + 1), wword.eq(0)]
                with m.If(fin_cells == 2):
                    with m.If(room(1)):
                        m.d.comb += iss.push2.eq(1)
                        m.d.sync += sent.eq(sent + 2)
                        start_write_back(0)
                        m.next = "WriteBack"
                    with m.Else():
                        m.next = "FinishTrailer"
                with m.Else():
                    start_write_back(0)
                    m.next = "WriteBack"
            with m.Else():
                m.next = "Finish"

        # --- the byte packer: one memory word in, at most one cell word out --------------------
        last_word = Signal()
        skip = Signal(2)
        nbytes = Signal(3)
        m.d.comb += [last_word.eq(word == b_words - 1),
                     skip.eq(Mux(word == 0, b_addr[:2], 0))]
        end_b = Signal(3)
        m.d.comb += end_b.eq(Mux(last_word, ((b_addr[:2] + n - 1) & 3) + 1, 4))
        m.d.comb += nbytes.eq(end_b - skip)
        shifted = Signal(32)
        m.d.comb += shifted.eq((dma.r_data >> (skip << 3)) &
                               Mux(nbytes == 4, 0xFFFF_FFFF, (Const(1, 33) << (nbytes << 3)) - 1))
        merged = Signal(64)
        m.d.comb += merged.eq(acc | (shifted << (acc_n << 3)))
        packing = Signal()
        packed = Signal(32)
        m.d.comb += packed.eq(bswap32(merged[:32]))
        m.d.comb += [wport.addr.eq(Cat(wword, iss.wr)), wport.data.eq(with_field(packed))]
        with m.If(packing & dma.ack):
            with m.If(acc_n + nbytes >= 4):
                # Pass 1 writes the entry being filled too (no cell is handed over: pass 2
                # writes it again) and feeds the checksum pipe.
                m.d.comb += wport.en.eq(1)
                with m.If(p1):
                    sum_word(packed, 0)
                m.d.sync += [acc.eq(merged >> 32), acc_n.eq(acc_n + nbytes - 4),
                             wword.eq(wword + 1), pw.eq(pw + 1)]
            with m.Else():
                m.d.sync += [acc.eq(merged), acc_n.eq(acc_n + nbytes)]

        cq = self.cq
        m.d.comb += [cq.entry.kind.eq(CqKind.Tx), cq.entry.index.eq((first_idx + nd - 1) & mask),
                     cq.entry.length.eq(Mux((errors & (CqError.BadVc | CqError.Oversize
                                                     | CqError.PipeError)) != 0,
                                            0, total)),
                     cq.entry.vci.eq(vci), cq.entry.errors.eq(errors), cq.entry.cells.eq(sent),
                     cq.entry.tag.eq(d_tag[nd - 1])]

        # A doorbell (TxProducer or Control write) is remembered whatever the engine is doing,
        # and taken in Idle: one that comes while the engine decides to stop (the cycle it
        # finds TxConsumer == TxProducer, or a descriptor the host has not handed over yet)
        # is not lost. In Idle with nothing posted it costs nothing.
        with m.If(self.kick):
            m.d.sync += kick.eq(1)

        with m.FSM(name="tx"):
            with m.State("Idle"):
                with m.If(kick):
                    m.d.sync += kick.eq(self.kick)      # a doorbell now is another one
                    next_pdu()

            with m.State("Fetch"):
                with m.If(dma.ack):
                    for w, arr in enumerate((d_addr, d_w1, d_w2, d_tag)):
                        with m.If(word == w):
                            array_set(m, arr, nd, dma.r_data)
                ring_burst("Fetched")

            with m.State("Fetched"):
                d_len = d_w1[nd][:16]
                with m.If(~d_w2[nd][31]):
                    m.next = "Idle"       # not the card's: wait for the next doorbell
                with m.Elif(d_w2[nd][1] | (nd == MAX_DESCRIPTORS - 1)):
                    m.d.sync += [nd.eq(nd + 1), total_len.eq(total_len + d_len),
                                 vci.eq(d_w1[0][16:32]), aal5.eq(self.vc_data[1]),
                                 owner.eq(self.vc_data[4:12])]
                    length = total_len + d_len
                    m.d.comb += [vcic.eq(d_w1[0][16:32]), aal5c.eq(self.vc_data[1])]
                    enabled = self.vc_data[0] & (d_w1[0][16:32] < NUM_VCS)
                    with m.If(~enabled):
                        m.d.sync += errors.eq(CqError.BadVc)
                        start_write_back(0)
                        m.next = "WriteBack"
                    with m.Elif(length > MAX_PDU):
                        m.d.sync += errors.eq(CqError.Oversize)
                        m.d.comb += self.oversize.eq(1)
                        start_write_back(0)
                        m.next = "WriteBack"
                    with m.Elif(w2_0[2] & (c_field + 2 > length)):
                        m.d.sync += errors.eq(CqError.PipeError)      # the field is not inside
                        start_write_back(0)
                        m.next = "WriteBack"
                    with m.Else():
                        # nd is not yet advanced here: look from descriptor 0 with nd + 1.
                        found = Signal()
                        j = Signal(range(MAX_DESCRIPTORS))
                        for i in reversed(range(MAX_DESCRIPTORS)):
                            with m.If((i <= nd) & (d_w1[i][:16] != 0)):
                                m.d.comb += [found.eq(1), j.eq(i)]
                        m.d.sync += [owner.eq(self.vc_data[4:12]), csum_on.eq(w2_0[2]),
                                     p1.eq(w2_0[2])]
                        with m.If(~found):
                            finish(cb, total)
                        with m.Elif(room(0) | w2_0[2]):       # pass 1 sends nothing
                            start_burst(j, 0, 0)
                            m.d.sync += dma.owner.eq(self.vc_data[4:12])
                            m.next = "Gather"
                        with m.Else():
                            m.d.sync += [gd.eq(j), pos.eq(0)]
                            m.next = "WaitRoom"
                with m.Else():
                    m.d.sync += [nd.eq(nd + 1), total_len.eq(total_len + d_len)]
                    nxt = (idx + 1) & mask
                    with m.If(nxt == self.prod):
                        m.next = "Idle"   # the PDU's Last is not posted yet
                    with m.Else():
                        start_fetch(nxt)
                        m.next = "Fetch"

            with m.State("WaitRoom"):
                with m.If(room(0)):
                    start_burst(gd, pos, cb)
                    m.next = "Gather"

            with m.State("Gather"):
                m.d.comb += packing.eq(1)
                with m.If(dma.err):
                    m.d.sync += [dma.req.eq(0), errors.eq(CqError.DmaFault)]
                    m.d.comb += self.dma_fault.eq(1)
                    m.next = "Faulted"
                with m.Elif(dma.ack):
                    m.d.sync += word.eq(word + 1)
                    with m.If(last_word):
                        m.d.sync += dma.req.eq(0)
                        m.next = "Gathered"

            with m.State("Faulted"):
                start_write_back(0)
                m.next = "WriteBack"

            with m.State("Gathered"):
                p2 = pos + n
                cb2 = cb + n
                m.d.sync += [total.eq(total + n), pos.eq(p2), cb.eq(cb2)]
                d_last = (gd == nd - 1)
                whole = (cb2 == _CELL) & ~(d_last & (p2 == d_w1[gd][:16]))
                with m.If(whole):
                    with m.If(~p1):
                        m.d.comb += [iss.push.eq(1), iss.meta.end.eq(0),
                                     iss.meta.words.eq(_CELL // 4)]
                        m.d.sync += sent.eq(sent + 1)
                    m.d.sync += [cb.eq(0), wword.eq(0)]
                cb_next = Mux(whole, 0, cb2)
                more_here = p2 < d_w1[gd][:16]
                found, j = next_nonempty(gd + 1)
                with m.If(more_here | found):
                    jj = Mux(more_here, gd, j)
                    pp = Mux(more_here, p2, 0)
                    with m.If(room(whole & ~p1) | p1):
                        start_burst(jj, pp, cb_next)
                        m.next = "Gather"
                    with m.Else():
                        m.d.sync += [gd.eq(jj), pos.eq(pp)]
                        m.next = "WaitRoom"
                with m.Elif(p1):
                    # The end of pass 1: the last (partial) word closes the sum; pass 2
                    # rewinds to the first buffer with bytes and sends.
                    sum_word(flush_word, 1)
                    m.d.sync += [p1.eq(0), total.eq(0), cb.eq(0), acc.eq(0), acc_n.eq(0),
                                 wword.eq(0), pw.eq(0)]
                    _, j0 = next_nonempty(0)
                    with m.If(room(0)):
                        start_burst(j0, 0, 0)
                        m.next = "Gather"
                    with m.Else():
                        m.d.sync += [gd.eq(j0), pos.eq(0)]
                        m.next = "WaitRoom"
                with m.Else():
                    finish(cb2, total + n)

            with m.State("Finish"):
                # The FIFO was full at the end of the last burst: hand over when it has room.
                finish(cb, total)

            with m.State("FinishTrailer"):
                # The trailer-only cell, alone: the issuer's entry ``wr`` with meta2's fields.
                with m.If(room(0)):
                    m.d.comb += [iss.push.eq(1), iss.meta.words.eq(0), iss.meta.end.eq(1),
                                 iss.meta.first.eq(0)]
                    m.d.sync += sent.eq(sent + 1)
                    start_write_back(0)
                    m.next = "WriteBack"

            with m.State("WriteBack"):
                w2 = (d_w2[wb] & (TxFlag.First | TxFlag.Last)) \
                    | Mux((errors & CqError.DmaFault) != 0, int(TxFlag.DmaFault), 0) \
                    | Mux((errors & CqError.BadVc) != 0, int(TxFlag.BadVc), 0) \
                    | Mux((errors & CqError.PipeError) != 0, int(TxFlag.PipeError), 0)
                m.d.comb += dma.w_data.eq(Array([d_addr[wb], d_w1[wb], w2, d_tag[wb]])[word[:2]])
                ring_burst("WrittenBack")

            with m.State("WrittenBack"):
                with m.If(wb + 1 < nd):
                    start_write_back(wb + 1)
                    m.next = "WriteBack"
                with m.Else():
                    m.d.sync += self.cons.eq((first_idx + nd) & mask)
                    m.d.comb += [self.pdus_tx.eq(errors == 0), cq.req.eq(1)]
                    m.next = "WaitCq"

            with m.State("WaitCq"):
                m.d.comb += cq.req.eq(1)
                with m.If(cq.done):
                    m.next = "Idle"
                    with m.If(~cq.failed):
                        next_pdu()
        return m
