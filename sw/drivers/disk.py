"""The driver of the SCSI-style disk controller (:mod:`hw.disk.registers`).

One request at a time, as a simple BSD ``sd`` strategy routine without tagged queueing:

* :meth:`DiskDriver.read` / :meth:`DiskDriver.write` check their arguments (clear
  :class:`ValueError` / :class:`TypeError` naming the bad value), program LBN, COUNT and
  DMA_ADDR, write COMMAND and sleep until the controller interrupts;
* the interrupt handler (:meth:`sim.cpu.CPU.attach_irq`, charged the profile's interrupt
  dispatch) reads IRQ_CAUSE, acknowledges it (write-1-to-clear, so the line drops), reads ERROR
  when the cause says Error, and wakes the waiting request;
* a request that the controller rejected or failed raises :class:`DiskError` naming the cause
  (:class:`hw.disk.registers.Error`).

Every register access is a bus access charged to the CPU (:meth:`sim.cpu.CPU.load` /
:meth:`~sim.cpu.CPU.store`, category :data:`sim.cpu.IO_WAIT`); the data itself moves by the
controller's DMA and costs the CPU nothing. The driver imports only the register map from the
hardware floor, so it runs unchanged over the controller's model and its RTL.
"""
from __future__ import annotations

import logging

from hw.disk.registers import Command, Error, Irq, Reg
from sim.bus import Bus, IrqLine
from sim.cpu import CPU
from sim.kernel import Event
from sim.memory import Memory

__all__ = ["DiskDriver", "DiskError", "DiskStats"]

log = logging.getLogger(__name__)

_U32 = 1 << 32


class DiskError(RuntimeError):
    """The controller rejected or failed a request.

    Attributes
    ----------
    code : Error
        The controller's ERROR code.
    """

    def __init__(self, code: Error, what: str) -> None:
        self.code = code
        super().__init__(f"disk {what} failed: {code.name} ({_EXPLAIN.get(code, 'unknown error')})")


_EXPLAIN = {
    Error.OutOfRange: "the blocks run past the end of the disk",
    Error.ZeroLength: "a transfer of zero blocks",
    Error.Busy: "a command was issued while another was running",
    Error.DmaFault: "the buffer is outside host memory or the memory refused the DMA",
    Error.BadCommand: "the controller does not know the command",
}


class DiskStats:
    """The driver's counters."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0
        self.blocks_read = 0
        self.blocks_written = 0
        self.errors = 0
        self.interrupts = 0

    def __repr__(self) -> str:
        return (f"DiskStats(reads={self.reads}, writes={self.writes}, blocks_read={self.blocks_read}, "
                f"blocks_written={self.blocks_written}, errors={self.errors}, "
                f"interrupts={self.interrupts})")


class DiskDriver:
    """A driver instance for one disk controller mapped on ``bus`` at ``base``.

    Parameters
    ----------
    cpu : CPU
        The CPU that runs the driver; register accesses and the interrupt are charged to it.
    bus : Bus
        The bus the controller's register window is mapped on.
    base : int
        The window's base address (word aligned).
    memory : Memory
        Host memory the controller DMAs into and out of (used to check buffers before a
        request is issued).
    irq : IrqLine
        The controller's interrupt line; the handler is attached on first use.
    level : int
        Interrupt priority level (default 1).

    Raises
    ------
    TypeError
        If an argument is of the wrong type.
    ValueError
        If ``base`` is negative or not word aligned.
    """

    def __init__(self, cpu: CPU, bus: Bus, base: int, memory: Memory, irq: IrqLine, *,
                 level: int = 1, name: str = "disk") -> None:
        if not isinstance(cpu, CPU):
            raise TypeError(f"cpu must be a sim.cpu.CPU, not {cpu!r}")
        if not isinstance(bus, Bus):
            raise TypeError(f"bus must be a sim.bus.Bus, not {bus!r}")
        if isinstance(base, bool) or not isinstance(base, int):
            raise TypeError(f"base must be an int, not {base!r}")
        if base < 0 or base & 3:
            raise ValueError(f"base must be a non-negative word-aligned address, not {base:#x}")
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a sim.memory.Memory, not {memory!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        self.cpu = cpu
        self.bus = bus
        self.base = base
        self.memory = memory
        self.irq = irq
        self.level = level
        self.name = name
        self.kernel = cpu.kernel
        self.stats = DiskStats()
        self.block_size: int | None = None
        self.blocks: int | None = None
        self._started = False
        self._lock_busy = False
        self._lock_queue: list[Event] = []
        self._done: Event | None = None

    # -- the interface -----------------------------------------------------------------------
    async def read(self, lbn: int, count: int, addr: int) -> None:
        """Read ``count`` blocks from ``lbn`` into host memory at ``addr`` (returns when done).

        Raises
        ------
        TypeError, ValueError
            For arguments that are not non-negative ints, or a buffer outside memory.
        DiskError
            If the controller rejects or fails the request (its ERROR code).
        """
        await self._transfer(Command.Read, lbn, count, addr)
        self.stats.reads += 1
        self.stats.blocks_read += count

    async def write(self, lbn: int, count: int, addr: int) -> None:
        """Write ``count`` blocks from host memory at ``addr`` to the disk at ``lbn``.

        Returns when the drive reports the data on the media (the RZ26 is write-through).

        Raises
        ------
        TypeError, ValueError, DiskError
            As :meth:`read`.
        """
        await self._transfer(Command.Write, lbn, count, addr)
        self.stats.writes += 1
        self.stats.blocks_written += count

    async def capacity(self) -> int:
        """The disk's size in blocks (also sets :attr:`blocks` and :attr:`block_size`).

        Issues Inquire (the unit-ready handshake), then reads CAPACITY and BLOCK_SIZE.
        """
        await self._acquire()
        try:
            await self._start()
            await self._command(Command.Inquire, "inquire")
            self.blocks = await self._load(Reg.Capacity)
            self.block_size = await self._load(Reg.BlockSize)
        finally:
            self._release()
        return self.blocks

    async def reset(self) -> None:
        """Reset the controller (abandons any command; no interrupt follows)."""
        await self._store(Reg.Command, int(Command.Reset))

    # -- internals ---------------------------------------------------------------------------------
    async def _transfer(self, cmd: Command, lbn: int, count: int, addr: int) -> None:
        what = cmd.name.lower()
        for name, v in (("lbn", lbn), ("count", count), ("addr", addr)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"disk {what}: {name} must be an int, not {v!r}")
            if not 0 <= v < _U32:
                raise ValueError(f"disk {what}: {name} must be in [0, 2**32), not {v!r}")
        if addr & 3:
            raise ValueError(f"disk {what}: buffer address must be word aligned, not {addr:#x}")
        await self._acquire()
        try:
            await self._start()
            if self.block_size is None:
                self.block_size = await self._load(Reg.BlockSize)
            end = addr + count * self.block_size
            if end > self.memory.size:
                raise ValueError(f"disk {what}: buffer {addr:#x} .. {end - 1:#x} of {count} blocks "
                                 f"runs past the end of memory ({self.memory.size:#x} bytes)")
            await self._store(Reg.Lbn, lbn)
            await self._store(Reg.Count, count)
            await self._store(Reg.DmaAddr, addr)
            await self._command(cmd, f"{what} of {count} blocks at {lbn}")
        finally:
            self._release()

    async def _command(self, cmd: Command, what: str) -> None:
        self._done = done = self.kernel.event(f"{self.name}.done")
        await self._store(Reg.Command, int(cmd))
        cause, error = await done
        self._done = None
        if cause & Irq.Error:
            self.stats.errors += 1
            raise DiskError(Error(error) if error in {int(e) for e in Error} else error, what)

    async def _start(self) -> None:
        if self._started:
            return
        self.cpu.attach_irq(self.irq, self._interrupt, self.name, level=self.level,
                            dispatch_cycles=self.cpu.profile.interrupt_dispatch_cycles)
        self._started = True
        await self._store(Reg.IrqEnable, int(Irq.Done | Irq.Error))

    async def _interrupt(self) -> None:
        """Acknowledge the controller's causes and wake the waiting request."""
        self.stats.interrupts += 1
        cause = await self._load(Reg.IrqCause)
        await self._store(Reg.IrqCause, cause)
        error = await self._load(Reg.Error) if cause & Irq.Error else 0
        done = self._done
        if done is None:
            log.warning("%s: interrupt with no request waiting (cause %#x, error %d)",
                        self.name, cause, error)
            return
        # A rejection raises Error alone; a completion raises Done (with Error if it failed).
        if cause & (Irq.Done | Irq.Error):
            done.set((cause, error))

    async def _load(self, reg: Reg) -> int:
        return await self.cpu.load(self.bus, self.base + int(reg))

    async def _store(self, reg: Reg, value: int) -> None:
        await self.cpu.store(self.bus, self.base + int(reg), value)

    async def _acquire(self) -> None:
        if self._lock_busy:
            ev = self.kernel.event(f"{self.name}.turn")
            self._lock_queue.append(ev)
            await ev
        self._lock_busy = True

    def _release(self) -> None:
        if self._lock_queue:
            self._lock_queue.pop(0).set()
        else:
            self._lock_busy = False

    def __repr__(self) -> str:
        return f"<DiskDriver {self.name} at {self.base:#x} {self.stats!r}>"
