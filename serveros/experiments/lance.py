"""Two DECstations ping-pong frames through their LANCE cards on one segment (``serveros lance``).

Two bare machines (:func:`serveros.machines.bare`: no operating system) are built by
:class:`serveros.simulation.Simulation`, the one place that chooses model or RTL: machine
``m0``'s card ``le0`` is the model or the RTL (Amaranth's simulator or Verilator; ``rtl``
``"m0_le0"``), machine ``m1``'s card ``le1`` the model or, with ``rtl_cards=2``, the RTL too
(``rtl="lance"``: two instances of one build in the simulation's one RTL simulation). Both run
the same driver (:mod:`sw.drivers.lance`), put by this experiment on each machine's bus with the
card's interrupt, under the Aegis cost profile. This is the RTL-in-the-loop check of the card
(the driver's frames go through the gateware and out on the segment, into the pcap) and the
LANCE benchmark's workload.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.ethernet import Segment

from ..machines import LANCE_BASE, bare
from ..simulation import Simulation

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
        The VCDs of the RTL cards (``le0``'s, then ``le1``'s with ``rtl_cards=2``; comma
        separated, each file once), when ``SERVEROS_WAVES=1`` asked for them (None for the model).
    rtl_cards : int
        How many of the two cards ran as RTL (0 for the model backend).
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
    rtl_cards: int = 0

    @property
    def wire_bits_per_wall_second(self) -> float:
        """Frame bits (with preamble, FCS and gap) carried per wall-second."""
        bits = (self.bytes + self.frames * (8 + 4 + 12)) * 8
        return bits / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def run_lance_exchange(frames: int = 100, size: int | None = None, *, seed: int = 1,
                       backend: str = "model", pcap_path: str | None = None,
                       ram_bytes: int | None = None, stream: bool = False,
                       platform: str = "decstation-5000-125-aegis",
                       rtl_cards: int = 1) -> LanceExchangeResult:
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
    rtl_cards : int
        With an RTL backend: 1 (``le0``'s card) or 2 (both cards).
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
        For ``frames < 1``, a size out of range, an unknown backend or platform, or
        ``rtl_cards`` not 1 or 2.
    RuntimeError
        If a frame arrives different from how it was sent, or the exchange stalls.
    """
    from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT
    from sim.media.pcap import PcapNgWriter
    from sim.platforms import PROFILES
    from sw.drivers.lance import MAX_SEND, MIN_SEND, LanceDriver

    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, not {frames!r}")
    if size is not None and (not isinstance(size, int) or not MIN_SEND <= size <= MAX_SEND):
        raise ValueError(f"size must be {MIN_SEND}..{MAX_SEND} bytes, not {size!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if platform not in PROFILES:
        raise ValueError(f"platform must be one of {', '.join(PROFILES)}, not {platform!r}")
    if rtl_cards not in (1, 2) or isinstance(rtl_cards, bool):
        raise ValueError(f"rtl_cards must be 1 or 2, not {rtl_cards!r}")
    ram = ram_bytes or BUFFER_RAM_SIZE_DEFAULT
    rng = random.Random(seed)
    k = Kernel()
    writer = PcapNgWriter(pcap_path) if pcap_path else None
    seg = Segment(k, seed=seed, pcap=writer)
    machines = [bare(f"m{i}", (DeviceSpec("lance", f"le{i}", LANCE_BASE,
                                          {"mac": bytes([0x08, 0x00, 0x2B, 0, 0, i + 1]),
                                           "ram_bytes": ram, "station": f"le{i}"}),),
                     profile=platform)
                for i in range(2)]
    rtl_cards = 0 if backend == "model" else rtl_cards
    # le0's card alone by its instance name, or every card by the kind.
    rtl = {0: (), 1: ("m0_le0",), 2: ("lance",)}[rtl_cards]
    try:
        sim = Simulation(k, machines, media={"ethernet": seg}, rtl=rtl,
                         backend="verilator" if backend == "model" else backend)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    hosts = [sim.hosts[m.name] for m in machines]
    cpus = [h.cpu for h in hosts]
    drivers = []
    for h, m in zip(hosts, machines):
        dev = m.devices[0]
        drivers.append(LanceDriver(h.cpu, h.extra["bus"], dev.base,
                                   irq=h.extra["devices"][dev.name].irq, buffer_ram=ram,
                                   name=dev.name))
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
        sim.run()
        wakes = sim.rtl.stats.wakes if sim.rtl is not None else 0
        # Every RTL card's VCD (le0's, and le1's with rtl_cards=2), in instance order, each
        # file once (on Amaranth the cards share the simulation's one VCD).
        waves = ", ".join(dict.fromkeys(str(v) for _, v in sorted(sim.waves.items()))) or None
        if not task.done:
            raise RuntimeError("the exchange did not finish")
        if task.exception is not None:
            raise task.exception
    finally:
        if writer is not None:
            writer.close()
        sim.close()
    elapsed = int(marks["t1"] - marks["t0"])
    return LanceExchangeResult(
        backend=backend,
        frames=a.stats.sent + b.stats.sent, bytes=a.stats.bytes_sent + b.stats.bytes_sent,
        sim_ps=elapsed, wall_seconds=marks["w1"] - marks["w0"],
        cpu={f"cpu{i}": {cat: s.cycles for cat, s in c.report().by_category.items()}
             for i, c in enumerate(cpus)},
        driver={d.name: asdict(d.stats) for d in drivers},
        segment={"frames": seg.stats.frames, "collisions": seg.stats.collisions,
                 "utilization": seg.stats.busy_ps / elapsed if elapsed else 0.0},
        python_wakes=wakes,
        waves=waves, rtl_cards=rtl_cards)
