"""The hardware of a simulated point: what a trade-off study may vary on the server machine.

A :class:`Hardware` holds a value for each parameter of :data:`HARDWARE_PARAMS` that differs
from today's machine (the paper's DECstation 5000/125 with its PMAD-AA LANCE card); every field
None is today's machine. :func:`apply_hardware` puts it on a run's machine descriptions: the
server (the first machine) gets a derived CPU profile (:mod:`sim.platforms.derived`, named for
what changed, e.g. ``decstation-5000-125-aegis@cpu40MHz``) and its LANCE card the buffer RAM;
the clients are unchanged. Everything is in the descriptions, so a worker process that builds
the machines from them gets the same hardware.

Parameters
----------
========================  ==========================  =========================================
name                      values (default)            what it changes
========================  ==========================  =========================================
``cpu_mhz``               12.5, 16, 20, 25, 31.25,    the server's R3000-class CPU clock; memory
                          40 MHz (25)                 and bus times stay, so each miss, write and
                                                      I/O access costs more cycles at a faster
                                                      clock (:mod:`sim.platforms.derived`)
``mem_cycle_ns``          40 .. 120 ns (80)           the main-memory cycle: a read miss (5
                                                      cycles), a write (3) and DMA bursts
``lance_buffer_kib``      64, 128 KiB (128)           the LANCE card's buffer SRAM and so its
                                                      rings (32 rx + 8 tx or 64 rx + 16 tx)
========================  ==========================  =========================================

The network (Ethernet or AN2) and where the ILP pipes run (software or the card) are not
here: a point's ``network`` and its server's stage carry them. :data:`PLANNED_PARAMS` names the
parameters still to come and why.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Sequence

from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, ring_sizes
from sim.platforms import DECSTATION_5000_125_AEGIS
from sim.platforms.derived import BASES, CPU_HZ_RANGE, MEM_CYCLE_PS_RANGE, derived_name
from sim.time import S

from .machines import MachineSpec

__all__ = ["ParamSpec", "HARDWARE_PARAMS", "PLANNED_PARAMS", "Hardware", "apply_hardware"]


@dataclass(frozen=True)
class ParamSpec:
    """One hardware parameter.

    Attributes
    ----------
    name : str
        Its name (a field of :class:`Hardware`, a key of sweep files and result rows).
    kind : str
        ``"number"`` (an int or a float) or ``"integer"``.
    unit : str
        Its unit (``"MHz"``, ``"ns"``, ``"KiB"``).
    default : int or float
        Today's machine's value.
    changes : str
        What it changes in the simulated machine.
    choices : tuple, optional
        The values allowed, when they are a list.
    range : tuple of two numbers, optional
        The values allowed (inclusive), when they are a range.
    """

    name: str
    kind: str
    unit: str
    default: int | float
    changes: str
    choices: tuple[int | float, ...] | None = None
    range: tuple[int, int] | None = None

    @property
    def allowed(self) -> str:
        """The allowed values, as an error message says them."""
        if self.choices is not None:
            return "one of " + ", ".join(f"{c:g}" for c in self.choices) + f" {self.unit}"
        return f"{self.range[0]:g} .. {self.range[1]:g} {self.unit}"

    def check(self, value: object) -> int | float:
        """``value`` if it is allowed (an integral float as an int: 40.0 is 40).

        Raises
        ------
        ValueError
            Naming the parameter, the value and the allowed values.
        """
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if ok and self.kind == "integer" and isinstance(value, float):
            ok = value.is_integer()
        if ok:
            value = int(value) if float(value).is_integer() else float(value)
            if self.choices is not None:
                ok = value in self.choices
            else:
                ok = self.range[0] <= value <= self.range[1]
        if not ok:
            raise ValueError(f"hardware parameter {self.name}: {value!r} is not allowed "
                             f"({self.allowed})")
        return value


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _cpu_choices() -> tuple[int | float, ...]:
    lo, hi = CPU_HZ_RANGE
    # The R3000 family's clocks in range whose period is a whole number of picoseconds.
    mhz = (12.5, 16, 20, 25, 31.25, 40)
    assert all(lo <= m * 1e6 <= hi and S % int(m * 1_000_000) == 0 for m in mhz)
    return mhz


#: Every hardware parameter by name (see the module docstring's table).
HARDWARE_PARAMS: Mapping[str, ParamSpec] = MappingProxyType({p.name: p for p in (
    ParamSpec("cpu_mhz", "number", "MHz", _number(DECSTATION_5000_125_AEGIS.cpu_hz.value / 1e6),
              "the server's CPU clock (an R3000-class CPU in the DECstation 5000/125's place): "
              "its profile is re-derived (sim.platforms.derived) so memory and bus times stay "
              "and their cycles follow the clock",
              choices=_cpu_choices()),
    ParamSpec("mem_cycle_ns", "integer", "ns", DECSTATION_5000_125_AEGIS.mem_cycle_ps.value // 1000,
              "the server's main-memory cycle: a CPU read miss is 5 of them, a word write 3, a "
              "DMA burst one per word plus its overhead (CALIBRATION.md)",
              range=(MEM_CYCLE_PS_RANGE[0] // 1000, MEM_CYCLE_PS_RANGE[1] // 1000)),
    ParamSpec("lance_buffer_kib", "integer", "KiB", BUFFER_RAM_SIZE_DEFAULT // 1024,
              "the LANCE card's buffer SRAM (PMAD-AA: 128 KiB) and with it the driver's rings "
              "(hw.lance.registers.ring_sizes: 64 KiB holds 32 rx + 8 tx buffers, 128 KiB "
              "64 + 16); Ethernet only",
              choices=(64, 128)),
)})
for _p in HARDWARE_PARAMS.values():            # the defaults are today's machine, and allowed
    _p.check(_p.default)
for _kib in HARDWARE_PARAMS["lance_buffer_kib"].choices:
    ring_sizes(_kib * 1024)                    # the driver defines rings for each size

#: Parameters the issue asks for that are not yet parameters, and why.
PLANNED_PARAMS: Mapping[str, str] = MappingProxyType({
    "dma_burst_words": (
        "the AN2 card's DMA burst: the card moves one cell's or one descriptor's words per "
        "burst (at most 12, far under hw/an2/timing.py DMA_MAX_BURST_WORDS = 64) by design, so "
        "a burst length is no knob until the card can batch cells, in its RTL and its model "
        "together (they must stay equal edge for edge): planned"),
})
#: Point parameters that are hardware but carried elsewhere (sweep files may name them).
_ELSEWHERE = {
    "network": "the point's network (ethernet or an2)",
    "pipes": "the server's stage (Cheetah's hwilp switch puts the ILP pipes in the card)",
}


@dataclass(frozen=True)
class Hardware:
    """The server's hardware where it differs from today's machine (None: today's value).

    A value equal to the default is stored as None, so ``Hardware(cpu_mhz=25) == Hardware()``
    and both name the same point.

    Attributes
    ----------
    cpu_mhz : int or float, optional
        The CPU clock (:data:`HARDWARE_PARAMS`).
    mem_cycle_ns : int, optional
        The main-memory cycle.
    lance_buffer_kib : int, optional
        The LANCE card's buffer SRAM.

    Raises
    ------
    ValueError
        For a value not allowed (the message names the parameter and the allowed values).
    """

    cpu_mhz: int | float | None = None
    mem_cycle_ns: int | None = None
    lance_buffer_kib: int | None = None

    def __post_init__(self) -> None:
        for name, spec in HARDWARE_PARAMS.items():
            value = getattr(self, name)
            if value is not None:
                value = spec.check(value)
                object.__setattr__(self, name, None if value == spec.default else value)

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> "Hardware":
        """The hardware that ``params`` (parameter name -> value) describes.

        Raises
        ------
        ValueError
            For an unknown or planned parameter or a value not allowed (the message names the
            parameter and what is allowed).
        """
        if not isinstance(params, Mapping):
            raise ValueError(f"hardware parameters must be a mapping, not {params!r}")
        for name in params:
            if name in HARDWARE_PARAMS:
                continue
            if name in PLANNED_PARAMS:
                raise ValueError(f"hardware parameter {name} is planned, not yet available: "
                                 f"{PLANNED_PARAMS[name]}")
            if name in _ELSEWHERE:
                raise ValueError(f"{name} is not a parameter of the server's hardware: "
                                 f"{_ELSEWHERE[name]} carries it")
            raise ValueError(f"unknown hardware parameter {name!r} (known: "
                             f"{', '.join(HARDWARE_PARAMS)})")
        return cls(**dict(params))

    def as_params(self) -> dict[str, object]:
        """The parameters that differ from today's machine, in :data:`HARDWARE_PARAMS` order
        (empty for today's machine): for keys and result rows."""
        return {name: getattr(self, name) for name in HARDWARE_PARAMS
                if getattr(self, name) is not None}

    def values(self) -> dict[str, object]:
        """Every parameter's value, today's where not set (for tables with a column each)."""
        return {name: spec.default if getattr(self, name) is None else getattr(self, name)
                for name, spec in HARDWARE_PARAMS.items()}

    def is_default(self) -> bool:
        """True for today's machine."""
        return not self.as_params()

    def profile(self, base: str) -> str:
        """The name of the CPU profile ``base`` (a DECstation 5000/125 profile) becomes.

        Raises
        ------
        ValueError
            If the CPU or memory differ and ``base`` is not a profile they can apply to.
        """
        if self.cpu_mhz is None and self.mem_cycle_ns is None:
            return base
        if base not in BASES:
            raise ValueError(f"hardware parameters cpu_mhz and mem_cycle_ns apply to the "
                             f"DECstation 5000/125 ({', '.join(BASES)}), not to profile "
                             f"{base!r}")
        hz = None if self.cpu_mhz is None else int(round(self.cpu_mhz * 1_000_000))
        mem = None if self.mem_cycle_ns is None else self.mem_cycle_ns * 1000
        return derived_name(base, cpu_hz=hz, mem_cycle_ps=mem)


def apply_hardware(specs: Sequence[MachineSpec], hw: Hardware) -> list[MachineSpec]:
    """``specs`` with ``hw`` applied to the server, ``specs[0]``: its CPU profile derived for
    the clock and memory (:meth:`Hardware.profile`) and its LANCE card's ``ram_bytes``; the
    clients are unchanged. Today's hardware returns the same descriptions.

    Raises
    ------
    ValueError
        For no machines, a ``hw`` that is not a :class:`Hardware`, a server whose profile the
        clock or memory cannot apply to, or a LANCE buffer for a server without a LANCE card.
    """
    if not isinstance(hw, Hardware):
        raise ValueError(f"hw must be a Hardware, not {hw!r}")
    specs = list(specs)
    if not specs or not all(isinstance(s, MachineSpec) for s in specs):
        raise ValueError(f"specs must be MachineSpecs, the server first, not {specs!r}")
    if hw.is_default():
        return specs
    server = specs[0]
    devices = server.devices
    if hw.lance_buffer_kib is not None:
        if not any(d.kind == "lance" for d in devices):
            raise ValueError(f"hardware parameter lance_buffer_kib: server {server.name} has no "
                             f"LANCE card (its devices: "
                             f"{', '.join(d.kind for d in devices) or 'none'})")
        devices = tuple(dataclasses.replace(d, params={**d.params,
                                                       "ram_bytes": hw.lance_buffer_kib * 1024})
                        if d.kind == "lance" else d for d in devices)
    server = dataclasses.replace(server, profile=hw.profile(server.profile), devices=devices)
    return [server, *specs[1:]]
