"""Machines on the AN2 ATM network: Cheetah and NCSA servers with an AN2 card, clients with
their own, through serveros.simulation.Simulation and serveros.machines.network_media."""
from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from hw.an2.attach import DEFAULT_MTU
from serveros.experiments import paper
from serveros.machines import (AN2_BASE, CLIENT_AN2_MEMORY_BYTES, PVC_VCI_BASE, client_ip,
                               client_spec, machine_mac, network_media, pvc_vci, server_ip,
                               server_spec)
from serveros.simulation import Simulation
from sim.kernel import Kernel
from sim.media.atm_net import AtmNetwork
from sim.media.ethernet import Segment
from sim.media.pcap import LINKTYPE_SUNATM, PcapNgWriter, read_pcapng
from sw.boot import boot
from sw.clients.http import HttpClient
from sw.libos.net.atm import LLC_SNAP_IP, An2Interface

DOC = 10240
CLIENTS = 2
REQUESTS = 2


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img", (DOC,))


def specs(server: str, image, seed: int = 5) -> list:
    return [server_spec(server, image, seed=seed, network="an2", clients=CLIENTS)] + \
        [client_spec(i, seed=seed, network="an2") for i in range(CLIENTS)]


def serve(server: str, image, *, seed: int = 5, pcap=None) -> dict:
    """Boot the server and the clients, serve REQUESTS requests to each client; what happened."""
    k = Kernel()
    ms = specs(server, image, seed)
    media = network_media(k, ms, "an2", seed=seed, pcap=pcap)
    sim = Simulation(k, ms, media=media)
    host, *clients = sim.hosts.values()
    out: dict = {}

    async def main():
        await boot(host)
        srv = paper.server_factory(server)(host)
        await srv.start()
        for c in clients:
            await boot(c)
        http = [HttpClient(c, server_ip(), paper.document_path(DOC), REQUESTS) for c in clients]
        for t in [k.spawn(h.run(), name=h.name) for h in http]:
            await t
        out["records"] = [[(r.start, r.end, r.status, r.bytes, r.body_bytes, r.ok)
                           for r in h.records] for h in http]
        out["stats"] = srv.stats()
    t = k.spawn(main(), name="main")
    sim.run()
    assert t.done and t.exception is None, t.exception
    out.update(net=media["atm"], host=host, clients=clients, now=k.now)
    return out


# -- descriptions -------------------------------------------------------------------------------
def test_machines_on_an2_have_a_card_in_slot_0_with_the_pvc_plan(image):
    s = server_spec("cheetah", image, network="an2", clients=3)
    assert [(d.kind, d.name, d.base) for d in s.devices] == [("an2", "an0", AN2_BASE),
                                                              ("disk", "rz0", 0x1C00_0000)]
    assert s.device("an0").params["pvcs"] == {client_ip(i): PVC_VCI_BASE + 10 + i
                                              for i in range(3)}
    c = client_spec(1, "sparc", network="an2")
    assert (c.ether, c.memory_bytes, c.os) == (None, CLIENT_AN2_MEMORY_BYTES, "bsd-client")
    assert c.device("an0").params == {"esi": machine_mac(11), "pvcs": {server_ip(): 101}}
    assert pvc_vci(client_ip(0)) == 110
    assert server_spec("ncsa", image).kinds == ("lance", "disk")          # Ethernet by default
    with pytest.raises(ValueError, match="network must be one of"):
        client_spec(0, network="fddi")


def test_network_media_routes_every_pvc_and_refuses_tables_that_disagree(image):
    k = Kernel()
    assert isinstance(network_media(k, specs("ncsa", image), "ethernet", seed=1)["ethernet"],
                      Segment)
    net = network_media(k, specs("ncsa", image), "an2", seed=1)["atm"]
    assert isinstance(net, AtmNetwork)
    assert net.pvcs == [("server", 110, "client0", 101), ("server", 111, "client1", 101)]
    lonely = [server_spec("ncsa", image, network="an2", clients=2), client_spec(0, network="an2")]
    with pytest.raises(ValueError, match="reaches no machine"):
        network_media(Kernel(), lonely, "an2", seed=1)
    one_way = [server_spec("ncsa", image, network="an2", clients=0), client_spec(0, network="an2")]
    with pytest.raises(ValueError, match="has none back"):
        network_media(Kernel(), one_way, "an2", seed=1)


def test_every_host_boots_an_ip_over_atm_interface(image):
    k = Kernel()
    ms = specs("cheetah", image)
    sim = Simulation(k, ms, media=network_media(k, ms, "an2", seed=1))

    async def go():
        for h in sim.hosts.values():
            await boot(h)
    k.spawn(go())
    sim.run()
    for h in sim.hosts.values():
        assert isinstance(h.netdev, An2Interface) and h.netdev.mtu == DEFAULT_MTU
        assert h.extra["drivers"]["an0"].started
    assert sim.hosts["server"].extra["aegis"].netdev is sim.hosts["server"].netdev


# -- serving ------------------------------------------------------------------------------------
@pytest.mark.parametrize("server", ["cheetah", "ncsa"])
def test_a_server_on_an2_serves_its_clients_deterministically(image, server):
    a, b = serve(server, image), serve(server, image)
    assert a["records"] == b["records"] and a["now"] == b["now"]
    for recs in a["records"]:
        assert [(st, body, ok) for _, _, st, _, body, ok in recs] == [(200, DOC, True)] * REQUESTS
    st = a["net"].stats()
    assert st["drops"] == st["unroutable"] == 0 and st["cells_in"] == st["cells_out"] > 0
    drv = a["host"].extra["drivers"]["an0"].stats
    assert drv.rx_errors == drv.tx_errors == 0 and drv.tx_pdus > 0
    if server == "ncsa":
        # Ultrix's MSS followed the ATM MTU (8192): PDUs larger than Ethernet frames on average.
        assert drv.tx_bytes / drv.tx_pdus > 1500


def test_ultrix_servers_on_an2_count_the_document_bytes_their_cpu_touches(image):
    run = serve("ncsa", image)
    got = run["stats"]
    # read() out of the buffer cache, write()'s copy, the checksum; the AN2 sends the mbufs
    # where they lie (no driver copy, unlike the LANCE's programmed I/O).
    assert got["cpu_touched_doc_bytes"] == 3 * DOC * CLIENTS * REQUESTS
    drv = run["host"].extra["drivers"]["an0"].stats
    assert drv.tx_copied_bytes == 0 and drv.tx_inplace_bytes >= DOC * CLIENTS * REQUESTS
    got = serve("harvest", image)["stats"]
    # A hit: the write to the client (copy, checksum). A miss: NCSA's read and its write into
    # the loopback socket, Harvest's read of it, then as a hit.
    assert got["hits"] + got["misses"] == CLIENTS * REQUESTS and got["misses"] >= 1
    assert got["cpu_touched_doc_bytes"] == (2 * got["hits"] + 5 * got["misses"]) * DOC


def test_the_capture_is_sunatm_llc_snap_ip_that_scapy_and_tshark_read(image, tmp_path):
    path = tmp_path / "an2.pcapng"
    w = PcapNgWriter(str(path))
    serve("ncsa", image, pcap=w)
    w.close()
    ifaces, pkts = read_pcapng(path.read_bytes())
    assert {i["linktype"] for i in ifaces} == {LINKTYPE_SUNATM} and len(ifaces) == 1 + CLIENTS
    scapy = pytest.importorskip("scapy.layers.inet")
    for p in pkts:
        assert p.data[4:12] == LLC_SNAP_IP
        ip = scapy.IP(p.data[12:])
        assert ip.version == 4 and ip.len == len(p.data) - 12
        assert bytes(ip) == p.data[12:]           # re-built from its fields, byte for byte
        assert scapy.IP(bytes(ip)).chksum == ip.chksum
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    # Each PDU is captured twice, on its sender's link and on its receiver's (two interfaces):
    # TCP's sequence analysis and reassembly, which do not tell interfaces apart, are off.
    res = subprocess.run(["tshark", "-n", "-r", str(path), "-o", "ip.check_checksum:TRUE",
                          "-o", "tcp.check_checksum:TRUE", "-o", "tcp.analyze_sequence_numbers:FALSE",
                          "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields", "-E", "separator=|",
                          "-e", "llc.type", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
                          "-e", "_ws.malformed"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split("|") for line in res.stdout.splitlines()]
    assert len(rows) == len(pkts) and rows == [["0x0800", "1", "1", ""]] * len(pkts)
