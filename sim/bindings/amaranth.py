"""Binding to Amaranth's simulator (0.5): the kernel runs inside one Amaranth testbench.

Amaranth keeps time as an integer number of femtoseconds; serveros' picoseconds map onto it
exactly (1 ps = 1000 fs). Two of Amaranth's public conversions go through float seconds:
``add_clock`` *truncates* (``int(period * 1e15)``: 30 ns would become 29 999 999 fs) and
``ctx.delay`` rounds. :func:`add_clock` therefore passes a period nudged by a quarter
femtosecond so truncation lands on the exact value, and the driver checks after every delay
that it woke at the exact picosecond it asked for.

Amaranth 0.5 has no public accessor for the current simulation time; the driver reads the
engine's ``now`` (``Simulator._engine.now``, in fs) in one place, :func:`sim_time_ps`.

:class:`AmaranthAccess` names a simulated component's ports and memories for a device's
binding (:class:`sim.bindings.access.SignalAccess`).
"""
from __future__ import annotations

from typing import Any

from amaranth.sim import BrokenTrigger, Simulator

from sim.kernel import Kernel
from sim.time import Clock

from . import BindingError, HdlDriver

__all__ = ["AmaranthDriver", "AmaranthAccess", "add_clock", "sim_time_ps"]

_FS_PER_PS = 1000


def sim_time_ps(sim: Simulator) -> int:
    """The current time of an Amaranth simulation, in integer picoseconds.

    Raises
    ------
    BindingError
        If this Amaranth version keeps time differently, or the time is not a whole ps.
    """
    try:
        fs = sim._engine.now        # private in 0.5: no public time accessor exists
    except AttributeError as exc:   # pragma: no cover - guards an Amaranth upgrade
        raise BindingError("this Amaranth version has no Simulator._engine.now; "
                           "sim.bindings.amaranth needs updating") from exc
    if not isinstance(fs, int) or fs % _FS_PER_PS:
        raise BindingError(f"Amaranth time {fs!r} fs is not a whole number of picoseconds")
    return fs // _FS_PER_PS


def add_clock(sim: Simulator, clock: Clock, *, domain: str = "sync") -> None:
    """Drive ``domain``'s clock with ``clock``: rising edges at exactly ``k * period`` from 0.

    Amaranth's default phase puts the first rising edge at half a period; serveros' convention
    (:class:`sim.time.Clock`) and cocotb's ``Clock`` put it at 0, so the phase is 0 here.
    """
    if not isinstance(clock, Clock):
        raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
    period_fs = clock.period * _FS_PER_PS
    # Amaranth truncates period * 1e15; a quarter-fs nudge makes the truncation exact.
    sim.add_clock((period_fs + 0.25) / 1e15, phase=0, domain=domain)


class AmaranthDriver(HdlDriver):
    """Run a :class:`Kernel` inside an Amaranth simulation, the simulator owning time.

    The constructor adds one testbench to ``sim``; create the adapters
    (:class:`sim.bindings.HostBusInitiator`, :class:`sim.bindings.IrqMirror`) before
    ``sim.run()``. The testbench ends when every non-daemon kernel task has finished (or at
    ``until``); ``sim.run()`` then returns once other non-background testbenches end.

    Parameters
    ----------
    sim : Simulator
        The Amaranth simulator of the design.
    kernel : Kernel
        The kernel to run; its time must be 0.
    until : int, optional
        Stop at this time (ps) even if tasks are still live.

    Raises
    ------
    BindingError
        If the kernel has already run (its time would disagree with the simulator's).
    """

    def __init__(self, sim: Simulator, kernel: Kernel, *, until: int | None = None):
        super().__init__(kernel, until=until)
        if kernel.now != 0:
            raise BindingError(f"the kernel must start at time 0 to follow a new simulation, "
                               f"not {kernel.now} ps")
        self.sim = sim
        self._ctx = None
        sim.add_testbench(self._main)

    def get(self, signal: Any) -> int:
        return int(self._context().get(signal))

    def set(self, signal: Any, value: int) -> None:
        self._context().set(signal, value)

    def now(self) -> int:
        """Simulation time in ps."""
        return sim_time_ps(self.sim)

    def _context(self):
        if self._ctx is None:
            raise BindingError("the Amaranth driver is not running (call sim.run())")
        return self._ctx

    async def _main(self, ctx) -> None:
        self._ctx = ctx
        try:
            self._start()
            signals = self.watched_signals
            while not self._finished():
                t = self._deadline()
                now = self.now()
                if t is not None and t <= now:
                    self._wake(now)
                    continue
                trigger = None
                if t is not None:
                    trigger = ctx.delay((t - now) * _FS_PER_PS / 1e15)
                if signals:
                    trigger = trigger.changed(*signals) if trigger is not None else ctx.changed(*signals)
                try:
                    fired = await trigger
                except BrokenTrigger:
                    # Two triggers of the combination fired in the same time step (a delay
                    # and a signal change, say): Amaranth resumes us once and reports the
                    # combination as broken. We re-read everything anyway, so it is a wake.
                    fired = (False,)
                now = self.now()
                if t is not None and fired[0] and now != t:
                    raise BindingError(f"Amaranth woke at {now} ps for a delay to {t} ps")
                self._wake(now)
        finally:
            self._ctx = None


class AmaranthAccess:
    """The :class:`sim.bindings.access.SignalAccess` of a component simulated by Amaranth.

    Ports are the component's signature members, flattened and joined with ``__``
    (``"bus__ack"``); memories are found by dotted attribute path from the component
    (``"bridge.tx_mem"``: an ``amaranth.lib.memory.Memory``), their words read and written
    through ``driver``'s testbench context.

    Parameters
    ----------
    component : wiring.Component
        The design (as simulated: the same object, not a copy).
    driver : AmaranthDriver
        The driver of the simulation that runs it.
    """

    def __init__(self, component: Any, driver: AmaranthDriver):
        if not hasattr(component, "signature"):
            raise TypeError(f"component must be an amaranth wiring.Component, not {component!r}")
        if not isinstance(driver, AmaranthDriver):
            raise TypeError(f"driver must be an AmaranthDriver, not {driver!r}")
        self.component = component
        self.driver = driver
        self._ports = {"__".join(str(p) for p in path): value
                       for path, _, value in component.signature.flatten(component)}
        self._mems: dict[str, Any] = {}

    def port(self, name: str) -> Any:
        try:
            return self._ports[name]
        except KeyError:
            raise BindingError(f"{type(self.component).__name__} has no port {name!r}") from None

    def _memory(self, name: str, start: int, n: int) -> Any:
        from amaranth.lib.memory import Memory
        mem = self._mems.get(name)
        if mem is None:
            obj = self.component
            for part in name.split("."):
                obj = getattr(obj, part, None)
            if not isinstance(obj, Memory):
                raise BindingError(f"{type(self.component).__name__} has no memory {name!r}")
            mem = self._mems[name] = obj
        if not (isinstance(start, int) and isinstance(n, int) and 0 <= start and n >= 0
                and start + n <= mem.depth):
            raise ValueError(f"words {start}..{start + n - 1} are outside {name} (depth {mem.depth})")
        return mem

    def mem_read(self, name: str, start: int, n: int) -> list[int]:
        data = self._memory(name, start, n).data
        get = self.driver.get
        return [get(data[start + i]) for i in range(n)]

    def mem_write(self, name: str, start: int, words) -> None:
        words = list(words)
        data = self._memory(name, start, len(words)).data
        set_ = self.driver.set
        for i, w in enumerate(words):
            set_(data[start + i], w)
