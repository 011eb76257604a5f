"""The ``serveros`` command line: parses, calls library functions, renders with rich.

Every subcommand listed by ``serveros --help`` works; each is a thin wrapper over a function
that is callable from Python too.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from rich import box
from rich.console import Console
from rich.table import Table

from .cliargs import (EXIT_FAILURE, EXIT_USAGE, Parser, UsageError, int_arg, log_traceback,
                      one_line, output_dir, output_file, points_progress)

console = Console()


def _figure_table(title: str, rows, value: str = "rate", fmt: str = ",.0f") -> Table:
    """A table of ``serveros bench`` figures (:class:`~serveros.bench.BenchResult` rows):
    benchmark, ``value`` (formatted with ``fmt``), unit and note."""
    t = Table(title=title)
    for col, just in (("benchmark", "left"), (value, "right"), ("unit", "left"), ("note", "left")):
        t.add_column(col, justify=just)
    for r in rows:
        t.add_row(r.name, format(r.value, fmt), r.unit, r.note)
    return t


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    from .rtl import BUILD_ROOT
    log_file = output_file("--log", args.log or BUILD_ROOT.parent / "logs" / "bench-cocotb.log")
    log_file = log_file.resolve()
    for old in (log_file, log_file.with_name(f"{log_file.stem}.build{log_file.suffix}")):
        old.unlink(missing_ok=True)           # name only this run's log
    rows = bench.kernel_benchmarks()
    console.print(_figure_table("serveros benchmarks (figures, not tests)", rows))
    worst = min(r.value for r in rows)
    target = bench.KERNEL_TARGET_EVENTS_PER_S
    verdict = "meets" if worst >= target else "MISSES"
    console.print(f"own kernel: slowest workload {worst:,.0f} events/s {verdict} the "
                  f"{target:,} events/s target (one core)")
    with console.status("LANCE: streaming frames through the model and the RTL on Verilator ..."):
        lrows = bench.lance_benchmarks(frames=args.frames)
    console.print(_figure_table("LANCE card (figures, not tests)", lrows))
    by = {r.name: r.value for r in lrows}
    wire = by["lance verilator: wire bits"] / bench.WIRE_BITS_PER_S
    frac = by["lance verilator: RTL cycles"] / by["lance bare Verilator loop"]
    console.print(f"RTL on Verilator carries {wire:.0%} of the wire in wall time "
                  f"(target {bench.LANCE_TARGET_WIRE_FRACTION:.0%}: "
                  f"{'meets' if wire >= bench.LANCE_TARGET_WIRE_FRACTION else 'MISSES'}); "
                  f"{frac:.0%} of the bare loop's cycle rate (target "
                  f"{bench.LANCE_TARGET_BARE_FRACTION:.0%}: "
                  f"{'meets' if frac >= bench.LANCE_TARGET_BARE_FRACTION else 'MISSES'})")
    with console.status("disk: one RZ26 program on the model and on the RTL (Verilator) ..."):
        drows = bench.disk_benchmarks(log_file=log_file)
    console.print(_figure_table("disk controller (figures, not tests)", drows))
    if log_file.exists():
        console.print(f"the cocotb runner's output is in {log_file}", soft_wrap=True,
                      markup=False, highlight=False)
    with console.status("AN2: PDUs both ways through the model and the RTL on Verilator ..."):
        arows = bench.an2_benchmarks()
    console.print(_figure_table("AN2 ATM card (figures, not tests)", arows))
    from .ilp_bench import ilp_benchmarks, ilp_table
    # A 1460-byte segment (the second pass finds it in the cache: the fused loop saves that
    # pass's instructions) and a message twice the 3MIN's 128 KB D-cache (the second pass
    # misses again: the fused loop also saves its memory traffic).
    for nbytes in (1460, 256 * 1024):
        console.print(ilp_table(ilp_benchmarks(nbytes=nbytes)))
    with console.status("web server: one Cheetah point on the model and with the card's RTL "
                        "on Verilator ..."):
        wrows = bench.web_benchmarks()
    console.print(_figure_table("paper experiment, one point (figures, not tests)", wrows,
                                value="value", fmt=",.2f"))
    from .sweep.bench import sweep_benchmarks
    with console.status("sweep engine: the same short points bare, then on 1 and 2 local "
                        "Dask workers ..."):
        srows = sweep_benchmarks()
    console.print(_figure_table("sweep engine on Dask (figures, not tests)", srows,
                                value="value", fmt=",.2f"))
    console.print("the default run's own wall time and peak memory are printed by "
                  "`serveros run` at its end")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    from .experiments.segment import SegmentExperiment, run_segment
    exp = SegmentExperiment(stations=args.stations, frames=args.frames, payload=args.payload, seed=args.seed)
    out = output_dir("--out", args.out)
    pcap = output_file("--pcap", args.pcap) if args.pcap else out / "segment.pcapng"
    with console.status(f"simulating {exp.stations} stations x {exp.frames} frames ..."):
        res = run_segment(exp, pcap)
    (out / "segment.json").write_text(res.to_json())
    t = Table(title=f"Ethernet segment: {exp.stations} senders, {exp.payload}-byte payloads, seed {exp.seed}")
    t.add_column("station")
    for col in ("sent", "received", "collisions", "deferrals", "abandoned", "backoff ms"):
        t.add_column(col, justify="right")
    for name, st in res.per_station.items():
        t.add_row(name, str(st["frames_sent"]), str(st["frames_received"]), str(st["collisions"]),
                  str(st["deferrals"]), str(st["excessive_collisions"]), f"{st['backoff_ps'] / 1e9:.2f}")
    console.print(t)
    console.print(f"simulated {res.sim_seconds:.4f} s; goodput {res.goodput_bits_per_s / 1e6:.3f} Mbit/s "
                  f"(one saturating sender's framing limit {res.ideal_goodput_bits_per_s / 1e6:.3f}); "
                  f"utilization {res.utilization:.1%}; collision episodes {res.collisions}, jams {res.jams}")
    console.print(f"wrote {out / 'segment.json'} and {pcap}")
    return 0


def _rtl_option(kinds: Callable[[], tuple[str, ...]],
                backend: str | None) -> tuple[tuple[str, ...], str]:
    """``--rtl`` (as ``kinds()`` parses and checks it against the command's machines) and
    ``--backend`` (the HDL simulator, default verilator; ``model`` without RTL:
    :func:`serveros.experiments.paper.resolve_backend`).

    Raises
    ------
    UsageError
        Naming the option.
    """
    from .experiments.paper import resolve_backend
    try:
        rtl = kinds()
    except ValueError as exc:
        raise UsageError(f"argument --rtl: {exc}") from None
    try:
        return rtl, resolve_backend(backend, rtl)
    except ValueError as exc:
        raise UsageError(f"argument --backend: {exc}") from None


def _kinds_of(text: str, have: tuple[str, ...]) -> tuple[str, ...]:
    """``--rtl`` of a command whose machines have devices of the kinds ``have`` only."""
    from .simulation import parse_rtl
    rtl = parse_rtl(text)
    for kind in rtl:
        if kind not in have:
            raise ValueError(f"no machine has a {kind} device (their devices: "
                             f"{', '.join(have)})")
    return rtl


def _cmd_lance(args: argparse.Namespace) -> int:
    from .experiments.lance import run_lance_exchange
    rtl, backend = _rtl_option(lambda: _kinds_of(args.rtl, ("lance",)), args.backend)
    _check_simulator("--backend", backend)
    if args.pcap:
        output_file("--pcap", args.pcap)
    what = "frames streamed" if args.stream else "round trips"
    cards = "le0, le1" if rtl else "le0"
    with console.status(f"simulating {args.frames} {what} between two LANCE cards "
                        f"({cards}: {backend}) ..."):
        res = run_lance_exchange(args.frames, args.size, seed=args.seed, pcap_path=args.pcap,
                                 backend=backend, stream=args.stream,
                                 rtl_cards=2 if rtl else 1)
    secs = res.sim_ps / 1e12
    t = Table(title=f"LANCE {'stream' if args.stream else 'ping-pong'} ({cards}: {res.backend}): "
                    f"{res.frames} frames, {res.bytes:,} bytes, {secs * 1e3:.3f} ms simulated, "
                    f"{res.wall_seconds:.2f} s wall")
    t.add_column("CPU category")
    for name in res.cpu:
        t.add_column(f"{name} cycles", justify="right")
        t.add_column(f"{name} share", justify="right")
    cats = sorted({c for b in res.cpu.values() for c in b}, key=lambda c: (c == "idle", c))
    for cat in cats:
        row = [cat]
        for b in res.cpu.values():
            total = sum(b.values()) or 1
            row += [f"{b.get(cat, 0):,.0f}", f"{b.get(cat, 0) / total:.1%}"]
        t.add_row(*row)
    console.print(t)
    for name, st in res.driver.items():
        console.print(f"{name}: sent {st['sent']}, received {st['received']}, tx errors "
                      f"{st['tx_errors']}, rx errors {st['rx_errors']}, missed {st['missed']}, "
                      f"interrupts {st['interrupts']}")
    console.print(f"segment: {res.segment['frames']} frames, {res.segment['collisions']} collisions, "
                  f"utilization {res.segment['utilization']:.1%}")
    if args.pcap:
        console.print(f"wrote {args.pcap}")
    _report_waves(res.waves, "le0's card is the model")
    return 0


def _report_waves(path: str | None, why_none: str) -> None:
    """Say where the waveform ``SERVEROS_WAVES=1`` asked for was written, or why there is none."""
    from .rtl import WAVES_ENV, waves_requested
    if path:
        console.print(f"wrote the waveform{'s' if ', ' in path else ''} {path}", soft_wrap=True,
                      markup=False, highlight=False)
    elif waves_requested():
        console.print(f"{WAVES_ENV}: no waveform: {why_none}", soft_wrap=True, markup=False,
                      highlight=False)


def _cmd_build_image(args: argparse.Namespace) -> int:
    from hw.disk.image import DiskImage
    from sw.libos.fs.build import build_image
    from sw.libos.fs.errors import FsError
    if not Path(args.host_dir).is_dir():
        raise UsageError(f"argument host_dir: {args.host_dir!r} is not a folder")
    image = output_file("image", args.image)
    if image.exists() and not args.overwrite:
        raise UsageError(f"argument image: {args.image!r} exists (pass --overwrite to replace it)")
    try:
        res = build_image(args.host_dir, image, block_size=args.block_size,
                          sectors=args.sectors, overwrite=args.overwrite,
                          image_factory=lambda p, n, bs: DiskImage.create(p, n, bs,
                                                                          overwrite=args.overwrite))
    except (FsError, OSError, ValueError) as exc:
        # The file system's geometry comes from these two options; the library judges them.
        raise UsageError(f"{exc} (--block-size {args.block_size}, --sectors "
                         f"{args.sectors or 'just big enough'})") from exc
    console.print(f"wrote {res.path}: {res.files} files, {res.directories} directories, "
                  f"{res.bytes:,} bytes of file data on {res.sectors:,} sectors of "
                  f"{res.sector_size} bytes (file-system blocks of {res.fs_block_size})")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from sim.platforms import PROFILES, profile_table

    from .costs import software_tables
    names = [args.name] if args.name else list(PROFILES)
    shown: set[str] = set()
    for name in names:
        if name not in PROFILES:
            raise UsageError(f"argument name: no profile {name!r}; known: {', '.join(PROFILES)}")
        p = PROFILES[name]
        t = Table(title=f"{name}: {p.description}", show_lines=False)
        t.add_column("cost")
        t.add_column("value", justify="right")
        t.add_column("unit")
        t.add_column("source (docs/calibration.md or estimate)", overflow="fold")
        for field, value, unit, source in profile_table(p):
            t.add_row(field, f"{value:g}", unit, source)
        console.print(t)
        for table in software_tables(p):
            if table.title in shown:      # one table per software, however many profiles
                continue
            shown.add(table.title)
            st = Table(title=f"{table.title}: runs on {name}")
            for col, just in (("cost", "left"), ("value", "right"), ("unit", "left"),
                              ("source", "left")):
                st.add_column(col, justify=just, overflow="fold")
            for field, value, unit, source in table.rows:
                st.add_row(field, f"{value:g}", unit, source)
            console.print(st)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from hw.disk.image import ImageError
    from hw.disk.trace import TraceError, read_trace
    from .experiments.disk_replay import replay_trace, write_csv
    rtl, backend = _rtl_option(lambda: _kinds_of(args.rtl, ("disk",)), args.backend)
    if backend != "model" and not rtl:
        raise UsageError(f"argument --backend: {backend} is the HDL simulator of the --rtl "
                         f"devices; add --rtl disk to run the controller's RTL on it")
    _check_simulator("--backend", backend)
    if args.out:
        output_file("--out", args.out)
    if args.image and not Path(args.image).is_file():
        raise UsageError(f"argument --image: {args.image!r} is not a file")
    try:
        records = read_trace(args.trace)
    except (TraceError, OSError) as exc:
        raise UsageError(f"argument trace: {getattr(exc, 'strerror', None) or exc}"
                         + (f": {args.trace!r}" if isinstance(exc, OSError) else "")) from exc
    try:
        what = f"RTL on {backend}" if rtl else "model"
        with console.status(f"replaying {args.trace} through the disk controller's {what} ..."):
            res = replay_trace(records, image=args.image, backend=backend, limit=args.limit,
                               source=str(args.trace))
    except (ImageError, OSError) as exc:
        raise UsageError(f"argument --image: {exc}") from exc
    except ValueError as exc:               # TraceError too: the trace is empty or runs off the disk
        raise UsageError(f"argument trace: {exc}") from exc
    n, show = len(res.rows), args.show
    t = Table(title=f"{args.trace}: {n} requests through the disk controller's {what}")
    for col in ("line", "op", "lbn", "blocks", "hit trace/sim", "measured ms", "drive ms", "host ms"):
        t.add_column(col, justify="left" if col in ("op", "hit trace/sim") else "right")
    picked = list(range(n)) if n <= 2 * show else list(range(show)) + [-1] + list(range(n - show, n))
    for i in picked:
        if i < 0:
            t.add_row("...", "", "", "", f"({n - 2 * show} more)", "", "", "")
            continue
        r = res.rows[i]
        hit = f"{'H' if r.trace_hit else 'M'}/{'H' if r.sim_hit else 'M'}"
        t.add_row(str(r.line), r.op, str(r.lbn), str(r.count), hit,
                  f"{r.measured_ms:.3f}" if res.comparison else "-", f"{r.drive_ms:.3f}", f"{r.host_ms:.3f}")
    console.print(t)
    mean_drive = sum(r.drive_ms for r in res.rows) / n
    mean_host = sum(r.host_ms for r in res.rows) / n
    console.print(f"simulated {res.sim_seconds:.3f} s; mean drive service {mean_drive:.3f} ms, "
                  f"mean host service {mean_host:.3f} ms; buffer hit/miss agrees with the trace "
                  f"on {res.hit_agreement:.1%}; {res.blocks / max(res.wall_seconds, 1e-9):,.0f} "
                  f"blocks per wall-second")
    if rtl:
        console.print(f"the controller's RTL on {backend} resumed Python {res.python_wakes:,} "
                      f"times")
    c = res.comparison
    if c is None:
        console.print("the trace carries no measured times: nothing to compare")
    else:
        console.print(f"drive time vs measured over {c.n} requests: mean {c.mean_simulated:.3f} ms vs "
                      f"{c.mean_measured:.3f} ms; mean error {c.mean_error:+.3f} ms, RMS error "
                      f"{c.rms_error:.3f} ms; demerit {c.demerit:.3f} ms ({c.demerit_percent:.1f} % of "
                      f"the mean measured time)")
    if args.out:
        write_csv(res, args.out)
        console.print(f"wrote {args.out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    import time

    from .validation import AnchorError, load_anchors, validate
    from .validation.report import STATUSES, write_all
    from .validation.run import EXPLAINED, FAILED, MISS, NOT_COVERED, OK, select_rows

    try:
        anchors = load_anchors(args.anchors) if args.anchors else load_anchors()
    except AnchorError as exc:
        raise UsageError(f"argument --anchors: {exc}") from None
    ids = None
    if args.rows:
        ids = [r.strip() for r in args.rows.split(",") if r.strip()]
        if not ids:
            raise UsageError("argument --rows: no row ids given")
        try:
            ids = select_rows(anchors, ids)
        except ValueError as exc:
            raise UsageError(f"argument --rows: {exc}") from None
    out = output_dir("--out", args.out)
    wall0 = time.perf_counter()
    with console.status("running the microbenchmarks ...") as status:
        results = validate(ids, seed=args.seed, anchors=anchors,
                           progress=lambda rows: status.update(f"running the benchmark of {rows} ..."))
    wall = time.perf_counter() - wall0
    style = {OK: "green", EXPLAINED: "yellow", MISS: "bold red", FAILED: "bold red",
             NOT_COVERED: "dim"}
    t = Table(title=f"serveros validate: simulated microbenchmarks against measured operations "
                    f"(seed {args.seed})")
    # The reasons are long: they follow the table, one paragraph per row, so the table stays
    # readable on an 80-column terminal (and in CI logs).
    t.box = box.SIMPLE_HEAD
    for col, just in (("id", "left"), ("quantity", "left"), ("measured", "right"),
                      ("simulated", "right"), ("unit", "left"), ("error", "right"),
                      ("status", "left")):
        t.add_column(col, justify=just, overflow="fold",
                     no_wrap=col in ("id", "measured", "simulated", "unit", "error", "status"))
    for r in results:
        t.add_row(r.id, r.quantity, f"{r.measured:g}",
                  "-" if r.simulated is None else f"{r.simulated:.4g}", r.unit,
                  "-" if r.error is None else f"{r.error:+.0%}",
                  f"[{style[r.status]}]{r.status}[/]")
    console.print(t)
    for r in results:
        if r.status in (EXPLAINED, MISS) and r.explained:
            console.print(f"[{style[r.status]}]{r.id}[/] ({r.status}): {r.explained}",
                          highlight=False)
    files = write_all(results, out, {a.id: a.tolerance for a in anchors.values()})
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {wall:.1f} s wall")
    console.print("wrote: " + ", ".join(str(p) for p in files.values()), soft_wrap=True,
                  markup=False, highlight=False)
    bad = [r for r in results if r.failing]
    if bad:
        for r in bad:
            why = (f"benchmark failed: {one_line(r.detail or '')}" if r.status == FAILED else
                   f"simulated {r.simulated:.4g} {r.unit} vs measured {r.measured:g} {r.unit} "
                   f"({r.error:+.0%}, tolerance {anchors[r.id].tolerance:.0%}) and not explained")
            print(f"serveros validate: error: row {r.id}: {why}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _check_simulator(option: str, backend: str) -> None:
    """A backend that needs Verilator is a usage error when Verilator is missing."""
    if backend == "verilator":
        from .rtl import simulator_missing
        reason = simulator_missing("verilator")
        if reason:
            raise UsageError(f"argument {option}: {reason}")


def _cmd_synth(args: argparse.Namespace) -> int:
    from hw.ilp.synth import yosys_missing

    from .synth import DEFAULT_LISTS, parse_pipe_list, synth_figures, synth_table
    lists = args.pipes or list(DEFAULT_LISTS)
    for text in lists:
        try:
            parse_pipe_list(text)
        except ValueError as e:
            raise UsageError(f"argument --pipes: {e}") from None
    reason = yosys_missing()
    if reason:
        raise RuntimeError(reason)
    with console.status(f"synthesizing {len(lists)} pipe lists with Yosys ..."):
        figures = synth_figures(lists, cache=not args.no_cache)
    console.print(synth_table(figures))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import resource
    import time

    from .experiments import paper
    from .rtl import waves_requested
    from .simulation import parse_rtl

    try:
        figures = paper.parse_figures(args.figure)
    except ValueError as exc:
        raise UsageError(f"argument --figure: {exc}") from None
    try:
        servers = paper.parse_servers(args.servers)
        for name in servers:
            paper.server_factory(name)
    except (ValueError, paper.ServerUnavailable) as exc:
        raise UsageError(f"argument --servers: {exc}") from None
    networks = _networks_option(args.network)
    rtl, backend = _rtl_option(lambda: paper.server_rtl(
        servers, args.rtl, paper.run_networks(figures, networks)), args.backend)
    try:
        points = paper.plan_points(figures, servers, requests=args.requests, backend=backend,
                                   seed=args.seed, client=args.client, rtl=rtl,
                                   networks=networks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # --backend verilator alone: the LANCE card's RTL; figure c: each point's own card's.
    rtl = parse_rtl(dict.fromkeys(k for p in points for k in p.rtl))
    _check_simulator("--backend", backend)
    out = output_dir("--out", args.out)
    if args.pcap:
        output_file("--pcap", args.pcap)
    waves_dir = out / "waves" if waves_requested() and rtl else None
    wall0 = time.perf_counter()
    with points_progress(console) as prog:
        where = args.scheduler or f"{args.jobs} workers"
        bar = prog.add_task(f"simulating {len(points)} points ({where})", total=len(points))

        def done(point, rows) -> None:
            r = rows[0]
            if "throughput_rps" not in r:
                prog.console.print(f"  {point.label}: FAILED: {one_line(r['error'])}",
                                   markup=False, highlight=False)
            else:
                prog.console.print(f"  {point.label}: {r['throughput_rps']:,.0f} req/s, "
                                   f"{r['sim_seconds']:.2f} s simulated in "
                                   f"{r['wall_seconds']:.1f} s"
                                   + (f"; FAILED: {one_line(r['error'])}" if paper.failed(r)
                                      else ""), markup=False, highlight=False)
            prog.advance(bar)
        try:
            rows = paper.run_paper(points, jobs=args.jobs, pcap_path=args.pcap,
                                   progress=done, waves_dir=waves_dir,
                                   scheduler=args.scheduler)
        except ConnectionError as exc:
            raise UsageError(f"argument --scheduler: {exc}") from None
    wall = time.perf_counter() - wall0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = max(me.ru_maxrss, kids.ru_maxrss)
    cpu_s = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for fig in figures:
        mine = [r for r in rows if r["figure"] == fig]
        if fig in ("c", "d"):
            table = _figure_c_table if fig == "c" else _figure_d_table
            console.print(table(mine, f"{args.requests} requests per client, "
                                      f"{args.client} clients, "
                                      f"{_devices_label(rtl, backend)}, seed {args.seed}"))
            continue
        xkey, xname = ("doc_bytes", "document bytes") if fig == "a" else ("clients", "clients")
        xs = sorted({r[xkey] for r in mine})
        sub = (f"{paper.FIGURE_A_CLIENTS} clients" if fig == "a"
               else f"{paper.FIGURE_B_DOC}-byte document")
        t = Table(title=f"figure {fig}: requests per second by {xname} ({sub}, "
                        f"{args.requests} requests per client, {args.client} clients, "
                        f"{_devices_label(rtl, backend)}, seed {args.seed})")
        t.add_column(f"server \\ {xname}")
        for x in xs:
            t.add_column(str(x), justify="right")
        for s in servers:
            by = {r[xkey]: r for r in mine if r["server"] == s}
            t.add_row(s, *[_run_cell(by[x]) if x in by else "-" for x in xs])
        console.print(t)
    _report_sustained(rows)
    files = paper.write_results(rows, out, meta={"figures": list(figures),
                                                 # figure d runs its own variants
                                                 "servers": list(dict.fromkeys(
                                                     p.server for p in points)),
                                                 "networks": list(networks),
                                                 "requests_per_client": args.requests,
                                                 "rtl": ",".join(rtl), "backend": backend,
                                                 "seed": args.seed, "client": args.client})
    simulated = {_point_key(r): r for r in rows}.values()
    bad = [r for r in simulated if paper.failed(r)]
    console.print(f"{len(points)} points ({len(bad)} failed), "
                  f"{sum(r.get('requests', 0) for r in simulated):,} requests "
                  f"simulated; {wall:.1f} s wall, {cpu_s:.1f} s CPU (all processes), peak "
                  f"memory {peak / 1024:.0f} MiB per process")
    console.print("wrote:", soft_wrap=True)
    for p in files.values():
        console.print(f"  {p}", soft_wrap=True, markup=False, highlight=False)
    if args.pcap:
        console.print(f"  {args.pcap} (the first point only)", soft_wrap=True, markup=False,
                      highlight=False)
    vcds = [v for p in points for v in sorted(paper.point_waves(p, waves_dir).glob("*.vcd"))] \
        if waves_dir else []
    _report_waves(", ".join(str(v) for v in vcds),
                  "no point finished writing one" if waves_dir else
                  "every device ran as its model (choose RTL devices with --rtl)")
    if bad:
        for r in bad:
            net = f" {r['network']}" if r["figure"] in ("c", "d") else ""
            print(f"serveros run: error: point {r['server']} {r['doc_bytes']} B "
                  f"x{r['clients']}{net} (seed {r['point_seed']}) failed: "
                  f"{one_line(r['error'])}", file=sys.stderr)
        print(f"serveros run: error: {len(bad)} of {len(points)} points failed; their "
              f"tracebacks are in {files['json']}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _networks_option(text: str) -> tuple[str, ...]:
    """``--network`` (figure c's networks), parsed.

    Raises
    ------
    UsageError
        Naming the option.
    """
    from .experiments import figure_c
    try:
        return figure_c.parse_networks(text)
    except ValueError as exc:
        raise UsageError(f"argument --network: {exc}") from None


def _figure_c_table(rows: list[dict], what: str) -> Table:
    """Figure c's rows as a table: one line per point, throughput, goodput against the link,
    CPU cycles per document byte and the document bytes the CPU touched (the cache lines
    flushed and pages mapped are in the results files)."""
    # Fits 80 columns (a log or CI has no wider terminal): "eth" for ethernet, no edge padding.
    t = Table(title=f"figure c: Ethernet against AN2 ({what})", box=box.SIMPLE_HEAD,
              pad_edge=False,
              caption="net: eth(ernet) or an2; Mbit/s: document bytes delivered; link: of the link's payload rate; "
                      "cyc/B: server CPU cycles per document byte; touch/req: document bytes "
                      "the server's CPU touched per request (cache lines flushed and pages "
                      "mapped: results.json)")
    cols = ("server", "net", "bytes", "cl", "req/s", "Mbit/s", "link", "cyc/B", "touch/req")
    for col in cols:
        t.add_column(col, justify="left" if col in ("server", "net") else "right",
                     no_wrap=True, min_width=len(col))
    for r in rows:
        net = "eth" if r["network"] == "ethernet" else r["network"]
        head = [r["server"], net, f"{r['doc_bytes']:,}", str(r["clients"])]
        if "throughput_rps" not in r:
            t.add_row(*head, "FAILED", *[""] * (len(cols) - 5))
            continue
        cyc, touch = r["cpu_cycles_per_doc_byte"], r["cpu_touched_doc_bytes_per_request"]
        t.add_row(*head, _run_cell(r), f"{r['goodput_bytes_per_s'] * 8 / 1e6:.2f}",
                  f"{r['goodput_fraction_of_link']:.0%}",
                  "-" if cyc is None else f"{cyc:.3g}",
                  "-" if touch is None else f"{touch:,.0f}")
    return t


def _figure_d_table(rows: list[dict], what: str):
    """Figure d's rows as two tables (a :class:`rich.console.Group`): per point, throughput,
    server CPU cycles per request and its change against the paper's Cheetah on the same
    network and document; then, per network, document and CPU category some variant moves
    (:func:`figure_d.moving_categories`), each variant's change of that category's cycles per
    request. The planned variants are named below the first."""
    from rich.console import Group

    from .experiments import figure_d

    planned = ", ".join(v.label for v in figure_d.planned_variants())
    t = Table(title=f"figure d: Cheetah with ASHs and ILP ({what})", box=box.SIMPLE_HEAD,
              caption="cyc/req: server CPU busy cycles per request; change: against the "
                      "paper's Cheetah on the same network and document"
                      + (f"; planned, not measured: {planned}" if planned else ""))
    for col in ("variant", "net", "bytes", "req/s", "cyc/req", "change"):
        t.add_column(col, justify="left" if col in ("variant", "net") else "right",
                     no_wrap=True)
    base = {(r["network"], r["doc_bytes"]): r for r in rows
            if r["server"] == "cheetah" and r.get("cpu_cycles_per_request")}
    names = {v.spec: v.label for v in figure_d.VARIANTS}
    for r in rows:
        head = [names.get(r["server"], r["server"]), r["network"], f"{r['doc_bytes']:,}"]
        if "throughput_rps" not in r or r.get("cpu_cycles_per_request") is None:
            t.add_row(*head, "FAILED" if "throughput_rps" not in r else _run_cell(r), "", "")
            continue
        b, cyc = base.get((r["network"], r["doc_bytes"])), r["cpu_cycles_per_request"]
        change = ("" if b is None or b is r
                  else f"{(cyc / b['cpu_cycles_per_request'] - 1) * 100:+.1f}%")
        t.add_row(*head, _run_cell(r), f"{cyc:,.0f}", change)
    moving = figure_d.moving_categories(rows)
    others = [v for v in figure_d.VARIANTS if v.spec != "cheetah"
              and any(r["server"] == v.spec for r in rows)]
    m = Table(title="figure d: cycles per request each variant moves, by CPU category",
              box=box.SIMPLE_HEAD,
              caption=f"against the paper's Cheetah; categories some variant moves by more "
                      f"than {figure_d.MOVING_FRACTION:.0%} of its cycles per request")
    for col in ("net", "bytes", "category", *(v.label for v in others)):
        m.add_column(col, justify="left" if col in ("net", "category") else "right",
                     no_wrap=True)
    for (network, size), b in base.items():
        by = {r["server"]: r for r in rows
              if (r.get("network"), r["doc_bytes"]) == (network, size)
              and r.get("cpu_cycles_per_request") is not None}
        theirs = b["cpu_cycles_per_request_breakdown"]
        for c in moving:
            moved = [by[v.spec]["cpu_cycles_per_request_breakdown"].get(c, 0.0) - theirs.get(c, 0.0)
                     if v.spec in by else None for v in others]
            m.add_row(network, f"{size:,}", c, *("-" if d is None else f"{d:+,.0f}"
                                                  for d in moved))
    return Group(t, m) if moving and others else t


def _point_key(row: dict) -> tuple:
    """What tells apart the points of a run's rows (figure a's and b's shared point is one;
    figure c's and d's points are never another figure's)."""
    return (row["server"], row.get("network"), row["doc_bytes"], row["clients"],
            row["figure"] if row["figure"] in ("c", "d") else "")


def _report_sustained(rows: list[dict]) -> None:
    """Say which points reached the TIME_WAIT equilibrium (``sustained_rps``) and, when some
    did not, the longest ``--requests`` the notes ask for."""
    measured = {_point_key(r): r for r in rows if "throughput_rps" in r}.values()
    short = [r for r in measured if r.get("sustained_rps") is None]
    if not measured:
        return
    if not short:
        console.print("every point ran past the TIME_WAIT equilibrium (60 s): see sustained_rps")
        return
    from .experiments.paper import requests_for_sustained
    need = max(requests_for_sustained(r["throughput_rps"], r["clients"]) for r in short)
    console.print(f"{len(short)} of {len(measured)} points ended before the TIME_WAIT "
                  f"equilibrium (TIME_WAIT lives 60 s): their sustained_rps is null; about "
                  f"--requests {need} would reach it for all of them at their rates (see "
                  f"sustained_note and README)", soft_wrap=True, highlight=False)


def _devices_label(rtl: tuple[str, ...], backend: str) -> str:
    """How a run's devices ran, for a table title: ``models`` or ``RTL lance,disk on
    verilator``."""
    return f"RTL {','.join(rtl)} on {backend}" if rtl else "models"


def _run_cell(r: dict) -> str:
    """A table cell of ``serveros run``: the point's requests per second, or FAILED."""
    if "throughput_rps" not in r:
        return "FAILED"
    notes = [f"{r['failed']} requests failed"] if r["failed"] else []
    if r.get("internal_errors"):
        notes.append(f"{r['internal_errors']} internal errors")
    return f"{r['throughput_rps']:,.0f}" + (f" ({', '.join(notes)})" if notes else "")


def _lance_size(lo: bool) -> int:
    """The driver's smallest or largest frame without FCS (imported when the option is read)."""
    from sw.drivers.lance import MAX_SEND, MIN_SEND
    return MIN_SEND if lo else MAX_SEND


def _payload(lo: bool) -> int:
    """The 802.3 payload bounds after the 14-byte header (imported when the option is read)."""
    from sim.media.ethernet import MAX_PAYLOAD, MIN_PAYLOAD
    return MIN_PAYLOAD if lo else MAX_PAYLOAD


def _max_stations() -> int:
    from .experiments.segment import MAX_STATIONS
    return MAX_STATIONS


def build_parser() -> argparse.ArgumentParser:
    positive, natural = int_arg(1), int_arg(0)
    p = Parser(
        prog="serveros",
        description="Co-simulation of the exokernel server OS, Cheetah and its 1990s server hardware.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    b = sub.add_parser("bench", help="print benchmark figures (events per wall-second of the own kernel, ...)")
    b.add_argument("--frames", type=positive, default=200,
                   help="frames streamed through each LANCE backend (default 200)")
    b.add_argument("--log", default=None,
                   help="file for the cocotb runner's output, kept off the tables (default "
                        "build/logs/bench-cocotb.log in the repository)")
    b.set_defaults(func=_cmd_bench)
    pr = sub.add_parser("profiles", help="print the platform cost profiles with the source of every constant")
    pr.add_argument("name", nargs="?", help="one profile (default: all)")
    pr.set_defaults(func=_cmd_profiles)
    s = sub.add_parser("segment", help="simulate stations contending on the 10 Mbit/s Ethernet segment")
    s.add_argument("--stations", type=int_arg(1, _max_stations), default=4,
                   help="number of senders, 1..64 (default 4)")
    s.add_argument("--frames", type=positive, default=500, help="frames per sender (default 500)")
    s.add_argument("--payload", type=int_arg(lambda: _payload(True), lambda: _payload(False)),
                   default=1500, help="bytes after the 14-byte header, 46..1500")
    s.add_argument("--seed", type=int_arg(), default=1, help="backoff random seed (default 1)")
    s.add_argument("--out", default="results", help="output folder (default results/)")
    s.add_argument("--pcap", default=None, help="capture file (default OUT/segment.pcapng)")
    s.set_defaults(func=_cmd_segment)
    rp = sub.add_parser("replay", help="replay a DiskSim validate trace through the disk controller "
                        "and driver; print each request's simulated service time")
    rp.add_argument("trace", help="DiskSim validate trace (R|W Hit|Miss block count service_us gap_us)")
    rp.add_argument("--rtl", default="", metavar="KINDS",
                    help="device kinds that run as RTL: disk (the controller; default none: "
                         "its model)")
    rp.add_argument("--backend", default=None,
                    help="the HDL simulator of the --rtl devices: verilator (default) or "
                         "amaranth; model (the default without --rtl) runs the controller's model")
    rp.add_argument("--image", default=None, help="disk image to read (default: an empty RZ26); not modified")
    rp.add_argument("--limit", type=positive, default=None, help="replay only the first N requests")
    rp.add_argument("--out", default=None, help="write every request's times to this CSV file")
    rp.add_argument("--show", type=natural, default=10,
                    help="when there are more than 2*SHOW requests, print only the first and last SHOW (default 10)")
    rp.set_defaults(func=_cmd_replay)
    bi = sub.add_parser("build-image", help="build a disk image holding a host directory tree (the file system library's layout)")
    bi.add_argument("host_dir", help="the directory to copy")
    bi.add_argument("image", help="the image file to create")
    bi.add_argument("--block-size", type=positive, default=4096, help="file-system block size (default 4096)")
    bi.add_argument("--sectors", type=positive, default=None, help="disk size in 512-byte sectors (default: just big enough; an RZ26 has 2050860)")
    bi.add_argument("--overwrite", action="store_true", help="replace an existing image")
    bi.set_defaults(func=_cmd_build_image)
    ln = sub.add_parser("lance", help="ping-pong (or stream) frames between two LANCE cards and show the CPU cost")
    ln.add_argument("--frames", type=positive, default=100, help="round trips, or frames with --stream (default 100)")
    ln.add_argument("--stream", action="store_true", help="send le0 -> le1 back to back instead of ping-pong")
    ln.add_argument("--rtl", default="", metavar="KINDS",
                    help="device kinds that run as RTL: lance (both cards; default none)")
    ln.add_argument("--backend", choices=("model", "amaranth", "verilator"), default=None,
                    help="the HDL simulator of the --rtl devices (default verilator); model "
                         "runs both cards as models (the default without --rtl). For "
                         "compatibility, verilator or amaranth without --rtl runs le0's card "
                         "as RTL and le1's as the model")
    ln.add_argument("--size", type=int_arg(lambda: _lance_size(True), lambda: _lance_size(False)),
                    default=None, help="frame bytes without FCS, 14..1514 (default random)")
    ln.add_argument("--seed", type=int_arg(), default=1, help="random seed (default 1)")
    ln.add_argument("--pcap", default=None, help="write the segment's frames to this pcapng file")
    ln.set_defaults(func=_cmd_lance)
    va = sub.add_parser("validate", help="simulated microbenchmarks (getpid, pipes, select, "
                        "bcopy, exceptions, demux, TCP connect, ...) against measured operations "
                        "of the real machines")
    va.add_argument("--rows", default=None,
                    help="comma-separated anchor rows, e.g. U1,U3,X2-1 (a bare id takes all its "
                         "values; default all)")
    va.add_argument("--seed", type=natural, default=1, help="random seed (default 1)")
    va.add_argument("--out", default="results", help="output folder (default results/)")
    va.add_argument("--anchors", default=None,
                    help="anchors file (default the one shipped: serveros/validation/anchors.toml)")
    va.set_defaults(func=_cmd_validate)
    ru = sub.add_parser("run", help="the paper's experiment: HTTP throughput of cheetah, harvest "
                        "and ncsa against document size (figure a) and clients (figure b); "
                        "figure c: over Ethernet and over the AN2 ATM card; figure d: Cheetah "
                        "with ASHs and ILP")
    ru.add_argument("--figure", default="all",
                    help="a, b, c, d or a list of them (a,c); all is the paper's a and b "
                         "(default all). c, beyond the paper: Ethernet against the AN2 card, "
                         "0 B to 1 MiB documents, 1 to 16 clients. d, beyond the paper: "
                         "Cheetah with ASHs and ILP added one at a time (its own variants, "
                         "whatever --servers says), 1 KiB and 100 KiB documents, 8 clients")
    ru.add_argument("--network", default="ethernet,an2",
                    help="figure c's and d's networks: ethernet, an2 or both (default "
                         "ethernet,an2); figures a and b always run on Ethernet")
    ru.add_argument("--requests", type=positive, default=1000, help="requests per client (default 1000)")
    ru.add_argument("--servers", default="cheetah,harvest,ncsa",
                    help="comma-separated servers (default cheetah,harvest,ncsa); "
                         "cheetah@STAGE runs Cheetah at one of the paper's stages "
                         "(posix, libos, ... see README) or one beyond them (+ash, +ilp); "
                         "cheetah@no-SWITCH has one specialization off, "
                         "cheetah@STAGE.no-SWITCH one off a stage")
    ru.add_argument("--rtl", default="", metavar="KINDS",
                    help="comma-separated device kinds of the server machine that run as RTL "
                         "(lance, disk, an2: e.g. --rtl lance,disk); the other devices run as their "
                         "models (default: none)")
    ru.add_argument("--backend", default=None,
                    help="the HDL simulator of the --rtl devices: verilator (default) or "
                         "amaranth; model runs every device as its model (the default without "
                         "--rtl). For compatibility, --backend verilator or amaranth without "
                         "--rtl means --rtl lance (icarus runs the RTL only in the cocotb "
                         "testbenches)")
    ru.add_argument("--seed", type=natural, default=1, help="random seed (default 1)")
    ru.add_argument("--client", choices=("pentium", "sparc"), default="pentium",
                    help="the client machines: pentium (Pentium-100 under OpenBSD, default) or "
                         "sparc (SPARCstation 1 under SunOS 4.1)")
    ru.add_argument("--pcap", default=None,
                    help="write the frames of the FIRST point run to this pcapng file")
    ru.add_argument("--out", default="results", help="output folder (default results/)")
    ru.add_argument("--jobs", type=positive, default=2,
                    help="worker processes of a local Dask cluster (default 2; 1, or a "
                         "single point, runs in this process)")
    ru.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the points on an existing Dask cluster (tcp://host:8786) "
                         "instead of --jobs local workers")
    ru.set_defaults(func=_cmd_run)
    sy = sub.add_parser("synth", help="Yosys synthesis figures (cells, flip-flops, iCE40 LUTs, "
                                      "logic depth) of hardware ILP pipe lists")
    sy.add_argument("--pipes", action="append", default=None, metavar="LIST",
                    help="a comma-separated list of standard pipes (copy, cksum, bswap, hswap16, "
                         "scramble); repeat for more lists (default: copy,cksum; bswap,cksum; "
                         "cksum; copy; hswap16,scramble,cksum)")
    sy.add_argument("--no-cache", action="store_true",
                    help="synthesize again instead of reusing build/synth/ilp/")
    sy.set_defaults(func=_cmd_synth)
    from .sweep import plotcli, sweepcli
    sweepcli.add_parser(sub)
    plotcli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status:
    0 done, 1 a simulation failed (the cause on one line, the traceback in a file it names),
    2 a bad option (one line naming it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:               # --help (0), or a bad option already reported (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    prog = f"serveros {args.command}"
    try:
        return args.func(args)
    except UsageError as e:
        print(f"{prog}: error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130                        # 128 + SIGINT, as a shell reports it
    except Exception as e:
        where = log_traceback(args.command, argv)
        print(f"{prog}: error: {type(e).__name__}: {one_line(str(e))} (the full traceback is "
              f"in {where})", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
