"""Classical IP over ATM (sw/libos/net/atm.py): LLC/SNAP framing, the PVC table, the stack's
pluggable link layer and MTU, and the AN2 interface's scatter/gather sends."""
from __future__ import annotations

import pytest

from serveros.machines import bare
from serveros.simulation import Simulation
from sim.devices import DeviceSpec
from sim.kernel import Kernel
from sim.media.atm_net import AtmNetwork
from sim.time import MS
from sw.drivers.an2 import An2Driver
from sw.libos.net import NetStack
from sw.libos.net.atm import (HEADER_LEN, LLC_SNAP_IP, MTU, An2Interface, AtmLinkLayer, NoPvc,
                              build_frame, frame_vci)
from sw.libos.net.gather import Gather, PhysRef

A, B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
BASE = 0x1000_0000
REGION = (0x1000, An2Driver.layout_size())


# -- framing and the link layer -----------------------------------------------------------------
def test_llc_snap_header_is_rfc_2684s_for_ipv4():
    assert LLC_SNAP_IP == bytes([0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]) and MTU == 9180
    f = build_frame(300, b"x")
    assert f == bytes([0x02, 0, 1, 44]) + b"x" and frame_vci(f) == 300
    g = build_frame(7, Gather([b"h", PhysRef(0x2000, 10)]))
    assert isinstance(g, Gather) and frame_vci(g) == 7 and len(g) == 4 + 11
    with pytest.raises(ValueError, match="16-bit"):
        build_frame(1 << 16, b"")
    with pytest.raises(ValueError, match="shorter"):
        frame_vci(b"\x02\x00")


def test_the_link_layer_maps_ips_to_vcs_and_counts_what_it_drops():
    link = AtmLinkLayer({B: 40}, mtu=9180)
    assert link.frame(B, b"ip") == build_frame(40, LLC_SNAP_IP + b"ip")
    g = link.frame(B, Gather([b"ip", PhysRef(0x3000, 5)]))
    assert g.refs == (PhysRef(0x3000, 5),)
    assert g.flatten(lambda a, n: b"r" * n) == build_frame(40, LLC_SNAP_IP + b"ip" + b"r" * 5)
    with pytest.raises(NoPvc, match="10.0.0.9"):
        link.frame(bytes([10, 0, 0, 9]), b"ip")
    assert link.stats.no_pvc == 1 and link.stats.tx_pdus == 2
    assert link.parse(build_frame(40, LLC_SNAP_IP + b"data")) == (40, b"data")
    for bad, reason in ((b"\x02\x00\x00\x28\xaa", "short"),
                        (build_frame(40, b"\xfe\xfe\x03" + LLC_SNAP_IP[3:] + b"x"), "llc"),
                        (build_frame(40, LLC_SNAP_IP[:6] + b"\x86\xdd" + b"x"), "snap")):
        assert link.parse(bad) is None
    assert link.stats.rx_dropped == {"short": 1, "llc": 1, "snap": 1}
    with pytest.raises(ValueError, match="mtu"):
        AtmLinkLayer({}, mtu=9181)
    with pytest.raises(ValueError, match="4-byte"):
        AtmLinkLayer({"10.0.0.2": 40})


# -- two stacks over two cards ------------------------------------------------------------------
class Pair:
    """Two bare machines with an AN2 card each on one switch, PVC A<->B on VCIs 40/50, each
    with a driver, an An2Interface and a NetStack."""

    def __init__(self, **stack_kw):
        k = self.k = Kernel()
        self.net = AtmNetwork(k)
        ms = [bare(n, [DeviceSpec("an2", "an0", BASE)], memory_bytes=1 << 20) for n in ("a", "b")]
        sim = Simulation(k, ms, media={"atm": self.net})
        self.net.pvc("a", "b", 40, 50)
        self.ifaces, self.stacks = [], []
        for h, ip, peer, vci in ((sim.hosts["a"], A, B, 40), (sim.hosts["b"], B, A, 50)):
            dev = h.extra["devices"]["an0"]
            drv = An2Driver(h.cpu, h.extra["bus"], BASE, h.memory, dev.irq, region=REGION)
            iface = An2Interface(drv, esi=bytes(6), pvcs={peer: vci})
            stack = NetStack(k, iface, ip, cpu=h.cpu, name=h.name, **stack_kw)
            iface.attach(stack.input)
            self.ifaces.append(iface)
            self.stacks.append(stack)
        self.hosts = sim.hosts
        t = k.spawn(self._start())
        k.run(until=k.now + MS)
        assert t.done and t.exception is None, t.exception

    async def _start(self):
        for i in self.ifaces:
            await i.start()

    def run(self, coro, ms: int = 20):
        t = self.k.spawn(coro)
        self.k.run(until=self.k.now + ms * MS)
        assert t.done and t.exception is None, t.exception
        return t.result


def test_the_stack_takes_the_interfaces_link_layer_and_mtu():
    p = Pair()
    s = p.stacks[0]
    assert s.link_layer is p.ifaces[0].link_layer and s.mtu == 9180
    assert s.tcp._our_mss() == 9140                  # TCP's MSS follows the MTU
    assert NetStack(p.k, p.ifaces[0], A, mtu=1500).mtu == 1500
    with pytest.raises(ValueError, match="at most 9180"):
        NetStack(p.k, p.ifaces[0], A, mtu=9200)
    p.k.run(until=p.k.now + 1)      # the extra stack's tasks start (no coroutine unawaited)


def test_ping_over_atm_and_a_full_mtu_datagram():
    p = Pair()
    assert p.run(p.stacks[0].ping(B)) is not None
    big = bytes(range(256)) * 35                     # 8960 bytes of ICMP data: a 9K datagram
    assert p.run(p.stacks[0].ping(B, big)) is not None
    assert p.ifaces[1].link_layer.stats.rx_pdus == 2 and p.stacks[0].stats.arp_requests_sent == 0


def test_a_gather_datagram_goes_by_dma_only_its_headers_are_copied():
    p = Pair()
    mem = p.hosts["a"].memory
    mem.write(0x80000, b"D" * 3000)
    got = []
    p.ifaces[1].attach(got.append)
    p.run(p.stacks[0].ip_output(B, 253, Gather([b"head", PhysRef(0x80000, 3000)])))
    drv = p.ifaces[0].driver
    assert drv.stats.tx_copied_bytes == 20 + len(LLC_SNAP_IP) + 4      # IP header, LLC/SNAP, head
    assert len(got) == 1 and got[0][HEADER_LEN + 20:] == b"head" + b"D" * 3000


def test_a_pdu_that_is_not_llc_snap_ip_is_counted_and_dropped():
    p = Pair()
    p.run(p.ifaces[0].driver.send(40, b"\x00" * 30))
    s = p.stacks[1]
    assert s.link_layer.stats.rx_dropped == {"llc": 1} and s.stats.ip_in == 0
    p.run(p.stacks[0].ip_output(bytes([10, 0, 0, 7]), 253, b"nowhere"))
    assert p.stacks[0].link_layer.stats.no_pvc == 1
