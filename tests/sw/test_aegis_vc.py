"""Aegis owns the AN2 card: VCs bound to environments, DMA only to and from their own pages,
checked by the kernel and again by the card's owner tag; received PDUs demultiplexed by VC.

The machines: a server under Aegis with an AN2 card (no disk) and two clients on AN2, from
serveros.machines, booted; the attacks are environments of the server's kernel."""
from __future__ import annotations

import pytest

from hw.an2.registers import VcEntry
from serveros.machines import client_spec, network_media, server_spec
from serveros.simulation import Simulation
from sim.kernel import Kernel
from sim.memory import MemoryAccessError
from sim.time import MS
from sw.boot import boot
from sw.exokernel import BindingError
from sw.libos.net.atm import LLC_SNAP_IP, build_frame
from sw.libos.net.gather import Gather, PhysRef

VC0, VC1 = 110, 111          # the server's VCs to client0 and client1 (the PVC plan)
TO_SERVER = 101              # every client's VC to the server


class Rig:
    """The booted machines, the kernel's two environments ``a`` and ``b`` with a page each,
    and what the clients received."""

    def __init__(self):
        k = self.k = Kernel()
        specs = [server_spec("static", None, network="an2", clients=2),
                 client_spec(0, network="an2"), client_spec(1, network="an2")]
        self.net = network_media(k, specs, "an2", seed=1)["atm"]
        self.sim = Simulation(k, specs, media={"atm": self.net})
        self.server, *self.clients = self.sim.hosts.values()
        self.got: dict[str, list[bytes]] = {c.name: [] for c in self.clients}
        self.run(self._boot())
        ae = self.aegis = self.server.extra["aegis"]
        self.upcalls: dict[str, list[bytes]] = {"a": [], "b": []}
        self.a = ae.create_env("a", on_frame=self._upcall("a"))
        self.b = ae.create_env("b", on_frame=self._upcall("b"))
        self.page_a = ae.page_addr(ae.alloc_pages(self.a, 1)[0])
        self.page_b = ae.page_addr(ae.alloc_pages(self.b, 1)[0])
        ae.write(self.a, self.page_a, b"A" * 4096)
        ae.write(self.b, self.page_b, b"B" * 4096)
        self.driver = self.server.extra["drivers"]["an0"]
        self.card = self.server.extra["devices"]["an0"].parts["model"]

    async def _boot(self):
        for h in self.sim.hosts.values():
            await boot(h)
        for c in self.clients:
            c.netdev.attach(self.got[c.name].append)

    def _upcall(self, name):
        async def on_frame(frame):
            self.upcalls[name].append(frame)
        return on_frame

    def run(self, coro):
        """Run ``coro`` and 5 ms more; its result, or the exception it raised."""
        out = []

        async def catch():
            try:
                out.append(await coro)
            except Exception as e:          # the refusal under test
                out.append(e)
        t = self.k.spawn(catch())
        self.k.run(until=self.k.now + 5 * MS)
        assert t.done and len(out) == 1
        return out[0]

    def cells_sent(self) -> int:
        return self.net.stats()["stations"]["server"]["cells_sent"]


@pytest.fixture
def rig():
    return Rig()


def ip_pdu(payload: bytes) -> bytes:
    return LLC_SNAP_IP + payload


def test_a_bound_vc_carries_its_environments_owner_tag_into_the_card(rig):
    tag = rig.run(rig.aegis.bind_vc(rig.a, VC0))
    assert tag == rig.aegis.owner_tag(rig.a) != 0
    assert rig.aegis.vcs[VC0] == "a"
    entry = VcEntry.from_int(rig.card.vc_table[VC0])
    assert entry.enable and entry.owner == tag
    assert VcEntry.from_int(rig.card.vc_table[VC1]).owner == 0      # still the kernel's


def test_binding_a_vc_another_environment_owns_is_refused_naming_it(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    err = rig.run(rig.aegis.bind_vc(rig.b, VC0))
    assert isinstance(err, BindingError) and "'b'" in str(err) and "'a'" in str(err)
    assert rig.aegis.vcs[VC0] == "a"
    assert VcEntry.from_int(rig.card.vc_table[VC0]).owner == rig.aegis.owner_tag(rig.a)
    with pytest.raises(ValueError, match="no PVC"):
        rig.aegis.claim_vc(rig.a, 999)


def test_sending_on_another_environments_vc_is_refused_and_nothing_moves(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    before = rig.cells_sent()
    err = rig.run(rig.aegis.transmit(rig.b, build_frame(VC0, ip_pdu(b"spoof"))))
    assert isinstance(err, BindingError) and "VC 110" in str(err) and "'a'" in str(err)
    assert rig.aegis.transmits_refused == 1 and rig.b.frames_sent == 0
    assert rig.cells_sent() == before and rig.driver.stats.tx_pdus == 0
    assert rig.got["client0"] == []


def test_naming_another_environments_page_in_a_send_is_refused_and_nothing_moves(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    before = rig.cells_sent()
    steal = build_frame(VC0, Gather([ip_pdu(b"hdr"), PhysRef(rig.page_b, 64)]))
    err = rig.run(rig.aegis.transmit(rig.a, steal))
    assert isinstance(err, MemoryAccessError)
    assert "'a'" in str(err) and "owned by 'b'" in str(err)
    assert rig.aegis.transmits_refused == 1 and rig.cells_sent() == before
    assert rig.got["client0"] == [] and rig.driver.stats.tx_copied_bytes == 0


def test_a_send_from_its_own_pages_goes_by_dma_the_cpu_copies_only_the_header(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    frame = build_frame(VC0, Gather([ip_pdu(b"hdr"), PhysRef(rig.page_a, 100)]))
    assert rig.run(rig.aegis.transmit(rig.a, frame)) is None
    assert rig.got["client0"] == [build_frame(TO_SERVER, ip_pdu(b"hdr" + b"A" * 100))]
    assert rig.driver.stats.tx_copied_bytes == len(ip_pdu(b"hdr"))
    assert rig.driver.stats.tx_pdus == 1 and rig.driver.stats.dma_faults == 0


def test_the_card_refuses_a_descriptor_that_bypasses_the_kernel(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    before = rig.cells_sent()
    # The driver posts a descriptor on a's VC naming b's page, as if the kernel's check
    # were skipped: the card DMAs with a's owner tag, and the memory refuses.
    assert rig.run(rig.driver.send(VC0, [(rig.page_b, 64)])) is None
    st = rig.driver.stats
    assert (st.dma_faults, st.tx_errors, st.tx_pdus) == (1, 1, 0)
    assert rig.cells_sent() == before and rig.got["client0"] == []
    # Its own page on the same VC still goes.
    rig.run(rig.driver.send(VC0, [(rig.page_a, 64)]))
    assert rig.got["client0"] == [build_frame(TO_SERVER, b"A" * 64)]


def test_received_pdus_go_to_the_owner_of_their_vc(rig):
    rig.run(rig.aegis.bind_vc(rig.a, VC0))
    c0, c1 = (c.extra["drivers"]["an0"] for c in rig.clients)
    rig.run(c0.send(TO_SERVER, ip_pdu(b"to a")))
    rig.run(c1.send(TO_SERVER, ip_pdu(b"to nobody")))
    assert rig.upcalls == {"a": [build_frame(VC0, ip_pdu(b"to a"))], "b": []}
    assert rig.aegis.frames_unclaimed == rig.aegis.frames_dropped == 1
