"""The LANCE-style Ethernet card's register map: the one source of truth.

Gateware (:mod:`hw.lance.gateware`), the transaction-level model and the driver all import this
module. It describes the card as the DECstation's PMAD-AA TURBOchannel option presents an AMD
Am7990 LANCE:

* a 2 MiB option window holding the buffer SRAM at 0x0, the LANCE's two ports (RDP, RAP) at
  0x100000 and the station-address ROM at 0x1c0000 (CALIBRATION.md, "Ethernet card and LANCE",
  from 4.4BSD pmax ``if_le.c``);
* the control and status registers CSR0-CSR3 reached through RAP/RDP;
* the initialization block and the receive/transmit descriptor rings that live in buffer memory.

Naming convention
-----------------
Register *bits* are :class:`enum.IntFlag` members named exactly as in the Am7990 data sheet
(``CSR0.INEA``, ``RMD1.OWN``, ``TMD3.RTRY``), in upper case. STYLE.md #6 prefers CamelCase enum
members, but these names are acronyms that every LANCE driver (``LE_C0_INEA``, ``LE_R1_OWN``) and
the data sheet spell this way; ``Inea`` or ``Babl`` would be unrecognisable to the engineers who
must check this map against the data sheet. Enums that are *ours* (not data-sheet fields) use
CamelCase. Multi-bit fields (BCNT, MCNT, HADR, TDR, RLEN) are integers in the dataclasses.

Byte order
----------
The LANCE is a 16-bit bus master. On the little-endian DECstation (CSR3.BSWP = 0), a 16-bit word
``w`` at buffer address ``a`` is stored as byte ``w & 0xff`` at ``a`` and ``w >> 8`` at ``a + 1``.
The ``pack``/``unpack`` helpers use that order.

Everything in this module except the ``*_layout`` Amaranth ``data`` layouts at the end is plain
Python; those layouts only import :mod:`amaranth.lib.data` (no simulator), so the model can import
this module cheaply.
"""
from __future__ import annotations

import enum
import struct
import types
from dataclasses import dataclass, field

from amaranth.lib import data

from ..fields import check_unsigned as _check_u

__all__ = [
    "RAM_OFFSET", "LANCE_OFFSET", "ROM_OFFSET", "RDP_OFFSET", "RAP_OFFSET", "WINDOW_SIZE",
    "ROM_ESAR_OFFSET", "ROM_ESAR_STRIDE", "COUNTERS_OFFSET", "ILP_OFFSET", "Counter",
    "DEFAULT_MAC",
    "BUFFER_RAM_SIZE_DEFAULT", "BUFFER_SIZE", "MAX_FRAME", "MIN_FRAME", "FCS_BYTES",
    "MAX_RING_LOG2", "DESCRIPTOR_BYTES", "INIT_BLOCK_BYTES",
    "Csr", "CSR0", "CSR3", "Mode", "RMD1", "TMD1", "TMD3",
    "plain_bits", "csr1_csr2", "iadr_from_csr1_csr2", "bcnt_encode", "bcnt_decode",
    "InitBlock", "RxDescriptor", "TxDescriptor", "RingSizes", "ring_sizes", "BufferLayout",
    "csr0_layout", "mode_layout", "init_block_layout", "rmd1_layout", "tmd1_layout",
    "tmd3_layout", "rx_descriptor_layout", "tx_descriptor_layout",
]

# --- The PMAD-AA option window (byte offsets from the option's TURBOchannel base) ------------
#: Buffer SRAM, contiguous in the CPU's view on the PMAD-AA (CALIBRATION.md, NetBSD pmax if_le.c).
RAM_OFFSET = 0x000000
#: The LANCE's register ports (CALIBRATION.md, 4.4BSD pmax if_le.c ``LE_OFFSET_LANCE``).
LANCE_OFFSET = 0x100000
#: Station-address ROM (CALIBRATION.md, 4.4BSD pmax if_le.c ``LE_OFFSET_ROM``).
ROM_OFFSET = 0x1C0000
#: Register data port, then register address port, each a 16-bit port in a 32-bit slot
#: (4.4BSD pmax ``struct lereg1``: ``ler1_rdp; pad0; ler1_rap; pad1``).
RDP_OFFSET = LANCE_OFFSET + 0x0
RAP_OFFSET = LANCE_OFFSET + 0x4
#: A TURBOchannel option slot decodes 4 MiB; the PMAD-AA uses the first 2 MiB.
WINDOW_SIZE = 0x200000
#: The card's error counters (ours, not the Am7990's: the data sheet only has CSR0.MISS), one
#: read-only 16-bit saturating counter per word from here, in :class:`Counter` order. Writing a
#: counter's word clears it. They make "dropped and counted" visible to tests and drivers.
COUNTERS_OFFSET = LANCE_OFFSET + 0x10
#: The registers of the optional pipe block at the buffer port (ours, not the PMAD-AA's: a
#: card built with ``ilp_pipes``; :mod:`hw.ilp.buffer_port_regs`, docs/ilp_pipes.md "A block
#: at the LANCE buffer port"): ``CTL``, ``WSTART``, ``LENGTH``, ``RESULT``... one per word from
#: here. Nothing else in the window decodes these words; without the block they read 0.
ILP_OFFSET = 0x180000
#: The Ethernet address sits one byte per 32-bit word starting two bytes into the ROM
#: (NetBSD ``dev/tc/if_le_dec.c``: ``enaddr = rom + 2``, stepping by 4).
ROM_ESAR_OFFSET = 2
ROM_ESAR_STRIDE = 4

# --- Sizes ------------------------------------------------------------------------------------
#: The PMAD-AA carries 128 KiB of buffer SRAM (CALIBRATION.md; NetBSD uses 64 KiB of it).
BUFFER_RAM_SIZE_DEFAULT = 128 * 1024
#: Bytes per receive/transmit buffer (CALIBRATION.md, 4.4BSD if_lereg.h).
BUFFER_SIZE = 1520
#: Longest legal frame including FCS; longer is babble (IEEE 802.3; CALIBRATION.md).
MAX_FRAME = 1518
#: Shortest legal frame including FCS; shorter is a runt (IEEE 802.3; CALIBRATION.md).
MIN_FRAME = 64
FCS_BYTES = 4
#: RLEN/TLEN are 3-bit log2 ring lengths: 1..128 entries (Am7990 data sheet; CALIBRATION.md).
MAX_RING_LOG2 = 7
#: A descriptor is four 16-bit words and must be quadword (8-byte) aligned.
DESCRIPTOR_BYTES = 8
#: The initialization block is twelve 16-bit words.
INIT_BLOCK_BYTES = 24
#: The LANCE drives 24 address lines.
_ADDR_MASK = 0xFF_FFFF


def _check_words(name: str, words: tuple[int, ...] | list[int], n: int) -> tuple[int, ...]:
    words = tuple(words)
    if len(words) != n:
        raise ValueError(f"{name} needs {n} 16-bit words, not {len(words)}")
    for i, w in enumerate(words):
        _check_u(f"{name}[{i}]", w, 16)
    return words


class Counter(enum.IntEnum):
    """The error counters at :data:`COUNTERS_OFFSET` (word index from there)."""

    MISSED = 0        # frames for us with no receive buffer owned by the card (CSR0.MISS)
    FCS_ERRORS = 1    # frames for us with a bad FCS (handed up, RMD1.CRC) or rx_er (dropped)
    RUNTS = 2         # frames shorter than 64 bytes (FCS included) on the wire
    TOO_LONG = 3      # frames for us longer than 1518 bytes
    COLLISIONS = 4    # collisions our transmitter was in
    RETRY_ERRORS = 5  # frames given up after 16 attempts (or one with MODE.DRTY): TMD3.RTRY


#: The station address the card's ROM holds unless told otherwise (DEC's OUI 08:00:2b).
DEFAULT_MAC = bytes.fromhex("08002b000001")


# --- Control and status registers -------------------------------------------------------------
class Csr(enum.IntEnum):
    """Register numbers written to RAP to select what RDP reads and writes."""

    CSR0 = 0  # control and status
    CSR1 = 1  # init block address, bits 15:1 (bit 0 must be 0)
    CSR2 = 2  # init block address, bits 23:16 in bits 7:0
    CSR3 = 3  # bus master interface: BSWP, ACON, BCON


class CSR0(enum.IntFlag):
    """CSR0 bits (Am7990 data sheet names).

    ERR, BABL, CERR, MISS, MERR, RINT, TINT and IDON are cleared by writing 1; INEA, STRT,
    INIT, STOP and TDMD are set by writing 1; INTR, RXON, TXON and ERR are read-only summaries.
    """

    INIT = 1 << 0   # read the init block
    STRT = 1 << 1   # start the transmitter and receiver
    STOP = 1 << 2   # stop everything (reset)
    TDMD = 1 << 3   # transmit demand: poll the transmit ring now
    TXON = 1 << 4   # transmitter on
    RXON = 1 << 5   # receiver on
    INEA = 1 << 6   # interrupt enable
    INTR = 1 << 7   # interrupt flag: OR of BABL MISS MERR RINT TINT IDON
    IDON = 1 << 8   # initialization done
    TINT = 1 << 9   # transmitter interrupt
    RINT = 1 << 10  # receiver interrupt
    MERR = 1 << 11  # memory error (bus master timeout)
    MISS = 1 << 12  # missed frame: no receive buffer owned by the LANCE
    CERR = 1 << 13  # collision error (SQE heartbeat missing)
    BABL = 1 << 14  # babble: transmitted more than 1518 bytes
    ERR = 1 << 15   # OR of BABL CERR MISS MERR

    @classmethod
    def write_one_to_clear(cls) -> "CSR0":
        """Bits the host clears by writing 1."""
        return cls.BABL | cls.CERR | cls.MISS | cls.MERR | cls.RINT | cls.TINT | cls.IDON

    @classmethod
    def interrupt_sources(cls) -> "CSR0":
        """Bits whose OR is INTR (CERR sets ERR but does not interrupt)."""
        return cls.BABL | cls.MISS | cls.MERR | cls.RINT | cls.TINT | cls.IDON

    @classmethod
    def error_sources(cls) -> "CSR0":
        """Bits whose OR is ERR."""
        return cls.BABL | cls.CERR | cls.MISS | cls.MERR


class CSR3(enum.IntFlag):
    """CSR3: how the LANCE drives the host bus (Am7990 data sheet)."""

    BCON = 1 << 0  # byte control: pin 16 is /BM1 or BUSAKO
    ACON = 1 << 1  # ALE control: ALE active low
    BSWP = 1 << 2  # byte swap for big-endian hosts (the DECstation is little-endian: 0)


def plain_bits(flags: type[enum.IntFlag]) -> types.SimpleNamespace:
    """The members of ``flags`` as plain ints (``plain_bits(CSR0).RINT``), for the per-frame
    paths of the model and the driver, where IntFlag arithmetic costs a few percent of a run."""
    return types.SimpleNamespace(**{m.name: int(m) for m in flags})


def csr1_csr2(iadr: int) -> tuple[int, int]:
    """Split an init block address into (CSR1, CSR2).

    Raises
    ------
    ValueError
        If ``iadr`` does not fit in 24 bits or is odd (the LANCE reads it as 16-bit words).
    """
    _check_u("init block address", iadr, 24)
    if iadr & 1:
        raise ValueError(f"init block address must be word aligned, not {iadr:#x}")
    return iadr & 0xFFFF, iadr >> 16


def iadr_from_csr1_csr2(csr1: int, csr2: int) -> int:
    """Join CSR1 and CSR2 into the init block address (CSR1 bit 0 and CSR2 bits 15:8 ignored)."""
    _check_u("CSR1", csr1, 16)
    _check_u("CSR2", csr2, 16)
    return ((csr2 & 0xFF) << 16) | (csr1 & 0xFFFE)


# --- Initialization block ---------------------------------------------------------------------
class Mode(enum.IntFlag):
    """The init block's MODE word (Am7990 data sheet names)."""

    DRX = 1 << 0    # disable receiver
    DTX = 1 << 1    # disable transmitter
    LOOP = 1 << 2   # internal/external loopback
    DTCR = 1 << 3   # disable transmit CRC (the host supplies the FCS)
    COLL = 1 << 4   # force collision (loopback test)
    DRTY = 1 << 5   # disable retry after collision
    INTL = 1 << 6   # internal loopback (with LOOP)
    PROM = 1 << 15  # promiscuous: accept every destination address


def _ring_log2(name: str, entries: int) -> int:
    if not isinstance(entries, int) or isinstance(entries, bool):
        raise TypeError(f"{name} must be an int, not {entries!r}")
    if entries < 1 or entries > (1 << MAX_RING_LOG2) or entries & (entries - 1):
        raise ValueError(f"{name} must be a power of two from 1 to 128, not {entries!r}")
    return entries.bit_length() - 1


def _check_ring_addr(name: str, addr: int) -> None:
    _check_u(name, addr, 24)
    if addr % DESCRIPTOR_BYTES:
        raise ValueError(f"{name} must be quadword (8-byte) aligned, not {addr:#x}")


@dataclass(frozen=True)
class InitBlock:
    """The initialization block the LANCE reads at INIT.

    Parameters
    ----------
    mode
        The MODE word.
    padr
        The 6-byte station address, in wire order (``padr[0]`` is sent first; its bit 0 is the
        multicast bit).
    ladrf
        The 64-bit logical address (multicast hash) filter; bit ``i`` is LADRF bit ``i``.
    rdra, tdra
        Receive/transmit descriptor ring addresses (24 bits, quadword aligned).
    rlen, tlen
        Ring lengths in entries (powers of two, 1 to 128); encoded as log2 in RLEN/TLEN.

    Raises
    ------
    ValueError
        If a field does not fit or is misaligned.
    """

    mode: Mode = Mode(0)
    padr: bytes = bytes(6)
    ladrf: int = 0
    rdra: int = 0
    rlen: int = 1
    tdra: int = 0
    tlen: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(_check_u("mode", int(self.mode), 16)))
        if not isinstance(self.padr, (bytes, bytearray)) or len(self.padr) != 6:
            raise ValueError(f"padr must be 6 bytes, not {self.padr!r}")
        object.__setattr__(self, "padr", bytes(self.padr))
        _check_u("ladrf", self.ladrf, 64)
        _check_ring_addr("rdra", self.rdra)
        _check_ring_addr("tdra", self.tdra)
        _ring_log2("rlen", self.rlen)
        _ring_log2("tlen", self.tlen)

    def encode(self) -> tuple[int, ...]:
        """The twelve 16-bit words at IADR+0 .. IADR+0x16."""
        p = self.padr
        return (
            int(self.mode),
            p[0] | p[1] << 8, p[2] | p[3] << 8, p[4] | p[5] << 8,
            self.ladrf & 0xFFFF, (self.ladrf >> 16) & 0xFFFF,
            (self.ladrf >> 32) & 0xFFFF, (self.ladrf >> 48) & 0xFFFF,
            self.rdra & 0xFFFF, _ring_log2("rlen", self.rlen) << 13 | self.rdra >> 16,
            self.tdra & 0xFFFF, _ring_log2("tlen", self.tlen) << 13 | self.tdra >> 16,
        )

    @classmethod
    def decode(cls, words: tuple[int, ...] | list[int]) -> "InitBlock":
        """Inverse of :meth:`encode` (reserved bits 12:8 of the ring words are ignored)."""
        w = _check_words("init block", words, 12)
        padr = b"".join(struct.pack("<H", x) for x in w[1:4])
        ladrf = w[4] | w[5] << 16 | w[6] << 32 | w[7] << 48
        return cls(
            mode=Mode(w[0]), padr=padr, ladrf=ladrf,
            rdra=(w[9] & 0xFF) << 16 | w[8], rlen=1 << (w[9] >> 13),
            tdra=(w[11] & 0xFF) << 16 | w[10], tlen=1 << (w[11] >> 13),
        )

    def pack(self) -> bytes:
        """The 24 bytes as they sit in (little-endian) buffer memory."""
        return struct.pack("<12H", *self.encode())

    @classmethod
    def unpack(cls, raw: bytes) -> "InitBlock":
        """Inverse of :meth:`pack`."""
        if len(raw) != INIT_BLOCK_BYTES:
            raise ValueError(f"an init block is {INIT_BLOCK_BYTES} bytes, not {len(raw)}")
        return cls.decode(struct.unpack("<12H", raw))


# --- Descriptors ------------------------------------------------------------------------------
def bcnt_encode(size: int) -> int:
    """Encode a buffer size as the descriptor's BCNT field: 12-bit two's complement, with the
    four ONES bits 15:12 set, as the data sheet requires (RMD2/TMD2).

    Raises
    ------
    ValueError
        If ``size`` is not 1..4096 (the LANCE's 12-bit count).
    """
    if not isinstance(size, int) or not 1 <= size <= 4096:
        raise ValueError(f"buffer size must be 1..4096 bytes, not {size!r}")
    return 0xF000 | (-size & 0x0FFF)


def bcnt_decode(word: int) -> int:
    """Inverse of :meth:`bcnt_encode`: the buffer size in bytes (0 in BCNT means 4096)."""
    _check_u("BCNT word", word, 16)
    return (-(word & 0x0FFF)) & 0x0FFF or 4096


class RMD1(enum.IntFlag):
    """Receive descriptor word 1, bits 15:8 (bits 7:0 are HADR, the buffer address's 23:16)."""

    ENP = 1 << 8    # end of packet: this buffer holds the frame's last byte
    STP = 1 << 9    # start of packet: this buffer holds the frame's first byte
    BUFF = 1 << 10  # buffer error: chained without a following owned descriptor
    CRC = 1 << 11   # FCS error
    OFLO = 1 << 12  # overflow: the FIFO overran (frame lost)
    FRAM = 1 << 13  # framing error: non-integral byte count *and* an FCS error
    ERR = 1 << 14   # OR of FRAM OFLO CRC BUFF
    OWN = 1 << 15   # 1: the LANCE owns this descriptor; 0: the host does


class TMD1(enum.IntFlag):
    """Transmit descriptor word 1, bits 15:8 (bits 7:0 are HADR).

    Bit 13 is reserved (RES, write 0) on the Am7990; the Am79C90 C-LANCE names it ADD_FCS
    (append the FCS to this frame even when MODE.DTCR is set). We implement the C-LANCE meaning.
    """

    ENP = 1 << 8      # end of packet
    STP = 1 << 9      # start of packet
    DEF = 1 << 10     # the LANCE had to defer to traffic before sending
    ONE = 1 << 11     # exactly one retry was needed
    MORE = 1 << 12    # more than one retry was needed
    ADD_FCS = 1 << 13
    ERR = 1 << 14     # OR of the TMD3 errors
    OWN = 1 << 15


class TMD3(enum.IntFlag):
    """Transmit descriptor word 3, bits 15:10 (bits 9:0 are TDR, time-domain reflectometry)."""

    RTRY = 1 << 10  # gave up after 16 attempts
    LCAR = 1 << 11  # loss of carrier during transmission
    LCOL = 1 << 12  # late collision (after the slot time)
    UFLO = 1 << 14  # FIFO underflow: memory did not keep up with the wire
    BUFF = 1 << 15  # buffer error: chained without a following owned descriptor


_RMD1_FLAGS = 0xFF00
_TMD1_FLAGS = 0xFF00
_TMD3_FLAGS = 0xDC00  # bit 13 is reserved
_TDR_MASK = 0x03FF


@dataclass(frozen=True)
class RxDescriptor:
    """A receive message descriptor (RMD0-RMD3).

    Parameters
    ----------
    addr
        24-bit buffer address (LADR in RMD0, HADR in RMD1 bits 7:0).
    flags
        The RMD1 status bits.
    size
        Buffer size in bytes (stored as BCNT, two's complement, in RMD2).
    mcnt
        Message byte count (RMD3 bits 11:0), written by the LANCE on the ENP descriptor; it
        includes the 4-byte FCS.
    """

    addr: int = 0
    flags: RMD1 = RMD1(0)
    size: int = BUFFER_SIZE
    mcnt: int = 0

    def __post_init__(self) -> None:
        _check_u("addr", self.addr, 24)
        flags = _check_u("flags", int(self.flags), 16)
        if flags & ~_RMD1_FLAGS:
            raise ValueError(f"RMD1 flags must only use bits 15:8, not {flags:#06x}")
        object.__setattr__(self, "flags", RMD1(flags))
        bcnt_encode(self.size)
        _check_u("mcnt", self.mcnt, 12)

    def encode(self) -> tuple[int, int, int, int]:
        """(RMD0, RMD1, RMD2, RMD3) as 16-bit words."""
        return (self.addr & 0xFFFF, int(self.flags) | self.addr >> 16,
                bcnt_encode(self.size), self.mcnt)

    @classmethod
    def decode(cls, words: tuple[int, ...] | list[int]) -> "RxDescriptor":
        """Inverse of :meth:`encode`."""
        w = _check_words("RMD", words, 4)
        return cls(addr=(w[1] & 0xFF) << 16 | w[0], flags=RMD1(w[1] & _RMD1_FLAGS),
                   size=bcnt_decode(w[2]), mcnt=w[3] & 0x0FFF)

    def pack(self) -> bytes:
        """The 8 bytes as they sit in (little-endian) buffer memory."""
        return struct.pack("<4H", *self.encode())

    @classmethod
    def unpack(cls, raw: bytes) -> "RxDescriptor":
        """Inverse of :meth:`pack`."""
        if len(raw) != DESCRIPTOR_BYTES:
            raise ValueError(f"a descriptor is {DESCRIPTOR_BYTES} bytes, not {len(raw)}")
        return cls.decode(struct.unpack("<4H", raw))


@dataclass(frozen=True)
class TxDescriptor:
    """A transmit message descriptor (TMD0-TMD3).

    Parameters
    ----------
    addr
        24-bit buffer address.
    flags
        The TMD1 control/status bits.
    size
        Bytes to send from this buffer (BCNT, two's complement, in TMD2).
    errors
        The TMD3 error bits.
    tdr
        Time-domain reflectometry count (TMD3 bits 9:0), valid with RTRY.
    """

    addr: int = 0
    flags: TMD1 = TMD1(0)
    size: int = 1
    errors: TMD3 = TMD3(0)
    tdr: int = 0

    def __post_init__(self) -> None:
        _check_u("addr", self.addr, 24)
        flags = _check_u("flags", int(self.flags), 16)
        if flags & ~_TMD1_FLAGS:
            raise ValueError(f"TMD1 flags must only use bits 15:8, not {flags:#06x}")
        object.__setattr__(self, "flags", TMD1(flags))
        bcnt_encode(self.size)
        errors = _check_u("errors", int(self.errors), 16)
        if errors & ~_TMD3_FLAGS:
            raise ValueError(f"TMD3 errors must only use bits 15,14,12:10, not {errors:#06x}")
        object.__setattr__(self, "errors", TMD3(errors))
        _check_u("tdr", self.tdr, 10)

    def encode(self) -> tuple[int, int, int, int]:
        """(TMD0, TMD1, TMD2, TMD3) as 16-bit words."""
        return (self.addr & 0xFFFF, int(self.flags) | self.addr >> 16,
                bcnt_encode(self.size), int(self.errors) | self.tdr)

    @classmethod
    def decode(cls, words: tuple[int, ...] | list[int]) -> "TxDescriptor":
        """Inverse of :meth:`encode` (the reserved TMD3 bit 13 is ignored)."""
        w = _check_words("TMD", words, 4)
        return cls(addr=(w[1] & 0xFF) << 16 | w[0], flags=TMD1(w[1] & _TMD1_FLAGS),
                   size=bcnt_decode(w[2]), errors=TMD3(w[3] & _TMD3_FLAGS),
                   tdr=w[3] & _TDR_MASK)

    def pack(self) -> bytes:
        """The 8 bytes as they sit in (little-endian) buffer memory."""
        return struct.pack("<4H", *self.encode())

    @classmethod
    def unpack(cls, raw: bytes) -> "TxDescriptor":
        """Inverse of :meth:`pack`."""
        if len(raw) != DESCRIPTOR_BYTES:
            raise ValueError(f"a descriptor is {DESCRIPTOR_BYTES} bytes, not {len(raw)}")
        return cls.decode(struct.unpack("<4H", raw))


# --- Ring sizes and the buffer-memory layout ----------------------------------------------------
@dataclass(frozen=True)
class RingSizes:
    """How many receive and transmit buffers a given buffer memory holds."""

    rx: int
    tx: int


def ring_sizes(buffer_ram: int = BUFFER_RAM_SIZE_DEFAULT) -> RingSizes:
    """Ring sizes the BSD drivers use: 32 rx + 8 tx in 64 KiB, 64 rx + 16 tx in 128 KiB
    (CALIBRATION.md, NetBSD am7990.c).

    Raises
    ------
    ValueError
        For a memory size the drivers do not define.
    """
    table = {64 * 1024: RingSizes(32, 8), 128 * 1024: RingSizes(64, 16)}
    try:
        return table[buffer_ram]
    except (KeyError, TypeError):
        raise ValueError(f"buffer RAM must be 64 KiB or 128 KiB, not {buffer_ram!r}") from None


@dataclass(frozen=True)
class BufferLayout:
    """Where the driver puts the init block, rings and buffers in buffer memory.

    The order follows 4.4BSD's ``struct lereg2``: init block, receive ring, transmit ring,
    receive buffers, transmit buffers. All addresses are LANCE (buffer-memory) addresses, which
    equal offsets from :data:`RAM_OFFSET` in the CPU's view of the PMAD-AA.

    Parameters
    ----------
    buffer_ram
        Size of the buffer memory used (64 or 128 KiB).
    """

    buffer_ram: int = BUFFER_RAM_SIZE_DEFAULT
    rings: RingSizes = field(init=False)
    init_block: int = field(init=False, default=0)
    rdra: int = field(init=False)
    tdra: int = field(init=False)
    rx_buffers: tuple[int, ...] = field(init=False)
    tx_buffers: tuple[int, ...] = field(init=False)
    end: int = field(init=False)

    def __post_init__(self) -> None:
        rings = ring_sizes(self.buffer_ram)
        rdra = INIT_BLOCK_BYTES  # 24 is already quadword aligned
        tdra = rdra + rings.rx * DESCRIPTOR_BYTES
        rxb = tdra + rings.tx * DESCRIPTOR_BYTES
        rx = tuple(rxb + i * BUFFER_SIZE for i in range(rings.rx))
        txb = rxb + rings.rx * BUFFER_SIZE
        tx = tuple(txb + i * BUFFER_SIZE for i in range(rings.tx))
        end = txb + rings.tx * BUFFER_SIZE
        if end > self.buffer_ram:  # cannot happen for the table above; guards edits to it
            raise ValueError(f"layout needs {end} bytes, more than {self.buffer_ram}")
        for name, value in (("rings", rings), ("rdra", rdra), ("tdra", tdra),
                            ("rx_buffers", rx), ("tx_buffers", tx), ("end", end)):
            object.__setattr__(self, name, value)

    def init(self, padr: bytes, mode: Mode = Mode(0), ladrf: int = 0) -> InitBlock:
        """The init block describing this layout."""
        return InitBlock(mode=mode, padr=padr, ladrf=ladrf, rdra=self.rdra, rlen=self.rings.rx,
                         tdra=self.tdra, tlen=self.rings.tx)

    def rmd(self, i: int) -> int:
        """Address of receive descriptor ``i``."""
        if not 0 <= i < self.rings.rx:
            raise IndexError(f"receive descriptor {i} out of range 0..{self.rings.rx - 1}")
        return self.rdra + i * DESCRIPTOR_BYTES

    def tmd(self, i: int) -> int:
        """Address of transmit descriptor ``i``."""
        if not 0 <= i < self.rings.tx:
            raise IndexError(f"transmit descriptor {i} out of range 0..{self.rings.tx - 1}")
        return self.tdra + i * DESCRIPTOR_BYTES


# --- Amaranth data layouts for the gateware (fields listed LSB first) ---------------------------
#: CSR0 as a 16-bit struct.
csr0_layout = data.StructLayout({
    "init": 1, "strt": 1, "stop": 1, "tdmd": 1, "txon": 1, "rxon": 1, "inea": 1, "intr": 1,
    "idon": 1, "tint": 1, "rint": 1, "merr": 1, "miss": 1, "cerr": 1, "babl": 1, "err": 1,
})
#: The init block's MODE word (:class:`Mode`).
mode_layout = data.StructLayout({
    "drx": 1, "dtx": 1, "loop": 1, "dtcr": 1, "coll": 1, "drty": 1, "intl": 1, "res": 8,
    "prom": 1,
})
#: The whole init block as its 24 bytes sit in buffer memory (MODE in bits 15:0; the ring
#: lengths are log2, as RLEN/TLEN; :class:`InitBlock`).
init_block_layout = data.StructLayout({
    "mode": mode_layout, "padr": 48, "ladrf": 64,
    "rdra": 24, "rres": 5, "rlen": 3, "tdra": 24, "tres": 5, "tlen": 3,
})
#: RMD1: HADR then the status bits.
rmd1_layout = data.StructLayout({
    "hadr": 8, "enp": 1, "stp": 1, "buff": 1, "crc": 1, "oflo": 1, "fram": 1, "err": 1, "own": 1,
})
#: TMD1: HADR then the control/status bits.
tmd1_layout = data.StructLayout({
    "hadr": 8, "enp": 1, "stp": 1, "def_": 1, "one": 1, "more": 1, "add_fcs": 1, "err": 1, "own": 1,
})
#: TMD3: TDR then the error bits.
tmd3_layout = data.StructLayout({
    "tdr": 10, "rtry": 1, "lcar": 1, "lcol": 1, "res": 1, "uflo": 1, "buff": 1,
})
#: A whole receive descriptor as the four words appear in memory (RMD0 in bits 15:0).
rx_descriptor_layout = data.StructLayout({
    "ladr": 16, "rmd1": rmd1_layout, "bcnt": 12, "ones": 4, "mcnt": 12, "zeros": 4,
})
#: A whole transmit descriptor (TMD0 in bits 15:0).
tx_descriptor_layout = data.StructLayout({
    "ladr": 16, "tmd1": tmd1_layout, "bcnt": 12, "ones": 4, "tmd3": tmd3_layout,
})
