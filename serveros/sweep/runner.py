"""A sweep from its file to its rows: plan the points, run them on the engine, label the rows.

:func:`run_sweep` is what ``serveros sweep`` calls (and any Python caller): it stores each
point in ``out_dir/points/`` (:class:`~serveros.sweep.store.PointStore`) and returns the rows
of every point of the sweep, in the plan's order, each with the sweep's columns
(:func:`~serveros.sweep.plan.row_columns`: ``pipes`` and the hardware's parameters; the
others are the rows' own ``server``, ``network``, ``doc_bytes`` ...), ``key`` (the point's
store key) and ``code_version``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .engine import Outcome, run_tasks
from .plan import SweepPoint, plan_sweep, row_columns
from .spec import Sweep
from .store import PointStore
from .tasks import Task
from .version import code_version

__all__ = ["SweepResult", "run_sweep", "sweep_rows"]


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep and what the engine did.

    Attributes
    ----------
    rows : list of dict
        Every point's rows in plan order, labelled (:func:`sweep_rows`).
    points : int
        The sweep's points.
    ran, reused : int
        Points simulated by this run; points taken from the store.
    failed : int
        Points whose rows record a failure.
    """

    rows: list
    points: int
    ran: int
    reused: int
    failed: int


def sweep_rows(sp: SweepPoint, outcome: Outcome) -> list[dict]:
    """``outcome``'s rows with the sweep's columns, ``key`` and ``code_version`` (the rows'
    own fields win where both name one: they are the same values)."""
    extra = {**row_columns(sp), "key": outcome.key, "code_version": code_version()}
    return [{**{k: v for k, v in extra.items() if k not in r}, **r} for r in outcome.rows]


def run_sweep(sweep: Sweep, out_dir: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, retry_failed: bool = False,
              progress: Callable[[SweepPoint, Outcome], None] | None = None,
              planned: list[SweepPoint] | None = None) -> SweepResult:
    """Run every point of ``sweep`` not yet stored in ``out_dir`` and return all its rows.

    Parameters
    ----------
    workers, scheduler, retry_failed
        As :func:`serveros.sweep.engine.run_tasks`.
    progress : callable, optional
        ``progress(sweep_point, outcome)`` as each point is reused or finishes.
    planned : list of SweepPoint, optional
        ``plan_sweep(sweep)`` when the caller has it already.

    Raises
    ------
    SweepError
        As :func:`serveros.sweep.plan.plan_sweep`.
    """
    from ..experiments import paper

    sps = plan_sweep(sweep) if planned is None else planned
    by_point = {sp.point: sp for sp in sps}
    tasks = [Task(sp.point, sp.image) for sp in sps]
    outcomes = run_tasks(tasks, workers=workers, scheduler=scheduler,
                         store=PointStore(out_dir), retry_failed=retry_failed,
                         cost=lambda t: paper.point_cost(t.point),
                         progress=(lambda o: progress(by_point[o.task.point], o)) if progress
                         else None)
    rows = [r for sp, o in zip(sps, outcomes) for r in sweep_rows(sp, o)]
    return SweepResult(rows, len(sps), sum(o.ran for o in outcomes),
                       sum(not o.ran for o in outcomes),
                       sum(any(paper.failed(r) for r in o.rows) for o in outcomes))
