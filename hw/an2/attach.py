"""How the AN2 ATM card meets a machine: its bus window, its interrupt, its DMA and its fibre.

:data:`AN2` is the card's :class:`sim.devices.DeviceKind`. The card is a
:data:`hw.an2.registers.WINDOW_SIZE` window on the machine's bus (the TURBOchannel slot of
``spec.base``), an interrupt line, a DMA master into the machine's main memory
(``machine.memory``, whose page-ownership check sees the owner tag of every VC's DMA) and one
end of an OC-3c link: the card's station on the machine's ATM network
(``machine.media["atm"]``, a :class:`sim.media.atm_net.AtmNetwork`; without one the card has
no fibre and only its loopback works).

* The model is :class:`hw.an2.model.An2Model`.
* The RTL (``--rtl an2``) is :mod:`hw.an2.rtl_attach`'s: :meth:`AN2Kind.harness`,
  :meth:`AN2Kind.harness_key` and :meth:`AN2Kind.bind_rtl` call its functions of the same
  names (``harness(kind, spec)``, ``harness_key(kind, spec)``,
  ``bind_rtl(kind, machine, spec, access, driver)``), imported when first needed; a
  :class:`sim.bindings.BindingError` names what is missing until that module exists.

Parameters (:attr:`sim.devices.DeviceSpec.params`), all optional:

``station``
    The card's station name on the ATM network (default the machine's name).
``esi``
    The card's 6-byte IEEE address (bytes or ``"08:00:2b:..."``), the End System Identifier of
    its ATM address; the operating system reports it as the interface's hardware address.
    Default :data:`DEFAULT_ESI`.
``pvcs``
    The operating system's PVC table for classical IP over ATM (RFC 2225 with PVCs): a mapping
    of peer IPv4 address (``"10.0.0.10"`` or 4 bytes) to the VCI (32 .. NUM_VCS - 1; VCIs 0 to
    31 are reserved by the ATM Forum UNI) this machine uses to reach it.
``mtu``
    The IP MTU of the interface (68 .. 9180; default 9180, RFC 2225's default for classical IP
    over ATM).
"""
from __future__ import annotations

from typing import Any, Mapping

from sim.bindings import BindingError
from sim.bus import IrqLine
from sim.devices import Attached, DeviceKind, DeviceSpec, MachinePorts
from sim.media.ethernet import FrameError, mac as parse_mac
from sim.time import Clock

from . import timing as T
from .harness import MEMORIES
from .registers import NUM_VCS, WINDOW_SIZE

__all__ = ["AN2Kind", "AN2", "PARAMS", "DEFAULT_ESI", "DEFAULT_MTU", "MIN_PVC_VCI", "an2_params"]

#: The parameters an AN2 :class:`~sim.devices.DeviceSpec` may carry.
PARAMS = ("station", "esi", "pvcs", "mtu")
#: The default card address (DEC's OUI, as the LANCE card's default).
DEFAULT_ESI = bytes.fromhex("08002b0000a0")
#: RFC 2225 section 5: the default MTU of classical IP over ATM.
DEFAULT_MTU = 9180
#: VCIs 0 .. 31 of VPI 0 are reserved (ATM Forum UNI 3.1 / 4.0: signalling, OAM, ILMI).
MIN_PVC_VCI = 32


def _ip(spec_name: str, ip) -> bytes:
    if isinstance(ip, bytes) and len(ip) == 4:
        return ip
    if isinstance(ip, str):
        parts = ip.split(".")
        if len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts):
            return bytes(int(p) for p in parts)
    raise ValueError(f"an2 {spec_name}: pvcs: {ip!r} is not an IPv4 address")


def an2_params(spec: DeviceSpec) -> dict:
    """``spec``'s parameters, checked and normalised: ``{"station": str | None, "esi": bytes,
    "pvcs": {ip bytes: vci}, "mtu": int}``.

    Raises
    ------
    ValueError
        Naming the device and the bad parameter.
    """
    p = dict(spec.params)
    unknown = sorted(set(p) - set(PARAMS))
    if unknown:
        raise ValueError(f"an2 {spec.name}: unknown parameter {unknown[0]!r} "
                         f"(known: {', '.join(PARAMS)})")
    station = p.get("station")
    if station is not None and (not isinstance(station, str) or not station):
        raise ValueError(f"an2 {spec.name}: station must be a non-empty name, not {station!r}")
    try:
        esi = parse_mac(p.get("esi", DEFAULT_ESI))
    except FrameError as e:
        raise ValueError(f"an2 {spec.name}: esi: {e}") from None
    mtu = p.get("mtu", DEFAULT_MTU)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= DEFAULT_MTU:
        raise ValueError(f"an2 {spec.name}: mtu must be an integer 68 .. {DEFAULT_MTU}, "
                         f"not {mtu!r}")
    raw = p.get("pvcs", {})
    if not isinstance(raw, Mapping):
        raise ValueError(f"an2 {spec.name}: pvcs must map peer IP addresses to VCIs, "
                         f"not {raw!r}")
    pvcs: dict[bytes, int] = {}
    for ip, vci in raw.items():
        addr = _ip(spec.name, ip)
        if isinstance(vci, bool) or not isinstance(vci, int) or not MIN_PVC_VCI <= vci < NUM_VCS:
            raise ValueError(f"an2 {spec.name}: pvcs: the VCI of {ip} must be an integer "
                             f"{MIN_PVC_VCI} .. {NUM_VCS - 1}, not {vci!r}")
        if vci in pvcs.values():
            raise ValueError(f"an2 {spec.name}: pvcs: VCI {vci} is given to two peers")
        pvcs[addr] = vci
    return {"station": station, "esi": esi, "pvcs": pvcs, "mtu": mtu}


def _rtl(what: str):
    try:
        from . import rtl_attach
    except ImportError as e:
        raise BindingError(f"an2: the card's RTL binding (hw/an2/rtl_attach.py) is not "
                           f"there yet: {e}") from None
    fn = getattr(rtl_attach, what, None)
    if fn is None:
        raise BindingError(f"an2: hw/an2/rtl_attach.py has no {what}()")
    return fn


class AN2Kind(DeviceKind):
    """The AN2-style TURBOchannel DMA ATM card (see the module docstring)."""

    kind = "an2"
    window = WINDOW_SIZE
    #: The 12.5 MHz TURBOchannel clock (docs/an2_card.md, hw/an2/timing.py).
    clock = Clock.from_hz(T.CLOCK_HZ, "an2")
    #: The RTL harness's memories its binding uses (hw/an2/harness.py).
    memories = MEMORIES

    def check(self, spec: DeviceSpec) -> None:
        super().check(spec)
        an2_params(spec)

    def link_end(self, machine: MachinePorts, spec: DeviceSpec):
        """The card's end of its link to ``machine.media["atm"]`` (None without one): the
        station's link, made now unless the network was set up with it already."""
        net = machine.media.get("atm")
        if net is None:
            return None
        return net.end(an2_params(spec)["station"] or machine.name)

    # -- model --------------------------------------------------------------------------------
    def attach_model(self, machine: MachinePorts, spec: DeviceSpec) -> Attached:
        from .model import An2Model

        self.check(spec)
        if machine.memory is None:
            raise ValueError(f"{machine.name}: an2 {spec.name} is a DMA master and needs main "
                             f"memory (memory_bytes > 0)")
        name = f"{machine.name}.{spec.name}"
        irq = IrqLine(machine.kernel, f"{name}.irq")
        end = self.link_end(machine, spec)
        model = An2Model(machine.kernel, self.clock, memory=machine.memory, irq=irq, link=end)
        return Attached(spec, "model", model, irq,
                        parts={"model": model, "link": end, "params": an2_params(spec)})

    # -- RTL (hw/an2/rtl_attach.py) ---------------------------------------------------------------
    def harness(self, spec: DeviceSpec) -> Any:
        return _rtl("harness")(self, spec)

    def harness_key(self, spec: DeviceSpec) -> str:
        return _rtl("harness_key")(self, spec)

    def bind_rtl(self, machine: MachinePorts, spec: DeviceSpec, access: Any,
                 driver: Any) -> Attached:
        attached = _rtl("bind_rtl")(self, machine, spec, access, driver)
        attached.parts["params"] = an2_params(spec)
        return attached


#: The AN2 card's device kind.
AN2 = AN2Kind()
