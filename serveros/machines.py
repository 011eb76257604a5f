"""Machines as descriptions: what a machine has, and the paper's server and clients.

A machine is described by a :class:`MachineSpec`: its name, CPU profile, main memory, the
operating system it boots, its IP address and its devices (:class:`sim.devices.DeviceSpec`:
kind, name, bus address, parameters). :class:`serveros.simulation.Simulation` builds machines
from their descriptions, each device as its transaction-level model or as RTL; the operating
system binds drivers to the devices by kind when the machine boots (:func:`sw.boot.boot`).

The paper's machines
--------------------
* :func:`decstation` / :func:`server_spec`: a DECstation 5000/125 (25 MHz R3000, 32 MiB,
  :data:`MEMORY_BYTES`) with a LANCE Ethernet card ``le0`` on the TURBOchannel at
  :data:`LANCE_BASE` and an RZ26 disk ``rz0`` behind the SCSI-style controller at
  :data:`DISK_BASE` holding the documents' image. The server program chooses the operating
  system (:data:`SERVER_OS`: Cheetah runs on Aegis, NCSA and Harvest on Ultrix 4.3), and the
  operating system the cost profile (:data:`DECSTATION_PROFILES`).
* :func:`bare`: a machine without an operating system (os ``"none"``) for device tests and
  the LANCE exchange: :func:`sw.boot.boot` binds nothing on it, and its builder drives the
  devices itself through ``host.extra["bus"]`` and ``host.extra["devices"][name].irq``.
* :func:`client_spec`: client workstation ``i`` of one of the paper's kinds
  (:data:`CLIENT_PROFILES`: a 100 MHz Pentium under OpenBSD, the default, or a SPARCstation 1
  under SunOS 4.1). Its Ethernet card is an ideal station interface
  (:class:`sw.libos.net.ether.StationDevice`, :attr:`MachineSpec.ether`) whose driver costs
  the client's BSD kernel (:mod:`sw.clients.bsd`) charges; it has no disk and no simulated
  main memory.

Addresses
---------
The server is 10.0.0.1 (MAC 08:00:2b:00:00:01); client ``i`` is 10.0.0.(10+i) (MAC
08:00:2b:00:00:(10+i)): a machine's MAC ends as its IP address. :func:`preload_arp` fills every
machine's static ARP entries both ways.

:func:`build_client_machine` and :func:`boot` are kept for code that builds one machine by
hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sim.platforms import PROFILES
from sw.boot import DMA_BUFFER, DMA_BUFFER_BYTES, OSES, boot
from sw.host import Host

__all__ = ["SERVER_OS", "DECSTATION_PROFILES", "SERVER_PROFILES", "SERVER_IP", "CLIENT_PROFILE",
           "CLIENT_PROFILES", "CLIENT_KINDS", "MEMORY_BYTES", "LANCE_BASE", "DISK_BASE",
           "DMA_BUFFER", "DMA_BUFFER_BYTES", "OSES", "MachineSpec", "bare", "decstation", "server_spec",
           "client_spec", "server_ip", "client_ip", "machine_mac", "build_client_machine",
           "boot", "preload_arp"]

#: The operating system each server program runs on.
SERVER_OS = {
    "cheetah": "aegis",
    "harvest": "ultrix",
    "ncsa": "ultrix",
    # The minimal library-OS server of sw.clients.testserver (tests and smoke runs).
    "static": "aegis",
}
#: The DECstation 5000/125's cost profile under each operating system it runs.
DECSTATION_PROFILES = {
    "aegis": "decstation-5000-125-aegis",
    "ultrix": "decstation-5000-125-ultrix43",
}
#: The platform profile of each server (its operating system's, on the DECstation).
SERVER_PROFILES = {server: DECSTATION_PROFILES[os_] for server, os_ in SERVER_OS.items()}
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


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")


@dataclass(frozen=True)
class MachineSpec:
    """What a machine has.

    Attributes
    ----------
    name : str
        The machine's name (``"server"``, ``"client0"``): its CPU, bus, devices' RTL instances
        (``f"{name}_{device}"``) and segment stations are named after it.
    profile : str
        The CPU's platform profile (a key of :data:`sim.platforms.PROFILES`).
    os : str
        The operating system it boots (:data:`sw.boot.OSES`: ``"aegis"``, ``"ultrix"``,
        ``"bsd-client"``), which binds the drivers to the devices, or ``"none"`` (a bare
        machine, :func:`bare`: nothing is bound).
    ip : bytes
        Its IPv4 address (4 bytes).
    memory_bytes : int
        Simulated main memory (the devices' DMA target); 0 when the machine's software needs
        none (the client workstations).
    devices : tuple of DeviceSpec
        Its devices, in the order they are attached and bound (names unique).
    ether : bytes, optional
        The MAC of an ideal Ethernet interface on the machine's segment
        (:class:`sw.libos.net.ether.StationDevice`: no registers, no bus; the client
        workstations' cards, whose driver costs their operating system charges). A machine
        with a LANCE card has none.
    seed : int
        Seed of the machine's software (``host.seed``: initial sequence numbers, ...).

    Raises
    ------
    ValueError
        For a bad field (the message names it).
    """

    name: str
    profile: str
    os: str
    ip: bytes
    memory_bytes: int = 0
    devices: tuple[DeviceSpec, ...] = ()
    ether: bytes | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"machine name must be an identifier, not {self.name!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"{self.name}: unknown profile {self.profile!r}; known: "
                             f"{', '.join(PROFILES)}")
        if self.os not in OSES:
            raise ValueError(f"{self.name}: os must be one of {', '.join(OSES)}, not {self.os!r}")
        if not isinstance(self.ip, bytes) or len(self.ip) != 4:
            raise ValueError(f"{self.name}: ip must be 4 bytes, not {self.ip!r}")
        m = self.memory_bytes
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ValueError(f"{self.name}: memory_bytes must be an integer >= 0, not {m!r}")
        if self.os == "aegis" and not m:
            raise ValueError(f"{self.name}: Aegis needs main memory (memory_bytes > 0)")
        if not isinstance(self.devices, tuple) or not all(isinstance(d, DeviceSpec)
                                                          for d in self.devices):
            raise ValueError(f"{self.name}: devices must be a tuple of DeviceSpec, not "
                             f"{self.devices!r}")
        names = [d.name for d in self.devices]
        for d in self.devices:
            if not isinstance(d.name, str) or not d.name.isidentifier() or names.count(d.name) > 1:
                raise ValueError(f"{self.name}: device names must be unique identifiers, not "
                                 f"{d.name!r}")
        if self.ether is not None and (not isinstance(self.ether, bytes) or len(self.ether) != 6):
            raise ValueError(f"{self.name}: ether must be a 6-byte MAC or None, not {self.ether!r}")
        _check_seed(self.seed)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of its devices, each once, in order."""
        return tuple(dict.fromkeys(d.kind for d in self.devices))

    def device(self, name: str) -> DeviceSpec:
        """Its device ``name`` (``KeyError`` if it has none)."""
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(f"{self.name} has no device {name!r}")


def bare(name: str, devices: tuple[DeviceSpec, ...] | list[DeviceSpec], *,
         profile: str = DECSTATION_PROFILES["aegis"], memory_bytes: int = 0,
         seed: int = 0) -> MachineSpec:
    """A bare machine: ``devices`` on a CPU of ``profile`` (default the DECstation 5000/125's
    Aegis costs) and ``memory_bytes`` of main memory (default none), with no operating system
    (os ``"none"``) and no IP address (0.0.0.0). Nothing binds drivers to its devices: the test
    or experiment that built it puts its own driver on ``host.extra["bus"]`` at each device's
    base, with the device's interrupt ``host.extra["devices"][name].irq``.

    Raises
    ------
    ValueError
        For a bad field (the message names it).
    """
    return MachineSpec(name, profile, "none", bytes(4), memory_bytes, tuple(devices), seed=seed)


def decstation(name: str, *, os: str, ip: bytes, mac: bytes,
               image: str | PathLike | None = None, seed: int = 0,
               memory_bytes: int = MEMORY_BYTES) -> MachineSpec:
    """A DECstation 5000/125 under ``os`` (``aegis`` or ``ultrix``): its LANCE card ``le0``
    (station address ``mac``) at :data:`LANCE_BASE`, and with an ``image`` its RZ26 disk
    ``rz0`` at :data:`DISK_BASE` holding that image (opened copy-on-write: a run never changes
    the file).

    Raises
    ------
    ValueError
        For an operating system the DECstation has no profile for, or a bad field.
    """
    if os not in DECSTATION_PROFILES:
        raise ValueError(f"{name}: a DECstation runs {' or '.join(DECSTATION_PROFILES)}, "
                         f"not {os!r}")
    devices = [DeviceSpec("lance", "le0", LANCE_BASE, {"mac": bytes(mac)})]
    if image is not None:
        devices.append(DeviceSpec("disk", "rz0", DISK_BASE,
                                  {"image": image, "mem_size": memory_bytes}))
    return MachineSpec(name, DECSTATION_PROFILES[os], os, ip, memory_bytes, tuple(devices),
                       seed=seed)


def server_spec(server: str, image: str | PathLike | None, *, seed: int = 0,
                name: str = "server", ip: bytes | None = None,
                mac: bytes | None = None) -> MachineSpec:
    """The DECstation 5000/125 that runs ``server`` (:data:`SERVER_OS` gives its operating
    system), at 10.0.0.1 with MAC 08:00:2b:00:00:01 unless told otherwise, its disk holding
    ``image``.

    Raises
    ------
    ValueError
        For an unknown server or a bad seed.
    """
    if server not in SERVER_OS:
        raise ValueError(f"server must be one of {', '.join(SERVER_OS)}, not {server!r}")
    _check_seed(seed)
    ip = server_ip() if ip is None else ip
    return decstation(name, os=SERVER_OS[server], ip=ip,
                      mac=machine_mac(ip[3]) if mac is None else mac, image=image, seed=seed)


def client_spec(i: int, kind: str = "pentium", *, seed: int = 0) -> MachineSpec:
    """Client workstation ``i`` of ``kind`` (:data:`CLIENT_PROFILES`): ``client<i>`` at
    10.0.0.(10+i), an ideal Ethernet interface, no disk.

    Raises
    ------
    ValueError
        For a bad index, seed or kind.
    """
    _check_index(i)
    _check_seed(seed)
    if kind not in CLIENT_PROFILES:
        raise ValueError(f"client kind must be one of {', '.join(CLIENT_PROFILES)}, not {kind!r}")
    return MachineSpec(f"client{i}", CLIENT_PROFILES[kind], "bsd-client", client_ip(i),
                       ether=machine_mac(10 + i), seed=seed)


def build_client_machine(kernel: Kernel, segment: Segment, i: int, seed: int = 0, *,
                         kind: str = "pentium") -> Host:
    """Client workstation ``i`` of ``kind`` (:func:`client_spec`) built on ``segment``.

    ``host.netdev`` is the machine's Ethernet card on ``segment``; the card's driver costs,
    the BSD kernel and its TCP/IP stack are :mod:`sw.clients.bsd`'s, started by the first
    :class:`sw.clients.http.HttpClient` on the host (``host.extra["client_os"]``).

    Raises
    ------
    ValueError
        For a bad index, seed or kind.
    """
    from .simulation import build_machine
    return build_machine(kernel, client_spec(i, kind, seed=seed), media={"ethernet": segment})


def preload_arp(hosts: list[Host]) -> None:
    """Give every host a static ARP entry for every other host (MACs by the address plan)."""
    for h in hosts:
        for other in hosts:
            if other is not h:
                h.arp[other.ip] = machine_mac(other.ip[3])     # the plan: MAC ends as IP
