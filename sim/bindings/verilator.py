"""Verilator without cocotb: designs compiled into shared libraries that Python drives directly.

cocotb's per-edge callbacks cost Verilator 12-18x against a plain C++ loop (TOOLCHAIN.md).
For RTL-in-the-loop experiments that must run near the speed of the real testbed, this module
builds a design with a small generated C++ shim and loads it with :mod:`ctypes`; the clocks run
inside C and Python is resumed only when a watched port changes or the kernel's next entry is
due, exactly like the cocotb and Amaranth bindings (:mod:`sim.bindings`).

* :func:`build` converts the component to Verilog, verilates it with the shim and returns a
  :class:`DirectModel` (the loaded library: ports by name, memories by hierarchical name).
  Each call loads a fresh, independent simulation, also of a build already loaded.
* :class:`VerilatorAccess` is the :class:`sim.bindings.access.SignalAccess` of one model: its
  ports as :class:`PortHandle` (model and port), its memories in blocks.
* :class:`VerilatorDirectDriver` is the :class:`sim.bindings.HdlDriver` over one or several
  models, each with its own clock. With one model the shim's own loop runs the clock; with
  several, a small C stepper (built once under ``build/hdl/_stepper/``) calls each model's
  one-edge function in time order and stops at the first instant at which a watched port of
  any model changed, or at the kernel's deadline.

Clock convention (:class:`sim.time.Clock`): edge ``k`` of a clock at ``k * period``, edge 0 at
time 0. A value Python sets at time ``t`` is sampled at the first edge strictly after ``t``;
after the driver wakes at ``t`` every edge of every model at or before ``t`` has happened.

We wrote this rather than use a library: PyPI's Verilator bindings (pyverilator and kin) are
unmaintained and predate Verilator 5; the shim is ~100 lines of generated C++.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sim.kernel import Kernel
from sim.time import Clock

from . import BindingError, HdlDriver
from .build import BUILD_ROOT, REPO, ensure_verilator_env, locked, to_verilog, waves_requested

__all__ = ["Port", "PortHandle", "DirectModel", "VerilatorAccess", "VerilatorDirectDriver",
           "build"]

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
/* Take one clock edge (the rising edge, then the falling edge's handling) and check the watched
   ports; returns 1 if one changed. */
static inline int step_edge(Sim* s) {{
    V{top}* top = s->top;
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
    return changed;
}}
/* One edge, for a stepper that drives several models in time order. */
int sim_edge(void* h) {{ return step_edge((Sim*)h); }}
/* Run edges up to and including edge `until`; stop after the first edge at which a watched
   port changed. Returns 1 if stopped by a change. */
int sim_run(void* h, uint64_t until) {{
    Sim* s = (Sim*)h;
    while (s->next_edge <= until) {{
        if (step_edge(s)) return 1;
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


@dataclass(frozen=True, eq=False)
class PortHandle:
    """A port of one loaded model: what :class:`VerilatorDirectDriver` ``get``/``set``/``watch``
    take (make it with :meth:`VerilatorAccess.port` or :meth:`DirectModel.handle`)."""

    model: "DirectModel"
    port: Port

    def __repr__(self) -> str:
        return f"<port {self.port.name} of {self.model.name}>"


class DirectModel:
    """A design loaded from its Verilator shared library (see :func:`build`).

    One instance is one simulation (its state starts at reset values); loading the same
    library again gives another, independent simulation.
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
        L.sim_edge.argtypes = [ctypes.c_void_p]
        L.sim_edge.restype = ctypes.c_int
        L.sim_trace.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
        L.sim_trace.restype = ctypes.c_int
        L.sim_mem_read.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_uint32)]
        L.sim_mem_write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_uint32)]
        self.ports = {p.name: p for p in ports}
        self.memories = memories          # name -> (id, depth)
        self.name = lib_path.parent.parent.name
        self._handles: dict[str, PortHandle] = {}
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

    def handle(self, name: str) -> PortHandle:
        """The (one) :class:`PortHandle` of port ``name``."""
        h = self._handles.get(name)
        if h is None:
            h = self._handles[name] = PortHandle(self, self.port(name))
        return h

    def get(self, name: str) -> int:
        return self._get(self._h, self.port(name).index)

    def set(self, name: str, value: int) -> None:
        self.set_port(self.port(name), value)

    def set_port(self, p: Port, value: int) -> None:
        """Drive input ``p`` with ``value`` (checked against its width)."""
        if not p.is_input:
            raise BindingError(f"port {p.name!r} is an output; it cannot be driven")
        if not 0 <= value < 1 << p.width:
            raise ValueError(f"{value!r} does not fit port {p.name!r} ({p.width} bits)")
        self._set(self._h, p.index, value)

    def watch(self, name: str) -> None:
        """Stop :meth:`run` (and the stepper) after an edge at which port ``name`` changed."""
        if self.lib.sim_watch(self._h, self.port(name).index) != 0:
            raise BindingError(f"at most {_MAX_WATCH} ports of {self.name} can be watched")

    @property
    def edge_fn(self) -> int:
        """Address of the shim's one-edge function ``int sim_edge(void*)`` (for the stepper)."""
        return ctypes.cast(self.lib.sim_edge, ctypes.c_void_p).value

    @property
    def sim_handle(self) -> int:
        """The shim's simulation pointer (for the stepper)."""
        if not self._h:
            raise BindingError(f"{self.name} is closed")
        return self._h

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
        (:func:`sim.bindings.build.to_verilog`): it starts at its initial values and is never reset.
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
    with locked(build_dir):
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
            # --build-jobs 0: compile the model's C++ files on every core (a large harness
            # builds in about 11 s instead of 18 here; the library is the same).
            _run(base + ["--exe", "--build", "--build-jobs", "0", str(shim), "-CFLAGS", "-fPIC" + (" -DSERVEROS_TRACE" if waves else "")
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


class VerilatorAccess:
    """The :class:`sim.bindings.access.SignalAccess` of one :class:`DirectModel`.

    Ports are :class:`PortHandle` (one per port, so watches of one port are shared); memories
    are the ones :func:`build` exported, read and written in blocks between edges.
    """

    def __init__(self, model: DirectModel):
        if not isinstance(model, DirectModel):
            raise TypeError(f"model must be a DirectModel, not {model!r}")
        self.model = model

    def port(self, name: str) -> PortHandle:
        return self.model.handle(name)

    def mem_read(self, name: str, start: int, n: int) -> list[int]:
        return self.model.mem_read(name, start, n)

    def mem_write(self, name: str, start: int, words: Sequence[int]) -> None:
        self.model.mem_write(name, start, list(words))


#: The stepper: advances several models' clocks in time order (edge k of model i at
#: k * period[i]); every edge at one instant is taken before the watched ports are judged.
_STEPPER = r"""
#include <stdint.h>
typedef int (*edge_fn)(void*);
/* Take every edge at or before until_ps; stop after the first instant at which a model's
   watched port changed: then *now = that instant and the result is 1. */
int step_run(int n, void* const* sim, const edge_fn* edge, const uint64_t* period,
             uint64_t* next_t, uint64_t until_ps, uint64_t* now) {
    for (;;) {
        uint64_t t = UINT64_MAX;
        for (int i = 0; i < n; i++) if (next_t[i] < t) t = next_t[i];
        if (t > until_ps) return 0;
        int changed = 0;
        for (int i = 0; i < n; i++) {
            if (next_t[i] == t) {
                changed |= edge[i](sim[i]);
                next_t[i] += period[i];
            }
        }
        if (changed) { *now = t; return 1; }
    }
}
"""
_stepper_lib: ctypes.CDLL | None = None


def _stepper(build_root: Path | str = BUILD_ROOT) -> Any:
    """The stepper's ``step_run`` (compiled once into ``build/hdl/_stepper/``, then loaded)."""
    global _stepper_lib
    if _stepper_lib is None:
        build_dir = Path(build_root) / "_stepper"
        key = hashlib.sha1(_STEPPER.encode()).hexdigest()[:12]
        lib = build_dir / f"libstepper-{key}.so"
        with locked(build_dir):
            if not lib.exists():
                src = build_dir / "stepper.c"
                src.write_text(_STEPPER)
                tmp = lib.with_suffix(".tmp")
                proc = subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(src)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"building the Verilator stepper failed:\n{proc.stderr[-2000:]}")
                tmp.replace(lib)
        L = ctypes.CDLL(str(lib))
        u64p = ctypes.POINTER(ctypes.c_uint64)
        L.step_run.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                               ctypes.POINTER(ctypes.c_void_p), u64p, u64p, ctypes.c_uint64, u64p]
        L.step_run.restype = ctypes.c_int
        _stepper_lib = L
    return _stepper_lib.step_run


class VerilatorDirectDriver(HdlDriver):
    """Run a :class:`Kernel` against one or several :class:`DirectModel`, the models owning time.

    Parameters
    ----------
    models : list of (DirectModel, Clock)
        The loaded models, each with the clock of its ``clk`` (the old form
        ``VerilatorDirectDriver(model, kernel, clock)`` is accepted too). Each model starts at
        edge 0.
    kernel : Kernel
        Must be at time 0 (the models start at reset).
    until : int, optional
        Stop at this time (ps) even if tasks are still live.
    waves : path or list of paths, optional
        Where to write the VCD of each model that was built with waves (one path for one
        model, else one entry per model, None for the default
        ``build/hdl/<design>/verilator-direct-waves/dump.vcd``, ``dump-<i>.vcd`` when several
        models share that build).

    Signals are :class:`PortHandle` (from :class:`VerilatorAccess`); with one model a port name
    (``"bus__ack"``) is accepted too.

    Attributes
    ----------
    models : list of DirectModel
    clocks : list of Clock
    model : DirectModel or None
        The model, when there is exactly one.
    wave_files : list of (Path or None)
        The VCD each model writes (None: built without waves).
    waves : Path or None
        With one model, its VCD (``SERVEROS_WAVES=1``).
    """

    def __init__(self, models: Any, kernel: Kernel | None = None, clock: Clock | None = None, *,
                 until: int | None = None, waves: Any = None):
        if isinstance(models, DirectModel):
            if clock is None:
                raise TypeError("VerilatorDirectDriver(model, kernel, clock): the clock is missing")
            models = [(models, clock)]
        elif clock is not None:
            raise TypeError("give the clocks with the models: VerilatorDirectDriver([(model, clock), "
                            "...], kernel)")
        if kernel is None:
            raise TypeError("VerilatorDirectDriver needs the kernel")
        super().__init__(kernel, until=until)
        if kernel.now != 0:
            raise BindingError(f"the kernel must start at time 0, not {kernel.now} ps")
        models = list(models)
        if not models:
            raise ValueError("VerilatorDirectDriver needs at least one (model, clock)")
        for item in models:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], DirectModel)
                    and isinstance(item[1], Clock)):
                raise TypeError(f"each model must be a (DirectModel, Clock) pair, not {item!r}")
            if item[0].next_edge != 0:
                raise BindingError(f"model {item[0].name} has already run; load a fresh one")
        if len({id(m) for m, _ in models}) != len(models):
            raise ValueError("a model is given twice")
        self.models = [m for m, _ in models]
        self.clocks = [c for _, c in models]
        self.model = self.models[0] if len(self.models) == 1 else None
        self._now = 0
        self.wave_files = self._open_waves(waves)
        self.waves: Path | None = self.wave_files[0] if len(self.models) == 1 else None

    def _open_waves(self, waves: Any) -> list[Path | None]:
        n = len(self.models)
        if waves is None or isinstance(waves, (str, Path)):
            if waves is not None and n != 1:
                raise ValueError(f"waves must list one path per model ({n}), not {waves!r}")
            waves = [waves] * n
        waves = list(waves)
        if len(waves) != n:
            raise ValueError(f"waves must list one path per model ({n}), not {len(waves)}")
        out: list[Path | None] = []
        dirs = [m.build_dir for m in self.models]
        for i, (m, c, w) in enumerate(zip(self.models, self.clocks, waves)):
            if not m.waves:
                out.append(None)
                continue
            if w is None:
                w = m.build_dir / ("dump.vcd" if dirs.count(m.build_dir) == 1 else f"dump-{i}.vcd")
            w = Path(w)
            w.parent.mkdir(parents=True, exist_ok=True)
            m.trace(w, c.period)
            out.append(w)
        return out

    def _handle(self, signal: Any) -> PortHandle:
        if isinstance(signal, PortHandle):
            return signal
        if self.model is None:
            raise BindingError(f"with several models a signal must be a PortHandle "
                               f"(VerilatorAccess.port), not {signal!r}")
        return self.model.handle(signal)

    def get(self, signal: Any) -> int:
        h = signal if signal.__class__ is PortHandle else self._handle(signal)
        m = h.model
        return m._get(m._h, h.port.index)

    def set(self, signal: Any, value: int) -> None:
        h = signal if signal.__class__ is PortHandle else self._handle(signal)
        h.model.set_port(h.port, value)

    def watch(self, signal: Any, fn) -> None:
        h = self._handle(signal)
        if not any(h.model is m for m in self.models):
            raise BindingError(f"{h!r} belongs to no model of this driver")
        super().watch(h, fn)

    def now(self) -> int:
        return self._now

    def run(self) -> None:
        """The driver loop; returns when every non-daemon kernel task has finished."""
        for h in self.watched_signals:
            h.model.watch(h.port.name)
        self._start()
        advance = self._advance_one() if len(self.models) == 1 else self._advance_several()
        while not self._finished():
            t = self._deadline()
            if t is None or t > self._now:
                self._now = advance(t)
            self._wake(self._now)

    def _advance_one(self):
        """``advance(t)``: run the one model's clock up to time ``t`` (None: no deadline) or
        to the first edge at which a watched port changed; returns the time reached."""
        m, p = self.model, self.clocks[0].period
        run = m._run
        never = (1 << 63) - 1

        def advance(t: int | None) -> int:
            if run(m._h, never if t is None else t // p):
                return (m.next_edge - 1) * p
            return t
        return advance

    def _advance_several(self):
        """``advance(t)`` for several models: the C stepper takes their edges in time order."""
        n = len(self.models)
        step = _stepper()
        sims = (ctypes.c_void_p * n)(*[m.sim_handle for m in self.models])
        edges = (ctypes.c_void_p * n)(*[m.edge_fn for m in self.models])
        periods = (ctypes.c_uint64 * n)(*[c.period for c in self.clocks])
        next_t = (ctypes.c_uint64 * n)(*([0] * n))
        out = ctypes.c_uint64(0)
        pout = ctypes.byref(out)
        never = (1 << 64) - 1

        def advance(t: int | None) -> int:
            if step(n, sims, edges, periods, next_t, never if t is None else t, pout):
                return out.value
            return t
        return advance
