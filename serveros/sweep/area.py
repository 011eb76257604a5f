"""Hardware area of a sweep's points: the Yosys figures of the hardware ILP pipes a point uses.

A point uses hardware pipes when its ``pipes`` parameter is ``hw`` (a sweep's ``pipes``,
:data:`serveros.experiments.paper.PIPES`, sets Cheetah's switches whatever its stage says) or,
without one, its server is a Cheetah with the ``hwilp`` switch (``cheetah@+hwilp``,
``cheetah@no-ash``, ...), over a card that has pipes: the AN2 card over ``an2`` (its DMA
path's pipes, issue 17). Over ``ethernet`` the LANCE card binds no pipes
(``sw.cheetah.config``: Cheetah then does what ``ilp`` does), so such a point adds no area,
unless its row says the LANCE card's buffer-port block is fitted (a true ``lance_block``
column).

The datapaths (:func:`device_pipe_lists`): the AN2 card's transmit and receive checksum pipes
(``TX_PIPES`` and ``RX_PIPES`` of :mod:`hw.an2.pipes`; its receive byte swaps are wiring and a
select, not a datapath, and are not counted), the LANCE block's one datapath (it serves the
open window's direction: the checksum). Each is synthesized by :func:`hw.ilp.synth.synthesize`
(cached by design under ``build/synth/ilp/``; the first synthesis of a list takes seconds,
later ones are a file read), once per sweep, in the client.

Columns (:data:`AREA_COLUMNS`), the device's datapaths together:

``area_device``
    The device whose pipes are counted (``an2``, ``lance``), empty for software-only points.
``area_pipe_lists``
    Its datapaths' pipe lists, ``;``-separated, pipes by name (``cksum;cksum``).
``area_cells``, ``area_ffs``
    Yosys's generic cells (flip-flops included) and flip-flops, summed over the datapaths.
``area_luts``
    iCE40 4-input LUTs (``SB_LUT4``), summed: the area ``serveros plot --pareto area`` uses.
``fmax_mhz``
    The clock ceiling: the slowest datapath's nextpnr-ice40 maximum frequency on an iCE40
    HX8K (empty when nextpnr is not installed).

A software-only point has ``0`` extra cells, flip-flops and LUTs (its card is the same card,
with no pipes: no area beyond the paper's hardware) and an empty ``fmax_mhz``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["AREA_COLUMNS", "DEVICE_PIPE_LISTS", "NETWORK_DEVICES", "device_pipe_lists",
           "hardware_device", "synthesize_lists", "area_of", "add_area"]

AREA_COLUMNS = ("area_device", "area_pipe_lists", "area_cells", "area_ffs", "area_luts",
                "fmax_mhz")
#: The pipe lists (standard pipe names, :func:`serveros.synth.parse_pipe_list`) of a device's
#: datapaths where the device package does not list them itself (:func:`device_pipe_lists`):
#: the LANCE buffer-port block runs one pipe list, the checksum Cheetah's pipes need.
DEVICE_PIPE_LISTS = {"lance": ("cksum",)}
#: The card of each network that has hardware pipes (None: the card binds none).
NETWORK_DEVICES = {"an2": "an2", "ethernet": None}
_ZERO = {"area_device": "", "area_pipe_lists": "", "area_cells": 0, "area_ffs": 0,
         "area_luts": 0, "fmax_mhz": None}


def device_pipe_lists(device: str) -> tuple[tuple, ...]:
    """The pipe lists (tuples of :class:`hw.ilp.registers.Pipe`) of ``device``'s hardware
    datapaths: the AN2 card's ``TX_PIPES`` and ``RX_PIPES`` (:mod:`hw.an2.pipes`), else
    :data:`DEVICE_PIPE_LISTS`.

    Raises
    ------
    ValueError
        For a device with no hardware pipes known.
    """
    if device == "an2":
        from hw.an2.pipes import RX_PIPES, TX_PIPES
        return (tuple(TX_PIPES), tuple(RX_PIPES))
    if device not in DEVICE_PIPE_LISTS:
        raise ValueError(f"no hardware pipes known for device {device!r} (known: an2, "
                         f"{', '.join(DEVICE_PIPE_LISTS)})")
    from ..synth import parse_pipe_list
    return tuple(tuple(parse_pipe_list(text)) for text in DEVICE_PIPE_LISTS[device])


def _hw_server(server) -> bool:
    """Whether ``server`` is a Cheetah variant with the ``hwilp`` switch on
    (:func:`sw.cheetah.config.variant`: ``cheetah@+hwilp``, ``cheetah@no-ash``, ...)."""
    if not isinstance(server, str) or not server.startswith("cheetah@"):
        return False
    from sw.cheetah.config import variant
    return variant(server.split("@", 1)[1]).hwilp


def hardware_device(row: dict) -> str | None:
    """The device whose hardware pipes ``row``'s point uses (see the module's docstring), or
    None for a software-only point.

    Raises
    ------
    ValueError
        For a ``pipes`` value other than ``sw`` and ``hw``, or a network with no card known.
    """
    pipes = row.get("pipes")
    if pipes not in (None, "none", "sw", "hw"):
        raise ValueError(f"pipes must be 'none', 'sw' or 'hw', not {pipes!r}")
    # A sweep's pipes set Cheetah's ilp and hwilp switches (paper.PIPES): only "hw" is the
    # card's; without pipes the server's name says.
    if pipes in ("none", "sw") or (pipes is None and not _hw_server(row.get("server"))):
        return None
    network = row.get("network") or "ethernet"
    if network not in NETWORK_DEVICES:
        raise ValueError(f"no card known for network {network!r} (known: "
                         f"{', '.join(NETWORK_DEVICES)})")
    if network == "ethernet" and row.get("lance_block") is True:
        return "lance"
    return NETWORK_DEVICES[network]


def synthesize_lists(lists: Sequence[Sequence]) -> list:
    """:func:`hw.ilp.synth.synthesize` of each pipe list (cached under build/synth/ilp/)."""
    from hw.ilp.synth import synthesize
    return [synthesize(list(pl)) for pl in lists]


def area_of(lists: Sequence[Sequence], *, figures: Callable[[list], list]) -> dict:
    """The area columns of the datapaths ``lists`` (sequences of pipes), from ``figures``
    (:func:`synthesize_lists` or a stand-in returning, per list, an object with ``cells``,
    ``flip_flops``, ``ice40_luts`` and ``clock_mhz``)."""
    got = figures(list(lists))
    clocks = [f.clock_mhz for f in got]
    return {"area_pipe_lists": ";".join(",".join(p.name for p in pl) for pl in lists),
            "area_cells": sum(f.cells for f in got),
            "area_ffs": sum(f.flip_flops for f in got),
            "area_luts": sum(f.ice40_luts for f in got),
            "fmax_mhz": None if None in clocks else min(clocks)}


def add_area(rows: Sequence[dict], *, figures: Callable[[list], list] | None = None
             ) -> list[dict]:
    """``rows`` with the :data:`AREA_COLUMNS` added (new dicts; each device synthesized once);
    a row that has ``area_luts`` already is kept as it is.

    Parameters
    ----------
    figures : callable, optional
        Pipe lists to synthesis figures (keyword-only; default :func:`synthesize_lists`,
        which needs the pyosys wheel).

    Raises
    ------
    ValueError
        From :func:`hardware_device` for a bad row.
    """
    by_device: dict[str, dict] = {}
    out = []
    for r in rows:
        if "area_luts" in r:
            out.append(r)
            continue
        device = hardware_device(r)
        if device is None:
            out.append({**r, **_ZERO})
            continue
        if device not in by_device:
            if figures is None:
                figures = synthesize_lists
            by_device[device] = {"area_device": device,
                                 **area_of(device_pipe_lists(device), figures=figures)}
        out.append({**r, **by_device[device]})
    return out
