"""The LANCE card's transmit engine: the transmit ring, the bytes to the MII, collisions.

One of the three parts of :class:`~hw.lance.gateware.LanceCard`. It polls the transmit ring
(every :data:`~hw.lance.timing.TX_POLL_CYCLES`, or at once on TDMD or STRT), walks the owned
descriptors of a frame, feeds its bytes to :class:`~hw.lance.mii.MiiTransmitter`, backs off and
refetches on a collision (truncated binary exponential backoff from an LFSR), writes the
descriptors back (TMD1, and TMD3 on the last one) and reports TINT.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import timing as T
from .mii import tx_byte_layout, tx_status_layout
from .registers import tmd1_layout, tmd3_layout, tx_descriptor_layout
from .regs_target import (Control, TxEvents, bcnt_bytes, descriptor_word, engine_states,
                          ram_signatures)

__all__ = ["TxEngine"]


class TxEngine(wiring.Component):
    """The transmit engine.

    Parameters
    ----------
    addr_width : int
        Word address width of the buffer SRAM ports.
    lfsr_seed : int or None
        The backoff LFSR's reset value (:func:`hw.lance.timing.backoff_seed` of the MAC); None:
        the engine has a ``seed`` input instead, taken at its first backoff draw (the seed of a
        station-address ROM loaded after reset, :class:`hw.lance.gateware.LanceCard`).

    Members
    -------
    ram_rd, ram_wr : In(:func:`~hw.lance.regs_target.ram_signatures`)
        Descriptor and buffer reads; descriptor write-backs (byte enables).
    control : In(Control)
        From the register target.
    events : Out(TxEvents)
        To the register target.
    tick : In(1)
        The MII tick (the transmitter takes a byte only on one).
    o_stream : Out(stream.Signature(tx_byte_layout))
        The frame's bytes, to the MII transmitter.
    i_status : In(stream.Signature(tx_status_layout))
        Each attempt's outcome, from the MII transmitter.
    draining, babble : In(1)
        From the MII transmitter: it aborted the frame and waits for its end; the frame on
        the wire is longer than the largest.
    seed : In(16)
        Only when ``lfsr_seed`` is None: the LFSR's value before its first draw (nonzero).
    """

    def __init__(self, *, addr_width: int, lfsr_seed: int | None):
        rd, wr = ram_signatures(addr_width)
        if lfsr_seed is not None and (not isinstance(lfsr_seed, int)
                                      or not 0 < lfsr_seed < 1 << 16):
            raise ValueError(f"lfsr_seed must be a nonzero 16-bit int, not {lfsr_seed!r}")
        self.addr_width = addr_width
        self.lfsr_seed = lfsr_seed
        super().__init__({
            "ram_rd": In(rd), "ram_wr": In(wr),
            "control": In(Control), "events": Out(TxEvents),
            "tick": In(1),
            "o_stream": Out(stream.Signature(tx_byte_layout)),
            "i_status": In(stream.Signature(tx_status_layout)),
            "draining": In(1),
            "babble": In(1),
            **({"seed": In(16)} if lfsr_seed is None else {}),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        aw = self.addr_width
        wmask = (1 << aw) - 1
        ctl, ev = self.control, self.events
        ib = ctl.init
        mode = ib.mode
        tx_rd, tx_wr = self.ram_rd, self.ram_wr

        t_idx = Signal(7)
        t_start = Signal(7)       # the frame's STP descriptor
        t_first = Signal()        # the next byte is the frame's first
        t_buf = Signal(24)
        t_left = Signal(13)
        t_enp = Signal()
        t_fcs = Signal()          # append the FCS (set from the STP descriptor)
        t_w0 = Signal(32)
        t_attempts = Signal(5)
        t_status = Signal(tx_status_layout)
        t_bufferr = Signal()
        t_wb = Signal(7)
        t_lfsr = Signal(16, init=self.lfsr_seed or 0)
        lfsr = t_lfsr                 # the value the next draw takes
        if self.lfsr_seed is None:    # the seed input until the first draw
            t_seeded = Signal()
            lfsr = Mux(t_seeded, t_lfsr, self.seed)
        t_backoff = Signal(20)
        t_poll_req = Signal()
        t_poll_cnt = Signal(range(T.TX_POLL_CYCLES + 1))
        t_last_idx = Signal(7)
        t_def = Signal()
        tlen_mask = Signal(7)
        m.d.comb += tlen_mask.eq((Const(1, 8) << ib.tlen) - 1)

        def tdesc_word(idx, k):
            return descriptor_word(ib.tdra, idx, k, aw)

        # BABL when the transmitter starts the 1519th byte of a frame (Am7990: on the wire
        # longer than a maximum-length frame), mid-frame: a chain with no ENP never ends.
        babl_seen = Signal()
        m.d.sync += babl_seen.eq(self.babble)
        with m.If(self.babble & ~babl_seen):
            m.d.comb += ev.babl.eq(1)

        txs = self.o_stream
        fire = Signal()
        m.d.comb += [fire.eq(txs.valid & txs.ready & self.tick), self.i_status.ready.eq(1)]
        with m.If(t_poll_cnt != T.TX_POLL_CYCLES):
            m.d.sync += t_poll_cnt.eq(t_poll_cnt + 1)
        with m.If(ctl.tdmd | ctl.start):
            m.d.sync += t_poll_req.eq(1)

        def begin_poll():
            m.d.sync += [t_poll_cnt.eq(0), t_poll_req.eq(ctl.tdmd | ctl.start)]
            m.next = "Fetch0"

        drain_states = {"Fetch0", "Fetch1", "Fetch2", "Byte0", "Byte1", "Offer", "Starve"}

        def drain(name):
            if name in drain_states:
                # A frame the transmitter aborted (collision, underflow): end it now.
                with m.If(self.draining):
                    m.d.sync += [txs.valid.eq(1), txs.payload.last.eq(1)]
                    m.next = "Flush"
        tstate = engine_states(m, ctl.stop, drain)

        with m.FSM(name="tx_engine"):
            with tstate("Idle"):
                with m.If(ctl.txon & ~ctl.init_busy
                          & (t_poll_req | (t_poll_cnt >= T.TX_POLL_CYCLES - 1))):
                    m.d.sync += [t_first.eq(1), t_attempts.eq(0), t_start.eq(t_idx),
                                 t_bufferr.eq(0), t_def.eq(0)]
                    begin_poll()
            with tstate("Fetch0"):
                m.d.comb += tx_rd.addr.eq(tdesc_word(t_idx, 0))
                m.next = "Fetch1"
            with tstate("Fetch1"):
                m.d.comb += tx_rd.addr.eq(tdesc_word(t_idx, 1))
                m.d.sync += t_w0.eq(tx_rd.data)
                m.next = "Fetch2"
            with tstate("Fetch2"):
                tmd = data.View(tx_descriptor_layout, Cat(t_w0, tx_rd.data))
                with m.If(~tmd.tmd1.own):
                    with m.If(t_first):
                        m.next = "Idle"
                    with m.Else():
                        # A chained descriptor the host has not handed over: the Am7990's
                        # buffer error. Starve the transmitter (it underflows and drains).
                        m.d.sync += t_bufferr.eq(1)
                        m.next = "Starve"
                with m.Else():
                    m.d.sync += [
                        t_buf.eq(Cat(tmd.ladr, tmd.tmd1.hadr)),
                        t_left.eq(bcnt_bytes(tmd.bcnt)),
                        t_enp.eq(tmd.tmd1.enp),
                        t_last_idx.eq(t_idx),
                    ]
                    with m.If(t_first):
                        m.d.sync += t_fcs.eq(~mode.dtcr | tmd.tmd1.add_fcs)
                    m.next = "Byte0"
            with tstate("Byte0"):
                m.d.comb += tx_rd.addr.eq(t_buf[2:24] & wmask)
                m.next = "Byte1"
            with tstate("Byte1"):
                byte = tx_rd.data.word_select(t_buf[0:2], 8)
                m.d.sync += [
                    txs.valid.eq(1),
                    txs.payload.data.eq(byte),
                    txs.payload.first.eq(t_first),
                    txs.payload.last.eq((t_left == 1) & t_enp),
                    txs.payload.add_fcs.eq(t_fcs),
                    txs.payload.pad.eq(~mode.loop),  # no padding in loopback (frames of 8-32 bytes)
                ]
                m.next = "Offer"
            with tstate("Offer"):
                with m.If(fire):
                    m.d.sync += [txs.valid.eq(0), t_first.eq(0), t_buf.eq(t_buf + 1),
                                 t_left.eq(t_left - 1)]
                    with m.If(txs.payload.last):
                        m.next = "Status"
                    with m.Elif(t_left == 1):
                        m.d.sync += t_idx.eq((t_idx + 1) & tlen_mask)
                        m.next = "Fetch0"
                    with m.Else():
                        m.next = "Byte0"
            with tstate("Starve"):
                pass
            with tstate("Flush"):
                with m.If(fire):
                    m.d.sync += txs.valid.eq(0)
                    m.next = "Status"
            with tstate("Status"):
                st = self.i_status
                with m.If(st.valid):
                    m.d.sync += [t_status.eq(st.payload), t_wb.eq(t_start)]
                    with m.If(st.payload.deferred):
                        m.d.sync += t_def.eq(1)
                    with m.If(st.payload.collision):
                        m.d.comb += ev.collision.eq(1)
                    retry = (st.payload.collision & ~st.payload.late & ~mode.drty
                             & (t_attempts + 1 < T.MAX_ATTEMPTS) & ~t_bufferr)
                    with m.If(retry):
                        # Truncated binary exponential backoff: r in [0, 2^min(n, 10)).
                        n = t_attempts + 1
                        k = Signal(10)
                        m.d.comb += k.eq(lfsr[0:10] & ((Const(1, 11) << Mux(n > 10, 10, n)) - 1))
                        if self.lfsr_seed is None:
                            m.d.sync += t_seeded.eq(1)
                        m.d.sync += [
                            t_attempts.eq(n),
                            t_lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ T.BACKOFF_TAPS, lfsr >> 1)),
                            t_backoff.eq(k * (T.SLOT_TICKS * T.MII_DIVIDER)),
                        ]
                        m.next = "Backoff"
                    with m.Else():
                        with m.If(st.payload.collision & ~st.payload.late & ~t_bufferr):
                            m.d.comb += ev.retry_error.eq(1)
                        m.next = "Wb0"
            with tstate("Backoff"):
                with m.If(t_backoff == 0):
                    m.d.sync += [t_idx.eq(t_start), t_first.eq(1)]
                    m.next = "Fetch0"
                with m.Else():
                    m.d.sync += t_backoff.eq(t_backoff - 1)
            with tstate("Wb0"):
                m.d.comb += tx_rd.addr.eq(tdesc_word(t_wb, 0))
                m.next = "Wb1"
            with tstate("Wb1"):
                last = t_wb == t_last_idx
                old = data.View(tmd1_layout, tx_rd.data[16:32])
                rtry = t_status.collision & ~t_status.late & ~t_bufferr
                lcol = t_status.collision & t_status.late
                uflo = t_status.underflow
                errs = rtry | lcol | uflo | t_bufferr
                # Keep ENP, STP and ADD_FCS; OWN cleared; the status on the last descriptor.
                tmd1 = Signal(tmd1_layout)
                m.d.comb += [
                    tmd1.enp.eq(old.enp), tmd1.stp.eq(old.stp), tmd1.add_fcs.eq(old.add_fcs),
                    tmd1.def_.eq(t_def & last), tmd1.one.eq((t_attempts == 1) & last),
                    tmd1.more.eq((t_attempts > 1) & last), tmd1.err.eq(errs & last),
                    tx_wr.addr.eq(tdesc_word(t_wb, 0)),
                    tx_wr.data.eq(tmd1.as_value() << 16),
                    tx_wr.en.eq(0b1000),        # TMD1's flag byte only: HADR stays
                ]
                with m.If(last):
                    m.next = "Wb2"
                with m.Else():
                    m.d.sync += t_wb.eq((t_wb + 1) & tlen_mask)
                    m.next = "Wb0"
            with tstate("Wb2"):
                tmd3 = Signal(tmd3_layout)
                m.d.comb += [
                    tmd3.rtry.eq(t_status.collision & ~t_status.late & ~t_bufferr),
                    tmd3.lcol.eq(t_status.collision & t_status.late),
                    tmd3.uflo.eq(t_status.underflow | t_bufferr),
                    tmd3.buff.eq(t_bufferr),
                    tx_wr.addr.eq(tdesc_word(t_last_idx, 1)),
                    tx_wr.data.eq(tmd3.as_value() << 16),
                    tx_wr.en.eq(0b1100),
                    ev.tint.eq(1),
                ]
                with m.If(t_bufferr):
                    m.d.comb += ev.txoff.eq(1)
                m.d.sync += [t_idx.eq((t_last_idx + 1) & tlen_mask), t_first.eq(1),
                             t_attempts.eq(0), t_start.eq((t_last_idx + 1) & tlen_mask),
                             t_bufferr.eq(0), t_def.eq(0)]
                with m.If(t_bufferr):
                    m.next = "Idle"
                with m.Else():
                    begin_poll()

        # STOP: back to reset.
        with m.If(ctl.stop):
            m.d.sync += [t_idx.eq(0), t_poll_req.eq(0), txs.valid.eq(0)]
        return m
