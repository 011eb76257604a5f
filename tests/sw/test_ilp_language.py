"""The ILP pipe language (hw/ilp/registers.py): every verifier refusal with its message, the
meaning of each instruction against a plain Python one, addc's one-sum reduction against the
word-by-word end-around carry, and whole pipes against a word-by-word interpreter."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.ilp import registers as R
from hw.ilp.registers import MASK, Pipe, PipeError, verify
from ilp_reference import interpret, random_pipe, scalar

u32 = st.integers(0, MASK)


def refused(pipe, *fragments):
    with pytest.raises(PipeError) as info:
        verify(pipe)
    msg = str(info.value)
    assert f"pipe {pipe.name!r}" in msg
    for f in fragments:
        assert f in msg, msg
    return msg


@pytest.mark.parametrize("body, fragments", [
    ([("mul", 1, 2, 3)], ["body[0]", "unknown opcode 'mul'"]),
    ([("ldw", 1), ("add", 1, 2)], ["body[1]", "add takes 3 operands, not 2"]),
    ([("stw", 1, 0, 0)], ["stw takes 1 or 2 operands, not 3"]),
    ([("ldw", 8)], ["register must be r0..r7, not 8"]),
    ([("ldw", "r9")], ["register must be r0..r7"]),
    ([("ldw", "x1")], ["register must be r0..r7"]),
    ([("ldw", True)], ["register must be r0..r7"]),
    ([("ldw", 0)], ["writes r0"]),
    ([("li", 1, 1 << 32)], ["immediate 4294967296 out of range"]),
    ([("li", 1, -1)], ["immediate -1 out of range"]),
    ([("li", 1, 1.5)], ["imm32 operand must be an int"]),
    ([("shl", 1, 1, 32)], ["shift amount 32 out of range 0..31"]),
    ([("ldw", 1), ("beq", 1, 0, 1)], ["body[1]", "not after the branch: a loop"]),
    ([("ldw", 1), ("bne", 1, 0, 0)], ["a loop"]),
    ([("beq", 1, 0, 3)], ["beyond the end of the body (1)"]),
    ([("ldw", 1), ("stw", 1, 1)], ["stw offset 1 writes outside its output"]),
    ([("ldw", 1), ("stw", 1, -1)], ["writes outside its output"]),
    ([("ldw", 6)], ["persistent register r6 used other than as an accumulation"]),
    ([("ldw", 1), ("add", 2, 6, 1)], ["persistent register r6"]),
    ([("ldw", 1), ("sub", 6, 6, 1)], ["persistent register r6"]),
    ([("ldw", 1), ("add", 7, 7, 7)], ["persistent register r7"]),
    ([("ldw", 1), ("add", 6, 6, 7)], ["persistent register r6"]),
    ([("beq", 6, 0, 1)], ["persistent register r6"]),
    ([("ldw", 1), ("add", 6, 6, 1), ("xor", 6, 1, 6)],
     ["body[2]", "r6 is accumulated by both add and xor"]),
    ("not a tuple", ["an instruction is a tuple"]),
])
def test_body_refusals_name_pipe_place_and_problem(body, fragments):
    if isinstance(body, str):
        body = [body]
    refused(Pipe("bad", body=body), *fragments)


@pytest.mark.parametrize("op", ["ldw", "stw", "beq", "bne"])
def test_fini_refuses_memory_and_branches(op):
    ins = {"ldw": ("ldw", 1), "stw": ("stw", 1), "beq": ("beq", 1, 2, 1),
           "bne": ("bne", 1, 2, 1)}[op]
    refused(Pipe("f", body=[("ldw", 1)], fini=[ins]), "fini[0]", f"{op} is not allowed in fini")


def test_body_longer_than_max_refused():
    refused(Pipe("long", body=[("mov", 1, 1)] * (R.MAX_BODY + 1)),
            f"body of {R.MAX_BODY + 1} instructions is longer than MAX_BODY ({R.MAX_BODY})")
    verify(Pipe("ok", body=[("mov", 1, 1)] * R.MAX_BODY))


def test_init_and_results_checked():
    refused(Pipe("i", init={1: 0}), "init r1: only persistent registers")
    refused(Pipe("i", init={6: -1}), "init r6 = -1 is not a 32-bit unsigned int")
    refused(Pipe("i", init={"r9": 0}), "init 'r9'")
    refused(Pipe("r", results=[0]), "results r0")
    refused(Pipe("r", results=["r8"]), "results 'r8'")
    with pytest.raises(PipeError, match="name must be a non-empty str"):
        Pipe("")
    with pytest.raises(PipeError, match="body must be a sequence"):
        Pipe("s", body="ldw")
    with pytest.raises(TypeError, match="verify takes a Pipe"):
        verify([("ldw", 1)])


def test_verify_returns_int_registers_and_accepts_legal_forms():
    p = verify(Pipe("p", body=[("ldw", "r1"), ("addc", "r6", "r1", "r6"), ("stw", "r1", 0),
                               ("beq", "r1", "r0", 5), ("or", "r7", "r7", "r2")],
                    init={"r6": 5}, fini=[("mov", "r1", "r6"), ("add", "r6", "r6", "r7")],
                    results=["r6", "r1"]))
    assert p.body[1] == ("addc", 6, 1, 6) and p.body[3] == ("beq", 1, 0, 5)
    assert dict(p.init) == {6: 5} and p.results == (6, 1) and p.stores
    mixed = Pipe("m", init={"r6": 1, 7: 2})
    same = Pipe("m", init={7: 2, "r6": 1})
    assert hash(mixed) == hash(same) and mixed == same


# --- meaning ---------------------------------------------------------------------------------

@given(st.sampled_from(["add", "sub", "and", "or", "xor", "addc"]), u32, u32)
def test_alu_matches_plain_python(op, a, b):
    arr = R.alu(op, np.array([a, b], dtype=np.uint32), np.array([b, a], dtype=np.uint32))
    assert arr.dtype == np.uint32
    assert [int(x) for x in arr] == [scalar(op, a, b), scalar(op, b, a)]


@given(u32, st.integers(0, 31))
def test_shifts_and_bswap_match_plain_python(a, s):
    assert int(R.alu("shl", a, s)) == scalar("shl", a, s)
    assert int(R.alu("shr", a, s)) == scalar("shr", a, s)
    assert int(R.alu("bswap", np.array([a], dtype=np.uint32))[0]) == scalar("bswap", a)


@settings(max_examples=300)
@given(st.lists(u32, max_size=40), st.sampled_from(sorted(R.ACCUMULATORS)))
def test_reduction_equals_word_by_word_accumulation(values, op):
    seq = R.IDENTITY[op]
    for v in values:
        seq = scalar(op, seq, v)
    assert R.reduce_accumulation(op, np.array(values, dtype=np.uint32)) == seq


@given(st.lists(st.sampled_from([0, 1, MASK, MASK - 1, 1 << 31]), max_size=20))
def test_addc_reduction_at_the_edges(values):
    seq = 0
    for v in values:
        seq = scalar("addc", seq, v)
    assert R.reduce_accumulation("addc", np.array(values, dtype=np.uint32)) == seq


def test_words_pad_and_bytes_keep_length():
    w = R.words_of(b"\x01\x02\x03\x04\x05")
    assert [int(x) for x in w] == [0x01020304, 0x05000000]
    assert R.bytes_of(w, 5) == b"\x01\x02\x03\x04\x05"
    with pytest.raises(ValueError, match="does not fit"):
        R.bytes_of(w, 9)


def test_branches_are_masks_per_word():
    # Words equal to 7 become 0; others pass; count 7s in r6 (add of 1 where taken).
    p = verify(Pipe("sevens", body=[
        ("ldw", 1), ("li", 2, 7), ("bne", 1, 2, 6), ("li", 3, 1), ("add", 6, 6, 3),
        ("stw", 0), ("mov", 4, 4)], results=[6]))
    out, res = R.run(p, np.array([7, 1, 7, 9], dtype=np.uint32))
    assert [int(x) for x in out] == [0, 1, 0, 9] and res == (2,)
    assert interpret(p, [7, 1, 7, 9]) == ([0, 1, 0, 9], (2,))


@settings(max_examples=150, deadline=None)
@given(random_pipe(), st.lists(u32, max_size=24))
def test_random_pipe_vectorised_equals_word_by_word(pipe, values):
    out, res = R.run(pipe, np.array(values, dtype=np.uint32))
    want_out, want_res = interpret(pipe, values)
    assert [int(x) for x in out] == want_out
    assert res == want_res


def test_a_skipped_accumulation_contributes_nothing():
    # add the odd words, and-accumulate the even ones: skipped words give each op's identity
    p = verify(Pipe("odd", body=[
        ("ldw", 1), ("shl", 2, 1, 31), ("beq", 2, 0, 4), ("add", 6, 6, 1), ("bne", 2, 0, 6),
        ("and", 7, 7, 1)], init={7: MASK}, results=[6, 7]))
    values = [3, 4, 5, 6, 0xFFFF_FFFF]
    _, res = R.run(p, np.array(values, dtype=np.uint32))
    assert res == ((3 + 5 + 0xFFFF_FFFF) & MASK, 4 & 6) == interpret(p, values)[1]
