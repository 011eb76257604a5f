"""Cheetah (sw/cheetah): HTTP behaviour, packets on the wire, and each specialization's effect.

A server host (StationDevice, an in-memory disk holding the documents, the Aegis-profile CPU)
and a client NetStack share an Ethernet segment captured to pcapng; the client speaks raw
HTTP over a TcpPcb.
"""
from __future__ import annotations

import email.utils

import dpkt
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from sim.cpu import CPU, IDLE
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sim.media.pcap import PcapNgWriter, read_pcapng
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS
from sim.time import MS, S
from sw.cheetah import STAGES, CheetahConfig, make_server, stage
from sw.cheetah.config import SPECIALIZATIONS
from sw.cheetah.server import EPOCH, decode_extra, http_date
from sw.host import Host
from sw.libos.fs import FileSystem, MemoryBlockDevice, mkfs
from sw.libos.net import NetStack, TcpPcb
from sw.libos.net import checksum as ck
from sw.libos.net.ether import StationDevice
from sw.libos.net.ipv4 import addr

SERVER_MAC, CLIENT_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01"
SERVER_IP, CLIENT_IP = "10.0.1.1", "10.0.2.1"
SIZES = (0, 10, 100, 1024, 10240)


def content(n: int, seed: int = 0) -> bytes:
    """Deterministic document bytes."""
    return bytes((i * 7 + seed * 13 + (i >> 8)) & 0xFF for i in range(n))


PAGE = (b"<html><head><title>page</title></head><body>"
        b"<p>Cheetah</p><IMG SRC=\"logo.gif\" alt=x></body></html>\n")
LOGO = content(3000, seed=5)


def documents() -> dict[str, bytes]:
    docs = {f"/doc{n}": content(n, n) for n in SIZES}
    docs["/page.html"] = PAGE
    docs["/logo.gif"] = LOGO
    return docs


async def make_disk(docs: dict[str, bytes], extra_size: int = 256) -> MemoryBlockDevice:
    dev = MemoryBlockDevice(4096, 512)
    await mkfs(dev, block_size=4096, extra_size=extra_size)
    fs = await FileSystem.mount(dev, cache_blocks=64)
    for path, data in docs.items():
        await fs.create(path)
        if data:
            await fs.write(path, data)
    await fs.unmount()
    return dev


class Client(TcpPcb):
    """Sends one raw request, collects the reply."""

    def __init__(self, stack: NetStack, request: bytes):
        super().__init__()
        self.stack_ = stack
        self.request = request
        self.got = bytearray()
        self.closed = None
        self.peer_closed = False

    async def on_connected(self):
        await self.stack_.send(self, self.request)

    def on_readable(self, data):
        self.got += data

    async def on_peer_closed(self):
        self.peer_closed = True
        await self.stack_.close(self)

    def on_closed(self, reason):
        self.closed = reason

    def resupply(self, offset, length):
        return self.request[offset:offset + length]


class Rig:
    """A Cheetah host and a client on one segment (optionally captured)."""

    def __init__(self, config: CheetahConfig | None = None, *, pcap=None, aegis=False,
                 cache_blocks: int = 512, docs=None, seed: int = 3, disk=None):
        self.k = k = Kernel()
        self.docs = docs or documents()
        self.seg = Segment(k, seed=seed, pcap=pcap)
        self.cpu = CPU(k, DECSTATION_5000_125_AEGIS, "server-cpu")
        dev = StationDevice(self.seg, "server", SERVER_MAC)
        self.disk = disk
        if disk is None:
            t = k.spawn(make_disk(self.docs))
            k.run(until=1)
            self.disk = t.result
        extra = {}
        if aegis:
            from sim.memory import Memory
            from sw.exokernel import Aegis
            self.aegis = Aegis(Memory(k, 1 << 20, profile=DECSTATION_5000_125_AEGIS), cpu=self.cpu)
            self.aegis.bind_netdev(dev)             # the OS binds the card at boot
            extra["aegis"] = self.aegis
        self.host = Host("server", k, self.cpu, dev, addr(SERVER_IP), blockdev=self.disk,
                         arp={addr(CLIENT_IP): bytes.fromhex(CLIENT_MAC.replace(":", ""))},
                         seed=seed, extra=extra)
        self.server = make_server(self.host, config, cache_blocks=cache_blocks)
        self.client = NetStack.on_segment(k, self.seg, "client", CLIENT_MAC, CLIENT_IP,
                                          seed=seed + 1)
        self.client.add_arp(SERVER_IP, SERVER_MAC)
        st = k.spawn(self.server.start())
        k.run(until=k.now + 1 * S)
        assert st.done and st.exception is None and self.server.started

    def fetch(self, request: bytes, *, wait=2 * S) -> Client:
        c = Client(self.client, request)
        self.k.spawn(self.client.connect(c, SERVER_IP, 80))
        self.k.run(until=self.k.now + wait)
        return c

    def many(self, requests: list[bytes], *, wait=2 * S) -> list[Client]:
        return [self.fetch(r, wait=wait) for r in requests]


def split(reply: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = bytes(reply).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        fields[k.strip().lower()] = v.strip()
    return lines[0], fields, body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.0\r\n{extra}\r\n".encode()


# -- HTTP ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("cheetah") / "cheetah.pcapng"
    with PcapNgWriter(path) as w:
        rig = Rig(pcap=w)
        replies = {p: rig.fetch(get(p)) for p in rig.docs}
        rig.replies = replies
        rig.head = rig.fetch(b"HEAD /doc1024 HTTP/1.0\r\nUser-Agent: t\r\n\r\n")
        rig.missing = rig.fetch(get("/nothere"))
    return path, rig


def test_get_bodies_are_the_files(capture):
    _, rig = capture
    for path, data in rig.docs.items():
        c = rig.replies[path]
        status, fields, body = split(c.got)
        assert status == "HTTP/1.0 200 OK", (path, status)
        assert body == data, path
        assert int(fields["content-length"]) == len(data)
        assert fields["server"] == "Cheetah"
        assert fields["last-modified"] == http_date(0)
        assert c.closed == "closed" and c.peer_closed
    assert split(rig.replies["/page.html"].got)[1]["content-type"] == "text/html"
    assert split(rig.replies["/logo.gif"].got)[1]["content-type"] == "image/gif"


def test_date_is_simulated_time_in_rfc1123(capture):
    _, rig = capture
    _, fields, _ = split(rig.replies["/doc10"].got)
    t = email.utils.mktime_tz(email.utils.parsedate_tz(fields["date"]))
    assert fields["date"].endswith(" GMT") and len(fields["date"]) == 29
    assert EPOCH <= t <= EPOCH + rig.k.now // S


def test_head_and_404(capture):
    _, rig = capture
    status, fields, body = split(rig.head.got)
    assert status == "HTTP/1.0 200 OK" and body == b""
    assert int(fields["content-length"]) == 1024
    status, _, body = split(rig.missing.got)
    assert status.startswith("HTTP/1.0 404") and b"404" in body


def _frames(path):
    _, pkts = read_pcapng(path.read_bytes())
    return [p.data[:-4] for p in pkts]


def test_every_frame_parses_with_correct_checksums(capture):
    path, _ = capture
    n_tcp = 0
    for raw in _frames(path):
        p = Ether(raw)
        if TCP not in p:
            continue
        n_tcp += 1
        ip_sum, tcp_sum = p[IP].chksum, p[TCP].chksum
        del p[IP].chksum
        del p[TCP].chksum
        q = Ether(bytes(p))
        assert q[IP].chksum == ip_sum and q[TCP].chksum == tcp_sum
    assert n_tcp > 40


def _server_segments(path):
    out = []
    for raw in _frames(path):
        eth = dpkt.ethernet.Ethernet(raw)
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP) \
                and ip.data.sport == 80:
            out.append(ip.data)
    return out


def test_small_reply_is_one_segment_with_header_data_and_fin(capture):
    path, rig = capture
    segs = [s for s in _server_segments(path) if s.data]
    body = rig.docs["/doc100"]
    (one,) = [s for s in segs if s.data.endswith(body)]
    assert one.data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert one.flags & dpkt.tcp.TH_FIN and one.flags & dpkt.tcp.TH_ACK


def test_no_time_wait_pcbs_held(capture):
    _, rig = capture
    st = rig.server.stats()
    # Every connection's PCB went back to the pool; TIME_WAIT is the compact table's.
    assert st["open_connections"] == 0 and st["time_wait_pcbs"] == 0
    assert st["time_wait_entries"] == st["connections"]
    assert st["pool_free"] == rig.server.pool_size
    assert st["pool_allocs"] == 0


def test_extra_fields_hold_header_and_checksums(capture):
    _, rig = capture
    fs = rig.server.fs

    async def check():
        for path, data in rig.docs.items():
            doc = rig.server.docs[path]
            got = decode_extra(await fs.get_extra(doc.ino), len(data), doc.mtime, 1460)
            assert got is not None, path
            header, s200, _, sums = got
            assert header == doc.header and s200 == ck.ones_sum(header)
            assert len(sums) == len(doc.pieces)
            for (o, n, s), s2 in zip(doc.pieces, sums):
                assert s == s2 == ck.ones_sum(data[o:o + n])
    t = rig.k.spawn(check())
    rig.k.run(until=rig.k.now + 1 * S)
    assert t.done and t.exception is None


# -- conditional, malformed, oversized ------------------------------------------------------
def test_if_modified_since_gives_304():
    rig = Rig()
    later = http_date(3600)
    c = rig.fetch(get("/doc100", f"If-Modified-Since: {later}\r\n"))
    status, fields, body = split(c.got)
    assert status == "HTTP/1.0 304 Not Modified" and body == b""
    earlier = "Sun, 31 Dec 1995 00:00:00 GMT"
    c = rig.fetch(get("/doc100", f"If-Modified-Since: {earlier}\r\n"))
    assert split(c.got)[0] == "HTTP/1.0 200 OK" and split(c.got)[2] == rig.docs["/doc100"]


@pytest.mark.parametrize("bad", [
    b"GARBAGE\r\n\r\n",
    b"HEAD /doc10\r\n\r\n",                         # HTTP/0.9 had GET only
    b"GET doc10 HTTP/1.0\r\n\r\n",
    b"GET /doc10 HTTP/1.0\r\nX-Long: " + b"a" * 5000 + b"\r\n\r\n",
    b"GET /doc10 HTTP/1.0\r\nX-Long: " + b"b" * 6000,
])
def test_malformed_and_oversized_get_400_and_next_is_served(bad):
    rig = Rig()
    # The bad request is in flight alongside a good one: the good one is not disturbed.
    good = Client(rig.client, get("/doc1024"))
    badc = Client(rig.client, bad)
    rig.k.spawn(rig.client.connect(badc, SERVER_IP, 80))
    rig.k.spawn(rig.client.connect(good, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + 2 * S)
    assert split(badc.got)[0] == "HTTP/1.0 400 Bad Request"
    assert split(good.got)[2] == rig.docs["/doc1024"]
    nxt = rig.fetch(get("/doc10"))
    assert split(nxt.got)[2] == rig.docs["/doc10"]


def test_unknown_method_is_501():
    rig = Rig()
    c = rig.fetch(b"POST /doc10 HTTP/1.0\r\n\r\n")
    assert split(c.got)[0] == "HTTP/1.0 501 Not Implemented"


# -- Aegis ------------------------------------------------------------------------------------
def test_frames_pass_through_aegis_demux():
    from sim.cpu import CONTEXT_SWITCH, DEMUX
    rig = Rig(aegis=True)
    c = rig.fetch(get("/doc1024"))
    assert split(c.got)[2] == rig.docs["/doc1024"]
    env = rig.server.env
    assert env.frames_upcalled >= 3
    # every frame the card received went through the kernel's receive path to Cheetah's
    # environment (its own or, unclaimed, by the default binding), none around it
    assert rig.aegis.frames_received == env.frames_upcalled == rig.server.stack.stats.frames_in
    rep = rig.cpu.report().by_category
    assert rep[DEMUX].cycles > 0 and rep[CONTEXT_SWITCH].cycles > 0


def test_on_aegis_every_frame_cheetah_sends_is_a_kernel_transmit_call():
    """The library OS cannot touch the card: each frame it sends enters Aegis once, charged
    as a system call (Build 4: Aegis's own transmit call)."""
    from sim.cpu import SYSCALL
    rig = Rig(aegis=True)
    rig.cpu.reset_stats()
    out0 = rig.server.stack.stats.frames_out
    c = rig.fetch(get("/doc1024"))
    assert split(c.got)[2] == rig.docs["/doc1024"]
    sent = rig.server.stack.stats.frames_out - out0
    assert sent >= 3 and rig.server.env.frames_sent >= sent
    syscall = rig.cpu.report().by_category[SYSCALL].cycles
    assert syscall >= sent * rig.cpu.profile.cycles(rig.cpu.profile.syscall_cycles)


# -- specializations --------------------------------------------------------------------------
def _run(config: CheetahConfig, n: int = 20, path: str = "/doc1024", **kw) -> dict:
    rig = Rig(config, **kw)
    rig.cpu.reset_stats()
    before = rig.server.stats()
    for _ in range(n):
        c = rig.fetch(get(path), wait=200 * MS)
        assert split(c.got)[2] == rig.docs[path]
    st = rig.server.stats()
    rep = rig.cpu.report().by_category
    busy = {k: v for k, v in rep.items() if k != IDLE}
    return {"cycles": sum(s.cycles for s in busy.values()) / n,
            "by": {k: v.cycles / n for k, v in rep.items()},
            "segments": (st["tcp"]["segments_out"] - before["tcp"]["segments_out"]) / n,
            "stats": st}


@pytest.fixture(scope="module")
def full():
    return _run(CheetahConfig())


@pytest.mark.parametrize("name,category", [
    ("libos", "syscall"), ("event_loop", "context_switch"), ("request_pool", "application"),
    ("parse_in_place", "copy"), ("merged_segments", None),
    ("precomputed_checksums", "checksum"), ("precomputed_headers", "application"),
    ("cache_as_retransmit_pool", "copy"),
])
def test_each_specialization_off_costs_more(full, name, category):
    off = _run(CheetahConfig().without(name))
    assert off["cycles"] > full["cycles"], name
    if category is not None:
        assert off["by"].get(category, 0) > full["by"].get(category, 0), (name, category)
    if name in ("merged_segments", "event_loop"):
        assert off["segments"] > full["segments"], name


def test_inline_prefetch_saves_a_disk_read():
    def misses(prefetch: bool) -> int:
        cfg = CheetahConfig() if prefetch else CheetahConfig().without("inline_prefetch")
        # A cache too small for the whole set: the page and its image are not cached when
        # the test begins (start-up read everything through it first).
        docs = documents()
        docs.update({f"/filler{i}": content(4096, i) for i in range(40)})
        rig = Rig(cfg, cache_blocks=24, docs=docs)
        for i in range(30):                     # push the page and its image out
            rig.fetch(get(f"/filler{i}"), wait=100 * MS)
        m0 = rig.server.fs.cache.misses
        for p in ("/page.html", "/logo.gif"):
            c = rig.fetch(get(p))
            assert split(c.got)[2] == docs[p]
        return rig.server.fs.cache.misses - m0, rig.server.stats()["prefetched_blocks"]
    with_pf, prefetched = misses(True)
    without, none = misses(False)
    assert prefetched >= 1 and none == 0
    assert with_pf < without


def test_stages_are_cumulative():
    assert STAGES[0] == "posix" and STAGES[1] == "libos" and STAGES[-1] == "cheetah"
    assert stage("cheetah") == CheetahConfig()
    assert not stage("posix").libos and stage("libos").libos
    assert not any(getattr(stage("libos"), s) for s in SPECIALIZATIONS)
    on = 0
    for name in STAGES[2:]:
        now = sum(getattr(stage(name), s) for s in SPECIALIZATIONS)
        assert now == on + 1
        on = now
    with pytest.raises(ValueError, match="unknown Cheetah stage"):
        stage("turbo")
    with pytest.raises(ValueError, match="unknown Cheetah switch"):
        CheetahConfig().without("turbo")
    with pytest.raises(TypeError, match="must be a bool"):
        CheetahConfig(event_loop=1)


def test_posix_stage_costs_more_than_cheetah(full):
    posix = _run(stage("posix"), n=5)
    assert posix["cycles"] > 1.5 * full["cycles"]


def test_bad_arguments():
    k = Kernel()
    with pytest.raises(TypeError, match="Host"):
        make_server(object())
    seg = Segment(k)
    h = Host("s", k, CPU(k, DECSTATION_5000_125_AEGIS), StationDevice(seg, "s", SERVER_MAC),
             addr(SERVER_IP))
    with pytest.raises(ValueError, match="blockdev"):
        make_server(h)
    h.blockdev = MemoryBlockDevice(64, 512)
    with pytest.raises(TypeError, match="CheetahConfig"):
        make_server(h, {"event_loop": True})
    with pytest.raises(ValueError, match="cache_blocks"):
        make_server(h, cache_blocks=3)


# -- concurrency and loss ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["posix", "+event_loop", "cheetah"])
def test_concurrent_requests_are_all_served(name):
    rig = Rig(stage(name))
    paths = ["/doc10240", "/doc100", "/page.html", "/doc1024", "/doc0", "/logo.gif"] * 2
    clients = [Client(rig.client, get(p)) for p in paths]
    for c in clients:
        rig.k.spawn(rig.client.connect(c, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + 3 * S)
    for p, c in zip(paths, clients):
        assert split(c.got)[2] == rig.docs[p], (name, p)
    st = rig.server.stats()
    assert st["open_connections"] == 0 and st["requests"] == len(paths)
    if not stage(name).event_loop:
        assert st["threads"] == len(paths)


@pytest.mark.parametrize("pool", [True, False])
def test_losses_are_repaired_from_the_cache_or_the_copy(pool):
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from libos_net_harness import LossyLink
    k = Kernel()
    link = LossyLink(k, seed=11, loss=0.15)
    sdev, cdev = link.end(SERVER_MAC), link.end(CLIENT_MAC)
    t = k.spawn(make_disk(documents()))
    k.run(until=1)
    cpu = CPU(k, DECSTATION_5000_125_AEGIS, "server-cpu")
    host = Host("server", k, cpu, sdev, addr(SERVER_IP), blockdev=t.result,
                arp={addr(CLIENT_IP): cdev.mac}, seed=5)
    cfg = CheetahConfig() if pool else CheetahConfig().without("cache_as_retransmit_pool")
    server = make_server(host, cfg)
    client = NetStack(k, cdev, CLIENT_IP, name="client", seed=9)
    cdev.attach(client.input)
    client.add_arp(SERVER_IP, SERVER_MAC)
    k.spawn(server.start())
    k.run(until=k.now + 1 * S)
    docs = documents()
    got = []
    for i in range(8):
        c = Client(client, get("/doc10240"))
        k.spawn(client.connect(c, SERVER_IP, 80))
        got.append(c)
    k.run(until=k.now + 120 * S)
    assert link.counts["lost"] > 0
    for c in got:
        assert split(c.got)[2] == docs["/doc10240"]
    st = server.stats()
    assert st["resupplied_bytes"] > 0 and st["tcp"]["retransmit_timeouts"] > 0
    assert st["open_connections"] == 0


def test_serves_a_built_image_and_reuses_its_extra_fields(tmp_path):
    from hw.disk.image import DiskImage
    from sw.libos.fs import ImageBlockDevice
    from sw.libos.fs.build import build_image
    root = tmp_path / "docs"
    root.mkdir()
    docs = {f"/doc{n}": content(n, n) for n in SIZES}
    for p, data in docs.items():
        (root / p[1:]).write_bytes(data)
    image = tmp_path / "docs.img"
    build_image(root, image, extra_size=256)
    reused = []
    with DiskImage.open(image) as img:
        for _ in range(2):                   # the second start finds the fields current
            rig = Rig(docs=docs, disk=ImageBlockDevice(img))
            for p, data in docs.items():
                assert split(rig.fetch(get(p)).got)[2] == data
            reused.append(rig.server.stats()["extra_reused"])
    assert reused == [0, len(docs)]


def test_runs_without_a_cpu():
    rig = Rig()
    rig.host.cpu = None
    rig.host.netdev = StationDevice(rig.seg, "server2", "02:00:00:00:01:02")
    rig.host.ip = addr("10.0.1.2")
    srv = make_server(rig.host)
    rig.k.spawn(srv.start())
    rig.k.run(until=rig.k.now + 1 * S)
    rig.client.add_arp("10.0.1.2", "02:00:00:00:01:02")
    c = Client(rig.client, get("/doc1024"))
    rig.k.spawn(rig.client.connect(c, "10.0.1.2", 80))
    rig.k.run(until=rig.k.now + 1 * S)
    assert split(c.got)[2] == rig.docs["/doc1024"]


class HalfCloser(Client):
    """Sends its request and its FIN at once."""

    async def on_connected(self):
        await self.stack_.send(self, self.request, last=True)

    async def on_peer_closed(self):
        self.peer_closed = True


def test_truncated_request_then_fin_gets_400():
    rig = Rig()
    c = HalfCloser(rig.client, b"GET /doc10 HTT")
    rig.k.spawn(rig.client.connect(c, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + 2 * S)
    assert split(c.got)[0] == "HTTP/1.0 400 Bad Request" and c.closed == "closed"
    ok = HalfCloser(rig.client, get("/doc100"))
    rig.k.spawn(rig.client.connect(ok, SERVER_IP, 80))
    rig.k.run(until=rig.k.now + 2 * S)
    assert split(ok.got)[2] == rig.docs["/doc100"]
    assert rig.server.stats()["open_connections"] == 0


def test_document_larger_than_the_cache_is_a_500_not_a_crash():
    docs = {"/big": content(200_000, 1), "/doc10": content(10, 10)}
    rig = Rig(docs=docs, cache_blocks=16)
    c = rig.fetch(get("/big"))
    assert split(c.got)[0] == "HTTP/1.0 500 Internal Server Error"
    assert split(rig.fetch(get("/doc10")).got)[2] == docs["/doc10"]
    assert rig.server.stats()["pool_free"] == rig.server.pool_size


def test_stats_are_json_and_runs_are_deterministic(full):
    import json
    again = _run(CheetahConfig())
    assert again["cycles"] == full["cycles"] and again["segments"] == full["segments"]
    st = json.loads(json.dumps(full["stats"]))
    assert st["responses"] == {"200": 20} and st["config"]["event_loop"] is True
    assert st["tcp"]["checksum_bytes_saved"] > 0


def test_time_wait_entries_expire_and_pcbs_are_reused():
    rig = Rig()
    for _ in range(40):
        rig.fetch(get("/doc100"), wait=50 * MS)
    st = rig.server.stats()
    assert st["time_wait_entries"] == 40 and st["time_wait_pcbs"] == 0
    assert st["pool_hits"] == 40 and st["pool_allocs"] == 0 and st["pool_free"] == 32
    rig.k.run(until=rig.k.now + 61 * S)              # 2 MSL of 30 s
    assert rig.server.stats()["time_wait_entries"] == 0
    assert rig.server.stack.tcp.time_wait.expired == 40
