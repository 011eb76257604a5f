"""The AN2 card's receive engine: VC lookup, pool buffers, payload DMA, AAL5 checks, completions.

One of the parts of :class:`~hw.an2.gateware.An2Card` (docs/an2_card.md, "Receive"). It takes
the cells of the :class:`~hw.an2.rx_ingress.RxIngress` in order, one at a time, and for each
does what :meth:`hw.an2.model.An2Model._rx_cell` does, burst for burst and edge for edge:
look the VC up (the VC table and the per-VC reassembly state, both on-card SRAM), take a
buffer of the VC's pool (a 4-word descriptor fetch), write the cell's payload bytes there
(pad and trailer excepted), continue in the pool's next buffer when one is full, check the
trailer's length and the CRC-32 at the end of a PDU, write the last descriptor back and ask the
:class:`~hw.an2.cq_writer.CqWriter` for the completion.

Timing: the engine starts on a cell ``RX_DMA_START_CYCLES`` after it is committed, or at the
edge it finishes the cell before (its last burst's end, or the completion's); every burst of a
cell starts at the end of the one before; the trailer check takes ``RX_TRAILER_CHECK_CYCLES``.
A VC with rx_csum feeds each payload burst, seeded with the VC's sum so far, to a
``PipeDatapath`` of :data:`hw.an2.pipes.RX_PIPES` from a second FIFO read port, and rx_swap
reorders the words written (docs/an2_card.md, "Hardware pipes"); neither costs a cycle.
The per-VC state lives in ``state_mem``; the engine works on a copy (``cur``) that it writes
back every cycle, and takes it from the copy when the next cell is on the same VC, so that
back-to-back cells of one VC see each other's state without a gap.
"""
from contextlib import contextmanager

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from ..ilp.gateware import PipeDatapath
from . import timing as T
from .cq_writer import CqRequest
from .crc32 import CRC_INIT, crc32_advance
from .dma_arbiter import MASTER_BUS
from .pipe_logic import masked, swap_wiring
from .pipes import RX_PIPES
from .registers import (AAL5_TRAILER_BYTES, CELL_PAYLOAD_BYTES, ENTRY_WORDS, MAX_PDU,
                        MAX_PDU_CELLS, NO_INDEX, NUM_POOLS, NUM_VCS, CqError, CqKind, VcState)
from .rx_ingress import RxIngress, rx_cell_layout
from .tx_engine import bswap32

__all__ = ["RxEngine", "vc_state_layout", "vc_table_layout"]

_CELL = CELL_PAYLOAD_BYTES

#: A VC table entry as the card stores it (23 bits of SRAM): VcEntry without the state.
vc_table_layout = data.StructLayout({"enable": 1, "aal5": 1, "pool": 2, "owner": 8,
                                     "rx_csum": 1, "rx_swap": 2, "pipe_start": 8})

#: A VC's reassembly state (on-card SRAM, one word per VC; all zero is Idle, nothing received).
vc_state_layout = data.StructLayout({
    "state": 2, "pool": 2, "owner": 8,
    "cells": 11,        # cells of the PDU so far
    "crc": 32,          # its CRC-32 register
    "addr": 32, "size": 16, "tag": 32, "index": 12,     # the buffer being filled
    "used": 16,         # bytes in it
    "delivered": 17,    # bytes of the PDU written
    "later": 1,         # not the PDU's first buffer
    "csum_on": 1,       # the PDU's VC sums its payload (rx_csum, AAL5)
    "swap": 2,          # its rx_swap
    "pstart": 8,        # its pipe_start
    "csum": 16,         # the payload's sum so far (the checksum pipe's last result)
    "tail": 64,         # words 10 and 11 of the last cell summed, as received
})


class RxEngine(wiring.Component):
    """The receive engine (see the module docstring).

    Members
    -------
    dma : Out(MASTER_BUS)

    Attributes (plain signals; the card wires them)
    ------------------------------------------------
    ingress : the :class:`~hw.an2.rx_ingress.RxIngress`
    rx_on : input
    pool_base, pool_size, pool_prod : inputs, per pool; pool_cons : the engine's
    vt_addr, vt_data : the VC table's read port (entry a cycle after the address)
    state_mem : the per-VC state; host_index, host_state : the host's view of VcEntry.state
    rst, reset_index : inputs, Control.Reset's sweep of the state SRAM
    kill, kill_index : input strobe, VC ``kill_index`` is disabled at the coming edge while it
        reassembles (its partial PDU is returned with LostCell)
    cq : :class:`~hw.an2.cq_writer.CqRequest`; cq_full, cq_probe : the queue's state, a check
    count : dict Counter name -> strobe at the coming edge; fault : a ring fault
    """

    def __init__(self, ingress: RxIngress):
        super().__init__({"dma": Out(MASTER_BUS)})
        self.ingress = ingress
        self.rx_on = Signal()
        self.pool_base = [Signal(32, name=f"rx_pool_base{p}") for p in range(NUM_POOLS)]
        self.pool_size = [Signal(13, name=f"rx_pool_size{p}") for p in range(NUM_POOLS)]
        self.pool_prod = [Signal(12, name=f"rx_pool_prod{p}") for p in range(NUM_POOLS)]
        self.pool_cons = [Signal(12, name=f"rx_pool_cons{p}") for p in range(NUM_POOLS)]
        self.vt_addr = Signal(10)
        self.vt_data = Signal(vc_table_layout)
        self.state_mem = Memory(shape=vc_state_layout, depth=NUM_VCS, init=[])
        self.host_index = Signal(10)
        self.host_state = Signal(2)
        self.rst = Signal()
        self.reset_index = Signal(10)
        self.kill = Signal()
        self.kill_index = Signal(10)
        self.cq = CqRequest("rx")
        self.cq_full = Signal()
        self.cq_probe = Signal()
        self.count = {name: Signal(name=f"rx_count_{name}") for name in (
            "CellsRx", "UnknownVc", "NoBuffer", "OversizePdus", "LostCells", "CrcErrors",
            "PdusRx", "DmaFaults")}
        self.fault = Signal()

    def elaborate(self, platform) -> Module:  # noqa: C901 - one FSM, the model's order
        m = Module()
        m.submodules.state_mem = smem = self.state_mem
        ing, dma, cq, cnt = self.ingress, self.dma, self.cq, self.count
        swr = smem.write_port()
        srd = smem.read_port(transparent_for=(swr,))
        shost = smem.read_port(transparent_for=(swr,))
        frd = ing.mem_rd
        m.d.comb += [shost.addr.eq(self.host_index), self.host_state.eq(shost.data.state)]

        cur = Signal(vc_state_layout)        # the state of VC ``cvci``, ahead of state_mem
        cvci = Signal(16)
        cur_ok = Signal()
        # ``cur`` as it is this cycle: with the checksum pipe's result in the cycle it is taken
        # (the SRAM and a next cell of the same VC see it at once).
        cur_w = Signal(vc_state_layout)
        csum_take = Signal()
        m.submodules.csum_pipe = pipe = PipeDatapath(pipes=RX_PIPES)
        m.d.comb += [pipe.o_stream.ready.eq(1), cur_w.eq(cur)]
        with m.If(csum_take):
            m.d.comb += cur_w.csum.eq(pipe.results[0][:16])
            m.d.sync += cur.csum.eq(pipe.results[0][:16])
        m.d.comb += [swr.addr.eq(cvci[:10]), swr.data.eq(cur_w), swr.en.eq(cur_ok)]
        with m.If(self.rst):
            m.d.comb += [swr.addr.eq(self.reset_index), swr.data.eq(0), swr.en.eq(1)]

        # --- the head cell and its VC ------------------------------------------------------------
        h = ing.head
        h_vpi, h_vci, h_pti0 = h.header[20:28], h.header[4:20], h.header[1]
        # A VC disabled while it reassembles (VcEntry written with enable = 0): the engine
        # returns its buffers (LostCell) when due, as a cell committed at the write's edge
        # would be; it reads that VC's state instead of the head's meanwhile.
        kill_p = Signal()
        kill_vci = Signal(10)
        kill_age = Signal(range(T.RX_DMA_START_CYCLES))
        with m.If(kill_p & (kill_age != T.RX_DMA_START_CYCLES - 1)):
            m.d.sync += kill_age.eq(kill_age + 1)
        with m.If(self.kill):
            m.d.sync += [kill_p.eq(1), kill_vci.eq(self.kill_index), kill_age.eq(0)]
        look = Signal(10)
        m.d.comb += look.eq(Mux(kill_p, kill_vci, h_vci[:10]))
        m.d.comb += [srd.addr.eq(look), self.vt_addr.eq(h_vci[:10])]
        last_addr = Signal(10)
        last_look = Signal(10)
        last_ok = Signal()
        m.d.sync += [last_addr.eq(h_vci[:10]), last_look.eq(look), last_ok.eq(1)]
        fwd = Signal()
        m.d.comb += fwd.eq(cur_ok & (h_vci == cvci))
        h_known = Signal()      # the SRAMs' outputs are the head's
        m.d.comb += h_known.eq(~kill_p & (fwd | (last_ok & (last_addr == h_vci[:10])
                                                 & (last_look == h_vci[:10]))))
        k_fwd = Signal()
        m.d.comb += k_fwd.eq(cur_ok & (cvci == kill_vci))
        k_known = Signal()
        m.d.comb += k_known.eq(kill_p & (kill_age == T.RX_DMA_START_CYCLES - 1)
                               & (k_fwd | (last_ok & (last_look == kill_vci))))
        no_entry = Signal()     # the work in hand is a disabled VC's, not a FIFO cell's

        # --- the cell being worked on ---------------------------------------------------------------
        a = Signal(ing.rd.shape())
        cell = Signal(rx_cell_layout)
        cend = Signal()
        caal5 = Signal()
        crc_prev = Signal(32)
        rem = Signal(range(_CELL + 1))      # payload bytes of the cell still to write
        off = Signal(range(_CELL + 1))      # bytes of the cell written
        n = Signal(range(_CELL + 1))        # bytes of the burst
        word = Signal(range(16))
        pool_cons = Array(self.pool_cons)
        pool_prod = Array(self.pool_prod)
        pool_base = Array(self.pool_base)
        pool_size = Array(self.pool_size)
        fw = Array(Signal(32, name=f"rx_fw{i}") for i in range(ENTRY_WORDS))
        tb_first = Signal()                 # the buffer taken is the PDU's first
        errors = Signal(6)
        discard = Signal()
        good_len = Signal(17)
        good = Signal()
        rcq = Signal(CqRequest("x").entry.shape())
        m.d.comb += cq.entry.eq(rcq)
        # A view of the cell and its VC for the helpers below: the registers (R), or, in the
        # cycle that starts a cell or takes its first buffer, the values being loaded into them
        # (each view's signals are driven unconditionally: no combinational loops).
        class View:
            def __init__(self, cc, vci, end, aal5, entry):
                self.cc, self.vci, self.end, self.aal5, self.entry = cc, vci, end, aal5, entry

        R = View(cur, cvci, cend, caal5, a)
        cq_probe_now = Signal()
        m.d.comb += self.cq_probe.eq(cq_probe_now)

        # --- DMA helpers --------------------------------------------------------------------------
        def burst(addr, count, write, owner):
            m.d.sync += [word.eq(0), dma.req.eq(1), dma.write.eq(write), dma.addr.eq(addr),
                         dma.count.eq(count), dma.owner.eq(owner)]

        # Payload words from the FIFO: the read address runs one word ahead on an ack.
        m.d.comb += frd.addr.eq(Cat(((off >> 2) + word + dma.ack)[:4], a))

        # The checksum pipe's feed (docs/an2_card.md, "Hardware pipes"): from a payload burst's
        # start, one word a cycle from its own FIFO read port, independent of the DMA: the
        # VC's sum so far (the seed), then the burst's words, bytes outside [2 * pipe_start,
        # the burst's end) zero, the last one closing the packet. Its result is ready before
        # the burst ends, and taken in the cycle after it (``csum_take``). A cell's words 10
        # and 11 are kept (``tail``): when the next cell holds only pad and trailer, the pad
        # bytes among them were summed, and a last feed (``f_fix``) takes them out again: the
        # sum so far, then the two words, masked to those bytes and complemented unless zero
        # (adding the complement subtracts, in ones'-complement arithmetic).
        f_on = Signal()
        f_seed = Signal()
        f_w = Signal(range(16))
        f_n = Signal(range(16))
        f_base = Signal(4)
        f_o = Signal(17)
        f_end = Signal(17)
        f_start = Signal(17)
        f_fix = Signal()
        frd2 = ing.mem_rd2
        m.d.comb += frd2.addr.eq(Cat((f_base + f_w + ~f_seed)[:4], a))
        with m.If(f_on & f_seed):
            m.d.comb += [pipe.i_stream.valid.eq(1), pipe.i_stream.payload.data.eq(cur.csum)]
            m.d.sync += f_seed.eq(0)
        with m.Elif(f_on):
            raw = Signal(32)
            m.d.comb += raw.eq(Mux(f_fix, Mux(f_w[0], cur.tail[32:], cur.tail[:32]), frd2.data))
            word_in = masked(m, raw, f_o + (f_w << 2), f_start, f_end, name="rx_sum_in")
            m.d.comb += [pipe.i_stream.valid.eq(1),
                         pipe.i_stream.payload.last.eq(f_w == f_n - 1),
                         pipe.i_stream.payload.data.eq(
                             Mux(f_fix & (word_in != 0), ~word_in, word_in))]
            with m.If(~f_fix & (f_base + f_w == 10)):
                m.d.sync += cur.tail[:32].eq(frd2.data)
            with m.If(~f_fix & (f_base + f_w == 11)):
                m.d.sync += cur.tail[32:].eq(frd2.data)
            m.d.sync += f_w.eq(f_w + 1)
            with m.If(f_w == f_n - 1):
                m.d.sync += f_on.eq(0)

        # The result is there from the pipe's ``done`` until the next feed starts (always by
        # the cycle after the burst with a memory that keeps the timing contract; a faster
        # one, whose first acknowledge comes before DMA_SETUP_CYCLES, makes the engine wait).
        f_ready = Signal()
        sum_ok = Signal()
        with m.If(pipe.done):
            m.d.sync += f_ready.eq(1)
        m.d.comb += sum_ok.eq(f_ready | pipe.done)

        def feed(V, offset, nb):
            """Start the pipe's feed for a payload burst of ``nb`` bytes from cell byte
            ``offset`` (a VC that sums only)."""
            m.d.sync += [f_on.eq(V.cc.csum_on), f_seed.eq(1), f_w.eq(0), f_ready.eq(0),
                         f_n.eq((nb + 3) >> 2), f_base.eq(offset >> 2), f_o.eq(V.cc.delivered),
                         f_end.eq(V.cc.delivered + nb), f_start.eq(V.cc.pstart << 1),
                         f_fix.eq(0)]

        def free_cell(V):
            # A cell being started (and dropped) is the FIFO's, on the second port: the cell in
            # hand may end in the same cycle. The work in hand may be a disabled VC's (none).
            if V is S:
                m.d.comb += [ing.free2.eq(1), ing.free2_entry.eq(V.entry)]
            else:
                m.d.comb += [ing.free.eq(~no_entry), ing.free_entry.eq(V.entry)]

        def request_cq(V, kind_errors, index, length, cells, tag, csum=0):
            entry = Signal.like(rcq)
            m.d.comb += [entry.kind.eq(CqKind.Rx), entry.pool.eq(V.cc.pool),
                         entry.index.eq(index), entry.length.eq(length), entry.vci.eq(V.vci),
                         entry.errors.eq(kind_errors), entry.cells.eq(cells), entry.tag.eq(tag),
                         entry.csum.eq(csum),
                         # The writer's phase and the reserved fields, 0 here: a field no
                         # statement drives becomes a constant-only `always @*` in the Verilog,
                         # which an event-driven simulator never runs (X on Icarus).
                         entry.phase.eq(0), entry.res0.eq(0),
                         cq.entry.eq(entry), cq.req.eq(1)]
            m.d.sync += rcq.eq(entry)
            m.next = "WaitCq"

        def write_back(V, errs):
            """The current buffer's descriptor (Own = 0), from this cycle."""
            m.d.sync += [errors.eq(errs)]
            burst(pool_base[V.cc.pool] + (V.cc.index << 4), ENTRY_WORDS, 1, 0)

        def rx_done(V, errs, disc, length_ok, length):
            """Write back the last buffer, then the completion (the model's _rx_done)."""
            m.d.sync += [discard.eq(disc), good.eq(length_ok), good_len.eq(length)]
            write_back(V, errs)
            m.next = "WbLast"

        def take_buffer(V, pool, first):
            """The pool's next free buffer: a descriptor fetch, or no buffer now."""
            m.d.sync += tb_first.eq(first)
            with m.If(pool_cons[pool] == pool_prod[pool]):
                no_buffer(V, first)
            with m.Else():
                burst(pool_base[pool] + (pool_cons[pool] << 4), ENTRY_WORDS, 0, 0)
                m.next = "Fetch"

        def no_buffer(V, first):
            m.d.comb += cnt["NoBuffer"].eq(1)
            with m.If(first):
                m.d.sync += cur.state.eq(Mux(V.end, VcState.Idle, VcState.Discarding))
                request_cq(V, CqError.NoBuffer, NO_INDEX, 0, 1, 0)
            with m.Else():
                m.d.sync += cur.eq(0)
                m.d.sync += cur.state.eq(Mux(V.end, VcState.Idle, VcState.Discarding))
                request_cq(V, CqError.NoBuffer, V.cc.index, V.cc.delivered, V.cc.cells, V.cc.tag)

        def write_step(V, addr, size, used, owner, left, offset, chain=True):
            """Write the next piece of the cell (``left`` bytes from ``offset``) into the buffer
            (``addr``, ``size``, ``used``), or go on when none is left."""
            room = size - used
            with m.If(left == 0):
                after_write(V, chain)
            with m.Elif(room == 0):
                m.d.sync += [rem.eq(left), off.eq(offset)]
                write_back(V, 0)
                m.next = "WbMid"
            with m.Else():
                nb = Mux(room < left, room, left)
                m.d.sync += [n.eq(nb), rem.eq(left), off.eq(offset)]
                burst(addr + used, (nb + 3) >> 2, 1, owner)
                feed(V, offset, nb)
                m.next = "Write"

        def after_write(V, chain):
            with m.If(V.end & ~V.aal5):
                m.d.comb += cnt["PdusRx"].eq(1)
                rx_done(V, 0, 0, 1, V.cc.delivered)
            with m.Elif(V.end):
                m.next = "Trailer"
            with m.Else():
                done_cell(V, chain)

        def proceed(V, v, cv, chain=True):
            """A cell of a reassembling VC (``v`` its state, ``cv`` the cell), at its decision."""
            cells2 = v.cells + 1
            m.d.sync += [cur.cells.eq(cells2), crc_prev.eq(v.crc),
                         cur.crc.eq(crc32_advance(v.crc, 12) ^ cv.crc12)]
            with m.If(cells2 > MAX_PDU_CELLS):
                m.d.comb += cnt["OversizePdus"].eq(1)
                rx_done(V, CqError.Oversize, ~V.end, 0, 0)
            with m.Else():
                length = cv.w11[:16]
                before = (cells2 - 1) * _CELL
                keep = Mux(length <= before, 0,
                           Mux(length - before >= _CELL - AAL5_TRAILER_BYTES,
                               _CELL - AAL5_TRAILER_BYTES, length - before))
                data_len = Signal(range(_CELL + 1))
                m.d.comb += data_len.eq(Mux(V.end & V.aal5, keep, _CELL))
                cap = MAX_PDU - v.delivered
                left = Mux(data_len > cap, cap, data_len)
                write_step(V, v.addr, v.size, v.used, v.owner, left, 0, chain)

        def done_cell(V, chain=True):
            free_cell(V)
            m.next = "Idle"
            if chain:           # the next cell may start at the edge this one ends
                try_start()

        # The head cell's views: as its VC's state says (S), or as a fresh PDU (F).
        vs = Signal(vc_state_layout)
        te = self.vt_data
        h_end = Signal()
        m.d.comb += [vs.eq(Mux(fwd, cur_w, srd.data)), h_end.eq(h_pti0 | ~te.aal5)]
        fresh = Signal(vc_state_layout)
        m.d.comb += [fresh.pool.eq(te.pool), fresh.owner.eq(te.owner), fresh.crc.eq(CRC_INIT),
                     fresh.csum_on.eq(te.rx_csum & te.aal5), fresh.swap.eq(te.rx_swap),
                     fresh.pstart.eq(te.pipe_start)]
        S = View(vs, h_vci, h_end, te.aal5, ing.rd)
        ks = Signal(vc_state_layout)
        m.d.comb += ks.eq(Mux(k_fwd, cur_w, srd.data))
        K = View(ks, kill_vci, Const(0, 1), Const(1, 1), a)
        F = View(fresh, h_vci, h_end, te.aal5, ing.rd)

        def try_start():
            """Start on the head cell at the coming edge when it is due (the model's
            ``max(arrival + RX_DMA_START_CYCLES, free)``)."""
            with m.If(k_known):
                m.d.sync += [kill_p.eq(0), no_entry.eq(1)]
                with m.If(ks.state == VcState.Reassembling):
                    m.d.comb += cnt["LostCells"].eq(1)
                    m.d.sync += [cvci.eq(kill_vci), cur_ok.eq(1), cur.eq(ks), cend.eq(0)]
                    rx_done(K, CqError.LostCell, 0, 0, 0)
            with m.Elif(ing.ready & h_known):
                m.d.comb += ing.pop.eq(1)
                m.d.sync += [a.eq(ing.rd), cell.eq(h), no_entry.eq(0)]
                with m.If(~self.rx_on):
                    free_cell(S)
                    m.next = "Idle"
                with m.Elif((h_vpi != 0) | (h_vci >= NUM_VCS) | ~te.enable):
                    m.d.comb += cnt["UnknownVc"].eq(1)
                    free_cell(S)
                    m.next = "Idle"
                with m.Else():
                    m.d.comb += cnt["CellsRx"].eq(1)
                    m.d.sync += [cvci.eq(h_vci), cur_ok.eq(1), cend.eq(h_end),
                                 caal5.eq(te.aal5), cur.eq(vs)]
                    with m.If(vs.state == VcState.Discarding):
                        with m.If(h_end):
                            m.d.sync += cur.eq(0)
                        free_cell(S)
                        m.next = "Idle"
                    with m.Elif(vs.state == VcState.Idle):
                        m.d.comb += cq_probe_now.eq(1)
                        m.d.sync += cur.eq(fresh)
                        with m.If(self.cq_full):
                            m.d.comb += cnt["NoBuffer"].eq(1)
                            free_cell(S)
                            m.d.sync += cur.state.eq(Mux(h_end, VcState.Idle,
                                                         VcState.Discarding))
                            m.next = "Idle"
                        with m.Else():
                            take_buffer(F, te.pool, 1)
                    with m.Else():
                        proceed(S, vs, h, chain=False)

        # The buffer descriptor's write-back words.
        # RxFlag bits 16-21: First, Last, CrcError, Oversize, LostCell, DmaFault; Own = 0.
        wb_last = Signal()
        wb_words = Array([
            cur.addr,
            Cat(cur.size, cur.used),
            Cat(cvci, ~cur.later, wb_last, errors[0], errors[1], errors[2], errors[4],
                Const(0, 10)),
            cur.tag,
        ])

        @contextmanager
        def ring_burst(then):
            """A 4-word burst of a pool's ring (the kernel's memory): a refusal is a ring fault
            (the engines halt); after the last word, state ``then`` (the body runs there)."""
            with m.If(dma.err):
                m.d.sync += dma.req.eq(0)
                m.d.comb += self.fault.eq(1)
                free_cell(R)
                m.next = "Idle"
            with m.Elif(dma.ack):
                m.d.sync += word.eq(word + 1)
                with m.If(word == ENTRY_WORDS - 1):
                    m.d.sync += dma.req.eq(0)
                    m.next = then
                    yield

        with m.FSM(name="rx"):
            with m.State("Idle"):
                try_start()

            with m.State("Fetch"):
                with m.If(dma.ack):
                    m.d.sync += fw[word[:2]].eq(dma.r_data)
                with ring_burst("Fetched"):
                    pass

            with m.State("Fetched"):
                with m.If(~fw[2][31]):
                    no_buffer(R, tb_first)
                with m.Else():
                    p = cur.pool
                    m.d.sync += [pool_cons[p].eq((pool_cons[p] + 1) & (pool_size[p] - 1)),
                                 cur.addr.eq(fw[0]), cur.size.eq(fw[1][:16]), cur.tag.eq(fw[3]),
                                 cur.index.eq(pool_cons[p]), cur.used.eq(0)]
                    v = Signal(vc_state_layout)
                    m.d.comb += [v.eq(cur), v.addr.eq(fw[0]), v.size.eq(fw[1][:16]), v.used.eq(0),
                                 v.index.eq(pool_cons[p]), v.tag.eq(fw[3])]
                    V = View(v, cvci, cend, caal5, a)
                    with m.If(tb_first):
                        m.d.sync += cur.state.eq(VcState.Reassembling)
                        proceed(V, v, cell)
                    with m.Else():
                        write_step(V, v.addr, v.size, 0, cur.owner, rem, off)

            with m.State("Write"):
                stored = swap_wiring(m, frd.data, cur.delivered + (word << 2), cur.pstart << 1,
                                     cur.swap, prefix="rx_swap")
                m.d.comb += dma.w_data.eq(bswap32(stored))
                with m.If(dma.err):
                    m.d.sync += dma.req.eq(0)
                    m.d.comb += cnt["DmaFaults"].eq(1)
                    m.next = "Faulted"
                with m.Elif(dma.ack):
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == ((n + 3) >> 2) - 1):
                        m.d.sync += [dma.req.eq(0), cur.used.eq(cur.used + n),
                                     cur.delivered.eq(cur.delivered + n), rem.eq(rem - n),
                                     off.eq(off + n)]
                        m.next = "Written"

            with m.State("Written"):
                with m.If(~cur.csum_on | sum_ok):
                    m.d.comb += csum_take.eq(cur.csum_on)
                    write_step(R, cur.addr, cur.size, cur.used, cur.owner, rem, off)

            with m.State("Faulted"):
                rx_done(R, CqError.DmaFault, ~cend, 0, 0)

            with m.State("Trailer"):
                length = cell.w11[:16]
                cells = cur.cells
                lost = ~((cells - 1) * _CELL < length + AAL5_TRAILER_BYTES) \
                    | (length + AAL5_TRAILER_BYTES > cells * _CELL)
                crc_bad = ~(crc32_advance(crc_prev, 11) ^ cell.crc11) != cell.w12
                with m.If(lost):
                    m.d.comb += cnt["LostCells"].eq(1)
                    rx_done(R, CqError.LostCell, 0, 0, 0)
                with m.Elif(crc_bad):
                    m.d.comb += cnt["CrcErrors"].eq(1)
                    rx_done(R, CqError.CrcError, 0, 0, 0)
                with m.Else():
                    m.d.comb += cnt["PdusRx"].eq(1)
                    m.d.sync += f_fix.eq(0)
                    # The pad of the cell before a trailer-only cell was written: not counted.
                    over = cur.delivered - length
                    trim = Mux(over > cur.used, cur.used, over)
                    with m.If(cur.delivered > length):
                        m.d.sync += [cur.used.eq(cur.used - trim),
                                     cur.delivered.eq(cur.delivered - trim)]
                        # The summed pad bytes [max(2 pipe_start, length), delivered) are in
                        # the tail: take them out of the sum.
                        s2 = cur.pstart << 1
                        m.d.sync += [f_on.eq(cur.csum_on), f_seed.eq(1), f_w.eq(0),
                                     f_ready.eq(0), f_n.eq(2), f_fix.eq(1),
                                     f_o.eq(cur.delivered - 8), f_end.eq(cur.delivered),
                                     f_start.eq(Mux(s2 > length, s2, length))]
                    rx_done(R, 0, 0, 1, length)

            with m.State("WbMid"):
                m.d.comb += [wb_last.eq(0), dma.w_data.eq(wb_words[word[:2]])]
                with ring_burst("WbMidDone"):
                    m.d.sync += cur.later.eq(1)

            with m.State("WbMidDone"):
                take_buffer(R, cur.pool, 0)

            with m.State("WbLast"):
                m.d.comb += [wb_last.eq(1), dma.w_data.eq(wb_words[word[:2]])]
                with ring_burst("WbLastDone"):
                    pass

            with m.State("WbLastDone"):
                # (the trailer's correction of the sum, if any, is ready: a write-back burst
                # outlasts its 3 words under the timing contract; else wait for it)
                with m.If(~(f_fix & cur.csum_on) | sum_ok):
                    m.d.sync += cur.eq(0)
                    m.d.sync += cur.state.eq(Mux(discard, VcState.Discarding, VcState.Idle))
                    csum = Mux(f_fix, pipe.results[0][:16], cur.csum)
                    request_cq(R, errors, cur.index, Mux(good, good_len, cur.delivered),
                               cur.cells, cur.tag, Mux(good & (errors == 0) & cur.csum_on, csum, 0))

            with m.State("WaitCq"):
                with m.If(cq.done):
                    with m.If(cq.failed):
                        free_cell(R)
                        m.next = "Idle"
                    with m.Else():
                        done_cell(R)
                with m.Else():
                    m.d.comb += cq.req.eq(1)
        return m
