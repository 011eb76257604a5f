"""Fusion (sw/libos/ilp): the fused loop equals the pipes run one pass each and a plain
reference (scapy's checksum, struct), byte for byte and result for result, over random data,
lengths, alignments and pipe lists (standard pipes and random valid ones); the data-movement
rules' layouts (the LANCE's 16 bits in 32); the DMA rule's refusal; programs built once."""
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import checksum as scapy_checksum

from hw.ilp.registers import Pipe, PipeError
from ilp_reference import gap2, interpret, random_pipe, to_bytes, words
from sw.libos.ilp import compiler, movement, pipes
from sw.libos.ilp.execute import execute, separate
from sw.libos.net.checksum import ones_sum

STANDARD = list(pipes.STANDARD.values())
RULES = [movement.MEMORY, movement.LANCE_PIO, movement.PMAD_PIO, movement.AN2_DMA]


def reference(pipe_list, data):
    """(final bytes, results) from plain Python: the standard pipes by struct and scapy, any
    other pipe by the word-by-word interpreter."""
    ws = words(data)
    results = []
    for p in pipe_list:
        if p is pipes.CKSUM:
            s = ones_sum(to_bytes(ws, 4 * len(ws)))
            assert pipes.internet_checksum(s) == scapy_checksum(to_bytes(ws, 4 * len(ws)))
            results.append((s,))
        elif p is pipes.COPY:
            results.append(())
        elif p is pipes.BSWAP:
            ws = [struct.unpack("<I", struct.pack(">I", w))[0] for w in ws]
            results.append(())
        elif p is pipes.HSWAP16:
            ws = [(w << 16 | w >> 16) & 0xFFFFFFFF for w in ws]
            results.append(())
        else:
            ws, res = interpret(p, ws)
            results.append(res)
    return to_bytes(ws, len(data)), tuple(results)


def expected_image(rule, final):
    return {"memory": final, "lance-pio": gap2(final), "pmad-pio": final,
            "an2-dma": None}[rule.name]


@st.composite
def message(draw, max_size=700):
    """Bytes at a random alignment inside a larger buffer (a memoryview slice)."""
    data = draw(st.binary(max_size=max_size))
    offset = draw(st.integers(0, 3))
    buf = bytearray(draw(st.binary(min_size=offset, max_size=offset))) + data
    return data, memoryview(buf)[offset:]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(STANDARD), min_size=1, max_size=4),
       st.sampled_from(RULES), message())
def test_standard_pipes_fused_equal_separate_and_reference(plist, rule, msg):
    data, view = msg
    if not rule.stores:
        plist = [p for p in plist if not p.stores] or [pipes.CKSUM]
    fused = execute(compiler.build(plist, rule), view)
    assert fused == separate(plist, rule, view)
    final, results = reference(plist, data)
    assert fused.results == results
    assert fused.data == expected_image(rule, final)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(random_pipe(), st.sampled_from(STANDARD)), min_size=1, max_size=4),
       st.sampled_from([movement.MEMORY, movement.LANCE_PIO]), message(300))
def test_random_pipe_lists_fused_equal_separate_and_reference(plist, rule, msg):
    data, view = msg
    fused = execute(compiler.fuse(plist, rule), view)
    assert fused == separate(plist, rule, view)
    final, results = reference(plist, data)
    assert fused.results == results
    assert fused.data == expected_image(rule, final)


@settings(max_examples=60, deadline=None)
@given(st.lists(random_pipe(observe_only=True), min_size=1, max_size=3), message(300))
def test_observers_under_dma_store_nothing(plist, msg):
    data, view = msg
    fused = execute(compiler.fuse(plist, movement.AN2_DMA), view)
    assert fused.data is None
    assert fused.results == reference(plist, data)[1]


def test_checksum_of_known_bytes_and_its_field():
    data = bytes.fromhex("4500003c1c4640004006b1e6ac100a63ac100a0c")   # RFC 1071-style header
    out = execute(compiler.build([pipes.CKSUM], movement.AN2_DMA), data)
    assert pipes.internet_checksum(out.result("cksum")[0]) == scapy_checksum(data)
    # a header with its correct checksum in place sums to 0xffff
    hdr = data[:10] + b"\0\0" + data[12:]
    field = pipes.internet_checksum(execute(compiler.build([pipes.CKSUM], movement.AN2_DMA),
                                            hdr).result("cksum")[0])
    fixed = hdr[:10] + field.to_bytes(2, "big") + hdr[12:]
    assert execute(compiler.build([pipes.CKSUM], movement.AN2_DMA), fixed).result("cksum") == \
        (0xFFFF,)


def test_lance_pio_puts_each_halfword_in_its_own_slot():
    out = execute(compiler.build([pipes.COPY], movement.LANCE_PIO), b"ABCDE")
    assert out.data == b"AB\0\0CD\0\0E\0\0\0"
    assert movement.image_length(movement.LANCE_PIO, 5) == 12
    assert execute(compiler.build([pipes.COPY], movement.LANCE_PIO), b"").data == b""


def test_dma_rule_refuses_a_pipe_that_stores():
    with pytest.raises(PipeError, match="pipe 'bswap' changes words.*an2-dma rule stores "
                                        "nothing"):
        compiler.build([pipes.CKSUM, pipes.BSWAP], movement.AN2_DMA)
    with pytest.raises(PipeError, match="pipe 'copy' changes words"):
        separate([pipes.COPY], movement.AN2_DMA, b"abcd")


def test_build_compiles_each_combination_once():
    before = compiler.build.cache_info()
    a = compiler.build([pipes.HSWAP16, pipes.CKSUM], movement.LANCE_PIO)
    b = compiler.build((pipes.HSWAP16, pipes.CKSUM), movement.LANCE_PIO)
    after = compiler.build.cache_info()
    assert a is b
    assert after.hits - before.hits >= 1
    assert compiler.build([pipes.HSWAP16, pipes.CKSUM], movement.MEMORY) is not a


def test_fused_program_has_one_load_and_one_store():
    prog = compiler.build([pipes.COPY, pipes.BSWAP, pipes.CKSUM], movement.MEMORY)
    ops = [ins[0] for ins in prog.body]
    assert ops.count("ldw") == 1 and ops[0] == "ldw"
    assert ops.count("stw") == 1 and ops[-1] == "stw"
    observe = compiler.build([pipes.CKSUM], movement.AN2_DMA)
    assert [ins[0] for ins in observe.body].count("stw") == 0


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="movement must be a Movement"):
        compiler.fuse([pipes.COPY], "memory")
    with pytest.raises(TypeError, match="sequence of Pipe"):
        compiler.build(pipes.COPY, movement.MEMORY)
    with pytest.raises(TypeError, match="must be Pipe objects"):
        compiler.build([("ldw", 1)], movement.MEMORY)
    with pytest.raises(ValueError, match="at least one pipe"):
        compiler.fuse([], movement.MEMORY)
    with pytest.raises(PipeError, match="pipe 'x', body\\[0\\]"):
        compiler.fuse([Pipe("x", [("ldw", 0)])], movement.MEMORY)
    with pytest.raises(TypeError, match="bytes-like"):
        execute(compiler.build([pipes.COPY], movement.MEMORY), "text")
    with pytest.raises(KeyError, match="no data-movement rule 'sbus'"):
        movement.by_name("sbus")
    with pytest.raises(KeyError, match="no standard pipe 'md5'"):
        pipes.by_name("md5")
    with pytest.raises(ValueError, match="32 unsigned bits"):
        pipes.scramble(1 << 32)
    with pytest.raises(KeyError, match="2 pipes are called 'copy'"):
        execute(compiler.build([pipes.COPY, pipes.COPY], movement.MEMORY), b"ab").result("copy")


def test_scramble_twice_is_identity():
    s = pipes.scramble(0xDEADBEEF)
    data = bytes(range(64))
    assert execute(compiler.build([s, s], movement.MEMORY), data).data == data
