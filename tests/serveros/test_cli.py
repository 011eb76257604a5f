"""The command line and the segment experiment: help lists working commands, runs are
deterministic (byte-identical JSON and pcap for a seed), bad options are clear errors."""
import json
import subprocess
import sys

import pytest

from serveros.cli import build_parser, main
from serveros.experiments.segment import SegmentExperiment, run_segment


def test_help_lists_only_working_subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"bench", "profiles", "segment", "replay", "lance", "build-image", "run"}
    out = subprocess.run([sys.executable, "-m", "serveros.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "segment" in out.stdout and "bench" in out.stdout


def test_segment_same_seed_byte_identical_results_and_pcap(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["segment", "--stations", "3", "--frames", "40", "--payload", "200", "--seed", "7",
                     "--out", str(d)]) == 0
    assert (a / "segment.json").read_bytes() == (b / "segment.json").read_bytes()
    assert (a / "segment.pcapng").read_bytes() == (b / "segment.pcapng").read_bytes()
    res = json.loads((a / "segment.json").read_text())
    assert res["frames_delivered"] + res["frames_abandoned"] == 3 * 40
    assert res["collisions"] > 0


def test_segment_different_seed_differs(tmp_path):
    r1 = run_segment(SegmentExperiment(stations=3, frames=40, payload=200, seed=1))
    r2 = run_segment(SegmentExperiment(stations=3, frames=40, payload=200, seed=2))
    assert r1.to_json() != r2.to_json()


def test_single_sender_reaches_framing_limit():
    r = run_segment(SegmentExperiment(stations=1, frames=200, payload=1000))
    assert r.collisions == 0 and r.frames_delivered == 200
    assert r.goodput_bits_per_s == pytest.approx(r.ideal_goodput_bits_per_s, rel=0.01)


@pytest.mark.parametrize("kw", [{"stations": 0}, {"frames": 0}, {"payload": 10}, {"payload": 1501}])
def test_bad_config_rejected_with_clear_error(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        SegmentExperiment(**kw)


def test_profiles_prints_every_profile_and_rejects_unknown(capsys):
    from sim.platforms import PROFILES
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    for name in PROFILES:
        assert name in out
    assert main(["profiles", "no-such-machine"]) == 2


def test_bench_functions_measure_real_work():
    from serveros import bench
    r = bench.kernel_sleepers(tasks=2, sleeps=50)
    assert r.value > 0 and "102 events" in r.note      # 2 x 50 sleeps + 2 task starts
    r = bench.best_of(lambda: bench.kernel_timeouts(tasks=2, waits=20), repeat=2)
    assert "best of 2" in r.note and r.unit == "events/s"


def test_build_image_round_trips_a_directory(tmp_path):
    """`serveros build-image` writes an image the file system library mounts and reads back;
    a missing directory is a clear error."""
    from hw.disk.image import DiskImage
    from sim.kernel import Kernel
    from sw.libos.fs.device import ImageBlockDevice
    from sw.libos.fs.fs import FileSystem

    src = tmp_path / "site"
    (src / "img").mkdir(parents=True)
    (src / "index.html").write_bytes(b"<html>hello</html>")
    (src / "img" / "a.gif").write_bytes(bytes(range(256)) * 40)
    image = tmp_path / "site.img"
    assert main(["build-image", str(src), str(image)]) == 0
    assert main(["build-image", str(tmp_path / "nope"), str(tmp_path / "x.img")]) == 2
    k = Kernel()
    out = {}

    async def read():
        fs = await FileSystem.mount(ImageBlockDevice(DiskImage.open(image)), kernel=k)
        out["index"] = await fs.read("/index.html")
        out["gif"] = await fs.read("/img/a.gif")
    k.spawn(read())
    k.run()
    assert out["index"] == b"<html>hello</html>"
    assert out["gif"] == bytes(range(256)) * 40
