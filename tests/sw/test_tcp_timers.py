"""TCP timers and robustness against a hand-driven peer (issue 13 items 3, 4, 6, 8): the persist
timer, sender silly-window avoidance, the connection-establishment, FIN-WAIT-2 and keepalive
timers of 4.4BSD, a bounded out-of-order queue, and what a listener does with stray segments.

The peer is :class:`~libos_net_harness.ScriptedPeer`: every segment it sends is crafted here, and the
assertions read what the stack sent and its PCB table. Expected times follow 4.4BSD's
netinet/tcp_timer.c and tcp_output.c, worked out in the comments."""
from __future__ import annotations

from sim.kernel import Kernel
from sim.time import MS, S
from sw.libos.net.tcp import ACK, FIN, PSH, RST, SYN, TcpConfig, TcpState

from libos_net_harness import Conn, ScriptedPeer

CPORT = 40000
C_ISS = 5000                    # the peer's initial sequence number


class Writer(Conn):
    """A server connection that writes ``payload`` as soon as it is established."""

    payload = b""
    last = False

    async def on_connected(self):
        super().on_connected()
        if self.payload:
            await self.write(self.payload, last=self.last)


def open_conn(k: Kernel, peer: ScriptedPeer, *, wnd: int = 8760, rtt: int = 0, payload: bytes = b"",
              last: bool = False, cport: int = CPORT, **pcb_kw):
    """Listen on :80, let the peer open a connection (its SYN offering ``wnd``, its ACK
    ``rtt`` after the SYN-ACK); returns (server PCB, server ISS, segments sent as the
    handshake completed). The connection is established at the returned ``k.now``."""
    srv = []
    cls = type("W", (Writer,), {"payload": payload, "last": last})
    if 80 in peer.stack.tcp.listeners:
        peer.stack.unlisten(80)
    peer.stack.listen(80, lambda: srv.append(cls(peer.stack, **pcb_kw)) or srv[-1])
    peer.inject(cport, 80, C_ISS, 0, SYN, wnd, mss=1460)
    (_, synack), = peer.run_to(k.now)             # the stack runs in zero time (no CPU)
    assert synack.flags == SYN | ACK and synack.ack == C_ISS + 1
    peer.run_to(k.now + rtt)
    peer.inject(cport, 80, C_ISS + 1, synack.seq + 1, ACK, wnd)
    after = peer.run_to(k.now)
    (s,) = srv
    assert s.state in (TcpState.Established, TcpState.FinWait1)
    return s, synack.seq, after


def data_of(segs):
    return [x for _, x in segs if x.payload]


# -- item 3: the persist timer ----------------------------------------------------------------
def test_zero_window_with_lost_update_is_probed_with_backoff_and_completes():
    k = Kernel()
    peer = ScriptedPeer(k)
    body = bytes((i * 11) & 0xFF for i in range(4000))
    # The SYN offers 2920 bytes; the ACK comes 1 s after the SYN-ACK: srtt = 1 s, rttvar
    # = 0.5 s. The server writes 4000 bytes at once: 2920 go (two segments), 1080 wait.
    s, s_iss, sent = open_conn(k, peer, wnd=2920, rtt=1 * S, payload=body, last=True)
    assert [len(x.payload) for x in data_of(sent)] == [1460, 1460]
    t_close = k.now + 1 * S
    peer.run_to(t_close)
    # 1 s later (a second RTT sample of 1 s: rttvar = (3 * 0.5 + 0) / 4 = 0.375 s) the peer
    # acknowledges both with a zero window; its window update is then lost (never sent).
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 2920, ACK, 0)
    probes = []
    # tcp_setpersist: (srtt + 2 rttvar) * tcp_backoff[shift] = 1.75 s * 1, 2, 4, 8, 16, 32, 64
    # bounded to [5 s, 60 s]: 5, 5, 7, 14, 28, 56, 60, 60 s between probes.
    want = [5, 5, 7, 14, 28, 56, 60, 60]
    t = t_close
    for gap in want:
        t += gap * S
        segs = peer.run_to(t - 1 * MS)
        assert segs == [], f"sent before the persist timer: {segs}"
        segs = peer.run_to(t)
        assert len(segs) == 1, (t, segs)
        when, probe = segs[0]
        probes.append(probe)
        # A window probe: one byte, the first unsent one, no FIN.
        assert when == t and probe.seq == s_iss + 1 + 2920 and probe.payload == body[2920:2921]
        assert not probe.flags & FIN
        peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 2920, ACK, 0)     # still closed
    assert s.state is TcpState.FinWait1 and peer.stack.tcp.stats.persist_timeouts == len(want)
    # The next probe finds the window open: the peer takes the byte and offers 8760 bytes;
    # the rest of the data and the FIN go at once.
    t += 60 * S
    (_, probe), = peer.run_to(t)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 2921, ACK, 8760)
    rest = peer.run_to(t + 1 * MS)
    got = body[:2921] + b"".join(x.payload for _, x in rest)
    assert got == body and rest[-1][1].flags & FIN
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + len(body) + 1, ACK, 8760)
    peer.run_to(t + 2 * MS)
    assert s.bytes_acked == len(body) and s.state is TcpState.FinWait2


def test_the_probe_is_answered_and_the_window_update_ends_persisting():
    k = Kernel()
    peer = ScriptedPeer(k)
    body = bytes(3000)
    s, s_iss, _ = open_conn(k, peer, wnd=1460, payload=body)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 1460, ACK, 0)
    t0 = k.now
    # RTT ~0: the estimate is tiny, so the first probes come at the 5 s floor.
    (_, p1), = peer.run_to(t0 + 5 * S)
    assert len(p1.payload) == 1
    # A window update: the rest goes at once (no need to wait for another probe).
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 1460, ACK, 8760)
    rest = peer.run_to(k.now + 1 * MS)
    assert sum(len(x.payload) for x in data_of(rest)) == 1540
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 3000, ACK, 8760)
    assert peer.run_to(k.now + 120 * S) == []      # no more probes: persist state is over
    assert s._persist is None and s.bytes_acked == 3000


# -- item 8: sender silly-window avoidance ----------------------------------------------------
def test_a_small_window_waits_for_the_sws_rules():
    k = Kernel()
    peer = ScriptedPeer(k)
    body = bytes(range(256)) * 80                   # 20480 bytes
    s, s_iss, sent = open_conn(k, peer, wnd=8760, payload=body)
    assert [len(x.payload) for x in data_of(sent)] == [1460] * 6
    una = s_iss + 1 + 8760
    # The peer takes it all but offers only 100 bytes: 100 < MSS, it is not all the queued
    # data, and 100 < 8760 / 2 (half the largest window offered): nothing may go...
    peer.inject(CPORT, 80, C_ISS + 1, una, ACK, 100)
    t0 = k.now
    assert peer.run_to(t0 + 5 * S - 1 * MS) == []
    # ... until the persist timer (5 s) forces out what the window takes.
    (_, seg), = peer.run_to(t0 + 5 * S)
    assert seg.seq == una and len(seg.payload) == 100
    # Acknowledged with 100 bytes offered again: held again (no 100-byte stream).
    peer.inject(CPORT, 80, C_ISS + 1, una + 100, ACK, 100)
    t1 = k.now
    assert peer.run_to(t1 + 4 * S) == []
    # A 3000-byte window: two full segments go at once; the 80-byte rest of the window waits.
    peer.inject(CPORT, 80, C_ISS + 1, una + 100, ACK, 3000)
    sent = peer.run_to(k.now + 1 * MS)
    assert [len(x.payload) for x in data_of(sent)] == [1460, 1460]
    # 3 * 1460 + 80 bytes offered: three full segments, and the 80 bytes wait again.
    peer.inject(CPORT, 80, C_ISS + 1, una + 100 + 2920, ACK, 1460 * 3 + 80)
    sent = peer.run_to(k.now + 1 * MS)
    assert [len(x.payload) for x in data_of(sent)] == [1460, 1460, 1460]
    assert s.snd_max - s.snd_una == 3 * 1460


def test_a_peer_with_a_tiny_buffer_gets_half_its_largest_window():
    k = Kernel()
    peer = ScriptedPeer(k)
    # A peer whose largest window is 1000 bytes: a short segment that is at least half of it
    # (500 bytes) goes at once (RFC 1122 4.2.3.4's Fs = 1/2); a smaller one waits.
    s, s_iss, sent = open_conn(k, peer, wnd=1000, payload=bytes(5000))
    assert [len(x.payload) for x in data_of(sent)] == [1000]
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1001, ACK, 500)
    assert [len(x.payload) for x in data_of(peer.run_to(k.now + 1 * MS))] == [500]
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1501, ACK, 499)
    assert peer.run_to(k.now + 1 * MS) == []


def test_the_tail_of_the_data_goes_at_once_and_nagle_holds_it_when_asked():
    for nodelay, held in ((True, False), (False, True)):
        k = Kernel()
        peer = ScriptedPeer(k, config=TcpConfig(nodelay=nodelay))
        s, s_iss, sent = open_conn(k, peer, wnd=8760, payload=bytes(1460))
        assert [len(x.payload) for x in data_of(sent)] == [1460]
        # A 100-byte write while 1460 bytes are unacknowledged: all the queued data, so it
        # goes unless Nagle's rule (nodelay=False) holds it for the ACK.
        k.spawn(s.write(bytes(100)))
        sent = peer.run_to(k.now + 1 * MS)
        assert [len(x.payload) for x in data_of(sent)] == ([] if held else [100])
        peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 1460, ACK, 8760)
        sent = peer.run_to(k.now + 1 * MS)
        assert [len(x.payload) for x in data_of(sent)] == ([100] if held else [])


# -- item 4: stuck connections are reclaimed --------------------------------------------------
def test_fin_wait_2_connection_is_closed_after_bsd_maxidle():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, sent = open_conn(k, peer, payload=b"bye", last=True)
    (fin,) = data_of(sent)
    assert fin.flags & FIN
    # The peer acknowledges the data and the FIN, and then never sends its own FIN.
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1 + 3 + 1, ACK, 8760)
    t0 = k.now
    peer.run_to(t0 + 1 * MS)
    assert s.state is TcpState.FinWait2
    # 4.4BSD: TCPT_2MSL = tcp_maxidle (8 * 75 s = 600 s); at expiry idle (600 s) <= maxidle,
    # so it waits tcp_keepintvl (75 s) more; then idle 675 s > 600 s: tcp_close.
    peer.run_to(t0 + 675 * S - 1 * MS)
    assert peer.stack.tcp.conns and s.state is TcpState.FinWait2
    sent = peer.run_to(t0 + 675 * S)
    assert not peer.stack.tcp.conns and s.state is TcpState.Closed
    assert s.events[-1] == ("closed", "timeout") and sent == []       # tcp_close: no RST
    assert peer.stack.tcp.stats.fin_wait_2_drops == 1


def test_fin_wait_2_idleness_restarts_with_each_segment_from_the_peer():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, _ = open_conn(k, peer, payload=b"bye", last=True)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 5, ACK, 8760)
    t0 = k.now
    # Data from the peer at 300 s: checks at 600 (idle 300), 675, 750, 825, 900 (idle 600)
    # s find it not idle long enough; at 975 s idle is 675 s.
    peer.run_to(t0 + 300 * S)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 5, ACK | PSH, 8760, b"late")
    peer.run_to(t0 + 975 * S - 1 * MS)
    assert s.state is TcpState.FinWait2 and bytes(s.got) == b"late"
    peer.run_to(t0 + 975 * S)
    assert s.state is TcpState.Closed and s.reason == "timeout"


def test_embryonic_connection_is_freed_after_keep_init():
    k = Kernel()
    peer = ScriptedPeer(k)
    srv = []
    peer.stack.listen(80, lambda: srv.append(Conn(peer.stack)) or srv[-1])
    peer.inject(CPORT, 80, C_ISS, 0, SYN, 8760, mss=1460)       # and never the ACK
    t0 = k.now
    sent = peer.run_to(t0 + 75 * S - 1 * MS)
    assert all(x.flags == SYN | ACK for _, x in sent) and len(sent) > 1      # retransmitted
    (s,) = srv
    assert s.state is TcpState.SynReceived and len(peer.stack.tcp.conns) == 1
    # TCPTV_KEEP_INIT: at 75 s the PCB is removed, its owner told, and (tcp_drop after a SYN
    # was received) a reset sent.
    sent = peer.run_to(t0 + 75 * S)
    assert not peer.stack.tcp.conns and s.events == [("closed", "timeout")]
    (_, rst), = sent
    assert rst.flags == RST | ACK and rst.ack == C_ISS + 1
    assert len(peer.stack.tcp.keep_init) == 0 and peer.stack.tcp.stats.keep_drops == 1
    # A connection that completes its handshake has no such timer (nor, without keepalive,
    # any other): idle for hours, it stays.
    s2, _, _ = open_conn(k, peer, cport=CPORT + 1)
    assert len(peer.stack.tcp.keep_init) == 0
    peer.run_to(k.now + 3 * 3600 * S)
    assert s2.state is TcpState.Established and s2.events == ["connected"]


def test_connect_to_a_silent_host_times_out_after_keep_init():
    k = Kernel()
    peer = ScriptedPeer(k)
    c = Conn(peer.stack)
    k.spawn(peer.stack.connect(c, "10.0.0.1", 80))
    peer.run_to(75 * S - 1 * MS)
    assert c.state is TcpState.SynSent
    sent = peer.run_to(75 * S)
    assert c.events == [("closed", "timeout")] and not peer.stack.tcp.conns
    assert sent == []                                # no reset from SYN-SENT


def test_keepalive_probes_an_idle_connection_and_drops_a_silent_peer():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, _ = open_conn(k, peer, keepalive=True)
    t0 = k.now
    assert peer.run_to(t0 + 2 * 3600 * S - 1 * MS) == []
    # TCPTV_KEEP_IDLE (2 h) after the last segment: probes every TCPTV_KEEPINTVL (75 s), each
    # with the old sequence number snd_una - 1; when idle reaches keepidle + maxidle
    # (2 h + 8 * 75 s) the eighth probe has gone unanswered and the connection is dropped.
    sent = peer.run_to(t0 + 2 * 3600 * S + 600 * S)
    probes = [(t, x) for t, x in sent if not x.flags & RST]
    assert [t - t0 for t, _ in probes] == [2 * 3600 * S + i * 75 * S for i in range(8)]
    assert all(x.seq == s_iss and x.flags == ACK and not x.payload for _, x in probes)
    (_, rst), = [(t, x) for t, x in sent if x.flags & RST]
    assert s.state is TcpState.Closed and s.reason == "timeout"


def test_keepalive_answered_keeps_the_connection():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, _ = open_conn(k, peer, keepalive=True)
    t0 = k.now
    (_, probe), = peer.run_to(t0 + 2 * 3600 * S)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1, ACK, 8760)     # the peer's ACK
    # The next probe comes 2 h after that answer.
    assert peer.run_to(k.now + 2 * 3600 * S - 1 * MS) == []
    assert len(peer.run_to(k.now + 1 * MS)) == 1
    assert s.state is TcpState.Established


# -- item 6: a bounded out-of-order queue -----------------------------------------------------
def test_overlapping_out_of_order_segments_hold_at_most_the_window():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, _ = open_conn(k, peer)
    stream = bytes((i * 7 + i // 251) & 0xFF for i in range(9000))
    # 2000 overlapping 1400-byte segments, all after a 1-byte hole at the start of the
    # window (each trimmed to the 8760-byte window).
    for i in range(2000):
        off = 1 + (i * 37) % 7400
        peer.inject(CPORT, 80, C_ISS + 1 + off, s_iss + 1, ACK, 8760, stream[off:off + 1400])
    peer.run_to(k.now + 1 * MS)
    assert s.got == b"" and peer.stack.tcp.stats.out_of_order == 2000
    assert len(s.ooo) < 20 and s.ooo_bytes <= s.rcv_wnd, (len(s.ooo), s.ooo_bytes)
    # The hole filled, the whole window is delivered once, in order, as the peer sent it.
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 1, ACK, 8760, stream[:1])
    peer.run_to(k.now + 1 * MS)
    assert bytes(s.got) == stream[:8760] and s.ooo == []


def test_reassembly_keeps_the_fin_and_trims_every_overlap():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, _ = open_conn(k, peer)
    data = bytes(range(100))
    ack = s_iss + 1
    for off, n, fl in ((50, 50, FIN), (10, 20, 0), (20, 40, 0), (5, 10, 0), (10, 20, 0)):
        peer.inject(CPORT, 80, C_ISS + 1 + off, ack, ACK | fl, 8760, data[off:off + n])
    peer.run_to(k.now + 1 * MS)
    # As tcp_reass: data queued before a new segment wins over its front ([20, 60) becomes
    # [30, 60)); queued data after it loses its own front ([50, 100) becomes [60, 100), FIN
    # kept; [10, 30) becomes [15, 30)), or is freed when covered (the second [10, 30) is
    # trimmed to [15, 30) and replaces the queued [15, 30)). [5, 100) and the FIN, no byte
    # twice:
    assert [(o - 1, len(p), f) for o, p, f in s.ooo] == [
        (5, 10, False), (15, 15, False), (30, 30, False), (60, 40, True)]
    assert s.ooo_bytes == 95
    peer.inject(CPORT, 80, C_ISS + 1, ack, ACK, 8760, data[:5])
    peer.run_to(k.now + 1 * MS)
    assert bytes(s.got) == data and "peer_closed" in s.events


# -- item 8: stray segments to a listening port -----------------------------------------------
def test_listener_drops_segments_without_ack_and_resets_an_ack():
    k = Kernel()
    peer = ScriptedPeer(k)
    peer.stack.listen(80, lambda: Conn(peer.stack))
    # RFC 793 p. 65-66, LISTEN: a FIN alone, or data with no flags, is dropped silently.
    peer.inject(CPORT, 80, 777, 0, FIN, 8760)
    peer.inject(CPORT + 1, 80, 777, 0, 0, 8760, b"hello")
    peer.inject(CPORT + 2, 80, 777, 0, RST, 8760)
    assert peer.run_to(1 * S) == []
    assert peer.stack.tcp.stats.listen_non_syn_drops == 2 and not peer.stack.tcp.conns
    # An ACK gets <SEQ=SEG.ACK><CTL=RST>.
    peer.inject(CPORT, 80, 777, 12345, ACK, 8760)
    (_, rst), = peer.run_to(2 * S)
    assert rst.flags == RST and rst.seq == 12345
    # A port with no listener still answers a FIN with RST|ACK (CLOSED state).
    peer.inject(CPORT, 81, 777, 0, FIN, 8760)
    (_, rst), = peer.run_to(3 * S)
    assert rst.flags == RST | ACK and rst.ack == 778


# -- item 4: an established connection that keeps retransmitting ------------------------------
def test_unacknowledged_data_is_retransmitted_12_times_then_the_connection_is_dropped():
    k = Kernel()
    peer = ScriptedPeer(k)
    s, s_iss, sent = open_conn(k, peer, payload=b"hello")
    t0 = k.now
    # RTT ~0: RTO = 1 s (RFC 6298's floor), doubled per timeout up to 64 s: resent at
    # 1, 3, 7, 15, 31, 63, 127, 191, ... s; the 13th timeout (t_rxtshift > TCP_MAXRXTSHIFT)
    # drops it with tcp_drop's RST|ACK.
    sent = peer.run_to(t0 + 600 * S)
    resent = [(t - t0, x) for t, x in sent if x.payload]
    assert len(resent) == 12 and all(x.payload == b"hello" for _, x in resent)
    assert [t for t, _ in resent[:7]] == [1 * S, 3 * S, 7 * S, 15 * S, 31 * S, 63 * S, 127 * S]
    (t_rst, rst), = [(t - t0, x) for t, x in sent if x.flags & RST]
    assert rst.flags == RST | ACK and rst.seq == s_iss + 1 + 5 and t_rst == resent[-1][0] + 64 * S
    assert s.reason == "timeout" and not peer.stack.tcp.conns


def test_ultrix_pcb_list_loses_embryonic_and_fin_wait_2_connections():
    from sw.ultrix.sockets import UltrixNetStack

    k = Kernel()
    peer = ScriptedPeer(k, stack_cls=UltrixNetStack)
    tcp = peer.stack.tcp
    # A SYN that is never completed: the embryonic PCB sits in 4.3BSD's PCB list (after the
    # listener) until the establishment timer frees it.
    peer.stack.listen(81, lambda: Conn(peer.stack))
    peer.inject(CPORT + 5, 81, C_ISS, 0, SYN, 4096, mss=1460)
    peer.run_to(k.now)
    assert tcp.pcb_count == 2
    # A connection whose peer never sends its FIN, in the same list.
    s, s_iss, _ = open_conn(k, peer, payload=b"bye", last=True)
    peer.inject(CPORT, 80, C_ISS + 1, s_iss + 5, ACK, 4096)
    t0 = k.now
    peer.run_to(t0 + 75 * S)
    assert tcp.pcb_count == 3 and s.state is TcpState.FinWait2     # 2 listeners, s
    peer.run_to(t0 + 675 * S)
    assert tcp.pcb_count == 2 and not tcp.conns and s.reason == "timeout"
