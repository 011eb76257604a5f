"""The Python side of the disk harness's media bridge: the drive firmware answers the RTL.

:class:`hw.disk.harness.DiskHarness` bridges the controller's :class:`~hw.disk.gateware.MediaPort`
with a :class:`hw.dma.DmaBridge` (ports ``media_*``, block words in ``media.mem``).
:class:`MediaServer` answers each transaction once, at the edge at which the controller raises
its request (``media_req_toggle``), with :class:`hw.disk.gateware.DriveFirmware`:

* **Header**: the command's cache plan (:meth:`DriveFirmware.plan`) into the reply ports;
* **Info**: the block's cylinder, surface and slot;
* **Read**: the block's words into ``media.mem`` (the bridge hands them over a word a cycle);
* **Write**: the block's words, taken from ``media.mem`` when the bridge has them all
  (``media_data_toggle``), are staged in the drive's buffer;
* **Commit**: the staged block is written to the media (the image) now: the edge at which the
  controller sees the sector pass under the head, as the model writes it.

The bridge acknowledges from the edge after the one that samples the request, a word a
cycle: the timing of the cocotb bench's media server (tests/hw/cocotb_disk.py).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from sim.bindings import BindingError, HdlDriver

from .gateware import BLOCK_WORDS, DriveFirmware, MediaOp
from .harness import MEDIA_REPLY
from .mechanism import Op, Request

__all__ = ["MediaServer"]


class MediaServer:
    """Answer a :class:`~hw.disk.harness.DiskHarness`'s media transactions with ``firmware``.

    Parameters
    ----------
    access : SignalAccess
        The harness instance's ports and memories.
    driver : HdlDriver
        The simulation's driver (watches are registered here: construct before it runs).
    firmware : DriveFirmware
        The drive's firmware and media.
    prefix : str
        The media bridge's port prefix in the harness.
    mem : str
        The media bridge's block memory.
    name : str
        For messages.

    Attributes
    ----------
    transactions : collections.Counter
        Transactions served, by :class:`MediaOp` name.
    """

    def __init__(self, access: Any, driver: HdlDriver, firmware: DriveFirmware, *,
                 prefix: str = "media_", mem: str = "media.mem", name: str):
        if not isinstance(driver, HdlDriver):
            raise TypeError(f"driver must be a sim.bindings.HdlDriver, not {driver!r}")
        if not isinstance(firmware, DriveFirmware):
            raise TypeError(f"firmware must be a hw.disk.gateware.DriveFirmware, not {firmware!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        self.access = access
        self.driver = driver
        self.firmware = firmware
        self.name = name
        self._mem = mem
        port = access.port
        self._req = {n: port(prefix + n) for n in ("addr", "op", "cmd_write", "blocks", "time_ps",
                                                   "taken")}
        self._reply = {n: port(prefix + n) for n in MEDIA_REPLY}
        self._staging: int | None = None      # the block of the Write in flight
        self.transactions: Counter = Counter()
        driver.watch(port(prefix + "req_toggle"), self._on_request)
        driver.watch(port(prefix + "data_toggle"), self._on_data)

    def _on_request(self, _level: int) -> None:
        get, fw = self.driver.get, self.firmware
        try:
            op = MediaOp(get(self._req["op"]))
        except ValueError:
            raise BindingError(f"{self.name}: media transaction with unknown op "
                               f"{get(self._req['op'])}") from None
        lbn = get(self._req["addr"])
        self.transactions[op.name] += 1
        if op is MediaOp.Header:
            kind = Op.Write if get(self._req["cmd_write"]) else Op.Read
            plan = fw.plan(Request(kind, lbn, get(self._req["blocks"])), get(self._req["time_ps"]))
            self._answer(**{n: int(getattr(plan, n)) for n in MEDIA_REPLY if hasattr(plan, n)})
        elif op is MediaOp.Info:
            cylinder, surface, slot = fw.info(lbn)
            self._answer(cylinder=cylinder, surface=surface, slot=slot)
        elif op is MediaOp.Read:
            self.access.mem_write(self._mem, 0, fw.read_words(lbn))
        elif op is MediaOp.Write:
            self._staging = lbn
        else:
            fw.commit(lbn)

    def _answer(self, **fields: int) -> None:
        for n, v in fields.items():
            self.driver.set(self._reply[n], v)

    def _on_data(self, _level: int) -> None:
        lbn, self._staging = self._staging, None
        if lbn is None:
            raise BindingError(f"{self.name}: block words with no Write in flight")
        taken = self.driver.get(self._req["taken"])
        if taken != BLOCK_WORDS:
            raise BindingError(f"{self.name}: a Write of block {lbn} gave {taken} words, "
                               f"not {BLOCK_WORDS}")
        self.firmware.stage(lbn, self.access.mem_read(self._mem, 0, BLOCK_WORDS))

    def __repr__(self) -> str:
        return f"<MediaServer {self.name} {dict(self.transactions)}>"
