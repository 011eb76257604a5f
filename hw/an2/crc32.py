"""The AAL5 CRC-32 for gateware, 32 bits a cycle, and its linear shortcuts.

AAL5's CRC-32 (ITU-T I.363.5) is CRC-32/BZIP2: polynomial 0x04C11DB7, the register preset to
all ones, bits taken most significant first (the first byte of a word on the cell interface is
in bits 31:24, docs/an2_card.md "Pins"), the result complemented and sent big-endian.
``sim.media.aal5.crc32_aal5`` is the golden model.

The update is linear over GF(2): the register after a block of data is ``A(s) ^ C(d)``, the
start state advanced over the block's length with zero data, XOR the CRC of the data from a
zero register. The receive side uses that to compute a cell's part, ``C(d)``, as the cell
arrives, before it knows the VC's running state, and to add the state later in one cycle
(:func:`crc32_advance`).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Value

__all__ = ["POLY", "CRC_INIT", "crc32_word", "crc32_advance", "crc32_word_model",
           "crc32_advance_model"]

#: The generator polynomial, MSB first.
POLY = 0x04C11DB7
#: The register's preset.
CRC_INIT = 0xFFFF_FFFF


def _masks(data_bits: int) -> list[int]:
    """For each register bit after ``data_bits`` data bits: the mask of input variables (bits
    0-31 the register, 32 + i data bit i, bit 31 of data first) whose XOR it is."""
    state = [1 << i for i in range(32)]
    for i in reversed(range(data_bits)):
        feedback = state[31] ^ (1 << (32 + i))
        state = [0] + state[:31]
        state = [s ^ (feedback if (POLY >> j) & 1 else 0) for j, s in enumerate(state)]
    return state


_WORD = _masks(32)


def _xor_of(mask: int, inputs: list) -> Value:
    """The XOR of the inputs ``mask`` selects, as a balanced tree (a chain would be as deep as
    it is wide, and every tool that walks it, Amaranth's simulator first, pays for the depth)."""
    terms = [inputs[v] for v in range(len(inputs)) if (mask >> v) & 1]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = [terms[i] ^ terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def crc32_word(crc: Value, word: Value) -> Value:
    """The register after one 32-bit word (bit 31 first), as an Amaranth expression.

    Raises
    ------
    ValueError
        If ``crc`` or ``word`` is not 32 bits wide.
    """
    crc, word = Value.cast(crc), Value.cast(word)
    if len(crc) != 32 or len(word) != 32:
        raise ValueError(f"crc32_word takes 32-bit crc and word, not {len(crc)} and {len(word)}")
    inputs = [crc[i] for i in range(32)] + [word[i] for i in range(32)]
    return Cat(*(_xor_of(mask, inputs) for mask in _WORD))


def crc32_advance(crc: Value, words: int) -> Value:
    """The register advanced over ``words`` zero words: ``A(s)`` above (one XOR level).

    Raises
    ------
    ValueError
        If ``crc`` is not 32 bits wide or ``words`` is not a positive int.
    """
    crc = Value.cast(crc)
    if len(crc) != 32:
        raise ValueError(f"crc must be 32 bits wide, not {len(crc)}")
    if not isinstance(words, int) or isinstance(words, bool) or words < 1:
        raise ValueError(f"words must be a positive int, not {words!r}")
    inputs = [crc[i] for i in range(32)]
    return Cat(*(_xor_of(mask & 0xFFFF_FFFF, inputs) for mask in _masks(32 * words)))


def crc32_word_model(crc: int, word: int) -> int:
    """Plain-Python twin of :func:`crc32_word`."""
    crc ^= word
    for _ in range(32):
        crc = ((crc << 1) ^ POLY) & 0xFFFF_FFFF if crc & 0x8000_0000 else (crc << 1) & 0xFFFF_FFFF
    return crc


def crc32_advance_model(crc: int, words: int) -> int:
    """Plain-Python twin of :func:`crc32_advance`."""
    for _ in range(words):
        crc = crc32_word_model(crc, 0)
    return crc
