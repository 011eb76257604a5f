"""Timing model of a SCSI disk drive's mechanism, controller and on-board cache (DEC RZ26).

Plain Python with no simulator imports (STYLE.md #8): the reference the disk controller's RTL
timing engine is checked against, and the timing core of the transaction-level model. All
times are integer picoseconds (:mod:`sim.time`); every parameter comes from
``hw/disk/rz26/params.toml`` and ``seek.csv``, the validated DiskSim ``dec_rz26`` model
(CALIBRATION.md, "Disk: DEC RZ26").

What a request costs
--------------------
A request (read or write of ``count`` blocks from ``lbn``) arriving at ``now`` is served once
the drive has finished the previous one (one command at a time, no reordering). Then:

1. **Controller overhead**: command processing inside the drive, by kind (read/write), by
   cache outcome (hit/miss) and by the previous command's kind (``[controller_overheads_ms]``).
   The mechanism starts moving only when it is over.
2. **Seek** to the target track, interpolated linearly in ``seek.csv`` between the 64 measured
   distances. As in DiskSim's ``dm_seek_time_g1``: a move to another surface of the same
   cylinder costs a head switch; a seek that also changes surface costs ``max(seek,
   head_switch)``; a write adds ``write_settle_extra_ms`` (negative on the RZ26: writes may
   start settling sooner) to any non-zero positioning time.
3. **Rotational latency** until the first sector's slot reaches the head, then **media
   transfer** sector by sector; a track boundary costs a head switch or one-cylinder seek,
   then a wait for the next sector, whose skew (:mod:`hw.disk.geometry`) was chosen to hide
   most of it.
4. **Bus transfer** over SCSI at ``block_transfer_ms`` per block. Reads are pipelined: a block
   goes out when it is in the buffer and the bus is free (the bus, 0.0707 ms/block, outruns
   the media, 0.193 ms/block). Writes receive their data after the overhead, overlapped with
   the seek; a sector is written only once its data is in the buffer.
5. Writes are write-through (``write_cache = false``): the drive reports completion
   ``write_completion`` after the last sector is on the media.

Rotation as a function of absolute time
----------------------------------------
The platter turns at ``rpm`` from angle 0 at time 0, forever; its angle at time ``t`` depends
on ``t`` alone, so the RTL can compute it from the same counter. A revolution is divided into
``blocks_per_track`` *slots*. Slot boundary number ``k`` (k = 0, 1, 2, ...) is crossed at the
exact time ``k * 60 s / (rpm * blocks_per_track)``, which is not a whole number of
picoseconds; the model uses the first whole picosecond at or after it::

    boundary(k) = ceil(k * 60_000_000_000_000 / (rpm * blocks_per_track))      # ps

and slot ``k`` (angular position ``k mod blocks_per_track``) passes the head from
``boundary(k)`` to ``boundary(k + 1)``. The first slot boundary at or after ``t`` has index
``floor((t - 1) * rpm * blocks_per_track / 60_000_000_000_000) + 1``. Integer arithmetic
only, so no error accumulates however long the simulation runs.

On-board cache
--------------
``segments`` segments of ``segment_blocks`` blocks, replaced least recently used. A read whose
first block is buffered is a *hit*. After a read the drive keeps reading ahead, sequentially,
while it is idle, until ``max_read_ahead_blocks`` blocks past the request's end are buffered
(a segment keeps its newest ``segment_blocks`` blocks). A new command stops read-ahead, except
(``buffer_continuous_read``) a read that starts inside the segment being filled or inside its
read-ahead window: it is a hit, and the drive keeps streaming without repositioning. A hit
served wholly from the buffer restarts read-ahead if it had stopped
(``read_ahead_on_idle_hit``). Written blocks stay in a segment (write-through), so a later read
of them hits; a write invalidates other segments that overlap it.
``combine_sequential_writes``: a write that continues the previous write counts as a write hit
(the drive appends it to the same segment). With write-through and one request at a time the
previous write is already on the media, so combining changes only the hit/miss overhead (equal
on the RZ26) and the segment bookkeeping; the platter has turned on during the overhead, so the
write still waits for its first sector to come round.

Simplifications (none matter for one-at-a-time traces): a command that stops read-ahead stops
it at its arrival, with the head on the track of the last block read; no command queueing.
"""
from __future__ import annotations

import csv
import enum
import io
import tomllib
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Iterable, NamedTuple

from sim.time import MS, S

from .geometry import Geometry

__all__ = [
    "Breakdown", "CacheParams", "DiskMechanism", "DiskParams", "Drive", "DriveState", "Op",
    "Overheads", "Prefetch", "Request", "SeekCurve", "Segment", "load_params",
]

_MINUTE_PS = 60 * S


def _ms_to_ps(value: float | int | str | Decimal, what: str) -> int:
    """Milliseconds (as written in the TOML/CSV) to integer picoseconds, exactly when possible."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"{what} must be a number of milliseconds, not {value!r}")
    try:
        exact = Decimal(str(value)) * MS
    except ArithmeticError as exc:
        raise ValueError(f"{what} must be a number of milliseconds, not {value!r}") from exc
    # 1 ps resolution: round half to even on the rare value finer than that.
    return int(exact.to_integral_value())


class Op(enum.Enum):
    """A request's direction."""

    Read = "R"
    Write = "W"


@dataclass(frozen=True)
class Request:
    """One host request: ``count`` blocks from ``lbn``."""

    op: Op
    lbn: int
    count: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.op, Op):
            raise TypeError(f"request op must be an Op, not {self.op!r}")
        if not isinstance(self.lbn, int) or self.lbn < 0:
            raise ValueError(f"request lbn must be a non-negative int, not {self.lbn!r}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"request count must be a positive int, not {self.count!r}")

    @property
    def end(self) -> int:
        """One past the last block."""
        return self.lbn + self.count


# ---- parameters -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeekCurve:
    """Seek time by distance, linearly interpolated between measured points.

    Parameters
    ----------
    distances : tuple of int
        Strictly increasing distances in cylinders, the first at least 1.
    times_ps : tuple of int
        Seek time at each distance, picoseconds.
    """

    distances: tuple[int, ...]
    times_ps: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.distances) != len(self.times_ps) or not self.distances:
            raise ValueError("a seek curve needs as many times as distances, and at least one")
        if self.distances[0] < 1 or any(b <= a for a, b in zip(self.distances, self.distances[1:])):
            raise ValueError(f"seek distances must be >= 1 and strictly increasing, not {self.distances!r}")
        if any(t < 0 for t in self.times_ps):
            raise ValueError("seek times must be non-negative")

    @classmethod
    def from_csv(cls, text: str, source: str = "seek curve") -> "SeekCurve":
        """Parse ``cylinders,seek_ms`` rows (``#`` comments and a header row allowed).

        Raises
        ------
        ValueError
            Naming the line of a malformed row.
        """
        distances: list[int] = []
        times: list[int] = []
        for number, line in enumerate(io.StringIO(text), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            row = next(csv.reader([line]))
            if row[0].strip().lower() == "cylinders":
                continue
            if len(row) != 2:
                raise ValueError(f"{source} line {number}: expected 'cylinders,seek_ms', got {line!r}")
            try:
                distances.append(int(row[0]))
                times.append(_ms_to_ps(Decimal(row[1].strip()), f"{source} line {number} seek time"))
            except (ValueError, ArithmeticError) as exc:
                raise ValueError(f"{source} line {number}: {exc}") from None
        return cls(tuple(distances), tuple(times))

    def time(self, distance: int) -> int:
        """Seek time in ps for ``distance`` cylinders (0 for 0; last value beyond the table)."""
        if distance < 0:
            raise ValueError(f"seek distance must be >= 0, not {distance!r}")
        if distance == 0:
            return 0
        d, t = self.distances, self.times_ps
        if distance <= d[0]:
            # Below the first measured distance (only 1 on the RZ26): scale from 0.
            return t[0] * distance // d[0]
        if distance >= d[-1]:
            return t[-1]
        lo, hi = 0, len(d) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if d[mid] <= distance:
                lo = mid
            else:
                hi = mid
        return t[lo] + (t[hi] - t[lo]) * (distance - d[lo]) // (d[hi] - d[lo])


@dataclass(frozen=True)
class Overheads:
    """Controller command overheads in ps (``[controller_overheads_ms]``)."""

    read_hit_after_read: int
    read_hit_after_write: int
    read_miss_after_read: int
    read_miss_after_write: int
    write_hit_after_read: int
    write_hit_after_write: int
    write_miss_after_read: int
    write_miss_after_write: int
    write_completion: int

    def command(self, op: Op, hit: bool, previous: Op | None) -> int:
        """Overhead of a command of kind ``op`` with cache outcome ``hit`` after ``previous``.

        Before the first command the drive is taken to follow a read (its power-on state
        has no previous command; DiskSim starts it as a read).
        """
        after = "write" if previous is Op.Write else "read"
        kind = "read" if op is Op.Read else "write"
        return getattr(self, f"{kind}_{'hit' if hit else 'miss'}_after_{after}")


@dataclass(frozen=True)
class CacheParams:
    """The on-board buffer (``[cache]``)."""

    segments: int
    segment_blocks: int
    max_read_ahead_blocks: int
    read_ahead_on_idle_hit: bool = True
    buffer_continuous_read: bool = True
    combine_sequential_writes: bool = True
    write_cache: bool = False

    def __post_init__(self) -> None:
        if self.segments < 1 or self.segment_blocks < 1 or self.max_read_ahead_blocks < 0:
            raise ValueError(f"cache needs >= 1 segment of >= 1 block and read-ahead >= 0, not {self!r}")
        if self.write_cache:
            raise ValueError("write_cache = true (write-back buffering) is not modelled; "
                             "the RZ26 model is write-through")


@dataclass(frozen=True)
class DiskParams:
    """Everything the timing model needs, in integer picoseconds.

    Use :meth:`load` (or :func:`load_params`) to read a ``params.toml``; the default is the
    shipped DEC RZ26 set.
    """

    geometry: Geometry
    rpm: int
    head_switch_ps: int
    write_settle_ps: int
    seek: SeekCurve
    overheads: Overheads
    cache: CacheParams
    bus_block_ps: int
    single_cylinder_seek_ps: int = 0   # recorded from the TOML; seek.csv's measured value is used

    def __post_init__(self) -> None:
        if not isinstance(self.rpm, int) or self.rpm <= 0:
            raise ValueError(f"rpm must be a positive int, not {self.rpm!r}")
        if self.head_switch_ps < 0 or self.bus_block_ps < 0:
            raise ValueError("head switch and bus times must be non-negative")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "DiskParams":
        """Load a ``params.toml`` (its ``seek_curve`` is relative to it); default: the RZ26.

        Raises
        ------
        ValueError
            Naming the missing or malformed key.
        """
        if path is None:
            base = resources.files(__package__).joinpath("rz26")
            toml_text = base.joinpath("params.toml").read_text(encoding="utf-8")
            source = "hw/disk/rz26/params.toml"
            seek_reader = lambda name: base.joinpath(name).read_text(encoding="utf-8")  # noqa: E731
        else:
            p = Path(path)
            toml_text = p.read_text(encoding="utf-8")
            source = str(p)
            seek_reader = lambda name: (p.parent / name).read_text(encoding="utf-8")  # noqa: E731
        try:
            data = tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, seek_reader, source)

    @classmethod
    def from_dict(cls, data: dict, seek_reader, source: str = "disk parameters") -> "DiskParams":
        """Build from parsed TOML; ``seek_reader(name)`` returns the seek CSV's text."""
        def section(name: str) -> dict:
            if name not in data or not isinstance(data[name], dict):
                raise ValueError(f"{source}: missing section [{name}]")
            return data[name]

        def key(sec: dict, sec_name: str, name: str):
            if name not in sec:
                raise ValueError(f"{source}: missing key {name!r} in [{sec_name}]")
            return sec[name]

        g = section("geometry")
        geometry = Geometry(**{k: key(g, "geometry", k) for k in (
            "surfaces", "cylinders", "blocks", "blocks_per_track", "spares_per_track",
            "empty_space_at_zone_front", "track_switch_skew", "cylinder_switch_skew",
            "first_block_offset")})
        m = section("mechanism")
        seek_name = key(m, "mechanism", "seek_curve")
        seek = SeekCurve.from_csv(seek_reader(seek_name), f"{source}: {seek_name}")
        o = section("controller_overheads_ms")
        overheads = Overheads(**{
            f.name: _ms_to_ps(key(o, "controller_overheads_ms", f.name), f"[controller_overheads_ms] {f.name}")
            for f in Overheads.__dataclass_fields__.values()})
        c = section("cache")
        cache = CacheParams(**{k: key(c, "cache", k) for k in CacheParams.__dataclass_fields__})
        b = section("bus")
        return cls(
            geometry=geometry,
            rpm=key(m, "mechanism", "rpm"),
            head_switch_ps=_ms_to_ps(key(m, "mechanism", "head_switch_ms"), "head_switch_ms"),
            write_settle_ps=_ms_to_ps(key(m, "mechanism", "write_settle_extra_ms"), "write_settle_extra_ms"),
            single_cylinder_seek_ps=_ms_to_ps(m.get("single_cylinder_seek_ms", 0), "single_cylinder_seek_ms"),
            seek=seek,
            overheads=overheads,
            cache=cache,
            bus_block_ps=_ms_to_ps(key(b, "bus", "block_transfer_ms"), "block_transfer_ms"),
        )


def load_params(path: str | Path | None = None) -> DiskParams:
    """:meth:`DiskParams.load`: parameters from ``path``, by default the shipped RZ26 set."""
    return DiskParams.load(path)


# ---- state ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """A cache segment holding blocks ``lo .. hi - 1``; ``stamp`` orders use (LRU)."""

    lo: int
    hi: int
    stamp: int

    def holds(self, lbn: int) -> bool:
        return self.lo <= lbn < self.hi


@dataclass(frozen=True)
class Prefetch:
    """Read-ahead in progress into segment ``segment``.

    The drive is reading ``next_lbn`` onward (up to ``limit - 1``); the previous block was
    done at ``ready_ps`` with the head on track (``cylinder``, ``surface``). The blocks' times
    are a pure function of these fields, so the model evaluates them lazily.
    """

    segment: int
    next_lbn: int
    limit: int
    ready_ps: int
    cylinder: int
    surface: int


@dataclass(frozen=True)
class DriveState:
    """Everything the drive remembers between requests (immutable; ``service`` returns a new one).

    Attributes
    ----------
    cylinder, surface : int
        Where the arm is (or was when its last activity ended).
    arm_free_ps : int
        When the mechanism finished its last activity (ignored while ``prefetch`` runs).
    busy_until_ps : int
        Completion of the last request: the drive takes one command at a time.
    last_arrival_ps : int
        Arrival time of the last request (requests must come in time order).
    last_op : Op or None
        Kind of the previous command (selects the overhead), None before the first.
    last_write_end : int or None
        One past the last block of the previous command if it was a write.
    segments : tuple of (Segment or None)
        The cache segments.
    prefetch : Prefetch or None
        Read-ahead in progress.
    stamp : int
        Request counter, for LRU.
    """

    cylinder: int = 0
    surface: int = 0
    arm_free_ps: int = 0
    busy_until_ps: int = 0
    last_arrival_ps: int = 0
    last_op: Op | None = None
    last_write_end: int | None = None
    segments: tuple[Segment | None, ...] = ()
    prefetch: Prefetch | None = None
    stamp: int = 0


@dataclass(frozen=True)
class Breakdown:
    """Where a request's time went, ps. The parts sum to ``completion - arrival``.

    ``queue``: waiting for the previous command; ``overhead``: command processing (plus the
    write-completion message); ``seek``: positioning and track switches; ``rotation``: waits
    for sectors to come round; ``transfer``: sectors passing under the head; ``bus``: SCSI
    transfer not hidden behind the media (and, for writes, waits for host data). For a read
    that continues a read-ahead stream, only mechanism time after the overhead counts.
    """

    queue: int
    overhead: int
    seek: int
    rotation: int
    transfer: int
    bus: int
    hit: bool

    @property
    def total(self) -> int:
        return self.queue + self.overhead + self.seek + self.rotation + self.transfer + self.bus


class _Step(NamedTuple):
    start: int      # the sector starts passing under the head
    end: int        # ... and has passed
    cylinder: int
    surface: int
    t_in: int       # when the step began (previous sector done)
    seek: int       # positioning time
    bus_wait: int   # wait for the host's data (writes)


@dataclass
class _Acc:
    """Mechanism time, counted only after ``clip`` (the end of the command overhead)."""

    clip: int
    seek: int = 0
    rotation: int = 0
    transfer: int = 0
    bus: int = 0

    def add(self, s: _Step) -> None:
        a = s.t_in
        b = a + s.seek
        c = b + s.bus_wait
        for lo, hi, name in ((a, b, "seek"), (b, c, "bus"), (c, s.start, "rotation"), (s.start, s.end, "transfer")):
            part = hi - max(lo, self.clip)
            if part > 0:
                setattr(self, name, getattr(self, name) + part)


# ---- the model --------------------------------------------------------------------------------
class DiskMechanism:
    """The drive's timing: positioning, rotation, transfer, overheads, bus and cache.

    Stateless: the drive's state is a :class:`DriveState` passed in and returned, so the RTL
    timing engine and the transaction-level model can both be checked against it.

    Parameters
    ----------
    params : DiskParams, optional
        Default: the shipped DEC RZ26 parameters.
    """

    def __init__(self, params: DiskParams | None = None) -> None:
        self.params = params if params is not None else DiskParams.load()
        g = self.params.geometry
        self.geometry = g
        self._spt = g.blocks_per_track
        # Slot boundary k at k * _U / _R ps exactly (see the module docstring).
        self._R = self.params.rpm * self._spt
        self._U = _MINUTE_PS

    # -- rotation --------------------------------------------------------------------------
    @property
    def revolution(self) -> Fraction:
        """Exact time of one revolution, ps (60 s / rpm)."""
        return Fraction(_MINUTE_PS, self.params.rpm)

    @property
    def sector_time(self) -> Fraction:
        """Exact time for one sector to pass the head (media transfer per sector), ps."""
        return Fraction(self._U, self._R)

    def angle(self, t_ps: int) -> Fraction:
        """Platter angle at time ``t_ps`` in revolutions, ``0 <= angle < 1`` (0 at t = 0)."""
        return Fraction((t_ps * self.params.rpm) % _MINUTE_PS, _MINUTE_PS)

    def slot_boundary(self, k: int) -> int:
        """First whole ps at or after slot boundary ``k``."""
        return -((-k * self._U) // self._R)

    def first_boundary_at_or_after(self, t_ps: int) -> int:
        """Index of the first slot boundary whose time (:meth:`slot_boundary`) is ``>= t_ps``."""
        return ((t_ps - 1) * self._R) // self._U + 1

    def next_slot_start(self, t_ps: int, slot: int) -> int:
        """Absolute boundary index at which angular slot ``slot`` next starts, at or after ``t_ps``."""
        k = self.first_boundary_at_or_after(t_ps)
        return k + (slot - k) % self._spt

    def rotational_latency(self, t_ps: int, slot: int) -> int:
        """Wait from ``t_ps`` until angular slot ``slot`` starts under the head, ps."""
        return self.slot_boundary(self.next_slot_start(t_ps, slot)) - t_ps

    # -- positioning -----------------------------------------------------------------------
    def seek_time(self, distance: int, head_change: bool = False, write: bool = False) -> int:
        """Positioning time in ps, as DiskSim's ``dm_seek_time_g1``.

        ``max(seek_curve(distance), head_switch if head_change)``, plus the write settle
        adjustment when non-zero and ``write`` (never below zero).
        """
        t = self.params.seek.time(distance)
        if head_change:
            t = max(t, self.params.head_switch_ps)
        if t and write:
            t = max(0, t + self.params.write_settle_ps)
        return t

    def _step(self, lbn: int, t: int, cylinder: int, surface: int, write: bool, ready: int = 0) -> _Step:
        """Access one sector: reposition if needed, wait for data and for the slot, transfer."""
        p = self.geometry.lbn_to_pbn(lbn)
        t_in = t
        seek = 0
        if p.cylinder != cylinder or p.surface != surface:
            seek = self.seek_time(abs(p.cylinder - cylinder), p.surface != surface, write)
            t += seek
        bus_wait = 0
        if ready > t:
            bus_wait = ready - t
            t = ready
        k = self.next_slot_start(t, self.geometry.slot(p))
        return _Step(self.slot_boundary(k), self.slot_boundary(k + 1), p.cylinder, p.surface,
                     t_in, seek, bus_wait)

    def _walk(self, lbn: int, count: int, t: int, cylinder: int, surface: int, write: bool,
              acc: _Acc, ready: list[int] | None = None) -> list[_Step]:
        steps = []
        for i in range(count):
            s = self._step(lbn + i, t, cylinder, surface, write, ready[i] if ready else 0)
            acc.add(s)
            steps.append(s)
            t, cylinder, surface = s.end, s.cylinder, s.surface
        return steps

    def _advance(self, pf: Prefetch, until: int) -> tuple[Prefetch, bool]:
        """Read-ahead progress up to ``until``: the updated prefetch and whether it finished."""
        nxt, t, c, h = pf.next_lbn, pf.ready_ps, pf.cylinder, pf.surface
        while nxt < pf.limit:
            s = self._step(nxt, t, c, h, False)
            if s.end > until:
                break
            nxt, t, c, h = nxt + 1, s.end, s.cylinder, s.surface
        return Prefetch(pf.segment, nxt, pf.limit, t, c, h), nxt >= pf.limit

    # -- cache helpers ------------------------------------------------------------------------
    def _fresh_segments(self, segs: tuple) -> list[Segment | None]:
        n = self.params.cache.segments
        out = list(segs)[:n]
        return out + [None] * (n - len(out))

    def _place(self, segs: list, lo: int, hi: int, stamp: int, keep: int | None = None) -> int:
        """Put blocks ``lo .. hi - 1`` (their newest ``segment_blocks``) in a segment; return its index.

        Other segments overlapping the range are invalidated (their data is stale or
        duplicated). ``keep``: reuse that segment.
        """
        lo = max(lo, hi - self.params.cache.segment_blocks)
        for i, s in enumerate(segs):
            if s is not None and i != keep and s.lo < hi and lo < s.hi:
                segs[i] = None
        if keep is None:
            free = [i for i, s in enumerate(segs) if s is None]
            keep = free[0] if free else min(range(len(segs)), key=lambda i: segs[i].stamp)
        segs[keep] = Segment(lo, hi, stamp)
        return keep

    # -- the request ----------------------------------------------------------------------------
    def service(self, request: Request, state: DriveState, now_ps: int) -> tuple[int, Breakdown, DriveState]:
        """Serve ``request`` arriving at ``now_ps``.

        Returns
        -------
        completion_ps : int
            When the drive reports the request complete.
        breakdown : Breakdown
            Where the time went.
        new_state : DriveState
            The drive's state afterwards.

        Raises
        ------
        ValueError
            If the request runs off the disk or arrives before the previous one.
        """
        if not isinstance(request, Request):
            raise TypeError(f"service needs a Request, not {request!r}")
        if not isinstance(now_ps, int) or now_ps < 0:
            raise ValueError(f"arrival time must be a non-negative int of ps, not {now_ps!r}")
        if now_ps < state.last_arrival_ps:
            raise ValueError(f"request at {now_ps} ps arrives before the previous one "
                             f"({state.last_arrival_ps} ps): requests must come in time order")
        g, cache, ovh = self.geometry, self.params.cache, self.params.overheads
        if request.end > g.blocks:
            raise ValueError(f"request for blocks {request.lbn} .. {request.end - 1} runs off the "
                             f"disk (last block {g.blocks - 1})")
        lbn, end, count = request.lbn, request.end, request.count
        t0 = max(now_ps, state.busy_until_ps)
        queue = t0 - now_ps
        stamp = state.stamp + 1
        segs = self._fresh_segments(state.segments)
        arm_c, arm_h, arm_free = state.cylinder, state.surface, state.arm_free_ps

        # Read-ahead carried on while the drive was idle: bring it up to t0.
        pf = state.prefetch
        if pf is not None:
            pf, finished = self._advance(pf, t0)
            seg = segs[pf.segment]
            if seg is not None:
                segs[pf.segment] = Segment(max(seg.lo, pf.next_lbn - cache.segment_blocks), pf.next_lbn, seg.stamp)
            arm_c, arm_h = pf.cylinder, pf.surface
            if finished or seg is None:
                arm_free = pf.ready_ps
                pf = None

        def stop_prefetch() -> None:
            nonlocal pf, arm_free
            if pf is not None:
                arm_free = t0   # stopped mid-sector at the command's arrival
                pf = None

        if request.op is Op.Write:
            stop_prefetch()
            hit = (cache.combine_sequential_writes and state.last_op is Op.Write
                   and state.last_write_end == lbn)
            overhead = ovh.command(Op.Write, hit, state.last_op)
            t_cmd = t0 + overhead
            # Host data arrives over the bus after the command is decoded, overlapping the seek.
            ready = [t_cmd + (i + 1) * self.params.bus_block_ps for i in range(count)]
            acc = _Acc(clip=t_cmd)
            steps = self._walk(lbn, count, max(t_cmd, arm_free), arm_c, arm_h, True, acc, ready)
            acc.seek += max(0, arm_free - t_cmd)
            media_end = steps[-1].end
            completion = media_end + ovh.write_completion
            keep = None
            if hit:
                keep = next((i for i, s in enumerate(segs) if s is not None and s.hi == lbn), None)
            lo = segs[keep].lo if keep is not None else lbn
            self._place(segs, lo, end, stamp, keep)
            last = steps[-1]
            new_state = DriveState(last.cylinder, last.surface, media_end, completion, now_ps, Op.Write,
                                   end, tuple(segs), None, stamp)
            return completion, Breakdown(queue, overhead + ovh.write_completion, acc.seek, acc.rotation,
                                         acc.transfer, acc.bus, hit), new_state

        # ---- read ----
        seg_i = next((i for i, s in enumerate(segs) if s is not None and s.holds(lbn)), None)
        if (seg_i is None and pf is not None and cache.buffer_continuous_read
                and segs[pf.segment].hi <= lbn < pf.limit):
            seg_i = pf.segment   # inside the read-ahead window being filled
        hit = seg_i is not None
        overhead = ovh.command(Op.Read, hit, state.last_op)
        t_cmd = t0 + overhead
        acc = _Acc(clip=t_cmd)
        ready: list[int] = []
        steps: list[_Step] = []
        new_pf: Prefetch | None = None
        limit = min(g.blocks, end + cache.max_read_ahead_blocks)
        if hit:
            seg = segs[seg_i]
            cached_hi = min(seg.hi, end) if lbn < seg.hi else lbn
            ready = [t_cmd] * (cached_hi - lbn)
            if cached_hi < end:
                if pf is not None and pf.segment == seg_i and cache.buffer_continuous_read:
                    # Keep streaming from where read-ahead is; no repositioning.
                    steps = self._walk(pf.next_lbn, end - pf.next_lbn, pf.ready_ps, pf.cylinder,
                                       pf.surface, False, acc)
                    ready += [s.end for s in steps[cached_hi - pf.next_lbn:]]
                else:
                    stop_prefetch()
                    start = max(t_cmd, arm_free)
                    steps = self._walk(cached_hi, end - cached_hi, start, arm_c, arm_h, False, acc)
                    acc.seek += max(0, arm_free - t_cmd)
                    ready += [s.end for s in steps]
                seg_i = self._place(segs, segs[seg_i].lo, end, stamp, seg_i)
                last = steps[-1]
                if end < limit:
                    new_pf = Prefetch(seg_i, end, limit, last.end, last.cylinder, last.surface)
                arm_c, arm_h, arm_free = last.cylinder, last.surface, last.end
            else:
                segs[seg_i] = replace(seg, stamp=stamp)
                if pf is not None:
                    if pf.segment == seg_i:
                        pf = replace(pf, limit=max(pf.limit, limit))
                    new_pf = pf
                elif cache.read_ahead_on_idle_hit and seg.hi < limit:
                    # Idle after a hit: go back to reading ahead from the segment's end.
                    new_pf = Prefetch(seg_i, seg.hi, limit, max(t_cmd, arm_free), arm_c, arm_h)
        else:
            stop_prefetch()
            start = max(t_cmd, arm_free)
            steps = self._walk(lbn, count, start, arm_c, arm_h, False, acc)
            acc.seek += max(0, arm_free - t_cmd)
            ready = [s.end for s in steps]
            seg_i = self._place(segs, lbn, end, stamp)
            last = steps[-1]
            if end < limit:
                new_pf = Prefetch(seg_i, end, limit, last.end, last.cylinder, last.surface)
            arm_c, arm_h, arm_free = last.cylinder, last.surface, last.end

        # SCSI data-in: each block goes out once buffered and the bus is free.
        done = t_cmd
        for r in ready:
            done = max(done, r) + self.params.bus_block_ps
        completion = done
        media_end = steps[-1].end if steps else t_cmd
        bus = completion - max(t_cmd, media_end)
        new_state = DriveState(arm_c, arm_h, arm_free, completion, now_ps, Op.Read, None,
                               tuple(segs), new_pf, stamp)
        return completion, Breakdown(queue, overhead, acc.seek, acc.rotation, acc.transfer, bus, hit), new_state


class Drive:
    """A :class:`DiskMechanism` with its state: submit requests in time order.

    Parameters
    ----------
    params : DiskParams, optional
        Default: the DEC RZ26.
    """

    def __init__(self, params: DiskParams | None = None) -> None:
        self.mechanism = DiskMechanism(params)
        self.state = DriveState()

    def submit(self, request: Request, now_ps: int) -> tuple[int, Breakdown]:
        """Serve ``request`` arriving at ``now_ps``; returns (completion_ps, breakdown)."""
        completion, breakdown, self.state = self.mechanism.service(request, self.state, now_ps)
        return completion, breakdown

    def run(self, requests: Iterable[tuple[int, Request]]) -> list[tuple[int, Breakdown]]:
        """Submit ``(arrival_ps, request)`` pairs in order; the completions and breakdowns."""
        return [self.submit(r, t) for t, r in requests]
