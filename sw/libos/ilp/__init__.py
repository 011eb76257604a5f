"""Software ILP pipes (issue 17): dynamic integrated layer processing in the library OS.

An application names the per-word work it wants done to a message (copy, checksum, byte
swaps: pipes in the language of :mod:`hw.ilp.registers`); the library fuses the pipes with the
data-movement rule of the card present into one loop that touches each word once, runs it over
the message with NumPy and charges the simulated CPU what that loop costs.

Modules
-------
pipes
    The standard pipes (``copy``, ``cksum``, ``bswap``, ``hswap16``, ``scramble``).
movement
    The cards' data-movement rules (memory copy, the LANCE's 16-in-32 PIO, the AN2's DMA).
compiler
    Fusion: :func:`~sw.libos.ilp.compiler.build` (cached per pipe list and rule).
execute
    NumPy execution of a fused program, and the one-pass-per-pipe reference.
inloop
    Pipes run inside a driver's copy loop (the LANCE's receive copy): the rule, the frame that
    carries the pipes' results, the TCP segment's sum taken from the frame's (Cheetah's ``ilp``).
cost
    The simulated cost of a fused loop through the memory system, and
    :func:`~sw.libos.ilp.cost.run_on`, which runs a program and charges a CPU.
"""
