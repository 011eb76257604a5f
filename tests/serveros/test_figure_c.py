"""Figure c (beyond the paper): Ethernet against the AN2 card. The plan's grid and networks,
the link limits, the new row fields, a tiny run writing rows and figure_c.png, determinism,
and clear errors."""
import json

import pytest

from serveros.cli import main
from serveros.experiments import figure_c, paper
from sim.media import aal5, atm
from sim.time import S
from sw.clients.http import DEFAULT_TIMEOUT_PS

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    sizes = figure_c.image_sizes(paper.DOC_SIZES, ())
    return paper.build_documents_image(tmp_path_factory.mktemp("img") / "docs.img", sizes)


def test_plan_covers_0_to_1_mib_and_1_to_16_clients_on_both_networks():
    pts = paper.plan_points(("c",), ["cheetah", "ncsa"], requests=50)
    combos = figure_c.figure_c_combos()
    assert len(pts) == 2 * len(figure_c.NETWORKS) * len(combos)
    assert {p.doc_bytes for p in pts} == {0, 1024, 10240, 102400, 1 << 20}
    assert {p.clients for p in pts} == {1, 2, 4, 8, 16}
    assert (1 << 20, 8) in combos and len(set(combos)) == len(combos)
    assert {p.network for p in pts} == {"ethernet", "an2"}
    assert all(p.figures == ("c",) for p in pts)
    # Paired: a point over Ethernet and over AN2 draw the same numbers; names tell them apart.
    eth = {(p.server, p.doc_bytes, p.clients): p for p in pts if p.network == "ethernet"}
    for p in pts:
        if p.network == "an2":
            twin = eth[(p.server, p.doc_bytes, p.clients)]
            assert p.point_seed == twin.point_seed
            assert p.file_stem != twin.file_stem and p.label.endswith(" an2")
    assert len({p.file_stem for p in pts}) == len(pts)


def test_network_filter_and_the_paper_figures_unchanged():
    only = paper.plan_points(("c",), ["cheetah"], networks="an2")
    assert {p.network for p in only} == {"an2"}
    paper_pts = paper.plan_points(("a", "b"), ["cheetah"], networks="an2")
    assert all(p.network == "ethernet" for p in paper_pts)
    assert [p.file_stem for p in paper_pts][:2] == ["cheetah_0B_x4", "cheetah_10B_x4"]
    both = paper.plan_points(("a", "b", "c"), ["cheetah"], combos_c=[(100, 4)])
    assert [(p.figures, p.network) for p in both if p.doc_bytes == 100 and p.clients == 4] == [
        (("a", "b"), "ethernet"), (("c",), "ethernet"), (("c",), "an2")]


@pytest.mark.parametrize("text, want", [("c", ("c",)), ("c,a", ("a", "c")), ("all", ("a", "b")),
                                        ("a", ("a",))])
def test_parse_figures(text, want):
    assert paper.parse_figures(text) == want


@pytest.mark.parametrize("bad, what", [("ethernet,atm", "unknown network 'atm'"),
                                       ("an2,an2", "named twice"), (" , ", "no network")])
def test_bad_networks_are_named(bad, what):
    with pytest.raises(ValueError, match=what):
        figure_c.parse_networks(bad)
    with pytest.raises(ValueError, match="network"):
        paper.Point(("c",), "cheetah", 0, 1, 1, "model", 1, network="fddi")


def test_link_payload_rates_are_the_links_after_their_framing():
    assert figure_c.link_payload_bps("ethernet") == pytest.approx(10e6 * 1500 / 1538)
    assert figure_c.link_payload_bps("an2") == pytest.approx(149.76e6 * 48 / 53)
    assert atm.CELL_RATE_BPS == 149_760_000 and aal5.CELL_PAYLOAD == 48
    # TCP/IP over AAL5 with RFC 1626's MTU: 9140 payload bytes in 192 cells, below the limit.
    cells = -(-(9180 + 8 + aal5.TRAILER_LEN) // aal5.CELL_PAYLOAD)
    assert cells == 192
    tcp = atm.CELL_RATE_BPS * 9140 / (cells * atm.CELL_LEN)
    assert 0.99 < tcp / figure_c.link_payload_bps("an2") < 1


def test_fields_per_request_and_per_byte():
    f = figure_c.figure_c_fields(network="ethernet", ok_requests=4, doc_bytes_served=4096,
                                 goodput_bytes_per_s=1e6, busy_cycles=8192.0,
                                 touch={"cpu_touched_doc_bytes": 8192,
                                        "doc_cache_lines_flushed": 2, "doc_pages_mapped": 0})
    assert f["network"] == "ethernet" and f["cpu_cycles_per_doc_byte"] == 2.0
    assert f["goodput_fraction_of_link"] == pytest.approx(8e6 / (10e6 * 1500 / 1538))
    assert (f["cpu_touched_doc_bytes_per_request"], f["doc_cache_lines_flushed_per_request"],
            f["doc_pages_mapped_per_request"]) == (2048, 0.5, 0)
    z = figure_c.figure_c_fields(network="an2", ok_requests=0, doc_bytes_served=0,
                                 goodput_bytes_per_s=0.0, busy_cycles=10.0,
                                 touch={"cpu_touched_doc_bytes": 0,
                                        "doc_cache_lines_flushed": 0, "doc_pages_mapped": 0})
    assert z["cpu_cycles_per_doc_byte"] is None and z["cpu_touched_doc_bytes_per_request"] is None


def test_watchdog_grows_with_the_fair_share_of_the_link():
    assert figure_c.request_timeout_ps("an2", 0, 16) == DEFAULT_TIMEOUT_PS
    big = figure_c.request_timeout_ps("ethernet", 1 << 20, 16)
    fair = 16 * (1 << 20) * 8 / figure_c.link_payload_bps("ethernet")
    assert big == DEFAULT_TIMEOUT_PS + int(figure_c.TIMEOUT_MARGIN * fair * S) > 60 * S
    assert figure_c.request_timeout_ps("an2", 1 << 20, 16) < big


@pytest.mark.parametrize("network", figure_c.NETWORKS)
def test_tiny_run_writes_rows_with_the_new_columns_and_the_figure(network, image, tmp_path):
    pts = paper.plan_points(("c",), ["cheetah"], requests=2, seed=4, networks=network,
                            combos_c=[(0, 1), (10240, 2)])
    rows = paper.run_paper(pts, jobs=1, image_path=image)
    assert [(r["figure"], r["network"], r["doc_bytes"], r["clients"]) for r in rows] == [
        ("c", network, 0, 1), ("c", network, 10240, 2)]
    for r in rows:
        assert not paper.failed(r) and r["ok"] == r["requests"] == 2 * r["clients"]
        assert r["link_payload_bps"] == figure_c.link_payload_bps(network)
        assert r["goodput_fraction_of_link"] == pytest.approx(
            r["goodput_bytes_per_s"] * 8 / r["link_payload_bps"])
        for f in figure_c.TOUCH_FIELDS.values():
            assert isinstance(r[f], (int, float)) and r[f] >= 0
    empty, full = rows
    assert empty["cpu_cycles_per_doc_byte"] is None and empty["goodput_fraction_of_link"] == 0
    assert 0 < full["goodput_fraction_of_link"] < 1 and full["cpu_cycles_per_doc_byte"] > 0
    files = paper.write_results(rows, tmp_path)
    assert set(files) == {"json", "csv", "figure_c"}
    assert files["figure_c"].read_bytes()[:8] == PNG
    header = files["csv"].read_text().splitlines()[0].split(",")
    assert {"network", "cpu_touched_doc_bytes_per_request", "goodput_fraction_of_link"} <= set(
        header)
    again = paper.run_paper(pts, jobs=2, image_path=image)
    assert paper.rows_without_wall(again) == paper.rows_without_wall(rows)


def test_paper_rows_carry_the_network_and_touch_columns(image):
    pt = paper.plan_points(("b",), ["cheetah"], requests=2, clients=(1,))[0]
    (r,) = paper.run_point(pt, image)
    assert r["network"] == "ethernet" and r["figure"] == "b"
    assert r["cpu_touched_doc_bytes_per_request"] >= 0 and r["wire_busy_fraction"] > 0


def test_plot_refuses_no_rows_of_figure_c(tmp_path):
    from serveros.plots import plot_figure
    with pytest.raises(ValueError, match="figure 'c'"):
        plot_figure([{"figure": "a", "throughput_rps": 1.0}], "c", tmp_path / "c.png")


def test_rtl_kinds_go_to_the_points_whose_server_has_them():
    pts = paper.plan_points(("b", "c"), ["cheetah"], rtl="an2", backend="verilator",
                            clients=(1,), combos_c=[(0, 1)])
    assert [(p.figures, p.network, p.rtl, p.backend) for p in pts] == [
        (("b",), "ethernet", (), "model"), (("c",), "ethernet", (), "model"),
        (("c",), "an2", ("an2",), "verilator")]
    with pytest.raises(ValueError, match="no machine has a an2"):
        paper.plan_points(("b",), ["cheetah"], rtl="an2")
    assert paper.run_networks(("a",), ("an2",)) == ("ethernet",)
    assert paper.run_networks(("c",), ("an2",)) == ("an2",)


def test_rtl_kinds_name_the_server_machines_cards_only():
    """``--rtl an2`` puts the server's AN2 card on the HDL simulator; the clients' AN2 cards
    stay models (the CLI's "device kinds of the server machine")."""
    specs = paper.paper_machines("cheetah", 2, "pentium", None, 1, "an2")
    assert [d.kind for s in specs for d in s.devices].count("an2") == 3
    assert paper.server_rtl_instances(specs, ("an2",)) == [f"{specs[0].name}_an0"]
    assert paper.server_rtl_instances(specs, ("an2", "disk")) == [
        f"{specs[0].name}_{d.name}" for d in specs[0].devices if d.kind in ("an2", "disk")]
    assert paper.server_rtl_instances(specs, ()) == []


def test_results_meta_names_the_networks(tmp_path, planned_run):
    """The command passes figure c's networks to the results' meta (without simulating)."""
    seen = planned_run
    assert main(["run", "--figure", "c", "--network", "ethernet", "--servers", "cheetah",
                 "--requests", "1", "--out", str(tmp_path)]) == 0
    assert seen["meta"]["networks"] == ["ethernet"] and seen["meta"]["figures"] == ["c"]
    assert {p.network for p in seen["points"]} == {"ethernet"}
    json.dumps(seen["meta"])
