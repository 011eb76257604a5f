"""The paper's machines: a DECstation 5000/125 server and the client workstations.

:func:`build_server_machine` assembles a server as the paper measured it (a DECstation
5000/125: 25 MHz R3000, 32 MiB, a LANCE Ethernet card on the TURBOchannel and an RZ26 disk
behind the SCSI-style controller) and :func:`build_client_machine` a client of one of the
paper's kinds (:data:`CLIENT_PROFILES`: a 100 MHz Pentium under OpenBSD, the default, or a
SPARCstation 1 under SunOS 4.1), whose kernel, TCP and Ethernet driver
(:mod:`sw.clients.bsd`) start with the first client program on it.
Both return a :class:`sw.host.Host`, the contract the servers and clients are built on.

Booting
-------
The server's drivers are started by simulated software (the LANCE driver writes its init
block, the disk driver asks the controller for its capacity), so they can only run inside the
simulation. :func:`build_server_machine` therefore returns a Host whose ``netdev`` and
``blockdev`` are ``None`` until ``await boot(host)`` has run (the first thing the experiment's
main task does); servers are constructed after it. Client machines need no boot (``boot`` is a
no-op for them).

Addresses
---------
The server is 10.0.0.1 (MAC 08:00:2b:00:00:01); client ``i`` is 10.0.0.(10+i) (MAC
08:00:2b:00:00:(10+i)). :func:`preload_arp` fills every machine's static ARP entries both ways.
"""
from __future__ import annotations

import logging
from typing import Any

from sim.bus import Bus, IrqLine
from sim.cpu import CPU
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sim.memory import Memory
from sim.platforms import PROFILES
from sw.host import Host

log = logging.getLogger(__name__)

__all__ = ["SERVER_PROFILES", "SERVER_IP", "CLIENT_PROFILE", "CLIENT_PROFILES", "CLIENT_KINDS", "MEMORY_BYTES", "LANCE_BASE",
           "DISK_BASE", "DMA_BUFFER", "DMA_BUFFER_BYTES", "BACKENDS", "server_ip", "client_ip",
           "machine_mac", "build_server_machine", "build_client_machine", "boot", "preload_arp"]

#: The platform profile of each server's operating system.
SERVER_PROFILES = {
    "cheetah": "decstation-5000-125-aegis",
    "harvest": "decstation-5000-125-ultrix43",
    "ncsa": "decstation-5000-125-ultrix43",
    # The minimal library-OS server of sw.clients.testserver (tests and smoke runs).
    "static": "decstation-5000-125-aegis",
}
#: The client machines by kind (``serveros run --client``): the paper's clients were Pentiums
#: under OpenBSD and Sun workstations under SunOS (VALIDATION.md, "Client machines").
CLIENT_PROFILES = {
    "pentium": "client-pentium100-openbsd",
    "sparc": "client-sparcstation1-sunos41",
}
CLIENT_KINDS = tuple(CLIENT_PROFILES)
#: The default client.
CLIENT_PROFILE = CLIENT_PROFILES["pentium"]
#: Main memory of the server (the DECstation 5000/125 took 8 to 128 MiB; 32 MiB is typical).
MEMORY_BYTES = 32 << 20
#: TURBOchannel slot addresses of the LANCE card's 2 MiB window and the disk controller.
LANCE_BASE = 0x1E00_0000
DISK_BASE = 0x1C00_0000
#: The disk's DMA staging buffer in main memory (kernel pages, below what Aegis hands out).
DMA_BUFFER = 0x1000
DMA_BUFFER_BYTES = 64 << 10
BACKENDS = ("model", "amaranth", "verilator")
SERVER_IP = "10.0.0.1"


def server_ip() -> bytes:
    """The server's IPv4 address (10.0.0.1)."""
    return bytes([10, 0, 0, 1])


def client_ip(i: int) -> bytes:
    """Client ``i``'s IPv4 address (10.0.0.(10+i)).

    Raises
    ------
    ValueError
        If ``i`` is not an integer in 0..200.
    """
    _check_index(i)
    return bytes([10, 0, 0, 10 + i])


def machine_mac(last: int) -> bytes:
    """The MAC 08:00:2b:00:00:``last`` (DEC's OUI)."""
    if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= 0xFF:
        raise ValueError(f"the MAC's last byte must be 0..255, not {last!r}")
    return bytes([0x08, 0x00, 0x2B, 0, 0, last])


def _check_index(i) -> None:
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= 200:
        raise ValueError(f"client index must be an integer 0..200, not {i!r}")


def build_server_machine(kernel: Kernel, segment: Segment, *, server: str, backend: str = "model",
                         image_path, seed: int = 0, waves=None) -> tuple[Host, Any]:
    """A DECstation 5000/125 for ``server``, its LANCE card on ``segment``, its disk ``image_path``.

    Parameters
    ----------
    kernel : Kernel
    segment : Segment
        The Ethernet the card is attached to (station ``"server"``).
    server : str
        ``cheetah`` (Aegis profile, an :class:`sw.exokernel.aegis.Aegis` in
        ``host.extra["aegis"]``), ``harvest`` or ``ncsa`` (Ultrix 4.3 profile), or ``static``.
    backend : str
        The LANCE card: ``model`` (its transaction-level model), ``amaranth`` or ``verilator``
        (its RTL; run the simulation with ``session.run()`` instead of ``kernel.run()``).
    image_path : path-like
        The disk image (opened copy-on-write: the run never changes the file).
    seed : int
        ``host.seed``.
    waves : path-like, optional
        With an RTL backend and ``SERVEROS_WAVES=1``: the card's VCD file (default: in its
        build folder, see :func:`serveros.lance_rtl.rtl_session`).

    Returns
    -------
    (Host, RtlSession or None)
        The host (``netdev``/``blockdev`` filled in by :func:`boot`) and the RTL session.

    Raises
    ------
    ValueError
        For an unknown server or backend, or a bad seed.
    """
    from hw.disk.image import DiskImage
    from hw.disk.model import DiskControllerModel
    from hw.disk.registers import CLOCK_PERIOD_PS, WINDOW_SIZE as DISK_WINDOW
    from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, WINDOW_SIZE as LANCE_WINDOW
    from sim.time import Clock
    from sw.drivers.disk import DiskDriver
    from sw.drivers.lance import LanceDriver

    from .devices import attach_lance_model

    if server not in SERVER_PROFILES:
        raise ValueError(f"server must be one of {', '.join(SERVER_PROFILES)}, not {server!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    profile = PROFILES[SERVER_PROFILES[server]]
    cpu = CPU(kernel, profile, "server.cpu")
    memory = Memory(kernel, MEMORY_BYTES, profile=profile, name="server.mem")
    bus = Bus(kernel, "server.bus")
    mac = machine_mac(1)
    session = None
    if backend == "model":
        card = attach_lance_model(kernel, bus, LANCE_BASE, segment=segment, name="server",
                                  mac=mac, ram_bytes=BUFFER_RAM_SIZE_DEFAULT)
        irq = card.irq
    else:
        from .lance_rtl import rtl_session
        session = rtl_session(backend, kernel, segment.attach("server"),
                              ram_bytes=BUFFER_RAM_SIZE_DEFAULT, mac=mac, name="server",
                              waves=waves)
        bus.map(LANCE_BASE, LANCE_WINDOW, session.card.bus, "server.le0")
        irq = session.card.irq
    lance = LanceDriver(cpu, bus, LANCE_BASE, irq=irq, mac=mac,
                        buffer_ram=BUFFER_RAM_SIZE_DEFAULT, name="le0")
    image = DiskImage.open(image_path, persist=False)
    disk_irq = IrqLine(kernel, "server.disk.irq")
    controller = DiskControllerModel(kernel, Clock(CLOCK_PERIOD_PS), memory=memory, image=image,
                                     irq=disk_irq)
    bus.map(DISK_BASE, DISK_WINDOW, controller, "server.disk")
    disk = DiskDriver(cpu, bus, DISK_BASE, memory, disk_irq, name="rz0")
    host = Host(name="server", kernel=kernel, cpu=cpu, netdev=None, ip=server_ip(),
                memory=memory, blockdev=None, seed=seed,
                extra={"server": server, "backend": backend, "bus": bus, "lance": lance,
                       "disk": disk, "disk_controller": controller, "image": image,
                       "booted": False})
    if server == "cheetah":
        from sw.exokernel.aegis import Aegis

        async def disk_io(lbn: int, count: int, addr: int, write: bool, requester: str) -> None:
            if write:
                await disk.write(lbn, count, addr)
            else:
                await disk.read(lbn, count, addr)

        async def send_frame(frame: bytes) -> None:
            await host.netdev.send(frame)

        reserved = (DMA_BUFFER + DMA_BUFFER_BYTES + memory.page_size - 1) // memory.page_size
        host.extra["aegis"] = Aegis(memory, cpu=cpu, disk_blocks=image.block_count,
                                    block_size=image.block_size, disk_io=disk_io,
                                    reserved_pages=reserved, send_frame=send_frame)
    return host, session


def build_client_machine(kernel: Kernel, segment: Segment, i: int, seed: int = 0, *,
                         kind: str = "pentium") -> Host:
    """Client workstation ``i`` of ``kind`` (:data:`CLIENT_PROFILES`), no disk.

    ``host.netdev`` is the machine's Ethernet card on ``segment``; the card's driver costs,
    the BSD kernel and its TCP/IP stack are :mod:`sw.clients.bsd`'s, started by the first
    :class:`sw.clients.http.HttpClient` on the host (``host.extra["client_os"]``).

    Raises
    ------
    ValueError
        For a bad index, seed or kind.
    """
    from sw.libos.net.ether import StationDevice

    _check_index(i)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    if kind not in CLIENT_PROFILES:
        raise ValueError(f"client kind must be one of {', '.join(CLIENT_PROFILES)}, not {kind!r}")
    name = f"client{i}"
    cpu = CPU(kernel, PROFILES[CLIENT_PROFILES[kind]], f"{name}.cpu")
    dev = StationDevice(segment, name, machine_mac(10 + i))
    return Host(name=name, kernel=kernel, cpu=cpu, netdev=dev, ip=client_ip(i), seed=seed,
                extra={"booted": True, "client_kind": kind})


def preload_arp(hosts: list[Host]) -> None:
    """Give every host a static ARP entry for every other host (MACs by the address plan)."""
    for h in hosts:
        for other in hosts:
            if other is not h:
                h.arp[other.ip] = machine_mac(other.ip[3])     # the plan: MAC ends as IP


async def boot(host: Host) -> Host:
    """Start a server machine's drivers (inside the simulation) and fill in ``host.netdev``
    (a :class:`sw.drivers.lance.LanceNetDevice`) and ``host.blockdev`` (a
    :class:`sw.libos.fs.device.DriverBlockDevice`). A no-op for a booted or client host.
    """
    if host.extra.get("booted", True):
        return host
    from sw.drivers.lance import LanceNetDevice
    from sw.libos.fs.device import DriverBlockDevice

    lance = host.extra["lance"]
    await lance.start()
    host.netdev = LanceNetDevice(lance)
    host.blockdev = await DriverBlockDevice.attach(host.extra["disk"], host.memory, DMA_BUFFER,
                                                   DMA_BUFFER_BYTES)
    host.extra["booted"] = True
    return host
