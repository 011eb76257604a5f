"""AAL5 (ITU-T I.363.5): the CPCS-PDU, its CRC-32, segmentation into cells and reassembly.

A reference model in pure Python (floor 1: no ``hw`` import), used by the ATM link capture
(:mod:`sim.media.atm`) and by the tests of any ATM card that segments or reassembles in gateware.

CPCS-PDU
--------
``payload (0..65535 bytes) | pad (0..47 bytes of 0) | CPCS-UU (1) | CPI (1) | Length (2) |
CRC-32 (4)``, the pad chosen so the whole PDU is a multiple of 48 bytes, i.e. a whole number of
cell payloads. ``Length`` is the payload length (big-endian). The CRC covers everything before it
(payload, pad, UU, CPI, Length).

CRC-32
------
I.363.5 uses the generator of IEEE 802.3 (0x04C11DB7) but *not* reflected: bits are taken most
significant first, the register starts at all ones, and the result is complemented and sent most
significant byte first. That is the catalogue's CRC-32/BZIP2 (check value over ``b"123456789"``:
``0xFC891918``). It is computed here with :func:`zlib.crc32` (the reflected form of the same
polynomial) on bit-reversed bytes and bit-reversing the result, which is exact and runs at C
speed; :func:`crc32_aal5_bitwise` is the slow textbook definition the tests check it against.

Segmentation
------------
Every cell of a PDU carries 48 bytes; the last one is marked by the ATM-layer-user-to-user bit
of the cell header's payload type (PT = 0b001, "end of SDU"); the others have PT = 0b000.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = [
    "CELL_PAYLOAD", "TRAILER_LEN", "MAX_SDU",
    "Aal5Error", "Aal5CrcError", "Aal5Pdu", "Aal5Reassembler",
    "crc32_aal5", "crc32_aal5_bitwise", "pdu_len", "build_pdu", "parse_pdu",
    "segment", "reassemble",
]

#: Bytes of payload in one ATM cell.
CELL_PAYLOAD = 48
#: CPCS-UU + CPI + Length + CRC-32.
TRAILER_LEN = 8
#: Largest CPCS-SDU (the 16-bit Length field).
MAX_SDU = 0xFFFF

_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class Aal5Error(ValueError):
    """A malformed AAL5 CPCS-PDU (bad length, bad CRC, too long, not whole cells)."""


class Aal5CrcError(Aal5Error):
    """An AAL5 CPCS-PDU whose CRC-32 does not match its contents."""


def _rev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def crc32_aal5(data: bytes) -> int:
    """The AAL5 CRC-32 of ``data`` (CRC-32/BZIP2: 0x04C11DB7, MSB first, preset and
    complemented), as an integer whose big-endian bytes go on the wire."""
    return _rev32(zlib.crc32(bytes(data).translate(_REV8)))


def crc32_aal5_bitwise(data: bytes) -> int:
    """The same CRC computed bit by bit from its definition (slow; for tests)."""
    reg = 0xFFFF_FFFF
    for byte in bytes(data):
        reg ^= byte << 24
        for _ in range(8):
            reg = ((reg << 1) ^ 0x04C11DB7) if reg & 0x8000_0000 else (reg << 1)
            reg &= 0xFFFF_FFFF
    return reg ^ 0xFFFF_FFFF


def pdu_len(sdu_len: int) -> int:
    """Bytes of the CPCS-PDU (a multiple of 48) that carries ``sdu_len`` bytes of payload."""
    return -(-(sdu_len + TRAILER_LEN) // CELL_PAYLOAD) * CELL_PAYLOAD


@dataclass(frozen=True)
class Aal5Pdu:
    """A reassembled CPCS-PDU: its payload and its trailer's user fields."""

    payload: bytes
    uu: int = 0
    cpi: int = 0


def _check_byte(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise Aal5Error(f"{name} must be a byte (0..255), not {value!r}")


def build_pdu(payload: bytes, *, uu: int = 0, cpi: int = 0) -> bytes:
    """The CPCS-PDU for ``payload``: payload, zero pad, trailer with CRC-32.

    Raises
    ------
    Aal5Error
        If the payload is not bytes or longer than 65535 bytes, or UU/CPI is not a byte.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise Aal5Error(f"AAL5 payload must be bytes, not {type(payload).__name__}")
    payload = bytes(payload)
    if len(payload) > MAX_SDU:
        raise Aal5Error(f"AAL5 payload of {len(payload)} bytes is too long (at most {MAX_SDU})")
    _check_byte("CPCS-UU", uu)
    _check_byte("CPI", cpi)
    n = pdu_len(len(payload))
    body = payload.ljust(n - TRAILER_LEN, b"\0") + bytes([uu, cpi]) + len(payload).to_bytes(2, "big")
    return body + crc32_aal5(body).to_bytes(4, "big")


def parse_pdu(pdu: bytes) -> Aal5Pdu:
    """Check a whole CPCS-PDU and return its payload and trailer fields.

    Raises
    ------
    Aal5Error
        If the PDU is not a non-empty multiple of 48 bytes, its CRC is wrong, or its Length
        field does not fit the PDU (more than the room, or so short that a whole cell is pad).
    """
    pdu = bytes(pdu)
    n = len(pdu)
    if n == 0 or n % CELL_PAYLOAD:
        raise Aal5Error(f"an AAL5 CPCS-PDU is a non-zero multiple of {CELL_PAYLOAD} bytes, "
                        f"not {n}")
    want = crc32_aal5(pdu[:-4])
    got = int.from_bytes(pdu[-4:], "big")
    if got != want:
        raise Aal5CrcError(f"AAL5 CRC-32 mismatch: PDU carries {got:08x}, its contents give {want:08x}")
    length = int.from_bytes(pdu[-6:-4], "big")
    if pdu_len(length) != n:
        raise Aal5Error(f"AAL5 Length field {length} does not fit a {n}-byte PDU "
                        f"(it needs {pdu_len(length)} bytes)")
    return Aal5Pdu(pdu[:length], pdu[-8], pdu[-7])


def segment(payload: bytes, *, uu: int = 0, cpi: int = 0) -> list[bytes]:
    """The 48-byte cell payloads of ``payload``'s CPCS-PDU, in order (the last one ends the
    SDU: its cell has PT = 0b001)."""
    pdu = build_pdu(payload, uu=uu, cpi=cpi)
    return [pdu[i:i + CELL_PAYLOAD] for i in range(0, len(pdu), CELL_PAYLOAD)]


def reassemble(cells: list[bytes]) -> Aal5Pdu:
    """Join the cell payloads of one PDU (see :func:`parse_pdu` for the errors)."""
    for i, c in enumerate(cells):
        if len(c) != CELL_PAYLOAD:
            raise Aal5Error(f"cell payload {i} is {len(c)} bytes, not {CELL_PAYLOAD}")
    return parse_pdu(b"".join(cells))


class Aal5Reassembler:
    """Reassembly for one virtual channel: feed cell payloads, get PDUs at end-of-SDU cells.

    Parameters
    ----------
    max_pdu
        Largest CPCS-PDU accepted, in bytes; a longer run of cells without an end-of-SDU is
        abandoned (counted in ``oversize``) as a receiver with a finite buffer would.

    Attributes
    ----------
    pdus, crc_errors, length_errors, oversize : int
        Counters: PDUs delivered, PDUs dropped for a bad CRC, for a bad Length, for size.
    """

    def __init__(self, *, max_pdu: int = pdu_len(MAX_SDU)):
        if not isinstance(max_pdu, int) or max_pdu < CELL_PAYLOAD:
            raise Aal5Error(f"max_pdu must be an integer of at least {CELL_PAYLOAD} bytes, "
                            f"not {max_pdu!r}")
        self.max_pdu = max_pdu
        self._parts: list[bytes] = []
        self._size = 0
        self._overflowed = False
        self.pdus = self.crc_errors = self.length_errors = self.oversize = 0

    def push(self, payload: bytes, end: bool) -> Aal5Pdu | None:
        """Add one 48-byte cell payload; ``end`` is the cell's end-of-SDU bit. Returns the PDU
        when ``end`` completes a good one, else ``None`` (a bad PDU is counted and dropped)."""
        if len(payload) != CELL_PAYLOAD:
            raise Aal5Error(f"cell payload is {len(payload)} bytes, not {CELL_PAYLOAD}")
        if not self._overflowed:
            if self._size + CELL_PAYLOAD > self.max_pdu:
                self._overflowed = True
                self._parts.clear()
            else:
                self._parts.append(bytes(payload))
                self._size += CELL_PAYLOAD
        if not end:
            return None
        parts, overflowed = self._parts, self._overflowed
        self._parts, self._size, self._overflowed = [], 0, False
        if overflowed:
            self.oversize += 1
            return None
        try:
            pdu = parse_pdu(b"".join(parts))
        except Aal5CrcError:
            self.crc_errors += 1
            return None
        except Aal5Error:
            self.length_errors += 1
            return None
        self.pdus += 1
        return pdu
