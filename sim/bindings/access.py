"""Signal access: how a binding names a running design's ports and memories, on any simulator.

A device's RTL binding (``hw/<device>/attach.py``) is written once, against this interface:
ports by their flattened Amaranth name (``"bus__addr"``, ``"irq"``), memories by their dotted
hierarchical name from the harness (``"bridge.tx_mem"``). Each simulator backend implements it
once (:mod:`sim.bindings.amaranth`, :mod:`sim.bindings.cocotb`, :mod:`sim.bindings.verilator`);
the handle :meth:`SignalAccess.port` returns is what that backend's
:class:`sim.bindings.HdlDriver` ``get``/``set``/``watch`` understand.
"""
from __future__ import annotations

import struct
from typing import Any, Protocol, Sequence

__all__ = ["SignalAccess", "bytes_of", "words_of"]


class SignalAccess(Protocol):
    """One device instance's ports and memories in a running simulation."""

    def port(self, name: str) -> Any:
        """The driver handle of port ``name`` (flattened with ``__``).

        Raises
        ------
        sim.bindings.BindingError
            If the design has no such port.
        """

    def mem_read(self, name: str, start: int, n: int) -> list[int]:
        """Words ``start .. start + n - 1`` of memory ``name``."""

    def mem_write(self, name: str, start: int, words: Sequence[int]) -> None:
        """Write ``words`` into memory ``name`` from word ``start`` (takes effect at once,
        between clock edges, as a testbench's backdoor write)."""


def words_of(data: bytes) -> list[int]:
    """``data`` as the little-endian 32-bit words a memory holds (zero-padded to a whole word),
    for :meth:`SignalAccess.mem_write`."""
    data = bytes(data) + bytes(-len(data) % 4)
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def bytes_of(words: Sequence[int]) -> bytes:
    """32-bit memory words (from :meth:`SignalAccess.mem_read`) as the little-endian bytes they
    hold."""
    return struct.pack(f"<{len(words)}I", *words)
