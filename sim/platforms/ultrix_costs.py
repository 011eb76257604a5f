"""Ultrix 4.3's software costs on the R3000: the per-operation kernel rows of both Ultrix profiles.

The DECstation 5000/125 ("3MIN") and 5000/200 ("3MAX") run the same Ultrix kernel on the same
25 MHz R3000, so the cycles its code paths take are one table, :data:`ULTRIX_SOFTWARE`, shared by
``decstation-5000-125-ultrix43`` and ``decstation-5000-200-ultrix`` (:mod:`sim.platforms.decstation`,
which adds each machine's hardware rows). Sources name rows of ``docs/calibration.md``; the rows
marked [D] or [EST] there carry their derivation.

Some rows were derived on the 3MIN and still fold its memory stalls into a cycle count (the
checksum's 9 stall cycles per 400 ns read miss, the exception frame's 6-cycle writes); a profile
for another memory system overrides the rows that are purely a memory timing (see the 5000/200).
"""
from __future__ import annotations

from .base import CALIBRATION, Cost

C = CALIBRATION

#: Ultrix 4.3's kernel costs, by :class:`~sim.platforms.base.Platform` field name.
ULTRIX_SOFTWARE: dict[str, Cost] = {
    "checksum_uncached_cycles_per_word": Cost(17.125, "cycles/word", (
        f"[D] {C}: the tuned routine is 150 % faster than Ultrix 4.2A's, so Ultrix spends "
        "2.5 x its 3.25 instruction cycles per word = 8.125, plus the same 9 stall cycles per "
        "400 ns read miss")),
    "checksum_cached_cycles_per_word": Cost(8.125, "cycles/word", (
        f"[D] {C}: 2.5 x the tuned loop's 3.25 cycles per word (150 % faster)")),
    "checksum_call_cycles": Cost(30, "cycles", (
        "estimate: prologue, carry fold and return, about 15 instructions at CPI 2 "
        "(as for Aegis)")),
    "syscall_cycles": Cost(261, "cycles", (
        "estimate, counted in ULTRIX 4.2 sys/machine/mips/locore.s (docs/ultrix_model.md, "
        "'System call'; checked by docs/validation.md U1): the general exception entry for a trap from user mode (switch to the "
        "kernel stack, save sp, gp, AT, k1, a0-a3, the 3MIN's ipllevel, cause, s0, ra, epc, "
        "sr: 34 instructions, 15 stores), VEC_syscall (10 instructions, v0/v1 saved), "
        "syscall() in trap.c (estimate: sysent lookup, the arguments, setjmp of u_qsave "
        "with 12 stores, the return value, the AST/signal check: about 100 instructions, 16 "
        "stores), getpid (5) and exception_exit (32, with the interrupt-mask register's "
        "write and read back): 181 instructions, one cycle each with warm caches (the "
        "measured loop), plus the write buffer's stalls where stores come in bursts (the "
        "entry's 15 and setjmp's 12 at 6 cycles a word beyond its 4 entries: about 65) and "
        "the read back waiting for it to drain (15): 261 cycles = 10.4 us. The earlier "
        "802 (a 40-word frame and 270 instructions at CPI 2.08) saved the full frame, "
        "which only VEC_trap does (tfi_save, s1-s8), and counted cold-cache CPI in a warm "
        "path; VALIDATION.md U1 measured 11 us")),
    "context_switch_cycles": Cost(712, "cycles", (
        f"[D] {C} (derivation in 'Derived and estimated rows'): swtch(): save 12 callee-saved "
        "words (72 cycles), run-queue search, pmap/ASID change and the wired TLB entries of "
        "the new u-area, about 250 instructions x CPI 2.08 = 520, reload 12 words of a cold "
        "PCB (120): 712 cycles = 28.5 us; excludes the system calls that block and wake")),
    "exception_dispatch_cycles": Cost(3250, "cycles", (
        f"[S] {C}: overflow exception, Ultrix: 130.0 us (SOSP'95 table 5); about 100x "
        "Aegis (SOSP'95 section 1). Not charged by the Ultrix model: a caught exception runs "
        "ULTRIX 4.2's trap/psignal/sendsig/sigreturn path (sw/ultrix/signals.py, instruction "
        "estimates), which docs/validation.md X1-1/X1-3 check against this value")),
    "interrupt_dispatch_cycles": Cost(490, "cycles", (
        f"estimate ({C}: derivation in 'Derived and estimated rows'): the kernel-internal "
        "path, no upcall: save the exception frame (40 words x 6 cycles = 240), decode the "
        "cause, call through the interrupt table and restore, about 120 instructions x CPI "
        "2.08 = 250: 490 cycles = 19.6 us")),
    "demux_dpf_cycles": Cost(37.5, "cycles", (
        f"[S] {C}: DPF 1.5 us (SOSP'95 table 7); not used by Ultrix's protocol-switch "
        "demultiplexing, kept so the profiles have the same fields")),
    "demux_mpf_cycles": Cost(875, "cycles", (
        f"[S] {C}: MPF 35.0 us (SOSP'95 table 7), the packet filter Ultrix-era systems "
        "interpreted")),
    "pcb_lookup_per_entry_cycles": Cost(43, "cycles/entry", (
        f"estimate ({C}: 4.4BSD PCB lookup, one-entry cache else linear scan): about 12 "
        "instructions per PCB at CPI 2.08 = 25 cycles plus two data-cache misses at 9 stall "
        "cycles")),
    "tcp_per_packet_cycles": Cost(417, "cycles", (
        f"[D] {C}: TCP common path, fewer than 200 instructions per packet x CPI 2.08; "
        "mbuf and socket work is charged separately by the Ultrix model")),
    "ip_per_packet_cycles": Cost(208, "cycles", (
        "estimate: IP fast path about half the TCP common path, 100 instructions x CPI 2.08")),
    "select_base_cycles": Cost(615, "cycles", (
        "estimate, counted in ULTRIX 4.2 sys/sys/sys_generic.c select() and selscan() with the "
        "MIPS routines they call (sys/machine/mips/usercopy.s, locore.s; docs/ultrix_model.md "
        "'select'; checked by docs/validation.md U3) for select(nd, &in, 0, 0, &tv) on one "
        "descriptor with a zero timeout: the prologue and epilogue with the two 24-byte "
        "fd_mask arrays on the stack (about 24), the nd bound and ni (8), bzero of both arrays "
        "(31 instructions each: the word loop, MINZERO 12), the copyin loop over the three sets "
        "(about 13 per set) and copyin of the one fd_mask word (copyin: 15 instructions to set "
        "and clear the cpudata nofault handler around bcopy, bcopy's byte loop for under "
        "MINCOPY = 8 bytes: 25), copyin of the timeval (bcopy's word loop: 46 in all), "
        "itimerfix (18), splhigh/timevaladd/spl0 (the 3MAX's spl is the MIPS_ARCH_SPL_ORIG "
        "path: 5 instructions moving the status register plus the 2 of the mips_spl_arch_type "
        "test, no interrupt-mask register write; timevaladd with timevalfix about 25), "
        "p_select = SSEL and nselcoll (8), selscan's frame with nine saved registers (about "
        "26) and its loop over the three sets, each with ffs() of the mask word (ffs is a "
        "bit loop: 4 instructions for an empty word) (about 29 per set; the descriptor's own "
        "ffs bits and fo_select are select_per_fd_cycles), spl6, the timeout test and spl0 "
        "(29), the copyout loop and copyout of the result word (about 87): about 540 "
        "instructions. The measured loop runs them warm, as U1's system call (see "
        "syscall_cycles: one cycle per instruction with warm caches), plus the write buffer's "
        "stalls on the bursts of stores (select's and selscan's register saves beyond its 4 "
        "entries, the bzero loops: about 75 cycles): 615 cycles = 24.6 us. (The earlier 375 "
        "counted about 180 instructions at CPI 2.08; the 540 at CPI 2.08 would give 1123 "
        "cycles and put U3-1 at +38 %, so the measured base of about 28 us itself says the "
        "path ran warm.) On the 3MIN each of the four spl calls instead writes the IOASIC "
        "interrupt mask and reads it back (14 instructions and a write-buffer drain), about "
        "90 cycles more that this shared row does not hold")),
    "select_per_fd_cycles": Cost(125, "cycles", (
        "estimate, instruction counts of ULTRIX 4.2 selscan() and soo_select(): ffs() of the mask word (a "
        "bit loop, about 15 instructions for the low descriptors), the u_omax bound and "
        "U_OFILE, the indirect fo_select call, soo_select's splnet/splx and socket lock, "
        "soreadable() and, for an empty socket, sbselqueue(): about 60 instructions x CPI "
        "2.08")),
    "fork_cycles": Cost(320_000, "cycles", (
        "estimate: fork() of a small httpd: Ultrix on MIPS copies the writable pages; about "
        "64 KB of data and stack plus the 8 KB u-area = 18 k words at 16.375 cycles = 300 k "
        "cycles, plus about 20 k cycles of proc and page-table setup: 12.8 ms")),
}
