"""The Ultrix (4.3BSD) socket layer and TCP as ULTRIX 4.2's source has them: the active open,
the linear PCB lookup without a one-entry cache, delayed ACKs and Nagle."""
from __future__ import annotations

import pytest

from sim.cpu import CPU
from sim.kernel import Event, Kernel
from sim.media.ethernet import Segment
from sim.platforms import DECSTATION_5000_125_ULTRIX43
from sim.time import MS
from sw.host import Host
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net.ether import StationDevice
from sw.libos.net.ipv4 import addr
from sw.ultrix import UltrixMachine
from sw.ultrix.sockets import SocketError

A_MAC, B_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01"
A_IP, B_IP = "10.0.0.1", "10.0.0.2"


class Echo(TcpPcb):
    """A zero-cost peer that echoes what it receives and closes when the other side does."""

    def __init__(self, stack: NetStack):
        super().__init__()
        self.app = stack
        self.got = bytearray()
        self.sent = bytearray()

    async def on_readable(self, data):
        self.got += data
        self.sent += data
        await self.app.send(self, data)

    async def on_peer_closed(self):
        await self.app.close(self)

    def resupply(self, offset, length):
        return bytes(self.sent[offset:offset + length])


class Pair:
    """An Ultrix machine (A) and a zero-cost library stack (B) on one Ethernet segment."""

    def __init__(self, **machine_kw):
        self.k = k = Kernel()
        self.seg = Segment(k)
        self.peer = NetStack.on_segment(k, self.seg, "peer", B_MAC, B_IP)
        self.peer.add_arp(A_IP, A_MAC)
        dev = StationDevice(self.seg, "ultrix", A_MAC)
        self.cpu = CPU(k, DECSTATION_5000_125_ULTRIX43, name="ultrix")
        self.host = Host("ultrix", k, self.cpu, dev, addr(A_IP),
                         arp={addr(B_IP): bytes.fromhex(B_MAC.replace(":", ""))}, seed=3)
        self.m = UltrixMachine(self.host, **machine_kw)

    def run(self, body):
        """Run ``body(proc)`` as an Ultrix process; returns its result."""
        out = {}
        done = Event(self.k, "done")

        async def wrap(proc):
            try:
                out["r"] = await body(proc)
            except BaseException as e:          # noqa: BLE001 - handed to the test
                out["e"] = e
            done.set()

        self.m.uk.spawn(wrap, "test")

        async def waiter():
            await done

        t = self.k.spawn(waiter(), name="wait")
        self.k.run()
        assert t.done, "the process did not finish"
        if "e" in out:
            raise out["e"]
        return out["r"]


def test_connect_is_an_active_open_that_returns_a_connected_socket():
    p = Pair()
    p.peer.listen(7, lambda: Echo(p.peer))
    sl = p.m.sockets

    async def body(proc):
        so = await sl.connect(proc, B_IP, 7)
        assert so.connected and so.peer_name == (addr(B_IP), 7)
        await sl.write(proc, so, b"ping")
        data = await sl.read(proc, so, 100)
        await sl.close(proc, so)
        return data

    assert p.run(body) == b"ping"
    counts = p.m.uk.stats()["syscalls"]
    assert counts["socket"] == 1 and counts["connect"] == 1


def test_connect_to_a_closed_port_is_refused():
    p = Pair()
    sl = p.m.sockets

    async def body(proc):
        with pytest.raises(SocketError, match="ECONNREFUSED"):
            await sl.connect(proc, B_IP, 9)
        return sl.open_sockets

    assert p.run(body) == 0


def test_connect_checks_its_arguments():
    p = Pair()
    sl = p.m.sockets

    async def body(proc):
        with pytest.raises(ValueError, match="port"):
            await sl.connect(proc, B_IP, 0)
        with pytest.raises(ValueError):
            await sl.connect(proc, "10.0.0.999", 80)
        return True

    assert p.run(body)


def _walk_per_segment(n_time_wait: int) -> tuple[float, float, int]:
    """An old connection A, then ``n_time_wait`` connections closed by the Ultrix side (their
    PCBs stay in TIME_WAIT, newer than A); then 5 echoed bytes on A, one write at a time.
    Returns (PCB entries examined per segment received on A, DEMUX cycles per segment, the
    list's length)."""
    from sim.cpu import DEMUX
    p = Pair()
    p.peer.listen(7, lambda: Echo(p.peer))
    sl = p.m.sockets
    tcp = p.m.stack.tcp

    async def body(proc):
        a = await sl.connect(proc, B_IP, 7)
        for _ in range(n_time_wait):
            so = await sl.connect(proc, B_IP, 7)
            await sl.close(proc, so)
        await p.k.sleep(1 * MS)                  # let every close finish
        assert len(tcp.time_wait) == n_time_wait
        seg0, ex0 = tcp.stats.segments_in, tcp.stats.pcb_entries_examined
        d0 = p.cpu.breakdown()[DEMUX].cycles
        for _ in range(5):
            await sl.write(proc, a, b"x")
            assert await sl.read(proc, a, 10) == b"x"
        await p.k.sleep(1 * MS)
        segs = tcp.stats.segments_in - seg0
        return ((tcp.stats.pcb_entries_examined - ex0) / segs,
                (p.cpu.breakdown()[DEMUX].cycles - d0) / segs, tcp.pcb_count)

    return p.run(body)


@pytest.mark.parametrize("n", [0, 10, 40])
def test_every_segment_walks_the_time_wait_pcbs_with_no_cache(n):
    """ULTRIX 4.2 tcp_input calls in_pcblookup for every segment and keeps no last-PCB cache
    (VALIDATION.md K1, K2): a segment for the oldest connection walks the N newer TIME_WAIT
    PCBs every time, so it costs N + 1 times the per-entry walk."""
    per_entry = DECSTATION_5000_125_ULTRIX43.pcb_lookup_per_entry_cycles.value
    examined, demux, listed = _walk_per_segment(n)
    assert listed == n + 1
    assert examined == n + 1
    assert demux == pytest.approx((n + 1) * per_entry)


class Talker(TcpPcb):
    """A zero-cost peer that sends a few bytes as soon as it is connected and records when
    they are acknowledged."""

    def __init__(self, stack: NetStack):
        super().__init__()
        self.app = stack
        self.acked_at = None

    async def on_connected(self):
        self.sent_at = self.app.kernel.now
        await self.app.send(self, b"hi")

    def on_writable(self, acked):
        self.acked_at = self.app.kernel.now

    def resupply(self, offset, length):
        return b"hi"[offset:offset + length]


def test_ultrix_delays_the_ack_of_data_it_reads_until_the_fast_tick():
    """ULTRIX 4.2 tcp_input sets TF_DELACK for data; with nothing to send back and a read
    too small for a window update, the ACK goes at the next 200 ms tcp_fasttimo."""
    p = Pair()
    talkers = []
    p.peer.listen(7, lambda: talkers.append(Talker(p.peer)) or talkers[-1])
    sl = p.m.sockets

    async def body(proc):
        so = await sl.connect(proc, B_IP, 7)
        got = await sl.read(proc, so, 10)
        await p.k.sleep(500 * MS)                # sending nothing
        return got

    assert p.run(body) == b"hi"
    (t,) = talkers
    assert t.acked_at - t.sent_at > 10 * MS               # not at once
    assert t.acked_at % (200 * MS) < 2 * MS                # at a fast tick (+ the wire)
    assert p.m.stack.tcp.stats.delayed_acks == 1


def test_ipintr_takes_one_software_interrupt_per_batch_of_frames():
    """Frames queued together are drained by one ipintr run: one SOFTINT dispatch for the
    batch and the per-frame IF_DEQUEUE; a frame arriving alone takes its own dispatch. Each
    frame's mbufs are charged as MBUF."""
    from sim.cpu import MBUF, SOFTINT
    from sw.ultrix.sockets import MLEN
    p = Pair()
    st, c = p.m.stack, p.m.uk.costs
    frame = bytes(14) + bytes(100)            # a header and 100 bytes: one small mbuf

    def cycles(cat):
        bd = p.cpu.breakdown()
        return bd[cat].cycles if cat in bd else 0

    async def feed():
        st.input(frame)
        st.input(frame)
        st.input(frame)                       # three at once
        await p.k.sleep(1 * MS)
        st.input(frame)                       # then one alone
        await p.k.sleep(1 * MS)

    t = p.k.spawn(feed(), name="feed")
    p.k.run()
    assert t.done and 100 <= MLEN
    assert cycles(SOFTINT) == pytest.approx(2 * c.softint + 4 * c.softint_per_packet)
    assert cycles(MBUF) == pytest.approx(4 * c.mbuf)


class Sink(TcpPcb):
    """A zero-cost peer that takes what it receives and never answers with data."""

    def __init__(self):
        super().__init__()
        self.got = bytearray()

    def on_readable(self, data):
        self.got += data

    def resupply(self, offset, length):
        return b""


def test_ultrix_sockets_buffer_16k_as_ultrix_4_2_tcp_usrreq_sets():
    """ULTRIX 4.2 tcp_usrreq.c: tcp_sendspace = tcp_recvspace = 1024*16: the window offered in
    the handshake is 16384, and so_snd takes 16384 bytes of a larger write before it sleeps."""
    p = Pair()
    sinks = []
    p.peer.listen(7, lambda: sinks.append(Sink()) or sinks[-1])
    sl = p.m.sockets

    async def body(proc):
        so = await sl.connect(proc, B_IP, 7)
        n = await sl.write(proc, so, bytes(40000), nonblock=True)
        return n, len(so.snd)

    n, queued = p.run(body)
    assert (sl.sendspace, sl.recvspace) == (16384, 16384)
    assert n == 16384 and queued == 16384
    (s,) = sinks
    assert s.snd_wnd == 16384                         # the window offered: tcp_recvspace


def test_socket_space_is_each_machines_own_systems():
    from sim.platforms import DECSTATION_5000_125_ULTRIX43, CLIENT_PENTIUM100_OPENBSD
    from sim.platforms.clients import CLIENT_SPARCSTATION1_SUNOS41
    from sw.ultrix.sockets import socket_space
    assert socket_space(DECSTATION_5000_125_ULTRIX43) == 16 * 1024      # ULTRIX 4.2
    assert socket_space(CLIENT_PENTIUM100_OPENBSD) == 8 * 1024          # 4.4BSD-Lite
    assert socket_space(CLIENT_SPARCSTATION1_SUNOS41) == 4 * 1024       # SunOS 4.1 (4.3BSD)
    from sim.platforms import DECSTATION_5000_125_AEGIS as aegis
    with pytest.raises(ValueError, match="tcp_sendspace"):
        socket_space(aegis)
