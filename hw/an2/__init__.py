"""The AN2-style ATM card: a TURBOchannel DMA master between an OC-3c cell link and host memory.

Modules
-------
registers
    The register map, the per-VC table entry and the descriptor and completion-queue formats
    in host memory: the one source of truth that the gateware, the transaction-level model
    and the driver import (docs/an2_card.md is the prose contract).
timing
    The card's cycle contract: its 12.5 MHz clock, the 3MIN's DMA burst costs, the OC-3c cell
    slot and the card's own latencies.

Importing this package imports only :mod:`.registers`, so that software can use the map
without pulling in gateware.
"""
from . import registers

__all__ = ["registers"]
