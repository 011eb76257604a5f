"""The reference side of a scoreboard: a transaction-level model's accesses as transactions.

:class:`RecordingTarget` wraps any :class:`sim.bus.BusTarget` (a device's model in
``hw/<dev>/model.py``) and reports each access it serves as a :class:`HostBusTransaction`
with the times the HostBus protocol (hw/bus.py) gives it: the request made at ``t`` is first
sampled at the first rising edge after ``t``, or, while an earlier access holds the one-at-a-time
bus, at the first edge after that access's completion; it ends when the caller resumes. A
monitor on the RTL's bus reports the same transactions at the same picoseconds, or the
scoreboard says where they part.
"""
from __future__ import annotations

from typing import Callable

from sim.bus import BusTarget
from sim.kernel import Kernel
from sim.time import Clock

from bfm.transaction import HostBusTransaction

__all__ = ["RecordingTarget"]


class RecordingTarget:
    """A :class:`sim.bus.BusTarget` that forwards to ``target`` and records every access.

    Parameters
    ----------
    kernel : Kernel
        The kernel the model runs on (for the request and completion times).
    target : BusTarget
        The model.
    clock : Clock
        The device's bus clock.
    callback : callable, optional
        Called with each completed :class:`HostBusTransaction` (for example
        :meth:`bfm.scoreboard.Scoreboard.expect` of a one-item list); they are also kept in
        :attr:`transactions`.

    Raises
    ------
    TypeError
        If ``clock`` is not a :class:`sim.time.Clock`.
    """

    def __init__(self, kernel: Kernel, target: BusTarget, clock: Clock, *,
                 callback: Callable[[HostBusTransaction], None] | None = None) -> None:
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        self.kernel, self.target, self.clock = kernel, target, clock
        self.callback = callback
        self.transactions: list[HostBusTransaction] = []
        self._last_end = -1

    async def read(self, offset: int) -> int:
        t = self.kernel.now
        value = await self.target.read(offset)
        self._record(HostBusTransaction(int(offset), False, int(value)), t)
        return value

    async def write(self, offset: int, value: int) -> None:
        t = self.kernel.now
        await self.target.write(offset, value)
        self._record(HostBusTransaction(int(offset), True, int(value)), t)

    def _record(self, txn: HostBusTransaction, requested: int) -> None:
        # Accesses complete in the order they hold the bus: the one before this one in
        # completion order is the one this request waited for, if it waited at all.
        start = self.clock.edge_after(max(requested, self._last_end))
        end = self._last_end = self.kernel.now
        txn = HostBusTransaction(txn.addr, txn.write, txn.data, start, end)
        self.transactions.append(txn)
        if self.callback is not None:
            self.callback(txn)
