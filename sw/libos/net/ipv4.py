"""IPv4 headers (RFC 791): build and parse with the header checksum; no fragmentation.

The library never fragments (it sends with Don't Fragment set and segments TCP to the MTU) and
refuses to reassemble: a received fragment is dropped and counted by the stack.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import checksum as ck

__all__ = ["PROTO_ICMP", "PROTO_TCP", "PROTO_UDP", "HEADER_LEN", "IpHeader", "IpError", "addr",
           "format_addr", "build_header", "parse"]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
HEADER_LEN = 20
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF


class IpError(ValueError):
    """A datagram that the stack must drop; ``reason`` is the counter it goes to."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def addr(a: str | bytes) -> bytes:
    """A 4-byte IPv4 address from dotted-quad text or 4 bytes.

    Raises
    ------
    ValueError
        If ``a`` is not an IPv4 address.
    """
    if isinstance(a, (bytes, bytearray)):
        if len(a) != 4:
            raise ValueError(f"an IPv4 address is 4 bytes, not {bytes(a)!r}")
        return bytes(a)
    if isinstance(a, str):
        try:
            return ipaddress.IPv4Address(a).packed
        except ipaddress.AddressValueError:
            raise ValueError(f"not an IPv4 address: {a!r}") from None
    raise ValueError(f"an IPv4 address must be str or 4 bytes, not {a!r}")


def format_addr(a: bytes) -> str:
    """``b'\\n\\0\\0\\x01'`` -> ``'10.0.0.1'``."""
    return str(ipaddress.IPv4Address(bytes(a)))


@dataclass(frozen=True)
class IpHeader:
    """The fields of an IPv4 header that the stack uses."""

    src: bytes
    dst: bytes
    proto: int
    total_length: int
    ident: int = 0
    ttl: int = 64
    flags_offset: int = FLAG_DF
    tos: int = 0
    header_length: int = HEADER_LEN

    @property
    def payload_length(self) -> int:
        return self.total_length - self.header_length


def build_header(src: bytes, dst: bytes, proto: int, payload_length: int, *, ident: int = 0,
                 ttl: int = 64, tos: int = 0, dont_fragment: bool = True) -> bytes:
    """A 20-byte IPv4 header (no options) with its checksum.

    Raises
    ------
    ValueError
        For a field out of range (the datagram would exceed 65535 bytes, ttl not 1..255, ...).
    """
    total = HEADER_LEN + payload_length
    if not 0 <= payload_length or total > 0xFFFF:
        raise ValueError(f"payload length {payload_length} does not fit an IPv4 datagram")
    if not 1 <= ttl <= 255:
        raise ValueError(f"ttl must be 1..255, not {ttl!r}")
    if not 0 <= proto <= 255 or not 0 <= tos <= 255 or not 0 <= ident <= 0xFFFF:
        raise ValueError(f"bad IPv4 field: proto={proto!r} tos={tos!r} ident={ident!r}")
    h = bytearray(20)
    h[0] = 0x45
    h[1] = tos
    h[2:4] = total.to_bytes(2, "big")
    h[4:6] = ident.to_bytes(2, "big")
    h[6:8] = (FLAG_DF if dont_fragment else 0).to_bytes(2, "big")
    h[8] = ttl
    h[9] = proto
    h[12:16] = addr(src)
    h[16:20] = addr(dst)
    h[10:12] = ck.checksum(h).to_bytes(2, "big")
    return bytes(h)


def parse(data: bytes) -> tuple[IpHeader, bytes]:
    """Check and split a datagram: ``(header, payload)`` (link padding removed).

    Raises
    ------
    IpError
        With ``reason`` ``"short"``, ``"version"``, ``"header_length"``, ``"length"``,
        ``"checksum"`` or ``"fragment"`` (fragments are refused, never reassembled).
    """
    n = len(data)
    if n < HEADER_LEN:
        raise IpError("short", f"datagram of {n} bytes is shorter than an IPv4 header")
    if data[0] >> 4 != 4:
        raise IpError("version", f"IP version {data[0] >> 4}, not 4")
    hl = (data[0] & 0xF) * 4
    if hl < HEADER_LEN or hl > n:
        raise IpError("header_length", f"IPv4 header length {hl} is invalid for {n} bytes")
    total = int.from_bytes(data[2:4], "big")
    if total < hl or total > n:
        raise IpError("length", f"IPv4 total length {total} is invalid for {n} bytes received")
    if not ck.verify(data[:hl]):
        raise IpError("checksum", "IPv4 header checksum is wrong")
    fo = int.from_bytes(data[6:8], "big")
    if fo & (FLAG_MF | OFFSET_MASK):
        raise IpError("fragment", f"IPv4 fragment (flags/offset {fo:#06x}) refused: "
                                  "the library does not reassemble")
    hdr = IpHeader(bytes(data[12:16]), bytes(data[16:20]), data[9], total,
                   int.from_bytes(data[4:6], "big"), data[8], fo, data[1], hl)
    return hdr, bytes(data[hl:total])
