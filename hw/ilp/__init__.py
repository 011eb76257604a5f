"""Hardware ILP pipes: pipe lists compiled to an Amaranth streaming datapath (issue 17).

Modules
-------
registers
    The pipe language (instruction set, :class:`~hw.ilp.registers.Pipe`, the verifier and the
    vectorised meaning of each instruction): the contract that the software pipes
    (:mod:`sw.libos.ilp`) and the hardware generator both import.
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

Importing this package imports only :mod:`.registers` so that software can use the language
without pulling in gateware.
"""
from . import registers

__all__ = ["registers"]
