"""The LANCE card's register target (the host bus, the CSRs, the counters, INIT/STRT/STOP) and
what it shares with the engines.

One of the three parts of :class:`~hw.lance.gateware.LanceCard` (with
:class:`~hw.lance.tx_engine.TxEngine` and :class:`~hw.lance.rx_engine.RxEngine`). It decodes the
option window (buffer SRAM, RAP/RDP, the error counters, the station-address ROM) with the wait
states of :data:`~hw.lance.timing.BUS_READ_WAIT` / ``BUS_WRITE_WAIT``, holds the Am7990 CSRs
(docs/lance_card.md, "Registers"), reads the init block at INIT, and tells the engines what the
host commanded (:data:`Control`); the engines report back what they did (:data:`TxEvents`,
:data:`RxEvents`), applied after the bus so that an event wins over a simultaneous
write-one-to-clear (the host never loses an interrupt).
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from contextlib import contextmanager

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from . import timing as T
from .registers import (COUNTERS_OFFSET, LANCE_OFFSET, RAP_OFFSET, RDP_OFFSET, ROM_ESAR_OFFSET,
                        ROM_ESAR_STRIDE, ROM_OFFSET, Counter, csr0_layout, init_block_layout)

__all__ = ["RegisterTarget", "Control", "TxEvents", "RxEvents", "BUS_ADDR_WIDTH", "check_mac",
           "rom_word", "ram_signatures", "descriptor_word", "bcnt_bytes", "engine_states"]

#: The 2 MiB PMAD-AA window in 32-bit words.
BUS_ADDR_WIDTH = 19

_RAM_WORDS_MAX = LANCE_OFFSET // 4

#: What the register target tells both engines, from its side.
#:
#: Members: ``init`` (the init block read at INIT, :data:`~hw.lance.registers.init_block_layout`),
#: ``txon``/``rxon`` (CSR0), ``init_busy`` (the init block is being read), and pulses in the
#: cycle a CSR0 write (or the end of INIT with STRT) takes effect: ``stop`` (STOP: back to
#: reset), ``tdmd`` (transmit demand) and ``start`` (the engines start).
Control = wiring.Signature({
    "init": Out(init_block_layout),
    "txon": Out(1), "rxon": Out(1), "init_busy": Out(1),
    "stop": Out(1), "tdmd": Out(1), "start": Out(1),
})

#: What the transmit engine reports, from its side: pulses setting CSR0.TINT and BABL, turning
#: the transmitter off (a buffer error), and counting a collision or a frame given up.
TxEvents = wiring.Signature({
    "tint": Out(1), "babl": Out(1), "txoff": Out(1),
    "collision": Out(1), "retry_error": Out(1),
})

#: What the receive engine reports, from its side: pulses setting CSR0.RINT and MISS, and
#: counting a missed frame, a bad FCS (or rx_er), a runt or an over-long frame.
RxEvents = wiring.Signature({
    "rint": Out(1), "miss": Out(1),
    "missed": Out(1), "fcs_error": Out(1), "runt": Out(1), "too_long": Out(1),
})


def check_mac(mac) -> bytes:
    """``mac`` as the 6 bytes of a station address.

    Raises
    ------
    ValueError
        If ``mac`` is not 6 bytes.
    """
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise ValueError(f"mac must be 6 bytes, not {mac!r}")
    return bytes(mac)


def rom_word(mac: bytes) -> int:
    """The station-address ROM's contents as one 48-bit value (the ``rom_mac`` input of a card
    with a socketed ROM): byte ``i`` of ``mac`` in bits ``8*i`` to ``8*i + 7``."""
    return int.from_bytes(check_mac(mac), "little")


def ram_signatures(addr_width) -> tuple:
    """The signatures of a buffer SRAM read port and byte-enabled write port (32-bit words,
    ``addr_width`` address bits), as the memory sees them: a user takes them ``In(...)``.

    Raises
    ------
    ValueError
        If ``addr_width`` is not an int from 10 to 18 (4 KiB to 1 MiB of SRAM).
    """
    if not isinstance(addr_width, int) or not 10 <= addr_width <= 18:
        raise ValueError(f"addr_width must be an int from 10 to 18, not {addr_width!r}")
    return (ReadPort.Signature(addr_width=addr_width, shape=32),
            WritePort.Signature(addr_width=addr_width, shape=32, granularity=8))


def descriptor_word(ring, idx, k: int, addr_width: int):
    """The SRAM word address of word ``k`` (0: xMD0/1, 1: xMD2/3) of descriptor ``idx`` of the
    ring at byte address ``ring`` (wrapping in the SRAM)."""
    return ((ring[2:24] + (idx << 1) + k) & ((1 << addr_width) - 1))[0:addr_width]


def bcnt_bytes(bcnt):
    """BCNT (12-bit two's complement) as a 13-bit byte count; 0 means 4096."""
    neg = (Const(4096, 14) - bcnt[0:12])[0:13]
    return Mux(bcnt[0:12] == 0, 4096, neg)


def engine_states(m: Module, stop, also=None):
    """A context manager factory for an engine's FSM states: every state but "Idle" goes back
    to "Idle" on ``stop`` (after ``also(name)``, the engine's own epilogue, if given)."""
    @contextmanager
    def state(name):
        with m.State(name):
            yield
            if also is not None:
                also(name)
            if name != "Idle":
                with m.If(stop):
                    m.next = "Idle"
    return state


class RegisterTarget(wiring.Component):
    """The host side of the card: bus decoding, CSRs, counters, the init block reader.

    Parameters
    ----------
    addr_width : int
        Word address width of the buffer SRAM ports.
    mac : bytes or None
        The station address in the ROM (6 bytes); None: the ROM is socketed, its contents the
        ``rom_mac`` input.

    Members
    -------
    bus : In(HostBus(addr_width=19, data_width=32))
        The option window (docs/lance_card.md, "Host bus").
    host_rd, host_wr : In(:func:`ram_signatures`)
        The host's accesses to the buffer SRAM (byte enables on writes).
    init_rd : In(ReadPort.Signature) of the buffer SRAM
        Reads the init block (``timing.INIT_CYCLES``; one read more when it is 2 mod 4).
    irq : Out(1)
        CSR0.INTR and CSR0.INEA, registered.
    control : Out(Control)
        To the engines.
    tx : In(TxEvents)
    rx : In(RxEvents)
        From the engines.
    rom_mac : In(48)
        Only when ``mac`` is None: the ROM's six bytes, byte ``i`` in bits ``8*i`` to
        ``8*i + 7`` (:func:`rom_word`); read as the constant is, in the same cycle.

    Raises
    ------
    ValueError
        For a bad ``addr_width`` or ``mac``.
    """

    def __init__(self, *, addr_width: int, mac: bytes | None):
        rd, wr = ram_signatures(addr_width)
        self.addr_width = addr_width
        self.mac = None if mac is None else check_mac(mac)
        super().__init__({
            "bus": In(HostBus(addr_width=BUS_ADDR_WIDTH, data_width=32)),
            "host_rd": In(rd), "host_wr": In(wr), "init_rd": In(rd),
            "irq": Out(1),
            "control": Out(Control),
            "tx": In(TxEvents),
            "rx": In(RxEvents),
            **({"rom_mac": In(48)} if mac is None else {}),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        aw = self.addr_width
        ctl = self.control

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
        ib = Signal(init_block_layout)
        counters = [Signal(16, name=f"cnt_{c.name.lower()}") for c in Counter]
        m.d.comb += [ctl.init.eq(ib), ctl.txon.eq(txon), ctl.rxon.eq(rxon)]

        csr0 = Signal(csr0_layout)
        m.d.comb += [
            csr0.init.eq(init_bit), csr0.strt.eq(strt_bit), csr0.stop.eq(stop),
            csr0.txon.eq(txon), csr0.rxon.eq(rxon), csr0.inea.eq(inea),
            csr0.intr.eq(babl | miss | merr | rint | tint | idon),
            csr0.idon.eq(idon), csr0.tint.eq(tint), csr0.rint.eq(rint), csr0.merr.eq(merr),
            csr0.miss.eq(miss), csr0.cerr.eq(cerr), csr0.babl.eq(babl),
            csr0.err.eq(babl | cerr | miss | merr),
        ]
        m.d.sync += self.irq.eq(csr0.intr & inea)

        # The counters' events, from the engines.
        inc = {
            Counter.MISSED: self.rx.missed, Counter.FCS_ERRORS: self.rx.fcs_error,
            Counter.RUNTS: self.rx.runt, Counter.TOO_LONG: self.rx.too_long,
            Counter.COLLISIONS: self.tx.collision, Counter.RETRY_ERRORS: self.tx.retry_error,
        }
        clr = {c: Signal(name=f"clr_{c.name.lower()}") for c in Counter}

        # Commands from CSR0 writes (pulses in the write's effect cycle).
        cmd_init = Signal()
        cmd_strt = Signal()

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
            self.host_rd.addr.eq(a[0:aw]),
            self.host_wr.addr.eq(a[0:aw]),
            self.host_wr.data.eq(bus.w_data),
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
        w0 = data.View(csr0_layout, wdata16)       # a CSR0 write
        with m.If(do_write):
            m.d.sync += [busy.eq(0), bus.ack.eq(1)]
            with m.If(in_ram):
                m.d.comb += self.host_wr.en.eq(0b1111)
            with m.Elif(a == rap_w):
                m.d.sync += rap.eq(wdata16[0:2])
            with m.Elif(a == rdp_w):
                with m.Switch(rap):
                    with m.Case(0):
                        with m.If(w0.stop):
                            m.d.comb += ctl.stop.eq(1)
                        with m.Else():
                            m.d.comb += [
                                cmd_init.eq(w0.init & stop),
                                cmd_strt.eq(w0.strt),
                                ctl.tdmd.eq(w0.tdmd),
                            ]
                            m.d.sync += inea.eq(w0.inea)
                            # Write one to clear.
                            for bit, sig in ((w0.idon, idon), (w0.tint, tint), (w0.rint, rint),
                                             (w0.merr, merr), (w0.miss, miss), (w0.cerr, cerr),
                                             (w0.babl, babl)):
                                with m.If(bit):
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
                m.d.sync += bus.r_data.eq(self.host_rd.data)
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
                byte = self.rom_mac.word_select(i, 8) if self.mac is None else self.mac[i]
                with m.Elif(a == rom_w + i):
                    m.d.sync += bus.r_data.eq(byte << (8 * rom_lane))

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
        m.d.comb += [iadr_w.eq(Cat(csr1[2:16], csr2[0:8])), ctl.init_busy.eq(init_busy),
                     self.init_rd.addr.eq(Mux(init_busy, (iadr_w + icnt)[0:aw], 0))]

        # The init block need only be 16-bit aligned (CSR1 bit 0 = 0, Am7990 data sheet): at
        # an address that is 2 mod 4 its twelve words straddle seven RAM words, each 32-bit
        # piece made of one word's upper half and the next word's lower half (one more read:
        # timing.INIT_UNALIGNED_CYCLES). The read of piece k - 1 is back in cycle k (k - 1 + 1
        # when unaligned); the last piece ends INIT.
        i_odd = csr1[1]
        i_prev = Signal(16)
        rd = self.init_rd.data
        with m.If(init_busy):
            m.d.sync += [icnt.eq(icnt + 1), i_prev.eq(rd[16:32])]
            word = Mux(i_odd, Cat(i_prev, rd[0:16]), rd)
            with m.Switch(icnt - i_odd):
                for k in range(1, 7):
                    with m.Case(k):
                        m.d.sync += ib.as_value().word_select(k - 1, 32).eq(word)
            with m.If(icnt - i_odd == 6):
                m.d.sync += [init_busy.eq(0), idon.eq(1)]
                with m.If(init_strt):
                    m.d.comb += ctl.start.eq(1)
        with m.If(cmd_init):
            m.d.sync += [init_busy.eq(1), icnt.eq(0), init_strt.eq(cmd_strt), stop.eq(0),
                         init_bit.eq(1)]
        with m.If(cmd_strt & ~cmd_init):
            m.d.comb += ctl.start.eq(1)
        with m.If(ctl.start):
            m.d.sync += [stop.eq(0), strt_bit.eq(1), txon.eq(~ib.mode.dtx), rxon.eq(~ib.mode.drx)]

        # --- The engines' events (after the bus: they win over a write-one-to-clear) ----------
        with m.If(self.tx.txoff):
            m.d.sync += txon.eq(0)
        with m.If(self.tx.tint):
            m.d.sync += tint.eq(1)
        with m.If(self.rx.rint):
            m.d.sync += rint.eq(1)
        with m.If(self.rx.miss):
            m.d.sync += miss.eq(1)
        with m.If(self.tx.babl):
            m.d.sync += babl.eq(1)

        # --- STOP: everything back to reset (counters kept) -----------------------------------
        with m.If(ctl.stop):
            m.d.sync += [
                stop.eq(1), init_bit.eq(0), strt_bit.eq(0), txon.eq(0), rxon.eq(0), inea.eq(0),
                idon.eq(0), tint.eq(0), rint.eq(0), merr.eq(0), miss.eq(0), cerr.eq(0),
                babl.eq(0), init_busy.eq(0),
            ]
        return m
