"""A tiny interval timer on the host bus: the smallest complete device of serveros.

It exists to prove the device discipline end to end: one register map
(:mod:`hw.timer.registers`, which also states the cycle contract), the RTL
(:class:`hw.timer.gateware.Timer`), a transaction-level model with the same cycle timing
(:class:`hw.timer.model.TimerModel`), and how it meets a machine as either
(:data:`hw.timer.attach.TIMER`, listed in ``serveros/devices.py``).

Importing this package imports only :mod:`.registers`.
"""
from .registers import ADDR_WIDTH, DATA_WIDTH, WINDOW_SIZE, Ctrl, Reg, Status

__all__ = ["ADDR_WIDTH", "DATA_WIDTH", "WINDOW_SIZE", "Ctrl", "Reg", "Status"]
