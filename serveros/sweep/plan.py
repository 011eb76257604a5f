"""A sweep's points: the axes of a :class:`~serveros.sweep.spec.Sweep` combined by its mode.

- ``grid``: every combination, the first axis outermost (:data:`spec.AXIS_ORDER`);
- ``random``: ``samples`` distinct combinations drawn uniformly without replacement
  (NumPy's ``Generator.choice`` seeded by ``sweep.seed``), in grid order;
- ``lhs``: a Latin-hypercube sample of ``samples`` points over the axes' values (for each
  axis the unit interval is cut into ``samples`` strata, each stratum used once, in an
  independently shuffled order, and a stratum's point picks the value at that fraction of the
  axis's list), so every value of every axis is used about equally often with few points;
  duplicates dropped, in grid order. Written with NumPy (a few lines) rather than
  ``scipy.stats.qmc`` to keep SciPy out of the dependencies.

Then each combination becomes a :class:`~serveros.experiments.paper.Point` of figure
``sweep``; ``pipes`` on a server other than Cheetah is dropped (the server runs without pipes:
the same point for every pipes value, kept once).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

from .spec import Sweep

__all__ = ["SweepPoint", "MAX_GRID", "combinations", "plan_sweep", "row_columns"]

#: The most combinations a random or Latin-hypercube sweep draws from (their indices are
#: enumerated); a grid has no such bound but its points are listed.
MAX_GRID = 10_000_000


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: ``params`` (each axis's value, by qualified name
    ``section.name``), its :class:`~serveros.experiments.paper.Point` and the documents'
    sizes its image holds."""

    params: dict
    point: object
    image: tuple[int, ...]


def _grid_size(sweep: Sweep) -> int:
    return math.prod(len(a.values) for a in sweep.axes)


def _decode(index: int, radices: list[int]) -> tuple[int, ...]:
    """Grid ``index`` as one index per axis (the first axis outermost)."""
    out = []
    for r in reversed(radices):
        index, i = divmod(index, r)
        out.append(i)
    return tuple(reversed(out))


def combinations(sweep: Sweep) -> list[tuple[int, ...]]:
    """The combinations of ``sweep``'s mode, each a tuple of value indices (one per axis), in
    grid order.

    Raises
    ------
    SweepError
        When ``samples`` exceeds the grid (name the line of ``samples``), or the grid is too
        large to draw from.
    """
    radices = [len(a.values) for a in sweep.axes]
    size = _grid_size(sweep)
    if sweep.mode == "grid":
        return list(itertools.product(*(range(r) for r in radices)))
    import numpy as np

    if size > MAX_GRID:
        raise sweep.error(f"a {sweep.mode} sample draws from at most {MAX_GRID:,} "
                          f"combinations; this sweep has {size:,}", ("sweep", "mode"))
    if sweep.samples > size:
        raise sweep.error(f"sweep.samples is {sweep.samples} but the parameters have only "
                          f"{size} combinations: use mode = \"grid\" or fewer samples",
                          ("sweep", "samples"))
    rng = np.random.default_rng(sweep.seed)
    if sweep.mode == "random":
        picked = sorted(int(i) for i in rng.choice(size, size=sweep.samples, replace=False))
        return [_decode(i, radices) for i in picked]
    n = sweep.samples
    cols = []
    for r in radices:
        u = (rng.permutation(n) + rng.random(n)) / n            # one point per stratum
        cols.append(np.minimum((u * r).astype(int), r - 1))
    combos = {tuple(int(c[j]) for c in cols) for j in range(n)}
    return sorted(combos)


def _part_sweeps(sweep: Sweep) -> list[Sweep]:
    """``sweep`` as one grid per ``[[part]]`` (the part's axes in place of the sections'),
    or itself when it has none."""
    if not sweep.parts:
        return [sweep]
    from .spec import axis_order, hardware_api
    rank = {k: i for i, k in enumerate(axis_order(tuple(hardware_api()[0] or ())))}
    out = []
    for part in sweep.parts:
        merged = {a.qualname: a for a in sweep.axes}
        merged.update({a.qualname: a for a in part})
        axes = sorted(merged.values(), key=lambda a: rank[a.section, a.name])
        out.append(dataclasses.replace(sweep, axes=tuple(axes), parts=()))
    return out


def plan_sweep(sweep: Sweep) -> list[SweepPoint]:
    """The points of ``sweep``, in grid order (part after part), each once.

    Raises
    ------
    SweepError
        As :func:`combinations`, and for a combination of hardware parameters
        :meth:`serveros.hardware.Hardware.from_params` refuses (naming the [hardware] lines).
    """
    from ..experiments import paper
    from .spec import hardware_api

    hw_params, hardware_cls = hardware_api()
    hw_names = set(hw_params or ())
    points: dict = {}
    for sub, combo in ((p, c) for p in _part_sweeps(sweep) for c in combinations(p)):
        params = {a.qualname: a.values[i] for a, i in zip(sub.axes, combo)}
        hw = {a.name: params[a.qualname] for a in sub.axes
              if a.section == "hardware" and a.name in hw_names}
        try:
            hardware = (tuple(sorted(hardware_cls.from_params(hw).as_params().items()))
                        if hw else ())
        except ValueError as e:
            raise sweep.error(f"hardware {hw}: {e}",
                              *(("hardware", n) for n in hw), ("hardware",)) from None
        server = params["software.server"]
        pipes = params.get("hardware.pipes")
        if pipes is not None and paper.base_server(server) != "cheetah":
            pipes = None
            params["hardware.pipes"] = "none"
        point = paper.Point((paper.SWEEP_FIGURE,), server, params["workload.doc_bytes"],
                            params["workload.clients"], params["workload.requests"], "model",
                            params["workload.seed"], params["workload.client"],
                            network=params["hardware.network"], hardware=hardware, pipes=pipes)
        if point in points:
            continue
        if pipes == "hw":
            try:
                paper.point_server_factory(server, pipes)
            except ValueError as e:
                raise sweep.error(f"hardware.pipes: {e}", ("hardware", "pipes")) from None
        points[point] = SweepPoint(params, point, paper.image_sizes_of(point))
    return list(points.values())


#: The rows' own column for each axis whose name differs (``serveros run``'s rows name the
#: requests per client ``requests_per_client``; ``client`` keeps the rows' machine profile).
_COLUMNS = {"workload.requests": "requests_per_client", "workload.client": None}


def row_columns(sp: SweepPoint) -> dict:
    """The columns a sweep adds to ``sp``'s rows: every axis the rows do not already carry
    under its name (``pipes`` and the hardware's parameters)."""
    out = {}
    for qual, v in sp.params.items():
        col = _COLUMNS.get(qual, qual.partition(".")[2])
        if col is not None:
            out[col] = v
    return out
