"""Ultrix's delivery of a hardware exception to a user signal handler, and the way back.

A user program that catches ``SIGFPE`` (an ``add`` trapping on signed overflow) or ``SIGSEGV``
(a protection fault) pays, on ULTRIX 4.2 for MIPS, the path its source shows:

1. the general exception entry for a trap from user mode and ``VEC_trap``, which saves the
   full exception frame (locore.s: ``tfi_save`` adds s0-s8 to the syscall path's registers);
   ``trap()`` (sys/machine/mips/trap.c) decodes the cause; a protection fault first goes
   through the fault path that finds the access illegal;
2. ``psignal()`` posts the signal; on the way out ``trap()`` tests ``ISSIG`` and ``psig()``
   calls ``sendsig()`` (sys/machine/mips/machdep.c), which checks the user stack with
   ``useracc()`` (a ``vtopte`` and the shared-memory test per page) and stores the signal
   state into a ``sigcontext`` on it: onstack, mask, pc, v0, a0-a3, sp, ownedfp, cause,
   badvaddr (13 words), then points a0-a3, sp and the pc at the trampoline;
3. the exception exit restores the whole frame (``exception_exit``) and the process runs the
   signal trampoline (libc's ``sigcode``), which saves the registers sendsig did not (at, v1,
   t0-t9, s0-s8, gp, ra, mdlo, mdhi: 28 words) and calls the handler;
4. the handler returns to the trampoline, which makes the ``sigreturn`` system call:
   ``useracc()`` again, the mask, and the copy of the whole register set from the sigcontext
   into the exception frame (33 words), left through the ``FULLRESTORE`` exit.

Instruction counts are estimates with their reasoning in :data:`SIGNAL_PATH`; each piece
runs as a kernel path (:meth:`sim.cpu.CPU.path`: instructions at the profile's kernel CPI
plus cold misses of its code and data where the machine models its memory system), and the
stores beyond the write buffer's entries wait for it at the profile's word-write time (the
same rule as the system call's derivation in ``sim/platforms/ultrix_costs.py``).
VALIDATION.md X1 (SOSP'95 table 5) checks the sum.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim.cpu import EXCEPTION, SYSCALL

__all__ = ["PathPiece", "SIGNAL_PATH", "FAULT_PATH", "deliver_signal"]


@dataclass(frozen=True)
class PathPiece:
    """One piece of the signal path: ``instructions`` (estimate), ``stores`` of them that go
    to memory in a burst, and the bytes of code and data the piece touches."""

    name: str
    instructions: int
    stores: int
    code_bytes: int
    data_bytes: int
    why: str


#: The path from the trap to the handler and back, in order (estimates; see the module
#: docstring for the source of each step).
SIGNAL_PATH: tuple[PathPiece, ...] = (
    PathPiece("trap_entry", 130, 40, 1024, 256,
              "locore.s exception entry from user mode (34 instructions, as the system call's) "
              "and VEC_trap's tfi_save of the rest of the 40-word frame (about 30 more); "
              "trap(): cause decode, USERMODE bookkeeping, u.u_code, the switch to the "
              "signal case (about 65)"),
    PathPiece("psignal_psig", 150, 6, 1536, 256,
              "psignal(): the ignore/mask/catch tests, p_sig |= mask, aston (about 60); "
              "trap()'s ISSIG and issig()'s loop over the pending set (about 40); psig(): "
              "the action, the new mask, u_signal bookkeeping, the call of sendsig (about "
              "50)"),
    PathPiece("sendsig", 110, 13, 768, 128,
              "machdep.c sendsig(): the stack choice and STACK_ALIGN, useracc() (vtopte and "
              "isasmsv for the sigcontext's page, about 40), the 13 stores into the "
              "sigcontext and the 8 into the frame (a0-a3, sp, epc), the SIGFPE/SIGSEGV code "
              "test (about 70)"),
    PathPiece("exception_exit", 60, 0, 256, 0,
              "locore.s exception_exit restoring the whole frame (about 45 loads) and rfe"),
    PathPiece("sigtramp", 45, 28, 128, 0,
              "libc sigcode: 28 stores of the registers sendsig left (at, v1, t0-t9, s0-s8, "
              "gp, ra, mdlo, mdhi), the call of the handler, and after it a0 = scp and the "
              "sigreturn syscall (about 45 user instructions)"),
    PathPiece("sigreturn", 120, 33, 768, 128,
              "machdep.c sigreturn(): useracc() (about 40), u_onstack and the mask (about 10), "
              "the copy of pc, mdlo, mdhi and 30 registers from the sigcontext into the frame "
              "(33 loads and stores, about 70); the system call's own entry is charged as "
              "syscall_cycles"),
    PathPiece("fullrestore_exit", 60, 0, 256, 0,
              "the FULLRESTORE exit of the system call (u_eosys): the whole frame, as "
              "exception_exit"),
)

#: A protection fault's extra work before the signal (estimate): trap()'s TLB-modified or
#: address-error case looks up the page's pte (vtopte), finds the protection insufficient
#: (no page to bring in), sets u_code and the faulting address: about 150 instructions.
FAULT_PATH = PathPiece("protection_fault", 150, 4, 1024, 128,
                       "trap(): vtopte of the faulting address, the protection test, the "
                       "SIGSEGV decision, u_code and badvaddr (about 150 instructions)")


async def _run_piece(proc, piece: PathPiece, category: str) -> None:
    """Run one piece on ``proc``'s CPU: its instructions as a kernel path, then its stores
    beyond the write buffer's entries at the memory's word-write time."""
    cpu = proc.uk.cpu
    prof = cpu.profile
    await cpu.path(f"ultrix:{piece.name}", piece.instructions, piece.code_bytes,
                   piece.data_bytes, category)
    if prof.memory is None:                     # no memory system: instructions only
        return
    extra = piece.stores - int(prof.memory.write_buffer_entries.value)
    if extra > 0:
        await cpu.charge(extra * prof.word_write_ps.value / prof.cycle_ps, EXCEPTION)


async def deliver_signal(proc, cause: str, handler) -> None:
    """Take exception ``cause`` ("overflow" or "protection") in ``proc``, deliver it to
    ``handler`` (``async handler(proc)``, the user's code) and return from it by
    ``sigreturn``: the whole round trip of a caught exception.

    Raises
    ------
    ValueError
        For an unknown cause.
    """
    if cause not in ("overflow", "protection"):
        raise ValueError(f"exception cause must be 'overflow' or 'protection', not {cause!r}")
    await proc.uk.dispatch(proc)
    pieces = list(SIGNAL_PATH)
    if cause == "protection":
        pieces.insert(1, FAULT_PATH)
    for piece in pieces:
        if piece.name == "sigreturn":
            await proc.syscall("sigreturn")     # the trap into the kernel: syscall_cycles
        await _run_piece(proc, piece, SYSCALL if piece.name == "fullrestore_exit" else EXCEPTION)
        if piece.name == "sigtramp":
            await handler(proc)
