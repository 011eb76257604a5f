"""What ``serveros validate`` writes: ``validation.json``, ``validation.csv`` and the chart.

``validation.json`` is ``{"rows": [...]}`` with one object per anchor row, in the anchors
file's order; each has the fields the issue names (``id``, ``quantity``, ``unit``,
``measured``, ``simulated``, ``error``, ``explained``) and ``status``, ``tolerance``,
``machine``, ``platform`` and ``detail`` (a failed benchmark's traceback). ``error`` is
``simulated / measured - 1`` (``-0.1`` is 10 % low); ``simulated`` and ``error`` are null for a
row no benchmark covers or whose benchmark failed.

``validation.png`` draws simulated / measured per covered row on a log axis, with a band for
each row's tolerance, coloured by status.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from .run import EXPLAINED, FAILED, MISS, NOT_COVERED, OK, Result

__all__ = ["FIELDS", "row_dict", "write_json", "write_csv", "write_chart", "write_all"]

#: Columns of ``validation.csv`` and keys of each ``validation.json`` row, in order.
FIELDS = ("id", "quantity", "unit", "measured", "simulated", "error", "tolerance", "status",
          "explained", "machine", "platform", "detail")

_COLOURS = {OK: "tab:green", EXPLAINED: "tab:orange", MISS: "tab:red"}


def row_dict(r: Result, tolerance: float | None = None) -> dict:
    """One result as a JSON/CSV row (``tolerance``: the anchor's, when known)."""
    d = r.as_dict()
    d["tolerance"] = tolerance
    return {k: d.get(k) for k in FIELDS}


def write_json(results: list[Result], path: str | os.PathLike,
               tolerances: dict[str, float] | None = None) -> Path:
    """``{"rows": [...]}`` into ``path``."""
    tol = tolerances or {}
    p = Path(path)
    p.write_text(json.dumps({"rows": [row_dict(r, tol.get(r.id)) for r in results]}, indent=2)
                 + "\n")
    return p


def write_csv(results: list[Result], path: str | os.PathLike,
              tolerances: dict[str, float] | None = None) -> Path:
    """The same rows flat (empty cells for null values)."""
    tol = tolerances or {}
    p = Path(path)
    with p.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for r in results:
            w.writerow({k: ("" if v is None else v) for k, v in row_dict(r, tol.get(r.id)).items()})
    return p


def write_chart(results: list[Result], path: str | os.PathLike,
                tolerances: dict[str, float] | None = None) -> Path:
    """A bar per covered row: simulated / measured on a log axis, the row's tolerance band
    around 1, the bar coloured by status (uncovered and failed rows are listed, not drawn)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tol = tolerances or {}
    drawn = [r for r in results if r.simulated is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(results) + 2), 4.5))
    xs = range(len(results))
    for i, r in enumerate(results):
        t = tol.get(r.id, 0.25)
        ax.fill_between([i - 0.45, i + 0.45], 1 - t, 1 + t, color="0.85", lw=0, zorder=0)
        if r.simulated is not None:
            ax.bar(i, r.simulated / r.measured, color=_COLOURS.get(r.status, "tab:gray"),
                   zorder=2)
        else:
            ax.text(i, 1, "x" if r.status == FAILED else "-", ha="center", va="center",
                    color="tab:red" if r.status == FAILED else "0.4", zorder=3)
    ax.axhline(1.0, color="k", lw=0.8, zorder=1)
    ratios = [r.simulated / r.measured for r in drawn if r.simulated > 0]
    if ratios and (max(ratios) > 3 or min(ratios) < 1 / 3):
        ax.set_yscale("log")
    ax.set_xticks(list(xs), [r.id for r in results], rotation=60, fontsize=8)
    ax.set_ylabel("simulated / measured")
    ax.set_title("serveros validate: simulated / measured per anchor row\n"
                 "grey band: tolerance; green ok, orange explained, red miss; "
                 "- not covered, x failed", fontsize=8)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_all(results: list[Result], out: str | os.PathLike,
              tolerances: dict[str, float] | None = None) -> dict[str, Path]:
    """``validation.json``, ``validation.csv`` and ``validation.png`` into the folder ``out``."""
    out = Path(out)
    return {"json": write_json(results, out / "validation.json", tolerances),
            "csv": write_csv(results, out / "validation.csv", tolerances),
            "png": write_chart(results, out / "validation.png", tolerances)}


#: Statuses in the order the summary line counts them.
STATUSES = (OK, EXPLAINED, MISS, FAILED, NOT_COVERED)
