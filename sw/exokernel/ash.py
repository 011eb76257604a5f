"""Application-specific safe handlers (ASHs): verified code the kernel runs at packet arrival.

An ASH is a program in a small RISC-like language (below). The kernel verifies it when it is
installed (:func:`verify`) and refuses it, with a message naming the instruction, if it could

* run unboundedly: only *forward* branches are allowed and programs are at most
  :data:`MAX_INSTRUCTIONS` long, so a run executes each instruction at most once;
* name a register that does not exist, or write ``r0``;
* touch memory that is not its owner's at a *constant* address (base register ``r0``): checked
  now, against the pages the owner holds.

A load or store at a register-computed address is *sandboxed*: checked at run time before it
happens; if it strays outside the owner's pages the run is aborted (:class:`AshOutcome`
``aborted``), the offending access does not happen, and the frame goes to the owner as an
ordinary upcall. Effects of earlier instructions stay, and they are confined to the owner's
memory. Constant addresses are re-checked too (without being charged as sandbox checks), so
an ASH whose owner has since given pages back aborts instead of touching them.

Instructions (``rd``, ``ra``, ``rb`` are register numbers 0-7; ``r0`` reads 0 and cannot be
written; registers are 32 bits; sizes are 1, 2 or 4 bytes, big-endian as on the wire)::

    ("li", rd, imm)                     rd = imm
    ("addi", rd, ra, imm)               rd = ra + imm
    ("add"|"sub"|"and"|"or"|"xor"|"shl"|"shr", rd, ra, rb)
    ("len", rd)                         rd = length of the message
    ("ld", rd, size, ra, imm)           rd = message[ra + imm] (past the end: abort)
    ("ldm", rd, size, ra, imm)          rd = owner memory[ra + imm]
    ("stm", rb, size, ra, imm)          owner memory[ra + imm] = rb
    ("copy", rd, ra, rb)                owner memory[rd ..] = message[ra .. ra + rb)
    ("beq"|"bne"|"blt", ra, rb, target) forward branch to instruction index ``target``
    ("reply", ra, rb)                   ask the kernel to send owner memory[ra .. ra + rb)
    ("accept",)                         end; hand the frame to the owner (upcall)
    ("consume",)                        end; the frame is handled

Falling off the end is ``accept``. Costs (charged by the kernel, :mod:`sw.exokernel.aegis`):
each executed instruction is one kernel instruction at the profile's CPI (Aegis compiles ASHs
to native code, so an instruction of this language stands for about one MIPS instruction: an
estimate), a sandbox check :data:`SANDBOX_CHECK_INSTRUCTIONS` more (an estimate after Wahbe et
al.'s software fault isolation: mask or compare the address, branch), and a ``copy`` is
charged as a copy of its length with the profile's bcopy cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

__all__ = ["AshError", "AshRefused", "AshAbort", "Ash", "AshOutcome", "verify", "echo_program",
           "MAX_INSTRUCTIONS", "SANDBOX_CHECK_INSTRUCTIONS", "MIN_REPLY", "MAX_REPLY"]

#: Longest program accepted (each instruction runs at most once, so this bounds a run).
MAX_INSTRUCTIONS = 256
#: Instructions one run-time address check costs: estimate (compare with the segment's bounds
#: twice and branch, as SFI's bounds-checking variant does).
SANDBOX_CHECK_INSTRUCTIONS = 3
#: Reply frames are MAC frames without FCS (the card appends it): 14..1514 bytes.
MIN_REPLY, MAX_REPLY = 14, 1514

_ALU = {"add", "sub", "and", "or", "xor", "shl", "shr"}
_BRANCH = {"beq", "bne", "blt"}
_SIZES = (1, 2, 4)
_MASK = (1 << 32) - 1


class AshError(Exception):
    """Base of ASH errors."""


class AshRefused(AshError, PermissionError):
    """The kernel refuses to install the ASH (the message says which instruction and why)."""


class AshAbort(AshError):
    """A check failed at run time; the handler's run was abandoned."""


#: ``owns(addr, n) -> bool``: does the ASH's owner hold every page of ``[addr, addr + n)``?
Owns = Callable[[int, int], bool]


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _reg(i: int, ins: tuple, r, what: str = "register", write: bool = False) -> None:
    if not _is_int(r) or not 0 <= r <= 7:
        raise AshRefused(f"instruction {i} {ins!r}: {what} must be r0..r7, not {r!r}")
    if write and r == 0:
        raise AshRefused(f"instruction {i} {ins!r}: r0 is read-only")


def _imm(i: int, ins: tuple, v, what: str = "immediate") -> None:
    if not _is_int(v):
        raise AshRefused(f"instruction {i} {ins!r}: {what} must be an integer, not {v!r}")


def verify(program: Sequence[tuple], owns: Owns) -> tuple[tuple, ...]:
    """Check ``program`` and return it as a tuple of tuples (rules: module docstring).

    Parameters
    ----------
    program : sequence of tuples
        The instructions.
    owns : callable(addr, n) -> bool
        Whether the owner holds ``[addr, addr + n)``.

    Raises
    ------
    AshRefused
        Naming the first offending instruction and the problem.
    """
    if isinstance(program, (str, bytes)) or not isinstance(program, Sequence):
        raise AshRefused(f"an ASH is a sequence of instruction tuples, not {program!r}")
    prog = []
    for i, ins in enumerate(program):
        if not isinstance(ins, (tuple, list)) or not ins or not isinstance(ins[0], str):
            raise AshRefused(f"instruction {i} {ins!r} has no opcode")
        prog.append(tuple(ins))
    prog = tuple(prog)
    if not prog:
        raise AshRefused("an ASH needs at least one instruction")
    if len(prog) > MAX_INSTRUCTIONS:
        raise AshRefused(f"an ASH may have at most {MAX_INSTRUCTIONS} instructions, not {len(prog)}")
    for i, ins in enumerate(prog):
        op, args = ins[0], ins[1:]

        def arity(n: int) -> None:
            if len(args) != n:
                raise AshRefused(f"instruction {i} {ins!r}: {op} takes {n} operands, not {len(args)}")
        if op == "li":
            arity(2)
            _reg(i, ins, args[0], write=True)
            _imm(i, ins, args[1])
        elif op == "addi":
            arity(3)
            _reg(i, ins, args[0], write=True)
            _reg(i, ins, args[1])
            _imm(i, ins, args[2])
        elif op in _ALU:
            arity(3)
            _reg(i, ins, args[0], write=True)
            _reg(i, ins, args[1])
            _reg(i, ins, args[2])
        elif op == "len":
            arity(1)
            _reg(i, ins, args[0], write=True)
        elif op in ("ld", "ldm", "stm"):
            arity(4)
            _reg(i, ins, args[0], write=op != "stm")
            if not _is_int(args[1]) or args[1] not in _SIZES:
                raise AshRefused(f"instruction {i} {ins!r}: size must be 1, 2 or 4, not {args[1]!r}")
            _reg(i, ins, args[2], "base register")
            _imm(i, ins, args[3], "offset")
            if op != "ld" and args[2] == 0 and not (args[3] >= 0 and owns(args[3], args[1])):
                verb = "reads" if op == "ldm" else "writes"
                raise AshRefused(f"instruction {i} {ins!r} {verb} address {args[3]:#x}, outside "
                                 f"its owner's memory")
        elif op == "copy":
            arity(3)
            for r in args:
                _reg(i, ins, r)
        elif op in _BRANCH:
            arity(3)
            _reg(i, ins, args[0])
            _reg(i, ins, args[1])
            t = args[2]
            if not _is_int(t) or t <= i:
                raise AshRefused(f"instruction {i} {ins!r} branches backwards (to {t!r}): a loop; "
                                 f"ASHs may only branch forward, so that their run time is bounded")
            if t > len(prog):
                raise AshRefused(f"instruction {i} {ins!r} branches past the end ({t} > {len(prog)})")
        elif op == "reply":
            arity(2)
            _reg(i, ins, args[0])
            _reg(i, ins, args[1])
        elif op in ("accept", "consume"):
            arity(0)
        else:
            raise AshRefused(f"instruction {i} {ins!r}: unknown opcode {op!r}")
    return prog


@dataclass
class AshOutcome:
    """What one run of an ASH did.

    Attributes
    ----------
    consumed : bool
        The frame was handled (no upcall needed).
    replies : list of bytes
        Frames it asked the kernel to send (none if the run aborted).
    instructions : int
        Instructions executed (the aborting one included).
    sandbox_checks : int
        Run-time checks of register-computed addresses.
    copied : int
        Bytes moved by ``copy``.
    aborted : str or None
        Why the run was abandoned (None: it ended normally).
    """

    consumed: bool = False
    replies: list[bytes] = field(default_factory=list)
    instructions: int = 0
    sandbox_checks: int = 0
    copied: int = 0
    aborted: str | None = None


class Ash:
    """A verified handler bound to its owner's memory.

    Parameters
    ----------
    program : sequence of tuples
        Verified with :func:`verify` (raises :class:`AshRefused`).
    owner : hashable
        The environment (for messages).
    owns : callable(addr, n) -> bool
        Whether the owner holds ``[addr, addr + n)``.
    read_mem, write_mem : callables
        ``read_mem(addr, n) -> bytes`` and ``write_mem(addr, data)`` on physical memory; the
        ASH calls them only after a successful check.
    """

    def __init__(self, program: Sequence[tuple], owner: Hashable, owns: Owns,
                 read_mem: Callable[[int, int], bytes], write_mem: Callable[[int, bytes], None]):
        self.owner = owner
        self._owns = owns
        self._read = read_mem
        self._write = write_mem
        self.program = verify(program, owns)

    def run(self, message: bytes) -> AshOutcome:
        """Run on ``message`` (a received frame).

        Never raises for the program's behaviour: a failed check ends the run with
        ``aborted`` set, no replies and the frame not consumed.
        """
        regs = [0] * 8
        out = AshOutcome()
        prog, n = self.program, len(self.program)
        msg = bytes(message)
        pc = 0

        def checked(addr: int, size: int, sandbox: bool) -> None:
            if sandbox:
                out.sandbox_checks += 1
            if addr < 0 or size < 0 or not self._owns(addr, size):
                raise AshAbort(f"ASH of {self.owner!r}, instruction {pc - 1} {prog[pc - 1]!r}: "
                               f"access to {addr:#x}+{size} is outside its owner's memory")
        try:
            while pc < n:
                ins = prog[pc]
                op = ins[0]
                out.instructions += 1
                pc += 1
                if op == "li":
                    regs[ins[1]] = ins[2] & _MASK
                elif op == "addi":
                    regs[ins[1]] = (regs[ins[2]] + ins[3]) & _MASK
                elif op in _ALU:
                    a, b = regs[ins[2]], regs[ins[3]]
                    if op == "add":
                        v = a + b
                    elif op == "sub":
                        v = a - b
                    elif op == "and":
                        v = a & b
                    elif op == "or":
                        v = a | b
                    elif op == "xor":
                        v = a ^ b
                    elif op == "shl":
                        v = a << (b & 31)
                    else:
                        v = a >> (b & 31)
                    regs[ins[1]] = v & _MASK
                elif op == "len":
                    regs[ins[1]] = len(msg)
                elif op == "ld":
                    rd, size, ra, imm = ins[1:]
                    addr = regs[ra] + imm
                    if addr < 0 or addr + size > len(msg):
                        raise AshAbort(f"ASH of {self.owner!r}, instruction {pc - 1}: load of "
                                       f"message bytes {addr}+{size} past its end ({len(msg)})")
                    regs[rd] = int.from_bytes(msg[addr:addr + size], "big")
                elif op == "ldm":
                    rd, size, ra, imm = ins[1:]
                    addr = regs[ra] + imm
                    checked(addr, size, ra != 0)
                    regs[rd] = int.from_bytes(self._read(addr, size), "big")
                elif op == "stm":
                    rb, size, ra, imm = ins[1:]
                    addr = regs[ra] + imm
                    checked(addr, size, ra != 0)
                    self._write(addr, (regs[rb] & ((1 << 8 * size) - 1)).to_bytes(size, "big"))
                elif op == "copy":
                    dst, src, length = regs[ins[1]], regs[ins[2]], regs[ins[3]]
                    checked(dst, length, True)
                    if src + length > len(msg):
                        raise AshAbort(f"ASH of {self.owner!r}, instruction {pc - 1}: copy of "
                                       f"message bytes {src}+{length} past its end ({len(msg)})")
                    self._write(dst, msg[src:src + length])
                    out.copied += length
                elif op in _BRANCH:
                    a, b = regs[ins[1]], regs[ins[2]]
                    if op == "beq":
                        taken = a == b
                    elif op == "bne":
                        taken = a != b
                    else:
                        taken = a < b
                    if taken:
                        pc = ins[3]
                elif op == "reply":
                    addr, length = regs[ins[1]], regs[ins[2]]
                    if not MIN_REPLY <= length <= MAX_REPLY:
                        raise AshAbort(f"ASH of {self.owner!r}, instruction {pc - 1}: a reply of "
                                       f"{length} bytes is not a frame ({MIN_REPLY}..{MAX_REPLY})")
                    checked(addr, length, True)
                    out.replies.append(bytes(self._read(addr, length)))
                elif op == "accept":
                    return out
                elif op == "consume":
                    out.consumed = True
                    return out
        except AshAbort as exc:
            out.aborted = str(exc)
            out.consumed = False
            out.replies = []
        return out


def echo_program(buffer: int, fcs_len: int = 4) -> list[tuple]:
    """An ASH that echoes an IPv4 UDP or TCP frame back to its sender.

    It copies the frame (less its ``fcs_len``-byte FCS) into ``buffer`` in its owner's memory,
    swaps the MAC addresses, the IP addresses and the ports (the IP and transport checksums
    are sums over these fields, so they stay valid), asks the kernel to send the result and
    consumes the frame. ``buffer`` must be owned by the ASH's owner (checked by the sandbox
    at run time, since the addresses are computed).
    """
    if not _is_int(buffer) or buffer < 0:
        raise ValueError(f"buffer must be a non-negative address, not {buffer!r}")
    if not _is_int(fcs_len) or fcs_len < 0:
        raise ValueError(f"fcs_len must be a non-negative int, not {fcs_len!r}")
    return [
        ("li", 1, buffer),            # r1 = buffer
        ("len", 7),
        ("addi", 7, 7, -fcs_len),     # r7 = length without FCS
        ("copy", 1, 0, 7),            # buffer[0..r7) = message[0..r7)
        ("ld", 2, 4, 0, 0), ("ld", 3, 2, 0, 4),        # destination MAC
        ("ld", 4, 4, 0, 6), ("ld", 5, 2, 0, 10),       # source MAC
        ("stm", 4, 4, 1, 0), ("stm", 5, 2, 1, 4),
        ("stm", 2, 4, 1, 6), ("stm", 3, 2, 1, 10),
        ("ld", 2, 4, 0, 26), ("ld", 3, 4, 0, 30),      # IP source and destination
        ("stm", 3, 4, 1, 26), ("stm", 2, 4, 1, 30),
        ("ld", 2, 2, 0, 34), ("ld", 3, 2, 0, 36),      # ports
        ("stm", 3, 2, 1, 34), ("stm", 2, 2, 1, 36),
        ("reply", 1, 7),
        ("consume",),
    ]
