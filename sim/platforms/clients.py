"""The client workstations: a Pentium PC at 100 MHz under OpenBSD, a SPARCstation 1 under SunOS 4.1.

The paper's clients were Sun workstations under SunOS and Pentium PCs under OpenBSD
(docs/calibration.md, "Clients"), and no per-operation costs for them are sourced, so every
number here is an estimate with its reasoning. The clients must stay out of the server's way
except where a real client would be the limit, so the estimates lean towards the machine's
known class (a mid-1990s Pentium is four to eight times the DECstation's integer speed) rather
than towards any particular measurement. 100 MHz is chosen because it is a real Pentium speed
with a whole-picosecond clock period (10 000 ps); 90 and 120 MHz are not.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import CALIBRATION, Cost, MemorySystemSpec, Platform, register

__all__ = ["CLIENT_PENTIUM100_OPENBSD", "CLIENT_SPARCSTATION1_SUNOS41", "SPARCSTATION1_MEMORY", "ClientNic",
           "CLIENT_NICS"]

C = CALIBRATION
#: lmbench 1.0's result file for a 100 MHz Pentium under FreeBSD 2.1 (the C1 machine), in the
#: lmbench database of OSPreservProject/exokernel: benchmarks/lmbench/lmbench/Results/FreeBSD/i586.
_LMB = "lmbench 1.0, Pentium-100 under FreeBSD 2.1 (Results/FreeBSD/i586)"
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
    copy_uncached_cycles_per_word=Cost(10.97, "cycles/word", (
        f"{_CLIENT}, derived from {_LMB}: a copy reads every source word from DRAM and, as the P5's L1 does "
        "not allocate on a write miss, writes every destination word to memory; the same "
        "machine read memory at 65 MB/s (6.15 cycles per word at 100 MHz) and wrote it at "
        "83 MB/s (4.82 cycles per word): 10.97 cycles per word = 36.5 MB/s. Checked by "
        "VALIDATION.md C1 bcopy (36-40 MB/s), which this derivation does not use")),
    copy_cached_cycles_per_word=Cost(2, "cycles/word", (
        f"{_CLIENT}: rep movsl within the caches, about 1 word per 2 cycles")),
    copy_call_cycles=Cost(20, "cycles", f"{_CLIENT}: call, alignment and direction setup, return"),
    checksum_uncached_cycles_per_word=Cost(6.15, "cycles/word", (
        f"{_CLIENT}, derived from {_LMB}: the i386 adcl loop (about 1.5 cycles per word) is bound by reading "
        "DRAM, which the same machine did at 65 MB/s = 6.15 cycles per word")),
    checksum_cached_cycles_per_word=Cost(1.5, "cycles/word", f"{_CLIENT}: the unrolled adcl loop"),
    checksum_call_cycles=Cost(30, "cycles", f"{_CLIENT}: prologue, fold and return"),
    syscall_cycles=Cost(300, "cycles", (
        f"{_CLIENT}: an int 0x80 trap and iret cost about 100 cycles on a Pentium, plus about "
        "130 instructions of BSD syscall path at CPI 1.5: 3 us")),
    context_switch_cycles=Cost(1880, "cycles", (
        f"{_CLIENT}: a process switch of 4.4BSD on the i386 as the process that blocks and "
        "the one that wakes pay it: tsleep (the sleep queue), wakeup/setrunnable, mi_switch "
        "and cpu_switch's register save, run-queue search (ffs on whichqs) and restore, about "
        "320 instructions x CPI 1.5 = 480; mi_switch's microtime() reading the i8254 counter "
        "(a latch command and two 8-bit reads over the ISA bus, about 1 us each) = 300; the "
        "untagged TLB flushed by the %cr3 reload, refilled by about 30 page walks of 2 L2 "
        "hits (about 17 cycles each) = 500; the switched-in process's code, stack and data "
        "refilled into the 8 KB L1 caches, about 50 lines from L2 at 12 cycles = 600: "
        "1880 cycles = 18.8 us. (The earlier 600 had only cpu_switch and the TLB.) Checked "
        "by VALIDATION.md C1, 28-30 us")),
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

_VAL = "VALIDATION.md"
_SS1 = "estimate (SPARCstation 1, Sun 4/60: 20 MHz MB86901 integer unit, 64 KB virtual cache)"

#: The SPARCstation 1's copy loop: a word loop as 4.4BSD's libc bcopy.c (TLOOP) compiles for
#: SPARC, its cycles per word when nothing misses (the cached copy row and the memory system's
#: issue rate are the same loop).
_SS1_COPY_LOOP = Cost(9, "cycles/word", (
    f"{_SS1}: a word copy loop as 4.4BSD's libc bcopy.c (TLOOP) compiles for SPARC: ld (2 "
    "cycles on the MB86901), st (3), two address adds, subcc and the taken branch with one add "
    "in its delay slot (1 each): 9 cycles per word = 8.9 MB/s; the write-through cache sends "
    "every store to memory, which the write buffer hides. Not taken from VALIDATION.md C4's "
    "bcopy (7.6 MB/s), which it is compared with"))

#: The SPARCstation 1's cache for :mod:`sim.cache`: one 64 KB direct-mapped, write-through,
#: virtually addressed cache of 16-byte lines for instructions and data, and a one-word write
#: buffer. ``sim.cache`` keeps separate instruction and data caches: each gets the whole
#: 64 KB (no client path names its code, so only the data side is exercised: the copies that
#: name their addresses, e.g. the bcopy benchmark). It allocates the destination of a copy,
#: which the sun4c does not on a write miss; nothing here reads a copy's destination back.
SPARCSTATION1_MEMORY = MemorySystemSpec(
    icache_bytes=Cost(64 * 1024, "bytes", (
        f"{_SS1}: the one 64 KB cache serves instructions too (sun4c: tme's "
        "machine/sun4/sun44c-cache.c, OpenBSD sparc cache.c)")),
    dcache_bytes=Cost(64 * 1024, "bytes", (
        f"{_SS1}: 64 KB direct-mapped, write-through, virtually addressed "
        "(OpenBSD/NetBSD sparc cache.c flush the sun4c cache line by line)")),
    line_bytes=Cost(16, "bytes/line", (
        f"{_SS1}: 16-byte lines (the sun4c's c_linesize; 4096 lines of 64 KB)")),
    write_buffer_entries=Cost(1, "entries", (
        f"{_SS1}: a one-word write buffer (word_write_ps)")),
    copy_issue_cycles_per_word=_SS1_COPY_LOOP,
)

#: The SPARCstation 1 (Sun 4/60) under SunOS 4.1: the paper's Sun clients. The validation rows
#: C4 were measured on this machine under SunOS 4.0.3c (Ousterhout 1990); 4.1 has the same
#: trap, switch and socket paths.
CLIENT_SPARCSTATION1_SUNOS41 = Platform(
    name="client-sparcstation1-sunos41",
    machine="SPARCstation 1 (Sun 4/60), 20 MHz",
    os="SunOS 4.1",
    description=("20 MHz SPARC (Fujitsu MB86901A), 7 register windows, 64 KB direct-mapped "
                 "write-through virtually addressed cache, 16-byte lines; SBus; on-board LANCE; "
                 "SunOS 4.1 (4.2BSD-derived)"),
    cpu_hz=Cost(20_000_000, "Hz", f"{_SS1}: the 4/60's clock; a whole 50 000 ps period"),
    mem_cycle_ps=Cost(150_000, "ps", f"{_SS1}: 80 ns DRAM plus the memory controller, 3 cycles"),
    word_read_miss_ps=Cost(600_000, "ps", (
        f"{_SS1}: a miss fills the whole 16-byte line: the MMU translates the virtual "
        "address (the virtual cache needs it only on a miss) and the address goes out, about "
        "2 cycles; the first word from 80 ns DRAM through the controller, about 4 cycles "
        "(200 ns); the other 3 words in page mode at 2 cycles each: 12 cycles = 600 ns")),
    word_write_ps=Cost(200_000, "ps", (
        f"{_SS1}: write-through with a one-word write buffer, and no allocation on a write "
        "miss (the sun4c cache as emulated by tme, machine/sun4/sun44c-cache.c: 'on a write "
        "miss, we invalidate, but we don't allocate'): a store that finds the buffer busy "
        "waits for the memory's translate-and-write, about 4 cycles")),
    dma_burst_words=Cost(64, "words", f"{_CLIENT}: the same 64-word burst as the server, for comparability"),
    dma_read_burst_mem_cycles=Cost(72, "mem cycles", (
        f"{_SS1}: SBus DVMA read of 64 words, one memory cycle per word plus about 8 of "
        "arbitration and I/O-MMU translation")),
    dma_write_burst_mem_cycles=Cost(70, "mem cycles", f"{_SS1}: SBus DVMA write, about 6 extra"),
    io_pio_read_ps=Cost(400_000, "ps", f"{_SS1}: an SBus slave read, about 8 cycles"),
    io_pio_write_ps=Cost(200_000, "ps", f"{_SS1}: an SBus slave write through the write buffer"),
    kernel_cpi=Cost(2.0, "CPI", (
        f"{_SS1}: the single-issue MB86901: loads 2 cycles, stores 3, taken branches 1 with "
        "a delay slot, plus cache misses of the 64 KB cache: about 2 cycles per instruction")),
    copy_uncached_cycles_per_word=Cost(11.75, "cycles/word", (
        f"{_SS1}: the cached word loop (9 cycles per word) plus, once every 4 words, the "
        "16-byte line fill of word_read_miss_ps (12 cycles) less the load's own cycle, as "
        "sim.cache times a miss: 11.75 cycles per word = 6.8 MB/s. The stores need no extra "
        "time: the one-word write buffer drains in 4 cycles (word_write_ps) and the loop "
        "stores every 9. Not taken from VALIDATION.md C4's bcopy (5.6 MB/s), which it is "
        "compared with")),
    copy_cached_cycles_per_word=_SS1_COPY_LOOP,
    copy_call_cycles=Cost(40, "cycles", f"{_SS1}: call, alignment checks and return, about 20 instructions"),
    checksum_uncached_cycles_per_word=Cost(5.75, "cycles/word", (
        f"{_SS1}: the cached loop's 3 cycles per word plus, once every 4 words, the 16-byte "
        "line fill of word_read_miss_ps (12 cycles) less the load's own cycle")),
    checksum_cached_cycles_per_word=Cost(3, "cycles/word", (
        f"{_SS1}: ld (2 cycles) + addxcc (1) per word in an unrolled loop")),
    checksum_call_cycles=Cost(40, "cycles", f"{_SS1}: prologue, fold and return, about 20 instructions"),
    syscall_cycles=Cost(620, "cycles", (
        f"{_SS1}: the trap enters a new register window (a window-overflow trap of about "
        "30 instructions when the user's windows fill them all), the SunOS trap handler saves "
        "the globals and the trap state, syscall() dispatches through sysent, checks signals "
        "and returns with rett, whose window underflow trap reloads the user's window: about "
        "280 instructions x CPI 2 + 60 cycles of window traps = 620 cycles = 31 us; checked by "
        f"{_VAL} C4-1")),
    context_switch_cycles=Cost(6080, "cycles", (
        f"{_SS1}: SunOS resume() flushes every register window in use (up to 7 x 16 words, "
        "each window through the overflow handler: about 7 x 80 = 560 cycles through the "
        "write-through cache), switches the MMU context and flushes the outgoing context's "
        "lines from the virtually addressed cache (4096 lines of 16 bytes, a flush store per "
        "line: about 4100 cycles), runs swtch()'s run-queue code (about 200 instructions x 2 = "
        "400), the blocking side's sleep() and the waking side's wakeup()/setrq (about 240 "
        "instructions x 2 = 480), and the incoming process refills its windows by underflow "
        f"traps (about 8 x 60): 6080 cycles = 304 us. Ousterhout (1990) found the Sun-4's "
        f"switch slow for these reasons; checked by {_VAL} C4-2")),
    exception_dispatch_cycles=Cost(6000, "cycles", (
        f"{_SS1}: SunOS signal delivery (sendsig with the window flush, the handler, "
        "sigcleanup): about 2500 instructions x 2 plus window traps")),
    interrupt_dispatch_cycles=Cost(400, "cycles", (
        f"{_SS1}: interrupt trap into a fresh window (an overflow trap when they are full), "
        "save the globals and %psr, the autovector dispatch and rett: about 170 instructions "
        "x CPI 2 + 60 cycles of window traps")),
    demux_dpf_cycles=Cost(54, "cycles", (
        f"{_SS1}: as the Pentium's compiled filter, about 27 instructions x CPI 2; kept for "
        "field parity")),
    demux_mpf_cycles=Cost(1066, "cycles", (
        f"{_SS1}: as the Pentium's interpreted filter, about 533 instructions x CPI 2")),
    pcb_lookup_per_entry_cycles=Cost(30, "cycles/entry", (
        f"{_SS1}: about 10 instructions per PCB at CPI 2 plus an occasional line fill")),
    tcp_per_packet_cycles=Cost(400, "cycles", (
        f"{_SS1}: fewer than 200 instructions per packet ({C}: Clark et al.) x CPI 2")),
    ip_per_packet_cycles=Cost(200, "cycles", f"{_SS1}: about 100 instructions x CPI 2"),
    select_base_cycles=Cost(200, "cycles", f"{_SS1}: about 100 instructions x CPI 2"),
    select_per_fd_cycles=Cost(50, "cycles", f"{_SS1}: about 25 instructions x CPI 2"),
    fork_cycles=Cost(200_000, "cycles", (
        f"{_SS1}: SunOS 4 copy-on-write fork of a small client: segment and page-table "
        "duplication, about 10 ms")),
    memory=SPARCSTATION1_MEMORY,
)

register(CLIENT_SPARCSTATION1_SUNOS41)


@dataclass(frozen=True)
class ClientNic:
    """A client machine's Ethernet card as its driver costs the CPU (all estimates).

    Attributes
    ----------
    card : str
        What the card is.
    rx_frame_cycles, tx_frame_cycles : Cost
        The driver's own work per received frame (its interrupt handler beyond the dispatch:
        status, ring or buffer bookkeeping, handing the mbufs to ``ether_input``) and per
        transmitted frame (``if_start``: loading the card's descriptor or buffer).
    copies : bool
        The driver copies each frame between the card's buffers and the mbufs with the CPU
        (bcopy at the profile's uncached rate) rather than the card reaching the mbufs by DMA.
    loop_cycles : Cost
        ``looutput``: a datagram to the machine's own address put on the IP input queue with
        a software interrupt (no card involved).
    """

    card: str
    rx_frame_cycles: Cost
    tx_frame_cycles: Cost
    copies: bool
    loop_cycles: Cost


_NIC = "estimate (driver path in instructions x the profile's CPI)"

#: The Ethernet card of each client profile, by profile name.
CLIENT_NICS: dict[str, ClientNic] = {
    CLIENT_PENTIUM100_OPENBSD.name: ClientNic(
        card="DEC 21040 (Tulip) PCI bus-master Ethernet, OpenBSD de(4)",
        rx_frame_cycles=Cost(375, "cycles", (
            f"{_NIC}: de's interrupt handler reads CSR5, walks the receive ring, hands the "
            "filled cluster up and gives the ring a fresh one: about 250 instructions x 1.5")),
        tx_frame_cycles=Cost(300, "cycles", (
            f"{_NIC}: de_start maps the mbuf chain onto transmit descriptors, sets OWN and "
            "pokes the transmit-demand CSR (a PCI write), and later reclaims them: about "
            "200 instructions x 1.5")),
        copies=False,
        loop_cycles=Cost(90, "cycles", (
            f"{_NIC}: looutput: IF_ENQUEUE on ipintrq and schednetisr, about 60 "
            "instructions x 1.5"))),
    CLIENT_SPARCSTATION1_SUNOS41.name: ClientNic(
        card="on-board Am7990 LANCE with SBus DMA to a buffer area, SunOS le(4)",
        rx_frame_cycles=Cost(500, "cycles", (
            f"{_NIC}: leintr reads CSR0, walks the receive ring, allocates mbufs and "
            "clusters for the copy, returns the descriptor to the LANCE: about 250 "
            "instructions x 2")),
        tx_frame_cycles=Cost(400, "cycles", (
            f"{_NIC}: lestart copies the chain into a transmit buffer, sets OWN and TDMD "
            "in CSR0, and later reclaims it: about 200 instructions x 2")),
        copies=True,
        loop_cycles=Cost(120, "cycles", (
            f"{_NIC}: looutput: IF_ENQUEUE on ipintrq and schednetisr, about 60 "
            "instructions x 2"))),
}
