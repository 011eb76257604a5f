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
    Optional: the machine's memory size in bytes, as its description states it; if given it
    must equal ``machine.memory.size`` when the RTL is bound. Model and RTL both take the
    memory's own size.

The RTL is built once per drive (:meth:`DiskKind.harness_key`): the image's block count
(CAPACITY) and the memory size (the command-time DmaFault check) are the harness's strap
inputs, driven by :meth:`DiskKind.bind_rtl` at time 0, before the first clock edge, as a
real controller learns them from the drive and the machine's configuration.
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

__all__ = ["DiskKind", "DISK", "PARAMS"]

#: The parameters a disk :class:`~sim.devices.DeviceSpec` may carry.
PARAMS = ("image", "params", "mem_size")


def _image(spec: DeviceSpec) -> tuple[DiskImage, list]:
    """The spec's image, opening a path copy-on-write, and what closes what was opened here
    (:attr:`sim.devices.Attached.cleanup`: an image the caller opened stays open)."""
    image = spec.params["image"]
    if isinstance(image, DiskImage):
        return image, []
    image = DiskImage.open(image, persist=False)
    return image, [image.close]


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
        mem_size = spec.params.get("mem_size", 1)
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
        image, cleanup = _image(spec)
        irq = self._irq(machine, spec)
        controller = DiskControllerModel(machine.kernel, self.clock, memory=memory, image=image,
                                         irq=irq, params=spec.params.get("params"))
        return Attached(spec, "model", controller, irq,
                        parts={"controller": controller, "image": image}, cleanup=cleanup)

    # -- RTL ------------------------------------------------------------------------------------
    def harness(self, spec: DeviceSpec) -> Any:
        """A :class:`hw.disk.harness.DiskHarness` for the drive (any image, any memory)."""
        from .harness import DiskHarness
        self.check(spec)
        return DiskHarness(params=spec.params.get("params"))

    def harness_key(self, spec: DeviceSpec) -> str:
        """``disk_harness_<drive>``: the drive is ``rz26`` (the default) or a digest of its
        parameters. The image and the memory size are not in it (they are straps)."""
        self.check(spec)
        params = spec.params.get("params")
        if params is None or params == DiskParams.load():
            drive = "rz26"
        else:
            drive = hashlib.sha1(repr(params).encode()).hexdigest()[:12]
        return f"disk_harness_{drive}"

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
            If ``mem_size`` is given and is not the machine's memory size, or the image has
            more blocks than the drive (or the memory more than 4 GiB).
        """
        from sim.bindings.binder import bind_host_bus, bind_irq
        from sim.bindings.dma import DmaServer

        from .gateware import DriveFirmware
        from .mechanism import DiskMechanism
        from .media_bridge import MediaServer

        self.check(spec)
        memory = self._memory(machine, spec)
        mem_size = spec.params.get("mem_size", memory.size)
        if mem_size != memory.size:
            raise ValueError(f"disk {spec.name}: params mem_size is {mem_size:#x} bytes, but "
                             f"{machine.name!r} has {memory.size:#x}")
        if not 1 <= memory.size <= 1 << 32:
            raise ValueError(f"disk {spec.name}: the controller addresses at most 2**32 bytes, "
                             f"but {machine.name!r} has {memory.size:#x}")
        mechanism = DiskMechanism(spec.params.get("params"))
        image, cleanup = _image(spec)
        blocks = mechanism.params.geometry.blocks
        if not 1 <= image.block_count <= blocks:
            for close in cleanup:
                close()
            raise ValueError(f"disk {spec.name}: the image has {image.block_count} blocks, the "
                             f"drive 1 .. {blocks}")
        name = f"{machine.name}.{spec.name}"
        self._strap(access, driver, image.block_count, memory.size)
        bus = bind_host_bus(access, driver, self.clock, addr_width=ADDR_WIDTH, name=name)
        irq = bind_irq(access, driver, port="irq", name=f"{name}.irq")
        dma = DmaServer(access, driver, self.clock, memory, name=f"{name}.dma")
        firmware = DriveFirmware(mechanism, image)
        media = MediaServer(access, driver, firmware, name=f"{name}.media")
        return Attached(spec, "rtl", bus, irq, parts={"image": image, "firmware": firmware,
                                                      "dma": dma, "media": media},
                        cleanup=cleanup)

    @staticmethod
    def _strap(access: Any, driver: Any, capacity: int, mem_size: int) -> None:
        """Drive the harness's straps at the kernel's present time (0), before the first edge:
        a kernel entry, so that every backend's driver runs it inside its simulator."""
        straps = [(access.port("strap_capacity"), capacity),
                  (access.port("strap_mem_size"), mem_size)]

        def strap() -> None:
            for port, value in straps:
                driver.set(port, value)
        driver.kernel.call_at(driver.kernel.now, strap)

    def __repr__(self) -> str:
        return "<DeviceKind disk>"


#: The disk controller's device kind.
DISK = DiskKind()
