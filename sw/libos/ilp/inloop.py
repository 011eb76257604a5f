"""ILP pipes run inside a driver's copy loop (issue 17: Cheetah's ``ilp`` switch).

Over the LANCE-style card every byte crosses the CPU twice in the separate-pass design: the
driver's programmed-I/O copy out of (or into) the card's buffer, and the Internet checksum the
stack computes over the segment. Dynamic ILP fuses the two: the library hands the kernel its
pipe list (:meth:`sw.exokernel.aegis.Aegis.install_rx_pipes`), the kernel compiles it with the
data-movement rule of the card bound (:func:`sw.libos.ilp.compiler.build`) and the driver runs
the fused program as it copies. What the pipes compute travels with the frame
(:class:`IlpFrame`) to the library, which uses it instead of summing the bytes again.

Receive: the rule :data:`PMAD_PIO_IN` (word loads from the card's buffer SRAM, stored to a host
buffer: the loop ``sw/drivers/lance.py`` charges as its bus transaction plus the host stores).
The kernel's copy runs before the frame's owner is known, so it accepts only pipes that observe
(no ``stw``). The ``cksum`` pipe then gives the one's-complement sum of the whole frame; the
stack takes the TCP segment's sum from it by subtracting the bytes outside the segment (the
Ethernet header and any link padding; the IP header, once its checksum is verified, sums to
0 mod 0xffff and needs nothing), as Linux's ``CHECKSUM_COMPLETE`` does (:func:`segment_sum`).

Transmit: the rule ``PMAD_PIO`` (:mod:`sw.libos.ilp.movement`). The TCP leaves the segment's
checksum to the copy (:func:`mark_sum_at`: the field holds the pseudo-header's sum, as Linux's
``CHECKSUM_PARTIAL`` asks a card to complete it); each layer that prepends a header moves the
request past it (:func:`prepend_request`), and the driver's fused copy completes it
(:func:`fill_checksum`) and stores the field's word again.

Costs (the fused loop's own instructions, :mod:`sw.libos.ilp.cost`): the copy loop is charged
by the driver as before (its bus reads or writes and the host side). On receive the card's
reads stall the CPU, so the pipes add their own machine instructions (:func:`pipe_cycles`:
what the words ran, and each pipe's ``fini``). On transmit the card's writes are posted, so
the loop's instructions run while they drain (:mod:`sw.libos.ilp.cost`); only cycles beyond
the I/O time show (:func:`overlapped_cycles`). The bytes outside the summed piece, and the
pseudo-header, are summed in line (:func:`adjust_cycles`).
"""
from __future__ import annotations

import math

from hw.ilp.registers import PipeError

from ..net import checksum as ck
from ..net.gather import Gather
from .compiler import Program, build
from .cost import MACHINE_INSTRUCTIONS
from .execute import Outcome, execute
from .movement import Movement

__all__ = ["PMAD_PIO_IN", "IlpFrame", "check_observers", "observing_program", "run_in_copy", "pipe_cycles",
           "fini_cycles", "overlapped_cycles", "frame_sum", "segment_sum", "adjust_cycles",
           "TxFrame", "TxGather", "mark_sum_at", "sum_request", "prepend_request",
           "fill_checksum"]

#: Programmed I/O out of the PMAD-AA's buffer SRAM into a host buffer: one ``lw`` from I/O
#: space and one ``sw`` to memory per word (``sw/drivers/lance.py``'s receive copy).
PMAD_PIO_IN = Movement("pmad-pio-in", True, "contiguous", 1, 1, 0)


class IlpFrame(bytes):
    """A frame's bytes as a fused copy loop produced them, with the pipes' :class:`Outcome`.

    A ``bytes`` (everything that takes a frame takes it); :func:`frame_sum` reads the
    checksum pipe's result from it.
    """

    outcome: Outcome

    def __new__(cls, data: bytes, outcome: Outcome) -> "IlpFrame":
        if not isinstance(outcome, Outcome):
            raise TypeError(f"an IlpFrame carries an Outcome, not {outcome!r}")
        obj = super().__new__(cls, data)
        obj.outcome = outcome
        return obj


def pipe_cycles(program: Program, outcome: Outcome, nbytes: int) -> float:
    """Cycles the pipes add to the copy loop of ``nbytes`` they were fused into: their machine
    instructions (:data:`~sw.libos.ilp.cost.MACHINE_INSTRUCTIONS`) as often as the words
    really ran them (:attr:`Outcome.executed`; the loop's load, store and loop overhead are
    the copy's, charged by the driver), plus every pipe's ``fini`` (one cycle an instruction,
    as :func:`~sw.libos.ilp.cost.call_cycles` counts it)."""
    if not isinstance(program, Program):
        raise TypeError(f"pipe_cycles takes a Program, not {program!r}")
    if not -(-nbytes // 4):
        return 0.0
    ran = sum(c * MACHINE_INSTRUCTIONS[op]
              for c, op in zip(outcome.executed, program.origin) if op is not None)
    return float(ran + fini_cycles(program))


def fini_cycles(program: Program) -> int:
    """Every pipe's ``fini`` instructions, a cycle each (as
    :func:`~sw.libos.ilp.cost.call_cycles` counts them)."""
    return sum(MACHINE_INSTRUCTIONS[i[0]] or 1 for p in program.pipes for i in p.fini)


def overlapped_cycles(own: float, io: float) -> float:
    """Cycles a loop of ``own`` instruction cycles shows beyond ``io`` cycles of posted I/O
    writes it overlaps (the stream goes at the slower of the two)."""
    return max(0.0, own - io)


def check_observers(program: Program) -> None:
    """Refuse a program with a pipe that changes words (a driver's receive copy runs before the
    frame's owner is known: such a pipe would change other environments' frames).

    Raises
    ------
    PipeError
        Naming the pipes.
    """
    if not isinstance(program, Program):
        raise TypeError(f"check_observers takes a Program, not {program!r}")
    if any(p.stores for p in program.pipes):
        raise PipeError(f"pipes {[p.name for p in program.pipes if p.stores]} change words: "
                        f"a driver's copy loop runs only pipes that observe")


def observing_program(pipes, movement: Movement) -> Program:
    """``pipes`` fused with ``movement`` (:func:`~sw.libos.ilp.compiler.build`), refused if a
    pipe changes words (:func:`check_observers`).

    Raises
    ------
    PipeError
        For a pipe that does not verify or changes words.
    """
    program = build(pipes, movement)
    check_observers(program)
    return program


def run_in_copy(program: Program, data: bytes) -> tuple[IlpFrame, float]:
    """Run ``program`` over the bytes a driver's loop copies: ``(frame, cycles)``, the bytes
    the loop stored with the pipes' results, and what the pipes add to the loop
    (:func:`pipe_cycles`).

    Raises
    ------
    PipeError
        If the program changes words (a copy out of a card before demultiplexing may only
        observe them).
    """
    check_observers(program)
    out = execute(program, data)
    return IlpFrame(out.data if out.data is not None else bytes(data), out), \
        pipe_cycles(program, out, len(data))


def frame_sum(frame) -> int | None:
    """The one's-complement sum of all of ``frame``'s bytes its copy loop's ``cksum`` pipe
    computed, or None (a plain frame, or no ``cksum`` pipe ran)."""
    outcome = getattr(frame, "outcome", None)
    if not isinstance(outcome, Outcome) or "cksum" not in outcome.names:
        return None
    return outcome.result("cksum")[0]


def segment_sum(total: int, frame: bytes, start: int, end: int, *,
                zero: tuple[int, int] | None = None) -> tuple[int, int]:
    """The one's-complement sum of ``frame[start:end]`` from ``total``, the sum of the whole
    frame (RFC 1071: the sum is taken mod 0xffff), and the bytes outside the piece the CPU
    summed to get it: ``(sum, outside)``. ``zero``: a range ``(a, b)`` before ``start`` known to
    sum to 0 mod 0xffff, which is not summed (an IPv4 header whose checksum was just verified:
    with its checksum field a good header sums to 0xffff). ``start`` and ``zero``'s ends must be
    even (the pieces' 16-bit words are the frame's); the bytes after ``end`` are summed at
    their own offset's parity.

    Raises
    ------
    ValueError
        For an odd or out-of-order boundary, a range outside the frame or a total outside
        0..0xffff.
    """
    n = len(frame)
    a, b = zero if zero is not None else (start, start)
    cuts = (0, a, b, start, end, n)
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in cuts) \
            or any(x > y for x, y in zip(cuts, cuts[1:])):
        raise ValueError(f"piece [{start}, {end}) with zero range {zero!r} is not in order "
                         f"inside a frame of {n} bytes")
    if (a | b | start) & 1:
        raise ValueError(f"the piece and the zero range start and end at even offsets, not "
                         f"{start} and {zero!r}")
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= 0xFFFF:
        raise ValueError(f"a frame's sum is an int in 0..0xffff, not {total!r}")
    outside = ck.combine([(ck.ones_sum(frame[:a]), a), (0, b - a),
                          (ck.ones_sum(frame[b:start]), start - b), (0, end - start),
                          (ck.ones_sum(frame[end:]), n - end)])
    s = (total - outside) % 0xFFFF
    return s, a + (start - b) + (n - end)


def adjust_cycles(nbytes: int, profile) -> int:
    """Cycles to sum ``nbytes`` in line (the pseudo-header, the headers outside the segment):
    the tuned in_cksum's cached cycles per word (the bytes are in the data cache: the copy loop
    just stored them), without its call (a few adds in the caller's code)."""
    if nbytes <= 0:
        return 0
    return math.ceil(profile.checksum_cached_cycles_per_word.value * -(-nbytes // 4))


# -- transmit: the checksum left to the copy loop ---------------------------------------------
class TxFrame(bytes):
    """Bytes to send whose Internet checksum the copy loop completes (:attr:`sum_at`)."""

    sum_at: tuple[int, int, int]


class TxGather(Gather):
    """A gather list to send whose Internet checksum the copy loop completes (:attr:`sum_at`)."""

    __slots__ = ("sum_at",)


def mark_sum_at(data, start: int, field: int, zero_from: int | None = None):
    """``data`` (bytes or a Gather) marked: the one's-complement sum of its bytes from
    ``start`` to the end is to be completed by the copy loop and stored (complemented) in the
    16-bit field at ``field``, which holds the sum of what is not in those bytes (a TCP
    segment's pseudo-header sum), as Linux's ``CHECKSUM_PARTIAL`` asks a card to. The bytes
    from ``zero_from`` to ``start`` (if given) sum to 0 mod 0xffff (an IPv4 header with its
    checksum) and need not be taken out of the frame's sum.

    Raises
    ------
    ValueError
        For an odd or out-of-order offset or a field not inside the summed bytes.
    """
    z = start if zero_from is None else zero_from
    cuts = (0, z, start, field, field + 2, len(data))
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in cuts) \
            or any(x > y for x, y in zip(cuts, cuts[1:])) or (z | start | field) & 1:
        raise ValueError(f"a checksum to complete from byte {start!r} (zero from "
                         f"{zero_from!r}) into the field at {field!r} of {len(data)} bytes: "
                         f"even offsets in order, the field inside")
    out = TxGather(data.pieces) if isinstance(data, Gather) else TxFrame(bytes(data))
    out.sum_at = (start, field, z)
    return out


def sum_request(data) -> tuple[int, int, int] | None:
    """``(start, field, zero_from)`` of data marked by :func:`mark_sum_at`, or None."""
    return getattr(data, "sum_at", None)


def prepend_request(payload, framed, header_len: int, *, header_sums_to_zero: bool = False):
    """``framed`` (a header of ``header_len`` bytes, then ``payload``) marked as ``payload``
    was, its request moved past the header (which sums to 0 if ``header_sums_to_zero``: an IP
    header with its checksum); ``framed`` as it is if ``payload`` was not marked."""
    at = sum_request(payload)
    if at is None:
        return framed
    start, field, z = (a + header_len for a in at)
    return mark_sum_at(framed, start, field, 0 if header_sums_to_zero and z == header_len
                       else z)


def fill_checksum(program: Program, frame: bytes, request: tuple[int, int, int]
                  ) -> tuple[bytes, Outcome, int]:
    """Run ``program`` (with the ``cksum`` pipe) over ``frame`` as the transmit copy does and
    complete the checksum :func:`sum_request` asks for: ``(frame with the field filled,
    outcome, bytes summed in line)`` (the bytes before the request's zero range, taken out of
    the frame's sum).

    Raises
    ------
    ValueError
        If the program has no ``cksum`` pipe.
    """
    start, field, z = request
    out = execute(program, frame)
    total = frame_sum(IlpFrame(frame, out))
    if total is None:
        raise ValueError(f"a checksum to complete needs the cksum pipe, not {list(out.names)}")
    seg, outside = segment_sum(total, frame, start, len(frame), zero=(z, start))
    value = ck.finish(seg or 0xFFFF)       # ones_sum's form: a nonzero total 0 is 0xffff
    return frame[:field] + value.to_bytes(2, "big") + frame[field + 2:], out, outside
