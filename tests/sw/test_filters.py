"""DPF-style packet filters: atoms, exact conflict detection, the merged trie against a brute-
force reference, and the linear (MPF-style) contrast."""
import random

import pytest

from sim.media.ethernet import build_frame
from sw.exokernel.filters import (Atom, Filter, FilterConflict, FilterError, FilterTable,
                                  LinearFilterTable, ethertype_filter, tcp_filter, udp_filter)

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])


def ip_frame(proto, sport, dport, src=B, dst=A, payload=b"hello"):
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0]) + src + dst
    l4 = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(16)
    return build_frame("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800, ip + l4 + payload)


@pytest.mark.parametrize("kw, msg", [
    (dict(offset=-1, size=1, value=0), "offset"),
    (dict(offset=0, size=3, value=0), "size must be 1, 2 or 4"),
    (dict(offset=True, size=1, value=0), "offset"),
    (dict(offset=1512, size=4, value=0), "past the end"),
    (dict(offset=0, size=1, value=0x100), "bits outside its mask"),
    (dict(offset=0, size=1, value=3, mask=0x1), "bits outside its mask"),
    (dict(offset=0, size=2, value=0, mask=0x10000), "mask must be"),
    (dict(offset=0, size=2, value=0, mask=0), "mask must be"),
])
def test_bad_atoms_are_refused_naming_the_problem(kw, msg):
    with pytest.raises(FilterError, match=msg):
        Atom(**kw)


def test_filters_refuse_empty_non_atoms_and_contradictions():
    with pytest.raises(FilterError, match="at least one atom"):
        Filter([])
    with pytest.raises(FilterError, match="made of Atoms"):
        Filter([(12, 2, 0x800)])
    with pytest.raises(FilterError, match="disagree on byte 12"):
        Filter([Atom(12, 2, 0x0800), Atom(12, 1, 0x86)])
    # Same byte, compatible bits: fine, and canonical order does not depend on input order.
    f1 = Filter([Atom(12, 2, 0x0800), Atom(12, 1, 0x08)])
    f2 = Filter([Atom(12, 1, 0x08), Atom(12, 2, 0x0800)])
    assert f1 == f2 and f1.atoms[0].offset == 12


def test_port_and_address_arguments_are_checked():
    with pytest.raises(FilterError, match="local_port must be a port number"):
        tcp_filter(70000)
    with pytest.raises(FilterError, match="remote_ip must be 4 bytes"):
        udp_filter(53, remote_ip=b"\x01\x02")
    with pytest.raises(FilterError, match="EtherType"):
        ethertype_filter(-1)


def test_overlap_is_exact_for_bit_constraints():
    assert tcp_filter(80).overlaps(tcp_filter(80, remote_ip=B))         # one refines the other
    assert not tcp_filter(80).overlaps(tcp_filter(81))
    assert not tcp_filter(80).overlaps(udp_filter(80))
    assert tcp_filter(80).overlaps(ethertype_filter(0x0800))            # IP claims all TCP
    assert not ethertype_filter(0x0806).overlaps(tcp_filter(80))
    # masks: low bit of byte 0 set vs a value with it clear
    assert not Filter([Atom(0, 1, 1, 1)]).overlaps(Filter([Atom(0, 1, 0x10, 0x11)]))
    assert Filter([Atom(0, 1, 1, 1)]).overlaps(Filter([Atom(0, 1, 0x10, 0x10)]))


def test_other_owners_overlapping_filter_is_refused_and_table_unchanged():
    t = FilterTable()
    fid = t.install(tcp_filter(80), "victim")
    frame = ip_frame(6, 1234, 80)
    before = t.demux(frame)
    for bad in (tcp_filter(80, remote_ip=B), ethertype_filter(0x0800), tcp_filter(80)):
        with pytest.raises(FilterConflict, match=r"'thief' may not install .* owned by 'victim'"):
            t.install(bad, "thief")
    assert len(t) == 1 and t.demux(frame) == before and before.owner == "victim"
    assert before.filter_id == fid
    # the owner itself may refine its own filter; the more specific one wins
    fid2 = t.install(tcp_filter(80, remote_ip=B), "victim")
    assert t.demux(frame).filter_id == fid2
    assert t.demux(ip_frame(6, 1234, 80, src=bytes([1, 2, 3, 4]))).filter_id == fid
    t.install(tcp_filter(81), "other")                   # disjoint: fine
    assert t.demux(ip_frame(6, 1, 81)).owner == "other"


def test_remove_only_by_owner_and_prunes():
    t = FilterTable()
    fid = t.install(tcp_filter(80), "a")
    with pytest.raises(PermissionError, match="'b' may not remove filter 1 owned by 'a'"):
        t.remove(fid, "b")
    with pytest.raises(KeyError, match="no filter 99"):
        t.remove(99, "a")
    t.remove(fid, "a")
    assert len(t) == 0 and not t._root.branches and not t._root.accepts
    assert t.demux(ip_frame(6, 1, 80)).owner is None
    t.install(tcp_filter(80), "b")                       # the traffic is free again
    assert t.demux(ip_frame(6, 1, 80)).owner == "b"


def test_install_refuses_non_filters():
    with pytest.raises(TypeError, match="needs a Filter"):
        FilterTable().install("tcp 80", "a")
    with pytest.raises(TypeError, match="frame of bytes"):
        FilterTable().demux("not bytes")


def test_trie_and_linear_agree_with_brute_force_on_random_filters():
    rng = random.Random(5)
    trie, linear = FilterTable(), LinearFilterTable()
    installed = []
    for i in range(120):
        owner = f"env{rng.randrange(8)}"
        kind = rng.randrange(3)
        if kind == 0:
            f = tcp_filter(rng.randrange(1, 40), remote_port=rng.choice([None, 1, 2, 3]))
        elif kind == 1:
            f = udp_filter(rng.randrange(1, 40), remote_ip=rng.choice([None, A, B]))
        else:
            f = ethertype_filter(rng.choice([0x0806, 0x86DD, 0x8035]))
        try:
            fid = trie.install(f, owner)
        except FilterConflict:
            with pytest.raises(FilterConflict):
                linear.install(f, owner)
            continue
        assert linear.install(f, owner) == fid
        installed.append((fid, f, owner))
    assert len(installed) > 20
    for _ in range(400):
        proto = rng.choice([6, 17])
        frame = ip_frame(proto, rng.randrange(0, 5), rng.randrange(0, 42), src=rng.choice([A, B]))
        if rng.random() < 0.1:
            frame = build_frame("02:00:00:00:00:01", "02:00:00:00:00:02",
                                rng.choice([0x0806, 0x86DD, 0x8035, 0x9000]), b"x")
        matches = [(len(f.atoms), -fid, o) for fid, f, o in installed if f.matches(frame)]
        owners = {m[2] for m in matches}
        assert len(owners) <= 1, "two owners accept one frame: conflict check failed"
        want = max(matches)[2] if matches else None
        want_id = -max(matches)[1] if matches else None
        r1, r2 = trie.demux(frame), linear.demux(frame)
        assert (r1.owner, r1.filter_id) == (r2.owner, r2.filter_id) == (want, want_id)
        assert r2.filters_evaluated == len(installed)


def test_trie_work_does_not_grow_with_filters_but_linear_work_does():
    trie_tests, linear_filters = [], []
    for n in (1, 2, 4, 8, 16, 32, 64):
        trie, linear = FilterTable(), LinearFilterTable()
        for i in range(n):
            trie.install(tcp_filter(1000 + i), f"e{i}")
            linear.install(tcp_filter(1000 + i), f"e{i}")
        frame = ip_frame(6, 5, 1000 + n - 1)
        r1, r2 = trie.demux(frame), linear.demux(frame)
        assert r1.owner == r2.owner == f"e{n - 1}"
        trie_tests.append(r1.tests)
        linear_filters.append(r2.filters_evaluated)
    assert trie_tests == [3] * 7                 # type, protocol, hashed port: depth only
    assert linear_filters == [1, 2, 4, 8, 16, 32, 64]
