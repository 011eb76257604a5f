"""The timer's register map: the one source of truth for gateware, model, drivers and tests.

A tiny down-counting interval timer on the :class:`hw.bus.HostBus`, clocked by the CPU clock
(25 MHz on the DECstation 5000/125, CALIBRATION.md). Four 32-bit registers:

=======  ======  ======  =====================================================================
offset   name    access  meaning
=======  ======  ======  =====================================================================
0x00     CTRL    rw      :class:`Ctrl` bits: En (count), Periodic (reload), IrqEn
0x04     LOAD    rw      reload value, in clock cycles
0x08     COUNT   ro      the counter (writes are ignored)
0x0C     STATUS  w1c     :class:`Status` bits: Zero (the counter underflowed); write 1 to clear
=======  ======  ======  =====================================================================

Cycle semantics (edges are the timer clock's rising edges):

* A write of CTRL that sets ``En`` while the timer is stopped *starts* it: COUNT := LOAD at the
  write's edge. While running, COUNT counts down one per edge: LOAD, LOAD-1, ..., 0.
* On the edge after COUNT reached 0 (the *underflow*), STATUS.Zero is set and COUNT := LOAD in
  periodic mode (a period of LOAD + 1 cycles, like ARM's SysTick), or En is cleared and COUNT
  stays 0 in one-shot mode.
* ``irq = STATUS.Zero and CTRL.IrqEn`` (a level). Since a bus access completes one cycle after
  its edge (:class:`hw.bus.HostBus`), the irq rises exactly ``LOAD`` cycles after the starting
  write *completes*.
* Writing 1 to STATUS.Zero clears it, unless an underflow sets it on the same edge (setting
  wins, so no expiry is lost).
* Writing CTRL with ``En`` while running does not restart the count; writing ``En = 0`` stops
  it and COUNT keeps its value. A new LOAD takes effect at the next start or reload.
* Reads of unmapped offsets return 0 and writes to them are ignored (the bus still
  acknowledges), as on a real decoder with no bus-error line.
"""
from __future__ import annotations

import enum

__all__ = ["Reg", "Ctrl", "Status", "ADDR_WIDTH", "DATA_WIDTH", "WINDOW_SIZE", "RESET",
           "ACCESS", "bit"]

#: Word-address width of the timer's :class:`hw.bus.HostBus` (four registers).
ADDR_WIDTH = 2
#: Data width of the bus.
DATA_WIDTH = 32
#: Bytes of address space the timer decodes.
WINDOW_SIZE = (1 << ADDR_WIDTH) * DATA_WIDTH // 8


class Reg(enum.IntEnum):
    """Register byte offsets."""
    Ctrl = 0x00
    Load = 0x04
    Count = 0x08
    Status = 0x0C

    @property
    def word(self) -> int:
        """The word address on the :class:`hw.bus.HostBus`."""
        return self.value >> 2


class Ctrl(enum.IntFlag):
    """CTRL bits."""
    En = 1 << 0        #: count (set while stopped: start from LOAD)
    Periodic = 1 << 1  #: reload from LOAD at underflow instead of stopping
    IrqEn = 1 << 2     #: drive irq while STATUS.Zero is set


class Status(enum.IntFlag):
    """STATUS bits (write 1 to clear)."""
    Zero = 1 << 0      #: the counter underflowed


#: Reset values of the registers.
RESET = {Reg.Ctrl: 0, Reg.Load: 0, Reg.Count: 0, Reg.Status: 0}
#: Access type of each register: "rw", "ro" or "w1c".
ACCESS = {Reg.Ctrl: "rw", Reg.Load: "rw", Reg.Count: "ro", Reg.Status: "w1c"}


def bit(flag: enum.IntFlag) -> int:
    """Bit index of a single-bit flag (``bit(Ctrl.IrqEn) == 2``)."""
    v = int(flag)
    if v <= 0 or v & (v - 1):
        raise ValueError(f"{flag!r} is not a single-bit flag")
    return v.bit_length() - 1
