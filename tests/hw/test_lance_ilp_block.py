"""The LANCE card built with the buffer-port pipe block (``ilp_pipes``): RTL against model.

One kernel program (tests/hw/test_lance_equivalence.py's backends: the model on the own
kernel, the RTL on Amaranth's simulator through sim.bindings) copies an Ethernet/IPv4/TCP
frame into the card's buffer and out again through windows of the block: a block write and
a block read (the driver's copy loops), single accesses at random phases, LANCE register
accesses in the middle of a window, an abandoned window, and each window's status and result
read right after its last access (the block's wait states). Both runs must give the same
trace (every access's completion time and value) and buffer memory; the results must be the
software pipes' and give scapy's TCP checksum.
"""
from __future__ import annotations

import random

import pytest

from hw.ilp.buffer_port_regs import CTL, LENGTH, RESULT, WSTART, Ctl, Status
from hw.lance.registers import ILP_OFFSET, RAP_OFFSET, RDP_OFFSET
from sw.libos.ilp.pipes import CKSUM, HSWAP16, internet_checksum
from buffer_port_stimulus import expected_results
from test_ilp_buffer_port import scapy_frame
from test_lance_equivalence import P, Run, assert_same, run_model, run_rtl

TX_BUF = 0x2000
OTHER_BUF = 0x3000              # the other windows: the frame stays as written
SEG_AT = 34                     # the TCP segment in the frame (Ethernet 14 + IPv4 20)


def _reg(r: int) -> int:
    return ILP_OFFSET + 4 * r


async def write_words(bus, addr: int, words) -> None:
    """The model's block write, or back-to-back single writes (the same timing) on the RTL's
    bus binding, which has none."""
    if hasattr(bus, "write_block"):
        await bus.write_block(addr, words)
    else:
        for i, w in enumerate(words):
            await bus.write(addr + 4 * i, w)


async def read_words(bus, addr: int, n: int) -> list[int]:
    """As :func:`write_words`, reading."""
    if hasattr(bus, "read_block"):
        return await bus.read_block(addr, n)
    return [await bus.read(addr + 4 * i) for i in range(n)]


def block_program(frame: bytes, seed: int, nres: int):
    """The program (see the module docstring) for ``frame``; logs ``(time, what)``."""
    def prog(k, bus, irq, receive, snapshot) -> Run:
        run = Run()
        rng = random.Random(seed)
        pad = frame + bytes(-len(frame) % 4)
        words = [int.from_bytes(pad[i:i + 4], "little") for i in range(0, len(pad), 4)]

        def log(what: str) -> None:
            run.trace.append((k.now, what))

        async def window(start: int, length: int, rx: bool) -> None:
            await bus.write(_reg(WSTART), start)
            await bus.write(_reg(LENGTH), length)
            await bus.write(_reg(CTL), int(Ctl.START | (Ctl.RX if rx else 0)))

        async def results(what: str) -> None:
            log(f"{what} status={await bus.read(_reg(CTL))}")
            for r in range(nres):
                log(f"{what} result{r}={await bus.read(_reg(RESULT + r)):#x}")

        async def host() -> None:
            await k.sleep(3 * P + 1234)
            # transmit, as the driver's copy loop: one block write of the whole frame
            await window(TX_BUF + SEG_AT, len(frame) - SEG_AT, rx=False)
            await write_words(bus, TX_BUF, words)
            await results("tx block")
            # single writes at random phases, a CSR read in the middle, odd window
            start, length = OTHER_BUF + 1 + rng.randrange(8), 3 + rng.randrange(40)
            await window(start, length, rx=False)
            for a in range(start & ~3, start + length, 4):
                await k.sleep(rng.randrange(4 * P))
                if rng.random() < 0.2:
                    await bus.write(RAP_OFFSET, 0)
                    log(f"CSR0={await bus.read(RDP_OFFSET):#x}")
                await bus.write(a, rng.getrandbits(32))
            await results("tx single")
            # receive: one block read, then single reads at random phases
            await window(TX_BUF + SEG_AT, len(frame) - SEG_AT, rx=True)
            got = await read_words(bus, TX_BUF + (SEG_AT & ~3), (len(pad) - (SEG_AT & ~3)) // 4)
            log(f"rx block read {len(got)} words")
            await results("rx block")
            await window(start, length, rx=True)
            for a in range(start & ~3, start + length, 4):
                await k.sleep(rng.randrange(4 * P))
                log(f"read {a:#x}={await bus.read(a):#x}")
            await results("rx single")
            # an abandoned window
            await window(OTHER_BUF, 40, rx=False)
            await write_words(bus, OTHER_BUF + 64, words[:3])    # outside: not fed
            await write_words(bus, OTHER_BUF, words[:3])
            await bus.write(_reg(CTL), 0)
            await results("abandoned")
            run.ram, run.transmitted = snapshot()

        k.spawn(host(), name="host")
        return run
    return prog


def _value(run: Run, what: str) -> int:
    (v,) = [int(w.rsplit("=", 1)[1], 0) for _, w in run.trace if w.startswith(what + "=")]
    return v


@pytest.mark.parametrize("pipes", [[CKSUM], [HSWAP16, CKSUM]], ids=["cksum", "hswap16+cksum"])
def test_lance_with_the_pipe_block_model_equals_rtl(pipes):
    raw, want = scapy_frame()
    zeroed = raw[:SEG_AT + 16] + b"\0\0" + raw[SEG_AT + 18:]
    nres = sum(len(p.results) for p in pipes)
    prog = block_program(zeroed, seed=5, nres=nres)
    model, card = run_model(prog, ilp_pipes=pipes)
    rtl = run_rtl(prog, ilp_pipes=pipes)
    assert_same(model, rtl)
    # the transmit window's sum with the pseudo-header's is scapy's checksum
    seg_len = len(raw) - SEG_AT
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 6]) + seg_len.to_bytes(2, "big")
    total = _value(model, "tx block result0")
    both = expected_results([CKSUM], total.to_bytes(2, "big")
                            + expected_results([CKSUM], pseudo)[0].to_bytes(2, "big"))
    assert internet_checksum(both[0]) == want
    for what in ("tx block", "tx single", "rx block", "rx single"):
        assert _value(model, f"{what} status") == Status.DONE | (
            Status.RX if what.startswith("rx") else 0)
    assert _value(model, "abandoned status") == 0
    assert _value(model, "abandoned result0") == 0
    segment = card.ram[TX_BUF + SEG_AT:TX_BUF + len(raw)]
    assert card.ilp.window_results[2] == expected_results(pipes, bytes(segment))
    assert card.ilp.window_results[0] == card.ilp.window_results[2]
    assert len(card.ilp.done_cycles) == 4


def test_lance_card_without_the_block_is_unchanged():
    """The default card has no block: its registers' words read 0, as any undecoded word."""
    def prog(k, bus, irq, receive, snapshot) -> Run:
        run = Run()

        async def host() -> None:
            await k.sleep(2 * P + 99)
            await bus.write(_reg(CTL), int(Ctl.START))
            run.trace.append((k.now, f"ctl={await bus.read(_reg(CTL))}"))
            run.ram, run.transmitted = snapshot()
        k.spawn(host(), name="host")
        return run
    model, card = run_model(prog)
    assert card.ilp is None
    assert_same(model, run_rtl(prog))
    assert model.trace[0][1] == "ctl=0"
