"""The generic pieces a device's RTL binding (``DeviceKind.bind_rtl``) is made of.

Written against :class:`sim.bindings.access.SignalAccess`, so one binding serves every backend:

* :func:`bind_host_bus`: the device's HostBus register window as a :class:`sim.bus.BusTarget`
  (a :class:`sim.bindings.HostBusInitiator` on ports ``<prefix>__addr`` ... ``<prefix>__ack``;
  with ``burst``, a :class:`sim.bindings.BlockInitiator` over a ``hw.burst.HostBusBurster``
  whose ports are ``burst_go``, ``burst_write``, ``burst_addr``, ``burst_count``,
  ``burst_done`` and whose memory is ``burst.mem``);
* :func:`bind_irq`: the device's interrupt output as a :class:`sim.bus.IrqLine`.
"""
from __future__ import annotations

from typing import Any

from sim.bus import IrqLine
from sim.time import Clock

from . import BlockInitiator, HdlDriver, HostBusInitiator, IrqMirror

__all__ = ["HOST_BUS_PORTS", "BURST_PORTS", "BURST_MEMORY", "bind_host_bus", "bind_irq"]

#: The HostBus members (``hw.bus.HostBus``), as ``<prefix>__<member>`` ports.
HOST_BUS_PORTS = ("addr", "w_data", "r_data", "w_en", "r_en", "ack")
#: A burster's control ports (``hw.burst.HostBusBurster`` as a harness exposes it), by
#: :class:`BlockInitiator` parameter.
BURST_PORTS = {"go": "burst_go", "write": "burst_write", "addr": "burst_addr",
               "count": "burst_count", "done": "burst_done"}
#: The burster's block memory.
BURST_MEMORY = "burst.mem"


def bind_host_bus(access: Any, driver: HdlDriver, clock: Clock, *, addr_width: int, name: str,
                  burst: bool = False, prefix: str = "bus", max_words: int = 512,
                  after_hardware: bool = False) -> HostBusInitiator | BlockInitiator:
    """The device's register window as a bus target the machine maps.

    Parameters
    ----------
    access : SignalAccess
        The device instance's ports and memories.
    driver : HdlDriver
        The simulation's driver (watches are registered on it: call before it runs).
    clock : Clock
        The device's clock (its bus is sampled at its rising edges).
    addr_width : int
        Word-address width of the bus (the window is ``4 << addr_width`` bytes).
    name : str
        For messages and event names (``"server_le0"``): the single-access initiator is
        ``<name>.bus``, the block initiator ``<name>.burst``.
    burst : bool
        Serve ``read_block``/``write_block`` as one transaction each through the harness's
        burster (its ports :data:`BURST_PORTS`, its memory :data:`BURST_MEMORY`).
    prefix : str
        The HostBus port's name in the harness.
    max_words : int
        The burster memory's depth (``hw.burst.BURST_WORDS``).
    after_hardware : bool
        Each access resumes its caller after the hardware changes of its completing edge
        (:class:`~sim.bindings.HostBusInitiator`), as a model on :class:`sim.bus.RegisterPort`
        does.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, not {name!r}")
    sig = {m: access.port(f"{prefix}__{m}") for m in HOST_BUS_PORTS}
    single = HostBusInitiator(driver, clock, addr_width=addr_width, name=f"{name}.bus",
                              after_hardware=after_hardware, **sig)
    if not burst:
        return single
    if not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"max_words must be a positive integer, not {max_words!r}")
    ports = {k: access.port(p) for k, p in BURST_PORTS.items()}
    return BlockInitiator(
        driver, clock, single=single, name=f"{name}.burst", max_words=max_words,
        mem_read=lambda n: access.mem_read(BURST_MEMORY, 0, n),
        mem_write=lambda words: access.mem_write(BURST_MEMORY, 0, words), **ports)


def bind_irq(access: Any, driver: HdlDriver, *, port: str = "irq", name: str) -> IrqLine:
    """A new :class:`IrqLine` called ``name`` that follows the device's output ``port`` at the
    exact simulator time (through an :class:`sim.bindings.IrqMirror`)."""
    line = IrqLine(driver.kernel, name)
    IrqMirror(driver, access.port(port), line)
    return line
