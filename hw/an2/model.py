"""The AN2-style ATM card's transaction-level model (first version): registers, DMA, cells.

Semantics: docs/an2_card.md and :mod:`hw.an2.registers`; timing: :mod:`hw.an2.timing`. The
model never wakes per clock cycle: the transmit engine is one kernel task that sleeps from one
DMA burst or cell slot to the next, and the receive engine is one task that takes the cells the
link delivers (:meth:`sim.media.atm.LinkEnd.attach`) in arrival order.

Timing rules (all times are card clock edges, ``p`` = :data:`~hw.an2.timing.CLOCK_PERIOD_PS`):

* Bus: as :class:`hw.bus.HostBus` with :data:`~hw.an2.timing.BUS_WAIT_CYCLES` wait states: a
  request at ``t`` is sampled at the edge ``e0`` strictly after ``t``, takes effect at
  ``e = e0 + BUS_WAIT_CYCLES`` and completes at ``e + p``; accesses are served one at a time.
* DMA: the card's one port (:class:`_DmaPort`, the RTL's hw/an2/dma_arbiter.py) carries one
  burst at a time: a burst asked for at edge ``s`` starts at ``s`` or when the port is free
  (the end edge of the burst on it, or the edge after a refusal was seen), the receive engine
  first, then the completion writer, then the transmit engine on the same edge. A burst that
  starts at edge ``s`` reaches the memory at ``s + DMA_SETUP_CYCLES p``; it
  then takes :meth:`sim.memory.Memory.dma_write` / ``dma_read`` (the memory's time, queued
  behind other masters) and ends at the first edge at or after the memory is done. A refusal
  (:class:`~sim.memory.MemoryAccessError`) is seen at ``s + DMA_ERR_CYCLES p`` and moves no
  byte. Every DMA of a VC names its owner tag to the memory (owner 0, the kernel, is passed as
  ``None``, which :func:`sim.memory.default_access_check` never refuses); rings and the
  completion queue are the kernel's.
* Transmit: the doorbell (a TxProducer write at ``e``) starts a descriptor fetch at
  ``e + TX_DOORBELL_CYCLES``; each cell's payload is read by DMA (one burst per buffer piece),
  issued ``TX_CELL_ISSUE_CYCLES`` later into the first free cell slot ``k`` after it; the card
  reads at most ``TX_FIFO_CELLS`` cells ahead of the slot the link is sending. The RTL puts
  the cell's header on the pins at edge ``cell_slot_edge(k) - 1`` and its last word at
  ``cell_slot_edge(k) + 11``; the model hands the cell to :meth:`LinkEnd.send` (as given at
  the slot's start) at the edge after, where the RTL's binding does, unless Control.Reset cut
  it (:meth:`_to_link`). After the Last descriptor the descriptors are written back (one
  4-word burst each) and the completion is written.
* Hardware pipes (docs/an2_card.md): a Csum PDU is first read piece by piece as the send reads
  it, back to back, with no FIFO wait and no cell (:meth:`_tx_sum_pass`); the send follows
  from the end of its last burst with the checksum field put in. The sums are
  :func:`hw.ilp.registers.run` of :data:`hw.an2.pipes.CKSUM` on NumPy words; the receive sum
  and swap cost no edge.
* Receive: a cell's last word is at the card at the first edge at or after its arrival, its
  first word ``CELL_WORDS - 1`` edges before (a looped cell's: the edge before its slot's
  first). The receive FIFO holds ``RX_FIFO_CELLS``: a cell whose first word comes at an edge
  at or before the one the engine is done with the cell ``RX_FIFO_CELLS`` cells before it
  (or not yet) is dropped, uncounted (:meth:`_rx_full`, hw/an2/rx_ingress.py). Its
  payload burst is requested ``RX_DMA_START_CYCLES`` later (or when the engine is free: one or
  two edges after a cell that needed no DMA, :meth:`_rx_ready`). A VC disabled while it
  reassembles is taken before the cells the engine would take after the write's edge.
* Completion: written at CqProducer; CqProducer advances ``CQ_UPDATE_CYCLES`` after the burst,
  and the coalescing decision is taken then; ``irq`` follows ``IRQ_LATENCY_CYCLES`` later.

Simplifications of this first version (see also the report of issue 16):

* Register reads return the value at the access edge after the kernel's events of that time
  (the disk model's "value just before ``e``" rule is not reproduced).
* The receive engine fetches a pool's descriptor when it needs it (no prefetch: each new PDU
  pays a descriptor fetch).
* A receive PDU that runs out of buffers in mid-PDU completes with NoBuffer (the buffers
  already filled are handed back), and a PDU whose completion finds the queue full waits for
  the host; a PDU that *starts* while the queue is full is dropped as NoBuffer.
* A raw-cell VC (aal5 = 0) sends a PDU whose length is not a multiple of 48 with its last cell
  zero-padded (the doc leaves this open).
* Control.Reset takes effect at once (engines abandon their work); Control reads Reset for
  RESET_CYCLES + 1 edges and ignores writes meanwhile, as the RTL's sweep counter does. The
  cells in the transmit FIFO whose last word is not on the pins by the Reset edge never reach
  the link, and the receive FIFO is emptied and takes no cell whose first word comes before
  the end of Reset, as in the RTL. A DMA burst in flight at the Reset edge still completes
  (the RTL cuts it at the next edge, after the words moved so far). IrqCause.Link is never
  set.
* IrqCause: a cause set on the same edge as a clearing write is kept, as the RTL keeps it.
* Link status is constant (all of Signal, FrameLock, CellLock when a link or Loopback is there).

Fast path and reference path
----------------------------
The per-cell work has two implementations. The reference path is the first version's call
chain (``_tx_gather`` / ``_tx_finish`` / ``_send``, ``_rx_cell`` / ``_rx_write`` / ``_dma``
through :meth:`Memory.dma_read` / :meth:`~Memory.dma_write`, descriptors through
:mod:`hw.an2.registers`' classes). The fast path (the default; :data:`REFERENCE` or
``reference=True`` forces the other) runs a transmitted cell's burst and issue, and a received
cell that continues its PDU in the same buffer, in the engine's own frame, with
:meth:`Memory.dma_claim` and the entry codecs of :class:`_Codec`. It makes the same memory
calls (checks, claims at the same times, bytes taken or landed when a burst ends) and sleeps to
the same times, so it puts the same kernel entries in the heap in the same order: the results
are identical by construction, and tests/hw/test_an2_model.py compares every observable of
random switched networks in both. It does not merge a cell's entries into fewer: each entry's
place in the kernel's (time, sequence) order decides ties within a picosecond (both engines,
other DMA masters and the CPU act on the same clock edges, and every link's slots fall on one
grid), and an entry pushed at another moment can change that order.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields

import numpy as np

from sim.bus import IrqLine, RegisterPort, RegisterTarget
from sim.kernel import Kernel
from sim.media.aal5 import build_pdu, crc32_aal5
from sim.media.atm import SLOT_DEN, SLOT_NUM_PS, Cell, LinkEnd, first_slot_at, slot_start
from sim.memory import Memory, MemoryAccessError, MemoryBoundsError
from sim.time import Clock

from .registers import (AAL5_TRAILER_BYTES, CELL_PAYLOAD_BYTES, COALESCE_TIME_BITS,
                        COUNTERS_OFFSET, ENTRY_BYTES,
                        MAX_PDU, MAX_PDU_CELLS, NO_INDEX, NUM_POOLS, NUM_VCS, RESET, WINDOW_SIZE,
                        Completion, Control, Counter, CqError, CqKind, Irq, Link, Reg,
                        RxDescriptor, RxSwap, Status, TxDescriptor, VcEntry, VcState,
                        aal5_cells, csum_field_fits, csum_field_offset, ring_entries_valid,
                        tx_csum_result)
from .pipes import masked_words, ones_sum, swap_payload
from .timing import (BUS_WAIT_CYCLES, CELL_SLOT_CYCLES, CELL_WORDS, CQ_UPDATE_CYCLES,
                     DMA_ERR_CYCLES, DMA_SETUP_CYCLES, IRQ_LATENCY_CYCLES, RESET_CYCLES,
                     RX_DMA_START_CYCLES, RX_FIFO_CELLS, RX_TRAILER_CHECK_CYCLES,
                     TX_CELL_ISSUE_CYCLES, TX_DOORBELL_CYCLES, TX_FIFO_CELLS, cell_slot_edge)

__all__ = ["An2Model", "RingFault", "REFERENCE"]

#: Run every card in the per-cell reference path (the first version's engines, one coroutine
#: call chain per cell) instead of the fast path; the ``reference`` argument of
#: :class:`An2Model` overrides it per card. Both give identical results (tests/hw/
#: test_an2_model.py runs random networks in both and compares every observable).
REFERENCE = False

_MASK = 0xFFFF_FFFF
_ERROR_COUNTERS = {Counter.CrcErrors, Counter.OversizePdus, Counter.NoBuffer, Counter.LostCells,
                   Counter.DmaFaults, Counter.UnknownVc}
_DMA_ERRORS = (MemoryAccessError, MemoryBoundsError)
#: Decoded VC table words (a VcEntry is frozen: one decode per distinct word, for every card).
_ENTRIES: dict[int, VcEntry] = {}
# Plain ints of the registers, bits and counters the per-cell paths test.
_CONTROL, _STATUS = int(Reg.Control), int(Reg.Status)
_LOOPBACK = int(Control.Loopback)
_RX_ON, _FAULT = int(Status.RxOn), int(Status.Fault)
_CELLS_TX, _CELLS_RX = int(Counter.CellsTx), int(Counter.CellsRx)
_CELL = CELL_PAYLOAD_BYTES
#: The VcEntry bits the table stores (all but state and the reserved ones), and rx_swap's place.
_VC_ENTRY_BITS = 0x07FF_FF0F
_RX_SWAP_SHIFT = 17
#: A cell slot in card cycles, as a fraction (slot ``k`` begins at edge ``ceil(k N / D)``:
#: :func:`~hw.an2.timing.cell_slot_edge`, inline where it runs per cell).
_SLOT_N, _SLOT_D = CELL_SLOT_CYCLES.numerator, CELL_SLOT_CYCLES.denominator


class _Kill:
    """A VC disabled while it reassembled (a VcEntry write): the receive engine returns its
    buffers. ``done`` once taken (it may be taken before the cells queued ahead of it)."""

    __slots__ = ("vci", "done")

    def __init__(self, vci: int) -> None:
        self.vci, self.done = vci, False


class RingFault(Exception):
    """A DMA to a ring or the completion queue was refused: the engines halt (Status.Fault)."""


class _Abandoned(Exception):
    """Control.Reset was written while an engine was working: it drops what it was doing."""


class _Codec:
    """Build, pack and unpack one entry class of :mod:`hw.an2.registers` with plain ints: its
    fields' offsets and widths are read from its Amaranth layout once, here, where the class's
    own methods look each one up per field and per call (the per-PDU cost of the model).

    The results are the class's: :meth:`new` checks each field as the constructor does and
    lets the constructor itself raise its error for a field that does not fit; it converts the
    enum fields and calls the class's ``_validate``.
    """

    def __init__(self, cls) -> None:
        layout = cls._layout
        self.cls = cls
        self.fields = tuple((f.name, layout[f.name].offset, (1 << layout[f.name].width) - 1)
                            for f in fields(cls))
        self.defaults = {f.name: f.default for f in fields(cls)}
        self.enums = dict(cls._enums)
        self.nbytes = layout.size // 8

    def new(self, kw: dict):
        values = {**self.defaults, **kw}
        if len(values) != len(self.fields):
            return self.cls(**kw)               # its own error for an unknown keyword
        obj = object.__new__(self.cls)
        for name, _, mask in self.fields:
            v = values[name]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= mask:
                return self.cls(**kw)           # its own error for a field that does not fit
            if name in self.enums:
                v = self.enums[name](v)
            object.__setattr__(obj, name, v)
        obj._validate()
        return obj

    def pack(self, entry) -> bytes:
        value = 0
        for name, offset, _ in self.fields:
            value |= int(getattr(entry, name)) << offset
        return value.to_bytes(self.nbytes, "little")

    def unpack(self, raw: bytes):
        value = int.from_bytes(raw, "little")
        return self.new({name: (value >> offset) & mask for name, offset, mask in self.fields})


_CODECS = {cls: _Codec(cls) for cls in (TxDescriptor, RxDescriptor, Completion)}


@dataclass
class _Vc:
    """The receive state of one VC."""

    state: VcState = VcState.Idle
    owner: int = 0
    pool: int = 0
    cells: int = 0
    pdu: bytearray = field(default_factory=bytearray)
    buf: RxDescriptor | None = None   # the buffer being filled
    buf_index: int = 0
    buf_used: int = 0
    first: bool = True
    delivered: int = 0
    filled: list = field(default_factory=list)   # (index, descriptor) written back, not last
    csum: bool = False          # the PDU's VC sums its payload (AAL5 with rx_csum)
    swap: RxSwap = RxSwap.NoSwap    # its rx_swap
    pipe_start: int = 0         # the pipes' first byte (2 * pipe_start)
    written: int = 0            # payload bytes written (before a trailer-only cell's trim)
    sum: int = 0                # a good PDU's receive sum (with csum)


#: The masters of the card's one DMA port in its arbiter's priority order: hw/an2/gateware.py
#: wires the receive engine to the arbiter's m0, the completion writer to m1 and the transmit
#: engine to m2 (hw/an2/dma_arbiter.py: the lowest numbered wins).
_RX, _CQ, _TX = 0, 1, 2


def _words(addr: int, n: int) -> tuple[int, int]:
    """The aligned first byte and byte count of the words that bytes ``[addr, addr + n)``
    touch: what the RTL's DMA reads (hw/an2/tx_engine.py reads whole words and realigns)."""
    lo = addr & ~3
    return lo, (addr + n - lo + 3) & ~3


class _DmaPort:
    """The card's one DMA port (hw/an2/dma_arbiter.py): whole bursts, one at a time.

    A burst asked for at edge ``s`` starts at the first edge at or after ``s`` at which the
    port is free (:attr:`free`, set by :meth:`release`: a burst's end edge, or the edge after
    the one that sampled a refusal, as :class:`hw.bus.DmaBus` wants ``req`` low for a cycle
    after either). Bursts that could start on the same edge go in the arbiter's order (lowest
    master number first). The decision for edge ``s`` is taken one picosecond after it, when
    every request for ``s`` is in (all requests are made at edges, in the model's tasks); the
    receive engine, the highest priority, asking at ``s`` itself for a free port is granted at
    once (nobody can take ``s`` from it).
    """

    __slots__ = ("kernel", "free", "busy", "waiting", "_seq")

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.free = 0           # the first edge (ps) at which a new burst may start
        self.busy = False       # a burst holds the port
        self.waiting: list = []     # [master, seq, edge, event]
        self._seq = 0

    async def acquire(self, s: int, master: int) -> int:
        """Wait for the port from edge ``s``; returns the edge the burst starts at."""
        k = self.kernel
        if k.now == s and master == _RX and not self.busy and self.free <= s:
            self.busy = True
            return s
        ev = k.event("an2.dma.port")
        self.waiting.append((master, self._seq, s, ev))
        self._seq += 1
        if not self.busy:
            self._arm(max(s, self.free))
        return await ev

    def _arm(self, edge: int) -> None:
        self.kernel.post(edge + 1, self._arbitrate, edge)

    def _arbitrate(self, edge: int) -> None:
        if self.busy or edge < self.free:
            return
        best = None
        for w in self.waiting:
            if w[2] <= edge and (best is None or w[:2] < best[:2]):
                best = w
        if best is not None:
            self.waiting.remove(best)
            self.busy = True
            best[3].set(edge)

    def release(self, free: int) -> None:
        """The burst holding the port is over: a new one may start at edge ``free``."""
        self.busy = False
        self.free = free
        if self.waiting:
            self._arm(max(free, min(w[2] for w in self.waiting)))


class An2Model(RegisterTarget):
    """Transaction-level model of the AN2-style card; a :class:`sim.bus.BusTarget`.

    Parameters
    ----------
    kernel : Kernel
    clock : Clock
        The card's clock (12.5 MHz).
    memory : Memory
        Host memory, reached by DMA.
    irq : IrqLine
        The line the card drives (``IrqCause & IrqEnable``).
    link : LinkEnd or None
        The link end the card's fibre is attached to (None: no link; Loopback still works).
    reference : bool or None, keyword-only
        Force the per-cell reference path (True) or the fast path (False); None (the default)
        follows the module's :data:`REFERENCE`.

    Raises
    ------
    TypeError
        If an argument is of the wrong type.

    Attributes
    ----------
    regs : dict
        Register values by byte offset (what the bus reads, but LinkStatus, VcEntry, counters).
    counters : list of int
        The :class:`~hw.an2.registers.Counter` words (:meth:`counter`).
    vc_table : list of int
        The VC table's entries as VcEntry writes them (State excluded).
    port : sim.bus.RegisterPort
        The bus side (``read``/``write`` are its, with the timing above).
    reads, writes : int
        Bus accesses served.
    """

    def __init__(self, kernel: Kernel, clock: Clock, *, memory: Memory, irq: IrqLine,
                 link: LinkEnd | None, reference: bool | None = None) -> None:
        # The bus side first: it checks kernel and clock.
        self.port = RegisterPort(kernel, clock, name="AN2", tag="an2", window_size=WINDOW_SIZE,
                                 wait_cycles=BUS_WAIT_CYCLES, peek=self._peek, poke=self._poke)
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a sim.memory.Memory, not {memory!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        if link is not None and not isinstance(link, LinkEnd):
            raise TypeError(f"link must be a sim.media.atm.LinkEnd or None, not {link!r}")
        if reference is not None and not isinstance(reference, bool):
            raise TypeError(f"reference must be a bool or None, not {reference!r}")
        self.kernel, self.clock, self.memory, self.irq, self.link = kernel, clock, memory, irq, link
        self.reference = REFERENCE if reference is None else reference
        self._p = clock.period
        self._tx_kick = kernel.event("an2.tx.kick")
        #: The edge of the last doorbell rung while the transmit engine was busy (None: none):
        #: the card remembers it and takes it when the engine is idle again, as the gateware
        #: does (hw/an2/tx_engine.py), so a doorbell rung as the engine stops is not lost.
        self._tx_rang: int | None = None
        self._cq_space = kernel.event("an2.cq.space")
        self._rx_cells = kernel.queue("an2.rx.cells")
        self._kills = 0             # _Kill entries in _rx_cells not taken yet
        # The receive FIFO's entries (RX_FIFO_CELLS, used from a cell's last word until the
        # engine is done with it): cells taken in since Control.Reset, cells the engine is done
        # with, and the edges it was done with the last RX_FIFO_CELLS of them (_rx_full).
        self._rx_in = 0
        self._rx_out = 0
        self._rx_done_at: deque[int] = deque(maxlen=RX_FIFO_CELLS)
        self._tx_next_slot = 0      # mirror of the link's next free slot
        self._loop_next_slot = 0
        self._tx_departures: deque[int] = deque(maxlen=TX_FIFO_CELLS)  # slot starts, last cells
        self._tx_sent = 0           # cells of the PDU in progress issued
        self._tx_sent_bytes = 0
        self._tx_field = None       # a Csum PDU's (field offset, its two bytes) for the send
        self._reset_until = 0
        self._reset_edge = -1       # the edge of the last Control.Reset
        self._port = _DmaPort(kernel)   # the card's one DMA port
        self._cq_busy = False       # one completion is written at a time
        self._cq_turns: list = []
        self._reset_state()
        if link is not None:
            link.attach(self._on_cell)
        kernel.spawn(self._tx_engine(), name="an2.tx", daemon=True)
        kernel.spawn(self._rx_engine(), name="an2.rx", daemon=True)

    # -- state -----------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.regs: dict[int, int] = {int(r): v for r, v in RESET.items()}
        for p in range(1, NUM_POOLS):
            for i in range(4):
                self.regs[int(Reg.PoolBase) + 16 * p + 4 * i] = RESET[Reg.PoolBase + 4 * i]
        self.counters = [0] * len(Counter)
        self.vc_table = [0] * NUM_VCS
        self.vcs: dict[int, _Vc] = {}
        self._rx_cvci = None        # the VC whose state the receive engine holds (none yet)
        self._cause_edge: dict[int, int] = {}     # IrqCause bits -> the last edge they were set
        self._cq_phase = 1
        self._pending = 0           # completions since IrqCause.Completion was last set
        self._coalesce_cancel = None
        self._gen = getattr(self, "_gen", 0) + 1

    def _entry(self, vci: int) -> VcEntry:
        """VC ``vci``'s table entry, decoded (once per distinct table word)."""
        word = self.vc_table[vci]
        entry = _ENTRIES.get(word)
        if entry is None:
            entry = _ENTRIES[word] = VcEntry.from_int(word)
        return entry

    def _reg(self, r: Reg | int, pool: int = 0) -> int:
        return self.regs[int(r) + 16 * pool]

    def _set(self, r: Reg | int, value: int, pool: int = 0) -> None:
        self.regs[int(r) + 16 * pool] = value

    def counter(self, c: Counter) -> int:
        """The current value of counter ``c``."""
        return self.counters[c]

    def _count(self, c: Counter, edge: int, n: int = 1) -> None:
        self.counters[c] = min(_MASK, self.counters[c] + n)
        if c in _ERROR_COUNTERS:
            self._cause(Irq.Error, edge)

    def _cause(self, bits: Irq, edge: int) -> None:
        bits = int(bits)
        self._set(Reg.IrqCause, self._reg(Reg.IrqCause) | bits)
        if edge > self._cause_edge.get(bits, -1):
            self._cause_edge[bits] = edge
        self._irq_at(edge)

    def _irq_at(self, edge: int) -> None:
        gen = self._gen
        level = 1 if self._reg(Reg.IrqCause) & self._reg(Reg.IrqEnable) else 0

        def drive() -> None:
            if gen == self._gen:
                self.irq.drive(level)
        self.kernel.call_at(edge + IRQ_LATENCY_CYCLES * self._p, drive)

    @property
    def link_status(self) -> int:
        """LinkStatus: up when a link end is attached or Loopback is set."""
        up = self.link is not None or self._reg(Reg.Control) & Control.Loopback
        return int(Link.Signal | Link.FrameLock | Link.CellLock) if up else 0

    def _status(self) -> int:
        return self._reg(Reg.Status)

    def _on(self, bit: Status) -> bool:
        return bool(self._reg(Reg.Status) & bit) and not self._reg(Reg.Status) & Status.Fault

    # -- BusTarget -------------------------------------------------------------------------------
    def _peek(self, offset: int, e: int) -> int:  # noqa: ARG002 - the port passes the edge
        if offset >= COUNTERS_OFFSET:
            i = (offset - COUNTERS_OFFSET) // 4
            return self.counters[i] if i < len(Counter) else 0
        if offset == Reg.Control and self.kernel.now < self._reset_until:
            return int(Control.Reset)
        if offset == Reg.LinkStatus:
            return self.link_status
        if offset == Reg.VcEntry:
            vci = self._reg(Reg.VcIndex)
            st = self.vcs[vci].state if vci in self.vcs else VcState.Idle
            return self.vc_table[vci] | (int(st) << 4)
        return self.regs.get(offset, 0)

    def _poke(self, offset: int, value: int, e: int) -> None:  # noqa: C901 - a register decoder
        if offset >= COUNTERS_OFFSET:
            if (offset - COUNTERS_OFFSET) // 4 < len(Counter):
                self.counters[(offset - COUNTERS_OFFSET) // 4] = 0
            return
        ctl = self._reg(Reg.Control)
        tx_off = not ctl & Control.TxEnable
        rx_off = not ctl & Control.RxEnable
        if offset == Reg.Control:
            if value & Control.Reset:
                self._reset_state()
                # The RTL's sweep counter is loaded at e and Reset reads until it is zero,
                # and a Control write is refused while it is not: RESET_CYCLES + 1 edges.
                self._reset_until = e + (RESET_CYCLES + 1) * self._p
                self._reset_edge = e
                self._rx_flush()
                self.irq.drive(0)
                self._cq_space.pulse()
                return
            if self.kernel.now < self._reset_until:
                return                          # the card is still clearing its VC table
            self._set(Reg.Control, value & 0xE)
            st = self._status() & ~(Status.TxOn | Status.RxOn)
            if not st & Status.Fault:
                st |= (Status.TxOn if value & Control.TxEnable else 0)
                st |= (Status.RxOn if value & Control.RxEnable else 0)
            self._set(Reg.Status, st)
            self._ring(e)
        elif offset == Reg.IrqCause:
            # A cause set at the write's edge (or one after: the engines set some ahead) is
            # kept, as the RTL's irq_cause <= (irq_cause & ~clear) | set does.
            keep = 0
            for bits, edge in self._cause_edge.items():
                if edge >= e:
                    keep |= bits
            self._set(Reg.IrqCause, self._reg(Reg.IrqCause) & (~value | keep))
            self._irq_at(e)
        elif offset == Reg.IrqEnable:
            self._set(Reg.IrqEnable, value & 0xF)
            self._irq_at(e)
        elif offset == Reg.CoalesceCount:
            self._set(Reg.CoalesceCount, value & 0xFF)
        elif offset == Reg.CoalesceTime:
            self._set(Reg.CoalesceTime, value & ((1 << COALESCE_TIME_BITS) - 1))
        elif offset == Reg.VcIndex:
            self._set(Reg.VcIndex, value % NUM_VCS)
        elif offset == Reg.VcEntry:
            vci = self._reg(Reg.VcIndex)
            entry = value & _VC_ENTRY_BITS
            if (entry >> _RX_SWAP_SHIFT) & 3 == 3:        # reserved: stored as NoSwap
                entry &= ~(3 << _RX_SWAP_SHIFT)
            self.vc_table[vci] = entry
            vc = self.vcs.get(vci)
            if not value & 1 and vc is not None and vc.state == VcState.Reassembling:
                self._kills += 1                        # the receive engine returns its buffers
                self._rx_cells.put_nowait((e, _Kill(vci)))
        elif Reg.TxBase <= offset < COUNTERS_OFFSET:
            self._poke_ring(offset, value, e, tx_off, rx_off)

    def _poke_ring(self, offset: int, value: int, e: int, tx_off: bool, rx_off: bool) -> None:
        if offset < Reg.CqBase:
            base, engine_off = Reg.TxBase, tx_off
        elif offset < Reg.PoolBase:
            base, engine_off = Reg.CqBase, tx_off and rx_off
        else:
            base, engine_off = Reg.PoolBase + 16 * ((offset - Reg.PoolBase) // 16), rx_off
        role = (offset - base) // 4       # 0 base, 1 size, 2 producer, 3 consumer
        size = self.regs[base + 4]
        if role == 0 and engine_off:
            self.regs[offset] = value & ~0xF
        elif role == 1 and engine_off and ring_entries_valid(value):
            self.regs[offset] = value
        elif role == 2 and base != Reg.CqBase:
            self.regs[offset] = value % size
            if base == Reg.TxBase:
                self._ring(e)
        elif role == 3 and base == Reg.CqBase:
            self.regs[offset] = value % size
            self._cq_full(e)
            self._cq_space.pulse()

    # -- ring entries ------------------------------------------------------------------------------
    def _new(self, cls, **kw):
        """``cls(**kw)`` (a descriptor or completion entry); built by its :class:`_Codec` in the
        fast path."""
        return cls(**kw) if self.reference else _CODECS[cls].new(kw)

    def _pack(self, entry) -> bytes:
        return entry.pack() if self.reference else _CODECS[type(entry)].pack(entry)

    def _unpack(self, cls, raw: bytes):
        return cls.unpack(raw) if self.reference else _CODECS[cls].unpack(raw)

    # -- DMA ---------------------------------------------------------------------------------------
    def _edge(self, t: int) -> int:
        return self.clock.edge_at_or_after(t)

    async def _dma(self, start: int, addr: int, data_or_n, owner: int, *, write: bool,
                   master: int):
        """A burst that ``master`` asks the card's DMA port for at edge ``start``; returns (end
        edge, bytes read or None). A read takes every word its bytes touch (the RTL's bursts
        are of whole aligned words).

        Raises the memory's error ``DMA_ERR_CYCLES`` after the burst's start."""
        requester = owner or None
        gen = self._gen
        port = self._port
        start = await port.acquire(start, master)
        try:
            if write:
                self.memory.check(addr, len(data_or_n), requester, write=True)
            else:
                lo, nb = _words(addr, data_or_n)
                self.memory.check(lo, nb, requester, write=False)
        except _DMA_ERRORS:
            await self.kernel.sleep_until(start + DMA_ERR_CYCLES * self._p)
            port.release(start + (DMA_ERR_CYCLES + 1) * self._p)
            raise
        await self.kernel.sleep_until(start + DMA_SETUP_CYCLES * self._p)
        try:
            if write:
                await self.memory.dma_write(addr, data_or_n, requester=requester)
                got = None
            else:
                got = await self.memory.dma_read(lo, nb, requester=requester)
                got = got[addr - lo:addr - lo + data_or_n]
        except _DMA_ERRORS:         # the owner changed since the request: refused now
            port.release(start + (DMA_ERR_CYCLES + 1) * self._p)
            raise
        end = self._edge(self.kernel.now)
        port.release(end)
        if gen != self._gen:
            raise _Abandoned
        return end, got

    async def _burst(self, start: int, addr: int, data_or_n, requester, *, write: bool,
                     master: int):
        """The fast path's :meth:`_dma` without its abandonment check (the caller makes it):
        the same port, memory calls and sleeps with :meth:`Memory.dma_claim`, in one frame.
        Returns the bytes read (None for a write); raises the memory's error,
        ``DMA_ERR_CYCLES`` after the burst's start, for a burst refused."""
        k, mem, port, p = self.kernel, self.memory, self._port, self._p
        start = await port.acquire(start, master)
        if write:
            lo, nb = addr, len(data_or_n)
        else:
            lo, nb = _words(addr, data_or_n)
        try:
            mem.check(lo, nb, requester, write=write)
        except _DMA_ERRORS:
            await k.sleep_until(start + DMA_ERR_CYCLES * p)
            port.release(start + (DMA_ERR_CYCLES + 1) * p)
            raise
        await k.sleep_until(start + DMA_SETUP_CYCLES * p)
        try:
            mem.check(lo, nb, requester, write=write)      # as Memory.dma_read / dma_write do
        except _DMA_ERRORS:
            port.release(start + (DMA_ERR_CYCLES + 1) * p)
            raise
        done = mem.dma_claim(nb, write=write)
        await k.sleep_until(done)
        port.release(-(-done // p) * p)
        if write:
            mem.dma_write_now(addr, data_or_n)
            return None
        return mem.dma_read_now(lo, nb)[addr - lo:addr - lo + data_or_n]

    async def _ring_dma(self, start: int, addr: int, data_or_n, *, write: bool, master: int):
        try:
            return await self._dma(start, addr, data_or_n, 0, write=write, master=master)
        except _DMA_ERRORS as exc:
            edge = self._edge(self.kernel.now)
            self._set(Reg.Status, (self._status() & ~(Status.TxOn | Status.RxOn)) | Status.Fault)
            self._cause(Irq.Error, edge)
            raise RingFault(str(exc)) from exc

    # -- completions -------------------------------------------------------------------------------
    async def _complete(self, start: int, c: Completion) -> int:
        """Write completion ``c`` (phase filled in) from edge ``start``; returns the edge at which
        CqProducer has advanced. The two engines take turns, in the order they ask."""
        if self._cq_busy:
            turn = self.kernel.event("an2.cq.turn")
            self._cq_turns.append(turn)
            await turn
            start = max(start, self._edge(self.kernel.now))
        self._cq_busy = True
        try:
            return await self._write_completion(start, c)
        finally:
            if self._cq_turns:
                self._cq_turns.pop(0).set()
            else:
                self._cq_busy = False

    async def _write_completion(self, start: int, c: Completion) -> int:
        while self._cq_full(start):
            gen = self._gen
            await self._cq_space
            if gen != self._gen:
                raise _Abandoned
            start = self._edge(self.kernel.now)
        size, prod = self._reg(Reg.CqSize), self._reg(Reg.CqProducer)
        entry = self._new(Completion, kind=c.kind, pool=c.pool, phase=self._cq_phase,
                          index=c.index, length=c.length, vci=c.vci, errors=c.errors,
                          csum=c.csum, cells=c.cells, tag=c.tag)
        addr = self._reg(Reg.CqBase) + ENTRY_BYTES * prod
        end, _ = await self._ring_dma(start, addr, self._pack(entry), write=True, master=_CQ)
        edge = end + CQ_UPDATE_CYCLES * self._p
        await self.kernel.sleep_until(edge)
        if prod + 1 == size:
            self._cq_phase ^= 1
        self._set(Reg.CqProducer, (prod + 1) % size)
        self._coalesce(edge)
        return edge

    def _cq_full(self, edge: int) -> bool:
        """Whether the completion queue is full, setting or clearing Status.CqFull (and
        raising IrqCause.CqFull when it becomes full)."""
        full = (self._reg(Reg.CqProducer) + 1) % self._reg(Reg.CqSize) == self._reg(Reg.CqConsumer)
        if full and not self._status() & Status.CqFull:
            self._set(Reg.Status, self._status() | Status.CqFull)
            self._cause(Irq.CqFull, edge)
        elif not full:
            self._set(Reg.Status, self._status() & ~Status.CqFull)
        return full

    def _coalesce(self, edge: int) -> None:
        self._pending += 1
        if self._pending >= max(1, self._reg(Reg.CoalesceCount)):
            self._fire_completion(edge)
        elif self._pending == 1 and self._reg(Reg.CoalesceTime):
            gen = self._gen
            at = edge + self._reg(Reg.CoalesceTime) * self._p

            def timeout() -> None:
                if gen == self._gen and self._pending:
                    self._fire_completion(at)
            self._coalesce_cancel = self.kernel.call_at(at, timeout)

    def _fire_completion(self, edge: int) -> None:
        self._pending = 0
        if self._coalesce_cancel is not None:
            self._coalesce_cancel()
            self._coalesce_cancel = None
        self._cause(Irq.Completion, edge)

    # -- transmit ----------------------------------------------------------------------------------
    def _ring(self, e: int) -> None:
        """A doorbell at edge ``e``: wakes an idle engine, and is remembered by a busy one."""
        self._tx_rang = e
        self._tx_kick.pulse(e)

    async def _tx_engine(self) -> None:
        while True:
            start = await self._tx_kick
            start = self._edge(self.kernel.now) if start is None else start
            while True:
                self._tx_rang = None
                try:
                    idle = await self._tx_run(start + TX_DOORBELL_CYCLES * self._p)
                except (RingFault, _Abandoned):
                    break
                if self._tx_rang is None:
                    break
                # A doorbell rang while the engine worked: taken once it is idle again.
                start = max(self._tx_rang, idle)

    async def _fetch(self, start: int, base: int, index: int, cls, master: int):
        end, raw = await self._ring_dma(start, base + ENTRY_BYTES * index, ENTRY_BYTES,
                                        write=False, master=master)
        return end, self._unpack(cls, raw)

    async def _tx_run(self, t: int) -> int:
        """Send PDUs from edge ``t`` until the ring is empty or not handed over; returns the
        edge at which the engine is idle."""
        while self._on(Status.TxOn):
            size = self._reg(Reg.TxSize)
            cons = self._reg(Reg.TxConsumer)
            if cons == self._reg(Reg.TxProducer):
                return t
            # Gather the PDU's descriptors First .. Last.
            descs, idx = [], cons
            while True:
                t, d = await self._fetch(t, self._reg(Reg.TxBase), idx, TxDescriptor, _TX)
                if not d.own:
                    return t    # the host has not handed it over: wait for the next doorbell
                descs.append((idx, d))
                if d.last:
                    break
                idx = (idx + 1) % size
                if idx == self._reg(Reg.TxProducer):
                    return t    # the PDU's Last is not posted yet: wait for the next doorbell
            t = await self._tx_pdu(t, descs)
        return t

    async def _tx_pdu(self, t: int, descs: list) -> int:
        vci = descs[0][1].vci
        self._tx_sent = self._tx_sent_bytes = 0
        entry = self._entry(vci) if vci < NUM_VCS else VcEntry()
        errors, sent_cells, length = CqError(0), 0, sum(d.length for _, d in descs)
        first = descs[0][1]
        self._tx_field = None
        if not entry.enable:
            errors = CqError.BadVc
        elif length > MAX_PDU:          # the host posted more than a PDU can carry
            errors = CqError.Oversize
            self._count(Counter.OversizePdus, t)
        elif first.csum and not csum_field_fits(length, first.csum_start, first.csum_field):
            errors = CqError.PipeError
        else:
            payload = bytearray()
            gather = self._tx_gather if self.reference else self._tx_gather_fast
            try:
                if first.csum:
                    t = await self._tx_sum_pass(t, descs, entry.owner, payload, length)
                for _, d in descs:
                    if d.length:
                        t = await gather(t, d, entry.owner, payload, vci)
                        sent_cells = self._tx_sent
            except _DMA_ERRORS:
                t = self._edge(self.kernel.now)
                errors = CqError.DmaFault
                length = len(payload)
                sent_cells = self._tx_sent
                self._count(Counter.DmaFaults, t)
            if not errors:
                t, sent_cells = await self._tx_finish(t, bytes(payload), vci, entry.aal5)
        # Write back the descriptors, then the completion.
        for i, d in descs:
            back = self._new(TxDescriptor, addr=d.addr, length=d.length, vci=d.vci,
                             first=d.first, last=d.last,
                             dma_fault=int(bool(errors & CqError.DmaFault)),
                             bad_vc=int(bool(errors & CqError.BadVc)),
                             pipe_error=int(bool(errors & CqError.PipeError)), own=0, tag=d.tag)
            t, _ = await self._ring_dma(t, self._reg(Reg.TxBase) + ENTRY_BYTES * i,
                                        self._pack(back), write=True, master=_TX)
        last_i, last = descs[-1]
        self._set(Reg.TxConsumer, (last_i + 1) % self._reg(Reg.TxSize))
        if not errors:
            self._count(Counter.PdusTx, t)
        return await self._complete(t, self._new(Completion,
            kind=CqKind.Tx, index=last_i,
            length=0 if errors & (CqError.BadVc | CqError.Oversize | CqError.PipeError) else length,
            vci=vci,
            errors=errors, cells=sent_cells, tag=last.tag))

    async def _tx_sum_pass(self, t: int, descs: list, owner: int, payload: bytearray,
                           length: int) -> int:
        """A Csum PDU's first pass (docs/an2_card.md, "Hardware pipes"): read every buffer by
        DMA in the pieces the send reads, back to back and sending nothing, into ``payload``;
        sum payload bytes ``[2 * csum_start, length)`` with the checksum pipe and keep the
        field's offset and value (``_tx_field``) for the send; ``payload`` is emptied for it.
        A refused read raises with ``payload`` holding the bytes read."""
        first = descs[0][1]
        for _, d in descs:
            pos = 0
            while pos < d.length:
                n = min(_CELL - len(payload) % _CELL, d.length - pos)
                t, got = await self._dma(t, d.addr + pos, n, owner, write=False, master=_TX)
                payload += got
                pos += n
        total = ones_sum(masked_words(payload, offset=0, start=2 * first.csum_start, end=length))
        field = csum_field_offset(first.csum_start, first.csum_field)
        self._tx_field = (field, tx_csum_result(total).to_bytes(2, "big"))
        del payload[:]
        return t

    def _tx_patch(self, payload: bytearray, n: int) -> None:
        """Put the checksum field's bytes that the last ``n`` bytes of ``payload`` hold."""
        field, value = self._tx_field
        lo = len(payload) - n
        for i in (0, 1):
            if lo <= field + i < len(payload):
                payload[field + i] = value[i]

    async def _tx_gather(self, t: int, d: TxDescriptor, owner: int, payload: bytearray,
                         vci: int) -> int:
        """Read buffer ``d`` by DMA, sending every whole cell of non-final payload as it fills."""
        pos = 0
        while pos < d.length:
            room = CELL_PAYLOAD_BYTES - len(payload) % CELL_PAYLOAD_BYTES
            n = min(room, d.length - pos)
            t = await self._fifo_room(t)
            t, got = await self._dma(t, d.addr + pos, n, owner, write=False, master=_TX)
            payload += got
            if self._tx_field is not None:
                self._tx_patch(payload, n)
            pos += n
            if len(payload) % CELL_PAYLOAD_BYTES == 0 and not (d.last and pos == d.length):
                t = self._send(t, vci, bytes(payload[-CELL_PAYLOAD_BYTES:]), end=False)
        return t

    async def _tx_finish(self, t: int, payload: bytes, vci: int, aal5: int) -> tuple[int, int]:
        """Send the rest: the last partial cell of payload, pad and trailer (a raw VC: the
        payload's cells, the last one zero-padded, none marked end-of-PDU)."""
        if aal5:
            pdu = build_pdu(payload)        # UU and CPI 0; _tx_pdu refused over MAX_PDU
        else:
            pdu = payload.ljust(-(-len(payload) // CELL_PAYLOAD_BYTES) * CELL_PAYLOAD_BYTES, b"\0")
        if not self.reference:
            return await self._tx_finish_fast(t, pdu, vci, aal5), self._tx_sent
        for off in range(self._tx_sent_bytes, len(pdu), CELL_PAYLOAD_BYTES):
            t = await self._fifo_room(t)
            t = self._send(t, vci, pdu[off:off + CELL_PAYLOAD_BYTES],
                           end=bool(aal5) and off + CELL_PAYLOAD_BYTES == len(pdu))
        return t, self._tx_sent

    # The fast path's transmit: the same sleeps, memory calls and kernel entries as
    # _tx_gather / _tx_finish / _fifo_room / _dma / _send above, in the same order, in one
    # coroutine frame per buffer with no per-cell objects but the cell.
    async def _tx_gather_fast(self, t: int, d: TxDescriptor, owner: int, payload: bytearray,
                              vci: int) -> int:
        """:meth:`_tx_gather`, fast."""
        k, p, dep = self.kernel, self._p, self._tx_departures
        requester = owner or None
        addr, length, last = d.addr, d.length, d.last
        pos = 0
        while pos < length:
            n = _CELL - len(payload) % _CELL
            if n > length - pos:
                n = length - pos
            gen = self._gen
            if len(dep) == TX_FIFO_CELLS and dep[0] > t:       # _fifo_room
                t = -(-dep[0] // p) * p
                await k.sleep_until(t)
                if gen != self._gen:
                    raise _Abandoned
            payload += await self._burst(t, addr + pos, n, requester, write=False, master=_TX)
            if gen != self._gen:
                raise _Abandoned
            if self._tx_field is not None:
                self._tx_patch(payload, n)
            t = -(-k.now // p) * p
            pos += n
            if len(payload) % _CELL == 0 and not (last and pos == length):
                self._send_fast(t, vci, bytes(payload[-_CELL:]), 0)
        return t

    async def _tx_finish_fast(self, t: int, pdu: bytes, vci: int, aal5: int) -> int:
        """The cell loop of :meth:`_tx_finish`, fast."""
        k, p, dep = self.kernel, self._p, self._tx_departures
        end = len(pdu)
        gen = self._gen
        for off in range(self._tx_sent_bytes, end, _CELL):
            if len(dep) == TX_FIFO_CELLS and dep[0] > t:
                t = -(-dep[0] // p) * p
                await k.sleep_until(t)
                if gen != self._gen:
                    raise _Abandoned
            self._send_fast(t, vci, pdu[off:off + _CELL], 1 if aal5 and off + _CELL == end else 0)
        return t

    def _send_fast(self, t: int, vci: int, payload: bytes, pt: int) -> None:
        """:meth:`_send`, fast (the same kernel entries: ``post`` pushes as ``call_at`` does)."""
        issue = t + TX_CELL_ISSUE_CYCLES * self._p
        cell = Cell._trusted(0, vci, payload, pt)
        slot = -((-issue * SLOT_DEN) // SLOT_NUM_PS)             # first_slot_at(issue)
        if self.regs[_CONTROL] & _LOOPBACK:
            if slot < self._loop_next_slot:
                slot = self._loop_next_slot
            self._loop_next_slot = slot + 1
            self.kernel.post(slot_start(slot + 1), self._on_looped, (cell, slot))
        else:
            if slot < self._tx_next_slot:
                slot = self._tx_next_slot
            self._tx_next_slot = slot + 1
            if self.link is not None:
                self.kernel.post((-(-slot * _SLOT_N // _SLOT_D) + CELL_WORDS - 1) * self._p,
                                 self._to_link, (cell, slot, self._gen))
        self._tx_departures.append(slot * SLOT_NUM_PS // SLOT_DEN)
        self._tx_sent += 1
        self._tx_sent_bytes += _CELL
        c = self.counters
        if c[_CELLS_TX] < _MASK:
            c[_CELLS_TX] += 1

    def _to_link(self, cell_slot_gen: tuple) -> None:
        """Hand a transmitted cell (``(cell, slot, generation)``) to the link at the edge
        that samples its last word on the pins (``cell_slot_edge(slot) + CELL_WORDS - 1``,
        where the RTL's binding hands it over), named as given at its slot's start; unless
        Control.Reset, written since it was issued, cut it: the RTL's issuer puts the header on
        the pins at the edge before the slot's first and a word at each edge after, and Reset
        at edge ``e`` holds it from ``e + 1``, so a cell goes out whole only if its last word
        was put out at ``e`` or before (a cell cut short is no cell: hw/an2/link_bridge.py
        drops it)."""
        cell, slot, gen = cell_slot_gen
        last_word = (-(-slot * _SLOT_N // _SLOT_D) + CELL_WORDS - 2) * self._p    # put out at
        if gen != self._gen and self._reset_edge < last_word:
            return
        self.link.send(cell, at=slot_start(slot))

    async def _fifo_room(self, t: int) -> int:
        """Wait (from edge ``t``) until the FIFO holds fewer than TX_FIFO_CELLS cells."""
        if len(self._tx_departures) == TX_FIFO_CELLS:
            leave = self._tx_departures[0]
            if leave > t:
                gen = self._gen
                t = self._edge(leave)
                await self.kernel.sleep_until(t)
                if gen != self._gen:        # Control.Reset while it waited
                    raise _Abandoned
        return t

    def _send(self, t: int, vci: int, payload: bytes, *, end: bool) -> int:
        """Issue a cell whose payload is in the FIFO at edge ``t``; returns ``t``."""
        issue = t + TX_CELL_ISSUE_CYCLES * self._p
        cell = Cell(vpi=0, vci=vci, payload=payload, pt=1 if end else 0)
        gen = self._gen
        loop = bool(self._reg(Reg.Control) & Control.Loopback)
        slot = max(self._loop_next_slot if loop else self._tx_next_slot, first_slot_at(issue))
        if loop:
            self._loop_next_slot = slot + 1
            self.kernel.call_at(slot_start(slot + 1), lambda: self._on_looped((cell, slot)))
        else:
            self._tx_next_slot = slot + 1
            if self.link is not None:
                self.kernel.call_at((cell_slot_edge(slot) + CELL_WORDS - 1) * self._p,
                                    lambda: self._to_link((cell, slot, gen)))
        self._tx_departures.append(slot_start(slot))
        self._tx_sent += 1
        self._tx_sent_bytes += CELL_PAYLOAD_BYTES
        self._count(Counter.CellsTx, t)
        return t

    # -- receive -----------------------------------------------------------------------------------
    def _on_cell(self, cell: Cell) -> None:
        """A cell from the link: its last word is at the card at the first edge at or after
        now, its first ``CELL_WORDS - 1`` edges before."""
        edge = self._edge(self.kernel.now)
        if not self._rx_full(edge - (CELL_WORDS - 1) * self._p):
            self._rx_cells.put_nowait((edge, cell))

    def _on_looped(self, cell_slot: tuple) -> None:
        """A looped cell (``(cell, slot)``), at the end of its slot: its first word went to the
        receive FIFO at the edge before the slot's first (the RTL's tx_soc, hw/an2/
        cell_issue.py)."""
        cell, slot = cell_slot
        if not self._rx_full((cell_slot_edge(slot) - 1) * self._p):
            self._rx_cells.put_nowait((self._edge(self.kernel.now), cell))

    def _rx_full(self, soc: int) -> bool:
        """Whether a cell whose first word is at the card at edge ``soc`` is dropped: the
        receive FIFO's next entry is still in use (the engine is done with the cell that held
        it RX_FIFO_CELLS cells ago at that edge or later, or not yet; hw/an2/rx_ingress.py
        tests ``used`` at the first word), or the card is in Control.Reset. Counts the cell in
        otherwise."""
        if soc < self._reset_until:
            return True
        older = self._rx_in - RX_FIFO_CELLS      # the cell that held the entry
        done = self._rx_done_at
        if older >= 0 and (older >= self._rx_out
                           or done[older - self._rx_out + len(done)] >= soc):
            return True
        self._rx_in += 1
        return False

    def _rx_freed(self, edge: int) -> None:
        """The receive engine is done with the FIFO's oldest cell at ``edge``."""
        self._rx_done_at.append(edge)
        self._rx_out += 1

    def _rx_flush(self) -> None:
        """Control.Reset: the receive FIFO and the VC kills waiting are cleared."""
        q = self._rx_cells
        while len(q):
            _, item = q.get_nowait()
            if type(item) is _Kill:
                item.done = True
        self._kills = 0
        self._rx_in = self._rx_out = 0
        self._rx_done_at.clear()

    async def _rx_engine(self) -> None:
        free = 0
        k, q, p = self.kernel, self._rx_cells, self._p
        start = RX_DMA_START_CYCLES * p
        idle = None     # (edge, VC looked up) after work that needed no DMA
        while True:
            at, cell = await q.get()
            if type(cell) is _Kill:
                if cell.done:
                    continue            # taken before the cells queued ahead of it
                cell.done = True
                self._kills -= 1
            t = max(at + start, self._rx_ready(free, idle, cell))
            if self._kills and type(cell) is not _Kill:
                # A VC disabled at an edge before t: the RTL's engine looks that VC up instead
                # of the head cell, and returns its buffers first (hw/an2/rx_engine.py).
                for e, kill in list(q):
                    if type(kill) is _Kill and not kill.done and e < t:
                        kill.done = True
                        self._kills -= 1
                        tk = max(e + start, self._rx_ready(free, idle, kill))
                        free, idle = await self._rx_take(tk, kill)
                        t = max(at + start, self._rx_ready(free, idle, cell))
            gen = self._gen
            free, idle = await self._rx_take(t, cell)
            if type(cell) is not _Kill and gen == self._gen:
                self._rx_freed(free)

    def _rx_ready(self, free: int, idle, item) -> int:
        """The first edge at which the receive engine can take ``item``: ``free``, or after
        work that needed no DMA (taken at edge ``T``, its VC ``look``) the edge after ``T``;
        the edge after that for a cell whose VC the engine's SRAMs do not show yet (neither
        the one just looked up, compared on the table's 10 address bits, nor the VC in hand,
        compared whole: hw/an2/rx_engine.py's ``h_known``)."""
        if idle is None:
            return free
        edge, look = idle
        if (type(item) is Cell and item.vci != self._rx_cvci
                and item.vci % NUM_VCS != look):
            return edge + 2 * self._p
        return edge + self._p

    async def _rx_take(self, t: int, cell) -> tuple:
        """Take ``cell`` (a Cell or a :class:`_Kill`) at edge ``t``; returns the engine's free
        edge and, when it needed no DMA, (t, the VC it looked up), else None."""
        k, p = self.kernel, self._p
        if t > k.now:
            await k.sleep_until(t)
        try:
            vc = None if self.reference or type(cell) is not Cell else self._rx_fast_vc(cell)
            if vc is None:
                item = cell.vci if type(cell) is _Kill else cell
                free = await self._rx_cell(t, item)
                if free == t:
                    return t, (t, cell.vci % NUM_VCS)
                return free, None
            # The fast path: _rx_cell for a cell that continues a PDU in the same buffer,
            # with the same count, sleeps and memory calls (one _rx_write burst).
            counters = self.counters        # (a new list after Control.Reset)
            if counters[_CELLS_RX] < _MASK:
                counters[_CELLS_RX] += 1
            self._rx_cvci = cell.vci
            payload = cell.payload
            vc.cells += 1
            vc.pdu += payload
            if vc.swap:
                payload = swap_payload(payload, offset=vc.delivered, start=vc.pipe_start,
                                       mode=vc.swap)
            gen = self._gen
            try:
                await self._burst(t, vc.buf.addr + vc.buf_used, payload, vc.owner or None,
                                  write=True, master=_RX)
            except _DMA_ERRORS:
                t = self._edge(k.now)
                self._count(Counter.DmaFaults, t)
                return await self._rx_done(t, cell.vci, vc, CqError.DmaFault, discard=True), None
            if gen != self._gen:
                raise _Abandoned
            vc.buf_used += _CELL
            vc.delivered += _CELL
            return -(-k.now // p) * p, None
        except (RingFault, _Abandoned):
            return self._edge(k.now), None

    def _rx_fast_vc(self, cell: Cell | int) -> _Vc | None:
        """The VC whose reassembly ``cell`` continues, if the fast path of :meth:`_rx_engine`
        may take it: a data cell (not the PDU's last) of an AAL5 VC reassembling into a buffer
        with room for all of it, within the PDU limits; None for anything else
        (:meth:`_rx_cell` takes it)."""
        if type(cell) is not Cell or cell.vpi or cell.pt & 0b101:
            return None
        vc = self.vcs.get(cell.vci)
        if (vc is None or vc.state != VcState.Reassembling or vc.cells >= MAX_PDU_CELLS
                or vc.delivered + _CELL > MAX_PDU or vc.buf.size - vc.buf_used < _CELL
                or int(self.regs[_STATUS]) & (_RX_ON | _FAULT) != _RX_ON):
            return None
        if self.vc_table[cell.vci] & 1 and self._entry(cell.vci).aal5:
            return vc
        return None

    async def _rx_cell(self, t: int, cell: Cell | int) -> int:
        if isinstance(cell, int):       # VC ``cell`` was disabled while reassembling
            vc = self.vcs.get(cell)
            if vc is None or vc.state != VcState.Reassembling:
                return t
            self._rx_cvci = cell
            self._count(Counter.LostCells, t)
            return await self._rx_done(t, cell, vc, CqError.LostCell, discard=False)
        if not self._on(Status.RxOn):
            return t
        vci = cell.vci
        if cell.vpi != 0 or vci >= NUM_VCS or not self.vc_table[vci] & 1:
            self._count(Counter.UnknownVc, t)
            return t
        self._count(Counter.CellsRx, t)
        self._rx_cvci = vci
        entry = self._entry(vci)
        vc = self.vcs.setdefault(vci, _Vc())
        end = cell.end_of_sdu or not entry.aal5     # a raw VC: every cell is a "PDU"
        if vc.state == VcState.Discarding:
            if end:
                self.vcs[vci] = _Vc()
            return t
        if vc.state == VcState.Idle:
            vc.owner, vc.pool = entry.owner, entry.pool
            vc.csum = bool(entry.rx_csum and entry.aal5)
            vc.swap, vc.pipe_start = entry.rx_swap, 2 * entry.pipe_start
            if self._cq_full(t):
                self._count(Counter.NoBuffer, t)      # queue full: dropped, no completion
                vc.state = VcState.Discarding if not end else VcState.Idle
                return t
            t, ok = await self._take_buffer(t, vc)
            if not ok:
                self._count(Counter.NoBuffer, t)
                vc.state = VcState.Discarding if not end else VcState.Idle
                return await self._complete(t, self._new(Completion,
                    kind=CqKind.Rx, pool=vc.pool, index=NO_INDEX, vci=vci,
                    errors=CqError.NoBuffer, cells=1))
            vc.state = VcState.Reassembling
        vc.cells += 1
        vc.pdu += cell.payload
        if vc.cells > MAX_PDU_CELLS:
            self._count(Counter.OversizePdus, t)
            return await self._rx_done(t, vci, vc, CqError.Oversize, discard=not end)
        # The bytes of this cell that go to the host: all of them but the trailer of the last
        # cell and the pad after the trailer's length.
        data = cell.payload
        if end and entry.aal5:
            length = int.from_bytes(vc.pdu[-6:-4], "big")
            keep = max(0, min(CELL_PAYLOAD_BYTES - AAL5_TRAILER_BYTES,
                              length - (len(vc.pdu) - CELL_PAYLOAD_BYTES)))
            data = data[:keep]
        data = data[:max(0, MAX_PDU - vc.delivered)]      # a PDU never exceeds 65535 bytes
        if vc.swap and data:
            # The card writes whole words: the swap takes in the cell's bytes up to the next.
            data = swap_payload(cell.payload[:-(-len(data) // 4) * 4], offset=vc.delivered,
                                start=vc.pipe_start, mode=vc.swap)[:len(data)]
        try:
            t = await self._rx_write(t, vc, vci, data)
        except _DMA_ERRORS:
            t = self._edge(self.kernel.now)
            self._count(Counter.DmaFaults, t)
            return await self._rx_done(t, vci, vc, CqError.DmaFault, discard=not end)
        if vc.state == VcState.Discarding:      # ran out of buffers mid-PDU
            if end:
                self.vcs[vci] = _Vc()
            return t
        if end and not entry.aal5:
            self._count(Counter.PdusRx, t)
            return await self._rx_done(t, vci, vc, CqError(0), discard=False, length=vc.delivered)
        if end:
            return await self._rx_trailer(t, vci, vc)
        return t

    async def _take_buffer(self, t: int, vc: _Vc) -> tuple[int, bool]:
        p = vc.pool
        cons = self._reg(Reg.PoolConsumer, p)
        if cons == self._reg(Reg.PoolProducer, p):
            return t, False
        t, d = await self._fetch(t, self._reg(Reg.PoolBase, p), cons, RxDescriptor, _RX)
        if not d.own:
            return t, False
        self._set(Reg.PoolConsumer, (cons + 1) % self._reg(Reg.PoolSize, p), p)
        vc.buf, vc.buf_index, vc.buf_used = d, cons, 0
        return t, True

    async def _rx_write(self, t: int, vc: _Vc, vci: int, data: bytes) -> int:
        while data:
            room = vc.buf.size - vc.buf_used
            if room == 0:
                t = await self._write_back(t, vc, vci, last=False, errors=CqError(0))
                t, ok = await self._take_buffer(t, vc)
                if not ok:
                    self._count(Counter.NoBuffer, t)
                    await self._complete(t, self._new(Completion,
                        kind=CqKind.Rx, pool=vc.pool, index=vc.filled[-1][0], vci=vci,
                        length=vc.delivered, errors=CqError.NoBuffer, cells=vc.cells,
                        tag=vc.filled[-1][1].tag))
                    vc.state = VcState.Discarding
                    return self._edge(self.kernel.now)
                continue
            n = min(room, len(data))
            t, _ = await self._dma(t, vc.buf.addr + vc.buf_used, data[:n], vc.owner, write=True,
                                   master=_RX)
            vc.buf_used += n
            vc.delivered += n
            data = data[n:]
        return t

    async def _write_back(self, t: int, vc: _Vc, vci: int, *, last: bool,
                          errors: CqError) -> int:
        d = vc.buf
        back = self._new(RxDescriptor,
            addr=d.addr, size=d.size, length=vc.buf_used, vci=vci, first=int(vc.first),
            last=int(last), crc_error=int(bool(errors & CqError.CrcError)),
            oversize=int(bool(errors & CqError.Oversize)),
            lost_cell=int(bool(errors & CqError.LostCell)),
            dma_fault=int(bool(errors & CqError.DmaFault)), own=0, tag=d.tag)
        addr = self._reg(Reg.PoolBase, vc.pool) + ENTRY_BYTES * vc.buf_index
        t, _ = await self._ring_dma(t, addr, self._pack(back), write=True, master=_RX)
        vc.first = False
        vc.filled.append((vc.buf_index, back))
        return t

    async def _rx_trailer(self, t: int, vci: int, vc: _Vc) -> int:
        t += RX_TRAILER_CHECK_CYCLES * self._p
        length = int.from_bytes(vc.pdu[-6:-4], "big")
        crc = int.from_bytes(vc.pdu[-4:], "big")
        errors = CqError(0)
        if aal5_cells(length) != vc.cells:
            errors = CqError.LostCell
            self._count(Counter.LostCells, t)
        elif crc32_aal5(bytes(vc.pdu[:-4])) != crc:
            errors = CqError.CrcError
            self._count(Counter.CrcErrors, t)
        else:
            self._count(Counter.PdusRx, t)
        if t > self.kernel.now:
            await self.kernel.sleep_until(t)
        vc.written = vc.delivered
        if not errors and vc.csum:
            vc.sum = self._rx_sum(vc, length)
        if not errors and vc.delivered > length:
            # The pad of the cell before a trailer-only cell was written: not in the length.
            trim = min(vc.delivered - length, vc.buf_used)
            vc.buf_used -= trim
            vc.delivered -= trim
        return await self._rx_done(t, vci, vc, errors, discard=False, length=length)

    @staticmethod
    def _rx_sum(vc: _Vc, length: int) -> int:
        """A good PDU's receive sum as the RTL forms it: the bytes written from 2 * pipe_start;
        when its last cell held only pad and trailer, the pad bytes of the cell before (in
        its last two words, written) are taken out again by adding their complement (a word
        of zeros adds nothing). The result is the sum of bytes ``[2 pipe_start, length)``,
        but for a zero sum of a range that is all zero while that pad is not: 0xFFFF, the
        other ones'-complement zero, where the plain sum is 0."""
        written = vc.written
        total = ones_sum(masked_words(vc.pdu[:written], offset=0, start=vc.pipe_start,
                                      end=written))
        if written <= length:
            return total
        pad = masked_words(vc.pdu[written - 8:written], offset=written - 8,
                           start=max(vc.pipe_start, length), end=written)
        return ones_sum(np.array([total, *np.where(pad != 0, ~pad & _MASK, 0)], dtype=np.uint32))

    async def _rx_done(self, t: int, vci: int, vc: _Vc, errors: CqError, *, discard: bool,
                       length: int | None = None) -> int:
        """Write back the current buffer as Last and write the PDU's completion."""
        t = await self._write_back(t, vc, vci, last=True, errors=errors)
        index, back = vc.filled[-1]
        good = not errors and length is not None
        cells = vc.cells
        csum = vc.sum if good and vc.csum else 0
        self.vcs[vci] = _Vc(state=VcState.Discarding if discard else VcState.Idle)
        return await self._complete(t, self._new(Completion,
            kind=CqKind.Rx, pool=vc.pool, index=index, vci=vci,
            length=length if good else vc.delivered, errors=errors, csum=csum, cells=cells,
            tag=back.tag))
