"""Building machines from their descriptions, each device as its model or as RTL.

This is the one place that chooses, per device, between a device's transaction-level model
and its RTL. Every device of every machine goes through its kind
(``serveros.devices.DEVICE_KINDS[spec.kind]``, a :class:`sim.devices.DeviceKind`):

* ``"model"``: ``kind.attach_model(ports, spec)``;
* ``"rtl"``: every RTL device of every machine goes into ONE
  :class:`sim.bindings.session.RtlSimulation` (instance ``f"{machine}_{device}"``), started once,
  then ``kind.bind_rtl(ports, spec, rtl.access(instance), rtl.driver)``.

Either way the builder maps the :class:`sim.devices.Attached` target on the machine's bus at
``spec.base`` (``kind.window`` bytes) and hands the software a :class:`sw.host.Host` whose
devices the operating system binds when the machine boots (:func:`sw.boot.boot`). Machines and
devices are built in their described order whatever their implementation, so a model run and
an RTL run attach the same stations in the same order.

A bare machine (os ``"none"``, :func:`serveros.machines.bare`) is built the same way and
nothing is bound to its devices: a device test or the LANCE exchange drives them itself through
``host.extra["bus"]`` and ``host.extra["devices"][name]`` (its :class:`~sim.devices.Attached`,
whose ``irq`` is the device's interrupt line).

A run with RTL devices calls :meth:`Simulation.run` (the RTL simulation's driver owns time)
instead of ``kernel.run()``; :meth:`Simulation.run` does the right one either way.

Example
-------
>>> k = Kernel()                                                   # doctest: +SKIP
>>> seg = Segment(k, seed=1)
>>> sim = Simulation(k, [server_spec("cheetah", image), client_spec(0)],
...                  media={"ethernet": seg}, rtl={"lance", "disk"})
>>> server, client = sim.hosts["server"], sim.hosts["client0"]
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sim.bus import Bus
from sim.cpu import CPU
from sim.devices import Attached, DeviceSpec, MachinePorts
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms import PROFILES
from sw.host import Host

from .machines import MachineSpec

log = logging.getLogger(__name__)

__all__ = ["RTL_BACKENDS", "Simulation", "build_machine", "device_kinds", "parse_rtl",
           "check_rtl"]

#: The HDL simulators RTL devices run on in a server run.
RTL_BACKENDS = ("verilator", "amaranth")


def device_kinds() -> Mapping:
    """The device kinds machines know (``serveros.devices.DEVICE_KINDS``)."""
    from .devices import DEVICE_KINDS
    return DEVICE_KINDS


def _names(text: str | Iterable[str]) -> list[str]:
    """``"a, b"`` or a list as a list of stripped non-empty names."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    return [s for s in names if s]


def parse_rtl(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"lance,disk"`` (or a list) as a tuple of device kinds, in the order
    :func:`device_kinds` lists them; ``""`` is no RTL device.

    Raises
    ------
    ValueError
        For an unknown kind or one named twice.
    """
    names = _names(text)
    known = device_kinds()
    for n in names:
        if n not in known:
            raise ValueError(f"unknown device kind {n!r}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a device kind is named twice in {text!r}")
    return tuple(k for k in known if k in names)


def check_rtl(rtl: Iterable[str], machines: Sequence[MachineSpec]) -> None:
    """Every kind of ``rtl`` must be a kind some machine has.

    Raises
    ------
    ValueError
        Naming the kind and the kinds the machines have.
    """
    have = tuple(dict.fromkeys(k for m in machines for k in m.kinds))
    for kind in rtl:
        if kind not in have:
            raise ValueError(f"no machine has a {kind} device (their devices: "
                             f"{', '.join(have) or 'none'})")


def _host(kernel: Kernel, spec: MachineSpec, media: Mapping) -> tuple[Host, MachinePorts]:
    """The machine's CPU, memory and bus, as a Host with no device yet."""
    profile = PROFILES[spec.profile]
    cpu = CPU(kernel, profile, f"{spec.name}.cpu")
    memory = (Memory(kernel, spec.memory_bytes, profile=profile, name=f"{spec.name}.mem")
              if spec.memory_bytes else None)
    bus = Bus(kernel, f"{spec.name}.bus")
    netdev = None
    if spec.ether is not None:
        from sw.libos.net.ether import StationDevice
        if "ethernet" not in media:
            raise ValueError(f"{spec.name}: its Ethernet interface needs media['ethernet']")
        netdev = StationDevice(media["ethernet"], spec.name, spec.ether)
    host = Host(name=spec.name, kernel=kernel, cpu=cpu, netdev=netdev, ip=spec.ip,
                memory=memory, seed=spec.seed,
                extra={"machine": spec, "os": spec.os, "bus": bus, "devices": {},
                       "booted": not spec.devices or spec.os == "none"})
    return host, MachinePorts(kernel, spec.name, bus, memory, dict(media))


def _map(host: Host, kind, attached: Attached) -> None:
    spec = attached.spec
    host.extra["bus"].map(spec.base, kind.window, attached.target, f"{host.name}.{spec.name}")
    host.extra["devices"][spec.name] = attached


def build_machine(kernel: Kernel, spec: MachineSpec, *, media: Mapping) -> Host:
    """Machine ``spec`` with every device as its model (a machine without RTL, which may join
    a simulation at any time)."""
    kinds = device_kinds()
    host, ports = _host(kernel, spec, media)
    for d in spec.devices:
        kind = kinds[d.kind]
        _map(host, kind, kind.attach_model(ports, d))
    return host


class Simulation:
    """Machines built from their descriptions on one kernel and its media.

    Parameters
    ----------
    kernel : Kernel
        At time 0.
    machines : sequence of MachineSpec
        Built in this order (names unique).
    media : mapping
        The media the machines are wired to, by kind (``{"ethernet": segment}``).
    rtl : str or iterable of str
        What runs as RTL (``"lance,disk"`` or a list): a device kind (every device of that
        kind, on every machine; some machine must have one) or one device by its RTL instance
        name (``"server_le0"``). The other devices run as their models.
    backend : str
        The HDL simulator of the RTL devices (:data:`RTL_BACKENDS`).
    waves_dir : path-like, optional
        With ``SERVEROS_WAVES=1``: the RTL devices' waveforms go here
        (:attr:`sim.bindings.session.RtlSimulation.waves`).

    Attributes
    ----------
    hosts : dict
        The built machines' :class:`sw.host.Host` by name, in order.
    rtl : RtlSimulation or None
        The RTL devices' simulation (None when every device is a model).

    Raises
    ------
    ValueError
        For an unknown or absent device kind, a bad device, a repeated machine name or an
        unknown backend.
    """

    def __init__(self, kernel: Kernel, machines: Sequence[MachineSpec], *, media: Mapping,
                 rtl: str | Iterable[str] = (), backend: str = "verilator",
                 waves_dir: str | Path | None = None):
        machines = list(machines)
        for m in machines:
            if not isinstance(m, MachineSpec):
                raise TypeError(f"machines must be MachineSpec, not {m!r}")
        names = [m.name for m in machines]
        if len(set(names)) != len(names):
            raise ValueError(f"machine names must be unique, not {names}")
        kinds = device_kinds()
        entries = _names(rtl)
        instances = [self.instance(m, d) for m in machines for d in m.devices]
        for e in entries:
            if e not in kinds and e not in instances:
                raise ValueError(f"rtl: {e!r} is neither a device kind ({', '.join(kinds)}) "
                                 f"nor a device of the simulation ({', '.join(instances)})")
        rtl = parse_rtl([e for e in entries if e in kinds])
        if backend not in RTL_BACKENDS:
            raise ValueError(f"RTL backend must be one of {', '.join(RTL_BACKENDS)}, "
                             f"not {backend!r}")
        check_rtl(rtl, machines)
        for m in machines:
            for d in m.devices:
                if d.kind not in kinds:
                    raise ValueError(f"{m.name}: unknown device kind {d.kind!r} of {d.name}; "
                                     f"known: {', '.join(kinds)}")
                kinds[d.kind].check(d)
        self.kernel = kernel
        self.media = dict(media)
        self.rtl_kinds = rtl
        self.rtl_instances = tuple(e for e in entries if e not in kinds)
        self.backend = backend
        self.machines = {m.name: m for m in machines}
        self.hosts: dict[str, Host] = {}
        self.rtl = None
        if rtl or self.rtl_instances:
            from sim.bindings.session import RtlSimulation
            self.rtl = RtlSimulation(kernel, backend, waves_dir=waves_dir)
            for m in machines:
                for d in m.devices:
                    if self.impl(m, d) == "rtl":
                        self.rtl.add(self.instance(m, d), kinds[d.kind], d)
            try:
                self.rtl.start()
            except BaseException:
                self.rtl.close()
                raise
        try:
            for m in machines:
                self.hosts[m.name] = self._build(m)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def instance(machine: MachineSpec, device: DeviceSpec) -> str:
        """The RTL instance name of ``device`` on ``machine``: ``server_le0``."""
        return f"{machine.name}_{device.name}"

    def impl(self, machine: MachineSpec, device: DeviceSpec) -> str:
        """``"rtl"`` or ``"model"``: how ``machine``'s ``device`` runs in this simulation."""
        rtl = device.kind in self.rtl_kinds or self.instance(machine, device) in self.rtl_instances
        return "rtl" if rtl else "model"

    def _build(self, spec: MachineSpec) -> Host:
        kinds = device_kinds()
        host, ports = _host(self.kernel, spec, self.media)
        for d in spec.devices:
            kind = kinds[d.kind]
            if self.impl(spec, d) == "model":
                attached = kind.attach_model(ports, d)
            else:
                inst = self.instance(spec, d)
                attached = kind.bind_rtl(ports, d, self.rtl.access(inst), self.rtl.driver)
            _map(host, kind, attached)
        return host

    def add(self, spec: MachineSpec) -> Host:
        """Build one more machine now (its devices run as models: the RTL simulation has
        started); returns its host.

        Raises
        ------
        ValueError
            For a name already taken, or a device of a kind that runs as RTL here.
        """
        if spec.name in self.machines:
            raise ValueError(f"a machine named {spec.name!r} is already in the simulation")
        late = [d.name for d in spec.devices if self.impl(spec, d) == "rtl"]
        if late:
            raise ValueError(f"{spec.name}: RTL devices ({', '.join(late)}) must be in the "
                             f"simulation before it starts")
        host = build_machine(self.kernel, spec, media=self.media)
        self.machines[spec.name] = spec
        self.hosts[spec.name] = host
        return host

    def run(self) -> None:
        """Run until every non-daemon task has finished: the RTL simulation's driver owns time
        when there is RTL, else the kernel runs alone."""
        if self.rtl is None:
            self.kernel.run()
        else:
            self.rtl.run()

    @property
    def rtl_label(self) -> str:
        """What runs as RTL, comma-separated (``"lance,disk"``; ``""`` for none)."""
        return ",".join(self.rtl_kinds + self.rtl_instances)

    @property
    def waves(self) -> dict:
        """The RTL instances' waveforms (``SERVEROS_WAVES=1``), by instance."""
        return self.rtl.waves if self.rtl is not None else {}

    def close(self) -> None:
        """Free the RTL simulation and what the devices' attachments opened, such as a disk
        image opened from its path (idempotent)."""
        if self.rtl is not None:
            self.rtl.close()
        for host in self.hosts.values():
            for attached in host.extra.get("devices", {}).values():
                attached.close()

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Simulation {', '.join(self.machines)}"
                + (f"; rtl {self.rtl_label} on {self.backend}" if self.rtl else "") + ">")
