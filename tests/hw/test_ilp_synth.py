"""Synthesis figures of pipe datapaths (hw/ilp/synth.py) and ``serveros synth``.

The flip-flop counts follow from the datapath's structure (docs/ilp_pipes.md): a stage holds
its word, ``last`` and valid (34 bits), ``done`` is one more, an accumulator 32 and its copy
captured for ``fini`` 32, and a pipe's results ride in a register per later stage and the
output register (bits Yosys proves constant, such as most of the checksum's upper 16 result
bits, get none).
"""
from __future__ import annotations

import pytest

from hw.ilp.synth import SynthFigures, synthesize, yosys_missing
from test_ilp_gateware import CKSUM, COPY

pytestmark = pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))


def test_copy_is_one_stage_of_registers_and_wires():
    f = synthesize([COPY])
    assert isinstance(f, SynthFigures) and f.pipes == ("copy",) and f.stages == 1
    assert f.flip_flops == 34 + 1 == f.ice40_ffs           # word, last, valid; done
    assert f.ice40_carries == 0 and f.depth <= 4            # no arithmetic: the ready logic
    # Placed and routed: a register-to-register datapath with no arithmetic runs far faster
    # than the checksum's 64-carry end-around adder (below).
    assert f.clock_mhz is not None and f.clock_mhz > 0


def test_checksum_adds_an_accumulator_and_a_carry_chain():
    copy, both = synthesize([COPY]), synthesize([COPY, CKSUM])
    # A second stage (34), the 32-bit accumulator, its 32-bit copy captured with the last
    # word for fini, and the folded result (16 bits of value; a bit or so more where Yosys
    # cannot prove the fold's sum stays below 0x10000, at most 32).
    extra = both.flip_flops - copy.flip_flops
    assert 34 + 32 + 32 + 16 <= extra <= 34 + 32 + 32 + 32
    assert both.ice40_carries >= 64                          # the end-around-carry adders
    assert both.ice40_path_carries >= 32 and both.depth > 32
    assert both.clock_mhz < copy.clock_mhz                  # the carry chain sets the clock
    assert synthesize([COPY, CKSUM]) == both                 # the cache gives the same


def test_serveros_synth_prints_a_row_per_list(capsys):
    from serveros.cli import main
    assert main(["synth", "--pipes", "copy", "--pipes", "copy,cksum"]) == 0
    out = capsys.readouterr().out
    assert "copy, cksum" in out and "LUT4" in out and "MHz" in out


def test_serveros_synth_refuses_an_unknown_pipe(capsys):
    from serveros.cli import main
    assert main(["synth", "--pipes", "copy,frob"]) == 2
    assert "no standard pipe 'frob'" in capsys.readouterr().err
