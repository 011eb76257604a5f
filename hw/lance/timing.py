"""The LANCE card's fixed latencies, in cycles of its 12.5 MHz clock: the timing contract.

The gateware (:mod:`hw.lance.gateware`) is the truth; these constants describe it, and the
transaction-level model (:mod:`hw.lance.model`) computes every observable time from them. The
tests measure them on the RTL (tests/hw/test_lance_gateware.py) so the two cannot drift.

Conventions
-----------
* Edge ``k`` is the ``k``-th rising edge of the card's clock, at time ``k * period`` (edge 0 at
  time 0: :class:`sim.time.Clock`). "At edge ``k``" means a register takes its new value at
  that edge; it is visible in cycle ``k`` (from edge ``k`` to edge ``k + 1``).
* The MII runs at one nibble per :data:`MII_DIVIDER` cycles. The card's MII engines act only at
  **tick edges**, the edges ``k`` with ``k % MII_DIVIDER == MII_TICK_PHASE`` (the divider resets
  to 0 and counts every edge). ``mii_clk`` is high in the three cycles before each tick edge and
  low in the two after it (it rises at edge ``k`` with ``k % 5 == 1``... see
  :data:`MII_CLK_RISE_PHASE`), so a PHY that drives on its rising edge and samples on it
  never races the card.
* A frame of ``n`` bytes on the wire (FCS included, padding included) takes
  ``wire_nibbles(n) = PREAMBLE_NIBBLES + 2 * n`` ticks.
"""
from __future__ import annotations

__all__ = [
    "CLOCK_HZ", "MII_DIVIDER", "MII_TICK_PHASE", "MII_CLK_RISE_PHASE",
    "BUS_READ_WAIT", "BUS_WRITE_WAIT", "INIT_CYCLES", "INIT_UNALIGNED_CYCLES", "TX_POLL_CYCLES", "TX_FETCH_CYCLES",
    "TX_FIRST_BYTE_CYCLES", "TX_IFG_TICKS", "TX_STATUS_CYCLES", "TX_WRITEBACK_PER_DESCRIPTOR",
    "TX_WRITEBACK_TAIL", "SLOT_TICKS", "BACKOFF_SEED", "BACKOFF_TAPS", "MAX_ATTEMPTS",
    "PREAMBLE_NIBBLES", "RX_LAST_BEAT_TICKS", "RX_WRITEBACK_START", "RX_CHAIN_CYCLES",
    "RX_SILO_BYTES",
    "IRQ_LATENCY", "MII_RESET_CYCLES", "is_tick", "next_tick_at_or_after", "wire_nibbles",
    "backoff_step", "backoff_seed", "TX_JAM_TICKS", "TX_ABORT_END_TICKS",
]

#: The TURBOchannel clock of the DECstation 5000/125 (CALIBRATION.md): 80 ns per cycle.
CLOCK_HZ = 12_500_000
#: Cycles per MII nibble: 10 Mbit/s is one nibble per 400 ns = 5 cycles.
MII_DIVIDER = 5
#: Tick edges are the edges ``k`` with ``k % MII_DIVIDER == MII_TICK_PHASE``.
MII_TICK_PHASE = 4
#: ``mii_clk`` rises at the edges ``k`` with ``k % 5 == MII_CLK_RISE_PHASE`` and falls at the
#: tick edges: high for 3 cycles, low for 2.
MII_CLK_RISE_PHASE = 1

#: Host bus: a read raises ``ack`` at ``e0 + BUS_READ_WAIT`` (the access takes one more cycle),
#: a write takes effect and raises ``ack`` at ``e0 + BUS_WRITE_WAIT``; ``e0`` is the first edge
#: that samples the request (hw/bus.py). A read of buffer RAM returns the word as it was after
#: the edge ``e0 + BUS_READ_WAIT - 2`` (the RAM's read port registers the address one cycle
#: before ``r_data`` is loaded).
BUS_READ_WAIT = 5
BUS_WRITE_WAIT = 3

#: Writing CSR0.INIT (effect edge ``w``) sets IDON at ``w + INIT_CYCLES`` (six word reads of
#: the init block). With STRT in the same write the engines start at that edge too.
INIT_CYCLES = 7
#: ... and one edge more when the init block's address is 2 mod 4 (seven RAM words to read).
INIT_UNALIGNED_CYCLES = 1

#: While TXON and idle, the transmit engine polls its current descriptor when the previous
#: poll started ``TX_POLL_CYCLES`` edges ago (1.6 ms, the Am7990's poll period), or at once on
#: TDMD / STRT / the end of a frame. A poll *starts* at edge ``p``: the descriptor's words are
#: read at edges ``p + 1`` and ``p + 2`` and the decision is taken at ``p + TX_FETCH_CYCLES``.
TX_POLL_CYCLES = 20_000
TX_FETCH_CYCLES = 3
#: After the decision edge ``d`` that found an owned STP descriptor, the frame's first byte is
#: offered to the MII transmitter at ``d + TX_FIRST_BYTE_CYCLES``; the preamble starts
#: (``tx_en`` rises) at the first tick edge strictly after that which also satisfies the gap.
TX_FIRST_BYTE_CYCLES = 2
#: ``tx_en`` can rise again no earlier than ``TX_IFG_TICKS`` ticks after it fell (96 bit times).
TX_IFG_TICKS = 24
#: ``tx_en`` falls at tick edge ``f``; the engine takes the transmitter's status at
#: ``f + TX_STATUS_CYCLES`` and starts writing its descriptors back.
TX_STATUS_CYCLES = 1
#: Collisions: ``col`` seen high at a tick edge ``c`` while the preamble, data, padding or FCS
#: goes out makes the transmitter jam: ``tx_en`` falls at ``c + MII_DIVIDER * TX_JAM_TICKS``
#: (32 bits of jam). ``col`` is sampled only at tick edges, like ``crs``.
TX_JAM_TICKS = 8
#: After a jam ends at tick edge ``f`` the transmitter drains the frame's remaining beats and
#: reports at ``f + MII_DIVIDER * TX_ABORT_END_TICKS`` (its End; the inter-frame gap counts from
#: there); one tick earlier if the engine had already given it the frame's last byte. The
#: engine takes the status ``TX_STATUS_CYCLES`` later at ``s`` and, to retry, waits ``r`` slot
#: times in Backoff: its next poll of the frame's first descriptor starts at ``s + 1 + r *
#: SLOT_TICKS * MII_DIVIDER``.
TX_ABORT_END_TICKS = 3
#: Write-back: two edges per descriptor (read TMD1, write it), then TMD3 of the last one and
#: TINT at ``status + TX_WRITEBACK_PER_DESCRIPTOR * ndesc + TX_WRITEBACK_TAIL``. The next poll
#: starts at that same edge.
TX_WRITEBACK_PER_DESCRIPTOR = 2
TX_WRITEBACK_TAIL = 1
#: Backoff unit: the slot time, 512 bit times = 128 ticks.
SLOT_TICKS = 128
#: The backoff random numbers: a 16-bit Galois LFSR stepped once per backoff (see
#: :func:`backoff_step`), reset to :func:`backoff_seed` of the card's station address, so that
#: two cards on one segment draw different backoffs (BACKOFF_SEED alone would make every card
#: collide with every other in lock-step, forever). An estimate: the Am7990's own generator is
#: not documented to the bit; any per-station sequence gives 802.3's uniform draws.
BACKOFF_SEED = 0xACE1
BACKOFF_TAPS = 0xB400
#: Attempts before TMD3.RTRY (IEEE 802.3 attemptLimit).
MAX_ATTEMPTS = 16

#: Preamble (15 nibbles of 5) and SFD (one nibble of D).
PREAMBLE_NIBBLES = 16
#: A received frame whose first preamble nibble the card samples at tick edge ``t0`` and that
#: is ``nibbles`` long (rx_dv high for ``nibbles`` samples): its last byte reaches the receive
#: engine at ``t0 + MII_DIVIDER * (nibbles + RX_LAST_BEAT_TICKS)``.
RX_LAST_BEAT_TICKS = 2
#: The receive engine starts writing a good frame's descriptors back RX_WRITEBACK_START edges
#: after the last byte reached it (``+ RX_CHAIN_CYCLES`` if that last byte had to open a new buffer): one
#: edge per descriptor (RMD1), one for the last's RMD3 (MCNT); RINT at the edge after.
RX_WRITEBACK_START = 3
RX_CHAIN_CYCLES = 4
#: Bytes the receive SILO holds between the MII receiver and the engine (the Am7990 has 48).
#: The engine is slower than the wire only while it writes the six held address bytes into
#: buffers of one or two bytes (a descriptor fetch per byte): at most four bytes wait then.
#: While it lags, the engine takes a waiting byte at once: with ``h`` the edge from which it
#: is free, byte ``i`` is taken at ``max(h, beat)`` and written two edges later
#: (``RX_CHAIN_CYCLES`` more when it opens a new buffer); the next is free from that edge.
RX_SILO_BYTES = 16
#: ``irq`` is registered: it follows INTR & INEA one edge later.
IRQ_LATENCY = 1
#: Writing STOP holds the MII engines in reset for this many edges (one tick is sure to fall in).
MII_RESET_CYCLES = MII_DIVIDER


def is_tick(edge: int) -> bool:
    """True when edge ``edge`` is an MII tick edge."""
    return edge % MII_DIVIDER == MII_TICK_PHASE


def next_tick_at_or_after(edge: int) -> int:
    """The first tick edge at or after ``edge``."""
    return edge + (MII_TICK_PHASE - edge) % MII_DIVIDER


def wire_nibbles(nbytes: int) -> int:
    """Ticks a frame of ``nbytes`` (FCS and padding included) keeps ``tx_en``/``rx_dv`` high."""
    return PREAMBLE_NIBBLES + 2 * nbytes


def backoff_seed(mac: bytes) -> int:
    """The backoff LFSR's reset value for a card whose station address is ``mac``: the last
    two address bytes (which differ between the cards of one segment) folded into
    :data:`BACKOFF_SEED`, never 0 (an all-zero LFSR would stay zero)."""
    return (BACKOFF_SEED ^ (mac[4] << 8 | mac[5])) or BACKOFF_SEED


def backoff_step(lfsr: int) -> int:
    """One step of the backoff LFSR (Galois, shifting right)."""
    lsb = lfsr & 1
    lfsr >>= 1
    return lfsr ^ BACKOFF_TAPS if lsb else lfsr
