"""Derived platforms: the DECstation 5000/125's profiles with another CPU clock or memory cycle.

A hardware trade-off study asks what a faster R3000 or a faster main memory buys. A derived
profile is the 5000/125's (:mod:`sim.platforms.decstation`) with its clock and its main-memory
cycle replaced and every row that depends on them re-derived; its name says what changed and
is all it takes to rebuild it, so any process (a sweep's worker) gets the same profile from
the name alone: ``decstation-5000-125-aegis@cpu40MHz``,
``decstation-5000-125-ultrix43@cpu20MHz,mem60ns`` (:func:`derived_name`, :func:`by_name`;
:data:`sim.platforms.PROFILES` looks such names up through :func:`by_name`).

How each row follows the hardware
---------------------------------
Times of the memory and the bus stay times; costs in CPU cycles are split into parts that
scale differently. With ``s`` the memory's time in CPU cycles relative to the 3MIN's (a 400 ns
read miss is 10 cycles at 25 MHz, 16 at 40 MHz; ``s = (mem / 80 ns) x (25 MHz period /
period)``):

* **times in ps**: the main-memory cycle is the parameter; a CPU read miss (5 memory cycles)
  and a word write through the write buffer (3 memory cycles) follow it (CALIBRATION.md counts
  them in memory cycles); DMA bursts stay in memory cycles, so their time follows too. The
  TURBOchannel's programmed-I/O times do not change (its clock is not the CPU's).
* **kernel CPI** (``kernel_cpi``, 2.08 on the 3MIN): *estimate*: one cycle per instruction
  plus the rest as memory stalls (cache misses, write-buffer stalls) that take ``s`` times as
  many cycles: ``1 + 1.083 s``. The 3MIN's derivation folds load-delay slots into the 1.083
  too, so the estimate charges a faster CPU slightly too much.
* **cycle rows**, each a sum of parts (:data:`DECOMPOSITION`, checked to add up to the 3MIN's
  value): ``cycle`` (instruction cycles at one per instruction, from the calibration's own
  derivation: unchanged), ``cpi`` (instructions at the kernel CPI: scaled by the CPI's
  change), ``mem`` (memory stalls: scaled by ``s``), ``miss`` (the stall of a read miss the
  loop's load overlaps by one cycle, ``r - 1``: scaled by its change) and ``copy`` (an
  uncached bcopy: scaled by that row's change). The split of each row is in its 3MIN source.

:mod:`sim.cache` prices software that names its buffers from the ps rows and the cycle, so it
needs nothing here: a faster CPU pays more cycles for each miss of its own.

Limits
------
Only rows of the profile follow the clock. Software that charges its own cycle counts
follows where it prices them at the profile's CPI (:meth:`Platform.instructions`, the Ultrix
kernel's ``costs_at``, the BSD clients' ``client_costs``); two do not yet: NCSA's and Harvest's
per-request ``request_cycles`` (instructions at the 3MIN's CPI, a small part of a request), and
Aegis' time slice (``slice_cycles``: a count of cycles, so a shorter time at a faster clock).
The 5000/200's profile is not a base: its Ultrix rows hold the 3MIN's stalls.
"""
from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Mapping

from ..time import S
from .base import Cost, Platform
from .decstation import DECSTATION_5000_125_AEGIS, DECSTATION_5000_125_ULTRIX43

__all__ = ["BASES", "CPU_HZ_RANGE", "MEM_CYCLE_PS_RANGE", "DECOMPOSITION", "derive",
           "derived_name", "by_name", "is_derived_name", "scales"]

#: The profiles a derived profile may start from: the 5000/125 ("3MIN") under each system
#: (the machines the paper's servers run on; CALIBRATION.md's rows are this machine's).
BASES: dict[str, Platform] = {p.name: p for p in (DECSTATION_5000_125_AEGIS,
                                                   DECSTATION_5000_125_ULTRIX43)}
#: CPU clocks a derived profile may have (Hz, inclusive): DECstations ran the MIPS R2000/R3000
#: family from 12.5 MHz (the 2100's R2000) to 40 MHz (the 5000/240's R3400), the 5000/1xx at
#: 20, 25 and 33 MHz. The period must also be a whole number of picoseconds (12.5, 16, 20, 25,
#: 31.25, 40 MHz: 33.33 MHz has none, 31.25 is the nearest).
CPU_HZ_RANGE = (12_500_000, 40_000_000)
#: Main-memory cycles a derived profile may have (ps, inclusive, whole ns): the 5000/200's
#: 40 ns (its memory on the 25 MHz system clock, an estimate in decstation.py) to 120 ns, the
#: slow end of the period's DRAM systems (the 3MIN's is 80 ns).
MEM_CYCLE_PS_RANGE = (40_000, 120_000)

_SHARED = {
    "copy_uncached_cycles_per_word": {"cycle": 0.375, "mem": 16},   # 10 read miss + 6 write
    "copy_cached_cycles_per_word": {"cycle": 0.375, "mem": 6},      # the write buffer's drain
    "copy_call_cycles": {"cpi": 20},
    "checksum_call_cycles": {"cpi": 30},
    "demux_dpf_cycles": {"cpi": 37.5},
    "demux_mpf_cycles": {"cpi": 875},
    "pcb_lookup_per_entry_cycles": {"cpi": 25, "miss": 18},         # 12 instr., 2 misses
    "tcp_per_packet_cycles": {"cpi": 417},
    "ip_per_packet_cycles": {"cpi": 208},
    "fork_cycles": {"copy": 300_000, "cpi": 20_000},                # 18 k words copied
}
#: Each cycle row of a base profile as parts (see the module docstring), from its source.
DECOMPOSITION: dict[str, dict[str, dict[str, float]]] = {
    DECSTATION_5000_125_AEGIS.name: {
        **_SHARED,
        "checksum_uncached_cycles_per_word": {"cycle": 3.25, "miss": 9},
        "checksum_cached_cycles_per_word": {"cycle": 3.25},
        "syscall_cycles": {"cpi": 80},
        "context_switch_cycles": {"cpi": 125},
        "exception_dispatch_cycles": {"cpi": 37.5},
        "interrupt_dispatch_cycles": {"cpi": 37.5},
        "select_base_cycles": {"cpi": 208},
        "select_per_fd_cycles": {"cpi": 52},
    },
    DECSTATION_5000_125_ULTRIX43.name: {
        **_SHARED,
        "checksum_uncached_cycles_per_word": {"cycle": 8.125, "miss": 9},
        "checksum_cached_cycles_per_word": {"cycle": 8.125},
        # 181 warm instructions; 65 write-buffer stalls and a 15-cycle drain.
        "syscall_cycles": {"cycle": 181, "mem": 80},
        # 12 words saved (72) and 12 of a cold PCB loaded (120); 250 instructions at CPI.
        "context_switch_cycles": {"mem": 192, "cpi": 520},
        "exception_dispatch_cycles": {"cpi": 3250},
        # The 40-word exception frame through the write buffer; 120 instructions at CPI.
        "interrupt_dispatch_cycles": {"mem": 240, "cpi": 250},
        "select_base_cycles": {"cycle": 540, "mem": 75},
        "select_per_fd_cycles": {"cpi": 125},
    },
}
_UNITS = ("cycle", "cpi", "mem", "miss", "copy")
_NAME = re.compile(r"(?P<base>[a-z0-9-]+)@(?P<parts>[A-Za-z0-9.,]+)")
_PART = re.compile(r"(?:cpu(?P<mhz>\d+(?:\.\d+)?)MHz|mem(?P<ns>\d+)ns)")


def _check_base(base: str) -> Platform:
    if base not in BASES:
        raise ValueError(f"a derived profile starts from one of {', '.join(BASES)}, "
                         f"not {base!r}")
    return BASES[base]


def _check(cpu_hz, mem_cycle_ps) -> None:
    lo, hi = CPU_HZ_RANGE
    if cpu_hz is not None and (isinstance(cpu_hz, bool) or not isinstance(cpu_hz, int)
                               or not lo <= cpu_hz <= hi or S % cpu_hz):
        raise ValueError(f"cpu_hz must be a whole number of Hz in {lo:_} .. {hi:_} whose "
                         f"period is a whole number of picoseconds, not {cpu_hz!r}")
    lo, hi = MEM_CYCLE_PS_RANGE
    if mem_cycle_ps is not None and (isinstance(mem_cycle_ps, bool)
                                     or not isinstance(mem_cycle_ps, int)
                                     or not lo <= mem_cycle_ps <= hi or mem_cycle_ps % 1000):
        raise ValueError(f"mem_cycle_ps must be a whole number of ns in {lo:_} .. {hi:_} ps, "
                         f"not {mem_cycle_ps!r}")


def _mhz(hz: int) -> str:
    text = format(Decimal(hz) / 1_000_000, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def derived_name(base: str, *, cpu_hz: int | None = None, mem_cycle_ps: int | None = None) -> str:
    """The name of ``base`` with ``cpu_hz`` and ``mem_cycle_ps`` (None: the base's): the base's
    own name when neither differs, else ``base@cpu<MHz>MHz,mem<ns>ns`` with only the parts
    that differ.

    Raises
    ------
    ValueError
        For a base that is not in :data:`BASES` or a value out of range.
    """
    p = _check_base(base)
    _check(cpu_hz, mem_cycle_ps)
    parts = []
    if cpu_hz is not None and cpu_hz != p.cpu_hz.value:
        parts.append(f"cpu{_mhz(cpu_hz)}MHz")
    if mem_cycle_ps is not None and mem_cycle_ps != p.mem_cycle_ps.value:
        parts.append(f"mem{mem_cycle_ps // 1000}ns")
    return f"{base}@{','.join(parts)}" if parts else base


def is_derived_name(name: object) -> bool:
    """True when ``name`` has the form of a derived profile's name (``base@...``)."""
    return isinstance(name, str) and "@" in name


def _parse(name: str) -> tuple[str, int | None, int | None]:
    m = _NAME.fullmatch(name)
    if not m:
        raise ValueError(f"{name!r} is not a derived profile name (base@cpu<MHz>MHz,mem<ns>ns)")
    hz = ns = None
    for part in m["parts"].split(","):
        pm = _PART.fullmatch(part)
        if not pm:
            raise ValueError(f"{name!r}: unknown part {part!r} (cpu<MHz>MHz or mem<ns>ns)")
        if pm["mhz"] is not None:
            try:
                exact = Decimal(pm["mhz"]) * 1_000_000
            except InvalidOperation:                       # pragma: no cover (regex)
                raise ValueError(f"{name!r}: bad clock {part!r}") from None
            if exact != exact.to_integral_value():
                raise ValueError(f"{name!r}: {part!r} is not a whole number of Hz")
            hz = int(exact)
        else:
            ns = int(pm["ns"])
    return m["base"], hz, None if ns is None else ns * 1000


@lru_cache(maxsize=None)
def by_name(name: str) -> Platform:
    """The derived profile named ``name`` (as :func:`derived_name` writes it).

    Raises
    ------
    ValueError
        For a name not of that form, not in its canonical form (parts in order, only parts
        that differ from the base, no trailing zeros), or with a value out of range.
    """
    base, hz, mem = _parse(name)
    canonical = derived_name(base, cpu_hz=hz, mem_cycle_ps=mem)
    if canonical != name:
        raise ValueError(f"{name!r} is not canonical: the profile is {canonical!r}")
    return derive(base, cpu_hz=hz, mem_cycle_ps=mem)


def scales(base: Platform, cpu_hz: int, mem_cycle_ps: int) -> dict[str, float]:
    """The factor of each part of a cycle row (:data:`DECOMPOSITION`) on a machine with
    ``cpu_hz`` and ``mem_cycle_ps`` against ``base`` (all 1 for the base's own values)."""
    cycle_ps = S // cpu_hz
    s = (mem_cycle_ps / base.mem_cycle_ps.value) * (base.cycle_ps / cycle_ps)
    cpi0 = base.kernel_cpi.value
    miss0 = base.word_read_miss_ps.value / base.cycle_ps
    copy0 = DECOMPOSITION[base.name]["copy_uncached_cycles_per_word"]
    copy_new = copy0["cycle"] + copy0["mem"] * s
    return {"cycle": 1.0, "cpi": (1 + (cpi0 - 1) * s) / cpi0, "mem": s,
            "miss": (miss0 * s - 1) / (miss0 - 1),
            "copy": copy_new / base.copy_uncached_cycles_per_word.value}


def _row(base: Platform, field: str, parts: Mapping[str, float], k: Mapping[str, float],
         what: str) -> Cost:
    old = getattr(base, field)
    if set(parts) == {"cycle"}:                  # the CPU's own cycles: the row as it is
        return old
    value = sum(cycles * k[unit] for unit, cycles in parts.items())
    split = " + ".join(f"{cycles:g} {unit}" for unit, cycles in parts.items())
    return Cost(value, old.unit, (
        f"estimate (derived for {what}; sim/platforms/derived.py): the 3MIN's {old.value:g} as "
        f"{split}, each part scaled by the new clock and memory. Base row: {old.source}"))


def derive(base: str, *, cpu_hz: int | None = None, mem_cycle_ps: int | None = None) -> Platform:
    """``base`` (a name in :data:`BASES`) with a CPU clock of ``cpu_hz`` and a main-memory
    cycle of ``mem_cycle_ps`` (None: the base's), every dependent row re-derived (see the
    module docstring). With neither differing it is the base profile itself.

    Raises
    ------
    ValueError
        For a base that is not in :data:`BASES` or a value out of range.
    """
    name = derived_name(base, cpu_hz=cpu_hz, mem_cycle_ps=mem_cycle_ps)
    p = BASES[base]
    if name == base:
        return p
    hz = int(p.cpu_hz.value) if cpu_hz is None else cpu_hz
    mem = int(p.mem_cycle_ps.value) if mem_cycle_ps is None else mem_cycle_ps
    what = f"{_mhz(hz)} MHz, {mem // 1000} ns memory"
    k = scales(p, hz, mem)
    rows = {field: _row(p, field, parts, k, what)
            for field, parts in DECOMPOSITION[base].items()}
    issue = p.memory.copy_issue_cycles_per_word.value
    for field in ("copy_uncached_cycles_per_word", "copy_cached_cycles_per_word"):
        if rows[field].value < issue:          # a fast memory: the loop's own cycles bound it
            rows[field] = Cost(issue, rows[field].unit, (
                f"{rows[field].source}; raised to the bcopy loop's issue cycles per word "
                f"({issue:g}, memory.copy_issue_cycles_per_word), its floor"))
    cpi0 = p.kernel_cpi.value
    rows["kernel_cpi"] = Cost(cpi0 * k["cpi"], "CPI", (
        f"estimate (derived for {what}; sim/platforms/derived.py): one cycle per instruction "
        f"plus the 3MIN's {cpi0 - 1:.4f} stall cycles per instruction taken as memory stalls "
        f"(load-delay slots folded in), scaled by the memory's time in CPU cycles "
        f"({k['mem']:.4f}x). Base row: {p.kernel_cpi.source}"))
    if hz != p.cpu_hz.value:
        rows["cpu_hz"] = Cost(hz, "Hz", (
            f"estimate (derived): a {_mhz(hz)} MHz R3000-class CPU in the 5000/125's place. "
            f"Base row: {p.cpu_hz.source}"))
    if mem != p.mem_cycle_ps.value:
        rows["mem_cycle_ps"] = Cost(mem, "ps", (
            f"estimate (derived): a {mem // 1000} ns main-memory cycle in the 3MIN's 80 ns "
            f"place. Base row: {p.mem_cycle_ps.source}"))
        for field in ("word_read_miss_ps", "word_write_ps"):
            old = getattr(p, field)
            cycles = int(old.value) // int(p.mem_cycle_ps.value)     # 5 and 3 memory cycles
            rows[field] = Cost(cycles * mem, "ps", (
                f"estimate (derived): {cycles} memory cycles of {mem // 1000} ns. "
                f"Base row: {old.source}"))
    return replace(p, name=name, description=(
        f"{p.machine} derived: {_mhz(hz)} MHz R3000-class CPU, {mem // 1000} ns memory, "
        f"otherwise as {p.name}"), **rows)
