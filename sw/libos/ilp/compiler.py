"""The fusing compiler: a pipe list and a data-movement rule into one per-word program.

The fused program loads each word once, runs every pipe's body on it in list order (the word
entering pipe ``k`` is the word leaving pipe ``k - 1``), and stores it once through the card's
data-movement rule (:mod:`sw.libos.ilp.movement`). Registers are renamed per pipe into one
larger register file:

* global register 0 is ``r0`` of every pipe;
* pipe ``k``'s ``r1`` .. ``r7`` are globals ``8k + 1`` .. ``8k + 7``;
* the word entering pipe ``k`` is global ``8P + k`` (``P`` pipes; ``8P + P`` is the word
  leaving the last pipe).

A pipe's ``ldw rd`` becomes ``mov rd, word_k`` and its ``stw rs`` ``mov word_{k+1}, rs``, under
the same branch masks; each pipe's section begins with ``mov word_{k+1}, word_k`` (a pipe that
stores nothing passes the word on) and its branch targets are moved to its section (a target
at the end of a pipe's body is the start of the next section, which every word runs). The one
``ldw`` is the program's first instruction and the one ``stw`` (when the rule stores) its last.
These moves are renamings: a register allocator removes them, and the cost model
(:mod:`sw.libos.ilp.cost`) counts the source pipes' instructions, not them.

:func:`build` compiles only the combination asked for and keeps it (cached by the pipes and the
rule), as the exokernel's dynamic ILP generates the loop the first time a connection needs it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from hw.ilp.registers import (BRANCH_OPS, NUM_REGISTERS, PERSISTENT, Pipe, PipeError,
                              accumulations, verify)

from .movement import Movement

__all__ = ["Program", "build", "fuse", "check_rule"]


@dataclass(frozen=True)
class Program:
    """A fused per-word program (see the module docstring for its register layout).

    Attributes
    ----------
    pipes : tuple[Pipe, ...]
        The verified pipes, in order.
    movement : Movement
        The data-movement rule.
    body : tuple
        The fused per-word instructions over ``registers`` registers.
    registers : int
        Size of the renamed register file.
    accumulate : Mapping[int, str]
        Global persistent register -> its accumulation op.
    init : Mapping[int, int]
        Start values of the global persistent registers.
    origin : tuple
        For each fused instruction, the opcode of the pipe instruction it comes from, or None
        for the program's own load, store and word-register moves (what the cost model counts).
    """

    pipes: tuple
    movement: Movement
    body: tuple
    registers: int
    accumulate: Mapping
    init: Mapping
    origin: tuple

    def base(self, k: int) -> int:
        """Global register of pipe ``k``'s ``r0`` offset (its ``rN`` is ``base + N``)."""
        return NUM_REGISTERS * k

    @property
    def stores(self) -> bool:
        """Whether the loop stores the words it produced."""
        return self.movement.stores


def _rename(k: int, r: int) -> int:
    return 0 if r == 0 else NUM_REGISTERS * k + r


def _section(k: int, pipe: Pipe, start: int, word_in: int, word_out: int) -> list[tuple]:
    """Pipe ``k``'s body renamed, to be placed at fused index ``start``."""
    out = [("mov", word_out, word_in)]
    first = start + 1                      # fused index of the pipe's body[0]
    for ins in pipe.body:
        op, args = ins[0], ins[1:]
        if op == "ldw":
            out.append(("mov", _rename(k, args[0]), word_in))
        elif op == "stw":
            out.append(("mov", word_out, _rename(k, args[0])))
        elif op in BRANCH_OPS:
            out.append((op, _rename(k, args[0]), _rename(k, args[1]), first + args[2]))
        elif op == "li":
            out.append((op, _rename(k, args[0]), args[1]))
        elif op in ("shl", "shr"):
            out.append((op, _rename(k, args[0]), _rename(k, args[1]), args[2]))
        else:
            out.append((op, *(_rename(k, r) for r in args)))
    return out


def check_rule(pipes: Sequence[Pipe], movement: Movement) -> None:
    """Refuse a pipe that changes words under a rule that stores nothing.

    Raises
    ------
    PipeError
        Naming the pipe and the rule.
    """
    if movement.stores:
        return
    for p in pipes:
        if p.stores:
            raise PipeError(f"pipe {p.name!r} changes words (it has stw), but the "
                            f"{movement.name} rule stores nothing: its pipes may only observe")


def fuse(pipes: Sequence[Pipe], movement: Movement) -> Program:
    """Compile ``pipes`` with ``movement`` into one :class:`Program` (uncached; see :func:`build`).

    Raises
    ------
    PipeError
        If a pipe does not verify, or a pipe stores words under a rule that stores nothing.
    TypeError, ValueError
        For something that is not a pipe list or a :class:`Movement`, or an empty list.
    """
    if not isinstance(movement, Movement):
        raise TypeError(f"movement must be a Movement, not {movement!r}")
    if isinstance(pipes, Pipe) or not isinstance(pipes, Sequence):
        raise TypeError(f"pipes must be a sequence of Pipe, not {pipes!r}")
    if not pipes:
        raise ValueError("an ILP program needs at least one pipe")
    verified = tuple(verify(p) for p in pipes)
    check_rule(verified, movement)
    n = len(verified)
    word = [NUM_REGISTERS * n + k for k in range(n + 1)]
    body: list[tuple] = [("ldw", word[0])]
    origin: list = [None]
    accumulate, init = {}, {}
    for k, pipe in enumerate(verified):
        body += _section(k, pipe, len(body), word[k], word[k + 1])
        origin += [None] + [ins[0] for ins in pipe.body]
        for r, op in accumulations(pipe.body).items():
            accumulate[_rename(k, r)] = op
        for r in PERSISTENT:
            init[_rename(k, r)] = pipe.init.get(r, 0)
    if movement.stores:
        body.append(("stw", word[n]))
        origin.append(None)
    return Program(verified, movement, tuple(body), word[n] + 1,
                   MappingProxyType(accumulate), MappingProxyType(init), tuple(origin))


@lru_cache(maxsize=256)
def _cached(pipes: tuple, movement: Movement) -> Program:
    return fuse(pipes, movement)


def build(pipes: Sequence[Pipe], movement: Movement) -> Program:
    """The fused program of ``pipes`` with ``movement``, compiled on first use and kept.

    Raises
    ------
    As :func:`fuse`.
    """
    if isinstance(pipes, Pipe) or not isinstance(pipes, Sequence):
        raise TypeError(f"pipes must be a sequence of Pipe, not {pipes!r}")
    for p in pipes:
        if not isinstance(p, Pipe):
            raise TypeError(f"pipes must be Pipe objects, not {p!r}")
    return _cached(tuple(pipes), movement)


build.cache_info = _cached.cache_info      # how many programs were built (for tests)
