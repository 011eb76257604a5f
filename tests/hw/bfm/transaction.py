"""One access on a :class:`hw.bus.HostBus`, as a driver queues it and a monitor sees it."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HostBusTransaction"]


@dataclass(frozen=True)
class HostBusTransaction:
    """A read or write of one 32-bit word of a device's register window.

    Times are picoseconds of the bus clock's rising edges (hw/bus.py): ``start`` is the edge
    that first samples the request (``e0``), ``end`` the edge at which the initiator samples
    ``ack`` high (the completion, one cycle after ``ack`` rose). A transaction that has not run
    yet (queued with :meth:`HostBusDriver.send <bfm.cocotb_hostbus.HostBusDriver.send>`) has
    neither, and a read's ``data`` is None until it completes. Equality compares every field,
    so a monitor's transaction equals a reference model's only at the same picoseconds.

    Parameters
    ----------
    addr : int
        Byte offset in the window (word-aligned; the bus carries ``addr // 4``).
    write : bool
        True for a write.
    data : int or None
        The word written, or the word read.
    start, end : int or None
        The first sampling edge and the completion edge, in ps.

    Raises
    ------
    ValueError
        For a negative or unaligned ``addr``, a ``data`` that is not a 32-bit word (a write
        must carry one), or ``end`` not after ``start``.
    """

    addr: int
    write: bool
    data: int | None = None
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.addr, int) or self.addr < 0 or self.addr % 4:
            raise ValueError(f"addr must be a word-aligned byte offset >= 0, not {self.addr!r}")
        if self.data is None:
            if self.write:
                raise ValueError(f"a write of {self.addr:#x} needs data")
        elif not isinstance(self.data, int) or not 0 <= self.data < 1 << 32:
            raise ValueError(f"data must be a 32-bit unsigned int, not {self.data!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end} ps) must come after start ({self.start} ps)")

    @classmethod
    def reading(cls, addr: int) -> HostBusTransaction:
        """A read of byte offset ``addr``, to queue."""
        return cls(addr, False)

    @classmethod
    def writing(cls, addr: int, data: int) -> HostBusTransaction:
        """A write of ``data`` to byte offset ``addr``, to queue."""
        return cls(addr, True, data)

    def __repr__(self) -> str:
        kind = "W" if self.write else "R"
        data = "?" if self.data is None else f"{self.data:#010x}"
        when = "" if self.start is None else f" @{self.start}..{self.end}ps"
        return f"HostBusTransaction({kind} {self.addr:#x}={data}{when})"
