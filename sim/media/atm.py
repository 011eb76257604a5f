"""ATM cells, OC-3c point-to-point links and an AN2-like output-queued switch.

Cells
-----
53 bytes: a 5-byte UNI header (GFC 4 bits, VPI 8, VCI 16, PT 3, CLP 1, then the HEC) and 48
bytes of payload. The HEC (ITU-T I.432) is the CRC-8 of the first four header bytes with
generator x^8 + x^2 + x + 1, XORed with 0x55 (the idle-cell header ``00 00 00 01`` gets 0x52).

Links
-----
An :class:`AtmLink` is a full-duplex fibre: two simplex :class:`AtmChannel` s, each at SONET
OC-3c. The line rate is 155.52 Mbit/s, of which the STS-3c payload envelope leaves 149.76 Mbit/s
to cells, so one cell (424 bits) every 424 / 149.76e6 s = 2 831 196.58... ps. Slot ``n`` of a
channel begins at ``floor(n * 424e12 / 149.76e6)`` ps from time 0 (the framer runs from the
start of the simulation) (exact integer arithmetic on the rational
slot time), so slot times are rounded *down* to the picosecond, each by less than 1 ps, and the
rounding never accumulates. The cells' real spacing inside SONET frames is slightly uneven
(section, line and path overhead bytes interleave); the model spaces them evenly at the average.
A cell sent by :meth:`LinkEnd.send` goes in the first free slot that starts at or after the send
time (a transmit FIFO of unbounded depth; the card bounds its own), occupies it, and reaches the
other end's receive callback when its last bit arrives: at the end of its slot plus the
propagation delay. Idle (unassigned) cells that fill empty slots on a real link are not
simulated. Cost: one kernel entry per cell per link (plus one per cell in a switch, for its
latency), no per-bit work.

The default propagation delay, 25 ns, is an *estimate*: a short machine-room fibre, 5 m at about
5 ns/m (light in silica at about 0.68 c).

Switch
------
:class:`AtmSwitch` is "AN2-like": N ports each attached to one link end, a VC table mapping
(in-port, VPI, VCI) to (out-port, VPI, VCI) with the header rewritten and its HEC recomputed, a
fixed switching latency, and per-output cell queues of a bounded number of cells (the cells
waiting for the output link's slots). A cell that finds its output queue full is dropped and
counted per output port and per VC; a cell on an unknown VC is dropped and counted too. The real
DEC SRC AN2 buffered cells at its *inputs* and scheduled its crossbar by parallel iterative
matching (Anderson, Owicki, Saxe and Thacker, "High-speed switch scheduling for local-area
networks", ACM TOCS 11(4), 1993); this model is output-queued (no head-of-line blocking), an
idealisation. Its defaults (2 us latency, 256 cells per output) are *estimates*, not AN2
measurements.

Capture
-------
Given a :class:`~sim.media.pcap.PcapNgWriter`, a link reassembles the AAL5 PDUs of every VC on
each direction (:mod:`sim.media.aal5`) and writes each one, stamped with the arrival time of
its last cell, as a SunATM packet (link type 123): a 4-byte pseudo-header (direction and
"RFC 1483 LLC-multiplexed" traffic type, VPI, VCI) and the CPCS-SDU, i.e. the LLC/SNAP header
and the IP packet, which Wireshark decodes as such.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from ..kernel import Kernel
from ..time import NS, US
from .aal5 import CELL_PAYLOAD, Aal5Reassembler
from .pcap import LINKTYPE_SUNATM, PcapNgWriter

__all__ = [
    "CELL_LEN", "HEADER_LEN", "LINE_RATE_BPS", "CELL_RATE_BPS", "SLOT_NUM_PS", "SLOT_DEN",
    "DEFAULT_PROPAGATION_PS", "PT_END_OF_SDU",
    "CellError", "Cell", "hec", "slot_start", "first_slot_at",
    "AtmChannel", "ChannelStats", "AtmLink", "LinkEnd",
    "AtmSwitch", "SwitchStats",
]

#: Bytes of a cell: header + payload.
CELL_LEN = 53
#: Bytes of the UNI header, HEC included.
HEADER_LEN = 5
#: SONET OC-3c line rate.
LINE_RATE_BPS = 155_520_000
#: Of which the STS-3c synchronous payload envelope carries cells at:
CELL_RATE_BPS = 149_760_000
#: One cell slot is ``SLOT_NUM_PS / SLOT_DEN`` ps (424e12 / 149.76e6, in lowest terms).
SLOT_NUM_PS, SLOT_DEN = 424 * 10**12, CELL_RATE_BPS
#: 5 m of fibre at 5 ns/m (an estimate: a machine-room link).
DEFAULT_PROPAGATION_PS = 25 * NS
#: PT value of a user data cell that ends an AAL5 SDU (ATM-user-to-user bit set).
PT_END_OF_SDU = 0b001

_SUNATM_LLC = 0x02     # SunATM traffic type: RFC 1483 LLC-multiplexed


class CellError(ValueError):
    """A malformed cell (wrong length, bad HEC, a field out of range)."""


def _crc8_table() -> bytes:
    table = []
    for i in range(256):
        r = i
        for _ in range(8):
            r = ((r << 1) ^ 0x07) & 0xFF if r & 0x80 else (r << 1)
        table.append(r)
    return bytes(table)


_CRC8 = _crc8_table()


def hec(header4: bytes) -> int:
    """The HEC byte for the first four header bytes (I.432: CRC-8 x^8+x^2+x+1, XOR 0x55)."""
    if len(header4) != 4:
        raise CellError(f"the HEC covers 4 header bytes, not {len(header4)}")
    r = 0
    for b in header4:
        r = _CRC8[r ^ b]
    return r ^ 0x55


_FIELDS = (("gfc", 4), ("vpi", 8), ("vci", 16), ("pt", 3), ("clp", 1))


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One UNI cell. Build with keyword fields; :meth:`to_bytes` adds the HEC.

    Raises
    ------
    CellError
        If a field is out of range or the payload is not 48 bytes.
    """

    vpi: int
    vci: int
    payload: bytes
    pt: int = 0
    clp: int = 0
    gfc: int = 0

    def __post_init__(self):
        for name, bits in _FIELDS:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < (1 << bits):
                raise CellError(f"cell {name.upper()} must be a {bits}-bit integer, not {v!r}")
        if not isinstance(self.payload, (bytes, bytearray, memoryview)):
            raise CellError(f"cell payload must be bytes, not {type(self.payload).__name__}")
        if len(self.payload) != CELL_PAYLOAD:
            raise CellError(f"cell payload must be {CELL_PAYLOAD} bytes, not {len(self.payload)}")
        if not isinstance(self.payload, bytes):
            object.__setattr__(self, "payload", bytes(self.payload))

    @classmethod
    def _trusted(cls, vpi: int, vci: int, payload: bytes, pt: int) -> "Cell":
        """A cell from fields already known valid (a card's own VCI, 48 bytes, PT 0 or 1):
        the per-cell hot paths of the card models and the switch skip the checks."""
        cell = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(cell, "vpi", vpi)
        setattr_(cell, "vci", vci)
        setattr_(cell, "payload", payload)
        setattr_(cell, "pt", pt)
        setattr_(cell, "clp", 0)
        setattr_(cell, "gfc", 0)
        return cell

    @property
    def end_of_sdu(self) -> bool:
        """A user data cell (PT 0xx) with the ATM-user-to-user bit: the last of an AAL5 PDU."""
        return self.pt & 0b101 == PT_END_OF_SDU

    def header4(self) -> bytes:
        word = (self.gfc << 28) | (self.vpi << 20) | (self.vci << 4) | (self.pt << 1) | self.clp
        return word.to_bytes(4, "big")

    def to_bytes(self) -> bytes:
        """The 53 bytes on the wire."""
        h = self.header4()
        return h + bytes([hec(h)]) + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> "Cell":
        """Parse 53 bytes; raises :class:`CellError` for a wrong length or a bad HEC."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CellError(f"a cell must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) != CELL_LEN:
            raise CellError(f"a cell is {CELL_LEN} bytes, not {len(data)}")
        want = hec(data[:4])
        if data[4] != want:
            raise CellError(f"bad HEC: cell carries {data[4]:02x}, its header gives {want:02x}")
        w = int.from_bytes(data[:4], "big")
        return cls(vpi=(w >> 20) & 0xFF, vci=(w >> 4) & 0xFFFF, payload=data[5:],
                   pt=(w >> 1) & 7, clp=w & 1, gfc=w >> 28)

    def rewrite(self, vpi: int, vci: int) -> "Cell":
        """The same cell with a new VPI/VCI (its HEC is recomputed by :meth:`to_bytes`)."""
        return Cell(vpi=vpi, vci=vci, payload=self.payload, pt=self.pt, clp=self.clp, gfc=self.gfc)

    def _rewritten(self, vpi: int, vci: int) -> "Cell":
        """:meth:`rewrite` for a VPI/VCI already checked (a switch route's)."""
        cell = Cell._trusted(vpi, vci, self.payload, self.pt)
        object.__setattr__(cell, "clp", self.clp)
        object.__setattr__(cell, "gfc", self.gfc)
        return cell


# -- link timing ---------------------------------------------------------------------------------
def slot_start(n: int) -> int:
    """Start of cell slot ``n`` in ps: ``floor(n * 424 bits / 149.76 Mbit/s)``."""
    return n * SLOT_NUM_PS // SLOT_DEN


def first_slot_at(t: int) -> int:
    """The index of the first slot that starts at or after time ``t`` ps."""
    return -((-t * SLOT_DEN) // SLOT_NUM_PS)


@dataclass
class ChannelStats:
    """Counters of one simplex channel."""

    cells: int = 0          # cells sent
    pdus_captured: int = 0  # AAL5 PDUs written to the capture
    capture_errors: int = 0  # cell runs the capture could not reassemble (bad CRC/length/size)
    max_backlog: int = 0    # most cells ever waiting for a slot (the one being sent excluded)


class AtmChannel:
    """One direction of a link: cells go out in consecutive slots, arrive after propagation.

    Not built directly: see :class:`AtmLink`.
    """

    def __init__(self, kernel: Kernel, name: str, propagation_ps: int):
        self.kernel = kernel
        self.name = name
        self.propagation_ps = propagation_ps
        self._next_slot = 0
        self._receiver: Callable[[Cell], None] | None = None
        self._ahead: Callable[[Cell, int], None] | None = None
        self.stats = ChannelStats()
        self._capture: tuple[PcapNgWriter, int, int] | None = None
        self._reasm: dict[tuple[int, int], Aal5Reassembler] = {}

    @property
    def backlog(self) -> int:
        """Cells queued whose slot has not started yet."""
        return max(0, self._next_slot - first_slot_at(self.kernel.now + 1))

    def send(self, cell: Cell, *, at: int | None = None) -> int:
        """Queue ``cell`` for the first free slot that starts at or after ``at`` (default: now);
        returns the time (ps) its last bit arrives.

        ``at`` (at most now) is when the cell was given to the link: an RTL card's cell reaches
        Python only once its words have crossed the card's pins, after its slot has begun
        (docs/an2_card.md, "Pins"), so its binding names the slot's start.

        Raises
        ------
        ValueError
            If ``at`` is not an integer time at most now, or the cell would arrive before now.
        """
        if not isinstance(cell, Cell):
            cell = Cell.from_bytes(cell)
        now = self.kernel.now
        if at is None:
            at = now
        elif isinstance(at, bool) or not isinstance(at, int) or at > now:
            raise ValueError(f"{self.name}: at must be an integer time (ps) at most now "
                             f"({now}), not {at!r}")
        # The hot path of every cell: first_slot_at, slot_start and the backlog property inline.
        slot = -((-at * SLOT_DEN) // SLOT_NUM_PS)
        if slot < self._next_slot:
            slot = self._next_slot
        arrive = (slot + 1) * SLOT_NUM_PS // SLOT_DEN + self.propagation_ps
        if arrive < now:
            raise ValueError(f"{self.name}: a cell given at {at} ps takes slot {slot}, which "
                             f"ended before now ({now} ps)")
        self._next_slot = slot + 1
        stats = self.stats
        stats.cells += 1
        backlog = slot + 1 + ((-(now + 1) * SLOT_DEN) // SLOT_NUM_PS)
        if backlog > stats.max_backlog:
            stats.max_backlog = backlog
        if self._ahead is not None:
            self._ahead(cell, arrive)
        self.kernel.post(arrive, self._arrive, cell)
        return arrive

    def _arrive(self, cell: Cell) -> None:
        if self._capture is not None:
            self._capture_cell(cell)
        if self._receiver is not None:
            self._receiver(cell)

    def _capture_cell(self, cell: Cell) -> None:
        if cell.pt & 0b100:          # OAM / resource management cells carry no AAL5
            return
        pcap, iface, direction = self._capture
        vc = (cell.vpi, cell.vci)
        r = self._reasm.get(vc)
        if r is None:
            r = self._reasm[vc] = Aal5Reassembler()
        pdu = r.push(cell.payload, cell.end_of_sdu)
        if pdu is None:
            if cell.end_of_sdu:
                self.stats.capture_errors += 1
        else:
            head = bytes([direction | _SUNATM_LLC, cell.vpi]) + cell.vci.to_bytes(2, "big")
            pcap.write(iface, self.kernel.now, head + pdu.payload)
            self.stats.pdus_captured += 1


class LinkEnd:
    """One end of an :class:`AtmLink`: what a card (or a switch port) attaches to."""

    def __init__(self, tx: AtmChannel, rx: AtmChannel, name: str):
        self._tx, self._rx, self.name = tx, rx, name
        self.attached = False

    def attach(self, on_cell: Callable[..., None], *, ahead: bool = False) -> None:
        """Call ``on_cell(cell)`` for every cell that arrives at this end, at its arrival time.

        With ``ahead``, call ``on_cell(cell, arrive_ps)`` instead when the cell is sent (from
        within :meth:`AtmChannel.send`), with the time its last bit will arrive: for a receiver
        that must start taking the cell in before then (an RTL card's cell interface, which
        takes a cell's words one per clock cycle ending at its arrival).

        Raises
        ------
        ValueError
            If something is already attached here, or ``on_cell`` is not callable.
        """
        if not callable(on_cell):
            raise ValueError(f"{self.name}: on_cell must be callable, not {on_cell!r}")
        if self.attached:
            raise ValueError(f"{self.name}: a receiver is already attached")
        if ahead:
            self._rx._ahead = on_cell
        else:
            self._rx._receiver = on_cell
        self.attached = True

    def send(self, cell: Cell | bytes, *, at: int | None = None) -> int:
        """Transmit ``cell`` from this end (see :meth:`AtmChannel.send`)."""
        return self._tx.send(cell, at=at)

    @property
    def backlog(self) -> int:
        """Cells this end has queued that have not started on the wire."""
        return self._tx.backlog

    @property
    def tx_stats(self) -> ChannelStats:
        return self._tx.stats


class AtmLink:
    """A full-duplex OC-3c point-to-point link between ends :attr:`a` and :attr:`b`.

    Parameters
    ----------
    kernel
        The simulation kernel.
    name
        Used in errors and as the capture's interface name.
    propagation_ps
        One-way propagation delay in ps (default 25 ns: 5 m of fibre, an estimate).
    pcap
        Optional :class:`~sim.media.pcap.PcapNgWriter`: every AAL5 PDU on either direction is
        written (SunATM link type; end ``a`` is the DTE, so a -> b shows as DTE->DCE).
    """

    def __init__(self, kernel: Kernel, *, name: str = "atm0",
                 propagation_ps: int = DEFAULT_PROPAGATION_PS, pcap: PcapNgWriter | None = None):
        if not isinstance(kernel, Kernel):
            raise ValueError(f"kernel must be a Kernel, not {kernel!r}")
        if not isinstance(propagation_ps, int) or propagation_ps < 0:
            raise ValueError(f"propagation_ps must be a non-negative integer, not {propagation_ps!r}")
        if pcap is not None and not isinstance(pcap, PcapNgWriter):
            raise ValueError(f"pcap must be a PcapNgWriter or None, not {pcap!r}")
        self.name = name
        self.propagation_ps = propagation_ps
        ab = AtmChannel(kernel, f"{name}:a->b", propagation_ps)
        ba = AtmChannel(kernel, f"{name}:b->a", propagation_ps)
        self.a = LinkEnd(ab, ba, f"{name}.a")
        self.b = LinkEnd(ba, ab, f"{name}.b")
        self.channels = (ab, ba)
        if pcap is not None:
            iface = pcap.add_interface(linktype=LINKTYPE_SUNATM, name=name, fcs_len=None)
            ab._capture = (pcap, iface, 0x80)      # SunATM bit 7 set: DTE -> DCE
            ba._capture = (pcap, iface, 0x00)


# -- switch ----------------------------------------------------------------------------------
@dataclass
class SwitchStats:
    """Counters of an :class:`AtmSwitch`.

    ``drops_by_port`` counts cells dropped at each *output* port (queue full or port not
    connected); ``drops_by_vc`` the same drops by the *input* VC ``(in_port, vpi, vci)``;
    ``max_queue`` the most cells ever waiting at each output; ``unroutable`` the cells that
    arrived on a VC with no route (dropped at the input).
    """

    cells_in: int = 0
    cells_out: int = 0
    unroutable: int = 0
    drops_by_port: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    drops_by_vc: dict[tuple[int, int, int], int] = field(default_factory=lambda: defaultdict(int))
    max_queue: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class AtmSwitch:
    """An AN2-like output-queued ATM switch.

    Parameters
    ----------
    kernel
        The simulation kernel.
    name
        For errors and logs.
    ports
        Number of ports (AN2 had 16).
    buffer_cells
        Cells each output queue holds (those waiting for the output link's slots); a cell
        arriving at a full queue is dropped. 256 by default (an estimate).
    latency_ps
        From a cell's arrival at an input to its joining the output queue. 2 us by default (an
        estimate of header lookup plus crossbar transfer, not an AN2 measurement).
    """

    def __init__(self, kernel: Kernel, *, name: str = "sw0", ports: int = 16,
                 buffer_cells: int = 256, latency_ps: int = 2 * US):
        if not isinstance(kernel, Kernel):
            raise ValueError(f"kernel must be a Kernel, not {kernel!r}")
        if not isinstance(ports, int) or ports < 1:
            raise ValueError(f"ports must be a positive integer, not {ports!r}")
        if not isinstance(buffer_cells, int) or buffer_cells < 1:
            raise ValueError(f"buffer_cells must be a positive integer, not {buffer_cells!r}")
        if not isinstance(latency_ps, int) or latency_ps < 0:
            raise ValueError(f"latency_ps must be a non-negative integer, not {latency_ps!r}")
        self.kernel, self.name, self.ports = kernel, name, ports
        self.buffer_cells, self.latency_ps = buffer_cells, latency_ps
        self._ends: list[LinkEnd | None] = [None] * ports
        self._routes: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        self.stats = SwitchStats()

    def _check_port(self, port: int) -> None:
        if not isinstance(port, int) or not 0 <= port < self.ports:
            raise ValueError(f"{self.name}: no port {port!r} (ports 0..{self.ports - 1})")

    def connect(self, port: int, end: LinkEnd) -> None:
        """Attach ``port`` to a link end (the switch receives from it and sends into it)."""
        self._check_port(port)
        if not isinstance(end, LinkEnd):
            raise ValueError(f"{self.name}: port {port} must connect to a LinkEnd, not {end!r}")
        if self._ends[port] is not None:
            raise ValueError(f"{self.name}: port {port} is already connected")
        end.attach(lambda cell, p=port: self._receive(p, cell))
        self._ends[port] = end

    def route(self, in_port: int, vpi: int, vci: int, out_port: int, out_vpi: int,
              out_vci: int) -> None:
        """Add a VC: cells on (in_port, vpi, vci) leave out_port as (out_vpi, out_vci)."""
        self._check_port(in_port)
        self._check_port(out_port)
        Cell(vpi=vpi, vci=vci, payload=bytes(CELL_PAYLOAD))          # range checks
        Cell(vpi=out_vpi, vci=out_vci, payload=bytes(CELL_PAYLOAD))
        key = (in_port, vpi, vci)
        if key in self._routes:
            raise ValueError(f"{self.name}: VC {key} is already routed to {self._routes[key]}")
        self._routes[key] = (out_port, out_vpi, out_vci)

    def _receive(self, port: int, cell: Cell) -> None:
        self.stats.cells_in += 1
        route = self._routes.get((port, cell.vpi, cell.vci))
        if route is None:
            self.stats.unroutable += 1
            return
        out, vpi, vci = route
        self.kernel.post(self.kernel.now + self.latency_ps, self._enqueue,
                         (out, cell._rewritten(vpi, vci), (port, cell.vpi, cell.vci)))

    def _enqueue(self, arg: tuple[int, Cell, tuple[int, int, int]]) -> None:
        out, cell, vc = arg
        end = self._ends[out]
        # The output queue: the cells its channel holds whose slot has not started (the
        # channel's backlog property, inline: this runs once per switched cell).
        first = None if end is None else -((-(self.kernel.now + 1) * SLOT_DEN) // SLOT_NUM_PS)
        if end is None or end._tx._next_slot - first >= self.buffer_cells:
            self.stats.drops_by_port[out] += 1
            self.stats.drops_by_vc[vc] += 1
            return
        end._tx.send(cell)
        self.stats.cells_out += 1
        q = end._tx._next_slot - first
        if q > self.stats.max_queue[out]:
            self.stats.max_queue[out] = q
