"""Packets as gather lists: bytes the CPU built, and data left where it lies in physical memory.

A zero-copy sender (Cheetah over a DMA card, issue 16) never copies the document it serves: the
document's bytes stay in the file cache's physical pages, and the packet handed down the stack
is a :class:`Gather` of pieces, each either ``bytes`` (a header the CPU wrote) or a
:class:`PhysRef` (``length`` bytes at physical address ``addr``, which the CPU has not touched).
Each layer prepends its header (:meth:`Gather.prepend`); the device decides what the pieces
cost:

* a DMA card (the AN2) gives each :class:`PhysRef` to the card as a scatter/gather descriptor:
  the CPU touches none of those bytes;
* a programmed-I/O card (the LANCE card's buffer memory) must copy every byte through the CPU:
  it reads the pieces (:meth:`Gather.flatten`) and the bytes of the references count as
  touched (:attr:`PhysRef.doc` says whether they are a document's).

Everywhere a plain ``bytes`` packet was accepted a :class:`Gather` may be passed; code that needs
the bytes (a checksum, a capture, a receiver) calls :meth:`Gather.flatten` with the memory's
untimed read (``memory.read``), which charges nothing: the caller charges what its CPU does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Union

__all__ = ["PhysRef", "Gather", "Piece"]


@dataclass(frozen=True, slots=True)
class PhysRef:
    """``length`` bytes at physical address ``addr`` of the host's memory.

    Attributes
    ----------
    addr : int
        Byte address (any alignment).
    length : int
        Bytes (at least 1).
    doc : bool
        The bytes are a served document's (the zero-copy counters count them when a CPU
        touches them); False for other data left in place (a retransmission of a header
        buffer, say).

    Raises
    ------
    ValueError
        For a negative address or a length below 1.
    """

    addr: int
    length: int
    doc: bool = True

    def __post_init__(self) -> None:
        for name, v, lo in (("addr", self.addr, 0), ("length", self.length, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"PhysRef {name} must be an integer >= {lo}, not {v!r}")

    def slice(self, start: int, stop: int) -> "PhysRef":
        """Bytes ``start .. stop`` of this reference (``0 <= start < stop <= length``)."""
        if not 0 <= start < stop <= self.length:
            raise ValueError(f"slice {start}:{stop} outside a reference of {self.length} bytes")
        return PhysRef(self.addr + start, stop - start, self.doc)


#: One piece of a gather list.
Piece = Union[bytes, PhysRef]


class Gather:
    """A packet as a sequence of pieces (``bytes`` or :class:`PhysRef`), in order.

    Parameters
    ----------
    pieces : iterable of bytes or PhysRef
        Empty ``bytes`` pieces are dropped; ``bytearray`` and ``memoryview`` become ``bytes``.

    Raises
    ------
    TypeError
        For a piece that is neither.
    """

    __slots__ = ("pieces", "length")

    def __init__(self, pieces: Iterable[Piece]):
        out: list[Piece] = []
        n = 0
        for p in pieces:
            if isinstance(p, (bytearray, memoryview)):
                p = bytes(p)
            if isinstance(p, bytes):
                if not p:
                    continue
            elif not isinstance(p, PhysRef):
                raise TypeError(f"a gather piece is bytes or a PhysRef, not {type(p).__name__}")
            out.append(p)
            n += len(p) if isinstance(p, bytes) else p.length
        self.pieces: tuple[Piece, ...] = tuple(out)
        self.length = n

    def __len__(self) -> int:
        return self.length

    def prepend(self, header: bytes) -> "Gather":
        """A new gather list: ``header`` then these pieces."""
        return Gather((header, *self.pieces))

    def __add__(self, other: "Gather | bytes") -> "Gather":
        more = other.pieces if isinstance(other, Gather) else (other,)
        return Gather((*self.pieces, *more))

    @property
    def refs(self) -> tuple[PhysRef, ...]:
        """The pieces left in memory."""
        return tuple(p for p in self.pieces if isinstance(p, PhysRef))

    @property
    def ref_bytes(self) -> int:
        """Bytes in :attr:`refs`."""
        return sum(p.length for p in self.refs)

    @property
    def doc_bytes(self) -> int:
        """Bytes in references to a document's data."""
        return sum(p.length for p in self.refs if p.doc)

    def flatten(self, read: Callable[[int, int], bytes]) -> bytes:
        """The packet's bytes, reading each reference with ``read(addr, length)`` (for instance
        ``memory.read``; charges nothing)."""
        return b"".join(p if isinstance(p, bytes) else read(p.addr, p.length)
                        for p in self.pieces)

    def slice(self, start: int, stop: int) -> "Gather":
        """Bytes ``start .. stop`` of the packet, as a gather list (references are cut, not
        read)."""
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"slice {start}:{stop} outside a packet of {self.length} bytes")
        out: list[Piece] = []
        pos = 0
        for p in self.pieces:
            n = len(p) if isinstance(p, bytes) else p.length
            lo, hi = max(start, pos), min(stop, pos + n)
            if lo < hi:
                out.append(p[lo - pos:hi - pos] if isinstance(p, bytes) else p.slice(lo - pos, hi - pos))
            pos += n
            if pos >= stop:
                break
        return Gather(out)

    def __repr__(self) -> str:
        return f"<Gather {self.length} bytes: {len(self.pieces)} pieces, {self.ref_bytes} in memory>"
