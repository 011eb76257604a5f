"""The ceiling for an RTL-in-the-loop run: a bare Verilator loop of a design, no Python.

:func:`bare_cycles_per_second` builds a design with a tiny C++ main that resets it and toggles
its ``clk`` for a given number of cycles, and reports the simulated cycles per wall-second.
Benchmarks print it next to the rate a co-simulation reaches on the same design
(TOOLCHAIN.md: about 18 M cycles/s for a small design on this machine), which says how much
the co-simulation's Python and cocotb callbacks cost.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.bindings.build import BUILD_ROOT, ensure_verilator_env, locked, to_verilog

__all__ = ["BareRun", "bare_cycles_per_second"]

_MAIN = r"""
#include "V{top}.h"
#include "verilated.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {{
    VerilatedContext* ctx = new VerilatedContext;
    V{top}* top = new V{top}{{ctx}};
    long cycles = argc > 1 ? atol(argv[1]) : 1000000;
    top->clk = 0; top->eval();
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < cycles; i++) {{
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
    }}
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%ld %.9f\n", cycles, s);
    top->final();
    delete top;
    delete ctx;
    return 0;
}}
"""


@dataclass(frozen=True)
class BareRun:
    cycles: int
    seconds: float

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else float("inf")


def bare_cycles_per_second(component: Any, toplevel: str, *, cycles: int = 2_000_000,
                           design: str | None = None, build_root: Path | str = BUILD_ROOT) -> BareRun:
    """Build ``component`` as a bare Verilator executable and time ``cycles`` clock cycles.

    The design is built reset-less, as :mod:`sim.bindings.verilator` builds it (so the two
    rates compare the same model); its inputs stay 0,
    so it idles (the clock tree, the registers and the memories are evaluated every cycle all
    the same, which is what a co-simulation pays for while it waits).

    Raises
    ------
    RuntimeError
        If Verilator is not available or the build fails.
    """
    ensure_verilator_env()
    build_dir = Path(build_root) / (design or toplevel) / "verilator-bare"
    with locked(build_dir):
        src = to_verilog(component, toplevel, build_dir / f"{toplevel}.v", reset_less=True)
        main = build_dir / "bare_main.cpp"
        text = _MAIN.format(top=toplevel)
        if not main.exists() or main.read_text() != text:
            main.write_text(text)
        exe = build_dir / "obj" / f"V{toplevel}"
        stamp = build_dir / ".bare-stamp"
        key = f"{src.stat().st_mtime_ns}/{main.stat().st_mtime_ns}/O2"
        if not (exe.exists() and stamp.exists() and stamp.read_text() == key):
            cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-CFLAGS", "-O2", "--top-module",
                   toplevel, "-Mdir", str(build_dir / "obj"), str(src), str(main)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if proc.returncode != 0:
                raise RuntimeError(f"bare Verilator build of {toplevel} failed:\n{proc.stderr[-3000:]}")
            stamp.write_text(key)
        proc = subprocess.run([str(exe), str(cycles)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bare Verilator run of {toplevel} failed:\n{proc.stderr[-3000:]}")
        n, s = proc.stdout.split()
        return BareRun(int(n), float(s))
