"""The library file system: files, directories, indirect blocks, extra fields, errors."""
import pytest

from sim.kernel import Kernel
from sw.libos.fs import (Exists, FileSystem, FileTooLarge, IsADirectory, MemoryBlockDevice,
                         NameTooLong, NotADirectory, NotEmpty, NotFound, Busy, mkfs)
from sw.libos.fs.fsck import fsck
from sw.libos.fs.layout import NDIRECT, ROOT_INO


def run(coro):
    """Run ``coro`` as a kernel task and return its result (re-raising its exception)."""
    k = Kernel()
    task = k.spawn(coro, name="test")
    try:
        k.run()
    except Exception as exc:
        if isinstance(exc.__cause__, Exception):
            raise exc.__cause__ from None
        raise
    return task.result


async def fresh(sectors=4096, block_size=512, cache_blocks=48, **kw):
    dev = MemoryBlockDevice(sectors)
    await mkfs(dev, block_size=block_size, blocks_per_group=kw.pop("blocks_per_group", 512), **kw)
    return dev, await FileSystem.mount(dev, cache_blocks=cache_blocks)


def pattern(n, seed=1):
    return bytes((i * 7 + seed * 13 + (i >> 8)) & 0xFF for i in range(n))


def test_create_write_read_delete():
    async def body():
        dev, fs = await fresh()
        ino = await fs.create("/hello.txt")
        assert await fs.read("/hello.txt") == b""
        assert await fs.write("/hello.txt", b"hello, world") == 12
        assert await fs.read("/hello.txt") == b"hello, world"
        assert await fs.read(ino, 7, 3) == b"wor"
        assert await fs.read("/hello.txt", 100) == b""
        await fs.write("/hello.txt", b"W", 7)
        assert await fs.read("/hello.txt") == b"hello, World"
        await fs.write("/hello.txt", b"!")                       # append
        st = await fs.stat("/hello.txt")
        assert (st.ino, st.size, st.links, st.is_file, st.nblocks) == (ino, 13, 1, True, 1)
        free_before = fs.free_blocks
        await fs.unlink("/hello.txt")
        assert fs.free_blocks == free_before + 1
        with pytest.raises(NotFound, match="hello.txt"):
            await fs.read("/hello.txt")
        assert await fs.readdir("/") == []
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


def test_persists_across_remount():
    async def body():
        dev, fs = await fresh()
        await fs.mkdir("/a")
        await fs.create("/a/b")
        await fs.write("/a/b", pattern(3000))
        await fs.unmount()
        fs2 = await FileSystem.mount(dev)
        assert await fs2.read("/a/b") == pattern(3000)
        assert [e.name for e in await fs2.readdir("/a")] == ["b"]
        assert fs2.free_blocks == fs.free_blocks
    run(body())


def test_directories():
    async def body():
        dev, fs = await fresh()
        await fs.mkdir("/docs")
        await fs.mkdir("/docs/img")
        await fs.create("/docs/index.html")
        await fs.create("/docs/img/logo.gif")
        assert {e.name for e in await fs.readdir("/docs")} == {"img", "index.html"}
        assert (await fs.stat("/docs")).links == 3              # entry, ".", "img/.."
        assert await fs.lookup("/docs/img/../index.html") == await fs.lookup("/docs/index.html")
        assert await fs.lookup("/") == ROOT_INO
        assert await fs.exists("/docs/img/logo.gif")
        assert not await fs.exists("/docs/nope")
        with pytest.raises(Exists, match="/docs/img"):
            await fs.mkdir("/docs/img")
        with pytest.raises(Exists):
            await fs.create("/docs/index.html")
        assert await fs.create("/docs/index.html", exist_ok=True) == await fs.lookup("/docs/index.html")
        with pytest.raises(NotEmpty, match="/docs"):
            await fs.rmdir("/docs")
        with pytest.raises(NotADirectory):
            await fs.rmdir("/docs/index.html")
        with pytest.raises(NotADirectory):
            await fs.create("/docs/index.html/x")
        with pytest.raises(IsADirectory):
            await fs.unlink("/docs/img")
        with pytest.raises(IsADirectory):
            await fs.read("/docs")
        with pytest.raises(NotFound, match="missing"):
            await fs.create("/missing/file")
        with pytest.raises(NameTooLong, match="longer than 255"):
            await fs.create("/" + "x" * 256)
        with pytest.raises(Busy):
            await fs.rmdir("/")
        with pytest.raises(TypeError):
            await fs.create(b"/bytes")
        await fs.unlink("/docs/img/logo.gif")
        await fs.rmdir("/docs/img")
        assert (await fs.stat("/docs")).links == 2
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


def test_big_directory_grows_and_shrinks_cleanly():
    async def body():
        dev, fs = await fresh(sectors=8192, cache_blocks=64, inodes=512)
        await fs.mkdir("/d")
        names = [f"entry-with-a-longish-name-{i:04d}" for i in range(300)]   # > 12 dir blocks
        for n in names:
            await fs.create("/d/" + n)
        assert (await fs.stat("/d")).size > NDIRECT * 512
        assert sorted(e.name for e in await fs.readdir("/d")) == names
        for n in names[::2]:
            await fs.unlink("/d/" + n)
        assert sorted(e.name for e in await fs.readdir("/d")) == names[1::2]
        for n in names[::2]:                   # reuse the freed entry space
            await fs.create("/d/" + n)
        assert len(await fs.readdir("/d")) == 300
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


@pytest.mark.parametrize("size", [NDIRECT * 512, NDIRECT * 512 + 1, (NDIRECT + 128) * 512 + 700,
                                  (NDIRECT + 128 + 300) * 512 + 5])
def test_files_spanning_indirect_blocks(size):
    """512-byte blocks hold 128 pointers: single indirect from 6 KiB, double from 70 KiB."""
    async def body():
        dev, fs = await fresh(sectors=8192)
        await fs.create("/big")
        data = pattern(size, 3)
        # written in odd-sized pieces so writes straddle blocks
        pos = 0
        while pos < size:
            n = min(1531, size - pos)
            assert await fs.write("/big", data[pos:pos + n], pos) == n
            pos += n
        assert await fs.read("/big") == data
        assert await fs.read("/big", 6000, 2000) == data[6000:8000]
        nblk = -(-size // 512)
        ind = (nblk > NDIRECT) + (nblk > NDIRECT + 128) * (1 + -(-(nblk - NDIRECT - 128) // 128))
        assert (await fs.stat("/big")).nblocks == nblk + ind
        blocks = await fs.file_blocks("/big")
        assert len(set(blocks)) == nblk and 0 not in blocks
        await fs.sync()
        assert (await fsck(dev)).clean
        # shrink across the indirect boundaries, then grow again: the tail reads as zeros
        free0 = fs.free_blocks
        await fs.truncate("/big", 5000)
        assert await fs.read("/big") == data[:5000]
        assert fs.free_blocks == free0 + nblk + ind - 10      # 10 direct blocks stay
        await fs.truncate("/big", 9000)
        assert await fs.read("/big") == data[:5000] + bytes(4000)
        await fs.unlink("/big")
        await fs.sync()
        report = await fsck(dev)
        assert report.clean, str(report)
        assert report.files == 0
    run(body())


def test_sparse_file_holes_read_as_zeros():
    async def body():
        dev, fs = await fresh(sectors=8192)
        await fs.create("/sparse")
        await fs.write("/sparse", b"end", 100_000)             # in the double-indirect range
        assert (await fs.stat("/sparse")).size == 100_003
        got = await fs.read("/sparse")
        assert got == bytes(100_000) + b"end"
        assert (await fs.stat("/sparse")).nblocks == 1 + 1 + 1     # data, double, one inner
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


def test_file_too_large_and_bad_arguments():
    async def body():
        dev, fs = await fresh()
        await fs.create("/f")
        limit = fs.sb.max_file_blocks * 512
        with pytest.raises(FileTooLarge):
            await fs.write("/f", b"x", limit)
        with pytest.raises(ValueError, match="offset"):
            await fs.read("/f", -1)
        with pytest.raises(TypeError, match="bytes-like"):
            await fs.write("/f", "text")
        with pytest.raises(NotFound, match="inode 99999"):
            await fs.stat(99999)
        assert (await fs.stat("/f")).size == 0
    run(body())


def test_extra_inode_fields():
    async def body():
        dev, fs = await fresh(extra_size=40)
        await fs.create("/page.html", extra=b"\x01\x02")
        assert await fs.get_extra("/page.html") == b"\x01\x02" + bytes(38)
        await fs.set_extra("/page.html", b"CSUM", 4)
        await fs.write("/page.html", b"<html>")
        await fs.unmount()
        fs2 = await FileSystem.mount(dev)
        assert (await fs2.get_extra("/page.html"))[:8] == b"\x01\x02\0\0CSUM"
        with pytest.raises(ValueError, match="do not fit the 40-byte"):
            await fs2.set_extra("/page.html", bytes(10), 35)
    run(body())


def test_file_handle_positions():
    async def body():
        dev, fs = await fresh()
        f = await fs.open("/log", create=True)
        await f.write(b"abc")
        await f.write(b"def")
        f.seek(2)
        assert await f.read(3) == b"cde"
        assert f.tell() == 5
        assert (await f.stat()).size == 6
        await f.truncate(1)
        assert await fs.read("/log") == b"a"
        with pytest.raises(IsADirectory):
            await fs.open("/")
    run(body())


def test_mkfs_and_mount_errors():
    async def body():
        dev = MemoryBlockDevice(24)
        with pytest.raises(ValueError, match="too small"):
            await mkfs(dev, block_size=4096)
        with pytest.raises(ValueError, match="power of two"):
            await mkfs(MemoryBlockDevice(4096), block_size=1000)
        from sw.libos.fs import Corrupt
        with pytest.raises(Corrupt, match="magic"):
            await FileSystem.mount(MemoryBlockDevice(4096))
        dev = MemoryBlockDevice(4096)
        await mkfs(dev, block_size=1024)
        with pytest.raises(ValueError, match="cache_blocks"):
            await FileSystem.mount(dev, cache_blocks=2)
        with pytest.raises(TypeError, match="alloc_inode"):
            await FileSystem.mount(dev, allocator=object())
    run(body())


def test_cpu_is_charged_for_copies():
    from sim.cpu import CPU, COPY
    from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as prof  # noqa: N811

    async def body(k, cpu):
        dev = MemoryBlockDevice(4096)
        await mkfs(dev, block_size=1024)
        fs = await FileSystem.mount(dev, cpu=cpu, kernel=k)
        await fs.create("/f")
        t0 = k.now
        await fs.write("/f", bytes(8192))
        await fs.read("/f")
        return k.now - t0

    k = Kernel()
    cpu = CPU(k, prof)
    task = k.spawn(body(k, cpu), name="fs")
    k.run()
    assert task.result > 0
    assert cpu.report().by_category[COPY].cycles == pytest.approx(2 * prof.copy_cycles(8192), abs=2)
