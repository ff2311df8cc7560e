"""plan_load: which partitions a load replaces (no database involved)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import fsspec

from stockpipe.warehouse import tables
from stockpipe.warehouse.base import TableChange
from stockpipe.warehouse.loader import plan_load
from stockpipe.warehouse.silver import SilverReader
from stockpipe.warehouse.state import LoadState
from tests.helpers_silver import SilverDataset, write_silver

TARGET = "duckdb:/test.duckdb"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _setup(tmp_path: Path) -> tuple[SilverDataset, SilverReader]:
    ds = write_silver(tmp_path / "lake", days=3, bars_per_day=2)
    fs, path = fsspec.core.url_to_fs(ds.lake_uri)
    return ds, SilverReader(fs, path)


def _keys(plan_changes: list[TableChange], table: str) -> list[str]:
    return [p.key for c in plan_changes if c.table == table for p in c.partitions]


def test_first_load_takes_everything(tmp_path: Path) -> None:
    ds, reader = _setup(tmp_path)
    plan = plan_load(reader, LoadState(tmp_path / "s.json"), TARGET, set(), NOW)
    assert _keys(plan.changes, tables.STOCK_PRICES) == [f"trade_date={d}" for d in ds.trade_dates]
    assert _keys(plan.changes, tables.COMPANIES) == ["*"]
    assert _keys(plan.changes, tables.QUARANTINE_SUMMARY) == [f"ingest_date={d}" for d in ds.trade_dates]
    assert plan.skipped == 0
    # a local lake lets the engine scan stock_prices files itself; the other tables go through Arrow
    natives = {c.table: c.native for c in plan.changes}
    assert natives[tables.COMPANIES] is None
    assert natives[tables.QUARANTINE_SUMMARY] is None
    scan_fn = natives[tables.STOCK_PRICES]
    assert scan_fn is not None
    first = plan.changes[0].partitions[0]
    scan = scan_fn(first)
    assert scan is not None
    assert scan.files == [f.path for f in first.files]
    assert scan.constants == {"trade_date": ds.trade_dates[0], "loaded_at": NOW}
    assert "trade_date" not in scan.file_columns
    assert {"symbol", "bar_ts", "bronze_file"} <= scan.file_columns


def test_only_changed_new_and_removed_partitions_are_planned(tmp_path: Path) -> None:
    ds, reader = _setup(tmp_path)
    state = LoadState(tmp_path / "s.json")
    first = plan_load(reader, state, TARGET, set(), NOW)
    for table, parts in first.new_state.items():
        state.set_table(TARGET, table, parts)

    unchanged = plan_load(reader, state, TARGET, set(), NOW)
    assert unchanged.changes == []
    assert unchanged.skipped == 3 + 1 + 3

    d0, d1, d2 = ds.trade_dates
    ds.replace_partition(d0, ds.partition(d0))  # rewritten: new file name
    ds.remove_partition(d1)  # gone from silver: its rows must be deleted
    plan = plan_load(reader, state, TARGET, set(), NOW)
    (change,) = plan.changes
    assert change.table == tables.STOCK_PRICES
    assert change.partition_column == "trade_date"
    assert [(p.key, p.value, bool(p.files)) for p in change.partitions] == [
        (f"trade_date={d0}", d0, True),
        (f"trade_date={d1}", d1, False),
    ]
    assert plan.skipped == 1 + 1 + 3  # d2, companies, quarantine
    assert set(plan.new_state[tables.STOCK_PRICES]) == {f"trade_date={d0}", f"trade_date={d2}"}
    # the reader of a change yields the partition's rows with trade_date and loaded_at filled
    rows = change.read(change.partitions[0])
    assert rows.num_rows == ds.partition(d0).num_rows
    assert set(rows.column("loaded_at").to_pylist()) == {NOW}


def test_state_of_another_target_or_a_new_table_is_ignored(tmp_path: Path) -> None:
    _, reader = _setup(tmp_path)
    state = LoadState(tmp_path / "s.json")
    first = plan_load(reader, state, TARGET, set(), NOW)
    for table, parts in first.new_state.items():
        state.set_table(TARGET, table, parts)
    assert len(plan_load(reader, state, "duckdb:/other.duckdb", set(), NOW).changes) == 3
    # the warehouse says stock_prices was just created: the state for it is stale
    recreated = plan_load(reader, state, TARGET, {tables.STOCK_PRICES}, NOW)
    assert [c.table for c in recreated.changes] == [tables.STOCK_PRICES]
    assert len(recreated.changes[0].partitions) == 3
