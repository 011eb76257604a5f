"""The LANCE-style Ethernet card (an Am7990 as the DECstation's PMAD-AA presents it).

Modules
-------
registers
    The register map, init block and descriptor formats: the one source of truth that the
    gateware, the transaction-level model and the driver import.
crc
    CRC-32 (Ethernet FCS) as an Amaranth expression, with a plain-Python twin.
mii
    The 10 Mbit/s MII wire side: transmit and receive engines (Amaranth components).
timing
    The card's fixed latencies in clock cycles: the timing contract the model computes from.
model, mii_model
    The transaction-level model (a ``sim.bus.BusTarget``) and its MII transmitter against a
    half-duplex wire (deferral, jam), equal to the gateware to the cycle.
harness, bridge
    The top level an HDL simulator runs in a machine: the card with an MII frame bridge.
attach
    How the card meets a machine, as model or RTL: :data:`~hw.lance.attach.LANCE`, its
    :class:`sim.devices.DeviceKind`.

Importing this package imports only :mod:`.registers` so that software can use the map
without pulling in gateware.
"""
from . import registers

__all__ = ["registers"]
