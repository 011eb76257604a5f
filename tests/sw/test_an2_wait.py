"""A library OS on Aegis sends from the task that sends, not from a thread of its own.

Found over the AN2 (issue 18's sweeps: Cheetah at 10 KiB x 4 clients waited with its CPU
idle and did not speed up with its clock): the stack queued every frame for its transmit task,
whose system call then waited for the CPU behind the kernel's receive task, and that task
keeps the CPU while frames are queued for it. A reply made in one frame's upcall left only
after every frame queued behind that one had been upcalled (up to half a millisecond at 20
MHz, the link idle meanwhile). ExOS's TCP makes the transmit system call where it runs.
"""
from __future__ import annotations

from sim.cpu import CPU, PROTOCOL
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as AEGIS
from sw.exokernel import Aegis
from sw.libos.net import NetStack, ether, ipv4
from sw.libos.net.aegis_env import AegisNetwork

MAC = "02:00:00:00:00:01"
PEER = "10.0.0.2"
PEER_MAC = "02:00:00:00:00:02"


class Card:
    """A card that records who hands it each frame, and when."""

    def __init__(self, kernel: Kernel, sends_in_caller: bool | None = None):
        self.kernel, self.mac, self.receiver = kernel, ether.mac(MAC), None
        self.sent: list[tuple[int, str, bytes]] = []
        if sends_in_caller is not None:
            self.sends_in_caller = sends_in_caller

    def attach(self, fn) -> None:
        self.receiver = fn

    async def send(self, frame) -> None:
        self.sent.append((self.kernel.now, self.kernel.current.name, bytes(frame)))


def _frame(i: int) -> bytes:
    return ether.build(ether.mac(MAC), ether.mac(PEER_MAC), 0x88B5, bytes([i]) * 46)


def _aegis_rig(n: int):
    """An Aegis host whose environment answers each of ``n`` frames, queued at once, with a
    datagram; returns (card, upcall start times, stack)."""
    k = Kernel()
    cpu = CPU(k, AEGIS, "cpu")
    card = Card(k)
    aegis = Aegis(Memory(k, 1 << 20, profile=AEGIS), cpu=cpu, name="host")
    aegis.bind_netdev(card)
    net = AegisNetwork(aegis, "host.app", card.mac)
    stack = NetStack(k, net, "10.0.0.1", cpu=cpu, name="host.app")
    stack.add_arp(PEER, PEER_MAC)
    upcalls = []

    async def on_frame(frame: bytes) -> None:
        upcalls.append(k.now)
        await cpu.charge(2000, PROTOCOL)                  # the frame's own processing
        await stack.ip_output(ipv4.addr(PEER), 17, b"reply" + frame[14:15])
    net.env.on_frame = on_frame
    aegis.claim_default(net.env)                          # every frame is the environment's
    for i in range(n):
        card.receiver(_frame(i))
    k.run(until=10**10)
    return card, upcalls, stack


def test_a_reply_made_in_an_upcall_reaches_the_card_before_the_next_upcall():
    card, upcalls, stack = _aegis_rig(3)
    assert stack.sends_in_caller
    assert len(upcalls) == 3 and len(card.sent) == 3
    for i in range(2):
        assert card.sent[i][0] <= upcalls[i + 1], (card.sent, upcalls)
    assert [f[-1] for _, _, f in card.sent] == [0, 1, 2]
    assert {who for _, who, _ in card.sent} == {"host.rx"}   # the kernel's receive task
    assert stack.stats.frames_out == 3


def test_frames_queued_for_the_transmit_task_are_not_overtaken():
    k = Kernel()
    card = Card(k, sends_in_caller=True)
    stack = NetStack(k, card, "10.0.0.1", name="s")
    stack.add_arp(PEER, PEER_MAC)

    async def main() -> None:
        stack._queue_frame(b"queued first")         # e.g. an ARP reply: the transmit task's
        await stack.ip_output(ipv4.addr(PEER), 17, b"then this")
        await stack.ip_output(ipv4.addr(PEER), 17, b"and this")
    k.spawn(main(), name="app")
    k.run(until=10**9)
    assert [f for _, _, f in card.sent][0] == b"queued first"
    assert [f.endswith(b"then this") for _, _, f in card.sent[1:]] == [True, False]
    assert card.sent[2][2].endswith(b"and this")
    assert stack._tx_backlog == 0 and not stack._tx_busy


def test_a_card_that_takes_sends_in_its_own_task_keeps_the_transmit_task():
    # The BSD clients' and Ultrix's interfaces: ip_output queues for the transmit task, as
    # before (their sends are ip_output's queue and the driver's start routine).
    k = Kernel()
    card = Card(k)
    stack = NetStack(k, card, "10.0.0.1", name="s")
    stack.add_arp(PEER, PEER_MAC)
    k.spawn(stack.ip_output(ipv4.addr(PEER), 17, b"x"), name="app")
    k.run(until=10**9)
    assert not stack.sends_in_caller
    assert [who for _, who, _ in card.sent] == ["s.tx"]
