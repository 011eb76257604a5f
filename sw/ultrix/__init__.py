"""The Ultrix 4.3 model and its two web servers, the baselines of the experiment.

* :mod:`.kernel`: processes scheduled on the one CPU with context-switch charges, system
  calls, fork, sleep/wakeup, file calls through :mod:`sw.libos.fs`;
* :mod:`.sockets`: BSD sockets on a 4.3BSD-style TCP (linear PCB list with TIME_WAIT PCBs,
  no PCB cache: every segment scans the list, send-buffer retransmission copies, mbufs), loopback socket pairs;
* :mod:`.ncsa`: NCSA httpd 1.4.2 (pre-forked children, descriptor passing);
* :mod:`.harvest`: the Harvest httpd-accelerator (one process, select loop, memory cache) in
  front of NCSA on the same machine.

Entry points for the experiment (``sw/host.py`` is the contract)::

    server = make_ncsa(host)              # or make_harvest(host)
    await server.start()                  # mounts host.blockdev, listens on port 80
    server.stats()

docs/ultrix_model.md lists the behaviours modelled, their sources and the estimates.
"""
from __future__ import annotations

from .harvest import HarvestOptions, HarvestServer
from .kernel import Process, UltrixCosts, UltrixKernel
from .ncsa import NcsaOptions, NcsaServer
from .sockets import SocketLayer, UltrixMachine, UltrixNetStack, UltrixTcp, ultrix_tcp_config

__all__ = ["make_ncsa", "make_harvest", "NcsaOptions", "NcsaServer", "HarvestOptions",
           "HarvestServer", "UltrixMachine", "UltrixKernel", "UltrixCosts", "UltrixTcp",
           "UltrixNetStack", "SocketLayer", "Process", "ultrix_tcp_config"]

_MACHINE_KEYS = {"costs", "tcp_config", "cache_blocks"}


def _split(options: dict, cls) -> tuple[dict, dict]:
    fields = set(cls.__dataclass_fields__)
    mach = {k: v for k, v in options.items() if k in _MACHINE_KEYS}
    own = {k: v for k, v in options.items() if k in fields}
    bad = set(options) - _MACHINE_KEYS - fields
    if bad:
        raise TypeError(f"unknown option(s) {sorted(bad)!r}; {cls.__name__} takes "
                        f"{sorted(fields | _MACHINE_KEYS)!r}")
    return mach, own


def make_ncsa(host, **options) -> NcsaServer:
    """NCSA httpd 1.4.2 on the Ultrix machine ``host`` (a :class:`sw.host.Host`).

    ``options`` are :class:`NcsaOptions` fields (``start_servers``, ``port``, ...) or the
    machine's ``costs``, ``tcp_config`` and ``cache_blocks``.

    Raises
    ------
    TypeError
        For an unknown option or a host that is not a Host.
    ValueError
        For a bad option value, or a CPU profile lacking an Ultrix cost.
    """
    mach, own = _split(options, NcsaOptions)
    return NcsaServer(UltrixMachine(host, **mach), NcsaOptions(**own), name="ncsa")


def make_harvest(host, **options) -> HarvestServer:
    """The Harvest httpd-accelerator on port 80 of ``host``, with NCSA httpd on the same
    machine (port ``backend_port``, reached over the loopback) for misses.

    ``options`` are :class:`HarvestOptions` fields or the machine's ``costs``,
    ``tcp_config`` and ``cache_blocks``.

    Raises
    ------
    TypeError, ValueError
        As :func:`make_ncsa`.
    """
    mach, own = _split(options, HarvestOptions)
    return HarvestServer(UltrixMachine(host, **mach), HarvestOptions(**own), name="harvest")
