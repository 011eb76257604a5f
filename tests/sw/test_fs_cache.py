"""Buffer-cache policies, pinning and write locks, custom allocators, non-blocking calls."""
import pytest

from sim.kernel import Kernel
from sw.libos.fs import (Busy, BufferCache, CacheFull, Completion, FFSAllocator, FileSystem,
                         MemoryBlockDevice, NoSpace, WriteLocked, mkfs)
from sw.libos.fs.cache import lru, ordered_flush, read_miss, write_block
from sw.libos.fs.fsck import fsck

from test_fs import pattern, run


async def fresh(cache_blocks=24, **mount_kw):
    dev = MemoryBlockDevice(4096)
    await mkfs(dev, block_size=512, blocks_per_group=1024)
    return dev, await FileSystem.mount(dev, cache_blocks=cache_blocks, **mount_kw)


async def fill(fs, n=6, size=4000):
    for i in range(n):
        await fs.create(f"/f{i}")
        await fs.write(f"/f{i}", pattern(size, i))


async def check(fs, n=6, size=4000):
    for i in range(n):
        assert await fs.read(f"/f{i}") == pattern(size, i)


def test_custom_replacement_policy_is_called():
    calls = []

    def mru(cache, candidates):
        assert all(b.evictable for b in candidates)
        calls.append(len(candidates))
        return candidates[-1]                     # evict the most recently used

    async def body():
        dev, fs = await fresh(replace=mru)
        await fill(fs)
        await check(fs)
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())
    assert len(calls) > 20


def test_replacement_policy_must_choose_a_candidate():
    async def body():
        dev, fs = await fresh(replace=lambda cache, cands: object())
        with pytest.raises(ValueError, match="not a candidate"):
            await fill(fs)
    run(body())


def test_custom_miss_prefetches_and_write_back_and_flush_are_called():
    misses, written, flushes = [], [], []

    async def prefetch(cache, lbn):
        misses.append(lbn)
        data = await cache.read_blocks(lbn, 3 if lbn + 3 < 512 else 1)   # read ahead 2 blocks
        for i in range(1, len(data) // 512):
            await cache.insert(lbn + i, data[i * 512:(i + 1) * 512])
        return data[:512]

    async def wb(cache, buf):
        written.append(buf.lbn)
        await write_block(cache, buf)

    async def fl(cache, dirty):
        flushes.append(len(dirty))
        await ordered_flush(cache, dirty)

    async def body():
        dev, fs = await fresh(miss=prefetch, write_back=wb, flush=fl)
        await fill(fs)
        await fs.sync()
        assert flushes and flushes[-1] > 0 and fs.cache.dirty_count == 0
        assert written
        before = len(misses)
        hits = fs.cache.hits
        await check(fs)
        assert fs.cache.hits > hits
        fs2 = await FileSystem.mount(dev.reboot())
        await check(fs2)
        return before

    before = run(body())
    assert before > 0 and len(misses) >= before


def test_pinned_blocks_are_never_evicted():
    evicted_candidates = []

    def watching_lru(cache, candidates):
        evicted_candidates.extend(b.lbn for b in candidates)
        return lru(cache, candidates)

    async def body():
        dev, fs = await fresh(cache_blocks=24, replace=watching_lru)
        await fill(fs)
        pinned = await fs.pin("/f2")
        lbns = [b.lbn for b in pinned]
        assert len(lbns) == 8 and all(b.pins == 1 for b in pinned)
        ids = {b.lbn: id(b) for b in pinned}
        evicted_candidates.clear()
        for _ in range(3):
            await check(fs)                      # 48 blocks of data through a 24-block cache
            for i in (0, 1, 3, 4, 5):
                await fs.write(f"/f{i}", pattern(4000, i), 0)
        assert fs.cache.evictions > 50
        assert not set(lbns) & set(evicted_candidates)
        for lbn in lbns:
            assert id(fs.cache.peek(lbn)) == ids[lbn]
        assert bytes(b"".join(bytes(b.data) for b in pinned))[:4000] == pattern(4000, 2)
        with pytest.raises(Busy, match="pinned"):
            await fs.unlink("/f2")
        fs.unpin(pinned)
        await fs.unlink("/f2")
    run(body())


def test_cache_full_when_everything_is_pinned():
    async def body():
        dev, fs = await fresh(cache_blocks=16)   # 4 group blocks pinned + 12 more
        await fs.create("/big")
        await fs.write("/big", pattern(20 * 512))
        with pytest.raises(CacheFull, match="pinned"):
            await fs.pin("/big")
        assert all(b.pins == 0 for b in fs.cache.buffers() if b.kind == "data")
    run(body())


def test_write_locked_blocks_are_not_modified():
    async def body():
        dev, fs = await fresh()
        await fill(fs, n=1)
        locked = await fs.pin("/f0", 600, 100, write_lock=True)
        assert len(locked) == 1 and locked[0].write_locked == 1
        with pytest.raises(WriteLocked, match="write-locked"):
            await fs.write("/f0", b"X" * 2000, 0)       # blocks 0..3, block 1 locked
        assert await fs.read("/f0") == pattern(4000, 0)  # nothing written
        await fs.write("/f0", b"Y", 3000)               # another block: fine
        with pytest.raises(WriteLocked):
            await fs.truncate("/f0", 700)
        with pytest.raises(Busy):
            await fs.truncate("/f0", 100)
        fs.unpin(locked, write_lock=True)
        await fs.write("/f0", b"Z", 600)
        assert (await fs.read("/f0", 600, 1)) == b"Z"
    run(body())


class EndFirstAllocator(FFSAllocator):
    """Places data blocks downward from the end of the disk (a recognisable layout)."""

    def __init__(self):
        self.block_calls = []
        self.inode_calls = []

    def alloc_block(self, fs, ino, index, hint):
        self.block_calls.append((ino, index, hint))
        for bn in range(fs.sb.block_count - 1, 0, -1):
            if fs.block_is_free(bn):
                return bn
        raise NoSpace("full")

    def alloc_inode(self, fs, parent, is_dir):
        self.inode_calls.append((parent, is_dir))
        return super().alloc_inode(fs, parent, is_dir)


def test_custom_allocator_is_called_and_obeyed():
    alloc = EndFirstAllocator()

    async def body():
        dev, fs = await fresh(allocator=alloc)
        await fs.mkdir("/d")
        await fs.create("/d/f")
        await fs.write("/d/f", pattern(5 * 512))
        blocks = await fs.file_blocks("/d/f")
        assert blocks == sorted(blocks, reverse=True)
        assert blocks[0] == fs.sb.block_count - 2        # the last block went to /d's directory
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())
    assert alloc.inode_calls == [(1, True), (alloc.inode_calls[1][0], False)]
    assert len(alloc.block_calls) == 6


def test_allocator_returning_a_used_block_is_refused():
    class Bad(FFSAllocator):
        def alloc_block(self, fs, ino, index, hint):
            return 0                                     # the superblock

    async def body():
        dev, fs = await fresh(allocator=Bad())
        await fs.create("/f")
        with pytest.raises(ValueError, match="returned 0 .* not a free data block"):
            await fs.write("/f", b"x")
        assert (await fs.stat("/f")).size == 0
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


def test_cache_argument_errors():
    dev = MemoryBlockDevice(64)
    with pytest.raises(ValueError, match="capacity"):
        BufferCache(dev, 512, 0)
    with pytest.raises(ValueError, match="multiple"):
        BufferCache(MemoryBlockDevice(64, 1024), 512)
    with pytest.raises(TypeError, match="replace"):
        BufferCache(dev, 512, replace=3)
    assert read_miss and lru


# ---- non-blocking calls ------------------------------------------------------------------
def test_read_nb_cached_now_uncached_later():
    k = Kernel()
    events = []

    async def body():
        dev, fs = await fresh(cache_blocks=24, kernel=k)
        await fill(fs)
        await fs.sync()
        fs2 = await FileSystem.mount(dev, cache_blocks=24, kernel=k)
        await fs2.read("/f1", 0, 1000)                      # the first two blocks now cached
        p = fs2.read_nb("/f1", 0, 1000, events.append, value="cached")
        assert (p.done, p.count, p.value, p.result) == (True, 1000, "cached", pattern(4000, 1)[:1000])
        p = fs2.read_nb("/f1", 0, None, events.append, value=("req", 7))
        assert not p.done and p.value == ("req", 7)
        assert 1024 <= p.count < 4000 and p.result == pattern(4000, 1)[:p.count]
        return fs2

    task = k.spawn(body(), name="t")
    k.run()
    assert task.done and task.exception is None
    assert events == [Completion(("req", 7), pattern(4000, 1), None)]


def test_write_nb_and_sync_nb():
    k = Kernel()
    events = []

    async def body():
        dev, fs = await fresh(cache_blocks=24, kernel=k)
        await fs.create("/w")
        p = fs.write_nb("/w", b"a" * 1000, 0, events.append, value=1)
        assert p.done and p.count == 1000                  # fresh blocks: no I/O needed
        # much more than the cache can hold without writing back dirty buffers
        p = fs.write_nb("/w", pattern(30 * 512), 1000, events.append, value=2)
        assert not p.done and p.count < 30 * 512
        s = fs.sync_nb(events.append, value=3)
        assert not s.done
        return fs, dev

    task = k.spawn(body(), name="t")
    k.run()
    fs, dev = task.result
    assert [e.value for e in events] == [2, 3]
    assert events[0].result == 30 * 512 and events[0].error is None

    async def verify():
        fs2 = await FileSystem.mount(dev.reboot())
        assert await fs2.read("/w") == b"a" * 1000 + pattern(30 * 512)
        assert (await fsck(dev)).clean
    run(verify())


def test_nb_errors_come_back_with_the_value():
    """An error found in the background comes with the completion; one found at once raises."""
    from sw.libos.fs import NotFound
    k = Kernel()
    events = []

    async def body():
        dev, fs = await fresh(kernel=k)
        await fs.sync()
        fs2 = await FileSystem.mount(dev, kernel=k)          # nothing but group blocks cached
        p = fs2.read_nb("/missing", 0, 10, events.append, value="v")
        assert not p.done and p.count == 0
        await k.sleep(1)
        assert len(events) == 1 and events[0].value == "v" and events[0].result is None
        assert isinstance(events[0].error, NotFound) and "missing" in str(events[0].error)
        with pytest.raises(NotFound, match="other"):          # the root is cached now
            fs2.read_nb("/other", 0, 10, events.append, value="w")

    task = k.spawn(body(), name="t")
    k.run()
    assert task.done and task.exception is None
    assert len(events) == 1


def test_nb_without_kernel_is_a_clear_error():
    async def body():
        dev, fs = await fresh(cache_blocks=16)
        await fill(fs, n=1)
        await fs.sync()
        fs2 = await FileSystem.mount(dev, cache_blocks=16)
        with pytest.raises(ValueError, match="need a kernel"):
            fs2.read_nb("/f0", 0, None, lambda c: None)
    run(body())


class SlowDevice(MemoryBlockDevice):
    """A device whose every sector takes simulated time, so background work interleaves."""

    def __init__(self, kernel, *args, **kw):
        super().__init__(*args, **kw)
        self.kernel = kernel

    async def read(self, lbn, count=1):
        await self.kernel.sleep(1000 * count)
        return await super().read(lbn, count)

    async def write(self, lbn, data):
        await self.kernel.sleep(1000 * (len(data) // self.block_size))
        await super().write(lbn, data)


def test_nb_calls_complete_in_order_and_blocking_calls_wait_for_them():
    k = Kernel()
    events = []
    a, b, c = pattern(9000, 1), pattern(7000, 2), pattern(3000, 3)

    async def body():
        dev = SlowDevice(k, 4096)
        await mkfs(dev, block_size=512, blocks_per_group=1024)
        fs = await FileSystem.mount(dev, cache_blocks=14, kernel=k)
        await fs.create("/f")
        p1 = fs.write_nb("/f", a, 0, events.append, value="a")
        p2 = fs.write_nb("/f", b, 4000, events.append, value="b")
        p3 = fs.read_nb("/f", 0, None, events.append, value="read")
        p4 = fs.write_nb("/f", c, None, events.append, value="c")      # append
        assert not p1.done and (p2.done, p2.count, p3.done, p4.done) == (False, 0, False, False)
        t0 = k.now
        got = await fs.read("/f")          # waits for the queued work, then sees all of it
        assert k.now > t0
        return fs, got

    task = k.spawn(body(), name="t")
    k.run()
    fs, got = task.result
    want = a[:4000] + b + a[11000:]
    want += c
    assert got == want
    assert [e.value for e in events] == ["a", "b", "read", "c"]
    assert events[2].result == a[:4000] + b and all(e.error is None for e in events)
    assert events[3].result == 3000


def test_read_ahead_of_free_blocks_never_leaks_old_contents():
    """A miss policy that reads ahead may cache free blocks holding a deleted file's bytes;
    a block allocated later must still start as zeros."""
    async def ahead(cache, lbn):
        n = min(8, 2048 - lbn)
        data = await cache.read_blocks(lbn, n)
        for i in range(1, n):
            await cache.insert(lbn + i, data[i * 512:(i + 1) * 512])
        return data[:512]

    async def body():
        dev = MemoryBlockDevice(2048)
        await mkfs(dev, block_size=512, blocks_per_group=1024)
        fs = await FileSystem.mount(dev, cache_blocks=40)
        await fs.create("/old")
        await fs.write("/old", b"\xee" * 5000)
        await fs.sync()
        await fs.unlink("/old")                    # blocks free, bytes still on the disk
        await fs.sync()
        fs2 = await FileSystem.mount(dev, cache_blocks=40, miss=ahead)
        await fs2.readdir("/")                     # reads ahead over the freed blocks
        await fs2.create("/new")
        await fs2.write("/new", b"x" * 10)
        await fs2.truncate("/new", 3000)
        assert await fs2.read("/new") == b"x" * 10 + bytes(2990)
        await fs2.write("/new", b"y", 4000)
        assert await fs2.read("/new", 3000) == bytes(1000) + b"y"
    run(body())
