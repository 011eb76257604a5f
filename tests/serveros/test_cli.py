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
    assert set(sub.choices) == {"bench", "profiles", "segment", "replay", "lance", "build-image", "run",
                                  "validate", "synth", "sweep", "plot"}
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


# -- bad options: one line naming the option, exit status 2, never a traceback ---------------------
@pytest.fixture
def afile(tmp_path):
    f = tmp_path / "afile"
    f.write_text("R Miss 0 1 0 0\n")
    return f


BAD_OPTIONS = [
    (["lance", "--size", "99999"], "--size"),
    (["lance", "--size", "13"], "--size"),
    (["lance", "--frames", "0"], "--frames"),
    (["lance", "--frames", "many"], "--frames"),
    (["lance", "--backend", "icarus"], "--backend"),
    (["lance", "--seed", "x"], "--seed"),
    (["lance", "--rtl", "disk"], "--rtl"),
    (["lance", "--rtl", "lance,scsi"], "--rtl"),
    (["lance", "--rtl", "lance", "--backend", "model"], "--backend"),
    (["lance", "--pcap", "{tmp}"], "--pcap"),
    (["lance", "--pcap", "{afile}/x.pcapng"], "--pcap"),
    (["segment", "--stations", "0"], "--stations"),
    (["segment", "--stations", "65"], "--stations"),
    (["segment", "--frames", "-1"], "--frames"),
    (["segment", "--payload", "45"], "--payload"),
    (["segment", "--payload", "1501"], "--payload"),
    (["segment", "--seed", "1.5"], "--seed"),
    (["segment", "--out", "{afile}"], "--out"),
    (["segment", "--out", "{tmp}", "--pcap", "{tmp}"], "--pcap"),
    (["bench", "--frames", "0"], "--frames"),
    (["bench", "--log", "{tmp}"], "--log"),
    (["profiles", "no-such-machine"], "name"),
    (["replay", "{tmp}/missing.trace"], "trace"),
    (["replay", "{tmp}"], "trace"),
    (["replay", "{afile}", "--limit", "0"], "--limit"),
    (["replay", "{afile}", "--show", "-1"], "--show"),
    (["replay", "{afile}", "--backend", "verilator"], "--backend"),
    (["replay", "{afile}", "--image", "{tmp}/missing.img"], "--image"),
    (["replay", "{afile}", "--image", "{afile}"], "--image"),
    (["replay", "{afile}", "--out", "{tmp}"], "--out"),
    (["build-image", "{tmp}/missing", "{tmp}/x.img"], "host_dir"),
    (["build-image", "{tmp}", "{afile}"], "image"),
    (["build-image", "{tmp}", "{afile}/x.img"], "image"),
    (["build-image", "{tmp}", "{tmp}/x.img", "--block-size", "1000"], "--block-size"),
    (["build-image", "{tmp}", "{tmp}/x.img", "--sectors", "1"], "--sectors"),
    (["run", "--requests", "0"], "--requests"),
    (["run", "--jobs", "0"], "--jobs"),
    (["run", "--seed", "-1"], "--seed"),
    (["run", "--figure", "e"], "--figure"),
    (["run", "--network", "atm"], "--network"),
    (["run", "--servers", "apache"], "--servers"),
    (["run", "--backend", "fpga"], "--backend"),
    (["run", "--rtl", "timer"], "--rtl"),
    (["run", "--rtl", "lance,lance"], "--rtl"),
    (["run", "--rtl", "disk", "--backend", "model"], "--backend"),
    (["run", "--out", "{afile}"], "--out"),
    (["run", "--out", "{tmp}", "--pcap", "{tmp}"], "--pcap"),
]


@pytest.mark.parametrize("argv, option", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_is_one_line_naming_it_and_exit_2(argv, option, tmp_path, afile, capsys):
    argv = [a.format(tmp=tmp_path, afile=afile) for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"serveros {argv[0]}: error: ") and option in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("argv", [["lance", "--size", "99999"], ["segment", "--stations", "0"]])
def test_issue_examples_exit_2_without_traceback(argv):
    """The command as a user runs it (a process of its own)."""
    p = subprocess.run([sys.executable, "-m", "serveros.cli", *argv], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout
    assert p.stderr.count("\n") == 1 and argv[1] in p.stderr


def test_unexpected_failure_is_one_line_and_a_logged_traceback(monkeypatch, tmp_path, capsys):
    import tempfile
    from serveros.experiments import segment
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))     # the log lands in tmp_path

    def broken(exp, pcap):
        raise RuntimeError("the segment model broke\nsecond line of detail")
    monkeypatch.setattr(segment, "run_segment", broken)
    assert main(["segment", "--frames", "2", "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in out + err
    assert lines[0].startswith("serveros segment: error: RuntimeError: the segment model broke")
    log = lines[0].rsplit("the full traceback is in ", 1)[1].rstrip(")")
    assert log.startswith(str(tmp_path))
    text = open(log).read()
    assert "Traceback" in text and "second line of detail" in text and "--frames 2" in text


# -- waveforms and the bench's log --------------------------------------------------------------
def test_waves_run_says_where_the_waveform_is(monkeypatch, capsys):
    import time
    from pathlib import Path
    monkeypatch.setenv("SERVEROS_WAVES", "1")
    t0 = time.time()
    assert main(["lance", "--backend", "amaranth", "--frames", "1", "--size", "60"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "waveform" in ln]
    assert len(line) == 1 and line[0].startswith("wrote the waveform ")
    vcd = Path(line[0].removeprefix("wrote the waveform "))
    assert vcd.suffix == ".vcd" and vcd.stat().st_mtime >= t0 - 1
    assert "$enddefinitions" in vcd.read_text()
    assert main(["lance", "--frames", "1", "--size", "60"]) == 0
    assert "no waveform: le0's card is the model" in capsys.readouterr().out


def _waves_line(capsys) -> list:
    from pathlib import Path
    line = [ln for ln in capsys.readouterr().out.splitlines() if "waveform" in ln]
    assert len(line) == 1 and line[0].startswith("wrote the waveform")
    vcds = [Path(v) for v in line[0].split(" ", 3)[3].split(", ")]
    assert line[0].startswith("wrote the waveforms " if len(vcds) > 1 else "wrote the waveform ")
    assert all("$enddefinitions" in v.read_text() for v in vcds)
    return vcds


def test_waves_run_with_both_cards_as_rtl_on_amaranth_names_their_one_waveform(monkeypatch,
                                                                                capsys):
    monkeypatch.setenv("SERVEROS_WAVES", "1")
    assert main(["lance", "--rtl", "lance", "--backend", "amaranth", "--frames", "1",
                 "--size", "60"]) == 0
    assert len(_waves_line(capsys)) == 1         # both cards in the simulation's one VCD


@pytest.mark.hdl
def test_waves_run_with_both_cards_as_rtl_on_verilator_names_both_waveforms(monkeypatch, capsys):
    from serveros.rtl import simulator_missing
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("SERVEROS_WAVES", "1")
    assert main(["lance", "--rtl", "lance", "--backend", "verilator", "--frames", "1",
                 "--size", "60"]) == 0
    vcds = _waves_line(capsys)
    assert len(vcds) == 2 and vcds[0] != vcds[1]


@pytest.mark.hdl
def test_bench_keeps_the_cocotb_runner_output_in_its_log(tmp_path, capfd):
    from serveros import bench
    from serveros.rtl import simulator_missing
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    log = tmp_path / "logs" / "cocotb.log"
    rows = bench.disk_benchmarks(commands=2, log_file=log)
    out, err = capfd.readouterr()
    assert "cocotb" not in out + err
    assert "cocotb" in log.read_text() and "failed" not in rows[-1].note


def test_profiles_prints_the_software_costs_with_their_sources(capsys):
    """``serveros profiles`` prints Ultrix's kernel-path costs beside an Ultrix profile and
    Cheetah's work and the library stack's beside the Aegis one, each with its source."""
    assert main(["profiles", "decstation-5000-125-ultrix43"]) == 0
    out = capsys.readouterr().out
    assert "UltrixCosts" in out and "namei" in out and "sonewconn" in out
    assert main(["profiles", "decstation-5000-125-aegis"]) == 0
    out = capsys.readouterr().out
    assert "APP_COSTS" in out and "header_build" in out and "StackCosts" in out
    assert main(["profiles", "client-pentium100-openbsd"]) == 0
    out = capsys.readouterr().out
    assert "client_costs" in out and "sonewconn" in out and "21040" in out
    assert "rx_frame_cycles" in out


def test_every_ultrix_path_cost_has_its_reasoning():
    import dataclasses

    from serveros.costs import docstring_attributes, software_tables
    from sim.platforms import PROFILES
    from sw.ultrix import UltrixCosts
    why = docstring_attributes(UltrixCosts)
    assert {f.name for f in dataclasses.fields(UltrixCosts)} <= {k for k, v in why.items() if v}
    for table in software_tables(PROFILES["decstation-5000-125-ultrix43"]):
        assert all(source.strip() and "no reasoning" not in source
                   for _n, _v, _u, source in table.rows)


def test_run_help_says_what_rtl_and_backend_choose(capsys):
    assert main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--rtl KINDS" in out and "lance, disk" in out
    assert "--backend verilator or amaranth without --rtl means --rtl lance" in out
