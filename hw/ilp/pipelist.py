"""A checked pipe list: what the datapath (:mod:`hw.ilp.gateware`) and its model
(:mod:`hw.ilp.model`) are both built from. Plain Python (no Amaranth), so the model needs none.
"""
from __future__ import annotations

from collections.abc import Sequence

from .registers import Pipe, verify

__all__ = ["check_pipes", "PipeList"]


def check_pipes(pipes: Sequence[Pipe]) -> tuple[Pipe, ...]:
    """``pipes`` verified, as a tuple.

    Raises
    ------
    TypeError
        If ``pipes`` is not a sequence of :class:`~hw.ilp.registers.Pipe`.
    ValueError
        If it is empty.
    hw.ilp.registers.PipeError
        If a pipe does not verify (the message names it).
    """
    if isinstance(pipes, (str, bytes)) or not isinstance(pipes, Sequence):
        raise TypeError(f"pipes must be a sequence of Pipe, not {pipes!r}")
    if not pipes:
        raise ValueError("pipes must name at least one pipe, not an empty list")
    return tuple(verify(p) for p in pipes)


class PipeList:
    """The verified pipes of a datapath, its stage count and the names of its results.

    Parameters
    ----------
    pipes : sequence of Pipe
        In the order words pass through them (keyword-only; :func:`check_pipes`).
    """

    def __init__(self, *, pipes: Sequence[Pipe]):
        self._pipes = check_pipes(pipes)
        self._result_names = tuple((k, p.name, r) for k, p in enumerate(self._pipes)
                                   for r in p.results)

    @property
    def pipes(self) -> tuple[Pipe, ...]:
        """The verified pipes, in stream order."""
        return self._pipes

    @property
    def stages(self) -> int:
        """Pipeline stages (one per pipe): a word's least latency in cycles."""
        return len(self._pipes)

    @property
    def result_names(self) -> tuple[tuple[int, str, int], ...]:
        """``(pipe index, pipe name, register)`` of each result, in the order reported."""
        return self._result_names
