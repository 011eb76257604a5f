"""A full disk, crashes mid-write with fsck, and random operation sequences against a model."""
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sw.libos.fs import (DeviceCrashed, FileSystem, MemoryBlockDevice, NoSpace, NotEmpty,
                         NotFound, mkfs)
from sw.libos.fs.fsck import fsck

from test_fs import pattern, run


# ---- full disk ---------------------------------------------------------------------------
def test_full_disk_is_a_clear_error_and_corrupts_nothing():
    async def body():
        dev = MemoryBlockDevice(1024)                     # 512 KiB, 512-byte blocks
        await mkfs(dev, block_size=512, blocks_per_group=256, inodes=64)
        fs = await FileSystem.mount(dev, cache_blocks=24)
        ref = {}
        i = 0
        with pytest.raises(NoSpace) as info:
            while True:
                name = f"/file{i}"
                await fs.create(name)
                ref[name] = b""
                data = pattern(37_000 + 911 * i, i)
                try:
                    await fs.write(name, data)
                except NoSpace as exc:
                    ref[name] = data[:exc.written]
                    raise
                ref[name] = data
                i += 1
        assert "disk full" in str(info.value) and f"/file{i}" in str(info.value)
        assert fs.free_blocks == 0
        assert i >= 5
        for name, data in ref.items():
            assert await fs.read(name) == data, name
        with pytest.raises(NoSpace) as info:                # an append fails too, cleanly:
            await fs.write("/file0", b"more" * 200)         # what fit in the last block stays
        assert 0 < info.value.written < 800
        ref["/file0"] += (b"more" * 200)[:info.value.written]
        assert await fs.read("/file0") == ref["/file0"]
        await fs.sync()
        report = await fsck(dev)
        assert report.clean, str(report)
        # freeing space makes writing possible again
        await fs.unlink("/file1")
        del ref["/file1"]
        await fs.write("/file0", b"more" * 200)
        ref["/file0"] += b"more" * 200
        await fs.sync()
        fs2 = await FileSystem.mount(dev.reboot())
        for name, data in ref.items():
            assert await fs2.read(name) == data, name
        assert (await fsck(dev)).clean
    run(body())


def test_running_out_of_inodes():
    async def body():
        dev = MemoryBlockDevice(2048)
        await mkfs(dev, block_size=512, blocks_per_group=1024, inodes=16)
        fs = await FileSystem.mount(dev, cache_blocks=24)
        made = []
        with pytest.raises(NoSpace, match="inode"):
            for i in range(100):
                await fs.create(f"/n{i}")
                made.append(i)
        assert len(made) == fs.sb.inode_count - 2            # inode 0 reserved, 1 is the root
        assert {e.name for e in await fs.readdir("/")} == {f"n{i}" for i in made}
        await fs.sync()
        assert (await fsck(dev)).clean
    run(body())


# ---- crashes -----------------------------------------------------------------------------
OLD = {f"/old/f{i}": pattern(700 * i + 3000, i) for i in range(6)}


async def _prepared(crash_after, cache_blocks=20):
    """Synced old files; the device crashes after ``crash_after`` more sector writes. A small
    cache writes back during the batch; a large one writes everything in the final sync."""
    dev = MemoryBlockDevice(4096)
    await mkfs(dev, block_size=1024, blocks_per_group=512)
    fs = await FileSystem.mount(dev, cache_blocks=cache_blocks)
    await fs.mkdir("/old")
    for name, data in OLD.items():
        await fs.create(name)
        await fs.write(name, data)
    await fs.sync()
    dev.crash_after = dev.writes + crash_after
    return dev, fs


async def _batch(fs):
    """Creates, writes (through indirect blocks), an append, an unlink, a mkdir."""
    await fs.mkdir("/new")
    for i in range(4):
        await fs.create(f"/new/g{i}")
        await fs.write(f"/new/g{i}", pattern(9000 * (i + 1), 50 + i))
    await fs.write("/old/f0", b"appended" * 100)
    await fs.unlink("/old/f1")
    await fs.sync()


def test_a_crash_free_batch_checks_clean():
    async def body():
        dev, fs = await _prepared(10**9)
        await _batch(fs)
        assert (await fsck(dev)).clean
    run(body())


@pytest.mark.parametrize("cache_blocks", [20, 400])
@pytest.mark.parametrize("crash_after", [0, 1, 2, 5, 9, 17, 30, 47, 70, 100, 150, 185, 197, 203, 207])
def test_crash_mid_write_then_fsck_repairs(crash_after, cache_blocks):
    async def body():
        dev, fs = await _prepared(crash_after, cache_blocks)
        with pytest.raises(DeviceCrashed):
            await _batch(fs)
        disk = dev.reboot()
        first = await fsck(disk, repair=True)
        second = await fsck(disk)
        assert second.clean, f"after repair:\n{second}\nfirst pass:\n{first}"
        if not first.clean:
            assert first.repaired and first.problems
        # the repaired file system mounts, and what was synced before the batch is intact
        fs2 = await FileSystem.mount(disk, cache_blocks=20)
        for name in ("/old/f2", "/old/f3", "/old/f4", "/old/f5"):
            assert await fs2.read(name) == OLD[name], name
        got = await fs2.read("/old/f0")
        assert got[:len(OLD["/old/f0"])] == OLD["/old/f0"]
        if await fs2.exists("/old/f1"):
            assert await fs2.read("/old/f1") == OLD["/old/f1"]
        if await fs2.exists("/new"):
            for e in await fs2.readdir("/new"):
                await fs2.read("/new/" + e.name)             # readable, whatever it holds
        # and it keeps working
        await fs2.create("/after")
        await fs2.write("/after", pattern(5000))
        await fs2.sync()
        assert (await fsck(disk)).clean
        return first

    run(body())


def test_some_crash_points_need_repair():
    """At least one crash point leaves a visible inconsistency that fsck reports and fixes."""
    async def body(n, cache_blocks):
        dev, fs = await _prepared(n, cache_blocks)
        try:
            await _batch(fs)
        except DeviceCrashed:
            pass
        return await fsck(dev.reboot(), repair=True)

    reports = [run(body(n, c)) for n in range(0, 208, 8) for c in (20, 400)]
    assert any(not r.clean for r in reports)
    assert any("marked" in p or "unreferenced" in p or "not allocated" in p
               for r in reports for p in r.problems)


def test_fsck_repairs_hand_made_damage():
    """Damage fsck must name: a wrong link count, a lost bitmap bit, a dangling entry."""
    import struct
    from sw.libos.fs.layout import CylinderGroup, Superblock, bit_set

    async def body():
        dev = MemoryBlockDevice(4096)
        await mkfs(dev, block_size=512, blocks_per_group=1024)
        fs = await FileSystem.mount(dev, cache_blocks=24)
        await fs.mkdir("/d")
        await fs.create("/d/a")
        await fs.write("/d/a", pattern(3000))
        await fs.create("/d/b")
        ino_b = await fs.lookup("/d/b")
        ino_a = await fs.lookup("/d/a")
        await fs.unmount()
        sb = Superblock.unpack(bytes(dev.data[:512]))
        # 1. link count of /d/a wrong
        blk, off = sb.inode_location(ino_a)
        base = blk * 512 + off
        struct.pack_into("<H", dev.data, base + 2, 5)
        # 2. inode /d/b freed behind the directory's back (dangling entry)
        blk, off = sb.inode_location(ino_b)
        dev.data[blk * 512 + off:blk * 512 + off + sb.inode_size] = bytes(sb.inode_size)
        # 3. a used block marked free in its group
        data_bn = struct.unpack_from("<I", dev.data, base + 36)[0]
        g = sb.group_of_block(data_bn)
        start = sb.group_start(g) * 512
        cgblk = bytearray(dev.data[start:start + 512])
        bit_set(CylinderGroup(cgblk, sb).block_bitmap, data_bn - sb.group_start(g), False)
        dev.data[start:start + 512] = cgblk
        report = await fsck(dev)
        text = "\n".join(report.problems)
        assert not report.repaired
        assert f"inode {ino_a}: link count 5" in text
        assert f"names inode {ino_b}, which is not allocated" in text
        assert "blocks in use are marked free" in text
        assert not (await fsck(dev)).clean                   # not repaired: still there
        fixed = await fsck(dev, repair=True)
        assert fixed.repaired
        assert (await fsck(dev)).clean
        fs2 = await FileSystem.mount(dev)
        assert [e.name for e in await fs2.readdir("/d")] == ["a"]
        assert await fs2.read("/d/a") == pattern(3000)
        assert (await fs2.stat("/d/a")).links == 1
    run(body())


# ---- random operations against a model -------------------------------------------------------
class Model:
    """The reference: a dict of path -> bytes for files and a set of directories."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}
        self.nospace = 0


async def apply(fs, model: Model, op, rng_bytes):
    kind = op[0]
    if kind == "create":
        _, d, n = op
        path = f"{d.rstrip('/')}/f{n}"
        if d not in model.dirs:
            return
        if path in model.files or path in model.dirs:
            return
        try:
            await fs.create(path)
        except NoSpace:
            model.nospace += 1
            return
        model.files[path] = b""
    elif kind == "mkdir":
        _, d, n = op
        path = f"{d.rstrip('/')}/d{n}"
        if d not in model.dirs or path in model.dirs or path in model.files:
            return
        try:
            await fs.mkdir(path)
        except NoSpace:
            model.nospace += 1
            return
        model.dirs.add(path)
    elif kind in ("write", "truncate", "unlink", "read") and model.files:
        _, k, a, b = op
        path = sorted(model.files)[k % len(model.files)]
        old = model.files[path]
        if kind == "write":
            data = rng_bytes(b)
            off = a
            try:
                await fs.write(path, data, off)
            except NoSpace as exc:              # what was written is kept, nothing else
                data = data[:exc.written]
                model.nospace += 1
            if data:
                new = old.ljust(off, b"\0")
                model.files[path] = new[:off] + data + new[off + len(data):]
        elif kind == "truncate":
            await fs.truncate(path, a)
            model.files[path] = old[:a].ljust(a, b"\0")
        elif kind == "unlink":
            await fs.unlink(path)
            del model.files[path]
        else:
            assert await fs.read(path, a, b) == old[a:a + b]
    elif kind == "rmdir":
        _, n = op
        victims = sorted(model.dirs - {"/"})
        if not victims:
            return
        d = victims[n % len(victims)]
        empty = not any(p.startswith(d + "/") for p in list(model.files) + list(model.dirs))
        if empty:
            await fs.rmdir(d)
            model.dirs.remove(d)
        else:
            with pytest.raises(NotEmpty):
                await fs.rmdir(d)


async def check_against(fs, model: Model):
    for path, data in model.files.items():
        assert await fs.read(path) == data, path
        assert (await fs.stat(path)).size == len(data)
    for d in model.dirs:
        names = {e.name for e in await fs.readdir(d)}
        prefix = d.rstrip("/") + "/"
        want = {p[len(prefix):] for p in list(model.files) + list(model.dirs - {"/"})
                if p.startswith(prefix) and "/" not in p[len(prefix):]}
        assert names == want, d


def random_ops(rng: random.Random, n: int):
    ops = []
    for _ in range(n):
        r = rng.random()
        dirs = ["/", "/d0", "/d1", "/d0/d2"]
        if r < 0.15:
            ops.append(("create", rng.choice(dirs), rng.randrange(12)))
        elif r < 0.22:
            ops.append(("mkdir", rng.choice(dirs[:2]), rng.randrange(3)))
        elif r < 0.6:
            off = rng.choice([0, rng.randrange(8000), rng.randrange(60_000), rng.randrange(90_000)])
            ops.append(("write", rng.randrange(100), off, rng.choice([1, 100, 511, 512, 3000, 20_000])))
        elif r < 0.7:
            ops.append(("truncate", rng.randrange(100), rng.randrange(70_000), 0))
        elif r < 0.78:
            ops.append(("unlink", rng.randrange(100), 0, 0))
        elif r < 0.82:
            ops.append(("rmdir", rng.randrange(4)))
        else:
            ops.append(("read", rng.randrange(100), rng.randrange(70_000), rng.randrange(30_000)))
    return ops


async def run_sequence(ops, seed, *, cache_blocks=24, sectors=8192, inodes=256):
    dev = MemoryBlockDevice(sectors)
    await mkfs(dev, block_size=512, blocks_per_group=2048, inodes=inodes)
    fs = await FileSystem.mount(dev, cache_blocks=cache_blocks)
    model = Model()
    rng = random.Random(seed)

    def rng_bytes(n):
        return rng.randbytes(n)

    for i, op in enumerate(ops):
        await apply(fs, model, op, rng_bytes)
        if i % 25 == 24:
            await check_against(fs, model)
    await check_against(fs, model)
    await fs.unmount()
    report = await fsck(dev)
    assert report.clean, str(report)
    fs2 = await FileSystem.mount(dev, cache_blocks=cache_blocks)
    await check_against(fs2, model)
    return model


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_match_the_model(seed):
    rng = random.Random(seed)
    run(run_sequence(random_ops(rng, 120), seed))


@pytest.mark.parametrize("seed", range(4))
def test_random_sequences_on_a_tiny_disk_hit_no_space_cleanly(seed):
    """A 150 KiB disk: writes and creates run out of blocks and inodes along the way."""
    rng = random.Random(100 + seed)
    ops = [op for op in random_ops(rng, 400) if op[0] not in ("unlink", "rmdir", "truncate")]
    model = run(run_sequence(ops, seed, sectors=300, inodes=32, cache_blocks=16))
    assert model.nospace > 0


_op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["/", "/d0", "/d1"]), st.integers(0, 6)),
    st.tuples(st.just("mkdir"), st.sampled_from(["/", "/d0"]), st.integers(0, 2)),
    st.tuples(st.just("write"), st.integers(0, 50), st.integers(0, 80_000), st.integers(0, 9000)),
    st.tuples(st.just("truncate"), st.integers(0, 50), st.integers(0, 80_000), st.just(0)),
    st.tuples(st.just("unlink"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("rmdir"), st.integers(0, 3)),
    st.tuples(st.just("read"), st.integers(0, 50), st.integers(0, 80_000), st.integers(0, 20_000)),
)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=40))
def test_hypothesis_sequences_match_the_model(ops):
    run(run_sequence(ops, 1, cache_blocks=16))


def test_lookup_of_unlinked_is_not_found():
    async def body():
        dev = MemoryBlockDevice(2048)
        await mkfs(dev, block_size=512)
        fs = await FileSystem.mount(dev, cache_blocks=16)
        await fs.create("/x")
        await fs.unlink("/x")
        with pytest.raises(NotFound, match="/x"):
            await fs.unlink("/x")
    run(body())


def test_fsck_repairs_broken_directory_chunks_and_bad_pointers():
    import struct
    from sw.libos.fs.layout import Superblock

    async def body():
        dev = MemoryBlockDevice(4096)
        await mkfs(dev, block_size=512, blocks_per_group=1024)
        fs = await FileSystem.mount(dev, cache_blocks=24)
        await fs.mkdir("/e")
        await fs.create("/e/x")
        await fs.write("/e/x", b"x" * 100)
        await fs.create("/y")
        await fs.write("/y", pattern(2000))
        await fs.create("/z")
        await fs.write("/z", pattern(600))
        ino_e, ino_x = await fs.lookup("/e"), await fs.lookup("/e/x")
        ino_y, ino_z = await fs.lookup("/y"), await fs.lookup("/z")
        await fs.unmount()
        sb = Superblock.unpack(bytes(dev.data[:512]))

        def inode_off(ino):
            blk, off = sb.inode_location(ino)
            return blk * 512 + off

        # /e's first directory block: a record length that runs off the chunk
        e_block = struct.unpack_from("<I", dev.data, inode_off(ino_e) + 36)[0]
        struct.pack_into("<H", dev.data, e_block * 512 + 12 + 4, 1000)
        # /y: its second block points outside the disk's data areas; /z's first block is /y's
        y0 = struct.unpack_from("<I", dev.data, inode_off(ino_y) + 36)[0]
        struct.pack_into("<I", dev.data, inode_off(ino_y) + 40, 3)       # an inode-table block
        struct.pack_into("<I", dev.data, inode_off(ino_z) + 36, y0)
        report = await fsck(dev, repair=True)
        text = "\n".join(report.problems)
        assert f"directory inode {ino_e}" in text and "bad record length 1000" in text
        assert f"inode {ino_x}: unreferenced file of 100 bytes" in text
        assert f"inode {ino_y}: file block 1 points to block 3, outside every data area" in text
        assert f"inode {ino_z}: file block 0 block {y0} is already claimed by inode {ino_y}" in text
        assert report.repaired
        again = await fsck(dev)
        assert again.clean, str(again)
        fs2 = await FileSystem.mount(dev)
        assert await fs2.readdir("/e") == []
        y = await fs2.read("/y")
        assert y[:512] == pattern(2000)[:512] and y[512:1024] == bytes(512)   # the hole
        assert (await fs2.read("/z"))[:512] == bytes(512)
        await fs2.create("/e/new")                     # the rebuilt directory works
        assert [e.name for e in await fs2.readdir("/e")] == ["new"]
    run(body())
