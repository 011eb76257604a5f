"""The disk controller's RTL under cocotb on Icarus and Verilator (tests/hw/cocotb_disk.py).

One build per simulator and disk (``build/hdl/disk_fast/<sim>`` with the small fast test disk
of tests/hw/test_disk_gateware.py, ``build/hdl/disk_rz26/<sim>`` with the DEC RZ26); each run
executes one program from time 0 and is compared with the transaction-level model
(:class:`hw.disk.model.DiskControllerModel`, same program, same picoseconds) and with the
reference image and memory:

* random reads and writes of random block ranges, back to back, on the fast disk and on the
  RZ26 (seek curve, rotation, read-ahead cache): irq times equal to the model's, memory and
  media equal to the reference;
* every error path, and Busy twice while a Read runs: the same events as the model, no byte
  moved;
* host memory refusing bursts (``dmafault``: the bench's memory answers with the DMA bus's
  ``err``): each command ends with DmaFault at the model's picosecond, the memory and media as
  the model leaves them;
* every register access (monitored on the RTL's bus) equal to the model's, in order, to the ps
  (the bench's scoreboard);
* RZ26 seeks of 1, 10, 100, 1000 cylinders and full stroke within 1 % of the curve (the
  engine's ``seek_ps`` after positioning reads that are then abandoned with Reset).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hw.disk.gateware import DiskController
from test_disk_gateware import (DMAFAULT_CODES, ERROR_CODES, MEM_SIZE, START_EDGE, check_seeks,
                                expected_after, program_for, refused_pages, run_model)

HERE = Path(__file__).parent
P = 80_000

PROGRAMS = ["errors", "dmafault", "random:11:8:fast", "random:12:6:rz26"]


def _run(sim: str, spec: str):
    from serveros.rtl import run_cocotb, simulator_missing
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(reason)
    prog, media, memory, params, capacity = program_for(spec)
    disk = {"errors": "fast", "dmafault": "fast", "seeks": "rz26"}.get(spec) \
        or spec.rsplit(":", 1)[-1]
    dut = DiskController(params=params, capacity=capacity, mem_size=MEM_SIZE)
    run = run_cocotb(dut, toplevel="disk_controller", sim=sim, test_module="cocotb_disk",
                     test_dir=HERE, design=f"disk_{disk}",
                     extra_env={"SERVEROS_DISK_PROGRAM": spec})
    assert run.ok, f"cocotb run failed on {sim}: {run.tests} tests, {run.failed} failed"
    return prog, media, memory, params, capacity, run.result[spec]


# Icarus runs the RZ26 program at ~50 s (its seeks and rotation are ~200 k cycles a command).
CASES = [pytest.param(sim, spec, marks=[pytest.mark.slow] if sim == "icarus" and "rz26" in spec
                      else [], id=f"{sim}-{spec}")
         for sim in ("icarus", "verilator") for spec in PROGRAMS]


@pytest.mark.hdl
@pytest.mark.parametrize("sim, spec", CASES)
def test_disk_controller_cocotb(sim: str, spec: str, tmp_path) -> None:
    prog, media, memory, params, capacity, res = _run(sim, spec)
    # The RTL's time base: after edge START_EDGE - 2 the counter holds the next edge's time.
    assert res["clock_check"] == [(START_EDGE - 1) * P, START_EDGE * P]
    assert res["start"] == START_EDGE * P
    accesses, refused = [], refused_pages(spec)
    model_out, model_mem, model_img, _ = run_model(prog, media, tmp_path, memory, params, capacity,
                                                   transactions=accesses.extend, refused=refused)
    # The bench's scoreboard saw every register access of the model's run, equal to the ps.
    assert res["bus_transactions"] == len(accesses) > 0
    events = [tuple(e) for e in res["events"]]
    assert events == model_out.events
    exp_mem, exp_img = expected_after(prog, media, memory, refused)
    assert res["memory"] == hashlib.sha256(exp_mem).hexdigest() == hashlib.sha256(model_mem).hexdigest()
    exp_hash = {str(k): hashlib.sha256(v).hexdigest() for k, v in exp_img.items()}
    assert {k: v for k, v in res["media"].items() if k in exp_hash} == exp_hash
    assert set(res["media"]) <= set(exp_hash)          # nothing written outside the commands
    assert model_img == exp_img
    if spec == "errors":
        assert [(c, e) for _, c, e in events] == ERROR_CODES and res["commits"] == []
    if spec == "dmafault":
        assert [(c, e) for _, c, e in events] == DMAFAULT_CODES and res["dma_errors"] == 3
        assert res["commits"] == [61, 62]


@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_disk_controller_cocotb_seeks(sim: str) -> None:
    """RZ26 seeks of 1, 10, 100, 1000 cylinders and full stroke, measured in the RTL."""
    prog, media, memory, params, capacity, res = _run(sim, "seeks")
    assert res["clock_check"] == [(START_EDGE - 1) * P, START_EDGE * P]
    seeks = {int(k) if k.isdigit() else k: v for k, v in res["seeks"].items()}
    check_seeks(seeks, params)


@pytest.mark.hdl
@pytest.mark.slow
def test_disk_controller_verilator_long_rz26_program(tmp_path) -> None:
    """40 random RZ26 commands on Verilator: every completion at the model's picosecond."""
    spec = "random:13:40:rz26"
    prog, media, memory, params, capacity, res = _run("verilator", spec)
    model_out, model_mem, model_img, history = run_model(prog, media, tmp_path, memory, params,
                                                         capacity)
    assert [tuple(e) for e in res["events"]] == model_out.events
    exp_mem, _ = expected_after(prog, media, memory)
    assert res["memory"] == hashlib.sha256(exp_mem).hexdigest()
    assert len(history) == 40
