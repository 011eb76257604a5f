"""The LANCE-style Ethernet card's RTL: buffer SRAM, Am7990 registers, descriptor engines, MII.

Design contract: docs/lance_card.md; register map: :mod:`hw.lance.registers`; every fixed
latency: :mod:`hw.lance.timing` (the model computes its times from those constants, and
tests/hw/test_lance_gateware.py measures them here).

Structure
---------
* **Buffer SRAM**, 32-bit words, ``ram_bytes`` deep, with a port per user so that no user ever
  waits for another (the timing stays fixed, as the contract promises): the host (read and
  write), the init block reader (read), the transmit engine (read and write-back) and the
  receive engine (read and write). Byte writes use the write ports' byte enables.
* **Register target** (:class:`~hw.lance.regs_target.RegisterTarget`): the host bus
  (:class:`hw.bus.HostBus`, word addresses of the 2 MiB PMAD-AA window) with the wait states of
  :data:`~hw.lance.timing.BUS_READ_WAIT` / ``BUS_WRITE_WAIT``; the CSRs with Am7990 semantics
  (docs/lance_card.md, "Registers"), the error counters, the station-address ROM (a constant,
  or socketed: loaded through the ``rom_mac`` input); INIT, STRT and STOP. It tells
  the engines what the host commanded (:data:`~hw.lance.regs_target.Control`) and takes their
  events (TINT, RINT, MISS, BABL, the counters).
* **Transmit engine** (:class:`~hw.lance.tx_engine.TxEngine`): polls, walks owned
  descriptors, feeds the frame's bytes to :class:`~hw.lance.mii.MiiTransmitter`, backs off and
  refetches on collision, writes the descriptors back, TINT.
* **Receive engine** (:class:`~hw.lance.rx_engine.RxEngine`): takes
  :class:`~hw.lance.mii.MiiReceiver`'s bytes through a small SILO, filters on the destination
  address, writes the bytes into owned buffers (chaining), hands frames with a bad FCS up
  flagged (CRC, FRAM), drops and counts runts, over-long and ``rx_er`` frames, writes the
  descriptors back, RINT; MISS when no buffer is owned.
* **Loopback** (MODE.LOOP, INTL, COLL): internal loopback routes the transmitter's nibbles to
  the receiver instead of the pins; COLL forces a collision (docs/lance_card.md).
* **Pipe block** (optional, ``ilp_pipes``): :class:`hw.ilp.buffer_port.BufferPort` on the
  host bus in front of the register target, its registers at
  :data:`~hw.lance.registers.ILP_OFFSET`: the pipes' results (a checksum) over a window of the
  buffer as the host copies it in or out (docs/ilp_pipes.md, "A block at the LANCE buffer
  port"). Without it (the default) the card is exactly the PMAD-AA.
* **MII**: one clock domain; the MII engines run under an ``EnableInserter`` on the tick
  (one cycle in :data:`~hw.lance.timing.MII_DIVIDER`), and the card drives ``mii_clk``.
"""
from collections.abc import Sequence

from amaranth.hdl import Cat, EnableInserter, Module, Mux, ResetInserter, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..bus import HostBus
from ..ilp.buffer_port import BufferPort
from ..ilp.registers import Pipe
from . import timing as T
from .mii import MiiReceiver, MiiTransmitter
from .registers import BUFFER_RAM_SIZE_DEFAULT, DEFAULT_MAC, ILP_OFFSET, LANCE_OFFSET
from .regs_target import BUS_ADDR_WIDTH, RegisterTarget, check_mac
from .rx_engine import RxEngine
from .tx_engine import TxEngine

__all__ = ["LanceCard", "BUS_ADDR_WIDTH", "rom_backoff_seed"]


def rom_backoff_seed(rom: Value) -> Value:
    """:func:`hw.lance.timing.backoff_seed` in gateware, of the address a socketed ROM holds
    (``rom``: 48 bits, :func:`hw.lance.regs_target.rom_word`)."""
    low = Cat(rom[40:48], rom[32:40]) ^ T.BACKOFF_SEED          # mac[4] << 8 | mac[5]
    return Mux(low == 0, T.BACKOFF_SEED, low)


class LanceCard(wiring.Component):
    """The PMAD-AA: an Am7990-style LANCE with its buffer SRAM and station-address ROM.

    Parameters
    ----------
    ram_bytes : int
        Buffer SRAM size, a power of two from 4 KiB to 1 MiB (default 128 KiB).
    mac : bytes or None
        The station address in the ROM (6 bytes, default
        :data:`~hw.lance.registers.DEFAULT_MAC`). None: the ROM is socketed, as on a real
        PMAD-AA: its contents are the ``rom_mac`` input, so one design serves every address.
    ilp_pipes : sequence of Pipe or None
        None (the default): no pipe block. A pipe list: the buffer-port pipe block of that
        list (contiguous layout), its registers at :data:`~hw.lance.registers.ILP_OFFSET`.

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
    rom_mac : In(48)
        Only when ``mac`` is None: the socketed ROM's six bytes
        (:func:`hw.lance.regs_target.rom_word`), held from before the first bus access. The
        backoff LFSR takes its seed (:func:`hw.lance.timing.backoff_seed`) from it at its first
        draw.

    Raises
    ------
    ValueError
        For a bad ``ram_bytes`` or ``mac``.
    TypeError, ValueError, hw.ilp.registers.PipeError
        For a bad ``ilp_pipes`` (:func:`hw.ilp.pipelist.check_pipes`).
    """

    def __init__(self, *, ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT,
                 mac: bytes | None = DEFAULT_MAC, ilp_pipes: Sequence[Pipe] | None = None):
        if (not isinstance(ram_bytes, int) or ram_bytes < 4096 or ram_bytes > LANCE_OFFSET
                or ram_bytes & (ram_bytes - 1)):
            raise ValueError(f"ram_bytes must be a power of two from 4 KiB to 1 MiB, "
                             f"not {ram_bytes!r}")
        self.ram_bytes = ram_bytes
        self.mac = None if mac is None else check_mac(mac)
        self.ilp = (None if ilp_pipes is None else
                    BufferPort(pipes=ilp_pipes, layout="contiguous", addr_width=BUS_ADDR_WIDTH,
                               regs_addr=ILP_OFFSET // 4))
        self.ram = Memory(shape=32, depth=ram_bytes // 4, init=[])
        super().__init__({
            "bus": In(HostBus(addr_width=BUS_ADDR_WIDTH, data_width=32)),
            "irq": Out(1), "mii_clk": Out(1),
            "txd": Out(4), "tx_en": Out(1), "tx_er": Out(1),
            "rxd": In(4), "rx_dv": In(1), "rx_er": In(1), "crs": In(1), "col": In(1),
            **({"rom_mac": In(48)} if mac is None else {}),
        })

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.ram = ram = self.ram
        aw = (self.ram_bytes // 4 - 1).bit_length()

        m.submodules.regs = regs = RegisterTarget(addr_width=aw, mac=self.mac)
        if self.mac is not None:
            m.submodules.tx_engine = txe = TxEngine(addr_width=aw,
                                                    lfsr_seed=T.backoff_seed(self.mac))
        else:                               # the socketed ROM, and the seed made from it
            m.submodules.tx_engine = txe = TxEngine(addr_width=aw, lfsr_seed=None)
            m.d.comb += [regs.rom_mac.eq(self.rom_mac), txe.seed.eq(rom_backoff_seed(self.rom_mac))]
        m.submodules.rx_engine = rxe = RxEngine(addr_width=aw)
        # A port of the buffer SRAM per user, so that no user ever waits for another.
        for port, user in ((ram.read_port(), regs.host_rd), (ram.write_port(granularity=8), regs.host_wr),
                           (ram.read_port(), regs.init_rd),
                           (ram.read_port(), txe.ram_rd), (ram.write_port(granularity=8), txe.ram_wr),
                           (ram.read_port(), rxe.ram_rd), (ram.write_port(granularity=8), rxe.ram_wr)):
            wiring.connect(m, port, user)
        if self.ilp is None:
            wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        else:
            m.submodules.ilp = self.ilp
            wiring.connect(m, wiring.flipped(self.bus), self.ilp.host)
            wiring.connect(m, self.ilp.card, regs.bus)
        wiring.connect(m, regs.control, txe.control, rxe.control)
        wiring.connect(m, txe.events, regs.tx)
        wiring.connect(m, rxe.events, regs.rx)
        m.d.comb += self.irq.eq(regs.irq)
        stop, mode = regs.control.stop, regs.control.init.mode

        # --- MII clock and tick ---------------------------------------------------------------
        div = Signal(range(T.MII_DIVIDER))
        tick = Signal()
        m.d.comb += tick.eq(div == T.MII_TICK_PHASE)
        m.d.sync += div.eq(Mux(tick, 0, div + 1))
        # High in the three cycles before each tick edge (rises at edges k % 5 == 1).
        m.d.sync += self.mii_clk.eq((div >= 1) & (div <= 3))
        m.d.comb += [txe.tick.eq(tick), rxe.tick.eq(tick)]

        mii_rst = Signal()
        rst_cnt = Signal(range(T.MII_RESET_CYCLES + 1), init=T.MII_RESET_CYCLES)
        m.d.comb += mii_rst.eq(rst_cnt != 0)
        with m.If(rst_cnt != 0):
            m.d.sync += rst_cnt.eq(rst_cnt - 1)
        with m.If(stop):                    # STOP resets the MII engines too
            m.d.sync += rst_cnt.eq(T.MII_RESET_CYCLES)

        tx = MiiTransmitter()
        rxm = MiiReceiver()
        m.submodules.mii_tx = ResetInserter(mii_rst)(EnableInserter(tick)(tx))
        m.submodules.mii_rx = ResetInserter(mii_rst)(EnableInserter(tick)(rxm))
        wiring.connect(m, txe.o_stream, tx.i_stream)
        wiring.connect(m, tx.o_status, txe.i_status)
        wiring.connect(m, rxm.o_stream, rxe.i_stream)
        m.d.comb += [txe.draining.eq(tx.draining), txe.babble.eq(tx.babble)]

        # --- MII pins and the loopback modes (Am7990 MODE) --------------------------------------
        # LOOP with INTL: internal loopback. The transmitter's nibbles go straight to the
        # receiver (sampled a tick later, as from the pins); the MII pins stay idle and what
        # arrives on them is ignored; no carrier; COLL forces a collision on every attempt (col
        # follows our own tx_en). LOOP alone (external loopback) uses the pins as usual.
        iloop = Signal()
        m.d.comb += iloop.eq(mode.loop & mode.intl)
        m.d.comb += [
            self.txd.eq(Mux(iloop, 0, tx.txd)), self.tx_en.eq(tx.tx_en & ~iloop),
            self.tx_er.eq(tx.tx_er & ~iloop),
            tx.crs.eq(self.crs & ~iloop), tx.col.eq(Mux(iloop, mode.coll & tx.tx_en, self.col)),
            rxm.rxd.eq(Mux(iloop, tx.txd, self.rxd)), rxm.rx_dv.eq(Mux(iloop, tx.tx_en, self.rx_dv)),
            rxm.rx_er.eq(Mux(iloop, tx.tx_er, self.rx_er)),
        ]
        return m
