"""The sweep file (TOML): which parameters take which values, and how to combine them.

::

    [sweep]
    name = "hwsw"             # optional: a title for tables and plots
    mode = "grid"             # grid (every combination), random or lhs (Latin hypercube)
    samples = 12              # random and lhs: how many points
    seed = 1                  # random and lhs: the sampling seed

    [hardware]
    network = ["ethernet", "an2"]   # the LANCE Ethernet (programmed I/O) or the AN2 ATM card (DMA)
    pipes = ["sw", "hw"]            # Cheetah's ILP pipes: none, sw (the CPU's), hw (the card's)
    cpu_mhz = [25, 40]              # any parameter of serveros.hardware.HARDWARE_PARAMS

    [software]
    server = ["cheetah", "harvest", "cheetah@+ash"]   # any `serveros run --servers` name

    [workload]
    doc_bytes = [100, 10240]  # the document each client fetches
    clients = 4               # client machines
    requests = 50             # requests per client
    seed = [1, 2]             # the simulation's seed (the run's --seed)
    client = "pentium"        # the client machines: pentium or sparc

Every parameter takes one value or a list of them; a parameter not given takes its default
(:data:`PARAMETERS`: ``serveros run``'s, and for the hardware today's machine). ``pipes``
applies to Cheetah only: another server runs once, without pipes, whatever ``pipes`` lists.

A sweep that is not one product (the paper's figures a and b: five documents at 4 clients,
then 1 to 6 clients at 100 bytes) is a union of grids: each ``[[part]]`` table sets some
parameters by their bare names, in place of the sections' values, and the sweep's points are
every part's grid, a point in two parts run once (``mode = "grid"`` only)::

    [software]
    server = ["cheetah", "harvest", "ncsa"]

    [[part]]                  # figure a
    doc_bytes = [0, 10, 100, 1024, 10240]
    clients = 4

    [[part]]                  # figure b
    doc_bytes = 100
    clients = [1, 2, 3, 4, 5, 6]

A bad file is refused with :class:`SweepError`, whose message starts ``FILE:LINE:``: bad TOML
(tomllib's position), an unknown section or parameter, a value of the wrong type or out of
range, a list naming a value twice, an empty list (an empty product), ``samples`` with
``mode = "grid"`` or missing without it. tomllib keeps no positions for values, so the line of
a parameter is found in the text (:func:`key_lines`: the line of ``key =`` under its
``[section]`` header, or of ``section.key =``); tomlkit keeps positions but adds a dependency
for just this, and the files are simple (tables of ``key = value``).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["SweepError", "Axis", "Sweep", "Param", "PARAMETERS", "MODES", "AXIS_ORDER", "PART",
           "MAX_DOC_BYTES", "load_sweep", "parse_sweep", "key_lines", "hardware_api",
           "axis_order"]

#: How the values combine: every combination, a seeded random sample of them, or a seeded
#: Latin-hypercube sample (each parameter's values evenly covered).
MODES = ("grid", "random", "lhs")
#: The largest document a sweep may ask for (16 MiB: each worker builds the documents' image
#: in memory and on its temporary disk).
MAX_DOC_BYTES = 16 * 1024 * 1024


class SweepError(ValueError):
    """A bad sweep file: ``FILE:LINE: message``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class Param:
    """A sweep parameter: ``section.name``, its default and its check (raises ValueError
    with a message naming the problem)."""

    section: str
    name: str
    default: object
    check: Callable[[object], None]
    doc: str


def _int(lo: int, hi: int | None = None) -> Callable[[object], None]:
    def check(v: object) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be an integer, not {v!r}")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be {lo}..{hi}, not {v}" if hi is not None
                             else f"must be >= {lo}, not {v}")
    return check


def _choice(choices: Callable[[], tuple[str, ...]]) -> Callable[[object], None]:
    def check(v: object) -> None:
        if v not in choices():
            raise ValueError(f"must be one of {', '.join(choices())}, not {v!r}")
    return check


def _server(v: object) -> None:
    from ..experiments import paper
    if not isinstance(v, str):
        raise ValueError(f"must be a server name (a string), not {v!r}")
    try:
        paper.parse_servers([v])
        paper.server_factory(v)
    except paper.ServerUnavailable as e:
        raise ValueError(str(e)) from None


def _networks() -> tuple[str, ...]:
    from ..experiments import figure_c
    return tuple(figure_c.NETWORKS)


def _pipes() -> tuple[str, ...]:
    from ..experiments import paper
    return tuple(paper.PIPES)


def _client_kinds() -> tuple[str, ...]:
    from ..machines import CLIENT_KINDS
    return tuple(CLIENT_KINDS)


def _text(v: object) -> None:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"must be a non-empty string, not {v!r}")


#: The parameters besides the hardware's (whose names and checks are
#: :data:`serveros.hardware.HARDWARE_PARAMS`'), by section and name.
PARAMETERS: dict[tuple[str, str], Param] = {(p.section, p.name): p for p in (
    Param("sweep", "name", None, _text, "a title for the sweep's tables and plots"),
    Param("sweep", "mode", "grid", _choice(lambda: MODES), "grid, random or lhs"),
    Param("sweep", "samples", None, _int(1), "points drawn (random and lhs only)"),
    Param("sweep", "seed", 1, _int(0), "the sampling seed (random and lhs)"),
    Param("hardware", "network", "ethernet", _choice(_networks),
          "ethernet (the LANCE card) or an2 (the AN2 ATM card)"),
    Param("hardware", "pipes", None, _choice(_pipes),
          "Cheetah's ILP pipes: none, sw (the CPU's fused loops) or hw (the card's)"),
    Param("software", "server", "cheetah", _server,
          "a `serveros run --servers` name: cheetah, harvest, ncsa, cheetah@STAGE ..."),
    Param("workload", "doc_bytes", 100, _int(0, MAX_DOC_BYTES), "the document's bytes"),
    Param("workload", "clients", 4, _int(1, 200), "client machines"),
    Param("workload", "requests", 1000, _int(1), "requests per client"),
    Param("workload", "seed", 1, _int(0), "the simulation's seed"),
    Param("workload", "client", "pentium", _choice(_client_kinds),
          "the client machines: pentium or sparc"),
)}
#: The sections with parameters, and the order of a sweep's axes (the grid's nesting,
#: outermost first; the hardware's own parameters follow ``pipes``).
SECTIONS = ("sweep", "hardware", "software", "workload")
#: The array of tables whose each entry is a grid of its own (see the module's docstring).
PART = "part"
AXIS_ORDER = (("software", "server"), ("hardware", "network"), ("hardware", "pipes"),
              ("workload", "doc_bytes"), ("workload", "clients"), ("workload", "requests"),
              ("workload", "seed"), ("workload", "client"))


def hardware_api():
    """``(HARDWARE_PARAMS, Hardware)`` of :mod:`serveros.hardware`, or ``(None, None)``
    while that module is missing."""
    try:
        from ..hardware import HARDWARE_PARAMS, Hardware
    except ImportError:
        return None, None
    return HARDWARE_PARAMS, Hardware


@dataclass(frozen=True)
class Axis:
    """A parameter the file names, its values (in the file's order) and its line."""

    section: str
    name: str
    values: tuple
    line: int

    @property
    def qualname(self) -> str:
        return f"{self.section}.{self.name}"


@dataclass(frozen=True)
class Sweep:
    """A parsed, checked sweep file.

    Attributes
    ----------
    path : str
        The file (for messages).
    name : str
        The sweep's title (default the file's stem).
    mode, samples, seed
        How the axes combine (``samples`` None in a grid).
    axes : tuple of Axis
        Every parameter: those the file names with their values and line, the others with
        their default (line 0), in :data:`AXIS_ORDER` with the hardware's after ``pipes``;
        ``pipes`` and the hardware's parameters only when named.
    lines : dict
        ``(section, key)`` and ``(section,)`` to their line (for messages).
    parts : tuple of tuple of Axis
        The ``[[part]]`` tables' axes (none: the sweep is one grid or sample of ``axes``).
    """

    path: str
    name: str
    mode: str
    samples: int | None
    seed: int
    axes: tuple[Axis, ...]
    lines: dict
    parts: tuple[tuple[Axis, ...], ...] = ()

    def error(self, message: str, *keys: tuple[str, ...]) -> SweepError:
        """A :class:`SweepError` at the first of ``keys`` the file has (else line 1)."""
        line = next((self.lines[k] for k in keys if k in self.lines), 1)
        return SweepError(self.path, line, message)

    def axis(self, section: str, name: str) -> Axis | None:
        return next((a for a in self.axes if (a.section, a.name) == (section, name)), None)


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")
_ARRAY = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_-]+)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*=")


def key_lines(text: str) -> dict[tuple, int]:
    """The line (1-based) of each ``[section]`` header as ``(section,)`` and of each
    ``key = ...`` as ``(section, key)`` (a top-level ``section.key = ...`` too); the ``i``-th
    ``[[name]]`` table is ``(name, i)`` and its keys ``(name, i, key)``. Lines inside a
    multi-line array are not keys: they never start with ``bare_key =``."""
    out: dict[tuple, int] = {}
    section: tuple | None = None
    arrays: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _ARRAY.match(line) or _HEADER.match(line)
        if m:
            name = m.group(1)
            if m.re is _ARRAY:
                section = (name, arrays.get(name, 0))
                arrays[name] = section[1] + 1
            else:
                section = (name,)
            out.setdefault(section, n)
            continue
        m = _KEY.match(line)
        if m:
            parts = tuple(p.strip() for p in m.group(1).split("."))
            key = (*section, *parts) if section is not None else parts
            out.setdefault(key, n)
            if section is None and len(key) >= 2:
                out.setdefault(key[:1], n)
    return out


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check the sweep file ``path`` (:func:`parse_sweep`).

    Raises
    ------
    SweepError
        For a bad file (line 1 for one that cannot be read).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SweepError(str(path), 1, f"cannot read the sweep file: "
                                       f"{getattr(e, 'strerror', None) or e}") from None
    return parse_sweep(text, str(path), default_name=p.stem)


def _toml_line(e: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    """tomllib's error in ``text`` as ``(line, message without its position)`` (its end
    is the last line)."""
    msg = str(e)
    m = re.search(r"\s*\(at line (\d+), column \d+\)$", msg)
    if m:
        return int(m.group(1)), msg[:m.start()]
    m = re.search(r"\s*\(at end of document\)$", msg)
    return (len(text.splitlines()) or 1, msg[:m.start()]) if m else (1, msg)


def parse_sweep(text: str, path: str = "<sweep>", *, default_name: str = "sweep") -> Sweep:
    """Parse and check a sweep file's ``text``; ``path`` names it in messages.

    Raises
    ------
    SweepError
        For bad TOML, an unknown section or parameter, a bad value, an empty list, or
        ``samples`` where the mode takes none (or missing where it needs it).
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line, msg = _toml_line(e, text)
        raise SweepError(path, line, f"bad TOML: {msg}") from None
    lines = key_lines(text)

    def fail(message: str, *keys: tuple[str, ...]) -> SweepError:
        line = next((lines[k] for k in keys if k in lines), 1)
        return SweepError(path, line, message)

    hw_params, _ = hardware_api()
    hw_names = tuple(hw_params or ())
    known = {s: [n for (sec, n) in PARAMETERS if sec == s] for s in SECTIONS}
    known["hardware"] += list(hw_names)
    if not doc:
        raise fail("the sweep file names no parameter (sections: "
                   f"{', '.join(f'[{s}]' for s in SECTIONS)})")
    params_by_name = {n: sec for sec in SECTIONS[1:] for n in known[sec]}
    parts = doc.pop(PART, [])
    if not isinstance(parts, list) or not all(isinstance(t, dict) for t in parts):
        raise fail(f"{PART} must be [[{PART}]] tables, not {parts!r}", (PART, 0), (PART,))
    for i, table in enumerate(parts):
        if not table:
            raise fail(f"[[{PART}]] number {i + 1} names no parameter", (PART, i))
        for key in table:
            if key not in params_by_name:
                raise fail(f"unknown parameter {key} in [[{PART}]]; a part sets any of: "
                           f"{', '.join(params_by_name)}", (PART, i, key), (PART, i))
    for section, table in doc.items():
        if section not in SECTIONS:
            raise fail(f"unknown section [{section}]; sections: "
                       f"{', '.join(f'[{s}]' for s in SECTIONS)} and [[{PART}]]",
                       (section,))
        if not isinstance(table, dict):
            raise fail(f"{section} must be a [{section}] table of parameters, not "
                       f"{table!r}", (section,))
        for key in table:
            if key not in known[section]:
                why = (" (serveros.hardware is not available)"
                       if section == "hardware" and hw_params is None else "")
                raise fail(f"unknown parameter {section}.{key}{why}; [{section}] has: "
                           f"{', '.join(known[section])}", (section, key), (section,))

    def values(section: str, key: str, part: int | None = None) -> tuple | None:
        """The checked values of ``section.key``, in the ``[[part]]`` number ``part`` when
        given (None when not there)."""
        table = doc.get(section, {}) if part is None else parts[part]
        if key not in table:
            return None
        raw = table[key]
        where = (section, key) if part is None else (PART, part, key)
        vals = raw if isinstance(raw, list) else [raw]
        if not vals:
            raise fail(f"{section}.{key} is an empty list: the sweep would have no point",
                       where)
        for v in vals:
            if isinstance(v, (list, dict)):
                raise fail(f"{section}.{key}: a value is a number or a string, not {v!r}",
                           where)
            try:
                check(section, key, v)
            except ValueError as e:
                raise fail(f"{section}.{key}: {e}", where) from None
        for i, v in enumerate(vals):
            if any(type(v) is type(w) and v == w for w in vals[:i]):
                raise fail(f"{section}.{key} names {v!r} twice", where)
        return tuple(vals)

    def check(section: str, key: str, v: object) -> None:
        if (section, key) in PARAMETERS:
            PARAMETERS[section, key].check(v)
        else:
            hardware_api()[1].from_params({key: v})

    settings = {}
    for key in ("name", "mode", "samples", "seed"):
        vals = values("sweep", key)
        if vals is not None and len(vals) > 1:
            raise fail(f"sweep.{key} takes one value, not a list", ("sweep", key))
        settings[key] = vals[0] if vals else PARAMETERS["sweep", key].default
    mode, samples = settings["mode"], settings["samples"]
    if mode == "grid" and samples is not None:
        raise fail('sweep.samples is for mode = "random" or "lhs"; a grid runs every '
                   'combination', ("sweep", "samples"))
    if mode != "grid" and samples is None:
        raise fail(f'mode = "{mode}" needs sweep.samples (how many points)',
                   ("sweep", "mode"), ("sweep",))
    if parts and mode != "grid":
        raise fail(f'[[{PART}]] tables are grids of their own: mode = "{mode}" cannot take '
                   f'them', (PART, 0))
    axes: list[Axis] = []
    order = axis_order(hw_names)
    for section, key in order:
        vals = values(section, key)
        if vals is not None:
            axes.append(Axis(section, key, vals, lines.get((section, key), 1)))
        elif (section, key) in PARAMETERS and PARAMETERS[section, key].default is not None:
            axes.append(Axis(section, key, (PARAMETERS[section, key].default,), 0))
    part_axes = tuple(tuple(Axis(sec, key, values(sec, key, i), lines.get((PART, i, key), 1))
                            for sec, key in order if key in table and
                            params_by_name[key] == sec)
                      for i, table in enumerate(parts))
    return Sweep(path, settings["name"] or default_name, mode, samples, settings["seed"],
                 tuple(axes), lines, part_axes)


def axis_order(hw_names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every axis ``(section, name)`` in grid order: :data:`AXIS_ORDER` with the hardware's
    parameters ``hw_names`` after ``pipes``."""
    order = list(AXIS_ORDER)
    at = order.index(("hardware", "pipes")) + 1
    order[at:at] = [("hardware", n) for n in hw_names]
    return order
