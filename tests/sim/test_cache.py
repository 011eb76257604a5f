"""The R3000 memory system (sim.cache) through the CPU: cached and uncached copies, the write
buffer, checksums, cold kernel paths, the host side of PIO loops, determinism."""
import sys

import pytest

from sim import cache
from sim.bus import Bus
from sim.cache import AddressSpace, DirectMappedCache, MemorySystem, Region
from sim.cpu import CHECKSUM, COPY, CPU, IO_WAIT, KERNEL, MEMORY_STALL
from sim.kernel import Kernel, SimulationError
from sim.platforms import CLIENT_PENTIUM100_OPENBSD as PENTIUM
from sim.platforms import DECSTATION_5000_125_ULTRIX43 as MIN3
from sim.platforms import DECSTATION_5000_200_ULTRIX as MAX3
from sim.time import NS

KB = 1024


def run(profile, body):
    """Run ``body(cpu)`` (a coroutine function) on a fresh machine; return the CPU."""
    k = Kernel()
    cpu = CPU(k, profile, "cpu")
    k.spawn(body(cpu))
    k.run()
    return cpu


def timed(cpu, coro_fn):
    """Simulated cycles one awaited operation takes (measured by the caller's clock)."""
    async def go():
        t0 = cpu.kernel.now
        await coro_fn()
        return (cpu.kernel.now - t0) // cpu.period
    return go()


def cycles_of(profile, nbytes, passes, *, src_size=None):
    """Cycles per word of the last of ``passes`` copies of ``nbytes`` between two regions."""
    out = []

    async def body(cpu):
        src = cpu.region("src", src_size or nbytes)
        dst = cpu.region("dst", nbytes)
        for _ in range(passes):
            t0 = cpu.kernel.now
            await cpu.copy(nbytes, src=src, dst=dst)
            out.append(cpu.kernel.now - t0)

    cpu = run(profile, body)
    return out[-1] / cpu.period / (nbytes // 4), cpu


@pytest.mark.parametrize("profile, per_word", [(MIN3, 16), (MAX3, 8)])
def test_a_copy_over_128_KB_runs_at_the_uncached_rate_every_time(profile, per_word):
    # 256 KB of source and 256 KB of destination cannot stay in a 128 KB (or 64 KB) data cache:
    # every source word is a read miss (5 memory cycles) followed by a write (3): 8 memory cycles
    # of 80 ns = 16 CPU cycles per word on the 3MIN, of 40 ns = 8 on the 3MAX.
    for passes in (1, 3):
        got, _ = cycles_of(profile, 256 * KB, passes)
        assert got == pytest.approx(per_word, rel=0.002)


@pytest.mark.parametrize("profile, per_word", [(MIN3, 6), (MAX3, 3)])
def test_a_copy_of_a_cached_buffer_runs_at_the_write_buffer_rate(profile, per_word):
    # 16 KB + 16 KB fit in the data cache: the second copy's loads all hit and the stores
    # drain through the 4-entry write buffer at one word write (3 memory cycles) each.
    first, _ = cycles_of(profile, 16 * KB, 1)
    again, cpu = cycles_of(profile, 16 * KB, 2)
    assert again == pytest.approx(per_word, rel=0.01)
    assert first > 2 * again
    r = cpu.report().by_category
    # instruction cycles are the copy's, the waiting is the memory system's
    assert r[COPY].cycles > 0 and r[MEMORY_STALL].cycles > 0


def test_uncached_bcopy_rate_on_the_5000_200_is_near_ousterhouts_measurement():
    # VALIDATION U4/U9: 12.6 MB/s uncached on a DS5000/200 (about 2 cycles per byte)
    per_word, _ = cycles_of(MAX3, 1024 * KB, 1)
    assert 25e6 * 4 / per_word / 1e6 == pytest.approx(12.6, rel=0.05)


def test_a_copy_just_over_the_cache_misses_and_one_under_hits_on_the_second_pass():
    # source 96 KB: with a 96 KB destination the pair (192 KB) overflows the 3MIN's 128 KB
    # data cache and conflicts; 32 KB + 32 KB fit.
    big, _ = cycles_of(MIN3, 96 * KB, 2)
    small, _ = cycles_of(MIN3, 32 * KB, 2)
    assert small == pytest.approx(6, rel=0.01)
    assert big > 10


def test_write_buffer_stalls_only_when_stores_outrun_memory():
    ms = MemorySystem(MIN3)
    dst = ms.space.allocate("dst", 4 * KB)
    # One cycle of issue per word: the 4-entry buffer absorbs 4 stores, then each store waits
    # for a word write to drain (6 cycles on the 3MIN).
    fast = ms.write(0, 400, dst, issue_per_word=1)
    assert fast.issue == 100
    assert fast.cycles == pytest.approx((100 - 4) * 6, abs=2)
    # Eight cycles of issue per word: the memory keeps up, no stall.
    ms2 = MemorySystem(MIN3)
    slow = ms2.write(0, 400, ms2.space.allocate("dst", 4 * KB), issue_per_word=8)
    assert slow.stall == 0 and slow.issue == 800
    # A burst right after another finds the buffer still full and waits for it.
    again = ms.write(fast.cycles * MIN3.cycle_ps, 16, dst, issue_per_word=1)
    assert again.stall > 0


def test_a_read_miss_waits_for_the_write_buffer_to_drain():
    ms = MemorySystem(MIN3)
    a = ms.space.allocate("a", 4 * KB)
    b = ms.space.allocate("b", 4 * KB)
    w = ms.write(0, 16, a, issue_per_word=1)          # 4 words queued, 24 cycles of draining
    assert w.stall == 0
    r = ms.read(w.cycles * MIN3.cycle_ps, 4, b, issue_per_word=1)
    # the miss waits for the drain (24 - 4 cycles left) then reads (10 cycles)
    assert r.cycles == pytest.approx(20 + 10, abs=1)


@pytest.mark.parametrize("profile", [MIN3, MAX3])
def test_checksum_reproduces_the_calibrated_rows(profile):
    n = 1460
    got = {}

    async def body(cpu):
        buf = cpu.region("buf", 2048)
        for key in ("cold", "warm"):
            t0 = cpu.kernel.now
            await cpu.checksum(n, src=buf)
            got[key] = (cpu.kernel.now - t0) // cpu.period

    run(profile, body)
    assert got["cold"] == pytest.approx(profile.checksum_cycles(n, cached=False), abs=2)
    assert got["warm"] == profile.checksum_cycles(n, cached=True)


def test_callers_without_addresses_keep_the_flat_rows():
    got = []

    async def body(cpu):
        for cached in (False, True):
            t0 = cpu.kernel.now
            await cpu.copy(1460, cached)
            got.append((cpu.kernel.now - t0) // cpu.period)
        await cpu.checksum(1460)

    cpu = run(MIN3, body)
    assert got == [MIN3.copy_cycles(1460), MIN3.copy_cycles(1460, cached=True)]
    assert MEMORY_STALL not in cpu.report().by_category
    assert cpu.report().by_category[CHECKSUM].cycles == MIN3.checksum_cycles(1460)


def test_a_machine_without_a_memory_system_prices_addressed_copies_by_its_rows():
    got = []

    async def body(cpu):
        a, b = cpu.region("a", 4096), cpu.region("b", 4096)
        t0 = cpu.kernel.now
        await cpu.copy(4096, src=a, dst=b)
        got.append((cpu.kernel.now - t0) // cpu.period)

    run(PENTIUM, body)
    assert got == [PENTIUM.copy_cycles(4096)]


def test_a_kernel_path_pays_its_cold_misses_once_until_evicted():
    got = []

    async def body(cpu):
        for _ in range(2):
            t0 = cpu.kernel.now
            await cpu.path("tcp_input", 200, code_bytes=2 * KB, data_bytes=256)
            got.append((cpu.kernel.now - t0) // cpu.period)
        # a 256 KB copy flushes the data cache (not the instruction cache)
        await cpu.copy(256 * KB, src=cpu.region("s", 256 * KB), dst=cpu.region("d", 256 * KB))
        t0 = cpu.kernel.now
        await cpu.path("tcp_input", 200, code_bytes=2 * KB, data_bytes=256)
        got.append((cpu.kernel.now - t0) // cpu.period)

    cpu = run(MIN3, body)
    warm = MIN3.instructions(200)
    lines = (2 * KB + 256) // 4
    assert got[1] == warm
    assert got[0] == warm + lines * 9                 # 10-cycle misses, one cycle in the count
    # after the copy only the 64 data lines miss; the first waits out the copy's last stores
    assert warm + 64 * 9 <= got[2] <= warm + 64 * 9 + 4 * 6
    assert cpu.report().by_category[KERNEL].cycles == 3 * warm


def test_a_path_declared_with_another_footprint_is_refused():
    async def body(cpu):
        await cpu.path("x", 10, code_bytes=64)
        await cpu.path("x", 10, code_bytes=128)

    with pytest.raises(SimulationError, match="has 64 bytes, not 128"):
        run(MIN3, body)


class Card:
    """A BusTarget like a card's buffer RAM: reads take 480 ns, writes 320 ns."""

    def __init__(self, k):
        self.k, self.regs = k, {}

    async def read(self, offset):
        await self.k.sleep(480 * NS)
        return self.regs.get(offset, 0)

    async def write(self, offset, value):
        await self.k.sleep(320 * NS)
        self.regs[offset] = value


def test_pio_loops_pay_for_the_host_memory_side():
    got = {}

    async def body(cpu):
        bus = Bus(cpu.kernel)
        bus.map(0, 0x10000, Card(cpu.kernel), "card")
        frame = cpu.region("frame", 1500)
        words = list(range(375))
        for key, kw in (("bare", {}), ("cold", {"src": frame}), ("warm", {"src": frame})):
            t0 = cpu.kernel.now
            await cpu.store_words(bus, 0, words, **kw)
            got[key] = (cpu.kernel.now - t0) // cpu.period
        for key, kw in (("in-bare", {}), ("in", {"dst": cpu.region("rx", 1500)})):
            await cpu.charge(1000)                    # let the write buffer drain
            t0 = cpu.kernel.now
            await cpu.load_words(bus, 0, 375, **kw)
            got[key] = (cpu.kernel.now - t0) // cpu.period

    cpu = run(MIN3, body)
    assert got["cold"] == got["bare"] + 375 * 10       # each source word a 400 ns read miss
    assert got["warm"] == got["bare"]                  # the frame was just read: cached
    assert got["in"] == got["in-bare"] + 374 * 6       # stores drain between the card's reads
    r = cpu.report().by_category
    assert r[MEMORY_STALL].cycles == 375 * 10 + 374 * 6
    assert r[IO_WAIT].cycles > 0


def test_the_memory_system_is_deterministic():
    def once():
        async def body(cpu):
            a, b = cpu.region("a", 200 * KB), cpu.region("b", 48 * KB)
            for n in (1460, 48 * KB, 200 * KB, 512, 1460):
                await cpu.copy(n, src=a, dst=b)
                await cpu.checksum(n, src=b)
                await cpu.path("ipintr", 120, code_bytes=1200, data_bytes=128)
        cpu = run(MIN3, body)
        return cpu.kernel.now, {c: s.ps for c, s in cpu.report().by_category.items()}

    assert once() == once()


def _cache_lines_run(nbytes):
    """Python lines of sim/cache.py executed by one MemorySystem.copy of ``nbytes`` (a count
    of work, deterministic, not a wall-clock time)."""
    ms = MemorySystem(MIN3)
    a, b = ms.space.allocate("a", nbytes), ms.space.allocate("b", nbytes)
    executed = 0

    def trace(frame, event, _arg):
        nonlocal executed
        if frame.f_code.co_filename != cache.__file__:
            return None
        executed += event == "line"
        return trace

    sys.settrace(trace)
    try:
        ms.copy(0, nbytes, a, b)
    finally:
        sys.settrace(None)
    return executed


def test_a_megabyte_copy_is_vectorised():
    # The timing is closed-form over the lines (module docstring): the Python work of a copy
    # does not grow with its size, so a 1 MB copy runs as many lines as a 4 KB one.
    assert _cache_lines_run(1 << 20) == _cache_lines_run(4 * KB)


def test_direct_mapped_cache_conflicts_and_address_space():
    c = DirectMappedCache(1024, 4)
    assert c.read(0, 64) == 16 and c.read(0, 64) == 0
    assert c.read(1024, 4) == 1                  # same set as address 0: evicts it
    assert c.read(0, 4) == 1
    assert c.resident(4, 60) == 15
    s = AddressSpace(base=0x1000)
    r = s.allocate("x", 10, align=64)
    assert r == Region("x", 0x1000, 10) and s.allocate("y", 4, align=64).base == 0x1040
    assert s.region("x", 10) is r
    with pytest.raises(ValueError, match="already exists"):
        s.allocate("x", 10)
    with pytest.raises(ValueError, match="outside region"):
        r.at(11)


def test_a_copy_names_both_ends():
    async def body(cpu):
        await cpu.copy(64, src=cpu.region("a", 64))

    with pytest.raises(SimulationError, match="both its source and its destination"):
        run(MIN3, body)
