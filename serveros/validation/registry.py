"""The benchmarks of ``serveros validate``, by the anchor rows they measure."""
from __future__ import annotations

import importlib
from typing import Callable

from .anchors import Anchor

#: ``bench(rows, seed) -> {row id: simulated value in the row's unit}``; ``rows`` holds the
#: anchors of the ids the benchmark registered for (the platform to run on is ``row.platform``).
Bench = Callable[[dict[str, Anchor], int], dict[str, float]]

_BENCHES: dict[str, Bench] = {}

#: The modules that hold benchmarks (imported on first use, so the command starts fast).
MODULES = ("ultrix", "memory", "aegis", "clients")


def benchmark(*row_ids: str) -> Callable[[Bench], Bench]:
    """Register ``fn`` as the benchmark of ``row_ids`` (each id at most one benchmark).

    Raises
    ------
    ValueError
        For no ids, or an id another benchmark already measures.
    """
    if not row_ids:
        raise ValueError("a benchmark must name the anchor rows it measures")

    def register(fn: Bench) -> Bench:
        for rid in row_ids:
            if rid in _BENCHES and _BENCHES[rid] is not fn:
                raise ValueError(f"anchor row {rid} already has a benchmark "
                                 f"({_BENCHES[rid].__module__}.{_BENCHES[rid].__name__})")
            _BENCHES[rid] = fn
        fn.row_ids = row_ids          # type: ignore[attr-defined]
        return fn
    return register


def benchmarks() -> dict[str, Bench]:
    """Row id -> its benchmark, for every benchmark module present."""
    for name in MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise
    return dict(_BENCHES)
