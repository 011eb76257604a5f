"""The cost-charging CPU: simulated software pays cycles for what it does.

Software (the exokernel, the library OS, the servers, the Ultrix model) is Python that runs in
zero simulated time; it makes time pass by charging the CPU::

    await cpu.charge(prof.syscall_cycles, SYSCALL)      # a Cost, an int, or a float (rounded up)
    await cpu.copy(1460)                                 # bcopy cost from the platform profile
    status = await cpu.load(bus, LANCE_CSR0)             # MMIO read: the device's wait states

Scheduling semantics
--------------------
* **One thread at a time.** A *thread* is a kernel :class:`~sim.kernel.Task`. The CPU has at
  most one owner. A thread that charges while another owns the CPU waits in FIFO order of
  arrival (deterministic: same-time arrivals are ordered by the kernel's scheduling order).
* **Run until it blocks.** A thread keeps the CPU across consecutive charges for as long as it
  does not await anything else: when a charge ends, the CPU stays with its owner while the
  owner's Python code runs on; the first time the owner awaits anything that is not a CPU
  operation (an event, a sleep, ``k.sleep(0)``, a task) the CPU is released to the next
  waiter. :meth:`CPU.yield_` releases it explicitly. There is no preemption between threads:
  a thread scheduler that wants time slices (the exokernel) or explicit context switches (the
  Ultrix model) builds them on top, charging :data:`CONTEXT_SWITCH` itself. The CPU counts
  owner changes (:attr:`CPU.switches`) and calls an optional ``on_switch(prev, new)`` hook.
* **Interrupts.** :meth:`CPU.attach_irq` attaches a handler to an :class:`~sim.bus.IrqLine` at
  a priority level. When the line is high and its level is above the CPU's current level
  (:meth:`CPU.spl`), the handler is taken at the next *boundary*: the start of a charge, or
  inside a charge at the next multiple of ``irq_quantum`` cycles since the charge began
  (default 1 cycle: the R3000 takes interrupts at instruction boundaries). The quanta cost no
  kernel events unless an interrupt actually arrives, so latency is bounded by one quantum
  without splitting every charge into chunks. A bus access (:meth:`CPU.load`/:meth:`CPU.store`)
  is atomic. If the CPU is idle, the handler runs at once in an interrupt context of its own,
  ahead of any thread waiting for the CPU. Handlers run inline in whatever context was
  interrupted, raise the level to their own while they run (so a line does not interrupt its
  own handler; a higher level can nest), and charge their cycles like any software (e.g.
  under :data:`INTERRUPT`). The line is level-sensitive: while it stays high the handler runs
  again; a handler that returns in zero time with its line still high is an interrupt storm
  and fails the run. Each thread has its own level (saved and restored as it loses and gets
  the CPU, as BSD's spl is); an idle CPU is at level 0.

Memory system
-------------
Copies, checksums and PIO loops that name their buffers (``cpu.copy(n, src=a, dst=b)``,
``cpu.checksum(n, src=a)``, ``store_words(..., src=a)``, ``load_words(..., dst=b)``) and kernel
paths that declare their footprint (:meth:`CPU.path`) go through the machine's caches and write
buffer (:mod:`sim.cache`, when the profile has a memory system): their instruction cycles are
charged to their own category and the cycles the CPU waits for memory (read misses, a full
write buffer, cold code and data) to :data:`MEMORY_STALL`, so the breakdown shows the memory
system's share. Addresses are ints or :class:`~sim.cache.Region` s from :meth:`CPU.region`.
Callers that name no buffer keep the profile's flat per-word rows (``cached=``), unchanged.

Accounting
----------
Busy time is kept in picoseconds per category and per context (thread name, or
``irq:<line>``); idle is elapsed minus busy, so the categories add up to the elapsed time
exactly. :meth:`CPU.report` returns a :class:`CpuReport`. Time a thread spends holding the CPU
while awaiting a non-CPU waitable from inside a handler is not charged (it shows as idle).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from .bus import Bus, IrqLine
from .cache import Address, AddressSpace, MemorySystem, Region, Stall
from .kernel import Cancelled, Event, Kernel, SimulationError, Task
from .platforms.base import Cost, Platform

# -- categories ---------------------------------------------------------------------------
COPY = "copy"                      #: moving data (bcopy, copies to and from a card's buffer)
CHECKSUM = "checksum"              #: Internet checksums
PROTOCOL = "protocol"              #: TCP/IP/HTTP protocol processing
SYSCALL = "syscall"                #: system-call entry and exit
CONTEXT_SWITCH = "context_switch"  #: switching threads, processes or environments
INTERRUPT = "interrupt"            #: interrupt dispatch and handlers
EXCEPTION = "exception"            #: exception dispatch
IO_WAIT = "io_wait"                #: bus wait states of programmed I/O (loads and stores)
DEMUX = "demux"                    #: packet demultiplexing (filters, PCB lookup)
FILESYSTEM = "filesystem"          #: file-system and buffer-cache work
APPLICATION = "application"        #: the application's own work (HTTP server logic, clients)
KERNEL = "kernel"                  #: other kernel work
MBUF = "mbuf"                      #: BSD mbuf and cluster allocation, freeing and chain walks
SOFTINT = "softint"                #: software-interrupt dispatch (BSD's netisr, ipintr)
SOCKET = "socket"                  #: the BSD socket layer (sosend, soreceive, socket buffers)
MEMORY_STALL = "memory_stall"      #: CPU stalls on main memory (cache misses, a full write buffer)
COMPUTE = "compute"                #: anything not otherwise classified (the default)
IDLE = "idle"                      #: no thread on the CPU (reported, never charged)

CATEGORIES: tuple[str, ...] = (COPY, CHECKSUM, PROTOCOL, SYSCALL, CONTEXT_SWITCH, INTERRUPT,
                               EXCEPTION, IO_WAIT, DEMUX, FILESYSTEM, APPLICATION, KERNEL,
                               MBUF, SOFTINT, SOCKET, MEMORY_STALL, COMPUTE, IDLE)

Handler = Callable[[], Awaitable[None]]

#: Default interval of the CPU's stall checks (:class:`CPU` ``watchdog``): 100 ms of simulated
#: time. The checks exist only while a thread waits for the CPU or an interrupt is pending, so
#: a busy machine pays about ten kernel entries per simulated second for them.
WATCHDOG_PS = 100_000_000_000


@dataclass(frozen=True)
class Share:
    """One category's part of a run: picoseconds, CPU cycles and fraction of elapsed time."""

    ps: int
    cycles: float
    fraction: float


@dataclass(frozen=True)
class CpuReport:
    """Where a CPU's time went between ``start`` and ``end``.

    Attributes
    ----------
    name : str
        The CPU's name.
    start, end, elapsed : int
        The accounting interval in picoseconds.
    cycle_ps : int
        The CPU cycle.
    by_category : dict[str, Share]
        Every category charged, plus :data:`IDLE`; the ``ps`` values add up to ``elapsed``
        exactly and the fractions to 1.
    by_context : dict[str, int]
        Busy picoseconds per context (thread name or ``irq:<line>``).
    switches : int
        Owner changes between threads (interrupt contexts not counted).
    interrupts : dict[str, int]
        Handler invocations per interrupt line name.
    """

    name: str
    start: int
    end: int
    elapsed: int
    cycle_ps: int
    by_category: dict[str, Share]
    by_context: dict[str, int]
    switches: int
    interrupts: dict[str, int]

    @property
    def busy_ps(self) -> int:
        return self.elapsed - self.by_category[IDLE].ps

    @property
    def utilization(self) -> float:
        return self.busy_ps / self.elapsed if self.elapsed else 0.0

    def rows(self) -> list[tuple[str, float, float]]:
        """``(category, cycles, fraction)`` rows, largest first, idle last."""
        rows = sorted(((c, s.cycles, s.fraction) for c, s in self.by_category.items() if c != IDLE),
                      key=lambda r: (-r[1], r[0]))
        idle = self.by_category[IDLE]
        return rows + [(IDLE, idle.cycles, idle.fraction)]


@dataclass
class _Irq:
    line: IrqLine
    handler: Handler
    name: str
    level: int
    dispatch_cycles: int
    dispatch_category: str
    taken: int = 0


@dataclass
class _Waiter:
    task: Task
    granted: Event = field(repr=False)


def _whole_cycles(cycles: int | float | Cost) -> int:
    if type(cycles) is int and cycles >= 0:      # the common case, checked first
        return cycles
    if isinstance(cycles, Cost):
        if cycles.unit != "cycles":
            raise ValueError(f"cannot charge {cycles!r}: its unit is {cycles.unit!r}, not cycles")
        cycles = cycles.value
    if isinstance(cycles, bool) or not isinstance(cycles, (int, float)):
        raise TypeError(f"cycles must be an int, a float or a Cost, not {cycles!r}")
    if isinstance(cycles, float):
        if not math.isfinite(cycles):
            raise ValueError(f"cycles must be finite, not {cycles!r}")
        # A partial cycle occupies the whole cycle; the tolerance absorbs float noise.
        cycles = math.ceil(cycles - 1e-9)
    if cycles < 0:
        raise ValueError(f"cannot charge a negative number of cycles ({cycles!r})")
    return int(cycles)


class CPU:
    """A cost-charging CPU resource (see the module docstring for the semantics).

    Parameters
    ----------
    kernel : Kernel
        The event kernel.
    profile : Platform
        The platform profile: clock period and per-operation costs.
    name : str
        For reports and errors.
    irq_quantum : int or None
        Interrupt granularity inside a charge, in cycles (default 1). ``None`` takes
        interrupts only between charges (a long charge then delays them to its end).
    on_switch : callable, optional
        ``on_switch(prev_task_or_None, new_task)`` called when a different thread gets the
        CPU; for tracing (charging switch costs is the OS model's business).
    watchdog : int or None
        Picoseconds between the stall checks that run while a thread waits for the CPU or an
        interrupt is pending (default :data:`WATCHDOG_PS`; None turns them off). A CPU held by
        a thread that is not running (it awaits something other than the CPU) while others
        wait, or an unmasked interrupt that no handler takes, seen at two checks in a row,
        fails the run with a :class:`~sim.kernel.SimulationError` naming the tasks.

    Raises
    ------
    ValueError
        If ``irq_quantum`` is not a positive integer or None, or ``watchdog`` not a positive
        integer or None.
    """

    def __init__(self, kernel: Kernel, profile: Platform, name: str = "cpu", *,
                 irq_quantum: int | None = 1,
                 on_switch: Callable[[Task | None, Task], None] | None = None,
                 watchdog: int | None = WATCHDOG_PS):
        if irq_quantum is not None and (not isinstance(irq_quantum, int) or irq_quantum < 1):
            raise ValueError(f"irq_quantum must be a positive number of cycles or None, not {irq_quantum!r}")
        if watchdog is not None and (not isinstance(watchdog, int) or watchdog < 1):
            raise ValueError(f"watchdog must be a positive number of picoseconds or None, not {watchdog!r}")
        self.kernel = kernel
        self.profile = profile
        self.name = name
        self.period = profile.cycle_ps
        self.irq_quantum = irq_quantum
        self.on_switch = on_switch
        self._owner: Task | None = None
        self._depth = 0                    # nesting of CPU operations by the owner
        self._gen = 0                      # bumped by every operation: stale release checks are no-ops
        self._queue: deque[_Waiter] = deque()
        self._irqs: list[_Irq] = []
        self._ipl = 0
        self._saved_ipl: dict[Task, int] = {}
        self._irq_task: Task | None = None
        self._ticket: tuple | None = None  # the owner's pending release check (see _exit)
        self._owner_suspends = self._owner_suspends   # one bound method: on_suspend dedups
        self._kick = Event(kernel, f"{name}.irq-kick")
        self._irq_go = Event(kernel, f"{name}.irq-go")
        self._irq_again = False
        self._context: str | None = None   # "irq:<line>" while a handler runs
        self.last_thread: Task | None = None
        self.watchdog = watchdog
        self._wd_armed = False
        self._wd_seen: tuple | None = None   # what the last watchdog check saw stuck
        self.memory: MemorySystem | None = (MemorySystem(profile) if profile.memory is not None
                                            else None)
        self.space: AddressSpace = self.memory.space if self.memory is not None else AddressSpace()
        self.reset_stats()

    # -- accounting ---------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Start a new accounting interval now (e.g. after a warm-up)."""
        self._stats_start = self.kernel.now
        self._busy: dict[str, int] = {}
        self._by_context: dict[str, int] = {}
        self.switches = 0
        self._taken: dict[str, int] = {}

    def _account(self, cycles: int, category: str) -> None:
        if not cycles:
            return
        dt = cycles * self.period
        self._busy[category] = self._busy.get(category, 0) + dt
        ctx = self._context or (self._owner.name if self._owner is not None else "?")
        self._by_context[ctx] = self._by_context.get(ctx, 0) + dt

    def report(self) -> CpuReport:
        """Where the time went since construction or the last :meth:`reset_stats`.

        A charge is accounted as its cycles complete (at its end, or at the boundary where an
        interrupt splits it); until then its time shows as idle, so report between charges
        (e.g. after ``k.run()``) for exact figures.
        """
        now = self.kernel.now
        elapsed = now - self._stats_start
        busy = sum(self._busy.values())
        idle = elapsed - busy
        if idle < 0:  # only possible if a charge is still in progress past `now`
            raise SimulationError(f"{self.name}: busy time {busy} ps exceeds elapsed {elapsed} ps")
        cats = dict(self._busy)
        cats[IDLE] = idle
        p = self.period
        by_cat = {c: Share(v, v / p, (v / elapsed) if elapsed else (1.0 if c == IDLE else 0.0))
                  for c, v in cats.items()}
        return CpuReport(self.name, self._stats_start, now, elapsed, p, by_cat,
                         dict(self._by_context), self.switches, dict(self._taken))

    def breakdown(self) -> dict[str, Share]:
        """Category -> :class:`Share` (cycles and fraction), idle included."""
        return self.report().by_category

    @property
    def owner(self) -> Task | None:
        """The task holding the CPU (None when idle)."""
        return self._owner

    @property
    def busy(self) -> bool:
        return self._owner is not None

    # -- ownership ----------------------------------------------------------------------------
    def _me(self, what: str) -> Task:
        me = self.kernel.current
        if me is None:
            raise SimulationError(f"{self.name}.{what}() must be awaited from a kernel task")
        return me

    def _take(self, me: Task) -> bool:
        """Take the CPU for ``me`` at once if it can be (``me`` holds it, or it is free and
        nobody waits); False if ``me`` has to queue (:meth:`_enter`)."""
        if self._owner is me:
            self._gen += 1
            self._depth += 1
            return True
        if self._owner is None and not self._queue:
            self._gen += 1
            self._grant(me)
            self._depth = 1
            return True
        return False

    async def _enter(self, me: Task) -> None:
        """Wait in the queue for the CPU (when :meth:`_take` could not take it).

        Queueing does not touch the generation: it is the owner's, and a release check the
        owner has pending at this instant must still free the CPU (issue 13: a thread that
        queued in that window voided the idle owner's check and froze the machine)."""
        w = _Waiter(me, Event(self.kernel, f"{self.name}.grant"))
        self._queue.append(w)
        if not self._wd_armed and self.watchdog is not None:
            self._arm_watchdog()
        try:
            await w.granted
        except Cancelled:
            if self._owner is me:
                self._depth = 0
                self._release()
            else:
                self._queue.remove(w)
            raise
        self._depth = 1

    def _grant(self, task: Task) -> None:
        # A new tenure: release checks left over from the task's earlier tenures are void
        # (a waiter is granted before it resumes, and must not be released in between).
        self._gen += 1
        self._owner = task
        self._depth = 0
        self._ipl = self._saved_ipl.pop(task, 0)
        if task is not self._irq_task and task is not self.last_thread:
            prev, self.last_thread = self.last_thread, task
            self.switches += 1
            if self.on_switch is not None:
                self.on_switch(prev, task)

    def _exit(self, me: Task) -> None:
        self._depth -= 1
        if self._depth == 0:
            # The owner keeps the CPU while its Python code runs on at this instant; if it
            # then awaits anything but the CPU, a release check queued behind what is already
            # due now finds the CPU unused and frees it. The check takes its place in the
            # order now (a reserved sequence number) but is only posted when the owner
            # suspends without having used the CPU again: otherwise it would find the CPU in
            # use and do nothing, and the entry would only stop the kernel's short cuts.
            self._ticket = (me, self._gen, self.kernel.now, self.kernel.reserve())
            me.on_suspend(self._owner_suspends)

    def _owner_suspends(self) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is None:
            return
        me, gen, t, seq = ticket
        if gen == self._gen:                 # not used since: the check may free it
            self.kernel.post_reserved(seq, t, self._release_check, (me, gen))

    def _release_check(self, arg: tuple[Task, int]) -> None:
        me, gen = arg
        if self._owner is me and self._depth == 0 and self._gen == gen:
            self._release()

    def _release(self) -> None:
        old = self._owner
        if old is not None and not old.done and self._ipl:
            self._saved_ipl[old] = self._ipl
        self._owner = None
        self._ipl = 0
        if self._pending() is not None:
            self._start_irq_context()
        elif self._queue:
            w = self._queue.popleft()
            self._grant(w.task)
            w.granted.set()

    async def yield_(self) -> None:
        """Give the CPU to the threads waiting for it, then wait for it again (FIFO)."""
        me = self._me("yield_")
        if self._owner is me and self._depth == 0:
            self._gen += 1
            self._release()
        await self.charge(0)

    # -- interrupts -----------------------------------------------------------------------------
    def attach_irq(self, line: IrqLine, handler: Handler, name: str | None = None, *,
                   level: int = 1, dispatch_cycles: int | float | Cost = 0,
                   dispatch_category: str = INTERRUPT) -> None:
        """Run ``await handler()`` whenever ``line`` is high and ``level`` is unmasked.

        Parameters
        ----------
        line : IrqLine
            The (level-sensitive) interrupt line.
        handler : async callable
            Called with no arguments; charges its own work (e.g. under :data:`INTERRUPT`) and
            must make the device drop the line (or the handler runs again).
        name : str, optional
            For reports (defaults to the line's name).
        level : int
            Priority level >= 1; the handler runs at this level, masking its own and lower.
        dispatch_cycles : int, float or Cost
            Cycles charged before each handler call for the kernel's interrupt entry and exit,
            e.g. ``profile.interrupt_dispatch_cycles``.
        dispatch_category : str
            Category of the dispatch cycles.
        """
        if not isinstance(line, IrqLine):
            raise TypeError(f"attach_irq needs an IrqLine, not {line!r}")
        if not isinstance(level, int) or level < 1:
            raise ValueError(f"interrupt level must be an integer >= 1, not {level!r}")
        if any(i.line is line for i in self._irqs):
            raise ValueError(f"{self.name}: line {line.name!r} already has a handler")
        irq = _Irq(line, handler, name or line.name, level, _whole_cycles(dispatch_cycles),
                   dispatch_category)
        self._irqs.append(irq)
        self._irqs.sort(key=lambda i: -i.level)     # stable: same level in attach order
        line.on_change(lambda lvl, irq=irq: self._line_changed(irq, lvl))
        if line.level:
            self._line_changed(irq, 1)

    def spl(self, level: int) -> int:
        """Set the owner's interrupt level (mask lines at or below it); returns the old one.

        Only the thread holding the CPU may change the level; use it between charges, as BSD
        code uses ``s = splnet(); ...; splx(s)``.
        """
        if not isinstance(level, int) or level < 0:
            raise ValueError(f"interrupt level must be an integer >= 0, not {level!r}")
        me = self.kernel.current
        if self._owner is None or me is not self._owner:
            raise SimulationError(f"{self.name}.spl() called by {getattr(me, 'name', None)!r}, "
                                  f"which does not hold the CPU")
        old, self._ipl = self._ipl, level
        if level < old and self._pending() is not None:
            self._kick.pulse()   # taken at the owner's next boundary
        return old

    @property
    def level(self) -> int:
        """The current interrupt level."""
        return self._ipl

    def _pending(self) -> _Irq | None:
        for irq in self._irqs:               # highest level first
            if irq.level <= self._ipl:
                return None
            if irq.line.level:
                return irq
        return None

    def _line_changed(self, irq: _Irq, level: int) -> None:
        if not level or irq.level <= self._ipl:
            return
        if not self._wd_armed and self.watchdog is not None:
            self._arm_watchdog()
        if self._owner is None:
            self._start_irq_context()
        else:
            self._kick.pulse()

    def _start_irq_context(self) -> None:
        # One task runs every interrupt context, woken (at the place in the order where a
        # new task would start) each time the idle CPU has an interrupt to take.
        task = self._irq_task
        if task is None:
            task = self._irq_task = self.kernel.spawn(self._irq_contexts(),
                                                      name=f"{self.name}.irq", daemon=True)
        elif task is self.kernel.current:
            self._irq_again = True    # it is ending a context: it starts the next one at once
        else:
            self._irq_go.pulse()      # it waits for this between contexts
        self._grant(task)
        self._depth = 1

    async def _irq_contexts(self) -> None:
        # Each context runs with the CPU already granted: take every pending interrupt, then
        # release the CPU and wait for the next grant.
        me = self._irq_task
        k = self.kernel
        while True:
            try:
                await self._take_interrupts()
            except BaseException:
                # The run is failing (e.g. an interrupt storm): free the CPU without starting
                # another interrupt context that would never run.
                if self._owner is me:
                    self._owner, self._depth = None, 0
                raise
            self._depth = 0
            self._gen += 1
            if self._owner is me:
                self._release()
            if self._irq_again:
                self._irq_again = False
                await k.sleep(0)
            else:
                await self._irq_go

    async def _take_interrupts(self) -> None:
        while True:
            irq = self._pending()
            if irq is None:
                return
            prev_ipl, prev_ctx = self._ipl, self._context
            self._ipl, self._context = irq.level, f"irq:{irq.name}"
            t0 = self.kernel.now
            self._taken[irq.name] = self._taken.get(irq.name, 0) + 1
            irq.taken += 1
            try:
                if irq.dispatch_cycles:
                    await self._run(irq.dispatch_cycles, irq.dispatch_category)
                await irq.handler()
            finally:
                self._ipl, self._context = prev_ipl, prev_ctx
            if self.kernel.now == t0 and irq.line.level:
                raise SimulationError(
                    f"{self.name}: interrupt storm on line {irq.line.name!r}: its handler returned "
                    f"in zero time with the line still high")

    # -- stall detection ---------------------------------------------------------------------------
    def _arm_watchdog(self) -> None:
        self._wd_armed = True
        self.kernel.post(self.kernel.now + self.watchdog, self._watchdog_check, None)

    def _stall(self) -> tuple | None:
        """What is stuck now, or None: the CPU held by a thread that is between CPU operations
        and not running while others wait, or an unmasked pending interrupt (with the count of
        its handler's runs, so that a handler that ran in between is progress)."""
        owner = self._owner
        if (self._queue and owner is not None and self._depth == 0
                and owner is not self.kernel.current and owner is not self._irq_task):
            return ("owner", owner, self._gen)
        irq = self._pending()
        if irq is not None:
            return ("irq", irq, irq.taken, owner, self._gen)
        return None

    def _watchdog_check(self, _arg) -> None:
        seen = self._stall()
        if seen is not None and seen == self._wd_seen:
            raise SimulationError(self._describe_stall(seen))
        self._wd_seen = seen
        if seen is None and not self._queue and self._pending() is None:
            self._wd_armed = False          # nothing waits: checks resume with the next waiter
        else:
            self._arm_watchdog()

    def _describe_stall(self, seen: tuple) -> str:
        waiting = [w.task for w in self._queue]
        names = ", ".join(repr(t.name) for t in waiting[:8])
        if len(waiting) > 8:
            names += f" and {len(waiting) - 8} more"
        owner = self._owner
        held = (f"held by {owner.name!r}, suspended in {owner.where()}" if owner is not None
                else "idle")
        since = self.kernel.now - self.watchdog
        if seen[0] == "owner":
            what = (f"{self.name}: stalled since t<={since} ps: the CPU is {held} and not released, "
                    f"while {len(waiting)} task(s) wait for it ({names or 'none'})")
        else:
            irq = seen[1]
            what = (f"{self.name}: stalled since t<={since} ps: interrupt line {irq.line.name!r} is "
                    f"high and unmasked (CPU level {self._ipl}) but its handler has not run; "
                    f"the CPU is {held}; {len(waiting)} task(s) wait for it ({names or 'none'})")
        return what

    # -- charging ------------------------------------------------------------------------------
    async def charge(self, cycles: int | float | Cost, category: str = COMPUTE) -> None:
        """Hold the CPU for ``cycles`` cycles of work of ``category``.

        Waits for the CPU first if another thread holds it; pending interrupts are taken
        before the work starts and at quantum boundaries inside it. Fractional cycles (a
        float, or a :class:`Cost` in cycles) round up to whole cycles.

        Raises
        ------
        ValueError, TypeError
            For a negative, non-finite or non-numeric cycle count, or the category ``idle``.
        """
        n = cycles if type(cycles) is int and cycles >= 0 else _whole_cycles(cycles)
        if type(category) is not str or category == IDLE or not category:
            raise ValueError(f"cannot charge to category {category!r}")
        me = self.kernel.current
        if me is None:
            self._me("charge")                  # raises
        if self._owner is me:                   # _take's first case, inline (the common one)
            self._gen += 1
            self._depth += 1
        elif not self._take(me):
            await self._enter(me)
        try:
            await self._run(n, category)
        finally:
            self._exit(me)

    async def charges(self, pieces: Sequence[tuple[int | float | Cost, str]]) -> None:
        """Charge ``pieces``, a sequence of ``(cycles, category)``, as consecutive
        :meth:`charge` calls would, in one CPU operation.

        The same times, order and accounting as ``for c, cat in pieces: await
        cpu.charge(c, cat)``: each piece rounds its cycles up on its own, pending interrupts
        are taken at each piece's start and at the quantum boundaries inside it (counted from
        the piece's start), and each piece's cycles go to its own category, split where an
        interrupt splits it. Only the CPU is taken once (a thread keeps it across consecutive
        charges anyway), so the hot paths that charge a few categories in a row (a packet's
        protocol and checksum work, a driver's dispatch and copy) pay one call's overhead.

        Raises
        ------
        ValueError, TypeError
            As :meth:`charge`, for any piece (before anything is charged). An empty sequence
            charges nothing and does not take the CPU.
        """
        work = []
        for cycles, category in pieces:
            if category == IDLE or not isinstance(category, str) or not category:
                raise ValueError(f"cannot charge to category {category!r}")
            work.append((_whole_cycles(cycles), category))
        if not work:
            return                       # no charge at all: the CPU is not even taken
        me = self._me("charges")
        if not self._take(me):
            await self._enter(me)
        try:
            for n, category in work:
                await self._run(n, category)
        finally:
            self._exit(me)

    async def _run(self, n: int, category: str) -> None:
        k, period = self.kernel, self.period
        remaining = n
        while True:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            if remaining == 0:
                return
            start = k.now
            end = start + remaining * period
            # Task._step's short cut, taken here without the round trip of the await chain:
            # the task's suspend hooks run as they would when it yields; if ``end`` is within
            # the running loop's horizon and before every scheduled entry, nothing can happen
            # before it (no kick can split the charge), so the clock moves to ``end`` and the
            # event is counted as the short cut counts it. Same times, order and event count.
            me = k.current
            if me._on_suspend is not None:
                me._suspending()
            heap = k._heap
            if end <= k._horizon and (not heap or heap[0][0] > end):
                k.now = end
                k.events += 1
                dt = remaining * period
                busy = self._busy
                busy[category] = busy.get(category, 0) + dt
                owner = self._owner
                ctx = self._context or (owner.name if owner is not None else "?")
                bc = self._by_context
                bc[ctx] = bc.get(ctx, 0) + dt
                return
            if not self._irqs or self.irq_quantum is None:
                await k.sleep_until(end)
                done = remaining
            else:
                idx, _ = await k.timeout(self._kick, end - start)
                if idx == 1:                # the charge ran to its end without a kick
                    done = remaining
                else:
                    q = self.irq_quantum * period
                    b = start + -(-(k.now - start) // q) * q
                    if b >= end:
                        await k.sleep_until(end)
                        done = remaining
                    else:
                        if b > k.now:
                            await k.sleep_until(b)
                        done = (b - start) // period
            self._account(done, category)
            remaining -= done
            if remaining == 0:
                return

    async def _stall_since(self, t0: int, category: str) -> None:
        """Round the time since ``t0`` up to whole cycles, wait out the rest, charge it."""
        k, p = self.kernel, self.period
        cycles = -(-(k.now - t0) // p)
        end = t0 + cycles * p
        if end > k.now:
            await k.sleep_until(end)
        self._account(cycles, category)

    async def load(self, bus: Bus, addr: int, category: str = IO_WAIT) -> int:
        """A CPU word read through ``bus``: the CPU stalls for the device's access time.

        The access is atomic (interrupts are taken before it); the elapsed time, rounded up
        to whole CPU cycles, is charged to ``category``.
        """
        me = self._me("load")
        if not self._take(me):
            await self._enter(me)
        try:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            t0 = self.kernel.now
            value = await bus.read(addr)
            await self._stall_since(t0, category)
            return value
        finally:
            self._exit(me)

    async def store(self, bus: Bus, addr: int, value: int, category: str = IO_WAIT) -> None:
        """A CPU word write through ``bus``, charged like :meth:`load`.

        The R3000's write buffer is not modelled for I/O space: the CPU waits for the device
        to accept the write (for streams of writes the buffer fills at once, so the bus rate
        is the limit either way).
        """
        me = self._me("store")
        if not self._take(me):
            await self._enter(me)
        try:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            t0 = self.kernel.now
            await bus.write(addr, value)
            await self._stall_since(t0, category)
        finally:
            self._exit(me)

    async def load_words(self, bus: Bus, addr: int, n: int, category: str = IO_WAIT, *,
                         dst: Address | None = None) -> list[int]:
        """``n`` consecutive word loads from ``addr``: a copy loop out of device memory.

        The block is one bus transaction (:meth:`sim.bus.Bus.read_block`): the device sees the
        reads back to back, each issued as the previous completes, and the CPU stalls for all
        of them. Interrupts are taken before the block, not between its words (a simplification:
        a real copy loop can be interrupted between any two loads; the cost is up to one
        block's time of interrupt latency).

        With ``dst`` (where the loop stores the words in main memory) on a machine with a memory
        system, the host side is charged too (:meth:`sim.cache.MemorySystem.pio_in`: each
        store drains through the write buffer before the next I/O read) to :data:`MEMORY_STALL`.
        """
        if n < 0:
            raise ValueError(f"word count must be >= 0, not {n!r}")
        me = self._me("load_words")
        if not self._take(me):
            await self._enter(me)
        try:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            t0 = self.kernel.now
            words = await bus.read_block(addr, n)
            await self._stall_since(t0, category)
            if dst is not None and self.memory is not None:
                await self._run(self.memory.pio_in(self.kernel.now, 4 * n, dst).stall, MEMORY_STALL)
            return words
        finally:
            self._exit(me)

    async def store_words(self, bus: Bus, addr: int, words: Sequence[int],
                          category: str = IO_WAIT, *, src: Address | None = None) -> None:
        """Consecutive word stores of ``words`` from ``addr``, as :meth:`load_words` loads.

        With ``src`` (where the loop loads the words from in main memory) on a machine with a
        memory system, the host side is charged first (:meth:`sim.cache.MemorySystem.pio_out`:
        a full memory read for every source word not in the data cache) to :data:`MEMORY_STALL`.
        """
        me = self._me("store_words")
        if not self._take(me):
            await self._enter(me)
        try:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            if src is not None and self.memory is not None:
                await self._run(self.memory.pio_out(self.kernel.now, 4 * len(words), src).stall,
                                MEMORY_STALL)
            t0 = self.kernel.now
            await bus.write_block(addr, words)
            await self._stall_since(t0, category)
        finally:
            self._exit(me)

    # -- costed operations from the profile -------------------------------------------------------
    def region(self, name: str, size: int, align: int = 4) -> Region:
        """The region of this machine's memory named ``name`` (allocated on first use), to name
        a buffer in :meth:`copy`, :meth:`checksum` and the PIO loops."""
        return self.space.region(name, size, align)

    async def _stream(self, what: str, timed, category: str) -> Stall:
        """Hold the CPU, take pending interrupts, then time a stream at the current instant
        with ``timed(now) -> Stall`` and charge its issue cycles to ``category`` and its
        stalls to :data:`MEMORY_STALL`."""
        me = self._me(what)
        if not self._take(me):
            await self._enter(me)
        try:
            if self._irqs and self._pending() is not None:
                await self._take_interrupts()
            st = timed(self.kernel.now)
            await self._run(st.issue, category)
            await self._run(st.stall, MEMORY_STALL)
            return st
        finally:
            self._exit(me)

    async def copy(self, nbytes: int, cached: bool = False, category: str = COPY, *,
                   src: Address | None = None, dst: Address | None = None) -> None:
        """Charge a memory-to-memory copy (bcopy) of ``nbytes``.

        With ``src`` and ``dst`` (addresses or regions) on a machine with a memory system, the
        copy goes through the data cache and the write buffer (:meth:`sim.cache.MemorySystem.copy`):
        instruction cycles to ``category``, stalls to :data:`MEMORY_STALL`. Otherwise
        ``cached`` says whether the source is in the data cache and the profile's per-word rows
        price it (:meth:`Platform.copy_cycles`).

        Raises
        ------
        ValueError
            For a negative length, or only one of ``src`` and ``dst``.
        """
        if src is None and dst is None:
            await self.charge(self.profile.copy_cycles(nbytes, cached), category)
            return
        if src is None or dst is None:
            raise ValueError(f"{self.name}: a copy names both its source and its destination "
                             f"(src={src!r}, dst={dst!r})")
        if nbytes < 0:
            raise ValueError(f"copy length must be >= 0, not {nbytes!r}")
        ms = self.memory
        if ms is None:
            await self.charge(self.profile.copy_cycles(nbytes, cached), category)
            return
        call = self.profile.copy_call_cycles.value if nbytes else 0
        await self._stream("copy", lambda now: ms.copy(now, nbytes, src, dst, call), category)

    async def checksum(self, nbytes: int, cached: bool = False, category: str = CHECKSUM, *,
                       src: Address | None = None) -> None:
        """Charge an Internet checksum over ``nbytes``.

        With ``src`` on a machine with a memory system the buffer is read through the data
        cache (the loop's instruction cycles are the profile's cached row); otherwise the
        profile's rows price it (:meth:`Platform.checksum_cycles`).
        """
        ms = self.memory
        if src is None or ms is None:
            await self.charge(self.profile.checksum_cycles(nbytes, cached), category)
            return
        if nbytes < 0:
            raise ValueError(f"checksum length must be >= 0, not {nbytes!r}")
        per = self.profile.checksum_cached_cycles_per_word.value
        call = self.profile.checksum_call_cycles.value if nbytes else 0
        await self._stream("checksum", lambda now: ms.read(now, nbytes, src, per, call), category)

    async def path(self, name: str, instructions: float, code_bytes: int, data_bytes: int = 0,
                   category: str = KERNEL) -> None:
        """Run the kernel path ``name``: ``instructions`` at the profile's CPI to ``category``,
        plus, on a machine with a memory system, a read miss for every line of its
        ``code_bytes`` of code and ``data_bytes`` of data not in the caches (VALIDATION X3: cold
        I-cache and D-cache misses) to :data:`MEMORY_STALL`. The path's code and data get
        regions of their own on first use, so a path run again soon after is warm and one whose
        lines were evicted (by other paths or by copies) pays again.

        Raises
        ------
        ValueError
            For a negative count or size, or a path run with another footprint than before.
        """
        if not isinstance(code_bytes, int) or code_bytes <= 0 or not isinstance(data_bytes, int) \
                or data_bytes < 0:
            raise ValueError(f"path {name!r}: code_bytes must be > 0 and data_bytes >= 0, "
                             f"not {code_bytes!r}, {data_bytes!r}")
        cycles = self.profile.instructions(instructions)
        ms = self.memory
        if ms is None:
            await self.charge(cycles, category)
            return
        code = ms.space.region(f"path:{name}:code", code_bytes)
        data = ms.space.region(f"path:{name}:data", data_bytes) if data_bytes else None
        await self._stream("path", lambda now: _with_issue(ms.path(now, code, data), cycles),
                           category)

    async def memcpy(self, mem, dst: int, src: int, n: int, cached: bool = False,
                     requester: object | None = None) -> None:
        """Copy ``n`` bytes inside :class:`~sim.memory.Memory` ``mem`` and charge the copy.

        The bytes move when the copy's time has been charged (a reader in between sees the
        old contents, as it would mid-copy). ``requester`` is checked against page owners.
        """
        mem.check(src, n, requester, write=False)
        mem.check(dst, n, requester, write=True)
        await self.copy(n, cached)
        mem.write(dst, mem.read(src, n))

    def __repr__(self) -> str:
        owner = self._owner.name if self._owner else "idle"
        return f"<CPU {self.name} {self.profile.name} {owner}>"


def _with_issue(st: Stall, issue: int) -> Stall:
    # A kernel path's stalls come from the memory system, its instruction cycles from the caller.
    return Stall(issue, st.stall, st.misses, st.writes)
