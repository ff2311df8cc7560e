"""Daily bars in the clean job: one folder per month, not per day; migration of the old layout.

Real Spark, over a classic and a Spark Connect session (the job code is the same).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stockpipe.clean.job import run_clean
from stockpipe.contract.silver import SILVER_COLUMNS
from stockpipe.settings import Settings
from tests.fixtures.spark import SPARK_MODES, spark_in_mode
from tests.helpers_bronze import bar_json, local_path, ny, write_bronze
from tests.helpers_silver import make_bars, write_old_layout
from tests.unit.test_clean_job import silver_rows

NOW = datetime(2024, 3, 10, tzinfo=UTC)
CLOSE = SILVER_COLUMNS.index("close")


@pytest.fixture(params=SPARK_MODES)
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from spark_in_mode(request)


def clean(settings: Settings, spark: Any) -> Any:
    return run_clean(settings, spark=spark, now=NOW, with_companies=False)


def silver(settings: Settings, dataset: str) -> Path:
    return local_path(settings.lake_root) / "silver" / dataset


def folders(settings: Settings, dataset: str) -> dict[str, list[tuple[str, int]]]:
    """Partition folder -> sorted (file name, size) of its Parquet files (the loader's fingerprint)."""
    root = silver(settings, dataset)
    if not root.exists():
        return {}
    return {
        p.name: sorted((f.name, f.stat().st_size) for f in p.glob("*.parquet"))
        for p in sorted(root.iterdir())
        if p.is_dir()
    }


def weekdays(start: date, end: date) -> list[date]:
    every = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in every if d.weekday() < 5]


def daily_bar(symbol: str, day: date, **kw: Any) -> bytes:
    return bar_json(symbol=symbol, interval="1day", bar_ts=f"{day.isoformat()}T00:00:00-05:00", **kw)


def write_history(settings: Settings) -> list[date]:
    """Three years of AAPL daily bars in two bronze files (a replayed history)."""
    days = weekdays(date(2019, 1, 1), date(2021, 12, 31))
    half = len(days) // 2
    values = [daily_bar("AAPL", d) for d in days]
    write_bronze(settings.lake_root, values[:half], ingest_date="2024-03-04", partition=0)
    write_bronze(settings.lake_root, values[half:], ingest_date="2024-03-04", partition=1)
    return days


def test_a_multi_year_daily_history_makes_month_folders(spark: Any, settings: Settings) -> None:
    days = write_history(settings)
    result = clean(settings, spark)
    months = sorted({d.isoformat()[:7] for d in days})
    assert len(months) == 36
    assert result.partitions_rewritten == [f"stock_prices_daily/trade_month={m}" for m in months]
    assert result.silver_rows_written == result.silver_rows_added == len(days)
    assert folders(settings, "stock_prices") == {}, "no folder per day"
    stored = folders(settings, "stock_prices_daily")
    assert list(stored) == [f"trade_month={m}" for m in months]
    assert all(len(files) == 1 for files in stored.values()), "one file per month"
    # trade_date stays a column of the daily files, the month lives in the folder name only
    sample = next((silver(settings, "stock_prices_daily") / "trade_month=2020-06").glob("*.parquet"))
    assert pq.read_schema(sample).names == list(SILVER_COLUMNS)
    table = pq.read_table(sample)
    assert {d.isoformat()[:7] for d in table.column("trade_date").to_pylist()} == {"2020-06"}
    rows = silver_rows(spark, settings)
    assert len(rows) == len({r[:3] for r in rows}) == len(days)
    layout = json.loads((silver(settings, "_state") / "layout.json").read_text())
    assert layout["silver_layout"] == 2, "a new lake records the layout with its first commit"

    # a late correction of one daily bar rewrites its month and nothing else
    fix = daily_bar("AAPL", date(2020, 6, 15), close=10.75, produced_at="2024-03-09T12:00:00Z")
    write_bronze(settings.lake_root, [fix], ingest_date="2024-03-09", partition=2)
    late = clean(settings, spark)
    assert late.partitions_rewritten == ["stock_prices_daily/trade_month=2020-06"]
    assert (late.silver_rows_added, late.duplicates_dropped) == (0, 1)
    after = folders(settings, "stock_prices_daily")
    assert [m for m in after if after[m] != stored[m]] == ["trade_month=2020-06"]
    fixed = [r for r in silver_rows(spark, settings) if r[2].astimezone(UTC).date() == date(2020, 6, 15)]
    assert [r[CLOSE] for r in fixed] == [10.75]


def test_mixed_batch_then_each_kind_touches_only_its_dataset(spark: Any, settings: Settings) -> None:
    lake = settings.lake_root
    intraday = [bar_json(bar_ts=ny("2024-03-04", f"09:{30 + i}")) for i in range(5)]
    daily = [daily_bar("AAPL", date(2024, 3, 4)), daily_bar("MSFT", date(2024, 3, 5))]
    write_bronze(lake, [*intraday, *daily], ingest_date="2024-03-05")
    first = clean(settings, spark)
    assert first.partitions_rewritten == [
        "stock_prices/trade_date=2024-03-04",
        "stock_prices_daily/trade_month=2024-03",
    ]
    assert list(folders(settings, "stock_prices")) == ["trade_date=2024-03-04"]
    assert sorted(r[1] for r in silver_rows(spark, settings)) == ["1day"] * 2 + ["1min"] * 5
    daily_before, intraday_before = folders(settings, "stock_prices_daily"), folders(settings, "stock_prices")

    # a stream cycle of intraday bars on the same date: the daily dataset is not rewritten
    write_bronze(lake, [bar_json(bar_ts=ny("2024-03-04", "09:40"))], ingest_date="2024-03-06", partition=1)
    cycle = clean(settings, spark)
    assert cycle.partitions_rewritten == ["stock_prices/trade_date=2024-03-04"]
    assert folders(settings, "stock_prices_daily") == daily_before

    # and a daily bar of that date leaves the intraday partition alone
    intraday_now = folders(settings, "stock_prices")
    assert intraday_now != intraday_before
    write_bronze(lake, [daily_bar("MSFT", date(2024, 3, 4))], ingest_date="2024-03-06", partition=2)
    daily_cycle = clean(settings, spark)
    assert daily_cycle.partitions_rewritten == ["stock_prices_daily/trade_month=2024-03"]
    assert folders(settings, "stock_prices") == intraday_now
    rows = silver_rows(spark, settings)
    assert len(rows) == len({r[:3] for r in rows}) == 9


def _old_layout_lake(settings: Settings) -> pa.Table:
    """Silver as written before the daily dataset: AAPL/MSFT minute bars on 3 days and AAPL/JPM
    daily bars on 5 days, every bar of a day in its ``trade_date=`` folder (2 days: daily only)."""
    lake = local_path(settings.lake_root)
    intraday = make_bars(("AAPL", "MSFT"), days=3, bars_per_day=3, premarket_bars=0)
    daily = make_bars(("AAPL", "JPM"), days=5, interval="1day", seed=5)
    everything = pa.concat_tables([intraday, daily])
    write_old_layout(lake, everything)
    return everything


def _keys(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((r[0], r[1], r[2].astimezone(UTC)) for r in rows)


def test_silver_in_the_old_layout_is_migrated_once(spark: Any, settings: Settings) -> None:
    stored = _old_layout_lake(settings)
    before = silver_rows(spark, settings)  # reads both datasets: everything is in stock_prices
    assert len(before) == stored.num_rows == 3 * 2 * 3 + 5 * 2
    # a new daily correction arrives with the first clean after the upgrade
    fix = daily_bar("AAPL", date(2024, 3, 5), close=10.25, produced_at="2024-03-09T12:00:00Z")
    write_bronze(settings.lake_root, [fix], ingest_date="2024-03-09")
    result = clean(settings, spark)
    assert result.partitions_rewritten == ["stock_prices_daily/trade_month=2024-03"]
    assert (result.silver_rows_added, result.duplicates_dropped) == (0, 1)

    # daily bars left the day folders (the two daily-only days are gone), each bar is in silver once
    assert list(folders(settings, "stock_prices")) == [f"trade_date=2024-03-0{d}" for d in (4, 5, 6)]
    files = silver(settings, "stock_prices").glob("trade_date=*/*.parquet")
    intervals = {i for f in files for i in pq.read_table(f, columns=["interval"]).column(0).to_pylist()}
    assert intervals == {"1min"}
    assert list(folders(settings, "stock_prices_daily")) == ["trade_month=2024-03"]
    after = silver_rows(spark, settings)
    assert _keys(after) == _keys(before)
    changed = sorted(set(after) - set(before))
    assert [(r[0], r[1], r[CLOSE]) for r in changed] == [("AAPL", "1day", 10.25)]
    state = silver(settings, "_state")
    assert json.loads((state / "layout.json").read_text())["silver_layout"] == 2
    assert not (state / "journal.json").exists()
    staging = silver(settings, "_staging")
    assert not staging.exists() or not any(staging.iterdir())

    # migrated once: a second run moves and rewrites nothing
    snapshot = (folders(settings, "stock_prices"), folders(settings, "stock_prices_daily"))
    again = clean(settings, spark)
    assert (again.bronze_files, again.partitions_rewritten) == (0, [])
    assert (folders(settings, "stock_prices"), folders(settings, "stock_prices_daily")) == snapshot


def test_old_layout_without_daily_bars_only_gets_the_marker(spark: Any, settings: Settings) -> None:
    lake = local_path(settings.lake_root)
    intraday = make_bars(("AAPL",), days=2, bars_per_day=2, premarket_bars=0)
    write_old_layout(lake, intraday)
    before = folders(settings, "stock_prices")
    result = clean(settings, spark)
    assert result.bronze_files == 0
    assert folders(settings, "stock_prices") == before
    assert not silver(settings, "stock_prices_daily").exists()
    assert json.loads((silver(settings, "_state") / "layout.json").read_text())["silver_layout"] == 2
