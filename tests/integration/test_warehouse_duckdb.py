"""Loading silver into DuckDB: idempotent, incremental by partition, crash-safe, lock-aware."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from stockpipe.settings import Settings
from stockpipe.warehouse.base import FAULT_EXIT_CODE, WarehouseUnavailableError
from stockpipe.warehouse.loader import run_load
from stockpipe.warehouse.state import state_path
from tests.fixtures.warehouse import settings_env, settings_for
from tests.helpers_silver import SilverDataset, write_silver

pytestmark = pytest.mark.integration

RAW_TABLES = ("stock_prices", "companies", "quarantine_summary", "load_history")
STOCKPIPE = str(Path(sys.executable).with_name("stockpipe"))


def _setup(tmp_path: Path, **kw: Any) -> tuple[SilverDataset, Settings]:
    ds = write_silver(tmp_path / "lake", days=3, bars_per_day=10, **kw)
    return ds, settings_for(ds.lake_uri, tmp_path / "data")


def snapshot(settings: Settings, table: str, exclude: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """Every row of a raw table, sorted (optionally without some columns)."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        cols = [r[0] for r in con.execute(f"describe raw.{table}").fetchall() if r[0] not in exclude]
        select = ", ".join(f'"{c}"' for c in cols)
        return con.execute(f"select {select} from raw.{table} order by all").fetchall()


def _rows_of(settings: Settings, trade_date: Any) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(
            "select symbol, bar_ts, open, high, low, close, volume, kafka_offset from raw.stock_prices "
            "where trade_date = ? order by symbol, bar_ts",
            [trade_date],
        ).fetchall()


def _expected(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = ["symbol", "bar_ts", "open", "high", "low", "close", "volume", "kafka_offset"]
    rows = table.select(cols).sort_by([("symbol", "ascending"), ("bar_ts", "ascending")]).to_pylist()
    return [tuple(r[c] for c in cols) for r in rows]


def test_first_load_matches_silver_and_second_load_changes_nothing(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path)
    first = run_load(settings)
    assert first.partitions_loaded == 3 + 1 + 3
    assert first.partitions_skipped == 0
    assert first.rows_loaded == ds.stock_prices.num_rows
    assert first.tables == {
        "stock_prices": ds.stock_prices.num_rows,
        "companies": ds.companies.num_rows,
        "quarantine_summary": len(snapshot(settings, "quarantine_summary")),
    }
    for d in ds.trade_dates:
        assert _rows_of(settings, d) == _expected(ds.partition(d))
    before = {t: snapshot(settings, t) for t in RAW_TABLES}
    assert len(before["load_history"]) == 7

    second = run_load(settings)
    assert (second.partitions_loaded, second.partitions_skipped, second.rows_loaded) == (0, 7, 0)
    assert {t: snapshot(settings, t) for t in RAW_TABLES} == before


def test_forced_reload_leaves_the_same_rows(tmp_path: Path) -> None:
    """Even when every partition is reloaded (state lost), the tables hold the same rows."""
    _, settings = _setup(tmp_path, files_per_partition=2)
    run_load(settings)
    before = {t: snapshot(settings, t, exclude=("loaded_at",)) for t in RAW_TABLES[:3]}
    state_path(settings.state_dir).unlink()

    again = run_load(settings)
    assert again.partitions_loaded == 7
    assert {t: snapshot(settings, t, exclude=("loaded_at",)) for t in RAW_TABLES[:3]} == before
    assert len(snapshot(settings, "load_history")) == 14  # history is the one table that grows


def test_changed_partition_is_reloaded_and_unchanged_ones_skipped(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path)
    run_load(settings)
    d0, d1, d2 = ds.trade_dates
    untouched = {d: [r for r in snapshot(settings, "stock_prices") if r[11] == d] for d in (d0, d2)}

    # Spark rewrites d1: one bar dropped, one bar corrected (new file name, new fingerprint)
    part = ds.partition(d1)
    part = part.slice(1)
    closes = part.column("close").to_pylist()
    closes[0] = part.column("open")[0].as_py()
    part = part.set_column(part.schema.get_field_index("close"), "close", pa.array(closes, pa.float64()))
    ds.replace_partition(d1, part)

    result = run_load(settings)
    assert result.partitions_loaded == 1
    assert result.partitions_skipped == 2 + 1 + 3
    assert result.rows_loaded == part.num_rows
    assert [(h.table_name, h.partition_key, h.rows) for h in result.history] == [
        ("stock_prices", f"trade_date={d1}", part.num_rows)
    ]
    assert _rows_of(settings, d1) == _expected(part)
    for d, rows in untouched.items():  # same rows, same loaded_at: not rewritten
        assert [r for r in snapshot(settings, "stock_prices") if r[11] == d] == rows


def test_partition_removed_from_silver_is_deleted(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path)
    run_load(settings)
    gone = ds.trade_dates[-1]
    ds.remove_partition(gone)
    result = run_load(settings)
    assert [(h.partition_key, h.rows) for h in result.history] == [(f"trade_date={gone}", 0)]
    assert _rows_of(settings, gone) == []
    assert len(snapshot(settings, "stock_prices")) == ds.stock_prices.num_rows


def test_spark_int96_timestamps_load_as_the_same_instants(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path, int96=True)
    run_load(settings)
    for d in ds.trade_dates:
        assert _rows_of(settings, d) == _expected(ds.partition(d))


def test_non_local_lake_loads_through_fsspec(tmp_path: Path) -> None:
    """A lake that is not a local folder (fsspec memory://) takes the Arrow path: same rows."""
    import fsspec

    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=4, files_per_partition=2, int96=True)
    memory = fsspec.filesystem("memory")
    root = f"/lake-{uuid.uuid4().hex}"
    memory.put(str(tmp_path / "lake"), root, recursive=True)
    try:
        settings = settings_for(f"memory://{root}", tmp_path / "data")
        result = run_load(settings)
        assert result.partitions_loaded == 2 + 1 + 2
        for d in ds.trade_dates:
            assert _rows_of(settings, d) == _expected(ds.partition(d))
        assert run_load(settings).partitions_loaded == 0
    finally:
        memory.rm(root, recursive=True)


def test_crash_inside_the_transaction_keeps_previous_rows_and_retry_completes(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path)
    run_load(settings)
    before = {t: snapshot(settings, t) for t in RAW_TABLES}
    state_before = state_path(settings.state_dir).read_bytes()

    d0 = ds.trade_dates[0]
    part = ds.partition(d0)
    new_part = part.set_column(
        part.schema.get_field_index("volume"),
        "volume",
        pc.add(part.column("volume"), pa.scalar(1, pa.int64())),
    )
    ds.replace_partition(d0, new_part)

    env = {**settings_env(settings), "STOCKPIPE_FAULT_LOAD_MID_TRANSACTION": "1"}
    crashed = subprocess.run([STOCKPIPE, "load"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert crashed.returncode == FAULT_EXIT_CODE, crashed.stderr.decode()
    # the delete ran, the process died before the insert and the commit: nothing changed
    assert {t: snapshot(settings, t) for t in RAW_TABLES} == before
    assert state_path(settings.state_dir).read_bytes() == state_before

    retry = run_load(settings)
    assert retry.partitions_loaded == 1
    assert _rows_of(settings, d0) == _expected(new_part)
    assert len(snapshot(settings, "stock_prices")) == ds.stock_prices.num_rows


def test_locked_warehouse_is_one_sentence_and_loads_nothing(tmp_path: Path) -> None:
    ds, settings = _setup(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(120)",
            str(settings.duckdb_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ready"
        with pytest.raises(WarehouseUnavailableError) as err:
            run_load(settings)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    message = str(err.value)
    assert "locked by another process" in message
    assert str(settings.duckdb_path) in message
    assert "\n" not in message
    assert not state_path(settings.state_dir).exists()
    assert run_load(settings).rows_loaded == ds.stock_prices.num_rows  # free again: loads


def test_cli_refuses_an_injected_schema_name(tmp_path: Path) -> None:
    _, settings = _setup(tmp_path)
    env = {**settings_env(settings), "STOCKPIPE_WAREHOUSE_RAW_SCHEMA": 'x"; drop table y; --'}
    result = subprocess.run(
        [STOCKPIPE, "load"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "warehouse.raw_schema" in result.stderr
    assert "not a plain identifier" in result.stderr
    assert "Traceback" not in result.stderr
    assert not settings.duckdb_path.exists()
