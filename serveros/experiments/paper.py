"""The paper's experiment: HTTP throughput of Cheetah, Harvest and NCSA (``serveros run``).

Kaashoek et al. (1996) measure a DECstation 5000/125 server answering closed-loop clients on a
10 Mbit/s Ethernet, each client fetching the same document again and again over a new TCP
connection per request:

- **figure a**: throughput against document size (0, 10, 100, 1024 and 10240 bytes), 4 clients;
- **figure b**: throughput against the number of clients (1 to 6), 100-byte document.

Beyond the paper, **figure c** (:mod:`serveros.experiments.figure_c`) runs the same servers
over Ethernet and over the AN2 ATM card, documents of 0 B to 1 MiB and 1 to 16 clients. Its
points carry a ``network``; the paper's figures run on Ethernet. **Figure d**
(:mod:`serveros.experiments.figure_d`) runs Cheetah with ASHs and ILP added one at a time, over
both networks; its points' servers are its own variants, whatever ``servers`` a run names, and
its rows add ``mechanisms``, ``cpu_cycles_per_request`` and
``cpu_cycles_per_request_breakdown``.

Every ``(server, document size, clients)`` combination is a *point*: an independent simulation
(fresh kernel, segment and machines, seeded from the run's seed and the point itself), so points
run in parallel worker processes (each a task on Dask's distributed scheduler,
:mod:`serveros.sweep.engine`: ``serveros run`` is a sweep whose points are the figures') and the
same seed gives the same rows whatever the number of workers. The point shared by both figures
(100 bytes, 4 clients) is simulated once and reported in both. A point may also carry hardware
parameters (``Point.hardware``: :mod:`serveros.hardware`) and Cheetah's ILP pipes
(``Point.pipes``); neither enters its seed, so variants of one point draw the same numbers.

Measurement
-----------
The server machine boots (drivers, then ``await server.start()``), then every client starts at
the same simulated time. The measured interval runs from the first request's start to the last
request's end; the server's CPU accounting and the segment's frame count are reset at its start.

Rows
----
:func:`run_point` returns one row (a dict) per point and figure, with the fields of
:data:`ROW_FIELDS`: ``throughput_rps`` counts the successful requests over the interval;
``first100_rps``/``last100_rps`` are the same rate over the first and over the last
``100 x clients`` completions (the start of the run to the N-th completion; the completion
before the last N to the last one), so a server that slows down as, e.g., TIME_WAIT PCBs pile
up shows it; ``sustained_rps`` is the rate once the TIME_WAIT population has reached its
equilibrium (:func:`sustained_rate`: the completions after the first
:data:`TIME_WAIT_EQUILIBRIUM_PS` of the interval, when the run is long enough; else null, with
the reason and the ``--requests`` it would take in ``sustained_note``); ``goodput_bytes_per_s`` counts
document bytes only; ``cpu_breakdown`` maps each CPU category (:mod:`sim.cpu`, ``idle``
included) to its fraction of the server's cycles over the interval; ``client`` names the
client machines' profile (``Point.client``: ``--client pentium|sparc``) and
``client_cpu_busy_fraction`` / ``client_cpu_breakdown`` are their own CPU, the mean over the
clients; ``packets_per_request`` is
frames delivered on the segment over the interval per request; ``server_stats`` is the server's
``stats()``; ``rtl`` names the device kinds that ran as RTL (``"lance,disk"``, ``""`` for none)
and ``backend`` the HDL simulator they ran on (``"model"`` when none did); ``wall_seconds`` is
the only field that changes between runs with the same seed, and the rows of a run with RTL
devices equal the model run's apart from ``rtl``, ``backend`` and ``wall_seconds``.

Every row also carries figure c's fields (:func:`serveros.experiments.figure_c.figure_c_fields`):
``network``, ``link_payload_bps``, ``goodput_fraction_of_link``, ``cpu_cycles_per_doc_byte`` and
per request what the server's CPU did to document data (``cpu_touched_doc_bytes_per_request``,
``doc_cache_lines_flushed_per_request``, ``doc_pages_mapped_per_request``: :mod:`sw.doc_touch`,
reset with the CPU's accounting at the start of the interval). Over AN2 the ``wire_*`` fields
(a shared Ethernet's) are null and ``packets_per_request`` counts AAL5 PDUs.

Failed points
-------------
A point whose simulation raises (a bug in a simulated server's code that nothing inside the
simulation caught, a stalled simulation) does not stop the run: :func:`run_paper` records it as
a *failed row* (:func:`failed_rows`) holding the point's parameters (``figure`` ... ``point_seed``,
``wall_seconds``), ``status: "failed"``, ``error`` (the exception on one line) and
``traceback``, and goes on with the other points. A point that ran to its end but whose server
counted internal errors (``server_stats["internal_errors"]``: an exception the server caught
itself, answered 500 and logged) keeps its measurements and is marked the same way, with
``internal_errors`` and the logged tracebacks. Rows of points that succeeded carry no
``status`` key, so their rows are what they were before failures were recorded. :func:`failed`
tells the two apart.
"""
from __future__ import annotations

import bisect
import functools
import importlib
import json
import logging
import math
import os
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..simulation import RTL_BACKENDS
from . import figure_c, figure_d

__all__ = ["FIGURES", "KNOWN_FIGURES", "DOC_SIZES", "FIGURE_A_CLIENTS", "FIGURE_B_CLIENTS",
           "FIGURE_B_DOC", "SERVERS", "TEST_SERVERS", "DEFAULT_REQUESTS", "ROW_FIELDS", "BACKENDS", "Point",
           "FAILED", "FAILED_FIELDS", "SWEEP_FIGURE", "PIPES", "ServerUnavailable",
           "server_factory", "point_server_factory", "document_path",
           "document_content", "write_documents", "build_documents_image", "plan_points",
           "paper_machines", "point_waves", "server_rtl", "run_point_or_failed",
           "image_sizes_of", "server_rtl_instances", "run_networks", "resolve_backend",
           "rtl_setup",
           "run_point", "failed_rows", "failed", "run_paper", "write_results",
           "rows_without_wall", "parse_servers", "parse_names", "parse_figures", "sustained_rate",
           "requests_for_sustained",
           "TIME_WAIT_EQUILIBRIUM_PS"]

#: The paper's figures (``--figure all``, ``make run``), and every figure the experiment knows
#: (figures c and d are beyond the paper: :mod:`serveros.experiments.figure_c`,
#: :mod:`serveros.experiments.figure_d`).
FIGURES = ("a", "b")
KNOWN_FIGURES = (*FIGURES, figure_c.FIGURE, figure_d.FIGURE)
#: Figure a's document sizes (bytes) and clients.
DOC_SIZES = (0, 10, 100, 1024, 10240)
FIGURE_A_CLIENTS = 4
#: Figure b's document and client counts.
FIGURE_B_DOC = 100
FIGURE_B_CLIENTS = (1, 2, 3, 4, 5, 6)
#: The paper's servers, and the module and function each is built by (imported lazily).
SERVERS = {
    "cheetah": ("sw.cheetah", "make_server"),
    "harvest": ("sw.ultrix", "make_harvest"),
    "ncsa": ("sw.ultrix", "make_ncsa"),
}
#: Servers for tests and smoke runs only (never in the default run).
TEST_SERVERS = {"static": ("sw.clients.testserver", "make_server")}
DEFAULT_REQUESTS = 1000
#: ``backend`` of a point: ``model`` (every device its model) or the HDL simulator of its RTL
#: devices.
BACKENDS = ("model", *RTL_BACKENDS)
#: Stands for the documents' image where only the machines' devices matter (validation).
_IMAGE_PLACEHOLDER = "documents.img"

ROW_FIELDS = ("figure", "server", "doc_bytes", "clients", "requests_per_client", "requests",
              "ok", "failed", "timeouts", "throughput_rps", "first100_rps", "last100_rps",
              "sustained_rps", "sustained_note", "goodput_bytes_per_s", "mean_latency_ms", "sim_seconds", "wall_seconds",
              "cpu_breakdown", "client", "client_cpu_busy_fraction", "client_cpu_breakdown",
              "packets_per_request", "rtl", "backend", "seed", "point_seed",
              "server_stats", "wire_collisions", "wire_excessive_collisions",
              "wire_busy_fraction", "network", "link_payload_bps", "goodput_fraction_of_link",
              "cpu_cycles_per_doc_byte", *figure_c.TOUCH_FIELDS.values())
#: ``status`` of a failed point's rows, and the fields a failed row adds (results.csv gets
#: these columns only when some point failed; good points' rows are empty there).
FAILED = "failed"
FAILED_FIELDS = ("status", "error", "internal_errors", "traceback")
#: When the TIME_WAIT population reaches its equilibrium: one TIME_WAIT lifetime after the
#: interval starts, 2 MSL = 60 s with 4.3BSD's TCPTV_MSL of 30 s (netinet/tcp_timer.h; the
#: Ultrix stack's ``ultrix_tcp_config`` and the library stack's ``TcpConfig`` default). From
#: then on connections leave TIME_WAIT as fast as they enter it, so the list a linear PCB
#: lookup walks stops growing.
TIME_WAIT_EQUILIBRIUM_PS = 60 * 10**12
#: Tracebacks of a server's internal errors kept in a row (the count is always whole).
MAX_TRACEBACKS = 3
#: ``figure`` of the points of a sweep (:mod:`serveros.sweep`): like figure c's, their
#: clients' watchdog grows with the document's transfer (:func:`figure_c.request_timeout_ps`).
SWEEP_FIGURE = "sweep"
#: Cheetah's ILP pipes (``Point.pipes``): the ``ilp`` (software: the CPU's fused loops) and
#: ``hwilp`` (the card's hardware pipes) switches of :class:`sw.cheetah.CheetahConfig` each
#: value sets.
PIPES = {"none": {"ilp": False, "hwilp": False}, "sw": {"ilp": True, "hwilp": False},
         "hw": {"ilp": False, "hwilp": True}}


log = logging.getLogger(__name__)


class ServerUnavailable(RuntimeError):
    """A server's constructor cannot be imported (its package is not written yet)."""


def server_factory(name: str) -> Callable:
    """The constructor ``f(host) -> HttpServer`` of server ``name`` (imported now).

    Raises
    ------
    ValueError
        For an unknown server name.
    ServerUnavailable
        If the server's module or function does not exist.
    """
    base, _, stage_name = name.partition("@")
    if stage_name:
        return _cheetah_stage_factory(name, base, stage_name)
    spec = SERVERS.get(name) or TEST_SERVERS.get(name)
    if spec is None:
        raise ValueError(f"unknown server {name!r}; known: {', '.join([*SERVERS, *TEST_SERVERS])}")
    module, func = spec
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ServerUnavailable(f"server {name!r} is not available: cannot import {module} "
                                f"({e})") from e
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise ServerUnavailable(f"server {name!r} is not available: {module} has no {func}()")
    return fn


def _cheetah_stage_factory(name: str, base: str, stage_name: str) -> Callable:
    """``cheetah@STAGE``: Cheetah built at one of its stages (the paper's,
    ``sw.cheetah.STAGES``, or one beyond it, ``sw.cheetah.LATER_STAGES``: ``cheetah@+ash``);
    ``cheetah@no-SWITCH``: the full Cheetah with one specialization switched off
    (``sw.cheetah.variant``)."""
    if base != "cheetah":
        raise ValueError(f"only cheetah has stages ({name!r}): use cheetah@STAGE")
    try:
        cheetah = importlib.import_module("sw.cheetah")
    except ImportError as e:
        raise ServerUnavailable(f"server {name!r} is not available: cannot import sw.cheetah "
                                f"({e})") from e
    try:
        config = cheetah.variant(stage_name)
    except ValueError as e:
        raise ValueError(f"{e} (in {name!r})") from None
    return functools.partial(cheetah.make_server, config=config)


def point_server_factory(server: str, pipes: str | None = None) -> Callable:
    """The constructor of ``server`` (:func:`server_factory`) with Cheetah's ``ilp`` and
    ``hwilp`` switches set as ``pipes`` says (:data:`PIPES`; ``None``: as ``server`` says).

    Raises
    ------
    ValueError
        For an unknown server or pipes value, pipes on a server other than Cheetah, or
        ``"hw"`` while :class:`sw.cheetah.CheetahConfig` has no ``hwilp`` switch.
    ServerUnavailable
        If the server's module is missing.
    """
    factory = server_factory(server)
    if pipes is None:
        return factory
    if pipes not in PIPES:
        raise ValueError(f"pipes must be one of {', '.join(PIPES)}, not {pipes!r}")
    if base_server(server) != "cheetah":
        raise ValueError(f"pipes apply to Cheetah only, not to {server!r}")
    import dataclasses

    cheetah = importlib.import_module("sw.cheetah")
    _, _, stage_name = server.partition("@")
    config = cheetah.variant(stage_name) if stage_name else cheetah.CheetahConfig()
    have = {f.name for f in dataclasses.fields(config)}
    switches = PIPES[pipes]
    missing = [k for k, on in switches.items() if on and k not in have]
    if missing:
        raise ValueError(f"pipes {pipes!r} needs Cheetah's {', '.join(missing)} switch, which "
                         f"sw.cheetah does not have yet")
    config = dataclasses.replace(config, **{k: v for k, v in switches.items() if k in have})
    return functools.partial(cheetah.make_server, config=config)


def base_server(name: str) -> str:
    """The machine a server runs on is chosen by its base name: ``cheetah@libos`` -> ``cheetah``."""
    return name.partition("@")[0]


def parse_servers(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"cheetah,ncsa"`` (or a list) as a tuple of known server names, in the given order.

    Raises
    ------
    ValueError
        For an empty list, an unknown name or a repeated one.
    """
    def check(s: str) -> None:
        if "@" in s:
            server_factory(s)               # validates the stage (raises ValueError)
        elif s not in SERVERS and s not in TEST_SERVERS:
            raise ValueError(f"unknown server {s!r}; known: {', '.join(SERVERS)} "
                             f"(and cheetah@STAGE for Cheetah's stages)")
    return parse_names(text, "server", check)


def parse_names(text: str | Iterable[str], what: str, check: Callable[[str], None]
                ) -> tuple[str, ...]:
    """``"x,y"`` (or a list) as a tuple of stripped non-empty names, in the given order, each
    passed to ``check`` (which raises ``ValueError`` for a bad one).

    Raises
    ------
    ValueError
        For no name (``no <what> given``), a bad one, or one named twice.
    """
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    names = [s for s in names if s]
    if not names:
        raise ValueError(f"no {what} given in {text!r}")
    for s in names:
        check(s)
    if len(set(names)) != len(names):
        raise ValueError(f"a {what} is named twice in {text!r}")
    return tuple(names)


def parse_figures(text: str) -> tuple[str, ...]:
    """``"a"``, ``"b"``, ``"c"``, ``"d"``, a comma-separated list of them (``"a,c"``) or
    ``"all"`` (the paper's figures a and b) as a tuple of figure names in
    :data:`KNOWN_FIGURES`' order.

    Raises
    ------
    ValueError
        For anything else (an unknown figure, one named twice, none).
    """
    if text == "all":
        return FIGURES
    names = [s.strip() for s in text.split(",") if s.strip()] if isinstance(text, str) else []
    if not names or any(n not in KNOWN_FIGURES for n in names) or len(set(names)) != len(names):
        raise ValueError(f"figure must be {', '.join(KNOWN_FIGURES)}, a list of them (a,c) or "
                         f"all (a and b), not {text!r}")
    return tuple(f for f in KNOWN_FIGURES if f in names)


# -- documents ------------------------------------------------------------------------------------
_PATTERN = bytes(range(32, 127)) + b"\n"


def document_path(size: int) -> str:
    """The URL path (and file-system path) of the ``size``-byte document: ``/doc<size>``."""
    return f"/doc{size}"


def document_content(size: int) -> bytes:
    """The ``size`` bytes of the document: printable ASCII, deterministic."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"document size must be an integer >= 0, not {size!r}")
    reps = size // len(_PATTERN) + 1
    return (_PATTERN * reps)[:size]


def write_documents(host_dir: str | os.PathLike, sizes: Iterable[int] = DOC_SIZES) -> list[Path]:
    """Write ``/doc<N>`` for every size into ``host_dir``; returns the files."""
    d = Path(host_dir)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for n in sizes:
        p = d / document_path(n).lstrip("/")
        p.write_bytes(document_content(n))
        out.append(p)
    return out


def build_documents_image(image_path: str | os.PathLike, sizes: Iterable[int] = DOC_SIZES) -> Path:
    """A disk image holding the documents (256 bytes of application inode fields each, for
    Cheetah's precomputed headers and checksums). Returns the image's path."""
    from hw.disk.image import DiskImage
    from sw.libos.fs.build import build_image

    image_path = Path(image_path)
    with tempfile.TemporaryDirectory(prefix="serveros-docs-") as tmp:
        write_documents(tmp, sizes)
        build_image(tmp, image_path, extra_size=256, overwrite=True,
                    image_factory=lambda p, n, bs: DiskImage.create(p, n, bs, overwrite=True))
    return image_path


# -- points ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One simulation: ``server`` answering ``clients`` clients that each fetch the
    ``doc_bytes`` document ``requests`` times; ``figures`` are the figures it belongs to.

    ``rtl`` are the device kinds that run as RTL (on the HDL simulator ``backend``); with none,
    ``backend`` is ``"model"``. For compatibility an HDL ``backend`` with no ``rtl`` means the
    LANCE card's RTL (``rtl=("lance",)``), as ``--backend verilator`` did before ``--rtl``.
    ``network`` is the network the machines share (:data:`figure_c.NETWORKS`); it does not
    enter :attr:`point_seed`, so a point over Ethernet and over AN2 draw the same numbers.

    Raises
    ------
    ValueError
        For RTL devices with the ``model`` backend, or an unknown network.
    """

    figures: tuple[str, ...]
    server: str
    doc_bytes: int
    clients: int
    requests: int
    backend: str
    seed: int
    #: The client machines' kind (:data:`serveros.machines.CLIENT_PROFILES`).
    client: str = "pentium"
    #: The device kinds that run as RTL (:func:`serveros.simulation.parse_rtl`).
    rtl: tuple[str, ...] = ()
    #: The network the machines share (:data:`figure_c.NETWORKS`).
    network: str = figure_c.DEFAULT_NETWORK
    #: The server machine's hardware parameters that differ from today's machine, as sorted
    #: ``(name, value)`` pairs (:func:`serveros.hardware.Hardware.as_params`); ``()`` is
    #: today's machine.
    hardware: tuple[tuple[str, object], ...] = ()
    #: Cheetah's ILP pipes (:data:`PIPES`): ``None`` leaves the server's switches as its
    #: name says; ``"none"``, ``"sw"`` or ``"hw"`` sets the ``ilp`` and ``hwilp`` switches.
    pipes: str | None = None

    def __post_init__(self) -> None:
        if self.network not in figure_c.NETWORKS:
            raise ValueError(f"network must be one of {', '.join(figure_c.NETWORKS)}, not "
                             f"{self.network!r}")
        if self.pipes is not None:
            if self.pipes not in PIPES:
                raise ValueError(f"pipes must be one of {', '.join(PIPES)}, not {self.pipes!r}")
            if base_server(self.server) != "cheetah":
                raise ValueError(f"pipes apply to Cheetah only, not to {self.server!r}")
        hw = tuple(self.hardware)
        if any(not isinstance(p, tuple) or len(p) != 2 or not isinstance(p[0], str)
               for p in hw) or list(hw) != sorted(hw, key=lambda p: p[0]):
            raise ValueError(f"hardware must be sorted (name, value) pairs, not {self.hardware!r}")
        object.__setattr__(self, "hardware", hw)
        rtl = tuple(self.rtl)
        if not rtl and self.backend != "model":
            rtl = ("lance",)
        if rtl and self.backend == "model":
            raise ValueError(f"backend 'model' runs no RTL, but rtl is {','.join(rtl)!r}: "
                             f"choose an HDL simulator ({', '.join(RTL_BACKENDS)})")
        object.__setattr__(self, "rtl", rtl)

    @property
    def point_seed(self) -> int:
        """The simulation's seed: the run's seed mixed with what the point is. Figure d's
        variants draw the paper Cheetah's numbers (the server's base name enters the key), so
        they differ from each other by their mechanisms, not by their random draws, and the
        baseline's seed is figure c's Cheetah point's."""
        server = base_server(self.server) if self.figures == (figure_d.FIGURE,) else self.server
        key = f"{server}/{self.doc_bytes}/{self.clients}/{self.requests}".encode()
        return (self.seed * 1_000_003 + zlib.crc32(key)) % (1 << 31)

    @property
    def _names_network(self) -> bool:
        """Whether the point's names say its network (figure c's and d's points and any not
        on Ethernet: a figure-c point may equal a paper one but for its network)."""
        return (bool({figure_c.FIGURE, figure_d.FIGURE} & set(self.figures))
                or self.network != figure_c.DEFAULT_NETWORK)

    @property
    def _variation(self) -> list[str]:
        """``name=value`` of the point's pipes and hardware parameters (none: today's)."""
        pipes = [f"pipes={self.pipes}"] if self.pipes is not None else []
        return pipes + [f"{k}={v}" for k, v in self.hardware]

    @property
    def label(self) -> str:
        net = f" {self.network}" if self._names_network else ""
        fig = f" (figure {figure_d.FIGURE})" if self.figures == (figure_d.FIGURE,) else ""
        var = f" [{' '.join(self._variation)}]" if self._variation else ""
        return f"{self.server} {self.doc_bytes} B x{self.clients}{net}{var}{fig}"

    @property
    def file_stem(self) -> str:
        """The point as a file name: ``cheetah@posix_100B_x4`` (``..._x4_an2`` in figure c,
        ``..._x8_an2_d`` in figure d, whose baseline may equal a figure-c point)."""
        net = f"_{self.network}" if self._names_network else ""
        fig = f"_{figure_d.FIGURE}" if self.figures == (figure_d.FIGURE,) else ""
        var = "".join(f"_{v}" for v in self._variation)
        return f"{self.server}_{self.doc_bytes}B_x{self.clients}{net}{var}{fig}"


def _check_int(name: str, v, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")


def plan_points(figures: Iterable[str] = FIGURES, servers: Iterable[str] = tuple(SERVERS), *,
                requests: int = DEFAULT_REQUESTS, backend: str | None = None, seed: int = 1,
                doc_sizes: Iterable[int] = DOC_SIZES,
                clients: Iterable[int] = FIGURE_B_CLIENTS,
                client: str = "pentium", rtl: str | Iterable[str] = (),
                networks: str | Iterable[str] = figure_c.NETWORKS,
                combos_c: Iterable[tuple[int, int]] | None = None,
                combos_d: Iterable[tuple[int, int]] | None = None) -> list[Point]:
    """Every point of ``figures`` for ``servers``, each simulated once (figure a's 100-byte
    4-client point is also figure b's). Ordered by server, then figure a, then figure b, then
    figure c by network; figure d's points last, by variant, network and pair.

    Figure c's points are its ``(document bytes, clients)`` pairs ``combos_c`` (default
    :func:`figure_c.figure_c_combos`) on each of ``networks``; ``doc_sizes`` and ``clients``
    are figures a's and b's. Figure c's points are never shared with the paper's (they name
    their network and read another documents' image). Figure d's points are every measured
    variant of :data:`figure_d.VARIANTS` (:func:`figure_d.measured_variants`, whatever
    ``servers`` says) at its pairs ``combos_d`` (default :func:`figure_d.figure_d_combos`) on
    each of ``networks``; they are never shared with another figure's.

    ``rtl`` names the device kinds of the server machine that run as RTL (``"lance,disk"``),
    on the HDL simulator ``backend`` (``verilator``, the default with RTL, or ``amaranth``);
    ``backend`` ``model`` (the default without RTL) runs every device as its model, and an HDL
    ``backend`` with no ``rtl`` runs the LANCE card's RTL (:class:`Point`).

    Raises
    ------
    ValueError
        For an unknown figure, server, backend, device kind (or one the server machine does
        not have), client kind or network, or a bad number.
    """
    from ..machines import CLIENT_KINDS

    figures = tuple(figures)
    for f in figures:
        if f not in KNOWN_FIGURES:
            raise ValueError(f"figure must be one of {', '.join(KNOWN_FIGURES)}, not {f!r}")
    networks = figure_c.parse_networks(networks)
    combos_c = list(figure_c.figure_c_combos() if combos_c is None else combos_c)
    combos_d = list(figure_d.figure_d_combos() if combos_d is None else combos_d)
    for fig, pairs in (("c", combos_c), ("d", combos_d)):
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValueError(f"a figure-{fig} point is a (document bytes, clients) pair, "
                                 f"not {pair!r}")
    servers = parse_servers(list(servers))
    _check_int("requests", requests, 1)
    _check_int("seed", seed, 0)
    rtl, backend = rtl_setup(servers, rtl, backend, run_networks(figures, networks))
    if client not in CLIENT_KINDS:
        raise ValueError(f"client must be one of {', '.join(CLIENT_KINDS)}, not {client!r}")
    doc_sizes, clients = tuple(doc_sizes), tuple(clients)
    for n in (*doc_sizes, *(n for n, _ in (*combos_c, *combos_d))):
        _check_int("document size", n, 0)
    for c in (*clients, *(c for _, c in (*combos_c, *combos_d))):
        _check_int("client count", c, 1)
        if c > 200:
            raise ValueError(f"client count must be at most 200, not {c!r}")
    points: list[Point] = []
    for server in servers:
        combos: dict[tuple[int, int], list[str]] = {}
        if "a" in figures:
            for n in doc_sizes:
                combos.setdefault((n, FIGURE_A_CLIENTS), []).append("a")
        if "b" in figures:
            for c in clients:
                combos.setdefault((FIGURE_B_DOC, c), []).append("b")
        prtl, pbackend = _point_rtl(server, figure_c.DEFAULT_NETWORK, rtl, backend)
        for (n, c), figs in combos.items():
            points.append(Point(tuple(figs), server, n, c, requests, pbackend, seed, client,
                                prtl))
        if figure_c.FIGURE in figures:
            for network in networks:
                prtl, pbackend = _point_rtl(server, network, rtl, backend)
                for n, c in combos_c:
                    points.append(Point((figure_c.FIGURE,), server, n, c, requests, pbackend,
                                        seed, client, prtl, network))
    if figure_d.FIGURE in figures:
        for v in figure_d.measured_variants():
            for network in networks:
                prtl, pbackend = _point_rtl(v.spec, network, rtl, backend)
                for n, c in combos_d:
                    points.append(Point((figure_d.FIGURE,), v.spec, n, c, requests, pbackend,
                                        seed, client, prtl, network))
    return points


def server_rtl_instances(specs: Sequence, rtl: Iterable[str]) -> list[str]:
    """The RTL instance names (``server_an0``) of the devices of the server machine
    (``specs[0]``) whose kind is in ``rtl``. ``--rtl`` names device kinds of the server: the
    clients' cards (on ATM, AN2 cards of their own) stay models, so a run measures the one
    server card's RTL."""
    from ..simulation import Simulation

    kinds = set(rtl)
    return [Simulation.instance(specs[0], d) for d in specs[0].devices if d.kind in kinds]


def server_rtl(servers: Iterable[str], rtl: str | Iterable[str],
               networks: Iterable[str] = (figure_c.DEFAULT_NETWORK,)) -> tuple[str, ...]:
    """``rtl`` (``"lance,disk"`` or a list of device kinds) as a tuple in the device kinds'
    order, every kind one the server machine of each of ``servers`` has on one of
    ``networks`` at least (:func:`run_networks`; ``an2`` is the AN2 server's card).

    Raises
    ------
    ValueError
        For an unknown device kind, one named twice, or one a server machine lacks.
    """
    from ..simulation import check_rtl, parse_rtl
    kinds = parse_rtl(rtl)
    for server in servers:
        check_rtl(kinds, [_server_machine(server, n) for n in networks])
    return kinds


def _server_machine(server: str, network: str):
    """The server machine of ``server`` on ``network`` (its devices are what matter)."""
    return paper_machines(server, 0, "pentium", _IMAGE_PLACEHOLDER, 0, network)[0]


def run_networks(figures: Iterable[str], networks: Iterable[str]) -> tuple[str, ...]:
    """The networks a run of ``figures`` uses: Ethernet for the paper's figures, ``networks``
    for figures c and d."""
    figures = tuple(figures)
    used = {figure_c.DEFAULT_NETWORK} if set(figures) & set(FIGURES) else set()
    if {figure_c.FIGURE, figure_d.FIGURE} & set(figures):
        used |= set(networks)
    return tuple(n for n in figure_c.NETWORKS if n in used)


def _point_rtl(server: str, network: str, rtl: tuple[str, ...],
               backend: str) -> tuple[tuple[str, ...], str]:
    """A point's ``(rtl, backend)``: the run's RTL kinds its server machine has on its
    network (``--rtl an2,lance`` in figure c runs the AN2 card's RTL over AN2 and the LANCE
    card's over Ethernet), and ``model`` for a point left with none."""
    if not rtl:
        return rtl, backend
    kinds = _server_machine(server, network).kinds
    mine = tuple(k for k in rtl if k in kinds)
    return mine, (backend if mine else "model")


def resolve_backend(backend: str | None, rtl: tuple[str, ...]) -> str:
    """The points' ``backend``: the HDL simulator of the ``rtl`` devices (default
    ``verilator``), or ``model`` when there is none (``None`` chooses).

    Raises
    ------
    ValueError
        For an unknown backend, icarus (cocotb-only), or ``model`` with RTL devices.
    """
    if backend == "icarus":
        raise ValueError("backend 'icarus' cannot run the experiment: the card's RTL runs on "
                         "Icarus only inside the cocotb testbenches (tests/hw), one cocotb "
                         "process per test; use --backend verilator (or amaranth) for the RTL "
                         "in the loop")
    if backend is None:
        return RTL_BACKENDS[0] if rtl else "model"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if rtl and backend == "model":
        raise ValueError(f"backend 'model' runs no RTL: drop --rtl {','.join(rtl)} or choose "
                         f"{' or '.join(RTL_BACKENDS)}")
    return backend


def rtl_setup(servers: Iterable[str], rtl: str | Iterable[str] = (),
              backend: str | None = None,
              networks: Iterable[str] = (figure_c.DEFAULT_NETWORK,)
              ) -> tuple[tuple[str, ...], str]:
    """``(rtl, backend)`` of a run of ``servers`` on ``networks``: :func:`server_rtl` and
    :func:`resolve_backend`, and an HDL ``backend`` with no ``rtl`` meaning the LANCE card's
    RTL (as :class:`Point` does).

    Raises
    ------
    ValueError
        As :func:`server_rtl` and :func:`resolve_backend`.
    """
    rtl = server_rtl(servers, rtl, networks)
    backend = resolve_backend(backend, rtl)
    return (rtl or (("lance",) if backend != "model" else ())), backend


def paper_machines(server: str, clients: int, client: str, image: str | os.PathLike,
                   seed: int, network: str = figure_c.DEFAULT_NETWORK) -> list:
    """The machines of a point (:class:`serveros.machines.MachineSpec`): the DECstation that
    runs ``server`` (its disk holding ``image``; its software seeded ``seed``) and ``clients``
    client workstations of kind ``client`` (client ``i`` seeded ``seed + 1 + i``), with the
    cards of ``network``."""
    from ..machines import client_spec, server_spec
    return [server_spec(base_server(server), image, seed=seed, network=network,
                        clients=clients),
            *(client_spec(i, client, seed=seed + 1 + i, network=network)
              for i in range(clients))]


def _window_rates(records: list, n: int) -> tuple[float, float]:
    """Throughput over the first and over the last ``n`` successful completions of
    ``records``: ``n`` over the time from the first start to the ``n``-th completion, and over
    the time from the completion before the last ``n`` to the last one."""
    ends = sorted(r.end for r in records if r.ok)
    if not ends:
        return 0.0, 0.0
    n = min(n, len(ends))
    t0 = min(r.start for r in records)
    first = ends[n - 1] - t0
    last = ends[-1] - (ends[-n - 1] if len(ends) > n else t0)
    return (n / (first / 1e12) if first > 0 else 0.0, n / (last / 1e12) if last > 0 else 0.0)


def requests_for_sustained(rate_rps: float, clients: int,
                           equilibrium_ps: int = TIME_WAIT_EQUILIBRIUM_PS) -> int:
    """About how many requests per client a run at ``rate_rps`` needs for a sustained rate:
    enough to pass the equilibrium and then fill the ``100 x clients`` window."""
    return math.ceil((equilibrium_ps / 1e12 * rate_rps + 100 * clients) / clients)


def sustained_rate(records: list, clients: int,
                   equilibrium_ps: int = TIME_WAIT_EQUILIBRIUM_PS) -> tuple[float | None, str | None]:
    """The rate once the TIME_WAIT population is in equilibrium: successful completions after
    ``equilibrium_ps`` from the first request's start, over the time from that instant to the
    last completion. ``(rate, None)`` when at least ``100 x clients`` completions (the
    ``last100`` window) fall after it; ``(None, reason)`` otherwise, the reason saying how
    long the run was and about how many requests per client a long enough run takes at this
    run's rate."""
    window = 100 * clients
    ok_ends = sorted(r.end for r in records if r.ok)
    if not ok_ends:
        return None, "no request completed"
    t0 = min(r.start for r in records)
    t_eq = t0 + equilibrium_ps
    after = len(ok_ends) - bisect.bisect_right(ok_ends, t_eq)
    if after >= window and ok_ends[-1] > t_eq:
        return after / ((ok_ends[-1] - t_eq) / 1e12), None
    span_s = (ok_ends[-1] - t0) / 1e12
    rate = len(ok_ends) / span_s if span_s > 0 else 0.0
    need = requests_for_sustained(rate, clients, equilibrium_ps)
    return None, (f"run too short for the TIME_WAIT equilibrium: {span_s:.1f} s simulated, "
                  f"{after} completions after the first {equilibrium_ps / 1e12:.0f} s "
                  f"(2 MSL) where {window} are needed; at this run's {rate:,.0f} req/s that is "
                  f"about --requests {need}" if rate > 0 else "no time passed")


def run_point(point: Point, image_path: str | os.PathLike, *,
              pcap_path: str | os.PathLike | None = None,
              waves_dir: str | os.PathLike | None = None) -> list[dict]:
    """Simulate ``point`` with the documents of ``image_path``; returns its rows (one per
    figure it belongs to, the same apart from ``figure``). The machines are
    :func:`paper_machines`, built by :class:`serveros.simulation.Simulation` with the point's
    ``rtl`` device kinds as RTL on its ``backend``. With RTL devices, ``SERVEROS_WAVES=1`` and
    ``waves_dir``, each RTL device's VCD goes to ``waves_dir/<Point.file_stem>/<instance>.vcd``
    (:func:`point_waves`).

    A server that counted internal errors (``stats()["internal_errors"]``) gives rows marked
    failed (see the module's docstring), with the tracebacks the simulated software logged
    with its errors (``logging`` records of ``sw.*`` carrying ``exc_info``).

    Raises
    ------
    ServerUnavailable
        If the server's package is not there.
    RuntimeError
        If the simulation stops before every client is done.
    """
    from sim.cpu import IDLE
    from sim.kernel import Kernel
    from sim.media.pcap import PcapNgWriter
    from sw.clients.http import HttpClient

    from ..machines import boot, server_ip
    from ..simulation import Simulation

    factory = point_server_factory(point.server, point.pipes)
    wall0 = time.perf_counter()
    pseed = point.point_seed
    k = Kernel()
    writer = PcapNgWriter(str(pcap_path)) if pcap_path else None
    try:
        specs = paper_machines(point.server, point.clients, point.client, image_path, pseed,
                               point.network)
        if point.hardware:
            from ..hardware import Hardware, apply_hardware
            specs = apply_hardware(specs, Hardware.from_params(dict(point.hardware)))
        net = figure_c.network_media(k, specs, point.network, seed=pseed, pcap=writer)
        sim = Simulation(k, specs, media=net.media, rtl=server_rtl_instances(specs, point.rtl),
                         backend=point.backend if point.rtl else RTL_BACKENDS[0],
                         waves_dir=point_waves(point, waves_dir) if waves_dir else None)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    host, *clients = sim.hosts.values()
    net.connect([host, *clients])
    path = document_path(point.doc_bytes)
    # Figure c's documents reach 1 MiB over a shared link: the clients' watchdog grows with
    # the transfer (figure_c.request_timeout_ps), figure d's as figure c's; the paper's
    # figures keep the client's default.
    timeout = ({"timeout_ps": figure_c.request_timeout_ps(point.network, point.doc_bytes,
                                                           point.clients)}
               if {figure_c.FIGURE, figure_d.FIGURE, SWEEP_FIGURE} & set(point.figures)
               else {})
    marks: dict = {}

    async def main() -> None:
        await boot(host)
        server = factory(host)
        await server.start()
        for c in clients:
            await boot(c)               # binds an AN2 client's card; Ethernet clients: nothing
        marks["server"] = server
        host.cpu.reset_stats()
        host.doc_touch.reset()
        marks["t0"] = k.now
        marks["net0"] = net.counters()
        http = [HttpClient(c, server_ip(), path, point.requests, **timeout) for c in clients]
        tasks = [k.spawn(h.run(), name=f"{h.name}") for h in http]
        for t in tasks:
            await t
        marks["t1"] = k.now
        marks["net1"] = net.counters()
        marks["touch"] = host.doc_touch.as_dict()
        marks["cpu"] = host.cpu.report()
        marks["http"] = http
        marks["clients_cpu"] = [h.cpu_summary() for h in http]
        # JSON-clean (e.g. integer status keys become strings), so rows equal their JSON.
        marks["stats"] = json.loads(json.dumps(server.stats(), default=str))

    errors = _ErrorLog()
    sw_log = logging.getLogger("sw")
    sw_log.addHandler(errors)
    try:
        task = k.spawn(main(), name="experiment")
        sim.run()
        if not task.done:
            raise RuntimeError(f"{point.label}: the simulation stopped before every client "
                               f"was done (t={k.now} ps)")
        if task.exception is not None:
            raise task.exception
    finally:
        sw_log.removeHandler(errors)
        if writer is not None:
            writer.close()
        sim.close()
    wall = time.perf_counter() - wall0
    http = marks["http"]
    records = [r for h in http for r in h.records]
    ok = [r for r in records if r.ok]
    t_first = min(r.start for r in records)
    t_last = max(r.end for r in records)
    span_s = (t_last - t_first) / 1e12
    first100, last100 = _window_rates(records, 100 * point.clients)
    sustained, sustained_note = sustained_rate(records, point.clients)
    cpu = marks["cpu"]
    breakdown = {c: s.fraction for c, s in sorted(cpu.by_category.items())}
    ccpu = marks["clients_cpu"]
    client_breakdown = {c: sum(x["client_cpu_breakdown"].get(c, 0.0) for x in ccpu) / len(ccpu)
                        for c in sorted({c for x in ccpu for c in x["client_cpu_breakdown"]})}
    net0, net1 = marks["net0"], marks["net1"]
    frames = net1["frames"] - net0["frames"]
    wire = {f: (net1[f] - net0[f] if f in net1 else None)
            for f in ("collisions", "excessive_collisions", "busy_ps")}
    doc_bytes = sum(r.body_bytes for r in ok)
    goodput = doc_bytes / span_s if span_s > 0 else 0.0
    busy = sum(s.cycles for c, s in cpu.by_category.items() if c != IDLE)
    row = {
        "figure": None, "server": point.server, "doc_bytes": point.doc_bytes,
        "clients": point.clients, "requests_per_client": point.requests,
        "requests": len(records), "ok": len(ok), "failed": len(records) - len(ok),
        "timeouts": sum(h.stats.timeouts for h in http),
        "throughput_rps": len(ok) / span_s if span_s > 0 else 0.0,
        "first100_rps": first100, "last100_rps": last100,
        "sustained_rps": sustained, "sustained_note": sustained_note,
        "goodput_bytes_per_s": goodput,
        "mean_latency_ms": (sum(r.end - r.start for r in ok) / len(ok) / 1e9) if ok else 0.0,
        "sim_seconds": span_s, "wall_seconds": wall, "cpu_breakdown": breakdown,
        # The client machines' own CPU (mean over the clients): they are part of every
        # request's latency.
        "client": ccpu[0]["client"],
        "client_cpu_busy_fraction": sum(x["client_cpu_busy_fraction"] for x in ccpu) / len(ccpu),
        "client_cpu_breakdown": client_breakdown,
        "packets_per_request": frames / len(records) if records else 0.0,
        "rtl": ",".join(point.rtl), "backend": point.backend, "seed": point.seed,
        "point_seed": pseed,
        "server_stats": marks["stats"],
        # The shared wire over the interval: collision episodes, frames abandoned after 16
        # attempts (each costs its sender a TCP retransmission timeout) and the busy fraction.
        # Null over AN2: each machine has a link of its own, there is no shared wire.
        "wire_collisions": wire["collisions"],
        "wire_excessive_collisions": wire["excessive_collisions"],
        "wire_busy_fraction": (None if wire["busy_ps"] is None else
                               wire["busy_ps"] / (span_s * 1e12) if span_s > 0 else 0.0),
        **figure_c.figure_c_fields(network=point.network, ok_requests=len(ok),
                                   doc_bytes_served=doc_bytes, goodput_bytes_per_s=goodput,
                                   busy_cycles=busy, touch=marks["touch"]),
        **net.row_extras(net0, net1),
    }
    if figure_d.FIGURE in point.figures:
        row.update(figure_d.figure_d_fields(
            server=point.server, ok_requests=len(ok), idle=IDLE,
            cycles_by_category={c: s.cycles for c, s in cpu.by_category.items()}))
    internal = marks["stats"].get("internal_errors", 0)
    if isinstance(internal, int) and not isinstance(internal, bool) and internal > 0:
        row.update(status=FAILED, internal_errors=internal, traceback="\n".join(errors.tracebacks),
                   error=f"the server counted {internal} internal error(s): exceptions in its "
                         f"own code that it caught and logged")
    return [dict(row, figure=f) for f in point.figures]


def point_waves(point: Point, waves_dir: str | os.PathLike) -> Path:
    """The folder of ``point``'s waveforms in ``waves_dir``: ``<Point.file_stem>/``, one
    ``<instance>.vcd`` per RTL device (``server_le0.vcd``), so parallel points never write the
    same file."""
    return Path(waves_dir) / point.file_stem


class _ErrorLog(logging.Handler):
    """Keeps the first :data:`MAX_TRACEBACKS` errors the simulated software logs with a
    traceback (``log.error(..., exc_info=True)``), message first."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and len(self.tracebacks) < MAX_TRACEBACKS:
            self.tracebacks.append(f"{record.name}: {record.getMessage()}\n"
                                   + "".join(traceback.format_exception(*record.exc_info)))


def _client_profile(kind: str) -> str:
    """The profile name of client machines of ``kind`` (as good rows' ``client`` field)."""
    from ..machines import CLIENT_PROFILES
    return CLIENT_PROFILES.get(kind, kind)


def failed_rows(point: Point, error: BaseException | str, trace: str, wall_seconds: float = 0.0
                ) -> list[dict]:
    """The rows (one per figure of ``point``) recording that its simulation raised ``error``:
    the point's parameters, ``status: "failed"``, ``error`` (type and message) and ``trace``
    (the full traceback)."""
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    row = {"figure": None, "server": point.server, "doc_bytes": point.doc_bytes,
           "clients": point.clients, "requests_per_client": point.requests,
           "client": _client_profile(point.client), "network": point.network,
           "rtl": ",".join(point.rtl), "backend": point.backend, "seed": point.seed,
           "point_seed": point.point_seed,
           "wall_seconds": wall_seconds, "status": FAILED, "error": error, "traceback": trace}
    return [dict(row, figure=f) for f in point.figures]


def failed(row: dict) -> bool:
    """Whether ``row`` records a failed point (it raised, or its server counted internal
    errors)."""
    return row.get("status") == FAILED


#: Rough wall cost of a request per server, relative (measured on the model backend).
_SERVER_COST = {"cheetah": 1.0, "harvest": 1.6, "ncsa": 2.8}


#: Rough wall cost of a document byte per network, relative (measured: about 0.6 s per MiB
#: over Ethernet, 2-3 s over AN2, whose links take kernel events per cell).
_NETWORK_BYTE_COST = {"ethernet": 1.0, "an2": 4.0}


def point_cost(p: Point) -> float:
    """A point's expected wall time, relative (for scheduling only)."""
    return (p.clients * p.requests * _SERVER_COST.get(p.server, 1.0)
            * (1 + _NETWORK_BYTE_COST[p.network] * p.doc_bytes / 1460))


def run_point_or_failed(point: Point, image_path: str | os.PathLike, *,
                        pcap_path: str | os.PathLike | None = None,
                        waves_dir: str | os.PathLike | None = None) -> list[dict]:
    """:func:`run_point`, or the point's :func:`failed_rows` if it raised (in a worker too:
    the rows are picklable, an exception's traceback is not)."""
    wall0 = time.perf_counter()
    try:
        return run_point(point, image_path, pcap_path=pcap_path, waves_dir=waves_dir)
    except Exception as e:                  # noqa: BLE001 - a failed point must not end the run
        log.info("point %s (seed %d) failed: %r", point.label, point.point_seed, e)
        return failed_rows(point, e, traceback.format_exc(), time.perf_counter() - wall0)


def image_sizes_of(point: Point, points: Iterable[Point] = ()) -> tuple[int, ...]:
    """The documents the image of ``point`` holds: :data:`DOC_SIZES` for the paper's
    points (the image they always read); for figure c's and d's, figure c's image with the
    documents of every such point of ``points`` (:func:`figure_c.image_sizes`), so figure d's
    baseline reads figure c's; for a sweep's point, the paper's image when its document is
    one of the paper's, else figure c's image with its own document (whatever the other
    points are, so its result does not depend on them)."""
    beyond = {figure_c.FIGURE, figure_d.FIGURE}
    if SWEEP_FIGURE in point.figures:
        return (DOC_SIZES if point.doc_bytes in DOC_SIZES
                else figure_c.image_sizes(DOC_SIZES, [point.doc_bytes]))
    if beyond & set(point.figures):
        return figure_c.image_sizes(DOC_SIZES, [q.doc_bytes for q in points
                                                if beyond & set(q.figures)])
    return DOC_SIZES


def run_paper(points: list[Point], *, jobs: int = 2, pcap_path: str | os.PathLike | None = None,
              image_path: str | os.PathLike | None = None,
              progress: Callable[[Point, list[dict]], None] | None = None,
              waves_dir: str | os.PathLike | None = None,
              scheduler: str | None = None) -> list[dict]:
    """Run every point (on ``jobs`` Dask worker processes, :func:`serveros.sweep.engine.
    run_tasks`; 1 runs them here) and return the rows sorted by figure, server, network,
    document size and clients. A point that fails gives :func:`failed_rows` and the others
    go on. Nothing is stored: ``serveros run`` is a sweep that runs every point afresh.

    Parameters
    ----------
    scheduler : str, optional
        The address of an existing Dask cluster whose workers run the points (``jobs`` is
        then not used); ``pcap_path`` and ``waves_dir`` are written on the workers' machines.
    pcap_path : path-like, optional
        Write the FIRST point's frames to this pcapng file (the other points are not captured).
    image_path : path-like, optional
        The documents' disk image of every point; default: built by each worker
        (:func:`image_sizes_of`: the paper's documents for the paper's points, figure c's
        for figure c's and d's), so the paper's points read the image they always read.
    progress : callable, optional
        ``progress(point, rows)`` as each point finishes (in completion order).
    waves_dir : path-like, optional
        With RTL devices and ``SERVEROS_WAVES=1``: each point's VCDs in a folder of its own
        here (:func:`point_waves`), so parallel points never write the same file.

    Raises
    ------
    ValueError
        For no points or a bad ``jobs``.
    ServerUnavailable
        If a server's package is missing (checked before anything runs).
    """
    from ..sweep.engine import run_tasks
    from ..sweep.tasks import Task

    _check_int("jobs", jobs, 1)
    if not points:
        raise ValueError("no points to run")
    for name in sorted({p.server for p in points}):
        server_factory(name)
    if pcap_path:
        Path(pcap_path).parent.mkdir(parents=True, exist_ok=True)
    tasks = [Task(p, str(image_path) if image_path else image_sizes_of(p, points),
                  str(pcap_path) if (pcap_path and i == 0) else None,
                  str(waves_dir) if waves_dir else None) for i, p in enumerate(points)]
    outcomes = run_tasks(tasks, workers=None if scheduler else jobs, scheduler=scheduler,
                         cost=lambda t: point_cost(t.point),
                         progress=(lambda o: progress(o.task.point, o.rows)) if progress
                         else None)
    results = [o.rows for o in outcomes]
    rows = [r for rs in results for r in rs]
    rows.sort(key=lambda r: (r["figure"], figure_d.variant_index(r["server"])
                             if r["figure"] == figure_d.FIGURE else
                             list(SERVERS).index(r["server"]) if r["server"] in SERVERS else 99,
                             figure_c.NETWORKS.index(r.get("network", figure_c.DEFAULT_NETWORK)),
                             r["doc_bytes"], r["clients"]))
    return rows


# -- outputs --------------------------------------------------------------------------------------
def rows_without_wall(rows: list[dict]) -> list[dict]:
    """The rows with ``wall_seconds`` removed (what must be equal for equal seeds)."""
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]


#: Row fields that are dicts: flattened into ``cpu_<category>``, ``client_cpu_<category>``
#: and ``server_<name>`` columns of results.csv.
_DICT_FIELDS = ("cpu_breakdown", "client_cpu_breakdown", "server_stats")


def _flat(row: dict, categories: list[str], stat_keys: list[str], extra: tuple[str, ...],
          client_categories: list[str] = ()) -> list:
    """``row`` as a CSV line: :data:`ROW_FIELDS` (a failed point's missing measurements
    empty), the server's CPU categories, the clients', the server's stats, then the
    ``extra`` fields."""
    out = [row.get(f) for f in ROW_FIELDS if f not in _DICT_FIELDS]
    cpu, stats = row.get("cpu_breakdown", {}), row.get("server_stats", {})
    out += [cpu.get(c, 0.0) if cpu else None for c in categories]
    ccpu = row.get("client_cpu_breakdown", {})
    out += [ccpu.get(c, 0.0) if ccpu else None for c in client_categories]
    out += [stats.get(s, "") for s in stat_keys]
    out += [row.get(f, "ok" if f == "status" else None) for f in extra]
    return out


def write_results(rows: list[dict], out_dir: str | os.PathLike, *, plots: bool = True,
                  meta: dict | None = None) -> dict[str, Path]:
    """Write ``results.json`` (``{"rows": [...]}`` plus ``meta``), ``results.csv``
    (``cpu_breakdown`` as ``cpu_<category>`` columns, server stats as ``server_<name>``, and
    when a point failed the :data:`FAILED_FIELDS` last, ``status`` ``ok`` on the other rows;
    with figure d's rows, before those, ``mechanisms`` (``ash+ilp``), ``cpu_cycles_per_request``
    and ``cpu_per_request_<category>`` columns, empty on other figures' rows) and, with
    ``plots``, ``figure_<x>.png`` for the figures with a measured point. Returns the files
    written by name."""
    import csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    doc = {"rows": rows}
    if meta:
        doc["meta"] = meta
    p = out / "results.json"
    p.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    files["json"] = p
    cats = sorted({c for r in rows for c in r.get("cpu_breakdown", {})})
    ccats = sorted({c for r in rows for c in r.get("client_cpu_breakdown", {})})
    stats = sorted({s for r in rows for s, v in r.get("server_stats", {}).items()
                    if isinstance(v, (int, float, str, bool)) or v is None})
    extra = FAILED_FIELDS if any(failed(r) for r in rows) else ()
    dcats = sorted({c for r in rows for c in r.get("cpu_cycles_per_request_breakdown", {})})
    dcols = (["mechanisms", "cpu_cycles_per_request"] + [f"cpu_per_request_{c}" for c in dcats]
             if any("mechanisms" in r for r in rows) else [])

    def per_request(r: dict) -> list:
        if not dcols:
            return []
        if "mechanisms" not in r:
            return [None] * len(dcols)
        by = r.get("cpu_cycles_per_request_breakdown", {})
        return ["+".join(r["mechanisms"]), r.get("cpu_cycles_per_request"),
                *(by.get(c) for c in dcats)]
    p = out / "results.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f for f in ROW_FIELDS if f not in _DICT_FIELDS]
                   + [f"cpu_{c}" for c in cats] + [f"client_cpu_{c}" for c in ccats]
                   + [f"server_{s}" for s in stats] + dcols + list(extra))
        for r in rows:
            line = _flat(r, cats, stats, extra, ccats)
            cut = len(line) - len(extra)
            w.writerow(line[:cut] + per_request(r) + line[cut:])
    files["csv"] = p
    if plots:
        from .. import plots as plotmod
        for fig in sorted({r["figure"] for r in rows if "throughput_rps" in r}):
            png = out / f"figure_{fig}.png"
            plotmod.plot_figure(rows, fig, png)
            files[f"figure_{fig}"] = png
    return files
