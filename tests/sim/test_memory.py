"""Physical memory: bounds, page ownership hooks, DMA timing and refusal, CPU copies."""
import pytest

from sim.cpu import COPY, CPU
from sim.kernel import Kernel, SimulationError
from sim.memory import Memory, MemoryAccessError, MemoryBoundsError
from sim.platforms import DECSTATION_5000_125_AEGIS as AEGIS
from sim.time import NS

PAGE = 4096


def make(size=16 * PAGE):
    k = Kernel()
    return k, Memory(k, size, profile=AEGIS)


def test_read_write_words_and_views():
    k, mem = make()
    mem.write(0x10, b"hello")
    assert mem.read(0x10, 5) == b"hello"
    mem.write_word(0x20, 0x11223344)
    assert mem.read(0x20, 4) == bytes([0x44, 0x33, 0x22, 0x11])   # little-endian R3000
    assert mem.read_word(0x20) == 0x11223344
    assert bytes(mem.view(0x10, 2)) == b"he"


@pytest.mark.parametrize("addr, n", [(16 * PAGE - 2, 4), (-1, 1), (16 * PAGE + 1, 0)])
def test_bounds_errors_name_the_address(addr, n):
    k, mem = make()
    with pytest.raises(MemoryBoundsError, match=f"at {addr:#x} is outside"):
        mem.read(addr, n)
    with pytest.raises(MemoryBoundsError, match=f"at {addr:#x} is outside"):
        mem.write(addr, bytes(n))


def test_bad_geometry_is_refused():
    k = Kernel()
    with pytest.raises(ValueError, match="power of two"):
        Memory(k, 3 * 1000, page_size=1000, profile=AEGIS)
    with pytest.raises(ValueError, match="multiple of the page size"):
        Memory(k, 5000, profile=AEGIS)
    with pytest.raises(MemoryBoundsError, match="no page 99"):
        Memory(k, PAGE, profile=AEGIS).set_owner(99, "x")


def test_dma_takes_the_calibrated_memory_time():
    k, mem = make()
    out = []

    async def dev():
        await mem.dma_write(0, bytes(range(256)))          # one 64-word burst: 66 x 80 ns
        out.append(k.now)
        data = await mem.dma_read(0, 256)                  # 68 x 80 ns
        out.append((k.now, data == bytes(range(256))))
        await mem.dma_read(0, 260)                         # 65 words: 2 bursts, 65 + 2 x 4
        out.append(k.now)

    k.spawn(dev())
    k.run()
    assert out == [66 * 80 * NS, (134 * 80 * NS, True), (134 * 80 * NS + 73 * 80 * NS)]
    assert (mem.dma_bytes_written, mem.dma_bytes_read) == (256, 516)


def test_concurrent_dma_masters_queue_for_the_memory():
    k, mem = make()
    done = {}

    async def dev(name, addr):
        await mem.dma_write(addr, b"\xff" * 256)
        done[name] = k.now

    k.spawn(dev("a", 0))
    k.spawn(dev("b", PAGE))
    k.run()
    assert done == {"a": 66 * 80 * NS, "b": 132 * 80 * NS}
    assert mem.dma_busy_ps == 132 * 80 * NS


def test_dma_done_at_predicts_each_transfer_with_the_queue():
    """dma_done_at, asked just before each call, is when that call returns (queueing included),
    and asking changes nothing."""
    k, mem = make()
    seen = []

    async def dev(addr, n, write, delay):
        await k.sleep_until(delay)
        predicted = mem.dma_done_at(n, write)
        assert mem.dma_done_at(n, write) == predicted          # asking does not occupy
        if write:
            await mem.dma_write(addr, bytes(n))
        else:
            await mem.dma_read(addr, n)
        seen.append((predicted, k.now))

    k.spawn(dev(0, 256, True, 0))
    k.spawn(dev(PAGE, 256, False, 10 * NS))       # queues behind the first
    k.spawn(dev(2 * PAGE, 4, False, 20_000 * NS))  # the memory is free again
    k.run()
    assert [p for p, _ in seen] == [t for _, t in seen]
    assert seen[1][0] == 66 * 80 * NS + 68 * 80 * NS
    assert seen[2][0] == 20_000 * NS + mem.dma_time(4, False)


def test_dma_bytes_land_when_the_transfer_completes():
    k, mem = make()
    seen = []

    async def dev():
        await mem.dma_write(0, b"new!")

    async def watcher():
        await k.sleep(1 * NS)
        seen.append(mem.read(0, 4))
        await k.sleep(1000 * NS)
        seen.append(mem.read(0, 4))

    k.spawn(dev())
    k.spawn(watcher())
    k.run()
    assert seen == [bytes(4), b"new!"]


def test_dma_to_a_page_someone_else_owns_is_refused_and_the_victim_is_untouched():
    k, mem = make()
    mem.set_owner(2, "victim")
    mem.write(2 * PAGE, b"secret")
    mem.set_owner(3, "attacker")

    async def attack():
        # straddles the attacker's page 3 and the victim's page 2
        await mem.dma_write(3 * PAGE - 4, b"\x00" * 8, requester="attacker")

    k.spawn(attack())
    with pytest.raises(SimulationError) as info:
        k.run()
    err = info.value.__cause__
    assert isinstance(err, MemoryAccessError)
    assert (err.page, err.owner, err.requester, err.write) == (2, "victim", "attacker", True)
    assert "page 2" in str(err) and "'victim'" in str(err) and "'attacker'" in str(err)
    assert k.now == 0 and mem.dma_busy_ps == 0
    assert mem.read(2 * PAGE, 6) == b"secret"
    assert mem.read(3 * PAGE - 4, 4) == bytes(4)


def test_owner_kernel_and_unowned_pages_are_allowed_by_the_default_check():
    k, mem = make()
    mem.set_owner(1, "env1")
    mem.check(PAGE, 10, "env1", write=True)
    mem.check(PAGE, 10, None, write=True)
    mem.check(5 * PAGE, 10, "env1", write=True)
    assert list(mem.owned_by("env1")) == [1] and mem.owner(1) == "env1"
    with pytest.raises(MemoryAccessError):
        mem.read(PAGE, 4, requester="env2")


def test_an_installed_access_check_decides():
    k, mem = make()
    calls = []

    def strict(page, owner, requester, write):   # e.g. the exokernel: unowned pages are closed
        calls.append((page, owner, requester, write))
        return owner == requester

    mem.access_check = strict
    with pytest.raises(MemoryAccessError, match="page 0"):
        mem.check(0, 4, "env1")
    assert calls == [(0, None, "env1", False)]


def test_cpu_memcpy_moves_the_bytes_after_charging_the_copy():
    k, mem = make()
    cpu = CPU(k, AEGIS)
    mem.write(0, b"x" * 100)

    async def t():
        await cpu.memcpy(mem, PAGE, 0, 100)

    k.spawn(t())
    k.run()
    assert mem.read(PAGE, 100) == b"x" * 100
    assert k.now == AEGIS.copy_cycles(100) * cpu.period
    assert cpu.breakdown()[COPY].cycles == AEGIS.copy_cycles(100)
