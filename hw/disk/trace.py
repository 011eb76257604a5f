"""DiskSim "validate" traces: parse, replay against the mechanism model, compare.

Format
------
DiskSim's ``validate`` trace format (``iotrace_validate_get_ioreq_event`` in
``disksim_iotrace.c``) is ASCII, one request per line, six whitespace-separated fields::

    R Miss 1234567 8 12.345 3456.7

1. ``R`` or ``W``: read or write;
2. ``Hit`` or ``Miss``: whether the real drive's buffer held the data (as traced);
3. starting block (LBN); 4. block count;
5. the measured service time, microseconds;
6. microseconds from this request's completion to the next request's arrival.

Requests are issued one at a time: the first arrives at time 0, and request ``i + 1`` arrives
field 6 of request ``i`` after request ``i`` completes *in the simulation* (a closed loop, as in
DiskSim). This reader also accepts ``hit``/``miss`` in any case, blank lines and ``#``
comments; times are converted to whole picoseconds exactly (decimal arithmetic; a value finer
than 1 ps is rounded to the nearest).

Comparison and the demerit figure
---------------------------------
:func:`compare` reports the means, the mean and root-mean-square of the per-request error
(simulated minus measured) and the **demerit figure** of Ruemmler & Wilkes ("An introduction
to disk drive modeling", IEEE Computer 1994): the root-mean-square horizontal distance between
the two cumulative distributions of service time. Exactly, for samples ``a`` (n values) and
``b`` (m values), with the empirical quantile functions (inverses of the empirical CDFs)
``Qa(p) = a_(ceil(p n))`` and ``Qb(p) = b_(ceil(p m))`` (``x_(i)`` the i-th smallest)::

    demerit = sqrt( integral over p in (0, 1] of (Qa(p) - Qb(p))^2 dp )

Both quantile functions are step functions with steps at ``i/n`` and ``j/m``; the integral is
a finite sum over the merged steps, computed here exactly (rational breakpoints). Identical
samples give 0; samples that differ by a constant shift ``c`` give ``|c|``. DiskSim's ``rms``
utility (``src/rms.c``) approximates the same quantity from its binned, linearly interpolated
distributions, sampled at probability steps of 0.0001. Ruemmler & Wilkes also quote it relative
to the mean measured service time (:attr:`Comparison.demerit_percent`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

from sim.time import MS, US

from .mechanism import Breakdown, DiskMechanism, DriveState, Op, Request

__all__ = [
    "Comparison", "ReplayResult", "ReplayedRequest", "TraceError", "TraceRecord", "compare",
    "demerit", "format_trace", "parse_trace", "read_trace", "replay",
]


class TraceError(ValueError):
    """A malformed trace line; the message names the source and line number."""


@dataclass(frozen=True)
class TraceRecord:
    """One traced request (times in integer picoseconds).

    Attributes
    ----------
    op : Op
    hit : bool
        The traced drive's buffer outcome.
    lbn, count : int
    service_ps : int
        Measured service time.
    gap_ps : int
        From this request's completion to the next request's arrival.
    line : int
        Line number in the source (0 if built by hand).
    """

    op: Op
    hit: bool
    lbn: int
    count: int
    service_ps: int
    gap_ps: int
    line: int = 0

    @property
    def request(self) -> Request:
        return Request(self.op, self.lbn, self.count)

    def format(self) -> str:
        """The record as a trace line (times in microseconds, exact to the picosecond)."""
        def us(ps: int) -> str:
            return format(Decimal(ps) / US, "f")
        return (f"{self.op.value} {'Hit' if self.hit else 'Miss'} {self.lbn} {self.count} "
                f"{us(self.service_ps)} {us(self.gap_ps)}")


def parse_trace(text: str, source: str = "<trace>") -> list[TraceRecord]:
    """Parse a validate trace.

    Raises
    ------
    TraceError
        Naming ``source``, the line number and the bad field.
    """
    records: list[TraceRecord] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {number}"
        fields = line.split()
        if len(fields) != 6:
            raise TraceError(f"{where}: expected 6 fields (R|W, Hit|Miss, block, count, "
                             f"service_us, gap_us), found {len(fields)}: {raw!r}")
        rw, action, blk, cnt, serv, gap = fields
        if rw not in ("R", "W"):
            raise TraceError(f"{where}: first field must be R or W, not {rw!r}")
        if action.lower() not in ("hit", "miss"):
            raise TraceError(f"{where}: second field must be Hit or Miss, not {action!r}")
        try:
            lbn = int(blk)
        except ValueError:
            raise TraceError(f"{where}: starting block must be an integer, not {blk!r}") from None
        try:
            count = int(cnt)
        except ValueError:
            raise TraceError(f"{where}: block count must be an integer, not {cnt!r}") from None
        if lbn < 0:
            raise TraceError(f"{where}: starting block must be >= 0, not {lbn}")
        if count < 1:
            raise TraceError(f"{where}: block count must be >= 1, not {count}")
        times = []
        for name, value in (("service time", serv), ("gap to next request", gap)):
            try:
                exact = Decimal(value)
            except InvalidOperation:
                raise TraceError(f"{where}: {name} must be a number of microseconds, not {value!r}") from None
            if not exact.is_finite() or exact < 0:
                raise TraceError(f"{where}: {name} must be a finite number >= 0, not {value!r}")
            times.append(int((exact * US).to_integral_value()))
        records.append(TraceRecord(Op(rw), action.lower() == "hit", lbn, count, times[0], times[1], number))
    return records


def read_trace(path: str | Path) -> list[TraceRecord]:
    """Parse the validate trace in file ``path``."""
    p = Path(path)
    return parse_trace(p.read_text(encoding="ascii"), str(p))


def format_trace(records: Iterable[TraceRecord]) -> str:
    """Records as trace text (one line each, newline-terminated)."""
    return "".join(r.format() + "\n" for r in records)


@dataclass(frozen=True)
class ReplayedRequest:
    """One request replayed: the trace record and what the model made of it."""

    record: TraceRecord
    arrival_ps: int
    completion_ps: int
    breakdown: Breakdown

    @property
    def service_ps(self) -> int:
        """Simulated service time."""
        return self.completion_ps - self.arrival_ps


@dataclass(frozen=True)
class ReplayResult:
    """A whole replay: per-request results and the final drive state."""

    requests: tuple[ReplayedRequest, ...]
    state: DriveState

    @property
    def measured_ms(self) -> list[float]:
        return [r.record.service_ps / MS for r in self.requests]

    @property
    def simulated_ms(self) -> list[float]:
        return [r.service_ps / MS for r in self.requests]

    @property
    def hit_agreement(self) -> float:
        """Fraction of requests whose simulated hit/miss matches the trace's."""
        if not self.requests:
            return 1.0
        return sum(r.breakdown.hit == r.record.hit for r in self.requests) / len(self.requests)

    def compare(self) -> "Comparison":
        """Statistics of simulated against measured service times, in milliseconds."""
        return compare(self.measured_ms, self.simulated_ms)


def replay(records: Iterable[TraceRecord], mechanism: DiskMechanism | None = None,
           state: DriveState | None = None, start_ps: int = 0) -> ReplayResult:
    """Issue the traced requests one at a time against ``mechanism`` (default: the RZ26).

    Request ``i + 1`` arrives ``records[i].gap_ps`` after request ``i``'s *simulated*
    completion (DiskSim's closed loop for validate traces); the first at ``start_ps``.
    """
    mech = mechanism if mechanism is not None else DiskMechanism()
    st = state if state is not None else DriveState()
    t = start_ps
    out = []
    for rec in records:
        try:
            completion, breakdown, st = mech.service(rec.request, st, t)
        except ValueError as exc:
            raise TraceError(f"trace line {rec.line}: {exc}") from None
        out.append(ReplayedRequest(rec, t, completion, breakdown))
        t = completion + rec.gap_ps
    return ReplayResult(tuple(out), st)


# ---- statistics ---------------------------------------------------------------------------------
def demerit(a: Sequence[float], b: Sequence[float]) -> float:
    """RMS horizontal distance between the empirical CDFs of ``a`` and ``b`` (module docstring).

    Raises
    ------
    ValueError
        If either sample is empty.
    """
    if not a or not b:
        raise ValueError("demerit needs two non-empty samples")
    xa, xb = sorted(a), sorted(b)
    n, m = len(xa), len(xb)
    # Walk the merged breakpoints i/n and j/m; on (prev, next] both quantiles are constant.
    i = j = 0
    prev = Fraction(0)
    total = 0.0
    while i < n and j < m:
        na, nb = Fraction(i + 1, n), Fraction(j + 1, m)
        nxt = min(na, nb)
        d = xa[i] - xb[j]
        total += float(nxt - prev) * d * d
        prev = nxt
        if na == nxt:
            i += 1
        if nb == nxt:
            j += 1
    return math.sqrt(total)


@dataclass(frozen=True)
class Comparison:
    """Simulated against measured service times (same unit as the inputs, ms from replays).

    Attributes
    ----------
    n : int
    mean_measured, mean_simulated : float
    mean_error : float
        Mean of (simulated - measured).
    rms_error : float
        Root mean square of (simulated - measured), request by request.
    demerit : float
        RMS horizontal distance between the two service-time distributions.
    demerit_percent : float
        ``demerit`` as a percentage of ``mean_measured``.
    """

    n: int
    mean_measured: float
    mean_simulated: float
    mean_error: float
    rms_error: float
    demerit: float
    demerit_percent: float


def compare(measured: Sequence[float], simulated: Sequence[float]) -> Comparison:
    """Compare paired service times (request ``i`` measured and simulated).

    Raises
    ------
    ValueError
        If the samples are empty or of different lengths.
    """
    if len(measured) != len(simulated):
        raise ValueError(f"paired samples differ in length: {len(measured)} measured, "
                         f"{len(simulated)} simulated")
    if not measured:
        raise ValueError("compare needs at least one request")
    n = len(measured)
    errors = [s - m for m, s in zip(measured, simulated)]
    mean_m = math.fsum(measured) / n
    d = demerit(measured, simulated)
    return Comparison(
        n=n,
        mean_measured=mean_m,
        mean_simulated=math.fsum(simulated) / n,
        mean_error=math.fsum(errors) / n,
        rms_error=math.sqrt(math.fsum(e * e for e in errors) / n),
        demerit=d,
        demerit_percent=100.0 * d / mean_m if mean_m else math.inf,
    )
