"""The sweep files shipped in sweeps/: each parses and plans (so none rots as parameters
change), smoke.toml stays small, paper.toml holds exactly figures a's and b's points, and hwsw.toml
spans the hardware/software study's axes."""
from pathlib import Path

import pytest

from serveros.experiments import paper
from serveros.sweep.bench import bench_points
from serveros.sweep.plan import plan_sweep
from serveros.sweep.spec import load_sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
FILES = sorted(SWEEPS.glob("*.toml"))


def test_the_examples_are_shipped():
    assert {f.name for f in FILES} >= {"smoke.toml", "paper.toml", "hwsw.toml"}


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_every_shipped_sweep_parses_and_plans(path):
    sweep = load_sweep(path)
    points = plan_sweep(sweep)
    assert points and sweep.name == path.stem
    assert len({sp.point for sp in points}) == len(points)


def combos(path):
    return {(sp.point.server, sp.point.network, sp.point.doc_bytes, sp.point.clients)
            for sp in plan_sweep(load_sweep(path))}


def test_smoke_is_at_most_8_short_points():
    points = plan_sweep(load_sweep(SWEEPS / "smoke.toml"))
    assert len(points) <= 8
    assert all(sp.point.clients * sp.point.requests <= 40 for sp in points)


def test_paper_sweep_holds_figure_a_and_b_points():
    planned = paper.plan_points(("a", "b"), tuple(paper.SERVERS), requests=1000)
    got = {(s, d, c) for s, net, d, c in combos(SWEEPS / "paper.toml") if net == "ethernet"}
    assert {(p.server, p.doc_bytes, p.clients) for p in planned} == got
    assert len(plan_sweep(load_sweep(SWEEPS / "paper.toml"))) == len(planned) == 30
    assert {sp.point.requests for sp in plan_sweep(load_sweep(SWEEPS / "paper.toml"))} == {1000}


def test_hwsw_spans_the_study():
    points = plan_sweep(load_sweep(SWEEPS / "hwsw.toml"))
    p = [sp.params for sp in points]
    assert {x["hardware.cpu_mhz"] for x in p} == {16, 20, 25, 31.25, 40}
    assert {x["hardware.network"] for x in p} == {"ethernet", "an2"}
    assert {x["software.server"] for x in p} == {"cheetah", "harvest"}
    assert {x["workload.doc_bytes"] for x in p} == {100, 10240}
    assert {x["hardware.pipes"] for x in p if x["software.server"] == "cheetah"} == {"sw", "hw"}
    assert {sp.point.pipes for sp in points if sp.point.server == "harvest"} == {None}


def test_the_benchmark_sweep_is_valid_and_refuses_bad_input():
    pts = bench_points(requests=5)
    assert len(pts) == 8 and len(set(pts)) == 8 and {p.requests for p in pts} == {5}
    with pytest.raises(ValueError, match="requests must be an integer >= 1"):
        bench_points(requests=0)
    from serveros.sweep.bench import sweep_benchmarks
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        sweep_benchmarks(repeats=0)                     # refused before anything runs
