"""A register-level driver of the AN2 card for its cocotb benches (tests/hw/cocotb_an2.py).

:class:`An2Host` is the host CPU of a bench: it reaches the card's registers through the host
bus's BFM (:class:`bfm.cocotb_hostbus.HostBusDriver`) and host memory directly (the
:class:`bfm.dma_memory.HostMemory` the card's DMA BFM serves: a CPU load or store costs no bus
time in a bench). Everything is in the offsets and formats of :mod:`hw.an2.registers` (the
contract, docs/an2_card.md); nothing of the gateware is imported.

* :class:`HostLayout`: where the transmit ring, the completion queue and the four pools' rings
  sit, and a bump allocator for buffers above them.
* :class:`An2Host`: reset, ring set-up, VC table, posting receive buffers (:meth:`post_rx`),
  queueing a scatter/gather PDU (:meth:`send`), taking completions up to CqProducer
  (:meth:`completions`, :meth:`wait_completions`), a received PDU's buffers and bytes
  (:meth:`take_rx`), counters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


from bfm.cocotb_hostbus import HostBusDriver
from bfm.dma_memory import HostMemory
from bfm.pauses import wait_edges
from hw.an2.registers import (ENTRY_BYTES, NO_INDEX, NUM_POOLS, RING_ALIGN, Completion, Control,
                              Counter, CqKind, Reg, RxDescriptor, TxDescriptor, VcEntry,
                              completion_layout, pool_reg, ring_entries_valid)
from hw.an2.timing import RESET_CYCLES

__all__ = ["An2Host", "HostLayout", "RxPdu"]

#: The reserved bits of a completion's word 0 (the card writes them 0).
_CQ_W0_RESERVED = sum(((1 << completion_layout[f].width) - 1) << completion_layout[f].offset
                      for f in ("res0",))


@dataclass
class HostLayout:
    """The kernel's rings in host memory, then a bump allocator for buffers.

    Parameters
    ----------
    tx_size, cq_size : int
        Entries of the transmit ring and of the completion queue.
    pool_sizes : tuple of int
        Entries of each of the four pools' rings.
    base : int
        Where the rings start (16-byte aligned).

    Raises
    ------
    ValueError
        For an illegal ring size or an unaligned base.
    """

    tx_size: int = 64
    cq_size: int = 256
    pool_sizes: tuple[int, ...] = (256, 16, 16, 16)
    base: int = 0
    tx_base: int = field(init=False)
    cq_base: int = field(init=False)
    pool_bases: tuple[int, ...] = field(init=False)
    heap: int = field(init=False)

    def __post_init__(self) -> None:
        sizes = (self.tx_size, self.cq_size, *self.pool_sizes)
        if len(self.pool_sizes) != NUM_POOLS or not all(ring_entries_valid(n) for n in sizes):
            raise ValueError(f"ring sizes must be powers of two 2 .. 4096 and {NUM_POOLS} pools, "
                             f"not tx={self.tx_size} cq={self.cq_size} pools={self.pool_sizes}")
        if not isinstance(self.base, int) or self.base < 0 or self.base % RING_ALIGN:
            raise ValueError(f"base must be {RING_ALIGN}-byte aligned, not {self.base!r}")
        a = self.base
        self.tx_base, a = a, a + ENTRY_BYTES * self.tx_size
        self.cq_base, a = a, a + ENTRY_BYTES * self.cq_size
        bases = []
        for n in self.pool_sizes:
            bases.append(a)
            a += ENTRY_BYTES * n
        self.pool_bases = tuple(bases)
        self.heap = a

    @property
    def rings_end(self) -> int:
        """The first byte after the rings."""
        return self.pool_bases[-1] + ENTRY_BYTES * self.pool_sizes[-1]


@dataclass(frozen=True)
class RxPdu:
    """A received PDU as the host takes it: its completion, its buffers' written-back
    descriptors (ring index, descriptor) in order, and the bytes they hold."""

    completion: Completion
    buffers: tuple[tuple[int, RxDescriptor], ...]
    data: bytes


class An2Host:
    """The bench's CPU driving one AN2 card.

    Parameters
    ----------
    bus : HostBusDriver
        The card's register bus.
    memory : HostMemory
        Host memory (the card's DMA BFM serves the same object).
    clock
        The card's clock handle (for polling intervals).
    layout : HostLayout
        The rings.

    Raises
    ------
    TypeError
        For an argument of the wrong type.
    """

    def __init__(self, bus: HostBusDriver, memory: HostMemory, clock: Any, *,
                 layout: HostLayout) -> None:
        if not isinstance(bus, HostBusDriver):
            raise TypeError(f"bus must be a HostBusDriver, not {bus!r}")
        if not isinstance(memory, HostMemory):
            raise TypeError(f"memory must be a HostMemory, not {memory!r}")
        if not isinstance(layout, HostLayout):
            raise TypeError(f"layout must be a HostLayout, not {layout!r}")
        if layout.heap > memory.size:
            raise ValueError(f"the rings end at {layout.heap:#x}, past memory ({memory.size:#x})")
        self.bus, self.memory, self.clock, self.layout = bus, memory, clock, layout
        self._brk = layout.heap
        self._soft_reset()

    def _soft_reset(self) -> None:
        lay = self.layout
        self.tx_next = 0                     # next transmit descriptor the host fills
        self.cq_next, self.cq_phase = 0, 1   # next completion entry, its expected phase
        self.pool_next = [0] * NUM_POOLS     # next pool slot the host posts into
        self.pool_claimed: list[set[int]] = [set(range(n)) for n in lay.pool_sizes]
        self.pool_oldest = [0] * NUM_POOLS   # the oldest posted slot not yet taken back

    # -- memory -----------------------------------------------------------------------------
    def alloc(self, n: int, *, align: int = 4, offset: int = 0) -> int:
        """``n`` bytes of buffer memory at ``offset`` bytes past an ``align``-byte boundary.

        Raises
        ------
        MemoryError
            When memory is exhausted.
        """
        a = -(-self._brk // align) * align + offset
        if a + n > self.memory.size:
            raise MemoryError(f"no room for {n} bytes at {a:#x} (memory {self.memory.size:#x})")
        self._brk = a + n
        return a

    def heap_mark(self) -> int:
        """The allocator's position, for :meth:`heap_release`."""
        return self._brk

    def heap_release(self, mark: int) -> None:
        """Free everything allocated since :meth:`heap_mark` returned ``mark``."""
        if not self.layout.heap <= mark <= self._brk:
            raise ValueError(f"{mark:#x} is not a mark of the heap [{self.layout.heap:#x}, "
                             f"{self._brk:#x}]")
        self._brk = mark

    def alloc_page(self, pages: int = 1) -> int:
        """Whole pages (for ownership tests)."""
        return self.alloc(pages * self.memory.page_size, align=self.memory.page_size)

    async def cycles(self, n: int) -> None:
        """Let ``n`` clock cycles pass (returns just after an edge)."""
        await wait_edges(self.clock, n, period_ps=self.bus.period)

    # -- registers --------------------------------------------------------------------------
    async def read(self, reg: Reg | int) -> int:
        return await self.bus.read(int(reg))

    async def write(self, reg: Reg | int, value: int) -> None:
        await self.bus.write(int(reg), int(value))

    async def reset(self) -> None:
        """Control.Reset, then wait until it reads 0 (the card clears its VC table).

        Raises
        ------
        AssertionError
            If Reset is still set well after timing.RESET_CYCLES.
        """
        await self.write(Reg.Control, Control.Reset)
        await self.cycles(RESET_CYCLES)
        for _ in range(64):
            if not await self.read(Reg.Control) & Control.Reset:
                break
            await self.cycles(16)
        else:
            raise AssertionError("Control.Reset still set 1000 cycles after RESET_CYCLES")
        self._soft_reset()

    async def setup(self, *, coalesce: int = 1) -> None:
        """Zero the rings and the queue in memory and program their registers (engines off)."""
        lay, mem = self.layout, self.memory
        mem.write(lay.base, bytes(lay.rings_end - lay.base))
        regs = [(Reg.TxBase, lay.tx_base), (Reg.TxSize, lay.tx_size),
                (Reg.CqBase, lay.cq_base), (Reg.CqSize, lay.cq_size),
                (Reg.CoalesceCount, coalesce)]
        for p in range(NUM_POOLS):
            regs += [(pool_reg(Reg.PoolBase, p), lay.pool_bases[p]),
                     (pool_reg(Reg.PoolSize, p), lay.pool_sizes[p])]
        for reg, value in regs:
            await self.write(reg, value)

    async def enable(self, *, tx: bool = True, rx: bool = True, loopback: bool = False) -> None:
        value = (Control.TxEnable if tx else 0) | (Control.RxEnable if rx else 0) \
            | (Control.Loopback if loopback else 0)
        await self.write(Reg.Control, value)

    async def open_vc(self, vci: int, *, pool: int = 0, owner: int = 0, aal5: bool = True,
                      enable: bool = True, rx_csum: bool = False, rx_swap: int = 0,
                      pipe_start: int = 0) -> None:
        """Write VC ``vci``'s table entry (the receive pipes: ``rx_csum``, ``rx_swap``,
        ``pipe_start``)."""
        await self.write(Reg.VcIndex, vci)
        await self.write(Reg.VcEntry, VcEntry(enable=int(enable), aal5=int(aal5), pool=pool,
                                              owner=owner, rx_csum=int(rx_csum), rx_swap=rx_swap,
                                              pipe_start=pipe_start).to_int())

    async def vc(self, vci: int) -> VcEntry:
        await self.write(Reg.VcIndex, vci)
        return VcEntry.from_int(await self.read(Reg.VcEntry))

    async def counters(self) -> dict[Counter, int]:
        return {c: await self.read(c.offset) for c in Counter}

    # -- receive pools ---------------------------------------------------------------------------
    def _pool_entry(self, pool: int, i: int) -> int:
        return self.layout.pool_bases[pool] + ENTRY_BYTES * i

    def rx_descriptor(self, pool: int, i: int) -> RxDescriptor:
        return RxDescriptor.unpack(self.memory.read(self._pool_entry(pool, i), ENTRY_BYTES))

    def pool_room(self, pool: int) -> int:
        """Buffers the host can post now: free slots, one kept empty (a ring of n holds n - 1)."""
        n = self.layout.pool_sizes[pool]
        room, i = 0, self.pool_next[pool]
        while i in self.pool_claimed[pool] and (i + 1) % n != self.pool_oldest[pool]:
            room += 1
            i = (i + 1) % n
        return room

    async def post_rx(self, pool: int, buffers: Iterable[tuple[int, int, int]]) -> list[int]:
        """Post free buffers ``(addr, size, tag)`` to ``pool`` and ring its doorbell once.

        Returns
        -------
        list of int
            The ring slots used.

        Raises
        ------
        AssertionError
            If the ring has no room for them.
        """
        n, used = self.layout.pool_sizes[pool], []
        for addr, size, tag in buffers:
            i = self.pool_next[pool]
            nxt = (i + 1) % n
            if i not in self.pool_claimed[pool] or nxt == self.pool_oldest[pool]:
                raise AssertionError(f"pool {pool}: no room to post a buffer at slot {i}")
            self.pool_claimed[pool].discard(i)
            self.memory.write(self._pool_entry(pool, i),
                              RxDescriptor(addr=addr, size=size, own=1, tag=tag).pack())
            used.append(i)
            self.pool_next[pool] = nxt
        if used:
            await self.write(pool_reg(Reg.PoolProducer, pool), self.pool_next[pool])
        return used

    def take_rx(self, c: Completion) -> RxPdu:
        """The buffers of received PDU ``c``: its VC's written-back descriptors from the
        pool's oldest posted slot up to ``c.index``, claimed (free for posting again)."""
        p, n = c.pool, self.layout.pool_sizes[c.pool]
        bufs: list[tuple[int, RxDescriptor]] = []
        if c.index != NO_INDEX:
            i = self.pool_oldest[p]
            while True:
                if i not in self.pool_claimed[p]:
                    d = self.rx_descriptor(p, i)
                    if not d.own and d.vci == c.vci:
                        bufs.append((i, d))
                if i == c.index or i == self.pool_next[p]:
                    break
                i = (i + 1) % n
        for i, _ in bufs:
            self.pool_claimed[p].add(i)
        while self.pool_oldest[p] != self.pool_next[p] \
                and self.pool_oldest[p] in self.pool_claimed[p]:
            self.pool_oldest[p] = (self.pool_oldest[p] + 1) % n
        data = b"".join(self.memory.read(d.addr, d.length) for _, d in bufs)
        return RxPdu(c, tuple(bufs), data)

    # -- transmit -----------------------------------------------------------------------------
    def _tx_entry(self, i: int) -> int:
        return self.layout.tx_base + ENTRY_BYTES * i

    def tx_descriptor(self, i: int) -> TxDescriptor:
        return TxDescriptor.unpack(self.memory.read(self._tx_entry(i), ENTRY_BYTES))

    async def send(self, vci: int, pieces: list[tuple[int, int]], *, tag: int,
                   doorbell: bool = True, csum: tuple[int, int] | None = None) -> list[int]:
        """Queue one PDU of buffers ``[(addr, length), ...]`` (at least one) on VC ``vci``,
        ``tag`` on every descriptor, and ring the doorbell (unless ``doorbell`` is False);
        ``csum`` = (csum_start, csum_field): the card fills in the Internet checksum.

        Returns
        -------
        list of int
            The transmit ring slots used (the last is the completion's index).

        Raises
        ------
        ValueError
            For no pieces, or more than the ring holds.
        """
        n = self.layout.tx_size
        if not pieces or len(pieces) > n - 1:
            raise ValueError(f"a PDU is 1 .. {n - 1} pieces here, not {len(pieces)}")
        used = []
        for k, (addr, length) in enumerate(pieces):
            i = self.tx_next
            pipe = {} if csum is None or k else dict(csum=1, csum_start=csum[0],
                                                     csum_field=csum[1])
            self.memory.write(self._tx_entry(i), TxDescriptor(
                addr=addr, length=length, vci=vci, first=int(k == 0),
                last=int(k == len(pieces) - 1), own=1, tag=tag, **pipe).pack())
            used.append(i)
            self.tx_next = (i + 1) % n
        if doorbell:
            await self.write(Reg.TxProducer, self.tx_next)
        return used

    async def doorbell(self) -> None:
        await self.write(Reg.TxProducer, self.tx_next)

    # -- completions --------------------------------------------------------------------------
    async def completions(self) -> list[Completion]:
        """The new completion entries, up to CqProducer, handed back with one write of
        CqConsumer.

        CqProducer, not the phase bit alone, says which entries are whole: the card writes an
        entry word 0 first (kind, phase) in a burst the memory may stretch with wait states,
        so an entry found by its phase bit alone may still lack words 1-3. Each entry's phase
        bit is checked against the pass over the queue, and word 0's reserved bits are 0.

        Raises
        ------
        AssertionError
            If an entry before CqProducer has no kind, the wrong phase or a reserved bit set.
        """
        lay, out = self.layout, []
        producer = await self.read(Reg.CqProducer)
        while self.cq_next != producer:
            raw = self.memory.read(lay.cq_base + ENTRY_BYTES * self.cq_next, ENTRY_BYTES)
            w0 = int.from_bytes(raw[:4], "little")
            assert w0 & 3 and (w0 >> 7) & 1 == self.cq_phase and not w0 & _CQ_W0_RESERVED, \
                f"completion {self.cq_next} before CqProducer {producer}: word 0 {w0:#010x}, " \
                f"phase {self.cq_phase} and reserved bits 0 expected"
            out.append(Completion.unpack(raw))
            self.cq_next = (self.cq_next + 1) % lay.cq_size
            if self.cq_next == 0:
                self.cq_phase ^= 1
        if out:
            await self.write(Reg.CqConsumer, self.cq_next)
        return out

    async def wait_completions(self, n: int, *, timeout_cycles: int,
                               poll_cycles: int = 256) -> list[Completion]:
        """Take completions until ``n`` have come (polling every ``poll_cycles``).

        Raises
        ------
        AssertionError
            If fewer than ``n`` came within ``timeout_cycles``.
        """
        got: list[Completion] = []
        waited = 0
        while True:
            got += await self.completions()
            if len(got) >= n:
                return got
            if waited >= timeout_cycles:
                raise AssertionError(f"{len(got)} of {n} completions after {waited} cycles: "
                                     f"{got!r}")
            await self.cycles(poll_cycles)
            waited += poll_cycles

    @staticmethod
    def is_rx(c: Completion) -> bool:
        return c.kind == CqKind.Rx
