"""The client workstations: a Pentium PC at 100 MHz under OpenBSD.

The paper's clients were Sun workstations under SunOS and Pentium PCs under OpenBSD
(docs/calibration.md, "Clients"), and no per-operation costs for them are sourced, so every
number here is an estimate with its reasoning. The clients must stay out of the server's way
except where a real client would be the limit, so the estimates lean towards the machine's
known class (a mid-1990s Pentium is four to eight times the DECstation's integer speed) rather
than towards any particular measurement. 100 MHz is chosen because it is a real Pentium speed
with a whole-picosecond clock period (10 000 ps); 90 and 120 MHz are not.
"""
from __future__ import annotations

from .base import CALIBRATION, Cost, Platform, register

C = CALIBRATION
_CLIENT = f"estimate ({C}: 'Clients' asks for estimates)"

CLIENT_PENTIUM100_OPENBSD = Platform(
    name="client-pentium100-openbsd",
    machine="Pentium PC, 100 MHz",
    os="OpenBSD",
    description="100 MHz Pentium, 8 KB + 8 KB write-back L1, 256 KB L2, FPM/EDO DRAM, PCI; OpenBSD (4.4BSD-derived)",
    cpu_hz=Cost(100_000_000, "Hz", (
        f"{_CLIENT}: Pentium PCs under OpenBSD were clients; 100 MHz is a real part with a "
        "whole-picosecond period")),
    mem_cycle_ps=Cost(60_000, "ps", f"{_CLIENT}: 60 ns page-mode DRAM of the period"),
    word_read_miss_ps=Cost(180_000, "ps", (
        f"{_CLIENT}: an L2 miss to DRAM: row access about 110 ns plus chipset latency; a "
        "whole 32-byte line arrives in a 5-2-2-2 burst at 66 MHz")),
    word_write_ps=Cost(60_000, "ps", (
        f"{_CLIENT}: write-back caches absorb writes; a posted write to DRAM costs one page-mode "
        "cycle")),
    dma_burst_words=Cost(64, "words", f"{_CLIENT}: the same 64-word burst as the server, for comparability"),
    dma_read_burst_mem_cycles=Cost(70, "mem cycles", (
        f"{_CLIENT}: PCI bus-master read of 64 words: one page-mode cycle per word plus about "
        "6 cycles of arbitration, address and row opening")),
    dma_write_burst_mem_cycles=Cost(68, "mem cycles", (
        f"{_CLIENT}: PCI bus-master write of 64 words: one cycle per word plus about 4")),
    io_pio_read_ps=Cost(240_000, "ps", (
        f"{_CLIENT}: a PCI target read at 33 MHz: address, target latency and data, about "
        "8 PCI cycles = 240 ns")),
    io_pio_write_ps=Cost(120_000, "ps", (
        f"{_CLIENT}: a posted PCI write, about 4 PCI cycles = 120 ns")),
    kernel_cpi=Cost(1.5, "CPI", (
        f"{_CLIENT}: the dual-issue Pentium with write-back caches runs kernel code at about "
        "1.5 cycles per instruction (i386 instructions do more work each than MIPS ones, which "
        "the instruction counts below do not correct for)")),
    copy_uncached_cycles_per_word=Cost(8, "cycles/word", (
        f"{_CLIENT}: rep movsl out of DRAM at about 50 MB/s = 8 cycles per word at 100 MHz")),
    copy_cached_cycles_per_word=Cost(2, "cycles/word", (
        f"{_CLIENT}: rep movsl within the caches, about 1 word per 2 cycles")),
    copy_call_cycles=Cost(20, "cycles", f"{_CLIENT}: call, alignment and direction setup, return"),
    checksum_uncached_cycles_per_word=Cost(5, "cycles/word", (
        f"{_CLIENT}: the i386 adcl loop is about 1.5 cycles per word; reading DRAM at about "
        "80 MB/s bounds it near 5")),
    checksum_cached_cycles_per_word=Cost(1.5, "cycles/word", f"{_CLIENT}: the unrolled adcl loop"),
    checksum_call_cycles=Cost(30, "cycles", f"{_CLIENT}: prologue, fold and return"),
    syscall_cycles=Cost(300, "cycles", (
        f"{_CLIENT}: an int 0x80 trap and iret cost about 100 cycles on a Pentium, plus about "
        "130 instructions of BSD syscall path at CPI 1.5: 3 us")),
    context_switch_cycles=Cost(600, "cycles", (
        f"{_CLIENT}: BSD cpu_switch with a %cr3 reload and the TLB refill that follows, "
        "about 400 cycles plus run-queue work: 6 us")),
    exception_dispatch_cycles=Cost(2500, "cycles", (
        f"{_CLIENT}: BSD signal delivery (sendsig, handler, sigreturn): about 25 us")),
    interrupt_dispatch_cycles=Cost(500, "cycles", (
        f"{_CLIENT}: interrupt gate, register save, two accesses to the ISA-speed 8259 PIC "
        "(about 1 us each) and return: 5 us")),
    demux_dpf_cycles=Cost(40, "cycles", (
        f"{_CLIENT}: a compiled filter is a handful of compares; kept for field parity")),
    demux_mpf_cycles=Cost(800, "cycles", (
        f"{_CLIENT}: an interpreted BPF-style filter, about 20 instructions of interpretation "
        "per filter instruction")),
    pcb_lookup_per_entry_cycles=Cost(20, "cycles/entry", (
        f"{_CLIENT}: about 10 instructions per PCB at CPI 1.5 plus an occasional L2 miss")),
    tcp_per_packet_cycles=Cost(300, "cycles", (
        f"{_CLIENT}: fewer than 200 instructions per packet ({C}: Clark et al.) x CPI 1.5")),
    ip_per_packet_cycles=Cost(150, "cycles", f"{_CLIENT}: about 100 instructions x CPI 1.5"),
    select_base_cycles=Cost(150, "cycles", f"{_CLIENT}: about 100 instructions x CPI 1.5"),
    select_per_fd_cycles=Cost(40, "cycles", f"{_CLIENT}: about 25 instructions x CPI 1.5"),
    fork_cycles=Cost(200_000, "cycles", (
        f"{_CLIENT}: copy-on-write fork of a small client: page-table copy and process setup, "
        "about 2 ms")),
)

register(CLIENT_PENTIUM100_OPENBSD)
