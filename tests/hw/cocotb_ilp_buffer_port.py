"""cocotb bench: the buffer-port pipe block's RTL (hw/ilp/buffer_port.py) in Icarus or Verilator.

The design (:class:`test_ilp_buffer_port_cocotb.BenchTop`) holds one
:class:`hw.ilp.buffer_port_harness.BufferPortHarness` (the block in front of a buffer SRAM) per
case of :data:`CASE_ENV` (:func:`case_params`), with ports ``h<k>__...``. For each case the
bench plays the host sessions of :data:`STREAMS_ENV` (seeds of
:func:`buffer_port_stimulus.random_session`: random windows and lengths, both directions,
random gaps, stray, out-of-order and abandoned accesses) back to back on the harness's host
bus, as tests/hw/test_ilp_buffer_port.py's Amaranth bench does: access ``j`` is presented from
cycle ``ack_{j-1} + 1 + gap`` and held until ``ack`` (every third dropped in its ``ack``
cycle, junk on the address and data: :func:`test_ilp_buffer_port.dropped`). It records every
``ack`` cycle with the data read and every cycle ``done`` is high, and writes them with
:func:`serveros.rtl.write_result`; tests/hw/test_ilp_buffer_port_cocotb.py compares them with
:class:`hw.ilp.buffer_port_harness.HarnessModel`.

This bench drives the bus every cycle (the gaps are the stimulus); it is a verification bench,
not a co-simulation path.
"""
from __future__ import annotations

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, ReadWrite, RisingEdge

from serveros.rtl import write_result
from buffer_port_stimulus import REGS_ADDR, random_session
from sw.libos.ilp.pipes import CKSUM, HSWAP16
from test_ilp_buffer_port import dropped
from test_ilp_gateware import random_pipes

#: The cases the design holds, comma-separated: ``<pipes>/<layout>`` with pipes ``cksum``,
#: ``hswap16+cksum`` or ``rand<seed>`` (:func:`test_ilp_gateware.random_pipes`) and a layout
#: of :class:`hw.ilp.buffer_port_regs.Layout`.
CASE_ENV = "SERVEROS_ILPBP_CASES"
#: Comma-separated session seeds.
STREAMS_ENV = "SERVEROS_ILPBP_STREAMS"
#: Cycles the sessions of a case may take before the bench calls the bus stuck.
LIMIT = 200_000


def case_params(case: str) -> tuple[list, str]:
    """The pipe list and layout of ``case`` (see :data:`CASE_ENV`)."""
    name, _, layout = case.partition("/")
    if name == "cksum":
        return [CKSUM], layout
    if name == "hswap16+cksum":
        return [HSWAP16, CKSUM], layout
    if name.startswith("rand") and name[4:].isdigit():
        return random_pipes(int(name[4:])), layout
    raise ValueError(f"buffer-port case must be cksum, hswap16+cksum or rand<seed> with a "
                     f"layout, not {case!r}")


def case_accesses(case: str, seeds: list[int]) -> list[tuple]:
    """The sessions of ``seeds`` back to back for ``case``."""
    pipes, layout = case_params(case)
    nres = sum(len(p.results) for p in pipes)
    return [a for s in seeds for a in random_session(s, layout=layout, results=nres)]


class Ports:
    """The host-bus ports of harness ``k`` of the bench top."""

    def __init__(self, dut, k: int):
        get = lambda name: getattr(dut, f"h{k}__{name}")        # noqa: E731
        self.addr, self.w_data, self.w_en, self.r_en = (get("host__addr"), get("host__w_data"),
                                                        get("host__w_en"), get("host__r_en"))
        self.r_data, self.ack, self.done = get("host__r_data"), get("host__ack"), get("done")

    def idle(self) -> None:
        self.w_en.value = 0
        self.r_en.value = 0
        self.addr.value = 0
        self.w_data.value = 0


async def run_accesses(dut, p: Ports, accesses, *, tail: int = 40) -> dict:
    """Drive ``accesses`` from an idle harness; return the acks (cycle, data) and dones."""
    got = {"acks": [], "done_cycles": []}
    j, c, end = 0, 0, None
    q = accesses[0][3] if accesses else 0
    while end is None or c < end:
        assert c <= LIMIT, f"bus stuck after {c} cycles"
        await RisingEdge(dut.clk)                       # cycle c begins
        await ReadWrite()                               # the registers' new values
        on = j < len(accesses) and c >= q
        acked = on and bool(p.ack.value)
        if on:
            write, addr, data, _ = accesses[j]
            junk = acked and dropped(j)
            p.addr.value = REGS_ADDR if junk else addr
            p.w_data.value = 0xFFFF_FFFF ^ data if junk else data
            on = not junk
        p.w_en.value = int(on and write)
        p.r_en.value = int(on and not write)
        await ReadOnly()                                # the cycle's settled values
        if acked:
            got["acks"].append([c, 0 if write else p.r_data.value.to_unsigned()])
            j += 1
            if j < len(accesses):
                q = c + 1 + accesses[j][3]
            else:
                end = c + tail
        if p.done.value:
            got["done_cycles"].append(c)
        c += 1
    return got


@cocotb.test()
async def buffer_port_sessions(dut) -> None:
    """Every case's sessions, one case after another."""
    cases = os.environ.get(CASE_ENV, "cksum/contiguous").split(",")
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
        p.idle()
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    for _ in range(2):                  # writes at time 0 land after edge 0 on Icarus
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for case, p in zip(cases, ports):
        write_result(case, await run_accesses(dut, p, case_accesses(case, seeds)))
