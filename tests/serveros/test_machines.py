"""Machines from descriptions: what a machine has, one place choosing model or RTL per device,
the operating system binding drivers by kind, and RTL runs giving the model runs' rows."""
import logging

import pytest

from serveros.experiments import paper
from serveros.machines import (DISK_BASE, LANCE_BASE, MEMORY_BYTES, MachineSpec, bare,
                               client_spec, decstation, machine_mac, preload_arp, server_spec)
from serveros.rtl import simulator_missing
from serveros.simulation import Simulation, check_rtl, parse_rtl
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.ethernet import Segment
from sw.boot import boot
from sw.clients.http import HttpClient
from sw.drivers.disk import DiskDriver
from sw.drivers.lance import LanceDriver, LanceNetDevice

#: A free TURBOchannel address for a timer in these tests (the paper's machines have none).
TIMER_BASE = 0x1D00_0000


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img")


def _needs_verilator() -> None:
    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)


def _boot(sim: Simulation, *names: str) -> None:
    async def go():
        for n in names:
            await boot(sim.hosts[n])
    t = sim.kernel.spawn(go(), name="boot")
    sim.run()
    assert t.done and t.exception is None, t.exception


# -- descriptions -----------------------------------------------------------------------------------
def test_the_paper_server_is_a_decstation_with_its_card_and_disk(image):
    s = server_spec("cheetah", image, seed=7)
    assert (s.name, s.os, s.profile, s.memory_bytes, s.seed) == \
        ("server", "aegis", "decstation-5000-125-aegis", MEMORY_BYTES, 7)
    assert [(d.kind, d.name, d.base) for d in s.devices] == \
        [("lance", "le0", LANCE_BASE), ("disk", "rz0", DISK_BASE)]
    assert s.device("le0").params["mac"] == machine_mac(1) and s.kinds == ("lance", "disk")
    assert server_spec("ncsa", image).os == server_spec("harvest", image).os == "ultrix"
    c = client_spec(3, "sparc", seed=2)
    assert (c.os, c.devices, c.ether, c.memory_bytes) == ("bsd-client", (), machine_mac(13), 0)


@pytest.mark.parametrize("change, what", [
    ({"name": "no good"}, "identifier"),
    ({"profile": "pdp-11"}, "unknown profile"),
    ({"os": "vms"}, "os must be one of"),
    ({"ip": b"\x0a\x00"}, "4 bytes"),
    ({"memory_bytes": -1}, "memory_bytes"),
    ({"memory_bytes": 0}, "Aegis needs main memory"),
    ({"devices": [DeviceSpec("lance", "le0", 0)]}, "tuple of DeviceSpec"),
    ({"devices": (DeviceSpec("lance", "le0", 0), DeviceSpec("disk", "le0", 0))}, "unique"),
    ({"ether": b"\x08"}, "6-byte MAC"),
    ({"seed": 1.5}, "seed"),
])
def test_a_bad_description_is_a_one_line_error(change, what):
    fields = dict(name="m", profile="decstation-5000-125-aegis", os="aegis",
                  ip=bytes([10, 0, 0, 5]), memory_bytes=1 << 20)
    with pytest.raises(ValueError, match=what):
        MachineSpec(**{**fields, **change})
    with pytest.raises(ValueError, match="runs aegis or ultrix"):
        decstation("d", os="bsd-client", ip=bytes(4), mac=machine_mac(5))


def test_rtl_names_kinds_the_machines_have(image):
    assert set(parse_rtl("disk, lance")) == {"lance", "disk"} and parse_rtl("") == ()
    with pytest.raises(ValueError, match="unknown device kind 'scsi'"):
        parse_rtl("scsi")
    with pytest.raises(ValueError, match="no machine has a timer device"):
        check_rtl(("timer",), [server_spec("cheetah", image)])
    with pytest.raises(ValueError, match="no machine has a timer"):
        Simulation(Kernel(), [server_spec("ncsa", image)], media={}, rtl=["timer"])
    pts = paper.plan_points(("b",), ["cheetah"], rtl="disk,lance", clients=(1,))
    assert set(pts[0].rtl) == {"lance", "disk"} and pts[0].backend == "verilator"
    assert paper.plan_points(("b",), ["cheetah"], clients=(1,))[0].rtl == ()
    with pytest.raises(ValueError, match="runs no RTL"):
        paper.Point(("b",), "cheetah", 100, 1, 1, "model", 1, rtl=("disk",))


# -- the operating system binds the devices --------------------------------------------------------
def test_aegis_binds_a_driver_per_device_and_owns_the_receive_path(image, caplog):
    spec = server_spec("cheetah", image)
    spec = MachineSpec(spec.name, spec.profile, spec.os, spec.ip, spec.memory_bytes,
                       spec.devices + (DeviceSpec("timer", "tm0", TIMER_BASE),))
    k = Kernel()
    sim = Simulation(k, [spec], media={"ethernet": Segment(k, seed=1)})
    host = sim.hosts["server"]
    assert set(host.extra["devices"]) == {"le0", "rz0", "tm0"} and host.netdev is None
    bus = host.extra["bus"]
    assert [bus.window(b).name for b in (LANCE_BASE, DISK_BASE, TIMER_BASE)] == \
        ["server.le0", "server.rz0", "server.tm0"]                  # each mapped at its base
    with caplog.at_level(logging.INFO, logger="sw.boot"):
        _boot(sim, "server")
    drivers = host.extra["drivers"]
    assert isinstance(drivers["le0"], LanceDriver) and isinstance(drivers["rz0"], DiskDriver)
    assert "tm0" not in drivers and "no aegis driver for tm0 (kind timer)" in caplog.text
    assert isinstance(host.netdev, LanceNetDevice) and host.netdev.mac == machine_mac(1)
    assert host.blockdev.block_count == drivers["rz0"].blocks > 0
    aegis = host.extra["aegis"]
    assert aegis.netdev is host.netdev                 # the kernel owns the receive path
    assert aegis.extents.block_count == drivers["rz0"].blocks


def test_a_bare_machine_binds_nothing_its_builder_drives_the_devices(caplog):
    from hw.timer.registers import Reg
    spec = bare("m0", [DeviceSpec("timer", "tm0", TIMER_BASE),
                       DeviceSpec("lance", "le0", LANCE_BASE, {"mac": machine_mac(7)})])
    assert (spec.os, spec.ip, spec.memory_bytes, spec.profile, spec.kinds) == \
        ("none", bytes(4), 0, "decstation-5000-125-aegis", ("timer", "lance"))
    with pytest.raises(ValueError, match="memory_bytes"):
        bare("m0", (), memory_bytes=-1)
    k = Kernel()
    sim = Simulation(k, [spec], media={"ethernet": Segment(k, seed=1)})
    host = sim.hosts["m0"]
    assert host.extra["booted"] and host.memory is None
    host.extra["booted"] = False                        # boot() itself binds nothing either
    with caplog.at_level(logging.INFO, logger="sw.boot"):
        _boot(sim, "m0")
    assert host.extra["booted"] and "drivers" not in host.extra and caplog.text == ""
    assert host.netdev is None and "aegis" not in host.extra
    # The builder's own driver: the timer's registers on the machine's bus, its irq line.
    tm0 = host.extra["devices"]["tm0"]
    bus = host.extra["bus"]

    async def poke():
        await bus.write(TIMER_BASE + Reg.Load, 5)
        return await bus.read(TIMER_BASE + Reg.Load)
    t = k.spawn(poke(), name="poke")
    sim.run()
    assert t.result == 5 and tm0.irq.level == 0 and tm0.impl == "model"


def test_ultrix_keeps_the_card_to_its_kernel(image):
    k = Kernel()
    sim = Simulation(k, [server_spec("ncsa", image)], media={"ethernet": Segment(k, seed=1)})
    _boot(sim, "server")
    host = sim.hosts["server"]
    assert "aegis" not in host.extra and isinstance(host.netdev, LanceNetDevice)
    assert host.netdev.driver.on_frame is None          # nobody took its frames yet


def test_one_device_by_its_instance_name_runs_as_rtl_the_others_as_models(image):
    spec = server_spec("static", image)
    spec = MachineSpec(spec.name, spec.profile, spec.os, spec.ip, spec.memory_bytes,
                       spec.devices + (DeviceSpec("timer", "tm0", TIMER_BASE),))
    k = Kernel()
    with pytest.raises(ValueError, match="neither a device kind .* nor a device of the "
                                         "simulation .*server_tm0"):
        Simulation(k, [spec], media={}, rtl="server_tm1")
    sim = Simulation(k, [spec], media={"ethernet": Segment(k, seed=1)}, rtl="server_tm0",
                     backend="amaranth")
    devices = sim.hosts["server"].extra["devices"]
    assert {n: d.impl for n, d in devices.items()} == \
        {"le0": "model", "rz0": "model", "tm0": "rtl"}
    assert sim.rtl.instances == ["server_tm0"] and sim.rtl_label == "server_tm0"
    _boot(sim, "server")                  # the drivers run against models and RTL alike
    assert sim.hosts["server"].blockdev is not None
    sim.close()
    sim = Simulation(Kernel(), [spec], media={}, rtl="timer", backend="amaranth")
    late = MachineSpec("late", spec.profile, "ultrix", bytes([10, 0, 0, 9]),
                       devices=(DeviceSpec("timer", "tm0", TIMER_BASE),))
    with pytest.raises(ValueError, match="must be in the simulation before it starts"):
        sim.add(late)
    sim.close()


def test_a_machine_joins_late_only_with_model_devices(image):
    k = Kernel()
    sim = Simulation(k, [server_spec("static", image)], media={"ethernet": Segment(k, seed=1)})
    c = sim.add(client_spec(0))
    assert sim.hosts["client0"] is c and c.netdev.mac == machine_mac(10)
    with pytest.raises(ValueError, match="already in the simulation"):
        sim.add(client_spec(0))


# -- RTL runs give the model runs' rows --------------------------------------------------------------
def _rows(image, servers, rtl, requests, clients=None):
    kw = {} if clients is None else {"clients": clients}
    pts = paper.plan_points(("b",), servers, requests=requests, rtl=rtl, **kw)
    return paper.run_paper(pts, jobs=1, image_path=image)


def _same_but_rtl(model_rows, rtl_rows, rtl: str):
    """Rows equal apart from the rtl/backend/wall-clock fields, every request served."""
    assert len(model_rows) == len(rtl_rows) > 0
    for m, r in zip(model_rows, rtl_rows):
        assert "status" not in r, r.get("error")
        assert (m["rtl"], m["backend"], r["rtl"], r["backend"]) == ("", "model", rtl, "verilator")
        assert r["ok"] == r["requests"] == m["ok"]
        drop = {"rtl", "backend", "wall_seconds"}
        assert {k: v for k, v in r.items() if k not in drop} == \
            {k: v for k, v in m.items() if k not in drop}


@pytest.mark.hdl
@pytest.mark.parametrize("rtl", ["lance,disk", "disk"])
def test_rtl_devices_give_the_model_rows(image, rtl):
    _needs_verilator()
    args = (["cheetah", "ncsa"], 3, (1, 3))
    _same_but_rtl(_rows(image, args[0], "", args[1], args[2]),
                  _rows(image, args[0], rtl, args[1], args[2]), rtl)


@pytest.mark.slow
@pytest.mark.hdl
@pytest.mark.parametrize("rtl", ["lance,disk", "disk"])
def test_rtl_devices_give_the_model_rows_for_figure_b_at_30_requests(image, rtl):
    _needs_verilator()
    servers = ["cheetah", "ncsa"]
    _same_but_rtl(_rows(image, servers, "", 30), _rows(image, servers, rtl, 30), rtl)


@pytest.mark.hdl
def test_the_disk_rtl_dmas_through_the_machines_memory(image):
    _needs_verilator()
    k = Kernel()
    sim = Simulation(k, [server_spec("ncsa", image)], media={"ethernet": Segment(k, seed=1)},
                     rtl="disk")
    host = sim.hosts["server"]
    rz0 = host.extra["devices"]["rz0"]
    assert (rz0.impl, host.extra["devices"]["le0"].impl) == ("rtl", "model")
    got = {}

    async def go():
        await boot(host)
        t0 = k.now
        got["block"] = await host.blockdev.read(0, 8)
        got["ps"] = k.now - t0
    k.spawn(go(), name="read")
    try:
        sim.run()
    finally:
        sim.close()
    assert len(got["block"]) == 8 * host.blockdev.block_size and got["ps"] > 0
    dma = rz0.parts["dma"]
    assert dma.bytes_written >= len(got["block"]) and dma.bursts > 0
    assert host.memory.dma_bytes_written >= len(got["block"])    # the memory's own count


def _two_servers(image, rtl: tuple[str, ...], requests: int = 3) -> dict:
    """Two DECstations on one segment (Cheetah at 10.0.0.1, NCSA at 10.0.0.2), each with its
    own LANCE card and disk, each fetched from by a client of its own; every device of a kind
    in ``rtl`` runs as RTL, all in one RTL simulation. Returns what the run measured."""
    k = Kernel()
    seg = Segment(k, seed=5)
    specs = [server_spec("cheetah", image, seed=11),
             server_spec("ncsa", image, seed=12, name="server2", ip=bytes([10, 0, 0, 2])),
             client_spec(0, seed=13), client_spec(1, seed=14)]
    sim = Simulation(k, specs, media={"ethernet": seg}, rtl=rtl)
    hosts = list(sim.hosts.values())
    preload_arp(hosts)
    servers = {}

    async def main():
        for name, server in (("server", "cheetah"), ("server2", "ncsa")):
            await boot(sim.hosts[name])
            servers[name] = paper.server_factory(server)(sim.hosts[name])
            await servers[name].start()
        http = [HttpClient(sim.hosts["client0"], bytes([10, 0, 0, 1]), "/doc1024", requests),
                HttpClient(sim.hosts["client1"], bytes([10, 0, 0, 2]), "/doc1024", requests)]
        for t in [k.spawn(h.run(), name=h.name) for h in http]:
            await t
        return http
    task = k.spawn(main(), name="two-servers")
    try:
        sim.run()
    finally:
        sim.close()
    assert task.done and task.exception is None, task.exception
    return {"records": [[(r.start, r.end, r.status, r.body_bytes) for r in h.records]
                        for h in task.result],
            "stats": {n: s.stats() for n, s in servers.items()},
            "cpu": {n: {c: s.ps for c, s in h.cpu.report().by_category.items()}
                    for n, h in sim.hosts.items()},
            "segment": (seg.stats.frames, seg.stats.collisions, seg.stats.busy_ps),
            "instances": sim.rtl.instances if sim.rtl else []}


@pytest.mark.hdl
def test_two_machines_each_with_its_card_in_rtl_give_the_model_run(image):
    _needs_verilator()
    model = _two_servers(image, ())
    rtl = _two_servers(image, ("lance",))
    assert rtl.pop("instances") == ["server_le0", "server2_le0"] and not model.pop("instances")
    assert all(s == 200 for rs in model["records"] for *_, s, _ in rs)
    assert rtl == model


def test_closing_a_simulation_closes_the_disk_image_it_opened_but_not_one_it_was_given(image):
    """A disk image named by its path is opened by the attachment and closed with the
    simulation (a sweep runs hundreds of points in one worker: one file descriptor each would
    run out); an image the caller opened is the caller's to close."""
    from hw.disk.image import DiskImage

    k = Kernel()
    sim = Simulation(k, [server_spec("ncsa", image)], media={"ethernet": Segment(k, seed=1)})
    opened = sim.hosts["server"].extra["devices"]["rz0"].parts["image"]
    assert opened._fd is not None
    sim.close()
    assert opened._fd is None
    sim.close()                                     # idempotent
    with DiskImage.open(image) as mine:
        k = Kernel()
        spec = server_spec("ncsa", mine)
        sim = Simulation(k, [spec], media={"ethernet": Segment(k, seed=1)})
        sim.close()
        assert mine._fd is not None
        assert len(mine.read(0)) == mine.block_size
