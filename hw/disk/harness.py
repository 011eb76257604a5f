"""The disk controller's co-simulation harness: the RTL with its memory and media ports bridged.

:class:`DiskHarness` is what an HDL simulator runs for an RTL disk (``DISK.harness``): the
:class:`hw.disk.gateware.DiskController` with

* its host bus (``bus__*``) and ``irq`` as the harness's own ports, joined to the machine by the
  generic binder (:mod:`sim.bindings.binder`);
* its straps (``strap_capacity``: the image's block count, ``strap_mem_size``: the machine's
  memory size) as input ports, driven once before the run (``hw.disk.attach``): one build
  serves every image and memory size of a drive;
* its DMA master port on a :class:`hw.dma.DmaBridge` (submodule ``dma``, ports ``dma_*``, words
  in ``dma.mem``), served by :class:`sim.bindings.dma.DmaServer` on the machine's memory. The
  bridge's fixed burst times are the controller's (:data:`~hw.disk.registers.DMA_WRITE_BURST_CYCLES`
  into memory, :data:`~hw.disk.registers.DMA_READ_BURST_CYCLES` from it), the 3MIN's memory;
  a slower memory lengthens a burst as it does the model's; a burst the memory refuses ends
  with the bus's ``err`` (the controller then ends its command with DmaFault);
* its :class:`~hw.disk.gateware.MediaPort` on a second :class:`~hw.dma.DmaBridge` (submodule
  ``media``, ports ``media_*``, words in ``media.mem``) whose fixed time is the minimum, so
  each transaction is acknowledged from the first edge after the one that samples its request,
  a word per cycle (the cocotb bench's media server): Header, Info and Commit are one word, a
  Read or Write block 128 words through ``media.mem``. The request's fields (``media_op``,
  the block in ``media_addr``, ``media_cmd_write`` and ``media_blocks``: the command's kind and
  COUNT, ``media_time_ps``) are the controller's; the reply fields (``media_hit`` ..
  ``media_slot``) go straight to the controller. The drive firmware
  (:class:`hw.disk.gateware.DriveFirmware`) answers in Python, once per transaction
  (``hw.disk.attach``).

Every port Python watches changes at transaction rate: a DMA burst, a media transaction, an
interrupt, a bus access.
"""
# No `from __future__ import annotations`: wiring.Component reads the member annotations.
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.bus import HostBus
from hw.dma import DmaBridge, bridge_ports, connect_bridge

from .gateware import BLOCK_WORDS, STRAPS, DiskController, MediaOp, MediaPort
from .mechanism import DiskParams
from .registers import (ADDR_WIDTH, DATA_WIDTH, DMA_BURST_WORDS, DMA_READ_BURST_CYCLES,
                        DMA_WRITE_BURST_CYCLES)

__all__ = ["DiskHarness", "MEDIA_REPLY"]

#: The media port's reply fields, driven by Python (harness ports ``media_<name>``).
MEDIA_REPLY = ("hit", "stream", "n_cached", "walk_lbn", "free_ps", "start_ps", "cylinder",
               "surface", "slot")


class DiskHarness(wiring.Component):
    """A :class:`DiskController` with its DMA and media ports bridged (module docstring).

    Parameters
    ----------
    params : DiskParams, optional
        The drive (default: the DEC RZ26).

    Members
    -------
    bus : In(HostBus(addr_width=4, data_width=32))
    irq : Out(1)
    strap_capacity, strap_mem_size : In
        CAPACITY in blocks and the host memory size in bytes (the controller's command-time
        OutOfRange and DmaFault checks), held constant while it runs.
    dma_* :
        The DMA bridge's ports (see :class:`hw.dma.DmaBridge`).
    media_* :
        The media bridge's ports, the request's fields (``media_op``, ``media_cmd_write``,
        ``media_blocks``, ``media_time_ps``) and the reply fields :data:`MEDIA_REPLY`.

    Raises
    ------
    TypeError, ValueError
        As :class:`DiskController`.
    """

    def __init__(self, *, params: DiskParams | None = None):
        self.ctrl = DiskController(params=params, straps=True)
        self.dma = DmaBridge(write_cycles=DMA_WRITE_BURST_CYCLES,
                             read_cycles=DMA_READ_BURST_CYCLES, depth=DMA_BURST_WORDS,
                             features={"err"})
        # Fixed time 2: the first word is sampled at the second edge after the request's.
        self.media = DmaBridge(write_cycles=2, read_cycles=2, depth=BLOCK_WORDS)
        port = MediaPort().members
        members = {
            "bus": In(HostBus(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)),
            "irq": Out(1),
            **STRAPS,
            **bridge_ports("dma_", 32, DMA_BURST_WORDS),
            **bridge_ports("media_", 32, BLOCK_WORDS),
            "media_op": Out(port["op"].shape), "media_cmd_write": Out(1),
            "media_blocks": Out(port["count"].shape),
            "media_time_ps": Out(port["time_ps"].shape),
        }
        for name in MEDIA_REPLY:
            members[f"media_{name}"] = In(port[name].shape)
        super().__init__(members)

    @property
    def params(self) -> DiskParams:
        return self.ctrl.params

    def elaborate(self, platform) -> Module:
        m = Module()
        ctrl, dma, media = self.ctrl, self.dma, self.media
        m.submodules.ctrl = ctrl
        m.submodules.dma = dma
        m.submodules.media = media
        wiring.connect(m, wiring.flipped(self.bus), ctrl.bus)
        m.d.comb += [self.irq.eq(ctrl.irq), *(getattr(ctrl, name).eq(getattr(self, name))
                                               for name in STRAPS)]
        wiring.connect(m, ctrl.dma, dma.dma)
        connect_bridge(m, self, dma, "dma_")

        # The media port as a word bus: Read and Write move a block, the others one word; a
        # Write gives words to the server (as a device-to-memory DMA burst does).
        p, b = ctrl.media, media.dma
        block = (p.op == MediaOp.Read) | (p.op == MediaOp.Write)
        m.d.comb += [b.req.eq(p.req), b.write.eq(p.op == MediaOp.Write), b.addr.eq(p.lbn),
                     b.count.eq(Mux(block, BLOCK_WORDS, 1)), b.w_data.eq(p.w_data),
                     p.ack.eq(b.ack), p.r_data.eq(b.r_data),
                     self.media_op.eq(p.op), self.media_cmd_write.eq(p.write),
                     self.media_blocks.eq(p.count),
                     self.media_time_ps.eq(p.time_ps)]
        m.d.comb += [getattr(p, name).eq(getattr(self, f"media_{name}")) for name in MEDIA_REPLY]
        connect_bridge(m, self, media, "media_")
        return m
