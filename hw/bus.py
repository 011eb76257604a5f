"""The host bus: how the CPU reaches a device's registers, with wait states.

Every device of serveros (the timer, the LANCE Ethernet card, the SCSI disk controller) exposes
its registers to the CPU through one :class:`HostBus`. It is written, like amaranth-soc's
Wishbone signature (STYLE.md #3), from the initiator's side; a device takes it as
``In(HostBus(...))``.
"""
from __future__ import annotations

import enum

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HostBus", "DmaBus", "DmaFeature", "OWNER_WIDTH"]

#: Width of a :class:`DmaBus`'s ``owner`` tag (with :attr:`DmaFeature.Owner`): up to 256
#: principals, as the AN2-style card's per-VC owner field (``hw.an2.registers``; 0 the kernel).
OWNER_WIDTH = 8


class HostBus(wiring.Signature):
    """CPU register access with wait states: a word-wide, single-initiator request/acknowledge bus.

    The protocol is synchronous to the rising edge of the device's clock (``sync`` domain).
    Times below are rising edges: ``e0`` is the edge that first samples a request.

    * **Request.** The initiator drives ``addr`` (a *word* address), ``w_data`` and exactly one
      of ``w_en`` / ``r_en``, changing them only between rising edges, and holds them until it
      samples ``ack`` high. ``w_en`` and ``r_en`` high together is a protocol violation.
    * **Acknowledge.** ``ack`` is driven from a register: the target raises it no earlier than
      at ``e0`` (the minimum: one cycle of latency) and may add wait states by raising it at
      ``e0 + n`` cycles. It holds ``ack`` high for exactly one cycle. A target ignores the request
      in the cycle in which its ``ack`` is high, so the initiator may drop the request at any
      time during that cycle, or keep it for a back-to-back access (which the target then sees
      one cycle later).
    * **Effect.** A write takes effect at the edge at which the target raises ``ack``; a read
      returns the registers' values as they were just before that edge, in ``r_data``, which is
      valid while ``ack`` is high.
    * **Completion.** The access completes at the edge at which the initiator samples ``ack``
      high: one cycle after ``ack`` rose. With no wait states an access therefore takes two
      cycles, ``e0`` (target acts, ``ack`` rises) and ``e0 + 1`` (initiator sees it).

    Software accesses are not clock-aligned; a request made at time ``t`` is first sampled at
    the first rising edge strictly after ``t`` (the initiator presents it during the cycle that
    contains ``t``, or in the next cycle when ``t`` falls exactly on an edge). The
    transaction-level models in ``hw/*/model.py`` and the bindings in ``sim/bindings`` obey these
    rules to the picosecond.

    Parameters
    ----------
    addr_width : int
        Width of the word address: the device has ``2 ** addr_width`` word registers.
    data_width : int
        Width of a data word, 8, 16 or 32 bits (default 32).

    Members
    -------
    addr : Out(addr_width)
        Word address of the register.
    w_data : Out(data_width)
        Data to write.
    w_en : Out(1)
        Write request, held until acknowledged.
    r_en : Out(1)
        Read request, held until acknowledged.
    r_data : In(data_width)
        Read data, valid while ``ack`` is high.
    ack : In(1)
        Registered acknowledge, high for one cycle per access.

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If ``addr_width`` is negative or ``data_width`` is not 8, 16 or 32.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"HostBus addr_width must be an integer, not {addr_width!r}")
        if addr_width < 0:
            raise ValueError(f"HostBus addr_width must be a non-negative integer, not {addr_width!r}")
        if not isinstance(data_width, int) or isinstance(data_width, bool):
            raise TypeError(f"HostBus data_width must be an integer, not {data_width!r}")
        if data_width not in (8, 16, 32):
            raise ValueError(f"HostBus data_width must be 8, 16 or 32, not {data_width!r}")
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "addr":   Out(addr_width),
            "w_data": Out(data_width),
            "w_en":   Out(1),
            "r_en":   Out(1),
            "r_data": In(data_width),
            "ack":    In(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def window_bytes(self) -> int:
        """Size in bytes of the register window this bus addresses."""
        return (1 << self._addr_width) * (self._data_width // 8)

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __hash__(self) -> int:
        return hash((type(self), self._addr_width, self._data_width))

    def __repr__(self) -> str:
        return f"HostBus(addr_width={self._addr_width}, data_width={self._data_width})"


class DmaFeature(enum.Enum):
    """Optional members of a :class:`DmaBus` (as amaranth-soc's ``wishbone.Feature``)."""
    Err = "err"        #: the target may end a burst with an error (``err: In(1)``)
    Owner = "owner"    #: each burst names on whose behalf it runs (``owner: Out(OWNER_WIDTH)``)


class DmaBus(wiring.Signature):
    """A device's DMA master port to host memory: word bursts with a per-word acknowledge.

    Written from the initiator's (the device's) side; host memory takes it as
    ``In(DmaBus(...))``. Synchronous to the rising edge of the ``sync`` domain.

    * **Burst request.** The initiator raises ``req`` with ``addr`` (the *byte* address of the
      first word, word aligned), ``count`` (words, at least 1) and ``write`` (1: device to
      memory), and holds all of them, unchanged, until the burst's last word is acknowledged.
    * **Words.** Word ``i`` of the burst is at ``addr + 4 * i``. The target transfers one word in
      every cycle in which it drives ``ack`` high (from a register, as on
      :class:`HostBus`), ``count`` times in all, with any number of wait cycles in between.
      On a write the target stores ``w_data`` as it is in the cycle ``ack`` is high; on a read
      ``r_data`` is valid while ``ack`` is high. The initiator moves to the next word (its
      ``w_data``) at the edge at which it samples ``ack`` high.
    * **End.** The initiator drops ``req`` at the edge at which it samples the last ``ack``
      (it may raise it again, for the next burst, one cycle later). The target never
      acknowledges more than ``count`` words and ignores ``req`` in the cycle after its last
      ``ack``.
    * **Error** (with :attr:`DmaFeature.Err` only). The target may end a burst early by raising
      ``err`` instead of ``ack`` (from a register, high for one cycle, never together with
      ``ack``): the memory refused the transfer (a bound or an ownership check). The words
      acknowledged before ``err`` were transferred; the rest of the burst is not. The
      initiator drops ``req`` at the edge at which it samples ``err``, exactly as at a last
      ``ack`` (the target ignores ``req`` in the next cycle), and knows the burst failed. A
      registered ``err`` answers a request at the earliest two edges after the one that raised
      ``req`` (the target samples the request at the first, raises ``err`` there, and the
      initiator samples it at the second), as for ``ack``.
    * **Owner** (with :attr:`DmaFeature.Owner` only). The initiator drives ``owner``, a tag
      naming the principal on whose behalf the burst runs (what the tag means is the device's
      and its driver's business; 0 is conventionally the kernel), with the request, and holds
      it like ``addr`` until the burst ends. The target checks the transfer against that
      principal's rights (host memory's page ownership) and refuses it, with ``err`` when the
      bus has it, if the principal may not touch a page of it.

    Parameters
    ----------
    addr_width : int
        Width of the byte address (default 32).
    count_width : int
        Width of the burst length: bursts of 1 .. ``2 ** count_width - 1`` words (default 8).
    features : iterable of DmaFeature or str
        Optional members: ``"err"`` adds ``err``, ``"owner"`` adds ``owner`` (default none).

    Members
    -------
    req : Out(1)
        A burst is requested (held until its last word).
    write : Out(1)
        Direction: 1 device to memory, 0 memory to device.
    addr : Out(addr_width)
        Byte address of the burst's first word.
    count : Out(count_width)
        Words in the burst.
    w_data : Out(32)
        The current word of a write burst.
    r_data : In(32)
        Read data, valid while ``ack`` is high.
    ack : In(1)
        One word transferred in this cycle.
    err : In(1)
        With :attr:`DmaFeature.Err`: the burst ends with an error in this cycle.
    owner : Out(OWNER_WIDTH)
        With :attr:`DmaFeature.Owner`: on whose behalf the burst runs (held with ``req``).

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If ``addr_width`` is not in 2 .. 64, ``count_width`` not in 1 .. 16, or a feature is
        unknown.
    """

    def __init__(self, *, addr_width: int = 32, count_width: int = 8, features=frozenset()):
        for name, value, lo, hi in (("addr_width", addr_width, 2, 64),
                                    ("count_width", count_width, 1, 16)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"DmaBus {name} must be an integer, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"DmaBus {name} must be in {lo} .. {hi}, not {value!r}")
        if isinstance(features, (str, DmaFeature)):
            features = (features,)
        try:
            features = frozenset(DmaFeature(f) for f in features)
        except (TypeError, ValueError):
            raise ValueError(f"DmaBus features must be a set of {[f.value for f in DmaFeature]}, "
                             f"not {features!r}") from None
        self._addr_width = addr_width
        self._count_width = count_width
        self._features = features
        members = {
            "req":    Out(1),
            "write":  Out(1),
            "addr":   Out(addr_width),
            "count":  Out(count_width),
            "w_data": Out(32),
            "r_data": In(32),
            "ack":    In(1),
        }
        if DmaFeature.Err in features:
            members["err"] = In(1)
        if DmaFeature.Owner in features:
            members["owner"] = Out(OWNER_WIDTH)
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def count_width(self) -> int:
        return self._count_width

    @property
    def features(self) -> frozenset:
        """The optional members present (a frozenset of :class:`DmaFeature`)."""
        return self._features

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.count_width == self.count_width and other.features == self.features)

    def __hash__(self) -> int:
        return hash((type(self), self._addr_width, self._count_width, self._features))

    def __repr__(self) -> str:
        names = ", ".join(repr(f.value) for f in sorted(self._features, key=lambda f: f.value))
        features = f", features={{{names}}}" if names else ""
        return f"DmaBus(addr_width={self._addr_width}, count_width={self._count_width}{features})"
