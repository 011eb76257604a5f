"""The AN2-style ATM card's register map: the one source of truth for gateware, model, driver.

A TURBOchannel option that moves AAL5 PDUs between an OC-3c cell link and *any* host memory by
DMA (:class:`hw.bus.DmaBus`), clocked at the TURBOchannel's 12.5 MHz (:mod:`hw.an2.timing`).
The host reaches 64 word registers on a :class:`hw.bus.HostBus` (``addr_width`` =
:data:`ADDR_WIDTH`); everything else lives in host memory: a transmit descriptor ring,
:data:`NUM_POOLS` receive buffer pools (each a ring of free-buffer descriptors) and one
completion queue. docs/an2_card.md is the prose contract; this module is what code imports.

The register map (byte offsets; the bus carries word addresses, :attr:`Reg.word`):

=========  ================  ======  ===========================================================
offset     name              access  meaning
=========  ================  ======  ===========================================================
0x00       Control           rw      :class:`Control`: Reset (self-clearing), TxEnable,
                                     RxEnable, Loopback
0x04       Status            ro      :class:`Status`: TxOn, RxOn, Fault, CqFull
0x08       IrqCause          w1c     :class:`Irq`: Completion, CqFull, Error, Link
0x0C       IrqEnable         rw      :class:`Irq` bits that drive the interrupt line
0x10       CoalesceCount     rw      completions per interrupt, 1 .. 255 (0 acts as 1)
0x14       CoalesceTime      rw      cycles from the first pending completion to the
                                     interrupt, 24 bits; 0 = no time threshold
0x18       LinkStatus        ro      :class:`Link`: Signal, FrameLock, CellLock
0x1C       VcIndex           rw      which VC VcEntry reads and writes (0 .. NUM_VCS - 1)
0x20       VcEntry           rw      :data:`vc_entry_layout` of VC VcIndex (State is ro)
0x30       TxBase            rw      transmit ring base (16-byte aligned)
0x34       TxSize            rw      transmit ring entries (a power of two, 2 .. 4096)
0x38       TxProducer        rw      host: next descriptor it will fill (the doorbell)
0x3C       TxConsumer        ro      card: next descriptor it will send
0x40       CqBase            rw      completion queue base (16-byte aligned)
0x44       CqSize            rw      completion queue entries (power of two, 2 .. 4096)
0x48       CqProducer        ro      card: next entry it will write
0x4C       CqConsumer        rw      host: next entry it will read
0x50+16p   PoolBase(p)       rw      receive pool ``p``'s ring base, p = 0 .. NUM_POOLS - 1
0x54+16p   PoolSize(p)       rw      its entries (power of two, 2 .. 4096)
0x58+16p   PoolProducer(p)   rw      host: next free-buffer descriptor it will post
0x5C+16p   PoolConsumer(p)   ro      card: next free buffer it will fill
0x90+4i    counter ``i``     ro/wc   :class:`Counter` ``i``: 32-bit saturating; writing clears
=========  ================  ======  ===========================================================

Every other word reads 0 and ignores writes (the bus still acknowledges). Ring indices run
modulo the ring's size; a ring is empty when producer == consumer and full when producer + 1
== consumer, so a ring of ``n`` entries holds ``n - 1``.

Descriptors and completion entries are four little-endian 32-bit words (16 bytes, one DMA
burst each) in host memory; their bit layouts are :data:`tx_descriptor_layout`,
:data:`rx_descriptor_layout` and :data:`completion_layout` (bit ``32 * i + b`` is bit ``b`` of
word ``i``), and :class:`TxDescriptor`, :class:`RxDescriptor` and :class:`Completion` pack and
unpack them. The :class:`enum.IntFlag` classes name the bits of single words and agree with the
layouts (tests/hw/test_an2_registers.py checks it).

Nothing here but the ``*_layout`` Amaranth ``data`` layouts needs Amaranth, and those import
only :mod:`amaranth.lib.data`, so the model and the driver import this module cheaply.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from amaranth.lib import data

from ..fields import check_unsigned as _check_u

__all__ = [
    "ADDR_WIDTH", "DATA_WIDTH", "WINDOW_SIZE", "NUM_VCS", "NUM_POOLS", "NUM_OWNERS",
    "MIN_RING", "MAX_RING", "RING_ALIGN", "ENTRY_BYTES", "ENTRY_WORDS", "NO_INDEX",
    "CELL_BYTES", "CELL_HEADER_BYTES", "CELL_PAYLOAD_BYTES", "AAL5_TRAILER_BYTES",
    "MAX_PDU", "MAX_PDU_CELLS", "COUNTERS_OFFSET", "COALESCE_TIME_BITS",
    "Reg", "pool_reg", "Control", "Status", "Irq", "Link", "VcState", "Counter",
    "TxFlag", "RxFlag", "CqKind", "CqError", "RxSwap", "RESET", "ACCESS", "RING_REGS",
    "ring_entries_valid", "aal5_cells", "csum_field_offset", "csum_field_fits",
    "tx_csum_result",
    "VcEntry", "TxDescriptor", "RxDescriptor", "Completion",
    "control_layout", "status_layout", "irq_layout", "link_layout", "vc_entry_layout",
    "tx_descriptor_layout", "rx_descriptor_layout", "completion_layout",
]

# --- The option window ------------------------------------------------------------------------
#: Word-address width of the card's :class:`hw.bus.HostBus`: 64 word registers.
ADDR_WIDTH = 6
#: Data width of the bus.
DATA_WIDTH = 32
#: Bytes of register space the card decodes (256).
WINDOW_SIZE = (1 << ADDR_WIDTH) * DATA_WIDTH // 8

# --- Sizes ------------------------------------------------------------------------------------
#: VCs the card knows: VPI 0, VCI 0 .. NUM_VCS - 1 (its on-card VC table has this many entries).
NUM_VCS = 1024
#: Receive buffer pools; each VC names one in its table entry.
NUM_POOLS = 4
#: Owner tags a VC entry can carry (0 is the kernel, which the memory never refuses).
NUM_OWNERS = 256
#: Ring sizes, in entries (powers of two).
MIN_RING = 2
MAX_RING = 4096
#: Ring bases must be aligned to one entry.
RING_ALIGN = 16
#: Bytes and 32-bit words of a descriptor or completion entry.
ENTRY_BYTES = 16
ENTRY_WORDS = 4
#: The completion entry's ``index`` when no descriptor was consumed (a PDU dropped for want
#: of a buffer).
NO_INDEX = 0xFFFF
#: An ATM cell: 5 header bytes (UNI: GFC, VPI, VCI, PTI, CLP, HEC) and 48 payload bytes
#: (ITU-T I.361; CALIBRATION.md "ATM").
CELL_BYTES = 53
CELL_HEADER_BYTES = 5
CELL_PAYLOAD_BYTES = 48
#: The AAL5 trailer: UU, CPI, a 16-bit length and the CRC-32 (ITU-T I.363.5).
AAL5_TRAILER_BYTES = 8
#: The largest AAL5 PDU payload (the length field is 16 bits; CALIBRATION.md).
MAX_PDU = 65535
#: Cells of the largest PDU: anything longer without an end-of-PDU cell is oversize.
MAX_PDU_CELLS = -(-(MAX_PDU + AAL5_TRAILER_BYTES) // CELL_PAYLOAD_BYTES)
#: Width of CoalesceTime.
COALESCE_TIME_BITS = 24


def aal5_cells(length: int) -> int:
    """Cells of an AAL5 PDU carrying ``length`` payload bytes (payload, pad and trailer).

    Raises
    ------
    ValueError
        If ``length`` is not 0 .. :data:`MAX_PDU`.
    """
    if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= MAX_PDU:
        raise ValueError(f"an AAL5 PDU carries 0 .. {MAX_PDU} bytes, not {length!r}")
    return -(-(length + AAL5_TRAILER_BYTES) // CELL_PAYLOAD_BYTES)


def ring_entries_valid(entries: int) -> bool:
    """True when ``entries`` is a legal ring size (a power of two, MIN_RING .. MAX_RING)."""
    return (isinstance(entries, int) and not isinstance(entries, bool)
            and MIN_RING <= entries <= MAX_RING and not entries & (entries - 1))


# --- Registers --------------------------------------------------------------------------------
#: First error counter word; counter ``i`` (:class:`Counter`) is at ``COUNTERS_OFFSET + 4 i``.
COUNTERS_OFFSET = 0x90
_POOL_OFFSET = 0x50
_POOL_STRIDE = 0x10


class Reg(enum.IntEnum):
    """Register byte offsets (pool registers: :func:`pool_reg`; counters: :class:`Counter`)."""

    Control = 0x00
    Status = 0x04
    IrqCause = 0x08
    IrqEnable = 0x0C
    CoalesceCount = 0x10
    CoalesceTime = 0x14
    LinkStatus = 0x18
    VcIndex = 0x1C
    VcEntry = 0x20
    TxBase = 0x30
    TxSize = 0x34
    TxProducer = 0x38
    TxConsumer = 0x3C
    CqBase = 0x40
    CqSize = 0x44
    CqProducer = 0x48
    CqConsumer = 0x4C
    PoolBase = 0x50
    PoolSize = 0x54
    PoolProducer = 0x58
    PoolConsumer = 0x5C

    @property
    def word(self) -> int:
        """The word address on the :class:`hw.bus.HostBus` (pool 0's for the pool registers)."""
        return self.value >> 2


#: The four registers of each ring: (base, size, producer, consumer).
RING_REGS = (Reg.PoolBase, Reg.PoolSize, Reg.PoolProducer, Reg.PoolConsumer)


def pool_reg(reg: Reg, pool: int) -> int:
    """Byte offset of receive pool ``pool``'s ``reg`` (one of :data:`RING_REGS`).

    Raises
    ------
    ValueError
        If ``reg`` is not a pool register or ``pool`` is not 0 .. NUM_POOLS - 1.
    """
    if reg not in RING_REGS:
        raise ValueError(f"{reg!r} is not a pool register (one of {[r.name for r in RING_REGS]})")
    if not isinstance(pool, int) or isinstance(pool, bool) or not 0 <= pool < NUM_POOLS:
        raise ValueError(f"pool must be 0 .. {NUM_POOLS - 1}, not {pool!r}")
    return int(reg) + _POOL_STRIDE * pool


class Control(enum.IntFlag):
    """Control bits (rw). Ring registers may be written only while their engine is off."""

    Reset = 1 << 0      #: self-clearing: every register to its reset value, VC table disabled
    TxEnable = 1 << 1   #: run the transmit engine (off: it stops after the PDU in progress)
    RxEnable = 1 << 2   #: run the receive engine (off: cells are dropped, not counted)
    Loopback = 1 << 3   #: transmitted cells are received instead of leaving on the link


class Status(enum.IntFlag):
    """Status bits (ro)."""

    TxOn = 1 << 0    #: the transmit engine runs
    RxOn = 1 << 1    #: the receive engine runs
    Fault = 1 << 2   #: an engine halted: DMA to a ring or the completion queue was refused
    CqFull = 1 << 3  #: the completion queue is full: the engines wait for the host


class Irq(enum.IntFlag):
    """IrqCause (w1c) / IrqEnable (rw) bits; ``irq = (IrqCause & IrqEnable) != 0``."""

    Completion = 1 << 0  #: completions reached the coalescing count or time threshold
    CqFull = 1 << 1      #: the completion queue became full
    Error = 1 << 2       #: an error counter counted, or Status.Fault was set
    Link = 1 << 3        #: LinkStatus changed


class Link(enum.IntFlag):
    """LinkStatus bits (ro); the link is up when all three are set."""

    Signal = 1 << 0     #: light / carrier on the receive fibre
    FrameLock = 1 << 1  #: SONET STS-3c frames delineated
    CellLock = 1 << 2   #: cells delineated by HEC (ITU-T I.432)


class VcState(enum.IntEnum):
    """The receive state of a VC, in VcEntry.state (read-only)."""

    Idle = 0          #: between PDUs
    Reassembling = 1  #: cells of a PDU are going into its buffers
    Discarding = 2    #: dropping cells until the end of a PDU (no buffer, oversize, fault)


class Counter(enum.IntEnum):
    """The error and traffic counters at :data:`COUNTERS_OFFSET` (word index from there)."""

    CrcErrors = 0     #: PDUs whose AAL5 CRC-32 was wrong (handed back flagged, not as good)
    OversizePdus = 1  #: PDUs longer than MAX_PDU_CELLS cells, or whose length field exceeds MAX_PDU
    NoBuffer = 2      #: PDUs dropped: no free buffer in their pool, or the completion queue full
    LostCells = 3     #: PDUs whose trailer length disagrees with the cells received
    DmaFaults = 4     #: transfers host memory refused (a page the VC's owner does not have)
    UnknownVc = 5     #: cells for a VC that is disabled or outside the table
    CellsRx = 6       #: cells received on enabled VCs
    CellsTx = 7       #: cells sent
    PdusRx = 8        #: PDUs delivered good
    PdusTx = 9        #: PDUs sent

    @property
    def offset(self) -> int:
        """Byte offset of the counter's word."""
        return COUNTERS_OFFSET + 4 * self.value


#: Reset values (the link status depends on the link).
RESET = {Reg.Control: 0, Reg.Status: 0, Reg.IrqCause: 0, Reg.IrqEnable: 0,
         Reg.CoalesceCount: 1, Reg.CoalesceTime: 0, Reg.VcIndex: 0, Reg.VcEntry: 0,
         Reg.TxBase: 0, Reg.TxSize: MIN_RING, Reg.TxProducer: 0, Reg.TxConsumer: 0,
         Reg.CqBase: 0, Reg.CqSize: MIN_RING, Reg.CqProducer: 0, Reg.CqConsumer: 0,
         Reg.PoolBase: 0, Reg.PoolSize: MIN_RING, Reg.PoolProducer: 0, Reg.PoolConsumer: 0}
#: Access of each register: "rw", "ro" or "w1c" (counters: read-only, a write clears).
ACCESS = {Reg.Control: "rw", Reg.Status: "ro", Reg.IrqCause: "w1c", Reg.IrqEnable: "rw",
          Reg.CoalesceCount: "rw", Reg.CoalesceTime: "rw", Reg.LinkStatus: "ro",
          Reg.VcIndex: "rw", Reg.VcEntry: "rw",
          Reg.TxBase: "rw", Reg.TxSize: "rw", Reg.TxProducer: "rw", Reg.TxConsumer: "ro",
          Reg.CqBase: "rw", Reg.CqSize: "rw", Reg.CqProducer: "ro", Reg.CqConsumer: "rw",
          Reg.PoolBase: "rw", Reg.PoolSize: "rw", Reg.PoolProducer: "rw",
          Reg.PoolConsumer: "ro"}


# --- Descriptor and completion flags (bits of one 32-bit word) ---------------------------------
class TxFlag(enum.IntFlag):
    """Word 2 of a transmit descriptor. The host sets First/Last/Own; the card writes back
    Own = 0 and the error bits when it is done with the descriptor."""

    First = 1 << 0      #: the PDU's first buffer
    Last = 1 << 1       #: the PDU's last buffer: the card appends pad and trailer after it
    Csum = 1 << 2       #: (First only) the card fills in the PDU's Internet checksum field
    DmaFault = 1 << 8   #: reading the buffer was refused: the PDU was not sent
    BadVc = 1 << 9      #: the VC is disabled: the PDU was not sent
    PipeError = 1 << 10  #: Csum's field does not lie wholly inside the PDU: it was not sent
    Own = 1 << 31       #: the card owns the descriptor


class RxFlag(enum.IntFlag):
    """Bits 31:16 of word 2 of a receive (free-buffer) descriptor; bits 15:0 are the VCI. The
    host posts Own = 1; the card writes back Own = 0, the VCI, the length and these bits."""

    First = 1 << 16     #: the PDU's first buffer
    Last = 1 << 17      #: the PDU's last buffer (its completion entry follows)
    CrcError = 1 << 18  #: the PDU's CRC-32 was wrong
    Oversize = 1 << 19  #: the PDU was oversize: truncated here
    LostCell = 1 << 20  #: the trailer's length disagrees with the cells received
    DmaFault = 1 << 21  #: writing the buffer was refused: its contents are undefined
    Own = 1 << 31       #: the card owns the descriptor


class CqKind(enum.IntEnum):
    """Completion entry kinds (0: never written)."""

    Tx = 1  #: a transmitted PDU's descriptors are free again
    Rx = 2  #: a received PDU (or a dropped one, with CqError bits)


class CqError(enum.IntFlag):
    """Completion entry ``errors`` (bits 15:8 of word 0); 0 = the PDU is good."""

    CrcError = 1 << 0
    Oversize = 1 << 1
    LostCell = 1 << 2
    NoBuffer = 1 << 3
    DmaFault = 1 << 4
    BadVc = 1 << 5
    PipeError = 1 << 6  #: a Tx PDU's checksum field lies outside it (:attr:`TxFlag.PipeError`)


class RxSwap(enum.IntEnum):
    """A VC's receive swap (VcEntry ``rx_swap``): how the card reorders the payload bytes from
    ``2 * pipe_start`` on as they go into memory. A write of the reserved value 3 stores
    :attr:`NoSwap` (the card reads back what it will do)."""

    NoSwap = 0    #: bytes as received
    Halfword = 1  #: swap the two bytes of each 16-bit unit
    Word = 2      #: reverse the four bytes of each 32-bit unit


def csum_field_offset(csum_start: int, csum_field: int) -> int:
    """Byte offset in the PDU payload of the transmit checksum field, ``2 * (start + field)``."""
    return 2 * (csum_start + csum_field)


def csum_field_fits(length: int, csum_start: int, csum_field: int) -> bool:
    """True when the 16-bit checksum field lies wholly inside a PDU of ``length`` bytes (else
    the card refuses the PDU with :attr:`TxFlag.PipeError`)."""
    return csum_field_offset(csum_start, csum_field) + 2 <= length


def tx_csum_result(folded: int) -> int:
    """The field the card sends for a folded 16-bit ones'-complement sum ``folded``.

    The complement ``~folded & 0xFFFF``, except that a complement of 0 is sent as 0xFFFF: UDP
    reserves 0 for "no checksum" and sends a computed 0 as all ones (RFC 768); TCP receivers
    accept either, since 0 and 0xFFFF are the two zeros of ones'-complement arithmetic
    (RFC 1624 section 3). A sum folds to 0xFFFF only when the bytes are not all zero, so
    0xFFFF is what a receiver computes for this field whatever the sum was.

    Raises
    ------
    ValueError
        If ``folded`` is not 0 .. 0xFFFF.
    """
    _check_u("folded", folded, 16)
    return (~folded & 0xFFFF) or 0xFFFF


# --- Amaranth data layouts (fields listed LSB first) ------------------------------------------
#: Control (:class:`Control`).
control_layout = data.StructLayout({"reset": 1, "tx_enable": 1, "rx_enable": 1, "loopback": 1,
                                    "res": 28})
#: Status (:class:`Status`).
status_layout = data.StructLayout({"tx_on": 1, "rx_on": 1, "fault": 1, "cq_full": 1, "res": 28})
#: IrqCause / IrqEnable (:class:`Irq`).
irq_layout = data.StructLayout({"completion": 1, "cq_full": 1, "error": 1, "link": 1,
                                "res": 28})
#: LinkStatus (:class:`Link`).
link_layout = data.StructLayout({"signal": 1, "frame_lock": 1, "cell_lock": 1, "res": 29})
#: A VC table entry as VcEntry reads it (:class:`VcEntry`).
vc_entry_layout = data.StructLayout({
    "enable": 1, "aal5": 1, "pool": 2, "state": 2, "res0": 2, "owner": 8,
    "rx_csum": 1, "rx_swap": 2, "pipe_start": 8, "res1": 5,
})
#: A transmit descriptor (:class:`TxDescriptor`); word 2 is :class:`TxFlag`.
tx_descriptor_layout = data.StructLayout({
    "addr": 32,
    "length": 16, "vci": 16,
    "first": 1, "last": 1, "csum": 1, "res0": 5, "dma_fault": 1, "bad_vc": 1, "pipe_error": 1,
    "csum_start": 8, "csum_field": 8, "res1": 4, "own": 1,
    "tag": 32,
})
#: A receive (free-buffer) descriptor (:class:`RxDescriptor`); word 2 is VCI and :class:`RxFlag`.
rx_descriptor_layout = data.StructLayout({
    "addr": 32,
    "size": 16, "length": 16,
    "vci": 16, "first": 1, "last": 1, "crc_error": 1, "oversize": 1, "lost_cell": 1,
    "dma_fault": 1, "res": 9, "own": 1,
    "tag": 32,
})
#: A completion queue entry (:class:`Completion`).
completion_layout = data.StructLayout({
    "kind": 2, "pool": 2, "res0": 3, "phase": 1, "errors": 8, "index": 16,
    "length": 16, "vci": 16,
    "csum": 16, "cells": 16,
    "tag": 32,
})


# --- Pack / unpack ----------------------------------------------------------------------------
class _Entry:
    """Mixin: a frozen dataclass whose fields are named fields of ``_layout`` (the ``res*``
    fields are zero when packed and ignored when unpacked)."""

    _layout: data.StructLayout
    _enums: dict = {}

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            _check_u(f"{name}.{f.name}", int(value) if isinstance(value, enum.Enum) else value,
                     self._layout[f.name].width)
            if f.name in self._enums:
                object.__setattr__(self, f.name, self._enums[f.name](value))
        self._validate()

    def _validate(self) -> None:
        pass

    def to_int(self) -> int:
        """The entry as one integer (bit ``i`` is layout bit ``i``)."""
        value = 0
        for f in fields(self):
            value |= int(getattr(self, f.name)) << self._layout[f.name].offset
        return value

    @classmethod
    def from_int(cls, value: int):
        """Inverse of :meth:`to_int` (reserved bits ignored)."""
        _check_u(f"{cls.__name__} value", value, cls._layout.size)
        kw = {}
        for f in fields(cls):
            fld = cls._layout[f.name]
            kw[f.name] = (value >> fld.offset) & ((1 << fld.width) - 1)
        return cls(**kw)

    def words(self) -> tuple[int, ...]:
        """The entry as 32-bit words, word 0 first."""
        v = self.to_int()
        return tuple((v >> (32 * i)) & 0xFFFF_FFFF for i in range(self._layout.size // 32))

    @classmethod
    def from_words(cls, words) -> "_Entry":
        """Inverse of :meth:`words`."""
        words = tuple(words)
        n = cls._layout.size // 32
        if len(words) != n:
            raise ValueError(f"a {cls.__name__} is {n} words, not {len(words)}")
        value = 0
        for i, w in enumerate(words):
            value |= _check_u(f"{cls.__name__} word {i}", w, 32) << (32 * i)
        return cls.from_int(value)

    def pack(self) -> bytes:
        """The bytes as they sit in (little-endian) host memory."""
        return self.to_int().to_bytes(self._layout.size // 8, "little")

    @classmethod
    def unpack(cls, raw: bytes | bytearray | memoryview):
        """Inverse of :meth:`pack`."""
        n = cls._layout.size // 8
        if len(raw) != n:
            raise ValueError(f"a {cls.__name__} is {n} bytes, not {len(raw)}")
        return cls.from_int(int.from_bytes(bytes(raw), "little"))


@dataclass(frozen=True)
class VcEntry(_Entry):
    """One VC's entry in the card's table (read and written through VcIndex / VcEntry).

    Parameters
    ----------
    enable
        The VC carries traffic (cells on a disabled VC count as UnknownVc; a transmit
        descriptor naming one completes with BadVc).
    aal5
        1: reassemble AAL5 PDUs (CRC-32, trailer); 0: raw cells, each one 48-byte "PDU".
    pool
        The receive pool whose buffers take this VC's PDUs.
    state
        :class:`VcState` (the card's; writes of the field are ignored).
    owner
        The principal the card names to host memory for every DMA of this VC (0: the kernel).
    rx_csum
        (AAL5) 1: the card sums the received payload bytes ``[2 * pipe_start, length)`` (RFC
        1071, folded, not complemented) into the completion's ``csum``.
    rx_swap
        :class:`RxSwap` of the payload from ``2 * pipe_start`` on, on its way into memory.
    pipe_start
        Where the receive pipes start, in 16-bit units of the payload (0 .. 255).

    Raises
    ------
    ValueError
        If ``rx_swap`` is the reserved 3.
    """

    _layout = vc_entry_layout
    _enums = {"state": VcState, "rx_swap": RxSwap}

    enable: int = 0
    aal5: int = 1
    pool: int = 0
    state: VcState = VcState.Idle
    owner: int = 0
    rx_csum: int = 0
    rx_swap: RxSwap = RxSwap.NoSwap
    pipe_start: int = 0


@dataclass(frozen=True)
class TxDescriptor(_Entry):
    """A transmit descriptor: one buffer of a PDU (scatter/gather: a PDU is First .. Last).

    Parameters
    ----------
    addr, length
        The buffer: any byte address and 0 .. 65535 bytes (the card aligns bytes itself).
    vci
        The VC (every descriptor of a PDU names the same one).
    first, last, own
        :class:`TxFlag` bits; ``own`` = 1 hands the descriptor to the card.
    csum, csum_start, csum_field
        (Read from the PDU's First descriptor only.) ``csum`` = 1: the card sends the Internet
        checksum of payload bytes ``[2 * csum_start, length)`` in the 16-bit field at byte
        ``2 * (csum_start + csum_field)``, which holds the host's seed (the pseudo-header sum,
        not complemented): :func:`tx_csum_result` of the folded sum.
    dma_fault, bad_vc, pipe_error
        Written back by the card.
    tag
        The host's cookie, echoed in the completion entry.
    """

    _layout = tx_descriptor_layout

    addr: int = 0
    length: int = 0
    vci: int = 0
    first: int = 0
    last: int = 0
    csum: int = 0
    dma_fault: int = 0
    bad_vc: int = 0
    pipe_error: int = 0
    csum_start: int = 0
    csum_field: int = 0
    own: int = 0
    tag: int = 0


@dataclass(frozen=True)
class RxDescriptor(_Entry):
    """A receive free-buffer descriptor in a pool's ring.

    Parameters
    ----------
    addr, size
        The buffer, posted by the host: word aligned, a whole number of words.
    length
        Bytes the card wrote into it (PDU payload only: pad and trailer are not delivered).
    vci, first, last, crc_error, oversize, lost_cell, dma_fault
        Written back by the card (:class:`RxFlag`).
    own
        1 (posted by the host): the card may fill it; the card writes 0 when done.
    tag
        The host's cookie, echoed in the completion entry of the PDU's last buffer.

    Raises
    ------
    ValueError
        If ``addr`` or ``size`` is not a multiple of 4.
    """

    _layout = rx_descriptor_layout

    addr: int = 0
    size: int = 0
    length: int = 0
    vci: int = 0
    first: int = 0
    last: int = 0
    crc_error: int = 0
    oversize: int = 0
    lost_cell: int = 0
    dma_fault: int = 0
    own: int = 0
    tag: int = 0

    def _validate(self) -> None:
        if self.addr % 4 or self.size % 4:
            raise ValueError(f"a receive buffer must be word aligned and a whole number of words, "
                             f"not addr={self.addr:#x} size={self.size}")


@dataclass(frozen=True)
class Completion(_Entry):
    """A completion queue entry, written by the card.

    Parameters
    ----------
    kind
        :class:`CqKind`.
    pool
        The receive pool (Rx).
    phase
        1 on the card's first pass over the queue, 0 on the second, and so on: the host finds
        new entries without reading CqProducer.
    index
        Ring index of the PDU's last descriptor (transmit ring or pool ring), or
        :data:`NO_INDEX` when none was consumed.
    length
        PDU payload bytes (Rx: as delivered; Tx: as sent).
    vci
        The VC.
    errors
        :class:`CqError` bits; 0 = good.
    csum
        Rx on a VC with ``rx_csum``: the folded 16-bit ones'-complement sum of the payload
        bytes ``[2 * pipe_start, length)`` as received (not complemented: with the
        pseudo-header added, a good TCP/UDP packet gives 0xFFFF); otherwise 0.
    cells
        Cells the PDU took on the link.
    tag
        The tag of the descriptor at ``index`` (0 with NO_INDEX).
    """

    _layout = completion_layout
    _enums = {"kind": CqKind, "errors": CqError}

    kind: CqKind = CqKind.Rx
    pool: int = 0
    phase: int = 1
    index: int = 0
    length: int = 0
    vci: int = 0
    errors: CqError = CqError(0)
    csum: int = 0
    cells: int = 0
    tag: int = 0

    @classmethod
    def from_int(cls, value: int) -> "Completion":
        """Inverse of :meth:`to_int`.

        Raises
        ------
        ValueError
            If the kind is 0 (an entry the card never wrote) or 3.
        """
        kind = value & 3
        if kind not in {k.value for k in CqKind}:
            raise ValueError(f"completion kind {kind} is not a CqKind (an unwritten entry?)")
        return super().from_int(value)
