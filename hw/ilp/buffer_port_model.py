"""The buffer-port pipe block's transaction-level twin: same registers, results and wait states.

:class:`BufferPortModel` is :class:`hw.ilp.buffer_port.BufferPort` as a state machine stepped
once per host access, never per clock. Its caller (a bus model: the card's, or
:class:`hw.ilp.buffer_port_harness.HarnessModel`) tells it of every access the card
acknowledged (:meth:`BufferPortModel.observe`) and hands it the accesses to the block's own
registers (:meth:`BufferPortModel.register_access`), in time order.

Timing (cycle ``c`` is the ``c``-th cycle out of reset; docs/ilp_pipes.md)
--------------------------------------------------------------------------
* An access to the card passes through: its cycles are the card's.
* A fed access acknowledged in cycle ``g`` (``ack`` high) adds its bytes to the packer at the
  end of ``g``; a word it completes enters the datapath in ``g + 1``; the window's last access
  leaves one or two words, entering in ``g + 1`` and ``g + 2``. With the datapath always
  ready (its output is discarded), :func:`hw.ilp.model.handshake_cycles` gives the last
  word's output transfer at ``d = a + N`` (``a`` its input cycle, ``N`` pipes) and ``done``
  at ``d + 1``: the results are in ``RESULT`` from then, and the block is *in flight* from
  ``g + 1`` to ``d``.
* An access to the block's registers first presented in cycle ``q`` is served in the first
  cycle ``s >= q`` not in flight (its effect, and a read's value, as of ``s``) and
  acknowledged in ``s + 1``.
"""
from __future__ import annotations

from collections.abc import Sequence

from .buffer_port_regs import (CTL, LENGTH, RESULT, WINDOW_BITS, WSTART, Ctl, Status,
                               check_layout, check_port, data_bytes, register_count,
                               window_words)
from .model import PipeDatapathModel, handshake_cycles
from .pipelist import PipeList
from .registers import Pipe, words_of

__all__ = ["BufferPortModel"]

_WMASK = (1 << WINDOW_BITS) - 1


class BufferPortModel(PipeList):
    """The twin of :class:`hw.ilp.buffer_port.BufferPort` (same keyword parameters).

    Attributes
    ----------
    done_cycles : list of int
        The cycles in which ``done`` was high (one per finished window).
    window_results : list of tuple
        Each finished window's results, in order.

    Raises
    ------
    TypeError, ValueError, PipeError
        As the block.
    """

    def __init__(self, *, pipes: Sequence[Pipe], layout="contiguous", addr_width: int = 19,
                 regs_addr: int):
        PipeList.__init__(self, pipes=pipes)
        self.layout = check_layout(layout)
        check_port(addr_width=addr_width, regs_addr=regs_addr, results=len(self.result_names))
        self.addr_width, self.regs_addr = addr_width, regs_addr
        self._datapath = PipeDatapathModel(pipes=pipes)
        self._wstart = self._length = 0
        self._rx = False
        self._clear()
        self._free_from = 0               # first cycle not in flight
        self.done_cycles: list[int] = []
        self.window_results: list[tuple] = []

    def _clear(self) -> None:
        self._armed = self._done = self._order = False
        self._results = (0,) * len(self.result_names)
        self._cursor = self._first = self._last = self._left = self._skip = 0
        self._bytes = bytearray()          # every byte fed into the open window
        self._last_entry = -1              # cycle the last word entered the datapath

    def claims(self, addr: int) -> bool:
        """Whether word address ``addr`` is one of the block's registers (not the card's)."""
        return 0 <= addr - self.regs_addr < register_count(len(self.result_names))

    @property
    def status(self) -> Status:
        """The ``CTL`` read value now."""
        return ((Status.ARMED if self._armed else Status(0)) | (Status.RX if self._rx else 0)
                | (Status.DONE if self._done else 0) | (Status.ORDER if self._order else 0))

    def register_access(self, *, write: bool, addr: int, data: int = 0, cycle: int
                        ) -> tuple[int, int]:
        """An access to the block's register at ``addr`` first presented in ``cycle``.

        Returns
        -------
        (int, int)
            The cycle ``ack`` is high, and the data read (0 for a write).

        Raises
        ------
        ValueError
            If ``addr`` is not the block's, or ``cycle`` is before the block is free to
            have been asked (the accesses must come in time order).
        """
        if not self.claims(addr):
            raise ValueError(f"word address {addr:#x} is not one of the block's registers")
        served = max(cycle, self._free_from)
        offset = addr - self.regs_addr
        if not write:
            value = {CTL: int(self.status), WSTART: self._wstart, LENGTH: self._length}.get(
                offset, self._results[offset - RESULT] if offset >= RESULT else 0)
            return served + 1, value
        data &= 0xFFFF_FFFF
        if offset == CTL:
            self._clear()
            self._rx = bool(data & Ctl.RX)
            if data & Ctl.START and self._length:
                self._armed = True
                mask = (1 << self.addr_width) - 1
                first, last = window_words(self.layout, self._wstart, self._length)
                self._first, self._last = first & mask, last & mask
                self._cursor = self._first
                self._left = self._length
                self._skip = self._wstart % self.layout.bytes_per_word
        elif offset == WSTART:
            self._wstart = data & _WMASK
        elif offset == LENGTH:
            self._length = data & _WMASK
        return served + 1, 0

    def observe(self, *, write: bool, addr: int, data: int, ack_cycle: int) -> None:
        """An access to the card acknowledged in ``ack_cycle`` (``data`` written or read).

        Raises
        ------
        ValueError
            If the access comes before the previous word of the window entered the datapath
            (impossible on a :class:`hw.bus.HostBus`: accesses last two cycles at the least).
        """
        if not self._armed or write == self._rx:
            return
        addr &= (1 << self.addr_width) - 1
        if addr != self._cursor:
            self._order |= self._first <= addr <= self._last
            return
        if ack_cycle < self._last_entry:
            raise ValueError(f"access acknowledged in cycle {ack_cycle} overtakes the word "
                             f"entering the pipes in cycle {self._last_entry}")
        b = self.layout.bytes_per_word
        take = min(self._left, b - self._skip)
        held = len(self._bytes) % 4
        self._bytes += data_bytes(self.layout, data)[self._skip:self._skip + take]
        self._cursor = (self._cursor + 1) & ((1 << self.addr_width) - 1)
        self._left -= take
        self._skip = 0
        if self._left:
            if held + take >= 4:
                self._last_entry = ack_cycle + 1
            return
        self._armed = False
        words = words_of(bytes(self._bytes))
        entering = -(-(held + take) // 4)              # the packer's words: 1 or 2
        first_in = ack_cycle + 1
        in_valid = [False] * first_in + [True] * entering
        # The window's earlier words left the datapath's stages ahead of these (it is always
        # ready), so these words' cycles do not depend on them.
        _, out = handshake_cycles(entering, stages=self.stages, in_valid=in_valid)
        self._free_from = out[-1] + 1
        self.done_cycles.append(out[-1] + 1)
        _, results = self._datapath.compute(words)
        self._results = results
        self.window_results.append(results)
        self._done = True
        self._last_entry = first_in + entering - 1
