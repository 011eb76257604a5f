"""``serveros validate``: simulated microbenchmarks against measured operations of the real
machines (the design's VALIDATION.md, copied with sources into ``docs/validation.md`` and
``anchors.toml`` beside this file).

Each anchor row is one measured value (``U3-2``: select() on 10 empty pipes, 91 us on a
DECstation 5000/200). A *benchmark* is real simulated software run on the simulated platform
the row names; it returns the simulated value of each row it covers. :func:`validate` runs the
benchmarks of the rows asked for and compares; :mod:`.report` writes the JSON, CSV and chart.

Benchmarks live in the modules of this package by area and register themselves with
:func:`~serveros.validation.registry.benchmark`::

    @benchmark("U1")
    def getpid(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
        ...                       # build the platform's machine, run a getpid loop
        return {"U1": us_per_call}
"""
from __future__ import annotations

from .anchors import Anchor, AnchorError, load_anchors
from .registry import benchmark, benchmarks
from .run import Result, validate

__all__ = ["Anchor", "AnchorError", "load_anchors", "benchmark", "benchmarks", "Result",
           "validate"]
