"""Plots of a sweep's results table (matplotlib, Agg backend: no display needed).

* :func:`plot_metric`: a metric (default ``throughput_rps``) against any column, one line per
  value of another (``by``; or of several together). Where several rows share a line's x
  (other parameters vary too), the line goes through their mean and a bar spans their minimum
  to maximum; the title says how many rows a point holds at most and which parameters vary.
* :func:`plot_pareto`: throughput against a cost, hardware area (:data:`COSTS` ``area``: the
  iCE40 LUTs of the devices' hardware pipes, :mod:`serveros.sweep.synth_figures`; 0 for
  software-only points) or the server CPU's busy cycles per request (``cycles``); every
  measured point grey, the Pareto front (:func:`pareto_front`: no other point has at most the
  cost and more throughput) marked, joined and labelled with its varying parameters.

Rows are flattened table rows (:func:`serveros.sweep.table.read_table`). A failed point's row
(``status`` ``failed``, or no value of the plotted metric) is left out.
"""
from __future__ import annotations

import difflib

import math
import os
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

__all__ = ["COSTS", "DEFAULT_Y", "LABEL_COLUMNS", "measured", "pareto_front", "plot_metric",
           "plot_pareto", "varying"]

#: The metric plotted when none is named.
DEFAULT_Y = "throughput_rps"
#: ``--pareto`` costs and their columns (lower is better).
COSTS = {"area": "area_luts", "cycles": "cpu_cycles_per_request"}
#: Columns that may name a point in a label, in this order (those that vary among the rows
#: are used): a sweep's parameters as its rows name them (the hardware's are
#: :data:`serveros.hardware.HARDWARE_PARAMS`; a test keeps this list in step).
LABEL_COLUMNS = ("server", "network", "pipes", "cpu_mhz", "mem_cycle_ns", "lance_buffer_kib",
                 "doc_bytes", "clients", "requests_per_client", "seed", "client")
_AXIS_NAMES = {"throughput_rps": "requests per second", "doc_bytes": "document size (bytes)",
               "cpu_cycles_per_request": "server CPU busy cycles per request",
               "area_luts": "hardware area (iCE40 LUT4 cells of the hardware pipes)",
               "goodput_bytes_per_s": "document bytes per second"}


def _number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


def measured(rows: Sequence[dict], *columns: str) -> list[dict]:
    """The rows of points that ran (not ``status`` ``failed``) with a number in every one of
    ``columns``."""
    return [r for r in rows if r.get("status") != "failed"
            and all(_number(r.get(c)) for c in columns)]


def varying(rows: Sequence[dict], columns: Sequence[str] = LABEL_COLUMNS) -> list[str]:
    """The ``columns`` whose value differs between ``rows``."""
    return [c for c in columns if len({repr(r.get(c)) for r in rows}) > 1]


def _check_columns(rows: Sequence[dict], **named: str | None) -> None:
    have = list(dict.fromkeys(c for r in rows for c in r))
    for option, col in named.items():
        if col is not None and col not in have:
            close = difflib.get_close_matches(col, have, n=5, cutoff=0.5)
            hint = (f"did you mean {', '.join(close)}?" if close else
                    f"e.g. {', '.join(have[:12])}")
            raise ValueError(f"{option}: no column {col!r} among the results' {len(have)} "
                             f"columns; {hint}")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """The indices of the Pareto-optimal ``(cost, value)`` points, by rising cost: those that
    no other point beats (cost no higher and value higher, or cost lower and value no lower).
    Of equal points the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _label(row: dict, columns: Sequence[str]) -> str:
    return ", ".join(f"{c}={row.get(c)}" for c in columns)


def _axis(name: str) -> str:
    return _AXIS_NAMES.get(name, name)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out


def _sort_values(values) -> list:
    return sorted(values, key=lambda v: (not _number(v), v if _number(v) else str(v)))


def _draw_lines(ax, rows: list[dict], *, x: str, y: str, bys: list[str], pos: dict,
                xs_all: list) -> int:
    """One line per combination of ``bys`` on ``ax``; the most rows a point averages."""
    lines: dict[str, list[dict]] = {}
    for r in rows:
        lines.setdefault(", ".join(f"{b}={r.get(b)}" for b in bys), []).append(r)
    most = 1
    for name in sorted(lines, key=_natural):
        at: dict = {}
        for r in lines[name]:
            at.setdefault(r[x], []).append(r[y])
        keys = [v for v in xs_all if v in at]
        mean = [sum(at[v]) / len(at[v]) for v in keys]
        lo = [m - min(at[v]) for m, v in zip(mean, keys)]
        hi = [max(at[v]) - m for m, v in zip(mean, keys)]
        most = max(most, *(len(at[v]) for v in keys))
        ax.errorbar([pos[v] for v in keys], mean, yerr=[lo, hi] if any(lo) or any(hi) else None,
                    marker="o", capsize=3, label=name or None)
    return most


def _x_axis(ax, x: str, xs_all: list, numeric: bool) -> None:
    if numeric:
        positive = [v for v in xs_all if v > 0]
        if positive and max(positive) / min(positive) >= 100:
            if 0 in xs_all:
                ax.set_xscale("symlog", linthresh=min(positive))
            else:
                ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
    ax.set_xlabel(_axis(x))


def plot_metric(rows: Sequence[dict], path: str | os.PathLike, *, x: str,
                y: str = DEFAULT_Y, by: str | Sequence[str] | None = None,
                panels: str | None = None) -> Path:
    """Draw ``y`` against ``x``, one line per value of ``by`` (a column, or several: one line
    per combination of their values; one line without), into the PNG file ``path``; with
    ``panels``, one panel per value of that column, side by side, each with its own y axis.
    The title names the :data:`LABEL_COLUMNS` that vary within a line's points (averaged
    over). A numeric ``x`` is drawn to scale (logarithmic when its positive values span a
    factor of 100 or more; symmetric-log if 0 is one of them), any other as categories in
    sorted order.

    Raises
    ------
    ValueError
        Naming a column the rows do not have, or when no row has a number in ``y``.
    """
    bys = [by] if isinstance(by, str) else list(by or ())
    _check_columns(rows, x=x, y=y, panels=panels, **{f"by {b}": b for b in bys})
    mine = [r for r in measured(rows, y) if r.get(x) is not None]
    if not mine:
        raise ValueError(f"no measured row has a number in {y!r} and a value of {x!r}")
    xs_all = _sort_values({r[x] for r in mine})
    numeric = all(_number(v) for v in xs_all)
    pos = {v: (v if numeric else i) for i, v in enumerate(xs_all)}
    groups = ({None: mine} if panels is None else
              {v: [r for r in mine if r.get(panels) == v]
               for v in _sort_values({r.get(panels) for r in mine})})
    plt = _pyplot()
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(7.2 if n == 1 else 1.2 + 4.6 * n, 4.8), dpi=100,
                             squeeze=False)
    most = 1
    try:
        for ax, (value, group) in zip(axes[0], groups.items()):
            most = max(most, _draw_lines(ax, group, x=x, y=y, bys=bys, pos=pos,
                                         xs_all=xs_all))
            _x_axis(ax, x, xs_all, numeric)
            ax.set_ylabel(_axis(y))
            ax.set_ylim(bottom=0)
            ax.grid(True, which="both", alpha=0.3)
            if panels is not None:
                ax.set_title(f"{panels} = {value}", fontsize=10)
        if bys:
            axes[0][0].legend(fontsize=7)
        title = (f"{y} against {x}" + (f", by {', '.join(bys)}" if bys else "")
                 + (f", a panel per {panels}" if panels else ""))
        if most > 1:
            over = [c for c in varying(mine) if c not in (x, panels, *bys)]
            title += (f"\n(mean of up to {most} rows a point"
                      + (f", over {', '.join(over)}" if over else "") + "; bars: min to max)")
        (fig.suptitle if panels else axes[0][0].set_title)(title, fontsize=10)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _natural(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def plot_pareto(rows: Sequence[dict], path: str | os.PathLike, *, cost: str,
                y: str = DEFAULT_Y, labels: Sequence[str] | None = None) -> Path:
    """Draw ``y`` against ``cost`` (a key of :data:`COSTS`) into the PNG file ``path``: every
    measured point, the Pareto front marked and joined, each front point labelled with
    ``labels`` (default: the :data:`LABEL_COLUMNS` that vary among the measured rows).

    Raises
    ------
    ValueError
        For an unknown cost, a column the rows do not have, or no measured row.
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {', '.join(COSTS)}, not {cost!r}")
    col = COSTS[cost]
    _check_columns(rows, y=y, **{f"cost {cost}": col})
    mine = measured(rows, y, col)
    if not mine:
        raise ValueError(f"no measured row has numbers in both {col!r} and {y!r}")
    names = list(labels) if labels is not None else varying(mine)
    _check_columns(rows, **{f"label {n}": n for n in names})
    pts = [(float(r[col]), float(r[y])) for r in mine]
    front = pareto_front(pts)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 5.2), dpi=100)
    try:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="0.6", s=18,
                   label=f"points ({len(pts)})")
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.plot(fx, fy, color="tab:red", drawstyle="steps-post", linewidth=1)
        ax.scatter(fx, fy, color="tab:red", s=40, zorder=3,
                   label=f"Pareto front ({len(front)})")
        xmid = (min(p[0] for p in pts) + max(p[0] for p in pts)) / 2
        for n, i in enumerate(front):
            if names:
                right = pts[i][0] > xmid        # labels run inwards, away from the edges
                ax.annotate(_label(mine[i], names), (pts[i][0], pts[i][1]), fontsize=7,
                            xytext=(-5 if right else 5, -11 - 9 * (n % 2)),
                            textcoords="offset points", ha="right" if right else "left")
        ax.set_xlabel(_axis(col) + " (lower is better)")
        ax.set_ylabel(_axis(y))
        ax.set_ylim(0, max(p[1] for p in pts) * 1.08 or 1)
        ax.set_title(f"{y} against {cost}: Pareto front", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        return _save(fig, path)
    finally:
        plt.close(fig)
