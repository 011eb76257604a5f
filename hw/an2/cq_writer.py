"""The AN2 card's completion writer: the completion queue, its phase bit and interrupt coalescing.

One of the parts of :class:`~hw.an2.gateware.An2Card` (docs/an2_card.md, "Completions,
coalescing and interrupts"). The transmit and receive engines each ask it to write one
:data:`~hw.an2.registers.completion_layout` entry and wait until it is done; it serves them
one at a time, the receive engine first when both ask in the same cycle.

Timing (edges; :mod:`hw.an2.timing`): a request seen in the cycle before edge ``t`` starts the
entry's 4-word write burst at ``t`` (unless the queue is full: then at the edge the host's
CqConsumer write that makes room takes effect); the burst ends at ``E`` (the edge after its last
``ack``), CqProducer advances and the coalescing decision is taken at ``E +
CQ_UPDATE_CYCLES``, and the requesting engine continues from that edge (``done`` is high in
the cycle before it). A refused burst (a ring fault) ends the request at the edge that samples
``err`` with ``failed``.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from . import timing as T
from .dma_arbiter import MASTER_BUS
from .registers import COALESCE_TIME_BITS, ENTRY_WORDS, completion_layout

__all__ = ["CqWriter", "CqRequest"]


class CqRequest:
    """One engine's request port to the :class:`CqWriter` (plain signals).

    Attributes
    ----------
    req : level, from the engine: write ``entry`` (the ``phase`` field is the writer's); held
        with ``entry`` stable until ``done``.
    entry : the completion, ``completion_layout``.
    done : strobe, to the engine: the cycle before the edge it continues from.
    failed : with ``done``: the burst was refused (a ring fault).
    """

    def __init__(self, name: str):
        self.req = Signal(name=f"{name}_cq_req")
        self.entry = Signal(completion_layout, name=f"{name}_cq_entry")
        self.done = Signal(name=f"{name}_cq_done")
        self.failed = Signal(name=f"{name}_cq_failed")


class CqWriter(wiring.Component):
    """Writes completion entries for ``len(requests)`` engines (the first has priority).

    Members
    -------
    dma : Out(MASTER_BUS)
        Bursts of the completion queue (owner 0, the kernel's).

    Attributes (plain signals)
    --------------------------
    requests : list of :class:`CqRequest`
    base, size, cons_next, cons_check : inputs, CqBase, CqSize, CqConsumer after the coming
        edge, a CqConsumer write at the coming edge
    coalesce_count, coalesce_time : inputs, the registers
    probe : input strobe, the receive engine checks the queue (Status.CqFull follows)
    full : the queue is full now (producer + 1 == consumer after the coming edge)
    prod : CqProducer
    cq_full : Status.CqFull
    cause : Irq bits set at the coming edge (Completion, CqFull)
    fault : a refused burst at the coming edge
    """

    def __init__(self, *, engines: int = 2):
        super().__init__({"dma": Out(MASTER_BUS)})
        self.requests = [CqRequest(f"e{i}") for i in range(engines)]
        self.base = Signal(32)
        self.size = Signal(13)
        self.cons_next = Signal(12)
        self.cons_check = Signal()
        self.coalesce_count = Signal(8)
        self.coalesce_time = Signal(COALESCE_TIME_BITS)
        self.probe = Signal()
        self.full = Signal()
        self.prod = Signal(12)
        self.cq_full = Signal()
        self.cause = Signal(4)
        self.fault = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        dma = self.dma
        n = len(self.requests)
        mask = Signal(12)
        m.d.comb += mask.eq(self.size - 1)
        phase = Signal(init=1)
        who = Signal(range(max(n, 2)))
        entry = Signal(completion_layout)
        word = Signal(range(ENTRY_WORDS))
        cnt = Signal(range(T.CQ_UPDATE_CYCLES + 1))
        pending = Signal(8)
        timer = Signal(COALESCE_TIME_BITS)
        prod_after = Signal(12)         # the producer as it is after the coming edge
        m.d.comb += prod_after.eq(self.prod)
        full_after = Signal()
        m.d.comb += [full_after.eq(((prod_after + 1) & mask) == self.cons_next),
                     self.full.eq(full_after)]
        set_full = Signal()
        clear_full = Signal()
        fire = Signal()

        m.d.comb += [dma.write.eq(1), dma.count.eq(ENTRY_WORDS), dma.owner.eq(0),
                     dma.addr.eq(self.base + (self.prod << 4))]
        ew = Signal(128)
        m.d.comb += ew.eq(Cat(entry.as_value()[:7], phase, entry.as_value()[8:]))
        m.d.comb += dma.w_data.eq(ew.word_select(word, 32))

        def accept(others_only):
            """Take the highest-priority waiting request (decided in this cycle); with
            ``others_only``, not the one just served."""
            for i in reversed(range(n)):
                r = self.requests[i]
                with m.If(((who != i) if others_only else Const(1)) & r.req):
                    m.d.sync += [who.eq(i), entry.eq(r.entry)]
                    with m.If(full_after):
                        m.d.comb += set_full.eq(1)
                        m.next = "WaitSpace"
                    with m.Else():
                        m.d.comb += clear_full.eq(1)
                        m.d.sync += [dma.req.eq(1), word.eq(0)]
                        m.next = "Burst"

        with m.FSM(name="cq"):
            with m.State("Idle"):
                accept(False)
            with m.State("WaitSpace"):
                with m.If(self.cons_check & ~full_after):
                    m.d.comb += clear_full.eq(1)
                    m.d.sync += [dma.req.eq(1), word.eq(0)]
                    m.next = "Burst"
            with m.State("Burst"):
                with m.If(dma.err):
                    m.d.sync += dma.req.eq(0)
                    m.d.comb += self.fault.eq(1)
                    for i, r in enumerate(self.requests):
                        m.d.comb += [r.done.eq(who == i), r.failed.eq(who == i)]
                    m.next = "Idle"
                with m.Elif(dma.ack):
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == ENTRY_WORDS - 1):
                        m.d.sync += [dma.req.eq(0), cnt.eq(0)]
                        m.next = "Update"
            with m.State("Update"):
                # The burst's end edge E is the one after its last ack; this state's first
                # cycle ends at E, its last (cnt == CQ_UPDATE_CYCLES) at E + CQ_UPDATE_CYCLES.
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == T.CQ_UPDATE_CYCLES):
                    nxt = (self.prod + 1) & mask
                    m.d.comb += prod_after.eq(nxt)
                    m.d.sync += self.prod.eq(nxt)
                    with m.If(nxt == 0):
                        m.d.sync += phase.eq(~phase)
                    for i, r in enumerate(self.requests):
                        m.d.comb += r.done.eq(who == i)
                    # Coalescing: count, or start the timer on the first pending completion.
                    with m.If(pending + 1 >= Mux(self.coalesce_count == 0, 1, self.coalesce_count)):
                        m.d.comb += fire.eq(1)
                    with m.Elif((pending == 0) & (self.coalesce_time != 0)):
                        m.d.sync += timer.eq(self.coalesce_time)
                    m.d.sync += pending.eq(pending + 1)
                    m.next = "Idle"
                    # The other engine, waiting, starts at the edge this one continues from.
                    accept(True)
        # The coalescing timer: fires CoalesceTime cycles after the first pending completion.
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If((timer == 1) & (pending != 0)):
                m.d.comb += fire.eq(1)
        with m.If(fire):
            m.d.sync += [pending.eq(0), timer.eq(0)]
        # Status.CqFull and IrqCause.CqFull follow the checks (the model's points of decision).
        with m.If(self.probe | self.cons_check):
            with m.If(full_after):
                m.d.comb += set_full.eq(1)
            with m.Else():
                m.d.comb += clear_full.eq(1)
        with m.If(set_full):
            m.d.sync += self.cq_full.eq(1)
        with m.Elif(clear_full):
            m.d.sync += self.cq_full.eq(0)
        m.d.comb += self.cause.eq(Cat(fire, set_full & ~self.cq_full))
        return m
