"""A DMA bridge: a device's DMA master port served by host memory held by the simulation.

A device reaches host memory through an ``Out(hw.bus.DmaBus(...))`` port. In a co-simulation the
memory is Python's (:class:`sim.memory.Memory`, with its timing, its queue of DMA masters and
its page-ownership check), and Python must act once per *burst*, never per word.
:class:`DmaBridge` is the target the device sees; Python serves it with
:class:`sim.bindings.dma.DmaServer`.

One burst, as the bridge runs it (edges of the device's clock; ``S`` is the edge at which the
device raises ``req``, ``n`` the burst's words, ``B`` the device's fixed burst time,
``write_cycles`` or ``read_cycles``, and ``M`` the memory's part, ``mem_cycles``):

* ``req_toggle`` changes right after ``S`` (it follows the device's ``req`` combinationally),
  with ``addr``, ``count`` and ``write`` showing the request: Python wakes once, asks the memory
  for the transfer (the ownership check and the memory's time: the first edge at or after its
  completion is ``S + M`` cycles), drives ``mem_cycles`` = ``M`` and ``fault`` and, for a
  memory-to-device burst, fills :attr:`DmaBridge.mem` with the words, all before ``S + 1``.
* At ``S + 1`` the bridge takes the burst. Words ``0 .. n - 2`` are acknowledged back to back,
  sampled by the device at edges ``S + F .. S + F + n - 2`` with ``F = max(B - n + 1, 2)``: the
  fixed part (as a memory that needs ``B`` cycles per burst acknowledges them). The last word is
  sampled at ``S + max(B, n + 1, M)``: not before the fixed time, and not before the memory has
  finished. So the device's burst ends exactly where a transaction-level model that calls the
  memory at ``S`` and waits for both ends it (:meth:`hw.disk.model.DiskControllerModel._burst`).
* A device-to-memory burst's words go into :attr:`DmaBridge.mem` at the edges they are
  acknowledged; ``data_toggle`` changes at the last one, when Python takes them.
* A device that drops ``req`` before the last word abandons the burst (a Reset): the bridge
  stops at the next edge; ``taken`` tells how many words moved (``data_toggle`` changes, for
  a device-to-memory burst, so Python lands them).
* With ``fault`` (the memory refused the transfer) the burst moves no data and
  ``fault_count`` counts it. On a bus with :attr:`hw.bus.DmaFeature.Err` the bridge ends it
  with ``err``, as early as a registered answer can: ``err`` is high in the cycle after
  ``S + 1`` (the first edge that samples the request, where the bridge takes Python's answer)
  and the device samples it at ``S + 2`` (:data:`ERR_CYCLES`), the edge at which it drops
  ``req``; no word is acknowledged. On a bus without ``err`` the device cannot be told: the
  burst runs on the fixed time as above and a memory-to-device burst reads zeros.
* On a bus with :attr:`hw.bus.DmaFeature.Owner` the bridge shows the device's ``owner`` tag
  with ``addr`` (held by the device until the burst ends), so Python checks the transfer on
  behalf of the principal the tag names (:class:`sim.bindings.dma.DmaServer`'s
  ``requester_of``). Timing is the same with or without it.

``ack`` is a function of the bridge's registers only (never of the device's outputs), so it
behaves as the registered acknowledge :class:`hw.bus.DmaBus` requires. The bridge ignores
``req`` in the cycle after a burst's last word, as the protocol allows.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .bus import OWNER_WIDTH, DmaBus, DmaFeature

__all__ = ["DmaBridge", "MEM_CYCLES_WIDTH", "ERR_CYCLES", "bridge_ports", "connect_bridge"]

#: Width of ``mem_cycles``: up to 2**32 - 1 cycles between a burst's request and its memory's end.
MEM_CYCLES_WIDTH = 32
#: Edges from the one that raises ``req`` to the one at which the device samples ``err`` for a
#: refused burst: the earliest a registered answer to the request can be seen.
ERR_CYCLES = 2


class DmaBridge(wiring.Component):
    """The target of a device's :class:`hw.bus.DmaBus`, one Python transaction per burst.

    See the module docstring for the timing.

    Parameters
    ----------
    write_cycles : int
        The device's fixed time of a device-to-memory burst: cycles from the edge that raises
        ``req`` to the edge that samples the last ``ack`` when the memory is not slower.
    read_cycles : int
        The same for a memory-to-device burst.
    depth : int
        Words of :attr:`mem`: the longest burst (default 64).
    addr_width, count_width : int
        Of the device's :class:`hw.bus.DmaBus` (default 32 and 8).
    features : iterable of hw.bus.DmaFeature or str
        Of the device's :class:`hw.bus.DmaBus` (default none); with ``"err"`` a refused
        burst ends with ``err``; with ``"owner"`` the bridge shows the burst's ``owner``.

    Members
    -------
    dma : In(DmaBus)
        The device's DMA port.
    req_toggle : Out(1)
        Changes once per burst, right after the edge at which the device raises ``req``.
    addr, count, write : Out
        The device's request, valid while it holds ``req``.
    owner : Out(OWNER_WIDTH)
        With :attr:`hw.bus.DmaFeature.Owner` only: the device's tag for the burst, valid while
        it holds ``req`` (as ``addr``).
    mem_cycles : In(32)
        The memory's part of the burst (see the module docstring), set before the edge after
        ``req_toggle`` changed.
    fault : In(1)
        The memory refused the burst (set likewise): it ends with ``err`` (on a bus without
        ``err``: it runs on the fixed time and moves no data).
    data_toggle : Out(1)
        Changes at the end of a device-to-memory burst the memory accepted: its words are in
        :attr:`mem`.
    taken : Out
        Words the device has taken or given in the current (or last) burst.
    busy : Out(1)
        A burst is being acknowledged.
    fault_count : Out(16)
        Bursts the memory refused (``fault``).

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or out of range.
    """

    def __init__(self, *, write_cycles: int, read_cycles: int, depth: int = 64,
                 addr_width: int = 32, count_width: int = 8, features=frozenset()):
        for name, value, lo in (("write_cycles", write_cycles, 2), ("read_cycles", read_cycles, 2),
                                ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"DmaBridge {name} must be an integer, not {value!r}")
            if not lo <= value < 1 << 16:
                raise ValueError(f"DmaBridge {name} must be in {lo} .. 65535, not {value!r}")
        bus = DmaBus(addr_width=addr_width, count_width=count_width, features=features)
        if depth > (1 << count_width) - 1:
            raise ValueError(f"DmaBridge depth {depth} exceeds the longest burst of a "
                             f"{count_width}-bit count")
        self._write_cycles, self._read_cycles, self._depth = write_cycles, read_cycles, depth
        self._has_err = DmaFeature.Err in bus.features
        self._has_owner = DmaFeature.Owner in bus.features
        #: The burst's words: filled by Python before a memory-to-device burst, taken by Python
        #: after a device-to-memory burst.
        self.mem = Memory(shape=32, depth=depth, init=[])
        members = {
            "dma": In(bus),
            "req_toggle": Out(1),
            "addr": Out(addr_width),
            "count": Out(count_width),
            "write": Out(1),
            "mem_cycles": In(MEM_CYCLES_WIDTH),
            "fault": In(1),
            "data_toggle": Out(1),
            "taken": Out(range(depth + 1)),
            "busy": Out(1),
            "fault_count": Out(16),
        }
        if self._has_owner:
            members["owner"] = Out(OWNER_WIDTH)
        super().__init__(members)

    @property
    def write_cycles(self) -> int:
        return self._write_cycles

    @property
    def read_cycles(self) -> int:
        return self._read_cycles

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def has_err(self) -> bool:
        """The device's bus has ``err``: a refused burst ends with it."""
        return self._has_err

    @property
    def has_owner(self) -> bool:
        """The device's bus has ``owner``: the bridge shows each burst's tag."""
        return self._has_owner

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = self.mem
        rp = self.mem.read_port(domain="comb")
        wp = self.mem.write_port()
        dma = self.dma

        tog = Signal()                # req_toggle's registered half
        cool = Signal()               # the cycle after a burst's last word: req is ignored
        new = Signal()                # comb: a new burst is requested in this cycle
        m.d.comb += [new.eq(dma.req & ~self.busy & ~cool),
                     self.req_toggle.eq(tog ^ new),
                     self.addr.eq(dma.addr), self.count.eq(dma.count), self.write.eq(dma.write)]
        if self.has_owner:
            m.d.comb += self.owner.eq(dma.owner)

        cnt = Signal(MEM_CYCLES_WIDTH + 1)   # edges since S (the request edge)
        idx = Signal(range(self._depth + 1))
        n = Signal(len(dma.count))
        first = Signal(17)            # edge (after S) that samples word 0
        last = Signal(MEM_CYCLES_WIDTH + 1)  # edge that samples word n - 1
        write = Signal()
        fault = Signal()
        m.d.sync += cool.eq(0)
        with m.If(new):
            fixed = Signal(16)
            m.d.comb += fixed.eq(Mux(dma.write, self._write_cycles, self._read_cycles))
            c = dma.count
            m.d.sync += [
                self.busy.eq(1), tog.eq(~tog), cnt.eq(1), idx.eq(0), n.eq(c),
                write.eq(dma.write), fault.eq(self.fault),
                first.eq(Mux(fixed + 1 > c + 2, fixed + 1 - c, 2)),
                last.eq(Mux(self.mem_cycles > fixed,
                            Mux(self.mem_cycles > c + 1, self.mem_cycles, c + 1),
                            Mux(fixed > c + 1, fixed, c + 1))),
            ]
        with m.If(self.busy):
            m.d.sync += cnt.eq(cnt + 1)
        # Word idx is sampled at edge `due`; ack is high in the cycle before it.
        due = Signal(MEM_CYCLES_WIDTH + 1)
        m.d.comb += due.eq(Mux(idx + 1 >= n, last, first + idx))
        ack = Signal()
        take = Signal()               # comb: the device takes word idx at the next edge
        refuse = Signal()             # comb: err is high (the whole burst is refused)
        if self.has_err:
            # From the bridge's registers only, as ack: high from S + 1 (cnt = 1) on, so the
            # device samples it at S + ERR_CYCLES.
            m.d.comb += [refuse.eq(self.busy & fault), dma.err.eq(refuse)]
        m.d.comb += [ack.eq(self.busy & (cnt + 1 >= due) & ~refuse), dma.ack.eq(ack),
                     take.eq(ack & dma.req),
                     rp.addr.eq(idx), dma.r_data.eq(Mux(fault, 0, rp.data)),
                     wp.addr.eq(idx), wp.data.eq(dma.w_data),
                     wp.en.eq(take & write & ~fault), self.taken.eq(idx)]
        end = Signal()                # comb: the burst ends at the next edge
        m.d.comb += end.eq(self.busy & (~dma.req | refuse | (take & (idx + 1 >= n))))
        with m.If(take):
            m.d.sync += idx.eq(idx + 1)
        with m.If(end):
            # The last word, or the device dropped req early (abandoned the burst).
            m.d.sync += [self.busy.eq(0), cool.eq(1)]
            with m.If(write & ~fault):
                m.d.sync += self.data_toggle.eq(~self.data_toggle)
            with m.If(fault):
                m.d.sync += self.fault_count.eq(self.fault_count + 1)
        return m


def bridge_ports(prefix: str, addr_width: int, depth: int, *, owner: bool = False) -> dict:
    """A :class:`DmaBridge`'s Python-facing ports as a harness's ports ``prefix + name``
    (members for a :class:`~amaranth.lib.wiring.Component` signature): ``depth`` is the
    bridge's burst memory in words; ``owner`` adds ``owner`` (a bus with
    :attr:`~hw.bus.DmaFeature.Owner`)."""
    ports = {f"{prefix}req_toggle": Out(1), f"{prefix}addr": Out(addr_width),
             f"{prefix}count": Out(8), f"{prefix}write": Out(1)}
    if owner:
        ports[f"{prefix}owner"] = Out(OWNER_WIDTH)
    ports.update({f"{prefix}mem_cycles": In(MEM_CYCLES_WIDTH), f"{prefix}fault": In(1),
                  f"{prefix}data_toggle": Out(1), f"{prefix}taken": Out(range(depth + 1))})
    return ports


def connect_bridge(m: Module, harness, bridge: DmaBridge, prefix: str) -> None:
    """Join ``bridge``'s Python-facing ports to ``harness``'s ports named ``prefix + name``
    (:func:`bridge_ports`), ``owner`` too when the bridge shows it."""
    out = ["req_toggle", "addr", "count", "write", "data_toggle", "taken"]
    if bridge.has_owner:
        out.append("owner")
    for name in out:
        m.d.comb += getattr(harness, prefix + name).eq(getattr(bridge, name))
    for name in ("mem_cycles", "fault"):
        m.d.comb += getattr(bridge, name).eq(getattr(harness, prefix + name))
