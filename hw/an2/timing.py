"""The AN2-style card's cycle contract: its clock, its DMA, its link, and its own latencies.

The gateware (:mod:`hw.an2.gateware`) is the truth; these constants describe it, the
transaction-level model computes every observable time from them, and
tests/hw/test_an2_equivalence.py runs both on the same stimulus and requires the same edge for
every DMA burst's start and end, every irq change and every cell's slot, so that the two cannot
drift. Each constant says where its value comes from: a CALIBRATION.md row ([P] published),
a standard, or **an estimate of ours** with its reasoning (the real AN2 host interface's
timings are not at hand: docs/an2_card.md, "Sources").

Conventions
-----------
* Edge ``k`` is the ``k``-th rising edge of the card's clock, at ``k * CLOCK_PERIOD_PS``
  (:class:`sim.time.Clock`); "at edge ``k``" means a register takes its new value there.
* A DMA burst of ``w`` words *starts* at edge ``s`` when the card raises ``req``; host memory
  begins it ``DMA_SETUP_CYCLES`` later and it occupies the memory for ``w`` cycles plus the
  3MIN's per-burst overhead (:func:`dma_burst_cycles`), exactly what
  :meth:`sim.platforms.base.Platform.dma_ps` charges, since the 3MIN's memory cycle (80 ns)
  is the card's cycle. Other DMA masters (the disk) queue on the same memory and add waiting.
  The burst *ends* at edge ``s + dma_burst_cycles(w)``: the card samples its last ``ack`` one
  edge before and may raise the next burst's ``req`` at the end edge (:class:`hw.bus.DmaBus`
  wants ``req`` low for the cycle after a last ``ack``). The card has one DMA port
  (:mod:`hw.an2.dma_arbiter`): a burst asked for while another is on it starts at that one's
  end; after a refusal (``err`` sampled at ``s + DMA_ERR_CYCLES``) the port is free at ``s +
  DMA_ERR_CYCLES + 1``; bursts that could start on the same edge go receive engine first,
  then the completion writer, then the transmit engine. A read of ``n`` bytes at ``addr``
  moves every word they touch, ``ceil((addr % 4 + n) / 4)``.
* The link side is a separate timing domain: the cell slots of a continuous OC-3c stream fall
  at exact rational multiples of the clock (:data:`CELL_SLOT_CYCLES`); the card sees a slot at
  the first edge at or after it (:func:`cell_slot_edge`).
"""
from __future__ import annotations

from fractions import Fraction

from sim.media.atm import CELL_RATE_BPS, LINE_RATE_BPS

from .registers import CELL_BYTES, CELL_PAYLOAD_BYTES, ENTRY_WORDS, NUM_VCS

__all__ = [
    "CLOCK_HZ", "CLOCK_PERIOD_PS", "BUS_WAIT_CYCLES",
    "DMA_MAX_BURST_WORDS", "DMA_SETUP_CYCLES", "DMA_READ_BURST_CYCLES", "DMA_WRITE_BURST_CYCLES",
    "DMA_READ_OVERHEAD", "DMA_WRITE_OVERHEAD", "DMA_ERR_CYCLES", "dma_burst_cycles",
    "LINE_RATE_BPS", "PAYLOAD_RATE_BPS", "CELL_BITS", "CELL_WORDS", "CELL_PAYLOAD_WORDS",
    "CELL_SLOT_CYCLES", "cell_slot_edge",
    "VC_LOOKUP_CYCLES", "RX_DMA_START_CYCLES", "RX_TRAILER_CHECK_CYCLES", "TX_DOORBELL_CYCLES",
    "TX_FIFO_CELLS", "RX_FIFO_CELLS", "TX_CELL_ISSUE_CYCLES", "CQ_UPDATE_CYCLES",
    "IRQ_LATENCY_CYCLES",
    "RESET_CYCLES", "rx_cell_dma_cycles", "tx_cell_dma_cycles", "entry_dma_cycles",
]

# --- Clock and host bus -----------------------------------------------------------------------
#: The TURBOchannel clock of the 3MIN (CALIBRATION.md, "TURBOchannel clock on the 3MIN":
#: 12.5 MHz, 32-bit). One cycle = 80 ns = the 3MIN's main-memory cycle (CALIBRATION.md,
#: "main-memory cycle"), so a DMA burst is a whole number of card cycles.
CLOCK_HZ = 12_500_000
#: One card cycle, picoseconds.
CLOCK_PERIOD_PS = 80_000
#: Register access: ``ack`` rises at ``e0 + BUS_WAIT_CYCLES`` (hw.bus.HostBus: ``e0`` is the
#: first edge that samples the request; the access completes one cycle later). Estimate: one
#: cycle to decode the word address and one to register the read multiplexer's output, the
#: same as the disk controller's register file (hw.disk.registers.BUS_WAIT_CYCLES). A VcEntry
#: access reads the on-card VC table SRAM within the same two cycles.
BUS_WAIT_CYCLES = 2

# --- DMA (hw.bus.DmaBus into sim.memory.Memory) -------------------------------------------------
#: The longest burst the card asks for: the 3MIN's 64-word DMA (CALIBRATION.md, "DMA 64-word
#: read / write"; sim.platforms.decstation ``DMA_BURST``).
DMA_MAX_BURST_WORDS = 64
#: Memory cycles of a 64-word DMA read / write of host memory (CALIBRATION.md, "DMA 64-word
#: read / write": 68 / 66 memory cycles, from NetBSD pmax kmin.h).
DMA_READ_BURST_CYCLES = 68
DMA_WRITE_BURST_CYCLES = 66
#: The per-burst overhead those rows imply: one memory cycle per word plus 4 (read) / 2 (write),
#: which sim.platforms.base.Platform.dma_ps also charges a shorter burst.
DMA_READ_OVERHEAD = DMA_READ_BURST_CYCLES - DMA_MAX_BURST_WORDS
DMA_WRITE_OVERHEAD = DMA_WRITE_BURST_CYCLES - DMA_MAX_BURST_WORDS
#: Cycles from ``req`` to the memory starting the burst: bus request and grant, address cycle.
#: Estimate, the same as the disk controller's (hw.disk.registers.DMA_SETUP_CYCLES).
DMA_SETUP_CYCLES = 2
#: Cycles from a burst's request edge to the edge at which the card samples a refusal
#: (``err``): hw.dma.ERR_CYCLES, the DMA bridge's.
DMA_ERR_CYCLES = 2


def dma_burst_cycles(words: int, *, write: bool) -> int:
    """Cycles from ``req`` to the end of an uncontended burst of ``words`` words.

    Raises
    ------
    ValueError
        If ``words`` is not 1 .. :data:`DMA_MAX_BURST_WORDS`.
    """
    if (not isinstance(words, int) or isinstance(words, bool)
            or not 1 <= words <= DMA_MAX_BURST_WORDS):
        raise ValueError(f"a DMA burst is 1 .. {DMA_MAX_BURST_WORDS} words, not {words!r}")
    return DMA_SETUP_CYCLES + words + (DMA_WRITE_OVERHEAD if write else DMA_READ_OVERHEAD)


def entry_dma_cycles(*, write: bool) -> int:
    """Cycles of one descriptor or completion entry's burst (four words)."""
    return dma_burst_cycles(ENTRY_WORDS, write=write)


# --- The link: SONET STS-3c / OC-3c -----------------------------------------------------------
# LINE_RATE_BPS, the OC-3c line rate, is the link's (sim.media.atm, which the card attaches to):
# an STS-3c frame is 270 columns x 9 rows of bytes every 125 us (ANSI T1.105, ITU-T G.707; the
# issue's "155.52 Mbit/s").
#: Cell payload rate, the link's (sim.media.atm.CELL_RATE_BPS): 9 columns of transport overhead
#: and 1 of path overhead leave 260 of the 270 for cells (ITU-T I.432): 149.76 Mbit/s.
PAYLOAD_RATE_BPS = CELL_RATE_BPS
#: Bits of one cell on the link.
CELL_BITS = CELL_BYTES * 8
#: Words of a cell at the card's 32-bit cell interface: the 4 header bytes without the HEC
#: (the PHY checks and strips it; Link.CellLock), then the 48 payload bytes. Our design: a
#: 32-bit UTOPIA-like port, one word per cycle, so a cell crosses the pins in 13 cycles, well
#: inside its slot.
CELL_WORDS = 13
CELL_PAYLOAD_WORDS = CELL_PAYLOAD_BYTES // 4
#: Card cycles per cell slot of a continuous stream: 424 bits / 149.76 Mbit/s x 12.5 MHz =
#: 33125/936 = 35.39 cycles (2.831 us per cell, 353,208 cells/s).
CELL_SLOT_CYCLES = Fraction(CELL_BITS * CLOCK_HZ, PAYLOAD_RATE_BPS)


def cell_slot_edge(k: int) -> int:
    """The edge (counted from the stream's slot 0 at edge 0) at which slot ``k`` begins: the
    first edge at or after ``k * CELL_SLOT_CYCLES``.

    Raises
    ------
    ValueError
        If ``k`` is negative.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"a cell slot number is a non-negative int, not {k!r}")
    n, d = CELL_SLOT_CYCLES.numerator, CELL_SLOT_CYCLES.denominator
    return -(-k * n // d)


# --- The card's own latencies (all estimates of ours, with their reasoning) ---------------------
#: From the edge a received cell's last word is registered to the edge its VC entry is known:
#: the header is registered as the cell's first word arrives, the VC table SRAM is read on the
#: next edge and its entry registered on the one after (a synchronous SRAM read and a register).
VC_LOOKUP_CYCLES = 2
#: From a received cell's last word to ``req`` of its payload's write burst: the lookup, then
#: one edge to pick the buffer address (current buffer, or the pool's prefetched descriptor).
#: The CRC-32 runs over the payload as it arrives, 32 bits a cycle, and is ready by then.
RX_DMA_START_CYCLES = VC_LOOKUP_CYCLES + 1
#: From the end of an AAL5 PDU's last payload burst to the start of its descriptor write-back:
#: compare the trailer's length and CRC, set the status bits.
RX_TRAILER_CHECK_CYCLES = 1
#: From the edge a TxProducer write takes effect to ``req`` of the first descriptor fetch
#: (compare producer and consumer, form the address).
TX_DOORBELL_CYCLES = 1
#: Cells of payload the transmit FIFO holds ahead of the link: enough to cover a descriptor
#: fetch plus a payload burst with margin (an estimate; a real SAR keeps a few cells).
TX_FIFO_CELLS = 4
#: Cells the receive FIFO holds (hw/an2/rx_ingress.py's ``RX_FIFO_CELLS``, 2 KiB of payload
#: SRAM; an estimate of ours, its reasoning there). A cell whose first word finds every entry
#: still in use (committed, or the engine not yet done with it) is dropped, with no counter:
#: the PDU it belonged to shows it as a lost cell (LostCells) or a CRC error.
RX_FIFO_CELLS = 32
#: From a cell's payload complete in the FIFO to its first word on the cell interface, when a
#: slot is free: header assembly from the descriptor's VC (one edge) and the FIFO read (one).
TX_CELL_ISSUE_CYCLES = 2
#: From the end of a completion entry's write burst to CqProducer's new value and the
#: coalescing decision (one edge each).
CQ_UPDATE_CYCLES = 2
#: ``irq`` is registered: it follows (IrqCause & IrqEnable) one edge later.
IRQ_LATENCY_CYCLES = 1
#: Control.Reset holds the engines in reset this long, then clears itself; it also clears the
#: VC table, one entry per cycle (NUM_VCS words of SRAM). Control reads Reset, and refuses
#: writes, until ``RESET_CYCLES + 1`` edges after the write (the sweep counter is loaded at the
#: write's edge and counts down to zero).
RESET_CYCLES = NUM_VCS


def rx_cell_dma_cycles() -> int:
    """Uncontended cycles of one received cell's payload write burst (12 words)."""
    return dma_burst_cycles(CELL_PAYLOAD_WORDS, write=True)


def tx_cell_dma_cycles() -> int:
    """Uncontended cycles of one transmitted cell's payload read burst (12 words; a buffer that
    is not word aligned may need a 13th word, one cycle more)."""
    return dma_burst_cycles(CELL_PAYLOAD_WORDS, write=False)
