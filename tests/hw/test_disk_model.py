"""The disk controller's register map and its transaction-level model.

* Register map: offsets, access types, reset values, single-bit flags, timing helpers.
* Register semantics over the bus: HostBus timing with wait states, read-only and unmapped
  registers, DMA_ADDR alignment, IRQ_ENABLE / IRQ_CAUSE (write-1-to-clear), Inquire, Reset.
* Data: reads and writes of random block ranges against a Python reference image, back to
  back, with the exact cycle timing of :mod:`hw.disk.registers`.
* Every error path (busy, bad command, zero length, out of range, DMA fault) sets ERROR and
  changes no byte of memory or media.
* RZ26 timing through the model: seeks of 1, 10, 100, 1000 cylinders and full stroke within 1 %
  of seek.csv; mean rotational latency 5.6 ms within 2 % over random requests.
* A write cut off mid-transfer (:meth:`DiskControllerModel.stop`) leaves each sector wholly old
  or new, and the image reloads.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from hw.disk.image import DiskImage
from hw.disk.mechanism import DiskParams
from hw.disk.model import DiskControllerModel
from hw.disk.registers import (ACCESS, ADDR_WIDTH, BLOCK_DONE_CYCLES, BUS_WAIT_CYCLES,
                               CLOCK_HZ, CLOCK_PERIOD_PS, DECODE_CYCLES, DMA_ERR_CYCLES,
                               DMA_READ_BURST_CYCLES, DMA_SETUP_CYCLES, DMA_WRITE_BURST_CYCLES,
                               IRQ_LATENCY_CYCLES,
                               RESET, WINDOW_SIZE, Command, Error, Irq, Reg, Status, bit,
                               bursts_per_block, read_dma_cycles, write_dma_cycles)
from sim.bus import IrqLine
from sim.kernel import Kernel, SimulationError
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE
from sim.time import MS, S, Clock

P = CLOCK_PERIOD_PS
CLOCK = Clock(P, "disk")
MEM_SIZE = 1 << 20
BS = 512
SEEK_CSV = Path(__file__).parents[2] / "hw" / "disk" / "rz26" / "seek.csv"


class Rig:
    """A kernel, host memory, an image and the model, with register helpers for test tasks."""

    def __init__(self, tmp_path: Path, blocks: int = 4096, persist: bool = True) -> None:
        self.k = Kernel()
        self.mem = Memory(self.k, MEM_SIZE, profile=PROFILE)
        self.path = tmp_path / "disk.img"
        self.img = DiskImage.create(self.path, blocks, persist=persist)
        self.irq = IrqLine(self.k, "disk")
        self.m = DiskControllerModel(self.k, CLOCK, memory=self.mem, image=self.img, irq=self.irq)

    async def rd(self, reg: Reg) -> int:
        return await self.m.read(int(reg))

    async def wr(self, reg: Reg, value: int) -> None:
        await self.m.write(int(reg), int(value))

    async def setup(self, lbn: int, count: int, addr: int) -> None:
        await self.wr(Reg.Lbn, lbn)
        await self.wr(Reg.Count, count)
        await self.wr(Reg.DmaAddr, addr)

    async def command(self, cmd: Command, lbn: int = 0, count: int = 0, addr: int = 0) -> tuple[int, int]:
        """Program and start ``cmd``, wait for the irq; returns (cause, error) and clears cause."""
        await self.setup(lbn, count, addr)
        await self.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        await self.wr(Reg.Command, cmd)
        await self.irq.wait_high()
        cause = await self.rd(Reg.IrqCause)
        error = await self.rd(Reg.Error)
        await self.wr(Reg.IrqCause, cause)
        return cause, error

    def run(self, coro):
        task = self.k.spawn(coro)
        self.k.run()
        assert task.done and task.exception is None
        return task.result


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.img.close()


def _rand(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


# ---- the register map ----------------------------------------------------------------------------
def test_register_map_is_consistent() -> None:
    assert [r.word for r in Reg] == list(range(10))
    assert WINDOW_SIZE == 4 << ADDR_WIDTH == 64
    assert set(ACCESS) == set(Reg) and set(RESET) <= set(Reg)
    assert ACCESS[Reg.IrqCause] == "w1c" and ACCESS[Reg.Status] == "ro"
    assert [bit(f) for f in Status] == [0, 1, 2] and [bit(f) for f in Irq] == [0, 1]
    assert [int(c) for c in Command] == [1, 2, 3, 4]
    assert Error.None_ == 0 and len({int(e) for e in Error}) == len(Error)
    assert CLOCK_HZ * CLOCK_PERIOD_PS == S
    assert bursts_per_block(512) == 2
    assert read_dma_cycles(1) == 2 * (2 + 66) + BLOCK_DONE_CYCLES
    assert write_dma_cycles(3) == 3 * (2 * (2 + 68) + BLOCK_DONE_CYCLES)
    with pytest.raises(ValueError, match="multiple of 256 bytes, not 100"):
        bursts_per_block(100)
    with pytest.raises(ValueError, match="not a single-bit flag"):
        bit(Irq.Done | Irq.Error)


def test_constructor_validates(tmp_path) -> None:
    r = Rig(tmp_path)
    with pytest.raises(TypeError, match="clock must be a sim.time.Clock, not 80000"):
        DiskControllerModel(r.k, P, memory=r.mem, image=r.img, irq=r.irq)
    with pytest.raises(TypeError, match="image must be"):
        DiskControllerModel(r.k, CLOCK, memory=r.mem, image="disk.img", irq=r.irq)
    with pytest.raises(TypeError, match="irq must be"):
        DiskControllerModel(r.k, CLOCK, memory=r.mem, image=r.img, irq=None)
    # Bad accesses are refused before any time passes (on the coroutine's first step).
    for coro, msg in ((r.m.read(0x40), "register offset .* not 64"), (r.m.read(2), "not 2"),
                      (r.m.write(0, -1), "32-bit unsigned integer, not -1")):
        with pytest.raises(ValueError, match=msg):
            coro.send(None)
    r.img.close()


# ---- register semantics ---------------------------------------------------------------------------
def test_reset_values_and_read_only_registers(rig) -> None:
    async def body():
        vals = {reg: await rig.rd(reg) for reg in Reg}
        for reg, v in RESET.items():
            assert vals[reg] == v, reg
        assert vals[Reg.Capacity] == 4096 and vals[Reg.BlockSize] == BS
        for reg in (Reg.Status, Reg.Error, Reg.Capacity, Reg.BlockSize):
            await rig.wr(reg, 0xFFFF_FFFF)
        assert [await rig.rd(r) for r in (Reg.Status, Reg.Error, Reg.Capacity, Reg.BlockSize)] == [0, 0, 4096, BS]
        await rig.m.write(0x3C, 123)            # unmapped: ignored, reads 0
        assert await rig.m.read(0x3C) == 0 and await rig.m.read(0x28) == 0
        await rig.wr(Reg.DmaAddr, 0x1237)         # the low two bits are forced to 0
        assert await rig.rd(Reg.DmaAddr) == 0x1234
        await rig.wr(Reg.IrqEnable, 0xFF)         # only the defined bits stick
        assert await rig.rd(Reg.IrqEnable) == Irq.Done | Irq.Error
        await rig.wr(Reg.Lbn, 77)
        await rig.wr(Reg.Count, 5)
        assert (await rig.rd(Reg.Lbn), await rig.rd(Reg.Count)) == (77, 5)
    rig.run(body())


def test_bus_access_takes_wait_states(rig) -> None:
    """A request at t is sampled at the next edge e0, acts at e0 + W and completes at e0 + W + 1."""
    async def body():
        await rig.k.sleep(P // 3)
        t0 = rig.k.now
        await rig.wr(Reg.Lbn, 1)
        assert rig.k.now == CLOCK.edge_after(t0) + (BUS_WAIT_CYCLES + 1) * P
        t1 = rig.k.now              # exactly on an edge: sampled at the next one
        await rig.rd(Reg.Lbn)
        assert rig.k.now == t1 + (BUS_WAIT_CYCLES + 2) * P
    rig.run(body())


def test_concurrent_accesses_are_serialized(rig) -> None:
    ends = []

    async def access(reg, v):
        await rig.wr(reg, v)
        ends.append(rig.k.now)
    rig.k.spawn(access(Reg.Lbn, 1))
    rig.k.spawn(access(Reg.Count, 2))
    rig.k.run()
    assert ends[1] - ends[0] == (BUS_WAIT_CYCLES + 2) * P
    assert (rig.m.lbn.value, rig.m.count.value) == (1, 2)


def test_inquire_timing_irq_and_w1c(rig) -> None:
    async def body():
        await rig.wr(Reg.IrqEnable, Irq.Done)
        t = rig.k.now
        await rig.wr(Reg.Command, Command.Inquire)
        e = t + BUS_WAIT_CYCLES * P + P     # t is an edge: the request is sampled one later
        assert await rig.rd(Reg.Status) == Status.Busy
        await rig.irq.wait_high()
        assert rig.k.now == e + (DECODE_CYCLES + IRQ_LATENCY_CYCLES) * P
        assert await rig.rd(Reg.Status) == Status.Done
        assert await rig.rd(Reg.IrqCause) == Irq.Done
        await rig.wr(Reg.IrqCause, Irq.Error)        # not the pending bit: stays
        assert rig.irq.level == 1
        await rig.wr(Reg.IrqEnable, 0)                # masked: the line drops, cause stays
        assert rig.irq.level == 0 and await rig.rd(Reg.IrqCause) == Irq.Done
        await rig.wr(Reg.IrqEnable, Irq.Done)
        assert rig.irq.level == 1
        await rig.wr(Reg.IrqCause, Irq.Done)
        assert rig.irq.level == 0 and await rig.rd(Reg.IrqCause) == 0
    rig.run(body())


def test_reset_abandons_a_read(rig) -> None:
    rng = random.Random(3)
    rig.img.write(100, _rand(rng, 8 * BS))

    async def body():
        await rig.setup(100, 8, 0x4000)
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        await rig.wr(Reg.Command, Command.Read)
        await rig.k.sleep(1 * MS)                  # the drive is still positioning
        await rig.wr(Reg.Command, Command.Reset)
        assert [await rig.rd(r) for r in (Reg.Status, Reg.Error, Reg.IrqCause)] == [0, 0, 0]
        await rig.k.sleep(100 * MS)
        assert rig.irq.raised == 0 and rig.mem.read(0x4000, 8 * BS) == bytes(8 * BS)
        cause, error = await rig.command(Command.Read, 100, 8, 0x4000)   # works again
        assert (cause, error) == (Irq.Done, Error.None_)
        assert rig.mem.read(0x4000, 8 * BS) == rig.img.read(100, 8)
    rig.run(body())


# ---- data and timing -------------------------------------------------------------------------------
def _expected_done(m: DiskControllerModel, rec) -> int:
    if rec.command is Command.Read:
        return CLOCK.edge_at_or_after(rec.drive_done_ps) + (read_dma_cycles(rec.count) + IRQ_LATENCY_CYCLES) * P
    return CLOCK.edge_at_or_after(rec.drive_done_ps) + IRQ_LATENCY_CYCLES * P


def test_random_reads_and_writes_against_reference(rig) -> None:
    rng = random.Random(42)
    blocks = rig.img.block_count
    ref = bytearray(blocks * BS)
    init = _rand(rng, 256 * BS)
    rig.img.write(0, init)
    ref[:len(init)] = init

    async def body():
        for i in range(40):
            count = rng.randint(1, 24)
            lbn = rng.randrange(blocks - count + 1) if i % 3 else rng.randrange(256 - count)
            addr = rng.randrange(0, MEM_SIZE - count * BS, 4)
            if rng.random() < 0.5:
                data = _rand(rng, count * BS)
                rig.mem.write(addr, data)
                cause, error = await rig.command(Command.Write, lbn, count, addr)
                ref[lbn * BS:(lbn + count) * BS] = data
            else:
                cause, error = await rig.command(Command.Read, lbn, count, addr)
                assert rig.mem.read(addr, count * BS) == bytes(ref[lbn * BS:(lbn + count) * BS])
            assert (cause, error) == (Irq.Done, Error.None_)
            rec = rig.m.last
            assert (rec.lbn, rec.count, rec.dma_addr) == (lbn, count, addr)
            assert rec.issue_ps - rec.accepted_ps == (
                DECODE_CYCLES if rec.command is Command.Read else DECODE_CYCLES + write_dma_cycles(count)) * P
            assert rec.done_ps == _expected_done(rig.m, rec)
    rig.run(body())
    assert rig.img.read(0, blocks) == bytes(ref)
    rig.img.close()
    with DiskImage.open(rig.path) as again:      # persisted, sector by sector
        assert again.read(0, blocks) == bytes(ref)


def test_back_to_back_commands(rig) -> None:
    """The next command is written the moment the previous one's irq rises."""
    rng = random.Random(7)
    data = _rand(rng, 16 * BS)
    rig.mem.write(0, data)

    async def body():
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        plan = [(Command.Write, 500, 16, 0), (Command.Read, 500, 16, 0x10000),
                (Command.Read, 508, 4, 0x20000), (Command.Write, 1000, 1, 0x10000),
                (Command.Inquire, 0, 0, 0)]
        for cmd, lbn, count, addr in plan:
            await rig.setup(lbn, count, addr)
            await rig.wr(Reg.Command, cmd)
            # Reading STATUS at once: busy (the write's edge set it).
            assert await rig.rd(Reg.Status) == Status.Busy
            await rig.irq.wait_high()
            await rig.wr(Reg.IrqCause, Irq.Done)
            assert await rig.rd(Reg.Error) == Error.None_
        recs = rig.m.history
        assert len(recs) == 4
        for a, b in zip(recs, recs[1:]):
            assert b.accepted_ps > a.done_ps
            assert b.done_ps == _expected_done(rig.m, b)
        assert recs[2].breakdown.hit           # 508.. was just read: in the drive's buffer
    rig.run(body())
    assert rig.mem.read(0x10000, 16 * BS) == data
    assert rig.mem.read(0x20000, 4 * BS) == data[8 * BS:12 * BS]
    assert rig.img.read(1000) == data[:BS]


def _snapshot(rig: Rig) -> tuple[bytes, bytes]:
    return bytes(rig.mem.data), rig.img.read(0, rig.img.block_count)


@pytest.mark.parametrize("case, code", [
    ("zero_length", Error.ZeroLength),
    ("out_of_range", Error.OutOfRange),
    ("out_of_range_count", Error.OutOfRange),
    ("dma_fault", Error.DmaFault),
    ("bad_command", Error.BadCommand),
    ("busy", Error.Busy),
])
def test_error_paths_change_nothing(rig, case, code) -> None:
    rng = random.Random(11)
    rig.img.write(0, _rand(rng, 64 * BS))
    rig.mem.write(0, _rand(rng, 64 * BS))
    cap = rig.img.block_count

    async def body():
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        if case == "busy":
            # A running write of blocks 0..7 from memory 0; then a read over the same memory.
            await rig.setup(0, 8, 0)
            await rig.wr(Reg.Command, Command.Write)
            before = _snapshot(rig)
            await rig.setup(8, 8, 0)
            await rig.wr(Reg.Command, Command.Read)
            assert await rig.rd(Reg.Error) == code
            assert await rig.rd(Reg.Status) == Status.Busy | Status.Error
            assert await rig.rd(Reg.IrqCause) == Irq.Error
            assert _snapshot(rig) == before and rig.m.history[-1].command is Command.Write
            await rig.wr(Reg.IrqCause, Irq.Error)
            await rig.irq.wait_high()          # the running write completes normally
            assert await rig.rd(Reg.Status) == Status.Done
            assert await rig.rd(Reg.Error) == Error.None_
            assert len(rig.m.history) == 1
            return
        before = _snapshot(rig)
        lbn, count, addr, cmd = {
            "zero_length": (5, 0, 0, Command.Read),
            "out_of_range": (cap, 1, 0, Command.Write),
            "out_of_range_count": (cap - 3, 4, 0, Command.Read),
            "dma_fault": (0, 8, MEM_SIZE - 7 * BS, Command.Read),
            "bad_command": (0, 1, 0, 9),
        }[case]
        await rig.setup(lbn, count, addr)
        await rig.wr(Reg.Command, cmd)
        assert rig.irq.level == 1
        assert await rig.rd(Reg.Error) == code
        assert await rig.rd(Reg.Status) == Status.Error
        assert await rig.rd(Reg.IrqCause) == Irq.Error
        await rig.k.sleep(50 * MS)
        assert rig.m.history == [] and _snapshot(rig) == before
        # A good command clears the error.
        await rig.wr(Reg.IrqCause, Irq.Error)
        cause, error = await rig.command(Command.Read, 0, 1, 0x8000)
        assert (cause, error) == (Irq.Done, Error.None_)
        assert await rig.rd(Reg.Status) == Status.Done
    rig.run(body())


# ---- RZ26 timing through the model -------------------------------------------------------------------
def _seek_csv() -> dict[int, float]:
    rows = [r for r in csv.reader(SEEK_CSV.read_text().splitlines()) if r and not r[0].startswith("#")]
    return {int(a): float(b) for a, b in rows[1:]}


def _first_lbn_of(geometry, cylinder: int) -> int:
    lo, hi = 0, geometry.blocks - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if geometry.lbn_to_pbn(mid).cylinder >= cylinder:
            hi = mid
        else:
            lo = mid + 1
    return lo


def test_seek_times_match_seek_csv(tmp_path) -> None:
    g = DiskParams.load().geometry
    r = Rig(tmp_path, blocks=g.blocks)       # the whole RZ26 (a sparse file)
    table = _seek_csv()
    first = g.lbn_to_pbn(0).cylinder
    last = g.lbn_to_pbn(g.blocks - 1).cylinder
    cases = [(1, table[1]), (10, table[10]), (100, table[100]), (1000, table[1000])]
    full = last - first
    cases.append((full, table[full]))
    measured = []

    async def body():
        # From the start of the first whole cylinder (the drive's read-ahead then stays on it)
        # outwards; full stroke: from the last block (nothing to read ahead) to block 0.
        # Each case starts on a cylinder not read before, so neither block is in the drive's
        # buffer (a hit would not move the arm).
        for i, (d, _) in enumerate(cases):
            if d == full:
                start, target = g.blocks - 1, 0
            else:
                c0 = first + 1 + 3 * i
                start, target = _first_lbn_of(g, c0), _first_lbn_of(g, c0 + d)
            await r.command(Command.Read, start, 1, 0)
            await r.command(Command.Read, target, 1, 0)
            assert abs(g.lbn_to_pbn(target).cylinder - g.lbn_to_pbn(start).cylinder) == d
            assert not r.m.last.breakdown.hit
            measured.append(r.m.last.breakdown.seek)
    r.run(body())
    for (d, ms), got in zip(cases, measured):
        assert got / MS == pytest.approx(ms, rel=0.01), f"seek of {d} cylinders"
    r.img.close()


def test_mean_rotational_latency(tmp_path) -> None:
    g = DiskParams.load().geometry
    r = Rig(tmp_path, blocks=g.blocks)
    rng = random.Random(2026)
    lat = []

    async def body():
        for _ in range(3000):
            await r.command(Command.Read, rng.randrange(g.blocks), 1, 0)
            b = r.m.last.breakdown
            if not b.hit:
                lat.append(b.rotation)
            await r.k.sleep(rng.randrange(1, 5 * MS))
    r.run(body())
    mean_ms = sum(lat) / len(lat) / MS
    assert len(lat) > 2900
    assert mean_ms == pytest.approx(5.6, rel=0.02)
    r.img.close()


# ---- power cut mid-write -----------------------------------------------------------------------------
def test_write_cut_off_leaves_whole_sectors(tmp_path) -> None:
    r = Rig(tmp_path, blocks=4096)
    rng = random.Random(5)
    old = _rand(rng, 120 * BS)
    new = _rand(rng, 120 * BS)
    r.img.write(1000, old)
    r.mem.write(0, new)
    lbn, count = 1000, 120      # crosses tracks: commits spread over several revolutions

    async def body():
        await r.setup(lbn, count, 0)
        await r.wr(Reg.Command, Command.Write)
    r.k.spawn(body())
    r.k.run(until=10 * MS)      # past the DMA phase: the drive has the request
    rec = r.m.last
    cut = rec.issue_ps + (rec.drive_done_ps - rec.issue_ps) // 2
    r.k.run(until=cut)
    written = r.m.sectors_written
    r.m.stop()
    r.k.run()
    assert 0 < written < count and r.m.sectors_written == written
    assert r.irq.level == 0 and r.m.last.done_ps is None
    with pytest.raises(SimulationError, match="stopped"):
        r.run(r.m.read(0))
    r.img.close()
    with DiskImage.open(tmp_path / "disk.img") as again:
        got = again.read(lbn, count)
    states = []
    for j in range(count):
        sector = got[j * BS:(j + 1) * BS]
        assert sector in (old[j * BS:(j + 1) * BS], new[j * BS:(j + 1) * BS]), f"sector {j} is torn"
        states.append(sector == new[j * BS:(j + 1) * BS])
    assert states == [True] * written + [False] * (count - written)


def test_sector_commit_times_equal_the_prefix_method() -> None:
    """The per-sector hook agrees with the mechanism's own completions of prefix writes."""
    from hw.disk.mechanism import DriveState, Op, Request
    from hw.disk.model import _SectorTimes
    mech = _SectorTimes()
    state = DriveState()
    # Leave the drive mid read-ahead, then write across several tracks.
    _, _, state = mech.service(Request(Op.Read, 5000, 8), state, 0)
    t = 20 * MS
    mech.log = []
    mech.service(Request(Op.Write, 77_000, 150), state, t)
    hook = mech.log
    mech.log = None
    wc = mech.params.overheads.write_completion
    prefix = [mech.service(Request(Op.Write, 77_000, j + 1), state, t)[0] - wc for j in range(150)]
    assert hook == prefix
    assert all(b > a for a, b in zip(hook, hook[1:]))


def _at_edge(e: int) -> int:
    """The request time whose access takes effect exactly at edge ``e``."""
    return e - (BUS_WAIT_CYCLES + 1) * P


@pytest.mark.parametrize("access", ["w1c", "status", "command"])
def test_accesses_on_the_completion_edge(rig, access) -> None:
    """On the edge at which an Inquire completes, the bus sees the registers as before it:
    a W1C of Done does not clear the new cause, STATUS still reads Busy, and a new command is
    rejected as Busy (as the RTL's registered state does)."""
    async def body():
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        t = rig.k.now
        await rig.wr(Reg.Command, Command.Inquire)
        e = CLOCK.edge_after(t) + BUS_WAIT_CYCLES * P
        f = e + (DECODE_CYCLES + IRQ_LATENCY_CYCLES) * P
        await rig.k.sleep_until(_at_edge(f))
        if access == "w1c":
            await rig.wr(Reg.IrqCause, Irq.Done)
            assert await rig.rd(Reg.IrqCause) == Irq.Done and rig.irq.level == 1
        elif access == "status":
            assert await rig.rd(Reg.Status) == Status.Busy
            assert await rig.rd(Reg.Status) == Status.Done
        else:
            await rig.wr(Reg.Command, Command.Inquire)
            assert await rig.rd(Reg.Error) == Error.Busy
            assert await rig.rd(Reg.Status) == Status.Done | Status.Error
            assert await rig.rd(Reg.IrqCause) == Irq.Done | Irq.Error
    rig.run(body())


def test_reset_mid_write_keeps_whole_sectors(tmp_path) -> None:
    r = Rig(tmp_path)
    rng = random.Random(8)
    old, new = _rand(rng, 100 * BS), _rand(rng, 100 * BS)
    r.img.write(2000, old)
    r.mem.write(0x1000, new)

    async def body():
        await r.setup(2000, 100, 0x1000)
        await r.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        await r.wr(Reg.Command, Command.Write)
        await r.k.sleep(25 * MS)
        n = r.m.sectors_written
        await r.wr(Reg.Command, Command.Reset)
        await r.k.sleep(100 * MS)
        assert 0 < n <= r.m.sectors_written < 100 and r.irq.raised == 0
        return r.m.sectors_written
    written = r.run(body())
    got = r.img.read(2000, 100)
    assert got == new[:written * BS] + old[written * BS:]
    r.img.close()


def test_rejection_on_the_completion_edge_is_order_independent(rig) -> None:
    """The same edge, with the bus write's effect run *before* the engine's completion."""
    async def body():
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        t = rig.k.now
        await rig.wr(Reg.Command, Command.Inquire)
        f = CLOCK.edge_after(t) + (BUS_WAIT_CYCLES + DECODE_CYCLES + IRQ_LATENCY_CYCLES) * P
        # An ordinary (not late) entry at f runs ahead of the engine's late wake-up.
        rig.k.call_at(f, lambda: rig.m._poke(int(Reg.Command), int(Command.Inquire), f))
        await rig.k.sleep_until(f + P)
        assert await rig.rd(Reg.Error) == Error.Busy
        assert await rig.rd(Reg.Status) == Status.Done | Status.Error
        assert await rig.rd(Reg.IrqCause) == Irq.Done | Irq.Error
    rig.run(body())


@pytest.mark.parametrize("cmd", [Command.Read, Command.Write])
def test_memory_refusing_a_burst_ends_the_command_with_dma_fault(rig, cmd) -> None:
    rig.img.write(0, b"\x77" * 16 * BS)
    before = rig.img.read(0, 16)
    # Page 2 (0x2000..0x2FFF) refuses every access, even the kernel's.
    rig.mem.access_check = lambda page, owner, requester, write: page != 2

    async def body():
        cause, error = await rig.command(cmd, 0, 16, 0x1000)     # buffer 0x1000..0x2FFF
        assert (cause, error) == (Irq.Done | Irq.Error, Error.DmaFault)
        assert await rig.rd(Reg.Status) == Status.Done | Status.Error
    rig.irq.on_change(lambda level: level and raised.append(rig.k.now))
    raised = []
    rig.run(body())
    # The 17th burst (block 8's first, page 2) is refused at its request edge S; the
    # controller samples err DMA_ERR_CYCLES later, finishes IRQ_LATENCY_CYCLES after that.
    rec = rig.m.last
    if cmd is Command.Read:
        dma_start, burst = CLOCK.edge_at_or_after(rec.drive_done_ps), DMA_WRITE_BURST_CYCLES
    else:
        dma_start, burst = rec.accepted_ps + DECODE_CYCLES * P, DMA_READ_BURST_CYCLES
    s = dma_start + (16 * (DMA_SETUP_CYCLES + burst) + 8 * BLOCK_DONE_CYCLES + DMA_SETUP_CYCLES) * P
    assert raised == [s + (DMA_ERR_CYCLES + IRQ_LATENCY_CYCLES) * P]
    if cmd is Command.Read:
        assert rig.mem.read(0x1000, 0x1000) == b"\x77" * 0x1000    # page 1's bursts landed
        assert rig.mem.data[0x2000:0x3000] == bytes(0x1000)
    else:
        assert rig.img.read(0, 16) == before and rig.m.sectors_written == 0


@pytest.mark.parametrize("order", ["before", "after"])
def test_rejection_on_the_dma_fault_edge_leaves_busy(rig, order) -> None:
    """A command rejected on the edge at which a DmaFault ends the running one: ERROR = Busy,
    STATUS = Done | Error, IRQ_CAUSE = Done | Error (as the RTL, whose rejection is written
    last), whichever of the two the kernel runs first."""
    rig.mem.access_check = lambda page, owner, requester, write: page != 2

    async def body():
        await rig.setup(5, 1, 0x2000)                # refused at its first burst
        await rig.wr(Reg.IrqEnable, Irq.Done | Irq.Error)
        await rig.wr(Reg.Command, Command.Read)
        rec = rig.m.last
        await rig.k.sleep_until(rec.issue_ps + 1)
        s = CLOCK.edge_at_or_after(rec.drive_done_ps) + DMA_SETUP_CYCLES * P
        f = s + (DMA_ERR_CYCLES + IRQ_LATENCY_CYCLES) * P
        poke = lambda: rig.m._poke(int(Reg.Command), int(Command.Inquire), f)   # noqa: E731
        if order == "before":       # an ordinary entry runs ahead of the engine's late wake
            rig.k.call_at(f, poke)
        else:                       # a late entry pushed after the engine's runs after it
            rig.k.call_at(f - P // 2, lambda: rig.k.call_at(f, poke, late=True))
        await rig.irq.wait_high()
        assert rig.k.now == f
        await rig.k.sleep_until(f + P)
        assert await rig.rd(Reg.Error) == Error.Busy
        assert await rig.rd(Reg.Status) == Status.Done | Status.Error
        assert await rig.rd(Reg.IrqCause) == Irq.Done | Irq.Error
    rig.run(body())


def test_registers_written_while_busy_do_not_affect_the_running_command(rig) -> None:
    rig.img.write(40, b"\x42" * 4 * BS)

    async def body():
        await rig.setup(40, 4, 0x3000)
        await rig.wr(Reg.IrqEnable, Irq.Done)
        await rig.wr(Reg.Command, Command.Read)
        await rig.setup(900, 1, 0x9000)            # while busy: allowed, sampled only at COMMAND
        assert await rig.rd(Reg.Status) == Status.Busy
        await rig.irq.wait_high()
        assert (await rig.rd(Reg.Lbn), await rig.rd(Reg.Count)) == (900, 1)
    rig.run(body())
    rec = rig.m.last
    assert (rec.lbn, rec.count, rec.dma_addr) == (40, 4, 0x3000)
    assert rig.mem.read(0x3000, 4 * BS) == b"\x42" * 4 * BS and rig.mem.read(0x9000, BS) == bytes(BS)
