"""The software's own cost tables, for ``serveros profiles``: what the application and the
kernel paths charge beyond a platform profile's rows, each with its source.

- Ultrix's kernel paths (:class:`sw.ultrix.UltrixCosts`): cycles of 4.3BSD code paths; the
  source of each field is its entry in the class docstring's ``Attributes`` section;
- Cheetah's own work (:data:`sw.cheetah.APP_COSTS`): instruction counts with their reasoning;
- the library OS's TCP/IP stack (:class:`sw.libos.net.StackCosts`): the rows of the Aegis
  profile it charges per packet and per PCB examined;
- a client machine's BSD kernel paths (:func:`sw.clients.bsd.client_costs`: Ultrix's
  instruction counts at the client profile's CPI) and its Ethernet card's driver
  (:data:`sim.platforms.clients.CLIENT_NICS`).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass

from sim.platforms.base import Cost, Platform

__all__ = ["CostTable", "software_tables", "docstring_attributes"]

#: ``(name, value, unit, source)``
Row = tuple[str, float, str, str]


@dataclass(frozen=True)
class CostTable:
    """One software cost table: a title and its rows."""

    title: str
    rows: list[Row]


def docstring_attributes(cls: type) -> dict[str, str]:
    """The ``Attributes`` section of a numpydoc class docstring: name -> its description on
    one line (for a dataclass whose fields are documented there, not in :class:`Cost` s)."""
    doc = inspect.getdoc(cls) or ""
    m = re.search(r"^Attributes\n-+\n(.*?)(?:^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    if not m:
        return {}
    out: dict[str, str] = {}
    name = None
    for line in m.group(1).splitlines():
        head = re.match(r"^([A-Za-z_]\w*)(?:\s*:.*)?$", line)
        if head:
            name = head.group(1)
            out[name] = ""
        elif name and line.strip():
            out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _cost_rows(obj) -> list[Row]:
    """The rows of the :class:`Cost` fields of the dataclass instance ``obj``, in field order."""
    return [(f.name, c.value, c.unit, c.source) for f in dataclasses.fields(obj)
            if isinstance(c := getattr(obj, f.name), Cost)]


def _ultrix_rows(costs, scale_note: str = "") -> list[Row]:
    """The fields of an :class:`~sw.ultrix.UltrixCosts` with the reasoning of its docstring."""
    from sw.ultrix import UltrixCosts

    why = docstring_attributes(UltrixCosts)
    rows = []
    for f in dataclasses.fields(costs):
        value = getattr(costs, f.name)
        if isinstance(value, Cost):
            rows.append((f.name, value.value, value.unit, value.source))
        elif isinstance(value, (int, float)):
            # A field named *_instructions is a count that cpu.path runs at the profile's own
            # CPI (sw.clients.bsd.client_costs leaves it unscaled); the others are cycles.
            counted = f.name.endswith("_instructions")
            rows.append((f.name, float(value), "instructions" if counted else "cycles",
                         f"estimate: {why.get(f.name) or 'no reasoning given in UltrixCosts'}"
                         f"{'' if counted else scale_note}"))
    return rows


def _ultrix_table() -> CostTable:
    from sw.ultrix import UltrixCosts

    return CostTable("Ultrix kernel paths beyond the profile (sw.ultrix.UltrixCosts)",
                     _ultrix_rows(UltrixCosts()))


def _client_tables(p: Platform) -> list[CostTable]:
    from sim.platforms.clients import CLIENT_NICS
    from sw.clients.bsd import ULTRIX_COSTS_CPI, client_costs

    scale = float(p.kernel_cpi) / ULTRIX_COSTS_CPI
    tables = [CostTable(f"BSD kernel paths on {p.name} (sw.clients.bsd.client_costs)",
                        _ultrix_rows(client_costs(p), f" (Ultrix's count x {scale:.3g}: this "
                                     f"CPU's kernel_cpi over the 3MIN's)"))]
    nic = CLIENT_NICS.get(p.name)
    if nic is not None:
        rows = _cost_rows(nic)
        rows.append(("copies", float(nic.copies), "bool",
                     "the driver copies each frame between the card and the mbufs"
                     if nic.copies else "the card reaches the mbufs by DMA"))
        tables.append(CostTable(f"Ethernet driver of {p.name}: {nic.card}", rows))
    return tables


def _cheetah_table() -> CostTable:
    from sw.cheetah import APP_COSTS

    return CostTable("Cheetah's own work per request (sw.cheetah.APP_COSTS; cycles = "
                     "instructions x the profile's kernel_cpi)",
                     [(n, c.value, c.unit, c.source) for n, c in APP_COSTS.items()])


def _stack_table(p: Platform) -> CostTable:
    from sw.libos.net import StackCosts

    return CostTable(f"library OS TCP/IP stack (sw.libos.net.StackCosts from {p.name})",
                     _cost_rows(StackCosts.from_profile(p)))


def software_tables(p: Platform) -> list[CostTable]:
    """The software cost tables that run on profile ``p``: Ultrix's kernel paths on an Ultrix
    profile; Cheetah's work and the library stack's on an Aegis one; the BSD kernel's paths
    and the Ethernet driver's costs on a client profile; none otherwise."""
    os_name = p.os.lower()
    if os_name.startswith("ultrix"):
        return [_ultrix_table()]
    if os_name.startswith("aegis"):
        return [_cheetah_table(), _stack_table(p)]
    if p.name.startswith("client-"):
        return _client_tables(p)
    return []
