"""RTL in the loop: the driver sends and receives frames through the LANCE card's gateware over
the simulated segment (le0's card is RTL on Verilator or Amaranth's simulator, le1's the model);
the frames land in the pcap and tshark decodes them."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from serveros.experiments.lance import run_lance_exchange
from serveros.rtl import simulator_missing


def _tshark_frames(path) -> list[tuple[str, str, int]]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "eth.src", "-e",
                          "eth.dst", "-e", "frame.len", "-e", "_ws.malformed"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        src, dst, n, *expert = line.split("\t")
        assert not any(expert), f"tshark finds a malformed frame: {line}"
        rows.append((src, dst, int(n)))
    return rows


@pytest.mark.hdl
def test_driver_through_rtl_on_verilator_over_the_segment(tmp_path) -> None:
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    pcap = tmp_path / "rtl.pcapng"
    r = run_lance_exchange(6, None, seed=5, backend="verilator", pcap_path=str(pcap))
    assert (r.frames, r.driver["le0"]["sent"], r.driver["le0"]["received"]) == (12, 6, 6)
    assert r.driver["le0"]["tx_errors"] == 0 and r.driver["le0"]["rx_errors"] == 0
    # Python woke per transaction, not per cycle.
    assert r.python_wakes < r.sim_ps // 80_000 // 10
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: frames were checked by the driver only")
    rows = _tshark_frames(pcap)
    assert len(rows) == 12
    for i, (src, dst, n) in enumerate(rows):
        me, peer = ("08:00:2b:00:00:01", "08:00:2b:00:00:02")[::1 if i % 2 == 0 else -1]
        assert (src, dst) == (me, peer)
        assert 64 <= n <= 1518          # the pcap holds the FCS too
    # Same seed, same run: the RTL co-simulation is deterministic to the byte.
    again = tmp_path / "again.pcapng"
    r2 = run_lance_exchange(6, None, seed=5, backend="verilator", pcap_path=str(again))
    assert r2 == r
    assert again.read_bytes() == pcap.read_bytes()


def test_driver_through_rtl_on_amaranth(tmp_path) -> None:
    pcap = tmp_path / "amaranth.pcapng"
    r = run_lance_exchange(1, 60, seed=3, backend="amaranth", pcap_path=str(pcap))
    assert (r.driver["le0"]["sent"], r.driver["le0"]["received"]) == (1, 1)
    if shutil.which("tshark"):
        assert [n for _, _, n in _tshark_frames(pcap)] == [64, 64]   # 60 bytes and the FCS


def test_rtl_and_model_backends_carry_the_same_frames(tmp_path) -> None:
    """The pcap of the same exchange holds the same frames (bytes) with the card as model or
    as RTL; their times may differ by the model's and the RTL's different wire coupling."""
    import dpkt
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    frames = {}
    for backend in ("model", "verilator"):
        p = tmp_path / f"{backend}.pcapng"
        run_lance_exchange(3, None, seed=9, backend=backend, pcap_path=str(p))
        with open(p, "rb") as f:
            frames[backend] = [bytes(buf) for _, buf in dpkt.pcapng.Reader(f)]
    assert frames["model"] == frames["verilator"]
