"""The disk driver over the controller's model: data, errors, CPU charges, serialization."""
from __future__ import annotations

import random

import pytest

from hw.disk.image import DiskImage
from hw.disk.model import DiskControllerModel
from hw.disk.registers import CLOCK_PERIOD_PS, WINDOW_SIZE, Error
from sim.bus import Bus, IrqLine
from sim.cpu import CPU, INTERRUPT, IO_WAIT
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE
from sim.time import Clock
from sw.drivers.disk import DiskDriver, DiskError

BASE = 0x1C00_0000
BS = 512
MEM = 1 << 20


class Machine:
    def __init__(self, tmp_path, blocks: int = 2048) -> None:
        self.k = Kernel()
        self.mem = Memory(self.k, MEM, profile=PROFILE)
        self.bus = Bus(self.k)
        self.cpu = CPU(self.k, PROFILE)
        self.irq = IrqLine(self.k, "disk")
        self.img = DiskImage.create(tmp_path / "d.img", blocks, persist=True)
        self.ctl = DiskControllerModel(self.k, Clock(CLOCK_PERIOD_PS), memory=self.mem,
                                       image=self.img, irq=self.irq)
        self.bus.map(BASE, WINDOW_SIZE, self.ctl, "disk")
        self.drv = DiskDriver(self.cpu, self.bus, BASE, self.mem, self.irq)

    def run(self, coro):
        t = self.k.spawn(coro, name="main")
        self.k.run()
        assert t.done
        if t.exception is not None:
            raise t.exception
        return t.result


@pytest.fixture
def mach(tmp_path):
    m = Machine(tmp_path)
    yield m
    m.img.close()


def test_capacity_and_charges(mach) -> None:
    async def body():
        return await mach.drv.capacity()
    assert mach.run(body()) == 2048
    assert (mach.drv.blocks, mach.drv.block_size) == (2048, BS)
    rep = mach.cpu.report()
    assert rep.by_category[IO_WAIT].ps > 0          # register accesses stall the CPU
    assert rep.by_category[INTERRUPT].ps > 0        # dispatch and the handler's accesses
    assert rep.interrupts == {"disk": 1} and mach.drv.stats.interrupts == 1
    assert mach.irq.level == 0


def test_reads_and_writes_match_a_reference(mach) -> None:
    rng = random.Random(9)
    ref = bytearray(2048 * BS)

    async def body():
        for _ in range(30):
            count = rng.randint(1, 16)
            lbn = rng.randrange(2048 - count + 1)
            addr = rng.randrange(0, MEM - count * BS, 4)
            if rng.random() < 0.5:
                data = rng.randbytes(count * BS)
                mach.mem.write(addr, data)
                await mach.drv.write(lbn, count, addr)
                ref[lbn * BS:(lbn + count) * BS] = data
            else:
                await mach.drv.read(lbn, count, addr)
                assert mach.mem.read(addr, count * BS) == bytes(ref[lbn * BS:(lbn + count) * BS])
    mach.run(body())
    assert mach.img.read(0, 2048) == bytes(ref)
    s = mach.drv.stats
    assert s.reads + s.writes == 30 and s.interrupts == 30 and s.errors == 0


def test_controller_errors_raise_disk_error_naming_the_cause(mach) -> None:
    async def body():
        with pytest.raises(DiskError, match="OutOfRange") as ei:
            await mach.drv.read(2047, 2, 0)
        assert ei.value.code is Error.OutOfRange
        with pytest.raises(DiskError, match="ZeroLength"):
            await mach.drv.write(0, 0, 0)
        await mach.drv.read(0, 1, 0)                # the driver keeps working
        assert mach.drv.stats.errors == 2
    mach.run(body())
    assert mach.ctl.history[-1].lbn == 0 and len(mach.ctl.history) == 1


@pytest.mark.parametrize("args, exc, msg", [
    ((0, 1, 2), ValueError, "word aligned, not 0x2"),
    ((0, 4, MEM - 1024), ValueError, "runs past the end of memory"),
    ((-1, 1, 0), ValueError, "lbn must be in"),
    ((0, 1.5, 0), TypeError, "count must be an int, not 1.5"),
    (("0", 1, 0), TypeError, "lbn must be an int"),
])
def test_bad_arguments_are_refused_before_the_controller_sees_them(mach, args, exc, msg) -> None:
    async def body():
        with pytest.raises(exc, match=msg):
            await mach.drv.read(*args)
    mach.run(body())
    assert mach.ctl.history == []


def test_concurrent_requests_are_serialized(mach) -> None:
    mach.img.write(10, b"\x11" * BS * 4)
    mach.img.write(900, b"\x22" * BS * 4)
    done = []

    async def reader(lbn, addr):
        await mach.drv.read(lbn, 4, addr)
        done.append(lbn)

    async def body():
        a = mach.k.spawn(reader(10, 0x1000))
        b = mach.k.spawn(reader(900, 0x9000))
        await a
        await b
    mach.run(body())
    assert done == [10, 900]
    assert mach.mem.read(0x1000, 4 * BS) == b"\x11" * BS * 4
    assert mach.mem.read(0x9000, 4 * BS) == b"\x22" * BS * 4
    recs = mach.ctl.history
    assert recs[1].accepted_ps > recs[0].done_ps     # one command at a time, no Busy errors


def test_constructor_validates(tmp_path) -> None:
    m = Machine(tmp_path)
    with pytest.raises(TypeError, match="cpu must be"):
        DiskDriver(None, m.bus, BASE, m.mem, m.irq)
    with pytest.raises(ValueError, match="word-aligned address, not 0x2"):
        DiskDriver(m.cpu, m.bus, 2, m.mem, m.irq)
    with pytest.raises(TypeError, match="irq must be"):
        DiskDriver(m.cpu, m.bus, BASE, m.mem, "irq")
    m.img.close()
