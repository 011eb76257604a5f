"""The ATM network a simulation's machines share: one switch, one OC-3c link per station.

An :class:`AtmNetwork` is an AN2-like output-queued switch (:class:`sim.media.atm.AtmSwitch`)
with a full-duplex OC-3c :class:`~sim.media.atm.AtmLink` from each station to a port of its own
(:meth:`AtmNetwork.attach`: the station's card gets end ``a`` of a new link, the switch end
``b`` of it; :meth:`AtmNetwork.end` finds it again). Stations reach each other over permanent virtual circuits (:meth:`AtmNetwork.pvc`):
a PVC between stations ``a`` and ``b`` is the pair of switch routes that carry a cell sent by
``a`` on VCI ``vci_a`` to ``b`` as VCI ``vci_b``, and one sent by ``b`` on ``vci_b`` to ``a`` as
``vci_a`` (VPI 0 throughout). There is no signalling (no UNI 3.1 SVCs): the routes are set up
by whoever builds the network, as an operator configures PVCs.

With a :class:`~sim.media.pcap.PcapNgWriter` every link writes its AAL5 PDUs to it (one SunATM
interface per link, named after the station: tshark decodes each PDU as LLC/SNAP IP).
"""
from __future__ import annotations

from ..kernel import Kernel
from .atm import DEFAULT_PROPAGATION_PS, AtmLink, AtmSwitch, LinkEnd
from .pcap import PcapNgWriter

__all__ = ["AtmNetwork"]


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")
    return v


class AtmNetwork:
    """One ATM switch and the links of the stations attached to it.

    Parameters
    ----------
    kernel : Kernel
    ports : int
        The switch's ports: at most this many stations (AN2 had 16).
    buffer_cells : int
        Cells each output queue of the switch holds (:class:`~sim.media.atm.AtmSwitch`).
    propagation_ps : int
        One-way propagation of every link (ps).
    pcap : PcapNgWriter, optional
        Capture of every PDU on every link.
    name : str
        The switch's name (links are ``f"{name}.{station}"``).

    Raises
    ------
    ValueError
        For a bad parameter (the message names it).
    """

    def __init__(self, kernel: Kernel, *, ports: int = 16, buffer_cells: int = 256,
                 propagation_ps: int = DEFAULT_PROPAGATION_PS, pcap: PcapNgWriter | None = None,
                 name: str = "an2sw"):
        if not isinstance(kernel, Kernel):
            raise ValueError(f"kernel must be a Kernel, not {kernel!r}")
        _positive("ports", ports)
        _positive("buffer_cells", buffer_cells)
        if isinstance(propagation_ps, bool) or not isinstance(propagation_ps, int) \
                or propagation_ps < 0:
            raise ValueError(f"propagation_ps must be an integer >= 0, not {propagation_ps!r}")
        if pcap is not None and not isinstance(pcap, PcapNgWriter):
            raise ValueError(f"pcap must be a PcapNgWriter or None, not {pcap!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        self.kernel, self.name, self.pcap = kernel, name, pcap
        self.propagation_ps = propagation_ps
        self.switch = AtmSwitch(kernel, name=name, ports=ports, buffer_cells=buffer_cells)
        #: Each attached station's switch port and link, in attach order.
        self.ports: dict[str, int] = {}
        self.links: dict[str, AtmLink] = {}
        #: The PVCs set up: ``(a, vci_a, b, vci_b)`` each.
        self.pvcs: list[tuple[str, int, str, int]] = []

    def attach(self, station: str) -> LinkEnd:
        """A new OC-3c link from the next free switch port to ``station``; returns the
        station's end (what its card attaches to).

        Raises
        ------
        ValueError
            For a name already attached or not a non-empty string, or a switch with no free
            port.
        """
        if not isinstance(station, str) or not station:
            raise ValueError(f"{self.name}: a station is a non-empty name, not {station!r}")
        if station in self.ports:
            raise ValueError(f"{self.name}: station {station!r} is already attached "
                             f"(port {self.ports[station]})")
        port = len(self.ports)
        if port >= self.switch.ports:
            raise ValueError(f"{self.name}: all {self.switch.ports} ports are taken; "
                             f"{station!r} cannot attach")
        link = AtmLink(self.kernel, name=f"{self.name}.{station}",
                       propagation_ps=self.propagation_ps, pcap=self.pcap)
        self.switch.connect(port, link.b)
        self.ports[station] = port
        self.links[station] = link
        return link.a

    def end(self, station: str) -> LinkEnd:
        """``station``'s end of its link, attaching it first if it is new (so the network's
        PVCs may be set up before the machines' cards are built, or after)."""
        link = self.links.get(station)
        return link.a if link is not None else self.attach(station)

    def pvc(self, a: str, b: str, vci_a: int, vci_b: int) -> None:
        """A PVC between stations ``a`` and ``b``: ``a`` sends and receives on VCI ``vci_a``,
        ``b`` on ``vci_b`` (VPI 0).

        Raises
        ------
        ValueError
            For a station not attached, ``a == b``, a VCI out of range or already routed from
            that station's port.
        """
        for s in (a, b):
            if s not in self.ports:
                raise ValueError(f"{self.name}: no station {s!r} (attached: "
                                 f"{', '.join(self.ports) or 'none'})")
        if a == b:
            raise ValueError(f"{self.name}: a PVC joins two stations, not {a!r} to itself")
        pa, pb = self.ports[a], self.ports[b]
        self.switch.route(pa, 0, vci_a, pb, 0, vci_b)
        self.switch.route(pb, 0, vci_b, pa, 0, vci_a)
        self.pvcs.append((a, vci_a, b, vci_b))

    def stats(self) -> dict:
        """The switch's and links' counters (JSON-serialisable): cells in and out, cells with
        no route, drops by output port, the deepest output queue, and per station the cells
        it sent and received and the PDUs captured."""
        s = self.switch.stats
        out = {"cells_in": s.cells_in, "cells_out": s.cells_out, "unroutable": s.unroutable,
               "drops": sum(s.drops_by_port.values()),
               "drops_by_port": {str(p): n for p, n in sorted(s.drops_by_port.items())},
               "max_queue": {str(p): n for p, n in sorted(s.max_queue.items())},
               "stations": {}}
        for station, link in self.links.items():
            up, down = link.channels
            out["stations"][station] = {"port": self.ports[station], "cells_sent": up.stats.cells,
                                        "cells_received": down.stats.cells,
                                        "pdus_captured": up.stats.pdus_captured
                                        + down.stats.pdus_captured}
        return out

    def __repr__(self) -> str:
        return f"<AtmNetwork {self.name}: {len(self.ports)} stations, {len(self.pvcs)} PVCs>"
