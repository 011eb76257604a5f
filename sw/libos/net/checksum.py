"""The Internet checksum (RFC 1071), its incremental update (RFC 1624) and partial sums.

The checksum is the one's complement of the one's-complement sum of 16-bit big-endian words.
This module works with the *sum* (folded to 16 bits, not complemented) so that sums of pieces
can be combined: a server that precomputed the sum of a document once (the paper's "caller
supplied checksums") passes it with the data, and the stack adds only the header's part.

A sum of a piece that starts at an odd byte offset of the whole must be byte-swapped before it
is added (RFC 1071 section 2(B)); :func:`combine` does that given the length of what precedes.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["ones_sum", "add", "combine", "swap", "finish", "checksum", "verify", "verify_sum",
           "incremental_update", "pseudo_header_sum"]

_M = 0xFFFF


def _as_bytes(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"checksum data must be bytes-like, not {type(data).__name__}")


def _check_sum(value: int, what: str = "sum") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _M:
        raise ValueError(f"a 16-bit one's-complement {what} must be an int in 0..0xffff, not {value!r}")
    return value


def ones_sum(data, initial: int = 0) -> int:
    """The one's-complement sum of ``data`` as 16-bit big-endian words, plus ``initial``.

    An odd final byte is padded with a zero byte. The result is folded to 16 bits and not
    complemented (0 only for all-zero input with ``initial`` 0).

    Parameters
    ----------
    data : bytes-like
    initial : int
        A sum (0..0xffff) to add, e.g. a pseudo-header's.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    ValueError
        If ``initial`` is not a 16-bit value.
    """
    b = _as_bytes(data)
    _check_sum(initial, "initial sum")
    if len(b) & 1:
        b += b"\0"
    # 2**16 == 1 (mod 0xffff): the whole buffer as one big integer, reduced mod 0xffff, is the
    # end-around-carry sum of its words. Only an all-zero input has the true sum 0.
    n = int.from_bytes(b, "big") + initial
    if n == 0:
        return 0
    r = n % _M
    return r if r else _M


def add(a: int, b: int) -> int:
    """One's-complement addition of two 16-bit sums."""
    _check_sum(a)
    _check_sum(b)
    s = a + b
    s = (s & _M) + (s >> 16)
    return s


def swap(s: int) -> int:
    """Byte-swap a 16-bit sum (the sum of the same bytes at an odd offset)."""
    _check_sum(s)
    return ((s << 8) & 0xFF00) | (s >> 8)


def combine(parts: Iterable[tuple[int, int]]) -> int:
    """Combine ``(sum, length)`` pairs of consecutive pieces into the sum of the whole.

    Each piece's sum is taken as if the piece started at an even offset; a piece that follows
    an odd number of bytes is byte-swapped before it is added.

    Raises
    ------
    ValueError
        For a negative length or a sum outside 0..0xffff.
    """
    total, offset = 0, 0
    for s, length in parts:
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"piece length must be an int >= 0, not {length!r}")
        total = add(total, swap(s) if offset & 1 else s)
        offset += length
    return total


def finish(s: int) -> int:
    """The checksum field for a sum: its one's complement (0 is sent as 0xffff only by UDP;
    TCP, IP and ICMP send the complement as it is)."""
    return ~_check_sum(s) & _M


def checksum(data, initial: int = 0) -> int:
    """The Internet checksum of ``data`` (with ``initial`` added), ready for the header field."""
    return finish(ones_sum(data, initial))


def verify(data, initial: int = 0) -> bool:
    """True if ``data`` (which contains its checksum field) sums to 0xffff with ``initial``."""
    return ones_sum(data, initial) == _M


def verify_sum(data_sum: int, initial: int) -> bool:
    """:func:`verify` from the data's sum computed elsewhere (an ILP pipe in the copy that
    brought the data in): ``data_sum`` (0..0xffff, taken mod 0xffff as RFC 1071's arithmetic
    is) plus ``initial`` is one's-complement zero. ``initial`` must not be 0 (a pseudo-header's
    sum never is: the protocol is in it), so the total is never the all-zero +0.

    Raises
    ------
    ValueError
        If either is not a 16-bit value or ``initial`` is 0.
    """
    _check_sum(data_sum, "data sum")
    if not _check_sum(initial, "initial sum"):
        raise ValueError("verify_sum needs a nonzero initial sum (a pseudo-header's)")
    return (data_sum + initial) % _M == 0


def incremental_update(old_checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word of the summed data changes.

    ``HC' = ~(~HC + ~m + m')``.

    Raises
    ------
    ValueError
        If any argument is not a 16-bit value.
    """
    for name, v in (("old_checksum", old_checksum), ("old_word", old_word), ("new_word", new_word)):
        _check_sum(v, name)
    s = add(add(~old_checksum & _M, ~old_word & _M), new_word)
    return ~s & _M


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The sum of the TCP/UDP pseudo-header: addresses, zero, protocol, segment length.

    Raises
    ------
    ValueError
        For addresses that are not 4 bytes or an out-of-range protocol or length.
    """
    if len(src) != 4 or len(dst) != 4:
        raise ValueError(f"IPv4 addresses are 4 bytes, not {src!r} / {dst!r}")
    if not 0 <= proto <= 255:
        raise ValueError(f"protocol must be 0..255, not {proto!r}")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"segment length must be 0..65535, not {length!r}")
    return ones_sum(bytes(src) + bytes(dst) + bytes([0, proto]) + length.to_bytes(2, "big"))
