"""The contract between a machine and a device: how any device meets any machine.

A device's package (``hw/<device>/attach.py``) exports one :class:`DeviceKind`; the machine
builder (``serveros/machines.py``) knows devices only through this contract and the one list
of device kinds in ``serveros/devices.py``. The same contract covers a device's
transaction-level model and its RTL:

* :meth:`DeviceKind.attach_model` builds the model on the machine (its bus target, interrupt
  line, its wire to a medium, its DMA into :attr:`MachinePorts.memory`);
* for RTL, :meth:`DeviceKind.harness` makes the gateware the HDL simulator runs (its ``sync``
  domain clocked by :attr:`DeviceKind.clock`), and :meth:`DeviceKind.bind_rtl` joins that
  running gateware to the machine through a :class:`sim.bindings.access.SignalAccess` (ports by
  name, memories by hierarchical name) and the simulation's :class:`sim.bindings.HdlDriver`,
  whichever simulator runs it.

Either way the result is an :class:`Attached`: what the machine maps on its bus at
:attr:`DeviceSpec.base` and the interrupt line its operating system's driver waits on. The
machine builder does the mapping; the operating system binds a driver to each device by its
:attr:`DeviceSpec.kind`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .bus import Bus, BusTarget, IrqLine
from .kernel import Kernel
from .time import Clock

__all__ = ["IMPLS", "DeviceSpec", "MachinePorts", "Attached", "DeviceKind"]

#: How a device may be implemented in a run.
IMPLS = ("model", "rtl")


@dataclass(frozen=True)
class DeviceSpec:
    """One device of a machine's description.

    Attributes
    ----------
    kind : str
        The device kind (a key of ``serveros.devices.DEVICE_KINDS``: ``"lance"``, ``"disk"``,
        ``"timer"``, ...).
    name : str
        The device's name on its machine (``"le0"``, ``"rz0"``); with the machine's name it
        names bus windows, interrupt lines, stations and RTL instances.
    base : int
        Bus address of the device's register window.
    params : mapping
        Kind-specific parameters (a MAC, a buffer size, a disk image), checked by
        :meth:`DeviceKind.check`.
    """

    kind: str
    name: str
    base: int
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class MachinePorts:
    """What a machine offers its devices.

    Attributes
    ----------
    kernel : Kernel
    name : str
        The machine's name (``"server"``, ``"client0"``).
    bus : Bus
        The host bus the CPU reaches registers through.
    memory : sim.memory.Memory or None
        Main memory, the target of the devices' DMA (with its timing and page-ownership checks).
    media : dict
        The media the machine is wired to, by kind (``"ethernet"``: a
        :class:`sim.media.ethernet.Segment`; later ``"atm"``).
    """

    kernel: Kernel
    name: str
    bus: Bus
    memory: Any = None
    media: dict = field(default_factory=dict)


@dataclass
class Attached:
    """A device attached to a machine, as model or RTL.

    Attributes
    ----------
    spec : DeviceSpec
    impl : str
        ``"model"`` or ``"rtl"``.
    target : BusTarget
        What the machine maps at ``spec.base`` (``DeviceKind.window`` bytes).
    irq : IrqLine
        The device's interrupt line.
    parts : dict
        Kind-specific pieces a study or a test may look at (the model object, its segment
        station, wire statistics, the DMA server's counters, ...), and what the operating
        system's driver needs of the spec, checked by the kind (the AN2's ``"params"``: the
        software floor may not import a device's ``attach.py``).
    cleanup : list of callables
        What to call when the simulation ends (:meth:`close`): resources the attachment opened
        itself, such as a disk image it opened from a path.
    """

    spec: DeviceSpec
    impl: str
    target: BusTarget
    irq: IrqLine
    parts: dict = field(default_factory=dict)
    cleanup: list = field(default_factory=list)

    def close(self) -> None:
        """Run and forget :attr:`cleanup`, last first (idempotent)."""
        while self.cleanup:
            self.cleanup.pop()()


class DeviceKind:
    """One kind of device: subclass it in ``hw/<device>/attach.py`` and export an instance.

    Class attributes
    ----------------
    kind : str
        The kind's name (``"lance"``).
    window : int
        Bytes of the register window the machine maps.
    clock : Clock
        The device's clock (its RTL's ``sync`` domain).
    memories : tuple of str
        The harness memories :meth:`bind_rtl` reads or writes in blocks, as dotted hierarchical
        names from the harness (``"bridge.tx_mem"``); 32-bit words.
    """

    kind: str = ""
    window: int = 0
    clock: Clock
    memories: tuple[str, ...] = ()

    def check(self, spec: DeviceSpec) -> None:
        """Raise ``ValueError`` naming the problem for a bad base or parameter."""
        if not isinstance(spec.base, int) or spec.base < 0 or (self.window and spec.base % self.window):
            raise ValueError(f"{spec.kind} {spec.name}: base must be a multiple of "
                             f"{self.window:#x}, not {spec.base!r}")

    def attach_model(self, machine: MachinePorts, spec: DeviceSpec) -> Attached:
        """Build the transaction-level model on ``machine``."""
        raise NotImplementedError

    def harness(self, spec: DeviceSpec) -> Any:
        """A fresh ``wiring.Component`` (``sync`` domain) the HDL simulator runs for ``spec``."""
        raise NotImplementedError

    def harness_key(self, spec: DeviceSpec) -> str:
        """A name for the harness's parameters: equal keys give identical Verilog, so a
        Verilator build is reused (``"lance_128k_08002b000001"``)."""
        raise NotImplementedError

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any, driver: Any) -> Attached:
        """Join the running harness to ``machine``: ``access`` is its
        :class:`sim.bindings.access.SignalAccess`, ``driver`` the simulation's
        :class:`sim.bindings.HdlDriver` (watches must be registered here, before it runs)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<DeviceKind {self.kind}>"
