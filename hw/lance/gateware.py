"""The LANCE-style Ethernet card's RTL: buffer SRAM, Am7990 registers, descriptor engines, MII.

Design contract: docs/lance_card.md; register map: :mod:`hw.lance.registers`; every fixed
latency: :mod:`hw.lance.timing` (the model computes its times from those constants, and
tests/hw/test_lance_gateware.py measures them here).

Structure
---------
* **Buffer SRAM**, 32-bit words, ``ram_bytes`` deep, with a port per user so that no user ever
  waits for another (the timing stays fixed, as the contract promises): the host (read and
  write), the transmit engine (read and write-back; the init block is read through it too) and
  the receive engine (read and write). Byte writes use the write ports' byte enables.
* **Host bus** (:class:`hw.bus.HostBus`, word addresses of the 2 MiB PMAD-AA window) with the
  wait states of :data:`~hw.lance.timing.BUS_READ_WAIT` / ``BUS_WRITE_WAIT``.
* **CSRs** with Am7990 semantics (docs/lance_card.md, "Registers").
* **Transmit engine**: polls, walks owned descriptors, feeds the frame's bytes to
  :class:`~hw.lance.mii.MiiTransmitter`, backs off and refetches on collision, writes the
  descriptors back, TINT.
* **Receive engine**: takes :class:`~hw.lance.mii.MiiReceiver`'s bytes through a small SILO,
  filters on the destination address, writes the bytes into owned buffers (chaining), hands
  frames with a bad FCS up flagged (CRC, FRAM), drops and counts runts, over-long and
  ``rx_er`` frames, writes the descriptors back, RINT; MISS when no buffer is owned.
* **Loopback** (MODE.LOOP, INTL, COLL): internal loopback routes the transmitter's nibbles to
  the receiver instead of the pins; COLL forces a collision (docs/lance_card.md).
* **MII**: one clock domain; the MII engines run under an ``EnableInserter`` on the tick
  (one cycle in :data:`~hw.lance.timing.MII_DIVIDER`), and the card drives ``mii_clk``.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from contextlib import contextmanager

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from . import timing as T
from .crc import CRC_INIT, crc32_step
from .mii import (MiiReceiver, MiiTransmitter, rx_byte_layout, rx_status_layout,
                  tx_status_layout)
from .registers import (BUFFER_RAM_SIZE_DEFAULT, COUNTERS_OFFSET, DEFAULT_MAC, LANCE_OFFSET,
                        RAP_OFFSET, RDP_OFFSET, ROM_ESAR_OFFSET, ROM_ESAR_STRIDE, ROM_OFFSET,
                        Counter)

__all__ = ["LanceCard", "BUS_ADDR_WIDTH"]

#: The 2 MiB PMAD-AA window in 32-bit words.
BUS_ADDR_WIDTH = 19

_RAM_WORDS_MAX = (LANCE_OFFSET // 4)


def _bcnt_bytes(bcnt: "Value") -> "Value":
    """BCNT (12-bit two's complement) as a 13-bit byte count; 0 means 4096."""
    neg = (Const(4096, 14) - bcnt[0:12])[0:13]
    return Mux(bcnt[0:12] == 0, 4096, neg)


class LanceCard(wiring.Component):
    """The PMAD-AA: an Am7990-style LANCE with its buffer SRAM and station-address ROM.

    Parameters
    ----------
    ram_bytes : int
        Buffer SRAM size, a power of two from 4 KiB to 1 MiB (default 128 KiB).
    mac : bytes
        The station address in the ROM (6 bytes).

    Members
    -------
    bus : In(HostBus(addr_width=19, data_width=32))
        The option window (docs/lance_card.md, "Host bus").
    irq : Out(1)
        CSR0.INTR and CSR0.INEA, registered.
    mii_clk : Out(1)
        The MII clock the card generates (2.5 MHz); PHY-side models drive and sample on its
        rising edge.
    txd, tx_en, tx_er : Out
    rxd, rx_dv, rx_er, crs, col : In
        The MII (half duplex).

    Raises
    ------
    ValueError
        For a bad ``ram_bytes`` or ``mac``.
    """

    bus: In(HostBus(addr_width=BUS_ADDR_WIDTH, data_width=32))
    irq: Out(1)
    mii_clk: Out(1)
    txd: Out(4)
    tx_en: Out(1)
    tx_er: Out(1)
    rxd: In(4)
    rx_dv: In(1)
    rx_er: In(1)
    crs: In(1)
    col: In(1)

    def __init__(self, *, ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT, mac: bytes = DEFAULT_MAC):
        if (not isinstance(ram_bytes, int) or ram_bytes < 4096 or ram_bytes > LANCE_OFFSET
                or ram_bytes & (ram_bytes - 1)):
            raise ValueError(f"ram_bytes must be a power of two from 4 KiB to 1 MiB, "
                             f"not {ram_bytes!r}")
        if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
            raise ValueError(f"mac must be 6 bytes, not {mac!r}")
        self.ram_bytes = ram_bytes
        self.mac = bytes(mac)
        self.ram = Memory(shape=32, depth=ram_bytes // 4, init=[])
        super().__init__()

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.ram = ram = self.ram
        words = self.ram_bytes // 4
        wmask = words - 1
        amask = self.ram_bytes - 1
        aw = (words - 1).bit_length()

        host_rd = ram.read_port()
        host_wr = ram.write_port(granularity=8)
        tx_rd = ram.read_port()
        tx_wr = ram.write_port(granularity=8)
        rx_rd = ram.read_port()
        rx_wr = ram.write_port(granularity=8)

        # --- MII clock and tick ---------------------------------------------------------------
        div = Signal(range(T.MII_DIVIDER))
        tick = Signal()
        m.d.comb += tick.eq(div == T.MII_TICK_PHASE)
        m.d.sync += div.eq(Mux(tick, 0, div + 1))
        # High in the three cycles before each tick edge (rises at edges k % 5 == 1).
        m.d.sync += self.mii_clk.eq((div >= 1) & (div <= 3))

        mii_rst = Signal()
        rst_cnt = Signal(range(T.MII_RESET_CYCLES + 1), init=T.MII_RESET_CYCLES)
        m.d.comb += mii_rst.eq(rst_cnt != 0)
        with m.If(rst_cnt != 0):
            m.d.sync += rst_cnt.eq(rst_cnt - 1)

        tx = MiiTransmitter()
        rxm = MiiReceiver()
        m.submodules.mii_tx = ResetInserter(mii_rst)(EnableInserter(tick)(tx))
        m.submodules.mii_rx = ResetInserter(mii_rst)(EnableInserter(tick)(rxm))

        # --- CSR state ------------------------------------------------------------------------
        stop = Signal(init=1)
        init_bit = Signal()
        strt_bit = Signal()
        txon = Signal()
        rxon = Signal()
        inea = Signal()
        idon = Signal()
        tint = Signal()
        rint = Signal()
        merr = Signal()
        miss = Signal()
        cerr = Signal()
        babl = Signal()
        rap = Signal(2)
        csr1 = Signal(16)
        csr2 = Signal(16)
        csr3 = Signal(3)
        mode = Signal(16)
        padr = Signal(48)
        ladrf = Signal(64)
        rdra = Signal(24)
        rlen_log = Signal(3)
        tdra = Signal(24)
        tlen_log = Signal(3)
        counters = [Signal(16, name=f"cnt_{c.name.lower()}") for c in Counter]

        # --- MII pins and the loopback modes (Am7990 MODE) --------------------------------------
        # LOOP with INTL: internal loopback. The transmitter's nibbles go straight to the
        # receiver (sampled a tick later, as from the pins); the MII pins stay idle and what
        # arrives on them is ignored; no carrier; COLL forces a collision on every attempt (col
        # follows our own tx_en). LOOP alone (external loopback) uses the pins as usual.
        loop = mode[2]
        iloop = Signal()
        m.d.comb += iloop.eq(mode[2] & mode[6])
        m.d.comb += [
            self.txd.eq(Mux(iloop, 0, tx.txd)), self.tx_en.eq(tx.tx_en & ~iloop),
            self.tx_er.eq(tx.tx_er & ~iloop),
            tx.crs.eq(self.crs & ~iloop), tx.col.eq(Mux(iloop, mode[4] & tx.tx_en, self.col)),
            rxm.rxd.eq(Mux(iloop, tx.txd, self.rxd)), rxm.rx_dv.eq(Mux(iloop, tx.tx_en, self.rx_dv)),
            rxm.rx_er.eq(Mux(iloop, tx.tx_er, self.rx_er)),
        ]

        intr = Signal()
        err = Signal()
        m.d.comb += [
            intr.eq(babl | miss | merr | rint | tint | idon),
            err.eq(babl | cerr | miss | merr),
        ]
        m.d.sync += self.irq.eq(intr & inea)
        csr0 = Signal(16)
        m.d.comb += csr0.eq(Cat(init_bit, strt_bit, stop, Const(0, 1), txon, rxon, inea, intr,
                                idon, tint, rint, merr, miss, cerr, babl, err))

        # Events raised by the engines this cycle (applied after the bus, so they win over a
        # simultaneous write-one-to-clear: the host never loses an interrupt).
        set_tint = Signal()
        set_rint = Signal()
        set_miss = Signal()
        set_babl = Signal()
        inc = {c: Signal(name=f"inc_{c.name.lower()}") for c in Counter}
        clr = {c: Signal(name=f"clr_{c.name.lower()}") for c in Counter}

        # Commands from CSR0 writes (pulses in the write's effect cycle).
        cmd_stop = Signal()
        cmd_init = Signal()
        cmd_strt = Signal()
        cmd_tdmd = Signal()
        start_now = Signal()   # the engines start (from STRT, or at the end of INIT+STRT)

        # --- Host bus -------------------------------------------------------------------------
        bus = self.bus
        busy = Signal()
        cnt = Signal(3)
        is_w = Signal()
        start = Signal()
        m.d.comb += start.eq((bus.r_en | bus.w_en) & ~busy & ~bus.ack)
        m.d.sync += bus.ack.eq(0)
        with m.If(start):
            m.d.sync += [busy.eq(1), cnt.eq(1), is_w.eq(bus.w_en)]
        with m.Elif(busy):
            m.d.sync += cnt.eq(cnt + 1)

        a = bus.addr
        in_ram = Signal()
        m.d.comb += [
            in_ram.eq(a < _RAM_WORDS_MAX),
            host_rd.addr.eq(a[0:aw]),
            host_wr.addr.eq(a[0:aw]),
            host_wr.data.eq(bus.w_data),
        ]
        do_write = Signal()
        do_read = Signal()
        m.d.comb += [
            do_write.eq(busy & is_w & (cnt == T.BUS_WRITE_WAIT)),
            do_read.eq(busy & ~is_w & (cnt == T.BUS_READ_WAIT)),
        ]
        rdp_w = RDP_OFFSET // 4
        rap_w = RAP_OFFSET // 4
        cnt_w = COUNTERS_OFFSET // 4
        rom_w = ROM_OFFSET // 4
        rom_lane = ROM_ESAR_OFFSET % 4
        if ROM_ESAR_STRIDE != 4:
            raise NotImplementedError("the ROM decoder assumes one address byte per word")

        wdata16 = bus.w_data[0:16]
        with m.If(do_write):
            m.d.sync += [busy.eq(0), bus.ack.eq(1)]
            with m.If(in_ram):
                m.d.comb += host_wr.en.eq(0b1111)
            with m.Elif(a == rap_w):
                m.d.sync += rap.eq(wdata16[0:2])
            with m.Elif(a == rdp_w):
                with m.Switch(rap):
                    with m.Case(0):
                        with m.If(wdata16[2]):
                            m.d.comb += cmd_stop.eq(1)
                        with m.Else():
                            m.d.comb += [
                                cmd_init.eq(wdata16[0] & stop),
                                cmd_strt.eq(wdata16[1]),
                                cmd_tdmd.eq(wdata16[3]),
                            ]
                            m.d.sync += inea.eq(wdata16[6])
                            # Write one to clear.
                            for bit, sig in ((8, idon), (9, tint), (10, rint), (11, merr),
                                             (12, miss), (13, cerr), (14, babl)):
                                with m.If(wdata16[bit]):
                                    m.d.sync += sig.eq(0)
                    with m.Case(1):
                        with m.If(stop):
                            m.d.sync += csr1.eq(wdata16 & 0xFFFE)
                    with m.Case(2):
                        with m.If(stop):
                            m.d.sync += csr2.eq(wdata16 & 0x00FF)
                    with m.Case(3):
                        with m.If(stop):
                            m.d.sync += csr3.eq(wdata16[0:3])
            for c in Counter:
                with m.Elif(a == cnt_w + c.value):
                    m.d.comb += clr[c].eq(1)

        with m.If(do_read):
            m.d.sync += [busy.eq(0), bus.ack.eq(1), bus.r_data.eq(0)]
            with m.If(in_ram):
                m.d.sync += bus.r_data.eq(host_rd.data)
            with m.Elif(a == rap_w):
                m.d.sync += bus.r_data.eq(rap)
            with m.Elif(a == rdp_w):
                with m.Switch(rap):
                    with m.Case(0):
                        m.d.sync += bus.r_data.eq(csr0)
                    with m.Case(1):
                        m.d.sync += bus.r_data.eq(csr1)
                    with m.Case(2):
                        m.d.sync += bus.r_data.eq(csr2)
                    with m.Case(3):
                        m.d.sync += bus.r_data.eq(csr3)
            for c in Counter:
                with m.Elif(a == cnt_w + c.value):
                    m.d.sync += bus.r_data.eq(counters[c.value])
            for i in range(6):
                with m.Elif(a == rom_w + i):
                    m.d.sync += bus.r_data.eq(self.mac[i] << (8 * rom_lane))

        # --- Counters -------------------------------------------------------------------------
        for c in Counter:
            ctr = counters[c.value]
            with m.If(clr[c]):
                m.d.sync += ctr.eq(0)
            with m.Elif(inc[c] & (ctr != 0xFFFF)):
                m.d.sync += ctr.eq(ctr + 1)

        # --- Init, start, stop ----------------------------------------------------------------
        init_busy = Signal()
        init_strt = Signal()
        icnt = Signal(3)
        iadr_w = Signal(22)   # word address of the init block
        m.d.comb += iadr_w.eq(Cat(csr1[2:16], csr2[0:8]))
        init_word = Signal(3)
        m.d.comb += init_word.eq(icnt)

        # The init block need only be 16-bit aligned (CSR1 bit 0 = 0, Am7990 data sheet): at
        # an address that is 2 mod 4 its twelve words straddle seven RAM words, each 32-bit
        # piece made of one word's upper half and the next word's lower half (one more read:
        # timing.INIT_UNALIGNED_CYCLES).
        i_odd = csr1[1]
        i_prev = Signal(16)
        with m.If(init_busy):
            m.d.sync += [icnt.eq(icnt + 1), i_prev.eq(tx_rd.data[16:32])]
            word = Mux(i_odd, Cat(i_prev, tx_rd.data[0:16]), tx_rd.data)
            with m.Switch(icnt - i_odd):
                with m.Case(1):
                    m.d.sync += [mode.eq(word[0:16]), padr[0:16].eq(word[16:32])]
                with m.Case(2):
                    m.d.sync += padr[16:48].eq(word)
                with m.Case(3):
                    m.d.sync += ladrf[0:32].eq(word)
                with m.Case(4):
                    m.d.sync += ladrf[32:64].eq(word)
                with m.Case(5):
                    m.d.sync += [rdra.eq(Cat(word[0:16], word[16:24])), rlen_log.eq(word[29:32])]
                with m.Case(6):
                    m.d.sync += [tdra.eq(Cat(word[0:16], word[16:24])), tlen_log.eq(word[29:32]),
                                 init_busy.eq(0), idon.eq(1)]
                    with m.If(init_strt):
                        m.d.comb += start_now.eq(1)
        with m.If(cmd_init):
            m.d.sync += [init_busy.eq(1), icnt.eq(0), init_strt.eq(cmd_strt), stop.eq(0),
                         init_bit.eq(1)]
        with m.If(cmd_strt & ~cmd_init):
            m.d.comb += start_now.eq(1)
        with m.If(start_now):
            m.d.sync += [stop.eq(0), strt_bit.eq(1), txon.eq(~mode[1]), rxon.eq(~mode[0])]

        # --- Transmit engine ------------------------------------------------------------------
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
        t_lfsr = Signal(16, init=T.backoff_seed(self.mac))
        t_backoff = Signal(20)
        t_poll_req = Signal()
        t_poll_cnt = Signal(range(T.TX_POLL_CYCLES + 1))
        t_last_idx = Signal(7)
        t_def = Signal()
        tlen_mask = Signal(7)
        m.d.comb += tlen_mask.eq((Const(1, 8) << tlen_log) - 1)

        def tdesc_word(idx, k):
            return ((tdra[2:24] + (idx << 1) + k) & wmask)[0:aw]

        # BABL when the transmitter starts the 1519th byte of a frame (Am7990: on the wire
        # longer than a maximum-length frame), mid-frame: a chain with no ENP never ends.
        babl_seen = Signal()
        m.d.sync += babl_seen.eq(tx.babble)
        with m.If(tx.babble & ~babl_seen):
            m.d.comb += set_babl.eq(1)

        txs = tx.i_stream
        fire = Signal()
        m.d.comb += [fire.eq(txs.valid & txs.ready & tick), tx.o_status.ready.eq(1)]
        with m.If(t_poll_cnt != T.TX_POLL_CYCLES):
            m.d.sync += t_poll_cnt.eq(t_poll_cnt + 1)
        with m.If(cmd_tdmd | start_now):
            m.d.sync += t_poll_req.eq(1)

        m.d.comb += [
            tx_rd.addr.eq(Mux(init_busy, (iadr_w + init_word)[0:aw], 0)),
        ]

        def begin_poll():
            m.d.sync += [t_poll_cnt.eq(0), t_poll_req.eq(cmd_tdmd | start_now)]
            m.next = "Fetch0"

        drain_states = {"Fetch0", "Fetch1", "Fetch2", "Byte0", "Byte1", "Offer", "Starve"}

        @contextmanager
        def tstate(name):
            with m.State(name):
                yield
                if name in drain_states:
                    # A frame the transmitter aborted (collision, underflow): end it now.
                    with m.If(tx.draining):
                        m.d.sync += [txs.valid.eq(1), txs.payload.last.eq(1)]
                        m.next = "Flush"
                if name != "Idle":
                    with m.If(cmd_stop):
                        m.next = "Idle"

        @contextmanager
        def rstate(name):
            with m.State(name):
                yield
                if name != "Idle":
                    with m.If(cmd_stop):
                        m.next = "Idle"

        with m.FSM(name="tx_engine"):
            with tstate("Idle"):
                with m.If(txon & ~init_busy & (t_poll_req | (t_poll_cnt >= T.TX_POLL_CYCLES - 1))):
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
                w1 = tx_rd.data
                own = t_w0[31]
                with m.If(~own):
                    with m.If(t_first):
                        m.next = "Idle"
                    with m.Else():
                        # A chained descriptor the host has not handed over: the Am7990's
                        # buffer error. Starve the transmitter (it underflows and drains).
                        m.d.sync += t_bufferr.eq(1)
                        m.next = "Starve"
                with m.Else():
                    m.d.sync += [
                        t_buf.eq(Cat(t_w0[0:16], t_w0[16:24])),
                        t_left.eq(_bcnt_bytes(w1[0:12])),
                        t_enp.eq(t_w0[24]),
                        t_last_idx.eq(t_idx),
                    ]
                    with m.If(t_first):
                        m.d.sync += t_fcs.eq(~mode[3] | t_w0[29])
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
                    txs.payload.pad.eq(~loop),     # no padding in loopback (frames of 8-32 bytes)
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
                st = tx.o_status
                with m.If(st.valid):
                    m.d.sync += [t_status.eq(st.payload), t_wb.eq(t_start)]
                    with m.If(st.payload.deferred):
                        m.d.sync += t_def.eq(1)
                    with m.If(st.payload.collision):
                        m.d.comb += inc[Counter.COLLISIONS].eq(1)
                    retry = (st.payload.collision & ~st.payload.late & ~mode[5]
                             & (t_attempts + 1 < T.MAX_ATTEMPTS) & ~t_bufferr)
                    with m.If(retry):
                        # Truncated binary exponential backoff: r in [0, 2^min(n, 10)).
                        n = t_attempts + 1
                        k = Signal(10)
                        m.d.comb += k.eq(t_lfsr[0:10] & ((Const(1, 11) << Mux(n > 10, 10, n)) - 1))
                        m.d.sync += [
                            t_attempts.eq(n),
                            t_lfsr.eq(Mux(t_lfsr[0], (t_lfsr >> 1) ^ T.BACKOFF_TAPS, t_lfsr >> 1)),
                            t_backoff.eq(k * (T.SLOT_TICKS * T.MII_DIVIDER)),
                        ]
                        m.next = "Backoff"
                    with m.Else():
                        with m.If(st.payload.collision & ~st.payload.late & ~t_bufferr):
                            m.d.comb += inc[Counter.RETRY_ERRORS].eq(1)
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
                old = tx_rd.data[24:32]
                rtry = t_status.collision & ~t_status.late & ~t_bufferr
                lcol = t_status.collision & t_status.late
                uflo = t_status.underflow
                errs = rtry | lcol | uflo | t_bufferr
                flags = Signal(8)
                # Keep ENP, STP, ADD_FCS (bits 0, 1, 5 of the byte); OWN cleared.
                m.d.comb += flags.eq((old & 0b0010_0011) | Mux(last, Cat(
                    Const(0, 2), t_def, t_attempts == 1, t_attempts > 1, Const(0, 1), errs,
                    Const(0, 1)), 0))
                m.d.comb += [
                    tx_wr.addr.eq(tdesc_word(t_wb, 0)),
                    tx_wr.data.eq(flags << 24),
                    tx_wr.en.eq(0b1000),
                ]
                with m.If(last):
                    m.next = "Wb2"
                with m.Else():
                    m.d.sync += t_wb.eq((t_wb + 1) & tlen_mask)
                    m.next = "Wb0"
            with tstate("Wb2"):
                rtry = t_status.collision & ~t_status.late & ~t_bufferr
                lcol = t_status.collision & t_status.late
                tmd3 = Cat(Const(0, 10), rtry, Const(0, 1), lcol, Const(0, 1),
                           t_status.underflow | t_bufferr, t_bufferr)
                m.d.comb += [
                    tx_wr.addr.eq(tdesc_word(t_last_idx, 1)),
                    tx_wr.data.eq(tmd3 << 16),
                    tx_wr.en.eq(0b1100),
                    set_tint.eq(1),
                ]
                with m.If(t_bufferr):
                    m.d.sync += txon.eq(0)
                m.d.sync += [t_idx.eq((t_last_idx + 1) & tlen_mask), t_first.eq(1),
                             t_attempts.eq(0), t_start.eq((t_last_idx + 1) & tlen_mask),
                             t_bufferr.eq(0), t_def.eq(0)]
                with m.If(t_bufferr):
                    m.next = "Idle"
                with m.Else():
                    begin_poll()

        # --- Receive engine -------------------------------------------------------------------
        rxs = rxm.o_stream
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
            rxs.ready.eq(tick & (s_n != T.RX_SILO_BYTES)),
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
        m.d.comb += rlen_mask.eq((Const(1, 8) << rlen_log) - 1)

        def rdesc_word(idx, k):
            return ((rdra[2:24] + (idx << 1) + k) & wmask)[0:aw]

        match = Signal()
        hash_bit = Signal(6)
        m.d.comb += [
            hash_bit.eq(r_crc[26:32]),
            match.eq(mode[15] | (r_dst == padr) | (r_dst == 0xFFFF_FFFF_FFFF)
                     | (r_dst[0] & ladrf.bit_select(hash_bit, 1))),
        ]

        # In loopback the one CRC generator serves the transmitter unless MODE.DTCR gives it to
        # the receiver (Am7990): with DTCR = 0 the FCS of a looped frame is not checked.
        crc_bad = Signal()
        m.d.comb += crc_bad.eq(r_status.crc_error & (~loop | mode[3]))

        with m.FSM(name="rx_engine"):
            with rstate("Idle"):
                with m.If(pb_valid):
                    m.d.comb += take.eq(1)
                    with m.If(pb.first & rxon):
                        m.d.sync += [
                            r_dst[0:8].eq(pb.data), r_nb.eq(1), r_df.eq(0),
                            r_crc.eq(crc32_step(Const(CRC_INIT, 32), pb.data)),
                            r_first_idx.eq(r_idx), r_bufferr.eq(0), r_total.eq(1),
                        ]
                        with m.If(pb.last):
                            with m.If(pb.status.runt):
                                m.d.comb += inc[Counter.RUNTS].eq(1)
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
                        r_own.eq(r_w0[31]),
                        r_buf.eq(Cat(r_w0[0:16], r_w0[16:24])),
                        r_size.eq(_bcnt_bytes(rx_rd.data[0:12])),
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
                            m.d.comb += inc[Counter.RUNTS].eq(1)
                        m.next = "Idle"
                    with m.Elif(r_nb == 5):
                        m.next = "Decide"
            with rstate("Decide"):
                with m.If(~match):
                    m.next = "Skip"
                with m.Elif(~r_own):
                    m.d.comb += [set_miss.eq(1), inc[Counter.MISSED].eq(1)]
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
                with m.If(r_w0[31] & (((r_idx + 1) & rlen_mask) != r_first_idx)):
                    m.d.sync += [
                        r_idx.eq((r_idx + 1) & rlen_mask),
                        r_buf.eq(Cat(r_w0[0:16], r_w0[16:24])),
                        r_size.eq(_bcnt_bytes(rx_rd.data[0:12])),
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
                drop = (s.runt & ~loop) | s.too_long | s.rx_error | s.overflow
                with m.If(drop & ~r_bufferr):
                    with m.If(s.runt):
                        m.d.comb += inc[Counter.RUNTS].eq(1)
                    with m.Elif(s.too_long):
                        m.d.comb += inc[Counter.TOO_LONG].eq(1)
                    with m.Else():
                        m.d.comb += inc[Counter.FCS_ERRORS].eq(1)
                    m.d.sync += r_idx.eq(r_first_idx)
                    m.next = "Idle"
                with m.Else():
                    with m.If(crc_bad & ~r_bufferr):
                        m.d.comb += inc[Counter.FCS_ERRORS].eq(1)
                    m.d.sync += r_wb.eq(r_first_idx)
                    m.next = "Wb"
            with rstate("Wb"):
                s = r_status
                last = r_wb == r_idx
                crc_bit = crc_bad
                fram = crc_bad & s.dribble
                oflo = s.overflow
                buff = r_bufferr & last
                errb = crc_bit | fram | oflo | buff
                flags = Cat(last & ~r_bufferr, r_wb == r_first_idx, buff, crc_bit & last,
                            oflo & last, fram & last, errb & last, Const(0, 1))
                m.d.comb += [
                    rx_wr.addr.eq(rdesc_word(r_wb, 0)),
                    rx_wr.data.eq(flags << 24),
                    rx_wr.en.eq(0b1000),
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
                m.d.comb += set_rint.eq(1)
                m.d.sync += r_idx.eq((r_idx + 1) & rlen_mask)
                m.next = "Idle"

        # --- STOP: everything back to reset (counters kept) -----------------------------------
        with m.If(set_tint):
            m.d.sync += tint.eq(1)
        with m.If(set_rint):
            m.d.sync += rint.eq(1)
        with m.If(set_miss):
            m.d.sync += miss.eq(1)
        with m.If(set_babl):
            m.d.sync += babl.eq(1)
        with m.If(cmd_stop):
            m.d.sync += [
                stop.eq(1), init_bit.eq(0), strt_bit.eq(0), txon.eq(0), rxon.eq(0), inea.eq(0),
                idon.eq(0), tint.eq(0), rint.eq(0), merr.eq(0), miss.eq(0), cerr.eq(0),
                babl.eq(0), init_busy.eq(0), t_idx.eq(0), r_idx.eq(0), t_poll_req.eq(0),
                txs.valid.eq(0), s_n.eq(0), s_rp.eq(0), s_wp.eq(0), rst_cnt.eq(T.MII_RESET_CYCLES),
            ]
        return m

