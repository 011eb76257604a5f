"""The paper's experiment backbone: machines, the HTTP client, tiny runs, outputs, determinism,
clear errors, and the RTL card (Verilator) giving the model's throughput."""
import csv
import json

import pytest

from serveros.cli import main
from serveros.experiments import paper
from serveros.machines import (boot, build_client_machine, client_ip, client_spec,
                               machine_mac, preload_arp, server_ip, server_spec)
from serveros.rtl import simulator_missing
from serveros.simulation import Simulation
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sim.time import MS, S
from sw.clients.http import HttpClient, parse_response_head
from sw.libos.net import NetStack, TcpPcb


def _available_servers():
    """The paper's servers whose packages exist now, plus the test server."""
    names = []
    for s in paper.SERVERS:
        try:
            paper.server_factory(s)
            names.append(s)
        except paper.ServerUnavailable:
            pass
    return names + ["static"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img")


# -- documents and machines ---------------------------------------------------------------------
def test_documents_are_deterministic_and_sized(tmp_path):
    files = paper.write_documents(tmp_path)
    assert [f.name for f in files] == ["doc0", "doc10", "doc100", "doc1024", "doc10240"]
    for f, n in zip(files, paper.DOC_SIZES):
        assert f.read_bytes() == paper.document_content(n) and len(f.read_bytes()) == n
    assert paper.document_content(200) == paper.document_content(300)[:200]
    with pytest.raises(ValueError, match="-1"):
        paper.document_content(-1)


def test_machines_addresses_profiles_and_errors(image):
    k = Kernel()
    seg = Segment(k, seed=1)
    sim = Simulation(k, [server_spec("cheetah", image, seed=3)], media={"ethernet": seg})
    host = sim.hosts["server"]
    assert sim.rtl is None and host.cpu.profile.name == "decstation-5000-125-aegis"
    assert host.ip == bytes([10, 0, 0, 1]) == server_ip() and host.seed == 3
    c = build_client_machine(k, seg, 2, seed=4)
    assert c.ip == client_ip(2) == bytes([10, 0, 0, 12]) and c.netdev.mac == machine_mac(12)
    assert c.cpu.profile.name == "client-pentium100-openbsd" and c.blockdev is None
    preload_arp([host, c])
    assert host.arp[c.ip] == machine_mac(12) and c.arp[host.ip] == machine_mac(1)
    h2 = Simulation(k, [server_spec("ncsa", image)], media={"ethernet": Segment(k, seed=1)}
                    ).hosts["server"]
    assert h2.cpu.profile.name == "decstation-5000-125-ultrix43" and h2.extra["os"] == "ultrix"
    with pytest.raises(ValueError, match="apache"):
        server_spec("apache", image)
    with pytest.raises(ValueError, match="fpga"):
        Simulation(k, [server_spec("ncsa", image)], media={"ethernet": seg}, rtl=["lance"],
                   backend="fpga")
    with pytest.raises(ValueError, match="-1"):
        build_client_machine(k, seg, -1)
    with pytest.raises(ValueError, match="vax"):
        client_spec(0, "vax")

    async def go():
        await boot(host)
    t = k.spawn(go())
    k.run()
    assert t.exception is None and host.netdev is not None and host.blockdev is not None
    assert host.netdev.mac == machine_mac(1) and "aegis" in host.extra     # the OS booted


# -- the client ----------------------------------------------------------------------------------
def _pair(server_fn=None):
    """A client host and a server stack on one segment (ideal interfaces)."""
    k = Kernel()
    seg = Segment(k, seed=2)
    c = build_client_machine(k, seg, 0, seed=5)
    srv = NetStack.on_segment(k, seg, "server", machine_mac(1), server_ip(), name="srv")
    srv.add_arp(c.ip, c.netdev.mac)
    c.arp[server_ip()] = machine_mac(1)
    if server_fn is not None:
        srv.listen(80, server_fn(srv))
    return k, c, srv


def _responder(response: bytes):
    def factory_for(stack):
        class Conn(TcpPcb):
            async def on_readable(self, data):
                await stack.send(self, response, last=True)

            def resupply(self, offset, length):
                return response[offset:offset + length]
        return Conn
    return factory_for


def test_client_records_whole_responses():
    body = b"x" * 3000
    k, c, _ = _pair(_responder(b"HTTP/1.0 200 OK\r\nContent-Length: 3000\r\n\r\n" + body))
    done = []
    cl = HttpClient(c, "10.0.0.1", "/doc", 5, on_done=done.append)
    k.spawn(cl.run())
    k.run()
    assert done == [cl] and cl.finished
    assert [r.ok for r in cl.records] == [True] * 5
    assert all(r.status == 200 and r.body_bytes == 3000 and r.end > r.start for r in cl.records)
    assert all(a.end <= b.start for a, b in zip(cl.records, cl.records[1:]))    # closed loop
    assert cl.stats.ok == 5 and cl.stats.failed == 0


def test_client_counts_bad_length_refused_and_timeout():
    k, c, _ = _pair(_responder(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
    cl = HttpClient(c, "10.0.0.1", "/doc", 2)
    k.spawn(cl.run())
    k.run()
    assert [r.error for r in cl.records] == ["length", "length"]
    k, c, _ = _pair()                                   # nobody listens: a reset
    cl = HttpClient(c, "10.0.0.1", "/doc", 2)
    k.spawn(cl.run())
    k.run()
    assert cl.stats.failed == 2 and all(not r.ok for r in cl.records)
    k = Kernel()                                        # nobody there at all: timeouts
    seg = Segment(k, seed=1)
    c = build_client_machine(k, seg, 0)
    c.arp[server_ip()] = machine_mac(1)
    cl = HttpClient(c, server_ip(), "/doc", 3, timeout_ps=50 * MS)
    k.spawn(cl.run())
    end = k.run()
    assert cl.stats.timeouts == 3 and [r.error for r in cl.records] == ["timeout"] * 3
    assert end < 1 * S and all(50 * MS <= r.end - r.start < 51 * MS for r in cl.records)


def test_client_bad_arguments():
    c = build_client_machine(Kernel(), Segment(Kernel(), seed=1), 0)
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="requests"):
            HttpClient(c, "10.0.0.1", "/d", bad)
    with pytest.raises(ValueError, match="path"):
        HttpClient(c, "10.0.0.1", "no-slash", 1)
    with pytest.raises(ValueError, match="timeout"):
        HttpClient(c, "10.0.0.1", "/d", 1, timeout_ps=0)
    with pytest.raises(TypeError, match="Host"):
        HttpClient(object(), "10.0.0.1", "/d", 1)
    with pytest.raises(TypeError, match="callable"):
        HttpClient(c, "10.0.0.1", "/d", 1, on_done=3)
    assert parse_response_head(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0") == \
        (404, {"content-length": "0"})
    with pytest.raises(ValueError, match="status line"):
        parse_response_head(b"garbage")


# -- runs ----------------------------------------------------------------------------------------
REQUIRED = {"figure", "server", "doc_bytes", "clients", "requests_per_client", "throughput_rps",
            "first100_rps", "last100_rps", "sustained_rps", "sustained_note", "client",
            "client_cpu_busy_fraction", "client_cpu_breakdown",
            "goodput_bytes_per_s", "mean_latency_ms",
            "sim_seconds", "wall_seconds", "cpu_breakdown", "packets_per_request", "rtl",
            "backend", "seed", "server_stats"}


def test_plan_points_default_shape():
    pts = paper.plan_points()
    assert len(pts) == 3 * (5 + 6 - 1)                  # the shared point simulated once
    assert sum(p.clients * p.requests * len(p.figures) for p in pts) == 3 * 41_000
    shared = [p for p in pts if p.figures == ("a", "b")]
    assert [(p.doc_bytes, p.clients) for p in shared] == [(100, 4)] * 3
    assert len({p.point_seed for p in pts}) == len(pts)


def test_tiny_run_writes_every_output(tmp_path, image):
    servers = _available_servers()
    pts = paper.plan_points(("a", "b"), servers, requests=20, seed=3, doc_sizes=(1024,),
                            clients=(2,))
    rows = paper.run_paper(pts, jobs=2, image_path=image, pcap_path=tmp_path / "p.pcapng")
    assert len(rows) == 2 * len(servers)
    for r in rows:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert r["ok"] == r["requests"] == 20 * r["clients"] and r["failed"] == 0, r
        assert r["throughput_rps"] > 0 and r["first100_rps"] > 0 and r["last100_rps"] > 0
        assert r["goodput_bytes_per_s"] == pytest.approx(r["throughput_rps"] * r["doc_bytes"])
        assert r["mean_latency_ms"] > 0 and r["sim_seconds"] > 0
        assert sum(r["cpu_breakdown"].values()) == pytest.approx(1.0)
        assert r["cpu_breakdown"]["idle"] < 1.0
        assert r["packets_per_request"] >= 5                 # SYN, SYN-ACK, ... FIN, ACK
    files = paper.write_results(rows, tmp_path / "out")
    doc = json.loads(files["json"].read_text())
    assert doc["rows"] == json.loads(json.dumps(rows))
    with files["csv"].open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) and "cpu_idle" in table[0] and "throughput_rps" in table[0]
    for f in ("figure_a", "figure_b"):
        assert files[f].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "p.pcapng").stat().st_size > 1000


def test_rows_are_deterministic_for_a_seed(image):
    pts = paper.plan_points(("b",), ["static"], requests=15, seed=9, clients=(3,))
    a = paper.run_paper(pts, jobs=1, image_path=image)
    b = paper.run_paper(pts, jobs=2, image_path=image)
    assert paper.rows_without_wall(a) == paper.rows_without_wall(b)
    c = paper.run_paper(paper.plan_points(("b",), ["static"], requests=15, seed=10,
                                          clients=(3,)), jobs=1, image_path=image)
    assert paper.rows_without_wall(a) != paper.rows_without_wall(c)


@pytest.mark.parametrize("argv, what", [
    (["--servers", "apache"], "apache"),
    (["--servers", ""], "no server"),
    (["--figure", "e"], "'e'"),
    (["--figure", "a,a"], "'a,a'"),
    (["--network", "atm"], "unknown network 'atm'"),
    (["--requests", "0"], "requests"),
    (["--jobs", "0"], "jobs"),
    (["--backend", "fpga"], "fpga"),
    (["--seed", "-1"], "seed"),
    (["--backend", "icarus"], "icarus"),
    (["--rtl", "timer"], "no machine has a timer"),
    (["--rtl", "scsi"], "unknown device kind 'scsi'"),
    (["--rtl", "disk,disk"], "named twice"),
    (["--rtl", "disk", "--backend", "model"], "runs no RTL"),
    (["--servers", "cheetah@turbo"], "turbo"),
    (["--servers", "ncsa@posix"], "only cheetah"),
])
def test_run_bad_options_are_clear_errors(argv, what, capsys, tmp_path):
    assert main(["run", *argv, "--out", str(tmp_path)]) == 2
    assert what in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_cli_run_writes_results(tmp_path, capsys):
    assert main(["run", "--servers", "static", "--figure", "b", "--requests", "3",
                 "--out", str(tmp_path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "figure b" in out and "results.json" in out
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["clients"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "figure_b.png").exists() and not (tmp_path / "figure_a.png").exists()


def test_missing_server_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(paper.SERVERS, "nothere", ("sw.no_such_package", "make_server"))
    with pytest.raises(paper.ServerUnavailable, match="nothere"):
        paper.server_factory("nothere")


def _model_and_verilator_agree(image, clients: int, requests: int) -> None:
    """The same point with the server's card as model and as RTL on Verilator gives the same
    row to the last digit (the wall time and the backend's name aside): the model card does
    CSMA/CD to the gateware's cycle, so even the collisions and backoffs are the same."""
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    pts = [paper.Point(("a",), "cheetah", 100, clients, requests, b, 1)
           for b in ("model", "verilator")]
    assert pts[1].rtl == ("lance",)               # --backend verilator alone: the card's RTL
    model, rtl = (paper.run_point(p, image)[0] for p in pts)
    assert rtl["ok"] == model["ok"] == clients * requests
    assert model["wire_collisions"] > 0 or clients == 1          # the wire was contended
    assert (rtl["rtl"], rtl["backend"], model["rtl"], model["backend"]) == \
        ("lance", "verilator", "", "model")
    same = {"rtl", "backend", "wall_seconds"}
    assert {k: v for k, v in rtl.items() if k not in same} == \
        {k: v for k, v in model.items() if k not in same}


@pytest.mark.hdl
def test_verilator_card_gives_the_model_throughput(image):
    _model_and_verilator_agree(image, clients=4, requests=10)


@pytest.mark.slow
@pytest.mark.hdl
def test_verilator_card_gives_the_model_throughput_on_a_contended_wire(image):
    _model_and_verilator_agree(image, clients=4, requests=200)


def test_first_and_last_window_rates():
    from sw.clients.http import RequestRecord
    # 10 requests back to back, 1 ms each, then 10 taking 2 ms each (a server slowing down).
    recs, t = [], 0
    for d in [1] * 10 + [2] * 10:
        recs.append(RequestRecord(t * MS, (t + d) * MS, 10, 0, 200, True))
        t += d
    first, last = paper._window_rates(recs, 10)
    assert first == pytest.approx(1000.0) and last == pytest.approx(500.0)
    assert paper._window_rates(recs, 50) == pytest.approx((20 / 0.030, 20 / 0.030))
    assert paper._window_rates([], 5) == (0.0, 0.0)


def test_cheetah_stages_run_as_servers(image):
    """``cheetah@STAGE`` is Cheetah at one of the paper's stages: the plain POSIX-like stage
    does more server work per request than the full Cheetah on the same machine."""
    rows = {}
    for name in ("cheetah@posix", "cheetah"):
        r = paper.run_point(paper.Point(("a",), name, 1024, 1, 10, "model", 1), image)[0]
        assert r["server"] == name and r["ok"] == 10
        rows[name] = r
    busy = {n: (1 - r["cpu_breakdown"]["idle"]) * r["sim_seconds"] / r["ok"]
            for n, r in rows.items()}
    assert busy["cheetah@posix"] > 1.3 * busy["cheetah"]
    assert rows["cheetah@posix"]["packets_per_request"] > rows["cheetah"]["packets_per_request"]


def test_each_specialization_off_alone_lowers_throughput_through_its_mechanism(image):
    """One client on a quiet wire: a request's latency is its critical path, so every piece of
    extra work a switched-off specialization causes shows as lower throughput, and the CPU
    breakdown grows in the category the mechanism predicts. (The document has no inline
    images, so switching the prefetch off must change nothing.)"""
    from sw.cheetah import SPECIALIZATIONS

    def run(name):
        r = paper.run_point(paper.Point(("a",), name, 1024, 1, 8, "model", 1), image)[0]
        assert r["ok"] == 8 and r["wire_excessive_collisions"] == 0
        busy = {c: f * r["sim_seconds"] / r["ok"] for c, f in r["cpu_breakdown"].items()}
        return r, busy

    full, full_busy = run("cheetah")
    grows = {"precomputed_checksums": "checksum", "parse_in_place": "copy",
             "cache_as_retransmit_pool": "copy"}
    for switch in SPECIALIZATIONS:
        r, busy = run(f"cheetah@no-{switch}")
        if switch == "inline_prefetch":
            assert r["throughput_rps"] == pytest.approx(full["throughput_rps"], rel=1e-9)
            continue
        if switch == "merged_segments":
            # Its extra header segment costs per-packet work, but the library makes the
            # transmit call where its TCP runs (ExOS; sw.libos.net.aegis_env), so the wire
            # carries the header segment while the CPU builds the data segment: at one client
            # that overlap can hide the extra work (4 clients show the loss, figure a).
            assert r["packets_per_request"] > full["packets_per_request"]
            assert busy["protocol"] > full_busy["protocol"]
            continue
        assert r["throughput_rps"] < full["throughput_rps"], switch
        if switch in grows:
            cat = grows[switch]
            assert busy.get(cat, 0) > full_busy.get(cat, 0), (switch, cat)


# -- the sustained rate (TIME_WAIT equilibrium) ------------------------------------------------
class _Rec:
    """A stand-in for a client's RequestRecord (start, end in ps, ok)."""

    def __init__(self, start, end, ok=True):
        self.start, self.end, self.ok = start, end, ok


def _closed_loop(phases):
    """One client's back-to-back requests: ``phases`` is ``[(seconds, req/s), ...]``."""
    recs, t = [], 0
    for seconds, rate in phases:
        step = S // rate
        for _ in range(seconds * rate):
            recs.append(_Rec(t, t + step))
            t += step
    return recs


def test_sustained_rate_counts_only_completions_after_the_time_wait_lifetime():
    """A server that runs at 20 req/s until its TIME_WAIT list has filled (60 s) and at 10 req/s
    after it: the sustained rate is the 10, not the run's mean or its first completions'."""
    recs = _closed_loop([(60, 20), (40, 10)])
    rate, note = paper.sustained_rate(recs, clients=1)
    assert note is None and rate == pytest.approx(10, rel=0.01)
    first, last = paper._window_rates(recs, 100)
    assert first == pytest.approx(20, rel=0.01) and last == pytest.approx(10, rel=0.01)
    assert paper.TIME_WAIT_EQUILIBRIUM_PS == 60 * S


def test_sustained_rate_is_null_with_the_requests_it_needs_when_the_run_is_short():
    rate, note = paper.sustained_rate(_closed_loop([(30, 20)]), clients=1)
    assert rate is None
    assert "30.0 s simulated" in note and "--requests 1300" in note     # (60 x 20 + 100) / 1
    rate, note = paper.sustained_rate(_closed_loop([(64, 20)]), clients=1)
    assert rate is None and "80 completions after the first 60 s" in note
    assert paper.sustained_rate(_closed_loop([(66, 20)]), clients=1)[1] is None


# -- the client machines -------------------------------------------------------------------------
def test_rows_name_the_client_machine_and_show_its_own_cpu(image, tmp_path):
    """``--client sparc`` runs the clients on SPARCstation 1s: the rows name the profile, and
    the slower client's own CPU is busier per request than the Pentium's."""
    rows = {}
    for kind in ("pentium", "sparc"):
        pts = paper.plan_points(("b",), ["static"], requests=5, seed=2, clients=(1,), client=kind)
        assert [p.client for p in pts] == [kind]
        rows[kind] = paper.run_paper(pts, jobs=1, image_path=image)[0]
    assert rows["pentium"]["client"] == "client-pentium100-openbsd"
    assert rows["sparc"]["client"] == "client-sparcstation1-sunos41"
    for r in rows.values():
        assert 0 < r["client_cpu_busy_fraction"] < 1
        assert sum(r["client_cpu_breakdown"].values()) == pytest.approx(1.0)
    per_req = {k: r["client_cpu_busy_fraction"] * r["sim_seconds"] / r["ok"] for k, r in rows.items()}
    assert per_req["sparc"] > 2 * per_req["pentium"]
    files = paper.write_results(list(rows.values()), tmp_path, plots=False)
    header = files["csv"].read_text().splitlines()[0].split(",")
    assert "client" in header and "client_cpu_idle" in header
    with pytest.raises(ValueError, match="client must be one of pentium, sparc"):
        paper.plan_points(("b",), ["static"], client="vax")


def test_run_refuses_an_unknown_client_kind(tmp_path, capsys):
    assert main(["run", "--client", "vax", "--out", str(tmp_path)]) == 2
    assert "--client" in capsys.readouterr().err


def test_run_says_when_points_ended_before_the_time_wait_equilibrium(tmp_path, capsys):
    assert main(["run", "--servers", "static", "--figure", "b", "--requests", "3",
                 "--jobs", "1", "--out", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "6 of 6 points ended before the TIME_WAIT equilibrium" in out
    assert "--requests" in out
