"""Ethernet CRC-32 (the FCS) for gateware, with a plain-Python twin.

IEEE 802.3's FCS is the reflected CRC-32: polynomial 0x04C11DB7 (0xEDB88320 bit-reversed), the
register preset to all ones, bits taken least significant first, and the result complemented and
sent least significant byte first. ``zlib.crc32`` computes the same value and is the golden model
in the tests (STYLE.md #8).

The gateware works a nibble at a time because the MII delivers one nibble per clock: four
unrolled bit steps per clock is the cheapest circuit that keeps up with the wire.
"""
from __future__ import annotations

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Value

__all__ = ["POLY_REFLECTED", "CRC_INIT", "CRC_RESIDUE", "crc32_step", "crc32_update_model"]

#: 0x04C11DB7 with its bits reversed, for the LSB-first (reflected) shift register.
POLY_REFLECTED = 0xEDB88320
#: The register is preset to all ones so leading zero bytes change the FCS.
CRC_INIT = 0xFFFF_FFFF
#: Register value after running the whole frame *including its FCS* through the CRC (without
#: the final complement): a receiver compares against this instead of locating the FCS.
CRC_RESIDUE = 0xDEBB20E3


def crc32_step(crc: Value, data: Value) -> Value:
    """The CRC register after shifting in ``data`` (LSB first), as an Amaranth expression.

    Parameters
    ----------
    crc
        The 32-bit register (not complemented).
    data
        1 to 8 data bits; bit 0 is the first on the wire.

    Raises
    ------
    ValueError
        If ``crc`` is not 32 bits wide or ``data`` is wider than a byte.
    """
    crc, data = Value.cast(crc), Value.cast(data)
    if len(crc) != 32:
        raise ValueError(f"crc must be 32 bits wide, not {len(crc)}")
    if not 1 <= len(data) <= 8:
        raise ValueError(f"data must be 1..8 bits wide, not {len(data)}")
    # The update is linear over GF(2): work out symbolically which input bits each output bit
    # is the XOR of, then emit one flat XOR per bit. (Chaining the bit steps as Amaranth
    # expressions would make every slice re-expand the whole previous step: exponential.)
    inputs = [crc[i] for i in range(32)] + [data[i] for i in range(len(data))]
    state = [1 << i for i in range(32)]  # bit i of the register = input variable i
    for i in range(len(data)):
        feedback = state[0] ^ (1 << (32 + i))
        state = state[1:] + [0]
        state = [s ^ (feedback if (POLY_REFLECTED >> j) & 1 else 0) for j, s in enumerate(state)]
    bits = []
    for mask in state:
        terms = [inputs[v] for v in range(len(inputs)) if (mask >> v) & 1]
        bits.append(reduce(operator.xor, terms) if terms else Const(0, 1))
    return Cat(*bits)


def crc32_update_model(crc: int, data: int, bits: int) -> int:
    """Plain-Python twin of :func:`crc32_step` (for models and for checking the gateware)."""
    for i in range(bits):
        feedback = (crc ^ (data >> i)) & 1
        crc = (crc >> 1) ^ (POLY_REFLECTED if feedback else 0)
    return crc
