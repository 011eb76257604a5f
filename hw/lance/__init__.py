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

Importing this package imports only :mod:`.registers` so that software can use the map
without pulling in gateware.
"""
from . import registers

__all__ = ["registers"]
