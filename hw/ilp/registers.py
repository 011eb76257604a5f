"""The ILP pipe language: the contract between the software pipes and the hardware pipes.

An ILP *pipe* (Abbott and Peterson's integrated layer processing, as the exokernel paper's
"dynamic ILP" uses it) is a tiny program run once per 32-bit word of a message: a copy, a
checksum, a byte swap. A list of pipes is *fused* into one loop that loads each word once, runs
every pipe on it and stores it once. Software (:mod:`sw.libos.ilp`) compiles and runs pipe lists
in NumPy; the hardware generator (``hw.ilp``) turns them into an Amaranth streaming datapath.

This module is the language: the instruction set, :class:`Pipe`, the verifier :func:`verify`
and the vectorised meaning of every instruction over NumPy ``uint32`` arrays (the one definition
of what an instruction computes; the software executor and the hardware's model both use it).
It lives in ``hw/ilp/registers.py`` because the architecture lets software import only
``hw.<device>.registers`` from ``hw`` and lets ``hw`` import no software: the ISA is the
register map of the pipe hardware.

The stream
----------
A message is a stream of 32-bit words in network order (bytes ``b0 b1 b2 b3`` are the word
``b0 << 24 | b1 << 16 | b2 << 8 | b3``). A byte length that is not a multiple of 4 pads the last
word with zero bytes (the Internet checksum is unchanged by zero padding); the output keeps the
input's byte length (:func:`words_of`, :func:`bytes_of`). Between the pipes of a list the
stream stays words: a pipe that moves bytes within a word (``bswap``) moves the last word's pad
bytes along, and only the final store keeps the input's byte length.

Registers
---------
``r0`` .. ``r7``, 32 bits, written as ints 0..7 or strings ``"r0"`` .. ``"r7"`` (:func:`verify`
returns the pipe with ints). ``r0`` reads 0 and cannot be written. ``r1`` .. ``r5`` are per-word
temporaries, 0 at the start of each word (and at the start of ``fini``). ``r6`` and ``r7`` are
persistent accumulators: in ``body`` one may be written only by an accumulation
``(op, rP, rP, rX)`` or ``(op, rP, rX, rP)`` with ``op`` in :data:`ACCUMULATORS` (associative and
commutative, so software can vectorise it and hardware keeps one register), all of a register's
accumulations use one ``op``, and it is read only as that accumulation's own operand. ``fini``
(straight-line ALU code) may read and write them freely.

Instructions (tuples)
---------------------
* ``("ldw", rd)``: ``rd`` = the word as it enters this pipe.
* ``("stw", rs[, 0])``: the word leaving this pipe = ``rs`` (no ``stw``: the word leaves
  unchanged; an offset other than 0 would write outside the pipe's output and is refused).
* ``("li", rd, imm)``: ``rd = imm``, ``imm`` in 0 .. 2**32 - 1.
* ``("mov", rd, ra)``: ``rd = ra``.
* ``("add"|"sub"|"and"|"or"|"xor", rd, ra, rb)``: 32-bit wrap-around.
* ``("addc", rd, ra, rb)``: ones' complement add, ``s = ra + rb; rd = (s + (s >> 32)) & M``.
* ``("shl"|"shr", rd, ra, imm)``: logical shift, ``imm`` in 0 .. 31.
* ``("bswap", rd, ra)``: reverse the 4 bytes.
* ``("beq"|"bne", ra, rb, t)``: branch forward to body index ``t``
  (``index < t <= len(body)``; ``len(body)`` ends the word); a loop is refused.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = [
    "MASK", "NUM_REGISTERS", "ZERO", "TEMPORARIES", "PERSISTENT", "MAX_BODY",
    "ACCUMULATORS", "IDENTITY", "ALU_OPS", "BRANCH_OPS", "FORMS", "Operand",
    "PipeError", "Pipe", "verify", "register",
    "alu", "branch_taken", "reduce_accumulation", "combine", "addc_scalar",
    "words_of", "bytes_of", "accumulations", "run_body", "run_fini", "run",
    "COPY", "CKSUM", "BSWAP", "BSWAP16", "HSWAP16", "scramble",
]

#: All 32 bits.
MASK = 0xFFFF_FFFF
#: Registers ``r0`` .. ``r7``.
NUM_REGISTERS = 8
#: ``r0``: reads 0, cannot be written.
ZERO = 0
#: Per-word temporaries, 0 at the start of each word.
TEMPORARIES = frozenset(range(1, 6))
#: Persistent accumulators.
PERSISTENT = frozenset({6, 7})
#: Longest body the verifier accepts (the hardware unrolls a body into one pipeline stage set).
MAX_BODY = 64
#: Operations a body may accumulate into a persistent register (associative, commutative).
ACCUMULATORS = frozenset({"add", "addc", "xor", "or", "and"})
#: Each accumulation's identity (what a word that skips the accumulation contributes).
#: ``addc(x, 0) == x`` for every 32-bit ``x`` (``s = x`` has no carry), so 0 is addc's identity.
IDENTITY = MappingProxyType({"add": 0, "addc": 0, "xor": 0, "or": 0, "and": MASK})
#: Three-register ALU operations.
ALU_OPS = frozenset({"add", "sub", "and", "or", "xor", "addc"})
#: Forward conditional branches.
BRANCH_OPS = frozenset({"beq", "bne"})


class Operand:
    """Operand kinds of :data:`FORMS` (plain strings, compared by value)."""

    #: A register written (not ``r0``).
    DEST = "dest"
    #: A register read.
    SRC = "src"
    #: A 32-bit unsigned immediate.
    IMM32 = "imm32"
    #: A shift amount 0..31.
    SHIFT = "shift"
    #: A forward branch target (body index).
    TARGET = "target"
    #: A store offset in words (must be 0).
    OFFSET = "offset"


_D, _S = Operand.DEST, Operand.SRC
#: Each opcode's operand forms (``stw``'s offset is optional).
FORMS: Mapping[str, tuple[tuple[str, ...], ...]] = MappingProxyType({
    "ldw": ((_D,),),
    "stw": ((_S,), (_S, Operand.OFFSET)),
    "li": ((_D, Operand.IMM32),),
    "mov": ((_D, _S),),
    **{op: ((_D, _S, _S),) for op in sorted(ALU_OPS)},
    "shl": ((_D, _S, Operand.SHIFT),),
    "shr": ((_D, _S, Operand.SHIFT),),
    "bswap": ((_D, _S),),
    **{op: ((_S, _S, Operand.TARGET),) for op in sorted(BRANCH_OPS)},
})
#: Opcodes that may not appear in ``fini`` (it is straight-line ALU code after the last word).
_BODY_ONLY = frozenset({"ldw", "stw"}) | BRANCH_OPS


class PipeError(ValueError):
    """A pipe the verifier refuses; the message names the pipe, the place and the problem."""


def register(value: object) -> int:
    """The register number of ``value`` (an int 0..7 or a string ``"r0"`` .. ``"r7"``).

    Raises
    ------
    ValueError
        If ``value`` is not a register.
    """
    if isinstance(value, str):
        m = re.fullmatch(r"r([0-9]+)", value)
        if m:
            value = int(m.group(1))
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NUM_REGISTERS:
        raise ValueError(f"register must be r0..r{NUM_REGISTERS - 1}, not {value!r}")
    return value


@dataclass(frozen=True)
class Pipe:
    """One pipe: a per-word ``body``, a ``fini`` after the last word, its reported registers.

    Parameters
    ----------
    name
        A name for messages and tables.
    body
        Instructions run once per word (see the module docstring).
    init
        Start values of persistent registers (``{6: 0}``); unnamed ones start at 0.
    fini
        Straight-line ALU instructions run once after the last word.
    results
        Registers (r1..r7) whose values after ``fini`` the pipe reports, in this order.

    A ``Pipe`` is only data; :func:`verify` checks it and returns it with registers as ints.
    """

    name: str
    body: tuple = ()
    init: Mapping = field(default_factory=dict)
    fini: tuple = ()
    results: tuple = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise PipeError(f"a pipe's name must be a non-empty str, not {self.name!r}")
        for attr in ("body", "fini", "results"):
            value = getattr(self, attr)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise PipeError(f"pipe {self.name!r}: {attr} must be a sequence, not {value!r}")
            object.__setattr__(self, attr, tuple(value))
        if not isinstance(self.init, Mapping):
            raise PipeError(f"pipe {self.name!r}: init must be a mapping, not {self.init!r}")
        object.__setattr__(self, "init", MappingProxyType(dict(self.init)))

    @property
    def stores(self) -> bool:
        """Whether the pipe changes words (has a ``stw``) rather than only observing them."""
        return any(ins[0] == "stw" for ins in self.body)

    def __hash__(self):
        return hash((self.name, self.body, frozenset(self.init.items()), self.fini,
                     self.results))

    def __eq__(self, other):
        if not isinstance(other, Pipe):
            return NotImplemented
        return (self.name, self.body, dict(self.init), self.fini, self.results) == \
               (other.name, other.body, dict(other.init), other.fini, other.results)


def _fail(pipe: str, where: str, index: int, ins: object, problem: str):
    raise PipeError(f"pipe {pipe!r}, {where}[{index}] {ins!r}: {problem}")


def _check_instruction(name: str, where: str, i: int, ins: object, length: int) -> tuple:
    """One instruction, operands checked and registers as ints."""
    if not isinstance(ins, tuple) or not ins or not isinstance(ins[0], str):
        _fail(name, where, i, ins, "an instruction is a tuple (opcode, operands...)")
    op, args = ins[0], ins[1:]
    if op not in FORMS:
        _fail(name, where, i, ins, f"unknown opcode {op!r}")
    if where == "fini" and op in _BODY_ONLY:
        _fail(name, where, i, ins, f"{op} is not allowed in fini (straight-line ALU code only)")
    forms = [f for f in FORMS[op] if len(f) == len(args)]
    if not forms:
        counts = " or ".join(str(len(f)) for f in FORMS[op])
        _fail(name, where, i, ins, f"{op} takes {counts} operands, not {len(args)}")
    out = [op]
    for kind, arg in zip(forms[0], args):
        if kind in (Operand.DEST, Operand.SRC):
            try:
                r = register(arg)
            except ValueError as exc:
                _fail(name, where, i, ins, str(exc))
            if kind == Operand.DEST and r == ZERO:
                _fail(name, where, i, ins, "writes r0 (r0 reads 0 and cannot be written)")
            out.append(r)
            continue
        if isinstance(arg, bool) or not isinstance(arg, int):
            _fail(name, where, i, ins, f"{kind} operand must be an int, not {arg!r}")
        if kind == Operand.IMM32 and not 0 <= arg <= MASK:
            _fail(name, where, i, ins, f"immediate {arg} out of range 0..{MASK:#x}")
        if kind == Operand.SHIFT and not 0 <= arg <= 31:
            _fail(name, where, i, ins, f"shift amount {arg} out of range 0..31")
        if kind == Operand.OFFSET and arg != 0:
            _fail(name, where, i, ins,
                  f"stw offset {arg} writes outside its output (only offset 0, the word itself)")
        if kind == Operand.TARGET:
            if arg <= i:
                _fail(name, where, i, ins,
                      f"branch target {arg} is not after the branch: a loop, refused")
            if arg > length:
                _fail(name, where, i, ins,
                      f"branch target {arg} beyond the end of the body ({length})")
        out.append(arg)
    return tuple(out)


def _check_persistent_use(name: str, i: int, ins: tuple, ops: dict) -> None:
    """Refuse a body instruction that touches r6/r7 other than as their accumulation."""
    op, regs = ins[0], ins[1:]
    if op in ("li", "shl", "shr"):
        regs = regs[:1] if op == "li" else regs[:2]
    elif op in BRANCH_OPS:
        regs = regs[:2]
    touched = [r for r in regs if r in PERSISTENT]
    if not touched:
        return
    if op in ACCUMULATORS and len(regs) == 3:
        rd, ra, rb = regs
        if rd in PERSISTENT and ((ra == rd) != (rb == rd)):
            other = rb if ra == rd else ra
            if other not in PERSISTENT:
                first = ops.setdefault(rd, op)
                if first != op:
                    _fail(name, "body", i, ins,
                          f"r{rd} is accumulated by both {first} and {op} (one operation each)")
                return
    _fail(name, "body", i, ins,
          f"persistent register r{touched[0]} used other than as an accumulation "
          f"(op, rP, rP, rX) with op in {sorted(ACCUMULATORS)}")


def verify(pipe: Pipe) -> Pipe:
    """``pipe`` if the language allows it, with every register as an int.

    Raises
    ------
    PipeError
        Naming the pipe, the instruction's place (``body[3]``) and the problem: an unknown
        opcode, a wrong operand count or type, a register out of range, a write to ``r0``, an
        immediate out of range, a loop (a branch not forward), ``stw`` with an offset, ``ldw``/
        ``stw``/branches in ``fini``, a persistent register used in ``body`` other than as its
        accumulation, a body longer than :data:`MAX_BODY`, bad ``init`` or ``results``.
    TypeError
        If ``pipe`` is not a :class:`Pipe`.
    """
    if not isinstance(pipe, Pipe):
        raise TypeError(f"verify takes a Pipe, not {pipe!r}")
    name = pipe.name
    if len(pipe.body) > MAX_BODY:
        raise PipeError(f"pipe {name!r}: body of {len(pipe.body)} instructions is longer than "
                        f"MAX_BODY ({MAX_BODY})")
    body = tuple(_check_instruction(name, "body", i, ins, len(pipe.body))
                 for i, ins in enumerate(pipe.body))
    fini = tuple(_check_instruction(name, "fini", i, ins, len(pipe.fini))
                 for i, ins in enumerate(pipe.fini))
    ops: dict = {}
    for i, ins in enumerate(body):
        _check_persistent_use(name, i, ins, ops)
    init = {}
    for reg, value in pipe.init.items():
        try:
            r = register(reg)
        except ValueError as exc:
            raise PipeError(f"pipe {name!r}: init {reg!r}: {exc}") from None
        if r not in PERSISTENT:
            raise PipeError(f"pipe {name!r}: init r{r}: only persistent registers "
                            f"(r6, r7) have start values")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MASK:
            raise PipeError(f"pipe {name!r}: init r{r} = {value!r} is not a 32-bit unsigned int")
        init[r] = value
    results = []
    for reg in pipe.results:
        try:
            r = register(reg)
        except ValueError as exc:
            raise PipeError(f"pipe {name!r}: results {reg!r}: {exc}") from None
        if r == ZERO:
            raise PipeError(f"pipe {name!r}: results r0: r0 is always 0, not a result")
        results.append(r)
    return Pipe(name, body, init, fini, tuple(results))


# --- Meaning: each instruction over NumPy uint32 arrays ---------------------------------------

def _u32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.uint32)


def alu(op: str, a, b=None):
    """What ``op`` computes on uint32 operands (arrays or scalars), as uint32.

    ``b`` is the second register for the three-register operations and the immediate for
    ``shl``/``shr``/``li``; ``mov``, ``bswap`` and ``li`` ignore what they do not use.
    """
    if op == "li":
        return _u32(b if b is not None else a)
    a = _u32(a)
    if op == "mov":
        return a.copy()
    if op == "bswap":
        return a.byteswap()
    if op in ("shl", "shr"):
        s = int(b)
        return (a << np.uint32(s)) if op == "shl" else (a >> np.uint32(s))
    b = _u32(b)
    if op == "add":
        return a + b                      # uint32 arithmetic wraps modulo 2**32
    if op == "sub":
        return a - b
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    if op == "xor":
        return a ^ b
    if op == "addc":
        s = a.astype(np.uint64) + b.astype(np.uint64)
        return ((s + (s >> np.uint64(32))) & np.uint64(MASK)).astype(np.uint32)
    raise ValueError(f"{op!r} is not an ALU operation")


def branch_taken(op: str, a, b) -> np.ndarray:
    """Where a ``beq``/``bne`` on ``a``, ``b`` is taken (a bool array)."""
    if op == "beq":
        return _u32(a) == _u32(b)
    if op == "bne":
        return _u32(a) != _u32(b)
    raise ValueError(f"{op!r} is not a branch")


def addc_scalar(a: int, b: int) -> int:
    """Ones' complement add of two 32-bit ints (the sequential, one-word-at-a-time rule)."""
    s = a + b
    return (s + (s >> 32)) & MASK


def reduce_accumulation(op: str, values) -> int:
    """The accumulation ``op`` of a vector of words, as if added one at a time from identity.

    ``addc`` is computed as one 64-bit sum and a fold. Proof that this equals the sequential
    end-around-carry result ``r_{i+1} = addc(r_i, x_i)`` from ``r_0 = 0``: for ``a, b`` in
    ``[0, M]`` (``M = 2**32 - 1``), ``s = a + b`` is in ``[0, 2M]``; if ``s <= M`` the result is
    ``s``, otherwise (``s >= 2**32``) it is ``s - 2**32 + 1 = s - M``, in ``[1, M]``. So every
    step keeps (i) ``r ≡ r_0 + Σx (mod M)``, (ii) ``r`` in ``[0, M]``, and (iii) ``r == 0`` only if
    every term so far is 0 (a nonzero sum never returns to 0: a carry leaves ``s - M >= 1``).
    Hence with ``T = Σx`` (exact: fewer than 2**32 words of 32 bits fit in 64 bits), the
    sequential result is 0 if ``T == 0`` and otherwise the unique value in ``[1, M]`` congruent
    to ``T`` mod ``M``: ``(T - 1) % M + 1``. That is what this returns.
    """
    v = _u32(values).ravel()
    if op == "addc":
        if v.size >= 1 << 32:
            raise ValueError("addc reduction of 2**32 words or more would overflow 64 bits")
        total = int(v.sum(dtype=np.uint64))
        return 0 if total == 0 else (total - 1) % MASK + 1
    if v.size == 0:
        return IDENTITY[op]
    if op == "add":
        return int(v.sum(dtype=np.uint64)) & MASK
    if op == "xor":
        return int(np.bitwise_xor.reduce(v))
    if op == "or":
        return int(np.bitwise_or.reduce(v))
    if op == "and":
        return int(np.bitwise_and.reduce(v))
    raise ValueError(f"{op!r} is not an accumulation ({sorted(ACCUMULATORS)})")


def combine(op: str, a: int, b: int) -> int:
    """Two partial accumulations ``a``, ``b`` of ``op`` joined (scalars)."""
    if op == "addc":
        return addc_scalar(a, b)
    return int(alu(op, a, b))


# --- Streams -----------------------------------------------------------------------------------

def words_of(data) -> np.ndarray:
    """``data`` (bytes-like) as network-order 32-bit words, the last padded with zero bytes."""
    raw = memoryview(data).cast("B")
    pad = -len(raw) % 4
    buf = bytes(raw) + bytes(pad) if pad else raw
    return np.frombuffer(buf, dtype=">u4").astype(np.uint32)


def bytes_of(words, length: int) -> bytes:
    """The first ``length`` bytes of network-order ``words``."""
    w = _u32(words)
    if not 0 <= length <= 4 * w.size:
        raise ValueError(f"length {length} does not fit in {w.size} words")
    return w.astype(">u4").tobytes()[:length]


# --- A straight-line-with-forward-branches body over all words at once ------------------------

def run_body(body: Sequence[tuple], words: np.ndarray, *, registers: int,
             accumulate: Mapping[int, str], acc: dict,
             executed: list | None = None) -> np.ndarray:
    """Run ``body`` on every word at once; return the words it stores; update ``acc``.

    This is the whole-stream meaning of a body: each word starts with its temporaries at 0,
    ``ldw`` reads the word entering, ``stw`` sets the word leaving (the word entering if no
    ``stw`` runs), forward branches are masks (a word that takes a branch skips to the target),
    and an accumulation into a register of ``accumulate`` (register -> op) contributes the
    word's operand where the word executes it and the identity elsewhere, reduced over all
    words. ``registers`` is the register-file size (8 for one pipe; a fused program renames
    many pipes into one larger file). ``body`` must be verified (or built from verified pipes).
    With ``executed`` (a list), the number of words that ran each instruction is appended to
    it, one int per instruction (what a cost model charges for code with branches).
    """
    words = _u32(words)
    n = words.size
    regs = [np.zeros(n, dtype=np.uint32) for _ in range(registers)]
    out = words.copy()
    active = np.ones(n, dtype=bool)
    arrivals: dict[int, np.ndarray] = {}
    for i, ins in enumerate(body):
        if i in arrivals:
            active = active | arrivals.pop(i)
        ran = int(np.count_nonzero(active))
        if executed is not None:
            executed.append(ran)
        if not ran:
            continue
        full = ran == n
        op = ins[0]
        if op in BRANCH_OPS:
            taken = active & branch_taken(op, regs[ins[1]], regs[ins[2]])
            t = ins[3]
            arrivals[t] = arrivals[t] | taken if t in arrivals else taken
            active = active & ~taken
            continue
        if op == "stw":
            out = regs[ins[1]].copy() if full else np.where(active, regs[ins[1]], out)
            continue
        rd = ins[1]
        if rd in accumulate:
            other = ins[3] if ins[2] == rd else ins[2]
            vals = regs[other] if full else np.where(active, regs[other], IDENTITY[op])
            acc[rd] = combine(op, acc[rd], reduce_accumulation(op, vals))
            continue
        if op == "ldw":
            value = words
        elif op == "li":
            value = np.full(n, ins[2], dtype=np.uint32)
        elif op in ("mov", "bswap"):
            value = alu(op, regs[ins[2]])
        elif op in ("shl", "shr"):
            value = alu(op, regs[ins[2]], ins[3])
        else:
            value = alu(op, regs[ins[2]], regs[ins[3]])
        regs[rd] = value.copy() if full else np.where(active, value, regs[rd])
    return out


def run_fini(fini: Sequence[tuple], regs: list[int]) -> list[int]:
    """Run straight-line ``fini`` on scalar registers ``regs`` (modified and returned)."""
    for ins in fini:
        op, rd = ins[0], ins[1]
        if op == "li":
            regs[rd] = ins[2]
        elif op in ("mov", "bswap"):
            regs[rd] = int(alu(op, regs[ins[2]]))
        elif op in ("shl", "shr"):
            regs[rd] = int(alu(op, regs[ins[2]], ins[3]))
        else:
            regs[rd] = int(alu(op, regs[ins[2]], regs[ins[3]]))
    return regs


def accumulations(body: Sequence[tuple]) -> dict[int, str]:
    """Persistent register -> its accumulation op, for a verified pipe's body."""
    return {ins[1]: ins[0] for ins in body
            if ins[0] in ACCUMULATORS and len(ins) == 4 and ins[1] in PERSISTENT}


def run(pipe: Pipe, words) -> tuple[np.ndarray, tuple[int, ...]]:
    """The reference meaning of one pipe: ``(words leaving, results after fini)``.

    Raises
    ------
    PipeError
        If the pipe does not verify.
    """
    pipe = verify(pipe)
    acc_ops = accumulations(pipe.body)
    acc = {r: pipe.init.get(r, 0) for r in PERSISTENT}
    out = run_body(pipe.body, _u32(words), registers=NUM_REGISTERS, accumulate=acc_ops, acc=acc)
    regs = [0] * NUM_REGISTERS
    for r in PERSISTENT:
        regs[r] = acc[r]
    run_fini(pipe.fini, regs)
    return out, tuple(regs[r] for r in pipe.results)


# --- The standard pipes -------------------------------------------------------------------------
# Programs in the language that both floors use: the software's fused loops
# (sw.libos.ilp.pipes, which names them for users) and the cards' hardware pipes (hw.an2.pipes),
# so a card's checksum is the software's instruction for instruction.

#: The word leaves unchanged (with a storing movement rule: a plain copy).
COPY = verify(Pipe("copy", body=[("ldw", "r1"), ("stw", "r1")]))

#: The Internet checksum's one's-complement sum (RFC 1071): the words added with end-around
#: carry into r6, folded to 16 bits in ``fini`` (twice: the first fold can carry once more).
#: The result ``r6`` is the sum, not complemented, so a stack can add a header's sum to it.
CKSUM = verify(Pipe(
    "cksum",
    body=[("ldw", "r1"), ("addc", "r6", "r6", "r1")],
    fini=[("li", "r3", 0xFFFF),
          ("shr", "r1", "r6", 16), ("and", "r2", "r6", "r3"), ("add", "r6", "r1", "r2"),
          ("shr", "r1", "r6", 16), ("and", "r2", "r6", "r3"), ("add", "r6", "r1", "r2")],
    results=["r6"]))

#: Reverse each word's four bytes (a big-endian/little-endian conversion of 32-bit fields).
BSWAP = verify(Pipe("bswap", body=[("ldw", "r1"), ("bswap", "r2", "r1"), ("stw", "r2")]))

#: Swap the two bytes of each 16-bit half of a word (16-bit fields' byte order).
BSWAP16 = verify(Pipe("bswap16", body=[
    ("ldw", "r1"), ("shl", "r2", "r1", 8), ("li", "r3", 0xFF00FF00), ("and", "r2", "r2", "r3"),
    ("shr", "r4", "r1", 8), ("li", "r3", 0x00FF00FF), ("and", "r4", "r4", "r3"),
    ("or", "r5", "r2", "r4"), ("stw", "r5")]))

#: Swap each word's two 16-bit halves.
HSWAP16 = verify(Pipe("hswap16", body=[
    ("ldw", "r1"), ("shl", "r2", "r1", 16), ("shr", "r3", "r1", 16), ("or", "r4", "r2", "r3"),
    ("stw", "r4")]))


def scramble(key: int, *, name: str = "scramble") -> Pipe:
    """A pipe that xors every word with ``key`` (its own inverse: run twice, it unscrambles).

    Raises
    ------
    TypeError, ValueError
        If ``key`` is not a 32-bit unsigned int.
    """
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"scramble key must be an int, not {key!r}")
    if not 0 <= key <= MASK:
        raise ValueError(f"scramble key must fit in 32 unsigned bits, not {key!r}")
    return verify(Pipe(name, body=[("ldw", "r1"), ("li", "r2", key), ("xor", "r3", "r1", "r2"),
                                   ("stw", "r3")]))
