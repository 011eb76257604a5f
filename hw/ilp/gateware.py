"""A pipe list compiled to a streaming datapath: one 32-bit word per cycle, one stage per pipe.

Design contract: docs/ilp_pipes.md; the language: :mod:`hw.ilp.registers`; each pipe's
arithmetic: :mod:`hw.ilp.stage`; the cycle-exact twin: :mod:`hw.ilp.model`.

Structure
---------
* **Stages.** Pipe ``k`` of the list is stage ``k``: its body, unrolled into combinational
  logic (:func:`~hw.ilp.stage.body_logic`), takes the word leaving stage ``k - 1``'s register
  (stage 0: the input port) and its result is registered at the end of the cycle in stage
  ``k``'s register (word, ``last``, valid). A word therefore leaves ``N`` cycles after it is
  taken, for ``N`` pipes, and every stage works on a different word each cycle. One stage per
  pipe keeps each pipe's logic (at most 64 unrolled instructions) between two registers, so
  the datapath's logic depth is that of its deepest pipe, not of their sum.
* **Handshake** (Amaranth ``lib.stream``: a transfer when ``valid`` and ``ready`` are both
  high at a clock edge). Stage ``k`` takes a word when it is empty or its own word moves on in
  the same cycle: ``ready[k] = ~valid[k] | ready[k + 1]``, ``ready[N] = o_stream.ready``. So
  a bubble anywhere lets the words behind it advance (the pipeline compacts), the input is
  ready unless all ``N`` stages are full and the output is stalled, and no word is dropped or
  duplicated under any stall pattern: a stage's register changes only when its word is taken
  downstream or it was empty. ``i_stream.ready`` depends combinationally on
  ``o_stream.ready`` (not on ``i_stream.valid``); ``o_stream.valid`` is a register.
* **Accumulators.** Each pipe's persistent registers (r6, r7) are updated by the stage when
  it takes a word; when the word is a packet's ``last``, they return to their ``init`` values
  for the next packet, and their values after that last word are captured in the stage's
  *final* registers. While the last word sits in the stage, the pipe's ``fini``
  (combinational) runs on the final registers, so its logic is a register-to-register path
  of its own rather than an extension of the accumulation's. The next stage (or the output)
  takes the results with the word: each stage holds the results of the pipes before it in a
  register loaded with the last word, so a packet that follows directly behind cannot
  disturb the results of the one before.
* **Results.** When the output hands over a ``last`` word, the results it carries are copied
  into the persistent ``results`` register and ``done`` is high for the next cycle: the
  results are valid from that cycle until the next packet's ``done``.

The semantics are exactly :func:`hw.ilp.registers.run` of each pipe in list order, per packet
(tests/hw/test_ilp_gateware.py and the cocotb benches check it).
"""
from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pipelist import PipeList
from .registers import PERSISTENT, Pipe
from .stage import body_logic, fini_logic

__all__ = ["WORD_LAYOUT", "PipeDatapath"]

#: One stream word: 32 data bits (network order) and the packet's ``last`` flag.
WORD_LAYOUT = data.StructLayout({"data": 32, "last": 1})


class PipeDatapath(PipeList, wiring.Component):
    """A pipe list as a pipelined streaming datapath (see the module docstring).

    Parameters
    ----------
    pipes : sequence of Pipe
        The pipes, in the order words pass through them (keyword-only).

    Members
    -------
    i_stream : In(stream.Signature(WORD_LAYOUT))
        Words entering (``payload.data``, ``payload.last`` on a packet's last word).
    o_stream : Out(stream.Signature(WORD_LAYOUT))
        Words leaving, in order, ``N = len(pipes)`` cycles after they are taken at the least.
    results : Out(data.ArrayLayout(32, n))
        Every pipe's result registers after its ``fini``, in ``result_names`` order; they
        hold the last finished packet's values.
    done : Out(1)
        High for one cycle, the cycle after a ``last`` word's output transfer: ``results``
        holds that packet's values from then on.

    Raises
    ------
    TypeError, ValueError, PipeError
        From :func:`hw.ilp.pipelist.check_pipes`.
    """

    def __init__(self, *, pipes: Sequence[Pipe]):
        try:
            PipeList.__init__(self, pipes=pipes)
        except (TypeError, ValueError):
            self._MustUse__silence = True      # refused: no "created but never used" warning
            raise
        wiring.Component.__init__(self, {
            "i_stream": In(stream.Signature(WORD_LAYOUT)),
            "o_stream": Out(stream.Signature(WORD_LAYOUT)),
            "results": Out(data.ArrayLayout(32, max(1, len(self.result_names)))),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self._pipes)
        valid = [Signal(name=f"s{k}_valid") for k in range(n)]
        word = [Signal(32, name=f"s{k}_data") for k in range(n)]
        last = [Signal(name=f"s{k}_last") for k in range(n)]
        ready = [Signal(name=f"s{k}_ready") for k in range(n)] + [self.o_stream.ready]
        in_valid, in_word, in_last = (self.i_stream.valid, self.i_stream.payload.data,
                                      self.i_stream.payload.last)
        in_results = None       # the results riding with the word entering stage k
        for k, pipe in enumerate(self._pipes):
            prefix = f"p{k}"
            acc = {r: Signal(32, name=f"{prefix}_acc_r{r}", init=pipe.init.get(r, 0))
                   for r in sorted(PERSISTENT) if _accumulates(pipe, r)}
            acc_in = {r: acc.get(r, Const(pipe.init.get(r, 0), 32)) for r in PERSISTENT}
            out, acc_next = body_logic(m, pipe, word=in_word, acc=acc_in, prefix=prefix)
            # A last word's accumulators are captured with it; fini runs on the captured
            # values while the word sits in this stage, so its logic is a path of its own
            # (register to register), not added to the accumulation's.
            final = {r: Signal(32, name=f"{prefix}_final_r{r}") for r in acc}
            final_in = {r: final.get(r, acc_in[r]) for r in PERSISTENT}
            mine = fini_logic(m, pipe, acc=final_in, prefix=prefix) if pipe.results else []
            held = (Signal(len(in_results), name=f"s{k}_results_in")
                    if in_results is not None else None)
            m.d.comb += ready[k].eq(~valid[k] | ready[k + 1])
            take = in_valid & ready[k]
            with m.If(ready[k]):
                m.d.sync += valid[k].eq(in_valid)
            with m.If(take):
                m.d.sync += [word[k].eq(out), last[k].eq(in_last)]
                for r, sig in acc.items():
                    m.d.sync += sig.eq(acc_next[r])
                with m.If(in_last):
                    for r, sig in acc.items():
                        m.d.sync += [sig.eq(pipe.init.get(r, 0)), final[r].eq(acc_next[r])]
                    if held is not None:
                        m.d.sync += held.eq(in_results)
            parts = ([held] if held is not None else []) + mine
            in_results = Cat(*parts) if parts else None
            in_valid, in_word, in_last = valid[k], word[k], last[k]
        m.d.comb += [
            self.i_stream.ready.eq(ready[0]),
            self.o_stream.valid.eq(valid[-1]),
            self.o_stream.payload.data.eq(word[-1]),
            self.o_stream.payload.last.eq(last[-1]),
        ]
        finished = self.o_stream.valid & self.o_stream.ready & self.o_stream.payload.last
        m.d.sync += self.done.eq(finished)
        if in_results is not None:
            with m.If(finished):
                m.d.sync += self.results.as_value().eq(in_results)
        return m


def _accumulates(pipe: Pipe, r: int) -> bool:
    """Whether ``pipe``'s body accumulates into persistent register ``r`` (only then does it
    need flip-flops: otherwise ``r`` keeps its ``init`` value, a constant)."""
    return any(ins[0] not in ("ldw", "stw") and len(ins) > 1 and ins[1] == r
               for ins in pipe.body)
