"""The code's version a stored point was simulated by: a hash of the source tree's files.

A git commit would miss uncommitted edits and needs git on every worker; the hash of the
files that make a point's result (every ``.py``, ``.toml``, ``.csv`` and ``.json`` file of the
packages ``sim``, ``hw``, ``sw`` and ``serveros``, by relative path and content) is exact and
works in any installed copy. Any edit there is a new version, so a stored point is reused only
by the code that made it (a stale result is never taken for a new one); the cost is that an
edit beside the simulation (a table's format) also runs the points again.

``SERVEROS_CODE_VERSION`` in the environment (of the client and of every worker) overrides
the hash: for tests that run while the tree is being edited, and for someone who knows two
trees give the same results. Nothing checks that claim.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

__all__ = ["PACKAGES", "SUFFIXES", "VERSION_ENV", "code_version", "source_root"]

#: The packages whose files make a point's result, and the file kinds hashed.
PACKAGES = ("sim", "hw", "sw", "serveros")
SUFFIXES = (".py", ".toml", ".csv", ".json")
#: The environment variable that overrides the hash.
VERSION_ENV = "SERVEROS_CODE_VERSION"
#: Hex digits of the version kept (64 bits: no two versions of one project collide).
_DIGITS = 16


def source_root() -> Path:
    """The folder holding the packages (the repository, or site-packages when installed)."""
    return Path(__file__).resolve().parents[2]


def code_version(root: str | None = None) -> str:
    """The version of the code under ``root`` (default :func:`source_root`): the first 16
    hex digits of the SHA-256 of every hashed file's relative path and bytes, in path order
    (computed once per process), or ``$SERVEROS_CODE_VERSION`` when set."""
    override = os.environ.get(VERSION_ENV, "").strip()
    return override or _tree_hash(root)


@functools.cache
def _tree_hash(root: str | None) -> str:
    base = Path(root) if root is not None else source_root()
    h = hashlib.sha256()
    for pkg in PACKAGES:
        files = sorted(p for p in (base / pkg).rglob("*")
                       if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            rel = f.relative_to(base).as_posix().encode()
            data = f.read_bytes()
            h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:_DIGITS]
