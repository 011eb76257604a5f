"""Aegis demultiplexes: on one Aegis machine Cheetah serves HTTP while a second application,
the UDP echo service (sw/apps/udp_echo.py), echoes datagrams from another host; the kernel owns
the card's receive path and each environment sees only its own frames. A filter that would
take an environment's frames is refused, naming the owner, and Cheetah keeps serving; frames no
environment owns go to the default binding, or are dropped and counted."""
from __future__ import annotations

import dpkt
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sim.cpu import CHECKSUM, PROTOCOL
from sim.time import MS, S
from sw.apps import UdpEcho
from sw.exokernel import FilterConflict, tcp_filter, udp_filter
from sw.libos.net import ether, ipv4, udp
from sw.libos.net.ether import StationDevice

from test_cheetah import (CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC, Client, Rig, documents,
                          get, make_disk, split)

ECHO_CLIENT_MAC, ECHO_CLIENT_IP = "02:00:00:00:03:01", "10.0.3.1"


class EchoClient:
    """Another host on the segment: sends UDP datagrams to the server, keeps the frames back."""

    def __init__(self, rig: Rig):
        self.k = rig.k
        self.dev = StationDevice(rig.seg, "echo-client", ECHO_CLIENT_MAC)
        self.got: list[bytes] = []
        self.dev.attach(self.got.append)
        self.ip = ipv4.addr(ECHO_CLIENT_IP)
        self.server_ip = ipv4.addr(SERVER_IP)

    def frame(self, payload: bytes, sport: int = 5000, dport: int = 7) -> bytes:
        d = udp.build(self.ip, self.server_ip, sport, dport, payload)
        ip = ipv4.build_header(self.ip, self.server_ip, ipv4.PROTO_UDP, len(d))
        return ether.build(ether.mac(SERVER_MAC), self.dev.mac, ether.ETHERTYPE_IP, ip + d)

    async def send(self, frames: list[bytes], gap: int = 1 * MS) -> None:
        for f in frames:
            await self.dev.send(f)
            await self.k.sleep(gap)

    def run(self, frames: list[bytes], wait: int = 1 * S) -> None:
        self.k.spawn(self.send(frames))
        self.k.run(until=self.k.now + wait)


def machine() -> tuple[Rig, UdpEcho, EchoClient]:
    """Cheetah on an Aegis machine (the OS bound the card), the echo service beside it, and
    a client host of each."""
    rig = Rig(aegis=True)
    echo = UdpEcho(rig.host)
    echo.start()
    assert echo.started
    return rig, echo, EchoClient(rig)


@pytest.fixture(scope="module")
def both():
    """Five HTTP requests and twelve datagrams (sizes 0..1400 bytes) at the same time."""
    rig, echo, ec = machine()
    payloads = [bytes((i * 31 + j) & 0xFF for j in range(n))
                for i, n in enumerate((0, 1, 7, 64, 100, 333, 512, 700, 1000, 1200, 1400, 18))]
    paths = ["/doc0", "/doc100", "/doc1024", "/doc10240", "/page.html"]
    http = [Client(rig.client, get(p)) for p in paths]
    cheetah_in = rig.server.stack.stats.frames_in
    rig.k.spawn(ec.send([ec.frame(p, sport=5000 + i) for i, p in enumerate(payloads)]))
    for c in http:
        rig.k.spawn(rig.client.connect(c, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + 2 * S)
    return rig, echo, ec, payloads, paths, http, cheetah_in


def test_cheetah_serves_while_the_echo_service_echoes(both):
    rig, echo, ec, payloads, paths, http, _ = both
    for p, c in zip(paths, http):
        assert split(c.got)[0] == "HTTP/1.0 200 OK" and split(c.got)[2] == rig.docs[p]
    assert len(ec.got) == len(payloads)
    for i, (raw, payload) in enumerate(zip(ec.got, payloads)):
        p = Ether(raw)                                       # scapy: fields and checksums
        assert p.src == SERVER_MAC and p.dst == ECHO_CLIENT_MAC
        assert p[IP].src == SERVER_IP and p[IP].dst == ECHO_CLIENT_IP
        assert (p[UDP].sport, p[UDP].dport) == (7, 5000 + i)
        ip_sum, udp_sum = p[IP].chksum, p[UDP].chksum
        del p[IP].chksum
        del p[UDP].chksum
        q = Ether(bytes(p))
        assert (q[IP].chksum, q[UDP].chksum) == (ip_sum, udp_sum)
        d = dpkt.ethernet.Ethernet(raw).data.data           # dpkt: the same datagram
        assert isinstance(d, dpkt.udp.UDP) and d.ulen == 8 + len(payload)
        assert bytes(d.data)[:len(payload)] == payload
    st = echo.stats()
    assert st["echoed"] == len(payloads) and st["bytes_echoed"] == sum(map(len, payloads))
    assert st["dropped"] == {}


def test_each_application_saw_only_its_own_frames(both):
    rig, echo, ec, payloads, _, _, cheetah_in = both
    a = rig.aegis.stats()
    envs = a["envs"]
    assert envs["server.udp-echo"]["frames_upcalled"] == echo.stats()["frames_in"] == len(payloads)
    assert envs["server.udp-echo"]["frames_sent"] == len(payloads)
    st = rig.server.stack.stats
    assert envs["server.cheetah"]["frames_upcalled"] == st.frames_in
    assert st.frames_in - cheetah_in > 5 * 4                # the five exchanges' segments
    assert st.ip_unknown_protocol == 0                      # not one UDP datagram reached it
    assert a["frames_received"] == st.frames_in + len(payloads)
    assert a["frames_dropped"] == a["delivery_faults"] == 0


def test_the_echo_service_is_charged_on_the_servers_cpu(both):
    rig, echo, ec, payloads, *_ = both
    rep = rig.cpu.report().by_category
    assert rep[PROTOCOL].cycles > 0 and rep[CHECKSUM].cycles > 0
    # one echo more, measured alone: IP processing in and out, four checksum calls
    before = {cat: (rep[cat].cycles if cat in rep else 0) for cat in (PROTOCOL, CHECKSUM)}
    ec.run([ec.frame(b"z" * 100, sport=6000)])
    rep = rig.cpu.report().by_category
    p = rig.cpu.profile
    assert rep[PROTOCOL].cycles - before[PROTOCOL] == 2 * p.cycles(p.ip_per_packet_cycles)
    assert rep[CHECKSUM].cycles - before[CHECKSUM] == \
        2 * (p.checksum_cycles(20) + p.checksum_cycles(108))


def test_a_filter_that_would_take_cheetahs_frames_is_refused_and_cheetah_keeps_serving():
    rig, echo, ec = machine()
    aegis, ip = rig.aegis, rig.host.ip
    thief = aegis.create_env("thief")
    for flt in (tcp_filter(80, local_ip=ip), tcp_filter(80),
                tcp_filter(80, local_ip=ip, remote_ip=ipv4.addr(CLIENT_IP), remote_port=1025)):
        with pytest.raises(FilterConflict, match=r"'thief' may not install .* owned by "
                                                 r"'server\.cheetah'"):
            aegis.install_filter(thief, flt)
    with pytest.raises(FilterConflict, match=r"owned by 'server\.udp-echo'"):
        aegis.install_filter(thief, udp_filter(7))
    assert thief.filters == set()

    class Echo2(UdpEcho):
        name = "echo2"
    second = Echo2(rig.host)                                 # a second service on port 7
    with pytest.raises(FilterConflict, match=r"'server\.echo2' may not install .* owned by "
                                             r"'server\.udp-echo'"):
        second.start()
    assert not second.started and "server.echo2" not in aegis.envs     # nothing left behind
    c = rig.fetch(get("/doc1024"))
    assert split(c.got)[2] == rig.docs["/doc1024"]
    assert thief.frames_upcalled == 0


def test_frames_nobody_owns_go_to_the_default_binding_or_are_dropped_and_counted():
    rig, echo, ec = machine()
    aegis, cheetah = rig.aegis, rig.server.env
    stack = rig.server.stack.stats
    assert aegis.default_env is cheetah                     # Cheetah's library OS took it
    discard = ec.frame(b"to port 9", dport=9)               # no environment owns UDP port 9
    ec.run([discard])
    assert stack.ip_unknown_protocol == 1 and aegis.frames_unclaimed == 1
    assert aegis.frames_dropped == 0 and echo.stats()["frames_in"] == 0
    aegis.release_default(cheetah)
    up = cheetah.frames_upcalled
    ec.run([discard, discard])
    assert aegis.frames_unclaimed == 3 and aegis.frames_dropped == 2
    assert cheetah.frames_upcalled == up and stack.ip_unknown_protocol == 1
    assert ec.got == []                                     # nobody answered


@pytest.mark.parametrize("mangle, reason", [
    (lambda f: f[:-1] + bytes([f[-1] ^ 0xFF]), "checksum"),            # UDP checksum
    (lambda f: f[:24] + bytes([f[24] ^ 1]) + f[25:], "checksum"),     # IP header checksum
    (lambda f: f[:38] + (200).to_bytes(2, "big") + f[40:], "length"),  # UDP length too long
])
def test_a_bad_datagram_is_counted_not_echoed_and_the_service_goes_on(mangle, reason):
    rig, echo, ec = machine()
    ec.run([mangle(ec.frame(b"bad datagram")), ec.frame(b"good one")])
    assert echo.stats()["dropped"] == {reason: 1} and echo.stats()["echoed"] == 1
    (back,) = ec.got
    assert Ether(back)[Raw].load == b"good one"
    assert rig.aegis.delivery_faults == 0


def test_datagrams_from_port_0_or_the_echo_port_are_not_answered():
    rig, echo, ec = machine()
    ec.run([ec.frame(b"no port", sport=0), ec.frame(b"loop", sport=7)])
    assert echo.stats()["dropped"] == {"loop": 1, "no_source_port": 1} and ec.got == []


def test_the_echo_service_needs_an_aegis_host():
    rig = Rig()
    with pytest.raises(ValueError, match="has no Aegis"):
        UdpEcho(rig.host)
    rig = Rig(aegis=True)
    with pytest.raises(ValueError, match="port must be 1..65535"):
        UdpEcho(rig.host, port=0)
    with pytest.raises(TypeError, match="needs a sw.host.Host"):
        UdpEcho("server")
    echo = UdpEcho(rig.host)
    echo.start()
    with pytest.raises(RuntimeError, match="already started"):
        echo.start()


def test_the_static_test_server_on_aegis_is_an_environment_too():
    from sim.cpu import CPU
    from sim.kernel import Kernel
    from sim.media.ethernet import Segment
    from sim.memory import Memory
    from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
    from sw.clients.testserver import StaticServer
    from sw.exokernel import Aegis
    from sw.host import Host
    from sw.libos.net import NetStack

    k = Kernel()
    seg = Segment(k, seed=1)
    cpu = CPU(k, AEGIS, "server-cpu")
    dev = StationDevice(seg, "server", SERVER_MAC)
    aegis = Aegis(Memory(k, 1 << 20, profile=AEGIS), cpu=cpu, name="server")
    aegis.bind_netdev(dev)                                   # the OS binds the card at boot
    disk = k.spawn(make_disk(documents()))
    k.run(until=1)
    host = Host("server", k, cpu, dev, ipv4.addr(SERVER_IP), blockdev=disk.result,
                arp={ipv4.addr(CLIENT_IP): ether.mac(CLIENT_MAC)}, extra={"aegis": aegis})
    server = StaticServer(host)
    k.spawn(server.start())
    client = NetStack.on_segment(k, seg, "client", CLIENT_MAC, CLIENT_IP, seed=2)
    client.add_arp(SERVER_IP, SERVER_MAC)
    c = Client(client, get("/doc1024"))
    k.spawn(client.connect(c, SERVER_IP, 80))
    k.run(until=k.now + 2 * S)
    assert split(c.got)[2] == documents()["/doc1024"] and server.served == 1
    env = aegis.envs["server.static"]
    assert aegis.frames_received == env.frames_upcalled == server.stack.stats.frames_in >= 3
    assert env.frames_sent == server.stack.stats.frames_out >= 3


def test_a_library_network_on_an_aegis_without_a_bound_card_is_refused_leaving_no_environment():
    from sim.kernel import Kernel
    from sim.memory import Memory
    from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
    from sw.exokernel import Aegis
    from sw.libos.net.aegis_env import AegisNetwork

    k = Kernel()
    aegis = Aegis(Memory(k, 1 << 20, profile=AEGIS), name="server")
    with pytest.raises(RuntimeError, match="no network interface bound"):
        AegisNetwork(aegis, "server.cheetah", ether.mac(SERVER_MAC))
    assert aegis.envs == {}
