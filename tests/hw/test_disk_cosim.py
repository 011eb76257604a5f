"""The disk controller's RTL in the loop (DISK.bind_rtl) against its model (DISK.attach_model).

One program of register accesses runs on a machine whose disk is the model and on one whose
disk is the RTL (:class:`hw.disk.harness.DiskHarness` in an :class:`sim.bindings.session.RtlSimulation`,
its DMA served by :class:`sim.bindings.dma.DmaServer` from the machine's
:class:`sim.memory.Memory`, its media by the drive firmware over the same kind of image). Both
must give the same interrupt times (to the picosecond), causes and errors, the same memory and
the same image, with the 3MIN's memory and with memories slower and faster than the
controller's fixed DMA burst.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
import time

import pytest

from hw.disk.attach import DISK
from hw.disk.image import DiskImage
from hw.disk.mechanism import DiskParams
from hw.disk.registers import (BUS_WAIT_CYCLES, CLOCK_PERIOD_PS, DMA_READ_BURST_CYCLES,
                               DMA_WRITE_BURST_CYCLES, Command, Error, Irq, Reg)
from sim.bindings.session import RtlSimulation
from sim.bus import Bus
from sim.devices import DeviceSpec, MachinePorts
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.base import Cost
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE

from test_disk_gateware import (BS, CAPACITY, DMAFAULT_CODES, DMAFAULT_PAGES, MEM_SIZE,
                                RZ26_CAPACITY, Cmd, cpu_program, dmafault_program,
                                expected_after, fast_params, initial_media, media_for,
                                random_program, refusing)

P = CLOCK_PERIOD_PS
#: A memory whose DMA bursts end off the controller's edges and later than its fixed burst time
#: (66 x 97.3 ns = 80.3 cycles for a 64-word write), and one that is quicker than it.
SLOW = dataclasses.replace(PROFILE, name="test-slow-memory", mem_cycle_ps=Cost(
    97_300, "ps", "estimate: a test memory slower than the 3MIN's, ending bursts off-edge"))
FAST = dataclasses.replace(PROFILE, name="test-fast-memory", mem_cycle_ps=Cost(
    30_000, "ps", "estimate: a test memory quicker than the controller's fixed burst"))


_images = itertools.count()


@dataclasses.dataclass
class Run:
    """What a program observed on one machine."""

    events: list[tuple[int, int, int]]
    memory: bytes
    image: dict[int, bytes]
    attached: object
    wall_s: float = 0.0
    wakes: int = 0                     # Python wakes of the RTL run


def run(prog: list[Cmd | int], media: dict[int, bytes], memory: bytes, tmp_path, *, impl: str,
        backend: str = "verilator", profile=PROFILE, check=None, rival: int = 0,
        params=None, capacity: int = CAPACITY, mem_size: int = MEM_SIZE) -> Run:
    """Run ``prog`` on a machine whose disk is ``impl`` (``"model"`` or ``"rtl"``).

    A step of ``prog`` that is an int sleeps that many ps. ``check(page, owner, requester,
    write)``, if given, is the memory's access check. ``rival`` DMA reads of a burst each, by
    another master, 1.5 us apart (off the controller's edges), compete for the memory.
    The disk is the fast test drive unless ``params`` (and ``capacity``) name another; the
    image has ``capacity`` blocks, the memory ``mem_size`` bytes (the RTL's straps).
    """
    k = Kernel()
    mem = Memory(k, mem_size, profile=profile, name="m.mem")
    mem.write(0, memory)
    if check is not None:
        mem.access_check = check
    img = DiskImage.create(tmp_path / f"{impl}-{next(_images)}.img", capacity, persist=False)
    for lbn, data in media.items():
        img.write(lbn, data)
    machine = MachinePorts(k, "m", Bus(k, "m.bus"), mem)
    spec = DeviceSpec("disk", "rz0", 0x1000, {"image": img, "params": params or fast_params()})
    sim = None
    if impl == "model":
        att = DISK.attach_model(machine, spec)
    else:
        sim = RtlSimulation(k, backend)
        sim.add("m_rz0", DISK, spec)
        sim.start()
        att = DISK.bind_rtl(machine, spec, sim.access("m_rz0"), sim.driver)
    events = []
    async def other_master():
        for _ in range(rival):
            await k.sleep_until(k.now + 1_500_013)
            await mem.dma_read(0xFF00, 256)

    task = k.spawn(cpu_program(k, att.target, att.irq, mem, prog, events))
    k.spawn(other_master(), daemon=True)
    t0 = time.perf_counter()
    if sim is None:
        k.run()
    else:
        try:
            sim.run()
        finally:
            sim.close()
    wall = time.perf_counter() - t0
    wakes = sim.stats.wakes if sim is not None else 0
    assert task.done and task.exception is None, task.exception
    lbns = sorted(set(media) | {c.lbn + i for c in prog if isinstance(c, Cmd)
                                for i in range(c.count) if c.lbn + i < capacity})
    image = {lbn: img.read(lbn) for lbn in lbns}
    img.close()
    return Run(events, bytes(mem.data), image, att, wall, wakes)


def assert_same(model: Run, rtl: Run) -> None:
    assert rtl.events == model.events
    assert rtl.memory == model.memory
    assert rtl.image == model.image


def program_a() -> list[Cmd]:
    """Writes and reads, single and multi-block, a sequential run (the drive's cache), an
    Inquire and a rejected command."""
    rng = random.Random(5)
    return [
        Cmd(Command.Write, 100, 3, 0x2000, rng.randbytes(3 * BS)),
        Cmd(Command.Read, 100, 3, 0x5000),
        Cmd(Command.Read, 40, 1, 0x0200),
        Cmd(Command.Read, 41, 2, 0x8000),               # continues the read-ahead stream
        Cmd(Command.Inquire),
        Cmd(Command.Read, CAPACITY, 1, 0x800, ok=False),  # OutOfRange
        Cmd(Command.Write, 7, 2, 0xA000, rng.randbytes(2 * BS)),
    ]


@pytest.mark.hdl
@pytest.mark.parametrize("profile", [PROFILE, SLOW, FAST], ids=["3min", "late", "early"])
def test_rtl_in_the_loop_equals_the_model(tmp_path, profile) -> None:
    prog, media = program_a(), initial_media(3)
    memory = random.Random(4).randbytes(MEM_SIZE)
    model = run(prog, media, memory, tmp_path, impl="model", profile=profile)
    rtl = run(prog, media, memory, tmp_path, impl="rtl", profile=profile)
    assert_same(model, rtl)
    assert [e[1:] for e in model.events] == [(Irq.Done, Error.None_)] * 5 + [
        (Irq.Error, Error.OutOfRange), (Irq.Done, Error.None_)]
    dma = rtl.attached.parts["dma"]
    # 3 + 3 + 1 + 2 + 2 blocks of 2 bursts: 6 blocks into memory (Reads), 5 from it (Writes).
    assert dma.bursts == 22 and dma.faults == 0 and dma.stale == 0
    assert (dma.bytes_written, dma.bytes_read) == (6 * BS, 5 * BS)
    media_ops = rtl.attached.parts["media"].transactions
    assert media_ops["Write"] == 5 and media_ops["Commit"] == 5
    # Python wakes per transaction (bursts, media transactions, bus accesses: a few each),
    # never per cycle: the program runs ~25 000 cycles.
    transactions = dma.bursts + sum(media_ops.values()) + 6 * len(prog) + len(model.events) * 3
    assert rtl.wakes <= 4 * transactions < model.events[-1][0] // P // 10


@pytest.mark.hdl
def test_capacity_and_memory_size_are_straps(tmp_path) -> None:
    """The same build (one per drive) with a smaller image and memory than the other tests':
    the RTL takes CAPACITY from the image and the DmaFault bound from the memory, at the
    model's picoseconds."""
    capacity, mem_size = CAPACITY // 2, MEM_SIZE // 2
    prog = [Cmd(Command.Read, capacity - 2, 2, mem_size - 2 * BS),
            Cmd(Command.Read, capacity - 1, 2, 0x800, ok=False),        # OutOfRange
            Cmd(Command.Read, 5, 1, mem_size - BS + 4, ok=False),       # DmaFault at once
            Cmd(Command.Write, capacity - 1, 1, 0x400, bytes(range(256)) * 2)]
    media, memory = initial_media(7, capacity), random.Random(8).randbytes(mem_size)
    kw = dict(capacity=capacity, mem_size=mem_size)
    model = run(prog, media, memory, tmp_path, impl="model", **kw)
    assert_same(model, run(prog, media, memory, tmp_path, impl="rtl", **kw))
    assert [e[1:] for e in model.events] == [(Irq.Done, Error.None_), (Irq.Error, Error.OutOfRange),
                                             (Irq.Error, Error.DmaFault), (Irq.Done, Error.None_)]


@pytest.mark.hdl
def test_a_burst_ends_where_the_slow_memory_lets_it(tmp_path) -> None:
    """With the slow memory every burst lasts the memory's time, not the fixed one: the same
    command takes longer than with the 3MIN's memory, by what the model says."""
    prog = [Cmd(Command.Read, 10, 2, 0x1000)]
    media, memory = initial_media(1), bytes(MEM_SIZE)
    fast = run(prog, media, memory, tmp_path, impl="rtl")
    slow = run(prog, media, memory, tmp_path, impl="rtl", profile=SLOW)
    bursts = 4
    per_burst = SLOW.dma_ps(4 * 64, write=True)
    assert per_burst > DMA_WRITE_BURST_CYCLES * P and per_burst % P
    extra = -(-per_burst // P) - DMA_WRITE_BURST_CYCLES
    assert slow.events[0][0] - fast.events[0][0] == bursts * extra * P


@pytest.mark.hdl
def test_random_program_equals_the_model(tmp_path) -> None:
    prog = random_program(11, 12)
    media, memory = initial_media(12), random.Random(13).randbytes(MEM_SIZE)
    assert_same(run(prog, media, memory, tmp_path, impl="model"),
                run(prog, media, memory, tmp_path, impl="rtl"))


@pytest.mark.hdl
def test_another_dma_master_delays_the_bursts_alike(tmp_path) -> None:
    """A second master's bursts queue with the controller's at the memory: the same delays."""
    prog, media = program_a(), initial_media(3)
    memory = random.Random(6).randbytes(MEM_SIZE)
    alone = run(prog, media, memory, tmp_path, impl="model")
    model = run(prog, media, memory, tmp_path, impl="model", rival=300)
    rtl = run(prog, media, memory, tmp_path, impl="rtl", rival=300)
    assert_same(model, rtl)
    assert model.events != alone.events      # the rival did delay some bursts


@pytest.mark.hdl
@pytest.mark.parametrize("after_us", [20, 300, 650], ids=["dma", "seek", "commits"])
def test_reset_mid_write(tmp_path, after_us) -> None:
    """A Reset during a 4-block Write (its DMA from memory, the drive's seek, between its
    sector commits) abandons it as the model does: the same sectors written, no interrupt;
    the next command runs normally."""
    rng = random.Random(21)
    prog = [Cmd(Command.Write, 200, 4, 0x3000, rng.randbytes(4 * BS), wait=False),
            after_us * 1_000_000,
            Cmd(Command.Reset, raw=True, wait=False),
            Cmd(Command.Read, 198, 8, 0x6000)]
    media, memory = initial_media(22), bytes(MEM_SIZE)
    model = run(prog, media, memory, tmp_path, impl="model")
    assert_same(model, run(prog, media, memory, tmp_path, impl="rtl"))
    written = sum(model.image[200 + i] != media[200 + i] for i in range(4))
    assert written == 0 if after_us < 650 else 0 < written < 4


@pytest.mark.hdl
def test_memory_changed_under_a_dma_read_is_counted(tmp_path) -> None:
    """The CPU rewrites a Write's buffer while the first burst reads it. The model takes the
    bytes at the burst's end (the memory's dma_read), the RTL at its start: the difference is
    counted (DmaServer.stale), not hidden."""
    old, new = bytes([0x11]) * BS, bytes([0x22]) * 256
    prog = [Cmd(Command.Write, 300, 1, 0x2000, old, wait=False),
            27 * P + 13,                   # to 50 P: the first burst reads memory from 28 P to 96 P
            Cmd(None, addr=0x2000, fill=new, wait=False),
            Cmd(None)]
    media, memory = initial_media(23), bytes(MEM_SIZE)
    model = run(prog, media, memory, tmp_path, impl="model")
    rtl = run(prog, media, memory, tmp_path, impl="rtl")
    assert model.events == rtl.events
    assert model.image[300] == new + old[256:] and rtl.image[300] == old
    assert rtl.attached.parts["dma"].stale == 1


@pytest.mark.hdl
@pytest.mark.parametrize("backend", ["verilator", "amaranth"])
def test_refused_dma_ends_with_dma_fault_as_the_model(tmp_path, backend) -> None:
    """Pages 2 and 9 refuse every DMA (the memory's ownership check). The DmaServer reports each
    refused burst to the bridge, which ends it with err; the controller ends the command with
    DmaFault at the model's picosecond, with the same memory (the bursts before the refused
    one landed) and image (a Write refused mid-way writes no sector); the next commands run."""
    prog, media, memory = dmafault_program()
    check = refusing(DMAFAULT_PAGES)
    model = run(prog, media, memory, tmp_path, impl="model", check=check)
    rtl = run(prog, media, memory, tmp_path, impl="rtl", check=check, backend=backend)
    assert_same(model, rtl)
    assert [e[1:] for e in model.events] == DMAFAULT_CODES
    exp_mem, exp_img = expected_after(prog, media, memory, DMAFAULT_PAGES)
    assert model.memory == exp_mem and all(model.image[k] == v for k, v in exp_img.items())
    dma = rtl.attached.parts["dma"]
    assert dma.faults == 3 and isinstance(dma.last_fault, PermissionError)


@pytest.mark.hdl
def test_amaranth_backend_equals_the_model(tmp_path) -> None:
    rng = random.Random(31)
    prog = [Cmd(Command.Write, 60, 1, 0x4000, rng.randbytes(BS)),
            Cmd(Command.Read, 60, 1, 0x7000)]
    media, memory = initial_media(32), bytes(MEM_SIZE)
    assert_same(run(prog, media, memory, tmp_path, impl="model"),
                run(prog, media, memory, tmp_path, impl="rtl", backend="amaranth"))


@pytest.mark.slow
@pytest.mark.hdl
@pytest.mark.parametrize("seed", range(5))
def test_random_programs_sweep(tmp_path, seed) -> None:
    prog = random_program(100 + seed, 40)
    media, memory = initial_media(200 + seed), random.Random(300 + seed).randbytes(MEM_SIZE)
    profile = (PROFILE, SLOW, FAST)[seed % 3]
    assert_same(run(prog, media, memory, tmp_path, impl="model", profile=profile, rival=seed * 50),
                run(prog, media, memory, tmp_path, impl="rtl", profile=profile, rival=seed * 50))


@pytest.mark.slow
@pytest.mark.hdl
def test_rz26_hundred_reads(tmp_path) -> None:
    """A disk-heavy run on the real drive: 100 random Reads of 1 to 8 blocks."""
    rng = random.Random(41)
    prog = [Cmd(Command.Read, rng.randrange(RZ26_CAPACITY - 8), rng.randint(1, 8),
                rng.randrange(0, MEM_SIZE - 8 * BS, 4)) for _ in range(100)]
    media, memory = media_for(prog, 42), bytes(MEM_SIZE)
    model = run(prog, media, memory, tmp_path, impl="model", params=DiskParams.load(),
                capacity=RZ26_CAPACITY)
    rtl = run(prog, media, memory, tmp_path, impl="rtl", params=DiskParams.load(),
              capacity=RZ26_CAPACITY)
    assert_same(model, rtl)
    print(f"100 RZ26 reads: {rtl.events[-1][0] / 1e12:.3f} simulated s in {rtl.wall_s:.2f} s "
          f"wall (RTL, verilator; {rtl.wakes} Python wakes), {model.wall_s:.2f} s (model)")


def test_disk_kind_parameters_and_build_key(tmp_path) -> None:
    img = DiskImage.create(tmp_path / "k.img", 64, persist=False)
    spec = lambda **p: DeviceSpec("disk", "rz0", 0x1000, {"image": img, **p})  # noqa: E731
    for params, match in (({"colour": 1}, "unknown parameter"), ({"image": 3}, "image must be"),
                          ({"params": "rz26"}, "params must be"), ({"mem_size": 0}, "mem_size")):
        with pytest.raises(ValueError, match=match):
            DISK.check(spec(**params))
    with pytest.raises(ValueError, match="base must be"):
        DISK.check(DeviceSpec("disk", "rz0", 0x1004, {"image": img}))
    big = DiskImage.create(tmp_path / "big.img", 4096, persist=False)
    # One build per drive: neither the image nor the memory size is in the key.
    keys = {DISK.harness_key(spec()), DISK.harness_key(spec(params=DiskParams.load())),
            DISK.harness_key(spec(mem_size=MEM_SIZE)), DISK.harness_key(spec(image=big)),
            DISK.harness_key(spec(params=fast_params()))}
    assert len(keys) == 2 and DISK.harness_key(spec()) == "disk_harness_rz26"
    k = Kernel()
    machine = MachinePorts(k, "m", Bus(k), Memory(k, MEM_SIZE, profile=PROFILE))
    with pytest.raises(ValueError, match="mem_size is 0x20000 bytes, but 'm' has 0x10000"):
        DISK.bind_rtl(machine, spec(mem_size=2 * MEM_SIZE), access=None, driver=None)
    blocks = fast_params().geometry.blocks
    with pytest.raises(ValueError, match=f"the image has 4096 blocks, the drive 1 .. {blocks}$"):
        DISK.bind_rtl(machine, spec(image=big, params=fast_params()), access=None, driver=None)
    big.close()
    model = DISK.attach_model(machine, spec())
    assert model.irq.name == "m.rz0.irq" and model.parts["image"] is img
    img.close()
