"""Cheetah's ``ilp`` switch on the paper's machines (serveros.experiments.paper.run_point):
``cheetah@+ilp`` against the stage before it, ``cheetah@+ash``, in short runs.

Over the LANCE card the receive copy (programmed I/O out of the card's buffer) sums each frame
as it copies it, and the TCP checksum of every segment Cheetah receives is checked with that
sum: the second pass over the segment (the tuned in_cksum's call and its per-word loop at the
profile's uncached row) goes; the pipe's add-with-carry (3 instructions a word of the frame),
its fold and the in-line subtraction of the Ethernet header come. The transmit copy into the
card sums each frame too (its instructions hidden under the card's posted writes) and
completes the TCP checksum, which costs one more I/O write per frame (``io_wait``): no segment
is summed by the stack. So ``checksum`` falls, ``io_wait`` rises by those writes, and nothing
else moves. With the precomputed checksums off the document's sums go as well, so the ILP
Cheetah without them is cheaper than the paper's Cheetah with them. Over the AN2 the data
moves by DMA: there is no copy to fuse with, and nothing changes at all.
"""
from __future__ import annotations

import pytest

from serveros.experiments import paper
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sw.cheetah.ash_handlers import passing_instructions
from sw.exokernel.ash import SANDBOX_CHECK_INSTRUCTIONS

REQUESTS = 8
#: Categories the fusion does not touch.
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


def _busy(t: dict) -> float:
    return sum(v for c, v in t.items() if c != "idle")


@pytest.mark.parametrize("size", [100, 1024])
def test_ethernet_checksums_ride_in_the_copies(image, size):
    off, off_t = _run(image, "cheetah@+ash", "ethernet", size)
    on, on_t = _run(image, "cheetah@+ilp", "ethernet", size)
    s = on["server_stats"]
    assert s["ilp_rx_fused"] == s["ilp_tx_fused"] == 1 and "ilp_rx_fused" not in off["server_stats"]
    # The same replies, bytes and segments; none dropped as a bad checksum, none sent again
    # (the client checks every checksum the copy completed).
    for k in ("responses", "bytes_sent", "body_bytes"):
        assert s[k] == off["server_stats"][k], k
    assert on["packets_per_request"] == off["packets_per_request"]
    assert s["tcp"]["bad_checksum"] == off["server_stats"]["tcp"]["bad_checksum"] == 0
    assert s["tcp"]["retransmit_timeouts"] == 0
    assert on_t["checksum"] < 0.8 * off_t["checksum"]
    # The closing ASH's runs (kernel): a frame whose acknowledgement number's bit an armed
    # connection shares is looked up in its bucket, and which connections are still armed
    # when it arrives depends on when the library last ran, which ILP's timing moves
    # (sw/cheetah/ash_handlers.py): at most one such lookup a request apart.
    lookup = AEGIS.instructions(passing_instructions(looked_up=True) - passing_instructions()
                                + 6 * SANDBOX_CHECK_INSTRUCTIONS)
    for cat in UNTOUCHED:                      # the same work, at most a cycle's rounding apart
        tol = 2 + (lookup if cat == "kernel" else 0)
        assert on_t.get(cat, 0) == pytest.approx(off_t.get(cat, 0), abs=tol), cat
    # One more I/O write per frame sent (the completed checksum's word).
    assert 0 < on_t["io_wait"] - off_t["io_wait"] < 0.01 * off_t["io_wait"]
    assert _busy(on_t) < _busy(off_t)


def test_ilp_takes_the_place_of_precomputed_checksums(image):
    """Without the precomputed checksums the stack sums every byte sent; with ILP the copy
    does, so the ILP Cheetah without them costs less than the paper's Cheetah with them."""
    plain, plain_t = _run(image, "cheetah@+ash.no-precomputed_checksums", "ethernet", 10240)
    ilp, ilp_t = _run(image, "cheetah@+ilp.no-precomputed_checksums", "ethernet", 10240)
    pre, pre_t = _run(image, "cheetah@+ash", "ethernet", 10240)
    assert ilp["server_stats"]["tcp"]["retransmit_timeouts"] == 0
    assert ilp_t["checksum"] < pre_t["checksum"] < plain_t["checksum"]
    assert ilp_t["checksum"] < 0.1 * plain_t["checksum"]
    assert _busy(ilp_t) < _busy(pre_t) < _busy(plain_t)


def test_an2_has_no_copy_to_fuse_with(image):
    off, off_t = _run(image, "cheetah@+ash", "an2")
    on, on_t = _run(image, "cheetah@+ilp", "an2")
    assert on["server_stats"]["ilp_rx_fused"] == on["server_stats"]["ilp_tx_fused"] == 0
    assert on_t == off_t and on["sim_seconds"] == off["sim_seconds"]
