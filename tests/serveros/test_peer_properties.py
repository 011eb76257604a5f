"""Property tests with a raw peer (serveros/peer.py) against all three servers: odd HTTP request
lines and odd TCP header fields, sent as scapy-built frames over the simulated Ethernet.

After every case: the simulation did not raise (no task of the server failed), every frame the
server sent parses in scapy with valid IP and TCP checksums (the harness checks each one as it
is captured), and a fresh client machine's GET is served (200 and the document's exact bytes).
Well-formed segments are also held to RFC 793 3.9's rules, which 4.4BSD's tcp_input.c follows:
to LISTEN (a RST dropped, an ACK reset, a segment without SYN dropped, a SYN answered with
SYN-ACK) and to ESTABLISHED (a RST never answered, an unacceptable segment acknowledged, a SYN
in the window reset).

Each case builds its world afresh (a server machine boots in about 0.1 s of wall time), so a
case cannot depend on another and hypothesis can shrink a failure to one concrete example.
Examples are derandomized (the same ones every run); a few per server by default, many more
behind ``-m slow``. Last, SYN floods from spoofed addresses: 300 SYNs against each server, and
3000 against Cheetah behind ``-m slow``.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from serveros.experiments import paper
from serveros.peer import (Captured, FrameCheckError, FreshGetFailed, RawPeer, Testbed,
                           check_server_frame, spoofed_ip, stream_from)
from sim.kernel import Kernel
from sim.media.ethernet import Segment, fcs
from sim.time import MS, S
from sw.clients.http import parse_response_head
from sw.libos.net.tcp import TCPTV_KEEP_INIT

SERVERS = ("cheetah", "ncsa", "harvest")
_MOD = 1 << 32


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


FAST, MANY = _settings(15), _settings(150)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("peer") / "docs.img")


def _property_test(case, strategy, config: settings):
    """A test of ``case(server, image, value)`` for each server, over ``strategy``'s values."""
    @pytest.mark.parametrize("server", SERVERS)
    @config
    @given(value=strategy)
    def test(server, image, value):
        case(server, image, value)
    return test


# -- the harness itself ---------------------------------------------------------------------------
def _frame(pkt) -> bytes:
    raw = bytes(pkt)
    raw += bytes(max(0, 60 - len(raw)))
    return raw + fcs(raw)


def test_frame_check_finds_bad_checksums_and_lengths():
    good = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=80, dport=1000, flags="SA")
    assert check_server_frame(_frame(good)) == []
    assert check_server_frame(_frame(Ether() / ARP())) == []
    bad_tcp = Ether(bytes(good))
    bad_tcp[TCP].chksum ^= 0x0101
    assert any("TCP checksum" in p for p in check_server_frame(_frame(bad_tcp)))
    bad_ip = Ether(bytes(good))
    bad_ip[IP].chksum ^= 0x0101
    assert any("IP header checksum" in p for p in check_server_frame(_frame(bad_ip)))
    long_ip = Ether(bytes(good))
    long_ip[IP].len = 400
    assert any("total length" in p for p in check_server_frame(_frame(long_ip)))
    f = bytearray(_frame(good))
    f[-1] ^= 1
    assert any("FCS" in p for p in check_server_frame(bytes(f)))


def test_peer_answers_arp_for_its_addresses_and_reports_bad_server_frames():
    k = Kernel()
    seg = Segment(k, seed=1)
    server = seg.attach("fake-server")
    peer = RawPeer(seg, server_mac=bytes.fromhex("080000000001"), server_ip="10.0.0.1")
    peer.add_addresses([spoofed_ip(0), spoofed_ip(2999)])
    assert spoofed_ip(2999) == "10.0.12.250"
    smac = "08:00:00:00:00:01"

    async def scenario():
        for ip in (spoofed_ip(2999), "10.9.9.9"):
            await server.send(_frame(Ether(dst="ff:ff:ff:ff:ff:ff", src=smac)
                                     / ARP(op=1, hwsrc=smac, psrc="10.0.0.1", pdst=ip)))
        rx = await server.recv()
        bad = Ether(dst=peer.mac, src=smac) / IP(src="10.0.0.1", dst=peer.ip) / TCP(chksum=1)
        await server.send(_frame(bad))
        await k.sleep(1 * MS)
        return rx

    t = k.spawn(scenario())
    k.run()
    reply = Ether(t.result.data[:-4])
    assert reply[ARP].op == 2 and reply[ARP].psrc == spoofed_ip(2999)
    assert reply[ARP].hwsrc == peer.mac.hex(":") and peer.arp_replies == 1   # not 10.9.9.9
    assert len(peer.captured) == 3
    with pytest.raises(FrameCheckError, match="TCP checksum"):
        peer.check_frames()
    with pytest.raises(ValueError, match="server MAC"):
        RawPeer(seg, server_mac=b"\x01", server_ip="10.0.0.1", name="p2")
    with pytest.raises(ValueError, match="IPv4 address"):
        RawPeer(seg, server_mac=bytes(6), server_ip="10.0.0.300", name="p3")


def test_stream_reassembly_takes_retransmissions_and_order_from_sequence_numbers():
    def seg(seq, flags, data=b""):
        p = (Ether() / IP(src="10.0.0.1", dst="10.0.0.9")
             / TCP(sport=80, dport=5, seq=seq % _MOD, flags=flags) / data)
        return Captured(0, bytes(p), Ether(bytes(p)))
    frames = [seg(_MOD - 1, "SA"), seg(5, "PA", b"world"), seg(0, "PA", b"hello"),
              seg(0, "PA", b"hello"), seg(10, "FA")]
    assert stream_from(frames, "10.0.0.9") == b"helloworld"
    assert stream_from(frames, "10.0.0.8") == b""


@pytest.mark.parametrize("server", SERVERS)
def test_raw_peer_fetches_a_document_and_a_fresh_client_is_served(server, image):
    bed = Testbed(server, image)

    async def case():
        conn = await bed.peer.handshake(40000)
        assert conn is not None, "no SYN-ACK"
        await bed.peer.send_data(conn, b"GET /doc1024 HTTP/1.0\r\n\r\n")
        return await bed.peer.receive(conn)

    reply = bed.run(case())
    status, headers = parse_response_head(reply.partition(b"\r\n\r\n")[0])
    assert status == 200 and reply.partition(b"\r\n\r\n")[2] == paper.document_content(1024)
    bed.check_fresh_get()
    bed.check_fresh_get(10240)
    with pytest.raises(FreshGetFailed, match="404|status"):
        bed.check_fresh_get(7)                    # no /doc7 on the image: a clear failure


def test_frames_go_out_at_the_chosen_simulated_time(image):
    bed = Testbed("cheetah", image)
    peer = bed.peer
    t = bed.kernel.now + 250 * MS
    peer.send_at(t, peer.tcp(sport=40001, seq=5, flags="S"))
    with pytest.raises(ValueError, match="already"):
        peer.send_at(bed.kernel.now - 1, peer.tcp(sport=40002))
    bed.run_until(t - 1 * MS)
    assert peer.captured == []
    bed.run_until(t + 100 * MS)
    [synack] = [c for c in peer.captured if c.tcp_to(peer.ip, 40001)]
    assert synack.pkt[TCP].flags == "SA" and synack.pkt[TCP].ack == 6 and t < synack.t < t + 5 * MS


# -- (a) request lines --------------------------------------------------------------------------
_PATHS = st.one_of(
    st.sampled_from([b"/doc100", b"/doc0", b"/", b"/nosuch", b"/../etc/passwd", b"//doc10",
                     b"/doc10/", b"/doc%31%30", b"/%00", b"/doc10?x=1", b"/doc10#f", b"doc10",
                     b"*", b"http://10.0.0.1/doc10", b""]),
    st.binary(max_size=40).map(lambda b: b"/" + b),                  # any bytes, NUL, CR, LF
    st.lists(st.sampled_from([b"%00", b"%2e%2e", b"%2F", b"%", b"%zz", b"%41", b"doc100", b"/",
                              b"..", b"%0d%0a", b"%25"]), max_size=8).map(lambda p: b"/" + b"".join(p)),
    st.integers(100, 3000).map(lambda n: b"/" + b"a" * n),          # very long: several segments
)
_METHODS = st.one_of(st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"get", b"G\x00T",
                                      b"", b"GETX"]),
                     st.binary(min_size=1, max_size=8))
_VERSIONS = st.sampled_from([None, b"HTTP/1.0", b"HTTP/1.1", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1",
                             b"http/1.0", b"HTTP/1.0 extra", b"FTP/1.0", b"HTTP/99.99", b"HTTP/"])
_ENDS = st.sampled_from([b"\r\n\r\n", b"\r\n", b"\n\n", b"\n", b"", b"\r\r",
                         b"\r\nHost: x\r\nAccept: */*\r\n\r\n", b"\r\n" + b"X: " + b"y" * 2000 + b"\r\n\r\n"])


@st.composite
def request_lines(draw) -> bytes:
    """``METHOD SP PATH [SP VERSION] END``: HTTP/0.9 simple requests (no version), odd
    methods, paths and versions, and every kind of missing or bare line end."""
    method, path, version, end = draw(_METHODS), draw(_PATHS), draw(_VERSIONS), draw(_ENDS)
    line = method + b" " + path + (b" " + version if version is not None else b"")
    return line + end


_DOCS = {paper.document_path(n).encode(): paper.document_content(n) for n in paper.DOC_SIZES}


def _expected_reply(request: bytes) -> tuple[str, bytes] | None:
    """What a GET of an existing document must get back, when ``request`` is one: a Full
    Request (HTTP/1.x, CRLF line ends, a blank line) gets a 200 Full-Response with the
    document; a Simple-Request (``GET path CRLF``) gets the bare document, no status line
    (RFC 1945 4.1 and 6, NCSA 1.4's behaviour). None for anything else."""
    line, sep, rest = request.partition(b"\r\n")
    parts = line.split(b" ")
    if not sep or len(parts) not in (2, 3) or parts[0] != b"GET" or parts[1] not in _DOCS:
        return None
    if len(parts) == 2:
        return ("simple", _DOCS[parts[1]]) if rest == b"" else None
    if parts[2] in (b"HTTP/1.0", b"HTTP/1.1") and (rest == b"\r\n" or rest.endswith(b"\r\n\r\n")):
        return ("full", _DOCS[parts[1]])
    return None


def _request_line_case(server: str, image, request: bytes) -> None:
    bed = Testbed(server, image)

    async def case():
        conn = await bed.peer.handshake(41000)
        assert conn is not None, f"{server}: no SYN-ACK to a plain SYN"
        await bed.peer.send_data(conn, request)
        reply = await bed.peer.receive(conn, 1 * S)
        if not (conn.fin or conn.reset):
            await bed.peer.close(conn)              # EOF ends an unfinished request
            reply = await bed.peer.receive(conn, 1 * S)
        return reply

    reply = bed.run(case())
    if reply.startswith(b"HTTP/"):
        head = reply.partition(b"\r\n\r\n")[0]
        parse_response_head(head)                   # a status line that parses
    want = _expected_reply(request)
    if want is not None and want[0] == "simple":
        assert reply == want[1], f"{server}: a Simple-Request must get the bare document, " \
                                 f"got {reply[:80]!r}"
    elif want is not None:
        head, _, body = reply.partition(b"\r\n\r\n")
        assert parse_response_head(head)[0] == 200 and body == want[1], \
            f"{server}: a GET of a document must get 200 and the document, got {reply[:80]!r}"
    bed.check_fresh_get()


@pytest.mark.parametrize("server", SERVERS)
@FAST
@given(request=request_lines())
@example(request=b"GET /doc100\r\n")                        # HTTP/0.9 simple request
@example(request=b"GET /doc1024 HTTP/1.0\r\nHost: x\r\nAccept: */*\r\n\r\n")
@example(request=b"GET /doc\x0010 HTTP/1.0\r\n\r\n")        # NUL in the path
@example(request=b"GET /doc100 HTTP/1.0")                   # no line end at all
@example(request=b"GET /" + b"a" * 3000 + b" HTTP/1.0\r\n\r\n")   # three segments
def test_odd_request_lines_leave_the_server_serving(server, image, request):
    _request_line_case(server, image, request)


test_many_odd_request_lines_leave_the_server_serving = \
    pytest.mark.slow(_property_test(_request_line_case, request_lines(), MANY))




# -- (b) TCP header fields ------------------------------------------------------------------------
_GOOD_OPTIONS = st.lists(st.one_of(
    st.integers(0, 65535).map(lambda v: ("MSS", v)),
    st.integers(0, 14).map(lambda v: ("WScale", v)),
    st.just(("SAckOK", b"")),
    st.tuples(st.integers(0, _MOD - 1), st.integers(0, _MOD - 1)).map(lambda t: ("Timestamp", t)),
    st.just(("NOP", None)),
    st.just(("EOL", None))), max_size=4)


@st.composite
def tcp_headers(draw) -> dict:
    """Fields of one segment: any flags (the two reserved bits too), sequence and ack numbers
    given either relative to what the receiver expects (in and around its window) or absolute,
    any window and urgent pointer, options well-formed or as raw bytes under any data offset
    (0..15 words, fitting the segment or not), a payload, and sometimes a wrong checksum."""
    kind = draw(st.sampled_from(["none", "good", "raw"]))
    if kind == "none":
        opt, dataofs = b"", None
    elif kind == "good":
        opt = bytes(TCP(options=draw(_GOOD_OPTIONS)))[20:]
        dataofs = 5 + len(opt) // 4
    else:
        opt = draw(st.binary(max_size=44))
        dataofs = draw(st.integers(0, 15))
    rel = st.integers(-70000, 70000).map(lambda d: ("rel", d))
    absolute = st.integers(0, _MOD - 1).map(lambda v: ("abs", v))
    return dict(
        flags=draw(st.integers(0, 0xFF)),
        seq=draw(st.one_of(rel, absolute, st.just(("rel", 0)))),
        ack=draw(st.one_of(rel, absolute, st.just(("rel", 0)))),
        window=draw(st.one_of(st.integers(0, 65535), st.sampled_from([0, 1, 65535]))),
        urgptr=draw(st.one_of(st.just(0), st.integers(0, 65535))),
        options=opt, dataofs=dataofs, well_formed=kind != "raw",
        payload=draw(st.one_of(st.just(b""), st.binary(max_size=40))),
        bad_checksum=draw(st.sampled_from([False, False, False, True])))


def _resolve(v: tuple[str, int], base: int) -> int:
    mode, n = v
    return (base + n) % _MOD if mode == "rel" else n


def _odd_segment(peer: RawPeer, h: dict, *, sport: int, seq_base: int, ack_base: int):
    pkt = peer.tcp(sport=sport, seq=_resolve(h["seq"], seq_base), ack=_resolve(h["ack"], ack_base),
                   flags=h["flags"], window=h["window"], urgptr=h["urgptr"],
                   payload=h["options"] + h["payload"], dataofs=h["dataofs"])
    if h["bad_checksum"]:
        pkt = Ether(bytes(pkt))
        pkt[TCP].chksum ^= 0x5A5A
    return pkt


def _sound(h: dict) -> bool:
    """A segment TCP must process (4.4BSD tcp_input drops the others before any state's rules:
    a bad checksum, a data offset under 5 words or past the segment's end); with well-formed
    options only (RFC 1122 4.2.2.5 lets a TCP reset a connection on an illegal option length)."""
    tcp_len = len(h["options"]) + len(h["payload"]) + 20
    off = (h["dataofs"] if h["dataofs"] is not None else 5) * 4
    return not h["bad_checksum"] and h["well_formed"] and 20 <= off <= tcp_len


_RST, _SYN, _ACK, _FIN = 0x04, 0x02, 0x10, 0x01


def _listen_case(server: str, image, h: dict) -> None:
    bed = Testbed(server, image)
    peer, sport = bed.peer, 42000
    isn = 7_000_000
    pkt = _odd_segment(peer, h, sport=sport, seq_base=isn, ack_base=0)
    seq, ack = pkt[TCP].seq, pkt[TCP].ack

    async def case():
        mark = len(peer.captured)
        await peer.send(pkt)
        await bed.kernel.sleep(500 * MS)
        return [c.pkt[TCP] for c in peer.captured[mark:] if c.tcp_to(peer.ip, sport)]

    replies = bed.run(case())
    if _sound(h):
        f = h["flags"]
        # 4.4BSD tcp_input.c, case TCPS_LISTEN (RFC 793 3.9, LISTEN): a RST is dropped; an
        # ACK gets <SEQ=SEG.ACK><CTL=RST>; a segment without SYN is dropped; a SYN gets SYN-ACK.
        if f & _RST or not f & (_ACK | _SYN):
            assert replies == [], f"{server}: answered a LISTEN segment it must drop: {replies}"
        elif f & _ACK:
            assert replies and replies[0].flags & _RST and replies[0].seq == ack, \
                f"{server}: an ACK to LISTEN must get <SEQ=SEG.ACK><CTL=RST>, got {replies}"
        else:
            assert replies and replies[0].flags & (_SYN | _ACK) == _SYN | _ACK, \
                f"{server}: a SYN to LISTEN must get a SYN-ACK, got {replies}"
            if not f & _FIN:
                assert replies[0].ack == (seq + 1) % _MOD, \
                    f"{server}: the SYN-ACK must acknowledge the SYN alone, got {replies[0].ack}"
    bed.check_fresh_get()


def _acceptable(seq: int, length: int, rcv_nxt: int, rcv_wnd: int) -> bool:
    """RFC 793 3.3's test of a segment's acceptability (p. 26 and 69): ``length`` counts the
    data, SYN and FIN."""
    def inside(x: int) -> bool:
        return (x - rcv_nxt) % _MOD < rcv_wnd
    if length == 0:
        return seq == rcv_nxt if rcv_wnd == 0 else inside(seq)
    return rcv_wnd > 0 and (inside(seq) or inside((seq + length - 1) % _MOD))


def _established_case(server: str, image, h: dict) -> None:
    bed = Testbed(server, image)
    peer, sport = bed.peer, 43000

    async def case():
        conn = await peer.handshake(sport, isn=9_000_000)
        assert conn is not None, f"{server}: no SYN-ACK to a plain SYN"
        await bed.kernel.sleep(10 * MS)         # the server has taken the ACK
        pkt = _odd_segment(peer, h, sport=sport, seq_base=conn.snd_nxt, ack_base=conn.rcv_nxt)
        mark = len(peer.captured)
        await peer.send(pkt)
        await bed.kernel.sleep(500 * MS)
        return conn, pkt[TCP].seq, [c.pkt[TCP] for c in peer.captured[mark:]
                                    if c.tcp_to(peer.ip, sport)]

    conn, seq, replies = bed.run(case())
    if _sound(h):
        # RFC 793 3.9 "SEGMENT ARRIVES, Otherwise" (4.4BSD tcp_input.c the same): a RST is
        # never answered; an unacceptable segment gets an ACK of RCV.NXT; a SYN in the window
        # gets a RST.
        f = h["flags"]
        length = len(h["payload"]) + bool(f & _SYN) + bool(f & _FIN)
        if f & _RST:
            assert replies == [], f"{server}: answered a RST: {replies}"
        elif not _acceptable(seq, length, conn.snd_nxt, conn.server_window):
            assert replies and replies[0].flags & (_ACK | _RST) == _ACK \
                and replies[0].ack == conn.snd_nxt, \
                f"{server}: an unacceptable segment must get <ACK={conn.snd_nxt}>, got {replies}"
        elif f & _SYN:
            assert any(r.flags & _RST for r in replies), \
                f"{server}: a SYN in the window must get a RST, got {replies}"
    bed.check_fresh_get()


test_odd_tcp_headers_to_listen_leave_the_server_serving = \
    _property_test(_listen_case, tcp_headers(), FAST)
test_odd_tcp_headers_to_established_leave_the_server_serving = \
    _property_test(_established_case, tcp_headers(), FAST)
test_many_odd_tcp_headers_to_listen = \
    pytest.mark.slow(_property_test(_listen_case, tcp_headers(), MANY))
test_many_odd_tcp_headers_to_established = \
    pytest.mark.slow(_property_test(_established_case, tcp_headers(), MANY))


# -- SYN flood ------------------------------------------------------------------------------------
def _syn_flood_case(server: str, image, count: int, seed: int) -> None:
    """``count`` SYNs from as many spoofed addresses (which answer ARP but never complete the
    handshake), back to back, then ~15 s of the server retransmitting its SYN-ACKs.

    At 15 s the server must answer a ping (its CPU is not frozen). A fresh client's GET must
    then be served once the flood's embryonic connections are gone: a server with 4.3BSD's
    bounded listen queue (uipc_socket2.c sonewconn: at most 3/2 of the backlog, embryonic
    connections included; NCSA and Harvest on Ultrix) drops new SYNs, a real client's
    included, until the connection-establishment timer (TCPTV_KEEP_INIT, 75 s: tcp_timer.h)
    has dropped them, as the real systems did under the SYN floods of 1996 (CERT CA-1996-21).
    """
    bed = Testbed(server, image, seed=seed)
    start = bed.kernel.now

    async def flood():
        ips = await bed.peer.syn_flood(count)
        await bed.kernel.sleep_until(start + 15 * S)
        return ips, await bed.peer.ping()

    ips, pong = bed.run(flood())
    assert bed.peer.sent + bed.peer.lost >= count
    answered = {c.pkt[IP].dst for c in bed.peer.captured
                if c.pkt.haslayer(TCP) and c.pkt[TCP].flags & 0x12 == 0x12}
    assert answered & set(ips), f"{server} answered none of the {count} SYNs"
    assert pong is not None, f"{server} did not answer a ping 15 s into a {count}-SYN flood"
    bed.run_until(start + TCPTV_KEEP_INIT + 5 * S)
    bed.check_fresh_get()


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_syn_flood_leaves_the_server_serving(server, seed, image):
    _syn_flood_case(server, image, 300, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_3000_address_syn_flood_does_not_freeze_cheetah(seed, image):
    _syn_flood_case("cheetah", image, 3000, seed)
