"""Ethernet II framing and the frame-device interface the stack runs over.

The stack hands a device complete frames *without* the FCS (destination, source, EtherType,
payload; padding to the 60-byte minimum is the device's business, as on a LANCE, which pads
and appends the CRC itself) and is handed received frames through :meth:`NetStack.input`.
:class:`StationDevice` adapts a :class:`sim.media.ethernet.Station` to that interface for
tests and model-only runs; the LANCE driver provides the same interface over the card.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from sim.media.ethernet import (BROADCAST, FCS_LEN, FrameError, HEADER_LEN, MAX_PAYLOAD, Segment,
                                build_frame, check_frame, mac)

from .gather import Gather

__all__ = ["ETHERTYPE_IP", "ETHERTYPE_ARP", "BROADCAST", "HEADER_LEN", "MTU", "NetDevice",
           "ReceiverSlot", "StationDevice", "DeviceStats", "build", "parse"]

ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
#: Largest IP datagram an Ethernet frame carries.
MTU = MAX_PAYLOAD


def build(dst: bytes, src: bytes, ethertype: int, payload: "bytes | Gather") -> "bytes | Gather":
    """An Ethernet II frame without FCS or padding: header + payload (a
    :class:`~sw.libos.net.gather.Gather` payload gives a Gather frame, the header prepended).

    Raises
    ------
    ValueError
        For a bad address, an EtherType outside 16 bits or a payload over 1500 bytes.
    """
    if not isinstance(ethertype, int) or not 0 <= ethertype <= 0xFFFF:
        raise ValueError(f"EtherType must be a 16-bit integer, not {ethertype!r}")
    if len(payload) > MTU:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the Ethernet MTU of {MTU}")
    header = mac(dst) + mac(src) + ethertype.to_bytes(2, "big")
    if isinstance(payload, Gather):
        return payload.prepend(header)
    return header + bytes(payload)


def parse(frame: bytes) -> tuple[bytes, bytes, int, bytes]:
    """``(dst, src, ethertype, payload)`` of a frame without FCS (padding stays in payload).

    Raises
    ------
    ValueError
        If the frame is shorter than an Ethernet header.
    """
    if len(frame) < HEADER_LEN:
        raise ValueError(f"frame of {len(frame)} bytes is shorter than the {HEADER_LEN}-byte header")
    return (bytes(frame[0:6]), bytes(frame[6:12]), int.from_bytes(frame[12:14], "big"),
            bytes(frame[14:]))


@runtime_checkable
class NetDevice(Protocol):
    """What the stack needs of a network interface.

    Attributes
    ----------
    mac : bytes
        The interface's 6-byte address.

    Notes
    -----
    ``await send(frame)`` queues or transmits one frame given without FCS (and possibly
    shorter than the 60-byte minimum: the device pads). Received frames, without FCS and
    already filtered by destination address, are passed by the device's owner to
    :meth:`sw.libos.net.stack.NetStack.input`.
    """

    mac: bytes

    async def send(self, frame: bytes) -> None: ...


@dataclass
class DeviceStats:
    """Counters of a :class:`StationDevice`."""

    tx_frames: int = 0
    rx_frames: int = 0
    #: Frames with a bad FCS, dropped.
    rx_bad_fcs: int = 0
    #: Frames addressed to another station, dropped (address filtering).
    rx_filtered: int = 0


class ReceiverSlot:
    """An interface's receive slot: whom it hands received frames to."""

    _receiver: Callable[[bytes], None] | None = None

    def attach(self, receiver: Callable[[bytes], None]) -> None:
        """Deliver received frames (without FCS) to ``receiver``, e.g. ``stack.input``."""
        if not callable(receiver):
            raise TypeError(f"receiver must be callable, not {receiver!r}")
        self._receiver = receiver

    @property
    def receiver(self) -> Callable[[bytes], None] | None:
        """Whom received frames go to (what :meth:`attach` was given; None before): an
        operating system checks it before taking the receive path."""
        return self._receiver


class StationDevice(ReceiverSlot):
    """A :class:`NetDevice` over a station of a :class:`sim.media.ethernet.Segment`.

    Parameters
    ----------
    segment : Segment
        The segment to attach to.
    name : str
        The station's name (unique on the segment).
    address : str or bytes
        The interface's MAC address.
    promiscuous : bool
        Pass frames addressed to other stations too.

    Raises
    ------
    ValueError
        For a bad MAC address or station name.
    """

    def __init__(self, segment: Segment, name: str, address: str | bytes, *,
                 promiscuous: bool = False):
        try:
            self.mac = mac(address)
        except FrameError as e:
            raise ValueError(str(e)) from None
        self.promiscuous = promiscuous
        self.stats = DeviceStats()
        self.station = segment.attach(name, on_frame=self._on_frame)

    async def send(self, frame: bytes) -> None:
        """Pad ``frame`` to the minimum, append the FCS and transmit it under CSMA/CD.

        Raises
        ------
        TypeError
            For a :class:`~sw.libos.net.gather.Gather` with memory references: this ideal
            interface has no host memory to read them from.
        """
        if isinstance(frame, Gather):
            if frame.refs:
                raise TypeError(f"{self!r} has no memory to read a gather list's references")
            frame = frame.flatten(lambda a, n: b"")
        dst, src, etype, payload = parse(frame)
        full = build_frame(dst, src, etype, payload)
        self.stats.tx_frames += 1
        await self.station.send(full)

    def _on_frame(self, rx) -> None:
        data = rx.data
        try:
            check_frame(data)
        except FrameError:
            self.stats.rx_bad_fcs += 1
            return
        dst = data[0:6]
        if not (self.promiscuous or dst == self.mac or dst == BROADCAST):
            self.stats.rx_filtered += 1
            return
        self.stats.rx_frames += 1
        if self._receiver is not None:
            self._receiver(bytes(data[:-FCS_LEN]))

    def __repr__(self) -> str:
        return f"<StationDevice {self.station.name} {self.mac.hex(':')}>"
