"""The cards' data-movement rules: where a fused ILP loop puts the words it produced.

Dynamic ILP (the exokernel paper, section 7) composes the application's pipes with the data
movement of the network card present, so the data crosses the memory system once:

:data:`MEMORY`
    A plain memory-to-memory copy: each word is stored to the destination buffer (a ``sw``
    through the write buffer).
:data:`LANCE_PIO`
    Programmed I/O into the LANCE's buffer memory with 16 bits in every 32: each 16-bit half of
    the message goes into the low half of its own 32-bit slot of the buffer, the upper half
    unused (NetBSD pmax ``le_dec_copytobuf_gap2``; docs/calibration.md, "CPU view of the
    buffer": 2 data bytes per 4 on the DECstation 3100, the layout named "16 bits in 32" for
    this rule; the PMAD-AA card modelled in ``hw/lance`` is contiguous and the 3MIN's on-board
    LANCE uses 16 bytes in 32). On the little-endian DECstation a word holding message bytes
    ``b0 b1 b2 b3`` is stored as two halfword stores (``sh`` of the low half, a shift, ``sh``
    of the high half): slot ``2i`` gets ``b0 b1`` and slot ``2i + 1`` gets ``b2 b3``.
:data:`PMAD_PIO`
    Programmed I/O into the buffer SRAM of the PMAD-AA option that ``hw/lance`` models, which
    the CPU sees contiguous (``hw.lance.registers.RAM_OFFSET``; buffer word ``i`` holds bytes
    ``4i .. 4i + 3``, as ``sw/drivers/lance.py`` copies): one ``sw`` and one I/O write per word.
:data:`AN2_DMA`
    The AN2 moves the data by DMA: nothing to copy. The loop has no store; its pipes only
    observe the words (a checksum), so a pipe that changes words cannot run with this rule.

A rule is data (:class:`Movement`): the compiler reads whether it stores, the executor how it
lays the bytes out (:func:`place`), the cost model how many instructions and I/O writes a word
costs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.ilp.registers import bytes_of

__all__ = ["Movement", "MEMORY", "LANCE_PIO", "PMAD_PIO", "AN2_DMA", "RULES", "by_name", "place",
           "image_length"]


@dataclass(frozen=True)
class Movement:
    """One data-movement rule.

    Attributes
    ----------
    name : str
        ``"memory"``, ``"lance-pio"``, ``"pmad-pio"`` or ``"an2-dma"``.
    stores : bool
        Whether the loop stores words (False: the pipes only observe).
    layout : str
        ``"contiguous"``, ``"16-in-32"`` or ``"none"`` (no destination written).
    store_instructions : int
        Machine instructions per word to store it (``sw``; ``sh``, ``srl``, ``sh``; none).
    memory_writes : int
        Words per word stored to main memory (through the write buffer).
    io_writes : int
        I/O-space writes per word (to a card's buffer over the TURBOchannel).
    """

    name: str
    stores: bool
    layout: str
    store_instructions: int
    memory_writes: int
    io_writes: int

    def __post_init__(self):
        if self.layout not in ("contiguous", "16-in-32", "none"):
            raise ValueError(f"movement {self.name!r}: unknown layout {self.layout!r}")
        if self.stores != (self.layout != "none"):
            raise ValueError(f"movement {self.name!r}: stores={self.stores} contradicts "
                             f"layout {self.layout!r}")


MEMORY = Movement("memory", True, "contiguous", 1, 1, 0)
LANCE_PIO = Movement("lance-pio", True, "16-in-32", 3, 0, 2)
PMAD_PIO = Movement("pmad-pio", True, "contiguous", 1, 0, 1)
AN2_DMA = Movement("an2-dma", False, "none", 0, 0, 0)
RULES = {m.name: m for m in (MEMORY, LANCE_PIO, PMAD_PIO, AN2_DMA)}


def by_name(name: str) -> Movement:
    """The rule called ``name``.

    Raises
    ------
    KeyError
        Naming the rules there are.
    """
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"no data-movement rule {name!r} (there are {sorted(RULES)})") from None


def image_length(movement: Movement, nbytes: int) -> int:
    """Bytes of destination a message of ``nbytes`` occupies under ``movement``."""
    if movement.layout == "contiguous":
        return nbytes
    if movement.layout == "16-in-32":
        return 4 * (-(-nbytes // 2))
    return 0


def place(movement: Movement, words: np.ndarray, nbytes: int) -> bytes | None:
    """The destination image of a message of ``nbytes`` whose words (network order) the loop
    produced, or None for a rule that stores nothing.

    Under :data:`LANCE_PIO` each 16-bit half goes to the low half of its own 32-bit slot (bytes
    ``b0 b1 0 0``); the unused halves read here as zero (the real loop leaves them untouched).
    """
    if movement.layout == "none":
        return None
    data = bytes_of(words, nbytes)
    if movement.layout == "contiguous":
        return data
    halves = -(-nbytes // 2)
    slots = np.zeros((halves, 4), dtype=np.uint8)
    src = np.frombuffer(data + bytes(2 * halves - nbytes), dtype=np.uint8)
    slots[:, :2] = src.reshape(halves, 2)
    return slots.tobytes()
