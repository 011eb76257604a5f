"""Cheetah's configuration: one switch per specialization, and the paper's stages.

SYSTEM.md section 5: Cheetah was built in stages, "a plain server on POSIX-like defaults first,
then each default replaced by the server OS library, then each specialization switched on one
at a time". :class:`CheetahConfig` holds one boolean per step and :func:`stage` returns the
configuration of each stage named in :data:`STAGES`, so that every contribution can be measured.

The costs the server charges for its own work (beyond what the TCP/IP library, the file system
and the exokernel charge) are instruction-count estimates in :data:`APP_COSTS`, converted to
cycles with the platform's ``kernel_cpi`` (``Platform.instructions``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from sim.platforms.base import Cost
from sw.libos.net.tcp import TCPTV_KEEP_INIT

__all__ = ["CheetahConfig", "STAGES", "SPECIALIZATIONS", "LATER_SPECIALIZATIONS", "LATER_STAGES",
           "ALL_STAGES", "stage", "variant", "APP_COSTS"]

#: The specializations, in the order the stages switch them on.
SPECIALIZATIONS: tuple[str, ...] = (
    "event_loop", "request_pool", "parse_in_place", "merged_segments",
    "precomputed_checksums", "precomputed_headers", "inline_prefetch",
    "cache_as_retransmit_pool",
)
#: Specializations beyond the paper (issue 17), off in every paper stage, in the order
#: :data:`LATER_STAGES` switch them on after ``cheetah``.
#: ``ash`` first, then ``ilp``, then ``hwilp`` (``+hwilp`` is full Cheetah with all three: the
#: card's pipes replace the CPU's where the card has them).
LATER_SPECIALIZATIONS: tuple[str, ...] = ("ash", "ilp", "hwilp")


@dataclass(frozen=True)
class CheetahConfig:
    """Which of Cheetah's specializations are on (all on by default: the real Cheetah).

    Parameters
    ----------
    libos : bool
        Use the library OS's interfaces directly (application-owned PCBs looked up by hash,
        sends from the application's buffers). Off: POSIX-like defaults on top of them: each
        socket or file operation is a call through an emulation layer (charged as a system
        call), data written to a socket is copied into a socket buffer, PCBs are found by a
        BSD-style linear scan.
    event_loop : bool
        One thread of control running HTTP handlers from network and disk events. Off: a
        thread per request that blocks in its calls (creation and context switches charged;
        the request's ACK cannot ride on the reply).
    request_pool : bool
        Request structures (with their PCB and prebuilt TCP/IP header) come from a pool of
        preinitialized ones. Off: each connection allocates and initializes its own.
    parse_in_place : bool
        Parse the request in the buffer it arrived in. Off: the stack copies the received
        bytes into the application's buffer first.
    merged_segments : bool
        HTTP header, document and FIN in the fewest segments (``send(..., last=True)``).
        Off: the header, the document and the FIN are sent by separate calls, so each goes
        in segments of its own.
    precomputed_checksums : bool
        The document's (per-segment) checksums and the header's checksum are computed at
        start-up, stored in the inode's extra fields and passed to the stack (``csum=``).
        Off: the stack sums every byte it sends.
    precomputed_headers : bool
        The response header (without the Date) is built at start-up and stored in the
        inode's extra fields; only the Date is added per request (reformatted once per
        second). Off: each response header is formatted from a stat of the file.
    inline_prefetch : bool
        The inline images of an HTML page are read from the disk together with the page
        (the cache's miss policy reads them ahead). Off: each is read when requested.
    cache_as_retransmit_pool : bool
        The file cache is the retransmission pool: the document's cache blocks are pinned
        and the stack's ``resupply`` reads from them; no copy is made. Off: the document is
        copied out of the cache into a buffer the request keeps for retransmissions.
    ash : bool
        Beyond the paper (issue 17), off by default and in every paper stage: an ASH
        installed with Cheetah's TCP filter takes the end of each connection in the kernel
        (the ACK of Cheetah's FIN absorbed, the client's FIN answered with a prebuilt ACK:
        :mod:`sw.cheetah.ash_handlers`), so Cheetah is not scheduled for them. Needs an
        exokernel: the ASH runs on Cheetah's packet filter over Ethernet, on its VCs over
        the AN2.
    ilp : bool
        Beyond the paper (issue 17), off by default and in every paper stage: software ILP
        pipes (:mod:`sw.libos.ilp`) fused with the data movements that remain. Cheetah hands
        its receive pipe list (the Internet checksum, ``cksum``) to the kernel
        (:meth:`sw.exokernel.aegis.Aegis.install_rx_pipes`), which compiles it with the
        bound card's data-movement rule: over the LANCE the driver's programmed-I/O copy of
        each received frame sums it as it copies, and the stack checks the TCP checksum with
        that sum instead of a second pass (:mod:`sw.libos.ilp.inloop`); the transmit copy
        into the card sums each frame as it copies it and completes the TCP checksum (the
        segment leaves the stack with the pseudo-header's sum in the field, as Linux's
        ``CHECKSUM_PARTIAL``), so no segment is summed by the stack and the precomputed
        checksums go unused over this card. A card that moves the data by DMA (the AN2)
        leaves no copy to fuse with: nothing changes there.
    hwilp : bool
        Beyond the paper (issue 17), off by default and in every paper stage: the card's own
        ILP pipes (the AN2's hardware checksum, ``hw/an2``), bound by the kernel
        (:meth:`sw.exokernel.aegis.Aegis.install_card_rx_pipes`, ``install_card_tx_pipes``).
        Transmit, only without ``precomputed_checksums`` (the AN2 card's transmit pipe reads
        each PDU twice, the link idle during the first read; with the stored sums the CPU's
        share is a header and an add): every TCP segment leaves the stack with the
        pseudo-header's sum in its checksum field and the driver asks the card to complete
        it (``Csum`` on the PDU's First descriptor); no segment, header or document byte is
        summed by the CPU. Receive: the kernel programs Cheetah's VCs to sum each PDU
        from its IP header on (VcEntry ``rx_csum``), and the stack checks the TCP checksum
        with the completion's sum and the pseudo-header (a few adds) instead of summing the
        segment. A card without pipes (the LANCE) binds none (``hwilp_rx_bound`` and
        ``hwilp_tx_bound`` are 0): Cheetah then does what ``ilp`` does, or, without it,
        what the paper's Cheetah does.

    Parameters that are not specializations (the same in every stage):

    idle_timeout_ps : int
        A connection that has not delivered a whole request this long after it was
        established is closed and its request structure returned (75 s). Reasoning: it is
        BSD's connection-establishment time (``TCPTV_KEEP_INIT``), the same bound the stack
        gives a handshake, and it outlasts four backed-off retransmissions (3 + 6 + 12 + 24
        = 45 s from RFC 1122's 3 s initial RTO) of a lost request segment, so only a client
        that is silent on purpose (or gone) loses its connection; the paper's clients send
        their request with the handshake's last ACK.
    backlog : int
        Connections allowed in SYN-RECEIVED at once; a SYN beyond them is dropped without a
        reset, as a full BSD listen queue drops it (16: half the preallocated pool, so a
        SYN flood cannot take the request structures that established connections need;
        the paper's 6 clients never have more than 6 handshakes in flight).
    """

    libos: bool = True
    event_loop: bool = True
    request_pool: bool = True
    parse_in_place: bool = True
    merged_segments: bool = True
    precomputed_checksums: bool = True
    precomputed_headers: bool = True
    inline_prefetch: bool = True
    cache_as_retransmit_pool: bool = True
    ash: bool = False
    ilp: bool = False
    hwilp: bool = False
    idle_timeout_ps: int = TCPTV_KEEP_INIT
    backlog: int = 16

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in _PARAMETERS:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError(f"CheetahConfig.{f.name} must be a positive int, not {v!r}")
            elif not isinstance(v, bool):
                raise TypeError(f"CheetahConfig.{f.name} must be a bool, not {v!r}")

    def without(self, name: str) -> "CheetahConfig":
        """This configuration with switch ``name`` off.

        Raises
        ------
        ValueError
            If ``name`` is not a switch.
        """
        names = [f.name for f in fields(self) if f.name not in _PARAMETERS]
        if name not in names:
            raise ValueError(f"unknown Cheetah switch {name!r} (one of {', '.join(names)})")
        return replace(self, **{name: False})

    def switches(self) -> dict[str, bool]:
        """The switches by name (JSON-serialisable): the paper's always, one beyond the paper
        (:data:`LATER_SPECIALIZATIONS`) only when it is on, so a paper stage reports what it
        reported before they existed; the parameters are not switches."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _PARAMETERS
                and (f.name not in LATER_SPECIALIZATIONS or getattr(self, f.name))}


#: The fields of :class:`CheetahConfig` that are parameters, not specialization switches.
_PARAMETERS = frozenset({"idle_timeout_ps", "backlog"})


def _stages() -> dict[str, CheetahConfig]:
    off = {name: False for name in SPECIALIZATIONS}
    out = {"posix": CheetahConfig(libos=False, **off), "libos": CheetahConfig(**off)}
    on: dict[str, bool] = dict(off)
    for name in SPECIALIZATIONS[:-1]:
        on[name] = True
        out[f"+{name}"] = CheetahConfig(**on)
    out["cheetah"] = CheetahConfig()
    return out


_STAGE_CONFIGS = _stages()

#: The paper's stages in order: ``"posix"`` (plain server on POSIX-like defaults), ``"libos"``
#: (the library OS's components, no specialization), then ``"+event_loop"``,
#: ``"+request_pool"``, ... each adding one specialization to the previous stage, and
#: ``"cheetah"`` (all of them: the last one, ``cache_as_retransmit_pool``, added).
STAGES: tuple[str, ...] = tuple(_STAGE_CONFIGS)


def _later_stages() -> dict[str, CheetahConfig]:
    out, cfg = {}, CheetahConfig()
    for name in LATER_SPECIALIZATIONS:
        cfg = replace(cfg, **{name: True})
        out[f"+{name}"] = cfg
    return out


_STAGE_CONFIGS.update(_later_stages())

#: Stages beyond the paper, after ``cheetah``, each adding one of
#: :data:`LATER_SPECIALIZATIONS` to the previous (``"+ash"``: ``cheetah`` with the ASH).
LATER_STAGES: tuple[str, ...] = tuple(n for n in _STAGE_CONFIGS if n not in STAGES)
#: Every stage: the paper's, then the later ones.
ALL_STAGES: tuple[str, ...] = STAGES + LATER_STAGES


def stage(name: str) -> CheetahConfig:
    """The configuration of stage ``name`` (one of :data:`ALL_STAGES`).

    Raises
    ------
    ValueError
        For an unknown stage name.
    """
    try:
        return _STAGE_CONFIGS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Cheetah stage {name!r} (one of {', '.join(ALL_STAGES)})") \
            from None


def variant(spec: str) -> CheetahConfig:
    """The configuration ``cheetah@SPEC`` names: a stage (one of :data:`ALL_STAGES`), or
    ``no-SWITCH``, one switch off: a paper switch (``libos`` or one of
    :data:`SPECIALIZATIONS`) off the paper's full Cheetah, as before; a later one (one of
    :data:`LATER_SPECIALIZATIONS`) off the last stage, which has every switch on (so
    ``no-ilp`` is ``+ash``, and ``no-ash`` is ``+ilp`` without the ASH); and either followed
    by ``.no-SWITCH`` parts, each switching one more off (``+ilp.no-precomputed_checksums``:
    the last stage without the precomputed checksums).

    Raises
    ------
    ValueError
        For an unknown stage or switch (the message lists them).
    """
    if not isinstance(spec, str):
        raise TypeError(f"a Cheetah variant is a string, not {spec!r}")
    if "." in spec:
        first, *offs = spec.split(".")
        cfg = variant(first)
        for off in offs:
            if not off.startswith("no-"):
                raise ValueError(f"after the first part of {spec!r} each part is no-SWITCH, "
                                 f"not {off!r}")
            cfg = cfg.without(off[3:])
        return cfg
    if spec.startswith("no-"):
        switch = spec[3:]
        if switch in ("libos", *SPECIALIZATIONS):
            return CheetahConfig().without(switch)
        if switch in LATER_SPECIALIZATIONS:
            return stage(ALL_STAGES[-1]).without(switch)
        raise ValueError(f"unknown Cheetah switch {switch!r} in {spec!r}; switches: "
                         f"{', '.join(('libos', *SPECIALIZATIONS, *LATER_SPECIALIZATIONS))}")
    if spec not in _STAGE_CONFIGS:
        raise ValueError(f"unknown Cheetah stage {spec!r}; stages: {', '.join(ALL_STAGES)} "
                         f"(or no-SWITCH)")
    return _STAGE_CONFIGS[spec]


def _est(n: float, unit: str, why: str) -> Cost:
    return Cost(n, unit, f"estimate: {why}")


#: The application's own work, in instructions (cycles = ``profile.instructions(n)``).
APP_COSTS: dict[str, Cost] = {
    "parse_base": _est(150, "instructions", (
        "HTTP request dispatch: find the method among GET/HEAD, split the request line, "
        "check the version, look up If-Modified-Since: about 150 instructions")),
    "parse_per_byte": _est(3, "instructions/byte", (
        "scanning the request for spaces, CR and LF: load byte, compare, branch")),
    "name_lookup": _est(120, "instructions", (
        "hash the URL path and probe the server's table of open documents (inode and "
        "extra fields already in memory): about 120 instructions")),
    "header_build": _est(600, "instructions", (
        "format a response header: status line, Content-Type from the suffix, itoa of the "
        "length, two RFC 1123 dates (gmtime and formatting, about 200 instructions each), "
        "string concatenation: about 600 instructions")),
    "stat": _est(100, "instructions", (
        "fetch size and modification time from the in-core inode for the header "
        "(no I/O: the inode is cached)")),
    "date_format": _est(250, "instructions", (
        "format the current Date (gmtime and RFC 1123 formatting), done once per second "
        "when headers are precomputed")),
    "request_alloc": _est(330, "instructions", (
        "malloc and later free the request structure and its PCB (about 50 instructions "
        "each), build the TCP/IP header template (about 100) and clear the structure's "
        "512 bytes (128 word stores, about 130 instructions)")),
    "pool_get": _est(20, "instructions", "pop a preinitialized request off a free list"),
    "ash_arm": _est(60, "instructions", (
        "hand a closing connection to the ASH: take the remote address, ports and sequence "
        "numbers from the PCB, patch them and the IP identification into the request's "
        "prebuilt ACK template, store its 14 words, the slot's 6 (the fast path's 4: "
        "expected acknowledgement, address, ports, sequence; state and local address) and "
        "the word of armed numbers (load, or the bit, store) in the table (the two header "
        "checksums are charged as a checksum of their 52 bytes): about 60 instructions")),
    "ash_check": _est(4, "instructions", (
        "each time the library runs: load the ASH's events word, compare it with the last "
        "one seen, branch")),
    "ash_scan_slot": _est(5, "instructions", (
        "when the events word moved, per armed slot: load its state word, mask the new bits, "
        "compare, branch, next")),
    "ash_apply": _est(35, "instructions", (
        "per connection the ASH changed: the TCP's bookkeeping the absorbed segments would "
        "have caused: acknowledge to snd_max, cancel the retransmission timer, arm "
        "FIN-WAIT-2's timer or insert the TIME-WAIT entry, free the PCB: about 35")),
    "thread_create": _est(200, "instructions", (
        "create a thread for a request: take a stack from a free list and set up its "
        "context (about 200 instructions); its switches are charged separately")),
}
