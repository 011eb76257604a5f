"""The disk controller's transaction-level model: the RTL's registers and cycle timing, in Python.

Semantics and timing: :mod:`hw.disk.registers` (read its docstring first). The model never
wakes per clock cycle. A command runs as one kernel task (the *engine*) that sleeps from one
event of the command to the next: the drive's service time comes from
:class:`hw.disk.mechanism.Drive`, DMA bursts go through :meth:`sim.memory.Memory.dma_write` /
:meth:`~sim.memory.Memory.dma_read`, and a Write's sectors are persisted into the
:class:`hw.disk.image.DiskImage` one by one at the edge at which each is committed, so a
simulation stopped mid-transfer (:meth:`DiskControllerModel.stop`) leaves each sector wholly
old or wholly new.

Bus accesses (:class:`sim.bus.RegisterPort`) follow :class:`hw.bus.HostBus` to the picosecond,
with :data:`~hw.disk.registers.BUS_WAIT_CYCLES` wait states: a request made at ``t`` is first
sampled at the edge ``e0`` strictly after ``t``, takes effect at ``e = e0 + BUS_WAIT_CYCLES``
cycles and completes one cycle later. Concurrent requests are served one at a time in
arrival order. A read returns the registers as they were just before ``e``: every register
the engine changes remembers its previous value and the time of the change, so an engine event
and a bus access on the same edge give the RTL's result whichever the kernel runs first.

DMA timing matches the RTL when the controller is the only DMA master and the memory's burst
times are the 3MIN's (:mod:`sim.platforms.decstation`: 68 / 66 cycles of 80 ns for a 64-word
read / write): a burst whose memory transfer is delayed by another master ends at the first
edge after the memory finishes, so the model then runs late, as a real bus master would.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sim.bus import IrqLine, RegisterPort, RegisterTarget
from sim.kernel import Kernel
from sim.memory import Memory, MemoryAccessError, MemoryBoundsError
from sim.time import Clock

from .image import DiskImage
from .mechanism import Breakdown, DiskMechanism, DiskParams, Drive, Op, Request
from .registers import (BLOCK_DONE_CYCLES, BUS_WAIT_CYCLES, DECODE_CYCLES, DMA_BURST_WORDS,
                        DMA_ERR_CYCLES, DMA_READ_BURST_CYCLES, DMA_SETUP_CYCLES,
                        DMA_WRITE_BURST_CYCLES, IRQ_LATENCY_CYCLES, WINDOW_SIZE, Command,
                        Error, Irq, Reg, Status, bursts_per_block)

__all__ = ["DiskControllerModel", "CommandRecord"]

log = logging.getLogger(__name__)

_MASK = 0xFFFF_FFFF


@dataclass
class CommandRecord:
    """What an accepted Read or Write did, for tests and reports (times in ps).

    Attributes
    ----------
    command : Command
    lbn, count, dma_addr : int
    accepted_ps : int
        The COMMAND write's edge ``e``.
    issue_ps : int
        When the request was handed to the drive.
    drive_done_ps : int
        When the drive reported completion.
    done_ps : int or None
        The edge at which STATUS.Done was set (None while running or if abandoned).
    breakdown : Breakdown
        The drive's account of its service time.
    """

    command: Command
    lbn: int
    count: int
    dma_addr: int
    accepted_ps: int
    issue_ps: int = 0
    drive_done_ps: int = 0
    done_ps: int | None = None
    breakdown: Breakdown | None = None

    @property
    def drive_ps(self) -> int:
        """The drive's service time (issue to drive completion), ps."""
        return self.drive_done_ps - self.issue_ps

    @property
    def service_ps(self) -> int:
        """From the command's edge to STATUS.Done, ps (None until done)."""
        return None if self.done_ps is None else self.done_ps - self.accepted_ps


class _SectorTimes(DiskMechanism):
    """The mechanism, also noting when each sector of a write leaves the head.

    :meth:`DiskMechanism.service` reports only a request's completion; the model needs each
    written sector's media time to persist it then. This hooks the mechanism's per-sector step
    (writes only: read-ahead and reads pass ``write=False``). If the hook ever sees something
    else than one step per sector, :meth:`DiskControllerModel._submit_write` falls back to
    an exact but quadratic method.
    """

    def __init__(self, params: DiskParams | None = None) -> None:
        super().__init__(params)
        self.log: list[int] | None = None

    def _step(self, lbn, t, cylinder, surface, write, ready=0):  # noqa: D401 - a hook
        s = super()._step(lbn, t, cylinder, surface, write, ready)
        if write and self.log is not None:
            self.log.append(s.end)
        return s


class _Abandoned(Exception):
    """The running command was abandoned (Reset or power cut)."""


class _Reg:
    """A register value that remembers its previous value and when it changed."""

    __slots__ = ("value", "prev", "at")

    def __init__(self, value: int = 0) -> None:
        self.value = self.prev = value
        self.at = -1

    def set(self, value: int, now: int) -> None:
        if value == self.value:
            return
        if self.at != now:
            self.prev = self.value
        self.value, self.at = value, now

    def before(self, edge: int) -> int:
        """The value just before ``edge`` (current time is ``edge``)."""
        return self.prev if self.at == edge else self.value


class DiskControllerModel(RegisterTarget):
    """Transaction-level model of the disk controller; a :class:`sim.bus.BusTarget`.

    Parameters
    ----------
    kernel : Kernel
        The kernel whose time the model lives in.
    clock : Clock
        The controller's clock (12.5 MHz, :data:`hw.disk.registers.CLOCK_PERIOD_PS`).
    memory : Memory
        Host memory, reached by DMA.
    image : DiskImage
        The media. CAPACITY is its block count (at most the drive's), BLOCK_SIZE its block size.
    irq : IrqLine
        The line the model drives (``IRQ_CAUSE & IRQ_ENABLE``).
    params : DiskParams, optional
        The drive's parameters; default the DEC RZ26.

    Raises
    ------
    TypeError
        If an argument is of the wrong type.
    ValueError
        If the image is larger than the drive or its block size is not a multiple of a DMA
        burst (256 bytes).
    """

    def __init__(self, kernel: Kernel, clock: Clock, *, memory: Memory, image: DiskImage,
                 irq: IrqLine, params: DiskParams | None = None) -> None:
        # The bus side first: it checks kernel and clock.
        self.port = RegisterPort(kernel, clock, name="disk controller", tag="disk",
                                 window_size=WINDOW_SIZE, wait_cycles=BUS_WAIT_CYCLES,
                                 peek=self._peek, poke=self._poke)
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a sim.memory.Memory, not {memory!r}")
        if not isinstance(image, DiskImage):
            raise TypeError(f"image must be a hw.disk.image.DiskImage, not {image!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        if params is not None and not isinstance(params, DiskParams):
            raise TypeError(f"params must be a hw.disk.mechanism.DiskParams, not {params!r}")
        self.kernel = kernel
        self.clock = clock
        self.memory = memory
        self.image = image
        self.irq = irq
        self.drive = Drive(params)
        self.drive.mechanism = _SectorTimes(self.drive.mechanism.params)
        self._bursts = bursts_per_block(image.block_size)
        if image.block_count > self.drive.mechanism.geometry.blocks:
            raise ValueError(f"image of {image.block_count} blocks is larger than the drive "
                             f"({self.drive.mechanism.geometry.blocks} blocks)")
        self._p = clock.period
        self.capacity = image.block_count
        self.block_size = image.block_size
        # Registers.
        self.command = _Reg()
        self.lbn = _Reg()
        self.count = _Reg()
        self.dma_addr = _Reg()
        self.status = _Reg()
        self.error = _Reg()
        self.cause = _Reg()
        self.enable = _Reg()
        self._cause_set_at = {int(b): -1 for b in Irq}
        # Engine and bus.
        self._gen = 0                # bumped to abandon the running command
        self._rejected_at = -1       # edge of the last rejected command
        self.history: list[CommandRecord] = []
        self.sectors_written = 0

    # -- BusTarget -------------------------------------------------------------------------
    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Cut the power: abandon any command at once; nothing more reaches media or memory.

        Sectors already persisted stay (each wholly written); the sector in flight and those
        after it keep their old contents. Later bus accesses raise :class:`RuntimeError`.
        """
        self.port.stop()
        self._gen += 1
        self.irq.drive(0)

    @property
    def busy(self) -> bool:
        """STATUS.Busy now."""
        return bool(self.status.value & Status.Busy)

    @property
    def last(self) -> CommandRecord | None:
        """The last accepted Read or Write."""
        return self.history[-1] if self.history else None

    # -- bus internals -----------------------------------------------------------------------
    def _peek(self, offset: int, e: int) -> int:
        if offset == Reg.Command:
            return self.command.before(e)
        if offset == Reg.Lbn:
            return self.lbn.before(e)
        if offset == Reg.Count:
            return self.count.before(e)
        if offset == Reg.DmaAddr:
            return self.dma_addr.before(e)
        if offset == Reg.Status:
            return self.status.before(e)
        if offset == Reg.Error:
            return self.error.before(e)
        if offset == Reg.IrqCause:
            return self.cause.before(e)
        if offset == Reg.IrqEnable:
            return self.enable.before(e)
        if offset == Reg.Capacity:
            return self.capacity
        if offset == Reg.BlockSize:
            return self.block_size
        return 0

    def _poke(self, offset: int, value: int, e: int) -> None:
        if offset == Reg.Command:
            self.command.set(value, e)
            self._command(value, e)
        elif offset == Reg.Lbn:
            self.lbn.set(value, e)
        elif offset == Reg.Count:
            self.count.set(value, e)
        elif offset == Reg.DmaAddr:
            self.dma_addr.set(value & ~3 & _MASK, e)
        elif offset == Reg.IrqCause:
            # Write 1 to clear, except a cause the controller sets on this same edge.
            keep = 0
            for b, at in self._cause_set_at.items():
                if at == e:
                    keep |= b
            self.cause.set(self.cause.value & ~(value & ~keep), e)
            self._update_irq()
        elif offset == Reg.IrqEnable:
            self.enable.set(value & int(Irq.Done | Irq.Error), e)
            self._update_irq()
        # Status, Error, Capacity, BlockSize and unmapped offsets: ignored.

    # -- register effects ----------------------------------------------------------------------
    def _raise(self, bits: Irq, now: int) -> None:
        for b in Irq:
            if bits & b:
                self._cause_set_at[int(b)] = now
        self.cause.set(self.cause.value | int(bits), now)
        self._update_irq()

    def _update_irq(self) -> None:
        if not self.port.stopped:
            self.irq.drive(self.cause.value & self.enable.value)

    def _reject(self, code: Error, e: int) -> None:
        log.debug("disk command rejected at %d ps: %s", e, code.name)
        self._rejected_at = e
        self.error.set(int(code), e)
        self.status.set(self.status.value | Status.Error, e)
        self._raise(Irq.Error, e)

    def _command(self, code: int, e: int) -> None:
        """Validate and start the command written at edge ``e`` (registers as before ``e``)."""
        busy = self.status.before(e) & Status.Busy
        if code == Command.Reset:
            self._gen += 1
            self.status.set(0, e)
            self.error.set(0, e)
            self.cause.set(0, e)
            self._update_irq()
            return
        if busy:
            self._reject(Error.Busy, e)
            return
        if code not in {int(c) for c in Command}:
            self._reject(Error.BadCommand, e)
            return
        cmd = Command(code)
        lbn, count, addr = self.lbn.before(e), self.count.before(e), self.dma_addr.before(e)
        if cmd in (Command.Read, Command.Write):
            if count == 0:
                self._reject(Error.ZeroLength, e)
                return
            if lbn + count > self.capacity:
                self._reject(Error.OutOfRange, e)
                return
            if addr + count * self.block_size > self.memory.size:
                self._reject(Error.DmaFault, e)
                return
        self.error.set(int(Error.None_), e)
        self.status.set(int(Status.Busy), e)
        if cmd is Command.Inquire:
            coro = self._run_inquire(self._gen, e)
        else:
            rec = CommandRecord(cmd, lbn, count, addr, e)
            self.history.append(rec)
            run = self._run_read if cmd is Command.Read else self._run_write
            coro = run(self._gen, rec)
        self.kernel.spawn(self._engine(coro), name=f"disk.{cmd.name.lower()}")

    def _finish(self, now: int, error: Error = Error.None_) -> None:
        if self._rejected_at == now:
            # A command rejected on this very edge: its ERROR and STATUS.Error stand.
            self.status.set(int(Status.Done | Status.Error), now)
        else:
            self.error.set(int(error), now)
            self.status.set(int(Status.Done) | (int(Status.Error) if error else 0), now)
        self._raise(Irq.Done | (Irq.Error if error else Irq(0)), now)

    # -- the engine ------------------------------------------------------------------------------
    def _edge(self, t: int) -> int:
        """The rounding rule: the first controller edge at or after ``t``."""
        return self.clock.edge_at_or_after(t)

    async def _engine(self, coro) -> None:
        """Run one command's coroutine; an abandoned command just stops."""
        try:
            await coro
        except _Abandoned:
            log.debug("disk command abandoned at %d ps", self.kernel.now)

    async def _until(self, gen: int, t: int) -> None:
        """Sleep to ``t`` (a hardware event: late); raise if the command was abandoned meanwhile."""
        await self.kernel.sleep_until(t, late=True)
        if gen != self._gen:
            raise _Abandoned()

    async def _run_inquire(self, gen: int, e: int) -> None:
        await self._until(gen, e + (DECODE_CYCLES + IRQ_LATENCY_CYCLES) * self._p)
        self._finish(self.kernel.now)

    async def _burst(self, gen: int, addr: int, data: bytes | None, write_memory: bool) -> bytes | None:
        """One DMA burst from the current edge; returns the bytes read (disk Write)."""
        p = self._p
        start = self.kernel.now
        await self._until(gen, start + DMA_SETUP_CYCLES * p)
        nbytes = 4 * DMA_BURST_WORDS
        try:
            if write_memory:
                await self.memory.dma_write(addr, data)
                out = None
                end = start + (DMA_SETUP_CYCLES + DMA_WRITE_BURST_CYCLES) * p
            else:
                out = await self.memory.dma_read(addr, nbytes)
                end = start + (DMA_SETUP_CYCLES + DMA_READ_BURST_CYCLES) * p
        except (MemoryAccessError, MemoryBoundsError):
            # Refused now, before any time passed; the memory says so with the bus's err,
            # which the controller samples DMA_ERR_CYCLES after the request.
            await self._until(gen, self.kernel.now + DMA_ERR_CYCLES * p)
            raise
        t = max(end, self._edge(self.kernel.now))
        if t != self.kernel.now:
            await self._until(gen, t)   # the memory was late: wait for the next edge
        elif gen != self._gen:
            raise _Abandoned()
        return out

    async def _run_read(self, gen: int, rec: CommandRecord) -> None:
        p, k, bs = self._p, self.kernel, self.block_size
        try:
            rec.issue_ps = rec.accepted_ps + DECODE_CYCLES * p
            await self._until(gen, rec.issue_ps)
            data = self.image.read(rec.lbn, rec.count)
            rec.drive_done_ps, rec.breakdown = self.drive.submit(Request(Op.Read, rec.lbn, rec.count),
                                                                 rec.issue_ps)
            await self._until(gen, self._edge(rec.drive_done_ps))
            burst = 4 * DMA_BURST_WORDS
            for i in range(rec.count):
                for b in range(self._bursts):
                    off = i * bs + b * burst
                    await self._burst(gen, rec.dma_addr + off, data[off:off + burst], True)
                await self._until(gen, k.now + BLOCK_DONE_CYCLES * p)
            await self._until(gen, k.now + IRQ_LATENCY_CYCLES * p)
            rec.done_ps = k.now
            self._finish(k.now)
        except (MemoryAccessError, MemoryBoundsError) as exc:
            log.debug("disk read DMA fault: %s", exc)
            await self._until(gen, k.now + IRQ_LATENCY_CYCLES * p)
            self._finish(k.now, Error.DmaFault)

    def _submit_write(self, rec: CommandRecord) -> list[int]:
        """Hand a Write to the drive at ``rec.issue_ps``; the media time of each sector."""
        mech = self.drive.mechanism
        state = self.drive.state
        mech.log = []
        try:
            rec.drive_done_ps, rec.breakdown = self.drive.submit(
                Request(Op.Write, rec.lbn, rec.count), rec.issue_ps)
            times = mech.log
        finally:
            mech.log = None
        if len(times) == rec.count:
            return times
        # Fallback: writing the first j + 1 sectors from the same state and time walks exactly
        # the first j + 1 steps of the whole write, so sector j ends at that prefix request's
        # completion less the drive's write-completion overhead.
        wc = mech.params.overheads.write_completion
        return [mech.service(Request(Op.Write, rec.lbn, j + 1), state, rec.issue_ps)[0] - wc
                for j in range(rec.count)]

    async def _run_write(self, gen: int, rec: CommandRecord) -> None:
        p, k, bs = self._p, self.kernel, self.block_size
        try:
            await self._until(gen, rec.accepted_ps + DECODE_CYCLES * p)
            buf = bytearray()
            burst = 4 * DMA_BURST_WORDS
            for i in range(rec.count):
                for b in range(self._bursts):
                    buf += await self._burst(gen, rec.dma_addr + i * bs + b * burst, None, False)
                await self._until(gen, k.now + BLOCK_DONE_CYCLES * p)
        except (MemoryAccessError, MemoryBoundsError) as exc:
            log.debug("disk write DMA fault: %s", exc)
            await self._until(gen, k.now + IRQ_LATENCY_CYCLES * p)
            self._finish(k.now, Error.DmaFault)
            return
        rec.issue_ps = k.now
        for j, m in enumerate(self._submit_write(rec)):
            await self._until(gen, self._edge(m))
            self.image.write(rec.lbn + j, bytes(buf[j * bs:(j + 1) * bs]))
            self.sectors_written += 1
        await self._until(gen, self._edge(rec.drive_done_ps) + IRQ_LATENCY_CYCLES * p)
        rec.done_ps = k.now
        self._finish(k.now)

    def __repr__(self) -> str:
        return (f"<DiskControllerModel status={Status(self.status.value)!r} "
                f"error={Error(self.error.value).name} capacity={self.capacity}>")
