"""The physical buffer cache (sw/libos/fs/physical.py): blocks in owned pages of main memory,
read by DMA straight into them, metadata still usable in place."""
import pytest

from sim.kernel import Kernel
from sim.memory import Memory, MemoryAccessError
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS
from sw.doc_touch import DocTouch
from sw.libos.fs import FileSystem, MemoryBlockDevice, PhysicalStore, mkfs
from sw.libos.fs.fsck import fsck

from test_fs import pattern, run

BS = 4096


def memory(pages: int = 64) -> Memory:
    return Memory(Kernel(), pages * 4096, profile=DECSTATION_5000_125_AEGIS)


async def image(mem) -> MemoryBlockDevice:
    dev = MemoryBlockDevice(2048, 512, memory=mem)
    await mkfs(dev, block_size=BS, extra_size=0)
    fs = await FileSystem.mount(dev, cache_blocks=32)
    await fs.create("/a")
    await fs.write("/a", pattern(3 * BS + 100, 1))
    await fs.unmount()
    return dev


def test_blocks_live_in_the_store_pages_and_documents_are_read_into_them():
    mem = memory()
    pages = list(range(16, 48))
    store = PhysicalStore(mem, pages, requester="env", doc_touch=DocTouch())

    async def body():
        dev = await image(mem)
        for p in pages:
            mem.set_owner(p, "env")
        reads0 = dev.reads
        fs = await FileSystem.mount(dev, cache_blocks=24, store=store)
        bufs = await fs.pin("/a")
        assert [b.addr is not None for b in bufs] == [True] * 4
        for i, b in enumerate(bufs):
            assert 16 * 4096 <= b.addr < 48 * 4096 and b.addr % BS == 0
            # the block's bytes are in memory at its address, and data is that memory
            assert mem.read(b.addr, BS)[:100] == pattern(3 * BS + 100, 1)[i * BS:i * BS + 100]
            assert bytes(b.data) == mem.read(b.addr, BS)
        assert dev.reads > reads0
        # metadata in place: create and write a file, read it back, fsck the disk
        await fs.create("/b")
        await fs.write("/b", pattern(5000, 2))
        assert await fs.read("/b") == pattern(5000, 2)
        fs.unpin(bufs)
        await fs.unmount()
        assert (await fsck(dev)).clean
        fs2 = await FileSystem.mount(dev, cache_blocks=24)
        assert await fs2.read("/b") == pattern(5000, 2)
    run(body())
    # the document's four data blocks were DMAed in and will be read: their lines invalidated
    assert store.doc_touch.lines_flushed >= 4 * BS // 4
    assert store.lines_invalidated > store.doc_touch.lines_flushed   # metadata lines too


def test_data_lines_are_not_invalidated_when_the_cpu_never_reads_data():
    mem = memory()
    dt = DocTouch()
    store = PhysicalStore(mem, range(16, 48), cpu_reads_data=False, doc_touch=dt)

    async def body():
        dev = await image(mem)
        fs = await FileSystem.mount(dev, cache_blocks=24, store=store)
        await fs.pin("/a")
    run(body())
    assert dt.lines_flushed == 0
    assert store.lines_invalidated > 0            # the metadata blocks the CPU reads
    dt2 = DocTouch()
    store2 = PhysicalStore(mem, range(0, 16), doc_touch=dt2)

    async def reading():
        dev = await image(mem)
        fs = await FileSystem.mount(dev, cache_blocks=12, store=store2)
        await fs.pin("/a")
    run(reading())
    assert dt2.lines_flushed == 4 * BS // 4       # four data blocks, 4-byte lines


def test_eviction_reuses_slots_and_contents_stay_right():
    mem = memory()
    store = PhysicalStore(mem, range(0, 12))

    async def body():
        dev = MemoryBlockDevice(2048, 512, memory=mem)
        await mkfs(dev, block_size=BS, extra_size=0)
        fs = await FileSystem.mount(dev, cache_blocks=12, store=store)
        for i in range(6):
            await fs.create(f"/f{i}")
            await fs.write(f"/f{i}", pattern(2 * BS, i))
        for i in range(6):
            assert await fs.read(f"/f{i}") == pattern(2 * BS, i)
        assert fs.cache.evictions > 0
        addrs = [b.addr for b in fs.cache.buffers()]
        assert len(set(addrs)) == len(addrs) and all(a < 12 * 4096 for a in addrs)
        await fs.unmount()
        assert (await fsck(dev)).clean
    run(body())


def test_dma_into_pages_the_owner_does_not_have_is_refused():
    mem = memory()
    for p in range(0, 16):
        mem.set_owner(p, "other")
    store = PhysicalStore(mem, range(0, 16), requester="env")

    async def body():
        dev = await image(mem)
        with pytest.raises(MemoryAccessError, match="'env' may not write page"):
            await FileSystem.mount(dev, cache_blocks=12, store=store)
    run(body())


def test_bad_stores_and_devices_are_refused():
    mem = memory(8)
    with pytest.raises(ValueError, match="page 99"):
        PhysicalStore(mem, [99])
    with pytest.raises(ValueError, match="twice"):
        PhysicalStore(mem, [1, 1])
    with pytest.raises(ValueError, match="hold 2 blocks of 8192"):
        PhysicalStore(mem, [0, 1, 3, 4, 6]).slots(8192, 3)
    assert PhysicalStore(mem, [0, 1, 3, 4, 6]).slots(8192, 2) == [0, 3 * 4096]

    async def body():
        dev = await image(None)
        with pytest.raises(TypeError, match="has no read_into"):
            await FileSystem.mount(dev, cache_blocks=12, store=PhysicalStore(mem, range(8)))
    run(body())
