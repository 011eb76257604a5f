"""Cheetah's ``ilp`` switch on the paper's machines (serveros.experiments.paper.run_point):
``cheetah@+ilp`` against the stage before it, ``cheetah@+ash``, in short runs.

Over the LANCE card the receive copy (programmed I/O out of the card's buffer) sums each frame
as it copies it, and the TCP checksum of every segment Cheetah receives is checked with that
sum: the second pass over the segment (the tuned in_cksum's call and its per-word loop at the
profile's uncached row) goes, the pipe's add-with-carry (3 instructions a word of the frame),
its fold and the in-line subtraction of the Ethernet header come. So ``checksum`` falls, the
copy's bus reads and host stores (``io_wait``, ``memory_stall``) are the same, and nothing
else moves. Over the AN2 the data arrives by DMA: there is no copy to fuse with, and nothing
changes at all.
"""
from __future__ import annotations

import pytest

from serveros.experiments import paper

REQUESTS = 8
#: Categories the receive fusion does not touch.
UNTOUCHED = ("application", "context_switch", "copy", "demux", "interrupt", "kernel",
             "memory_stall", "protocol", "syscall")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img")


def _run(image, server: str, network: str, size: int = 1024) -> tuple[dict, dict]:
    fig = ("c",) if network == "an2" else ("b",)
    r = paper.run_point(paper.Point(fig, server, size, 1, REQUESTS, "model", 1,
                                    network=network), image)[0]
    assert r["ok"] == REQUESTS and r["failed"] == 0
    cycles = r["sim_seconds"] / r["ok"] * 25e6            # the 25 MHz R3000's cycles a request
    return r, {c: f * cycles for c, f in r["cpu_breakdown"].items()}


@pytest.mark.parametrize("size", [100, 1024])
def test_ethernet_receive_checksum_rides_in_the_copy(image, size):
    off, off_t = _run(image, "cheetah@+ash", "ethernet", size)
    on, on_t = _run(image, "cheetah@+ilp", "ethernet", size)
    assert on["server_stats"]["ilp_rx_fused"] == 1 and "ilp_rx_fused" not in off["server_stats"]
    # The same replies, bytes and segments; no segment dropped as a bad checksum.
    for k in ("responses", "bytes_sent", "body_bytes"):
        assert on["server_stats"][k] == off["server_stats"][k], k
    assert on["packets_per_request"] == off["packets_per_request"]
    assert on["server_stats"]["tcp"]["bad_checksum"] == off["server_stats"]["tcp"]["bad_checksum"] == 0
    assert on_t["checksum"] < off_t["checksum"]
    for cat in UNTOUCHED:                      # the same work, at most a cycle's rounding apart
        assert on_t.get(cat, 0) == pytest.approx(off_t.get(cat, 0), abs=2), cat
    assert on_t["io_wait"] == pytest.approx(off_t["io_wait"], rel=0.01)   # the same bus reads
    busy = {n: sum(v for c, v in t.items() if c != "idle") for n, t in (("off", off_t),
                                                                        ("on", on_t))}
    assert busy["on"] < busy["off"]


def test_an2_has_no_copy_to_fuse_with(image):
    off, off_t = _run(image, "cheetah@+ash", "an2")
    on, on_t = _run(image, "cheetah@+ilp", "an2")
    assert on["server_stats"]["ilp_rx_fused"] == 0
    assert on_t == off_t and on["sim_seconds"] == off["sim_seconds"]
