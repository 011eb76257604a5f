"""``serveros sweep FILE``: run a sweep file's points on Dask and write its tables.

Wired into :mod:`serveros.cli` by :func:`add_parser`; :func:`main` parses nothing itself (the
library does the work: :func:`serveros.sweep.spec.load_sweep`,
:func:`serveros.sweep.runner.run_sweep`, :func:`serveros.sweep.table.write_tables`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..cliargs import EXIT_FAILURE, UsageError, int_arg, one_line, output_dir, points_progress

__all__ = ["add_parser", "main", "DEFAULT_OUT"]

#: The output folder of ``serveros sweep FILE`` without ``--out``: ``results/sweep-<stem>``.
DEFAULT_OUT = "results/sweep-{stem}"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` command to ``subparsers``; its ``func`` is :func:`main`."""
    p = subparsers.add_parser(
        "sweep", help="run a sweep file's points (hardware, network, pipes, server, workload) "
                      "as tasks on Dask; finished points are kept, so a sweep resumes")
    p.add_argument("file", metavar="FILE", help="the sweep file (TOML; see README)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder: points/ (one file a finished point), results.parquet, "
                        "results.csv, results.json (default results/sweep-<FILE's stem>)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://host:8786: `dask scheduler` "
                        "and `dask worker` started by hand) instead of a local one")
    p.add_argument("--workers", type=int_arg(1), default=None, metavar="N",
                   help="worker processes of the local cluster (default: one per core; 1 runs "
                        "the points in this process)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run stored failed points again (default: keep their failure)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the points (and which are stored) without running any")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``serveros sweep`` with the parsed ``args``: 0 when every point succeeded, 1 when
    some failed (their rows say why), 2 for a bad file or option.

    Raises
    ------
    UsageError
        For a bad sweep file (naming its line), ``--workers`` with ``--scheduler``, a
        scheduler that cannot be reached, or a bad output folder.
    """
    from rich.console import Console

    from ..experiments import paper
    from .engine import default_workers, task_key
    from .plan import plan_sweep
    from .runner import run_sweep
    from .spec import SweepError, load_sweep
    from .store import PointStore
    from .tasks import Task

    console = Console()
    if args.workers is not None and args.scheduler is not None:
        raise UsageError("argument --workers: the cluster at --scheduler has its own workers")
    try:
        sweep = load_sweep(args.file)
        planned = plan_sweep(sweep)
    except SweepError as e:
        raise UsageError(str(e)) from None
    out = output_dir("--out", args.out or DEFAULT_OUT.format(stem=Path(args.file).stem))
    if args.dry_run:
        store = PointStore(out)
        for sp in planned:
            held = store.get(task_key(Task(sp.point, sp.image))) is not None
            console.print(f"  {sp.point.label}{' (stored)' if held else ''}", markup=False,
                          highlight=False)
        console.print(f"{sweep.name}: {len(planned)} points ({sweep.mode})")
        return 0
    n = args.workers or default_workers()
    where = args.scheduler or (f"{n} local workers" if n > 1 else "in this process")
    wall0 = time.perf_counter()
    with points_progress(console) as prog:
        bar = prog.add_task(f"{sweep.name}: {len(planned)} points ({where})",
                            total=len(planned))

        def done(sp, outcome) -> None:
            r = outcome.rows[0]
            if outcome.ran:
                state = (f"FAILED: {one_line(r['error'])}" if paper.failed(r) else
                         f"{r['throughput_rps']:,.0f} req/s in {r['wall_seconds']:.1f} s")
                prog.console.print(f"  {sp.point.label}: {state}", markup=False,
                                   highlight=False)
            prog.advance(bar)
        try:
            res = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler,
                            retry_failed=args.retry_failed, progress=done, planned=planned)
        except ConnectionError as e:
            raise UsageError(f"argument --scheduler: {e}") from None
    wall = time.perf_counter() - wall0
    files = _write(res.rows, out, sweep)
    console.print(f"{sweep.name}: {res.points} points: {res.ran} run, {res.reused} from "
                  f"{out / 'points'}, {res.failed} failed; {wall:.1f} s wall")
    console.print("wrote: " + ", ".join(str(p) for p in files), soft_wrap=True, markup=False,
                  highlight=False)
    if res.failed:
        print(f"serveros sweep: error: {res.failed} of {res.points} points failed; their "
              f"errors and tracebacks are in {out / 'results.json'}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _write(rows: list[dict], out: Path, sweep) -> list[Path]:
    """results.json (the rows as the engine gave them, nested fields kept) and the tables
    (:func:`serveros.sweep.table.write_tables`: results.parquet, results.csv)."""
    doc = {"meta": {"sweep": sweep.name, "file": sweep.path, "mode": sweep.mode,
                    "samples": sweep.samples, "sampling_seed": sweep.seed},
           "rows": rows}
    p = out / "results.json"
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(p)
    from .table import write_tables
    return [p, *write_tables(rows, out).values()]
