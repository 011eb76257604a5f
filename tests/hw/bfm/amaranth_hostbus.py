"""The host bus's initiator for Amaranth testbenches (``Simulator.add_testbench``).

The cycle-by-cycle gateware benches (STYLE.md #13) drive a design's :class:`hw.bus.HostBus`
through :class:`TestbenchHostBus`: the request is presented at once (testbenches run between
edges), held over the edges until ``ack`` is seen high, ``r_data`` taken in the ``ack`` cycle,
the request dropped, and one more edge waited: the completion edge of hw/bus.py, where the call
returns. The cocotb benches use :mod:`bfm.cocotb_hostbus`, the same protocol.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

__all__ = ["TestbenchHostBus"]


class TestbenchHostBus:
    """Single HostBus accesses from an Amaranth testbench.

    Parameters
    ----------
    ctx
        The testbench's ``SimulatorContext``.
    bus
        The design's HostBus interface (``dut.bus``).
    tick : callable, optional
        ``await tick()`` advances one rising edge (default ``ctx.tick()``); benches that count
        edges or sample other signals at every edge pass their own.
    """

    __test__ = False     # not a pytest class

    def __init__(self, ctx: Any, bus: Any, *,
                 tick: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.ctx, self.bus = ctx, bus
        self.tick = tick if tick is not None else ctx.tick
        self.window = 4 << len(bus.addr)

    async def access(self, offset: int, value: int | None = None) -> tuple[int, int]:
        """Read (``value`` None) or write the word at byte ``offset``; returns the data read
        (``r_data`` in the ``ack`` cycle, whatever the kind) and the edges the access took."""
        if not isinstance(offset, int) or offset % 4 or not 0 <= offset < self.window:
            raise ValueError(f"offset must be word-aligned inside the {self.window:#x}-byte "
                             f"window, not {offset!r}")
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.addr, offset >> 2)
        if value is None:
            ctx.set(bus.r_en, 1)
        else:
            ctx.set(bus.w_data, int(value))
            ctx.set(bus.w_en, 1)
        edges = 0
        while True:
            await self.tick()
            edges += 1
            if ctx.get(bus.ack):
                break
        data = ctx.get(bus.r_data)
        ctx.set(bus.r_en, 0)
        ctx.set(bus.w_en, 0)
        await self.tick()                  # the edge at which the initiator samples ack
        return data, edges + 1

    async def read(self, offset: int) -> int:
        """The word at byte ``offset``."""
        return (await self.access(offset))[0]

    async def write(self, offset: int, value: int) -> None:
        """Write ``value`` at byte ``offset``."""
        await self.access(offset, value)
