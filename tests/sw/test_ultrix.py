"""The Ultrix 4.3 model with NCSA httpd and the Harvest accelerator, served over a simulated
Ethernet to a zero-cost client stack."""
from __future__ import annotations

import json

import pytest

from sim.cpu import CHECKSUM, CONTEXT_SWITCH, COPY, CPU, DEMUX, MBUF, SOCKET, SOFTINT, SYSCALL
from sim.kernel import Event, Kernel
from sim.media.ethernet import Segment
from sim.platforms import DECSTATION_5000_125_ULTRIX43
from sim.time import MS, S
from sw.host import HTTP_PORT, Host
from sw.libos.fs import FileSystem, mkfs
from sw.libos.fs.device import MemoryBlockDevice
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net.ether import StationDevice
from sw.libos.net.ipv4 import addr
from sw.ultrix import NcsaOptions, NcsaServer, make_harvest, make_ncsa
from sw.ultrix.ncsa import parse_request, request_complete
from sw.ultrix.sockets import UltrixTcp

SERVER_MAC, CLIENT_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01"
SERVER_IP, CLIENT_IP = "10.0.0.1", "10.0.0.2"
SIZES = (0, 1, 10, 100, 1024, 1460, 1461, 4096, 4097, 10240)


def content(n: int) -> bytes:
    """Deterministic document bytes (not periodic in 256, so misplaced bytes show)."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


class HttpConn(TcpPcb):
    """A one-request HTTP/1.0 client connection (zero CPU cost: the client's stack has none)."""

    def __init__(self, kernel: Kernel, stack: NetStack, request: bytes):
        super().__init__()
        self.app = stack
        self.request = request
        self.response = bytearray()
        self.reason = None
        self.done = Event(kernel, "http-done")

    async def on_connected(self):
        await self.app.send(self, self.request)

    def on_readable(self, data):
        self.response += data

    async def on_peer_closed(self):
        await self.app.close(self)

    def on_closed(self, reason):
        self.reason = reason
        self.done.set()

    def resupply(self, offset, length):
        return self.request[offset:offset + length]


class World:
    """A server Host (Ultrix CPU, StationDevice, memory disk with the documents) and a client
    stack on one Segment."""

    def __init__(self, sizes=SIZES):
        self.k = k = Kernel()
        self.seg = Segment(k)
        self.client = NetStack.on_segment(k, self.seg, "client", CLIENT_MAC, CLIENT_IP)
        self.client.add_arp(SERVER_IP, SERVER_MAC)
        dev = StationDevice(self.seg, "server", SERVER_MAC)
        self.cpu = CPU(k, DECSTATION_5000_125_ULTRIX43, name="server")
        self.disk = MemoryBlockDevice(8192, 512)
        self.docs = {f"/doc{n}": content(n) for n in sizes}
        self._run(self._populate())
        self.host = Host("server", k, self.cpu, dev, addr(SERVER_IP), blockdev=self.disk,
                         arp={addr(CLIENT_IP): bytes.fromhex(CLIENT_MAC.replace(":", ""))},
                         seed=7)

    async def _populate(self):
        await mkfs(self.disk, block_size=4096, extra_size=256)
        fs = await FileSystem.mount(self.disk, cache_blocks=32)
        for path, data in self.docs.items():
            await fs.create(path)
            if data:
                await fs.write(path, data)
        await fs.sync()

    def _run(self, coro):
        t = self.k.spawn(coro, name="test")
        # The servers' processes are daemons: the run ends when the scenario does (or when
        # nothing is left to happen, which the assertion reports).
        self.k.run()
        assert t.done, "the scenario did not finish"
        return t.result

    def run(self, coro):
        return self._run(coro)

    async def fetch(self, request: bytes) -> bytes:
        c = HttpConn(self.k, self.client, request)
        await self.client.connect(c, SERVER_IP, HTTP_PORT)
        await c.done
        assert c.reason == "closed", c.reason
        return bytes(c.response)


def split(resp: bytes) -> tuple[int, dict, bytes]:
    head, sep, body = resp.partition(b"\r\n\r\n")
    assert sep, resp[:200]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for ln in lines[1:]:
        name, _, value = ln.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, body


def make(world: World, kind: str):
    return make_ncsa(world.host) if kind == "ncsa" else make_harvest(world.host)


# -- request parsing ----------------------------------------------------------------------------
def test_parse_request():
    assert parse_request(b"GET /doc10 HTTP/1.0\r\n\r\n").status == 0
    assert parse_request(b"GET /doc10\r\n").version is None
    assert parse_request(b"HEAD /x HTTP/1.0\r\n\r\n").method == "HEAD"
    assert parse_request(b"GARBAGE\r\n\r\n").status == 400
    assert parse_request(b"GET nope HTTP/1.0\r\n\r\n").status == 400
    assert parse_request(b"GET /a FTP/1.0\r\n\r\n").status == 400
    assert parse_request(b"POST /a HTTP/1.0\r\n\r\n").status == 501
    assert parse_request(b"GET /../etc HTTP/1.0\r\n\r\n").status == 403
    assert request_complete(b"GET / HTTP/1.0\r\nA: b\r\n\r\n")
    assert not request_complete(b"GET / HTTP/1.0\r\nA: b\r\n")
    assert request_complete(b"GET /\r\n")


def test_options_are_checked():
    w = World(sizes=(0,))
    with pytest.raises(TypeError, match="bogus"):
        make_ncsa(w.host, bogus=1)
    with pytest.raises(ValueError, match="start_servers"):
        NcsaOptions(start_servers=0)
    with pytest.raises(ValueError, match="max_servers"):
        NcsaOptions(start_servers=6, max_servers=5)
    with pytest.raises(TypeError):
        NcsaServer(object())


# -- serving ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ncsa", "harvest"])
def test_get_bodies_are_byte_identical(kind):
    w = World()
    server = make(w, kind)

    async def scenario():
        await server.start()
        out = {}
        for path in w.docs:
            out[path] = await w.fetch(f"GET {path} HTTP/1.0\r\nUser-Agent: t\r\n\r\n".encode())
        # a second round: Harvest serves these from its cache
        for path in w.docs:
            out[path + "#2"] = await w.fetch(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        return out

    out = w.run(scenario())
    for path, data in w.docs.items():
        for key in (path, path + "#2"):
            status, fields, body = split(out[key])
            assert status == 200
            assert fields["content-length"] == str(len(data))
            assert fields["content-type"] == "text/html"
            assert fields["server"] == "NCSA/1.4.2"
            assert body == data, (key, len(body), len(data))
    st = server.stats()
    assert json.loads(json.dumps(st))["server"] == kind    # JSON-serialisable
    if kind == "harvest":
        assert st["hits"] == len(w.docs) and st["misses"] == len(w.docs)
        assert st["backend"]["requests"] == len(w.docs)
    else:
        assert st["requests"] == 2 * len(w.docs)
        assert st["by_status"] == {200: 2 * len(w.docs)}
        assert st["body_bytes"] == 2 * sum(len(d) for d in w.docs.values())


@pytest.mark.parametrize("kind", ["ncsa", "harvest"])
def test_head_missing_malformed_then_still_serving(kind):
    w = World(sizes=(100,))
    server = make(w, kind)

    async def scenario():
        await server.start()
        r = [await w.fetch(b"HEAD /doc100 HTTP/1.0\r\n\r\n"),
             await w.fetch(b"GET /nosuchfile HTTP/1.0\r\n\r\n"),
             await w.fetch(b"GARBAGE\r\n\r\n"),
             await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n"),
             await w.fetch(b"GET /doc100\r\n")]            # HTTP/0.9: no header
        return r

    head, missing, bad, good, simple = w.run(scenario())
    status, fields, body = split(head)
    assert status == 200 and fields["content-length"] == "100" and body == b""
    status, _, body = split(missing)
    assert status == 404 and b"404 Not Found" in body and b"/nosuchfile" in body
    status, _, body = split(bad)
    assert status == 400 and b"400 Bad Request" in body
    status, _, body = split(good)
    assert status == 200 and body == w.docs["/doc100"]
    assert simple == w.docs["/doc100"]


def test_harvest_hits_do_not_touch_the_file_system():
    w = World(sizes=(1024,))
    server = make_harvest(w.host)
    marks = {}

    async def scenario():
        await server.start()
        first = await w.fetch(b"GET /doc1024 HTTP/1.0\r\n\r\n")
        uk = server.uk
        marks["fs_calls"] = sum(uk.syscall_counts.get(c, 0) for c in ("open", "stat"))
        marks["backend"] = server.backend.stats()["requests"]
        marks["fs_reads"] = server.machine.fs.cache.stats.hits if hasattr(
            server.machine.fs.cache, "stats") else None
        second = await w.fetch(b"GET /doc1024 HTTP/1.0\r\n\r\n")
        head = await w.fetch(b"HEAD /doc1024 HTTP/1.0\r\n\r\n")
        marks["fs_calls2"] = sum(uk.syscall_counts.get(c, 0) for c in ("open", "stat"))
        marks["backend2"] = server.backend.stats()["requests"]
        return first, second, head

    first, second, head = w.run(scenario())
    assert first == second
    assert split(second)[2] == w.docs["/doc1024"]
    assert split(head)[2] == b"" and split(head)[0] == 200
    assert marks["fs_calls"] > 0                      # the miss went through NCSA and the FS
    assert marks["fs_calls2"] == marks["fs_calls"]    # the hits did not
    assert marks["backend2"] == marks["backend"] == 1
    st = server.stats()
    assert st["hits"] == 2 and st["misses"] == 1 and st["objects"] == 1
    # Harvest's comm.c: non-blocking and close-on-exec on each of the 3 accepted connections
    assert st["syscalls"]["fcntl"] == 3 * 3


# -- 4.3BSD TCP behaviour -----------------------------------------------------------------------
def test_time_wait_pcbs_accumulate_and_lengthen_the_pcb_search():
    w = World(sizes=(10,))
    server = make_ncsa(w.host)
    n = 40
    samples = []

    async def scenario():
        await server.start()
        tcp = server.machine.stack.tcp
        assert isinstance(tcp, UltrixTcp)
        for i in range(n):
            before_demux = w.cpu.breakdown()[DEMUX].cycles if DEMUX in w.cpu.breakdown() else 0
            before = tcp.stats.pcb_entries_examined
            await w.fetch(b"GET /doc10 HTTP/1.0\r\n\r\n")
            after_demux = w.cpu.breakdown()[DEMUX].cycles
            samples.append((tcp.stats.pcb_entries_examined - before, after_demux - before_demux))
        return len(tcp.time_wait), tcp.pcb_count, w.k.now

    tw, pcbs, t_end = w.run(scenario())
    assert t_end < 60 * S
    assert tw == n                                    # every connection is in TIME_WAIT
    assert pcbs == n + 1                              # ... with its PCB in the list (+ listener)
    st = server.stats()
    assert st["time_wait"] == n and st["pcb_list"] == n + 1
    # Each new connection's SYN scans the whole list twice: the cost grows with the TIME_WAIT
    # PCBs, by two entries per earlier connection.
    examined = [e for e, _ in samples]
    assert examined[-1] - examined[0] == 2 * (n - 1)
    assert all(b - a == 2 for a, b in zip(examined, examined[1:]))
    demux = [d for _, d in samples]
    per_entry = DECSTATION_5000_125_ULTRIX43.pcb_lookup_per_entry_cycles.value
    assert demux[-1] - demux[0] == pytest.approx(2 * (n - 1) * per_entry, abs=2)


def test_time_wait_expires_after_60_seconds():
    w = World(sizes=(10,))
    server = make_ncsa(w.host)

    async def scenario():
        await server.start()
        for _ in range(3):
            await w.fetch(b"GET /doc10 HTTP/1.0\r\n\r\n")
        tcp = server.machine.stack.tcp
        n0, t0 = len(tcp.time_wait), w.k.now
        await w.k.sleep(59 * S)
        n59 = len(tcp.time_wait)
        await w.k.sleep(2 * S)
        return n0, n59, len(tcp.time_wait), tcp.pcb_count

    n0, n59, n61, pcbs = w.run(scenario())
    assert (n0, n59, n61) == (3, 3, 0)
    assert pcbs == 1                                  # only the listener is left


def test_close_flushes_the_body_nagle_held_with_the_fin():
    """The header write (send_http_header's fflush) goes at once (nothing unacknowledged);
    the short body write waits under Nagle's rule (Ultrix sets no TCP_NODELAY), but only
    until NCSA closes the connection: ULTRIX 4.2 tcp_output.c sends a FIN not yet sent
    before its Nagle test, so the body goes with the FIN without waiting for the client's
    delayed ACK of the header."""
    w = World(sizes=(100,))
    server = make_ncsa(w.host)
    segs = []
    orig = w.client.tcp.input

    async def spy(src, dst, data):
        flags = data[13]
        hl = (data[12] >> 4) * 4
        segs.append((flags, len(data) - hl, w.k.now))
        await orig(src, dst, data)

    w.client.tcp.input = spy

    async def scenario():
        await server.start()
        return await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n")

    w.run(scenario())
    data_segs = [(f, n, t) for f, n, t in segs if n]
    fins = [(f, n, t) for f, n, t in segs if f & 0x01]
    assert len(data_segs) == 2                        # header and body: two write() calls
    assert len(fins) == 1 and fins[0] == data_segs[-1] and fins[0][1] == 100
    assert not data_segs[0][0] & 0x01
    assert data_segs[1][2] - data_segs[0][2] < 20 * MS   # no 200 ms delayed-ACK stall


def test_cpu_breakdown_shows_the_ultrix_costs():
    w = World(sizes=(1024,))
    server = make_ncsa(w.host)

    async def scenario():
        await server.start()
        w.cpu.reset_stats()
        for _ in range(5):
            await w.fetch(b"GET /doc1024 HTTP/1.0\r\n\r\n")

    w.run(scenario())
    bd = w.cpu.breakdown()
    # the 4.3BSD paths by their own categories: mbufs, ipintr's software interrupt, the
    # socket layer; and NCSA's process switches (parent to child per request)
    for cat in (SYSCALL, CONTEXT_SWITCH, COPY, CHECKSUM, DEMUX, MBUF, SOFTINT, SOCKET):
        assert bd[cat].cycles > 0, cat
    assert server.stats()["context_switches"] >= 2 * 5
    st = server.stats()
    prof = DECSTATION_5000_125_ULTRIX43
    assert bd[SYSCALL].cycles == pytest.approx(st["syscalls_total"] * prof.syscall_cycles.value,
                                               rel=0.2)
    # every byte of the 5 bodies was checksummed (no precomputed sums)
    assert bd[CHECKSUM].cycles > 5 * prof.checksum_cycles(1024)
    # per request: at least accept, sendmsg, recvmsg, read, stat, open, read, write x2,
    # close x3, select, log write
    assert st["syscalls"]["recvmsg"] >= 5 and st["syscalls"]["sendmsg"] == 5
    # NCSA 1.4's own calls around the request: signal() 8 times (process_request 1,
    # getline 3, send_fd 4), get_remote_host(), time() twice (Date header, log line)
    assert st["syscalls"]["sigvec"] == 8 * 5 and st["syscalls"]["getpeername"] == 5
    assert st["syscalls"]["gettimeofday"] == 10
    assert st["forks"] == 5 and st["children"] == 5


def test_several_clients_at_once():
    w = World(sizes=(100, 10240))
    extra = [NetStack.on_segment(w.k, w.seg, f"c{i}", f"02:00:00:00:03:0{i}", f"10.0.0.{10 + i}")
             for i in range(6)]
    for s in extra:
        s.add_arp(SERVER_IP, SERVER_MAC)
    server = make_ncsa(w.host)
    results = []

    async def one(stack, path):
        for _ in range(3):
            c = HttpConn(w.k, stack, f"GET {path} HTTP/1.0\r\n\r\n".encode())
            await stack.connect(c, SERVER_IP, HTTP_PORT)
            await c.done
            results.append((path, bytes(c.response)))

    async def scenario():
        await server.start()
        tasks = [w.k.spawn(one(s, "/doc10240" if i % 2 else "/doc100"))
                 for i, s in enumerate(extra)]
        await w.k.gather(tasks)

    w.run(scenario())
    assert len(results) == 18
    for path, resp in results:
        assert split(resp)[2] == w.docs[path]
    st = server.stats()
    assert st["requests"] == 18 and st["children"] >= 5


def test_ncsa_forks_more_children_when_all_are_busy():
    # a body larger than so_snd (16 KB) keeps a child in write() while the others arrive
    w = World(sizes=(40960,))
    extra = [NetStack.on_segment(w.k, w.seg, f"c{i}", f"02:00:00:00:03:0{i}", f"10.0.0.{10 + i}")
             for i in range(3)]
    for s in extra:
        s.add_arp(SERVER_IP, SERVER_MAC)
    server = make_ncsa(w.host, start_servers=1, max_servers=2)
    bodies = []

    async def one(stack):
        c = HttpConn(w.k, stack, b"GET /doc40960 HTTP/1.0\r\n\r\n")
        await stack.connect(c, SERVER_IP, HTTP_PORT)
        await c.done
        bodies.append(split(bytes(c.response))[2])

    async def scenario():
        await server.start()
        assert server.stats()["children"] == 1
        await w.k.gather([w.k.spawn(one(s)) for s in extra])

    w.run(scenario())
    assert bodies == [w.docs["/doc40960"]] * 3         # the third waited for a free child
    st = server.stats()
    assert st["children"] == 2 and st["forks"] == 2 and st["requests"] == 3


class Aborter(HttpConn):
    """Resets the connection as soon as the first response bytes arrive."""

    async def on_readable(self, data):
        self.response += data
        if self.state.value == "ESTABLISHED":
            await self.app.abort(self)


@pytest.mark.parametrize("kind", ["ncsa", "harvest"])
def test_a_reset_connection_does_not_stop_the_server(kind):
    # a body larger than so_snd (16 KB): the server is still writing when the RST comes
    w = World(sizes=(40960,))
    server = make(w, kind)

    async def scenario():
        await server.start()
        c = Aborter(w.k, w.client, b"GET /doc40960 HTTP/1.0\r\n\r\n")
        await w.client.connect(c, SERVER_IP, HTTP_PORT)
        await c.done
        await w.k.sleep(50 * MS)
        return c.reason, await w.fetch(b"GET /doc40960 HTTP/1.0\r\n\r\n")

    reason, resp = w.run(scenario())
    assert reason == "aborted"
    assert split(resp)[2] == w.docs["/doc40960"]
    assert server.stats()["errors"] >= 1             # the failed write was noticed


def test_harvest_does_not_cache_errors():
    w = World(sizes=(10,))
    server = make_harvest(w.host)

    async def scenario():
        await server.start()
        a = await w.fetch(b"GET /missing HTTP/1.0\r\n\r\n")
        b = await w.fetch(b"GET /missing HTTP/1.0\r\n\r\n")
        return a, b

    a, b = w.run(scenario())
    assert split(a)[0] == split(b)[0] == 404
    st = server.stats()
    assert st["hits"] == 0 and st["misses"] == 2 and st["objects"] == 0
    assert st["backend"]["requests"] == 2


# -- bad and abusive clients (issue 13) ------------------------------------------------------
def bad_then_good(kind: str, bad_request: bytes) -> tuple[object, bytes, bytes]:
    """The server, its reply to ``bad_request`` and then to a good GET of /doc100."""
    w = World(sizes=(100,))
    server = make(w, kind)

    async def scenario():
        await server.start()
        bad = await w.fetch(bad_request)
        return bad, await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n")

    bad, good = w.run(scenario())
    assert split(good)[0] == 200 and split(good)[2] == w.docs["/doc100"]
    return server, bad, good


@pytest.mark.parametrize("kind", ["ncsa", "harvest"])
def test_a_nul_in_the_path_is_a_404_and_the_server_keeps_serving(kind):
    _, bad, _ = bad_then_good(kind, b"GET /doc\x00100 HTTP/1.0\r\n\r\n")
    assert split(bad)[0] == 404


@pytest.mark.parametrize("kind", ["ncsa", "harvest"])
def test_an_unexpected_exception_is_a_500_and_the_server_keeps_serving(kind, monkeypatch, caplog):
    import sw.ultrix.harvest as harvest_mod
    import sw.ultrix.ncsa as ncsa_mod

    mod = ncsa_mod if kind == "ncsa" else harvest_mod
    real = mod.parse_request

    def faulty(buf):
        if b"/boom" in buf:
            raise RuntimeError("injected fault")
        return real(buf)

    monkeypatch.setattr(mod, "parse_request", faulty)
    server, bad, _ = bad_then_good(kind, b"GET /boom HTTP/1.0\r\n\r\n")
    assert split(bad)[0] == 500
    assert server.stats()["internal_errors"] == 1
    assert any(r.exc_info and "injected fault" in str(r.exc_info[1]) for r in caplog.records)


class Silent(HttpConn):
    """Connects and never sends a request; closes when the server does."""

    async def on_connected(self):
        pass


def test_ncsa_drops_silent_clients_after_its_timeout_and_serves_again():
    w = World(sizes=(100,))
    server = make_ncsa(w.host)
    timeout = server.options.timeout
    assert timeout == 1200                            # NCSA's documented TimeOut default

    async def scenario():
        await server.start()
        silent = [Silent(w.k, w.client, b"") for _ in range(10)]
        for c in silent:
            await w.client.connect(c, SERVER_IP, HTTP_PORT)
        await w.k.sleep(10 * S)                       # SYNs dropped on a full queue come again
        assert server.stats()["children"] == 10      # every child holds a silent client
        await w.k.sleep((timeout + 10) * S)
        reasons = [c.reason for c in silent]
        return reasons, await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n")

    reasons, resp = w.run(scenario())
    assert reasons == ["closed"] * 10                 # the server closed them
    assert split(resp)[2] == w.docs["/doc100"]
    st = server.stats()
    # alarm(2) calls: each of the 10 children's alarm(0) before recv_fd, getline's
    # alarm(timeout) for each silent client, alarm(0) again after each timeout; the fetch's
    # getline (2 arms, 1 disarm) and send_fd (one piece, EOF, alarm(0)), and its child's
    # next alarm(0)
    assert st["timeouts"] == st["alarms"] == 10
    assert st["syscalls"]["alarm"] == 10 + 10 + 10 + 3 + 3 + 1


def test_harvest_closes_an_idle_connection_after_its_read_timeout():
    w = World(sizes=(100,))
    server = make_harvest(w.host)
    timeout = server.options.read_timeout

    async def scenario():
        await server.start()
        c = Silent(w.k, w.client, b"")
        await w.client.connect(c, SERVER_IP, HTTP_PORT)
        await w.k.sleep((timeout - 1) * S)
        early = c.reason
        await w.k.sleep(2 * S)
        return early, c.reason, await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n")

    early, late, resp = w.run(scenario())
    assert early is None and late == "closed"
    assert split(resp)[2] == w.docs["/doc100"]
    assert server.stats()["timeouts"] == 1


def test_ncsa_drops_syns_beyond_its_listen_queue_silently_and_serves_again():
    from abuse_harness import SynFlooder

    w = World(sizes=(100,))
    server = make_ncsa(w.host)
    flood = SynFlooder(w.seg, SERVER_MAC, SERVER_IP)

    async def scenario():
        await server.start()
        for i in range(8):                             # half-open: never completed
            await flood.syn(i)
        await w.k.sleep(1 * S)
        early = HttpConn(w.k, w.client, b"GET /doc100 HTTP/1.0\r\n\r\n")
        await w.client.connect(early, SERVER_IP, HTTP_PORT)
        await w.k.sleep(2 * S)
        state = early.state.value
        # TCPTV_KEEP_INIT (75 s) frees the embryonic connections; then a new client is served.
        await w.k.sleep(80 * S)
        return state, await w.fetch(b"GET /doc100 HTTP/1.0\r\n\r\n")

    state, resp = w.run(scenario())
    # 4.3BSD sonewconn: qlen + q0len > 3 * 5 / 2 refuses the 8th; tcp_input drops it, no RST,
    # so the client is still trying (not "refused" at once).
    assert flood.resets == 0 and state == "SYN-SENT"
    assert server.machine.stack.tcp.stats.listen_drops >= 2
    assert split(resp)[2] == w.docs["/doc100"]


def test_ncsa_makes_the_system_calls_of_its_source_per_request():
    """NCSA 1.4 (httpd.c child_main, util.c getline, http_mime.c send_http_header,
    http_request.c send_fd, http_log.c log_transaction): one request's system calls in the
    child, counted between two requests, and the sizes of its writes and socket reads."""
    w = World(sizes=(100, 20000))
    server = make_ncsa(w.host)
    reads, writes = [], []
    so = server.sockets
    orig_read, orig_write = so.read, so.write

    async def read(proc, s, n, **kw):
        got = await orig_read(proc, s, n, **kw)
        if s.pcb is not None:
            reads.append(n)
        return got

    async def write(proc, s, data, **kw):
        if s.pcb is not None:
            writes.append(len(data))
        return await orig_write(proc, s, data, **kw)

    so.read, so.write = read, write
    req = b"GET /doc100 HTTP/1.0\r\nUser-Agent: t\r\n\r\n"

    async def scenario():
        await server.start()
        await w.fetch(req)
        before = dict(server.stats()["syscalls"])
        reads.clear(), writes.clear()
        await w.fetch(req)
        after = server.stats()["syscalls"]
        one = (list(reads), list(writes))
        reads.clear(), writes.clear()
        await w.fetch(b"GET /doc20000 HTTP/1.0\r\n\r\n")
        return {k: after[k] - before.get(k, 0) for k in after}, one, (list(reads), list(writes))

    d, (r1, w1), (r2, w2) = w.run(scenario())
    assert d["alarm"] == 7 and d["sigvec"] == 8 and d["dup2"] == 4
    assert d["getpeername"] == 1 and d["shutdown"] == 1 and d["fstat"] == 1
    assert d["gettimeofday"] == 2 and d["stat"] == 1 and d["open"] == 2   # .htaccess, file
    # the connection: "GET " a byte at a time, then the rest in one 8 KB read
    assert r1 == [1, 1, 1, 1, 8192]
    # header (its own fflush), the body; agent log, transfer log, DONE to the parent
    assert len(w1) == 2 and w1[1] == 100
    assert d["write"] == 2 + 2 + 1
    # a 20000-byte body leaves stdout's buffer (the socket's sb_hiwat: ULTRIX 4.2's 16 KB
    # tcp_sendspace) whenever it fills
    assert w2[1:] == [16384, 20000 - 16384]
