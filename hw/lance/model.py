"""The LANCE-style Ethernet card's transaction-level model: the RTL's registers and cycle timing.

:class:`LanceModel` is the pure-Python twin of :class:`hw.lance.gateware.LanceCard`
(docs/lance_card.md, "What the model offers"). It never wakes per clock cycle, per nibble or per
byte: every engine step is computed from the fixed latencies in :mod:`hw.lance.timing` and
scheduled as one kernel callback (``call_at(..., late=True)``) at the clock edge where the RTL's
registers change (a handful per frame). Received bytes reach :attr:`LanceModel.ram` as linear
laws (byte *i* of a run at edge ``c0 + i * stride``) committed when something looks at memory.
tests/hw/test_lance_equivalence.py checks all of it against the RTL, cycle for cycle.

Conventions
-----------
* Edge ``k`` is the ``k``-th rising edge (time ``k * period``; edge 0 at time 0). "At edge
  ``k``" means a register holds its new value from edge ``k`` on (:mod:`hw.lance.timing`).
* Host bus: a request made at ``t`` is first sampled at edge ``e0``, the first edge after ``t``;
  a read returns the registers as after edge ``e0 + BUS_READ_WAIT - 1`` and the buffer RAM as
  after edge ``e0 + BUS_READ_WAIT - 2``; a write takes effect at ``e0 + BUS_WRITE_WAIT``; both
  complete one edge after ``ack`` (:class:`hw.bus.HostBus`). Accesses are served one at a time.
* Several changes at one edge apply in the gateware's order: host bus effects first, then the
  engines (whose settings win over a simultaneous write-one-to-clear), then the irq register.

The gateware's state machines, as the model follows them
-------------------------------------------------------
* **Polls.** TDMD or STRT taking effect at edge ``w`` makes an idle transmit engine start a poll
  at ``w + 1`` (INIT+STRT: the engines start with IDON at ``w + INIT_CYCLES``). A poll started
  at ``p`` sees TMD0/TMD1 as after edge ``p`` and TMD2/TMD3 as after ``p + 1``, and decides at
  ``p + TX_FETCH_CYCLES``. A request arriving while a poll runs (from edge ``p`` on) causes
  another poll as soon as the engine is idle; one arriving while a frame is sent is absorbed by
  the poll that follows the frame. Idle, the engine polls again ``TX_POLL_CYCLES`` after the last
  poll started.
* **Frames out.** ``tx_en`` rises at the first tick edge after ``decision +
  TX_FIRST_BYTE_CYCLES`` that is also ``TX_IFG_TICKS`` ticks after it last fell, and falls
  ``wire_nibbles(n)`` ticks later; the chained descriptor after a buffer whose last byte is frame
  byte ``j`` is fetched at ``rise + 5 * (PREAMBLE_NIBBLES + 2 j)``. Write-back from ``s = fall +
  TX_STATUS_CYCLES``: descriptor ``k``'s TMD1 flags byte is read after edge ``s + 2 k`` and
  written at ``s + 2 k + 2``; TMD3 of the last and TINT at ``s + 2 n + 1``, which also starts
  the next poll.
* **Frames in.** Nibble 0 is sampled at tick edge ``t0``; frame byte ``i`` reaches the receive
  engine at ``beat(i) = t0 + 5 * (PREAMBLE_NIBBLES + RX_LAST_BEAT_TICKS + 2 + 2 i)`` (the last
  byte one tick later after a dribble nibble). The descriptor at the ring index is read after
  edges ``beat(0) + 1`` (RMD0/1) and ``+ 2`` (RMD2/3); the address filter and OWN are decided
  with byte 5 (MISS and its counter at ``beat(5) + 2``). From ``h = beat(5) + 2`` the engine
  writes each byte, the six held address bytes first: byte ``i`` is taken at ``tau =
  max(h, beat(i))`` (``h`` for an address byte: the receive SILO holds what arrives meanwhile)
  and written at ``tau + 2``, which is the new ``h``. A byte that finds its buffer full makes
  the engine read the next descriptor after edges ``tau + 2`` and ``tau + 3`` and write the
  byte ``RX_CHAIN_CYCLES`` edges later than otherwise; a descriptor it does not own cuts the
  frame (the rest is thrown away, one byte per edge). With ``fin`` the edge the last byte is
  written (or the cut frame ends), a dropped frame is counted at ``fin + 1``; one handed up gets
  descriptor ``k``'s RMD1 flags at ``fin + 2 + k`` and MCNT and RINT together at ``fin + 2 +
  n``.

Known approximations (not covered by the equivalence test): STOP while a frame is in flight
(the gateware lets its engines finish; the model drops them), a chained transmit descriptor the
host does not own (the underflow's exact timing), and a frame arriving while the receive engine
still writes the previous one's descriptors back (never with the 802.3 gap: a 128-descriptor
write-back takes 131 edges, the gap and preamble 200). In internal loopback the model reads a
frame's chained buffers when ``tx_en`` rises (the gateware as the frame goes out), and does
not loop back a chain cut by a descriptor it does not own.

On a wire (:class:`~hw.lance.mii_model.LanceWire`) the card does its own CSMA/CD, as the
gateware does: :class:`~hw.lance.mii_model.MiiTxModel` defers to ``crs`` and jams on ``col``;
the engine backs off with the gateware's LFSR (seeded from the station address) and fetches the
frame again from its first descriptor. hw/lance/attach.py binds it to a segment the way it
binds the RTL (through sim/media/transceiver.py), so the two implementations see the same wire.

Semantics: docs/lance_card.md and :mod:`hw.lance.registers`.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Callable, Generator

from sim.bus import IrqLine
from sim.kernel import Kernel
from sim.time import Clock

from . import timing as T
from .mii_model import LanceWire, MiiTxModel, TxAttempt
from .registers import (
    BUFFER_RAM_SIZE_DEFAULT, CSR0, COUNTERS_OFFSET, DEFAULT_MAC, DESCRIPTOR_BYTES, FCS_BYTES,
    ILP_OFFSET, INIT_BLOCK_BYTES, MAX_FRAME, MIN_FRAME, RAP_OFFSET, RDP_OFFSET, RMD1,
    ROM_ESAR_OFFSET, ROM_ESAR_STRIDE, ROM_OFFSET, TMD1, TMD3, WINDOW_SIZE, Counter, Mode, plain_bits,
)

__all__ = ["LanceModel", "LanceWire", "COUNTER_NAMES"]

#: The counters' names (:class:`hw.lance.registers.Counter` members in lower case), in the order
#: of their words at ``COUNTERS_OFFSET``.
COUNTER_NAMES = tuple(c.name.lower() for c in sorted(Counter))
_COUNTER_MAX = 0xFFFF
_MASK32 = 0xFFFF_FFFF
# CSR0 bits as plain ints: the model tests them on every bus access and edge, where
# IntFlag arithmetic costs a Python enum construction per operation.
_C0 = plain_bits(CSR0)
_W1C = int(CSR0.write_one_to_clear())
_INTR_SOURCES = int(CSR0.interrupt_sources())
_ERR_SOURCES = _C0.BABL | _C0.CERR | _C0.MISS | _C0.MERR
_MIN_PAYLOAD = MIN_FRAME - FCS_BYTES
_M = plain_bits(Mode)
_LOOP_INTL = _M.LOOP | _M.INTL

# Priorities of the actions at one edge (lower runs first; a later action's writes win).
_P_BUS = 0
_P_TX = 1
_P_RX = 2
_P_IRQ = 3
_P_TIMER = 4
#: zlib.crc32 of a frame whose FCS is right (the CRC residue, complemented).
_CRC_GOOD = 0x2144DF1C


@dataclass
class _Pending:
    """Receive bytes on their way into the RAM: byte ``i`` of ``data`` is written to
    ``addr + i`` (modulo the RAM) at edge ``c0 + i * stride``."""

    c0: int
    stride: int
    addr: int
    data: bytes
    done: int = 0
    unit: int = 1       # bytes written per step (4 for a host block write)


class LanceModel:
    """Transaction-level model of :class:`hw.lance.gateware.LanceCard`; a ``sim.bus.BusTarget``.

    Parameters
    ----------
    kernel : Kernel
        The kernel whose time the model lives in (the card's reset is at time 0).
    clock : Clock
        The card's clock (12.5 MHz TURBOchannel clock, rising edges at ``k * period``).
    irq : IrqLine
        The interrupt line (``_C0.INTR & _C0.INEA``, registered).
    ram_bytes : int
        Buffer SRAM size, a power of two multiple of 4 bytes (default 128 KiB).
    mac : bytes
        The 6-byte station address in the ROM.
    wire : LanceWire or None
        The transceiver ``tx_en`` drives (:mod:`hw.lance.mii_model`); its binding drives
        :meth:`set_crs` and :meth:`set_col` back. None is a free wire (``crs = col = 0``), with
        frames kept in :attr:`transmitted`.
    ilp_pipes : sequence of Pipe or None
        As :class:`hw.lance.gateware.LanceCard`'s: None (the default), no pipe block; a pipe
        list, the buffer-port pipe block's twin (:attr:`ilp`) on the host bus.

    Attributes
    ----------
    ram : bytearray
        The buffer SRAM (backdoor; reading it commits the receive bytes due by now).
    counters : dict[str, int]
        The saturating counters, by :data:`COUNTER_NAMES`.
    transmitted : list[tuple[int, bytes]]
        With no wire: (cycle of the rising ``tx_en`` edge, frame with FCS) per frame sent.
    ilp : hw.ilp.buffer_port_model.BufferPortModel or None
        The pipe block's twin (its windows' ``done`` cycles and results).

    Raises
    ------
    TypeError
        If ``clock``, ``irq`` or ``wire`` has the wrong type.
    ValueError
        If ``ram_bytes`` or ``mac`` is invalid.
    """

    def __init__(self, kernel: Kernel, clock: Clock, *, irq: IrqLine,
                 ram_bytes: int = BUFFER_RAM_SIZE_DEFAULT, mac: bytes = DEFAULT_MAC,
                 wire: LanceWire | None = None, ilp_pipes=None):
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a sim.time.Clock, not {clock!r}")
        if not isinstance(irq, IrqLine):
            raise TypeError(f"irq must be a sim.bus.IrqLine, not {irq!r}")
        if not isinstance(ram_bytes, int) or ram_bytes < 64 or ram_bytes & (ram_bytes - 1):
            raise ValueError(f"ram_bytes must be a power of two of at least 64, not {ram_bytes!r}")
        if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
            raise ValueError(f"mac must be 6 bytes, not {mac!r}")
        if wire is not None and not isinstance(wire, LanceWire):
            raise TypeError(f"wire must implement LanceWire (tx_start, tx_stop), not {wire!r}")
        self.ilp = None
        if ilp_pipes is not None:
            from ..ilp.buffer_port_model import BufferPortModel
            self.ilp = BufferPortModel(pipes=ilp_pipes, layout="contiguous", addr_width=19,
                                       regs_addr=ILP_OFFSET // 4)
        self.kernel = kernel
        self.clock = clock
        self.irq = irq
        self.wire = wire
        self.mac = bytes(mac)
        self.ram_bytes = ram_bytes
        self._ram = bytearray(ram_bytes)
        self._p = clock.period
        self.counters: dict[str, int] = {name: 0 for name in COUNTER_NAMES}
        self.transmitted: list[tuple[int, bytes]] = []
        self.reads = 0
        self.writes = 0
        # Host bus: one access at a time, in arrival order.
        self._busy = False
        self._queue: list = []
        # Actions per edge (cycle -> list of (priority, seq, fn)).
        self._actions: dict[int, list] = {}
        self._seq = 0
        self._pending: list[_Pending] = []
        self._host_runs: list[_Pending] = []   # host block writes on their way into the RAM
        self._irq_next = 0
        self._rx_busy_until = -1
        # The last edge at which STRT changed RXON, and RXON before it: the receive engine
        # tests RXON as after edge beat(0) while it runs at beat(0) + 1 (_rxon_after).
        self._rxon_edge = -1
        self._rxon_before = 0
        self.rap = 0
        # Register state that STOP does not touch.
        self.csr1 = self.csr2 = self.csr3 = 0
        self.mode = Mode(0)
        self._iloop = False             # MODE.LOOP and MODE.INTL (plain bool: per frame)
        self.padr = bytes(6)
        self.ladrf = 0
        self.rdra = self.tdra = 0
        self.rlen = self.tlen = 1
        self._epoch = 0
        self._tx_timer: Callable[[], None] | None = None
        self._mii = MiiTxModel(lambda edge, fn: self._at(edge, fn, _P_TX), self._p,
                               lambda: kernel.now, wire)
        #: The backoff random numbers (the gateware's t_lfsr; STOP does not reset it).
        self._lfsr = T.backoff_seed(self.mac)
        self._reset_state()

    # -- state ------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        """Reset and STOP: CSR0 = STOP, ring indices 0, engines idle (counters, CSR1-3, the
        init block's values and the RAM are kept, as in the gateware)."""
        self.csr0 = _C0.STOP
        self.tx_index = 0
        self.rx_index = 0
        self._epoch += 1                # engine steps scheduled before this are dropped
        if self._tx_timer is not None:
            self._tx_timer()
            self._tx_timer = None
        self._tx_busy = False           # a poll or a frame is in progress
        self._tx_req = -(1 << 40)       # effect edge of the last TDMD/STRT (t_poll_req)
        self._mii.reset()
        self._init_busy = False

    @property
    def ram(self) -> bytearray:
        """The buffer SRAM, with every receive byte due by now written."""
        self._commit(self.kernel.now // self._p)
        return self._ram

    @property
    def csr0_value(self) -> int:
        """CSR0 as a read returns it (INTR and ERR computed)."""
        v = self.csr0 & ~(_C0.INTR | _C0.ERR | _C0.TDMD)
        if v & _INTR_SOURCES:
            v |= _C0.INTR
        if v & _ERR_SOURCES:
            v |= _C0.ERR
        return v

    # -- BusTarget --------------------------------------------------------------------------
    async def read(self, offset: int) -> int:
        """Read the word at byte ``offset`` of the 2 MiB window (``BUS_READ_WAIT + 1`` cycles).

        Registers are returned as they were after edge ``ack - 1``, buffer RAM as it was after
        edge ``ack - 2`` (its read port registers the address one cycle earlier).
        """
        self._check(offset)
        await self._acquire()
        k, p = self.kernel, self._p
        e0 = self.clock.edge_after(k.now) // p
        if self.ilp is not None and self.ilp.claims(offset // 4):
            return await self._ilp_access(e0, offset, None)
        ack = e0 + T.BUS_READ_WAIT
        # Sample in the middle of a cycle: after every change at the edge before, before any
        # at the edge after.
        if offset < RDP_OFFSET:
            await k.sleep_until((ack - 2) * p + p // 2)
            self._commit(ack - 2)
            a = offset % self.ram_bytes
            value = int.from_bytes(self._ram[a:a + 4], "little")
        else:
            await k.sleep_until((ack - 1) * p + p // 2)
            value = self._peek(offset)
        if self.ilp is not None:
            self.ilp.observe(write=False, addr=offset // 4, data=value, ack_cycle=ack)
        self.reads += 1
        await k.sleep_until((ack + 1) * p, late=True)
        self._release()
        return value

    async def write(self, offset: int, value: int) -> None:
        """Write ``value`` at byte ``offset``; takes effect at ``e0 + BUS_WRITE_WAIT``."""
        self._check(offset)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MASK32:
            raise ValueError(f"LANCE write value must be a 32-bit unsigned integer, not {value!r}")
        await self._acquire()
        k, p = self.kernel, self._p
        e0 = self.clock.edge_after(k.now) // p
        if self.ilp is not None and self.ilp.claims(offset // 4):
            await self._ilp_access(e0, offset, value)
            return
        ack = e0 + T.BUS_WRITE_WAIT
        if self.ilp is not None:
            self.ilp.observe(write=True, addr=offset // 4, data=value, ack_cycle=ack)
        if offset < RDP_OFFSET:
            # A buffer RAM word changes nothing but the RAM: it goes in as a one-word host
            # run (as write_block's), landed when something looks at memory (a bus read, an
            # engine's _rd32/_read_ram/_wr8/_wr16), instead of an edge of its own: no kernel
            # event, and every reader sees it from edge ``ack`` on, as before.
            self._commit(ack - 1)
            self._host_runs.append(_Pending(ack, 1, offset % self.ram_bytes,
                                            value.to_bytes(4, "little"), unit=4))
        else:
            self._at(ack, lambda: self._poke(offset, value, ack), _P_BUS)
        self.writes += 1
        await k.sleep_until((ack + 1) * p, late=True)
        self._release()

    async def read_block(self, offset: int, n: int) -> list[int]:
        """``n`` words from byte ``offset`` with the timing of back-to-back single reads
        (each first sampled one cycle after the previous completes: ``BUS_READ_WAIT + 2``
        cycles apart). One kernel wake-up for the block: every word is returned as the RAM
        holds it at the last word's sample edge, which differs from word-by-word reads only
        for words the card itself writes during the block. Outside the RAM: word by word.
        """
        self._check(offset)
        if not isinstance(n, int) or n < 0 or offset + 4 * n > RDP_OFFSET:
            if isinstance(n, int) and n >= 0 and offset + 4 * n <= WINDOW_SIZE:
                return [await self.read(offset + 4 * i) for i in range(n)]
            raise ValueError(f"LANCE block read of {n!r} words at {offset:#x} leaves the window")
        if n == 0:
            return []
        await self._acquire()
        k, p = self.kernel, self._p
        e0 = self.clock.edge_after(k.now) // p
        ack = e0 + (n - 1) * (T.BUS_READ_WAIT + 2) + T.BUS_READ_WAIT
        await k.sleep_until((ack - 2) * p + p // 2)
        self._commit(ack - 2)
        raw = self._read_ram(offset, 4 * n)
        if self.ilp is not None:
            for i, w in enumerate(struct.unpack(f"<{n}I", raw)):
                self.ilp.observe(write=False, addr=offset // 4 + i, data=w,
                                 ack_cycle=e0 + i * (T.BUS_READ_WAIT + 2) + T.BUS_READ_WAIT)
        self.reads += n
        await k.sleep_until((ack + 1) * p, late=True)
        self._release()
        return list(struct.unpack(f"<{n}I", raw))

    async def write_block(self, offset: int, words) -> None:
        """Words from byte ``offset`` with the timing of back-to-back single writes (word
        ``i`` takes effect at ``e0 + i * (BUS_WRITE_WAIT + 2) + BUS_WRITE_WAIT``), each at its
        own edge, without a kernel event per word. Outside the RAM: word by word."""
        self._check(offset)
        words = list(words)
        n = len(words)
        try:
            data = struct.pack(f"<{n}I", *words)         # checks every word at C speed
        except (struct.error, TypeError):
            data = None
        if data is None or bool in set(map(type, words)):
            for w in words:
                if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= _MASK32:
                    raise ValueError(f"LANCE write value must be a 32-bit unsigned integer, "
                                     f"not {w!r}")
        if offset + 4 * n > RDP_OFFSET:
            if offset + 4 * n > WINDOW_SIZE:
                raise ValueError(f"LANCE block write of {n} words at {offset:#x} leaves the window")
            for i, w in enumerate(words):
                await self.write(offset + 4 * i, w)
            return
        if n == 0:
            return
        await self._acquire()
        k, p = self.kernel, self._p
        e0 = self.clock.edge_after(k.now) // p
        stride = T.BUS_WRITE_WAIT + 2
        first = e0 + T.BUS_WRITE_WAIT
        last = first + (n - 1) * stride
        self._commit(first - 1)
        self._host_runs.append(_Pending(first, stride, offset % self.ram_bytes, data, unit=4))
        if self.ilp is not None:
            for i, w in enumerate(words):
                self.ilp.observe(write=True, addr=offset // 4 + i, data=w,
                                 ack_cycle=first + i * stride)
        self.writes += n
        await k.sleep_until((last + 1) * p, late=True)
        self._release()

    def receive(self, frame: bytes, *, dribble: bool = False) -> None:
        """A frame (FCS included) arrives: its first preamble nibble is on the rx pins from
        the first clock edge at or after now (edge ``e``), nibble ``j`` from edge ``e + 5 j``
        (``PREAMBLE_NIBBLES`` nibbles of preamble and SFD, then the bytes low nibble first).
        ``dribble``: one more nibble follows the last byte (a non-integral byte count).

        Raises
        ------
        TypeError
            If ``frame`` is not bytes.
        ValueError
            If ``frame`` is empty or arrives while the previous one is still on the pins.
        """
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"frame must be bytes, not {type(frame).__name__}")
        frame = bytes(frame)
        if not frame:
            raise ValueError("frame must not be empty")
        if self._iloop:
            return                      # internal loopback: the rx pins are not listened to
        e0 = self.clock.edge_at_or_after(self.kernel.now) // self._p
        if e0 < self._rx_busy_until:
            raise ValueError(f"frame at edge {e0} overlaps the previous one on the rx pins "
                             f"(busy until edge {self._rx_busy_until})")
        self._rx_busy_until = e0 + T.MII_DIVIDER * (T.wire_nibbles(len(frame)) + int(dribble))
        # The card samples the pins at tick edges: nibble 0 at the first one after e0.
        t0 = T.next_tick_at_or_after(e0 + 1)
        self._step(self._rx_engine(frame, t0, bool(dribble)), _P_RX)

    # -- the wire's pins -------------------------------------------------------------------------
    def set_crs(self, level: int) -> None:
        """Drive ``crs`` (carrier: another station's signal is here) from now on; sampled at
        the first clock edge after now, like the RTL's input."""
        self._mii.set_crs(level)

    def set_col(self, level: int) -> None:
        """Drive ``col`` (collision while transmitting) from now on (ignored in internal
        loopback, where the card's transmitter is not on the wire)."""
        if not self._iloop:
            self._mii.set_col(level)


    # -- bus internals ------------------------------------------------------------------------
    async def _ilp_access(self, e0: int, offset: int, value: int | None) -> int:
        """An access (a read if ``value`` is None) to the pipe block's registers, first
        sampled at edge ``e0`` (presented in cycle ``e0 - 1``), the bus held: its value."""
        ack, got = self.ilp.register_access(write=value is not None, addr=offset // 4,
                                            data=value or 0, cycle=e0 - 1)
        if value is None:
            self.reads += 1
        else:
            self.writes += 1
        await self.kernel.sleep_until((ack + 1) * self._p, late=True)
        self._release()
        return got

    def _check(self, offset: int) -> None:
        if (not isinstance(offset, int) or isinstance(offset, bool)
                or not 0 <= offset < WINDOW_SIZE or offset & 3):
            raise ValueError(f"LANCE offset must be a word offset in [0, {WINDOW_SIZE:#x}), "
                             f"not {offset!r}")

    async def _acquire(self) -> None:
        if self._busy:
            ev = self.kernel.event("lance.bus.turn")
            self._queue.append(ev)
            await ev
        self._busy = True

    def _release(self) -> None:
        if self._queue:
            self._queue.pop(0).set()
        else:
            self._busy = False

    def _peek(self, offset: int) -> int:
        """A register word (not RAM) as a read returns it now."""
        if offset == RDP_OFFSET:
            return (self.csr0_value, self.csr1, self.csr2, self.csr3)[self.rap]
        if offset == RAP_OFFSET:
            return self.rap
        n = (offset - COUNTERS_OFFSET) // 4
        if offset >= COUNTERS_OFFSET and n < len(COUNTER_NAMES):
            return self.counters[COUNTER_NAMES[n]]
        i = (offset - ROM_OFFSET - (ROM_ESAR_OFFSET & ~3)) // ROM_ESAR_STRIDE
        if offset >= ROM_OFFSET and 0 <= i < 6 and (offset - ROM_OFFSET) % ROM_ESAR_STRIDE == 0:
            return self.mac[i] << (8 * (ROM_ESAR_OFFSET % 4))
        return 0

    def _poke(self, offset: int, value: int, edge: int) -> None:
        """A host write taking effect at ``edge``."""
        if offset < RDP_OFFSET:
            self._commit(edge)
            a = offset % self.ram_bytes
            self._ram[a:a + 4] = value.to_bytes(4, "little")
            return
        if offset == RAP_OFFSET:
            self.rap = value & 3
            return
        if offset == RDP_OFFSET:
            v = value & 0xFFFF
            if self.rap == 0:
                self._write_csr0(v, edge)
            elif self.csr0 & _C0.STOP:
                if self.rap == 1:
                    self.csr1 = v & 0xFFFE
                elif self.rap == 2:
                    self.csr2 = v & 0xFF
                else:
                    self.csr3 = v & 0x7
            return
        n = (offset - COUNTERS_OFFSET) // 4
        if offset >= COUNTERS_OFFSET and n < len(COUNTER_NAMES):
            self.counters[COUNTER_NAMES[n]] = 0

    def _write_csr0(self, v: int, edge: int) -> None:
        if v & _C0.STOP:
            self._reset_state()
            return
        c = self.csr0 & ~(v & _W1C)
        c = (c & ~_C0.INEA) | (v & _C0.INEA)
        stopped = bool(self.csr0 & _C0.STOP)
        self.csr0 = c
        if v & _C0.INIT and stopped:
            self.csr0 = (self.csr0 & ~_C0.STOP) | _C0.INIT
            self._start_init(edge, bool(v & _C0.STRT))
        elif v & _C0.STRT:
            self._start(edge)
        if v & _C0.TDMD:
            self._tx_demand(edge)

    # -- edge scheduler -------------------------------------------------------------------------
    def _at(self, cycle: int, fn: Callable[[], None], prio: int) -> None:
        """Run ``fn`` at edge ``cycle``; actions at one edge run in priority order."""
        lst = self._actions.get(cycle)
        if lst is None:
            if cycle * self._p < self.kernel.now:
                raise AssertionError(f"LANCE model scheduled edge {cycle} in the past "
                                     f"(now {self.kernel.now} ps)")
            lst = self._actions[cycle] = []
            self.kernel.post(cycle * self._p, self._run_edge, cycle, late=True)
        self._seq += 1
        lst.append((prio, self._seq, fn))

    def _run_edge(self, cycle: int) -> None:
        lst = self._actions[cycle]
        while lst:
            if len(lst) > 1:
                lst.sort()                  # by (prio, seq): seq is unique, fn never compared
            fn = lst.pop(0)[2]
            fn()
        del self._actions[cycle]
        # _update_irq's test inline (it runs at every edge): INTR is the OR of the interrupt
        # sources (csr0_value), so the level is INEA and any source.
        c = self.csr0
        if (1 if c & _INTR_SOURCES and c & _C0.INEA else 0) != self._irq_next:
            self._update_irq(cycle)

    def _update_irq(self, cycle: int) -> None:
        c = self.csr0
        level = 1 if c & _INTR_SOURCES and c & _C0.INEA else 0
        if level != self._irq_next:
            self._irq_next = level
            self._at(cycle + T.IRQ_LATENCY, lambda: self.irq.drive(level), _P_IRQ)

    def _step(self, gen: Generator, prio: int, value=None) -> None:
        """Advance an engine (a generator yielding the edges it acts at) to its next step."""
        epoch = self._epoch
        try:
            nxt = gen.send(value)
        except StopIteration:
            return
        if isinstance(nxt, tuple):          # ("tx", ...): the frame goes to the transmitter
            self._tx_send(gen, prio, epoch, *nxt[1:])
            return

        def resume() -> None:
            if self._epoch == epoch:
                self._step(gen, prio)
        self._at(nxt, resume, prio)

    # -- memory helpers -------------------------------------------------------------------------
    def _rd32(self, addr: int) -> int:
        """The aligned word holding byte ``addr``."""
        if self._host_runs:
            self._host_runs = self._apply(self._host_runs, self.kernel.now // self._p)
        a = addr % self.ram_bytes & ~3
        return int.from_bytes(self._ram[a:a + 4], "little")

    def _wr8(self, addr: int, value: int) -> None:
        if self._host_runs:             # host words due by now land first: the engine's wins
            self._host_runs = self._apply(self._host_runs, self.kernel.now // self._p)
        self._ram[addr % self.ram_bytes] = value & 0xFF

    def _wr16(self, addr: int, value: int) -> None:
        if self._host_runs:
            self._host_runs = self._apply(self._host_runs, self.kernel.now // self._p)
        a = addr % self.ram_bytes
        self._ram[a] = value & 0xFF
        self._ram[(a + 1) % self.ram_bytes] = value >> 8 & 0xFF

    def _read_ram(self, addr: int, n: int) -> bytes:
        if self._host_runs:
            self._host_runs = self._apply(self._host_runs, self.kernel.now // self._p)
        a = addr % self.ram_bytes
        if a + n <= self.ram_bytes:
            return bytes(self._ram[a:a + n])
        return bytes(self._ram[(a + i) % self.ram_bytes] for i in range(n))

    def _commit(self, edge: int) -> None:
        """Write every pending host block word and receive byte due at or before ``edge``."""
        if self._host_runs:
            self._host_runs = self._apply(self._host_runs, edge)
        if self._pending:
            self._pending = self._apply(self._pending, edge)

    def _apply(self, runs: list[_Pending], edge: int) -> list[_Pending]:
        keep = []
        n = self.ram_bytes
        for pnd in runs:
            u = pnd.unit
            last = len(pnd.data) // u - 1
            due = last + 1 if edge >= pnd.c0 + last * pnd.stride \
                else max(0, (edge - pnd.c0) // pnd.stride + 1)
            if due > pnd.done:
                a = (pnd.addr + pnd.done * u) % n
                chunk = pnd.data[pnd.done * u:due * u]
                if a + len(chunk) <= n:
                    self._ram[a:a + len(chunk)] = chunk
                else:
                    for i, b in enumerate(chunk):
                        self._ram[(a + i) % n] = b
                pnd.done = due
            if pnd.done <= last:
                keep.append(pnd)
        return keep

    # -- init and start -------------------------------------------------------------------------
    def _start_init(self, edge: int, then_start: bool) -> None:
        """INIT written at ``edge``: read the init block; IDON at ``edge + INIT_CYCLES`` (one
        edge later for a block at an address that is 2 mod 4)."""
        self._init_busy = True
        epoch = self._epoch
        iadr = (self.csr2 & 0xFF) << 16 | self.csr1       # CSR1 bit 0 is always 0
        cycles = T.INIT_CYCLES + (T.INIT_UNALIGNED_CYCLES if iadr & 2 else 0)

        def done() -> None:
            if self._epoch != epoch:
                return
            raw = self._read_ram(iadr, INIT_BLOCK_BYTES)
            w = struct.unpack("<12H", raw)
            self.mode = Mode(w[0])
            self.padr = raw[2:8]
            self.ladrf = w[4] | w[5] << 16 | w[6] << 32 | w[7] << 48
            self.rdra = (w[9] & 0xFF) << 16 | w[8]
            self.rlen = 1 << (w[9] >> 13)
            self.tdra = (w[11] & 0xFF) << 16 | w[10]
            self.tlen = 1 << (w[11] >> 13)
            # Internal loopback (MODE.LOOP and INTL): the transmitter's frames never reach the
            # wire (nor its carrier and collisions the transmitter).
            self._iloop = w[0] & _LOOP_INTL == _LOOP_INTL
            self._mii.wire = None if self._iloop else self.wire
            self._init_busy = False
            self.csr0 |= _C0.IDON
            if then_start:
                self._start(edge + cycles)
        self._at(edge + cycles, done, _P_TX)

    def _start(self, edge: int) -> None:
        """STRT takes effect at ``edge`` (the ring indices are not reset: STOP does that)."""
        c = (self.csr0 & ~(_C0.STOP | _C0.TXON | _C0.RXON)) | _C0.STRT
        if not self.mode & Mode.DTX:
            c |= _C0.TXON
        if not self.mode & Mode.DRX:
            c |= _C0.RXON
        if (c ^ self.csr0) & _C0.RXON:
            self._rxon_edge, self._rxon_before = edge, self.csr0 & _C0.RXON
        self.csr0 = c
        self._tx_demand(edge)

    # -- transmit engine -------------------------------------------------------------------------
    def _tx_demand(self, edge: int) -> None:
        """A poll request taking effect at ``edge`` (TDMD, STRT): the idle engine polls at the
        next edge; a busy one keeps the request for when it is idle again."""
        self._tx_req = max(self._tx_req, edge)
        if not self._tx_busy and self.csr0 & _C0.TXON and not self._init_busy:
            self._tx_poll(edge + 1)

    def _tx_poll(self, p: int) -> None:
        """Start a poll at edge ``p`` (the engine enters its descriptor fetch)."""
        if self._tx_timer is not None:
            self._tx_timer()
            self._tx_timer = None
        self._tx_busy = True
        self._step(self._tx_engine(p), _P_TX)

    def _tx_idle(self, p: int, d: int) -> None:
        """The poll started at ``p`` found nothing (decision at edge ``d``): poll again when a
        request came in meanwhile, else ``TX_POLL_CYCLES`` after ``p``."""
        self._tx_busy = False
        if self._tx_req >= p:
            self._tx_poll(max(self._tx_req, d) + 1)
            return
        epoch = self._epoch
        alive = [True]

        def timer() -> None:
            if not alive[0] or self._epoch != epoch:
                return
            self._tx_timer = None
            if self.csr0 & _C0.TXON and not self._tx_busy:
                self._tx_poll(p + T.TX_POLL_CYCLES)
        self._at(p + T.TX_POLL_CYCLES - 1, timer, _P_TIMER)

        def cancel() -> None:
            alive[0] = False
        self._tx_timer = cancel

    def _tmd(self, i: int) -> int:
        return self.tdra + (i % self.tlen) * DESCRIPTOR_BYTES

    def _tx_engine(self, p: int) -> Generator:
        """Polls starting at edge ``p``, and the frames they find (see :mod:`hw.lance.timing`)."""
        div = T.MII_DIVIDER
        attempts = 0                                  # retries of this frame so far
        deferred = False
        while True:
            idx = self.tx_index
            d = self._tmd(idx)
            yield p                                   # TMD0/TMD1 as after edge p
            w0 = self._rd32(d)
            yield p + 1                               # TMD2/TMD3 as after edge p + 1
            w1 = self._rd32(d + 4)
            dec = p + T.TX_FETCH_CYCLES
            yield dec
            if not w0 >> 31:
                self._tx_idle(p, dec)
                return
            tmd1 = w0 >> 16
            add_fcs = not (self.mode & Mode.DTCR) or bool(tmd1 & TMD1.ADD_FCS)
            data = bytearray(self._read_ram(w0 & 0xFF_FFFF, _bcnt(w1)))
            # The transmitter takes it from here; the engine resumes when its status is ready.
            a: TxAttempt = yield ("tx", dec + T.TX_FIRST_BYTE_CYCLES, data, idx,
                                  bool(w0 >> 24 & 1), add_fcs)
            deferred |= a.deferred
            buff_error = a.underflow
            rtry = False
            if a.collision:
                self._count("collisions")
                if (not a.late and not self.mode & Mode.DRTY and not buff_error
                        and attempts + 1 < T.MAX_ATTEMPTS):
                    # Truncated binary exponential backoff, r in [0, 2^min(n, 10)), then the
                    # frame is fetched again from its first descriptor.
                    attempts += 1
                    r = self._lfsr & ((1 << min(attempts, 10)) - 1)
                    self._lfsr = T.backoff_step(self._lfsr)
                    p = a.status_edge + 1 + r * T.SLOT_TICKS * div
                    continue
                if not a.late and not buff_error:
                    rtry = True
                    self._count("retry_errors")
            s = a.status_edge
            descs = a.descs
            errors = buff_error or rtry or a.late
            # Write-back: per descriptor, TMD1 is read (Wb0) and its flags byte written.
            for k, i in enumerate(descs):
                dk = self._tmd(i)
                yield s + T.TX_WRITEBACK_PER_DESCRIPTOR * k
                old = self._rd32(dk + 3) >> 24       # TMD1's flags byte
                yield s + T.TX_WRITEBACK_PER_DESCRIPTOR * (k + 1)
                flags = old & 0b0010_0011             # keep ENP, STP, ADD_FCS; OWN cleared
                if k == len(descs) - 1:
                    flags |= (0x04 if deferred else 0) \
                        | (0x08 if attempts == 1 else 0) \
                        | (0x10 if attempts > 1 else 0) \
                        | (0x40 if errors else 0)
                self._wr8(dk + 3, flags)
            c = s + T.TX_WRITEBACK_PER_DESCRIPTOR * len(descs) + T.TX_WRITEBACK_TAIL
            yield c
            # TMD3 of the last descriptor the engine owned is replaced (TDR = 0).
            last = descs[-1]
            tmd3 = (TMD3.RTRY if rtry else 0) \
                | (TMD3.LCOL if a.late else 0) \
                | ((TMD3.UFLO | TMD3.BUFF) if buff_error else 0)
            self._wr16(self._tmd(last) + 6, int(tmd3))
            self.csr0 |= _C0.TINT
            self.tx_index = (last + 1) % self.tlen
            attempts = 0
            deferred = False
            if buff_error:
                self.csr0 &= ~_C0.TXON
                self._tx_busy = False
                return
            p = c                                      # the next poll starts at once

    def _tx_send(self, gen: Generator, prio: int, epoch: int, offer: int, data: bytearray,
                 idx: int, enp: bool, add_fcs: bool) -> None:
        """Hand a frame whose first buffer is ``data`` (descriptor ``idx``) to the transmitter
        from edge ``offer``; fetch its chained buffers while it goes out; resume the engine
        with the :class:`~hw.lance.mii_model.TxAttempt` when the transmitter's status is
        ready."""
        div = T.MII_DIVIDER
        iloop = self._iloop
        pad = not int(self.mode) & _M.LOOP            # no padding in loopback

        def done(a: TxAttempt) -> None:
            if self._epoch == epoch:
                self._step(gen, prio, a)

        def babble(a: TxAttempt) -> None:
            # The transmitter starts the frame's 1519th byte at tick edge e (Am7990 BABL: on
            # the wire longer than a maximum-length frame), unless it was jammed before.
            e = a.rise + div * (T.PREAMBLE_NIBBLES + 2 * MAX_FRAME)

            def set_babl() -> None:
                if self._epoch == epoch and (a.cut is None or a.cut >= e):
                    self.csr0 |= _C0.BABL
            self._at(e + 1, set_babl, _P_TX)

        def ready(a: TxAttempt) -> None:
            frame = _on_wire(data, add_fcs, pad)
            n = len(data)
            padded = len(frame) - (FCS_BYTES if add_fcs else 0)
            if self.wire is None and not iloop:
                self.transmitted.append((a.rise, frame))
            if len(frame) > MAX_FRAME and n <= MAX_FRAME:
                babble(a)
            self._mii.frame_ready(a, frame, n, padded)

        def fetch(a: TxAttempt, idx: int, enp: bool) -> None:
            if enp:
                ready(a)
                return
            # The last byte of this buffer is taken by the transmitter at the tick edge
            # rise + div * (PREAMBLE_NIBBLES + 2 j); the engine fetches the next descriptor
            # then (unless a collision stopped the frame before).
            f0 = a.rise + div * (T.PREAMBLE_NIBBLES + 2 * (len(data) - 1))
            nxt = (idx + 1) % self.tlen
            dn = self._tmd(nxt)
            words = []

            def tmd01() -> None:
                if self._epoch == epoch and (a.cut is None or f0 <= a.cut):
                    words.append(self._rd32(dn))
                    self._at(f0 + 1, tmd23, _P_TX)

            def tmd23() -> None:
                if self._epoch == epoch:
                    words.append(self._rd32(dn + 4))
                    self._at(f0 + T.TX_FETCH_CYCLES, decide, _P_TX)

            def decide() -> None:
                if self._epoch != epoch:
                    return
                w0, w1 = words
                if not w0 >> 31:
                    # The transmitter starves at its next byte: tx_er, and the frame ends
                    # there. (Approximate: the gateware's underflow is not modelled to the cycle.)
                    self._mii.underflow(a, T.next_tick_at_or_after(f0 + div * 2))
                    return
                a.descs.append(nxt)
                had = len(data)
                data.extend(self._read_ram(w0 & 0xFF_FFFF, _bcnt(w1)))
                if had <= MAX_FRAME < len(data):
                    babble(a)
                fetch(a, nxt, bool(w0 >> 24 & 1))
            self._at(f0, tmd01, _P_TX)

        def on_rise(a: TxAttempt) -> None:
            if self._epoch == epoch:
                a.descs.append(idx)
                if len(data) > MAX_FRAME:
                    babble(a)
                if iloop and self.mode & Mode.COLL:
                    self._mii.set_col(1)      # MODE.COLL: col follows our own tx_en
                elif iloop:
                    self._loop_back(a.rise, idx, data, enp, add_fcs)
                fetch(a, idx, enp)
        self._mii.offer(offer, done, on_rise)

    def _loop_back(self, rise: int, idx: int, data: bytearray, enp: bool,
                   add_fcs: bool) -> None:
        """Internal loopback: the frame whose ``tx_en`` rose at ``rise`` reaches the receiver,
        which samples its first nibble a tick later. The chained buffers are read now (the
        engine fetches them as the frame goes out: the same bytes unless the host rewrites
        them meanwhile); a chain that stops at a descriptor the card does not own is cut by
        the transmitter and not looped back (approximate: the RTL's receiver drops it with
        ``rx_er`` and counts it)."""
        buf = bytearray(data)
        i = idx
        while not enp and len(buf) <= 2 * MAX_FRAME:
            i = (i + 1) % self.tlen
            w0, w1 = self._rd32(self._tmd(i)), self._rd32(self._tmd(i) + 4)
            if not w0 >> 31:
                return
            buf += self._read_ram(w0 & 0xFF_FFFF, _bcnt(w1))
            enp = bool(w0 >> 24 & 1)
        if not enp:
            return                                    # babbling: never ends
        self._step(self._rx_engine(_on_wire(buf, add_fcs, False), rise + T.MII_DIVIDER), _P_RX)

    # -- receive engine --------------------------------------------------------------------------
    def _accept(self, dst: bytes) -> bool:
        """The address filter (Am7990): PROM, our PADR, broadcast, or a hashed multicast."""
        if self.mode & Mode.PROM or dst == self.padr or dst == b"\xff" * 6:
            return True
        if dst[0] & 1:
            h = (zlib.crc32(dst) ^ _MASK32) >> 26     # the CRC register's top six bits
            return bool(self.ladrf >> h & 1)
        return False

    def _rmd(self, i: int) -> int:
        return self.rdra + (i % self.rlen) * DESCRIPTOR_BYTES

    def _rx_engine(self, frame: bytes, t0: int, dribble: bool = False) -> Generator:
        """The receive engine for a frame whose first preamble nibble is sampled at tick edge
        ``t0``. Byte ``i`` reaches the engine at ``t0 + MII_DIVIDER * (PREAMBLE_NIBBLES + 4 +
        2 i)`` (the receiver hands a byte on one nibble pair late, and the engine's holding
        register adds one tick); the last one tick later after a dribble nibble (the receiver
        flushes it when ``rx_dv`` falls)."""
        n = len(frame)
        div = T.MII_DIVIDER
        b0 = t0 + div * (T.PREAMBLE_NIBBLES + T.RX_LAST_BEAT_TICKS + 2)
        last_late = div if dribble else 0

        def beat(i: int) -> int:
            return b0 + 2 * div * i + (last_late if i == n - 1 else 0)

        # RXON is tested as after edge beat(0) but at beat(0) + 1, where the descriptor read
        # is due anyway (one engine step fewer per frame). Only STRT turns RXON on, and STOP,
        # the one way to turn it off, drops this engine's steps (the epoch): so RXON as after
        # beat(0) is the current one unless STRT changed it at beat(0) + 1 (_rxon_edge).
        yield beat(0) + 1
        rxon = self.csr0 & _C0.RXON if self._rxon_edge <= beat(0) else self._rxon_before
        if not rxon:
            return
        # Loopback (Am7990 MODE.LOOP): frames of 8-32 bytes are the norm, so no runt filter;
        # the one CRC generator checks received frames only with MODE.DTCR.
        mode = int(self.mode)
        loop = bool(mode & _M.LOOP)
        runt = n < MIN_FRAME and not loop
        if n == 1:
            self._count("runts")
            return
        first = self.rx_index
        d = self._rmd(first)
        w0 = self._rd32(d)                            # RMD0/RMD1 as after this edge
        yield beat(0) + 2                             # RMD2/RMD3
        w1 = self._rd32(d + 4)
        if n <= 6:                                    # the last byte comes with the address
            yield beat(n - 1) + 1
            self._count("runts")
            return
        yield beat(5) + 2                             # Decide has acted
        if not self._accept(frame[:6]):
            return
        if not w0 >> 31:
            self.csr0 |= _C0.MISS
            self._count("missed")
            return

        # The engine writes the six held address bytes from beat(5) + 2, then takes each later
        # byte from the SILO when it has arrived and the engine is free (timing.RX_SILO_BYTES).
        descs = [first]
        idx = first
        addr, size = w0 & 0xFF_FFFF, _bcnt(w1)
        used = 0           # bytes in the current buffer
        h = beat(5) + 2    # the engine is free for the next byte from this edge
        i = 0
        cut = False
        while True:
            tau = h if i < 6 else max(h, beat(i))     # byte i is taken
            if used == size:
                # Its buffer is full: Chain0..2 read the next descriptor.
                nxt = (idx + 1) % self.rlen
                yield tau + 2                         # RMD0/RMD1 as after this edge
                w0 = self._rd32(self._rmd(nxt))
                yield tau + 3                         # RMD2/RMD3
                w1 = self._rd32(self._rmd(nxt) + 4)
                if not w0 >> 31 or nxt == first:
                    cut = True
                    fin = tau + 5 if i == n - 1 else self._rx_skip(beat, max(i + 1, 6), n,
                                                                   tau + 5)
                    break
                idx = nxt
                descs.append(idx)
                addr, size = w0 & 0xFF_FFFF, _bcnt(w1)
                used = 0
                tau += T.RX_CHAIN_CYCLES
            end = min(n, i + size - used)
            h = self._queue_rx(frame, i, end, addr + used, tau + 2, beat)
            used += end - i
            i = end
            if i == n:
                fin = h
                break
        crc_error = (zlib.crc32(frame) != _CRC_GOOD if n >= 4 else True) \
            and (not loop or bool(mode & _M.DTCR))
        too_long = n > MAX_FRAME
        # The Am7990 hands a frame with a bad FCS up (ERR, CRC; FRAM too after a dribble
        # nibble); runts and frames over 1518 bytes are dropped (docs/lance_card.md).
        if not cut and (runt or too_long):
            yield fin + 1
            self._count("runts" if runt else "too_long")
            return
        if not cut and crc_error:
            yield fin + 1
            self._count("fcs_errors")
        for k, i in enumerate(descs):
            yield fin + 2 + k
            last = k == len(descs) - 1
            flags = 0
            if last and not cut:
                flags |= RMD1.ENP >> 8
            if k == 0:
                flags |= RMD1.STP >> 8
            if last:
                if cut:
                    flags |= RMD1.BUFF >> 8
                if crc_error:
                    flags |= RMD1.CRC >> 8
                    if dribble:
                        flags |= RMD1.FRAM >> 8
                if cut or crc_error:
                    flags |= RMD1.ERR >> 8
            self._wr8(self._rmd(i) + 3, flags)
        yield fin + 2 + len(descs)
        if not cut:
            self._wr16(self._rmd(idx) + 6, n & 0xFFF)
        self.csr0 |= _C0.RINT
        self.rx_index = (idx + 1) % self.rlen

    def _queue_rx(self, frame: bytes, lo: int, hi: int, addr: int, w: int,
                  beat: Callable[[int], int]) -> int:
        """Queue bytes ``lo .. hi - 1`` of ``frame`` for the buffer bytes from ``addr``: byte
        ``lo`` is written at edge ``w``; each next one two edges after the previous while the
        engine lags the wire (the address bytes always), else two edges after its beat.
        Returns the edge the last is written (the engine is free from there)."""
        k = lo + 1
        while k < hi and (k < 6 or beat(k) < w + 2 * (k - lo - 1)):
            k += 1
        self._pending.append(_Pending(w, 2, addr, frame[lo:k]))
        if k == hi:
            return w + 2 * (k - lo - 1)
        self._pending.append(_Pending(beat(k) + 2, 2 * T.MII_DIVIDER, addr + (k - lo),
                                      frame[k:hi]))
        return beat(hi - 1) + 2

    @staticmethod
    def _rx_skip(beat: Callable[[int], int], lo: int, n: int, s: int) -> int:
        """A cut frame: from edge ``s`` the engine throws away bytes ``lo .. n - 1`` (one per
        edge, each once it has arrived); returns the edge it finishes (after the last)."""
        j = lo
        while j < n and beat(j) < s:
            s += 1
            j += 1
        return (beat(n - 1) if j < n else s - 1) + 1

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = min(_COUNTER_MAX, self.counters[name] + n)

    def __repr__(self) -> str:
        return (f"<LanceModel csr0={self.csr0_value:#06x} tx_index={self.tx_index} "
                f"rx_index={self.rx_index}>")


def _on_wire(data: bytes, add_fcs: bool, pad: bool) -> bytes:
    """A frame as the transmitter sends it: padded to 60 bytes if ``pad``, FCS if asked."""
    frame = bytes(data)
    if pad and len(frame) < _MIN_PAYLOAD:
        frame = frame.ljust(_MIN_PAYLOAD, b"\0")
    if add_fcs:
        frame += zlib.crc32(frame).to_bytes(4, "little")
    return frame


def _bcnt(word: int) -> int:
    """A descriptor word's BCNT (bits 11:0, two's complement) as bytes; 0 means 4096."""
    return (-(word & 0xFFF)) & 0xFFF or 4096
