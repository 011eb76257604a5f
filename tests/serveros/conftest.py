"""Fixtures shared by the serveros command tests."""
import pytest

from serveros.experiments import paper


@pytest.fixture
def planned_run(monkeypatch):
    """``serveros run`` without simulating: ``paper.run_paper`` records the points it is given
    (``seen["points"]``) and returns no rows, ``paper.write_results`` records the meta
    (``seen["meta"]``); returns ``seen``."""
    seen = {}

    def run_paper(points, **kw):
        seen["points"] = points
        return []

    def write_results(rows, out, meta):
        seen["meta"] = meta
        return {}
    monkeypatch.setattr(paper, "run_paper", run_paper)
    monkeypatch.setattr(paper, "write_results", write_results)
    return seen
