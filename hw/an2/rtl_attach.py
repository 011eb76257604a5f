"""The AN2 card's RTL in a machine: what :class:`hw.an2.attach.AN2Kind`'s RTL methods do.

:func:`harness` is the top an HDL simulator runs (:class:`hw.an2.harness.An2Harness`, one build
for every card: :func:`harness_key`), and :func:`bind_rtl` joins a running one to its machine,
as the model meets it (``AN2Kind.attach_model``):

* the host bus and ``irq`` through :mod:`sim.bindings.binder`, each access completing after
  the card's changes at its last edge, as the model's :class:`sim.bus.RegisterPort` does;
* ``link_status`` driven at time 0, before the first edge: the PHY's Signal, FrameLock and
  CellLock when the card has a fibre (the model's :attr:`~hw.an2.model.An2Model.link_status`);
* the DMA bridge served by a :class:`sim.bindings.dma.DmaServer` on ``machine.memory``, each
  burst checked for the owner tag the card names with it (tag 0, the kernel, as ``None``, which
  :func:`sim.memory.default_access_check` never refuses: the model's rule) at the request edge,
  and the memory called :data:`~hw.an2.timing.DMA_SETUP_CYCLES` edges later, as the model
  does, the last word acknowledged one edge before the first edge at or after the memory is
  done (where the model ends the burst and the card may raise its next request:
  docs/an2_card.md, "DMA timing on the pins");
* the cell pins joined to the card's link end (``kind.link_end(machine, spec)``, the model's
  ``link``) by a :class:`CellPhy`.

Timing, as the model and docs/an2_card.md ("Pins") have it: a received cell's last word is
sampled at the first edge at or after its arrival (the link announces it when it is sent,
:meth:`sim.media.atm.LinkEnd.attach` with ``ahead``); a cell the card sends (its ``tx_soc`` at
``timing.cell_slot_edge(k)``) is given to the link for slot ``k``
(:meth:`~sim.media.atm.LinkEnd.send` with ``at``: the slot's start), the slot the model's send
at issue time takes. Python wakes once per cell sent and once per cell received (a kernel
entry a few edges before its first word), never per word.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from sim.bindings import BindingError, HdlDriver
from sim.devices import Attached, DeviceSpec, MachinePorts
from sim.media.atm import Cell, LinkEnd, slot_start
from sim.memory import Memory
from sim.time import Clock

from .harness import MEMORIES
from .link_bridge import COUNT_BITS, EDGE_BITS, ENTRY_WORDS, EDGE_WORD, RX_ENTRIES, TX_ENTRIES
from .registers import ADDR_WIDTH, Link
from .timing import CELL_SLOT_CYCLES, CELL_WORDS, DMA_SETUP_CYCLES, cell_slot_edge

__all__ = ["harness", "harness_key", "bind_rtl", "CellPhy", "MEMORIES", "cell_words",
           "words_cell", "RX_LEAD_CYCLES"]

#: A received cell is written into the bridge this many edges before its first word is due (or
#: at once, when the link announced it later than that): fewer than a slot's 35 cycles, so at
#: most two entries are pending, and enough that the write always precedes the bridge's start.
RX_LEAD_CYCLES = 16
_COUNT_MASK = (1 << COUNT_BITS) - 1
_EDGE_MASK = (1 << EDGE_BITS) - 1


def harness(kind: Any, spec: DeviceSpec) -> Any:
    """A :class:`hw.an2.harness.An2Harness` (the same for every card)."""
    from .harness import An2Harness
    kind.check(spec)
    return An2Harness()


def harness_key(kind: Any, spec: DeviceSpec) -> str:
    """``an2_harness``: the card has no parameter in its gateware (its link status is an input
    driven at time 0), so one build serves every card."""
    kind.check(spec)
    return "an2_harness"


def cell_words(cell: Cell) -> list[int]:
    """The 13 words of ``cell`` at the card's pins: the 4 header bytes (no HEC), then the
    payload, first byte in bits 31:24 of each word (docs/an2_card.md, "Pins")."""
    raw = cell.header4() + cell.payload
    return [int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4)]


def words_cell(words: list[int]) -> Cell:
    """The cell whose 13 pin words are ``words`` (the inverse of :func:`cell_words`)."""
    h = words[0]
    payload = b"".join(w.to_bytes(4, "big") for w in words[1:CELL_WORDS])
    return Cell(gfc=h >> 28, vpi=(h >> 20) & 0xFF, vci=(h >> 4) & 0xFFFF, pt=(h >> 1) & 7,
                clp=h & 1, payload=payload)


class CellPhy:
    """The Python side of a harness's :class:`~hw.an2.link_bridge.CellLinkBridge`: the card's
    PHY on link end ``end``.

    Parameters
    ----------
    access : SignalAccess
        The harness's ports and memories.
    driver : HdlDriver
        The simulation's driver (construct before it runs).
    end : LinkEnd
        The card's end of its link (this attaches to it).
    clock : Clock
        The card's clock; edge 0 at time 0 (the link's slot 0).
    name : str
        For messages.

    Attributes
    ----------
    cells_in, cells_out : int
        Cells played into the card and taken from it.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type.
    sim.bindings.BindingError
        While running: a cell announced too late to be played in time (the link gave less
        notice than the bridge needs), the card's ``tx_soc`` off the slot grid, or a word
        outside a cell.
    """

    def __init__(self, access: Any, driver: HdlDriver, end: LinkEnd, clock: Clock, *,
                 name: str):
        if not isinstance(driver, HdlDriver):
            raise TypeError(f"driver must be a sim.bindings.HdlDriver, not {driver!r}")
        if not isinstance(end, LinkEnd):
            raise TypeError(f"end must be a sim.media.atm.LinkEnd, not {end!r}")
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        self.access, self.driver, self.end, self.name = access, driver, end, name
        self.kernel = driver.kernel
        self._p = clock.period
        port = access.port
        self._rx_put = port("link_rx_put")
        self._tx_count = port("link_tx_count")
        self._tx_errors = port("link_tx_errors")
        self._put = 0                   # receive entries written
        self._rx_busy: deque[int] = deque()   # last-word edges of the entries written
        self._taken = 0                 # transmitted cells read
        self.cells_in = 0
        self.cells_out = 0
        end.attach(self._announced, ahead=True)
        driver.watch(self._tx_count, self._on_tx)
        driver.watch(self._tx_errors, self._on_tx_error)

    # -- receive ----------------------------------------------------------------------------
    def _announced(self, cell: Cell, arrive: int) -> None:
        """The link sent ``cell`` to us; its last bit arrives at ``arrive`` ps."""
        last = -(-arrive // self._p)            # the first edge at or after the arrival
        first = last - (CELL_WORDS - 1)
        k = self.kernel
        k.call_at(max(k.now, (first - RX_LEAD_CYCLES) * self._p),
                  lambda: self._write(cell, first))

    def _write(self, cell: Cell, first: int) -> None:
        now = self.kernel.now
        # The bridge acts on what it sees from the next edge on, and starts one edge early.
        if first - 1 <= now // self._p:
            raise BindingError(f"{self.name}: a cell due at the card's pins from edge {first} "
                               f"was announced too late (at {now} ps)")
        busy = self._rx_busy
        while busy and busy[0] * self._p <= now:
            busy.popleft()
        if len(busy) >= RX_ENTRIES:
            raise BindingError(f"{self.name}: more than {RX_ENTRIES} received cells pending "
                               f"in the bridge at {now} ps")
        entry = self._put % RX_ENTRIES
        self.access.mem_write("link.rx_mem", entry * ENTRY_WORDS,
                              cell_words(cell) + [first & _EDGE_MASK])
        busy.append(first + CELL_WORDS - 1)
        self._put += 1
        self.driver.set(self._rx_put, self._put & _COUNT_MASK)
        self.cells_in += 1

    # -- transmit ----------------------------------------------------------------------------
    def _on_tx(self, count: int) -> None:
        edge = self.kernel.now // self._p
        for _ in range((count - self._taken) & _COUNT_MASK):
            entry = self._taken % TX_ENTRIES
            words = self.access.mem_read("link.tx_mem", entry * ENTRY_WORDS, EDGE_WORD + 1)
            self._taken += 1
            soc = edge - ((edge - words[EDGE_WORD]) & _EDGE_MASK)
            slot = soc * CELL_SLOT_CYCLES.denominator // CELL_SLOT_CYCLES.numerator
            if cell_slot_edge(slot) != soc:
                raise BindingError(f"{self.name}: the card started a cell at edge {soc}, not "
                                   f"at the first edge of a cell slot")
            self.end.send(words_cell(words), at=slot_start(slot))
            self.cells_out += 1

    def _on_tx_error(self, _count: int) -> None:
        raise BindingError(f"{self.name}: the card drove a word outside a cell, or started a "
                           f"cell before the last one had its {CELL_WORDS} words "
                           f"(at {self.kernel.now} ps)")

    def __repr__(self) -> str:
        return f"<CellPhy {self.name} in={self.cells_in} out={self.cells_out}>"


def _requester(tag: int) -> int | None:
    """The memory's requester for owner tag ``tag``: the model's ``owner or None``."""
    return tag or None


def bind_rtl(kind: Any, machine: MachinePorts, spec: DeviceSpec, access: Any,
             driver: Any) -> Attached:
    """Join a running :class:`~hw.an2.harness.An2Harness` to ``machine`` (module docstring).

    Returns
    -------
    Attached
        ``parts``: ``bus`` (the bus initiator), ``dma`` (the
        :class:`~sim.bindings.dma.DmaServer`), ``phy`` (the :class:`CellPhy`, None without a
        link) and ``link`` (the card's link end or None), as the model's ``link``.

    Raises
    ------
    ValueError
        If the machine has no main memory.
    """
    from sim.bindings.binder import bind_host_bus, bind_irq
    from sim.bindings.dma import DmaServer

    kind.check(spec)
    if not isinstance(machine.memory, Memory):
        raise ValueError(f"{machine.name}: an2 {spec.name} is a DMA master and needs main "
                         f"memory (memory_bytes > 0)")
    name = f"{machine.name}.{spec.name}"
    clock = kind.clock
    end = kind.link_end(machine, spec)
    status, level = access.port("link_status"), 0
    if end is not None:
        level = int(Link.Signal | Link.FrameLock | Link.CellLock)
    # At the kernel's present time (0), before the first edge: a kernel entry, so that every
    # backend's driver runs it inside its simulator.
    driver.kernel.call_at(driver.kernel.now, lambda: driver.set(status, level))
    # The model's register port resumes the CPU after the card's changes at the completing
    # edge (an interrupt the access cleared has fallen): the same here.
    bus = bind_host_bus(access, driver, clock, addr_width=ADDR_WIDTH, name=name,
                        after_hardware=True)
    irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
    dma = DmaServer(access, driver, clock, machine.memory, requester_of=_requester,
                    setup_cycles=DMA_SETUP_CYCLES, early_cycles=1, name=f"{name}.dma")
    phy = CellPhy(access, driver, end, clock, name=f"{name}.phy") if end is not None else None
    return Attached(spec, "rtl", bus, irq, parts={"bus": bus, "dma": dma, "phy": phy,
                                                  "link": end})
