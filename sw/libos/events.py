"""The event interface of the library OS: callbacks instead of blocking calls.

SYSTEM.md section 4, "Event support": non-blocking calls progress as far as they can and say
how far; completions come back as events carrying a value the application chose. Network
connections report four kinds of event, each a method of :class:`Handlers` that an application
overrides (or assigns on an instance):

* ``on_connected()`` -- the handshake finished (after ``connect`` or on a listener);
* ``on_readable(data)`` -- in-order bytes arrived (``on_peer_closed()`` at end of stream);
* ``on_writable(acked)`` -- the peer acknowledged ``acked`` more bytes (send window freed);
* ``on_closed(reason)`` -- the connection is over (``"closed"``, ``"reset"``, ``"refused"``,
  ``"timeout"`` or ``"aborted"``).

A handler may be a plain function or a coroutine function; the stack awaits a coroutine in
line, so a handler that sends (e.g. an HTTP response from ``on_readable``) has its segment
carry the acknowledgement the stack would otherwise send alone.

:class:`EventLoop` is the queue-based alternative: handlers post work to it and one task runs
the posted calls in order, so a server can do its work outside the stack's receive path.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from sim.kernel import Kernel, Queue

__all__ = ["READABLE", "WRITABLE", "CONNECTED", "CLOSED", "PEER_CLOSED", "Handlers",
           "invoke", "Completion", "EventLoop"]

READABLE = "readable"
WRITABLE = "writable"
CONNECTED = "connected"
CLOSED = "closed"
PEER_CLOSED = "peer_closed"


async def invoke(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` and await the result if it is awaitable (sync or async handlers)."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class Handlers:
    """Default (do-nothing) event handlers; see the module docstring for when each runs."""

    def on_connected(self) -> Any:
        """The connection is established."""

    def on_readable(self, data: bytes) -> Any:
        """``data`` arrived in order (never empty)."""

    def on_writable(self, acked: int) -> Any:
        """The peer acknowledged ``acked`` more bytes of data."""

    def on_peer_closed(self) -> Any:
        """The peer sent FIN: no more data will arrive."""

    def on_closed(self, reason: str) -> Any:
        """The connection is over; ``reason`` says why."""


@dataclass(frozen=True)
class Completion:
    """What a posted call returns with its completion event.

    Attributes
    ----------
    value : object
        The application-chosen value given to :meth:`EventLoop.post`.
    result : object
        What the call returned.
    error : BaseException or None
        What it raised, if anything (the loop keeps running).
    """

    value: Any
    result: Any
    error: BaseException | None


class EventLoop:
    """A FIFO of calls run one at a time by one kernel task.

    Parameters
    ----------
    kernel : Kernel
    name : str
        The task's name (what the CPU's accounting shows).
    on_complete : callable, optional
        Called with a :class:`Completion` after each posted call.

    Examples
    --------
    >>> from sim.kernel import Kernel
    >>> k = Kernel(); done = []
    >>> loop = EventLoop(k, on_complete=done.append)
    >>> loop.post(lambda x: x * 2, 21, value="answer")
    >>> _ = k.run(until=1)
    >>> done[0].value, done[0].result
    ('answer', 42)
    """

    def __init__(self, kernel: Kernel, name: str = "eventloop", *,
                 on_complete: Callable[[Completion], Any] | None = None):
        if not isinstance(kernel, Kernel):
            raise TypeError(f"EventLoop needs a sim.kernel.Kernel, not {kernel!r}")
        self.kernel = kernel
        self.name = name
        self.on_complete = on_complete
        self.processed = 0
        self._queue: Queue = Queue(kernel, name=f"{name}.ready")
        self._task = kernel.spawn(self._run(), name=name, daemon=True)

    def post(self, fn: Callable[..., Any], *args: Any, value: Any = None) -> None:
        """Queue ``fn(*args)``; ``value`` comes back in its :class:`Completion`."""
        if not callable(fn):
            raise TypeError(f"EventLoop.post needs a callable, not {fn!r}")
        self._queue.put_nowait((fn, args, value))

    def __len__(self) -> int:
        return len(self._queue)

    async def _run(self) -> None:
        while True:
            fn, args, value = await self._queue.get()
            try:
                result, error = await invoke(fn, *args), None
            except Exception as e:          # an application error must not kill the loop
                result, error = None, e
            self.processed += 1
            if self.on_complete is not None:
                await invoke(self.on_complete, Completion(value, result, error))
