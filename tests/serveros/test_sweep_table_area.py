"""Area columns of a sweep's table (serveros.sweep.area): which points use hardware pipes,
the device's datapaths summed (one synthesis per device), software-only points 0, and the real
Yosys figures of the AN2 card's pipe lists (cached under build/synth/ilp/)."""
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from hw.ilp.synth import yosys_missing
from serveros.sweep.area import AREA_COLUMNS, add_area, device_pipe_lists, hardware_device
from serveros.sweep.table import write_tables


def fake_figures(calls):
    def figures(lists):
        calls.append(tuple(tuple(pl) for pl in lists))
        return [SimpleNamespace(cells=100 * (k + 1), flip_flops=10, ice40_luts=7 * (k + 1),
                                clock_mhz=50.0 + k) for k, _ in enumerate(lists)]
    return figures


def test_which_points_use_hardware_pipes():
    assert hardware_device({"pipes": "hw", "network": "an2"}) == "an2"
    assert hardware_device({"pipes": "sw", "network": "an2"}) is None
    assert hardware_device({"server": "cheetah@+hwilp", "network": "an2"}) == "an2"
    assert hardware_device({"server": "cheetah@no-ash", "network": "an2"}) == "an2"
    assert hardware_device({"server": "cheetah@+ilp", "network": "an2"}) is None
    # The LANCE binds no pipes: none unless its buffer-port block is fitted.
    assert hardware_device({"pipes": "hw", "network": "ethernet"}) is None
    assert hardware_device({"pipes": "hw", "network": "ethernet", "lance_block": True}) == "lance"
    assert hardware_device({"pipes": "none", "server": "harvest", "network": "an2"}) is None
    # A sweep's pipes set the switches whatever the stage says.
    assert hardware_device({"pipes": "sw", "server": "cheetah@+hwilp", "network": "an2"}) is None
    with pytest.raises(ValueError, match="pipes must be 'none', 'sw' or 'hw'"):
        hardware_device({"pipes": "fpga"})
    with pytest.raises(ValueError, match="no card known for network 'fddi'"):
        hardware_device({"pipes": "hw", "network": "fddi"})
    with pytest.raises(ValueError, match="no hardware pipes known for device 'disk'"):
        device_pipe_lists("disk")


def test_the_devices_datapaths_are_their_checksum_pipes():
    from sw.libos.ilp.pipes import CKSUM
    an2 = device_pipe_lists("an2")                      # transmit, receive
    assert len(an2) == 2 and all([p.name for p in pl] == ["cksum"] for pl in an2)
    assert all(pl[0].body == CKSUM.body and pl[0].fini == CKSUM.fini for pl in an2)
    assert [[p.name for p in pl] for pl in device_pipe_lists("lance")] == [["cksum"]]


def test_area_sums_a_devices_datapaths_once_per_sweep():
    calls = []
    rows = [{"pipes": "hw", "network": "an2", "k": i} for i in range(3)]
    rows.append({"pipes": "sw", "network": "an2", "k": 3})
    out = add_area(rows, figures=fake_figures(calls))
    assert calls == [device_pipe_lists("an2")]              # one synthesis for the sweep
    hw = out[0]
    assert hw["area_device"] == "an2" and hw["area_pipe_lists"] == "cksum;cksum"
    assert hw["area_cells"] == 100 + 200 and hw["area_luts"] == 7 + 14
    assert hw["area_ffs"] == 20
    assert hw["fmax_mhz"] == 50.0                           # the slowest datapath
    assert out[3]["area_cells"] == out[3]["area_luts"] == 0 and out[3]["fmax_mhz"] is None
    assert [r["k"] for r in out] == [0, 1, 2, 3] and "area_cells" not in rows[0]


def test_tables_carry_the_area_columns(tmp_path):
    rows = [{"server": "harvest", "pipes": "sw", "network": "ethernet", "throughput_rps": 1.0}]
    got = pq.read_table(write_tables(rows, tmp_path)["parquet"]).to_pylist()[0]
    assert all(c in got for c in AREA_COLUMNS) and got["area_luts"] == 0
    got = pq.read_table(write_tables(rows, tmp_path / "n", area=False)["parquet"]).to_pylist()
    assert "area_luts" not in got[0]


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_real_figures_of_the_an2_cards_pipes():
    from serveros.sweep.area import synthesize_lists
    out = add_area([{"pipes": "hw", "network": "an2"}])[0]
    figs = synthesize_lists(device_pipe_lists("an2"))
    assert out["area_luts"] == sum(f.ice40_luts for f in figs) > 0
    assert out["area_ffs"] == sum(f.flip_flops for f in figs) > 0
    assert out["area_cells"] > out["area_ffs"]
