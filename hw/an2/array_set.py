"""Writing one element of a register array chosen by a signal, as explicit per-element logic.

The transmit FIFO's cell fields are written with it, two entries in one cycle at times
(``Array(...)[index].eq(value)`` twice in one process); writing each element under its own
``index == i`` condition says the same thing in a form every tool reads alike.
"""
from __future__ import annotations

__all__ = ["array_set"]


def array_set(m, arr, index, value, *, domain: str = "sync") -> None:
    """In module ``m``, under the current conditions, assign ``value`` to element ``index`` of
    ``arr`` (a sequence of signals) in ``domain``.

    Raises
    ------
    ValueError
        If ``arr`` is empty.
    """
    elements = list(arr)
    if not elements:
        raise ValueError("array_set needs a non-empty array")
    for i, element in enumerate(elements):
        with m.If(index == i):
            m.d[domain] += element.eq(value)
