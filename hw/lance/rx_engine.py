"""The LANCE card's receive engine: the SILO, the address filter, the receive ring.

One of the three parts of :class:`~hw.lance.gateware.LanceCard`. It takes
:class:`~hw.lance.mii.MiiReceiver`'s bytes through a small SILO, filters on the destination
address (the station address, broadcast, the multicast hash, or all with MODE.PROM), writes the
bytes into owned buffers (chaining), hands frames with a bad FCS up flagged (CRC, FRAM), drops
and counts runts, over-long and ``rx_er`` frames, writes the descriptors back (RMD1, and MCNT in
RMD3 on the last one) and reports RINT; MISS when no buffer is owned.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import timing as T
from .crc import CRC_INIT, crc32_step
from .mii import rx_byte_layout, rx_status_layout
from .registers import rmd1_layout, rx_descriptor_layout
from .regs_target import (Control, RxEvents, bcnt_bytes, descriptor_word, engine_states,
                          ram_signatures)

__all__ = ["RxEngine"]


class RxEngine(wiring.Component):
    """The receive engine.

    Parameters
    ----------
    addr_width : int
        Word address width of the buffer SRAM ports.

    Members
    -------
    ram_rd, ram_wr : In(:func:`~hw.lance.regs_target.ram_signatures`)
        Descriptor reads; the frame's bytes and the descriptor write-backs (byte enables).
    control : In(Control)
        From the register target.
    events : Out(RxEvents)
        To the register target.
    tick : In(1)
        The MII tick (the SILO takes a byte only on one).
    i_stream : In(stream.Signature(rx_byte_layout))
        The received bytes, from the MII receiver.
    """

    def __init__(self, *, addr_width: int):
        rd, wr = ram_signatures(addr_width)
        self.addr_width = addr_width
        super().__init__({
            "ram_rd": In(rd), "ram_wr": In(wr),
            "control": In(Control), "events": Out(RxEvents),
            "tick": In(1),
            "i_stream": In(stream.Signature(rx_byte_layout)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        aw = self.addr_width
        wmask = (1 << aw) - 1
        ctl, ev = self.control, self.events
        ib = ctl.init
        mode = ib.mode
        rx_rd, rx_wr = self.ram_rd, self.ram_wr

        rxs = self.i_stream
        # The receive SILO (the Am7990's FIFO between the wire and memory): the engine takes
        # the oldest byte (``pb``) while the wire keeps delivering, so that a slow stretch (the
        # six held address bytes, each opening a one-byte buffer) loses nothing. A byte is
        # visible the cycle after the tick that delivers it, as from a plain register.
        silo = Memory(shape=rx_byte_layout, depth=T.RX_SILO_BYTES, init=[])
        m.submodules.silo = silo
        silo_w = silo.write_port()
        silo_r = silo.read_port(domain="comb")
        s_wp = Signal(range(T.RX_SILO_BYTES))
        s_rp = Signal(range(T.RX_SILO_BYTES))
        s_n = Signal(range(T.RX_SILO_BYTES + 1))
        pb = silo_r.data
        pb_valid = Signal()
        take = Signal()
        put_in = Signal()
        m.d.comb += [
            rxs.ready.eq(self.tick & (s_n != T.RX_SILO_BYTES)),
            put_in.eq(rxs.valid & rxs.ready),
            silo_w.addr.eq(s_wp), silo_w.data.eq(rxs.payload), silo_w.en.eq(put_in),
            silo_r.addr.eq(s_rp),
            pb_valid.eq(s_n != 0),
        ]
        with m.If(put_in):
            m.d.sync += s_wp.eq(s_wp + 1)
        with m.If(take):
            m.d.sync += s_rp.eq(s_rp + 1)
        m.d.sync += s_n.eq(s_n + put_in - take)

        r_idx = Signal(7)
        r_first_idx = Signal(7)
        r_dst = Signal(48)
        r_nb = Signal(3)
        r_crc = Signal(32)
        r_df = Signal(2)          # descriptor fetch phase
        r_w0 = Signal(32)
        r_own = Signal()
        r_buf = Signal(24)
        r_size = Signal(13)
        r_off = Signal(13)
        r_total = Signal(12)
        r_byte = Signal(8)
        r_hold = Signal(3)        # address bytes still to write
        r_last = Signal()
        r_status = Signal(rx_status_layout)
        r_bufferr = Signal()
        r_wb = Signal(7)
        rlen_mask = Signal(7)
        m.d.comb += rlen_mask.eq((Const(1, 8) << ib.rlen) - 1)

        def rdesc_word(idx, k):
            return descriptor_word(ib.rdra, idx, k, aw)

        # The descriptor whose words 0 and 1 are r_w0 and the read port's data.
        rmd = data.View(rx_descriptor_layout, Cat(r_w0, rx_rd.data))

        match = Signal()
        hash_bit = Signal(6)
        m.d.comb += [
            hash_bit.eq(r_crc[26:32]),
            match.eq(mode.prom | (r_dst == ib.padr) | (r_dst == 0xFFFF_FFFF_FFFF)
                     | (r_dst[0] & ib.ladrf.bit_select(hash_bit, 1))),
        ]

        # In loopback the one CRC generator serves the transmitter unless MODE.DTCR gives it to
        # the receiver (Am7990): with DTCR = 0 the FCS of a looped frame is not checked.
        crc_bad = Signal()
        m.d.comb += crc_bad.eq(r_status.crc_error & (~mode.loop | mode.dtcr))

        rstate = engine_states(m, ctl.stop)

        with m.FSM(name="rx_engine"):
            with rstate("Idle"):
                with m.If(pb_valid):
                    m.d.comb += take.eq(1)
                    with m.If(pb.first & ctl.rxon):
                        m.d.sync += [
                            r_dst[0:8].eq(pb.data), r_nb.eq(1), r_df.eq(0),
                            r_crc.eq(crc32_step(Const(CRC_INIT, 32), pb.data)),
                            r_first_idx.eq(r_idx), r_bufferr.eq(0), r_total.eq(1),
                        ]
                        with m.If(pb.last):
                            with m.If(pb.status.runt):
                                m.d.comb += ev.runt.eq(1)
                        with m.Else():
                            m.next = "Addr"
            with rstate("Addr"):
                # Prefetch the receive descriptor while the destination address arrives.
                with m.If(r_df == 0):
                    m.d.comb += rx_rd.addr.eq(rdesc_word(r_idx, 0))
                    m.d.sync += r_df.eq(1)
                with m.Elif(r_df == 1):
                    m.d.comb += rx_rd.addr.eq(rdesc_word(r_idx, 1))
                    m.d.sync += [r_w0.eq(rx_rd.data), r_df.eq(2)]
                with m.Elif(r_df == 2):
                    m.d.sync += [
                        r_own.eq(rmd.rmd1.own),
                        r_buf.eq(Cat(rmd.ladr, rmd.rmd1.hadr)),
                        r_size.eq(bcnt_bytes(rmd.bcnt)),
                        r_df.eq(3),
                    ]
                with m.If(pb_valid):
                    m.d.comb += take.eq(1)
                    m.d.sync += [
                        r_dst.word_select(r_nb, 8).eq(pb.data),
                        r_nb.eq(r_nb + 1),
                        r_crc.eq(crc32_step(r_crc, pb.data)),
                        r_total.eq(r_total + 1),
                    ]
                    with m.If(pb.last):
                        with m.If(pb.status.runt):
                            m.d.comb += ev.runt.eq(1)
                        m.next = "Idle"
                    with m.Elif(r_nb == 5):
                        m.next = "Decide"
            with rstate("Decide"):
                with m.If(~match):
                    m.next = "Skip"
                with m.Elif(~r_own):
                    m.d.comb += [ev.miss.eq(1), ev.missed.eq(1)]
                    m.next = "Skip"
                with m.Else():
                    m.d.sync += [r_off.eq(0), r_hold.eq(6), r_last.eq(0)]
                    m.next = "HoldNext"
            with rstate("HoldNext"):
                m.d.sync += [r_byte.eq(r_dst.word_select((6 - r_hold)[0:3], 8)), r_hold.eq(r_hold - 1)]
                m.next = "Put"
            with rstate("Data"):
                with m.If(pb_valid):
                    m.d.comb += take.eq(1)
                    m.d.sync += [r_byte.eq(pb.data), r_last.eq(pb.last), r_status.eq(pb.status),
                                 r_total.eq(r_total + 1)]
                    m.next = "Put"
            with rstate("Put"):
                with m.If(r_off == r_size):
                    m.next = "Chain0"
                with m.Else():
                    addr = (r_buf + r_off)[0:24]
                    m.d.comb += [
                        rx_wr.addr.eq(addr[2:24] & wmask),
                        rx_wr.data.eq(Cat(r_byte, r_byte, r_byte, r_byte)),
                        rx_wr.en.eq(Const(1, 4) << addr[0:2]),
                    ]
                    m.d.sync += r_off.eq(r_off + 1)
                    with m.If(r_hold != 0):
                        m.next = "HoldNext"
                    with m.Elif(r_last):
                        m.next = "Finish"
                    with m.Else():
                        m.next = "Data"
            with rstate("Chain0"):
                nxt = (r_idx + 1) & rlen_mask
                m.d.comb += rx_rd.addr.eq(rdesc_word(nxt, 0))
                m.next = "Chain1"
            with rstate("Chain1"):
                nxt = (r_idx + 1) & rlen_mask
                m.d.comb += rx_rd.addr.eq(rdesc_word(nxt, 1))
                m.d.sync += r_w0.eq(rx_rd.data)
                m.next = "Chain2"
            with rstate("Chain2"):
                with m.If(rmd.rmd1.own & (((r_idx + 1) & rlen_mask) != r_first_idx)):
                    m.d.sync += [
                        r_idx.eq((r_idx + 1) & rlen_mask),
                        r_buf.eq(Cat(rmd.ladr, rmd.rmd1.hadr)),
                        r_size.eq(bcnt_bytes(rmd.bcnt)),
                        r_off.eq(0),
                    ]
                    m.next = "Put"
                with m.Else():
                    m.d.sync += [r_bufferr.eq(1), r_hold.eq(0)]
                    with m.If(r_last):
                        m.next = "Finish"
                    with m.Else():
                        m.next = "Skip"
            with rstate("Skip"):
                with m.If(pb_valid):
                    m.d.comb += take.eq(1)
                    m.d.sync += [r_total.eq(r_total + 1), r_status.eq(pb.status)]
                    with m.If(pb.last):
                        with m.If(r_bufferr):
                            m.next = "Finish"
                        with m.Else():
                            m.next = "Idle"
            with rstate("Finish"):
                # As the Am7990: a frame with a bad FCS is handed up with ERR and CRC (and FRAM
                # when it also ended in a dribble nibble, which alone is no error). Runts, frames
                # over 1518 bytes and frames with rx_er are dropped and counted
                # (docs/lance_card.md, "Departures").
                s = r_status
                drop = (s.runt & ~mode.loop) | s.too_long | s.rx_error | s.overflow
                with m.If(drop & ~r_bufferr):
                    with m.If(s.runt):
                        m.d.comb += ev.runt.eq(1)
                    with m.Elif(s.too_long):
                        m.d.comb += ev.too_long.eq(1)
                    with m.Else():
                        m.d.comb += ev.fcs_error.eq(1)
                    m.d.sync += r_idx.eq(r_first_idx)
                    m.next = "Idle"
                with m.Else():
                    with m.If(crc_bad & ~r_bufferr):
                        m.d.comb += ev.fcs_error.eq(1)
                    m.d.sync += r_wb.eq(r_first_idx)
                    m.next = "Wb"
            with rstate("Wb"):
                s = r_status
                last = r_wb == r_idx
                buff = r_bufferr & last
                rmd1 = Signal(rmd1_layout)
                m.d.comb += [
                    rmd1.enp.eq(last & ~r_bufferr), rmd1.stp.eq(r_wb == r_first_idx),
                    rmd1.buff.eq(buff), rmd1.crc.eq(crc_bad & last),
                    rmd1.oflo.eq(s.overflow & last), rmd1.fram.eq(crc_bad & s.dribble & last),
                    rmd1.err.eq((crc_bad | (crc_bad & s.dribble) | s.overflow | buff) & last),
                    rx_wr.addr.eq(rdesc_word(r_wb, 0)),
                    rx_wr.data.eq(rmd1.as_value() << 16),
                    rx_wr.en.eq(0b1000),        # RMD1's flag byte only: HADR stays
                ]
                with m.If(last):
                    m.next = "WbMcnt"
                with m.Else():
                    m.d.sync += r_wb.eq((r_wb + 1) & rlen_mask)
            with rstate("WbMcnt"):
                with m.If(~r_bufferr):
                    m.d.comb += [
                        rx_wr.addr.eq(rdesc_word(r_idx, 1)),
                        rx_wr.data.eq(r_total << 16),
                        rx_wr.en.eq(0b1100),
                    ]
                m.d.comb += ev.rint.eq(1)
                m.d.sync += r_idx.eq((r_idx + 1) & rlen_mask)
                m.next = "Idle"

        # STOP: back to reset.
        with m.If(ctl.stop):
            m.d.sync += [r_idx.eq(0), s_n.eq(0), s_rp.eq(0), s_wp.eq(0)]
        return m
