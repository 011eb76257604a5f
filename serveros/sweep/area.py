"""Hardware area of a sweep's points: the Yosys figures of the hardware ILP pipes a point uses.

A point uses hardware pipes when its ``pipes`` parameter is ``hw`` or its server is a Cheetah
with the ``hwilp`` switch (``cheetah@+hwilp``, ``cheetah@no-ash``, ...), over a card that has pipes: the AN2 card over
``an2`` (its DMA path's pipes, issue 17). Over ``ethernet`` the LANCE card binds no pipes
(``sw.cheetah.config``: Cheetah then does what ``ilp`` does), so such a point adds no area,
unless its row says the LANCE card's buffer-port block is fitted (a true ``lance_block``
column). Each device holds one pipe datapath per direction
(:data:`DEVICE_PIPE_LISTS`, or the device package's own ``HW_PIPE_LISTS`` in
``hw/<device>/registers.py`` when it declares one), each synthesized by
:func:`hw.ilp.synth.synthesize` (cached by design under ``build/synth/ilp/``; the first
synthesis of a list takes seconds, later ones are a file read), once per sweep, in the
client.

Columns (:data:`AREA_COLUMNS`), the device's datapaths together:

``area_device``
    The device whose pipes are counted (``an2``, ``lance``), empty for software-only points.
``area_pipe_lists``
    Its datapaths' pipe lists, ``;``-separated (``cksum;cksum,bswap``).
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

import importlib
from collections.abc import Callable, Sequence

__all__ = ["AREA_COLUMNS", "DEVICE_PIPE_LISTS", "NETWORK_DEVICES", "device_pipe_lists",
           "hardware_device", "area_of", "add_area"]

AREA_COLUMNS = ("area_device", "area_pipe_lists", "area_cells", "area_ffs", "area_luts",
                "fmax_mhz")
#: The pipe lists of each device's hardware datapaths (one per direction), as
#: :func:`serveros.synth.parse_pipe_list` reads them. AN2: transmit sums the PDU as it is
#: fetched (``cksum``); receive sums it and swaps its bytes on the way into memory
#: (``cksum,bswap``: a VC's swap is one of none, halfword or word; the word swap is the
#: datapath's widest, and a swap is wiring plus a select). LANCE buffer-port block: the words
#: the CPU writes into or reads from the card's buffer are summed as they pass (``cksum``
#: each way).
DEVICE_PIPE_LISTS = {"an2": ("cksum", "cksum,bswap"), "lance": ("cksum", "cksum")}
#: The card of each network that has hardware pipes (None: the card binds none).
NETWORK_DEVICES = {"an2": "an2", "ethernet": None}
_ZERO = {"area_device": "", "area_pipe_lists": "", "area_cells": 0, "area_ffs": 0,
         "area_luts": 0, "fmax_mhz": None}


def device_pipe_lists(device: str) -> tuple[str, ...]:
    """The pipe lists of ``device``'s hardware datapaths: ``HW_PIPE_LISTS`` of
    ``hw.<device>.registers`` if it declares one, else :data:`DEVICE_PIPE_LISTS`.

    Raises
    ------
    ValueError
        For a device with no hardware pipes known.
    """
    try:
        own = getattr(importlib.import_module(f"hw.{device}.registers"), "HW_PIPE_LISTS", None)
    except ImportError:
        own = None
    if own is not None:
        return tuple(own)
    if device not in DEVICE_PIPE_LISTS:
        raise ValueError(f"no hardware pipes known for device {device!r} (known: "
                         f"{', '.join(DEVICE_PIPE_LISTS)})")
    return DEVICE_PIPE_LISTS[device]


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


def area_of(lists: Sequence[str], *, figures: Callable[[Sequence[str]], list]) -> dict:
    """The area columns of the datapaths ``lists`` (pipe-list strings), from ``figures``
    (:func:`serveros.synth.synth_figures` or a stand-in returning objects with ``cells``,
    ``flip_flops``, ``ice40_luts`` and ``clock_mhz``)."""
    got = figures(list(lists))
    clocks = [f.clock_mhz for f in got]
    return {"area_pipe_lists": ";".join(lists),
            "area_cells": sum(f.cells for f in got),
            "area_ffs": sum(f.flip_flops for f in got),
            "area_luts": sum(f.ice40_luts for f in got),
            "fmax_mhz": None if None in clocks else min(clocks)}


def add_area(rows: Sequence[dict], *, figures: Callable[[Sequence[str]], list] | None = None
             ) -> list[dict]:
    """``rows`` with the :data:`AREA_COLUMNS` added (new dicts; each device synthesized once);
    a row that has ``area_luts`` already is kept as it is.

    Parameters
    ----------
    figures : callable, optional
        Pipe lists to synthesis figures (keyword-only; default
        :func:`serveros.synth.synth_figures`, which needs the pyosys wheel).

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
                from ..synth import synth_figures as figures
            by_device[device] = {"area_device": device,
                                 **area_of(device_pipe_lists(device), figures=figures)}
        out.append({**r, **by_device[device]})
    return out
