"""``serveros plot DIR``: PNGs of a sweep's results table (:mod:`serveros.sweep.plotting`).

``DIR`` is a ``serveros sweep`` output folder (``results.parquet``) or a ``serveros run`` one
(``results.json``). Without ``--pareto`` it draws ``--y`` (default ``throughput_rps``)
against ``--x`` (default ``doc_bytes``), one line per value of ``--by`` (``--by a,b``: one
line per combination; ``--panels c``: a panel per value of ``c``), into
``DIR/plot_<y>_vs_<x>[_by_<by>][_per_<c>].png``; with ``--pareto area`` or
``--pareto cycles`` the Pareto front of ``--y`` against hardware area or CPU cycles per
request into ``DIR/pareto_<cost>.png`` (``--out`` names another file). It prints the file written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cliargs import UsageError, output_file
from .plotting import COSTS, DEFAULT_Y, plot_metric, plot_pareto
from .table import read_table

__all__ = ["add_parser", "main", "default_png"]

DEFAULT_X = "doc_bytes"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``plot`` command to ``subparsers`` (``add_subparsers()``'s result); its
    ``func`` is :func:`main`."""
    p = subparsers.add_parser(
        "plot", help="plot a sweep's results: throughput against a parameter, or the Pareto "
                     "front against hardware area or CPU cycles per request")
    p.add_argument("dir", metavar="DIR",
                   help="a `serveros sweep` (results.parquet) or `serveros run` "
                        "(results.json) output folder")
    p.add_argument("--x", default=None, metavar="PARAM",
                   help=f"the column on the x axis (default: {DEFAULT_X})")
    p.add_argument("--y", default=DEFAULT_Y, metavar="METRIC",
                   help=f"the column on the y axis (default: {DEFAULT_Y})")
    p.add_argument("--by", default=None, metavar="PARAM",
                   help="one line per value of this column (or comma-separated columns: "
                        "one line per combination)")
    p.add_argument("--panels", default=None, metavar="PARAM",
                   help="one panel per value of this column, side by side")
    p.add_argument("--pareto", choices=sorted(COSTS), default=None,
                   help="draw the Pareto front of METRIC against hardware area (iCE40 LUTs "
                        "of the hardware pipes) or CPU busy cycles per request")
    p.add_argument("--label", default=None, metavar="COLS",
                   help="with --pareto: comma-separated columns naming the front's points "
                        "(default: the parameters that vary)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="the PNG to write (default: in DIR, named after the plot)")
    p.set_defaults(func=main)
    return p


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def default_png(args: argparse.Namespace) -> str:
    """The file name of the plot ``args`` ask for (in DIR)."""
    if args.pareto:
        return f"pareto_{args.pareto}.png"
    by = f"_by_{'_'.join(_columns(args.by))}" if args.by else ""
    panels = f"_per_{args.panels}" if args.panels else ""
    return f"plot_{args.y}_vs_{args.x or DEFAULT_X}{by}{panels}.png"


def main(args: argparse.Namespace) -> int:
    """Run ``serveros plot`` with the parsed ``args``; 0 when the PNG is written.

    Raises
    ------
    UsageError
        For a folder with no results, a column the results do not have, or options that do
        not go together.
    """
    if args.pareto and (args.x or args.by or args.panels):
        raise UsageError("argument --pareto: its x axis is the cost; --x, --by and --panels "
                         "do not apply")
    if args.label and not args.pareto:
        raise UsageError("argument --label: only with --pareto")
    try:
        rows = read_table(args.dir)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"argument DIR: {e}") from None
    png = output_file("--out", args.out or Path(args.dir) / default_png(args))
    try:
        if args.pareto:
            labels = _columns(args.label) if args.label else None
            out = plot_pareto(rows, png, cost=args.pareto, y=args.y, labels=labels)
        else:
            out = plot_metric(rows, png, x=args.x or DEFAULT_X, y=args.y,
                              by=_columns(args.by) if args.by else None, panels=args.panels)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(out)
    return 0
