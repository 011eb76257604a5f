"""Verilator without cocotb: a design compiled into a shared library that Python drives directly.

cocotb's per-edge callbacks cost Verilator 12-18x against a plain C++ loop (TOOLCHAIN.md).
For RTL-in-the-loop experiments that must run near the speed of the real testbed, this module
builds a design with a small generated C++ shim and loads it with :mod:`ctypes`; the clock runs
inside C++ and Python is resumed only when a watched port changes or the kernel's next entry
is due, exactly like the cocotb and Amaranth bindings (:mod:`sim.bindings`).

* :func:`build` converts the component to Verilog, verilates it with the shim and returns a
  :class:`DirectModel` (the loaded library: ports by name, memories by hierarchical name).
* :class:`VerilatorDirectDriver` is the :class:`sim.bindings.HdlDriver` over it. Signals are
  port names (``"bus__ack"``); memories are read and written in blocks.

Clock convention (:class:`sim.time.Clock`): edge ``k`` at ``k * period``, edge 0 at time 0.
A value Python sets at time ``t`` is sampled at the first edge strictly after ``t``; after the
driver wakes at ``t`` every edge at or before ``t`` has happened.

We wrote this rather than use a library: PyPI's Verilator bindings (pyverilator and kin) are
unmaintained and predate Verilator 5; the shim is ~100 lines of generated C++.
"""
from __future__ import annotations

import ctypes
import sys
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sim.bindings import BindingError, HdlDriver
from sim.kernel import Kernel
from sim.time import Clock

from sim.bindings.build import BUILD_ROOT, ensure_verilator_env, to_verilog, waves_requested
from sim.bindings.build import locked as _locked

__all__ = ["Port", "DirectModel", "VerilatorDirectDriver", "build"]

_MAX_WATCH = 32
#: C++ optimisation of the verilated model (Verilator's default is -Os; -O2 measured faster here,
#: -O3 slower).
_OPT = "-O2"


@dataclass(frozen=True)
class Port:
    name: str
    width: int
    is_input: bool
    index: int


def _top_ports(verilog: str) -> list[Port]:
    """The top module's ports (the first module in Amaranth's output)."""
    body = verilog.split("endmodule", 1)[0]
    ports = []
    for m in re.finditer(r"^\s*(input|output)\s*(?:\[(\d+):0\])?\s*([A-Za-z_][\w$]*)\s*;", body,
                         re.M):
        width = int(m.group(2)) + 1 if m.group(2) else 1
        ports.append(Port(m.group(3), width, m.group(1) == "input", len(ports)))
    return ports


_SHIM = r"""
#include "V{top}.h"
#include "V{top}___024root.h"
#include "verilated.h"
#include <cstdint>
#ifdef SERVEROS_TRACE
#include "verilated_vcd_c.h"
#endif

struct Sim {{
    VerilatedContext* ctx;
    V{top}* top;
#ifdef SERVEROS_TRACE
    VerilatedVcdC* tfp;
#endif
    uint64_t period;
    uint64_t next_edge;
    int nwatch;
    int watch[{maxw}];
    uint64_t last[{maxw}];
}};

static uint64_t get_port(V{top}* top, int id) {{
    switch (id) {{
{gets}
    default: return 0;
    }}
}}

extern "C" {{
void* sim_new() {{
    Sim* s = new Sim;
    s->ctx = new VerilatedContext;
    s->top = new V{top}{{s->ctx}};
    s->top->clk = 0;
    s->top->eval();
    s->next_edge = 0;
    s->nwatch = 0;
    s->period = 0;
#ifdef SERVEROS_TRACE
    s->tfp = nullptr;
#endif
    return s;
}}
/* Record a VCD of every edge from now on (only in a build with waves); 0 on success. */
int sim_trace(void* h, const char* path, uint64_t period_ps) {{
#ifdef SERVEROS_TRACE
    Sim* s = (Sim*)h;
    s->ctx->traceEverOn(true);
    s->tfp = new VerilatedVcdC;
    s->top->trace(s->tfp, 99);
    s->tfp->open(path);
    s->period = period_ps;
    return 0;
#else
    return -1;
#endif
}}
void sim_free(void* h) {{
    Sim* s = (Sim*)h;
#ifdef SERVEROS_TRACE
    if (s->tfp) {{ s->tfp->close(); delete s->tfp; }}
#endif
    s->top->final();
    delete s->top;
    delete s->ctx;
    delete s;
}}
uint64_t sim_get(void* h, int id) {{ return get_port(((Sim*)h)->top, id); }}
void sim_set(void* h, int id, uint64_t v) {{
    V{top}* top = ((Sim*)h)->top;
    switch (id) {{
{sets}
    default: break;
    }}
}}
int sim_watch(void* h, int id) {{
    Sim* s = (Sim*)h;
    if (s->nwatch >= {maxw}) return -1;
    s->watch[s->nwatch] = id;
    s->last[s->nwatch] = get_port(s->top, id);
    s->nwatch++;
    return 0;
}}
uint64_t sim_next_edge(void* h) {{ return ((Sim*)h)->next_edge; }}
/* Run edges up to and including edge `until`; stop after the first edge at which a watched
   port changed. Returns 1 if stopped by a change. */
int sim_run(void* h, uint64_t until) {{
    Sim* s = (Sim*)h;
    V{top}* top = s->top;
    while (s->next_edge <= until) {{
        top->clk = 1; top->eval();
#ifdef SERVEROS_TRACE
        if (s->tfp) s->tfp->dump(s->next_edge * s->period);
#endif
        top->clk = 0;
#if defined(SERVEROS_ONE_EVAL) && !defined(SERVEROS_TRACE)
        /* Nothing happens at the falling edge (one clock domain, posedge only, outputs
           registered): skip its evaluation and tell Verilator's edge detector that the
           clock was seen low, so the next eval sees a rising edge. */
        top->rootp->{trigprev} = 0;
#else
        top->eval();
#endif
#ifdef SERVEROS_TRACE
        if (s->tfp) s->tfp->dump(s->next_edge * s->period + s->period / 2);
#endif
        s->next_edge++;
        int changed = 0;
        for (int i = 0; i < s->nwatch; i++) {{
            uint64_t v = get_port(top, s->watch[i]);
            if (v != s->last[i]) {{ s->last[i] = v; changed = 1; }}
        }}
        if (changed) return 1;
    }}
    return 0;
}}
void sim_mem_read(void* h, int mem, int start, int n, uint32_t* out) {{
    auto* r = ((Sim*)h)->top->rootp;
    switch (mem) {{
{mem_reads}
    default: break;
    }}
}}
void sim_mem_write(void* h, int mem, int start, int n, const uint32_t* in) {{
    auto* r = ((Sim*)h)->top->rootp;
    switch (mem) {{
{mem_writes}
    default: break;
    }}
}}
}}
"""


class DirectModel:
    """A design loaded from its Verilator shared library (see :func:`build`).

    One instance is one simulation (its state starts at reset values).
    """

    def __init__(self, lib_path: Path, ports: list[Port], memories: dict[str, tuple[int, int]],
                 waves: bool = False):
        self.build_dir = lib_path.parent
        self.waves = waves
        self.lib = ctypes.CDLL(str(lib_path))
        L = self.lib
        L.sim_new.restype = ctypes.c_void_p
        L.sim_free.argtypes = [ctypes.c_void_p]
        L.sim_get.restype = ctypes.c_uint64
        L.sim_get.argtypes = [ctypes.c_void_p, ctypes.c_int]
        L.sim_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
        L.sim_watch.argtypes = [ctypes.c_void_p, ctypes.c_int]
        L.sim_watch.restype = ctypes.c_int
        L.sim_next_edge.restype = ctypes.c_uint64
        L.sim_next_edge.argtypes = [ctypes.c_void_p]
        L.sim_run.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        L.sim_run.restype = ctypes.c_int
        L.sim_trace.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
        L.sim_trace.restype = ctypes.c_int
        L.sim_mem_read.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_uint32)]
        L.sim_mem_write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_uint32)]
        self.ports = {p.name: p for p in ports}
        self.memories = memories          # name -> (id, depth)
        self._h = L.sim_new()
        # Bound for speed: the driver loop calls these at transaction rate.
        self._get, self._set, self._run = L.sim_get, L.sim_set, L.sim_run

    def close(self) -> None:
        if self._h:
            self.lib.sim_free(self._h)
            self._h = None

    def __del__(self):
        # At interpreter exit Verilator's own static objects may already be going away and
        # freeing a model then can deadlock inside Verilator; the process frees everything anyway.
        if sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:
            pass

    def trace(self, path: Path | str, period_ps: int) -> None:
        """Write a VCD of every clock edge from now on to ``path`` (needs a ``waves`` build)."""
        if self.lib.sim_trace(self._h, str(path).encode(), period_ps) != 0:
            raise BindingError("this build has no tracing: build(..., waves=True) or "
                               "SERVEROS_WAVES=1")

    def port(self, name: str) -> Port:
        try:
            return self.ports[name]
        except KeyError:
            raise BindingError(f"the design has no port {name!r}") from None

    def get(self, name: str) -> int:
        return self._get(self._h, self.port(name).index)

    def set(self, name: str, value: int) -> None:
        p = self.port(name)
        if not p.is_input:
            raise BindingError(f"port {name!r} is an output; it cannot be driven")
        if not 0 <= value < 1 << p.width:
            raise ValueError(f"{value!r} does not fit port {name!r} ({p.width} bits)")
        self._set(self._h, p.index, value)

    def watch(self, name: str) -> None:
        if self.lib.sim_watch(self._h, self.port(name).index) != 0:
            raise BindingError(f"at most {_MAX_WATCH} ports can be watched")

    @property
    def next_edge(self) -> int:
        return self.lib.sim_next_edge(self._h)

    def run(self, until_edge: int) -> bool:
        """Run the edges up to ``until_edge`` inclusive; True if a watched port changed."""
        return bool(self._run(self._h, until_edge))

    def _mem(self, name: str, start: int, n: int) -> int:
        try:
            mid, depth = self.memories[name]
        except KeyError:
            raise BindingError(f"memory {name!r} was not exported; exported: "
                               f"{sorted(self.memories)}") from None
        if not (0 <= start and n >= 0 and start + n <= depth):
            raise ValueError(f"words {start}..{start + n - 1} are outside {name} (depth {depth})")
        return mid

    def mem_read(self, name: str, start: int, n: int) -> list[int]:
        mid = self._mem(name, start, n)
        buf = (ctypes.c_uint32 * max(n, 1))()
        self.lib.sim_mem_read(self._h, mid, start, n, buf)
        return list(buf[:n])

    def mem_write(self, name: str, start: int, words: Sequence[int]) -> None:
        n = len(words)
        mid = self._mem(name, start, n)
        buf = (ctypes.c_uint32 * max(n, 1))(*words)
        self.lib.sim_mem_write(self._h, mid, start, n, buf)


def build(component: Any, toplevel: str, *, memories: Sequence[str] = (),
          design: str | None = None, build_root: Path | str = BUILD_ROOT,
          waves: bool | None = None, one_eval_ok: bool = True) -> DirectModel:
    """Verilate ``component`` into a shared library and load it.

    Parameters
    ----------
    component
        An Amaranth component in the ``sync`` domain, or a function of no arguments that makes
        one (called only when the Verilog has to be generated, so a cached build constructs
        nothing and Amaranth warns about no unused component). It is built reset-less
        (:func:`serveros.rtl.to_verilog`): it starts at its initial values and is never reset.
    toplevel
        The Verilog module name.
    memories
        Hierarchical names of 32-bit-wide memories to export, dotted from the top
        (``"bridge.tx_mem"``).
    design
        Build directory name (default: ``toplevel``); reused while the Verilog is unchanged.
        It must identify the component's parameters: the Verilog is not regenerated while
        the gateware sources (hw/**/*.py) and this name are unchanged.
    one_eval_ok
        The design has one clock domain, acts only on the rising edge and its outputs the
        driver reads are registered: then the falling edge is not evaluated (about 1.25x
        faster). Ignored in a waves build.
    waves
        Build with VCD tracing (:meth:`DirectModel.trace`); default: ``SERVEROS_WAVES=1``.

    Raises
    ------
    RuntimeError
        If Verilator is missing or the build fails.
    """
    ensure_verilator_env()
    if waves is None:
        waves = waves_requested()
    build_dir = Path(build_root) / (design or toplevel) / ("verilator-direct" + ("-waves" if waves else ""))
    with _locked(build_dir):
        # Converting a large design to Verilog takes seconds; skip it when the gateware's
        # sources are unchanged and ``design`` names the same parameters.
        src = build_dir / f"{toplevel}.v"
        skey = build_dir / ".source-key"
        hw_key = _hw_source_key(design or toplevel)
        if not (src.exists() and skey.exists() and skey.read_text() == hw_key):
            if callable(component) and not hasattr(component, "elaborate"):
                component = component()
            src = to_verilog(component, toplevel, src, reset_less=True)
            skey.write_text(hw_key)
        verilog = src.read_text()
        ports = _top_ports(verilog)
        names = {p.name for p in ports}
        if "clk" not in names:
            raise RuntimeError(f"{toplevel} needs a clk port")
        lib = build_dir / f"lib{toplevel}.so"
        stamp = build_dir / ".direct-stamp"
        key = f"{src.stat().st_mtime_ns}/{','.join(memories)}/{hashlib.sha1(_SHIM.encode()).hexdigest()[:12]}/{_OPT}/{one_eval_ok}"
        vars_ = sorted({m.rsplit(".", 1)[-1] for m in memories})
        vlt = build_dir / "public.vlt"
        vlt.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "*" -var "{v}"\n' for v in vars_))
        obj = build_dir / "obj"
        mem_info: dict[str, tuple[int, int]] = {}
        if not (lib.exists() and stamp.exists() and stamp.read_text() == key):
            base = ["verilator", "--cc", "-O3", "-Wno-fatal", "--top-module", toplevel,
                    "-Mdir", str(obj), str(vlt), str(src)] + (["--trace"] if waves else [])
            _run(base, "verilate")
            header = (obj / f"V{toplevel}___024root.h").read_text()
            mem_reads, mem_writes = [], []
            for i, path in enumerate(memories):
                member, depth = _find_member(header, toplevel, path)
                mem_reads.append(f"    case {i}: for (int k = 0; k < n; k++) out[k] = "
                                 f"r->{member}[start + k]; break;")
                mem_writes.append(f"    case {i}: for (int k = 0; k < n; k++) "
                                  f"r->{member}[start + k] = in[k]; break;")
            gets = "\n".join(f"    case {p.index}: return top->{_cxx(p.name)};" for p in ports)
            sets = "\n".join(f"    case {p.index}: top->{_cxx(p.name)} = v; break;"
                             for p in ports if p.is_input)
            m = re.search(r"CData/\*0:0\*/ (__Vtrigprevexpr___TOP__clk__\d+);", header)
            one_eval = m is not None and one_eval_ok
            shim = build_dir / "shim.cpp"
            shim.write_text(_SHIM.format(top=toplevel, maxw=_MAX_WATCH, gets=gets, sets=sets,
                                         trigprev=m.group(1) if m else "",
                                         mem_reads="\n".join(mem_reads),
                                         mem_writes="\n".join(mem_writes)))
            _run(base + ["--exe", "--build", str(shim), "-CFLAGS", "-fPIC" + (" -DSERVEROS_TRACE" if waves else "")
                         + (" -DSERVEROS_ONE_EVAL" if one_eval else ""),
                         "-CFLAGS", _OPT,
                         "-LDFLAGS", "-shared", "-o", str(lib)], "build")
            stamp.write_text(key)
        header = (obj / f"V{toplevel}___024root.h").read_text()
        for i, path in enumerate(memories):
            _, depth = _find_member(header, toplevel, path)
            mem_info[path] = (i, depth)
        return DirectModel(lib, ports, mem_info, waves)


def _hw_source_key(design: str) -> str:
    """A digest of every gateware source file (hw/**/*.py) and the design's name."""
    from sim.bindings.build import REPO
    h = hashlib.sha1(design.encode())
    for f in sorted((REPO / "hw").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _cxx(name: str) -> str:
    """Verilator's C++ name of a port: it encodes a double underscore as ``___05F``."""
    return name.replace("__", "___05F")


def _find_member(header: str, toplevel: str, path: str) -> tuple[str, int]:
    parts = path.split(".")
    suffix = "__DOT__".join(parts)
    m = re.search(r"VlUnpacked<IData(?:/\*[^*]*\*/)?,\s*(\d+)>\s+(\w*" + re.escape(suffix) + r");", header)
    if not m:
        raise RuntimeError(f"memory {path!r} not found in the verilated {toplevel} "
                           f"(is it 32 bits wide and named so?)")
    return m.group(2), int(m.group(1))


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"Verilator {what} failed ({' '.join(cmd[:3])} ...):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


class VerilatorDirectDriver(HdlDriver):
    """Run a :class:`Kernel` against a :class:`DirectModel`, the model owning time.

    Parameters
    ----------
    model : DirectModel
    kernel : Kernel
        Must be at time 0 (the model starts at reset).
    clock : Clock
        The design's ``clk``.
    until : int, optional
        Stop at this time (ps) even if tasks are still live.
    waves : path, optional
        Where to write the VCD when the model was built with waves (default
        ``build/hdl/<design>/verilator-direct-waves/dump.vcd``).

    Attributes
    ----------
    waves : Path or None
        The VCD being written, when the model was built with waves (``SERVEROS_WAVES=1``).
    """

    def __init__(self, model: DirectModel, kernel: Kernel, clock: Clock, *,
                 until: int | None = None, waves: Path | str | None = None):
        super().__init__(kernel, until=until)
        if kernel.now != 0:
            raise BindingError(f"the kernel must start at time 0, not {kernel.now} ps")
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        self.model = model
        self.clock = clock
        self._now = 0
        self.waves: Path | None = None
        if model.waves:
            self.waves = Path(waves) if waves is not None else model.build_dir / "dump.vcd"
            self.waves.parent.mkdir(parents=True, exist_ok=True)
            model.trace(self.waves, clock.period)

    def get(self, signal: str) -> int:
        return self.model.get(signal)

    def set(self, signal: str, value: int) -> None:
        self.model.set(signal, value)

    def now(self) -> int:
        return self._now

    def run(self) -> None:
        """The driver loop; returns when every non-daemon kernel task has finished."""
        m, p = self.model, self.clock.period
        for name in dict.fromkeys(self.watched_signals):
            m.watch(name)
        self._start()
        never = (1 << 63) - 1
        while not self._finished():
            t = self._deadline()
            if t is not None and t <= self._now:
                self._wake(self._now)
                continue
            until = t // p if t is not None else never
            if m.run(until):
                self._now = (m.next_edge - 1) * p
            else:
                self._now = t
            self._wake(self._now)
