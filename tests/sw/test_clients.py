"""The client machines: a real BSD kernel, TCP and Ethernet driver on each client (issue 14)."""
from __future__ import annotations

import pytest

from serveros.machines import build_client_machine, machine_mac, server_ip
from sim.kernel import Kernel
from sim.time import S
from sim.media.ethernet import Segment
from sw.clients.bsd import ClientOS, client_costs
from sw.clients.http import HttpClient
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net import ether, ipv4
from sw.libos.net.tcp import TcpConfig

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100


def _setup(kind: str = "pentium"):
    """A client of ``kind`` and a zero-cost server stack (no CPU) answering RESPONSE."""
    k = Kernel()
    seg = Segment(k, seed=2)
    c = build_client_machine(k, seg, 0, seed=5, kind=kind)
    srv = NetStack.on_segment(k, seg, "server", machine_mac(1), server_ip(), name="srv",
                              config=TcpConfig(nodelay=True))
    srv.add_arp(c.ip, c.netdev.mac)
    c.arp[server_ip()] = machine_mac(1)

    class Conn(TcpPcb):
        async def on_readable(self, data):
            await srv.send(self, RESPONSE, last=True)

        def resupply(self, offset, length):
            return RESPONSE[offset:offset + length]

    srv.listen(80, Conn)
    return k, c, srv


def _tcp_segments_from(frames, src_ip):
    """(flags, payload length) of every TCP segment ``src_ip`` sent, in order."""
    out = []
    for f in frames:
        _dst, _src, etype, payload = ether.parse(f)
        if etype != ether.ETHERTYPE_IP:
            continue
        hdr, data = ipv4.parse(payload)
        if hdr.src != src_ip or hdr.proto != ipv4.PROTO_TCP:
            continue
        off = (data[12] >> 4) * 4
        out.append((data[13], len(data) - off))
    return out


def _run(kind: str = "pentium", n: int = 3):
    """``n`` requests; returns the client and the frames its card sent."""
    k, c, srv = _setup(kind)
    sent: list[bytes] = []
    dev = c.netdev
    orig = dev.send

    async def spy(frame):
        sent.append(bytes(frame))
        await orig(frame)
    dev.send = spy
    cl = HttpClient(c, server_ip(), "/doc", n)
    k.spawn(cl.run())
    k.run()
    assert cl.stats.ok == n, cl.records
    return cl, sent


def test_the_client_pays_its_own_cpu_time():
    cl, _ = _run()
    s = cl.cpu_summary()
    assert s["client"] == "client-pentium100-openbsd"
    assert s["client_cpu_busy_fraction"] > 0.05
    cats = s["client_cpu_breakdown"]
    # system calls, context switches of its process, the socket layer, mbufs, TCP/IP and the
    # Ethernet driver's interrupts are all charged to the client's own CPU
    for cat in ("syscall", "socket", "protocol", "interrupt", "checksum"):
        assert cats.get(cat, 0) > 0, (cat, cats)
    assert cl.os.uk.syscall_counts["connect"] == 3
    assert cl.os.uk.syscall_counts["write"] == 3
    assert cl.os.uk.syscall_counts["close"] == 3


def test_no_request_on_the_handshake_ack():
    """BSD connect() returns after the handshake; write() follows: SYN, ACK, then the GET in
    a segment of its own (4.3BSD tcp_input sends the SYN-ACK's ACK at once, TF_ACKNOW)."""
    cl, sent = _run(n=1)
    segs = _tcp_segments_from(sent, cl.host.ip)
    syn, ack, get = segs[0], segs[1], segs[2]
    assert syn[0] & 0x02 and syn[1] == 0                       # SYN
    assert ack[0] & 0x10 and not ack[0] & 0x02 and ack[1] == 0  # pure ACK of the SYN-ACK
    assert get[1] == len(cl.request)                            # the request on its own


def test_sparc_client_is_slower_per_request_than_the_pentium():
    pc, _ = _run("pentium", 4)
    sp, _ = _run("sparc", 4)
    lat = [sum(r.end - r.start for r in c.records) / len(c.records) for c in (pc, sp)]
    busy = [sum(s.ps for cat, s in c.host.cpu.report().by_category.items() if cat != "idle")
            for c in (pc, sp)]
    assert sp.cpu_summary()["client"] == "client-sparcstation1-sunos41"
    assert lat[1] > 1.5 * lat[0]
    assert busy[1] > 3 * busy[0]


def test_client_costs_are_the_bsd_paths_at_the_client_cpi():
    from sim.platforms import PROFILES
    pc = client_costs(PROFILES["client-pentium100-openbsd"])
    sp = client_costs(PROFILES["client-sparcstation1-sunos41"])
    assert pc.socket_op < sp.socket_op                          # CPI 1.5 against 2.0
    assert pc.socket_op == pytest.approx(100 * 1.5, rel=0.01)   # about 100 instructions


def test_client_costs_keep_instruction_counts_unscaled():
    """read_block_instructions is run by cpu.path at the profile's own CPI: scaling it by the
    CPI ratio as well would count the CPI twice (and make an instruction count a float)."""
    from sim.platforms import PROFILES
    from sw.ultrix import UltrixCosts
    sp = client_costs(PROFILES["client-sparcstation1-sunos41"])
    assert sp.read_block_instructions == UltrixCosts().read_block_instructions
    assert isinstance(sp.read_block_instructions, int)


def test_a_server_profile_is_not_a_client():
    k = Kernel()
    c = build_client_machine(k, Segment(k, seed=1), 0)
    from sim.cpu import CPU
    from sim.platforms import PROFILES
    c.cpu = CPU(k, PROFILES["decstation-5000-125-ultrix43"], "x")
    with pytest.raises(ValueError, match="not a client machine"):
        ClientOS(c)
    with pytest.raises(ValueError, match="client kind"):
        build_client_machine(k, Segment(k, seed=1), 1, kind="vax")


# -- the client rows' benchmarks (serveros validate) ------------------------------------------
def test_client_benchmarks_run_real_processes_on_the_row_platform():
    from serveros.validation import clients as vc
    from serveros.validation.anchors import load_anchors
    from serveros.validation.registry import benchmarks
    from sim.platforms import PROFILES

    pc, sp = "client-pentium100-openbsd", "client-sparcstation1-sunos41"
    # a loop of null calls pays one kernel entry and exit per call, nothing else
    for p in (pc, sp):
        prof = PROFILES[p]
        assert vc.null_syscall(p) == pytest.approx(
            float(prof.syscall_cycles) * prof.cycle_ps / 1e6)
    # lmbench 1.x's null call, a one-byte write to /dev/null, pays the vnode layer's write
    # path to the device on top of the kernel entry
    from sw.clients.bsd import DEVNULL_WRITE_INSTRUCTIONS
    prof = PROFILES[pc]
    assert vc.devnull_write(pc) == pytest.approx(
        (float(prof.syscall_cycles) + prof.instructions(DEVNULL_WRITE_INSTRUCTIONS))
        * prof.cycle_ps / 1e6)
    # the loopback connect (three segments each way through TCP/IP, accept, close) costs
    # more than a one-word round trip, which costs more than two switches
    for p in (pc, sp):
        assert vc.tcp_connect(p) > vc.tcp_round_trip(p) > 2 * vc.context_switch(p) > 0
    assert vc.pipe_round_trip(sp) > 5 * vc.pipe_round_trip(pc)
    rows = load_anchors()
    got = {rid: benchmarks()[rid]({rid: rows[rid]}, 1)[rid]
           for rid in ("C1-1", "C1-2", "C1-3", "C1-4", "C4-1", "C4-2")}
    assert got["C4-1"] == pytest.approx(31, rel=0.25)      # Ousterhout Table 2
    assert got["C1-1"] == pytest.approx(7, rel=0.25)       # lmbench 1.x, FreeBSD 2.1
    assert got["C4-2"] == pytest.approx(1060, rel=0.25)    # Ousterhout Table 3
    assert all(v > 0 for v in got.values())
    with pytest.raises(ValueError, match="not a client platform"):
        vc.client_machine("decstation-5000-125-ultrix43")


def test_the_client_stack_charges_the_clients_own_bsd_costs():
    """The receive path's mbuf and software-interrupt costs are the client's (its CPI), not
    the R3000's defaults."""
    k = Kernel()
    c = build_client_machine(k, Segment(k, seed=1), 0)
    cos = ClientOS(c)
    assert cos.stack.ucosts == cos.uk.costs == client_costs(c.cpu.profile)
    k.run(until=1)                  # let the stack's tasks start


def test_a_timeout_in_connect_drops_only_that_process_connection():
    """Two clients on one machine connect to an address that never answers: the first one's
    watchdog (1 s) must drop its own opening connection only; the second keeps retransmitting
    its SYN until its own deadline (3 s)."""
    k, c, _srv = _setup()
    silent = "10.0.0.99"
    c.arp[silent] = machine_mac(7)                  # no station has this address
    first = HttpClient(c, silent, "/doc", 1, timeout_ps=1 * S)
    second = HttpClient(c, silent, "/doc", 1, timeout_ps=3 * S)
    k.spawn(first.run())
    k.spawn(second.run())
    k.run()
    r1, r2 = first.records[0], second.records[0]
    assert r1.error == "timeout" and r2.error == "timeout", (r1, r2)
    assert r2.end - r2.start >= 3 * S
