"""``serveros synth``: Yosys's figures for hardware ILP pipe lists, as a table.

Each pipe list (standard pipes of :mod:`sw.libos.ilp.pipes` by name, comma-separated) is
compiled to :class:`hw.ilp.gateware.PipeDatapath` and synthesized by
:func:`hw.ilp.synth.synthesize`; docs/ilp_pipes.md says how to read the columns.
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from hw.ilp.synth import SynthFigures, synthesize

__all__ = ["DEFAULT_LISTS", "parse_pipe_list", "synth_figures", "synth_table"]

#: The pipe lists ``serveros synth`` shows without ``--pipes``.
DEFAULT_LISTS = ("copy,cksum", "bswap,cksum", "cksum", "copy", "hswap16,scramble,cksum")


def parse_pipe_list(text: str) -> list:
    """The standard pipes named in ``text`` (``"copy,cksum"``), in order.

    Raises
    ------
    ValueError
        Naming an unknown pipe and the known ones, or an empty list.
    """
    from sw.libos.ilp.pipes import STANDARD
    if not isinstance(text, str):
        raise TypeError(f"a pipe list is a comma-separated str, not {text!r}")
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"pipe list {text!r} names no pipe (known: {', '.join(STANDARD)})")
    unknown = [n for n in names if n not in STANDARD]
    if unknown:
        raise ValueError(f"pipe list {text!r}: no standard pipe {unknown[0]!r} "
                         f"(known: {', '.join(STANDARD)})")
    return [STANDARD[n] for n in names]


def synth_figures(lists: Sequence[str] = DEFAULT_LISTS, *, cache: bool = True
                  ) -> list[SynthFigures]:
    """:func:`hw.ilp.synth.synthesize` of each pipe list in ``lists`` (see
    :func:`parse_pipe_list`)."""
    return [synthesize(parse_pipe_list(text), cache=cache) for text in lists]


def synth_table(figures: Sequence[SynthFigures]) -> Table:
    """A rich table, one row per pipe list (a clock column only if a tool reported one)."""
    t = Table(title="hardware ILP pipes: Yosys synthesis figures")
    # The stages are one per pipe: the pipes column says how many.
    cols = [("pipes", "left"), ("cells", "right"), ("FFs", "right"),
            ("depth", "right"), ("LUT4", "right"), ("carry", "right"), ("SB_DFF", "right"),
            ("path", "right")]
    # Numeric columns keep their headers whole on an 80-column terminal; the pipes wrap.
    clocked = any(f.clock_mhz is not None for f in figures)
    if clocked:
        cols.append(("MHz", "right"))
    for name, just in cols:
        t.add_column(name, justify=just, min_width=len("copy, cksum") if name == "pipes"
                     else len(name),
                     overflow="fold")
    for f in figures:
        row = [", ".join(f.pipes), str(f.cells), str(f.flip_flops), str(f.depth),
               str(f.ice40_luts), str(f.ice40_carries), str(f.ice40_ffs),
               f"{f.ice40_path_luts}+{f.ice40_path_carries}"]
        if clocked:
            row.append("-" if f.clock_mhz is None else f"{f.clock_mhz:.1f}")
        t.add_row(*row)
    if figures:
        t.caption = (f"{figures[0].yosys}. Generic `synth`: cells (flip-flops included), FFs, "
                     f"depth = gate levels on the longest path (ltp). `synth_ice40`: LUT4, "
                     f"carry and SB_DFF cells, path = LUTs+carries on the longest path. "
                     + ("MHz = the clock ceiling: nextpnr-ice40's maximum frequency of the "
                        "placed and routed design on an iCE40 HX8K (CT256), seed 1."
                        if clocked else "No clock ceiling: nextpnr-ice40 is not installed."))
    return t
