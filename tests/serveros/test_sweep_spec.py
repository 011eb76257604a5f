"""Sweep files: parsing, checks naming the line, and the plans of each mode."""
from __future__ import annotations

import pytest

from serveros.experiments import paper
from serveros.sweep.plan import combinations, plan_sweep, row_columns
from serveros.sweep.spec import SweepError, key_lines, load_sweep, parse_sweep

GOOD = """\
# a comment
[sweep]
name = "t"

[hardware]
network = ["ethernet", "an2"]

[software]
server = ["cheetah", "harvest"]

[workload]
doc_bytes = [100, 1024]
clients = 2
requests = 3
"""


def _error(text: str) -> SweepError:
    with pytest.raises(SweepError) as e:
        parse_sweep(text, "s.toml")
    return e.value


def test_a_good_file_gives_its_axes_and_defaults():
    s = parse_sweep(GOOD, "s.toml")
    assert (s.name, s.mode, s.samples) == ("t", "grid", None)
    by = {a.qualname: a for a in s.axes}
    assert by["hardware.network"].values == ("ethernet", "an2")
    assert by["hardware.network"].line == 6
    assert by["workload.clients"].values == (2,) and by["workload.clients"].line == 13
    # defaults: serveros run's
    assert by["workload.seed"].values == (1,) and by["workload.seed"].line == 0
    assert by["workload.client"].values == ("pentium",)
    assert "hardware.pipes" not in by


@pytest.mark.parametrize("text, line, words", [
    ("[sweep]\nmode = \"grid\"\n[workload]\nclients = [1, 2\n", 4, "bad TOML"),
    ("[workload]\nclients = 2\n\n[hardwere]\nnetwork = \"an2\"\n", 4, "unknown section [hardwere]"),
    ("[workload]\nclients = 2\nclient_count = 3\n", 3, "unknown parameter workload.client_count"),
    ("[workload]\nrequests = 5\nclients = [1, 500]\n", 3, "workload.clients: must be 1..200, not 500"),
    ("[workload]\n\ndoc_bytes = [100, \"big\"]\n", 3, "must be an integer"),
    ("[workload]\nclients = 2.0\n", 2, "must be an integer"),
    ("[workload]\nclients = true\n", 2, "must be an integer"),
    ("[hardware]\nnetwork = \"fddi\"\n", 2, "must be one of ethernet, an2"),
    ("[hardware]\nnetwork = []\n", 2, "empty list"),
    ("[workload]\nseed = [1, 2,\n  1]\n", 2, "names 1 twice"),
    ("[software]\nserver = \"apache\"\n", 2, "unknown server 'apache'"),
    ("[sweep]\nsamples = 4\n", 2, "sweep.samples is for mode"),
    ("[sweep]\nmode = \"lhs\"\n", 2, "needs sweep.samples"),
    ("[sweep]\nmode = [\"grid\", \"lhs\"]\n", 2, "takes one value"),
    ("[sweep]\nmode = \"sobol\"\n", 2, "must be one of grid, random, lhs"),
    ("workload.clients = 0\n", 1, "workload.clients: must be 1..200, not 0"),
    ("[workload]\nclients = [[1, 2]]\n", 2, "a value is a number or a string"),
    ("", 1, "names no parameter"),
])
def test_a_bad_file_is_refused_naming_its_line(text, line, words):
    e = _error(text)
    assert e.line == line, str(e)
    assert str(e).startswith(f"s.toml:{line}: ") and words in str(e)


def test_a_sample_larger_than_the_grid_is_refused_at_samples():
    s = parse_sweep("[sweep]\nmode = \"random\"\nsamples = 5\n[workload]\nclients = [1, 2]\n",
                    "s.toml")
    with pytest.raises(SweepError, match=r"^s\.toml:3: .*only 2 combinations"):
        combinations(s)


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(SweepError, match=r"cannot read"):
        load_sweep(tmp_path / "missing.toml")


def test_key_lines_follow_sections_and_skip_array_items():
    text = "[a]\nx = [\n  1,\n  2]\ny = 'z = 3'\n[b]\nx = 1\n"
    assert key_lines(text) == {("a",): 1, ("a", "x"): 2, ("a", "y"): 5, ("b",): 6,
                               ("b", "x"): 7}


def test_a_grid_is_every_combination_first_axis_outermost():
    pts = plan_sweep(parse_sweep(GOOD, "s.toml"))
    got = [(p.point.server, p.point.network, p.point.doc_bytes) for p in pts]
    assert got == [(s, n, d) for s in ("cheetah", "harvest") for n in ("ethernet", "an2")
                   for d in (100, 1024)]
    p = pts[0].point
    assert (p.figures, p.clients, p.requests, p.seed, p.backend) == (
        (paper.SWEEP_FIGURE,), 2, 3, 1, "model")
    # a paper document reads the paper's image; another figure c's with it
    assert pts[0].image == paper.DOC_SIZES
    assert all(p.image == paper.DOC_SIZES for p in pts)


def test_pipes_apply_to_cheetah_only_other_servers_run_once():
    text = "[hardware]\npipes = [\"none\", \"sw\"]\n[software]\nserver = [\"cheetah\", \"harvest\"]\n"
    pts = plan_sweep(parse_sweep(text, "s.toml"))
    assert [(p.point.server, p.point.pipes) for p in pts] == [
        ("cheetah", "none"), ("cheetah", "sw"), ("harvest", None)]
    assert row_columns(pts[2])["pipes"] == "none"
    assert pts[1].point.label.endswith("[pipes=sw]")


def test_random_and_lhs_samples_are_seeded_distinct_and_in_grid_order():
    base = ("[sweep]\nmode = \"{m}\"\nsamples = {n}\nseed = {s}\n"
            "[workload]\nclients = [1, 2, 3, 4]\ndoc_bytes = [0, 10, 100, 1024]\n")
    for mode in ("random", "lhs"):
        a = combinations(parse_sweep(base.format(m=mode, n=4, s=7)))
        assert a == combinations(parse_sweep(base.format(m=mode, n=4, s=7)))
        assert len(set(a)) == len(a) and a == sorted(a)
        assert len(a) == 4 or mode == "lhs"
    seeds = {tuple(combinations(parse_sweep(base.format(m="random", n=4, s=s))))
             for s in range(5)}
    assert len(seeds) > 1


def test_lhs_uses_every_value_of_every_axis_once_with_as_many_samples():
    text = ("[sweep]\nmode = \"lhs\"\nsamples = 4\nseed = 3\n"
            "[workload]\nclients = [1, 2, 3, 4]\ndoc_bytes = [0, 10, 100, 1024]\n")
    s = parse_sweep(text)
    combos = combinations(s)
    axes = [a.qualname for a in s.axes]
    for name in ("workload.clients", "workload.doc_bytes"):
        i = axes.index(name)
        assert sorted(c[i] for c in combos) == [0, 1, 2, 3]


PAPER = """\
[software]
server = ["cheetah", "ncsa"]

[workload]
requests = 7

[[part]]                  # figure a
doc_bytes = [0, 10, 100, 1024, 10240]
clients = 4

[[part]]                  # figure b
doc_bytes = 100
clients = [1, 2, 3, 4, 5, 6]
"""


def test_parts_are_a_union_of_grids_each_point_once():
    """The paper's figures a and b as two parts: 5 + 6 points per server, the 100-byte
    4-client point shared: serveros run's points, in a sweep."""
    s = parse_sweep(PAPER, "p.toml")
    assert [a.qualname for a in s.parts[1]] == ["workload.doc_bytes", "workload.clients"]
    assert s.parts[1][1].line == 13
    got = [(p.point.server, p.point.doc_bytes, p.point.clients) for p in plan_sweep(s)]
    assert len(got) == len(set(got)) == 20
    run = paper.plan_points(("a", "b"), ["cheetah", "ncsa"], requests=7)
    assert sorted(got) == sorted((p.server, p.doc_bytes, p.clients) for p in run)
    assert all(p.point.requests == 7 for p in plan_sweep(s))


@pytest.mark.parametrize("text, line, words", [
    (PAPER + "\n[[part]]\nclient_count = 2\n", 16, "unknown parameter client_count in [[part]]"),
    (PAPER + "\n[[part]]\nclients = 0\n", 16, "workload.clients: must be 1..200, not 0"),
    (PAPER.replace("[workload]", "[sweep]\nmode = \"lhs\"\nsamples = 3\n[workload]"), 10,
     "grids of their own"),
    ("[[part]]\n", 1, "names no parameter"),
    ("part = 3\n", 1, "must be [[part]] tables"),
])
def test_a_bad_part_is_refused_naming_its_line(text, line, words):
    e = _error(text)
    assert e.line == line and words in str(e), str(e)
