"""The Internet checksum against scapy's, partial sums, and RFC 1624's incremental update."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

from sw.libos.net import checksum as ck


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=600))
def test_checksum_matches_scapy(data):
    assert ck.checksum(data) == scapy_checksum(data)
    # A buffer with its checksum written in verifies.
    if len(data) % 2 == 0:
        assert ck.verify(data + ck.checksum(data).to_bytes(2, "big"))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=100), max_size=6))
def test_combining_partial_sums_of_pieces_at_any_offset(pieces):
    whole = b"".join(pieces)
    combined = ck.combine((ck.ones_sum(p), len(p)) for p in pieces)
    assert ck.finish(combined) == ck.checksum(whole)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0),
       st.data())
def test_incremental_update_equals_recomputation(data, draw):
    i = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new = draw.draw(st.integers(0, 0xFFFF))
    old_c = ck.checksum(data)
    changed = data[:i] + new.to_bytes(2, "big") + data[i + 2:]
    got = ck.incremental_update(old_c, int.from_bytes(data[i:i + 2], "big"), new)
    # RFC 1624: equal up to the two representations of zero.
    assert got == ck.checksum(changed) or {got, ck.checksum(changed)} == {0, 0xFFFF}


def test_known_values_and_errors():
    # RFC 1071 section 3's example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert ck.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert ck.swap(0x1234) == 0x3412
    assert ck.ones_sum(b"") == 0 and ck.ones_sum(b"\xff\xff") == 0xFFFF
    with pytest.raises(TypeError, match="bytes-like"):
        ck.ones_sum("text")
    with pytest.raises(ValueError, match="0x1ffff|65535|131071"):
        ck.add(0x1FFFF, 0)
    with pytest.raises(ValueError, match="length"):
        ck.combine([(0, -1)])
    with pytest.raises(ValueError, match="4 bytes"):
        ck.pseudo_header_sum(b"\0" * 3, b"\0" * 4, 6, 20)
