"""Two DECstations ping-pong frames through their LANCE cards on one segment (``serveros lance``).

Machine ``le0``'s card is the model or the RTL (Amaranth's simulator or Verilator), machine
``le1``'s is always the model; both run the same driver (:mod:`sw.drivers.lance`) under the
Aegis cost profile. This is the RTL-in-the-loop check of the card (the driver's frames go
through the gateware and out on the segment, into the pcap) and the LANCE benchmark's workload.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

from sim.bus import Bus
from sim.kernel import Kernel
from sim.media.ethernet import Segment

__all__ = ["BACKENDS", "LanceExchangeResult", "run_lance_exchange"]

BACKENDS = ("model", "amaranth", "verilator")


@dataclass(frozen=True)
class LanceExchangeResult:
    """What :func:`run_lance_exchange` reports.

    Attributes
    ----------
    backend : str
        What ``le0``'s card was.
    frames, bytes : int
        Frames and bytes (without FCS) sent and received, both directions together.
    sim_ps : int
        Simulated time from the cards' start to the last frame's delivery.
    wall_seconds : float
        Wall time of that part of the run.
    cpu : dict[str, dict[str, float]]
        Per machine: category -> CPU cycles over the exchange (``idle`` included).
    driver : dict[str, dict[str, int]]
        Per machine: the driver's :class:`~sw.drivers.lance.LanceStats` as a dict.
    segment : dict[str, float]
        Segment counters: frames, collisions, utilization.
    python_wakes : int
        Times an HDL binding resumed Python (0 for the model).
    waves : str or None
        The VCD of ``le0``'s RTL, when ``SERVEROS_WAVES=1`` asked for one (None for the model).
    """

    backend: str
    frames: int
    bytes: int
    sim_ps: int
    wall_seconds: float = field(compare=False)
    cpu: dict = field(default_factory=dict)
    driver: dict = field(default_factory=dict)
    segment: dict = field(default_factory=dict)
    python_wakes: int = 0
    waves: str | None = field(default=None, compare=False)

    @property
    def wire_bits_per_wall_second(self) -> float:
        """Frame bits (with preamble, FCS and gap) carried per wall-second."""
        bits = (self.bytes + self.frames * (8 + 4 + 12)) * 8
        return bits / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def run_lance_exchange(frames: int = 100, size: int | None = None, *, seed: int = 1,
                       backend: str = "model", pcap_path: str | None = None,
                       ram_bytes: int | None = None, stream: bool = False,
                       platform: str = "decstation-5000-125-aegis") -> LanceExchangeResult:
    """``frames`` frames from ``le0`` to ``le1``, each answered by one back (ping-pong), or
    with ``stream`` sent back to back from ``le0`` to ``le1`` as fast as the driver queues them
    (the shape of a server sending a large document; the LANCE benchmark's workload).

    Parameters
    ----------
    frames : int
        Round trips, >= 1.
    size : int, optional
        Frame size without FCS (14..1514); default random sizes 60..1514 from ``seed``.
    seed : int
        Seeds the frame sizes and contents and the segment's backoff.
    backend : str
        ``le0``'s card: ``model``, ``amaranth`` or ``verilator``.
    pcap_path : str, optional
        Write every frame on the segment to this pcapng file.
    ram_bytes : int, optional
        The cards' buffer SRAM (default 128 KiB).
    platform : str
        The machines' profile (``serveros profiles``; default the 5000/125 under Aegis): its
        CPU and memory timings price the driver's work.

    Raises
    ------
    ValueError
        For ``frames < 1``, a size out of range, an unknown backend or platform.
    RuntimeError
        If a frame arrives different from how it was sent, or the exchange stalls.
    """
    from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, WINDOW_SIZE
    from sim.cpu import CPU
    from sim.media.pcap import PcapNgWriter
    from sim.platforms import PROFILES
    from sw.drivers.lance import MAX_SEND, MIN_SEND, LanceDriver

    from ..devices import attach_lance_model
    from ..lance_rtl import rtl_session

    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, not {frames!r}")
    if size is not None and (not isinstance(size, int) or not MIN_SEND <= size <= MAX_SEND):
        raise ValueError(f"size must be {MIN_SEND}..{MAX_SEND} bytes, not {size!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if platform not in PROFILES:
        raise ValueError(f"platform must be one of {', '.join(PROFILES)}, not {platform!r}")
    ram = ram_bytes or BUFFER_RAM_SIZE_DEFAULT
    rng = random.Random(seed)
    k = Kernel()
    writer = PcapNgWriter(pcap_path) if pcap_path else None
    seg = Segment(k, seed=seed, pcap=writer)
    base = 0x1E00_0000
    cpus, drivers = [], []
    session = None
    for i in range(2):
        bus = Bus(k, f"bus{i}")
        cpu = CPU(k, PROFILES[platform], f"cpu{i}")
        mac = bytes([0x08, 0x00, 0x2B, 0, 0, i + 1])
        if i == 0 and backend != "model":
            session = rtl_session(backend, k, seg.attach("le0"), ram_bytes=ram, mac=mac)
            bus.map(base, WINDOW_SIZE, session.card.bus, "le0")
            irq = session.card.irq
        else:
            irq = attach_lance_model(k, bus, base, segment=seg, name=f"le{i}", mac=mac,
                                     ram_bytes=ram).irq
        cpus.append(cpu)
        drivers.append(LanceDriver(cpu, bus, base, irq=irq, buffer_ram=ram, name=f"le{i}"))
    a, b = drivers
    marks: dict[str, float] = {}

    def make(dst: LanceDriver, src: LanceDriver) -> bytes:
        n = size if size is not None else rng.randint(60, MAX_SEND)
        return dst.mac + src.mac + b"\x88\xb5" + rng.randbytes(n - 14)

    async def main() -> None:
        await a.start()
        await b.start()
        marks["t0"] = k.now
        marks["w0"] = time.perf_counter()
        for c in cpus:
            c.reset_stats()
        if stream:
            sent = [make(b, a) for _ in range(frames)]

            async def receiver() -> None:
                for n, f in enumerate(sent):
                    if await b.recv() != f:
                        raise RuntimeError(f"le1's frame {n} differs from the one le0 sent")
            rx = k.spawn(receiver(), name="receiver")
            for f in sent:
                await a.send(f)
            await rx
        for _ in range(0 if stream else frames):
            f = make(b, a)
            await a.send(f)
            if await b.recv() != f:
                raise RuntimeError("le1 received a frame different from the one le0 sent")
            g = make(a, b)
            await b.send(g)
            if await a.recv() != g:
                raise RuntimeError("le0 received a frame different from the one le1 sent")
        await a.flush()
        await b.flush()
        marks["t1"] = k.now
        marks["w1"] = time.perf_counter()

    try:
        task = k.spawn(main(), name="exchange")
        if session is None:
            k.run()
        else:
            session.run()
        if not task.done:
            raise RuntimeError("the exchange did not finish")
        if task.exception is not None:
            raise task.exception
    finally:
        if writer is not None:
            writer.close()
        if session is not None:
            session.close()
    elapsed = int(marks["t1"] - marks["t0"])
    return LanceExchangeResult(
        backend=backend,
        frames=a.stats.sent + b.stats.sent, bytes=a.stats.bytes_sent + b.stats.bytes_sent,
        sim_ps=elapsed, wall_seconds=marks["w1"] - marks["w0"],
        cpu={c.name: {cat: s.cycles for cat, s in c.report().by_category.items()} for c in cpus},
        driver={d.name: asdict(d.stats) for d in drivers},
        segment={"frames": seg.stats.frames, "collisions": seg.stats.collisions,
                 "utilization": seg.stats.busy_ps / elapsed if elapsed else 0.0},
        python_wakes=session.driver.stats.wakes if session is not None else 0,
        waves=str(session.waves) if session is not None and session.waves else None)
