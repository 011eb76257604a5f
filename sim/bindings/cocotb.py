"""Binding to cocotb 2.x (Icarus, Verilator): the kernel runs inside a cocotb test.

The HDL simulator owns time. Start the design's clock inside the simulator
(``cocotb.clock.Clock(dut.clk, period, unit="ns", impl="gpi")``: no Python per edge), build the
adapters on the driver, spawn the kernel tasks, then ``await driver.run()``. Python is resumed
only by a :class:`~cocotb.triggers.Timer` to the kernel's next entry or by a value change of a
watched signal (``ack``, ``irq``), never once per clock cycle.

Time: build with ``timescale=("1ns", "1ps")`` so the simulator's precision is 1 ps;
:func:`sim_time_ps` reads ``get_sim_time("ps")`` and checks it is whole.

:class:`CocotbAccess` names the design's ports and memories for a device's binding
(:class:`sim.bindings.access.SignalAccess`).
"""
from __future__ import annotations

from typing import Any

from sim.kernel import Kernel

from . import BindingError, HdlDriver

__all__ = ["CocotbDriver", "CocotbAccess", "sim_time_ps"]


def sim_time_ps() -> int:
    """The simulator's current time in integer picoseconds."""
    from cocotb.simtime import get_sim_time
    t = get_sim_time("ps")
    whole = round(t)
    if abs(t - whole) > 1e-3:
        raise BindingError(f"simulator time {t} ps is not whole: build with timescale 1ns/1ps")
    return whole


class CocotbDriver(HdlDriver):
    """Run a :class:`Kernel` inside a cocotb test, the HDL simulator owning time.

    Values that are not resolvable (X or Z, e.g. before the first clock edge on Icarus) read as
    0: a watched line that has never been driven has not risen.

    Parameters
    ----------
    kernel : Kernel
        The kernel to run; its time must equal the simulator's when :meth:`run` starts.
    until : int, optional
        Stop at this time (ps) even if tasks are still live.
    """

    def __init__(self, kernel: Kernel, *, until: int | None = None):
        super().__init__(kernel, until=until)

    def get(self, signal: Any) -> int:
        v = signal.value
        return int(v) if v.is_resolvable else 0

    def set(self, signal: Any, value: int) -> None:
        signal.value = value

    async def run(self) -> None:
        """The driver loop; returns when every non-daemon kernel task has finished."""
        from cocotb.triggers import First, Timer

        now = sim_time_ps()
        if self.kernel.now > now:
            raise BindingError(f"kernel time {self.kernel.now} ps is ahead of the simulator's {now} ps")
        self.kernel.run_until(now)
        self._start()
        changes = [s.value_change for s in self.watched_signals]
        while not self._finished():
            t = self._deadline()
            now = sim_time_ps()
            if t is not None and t <= now:
                self._wake(now)
                continue
            triggers = list(changes)
            if t is not None:
                triggers.append(Timer(t - now, unit="ps"))
            await (First(*triggers) if len(triggers) > 1 else triggers[0])
            self._wake(sim_time_ps())


class CocotbAccess:
    """The :class:`sim.bindings.access.SignalAccess` of a design running under cocotb.

    Ports are the top's signals by name (``dut.bus__ack``); memories are found by dotted path
    in the design's hierarchy (``"bridge.tx_mem"``: ``dut.bridge.tx_mem``), one word per
    element.

    Parameters
    ----------
    dut : cocotb handle
        The top level (cocotb's ``dut``).
    driver : CocotbDriver
        The driver of the running test.
    """

    def __init__(self, dut: Any, driver: CocotbDriver):
        if not isinstance(driver, CocotbDriver):
            raise TypeError(f"driver must be a CocotbDriver, not {driver!r}")
        self.dut = dut
        self.driver = driver
        self._mems: dict[str, Any] = {}

    def port(self, name: str) -> Any:
        try:
            return getattr(self.dut, name)
        except AttributeError:
            raise BindingError(f"the design has no port {name!r}") from None

    def _memory(self, name: str) -> Any:
        mem = self._mems.get(name)
        if mem is None:
            mem = self.dut
            try:
                for part in name.split("."):
                    mem = getattr(mem, part)
            except AttributeError:
                raise BindingError(f"the design has no memory {name!r}") from None
            self._mems[name] = mem
        return mem

    def mem_read(self, name: str, start: int, n: int) -> list[int]:
        mem, get = self._memory(name), self.driver.get
        return [get(mem[start + i]) for i in range(n)]

    def mem_write(self, name: str, start: int, words) -> None:
        mem, set_ = self._memory(name), self.driver.set
        for i, w in enumerate(words):
            set_(mem[start + i], w)
