"""Benchmarks of the Aegis rows (SOSP'95, DECstation 5000/125): exception dispatch (X1) and
packet demultiplexing (X2), run as software on the simulated exokernel.

X1-2 / X1-4: an environment with a user-level exception handler runs a loop that traps: an
arithmetic overflow (the R3000's ``add`` trapping on signed overflow, raised to Aegis as an
exception of the running environment) or a load from a page it does not own (a protection
fault, found by Aegis's page check in :meth:`~sw.exokernel.aegis.Aegis.checked_read`). The
simulated time from the faulting instruction to the first instruction of the handler is the
row's value, the quantity SOSP'95 table 5 measured ("time to dispatch an exception to a
user-level handler").

X2-1 / X2-2: ten environments each bind the TCP/IP filter the library OS installs for a
listening server (``tcp_filter(port, local_ip=...)``, as :mod:`sw.cheetah.server` does),
the table SOSP'95 table 7 measured ("classify TCP/IP headers destined for one of ten TCP/IP
filters"). Frames to each of the ten ports are delivered through Aegis with the interpreted
(``demux="mpf"``) and the compiled (``"dpf"``) demultiplexer; the value is the CPU time the
kernel spent demultiplexing per frame (the ``demux`` category of the simulated CPU, so the
upcall that follows is not counted).

What these rows check: the 5000/125's Aegis profile takes its exception and demultiplexing
costs from the same SOSP'95 tables (CALIBRATION.md), so X1 and X2 check that the kernel's
paths charge those primitives once and nothing else on the way (no extra system call, switch
or copy between the fault and the handler, a per-filter or per-test charge that adds up to the
table's value for the table's filter set); they cannot check the tables' own numbers. The
Ultrix rows X1-1/X1-3 belong to :mod:`.ultrix`.

N1 (Thekkath and Levy, TOCS 1993): the minimal round trip of a 60-byte frame between two
DECstation 5000/200s over Ethernet with the operating system's protocols bypassed: two
machines, each with its LANCE card (the card model) and the LANCE driver
(:mod:`sw.drivers.lance`) on one 10 Mbit/s segment, ping-pong 60-byte frames driver to driver
(:func:`serveros.experiments.lance.run_lance_exchange`, the workload of ``serveros lance``);
the value is simulated time per round trip: two transmissions through the driver's PIO copy
into the card's buffer, two wire times, two receive interrupts through the kernel's interrupt
path and the PIO copies out. It sits here because it is the exokernel's premise (the
application's own code next to the driver) and the package keeps one module per area.
"""
from __future__ import annotations

from sim.cpu import CPU, DEMUX
from sim.kernel import Kernel
from sim.media.ethernet import build_frame
from sim.memory import Memory
from sim.platforms import PROFILES
from sim.time import US
from sw.exokernel.aegis import Aegis
from sw.exokernel.filters import tcp_filter

from .anchors import Anchor
from .registry import benchmark

__all__ = ["exception_dispatch", "demultiplex", "LOOPS", "FILTERS"]

#: Iterations of each loop (the value is their mean; every iteration costs the same, so a few
#: suffice and the command stays fast).
LOOPS = 50
#: Filters installed for X2: SOSP'95 table 7's "one of ten TCP/IP filters".
FILTERS = 10
PAGE = 4096
_SERVER_IP = bytes([10, 0, 0, 1])
_CLIENT_IP = bytes([10, 0, 0, 2])


def _machine(platform: str, demux: str = "dpf", pages: int = 16) -> tuple[Kernel, CPU, Aegis]:
    """A DECstation under Aegis: the event kernel, its CPU charged from ``platform``'s
    profile, and the exokernel over ``pages`` pages of memory."""
    profile = PROFILES[platform]
    k = Kernel()
    cpu = CPU(k, profile)
    mem = Memory(k, pages * PAGE, profile=profile)
    return k, cpu, Aegis(mem, cpu=cpu, demux=demux)


def _run(k: Kernel, coro, name: str) -> None:
    task = k.spawn(coro, name=name)
    k.run()
    if task.exception is not None:
        raise task.exception
    if not task.done:
        raise RuntimeError(f"benchmark task {name} did not finish (deadlock in the model)")


def _dispatch_us(platform: str, cause: str) -> float:
    """Mean simulated microseconds from a faulting instruction to its user-level handler."""
    k, _cpu, aegis = _machine(platform)
    entered: list[int] = []

    async def handler(exc_cause: str, info) -> bool:
        entered.append(k.now)            # the handler's first instruction
        return True

    env = aegis.create_env("faulter", on_exception=handler)
    own = aegis.alloc_pages(env, 1)[0]
    kernel_page_addr = aegis.page_addr(0)   # reserved by the kernel: not env's
    assert not aegis.owns(env, kernel_page_addr, 4) and aegis.owns(env, aegis.page_addr(own), 4)
    faults: list[int] = []

    async def loop() -> None:
        for _ in range(LOOPS):
            faults.append(k.now)
            if cause == "overflow":
                # add $t0, $t1, $t2 with a signed overflow: the CPU traps to the kernel,
                # which upcalls the running environment's handler.
                await aegis.exception(env, "overflow", {"epc": 0x400100})
            else:
                got = await aegis.checked_read(env, kernel_page_addr, 4)
                if got is not None:
                    raise RuntimeError("a load from the kernel's page did not fault")
            await k.sleep(1_000_000)      # the handler has returned; 1 us apart

    _run(k, loop(), f"x1-{cause}")
    if len(entered) != LOOPS or env.unhandled_exceptions:
        raise RuntimeError(f"{cause}: {len(entered)} of {LOOPS} faults reached the handler")
    return sum(e - f for e, f in zip(entered, faults)) / LOOPS / US


@benchmark("X1-2", "X1-4")
def exception_dispatch(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """X1-2 (overflow) and X1-4 (protection fault) on Aegis, in microseconds."""
    out = {}
    for rid, cause in (("X1-2", "overflow"), ("X1-4", "protection")):
        if rid in rows:
            out[rid] = _dispatch_us(rows[rid].platform, cause)
    return out


def _ten_filter_frames() -> list[bytes]:
    """One TCP segment (a SYN, 20-byte headers) to each of the ten bound ports."""
    frames = []
    for i in range(FILTERS):
        tcp = (1024 + i).to_bytes(2, "big") + (8000 + i).to_bytes(2, "big") + bytes(8) \
            + bytes([0x50, 0x02]) + (4096).to_bytes(2, "big") + bytes(4)
        ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]) + _CLIENT_IP + _SERVER_IP
        frames.append(build_frame("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800, ip + tcp))
    return frames


def _demux_us(platform: str, demux: str) -> float:
    """Mean CPU microseconds Aegis spends demultiplexing a frame to one of ten filters."""
    k, cpu, aegis = _machine(platform, demux)
    got: dict[str, int] = {}

    def receiver(name: str):
        async def on_frame(frame: bytes) -> None:
            got[name] = got.get(name, 0) + 1
        return on_frame

    for i in range(FILTERS):
        env = aegis.create_env(f"server{i}", on_frame=receiver(f"server{i}"))
        aegis.install_filter(env, tcp_filter(8000 + i, local_ip=_SERVER_IP))
    frames = _ten_filter_frames()

    async def arrivals() -> None:
        for n in range(LOOPS):
            await aegis.deliver(frames[n % FILTERS])
            await k.sleep(1_000_000)

    cpu.reset_stats()
    _run(k, arrivals(), f"x2-{demux}")
    if sum(got.values()) != LOOPS or len(got) != FILTERS:
        raise RuntimeError(f"{demux}: frames reached {got}, not {LOOPS} spread over "
                           f"{FILTERS} environments")
    share = cpu.report().by_category.get(DEMUX)
    return (share.ps if share else 0) / LOOPS / US


@benchmark("X2-1", "X2-2")
def demultiplex(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """X2-1 (MPF) and X2-2 (DPF) on Aegis, in microseconds per frame."""
    out = {}
    for rid, demux in (("X2-1", "mpf"), ("X2-2", "dpf")):
        if rid in rows:
            out[rid] = _demux_us(rows[rid].platform, demux)
    return out


#: Round trips of the N1 ping-pong (each costs the same; the first pays cold caches).
N1_ROUND_TRIPS = 20


@benchmark("N1")
def raw_round_trip(rows: dict[str, Anchor], seed: int) -> dict[str, float]:
    """N1: microseconds per round trip of a 60-byte frame, driver to driver, no protocol."""
    from serveros.experiments.lance import run_lance_exchange

    res = run_lance_exchange(N1_ROUND_TRIPS, 60, seed=seed, platform=rows["N1"].platform)
    if res.frames != 2 * N1_ROUND_TRIPS:
        raise RuntimeError(f"N1: {res.frames} frames sent, not {2 * N1_ROUND_TRIPS}")
    return {"N1": res.sim_ps / N1_ROUND_TRIPS / US}
