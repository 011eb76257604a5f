"""ARP for IPv4 over Ethernet (RFC 826): packets and the resolution cache."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["ArpPacket", "ArpCache", "OP_REQUEST", "OP_REPLY", "ARP_LEN"]

OP_REQUEST = 1
OP_REPLY = 2
ARP_LEN = 28
_HDR = bytes.fromhex("0001" "0800" "06" "04")      # Ethernet, IPv4, 6-byte MAC, 4-byte IP


@dataclass(frozen=True)
class ArpPacket:
    """An ARP packet for IPv4 over Ethernet."""

    op: int
    sha: bytes
    spa: bytes
    tha: bytes
    tpa: bytes

    def __bytes__(self) -> bytes:
        return _HDR + self.op.to_bytes(2, "big") + self.sha + self.spa + self.tha + self.tpa

    @classmethod
    def parse(cls, data: bytes) -> "ArpPacket":
        """Parse an ARP packet (trailing padding ignored).

        Raises
        ------
        ValueError
            If it is too short or not Ethernet/IPv4 ARP.
        """
        if len(data) < ARP_LEN:
            raise ValueError(f"ARP packet of {len(data)} bytes is shorter than {ARP_LEN}")
        if data[:6] != _HDR:
            raise ValueError(f"not an Ethernet/IPv4 ARP packet: header {data[:6].hex()}")
        op = int.from_bytes(data[6:8], "big")
        if op not in (OP_REQUEST, OP_REPLY):
            raise ValueError(f"unknown ARP operation {op}")
        return cls(op, bytes(data[8:14]), bytes(data[14:18]), bytes(data[18:24]),
                   bytes(data[24:28]))


class ArpCache:
    """IPv4 -> MAC entries with expiry, least recently added evicted when full.

    Parameters
    ----------
    timeout_ps : int
        Lifetime of a learned entry (static entries never expire).
    size : int
        Maximum number of entries.

    Raises
    ------
    ValueError
        For a non-positive timeout or size.
    """

    def __init__(self, timeout_ps: int, size: int = 256):
        if not isinstance(timeout_ps, int) or timeout_ps <= 0:
            raise ValueError(f"ARP timeout must be a positive int of ps, not {timeout_ps!r}")
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"ARP cache size must be a positive int, not {size!r}")
        self.timeout_ps = timeout_ps
        self.size = size
        self._entries: OrderedDict[bytes, tuple[bytes, int | None]] = OrderedDict()

    def lookup(self, ip: bytes, now: int) -> bytes | None:
        """The MAC for ``ip``, or None if unknown or expired."""
        e = self._entries.get(ip)
        if e is None:
            return None
        hw, expires = e
        if expires is not None and now >= expires:
            del self._entries[ip]
            return None
        return hw

    def update(self, ip: bytes, hw: bytes, now: int, *, static: bool = False) -> None:
        """Learn (or refresh) ``ip`` -> ``hw``."""
        if len(ip) != 4 or len(hw) != 6:
            raise ValueError(f"bad ARP entry {ip!r} -> {hw!r}")
        old = self._entries.pop(ip, None)
        if old is not None and old[1] is None and not static:
            self._entries[ip] = old                 # a static entry is not overridden
            return
        self._entries[ip] = (hw, None if static else now + self.timeout_ps)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ip: bytes) -> bool:
        return ip in self._entries
