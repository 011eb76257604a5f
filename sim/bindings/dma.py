"""DmaServer: a device's DMA bursts, from its gateware bridge, served by main memory.

The device's DMA master port meets a ``hw.dma.DmaBridge`` in its harness; this is the bridge's
Python side. Per burst, Python wakes once when the device raises its request (``req_toggle``)
and, for a device-to-memory burst, once more when the bridge holds the burst's words
(``data_toggle``), whatever the burst's length and wait states.

At the request edge ``S`` the server asks :class:`sim.memory.Memory` for the transfer, as a
transaction-level device model does at the same picosecond:

* the memory's ownership check (:meth:`Memory.check`, the one ``dma_read``/``dma_write`` make
  first), for the burst's requester (a fixed one, or, for a bridge on a bus with
  :attr:`hw.bus.DmaFeature.Owner`, ``requester_of(tag)`` of the ``owner`` tag the device drives
  with the request: a card that DMAs on behalf of an application), decides at once: a refused burst is reported to the bridge (``fault``), which ends it
  with the bus's ``err`` two edges after ``S`` and moves no data, so the device learns of the
  refusal (on a bus without ``err`` the burst runs silently on the device's fixed time); it is
  counted in :attr:`DmaServer.faults`;
* the transfer itself is :meth:`Memory.dma_read` / :meth:`Memory.dma_write`, with the memory's
  timing and its queue of DMA masters. Its completion ``T`` is known at ``S`` (the memory serves
  DMA in call order) and given to the bridge as ``mem_cycles``, the cycles from ``S`` to the
  first edge at or after ``T``: the device's last word is acknowledged there unless its fixed
  burst time ends later. The server checks, when the call returns, that it did end at ``T``.
* With ``setup_cycles`` (a device whose bus request and grant take that long, as the AN2
  card's :data:`hw.an2.timing.DMA_SETUP_CYCLES`: its model calls the memory then), the memory
  is called ``setup_cycles`` edges after ``S``; ``T`` is still predicted at ``S``, from the
  memory's queue then. Should another master queue a transfer in between, the memory ends
  later than predicted: the device's burst ends at the predicted edge, its words land when the
  memory is done, and :attr:`DmaServer.contended` counts the burst.
* With ``early_cycles`` (a device whose burst, as its model counts it, ends one edge after it
  samples the last word, as the AN2 card's, docs/an2_card.md "DMA timing on the pins"), the
  last word is acknowledged that many edges before the first edge at or after ``T``.

Data: a memory-to-device burst's words are the memory's bytes at ``S``, written into the
bridge's memory before the device takes them (the memory's own ``dma_read`` returns the bytes
at ``T``; should they differ, the device got the older ones and :attr:`DmaServer.stale` counts
the burst). A device-to-memory burst's bytes are the device's, which exist only once the bridge
has taken them: they land at the later of ``T`` and the burst's last edge (the memory's
``dma_write`` is made at ``S`` with the bytes the memory already holds there, so its timing,
check and counters are the memory's, and the device's bytes replace them then). With a memory
no faster than the device's fixed burst, as the 3MIN's, that is ``T`` itself. A burst the device
abandons (it drops ``req`` early) lands the words it gave.

Nothing here knows a device: the bridge's ports are found by ``prefix`` and its memory by name.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

from sim.memory import Memory, MemoryAccessError, MemoryBoundsError
from sim.time import Clock

from . import BindingError, HdlDriver
from .access import bytes_of, words_of

__all__ = ["DmaServer", "DMA_PORTS"]

log = logging.getLogger(__name__)

#: The bridge's Python-facing ports (``hw.dma.DmaBridge``), before the prefix.
DMA_PORTS = ("req_toggle", "addr", "count", "write", "mem_cycles", "fault", "data_toggle",
             "taken")


class DmaServer:
    """Serve a ``hw.dma.DmaBridge``'s bursts from ``memory`` (see the module docstring).

    Parameters
    ----------
    access : SignalAccess
        The device instance's ports and memories.
    driver : HdlDriver
        The simulation's driver (watches are registered here: construct before it runs).
    clock : Clock
        The device's clock (the bridge's edges).
    memory : Memory
        Main memory.
    prefix : str
        The bridge's ports are ``prefix + name`` for each of :data:`DMA_PORTS`.
    mem : str
        The bridge's word memory (hierarchical name).
    requester : hashable, optional
        On whose behalf the device's DMA runs, for the memory's ownership check (None: the
        kernel, as a device model's DMA).
    requester_of : callable, optional
        ``requester_of(tag) -> requester``: each burst's requester from the ``owner`` tag the
        device drives with it (the bridge's ``prefix + "owner"`` port, present on a bus with
        :attr:`hw.bus.DmaFeature.Owner`), read at the request edge. Default: every burst is
        ``requester``'s. Give one of ``requester`` and ``requester_of``, not both. A
        ``LookupError`` it raises (an unknown tag) stops the simulation with a BindingError.
    name : str
        For messages (``"server.rz0.dma"``).
    setup_cycles : int
        Edges from the request to the memory's start of the transfer (default 0).
    early_cycles : int
        Edges by which the last word's acknowledge precedes the first edge at or after the
        memory's completion (default 0).

    Attributes
    ----------
    bursts : int
        Bursts served (faults included).
    bytes_read, bytes_written : int
        Bytes moved from memory to the device and from the device to memory.
    faults : int
        Bursts the memory refused (reported to the bridge, which ends them with ``err``);
        :attr:`last_fault` holds the last refusal.
    stale : int
        Memory-to-device bursts whose bytes changed in memory during the transfer.
    contended : int
        Bursts that another master delayed within their ``setup_cycles`` (their memory ended
        later than the bridge was told).

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value.
    BindingError
        If the design lacks one of the bridge's ports (``owner`` too, with ``requester_of``).
    """

    def __init__(self, access: Any, driver: HdlDriver, clock: Clock, memory: Memory, *,
                 prefix: str = "dma_", mem: str = "dma.mem", requester: Any = None,
                 requester_of: Callable[[int], Any] | None = None, name: str,
                 setup_cycles: int = 0, early_cycles: int = 0):
        if not isinstance(driver, HdlDriver):
            raise TypeError(f"driver must be a sim.bindings.HdlDriver, not {driver!r}")
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a sim.memory.Memory, not {memory!r}")
        for what, value in (("prefix", prefix), ("mem", mem), ("name", name)):
            if not isinstance(value, str) or (what != "prefix" and not value):
                raise ValueError(f"{what} must be a{' non-empty' if what != 'prefix' else ''} "
                                 f"string, not {value!r}")
        if requester_of is not None and not callable(requester_of):
            raise TypeError(f"requester_of must be callable (tag -> requester), not {requester_of!r}")
        if requester_of is not None and requester is not None:
            raise ValueError(f"give requester ({requester!r}) or requester_of, not both")
        for what, value in (("setup_cycles", setup_cycles), ("early_cycles", early_cycles)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{what} must be an integer >= 0, not {value!r}")
        self.setup_cycles = setup_cycles
        self.early_cycles = early_cycles
        self.access = access
        self.driver = driver
        self.kernel = driver.kernel
        self.clock = clock
        self.memory = memory
        self.requester = requester
        self.requester_of = requester_of
        self.name = name
        self._mem = mem
        self._port = {p: access.port(prefix + p)
                      for p in DMA_PORTS + (("owner",) if requester_of is not None else ())}
        self._awaiting: deque[_Landing] = deque()    # device-to-memory bursts awaiting words
        self.bursts = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.faults = 0
        self.last_fault: Exception | None = None
        self.stale = 0
        self.contended = 0
        driver.watch(self._port["req_toggle"], self._on_request)
        driver.watch(self._port["data_toggle"], self._on_data)

    # -- the request edge ---------------------------------------------------------------------
    def _on_request(self, _level: int) -> None:
        k, p = self.kernel, self.clock.period
        if k.now % p:
            raise BindingError(f"{self.name}: a DMA request at {k.now} ps, not at an edge of the "
                               f"{p} ps clock")
        get = self.driver.get
        addr, n, write = get(self._port["addr"]), get(self._port["count"]), get(self._port["write"])
        if n < 1:
            raise BindingError(f"{self.name}: a DMA burst of {n} words at {addr:#x}")
        requester = self.requester
        if self.requester_of is not None:
            tag = get(self._port["owner"])
            try:
                requester = self.requester_of(tag)
            except LookupError:
                raise BindingError(f"{self.name}: a DMA burst at {addr:#x} for owner tag {tag}, "
                                   f"which requester_of does not know") from None
        self.bursts += 1
        # Spawned, so that nothing else due now runs between the prediction of the memory's
        # completion and the memory call that takes it.
        k.spawn(self._serve(addr, n, bool(write), requester), name=f"{self.name}.burst")

    async def _serve(self, addr: int, n: int, write: bool, requester: Any) -> None:
        k, mem, nbytes = self.kernel, self.memory, 4 * n
        try:
            mem.check(addr, nbytes, requester, write=write)
        except (MemoryAccessError, MemoryBoundsError) as exc:
            self._refuse(exc)
            return
        done = mem.dma_done_at(nbytes, write)     # the memory's queue included
        start = k.now + self.setup_cycles * self.clock.period
        done = max(done, start + mem.dma_time(nbytes, write))
        self.driver.set(self._port["fault"], 0)
        self.driver.set(self._port["mem_cycles"], max(
            0, (self.clock.edge_at_or_after(done) - k.now) // self.clock.period
            - self.early_cycles))
        if write:
            landing = _Landing(addr)
            self._awaiting.append(landing)
            if start > k.now:
                await k.sleep_until(start)
            await mem.dma_write(addr, mem.view(addr, nbytes), requester)
            self._check_done(done)
            landing.transferred = True
            self._land(landing)
        else:
            snapshot = mem.read(addr, nbytes)
            self.access.mem_write(self._mem, 0, words_of(snapshot))
            if start > k.now:
                await k.sleep_until(start)
            data = await mem.dma_read(addr, nbytes, requester)
            self._check_done(done)
            self.bytes_read += nbytes
            if data != snapshot:
                self.stale += 1
                log.warning("%s: memory at %#x changed during a %d-byte DMA read; the device "
                            "got the bytes of its start", self.name, addr, nbytes)

    def _check_done(self, expected: int) -> None:
        if self.setup_cycles and self.kernel.now > expected:
            self.contended += 1
            log.info("%s: another master delayed a burst within its setup: the memory ended at "
                     "%d ps, the device's burst at %d ps", self.name, self.kernel.now, expected)
            return
        if self.kernel.now != expected:
            raise BindingError(f"{self.name}: the memory's DMA ended at {self.kernel.now} ps, "
                               f"not at the {expected} ps the bridge was given")

    def _refuse(self, exc: Exception) -> None:
        self.faults += 1
        self.last_fault = exc
        log.info("%s: DMA refused: %s", self.name, exc)
        self.driver.set(self._port["fault"], 1)
        self.driver.set(self._port["mem_cycles"], 0)

    # -- a device-to-memory burst's words -------------------------------------------------------
    def _on_data(self, _level: int) -> None:
        if not self._awaiting:      # the bridge toggles only for bursts the memory accepted
            raise BindingError(f"{self.name}: device-to-memory words with no burst awaiting them")
        landing = self._awaiting.popleft()
        landing.words = self.access.mem_read(self._mem, 0, self.driver.get(self._port["taken"]))
        self._land(landing)

    def _land(self, landing: "_Landing") -> None:
        """Store a burst's words once both its memory transfer and the burst have ended."""
        if landing.words is None or not landing.transferred:
            return
        data = bytes_of(landing.words)
        self.memory.write(landing.addr, data)
        self.bytes_written += len(data)

    def __repr__(self) -> str:
        return (f"<DmaServer {self.name} bursts={self.bursts} read={self.bytes_read} "
                f"written={self.bytes_written} faults={self.faults}>")


class _Landing:
    """A device-to-memory burst: where its words go, and which of its two ends has come."""

    __slots__ = ("addr", "words", "transferred")

    def __init__(self, addr: int) -> None:
        self.addr = addr
        self.words: list[int] | None = None      # the device's words, once the burst ended
        self.transferred = False                 # the memory's transfer has completed

