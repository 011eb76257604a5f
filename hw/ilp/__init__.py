"""Hardware ILP pipes: pipe lists compiled to an Amaranth streaming datapath (issue 17).

Modules
-------
registers
    The pipe language (instruction set, :class:`~hw.ilp.registers.Pipe`, the verifier and the
    vectorised meaning of each instruction) and the standard pipes: the contract that the
    software pipes (:mod:`sw.libos.ilp`), the generator and the cards' pipes all import.
pipelist
    A checked pipe list (its stages and result names), shared by the datapath and the model.
stage
    One pipe's arithmetic as combinational Amaranth logic (its body on a word, its ``fini``).
gateware
    A pipe list compiled to a streaming datapath, one word per cycle, one stage per pipe.
model
    The datapath's transaction-level twin (same words, results and cycles).
synth
    Synthesis figures of a datapath (Yosys generic cells, flip-flops, iCE40 LUTs, depth).
buffer_port_regs
    The register map of the block at a card's buffer port (plain Python).
buffer_port
    A pipe list as a block on a card's host bus (the LANCE card's buffer port): it streams a
    window of the host's buffer accesses through a datapath.
buffer_port_model
    The block's transaction-level twin (same acks, data, results and wait states).
buffer_port_harness
    The block in front of an SRAM with the LANCE's wait states, and its model: the benches' rig.

The AN2 card's pipes are in :mod:`hw.an2.pipes` (its DMA path).

Importing this package imports only :mod:`.registers` so that software can use the language
without pulling in gateware.
"""
from . import registers

__all__ = ["registers"]
