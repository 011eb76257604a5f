"""How the disk controller meets a machine: its bus window, its interrupt, DMA into main memory.

:data:`DISK` is the controller's :class:`sim.devices.DeviceKind`. Model or RTL, the controller
is a 64-byte register window (:data:`hw.disk.registers.WINDOW_SIZE`) on the machine's bus, an
interrupt line named ``f"{machine}.{spec.name}.irq"``, a DMA master on the machine's main
memory (``machine.memory``: its timing and page-ownership check) and the media, a
:class:`hw.disk.image.DiskImage`:

* the model is a :class:`hw.disk.model.DiskControllerModel`;
* the RTL runs :class:`hw.disk.harness.DiskHarness` in an HDL simulator: its host bus and
  interrupt are joined by :mod:`sim.bindings.binder`, its DMA bridge is served by a
  :class:`sim.bindings.dma.DmaServer` on the machine's memory, and its media port by the drive
  firmware (:class:`hw.disk.gateware.DriveFirmware`) over the same image, so reads and
  committed writes reach the image as the model's do.

The two agree to the picosecond (interrupts, memory, image: tests/hw/test_disk_cosim.py),
a burst the memory refuses included (the bridge ends it with the DMA bus's ``err`` and the
controller its command with DmaFault, as the model does), but where the RTL cannot follow: a
memory-to-device burst takes the bytes the memory holds at its start, the model those at its
end (counted as ``stale``); a Reset in the middle of a burst into memory lands the words the
controller gave, the model the whole burst.

Parameters (:attr:`sim.devices.DeviceSpec.params`):

``image``
    The media: an open :class:`~hw.disk.image.DiskImage`, or the path of an image file, which
    is then opened copy-on-write (``DiskImage.open(path, persist=False)``: the run never
    changes the file). Required.
``params``
    The drive, a :class:`hw.disk.mechanism.DiskParams` (default: the DEC RZ26).
``mem_size``
    RTL only: the host memory size the controller is built with (its command-time DmaFault
    check): default :data:`DEFAULT_MEM_SIZE` (32 MiB, the 5000/125's); it must equal the
    machine's memory size when the RTL is bound (the model takes the memory's own size).
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

from sim.bus import IrqLine
from sim.devices import Attached, DeviceKind, DeviceSpec, MachinePorts
from sim.memory import Memory
from sim.time import Clock

from .image import DiskImage
from .mechanism import DiskParams
from .model import DiskControllerModel
from .registers import ADDR_WIDTH, CLOCK_PERIOD_PS, WINDOW_SIZE

__all__ = ["DiskKind", "DISK", "PARAMS", "DEFAULT_MEM_SIZE"]

#: The parameters a disk :class:`~sim.devices.DeviceSpec` may carry.
PARAMS = ("image", "params", "mem_size")
#: Host memory the RTL controller is built for when ``mem_size`` is not given (the 5000/125's).
DEFAULT_MEM_SIZE = 32 << 20


def _image(spec: DeviceSpec) -> DiskImage:
    """The spec's image, opening a path copy-on-write."""
    image = spec.params["image"]
    if isinstance(image, DiskImage):
        return image
    return DiskImage.open(image, persist=False)


def _capacity(spec: DeviceSpec) -> int:
    """The image's block count (a path is opened only to read its header)."""
    image = spec.params["image"]
    if isinstance(image, DiskImage):
        return image.block_count
    with DiskImage.open(image, persist=False) as opened:
        return opened.block_count


class DiskKind(DeviceKind):
    """The SCSI-style disk controller with a DEC RZ26 (see the module docstring)."""

    kind = "disk"
    window = WINDOW_SIZE
    clock = Clock(CLOCK_PERIOD_PS)
    memories = ("dma.mem", "media.mem")

    def check(self, spec: DeviceSpec) -> None:
        """Raise ``ValueError`` naming a bad base or parameter."""
        super().check(spec)
        unknown = sorted(set(spec.params) - set(PARAMS))
        if unknown:
            raise ValueError(f"disk {spec.name}: unknown parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(PARAMS)})")
        image = spec.params.get("image")
        if not isinstance(image, (DiskImage, str, os.PathLike)):
            raise ValueError(f"disk {spec.name}: image must be a hw.disk.image.DiskImage or the "
                             f"path of an image file, not {image!r}")
        params = spec.params.get("params")
        if params is not None and not isinstance(params, DiskParams):
            raise ValueError(f"disk {spec.name}: params must be a hw.disk.mechanism.DiskParams, "
                             f"not {params!r}")
        mem_size = spec.params.get("mem_size", DEFAULT_MEM_SIZE)
        if isinstance(mem_size, bool) or not isinstance(mem_size, int) \
                or not 1 <= mem_size <= 1 << 32:
            raise ValueError(f"disk {spec.name}: mem_size must be an integer in 1 .. 2**32 "
                             f"bytes, not {mem_size!r}")

    @staticmethod
    def _memory(machine: MachinePorts, spec: DeviceSpec) -> Memory:
        if not isinstance(machine.memory, Memory):
            raise ValueError(f"disk {spec.name}: machine {machine.name!r} has no main memory "
                             f"(a sim.memory.Memory) for the controller's DMA")
        return machine.memory

    @staticmethod
    def _irq(machine: MachinePorts, spec: DeviceSpec) -> IrqLine:
        return IrqLine(machine.kernel, f"{machine.name}.{spec.name}.irq")

    def attach_model(self, machine: MachinePorts, spec: DeviceSpec) -> Attached:
        """A :class:`~hw.disk.model.DiskControllerModel` on ``machine.memory`` and the image.

        Returns
        -------
        Attached
            ``parts``: ``controller`` (the model) and ``image``.
        """
        self.check(spec)
        memory = self._memory(machine, spec)
        image = _image(spec)
        irq = self._irq(machine, spec)
        controller = DiskControllerModel(machine.kernel, self.clock, memory=memory, image=image,
                                         irq=irq, params=spec.params.get("params"))
        return Attached(spec, "model", controller, irq,
                        parts={"controller": controller, "image": image})

    # -- RTL ------------------------------------------------------------------------------------
    def harness(self, spec: DeviceSpec) -> Any:
        """A :class:`hw.disk.harness.DiskHarness` for the image's capacity and the drive."""
        from .harness import DiskHarness
        self.check(spec)
        return DiskHarness(params=spec.params.get("params"), capacity=_capacity(spec),
                           mem_size=spec.params.get("mem_size", DEFAULT_MEM_SIZE))

    def harness_key(self, spec: DeviceSpec) -> str:
        """``disk_<drive>_<capacity>_<mem_size>``: the drive is ``rz26`` (the default) or a
        digest of its parameters."""
        self.check(spec)
        params = spec.params.get("params")
        if params is None or params == DiskParams.load():
            drive = "rz26"
        else:
            drive = hashlib.sha1(repr(params).encode()).hexdigest()[:12]
        mem_size = spec.params.get("mem_size", DEFAULT_MEM_SIZE)
        return f"disk_{drive}_{_capacity(spec)}_{mem_size:x}"

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any,
                 driver: Any) -> Attached:
        """Join a running :class:`~hw.disk.harness.DiskHarness` to ``machine``.

        Returns
        -------
        Attached
            ``parts``: ``image``, ``firmware`` (the :class:`~hw.disk.gateware.DriveFirmware`),
            ``dma`` (the :class:`sim.bindings.dma.DmaServer`) and ``media`` (the
            :class:`~hw.disk.media_bridge.MediaServer`).

        Raises
        ------
        ValueError
            If the harness was built for another memory size than the machine's.
        """
        from sim.bindings.binder import bind_host_bus, bind_irq
        from sim.bindings.dma import DmaServer

        from .gateware import DriveFirmware
        from .mechanism import DiskMechanism
        from .media_bridge import MediaServer

        self.check(spec)
        memory = self._memory(machine, spec)
        mem_size = spec.params.get("mem_size", DEFAULT_MEM_SIZE)
        if mem_size != memory.size:
            raise ValueError(f"disk {spec.name}: the RTL is built for {mem_size:#x} bytes of "
                             f"memory (params mem_size), but {machine.name!r} has "
                             f"{memory.size:#x}")
        image = _image(spec)
        name = f"{machine.name}.{spec.name}"
        bus = bind_host_bus(access, driver, self.clock, addr_width=ADDR_WIDTH, name=name)
        irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
        dma = DmaServer(access, driver, self.clock, memory, name=f"{name}.dma")
        firmware = DriveFirmware(DiskMechanism(spec.params.get("params")), image)
        media = MediaServer(access, driver, firmware, name=f"{name}.media")
        return Attached(spec, "rtl", bus, irq, parts={"image": image, "firmware": firmware,
                                                      "dma": dma, "media": media})

    def __repr__(self) -> str:
        return "<DeviceKind disk>"


#: The disk controller's device kind.
DISK = DiskKind()
