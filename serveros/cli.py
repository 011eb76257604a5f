"""The ``serveros`` command line: parses, calls library functions, renders with rich.

Every subcommand listed by ``serveros --help`` works; each is a thin wrapper over a function
that is callable from Python too.
"""
from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console
from rich.table import Table

console = Console()


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    table = Table(title="serveros benchmarks (figures, not tests)")
    table.add_column("benchmark")
    table.add_column("rate", justify="right")
    table.add_column("unit")
    table.add_column("note")
    rows = bench.kernel_benchmarks()
    for r in rows:
        table.add_row(r.name, f"{r.value:,.0f}", r.unit, r.note)
    console.print(table)
    worst = min(r.value for r in rows)
    target = bench.KERNEL_TARGET_EVENTS_PER_S
    verdict = "meets" if worst >= target else "MISSES"
    console.print(f"own kernel: slowest workload {worst:,.0f} events/s {verdict} the "
                  f"{target:,} events/s target (one core)")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    from pathlib import Path
    from .experiments.segment import SegmentExperiment, run_segment
    exp = SegmentExperiment(stations=args.stations, frames=args.frames, payload=args.payload, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pcap = Path(args.pcap) if args.pcap else out / "segment.pcapng"
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


def _cmd_profiles(args: argparse.Namespace) -> int:
    from sim.platforms import PROFILES, profile_table
    names = [args.name] if args.name else list(PROFILES)
    for name in names:
        if name not in PROFILES:
            console.print(f"[red]no profile {name!r}; known: {', '.join(PROFILES)}[/red]")
            return 2
        p = PROFILES[name]
        t = Table(title=f"{name}: {p.description}", show_lines=False)
        t.add_column("cost")
        t.add_column("value", justify="right")
        t.add_column("unit")
        t.add_column("source (docs/calibration.md or estimate)", overflow="fold")
        for field, value, unit, source in profile_table(p):
            t.add_row(field, f"{value:g}", unit, source)
        console.print(t)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="serveros",
        description="Co-simulation of the exokernel server OS, Cheetah and its 1990s server hardware.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    b = sub.add_parser("bench", help="print benchmark figures (events per wall-second of the own kernel, ...)")
    b.set_defaults(func=_cmd_bench)
    pr = sub.add_parser("profiles", help="print the platform cost profiles with the source of every constant")
    pr.add_argument("name", nargs="?", help="one profile (default: all)")
    pr.set_defaults(func=_cmd_profiles)
    s = sub.add_parser("segment", help="simulate stations contending on the 10 Mbit/s Ethernet segment")
    s.add_argument("--stations", type=int, default=4, help="number of senders (default 4)")
    s.add_argument("--frames", type=int, default=500, help="frames per sender (default 500)")
    s.add_argument("--payload", type=int, default=1500, help="bytes after the 14-byte header, 46..1500")
    s.add_argument("--seed", type=int, default=1, help="backoff random seed (default 1)")
    s.add_argument("--out", default="results", help="output folder (default results/)")
    s.add_argument("--pcap", default=None, help="capture file (default OUT/segment.pcapng)")
    s.set_defaults(func=_cmd_segment)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
