"""Running the benchmarks and comparing them with the anchors."""
from __future__ import annotations

import logging
import traceback
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from .anchors import Anchor, load_anchors
from .registry import benchmarks

log = logging.getLogger(__name__)

#: Result statuses: within the tolerance; outside it with a documented reason; outside it
#: and unexplained (fails the command); no benchmark covers the row; the benchmark raised.
OK, EXPLAINED, MISS, NOT_COVERED, FAILED = "ok", "explained", "MISS", "not covered", "FAILED"


@dataclass(frozen=True)
class Result:
    id: str
    quantity: str
    unit: str
    measured: float
    simulated: float | None
    error: float | None          # simulated / measured - 1
    explained: str | None
    status: str
    machine: str
    platform: str
    detail: str | None = None    # the benchmark's failure, for FAILED

    @property
    def failing(self) -> bool:
        return self.status in (MISS, FAILED)

    def as_dict(self) -> dict:
        return asdict(self)


def _compare(a: Anchor, simulated: float) -> Result:
    err = simulated / a.measured - 1.0
    if abs(err) <= a.tolerance:
        status = OK
    else:
        status = EXPLAINED if a.explained else MISS
    return Result(a.id, a.quantity, a.unit, a.measured, simulated, err, a.explained, status,
                  a.machine, a.platform)


def select_rows(anchors: dict[str, Anchor], ids: Iterable[str] | None) -> list[str]:
    """The anchor row ids that ``ids`` names, in ``ids``' order without repeats (all rows when
    None; a bare row id such as ``U3`` selects all its values ``U3-1``, ``U3-2``, ...).

    Raises
    ------
    ValueError
        For an id that names no anchor.
    """
    if ids is None:
        return list(anchors)
    wanted: list[str] = []
    for rid in ids:
        hits = [a for a in anchors if a == rid or a.split("-", 1)[0] == rid]
        if not hits:
            raise ValueError(f"no anchor row {rid!r} (rows: {', '.join(anchors)})")
        wanted += [h for h in hits if h not in wanted]
    return wanted


def validate(ids: Iterable[str] | None = None, *, seed: int = 1,
             anchors: dict[str, Anchor] | None = None,
             progress: Callable[[str], None] | None = None) -> list[Result]:
    """Run the benchmarks of the anchor rows ``ids`` (all rows when None; a bare row id such
    as ``U3`` selects all its values) and return one :class:`Result` per row, in file order.

    Raises
    ------
    ValueError
        For an id that names no anchor.
    """
    anchors = anchors if anchors is not None else load_anchors()
    wanted = select_rows(anchors, ids)
    benches = benchmarks()
    by_bench: dict = {}
    for rid in wanted:
        if rid in benches:
            by_bench.setdefault(benches[rid], []).append(rid)
    simulated: dict[str, float] = {}
    failures: dict[str, str] = {}
    for bench, rids in by_bench.items():
        if progress is not None:
            progress(", ".join(rids))
        try:
            got = bench({r: anchors[r] for r in rids}, seed)
        except Exception:                                  # noqa: BLE001 - reported per row
            tb = traceback.format_exc()
            log.error("benchmark %s failed:\n%s", bench.__name__, tb)
            failures.update({r: tb for r in rids})
            continue
        for r in rids:
            if r not in got:
                failures[r] = f"benchmark {bench.__name__} returned no value for {r}"
            else:
                simulated[r] = float(got[r])
    out = []
    for rid in wanted:
        a = anchors[rid]
        if rid in simulated:
            out.append(_compare(a, simulated[rid]))
        else:
            status = FAILED if rid in failures else NOT_COVERED
            out.append(Result(a.id, a.quantity, a.unit, a.measured, None, None, a.explained,
                              status, a.machine, a.platform, failures.get(rid)))
    return out
