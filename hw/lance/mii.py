"""The LANCE card's wire side: 10 Mbit/s MII transmit and receive engines.

Clocking
--------
Both engines run in the domain they are elaborated in (``sync``; a parent renames it with
``DomainRenamer``), and that domain is meant to *be* the MII clock: TX_CLK for the transmitter and
RX_CLK for the receiver, 2.5 MHz at 10 Mbit/s, one nibble per clock. We chose this over a faster
system clock with MII clock enables because

* it is the physics: the PHY owns both clocks (and RX_CLK follows the far station's crystal), so
  the real card has to cross clock domains anyway. The Am7990 does it with its 48-byte FIFO
  between the memory side and the serial side (CALIBRATION.md); the card's gateware will put an
  ``AsyncFIFO`` exactly there, between the descriptor engines and these components;
* it is the cheapest to simulate: a 1514-byte frame is 3,000-odd MII clocks, whereas a 25 MHz
  system clock with enables would cost ten times as many simulated edges for the same wire time;
* cocotbext-eth's ``MiiSource``/``MiiSink`` drive and sample on the edges of the MII clock itself.

Streams (STYLE.md #2)
---------------------
``MiiTransmitter.i_stream`` carries one byte per beat with ``first``/``last`` and, on the
``first`` beat, the per-frame options ``add_fcs`` (the TMD1 ADD_FCS / inverted MODE.DTCR choice)
and ``pad``. The transmitter needs a byte every second clock once the preamble is out: the MII
sends 4 bits per 400 ns, so falling behind is the LANCE's underflow (TMD3.UFLO).
``MiiReceiver.o_stream`` carries the received bytes *including the FCS* (the Am7990 writes the FCS
into the buffer and counts it in MCNT); the beat with ``last`` also carries the frame's status.
The wire cannot wait, so a receiver consumer must accept a byte within two clocks; a byte it
misses is dropped and reported as ``overflow`` (RMD1.OFLO).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .crc import CRC_INIT, CRC_RESIDUE, crc32_step
from .registers import FCS_BYTES, MAX_FRAME, MIN_FRAME

__all__ = [
    "PREAMBLE_NIBBLES", "IFG_NIBBLES", "JAM_NIBBLES", "MIN_PAYLOAD",
    "tx_byte_layout", "tx_status_layout", "rx_status_layout", "rx_byte_layout",
    "MiiTransmitter", "MiiReceiver", "FcsStripper", "MiiLoopback",
]

#: Preamble (7 x 0x55) plus SFD (0xD5) is 16 nibbles (IEEE 802.3; CALIBRATION.md).
PREAMBLE_NIBBLES = 16
#: The inter-frame gap is 96 bit times = 24 MII clocks (IEEE 802.3; CALIBRATION.md).
IFG_NIBBLES = 24
#: After a collision a station sends a 32-bit jam so every station sees the collision (802.3).
JAM_NIBBLES = 8
#: Frames are padded to 60 bytes so that with the FCS they reach the 64-byte minimum.
MIN_PAYLOAD = MIN_FRAME - FCS_BYTES
#: The jam pattern: alternating ones and zeros like the preamble. Any value that does not
#: complete a valid FCS would do.
_JAM_NIBBLE = 0x5
_SFD_NIBBLE = 0xD
_PREAMBLE_NIBBLE = 0x5

#: One byte of a frame to transmit. ``add_fcs`` and ``pad`` are read on the ``first`` beat.
tx_byte_layout = data.StructLayout({"data": 8, "first": 1, "last": 1, "add_fcs": 1, "pad": 1})

#: What happened to a transmitted frame (one status per frame, after its last beat is consumed).
tx_status_layout = data.StructLayout({
    "underflow": 1,   # i_stream had no byte when the wire needed one (TMD3.UFLO)
    "collision": 1,   # col rose during the frame: it was jammed and cut short
    "late": 1,        # ... after the first 64 bytes of the frame (TMD3.LCOL)
    "babble": 1,      # more than 1518 bytes went out, FCS included (CSR0.BABL)
    "deferred": 1,    # carrier was sensed when the frame was ready, so it waited (TMD1.DEF)
})

#: How a received frame ended. Valid on the beat with ``last``.
rx_status_layout = data.StructLayout({
    "crc_error": 1,   # the FCS does not match (RMD1.CRC)
    "dribble": 1,     # an odd number of nibbles: the extra nibble was dropped; with crc_error
                      # this is the LANCE's framing error (RMD1.FRAM)
    "runt": 1,        # shorter than 64 bytes including FCS
    "too_long": 1,    # longer than 1518 bytes including FCS
    "rx_error": 1,    # the PHY raised rx_er during the frame
    "overflow": 1,    # o_stream did not take a byte in time: bytes were lost (RMD1.OFLO)
})

#: One received byte; ``status`` is meaningful only with ``last``.
rx_byte_layout = data.StructLayout({
    "data": 8, "first": 1, "last": 1, "status": rx_status_layout,
})


class MiiTransmitter(wiring.Component):
    """Serialises frames onto a 10 Mbit/s MII transmit interface.

    Per frame: waits until the carrier is quiet and the 24-clock inter-frame gap has passed,
    sends 15 preamble nibbles and the SFD nibble, then each byte low nibble first, zero padding
    up to 60 bytes if the frame asked for ``pad``, and the CRC-32 FCS if it asked for
    ``add_fcs``. On a collision it sends a 32-bit jam, stops, drops the rest of the frame from
    ``i_stream`` and reports it (retry and backoff are the descriptor engine's business: it has
    to fetch the frame again from buffer memory, as the LANCE does). If ``i_stream`` runs dry
    mid-frame it raises ``tx_er`` for one nibble, stops, drains the frame and reports underflow.

    The domain this is elaborated in is the MII TX_CLK domain (2.5 MHz).

    TODO: loss of carrier (TMD3.LCAR: half-duplex ``crs`` not seen during our own frame) and
    the CERR heartbeat check are not reported yet; deferral and collisions are.

    Members
    -------
    i_stream : In(stream.Signature(tx_byte_layout))
        The frame's bytes; ``first`` starts a frame and ``last`` ends it. Beats before a
        ``first`` are discarded.
    o_status : Out(stream.Signature(tx_status_layout))
        One status per frame. The next frame does not start until it has been taken.
    txd : Out(4)
    tx_en : Out(1)
    tx_er : Out(1)
        The MII transmit signals, registered.
    crs : In(1)
        Carrier sense (half duplex): while high in idle, transmission defers.
    col : In(1)
        Collision: while transmitting, high means another station is on the wire.
    draining : Out(1)
        The frame was aborted (collision or underflow) and the transmitter is throwing away
        its remaining beats, one per clock: a producer may end the frame early by offering a
        beat with ``last`` (the LANCE's engine does, rather than feed a dead frame).
    babble : Out(1)
        Rises with the first nibble of the frame's 1519th byte (data, padding and FCS
        counted) and stays high until the next frame starts: the transmitter has been on the
        wire longer than a maximum-length frame (Am7990 CSR0.BABL), whether or not the frame
        ever ends.
    """

    i_stream: In(stream.Signature(tx_byte_layout))
    o_status: Out(stream.Signature(tx_status_layout))
    txd: Out(4)
    tx_en: Out(1)
    tx_er: Out(1)
    crs: In(1)
    col: In(1)
    draining: Out(1)
    babble: Out(1)

    def elaborate(self, platform) -> Module:
        m = Module()

        crc = Signal(32, init=CRC_INIT)
        count = Signal(range(max(PREAMBLE_NIBBLES, IFG_NIBBLES, JAM_NIBBLES) + 1))
        ifg = Signal(range(IFG_NIBBLES))
        nbytes = Signal(16)           # frame bytes sent so far (padding included)
        cur = Signal(8)               # the byte whose high nibble goes out next
        cur_last = Signal()           # ... and it is the frame's last
        in_done = Signal()            # the frame's last beat has been consumed
        add_fcs = Signal()
        pad = Signal()
        status = Signal(tx_status_layout)

        i = self.i_stream
        o = self.o_status
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)

        def on_collision() -> None:
            # A collision in any transmitting state: jam and report. Comes last in each state
            # so that it overrides that state's own next-state choice.
            with m.If(self.col):
                m.d.sync += [
                    status.collision.eq(1),
                    status.late.eq(nbytes >= MIN_FRAME),
                    # The jam replaces the very next nibble: 32 bits of it, then silence.
                    self.txd.eq(_JAM_NIBBLE),
                    self.tx_er.eq(0),
                    count.eq(1),
                ]
                m.next = "Jam"

        def finish_data() -> None:
            # After the frame's last data nibble: pad, FCS or the end.
            with m.If(pad & (nbytes < MIN_PAYLOAD)):
                m.next = "Pad"
            with m.Elif(add_fcs):
                m.d.sync += count.eq(0)
                m.next = "Fcs"
            with m.Else():
                m.next = "End"

        with m.FSM(name="tx_fsm") as fsm:
            m.d.comb += self.draining.eq(fsm.ongoing("Drain"))
            with m.State("Idle"):
                with m.If(ifg != 0):
                    m.d.sync += ifg.eq(ifg - 1)
                with m.If(self.crs):
                    # 802.3 deferral: the gap restarts when the carrier goes away.
                    m.d.sync += ifg.eq(IFG_NIBBLES - 1)
                with m.If(i.valid & ~i.payload.first):
                    m.d.comb += i.ready.eq(1)  # a stray beat outside any frame
                with m.If(i.valid & i.payload.first & self.crs):
                    m.d.sync += status.deferred.eq(1)
                with m.If(i.valid & i.payload.first & ~self.crs & (ifg == 0) & ~o.valid):
                    m.d.sync += [
                        self.tx_en.eq(1),
                        self.txd.eq(_PREAMBLE_NIBBLE),
                        count.eq(1),
                        crc.eq(CRC_INIT),
                        nbytes.eq(0),
                        in_done.eq(0),
                        add_fcs.eq(i.payload.add_fcs),
                        pad.eq(i.payload.pad),
                        self.babble.eq(0),
                    ]
                    m.next = "Preamble"

            with m.State("Preamble"):
                m.d.sync += count.eq(count + 1)
                with m.If(count == PREAMBLE_NIBBLES - 1):
                    m.d.sync += self.txd.eq(_SFD_NIBBLE)
                    m.next = "DataLow"
                with m.Else():
                    m.d.sync += self.txd.eq(_PREAMBLE_NIBBLE)
                on_collision()

            with m.State("DataLow"):
                with m.If(i.valid):
                    m.d.comb += i.ready.eq(1)
                    m.d.sync += [
                        cur.eq(i.payload.data),
                        cur_last.eq(i.payload.last),
                        in_done.eq(i.payload.last),
                        self.txd.eq(i.payload.data[0:4]),
                        crc.eq(crc32_step(crc, i.payload.data[0:4])),
                        nbytes.eq(nbytes + 1),
                    ]
                    with m.If(nbytes >= MAX_FRAME):
                        m.d.sync += self.babble.eq(1)
                    m.next = "DataHigh"
                with m.Else():
                    # The wire cannot wait: poison the frame so the far end drops it.
                    m.d.sync += [self.txd.eq(0), self.tx_er.eq(1), status.underflow.eq(1)]
                    m.next = "Stop"
                on_collision()

            with m.State("DataHigh"):
                m.d.sync += [
                    self.txd.eq(cur[4:8]),
                    crc.eq(crc32_step(crc, cur[4:8])),
                ]
                with m.If(cur_last):
                    finish_data()
                with m.Else():
                    m.next = "DataLow"
                on_collision()

            with m.State("Pad"):
                # Two zero nibbles per pad byte; count is the nibble phase.
                m.d.sync += [
                    self.txd.eq(0),
                    crc.eq(crc32_step(crc, Const(0, 4))),
                    count.eq(~count[0]),
                ]
                with m.If(count[0]):
                    m.d.sync += nbytes.eq(nbytes + 1)
                    with m.If(nbytes + 1 >= MIN_PAYLOAD):
                        with m.If(add_fcs):
                            m.d.sync += count.eq(0)
                            m.next = "Fcs"
                        with m.Else():
                            m.next = "End"
                on_collision()

            with m.State("Fcs"):
                # The FCS is the complemented register, least significant nibble first.
                m.d.sync += [
                    self.txd.eq(~crc[0:4]),
                    crc.eq(crc >> 4),
                    count.eq(count + 1),
                ]
                with m.If(~count[0] & (nbytes + count[1:] >= MAX_FRAME)):
                    m.d.sync += self.babble.eq(1)
                with m.If(count == 2 * FCS_BYTES - 1):
                    m.next = "End"
                on_collision()

            with m.State("Jam"):
                m.d.sync += [self.txd.eq(_JAM_NIBBLE), count.eq(count + 1)]
                with m.If(count == JAM_NIBBLES):
                    m.d.sync += [self.tx_en.eq(0), self.txd.eq(0)]
                    m.next = "Drain"

            with m.State("Stop"):
                m.d.sync += [self.tx_en.eq(0), self.tx_er.eq(0), self.txd.eq(0)]
                m.next = "Drain"

            with m.State("Drain"):
                # Throw away what is left of the aborted frame so the next one lines up.
                with m.If(in_done):
                    m.next = "End"
                with m.Else():
                    m.d.comb += i.ready.eq(1)
                    with m.If(i.valid & i.payload.last):
                        m.d.sync += in_done.eq(1)

            with m.State("End"):
                total = nbytes + Mux(add_fcs, FCS_BYTES, 0)
                m.d.sync += [
                    self.tx_en.eq(0),
                    self.tx_er.eq(0),
                    self.txd.eq(0),
                    ifg.eq(IFG_NIBBLES - 1),
                    o.valid.eq(1),
                    o.payload.eq(status),
                    o.payload.babble.eq(~status.collision & ~status.underflow & (total > MAX_FRAME)),
                    status.eq(0),
                ]
                m.next = "Idle"
        return m


class MiiReceiver(wiring.Component):
    """Deserialises frames from a 10 Mbit/s MII receive interface and checks their FCS.

    Hunts for the SFD nibble (0xD after at least one 0x5) while ``rx_dv`` is high, then
    assembles bytes (low nibble first) until ``rx_dv`` falls, running every byte, FCS included,
    through the CRC: a good frame leaves :data:`~hw.lance.crc.CRC_RESIDUE` in the register.
    Bytes leave one behind the wire, so that the frame's last byte can carry ``last`` and the
    status.

    The domain this is elaborated in is the MII RX_CLK domain (2.5 MHz).

    Members
    -------
    rxd : In(4)
    rx_dv : In(1)
    rx_er : In(1)
        The MII receive signals.
    o_stream : Out(stream.Signature(rx_byte_layout))
        The frame's bytes including the FCS; ``status`` is valid with ``last``. Frames with no
        byte after the SFD produce nothing.
    """

    rxd: In(4)
    rx_dv: In(1)
    rx_er: In(1)
    o_stream: Out(stream.Signature(rx_byte_layout))

    def elaborate(self, platform) -> Module:
        m = Module()

        crc = Signal(32, init=CRC_INIT)
        crc_byte = Signal(32, init=CRC_INIT)  # the CRC at the last whole byte (dribble-proof)
        low = Signal(4)
        odd = Signal()                        # a low nibble is waiting for its high nibble
        seen_pre = Signal()
        nbytes = Signal(16)
        held = Signal(8)
        held_valid = Signal()
        held_first = Signal()
        rx_error = Signal()
        overflow = Signal()

        o = self.o_stream
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        can_load = ~o.valid | o.ready

        with m.FSM(name="rx_fsm"):
            with m.State("Idle"):
                with m.If(~self.rx_dv):
                    m.d.sync += seen_pre.eq(0)
                with m.Elif(self.rx_er):
                    m.next = "Skip"
                with m.Elif(self.rxd == _PREAMBLE_NIBBLE):
                    m.d.sync += seen_pre.eq(1)
                with m.Elif((self.rxd == _SFD_NIBBLE) & seen_pre):
                    m.d.sync += [
                        crc.eq(CRC_INIT), crc_byte.eq(CRC_INIT), odd.eq(0), nbytes.eq(0),
                        held_valid.eq(0), rx_error.eq(0), overflow.eq(0), seen_pre.eq(0),
                    ]
                    m.next = "Data"
                with m.Else():
                    # False carrier or a frame joined half way: ignore until the wire is quiet.
                    m.next = "Skip"

            with m.State("Skip"):
                with m.If(~self.rx_dv):
                    m.d.sync += seen_pre.eq(0)
                    m.next = "Idle"

            with m.State("Data"):
                with m.If(~self.rx_dv):
                    m.next = "Flush"
                with m.Else():
                    next_crc = crc32_step(crc, self.rxd)
                    m.d.sync += [crc.eq(next_crc), odd.eq(~odd)]
                    with m.If(self.rx_er):
                        m.d.sync += rx_error.eq(1)
                    with m.If(~odd):
                        m.d.sync += low.eq(self.rxd)
                    with m.Else():
                        m.d.sync += [
                            crc_byte.eq(next_crc),
                            held.eq(Cat(low, self.rxd)),
                            held_valid.eq(1),
                            held_first.eq(nbytes == 0),
                            nbytes.eq(Mux(nbytes == 0xFFFF, nbytes, nbytes + 1)),
                        ]
                        with m.If(held_valid):
                            with m.If(can_load):
                                m.d.sync += [
                                    o.valid.eq(1),
                                    o.payload.data.eq(held),
                                    o.payload.first.eq(held_first),
                                    o.payload.last.eq(0),
                                    o.payload.status.eq(0),
                                ]
                            with m.Else():
                                m.d.sync += overflow.eq(1)

            with m.State("Flush"):
                # rx_dv has fallen: the held byte is the last one. Wait (a clock or two at
                # most, well inside the next preamble) until the output register is free.
                with m.If(~held_valid):
                    m.next = "Idle"
                with m.Elif(can_load):
                    m.d.sync += [
                        o.valid.eq(1),
                        o.payload.data.eq(held),
                        o.payload.first.eq(held_first),
                        o.payload.last.eq(1),
                        o.payload.status.crc_error.eq(crc_byte != CRC_RESIDUE),
                        o.payload.status.dribble.eq(odd),
                        o.payload.status.runt.eq(nbytes < MIN_FRAME),
                        o.payload.status.too_long.eq(nbytes > MAX_FRAME),
                        o.payload.status.rx_error.eq(rx_error),
                        o.payload.status.overflow.eq(overflow),
                        held_valid.eq(0),
                    ]
                    m.next = "Idle"
        return m


class FcsStripper(wiring.Component):
    """Drops the last four bytes (the FCS) of each frame in a byte stream.

    Holds four bytes back; when the frame's ``last`` beat arrives, the oldest held byte is the
    last payload byte, so it leaves with ``last`` and the four held bytes are discarded.
    Frames of four bytes or fewer vanish. Used by :class:`MiiLoopback` to re-send received
    frames with a freshly computed FCS.

    Members
    -------
    i_stream : In(stream.Signature(rx_byte_layout))
    o_stream : Out(stream.Signature(tx_byte_layout))
        ``add_fcs`` is 1 and ``pad`` is the value of the ``pad`` input.
    pad : In(1)
    """

    i_stream: In(stream.Signature(rx_byte_layout))
    o_stream: Out(stream.Signature(tx_byte_layout))
    pad: In(1)

    def elaborate(self, platform) -> Module:
        m = Module()
        buf = [Signal(8, name=f"buf{n}") for n in range(FCS_BYTES)]  # buf[0] is the oldest
        count = Signal(range(FCS_BYTES + 1))
        first_pending = Signal()
        i, o = self.i_stream, self.o_stream

        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        m.d.comb += i.ready.eq(~o.valid | o.ready)

        with m.If(i.valid & i.ready):
            shift = [buf[n].eq(buf[n + 1]) for n in range(FCS_BYTES - 1)]
            shift.append(buf[FCS_BYTES - 1].eq(i.payload.data))
            with m.If(i.payload.first):
                m.d.sync += [buf[0].eq(i.payload.data), count.eq(1), first_pending.eq(1)]
            with m.Elif(count < FCS_BYTES):
                with m.Switch(count):
                    for n in range(FCS_BYTES):
                        with m.Case(n):
                            m.d.sync += buf[n].eq(i.payload.data)
                m.d.sync += count.eq(count + 1)
            with m.Else():
                m.d.sync += shift
                m.d.sync += [
                    o.valid.eq(1),
                    o.payload.data.eq(buf[0]),
                    o.payload.first.eq(first_pending),
                    o.payload.last.eq(i.payload.last),
                    o.payload.add_fcs.eq(1),
                    o.payload.pad.eq(self.pad),
                    first_pending.eq(0),
                ]
            with m.If(i.payload.last):
                m.d.sync += [count.eq(0), first_pending.eq(0)]
        return m


class MiiLoopback(wiring.Component):
    """A test top: receives frames on one MII, re-sends them on another with a fresh FCS.

    ``MiiReceiver`` -> :class:`FcsStripper` -> a small FIFO -> ``MiiTransmitter``, cut-through,
    all in one clock domain (the testbench's MII clock: a real repeater would have two). The
    receiver's statuses are counted so a testbench can check what it flagged without watching
    every clock. Runts are re-sent too (unless ``pad``), so a bench sees exactly what arrived.

    Members
    -------
    rxd, rx_dv, rx_er : In
        MII receive side.
    txd, tx_en, tx_er : Out
        MII transmit side.
    pad : In(1)
        Ask the transmitter to pad re-sent frames to 60 bytes.
    rx_frames, rx_crc_errors, rx_runts, rx_too_long, rx_dribbles, rx_errors, rx_overflows, tx_frames : Out(16)
        Counters.
    """

    rxd: In(4)
    rx_dv: In(1)
    rx_er: In(1)
    txd: Out(4)
    tx_en: Out(1)
    tx_er: Out(1)
    pad: In(1)
    rx_frames: Out(16)
    rx_crc_errors: Out(16)
    rx_runts: Out(16)
    rx_too_long: Out(16)
    rx_dribbles: Out(16)
    rx_errors: Out(16)
    rx_overflows: Out(16)
    tx_frames: Out(16)

    #: The transmitter starts its 16-nibble preamble only when the first byte is ready while
    #: the receiver keeps delivering a byte per two clocks (about 10 bytes of backlog), and a
    #: padded runt adds up to 46 bytes more that the next frame must wait behind. 128 bytes
    #: covers two padded runts in a row; a longer run of them would overflow, as it would in
    #: any cut-through repeater that lengthens frames.
    FIFO_DEPTH = 128

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rx = rx = MiiReceiver()
        m.submodules.strip = strip = FcsStripper()
        m.submodules.fifo = q = fifo.SyncFIFO(width=tx_byte_layout.size, depth=self.FIFO_DEPTH)
        m.submodules.tx = tx = MiiTransmitter()

        m.d.comb += [
            rx.rxd.eq(self.rxd), rx.rx_dv.eq(self.rx_dv), rx.rx_er.eq(self.rx_er),
            self.txd.eq(tx.txd), self.tx_en.eq(tx.tx_en), self.tx_er.eq(tx.tx_er),
            strip.pad.eq(self.pad),
            tx.o_status.ready.eq(1),
        ]
        wiring.connect(m, rx.o_stream, strip.i_stream)
        # The FIFO's streams carry plain bit vectors: connect them member by member.
        m.d.comb += [
            q.w_stream.valid.eq(strip.o_stream.valid),
            q.w_stream.payload.eq(strip.o_stream.payload.as_value()),
            strip.o_stream.ready.eq(q.w_stream.ready),
            tx.i_stream.valid.eq(q.r_stream.valid),
            tx.i_stream.payload.eq(q.r_stream.payload),
            q.r_stream.ready.eq(tx.i_stream.ready),
        ]

        o = rx.o_stream
        with m.If(o.valid & o.ready & o.payload.last):
            st = o.payload.status
            m.d.sync += self.rx_frames.eq(self.rx_frames + 1)
            for flag, counter in ((st.crc_error, self.rx_crc_errors), (st.runt, self.rx_runts),
                                  (st.too_long, self.rx_too_long), (st.dribble, self.rx_dribbles),
                                  (st.rx_error, self.rx_errors),
                                  (st.overflow, self.rx_overflows)):
                with m.If(flag):
                    m.d.sync += counter.eq(counter + 1)
        with m.If(tx.o_status.valid):
            m.d.sync += self.tx_frames.eq(self.tx_frames + 1)
        return m
