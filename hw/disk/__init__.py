"""The SCSI disk: a DEC RZ26 behind the disk controller.

This package's pure-Python foundation (no simulator imports, STYLE.md #8), shared by the
controller's RTL timing engine (checked against it) and its transaction-level model:

* :mod:`hw.disk.geometry`: LBN <-> cylinder/surface/sector, with spares, dead zone front, skews.
* :mod:`hw.disk.mechanism`: seek, rotation (a pure function of absolute time), transfer,
  controller overheads, bus and the read-ahead cache; ``DiskMechanism.service``.
* :mod:`hw.disk.image`: the disk image file (header + blocks, sparse, per-sector atomic writes).
* :mod:`hw.disk.trace`: DiskSim "validate" traces, replay, and comparison statistics (demerit).

Parameters: ``hw/disk/rz26/params.toml`` and ``seek.csv`` (CALIBRATION.md, "Disk: DEC RZ26").

The controller itself (imported from its modules, not here, as they need Amaranth or the
simulator): :mod:`hw.disk.registers` (the register map and cycle timing), :mod:`hw.disk.gateware`
(the RTL and the drive firmware it asks), :mod:`hw.disk.model` (its transaction-level twin) and
how it meets a machine, :mod:`hw.disk.attach` (``DISK``: the model, or the RTL in the loop
through :mod:`hw.disk.harness` and :mod:`hw.disk.media_bridge`).
"""
from .geometry import Geometry, Pbn
from .mechanism import (Breakdown, DiskMechanism, DiskParams, Drive, DriveState, Op, Request,
                        load_params)

__all__ = ["Breakdown", "DiskMechanism", "DiskParams", "Drive", "DriveState", "Geometry", "Op",
           "Pbn", "Request", "load_params"]
