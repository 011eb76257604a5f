"""ICMP echo (RFC 792): the stack answers echo requests and can send its own."""
from __future__ import annotations

from dataclasses import dataclass

from . import checksum as ck

__all__ = ["ECHO_REPLY", "ECHO_REQUEST", "IcmpMessage", "build_echo", "parse"]

ECHO_REPLY = 0
ECHO_REQUEST = 8


@dataclass(frozen=True)
class IcmpMessage:
    """An ICMP message; ``ident``/``seq`` are meaningful for echo messages only."""

    type: int
    code: int
    ident: int
    seq: int
    data: bytes


def build_echo(type_: int, ident: int, seq: int, data: bytes = b"") -> bytes:
    """An echo request or reply with its checksum.

    Raises
    ------
    ValueError
        If ``type_`` is not an echo type or ``ident``/``seq`` are not 16-bit.
    """
    if type_ not in (ECHO_REQUEST, ECHO_REPLY):
        raise ValueError(f"not an ICMP echo type: {type_!r}")
    if not 0 <= ident <= 0xFFFF or not 0 <= seq <= 0xFFFF:
        raise ValueError(f"echo ident and seq must be 16-bit, not {ident!r}, {seq!r}")
    body = bytes([type_, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + bytes(data)
    c = ck.checksum(body)
    return body[:2] + c.to_bytes(2, "big") + body[4:]


def parse(data: bytes) -> IcmpMessage:
    """Check the checksum and parse.

    Raises
    ------
    ValueError
        If the message is shorter than 8 bytes or its checksum is wrong.
    """
    if len(data) < 8:
        raise ValueError(f"ICMP message of {len(data)} bytes is shorter than 8")
    if not ck.verify(data):
        raise ValueError("ICMP checksum is wrong")
    return IcmpMessage(data[0], data[1], int.from_bytes(data[4:6], "big"),
                       int.from_bytes(data[6:8], "big"), bytes(data[8:]))
