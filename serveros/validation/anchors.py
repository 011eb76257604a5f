"""The anchor rows: measured values of real machines, read from ``anchors.toml``.

One row per measured value. A row of VALIDATION.md with several values becomes several rows
whose ids carry a suffix (``U3-1``, ``U3-2``). Fields:

``id``          the row id (VALIDATION.md's id, with a suffix where it has several values);
``quantity``    what was measured, in words;
``unit``        the unit of ``measured`` (``us``, ``ms``, ``MB/s``);
``measured``    the value (the middle of a measured range);
``machine``     the machine and OS it was measured on;
``platform``    the simulated platform profile the benchmark runs on (``serveros profiles``);
``source``      where the number comes from;
``tolerance``   the relative error allowed (default 0.25);
``explained``   optional: why the simulation cannot come within the tolerance (also in
                ``docs/validation.md``); an explained miss does not fail the command.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The anchors shipped with serveros.
ANCHORS = Path(__file__).with_name("anchors.toml")
DEFAULT_TOLERANCE = 0.25


class AnchorError(ValueError):
    """A malformed anchors file (the message names the file, the row and the field)."""


@dataclass(frozen=True)
class Anchor:
    id: str
    quantity: str
    unit: str
    measured: float
    machine: str
    platform: str
    source: str
    tolerance: float = DEFAULT_TOLERANCE
    explained: str | None = None

    @property
    def row(self) -> str:
        """VALIDATION.md's row id (``U3`` for ``U3-2``)."""
        return self.id.split("-", 1)[0]


_REQUIRED = {"id": str, "quantity": str, "unit": str, "measured": (int, float), "machine": str,
             "platform": str, "source": str}
_OPTIONAL = {"tolerance": (int, float), "explained": str}


def load_anchors(path: str | Path = ANCHORS) -> dict[str, Anchor]:
    """Every anchor of ``path`` by id, in file order.

    Raises
    ------
    AnchorError
        For a file that is not TOML, a row missing a field or with a field of the wrong type,
        an unknown field, a non-positive measured value or tolerance, or a repeated id.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise AnchorError(f"{path}: {e}") from None
    rows = data.get("anchor")
    if not isinstance(rows, list) or not rows:
        raise AnchorError(f"{path}: no [[anchor]] rows")
    out: dict[str, Anchor] = {}
    for i, row in enumerate(rows, 1):
        where = f"{path}: anchor {i} ({row.get('id', '?')})"
        for key in row:
            if key not in _REQUIRED and key not in _OPTIONAL:
                raise AnchorError(f"{where}: unknown field {key!r}")
        for key, typ in _REQUIRED.items():
            if key not in row:
                raise AnchorError(f"{where}: missing field {key!r}")
        for key, typ in {**_REQUIRED, **_OPTIONAL}.items():
            if key in row and (not isinstance(row[key], typ) or isinstance(row[key], bool)):
                raise AnchorError(f"{where}: field {key!r} must be {typ}, not {row[key]!r}")
        a = Anchor(**row)
        if not math.isfinite(a.measured) or a.measured <= 0:
            raise AnchorError(f"{where}: measured must be a positive number, not {a.measured!r}")
        if not 0 < a.tolerance < 10:
            raise AnchorError(f"{where}: tolerance must be in (0, 10), not {a.tolerance!r}")
        if a.id in out:
            raise AnchorError(f"{where}: id {a.id!r} appears twice")
        out[a.id] = a
    return out
