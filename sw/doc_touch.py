"""What a server's CPU did to the documents it served: bytes touched, cache lines flushed,
pages mapped (issue 16: the zero-copy claim, measured).

The server OS paper's claim for a DMA card is that with the combined disk cache and
retransmission pool, precomputed checksums and scatter/gather, the CPU never touches, flushes
or even maps the data it serves. Every piece of simulated software that makes a CPU do one of
these things to a document's bytes records it here, on the host that does it
(``host.doc_touch``), at the place it charges the CPU for it:

* :meth:`DocTouch.touched`: the CPU read or wrote ``n`` bytes of document data (a copy out of
  the file cache, a copy into a socket buffer, a software checksum over them, a programmed-I/O
  copy into a card's buffer memory): each byte counts once per pass over it;
* :meth:`DocTouch.flushed`: the CPU wrote back or invalidated ``n`` data-cache lines holding
  document data (the R3000's data cache is not coherent with DMA);
* :meth:`DocTouch.mapped`: ``n`` pages holding document data were mapped into an address
  space (a TLB entry or page-table entry made for them).

A server's ``stats()`` reports the three totals; the experiment divides by the requests served.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DocTouch"]


def _count(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {n!r}")
    return n


@dataclass
class DocTouch:
    """Running totals of what a host's CPU did to served document data."""

    touched_bytes: int = 0
    lines_flushed: int = 0
    pages_mapped: int = 0

    def touched(self, n: int) -> None:
        """The CPU read or wrote ``n`` bytes of document data (one pass)."""
        self.touched_bytes += _count("bytes touched", n)

    def flushed(self, n: int) -> None:
        """The CPU flushed or invalidated ``n`` data-cache lines of document data."""
        self.lines_flushed += _count("lines flushed", n)

    def mapped(self, n: int) -> None:
        """``n`` pages of document data were mapped into an address space."""
        self.pages_mapped += _count("pages mapped", n)

    def reset(self) -> None:
        """Start counting again (at the start of a measured interval)."""
        self.touched_bytes = self.lines_flushed = self.pages_mapped = 0

    def as_dict(self) -> dict:
        """``{"cpu_touched_doc_bytes", "doc_cache_lines_flushed", "doc_pages_mapped"}``: the
        names servers' ``stats()`` and results rows use."""
        d = asdict(self)
        return {"cpu_touched_doc_bytes": d["touched_bytes"],
                "doc_cache_lines_flushed": d["lines_flushed"],
                "doc_pages_mapped": d["pages_mapped"]}
