"""Packet filters: the exokernel's secure binding for the network (DPF-style, merged).

An environment that wants frames installs a :class:`Filter`: a conjunction of :class:`Atom` s,
each comparing a masked 1-, 2- or 4-byte big-endian field at a fixed offset of the frame with
a constant. :class:`FilterTable` merges all installed filters into one decision trie, as DPF
(Engler and Kaashoek, SIGCOMM 1996) merges its filters: atoms are kept in a canonical order
(by offset), filters with a common prefix of atoms share its nodes, and a node that tests a
field branches on the field's *value* through a hash table. Demultiplexing a frame therefore
evaluates about as many field tests as one filter has atoms, however many filters are
installed: its cost grows with the depth of the trie, not with the number of filters.
:class:`LinearFilterTable` is the contrast, an interpreted MPF-style demultiplexer that
evaluates every installed filter in turn, so its cost grows linearly.

Security (SYSTEM.md section 3): a filter that could accept a frame that another environment's
filter accepts is refused at installation (:class:`FilterConflict`). Filters are conjunctions
of bit constraints, so the check is exact: two filters overlap unless some bit is required to
be 0 by one and 1 by the other. No frame can thus be claimed by two owners. An environment's
own filters may overlap; the most specific one (most atoms on the trie path) wins.

Costs: :attr:`DemuxResult.tests` (trie) and :attr:`DemuxResult.filters_evaluated` (linear)
are the units the kernel charges (see :mod:`sw.exokernel.aegis`), priced from the profile's
``demux_dpf_cycles`` / ``demux_mpf_cycles`` (SOSP'95 table 7: DPF 1.5 us, MPF 35 us) divided
by :data:`DPF_REFERENCE_TESTS` and :data:`MPF_REFERENCE_FILTERS`.

Variable-length IP headers: atoms are at fixed offsets, so a TCP or UDP port filter assumes a
20-byte IP header (as the libraries send); frames with IP options match no port filter and go
to the kernel's default handler. DPF's indirection atoms are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable

__all__ = ["Atom", "Filter", "FilterConflict", "FilterError", "FilterTable", "LinearFilterTable",
           "DemuxResult", "DPF_REFERENCE_TESTS", "MPF_REFERENCE_FILTERS", "tcp_filter",
           "udp_filter", "ethertype_filter", "ETH_TYPE_OFF", "IP_PROTO_OFF", "IP_SRC_OFF",
           "IP_DST_OFF", "L4_OFF"]

#: Field tests a DPF demultiplex of a TCP segment evaluates in SOSP'95 table 7's measurement
#: (1.5 us). Estimate: a TCP/IP connection filter tests the Ethernet type, the IP protocol and
#: the port/address fields; DPF merges the addresses and ports into about two hashed compares,
#: so we take 4 tests per classification, i.e. 37.5 / 4 = 9.4 cycles per test at 25 MHz.
DPF_REFERENCE_TESTS = 4
#: Filters the interpreted (MPF) demultiplexer evaluated in the same measurement: table 7
#: classifies headers destined for one of ten TCP/IP filters (estimate that all ten are
#: interpreted), so one filter costs 875 / 10 = 87.5 cycles.
MPF_REFERENCE_FILTERS = 10

_SIZES = (1, 2, 4)
_MAX_OFFSET = 1514          # the last byte of a maximal frame without FCS is at 1513


class FilterError(ValueError):
    """A malformed filter (the message names the atom and the problem)."""


class FilterConflict(PermissionError):
    """Installing the filter would let it claim frames another environment owns."""


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True, order=True)
class Atom:
    """One field test: ``frame[offset:offset+size]`` (big-endian) ``& mask == value``.

    Parameters
    ----------
    offset : int
        Byte offset in the frame (0 is the destination MAC address).
    size : int
        1, 2 or 4 bytes.
    value : int
        The required value of the masked field.
    mask : int
        Bits of the field that are tested (default -1: all of them).

    Raises
    ------
    FilterError
        For a bad offset, size or mask, or a value with bits outside the mask.
    """

    offset: int
    size: int
    value: int
    mask: int = -1

    def __post_init__(self) -> None:
        if not _is_int(self.offset) or not 0 <= self.offset:
            raise FilterError(f"atom offset must be a non-negative int, not {self.offset!r}")
        if not _is_int(self.size) or self.size not in _SIZES:
            raise FilterError(f"atom size must be 1, 2 or 4 bytes, not {self.size!r}")
        if self.offset + self.size > _MAX_OFFSET:
            raise FilterError(f"atom at offset {self.offset} (size {self.size}) lies past the "
                              f"end of the largest frame ({_MAX_OFFSET} bytes)")
        full = (1 << (8 * self.size)) - 1
        if not _is_int(self.mask):
            raise FilterError(f"atom mask must be an int, not {self.mask!r}")
        mask = full if self.mask == -1 else self.mask
        if not 0 < mask <= full:
            raise FilterError(f"atom mask must be 1..{full:#x} for a {self.size}-byte field, "
                              f"not {self.mask!r}")
        if not _is_int(self.value) or self.value < 0 or self.value & ~mask:
            raise FilterError(f"atom value {self.value!r} has bits outside its mask {mask:#x}")
        object.__setattr__(self, "mask", mask)

    @property
    def test(self) -> tuple[int, int, int]:
        """What a trie node evaluates: ``(offset, size, mask)``."""
        return (self.offset, self.size, self.mask)

    def field(self, frame: bytes) -> int | None:
        """The masked field of ``frame`` (None if the frame is too short to hold it)."""
        end = self.offset + self.size
        if end > len(frame):
            return None
        return int.from_bytes(frame[self.offset:end], "big") & self.mask

    def byte_constraints(self) -> Iterable[tuple[int, int, int]]:
        """``(byte offset, mask, value)`` for each byte this atom constrains."""
        for i in range(self.size):
            shift = 8 * (self.size - 1 - i)
            m = (self.mask >> shift) & 0xFF
            if m:
                yield self.offset + i, m, (self.value >> shift) & 0xFF


@dataclass(frozen=True, init=False)
class Filter:
    """A conjunction of atoms, kept in canonical (sorted) order.

    Raises
    ------
    FilterError
        If there are no atoms, an item is not an :class:`Atom`, or the atoms contradict each
        other (the filter could never match).
    """

    atoms: tuple[Atom, ...]

    def __init__(self, atoms: Iterable[Atom]):
        atoms = list(atoms)
        for a in atoms:
            if not isinstance(a, Atom):
                raise FilterError(f"a filter is made of Atoms, not {a!r}")
        atoms = tuple(sorted(set(atoms)))
        if not atoms:
            raise FilterError("a filter needs at least one atom (an empty filter would claim "
                              "every frame)")
        object.__setattr__(self, "atoms", atoms)
        self.constraints()                       # raises for a self-contradictory filter

    def matches(self, frame: bytes) -> bool:
        """Does ``frame`` satisfy every atom?"""
        return all(a.field(frame) == a.value for a in self.atoms)

    def constraints(self) -> dict[int, tuple[int, int]]:
        """Byte offset -> ``(mask, value)``, merged over the atoms.

        Raises
        ------
        FilterError
            If two atoms demand different values of the same bit.
        """
        out: dict[int, tuple[int, int]] = {}
        for a in self.atoms:
            for off, m, v in a.byte_constraints():
                if off in out:
                    m0, v0 = out[off]
                    if (v0 ^ v) & m0 & m:
                        raise FilterError(f"filter's atoms disagree on byte {off} "
                                          f"({v0:#04x}&{m0:#04x} vs {v:#04x}&{m:#04x}): it can "
                                          f"never match")
                    out[off] = (m0 | m, v0 | v)
                else:
                    out[off] = (m, v)
        return out

    def overlaps(self, other: "Filter") -> bool:
        """Could some frame satisfy both filters? (Exact for conjunctions of bit tests.)"""
        a, b = self.constraints(), other.constraints()
        for off, (m, v) in a.items():
            if off in b:
                m2, v2 = b[off]
                if (v ^ v2) & m & m2:
                    return False
        return True

    def __repr__(self) -> str:
        parts = [f"[{a.offset}:{a.size}]&{a.mask:#x}=={a.value:#x}" for a in self.atoms]
        return "Filter(" + " ".join(parts) + ")"


@dataclass
class _Node:
    #: test (offset, size, mask) -> {value: child}
    branches: dict[tuple[int, int, int], dict[int, "_Node"]] = field(default_factory=dict)
    #: filters that end here: filter id -> owner
    accepts: dict[int, Hashable] = field(default_factory=dict)


@dataclass(frozen=True)
class DemuxResult:
    """Who gets a frame, and the work deciding it took.

    Attributes
    ----------
    owner, filter_id
        The accepting filter's owner and id (None, None: no filter accepts the frame).
    tests
        Field tests evaluated (trie: one hashed compare per test at each node visited).
    filters_evaluated
        Filters interpreted one by one (linear demultiplexer; 0 for the trie).
    filters_installed
        Filters in the table at the time.
    """

    owner: Hashable | None
    filter_id: int | None
    tests: int
    filters_evaluated: int
    filters_installed: int


class FilterTable:
    """The installed filters of all environments, merged into one DPF-style trie."""

    #: the profile cost this table's work is priced with (see :mod:`sw.exokernel.aegis`)
    kind = "dpf"

    def __init__(self) -> None:
        self._root = _Node()
        self._filters: dict[int, tuple[Filter, Hashable]] = {}
        self._next = 1

    def __len__(self) -> int:
        return len(self._filters)

    def owner_of(self, filter_id: int) -> Hashable:
        """The owner of an installed filter (KeyError naming the id if there is none)."""
        if filter_id not in self._filters:
            raise KeyError(f"no filter {filter_id!r} is installed")
        return self._filters[filter_id][1]

    def filter(self, filter_id: int) -> Filter:
        """An installed filter by id."""
        if filter_id not in self._filters:
            raise KeyError(f"no filter {filter_id!r} is installed")
        return self._filters[filter_id][0]

    def check(self, flt: Filter, owner: Hashable) -> None:
        """Raise unless ``owner`` may install ``flt`` (changes nothing).

        Raises
        ------
        TypeError
            If ``flt`` is not a :class:`Filter`, or ``owner`` is None.
        FilterConflict
            If another owner's filter could accept a frame ``flt`` accepts (names both).
        """
        if not isinstance(flt, Filter):
            raise TypeError(f"install needs a Filter, not {flt!r}")
        if owner is None:
            raise TypeError("a filter needs an owner, not None")
        for fid, (other, who) in self._filters.items():
            if who != owner and flt.overlaps(other):
                raise FilterConflict(
                    f"{owner!r} may not install {flt!r}: it overlaps filter {fid} {other!r} "
                    f"owned by {who!r}, so it could claim that environment's frames")

    def install(self, flt: Filter, owner: Hashable) -> int:
        """Install ``flt`` for ``owner``; returns its id (see :meth:`check` for refusals)."""
        self.check(flt, owner)
        fid = self._next
        self._next += 1
        self._filters[fid] = (flt, owner)
        self._insert(fid, flt, owner)
        return fid

    def remove(self, filter_id: int, owner: Hashable) -> None:
        """Remove a filter; only its owner may.

        Raises
        ------
        KeyError
            If no such filter is installed.
        PermissionError
            If ``owner`` does not own it.
        """
        who = self.owner_of(filter_id)
        if who != owner:
            raise PermissionError(f"{owner!r} may not remove filter {filter_id} owned by {who!r}")
        flt, _ = self._filters.pop(filter_id)
        self._delete(filter_id, flt)

    # -- the trie ----------------------------------------------------------------------------
    def _insert(self, fid: int, flt: Filter, owner: Hashable) -> None:
        node = self._root
        for a in flt.atoms:
            node = node.branches.setdefault(a.test, {}).setdefault(a.value, _Node())
        node.accepts[fid] = owner

    def _delete(self, fid: int, flt: Filter) -> None:
        path = [self._root]
        for a in flt.atoms:
            path.append(path[-1].branches[a.test][a.value])
        del path[-1].accepts[fid]
        for depth in range(len(flt.atoms), 0, -1):      # prune nodes left empty
            node, parent, a = path[depth], path[depth - 1], flt.atoms[depth - 1]
            if node.accepts or node.branches:
                break
            del parent.branches[a.test][a.value]
            if not parent.branches[a.test]:
                del parent.branches[a.test]

    def demux(self, frame: bytes) -> DemuxResult:
        """The owner of the most specific filter that accepts ``frame`` (None if none does).

        Walks the trie: at each node every distinct field test is evaluated once and its
        value looked up in the node's hash table; only matching children are visited. Ties
        in depth go to the earliest installed filter.
        """
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"demux needs a frame of bytes, not {type(frame).__name__}")
        best: tuple[int, int, Hashable] | None = None     # (depth, -id, owner)
        tests = 0
        stack = [(self._root, 0)]
        n = len(frame)
        while stack:
            node, depth = stack.pop()
            for fid, owner in node.accepts.items():
                cand = (depth, -fid, owner)
                if best is None or cand[:2] > best[:2]:
                    best = cand
            for (off, size, mask), children in node.branches.items():
                tests += 1
                end = off + size
                if end > n:
                    continue
                child = children.get(int.from_bytes(frame[off:end], "big") & mask)
                if child is not None:
                    stack.append((child, depth + 1))
        if best is None:
            return DemuxResult(None, None, tests, 0, len(self._filters))
        return DemuxResult(best[2], -best[1], tests, 0, len(self._filters))


class LinearFilterTable(FilterTable):
    """An MPF-style demultiplexer: the same filters and refusals, interpreted one by one.

    Every installed filter is evaluated against every frame (an interpreter cannot know that
    a later filter is not more specific), so the work grows linearly with the number of
    filters. Kept as the contrast to :class:`FilterTable`'s merged trie.
    """

    kind = "mpf"

    def _insert(self, fid: int, flt: Filter, owner: Hashable) -> None:
        pass                                     # the filter list is the table itself

    def _delete(self, fid: int, flt: Filter) -> None:
        pass

    def demux(self, frame: bytes) -> DemuxResult:
        """The owner of the most specific accepting filter, evaluating all of them."""
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"demux needs a frame of bytes, not {type(frame).__name__}")
        best: tuple[int, int, Hashable] | None = None
        tests = 0
        for fid, (flt, owner) in self._filters.items():
            for a in flt.atoms:                  # short-circuit, as an interpreter does
                tests += 1
                if a.field(frame) != a.value:
                    break
            else:
                cand = (len(flt.atoms), -fid, owner)
                if best is None or cand[:2] > best[:2]:
                    best = cand
        n = len(self._filters)
        if best is None:
            return DemuxResult(None, None, tests, n, n)
        return DemuxResult(best[2], -best[1], tests, n, n)


# -- the filters the libraries install ------------------------------------------------------------
ETH_TYPE_OFF = 12
IP_PROTO_OFF = 14 + 9
IP_SRC_OFF = 14 + 12
IP_DST_OFF = 14 + 16
L4_OFF = 14 + 20          # assumes a 20-byte IP header (see the module docstring)


def _port(name: str, p) -> int:
    if not _is_int(p) or not 0 <= p <= 0xFFFF:
        raise FilterError(f"{name} must be a port number 0..65535, not {p!r}")
    return p


def _ip(name: str, a) -> int:
    if not isinstance(a, (bytes, bytearray)) or len(a) != 4:
        raise FilterError(f"{name} must be 4 bytes of IPv4 address, not {a!r}")
    return int.from_bytes(a, "big")


def ethertype_filter(ethertype: int) -> Filter:
    """Every frame of one EtherType (e.g. 0x0806 for ARP)."""
    if not _is_int(ethertype) or not 0 <= ethertype <= 0xFFFF:
        raise FilterError(f"EtherType must be 0..0xffff, not {ethertype!r}")
    return Filter([Atom(ETH_TYPE_OFF, 2, ethertype)])


def _l4_filter(proto: int, local_ip, local_port, remote_ip, remote_port) -> Filter:
    atoms = [Atom(ETH_TYPE_OFF, 2, 0x0800), Atom(IP_PROTO_OFF, 1, proto),
             Atom(L4_OFF + 2, 2, _port("local_port", local_port))]
    if local_ip is not None:
        atoms.append(Atom(IP_DST_OFF, 4, _ip("local_ip", local_ip)))
    if remote_ip is not None:
        atoms.append(Atom(IP_SRC_OFF, 4, _ip("remote_ip", remote_ip)))
    if remote_port is not None:
        atoms.append(Atom(L4_OFF, 2, _port("remote_port", remote_port)))
    return Filter(atoms)


def tcp_filter(local_port: int, *, local_ip: bytes | None = None, remote_ip: bytes | None = None,
               remote_port: int | None = None) -> Filter:
    """IPv4/TCP to ``local_port`` (optionally to one local address, from one remote address
    and port: a connection's filter)."""
    return _l4_filter(6, local_ip, local_port, remote_ip, remote_port)


def udp_filter(local_port: int, *, local_ip: bytes | None = None, remote_ip: bytes | None = None,
               remote_port: int | None = None) -> Filter:
    """IPv4/UDP to ``local_port`` (optionally narrowed as :func:`tcp_filter` is)."""
    return _l4_filter(17, local_ip, local_port, remote_ip, remote_port)
