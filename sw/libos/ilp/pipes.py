"""The standard ILP pipes: copy, Internet checksum, byte swaps and an xor scramble.

Each is a verified :class:`hw.ilp.registers.Pipe` (the language is in ``hw/ilp/registers.py``).
A pipe list such as ``[CKSUM]`` or ``[BSWAP, CKSUM]`` is what :func:`sw.libos.ilp.compiler.build`
fuses with a card's data-movement rule.
"""
from __future__ import annotations

from hw.ilp.registers import MASK, Pipe, verify

__all__ = ["COPY", "CKSUM", "BSWAP", "HSWAP16", "scramble", "STANDARD", "by_name",
           "internet_checksum"]

#: The word leaves unchanged (with a storing movement rule: a plain copy).
COPY = verify(Pipe("copy", body=[("ldw", "r1"), ("stw", "r1")]))

#: The Internet checksum's one's-complement sum (RFC 1071): the words added with end-around
#: carry into r6, folded to 16 bits in ``fini`` (twice: the first fold can carry once more).
#: The result ``r6`` is the sum, not complemented (as :func:`sw.libos.net.checksum.ones_sum`),
#: so a stack can add a header's sum to it; :func:`internet_checksum` complements it.
CKSUM = verify(Pipe(
    "cksum",
    body=[("ldw", "r1"), ("addc", "r6", "r6", "r1")],
    fini=[("li", "r3", 0xFFFF),
          ("shr", "r1", "r6", 16), ("and", "r2", "r6", "r3"), ("add", "r6", "r1", "r2"),
          ("shr", "r1", "r6", 16), ("and", "r2", "r6", "r3"), ("add", "r6", "r1", "r2")],
    results=["r6"]))

#: Reverse each word's four bytes (a big-endian/little-endian conversion of 32-bit fields).
BSWAP = verify(Pipe("bswap", body=[("ldw", "r1"), ("bswap", "r2", "r1"), ("stw", "r2")]))

#: Swap each word's two 16-bit halves.
HSWAP16 = verify(Pipe("hswap16", body=[
    ("ldw", "r1"), ("shl", "r2", "r1", 16), ("shr", "r3", "r1", 16), ("or", "r4", "r2", "r3"),
    ("stw", "r4")]))


def scramble(key: int, *, name: str = "scramble") -> Pipe:
    """A pipe that xors every word with ``key`` (its own inverse: run twice, it unscrambles).

    Raises
    ------
    TypeError, ValueError
        If ``key`` is not a 32-bit unsigned int.
    """
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"scramble key must be an int, not {key!r}")
    if not 0 <= key <= MASK:
        raise ValueError(f"scramble key must fit in 32 unsigned bits, not {key!r}")
    return verify(Pipe(name, body=[("ldw", "r1"), ("li", "r2", key), ("xor", "r3", "r1", "r2"),
                                   ("stw", "r3")]))


#: The standard pipes by name (``scramble`` with the key 0x5a5a5a5a).
STANDARD = {p.name: p for p in (COPY, CKSUM, BSWAP, HSWAP16, scramble(0x5A5A5A5A))}


def by_name(name: str) -> Pipe:
    """The standard pipe called ``name``.

    Raises
    ------
    KeyError
        Naming the pipes there are.
    """
    try:
        return STANDARD[name]
    except KeyError:
        raise KeyError(f"no standard pipe {name!r} (there are {sorted(STANDARD)})") from None


def internet_checksum(ones_sum: int) -> int:
    """The checksum field's value for a 16-bit one's-complement sum (``~sum & 0xffff``).

    Raises
    ------
    ValueError
        If ``ones_sum`` is not a 16-bit value.
    """
    if isinstance(ones_sum, bool) or not isinstance(ones_sum, int) or not 0 <= ones_sum <= 0xFFFF:
        raise ValueError(f"a one's-complement sum is an int in 0..0xffff, not {ones_sum!r}")
    return ~ones_sum & 0xFFFF
