"""The timer's device kind (hw/timer/attach.py): one machine, the timer as model and as RTL.

The same programs of register accesses and interrupts (tests/hw/timer_program.py) run on a
machine whose bus maps the timer at a TURBOchannel-like address, with the timer attached by
``TIMER.attach_model`` or run as RTL (Verilator and Amaranth's simulator) and bound by
``TIMER.bind_rtl``, the choice made by :class:`serveros.simulation.Simulation` for a bare
machine (no operating system: the program is the timer's driver): the traces (every access's
completion time and value, every irq edge) are identical.
"""
from __future__ import annotations

import pytest

from hw.timer.attach import TIMER
from serveros.devices import DEVICE_KINDS
from serveros.machines import bare
from serveros.rtl import simulator_missing
from serveros.simulation import Simulation
from sim.bus import Bus
from sim.devices import DeviceSpec, MachinePorts
from sim.kernel import Kernel

from timer_program import CLOCK, stimulus_program, timer_program

BASE = 0x1F00_0040
SPEC = DeviceSpec("timer", "tm0", BASE)


class _Registers:
    """The timer's registers as the program sees them: offsets into the machine's bus."""

    def __init__(self, bus: Bus, base: int):
        self.bus, self.base = bus, base

    async def read(self, offset: int) -> int:
        return await self.bus.read(self.base + offset)

    async def write(self, offset: int, value: int) -> None:
        await self.bus.write(self.base + offset, value)


def run_machine(impl: str, program):
    """``program`` on a bare machine (:func:`serveros.machines.bare`) with the timer as ``impl``
    (``model``, ``verilator`` or ``amaranth``), built by :class:`serveros.simulation.Simulation`.
    Returns (trace, Python wakes of the RTL run or None)."""
    k = Kernel()
    rtl = () if impl == "model" else ("timer",)
    with Simulation(k, [bare("m0", (SPEC,))], media={}, rtl=rtl,
                    backend="verilator" if impl == "model" else impl) as sim:
        host = sim.hosts["m0"]
        trace = program(k, _Registers(host.extra["bus"], BASE), host.extra["devices"]["tm0"].irq)
        sim.run()
        return trace, sim.rtl.driver.stats.wakes if sim.rtl is not None else None


def test_the_timer_is_a_listed_kind_with_its_bus_window_and_clock() -> None:
    assert DEVICE_KINDS["timer"] is TIMER
    assert (TIMER.kind, TIMER.window, TIMER.clock.period) == ("timer", 16, CLOCK.period)


@pytest.mark.parametrize("spec, match", [
    (DeviceSpec("timer", "tm0", BASE + 4), "base must be a multiple of 0x10"),
    (DeviceSpec("timer", "tm0", BASE, {"load": 5}), "takes no parameters"),
])
def test_bad_specs_are_named(spec, match) -> None:
    k = Kernel()
    with pytest.raises(ValueError, match=match):
        TIMER.attach_model(MachinePorts(k, "m0", Bus(k)), spec)


@pytest.mark.parametrize("impl", ["verilator", "amaranth"])
def test_model_and_rtl_run_the_same_program_to_the_picosecond(impl) -> None:
    if impl == "verilator":
        reason = simulator_missing("verilator")
        if reason:
            pytest.skip(reason)
    model, _ = run_machine("model", timer_program)
    rtl, wakes = run_machine(impl, timer_program)
    assert sum(label.startswith("drv: irq ") for _, label in model) == 4   # its interrupts
    assert rtl == model
    assert wakes * 10 < model[-1][0] // CLOCK.period          # woken per transaction
    # Random traffic: back-to-back and concurrent accesses, irq edges at any cycle. Two
    # hardware events of one picosecond (an access completing, an irq edge) may be listed in
    # either order (tests/hw/test_timer.py, same_events), so the traces are compared sorted.
    model, _ = run_machine("model", stimulus_program(7))
    rtl, _ = run_machine(impl, stimulus_program(7))
    assert any(label == "irq=1" for _, label in model)
    assert sorted(rtl) == sorted(model)
