"""Cheetah's zero-copy path (issue 16 item 4): the file cache's physical pages go to a DMA card
by reference; the CPU touches, flushes and maps no document byte with every specialization on,
and touches every one with the combined cache/retransmission pool off; over the LANCE card's
programmed I/O every byte sent is touched.

The server is an Aegis host whose disk DMAs into its memory (the library's cache is physical)
and whose interface is a DMA card: it takes gather lists and reads their references from
memory itself (:class:`DmaNic`), as the AN2 does; a lossy link makes TCP retransmit from the
pinned cache blocks.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sim.cpu import CPU
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS
from sim.time import S
from sw.cheetah import CheetahConfig, make_server
from sw.exokernel import Aegis
from sw.host import Host
from sw.libos.fs import MemoryBlockDevice
from sw.libos.net import NetStack
from sw.libos.net.gather import Gather, PhysRef
from sw.libos.net import tcp
from sw.libos.net.ipv4 import addr

sys.path.insert(0, str(Path(__file__).parent))
from libos_net_harness import LossyLink  # noqa: E402
from test_cheetah import (CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC, Client, content,  # noqa: E402
                          get, make_disk, split)

DOCS = {"/small": content(700, 1), "/doc": content(10240, 2), "/big": content(40000, 3)}


class DmaNic:
    """A network interface whose card fetches a gather list's references from main memory by
    DMA (the CPU touches none of them); bytes pieces it takes as they are."""

    def __init__(self, end, memory: Memory):
        self.end = end
        self.mac = end.mac
        self.memory = memory
        self.ref_bytes = 0
        self.doc_ref_bytes = 0
        self.frames = 0

    def attach(self, fn) -> None:
        self.end.attach(fn)

    @property
    def receiver(self):
        return self.end.receiver

    async def send(self, frame) -> None:
        self.frames += 1
        if isinstance(frame, Gather):
            self.ref_bytes += frame.ref_bytes
            self.doc_ref_bytes += frame.doc_bytes
            frame = frame.flatten(self.memory.read)
        await self.end.send(frame)


class Run:
    """A physical-cache Cheetah on Aegis behind a DMA card, and a client, over a lossy link."""

    def __init__(self, config: CheetahConfig, *, loss: float = 0.0, seed: int = 11):
        self.k = k = Kernel()
        self.link = LossyLink(k, seed=seed, loss=loss)
        mem = Memory(k, 4 << 20, profile=DECSTATION_5000_125_AEGIS)
        self.nic = DmaNic(self.link.end(SERVER_MAC), mem)
        cdev = self.link.end(CLIENT_MAC)
        t = k.spawn(make_disk(DOCS))
        k.run(until=1)
        disk = MemoryBlockDevice(4096, 512, data=t.result.data, memory=mem)   # DMAs into mem
        cpu = CPU(k, DECSTATION_5000_125_AEGIS, "server-cpu")
        self.aegis = Aegis(mem, cpu=cpu)
        self.aegis.bind_netdev(self.nic)
        self.host = Host("server", k, cpu, self.nic, addr(SERVER_IP), memory=mem, blockdev=disk,
                         arp={addr(CLIENT_IP): cdev.mac}, seed=5, extra={"aegis": self.aegis})
        self.server = make_server(self.host, config, cache_blocks=64)
        self.client = NetStack(k, cdev, CLIENT_IP, name="client", seed=9)
        cdev.attach(self.client.input)
        self.client.add_arp(SERVER_IP, SERVER_MAC)
        st = k.spawn(self.server.start())
        k.run(until=k.now + 1 * S)
        assert st.done and st.exception is None
        self.host.doc_touch.reset()          # the measured interval starts (as the experiment)
        self.nic.ref_bytes = self.nic.doc_ref_bytes = 0

    def serve(self, paths: list[str], wait: int = 60 * S) -> list[bytes]:
        cs = []
        for p in paths:
            c = Client(self.client, get(p))
            self.k.spawn(self.client.connect(c, SERVER_IP, 80))
            cs.append(c)
        self.k.run(until=self.k.now + wait)
        return [split(c.got)[2] for c in cs]


PATHS = ["/small", "/doc", "/big", "/doc", "/big"]


def test_the_cache_is_physical_and_documents_go_by_reference():
    run = Run(CheetahConfig())
    assert run.serve(PATHS) == [DOCS[p] for p in PATHS]
    fs = run.server.fs
    assert fs.cache.store is not None
    env = run.server.env
    for b in fs.cache.buffers():
        assert run.aegis.owns(env, b.addr, fs.sb.block_size)
    st = run.server.stats()
    assert st["requests"] == len(PATHS) + 0 and st["responses"] == {"200": len(PATHS)}
    # every document byte went to the card by reference, none through the CPU
    touched, by_ref = 0, sum(len(DOCS[p]) for p in PATHS)
    assert run.nic.doc_ref_bytes == by_ref
    assert (st["cpu_touched_doc_bytes"], st["doc_cache_lines_flushed"],
            st["doc_pages_mapped"]) == (touched, 0, 0)


def test_retransmissions_come_from_the_pinned_cache_pages_by_reference():
    run = Run(CheetahConfig(), loss=0.15)
    paths = ["/doc", "/big"] * 4
    assert run.serve(paths, wait=200 * S) == [DOCS[p] for p in paths]
    st = run.server.stats()
    assert run.link.counts["lost"] > 0 and st["resupplied_bytes"] > 0
    body = sum(len(DOCS[p]) for p in paths)
    sent = run.nic.doc_ref_bytes + st["cpu_touched_doc_bytes"]
    assert sent > body                           # retransmitted document bytes
    # ... all by reference: none summed or copied by the CPU (only handed down, see above)
    assert (st["cpu_touched_doc_bytes"], run.nic.doc_ref_bytes) == (0, sent)
    assert st["doc_pages_mapped"] == 0
    assert st["open_connections"] == 0


def test_without_the_combined_pool_the_copy_touches_every_document_byte():
    run = Run(CheetahConfig().without("cache_as_retransmit_pool"))
    assert run.serve(PATHS) == [DOCS[p] for p in PATHS]
    st = run.server.stats()
    body = sum(len(DOCS[p]) for p in PATHS)
    # the copy out of the file cache into the request's buffer: each byte once, which the
    # card then takes from that buffer by reference
    touched, by_ref = 0, body
    assert st["cpu_touched_doc_bytes"] == body + touched
    assert run.nic.doc_ref_bytes == by_ref
    assert st["doc_pages_mapped"] > 0
    # the copies' pages went back to the kernel when the connections ended
    assert all(not r.copy_pages for r in run.server._pool)


def test_without_precomputed_checksums_the_stack_sums_the_document_in_place():
    run = Run(CheetahConfig().without("precomputed_checksums"))
    assert run.serve(PATHS) == [DOCS[p] for p in PATHS]
    st = run.server.stats()
    body = sum(len(DOCS[p]) for p in PATHS)
    assert st["cpu_touched_doc_bytes"] == body
    assert st["doc_pages_mapped"] > 0


class _FakeLance:
    name, started, mac = "le0", True, bytes.fromhex("020000000101")

    def __init__(self):
        self.sent = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)


def test_the_lance_copies_a_gather_list_by_programmed_io_and_counts_the_document_bytes():
    from sw.doc_touch import DocTouch
    from sw.drivers.lance import LanceNetDevice
    k = Kernel()
    mem = Memory(k, 1 << 16, profile=DECSTATION_5000_125_AEGIS)
    mem.write(0x2000, content(3000, 4))
    drv, dt = _FakeLance(), DocTouch()
    nd = LanceNetDevice(drv, read=mem.read, doc_touch=dt)
    hdr = bytes(range(54))
    g = Gather([hdr, PhysRef(0x2000, 1000), PhysRef(0x2000 + 1000, 446)])
    t = k.spawn(nd.send(g))
    k.run()
    assert t.exception is None
    assert drv.sent == [hdr + content(3000, 4)[:1446]]
    assert (dt.touched_bytes, dt.pages_mapped, dt.lines_flushed) == (1446, 0, 0)
    t = k.spawn(nd.send(Gather([hdr, PhysRef(0, 10, doc=False)])))
    k.run()
    assert dt.touched_bytes == 1446 and drv.sent[-1] == hdr + bytes(10)
    k2 = Kernel()
    k2.spawn(LanceNetDevice(drv).send(g))
    with pytest.raises(Exception, match="references and no memory"):
        k2.run()


def test_checksums_are_precomputed_for_the_interfaces_mss_at_most_a_page():
    class AtmLike:
        mac = bytes(6)
        link_layer = type("L", (), {"mtu": 9180})()

        async def send(self, frame):
            pass

    k = Kernel()
    cpu = CPU(k, DECSTATION_5000_125_AEGIS, "cpu")
    disk = MemoryBlockDevice(64)
    eth = make_server(Host("a", k, cpu, DmaNic(LossyLink(k).end(SERVER_MAC), None),
                           addr(SERVER_IP), blockdev=disk))
    atm = make_server(Host("b", k, cpu, AtmLike(), addr(SERVER_IP), blockdev=disk))
    assert (eth.piece_bytes, atm.piece_bytes) == (1460, 4096)
    small = make_server(Host("c", k, cpu, AtmLike(), addr(SERVER_IP), blockdev=disk),
                        tcp=tcp.TcpConfig(mss=4000))
    assert small.piece_bytes == 4000
    with pytest.raises(ValueError, match="mss"):
        tcp.TcpConfig(mss=0)


def test_a_full_segment_ends_at_the_last_whole_summed_piece():
    from sw.libos.net.tcp import _whole_pieces
    a, b, c = b"a" * 100, b"b" * 50, b"c" * 30
    # the MSS cut the last piece (no sum): it starts the next segment
    assert _whole_pieces([(a, 1), (b, 2), (c, None)], 180) == ([(a, 1), (b, 2)], 150)
    # nothing to gain: no sums at all, or the last piece is whole
    assert _whole_pieces([(a, None), (c, None)], 130) == ([(a, None), (c, None)], 130)
    assert _whole_pieces([(a, 1), (c, 3)], 130) == ([(a, 1), (c, 3)], 130)


DOC = 30000


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from serveros.experiments import paper
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img", (DOC,))


def serve_on(network: str, image, config: CheetahConfig) -> dict:
    """Cheetah on a DECstation with the ``network``'s card (the models) and its disk, two
    clients with cards of their own, two requests each for a DOC-byte document; its stats
    from the measured interval."""
    from serveros.experiments import paper
    from serveros.machines import client_spec, network_media, server_ip, server_spec
    from serveros.simulation import Simulation
    from sw.boot import boot
    from sw.clients.http import HttpClient
    k = Kernel()
    ms = [server_spec("cheetah", image, seed=5, network=network, clients=2)] + \
        [client_spec(i, seed=5, network=network) for i in range(2)]
    sim = Simulation(k, ms, media=network_media(k, ms, network, seed=5))
    host, *clients = sim.hosts.values()
    out = {}

    async def main():
        await boot(host)
        srv = make_server(host, config)
        await srv.start()
        for c in clients:
            await boot(c)
        host.doc_touch.reset()
        http = [HttpClient(c, server_ip(), paper.document_path(DOC), 2) for c in clients]
        for t in [k.spawn(h.run(), name=h.name) for h in http]:
            await t
        recs = [r for h in http for r in h.records]
        assert all(r.ok and r.body_bytes == DOC for r in recs) and len(recs) == 4
        assert srv.fs.cache.store is not None
        out.update(srv.stats())
    t = k.spawn(main(), name="main")
    sim.run()
    assert t.done and t.exception is None, t.exception
    return out


def test_cheetah_on_the_an2_touches_no_document_byte(image):
    """The real thing: Cheetah with an AN2 card (its model), two clients with their own, over
    the ATM switch; the clients announce 4.3BSD's MSS of 8192, not the server's 9140."""
    on = serve_on("an2", image, CheetahConfig())
    assert (on["cpu_touched_doc_bytes"], on["doc_cache_lines_flushed"],
            on["doc_pages_mapped"]) == (0, 0, 0)
    off = serve_on("an2", image, CheetahConfig().without("cache_as_retransmit_pool"))
    assert off["cpu_touched_doc_bytes"] == 4 * DOC and off["doc_pages_mapped"] > 0


def test_over_the_lance_every_document_byte_sent_is_copied_by_the_cpu(image):
    st = serve_on("ethernet", image, CheetahConfig())
    assert st["tcp"]["retransmit_timeouts"] == 0
    # each document byte once, by the driver's programmed I/O into the card's buffer memory
    assert st["cpu_touched_doc_bytes"] == 4 * DOC
    assert (st["doc_cache_lines_flushed"], st["doc_pages_mapped"]) == (0, 0)
