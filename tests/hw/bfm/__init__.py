"""Bus-functional models of the host bus (:class:`hw.bus.HostBus`) for every bench.

One set per testbench framework, one protocol (hw/bus.py):

* :mod:`bfm.transaction`: :class:`HostBusTransaction`, what drivers queue and monitors report.
* :mod:`bfm.cocotb_hostbus`: cocotb (Icarus, Verilator): ``HostBusSignals``, ``HostBusDriver``
  (``read``/``write``, ``send``/``recv``, reset, pause generator), ``HostBusMonitor``.
* :mod:`bfm.amaranth_hostbus`: Amaranth testbenches: ``TestbenchHostBus``.
* :mod:`bfm.reference`: ``RecordingTarget``, a transaction-level model's accesses as the
  transactions a monitor must see.
* :mod:`bfm.scoreboard`: ``Scoreboard``, the in-order checker (monitor -> model -> checker).

Only the framework-free pieces are imported here, so a bench imports the framework's module
itself (``from bfm.cocotb_hostbus import HostBusDriver``). The kernel-side initiator used in
co-simulation is :class:`sim.bindings.HostBusInitiator`, not a test model.
"""
from bfm.scoreboard import Scoreboard
from bfm.transaction import HostBusTransaction

__all__ = ["HostBusTransaction", "Scoreboard"]
