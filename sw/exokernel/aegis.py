"""The Aegis-style exokernel: environments and the secure bindings that protect them.

The kernel multiplexes the hardware and nothing more (SYSTEM.md section 3). It records who owns
what and checks every use:

* **pages**: :meth:`Aegis.alloc_pages` gives an environment physical pages, recorded as page
  owners in :class:`sim.memory.Memory`, whose access check the kernel replaces with its own:
  an environment may touch only its own pages (unowned pages are the kernel's). Every kernel
  call that names memory is checked (:meth:`Aegis.check_memory`), DMA targets included;
* **network**: packet filters (:mod:`sw.exokernel.filters`), merged for demultiplexing; a
  filter that could claim another environment's frames is refused; an environment may attach
  an ASH (:mod:`sw.exokernel.ash`) that runs in the kernel at packet arrival. A frame no
  filter accepts (counted in ``frames_unclaimed``) is dropped (``frames_dropped``) unless
  one environment has claimed the *default* binding (:meth:`Aegis.claim_default`): then it
  is upcalled there, like any frame, so that environment's library OS can do what a host
  must do with traffic no application owns (answer an ICMP echo, reset a connection attempt
  to a closed TCP port: RFC 1122 3.2.2.6 and RFC 793 "Reset Generation"). The kernel itself
  answers nothing. The kernel owns the receive path: :meth:`Aegis.bind_netdev` takes the
  interface's receive slot, queues its frames and demultiplexes them, one at a time in
  arrival order, in the kernel's own receive task; no application attaches to the card or
  pumps frames;
* **ATM virtual circuits** (a card with a VC table, the AN2: an interface whose ``link_layer`` is
  classical IP over ATM, :mod:`sw.libos.net.atm`): :meth:`Aegis.bind_vc` gives a VC to one
  environment (refused, naming the owner, if another has it) and writes the card's VC entry
  with the environment's *owner tag* (:meth:`Aegis.owner_tag`), so every DMA the card does for
  that VC names the environment to the memory; received PDUs are demultiplexed by their VC to
  its owner (a table lookup, no filter), the default environment or nobody; an environment
  may have an ASH run on its VCs' PDUs (:meth:`Aegis.install_vc_ash`). A frame an
  environment sends must name one of its VCs, and every piece of memory its gather list
  references (:class:`sw.libos.net.gather.PhysRef`, handed to the card by address) must be in
  its own pages: :meth:`Aegis.transmit` checks both before anything moves. The card checks
  again: the memory's access check, which the kernel installs, lets a DMA with an owner tag
  reach the tag's environment's pages and the kernel's own (its rings and buffers), never
  another environment's, so a descriptor that bypassed the kernel completes with DmaFault;
* **dynamic ILP** (issue 17): an environment may hand the kernel ILP pipes that observe the
  words (a checksum) to fuse with the driver's copy of every received frame
  (:meth:`Aegis.install_rx_pipes`; their results reach it with the frame) or sent one
  (:meth:`Aegis.install_tx_pipes`; a frame may ask for its checksum to be completed), verified;
  and the pipes of a card that has them in its DMA path (the AN2's checksum: Cheetah's
  ``hwilp``), which the kernel binds, not the application: :meth:`Aegis.install_card_rx_pipes`
  writes the card's entries of the environment's VCs to sum each PDU (a privileged VC-table
  write, charged as :meth:`Aegis.program_vc`'s), :meth:`Aegis.install_card_tx_pipes` lets
  frames ask the card to complete their checksum; a card without pipes (the LANCE) binds none
  and says so (False);
* **disk**: extents of blocks (:class:`ExtentTable`), checked on every request together with
  the pages of its DMA buffer (:meth:`Aegis.disk_request`);
* **CPU**: a vector of time slices that environments claim (:meth:`Aegis.alloc_slices`) and
  a round-robin over it (:meth:`Aegis.run_slices`);
* **control**: frames, interrupts and exceptions are *upcalled* to the owning environment.

Costs, from the CPU's platform profile (e.g. ``decstation-5000-125-aegis``); with no CPU the
kernel runs in zero time (unit tests):

=====================  ======================================================  ==============
work                   cycles                                                  category
=====================  ======================================================  ==============
demultiplex (DPF trie) ``demux_dpf_cycles / DPF_REFERENCE_TESTS`` per test     ``demux``
demultiplex (MPF)      ``demux_mpf_cycles / MPF_REFERENCE_FILTERS`` per filter ``demux``
ASH                    ``kernel_cpi`` x (instructions + 3 per sandbox check);  ``kernel``,
                       its ``copy`` bytes at the profile's bcopy cost          ``copy``
upcall to environment  ``context_switch_cycles`` (protected control transfer)  ``context_switch``
exception upcall       ``exception_dispatch_cycles`` (SOSP'95: 1.5 us)         ``exception``
frame transmit         ``syscall_cycles`` (the kernel call that hands a frame  ``syscall``
                       to the driver; the driver's copy to the card is its own)
VC demultiplex         ``kernel_cpi`` x :data:`VC_DEMUX_INSTRUCTIONS`          ``demux``
VC bind                ``syscall_cycles``                                      ``syscall``
card pipes bind        ``syscall_cycles``, and the driver's VC-entry writes    ``syscall``
interrupt upcall       ``interrupt_dispatch_cycles``                           ``interrupt``
disk request           ``syscall_cycles`` (the kernel call that checks it)     ``syscall``
slice switch           ``context_switch_cycles`` when the environment changes  ``context_switch``
=====================  ======================================================  ==============

Not modelled: capabilities as unforgeable names (ownership is recorded by environment id,
which is what a capability check decides); the TLB (an environment's loads and stores go
through :meth:`Aegis.read` / :meth:`Aegis.write`, which check the pages as a TLB refill would);
preemption inside a slice (an environment's slice handler must return within its slice;
overruns are counted).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from sim.cpu import CONTEXT_SWITCH, COPY, CPU, DEMUX, EXCEPTION, INTERRUPT, KERNEL, SYSCALL
from sim.kernel import Event, Queue
from hw.ilp.registers import PipeError, verify
from sim.memory import Memory, MemoryAccessError, MemoryBoundsError

from .ash import SANDBOX_CHECK_INSTRUCTIONS, Ash
from .filters import (DPF_REFERENCE_TESTS, MPF_REFERENCE_FILTERS, DemuxResult, Filter,
                      FilterTable, LinearFilterTable)

log = logging.getLogger(__name__)

__all__ = ["Aegis", "Environment", "ExtentTable", "DiskAccessError", "BindingError",
           "OutOfPages", "Delivery", "VC_DEMUX_INSTRUCTIONS", "NUM_OWNER_TAGS"]

#: Instructions to demultiplex a PDU by its VC: load the VCI from the frame, index the
#: kernel's VC-owner table, test for an owner (an estimate, about 10 MIPS instructions).
VC_DEMUX_INSTRUCTIONS = 10
#: Owner tags the AN2's VC table carries (hw.an2.registers.NUM_OWNERS; tag 0 is the kernel's).
NUM_OWNER_TAGS = 256

#: ``disk_io(lbn, count, addr, write, requester)``: the disk driver moving ``count`` blocks
#: between the disk and memory at ``addr`` by DMA on behalf of ``requester``.
DiskIO = Callable[[int, int, int, bool, str], Awaitable[None]]


def _head(frame, n: int) -> bytes:
    """The first ``n`` bytes of a frame (bytes, or a gather list whose first piece is the
    header the CPU built)."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame[:n])
    first = frame.pieces[0] if frame.pieces else b""
    return bytes(first[:n]) if isinstance(first, bytes) else b""


class OutOfPages(MemoryError):
    """No free physical pages (or time slices) are left for an allocation."""


class DiskAccessError(PermissionError):
    """A disk request names blocks the environment does not own (the message says which)."""


class BindingError(PermissionError):
    """A resource (time slice, interrupt) is already bound to another environment."""


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(eq=False)
class Environment:
    """An application's protection domain; its ``id`` is the owner recorded on its resources.

    Attributes
    ----------
    on_frame : async callable(frame), optional
        Upcalled when one of its filters accepts a frame no ASH consumed.
    on_interrupt : async callable(name, info), optional
        Upcalled for an interrupt bound to it.
    on_exception : async callable(cause, info), optional
        Upcalled for an exception it caused; returns True if it handled it.
    on_slice : async callable(slot, cycles), optional
        Run in each of its time slices; must do at most ``cycles`` of work.
    """

    id: str
    pages: set[int] = field(default_factory=set)
    filters: set[int] = field(default_factory=set)
    slices: set[int] = field(default_factory=set)
    interrupts: set[str] = field(default_factory=set)
    on_frame: Callable[[bytes], Awaitable[None]] | None = None
    on_interrupt: Callable[[str, Any], Awaitable[None]] | None = None
    on_exception: Callable[[str, Any], Awaitable[bool]] | None = None
    on_slice: Callable[[int, int], Awaitable[None]] | None = None
    frames_upcalled: int = 0
    frames_sent: int = 0
    frames_by_ash: int = 0
    ash_aborts: int = 0
    exceptions: int = 0
    unhandled_exceptions: int = 0
    slices_run: int = 0
    slice_overruns: int = 0

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<env {self.id}>"


_HANDLERS = ("on_frame", "on_interrupt", "on_exception", "on_slice")


@dataclass(frozen=True)
class Delivery:
    """What the kernel did with one received frame.

    Attributes
    ----------
    owner, filter_id
        Who got it (None: no filter accepted it; a frame given to the default environment
        has its owner and no filter id).
    demux : DemuxResult
        The demultiplexer's work.
    demux_cycles, ash_cycles
        Cycles charged for demultiplexing and for the ASH's instructions and checks.
    ash_ran, ash_consumed, ash_aborted, ash_instructions
        The ASH's run (``ash_aborted`` is the reason, or None).
    replies
        Frames the ASH had the kernel send.
    upcalled
        Whether the owner's frame handler was upcalled.
    """

    owner: str | None
    filter_id: int | None
    demux: DemuxResult
    demux_cycles: int
    ash_ran: bool = False
    ash_consumed: bool = False
    ash_aborted: str | None = None
    ash_instructions: int = 0
    ash_cycles: int = 0
    replies: tuple[bytes, ...] = ()
    upcalled: bool = False


class ExtentTable:
    """Ownership of disk blocks by extent; every request is checked against it.

    Parameters
    ----------
    block_count : int
        Blocks on the disk (0 for a machine without one).
    """

    def __init__(self, block_count: int):
        if not _is_int(block_count) or block_count < 0:
            raise ValueError(f"block count must be a non-negative int, not {block_count!r}")
        self.block_count = block_count
        self._extents: list[tuple[int, int, str]] = []      # (start, count, owner), sorted

    @property
    def extents(self) -> list[tuple[int, int, str]]:
        """``(start, count, owner)`` of every claimed extent, in block order."""
        return list(self._extents)

    def _range(self, who: str, verb: str, start, count) -> None:
        if not _is_int(start) or not _is_int(count):
            raise TypeError(f"{who!r}: block numbers must be ints, not {start!r}, {count!r}")
        if count <= 0 or start < 0 or start + count > self.block_count:
            raise DiskAccessError(f"{who!r} may not {verb} blocks {start}..{start + count - 1}: "
                                  f"the disk has blocks 0..{self.block_count - 1}")

    def claim(self, owner: str, start: int, count: int) -> None:
        """Give ``owner`` blocks ``[start, start + count)``.

        Raises
        ------
        DiskAccessError
            If any block is out of range or already owned (naming the owner).
        """
        self._range(owner, "claim", start, count)
        for s, c, who in self._extents:
            if start < s + c and s < start + count:
                raise DiskAccessError(f"{owner!r} may not claim blocks {start}..{start + count - 1}: "
                                      f"blocks {max(s, start)}..{min(s + c, start + count) - 1} "
                                      f"belong to {who!r}")
        self._extents.append((start, count, owner))
        self._extents.sort()

    def release(self, owner: str, start: int, count: int) -> None:
        """Give back exactly an extent ``owner`` claimed (DiskAccessError otherwise)."""
        if (start, count, owner) not in self._extents:
            raise DiskAccessError(f"{owner!r} holds no extent {start}..{start + count - 1}")
        self._extents.remove((start, count, owner))

    def owner_of(self, lbn: int) -> str | None:
        """Who owns block ``lbn`` (None: nobody)."""
        for s, c, who in self._extents:
            if s <= lbn < s + c:
                return who
        return None

    def check(self, owner: str, lbn: int, count: int, write: bool) -> None:
        """Raise :class:`DiskAccessError` unless ``owner`` owns every block of the request."""
        verb = "write" if write else "read"
        self._range(owner, verb, lbn, count)
        covered = 0
        for s, c, who in self._extents:
            lo, hi = max(s, lbn), min(s + c, lbn + count)
            if lo < hi:
                if who != owner:
                    raise DiskAccessError(f"{owner!r} may not {verb} blocks {lo}..{hi - 1}, "
                                          f"owned by {who!r}")
                covered += hi - lo
        if covered != count:
            raise DiskAccessError(f"{owner!r} may not {verb} blocks {lbn}..{lbn + count - 1}: "
                                  f"some of them are owned by nobody")


class Aegis:
    """The exokernel of one machine.

    Parameters
    ----------
    memory : Memory
        Physical memory; the kernel keeps pages below ``reserved_pages`` for itself and
        installs its own access check on it.
    cpu : CPU, optional
        Charged for the kernel's work (None: zero time).
    demux : {"dpf", "mpf"}
        The demultiplexer: DPF's merged trie (:class:`FilterTable`) or interpreted filters one
        by one (:class:`LinearFilterTable`, for comparison).
    disk_blocks, block_size : int
        The disk whose blocks environments claim.
    disk_io : async callable, optional
        The disk driver (:data:`DiskIO`), called for requests that pass the checks.
    slices : int
        Length of the time-slice vector.
    slice_cycles : int
        CPU cycles in one time slice.
    reserved_pages : int
        Pages kept by the kernel (never given to an environment).
    send_frame : async callable(frame), optional
        How the kernel transmits a frame (the network driver); without one it is the bound
        interface's ``send`` (:meth:`bind_netdev`), and with neither the frames are kept in
        :attr:`outbox`.
    name : str
        Names the kernel's tasks (e.g. the machine's name).

    Raises
    ------
    ValueError, TypeError
        For a bad parameter (the message names it).
    """

    def __init__(self, memory: Memory, *, cpu: CPU | None = None, demux: str = "dpf",
                 disk_blocks: int = 0, block_size: int = 512, disk_io: DiskIO | None = None,
                 slices: int = 16, slice_cycles: int = 250_000, reserved_pages: int = 1,
                 send_frame: Callable[[bytes], Awaitable[None]] | None = None,
                 name: str = "aegis"):
        if not isinstance(memory, Memory):
            raise TypeError(f"Aegis needs a sim.memory.Memory, not {memory!r}")
        if cpu is not None and not isinstance(cpu, CPU):
            raise TypeError(f"cpu must be a sim.cpu.CPU or None, not {cpu!r}")
        if demux not in ("dpf", "mpf"):
            raise ValueError(f"demux must be 'dpf' or 'mpf', not {demux!r}")
        if not _is_int(block_size) or block_size <= 0:
            raise ValueError(f"block size must be a positive int, not {block_size!r}")
        if not _is_int(slices) or slices <= 0:
            raise ValueError(f"slice count must be a positive int, not {slices!r}")
        if not _is_int(slice_cycles) or slice_cycles <= 0:
            raise ValueError(f"slice length must be a positive number of cycles, not {slice_cycles!r}")
        if not _is_int(reserved_pages) or not 0 <= reserved_pages <= memory.pages:
            raise ValueError(f"reserved pages must be 0..{memory.pages}, not {reserved_pages!r}")
        if send_frame is not None and not callable(send_frame):
            raise TypeError(f"send_frame must be an async callable or None, not {send_frame!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"the kernel's name must be a non-empty string, not {name!r}")
        self.name = name
        self.memory = memory
        self.cpu = cpu
        self.profile = cpu.profile if cpu is not None else None
        self.filters: FilterTable = FilterTable() if demux == "dpf" else LinearFilterTable()
        self.extents = ExtentTable(disk_blocks)
        self.block_size = block_size
        self.disk_io = disk_io
        self.slice_cycles = slice_cycles
        self._slices: list[str | None] = [None] * slices
        self._interrupts: dict[str, str] = {}
        self.envs: dict[str, Environment] = {}
        self.send_frame = send_frame
        self.outbox: list[bytes] = []
        self._ashes: dict[int, Ash] = {}
        self._vc_ashes: dict[str, Ash] = {}      # by environment: run on its VCs' PDUs
        self._free = list(range(reserved_pages, memory.pages))
        self.default_handler: Callable[[bytes], Awaitable[None]] | None = None
        self.default_env: Environment | None = None
        self.frames_unclaimed = 0
        self.current: Environment | None = None
        #: The network interface whose receive path the kernel owns (:meth:`bind_netdev`).
        self.netdev = None
        #: Frames the bound interface passed to the kernel.
        self.frames_received = 0
        #: Frames no filter accepted and nobody took (no default environment or handler).
        self.frames_dropped = 0
        #: Frames whose delivery raised (the owner's upcall failed); the kernel goes on.
        self.delivery_faults = 0
        self._rxq: Queue | None = None
        #: VCI -> the environment that owns the VC (:meth:`bind_vc`).
        self.vcs: dict[int, str] = {}
        self._tags: dict[str, int] = {}
        self._tag_env: dict[int, str] = {}
        #: Frames refused by :meth:`transmit` (not the sender's VC or memory).
        self.transmits_refused = 0
        #: The environment whose ILP pipes the receive copy runs (:meth:`install_rx_pipes`).
        self._rx_pipes_env: str | None = None
        #: Environments whose VCs run the card's receive pipes -> the pipes
        #: (:meth:`install_card_rx_pipes`).
        self._card_rx: dict[str, tuple] = {}
        #: VCI -> the entry fields last written to the card (:meth:`_write_vc`).
        self._vc_written: dict[int, dict] = {}
        self._vc_busy = False
        self._vc_free = Event(memory.kernel, f"{name}.vctable")
        memory.access_check = self._access_check

    # -- environments ------------------------------------------------------------------------
    def create_env(self, name: str, **handlers) -> Environment:
        """A new environment named ``name`` (``handlers``: ``on_frame=...`` etc.)."""
        if not isinstance(name, str) or not name or name in self.envs:
            raise ValueError(f"environment name must be a new non-empty string, not {name!r}")
        for key, fn in handlers.items():
            if key not in _HANDLERS:
                raise TypeError(f"unknown environment handler {key!r} (one of {', '.join(_HANDLERS)})")
            if fn is not None and not callable(fn):
                raise TypeError(f"handler {key} must be an async callable, not {fn!r}")
        env = Environment(name, **handlers)
        self.envs[name] = env
        return env

    def _env(self, env) -> Environment:
        if not isinstance(env, Environment) or self.envs.get(env.id) is not env:
            raise TypeError(f"not an environment of this kernel: {env!r}")
        return env

    # -- pages -------------------------------------------------------------------------------
    def alloc_pages(self, env: Environment, n: int) -> list[int]:
        """Give ``env`` ``n`` free physical pages (their numbers, lowest first).

        Raises
        ------
        ValueError
            If ``n`` is not a positive int.
        OutOfPages
            If fewer than ``n`` pages are free.
        """
        self._env(env)
        if not _is_int(n) or n <= 0:
            raise ValueError(f"page count must be a positive int, not {n!r}")
        if n > len(self._free):
            raise OutOfPages(f"{env!r} asked for {n} pages; {len(self._free)} are free")
        pages, self._free = self._free[:n], self._free[n:]
        for p in pages:
            self.memory.set_owner(p, env.id)
            env.pages.add(p)
        return pages

    def free_pages(self, env: Environment, pages: list[int]) -> None:
        """Give pages back (all or none: MemoryAccessError if one is not ``env``'s)."""
        self._env(env)
        for p in pages:
            if p not in env.pages:
                raise MemoryAccessError(self.memory.name, p, self.memory.page_size,
                                        self.memory.owner(p), env.id, True)
        for p in pages:
            env.pages.discard(p)
            self.memory.set_owner(p, None)
            self._free.append(p)
        self._free.sort()

    def page_addr(self, page: int) -> int:
        """The physical address of ``page``."""
        return page * self.memory.page_size

    def owns(self, env: Environment, addr: int, n: int) -> bool:
        """Does ``env`` own every page of ``[addr, addr + n)`` (n == 0: the page of addr)?"""
        if not _is_int(addr) or not _is_int(n) or addr < 0 or n < 0 or addr + max(n, 1) > self.memory.size:
            return False
        return all(p in env.pages for p in self.memory.pages_of(addr, max(n, 1)))

    def check_memory(self, env: Environment, addr: int, n: int, write: bool) -> None:
        """The check every kernel call naming memory makes (DMA targets too).

        Raises
        ------
        MemoryAccessError
            Unless ``env`` owns all of ``[addr, addr + n)`` (names page, owner and requester).
        MemoryBoundsError
            If the range is outside memory.
        """
        self.memory.check(addr, n, env.id, write)

    def read(self, env: Environment, addr: int, n: int) -> bytes:
        """``env`` loads ``n`` bytes (refused with MemoryAccessError unless it owns them)."""
        return self.memory.read(addr, n, self._env(env).id)

    def write(self, env: Environment, addr: int, data: bytes) -> None:
        """``env`` stores ``data`` (refused, nothing written, unless it owns every page)."""
        self.memory.write(addr, data, self._env(env).id)

    def _access_check(self, page: int, owner, requester, write: bool) -> bool:
        # The kernel (None) may touch anything; an environment only its own pages: unowned
        # pages are the kernel's here, not open to all. A card's DMA names an owner tag (an
        # int): its environment's pages and the kernel's own buffers, never another's pages.
        if requester is None:
            return True
        if isinstance(requester, int) and not isinstance(requester, bool):
            return owner is None or owner == self._tag_env.get(requester)
        return owner == requester

    # -- ATM virtual circuits ----------------------------------------------------------------
    def owner_tag(self, env: Environment) -> int:
        """``env``'s owner tag (1 .. NUM_OWNER_TAGS - 1), given on first use.

        Raises
        ------
        OutOfPages
            If every tag is taken.
        """
        env = self._env(env)
        tag = self._tags.get(env.id)
        if tag is None:
            tag = len(self._tags) + 1
            if tag >= NUM_OWNER_TAGS:
                raise OutOfPages(f"{env.id!r}: all {NUM_OWNER_TAGS - 1} owner tags are taken")
            self._tags[env.id] = tag
            self._tag_env[tag] = env.id
        return tag

    def _atm(self) -> bool:
        return getattr(self.netdev, "link_layer", None) is not None

    def claim_vc(self, env: Environment, vci: int) -> bool:
        """Record VC ``vci`` (VPI 0) of the bound ATM interface as ``env``'s: its received PDUs
        go to ``env`` and only ``env`` may send on it. Returns whether the VC is newly
        ``env``'s (the card's entry must then get ``env``'s tag: :meth:`program_vc`).

        Raises
        ------
        BindingError
            If another environment owns the VC (the message names it), or the kernel has no
            ATM interface bound.
        ValueError
            For a VCI the interface has no PVC on.
        """
        env = self._env(env)
        if not self._atm():
            raise BindingError(f"{env.id!r} may not bind VC {vci!r}: {self.name} has no ATM "
                               f"interface bound")
        if vci not in self.netdev.link_layer.peers:
            raise ValueError(f"{env.id!r} may not bind VC {vci!r}: no PVC of "
                             f"{self.netdev!r} uses it")
        who = self.vcs.get(vci)
        if who is not None and who != env.id:
            raise BindingError(f"{env.id!r} may not bind VC {vci}: it is bound to {who!r}")
        self.owner_tag(env)
        self.vcs[vci] = env.id
        return who is None

    async def program_vc(self, vci: int) -> None:
        """Write the card's entry of claimed VC ``vci`` with its owner's tag, and the card's
        receive pipes if its owner has them bound (:meth:`install_card_rx_pipes`), through
        the driver: the system call's work (``syscall_cycles``) and the driver's."""
        await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        await self._write_vc(vci)

    def _vc_fields(self, vci: int) -> dict:
        """The entry fields VC ``vci`` should have: its owner's tag and pipes."""
        who = self.vcs[vci]
        pipes = self._card_rx.get(who)
        fields = {"owner": self._tags[who]}
        if pipes is not None:
            fields.update(self.netdev.rx_pipe_fields(pipes))
        return fields

    async def _write_vc(self, vci: int) -> None:
        """Write VC ``vci``'s entry (the driver's VcIndex and VcEntry stores, charged as bus
        accesses), one entry at a time: two writers would interleave the register pair."""
        while self._vc_busy:
            await self._vc_free
        self._vc_busy = True
        self._vc_free.clear()
        try:
            fields = self._vc_fields(vci)
            self._vc_written[vci] = fields
            await self.netdev.driver.open_vc(vci, **fields)
        finally:
            self._vc_busy = False
            self._vc_free.set()

    async def bind_vc(self, env: Environment, vci: int) -> int:
        """Give VC ``vci`` to ``env`` (:meth:`claim_vc`, same errors, raised before anything
        changes) and write the card's VC entry with ``env``'s owner tag, which is returned: a
        system call. Binding a VC ``env`` owns already changes nothing."""
        if self.claim_vc(env, vci):
            await self.program_vc(vci)
        else:
            await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        return self._tags[env.id]

    def _check_transmit(self, env: Environment, frame) -> None:
        """The checks of a frame ``env`` sends: its VC (on ATM) and its memory references."""
        if self._atm():
            vci = int.from_bytes(_head(frame, 4)[2:4], "big")
            if self.vcs.get(vci) != env.id:
                raise BindingError(f"{env.id!r} may not send on VC {vci}: it is bound to "
                                   f"{self.vcs.get(vci)!r}")
        for ref in getattr(frame, "refs", ()):
            self.check_memory(env, ref.addr, ref.length, write=False)

    # -- charging ------------------------------------------------------------------------------
    async def _charge(self, cycles: int, category: str) -> None:
        if self.cpu is not None and cycles:
            await self.cpu.charge(cycles, category)

    def _cycles(self, name: str) -> int:
        return self.profile.cycles(getattr(self.profile, name)) if self.profile else 0

    def demux_cycles(self, res: DemuxResult) -> int:
        """Cycles the demultiplexer's work costs (0 without a CPU)."""
        if self.profile is None:
            return 0
        if self.filters.kind == "dpf":
            return self.profile.cycles(self.profile.demux_dpf_cycles.value * res.tests
                                       / DPF_REFERENCE_TESTS)
        return self.profile.cycles(self.profile.demux_mpf_cycles.value * res.filters_evaluated
                                   / MPF_REFERENCE_FILTERS)

    def ash_cycles(self, instructions: int, sandbox_checks: int) -> int:
        """Cycles for an ASH run (instructions at the kernel CPI; copies are extra)."""
        if self.profile is None:
            return 0
        return self.profile.instructions(instructions + SANDBOX_CHECK_INSTRUCTIONS * sandbox_checks)

    # -- network -----------------------------------------------------------------------------
    def install_filter(self, env: Environment, flt: Filter, ash: list[tuple] | None = None) -> int:
        """Bind ``flt`` (and optionally an ASH program) to ``env``; returns the filter id.

        Raises
        ------
        FilterConflict
            If ``flt`` could accept frames another environment's filter accepts.
        AshRefused
            If the ASH fails verification (loops, bad registers, accesses outside ``env``'s
            pages at constant addresses).

        Nothing changes when a refusal is raised.
        """
        self._env(env)
        self.filters.check(flt, env.id)
        handler = None if ash is None else self._ash(env, ash)
        fid = self.filters.install(flt, env.id)
        env.filters.add(fid)
        if handler is not None:
            self._ashes[fid] = handler
        return fid

    def _ash(self, env: Environment, program: list[tuple]) -> Ash:
        """``program`` verified (:class:`AshRefused` otherwise) and bound to ``env``'s memory."""
        return Ash(program, env.id, lambda a, n: self.owns(env, a, n),
                   lambda a, n: self.memory.read(a, n, env.id),
                   lambda a, b: self.memory.write(a, b, env.id))

    def install_vc_ash(self, env: Environment, ash: list[tuple]) -> None:
        """Run the ASH ``ash`` on every PDU the kernel demultiplexes to ``env`` by one of its
        VCs (an ATM interface: there is no packet filter to attach it to), replacing one
        installed before. Its replies must name a VC of ``env``'s, as its transmits must:
        one that does not is dropped and counted in :attr:`transmits_refused`.

        Raises
        ------
        AshRefused
            If the ASH fails verification (nothing changes).
        """
        self._vc_ashes[self._env(env).id] = self._ash(env, ash)

    def install_tx_pipes(self, env: Environment, pipes) -> bool:
        """Dynamic ILP on the transmit path: fuse ILP pipes that observe the words (the
        Internet checksum) with the copy the kernel's driver makes of every frame sent (the
        interface's ``install_tx_pipes``), so a frame that asks for it
        (:func:`sw.libos.ilp.inloop.mark_sum_at`) has its checksum completed as it is copied.
        Returns False when the interface makes no CPU copy (nothing is installed). The pipes
        only observe and complete a field of the sender's own frame, so any environment may
        ask; the last list installed is the one run.

        Raises
        ------
        PipeError
            For a pipe that does not verify or that changes words.
        BindingError
            If no interface is bound.
        """
        checked = self._observers(env, pipes, "transmit copy")
        install = getattr(self.netdev, "install_tx_pipes", None)
        if install is None:
            return False
        install(checked)
        return True

    # -- the card's own pipes (Cheetah's hwilp) --------------------------------------------------
    def _card_pipes(self, env: Environment, pipes, way: str) -> list | None:
        """``pipes`` verified as observers, or None when the bound card has no ``way`` pipes
        (an interface without ``card_pipes``: the LANCE)."""
        checked = self._observers(env, pipes, f"card's {way} path")
        offered = getattr(self.netdev, "card_pipes", None)
        if not offered or not offered.get(way):
            return None
        for p in checked:
            if p not in offered[way]:
                raise PipeError(f"{self.name}: the card has no {way} pipe {p.name!r} (it has "
                                f"{[q.name for q in offered[way]]}); {env.id!r} may not bind it")
        return checked

    async def install_card_rx_pipes(self, env: Environment, pipes) -> bool:
        """Bind the card's receive ``pipes`` (the Internet checksum) on ``env``'s VCs: the
        kernel writes the card's entry of each VC ``env`` owns (now, and of those it binds
        later) so that the card sums each PDU on its way into memory and the driver hands the
        sum up with it (:mod:`sw.libos.net.atm`). A system call (``syscall_cycles``) and the
        driver's register writes for each VC written. Only ``env``'s VCs change. Returns
        False, binding nothing, when the card has no receive pipes (the LANCE).

        Raises
        ------
        PipeError
            For a pipe that does not verify, changes words or is not the card's.
        BindingError
            If no interface is bound.
        """
        env = self._env(env)
        checked = self._card_pipes(env, pipes, "rx")
        if checked is None:
            return False
        self._card_rx[env.id] = tuple(checked)
        await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        for vci in sorted(v for v, who in self.vcs.items() if who == env.id):
            written = self._vc_written.get(vci)
            # A VC not written yet gets the pipes when it is (program_vc reads them then).
            if written is not None and written != self._vc_fields(vci):
                await self._write_vc(vci)
        return True

    async def install_card_tx_pipes(self, env: Environment, pipes) -> bool:
        """Bind the card's transmit ``pipes`` (the Internet checksum): frames that ask
        (:func:`sw.libos.ilp.inloop.mark_sum_at`) go to the card with their checksum left to
        it. The card only completes a field of the sender's own frame, so any environment
        may ask. A system call (``syscall_cycles``). Returns False, binding nothing, when the
        card has no transmit pipes (the LANCE). Raises as :meth:`install_card_rx_pipes`.
        """
        checked = self._card_pipes(self._env(env), pipes, "tx")
        if checked is None:
            return False
        await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        self.netdev.install_card_tx_pipes(checked)
        return True

    def _observers(self, env: Environment, pipes, where: str) -> list:
        """``pipes`` verified, each only observing the words (PipeError otherwise)."""
        self._env(env)
        if self.netdev is None:
            raise BindingError(f"{self.name}: no network interface is bound to fuse pipes with")
        checked = [verify(p) for p in pipes]
        for p in checked:
            if p.stores:
                raise PipeError(f"pipe {p.name!r} of {env.id!r} changes words (it has stw): "
                                f"the {where} takes only pipes that observe")
        return checked

    def install_rx_pipes(self, env: Environment, pipes) -> bool:
        """Dynamic ILP on the receive path: fuse ``env``'s ILP pipes (:mod:`hw.ilp.registers`)
        with the copy the kernel's driver makes of every received frame, where that copy is
        (the interface's ``install_rx_pipes`` compiles them with its card's data-movement
        rule). Returns False when the bound interface makes no CPU copy to fuse with (a DMA
        card such as the AN2: the data is already in memory; nothing is installed).

        The copy runs before demultiplexing, for every frame, so the kernel accepts only pipes
        that observe the words (a checksum), and one environment's: its results reach the
        owner with the frame (:class:`sw.libos.ilp.inloop.IlpFrame`), and other environments'
        frames are copied unchanged.

        Raises
        ------
        PipeError
            For a pipe that does not verify or that changes words (the message names it).
        BindingError
            If no interface is bound, or another environment's pipes are installed.
        """
        self._env(env)
        if self._rx_pipes_env not in (None, env.id):
            raise BindingError(f"{self.name}: the receive copy already runs the pipes of "
                               f"{self._rx_pipes_env!r}")
        checked = self._observers(env, pipes, "receive copy (it runs before demultiplexing, "
                                              "on every environment's frames)")
        install = getattr(self.netdev, "install_rx_pipes", None)
        if install is None:
            return False
        install(checked)
        self._rx_pipes_env = env.id
        return True

    def remove_vc_ash(self, env: Environment) -> None:
        """Stop running ``env``'s VC ASH (if it has one)."""
        self._vc_ashes.pop(self._env(env).id, None)

    def remove_filter(self, env: Environment, fid: int) -> None:
        """Remove one of ``env``'s filters (and its ASH)."""
        self.filters.remove(fid, self._env(env).id)
        env.filters.discard(fid)
        self._ashes.pop(fid, None)

    def claim_default(self, env: Environment) -> None:
        """Make ``env`` the default environment: frames no filter accepts are upcalled to its
        ``on_frame`` (instead of being dropped).

        Raises
        ------
        BindingError
            If another environment holds the default binding.
        """
        env = self._env(env)
        if self.default_env is not None and self.default_env is not env:
            raise BindingError(f"the default binding belongs to {self.default_env.id!r}; "
                               f"{env.id!r} cannot claim it")
        self.default_env = env

    def release_default(self, env: Environment) -> None:
        """Give up the default binding (unclaimed frames are dropped again)."""
        if self.default_env is self._env(env):
            self.default_env = None

    async def _upcall(self, env: Environment) -> None:
        # A protected control transfer into the environment (Aegis changes the ASID and
        # jumps to the environment's entry point).
        self.current = env
        await self._charge(self._cycles("context_switch_cycles"), CONTEXT_SWITCH)

    async def _upcall_frame(self, env: Environment, frame: bytes) -> None:
        """Upcall ``env`` with ``frame`` (counted in its ``frames_upcalled``)."""
        await self._upcall(env)
        env.frames_upcalled += 1
        if env.on_frame is not None:
            await env.on_frame(frame)

    def bind_netdev(self, netdev) -> None:
        """Own ``netdev``'s receive path: the kernel takes its receive slot
        (``netdev.attach``), queues every frame it passes and demultiplexes them in arrival
        order in its own receive task (:meth:`deliver`, with its costs), which upcalls the
        owning environment, the default environment, or drops the frame (counted in
        :attr:`frames_dropped`). Frames are transmitted through ``netdev.send`` unless the
        kernel was given a ``send_frame``.

        The operating system calls this once at boot, before any application starts;
        applications then only install filters.

        Parameters
        ----------
        netdev : NetDevice
            The interface (:class:`sw.libos.net.ether.NetDevice` with ``attach``): a 6-byte
            ``mac``, ``async send(frame)`` and ``attach(fn)``.

        Raises
        ------
        TypeError
            If ``netdev`` lacks ``mac``, ``send`` or ``attach``.
        BindingError
            If the kernel already owns an interface, or an application attached itself to
            this one (its ``receiver`` is set): the kernel would silently take its frames.
        """
        if not (isinstance(getattr(netdev, "mac", None), bytes) and len(netdev.mac) == 6
                and callable(getattr(netdev, "send", None))
                and callable(getattr(netdev, "attach", None))):
            raise TypeError(f"bind_netdev needs an interface with a 6-byte mac, send() and "
                            f"attach(), not {netdev!r}")
        if self.netdev is not None:
            raise BindingError(f"{self.name}: the receive path is already bound to "
                               f"{self.netdev!r}; {netdev!r} cannot be bound too")
        taken = getattr(netdev, "receiver", None)
        if taken is not None:
            raise BindingError(f"{self.name}: {netdev!r} already passes its frames to "
                               f"{taken!r} (an application attached itself); the kernel "
                               f"must bind the interface before applications start")
        self.netdev = netdev
        if self.send_frame is None:
            self.send_frame = netdev.send
        kernel = self.memory.kernel
        self._rxq = Queue(kernel, name=f"{self.name}.rx")
        netdev.attach(self._frame_in)
        kernel.spawn(self._rx_loop(), name=f"{self.name}.rx", daemon=True)

    def _frame_in(self, frame: bytes) -> None:
        """The bound interface's receive slot: queue the frame for the receive task."""
        self.frames_received += 1
        # A bytes frame goes as it is (an ILP frame keeps its pipes' results).
        self._rxq.put_nowait(frame if isinstance(frame, bytes) else bytes(frame))

    async def _rx_loop(self) -> None:
        """The kernel's receive task: demultiplex queued frames one at a time."""
        q = self._rxq
        while True:
            frame = await q.get()
            try:
                await self.deliver(frame)
            except Exception:                   # noqa: BLE001 - one upcall's failure stays its own
                self.delivery_faults += 1
                log.error("%s: delivering a frame failed", self.name, exc_info=True)

    def stats(self) -> dict:
        """The network counters: frames received, unclaimed, dropped, faults, and per
        environment frames upcalled, handled by an ASH, and sent (JSON-serialisable)."""
        return {"frames_received": self.frames_received,
                "frames_unclaimed": self.frames_unclaimed,
                "frames_dropped": self.frames_dropped,
                "delivery_faults": self.delivery_faults,
                "default_env": self.default_env.id if self.default_env is not None else None,
                "envs": {e.id: {"frames_upcalled": e.frames_upcalled,
                                "frames_by_ash": e.frames_by_ash,
                                "frames_sent": e.frames_sent} for e in self.envs.values()}}

    async def deliver(self, frame: bytes) -> Delivery:
        """A frame arrived: demultiplex it, run its owner's ASH, upcall the owner if needed.

        Frames no filter accepts (counted in :attr:`frames_unclaimed`) are upcalled to the
        default environment (:meth:`claim_default`) if there is one, else given to
        :attr:`default_handler` (a kernel hook, no upcall) if set, else dropped (counted in
        :attr:`frames_dropped`). The frame is handed over as the driver received it (the FCS
        may be included; filters and ASHs decide what they read).
        """
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"deliver needs a frame of bytes, not {type(frame).__name__}")
        if not isinstance(frame, bytes):
            frame = bytes(frame)
        if self._atm():
            return await self._deliver_pdu(frame)
        res = self.filters.demux(frame)
        dcy = self.demux_cycles(res)
        await self._charge(dcy, DEMUX)
        if res.owner is None:
            self.frames_unclaimed += 1
            env = self.default_env
            if env is not None:
                await self._upcall_frame(env, frame)
                return Delivery(env.id, None, res, dcy, upcalled=True)
            if self.default_handler is not None:
                await self.default_handler(frame)
            else:
                self.frames_dropped += 1
            return Delivery(None, None, res, dcy)
        env = self.envs[res.owner]
        return await self._to_env(env, self._ashes.get(res.filter_id), frame, res,
                                  res.filter_id, dcy)

    async def _to_env(self, env: Environment, ash: Ash | None, frame: bytes, res: DemuxResult,
                      fid: int | None, dcy: int) -> Delivery:
        """Run ``env``'s ASH on ``frame`` (if it has one), charged; upcall ``env`` unless the
        ASH consumed the frame."""
        if ash is None:
            await self._upcall_frame(env, frame)
            return Delivery(env.id, fid, res, dcy, upcalled=True)
        out = ash.run(frame)
        acy = self.ash_cycles(out.instructions, out.sandbox_checks)
        await self._charge(acy, KERNEL)
        if out.copied and self.cpu is not None:
            await self.cpu.copy(out.copied, category=COPY)
        if out.aborted:
            env.ash_aborts += 1
            log.info("%s", out.aborted)
        for r in out.replies:
            if self._atm():
                try:
                    self._check_transmit(env, r)
                except BindingError as e:
                    self.transmits_refused += 1
                    log.info("ASH of %r: reply dropped: %s", env.id, e)
                    continue
            await self._to_driver(r)
        if out.consumed:
            env.frames_by_ash += 1
        else:
            await self._upcall_frame(env, frame)
        return Delivery(env.id, fid, res, dcy, ash_ran=True, ash_consumed=out.consumed,
                        ash_aborted=out.aborted, ash_instructions=out.instructions,
                        ash_cycles=acy, replies=tuple(out.replies), upcalled=not out.consumed)

    async def _deliver_pdu(self, frame: bytes) -> Delivery:
        """An ATM frame arrived: run its VC owner's ASH (:meth:`install_vc_ash`), upcall the
        owner unless the ASH consumed it (or upcall the default environment)."""
        vci = int.from_bytes(frame[2:4], "big") if len(frame) >= 4 else -1
        dcy = self.profile.instructions(VC_DEMUX_INSTRUCTIONS) if self.profile else 0
        await self._charge(dcy, DEMUX)
        who = self.vcs.get(vci)
        res = DemuxResult(who, None, 1, 0, len(self.vcs))
        env = self.envs[who] if who is not None else self.default_env
        if who is None:
            self.frames_unclaimed += 1
            if env is None:
                if self.default_handler is not None:
                    await self.default_handler(frame)
                else:
                    self.frames_dropped += 1
                return Delivery(None, None, res, dcy)
            return await self._to_env(env, None, frame, res, None, dcy)
        return await self._to_env(env, self._vc_ashes.get(who), frame, res, None, dcy)

    async def transmit(self, env: Environment, frame: bytes) -> None:
        """``env`` sends ``frame``: a system call into the kernel, which hands the frame to the
        network driver (:attr:`send_frame`; kept in :attr:`outbox` without one).

        Aegis exports the network interface through system calls: a library OS cannot touch
        the card's registers or its buffer memory, so every frame it sends enters the kernel
        once (SOSP'95 section 5: the network is multiplexed by the kernel, received frames by
        packet filters, sent ones through the kernel's driver). Charged ``syscall_cycles``
        (:data:`SYSCALL`), as :meth:`disk_request` is; the driver charges its own copy into
        the card and its register accesses.

        The frame may be a gather list (:class:`sw.libos.net.gather.Gather`): its memory
        references go to the driver by address, and each must lie in ``env``'s pages. On an
        ATM interface the frame must name a VC ``env`` owns (:meth:`bind_vc`). Both are
        checked before anything moves (counted in :attr:`transmits_refused`).

        Raises
        ------
        TypeError
            For an environment of another kernel or a frame that is neither bytes nor a
            gather list.
        BindingError
            For a VC ``env`` does not own (the message names the VC and its owner).
        MemoryAccessError, MemoryBoundsError
            For a reference to memory that is not ``env``'s (naming the page and its owner).
        """
        self._env(env)
        gather = hasattr(frame, "refs") and hasattr(frame, "prepend")
        if not gather and not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"transmit needs a frame of bytes or a gather list, not "
                            f"{type(frame).__name__}")
        await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        try:
            self._check_transmit(env, frame)
        except (BindingError, MemoryAccessError, MemoryBoundsError):
            self.transmits_refused += 1
            raise
        env.frames_sent += 1
        # A bytes frame goes as it is (one asking the copy loop for its checksum keeps asking).
        await self._to_driver(frame if gather or isinstance(frame, bytes) else bytes(frame))

    async def _to_driver(self, frame: bytes) -> None:
        """Hand ``frame`` to the network driver (:attr:`send_frame`), or keep it in
        :attr:`outbox` when the kernel has none."""
        if self.send_frame is not None:
            await self.send_frame(frame)
        else:
            self.outbox.append(frame)

    # -- disk --------------------------------------------------------------------------------
    def claim_blocks(self, env: Environment, start: int, count: int) -> None:
        """Give ``env`` the extent ``[start, start + count)`` (DiskAccessError if taken)."""
        self.extents.claim(self._env(env).id, start, count)

    def check_disk(self, env: Environment, lbn: int, count: int, addr: int, write: bool) -> None:
        """The checks of a disk request, made before anything moves.

        The blocks must be ``env``'s (:class:`DiskAccessError`), and so must every page of
        the DMA buffer (:class:`~sim.memory.MemoryAccessError`): a disk read writes memory, a
        disk write reads it.
        """
        self._env(env)
        self.extents.check(env.id, lbn, count, write)
        self.check_memory(env, addr, count * self.block_size, write=not write)

    async def disk_request(self, env: Environment, lbn: int, count: int, addr: int,
                           write: bool) -> None:
        """``env`` reads (``write=False``) or writes ``count`` blocks at ``lbn`` to or from
        memory at ``addr``: a system call, checked, then handed to the disk driver.

        Raises
        ------
        DiskAccessError, MemoryAccessError, MemoryBoundsError
            From :meth:`check_disk`; nothing has moved.
        RuntimeError
            If the kernel has no disk driver.
        """
        await self._charge(self._cycles("syscall_cycles"), SYSCALL)
        self.check_disk(env, lbn, count, addr, write)
        if self.disk_io is None:
            raise RuntimeError("this kernel has no disk driver (disk_io is None)")
        await self.disk_io(lbn, count, addr, write, env.id)

    # -- interrupts and exceptions ------------------------------------------------------------
    def bind_interrupt(self, env: Environment, name: str) -> None:
        """Route interrupt ``name`` to ``env`` (BindingError if another owns it)."""
        self._env(env)
        if not isinstance(name, str) or not name:
            raise ValueError(f"interrupt name must be a non-empty string, not {name!r}")
        who = self._interrupts.get(name)
        if who is not None and who != env.id:
            raise BindingError(f"{env.id!r} may not bind interrupt {name!r}: it is bound to {who!r}")
        self._interrupts[name] = env.id
        env.interrupts.add(name)

    async def interrupt(self, name: str, info: Any = None) -> str | None:
        """Interrupt ``name`` fired: upcall its owner (returns the owner's id, or None if the
        interrupt is bound to nobody and was dropped)."""
        await self._charge(self._cycles("interrupt_dispatch_cycles"), INTERRUPT)
        who = self._interrupts.get(name)
        if who is None:
            log.info("interrupt %r bound to no environment: dropped", name)
            return None
        env = self.envs[who]
        self.current = env
        if env.on_interrupt is not None:
            await env.on_interrupt(name, info)
        return who

    async def exception(self, env: Environment, cause: str, info: Any = None) -> bool:
        """``env`` caused an exception (e.g. a protection fault): upcall its handler.

        Returns the handler's verdict (False, and counted as unhandled, when it has none).
        """
        self._env(env)
        await self._charge(self._cycles("exception_dispatch_cycles"), EXCEPTION)
        env.exceptions += 1
        self.current = env
        handled = bool(await env.on_exception(cause, info)) if env.on_exception else False
        if not handled:
            env.unhandled_exceptions += 1
        return handled

    async def checked_read(self, env: Environment, addr: int, n: int) -> bytes | None:
        """A load by ``env`` with the fault upcalled: the bytes, or None after a protection
        fault was dispatched to its exception handler (no byte is read)."""
        try:
            return self.read(env, addr, n)
        except (MemoryAccessError, MemoryBoundsError) as exc:
            await self.exception(env, "protection", exc)
            return None

    # -- time slices -----------------------------------------------------------------------------
    def alloc_slices(self, env: Environment, n: int) -> list[int]:
        """Give ``env`` ``n`` free slots of the slice vector (lowest first)."""
        self._env(env)
        if not _is_int(n) or n <= 0:
            raise ValueError(f"slice count must be a positive int, not {n!r}")
        free = [i for i, o in enumerate(self._slices) if o is None]
        if n > len(free):
            raise OutOfPages(f"{env!r} asked for {n} time slices; {len(free)} are free")
        for i in free[:n]:
            self._slices[i] = env.id
            env.slices.add(i)
        return free[:n]

    def bind_slice(self, env: Environment, slot: int) -> None:
        """Claim one particular slot (BindingError if it is another's)."""
        self._env(env)
        if not _is_int(slot) or not 0 <= slot < len(self._slices):
            raise ValueError(f"no time slice {slot!r} (the vector has {len(self._slices)})")
        who = self._slices[slot]
        if who is not None and who != env.id:
            raise BindingError(f"{env.id!r} may not take time slice {slot}: it belongs to {who!r}")
        self._slices[slot] = env.id
        env.slices.add(slot)

    async def run_slices(self, rounds: int = 1) -> None:
        """Run the slice vector round-robin ``rounds`` times.

        Each owned slot switches to its environment (charging a context switch when the
        environment changes) and runs its ``on_slice(slot, slice_cycles)``; a handler that
        takes longer than its slice is counted in ``slice_overruns`` (Aegis would abort it).
        Empty slots are skipped.
        """
        if not _is_int(rounds) or rounds < 0:
            raise ValueError(f"rounds must be a non-negative int, not {rounds!r}")
        for _ in range(rounds):
            for slot, who in enumerate(self._slices):
                if who is None:
                    continue
                env = self.envs[who]
                if self.current is not env:
                    self.current = env
                    await self._charge(self._cycles("context_switch_cycles"), CONTEXT_SWITCH)
                env.slices_run += 1
                if env.on_slice is None:
                    continue
                t0 = self.cpu.kernel.now if self.cpu is not None else 0
                await env.on_slice(slot, self.slice_cycles)
                if self.cpu is not None and self.cpu.kernel.now - t0 > self.slice_cycles * self.cpu.period:
                    env.slice_overruns += 1
