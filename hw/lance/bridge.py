"""Whole frames in and out of an MII, for co-simulation of the LANCE card's RTL.

The card's wire side is an MII (one nibble per 400 ns). A co-simulation must not wake Python
once per nibble (ARCHITECTURE.md: a frame crosses into or out of the RTL as one transaction),
so this bridge sits on the card's MII pins, inside the HDL simulator:

* **Transmit capture.** It samples ``txd``/``tx_en``/``tx_er`` on each rising edge of
  ``mii_clk`` (as a PHY and cocotbext-eth's ``MiiSink`` do), skips the preamble up to the SFD,
  assembles bytes low nibble first and writes them into :attr:`MiiFrameBridge.tx_mem` (32-bit
  words, byte *i* of the frame in bits ``8*(i%4)`` of word ``i//4``). ``tx_len`` counts the
  bytes of the frame in progress; when ``tx_en`` falls it holds the whole frame's length and
  the memory holds the frame (FCS included). ``tx_bad`` says the frame ended with ``tx_er`` or
  an odd number of nibbles (a jam or an underflow). Python watches ``tx_en`` only.
* **Receive injection.** Python writes a frame (FCS included) into :attr:`rx_mem`, sets
  ``rx_len`` and *toggles* ``rx_go``. At the next rising edge of ``mii_clk`` the bridge starts
  driving ``rx_dv`` with 15 preamble nibbles and the SFD, then the bytes low nibble first, and
  drops ``rx_dv`` after the last. Toggling ``rx_abort`` during a frame ends it at the next
  rising edge with one nibble of ``rx_er`` (the far end's frame was garbled by a collision).
  ``rx_busy`` is high from the toggle being seen to the end of the frame.

Signals are driven and sampled on the rising edge of ``mii_clk``, which the card launches its
transmit data away from and samples its receive data away from (docs/lance_card.md); the bridge
sees ``mii_clk`` one cycle late through its edge detector, which is harmless as long as
``mii_clk`` stays high and low for at least two cycles of ``sync``.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["MiiFrameBridge", "FRAME_WORDS", "PREAMBLE_NIBBLES"]

#: Words of frame memory each way: 2 KiB holds the longest frame (1518 bytes with FCS) and
#: the longest babble the card's transmitter lets out before it stops.
FRAME_WORDS = 512
#: 15 preamble nibbles and the SFD nibble (IEEE 802.3).
PREAMBLE_NIBBLES = 16
_LEN_BITS = 12


class MiiFrameBridge(wiring.Component):
    """Frames in and out of a 10 Mbit/s MII as single transactions (see module docstring).

    Members
    -------
    mii_clk : In(1)
        The MII clock (the card generates it).
    txd, tx_en, tx_er : In
        The card's MII transmit pins.
    rxd, rx_dv, rx_er : Out
        The card's MII receive pins.
    tx_len : Out(12)
        Bytes captured of the current (or last) transmitted frame.
    tx_bad : Out(1)
        The current (or last) frame had ``tx_er`` or an odd number of nibbles.
    rx_len : In(12)
        Length of the frame in :attr:`rx_mem` to inject, sampled when ``rx_go`` toggles.
    rx_go, rx_abort : In(1)
        Toggle to start injecting / to garble and end the frame being injected.
    rx_busy : Out(1)
        A frame is being injected.
    """

    mii_clk: In(1)
    txd: In(4)
    tx_en: In(1)
    tx_er: In(1)
    rxd: Out(4)
    rx_dv: Out(1)
    rx_er: Out(1)
    tx_len: Out(_LEN_BITS)
    tx_bad: Out(1)
    rx_len: In(_LEN_BITS)
    rx_go: In(1)
    rx_abort: In(1)
    rx_busy: Out(1)

    def __init__(self):
        super().__init__()
        #: Captured transmit frame (read by the binding).
        self.tx_mem = Memory(shape=32, depth=FRAME_WORDS, init=[])
        #: Frame to inject (written by the binding).
        self.rx_mem = Memory(shape=32, depth=FRAME_WORDS, init=[])

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.tx_mem = self.tx_mem
        m.submodules.rx_mem = self.rx_mem

        clk_prev = Signal()
        m.d.sync += clk_prev.eq(self.mii_clk)
        rise = Signal()
        m.d.comb += rise.eq(self.mii_clk & ~clk_prev)

        # -- transmit capture --------------------------------------------------------------
        wp = self.tx_mem.write_port(granularity=8)
        low = Signal(4)
        half = Signal()
        byte = Signal(8)
        m.d.comb += [
            byte.eq(self.txd << 4 | low),
            wp.addr.eq(self.tx_len >> 2),
            wp.data.eq(byte.replicate(4)),
        ]
        with m.FSM(name="tx"):
            with m.State("Idle"):
                with m.If(rise & self.tx_en):
                    m.d.sync += [self.tx_len.eq(0), self.tx_bad.eq(self.tx_er), half.eq(0)]
                    with m.If(self.txd == 0xD):
                        m.next = "Data"
                    with m.Else():
                        m.next = "Preamble"
            with m.State("Preamble"):
                with m.If(rise):
                    with m.If(~self.tx_en):
                        m.d.sync += self.tx_bad.eq(1)
                        m.next = "Idle"
                    with m.Else():
                        m.d.sync += self.tx_bad.eq(self.tx_bad | self.tx_er)
                        with m.If(self.txd == 0xD):
                            m.next = "Data"
            with m.State("Data"):
                with m.If(rise):
                    with m.If(~self.tx_en):
                        m.d.sync += self.tx_bad.eq(self.tx_bad | half)
                        m.next = "Idle"
                    with m.Else():
                        m.d.sync += [self.tx_bad.eq(self.tx_bad | self.tx_er), half.eq(~half)]
                        with m.If(half):
                            with m.If(self.tx_len < FRAME_WORDS * 4):
                                m.d.comb += wp.en.eq(1 << self.tx_len[:2])
                                m.d.sync += self.tx_len.eq(self.tx_len + 1)
                        with m.Else():
                            m.d.sync += low.eq(self.txd)

        # -- receive injection -------------------------------------------------------------
        rp = self.rx_mem.read_port(domain="sync")
        go_prev = Signal()
        abort_prev = Signal()
        m.d.sync += [go_prev.eq(self.rx_go), abort_prev.eq(self.rx_abort)]
        go = Signal()
        abort = Signal()
        m.d.comb += [go.eq(self.rx_go != go_prev), abort.eq(self.rx_abort != abort_prev)]
        length = Signal(_LEN_BITS)
        idx = Signal(_LEN_BITS)
        pre = Signal(range(PREAMBLE_NIBBLES + 1))
        high = Signal()
        aborting = Signal()
        cur = Signal(8)
        m.d.comb += [rp.addr.eq(idx >> 2), cur.eq(rp.data.word_select(idx[:2], 8))]
        with m.FSM(name="rx"):
            with m.State("Idle"):
                with m.If(go):
                    m.d.sync += [length.eq(self.rx_len), idx.eq(0), pre.eq(0), high.eq(0),
                                 aborting.eq(0), self.rx_busy.eq(1)]
                    m.next = "Wait"
            with m.State("Wait"):
                with m.If(abort):
                    m.d.sync += self.rx_busy.eq(0)
                    m.next = "Idle"
                with m.Elif(rise):
                    m.d.sync += [self.rx_dv.eq(1), self.rxd.eq(0x5), pre.eq(1)]
                    m.next = "Preamble"
            with m.State("Preamble"):
                with m.If(abort):
                    m.d.sync += aborting.eq(1)
                with m.If(rise):
                    with m.If(aborting | abort):
                        m.d.sync += [self.rx_er.eq(1), self.rxd.eq(0)]
                        m.next = "End"
                    with m.Elif(pre == PREAMBLE_NIBBLES - 1):
                        m.d.sync += self.rxd.eq(0xD)
                        m.next = "Data"
                    with m.Else():
                        m.d.sync += [self.rxd.eq(0x5), pre.eq(pre + 1)]
            with m.State("Data"):
                with m.If(abort):
                    m.d.sync += aborting.eq(1)
                with m.If(rise):
                    with m.If(aborting | abort):
                        m.d.sync += [self.rx_er.eq(1), self.rxd.eq(0)]
                        m.next = "End"
                    with m.Elif(idx >= length):
                        m.d.sync += [self.rx_dv.eq(0), self.rxd.eq(0), self.rx_busy.eq(0)]
                        m.next = "Idle"
                    with m.Elif(~high):
                        m.d.sync += [self.rxd.eq(cur[:4]), high.eq(1)]
                    with m.Else():
                        m.d.sync += [self.rxd.eq(cur[4:]), high.eq(0), idx.eq(idx + 1)]
            with m.State("End"):
                with m.If(rise):
                    m.d.sync += [self.rx_er.eq(0), self.rx_dv.eq(0), self.rx_busy.eq(0)]
                    m.next = "Idle"
        return m
