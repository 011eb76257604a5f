"""Bus-functional models of the AN2 card's 32-bit cell pins for cocotb (docs/an2_card.md, Pins).

A cell crosses the pins as 13 words, one per cycle while ``valid`` is high: word 0 the four
header bytes without the HEC (GFC 31:28, VPI 27:20, VCI 19:4, PTI 3:1, CLP 0), marked by
``soc``, then the 48 payload bytes four per word, first byte in bits 31:24.

* :func:`cell_words` / :func:`cell_of_words`: a :class:`sim.media.atm.Cell` to its 13 words
  and back (the reference for both directions).
* :class:`CellSignals`: ``<prefix>_valid``, ``<prefix>_soc``, ``<prefix>_data`` of a design.
* :class:`CellSource`: drives the card's receive pins from a queue of cells (or raw words, for
  a truncated cell), paced at one cell per OC-3c slot (:func:`hw.an2.timing.cell_slot_edge`)
  or back to back, with random idle slots or cycles between cells and random pauses between
  the words of a cell (the pins allow both).
* :class:`CellSink`: watches the card's transmit pins, rebuilds each cell with the edge its
  first word was driven at, and records protocol violations (a cell of fewer than 13
  consecutive words, ``soc`` off a slot edge, two cells in one slot).
* :func:`pdus_of`: the sink's cells reassembled per VC with :mod:`sim.media.aal5` (CRC-32,
  trailer), the golden model of the transmit path.

Python wakes once per word while a cell crosses the pins, never while they are idle.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import cocotb
from cocotb.queue import Queue
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, ReadOnly, RisingEdge

from bfm.pauses import next_pause, wait_edges
from hw.an2.timing import CELL_SLOT_CYCLES, CELL_WORDS, cell_slot_edge
from sim.media.aal5 import Aal5Error, reassemble
from sim.media.atm import Cell

__all__ = ["CellSignals", "CellSink", "CellSource", "SentCell", "cell_of_words", "cell_words",
           "pdus_of", "slot_at_or_after"]

_PACINGS = ("slot", "back_to_back")


def cell_words(cell: Cell) -> list[int]:
    """The 13 words of ``cell`` at the pins (header without HEC, then the payload)."""
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be a sim.media.atm.Cell, not {cell!r}")
    raw = cell.header4() + cell.payload
    return [int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4)]


def cell_of_words(words: Iterable[int]) -> Cell:
    """Inverse of :func:`cell_words`.

    Raises
    ------
    ValueError
        Unless ``words`` is 13 32-bit words.
    """
    words = list(words)
    if len(words) != CELL_WORDS or not all(isinstance(w, int) and 0 <= w < 1 << 32
                                           for w in words):
        raise ValueError(f"a cell is {CELL_WORDS} 32-bit words, not {words!r}")
    h = words[0]
    payload = b"".join(w.to_bytes(4, "big") for w in words[1:])
    return Cell(gfc=h >> 28, vpi=(h >> 20) & 0xFF, vci=(h >> 4) & 0xFFFF, pt=(h >> 1) & 7,
                clp=h & 1, payload=payload)


def slot_at_or_after(edge: int) -> int:
    """The first cell slot ``k`` whose edge :func:`cell_slot_edge(k)` is at or after ``edge``."""
    if edge <= 0:
        return 0
    k = int(edge / CELL_SLOT_CYCLES)
    while cell_slot_edge(k) < edge:
        k += 1
    while k and cell_slot_edge(k - 1) >= edge:
        k -= 1
    return k


class CellSignals:
    """The three cell signals of one direction of a cocotb design.

    Parameters
    ----------
    dut
        The cocotb handle of the design.
    prefix : str
        ``"rx"`` (the card's receive pins, default) or ``"tx"``, or another design's name.
    separator : str
        Between prefix and member (default ``"_"``: the An2Card's members are ``rx_valid``...).

    Raises
    ------
    AttributeError
        If the design lacks one of them (the message names it).
    """

    MEMBERS = ("valid", "soc", "data")

    def __init__(self, dut: Any, *, prefix: str = "rx", separator: str = "_") -> None:
        for member in self.MEMBERS:
            name = f"{prefix}{separator}{member}"
            try:
                setattr(self, member, getattr(dut, name))
            except AttributeError:
                raise AttributeError(f"the design has no cell signal {name!r}") from None
        self.name = prefix

    def idle(self) -> None:
        """Drive the three idle (a source's pins only)."""
        self.valid.value = 0
        self.soc.value = 0
        self.data.value = 0


@dataclass(frozen=True)
class SentCell:
    """A cell that crossed the pins: ``edge``, the edge after which its first word (``soc``)
    was on the pins (the receiving side samples it at the next edge; the card's convention for
    ``tx_soc`` at ``cell_slot_edge(k)``), and the cell (or its raw words, for a truncated
    one)."""

    edge: int
    cell: Cell | None
    words: tuple[int, ...]


class CellSource:
    """Drives cells into a design's receive pins (no back-pressure: the card never waits).

    Parameters
    ----------
    pins : CellSignals
        The receive pins.
    clock
        The card's clock handle (started at time 0: edge ``k`` at ``k * period_ps``).
    period_ps : int
        Its period.
    pacing : str
        ``"slot"`` (default): each cell's first word is driven at the first edge of a free
        OC-3c slot (:class:`SentCell`), one cell per slot, the line rate; ``"back_to_back"``:
        right after the previous cell's last word (faster than any link: a stress test).
    gaps : iterator of int, optional
        Idle slots (``"slot"``) or idle cycles (``"back_to_back"``) before each cell.
    word_gaps : iterator of int, optional
        Idle cycles (``valid`` low) before each word after the first of a cell.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter.
    """

    def __init__(self, pins: CellSignals, clock: Any, *, period_ps: int, pacing: str = "slot",
                 gaps: Iterator[int] | None = None,
                 word_gaps: Iterator[int] | None = None) -> None:
        if not isinstance(pins, CellSignals):
            raise TypeError(f"pins must be a CellSignals, not {pins!r}")
        if pacing not in _PACINGS:
            raise ValueError(f"pacing must be one of {_PACINGS}, not {pacing!r}")
        if not isinstance(period_ps, int) or isinstance(period_ps, bool) or period_ps <= 0:
            raise ValueError(f"period_ps must be a positive int, not {period_ps!r}")
        self.pins, self.clock, self.period, self.pacing = pins, clock, period_ps, pacing
        self.gaps, self.word_gaps = gaps, word_gaps
        #: Every cell driven, in order, with its first word's edge.
        self.sent: list[SentCell] = []
        self._queue: Queue[tuple[Cell | None, tuple[int, ...]]] = Queue()
        self._idle = Event()
        self._idle.set()
        self._next_slot = 0
        self._free_edge = 0           # the first edge a new cell's first word may be sampled
        pins.idle()
        self._task = cocotb.start_soon(self._run())

    def send_nowait(self, cell: Cell) -> None:
        """Queue ``cell``."""
        self._put(cell, tuple(cell_words(cell)))

    async def send(self, cell: Cell) -> None:
        """Queue ``cell``; returns at once (the queue is unbounded)."""
        self.send_nowait(cell)

    def send_words(self, words: Iterable[int]) -> None:
        """Queue raw words as one "cell" (the first marked ``soc``): 1 .. 13 of them, to drive
        a truncated cell the card must drop.

        Raises
        ------
        ValueError
            Unless 1 .. 13 32-bit words.
        """
        words = tuple(words)
        if not 1 <= len(words) <= CELL_WORDS or not all(isinstance(w, int) and 0 <= w < 1 << 32
                                                        for w in words):
            raise ValueError(f"raw cell words are 1 .. {CELL_WORDS} 32-bit words, not {words!r}")
        self._put(None, words)

    def _put(self, cell: Cell | None, words: tuple[int, ...]) -> None:
        self._idle.clear()
        self._queue.put_nowait((cell, words))

    def idle(self) -> bool:
        """True when every queued cell has been driven."""
        return self._idle.is_set()

    async def wait(self) -> None:
        """Wait until every queued cell has been driven."""
        await self._idle.wait()

    def _edge(self) -> int:
        return round(get_sim_time("ps")) // self.period

    async def _run(self) -> None:
        pins, clk = self.pins, self.clock
        while True:
            if self._queue.empty():
                self._idle.set()
                cell, words = await self._queue.get()
                await RisingEdge(clk)         # back in step: just after edge ``now``
            else:                             # just after the previous cell's last edge
                cell, words = self._queue.get_nowait()
            now = self._edge()
            first = max(now, self._free_edge)
            if self.pacing == "slot":
                k = max(slot_at_or_after(first), self._next_slot) + next_pause(self.gaps, "gap")
                first = cell_slot_edge(k)
                self._next_slot = k + 1
            else:
                first += next_pause(self.gaps, "gap")
            if first > now:                   # drive just after edge ``first``
                await wait_edges(clk, first - now, period_ps=self.period)
            for i, w in enumerate(words):
                if i:
                    pause = next_pause(self.word_gaps, "word gap")
                    if pause:
                        pins.valid.value = 0
                        pins.soc.value = 0
                        for _ in range(pause):
                            await RisingEdge(clk)
                pins.valid.value = 1
                pins.soc.value = int(i == 0)
                pins.data.value = w
                await RisingEdge(clk)         # the card samples the word here
            pins.idle()
            self._free_edge = self._edge()
            self.sent.append(SentCell(first, cell, words))


class CellSink:
    """Takes the cells a design drives on its transmit pins.

    Parameters
    ----------
    pins : CellSignals
        The transmit pins.
    clock
        The card's clock handle (edge ``k`` at ``k * period_ps``).
    period_ps : int
        Its period.
    check_slots : bool
        Record a violation for a cell whose first word is not driven at a slot's first edge
        (:func:`~hw.an2.timing.cell_slot_edge` from ``origin``, :class:`SentCell`) or that
        shares a slot with the previous cell.
    origin : int
        The edge of slot 0 (default 0: the card counts slots from the clock's first edge;
        a bench that holds the card in reset first gives the edge after which it let go).
    callback : callable, optional
        Called with each :class:`SentCell`; without one they queue for :meth:`recv`.
    """

    def __init__(self, pins: CellSignals, clock: Any, *, period_ps: int,
                 check_slots: bool = True, origin: int = 0,
                 callback: Callable[[SentCell], None] | None = None) -> None:
        if not isinstance(pins, CellSignals):
            raise TypeError(f"pins must be a CellSignals, not {pins!r}")
        if not isinstance(origin, int) or isinstance(origin, bool) or origin < 0:
            raise ValueError(f"origin must be an edge number >= 0, not {origin!r}")
        self.origin = origin
        if not isinstance(period_ps, int) or isinstance(period_ps, bool) or period_ps <= 0:
            raise ValueError(f"period_ps must be a positive int, not {period_ps!r}")
        self.pins, self.clock, self.period = pins, clock, period_ps
        self.check_slots, self.callback = check_slots, callback
        #: Every cell seen, in order.
        self.cells: list[SentCell] = []
        #: Protocol violations by the design (messages); a bench asserts none.
        self.violations: list[str] = []
        self._queue: Queue[SentCell] = Queue()
        self._last_slot = -1
        self._task = cocotb.start_soon(self._run())

    async def recv(self) -> SentCell:
        """The next cell (when no callback was given)."""
        return await self._queue.get()

    def empty(self) -> bool:
        return self._queue.empty()

    def _sample(self) -> tuple[int, int, int]:
        p = self.pins
        vals = (p.valid.value, p.soc.value, p.data.value)
        if not all(v.is_resolvable for v in vals[:2]):
            self.violations.append(f"valid/soc unresolvable ({vals[0]}, {vals[1]})")
            return 0, 0, 0
        v, s, d = int(vals[0]), int(vals[1]), vals[2]
        if v and not d.is_resolvable:
            self.violations.append(f"data {d} with valid at {get_sim_time('ps')} ps")
            return v, s, 0
        return v, s, int(d) if v else 0

    async def _run(self) -> None:
        p, clk = self.pins, self.clock
        await ReadOnly()
        while True:
            valid, soc, data = self._sample()
            if not valid:
                await RisingEdge(p.valid)
                await ReadOnly()
                continue
            # The word is on the pins after edge ``edge`` (the link samples it at the next).
            edge = round(get_sim_time("ps")) // self.period
            if not soc:
                self.violations.append(f"edge {edge}: a word without soc outside a cell")
                await RisingEdge(clk)
                await ReadOnly()
                continue
            words = [data]
            while len(words) < CELL_WORDS:
                await RisingEdge(clk)
                await ReadOnly()
                valid, soc, data = self._sample()
                if not valid or soc:
                    break
                words.append(data)
            if len(words) < CELL_WORDS:
                self.violations.append(f"edge {edge}: a cell of {len(words)} consecutive words, "
                                       f"not {CELL_WORDS}")
                continue                      # idle, or a new soc: start over with it
            self._take(edge, words)
            await RisingEdge(clk)
            await ReadOnly()

    def _take(self, edge: int, words: list[int]) -> None:
        if self.check_slots:
            k = slot_at_or_after(edge - self.origin)
            if edge < self.origin or cell_slot_edge(k) != edge - self.origin:
                self.violations.append(f"edge {edge}: a cell's first word off a slot edge")
            elif k <= self._last_slot:
                self.violations.append(f"edge {edge}: two cells in slot {k}")
            self._last_slot = k
        sent = SentCell(edge, cell_of_words(words), tuple(words))
        self.cells.append(sent)
        if self.callback is not None:
            self.callback(sent)
        else:
            self._queue.put_nowait(sent)


def pdus_of(cells: Iterable[Cell]) -> dict[int, list[bytes | Aal5Error]]:
    """Reassemble AAL5 PDUs per VCI from cells in link order: each VC's list holds a good PDU's
    payload (bytes) or the :class:`~sim.media.aal5.Aal5Error` its cells gave, one per
    end-of-PDU cell; cells after a VC's last end-of-PDU cell are left out."""
    partial: dict[int, list[bytes]] = {}
    out: dict[int, list[bytes | Aal5Error]] = {}
    for c in cells:
        partial.setdefault(c.vci, []).append(c.payload)
        if c.end_of_sdu:
            try:
                pdu: bytes | Aal5Error = reassemble(partial.pop(c.vci)).payload
            except Aal5Error as e:
                pdu = e
            out.setdefault(c.vci, []).append(pdu)
    return out
