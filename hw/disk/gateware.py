"""The disk controller's RTL: registers, command sequencing, DMA, and the drive's timing engine.

Register map and cycle timing: :mod:`hw.disk.registers` (the reference; the transaction-level
twin is :class:`hw.disk.model.DiskControllerModel`). Bus protocols: :class:`hw.bus.HostBus`
(registers) and :class:`hw.bus.DmaBus` (host memory).

How the drive is split between RTL and Python
---------------------------------------------
The RTL computes the drive's service time itself, in exact picoseconds, as
:meth:`hw.disk.mechanism.DiskMechanism.service` does: command overhead (by kind, cache outcome
and previous kind), seek from a ROM holding the seek curve for every distance (built from the
:class:`~hw.disk.mechanism.SeekCurve` at elaboration), head switches and the write settle,
rotational position as a pure function of absolute time (a free-running picosecond counter,
``tnext``, and a small sequential divider for the slot arithmetic), the media transfer of each
sector, the SCSI bus pipelining of a read, the host-data wait of a write and the write
completion. Drive events are seen at the first clock edge at or after their picosecond
(the rounding rule of :mod:`hw.disk.registers`).

What the drive *firmware* knows stays in Python and is served over the :class:`MediaPort`
(so the RTL stays small): the block contents, the physical facts of each block (cylinder,
surface, angular slot: :class:`hw.disk.geometry.Geometry`) and, once per command, the state of
the on-board read-ahead cache (:class:`DriveFirmware.plan`: whether the command hits, how many
leading blocks are buffered, where the arm is and from when it is free, or whether the command
continues a read-ahead stream). :class:`DriveFirmware` is that server's pure-Python core.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
import enum
import math
from contextlib import contextmanager
from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.bus import DmaBus, HostBus

from .image import DiskImage
from .mechanism import DiskMechanism, DiskParams, DriveState, Op, Request, Segment
from .registers import (ADDR_WIDTH, BLOCK_DONE_CYCLES, BLOCK_SIZE, BUS_WAIT_CYCLES,
                        CLOCK_PERIOD_PS, DATA_WIDTH, DECODE_CYCLES, DMA_BURST_WORDS,
                        DMA_SETUP_CYCLES, IRQ_LATENCY_CYCLES, Command, Error, Irq, Reg, Status,
                        bit)

__all__ = ["MediaOp", "MediaPort", "DiskController", "DriveFirmware", "Plan", "BLOCK_WORDS",
           "STRAPS", "seek_rom"]

#: The input ports of a :class:`DiskController` built with ``straps``: CAPACITY in blocks and
#: the host memory size in bytes.
STRAPS = {"strap_capacity": In(32), "strap_mem_size": In(33)}
#: 32-bit words per block.
BLOCK_WORDS = BLOCK_SIZE // 4
#: Buffer slots of one block in the controller (a ring: DMA and media transfers overlap).
_SLOTS = 4
_T = 64   # width of every picosecond quantity


class MediaOp(enum.IntEnum):
    """Transactions on the :class:`MediaPort` (``op``)."""
    Header = 1   #: one word: the command's cache plan (``write``, ``lbn``, ``count``, ``time_ps``)
    Info = 2     #: one word: the physical facts of block ``lbn``
    Read = 3     #: ``BLOCK_WORDS`` words of block ``lbn``, server to controller
    Write = 4    #: ``BLOCK_WORDS`` words of block ``lbn`` into the drive's buffer
    Commit = 5   #: one word: block ``lbn`` (staged by Write) is on the media now


class MediaPort(wiring.Signature):
    """The controller's port to the drive firmware and media held by the simulation.

    Written from the controller's (initiator's) side. The handshake is that of
    :class:`hw.bus.DmaBus`: the controller raises ``req`` with ``op`` and its arguments and
    holds them until the transaction's last word is acknowledged; the server drives ``ack``
    from a register, high for one cycle per word, any number of wait cycles allowed; the
    controller drops ``req`` at the edge at which it samples the last ``ack`` and keeps it low
    for at least one cycle before the next transaction. Header, Info and Commit are one word,
    Read and Write :data:`BLOCK_WORDS` words.

    * **Header** (``write``, ``lbn``, ``count``, ``time_ps`` = when the drive receives the
      command): the reply fields ``hit`` .. ``surface`` are valid with ``ack``
      (:meth:`DriveFirmware.plan`). The firmware advances its own state past the command.
    * **Info** (``lbn``): ``cylinder``, ``surface`` and ``slot`` valid with ``ack``.
    * **Read** (``lbn``): word ``i`` of the block in ``r_data`` with the ``i``-th ``ack``.
    * **Write** (``lbn``): the server takes ``w_data`` in each ``ack`` cycle into the drive's
      buffer; nothing reaches the media yet.
    * **Commit** (``lbn``): the sector passes under the head at this edge; the server writes the
      staged block to the media as one whole sector.

    Members
    -------
    req, op, write, lbn, count, time_ps, w_data : Out
        The request.
    ack, r_data : In
        Per-word acknowledge and read data.
    hit, stream, n_cached, walk_lbn, free_ps, start_ps : In
        Header reply (see :class:`Plan`).
    cylinder, surface, slot : In
        Header (arm position) and Info (the block's place) reply.
    """

    def __init__(self):
        super().__init__({
            "req": Out(1), "op": Out(3), "write": Out(1), "lbn": Out(32), "count": Out(32),
            "time_ps": Out(_T), "w_data": Out(32),
            "ack": In(1), "r_data": In(32),
            "hit": In(1), "stream": In(1), "n_cached": In(32), "walk_lbn": In(32),
            "free_ps": In(_T), "start_ps": In(_T),
            "cylinder": In(16), "surface": In(8), "slot": In(8),
        })

    def __eq__(self, other):
        return type(other) is type(self)

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        return "MediaPort()"


# ---- the firmware (pure Python) -------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What the drive's firmware tells the timing engine at a command's arrival.

    Attributes
    ----------
    hit : bool
        The cache outcome (selects the command overhead).
    start_ps : int
        When the drive takes the command (its arrival, or the end of the previous one).
    n_cached : int
        Leading blocks of a read already buffered (ready when the overhead ends).
    walk_lbn : int
        First block the mechanism passes over; it walks to the request's end. Blocks before
        ``lbn + n_cached`` are read ahead but not sent to the host (a continued stream).
    free_ps : int
        When the mechanism is free (the walk starts at ``max(overhead end, free_ps)``), or,
        with ``stream``, the end of the last sector read ahead (the walk starts there).
    stream : bool
        The command continues a read-ahead stream without repositioning.
    cylinder, surface : int
        Where the arm is when the walk starts.
    """

    hit: bool
    start_ps: int
    n_cached: int
    walk_lbn: int
    free_ps: int
    stream: bool
    cylinder: int
    surface: int


class DriveFirmware:
    """The drive firmware and media behind a :class:`DiskController`'s :class:`MediaPort`.

    Holds the drive's cache state (a :class:`hw.disk.mechanism.DriveState`, advanced with
    :meth:`DiskMechanism.service` exactly as the transaction-level model's drive does), the
    media (a :class:`DiskImage`, or a dict of blocks for tests) and the write staging buffer.

    Parameters
    ----------
    mechanism : DiskMechanism
        The drive's timing model (geometry, cache parameters).
    media : DiskImage or dict
        Block contents; a dict maps LBN to 512 bytes (missing blocks read as zeros).

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    """

    def __init__(self, mechanism: DiskMechanism, media):
        if not isinstance(mechanism, DiskMechanism):
            raise TypeError(f"mechanism must be a DiskMechanism, not {mechanism!r}")
        if not isinstance(media, (DiskImage, dict)):
            raise TypeError(f"media must be a DiskImage or a dict, not {media!r}")
        self.mechanism = mechanism
        self.media = media
        self.state = DriveState()
        self.staged: dict[int, bytes] = {}
        #: (request, issue_ps, completion_ps) of every command served, for checks.
        self.log: list[tuple[Request, int, int]] = []
        self.commits: list[int] = []

    # -- the media -----------------------------------------------------------------------
    def read_block(self, lbn: int) -> bytes:
        """The block's 512 bytes."""
        if isinstance(self.media, DiskImage):
            return self.media.read(lbn, 1)
        return self.media.get(lbn, bytes(BLOCK_SIZE))

    def read_words(self, lbn: int) -> list[int]:
        """The block as little-endian 32-bit words."""
        b = self.read_block(lbn)
        return [int.from_bytes(b[i:i + 4], "little") for i in range(0, BLOCK_SIZE, 4)]

    def stage(self, lbn: int, words: list[int]) -> None:
        """Take a block into the drive's buffer (a Write transaction)."""
        if len(words) != BLOCK_WORDS:
            raise ValueError(f"a staged block is {BLOCK_WORDS} words, not {len(words)}")
        self.staged[lbn] = b"".join(w.to_bytes(4, "little") for w in words)

    def commit(self, lbn: int) -> None:
        """Write the staged block to the media, as one whole sector."""
        if lbn not in self.staged:
            raise ValueError(f"commit of block {lbn}, which was never staged")
        data = self.staged.pop(lbn)
        if isinstance(self.media, DiskImage):
            self.media.write(lbn, data)
        else:
            self.media[lbn] = data
        self.commits.append(lbn)

    def info(self, lbn: int) -> tuple[int, int, int]:
        """(cylinder, surface, slot) of block ``lbn``."""
        g = self.mechanism.geometry
        p = g.lbn_to_pbn(lbn)
        return p.cylinder, p.surface, g.slot(p)

    # -- the cache plan ---------------------------------------------------------------------
    def plan(self, request: Request, now_ps: int) -> Plan:
        """The plan of ``request`` arriving at ``now_ps``, and advance the drive's state.

        Mirrors the first half of :meth:`DiskMechanism.service` (read-ahead brought up to the
        arrival, cache lookup, stop or continue the stream); the service itself is then run
        to keep the state, and its completion logged for comparison with the RTL's.
        """
        mech, state = self.mechanism, self.state
        cache = mech.params.cache
        lbn, end, count = request.lbn, request.end, request.count
        t0 = max(now_ps, state.busy_until_ps)
        segs = mech._fresh_segments(state.segments)
        arm_c, arm_h, arm_free = state.cylinder, state.surface, state.arm_free_ps
        pf = state.prefetch
        if pf is not None:
            pf, finished = mech._advance(pf, t0)
            seg = segs[pf.segment]
            if seg is not None:
                segs[pf.segment] = Segment(max(seg.lo, pf.next_lbn - cache.segment_blocks),
                                           pf.next_lbn, seg.stamp)
            arm_c, arm_h = pf.cylinder, pf.surface
            if finished or seg is None:
                arm_free = pf.ready_ps
                pf = None
        stopped_free = t0 if pf is not None else arm_free
        if request.op is Op.Write:
            hit = (cache.combine_sequential_writes and state.last_op is Op.Write
                   and state.last_write_end == lbn)
            plan = Plan(hit, t0, 0, lbn, stopped_free, False, arm_c, arm_h)
        else:
            seg_i = next((i for i, s in enumerate(segs) if s is not None and s.holds(lbn)), None)
            if (seg_i is None and pf is not None and cache.buffer_continuous_read
                    and segs[pf.segment].hi <= lbn < pf.limit):
                seg_i = pf.segment
            if seg_i is None:
                plan = Plan(False, t0, 0, lbn, stopped_free, False, arm_c, arm_h)
            else:
                seg = segs[seg_i]
                cached_hi = min(seg.hi, end) if lbn < seg.hi else lbn
                if cached_hi >= end:
                    plan = Plan(True, t0, count, end, 0, False, arm_c, arm_h)
                elif pf is not None and pf.segment == seg_i and cache.buffer_continuous_read:
                    plan = Plan(True, t0, cached_hi - lbn, pf.next_lbn, pf.ready_ps, True,
                                pf.cylinder, pf.surface)
                else:
                    plan = Plan(True, t0, cached_hi - lbn, cached_hi, stopped_free, False,
                                arm_c, arm_h)
        completion, _, self.state = mech.service(request, state, now_ps)
        self.log.append((request, now_ps, completion))
        return plan


def seek_rom(params: DiskParams) -> list[int]:
    """Seek time in ps for every distance ``0 .. cylinders - 1`` (the RTL's seek ROM)."""
    return [params.seek.time(d) for d in range(params.geometry.cylinders)]


# ---- a sequential divider -------------------------------------------------------------------
class _Divider(Elaboratable):
    """Restoring division, one quotient bit per cycle: ``start`` loads, ``busy`` falls when done."""

    def __init__(self, n_width: int, d_width: int):
        self.n_width, self.d_width = n_width, d_width
        self.start = Signal()
        self.n = Signal(n_width)
        self.d = Signal(d_width)
        self.q = Signal(n_width)
        self.r = Signal(d_width)
        self.busy = Signal()

    def elaborate(self, platform):
        m = Module()
        num = Signal(self.n_width)
        dd = Signal(self.d_width)
        cnt = Signal(range(self.n_width + 1))
        shifted = Signal(self.d_width + 1)
        m.d.comb += shifted.eq(Cat(num[-1], self.r))
        with m.If(self.start):
            m.d.sync += [num.eq(self.n), dd.eq(self.d), self.r.eq(0), self.q.eq(0),
                         cnt.eq(self.n_width), self.busy.eq(1)]
        with m.Elif(self.busy):
            m.d.sync += [num.eq(num << 1), cnt.eq(cnt - 1)]
            with m.If(shifted >= dd):
                m.d.sync += [self.r.eq(shifted - dd), self.q.eq(Cat(1, self.q))]
            with m.Else():
                m.d.sync += [self.r.eq(shifted), self.q.eq(Cat(0, self.q))]
            with m.If(cnt == 1):
                m.d.sync += self.busy.eq(0)
        return m


# ---- the controller ------------------------------------------------------------------------
class DiskController(wiring.Component):
    """The SCSI-style disk controller (12.5 MHz): registers, DMA master and drive timing engine.

    Parameters
    ----------
    params : DiskParams, optional
        The drive (default: the DEC RZ26). Its seek curve becomes a ROM of one entry per
        cylinder distance, its overheads and rotation constants are built in.
    capacity : int, optional
        CAPACITY: blocks on the disk (default: the geometry's block count; at most that).
        Not with ``straps``.
    mem_size : int, optional
        Host memory size in bytes: a Read or Write whose buffer does not lie inside
        ``[0, mem_size)`` is rejected with ``Error.DmaFault``. Required unless ``straps``.
    straps : bool, optional
        Take CAPACITY and the memory size from the input ports ``strap_capacity`` and
        ``strap_mem_size`` (held constant while the controller runs) instead of building them
        in: as a real controller learns them from the drive (READ CAPACITY) and the machine's
        configuration, so one design serves every image and memory size. Same cycle timing.

    Members
    -------
    bus : In(HostBus(addr_width=4, data_width=32))
        Register access, :data:`hw.disk.registers.BUS_WAIT_CYCLES` wait states.
    dma : Out(DmaBus(addr_width=32, count_width=8, features={"err"}))
        DMA master to host memory, bursts of :data:`~hw.disk.registers.DMA_BURST_WORDS` words;
        a burst the memory ends with ``err`` ends the command with ``Error.DmaFault``.
    media : Out(MediaPort())
        The drive firmware and media, served by the simulation.
    irq : Out(1)
        ``(IRQ_CAUSE & IRQ_ENABLE) != 0``.
    seek_ps : Out(64)
        Diagnostic: the positioning time (ps) of the engine's last step that moved the arm.
    strap_capacity : In(32), strap_mem_size : In(33)
        With ``straps`` only: CAPACITY in blocks (``1 ..`` the geometry's block count) and the
        host memory size in bytes (``1 .. 2**32``).

    Raises
    ------
    TypeError
        If ``params`` is not a :class:`DiskParams`, a size is not an integer or ``straps`` not
        a bool.
    ValueError
        If ``capacity`` is not in ``1 .. blocks`` or ``mem_size`` not in ``1 .. 2**32``, or
        ``straps`` comes with a size (or without it ``mem_size`` is missing).
    """

    def __init__(self, *, params: DiskParams | None = None, capacity: int | None = None,
                 mem_size: int | None = None, straps: bool = False):
        if params is None:
            params = DiskParams.load()
        if not isinstance(params, DiskParams):
            raise TypeError(f"params must be a hw.disk.mechanism.DiskParams, not {params!r}")
        if not isinstance(straps, bool):
            raise TypeError(f"straps must be a bool, not {straps!r}")
        g = params.geometry
        if straps:
            if capacity is not None or mem_size is not None:
                raise ValueError("with straps, capacity and mem_size come from the ports "
                                 "strap_capacity and strap_mem_size, not the constructor")
            capacity, mem_size = g.blocks, 1 << 32      # bounds checked below, then unused
        elif mem_size is None:
            raise ValueError("mem_size is required (or straps=True)")
        if capacity is None:
            capacity = g.blocks
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise TypeError(f"capacity must be an integer, not {capacity!r}")
        if not 1 <= capacity <= g.blocks:
            raise ValueError(f"capacity must be in 1 .. {g.blocks}, not {capacity!r}")
        if not isinstance(mem_size, int) or isinstance(mem_size, bool):
            raise TypeError(f"mem_size must be an integer, not {mem_size!r}")
        if not 1 <= mem_size <= 1 << 32:
            raise ValueError(f"mem_size must be in 1 .. 2**32 bytes, not {mem_size!r}")
        if g.cylinders >= 1 << 16 or g.surfaces >= 1 << 8 or g.blocks_per_track >= 1 << 8:
            raise ValueError(f"geometry too large for the media port's fields: {g!r}")
        if DMA_SETUP_CYCLES < 1 or BLOCK_DONE_CYCLES < 1 or IRQ_LATENCY_CYCLES < 1:
            raise ValueError("the controller needs DMA_SETUP_CYCLES, BLOCK_DONE_CYCLES and "
                             "IRQ_LATENCY_CYCLES of at least 1")
        self._params, self._straps = params, straps
        self._capacity = None if straps else capacity
        self._mem_size = None if straps else mem_size
        members = {
            "bus": In(HostBus(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)),
            "dma": Out(DmaBus(addr_width=32, count_width=8, features={"err"})),
            "media": Out(MediaPort()),
            "irq": Out(1),
            "seek_ps": Out(_T),
        }
        if straps:
            members.update(STRAPS)
        super().__init__(members)

    @property
    def params(self) -> DiskParams:
        return self._params

    @property
    def straps(self) -> bool:
        return self._straps

    @property
    def capacity(self) -> int | None:
        """CAPACITY built in (None with ``straps``)."""
        return self._capacity

    @property
    def mem_size(self) -> int | None:
        """The memory size built in (None with ``straps``)."""
        return self._mem_size

    def elaborate(self, platform) -> Module:
        m = Module()
        bus, dma, media = self.bus, self.dma, self.media
        prm = self._params
        g, ovh = prm.geometry, prm.overheads
        P = CLOCK_PERIOD_PS
        spt = g.blocks_per_track
        # Slot boundary k is at k * U / R ps (hw.disk.mechanism), reduced by their gcd.
        R, U = prm.rpm * spt, 60 * 10 ** 12
        gd = math.gcd(R, U)
        R, U = R // gd, U // gd
        n_width = _T + R.bit_length() + U.bit_length() + 2
        d_width = max(U.bit_length(), R.bit_length(), spt.bit_length())
        m.submodules.div = div = _Divider(n_width, d_width)

        # ---- time: tnext is the time of the next rising edge (edge 0 is at t = 0) ----------
        # Absolute time does not reset (reset_less): the platter turns on whatever the
        # controller does, and rotation is a function of absolute time.
        tnext = Signal(_T, reset_less=True)
        cyc = Signal(_T, reset_less=True)   # index of the next edge
        m.d.sync += [tnext.eq(tnext + P), cyc.eq(cyc + 1)]

        # ---- registers ---------------------------------------------------------------------
        r_cmd = Signal(32)
        r_lbn = Signal(32)
        r_count = Signal(32)
        r_addr = Signal(32)
        st_busy, st_done, st_err = Signal(), Signal(), Signal()
        r_error = Signal(8)
        cause = Signal(2)
        enable = Signal(2)
        m.d.comb += self.irq.eq((cause & enable) != 0)

        # HostBus target with BUS_WAIT_CYCLES wait states.
        wcnt = Signal(range(BUS_WAIT_CYCLES + 1))
        act = Signal()
        with m.If(wcnt == 0):
            with m.If((bus.w_en | bus.r_en) & ~bus.ack):
                if BUS_WAIT_CYCLES == 0:
                    m.d.comb += act.eq(1)
                else:
                    m.d.sync += wcnt.eq(1)
        with m.Elif(wcnt == BUS_WAIT_CYCLES):
            m.d.comb += act.eq(1)
            m.d.sync += wcnt.eq(0)
        with m.Else():
            m.d.sync += wcnt.eq(wcnt + 1)
        wr = Signal()
        rd = Signal()
        m.d.comb += [wr.eq(act & bus.w_en), rd.eq(act & bus.r_en)]
        m.d.sync += bus.ack.eq(act)

        if self._straps:
            capacity, mem_size = self.strap_capacity, self.strap_mem_size
        else:
            capacity, mem_size = self._capacity, self._mem_size

        status_value = Signal(32)
        m.d.comb += status_value.eq(st_busy << bit(Status.Busy) | st_done << bit(Status.Done)
                                    | st_err << bit(Status.Error))
        with m.If(rd):
            with m.Switch(bus.addr):
                for reg, value in ((Reg.Command, r_cmd), (Reg.Lbn, r_lbn), (Reg.Count, r_count),
                                   (Reg.DmaAddr, r_addr), (Reg.Status, status_value),
                                   (Reg.Error, r_error), (Reg.IrqCause, cause),
                                   (Reg.IrqEnable, enable), (Reg.Capacity, capacity),
                                   (Reg.BlockSize, BLOCK_SIZE)):
                    with m.Case(reg.word):
                        m.d.sync += bus.r_data.eq(value)
                with m.Default():
                    m.d.sync += bus.r_data.eq(0)

        # ---- command latches, engine state -------------------------------------------------
        c_write = Signal()          # the running command is a Write
        c_lbn = Signal(32)
        c_count = Signal(32)
        c_addr = Signal(32)
        last_write = Signal()       # the drive's previous command was a Write
        target = Signal(_T)         # an edge index to wait for
        t_issue = Signal(_T)
        finish = Signal()           # comb: STATUS := Done at this edge
        c_fault = Signal()          # the running command ends with DmaFault (memory's err)
        d_fault = Signal()          # comb: the memory refused a burst (err sampled) at this edge
        abandon = Signal()          # comb: Reset at this edge
        cancel = Signal()           # comb: the command's transfers stop here (Reset or err)
        m.d.comb += cancel.eq(abandon | d_fault)

        # Validation of a COMMAND write (registers as they were before the edge).
        code = bus.w_data
        is_rw = (code == Command.Read) | (code == Command.Write)
        cmd_wr = Signal()
        m.d.comb += cmd_wr.eq(wr & (bus.addr == Reg.Command.word))
        reject = Signal()
        rej_code = Signal(8)
        accept = Signal()
        with m.If(cmd_wr):
            with m.If(code == Command.Reset):
                m.d.comb += abandon.eq(1)
            with m.Elif(st_busy):
                m.d.comb += [reject.eq(1), rej_code.eq(Error.Busy)]
            with m.Elif(~(is_rw | (code == Command.Inquire))):
                m.d.comb += [reject.eq(1), rej_code.eq(Error.BadCommand)]
            with m.Elif(is_rw & (r_count == 0)):
                m.d.comb += [reject.eq(1), rej_code.eq(Error.ZeroLength)]
            with m.Elif(is_rw & (r_lbn + r_count > capacity)):
                m.d.comb += [reject.eq(1), rej_code.eq(Error.OutOfRange)]
            with m.Elif(is_rw & (r_addr + (r_count << 9) > mem_size)):
                m.d.comb += [reject.eq(1), rej_code.eq(Error.DmaFault)]
            with m.Else():
                m.d.comb += accept.eq(1)

        # Register writes. Order matters (last assignment wins): W1C, then the engine's
        # finish, then the command's effects.
        with m.If(wr):
            with m.Switch(bus.addr):
                with m.Case(Reg.Command.word):
                    m.d.sync += r_cmd.eq(bus.w_data)
                with m.Case(Reg.Lbn.word):
                    m.d.sync += r_lbn.eq(bus.w_data)
                with m.Case(Reg.Count.word):
                    m.d.sync += r_count.eq(bus.w_data)
                with m.Case(Reg.DmaAddr.word):
                    m.d.sync += r_addr.eq(bus.w_data & ~3)
                with m.Case(Reg.IrqEnable.word):
                    m.d.sync += enable.eq(bus.w_data[:2])
        cause_clear = Signal(2)
        with m.If(wr & (bus.addr == Reg.IrqCause.word)):
            m.d.comb += cause_clear.eq(bus.w_data[:2])
        cause_set = Signal(2)
        m.d.sync += cause.eq((cause & ~cause_clear) | cause_set)
        with m.If(finish & c_fault):
            m.d.sync += [st_busy.eq(0), st_done.eq(1), st_err.eq(1), r_error.eq(Error.DmaFault)]
            m.d.comb += cause_set.eq(int(Irq.Done | Irq.Error))
        with m.Elif(finish):
            m.d.sync += [st_busy.eq(0), st_done.eq(1), st_err.eq(0), r_error.eq(Error.None_)]
            m.d.comb += cause_set[bit(Irq.Done)].eq(1)
        with m.If(reject):
            m.d.sync += [r_error.eq(rej_code), st_err.eq(1)]
            m.d.comb += cause_set[bit(Irq.Error)].eq(1)
        with m.If(accept):
            m.d.sync += [st_busy.eq(1), st_done.eq(0), st_err.eq(0), r_error.eq(Error.None_),
                         c_fault.eq(0), c_write.eq(code == Command.Write), c_lbn.eq(r_lbn),
                         c_count.eq(r_count), c_addr.eq(r_addr)]
        with m.If(abandon):
            m.d.sync += [st_busy.eq(0), st_done.eq(0), st_err.eq(0), r_error.eq(0), cause.eq(0)]

        @contextmanager
        def state(name):
            # Every state of the DMA and engine FSMs: a Reset abandons it (last m.next wins).
            with m.State(name):
                yield
                with m.If(abandon):
                    m.next = "Idle"

        # ---- the block buffer: a ring of _SLOTS blocks -------------------------------------
        m.submodules.buf = buf = Memory(shape=32, depth=_SLOTS * BLOCK_WORDS, init=[])
        buf_w = buf.write_port()
        buf_dma_r = buf.read_port(domain="comb")
        buf_med_r = buf.read_port(domain="comb")
        full = Signal(_SLOTS)
        full_set = Signal(_SLOTS)
        full_clr = Signal(_SLOTS)
        m.d.sync += full.eq((full & ~full_clr) | full_set)

        # ---- the media port (one transaction at a time; the mover has priority) --------------
        mv_want = Signal()
        mv_op = Signal(3)
        mv_lbn = Signal(32)
        en_want = Signal()
        en_op = Signal(3)
        en_lbn = Signal(32)
        p_owner_mv = Signal()
        p_words = Signal(range(BLOCK_WORDS + 1))
        p_end = Signal()              # comb: the port's transaction ends at this edge
        p_done = Signal()             # ... and it belongs to the running command
        p_stale = Signal()            # the transaction in flight outlived a Reset or DMA fault
        p_multi = (media.op == MediaOp.Read) | (media.op == MediaOp.Write)
        m.d.comb += p_done.eq(p_end & ~p_stale & ~cancel)
        with m.FSM(name="port"):
            with m.State("Idle"):
                m.d.sync += p_stale.eq(0)
                with m.If(mv_want & ~cancel):
                    m.d.sync += [p_owner_mv.eq(1), media.op.eq(mv_op), media.lbn.eq(mv_lbn),
                                 p_words.eq(0), media.req.eq(1)]
                    m.next = "Busy"
                with m.Elif(en_want & ~cancel):
                    m.d.sync += [p_owner_mv.eq(0), media.op.eq(en_op), media.lbn.eq(en_lbn),
                                 p_words.eq(0), media.req.eq(1)]
                    m.next = "Busy"
            with m.State("Busy"):
                # A Reset (or a DMA fault) lets the transaction finish (the server sees a
                # whole one) but its result is dropped.
                with m.If(cancel):
                    m.d.sync += p_stale.eq(1)
                with m.If(media.ack):
                    m.d.sync += p_words.eq(p_words + 1)
                    with m.If(~p_multi | (p_words == BLOCK_WORDS - 1)):
                        m.d.comb += p_end.eq(1)
                        m.d.sync += media.req.eq(0)
                        m.next = "Idle"
        m.d.sync += [media.write.eq(c_write), media.count.eq(c_count), media.time_ps.eq(t_issue)]

        # ---- the mover: blocks between the media port and the buffer ring -----------------
        mv_idx = Signal(32)           # next block to fetch (Read) or push (Write)
        mv_on = Signal()              # the mover works for the running command
        mv_slot = mv_idx[:2]
        m.d.comb += [mv_lbn.eq(c_lbn + mv_idx),
                     mv_op.eq(Mux(c_write, MediaOp.Write, MediaOp.Read)),
                     mv_want.eq(mv_on & (mv_idx < c_count)
                                & Mux(c_write, full.bit_select(mv_slot, 1),
                                      ~full.bit_select(mv_slot, 1)))]
        m.d.comb += [buf_med_r.addr.eq(Cat(p_words[:7], mv_slot)),
                     media.w_data.eq(buf_med_r.data)]
        with m.If(p_done & p_owner_mv):
            m.d.sync += mv_idx.eq(mv_idx + 1)
            with m.If(c_write):
                m.d.comb += full_clr.eq(Const(1, _SLOTS) << mv_slot)
            with m.Else():
                m.d.comb += full_set.eq(Const(1, _SLOTS) << mv_slot)

        # ---- the DMA engine ----------------------------------------------------------------
        d_go = Signal()               # comb: start the DMA phase at this edge
        d_end = Signal()              # comb: the DMA phase ends at this edge
        d_blk = Signal(32)
        d_burst = Signal(range(BLOCK_WORDS // DMA_BURST_WORDS + 1))
        d_word = Signal(range(DMA_BURST_WORDS + 1))
        d_cnt = Signal(8)
        d_slot = d_blk[:2]
        d_next_slot = Signal(2)
        m.d.comb += d_next_slot.eq(d_blk + 1)
        bursts = BLOCK_WORDS // DMA_BURST_WORDS
        d_ready = Mux(c_write, ~full.bit_select(d_slot, 1), full.bit_select(d_slot, 1))
        m.d.comb += [dma.write.eq(~c_write), dma.count.eq(DMA_BURST_WORDS),
                     dma.addr.eq(c_addr + (d_blk << 9) + (d_burst << 8)),
                     buf_dma_r.addr.eq(Cat(d_word[:6], d_burst[:1], d_slot)),
                     dma.w_data.eq(buf_dma_r.data)]
        with m.FSM(name="dma"):
            with state("Idle"):
                with m.If(d_go):
                    m.d.sync += [d_blk.eq(0), d_burst.eq(0), d_cnt.eq(0)]
                    with m.If(Mux(c_write, ~full[0], full[0])):
                        m.next = "Setup"
                    with m.Else():
                        m.next = "Wait"
            with state("Wait"):       # a block's buffer slot is not ready yet (a stall)
                with m.If(d_ready):
                    m.next = "Setup"
            with state("Setup"):
                with m.If(d_cnt == DMA_SETUP_CYCLES - 1):
                    m.d.sync += [d_cnt.eq(0), d_word.eq(0), dma.req.eq(1)]
                    m.next = "Burst"
                with m.Else():
                    m.d.sync += d_cnt.eq(d_cnt + 1)
            with state("Burst"):
                with m.If(dma.err):   # refused: no word moved; the rest is abandoned
                    m.d.comb += d_fault.eq(1)
                    m.d.sync += dma.req.eq(0)
                    m.next = "Idle"
                with m.Elif(dma.ack):
                    m.d.sync += d_word.eq(d_word + 1)
                    with m.If(d_word == DMA_BURST_WORDS - 1):
                        m.d.sync += [dma.req.eq(0), d_burst.eq(d_burst + 1)]
                        with m.If(d_burst == bursts - 1):
                            m.next = "BlockDone"
                        with m.Else():
                            m.next = "Setup"
            with state("BlockDone"):
                with m.If(d_cnt == BLOCK_DONE_CYCLES - 1):
                    m.d.sync += [d_cnt.eq(0), d_burst.eq(0), d_blk.eq(d_blk + 1)]
                    with m.If(d_blk == c_count - 1):
                        m.d.comb += d_end.eq(1)
                        m.next = "Idle"
                    with m.Elif(~Mux(c_write, ~full.bit_select(d_next_slot, 1),
                                     full.bit_select(d_next_slot, 1))):
                        m.next = "Wait"
                    with m.Else():
                        m.next = "Setup"
                with m.Else():
                    m.d.sync += d_cnt.eq(d_cnt + 1)
        with m.If(abandon):
            m.d.sync += dma.req.eq(0)
        # The block's slot changes hands when its last burst ends.
        with m.If(dma.ack & (d_word == DMA_BURST_WORDS - 1) & (d_burst == bursts - 1)):
            with m.If(c_write):
                m.d.comb += full_set.eq(Const(1, _SLOTS) << d_slot)
            with m.Else():
                m.d.comb += full_clr.eq(Const(1, _SLOTS) << d_slot)
        # Words from memory (a disk Write) into the buffer; from the media (a Read) likewise.
        with m.If(c_write):
            m.d.comb += [buf_w.addr.eq(Cat(d_word[:6], d_burst[:1], d_slot)),
                         buf_w.data.eq(dma.r_data), buf_w.en.eq(dma.req & dma.ack & ~dma.write)]
        with m.Else():
            m.d.comb += [buf_w.addr.eq(Cat(p_words[:7], mv_slot)), buf_w.data.eq(media.r_data),
                         buf_w.en.eq(p_owner_mv & media.req & media.ack
                                     & (media.op == MediaOp.Read))]

        # ---- the timing engine -------------------------------------------------------------
        hit = Signal()
        stream = Signal()
        n_cached = Signal(32)
        walk_lbn = Signal(32)
        free_ps = Signal(_T)
        t_cmd = Signal(_T)
        t = Signal(_T)                # the mechanism's time
        done = Signal(_T)             # SCSI bus pipeline (reads)
        ready = Signal(_T)            # host data in the drive's buffer (writes)
        cyl = Signal(16)
        surf = Signal(8)
        n_cyl = Signal(16)
        n_surf = Signal(8)
        n_slot = Signal(8)
        step = Signal(32)
        k = Signal(n_width)
        walk_n = Signal(33)
        skip = Signal(33)

        overheads = Array([Const(v, _T) for v in (
            ovh.read_miss_after_read, ovh.read_miss_after_write,
            ovh.read_hit_after_read, ovh.read_hit_after_write,
            ovh.write_miss_after_read, ovh.write_miss_after_write,
            ovh.write_hit_after_read, ovh.write_hit_after_write)])
        bus_ps = prm.bus_block_ps

        rom_init = seek_rom(prm)
        m.submodules.seek_rom = rom = Memory(shape=max(1, max(rom_init).bit_length()),
                                             depth=len(rom_init), init=rom_init)
        rom_r = rom.read_port(domain="comb")
        dist = Signal(16)
        m.d.comb += [dist.eq(Mux(n_cyl >= cyl, n_cyl - cyl, cyl - n_cyl)), rom_r.addr.eq(dist)]
        seek_a = Signal(_T)
        seek_b = Signal(_T)
        seek = Signal(_T)
        hs = prm.head_switch_ps
        m.d.comb += seek_a.eq(Mux((n_surf != surf) & (rom_r.data < hs), hs, rom_r.data))
        settle = prm.write_settle_ps
        if settle >= 0:
            m.d.comb += seek_b.eq(seek_a + settle)
        else:
            m.d.comb += seek_b.eq(Mux(seek_a > -settle, seek_a - (-settle), 0))
        m.d.comb += seek.eq(Mux((n_cyl == cyl) & (n_surf == surf), 0,
                                Mux(c_write & (seek_a != 0), seek_b, seek_a)))

        with m.FSM(name="engine"):
            with state("Idle"):
                with m.If(accept):
                    m.d.sync += [t_issue.eq(tnext + DECODE_CYCLES * P), mv_idx.eq(0),
                                 mv_on.eq(0)]
                    with m.If(code == Command.Inquire):
                        m.d.sync += target.eq(cyc + DECODE_CYCLES + IRQ_LATENCY_CYCLES)
                        m.next = "Inquire"
                    with m.Else():
                        m.d.sync += target.eq(cyc + DECODE_CYCLES)
                        m.next = "Decode"
            with state("Inquire"):
                with m.If(cyc == target):
                    m.d.comb += finish.eq(1)
                    m.next = "Idle"
            with state("Decode"):
                with m.If(cyc == target):
                    with m.If(c_write):
                        m.d.comb += d_go.eq(1)
                        m.d.sync += mv_on.eq(1)
                        m.next = "WriteDma"
                    with m.Else():
                        m.next = "Header"
            with state("WriteDma"):
                with m.If(d_end):
                    m.d.sync += t_issue.eq(tnext)
                    m.next = "Header"
                with m.If(d_fault):   # nothing reaches the drive
                    m.d.sync += [c_fault.eq(1), target.eq(cyc + IRQ_LATENCY_CYCLES)]
                    m.next = "Irq"
            with state("Header"):
                # A Write's last block may still be on its way to the drive's buffer.
                m.d.comb += [en_want.eq(~(mv_on & c_write & (mv_idx < c_count))),
                             en_op.eq(MediaOp.Header), en_lbn.eq(c_lbn)]
                with m.If(p_done & ~p_owner_mv):
                    m.d.sync += [hit.eq(media.hit), stream.eq(media.stream),
                                 n_cached.eq(media.n_cached), walk_lbn.eq(media.walk_lbn),
                                 free_ps.eq(media.free_ps), cyl.eq(media.cylinder),
                                 surf.eq(media.surface),
                                 t_cmd.eq(media.start_ps + overheads[Cat(last_write, media.hit,
                                                                         c_write)]),
                                 last_write.eq(c_write), mv_on.eq(1)]
                    m.next = "Plan"
            with state("Plan"):
                m.d.sync += [walk_n.eq(c_lbn + c_count - walk_lbn),
                             skip.eq(c_lbn + n_cached - walk_lbn),
                             done.eq(t_cmd + n_cached * bus_ps), ready.eq(t_cmd),
                             t.eq(Mux(stream | (free_ps > t_cmd), free_ps, t_cmd)),
                             step.eq(0)]
                m.next = "Info"
            with state("Info"):
                with m.If(step == walk_n):
                    m.next = "Drive"
                with m.Else():
                    m.d.comb += [en_want.eq(1), en_op.eq(MediaOp.Info), en_lbn.eq(walk_lbn + step)]
                    with m.If(p_done & ~p_owner_mv):
                        m.d.sync += [n_cyl.eq(media.cylinder), n_surf.eq(media.surface),
                                     n_slot.eq(media.slot)]
                        m.next = "Seek"
            with state("Seek"):
                ts = t + seek
                with m.If((n_cyl != cyl) | (n_surf != surf)):
                    m.d.sync += self.seek_ps.eq(seek)
                rdy = ready + bus_ps
                with m.If(c_write):
                    m.d.sync += [ready.eq(rdy), t.eq(Mux(rdy > ts, rdy, ts))]
                with m.Else():
                    m.d.sync += t.eq(ts)
                m.next = "Div1"
            with state("Div1"):       # k0 = floor((t - 1) * R / U) + 1
                m.d.comb += [div.start.eq(1), div.n.eq((t - 1) * R), div.d.eq(U)]
                m.next = "Div1Wait"
            with state("Div1Wait"):
                with m.If(~div.busy):
                    m.d.sync += k.eq(div.q + 1)
                    m.next = "Div2"
            with state("Div2"):       # k0 mod blocks_per_track
                m.d.comb += [div.start.eq(1), div.n.eq(k), div.d.eq(spt)]
                m.next = "Div2Wait"
            with state("Div2Wait"):
                with m.If(~div.busy):
                    # The slot's next start, then the boundary after it: the sector's end.
                    m.d.sync += k.eq(k + 1 + Mux(n_slot >= div.r, n_slot - div.r,
                                                 n_slot + spt - div.r))
                    m.next = "Div3"
            with state("Div3"):       # end = ceil(k * U / R)
                m.d.comb += [div.start.eq(1), div.n.eq(k * U + (R - 1)), div.d.eq(R)]
                m.next = "Div3Wait"
            with state("Div3Wait"):
                with m.If(~div.busy):
                    m.d.sync += [t.eq(div.q), cyl.eq(n_cyl), surf.eq(n_surf)]
                    with m.If(~c_write & (step >= skip)):
                        m.d.sync += done.eq(Mux(div.q > done, div.q, done) + bus_ps)
                    with m.If(c_write):
                        m.next = "CommitWait"
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
                        m.next = "Info"
            with state("CommitWait"):     # the sector is on the media at ceil_edge(t)
                m.d.comb += [en_want.eq(tnext >= t), en_op.eq(MediaOp.Commit),
                             en_lbn.eq(c_lbn + step)]
                with m.If(tnext >= t):
                    m.next = "Commit"
            with state("Commit"):
                m.d.comb += [en_want.eq(1), en_op.eq(MediaOp.Commit), en_lbn.eq(c_lbn + step)]
                with m.If(p_done & ~p_owner_mv):
                    m.d.sync += step.eq(step + 1)
                    m.next = "Info"
            with state("Drive"):
                with m.If(c_write):
                    m.d.sync += done.eq(t + ovh.write_completion)
                m.next = "DriveWait"
            with state("DriveWait"):      # the drive reports at ceil_edge(done)
                with m.If(tnext >= done):
                    with m.If(c_write):
                        m.d.sync += target.eq(cyc + IRQ_LATENCY_CYCLES)
                        m.next = "Irq"
                    with m.Else():
                        m.d.comb += d_go.eq(1)
                        m.next = "ReadDma"
            with state("ReadDma"):
                with m.If(d_end):
                    m.d.sync += target.eq(cyc + IRQ_LATENCY_CYCLES)
                    m.next = "Irq"
                with m.If(d_fault):
                    m.d.sync += [c_fault.eq(1), target.eq(cyc + IRQ_LATENCY_CYCLES)]
                    m.next = "Irq"
            with state("Irq"):
                with m.If(cyc == target):
                    m.d.comb += finish.eq(1)
                    m.d.sync += mv_on.eq(0)
                    m.next = "Idle"
        with m.If(cancel):
            m.d.sync += [full.eq(0), mv_on.eq(0)]
        return m
