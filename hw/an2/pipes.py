"""The AN2 card's hardware pipes: the ILP pipe lists its DMA paths run, and their meaning.

The card runs pipes of the ILP pipe language (:mod:`hw.ilp.registers`) on the words it moves
(docs/an2_card.md, "Hardware pipes"): :data:`TX_PIPES` on a Csum PDU's payload in its
checksum pass, :data:`RX_PIPES` on a receive VC's payload as the words go to memory (with
``rx_csum``), and one of :data:`SWAP_PIPES` (``rx_swap``) on the words stored. The gateware
compiles the same :class:`~hw.ilp.registers.Pipe` objects (:class:`hw.ilp.gateware.
PipeDatapath` for the sums, the swap pipes' bodies as wiring); the model computes with
:func:`hw.ilp.registers.run`, the language's one vectorised definition, so both mean what the
software pipes of :mod:`sw.libos.ilp.pipes` mean (tests/hw/test_an2_pipes.py checks the
pipes are those).

Words are network order (the first byte of the payload is bits 31:24 of word 0), aligned to
the PDU: the payload's byte ``i`` is in word ``i // 4``.
"""
from __future__ import annotations

import numpy as np

from ..ilp.registers import BSWAP, BSWAP16, CKSUM, bytes_of, run, words_of
from .registers import RxSwap

__all__ = ["CKSUM", "BSWAP", "BSWAP16", "TX_PIPES", "RX_PIPES", "SWAP_PIPES",
           "masked_words", "ones_sum", "swap_words", "swap_payload"]

#: The transmit checksum pass's pipe list.
TX_PIPES = (CKSUM,)
#: The receive tap's pipe list (the sum of the words as received).
RX_PIPES = (CKSUM,)
#: The swap pipe of each RxSwap mode that moves bytes.
SWAP_PIPES = {RxSwap.Halfword: BSWAP16, RxSwap.Word: BSWAP}


def masked_words(data, *, offset: int, start: int, end: int) -> np.ndarray:
    """``data`` (bytes at PDU byte ``offset``, a multiple of 4) as words, every byte outside
    PDU bytes ``[start, end)`` zero: what the card feeds a checksum pipe."""
    raw = np.frombuffer(bytes(data) + bytes(-len(data) % 4), dtype=np.uint8).copy()
    pos = offset + np.arange(raw.size)
    raw[(pos < start) | (pos >= end)] = 0
    return words_of(raw.tobytes())


def ones_sum(words) -> int:
    """The folded 16-bit ones'-complement sum of ``words`` (the CKSUM pipe's result; 0 for
    none)."""
    return int(run(CKSUM, np.asarray(words, dtype=np.uint32))[1][0])


def swap_words(words, *, offset: int, start: int, mode: RxSwap) -> np.ndarray:
    """``words`` (from PDU byte ``offset``, a multiple of 4) as the card stores them with
    ``rx_swap`` = ``mode`` from PDU byte ``start`` (even): every unit (halfword or word,
    aligned to the PDU) that begins at or after ``start`` is swapped; a word unit that
    ``start`` cuts is not. A unit the payload's end cuts is swapped whole, with the bytes
    after the payload that the card writes in the same word."""
    words = np.asarray(words, dtype=np.uint32)
    if mode == RxSwap.NoSwap or words.size == 0:
        return words
    swapped = run(SWAP_PIPES[RxSwap(mode)], words)[0]
    first = offset + 4 * np.arange(words.size)
    out = np.where(first >= start, swapped, words).astype(np.uint32)
    if mode == RxSwap.Halfword and start % 4 == 2:
        half = first == start - 2       # the word whose low halfword (bytes 2, 3) starts it
        out = np.where(half, (words & 0xFFFF0000) | (swapped & 0xFFFF), out).astype(np.uint32)
    return out


def swap_payload(data, *, offset: int, start: int, mode: RxSwap) -> bytes:
    """``data`` (bytes at PDU byte ``offset``, a multiple of 4; a length that is not a
    multiple of 4 must be padded by the caller with the bytes the card writes after it) with
    :func:`swap_words` applied, as bytes."""
    if mode == RxSwap.NoSwap:
        return bytes(data)
    return bytes_of(swap_words(words_of(data), offset=offset, start=start, mode=mode), len(data))
