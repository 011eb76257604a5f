"""The library OS's TCP over a real (simulated) Ethernet segment, captured and checked by
independent parsers: scapy for every checksum, tshark's expert analysis for malformed packets."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from sim.cpu import CHECKSUM, COPY, CPU, DEMUX, PROTOCOL
from sim.kernel import Kernel
from sim.media.pcap import PcapNgWriter, read_pcapng
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS
from sim.time import MS, S, US
from sw.libos.net import checksum as ck
from sw.libos.net.tcp import TcpConfig, TcpState, TimeWaitEntry

from libos_net_harness import IP_A, IP_B, Conn, segment_pair

REQUEST = b"GET /index.html HTTP/1.0\r\n\r\n"
RESPONSE = bytes((i * 7) & 0xFF for i in range(20_000))


def serve(k, a, b, *, response=RESPONSE, client_close_on_fin=True):
    """A one-request server on b:80 and a client on a; returns (client, servers)."""
    servers = []

    class Server(Conn):
        async def on_readable(self, data):
            super().on_readable(data)
            if bytes(self.got).endswith(b"\r\n\r\n"):
                await self.write(response, last=True)

    def factory():
        s = Server(b)
        servers.append(s)
        return s

    b.listen(80, factory)

    class Client(Conn):
        async def on_connected(self):
            super().on_connected()
            await self.write(REQUEST)

        async def on_peer_closed(self):
            super().on_peer_closed()
            if client_close_on_fin:
                await a.close(self)

    c = Client(a)
    k.spawn(a.connect(c, IP_B, 80))
    return c, servers


@pytest.fixture
def capture(tmp_path):
    path = tmp_path / "tcp.pcapng"
    k = Kernel()
    with PcapNgWriter(path) as w:
        seg, a, b = segment_pair(k, pcap=w)
        c, servers = serve(k, a, b)
        k.run(until=5 * S)
        # A ping and a reset on a closed port are in the capture too.
        ping = k.spawn(a.ping(IP_B))
        rst = Conn(a)
        k.spawn(a.connect(rst, IP_B, 81))
        k.run(until=6 * S)
    return path, k, a, b, c, servers, ping, rst


def test_handshake_data_both_ways_and_close(capture):
    _, k, a, b, c, servers, _, _ = capture
    (s,) = servers
    assert bytes(s.got) == REQUEST
    assert bytes(c.got) == RESPONSE
    assert c.events == ["connected", "peer_closed", ("closed", "closed")]
    assert s.events == ["connected", "peer_closed", ("closed", "closed")]
    assert c.state is TcpState.Closed and s.state is TcpState.Closed
    # The server closed first: it holds the TIME_WAIT entry, the client none.
    assert len(b.tcp.time_wait) == 1 and len(a.tcp.time_wait) == 0
    assert not a.tcp.conns and not b.tcp.conns
    assert c.bytes_acked == len(REQUEST) and s.bytes_acked == len(RESPONSE)
    # 20000 bytes do not fit the 8760-byte window: the rest was resupplied by the application.
    assert s.resupplied and sum(n for _, n in s.resupplied) == len(RESPONSE) - 8760
    assert s.rtt_samples > 0 and s.srtt is not None


def test_rst_on_closed_port_and_ping(capture):
    *_, ping, rst = capture
    assert rst.events == [("closed", "refused")]
    assert isinstance(ping.result, int) and 0 < ping.result < 1 * MS


def _packets(path):
    _, pkts = read_pcapng(path.read_bytes())
    return [Ether(p.data[:-4]) for p in pkts]


def test_every_frame_parses_with_correct_checksums(capture):
    path = capture[0]
    pkts = _packets(path)
    kinds = {"arp": 0, "tcp": 0, "icmp": 0}
    for p in pkts:
        if ARP in p:
            kinds["arp"] += 1
            continue
        assert IP in p, p.summary()
        ip = p[IP]
        want = ip.chksum
        del ip.chksum
        assert Ether(bytes(p))[IP].chksum == want, p.summary()
        p = Ether(bytes(p))                           # fresh parse for the next layer
        if TCP in p:
            kinds["tcp"] += 1
            want = p[TCP].chksum
            del p[TCP].chksum
            assert Ether(bytes(p))[TCP].chksum == want, p.summary()
        else:
            assert ICMP in p
            kinds["icmp"] += 1
            want = p[ICMP].chksum
            del p[ICMP].chksum
            assert Ether(bytes(p))[ICMP].chksum == want
    assert kinds["arp"] == 2 and kinds["icmp"] == 2 and kinds["tcp"] > 20
    # The handshake announces the MSS; every data segment fits it.
    syns = [p for p in pkts if TCP in p and p[TCP].flags.S]
    assert all(dict((o[0], o[1]) for o in p[TCP].options).get("MSS") == 1460 for p in syns)
    data_lens = [p[IP].len - 4 * p[IP].ihl - 4 * p[TCP].dataofs for p in pkts if TCP in p]
    assert max(data_lens) == 1460
    # A reset answered the connection attempt to the closed port 81.
    assert any(p[TCP].flags.R and p[TCP].sport == 81 for p in pkts if TCP in p)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_expert_reports_no_malformed_or_bad_checksum(capture):
    path = capture[0]
    res = subprocess.run(["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
                          "-o", "ip.check_checksum:TRUE", "-o", "eth.check_fcs:TRUE",
                          "-z", "expert", "-q"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Malformed" not in out, out
    assert "Bad checksum" not in out and "checksum" not in out.lower(), out
    assert "Errors" not in out, out


def test_fin_rides_on_the_last_data_segment(tmp_path):
    path = tmp_path / "fin.pcapng"
    k = Kernel()
    with PcapNgWriter(path) as w:
        seg, a, b = segment_pair(k, pcap=w)
        c, servers = serve(k, a, b, response=b"<html>small</html>")
        k.run(until=5 * S)
    assert bytes(c.got) == b"<html>small</html>"
    from_b = [p for p in _packets(path) if TCP in p and p[IP].src == IP_B]
    data = [p for p in from_b if len(p[TCP].payload) and Raw in p]
    assert len(data) == 1
    assert data[0][TCP].flags.F and data[0][TCP].flags.A and data[0][TCP].flags.P
    # SYN-ACK, the data+FIN segment, and at most the ACK of the client's FIN: no extra FIN.
    assert sum(1 for p in from_b if p[TCP].flags.F) == 1
    assert len(from_b) == 3


def test_time_wait_entries_are_compact_and_expire():
    k = Kernel()
    cfg = TcpConfig(msl_ps=2 * S)
    seg, a, b = segment_pair(k, config=cfg)
    c, servers = serve(k, a, b, response=b"x" * 100)
    k.run(until=1 * S)
    tw = b.tcp.time_wait
    assert len(tw) == 1 and servers[0].state is TcpState.Closed
    (key, entry), = tw.entries().items()
    assert key == (80, bytes([10, 0, 0, 1]), c.local_port)
    assert isinstance(entry, TimeWaitEntry) and not hasattr(entry, "__dict__")
    assert TimeWaitEntry.__slots__ == ("snd_nxt", "rcv_nxt", "expires")
    assert all(isinstance(getattr(entry, s), int) for s in TimeWaitEntry.__slots__)
    assert entry.expires <= 1 * S + 4 * S
    k.run(until=3 * S)
    assert len(tw) == 1                       # 2 MSL = 4 s not over yet
    k.run(until=6 * S)
    assert len(tw) == 0 and tw.expired == 1


def test_time_wait_reacknowledges_a_retransmitted_fin():
    k = Kernel()
    seg, a, b = segment_pair(k)
    c, servers = serve(k, a, b, response=b"x" * 10)
    k.run(until=1 * S)
    (key, entry), = b.tcp.time_wait.entries().items()
    # Replay the client's FIN: the TIME_WAIT entry answers it with an ACK (no PCB needed).
    from sw.libos.net.tcp import ACK, FIN, build_segment
    seg_fin, _ = build_segment(a.ip, b.ip, c.local_port, 80, entry.rcv_nxt - 1, entry.snd_nxt,
                               FIN | ACK, 8760)
    before, exp0 = b.tcp.stats.segments_out, entry.expires
    k.spawn(a.ip_output(b.ip, 6, seg_fin))
    k.run(until=2 * S)
    # Hits: the FIN, then the reset the client (which has no connection any more) sends for
    # the ACK; the reset is ignored (RFC 1337) and the entry stays, restarted by the FIN.
    assert b.tcp.stats.time_wait_hits == 2
    assert b.tcp.stats.segments_out == before + 1
    assert a.tcp.stats.resets_sent == 1
    (key2, entry2), = b.tcp.time_wait.entries().items()
    assert key2 == key and entry2.expires > exp0


def test_simultaneous_open_and_close():
    k = Kernel()
    seg, a, b = segment_pair(k)
    a.add_arp(IP_B, "02:00:00:00:00:0b")
    b.add_arp(IP_A, "02:00:00:00:00:0a")
    ca, cb = Conn(a), Conn(b)

    async def both():
        k.spawn(a.connect(ca, IP_B, 5000, local_port=6000))
        k.spawn(b.connect(cb, IP_A, 6000, local_port=5000))

    k.spawn(both())
    k.run(until=1 * S)
    assert ca.state is TcpState.Established and cb.state is TcpState.Established
    assert ca.events == ["connected"] and cb.events == ["connected"]
    # Both send their last data at once: FINs cross, both go through CLOSING to TIME_WAIT.
    k.spawn(ca.write(b"from a", last=True))
    k.spawn(cb.write(b"from b", last=True))
    k.run(until=2 * S)
    assert bytes(ca.got) == b"from b" and bytes(cb.got) == b"from a"
    assert ca.reason == "closed" and cb.reason == "closed"
    assert len(a.tcp.time_wait) == 1 and len(b.tcp.time_wait) == 1


def test_precomputed_checksums_and_scatter_gather(tmp_path):
    path = tmp_path / "sg.pcapng"
    k = Kernel()
    head = b"HTTP/1.0 200 OK\r\n\r\n"              # 19 bytes: the body starts at an odd offset
    body = bytes(range(256)) * 4 + b"!"
    with PcapNgWriter(path) as w:
        seg, a, b = segment_pair(k, pcap=w)
        srv = []

        class Server(Conn):
            async def on_connected(self):
                super().on_connected()
                self.stream += head + body
                await b.send(self, [head, body], csum=[None, ck.ones_sum(body)], last=True)

        b.listen(80, lambda: srv.append(Server(b)) or srv[-1])
        c = Conn(a)
        k.spawn(a.connect(c, IP_B, 80))
        k.run(until=1 * S)
    assert bytes(c.got) == head + body
    assert b.tcp.stats.checksum_bytes_saved == len(body)
    for p in _packets(path):
        if TCP in p:
            want = p[TCP].chksum
            del p[TCP].chksum
            assert Ether(bytes(p))[TCP].chksum == want


def test_cpu_is_charged_by_category_and_no_cpu_means_zero_time():
    k = Kernel()
    prof = DECSTATION_5000_125_AEGIS
    ca, cb = CPU(k, prof, "cpu-a"), CPU(k, prof, "cpu-b")
    seg, a, b = segment_pair(k, cpu_a=ca, cpu_b=cb)
    c, servers = serve(k, a, b)
    k.run(until=5 * S)
    assert bytes(c.got) == RESPONSE
    rep = cb.report().by_category
    for cat in (PROTOCOL, CHECKSUM, DEMUX):
        assert rep[cat].cycles > 0, cat
    # The server received one request: copy charged on receive only (send is gather, no copy).
    rep_a = ca.report().by_category
    assert rep_a[COPY].cycles >= prof.copy_cycles(len(RESPONSE)) - 1
    # Per packet: every TCP segment in or out pays the TCP common path.
    n = b.tcp.stats.segments_in + b.tcp.stats.segments_out
    assert rep[PROTOCOL].cycles >= n * float(prof.tcp_per_packet_cycles)


def test_bad_arguments_raise_clear_errors():
    k = Kernel()
    seg, a, b = segment_pair(k)
    with pytest.raises(ValueError, match="port"):
        a.listen(0, Conn)
    with pytest.raises(TypeError, match="factory"):
        a.listen(80, 42)
    with pytest.raises(ValueError, match="rcv_wnd"):
        Conn(rcv_wnd=70000)
    with pytest.raises(ValueError, match="pcb_lookup"):
        TcpConfig(pcb_lookup="tree")
    c = Conn(a)

    async def bad_send():
        with pytest.raises(ValueError, match="cannot send"):
            await a.send(c, b"x")
        with pytest.raises(TypeError, match="TcpPcb"):
            await a.send(object(), b"x")
        with pytest.raises(ValueError, match="not an IPv4"):
            await a.connect(c, "10.0.0", 80)
    t = k.spawn(bad_send())
    k.run(until=1 * US)
    assert t.done and t.exception is None


def test_abort_resets_the_peer():
    k = Kernel()
    seg, a, b = segment_pair(k)
    srv = []
    b.listen(80, lambda: srv.append(Conn(b)) or srv[-1])
    c = Conn(a)
    k.spawn(a.connect(c, IP_B, 80))
    k.run(until=1 * S)
    assert srv[0].state is TcpState.Established
    k.spawn(a.abort(c))
    k.run(until=2 * S)
    assert c.reason == "aborted" and srv[0].reason == "reset"
    assert not a.tcp.conns and not b.tcp.conns


@pytest.mark.parametrize("lookup", ["hash", "linear"])
def test_pcb_lookup_charges_entries_examined(lookup):
    k = Kernel()
    cb = CPU(k, DECSTATION_5000_125_AEGIS, "cpu-b")
    seg, a, b = segment_pair(k, cpu_b=cb, config=TcpConfig(pcb_lookup=lookup))
    srv = []
    b.listen(80, lambda: srv.append(Conn(b)) or srv[-1])
    conns = [Conn(a) for _ in range(8)]
    for c in conns:
        k.spawn(a.connect(c, IP_B, 80))
    k.run(until=1 * S)
    assert all(s.state is TcpState.Established for s in srv) and len(srv) == 8
    before = b.tcp.stats.pcb_entries_examined
    k.spawn(conns[-1].write(b"x"))          # the newest connection is last in the table
    k.run(until=2 * S)
    examined = b.tcp.stats.pcb_entries_examined - before
    assert examined == (8 if lookup == "linear" else 1)
    assert cb.report().by_category[DEMUX].cycles > 0


def test_precomputed_sum_of_data_larger_than_a_segment_is_not_misused():
    k = Kernel()
    seg, a, b = segment_pair(k)
    body = bytes((i * 5 + 3) & 0xFF for i in range(5001))
    srv = []

    class Server(Conn):
        async def on_connected(self):
            super().on_connected()
            self.stream += body
            # The sum covers all 5001 bytes: no single segment covers them, so it cannot be
            # used and every segment is summed by the CPU.
            await b.send(self, body, csum=ck.ones_sum(body), last=True)

    b.listen(80, lambda: srv.append(Server(b)) or srv[-1])
    c = Conn(a)
    k.spawn(a.connect(c, IP_B, 80))
    k.run(until=2 * S)
    assert bytes(c.got) == body and c.events == ["connected", "peer_closed"]
    assert b.tcp.stats.checksum_bytes_saved == 0 and a.tcp.stats.bad_checksum == 0


def test_a_wrong_precomputed_sum_is_trusted_and_the_receiver_drops_the_segment():
    k = Kernel()
    seg, a, b = segment_pair(k, config=TcpConfig(max_retransmits=2, initial_rto_ps=100 * MS,
                                                 min_rto_ps=100 * MS))
    srv = []

    class Server(Conn):
        async def on_connected(self):
            super().on_connected()
            self.stream += b"hello"
            await b.send(self, b"hello", csum=0x1234, last=True)

        def resupply(self, offset, length):
            return (b"hello"[offset:offset + length], 0x1234)    # wrong again

    b.listen(80, lambda: srv.append(Server(b)) or srv[-1])
    c = Conn(a)
    k.spawn(a.connect(c, IP_B, 80))
    k.run(until=5 * S)
    assert c.got == b"" and a.tcp.stats.bad_checksum == 3      # first send + 2 retransmits
    assert srv[0].reason == "timeout"
