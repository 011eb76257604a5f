"""Figure d, beyond the paper: Cheetah with ASHs and ILP added one at a time (issue 17).

The paper's Cheetah used neither application-specific safe handlers nor integrated layer
processing, and expected both to help. Figure d measures by how much: the full (paper) Cheetah
and the same Cheetah with each mechanism of :data:`MECHANISMS` added alone and together
(:data:`VARIANTS`), over the paper's Ethernet (the LANCE card) and over the AN2 ATM card, for a
small and a large document (:data:`DOC_SIZES`) at a fixed client count (:data:`CLIENTS`).

Every point's rows carry figure c's fields (:mod:`serveros.experiments.figure_c`) and
(:func:`figure_d_fields`):

* ``mechanisms``: which of :data:`MECHANISMS` the point's Cheetah has on (a list, in that
  order; ``[]`` for the paper's Cheetah);
* ``cpu_cycles_per_request``: the server CPU's busy cycles (every category but idle) over the
  measured interval per request served;
* ``cpu_cycles_per_request_breakdown``: the same cycles by CPU category (:mod:`sim.cpu`),
  per request, so a reader sees which categories a mechanism moves.

The variants
------------
:data:`VARIANTS` lists every variant the figure knows, each a Cheetah spec
(``cheetah@SPEC``, :func:`sw.cheetah.variant`). A variant whose switch does not exist yet in
:mod:`sw.cheetah` (the AN2 card's hardware pipes, ``hwilp``) is *planned*: it is not simulated,
and the plot and the table name it as planned. Adding the switch to
:data:`sw.cheetah.LATER_SPECIALIZATIONS` makes it a measured variant with no change here.

The client count
----------------
:data:`CLIENTS` is 8, figure c's size-sweep count (:data:`figure_c.SIZE_SWEEP_CLIENTS`): the
baseline ``cheetah`` points are then figure c's Cheetah points (same seed, documents' image and
watchdog, so the same rows but for ``figure`` and this figure's fields), and over AN2 eight
clients keep Cheetah's CPU busy for small documents (figure c: 0 % idle at 0 bytes), so the
cycles a mechanism saves can show as throughput. Over Ethernet the wire limits every variant;
there the cycles per request tell the mechanisms apart.

The document sizes
------------------
1 KiB (one segment: per-request work dominates, where the ASH acts) and 100 KiB (70 Ethernet
segments or 12 AN2 packets: per-byte and per-packet work, where ILP acts). 1 MiB is left out
for wall time: a request costs about 0.6 s of wall time per MiB over Ethernet and 2-3 s over
AN2, so 20 requests from 8 clients of 1 MiB would take some 400 s per AN2 point; 100 KiB takes
a tenth of that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from . import figure_c

__all__ = ["FIGURE", "MECHANISMS", "Variant", "VARIANTS", "DOC_SIZES", "CLIENTS",
           "figure_d_combos", "variant_available", "measured_variants", "planned_variants",
           "variant_index", "mechanisms_of", "figure_d_fields", "moving_categories",
           "MOVING_FRACTION"]

FIGURE = "d"
#: The mechanisms beyond the paper a variant may have on: ASHs, software ILP, and the AN2
#: card's hardware pipes (planned).
MECHANISMS = ("ash", "ilp", "hwilp")


@dataclass(frozen=True)
class Variant:
    """One of figure d's Cheetahs.

    Attributes
    ----------
    label : str
        Its name in the plot and the table.
    spec : str
        ``cheetah@SPEC`` names it (``"cheetah"`` for the paper's Cheetah).
    """

    label: str
    spec: str


#: Figure d's variants, in the plot's order: the paper's Cheetah, each mechanism alone, then
#: together. The ``hwilp`` ones are planned until :mod:`sw.cheetah` has that switch
#: (:func:`variant_available`): the stage ``+hwilp`` then follows ``+ilp`` with every
#: mechanism on.
VARIANTS = (
    Variant("cheetah", "cheetah"),
    Variant("+ash", "cheetah@+ash"),
    Variant("+ilp", "cheetah@+ilp.no-ash"),
    Variant("+hwilp", "cheetah@+hwilp.no-ash.no-ilp"),
    Variant("+ash+ilp", "cheetah@+ilp"),
    Variant("+ash+ilp+hwilp", "cheetah@+hwilp"),
)
#: Document sizes (bytes) and the client count (see the module's docstring).
DOC_SIZES = (1024, 102400)
CLIENTS = figure_c.SIZE_SWEEP_CLIENTS


def _config(spec: str):
    """The Cheetah configuration of ``spec`` (:func:`sw.cheetah.variant`; ``cheetah``: all
    of the paper's switches)."""
    from sw.cheetah import CheetahConfig, variant
    base, _, stage = spec.partition("@")
    if base != "cheetah":
        raise ValueError(f"a figure-d variant is cheetah or cheetah@SPEC, not {spec!r}")
    return variant(stage) if stage else CheetahConfig()


def variant_available(v: Variant) -> bool:
    """Whether :mod:`sw.cheetah` knows the switches ``v`` names (else it is planned)."""
    try:
        _config(v.spec)
    except ValueError:
        return False
    return True


def measured_variants(variants: Iterable[Variant] = VARIANTS) -> tuple[Variant, ...]:
    """The ``variants`` that can run now, in their order."""
    return tuple(v for v in variants if variant_available(v))


def planned_variants(variants: Iterable[Variant] = VARIANTS) -> tuple[Variant, ...]:
    """The ``variants`` whose switch does not exist yet."""
    return tuple(v for v in variants if not variant_available(v))


def variant_index(server: str) -> int:
    """The position of the variant run as ``server`` in :data:`VARIANTS` (rows and plots
    follow it); ``len(VARIANTS)`` for a server that is none of them."""
    for i, v in enumerate(VARIANTS):
        if v.spec == server:
            return i
    return len(VARIANTS)


def mechanisms_of(server: str) -> list[str]:
    """Which of :data:`MECHANISMS` the Cheetah run as ``server`` (``cheetah@SPEC``) has on.

    Raises
    ------
    ValueError
        For a server that is not Cheetah or an unknown stage or switch.
    """
    cfg = _config(server)
    return [m for m in MECHANISMS if getattr(cfg, m, False)]


def figure_d_combos(doc_sizes: Iterable[int] = DOC_SIZES,
                    clients: int = CLIENTS) -> list[tuple[int, int]]:
    """The ``(document bytes, clients)`` pairs of figure d: every size at ``clients``."""
    return list(dict.fromkeys((n, clients) for n in doc_sizes))


def figure_d_fields(*, server: str, ok_requests: int, cycles_by_category: dict[str, float],
                    idle: str) -> dict:
    """The row fields figure d adds to a point's measurements (see the module's docstring).

    Parameters
    ----------
    server : str
        The point's server (``cheetah@SPEC``).
    ok_requests : int
        Requests served over the interval.
    cycles_by_category : dict
        The server CPU's cycles over the interval by category, ``idle`` included.
    idle : str
        The idle category's name (left out of both fields).
    """
    busy = {c: n for c, n in sorted(cycles_by_category.items()) if c != idle}
    per = (lambda n: n / ok_requests) if ok_requests else (lambda n: None)
    return {"mechanisms": mechanisms_of(server),
            "cpu_cycles_per_request": per(sum(busy.values())),
            "cpu_cycles_per_request_breakdown": ({c: per(n) for c, n in busy.items()}
                                                 if ok_requests else {})}


#: A category "moves" when some variant's cycles per request in it differ from the paper
#: Cheetah's on the same network and document by more than this fraction of the paper
#: Cheetah's cycles per request (1 %: below that a category is noise of retransmissions and
#: timer ticks, not a mechanism).
MOVING_FRACTION = 0.01


def moving_categories(rows: list[dict], fraction: float = MOVING_FRACTION) -> list[str]:
    """The CPU categories whose cycles per request some variant moves, against the paper's
    Cheetah (``server == "cheetah"``) on the same network and document, by more than
    ``fraction`` of the baseline's cycles per request; largest move first. Rows without a
    baseline or without measurements are left out."""
    base = {(r["network"], r["doc_bytes"]): r for r in rows
            if r.get("server") == "cheetah" and r.get("cpu_cycles_per_request")}
    moved: dict[str, float] = {}
    for r in rows:
        b = base.get((r.get("network"), r.get("doc_bytes")))
        if b is None or r is b or not r.get("cpu_cycles_per_request_breakdown"):
            continue
        mine, theirs = r["cpu_cycles_per_request_breakdown"], b["cpu_cycles_per_request_breakdown"]
        for c in {*mine, *theirs}:
            d = abs((mine.get(c) or 0.0) - (theirs.get(c) or 0.0)) / b["cpu_cycles_per_request"]
            if d > fraction:
                moved[c] = max(moved.get(c, 0.0), d)
    return sorted(moved, key=lambda c: (-moved[c], c))
