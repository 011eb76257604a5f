"""The paper's figures from the experiment's rows (matplotlib, Agg backend: no display needed).

- figure a: throughput (requests/s) against document size, log x axis, one line per server;
- figure b: throughput against the number of clients, one line per server;
- figure c (beyond the paper; :func:`plot_figure_c`): six panels, one line per server and
  network (colour the server, solid AN2, dashed Ethernet);
- figure d (beyond the paper; :func:`plot_figure_d`): per network and document, bars per
  Cheetah variant: throughput, and cycles per request stacked by the CPU categories the
  mechanisms move.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["plot_figure", "plot_figure_c", "plot_figure_d", "SERVER_STYLES", "NETWORK_STYLES"]

#: Line style per server (the paper's servers first; others get matplotlib's defaults).
SERVER_STYLES = {
    "cheetah": {"marker": "o", "color": "tab:red"},
    "harvest": {"marker": "s", "color": "tab:blue"},
    "ncsa": {"marker": "^", "color": "tab:green"},
}
#: Line style per network in figure c.
NETWORK_STYLES = {"an2": {"linestyle": "-"}, "ethernet": {"linestyle": "--"}}
_NETWORK_NAMES = {"an2": "AN2", "ethernet": "Ethernet"}


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

    if figure == "c":
        return plot_figure_c(rows, path)
    if figure == "d":
        return plot_figure_d(rows, path)
    if figure not in ("a", "b"):
        raise ValueError(f"figure must be 'a', 'b', 'c' or 'd', not {figure!r}")
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


def _sweep_value(values: list[int], preferred: int) -> int:
    """The value a sweep's other parameter is held at: ``preferred`` if some row has it, else
    the most common one (the smallest of equals)."""
    if preferred in values:
        return preferred
    return min(set(values), key=lambda v: (-values.count(v), v))


def plot_figure_c(rows: list[dict], path: str | os.PathLike) -> Path:
    """Draw figure c from ``rows`` into the PNG file ``path``: six panels, one line per server
    and network.

    Left, against document size (at :data:`figure_c.SIZE_SWEEP_CLIENTS` clients, or the
    client count most rows share; log x, 0 bytes drawn at 1): requests per second (log y),
    goodput as a fraction of the link's payload rate, CPU cycles per document byte (log y;
    0-byte documents have none). Right: requests per second and goodput fraction against
    clients (at :data:`figure_c.CLIENT_SWEEP_DOC` bytes, or the size most rows share), and
    document bytes the CPU touched per request against size (symmetric-log y, so zero, the
    zero-copy claim, is on the axis).

    Raises
    ------
    ValueError
        For no measured rows of figure c.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .experiments import figure_c

    mine = [r for r in rows if r.get("figure") == "c" and "throughput_rps" in r]
    if not mine:
        raise ValueError("no measured rows of figure 'c' to plot")
    at_clients = _sweep_value([r["clients"] for r in mine], figure_c.SIZE_SWEEP_CLIENTS)
    at_doc = _sweep_value([r["doc_bytes"] for r in mine], figure_c.CLIENT_SWEEP_DOC)
    by_size = [r for r in mine if r["clients"] == at_clients]
    by_clients = [r for r in mine if r["doc_bytes"] == at_doc]
    lines = list(dict.fromkeys((r["server"], r["network"]) for r in mine))
    fig, axes = plt.subplots(3, 2, figsize=(11, 11), dpi=100)
    (a_rps, b_rps), (a_good, b_good), (a_cyc, a_touch) = axes

    def draw(ax, sel, xkey, ykey) -> None:
        for server, network in lines:
            pts = sorted((r[xkey], r[ykey]) for r in sel if r["server"] == server
                         and r["network"] == network and r.get(ykey) is not None)
            if not pts:
                continue
            xs = [max(x, 1) for x, _ in pts] if xkey == "doc_bytes" else [x for x, _ in pts]
            style = {**SERVER_STYLES.get(server, {"marker": "x"}),
                     **NETWORK_STYLES.get(network, {})}
            ax.plot(xs, [y for _, y in pts], label=f"{server} / {network}", **style)
        ax.grid(True, which="both", alpha=0.3)

    try:
        for ax, ykey in ((a_rps, "throughput_rps"), (a_good, "goodput_fraction_of_link"),
                         (a_cyc, "cpu_cycles_per_doc_byte"),
                         (a_touch, "cpu_touched_doc_bytes_per_request")):
            draw(ax, by_size, "doc_bytes", ykey)
            ax.set_xscale("log")
            ax.set_xlabel(f"document size (bytes; 0 drawn at 1), {at_clients} clients")
        for ax, ykey in ((b_rps, "throughput_rps"), (b_good, "goodput_fraction_of_link")):
            draw(ax, by_clients, "clients", ykey)
            ax.set_xlabel(f"clients, {at_doc:,}-byte document")
            ax.set_xticks(sorted({r["clients"] for r in by_clients}))
        a_rps.set_yscale("log")
        for ax in (a_rps, b_rps):
            ax.set_ylabel("requests per second")
        b_rps.set_ylim(bottom=0)
        for ax in (a_good, b_good):
            ax.set_ylabel("goodput / link payload rate")
            ax.set_ylim(0, 1.05)
        a_cyc.set_yscale("log")
        a_cyc.set_ylabel("server CPU cycles per document byte")
        a_touch.set_yscale("symlog", linthresh=1)
        a_touch.set_ylim(0, max(10.0, a_touch.get_ylim()[1]))   # all zero: still an axis
        a_touch.set_ylabel("document bytes the CPU touched per request")
        a_rps.set_title("throughput")
        b_rps.set_title("throughput against clients")
        limits = ", ".join(f"{_NETWORK_NAMES.get(n, n)} {figure_c.link_payload_bps(n) / 1e6:.2f}"
                           for n in figure_c.NETWORKS if any(r["network"] == n for r in mine))
        a_good.set_title(f"goodput / link payload rate ({limits} Mbit/s)")
        b_good.set_title("goodput / link payload rate, by clients")
        a_cyc.set_title("server CPU per document byte")
        a_touch.set_title("CPU-touched document bytes (0: zero copy)")
        handles, labels = a_rps.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3),
                   title="server / network (solid: AN2, dashed: Ethernet)")
        fig.suptitle("Figure c: Ethernet against the AN2 ATM card (beyond the paper)")
        fig.tight_layout(rect=(0, 0.07, 1, 0.97))
        out = Path(path)
        fig.savefig(out, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return out


#: The cycles of the categories no mechanism moves, at the bottom of figure d's stacks.
_UNMOVED = "other categories"


def plot_figure_d(rows: list[dict], path: str | os.PathLike) -> Path:
    """Draw figure d from ``rows`` into the PNG file ``path``: a row of two panels per network
    and document size, the x axis Cheetah's variants (:data:`figure_d.VARIANTS`, planned ones
    marked "planned" and left empty).

    Left: requests per second. Right: server CPU cycles per request, stacked by the CPU
    categories some variant moves (:func:`figure_d.moving_categories`) on top of the sum of
    the others (grey), each bar labelled with its total and its change against the paper's
    Cheetah.

    Raises
    ------
    ValueError
        For no measured rows of figure d.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .experiments import figure_c, figure_d

    mine = [r for r in rows if r.get("figure") == "d" and "throughput_rps" in r
            and r.get("cpu_cycles_per_request") is not None]
    if not mine:
        raise ValueError("no measured rows of figure 'd' to plot")
    variants = [v for v in figure_d.VARIANTS
                if v.spec in {r["server"] for r in mine} or not figure_d.variant_available(v)]
    panels = sorted({(r["network"], r["doc_bytes"]) for r in mine},
                    key=lambda p: (figure_c.NETWORKS.index(p[0]), p[1]))
    moving = figure_d.moving_categories(mine)
    colours = dict(zip(moving, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.3 * len(panels) + 1.2), dpi=100,
                             squeeze=False)
    xs = range(len(variants))
    labels = [v.label if figure_d.variant_available(v) else f"{v.label}\n(planned)"
              for v in variants]
    try:
        for (network, size), (a_rps, a_cyc) in zip(panels, axes):
            by = {r["server"]: r for r in mine if (r["network"], r["doc_bytes"]) == (network, size)}
            base = by.get("cheetah")
            clients = sorted({r["clients"] for r in by.values()})
            where = (f"{_NETWORK_NAMES.get(network, network)}, {size:,}-byte document, "
                     f"{', '.join(map(str, clients))} clients")
            for x, v in zip(xs, variants):
                r = by.get(v.spec)
                if r is None:
                    for ax in (a_rps, a_cyc):
                        ax.text(x, 0, "planned" if not figure_d.variant_available(v) else "-",
                                ha="center", va="bottom", rotation=90, color="grey",
                                transform=ax.get_xaxis_transform())
                    continue
                a_rps.bar(x, r["throughput_rps"], color=SERVER_STYLES["cheetah"]["color"],
                          alpha=0.35 + 0.65 * (v.spec == "cheetah"))
                br = r["cpu_cycles_per_request_breakdown"]
                stack = [(_UNMOVED, sum(n for c, n in br.items() if c not in moving))]
                stack += [(c, br.get(c, 0.0)) for c in moving]
                bottom = 0.0
                for c, n in stack:
                    a_cyc.bar(x, n, bottom=bottom, color=colours.get(c, "lightgrey"),
                              label=c if x == 0 else None)
                    bottom += n
                total = r["cpu_cycles_per_request"]
                note = f"{total:,.0f}"
                if base is not None and r is not base:
                    note += f"\n{(total / base['cpu_cycles_per_request'] - 1) * 100:+.1f} %"
                a_cyc.text(x, bottom, note, ha="center", va="bottom", fontsize=7)
            for ax in (a_rps, a_cyc):
                ax.set_xticks(list(xs), labels, fontsize=8)
                ax.grid(True, axis="y", alpha=0.3)
                ax.set_xlim(-0.6, len(variants) - 0.4)
            a_rps.set_ylabel("requests per second")
            a_rps.set_title(f"throughput: {where}", fontsize=9)
            a_cyc.set_ylabel("server CPU cycles per request")
            a_cyc.set_ylim(0, a_cyc.get_ylim()[1] * 1.12)       # room for the labels
            a_cyc.set_title(f"cycles per request by category: {where}", fontsize=9)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours.get(c, "lightgrey"))
                   for c in [_UNMOVED, *moving]]
        fig.legend(handles, [f"{_UNMOVED} (moved by < {figure_d.MOVING_FRACTION:.0%})",
                             *moving], loc="lower center", ncol=min(len(moving) + 1, 5),
                   title="CPU category (stacked bottom to top)")
        fig.suptitle("Figure d: Cheetah with ASHs and ILP added one at a time (beyond the "
                     "paper)")
        fig.tight_layout(rect=(0, 0.9 / (3.3 * len(panels) + 1.2) + 0.03, 1, 0.98))
        out = Path(path)
        fig.savefig(out, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return out
