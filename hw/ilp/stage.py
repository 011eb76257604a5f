"""One pipe's arithmetic as combinational Amaranth logic: its body on one word, its ``fini``.

:func:`body_logic` unrolls a verified pipe's body (at most :data:`~hw.ilp.registers.MAX_BODY`
instructions, straight-line with forward branches) into a dataflow graph over one word:
every write to a register becomes a new 32-bit signal, and forward branches become
*predicates*. ``active[j]`` is true when instruction ``j`` runs for this word: instruction 0
runs, ``j`` runs if ``j - 1`` ran and did not branch away, or if a taken branch targets ``j``.
Because branches only go forward, one pass in instruction order computes every predicate, and
a predicated write (``rd = active ? value : rd``) gives exactly the sequential result: the
instructions a word executes are a subsequence of the body in order, and only those write.

The persistent registers (r6, r7) enter as the pipe's accumulator values before the word and
leave as their values after it; the verifier only lets a body accumulate into them with an
associative, commutative operation, so this one-word-at-a-time chain equals the vectorised
reduction of :func:`hw.ilp.registers.run_body`. :func:`fini_logic` runs ``fini`` (straight-line
ALU code, temporaries 0) on accumulator values and returns the pipe's result registers.

The meaning of each operation is :mod:`hw.ilp.registers`'s (the NumPy ``alu``); this module is
its gateware twin, checked against it by tests/hw/test_ilp_gateware.py.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from .registers import BRANCH_OPS, NUM_REGISTERS, PERSISTENT, Pipe

__all__ = ["alu_logic", "body_logic", "fini_logic"]

_BITWISE = {"and": operator.and_, "or": operator.or_, "xor": operator.xor}


def alu_logic(op: str, a: Value, b: Value | int | None = None) -> Value:
    """The 32-bit value ``op`` computes (the gateware of :func:`hw.ilp.registers.alu`).

    ``b`` is the second register for the three-register operations, the shift amount for
    ``shl``/``shr``, the immediate for ``li`` (``a`` unused).
    """
    if op == "li":
        return Const(int(b), 32)
    if op == "mov":
        return a
    if op == "bswap":
        return Cat(a[24:32], a[16:24], a[8:16], a[0:8])
    if op == "shl":
        return (a << int(b))[:32]
    if op == "shr":
        return a >> int(b)
    if op == "add":
        return (a + b)[:32]
    if op == "sub":
        return (a - b)[:32]
    if op in _BITWISE:
        return _BITWISE[op](a, b)
    if op == "addc":
        # s = a + b (33 bits); (s + (s >> 32)) & M == (s[:32] + carry) & M.
        s = a + b
        return (s[:32] + s[32])[:32]
    raise ValueError(f"{op!r} is not an ALU operation")


def _operands(ins: tuple, regs: list[Value]) -> Value:
    op = ins[0]
    if op == "li":
        return alu_logic(op, None, ins[2])
    if op in ("mov", "bswap"):
        return alu_logic(op, regs[ins[2]])
    if op in ("shl", "shr"):
        return alu_logic(op, regs[ins[2]], ins[3])
    return alu_logic(op, regs[ins[2]], regs[ins[3]])


def body_logic(m: Module, pipe: Pipe, *, word: Value, acc: Mapping[int, Value],
               prefix: str) -> tuple[Value, dict[int, Value]]:
    """Add ``pipe``'s body on ``word`` to ``m`` (combinational).

    Parameters
    ----------
    m : Module
        Where the signals go (``m.d.comb``).
    pipe : Pipe
        A verified pipe (registers as ints).
    word : Value
        The 32-bit word entering the pipe.
    acc : mapping
        The persistent registers' values before this word (register -> 32-bit value).
    prefix : str
        Name prefix of the signals made (one per register write and branch).

    Returns
    -------
    (Value, dict)
        The word leaving the pipe, and the persistent registers' values after this word.
    """
    regs: list[Value] = [Const(0, 32)] * NUM_REGISTERS
    for r in PERSISTENT:
        regs[r] = acc[r]
    out: Value = word
    active: Value = Const(1, 1)
    arrivals: dict[int, Value] = {}

    def name(i: int, what: str) -> str:
        return f"{prefix}_{i}_{what}"

    always = True       # ``active`` is the constant 1 (before the first branch)
    for i, ins in enumerate(pipe.body):
        if i in arrivals:
            live = Signal(name=name(i, "active"))
            m.d.comb += live.eq(active | arrivals.pop(i))
            active = live
        op = ins[0]
        if op in BRANCH_OPS:
            cond = regs[ins[1]] == regs[ins[2]]
            taken = Signal(name=name(i, "taken"))
            m.d.comb += taken.eq(active & (cond if op == "beq" else ~cond))
            t = ins[3]
            arrivals[t] = arrivals[t] | taken if t in arrivals else taken
            stay = Signal(name=name(i, "active"))
            m.d.comb += stay.eq(active & ~taken)
            active, always = stay, False
            continue
        if op == "stw":
            value, target = regs[ins[1]], None
        else:
            value = word if op == "ldw" else _operands(ins, regs)
            target = ins[1]
        sig = Signal(32, name=name(i, "out" if target is None else f"r{target}"))
        if always:      # no branch can have skipped this instruction yet: no multiplexer
            m.d.comb += sig.eq(value)
        else:
            m.d.comb += sig.eq(Mux(active, value, out if target is None else regs[target]))
        if target is None:
            out = sig
        else:
            regs[target] = sig
    return out, {r: regs[r] for r in PERSISTENT}


def fini_logic(m: Module, pipe: Pipe, *, acc: Mapping[int, Value], prefix: str
               ) -> list[Value]:
    """Add ``pipe``'s ``fini`` on the accumulators ``acc`` to ``m``; return its results.

    The temporaries start at 0, as :func:`hw.ilp.registers.run_fini`'s callers set them.
    """
    regs: list[Value] = [Const(0, 32)] * NUM_REGISTERS
    for r in PERSISTENT:
        regs[r] = acc[r]
    for i, ins in enumerate(pipe.fini):
        sig = Signal(32, name=f"{prefix}_fini_{i}_r{ins[1]}")
        m.d.comb += sig.eq(_operands(ins, regs))
        regs[ins[1]] = sig
    return [regs[r] for r in pipe.results]
