"""What a fused ILP loop costs the simulated CPU: its instructions per word, charged through the
memory system, and :func:`run_on`, which runs a program over a message and charges a CPU.

Instructions per word
---------------------
The fused loop is what a compiler would make of the program on the R3000 (an estimate: the
machine instructions each operation needs, one cycle each when the data is in the cache; the
stalls are the memory system's, :mod:`sim.cache`):

* one ``lw`` per word (the one load), plus the data-movement rule's store instructions
  (:attr:`~sw.libos.ilp.movement.Movement.store_instructions`: ``sw``; or ``sh``, ``srl``,
  ``sh`` for the LANCE's 16-in-32 slots; none under DMA);
* each pipe's instructions by :data:`MACHINE_INSTRUCTIONS` (a pipe's own ``ldw``/``stw`` are
  renamings of the word register and cost nothing); :func:`run_on` counts what the words ran
  (a branch skips instructions for some words), :func:`loop_cost` without the counts every
  instruction once per word (an upper bound for pipes with branches; the standard pipes have
  none);
* loop overhead: the loop is unrolled :data:`UNROLL` (8) words deep, as the OSF/1 bcopy's
  32-byte loop, and each iteration advances each pointer (source; destination when the rule
  stores) and branches: ``(pointers + 1) / 8`` per word.

Cross-check against the calibrated rows (docs/calibration.md): the compiled ``copy`` is
``1 + 1 + 3/8 = 2.375`` cycles per word, exactly the bcopy row ``copy_issue_cycles_per_word``
(one cycle each for the load and the store, 3 loop cycles per 8-word iteration). The compiled
``cksum`` is ``1 + 3 + 2/8 = 4.25``, one cycle per word more than the calibrated tuned in_cksum
(3.25: "3 instructions per word in a 64-byte unrolled loop plus about 4 loop instructions per
16 words"). The loop overheads agree (2/8 = 4/16); the difference is the load: NetBSD's inner
step (``addu``, ``sltu``, ``addu``: the R3000 has no carry flag) is 3 instructions *besides*
the ``lw``, which the calibrated row counts inside its 3. Here the load is counted.

Memory
------
The loop is one stream through :class:`sim.cache.MemorySystem`: the source's words are read
through the data cache; under :data:`~sw.libos.ilp.movement.MEMORY` the destination's words are
stored through the write buffer (``MemorySystem.copy`` with the loop's own issue rate); under
:data:`~sw.libos.ilp.movement.AN2_DMA` nothing is stored (``MemorySystem.read``); under the
PIO rules each word is I/O writes of the platform's ``io_pio_write_ps`` (two under
:data:`~sw.libos.ilp.movement.LANCE_PIO`, one under :data:`~sw.libos.ilp.movement.PMAD_PIO`;
320 ns, also what ``hw/lance``'s card takes per write: 4 of its 80 ns cycles) (the write
buffer posts them, so the loop's instructions run while they
drain and the stream goes at the slower of the two) and a source word that misses the cache is a
full read that waits for the posted writes (``MemorySystem.pio_out``). So a fused loop and the
same pipes run as separate passes differ only by what they do: instructions and memory traffic.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from sim.cache import Address, MemorySystem
from sim.cpu import CHECKSUM, COPY, CPU, IO_WAIT, MEMORY_STALL
from sim.platforms.base import Platform, ceil_cycles

from .compiler import Program
from .execute import Outcome, execute

__all__ = ["MACHINE_INSTRUCTIONS", "UNROLL", "issue_per_word", "call_cycles", "LoopCost",
           "loop_cost", "run_on"]

#: R3000 instructions per executed operation (estimates, reasons inline).
MACHINE_INSTRUCTIONS = MappingProxyType({
    "ldw": 0,     # a pipe's ldw reads the word register: the loop's one lw is counted apart
    "stw": 0,     # likewise: the rule's store is counted apart
    "li": 0,      # a constant is loop-invariant: loaded into a spare register before the loop
    "mov": 1,     # or rd, ra, zero (an allocator might coalesce it; not assumed)
    "add": 1, "sub": 1, "and": 1, "or": 1, "xor": 1,   # addu, subu, and, or, xor
    "shl": 1, "shr": 1,                                # sll, srl
    "addc": 3,    # addu; sltu (the carry: the R3000 has no carry flag); addu the carry
    "bswap": 9,   # no byte-swap instruction: sll 24, srl 24, and/sll 8, srl 8/and, three or
    "beq": 2, "bne": 2,   # the branch and its delay slot (a nop assumed)
})
#: Words per iteration of the unrolled loop (as the OSF/1 bcopy's 32-byte loop, calibration.md).
UNROLL = 8


def issue_per_word(program: Program, executed: Sequence[int] = ()) -> float:
    """The fused loop's own cycles per word (see the module docstring).

    Without ``executed`` every pipe instruction counts once per word (an upper bound for code
    with branches). With ``executed`` (:attr:`~sw.libos.ilp.execute.Outcome.executed` of a run:
    how many words ran each fused instruction) the pipes' part is what the words really ran.
    """
    if not isinstance(program, Program):
        raise TypeError(f"issue_per_word takes a Program, not {program!r}")
    if executed:
        if len(executed) != len(program.body):
            raise ValueError(f"executed has {len(executed)} counts for a body of "
                             f"{len(program.body)} instructions")
        words = executed[0]          # the program's one load runs for every word
        ran = sum(c * MACHINE_INSTRUCTIONS[op]
                  for c, op in zip(executed, program.origin) if op is not None)
        pipes = ran / words if words else 0.0
    else:
        pipes = sum(MACHINE_INSTRUCTIONS[ins[0]] for p in program.pipes for ins in p.body)
    pointers = 2 if program.stores else 1
    return 1 + pipes + program.movement.store_instructions + (pointers + 1) / UNROLL


def call_cycles(program: Program, profile: Platform) -> float:
    """Cycles of one call of the loop outside its words: the profile's bcopy call (call,
    alignment tests, return: ``copy_call_cycles``) plus every pipe's ``fini`` instructions."""
    fini = sum(MACHINE_INSTRUCTIONS[ins[0]] or 1 for p in program.pipes for ins in p.fini)
    return profile.copy_call_cycles.value + fini


@dataclass(frozen=True)
class LoopCost:
    """The cycles of one run of a fused loop.

    Attributes
    ----------
    issue : int
        The loop's own instruction cycles (call included).
    memory_stall : int
        Waiting for main memory (read misses, a full write buffer).
    io_wait : int
        Waiting for I/O writes beyond the loop's own cycles (the PIO rule).
    misses, writes, io_writes : int
        Read misses, words stored to memory, I/O writes.
    """

    issue: int
    memory_stall: int
    io_wait: int
    misses: int
    writes: int
    io_writes: int

    @property
    def cycles(self) -> int:
        return self.issue + self.memory_stall + self.io_wait


def loop_cost(ms: MemorySystem, now: int, program: Program, nbytes: int, *, src: Address,
              dst: Address | None = None, executed: Sequence[int] = ()) -> LoopCost:
    """The cost of running ``program`` over ``nbytes`` at ``src`` (and storing at ``dst`` under
    the memory rule) starting at ``now`` (ps); the caches and write buffer move on as they
    would. ``executed`` as :func:`issue_per_word`.

    Raises
    ------
    ValueError
        For a negative length, or a memory rule without ``dst``.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"nbytes must be an int >= 0, not {nbytes!r}")
    if nbytes == 0:
        return LoopCost(0, 0, 0, 0, 0, 0)
    per = issue_per_word(program, executed)
    call = call_cycles(program, ms.profile)
    words = -(-nbytes // 4)
    rule = program.movement
    if rule.memory_writes:
        if dst is None:
            raise ValueError(f"the {rule.name} rule stores to memory: name its dst")
        st = ms.copy(now, nbytes, src, dst, call, issue_per_word=per)
        return LoopCost(st.issue, st.stall, 0, st.misses, st.writes, 0)
    if not rule.io_writes:
        st = ms.read(now, nbytes, src, per, call)
        return LoopCost(st.issue, st.stall, 0, st.misses, 0, 0)
    io_writes = words * rule.io_writes
    host = ms.pio_out(now, nbytes, src)
    own = ceil_cycles(words * per + call)
    io = ceil_cycles(io_writes * ms.profile.io_pio_write_ps.value / ms.cycle_ps)
    return LoopCost(own, host.stall, max(0, io - own), host.misses, 0, io_writes)


async def run_on(cpu: CPU, program: Program, data, *, src: Address, dst: Address | None = None,
                 category: str | None = None) -> Outcome:
    """Run ``program`` over the message ``data`` and charge ``cpu`` for the loop.

    ``src`` (and ``dst`` under the memory rule) name where the message and its copy are in the
    machine's memory (addresses or :meth:`sim.cpu.CPU.region` s), so the data cache sees the
    loop. The instruction cycles go to ``category`` (default ``copy`` for a rule that stores,
    ``checksum`` otherwise), the memory stalls to ``memory_stall`` and the PIO rule's I/O writes
    beyond them to ``io_wait``. Under the PIO rule the returned image is what the loop wrote to
    the card's buffer and its writes are charged here: a driver handing it to the card must not
    charge them again. On a machine without a modelled memory system the loop's own cycles and
    the I/O writes are charged, no stalls.

    Raises
    ------
    TypeError, ValueError
        As :func:`~sw.libos.ilp.execute.execute` and :func:`loop_cost`.
    """
    if not isinstance(cpu, CPU):
        raise TypeError(f"run_on needs a sim.cpu.CPU, not {cpu!r}")
    outcome = execute(program, data)
    nbytes = memoryview(data).nbytes
    cat = category or (COPY if program.stores else CHECKSUM)
    await cpu.charge(0, cat)       # hold the CPU (and take pending interrupts) from now on
    ms = cpu.memory
    if ms is None:
        words = -(-nbytes // 4)
        io = words * program.movement.io_writes * cpu.profile.io_pio_write_ps.value / cpu.period
        own = (words * issue_per_word(program, outcome.executed)
               + call_cycles(program, cpu.profile)) if nbytes else 0
        await cpu.charges([(own, cat), (max(0.0, io - own), IO_WAIT)])
        return outcome
    cost = loop_cost(ms, cpu.kernel.now, program, nbytes, src=src, dst=dst,
                     executed=outcome.executed)
    await cpu.charges([(cost.issue, cat), (cost.memory_stall, MEMORY_STALL),
                       (cost.io_wait, IO_WAIT)])
    return outcome
