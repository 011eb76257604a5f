"""A library OS's network on Aegis: an environment that owns a TCP/IP stack's traffic.

On an Aegis machine the kernel owns the card's receive path
(:meth:`sw.exokernel.aegis.Aegis.bind_netdev`) and no application touches the card. A server
built on the library stack (:class:`~sw.libos.net.NetStack`) gets an environment
(:class:`AegisNetwork`) that is the stack's interface: its ``send`` is the kernel's transmit
system call (:meth:`~sw.exokernel.aegis.Aegis.transmit`), and :meth:`AegisNetwork.serve` makes
the stack the environment's frame handler and installs the filters a TCP server needs (TCP to
its port at its address, ARP), and claims the default binding (frames no filter accepts) so
the stack answers ICMP echoes and resets connection attempts to closed ports, as a host must
(RFC 1122 3.2.2.6, RFC 793 "Reset Generation"). ARP and the default binding go to the first
environment that asks; a second server on the machine goes without them (logged).

Over an ATM interface (classical IP over ATM, :mod:`sw.libos.net.atm`) the environment's
traffic is its VCs' (:meth:`sw.exokernel.aegis.Aegis.bind_vc`): :meth:`AegisNetwork.serve`
binds every PVC of the interface that no other environment owns, and the stack's link layer is
the interface's (``link_layer`` and ``mtu``), so its frames name their VC.
"""
from __future__ import annotations

import logging

from sw.exokernel import BindingError, FilterConflict, ethertype_filter, tcp_filter

log = logging.getLogger(__name__)

__all__ = ["AegisNetwork"]


class AegisNetwork:
    """One environment's network interface on Aegis (a :class:`~sw.libos.net.ether.NetDevice`).

    Parameters
    ----------
    aegis : sw.exokernel.aegis.Aegis
        The machine's kernel.
    name : str
        The environment's name (new on this kernel).
    mac : bytes
        The card's address (the frames the stack builds carry it).

    Raises
    ------
    ValueError, TypeError
        For a name the kernel refuses or a MAC that is not 6 bytes.
    RuntimeError
        If the kernel owns no network interface yet (the operating system binds it at boot,
        :mod:`sw.boot`); no environment is created then.
    """

    #: A send is the kernel's transmit system call, made by the library code that sends
    #: (its TCP, in a frame's upcall or the application's thread), as ExOS does: the stack
    #: hands each datagram over from the sending task (:class:`~sw.libos.net.NetStack`), not
    #: through a thread of its own that would wait for the CPU behind the kernel's receive
    #: task while frames are queued for it.
    sends_in_caller = True

    def __init__(self, aegis, name: str, mac: bytes):
        if not isinstance(mac, bytes) or len(mac) != 6:
            raise TypeError(f"mac must be 6 bytes, not {mac!r}")
        if aegis.netdev is None:
            raise RuntimeError(f"{name}: the host's Aegis has no network interface bound; "
                               f"the operating system binds it at boot (sw/boot.py)")
        self.aegis = aegis
        self.mac = mac
        #: The interface's link layer (None: Ethernet) and MTU, which the stack takes.
        self.link_layer = getattr(aegis.netdev, "link_layer", None)
        if self.link_layer is not None:
            self.mtu = aegis.netdev.mtu
        self.env = aegis.create_env(name)

    async def send(self, frame) -> None:
        """Send ``frame`` (bytes or a gather list): the kernel's transmit call on behalf of
        the environment."""
        await self.aegis.transmit(self.env, frame)

    def serve(self, stack, *, port: int, ip: bytes, ash: list | None = None,
              on_frame=None) -> None:
        """Upcall ``stack.process`` (or ``on_frame``, which must pass them on) with the
        environment's frames, which are TCP to ``port`` at ``ip``, ARP (unless another
        environment owns it) and the frames nobody owns (unless another environment took the
        default binding). ``ash``: an ASH program (:mod:`sw.exokernel.ash`) the kernel runs
        on each of the environment's frames before any upcall: installed with the TCP filter
        on Ethernet, on the environment's VCs over ATM (:meth:`Aegis.install_vc_ash`; it sees
        every PDU of them, so it must check what it takes).

        Raises
        ------
        FilterConflict
            If another environment owns TCP to ``port`` at ``ip`` (the message names it).
        AshRefused
            If the kernel's verifier refuses ``ash`` (nothing is installed).
        """
        aegis, env = self.aegis, self.env
        env.on_frame = stack.process if on_frame is None else on_frame
        if self.link_layer is not None:
            if ash is not None:
                aegis.install_vc_ash(env, ash)
            self._bind_vcs()
            return
        aegis.install_filter(env, tcp_filter(port, local_ip=ip), ash=ash)
        try:
            aegis.install_filter(env, ethertype_filter(0x0806))
        except FilterConflict:
            log.info("%s: ARP is owned by another environment", env.id)
        try:
            aegis.claim_default(env)
        except BindingError:
            log.info("%s: another environment handles unclaimed frames", env.id)

    def _bind_vcs(self) -> None:
        """Claim the interface's PVCs no other environment owns, now, and write the card's VC
        entries with the environment's tag in a task of their own (a kernel call each: the
        driver's register writes take simulated time)."""
        aegis, env = self.aegis, self.env
        mine = []
        for vci in sorted(self.link_layer.peers):
            try:
                if aegis.claim_vc(env, vci):
                    mine.append(vci)
            except BindingError as e:
                log.info("%s", e)

        async def program() -> None:
            for vci in mine:
                await aegis.program_vc(vci)
        #: The task writing the card's VC entries (None when there is nothing to write).
        self.binding = aegis.memory.kernel.spawn(program(), name=f"{env.id}.vcs") \
            if mine else None

    def __repr__(self) -> str:
        return f"<AegisNetwork {self.env.id}>"
