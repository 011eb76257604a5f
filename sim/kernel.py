"""serveros' own discrete-event kernel: tasks, sleeps, events, queues and wait-for-any.

The kernel is the one scheduler of every run. Simulated activity is written as ``async``
coroutines that await the kernel's primitives::

    async def blink(k: Kernel, led: Event):
        while True:
            await k.sleep(500 * US)
            led.set()

    k = Kernel()
    k.spawn(blink(k, Event(k)), name="blink")
    k.run(until=10 * MS)

On its own the kernel advances time itself (the fast backend). When a device is RTL, a
binding (``sim.bindings``) lets the HDL simulator own time instead: it asks the kernel for
:meth:`Kernel.next_time`, lets the simulator run to that time or until the hardware does
something, and then calls :meth:`Kernel.run_until`. The coroutines never know which.

Ordering is deterministic: entries are ordered by (time, insertion sequence), so events at the
same picosecond run in the order they were scheduled, on every backend and in every run.
"""
from __future__ import annotations

import heapq
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine, Iterable

log = logging.getLogger(__name__)

__all__ = ["Kernel", "Task", "Event", "Queue", "QueueEmpty", "QueueFull", "Cancelled",
           "SimulationError", "DONE"]


class SimulationError(RuntimeError):
    """A task failed, or the simulation was used wrongly (e.g. a sleep into the past)."""


class Cancelled(BaseException):
    """Thrown into a task's coroutine by :meth:`Task.cancel`."""


# Entries marked "late" (hardware events of device models) sort after every ordinary entry of
# the same picosecond: their sequence numbers are offset by _LATE. That mirrors an HDL binding,
# which runs the software due at an instant before the hardware changes it observes there.
_LATE = 1 << 62

# Heap entries are lists [time, seq, fn, arg] so that an entry can be cancelled in place
# (fn = None) without searching the heap.
_T, _SEQ, _FN, _ARG = 0, 1, 2, 3
_NEVER = 1 << 126
#: The smallest heap that :meth:`Kernel._compact` rebuilds (a small heap is cheap anyway).
_COMPACT_MIN = 1024


class _Waitable:
    """Something a task can await, alone or inside :meth:`Kernel.wait_any`."""

    __slots__ = ()

    def __await__(self):
        return (yield self)

    def _arm(self, kernel: "Kernel", wake: Callable[[Any], None]) -> Callable[[], None] | None:
        """Arrange for ``wake(value)`` to be scheduled once; return a cancel token: None, a heap
        entry, an (event waiters, key) pair, or a callable."""
        raise NotImplementedError


class _Sleep(_Waitable):
    __slots__ = ("until", "late")

    def __init__(self, until: int, late: bool = False):
        self.until = until
        self.late = late

    def _arm(self, kernel, wake):
        return kernel._push(self.until, wake, None, self.late)   # the entry is its cancel token


class _EventWait(_Waitable):
    __slots__ = ("event",)

    def __init__(self, event: "Event"):
        self.event = event

    def _arm(self, kernel, wake):
        ev = self.event
        if ev.is_set:
            kernel._push(kernel.now, wake, ev.value)
            return None
        waiters = ev._waiters
        waiters[wake] = None
        return (waiters, wake)          # a cancel token: _Race pops it in O(1)


class _AnyOf(_Waitable):
    """Resumes with ``(index, value)`` of the first of several waitables to fire."""

    __slots__ = ("items",)

    def __init__(self, items: tuple):
        if not items:
            raise SimulationError("wait_any() needs at least one waitable")
        self.items = items

    def _arm(self, kernel, wake):
        race = _Race(wake, len(self.items))
        tokens = race.tokens
        for i, item in enumerate(self.items):
            t = type(item)
            if t is _Sleep:               # the common timeout: cancel by blanking its heap entry
                tokens[i] = kernel._push(item.until, _Branch(race, i), None)
            elif t is Event or t is _EventWait:
                ev = item if t is Event else item.event
                if ev.is_set:
                    kernel._push(kernel.now, _Branch(race, i), ev.value)
                else:
                    br = _Branch(race, i)
                    ev._waiters[br] = None
                    tokens[i] = (ev._waiters, br)
            else:
                tokens[i] = _as_waitable(item)._arm(kernel, _Branch(race, i))
        return race.cancel_all


class _Timeout(_Waitable):
    """``wait_any(event, sleep(dt))`` specialised: one object instead of a race of branches,
    because an event wait with a timeout is the commonest wait of drivers and protocols."""

    __slots__ = ("event", "until", "wake", "entry", "done")

    def __init__(self, event: "Event", until: int):
        self.event = event
        self.until = until

    def _arm(self, kernel, wake):
        ev = self.event
        if ev.is_set:
            kernel._push(kernel.now, wake, (0, ev.value))
            return None
        self.wake = wake
        self.done = False
        self.entry = kernel._push(self.until, self._expire, None)
        ev._waiters[self._fire] = None      # bound methods compare equal: pop() finds it
        return self._cancel

    def _fire(self, value):
        if not self.done:
            self.done = True
            self.entry[_FN] = None
            self.wake((0, value))

    def _expire(self, _value):
        if not self.done:
            self.done = True
            self.event._waiters.pop(self._fire, None)
            self.wake((1, None))

    def _cancel(self):
        if not self.done:
            self.done = True
            self.entry[_FN] = None
            self.event._waiters.pop(self._fire, None)


class _Race:
    """Shared state of one wait_any: the first branch to fire wins, the rest are cancelled."""

    __slots__ = ("wake", "done", "tokens")

    def __init__(self, wake, n):
        self.wake = wake
        self.done = False
        self.tokens: list = [None] * n

    def cancel_all(self, keep: int = -1) -> None:
        self.done = True
        for j, tok in enumerate(self.tokens):
            if j == keep or tok is None:
                continue
            t = type(tok)
            if t is list:               # a heap entry
                tok[_FN] = None
            elif t is tuple:            # (event waiters, key)
                tok[0].pop(tok[1], None)
            else:
                tok()


class _Branch:
    __slots__ = ("race", "i")

    def __init__(self, race: _Race, i: int):
        self.race = race
        self.i = i

    def __call__(self, value):
        race = self.race
        if race.done:
            return
        race.cancel_all(self.i)
        race.wake((self.i, value))


class _Done:
    """An awaitable that has already finished: ``await DONE`` returns None at once, without
    suspending and without a coroutine (for a function that returns an operation's awaitable
    and sometimes has nothing to do)."""

    __slots__ = ()

    def __await__(self):
        return iter(())

    def __repr__(self) -> str:
        return "DONE"


#: The finished awaitable (see :class:`_Done`).
DONE = _Done()


def _call(fn: Callable[[], None]) -> None:
    """The heap callback of :meth:`Kernel.call_at`: its argument is the plain function."""
    fn()


def _canceller(token) -> Callable[[], None] | None:
    """Turn an ``_arm`` cancel token (None, heap entry, (dict, key) or callable) into a callable."""
    t = type(token)
    if t is list:
        def cancel():
            token[_FN] = None
        return cancel
    if t is tuple:
        return lambda: token[0].pop(token[1], None)
    return token


def _as_waitable(x) -> _Waitable:
    if isinstance(x, _Waitable):
        return x
    if isinstance(x, Event):
        return _EventWait(x)
    raise SimulationError(f"cannot wait on {x!r}: use k.sleep(...), an Event, its wait(), or a Task")


class Event:
    """A level-sensitive flag that tasks can wait on (like ``asyncio.Event``).

    ``set(value)`` wakes every waiter (each resumes with ``value``) and stays set until
    ``clear()``; ``pulse(value)`` wakes the current waiters without staying set.
    """

    __slots__ = ("_kernel", "_waiters", "is_set", "value", "name")

    def __init__(self, kernel: "Kernel", name: str = ""):
        self._kernel = kernel
        self._waiters: dict[Callable[[Any], None], None] = {}  # insertion-ordered set
        self.is_set = False
        self.value: Any = None
        self.name = name

    def set(self, value: Any = None) -> None:
        self.is_set = True
        self.value = value
        self._wake_all(value)

    def pulse(self, value: Any = None) -> None:
        self._wake_all(value)

    def clear(self) -> None:
        self.is_set = False
        self.value = None

    def wait(self) -> _Waitable:
        return _EventWait(self)

    def __await__(self):
        return (yield _EventWait(self))

    def _wake_all(self, value: Any) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, {}
        push, now = self._kernel._push, self._kernel.now
        for wake in waiters:
            push(now, wake, value)

    def __repr__(self) -> str:
        return f"<Event {self.name or hex(id(self))} {'set' if self.is_set else 'clear'}>"


class QueueEmpty(Exception):
    """:meth:`Queue.get_nowait` on an empty queue."""


class QueueFull(Exception):
    """:meth:`Queue.put_nowait` on a full bounded queue."""


class _QueueWait(_Waitable):
    """Wait for a queue's item (its getters) or room (its putters); resumes with None."""

    __slots__ = ("waiters",)

    def __init__(self, waiters: dict):
        self.waiters = waiters

    def _arm(self, kernel, wake):
        self.waiters[wake] = None
        return (self.waiters, wake)     # a cancel token, as an event wait's


class Queue:
    """A FIFO of items between tasks (like ``asyncio.Queue``), optionally bounded.

    :meth:`get` returns the oldest item at once, without suspending, when one is waiting;
    otherwise it waits. :meth:`put_nowait` appends and, when a task waits in :meth:`get`,
    wakes the longest-waiting one by one kernel entry at the current time (as
    ``Event.set`` wakes its waiter). A woken getter takes the oldest item when it runs; an
    item taken in between (by :meth:`get_nowait`) sends it back to wait, so no item is lost
    and none is taken twice. A bounded queue's :meth:`put` waits for room in the same way.

    Parameters
    ----------
    kernel : Kernel
        The kernel whose tasks use the queue.
    maxsize : int, keyword-only
        The most items it holds (0: unbounded, the default).
    name : str, keyword-only
        For messages.

    Raises
    ------
    TypeError, ValueError
        For a kernel that is not a :class:`Kernel` or a maxsize that is not an int >= 0.

    Examples
    --------
    >>> k = Kernel(); q = Queue(k, name="rx"); got = []
    >>> async def consumer():
    ...     got.append(await q.get())
    >>> _ = k.spawn(consumer()); _ = k.run(until=0)
    >>> q.put_nowait("frame"); _ = k.run(until=1)
    >>> got, len(q)
    (['frame'], 0)
    """

    __slots__ = ("_kernel", "_items", "_getters", "_putters", "maxsize", "name")

    def __init__(self, kernel: "Kernel", *, maxsize: int = 0, name: str = ""):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"Queue needs a sim.kernel.Kernel, not {kernel!r}")
        if type(maxsize) is not int or maxsize < 0:
            raise ValueError(f"Queue maxsize must be an int >= 0 (0: unbounded), not {maxsize!r}")
        self._kernel = kernel
        self._items: deque = deque()
        self._getters: dict[Callable[[Any], None], None] = {}   # insertion-ordered set
        self._putters: dict[Callable[[Any], None], None] = {}
        self.maxsize = maxsize
        self.name = name

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> Any:
        """The ``i``-th waiting item (0: the next :meth:`get` returns it), left in place."""
        return self._items[i]

    def full(self) -> bool:
        """Whether a bounded queue holds ``maxsize`` items (never for an unbounded one)."""
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: Any) -> None:
        """Append ``item`` and wake the longest-waiting getter, if any.

        Raises
        ------
        QueueFull
            If the queue is bounded and full.
        """
        if self.maxsize and len(self._items) >= self.maxsize:
            raise QueueFull(f"queue {self.name or hex(id(self))} is full ({self.maxsize} items)")
        self._items.append(item)
        if self._getters:
            self._wake(self._getters)

    async def put(self, item: Any) -> None:
        """Append ``item``, first waiting for room if the queue is bounded and full."""
        while self.maxsize and len(self._items) >= self.maxsize:
            await _QueueWait(self._putters)
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        """Remove and return the oldest item (and wake the longest-waiting putter, if any).

        Raises
        ------
        QueueEmpty
            If the queue is empty.
        """
        if not self._items:
            raise QueueEmpty(f"queue {self.name or hex(id(self))} is empty")
        item = self._items.popleft()
        if self._putters:
            self._wake(self._putters)
        return item

    async def get(self) -> Any:
        """Remove and return the oldest item, first waiting for one if the queue is empty."""
        while not self._items:
            await _QueueWait(self._getters)
        return self.get_nowait()

    def _wake(self, waiters: dict) -> None:
        wake = next(iter(waiters))
        del waiters[wake]
        self._kernel._push(self._kernel.now, wake, None)

    def __repr__(self) -> str:
        return f"<Queue {self.name or hex(id(self))} {len(self._items)} items>"


class Task(_Waitable):
    """A coroutine run by the kernel. Awaiting a task waits for it and returns its result."""

    __slots__ = ("_kernel", "_coro", "name", "done", "result", "exception", "_joiners",
                 "_cancel_wait", "daemon", "_on_suspend")

    def __init__(self, kernel: "Kernel", coro: Coroutine, name: str, daemon: bool):
        self._kernel = kernel
        self._coro = coro
        self.name = name
        self.done = False
        self.result: Any = None
        self.exception: BaseException | None = None
        self._joiners: list[Callable[[Any], None]] = []
        self._cancel_wait: Callable[[], None] | None = None
        self.daemon = daemon
        self._on_suspend: list[Callable[[], None]] | None = None

    def on_suspend(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once, the next time this task gives control back to the kernel (it
        awaits something, or ends). Adding the same ``fn`` again before then is a no-op."""
        hooks = self._on_suspend
        if hooks is None:
            self._on_suspend = [fn]
        elif fn not in hooks:
            hooks.append(fn)

    def _suspending(self) -> None:
        hooks, self._on_suspend = self._on_suspend, None
        for fn in hooks:
            fn()

    def _step(self, value: Any = None, throw: BaseException | None = None) -> None:
        k = self._kernel
        heap = k._heap
        while True:
            prev, k.current = k.current, self
            try:
                cmd = self._coro.throw(throw) if throw is not None else self._coro.send(value)
            except StopIteration as stop:
                k.current = prev
                if self._on_suspend is not None:
                    self._suspending()
                self._finish(stop.value, None)
                return
            except Cancelled:
                k.current = prev
                if self._on_suspend is not None:
                    self._suspending()
                self._finish(None, None)
                return
            except BaseException as exc:  # noqa: BLE001 - a task's failure fails the run
                k.current = prev
                self._finish(None, exc)
                k._failed.append(self)
                return
            k.current = prev
            if self._on_suspend is not None:
                self._suspending()
            t = type(cmd)
            # The hot path. A sleep that ends before every other scheduled entry (and within
            # the time the running loop may reach) would be the very next entry popped: resume
            # the task at once instead of a heap round trip. Same order, same times. A timeout
            # whose event is clear qualifies too: nothing else runs before its end, so nothing
            # can set the event first (the CPU's charges wait this way).
            if t is not _Sleep and (t is not _Timeout or cmd.event.is_set):
                break
            until = cmd.until
            if until <= k._horizon and (not heap or heap[0][_T] > until):
                k.now = until
                k.events += 1
                value = None if t is _Sleep else (1, None)      # a timeout resumes expired
                throw = None
                continue
            if t is not _Sleep:
                break
            self._cancel_wait = k._push(until, self._step, None, cmd.late)   # its cancel token
            return
        try:
            self._cancel_wait = _canceller(cmd._arm(k, self._step))
        except AttributeError:
            k._failed.append(self)
            self._finish(None, SimulationError(
                f"task {self.name!r} awaited {cmd!r}, which is not a serveros kernel waitable"))

    def _finish(self, result: Any, exc: BaseException | None) -> None:
        self.done = True
        self.result = result
        self.exception = exc
        self._kernel._live -= 0 if self.daemon else 1
        joiners, self._joiners = self._joiners, []
        for wake in joiners:
            self._kernel._push(self._kernel.now, wake, result)

    def _arm(self, kernel, wake):
        if self.done:
            kernel._push(kernel.now, wake, self.result)
            return None
        self._joiners.append(wake)

        def cancel():
            try:
                self._joiners.remove(wake)
            except ValueError:
                pass
        return cancel

    def cancel(self) -> None:
        """Stop the task: :class:`Cancelled` is thrown into it at the current time."""
        if self.done:
            return
        token, self._cancel_wait = self._cancel_wait, None
        if type(token) is list:       # a plain sleep's heap entry
            token[_FN] = None
        elif token is not None:
            token()
        self._kernel._push(self._kernel.now, lambda _v: None if self.done else self._step(throw=Cancelled()), None)

    def where(self) -> str:
        """Where the task is suspended: the innermost coroutine frame of its await chain, as
        ``function (file:line)``, for error messages ("done" once it has finished)."""
        if self.done:
            return "done"
        coro, frame = self._coro, None
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or frame
            coro = getattr(coro, "cr_await", None)
        if frame is None:
            return "not started"
        code = frame.f_code
        return f"{code.co_name} ({code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})"

    def __repr__(self) -> str:
        return f"<Task {self.name} {'done' if self.done else 'running'}>"


class Kernel:
    """The event kernel: a heap of (time, sequence) ordered callbacks and the tasks they resume.

    Attributes
    ----------
    now : int
        Current simulated time in picoseconds.
    events : int
        Number of heap entries executed so far (the benchmark's unit of work).
    """

    def __init__(self) -> None:
        self.now = 0
        self.events = 0
        self.current: Task | None = None
        self._heap: list[list] = []
        self._compact_at = _COMPACT_MIN     # heap size at which dead entries are dropped
        self._seq = 0
        self._live = 0
        self._failed: list[Task] = []
        #: How far the running loop may advance time (run's ``until``, run_until's ``t``):
        #: a task's sleep is only short-cut within it (:meth:`Task._step`).
        self._horizon = -1

    # -- scheduling primitives ------------------------------------------------------------
    def _push(self, t: int, fn: Callable[[Any], None], arg: Any, late: bool = False) -> list:
        self._seq += 1
        entry = [t, self._seq + _LATE if late else self._seq, fn, arg]
        heap = self._heap
        heapq.heappush(heap, entry)
        if len(heap) > self._compact_at:
            self._compact()
        return entry

    def _compact(self) -> None:
        """Drop the cancelled entries from the heap (in place: running loops hold it).

        A cancelled entry stays in the heap, blanked, until its time comes; protocol timers
        (retransmission, delayed ACK, TIME_WAIT, keep-alive) are mostly cancelled long before
        they are due, so a long run's heap is almost all dead entries and every push and pop
        pays for its depth. Entries are ordered by their unique (time, sequence), so dropping
        dead ones changes no live entry's order. Compacting when the heap has doubled since
        the last compaction keeps the cost linear in the number of pushes."""
        heap = self._heap
        heap[:] = [e for e in heap if e[_FN] is not None]
        heapq.heapify(heap)
        self._compact_at = max(_COMPACT_MIN, 2 * len(heap))

    def call_at(self, t: int, fn: Callable[[], None], *, late: bool = False) -> Callable[[], None]:
        """Run the plain function ``fn()`` at time ``t``; returns a function that cancels it.

        ``late=True`` marks a hardware event of a device model: it runs after every ordinary
        entry due at the same picosecond, as the HDL bindings deliver an RTL device's changes.
        """
        if t < self.now:
            raise SimulationError(f"call_at({t}) is in the past (now {self.now})")
        entry = self._push(t, _call, fn, late)

        def cancel():
            entry[_FN] = None
        return cancel

    def post(self, t: int, fn: Callable[[Any], None], arg: Any, *, late: bool = False) -> None:
        """Run ``fn(arg)`` at time ``t`` (not before now), with no way to cancel it: the
        cheapest schedule, for the hot paths of device models and the CPU. ``late`` as for
        :meth:`call_at`."""
        if t < self.now:
            raise SimulationError(f"post({t}) is in the past (now {self.now})")
        self._push(t, fn, arg, late)

    def reserve(self) -> int:
        """A place in the order of the current picosecond's entries, for an entry that may or
        may not be posted later: :meth:`post_reserved` then orders it as if posted now."""
        self._seq += 1
        return self._seq

    def post_reserved(self, seq: int, t: int, fn: Callable[[Any], None], arg: Any) -> None:
        """Run ``fn(arg)`` at time ``t`` in the place ``seq`` (from :meth:`reserve` at time
        ``t``, which must not have passed)."""
        if t < self.now:
            raise SimulationError(f"post_reserved({t}) is in the past (now {self.now})")
        heapq.heappush(self._heap, [t, seq, fn, arg])

    def call_after(self, dt: int, fn: Callable[[], None], *, late: bool = False) -> Callable[[], None]:
        return self.call_at(self.now + dt, fn, late=late)

    def spawn(self, coro: Coroutine, name: str | None = None, daemon: bool = False) -> Task:
        """Start ``coro`` as a task at the current time (after what is already scheduled now).

        A daemon task (a device model's or a server's endless loop) does not keep
        :meth:`run` going once every non-daemon task has finished.
        """
        if not hasattr(coro, "send"):
            raise SimulationError(f"spawn() needs a coroutine object, not {coro!r}")
        task = Task(self, coro, name or getattr(coro, "__qualname__", "task"), daemon)
        if not daemon:
            self._live += 1
        self._push(self.now, task._step, None)
        return task

    # -- awaitables -------------------------------------------------------------------------
    def sleep(self, dt: int) -> _Waitable:
        """Await to let ``dt`` picoseconds pass."""
        if dt < 0:
            raise SimulationError(f"sleep({dt}) is negative")
        return _Sleep(self.now + dt)

    def sleep_until(self, t: int, *, late: bool = False) -> _Waitable:
        """Await to resume at absolute time ``t`` (not before now); ``late`` as for
        :meth:`call_at` (a device model completing a bus access)."""
        if t < self.now:
            raise SimulationError(f"sleep_until({t}) is in the past (now {self.now})")
        return _Sleep(t, late)

    def wait_any(self, *items: _Waitable | Event) -> _Waitable:
        """Await the first of several waitables; resumes with ``(index, value)``."""
        return _AnyOf(tuple(items))

    def timeout(self, item: _Waitable | Event, dt: int) -> _Waitable:
        """Like ``wait_any(item, sleep(dt))``."""
        if dt < 0:
            raise SimulationError(f"timeout({dt}) is negative")
        t = type(item)
        if t is Event:
            return _Timeout(item, self.now + dt)
        if t is _EventWait:
            return _Timeout(item.event, self.now + dt)
        return _AnyOf((item, _Sleep(self.now + dt)))

    def event(self, name: str = "") -> Event:
        return Event(self, name)

    def queue(self, name: str = "", *, maxsize: int = 0) -> Queue:
        """A new :class:`Queue` of this kernel."""
        return Queue(self, maxsize=maxsize, name=name)

    # -- running ----------------------------------------------------------------------------
    def next_time(self) -> int | None:
        """Time of the next live entry, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][_FN] is None:
            heapq.heappop(heap)
        return heap[0][_T] if heap else None

    def run_until(self, t: int) -> None:
        """Execute every entry due at or before ``t``, then set ``now = t``.

        Bindings to HDL simulators call this with the simulator's current time.
        """
        if t < self.now:
            raise SimulationError(f"run_until({t}) is in the past (now {self.now})")
        heap, pop = self._heap, heapq.heappop
        n = 0
        self._horizon = t
        try:
            while heap and heap[0][_T] <= t:
                entry = pop(heap)
                fn = entry[_FN]
                if fn is None:
                    continue
                self.now = entry[_T]
                n += 1
                fn(entry[_ARG])
                if self._failed:
                    break
        finally:
            self.events += n
            self._horizon = -1
        self._raise_failures()
        self.now = t

    def run(self, until: int | None = None) -> int:
        """Run on the kernel's own clock until every non-daemon task is done, nothing is
        scheduled, or time ``until`` (whichever is first). Returns the final time."""
        heap, pop = self._heap, heapq.heappop
        n = 0
        self._horizon = _NEVER if until is None else until
        try:
            while heap and (self._live > 0 or until is not None):
                entry = heap[0]
                if until is not None and entry[_T] > until:
                    break
                pop(heap)
                fn = entry[_FN]
                if fn is None:
                    continue
                self.now = entry[_T]
                n += 1
                fn(entry[_ARG])
                if self._failed:
                    break
        finally:
            self.events += n
            self._horizon = -1
        self._raise_failures()
        if until is not None:
            self.now = max(self.now, until)
        return self.now

    @property
    def live_tasks(self) -> int:
        """Number of non-daemon tasks not yet finished."""
        return self._live

    def _raise_failures(self) -> None:
        if self._failed:
            task = self._failed[0]
            exc = task.exception
            raise SimulationError(f"task {task.name!r} failed at t={self.now} ps: {exc!r}") from exc

    def gather(self, tasks: Iterable[Task]) -> Awaitable[list]:
        """Await every task in ``tasks``; returns their results in order."""
        tasks = list(tasks)

        async def _g():
            return [await t for t in tasks]
        return _g()
