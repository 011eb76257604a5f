"""Benchmarks: figures printed, never asserted (tests assert behaviour, not time).

Each benchmark returns :class:`BenchResult` rows; ``serveros bench`` renders them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sim.kernel import Kernel
from sim.time import NS, US


@dataclass(frozen=True)
class BenchResult:
    name: str
    value: float
    unit: str
    note: str = ""


def _timed_kernel_run(build: Callable[[Kernel], None]) -> tuple[int, float]:
    k = Kernel()
    build(k)
    t0 = time.perf_counter()
    k.run()
    return k.events, time.perf_counter() - t0


def kernel_sleepers(tasks: int = 16, sleeps: int = 40_000) -> BenchResult:
    """Tasks that only sleep (the shape of device models and CPU charges)."""
    def build(k: Kernel) -> None:
        async def sleeper(i: int) -> None:
            dt = 40 * NS * (1 + i % 3)
            for _ in range(sleeps):
                await k.sleep(dt)
        for i in range(tasks):
            k.spawn(sleeper(i))
    n, dt = _timed_kernel_run(build)
    return BenchResult("kernel: sleeping tasks", n / dt, "events/s", f"{tasks} tasks, {n:,} events")


def kernel_ping_pong(pairs: int = 8, rounds: int = 40_000) -> BenchResult:
    """Pairs of tasks signalling each other through events (the shape of drivers and interrupts)."""
    def build(k: Kernel) -> None:
        for _ in range(pairs):
            ping, pong = k.event(), k.event()

            async def a(ping=ping, pong=pong) -> None:
                for _ in range(rounds):
                    await k.sleep(1 * US)
                    ping.pulse()
                    await pong

            async def b(ping=ping, pong=pong) -> None:
                for _ in range(rounds):
                    await ping
                    pong.pulse()
            k.spawn(b())
            k.spawn(a())
    n, dt = _timed_kernel_run(build)
    return BenchResult("kernel: event ping-pong", n / dt, "events/s", f"{pairs} pairs, {n:,} events")


def kernel_timeouts(tasks: int = 16, waits: int = 20_000) -> BenchResult:
    """Waits on an event with a timeout that expires (wait_any bookkeeping and cancellation)."""
    def build(k: Kernel) -> None:
        never = k.event("never")

        async def waiter() -> None:
            for _ in range(waits):
                await k.timeout(never, 10 * US)
        for _ in range(tasks):
            k.spawn(waiter())
    n, dt = _timed_kernel_run(build)
    return BenchResult("kernel: wait with timeout", n / dt, "events/s", f"{tasks} tasks, {n:,} events")


KERNEL_TARGET_EVENTS_PER_S = 300_000


def best_of(fn: Callable[[], BenchResult], repeat: int = 3) -> BenchResult:
    """The fastest of ``repeat`` runs (as timeit does): other load on the machine only ever
    slows a run down, so the best is the least disturbed measurement."""
    runs = [fn() for _ in range(repeat)]
    best = max(runs, key=lambda r: r.value)
    return BenchResult(best.name, best.value, best.unit, f"{best.note}, best of {repeat}")


def kernel_benchmarks(repeat: int = 3) -> list[BenchResult]:
    return [best_of(f, repeat) for f in (kernel_sleepers, kernel_ping_pong, kernel_timeouts)]


# -- LANCE card: model, RTL on Verilator, bare Verilator loop --------------------------------------
#: Issue targets: the RTL on Verilator carries at least a fifth of the wire's 10 Mbit/s in wall
#: time, and reaches at least 30 % of the bare Verilator loop's cycle rate.
LANCE_TARGET_WIRE_FRACTION = 0.2
LANCE_TARGET_BARE_FRACTION = 0.3
WIRE_BITS_PER_S = 10_000_000


def lance_benchmarks(frames: int = 200, size: int = 1514) -> list[BenchResult]:
    """Frames per wall-second streamed from one card to another through the driver, with
    ``le0``'s card as the model and as the RTL on Verilator (directly driven, no cocotb), and
    the RTL's simulated cycles per wall-second next to a bare Verilator loop of the same design.
    """
    from hw.lance.attach import LANCE
    from hw.lance.harness import LanceHarness

    from .experiments.lance import run_lance_exchange

    rows = []
    runs = {}
    for backend in ("model", "verilator"):
        r = run_lance_exchange(frames, size, backend=backend, stream=True)
        runs[backend] = r
        rows.append(BenchResult(f"lance {backend}: frames", r.frames / r.wall_seconds,
                                "frames/s", f"{r.frames} x {size} B streamed le0 -> le1"))
        rows.append(BenchResult(f"lance {backend}: wire bits", r.wire_bits_per_wall_second,
                                "bit/s", f"{r.wire_bits_per_wall_second / WIRE_BITS_PER_S:.2f} "
                                         f"of the 10 Mbit/s wire in wall time"))
    rtl = runs["verilator"]
    return rows + rtl_against_bare("lance", rtl.sim_ps // LANCE.clock.period, rtl.wall_seconds,
                                   rtl.python_wakes, LanceHarness(), "lance_harness")


def rtl_against_bare(device: str, cycles: int, wall_seconds: float, wakes: int, harness,
                     toplevel: str, *, what: str = "cycles") -> list[BenchResult]:
    """Two rows: a co-simulation's ``cycles`` of ``device``'s RTL per wall-second, and a bare
    Verilator loop of the same harness (``toplevel``) with the fraction the co-simulation
    reaches of it."""
    from .verilator_bare import bare_cycles_per_second
    cosim = cycles / wall_seconds
    bare = bare_cycles_per_second(harness, toplevel, cycles=2_000_000, design=f"{toplevel}_bare")
    return [BenchResult(f"{device} verilator: RTL cycles", cosim, "cycles/s",
                        f"{cycles:,} {what}, {wakes:,} Python wakes"),
            BenchResult(f"{device} bare Verilator loop", bare.cycles_per_second, "cycles/s",
                        f"co-simulation reaches {cosim / bare.cycles_per_second:.0%} of it")]


# -- disk controller: model and RTL on Verilator ---------------------------------------------------
def disk_benchmarks(seed: int = 31, commands: int = 40,
                    log_file: str | Path | None = None) -> list[BenchResult]:
    """Blocks per wall-second through the disk controller: the same random RZ26 program of
    reads and writes (up to 8 blocks each) on the model (own kernel) and on the RTL under
    cocotb + Verilator with the drive firmware and host memory served from Python (the
    verification bench of tests/hw/cocotb_disk.py; the RTL wall time includes the simulator's
    start-up), then on the RTL in a machine through the direct Verilator binding
    (tests/hw/test_disk_cosim.py's rig, as ``--rtl disk`` runs it). The runs' results are checked equal by the tests, not here. With
    ``log_file`` the cocotb runner's output goes there instead of to stdout
    (:func:`serveros.rtl.run_cocotb`)."""
    import sys
    import tempfile
    import time as _time

    from .rtl import REPO, run_cocotb, simulator_missing
    here = REPO / "tests" / "hw"
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    from test_disk_gateware import MEM_SIZE, program_for, run_model  # the bench's programs

    from hw.disk.gateware import DiskController

    spec = f"random:{seed}:{commands}:rz26"
    prog, media, memory, params, capacity = program_for(spec)
    blocks = sum(c.count for c in prog if c.command is not None and c.count)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = _time.perf_counter()
        out = run_model(prog, media, Path(tmp), memory, params, capacity)
        dt = _time.perf_counter() - t0
    sim_s = out[0].events[-1][0] / 1e12 if out[0].events else 0.0
    rows.append(BenchResult("disk model: blocks", blocks / dt, "blocks/s",
                            f"{blocks} blocks in {len(prog)} commands, {sim_s:.3f} s simulated"))
    reason = simulator_missing("verilator")
    if reason:
        rows.append(BenchResult("disk RTL (Verilator): blocks", float("nan"), "blocks/s", reason))
        return rows
    dut = DiskController(params=params, capacity=capacity, mem_size=MEM_SIZE)
    t0 = _time.perf_counter()
    note = f"{blocks} blocks, cocotb + Verilator, simulator start-up included"
    try:
        run = run_cocotb(dut, toplevel="disk_controller", sim="verilator",
                         test_module="cocotb_disk", test_dir=here, design="disk_rz26",
                         extra_env={"SERVEROS_DISK_PROGRAM": spec}, log_file=log_file)
        ok = run.ok
    except SystemExit as e:             # the cocotb runner exits when the simulator fails
        ok = False
        note += f" (simulator exit status {e.code})"
    dt = _time.perf_counter() - t0
    if not ok:
        note = "the cocotb run failed: " + note
    rows.append(BenchResult("disk RTL (Verilator): blocks", blocks / dt, "blocks/s", note))
    # The same program with the RTL in the loop of a machine (sim.bindings' direct Verilator
    # binding, DMA through the machine's memory model: what `--rtl disk` runs).
    from test_disk_cosim import run as cosim_run
    with tempfile.TemporaryDirectory() as tmp:
        t0 = _time.perf_counter()
        direct = cosim_run(prog, media, memory, Path(tmp), impl="rtl", params=params,
                           capacity=capacity)
        dt = _time.perf_counter() - t0
    rows.append(BenchResult("disk RTL in the loop (direct Verilator): blocks", blocks / dt,
                            "blocks/s", f"{blocks} blocks, {direct.wakes} Python wakes, start-up "
                            f"included (the build is cached)"))
    return rows



# -- AN2 ATM card: model, RTL on Verilator, bare Verilator loop -------------------------------------
def an2_benchmarks(pdus: int = 24, seed: int = 16, sizes=None) -> list[BenchResult]:
    """Cells and PDUs per wall-second through two AN2 cards exchanging ``pdus`` PDUs each way
    at once (sizes 0 .. 9180 bytes, a third of them scatter/gather: the rig of
    :mod:`serveros.experiments.an2_exchange`, as tests/hw/test_an2_attach.py runs it; the driver sw/drivers/an2.py on two bare machines on one OC-3c link), with both cards
    as the model and both as the RTL on Verilator (directly driven, as ``--rtl an2`` runs it),
    and the RTL's simulated card cycles per wall-second (both cards' cycles) next to a bare
    Verilator loop of the same harness. Wall time is the run's, not the build's (the first run
    builds the harness, then it is cached); the runs' equality is the tests' business. ``sizes``:
    the PDU sizes drawn from (default the rig's). A run that fails gives NaN rows saying why."""
    from .experiments.an2_exchange import SIZES, run_exchange    # the attach test's rig
    from .rtl import simulator_missing

    sizes = SIZES if sizes is None else tuple(sizes)
    rows = []
    runs = {}
    for label, rtl in (("model", ""), ("verilator", "an2")):
        reason = simulator_missing("verilator") if rtl else None
        try:
            if rtl and not reason:
                run_exchange(rtl, pdus=1, seed=seed, sizes=(1,))    # build (or load) first
            r = None if reason else run_exchange(rtl, pdus=pdus, seed=seed, sizes=sizes)
        except Exception as exc:        # a figure, not a test: say what failed and go on
            reason = f"the run failed: {' '.join(str(exc).split())[:160]}"
        if reason:
            rows += [BenchResult(f"an2 {label}: {what}", float("nan"), f"{what}/s", reason)
                     for what in ("cells", "PDUs")]
            return rows
        runs[label] = r
        note = (f"{r.cells:,} cells on the link, {r.end_ps / 1e9:.2f} ms simulated in "
                f"{r.wall_seconds:.2f} s")
        rows.append(BenchResult(f"an2 {label}: cells", r.cells / r.wall_seconds, "cells/s", note))
        rows.append(BenchResult(f"an2 {label}: PDUs", r.pdus / r.wall_seconds, "PDUs/s",
                                f"{r.pdus} PDUs, both ways at once"))
    from hw.an2.harness import An2Harness
    from hw.an2.timing import CLOCK_PERIOD_PS
    rtl = runs["verilator"]
    return rows + rtl_against_bare("an2", 2 * (rtl.end_ps // CLOCK_PERIOD_PS), rtl.wall_seconds,
                                   rtl.python_wakes, An2Harness(), "an2_harness",
                                   what="card cycles (two cards)")

#: Issue 6's targets: the default run at most 0.1 wall seconds per simulated second on the
#: model backend, the Verilator backend at most 5.
WEB_TARGET_MODEL = 0.1
WEB_TARGET_VERILATOR = 5.0


def web_benchmarks(requests: int = 50, clients: int = 4, doc_bytes: int = 100) -> list[BenchResult]:
    """Wall seconds per simulated second of one experiment point (Cheetah, ``clients`` clients
    fetching a ``doc_bytes`` document ``requests`` times each) with the server's LANCE card as
    the model and as its RTL on Verilator (the Verilator build is cached; the first run also
    builds it). Simulated time is the measured interval of the point, from the first request
    to the last reply, as in ``results.json``."""
    import tempfile

    from .experiments import paper
    from .rtl import simulator_missing

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image = paper.build_documents_image(Path(tmp) / "docs.img", [doc_bytes])
        for backend in ("model", "verilator"):
            if backend == "verilator":
                reason = simulator_missing("verilator")
                if reason:
                    rows.append(BenchResult("web verilator: wall s per sim s", float("nan"),
                                            "s/s", reason))
                    continue
                # Build (or load) the card once outside the timed run.
                paper.run_point(paper.Point(("a",), "cheetah", doc_bytes, 1, 1, backend, 1), image)
            p = paper.Point(("a",), "cheetah", doc_bytes, clients, requests, backend, 1)
            r = paper.run_point(p, image)[0]
            target = WEB_TARGET_MODEL if backend == "model" else WEB_TARGET_VERILATOR
            rows.append(BenchResult(
                f"web {backend}: wall s per sim s", r["wall_seconds"] / r["sim_seconds"], "s/s",
                f"cheetah, {clients} clients x {requests} requests of {doc_bytes} B: "
                f"{r['throughput_rps']:,.0f} req/s, {r['sim_seconds']:.3f} s simulated in "
                f"{r['wall_seconds']:.1f} s (target <= {target})"))
    return rows
