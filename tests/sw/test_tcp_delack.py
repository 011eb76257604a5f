"""4.3BSD delayed ACKs (TF_DELACK, tcp_fasttimo every 200 ms) and Nagle's rule, as ULTRIX 4.2's
tcp_input.c and tcp_output.c have them; off by default (the library OS under Cheetah keeps
acknowledging at once)."""
from __future__ import annotations

import pytest

from sim.kernel import Kernel
from sim.time import MS, S
from sw.libos.net.tcp import ACK, FIN, TcpConfig

from libos_net_harness import IP_B, Conn, segment_pair

TICK = 200 * MS


def spy(stack, log: list, who: str) -> None:
    """Record (time, sender, flags, payload length) of every segment ``stack`` receives."""
    orig = stack.tcp.input

    async def seen(src, dst, data):
        hl = (data[12] >> 4) * 4
        log.append((stack.kernel.now, who, data[13], len(data) - hl))
        await orig(src, dst, data)

    stack.tcp.input = seen


def pair(delayed: bool, nodelay: bool = True):
    k = Kernel()
    cfg = TcpConfig(delayed_ack=delayed, nodelay=nodelay)
    _, a, b = segment_pair(k, config=cfg)
    log: list = []
    spy(a, log, "b")        # what b sent, as a receives it
    spy(b, log, "a")
    return k, a, b, log


def connect(k, a, b, server_cls=Conn):
    servers = []

    def factory():
        s = server_cls(b)
        servers.append(s)
        return s

    b.listen(80, factory)
    c = Conn(a)
    k.spawn(a.connect(c, IP_B, 80))
    k.run(until=50 * MS)
    assert c.events == ["connected"]
    return c, servers[0]


def pure_acks(log, who):
    return [(t, f) for t, w, f, n in log if w == who and n == 0 and f == ACK]


def test_delayed_ack_waits_for_the_next_fast_tick():
    k, a, b, log = pair(delayed=True)
    c, s = connect(k, a, b)
    before = len(pure_acks(log, "b"))
    k.spawn(c.write(b"hello"))
    k.run(until=1 * S)
    assert bytes(s.got) == b"hello"
    acks = pure_acks(log, "b")[before:]
    assert len(acks) == 1                       # one ACK, at a 200 ms tick, not at once
    t_ack = acks[0][0]
    t_data = next(t for t, w, f, n in log if w == "a" and n == 5)
    assert t_ack > t_data + 10 * MS
    assert t_ack - t_data <= TICK + 5 * MS
    assert t_ack % TICK < 5 * MS                # sent on the tick (plus the wire)
    assert b.tcp.stats.delayed_acks == 1


def test_without_delayed_ack_the_data_is_acknowledged_at_once():
    k, a, b, log = pair(delayed=False)
    c, s = connect(k, a, b)
    before = len(pure_acks(log, "b"))
    k.spawn(c.write(b"hello"))
    k.run(until=1 * S)
    (t_ack, _), = pure_acks(log, "b")[before:]
    t_data = next(t for t, w, f, n in log if w == "a" and n == 5)
    assert t_ack - t_data < 1 * MS
    assert b.tcp.stats.delayed_acks == 0


def test_a_reply_carries_the_delayed_ack():
    class Reply(Conn):
        async def on_readable(self, data):
            super().on_readable(data)
            await self.write(b"world")

    k, a, b, log = pair(delayed=True)
    c, s = connect(k, a, b, Reply)
    before = len(pure_acks(log, "b"))
    k.spawn(c.write(b"hello"))
    k.run(until=1 * S)
    assert bytes(c.got) == b"world"
    assert pure_acks(log, "b")[before:] == []   # the ACK rode on the reply
    assert b.tcp.stats.delayed_acks == 0


def test_a_fin_is_acknowledged_at_once():
    k, a, b, log = pair(delayed=True)
    c, s = connect(k, a, b)
    before = len(pure_acks(log, "b"))
    k.spawn(a.close(c))
    k.run(until=1 * S)
    t_fin = next(t for t, w, f, n in log if w == "a" and f & FIN)
    (t_ack, _), = pure_acks(log, "b")[before:]
    assert t_ack - t_fin < 1 * MS


def test_reading_two_segments_sends_the_window_update_at_once():
    """tcp_output after PRU_RCVD: the buffer emptied and the window opens by two segments."""
    k, a, b, log = pair(delayed=True)
    c, s = connect(k, a, b)
    t_w = k.now
    k.spawn(c.write(bytes(2 * 1460)))
    k.run(until=t_w + 20 * MS)
    assert len(s.got) == 2 * 1460
    assert [t for t, _ in pure_acks(log, "b") if t >= t_w] == []   # not yet acknowledged
    t0 = k.now
    k.spawn(b.tcp.received(s, 0))
    k.run(until=t0 + 5 * MS)
    acks = [t for t, f in pure_acks(log, "b") if t >= t0]
    assert len(acks) == 1 and acks[0] - t0 < 2 * MS
    # one segment read leaves less than 2 MSS and 35 % of the window: no update
    k2, a2, b2, log2 = pair(delayed=True)
    c2, s2 = connect(k2, a2, b2)
    k2.spawn(c2.write(bytes(1000)))
    k2.run(until=k2.now + 20 * MS)
    t0 = k2.now
    k2.spawn(b2.tcp.received(s2, 0))
    k2.run(until=t0 + 5 * MS)
    assert [t for t, f in pure_acks(log2, "b") if t >= t0] == []


def test_nagle_holds_a_small_segment_until_the_ack():
    """Without TCP_NODELAY (Ultrix), a short write waits while data is unacknowledged; with
    a delayed-ACK receiver that is until the peer's fast tick."""
    k, a, b, log = pair(delayed=True, nodelay=False)
    c, s = connect(k, a, b)

    async def two_writes():
        await c.write(b"header")
        await c.write(b"body")

    k.spawn(two_writes())
    k.run(until=1 * S)
    assert bytes(s.got) == b"headerbody"
    sent = [(t, n) for t, w, f, n in log if w == "a" and n]
    assert [n for _, n in sent] == [6, 4]
    assert sent[1][0] - sent[0][0] > 10 * MS     # the second waited for the delayed ACK


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_delack_tick_is_checked(bad):
    with pytest.raises(ValueError, match="delack_tick_ps"):
        TcpConfig(delack_tick_ps=bad)


def test_close_sends_the_data_held_by_nagle_with_the_fin_at_once():
    """ULTRIX 4.2 tcp_output.c checks "If our state indicates that FIN should be sent and we
    have not yet done so ... goto send" before its Nagle test: a short write held while the
    first is unacknowledged goes out with the FIN as soon as the application closes, without
    waiting for the delayed-ACK peer's fast tick."""
    k, a, b, log = pair(delayed=True, nodelay=False)
    c, s = connect(k, a, b)

    async def two_writes_and_close():
        await c.write(b"header")
        await c.write(b"body")
        await a.close(c)

    t0 = k.now
    k.spawn(two_writes_and_close())
    k.run(until=t0 + 1 * S)
    assert bytes(s.got) == b"headerbody"
    sent = [(t, f, n) for t, w, f, n in log if w == "a" and (n or f & FIN)]
    assert [n for _, _, n in sent] == [6, 4]
    assert sent[1][1] & FIN                        # the body carries the FIN
    assert sent[1][0] - sent[0][0] < 5 * MS        # and did not wait for the header's ACK
    assert not [t for t, f in pure_acks(log, "b") if t < sent[1][0] and t > t0]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0"])
def test_received_rejects_a_nonsense_unread_count(bad):
    """PRU_RCVD's count of bytes left in the buffer is a non-negative int; anything else is
    named in the error (and the connection goes on)."""
    k, a, b, log = pair(delayed=True)
    c, s = connect(k, a, b)
    k.spawn(c.write(bytes(1000)))
    k.run(until=k.now + 20 * MS)
    call = b.tcp.received(s, bad)
    with pytest.raises(ValueError, match="unread"):
        call.send(None)
    call.close()
    k.run(until=k.now + 1 * S)               # the delayed ACK still goes at the fast tick
    assert s.state.name == "Established" and len(pure_acks(log, "b")) >= 1
