"""Stimulus for the buffer-port pipe block's benches (Amaranth simulator and cocotb).

:func:`random_session` makes a reproducible list of host accesses
(:mod:`hw.ilp.buffer_port_harness`'s ``(write, addr, data, gap)``): windows at random starts
with random (often odd) lengths, in both directions, fed in order with random gaps between
accesses, stray accesses outside the window, now and then an access out of order inside it
or a window abandoned half way, and the status and results read right after each window's
last access (so a result read meets the block's wait states). :func:`expected_results` is a
window's results from the software semantics (:func:`hw.ilp.registers.run`), independent of
the block and its model.
"""
from __future__ import annotations

import numpy as np

from hw.ilp.buffer_port_regs import (CTL, LENGTH, RESULT, WSTART, Ctl, Layout, check_layout,
                                     data_bytes, register_count, window_words)
from hw.ilp.registers import run, words_of

#: Bus word-address width of the benches' harness (a 4 KiB SRAM) and where the block sits.
ADDR_WIDTH = 10
REGS_ADDR = 1000


def expected_results(pipes, data: bytes) -> tuple[int, ...]:
    """Every pipe's results over ``data``, pipe after pipe (the software semantics)."""
    words, results = words_of(data), []
    for pipe in pipes:
        words, res = run(pipe, words)
        results.extend(res)
    return tuple(results)


def buffer_data(layout, ram) -> bytes:
    """The buffer's data bytes, as the words of ``ram`` hold them in ``layout``."""
    layout = check_layout(layout)
    return b"".join(data_bytes(layout, int(w)) for w in ram)


def random_session(seed: int, *, layout, results: int, windows: int = 5,
                   max_length: int = 48) -> list[tuple]:
    """Host accesses exercising ``windows`` windows (see the module docstring)."""
    layout = check_layout(layout)
    rng = np.random.default_rng(seed)
    b = layout.bytes_per_word
    words = REGS_ADDR - 8               # strays land below the block's registers
    acc: list[tuple] = []

    def gap() -> int:
        return int(rng.choice([0, 0, 1, 2, 5]))

    def rand_word() -> int:
        return int(rng.integers(0, 1 << 32))

    for _ in range(windows):
        length = int(rng.integers(1, max_length + 1))
        start = int(rng.integers(0, b * 200))
        rx = bool(rng.random() < 0.5)
        first, last = window_words(layout, start, length)
        if rx:                          # the buffer filled before the window opens
            acc += [(True, a, rand_word(), gap()) for a in range(first, last + 1)]
        acc += [(True, REGS_ADDR + WSTART, start, gap()), (True, REGS_ADDR + LENGTH, length, gap()),
                (True, REGS_ADDR + CTL, int(Ctl.START | (Ctl.RX if rx else 0)), gap())]
        abandon = int(rng.integers(first, last + 1)) if rng.random() < 0.15 else None
        for a in range(first, last + 1):
            if rng.random() < 0.2:      # a stray access outside the window, either way
                stray = int(rng.integers(last + 1, words))
                acc.append((bool(rng.random() < 0.5), stray, rand_word(), gap()))
            if rng.random() < 0.04:     # out of order: the window's last word first
                acc.append((not rx, last, rand_word(), gap()))
            if a == abandon:
                acc.append((True, REGS_ADDR + CTL, 0, gap()))
            acc.append((not rx, a, rand_word(), gap()))
        acc.append((False, REGS_ADDR + CTL, 0, 0))          # right after the last access
        acc += [(False, REGS_ADDR + RESULT + k, 0, gap()) for k in range(results)]
        acc += [(False, REGS_ADDR + r, 0, gap()) for r in (WSTART, LENGTH)]
    assert REGS_ADDR + register_count(results) <= 1 << ADDR_WIDTH
    return acc


def layouts():
    """Both layouts' values."""
    return [x.value for x in Layout]
