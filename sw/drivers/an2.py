"""The driver of the AN2-style ATM card (docs/an2_card.md), first version.

The card is a DMA master into host memory, so unlike the LANCE driver this one moves no
payload through the card's registers: it

* lays out, in a region of kernel memory it is given, the completion queue (zeroed, so new
  entries are found by their phase bit), the transmit ring with one bounce buffer per
  descriptor, and one receive pool (pool 0) of ``rx_buffers`` buffers of ``buffer_size`` bytes;
  resets the card, programs the ring registers and enables both engines
  (:meth:`An2Driver.start`);
* sends a PDU as a scatter/gather list: either ``(addr, length)`` pieces already in host
  memory (zero copy: the card reads them by DMA), ``bytes``, which the driver copies into its
  bounce buffers (charged as a copy, :meth:`sim.cpu.CPU.copy`, category ``copy``); with
  ``in_place=True`` the bytes are already in kernel buffers the card can reach (a BSD kernel's
  mbufs, filled by the socket layer's copy, which that layer charged) and are given to the card
  where they lie, with no copy (the simulation stores them in the driver's transmit buffers,
  which stand for those mbufs);
* asks the card's transmit checksum pipe (docs/an2_card.md "Hardware pipes") to complete a
  PDU's Internet checksum (``send(..., csum=(start, field))``: Csum, csum_start and csum_field
  on the PDU's First descriptor; the caller has put the pseudo-header's sum in the field), and
  programs a VC's receive pipes (``open_vc(..., rx_csum=True, pipe_start=...)``): a good PDU of
  such a VC is handed up as a :class:`SummedPdu`, whose ``csum`` is the completion's sum of its
  bytes from ``csum_from`` on;
* takes the interrupt: acknowledges IrqCause, drains the completion queue by phase bit, frees
  transmit descriptors, delivers good received PDUs (to ``on_pdu`` or :meth:`An2Driver.recv`),
  counts flagged ones in :class:`An2Stats` without delivering them, reposts the receive buffers
  and writes CqConsumer; an Error cause with Status.Fault (a refused ring DMA: the card halts
  until reset) is counted and logged, not recovered from.

Charges: every register access is a bus access charged to the CPU (``io_wait``); the interrupt
dispatch is the profile's ``interrupt_dispatch_cycles`` (``interrupt``); the driver's own work
per completion and per PDU sent is a kernel path (:meth:`sim.cpu.CPU.path`, category
``interrupt`` for completions, ``kernel`` for sends) whose instruction counts are our estimates
(below). Descriptor and completion words are read and written in host memory directly; their
cost is inside those paths. A received PDU is handed up as the bytes of its buffers (the
simulation's view of a buffer the consumer reads in place): no copy is charged here.

The driver imports only :mod:`hw.an2.registers` from the hardware floor.
"""
from __future__ import annotations

import inspect
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from hw.an2.registers import (ENTRY_BYTES, MAX_PDU, NO_INDEX, NUM_OWNERS, NUM_VCS, RING_ALIGN,
                              Completion, Control, CqError, CqKind, Irq, Reg, RxDescriptor, Status,
                              TxDescriptor, VcEntry, csum_field_fits, csum_field_offset, pool_reg,
                              ring_entries_valid)
from sim.bus import Bus, IrqLine
from sim.cpu import CPU, INTERRUPT, KERNEL
from sim.kernel import Event, Queue
from sim.memory import Memory

log = logging.getLogger(__name__)

__all__ = ["An2Driver", "An2Stats", "An2PipeStats", "An2Error", "SummedPdu"]

#: Instructions of the driver's work per completion entry (read and check the entry, find and
#: free its descriptors, repost): an estimate (about 60 instructions, as a BSD ring service).
_COMPLETION_INSTRUCTIONS = 60
#: Instructions per PDU sent plus per descriptor filled: an estimate.
_SEND_INSTRUCTIONS, _DESC_INSTRUCTIONS = 40, 12
#: Instructions the card's checksum pipes add to the driver (an estimate): on send, shift the
#: two offsets into place and or them with Csum into the First descriptor's word 2 (which is
#: stored anyway): 3; per receive completion of a VC with ``rx_csum``, take the entry's csum
#: halfword and store it with the PDU for the stack: 2.
_TX_CSUM_INSTRUCTIONS, _RX_CSUM_INSTRUCTIONS = 3, 2
#: Code footprint of each of those two paths (an estimate: about 250 MIPS instructions of 4
#: bytes, the routine with its branches and error handling, of which one call runs the ~60).
_CODE_BYTES = 1024
#: Register reads of Control while waiting for the card's reset to finish (1024 card cycles
#: are about 340 reads of 3 cycles each).
_RESET_POLLS = 2000
_ERRORS = ((CqError.CrcError, "crc_errors"), (CqError.Oversize, "oversize"),
           (CqError.LostCell, "lost_cells"), (CqError.NoBuffer, "no_buffer"),
           (CqError.DmaFault, "dma_faults"), (CqError.BadVc, "bad_vc"))


class An2Error(RuntimeError):
    """The card did not behave as the driver requires (e.g. its reset never finished)."""


class SummedPdu(bytes):
    """A received PDU's bytes (a ``bytes``) with the card's receive checksum: ``csum``, the
    folded, uncomplemented RFC 1071 sum of bytes ``[csum_from, len)`` as they came off the
    link (the completion's ``csum``; its VC has ``rx_csum``)."""

    csum: int
    csum_from: int

    def __new__(cls, data: bytes, *, csum: int, csum_from: int) -> "SummedPdu":
        obj = super().__new__(cls, data)
        obj.csum, obj.csum_from = csum, csum_from
        return obj


@dataclass
class An2Stats:
    """The driver's counters."""

    tx_pdus: int = 0          #: PDUs the card reported sent without error
    tx_bytes: int = 0
    tx_errors: int = 0        #: transmit completions with errors (BadVc, DmaFault)
    rx_pdus: int = 0          #: good PDUs delivered
    rx_bytes: int = 0
    rx_errors: int = 0        #: receive completions with errors (never delivered)
    crc_errors: int = 0
    oversize: int = 0
    lost_cells: int = 0
    no_buffer: int = 0
    dma_faults: int = 0
    bad_vc: int = 0
    interrupts: int = 0
    #: Interrupts that found Status.Fault (a refused ring DMA: the engines halted until reset)
    faults: int = 0
    tx_ring_full: int = 0     #: times send() waited for transmit descriptors
    #: bytes send() copied into its transmit buffers (bytes pieces)
    tx_copied_bytes: int = 0
    #: bytes send() gave the card where they lay in kernel buffers (``in_place=True``)
    tx_inplace_bytes: int = 0


@dataclass
class An2PipeStats:
    """The driver's counters of the card's pipes (apart from :class:`An2Stats`, whose fields
    figure c's rows carry as they were before the pipes)."""

    #: PDUs sent with Csum (the card completed their checksum)
    tx_csum_pdus: int = 0
    #: good PDUs received with the card's sum (their VC has rx_csum)
    rx_csum_pdus: int = 0
    #: transmit PDUs refused because Csum's field lay outside them (CqError.PipeError)
    pipe_errors: int = 0


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int {lo} .. {hi}, not {value!r}")
    return value


class An2Driver:
    """A driver instance for one AN2 card mapped on ``bus`` at ``base``.

    Parameters
    ----------
    cpu : CPU
        Runs the driver; register accesses, the interrupt and the driver's paths are charged.
    bus : Bus
        The bus the card's register window is mapped on.
    base : int
        The window's base address (word aligned).
    memory : Memory
        Host memory the card DMAs to and from (rings, buffers).
    irq : IrqLine
        The card's interrupt line.
    region : (int, int)
        Kernel memory the driver may use: (address, size); :meth:`layout_size` says how much.
    name : str
        For logs and the interrupt's name.
    tx_ring, cq_size, rx_ring : int
        Ring entries (powers of two, 2 .. 4096); the pool holds ``rx_ring - 1`` buffers.
    buffer_size : int
        Bytes of each receive buffer and transmit bounce buffer (a multiple of 4, <= 65532).
    on_pdu : callable, optional
        ``on_pdu(vci, data)`` (plain or async) for every good PDU; otherwise :meth:`recv`.
    coalesce : int
        Completions per interrupt (CoalesceCount, 1 .. 255).
    irq_level : int
        Interrupt priority level on ``cpu``.

    Raises
    ------
    TypeError, ValueError
        For arguments of the wrong type or out of range, or a region too small or outside
        memory.
    """

    def __init__(self, cpu: CPU, bus: Bus, base: int, memory: Memory, irq: IrqLine, *,
                 region: tuple[int, int], name: str = "an0", tx_ring: int = 64,
                 cq_size: int = 256, rx_ring: int = 64, buffer_size: int = 2048,
                 on_pdu: Callable[[int, bytes], Any] | None = None, coalesce: int = 1,
                 irq_level: int = 1):
        if not isinstance(cpu, CPU):
            raise TypeError(f"cpu must be a sim.cpu.CPU, not {cpu!r}")
        if not isinstance(bus, Bus):
            raise TypeError(f"bus must be a sim.bus.Bus, not {bus!r}")
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a sim.memory.Memory, not {memory!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        if not isinstance(base, int) or isinstance(base, bool) or base < 0 or base & 3:
            raise ValueError(f"base must be a word-aligned address >= 0, not {base!r}")
        for what, n in (("tx_ring", tx_ring), ("cq_size", cq_size), ("rx_ring", rx_ring)):
            if not ring_entries_valid(n):
                raise ValueError(f"{what} must be a power of two 2 .. 4096, not {n!r}")
        _check_int("buffer_size", buffer_size, 4, MAX_PDU - 3)
        if buffer_size % 4:
            raise ValueError(f"buffer_size must be a multiple of 4, not {buffer_size}")
        _check_int("coalesce", coalesce, 1, 255)
        _check_int("irq_level", irq_level, 1, 1 << 16)
        if on_pdu is not None and not callable(on_pdu):
            raise TypeError(f"on_pdu must be callable, not {on_pdu!r}")
        if not (isinstance(region, tuple) and len(region) == 2):
            raise TypeError(f"region must be (address, size), not {region!r}")
        addr, size = region
        _check_int("region address", addr, 0, memory.size)
        need = self.layout_size(tx_ring=tx_ring, cq_size=cq_size, rx_ring=rx_ring,
                                buffer_size=buffer_size)
        if addr % RING_ALIGN or size < need or addr + size > memory.size:
            raise ValueError(f"region {addr:#x}+{size:#x} must be 16-byte aligned, inside memory "
                             f"and at least {need:#x} bytes")
        self.cpu, self.bus, self.base, self.memory, self.irq = cpu, bus, base, memory, irq
        self.name, self.on_pdu, self.coalesce, self.irq_level = name, on_pdu, coalesce, irq_level
        self.tx_ring, self.cq_size, self.rx_ring = tx_ring, cq_size, rx_ring
        self.buffer_size = buffer_size
        self.cq_base = addr
        self.tx_base = self.cq_base + ENTRY_BYTES * cq_size
        self.pool_base = self.tx_base + ENTRY_BYTES * tx_ring
        self.tx_bufs = self.pool_base + ENTRY_BYTES * rx_ring
        self.rx_bufs = self.tx_bufs + buffer_size * tx_ring
        self.stats = An2Stats()
        self.pipe_stats = An2PipeStats()
        #: Where send() copies a caller's bytes from (names the source for the cache model).
        self._tx_src = cpu.region(f"{name}.tx-src", buffer_size)
        k = cpu.kernel
        self.kernel = k
        self.started = False
        self._attached = False
        self._rxq: Queue = Queue(k, name=f"{name}.rx")
        self._tx_space = Event(k, f"{name}.txspace")
        self._tx_idle = Event(k, f"{name}.txidle")
        self._tx_idle.set()
        self._reset_soft_state()

    @staticmethod
    def layout_size(*, tx_ring: int = 64, cq_size: int = 256, rx_ring: int = 64,
                    buffer_size: int = 2048) -> int:
        """Bytes of kernel memory a driver with these parameters lays out."""
        return ENTRY_BYTES * (cq_size + tx_ring + rx_ring) + buffer_size * (tx_ring + rx_ring)

    def _reset_soft_state(self) -> None:
        self._cq_next, self._cq_phase = 0, 1
        self._tx_next = self._tx_dirty = self._tx_used = 0
        self._tx_len: dict[int, int] = {}           # last index of a PDU -> its length
        self._rx_tail = 0                           # oldest slot not yet handed back
        self._rx_prod = 0
        self._rx_done = [False] * self.rx_ring
        self._rx_free = deque(self.rx_bufs + self.buffer_size * i
                              for i in range(self.rx_ring - 1))
        self._rx_sums: dict[int, int] = {}          # VCI with rx_csum -> its pipe_start

    # -- registers --------------------------------------------------------------------------
    async def _rd(self, off: int) -> int:
        return await self.cpu.load(self.bus, self.base + int(off))

    async def _wr(self, off: int, value: int) -> None:
        await self.cpu.store(self.bus, self.base + int(off), int(value))

    # -- bring-up ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Reset the card, lay out and program the rings and pool 0, enable both engines.

        Raises
        ------
        An2Error
            If the card's reset does not finish.
        RuntimeError
            If the driver was already started.
        """
        if self.started:
            raise RuntimeError(f"{self.name}: already started")
        await self._wr(Reg.Control, Control.Reset)
        for _ in range(_RESET_POLLS):
            if not await self._rd(Reg.Control) & Control.Reset:
                break
        else:
            raise An2Error(f"{self.name}: Control.Reset still set after {_RESET_POLLS} reads")
        self._reset_soft_state()
        mem = self.memory
        mem.write(self.cq_base, bytes(ENTRY_BYTES * self.cq_size))
        mem.write(self.tx_base, bytes(ENTRY_BYTES * self.tx_ring))
        mem.write(self.pool_base, bytes(ENTRY_BYTES * self.rx_ring))
        self._post_rx()
        for reg, value in ((Reg.CqBase, self.cq_base), (Reg.CqSize, self.cq_size),
                           (Reg.TxBase, self.tx_base), (Reg.TxSize, self.tx_ring),
                           (pool_reg(Reg.PoolBase, 0), self.pool_base),
                           (pool_reg(Reg.PoolSize, 0), self.rx_ring),
                           (pool_reg(Reg.PoolProducer, 0), self._rx_prod),
                           (Reg.CoalesceCount, self.coalesce),
                           (Reg.IrqEnable, Irq.Completion | Irq.CqFull | Irq.Error)):
            await self._wr(reg, value)
        if not self._attached:
            self.cpu.attach_irq(self.irq, self._interrupt, self.name, level=self.irq_level,
                                dispatch_cycles=self.cpu.profile.interrupt_dispatch_cycles)
            self._attached = True
        await self._wr(Reg.Control, Control.TxEnable | Control.RxEnable)
        self.started = True

    async def open_vc(self, vci: int, *, pool: int = 0, owner: int = 0,
                      aal5: bool = True, rx_csum: bool = False, pipe_start: int = 0) -> None:
        """Enable VC ``vci`` (receive into ``pool``, DMA as ``owner``); written again, the
        entry changes. ``rx_csum`` (AAL5 only): the card sums each PDU's payload from byte
        ``2 * pipe_start`` on into its completion, and good PDUs come as :class:`SummedPdu`.

        Raises
        ------
        ValueError
            For a VCI, pool, owner or pipe_start out of range (only pool 0 is laid out by
            this version), or ``rx_csum`` on a VC that is not AAL5.
        """
        _check_int("vci", vci, 0, NUM_VCS - 1)
        _check_int("pool", pool, 0, 0)
        _check_int("owner", owner, 0, NUM_OWNERS - 1)
        _check_int("pipe_start", pipe_start, 0, 255)
        if not isinstance(rx_csum, bool):
            raise ValueError(f"rx_csum must be a bool, not {rx_csum!r}")
        if rx_csum and not aal5:
            raise ValueError(f"{self.name}: VC {vci}: rx_csum needs an AAL5 VC")
        await self._wr(Reg.VcIndex, vci)
        await self._wr(Reg.VcEntry, VcEntry(enable=1, aal5=int(bool(aal5)), pool=pool,
                                            owner=owner, rx_csum=int(rx_csum),
                                            pipe_start=pipe_start).to_int())
        if rx_csum:
            self._rx_sums[vci] = pipe_start
        else:
            self._rx_sums.pop(vci, None)

    # -- transmit ---------------------------------------------------------------------------
    async def send(self, vci: int, buffers: bytes | Sequence[bytes | tuple[int, int]], *,
                   in_place: bool = False, csum: tuple[int, int] | None = None) -> None:
        """Queue one PDU on ``vci``; returns when the card owns it (see :meth:`flush`).

        ``buffers`` is ``bytes`` or a list of pieces, each either ``(addr, length)``, bytes
        already in host memory (zero copy: the card reads them by DMA), or ``bytes``, which the
        driver copies into its transmit buffers in kernel memory (charged as a copy), split
        into ``buffer_size`` pieces; with ``in_place`` the bytes pieces are already in kernel
        buffers the card reaches (mbufs) and nothing is copied (the module docstring). Each
        piece is one descriptor. Waits for free descriptors if the ring is full.

        ``csum``: ``(csum_start, csum_field)`` in 16-bit units: the card completes the PDU's
        Internet checksum over bytes ``[2 * csum_start, length)`` into the field at byte
        ``2 * (csum_start + csum_field)``, which must hold the pseudo-header's sum (Csum on
        the First descriptor).

        Raises
        ------
        ValueError
            For a bad VCI, a PDU over 65535 bytes, a piece outside memory or of neither form,
            more pieces than the ring can ever hold, or a ``csum`` whose offsets are not
            0 .. 255 or whose field does not lie wholly inside the PDU.
        RuntimeError
            If the driver has not been started.
        """
        if not self.started:
            raise RuntimeError(f"{self.name}: send() before start()")
        _check_int("vci", vci, 0, NUM_VCS - 1)
        if isinstance(buffers, (bytes, bytearray, memoryview)):
            buffers = [buffers]
        bs = self.buffer_size
        pieces: list[tuple[object, object, int]] = []  # (copied / None in place / False, data, n)
        for piece in buffers:
            if isinstance(piece, (bytes, bytearray, memoryview)):
                how = None if in_place else True
                data = bytes(piece)
                pieces += [(how, data[i:i + bs], len(data[i:i + bs]))
                           for i in range(0, len(data), bs)]
                continue
            if not (isinstance(piece, tuple) and len(piece) == 2):
                raise ValueError(f"{self.name}: a piece is bytes or (address, length), "
                                 f"not {piece!r}")
            a, n = piece
            _check_int("piece address", a, 0, self.memory.size)
            _check_int("piece length", n, 0, self.memory.size - a)
            pieces.append((False, a, n))
        if not pieces:
            if not buffers:
                raise ValueError(f"{self.name}: a PDU needs at least one piece")
            pieces = [(True, b"", 0)]                 # an empty PDU: one empty descriptor
        total = sum(n for _, _, n in pieces)
        if total > MAX_PDU:
            raise ValueError(f"{self.name}: a PDU of {total} bytes exceeds {MAX_PDU}")
        csum_bits = {}
        if csum is not None:
            if not (isinstance(csum, tuple) and len(csum) == 2):
                raise ValueError(f"{self.name}: csum is (csum_start, csum_field), not {csum!r}")
            start, fld = (_check_int(w, v, 0, 255) for w, v in zip(("csum_start", "csum_field"),
                                                                   csum))
            if not csum_field_fits(total, start, fld):
                raise ValueError(f"{self.name}: the checksum field at byte "
                                 f"{csum_field_offset(start, fld)} does not lie inside a PDU "
                                 f"of {total} bytes")
            csum_bits = {"csum": 1, "csum_start": start, "csum_field": fld}
        if len(pieces) > self.tx_ring - 1:
            raise ValueError(f"{self.name}: {len(pieces)} pieces exceed the transmit ring "
                             f"({self.tx_ring - 1} descriptors)")
        while self.tx_ring - 1 - self._tx_used < len(pieces):
            self.stats.tx_ring_full += 1
            self._tx_space.clear()
            await self._tx_space
        first = self._tx_next
        self._tx_used += len(pieces)
        self._tx_next = (first + len(pieces)) % self.tx_ring
        self._tx_idle.clear()
        last_i = (first + len(pieces) - 1) % self.tx_ring
        self._tx_len[last_i] = total
        await self.cpu.path("an2.send", _SEND_INSTRUCTIONS + _DESC_INSTRUCTIONS * len(pieces)
                            + (_TX_CSUM_INSTRUCTIONS if csum_bits else 0),
                            _CODE_BYTES, category=KERNEL)
        if csum_bits:
            self.pipe_stats.tx_csum_pdus += 1
        for j, (copied, what, n) in enumerate(pieces):
            i = (first + j) % self.tx_ring
            if copied is None:                       # in kernel buffers already: no copy
                addr = self.tx_bufs + self.buffer_size * i
                self.memory.write(addr, what)
                self.stats.tx_inplace_bytes += n
            elif copied:
                addr = self.tx_bufs + self.buffer_size * i
                await self.cpu.copy(n, src=self._tx_src, dst=addr)
                self.memory.write(addr, what)
                self.stats.tx_copied_bytes += n
            else:
                addr = what
            d = TxDescriptor(addr=addr, length=n, vci=vci, first=int(j == 0),
                             last=int(j == len(pieces) - 1), own=1, tag=i,
                             **(csum_bits if j == 0 else {}))
            self.memory.write(self.tx_base + ENTRY_BYTES * i, d.pack())
        await self._wr(Reg.TxProducer, self._tx_next)

    async def flush(self) -> None:
        """Wait until every queued PDU's descriptors have been reclaimed."""
        while self._tx_used:
            self._tx_idle.clear()
            await self._tx_idle

    # -- receive ----------------------------------------------------------------------------
    async def recv(self) -> tuple[int, bytes]:
        """Await the next good PDU as ``(vci, data)``.

        Raises
        ------
        RuntimeError
            If PDUs go to ``on_pdu`` instead.
        """
        if self.on_pdu is not None:
            raise RuntimeError(f"{self.name}: PDUs go to on_pdu; recv() would wait forever")
        return await self._rxq.get()

    def pending(self) -> int:
        """Good PDUs waiting for :meth:`recv`."""
        return len(self._rxq)

    def _post_rx(self) -> None:
        """Post free buffers at the pool's producer while the ring has room (host memory only;
        the caller writes PoolProducer)."""
        n = self.rx_ring
        while self._rx_free and (self._rx_prod + 1) % n != self._rx_tail:
            addr = self._rx_free.popleft()
            i = self._rx_prod
            self._rx_done[i] = False
            self.memory.write(self.pool_base + ENTRY_BYTES * i,
                              RxDescriptor(addr=addr, size=self.buffer_size, own=1,
                                           tag=i).pack())
            self._rx_prod = (i + 1) % n

    # -- the interrupt ----------------------------------------------------------------------
    async def _interrupt(self) -> None:
        self.stats.interrupts += 1
        cause = await self._rd(Reg.IrqCause)
        await self._wr(Reg.IrqCause, cause)        # acknowledge first: nothing is lost
        if cause & Irq.Error and await self._rd(Reg.Status) & Status.Fault:
            self.stats.faults += 1
            log.error("%s: the card halted (Status.Fault): a ring DMA was refused", self.name)
        handled = 0
        delivered: list[tuple[int, bytes]] = []
        mem = self.memory
        while True:
            raw = mem.read(self.cq_base + ENTRY_BYTES * self._cq_next, ENTRY_BYTES)
            if not raw[0] & 3 or (raw[0] >> 7) & 1 != self._cq_phase:
                break
            c = Completion.unpack(raw)
            summed = c.kind != CqKind.Tx and c.vci in self._rx_sums
            await self.cpu.path("an2.completion", _COMPLETION_INSTRUCTIONS
                                + (_RX_CSUM_INSTRUCTIONS if summed else 0), _CODE_BYTES,
                                category=INTERRUPT)
            if c.kind == CqKind.Tx:
                self._reclaim_tx(c)
            else:
                pdu = self._take_rx(c)
                if pdu is not None:
                    delivered.append((c.vci, pdu))
            self._cq_next = (self._cq_next + 1) % self.cq_size
            if self._cq_next == 0:
                self._cq_phase ^= 1
            handled += 1
        if handled:
            prod = self._rx_prod
            self._post_rx()
            if self._rx_prod != prod:
                await self._wr(pool_reg(Reg.PoolProducer, 0), self._rx_prod)
            await self._wr(Reg.CqConsumer, self._cq_next)
        for vci, data in delivered:
            await self._deliver(vci, data)

    def _count_errors(self, errors: CqError) -> None:
        st = self.stats
        for bit, counter in _ERRORS:
            if errors & bit:
                setattr(st, counter, getattr(st, counter) + 1)
        if errors & CqError.PipeError:
            self.pipe_stats.pipe_errors += 1

    def _reclaim_tx(self, c: Completion) -> None:
        st = self.stats
        n = ((c.index - self._tx_dirty) % self.tx_ring) + 1
        self._tx_dirty = (c.index + 1) % self.tx_ring
        self._tx_used -= n
        length = self._tx_len.pop(c.index, c.length)
        if c.errors:
            st.tx_errors += 1
            self._count_errors(c.errors)
        else:
            st.tx_pdus += 1
            st.tx_bytes += length
        self._tx_space.set()
        if not self._tx_used:
            self._tx_idle.set()

    def _take_rx(self, c: Completion) -> bytes | None:
        """Collect the completion's buffers (its VC's written-back descriptors up to ``index``),
        free them, and return the PDU if it is good."""
        st = self.stats
        n = self.rx_ring
        descs: list[tuple[int, RxDescriptor]] = []
        if c.index != NO_INDEX:
            i = self._rx_tail
            while True:
                if not self._rx_done[i]:
                    d = RxDescriptor.unpack(self.memory.read(self.pool_base + ENTRY_BYTES * i,
                                                             ENTRY_BYTES))
                    if not d.own and d.vci == c.vci:
                        descs.append((i, d))
                if i == c.index or i == self._rx_prod:
                    break
                i = (i + 1) % n
        data = None
        if c.errors:
            st.rx_errors += 1
            self._count_errors(c.errors)
        else:
            data = b"".join(self.memory.read(d.addr, d.length) for _, d in descs)
            st.rx_pdus += 1
            st.rx_bytes += len(data)
            start = self._rx_sums.get(c.vci)
            if start is not None:
                self.pipe_stats.rx_csum_pdus += 1
                data = SummedPdu(data, csum=c.csum, csum_from=2 * start)
        for i, d in descs:
            self._rx_done[i] = True
            self._rx_free.append(d.addr)
        while self._rx_tail != self._rx_prod and self._rx_done[self._rx_tail]:
            self._rx_tail = (self._rx_tail + 1) % n
        return data

    async def _deliver(self, vci: int, data: bytes) -> None:
        if self.on_pdu is None:
            self._rxq.put_nowait((vci, data))
            return
        r = self.on_pdu(vci, data)
        if inspect.isawaitable(r):
            await r

    def __repr__(self) -> str:
        return f"<An2Driver {self.name} at {self.base:#x}>"
