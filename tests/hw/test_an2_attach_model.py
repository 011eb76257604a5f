"""The AN2 card's device kind (hw/an2/attach.py) as its model, and the ATM network machines
share (sim/media/atm_net.py)."""
from __future__ import annotations

import io

import pytest

from hw.an2.attach import AN2, DEFAULT_ESI, an2_params
from hw.an2.model import An2Model
from hw.an2.registers import WINDOW_SIZE
from serveros.devices import DEVICE_KINDS
from serveros.machines import bare
from serveros.simulation import Simulation
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.atm_net import AtmNetwork
from sim.media.pcap import LINKTYPE_SUNATM, PcapNgWriter, read_pcapng
from sim.time import MS
from sw.drivers.an2 import An2Driver

BASE = 0x1000_0000


def spec(**params) -> DeviceSpec:
    return DeviceSpec("an2", "an0", BASE, params)


def test_the_kind_is_registered_with_its_window_and_clock():
    assert DEVICE_KINDS["an2"] is AN2 and AN2.kind == "an2"
    assert AN2.window == WINDOW_SIZE and AN2.clock.period == 80_000       # 12.5 MHz
    p = an2_params(spec(pvcs={"10.0.0.2": 102}, station="sw-port-a", mtu=1500))
    assert p == {"station": "sw-port-a", "esi": DEFAULT_ESI, "pvcs": {bytes([10, 0, 0, 2]): 102},
                 "mtu": 1500}


@pytest.mark.parametrize("params, what", [
    ({"colour": 1}, "unknown parameter 'colour'"),
    ({"station": ""}, "station must be"),
    ({"esi": "08:00"}, "esi"),
    ({"mtu": 9181}, "mtu must be"),
    ({"mtu": True}, "mtu must be"),
    ({"pvcs": [1]}, "pvcs must map"),
    ({"pvcs": {"10.0.0": 40}}, "not an IPv4 address"),
    ({"pvcs": {"10.0.0.2": 5}}, "32 .. 1023"),
    ({"pvcs": {"10.0.0.2": 40, "10.0.0.3": 40}}, "VCI 40 is given to two peers"),
])
def test_a_bad_parameter_is_a_one_line_error_naming_it(params, what):
    with pytest.raises(ValueError, match=what):
        AN2.check(spec(**params))
    with pytest.raises(ValueError, match="base must be a multiple"):
        AN2.check(DeviceSpec("an2", "an0", BASE + 4))


def test_the_model_needs_main_memory_and_works_without_a_network():
    k = Kernel()
    with pytest.raises(ValueError, match="needs main memory"):
        Simulation(k, [bare("m", [spec()])], media={})
    sim = Simulation(k, [bare("m", [spec()], memory_bytes=1 << 20)], media={})
    dev = sim.hosts["m"].extra["devices"]["an0"]
    assert isinstance(dev.target, An2Model) and dev.parts["link"] is None and dev.impl == "model"
    k.run(until=1)                  # let the card's engines start (no coroutine left unawaited)


def two_cards(pcap=None):
    """Two bare machines with an AN2 each on one AtmNetwork, PVC a:40 <-> b:50, drivers up."""
    k = Kernel()
    net = AtmNetwork(k, pcap=pcap)
    sim = Simulation(k, [bare(n, [spec()], memory_bytes=1 << 20) for n in "ab"],
                     media={"atm": net})
    net.pvc("a", "b", 40, 50)
    drivers = {}
    for n, vci in (("a", 40), ("b", 50)):
        h = sim.hosts[n]
        dev = h.extra["devices"]["an0"]
        drivers[n] = An2Driver(h.cpu, h.extra["bus"], BASE, h.memory, dev.irq,
                               region=(0x1000, An2Driver.layout_size()))

    async def up():
        for (n, d), vci in zip(drivers.items(), (40, 50)):
            await d.start()
            await d.open_vc(vci)
    t = k.spawn(up())
    k.run(until=MS)
    assert t.done and t.exception is None, t.exception
    return k, net, drivers


def test_two_cards_exchange_pdus_through_the_switch_with_the_vci_rewritten():
    k, net, d = two_cards()
    t = k.spawn(d["a"].send(40, b"over the switch" * 10))
    k.spawn(d["b"].send(50, b"back"))
    k.run(until=k.now + MS)
    assert t.done
    assert d["b"]._rxq.get_nowait() == (50, b"over the switch" * 10)
    assert d["a"]._rxq.get_nowait() == (40, b"back")
    st = net.stats()
    # 150 bytes and the 8-byte trailer are 4 cells; "back" is 1.
    assert st["cells_in"] == st["cells_out"] == 5 and st["drops"] == st["unroutable"] == 0
    assert st["stations"]["a"] == {"port": 0, "cells_sent": 4, "cells_received": 1,
                                   "pdus_captured": 0}


def test_the_network_refuses_bad_stations_and_routes():
    k = Kernel()
    net = AtmNetwork(k, ports=2)
    end = net.attach("a")
    assert net.end("a") is end and net.end("b") is not end
    with pytest.raises(ValueError, match="already attached"):
        net.attach("a")
    with pytest.raises(ValueError, match="ports are taken"):
        net.attach("c")
    with pytest.raises(ValueError, match="no station 'z'"):
        net.pvc("a", "z", 40, 50)
    with pytest.raises(ValueError, match="to itself"):
        net.pvc("a", "a", 40, 50)
    net.pvc("a", "b", 40, 50)
    with pytest.raises(ValueError, match="already routed"):
        net.pvc("a", "b", 40, 51)
    for bad in ({"ports": 0}, {"buffer_cells": True}, {"propagation_ps": -1}, {"pcap": "x"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AtmNetwork(k, **bad)


def test_every_link_of_the_network_is_captured_on_its_own_interface():
    buf = io.BytesIO()
    w = PcapNgWriter(buf)
    k, net, d = two_cards(pcap=w)
    k.spawn(d["a"].send(40, b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + b"x" * 100))
    k.run(until=k.now + MS)
    w.close()
    ifaces, pkts = read_pcapng(buf.getvalue())
    assert [(i["linktype"], i["name"]) for i in ifaces] == [(LINKTYPE_SUNATM, "an2sw.a"),
                                                            (LINKTYPE_SUNATM, "an2sw.b")]
    # Once on a's link (DTE -> switch, VCI 40), once on b's (switch -> DTE, VCI 50).
    assert [(p.interface, p.data[0], int.from_bytes(p.data[2:4], "big")) for p in pkts] == \
        [(0, 0x82, 40), (1, 0x02, 50)]
