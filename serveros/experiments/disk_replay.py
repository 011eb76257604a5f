"""Replay a DiskSim "validate" trace through the disk controller and its driver.

The trace (:mod:`hw.disk.trace`) is issued one request at a time by a driver thread on a
simulated DECstation (:class:`sim.cpu.CPU`, the Aegis profile): request ``i + 1`` is issued
``gap`` microseconds (the trace's sixth field) after the driver returned from request ``i``.
Each request goes through :class:`sw.drivers.disk.DiskDriver` to the controller
(:class:`hw.disk.model.DiskControllerModel`, or in future an RTL backend), which asks the DEC
RZ26 mechanism model for the drive's time and moves the data by DMA.

For every request the result holds two simulated times:

* ``drive_ms``: from the controller handing the request to the drive until the drive reports
  completion (command overhead, seek, rotation, media and SCSI-bus transfer): what DiskSim's
  validation traces measured at the drive, and what is compared with the trace's measured
  service time;
* ``host_ms``: what the software saw, from the driver's call to its return (register
  accesses, command decode, DMA into or out of host memory, the interrupt and its handler).

When the trace carries measured times (any non-zero service time), :func:`replay_trace` also
compares them (:func:`hw.disk.trace.compare`: mean and RMS error, demerit figure).
"""
from __future__ import annotations

import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hw.disk.image import DiskImage
from hw.disk.mechanism import DiskParams, Op
from hw.disk.model import DiskControllerModel
from hw.disk.registers import CLOCK_PERIOD_PS, WINDOW_SIZE
from hw.disk.trace import Comparison, TraceError, TraceRecord, compare
from sim.bus import Bus, IrqLine
from sim.cpu import CPU
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS
from sim.time import MS, S, Clock
from sw.drivers.disk import DiskDriver

__all__ = ["BACKENDS", "DISK_BASE", "ReplayRow", "DiskReplayResult", "replay_trace", "write_csv"]

#: Backends ``replay_trace`` accepts (the RTL ones join when the controller's gateware lands).
BACKENDS = ("model",)
#: Where the controller's registers are mapped on the simulated bus.
DISK_BASE = 0x1C00_0000
_PAGE = 4096


@dataclass(frozen=True)
class ReplayRow:
    """One replayed request (times in milliseconds of simulated time)."""

    line: int
    op: str
    lbn: int
    count: int
    trace_hit: bool
    sim_hit: bool
    measured_ms: float
    drive_ms: float
    host_ms: float
    arrival_ms: float


@dataclass(frozen=True)
class DiskReplayResult:
    """The replay of a trace.

    Attributes
    ----------
    rows : tuple of ReplayRow
    comparison : Comparison or None
        Simulated drive times against the trace's measured ones (None when the trace carries
        no measured times).
    sim_seconds : float
        Simulated time of the whole replay.
    blocks : int
        Blocks moved.
    wall_seconds : float
        Wall-clock time the replay took (a figure, not part of the simulated result).
    backend : str
    """

    rows: tuple[ReplayRow, ...]
    comparison: Comparison | None
    sim_seconds: float
    blocks: int
    wall_seconds: float
    backend: str = "model"

    @property
    def hit_agreement(self) -> float:
        """Fraction of requests whose simulated buffer hit/miss matches the trace's."""
        return sum(r.trace_hit == r.sim_hit for r in self.rows) / len(self.rows)


def _check_fits(records: Sequence[TraceRecord], capacity: int, source: str) -> None:
    for r in records:
        if r.lbn + r.count > capacity:
            raise TraceError(f"{source} line {r.line}: blocks {r.lbn} .. {r.lbn + r.count - 1} "
                             f"run past the end of the disk ({capacity} blocks)")


def replay_trace(records: Sequence[TraceRecord], *, image: str | Path | None = None,
                 backend: str = "model", limit: int | None = None,
                 params: DiskParams | None = None, source: str = "trace") -> DiskReplayResult:
    """Replay ``records`` through driver and controller on a fresh simulated machine.

    Parameters
    ----------
    records : sequence of TraceRecord
        From :func:`hw.disk.trace.read_trace` or :func:`~hw.disk.trace.parse_trace`.
    image : path, optional
        A disk image to read from (opened without write-through: the file is not changed).
        Default: an empty RZ26-sized sparse image in a temporary folder.
    backend : str
        One of :data:`BACKENDS`.
    limit : int, optional
        Replay only the first ``limit`` requests.
    params : DiskParams, optional
        Drive parameters (default: the DEC RZ26).
    source : str
        Names the trace in error messages.

    Raises
    ------
    ValueError
        For a bad backend, limit or an empty trace.
    TraceError
        Naming the line of a request that runs off the disk.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, not {limit!r}")
    records = list(records)[:limit] if limit else list(records)
    if not records:
        raise ValueError(f"{source}: the trace holds no requests")
    params = params if params is not None else DiskParams.load()
    with tempfile.TemporaryDirectory(prefix="serveros-disk-") as tmp:
        if image is None:
            img = DiskImage.create(Path(tmp) / "rz26.img", params.geometry.blocks, persist=False)
        else:
            img = DiskImage.open(image, persist=False)
        with img:
            _check_fits(records, img.block_count, source)
            return _run(records, img, params, backend)


def _run(records: list[TraceRecord], img: DiskImage, params: DiskParams, backend: str) -> DiskReplayResult:
    wall0 = time.perf_counter()
    k = Kernel()
    prof = DECSTATION_5000_125_AEGIS
    largest = max(r.count for r in records) * img.block_size
    mem = Memory(k, max(64 * 1024, -(-largest // _PAGE) * _PAGE), profile=prof)
    bus = Bus(k)
    cpu = CPU(k, prof)
    irq = IrqLine(k, "disk")
    ctl = DiskControllerModel(k, Clock(CLOCK_PERIOD_PS, "tc"), memory=mem, image=img, irq=irq,
                              params=params)
    bus.map(DISK_BASE, WINDOW_SIZE, ctl, "disk")
    drv = DiskDriver(cpu, bus, DISK_BASE, mem, irq)
    rows: list[ReplayRow] = []

    async def replayer() -> None:
        for rec in records:
            t0 = k.now
            if rec.op is Op.Read:
                await drv.read(rec.lbn, rec.count, 0)
            else:
                await drv.write(rec.lbn, rec.count, 0)
            c = ctl.last
            rows.append(ReplayRow(rec.line, rec.op.value, rec.lbn, rec.count, rec.hit,
                                  c.breakdown.hit, rec.service_ps / MS, c.drive_ps / MS,
                                  (k.now - t0) / MS, t0 / MS))
            await k.sleep(rec.gap_ps)

    task = k.spawn(replayer(), name="replay")
    k.run()
    if task.exception is not None:     # pragma: no cover - the kernel raises first
        raise task.exception
    measured = [r.measured_ms for r in rows]
    comparison = compare(measured, [r.drive_ms for r in rows]) if any(measured) else None
    return DiskReplayResult(tuple(rows), comparison, k.now / S, sum(r.count for r in rows),
                            time.perf_counter() - wall0, backend)


def write_csv(result: DiskReplayResult, path: str | Path) -> None:
    """Write one row per request (header first) to ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "op", "lbn", "count", "trace_hit", "sim_hit", "measured_ms",
                    "drive_ms", "host_ms", "arrival_ms"])
        for r in result.rows:
            w.writerow([r.line, r.op, r.lbn, r.count, int(r.trace_hit), int(r.sim_hit),
                        f"{r.measured_ms:.6f}", f"{r.drive_ms:.6f}", f"{r.host_ms:.6f}",
                        f"{r.arrival_ms:.6f}"])
