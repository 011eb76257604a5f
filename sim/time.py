"""Simulated time: one integer time base, in picoseconds, for every part of serveros.

Everything that happens in a simulation (software threads, device models, testbench stimulus)
is an ``async`` coroutine scheduled by :class:`sim.kernel.Kernel`. This module holds the units
and the small helpers that convert between them; integer picoseconds are exact for every clock
in the system (25 MHz CPU = 40 000 ps, 10 Mbit/s bit = 100 000 ps, 12.5 MHz TURBOchannel =
80 000 ps), so no rounding ever makes two runs differ.
"""
from __future__ import annotations

from dataclasses import dataclass

PS = 1
NS = 1_000 * PS
US = 1_000 * NS
MS = 1_000 * US
S = 1_000 * MS


def ps(value: float, unit: int = PS) -> int:
    """``value`` in ``unit`` (``NS``, ``US``, ...) as an integer number of picoseconds.

    Raises ``ValueError`` when the result is not a whole number of picoseconds, so that no
    time ever silently rounds.
    """
    exact = value * unit
    whole = round(exact)
    if abs(exact - whole) > 1e-6:
        raise ValueError(f"{value!r} x {unit} ps is not a whole number of picoseconds")
    return int(whole)


def to_seconds(t: int) -> float:
    """Picoseconds as (float) seconds, for reports only."""
    return t / S


def fmt(t: int) -> str:
    """A picosecond time in the largest unit that keeps it readable (``'12.5 us'``)."""
    for unit, name in ((S, "s"), (MS, "ms"), (US, "us"), (NS, "ns")):
        if abs(t) >= unit:
            return f"{t / unit:.6g} {name}"
    return f"{t} ps"


@dataclass(frozen=True)
class Clock:
    """A periodic clock: its period in picoseconds and its rising edges at ``k * period``.

    The HDL simulators start every clock with a rising edge at time 0, so cycle ``k`` of a
    clock begins at ``k * period`` on every backend.
    """

    period: int
    name: str = "clk"

    def __post_init__(self) -> None:
        if not isinstance(self.period, int) or self.period <= 0 or self.period % 2:
            raise ValueError(f"clock period must be a positive even number of ps, not {self.period!r}")

    @classmethod
    def from_hz(cls, hz: int, name: str = "clk") -> "Clock":
        if S % hz:
            raise ValueError(f"{hz!r} Hz has no whole-picosecond period")
        return cls(S // hz, name)

    @property
    def hz(self) -> float:
        return S / self.period

    def cycles(self, n: int) -> int:
        """Duration of ``n`` cycles in picoseconds."""
        return n * self.period

    def edge_at_or_after(self, t: int) -> int:
        """The first rising edge at time ``t`` or later."""
        return -(-t // self.period) * self.period

    def edge_after(self, t: int) -> int:
        """The first rising edge strictly after time ``t``."""
        return (t // self.period + 1) * self.period

    def cycle_of(self, t: int) -> int:
        """Index of the cycle running at time ``t``."""
        return t // self.period
