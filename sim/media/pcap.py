"""Packet captures of simulated media: a deterministic pcapng writer (and a small reader).

Every frame a simulated medium carries can be written here with its *simulated* timestamp, so
Wireshark/tshark, scapy or dpkt read a run's traffic as they would a capture from a real wire.

Why pcapng and not classic pcap
-------------------------------
Our Ethernet frames are whole MAC frames *including* the 4-byte FCS. Classic pcap has no
portable way to say so (its FCS bits in the link-type field are ignored by most readers), so
Wireshark would show the FCS as an unexplained "trailer". pcapng's Interface Description Block
carries ``if_fcslen = 4``, which Wireshark passes to its Ethernet dissector (it then shows, and
with ``eth.check_fcs`` verifies, the FCS), and ``if_tsresol = 9`` gives nanosecond timestamps.
One file may also hold several interfaces (an Ethernet segment and an ATM link, say), each with
its own link type.

Determinism
-----------
No option that depends on the host is written: no wall-clock time, no hostname, no OS name,
no user application version string. The same packets in the same order give the same bytes.
Timestamps are the simulated time in picoseconds, floored to nanoseconds (the 10 Mbit/s bit time
is 100 ns, so nothing on an Ethernet is lost by that floor).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_SUNATM",
    "PcapError",
    "PcapNgWriter",
    "PcapPacket",
    "read_pcapng",
]

#: pcap/pcapng link type numbers (tcpdump.org "LINK-LAYER HEADER TYPES").
LINKTYPE_ETHERNET = 1
LINKTYPE_SUNATM = 123

# pcapng block types and option codes (IETF draft-ietf-opsawg-pcapng).
_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_ENDOFOPT = 0
_OPT_COMMENT = 1
_IF_NAME = 2
_IF_TSRESOL = 9
_IF_FCSLEN = 13

_PS_PER_NS = 1000


class PcapError(ValueError):
    """A capture that cannot be written or parsed (bad argument, truncated or foreign file)."""


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _options(opts: list[bytes]) -> bytes:
    if not opts:
        return b""
    return b"".join(opts) + struct.pack("<HH", _OPT_ENDOFOPT, 0)


def _block(block_type: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapNgWriter:
    """Write packets with simulated timestamps to a pcapng file (little-endian, one section).

    Parameters
    ----------
    target
        A path (the file is created or truncated) or a binary file object opened for writing
        (it is not closed by :meth:`close` unless the writer opened it).

    Examples
    --------
    >>> import io
    >>> buf = io.BytesIO()
    >>> w = PcapNgWriter(buf)
    >>> eth = w.add_interface(name="seg0")
    >>> w.write(eth, 57_600_000, bytes(64))      # t = 57.6 us in picoseconds
    >>> w.packets
    1
    """

    def __init__(self, target: str | os.PathLike | BinaryIO):
        if isinstance(target, (str, os.PathLike)):
            self._f: BinaryIO = open(target, "wb")
            self._owns = True
        elif hasattr(target, "write"):
            self._f = target
            self._owns = False
        else:
            raise PcapError(f"pcap target must be a path or a binary file object, not {target!r}")
        self._interfaces: list[tuple[int, int]] = []   # (linktype, snaplen)
        self._last_ns = 0
        self.packets = 0
        self.closed = False
        # Section Header Block: version 1.0, section length unknown (-1), no options (see the
        # module docstring: nothing host-dependent goes in).
        self._f.write(_block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)))

    def add_interface(self, *, linktype: int = LINKTYPE_ETHERNET, name: str = "eth0",
                      fcs_len: int | None = 4, snaplen: int = 0) -> int:
        """Declare a capture interface; returns its id for :meth:`write`.

        Parameters
        ----------
        linktype
            pcap link type of the packets (``LINKTYPE_ETHERNET``, ...).
        name
            ``if_name``: shown by Wireshark as the interface name (use the medium's name).
        fcs_len
            Bytes of frame check sequence at the end of every packet (``if_fcslen``); 4 for our
            Ethernet frames, ``None`` to leave the option out.
        snaplen
            Largest packet stored; 0 means no limit (pcapng's convention).
        """
        self._check_open()
        if not isinstance(linktype, int) or not 0 <= linktype <= 0xFFFF:
            raise PcapError(f"linktype must be a 16-bit integer, not {linktype!r}")
        if not isinstance(snaplen, int) or snaplen < 0:
            raise PcapError(f"snaplen must be a non-negative integer, not {snaplen!r}")
        if fcs_len is not None and not (isinstance(fcs_len, int) and 0 <= fcs_len <= 255):
            raise PcapError(f"fcs_len must be None or 0..255 bytes, not {fcs_len!r}")
        opts = [_option(_IF_NAME, name.encode("utf-8")),
                _option(_IF_TSRESOL, bytes([9]))]          # 10^-9 s: nanoseconds
        if fcs_len is not None:
            opts.append(_option(_IF_FCSLEN, bytes([fcs_len])))
        body = struct.pack("<HHI", linktype, 0, snaplen) + _options(opts)
        self._f.write(_block(_IDB, body))
        self._interfaces.append((linktype, snaplen))
        return len(self._interfaces) - 1

    def write(self, interface: int, t_ps: int, data: bytes, *, comment: str | None = None) -> None:
        """Write one packet seen on ``interface`` at simulated time ``t_ps`` (picoseconds).

        Raises
        ------
        PcapError
            For an unknown interface, a negative time, a time earlier than the previous
            packet's (captures must be in time order), or data that is not bytes.
        """
        self._check_open()
        if not isinstance(interface, int) or not 0 <= interface < len(self._interfaces):
            raise PcapError(f"unknown pcap interface {interface!r} "
                            f"({len(self._interfaces)} declared)")
        if not isinstance(t_ps, int) or t_ps < 0:
            raise PcapError(f"packet time must be a non-negative integer of ps, not {t_ps!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise PcapError(f"packet data must be bytes, not {type(data).__name__}")
        ns = t_ps // _PS_PER_NS
        if ns < self._last_ns:
            raise PcapError(f"packet at {ns} ns is earlier than the previous one at "
                            f"{self._last_ns} ns")
        self._last_ns = ns
        data = bytes(data)
        snaplen = self._interfaces[interface][1]
        captured = data if snaplen == 0 else data[:snaplen]
        opts = [] if comment is None else [_option(_OPT_COMMENT, comment.encode("utf-8"))]
        body = (struct.pack("<IIIII", interface, ns >> 32, ns & 0xFFFF_FFFF,
                            len(captured), len(data))
                + _pad4(captured) + _options(opts))
        self._f.write(_block(_EPB, body))
        self.packets += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._f.flush()
        if self._owns:
            self._f.close()

    def _check_open(self) -> None:
        if self.closed:
            raise PcapError("pcap writer is closed")

    def __enter__(self) -> "PcapNgWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class PcapPacket:
    """One packet read back from a capture."""

    interface: int
    t_ns: int
    data: bytes
    orig_len: int
    comment: str | None = None


def read_pcapng(source: str | os.PathLike | bytes) -> tuple[list[dict], list[PcapPacket]]:
    """Parse a little-endian pcapng file as written by :class:`PcapNgWriter`.

    A small reader for tests and tools (the independent check is scapy/dpkt/tshark). Returns
    ``(interfaces, packets)``: each interface a dict with ``linktype``, ``snaplen``, ``name``,
    ``tsresol`` and ``fcs_len``; packets with their timestamps in nanoseconds.

    Raises
    ------
    PcapError
        If the data is not a pcapng section this reader understands, or is truncated.
    """
    if isinstance(source, (bytes, bytearray)):
        buf = bytes(source)
    else:
        with open(source, "rb") as f:
            buf = f.read()
    interfaces: list[dict] = []
    packets: list[PcapPacket] = []
    pos = 0
    if len(buf) < 28 or struct.unpack_from("<I", buf, 0)[0] != _SHB:
        raise PcapError("not a pcapng file (no section header block at offset 0)")
    if struct.unpack_from("<I", buf, 8)[0] != _BYTE_ORDER_MAGIC:
        raise PcapError("only little-endian pcapng sections are supported")
    while pos < len(buf):
        if pos + 12 > len(buf):
            raise PcapError(f"truncated block header at offset {pos}")
        btype, total = struct.unpack_from("<II", buf, pos)
        if total < 12 or total % 4 or pos + total > len(buf):
            raise PcapError(f"bad block length {total} at offset {pos}")
        if struct.unpack_from("<I", buf, pos + total - 4)[0] != total:
            raise PcapError(f"block at offset {pos}: trailing length does not match")
        body = buf[pos + 8: pos + total - 4]
        if btype == _IDB:
            linktype, _, snaplen = struct.unpack_from("<HHI", body, 0)
            opts = _parse_options(body[8:])
            interfaces.append({
                "linktype": linktype, "snaplen": snaplen,
                "name": opts.get(_IF_NAME, b"").decode("utf-8") or None,
                "tsresol": opts[_IF_TSRESOL][0] if _IF_TSRESOL in opts else 6,
                "fcs_len": opts[_IF_FCSLEN][0] if _IF_FCSLEN in opts else None,
            })
        elif btype == _EPB:
            iface, hi, lo, caplen, origlen = struct.unpack_from("<IIIII", body, 0)
            if iface >= len(interfaces):
                raise PcapError(f"packet at offset {pos} names undeclared interface {iface}")
            if interfaces[iface]["tsresol"] != 9:
                raise PcapError("only nanosecond (if_tsresol=9) interfaces are supported")
            data = body[20: 20 + caplen]
            if len(data) != caplen:
                raise PcapError(f"packet at offset {pos} is truncated")
            opts = _parse_options(body[20 + caplen + (-caplen % 4):])
            comment = opts[_OPT_COMMENT].decode("utf-8") if _OPT_COMMENT in opts else None
            packets.append(PcapPacket(iface, (hi << 32) | lo, data, origlen, comment))
        pos += total
    return interfaces, packets


def _parse_options(b: bytes) -> dict[int, bytes]:
    opts: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(b):
        code, length = struct.unpack_from("<HH", b, pos)
        if code == _OPT_ENDOFOPT:
            break
        opts[code] = b[pos + 4: pos + 4 + length]
        pos += 4 + length + (-length % 4)
    return opts
