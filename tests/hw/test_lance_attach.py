"""The LANCE card's device kind (hw/lance/attach.py): its parameters, its one build for every
station address (the harness's socketed ROM, loaded by the binding, and the backoff seed made
from it), and two machines on one segment with both cards in RTL giving the model run's frames
and times.

The exchange is :func:`serveros.experiments.lance.run_lance_exchange`: two DECstations under
Aegis, each with its card attached by ``LANCE`` and its driver (sw/drivers/lance.py), ping-pong
frames of random sizes. With ``rtl_cards=2`` both cards are RTL, two instances of one build in
one :class:`sim.bindings.session.RtlSimulation`; the pcap (every frame's bytes and timestamp),
the CPU cycles and the drivers' counters equal the run with both cards as models.
"""
from __future__ import annotations

import pytest

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.lance import timing as T
from hw.lance.attach import LANCE
from hw.lance.gateware import rom_backoff_seed
from hw.lance.registers import DEFAULT_MAC, ROM_ESAR_OFFSET, ROM_ESAR_STRIDE, ROM_OFFSET
from hw.lance.regs_target import rom_word
from serveros.devices import DEVICE_KINDS
from serveros.experiments.lance import run_lance_exchange
from serveros.rtl import simulator_missing
from sim.bindings.session import RtlSimulation
from sim.bus import Bus
from sim.devices import DeviceSpec, MachinePorts
from sim.kernel import Kernel
from sim.media.ethernet import Segment

BASE = 0x1E00_0000


def _machine() -> MachinePorts:
    k = Kernel()
    return MachinePorts(k, "server", Bus(k), media={"ethernet": Segment(k)})


def test_lance_is_a_listed_kind_and_names_its_build_by_its_ram_not_its_mac() -> None:
    assert DEVICE_KINDS["lance"] is LANCE
    assert (LANCE.kind, LANCE.window, LANCE.clock.period) == ("lance", 2 << 20, 80_000)
    spec = DeviceSpec("lance", "le0", BASE, {"mac": "08:00:2b:00:00:01", "ram_bytes": 65536})
    assert LANCE.harness_key(spec) == "lance_harness_64k"
    assert LANCE.harness_key(DeviceSpec("lance", "le0", BASE)) == "lance_harness_128k"
    assert LANCE.harness_key(DeviceSpec("lance", "le0", BASE, {"mac": "08:00:2b:12:34:56"})) \
        == "lance_harness_128k"


def test_a_socketed_rom_seeds_the_backoff_as_a_constant_one_does() -> None:
    rom, seed = Signal(48), Signal(16)
    m = Module()
    m.d.comb += seed.eq(rom_backoff_seed(rom))
    macs = [DEFAULT_MAC, bytes.fromhex("08002b0a0b0c"), bytes.fromhex("aa0000feace1")]
    got = []

    async def bench(ctx):
        for mac in macs:
            ctx.set(rom, rom_word(mac))
            got.append(ctx.get(seed))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [T.backoff_seed(mac) for mac in macs] and got[2] == T.BACKOFF_SEED


@pytest.mark.parametrize("backend", [pytest.param("verilator", marks=pytest.mark.hdl),
                                     "amaranth"])
def test_two_cards_of_one_build_read_their_own_station_address_roms(backend) -> None:
    if backend == "verilator" and simulator_missing("verilator"):
        pytest.skip(simulator_missing("verilator"))
    macs = {"le0": bytes.fromhex("08002b0a0b0c"), "le1": bytes.fromhex("aa0000fedcba")}
    specs = {n: DeviceSpec("lance", n, BASE, {"mac": m}) for n, m in macs.items()}
    assert len({LANCE.harness_key(s) for s in specs.values()}) == 1
    k = Kernel()
    seen: dict[str, bytes] = {}
    with RtlSimulation(k, backend) as sim:
        for n, s in specs.items():
            sim.add(f"m_{n}", LANCE, s)
        sim.start()
        if backend == "verilator":          # one build, two models of it
            dirs = {sim.access(f"m_{n}").model.build_dir for n in specs}
            assert len(dirs) == 1 and next(iter(dirs)).parent.name == "lance_harness_128k"

        async def read_rom(name: str, target) -> None:    # as sw/drivers/lance.py reads it
            offs = [ROM_OFFSET + ROM_ESAR_OFFSET + ROM_ESAR_STRIDE * i for i in range(6)]
            seen[name] = bytes([await target.read(o & ~3) >> 8 * (o & 3) & 0xFF for o in offs])
        for n, s in specs.items():
            att = LANCE.bind_rtl(MachinePorts(k, "m", Bus(k)), s, sim.access(f"m_{n}"),
                                 sim.driver)
            k.spawn(read_rom(n, att.target))
        sim.run()
    assert seen == macs


def test_the_model_card_is_a_station_named_for_its_machine() -> None:
    m = _machine()
    card = LANCE.attach_model(m, DeviceSpec("lance", "le0", BASE))
    assert card.impl == "model" and card.target is card.parts["model"]
    assert card.parts["station"].name == "server"
    named = LANCE.attach_model(m, DeviceSpec("lance", "le1", BASE, {"station": "le1"}))
    assert named.parts["station"].name == "le1"
    alone = LANCE.attach_model(MachinePorts(m.kernel, "m1", Bus(m.kernel)),
                               DeviceSpec("lance", "le0", BASE))
    assert alone.parts["station"] is None and alone.parts["stats"] is None
    m.kernel.run(until=1)                   # the transceivers' tasks start, and wait


@pytest.mark.parametrize("params, match", [
    ({"speed": 10}, "unknown parameter 'speed'"),
    ({"mac": "08:00:2b"}, "mac"),
    ({"ram_bytes": 5000}, "ram_bytes must be a power of two"),
    ({"station": ""}, "station must be a non-empty name"),
])
def test_bad_parameters_are_named(params, match) -> None:
    with pytest.raises(ValueError, match=match):
        LANCE.attach_model(_machine(), DeviceSpec("lance", "le0", BASE, params))
    with pytest.raises(ValueError, match="base must be a multiple of 0x200000"):
        LANCE.check(DeviceSpec("lance", "le0", BASE + 4))


def _same_as_model(tmp_path, backend: str, frames: int, size: int | None, seed: int):
    runs, pcaps = {}, {}
    for impl in ("model", backend):
        pcaps[impl] = tmp_path / f"{impl}.pcapng"
        runs[impl] = run_lance_exchange(frames, size, seed=seed, backend=impl, rtl_cards=2,
                                        pcap_path=str(pcaps[impl]))
    model, rtl = runs["model"], runs[backend]
    assert rtl.rtl_cards == 2 and model.rtl_cards == 0
    assert rtl.driver["le0"]["received"] == rtl.driver["le1"]["received"] == frames
    assert (rtl.frames, rtl.bytes, rtl.sim_ps) == (model.frames, model.bytes, model.sim_ps)
    assert (rtl.cpu, rtl.driver, rtl.segment) == (model.cpu, model.driver, model.segment)
    assert pcaps[backend].read_bytes() == pcaps["model"].read_bytes()   # frames and times
    return rtl


@pytest.mark.hdl
def test_two_rtl_cards_on_verilator_exchange_the_model_cards_frames_at_their_times(tmp_path):
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    rtl = _same_as_model(tmp_path, "verilator", 5, None, 4)
    assert 0 < rtl.python_wakes < rtl.sim_ps // LANCE.clock.period // 10    # not per cycle


def test_two_rtl_cards_on_amaranth_exchange_the_model_cards_frames_at_their_times(tmp_path):
    _same_as_model(tmp_path, "amaranth", 1, 60, 2)
