"""UDP (RFC 768): build and parse datagrams with the pseudo-header checksum.

The checksum covers the IPv4 pseudo-header (source and destination addresses, protocol 17, UDP
length), the header and the data (:func:`sw.libos.net.checksum.pseudo_header_sum`). A computed
checksum of 0 is sent as 0xffff, since 0 in the field means "no checksum" (RFC 768); a received
datagram with 0 there is accepted unchecked, one with any other wrong value is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import checksum as ck
from .ipv4 import PROTO_UDP

__all__ = ["HEADER_LEN", "MAX_PAYLOAD", "UdpDatagram", "UdpError", "build", "parse"]

HEADER_LEN = 8
#: The most data one datagram carries (the 16-bit length field counts the header too).
MAX_PAYLOAD = 0xFFFF - HEADER_LEN


class UdpError(ValueError):
    """A datagram the receiver must drop; ``reason`` names the counter it goes to
    (``"short"``, ``"length"`` or ``"checksum"``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class UdpDatagram:
    """A parsed datagram (``checksummed``: False when the sender sent no checksum)."""

    src_port: int
    dst_port: int
    payload: bytes
    checksummed: bool = True


def _port(name: str, p) -> int:
    if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 0xFFFF:
        raise ValueError(f"{name} must be a port number 0..65535, not {p!r}")
    return p


def _checked(src_ip, dst_ip, data, what: str) -> tuple[bytes, bytes, bytes]:
    """The two addresses and ``data`` (the payload or the datagram) as bytes, or the error."""
    for name, a in (("src_ip", src_ip), ("dst_ip", dst_ip)):
        if not isinstance(a, (bytes, bytearray)) or len(a) != 4:
            raise ValueError(f"{name} must be 4 bytes of IPv4 address, not {a!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a UDP {what} must be bytes, not {type(data).__name__}")
    return bytes(src_ip), bytes(dst_ip), bytes(data)


def build(src_ip: bytes, dst_ip: bytes, src_port: int, dst_port: int, payload: bytes) -> bytes:
    """The UDP header and ``payload``, with the checksum for the two addresses.

    Raises
    ------
    ValueError
        For an address that is not 4 bytes, a port outside 0..65535 or a payload longer than
        :data:`MAX_PAYLOAD`.
    TypeError
        If ``payload`` is not bytes-like.
    """
    src, dst, payload = _checked(src_ip, dst_ip, payload, "payload")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds UDP's {MAX_PAYLOAD}")
    length = HEADER_LEN + len(payload)
    head = (_port("src_port", src_port).to_bytes(2, "big")
            + _port("dst_port", dst_port).to_bytes(2, "big") + length.to_bytes(2, "big"))
    c = ck.checksum(head + b"\0\0" + payload, ck.pseudo_header_sum(src, dst, PROTO_UDP, length))
    return head + (c or 0xFFFF).to_bytes(2, "big") + payload


def parse(src_ip: bytes, dst_ip: bytes, data: bytes) -> UdpDatagram:
    """Check and split the datagram ``data`` (an IP payload) sent from ``src_ip`` to ``dst_ip``.

    Bytes after the UDP length (link padding) are ignored.

    Raises
    ------
    UdpError
        ``"short"`` (fewer than 8 bytes), ``"length"`` (the length field is below 8 or beyond
        the bytes received) or ``"checksum"`` (a non-zero checksum that does not verify).
    ValueError
        For an address that is not 4 bytes.
    TypeError
        If ``data`` is not bytes-like.
    """
    src, dst, data = _checked(src_ip, dst_ip, data, "datagram")
    n = len(data)
    if n < HEADER_LEN:
        raise UdpError("short", f"UDP datagram of {n} bytes is shorter than its 8-byte header")
    length = int.from_bytes(data[4:6], "big")
    if not HEADER_LEN <= length <= n:
        raise UdpError("length", f"UDP length {length} is invalid for {n} bytes received")
    data = data[:length]
    checksummed = data[6:8] != b"\0\0"
    if checksummed and not ck.verify(data, ck.pseudo_header_sum(src, dst, PROTO_UDP, length)):
        raise UdpError("checksum", "UDP checksum is wrong")
    return UdpDatagram(int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big"),
                       data[HEADER_LEN:], checksummed)
