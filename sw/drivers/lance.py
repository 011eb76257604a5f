"""The driver of the LANCE-style Ethernet card (an Am7990 on a PMAD-AA), in the style of
4.4BSD's ``if_le.c`` / NetBSD's ``am7990.c``.

The card has no DMA to host memory: the LANCE works out of the card's own buffer SRAM, which
the CPU reaches by programmed I/O over the TURBOchannel. So the driver

* lays out the init block, the receive and transmit descriptor rings and the buffers in the
  buffer SRAM (:class:`hw.lance.registers.BufferLayout`, the BSD layout), points CSR1/CSR2 at
  the init block and starts the card with ``INIT | STRT | INEA``;
* transmits by copying the frame word by word into a free transmit buffer
  (:meth:`sim.cpu.CPU.store_words`: the CPU pays the card's write wait state for every word),
  writing the descriptor (``OWN`` last) and demanding a poll (``TDMD``);
* takes the card's interrupt (:meth:`sim.cpu.CPU.attach_irq`): reads CSR0, acknowledges the
  causes it saw, reclaims transmitted descriptors (counting ``RTRY``, ``LCOL``, ... in
  :class:`LanceStats`) and copies received frames out of buffer SRAM
  (:meth:`sim.cpu.CPU.load_words`: a read wait state per word) before handing their
  descriptors back to the card.

Every register access and every word moved is a bus access charged to the CPU under
:data:`sim.cpu.IO_WAIT`. The host-memory side of the two copy loops is charged too, under
:data:`sim.cpu.MEMORY_STALL`, on a machine whose memory system is modelled (:mod:`sim.cache`):
a frame sent is read from host memory (a read miss for every word not in the data cache; by
default the frame is in a host buffer of the driver's, one per transmit descriptor, standing for
the mbufs BSD's ``leput`` copies from, which the protocol stack has just written, so its lines
are installed in the write-through cache first and the reads hit; :meth:`LanceDriver.send`
takes the real address as ``src=``), and a frame
received is stored into host memory (one host buffer per receive descriptor, standing for the
mbufs ``leget`` fills), each store draining through the write buffer before the next I/O read
can pass it (:meth:`sim.cache.MemorySystem.pio_in`). Nothing else is charged here (the kernel
above charges its own per-packet work). The driver imports only :mod:`hw.lance.registers` from the hardware floor,
so it runs unchanged over the card's transaction-level model and its RTL.

Buffer SRAM word ``i`` (CPU byte offset ``4 i``) holds buffer bytes ``4i .. 4i+3``
little-endian; a descriptor is two such words (``RMD0 | RMD1 << 16``, ``RMD2 | RMD3 << 16``).
"""
from __future__ import annotations

import struct

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

from hw.lance.registers import (BUFFER_RAM_SIZE_DEFAULT, BUFFER_SIZE, COUNTERS_OFFSET, CSR0,
                                FCS_BYTES, Counter,
                                MAX_FRAME, RAM_OFFSET, RAP_OFFSET, RDP_OFFSET, ROM_ESAR_OFFSET,
                                ROM_ESAR_STRIDE, ROM_OFFSET, TMD1, TMD3, BufferLayout, Csr, Mode,
                                RMD1, RxDescriptor, TxDescriptor, csr1_csr2, plain_bits)
from sim.bus import Bus, IrqLine
from sim.cache import Address
from sim.cpu import CHECKSUM, CPU
from sim.kernel import Event, Queue
from sw.libos.ilp.compiler import build
from sw.libos.ilp.cost import issue_per_word
from sw.libos.ilp.inloop import (PMAD_PIO_IN, adjust_cycles, fill_checksum, fini_cycles,
                                 observing_program, overlapped_cycles, run_in_copy, sum_request)
from sw.libos.ilp.movement import PMAD_PIO
from sw.libos.ilp.pipes import COPY
from sw.libos.net.gather import Gather

log = logging.getLogger(__name__)

__all__ = ["LanceDriver", "LanceNetDevice", "LanceStats", "LanceError", "MIN_SEND", "MAX_SEND"]

#: Shortest frame :meth:`LanceDriver.send` takes: a header (the card pads to 60 bytes).
MIN_SEND = 14
#: Longest frame :meth:`LanceDriver.send` takes: 1518 less the FCS the card appends.
MAX_SEND = MAX_FRAME - FCS_BYTES
#: The counters word holding the missed-frame count.
_MISSED_COUNTER = COUNTERS_OFFSET + 4 * Counter.MISSED
#: How long :meth:`LanceDriver.start` waits for IDON before giving up (ps): the card reads
#: 12 init-block words in a few microseconds; 1 ms is generous.
_INIT_TIMEOUT_PS = 1_000_000_000
# The register and descriptor bits as plain ints for the per-frame paths (interrupt, ring
# service): IntFlag arithmetic there cost about 3 % of a web-server run.
_C0, _R1, _T1 = plain_bits(CSR0), plain_bits(RMD1), plain_bits(TMD1)
_W1C = int(CSR0.write_one_to_clear())
#: TMD3 errors that a transmit descriptor can report, with their stats counter.
_TX_ERRORS = ((TMD3.RTRY, "tx_retry_errors"), (TMD3.LCOL, "tx_late_collisions"),
              (TMD3.LCAR, "tx_lost_carrier"), (TMD3.UFLO, "tx_underflows"),
              (TMD3.BUFF, "tx_buffer_errors"))


class LanceError(RuntimeError):
    """The card did not behave as the driver requires (e.g. no IDON after INIT)."""


@dataclass
class LanceStats:
    """The driver's counters (BSD ``if_data`` names where one exists)."""

    #: Frames handed to the card by :meth:`LanceDriver.send`.
    queued: int = 0
    #: Frames the card reported sent without error (descriptors reclaimed).
    sent: int = 0
    bytes_sent: int = 0
    #: Frames copied out of the card and delivered.
    received: int = 0
    bytes_received: int = 0
    #: Transmit descriptors reclaimed with TMD1.ERR (the frame was not sent).
    tx_errors: int = 0
    tx_retry_errors: int = 0
    tx_late_collisions: int = 0
    tx_lost_carrier: int = 0
    tx_underflows: int = 0
    tx_buffer_errors: int = 0
    #: Frames sent after exactly one / more than one collision (TMD1.ONE / MORE).
    tx_one_collision: int = 0
    tx_more_collisions: int = 0
    #: Frames whose transmission had to defer to another station's carrier (TMD1.DEF).
    tx_deferred: int = 0
    #: Receive descriptors handed back with RMD1.ERR (BUFF, CRC, OFLO, FRAM).
    rx_errors: int = 0
    #: Frames the card missed for lack of a receive buffer (its missed-frame counter).
    missed: int = 0
    babble: int = 0
    memory_errors: int = 0
    #: Interrupt handler invocations.
    interrupts: int = 0
    #: Times :meth:`LanceDriver.send` found the transmit ring full and had to wait.
    tx_ring_full: int = 0


class LanceDriver:
    """A driver instance for one LANCE card mapped on ``bus`` at ``base``.

    Parameters
    ----------
    cpu : CPU
        The CPU that runs the driver; every bus access is charged to it.
    bus : Bus
        The bus the card's 2 MiB window is mapped on.
    base : int
        The window's base address on ``bus`` (word aligned).
    irq : IrqLine
        The card's interrupt line; :meth:`start` attaches the handler to ``cpu``.
    mac : bytes, optional
        The station address to program; by default it is read from the card's ROM.
    buffer_ram : int
        Buffer SRAM to use, 64 or 128 KiB; sets the ring sizes (:func:`ring_sizes`).
    mode : Mode
        The init block's MODE word (``Mode.PROM`` for a promiscuous card, ...).
    ladrf : int
        The 64-bit multicast hash filter.
    on_frame : callable, optional
        Called with each received frame (bytes, FCS stripped) from the interrupt handler; may
        be ``async``. Without it frames are queued for :meth:`recv`.
    irq_level : int
        The interrupt's priority level on ``cpu``.
    name : str
        For logs and the interrupt's name in CPU reports.

    Raises
    ------
    TypeError
        If ``cpu``, ``bus`` or ``irq`` is of the wrong type or ``mac`` is not bytes.
    ValueError
        For a misaligned ``base``, a ``mac`` that is not 6 bytes, an unsupported
        ``buffer_ram``, a ``ladrf`` wider than 64 bits or an ``irq_level`` below 1.
    """

    def __init__(self, cpu: CPU, bus: Bus, base: int, *, irq: IrqLine,
                 mac: bytes | None = None, buffer_ram: int = BUFFER_RAM_SIZE_DEFAULT,
                 mode: Mode = Mode(0), ladrf: int = 0,
                 on_frame: Callable[[bytes], Any] | None = None, irq_level: int = 1,
                 name: str = "le0"):
        if not isinstance(cpu, CPU):
            raise TypeError(f"cpu must be a sim.cpu.CPU, not {cpu!r}")
        if not isinstance(bus, Bus):
            raise TypeError(f"bus must be a sim.bus.Bus, not {bus!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        if not isinstance(base, int) or isinstance(base, bool) or base < 0 or base & 3:
            raise ValueError(f"base must be a word-aligned address >= 0, not {base!r}")
        if mac is not None:
            if not isinstance(mac, (bytes, bytearray)):
                raise TypeError(f"mac must be 6 bytes, not {mac!r}")
            if len(mac) != 6:
                raise ValueError(f"mac must be 6 bytes, not {len(mac)}: {bytes(mac)!r}")
            mac = bytes(mac)
        if on_frame is not None and not callable(on_frame):
            raise TypeError(f"on_frame must be callable, not {on_frame!r}")
        if not isinstance(irq_level, int) or isinstance(irq_level, bool) or irq_level < 1:
            raise ValueError(f"irq_level must be an integer >= 1, not {irq_level!r}")
        self.layout = BufferLayout(buffer_ram)   # raises ValueError for a bad size
        lay = self.layout
        # The two words that hand each receive descriptor back (they never change).
        self._rx_give = [self._rx_give_words(lay, i) for i in range(lay.rings.rx)]
        self.layout.init(mac or bytes(6), Mode(mode), ladrf)   # validates mode and ladrf now
        self.cpu = cpu
        self.bus = bus
        self.base = base
        self.irq = irq
        self.mac = mac
        self.mode = Mode(mode)
        self.ladrf = ladrf
        self.on_frame = on_frame
        self.irq_level = irq_level
        self.name = name
        #: A fused ILP program (:mod:`sw.libos.ilp.inloop`, rule ``PMAD_PIO_IN``) the receive
        #: copy runs over every frame it copies out (None: a plain copy). The kernel installs
        #: it (:meth:`sw.exokernel.aegis.Aegis.install_rx_pipes`).
        self.rx_program = None
        #: Likewise for the transmit copy (rule ``PMAD_PIO``): it completes the checksum of
        #: the frames that ask (:meth:`send`'s ``sum_at``).
        self.tx_program = None
        self.stats = LanceStats()
        k = cpu.kernel
        self.kernel = k
        self.started = False
        self._attached = False
        self._idon = Event(k, f"{name}.idon")
        self._tx_space = Event(k, f"{name}.txspace")
        self._tx_idle = Event(k, f"{name}.txidle")
        self._tx_idle.set()
        self._rxq: Queue = Queue(k, name=f"{name}.rx")
        rings = self.layout.rings
        # Host memory the copy loops read frames from and write frames to (module docstring).
        self._tx_host = cpu.region(f"{name}.tx-host", rings.tx * BUFFER_SIZE)
        self._rx_host = cpu.region(f"{name}.rx-host", rings.rx * BUFFER_SIZE)
        self._rx_next = 0
        self._tx_next = 0            # next slot send() allocates
        self._tx_dirty = 0           # next slot to reclaim
        self._tx_pending = 0         # slots allocated and not yet reclaimed
        self._tx_handed = [False] * rings.tx   # slot's descriptor given to the card (OWN set)
        self._tx_len = [0] * rings.tx

    # -- addresses --------------------------------------------------------------------------
    def _ram(self, lance_addr: int) -> int:
        """CPU address of buffer-SRAM (LANCE) address ``lance_addr``."""
        return self.base + RAM_OFFSET + lance_addr

    @property
    def rings(self):
        """The ring sizes in use (:class:`hw.lance.registers.RingSizes`)."""
        return self.layout.rings

    # -- register access (each a charged bus access) ---------------------------------------
    async def _write_csr(self, csr: Csr, value: int) -> None:
        await self.cpu.store(self.bus, self.base + RAP_OFFSET, int(csr))
        await self.cpu.store(self.bus, self.base + RDP_OFFSET, value)

    async def read_rom_mac(self) -> bytes:
        """The station address from the card's ROM (six charged reads).

        Byte ``i`` sits at byte offset ``ROM_ESAR_OFFSET + ROM_ESAR_STRIDE * i`` of the ROM;
        the bus is word wide, so the driver reads the word holding it and picks its lane.
        """
        out = bytearray()
        for i in range(6):
            off = ROM_OFFSET + ROM_ESAR_OFFSET + ROM_ESAR_STRIDE * i
            word = await self.cpu.load(self.bus, self.base + (off & ~3))
            out.append((word >> (8 * (off & 3))) & 0xFF)
        return bytes(out)

    # -- bring-up ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Stop the card, lay out the rings, program CSR1-3 and start it with INIT|STRT|INEA.

        Returns once the card has reported IDON (through the interrupt handler).

        Raises
        ------
        LanceError
            If the card does not set IDON within 1 ms of simulated time.
        RuntimeError
            If the driver was already started.
        """
        if self.started:
            raise RuntimeError(f"{self.name}: already started")
        cpu, bus, lay = self.cpu, self.bus, self.layout
        await self._write_csr(Csr.CSR0, int(CSR0.STOP))
        if self.mac is None:
            self.mac = await self.read_rom_mac()
        init = lay.init(self.mac, self.mode, self.ladrf)
        # The init block and both rings are contiguous (BSD order): one block of stores.
        image = bytearray(init.pack())
        for addr in lay.rx_buffers:
            image += RxDescriptor(addr=addr, flags=RMD1.OWN, size=_rx_size(lay)).pack()
        for addr in lay.tx_buffers:
            image += TxDescriptor(addr=addr, flags=TMD1(0), size=1).pack()
        await cpu.store_words(bus, self._ram(lay.init_block), _words(bytes(image)))
        csr1, csr2 = csr1_csr2(lay.init_block)
        await self._write_csr(Csr.CSR1, csr1)
        await self._write_csr(Csr.CSR2, csr2)
        await self._write_csr(Csr.CSR3, 0)        # BSWP = 0: the little-endian DECstation
        if not self._attached:
            cpu.attach_irq(self.irq, self._interrupt, self.name, level=self.irq_level,
                           dispatch_cycles=cpu.profile.interrupt_dispatch_cycles)
            self._attached = True
        self._idon.clear()
        await self._write_csr(Csr.CSR0, int(CSR0.INIT | CSR0.STRT | CSR0.INEA))
        idx, _ = await self.kernel.timeout(self._idon, _INIT_TIMEOUT_PS)
        if idx != 0:
            raise LanceError(f"{self.name}: no IDON within 1 ms of INIT (CSR0 never reported "
                             f"initialization done)")
        self.started = True

    # -- transmit ---------------------------------------------------------------------------
    async def send(self, frame: bytes, *, src: Address | None = None,
                   sum_at: tuple[int, int, int] | None = None) -> None:
        """Queue ``frame`` (destination, source, type, data; no FCS) for transmission.

        Waits for a free transmit buffer if the ring is full, copies the frame into it word by
        word (charged), hands the descriptor to the card (OWN) and writes TDMD. Returns when
        the card owns the frame, not when it has left (see :meth:`flush`). ``src`` is where
        the frame lies in host memory (an address or a :class:`sim.cache.Region`), for the
        memory side of the copy; by default the driver's host buffer for the descriptor.
        ``sum_at``: the frame asks the copy loop to complete its Internet checksum
        (:func:`sw.libos.ilp.inloop.sum_request`): the fused program :attr:`tx_program` sums
        the words as they are copied, and the field's word is written again with the checksum.

        Raises
        ------
        TypeError
            If ``frame`` is not bytes-like.
        ValueError
            If ``frame`` is shorter than 14 or longer than 1514 bytes, or asks for its
            checksum with no pipes in the transmit copy.
        RuntimeError
            If the driver has not been started.
        """
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"frame must be bytes, not {type(frame).__name__}")
        frame = bytes(frame)
        if not MIN_SEND <= len(frame) <= MAX_SEND:
            raise ValueError(f"frame of {len(frame)} bytes: a frame without FCS must be "
                             f"{MIN_SEND}..{MAX_SEND} bytes")
        if not self.started:
            raise RuntimeError(f"{self.name}: send() before start()")
        if sum_at is not None and self.tx_program is None:
            raise ValueError(f"{self.name}: a frame asks for its checksum to be completed and "
                             f"no pipes run in the transmit copy")
        ntx = self.rings.tx
        while self._tx_pending >= ntx:
            self.stats.tx_ring_full += 1
            self._tx_space.clear()
            await self._tx_space
        # Claim the slot before any await: concurrent senders get consecutive slots.
        i = self._tx_next
        self._tx_next = (i + 1) % ntx
        self._tx_pending += 1
        self._tx_idle.clear()
        self._tx_len[i] = len(frame)
        self.stats.queued += 1
        lay = self.layout
        if src is None:
            # The stack has just written the frame into this buffer: its lines are cached.
            src = self._tx_host.at(i * BUFFER_SIZE)
            if self.cpu.memory is not None:
                self.cpu.memory.dcache.fill(src, len(frame))
        if sum_at is None:
            await self.cpu.store_words(self.bus, self._ram(lay.tx_buffers[i]), _words(frame),
                                       src=src)
        else:
            await self._store_summed(self._ram(lay.tx_buffers[i]), frame, sum_at, src)
        tmd = TxDescriptor(addr=lay.tx_buffers[i], flags=TMD1.OWN | TMD1.STP | TMD1.ENP,
                           size=len(frame)).encode()
        addr = self._ram(lay.tmd(i))
        # TMD2/TMD3 first, then TMD0/TMD1 carrying OWN: the card never sees a half-written one.
        await self.cpu.store(self.bus, addr + 4, tmd[2] | tmd[3] << 16)
        await self.cpu.store(self.bus, addr, tmd[0] | tmd[1] << 16)
        self._tx_handed[i] = True          # no await since the store: atomic for the handler
        await self.cpu.store(self.bus, self.base + RDP_OFFSET, int(CSR0.TDMD | CSR0.INEA))

    async def _store_summed(self, addr: int, frame: bytes, sum_at, src) -> None:
        """The transmit copy with :attr:`tx_program` fused: the words go to the card as the
        pipes sum them, then the checksum field's word is stored again, completed. The pipes'
        instructions run while the card's posted writes drain (charged only beyond them, as
        the plain copy's own are), the bytes outside the summed piece are subtracted in line,
        the second store is a bus access of its own."""
        cpu, prog = self.cpu, self.tx_program
        filled, out, outside = fill_checksum(prog, frame, sum_at)
        await cpu.store_words(self.bus, addr, _words(out.data), src=src)
        words = -(-len(frame) // 4)
        io = words * cpu.profile.io_pio_write_ps.value / cpu.period
        fused = words * issue_per_word(prog, out.executed) + fini_cycles(prog)
        plain = words * issue_per_word(build([COPY], prog.movement))
        await cpu.charge(overlapped_cycles(fused, io) - overlapped_cycles(plain, io)
                         + adjust_cycles(outside, cpu.profile), CHECKSUM)
        at = sum_at[1] & ~3
        await cpu.store(self.bus, addr + at, _words(filled[at:at + 4])[0])

    async def flush(self) -> None:
        """Wait until every queued frame has been reclaimed (sent or failed)."""
        while self._tx_pending:
            self._tx_idle.clear()
            await self._tx_idle

    @property
    def tx_pending(self) -> int:
        """Transmit slots in use (queued, not yet reclaimed)."""
        return self._tx_pending

    # -- receive ----------------------------------------------------------------------------
    async def recv(self) -> bytes:
        """Await the next received frame (FCS stripped).

        Raises
        ------
        RuntimeError
            If frames go to an ``on_frame`` callback instead (recv would wait forever).
        """
        if self.on_frame is not None:
            raise RuntimeError(f"{self.name}: frames go to on_frame; recv() would wait forever")
        return await self._rxq.get()

    def pending(self) -> int:
        """Received frames waiting for :meth:`recv`."""
        return len(self._rxq)

    # -- the interrupt ----------------------------------------------------------------------
    async def _interrupt(self) -> None:
        """The card's interrupt handler: acknowledge, then service both rings."""
        self.stats.interrupts += 1
        # RAP stays at CSR0 once the card is started (start() leaves it there).
        csr0 = await self.cpu.load(self.bus, self.base + RDP_OFFSET) & 0xFFFF
        causes = csr0 & _W1C
        # Acknowledge first (as am7990.c does): what happens while the rings are serviced
        # raises the line again instead of being lost.
        await self.cpu.store(self.bus, self.base + RDP_OFFSET, causes | _C0.INEA)
        if causes & _C0.IDON:
            self._idon.set()
        if causes & _C0.BABL:
            self.stats.babble += 1
        if causes & _C0.MERR:
            self.stats.memory_errors += 1
            log.warning("%s: memory error (CSR0 %#06x)", self.name, csr0)
        if causes & _C0.MISS:
            await self._count_missed()
        if causes & _C0.RINT:
            await self._service_rx()
        if causes & _C0.TINT:
            await self._service_tx()

    async def _count_missed(self) -> None:
        addr = self.base + _MISSED_COUNTER
        # MISS was acknowledged first, so a frame missed from here on sets it again and is
        # either in this reading or in the next interrupt's: the counter is never double
        # counted (a miss between the read and the clear is lost, a one-access window).
        n = await self.cpu.load(self.bus, addr) & 0xFFFF
        await self.cpu.store(self.bus, addr, 0)     # writing a counter word clears it
        self.stats.missed += n

    async def _service_tx(self) -> None:
        cpu, bus, lay, st = self.cpu, self.bus, self.layout, self.stats
        ntx = self.rings.tx
        reclaimed = 0
        while self._tx_pending:
            i = self._tx_dirty
            if not self._tx_handed[i]:
                break                     # claimed by a sender that is still copying
            addr = self._ram(lay.tmd(i))
            tmd1 = (await cpu.load(bus, addr) >> 16) & 0xFF00
            if tmd1 & _T1.OWN:
                break
            if tmd1 & _T1.ERR:
                tmd3 = TMD3((await cpu.load(bus, addr + 4) >> 16) & 0xDC00)
                st.tx_errors += 1
                for bit, counter in _TX_ERRORS:
                    if tmd3 & bit:
                        setattr(st, counter, getattr(st, counter) + 1)
                log.debug("%s: transmit error TMD3 %r on slot %d", self.name, tmd3, i)
            else:
                st.sent += 1
                st.bytes_sent += self._tx_len[i]
            if tmd1 & _T1.ONE:
                st.tx_one_collision += 1
            if tmd1 & _T1.MORE:
                st.tx_more_collisions += 1
            if tmd1 & _T1.DEF:
                st.tx_deferred += 1
            self._tx_handed[i] = False
            self._tx_dirty = (i + 1) % ntx
            self._tx_pending -= 1
            reclaimed += 1
        if reclaimed:
            self._tx_space.set()
        if not self._tx_pending:
            self._tx_idle.set()

    async def _service_rx(self) -> None:
        cpu, bus, lay, st = self.cpu, self.bus, self.layout, self.stats
        nrx = self.rings.rx
        while True:
            # Find a whole frame (STP .. ENP) the card has handed back; consume nothing until
            # all of its descriptors are ours (the card writes them back one by one).
            descs: list[tuple[int, int, int]] = []       # (index, RMD1 flags, mcnt)
            i = self._rx_next
            error = False
            while True:
                addr = self._ram(lay.rmd(i))
                w0 = await cpu.load(bus, addr)
                flags = (w0 >> 16) & 0xFF00
                if flags & _R1.OWN:
                    return                 # nothing (more) for us yet
                mcnt = 0
                if flags & _R1.ENP:
                    mcnt = (await cpu.load(bus, addr + 4) >> 16) & 0x0FFF
                descs.append((i, flags, mcnt))
                if flags & _R1.ERR:
                    error = True
                if flags & (_R1.ENP | _R1.ERR) or len(descs) >= nrx:
                    break
                i = (i + 1) % nrx
            frame = b""
            if (error or not descs[0][1] & _R1.STP or not descs[-1][1] & _R1.ENP
                    or descs[-1][2] < MIN_SEND + FCS_BYTES):
                st.rx_errors += 1
                log.debug("%s: receive error %r", self.name, [RMD1(d[1]) for d in descs])
            else:
                frame = await self._copy_out(descs)
                if self.rx_program is not None:
                    # The pipes ran in the copy loop: their instructions join its cost.
                    frame, cycles = run_in_copy(self.rx_program, frame)
                    await cpu.charge(cycles, CHECKSUM)
            for idx, _, _ in descs:
                await self._give_rx(idx)
            self._rx_next = (descs[-1][0] + 1) % nrx
            if frame:
                st.received += 1
                st.bytes_received += len(frame)
                await self._deliver(frame)

    async def _copy_out(self, descs: list[tuple[int, int, int]]) -> bytes:
        lay = self.layout
        size = _rx_size(lay)
        total = descs[-1][2] - FCS_BYTES            # MCNT counts the FCS; we do not copy it
        out = bytearray()
        for idx, _, _ in descs:
            n = min(size, total - len(out))
            if n <= 0:
                break
            words = await self.cpu.load_words(self.bus, self._ram(lay.rx_buffers[idx]),
                                              (n + 3) // 4,
                                              dst=self._rx_host.at(idx * BUFFER_SIZE))
            out += struct.pack(f"<{len(words)}I", *words)[:n]
        return bytes(out)

    @staticmethod
    def _rx_give_words(lay: BufferLayout, i: int) -> tuple[int, int]:
        rmd = RxDescriptor(addr=lay.rx_buffers[i], flags=RMD1.OWN, size=_rx_size(lay)).encode()
        return rmd[0] | rmd[1] << 16, rmd[2] | rmd[3] << 16

    async def _give_rx(self, i: int) -> None:
        """Hand receive descriptor ``i`` back to the card (RMD2/3 first, OWN last)."""
        w01, w23 = self._rx_give[i]
        addr = self._ram(self.layout.rmd(i))
        await self.cpu.store(self.bus, addr + 4, w23)
        await self.cpu.store(self.bus, addr, w01)

    async def _deliver(self, frame: bytes) -> None:
        if self.on_frame is None:
            self._rxq.put_nowait(frame)
            return
        r = self.on_frame(frame)
        if inspect.isawaitable(r):
            await r

    def __repr__(self) -> str:
        return f"<LanceDriver {self.name} at {self.base:#x}>"


class LanceNetDevice:
    """A started :class:`LanceDriver` as a network interface for a TCP/IP stack
    (:class:`sw.libos.net.ether.NetDevice`, plus :meth:`attach`).

    A frame may be a :class:`sw.libos.net.gather.Gather` (data left in host memory, issue 16):
    the card has no DMA, so the CPU copies every byte into its buffer memory by programmed
    I/O, the referenced bytes as well. The copy is charged as for any frame (the driver's
    word loop); the document bytes it read (:attr:`Gather.doc_bytes`) are recorded as
    touched on ``doc_touch``. The kernel's driver reads them through unmapped kernel space
    (the R3000's kseg0), so no page is mapped for it.

    Parameters
    ----------
    driver : LanceDriver
    read : callable(addr, n) -> bytes, optional
        Main memory's untimed read (``memory.read``), for frames with references.
    doc_touch : sw.doc_touch.DocTouch, optional
        The host's counters.

    Raises
    ------
    RuntimeError
        If the driver has not been started (its MAC is not known yet).
    TypeError
        For a ``read`` that is not callable.
    """

    #: The CPU copies every frame into the card (programmed I/O): data a frame sends must be
    #: current in the CPU's view (a file cache invalidates its DMA-read blocks for it).
    cpu_copies = True
    #: The data-movement rule of the receive copy, which ILP pipes can be fused with
    #: (:meth:`install_rx_pipes`).
    ilp_rx_rule = PMAD_PIO_IN
    #: The data-movement rule of the transmit copy (:meth:`install_tx_pipes`).
    ilp_tx_rule = PMAD_PIO

    def __init__(self, driver: LanceDriver, *, read: Callable[[int, int], bytes] | None = None,
                 doc_touch=None):
        if not driver.started or driver.mac is None:
            raise RuntimeError(f"{driver.name}: start the driver before making an interface of it")
        if read is not None and not callable(read):
            raise TypeError(f"read must be callable(addr, n) or None, not {read!r}")
        self.driver = driver
        self.mac = driver.mac
        self.read = read
        self.doc_touch = doc_touch

    async def send(self, frame) -> None:
        """Send ``frame`` (bytes or a Gather; no FCS), padded to the 60-byte minimum.

        Raises
        ------
        ValueError
            For a gather list with references and no memory to read them from.
        """
        sum_at = sum_request(frame)
        if isinstance(frame, Gather):
            if frame.refs and self.read is None:
                raise ValueError(f"{self.driver.name}: a frame with memory references and no "
                                 f"memory to copy them from (LanceNetDevice(read=...))")
            data = frame.flatten(self.read)
            if frame.doc_bytes and self.doc_touch is not None:
                self.doc_touch.touched(frame.doc_bytes)
            frame = data
        if len(frame) < 60:
            frame = bytes(frame) + bytes(60 - len(frame))
        if sum_at is None:
            await self.driver.send(frame)
        else:
            await self.driver.send(frame, sum_at=sum_at)

    def attach(self, fn: Callable[[bytes], Any]) -> None:
        """Pass every received frame (no FCS) to ``fn`` (plain or async)."""
        self.driver.on_frame = fn

    def install_rx_pipes(self, pipes) -> None:
        """Fuse ``pipes`` (ILP pipes that only observe; PipeError otherwise) with the receive
        copy: compiled with :attr:`ilp_rx_rule` (:func:`sw.libos.ilp.inloop.observing_program`)
        and run over every frame the driver copies out of the card, which is then an
        :class:`sw.libos.ilp.inloop.IlpFrame`."""
        self.driver.rx_program = observing_program(pipes, self.ilp_rx_rule)

    def install_tx_pipes(self, pipes) -> None:
        """Fuse ``pipes`` (observers, with ``cksum``; PipeError otherwise) with the transmit
        copy (rule :attr:`ilp_tx_rule`): a frame marked by
        :func:`sw.libos.ilp.inloop.mark_sum_at` has its checksum completed as the driver copies
        it into the card."""
        self.driver.tx_program = observing_program(pipes, self.ilp_tx_rule)

    @property
    def receiver(self) -> Callable[[bytes], Any] | None:
        """What :meth:`attach` was given (None: nobody takes the frames yet), so a kernel
        binding the interface can refuse one an application already took."""
        return self.driver.on_frame

    def __repr__(self) -> str:
        return f"<LanceNetDevice {self.driver.name}>"


def _rx_size(lay: BufferLayout) -> int:
    """Receive buffer size: the whole BSD buffer (1520 bytes, a maximal frame with FCS fits)."""
    return BUFFER_SIZE


def _words(data: bytes) -> list[int]:
    """``data`` as little-endian 32-bit words, the last one zero-padded."""
    if len(data) % 4:
        data = data + bytes(4 - len(data) % 4)
    return list(struct.unpack(f"<{len(data) // 4}I", data))
