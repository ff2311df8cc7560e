"""An old-layout lake (daily bars inside ``trade_date=D``), already loaded by the old loader,
upgraded: clean (migrates, plus a late daily correction) -> load -> dbt. Each bar is in gold once
and the daily mart equals a pandas recomputation from silver."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from stockpipe.clean.job import run_clean
from stockpipe.gold.runner import run_transform
from stockpipe.settings import Settings
from stockpipe.warehouse import tables
from stockpipe.warehouse.loader import run_load
from tests.fixtures.warehouse import settings_for
from tests.helpers_bronze import bar_json, write_bronze
from tests.helpers_silver import make_bars, read_silver_stock_prices, write_old_layout
from tests.integration.test_dbt_duckdb import expected_daily

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime(2024, 3, 20, tzinfo=UTC)


def _old_lake(lake: Path) -> pa.Table:
    intraday = make_bars(("AAPL", "MSFT"), days=3, bars_per_day=6, premarket_bars=1)
    daily = make_bars(("AAPL", "JPM"), days=5, interval="1day", seed=5)
    everything = pa.concat_tables([intraday, daily])
    write_old_layout(lake, everything)
    return everything


def _as_old_loader_did(settings: Settings, old: pa.Table) -> None:
    """The raw table as the loader before the daily dataset left it: every bar of every day."""
    run_load(settings)  # today's loader takes the intraday rows of the old day folders only
    daily = old.filter(pc.equal(old.column("interval"), "1day"))
    loaded_at = pa.array([NOW] * daily.num_rows, pa.timestamp("us", tz="UTC"))
    rows = daily.append_column("loaded_at", loaded_at).select(tables.raw_stock_prices_schema().names)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.register("old_daily", rows)
        con.execute("insert into raw.stock_prices by name select * from old_daily")
        raw = con.execute("select count(*) from raw.stock_prices").fetchone()
    assert raw == (old.num_rows,)


def _fact(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return [tuple(r) for r in con.execute(sql).fetchall()]


def test_migrated_lake_reaches_gold_with_each_bar_once(spark: Any, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    old = _old_lake(lake)
    settings = settings_for(lake.resolve().as_uri(), tmp_path / "data")
    _as_old_loader_did(settings, old)

    fix = bar_json(
        interval="1day", bar_ts="2024-03-05T00:00:00-05:00", close=10.25, produced_at="2024-03-19T12:00:00Z"
    )
    write_bronze(settings.lake_root, [fix], ingest_date="2024-03-19")
    cleaned = run_clean(settings, spark=spark, now=NOW, with_companies=False)
    assert cleaned.partitions_rewritten == ["stock_prices_daily/trade_month=2024-03"]
    silver = read_silver_stock_prices(lake)
    assert silver.num_rows == old.num_rows

    loaded = run_load(settings)
    assert loaded.partitions_loaded == 3 + 1  # the days rewritten, the month (emptied days: deleted)
    built = run_transform(settings)
    assert built.success, [(n.name, n.message) for n in built.failed]

    raw = _fact(settings, "select symbol, interval, bar_ts, count(*) from raw.stock_prices group by all")
    assert len(raw) == old.num_rows
    assert {r[3] for r in raw} == {1}, "each bar once in raw"
    fact = _fact(settings, "select id, count(*), max(close_price) from gold.fact_stock group by id")
    assert len(fact) == old.num_rows
    assert {r[1] for r in fact} == {1}, "each bar once in gold"
    closes = _fact(
        settings,
        "select close_price from gold.fact_stock where symbol = 'AAPL' and interval = '1day' "
        "and trade_date = date '2024-03-05'",
    )
    assert closes == [(10.25,)]

    expected = expected_daily(lake).sort_values(["symbol", "trade_date"])
    mart = _fact(
        settings,
        "select symbol, trade_date, open, close, volume, bar_count from gold.mart_daily_ohlcv order by all",
    )
    want = [
        (r.symbol, r.trade_date, r.open, r.close, r.volume, r.bar_count)
        for r in expected.itertuples(index=False)
    ]
    assert mart == sorted(want)
