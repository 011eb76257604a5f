"""build_image round trips, and the file system over a real disk-image file."""
import struct
import zlib
from pathlib import Path

import pytest

from hw.disk.image import DiskImage
from sw.libos.fs import FileSystem, ImageBlockDevice, MemoryBlockDevice, mkfs
from sw.libos.fs.build import build_image
from sw.libos.fs.fsck import fsck

from test_fs import pattern, run


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "index.html": b"<html><img src=img/logo.gif></html>",
        "empty.txt": b"",
        "img/logo.gif": pattern(5000, 2),
        "img/big.bin": pattern(300_000, 3),          # 4 KiB blocks: past the single indirect
        "docs/a/b/c/deep.txt": b"deep" * 1000,
        "caf\u00e9.txt": "\u00e9t\u00e9".encode(),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "emptydir").mkdir()
    return files


async def read_tree(fs, d="/"):
    out, dirs = {}, set()
    for e in await fs.readdir(d):
        path = d.rstrip("/") + "/" + e.name
        if e.ftype == 2:
            dirs.add(path)
            sub, subdirs = await read_tree(fs, path)
            out.update(sub)
            dirs |= subdirs
        else:
            out[path] = await fs.read(path)
    return out, dirs


def test_build_image_round_trips(tmp_path):
    src = tmp_path / "site"
    files = make_tree(src)
    image = tmp_path / "site.img"

    def checksum(path, data):
        return struct.pack("<I", zlib.crc32(data))

    res = build_image(src, image, extra_size=8, extra=checksum)
    assert (res.files, res.directories) == (len(files), 6)
    assert res.bytes == sum(len(v) for v in files.values())
    with DiskImage.open(image) as img:          # the real reader accepts the file
        assert img.block_size == 512 and img.block_count == res.sectors
        dev = ImageBlockDevice(img)

        async def body():
            assert (await fsck(dev)).clean
            fs = await FileSystem.mount(dev)
            got, dirs = await read_tree(fs)
            assert got == {"/" + k: v for k, v in files.items()}
            assert dirs == {"/img", "/docs", "/docs/a", "/docs/a/b", "/docs/a/b/c", "/emptydir"}
            for k, v in files.items():
                assert (await fs.get_extra("/" + k))[:4] == struct.pack("<I", zlib.crc32(v))
        run(body())
    # deterministic: the same tree gives the same image, byte for byte
    again = tmp_path / "again.img"
    build_image(src, again, extra_size=8, extra=checksum)
    assert image.read_bytes() == again.read_bytes()


def test_build_image_through_disk_image_class_and_fixed_size(tmp_path):
    src = tmp_path / "site"
    files = make_tree(src)
    image = tmp_path / "disk.img"
    res = build_image(src, image, sectors=20_000, block_size=1024,
                      image_factory=lambda p, n, bs: DiskImage.create(p, n, bs))
    assert res.sectors == 20_000
    assert image.stat().st_size == 64 + 20_000 * 512
    with DiskImage.open(image) as img:
        dev = ImageBlockDevice(img)

        async def body():
            fs = await FileSystem.mount(dev)
            got, _ = await read_tree(fs)
            assert got == {"/" + k: v for k, v in files.items()}
            assert fs.sb.block_size == 1024
        run(body())


def test_build_image_errors(tmp_path):
    with pytest.raises(NotADirectoryError, match="nope"):
        build_image(tmp_path / "nope", tmp_path / "x.img")
    src = tmp_path / "s"
    make_tree(src)
    (tmp_path / "x.img").write_bytes(b"")
    with pytest.raises(FileExistsError, match="overwrite"):
        build_image(src, tmp_path / "x.img")
    build_image(src, tmp_path / "x.img", overwrite=True)
    from sw.libos.fs import NoSpace
    with pytest.raises(NoSpace):
        build_image(src, tmp_path / "small.img", sectors=400, overwrite=True)


def test_file_system_on_a_persistent_disk_image(tmp_path):
    path = tmp_path / "fs.img"
    img = DiskImage.create(path, 4096, 512)
    dev = ImageBlockDevice(img)

    async def make():
        await mkfs(dev, block_size=4096)
        fs = await FileSystem.mount(dev)
        await fs.mkdir("/www")
        await fs.create("/www/page")
        await fs.write("/www/page", pattern(70_000, 9))
        await fs.unmount()
    run(make())
    img.close()
    with DiskImage.open(path) as img2:
        async def check():
            dev2 = ImageBlockDevice(img2)
            assert (await fsck(dev2)).clean
            fs = await FileSystem.mount(dev2)
            assert await fs.read("/www/page") == pattern(70_000, 9)
        run(check())
    with pytest.raises(TypeError, match="not a disk image"):
        ImageBlockDevice(object())


def test_memory_device_checks_and_crash():
    with pytest.raises(ValueError, match="sector size"):
        MemoryBlockDevice(10, 1000)
    with pytest.raises(ValueError, match="block count"):
        MemoryBlockDevice(0)
    dev = MemoryBlockDevice(8, crash_after=3)

    async def body():
        from sw.libos.fs import DeviceCrashed
        with pytest.raises(ValueError, match="outside"):
            await dev.read(7, 2)
        with pytest.raises(ValueError, match="whole number"):
            await dev.write(0, b"x")
        with pytest.raises(DeviceCrashed, match="sector 3"):
            await dev.write(0, b"\x01" * 512 * 5)
        assert dev.crashed and dev.writes == 3
        assert await dev.read(0, 4) == b"\x01" * 1536 + bytes(512)
    run(body())


def test_file_system_over_the_disk_driver_and_controller_model(tmp_path):
    """End to end: fs -> DriverBlockDevice -> DiskDriver -> controller model -> disk image."""
    from hw.disk.model import DiskControllerModel
    from hw.disk.registers import CLOCK_PERIOD_PS, WINDOW_SIZE
    from sim.bus import Bus, IrqLine
    from sim.cpu import CPU, IO_WAIT
    from sim.kernel import Kernel
    from sim.memory import Memory
    from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE
    from sim.time import Clock
    from sw.drivers.disk import DiskDriver
    from sw.libos.fs import DriverBlockDevice

    k = Kernel()
    mem = Memory(k, 1 << 20, profile=PROFILE)
    bus = Bus(k)
    cpu = CPU(k, PROFILE)
    irq = IrqLine(k, "disk")
    img = DiskImage.create(tmp_path / "d.img", 4096, persist=True)
    ctl = DiskControllerModel(k, Clock(CLOCK_PERIOD_PS), memory=mem, image=img, irq=irq)
    bus.map(0x1C00_0000, WINDOW_SIZE, ctl, "disk")
    drv = DiskDriver(cpu, bus, 0x1C00_0000, mem, irq)

    async def body():
        dev = await DriverBlockDevice.attach(drv, mem, 0x8000, 8192)
        await mkfs(dev, block_size=4096)
        fs = await FileSystem.mount(dev, cpu=cpu, kernel=k)
        await fs.mkdir("/www")
        await fs.create("/www/index.html")
        await fs.write("/www/index.html", pattern(20_000, 4))
        await fs.unmount()
        fs2 = await FileSystem.mount(dev, kernel=k)
        assert await fs2.read("/www/index.html") == pattern(20_000, 4)
        assert (await fsck(dev)).clean
        return k.now

    task = k.spawn(body(), name="main")
    k.run()
    assert task.exception is None and task.result > 0       # the disk took simulated time
    assert cpu.report().by_category[IO_WAIT].ps > 0
    img.close()
    with DiskImage.open(tmp_path / "d.img") as again:       # and it is all on the image
        async def check():
            fs = await FileSystem.mount(ImageBlockDevice(again))
            assert await fs.read("/www/index.html") == pattern(20_000, 4)
        run(check())
