"""The device kinds machines are built from: one line per device.

A device lives in its own package, ``hw/<device>/``: its register map, gateware, model, timing
contract and ``attach.py``, which exports one :class:`sim.devices.DeviceKind` (how the device
meets a machine, as its model or as its RTL). Adding a device is writing that package and
adding its kind here; :mod:`serveros.machines` builds machines from these kinds only.
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.disk.attach import DISK
from hw.lance.attach import LANCE, StationWire
from hw.lance.model import LanceModel
from hw.lance.registers import BUFFER_RAM_SIZE_DEFAULT, DEFAULT_MAC
from hw.timer.attach import TIMER
from sim.bus import Bus, IrqLine, Window
from sim.devices import DeviceKind, DeviceSpec, MachinePorts
from sim.kernel import Kernel
from sim.media.ethernet import Segment, Station

__all__ = ["DEVICE_KINDS", "LanceCard", "attach_lance_model"]

#: Device kinds by name (:attr:`sim.devices.DeviceSpec.kind`).
DEVICE_KINDS: dict[str, DeviceKind] = {
    "lance": LANCE,
    "disk": DISK,
    "timer": TIMER,
}


# -- until serveros/machines.py builds machines from descriptions ----------------------------------
@dataclass
class LanceCard:
    """A LANCE model mapped on a bus by :func:`attach_lance_model`."""

    model: LanceModel
    irq: IrqLine
    window: Window
    base: int
    station: Station | None
    wire: StationWire | None


def attach_lance_model(kernel: Kernel, bus: Bus, base: int, *, segment: Segment | None = None,
                       name: str = "le0", mac: bytes | str = DEFAULT_MAC,
                       ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT) -> LanceCard:
    """Map a LANCE model (:meth:`hw.lance.attach.LanceKind.attach_model`) at ``base`` on
    ``bus``, its station ``name`` on ``segment`` (none: a free, silent wire).

    Raises
    ------
    ValueError
        For a misaligned base, a malformed MAC or buffer size, or a window that overlaps another.
    """
    machine = MachinePorts(kernel, name, bus, media={} if segment is None else {"ethernet": segment})
    a = LANCE.attach_model(machine, DeviceSpec("lance", name, base,
                                               {"mac": mac, "ram_bytes": ram_bytes}))
    window = bus.map(base, LANCE.window, a.target, name)
    return LanceCard(a.parts["model"], a.irq, window, base, a.parts["station"], a.parts["wire"])
