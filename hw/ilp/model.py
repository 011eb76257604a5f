"""The pipe datapath's transaction-level twin: same words, same results, same cycles.

:class:`PipeDatapathModel` answers, for a list of packets and the cycles in which the source
offers words (``in_valid``) and the sink accepts them (``out_ready``), what
:class:`hw.ilp.gateware.PipeDatapath` does: every input and output transfer's cycle, the words
leaving, and each packet's ``done`` cycle and results. Words and results come from
:func:`hw.ilp.registers.run` (vectorised, each pipe in list order, once per packet); cycles
come from the closed form below, computed once per transfer, never per clock.

Timing contract (cycle 0 is the first clock cycle out of reset)
----------------------------------------------------------------
The source: word ``i`` is offered (valid raised) from ``v_i``, the first cycle at or after
``a_{i-1} + 1`` (0 for the first word) in which ``in_valid`` is true, and held until taken, as
``lib.stream`` requires. The sink: ``o_stream.ready`` in cycle ``c`` is ``out_ready[c]``
(it may change at any time). Past the end of either pattern it is always true.

With ``N`` stages (one per pipe), the datapath is full when it holds ``N`` words, and takes a
word when it is not full or its output transfers in the same cycle. Word ``i - N`` is the only
one that can leave while word ``i`` waits on a full datapath, so word ``i`` is taken
(input handshake) at::

    a_i = max(v_i, d_{i-N})                (d_j = -1 for j < 0)

It is valid at the output ``N`` cycles later unless the word ahead still holds the output
stage (the stages compact behind it, so it follows it at the next cycle), and leaves at the
first cycle from then in which the sink is ready::

    o_i = max(a_i + N, d_{i-1} + 1)
    d_i = first c >= o_i with out_ready[c]

A packet's results are in the ``results`` register, and ``done`` is high, at ``d_last + 1``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .pipelist import PipeList
from .registers import run

__all__ = ["StreamRun", "PipeDatapathModel", "handshake_cycles"]


@dataclass(frozen=True)
class StreamRun:
    """What the datapath does with a list of packets (one entry per word or per packet).

    Attributes
    ----------
    in_cycles, out_cycles : tuple of int
        The cycle of each word's input and output transfer.
    out_words : tuple of int
        The words leaving, in order.
    out_last : tuple of bool
        Each leaving word's ``last`` flag.
    done_cycles : tuple of int
        Each packet's ``done`` cycle.
    results : tuple of tuple of int
        Each packet's results (``PipeDatapath.result_names`` order).
    """

    in_cycles: tuple
    out_cycles: tuple
    out_words: tuple
    out_last: tuple
    done_cycles: tuple
    results: tuple


class _Pattern:
    """A per-cycle bool pattern, true beyond its end; finds the next true cycle in O(log n)."""

    def __init__(self, pattern: Sequence[bool] | None, what: str):
        if pattern is None:
            pattern = ()
        arr = np.asarray(pattern)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "bui"):
            raise TypeError(f"{what} must be a 1-D sequence of bools, not {pattern!r}")
        self.size = int(arr.size)
        self.true = np.flatnonzero(arr.astype(bool))

    def next_true(self, c: int) -> int:
        """The first cycle at or after ``c`` in which the pattern is true."""
        if c >= self.size:
            return c
        j = int(np.searchsorted(self.true, c))
        return int(self.true[j]) if j < self.true.size else self.size


def handshake_cycles(words: int, *, stages: int, in_valid: Sequence[bool] | None = None,
                     out_ready: Sequence[bool] | None = None) -> tuple[list[int], list[int]]:
    """The input and output transfer cycles of ``words`` words (see the module docstring).

    Raises
    ------
    ValueError
        If ``words`` is negative or ``stages`` is not positive.
    """
    if isinstance(words, bool) or not isinstance(words, int) or words < 0:
        raise ValueError(f"words must be an int >= 0, not {words!r}")
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ValueError(f"stages must be an int >= 1, not {stages!r}")
    iv, ordy = _Pattern(in_valid, "in_valid"), _Pattern(out_ready, "out_ready")
    a: list[int] = []
    d: list[int] = []
    for i in range(words):
        offered = iv.next_true(a[-1] + 1 if a else 0)
        a.append(max(offered, d[i - stages] if i >= stages else -1))
        ready_from = max(a[i] + stages, d[i - 1] + 1 if i else 0)
        d.append(ordy.next_true(ready_from))
    return a, d


class PipeDatapathModel(PipeList):
    """The transaction-level twin of :class:`hw.ilp.gateware.PipeDatapath` (same parameters).

    Raises
    ------
    TypeError, ValueError, PipeError
        As :func:`hw.ilp.pipelist.check_pipes`.
    """

    def compute(self, words) -> tuple[np.ndarray, tuple[int, ...]]:
        """One packet's words leaving and its results (every pipe's, in list order)."""
        out = np.asarray(words, dtype=np.uint32)
        results: list[int] = []
        for pipe in self._pipes:
            out, res = run(pipe, out)
            results.extend(res)
        return out, tuple(results)

    def run(self, packets: Sequence, *, in_valid: Sequence[bool] | None = None,
            out_ready: Sequence[bool] | None = None) -> StreamRun:
        """What the datapath does with ``packets`` (each a non-empty sequence of words).

        Raises
        ------
        ValueError
            If a packet is empty (a packet is delimited by its ``last`` word).
        """
        outs, lasts, results = [], [], []
        for n, packet in enumerate(packets):
            words = np.asarray(packet, dtype=np.uint32)
            if words.ndim != 1 or words.size == 0:
                raise ValueError(f"packet {n} must be a non-empty 1-D sequence of words")
            out, res = self.compute(words)
            outs.extend(int(w) for w in out)
            lasts.extend([False] * (words.size - 1) + [True])
            results.append(res)
        a, d = handshake_cycles(len(outs), stages=self.stages, in_valid=in_valid,
                                out_ready=out_ready)
        done = tuple(c + 1 for c, last in zip(d, lasts) if last)
        return StreamRun(in_cycles=tuple(a), out_cycles=tuple(d), out_words=tuple(outs),
                         out_last=tuple(lasts), done_cycles=done, results=tuple(results))
