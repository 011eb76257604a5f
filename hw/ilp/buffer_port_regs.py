"""The buffer-port pipe block's register map and byte layouts: the one source of truth.

The block (:mod:`hw.ilp.buffer_port`, its twin :mod:`hw.ilp.buffer_port_model`; the design:
docs/ilp_pipes.md, "A block at the LANCE buffer port") sits on a card's host bus in front of
the card's buffer memory and streams the bytes of a window of that buffer through a pipe list
as the host writes them (transmit) or reads them (receive). Plain Python, no Amaranth.

Registers (32-bit words at ``regs_addr + offset``, word addresses of the host bus)
------------------------------------------------------------------------------------
``CTL`` (offset 0)
    Write: ``START`` (bit 0) opens a window of ``LENGTH`` bytes from ``WSTART`` (none when
    ``LENGTH`` is 0); ``RX`` (bit 1) says which accesses feed it: 0 the host's writes
    (transmit), 1 its reads (receive). Every write to ``CTL`` first abandons the window open
    (its words dropped, the pipes' accumulators and results cleared, ``DONE`` and ``ORDER``
    cleared): writing 0 stops the block. Read: the status bits :class:`Status`.
``WSTART`` (offset 1), ``LENGTH`` (offset 2)
    The window, in bytes of the buffer's data (:data:`WINDOW_BITS` bits each; higher bits
    are dropped). Read back as written.
``RESULT`` (offsets 3 ..)
    The pipe list's results (``PipeList.result_names`` order), read only: the last finished
    window's, 0 after a ``CTL`` write.

The LANCE card built with the block places them at ``hw.lance.registers.ILP_OFFSET``.
An access to any of them waits (bus wait states) while a finished window's last words are
still in the pipes: a result read right after the window's last buffer access returns that
window's results.
"""
from __future__ import annotations

import enum

__all__ = ["Layout", "Ctl", "Status", "CTL", "WSTART", "LENGTH", "RESULT", "WINDOW_BITS",
           "check_layout", "check_port", "data_bytes", "window_words",
           "register_count"]


class Layout(enum.Enum):
    """How the buffer's data bytes sit in the host's 32-bit bus words (little-endian host).

    Contiguous
        The PMAD-AA option's SRAM (``hw/lance``): bus word ``a`` holds data bytes
        ``4a .. 4a + 3``, byte ``4a + i`` in bits ``8i .. 8i + 7``.
    Half
        The DECstation 3100's on-board buffer, 16 bits in every 32
        (``sw.libos.ilp.movement.LANCE_PIO``): bus word ``a`` holds data bytes ``2a`` and
        ``2a + 1`` in its low half (bits 0-7 and 8-15); the high half is not data.
    """

    Contiguous = "contiguous"
    Half = "16-in-32"

    @property
    def bytes_per_word(self) -> int:
        """Data bytes one bus word carries."""
        return 4 if self is Layout.Contiguous else 2


class Ctl(enum.IntFlag):
    """``CTL`` write bits."""

    START = 1 << 0
    RX = 1 << 1


class Status(enum.IntFlag):
    """``CTL`` read bits: ``ARMED`` (the window still expects bytes), ``RX`` (as written),
    ``DONE`` (the window finished: ``RESULT`` holds its results), ``ORDER`` (an access inside
    the window was not at the block's cursor, the next word it expects: that access was not
    fed, so the results do not cover the window as the buffer holds it)."""

    ARMED = 1 << 0
    RX = 1 << 1
    DONE = 1 << 2
    ORDER = 1 << 3


CTL, WSTART, LENGTH, RESULT = 0, 1, 2, 3
#: Width of ``WSTART`` and ``LENGTH`` (16 MiB of buffer data: more than any card here has).
WINDOW_BITS = 24


def check_layout(layout) -> Layout:
    """``layout`` (a :class:`Layout` or its value) as a :class:`Layout`.

    Raises
    ------
    ValueError
        Naming the layouts there are.
    """
    try:
        return Layout(layout)
    except ValueError:
        raise ValueError(f"layout must be one of {[x.value for x in Layout]}, "
                         f"not {layout!r}") from None


def check_port(*, addr_width: int, regs_addr: int, results: int) -> None:
    """Check a block's bus parameters.

    Raises
    ------
    ValueError
        If ``addr_width`` is not an int from 4 to 30 or the ``register_count(results)``
        words from ``regs_addr`` do not fit in its address space.
    """
    if isinstance(addr_width, bool) or not isinstance(addr_width, int) or not 4 <= addr_width <= 30:
        raise ValueError(f"addr_width must be an int from 4 to 30, not {addr_width!r}")
    span = register_count(results)
    if (isinstance(regs_addr, bool) or not isinstance(regs_addr, int) or regs_addr < 0
            or regs_addr + span > 1 << addr_width):
        raise ValueError(f"regs_addr must be a word address with {span} words of room below "
                         f"{1 << addr_width}, not {regs_addr!r}")


def register_count(results: int) -> int:
    """Words of register space a block with ``results`` result registers decodes."""
    return RESULT + results


def data_bytes(layout: Layout, word: int) -> bytes:
    """The data bytes bus word ``word`` carries, in buffer order."""
    return int(word & 0xFFFF_FFFF).to_bytes(4, "little")[:layout.bytes_per_word]


def window_words(layout: Layout, start: int, length: int) -> tuple[int, int]:
    """The first and last bus word address (relative to the buffer) of a window of
    ``length`` >= 1 data bytes from ``start``."""
    b = layout.bytes_per_word
    return start // b, (start + length - 1) // b
