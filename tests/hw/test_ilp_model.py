"""The model's closed-form handshake cycles (hw/ilp/model.py) against a plain cycle-by-cycle
walk of the pipeline's registers, for many random stall patterns (no simulator: the RTL is
compared with the model in test_ilp_gateware.py and the cocotb benches)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from hw.ilp.model import handshake_cycles


def walk(words: int, stages: int, in_valid: list[bool], out_ready: list[bool]):
    """The datapath's valid/ready rules stepped one cycle at a time (the reference)."""
    slots: list[int | None] = [None] * stages       # the word index each stage holds
    a, d = [], []
    nxt, offering, c = 0, False, 0
    while len(d) < words:
        if nxt < words and not offering:
            offering = c >= len(in_valid) or in_valid[c]
        o_ready = c >= len(out_ready) or out_ready[c]
        ready = [False] * (stages + 1)
        ready[stages] = o_ready
        for k in reversed(range(stages)):
            ready[k] = slots[k] is None or ready[k + 1]
        if slots[-1] is not None and o_ready:
            d.append(c)
        moved = list(slots)
        for k in reversed(range(stages)):
            if ready[k]:
                moved[k] = slots[k - 1] if k else (nxt if offering else None)
        if offering and ready[0]:
            a.append(c)
            nxt, offering = nxt + 1, False
        slots, c = moved, c + 1
    return a, d


patterns = st.lists(st.booleans(), max_size=60)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(words=st.integers(0, 25), stages=st.integers(1, 5), in_valid=patterns,
       out_ready=patterns)
def test_closed_form_equals_a_cycle_walk(words, stages, in_valid, out_ready):
    a, d = handshake_cycles(words, stages=stages, in_valid=in_valid, out_ready=out_ready)
    assert (a, d) == walk(words, stages, in_valid, out_ready)
    assert all(x < y for x, y in zip(d, d[1:])) and all(x < y for x, y in zip(a, a[1:]))
    assert all(dd >= aa + stages for aa, dd in zip(a, d))
