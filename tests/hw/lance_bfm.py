"""The LANCE card's driver-side helpers for its cocotb benches (tests/hw/cocotb_lance.py).

:class:`LanceHost` is a small driver on top of the host bus's BFM
(:class:`bfm.cocotb_hostbus.HostBusDriver`): register ports (RAP/RDP), buffer memory, the init
block, the rings and the hand-over of descriptors, all in the byte offsets and formats of
:mod:`hw.lance.registers` (docs/lance_card.md). :class:`SmallLayout` places them in a small
test SRAM.

Only ``hw.lance.registers`` is imported from the design; everything else is the contract.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cocotb.triggers import Timer

from bfm.cocotb_hostbus import HostBusDriver
from hw.lance import registers as regs
from hw.lance.registers import (BUFFER_SIZE, CSR0, DESCRIPTOR_BYTES, INIT_BLOCK_BYTES,
                                RAM_OFFSET, RAP_OFFSET, RDP_OFFSET, RMD1, ROM_ESAR_OFFSET,
                                ROM_ESAR_STRIDE, ROM_OFFSET, TMD1, BufferLayout, Csr, InitBlock,
                                Mode, RingSizes, RxDescriptor, TxDescriptor)

__all__ = ["SmallLayout", "layout_for", "LanceHost", "COUNTERS_OFFSET", "COUNTER_NAMES"]

#: Read-only saturating counters, one per 32-bit word (docs/lance_card.md).
COUNTERS_OFFSET: int = regs.COUNTERS_OFFSET
#: Their names, :class:`hw.lance.registers.Counter` members in lower case, in word order.
COUNTER_NAMES: tuple[str, ...] = tuple(c.name.lower() for c in sorted(regs.Counter))


@dataclass(frozen=True)
class SmallLayout:
    """A :class:`~hw.lance.registers.BufferLayout` look-alike for buffer memories smaller than
    the 64/128 KiB the BSD drivers define (test builds with a 16 KiB SRAM).

    Same order as ``BufferLayout``: init block, receive ring, transmit ring, receive buffers,
    transmit buffers.

    Parameters
    ----------
    buffer_ram : int
        Buffer memory size in bytes.
    rx, tx : int
        Ring lengths (powers of two, 1..128).
    rx_size, tx_size : int
        Bytes per receive / transmit buffer.

    Raises
    ------
    ValueError
        If a ring length is not a power of two 1..128 or the layout does not fit.
    """

    buffer_ram: int
    rx: int = 4
    tx: int = 4
    rx_size: int = BUFFER_SIZE
    tx_size: int = BUFFER_SIZE
    rings: RingSizes = field(init=False)
    init_block: int = field(init=False, default=0)
    rdra: int = field(init=False)
    tdra: int = field(init=False)
    rx_buffers: tuple[int, ...] = field(init=False)
    tx_buffers: tuple[int, ...] = field(init=False)
    end: int = field(init=False)

    def __post_init__(self) -> None:
        for name in ("rx", "tx"):
            n = getattr(self, name)
            if not isinstance(n, int) or not 1 <= n <= 128 or n & (n - 1):
                raise ValueError(f"{name} ring length must be a power of two 1..128, not {n!r}")
        for name in ("rx_size", "tx_size"):
            n = getattr(self, name)
            if not isinstance(n, int) or not 8 <= n <= 4096 or n % 8:
                raise ValueError(f"{name} must be a multiple of 8 in 8..4096, not {n!r}")
        rdra = INIT_BLOCK_BYTES
        tdra = rdra + self.rx * DESCRIPTOR_BYTES
        rxb = tdra + self.tx * DESCRIPTOR_BYTES
        rx = tuple(rxb + i * self.rx_size for i in range(self.rx))
        txb = rxb + self.rx * self.rx_size
        tx = tuple(txb + i * self.tx_size for i in range(self.tx))
        end = txb + self.tx * self.tx_size
        if end > self.buffer_ram:
            raise ValueError(f"layout needs {end} bytes, more than buffer_ram={self.buffer_ram}")
        for name, value in (("rings", RingSizes(self.rx, self.tx)), ("rdra", rdra),
                            ("tdra", tdra), ("rx_buffers", rx), ("tx_buffers", tx), ("end", end)):
            object.__setattr__(self, name, value)

    def init(self, padr: bytes, mode: Mode = Mode(0), ladrf: int = 0) -> InitBlock:
        """The init block describing this layout."""
        return InitBlock(mode=mode, padr=padr, ladrf=ladrf, rdra=self.rdra, rlen=self.rx,
                         tdra=self.tdra, tlen=self.tx)

    def rmd(self, i: int) -> int:
        """Address of receive descriptor ``i``."""
        if not 0 <= i < self.rx:
            raise IndexError(f"receive descriptor {i} out of range 0..{self.rx - 1}")
        return self.rdra + i * DESCRIPTOR_BYTES

    def tmd(self, i: int) -> int:
        """Address of transmit descriptor ``i``."""
        if not 0 <= i < self.tx:
            raise IndexError(f"transmit descriptor {i} out of range 0..{self.tx - 1}")
        return self.tdra + i * DESCRIPTOR_BYTES


def layout_for(ram_bytes: int, **kwargs: int) -> BufferLayout | SmallLayout:
    """The BSD drivers' :class:`BufferLayout` for 64/128 KiB, else a :class:`SmallLayout`."""
    if ram_bytes in (64 * 1024, 128 * 1024) and not kwargs:
        return BufferLayout(ram_bytes)
    return SmallLayout(ram_bytes, **kwargs)


class LanceHost:
    """A driver-like helper that talks to the card only through the host bus.

    It keeps the host's view of the rings (next receive index, next transmit index) the way
    a LANCE driver does, hands descriptors to the card by setting OWN last (the second 32-bit
    write of a descriptor carries RMD1/TMD1), and reads everything back over the bus.

    Parameters
    ----------
    bus : HostBusDriver
        The bus to the card (byte offsets in its window).
    ram_bytes : int
        The card's buffer SRAM size.
    layout : BufferLayout or SmallLayout
        Where the init block, rings and buffers go.
    """

    def __init__(self, bus: HostBusDriver, *, ram_bytes: int,
                 layout: BufferLayout | SmallLayout) -> None:
        if layout.end > ram_bytes:
            raise ValueError(f"layout ends at {layout.end:#x}, beyond ram_bytes={ram_bytes:#x}")
        self.bus = bus
        self.ram_bytes = ram_bytes
        self.layout = layout
        self._rap: int | None = None
        self.rx_next = 0
        self.tx_next = 0

    # --- registers ---------------------------------------------------------------------------
    async def select(self, csr: Csr | int) -> None:
        """Point RAP at ``csr`` (skipped when the last value written there already does)."""
        csr = Csr(csr)
        if self._rap != csr:
            await self.bus.write(RAP_OFFSET, int(csr))
            self._rap = int(csr)

    async def csr_write(self, csr: Csr | int, value: int) -> None:
        """Write a CSR through RAP/RDP (RAP is written only when it changes)."""
        await self.select(csr)
        await self.bus.write(RDP_OFFSET, int(value) & 0xFFFF)
        if Csr(csr) == Csr.CSR0 and int(value) & CSR0.STOP:
            self._rap = None   # whether STOP keeps RAP is the card's business: select again

    async def csr_read(self, csr: Csr | int) -> int:
        """Read a CSR through RAP/RDP (the upper half of RDP must read 0)."""
        await self.select(csr)
        v = await self.bus.read(RDP_OFFSET)
        assert v >> 16 == 0, f"RDP upper half reads {v:#010x}"
        return v

    async def csr0(self) -> CSR0:
        """CSR0 as flags."""
        return CSR0(await self.csr_read(Csr.CSR0))

    async def rap_read(self) -> int:
        """The RAP word."""
        return await self.bus.read(RAP_OFFSET)

    async def counter(self, name: str) -> int:
        """One of :data:`COUNTER_NAMES`."""
        if name not in COUNTER_NAMES:
            raise ValueError(f"counter must be one of {COUNTER_NAMES}, not {name!r}")
        return await self.bus.read(COUNTERS_OFFSET + 4 * COUNTER_NAMES.index(name))

    async def counters(self) -> dict[str, int]:
        """All counters by name."""
        return {name: await self.counter(name) for name in COUNTER_NAMES}

    async def clear_counter(self, name: str) -> None:
        """Clear one counter (any write to its word)."""
        if name not in COUNTER_NAMES:
            raise ValueError(f"counter must be one of {COUNTER_NAMES}, not {name!r}")
        await self.bus.write(COUNTERS_OFFSET + 4 * COUNTER_NAMES.index(name), 0)

    async def rom_mac(self) -> bytes:
        """The station address from the ROM."""
        out = bytearray()
        for i in range(6):
            off = ROM_OFFSET + ROM_ESAR_OFFSET + ROM_ESAR_STRIDE * i
            word = await self.bus.read(off & ~3)
            out.append(word >> (8 * (off & 3)) & 0xFF)
        return bytes(out)

    # --- buffer memory -----------------------------------------------------------------------
    def _check_ram(self, addr: int, n: int) -> None:
        if not isinstance(addr, int) or not isinstance(n, int) or addr < 0 or n < 0 \
                or addr + n > self.ram_bytes:
            raise ValueError(f"buffer range {addr!r}+{n!r} is outside the "
                             f"{self.ram_bytes}-byte SRAM")

    async def read_ram(self, addr: int, n: int) -> bytes:
        """``n`` bytes of buffer memory from LANCE address ``addr``."""
        self._check_ram(addr, n)
        first, last = addr & ~3, (addr + n + 3) & ~3
        raw = bytearray()
        for a in range(first, last, 4):
            raw += struct.pack("<I", await self.bus.read(RAM_OFFSET + a))
        return bytes(raw[addr - first:addr - first + n])

    async def write_ram(self, addr: int, data: bytes) -> None:
        """Write ``data`` at LANCE address ``addr`` (read-modify-write at unaligned ends)."""
        self._check_ram(addr, len(data))
        if not data:
            return
        first, last = addr & ~3, (addr + len(data) + 3) & ~3
        buf = bytearray(last - first)
        if addr != first:
            buf[0:4] = struct.pack("<I", await self.bus.read(RAM_OFFSET + first))
        if (addr + len(data)) != last:
            buf[-4:] = struct.pack("<I", await self.bus.read(RAM_OFFSET + last - 4))
        buf[addr - first:addr - first + len(data)] = data
        for i in range(0, len(buf), 4):
            await self.bus.write(RAM_OFFSET + first + i, struct.unpack_from("<I", buf, i)[0])

    async def snapshot(self) -> bytes:
        """The whole buffer memory, read over the bus."""
        return await self.read_ram(0, self.ram_bytes)

    async def _write_descriptor(self, addr: int, raw: bytes) -> None:
        # Word 1 (RMD2/RMD3, TMD2/TMD3) first, word 0 (with OWN in RMD1/TMD1) last, so that the
        # card never sees an owned descriptor that is half written.
        w0, w1 = struct.unpack("<II", raw)
        await self.bus.write(RAM_OFFSET + addr + 4, w1)
        await self.bus.write(RAM_OFFSET + addr, w0)

    async def rmd(self, i: int) -> RxDescriptor:
        """Receive descriptor ``i``, read over the bus."""
        return RxDescriptor.unpack(await self.read_ram(self.layout.rmd(i), DESCRIPTOR_BYTES))

    async def tmd(self, i: int) -> TxDescriptor:
        """Transmit descriptor ``i``, read over the bus."""
        return TxDescriptor.unpack(await self.read_ram(self.layout.tmd(i), DESCRIPTOR_BYTES))

    async def give_rx(self, i: int, *, own: bool = True) -> None:
        """Hand receive descriptor ``i`` (and its buffer) to the card (``own``) or keep it."""
        size = getattr(self.layout, "rx_size", BUFFER_SIZE)
        d = RxDescriptor(addr=self.layout.rx_buffers[i], flags=RMD1.OWN if own else RMD1(0),
                         size=size)
        await self._write_descriptor(self.layout.rmd(i), d.pack())

    # --- bring-up ----------------------------------------------------------------------------
    async def init(self, padr: bytes, *, mode: Mode = Mode(0), ladrf: int = 0,
                   rx_owned: int | None = None, inea: bool = True,
                   timeout_ns: float = 200_000) -> InitBlock:
        """Stop the card, lay out the init block and rings, INIT and wait for IDON, then STRT.

        ``rx_owned`` receive descriptors (default: all) are handed to the card; the transmit
        ring starts host-owned. Returns the init block written.
        """
        lay = self.layout
        await self.csr_write(Csr.CSR0, CSR0.STOP)
        block = lay.init(padr, mode=mode, ladrf=ladrf)
        await self.write_ram(lay.init_block, block.pack())
        n_rx = lay.rings.rx if rx_owned is None else rx_owned
        for i in range(lay.rings.rx):
            await self.give_rx(i, own=i < n_rx)
        for i in range(lay.rings.tx):
            await self._write_descriptor(lay.tmd(i), TxDescriptor(addr=lay.tx_buffers[i]).pack())
        c1, c2 = regs.csr1_csr2(lay.init_block)
        await self.csr_write(Csr.CSR1, c1)
        await self.csr_write(Csr.CSR2, c2)
        await self.csr_write(Csr.CSR3, 0)
        await self.csr_write(Csr.CSR0, CSR0.INIT)
        waited = 0.0
        while not (c0 := await self.csr0()) & CSR0.IDON:
            await Timer(2_000, unit="ns")
            waited += 2_000
            if waited > timeout_ns:
                raise AssertionError(f"no IDON after INIT within {timeout_ns} ns (CSR0={c0!r})")
        await self.csr_write(Csr.CSR0, CSR0.IDON | CSR0.STRT | (CSR0.INEA if inea else 0))
        self.rx_next = self.tx_next = 0
        return block

    # --- transmit ----------------------------------------------------------------------------
    async def queue_tx(self, frame: bytes, *, flags: TMD1 = TMD1(0), demand: bool = True,
                       inea: bool = True) -> int:
        """Copy ``frame`` (no FCS) into the next transmit buffer, hand its descriptor over
        (STP|ENP|OWN) and write TDMD. Returns the descriptor index used."""
        lay = self.layout
        i = self.tx_next
        cur = await self.tmd(i)
        assert not cur.flags & TMD1.OWN, f"transmit descriptor {i} is still owned by the card"
        size = getattr(lay, "tx_size", BUFFER_SIZE)
        if not 1 <= len(frame) <= size:
            raise ValueError(f"frame must be 1..{size} bytes, not {len(frame)}")
        await self.write_ram(lay.tx_buffers[i], frame)
        d = TxDescriptor(addr=lay.tx_buffers[i], flags=TMD1.OWN | TMD1.STP | TMD1.ENP | flags,
                         size=len(frame))
        await self._write_descriptor(lay.tmd(i), d.pack())
        if demand:
            await self.csr_write(Csr.CSR0, CSR0.TDMD | (CSR0.INEA if inea else 0))
        self.tx_next = (i + 1) % lay.rings.tx
        return i

    async def queue_tx_chain(self, frame: bytes, sizes: list[int], *, own_last: bool = True,
                             demand: bool = True) -> list[int]:
        """Spread ``frame`` over ``len(sizes)`` consecutive transmit descriptors (STP on the
        first, ENP on the last) and hand them over, the first one last so the card never sees a
        half-built chain. With ``own_last=False`` the last descriptor is left to the host (a
        chain the card must reject with BUFF). Returns the indices used."""
        lay = self.layout
        if sum(sizes) != len(frame) or any(n < 1 for n in sizes):
            raise ValueError(f"sizes {sizes!r} must be positive and add up to {len(frame)}")
        if len(sizes) > lay.rings.tx:
            raise ValueError(f"a chain of {len(sizes)} does not fit a ring of {lay.rings.tx}")
        idx = [(self.tx_next + k) % lay.rings.tx for k in range(len(sizes))]
        pos = 0
        descs = []
        for k, (i, n) in enumerate(zip(idx, sizes)):
            await self.write_ram(lay.tx_buffers[i], frame[pos:pos + n])
            pos += n
            flags = TMD1.OWN if own_last or k < len(sizes) - 1 else TMD1(0)
            if k == 0:
                flags |= TMD1.STP
            if k == len(sizes) - 1:
                flags |= TMD1.ENP
            descs.append((i, TxDescriptor(addr=lay.tx_buffers[i], flags=flags, size=n)))
        for i, d in reversed(descs):
            await self._write_descriptor(lay.tmd(i), d.pack())
        if demand:
            await self.csr_write(Csr.CSR0, CSR0.TDMD | CSR0.INEA)
        self.tx_next = (idx[-1] + 1) % lay.rings.tx
        return idx

    # --- receive -----------------------------------------------------------------------------
    async def take_rx(self) -> tuple[int, RxDescriptor, bytes] | None:
        """If the descriptor at the host's receive index was returned by the card, read it and
        its bytes (MCNT of them, FCS included), hand it back and advance. None if still owned."""
        i = self.rx_next
        d = await self.rmd(i)
        if d.flags & RMD1.OWN:
            return None
        data = await self.read_ram(d.addr, d.mcnt) if d.flags & RMD1.ENP else b""
        await self.give_rx(i)
        self.rx_next = (i + 1) % self.layout.rings.rx
        return i, d, data

    async def take_frame(self) -> tuple[list[int], list[RxDescriptor], bytes] | None:
        """Like :meth:`take_rx` for a frame that may span several descriptors (chaining): from
        the host's receive index up to the one with ENP (or with ERR: a cut frame). Returns the
        indices, the descriptors as the card left them and the bytes (MCNT of them; for a cut
        frame, the full buffers), or None if the first descriptor is still owned."""
        lay = self.layout
        idx: list[int] = []
        descs: list[RxDescriptor] = []
        data = bytearray()
        i = self.rx_next
        while True:
            d = await self.rmd(i)
            if d.flags & RMD1.OWN:
                if not idx:
                    return None
                raise AssertionError(f"frame continues into RMD{i}, still owned by the card "
                                     f"(after {[hex(int(x.flags)) for x in descs]})")
            idx.append(i)
            descs.append(d)
            if d.flags & RMD1.ENP:
                data += await self.read_ram(d.addr, d.mcnt - len(data))
                break
            data += await self.read_ram(d.addr, d.size)
            if d.flags & RMD1.ERR or len(idx) == lay.rings.rx:
                break
            i = (i + 1) % lay.rings.rx
        for i in idx:
            await self.give_rx(i)
        self.rx_next = (idx[-1] + 1) % lay.rings.rx
        return idx, descs, bytes(data)
