"""Disk image files: round trips, validation, overlay vs write-through, cut-off writes."""
from __future__ import annotations

import os
import random
import struct

import pytest

from hw.disk import image as image_mod
from hw.disk.image import HEADER_SIZE, MAGIC, DiskImage, ImageError


def _blocks(rng: random.Random, n: int, bs: int = 512) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n * bs))


def test_create_is_zero_filled_and_sized(tmp_path):
    path = tmp_path / "d.img"
    with DiskImage.create(path, 1000) as img:
        assert img.block_count == 1000 and img.block_size == 512
        assert img.read(0, 3) == bytes(3 * 512)
        assert img.read(999) == bytes(512)
    assert path.stat().st_size == HEADER_SIZE + 1000 * 512
    with pytest.raises(FileExistsError):
        DiskImage.create(path, 10)


def test_save_and_load_round_trip(tmp_path):
    rng = random.Random(1)
    path = tmp_path / "d.img"
    DiskImage.create(path, 256, 1024).close()
    writes = {lbn: _blocks(rng, 1, 1024) for lbn in rng.sample(range(256), 40)}
    with DiskImage.open(path) as img:           # overlay mode: nothing reaches the file yet
        for lbn, data in writes.items():
            img.write(lbn, data)
        assert img.dirty_blocks == 40
        assert all(img.read(lbn) == d for lbn, d in writes.items())
        img.save(tmp_path / "copy.img")         # a new image with the writes ...
        assert img.dirty_blocks == 40
    with DiskImage.open(path) as img:           # ... the original untouched (closed unsaved)
        assert all(img.read(lbn) == bytes(1024) for lbn in writes)
        for lbn, data in writes.items():
            img.write(lbn, data)
        img.save()                              # now persisted in place
        assert img.dirty_blocks == 0
    for p in (path, tmp_path / "copy.img"):
        with DiskImage.open(p) as img:
            assert img.block_size == 1024 and img.block_count == 256
            for lbn in range(256):
                assert img.read(lbn) == writes.get(lbn, bytes(1024))


def test_persist_writes_through(tmp_path):
    path = tmp_path / "d.img"
    data = _blocks(random.Random(2), 5)
    with DiskImage.create(path, 64) as img:
        img.write(10, data)
        img.flush()
    with DiskImage.open(path) as img:
        assert img.read(10, 5) == data


def test_multi_block_read_sees_overlay_and_file(tmp_path):
    path = tmp_path / "d.img"
    with DiskImage.create(path, 8) as img:
        img.write(2, b"\x01" * 512)
    with DiskImage.open(path) as img:
        img.write(3, b"\x02" * 512)
        assert img.read(1, 4) == bytes(512) + b"\x01" * 512 + b"\x02" * 512 + bytes(512)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:10], "shorter than the 64-byte header"),
    (lambda b: b"NOTADISK" + b[8:], "not a disk image: magic"),
    (lambda b: b[:8] + struct.pack("<I", 9) + b[12:], "unsupported image version 9"),
    (lambda b: b[:16] + struct.pack("<I", 500) + b[20:], "block size must be a power of two"),
    (lambda b: b[:-1], "truncated image"),
    (lambda b: b + b"x", "trailing bytes"),
])
def test_bad_images_are_rejected_with_a_clear_message(tmp_path, damage, message):
    path = tmp_path / "d.img"
    DiskImage.create(path, 4).close()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ImageError, match=message) as info:
        DiskImage.open(path)
    assert str(path) in str(info.value)


def test_bad_accesses(tmp_path):
    with DiskImage.create(tmp_path / "d.img", 4) as img:
        with pytest.raises(ValueError, match="outside the image"):
            img.read(3, 2)
        with pytest.raises(ValueError, match="whole number"):
            img.write(0, b"x" * 100)
        with pytest.raises(ValueError, match="outside the image"):
            img.write(4, bytes(512))
    with pytest.raises(ValueError, match="closed"):
        img.read(0)
    with pytest.raises(ValueError, match="block size"):
        DiskImage.create(tmp_path / "e.img", 4, 1000)


def test_a_write_cut_off_part_way_leaves_each_sector_old_or_new(tmp_path, monkeypatch):
    rng = random.Random(3)
    path = tmp_path / "d.img"
    old = _blocks(rng, 32)
    with DiskImage.create(path, 32) as img:
        img.write(0, old)
    new = _blocks(rng, 20)
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def failing_pwrite(fd, data, offset):
        # Power fails during the 8th sector of the request: that sector never reaches the file.
        calls["n"] += 1
        if calls["n"] == 8:
            raise OSError("simulated power failure")
        return real_pwrite(fd, data, offset)

    with DiskImage.open(path, persist=True) as img:
        monkeypatch.setattr(image_mod.os, "pwrite", failing_pwrite)
        with pytest.raises(OSError, match="simulated"):
            img.write(6, new)
        monkeypatch.setattr(image_mod.os, "pwrite", real_pwrite)
    with DiskImage.open(path) as img:           # reloads cleanly: header intact, full length
        got = img.read(0, 32)
    sectors = [got[i * 512:(i + 1) * 512] for i in range(32)]
    states = []
    for i, s in enumerate(sectors):
        was = old[i * 512:(i + 1) * 512]
        now = new[(i - 6) * 512:(i - 5) * 512] if 6 <= i < 26 else None
        assert s == was or s == now, f"sector {i} is torn"
        states.append("new" if s == now and s != was else "old")
    assert states[6:13] == ["new"] * 7 and states[13:] == ["old"] * 19 and states[:6] == ["old"] * 6


def test_header_layout(tmp_path):
    path = tmp_path / "d.img"
    DiskImage.create(path, 3, 4096).close()
    raw = path.read_bytes()[:HEADER_SIZE]
    assert raw[:8] == MAGIC
    assert struct.unpack_from("<IIIIQ", raw, 8) == (1, HEADER_SIZE, 4096, 0, 3)


def test_a_whole_rz26_image_is_sparse(tmp_path):
    # 2 050 860 blocks = 1.05 GB of address space; unwritten blocks are holes.
    path = tmp_path / "rz26.img"
    with DiskImage.create(path, 2_050_860) as img:
        img.write(2_050_859, b"\xff" * 512)
        assert img.read(1_000_000) == bytes(512)
    st = path.stat()
    assert st.st_size == HEADER_SIZE + 2_050_860 * 512
    assert st.st_blocks * 512 < 1 << 20
