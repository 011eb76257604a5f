"""Running a fused ILP program over a message with NumPy: the bytes it stores and its results.

The whole message is one ``uint32`` array; every instruction of the fused body is one NumPy
operation over all its words (:func:`hw.ilp.registers.run_body`: branches are masks,
accumulations reductions), never a Python loop per word. :func:`separate` runs the same pipes
one pass each (each pipe's own program over the previous pass's words), the reference the fused
loop must equal.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hw.ilp.registers import NUM_REGISTERS, PERSISTENT, Pipe, run, run_body, run_fini, words_of

from .compiler import Program, check_rule
from .movement import Movement, place

__all__ = ["Outcome", "execute", "separate"]


@dataclass(frozen=True)
class Outcome:
    """What a program did to a message.

    Attributes
    ----------
    data : bytes or None
        The destination image (:func:`sw.libos.ilp.movement.place`), None under a rule that
        stores nothing.
    results : tuple[tuple[int, ...], ...]
        Each pipe's results (its ``results`` registers after ``fini``), in pipe order.
    names : tuple[str, ...]
        The pipes' names, in order.
    executed : tuple[int, ...]
        How many words ran each instruction of the fused body (empty for :func:`separate`);
        not compared: the same work done another way is equal.
    """

    data: bytes | None
    results: tuple
    names: tuple
    executed: tuple = field(default=(), compare=False)

    def result(self, name: str) -> tuple[int, ...]:
        """The results of the one pipe called ``name``.

        Raises
        ------
        KeyError
            If no pipe, or more than one, has that name.
        """
        hits = [r for n, r in zip(self.names, self.results) if n == name]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} pipes are called {name!r} (pipes: {list(self.names)})")
        return hits[0]


def _check_data(data) -> memoryview:
    try:
        return memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"ILP data must be bytes-like, not {type(data).__name__}") from None


def execute(program: Program, data) -> Outcome:
    """Run ``program`` over the message ``data`` (bytes-like).

    Raises
    ------
    TypeError
        If ``program`` is not a :class:`~sw.libos.ilp.compiler.Program` or ``data`` is not
        bytes-like.
    """
    if not isinstance(program, Program):
        raise TypeError(f"execute takes a Program (from build), not {program!r}")
    raw = _check_data(data)
    words = words_of(raw)
    acc = dict(program.init)
    executed: list[int] = []
    out = run_body(program.body, words, registers=program.registers,
                   accumulate=program.accumulate, acc=acc, executed=executed)
    results = []
    for k, pipe in enumerate(program.pipes):
        regs = [0] * NUM_REGISTERS
        for r in PERSISTENT:
            regs[r] = acc[program.base(k) + r]
        run_fini(pipe.fini, regs)
        results.append(tuple(regs[r] for r in pipe.results))
    return Outcome(place(program.movement, out, len(raw)), tuple(results),
                   tuple(p.name for p in program.pipes), tuple(executed))


def separate(pipes: Sequence[Pipe], movement: Movement, data) -> Outcome:
    """The same work as ``execute(build(pipes, movement), data)`` done one pipe per pass.

    Each pass runs one pipe's own program (:func:`hw.ilp.registers.run`) over the words the
    previous pass left (the stream between passes is words: only the final store keeps the
    message's byte length); the last pass's words are then placed by ``movement``.
    """
    check_rule(pipes, movement)
    raw = _check_data(data)
    words = words_of(raw)
    results = []
    for pipe in pipes:
        words, res = run(pipe, words)
        results.append(res)
    return Outcome(place(movement, np.asarray(words, dtype=np.uint32), len(raw)),
                   tuple(results), tuple(p.name for p in pipes))
