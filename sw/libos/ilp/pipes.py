"""The standard ILP pipes: copy, Internet checksum, byte swaps and an xor scramble.

Each is a verified :class:`hw.ilp.registers.Pipe`; the language and these programs are in
``hw/ilp/registers.py`` (the cards' hardware pipes run the same ones), named here for users.
A pipe list such as ``[CKSUM]`` or ``[BSWAP, CKSUM]`` is what :func:`sw.libos.ilp.compiler.build`
fuses with a card's data-movement rule.
"""
from __future__ import annotations

from hw.ilp.registers import BSWAP, BSWAP16, CKSUM, COPY, HSWAP16, Pipe, scramble

__all__ = ["COPY", "CKSUM", "BSWAP", "BSWAP16", "HSWAP16", "scramble", "STANDARD", "by_name",
           "internet_checksum"]

#: The standard pipes by name (``scramble`` with the key 0x5a5a5a5a).
STANDARD = {p.name: p for p in (COPY, CKSUM, BSWAP, BSWAP16, HSWAP16, scramble(0x5A5A5A5A))}


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
