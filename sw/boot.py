"""Booting a machine: the operating system binds a driver to each of its devices, by kind.

A machine's builder (``serveros/machines.py``) hands the software a :class:`sw.host.Host`
whose devices are attached but not driven: ``host.extra`` holds

* ``"os"``: the operating system the machine boots (one of :data:`OSES`);
* ``"bus"``: the :class:`sim.bus.Bus` the CPU reaches device registers through;
* ``"devices"``: the attached devices by name, in the machine's order
  (:class:`sim.devices.Attached`: the :class:`~sim.devices.DeviceSpec` with its kind and base,
  and the interrupt line), model or RTL alike;
* ``"booted"``: ``False``.

:func:`boot` (the first thing a machine's main task awaits: the drivers talk to the devices
through simulated bus accesses, so booting happens inside the simulation) binds, for every
device, the driver of its kind (:data:`DRIVERS`):

* ``lance``: a :class:`sw.drivers.lance.LanceDriver` (started: init block, rings), and the
  first card becomes ``host.netdev`` (a :class:`sw.drivers.lance.LanceNetDevice`);
* ``disk``: a :class:`sw.drivers.disk.DiskDriver`, asked for its capacity, and the first disk
  becomes ``host.blockdev`` (a :class:`sw.libos.fs.device.DriverBlockDevice` staging its
  transfers in the kernel's DMA buffer, :data:`DMA_BUFFER`);
* ``an2``: a :class:`sw.drivers.an2.An2Driver` with its rings and buffers in the kernel's
  memory (:func:`an2_region`), started under :class:`sw.libos.net.atm.An2Interface`
  (configured from the attached device's ``parts["params"]``, which the device kind checked;
  classical IP over ATM: LLC/SNAP, the spec's PVC table ``pvcs`` opened as VCs of the kernel, its
  ``mtu``), and the first card becomes ``host.netdev`` if no card took it before;
* a kind the operating system has no driver for (the timer, say) stays unbound, with a log
  line saying so.

The drivers are in ``host.extra["drivers"]`` by device name. Then the operating system itself:

* ``aegis``: the exokernel (:class:`sw.exokernel.aegis.Aegis`, in ``host.extra["aegis"]``) over
  the machine's memory (the pages below the end of the DMA buffers are the kernel's), with the
  first disk as its disk (``disk_io``) and the network interface's receive path
  (:meth:`~sw.exokernel.aegis.Aegis.bind_netdev`): every frame the card receives is
  demultiplexed by the kernel's filters to the environment that owns it, and applications only
  install filters;
* ``ultrix``: nothing more; the Ultrix kernel (:mod:`sw.ultrix`) is built by the server on the
  host and owns ``host.netdev``;
* ``bsd-client``: a client workstation; its kernel (:mod:`sw.clients.bsd`) starts with the
  first client program;
* ``none``: a bare machine (a device test's, the LANCE exchange's): no operating system, so no
  driver is bound; whoever built it drives its devices itself, through ``host.extra["bus"]``
  and each device's interrupt, ``host.extra["devices"][name].irq``.

Software here imports no hardware but the register maps (ARCHITECTURE.md).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT
from sim.devices import Attached
from sim.media.ethernet import mac as parse_mac

from .host import Host

log = logging.getLogger(__name__)

__all__ = ["OSES", "DRIVERS", "DMA_BUFFER", "DMA_BUFFER_BYTES", "AN2_REGION_BYTES", "boot",
           "kernel_pages", "an2_region"]

#: The operating systems a machine may boot (``none``: a bare machine, nothing to boot).
OSES = ("aegis", "ultrix", "bsd-client", "none")
#: The disk's DMA staging buffer in main memory (kernel pages, below what Aegis hands out);
#: a machine's second disk stages in the next :data:`DMA_BUFFER_BYTES`, and so on.
DMA_BUFFER = 0x1000
DMA_BUFFER_BYTES = 64 << 10
#: Kernel memory of one AN2 card's driver (rings, completion queue, pool 0 and transmit
#: buffers: :meth:`sw.drivers.an2.An2Driver.layout_size` of its defaults, rounded up to pages),
#: after the disks' DMA buffers; a second card's follows.
AN2_REGION_BYTES = 272 << 10


def _count(host: Host, kind: str) -> int:
    return sum(1 for d in host.extra.get("devices", {}).values() if d.spec.kind == kind)


def an2_region(host: Host, index: int) -> tuple[int, int]:
    """``(address, size)`` of the kernel memory of ``host``'s AN2 card number ``index``: after
    the DMA buffers of all of its disks."""
    base = DMA_BUFFER + _count(host, "disk") * DMA_BUFFER_BYTES
    return base + index * AN2_REGION_BYTES, AN2_REGION_BYTES


def _set_netdev(host: Host, netdev, name: str) -> None:
    if host.netdev is None:
        host.netdev = netdev
    else:
        log.info("%s: %s is a second network card; host.netdev stays the first", host.name, name)


async def _bind_lance(host: Host, dev: Attached) -> Any:
    from sw.drivers.lance import LanceDriver, LanceNetDevice

    spec = dev.spec
    mac = spec.params.get("mac")
    drv = LanceDriver(host.cpu, host.extra["bus"], spec.base, irq=dev.irq,
                      mac=parse_mac(mac) if mac is not None else None,
                      buffer_ram=spec.params.get("ram_bytes", BUFFER_RAM_SIZE_DEFAULT),
                      name=spec.name)
    await drv.start()
    # A frame may carry data left in main memory (a Gather): the driver copies it into the
    # card by programmed I/O, counting the document bytes on host.doc_touch.
    read = host.memory.read if host.memory is not None else None
    _set_netdev(host, LanceNetDevice(drv, read=read, doc_touch=host.doc_touch), spec.name)
    return drv


async def _bind_disk(host: Host, dev: Attached) -> Any:
    from sw.drivers.disk import DiskDriver
    from sw.libos.fs.device import DriverBlockDevice

    if host.memory is None:
        raise ValueError(f"{host.name}: disk {dev.spec.name} needs main memory to DMA into")
    spec = dev.spec
    drv = DiskDriver(host.cpu, host.extra["bus"], spec.base, host.memory, dev.irq,
                     name=spec.name)
    n = len(_bound(host, "disk"))
    blockdev = await DriverBlockDevice.attach(drv, host.memory, DMA_BUFFER + n * DMA_BUFFER_BYTES,
                                              DMA_BUFFER_BYTES)
    if host.blockdev is None:
        host.blockdev = blockdev
    return drv


async def _bind_an2(host: Host, dev: Attached) -> Any:
    from sw.drivers.an2 import An2Driver
    from sw.libos.net.atm import An2Interface

    if host.memory is None:
        raise ValueError(f"{host.name}: an2 {dev.spec.name} needs main memory for its rings")
    spec = dev.spec
    p = dev.parts["params"]       # the device kind checked them: station, esi, pvcs, mtu
    drv = An2Driver(host.cpu, host.extra["bus"], spec.base, host.memory, dev.irq,
                    region=an2_region(host, len(_bound(host, "an2"))), name=spec.name)
    # A BSD kernel (Ultrix, the clients) sends from its mbufs by DMA; the library OS's bytes
    # are copied into the driver's buffers.
    iface = An2Interface(drv, esi=p["esi"], pvcs=p["pvcs"], mtu=p["mtu"],
                         mbufs=host.extra.get("os") in ("ultrix", "bsd-client"))
    await iface.start()
    drv.interface = iface
    _set_netdev(host, iface, spec.name)
    return drv


#: The driver of each device kind the operating systems know: ``await bind(host, attached)``
#: starts it and returns it.
DRIVERS: dict[str, Callable[[Host, Attached], Awaitable[Any]]] = {
    "lance": _bind_lance,
    "disk": _bind_disk,
    "an2": _bind_an2,
}


def _bound(host: Host, kind: str) -> list:
    """The drivers bound so far to ``host``'s devices of ``kind``, in the machine's order."""
    devices = host.extra.get("devices", {})
    return [d for name, d in host.extra.get("drivers", {}).items()
            if devices[name].spec.kind == kind]


def kernel_pages(host: Host, disks: int, an2s: int = 0) -> int:
    """Pages the kernel keeps for itself: everything below the end of ``disks`` DMA buffers
    and ``an2s`` AN2 drivers' memory (at least the first page)."""
    end = DMA_BUFFER + disks * DMA_BUFFER_BYTES + an2s * AN2_REGION_BYTES
    return max(1, -(-end // host.memory.page_size))


def _start_aegis(host: Host) -> Any:
    """The exokernel of ``host`` over its memory, first disk and network interface."""
    from sw.exokernel.aegis import Aegis

    disks = _bound(host, "disk")
    disk = disks[0] if disks else None
    disk_io = None
    if disk is not None:
        async def disk_io(lbn: int, count: int, addr: int, write: bool, requester: str) -> None:
            if write:
                await disk.write(lbn, count, addr)
            else:
                await disk.read(lbn, count, addr)

    aegis = Aegis(host.memory, cpu=host.cpu,
                  disk_blocks=disk.blocks if disk is not None else 0,
                  block_size=disk.block_size if disk is not None else 512, disk_io=disk_io,
                  reserved_pages=kernel_pages(host, len(disks), len(_bound(host, "an2"))))
    if host.netdev is not None:
        aegis.bind_netdev(host.netdev)
    return aegis


async def boot(host: Host) -> Host:
    """Bind a driver to each of ``host``'s devices and start its operating system (see the
    module docstring); fills in ``host.netdev``, ``host.blockdev`` and ``host.extra["aegis"]``
    (on Aegis). A no-op for a host already booted, built without devices to bind, or bare
    (os ``none``).

    Raises
    ------
    ValueError
        For an unknown operating system, or a disk on a machine without memory.
    """
    extra = host.extra
    if extra.get("booted", True):
        return host
    os_ = extra.get("os")
    if os_ not in OSES:
        raise ValueError(f"{host.name}: operating system must be one of {', '.join(OSES)}, "
                         f"not {os_!r}")
    if os_ == "none":
        extra["booted"] = True
        return host
    drivers = extra.setdefault("drivers", {})
    for name, dev in extra.get("devices", {}).items():
        bind = DRIVERS.get(dev.spec.kind)
        if bind is None:
            log.info("%s: no %s driver for %s (kind %s): left unbound", host.name, os_, name,
                     dev.spec.kind)
            continue
        drivers[name] = await bind(host, dev)
    if os_ == "aegis":
        if host.memory is None:
            raise ValueError(f"{host.name}: Aegis needs main memory")
        extra["aegis"] = _start_aegis(host)
    extra["booted"] = True
    return host
