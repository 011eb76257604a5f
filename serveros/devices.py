"""The device kinds machines are built from: one line per device.

A device lives in its own package, ``hw/<device>/``: its register map, gateware, model, timing
contract and ``attach.py``, which exports one :class:`sim.devices.DeviceKind` (how the device
meets a machine, as its model or as its RTL). Adding a device is writing that package and
adding its kind here; :mod:`serveros.machines` builds machines from these kinds only.
"""
from __future__ import annotations

from hw.an2.attach import AN2
from hw.disk.attach import DISK
from hw.lance.attach import LANCE
from hw.timer.attach import TIMER
from sim.devices import DeviceKind

__all__ = ["DEVICE_KINDS"]

#: Device kinds by name (:attr:`sim.devices.DeviceSpec.kind`).
DEVICE_KINDS: dict[str, DeviceKind] = {
    "lance": LANCE,
    "disk": DISK,
    "timer": TIMER,
    "an2": AN2,
}
