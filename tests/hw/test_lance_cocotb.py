"""The LANCE card's RTL under cocotb on Icarus and Verilator (tests/hw/cocotb_lance.py).

One pytest entry per simulator builds ``hw.lance.gateware.LanceCard`` with a 16 KiB buffer SRAM
(quick builds; the benches use a compact ring layout, 4 receive and 4 transmit buffers of 1520
bytes) through :func:`serveros.rtl.run_cocotb`, reusing ``build/hdl/lance_card_16k/<sim>``.
``SERVEROS_WAVES=1`` records waves (FST on Icarus, VCD on Verilator) in ``<sim>-waves``.

The benches: registers/ROM/memory and bus wait states; random frames 60-1514 bytes each way
(FCS against ``zlib.crc32``, received bytes read back over the host bus); back-to-back frames
at the minimum gap and ring wrap-around; ownership hand-off (host-owned descriptors and buffers
untouched); a receive with no owned buffer (MISS, counter, buffer memory unchanged); bad FCS,
runt, too-long and rx_er frames dropped and counted; the address filter and MODE.PROM; irq =
INTR & INEA; chained receive buffers (and a cut frame: BUFF); chained transmit descriptors,
padding and a broken chain; MODE.DTCR and ADD_FCS; both engines at once; deferral to carrier
and a collision with retry.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bfm.cocotb_hostbus import HostBusSignals
from lance_bfm import COUNTER_NAMES, COUNTERS_OFFSET, SmallLayout, layout_for
from hw.lance.registers import BufferLayout, WINDOW_SIZE

HERE = Path(__file__).parent
RAM_BYTES = 16 * 1024
MAC = bytes.fromhex("08002b4c414e")   # a DEC OUI, as on the PMAD-AA's ROM


def test_small_layout_fits_and_validates() -> None:
    lay = layout_for(RAM_BYTES)
    assert isinstance(lay, SmallLayout)
    assert (lay.rings.rx, lay.rings.tx) == (4, 4)
    assert lay.rdra == 24 and lay.tdra == 24 + 32 and lay.rx_buffers[0] == 24 + 64
    assert lay.end <= RAM_BYTES and lay.tx_buffers[-1] + 1520 == lay.end
    assert lay.rmd(3) == lay.rdra + 24 and lay.tmd(1) == lay.tdra + 8
    block = lay.init(MAC)
    assert (block.rdra, block.rlen, block.tdra, block.tlen) == (lay.rdra, 4, lay.tdra, 4)
    assert isinstance(layout_for(64 * 1024), BufferLayout)
    with pytest.raises(ValueError, match="more than buffer_ram=4096"):
        SmallLayout(4096)
    with pytest.raises(ValueError, match="power of two 1..128, not 3"):
        SmallLayout(RAM_BYTES, rx=3)
    with pytest.raises(IndexError):
        lay.rmd(4)
    with pytest.raises(ValueError, match="rx_size must be a multiple of 8 in 8..4096, not 100"):
        SmallLayout(RAM_BYTES, rx_size=100)
    assert 0x100000 < COUNTERS_OFFSET < WINDOW_SIZE
    assert COUNTER_NAMES[0] == "missed" and len(COUNTER_NAMES) == 6


class _Port:
    """A stand-in for a cocotb handle: a width and a value."""

    def __init__(self, width: int) -> None:
        self.width, self.value = width, None

    def __len__(self) -> int:
        return self.width


def test_bus_offsets_in_the_cards_window() -> None:
    aw = (WINDOW_SIZE // 4).bit_length() - 1
    dut = SimpleNamespace(**{f"bus__{m}": _Port(aw if m == "addr" else 32)
                             for m in HostBusSignals.MEMBERS})
    bus = HostBusSignals(dut)
    assert bus.window == WINDOW_SIZE
    assert bus.word(0x100004) == 0x40001
    with pytest.raises(ValueError, match="word-aligned .* not 0x102"):
        bus.word(0x102)
    with pytest.raises(ValueError, match="not 0x200000"):
        bus.word(WINDOW_SIZE)
    with pytest.raises(TypeError, match="must be an int, not '4'"):
        bus.word("4")


@pytest.mark.hdl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_lance_card_cocotb(sim: str) -> None:
    from hw.lance.gateware import LanceCard
    from serveros.rtl import run_cocotb, simulator_missing
    if reason := simulator_missing(sim):
        pytest.skip(reason)
    run = run_cocotb(LanceCard(ram_bytes=RAM_BYTES, mac=MAC), toplevel="lance_card",
                     design=f"lance_card_{RAM_BYTES // 1024}k", sim=sim,
                     test_module="cocotb_lance", test_dir=HERE,
                     extra_env={"SERVEROS_LANCE_RAM_BYTES": str(RAM_BYTES),
                                "SERVEROS_LANCE_MAC": MAC.hex()})
    assert run.tests > 0 and run.failed == 0, \
        f"{run.failed} of {run.tests} cocotb tests failed on {sim} " \
        f"(see {run.build_dir}/results.xml)"
