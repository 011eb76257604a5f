"""A tiny interval timer on the host bus: the smallest complete device of serveros.

It exists to prove the device discipline end to end: one register map
(:mod:`hw.timer.registers`), the RTL (:class:`hw.timer.gateware.Timer`) and a
transaction-level model with the same cycle timing (:class:`hw.timer.model.TimerModel`).
"""
from .registers import ADDR_WIDTH, DATA_WIDTH, WINDOW_SIZE, Ctrl, Reg, Status

__all__ = ["ADDR_WIDTH", "DATA_WIDTH", "WINDOW_SIZE", "Ctrl", "Reg", "Status"]
