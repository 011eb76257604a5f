"""Cheetah against bad and abusive clients (issue 13): HTTP/0.9, unexpected exceptions, silent
clients, SYN floods, and what an Aegis machine does with traffic no environment owns."""
from __future__ import annotations

import pytest

from sim.time import MS, S
from sw.cheetah import CheetahConfig
from sw.cheetah.server import CheetahServer

from abuse_harness import SynFlooder
from test_cheetah import SERVER_IP, SERVER_MAC, Client, Rig, get, split


@pytest.mark.parametrize("config", [CheetahConfig(), CheetahConfig().without("merged_segments"),
                                    CheetahConfig().without("precomputed_checksums")],
                         ids=["cheetah", "no-merged_segments", "no-precomputed_checksums"])
def test_http09_simple_request_gets_the_body_alone_then_close(config):
    rig = Rig(config)
    c = rig.fetch(b"GET /doc1024\r\n")
    assert bytes(c.got) == rig.docs["/doc1024"]          # no status line, no header
    assert c.peer_closed and c.closed == "closed"
    missing = rig.fetch(b"GET /nothing\r\n")
    assert missing.got.startswith(b"<html>") and missing.peer_closed    # 404 page, no header
    assert split(rig.fetch(get("/doc10")).got)[2] == rig.docs["/doc10"]


def test_an_unexpected_exception_is_a_500_and_the_server_keeps_serving(monkeypatch, caplog):
    real = CheetahServer._parse

    def faulty(self, req):
        if b"/boom" in req:
            raise RuntimeError("injected fault")
        return real(self, req)

    monkeypatch.setattr(CheetahServer, "_parse", faulty)
    rig = Rig()
    bad = rig.fetch(get("/boom"))
    assert split(bad.got)[0] == "HTTP/1.0 500 Internal Server Error" and bad.peer_closed
    assert split(rig.fetch(get("/doc100")).got)[2] == rig.docs["/doc100"]
    st = rig.server.stats()
    assert st["internal_errors"] == 1 and st["pool_free"] == rig.server.pool_size
    assert any(r.exc_info and "injected fault" in str(r.exc_info[1]) for r in caplog.records)


class Silent(Client):
    async def on_connected(self):
        pass                                            # never sends its request


def test_a_silent_client_is_dropped_after_the_idle_timeout():
    rig = Rig()
    timeout = rig.server.config.idle_timeout_ps
    assert timeout == 75 * S
    silent = Silent(rig.client, b"")
    rig.k.spawn(rig.client.connect(silent, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + timeout - 1 * S)
    assert silent.closed is None
    rig.k.run(until=rig.k.now + 2 * S)
    assert silent.closed == "reset"                     # the server aborted it
    st = rig.server.stats()
    assert st["idle_timeouts"] == 1 and st["pool_free"] == rig.server.pool_size
    assert split(rig.fetch(get("/doc100")).got)[2] == rig.docs["/doc100"]
    # a client that does send its request in time is not touched by the timer
    slow = rig.fetch(get("/doc10"), wait=timeout + 5 * S)
    assert split(slow.got)[2] == rig.docs["/doc10"] and rig.server.stats()["idle_timeouts"] == 1


def test_a_syn_flood_is_bounded_by_the_backlog_and_every_structure_comes_back():
    rig = Rig()
    backlog = rig.server.config.backlog
    flood = SynFlooder(rig.seg, SERVER_MAC, SERVER_IP)
    n = 300

    async def syns():
        for i in range(n):
            await flood.syn(i)
    rig.k.spawn(syns())
    rig.k.run(until=rig.k.now + 100 * MS)
    assert flood.sent == n
    # A full backlog drops a newcomer's SYN too, silently, as BSD does: it retries.
    during = rig.fetch(get("/doc100"), wait=1 * S)
    assert during.state.value == "SYN-SENT" and flood.resets == 0
    st = rig.server.stats()
    assert st["embryonic"] == backlog and st["syn_drops"] >= n - backlog
    assert st["pool_allocs"] == 0                        # the preallocated pool sufficed
    # TCPTV_KEEP_INIT (75 s) ends the half-open connections: every structure comes back,
    # and a new client is served at once.
    rig.k.run(until=rig.k.now + 80 * S)
    st = rig.server.stats()
    assert st["embryonic"] == 0 and st["pool_free"] == rig.server.pool_size
    after = rig.fetch(get("/doc100"), wait=20 * MS)
    assert split(after.got)[2] == rig.docs["/doc100"]
    # ARP: one resolution at a time per address, three requests each, only for the
    # backlog's addresses (never one per dropped SYN): 5 SYN-ACK sends in 75 s each.
    assert 0 < flood.arp_requests <= backlog * 3 * 5


def test_aegis_default_environment_answers_ping_and_resets_closed_ports():
    rig = Rig(aegis=True)
    ping = rig.k.spawn(rig.client.ping(SERVER_IP))
    closed = Client(rig.client, get("/doc10"))
    rig.k.spawn(rig.client.connect(closed, SERVER_IP, 81))
    rig.k.run(until=rig.k.now + 100 * MS)
    assert isinstance(ping.result, int) and ping.result < 10 * MS
    assert closed.closed == "refused"
    assert rig.aegis.frames_unclaimed == 2 and rig.aegis.default_env is rig.server.env
    assert split(rig.fetch(get("/doc10")).got)[2] == rig.docs["/doc10"]
