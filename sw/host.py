"""A simulated machine as its software sees it: the contract between machines and servers.

``serveros/simulation.py`` builds machines from their descriptions (``serveros/machines.py``:
CPU with a platform profile, memory, the operating system, devices each as model or RTL) and
hands each piece of software a :class:`Host`; the operating system binds drivers to the
devices when the machine boots (:func:`sw.boot.boot`). Servers (``sw/cheetah``, ``sw/ultrix``)
and clients (``sw/clients``) are built from a Host only, so the same server runs whatever the
devices are bound to (model or RTL).

An HTTP server is any object with the :class:`HttpServer` shape; it listens on ``host.ip``
port 80 once ``await start()`` returns, serves the files of the file system on
``host.blockdev`` (built by :func:`sw.libos.fs.build.build_image`), and reports counters in
``stats()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sim.cpu import CPU
from sim.kernel import Kernel

from .doc_touch import DocTouch

__all__ = ["Host", "HttpServer", "HTTP_PORT"]

HTTP_PORT = 80


@dataclass
class Host:
    """One machine's resources, as software uses them.

    Attributes
    ----------
    name : str
        The machine's name (stations, tasks and CPU reports are named after it).
    kernel : Kernel
    cpu : CPU
        The machine's CPU; its ``profile`` is the platform's cost profile (Aegis or Ultrix on
        the server, the client workstation's on clients).
    netdev : NetDevice
        The network interface (:class:`sw.libos.net.ether.NetDevice`): ``mac``,
        ``async send(frame)`` (no FCS), and ``attach(fn)`` to have every received frame (no
        FCS) passed to ``fn(frame)`` (which may be async).
    ip : bytes
        The machine's IPv4 address (4 bytes).
    memory : sim.memory.Memory or None
        Main memory (DMA target of the disk); None on clients.
    blockdev : BlockDevice or None
        The disk as a :class:`sw.libos.fs.device.BlockDevice` holding the document tree;
        None on clients.
    arp : dict[bytes, bytes]
        Static ARP entries (ip -> mac) the machine may preload (it may also resolve by ARP).
    seed : int
        For the software's own randomness (initial sequence numbers, ...).
    doc_touch : DocTouch
        What the CPU did to the documents it served (:mod:`sw.doc_touch`): software counts
        there every byte of document data its CPU touches, every cache line it flushes and
        every page it maps.
    extra : dict
        Anything else a particular machine offers: ``"aegis"`` (the exokernel, on Aegis
        machines), and what :func:`sw.boot.boot` reads: ``"os"``, ``"bus"``, ``"devices"``
        (the :class:`sim.devices.Attached` devices by name), ``"booted"``.
    """

    name: str
    kernel: Kernel
    cpu: CPU
    netdev: Any
    ip: bytes
    memory: Any = None
    blockdev: Any = None
    arp: dict = field(default_factory=dict)
    seed: int = 0
    extra: dict = field(default_factory=dict)
    doc_touch: DocTouch = field(default_factory=DocTouch)


class HttpServer(Protocol):
    """What the experiment needs of a web server built on a :class:`Host`."""

    name: str

    async def start(self) -> None:
        """Mount the documents, listen on port 80; return when ready to serve."""

    def stats(self) -> dict:
        """Counters (requests served, errors, TIME_WAIT PCBs held, ...), JSON-serialisable."""
