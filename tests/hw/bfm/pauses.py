"""Pauses for the BFMs: pause generators, and waiting for edges without waking every cycle.

A pause generator is any iterator of non-negative ints (cocotbext's convention); the BFMs take
one per stream (DMA wait states, gaps between cells, pauses inside a cell) and draw from it
with :func:`next_pause`. :func:`random_pauses` makes a deterministic random one.
:func:`wait_edges` waits ``n`` rising edges with one timer and one edge trigger
(cocotb's ``ClockCycles`` wakes Python at every edge).
"""
from __future__ import annotations

import random
from typing import Any, Iterator

from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge, Timer

__all__ = ["next_pause", "random_pauses", "wait_edges"]


def random_pauses(seed: int, *, most: int, chance: float = 0.5) -> Iterator[int]:
    """0 with probability ``1 - chance``, otherwise 1 .. ``most``, from
    ``random.Random(seed)`` (the same seed, the same pauses).

    Raises
    ------
    ValueError
        If ``most`` is negative or ``chance`` not in [0, 1].
    """
    if not isinstance(most, int) or isinstance(most, bool) or most < 0:
        raise ValueError(f"most must be an int >= 0, not {most!r}")
    if not 0 <= chance <= 1:
        raise ValueError(f"chance must be in [0, 1], not {chance!r}")
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, most) if most and rng.random() < chance else 0


def next_pause(gen: Iterator[int] | None, what: str) -> int:
    """The next pause of ``gen`` (0 when there is none).

    Raises
    ------
    ValueError
        If the generator gives anything but an int >= 0 (the message names ``what``).
    """
    p = 0 if gen is None else next(gen)
    if not isinstance(p, int) or isinstance(p, bool) or p < 0:
        raise ValueError(f"the {what} generator gave {p!r}, not an int >= 0")
    return p


async def wait_edges(clock: Any, n: int, *, period_ps: int) -> None:
    """Return just after the ``n``-th rising edge of ``clock`` after now (``n`` >= 1; from
    just after an edge, the edge ``n`` cycles later), for a clock whose edges fall on
    multiples of ``period_ps``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, not {n!r}")
    now = round(get_sim_time("ps"))
    if n > 1:                  # to the middle of the cycle before the target edge
        await Timer((now // period_ps + n) * period_ps - period_ps // 2 - now, unit="ps")
    await RisingEdge(clock)
