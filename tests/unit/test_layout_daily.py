"""The two bar datasets of silver (intraday by day, daily by month): layout, journal and load filters."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from stockpipe.clean.state import (
    Journal,
    load_journal,
    load_layout_version,
    write_journal,
    write_layout_version,
)
from stockpipe.contract.bar import INTERVALS, INTRADAY_INTERVALS
from stockpipe.contract.layout import (
    DAILY_PRICES,
    INTRADAY_PRICES,
    PRICE_DATASETS,
    partition_span,
    price_dataset,
)
from stockpipe.contract.silver import DAILY_INTERVALS, DAILY_PARTITION, SILVER_COLUMNS, SILVER_PARTITION
from stockpipe.lake.fs import LakeFS
from stockpipe.warehouse.base import RowFilter
from stockpipe.warehouse.loader import DATASETS


def test_the_two_datasets_split_the_interval_table() -> None:
    assert DAILY_INTERVALS == ("1day",)
    assert sorted(INTRADAY_PRICES.intervals + DAILY_PRICES.intervals) == sorted(INTERVALS)
    assert INTRADAY_PRICES.intervals == INTRADAY_INTERVALS
    assert [price_dataset(i).name for i in ("1min", "60min", "1day")] == [
        "stock_prices",
        "stock_prices",
        "stock_prices_daily",
    ]
    assert (INTRADAY_PRICES.partition, DAILY_PRICES.partition) == (SILVER_PARTITION, DAILY_PARTITION)
    # the daily partition is not a row column: trade_date stays in the daily files
    assert DAILY_PARTITION not in SILVER_COLUMNS
    assert len({ds.name for ds in PRICE_DATASETS}) == 2


def test_partition_folders_and_spans() -> None:
    d = date(2024, 12, 31)
    assert INTRADAY_PRICES.folder(d) == "trade_date=2024-12-31"
    assert DAILY_PRICES.folder(d) == "trade_month=2024-12"
    assert partition_span("trade_date=2024-12-31") == ("trade_date", d, date(2025, 1, 1))
    assert partition_span("trade_month=2024-12") == ("trade_month", date(2024, 12, 1), date(2025, 1, 1))
    assert partition_span("trade_month=2024-02") == ("trade_month", date(2024, 2, 1), date(2024, 3, 1))
    assert partition_span("ingest_date=2024-03-04") == ("ingest_date", date(2024, 3, 4), date(2024, 3, 5))
    for bad in ("trade_month=2024-13", "trade_date=2024-02-30", "trade_date=__HIVE_DEFAULT_PARTITION__", "x"):
        assert partition_span(bad) is None


def test_a_journal_from_before_the_daily_dataset_reads_as_intraday_partitions(tmp_path: Path) -> None:
    fs = LakeFS(tmp_path.as_uri())
    state = f"{tmp_path.as_uri()}/silver/_state"
    legacy = {
        "version": 1,
        "run_id": "r",
        "staging": "s",
        "partitions": ["2024-03-04", "2024-03-05"],
        "quarantine_moves": [],
        "ledger_add": {"f": 1},
    }
    fs.write_atomic(f"{state}/journal.json", json.dumps(legacy).encode())
    journal = load_journal(fs, state)
    assert journal is not None
    assert journal.partitions == ["stock_prices/trade_date=2024-03-04", "stock_prices/trade_date=2024-03-05"]
    assert (journal.removed_partitions, journal.layout_version) == ([], None)

    new = Journal("r2", "s2", ["stock_prices_daily/trade_month=2024-03"], [], {}, [], ["stock_prices/x"], 2)
    write_journal(fs, state, new)
    assert load_journal(fs, state) == new


def test_layout_marker(tmp_path: Path) -> None:
    fs = LakeFS(tmp_path.as_uri())
    state = f"{tmp_path.as_uri()}/silver/_state"
    assert load_layout_version(fs, state) == 1  # no marker: a lake from before the daily dataset
    write_layout_version(fs, state, 2)
    assert load_layout_version(fs, state) == 2


def test_each_bar_dataset_owns_its_intervals_in_the_warehouse() -> None:
    bars = {ds.silver: ds for ds in DATASETS if ds.table == "stock_prices"}
    assert set(bars) == {"stock_prices", "stock_prices_daily"}
    intraday, daily = bars["stock_prices"], bars["stock_prices_daily"]
    # both delete and insert by the raw trade_date column; the load state keys differ
    assert intraday.partition_column == daily.partition_column == "trade_date"
    assert (intraday.folder_column, daily.folder_column) == ("trade_date", "trade_month")
    assert intraday.key != daily.key
    assert intraday.key == "stock_prices"  # state written before the daily dataset stays valid
    table = pa.table({"interval": ["1min", "1day", "5min", None, "1day"], "n": [1, 2, 3, 4, 5]})
    assert intraday.rows is not None
    assert daily.rows is not None
    assert intraday.rows.apply(table)["n"].to_pylist() == [1, 3]
    assert daily.rows.apply(table)["n"].to_pylist() == [2, 5]


@pytest.mark.parametrize(("negate", "sql"), [(False, '"interval" in (?)'), (True, '"interval" not in (?)')])
def test_row_filter_sql(negate: bool, sql: str) -> None:
    fragment, params = RowFilter("interval", ("1day",), negate).sql(lambda n: f'"{n}"')
    assert (fragment, params) == (sql, ["1day"])


@pytest.mark.parametrize("state", ["not_started", "moved_aside", "stale_aside", "done"])
def test_remove_partition_converges_from_every_intermediate_state(tmp_path: Path, state: str) -> None:
    """The layout migration removes a day left without intraday bars: rename aside, delete; a kill
    between the two is finished by the next run."""
    from stockpipe.clean.commit import remove_partition

    fs = LakeFS(tmp_path.as_uri())
    final, aside = tmp_path / "silver" / "p", tmp_path / "staging" / "old" / "p"
    if state in ("not_started", "stale_aside"):
        final.mkdir(parents=True)
        (final / "part-0.parquet").write_bytes(b"x")
    if state in ("moved_aside", "stale_aside"):
        aside.mkdir(parents=True)
        (aside / "part-1.parquet").write_bytes(b"y")
    for _ in range(2):  # idempotent
        remove_partition(fs, final=final.as_uri(), aside=aside.as_uri())
        assert not final.exists()
        assert not aside.exists()
