"""Bindings: run the serveros kernel while an HDL simulator owns time.

The kernel (:mod:`sim.kernel`) always schedules the coroutines; a binding only lets the
simulator own time. Its driver loop is, on every backend::

    loop:
        t_next = kernel.next_time()
        let the simulator run until t_next, or until a watched signal changes
        kernel.run_until(simulator_now)     # software due by now
        call the watchers of the signals that changed (at the exact simulator time)
        kernel.run_until(simulator_now)     # what the watchers woke

So Python wakes for software events and for hardware transactions (an ``ack``, an irq edge),
never once per clock cycle: the clocks run inside the simulator. At one instant, software
entries already due run before the hardware changes seen at that instant, and what a binding
schedules with :meth:`HdlDriver.after_hardware` runs after them (a bus access that completes
at an edge and must see what that edge changed, as a device model's register port that
resumes its caller with a ``late`` kernel entry does: :class:`HostBusInitiator` with
``after_hardware``).

This package holds what is common to both simulators:

* :class:`HdlDriver`, the driver loop's bookkeeping (the simulator-specific halves are
  :class:`sim.bindings.amaranth.AmaranthDriver` and :class:`sim.bindings.cocotb.CocotbDriver`);
* :class:`HostBusInitiator`, a :class:`sim.bus.BusTarget` that performs each read or write as a
  transaction on HostBus-style signals (``addr``, ``w_data``, ``w_en``, ``r_en``, ``r_data``,
  ``ack``; the protocol is documented on ``hw.bus.HostBus``) of a design;
* :class:`IrqMirror`, which copies an HDL interrupt signal onto a :class:`sim.bus.IrqLine`.

Nothing here imports a simulator, a device or a program: signals are opaque handles that the
driver's :meth:`HdlDriver.get` / :meth:`HdlDriver.set` understand.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from sim.bus import IrqLine
from sim.kernel import Event, Kernel, SimulationError
from sim.time import Clock

log = logging.getLogger(__name__)

__all__ = ["HdlDriver", "HostBusInitiator", "BlockInitiator", "IrqMirror", "BindingError", "DriverStats"]


class BindingError(SimulationError):
    """The hardware broke the protocol a binding expects, or a binding was used wrongly."""


@dataclass
class DriverStats:
    """What a driver run cost in Python wake-ups, for showing that Python is not woken per cycle.

    Attributes
    ----------
    wakes : int
        Times the driver loop was resumed by the simulator.
    signal_wakes : int
        Wakes on which at least one watched signal had changed.
    end_time : int
        Simulator time (ps) when the loop finished.
    """

    wakes: int = 0
    signal_wakes: int = 0
    end_time: int = 0


@dataclass
class _Watch:
    signal: Any
    last: int = 0
    fns: list[Callable[[int], None]] = field(default_factory=list)


class HdlDriver:
    """The simulator-independent half of a binding's driver loop.

    Subclasses supply :meth:`get`, :meth:`set` and an ``async run()`` that awaits the simulator
    and calls :meth:`_wake` with the simulator time on every resumption.

    Parameters
    ----------
    kernel : Kernel
        The kernel to run.
    until : int, optional
        Stop (without error) at this simulator time in ps even if tasks are still live.
    """

    def __init__(self, kernel: Kernel, *, until: int | None = None):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel must be a sim.kernel.Kernel, not {kernel!r}")
        if until is not None and (not isinstance(until, int) or until < 0):
            raise ValueError(f"until must be a non-negative integer time in ps, not {until!r}")
        self.kernel = kernel
        self.until = until
        self.stats = DriverStats()
        self._watches: list[_Watch] = []
        self._by_id: dict[int, _Watch] = {}
        self._running = False
        self._after: list[tuple[int, int, Callable[[], None]]] = []   # (time, seq, fn)
        self._after_seq = 0

    # -- for adapters ------------------------------------------------------------------------
    def get(self, signal: Any) -> int:
        """The current value of ``signal`` as an integer."""
        raise NotImplementedError

    def set(self, signal: Any, value: int) -> None:
        """Drive ``signal`` with ``value`` from now on."""
        raise NotImplementedError

    def watch(self, signal: Any, fn: Callable[[int], None]) -> None:
        """Call ``fn(new_value)`` whenever ``signal`` changes, with the kernel at that time.

        Must be called before the driver runs. Watched signals should change only at
        transaction rate (an ack, an irq), since each change wakes Python.
        """
        if self._running:
            raise BindingError("watch() must be called before the driver runs")
        w = self._by_id.get(id(signal))
        if w is None:
            w = _Watch(signal)
            self._by_id[id(signal)] = w
            self._watches.append(w)
        w.fns.append(fn)

    def after_hardware(self, t: int, fn: Callable[[], None]) -> None:
        """Call ``fn()`` at time ``t`` (ps, not in the past) after the hardware changes seen
        at ``t`` have been handed to their watchers (the driver wakes at ``t`` for it)."""
        if t < self.kernel.now:
            raise BindingError(f"after_hardware({t}) is in the past (now {self.kernel.now})")
        self._after_seq += 1
        heapq.heappush(self._after, (t, self._after_seq, fn))

    @property
    def watched_signals(self) -> list[Any]:
        return [w.signal for w in self._watches]

    # -- for the simulator-specific loop -------------------------------------------------------
    def _start(self) -> None:
        self._running = True
        for w in self._watches:
            w.last = self.get(w.signal)
        self.kernel.run_until(self.kernel.now)
        for w in self._watches:       # a line already high at the start is an edge for us
            if w.last:
                for fn in w.fns:
                    fn(w.last)

    def _finished(self) -> bool:
        k = self.kernel
        return k.live_tasks == 0 or (self.until is not None and k.now >= self.until)

    def _deadline(self) -> int | None:
        """Next time the loop must wake even if no signal changes (None: only on signals)."""
        t = self.kernel.next_time()
        if self._after and (t is None or self._after[0][0] < t):
            t = self._after[0][0]
        if self.until is not None:
            t = self.until if t is None else min(t, self.until)
        if t is None and not self._watches:
            raise BindingError(
                f"deadlock at {self.kernel.now} ps: {self.kernel.live_tasks} task(s) wait, but "
                f"nothing is scheduled and no hardware signal is watched")
        return t

    def _wake(self, now: int) -> None:
        """The simulator resumed us at ``now`` ps: run software due, then the watchers."""
        st = self.stats
        st.wakes += 1
        k = self.kernel
        k.run_until(now)
        changed = False
        for w in self._watches:
            v = self.get(w.signal)
            if v != w.last:
                w.last = v
                changed = True
                for fn in w.fns:
                    fn(v)
        if changed:
            st.signal_wakes += 1
            k.run_until(now)
        after = self._after
        if after and after[0][0] <= now:
            while after and after[0][0] <= now:
                heapq.heappop(after)[2]()
            k.run_until(now)
        st.end_time = now


class IrqMirror:
    """Mirror a one-bit HDL signal onto an :class:`IrqLine` at the exact simulator time.

    Parameters
    ----------
    driver : HdlDriver
        The running binding.
    signal : Any
        The design's interrupt output (a handle the driver understands).
    line : IrqLine
        The kernel-side line that software waits on.
    """

    def __init__(self, driver: HdlDriver, signal: Any, line: IrqLine):
        if not isinstance(line, IrqLine):
            raise TypeError(f"line must be a sim.bus.IrqLine, not {line!r}")
        self.line = line
        self.edges = 0
        driver.watch(signal, self._changed)

    def _changed(self, level: int) -> None:
        self.edges += 1
        self.line.drive(level)


class HostBusInitiator:
    """A :class:`sim.bus.BusTarget` that runs each access as a HostBus transaction on a design.

    Timing (the HostBus protocol): an access requested at ``t`` drives the request at ``t``, or
    half a cycle later when ``t`` is exactly a rising edge (so the request never races the edge
    that samples it); the design's ``ack`` rises right after an edge ``e``; ``r_data`` is
    sampled and the request dropped half a cycle later; the access completes, and the calling
    task resumes, at ``e + 1 cycle``, the edge at which a synchronous initiator samples ``ack``
    (with ``after_hardware``: after the hardware changes seen there, as
    :class:`sim.bus.RegisterPort` resumes its caller). Accesses from several tasks are served one at a time in arrival order.

    Python wakes three times per access (the ``ack`` edge, mid-cycle, completion) plus once to
    drive when the request is edge-aligned, whatever the number of wait states.

    Parameters
    ----------
    driver : HdlDriver
        The running binding.
    clock : Clock
        The clock of the design's bus (rising edges at ``k * period``).
    addr, w_data, r_data, w_en, r_en, ack : Any
        The design's HostBus signals (handles the driver understands).
    addr_width : int
        Width of ``addr`` (word address): the window is ``4 << addr_width`` bytes.
    name : str
        For messages.
    after_hardware : bool
        Resume the caller after the hardware changes of the completing edge (an interrupt the
        access cleared has fallen) rather than before them (default).
    """

    def __init__(self, driver: HdlDriver, clock: Clock, *, addr: Any, w_data: Any, r_data: Any,
                 w_en: Any, r_en: Any, ack: Any, addr_width: int, name: str = "hostbus",
                 after_hardware: bool = False):
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        if not isinstance(addr_width, int) or addr_width < 0:
            raise ValueError(f"addr_width must be a non-negative integer, not {addr_width!r}")
        self.driver = driver
        self.kernel = driver.kernel
        self.clock = clock
        self.name = name
        self.window = 4 << addr_width
        self._sig = dict(addr=addr, w_data=w_data, r_data=r_data, w_en=w_en, r_en=r_en)
        self._ack = ack
        self._busy = False
        self._queue: list[Event] = []
        self._done: Event | None = None
        self._ack_at: int | None = None
        self.reads = 0
        self.writes = 0
        self.after_hardware = bool(after_hardware)
        driver.watch(ack, self._on_ack)

    async def read(self, offset: int) -> int:
        return await self._access(offset, None)

    async def write(self, offset: int, value: int) -> None:
        if not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"{self.name}: write value must be a 32-bit unsigned integer, not {value!r}")
        await self._access(offset, value)

    async def _access(self, offset: int, value: int | None) -> int:
        if not isinstance(offset, int) or offset < 0 or offset >= self.window or offset & 3:
            raise ValueError(f"{self.name}: offset must be a word offset in [0, {self.window:#x}), "
                             f"not {offset!r}")
        k = self.kernel
        if self._busy:
            turn = k.event(f"{self.name}.turn")
            self._queue.append(turn)
            await turn
        self._busy = True
        done = self._done = k.event(f"{self.name}.done")
        half = self.clock.period // 2
        if k.now % self.clock.period:
            self._drive(offset >> 2, value)
        else:
            k.call_at(k.now + half, lambda: self._drive(offset >> 2, value))
        result = await done
        if self._queue:
            self._queue.pop(0).set()
        else:
            self._busy = False
        return result

    def _drive(self, word: int, value: int | None) -> None:
        d, s = self.driver, self._sig
        d.set(s["addr"], word)
        if value is None:
            d.set(s["r_en"], 1)
            self.reads += 1
        else:
            d.set(s["w_data"], value)
            d.set(s["w_en"], 1)
            self.writes += 1

    def _on_ack(self, level: int) -> None:
        if not level:
            return
        k = self.kernel
        if self._done is None or self._ack_at is not None:
            raise BindingError(f"{self.name}: ack rose at {k.now} ps with no request outstanding")
        edge = k.now
        if edge % self.clock.period:
            raise BindingError(f"{self.name}: ack rose at {edge} ps, not right after a rising "
                               f"edge of the {self.clock.period} ps clock (it must be registered)")
        self._ack_at = edge
        k.call_at(edge + self.clock.period // 2, self._sample)

    def _sample(self) -> None:
        d, s, k = self.driver, self._sig, self.kernel
        if not d.get(self._ack):
            raise BindingError(f"{self.name}: ack fell before the end of its cycle at {k.now} ps")
        value = d.get(s["r_data"]) if d.get(s["r_en"]) else None
        d.set(s["r_en"], 0)
        d.set(s["w_en"], 0)
        done, self._done = self._done, None
        edge, self._ack_at = self._ack_at, None
        if self.after_hardware:
            self.driver.after_hardware(edge + self.clock.period, lambda: done.set(value))
        else:
            k.call_at(edge + self.clock.period, lambda: done.set(value))


class BlockInitiator:
    """Block PIO through a :class:`hw.burst.HostBusBurster`, single accesses through ``single``.

    A :class:`sim.bus.BusTarget` with ``read_block``/``write_block``
    (:meth:`sim.bus.Bus.read_block`): a block of up to ``max_words`` words is one transaction:
    its words go into (or come out of) the burster's memory through ``mem_write``/``mem_read``,
    the parameters are driven, ``go`` toggles, and the calling task resumes when ``done``
    toggles, at the edge at which the last access completes. Longer blocks run as several
    transactions back to back.

    Timing: the first access is sampled at the first rising edge after the request, as a
    single access would be; a request made exactly at a rising edge is driven half a cycle
    later so that it never races that edge (as :class:`HostBusInitiator` does).

    Parameters
    ----------
    driver : HdlDriver
    clock : Clock
    single : HostBusInitiator
        For single reads and writes (on the burster's ``host`` port).
    go, write, addr, count, done : Any
        The burster's control signals.
    mem_read : callable(n) -> list[int]
        Reads words 0..n-1 of the burster's memory.
    mem_write : callable(words)
        Writes words from word 0 of the burster's memory.
    max_words : int
        The burster's memory depth.
    """

    def __init__(self, driver: HdlDriver, clock: Clock, *, single: HostBusInitiator, go: Any,
                 write: Any, addr: Any, count: Any, done: Any,
                 mem_read: Callable[[int], list], mem_write: Callable[[list], None],
                 max_words: int = 512, name: str = "burst"):
        self.driver = driver
        self.kernel = driver.kernel
        self.clock = clock
        self.single = single
        self.name = name
        self.window = single.window
        self._sig = dict(go=go, write=write, addr=addr, count=count)
        self._mem_read = mem_read
        self._mem_write = mem_write
        self.max_words = max_words
        self._go = 0
        self._done: Event | None = None
        self.blocks = 0
        driver.watch(done, self._on_done)

    async def read(self, offset: int) -> int:
        return await self.single.read(offset)

    async def write(self, offset: int, value: int) -> None:
        await self.single.write(offset, value)

    async def read_block(self, offset: int, n: int) -> list[int]:
        out: list[int] = []
        for start in range(0, n, self.max_words):
            m = min(self.max_words, n - start)
            await self._block(offset + 4 * start, m, None)
            out.extend(self._mem_read(m))
        return out

    async def write_block(self, offset: int, words: list[int]) -> None:
        for start in range(0, len(words), self.max_words):
            chunk = words[start:start + self.max_words]
            await self._block(offset + 4 * start, len(chunk), chunk)

    async def _block(self, offset: int, n: int, words: list[int] | None) -> None:
        if offset & 3 or offset < 0 or offset + 4 * n > self.window:
            raise ValueError(f"{self.name}: block of {n} words at {offset:#x} is outside the "
                             f"{self.window:#x}-byte window")
        k = self.kernel
        if self._done is not None:
            raise BindingError(f"{self.name}: a block is already running")
        done = self._done = k.event(f"{self.name}.done")

        def drive() -> None:
            d, s = self.driver, self._sig
            if words is not None:
                self._mem_write(words)
            d.set(s["addr"], offset >> 2)
            d.set(s["count"], n)
            d.set(s["write"], 1 if words is not None else 0)
            self._go ^= 1
            d.set(s["go"], self._go)
            self.blocks += 1
        if k.now % self.clock.period:
            drive()
        else:
            k.call_at(k.now + self.clock.period // 2, drive)
        await done

    def _on_done(self, level: int) -> None:
        done, self._done = self._done, None
        if done is None:
            raise BindingError(f"{self.name}: done toggled at {self.kernel.now} ps with no block running")
        done.set()
