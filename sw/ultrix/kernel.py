"""The Ultrix 4.3 kernel as the web servers feel it: processes, system calls, sleep/wakeup.

Ultrix 4.3 is a 4.3BSD-derived monolithic kernel. What the baseline servers pay for, and what
this model charges to the one CPU (categories of :mod:`sim.cpu`):

* **Processes.** Each process is a simulation task running on the machine's CPU. A process
  runs until it blocks (the CPU's run-until-block semantics; Ultrix does not preempt a
  process in the kernel, and the servers' user-level bursts are far shorter than the 100 ms
  quantum). When a process resumes after sleeping and it is not the process that last held
  the CPU, ``context_switch_cycles`` are charged (:data:`~sim.cpu.CONTEXT_SWITCH`): that is
  ``swtch()`` in BSD. The network stack's input runs as software-interrupt work on the same
  CPU and does not change the current process.
* **System calls.** Every call charges ``syscall_cycles`` (:data:`~sim.cpu.SYSCALL`) before
  its own work; the count per call name is kept (:attr:`UltrixKernel.syscalls`).
* **fork()** charges ``fork_cycles`` in the parent.
* **Sleep/wakeup.** :class:`WaitChannel` is BSD's ``sleep(chan)``/``wakeup(chan)``: a wakeup
  makes every sleeper runnable and each re-checks its condition.
* **alarm(2)** (:meth:`Process.alarm`) arms the process's real-time interval timer; when it
  expires while the process sleeps in a system call, the call is interrupted and
  :class:`Alarm` is raised in the process (SIGALRM with a handler that ``longjmp``s out, as
  NCSA httpd's ``timed_out`` did). Only :meth:`Process.sleep` (socket waits, BSD's
  interruptible ``tsleep``) is interrupted; the inode lock is not (an uninterruptible sleep).
* **Files.** :meth:`UltrixKernel.stat`, :meth:`UltrixKernel.open` and
  :meth:`UltrixKernel.read_file` go through :mod:`sw.libos.fs` (which charges the copy from the
  buffer cache into the user's buffer) plus a ``namei`` estimate per path component; the file
  system is not re-entrant, so one process at a time uses it (the inode lock of Ultrix).

Costs the platform profile lacks are in :class:`UltrixCosts` with their reasoning.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Any, Awaitable, Callable

from sim.cache import Region
from sim.cpu import APPLICATION, CONTEXT_SWITCH, CPU, FILESYSTEM, KERNEL, SYSCALL
from sim.kernel import Event, Kernel, Task
from sim.time import S
from sw.libos.fs.errors import IsADirectory

log = logging.getLogger(__name__)

__all__ = ["UltrixCosts", "ULTRIX_COSTS_CPI", "cpi_scale", "costs_at", "WaitChannel", "Mutex", "Process", "UltrixKernel",
           "OpenFile", "Alarm"]

#: The R3000's kernel CPI on the 3MIN (profile ``kernel_cpi``: 37.5 cycles / 18 instr.), the
#: CPI at which :class:`UltrixCosts`' cycle counts were computed from instruction counts.
ULTRIX_COSTS_CPI = 37.5 / 18


@dataclass(frozen=True)
class UltrixCosts:
    """Ultrix costs (CPU cycles) that the platform profile does not hold: all estimates.

    Each is an instruction count of the 4.3BSD code path times the kernel CPI of the 3MIN
    (2.08, profile ``kernel_cpi``), rounded. They are inputs, never tuned to an end result.

    Attributes
    ----------
    mbuf : float
        Allocating and later freeing one mbuf or cluster (``MGET``/``MCLGET`` and ``m_free``
        with their ``splimp`` brackets and free-list updates): about 30 instructions = 62.
    socket_op : float
        Socket-layer work of one ``sosend``/``soreceive``/``soaccept``/``soclose`` beyond the
        system call and the copies: ``sblock``, ``sbappend``/``sbdrop`` walking the mbuf chain,
        ``sowakeup`` and the protocol's ``pr_usrreq`` switch: about 100 instructions = 208.
    pcb_alloc : float
        A new connection: ``sonewconn`` allocates and zeroes a socket, an ``inpcb`` and a
        ``tcpcb`` (about 400 bytes through the write buffer at 6 cycles per word = 600) and
        initialises them, about 150 instructions (312): 912.
    fd_pass : float
        Passing a descriptor over a UNIX-domain socket (``unp_internalize`` on send,
        ``unp_externalize`` and ``fdalloc`` on receive, the control mbuf): about 120
        instructions per side = 250.
    namei : float
        One component of a path lookup on a name-cache hit, counted in ULTRIX 4.2
        ``sys/fs/ufs/ufs_namei.c`` (``ufs_namei`` loops from ``dirloop`` to ``haveino`` once per
        component), ``sys/fs/gfs/gfs_gnode.c`` and ``sys/sys/kern_lock.c``, for a short name
        ("foo") looked up by a non-root process: the directory test (4); ``access(dp, GEXEC)``
        with its indirect ``GGETVAL``, the GWRITE and super-user tests, the owner, group and
        ``u_groups`` walk and the mode test (about 55); the component copy with its hash,
        ``hash += c * i`` (about 12 per character and the loop's setup: 36 for 3
        characters); the POSIX trailing-slash, ``..``, ``makeentry``, degenerate-name and
        ``NCHNAMLEN`` tests and ``ncs_looks++`` (21); ``smp_lock(&lk_namecache)`` (8);
        ``NHASH`` (8); the hash-chain probe: ino, id, dev and length compares and ``bcmp`` of
        the name (usercopy.s's byte loop under MINCMP = 16: about 40 with the compares); the
        hit's ``nc_id`` test and the LRU move (8); ``cacheid``, the ``..``/``u_rdir`` test,
        ``smp_unlock`` and the ``pdp == dp`` tests (19); ``ggrab``: ``lk_gnode``, the
        ``MTE_DONE`` and ``g_id`` tests, ``g_count++`` (taking a gnode off the free list when
        its count was 0) and ``gisready`` (about 60) and its ``gfs_lock(dp)``; ``ufs_gunlock(pdp)``;
        the revalidation under ``lk_namecache`` (``nc_id`` twice, ``g_nlink``, the
        ``GT_ULTRIX`` and ``nomount`` tests, ``ncs_goodhits++``: 38); ``haveino``'s symbolic
        link and mount tests and the slash skip (12); ``grele(pdp)``: ``GFPIPE``, the
        ``lk_gnode`` spin lock, the count tests and decrement (about 45). A gnode's own lock
        is a sleep lock (``lock_eachgnode_d`` is ``LK_WAIT``), and ``lockinit`` sets
        ``l_call`` for every ``LK_WAIT`` lock even on a uniprocessor, so ``gfs_lock`` runs
        ``smp_lock_long`` (``smp_owner``'s walk of the held-lock chain, the ``smp_debug`` and
        ``panicstr`` tests, ``setlock``, ``l_won++``, the chain insertion and ``l_pc``: about
        75) and the unlock ``smp_unlock_long`` (the type switch, the chain removal, the
        ``l_wanted`` test: about 38): about 470 instructions at CPI 2.08 = 978 cycles, plus
        the R3000's multiply and divide interlocks the counting leaves out (``NHASH`` is
        ``(h + ino + 13 * dev) % nchsize``, a ``divu``: 35 cycles, about 33 stalled; the
        hash's ``mult`` per character: 12 cycles, about 8 stalled each, 24): 1035. (The
        earlier 300 instructions = 625 left out the locks, ``ggrab``/``grele`` and the
        revalidation; docs/validation.md U6.)
    falloc : float
        Allocating and initialising a file-table entry and a descriptor (``falloc``,
        ``ufalloc``), or releasing one in ``closef``: about 60 instructions = 125.
    softint : float
        Taking the network software interrupt that runs ``ipintr`` (ULTRIX 4.2 locore.s:
        the general exception entry saves 14 words of the exception frame, ``VEC_int``'s
        ``tfi_save`` 14 more, the dispatch to ``softnet`` and the netisr bit test, and
        ``exception_exit``): about 110 instructions at CPI 2.08 (229) plus the 28 stores
        draining through the 3MIN's write buffer beyond its 4 entries (24 x 6 = 144), and the
        two ``splimp``/``splx`` pairs of ``schednetisr`` and ``IF_DEQUEUE``, each a write of
        the 3MIN's interrupt-mask register with a read back to flush the write buffer (about
        20 cycles each, 80): 453.
    softint_per_packet : float
        ``ipintr``'s per-frame work before ``ip_input`` proper: ``IF_DEQUEUE`` under
        ``splimp``/``splx`` (one mask write and read back, 40 cycles) and the loop test, about
        15 instructions (31): 71.
    read_block_instructions : int
        Instructions (run as a kernel path, :data:`READ_BLOCK_CODE_BYTES` of code) of one
        pass of a file read's block loop (ULTRIX 4.2 gfs/ufs ``ufs_rwgp``) beyond the copy:
        the block number and offset (about 20), ``bmap`` of a direct block (about 40),
        ``bread``'s ``getblk``: the buffer hash chain walk, the B_BUSY test and ``notavail``
        (about 100), ``uiomove``'s iovec bookkeeping around ``copyout`` (about 40),
        ``brelse`` with ``splbio`` and the free-list insertion (about 50), and the read-ahead
        test's ``incore`` probe of the next block (about 50): about 300.
    copen : float
        ``open()``'s own work around ``namei`` and ``falloc`` (ULTRIX 4.2 gfs): ``KM_ALLOC``
        of the ``MAXPATHLEN`` name buffer and its ``KM_FREE`` (about 140), ``copyinstr`` of
        the path (about 30 for a short name), ``gfs_namei``'s setup, ``gref``/``gfs_lock`` of
        the starting directory and the audit test (about 70), the access check for the open
        mode (``access()``: owner, group membership, about 50), ``ufs_open`` (about 20),
        ``gfs_unlock`` and the file entry's ops and flags (about 60), the flag and error
        checks of ``copen`` (about 70): about 440 instructions = 917.
    closef : float
        ``close()``'s release beyond the descriptor (``closef``): the reference count,
        ``ufs_close``'s device-type tests (about 20), ``grele``/``gput`` locking the gnode and
        dropping its count to zero, ``ufs_inactive``'s checks (nlink, modified flags) and the
        free-list insertion (about 120), ``crfree`` of the file's credentials (about 20), the
        file entry's release (about 30): about 190 instructions = 396.
    """

    mbuf: float = 62
    socket_op: float = 208
    pcb_alloc: float = 912
    fd_pass: float = 250
    namei: float = 1035
    falloc: float = 125
    softint: float = 453
    softint_per_packet: float = 71
    read_block_instructions: int = 300
    copen: float = 917
    closef: float = 396


#: Code and data footprints of the block loop's path (estimates: the functions above, about
#: 300 instructions of straight-line code with their branches not taken; the buffer header,
#: the hash chain head and the inode's block list).
READ_BLOCK_CODE_BYTES = 1536
READ_BLOCK_DATA_BYTES = 256


def _components(path: str) -> int:
    """Components ``namei`` walks for ``path`` (at least one: "/" looks up the root)."""
    return max(1, sum(1 for part in str(path).split("/") if part))


def cpi_scale(profile) -> float:
    """How much a cycle count made at the 3MIN's kernel CPI (:data:`ULTRIX_COSTS_CPI`) grows
    on ``profile``: 1.0 on the 3MIN's profiles, the CPI ratio on a derived one."""
    return float(profile.kernel_cpi) / ULTRIX_COSTS_CPI


def costs_at(profile) -> UltrixCosts:
    """:class:`UltrixCosts` on ``profile``: the defaults where its ``kernel_cpi`` is the 3MIN's
    (the DECstation 5000/125's, on which they were counted), otherwise every cycle count
    re-priced at its CPI (a derived profile with another clock or memory,
    :mod:`sim.platforms.derived`); instruction counts (``*_instructions``) stay as they are."""
    scale = cpi_scale(profile)
    base = UltrixCosts()
    if scale == 1.0:
        return base
    return replace(base, **{f.name: getattr(base, f.name) * scale for f in fields(UltrixCosts)
                            if not f.name.endswith("_instructions")})


class WaitChannel:
    """BSD's ``sleep(chan)`` / ``wakeup(chan)``: wakeup makes every sleeper runnable."""

    __slots__ = ("_kernel", "_sleepers", "name")

    def __init__(self, kernel: Kernel, name: str = ""):
        self._kernel = kernel
        self._sleepers: list[Event] = []
        self.name = name

    def sleeper(self) -> Event:
        """An event that the next :meth:`wakeup` sets (register before checking again)."""
        ev = Event(self._kernel, self.name)
        self._sleepers.append(ev)
        return ev

    def register(self, ev: Event) -> None:
        """Have the next :meth:`wakeup` set ``ev`` (one event may wait on many channels)."""
        self._sleepers.append(ev)

    def wakeup(self) -> None:
        """Make every sleeper runnable."""
        if self._sleepers:
            sl, self._sleepers = self._sleepers, []
            for ev in sl:
                ev.set()

    def forget(self, ev: Event) -> None:
        """Withdraw a registration that was not used (a select() woken by another channel)."""
        try:
            self._sleepers.remove(ev)
        except ValueError:
            pass


class Mutex:
    """A sleep lock (an inode lock): FIFO, no CPU cost of its own."""

    def __init__(self, kernel: Kernel, name: str = "lock"):
        self._kernel = kernel
        self._held = False
        self._waiters: deque[Event] = deque()
        self.name = name

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> bool:
        """Take the lock; returns True if the caller had to sleep for it."""
        if not self._held:
            self._held = True
            return False
        ev = Event(self._kernel, self.name)
        self._waiters.append(ev)
        await ev
        return True                        # ownership was handed over by release()

    def release(self) -> None:
        if not self._held:
            raise RuntimeError(f"{self.name}: release of a lock that is not held")
        if self._waiters:
            self._waiters.popleft().set()  # hand over: stays held
        else:
            self._held = False


class Alarm(Exception):
    """SIGALRM delivered to a process sleeping in a system call (see :meth:`Process.alarm`).

    Attributes
    ----------
    socket : object or None
        The socket of a ``connect()`` the alarm interrupted (set by
        :meth:`sw.ultrix.sockets.SocketLayer.connect`): after BSD's EINTR the descriptor
        ``socket()`` made stays the process's, to close or drop.
    """

    socket = None


@dataclass
class OpenFile:
    """An open regular file: the inode, its size and the read offset."""

    path: str
    ino: int
    size: int
    offset: int = 0
    closed: bool = False


class Process:
    """An Ultrix process: a simulation task and the system calls it makes.

    Created by :meth:`UltrixKernel.spawn` or :meth:`Process.fork`; the body is
    ``async def body(proc)``.
    """

    def __init__(self, ukernel: "UltrixKernel", pid: int, name: str):
        self.uk = ukernel
        self.pid = pid
        self.name = name
        self.task: Task | None = None
        self.parent: Process | None = None
        self.syscalls = 0
        #: When the armed alarm(2) goes off (simulated ps), or None.
        self.alarm_at: int | None = None

    # -- kernel entry and scheduling -------------------------------------------------------------
    async def syscall(self, name: str) -> None:
        """Enter the kernel for system call ``name`` (charges ``syscall_cycles``)."""
        self.syscalls += 1
        self.uk.count_syscall(name)
        await self.uk.dispatch(self)
        await self.uk.cpu.charge(self.uk.profile.syscall_cycles, SYSCALL)

    async def alarm(self, seconds: int) -> None:
        """alarm(2): deliver SIGALRM ``seconds`` from now (0 cancels), replacing any alarm.

        Raises
        ------
        ValueError
            For a negative or non-integer number of seconds.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise ValueError(f"alarm needs a non-negative int of seconds, not {seconds!r}")
        await self.syscall("alarm")
        self.alarm_at = self.uk.kernel.now + seconds * S if seconds else None

    async def sleep(self, *waits) -> int:
        """Block until one of ``waits`` is set; charge the context switch back in.

        Returns the index of the event that woke the process.

        Raises
        ------
        Alarm
            If the process's alarm went off first (the alarm is then disarmed); the
            process is switched back in to run its handler.
        """
        k = self.uk.kernel
        if self.alarm_at is not None:
            idx, _ = await k.wait_any(*waits, k.sleep_until(max(self.alarm_at, k.now)))
        elif len(waits) == 1:
            await waits[0]
            idx = 0
        else:
            idx, _ = await k.wait_any(*waits)
        alarmed = idx == len(waits)             # the alarm's timer, after the waits
        if alarmed:
            self.alarm_at = None
            self.uk.alarms += 1
        self.uk.sleeps += 1
        await self.uk.dispatch(self)
        if alarmed:
            raise Alarm(f"{self.name}: alarm went off")
        return idx

    async def compute(self, cycles: float, category: str = APPLICATION) -> None:
        """User-level work of the process (parsing, formatting)."""
        await self.uk.dispatch(self)
        if cycles:
            await self.uk.cpu.charge(cycles, category)

    async def fork(self, body: Callable[["Process"], Awaitable[Any]], name: str) -> "Process":
        """fork(): charge ``fork_cycles`` and start ``body(child)`` as a new process."""
        await self.syscall("fork")
        await self.uk.cpu.charge(self.uk.profile.fork_cycles, KERNEL)
        self.uk.forks += 1
        child = self.uk.spawn(body, name)
        child.parent = self
        return child

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.name}>"


class UltrixKernel:
    """The kernel of one Ultrix machine: processes, syscall accounting, file access.

    Parameters
    ----------
    kernel : Kernel
        The simulation kernel.
    cpu : CPU
        The machine's CPU (an Ultrix profile: ``syscall_cycles``, ``context_switch_cycles``,
        ``fork_cycles``, ``select_*``).
    costs : UltrixCosts, optional
        The estimates the profile lacks.
    name : str
        Names the processes' tasks.

    Raises
    ------
    TypeError
        For a bad kernel or CPU.
    ValueError
        If the CPU's profile lacks an Ultrix cost.
    """

    def __init__(self, kernel: Kernel, cpu: CPU, *, costs: UltrixCosts | None = None,
                 name: str = "ultrix"):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"UltrixKernel needs a sim.kernel.Kernel, not {kernel!r}")
        if not isinstance(cpu, CPU):
            raise TypeError(f"UltrixKernel needs a sim.cpu.CPU, not {cpu!r}")
        for attr in ("syscall_cycles", "context_switch_cycles", "fork_cycles",
                     "select_base_cycles", "select_per_fd_cycles"):
            if not hasattr(cpu.profile, attr):
                raise ValueError(f"profile {cpu.profile.name!r} lacks {attr}")
        if costs is not None and not isinstance(costs, UltrixCosts):
            raise TypeError(f"costs must be UltrixCosts, not {costs!r}")
        self.kernel = kernel
        self.cpu = cpu
        self.profile = cpu.profile
        self.costs = costs or costs_at(cpu.profile)
        self.name = name
        self.current: Process | None = None
        self.processes: list[Process] = []
        self.syscall_counts: dict[str, int] = {}
        self.context_switches = 0
        self.forks = 0
        self.sleeps = 0
        self.alarms = 0
        self.fs = None
        self._fs_lock = Mutex(kernel, f"{name}.fs")
        self._next_pid = 1

    # -- processes ---------------------------------------------------------------------------------
    def spawn(self, body: Callable[[Process], Awaitable[Any]], name: str) -> Process:
        """Start a process running ``body(proc)`` (no fork cost: a process the system starts)."""
        if not callable(body):
            raise TypeError(f"a process body must be an async callable, not {body!r}")
        p = Process(self, self._next_pid, name)
        self._next_pid += 1
        self.processes.append(p)
        p.task = self.kernel.spawn(body(p), name=f"{self.name}.{name}", daemon=True)
        return p

    async def dispatch(self, proc: Process) -> None:
        """Make ``proc`` the running process, charging a context switch if it was not."""
        if self.current is not proc:
            self.current = proc
            self.context_switches += 1
            await self.cpu.charge(self.profile.context_switch_cycles, CONTEXT_SWITCH)

    def count_syscall(self, name: str) -> None:
        self.syscall_counts[name] = self.syscall_counts.get(name, 0) + 1

    # -- files -------------------------------------------------------------------------------------
    def attach_fs(self, fs) -> None:
        """Use the mounted :class:`sw.libos.fs.FileSystem` ``fs`` for file calls."""
        self.fs = fs

    def _need_fs(self):
        if self.fs is None:
            raise RuntimeError(f"{self.name}: no file system mounted")
        return self.fs

    async def _fs_call(self, proc: Process, fn):
        fs = self._need_fs()
        if await self._fs_lock.acquire():
            self.sleeps += 1
            await self.dispatch(proc)
        try:
            return await fn(fs)
        finally:
            self._fs_lock.release()

    async def stat(self, proc: Process, path: str):
        """stat(2): the :class:`sw.libos.fs.Stat` of ``path`` (raises ``FsError`` subclasses)."""
        await proc.syscall("stat")
        await self.cpu.charge(self.costs.namei * _components(path), FILESYSTEM)
        return await self._fs_call(proc, lambda fs: fs.stat(path))

    async def open(self, proc: Process, path: str) -> OpenFile:
        """open(2) for reading: ``copen``'s own work, namei, a file-table entry (raises
        ``FsError`` subclasses; a failed lookup has paid the same path up to the lookup)."""
        await proc.syscall("open")
        # copen's work, namei and the file-table entry in one charge (the entry is taken
        # before the lookup)
        await self.cpu.charge(self.costs.copen + self.costs.namei * _components(path)
                              + self.costs.falloc, FILESYSTEM)
        st = await self._fs_call(proc, lambda fs: fs.stat(path))
        if not st.is_file:
            raise IsADirectory(f"{path!r} is not a regular file")
        return OpenFile(path, st.ino, st.size)

    async def read_file(self, proc: Process, f: OpenFile, n: int, *,
                        buf: Region | None = None) -> bytes:
        """read(2) of up to ``n`` bytes at the file's offset.

        For each file-system block the read touches, ULTRIX's ``rwgp`` loop runs
        (:attr:`UltrixCosts.read_block_instructions`: ``bmap``, ``bread``'s ``getblk`` hash lookup,
        ``uiomove``'s setup, ``brelse``, the read-ahead probe) as a kernel path; the file system
        charges the copy from the buffer cache into the user's buffer, through the data cache
        from the block's place in memory to ``buf`` (the process's buffer, a region of the
        CPU's memory) when it is given."""
        if not isinstance(f, OpenFile) or f.closed:
            raise ValueError(f"read of a file that is not open: {f!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"read size must be a non-negative int, not {n!r}")
        await proc.syscall("read")
        if f.offset >= f.size or n == 0:
            return b""
        bs = self._need_fs().sb.block_size
        blocks = (f.offset + min(n, f.size - f.offset) - 1) // bs - f.offset // bs + 1
        for _ in range(blocks):
            await self.cpu.path("ultrix:rwgp_block", self.costs.read_block_instructions,
                                READ_BLOCK_CODE_BYTES, READ_BLOCK_DATA_BYTES, FILESYSTEM)
        data = await self._fs_call(proc, lambda fs: fs.read(f.ino, f.offset, n, dst=buf))
        f.offset += len(data)
        return data

    async def close_file(self, proc: Process, f: OpenFile) -> None:
        """close(2) of a file: ``closef``'s release of the gnode and the entry."""
        await proc.syscall("close")
        await self.cpu.charge(self.costs.closef, FILESYSTEM)
        await self.cpu.charge(self.costs.falloc, KERNEL)
        f.closed = True

    async def write_log(self, proc: Process, line: bytes) -> None:
        """write(2) of a log line to a log file: the copy into the buffer cache is charged;
        the disk write is delayed (write-behind) and outside the measured path."""
        await proc.syscall("write")
        await self.cpu.charge(self.costs.socket_op, KERNEL)
        await self.cpu.copy(len(line))

    def stats(self) -> dict:
        """Counters: processes, forks, context switches, system calls by name."""
        return {"processes": len(self.processes), "forks": self.forks,
                "context_switches": self.context_switches, "sleeps": self.sleeps,
                "alarms": self.alarms,
                "syscalls": dict(sorted(self.syscall_counts.items())),
                "syscalls_total": sum(self.syscall_counts.values())}
