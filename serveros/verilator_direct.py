"""Moved to :mod:`sim.bindings.verilator`; this re-export keeps serveros.lance_rtl working until
it binds through :mod:`sim.bindings.session` (then delete this file)."""
from sim.bindings.verilator import DirectModel, Port, VerilatorDirectDriver, build

__all__ = ["Port", "DirectModel", "VerilatorDirectDriver", "build"]
