"""A shared, half-duplex 10 Mbit/s Ethernet segment with CSMA/CD, and MAC frame helpers.

The segment is a coaxial bus (the DECstation 5000/125's ThinWire port): every station hears
every other, one frame at a time. Stations follow IEEE 802.3's MAC rules:

* **Carrier sense and deferral.** A station with a frame waits until it has heard no carrier
  for the inter-frame gap (96 bit times). The gap is split as 802.3 (4.2.3.2.1) allows: during
  its first 64 bit times a carrier restarts the wait; after that the station is committed and
  transmits when the gap ends, carrier or not. That commitment is what makes two stations
  that were both deferring to the same frame start together and collide, as on a real cable.
* **Collision detection, jam.** A station learns of another's transmission only after the
  propagation delay, so two stations that start within that window collide. Each detects it
  when the other's signal reaches it, finishes its preamble if it is still sending it (802.3
  4.2.3.2.4), then sends the 32-bit jam and stops.
* **Truncated binary exponential backoff.** After its n-th collision a station waits
  ``r`` slot times (512 bit times), ``r`` uniform in ``[0, 2**min(n, 10))``, from a
  ``random.Random`` of its own seeded from the segment seed and its name (so adding a station
  does not change another's draws), then defers again. After 16 attempts it gives up:
  :meth:`Station.send` raises :class:`ExcessiveCollisions`.
* **Framing time.** A frame of ``L`` bytes (header + data + FCS, 64..1518) occupies the wire for
  ``(8 + L) * 8`` bit times (7 preamble bytes and the start delimiter first).

Physical layout: a lumped bus on which every pair of stations is ``propagation_ps`` apart.
The default, 950 ns, is the largest delay IEEE 802.3 allows on one 10BASE2 (ThinWire) segment
(clause 10: 185 m of coax at 0.65 c), i.e. two stations at the two ends of a full ThinWire cable;
it is well inside the 512-bit slot, so every collision is detected by every sender before it has
sent 64 bytes, and a frame that escapes collision reaches every receiver intact.

Receivers get every frame that was on the wire without overlapping any other transmission (a
broadcast medium: address filtering is the NIC's job). Collision fragments are never delivered
(a real receiver discards them as runts or bad-FCS frames).

Cost: a handful of kernel events per frame (the sender's start and end, the signal's arrival and
departure at the other stations), never one per bit; each of those does O(stations) work.

Every timing constant below is from CALIBRATION.md's "10 Mbit/s Ethernet" table (IEEE 802.3).
"""
from __future__ import annotations

import hashlib
import logging
import random
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..kernel import Event, Kernel, Queue
from ..time import NS
from .pcap import LINKTYPE_ETHERNET, PcapNgWriter

log = logging.getLogger(__name__)

__all__ = [
    "PhyListener",
    "BIT_TIME_PS", "PREAMBLE_SFD_BYTES", "IFG_BITS", "IFG_PART1_BITS", "SLOT_BITS", "JAM_BITS", "BACKOFF_LIMIT",
    "ATTEMPT_LIMIT", "HEADER_LEN", "FCS_LEN", "MIN_FRAME", "MAX_FRAME", "MIN_PAYLOAD",
    "MAX_PAYLOAD", "BROADCAST",
    "FrameError", "ExcessiveCollisions",
    "mac", "format_mac", "fcs", "build_frame", "check_frame", "strip_fcs", "wire_bits",
    "Segment", "Station", "Transmission", "RxFrame", "TxResult", "SegmentStats", "StationStats",
]

# -- IEEE 802.3 10 Mbit/s constants (CALIBRATION.md, "10 Mbit/s Ethernet") --------------------
#: One bit at 10 Mbit/s: 100 ns.
BIT_TIME_PS = 100 * NS
#: 7 bytes of preamble and the start-of-frame delimiter precede every frame.
PREAMBLE_SFD_BYTES = 8
#: Inter-frame gap: 96 bit times = 9.6 us.
IFG_BITS = 96
#: Part of the gap during which a carrier still restarts the deferral (802.3 allows up to 2/3).
IFG_PART1_BITS = 64
#: Slot time, the backoff unit: 512 bit times = 51.2 us.
SLOT_BITS = 512
#: Jam sent after a collision is detected: 32 bits.
JAM_BITS = 32
#: The end of a raw transmission whose end its MAC has not decided yet.
_FOREVER = 1 << 62
#: Backoff exponent stops growing after 10 collisions ("truncated").
BACKOFF_LIMIT = 10
#: A frame is abandoned after 16 attempts (excessive collisions).
ATTEMPT_LIMIT = 16
#: Destination + source address + EtherType.
HEADER_LEN = 14
#: CRC-32 frame check sequence.
FCS_LEN = 4
#: Smallest frame including FCS (shorter ones are runts); 46 bytes of data after padding.
MIN_FRAME = 64
#: Largest frame including FCS (longer ones are babble); 1500 bytes of data.
MAX_FRAME = 1518
MIN_PAYLOAD = MIN_FRAME - HEADER_LEN - FCS_LEN
MAX_PAYLOAD = MAX_FRAME - HEADER_LEN - FCS_LEN
BROADCAST = b"\xff" * 6


# -- frames ------------------------------------------------------------------------------------
class FrameError(ValueError):
    """A malformed MAC frame (too short, too long, bad FCS, bad address or type)."""


class ExcessiveCollisions(RuntimeError):
    """A frame was abandoned after ``attempts`` transmission attempts all collided.

    Attributes
    ----------
    station : str
        The sending station's name.
    attempts : int
        Attempts made (the segment's ``attempt_limit``, 16 by default).
    """

    def __init__(self, station: str, attempts: int, t: int):
        super().__init__(f"station {station!r}: frame abandoned after {attempts} attempts, "
                         f"all collided (excessive collisions) at t={t} ps")
        self.station = station
        self.attempts = attempts
        self.t = t


def mac(addr: str | bytes) -> bytes:
    """A 6-byte MAC address from ``'08:00:2b:01:02:03'`` (or ``-`` separated) or from 6 bytes."""
    if isinstance(addr, (bytes, bytearray)):
        if len(addr) != 6:
            raise FrameError(f"a MAC address is 6 bytes, not {len(addr)}: {bytes(addr)!r}")
        return bytes(addr)
    if isinstance(addr, str):
        parts = addr.replace("-", ":").split(":")
        try:
            if len(parts) == 6 and all(len(p) == 2 for p in parts):
                return bytes(int(p, 16) for p in parts)
        except ValueError:
            pass
        raise FrameError(f"not a MAC address: {addr!r} (expected six hex byte pairs)")
    raise FrameError(f"a MAC address must be str or 6 bytes, not {type(addr).__name__}")


def format_mac(addr: bytes) -> str:
    """``b'\\x08\\x00+\\x01\\x02\\x03'`` -> ``'08:00:2b:01:02:03'``."""
    return ":".join(f"{b:02x}" for b in mac(addr))


def fcs(data: bytes) -> bytes:
    """The 802.3 FCS of ``data`` (header + payload + padding) as it goes on the wire.

    The CRC-32 is ``zlib.crc32`` (the reflected 0x04C11DB7 polynomial, preset and complemented);
    802.3 sends its least significant byte first, hence little-endian.
    """
    return zlib.crc32(data).to_bytes(4, "little")


def build_frame(dst: str | bytes, src: str | bytes, ethertype: int, payload: bytes) -> bytes:
    """A complete MAC frame: header, payload padded to 46 bytes, and FCS (64..1518 bytes).

    Raises
    ------
    FrameError
        If an address is malformed, ``ethertype`` is not 16 bits, or the payload is longer
        than 1500 bytes.
    """
    if not isinstance(ethertype, int) or not 0 <= ethertype <= 0xFFFF:
        raise FrameError(f"EtherType must be a 16-bit integer, not {ethertype!r}")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise FrameError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes is too long "
                         f"(at most {MAX_PAYLOAD} fit in a {MAX_FRAME}-byte frame)")
    body = mac(dst) + mac(src) + ethertype.to_bytes(2, "big") + bytes(payload)
    body = body.ljust(MIN_FRAME - FCS_LEN, b"\0")        # pad to 60 so the frame is 64
    return body + fcs(body)


def check_frame(frame: bytes) -> None:
    """Raise :class:`FrameError` naming the problem unless ``frame`` is a valid MAC frame
    (64..1518 bytes including a correct FCS)."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise FrameError(f"a frame must be bytes, not {type(frame).__name__}")
    n = len(frame)
    if n < MIN_FRAME:
        raise FrameError(f"frame too short: {n} bytes, the minimum is {MIN_FRAME} including FCS")
    if n > MAX_FRAME:
        raise FrameError(f"frame too long: {n} bytes, the maximum is {MAX_FRAME} including FCS")
    frame = bytes(frame)
    want = fcs(frame[:-FCS_LEN])
    if frame[-FCS_LEN:] != want:
        raise FrameError(f"bad FCS: frame carries {frame[-FCS_LEN:].hex()}, "
                         f"its contents give {want.hex()}")


def strip_fcs(frame: bytes) -> bytes:
    """Check ``frame`` (see :func:`check_frame`) and return it without its FCS."""
    check_frame(frame)
    return bytes(frame[:-FCS_LEN])


def wire_bits(frame_len: int) -> int:
    """Bit times a frame of ``frame_len`` bytes (FCS included) occupies the wire, preamble
    and start delimiter included, inter-frame gap excluded."""
    return (PREAMBLE_SFD_BYTES + frame_len) * 8


# -- records -----------------------------------------------------------------------------------
@dataclass(eq=False)
class Transmission:
    """One transmission attempt on the wire (what a monitor or trace sees).

    Times are picoseconds at the sender; every other station sees the same signal
    ``propagation_ps`` later. ``end`` is the normal end of the frame, or the end of the jam.
    """

    station: "Station"
    frame: bytes
    attempt: int
    start: int
    end: int
    #: The sender detected a collision (and jammed).
    collided: bool = False
    #: When the sender detected it, and when its jam began.
    detected_at: int | None = None
    jam_start: int | None = None
    #: Another transmission overlapped this one: the receivers see garbage.
    corrupted: bool = False
    #: Collision episode number (overlapping transmissions share one), or None.
    episode: int | None = None
    #: The sender was cancelled mid-frame and stopped driving the wire at ``end``.
    aborted: bool = False
    done: bool = False
    #: Stations its first bit reached (they, and only they, hear it leave and receive it).
    heard_by: list = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        state = "collided" if self.collided else ("corrupted" if self.corrupted else "ok")
        return (f"<Transmission {self.station.name} attempt {self.attempt} "
                f"{self.start}..{self.end} ps {len(self.frame)} B {state}>")


@dataclass(frozen=True)
class RxFrame:
    """A frame as a receiver got it: the bytes (FCS included) and when its signal arrived."""

    data: bytes
    #: Name of the sending station.
    src: str
    #: First preamble bit arrived (ps).
    start: int
    #: Last FCS bit arrived (ps): the time the frame is delivered.
    end: int


@dataclass(frozen=True)
class TxResult:
    """What :meth:`Station.send` returns: enough for a NIC model's transmit status.

    (The LANCE reports "deferred", "one retry", "more than one retry" in its descriptor.)

    Attributes
    ----------
    start, end : int
        The successful attempt's first preamble bit and last FCS bit at the sender (ps).
    attempts : int
        Attempts made, 1 if the first went through.
    deferred : bool
        Some attempt had to wait for another station's carrier (the LANCE's DEF bit).
    backoff_ps : int
        Total time spent in backoff for this frame.
    """

    start: int
    end: int
    attempts: int
    deferred: bool
    backoff_ps: int

    @property
    def collisions(self) -> int:
        return self.attempts - 1


@dataclass
class StationStats:
    """Per-station counters (802.3 layer-management names where one exists)."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    #: Attempts of this station that collided (one per jam it sent).
    collisions: int = 0
    jams: int = 0
    late_collisions: int = 0
    #: Frames whose first attempt waited for another station's carrier (802.3's
    #: aFramesWithDeferredXmissions).
    deferrals: int = 0
    #: Attempts (first or retry) that waited for another station's carrier.
    deferred_attempts: int = 0
    single_collision_frames: int = 0
    multiple_collision_frames: int = 0
    excessive_collisions: int = 0
    rejected_frames: int = 0
    backoff_ps: int = 0


@dataclass
class SegmentStats:
    """Segment-wide counters; ``frames``/``bytes`` count frames that reached the receivers."""

    frames: int = 0
    bytes: int = 0
    attempts: int = 0
    #: Collision episodes (a group of overlapping transmissions counts once).
    collisions: int = 0
    jams: int = 0
    late_collisions: int = 0
    deferrals: int = 0
    deferred_attempts: int = 0
    excessive_collisions: int = 0
    #: Frames overlapped by another whose sender did not notice (impossible when the
    #: propagation delay is well inside the slot time; counted to prove it).
    lost_frames: int = 0
    #: Time with at least one transmission on the wire (at the senders), in ps.
    busy_ps: int = 0


# -- the segment -------------------------------------------------------------------------------
class PhyListener(Protocol):
    """What a transceiver-level attachment hears (see :meth:`Station.attach_phy`).

    An RTL MAC (the LANCE card's gateware) does its own CSMA/CD and needs the wire as its pins
    see it: when another station's signal starts and stops here, and what it carries, while the
    frame is still on the wire.
    """

    def signal_start(self, tx: "Transmission") -> None:
        """The first bit of ``tx`` (another station's attempt) reaches this station now.
        ``tx.frame`` is the frame being sent, or ``b""`` while a raw sender has not finished."""

    def signal_end(self, tx: "Transmission", intact: bool) -> None:
        """The last bit of ``tx`` passes this station now; ``intact`` is False if it collided,
        was corrupted by an overlap or was aborted."""


class Station:
    """A station's attachment to a :class:`Segment` (its transceiver and MAC).

    Not created directly: use :meth:`Segment.attach`.

    Attributes
    ----------
    name : str
        Unique on the segment; also seeds the station's backoff random numbers.
    carrier_changed : Event
        Pulsed with the new :attr:`carrier` value whenever it changes.
    collision : Event
        Pulsed with the detection time whenever this station detects a collision.
    stats : StationStats
    """

    def __init__(self, segment: "Segment", name: str,
                 on_frame: Callable[[RxFrame], None] | None):
        self.segment = segment
        self.name = name
        self.stats = StationStats()
        self._k = segment.kernel
        seed_bytes = hashlib.sha256(f"{segment.seed}/{name}".encode()).digest()
        self.rng = random.Random(int.from_bytes(seed_bytes[:8], "big"))
        self._on_frame = on_frame
        self._rxq: Queue = Queue(self._k, name=f"{name}.rx")
        self.carrier_changed = Event(self._k, f"{name}.carrier")
        self.collision = Event(self._k, f"{name}.collision")
        #: Other stations' signals present here now.
        self._heard = 0
        #: When the carrier (others' or our own) was last seen to drop.
        self._idle_since = -IFG_BITS * segment.bit_time_ps
        self._tx: Transmission | None = None
        self._tx_collided = Event(self._k, f"{name}.txcol")
        # Frames waiting for the MAC (one send at a time, FIFO), as events to wake.
        self._busy = False
        self._waiting: deque[Event] = deque()
        self._phy: PhyListener | None = None

    # -- what a NIC model observes ---------------------------------------------------------
    @property
    def carrier(self) -> bool:
        """Carrier sense: another station's signal is here, or this station is transmitting."""
        return self._heard > 0 or self._tx is not None

    @property
    def transmitting(self) -> bool:
        return self._tx is not None

    @property
    def current(self) -> Transmission | None:
        """The transmission attempt in progress, if any."""
        return self._tx

    @property
    def hearing(self) -> bool:
        """Another station's signal is here now (the MII ``crs`` of a half-duplex PHY, less
        this station's own transmission)."""
        return self._heard > 0

    def attach_phy(self, listener: PhyListener) -> None:
        """Give the wire's signals to ``listener`` as they start and end here.

        Frames are then not queued for :meth:`recv` (the listener's MAC receives them itself);
        an ``on_frame`` callback is still called. Used with :meth:`begin_raw`/:meth:`end_raw` by
        a MAC that does its own carrier sense, collision handling and backoff.
        """
        if self._phy is not None:
            raise RuntimeError(f"station {self.name!r} already has a PHY listener")
        self._phy = listener

    def begin_raw(self, frame: bytes | None = None) -> Transmission:
        """A MAC with its own CSMA/CD starts driving the wire now (preamble first).

        The segment does no deferral or backoff for it: it only propagates the signal and
        detects overlaps (pulsing :attr:`collision` when this station's transmission collides).
        Finish it with :meth:`end_raw`. ``frame`` is the frame being sent if the MAC knows it
        already (PHY listeners then see it in :meth:`PhyListener.signal_start`, as for
        :meth:`send`); otherwise it is known only at :meth:`end_raw`.

        Raises
        ------
        RuntimeError
            If this station is already transmitting.
        """
        if self._tx is not None:
            raise RuntimeError(f"station {self.name!r} is already transmitting")
        tx = self.segment._begin(self, bytes(frame) if frame is not None else b"", 0)
        if not tx.collided:
            tx.end = _FOREVER
        return tx

    def end_raw(self, tx: Transmission, frame: bytes | None) -> None:
        """The raw transmission ``tx`` stops driving the wire now.

        ``frame`` is what was sent (a complete frame with FCS), or None if the MAC cut it
        short (a jam after a collision, an underflow). Receivers get an intact frame only if
        ``frame`` is given and nothing overlapped it.

        Raises
        ------
        RuntimeError
            If ``tx`` is not this station's transmission in progress.
        """
        if self._tx is not tx or tx.done:
            raise RuntimeError(f"station {self.name!r}: {tx!r} is not in progress")
        seg = self.segment
        tx.frame = bytes(frame) if frame is not None else b""
        tx.end = self._k.now
        if frame is None and not tx.collided:
            tx.aborted = True
        seg._finish(tx)
        if not (tx.collided or tx.aborted):
            self.stats.frames_sent += 1
            self.stats.bytes_sent += len(tx.frame)

    # -- receiving -------------------------------------------------------------------------
    async def recv(self) -> RxFrame:
        """Await the next received frame (only when no ``on_frame`` callback was given)."""
        if self._on_frame is not None:
            raise RuntimeError(f"station {self.name!r} delivers to its on_frame callback; "
                               "recv() would wait forever")
        return await self._rxq.get()

    def pending(self) -> int:
        """Received frames waiting in the queue for :meth:`recv`."""
        return len(self._rxq)

    def _deliver(self, rx: RxFrame) -> None:
        self.stats.frames_received += 1
        self.stats.bytes_received += len(rx.data)
        if self._on_frame is not None:
            self._on_frame(rx)
        elif self._phy is None:
            self._rxq.put_nowait(rx)

    # -- transmitting ----------------------------------------------------------------------
    async def send(self, frame: bytes) -> TxResult:
        """Transmit ``frame`` (a complete MAC frame with FCS) under CSMA/CD.

        Returns when the frame's last bit has left the station; the other stations receive
        it ``propagation_ps`` later (so a test that stops when its senders finish should run
        the kernel a little longer, or wait on a receiver). Concurrent calls on one station
        are served one at a time, in call order.

        Raises
        ------
        FrameError
            At once, if ``frame`` is malformed (the segment is not touched).
        ExcessiveCollisions
            If every one of ``attempt_limit`` (16) attempts collided; the frame is dropped.
        """
        seg = self.segment
        try:
            if seg.check_fcs:
                check_frame(frame)
            elif (not isinstance(frame, (bytes, bytearray, memoryview))
                  or not MIN_FRAME <= len(frame) <= MAX_FRAME):
                check_frame(frame)          # raises for the type or the length
        except FrameError:
            self.stats.rejected_frames += 1
            raise
        frame = bytes(frame)
        if self._busy:
            ev = Event(self._k, f"{self.name}.turn")
            self._waiting.append(ev)
            try:
                await ev
            except BaseException:           # cancelled while queued
                if ev.is_set:
                    self._release()         # the MAC was already handed to us: pass it on
                else:
                    self._waiting.remove(ev)
                raise
        self._busy = True
        try:
            return await self._send(frame)
        finally:
            self._release()

    def _release(self) -> None:
        if self._waiting:
            self._waiting.popleft().set()   # hand the MAC straight to the next sender
        else:
            self._busy = False

    async def _send(self, frame: bytes) -> TxResult:
        seg, k, st = self.segment, self._k, self.stats
        bit = seg.bit_time_ps
        deferred = False
        backoff_total = 0
        attempt = 0
        while True:
            attempt += 1
            deferred |= await self._defer(count=attempt == 1)
            self._tx_collided.clear()
            tx = seg._begin(self, frame, attempt)   # may detect a collision at once
            try:
                idx, _ = await k.timeout(self._tx_collided, tx.end - k.now)
                if idx == 0:
                    await k.sleep_until(tx.end)      # finish preamble and jam
            except BaseException:
                # The sending task was cancelled mid-frame: the transceiver stops driving the
                # wire now, and the receivers see a truncated frame, which they drop.
                tx.end = k.now
                tx.aborted = True
                seg._finish(tx)
                raise
            seg._finish(tx)
            if not tx.collided:
                st.frames_sent += 1
                st.bytes_sent += len(frame)
                if attempt == 2:
                    st.single_collision_frames += 1
                elif attempt > 2:
                    st.multiple_collision_frames += 1
                return TxResult(tx.start, tx.end, attempt, deferred, backoff_total)
            if attempt >= seg.attempt_limit:
                st.excessive_collisions += 1
                seg.stats.excessive_collisions += 1
                log.debug("%s: excessive collisions at %d ps", self.name, k.now)
                raise ExcessiveCollisions(self.name, attempt, k.now)
            r = self.rng.randrange(1 << min(attempt, seg.backoff_limit))
            wait = r * seg.slot_bits * bit
            backoff_total += wait
            st.backoff_ps += wait
            if wait:
                await k.sleep(wait)

    async def _defer(self, count: bool) -> bool:
        """Wait until this station may start transmitting (802.3 deferral). Returns whether
        another station's carrier made it wait (and counts that as a deferral if ``count``)."""
        k, seg = self._k, self.segment
        part1 = IFG_PART1_BITS * seg.bit_time_ps
        gap = seg.ifg_bits * seg.bit_time_ps
        waited = False
        while True:
            if self._heard:
                waited = True
                await self.carrier_changed
                continue
            commit = self._idle_since + part1
            start = self._idle_since + gap
            if k.now < commit:
                # Still listening: a carrier before the commit point sends us back to waiting
                # for it to drop. One wait to the end of the gap (not one to the commit point
                # and another to the end): a change from the commit point on is not listened
                # to (a change due at the commit point itself loses to it there, too).
                idx, _ = await k.timeout(self.carrier_changed, start - k.now)
                if idx == 1:
                    break
                if k.now < commit:
                    continue
            # Committed: the rest of the gap is not listened to (802.3 4.2.3.2.1).
            if k.now < start:
                await k.sleep_until(start)
            break
        if waited:
            self.stats.deferred_attempts += 1
            seg.stats.deferred_attempts += 1
            if count:
                self.stats.deferrals += 1
                seg.stats.deferrals += 1
        return waited

    def _hear(self, delta: int) -> None:
        """Another station's signal arrives (+1) or leaves (-1) here."""
        before = self.carrier
        self._heard += delta
        if self._heard == 0 and self._tx is None:
            self._idle_since = self._k.now
        if self.carrier != before:
            self.carrier_changed.pulse(self.carrier)

    def __repr__(self) -> str:
        return f"<Station {self.name} on {self.segment.name}>"


class Segment:
    """A shared half-duplex 10 Mbit/s Ethernet segment (CSMA/CD with exponential backoff).

    Parameters
    ----------
    kernel
        The event kernel that owns time.
    name
        Used in logs, in the pcap interface name and in seeding.
    bit_time_ps
        One bit time; 100 ns at 10 Mbit/s (CALIBRATION.md).
    propagation_ps
        Signal delay between any two stations (a lumped bus). Default 950 ns: the 802.3 limit
        for one 185 m 10BASE2 ThinWire segment, i.e. stations at the two ends of the cable.
    seed
        Seeds every station's backoff random numbers (with the station's name).
    pcap
        A :class:`~sim.media.pcap.PcapNgWriter`; every frame that reaches the receivers is
        written, timestamped when its last bit arrives.
    check_fcs
        Reject frames whose FCS is wrong at :meth:`Station.send` (default). A NIC model that
        deliberately sends bad FCS can turn it off; such frames are then carried as they are.
    ifg_bits, slot_bits, backoff_limit, attempt_limit
        802.3's 96, 512, 10 and 16; changeable for studies and pathological tests.

    Raises
    ------
    ValueError
        For a parameter out of range.

    Notes
    -----
    ``monitors`` holds callables given every finished :class:`Transmission` (collided attempts
    too) at the moment its sender stops; that is the hook for traces and NIC statistics. The
    pcap capture holds what a bystander receives: the intact frames only, each stamped with the
    time its last bit reached the receivers (libpcap's convention of stamping on reception).

    Examples
    --------
    >>> from sim.kernel import Kernel
    >>> k = Kernel()
    >>> seg = Segment(k, seed=1)
    >>> a, b = seg.attach("a"), seg.attach("b")
    >>> f = build_frame(BROADCAST, "02:00:00:00:00:01", 0x88B5, b"hello")
    >>> task = k.spawn(a.send(f))
    >>> k.run(until=100_000_000)          # 100 us
    100000000
    >>> task.result.end, b.pending()      # 72 bytes on the wire = 57.6 us
    (57600000, 1)
    """

    def __init__(self, kernel: Kernel, *, name: str = "eth0", bit_time_ps: int = BIT_TIME_PS,
                 propagation_ps: int = 950 * NS, seed: int = 0,
                 pcap: PcapNgWriter | None = None, check_fcs: bool = True,
                 ifg_bits: int = IFG_BITS, slot_bits: int = SLOT_BITS,
                 backoff_limit: int = BACKOFF_LIMIT, attempt_limit: int = ATTEMPT_LIMIT):
        for pname, value, lo in (("bit_time_ps", bit_time_ps, 1),
                                 ("propagation_ps", propagation_ps, 0),
                                 ("ifg_bits", ifg_bits, IFG_PART1_BITS),
                                 ("slot_bits", slot_bits, 1),
                                 ("backoff_limit", backoff_limit, 0),
                                 ("attempt_limit", attempt_limit, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValueError(f"Segment {pname} must be an integer >= {lo}, not {value!r}")
        if not isinstance(seed, int):
            raise ValueError(f"Segment seed must be an integer, not {seed!r}")
        if pcap is not None and not isinstance(pcap, PcapNgWriter):
            raise ValueError(f"pcap must be a PcapNgWriter or None, not {pcap!r}")
        self.kernel = kernel
        self.name = name
        self.bit_time_ps = bit_time_ps
        self.propagation_ps = propagation_ps
        self.seed = seed
        self.check_fcs = check_fcs
        self.ifg_bits = ifg_bits
        self.slot_bits = slot_bits
        self.backoff_limit = backoff_limit
        self.attempt_limit = attempt_limit
        self.stats = SegmentStats()
        self.stations: dict[str, Station] = {}
        #: Called with every finished :class:`Transmission` (collided ones too) at its end.
        self.monitors: list[Callable[[Transmission], None]] = []
        self._active: list[Transmission] = []
        self._busy_from = 0
        self._episodes = 0
        self._pcap = pcap
        self._pcap_if = (pcap.add_interface(linktype=LINKTYPE_ETHERNET, name=name, fcs_len=FCS_LEN)
                         if pcap is not None else None)

    # -- public ----------------------------------------------------------------------------
    def attach(self, name: str, *, on_frame: Callable[[RxFrame], None] | None = None) -> Station:
        """Connect a station. Received frames go to ``on_frame(rx)`` if given (called at the
        time the last bit arrives), else to a queue read with :meth:`Station.recv`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"station name must be a non-empty string, not {name!r}")
        if name in self.stations:
            raise ValueError(f"segment {self.name!r} already has a station named {name!r}")
        st = Station(self, name, on_frame)
        # A station attached while a signal is passing hears only the transmissions that
        # start reaching it from now on (and receives only those).
        self.stations[name] = st
        return st

    @property
    def busy(self) -> bool:
        """Some station is transmitting (seen at the senders)."""
        return bool(self._active)

    def busy_time(self) -> int:
        """Picoseconds so far with at least one transmission on the wire."""
        extra = self.kernel.now - self._busy_from if self._active else 0
        return self.stats.busy_ps + extra

    def utilization(self) -> float:
        """Fraction of the time since 0 that the wire carried a signal."""
        now = self.kernel.now
        return self.busy_time() / now if now else 0.0

    def frame_time(self, frame_len: int) -> int:
        """Picoseconds a ``frame_len``-byte frame (FCS included) occupies the wire."""
        return wire_bits(frame_len) * self.bit_time_ps

    # -- the medium ------------------------------------------------------------------------
    def _begin(self, st: Station, frame: bytes, attempt: int) -> Transmission:
        now, bit = self.kernel.now, self.bit_time_ps
        tx = Transmission(st, frame, attempt, now, now + wire_bits(len(frame)) * bit)
        self.stats.attempts += 1
        # Overlap with anything on the wire: every receiver will see both garbled.
        if self._active:
            ep = next((a.episode for a in self._active if a.episode is not None), None)
            if ep is None:
                self._episodes += 1
                self.stats.collisions += 1
                ep = self._episodes
            for a in self._active:
                a.corrupted = True
                a.episode = ep
            tx.corrupted = True
            tx.episode = ep
        else:
            self._busy_from = now
        self._active.append(tx)
        st._tx = tx
        before_carrier = st._heard > 0
        # Started while another signal was already here (committed in the gap's second part):
        # the collision is detected at once.
        if st._heard:
            self._detect(tx, now)
        if not before_carrier:
            st.carrier_changed.pulse(True)
        self.kernel.call_at(now + self.propagation_ps, lambda: self._arrive(tx))
        return tx

    def _arrive(self, tx: Transmission) -> None:
        """``tx``'s first bit reaches every other station."""
        now = self.kernel.now
        heard_by = tx.heard_by
        for st in self.stations.values():
            if st is tx.station:
                continue
            other = st._tx
            if other is not None and not other.collided and now < other.end:
                self._detect(other, now)
            heard_by.append(st)
            st._hear(+1)
            if st._phy is not None:
                st._phy.signal_start(tx)

    def _detect(self, tx: Transmission, now: int) -> None:
        """``tx``'s sender hears another signal while transmitting: finish the preamble, jam."""
        bit = self.bit_time_ps
        st = tx.station
        tx.collided = True
        tx.detected_at = now
        tx.jam_start = max(now, tx.start + PREAMBLE_SFD_BYTES * 8 * bit)
        tx.end = tx.jam_start + JAM_BITS * bit
        st.stats.collisions += 1
        st.stats.jams += 1
        self.stats.jams += 1
        if now - tx.start >= self.slot_bits * bit:
            st.stats.late_collisions += 1
            self.stats.late_collisions += 1
        st._tx_collided.set(now)
        st.collision.pulse(now)

    def _finish(self, tx: Transmission) -> None:
        """The sender stops driving the wire (frame or jam done)."""
        now = self.kernel.now
        tx.done = True
        st = tx.station
        self._active.remove(tx)
        if not self._active:
            self.stats.busy_ps += now - self._busy_from
        st._tx = None
        if st._heard == 0:
            st._idle_since = now
            st.carrier_changed.pulse(False)
        for fn in self.monitors:
            fn(tx)
        self.kernel.call_at(now + self.propagation_ps, lambda: self._depart(tx))

    def _depart(self, tx: Transmission) -> None:
        """``tx``'s last bit passes every other station: deliver it if it was not garbled."""
        now = self.kernel.now
        intact = not (tx.corrupted or tx.collided or tx.aborted)
        if intact:
            self.stats.frames += 1
            self.stats.bytes += len(tx.frame)
            if self._pcap is not None:
                self._pcap.write(self._pcap_if, now, tx.frame, comment=f"from {tx.station.name}")
        elif not (tx.collided or tx.aborted):
            self.stats.lost_frames += 1
        rx = RxFrame(tx.frame, tx.station.name, tx.start + self.propagation_ps, now) if intact else None
        for st in tx.heard_by:
            st._hear(-1)
            if st._phy is not None:
                st._phy.signal_end(tx, intact)
            if rx is not None:
                st._deliver(rx)

    def __repr__(self) -> str:
        return f"<Segment {self.name} {len(self.stations)} stations>"
