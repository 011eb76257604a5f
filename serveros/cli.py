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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="serveros",
        description="Co-simulation of the exokernel server OS, Cheetah and its 1990s server hardware.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    b = sub.add_parser("bench", help="print benchmark figures (events per wall-second of the own kernel, ...)")
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
