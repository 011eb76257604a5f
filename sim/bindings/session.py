"""One RTL simulation for every device of every machine that runs as RTL.

:class:`RtlSimulation` gathers the RTL device instances of a run (``add``), builds or loads them
on one backend (``start``), hands each device's binding its
:class:`sim.bindings.access.SignalAccess` (``access``) and the one :class:`sim.bindings.HdlDriver`
that owns time (``driver``), then runs the kernel against them (``run`` instead of
``kernel.run()``)::

    sim = RtlSimulation(kernel, "verilator")
    sim.add("server_le0", LANCE, spec)          # each instance: a DeviceKind and its DeviceSpec
    sim.start()
    attached = LANCE.bind_rtl(machine, spec, sim.access("server_le0"), sim.driver)
    sim.run()
    sim.close()

Backends:

* ``"verilator"``: one Verilator build per distinct ``kind.harness_key(spec)`` (cached under
  ``build/hdl/<key>/``), one independent model per instance, all stepped in time order by one
  :class:`sim.bindings.verilator.VerilatorDirectDriver`, each at its kind's clock;
* ``"amaranth"``: one Amaranth simulator over a top that holds every instance's harness in a
  clock domain of its own (the harness's ``sync`` renamed to the instance's name), each domain
  clocked at its kind's clock.

With ``SERVEROS_WAVES=1`` each instance's waveform is written (:attr:`RtlSimulation.waves`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sim.devices import DeviceKind, DeviceSpec
from sim.kernel import Kernel
from sim.time import Clock

from . import BindingError, DriverStats, HdlDriver
from .build import BUILD_ROOT, waves_requested

__all__ = ["BACKENDS", "RtlSimulation"]

#: The backends an :class:`RtlSimulation` runs on.
BACKENDS = ("verilator", "amaranth")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = ("comb", "sync")


class RtlSimulation:
    """The RTL devices of one simulation, on one backend, driving one kernel.

    Parameters
    ----------
    kernel : Kernel
        The simulation's kernel, at time 0.
    backend : str
        ``"verilator"`` or ``"amaranth"``.
    waves_dir : path, optional
        Where the waveforms go when ``SERVEROS_WAVES=1`` (``<instance>.vcd`` for Verilator, one
        ``rtl.vcd`` for Amaranth); default: beside each build (``build/hdl/...``).
    until : int, optional
        Stop at this time (ps) even if kernel tasks are still live.

    Attributes
    ----------
    kernel : Kernel
    backend : str
    """

    def __init__(self, kernel: Kernel, backend: str = "verilator", *,
                 waves_dir: Path | str | None = None, until: int | None = None):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel must be a sim.kernel.Kernel, not {kernel!r}")
        if backend not in BACKENDS:
            raise ValueError(f"RTL backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if until is not None and (not isinstance(until, int) or until < 0):
            raise ValueError(f"until must be a non-negative integer time in ps, not {until!r}")
        self.kernel = kernel
        self.backend = backend
        self.waves_dir = Path(waves_dir) if waves_dir is not None else None
        self.until = until
        self._devices: dict[str, tuple[DeviceKind, DeviceSpec]] = {}
        self._access: dict[str, Any] = {}
        self._driver: HdlDriver | None = None
        self._run = None
        self._close = None
        self._waves: dict[str, Path] = {}
        self._state = "adding"          # -> "started" -> "ran" -> "closed"

    # -- building ----------------------------------------------------------------------------
    def add(self, instance: str, kind: DeviceKind, spec: DeviceSpec) -> None:
        """Put device ``spec`` of kind ``kind`` in the simulation as ``instance``
        (``"server_le0"``; unique, ``[A-Za-z_][A-Za-z0-9_]*``)."""
        if self._state != "adding":
            raise BindingError(f"cannot add {instance!r}: the RTL simulation has already started")
        if not isinstance(instance, str) or not _NAME.match(instance) or instance in _RESERVED:
            raise ValueError(f"instance name must match [A-Za-z_][A-Za-z0-9_]* and not be "
                             f"{' or '.join(_RESERVED)}, not {instance!r}")
        if instance in self._devices:
            raise ValueError(f"instance {instance!r} is already in the RTL simulation")
        if not isinstance(kind, DeviceKind):
            raise TypeError(f"kind must be a sim.devices.DeviceKind, not {kind!r}")
        if not isinstance(spec, DeviceSpec):
            raise TypeError(f"spec must be a sim.devices.DeviceSpec, not {spec!r}")
        if spec.kind != kind.kind:
            raise ValueError(f"{instance}: spec is of kind {spec.kind!r}, not {kind.kind!r}")
        if not isinstance(getattr(kind, "clock", None), Clock):
            raise TypeError(f"{kind!r} has no clock (a sim.time.Clock)")
        kind.check(spec)
        self._devices[instance] = (kind, spec)

    @property
    def instances(self) -> list[str]:
        """The instances, in the order they were added."""
        return list(self._devices)

    def start(self) -> None:
        """Build (or load) every instance and make the driver; then bind the devices."""
        if self._state != "adding":
            raise BindingError("the RTL simulation has already started")
        if not self._devices:
            raise BindingError("the RTL simulation has no device: add() one before start()")
        if self.backend == "verilator":
            self._start_verilator()
        else:
            self._start_amaranth()
        self._state = "started"

    def _start_verilator(self) -> None:
        from .verilator import VerilatorAccess, VerilatorDirectDriver, build
        models = []
        waves = []
        try:
            for instance, (kind, spec) in self._devices.items():
                key = kind.harness_key(spec)
                model = build(lambda k=kind, s=spec: k.harness(s), f"{kind.kind}_harness",
                              memories=kind.memories, design=key)
                models.append((model, kind.clock))
                self._access[instance] = VerilatorAccess(model)
                waves.append(self.waves_dir / f"{instance}.vcd" if self.waves_dir else None)
            driver = VerilatorDirectDriver(models, self.kernel, until=self.until, waves=waves)
        except BaseException:
            for model, _ in models:
                model.close()
            raise
        self._driver = driver
        self._run = driver.run
        self._waves = {i: w for i, w in zip(self._devices, driver.wave_files) if w is not None}

        def close() -> None:
            for model, _ in models:
                model.close()
        self._close = close

    def _start_amaranth(self) -> None:
        from amaranth.hdl import ClockDomain, DomainRenamer, Elaboratable, Module
        from amaranth.sim import Simulator

        from .amaranth import AmaranthAccess, AmaranthDriver, add_clock

        harnesses = {i: kind.harness(spec) for i, (kind, spec) in self._devices.items()}

        class _Top(Elaboratable):
            def elaborate(self, platform):
                m = Module()
                for instance, harness in harnesses.items():
                    m.domains += ClockDomain(instance, reset_less=True)
                    m.submodules[instance] = DomainRenamer({"sync": instance})(harness)
                return m

        sim = Simulator(_Top())
        for instance, (kind, _) in self._devices.items():
            add_clock(sim, kind.clock, domain=instance)
        driver = AmaranthDriver(sim, self.kernel, until=self.until)
        self._driver = driver
        self._access = {i: AmaranthAccess(h, driver) for i, h in harnesses.items()}
        if not waves_requested():
            self._run = sim.run
            return
        vcd = (self.waves_dir or BUILD_ROOT / "_session" / "amaranth-waves") / "rtl.vcd"
        vcd.parent.mkdir(parents=True, exist_ok=True)
        self._waves = dict.fromkeys(self._devices, vcd)

        def run_traced() -> None:
            with sim.write_vcd(str(vcd)):
                sim.run()
        self._run = run_traced

    # -- using --------------------------------------------------------------------------------
    def _started(self, what: str) -> None:
        if self._state == "adding":
            raise BindingError(f"{what}: start() the RTL simulation first")
        if self._state == "closed":
            raise BindingError(f"{what}: the RTL simulation is closed")

    def access(self, instance: str) -> Any:
        """The :class:`sim.bindings.access.SignalAccess` of ``instance``."""
        self._started(f"access({instance!r})")
        try:
            return self._access[instance]
        except KeyError:
            raise BindingError(f"no RTL instance {instance!r}; instances: "
                               f"{', '.join(self._devices)}") from None

    @property
    def driver(self) -> HdlDriver:
        """The driver that owns time (register watches on it before :meth:`run`; its
        ``stats`` stay readable after :meth:`close`)."""
        if self._driver is None:
            raise BindingError("driver: start() the RTL simulation first")
        return self._driver

    def run(self) -> None:
        """Run the kernel and every device until every non-daemon kernel task has finished."""
        self._started("run()")
        if self._state == "ran":
            raise BindingError("the RTL simulation has already run")
        self._state = "ran"
        self._run()

    def close(self) -> None:
        """Free the simulation (the Verilated models); idempotent."""
        if self._close is not None:
            self._close()
            self._close = None
        if self._state != "adding":
            self._state = "closed"

    def __enter__(self) -> "RtlSimulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def waves(self) -> dict[str, Path]:
        """The waveform of each instance (only when ``SERVEROS_WAVES=1``; Amaranth's instances
        share one file)."""
        return dict(self._waves)

    @property
    def stats(self) -> DriverStats:
        """The driver's wake counts (Python wakes per transaction, not per cycle)."""
        if self._driver is None:
            raise BindingError("stats: start() the RTL simulation first")
        return self._driver.stats
