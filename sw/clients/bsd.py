"""A client workstation's operating system: a BSD kernel, its TCP/IP stack and its Ethernet driver.

The paper's clients were real machines (Pentiums under OpenBSD, SPARCstations under SunOS 4),
each with its own kernel, socket layer, TCP and Ethernet card (VALIDATION.md, "Client
machines"). :class:`ClientOS` builds one on the BSD socket layer of the Ultrix model
(:mod:`sw.ultrix`: processes, system calls, context switches, sockets, mbufs, 4.3BSD TCP with
its linear PCB list), run on the client's own platform profile, with:

* **The client's software costs.** :class:`~sw.ultrix.UltrixCosts` are R3000 cycles, each an
  instruction count of a BSD code path times the 3MIN's kernel CPI (37.5 / 18, see
  :mod:`sw.ultrix.kernel`). The socket layer and mbuf code of OpenBSD and SunOS 4 are the
  same 4.xBSD paths, so :func:`client_costs` keeps the instruction counts and multiplies by
  the client profile's ``kernel_cpi``.
* **The Ethernet driver** (:class:`ClientNic` of :mod:`sim.platforms.clients`): every frame
  sent costs the driver's ``tx_frame_cycles`` (and a copy into the card's buffer when the
  driver copies); every frame received costs the interrupt dispatch, ``rx_frame_cycles``
  and the copy out of the card's buffer when the driver copies.
* **The loopback interface** (``lo0``): a datagram to the machine's own address never
  reaches the card; ``looutput`` queues it for IP input (``loop_cycles``). This is how
  lmbench's loopback TCP rows (C1-3, C1-4) run.
"""
from __future__ import annotations

import logging

from sim.cpu import COPY, INTERRUPT, KERNEL
from sim.platforms.clients import CLIENT_NICS, ClientNic
from sw.ultrix import Process, SocketLayer, UltrixCosts, UltrixKernel, UltrixNetStack
from sw.ultrix.kernel import ULTRIX_COSTS_CPI, costs_at
from sw.ultrix.sockets import Socket, tcp_mss, ultrix_tcp_config

log = logging.getLogger(__name__)

__all__ = ["ClientOS", "ClientInterface", "ClientNetStack", "client_costs", "client_os",
           "ULTRIX_COSTS_CPI", "DEVNULL_WRITE_INSTRUCTIONS"]

#: ``write(2)`` of a few bytes to ``/dev/null`` beyond the kernel entry: ``getf`` of the
#: descriptor, the ``uio``/``iovec`` set-up, ``vn_write`` (``VOP_LEASE``, ``VOP_LOCK``,
#: ``VOP_WRITE``, ``VOP_UNLOCK`` through the vnode-operations vector), ``spec_write`` and the
#: ``cdevsw`` call to ``mmrw``, which consumes the ``uio`` (4.4BSD ``sys_generic.c``,
#: ``vfs_vnops.c``, ``spec_vnops.c``, ``i386/mem.c``): an estimate of about 200 instructions.
DEVNULL_WRITE_INSTRUCTIONS = 200


def client_costs(profile) -> UltrixCosts:
    """The BSD kernel's per-path costs on ``profile``: the Ultrix model's instruction counts
    (its defaults / :data:`ULTRIX_COSTS_CPI`) at the profile's ``kernel_cpi``. Fields that
    are instruction counts already (``*_instructions``, run by :meth:`sim.cpu.CPU.path` at
    the profile's own CPI) are kept as they are."""
    return costs_at(profile)


class ClientInterface:
    """The client's network interface: the card (a :class:`~sw.libos.net.ether.NetDevice`
    such as a :class:`~sw.libos.net.ether.StationDevice`) behind its driver, plus ``lo0``.

    Frames to the machine's own MAC address go to the loopback (``looutput``); the others
    pay the driver's transmit path and go to the card. On an AN2 card (an interface with a
    ``link_layer``: classical IP over ATM, :class:`sw.libos.net.atm.An2Interface`) the card's own
    driver (:class:`sw.drivers.an2.An2Driver`) charges its transmit and receive paths, its
    copies and its interrupt, so the Ethernet card's costs (``nic``) are not charged again.
    """

    def __init__(self, device, cpu, nic: ClientNic):
        self.device = device
        self.mac = device.mac
        #: The card's link layer (None: Ethernet) and MTU, which the stack takes.
        self.link_layer = getattr(device, "link_layer", None)
        if self.link_layer is not None:
            self.mtu = device.mtu
        self.cpu = cpu
        self.nic = nic
        self.stack: "ClientNetStack | None" = None
        self.looped = 0

    def attach(self, receive) -> None:
        """Hand the card's received frames to ``receive`` (the stack's input)."""
        self.device.attach(receive)

    async def send(self, frame: bytes) -> None:
        cpu = self.cpu
        if self.link_layer is not None:
            await self.device.send(frame)
            return
        if frame[:6] == self.mac:
            # lo0: looutput -> ipintrq, the frame never reaches the card.
            await cpu.charge(self.nic.loop_cycles, KERNEL)
            self.looped += 1
            self.stack.input(frame)
            return
        if self.nic.copies:
            await cpu.charges(((self.nic.tx_frame_cycles, INTERRUPT),
                               (cpu.profile.copy_cycles(len(frame), False), COPY)))
        else:
            await cpu.charge(self.nic.tx_frame_cycles, INTERRUPT)
        await self.device.send(frame)


class ClientNetStack(UltrixNetStack):
    """The client's TCP/IP stack (4.3BSD's, as the Ultrix model's) with its driver's receive
    costs: the interrupt dispatch, the driver's per-frame work and, for a copying driver, the
    copy out of the card's buffer. Frames from ``lo0`` (source MAC our own) skip them, and so
    do PDUs from an AN2 card, whose driver charged its own."""

    async def process(self, frame: bytes) -> None:
        if self.link_layer is not None or frame[6:12] == self.mac:
            await self.receive(frame)
            return
        nic, prof = self.device.nic, self.cpu.profile
        driver = [(float(prof.interrupt_dispatch_cycles) + float(nic.rx_frame_cycles), INTERRUPT)]
        if nic.copies:
            driver.append((prof.copy_cycles(len(frame), False), COPY))
        await self.receive(frame, driver)      # one CPU operation with the mbufs and softint


class ClientOS:
    """One client machine's kernel, stack and sockets.

    Parameters
    ----------
    host : sw.host.Host
        The client machine: ``cpu`` (a client profile of :data:`CLIENT_NICS`), ``netdev``
        (its card), ``ip`` and ``arp``.

    Attributes
    ----------
    uk : UltrixKernel
        Processes, system calls, context switches.
    stack : ClientNetStack
    sockets : SocketLayer
    iface : ClientInterface

    Raises
    ------
    ValueError
        If the host's profile is not a client profile.
    """

    def __init__(self, host):
        prof = host.cpu.profile
        nic = CLIENT_NICS.get(prof.name)
        if nic is None:
            raise ValueError(f"profile {prof.name!r} is not a client machine's "
                             f"(client profiles: {', '.join(CLIENT_NICS)})")
        self.host = host
        costs = client_costs(prof)
        self.uk = UltrixKernel(host.kernel, host.cpu, costs=costs, name=host.name)
        self.iface = ClientInterface(host.netdev, host.cpu, nic)
        self.stack = ClientNetStack(host.kernel, self.iface, host.ip, cpu=host.cpu,
                                    seed=host.seed, name=host.name,
                                    config=ultrix_tcp_config(mss=tcp_mss(host.netdev)),
                                    costs=costs)
        self.iface.stack = self.stack
        self.iface.attach(self.stack.input)
        self.stack.add_arp(host.ip, host.netdev.mac)          # our own address: lo0
        for ip, mac in (host.arp or {}).items():
            self.stack.add_arp(ip, mac)
        self.sockets = SocketLayer(self.uk, self.stack)

    async def write_devnull(self, proc: Process, data: bytes) -> int:
        """``write(2)`` of ``data`` to ``/dev/null`` (lmbench 1.x's null system call):
        the system call and :data:`DEVNULL_WRITE_INSTRUCTIONS`; returns ``len(data)``."""
        await proc.syscall("write")
        await self.host.cpu.charge(self.host.cpu.profile.instructions(DEVNULL_WRITE_INSTRUCTIONS),
                                   KERNEL)
        return len(data)

    def spawn(self, body, name: str) -> Process:
        """Start a user process running ``body(proc)``."""
        return self.uk.spawn(body, name)

    async def abort(self, proc: Process, so: Socket) -> None:
        """close() with ``SO_LINGER`` and a zero linger time: 4.4BSD ``soclose`` calls
        ``tcp_drop``, which sends a RST (a client giving up on a request)."""
        if so.pcb is not None:
            await self.stack.abort(so.pcb)
        if not so.closed:
            await self.sockets.close(proc, so)

    async def abort_connect(self, so: Socket) -> None:
        """Drop ``so``, the socket of a ``connect()`` an alarm interrupted
        (:attr:`sw.ultrix.kernel.Alarm.socket`), if its connection is still opening."""
        pcb = so.pcb
        if (pcb is not None and self.stack.tcp.conns.get(pcb.key) is pcb
                and not so.connected and not so.closed):
            so.closed = True
            await self.stack.abort(pcb)

    def __repr__(self) -> str:
        return f"<ClientOS {self.host.name} {self.host.cpu.profile.name}>"


def client_os(host) -> ClientOS:
    """The host's client OS, created on first use (kept in ``host.extra["client_os"]``)."""
    cos = host.extra.get("client_os")
    if cos is None:
        cos = ClientOS(host)
        host.extra["client_os"] = cos
    return cos
