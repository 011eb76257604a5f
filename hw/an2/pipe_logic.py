"""Gateware around the card's pipes: which bytes of a word a pipe sees, the swap wiring, the
transmit checksum field (docs/an2_card.md, "Hardware pipes"; the pipes: :mod:`hw.an2.pipes`).

Words are network order (PDU byte ``o`` of a word at PDU offset ``o`` is bits 31:24).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from ..ilp.registers import PERSISTENT
from ..ilp.stage import body_logic
from .pipes import SWAP_PIPES
from .registers import RxSwap

__all__ = ["byte_mask", "masked", "swap_wiring", "tx_field_value"]


def byte_mask(m: Module, o: Value, start: Value, end: Value, *, name: str) -> Signal:
    """A 32-bit mask of the bytes of the word at PDU byte ``o`` that lie in ``[start, end)``."""
    mask = Signal(32, name=name)
    parts = []
    for i in reversed(range(4)):    # Cat is LSB first: byte 3 (bits 7:0) first
        pos = o + i
        parts.append(Mux((pos >= start) & (pos < end), Const(0xFF, 8), Const(0, 8)))
    m.d.comb += mask.eq(Cat(*parts))
    return mask


def masked(m: Module, word: Value, o: Value, start: Value, end: Value, *, name: str) -> Signal:
    """``word`` with its bytes outside ``[start, end)`` zero (what a checksum pipe is fed)."""
    out = Signal(32, name=name)
    m.d.comb += out.eq(word & byte_mask(m, o, start, end, name=f"{name}_mask"))
    return out


def swap_wiring(m: Module, word: Value, o: Value, start: Value, mode: Value, *,
                prefix: str) -> Signal:
    """``word`` (at PDU byte ``o``) as stored with ``rx_swap`` = ``mode`` from byte ``start``
    (even): the swap pipes' bodies (:data:`hw.an2.pipes.SWAP_PIPES`) as wiring, a unit swapped
    when it begins at or after ``start`` (:func:`hw.an2.pipes.swap_words`)."""
    zero = {r: Const(0, 32) for r in PERSISTENT}
    half, _ = body_logic(m, SWAP_PIPES[RxSwap.Halfword], word=word, acc=zero,
                         prefix=f"{prefix}_h")
    full, _ = body_logic(m, SWAP_PIPES[RxSwap.Word], word=word, acc=zero, prefix=f"{prefix}_w")
    whole = Signal(name=f"{prefix}_whole")
    low = Signal(name=f"{prefix}_low")          # only the low halfword (bytes 2, 3) is in
    m.d.comb += [whole.eq(o >= start), low.eq(o + 2 >= start)]
    out = Signal(32, name=f"{prefix}_out")
    m.d.comb += out.eq(word)
    with m.If(mode == RxSwap.Halfword):
        with m.If(whole):
            m.d.comb += out.eq(half)
        with m.Elif(low):
            m.d.comb += out.eq(Cat(half[:16], word[16:]))
    with m.Elif(mode == RxSwap.Word):
        with m.If(whole):
            m.d.comb += out.eq(full)
    return out


def tx_field_value(m: Module, folded: Value) -> Signal:
    """The checksum field sent for the folded sum ``folded`` (:func:`hw.an2.registers.
    tx_csum_result`: its complement, 0 sent as 0xFFFF)."""
    field = Signal(16, name="tx_csum_field")
    comp = ~folded[:16]
    m.d.comb += field.eq(Mux(comp == 0, 0xFFFF, comp))
    return field
