"""The library OS's TCP/IP stack (SYSTEM.md section 4).

Layers, one module each: :mod:`.checksum` (Internet checksum, incremental update, partial sums),
:mod:`.ether` (Ethernet II framing and the :class:`~.ether.NetDevice` interface),
:mod:`.atm` (classical IP over ATM: LLC/SNAP, PVCs, the AN2 interface), :mod:`.gather` (packets
as gather lists),
:mod:`.arp`, :mod:`.ipv4`, :mod:`.icmp`, :mod:`.tcp` (the state machine and the paper's
specializations) and :mod:`.stack` (a host's stack: demultiplexing, timers, CPU charging).
"""
from .ether import NetDevice, StationDevice
from .stack import NetStack, StackCosts
from .tcp import TcpConfig, TcpPcb, TcpState

__all__ = ["NetDevice", "StationDevice", "NetStack", "StackCosts", "TcpConfig", "TcpPcb",
           "TcpState"]
