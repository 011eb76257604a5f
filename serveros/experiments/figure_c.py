"""Figure c, beyond the paper: the same servers over 10 Mbit/s Ethernet and over the AN2 ATM card.

The paper measured its servers on a 10 Mbit/s Ethernet and expected, but could not measure, what
a DMA ATM card (Digital's AN2 on OC-3c) would give Cheetah: a CPU that never touches, flushes
or maps the documents it serves. Figure c runs Cheetah, Harvest and NCSA on both networks, for
documents from 0 B to 1 MiB and 1 to 16 clients, and reports per point, besides the paper's
columns (:mod:`serveros.experiments.paper`):

* ``network``: ``"ethernet"`` (the LANCE card on a shared segment) or ``"an2"`` (an AN2 card per
  machine, each on its own OC-3c link to one switch);
* ``link_payload_bps``: the link's payload rate (:func:`link_payload_bps`) and
  ``goodput_fraction_of_link``: document bits delivered per second over it;
* ``cpu_cycles_per_doc_byte``: the server CPU's busy cycles (every category but idle) over
  the measured interval per document byte served (null for 0-byte documents);
* ``cpu_touched_doc_bytes_per_request``, ``doc_cache_lines_flushed_per_request``,
  ``doc_pages_mapped_per_request``: what the server's CPU did to document data
  (:mod:`sw.doc_touch`), counted from the start of the measured interval, per request served.

The grid (:func:`figure_c_combos`) is a document-size sweep at :data:`SIZE_SWEEP_CLIENTS`
clients and a client sweep at :data:`CLIENT_SWEEP_DOC` bytes, for every server and network.

The link limit
--------------
:func:`link_payload_bps` is the rate a link gives the bytes after its own framing, in its
largest units: Ethernet 10 Mbit/s x 1500 / 1538 (a maximum frame's 1500 payload bytes among
8 of preamble and SFD, 14 of header, 4 of FCS and 12 of inter-frame gap) = 9.753 Mbit/s;
OC-3c 149.76 Mbit/s of cells (the SONET payload) x 48 / 53 (a cell's payload) = 135.63 Mbit/s.
HTTP over TCP/IP stays below it: over Ethernet a 1460-byte segment per maximum frame gives at
most 9.493 Mbit/s (97.3 % of the limit); over AN2 a 9180-byte IP packet (RFC 1626's MTU) with
its 8 bytes of LLC/SNAP and 8 of AAL5 trailer fills 192 cells and carries 9140 TCP payload
bytes, at most 134.47 Mbit/s (99.1 %). The cell payload rate is the "link's payload rate" the
issue's 90 % goodput target is against; the 149.76 Mbit/s cell rate itself could never be
reached by any payload (48 of every 53 bytes).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

from ..machines import NETWORKS as MACHINE_NETWORKS

__all__ = ["FIGURE", "NETWORKS", "DEFAULT_NETWORK", "DOC_SIZES", "CLIENTS", "SIZE_SWEEP_CLIENTS",
           "CLIENT_SWEEP_DOC", "figure_c_combos", "parse_networks", "link_payload_bps",
           "request_timeout_ps", "TIMEOUT_MARGIN", "NetworkMedia", "network_media",
           "figure_c_fields", "TOUCH_FIELDS", "image_sizes"]

FIGURE = "c"
#: The networks a point runs on (:data:`serveros.machines.NETWORKS`): the LANCE Ethernet of the
#: paper, or the AN2 ATM card.
NETWORKS = MACHINE_NETWORKS
DEFAULT_NETWORK = "ethernet"
#: Figure c's document sizes (bytes, 0 to 1 MiB), swept at :data:`SIZE_SWEEP_CLIENTS` clients.
DOC_SIZES = (0, 1024, 10240, 102400, 1048576)
SIZE_SWEEP_CLIENTS = 8
#: Figure c's client counts, swept with the :data:`CLIENT_SWEEP_DOC`-byte document (figure a's
#: largest). Wall time decides the size: a request's wall cost grows with its bytes (about
#: 0.6 s per MiB over Ethernet and 2-3 s per MiB over AN2, whose links take kernel events per
#: cell, measured on this 2-core machine), and the sweep's 31 clients x 50 requests would take
#: 1550 MiB of a 1 MiB document per server and network, 155 MiB of a 100 KiB one, 15.5 MiB of
#: 10 KiB.
#: 10 KiB fills the Ethernet from a few clients on and shows what limits each server over
#: AN2; the size sweep has the large documents.
CLIENTS = (1, 2, 4, 8, 16)
CLIENT_SWEEP_DOC = 10240
#: The per-request fields of :mod:`sw.doc_touch` in a row, by the counter names of
#: :meth:`sw.doc_touch.DocTouch.as_dict`.
TOUCH_FIELDS = {"cpu_touched_doc_bytes": "cpu_touched_doc_bytes_per_request",
                "doc_cache_lines_flushed": "doc_cache_lines_flushed_per_request",
                "doc_pages_mapped": "doc_pages_mapped_per_request"}
#: How many fair shares of the link a request may take before the client's watchdog aborts it
#: (:func:`request_timeout_ps`).
TIMEOUT_MARGIN = 4


def figure_c_combos(doc_sizes: Iterable[int] = DOC_SIZES,
                    clients: Iterable[int] = CLIENTS) -> list[tuple[int, int]]:
    """The ``(document bytes, clients)`` pairs of figure c: every size at
    :data:`SIZE_SWEEP_CLIENTS` clients, then every client count with :data:`CLIENT_SWEEP_DOC`
    bytes (the pair both sweeps share once)."""
    combos = [(n, SIZE_SWEEP_CLIENTS) for n in doc_sizes]
    combos += [(CLIENT_SWEEP_DOC, c) for c in clients]
    return list(dict.fromkeys(combos))


def parse_networks(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"ethernet,an2"`` (or a list) as a tuple of networks in :data:`NETWORKS`' order.

    Raises
    ------
    ValueError
        For an empty list, an unknown network or one named twice.
    """
    from .paper import parse_names

    def check(n: str) -> None:
        if n not in NETWORKS:
            raise ValueError(f"unknown network {n!r}; known: {', '.join(NETWORKS)}")
    names = parse_names(text, "network", check)
    return tuple(n for n in NETWORKS if n in names)


def _check_network(network) -> str:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
    return network


def link_payload_bps(network: str) -> float:
    """The rate (bit/s) the ``network``'s link gives the bytes after its own framing, in its
    largest units (see the module's docstring): 9.753 Mbit/s for Ethernet, 135.63 Mbit/s for
    the AN2's OC-3c.

    Raises
    ------
    ValueError
        For an unknown network.
    """
    _check_network(network)
    if network == "ethernet":
        from sim.media import ethernet as eth
        from sim.time import S
        bit_rate = S / eth.BIT_TIME_PS
        payload = eth.MAX_PAYLOAD
        on_wire = eth.PREAMBLE_SFD_BYTES + eth.MAX_FRAME + eth.IFG_BITS // 8
        return bit_rate * payload / on_wire
    from sim.media import aal5, atm
    return atm.CELL_RATE_BPS * aal5.CELL_PAYLOAD / atm.CELL_LEN


def request_timeout_ps(network: str, doc_bytes: int, clients: int) -> int:
    """The clients' watchdog for a figure-c request (ps): the HTTP client's default
    (:data:`sw.clients.http.DEFAULT_TIMEOUT_PS`, 10 s) plus :data:`TIMEOUT_MARGIN` times the
    document's transfer at a fair share of the link (``clients`` transfers sharing it).

    The watchdog only catches a request that stopped making progress; with 16 clients a
    1 MiB document over Ethernet takes about 14 s at a fair share, past the default, though
    nothing is stuck. The margin covers TCP's slow start, the server's CPU and a retransmission
    timeout or two.
    """
    from sim.time import S
    from sw.clients.http import DEFAULT_TIMEOUT_PS
    fair_share_s = clients * doc_bytes * 8 / link_payload_bps(network)
    return DEFAULT_TIMEOUT_PS + int(TIMEOUT_MARGIN * fair_share_s * S)


# -- media ----------------------------------------------------------------------------------------
@dataclass
class NetworkMedia:
    """The media a point's machines share, what the machines need once built, and the
    network's counters.

    Attributes
    ----------
    network : str
        ``"ethernet"`` or ``"an2"``.
    media : dict
        What :class:`serveros.simulation.Simulation` takes as ``media``
        (:func:`serveros.machines.network_media`).
    hosts : list
        The machines once built (:meth:`connect`), the server first.
    """

    network: str
    media: dict
    hosts: list = field(default_factory=list)

    def connect(self, hosts: list) -> None:
        """The built machines, the server first: on Ethernet every host gets static ARP
        entries for the others (:func:`serveros.machines.preload_arp`); over AN2 the PVCs
        (routed by :func:`serveros.machines.network_media`) already name every peer."""
        from ..machines import preload_arp
        self.hosts = list(hosts)
        if self.network == "ethernet":
            preload_arp(self.hosts)

    def counters(self) -> dict:
        """Running totals (after the machines booted): ``frames``, what
        ``packets_per_request`` counts (frames delivered on the segment; over AN2 the AAL5
        PDUs the server's card sent and received, every PDU of the run); on Ethernet
        ``collisions``, ``excessive_collisions`` and ``busy_ps`` (the ``wire_*`` fields);
        over AN2 ``driver`` (the server's AN2 driver's counters, :class:`sw.drivers.an2.An2Stats`,
        kept from the card's completions) and ``switch`` (its cells in and out and drops)."""
        if self.network == "ethernet":
            st = self.media["ethernet"].stats
            return {"frames": st.frames, "collisions": st.collisions,
                    "excessive_collisions": st.excessive_collisions, "busy_ps": st.busy_ps}
        server = self.hosts[0]
        card = next(d.name for d in server.extra["machine"].devices if d.kind == "an2")
        drv = asdict(server.extra["drivers"][card].stats)
        sw = self.media["atm"].stats()
        return {"frames": drv["tx_pdus"] + drv["rx_pdus"], "driver": drv,
                "switch": {k: sw[k] for k in ("cells_in", "cells_out", "drops", "unroutable")}}

    def row_extras(self, before: dict, after: dict) -> dict:
        """The network's own row fields over the interval between two :meth:`counters`: over
        AN2 ``an2_stats`` (``server_driver`` and ``switch`` counts over the interval, and
        ``switch_max_queue``, the deepest output queue of the run, by port); none on
        Ethernet."""
        if self.network == "ethernet":
            return {}
        return {"an2_stats": {
            "server_driver": {k: v - before["driver"][k] for k, v in after["driver"].items()},
            "switch": {k: v - before["switch"][k] for k, v in after["switch"].items()},
            "switch_max_queue": self.media["atm"].stats()["max_queue"]}}


def network_media(kernel, specs: list, network: str, *, seed: int, pcap=None) -> NetworkMedia:
    """The media of a point's machines ``specs`` on ``network``
    (:func:`serveros.machines.network_media`: a 10 Mbit/s Ethernet segment seeded ``seed``,
    or the ATM switch with a link per AN2 card and the PVCs routed); ``pcap`` captures every
    frame or PDU.

    Raises
    ------
    ValueError
        For an unknown network.
    """
    from ..machines import network_media as media_of
    _check_network(network)
    return NetworkMedia(network, media_of(kernel, specs, network, seed=seed, pcap=pcap))


# -- row fields -----------------------------------------------------------------------------------
def figure_c_fields(*, network: str, ok_requests: int, doc_bytes_served: int,
                    goodput_bytes_per_s: float, busy_cycles: float,
                    touch: dict) -> dict:
    """The row fields figure c adds to a point's measurements (see the module's docstring).

    Parameters
    ----------
    network : str
        The point's network.
    ok_requests : int
        Requests served over the interval.
    doc_bytes_served : int
        Document bytes delivered to the clients over the interval.
    goodput_bytes_per_s : float
        Document bytes per second over the interval.
    busy_cycles : float
        The server CPU's cycles over the interval in every category but idle.
    touch : dict
        :meth:`sw.doc_touch.DocTouch.as_dict` of the server over the interval.
    """
    link = link_payload_bps(network)
    out = {"network": network, "link_payload_bps": link,
           "goodput_fraction_of_link": goodput_bytes_per_s * 8 / link,
           "cpu_cycles_per_doc_byte": (busy_cycles / doc_bytes_served
                                       if doc_bytes_served else None)}
    for name, field in TOUCH_FIELDS.items():
        out[field] = touch[name] / ok_requests if ok_requests else None
    return out


def image_sizes(base: Iterable[int], sizes: Iterable[int]) -> tuple[int, ...]:
    """The documents of figure c's image: ``base`` (the paper's), figure c's own
    :data:`DOC_SIZES` and any other ``sizes`` its points ask for, each once, sorted; the same
    image whatever subset of figure c a run has, so a point's rows do not depend on the
    others."""
    return tuple(sorted({*base, *DOC_SIZES, *sizes}))
