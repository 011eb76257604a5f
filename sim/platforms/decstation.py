"""The DECstation 5000/125 ("3MIN", 25 MHz MIPS R3000A) under Aegis and under Ultrix 4.3, and
the DECstation 5000/200 ("3MAX", KN02) under Ultrix.

The hardware rows of a machine are shared by its operating systems; the systems differ in what
their kernels do per operation (Ultrix's rows are :data:`sim.platforms.ultrix_costs.ULTRIX_SOFTWARE`,
the same on both machines). Sources name rows of ``docs/calibration.md``; the rows marked [D] or [EST] there
carry their derivation ("Derived and estimated rows used by the profiles").

A note on the numbers: the R3000's data cache on the 3MIN has 4-byte lines and is
write-through, so every word a loop reads for the first time costs a full 400 ns memory read
(10 CPU cycles) and every word written drains through the write buffer at 240 ns (6 cycles).
That memory system, not the instruction count, sets the price of copying and summing data.
"""
from __future__ import annotations

from .base import CALIBRATION, Cost, MemorySystemSpec, Platform, register
from .ultrix_costs import ULTRIX_SOFTWARE

C = CALIBRATION

# -- hardware, identical under both operating systems --------------------------------------
CPU_HZ = Cost(25_000_000, "Hz", f"[P] {C}: DECstation 5000/125, CPU: MIPS R3000A, 25 MHz")
MEM_CYCLE = Cost(80_000, "ps", f"[P] {C}: main-memory cycle 80 ns (NetBSD pmax kmin.h)")
READ_MISS = Cost(400_000, "ps", f"[P] {C}: CPU single-word read from memory, 5 memory cycles = 400 ns")
WORD_WRITE = Cost(240_000, "ps", f"[P] {C}: CPU word write, 3 memory cycles = 240 ns")
DMA_BURST = Cost(64, "words", f"[P] {C}: DMA 64-word read / write")
DMA_READ = Cost(68, "mem cycles", f"[P] {C}: DMA 64-word read 68 memory cycles")
DMA_WRITE = Cost(66, "mem cycles", f"[P] {C}: DMA 64-word write 66 memory cycles")
TC_PIO_READ = Cost(480_000, "ps", (
    f"estimate ({C}: 'CPU access time per word of buffer RAM over TURBOchannel'): a "
    "TURBOchannel I/O read at 12.5 MHz (80 ns cycles) is an address cycle, the option's "
    "ready with data (SRAM, about 2 cycles) and the crossing back through the 3MIN system "
    "ASIC to the stalled R3000: about 6 TURBOchannel cycles = 480 ns = 12 CPU cycles"))
TC_PIO_WRITE = Cost(320_000, "ps", (
    f"estimate ({C}: same row): a TURBOchannel I/O write is an address and a data cycle plus "
    "the option's acknowledge, about 4 TURBOchannel cycles = 320 ns; the write buffer posts "
    "single writes, so only streams of writes see this rate"))
KERNEL_CPI = Cost(37.5 / 18, "CPI", (
    f"[D] {C}: Aegis exception dispatch is 18 instructions in 1.5 us = 37.5 cycles at 25 MHz, "
    "CPI 2.08 for kernel code on this very machine (cache misses at 10 cycles, write-through "
    "stores at 6, load delay slots)"))
# bcopy shape (DEC OSF/1 bcopy.s): 9 / 7.5 / 6.75 / 6.375 cycles per word at 4..32 bytes per
# loop fits exactly 6 + 3 / (words per iteration): a memory term and 3 cycles of loop overhead.
COPY_UNCACHED = Cost(16.375, "cycles/word", (
    f"[D] {C}: bcopy shape scaled to the 3MIN: per word a read miss (5 memory cycles) and a "
    "write (3 memory cycles) serialize on the one memory: 8 x 80 ns = 640 ns = 16 cycles, plus "
    "the 3-cycle loop overhead spread over a 32-byte (8-word) unrolled loop: 0.375"))
COPY_CACHED = Cost(6.375, "cycles/word", (
    f"[D] {C}: source in the data cache: loads hit, each store drains through the write "
    "buffer at 240 ns = 6 cycles per word, plus 0.375 loop overhead (as above)"))
COPY_CALL = Cost(20, "cycles", (
    "estimate: call, alignment tests and return of bcopy, about 10 instructions at CPI 2"))

# The memory system sim.cache models (for software that names its addresses). Both machines'
# R3000 caches are direct-mapped, physically indexed, with 4-byte lines and write-through.
LINE = Cost(4, "bytes/line", f"[P] {C}: caches: direct-mapped, physically indexed, 4-byte lines")
WRITE_BUFFER = Cost(4, "entries", (
    f"[P] {C}: caches row: the DECstation 3100's 4-entry write buffer (DEC Technical Journal); "
    "the 5000 series keeps the R3000's write-through cache and write buffer"))
COPY_ISSUE = Cost(2 + 3 / 8, "cycles/word", (
    f"[D] {C}: the bcopy shape (OSF/1 bcopy.s, 6 + 3/w cycles per word): 3 cycles of loop "
    "overhead per iteration, over a 32-byte (8-word) loop 0.375 per word, plus one cycle each "
    "for the word's load and store; the stalls (read misses, a full write buffer) are the "
    "cache model's"))
R3000_3MIN_MEMORY = MemorySystemSpec(
    icache_bytes=Cost(64 * 1024, "bytes", f"[P] {C}: caches: 64 KB instruction (5000/1xx)"),
    dcache_bytes=Cost(128 * 1024, "bytes", f"[P] {C}: caches: 128 KB data (5000/1xx)"),
    line_bytes=LINE,
    write_buffer_entries=WRITE_BUFFER,
    copy_issue_cycles_per_word=COPY_ISSUE,
)


# The machine is the same under both systems: only the software costs differ.
_HARDWARE = dict(
    cpu_hz=CPU_HZ,
    mem_cycle_ps=MEM_CYCLE,
    word_read_miss_ps=READ_MISS,
    word_write_ps=WORD_WRITE,
    dma_burst_words=DMA_BURST,
    dma_read_burst_mem_cycles=DMA_READ,
    dma_write_burst_mem_cycles=DMA_WRITE,
    io_pio_read_ps=TC_PIO_READ,
    io_pio_write_ps=TC_PIO_WRITE,
    kernel_cpi=KERNEL_CPI,
    copy_uncached_cycles_per_word=COPY_UNCACHED,
    copy_cached_cycles_per_word=COPY_CACHED,
    copy_call_cycles=COPY_CALL,
    memory=R3000_3MIN_MEMORY,
)

DECSTATION_5000_125_AEGIS = Platform(
    name="decstation-5000-125-aegis",
    machine="DECstation 5000/125",
    os="Aegis (exokernel)",
    description="25 MHz R3000A, 64 KB I + 128 KB D write-through caches, 80 ns memory, TURBOchannel at 12.5 MHz; Aegis exokernel",
    **_HARDWARE,
    checksum_uncached_cycles_per_word=Cost(12.25, "cycles/word", (
        f"[D] {C}: the tuned MIPS in_cksum (NetBSD): 3 instructions per word in a 64-byte "
        "unrolled loop plus about 4 loop instructions per 16 words = 3.25 cycles, plus 9 stall "
        "cycles per word for the 400 ns read miss")),
    checksum_cached_cycles_per_word=Cost(3.25, "cycles/word", (
        f"[D] {C}: the same loop with the data in the cache: 3 + 4/16 cycles per word")),
    checksum_call_cycles=Cost(30, "cycles", (
        "estimate: prologue for odd alignment, the carry fold and return, about 15 "
        "instructions at CPI 2")),
    syscall_cycles=Cost(80, "cycles", (
        f"[D] {C}: a system call is an exception: Aegis' dispatch (37.5 cycles) plus the "
        "call of the kernel routine and the return to user mode, about 20 instructions at "
        "CPI 2.08 (42 cycles): 80 cycles = 3.2 us")),
    context_switch_cycles=Cost(125, "cycles", (
        f"estimate ({C}: 'context switch needed'): Aegis' kernel part of an environment switch "
        "is a protected control transfer: change the ASID and the current environment and "
        "upcall, about 60 instructions at CPI 2.08; the library OS saves and restores its "
        "own registers and charges that itself")),
    exception_dispatch_cycles=Cost(37.5, "cycles", (
        f"[P] {C}: exception dispatch, Aegis: 1.5 us, 18 instructions (SOSP'95 section 5)")),
    interrupt_dispatch_cycles=Cost(37.5, "cycles", (
        f"[D] {C}: on the R3000 an interrupt enters through the same general exception "
        "vector; Aegis dispatches it like an exception: 1.5 us")),
    demux_dpf_cycles=Cost(37.5, "cycles", (
        f"[S] {C}: packet demultiplexing, DPF (compiled): 1.5 us (SOSP'95 table 7)")),
    demux_mpf_cycles=Cost(875, "cycles", (
        f"[S] {C}: packet demultiplexing, MPF (interpreted): 35.0 us (SOSP'95 table 7)")),
    pcb_lookup_per_entry_cycles=Cost(43, "cycles/entry", (
        f"estimate ({C}: PCB lookup is a linear scan): about 12 instructions per PCB "
        "(load and compare the 4-tuple, follow the link) at CPI 2.08 = 25 cycles, plus two "
        "data-cache misses at 9 stall cycles")),
    tcp_per_packet_cycles=Cost(417, "cycles", (
        f"[D] {C}: TCP common path, fewer than 200 instructions per packet (Clark et al. "
        "1989) x CPI 2.08 = 417 cycles")),
    ip_per_packet_cycles=Cost(208, "cycles", (
        "estimate: IP input or output fast path (header checks, no options, cached route, "
        "link header) about half the TCP common path, 100 instructions x CPI 2.08")),
    select_base_cycles=Cost(208, "cycles", (
        "estimate: a select()-like event poll beyond the system call: copy the descriptor "
        "sets in and out and set up the scan, about 100 instructions x CPI 2.08")),
    select_per_fd_cycles=Cost(52, "cycles", (
        "estimate: per descriptor examined: descriptor-table lookup and a poll of the "
        "object's state, about 25 instructions x CPI 2.08")),
    fork_cycles=Cost(320_000, "cycles", (
        "estimate: creating a process environment of a small server: copy about 64 KB of "
        "writable data and stack plus 8 KB of kernel state (18 k words at 16.375 cycles "
        "uncached copy = 300 k cycles) and about 20 k cycles of bookkeeping: 12.8 ms")),
)

DECSTATION_5000_125_ULTRIX43 = Platform(
    name="decstation-5000-125-ultrix43",
    machine="DECstation 5000/125",
    os="Ultrix 4.3",
    description="25 MHz R3000A, 64 KB I + 128 KB D write-through caches, 80 ns memory, TURBOchannel at 12.5 MHz; Ultrix 4.3 (4.3BSD-derived)",
    **_HARDWARE,
    **ULTRIX_SOFTWARE,
)


# -- the DECstation 5000/200 ("3MAX", KN02) ---------------------------------------------------
# The same 25 MHz R3000A and the same R3000 cache protocol (direct-mapped, 4-byte lines, write-
# through with a write buffer) with 64 KB + 64 KB caches, on a memory system and TURBOchannel
# clocked at 25 MHz instead of the 3MIN's 12.5 MHz. No functional specification of the KN02
# memory is in reach (kn02.h in NetBSD and Linux gives the address map and CSR bits, not
# timings), so its times are estimates: the same numbers of memory cycles per operation as the
# 3MIN's (kmin.h), each memory cycle one 40 ns cycle of the 25 MHz system clock.
MEM_CYCLE_3MAX = Cost(40_000, "ps", (
    f"estimate ({C}: 'TURBOchannel clock ... the 5000/2x0: 25 MHz'): the KN02's memory "
    "controller runs on the 25 MHz system/TURBOchannel clock, one memory cycle = 40 ns (the "
    "3MIN's 80 ns is its 12.5 MHz clock)"))
READ_MISS_3MAX = Cost(200_000, "ps", (
    f"estimate ({C}: 3MIN 'single-word read 5 memory cycles'): the same 5-cycle single-word "
    "read of the R3000 refill protocol at 40 ns = 200 ns = 5 CPU cycles"))
WORD_WRITE_3MAX = Cost(120_000, "ps", (
    f"estimate ({C}: 3MIN 'CPU word write 3 memory cycles'): the same 3-cycle write at 40 ns "
    "= 120 ns = 3 CPU cycles"))
DMA_READ_3MAX = Cost(68, "mem cycles", (
    f"estimate ({C}: 3MIN 'DMA 64-word read 68 memory cycles'): one cycle per word plus the "
    "same 4-cycle burst overhead, in 40 ns cycles"))
DMA_WRITE_3MAX = Cost(66, "mem cycles", (
    f"estimate ({C}: 3MIN 'DMA 64-word write 66 memory cycles'): one cycle per word plus the "
    "same 2-cycle burst overhead, in 40 ns cycles"))
TC_PIO_READ_3MAX = Cost(240_000, "ps", (
    f"estimate ({C}: 'TURBOchannel clock ... 25 MHz' on the 5000/2x0): the same 6 "
    "TURBOchannel cycles as the 3MIN's I/O read (address, option SRAM, crossing back), at 40 ns"))
TC_PIO_WRITE_3MAX = Cost(160_000, "ps", (
    f"estimate ({C}: same row): the same 4 TURBOchannel cycles as the 3MIN's I/O write, at 40 ns"))
COPY_UNCACHED_3MAX = Cost(8.375, "cycles/word", (
    f"[D] {C}: the bcopy shape (OSF/1 bcopy.s) with the 3MAX's memory: per word a 5-cycle read "
    "miss and a 3-cycle write serialize on the memory, 8 x 40 ns = 320 ns = 8 cycles, plus the "
    "3-cycle loop overhead over a 32-byte loop: 0.375"))
COPY_CACHED_3MAX = Cost(3.375, "cycles/word", (
    f"[D] {C}: source in the data cache: each store drains through the write buffer at "
    "3 x 40 ns = 120 ns = 3 cycles per word, plus 0.375 loop overhead"))

# Ultrix's uncached checksum row is its instruction cycles plus one read-miss stall per word:
# the stall is the machine's, so it is re-derived with the 3MAX's 200 ns miss.
CHECKSUM_UNCACHED_ULTRIX_3MAX = Cost(
    ULTRIX_SOFTWARE["checksum_cached_cycles_per_word"].value + 4, "cycles/word", (
        f"[D] {C}: Ultrix's 8.125 instruction cycles per word (2.5 x the tuned 3.25) plus 4 "
        "stall cycles for the 3MAX's 200 ns read miss (5 cycles, one overlapping the load, as "
        "the 3MIN's 10-cycle miss stalls 9)"))

R3000_3MAX_MEMORY = MemorySystemSpec(
    icache_bytes=Cost(64 * 1024, "bytes", f"[P] {C}: caches: 'the 5000/200 family: 64 KB + 64 KB'"),
    dcache_bytes=Cost(64 * 1024, "bytes", f"[P] {C}: caches: 'the 5000/200 family: 64 KB + 64 KB'"),
    line_bytes=LINE,
    write_buffer_entries=WRITE_BUFFER,
    copy_issue_cycles_per_word=COPY_ISSUE,
)

_HARDWARE_3MAX = dict(
    _HARDWARE,
    memory=R3000_3MAX_MEMORY,
    mem_cycle_ps=MEM_CYCLE_3MAX,
    word_read_miss_ps=READ_MISS_3MAX,
    word_write_ps=WORD_WRITE_3MAX,
    dma_read_burst_mem_cycles=DMA_READ_3MAX,
    dma_write_burst_mem_cycles=DMA_WRITE_3MAX,
    io_pio_read_ps=TC_PIO_READ_3MAX,
    io_pio_write_ps=TC_PIO_WRITE_3MAX,
    copy_uncached_cycles_per_word=COPY_UNCACHED_3MAX,
    copy_cached_cycles_per_word=COPY_CACHED_3MAX,
)

DECSTATION_5000_200_ULTRIX = Platform(
    name="decstation-5000-200-ultrix",
    machine="DECstation 5000/200",
    os="Ultrix 4.3",
    description="25 MHz R3000A, 64 KB I + 64 KB D write-through caches, 40 ns memory (estimate), TURBOchannel at 25 MHz; Ultrix 4.3 (4.3BSD-derived)",
    **_HARDWARE_3MAX,
    **{**ULTRIX_SOFTWARE, "checksum_uncached_cycles_per_word": CHECKSUM_UNCACHED_ULTRIX_3MAX},
)

register(DECSTATION_5000_125_AEGIS)
register(DECSTATION_5000_125_ULTRIX43)
register(DECSTATION_5000_200_ULTRIX)
