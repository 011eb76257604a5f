"""cocotb bench: the pipe datapath's RTL (hw/ilp/gateware.py) inside Icarus or Verilator.

The design (:class:`test_ilp_cocotb.BenchTop`) holds one datapath per pipe list of
:data:`CASE_ENV` (comma-separated names, :func:`pipes_for`), with ports ``d<k>__...``; the
streams are named by
:data:`STREAMS_ENV` (seeds of :func:`test_ilp_gateware.random_stimulus`, the stall fraction
:data:`test_ilp_gateware.STALLS` in turn). Each stream starts on an empty datapath at its own
cycle 0: a source raises ``valid`` in the cycles its ``in_valid`` pattern allows and holds it
until the word is taken, a sink is ready as ``out_ready`` says; the bench records every input and
output transfer, the words and ``last`` flags leaving, and each ``done`` with the results, and
writes them with :func:`serveros.rtl.write_result`. tests/hw/test_ilp_cocotb.py compares them
with the transaction-level model and the software semantics (:mod:`hw.ilp.registers`).

This bench drives the stream ports every cycle (the stalls are the stimulus); it is a
verification bench, not a co-simulation path.
"""
from __future__ import annotations

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from serveros.rtl import write_result
from test_ilp_gateware import (BSWAP, CKSUM, COPY, STALLS, STREAM_FIELDS, random_pipes,
                               random_stimulus)

#: The pipe lists the design holds, comma-separated: ``std`` (copy, cksum, bswap) or
#: ``rand:<seed>:<count>`` (:func:`test_ilp_gateware.random_pipes`).
CASE_ENV = "SERVEROS_ILP_CASES"
#: Comma-separated stimulus seeds.
STREAMS_ENV = "SERVEROS_ILP_STREAMS"
#: Cycles a stream may take before the bench calls the datapath stuck.
LIMIT = 20_000


def pipes_for(case: str):
    """The pipe list of ``case`` (see :data:`CASE_ENV`)."""
    if case == "std":
        return [COPY, CKSUM, BSWAP]
    kind, seed, count = case.split(":")
    if kind != "rand":
        raise ValueError(f"ILP case must be 'std' or 'rand:<seed>:<count>', not {case!r}")
    return random_pipes(int(seed), count=int(count))


class Ports:
    """The ports of datapath ``k`` of the bench top (``d<k>__i_stream__valid``, ...)."""

    def __init__(self, dut, k: int):
        get = lambda name: getattr(dut, f"d{k}__{name}")        # noqa: E731
        self.clk = dut.clk
        self.i_valid, self.i_payload, self.i_ready = (get("i_stream__valid"),
                                                      get("i_stream__payload"),
                                                      get("i_stream__ready"))
        self.o_valid, self.o_payload, self.o_ready = (get("o_stream__valid"),
                                                      get("o_stream__payload"),
                                                      get("o_stream__ready"))
        self.done, self.results = get("done"), get("results")


async def run_stream(dut: Ports, packets, in_valid, out_ready, n_results: int) -> dict:
    """Drive one stream from an empty datapath; return what the RTL did."""
    words = [(w, k == len(p) - 1) for p in packets for k, w in enumerate(p)]
    got = {k: [] for k in STREAM_FIELDS}
    i, offering, c = 0, False, 0
    while len(got["done_cycles"]) < len(packets):
        assert c <= LIMIT, f"datapath stuck after {c} cycles: {got}"
        await RisingEdge(dut.clk)                       # cycle c begins
        if i < len(words) and not offering:
            offering = c >= len(in_valid) or in_valid[c]
        dut.i_valid.value = int(offering)
        if i < len(words):
            dut.i_payload.value = words[i][0] | int(words[i][1]) << 32
        dut.o_ready.value = int(c >= len(out_ready) or out_ready[c])
        await ReadOnly()                                # the cycle's settled values
        if offering and dut.i_ready.value:
            got["in_cycles"].append(c)
            i, offering = i + 1, False
        if dut.o_valid.value and dut.o_ready.value:
            payload = dut.o_payload.value.to_unsigned()
            got["out_cycles"].append(c)
            got["out_words"].append(payload & 0xFFFF_FFFF)
            got["out_last"].append(bool(payload >> 32))
        if dut.done.value:
            flat = dut.results.value.to_unsigned()
            got["done_cycles"].append(c)
            got["results"].append([(flat >> (32 * j)) & 0xFFFF_FFFF for j in range(n_results)])
        c += 1
    return got


@cocotb.test()
async def ilp_streams(dut) -> None:
    """Every stream of :data:`STREAMS_ENV` through each case's datapath, one after another."""
    cases = os.environ.get(CASE_ENV, "std").split(",")
    seeds = [int(s) for s in os.environ.get(STREAMS_ENV, "0").split(",")]
    # Icarus runs Amaranth's combinational always-blocks at time 0 only when an input changes:
    # poke Yosys's trigger register so they settle (as tests/hw/cocotb_disk.py does).
    try:
        dut["\\$auto$verilog_backend.cc:2355:dump_module$1\\"].value = 1
    except (AttributeError, KeyError, IndexError):
        pass
    ports = [Ports(dut, k) for k in range(len(cases))]
    dut.rst.value = 1
    for p in ports:
        p.i_valid.value = 0
        p.i_payload.value = 0
        p.o_ready.value = 0
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    for _ in range(2):                  # writes at time 0 land after edge 0 on Icarus
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for case, p in zip(cases, ports):
        n_results = sum(len(pipe.results) for pipe in pipes_for(case))
        runs = {}
        for seed in seeds:
            packets, in_valid, out_ready = random_stimulus(seed,
                                                           stall=STALLS[seed % len(STALLS)])
            runs[str(seed)] = await run_stream(p, packets, in_valid, out_ready, n_results)
        write_result(case, runs)
