"""The disk controller's register map and timing: one source of truth for gateware, model, driver.

A SCSI-style disk controller on the :class:`hw.bus.HostBus`, clocked at the TURBOchannel's
12.5 MHz (80 ns cycles, :data:`CLOCK_HZ`). It moves whole blocks between the drive (the
:mod:`hw.disk.mechanism` timing model, media held by a :class:`hw.disk.image.DiskImage`) and host
memory by DMA, one command at a time. Sixteen 32-bit word registers (byte offsets; the bus
carries word addresses, :attr:`Reg.word`):

=======  ==========  ======  ==============================================================
offset   name        access  meaning
=======  ==========  ======  ==============================================================
0x00     COMMAND     rw      write a :class:`Command` code to start it; reads the last code
                             written (accepted or not)
0x04     LBN         rw      first block of the transfer
0x08     COUNT       rw      number of blocks (1 .. 2**32 - 1)
0x0C     DMA_ADDR    rw      host-memory byte address of the buffer; the low two bits are
                             ignored (forced to 0: DMA moves whole words)
0x10     STATUS      ro      :class:`Status` bits: Busy, Done, Error
0x14     ERROR       ro      :class:`Error` code of the last command (None when it succeeded)
0x18     IRQ_CAUSE   w1c     :class:`Irq` bits: Done, Error; write 1 to clear a bit
0x1C     IRQ_ENABLE  rw      :class:`Irq` bits that drive the interrupt line
0x20     CAPACITY    ro      blocks on the disk (the image's block count)
0x24     BLOCK_SIZE  ro      bytes per block (512 for the RZ26)
=======  ==========  ======  ==============================================================

Offsets 0x28 .. 0x3C are unmapped: reads return 0, writes are ignored (the bus still
acknowledges), as on a decoder without a bus-error line. Every access takes
:data:`BUS_WAIT_CYCLES` wait states on top of the HostBus minimum (see :class:`hw.bus.HostBus`).

When registers may be written
-----------------------------
* LBN, COUNT, DMA_ADDR and IRQ_ENABLE may be written at any time. The controller samples LBN,
  COUNT and DMA_ADDR only at the edge at which a COMMAND write takes effect; changing them
  while a command runs does not affect it.
* A write of COMMAND takes effect at its bus edge ``e`` (the edge at which the target raises
  ``ack``). The command is validated there, in this order, before anything moves:

  1. **Busy**: a command (other than Reset) is running. The new command is *rejected* and
     changes nothing about the running one or about media and memory: only ERROR := Busy,
     STATUS.Error := 1 and IRQ_CAUSE.Error := 1. The running command later completes normally
     (and then sets ERROR := None, STATUS.Error := 0: a driver that ignored the rejection
     sees the running command's own result).
  2. **BadCommand**: the code is not a :class:`Command`.
  3. **ZeroLength**: a Read or Write with COUNT = 0.
  4. **OutOfRange**: a Read or Write with LBN + COUNT > CAPACITY (the sum taken without
     overflow: 33 bits).
  5. **DmaFault**: a Read or Write whose buffer ``[DMA_ADDR, DMA_ADDR + COUNT * BLOCK_SIZE)``
     does not lie inside host memory (the controller is built with the memory size).

  A rejected command (1-5) sets ERROR, STATUS.Error and IRQ_CAUSE.Error at ``e``, leaves
  STATUS.Busy and STATUS.Done as they were, and moves no byte of media or memory. An accepted
  command sets, at ``e``: STATUS := Busy, ERROR := None, and starts. Busy is judged on the
  registers as they were before ``e``: a command written on the very edge at which the running
  one completes is rejected as Busy, and then both take effect: STATUS = Done | Error,
  ERROR = Busy, IRQ_CAUSE = Done | Error.
* A running command also ends with **DmaFault** if host memory refuses a burst (the
  ownership check of :class:`sim.memory.Memory`). The memory refuses at the burst's request
  edge ``S`` (``DMA_SETUP_CYCLES`` after the burst starts, where its transfer would begin) and
  answers with the :class:`hw.bus.DmaBus`'s ``err``, which the controller samples at
  ``S + DMA_ERR_CYCLES * P`` (the earliest registered answer): it abandons the command's
  remaining transfers there and, ``IRQ_LATENCY_CYCLES`` later, STATUS := Done | Error,
  ERROR := DmaFault, IRQ_CAUSE := Done | Error (a command rejected on that very edge leaves
  ERROR = Busy, as with an ordinary completion). Bursts before the refused one have landed,
  the refused one moves no byte; a Write refused while reading memory hands nothing to the
  drive and writes no sector.
* **Reset** is accepted at any time: at ``e`` it abandons the running command (a Write's
  sectors whose commit edge, below, is at or before ``e`` stay written, each wholly, and no
  later sector is written; a DMA burst already under way at ``e`` completes, as a bus master
  cannot take back a burst the memory has accepted, and no later burst starts), clears STATUS, ERROR and IRQ_CAUSE (so the line drops) and
  leaves LBN, COUNT, DMA_ADDR and IRQ_ENABLE as they are. It raises no interrupt. The drive
  itself finishes the abandoned request's mechanical work: the next command's drive service
  starts no earlier than that (:meth:`hw.disk.mechanism.Drive.submit` queues it).
* IRQ_CAUSE is write-1-to-clear; a cause set by the controller on the same edge as a clearing
  write stays set (setting wins, no completion is lost). ``irq = (IRQ_CAUSE & IRQ_ENABLE) != 0``
  (a level).

Cycle timing of a command (edges of the 80 ns clock; ``P`` = :data:`CLOCK_PERIOD_PS`)
----------------------------------------------------------------------------------------
Let ``e`` be the COMMAND write's edge. ``ceil_edge(t)`` is the first edge at or after ``t``
picoseconds (this is the **rounding rule** for every drive time: drive events, which happen in
exact picoseconds, are seen by the controller at the next clock edge, or at once when they
fall on an edge).

* **Read** (disk to memory):

  1. ``t_issue = e + DECODE_CYCLES * P``: the controller hands the request to the drive, which
     serves it (:meth:`hw.disk.mechanism.Drive.submit`: overhead, seek, rotation, media and
     SCSI-bus transfer into the controller's buffer) and reports completion at ``t_drive``.
     The blocks' contents are those on the media at ``t_issue``.
  2. DMA starts at ``d = ceil_edge(t_drive)``. Each block is ``BLOCK_SIZE / (4 *
     DMA_BURST_WORDS)`` bursts, each taking ``DMA_SETUP_CYCLES + DMA_WRITE_BURST_CYCLES``
     cycles (setup/arbitration, then the memory's burst write); its bytes land in memory at
     the burst's last edge. After a block's last burst the controller spends
     ``BLOCK_DONE_CYCLES`` before the next block's first burst.
  3. At ``f = (end of the last block, including its BLOCK_DONE_CYCLES) + IRQ_LATENCY_CYCLES * P``:
     STATUS := Done (Busy cleared), IRQ_CAUSE.Done := 1.

* **Write** (memory to disk):

  1. DMA starts at ``e + DECODE_CYCLES * P``: each block's bursts take ``DMA_SETUP_CYCLES +
     DMA_READ_BURST_CYCLES`` cycles each, then ``BLOCK_DONE_CYCLES``, as above, into the
     controller's buffer.
  2. ``t_issue`` = the edge that ends the last block: the drive serves the write; it commits
     sector ``j`` to the media at its media time ``m_j`` (the end of the sector's pass under
     the head in the mechanism model), which the controller sees, and persists to the image,
     at ``ceil_edge(m_j)``. The drive reports completion at ``t_drive``.
  3. ``f = ceil_edge(t_drive) + IRQ_LATENCY_CYCLES * P``: STATUS := Done, IRQ_CAUSE.Done := 1.

* **Inquire**: ``f = e + (DECODE_CYCLES + IRQ_LATENCY_CYCLES) * P``, then as above; no drive
  time. CAPACITY and BLOCK_SIZE are constant and readable at any time; Inquire is the driver's
  "unit ready" handshake before it reads them.

The drive is a separate timing domain in exact picoseconds whose platter angle depends only
on absolute time (:mod:`hw.disk.mechanism`), so model and RTL see the same drive times as long
as they issue at the same picosecond.
"""
from __future__ import annotations

import enum

__all__ = [
    "ADDR_WIDTH", "DATA_WIDTH", "WINDOW_SIZE", "CLOCK_HZ", "CLOCK_PERIOD_PS", "BUS_WAIT_CYCLES",
    "DECODE_CYCLES", "DMA_BURST_WORDS", "DMA_SETUP_CYCLES", "DMA_READ_BURST_CYCLES",
    "DMA_WRITE_BURST_CYCLES", "DMA_ERR_CYCLES", "BLOCK_DONE_CYCLES", "IRQ_LATENCY_CYCLES", "BLOCK_SIZE",
    "Reg", "Command", "Status", "Error", "Irq", "RESET", "ACCESS", "bit",
    "bursts_per_block", "read_dma_cycles", "write_dma_cycles",
]

#: Word-address width of the controller's :class:`hw.bus.HostBus` (16 word registers).
ADDR_WIDTH = 4
#: Data width of the bus.
DATA_WIDTH = 32
#: Bytes of address space the controller decodes.
WINDOW_SIZE = (1 << ADDR_WIDTH) * DATA_WIDTH // 8

# ---- timing constants (controller clock cycles) ----------------------------------------------
#: The controller's clock: the TURBOchannel's 12.5 MHz (CALIBRATION.md), one cycle = 80 ns,
#: which is also the 3MIN's memory cycle, so a DMA burst is a whole number of cycles.
CLOCK_HZ = 12_500_000
#: One controller clock cycle, picoseconds.
CLOCK_PERIOD_PS = 80_000
#: Extra wait states of a register access: the target raises ``ack`` this many cycles after the
#: edge ``e0`` that first samples the request (HostBus minimum 0), so an access takes
#: ``BUS_WAIT_CYCLES + 2`` cycles from ``e0`` until the initiator sees ``ack``. The effect of
#: the access (write takes effect / read data registered) is at ``e0 + BUS_WAIT_CYCLES``.
BUS_WAIT_CYCLES = 2
#: From the COMMAND write's edge to handing a read to the drive, or to a write's first DMA burst.
DECODE_CYCLES = 4
#: Words per DMA burst (the 3MIN's 64-word DMA, sim.platforms.decstation).
DMA_BURST_WORDS = 64
#: Cycles from the start of a burst until the memory starts it (bus request, grant, address).
DMA_SETUP_CYCLES = 2
#: Memory cycles of a 64-word DMA read of host memory (a disk Write): 68 on the 3MIN.
DMA_READ_BURST_CYCLES = 68
#: Memory cycles of a 64-word DMA write into host memory (a disk Read): 66 on the 3MIN.
DMA_WRITE_BURST_CYCLES = 66
#: Cycles from a burst's request edge to the edge at which the controller samples host memory's
#: ``err`` for a refused burst: the memory samples the request at the first edge and answers
#: from a register, seen at the second (``hw.dma.ERR_CYCLES``, the bridge's).
DMA_ERR_CYCLES = 2
#: Cycles after a block's last burst ends before the next block's first burst (or the end of
#: the DMA phase): buffer pointer and block counter update.
BLOCK_DONE_CYCLES = 2
#: Cycles from the end of a command's work to STATUS.Done / IRQ_CAUSE.Done (and the irq line).
IRQ_LATENCY_CYCLES = 1
#: Bytes per block (the RZ26's sector); a multiple of ``4 * DMA_BURST_WORDS``.
BLOCK_SIZE = 512


def bursts_per_block(block_size: int = BLOCK_SIZE) -> int:
    """DMA bursts per block (2 for 512-byte blocks).

    Raises
    ------
    ValueError
        If ``block_size`` is not a positive multiple of the burst's bytes.
    """
    burst = 4 * DMA_BURST_WORDS
    if not isinstance(block_size, int) or block_size <= 0 or block_size % burst:
        raise ValueError(f"block size must be a positive multiple of {burst} bytes, not {block_size!r}")
    return block_size // burst


def read_dma_cycles(count: int, block_size: int = BLOCK_SIZE) -> int:
    """Cycles of the DMA phase of a Read of ``count`` blocks (into memory)."""
    return count * (bursts_per_block(block_size) * (DMA_SETUP_CYCLES + DMA_WRITE_BURST_CYCLES)
                    + BLOCK_DONE_CYCLES)


def write_dma_cycles(count: int, block_size: int = BLOCK_SIZE) -> int:
    """Cycles of the DMA phase of a Write of ``count`` blocks (from memory)."""
    return count * (bursts_per_block(block_size) * (DMA_SETUP_CYCLES + DMA_READ_BURST_CYCLES)
                    + BLOCK_DONE_CYCLES)


class Reg(enum.IntEnum):
    """Register byte offsets."""
    Command = 0x00
    Lbn = 0x04
    Count = 0x08
    DmaAddr = 0x0C
    Status = 0x10
    Error = 0x14
    IrqCause = 0x18
    IrqEnable = 0x1C
    Capacity = 0x20
    BlockSize = 0x24

    @property
    def word(self) -> int:
        """The word address on the :class:`hw.bus.HostBus`."""
        return self.value >> 2


class Command(enum.IntEnum):
    """COMMAND codes (0 is not a command: writing it is rejected with BadCommand)."""
    Read = 1      #: COUNT blocks from LBN into memory at DMA_ADDR
    Write = 2     #: COUNT blocks from memory at DMA_ADDR to the disk at LBN
    Inquire = 3   #: unit ready handshake; CAPACITY / BLOCK_SIZE describe the disk
    Reset = 4     #: abandon any command, clear STATUS, ERROR and IRQ_CAUSE


class Status(enum.IntFlag):
    """STATUS bits (read-only)."""
    Busy = 1 << 0    #: a command is running
    Done = 1 << 1    #: the last accepted command completed (cleared when one is accepted)
    Error = 1 << 2   #: ERROR is not None


class Error(enum.IntEnum):
    """ERROR codes."""
    None_ = 0        #: no error
    OutOfRange = 1   #: LBN + COUNT > CAPACITY
    ZeroLength = 2   #: COUNT = 0
    Busy = 3         #: a command was written while another ran
    DmaFault = 4     #: the buffer is outside host memory, or the memory refused a DMA burst
    BadCommand = 5   #: not a Command code


class Irq(enum.IntFlag):
    """IRQ_CAUSE / IRQ_ENABLE bits."""
    Done = 1 << 0    #: a command completed
    Error = 1 << 1   #: a command was rejected (or failed)


#: Reset values of the registers (CAPACITY and BLOCK_SIZE depend on the disk).
RESET = {Reg.Command: 0, Reg.Lbn: 0, Reg.Count: 0, Reg.DmaAddr: 0, Reg.Status: 0,
         Reg.Error: 0, Reg.IrqCause: 0, Reg.IrqEnable: 0}
#: Access type of each register: "rw", "ro" or "w1c".
ACCESS = {Reg.Command: "rw", Reg.Lbn: "rw", Reg.Count: "rw", Reg.DmaAddr: "rw",
          Reg.Status: "ro", Reg.Error: "ro", Reg.IrqCause: "w1c", Reg.IrqEnable: "rw",
          Reg.Capacity: "ro", Reg.BlockSize: "ro"}


def bit(flag: enum.IntFlag) -> int:
    """Bit index of a single-bit flag (``bit(Irq.Error) == 1``)."""
    v = int(flag)
    if v <= 0 or v & (v - 1):
        raise ValueError(f"{flag!r} is not a single-bit flag")
    return v.bit_length() - 1
