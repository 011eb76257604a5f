"""Register-field values: the one check every device's register map uses.

A value packed into a register or a descriptor field must be a plain ``int`` (not a ``bool``)
that fits the field's width; anything else is refused with a one-line error naming the field.
"""
from __future__ import annotations

__all__ = ["check_unsigned"]


def check_unsigned(name: str, value: int, bits: int) -> int:
    """``value`` if it is an ``int`` in ``[0, 2**bits)``.

    Raises
    ------
    TypeError
        If ``value`` is not an ``int`` (or is a ``bool``).
    ValueError
        If it does not fit in ``bits`` unsigned bits.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must fit in {bits} unsigned bits, not {value!r}")
    return value
