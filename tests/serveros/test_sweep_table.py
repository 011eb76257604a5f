"""The sweep's results table (serveros.sweep.table): flattening as `serveros run`'s CSV names
columns, Parquet and CSV holding every row and column, mixed columns, failed points, the
derived cycles per request, and reading a table or a `serveros run` folder back."""
import csv
import json

import pyarrow.parquet as pq
import pytest

from serveros.experiments import paper
from serveros.sweep.table import cycles_per_request, flatten_row, read_table, write_tables


def run_row(**over):
    """A row of the shape run_point returns (plus sweep columns)."""
    row = {"figure": "a", "server": "cheetah", "doc_bytes": 100, "clients": 4,
           "requests_per_client": 20, "requests": 80, "ok": 80, "failed": 0, "timeouts": 0,
           "throughput_rps": 800.0, "sustained_rps": None, "goodput_bytes_per_s": 80000.0,
           "sim_seconds": 0.1, "wall_seconds": 1.5,
           "cpu_breakdown": {"idle": 0.25, "kernel": 0.5, "checksum": 0.25},
           "client_cpu_breakdown": {"idle": 0.9, "user": 0.1},
           "server_stats": {"requests": 80, "internal_errors": 0, "status": {"200": 80}},
           "network": "ethernet", "cpu_cycles_per_doc_byte": 2.5, "seed": 1,
           "key": "abc123", "cpu_mhz": 25, "pipes": "sw"}
    row.update(over)
    return row


def test_flatten_names_columns_as_serveros_run_csv_does(tmp_path):
    row = run_row()
    flat = flatten_row(row)
    assert flat["cpu_kernel"] == 0.5 and flat["client_cpu_user"] == 0.1
    assert flat["server_requests"] == 80 and flat["server_status_200"] == 80
    assert not any(isinstance(v, dict) for v in flat.values())
    # Every CSV column of `serveros run` (write_results) for the same row is a column here.
    written = paper.write_results([row], tmp_path / "run", plots=False)
    with written["csv"].open() as fh:
        run_row_csv = next(csv.DictReader(fh))
    filled = {c for c, v in run_row_csv.items() if v != ""}
    assert "cpu_kernel" in filled and "server_requests" in filled
    assert filled - set(flat) == set()


def test_lists_are_joined_and_figure_d_breakdown_is_prefixed():
    flat = flatten_row(run_row(mechanisms=["ash", "ilp"], cpu_cycles_per_request=123.0,
                               cpu_cycles_per_request_breakdown={"kernel": 100.0}))
    assert flat["mechanisms"] == "ash+ilp"
    assert flat["cpu_per_request_kernel"] == 100.0
    assert flat["cpu_cycles_per_request"] == 123.0      # figure d's own, kept


def test_cycles_per_request_is_busy_cycles_over_requests():
    row = run_row()
    # 2.5 cycles a byte x 80,000 bytes/s x 0.1 s = 20,000 busy cycles over 80 requests.
    assert cycles_per_request(row) == pytest.approx(250.0)
    assert flatten_row(row)["cpu_cycles_per_request"] == pytest.approx(250.0)
    assert cycles_per_request(run_row(cpu_cycles_per_doc_byte=None, doc_bytes=0)) is None
    assert cycles_per_request(run_row(ok=0)) is None


def test_a_colliding_flattened_name_is_refused():
    with pytest.raises(ValueError, match="cpu_kernel"):
        flatten_row(run_row(cpu_kernel=1.0))


def test_tables_hold_every_row_and_column_key_first(tmp_path):
    fail = {k: v for k, v in run_row(server="ncsa", key="def456").items()
            if k in ("figure", "server", "doc_bytes", "clients", "seed", "key", "cpu_mhz",
                     "pipes")}
    fail.update(status="failed", error="RuntimeError: boom")
    rows = [run_row(), run_row(doc_bytes=10240, key="x2", cpu_mhz=40, extra_col="new"), fail]
    files = write_tables(rows, tmp_path / "out")
    assert set(files) == {"parquet", "csv"} and all(p.is_file() for p in files.values())
    table = pq.read_table(files["parquet"])
    assert table.num_rows == 3 and table.column_names[0] == "key"
    got = table.to_pylist()
    assert [r["key"] for r in got] == ["abc123", "x2", "def456"]
    assert got[1]["extra_col"] == "new" and got[0]["extra_col"] is None
    assert got[2]["status"] == "failed" and got[2]["throughput_rps"] is None
    assert got[0]["cpu_mhz"] == 25 and got[1]["doc_bytes"] == 10240
    with files["csv"].open() as fh:
        lines = list(csv.DictReader(fh))
    assert list(lines[0]) == table.column_names
    assert lines[0]["throughput_rps"] == "800.0" and lines[2]["throughput_rps"] == ""
    assert lines[2]["error"] == "RuntimeError: boom"


def test_a_mixed_column_is_stored_as_strings(tmp_path):
    rows = [run_row(server_stats={"mode": 3}), run_row(server_stats={"mode": "fast"})]
    got = pq.read_table(write_tables(rows, tmp_path)["parquet"]).to_pylist()
    assert [r["server_mode"] for r in got] == ["3", "fast"]
    assert [r["throughput_rps"] for r in got] == [800.0, 800.0]    # the others keep types


def test_tables_are_deterministic(tmp_path):
    rows = [run_row(), run_row(doc_bytes=10)]
    a, b = write_tables(rows, tmp_path / "a"), write_tables(rows, tmp_path / "b")
    assert a["csv"].read_bytes() == b["csv"].read_bytes()
    assert a["parquet"].read_bytes() == b["parquet"].read_bytes()


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        write_tables([], tmp_path)
    with pytest.raises(TypeError, match="list of dicts"):
        write_tables(run_row(), tmp_path)
    with pytest.raises(TypeError, match="a row is a dict"):
        write_tables([["not", "a", "dict"]], tmp_path)


def test_read_table_reads_a_sweep_table_or_a_run_folder(tmp_path):
    write_tables([run_row()], tmp_path / "sweep")
    assert read_table(tmp_path / "sweep")[0]["cpu_kernel"] == 0.5
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps({"rows": [run_row()]}))
    got = read_table(tmp_path / "run")[0]
    assert got["cpu_cycles_per_request"] == pytest.approx(250.0)
    assert got["area_luts"] == 0                    # a software-only row of serveros run
    with pytest.raises(FileNotFoundError, match="results.parquet or results.json"):
        read_table(tmp_path)


@pytest.mark.parametrize("name, content, message", [
    ("results.json", b"garbage", "results.json: not JSON"),
    ("results.json", b"[1, 2]", "expected a list of rows"),
    ("results.parquet", b"junk!", "results.parquet: not a readable Parquet table"),
])
def test_a_damaged_results_file_is_refused_naming_it(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_table(tmp_path)
