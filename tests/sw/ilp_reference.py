"""Plain, one-word-at-a-time reference for the ILP pipe language (tests only).

Written from the language's definition (hw/ilp/registers.py's docstring) with Python ints and
a program counter, independently of the vectorised meaning it checks: temporaries start at 0
for every word, persistent registers carry over, branches jump, ``addc`` carries end-around
one word at a time.
"""
from __future__ import annotations

import struct

M = 0xFFFF_FFFF


def scalar(op, a, b=None):
    if op == "mov":
        return a
    if op == "bswap":
        return int.from_bytes(a.to_bytes(4, "big"), "little")
    if op == "shl":
        return (a << b) & M
    if op == "shr":
        return a >> b
    if op == "add":
        return (a + b) & M
    if op == "sub":
        return (a - b) & M
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    if op == "xor":
        return a ^ b
    if op == "addc":
        s = a + b
        return (s + (s >> 32)) & M
    raise AssertionError(op)


def _step(ins, regs):
    op = ins[0]
    if op == "li":
        regs[ins[1]] = ins[2]
    elif op in ("mov", "bswap"):
        regs[ins[1]] = scalar(op, regs[ins[2]])
    elif op in ("shl", "shr"):
        regs[ins[1]] = scalar(op, regs[ins[2]], ins[3])
    else:
        regs[ins[1]] = scalar(op, regs[ins[2]], regs[ins[3]])
    regs[0] = 0


def interpret(pipe, words):
    """(words leaving, results) of a verified pipe, word by word."""
    persistent = {6: pipe.init.get(6, 0), 7: pipe.init.get(7, 0)}
    out = []
    for w in words:
        regs = [0] * 8
        regs[6], regs[7] = persistent[6], persistent[7]
        leaving, pc = w, 0
        while pc < len(pipe.body):
            ins = pipe.body[pc]
            op = ins[0]
            if op == "ldw":
                regs[ins[1]] = w
            elif op == "stw":
                leaving = regs[ins[1]]
            elif op in ("beq", "bne"):
                if (regs[ins[1]] == regs[ins[2]]) == (op == "beq"):
                    pc = ins[3]
                    continue
            else:
                _step(ins, regs)
            pc += 1
        persistent[6], persistent[7] = regs[6], regs[7]
        out.append(leaving)
    regs = [0] * 8
    regs[6], regs[7] = persistent[6], persistent[7]
    for ins in pipe.fini:
        _step(ins, regs)
    return out, tuple(regs[r] for r in pipe.results)


def words(data: bytes) -> list[int]:
    padded = bytes(data) + bytes(-len(data) % 4)
    return list(struct.unpack(f">{len(padded) // 4}I", padded))


def to_bytes(ws, n: int) -> bytes:
    return struct.pack(f">{len(ws)}I", *ws)[:n]


def gap2(data: bytes) -> bytes:
    """NetBSD's le_dec_copytobuf_gap2 into a zeroed buffer: 2 data bytes in every 4."""
    out = bytearray()
    for i in range(0, len(data), 2):
        pair = data[i:i + 2]
        out += pair + bytes(4 - len(pair))
    return bytes(out)


# --- random valid pipes (hypothesis) -------------------------------------------------------------
from hypothesis import strategies as st  # noqa: E402

from hw.ilp.registers import Pipe, verify  # noqa: E402

_ACC = ["add", "addc", "xor", "or", "and"]
_ALU = ["add", "sub", "and", "or", "xor", "addc"]
_KINDS = ["ldw", "ldw", "stw", "stw", "li", "mov", "alu", "alu", "shift", "bswap", "branch",
          "lowbit", "lowbit", "acc", "acc", "acc"]


@st.composite
def random_pipe(draw, name: str = "rand", observe_only: bool = False) -> Pipe:
    """A random pipe the verifier accepts: temporaries, forward branches (some on the word's
    low bit, so words go different ways), accumulations into r6/r7 (one op each), a
    straight-line fini, some results."""
    n = draw(st.integers(1, 16))
    acc_op = {6: draw(st.sampled_from(_ACC)), 7: draw(st.sampled_from(_ACC))}
    dst, src = st.integers(1, 5), st.integers(0, 5)
    body, jumps = [], []             # jumps: (index of a branch, how far forward)
    for i in range(n):
        # Start with the word in a register often, so branches and stores depend on the data.
        kind = "ldw" if i == 0 and draw(st.booleans()) else draw(st.sampled_from(_KINDS))
        if kind == "stw" and observe_only:
            kind = "mov"
        if kind == "ldw":
            body.append(("ldw", draw(dst)))
        elif kind == "stw":
            body.append(("stw", draw(src)))
        elif kind == "li":
            body.append(("li", draw(dst), draw(st.integers(0, M))))
        elif kind in ("mov", "bswap"):
            body.append((kind, draw(dst), draw(src)))
        elif kind == "alu":
            body.append((draw(st.sampled_from(_ALU)), draw(dst), draw(src), draw(src)))
        elif kind == "shift":
            body.append((draw(st.sampled_from(["shl", "shr"])), draw(dst), draw(src),
                         draw(st.integers(0, 31))))
        elif kind in ("branch", "lowbit"):
            if kind == "lowbit":             # test the low bit of a register (the word's)
                t = draw(dst)
                body.append(("shl", t, draw(src), 31))
                a, b = t, 0
            else:
                a, b = draw(src), draw(src)
            jumps.append((len(body), draw(st.integers(1, 6))))
            body.append((draw(st.sampled_from(["beq", "bne"])), a, b, None))
        else:
            r = draw(st.sampled_from([6, 7]))
            x = draw(src)
            body.append((acc_op[r], r, r, x) if draw(st.booleans()) else (acc_op[r], r, x, r))
    for at, ahead in jumps:
        op, a, b, _ = body[at]
        body[at] = (op, a, b, min(at + ahead, len(body)))
    fini = []
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(_ALU + ["shr", "bswap"]))
        d, a, b = draw(st.integers(1, 7)), draw(st.integers(0, 7)), draw(st.integers(0, 7))
        fini.append((op, d, a, b % 32) if op == "shr" else
                    (op, d, a) if op == "bswap" else (op, d, a, b))
    results = draw(st.lists(st.integers(1, 7), max_size=3, unique=True))
    init = {r: draw(st.integers(0, M)) for r in draw(st.sets(st.sampled_from([6, 7])))}
    return verify(Pipe(name, body, init, fini, results))
