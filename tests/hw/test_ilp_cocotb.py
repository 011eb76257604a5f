"""The pipe datapath's RTL under cocotb on Icarus and Verilator (tests/hw/cocotb_ilp.py).

One design holds a datapath for each pipe list of :data:`CASES` (:class:`BenchTop`): the
standard copy + checksum + byte swap, and two random pipe lists
(:func:`test_ilp_gateware.random_pipes`), so each simulator builds once
(``build/hdl/ilp_bench/<sim>``, reused while the Verilog is unchanged). Each datapath gets
several random streams (random packets, random stalls on both sides, from none to 90 %) and
must give exactly the transaction-level model's transfers in the same cycles, the same words
and ``last`` flags, and ``done`` in the same cycles with the same results; the model's words
and results are checked against :func:`hw.ilp.registers.run` (the software semantics) by
:func:`test_ilp_gateware.expected_run`.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.ilp.gateware import PipeDatapath
from cocotb_ilp import CASE_ENV, STREAMS_ENV, pipes_for
from test_ilp_gateware import STALLS, expected_run, random_stimulus

HERE = Path(__file__).parent
CASES = ["std", "rand:21:3", "rand:22:2"]
#: Stimulus seeds of a default run (every stall level once) and of the slow sweep.
STREAMS = list(range(4))
SLOW_STREAMS = list(range(4, 40))


class BenchTop(wiring.Component):
    """Datapaths side by side, one per pipe list, ports ``d<k>__...`` (one build for all).

    Parameters
    ----------
    cases : list of str
        Pipe-list names of :func:`cocotb_ilp.pipes_for`.
    """

    def __init__(self, *, cases: list[str]):
        self._paths = [PipeDatapath(pipes=pipes_for(c)) for c in cases]
        super().__init__({f"d{k}": Out(p.signature) for k, p in enumerate(self._paths)})

    def elaborate(self, platform):
        m = Module()
        for k, path in enumerate(self._paths):
            m.submodules[f"d{k}"] = path
            wiring.connect(m, wiring.flipped(getattr(self, f"d{k}")), path)
        return m


def _check(sim: str, seeds: list[int]) -> None:
    from serveros.rtl import run_cocotb, simulator_missing
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(reason)
    run = run_cocotb(BenchTop(cases=CASES), toplevel="ilp_bench", sim=sim,
                     test_module="cocotb_ilp", test_dir=HERE, design="ilp_bench",
                     extra_env={CASE_ENV: ",".join(CASES),
                                STREAMS_ENV: ",".join(map(str, seeds))})
    assert run.ok, f"cocotb run failed on {sim}: {run.tests} tests, {run.failed} failed"
    assert sorted(run.result) == sorted(CASES)
    for case in CASES:
        got = run.result[case]
        assert sorted(got, key=int) == [str(s) for s in seeds]
        for seed in seeds:
            packets, in_valid, out_ready = random_stimulus(seed,
                                                           stall=STALLS[seed % len(STALLS)])
            want = expected_run(pipes_for(case), packets, in_valid, out_ready)
            rtl = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
                   for k, v in got[str(seed)].items()}
            assert rtl == want, f"{sim} {case} stream {seed}"


@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_ilp_datapaths_cocotb(sim: str) -> None:
    _check(sim, STREAMS)


@pytest.mark.hdl
@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_ilp_datapaths_cocotb_many_streams(sim: str) -> None:
    _check(sim, SLOW_STREAMS)
