"""The paper's figures from the experiment's rows (matplotlib, Agg backend: no display needed).

- figure a: throughput (requests/s) against document size, log x axis, one line per server;
- figure b: throughput against the number of clients, one line per server.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["plot_figure", "SERVER_STYLES"]

#: Line style per server (the paper's servers first; others get matplotlib's defaults).
SERVER_STYLES = {
    "cheetah": {"marker": "o", "color": "tab:red"},
    "harvest": {"marker": "s", "color": "tab:blue"},
    "ncsa": {"marker": "^", "color": "tab:green"},
}


def plot_figure(rows: list[dict], figure: str, path: str | os.PathLike) -> Path:
    """Draw ``figure`` (``"a"`` or ``"b"``) from ``rows`` into the PNG file ``path``.

    Raises
    ------
    ValueError
        For an unknown figure or no rows of it.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if figure not in ("a", "b"):
        raise ValueError(f"figure must be 'a' or 'b', not {figure!r}")
    # A failed point's row has no measurement: its point is missing from the line.
    mine = [r for r in rows if r.get("figure") == figure and "throughput_rps" in r]
    if not mine:
        raise ValueError(f"no measured rows of figure {figure!r} to plot")
    xkey = "doc_bytes" if figure == "a" else "clients"
    servers = list(dict.fromkeys(r["server"] for r in mine))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    try:
        for s in servers:
            pts = sorted((r[xkey], r["throughput_rps"]) for r in mine if r["server"] == s)
            xs = [max(x, 1) if figure == "a" else x for x, _ in pts]   # 0 bytes drawn at 1
            ax.plot(xs, [y for _, y in pts], label=s, **SERVER_STYLES.get(s, {"marker": "x"}))
        if figure == "a":
            ax.set_xscale("log")
            ax.set_xlabel("document size (bytes; 0 drawn at 1)")
            c = sorted({r["clients"] for r in mine})
            ax.set_title(f"HTTP throughput vs document size ({', '.join(map(str, c))} clients)")
        else:
            ax.set_xlabel("clients")
            d = sorted({r["doc_bytes"] for r in mine})
            ax.set_title(f"HTTP throughput vs clients ({', '.join(map(str, d))}-byte document)")
            ax.set_xticks(sorted({r["clients"] for r in mine}))
        ax.set_ylabel("requests per second")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return out
