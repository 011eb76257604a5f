"""The buffer-port pipe block (hw/ilp/buffer_port.py) against its twin and the software pipes.

Amaranth's simulator drives :class:`hw.ilp.buffer_port_harness.BufferPortHarness` (the block
in front of a buffer SRAM) with random host sessions (tests/hw/buffer_port_stimulus.py:
random windows and odd lengths in both directions, random gaps, stray and out-of-order
accesses, abandoned windows), and :class:`~hw.ilp.buffer_port_harness.HarnessModel` must
give every access's ``ack`` in the same cycle with the same data and every ``done`` in the
same cycle; the results read back must be the software pipes' over the window's bytes
(:func:`hw.ilp.registers.run`; ``sw.libos.ilp.pipes``), and scapy's TCP checksum for a
frame written into the buffer.
"""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.ilp.buffer_port import BufferPort
from hw.ilp.buffer_port_harness import BufferPortHarness, HarnessModel
from hw.ilp.buffer_port_model import BufferPortModel
from hw.ilp.buffer_port_regs import (CTL, LENGTH, RESULT, WSTART, Ctl, Layout, Status,
                                     data_bytes)
from buffer_port_stimulus import (ADDR_WIDTH, REGS_ADDR, buffer_data, expected_results,
                                  layouts, random_session)
from sw.libos.ilp.pipes import CKSUM, HSWAP16, internet_checksum
from test_ilp_gateware import random_pipes

PIPE_LISTS = {"cksum": [CKSUM], "cksum+hswap16": [CKSUM, HSWAP16],
              "hswap16+cksum": [HSWAP16, CKSUM]}


def dropped(j: int) -> bool:
    """Whether the host drops access ``j``'s request in its ``ack`` cycle (HostBus allows it;
    the benches do it to every third access, driving junk on the address and data)."""
    return j % 3 == 1


def run_amaranth(harness: BufferPortHarness, accesses, *, tail: int = 40) -> dict:
    """Drive the harness's host bus with ``accesses`` (the harness module's convention; the
    request dropped in the ``ack`` cycle as :func:`dropped` says); return each access's
    ``(ack cycle, data read)`` and the cycles ``done`` was high."""
    host = harness.host
    got = {"acks": [], "done_cycles": []}

    async def bench(ctx):
        j, c, end = 0, 0, None
        q = accesses[0][3] if accesses else 0
        while end is None or c < end:
            assert c < 200_000, "bus stuck"
            on = j < len(accesses) and c >= q
            acked = on and ctx.get(host.ack)            # a register: this cycle's value
            if on:
                write, addr, data, _ = accesses[j]
                junk = acked and dropped(j)
                ctx.set(host.addr, REGS_ADDR if junk else addr)
                ctx.set(host.w_data, 0xFFFF_FFFF ^ data if junk else data)
                on = not junk
            ctx.set(host.w_en, on and write)
            ctx.set(host.r_en, on and not write)
            if acked:
                got["acks"].append((c, 0 if write else ctx.get(host.r_data)))
                j += 1
                if j < len(accesses):
                    q = c + 1 + accesses[j][3]
                else:
                    end = c + tail
            if ctx.get(harness.done):
                got["done_cycles"].append(c)
            await ctx.tick()
            c += 1

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def check_session(pipes, layout, accesses, **waits) -> tuple[dict, HarnessModel]:
    """Run ``accesses`` on the RTL and on the model; require the same acks, data and dones."""
    kw = dict(pipes=pipes, layout=layout, addr_width=ADDR_WIDTH, regs_addr=REGS_ADDR, **waits)
    got = run_amaranth(BufferPortHarness(**kw), accesses)
    model = HarnessModel(**kw)
    assert got["acks"] == model.run(accesses)
    assert got["done_cycles"] == model.block.done_cycles
    return got, model


def check_reads_against_software(pipes, layout, accesses, acks) -> int:
    """Replay the session on a plain RAM; after each status read, the window's results as read
    must be the software pipes' over the window's bytes (DONE, in order) or zeros (abandoned).
    Returns how many windows were checked against the software."""
    ram = np.zeros(1 << ADDR_WIDTH, dtype=np.uint32)
    nres = sum(len(p.results) for p in pipes)
    start = length = 0
    checked = 0
    for i, ((write, addr, data, _), (_, value)) in enumerate(zip(accesses, acks)):
        if write and addr < REGS_ADDR:
            ram[addr] = data
        elif write and addr == REGS_ADDR + WSTART:
            start = data
        elif write and addr == REGS_ADDR + LENGTH:
            length = data
        elif not write and addr == REGS_ADDR + CTL:
            status = Status(value)
            assert not status & Status.ARMED
            read = [v for _, v in acks[i + 1:i + 1 + nres]]
            if status & Status.ORDER:
                continue
            if status & Status.DONE:
                window = buffer_data(layout, ram)[start:start + length]
                assert tuple(read) == expected_results(pipes, window)
                checked += 1
            else:
                assert read == [0] * nres
    return checked


@pytest.mark.parametrize("layout", layouts())
@pytest.mark.parametrize("name", sorted(PIPE_LISTS))
def test_random_sessions_match_model_and_software(layout, name):
    pipes = PIPE_LISTS[name]
    nres = sum(len(p.results) for p in pipes)
    checked = 0
    for seed in range(2):
        accesses = random_session(seed, layout=layout, results=nres)
        got, _ = check_session(pipes, layout, accesses)
        checked += check_reads_against_software(pipes, layout, accesses, got["acks"])
    assert checked >= 5


@pytest.mark.parametrize("seed", [31, 32])
def test_random_pipes_and_waits(seed):
    """Random pipe lists (every opcode, branches, two accumulators) and other SRAM timings."""
    pipes = random_pipes(seed)
    layout = layouts()[seed % 2]
    nres = sum(len(p.results) for p in pipes)
    accesses = random_session(seed, layout=layout, results=nres, windows=4)
    got, _ = check_session(pipes, layout, accesses, read_wait=1 + seed % 3, write_wait=1)
    check_reads_against_software(pipes, layout, accesses, got["acks"])


def test_result_read_waits_for_the_pipes():
    """A result read right after the window's last write waits until the pipes finish: its
    ack comes N + 2 or N + 3 cycles after the write's (N pipes), not the next cycle, and the
    buffer accesses themselves take exactly the SRAM's cycles (no wait state added)."""
    for pipes in ([CKSUM], [HSWAP16, CKSUM]):
        n = len(pipes)
        for length, entering in ((8, 1), (7, 2), (4, 1)):
            acc = [(True, REGS_ADDR + WSTART, 1, 0), (True, REGS_ADDR + LENGTH, length, 0),
                   (True, REGS_ADDR + CTL, int(Ctl.START), 0)]
            acc += [(True, a, 0x01020304 * (a + 1), 0) for a in range(0, (1 + length + 3) // 4)]
            acc += [(False, REGS_ADDR + RESULT, 0, 0)]
            got, _ = check_session(pipes, "contiguous", acc, write_wait=3)
            acks = [c for c, _ in got["acks"]]
            writes = acks[3:-1]
            assert [b - a for a, b in zip(writes, writes[1:])] == [5] * (len(writes) - 1)
            # the last word enters at g + entering, leaves N later, results from the next
            # cycle, in which the read is served and acknowledged the cycle after
            assert acks[-1] - acks[-2] == entering + n + 2


def scapy_frame():
    """An Ethernet/IPv4/TCP frame with 37 payload bytes (odd), as bytes, and the TCP checksum
    scapy computed."""
    scapy = pytest.importorskip("scapy.all")
    pkt = (scapy.Ether(src="08:00:2b:01:02:03", dst="08:00:2b:04:05:06")
           / scapy.IP(src="10.0.0.1", dst="10.0.0.2")
           / scapy.TCP(sport=1234, dport=80, flags="PA", seq=7)
           / (b"GET /index.html HTTP/1.0\r\n\r\n" + b"x" * 9))
    raw = bytes(pkt)
    return raw, scapy.Ether(raw)[scapy.TCP].chksum


@pytest.mark.parametrize("layout", layouts())
def test_tcp_checksum_equals_scapy(layout):
    """The frame written into the buffer by the host (transmit, checksum field zeroed), the
    window over the TCP segment (offset 34: not word aligned): the block's sum plus the
    pseudo-header's gives scapy's checksum; and read back (receive) with the field filled, the
    sum with the pseudo-header is 0xffff (the segment verifies)."""
    raw, want = scapy_frame()
    seg_at, seg_len = 34, len(raw) - 34
    zeroed = raw[:seg_at + 16] + b"\0\0" + raw[seg_at + 18:]
    lay = Layout(layout)
    b = lay.bytes_per_word
    pad = zeroed + bytes(-len(zeroed) % b)
    words = [int.from_bytes(pad[i:i + b], "little") for i in range(0, len(pad), b)]
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 6]) + seg_len.to_bytes(2, "big")
    pseudo_sum = expected_results([CKSUM], pseudo)[0]
    window = [(True, REGS_ADDR + WSTART, seg_at, 1), (True, REGS_ADDR + LENGTH, seg_len, 1)]
    tx = window + [(True, REGS_ADDR + CTL, int(Ctl.START), 0)]
    tx += [(True, a, w | (0xBEEF0000 if b == 2 else 0), 0) for a, w in enumerate(words)]
    tx += [(False, REGS_ADDR + CTL, 0, 0), (False, REGS_ADDR + RESULT, 0, 0)]
    got, model = check_session([CKSUM], layout, tx)
    status, total = got["acks"][-2][1], got["acks"][-1][1]
    assert status == Status.DONE
    both = expected_results([CKSUM], total.to_bytes(2, "big") + pseudo_sum.to_bytes(2, "big"))
    assert internet_checksum(both[0]) == want
    # receive: the real frame in the buffer, read through the window
    filled = raw + bytes(-len(raw) % b)
    rx = [(True, a, int.from_bytes(filled[i:i + b], "little"), 0)
          for a, i in enumerate(range(0, len(filled), b))]
    first = seg_at // b
    rx += window + [(True, REGS_ADDR + CTL, int(Ctl.START | Ctl.RX), 0)]
    rx += [(False, a, 0, 2) for a in range(first, len(filled) // b)]
    rx += [(False, REGS_ADDR + RESULT, 0, 0)]
    got, _ = check_session([CKSUM], layout, rx)
    total = got["acks"][-1][1]
    both = expected_results([CKSUM], total.to_bytes(2, "big") + pseudo_sum.to_bytes(2, "big"))
    assert both[0] == 0xFFFF


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="layout"):
        BufferPort(pipes=[CKSUM], layout="32-in-64", regs_addr=0)
    with pytest.raises(ValueError, match="regs_addr"):
        BufferPort(pipes=[CKSUM], addr_width=10, regs_addr=1022)
    with pytest.raises(ValueError, match="addr_width"):
        BufferPortModel(pipes=[CKSUM], addr_width=40, regs_addr=0)
    with pytest.raises(ValueError, match="read_wait"):
        HarnessModel(pipes=[CKSUM], regs_addr=1000, read_wait=0)
    with pytest.raises(ValueError, match="not one of the block's"):
        BufferPortModel(pipes=[CKSUM], addr_width=10, regs_addr=1000).register_access(
            write=False, addr=5, cycle=0)
    assert data_bytes(Layout.Half, 0xBEEF0201) == b"\x01\x02"
