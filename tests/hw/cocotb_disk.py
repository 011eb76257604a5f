"""cocotb bench: the disk controller's RTL inside Icarus or Verilator.

Runs one program of tests/hw/test_disk_gateware.py (named in :data:`PROGRAM_ENV`) with the
same CPU timing as the Amaranth bench, and writes what it observed with
:func:`serveros.rtl.write_result`; tests/hw/test_disk_cocotb.py compares that with the
transaction-level model and the reference.

The clock runs inside the simulator (``impl="gpi"``). Host memory and the drive firmware are
cocotb coroutines that sleep on ``RisingEdge`` of their port's ``req`` and take part cycle by
cycle only while a transfer is active (a DMA burst, a block on the media port); host memory
answers a burst reaching one of the program's refused pages
(:func:`test_disk_gateware.refused_pages`) with the DMA bus's ``err``; the CPU sleeps on
the ``irq`` between commands and drives the bus with :class:`bfm.cocotb_hostbus.HostBusDriver`.
A :class:`~bfm.cocotb_hostbus.HostBusMonitor` feeds every bus access to a :class:`bfm.Scoreboard`
that expects the transaction-level model's accesses (same program, same picoseconds).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from hw.disk.gateware import BLOCK_WORDS, DriveFirmware, MediaOp
from hw.disk.mechanism import DiskMechanism, Op, Request
from hw.disk.registers import (CLOCK_PERIOD_PS, DMA_READ_BURST_CYCLES, DMA_WRITE_BURST_CYCLES,
                               Command, Reg)
from serveros.rtl import write_result
from bfm import Scoreboard
from bfm.cocotb_hostbus import HostBusDriver, HostBusMonitor, HostBusSignals
from test_disk_gateware import (START_EDGE, drive_program, filler, program_for, refused_pages,
                                run_model, seek_plan, touches)

P = CLOCK_PERIOD_PS
#: Which program a run executes (set by tests/hw/test_disk_cocotb.py).
PROGRAM_ENV = "SERVEROS_DISK_PROGRAM"


class Bench:
    """Host memory, drive firmware and a CPU around the DUT."""

    def __init__(self, dut, spec: str):
        self.dut = dut
        self.spec = spec
        self.prog, media, memory, self.params, self.capacity = program_for(spec)
        self.refused = refused_pages(spec)
        self.fw = DriveFirmware(DiskMechanism(self.params), dict(media))
        self.mem = bytearray(memory)
        self.bursts = 0
        self.dma_errors = 0
        self.media_ops = 0
        self.signals = HostBusSignals(dut)
        self.bus: HostBusDriver | None = None
        # The bus scoreboard: the transaction-level model runs the same program, and every
        # access the RTL sees must equal the model's, in order, to the picosecond.
        self.scoreboard: Scoreboard | None = None
        if spec != "seeks":
            self.scoreboard = Scoreboard(name="disk.bus")
            with tempfile.TemporaryDirectory() as tmp:
                run_model(self.prog, media, Path(tmp), memory, self.params, self.capacity,
                          transactions=self.scoreboard.expect, refused=self.refused)

    def now(self) -> int:
        return get_sim_time("ps")

    async def start(self) -> None:
        d = self.dut
        # Icarus does not run Amaranth's combinational always-blocks at time 0 until one of
        # their inputs changes: poke Yosys's trigger register so they all settle, and hold
        # reset over the first edges so no register keeps an X (the time counters are
        # reset-less, so the time base is unaffected).
        try:
            d["\\$auto$verilog_backend.cc:2355:dump_module$1\\"].value = 1
        except (AttributeError, KeyError, IndexError):
            pass
        d.rst.value = 1
        self.bus = HostBusDriver(self.signals, d.clk, period_ps=P, phase="rising")
        self.bus.set_reset(d.rst)
        for name in ("dma__ack", "dma__err", "dma__r_data", "media__ack", "media__r_data", "media__hit",
                     "media__stream", "media__n_cached", "media__walk_lbn", "media__free_ps",
                     "media__start_ps", "media__cylinder", "media__surface", "media__slot"):
            getattr(d, name).value = 0
        Clock(d.clk, P, unit="ps", impl="gpi").start()
        # Writes made at time 0 land after edge 0 on Icarus: reset over edge 1 as well.
        await RisingEdge(d.clk)
        await RisingEdge(d.clk)
        d.rst.value = 0
        if self.scoreboard is not None:
            HostBusMonitor(self.signals, period_ps=P, callback=self.scoreboard.observe)
        cocotb.start_soon(self._memory_server())
        cocotb.start_soon(self._media_server())

    # -- host memory with the 3MIN's burst times, err for a refused page --------------------
    async def _memory_server(self) -> None:
        d, clk = self.dut, self.dut.clk
        while True:
            await RisingEdge(d.dma__req)
            await ReadOnly()
            write, addr, n = int(d.dma__write.value), int(d.dma__addr.value), int(d.dma__count.value)
            if touches(addr, 4 * n, self.refused):
                # Refused: err from the first edge that samples the request (a register),
                # so the controller samples it at the second.
                await RisingEdge(clk)
                d.dma__err.value = 1
                await RisingEdge(clk)
                d.dma__err.value = 0
                self.dma_errors += 1
                continue
            burst = DMA_WRITE_BURST_CYCLES if write else DMA_READ_BURST_CYCLES
            for _ in range(burst - n):
                await RisingEdge(clk)
            for i in range(n):
                a = addr + 4 * i
                d.dma__ack.value = 1
                if not write:
                    d.dma__r_data.value = int.from_bytes(self.mem[a:a + 4], "little")
                await ReadOnly()
                if not int(d.dma__req.value):       # abandoned (Reset)
                    break
                if write:
                    word = int(d.dma__w_data.value)
                await RisingEdge(clk)
                if write:
                    self.mem[a:a + 4] = word.to_bytes(4, "little")
            d.dma__ack.value = 0
            self.bursts += 1

    # -- the drive firmware and media ---------------------------------------------------------
    async def _media_server(self) -> None:
        d, clk, fw = self.dut, self.dut.clk, self.fw
        while True:
            await RisingEdge(d.media__req)
            await ReadOnly()
            op, lbn = MediaOp(int(d.media__op.value)), int(d.media__lbn.value)
            write, count, t = int(d.media__write.value), int(d.media__count.value), int(d.media__time_ps.value)
            self.media_ops += 1
            await RisingEdge(clk)           # the first edge sampling req: answer from here
            if op is MediaOp.Header:
                plan = fw.plan(Request(Op.Write if write else Op.Read, lbn, count), t)
                for name in ("hit", "stream", "n_cached", "walk_lbn", "free_ps", "start_ps",
                             "cylinder", "surface"):
                    getattr(d, f"media__{name}").value = int(getattr(plan, name))
                await self._ack_once()
            elif op is MediaOp.Info:
                c, h, s = fw.info(lbn)
                d.media__cylinder.value = c
                d.media__surface.value = h
                d.media__slot.value = s
                await self._ack_once()
            elif op is MediaOp.Commit:
                fw.commit(lbn)
                await self._ack_once()
            elif op is MediaOp.Read:
                for w in fw.read_words(lbn):
                    d.media__r_data.value = w
                    d.media__ack.value = 1
                    await RisingEdge(clk)
                d.media__ack.value = 0
            elif op is MediaOp.Write:
                words = []
                for _ in range(BLOCK_WORDS):
                    d.media__ack.value = 1
                    await ReadOnly()
                    words.append(int(d.media__w_data.value))
                    await RisingEdge(clk)
                d.media__ack.value = 0
                fw.stage(lbn, words)

    async def _ack_once(self) -> None:
        self.dut.media__ack.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.media__ack.value = 0

    # -- the CPU ------------------------------------------------------------------------------
    async def access(self, reg: Reg, value: int | None = None) -> int:
        """One access presented now (just after an edge); returns when it completes."""
        if value is None:
            return await self.bus.read(int(reg))
        await self.bus.write(int(reg), int(value))
        return 0

    async def wait_irq(self) -> None:
        # Just after an edge: irq as the previous edge left it (it changes only at edges).
        if not int(self.dut.irq.value):
            await RisingEdge(self.dut.irq)

    async def seeks(self) -> dict:
        """Seek by seek: start a one-block read, let the engine position the arm, Reset."""
        d = self.dut
        await self.access(Reg.Count, 1)
        await self.access(Reg.DmaAddr, 0)
        out = {}
        for name, lbns in seek_plan(self.params):
            for lbn in lbns:
                await self.access(Reg.Lbn, lbn)
                await self.access(Reg.Command, Command.Read)
                await ClockCycles(d.clk, 1500)
                await self.access(Reg.Command, Command.Reset)
            out[str(name)] = int(d.seek_ps.value)
        return out

    async def run(self) -> dict:
        d = self.dut
        while True:                         # to edge START_EDGE, as the other backends
            await RisingEdge(d.clk)
            if self.now() >= (START_EDGE - 1) * P:
                break
        await ReadOnly()
        # The RTL's picosecond counter must hold the time of the next edge (edge 0 at t = 0).
        clock_check = (self.now(), int(d.tnext.value))
        await RisingEdge(d.clk)
        start = self.now()
        if self.spec == "seeks":
            return {"seeks": await self.seeks(), "clock_check": clock_check, "start": start}
        events = []
        await drive_program(self.prog, events, access=self.access, wait_irq=self.wait_irq,
                            now=self.now, fill=filler(self.mem))
        self.scoreboard.check()
        media = {lbn: hashlib.sha256(b).hexdigest() for lbn, b in self.fw.media.items()}
        return {"events": events, "start": start, "clock_check": clock_check,
                "memory": hashlib.sha256(self.mem).hexdigest(), "media": media,
                "commits": self.fw.commits, "bursts": self.bursts, "media_ops": self.media_ops,
                "dma_errors": self.dma_errors,
                "end_ps": self.now(), "bus_transactions": self.scoreboard.matched}


@cocotb.test()
async def disk_program(dut) -> None:
    """Run the selected program from time 0 (one program per simulator run)."""
    spec = os.environ.get(PROGRAM_ENV, "errors")
    bench = Bench(dut, spec)
    await bench.start()
    write_result(spec, await bench.run())
