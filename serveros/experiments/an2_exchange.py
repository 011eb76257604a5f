"""Two machines exchanging AAL5 PDUs through their AN2 cards, each card as its model or its RTL.

The rig behind the AN2 card's machine-level equivalence test (tests/hw/test_an2_attach.py) and
its ``serveros bench`` rows (:func:`serveros.bench.an2_benchmarks`): two bare machines
(:func:`serveros.machines.bare`) ``m0`` and ``m1`` with an AN2 card ``an0`` each, on one OC-3c
link or through an :class:`sim.media.atm_net.AtmNetwork`, their drivers
(:class:`sw.drivers.an2.An2Driver`) sending a seeded random workload both ways at once;
:func:`run_exchange` returns what was observed (:class:`Exchange`: received PDUs with their
times, interrupt edges, counters, memory digests, CPU cycles, the capture), and
:func:`differences` says where two runs differ.
"""
from __future__ import annotations

import hashlib
import io
import random
import time
from dataclasses import dataclass, field

from hw.an2.registers import COUNTERS_OFFSET, Counter
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.atm import AtmLink, LinkEnd
from sim.media.atm_net import AtmNetwork
from sim.media.pcap import PcapNgWriter, read_pcapng
from sim.time import US
from sw.drivers.an2 import An2Driver

from ..machines import bare
from ..simulation import Simulation

__all__ = ["BASE", "MEM", "VCS", "SIZES", "LIMIT_PS", "Exchange", "workload", "run_exchange",
           "differences"]

BASE = 0x1E00_0000
MEM = 1 << 20
REGION = 0x10000
USER = 0x80000                  # where scatter/gather pieces are laid out in host memory
VCS = (40, 41)                  # machine i sends on VCS[i]
#: PDU sizes drawn from: empty, one cell, the edges of a trailer-only last cell (41, 48), an
#: Ethernet MTU, a size past a 2 KiB buffer, the classical-IP-over-ATM MTU.
SIZES = (0, 1, 40, 41, 48, 100, 1500, 2049, 9180)
#: Simulated time an exchange may take (the default one takes about 2.2 ms, the bench's 5 ms).
LIMIT_PS = 20 * 10**9


class _OneLink:
    """The test's unswitched ATM medium: one OC-3c link, end ``a`` for the first station to ask
    (:meth:`end`, as :class:`sim.media.atm_net.AtmNetwork` is asked), ``b`` for the second."""

    def __init__(self, kernel: Kernel, *, pcap: PcapNgWriter):
        self.link = AtmLink(kernel, name="atm0", pcap=pcap)
        self.links = {"atm0": self.link}
        self._ends: dict[str, LinkEnd] = {}

    def end(self, station: str) -> LinkEnd:
        if station not in self._ends:
            self._ends[station] = (self.link.a, self.link.b)[len(self._ends)]
        return self._ends[station]


@dataclass
class Exchange:
    """What a run of :func:`run_exchange` observed; equal runs compare equal (wall time and
    Python wakes excluded)."""

    received: dict                  # machine -> [(time ps, vci, bytes)]
    irq: dict                       # machine -> [(time ps, level)]
    counters: dict                  # machine -> the card's counters, read at the end
    memory: dict                    # machine -> sha1 of its whole memory at the end
    cpu: dict                       # machine -> {category: cycles}
    #: The capture as written: every PDU on every link, with its arrival time. Records of the
    #: same nanosecond on different links are in the order the kernel ran their arrivals,
    #: which an RTL card's binding (handing a cell to its link after the cell crossed the
    #: pins) and the model (at its issue edge) may schedule differently: compared as
    #: :attr:`captured`.
    pcap: bytes = field(compare=False)
    #: The capture's records (time ns, interface, bytes), sorted: in time order, ties between
    #: links in a canonical order.
    captured: tuple = ()
    end_ps: int = 0
    cells: int = field(default=0, compare=False)
    pdus: int = field(default=0, compare=False)
    wall_seconds: float = field(default=0.0, compare=False)
    python_wakes: int = field(default=0, compare=False)


def workload(seed: int, pdus: int, sizes=SIZES) -> list[list[bytes | list[int]]]:
    """Per machine, ``pdus`` PDUs: random sizes of ``sizes``, every third one sent as two
    scatter/gather pieces in host memory (given as their lengths) rather than bytes."""
    rng = random.Random(seed)
    out = []
    for _ in range(2):
        mine = []
        for j in range(pdus):
            data = rng.randbytes(rng.choice(sizes))
            mine.append([len(data) // 3, len(data) - len(data) // 3] if j % 3 == 2 and data
                        else data)
        out.append(mine)
    return out


def run_exchange(rtl: str = "", *, pdus: int = 8, seed: int = 16, switched: bool = False,
                 backend: str = "verilator", sizes=SIZES) -> Exchange:
    """Two bare machines ``m0`` and ``m1`` with an AN2 card ``an0`` each, their drivers
    exchanging :func:`workload` both ways at once, on one link or (``switched``) through an
    :class:`~sim.media.atm_net.AtmNetwork`; ``rtl`` as :class:`Simulation` takes it (``""``:
    both models, ``"m1_an0"``: m1's card RTL, ``"an2"``: both RTL)."""
    k = Kernel()
    buf = io.BytesIO()
    spec = DeviceSpec("an2", "an0", BASE)
    machines = [bare(f"m{i}", [spec], memory_bytes=MEM, seed=i) for i in range(2)]
    if switched:        # a PVC through the switch: m0's VCS[0] is m1's VCS[1]
        net = AtmNetwork(k, ports=2, pcap=PcapNgWriter(buf))
        for m in machines:
            net.attach(m.name)
        net.pvc("m0", "m1", *VCS)
    else:
        net = _OneLink(k, pcap=PcapNgWriter(buf))
    loads = workload(seed, pdus, sizes)
    rx: dict = {m.name: [] for m in machines}
    irq: dict = {m.name: [] for m in machines}
    counters: dict = {}
    with Simulation(k, machines, media={"atm": net}, rtl=rtl,
                                 backend=backend) as sim:
        drivers = {}
        for m in machines:
            host = sim.hosts[m.name]
            dev = host.extra["devices"]["an0"]
            dev.irq.on_change(lambda level, n=m.name: irq[n].append((k.now, level)))
            drivers[m.name] = An2Driver(host.cpu, host.extra["bus"], BASE, host.memory, dev.irq,
                                        region=(REGION, An2Driver.layout_size()), name=m.name)

        async def machine(i: int) -> None:
            name = machines[i].name
            drv, mem = drivers[name], sim.hosts[name].memory
            await drv.start()
            for v in VCS:
                await drv.open_vc(v)

            async def receiver() -> None:
                for _ in loads[1 - i]:
                    vci, data = await drv.recv()
                    rx[name].append((k.now, vci, data))
            task = k.spawn(receiver(), name=f"{name}.rx")
            addr = USER
            for p in loads[i]:
                if isinstance(p, list):
                    pieces = []
                    for n in p:
                        mem.write(addr, random.Random(addr).randbytes(n))
                        pieces.append((addr, n))
                        addr += n + 3
                    p = pieces
                await drv.send(VCS[i], p)
            await drv.flush()
            await task
            await k.sleep(10 * US)          # let the peer finish with its last PDU
            counters[name] = [await drv._rd(COUNTERS_OFFSET + 4 * c) for c in Counter]
        for i in range(2):
            k.spawn(machine(i), name=f"m{i}")

        async def watchdog() -> None:       # a card that hangs fails the run, not the suite
            await k.sleep(LIMIT_PS)
            raise TimeoutError(f"the exchange did not finish in {LIMIT_PS} ps: received "
                               f"{ {n: len(v) for n, v in rx.items()} }, irq edges "
                               f"{ {n: len(v) for n, v in irq.items()} }")
        k.spawn(watchdog(), name="watchdog", daemon=True)
        t0 = time.perf_counter()
        sim.run()
        wall = time.perf_counter() - t0
        wakes = sim.rtl.stats.wakes if sim.rtl is not None else 0
        memory = {m.name: hashlib.sha1(sim.hosts[m.name].memory.read(0, MEM)).hexdigest()
                  for m in machines}
        cpu = {m.name: {c: s.cycles for c, s in sim.hosts[m.name].cpu.breakdown().items()}
               for m in machines}
    cells = sum(ch.stats.cells for link in net.links.values() for ch in link.channels)
    pcap = buf.getvalue()
    captured = tuple(sorted((p.t_ns, p.interface, p.data) for p in read_pcapng(pcap)[1]))
    return Exchange(rx, irq, counters, memory, cpu, pcap, captured, k.now, cells=cells,
                    pdus=sum(len(x) for x in loads), wall_seconds=wall, python_wakes=wakes)


def differences(a: Exchange, b: Exchange) -> list[str]:
    """Where two runs differ, field by field (the first differing item of each list)."""
    out = []
    for f in ("received", "irq", "counters", "memory", "cpu"):
        x, y = getattr(a, f), getattr(b, f)
        for m in sorted(set(x) | set(y)):
            xs, ys = x.get(m), y.get(m)
            if xs == ys:
                continue
            if isinstance(xs, list) and isinstance(ys, list):
                i = next((i for i, (p, q) in enumerate(zip(xs, ys)) if p != q),
                         min(len(xs), len(ys)))
                show = (lambda v: v if not isinstance(v, tuple) or len(v) < 3
                        else (v[0], v[1], len(v[2])))
                out.append(f"{f}[{m}] #{i}: {show(xs[i]) if i < len(xs) else '-'} vs "
                           f"{show(ys[i]) if i < len(ys) else '-'} (lengths {len(xs)}, "
                           f"{len(ys)})")
            else:
                out.append(f"{f}[{m}]: {xs} vs {ys}")
    if a.captured != b.captured:
        i = next((i for i, (p, q) in enumerate(zip(a.captured, b.captured)) if p != q),
                 min(len(a.captured), len(b.captured)))
        show = (lambda r: (r[0], r[1], len(r[2])))     # noqa: E731
        out.append(f"capture #{i}: "
                   f"{show(a.captured[i]) if i < len(a.captured) else '-'} vs "
                   f"{show(b.captured[i]) if i < len(b.captured) else '-'} (records "
                   f"{len(a.captured)}, {len(b.captured)})")
    if a.end_ps != b.end_ps:
        out.append(f"end: {a.end_ps} vs {b.end_ps} ps")
    return out
