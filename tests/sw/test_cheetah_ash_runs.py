"""Cheetah's ``ash`` switch on the paper's machines (serveros.experiments.paper.run_point):
a short run with the BSD clients, over Ethernet and over the AN2, with the ASH and without.

The clients acknowledge Cheetah's reply and FIN at once and send their FIN when the
application closes: two of a connection's five frames to the server. The ASH takes both in
the kernel, so per request two upcalls (``context_switch``), two TCP inputs and the output of
the final ACK (``protocol``, ``checksum``, and on Ethernet the transmit ``syscall``) are not
spent, and the ASH's instructions are (``kernel``).
"""
from __future__ import annotations

import pytest

from serveros.experiments import paper
from sim.time import S
from sw.libos.net.tcp import TcpConfig

REQUESTS = 8


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img")


def _run(image, server: str, network: str, clients: int) -> tuple[dict, dict]:
    fig = ("c",) if network == "an2" else ("b",)
    r = paper.run_point(paper.Point(fig, server, 1024, clients, REQUESTS, "model", 1,
                                    network=network), image)[0]
    assert r["ok"] == REQUESTS * clients and r["failed"] == 0
    per_request = {c: f * r["sim_seconds"] / r["ok"] for c, f in r["cpu_breakdown"].items()}
    return r, per_request


@pytest.mark.parametrize("network, clients", [("ethernet", 1), ("ethernet", 2), ("an2", 1),
                                               ("an2", 2)])
def test_ash_moves_the_closing_work_into_the_kernel(image, network, clients):
    """With two clients the library runs between a connection's two closing frames, so it
    takes what the ASH did in two steps (the ACK of our FIN, then the client's FIN)."""
    off, off_t = _run(image, "cheetah", network, clients)
    on, on_t = _run(image, "cheetah@+ash", network, clients)
    # Nothing lost and sent again: any TCP recovery waits at least the minimum RTO (1 s),
    # and these runs last tens of ms (a SYN lost to a failed read-back came back 3 s later).
    assert on["sim_seconds"] < off["sim_seconds"] + TcpConfig().min_rto_ps / S
    assert on["server_stats"]["tcp"]["retransmit_timeouts"] == 0
    s = on["server_stats"]
    assert s["ash_armed"] == REQUESTS * clients and s["ash_not_armed"] == 0
    # The run stops when the last client has its reply: its connection's ACK and FIN (and
    # maybe another client's) come after the server's statistics are taken.
    assert s["ash_armed"] - clients <= s["ash_fins"] <= s["ash_fin_acks"] <= s["ash_armed"]
    assert s["ash"]["frames_by_ash"] >= 2 * s["ash_fins"] and s["ash"]["aborts"] == 0
    for cat in ("context_switch", "protocol", "checksum", "syscall"):
        assert on_t[cat] < off_t[cat], cat
    assert on_t["kernel"] > off_t.get("kernel", 0)
    busy = {n: sum(v for c, v in t.items() if c not in ("idle", "io_wait"))
            for n, t in (("off", off_t), ("on", on_t))}
    assert busy["on"] < busy["off"]
