"""The buffer-port pipe block's RTL under cocotb on Icarus and Verilator
(tests/hw/cocotb_ilp_buffer_port.py).

One design holds a :class:`hw.ilp.buffer_port_harness.BufferPortHarness` per case of
:data:`CASES` (:class:`BenchTop`): the checksum in both layouts, the halfword swap before the
checksum, and a random pipe list, so each simulator builds once
(``build/hdl/ilp_buffer_port_bench/<sim>``, reused while the Verilog is unchanged). Each case
plays random host sessions back to back (random windows, odd lengths, both directions, random
gaps between accesses, stray, out-of-order and abandoned accesses) and must give exactly
:class:`~hw.ilp.buffer_port_harness.HarnessModel`'s acks (cycle and data) and ``done``
cycles; the results it reads are checked against the software pipes by
:func:`test_ilp_buffer_port.check_reads_against_software`.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.ilp.buffer_port_harness import BufferPortHarness, HarnessModel
from buffer_port_stimulus import ADDR_WIDTH, REGS_ADDR
from cocotb_ilp_buffer_port import CASE_ENV, STREAMS_ENV, case_accesses, case_params
from test_ilp_buffer_port import check_reads_against_software

HERE = Path(__file__).parent
CASES = ["cksum/contiguous", "cksum/16-in-32", "hswap16+cksum/contiguous", "rand33/16-in-32"]
#: Session seeds of a default run and of the slow sweep.
STREAMS = [0, 1]
SLOW_STREAMS = list(range(2, 30))


class BenchTop(wiring.Component):
    """Harnesses side by side, one per case, ports ``h<k>__...`` (one build for all).

    Parameters
    ----------
    cases : list of str
        Case names of :func:`cocotb_ilp_buffer_port.case_params`.
    """

    def __init__(self, *, cases: list[str]):
        self._rigs = []
        for case in cases:
            pipes, layout = case_params(case)
            self._rigs.append(BufferPortHarness(pipes=pipes, layout=layout,
                                                addr_width=ADDR_WIDTH, regs_addr=REGS_ADDR))
        super().__init__({f"h{k}": Out(r.signature) for k, r in enumerate(self._rigs)})

    def elaborate(self, platform):
        m = Module()
        for k, rig in enumerate(self._rigs):
            m.submodules[f"h{k}"] = rig
            wiring.connect(m, wiring.flipped(getattr(self, f"h{k}")), rig)
        return m


def _check(sim: str, seeds: list[int]) -> None:
    from serveros.rtl import run_cocotb, simulator_missing
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(reason)
    run = run_cocotb(BenchTop(cases=CASES), toplevel="ilp_buffer_port_bench", sim=sim,
                     test_module="cocotb_ilp_buffer_port", test_dir=HERE,
                     design="ilp_buffer_port_bench",
                     extra_env={CASE_ENV: ",".join(CASES),
                                STREAMS_ENV: ",".join(map(str, seeds))})
    assert run.ok, f"cocotb run failed on {sim}: {run.tests} tests, {run.failed} failed"
    assert sorted(run.result) == sorted(CASES)
    for case in CASES:
        pipes, layout = case_params(case)
        accesses = case_accesses(case, seeds)
        model = HarnessModel(pipes=pipes, layout=layout, addr_width=ADDR_WIDTH,
                             regs_addr=REGS_ADDR)
        acks = [tuple(a) for a in run.result[case]["acks"]]
        assert acks == model.run(accesses), f"{sim} {case}: acks"
        assert run.result[case]["done_cycles"] == model.block.done_cycles, f"{sim} {case}: done"
        assert model.block.done_cycles, f"{sim} {case}: no window finished"
        check_reads_against_software(pipes, layout, accesses, acks)


@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_buffer_port_cocotb(sim: str) -> None:
    _check(sim, STREAMS)


@pytest.mark.hdl
@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_buffer_port_cocotb_many_sessions(sim: str) -> None:
    _check(sim, SLOW_STREAMS)
