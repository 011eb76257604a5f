"""Replay a DiskSim "validate" trace through the disk controller and its driver.

The trace (:mod:`hw.disk.trace`) is issued one request at a time by a driver thread on a
bare simulated DECstation (:func:`serveros.machines.bare`: the Aegis profile's CPU, main memory
and the disk ``rz0`` at :data:`serveros.machines.DISK_BASE`, no operating system), built by
:class:`serveros.simulation.Simulation`: request ``i + 1`` is issued ``gap`` microseconds (the
trace's sixth field) after the driver returned from request ``i``. Each request goes through
:class:`sw.drivers.disk.DiskDriver` to the controller, which asks the DEC RZ26 drive for its
time and moves the data by DMA into the machine's memory. The controller is its model
(:class:`hw.disk.model.DiskControllerModel`, backend ``model``) or its RTL on an HDL simulator
(backend ``verilator`` or ``amaranth``: :data:`hw.disk.attach.DISK`'s harness, the drive being
the drive firmware, :class:`hw.disk.gateware.DriveFirmware`).

For every request the result holds two simulated times:

* ``drive_ms``: from the controller handing the request to the drive until the drive reports
  completion (command overhead, seek, rotation, media and SCSI-bus transfer): what DiskSim's
  validation traces measured at the drive, and what is compared with the trace's measured
  service time. On the RTL it is the drive firmware's account of the request as the RTL handed
  it over (the RTL's issue time; the drive's cache outcome is ``sim_hit`` either way);
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
from typing import Callable, Sequence

from hw.disk.image import DiskImage
from hw.disk.mechanism import DiskParams, Op
from hw.disk.trace import Comparison, TraceError, TraceRecord, compare
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.time import MS, S
from sw.drivers.disk import DiskDriver

from ..machines import DECSTATION_PROFILES, DISK_BASE, bare
from ..simulation import RTL_BACKENDS, Simulation

__all__ = ["BACKENDS", "ReplayRow", "DiskReplayResult", "replay_trace", "write_csv"]

#: The controllers ``replay_trace`` runs: its model, or its RTL on one of the HDL simulators.
BACKENDS = ("model",) + RTL_BACKENDS
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
        The controller: ``model``, or the HDL simulator its RTL ran on.
    python_wakes : int
        Times the HDL simulator resumed Python (0 for the model): of the order of the
        transactions (bus accesses, DMA bursts, media blocks), not of the clock cycles.
    """

    rows: tuple[ReplayRow, ...]
    comparison: Comparison | None
    sim_seconds: float
    blocks: int
    wall_seconds: float
    backend: str = "model"
    python_wakes: int = 0

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
        The controller (:data:`BACKENDS`): ``model``, or its RTL on ``verilator`` or
        ``amaranth``.
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


def _drive(attached) -> Callable[[], tuple[int, bool]]:
    """A function giving (drive ps, the drive's cache hit) of the disk's last Read or Write:
    the model's record of it or, for the RTL, the drive firmware's log of the requests the RTL
    handed the drive since the last call (the hit is the drive's outcome for the last one,
    served again from the state the drive was in: the drive is a pure function of it)."""
    if attached.impl == "model":
        controller = attached.parts["controller"]

        def last() -> tuple[int, bool]:
            c = controller.last
            return c.drive_ps, c.breakdown.hit
        return last
    firmware = attached.parts["firmware"]
    seen = [len(firmware.log), firmware.state]     # requests logged, the drive's state then

    def last() -> tuple[int, bool]:
        served, state = firmware.log[seen[0]:], seen[1]
        if not served:
            raise RuntimeError("the RTL controller handed the drive no request")
        for request, issue_ps, done_ps in served:
            _, breakdown, state = firmware.mechanism.service(request, state, issue_ps)
        seen[:] = [len(firmware.log), state]
        return done_ps - issue_ps, breakdown.hit
    return last


def _run(records: list[TraceRecord], img: DiskImage, params: DiskParams,
         backend: str) -> DiskReplayResult:
    wall0 = time.perf_counter()
    k = Kernel()
    largest = max(r.count for r in records) * img.block_size
    memory_bytes = max(64 * 1024, -(-largest // _PAGE) * _PAGE)
    disk = DeviceSpec("disk", "rz0", DISK_BASE,
                      {"image": img, "params": params, "mem_size": memory_bytes})
    machine = bare("m0", (disk,), profile=DECSTATION_PROFILES["aegis"],
                   memory_bytes=memory_bytes)
    with Simulation(k, [machine], media={}, rtl=() if backend == "model" else ("disk",),
                    backend="verilator" if backend == "model" else backend) as sim:
        host = sim.hosts["m0"]
        attached = host.extra["devices"]["rz0"]
        drv = DiskDriver(host.cpu, host.extra["bus"], DISK_BASE, host.memory, attached.irq)
        last = _drive(attached)
        rows: list[ReplayRow] = []

        async def replayer() -> None:
            for rec in records:
                t0 = k.now
                if rec.op is Op.Read:
                    await drv.read(rec.lbn, rec.count, 0)
                else:
                    await drv.write(rec.lbn, rec.count, 0)
                drive_ps, hit = last()
                rows.append(ReplayRow(rec.line, rec.op.value, rec.lbn, rec.count, rec.hit, hit,
                                      rec.service_ps / MS, drive_ps / MS, (k.now - t0) / MS,
                                      t0 / MS))
                await k.sleep(rec.gap_ps)

        task = k.spawn(replayer(), name="replay")
        sim.run()
        wakes = sim.rtl.driver.stats.wakes if sim.rtl is not None else 0
    if task.exception is not None:     # pragma: no cover - the kernel raises first
        raise task.exception
    if not task.done:
        raise RuntimeError("the replay did not finish")
    measured = [r.measured_ms for r in rows]
    comparison = compare(measured, [r.drive_ms for r in rows]) if any(measured) else None
    return DiskReplayResult(tuple(rows), comparison, k.now / S, sum(r.count for r in rows),
                            time.perf_counter() - wall0, backend, wakes)


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
