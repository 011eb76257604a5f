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

Networks
--------
``network`` (:data:`NETWORKS`) chooses what a machine's network card is: ``"ethernet"`` (the
default, the paper's: the server's LANCE card and the clients' ideal Ethernet interfaces on
one 10 Mbit/s segment) or ``"an2"``: every machine has an AN2 ATM card ``an0`` in TURBOchannel
slot 0 (:data:`AN2_BASE`), a client with the main memory its card's rings and buffers need
(:data:`CLIENT_AN2_MEMORY_BYTES`), all on one AN2-like switch with an OC-3c link each
(:class:`sim.media.atm_net.AtmNetwork`). Hosts talk classical IP over ATM (RFC 2225) over
permanent VCs, one per pair of hosts that talk (the server and each client), set up by
:func:`network_media`. The PVC plan (:func:`pvc_vci`): **a host reaches the peer whose IPv4
address ends in ``n`` on VCI ``PVC_VCI_BASE + n``** (VPI 0) of its own link; so the server
(10.0.0.1) reaches client ``i`` on VCI ``110 + i`` and every client reaches the server on VCI
101. Each card's PVC table (its ``pvcs`` parameter) lists the peers it talks to.

:func:`network_media` builds a run's media for its machine specs: ``{"ethernet": Segment}``
or ``{"atm": AtmNetwork}`` with every PVC of the plan routed.

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

from typing import Sequence

from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.atm_net import AtmNetwork
from sim.media.ethernet import Segment
from sim.media.pcap import PcapNgWriter
from sim.platforms import PROFILES
from sim.platforms.derived import by_name, is_derived_name
from sw.boot import DMA_BUFFER, DMA_BUFFER_BYTES, OSES, boot
from sw.host import Host

__all__ = ["SERVER_OS", "DECSTATION_PROFILES", "SERVER_PROFILES", "SERVER_IP", "CLIENT_PROFILE",
           "CLIENT_PROFILES", "CLIENT_KINDS", "MEMORY_BYTES", "LANCE_BASE", "DISK_BASE",
           "DMA_BUFFER", "DMA_BUFFER_BYTES", "OSES", "MachineSpec", "bare", "decstation", "server_spec",
           "client_spec", "server_ip", "client_ip", "machine_mac", "build_client_machine",
           "boot", "preload_arp", "NETWORKS", "AN2_BASE", "PVC_VCI_BASE",
           "CLIENT_AN2_MEMORY_BYTES", "pvc_vci", "an2_device", "network_media"]

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
#: The networks a run's machines may be on (see "Networks" above).
NETWORKS = ("ethernet", "an2")
#: TURBOchannel option slot 0 of the DECstation 5000/1xx, where the AN2 card sits (the LANCE
#: and the SCSI controller are the 3MIN's on-board devices at LANCE_BASE and DISK_BASE); the
#: client workstations' cards sit at the same address of their own buses.
AN2_BASE = 0x1000_0000
#: The PVC plan: a host reaches the peer whose address ends in ``n`` on VCI PVC_VCI_BASE + n.
PVC_VCI_BASE = 100
#: Main memory a client workstation on ATM is given: what its AN2 driver's rings and buffers
#: need (sw.boot.AN2_REGION_BYTES after the first page), rounded up to 1 MiB. The client's
#: software keeps its data outside simulated memory; this is not the workstation's RAM size.
CLIENT_AN2_MEMORY_BYTES = 1 << 20


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


def _check_network(network) -> None:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")


def pvc_vci(peer: bytes) -> int:
    """The VCI a host uses to reach ``peer`` (its IPv4 address) by the PVC plan."""
    if not isinstance(peer, bytes) or len(peer) != 4:
        raise ValueError(f"peer must be a 4-byte IPv4 address, not {peer!r}")
    return PVC_VCI_BASE + peer[3]


def an2_device(mac: bytes, peers: Sequence[bytes]) -> DeviceSpec:
    """The AN2 card ``an0`` at :data:`AN2_BASE` with address ``mac`` and a PVC to each of
    ``peers`` (IPv4 addresses) by the plan."""
    return DeviceSpec("an2", "an0", AN2_BASE,
                      {"esi": bytes(mac), "pvcs": {bytes(p): pvc_vci(bytes(p)) for p in peers}})


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
        The CPU's platform profile (a key of :data:`sim.platforms.PROFILES`, or the name of a
        derived profile: :mod:`sim.platforms.derived`, :mod:`serveros.hardware`).
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
            if is_derived_name(self.profile):
                try:
                    by_name(self.profile)
                except ValueError as e:
                    raise ValueError(f"{self.name}: profile: {e}") from None
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
               memory_bytes: int = MEMORY_BYTES, network: str = "ethernet",
               peers: Sequence[bytes] = ()) -> MachineSpec:
    """A DECstation 5000/125 under ``os`` (``aegis`` or ``ultrix``): its network card
    (``network`` ``"ethernet"``: the LANCE card ``le0`` at :data:`LANCE_BASE`; ``"an2"``: the
    AN2 card ``an0`` at :data:`AN2_BASE` with a PVC to each of ``peers``, IPv4 addresses, by
    the plan) with station address ``mac``, and with an ``image`` its RZ26 disk ``rz0`` at
    :data:`DISK_BASE` holding that image (opened copy-on-write: a run never changes the file).

    Raises
    ------
    ValueError
        For an operating system the DECstation has no profile for, an unknown network, or a
        bad field.
    """
    if os not in DECSTATION_PROFILES:
        raise ValueError(f"{name}: a DECstation runs {' or '.join(DECSTATION_PROFILES)}, "
                         f"not {os!r}")
    _check_network(network)
    if network == "an2":
        devices = [an2_device(mac, peers)]
    else:
        devices = [DeviceSpec("lance", "le0", LANCE_BASE, {"mac": bytes(mac)})]
    if image is not None:
        devices.append(DeviceSpec("disk", "rz0", DISK_BASE,
                                  {"image": image, "mem_size": memory_bytes}))
    return MachineSpec(name, DECSTATION_PROFILES[os], os, ip, memory_bytes, tuple(devices),
                       seed=seed)


def server_spec(server: str, image: str | PathLike | None, *, seed: int = 0,
                name: str = "server", ip: bytes | None = None,
                mac: bytes | None = None, network: str = "ethernet",
                clients: int = 0) -> MachineSpec:
    """The DECstation 5000/125 that runs ``server`` (:data:`SERVER_OS` gives its operating
    system), at 10.0.0.1 with MAC 08:00:2b:00:00:01 unless told otherwise, its disk holding
    ``image``, on ``network``; on ``"an2"`` its card has a PVC to each of clients
    ``0 .. clients - 1``.

    Raises
    ------
    ValueError
        For an unknown server or network, or a bad seed or client count.
    """
    if server not in SERVER_OS:
        raise ValueError(f"server must be one of {', '.join(SERVER_OS)}, not {server!r}")
    _check_seed(seed)
    _check_network(network)
    if isinstance(clients, bool) or not isinstance(clients, int) or not 0 <= clients <= 201:
        raise ValueError(f"clients must be an integer 0 .. 201, not {clients!r}")
    ip = server_ip() if ip is None else ip
    return decstation(name, os=SERVER_OS[server], ip=ip,
                      mac=machine_mac(ip[3]) if mac is None else mac, image=image, seed=seed,
                      network=network, peers=[client_ip(i) for i in range(clients)])


def client_spec(i: int, kind: str = "pentium", *, seed: int = 0,
                network: str = "ethernet") -> MachineSpec:
    """Client workstation ``i`` of ``kind`` (:data:`CLIENT_PROFILES`): ``client<i>`` at
    10.0.0.(10+i), no disk, and on ``network`` ``"ethernet"`` an ideal Ethernet interface, on
    ``"an2"`` an AN2 card (the model unless the run puts its RTL in) with a PVC to the server
    and :data:`CLIENT_AN2_MEMORY_BYTES` of main memory for its driver.

    Raises
    ------
    ValueError
        For a bad index, seed, kind or network.
    """
    _check_index(i)
    _check_seed(seed)
    _check_network(network)
    if kind not in CLIENT_PROFILES:
        raise ValueError(f"client kind must be one of {', '.join(CLIENT_PROFILES)}, not {kind!r}")
    if network == "an2":
        return MachineSpec(f"client{i}", CLIENT_PROFILES[kind], "bsd-client", client_ip(i),
                           CLIENT_AN2_MEMORY_BYTES,
                           (an2_device(machine_mac(10 + i), [server_ip()]),), seed=seed)
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


def network_media(kernel: Kernel, specs: Sequence[MachineSpec], network: str, *, seed: int,
                  pcap: PcapNgWriter | None = None) -> dict:
    """The media of a run of ``specs`` on ``network``: ``{"ethernet": Segment}`` (seeded with
    ``seed``), or ``{"atm": AtmNetwork}``: one switch with a port per machine (at least the
    AN2's 16; more when a run has more machines, beyond what the real switch had), a link per
    machine that has an AN2 card (in ``specs`` order, the station named as the card's
    ``station`` or the machine) and every PVC
    its card's table names routed both ways (each pair once; both ends must list each other
    with the plan's VCIs). Every frame or PDU goes to ``pcap`` if given.

    Raises
    ------
    ValueError
        For an unknown network, or PVC tables that do not agree.
    """
    from hw.an2.attach import an2_params

    _check_network(network)
    _check_seed(seed)
    if network == "ethernet":
        return {"ethernet": Segment(kernel, seed=seed, pcap=pcap)}
    net = AtmNetwork(kernel, ports=max(16, len(specs)), pcap=pcap)
    cards = {}                                   # ip -> (station, pvcs)
    for m in specs:
        for d in m.devices:
            if d.kind == "an2":
                p = an2_params(d)
                station = p["station"] or m.name
                net.attach(station)
                cards[m.ip] = (station, p["pvcs"])
                break
    for ip, (station, pvcs) in cards.items():
        for peer, vci in pvcs.items():
            if peer not in cards:
                raise ValueError(f"{station}: its PVC to {'.'.join(map(str, peer))} reaches no "
                                 f"machine with an AN2 card")
            other, theirs = cards[peer]
            if theirs.get(ip) is None:
                raise ValueError(f"{station} has a PVC to {other}, which has none back")
            if ip < peer:
                net.pvc(station, other, vci, theirs[ip])
    return {"atm": net}


def preload_arp(hosts: list[Host]) -> None:
    """Give every host a static ARP entry for every other host (MACs by the address plan)."""
    for h in hosts:
        for other in hosts:
            if other is not h:
                h.arp[other.ip] = machine_mac(other.ip[3])     # the plan: MAC ends as IP
