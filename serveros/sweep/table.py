"""A sweep's results table: every point's parameters and results, one flat row per point.

:func:`write_tables` writes ``results.parquet`` (Apache Arrow's Parquet, through ``pyarrow``)
and ``results.csv`` from the rows of a sweep: the dicts :func:`serveros.experiments.paper.
run_point` returns (or :func:`~serveros.experiments.paper.failed_rows` for a point that
failed), plus whatever columns the sweep adds (one per sweep parameter, ``key``,
``code_version``, ...) and the area columns of :mod:`serveros.sweep.area`. Any column is
kept; none is required but those a plot asks for.

Flattening
----------
Nested values become columns, named as ``results.csv`` of ``serveros run`` names them
(:func:`serveros.experiments.paper.write_results`): ``cpu_breakdown`` gives
``cpu_<category>`` (fractions of the server's cycles), ``client_cpu_breakdown``
``client_cpu_<category>``, ``server_stats`` ``server_<name>``, figure d's
``cpu_cycles_per_request_breakdown`` ``cpu_per_request_<category>``; any other dict
``<field>_<key>`` (nested dicts recursively); a list or tuple is joined with ``+`` (figure d's
``mechanisms``: ``ash+ilp``). A flattened name that equals another column is refused.

Derived column
--------------
``cpu_cycles_per_request``: the server CPU's busy cycles (every category but idle) per
successful request. Figure d's rows carry it; for the others it is derived exactly from
``cpu_cycles_per_doc_byte x goodput_bytes_per_s x sim_seconds / ok`` (busy cycles over the
document bytes served, times the bytes served, over the requests), and is empty where that is
undefined (0-byte documents, failed points).

Types
-----
A column whose values Arrow can hold as one type (numbers, strings, booleans, each with
nulls) keeps it; a column of mixed kinds (a server stat that is a number on one row and a
string on another) is stored as strings. Rows keep their order; columns are in order of first
appearance, ``key`` first when present.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

__all__ = ["TABLE_FILES", "NESTED_PREFIXES", "flatten_row", "flatten_rows", "write_tables",
           "read_table", "cycles_per_request"]

#: The files :func:`write_tables` writes, by the name it returns them under.
TABLE_FILES = {"parquet": "results.parquet", "csv": "results.csv"}
#: Column prefix of each dict field (as ``serveros run``'s results.csv names them).
NESTED_PREFIXES = {"cpu_breakdown": "cpu_", "client_cpu_breakdown": "client_cpu_",
                   "server_stats": "server_",
                   "cpu_cycles_per_request_breakdown": "cpu_per_request_"}


def _flatten_into(out: dict, prefix: str, value: dict, origin: str) -> None:
    for k, v in value.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten_into(out, f"{name}_", v, origin)
            continue
        if name in out:
            raise ValueError(f"flattening {origin!r} gives column {name!r}, which the row "
                             f"already has")
        out[name] = _scalar(v)


def _scalar(v):
    if isinstance(v, (list, tuple)):
        return "+".join(str(x) for x in v)
    return v


def cycles_per_request(row: dict) -> float | None:
    """The server CPU's busy cycles per successful request of ``row`` (see the module's
    docstring), or None where it is undefined."""
    if row.get("cpu_cycles_per_request") is not None:
        return row["cpu_cycles_per_request"]
    per_byte, goodput = row.get("cpu_cycles_per_doc_byte"), row.get("goodput_bytes_per_s")
    span, ok = row.get("sim_seconds"), row.get("ok")
    if None in (per_byte, goodput, span, ok) or not ok:
        return None
    return per_byte * goodput * span / ok


def flatten_row(row: dict) -> dict:
    """``row`` with nested values as columns (see the module's docstring) and
    ``cpu_cycles_per_request`` added.

    Raises
    ------
    TypeError
        If ``row`` is not a dict.
    ValueError
        If a flattened column's name equals another column's.
    """
    if not isinstance(row, dict):
        raise TypeError(f"a row is a dict, not {type(row).__name__}")
    out: dict = {}
    nested = []
    for k, v in row.items():
        if isinstance(v, dict):
            nested.append((k, v))
        else:
            out[k] = _scalar(v)
    for k, v in nested:
        _flatten_into(out, NESTED_PREFIXES.get(k, f"{k}_"), v, k)
    if "cpu_cycles_per_request" not in out and "throughput_rps" in row:
        out["cpu_cycles_per_request"] = cycles_per_request(row)
    return out


def flatten_rows(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The columns (first appearance; ``key`` first) and the flattened rows."""
    flat = [flatten_row(r) for r in rows]
    cols = list(dict.fromkeys(c for r in flat for c in r))
    if "key" in cols:
        cols.remove("key")
        cols.insert(0, "key")
    return cols, flat


def _arrow_column(values: list):
    import pyarrow as pa
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def write_tables(rows: list[dict], out_dir: str | os.PathLike, *, area: bool = True
                 ) -> dict[str, Path]:
    """Write ``out_dir/results.parquet`` and ``out_dir/results.csv``: one row per entry of
    ``rows``, flattened (see the module's docstring). Returns the files by name
    (:data:`TABLE_FILES`'s keys).

    With ``area`` (keyword-only), rows without ``area_luts`` get the area columns of
    :func:`serveros.sweep.area.add_area` (a hardware variant's pipes synthesized once per
    device, here in the client; software-only rows 0).

    Raises
    ------
    TypeError
        If ``rows`` is not a list of dicts.
    ValueError
        For no rows, or a flattened column whose name another column has.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(rows, list):
        raise TypeError(f"rows must be a list of dicts, not {type(rows).__name__}")
    if not rows:
        raise ValueError("no rows to write")
    bad = next((r for r in rows if not isinstance(r, dict)), None)
    if bad is not None:
        raise TypeError(f"a row is a dict, not {type(bad).__name__}")
    if not isinstance(area, bool):
        raise TypeError(f"area must be a bool, not {area!r}")
    if area:
        from .area import add_area
        rows = add_area(rows)
    cols, flat = flatten_rows(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.table({c: _arrow_column([r.get(c) for r in flat]) for c in cols})
    files = {"parquet": out / TABLE_FILES["parquet"], "csv": out / TABLE_FILES["csv"]}
    pq.write_table(table, files["parquet"])
    with files["csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in flat:
            w.writerow([_csv_cell(r.get(c)) for c in cols])
    return files


def read_table(path: str | os.PathLike) -> list[dict]:
    """The flattened rows of a results folder or file: ``results.parquet`` (a sweep's), or
    else ``results.json`` (``serveros run``'s, flattened here, with the area columns of
    :func:`serveros.sweep.area.add_area`: figure d's ``cheetah@+hwilp`` rows over the AN2
    get the card's pipes).

    Raises
    ------
    FileNotFoundError
        Naming the files looked for.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        candidates = [p / TABLE_FILES["parquet"], p / "results.json"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(f"{p}: no {' or '.join(c.name for c in candidates)} (a "
                                    f"`serveros sweep` or `serveros run` output folder)")
        p = found[0]
    elif not p.is_file():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.suffix == ".json":
        try:
            doc = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not JSON ({e})") from None
        rows = doc["rows"] if isinstance(doc, dict) and "rows" in doc else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{p}: expected a list of rows or {{\"rows\": [...]}}")
        from .area import add_area
        return flatten_rows(add_area(rows))[1]
    try:
        return pq.read_table(p).to_pylist()
    except (OSError, ValueError) as e:          # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{p}: not a readable Parquet table ({e})") from None
