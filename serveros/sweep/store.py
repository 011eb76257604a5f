"""Finished points on disk: ``DIR/points/<key>.json``, one file a point, written atomically
by the client (never by a worker), and ``DIR/points.log``, one JSON line per point stored.

A point's key (:func:`point_key`) is the SHA-256 of its parameters (every field of
:class:`~serveros.experiments.paper.Point`, so its hardware, pipes, network and seed), its
simulation seed, the documents' image it reads and the code's version
(:func:`serveros.sweep.version.code_version`): the same point by the same code has the same
key in every sweep, so a sweep that stopped resumes where it stopped and a point stored by one
sweep is reused by another that names it. A file is written to a temporary name in the same
folder and renamed (``os.replace``, atomic on POSIX), so a sweep killed mid-write leaves no
half file; the log lets a test (or a person) check that each key was stored once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["POINTS", "LOG", "point_params", "point_key", "PointStore"]

#: The folder of stored points and the log of stores, inside the sweep's output folder.
POINTS = "points"
LOG = "points.log"


def point_params(point, image: tuple[int, ...] | str) -> dict:
    """What makes ``point``'s result, JSON-clean: its fields, its simulation seed and the
    documents' image (sizes, or a path)."""
    fields = dataclasses.asdict(point)
    fields["hardware"] = {k: v for k, v in point.hardware}
    fields["point_seed"] = point.point_seed
    fields["image"] = list(image) if isinstance(image, tuple) else str(image)
    return json.loads(json.dumps(fields))


def point_key(point, image: tuple[int, ...] | str, version: str) -> str:
    """The key ``point`` is stored under (32 hex digits) for code ``version``."""
    doc = json.dumps({"point": point_params(point, image), "code_version": version},
                     sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


class PointStore:
    """The stored points of one output folder.

    Parameters
    ----------
    root : path-like
        The sweep's output folder (created with its ``points/`` folder).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self._root = Path(root)
        self._dir = self._root / POINTS
        self._dir.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"a point key is hex digits, not {key!r}")
        return self._dir / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The record stored under ``key`` (``key``, ``code_version``, ``point``, ``rows``), or
        None. A file that is not a record (cut short by hand) counts as absent."""
        p = self.path(key)
        try:
            rec = json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return rec if isinstance(rec, dict) and rec.get("key") == key and "rows" in rec else None

    def put(self, key: str, record: dict) -> Path:
        """Store ``record`` under ``key`` atomically (replacing an older record: a failed
        point run again) and log it. Returns the file."""
        record = dict(record, key=key)
        p = self.path(key)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self._dir)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        failed = any(r.get("status") == "failed" for r in record["rows"])
        with (self._root / LOG).open("a") as log:
            log.write(json.dumps({"key": key, "status": "failed" if failed else "ok"}) + "\n")
        return p

    def keys(self) -> list[str]:
        """The keys stored, sorted."""
        return sorted(p.stem for p in self._dir.glob("*.json"))

    def log(self) -> list[dict]:
        """The log's lines (one per store, in order)."""
        f = self._root / LOG
        if not f.exists():
            return []
        return [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
