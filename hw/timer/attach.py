"""How the timer meets a machine: a 16-byte register window and an interrupt line.

:data:`TIMER` is the timer's :class:`sim.devices.DeviceKind`, the whole of what a machine needs
to run the device as its model or as its RTL:

* the model is :class:`hw.timer.model.TimerModel`, a :class:`sim.bus.BusTarget` driving an
  :class:`sim.bus.IrqLine`;
* the RTL is the :class:`hw.timer.gateware.Timer` component itself (its ports are the host bus
  and ``irq``, which change only at bus-access and interrupt rate), joined to the machine by the
  generic binder: a host-bus initiator and an interrupt mirror (:mod:`sim.bindings.binder`).

The timer takes no parameters.
"""
from __future__ import annotations

from typing import Any

from sim.bus import IrqLine
from sim.devices import Attached, DeviceKind, DeviceSpec, MachinePorts
from sim.time import Clock

from .model import TimerModel
from .registers import ADDR_WIDTH, WINDOW_SIZE

__all__ = ["TimerKind", "TIMER"]


class TimerKind(DeviceKind):
    """The interval timer (see the module docstring)."""

    kind = "timer"
    window = WINDOW_SIZE
    #: The CPU clock it counts: 25 MHz on the DECstation 5000/125 (hw/timer/registers.py).
    clock = Clock.from_hz(25_000_000, "timer")

    def check(self, spec: DeviceSpec) -> None:
        super().check(spec)
        if spec.params:
            raise ValueError(f"timer {spec.name}: takes no parameters, not "
                             f"{', '.join(map(repr, spec.params))}")

    def attach_model(self, machine: MachinePorts, spec: DeviceSpec) -> Attached:
        self.check(spec)
        irq = IrqLine(machine.kernel, f"{machine.name}.{spec.name}.irq")
        model = TimerModel(machine.kernel, self.clock, irq)
        return Attached(spec, "model", model, irq, parts={"model": model})

    def harness(self, spec: DeviceSpec) -> Any:
        from .gateware import Timer
        return Timer()

    def harness_key(self, spec: DeviceSpec) -> str:
        return "timer"

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any,
                 driver: Any) -> Attached:
        from sim.bindings.binder import bind_host_bus, bind_irq
        self.check(spec)
        name = f"{machine.name}.{spec.name}"
        bus = bind_host_bus(access, driver, self.clock, addr_width=ADDR_WIDTH, name=name)
        irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
        return Attached(spec, "rtl", bus, irq)


#: The timer's device kind.
TIMER = TimerKind()
