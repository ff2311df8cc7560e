"""The reporting reader and queries against real DuckDB warehouses (and fakesnow for Snowflake).

Expected values are computed here with independent SQL on the same file, never by the code
under test.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from stockpipe.dashboard import health as health_mod
from stockpipe.dashboard import queries, warehouse
from stockpipe.dashboard.export import export_gold, export_tables
from stockpipe.dashboard.readers import open_reader
from stockpipe.dashboard.report import build_report
from stockpipe.dashboard.warehouse import (
    WarehouseBusyError,
    WarehouseEmptyError,
    WarehouseMissingError,
)
from stockpipe.settings import Settings
from tests.helpers_gold import (
    GoldSpec,
    build_empty_warehouse,
    build_gold_warehouse,
    load_into_snowflake,
    warehouse_frames,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gold_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("gold")
    build_gold_warehouse(data / "warehouse.duckdb", GoldSpec(days=22, bars_per_day=60, with_freshness=True))
    return Settings(data_dir=data, _env_file=None)


def _sql(settings: Settings, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def test_catalog_and_daily_bars_match_the_marts(gold_settings: Settings) -> None:
    expected = _sql(
        gold_settings,
        "select o.symbol, o.trade_date, o.close, o.volume, m.sma_20 from gold.mart_daily_ohlcv o "
        "join gold.mart_moving_averages m using (symbol, trade_date) order by 1, 2",
    )
    with open_reader(gold_settings) as reader:
        catalog = queries.load_catalog(reader)
        assert catalog.symbols == sorted(expected["symbol"].unique())
        assert catalog.first_day == expected["trade_date"].min().date()
        assert catalog.last_day == expected["trade_date"].max().date()
        sectors = _sql(gold_settings, "select distinct sector from gold.dim_companies")["sector"]
        assert catalog.sectors == sorted(sectors)
        symbol = catalog.symbols[1]
        start = catalog.first_day + timedelta(days=1)
        daily = queries.daily_bars(reader, symbol, start, catalog.last_day)
    want = expected[(expected["symbol"] == symbol) & (expected["trade_date"] >= pd.Timestamp(start))]
    assert len(daily) == len(want) > 0
    assert daily["close"].tolist() == want["close"].tolist()
    assert daily["volume"].tolist() == want["volume"].tolist()
    assert daily["sma_20"].tolist() == pytest.approx(want["sma_20"].tolist(), nan_ok=True)
    assert daily["sma_20"].notna().sum() == want["sma_20"].notna().sum() > 0


def test_intraday_bars_are_the_fact_rows_of_the_day(gold_settings: Settings) -> None:
    with open_reader(gold_settings) as reader:
        catalog = queries.load_catalog(reader)
        symbol = catalog.symbols[-1]
        bars = queries.intraday_bars(reader, symbol, catalog.last_day)
    fact = _sql(
        gold_settings,
        "select bar_ts, close_price from gold.fact_stock where symbol = ? and trade_date = ? order by bar_ts",
        [symbol, catalog.last_day],
    )
    assert len(bars) == len(fact) > 0
    assert bars["close"].tolist() == fact["close_price"].tolist()
    assert bars["local_ts"].iloc[0].strftime("%H:%M") == "09:30"  # regular session opens 09:30 ET


def test_movers_and_sector_performance(gold_settings: Settings) -> None:
    returns = _sql(
        gold_settings,
        "select symbol, daily_return from gold.mart_daily_returns "
        "where trade_date = (select max(trade_date) from gold.mart_daily_returns)",
    )
    with open_reader(gold_settings) as reader:
        catalog = queries.load_catalog(reader)
        moves = queries.movers(reader, catalog, catalog.symbols)
        sectors = queries.sector_performance(reader, catalog.first_day, catalog.last_day)
        summary = queries.symbol_summary(reader, catalog)
    assert moves.day == catalog.last_day
    up = returns[returns["daily_return"] > 0].sort_values("daily_return", ascending=False)
    down = returns[returns["daily_return"] < 0].sort_values("daily_return")
    assert moves.gainers["symbol"].tolist() == up["symbol"].tolist()[:5]
    assert moves.losers["symbol"].tolist() == down["symbol"].tolist()[:5]
    assert len(sectors) == _sql(gold_settings, "select count(*) n from gold.mart_sector_daily")["n"][0]
    assert summary.set_index("symbol")["last_return"].to_dict() == pytest.approx(
        returns.set_index("symbol")["daily_return"].to_dict()
    )


def test_health_counts_quarantine_dbt_and_stream(gold_settings: Settings) -> None:
    with open_reader(gold_settings) as reader:
        health = health_mod.pipeline_health(reader)
    for table, rows in health.rows_by_table.items():
        assert rows == _sql(gold_settings, f"select count(*) n from {table}")["n"][0], table
    assert health.rows_by_table["raw.stock_prices"] != health.rows_by_table["gold.fact_stock"]
    by_rule = _sql(gold_settings, "select rule, sum(records) r from raw.quarantine_summary group by rule")
    assert dict(zip(health.quarantine["rule"], health.quarantine["records"], strict=True)) == dict(
        zip(by_rule["rule"], by_rule["r"], strict=True)
    )
    latest = health.dbt.set_index("node")["status"].to_dict()
    assert latest["test.stockpipe.unique_fact_stock_id"] == "pass"  # the older failure is superseded
    assert health.dbt_failures["node"].tolist() == ["test.stockpipe.relationships_fact_stock_company_id"]
    last_load = _sql(gold_settings, "select max(loaded_at) t from raw.load_history")["t"][0]
    assert health.last_load_at == last_load.to_pydatetime()
    newest = _sql(gold_settings, "select max(bar_ts) t from gold.fact_stock")["t"][0]
    assert health.latest_bar_ts == newest.to_pydatetime()
    assert health.stream is not None
    assert (
        health.stream["p95_seconds"].iloc[-1]
        == _sql(gold_settings, "select p95_seconds from raw.freshness order by cycle_at desc limit 1")[
            "p95_seconds"
        ][0]
    )


def test_missing_optional_tables_degrade(tmp_path: Path) -> None:
    skip = (
        "gold.mart_moving_averages",
        "gold.mart_daily_returns",
        "gold.mart_sector_daily",
        "gold.dim_companies",
        "raw.dbt_results",
        "raw.load_history",
        "raw.quarantine_summary",
    )
    build_gold_warehouse(tmp_path / "warehouse.duckdb", GoldSpec(days=22, bars_per_day=10), skip=skip)
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with open_reader(settings) as reader:
        catalog = queries.load_catalog(reader)
        assert catalog.sectors == [queries.UNKNOWN_SECTOR]
        daily = queries.daily_bars(reader, catalog.symbols[0], catalog.first_day, catalog.last_day)
        moves = queries.movers(reader, catalog, catalog.symbols)
        sectors = queries.sector_performance(reader, catalog.first_day, catalog.last_day)
        health = health_mod.pipeline_health(reader)
    expected_sma = daily["close"].rolling(20).mean()
    assert daily["sma_20"].isna().tolist() == [True] * 19 + [False] * 3
    assert daily["sma_20"].iloc[19:].tolist() == pytest.approx(expected_sma.iloc[19:].tolist())
    assert moves.day is None
    assert moves.gainers.empty
    assert sectors.empty
    assert health.rows_by_table["gold.mart_sector_daily"] is None
    assert health.rows_by_table["gold.fact_stock"] == 22 * 10 * 4 - 5
    assert health.last_load_at is None
    assert health.dbt.empty
    assert health.quarantine.empty
    assert health.stream is None


def test_missing_and_empty_warehouses_raise_one_sentence(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with pytest.raises(WarehouseMissingError, match=r"does not exist yet: run `stockpipe run` first\.$"):
        open_reader(settings).__enter__()
    assert not settings.duckdb_path.exists()  # never created by a reader
    build_empty_warehouse(settings.duckdb_path)
    with open_reader(settings) as reader, pytest.raises(WarehouseEmptyError, match="has no gold tables yet"):
        queries.load_catalog(reader)


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists raw.lock_probe (x int)")
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


def test_busy_warehouse_and_reader_never_holds_the_lock(
    gold_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "LOCK_RETRIES", 2)
    monkeypatch.setattr(warehouse, "LOCK_BACKOFF_SECONDS", 0.01)
    path = str(gold_settings.duckdb_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusyError, match="locked by another process"):
            open_reader(gold_settings).__enter__()
    finally:
        assert writer.stdin is not None
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
    with open_reader(gold_settings) as reader:  # the lock is free again
        queries.load_catalog(reader)
    # after the block the reader is closed: a loader can take the write lock right away
    again = subprocess.run(
        [sys.executable, "-c", HOLD_LOCK, path], input="\n", capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 0, again.stderr


def test_snowflake_reader_via_fakesnow(tmp_path: Path) -> None:
    fakesnow = pytest.importorskip("fakesnow")
    import snowflake.connector

    frames = warehouse_frames(GoldSpec(days=2, bars_per_day=8, with_freshness=True))
    settings = Settings(
        data_dir=tmp_path,
        warehouse={"kind": "snowflake"},
        snowflake={"account": "acct", "user": "u", "password": "p"},
        _env_file=None,
    )
    with warnings.catch_warnings(), fakesnow.patch():
        warnings.simplefilter("ignore")
        con = snowflake.connector.connect(account="acct", user="u", password="p", paramstyle="qmark")
        load_into_snowflake(con, frames)
        with open_reader(settings) as reader:
            catalog = queries.load_catalog(reader)
            daily = queries.daily_bars(reader, "AAPL", catalog.first_day, catalog.last_day)
            bars = queries.intraday_bars(reader, "AAPL", catalog.last_day)
            health = health_mod.pipeline_health(reader)
            counts = export_tables(reader, tmp_path / "export", "parquet")
    assert catalog.symbols == sorted(frames["gold.dim_companies"]["symbol"])
    ohlcv = frames["gold.mart_daily_ohlcv"]
    assert daily["close"].tolist() == ohlcv[ohlcv["symbol"] == "AAPL"]["close"].tolist()
    fact = frames["gold.fact_stock"]
    assert len(bars) == ((fact["symbol"] == "AAPL") & (fact["trade_date"] == catalog.last_day)).sum()
    assert health.rows_by_table["RAW.STOCK_PRICES"] == len(frames["raw.stock_prices"])
    assert health.rows_by_table["GOLD.FACT_STOCK"] == len(fact)
    assert health.stream is not None
    assert len(health.stream) == len(frames["raw.freshness"])
    assert counts == {t.split(".")[1]: len(f) for t, f in frames.items() if t.startswith("gold.")}


@pytest.mark.slow
def test_reporting_on_the_warehouse_built_by_the_loader_and_dbt(
    duckdb_warehouse: Any, tmp_path: Path
) -> None:
    """The real gold layer (stockpipe load + dbt), not the helper's: every reader path works."""
    settings: Settings = duckdb_warehouse.settings
    with open_reader(settings) as reader:
        catalog = queries.load_catalog(reader)
        health = health_mod.pipeline_health(reader)
        for symbol in catalog.symbols:
            daily = queries.daily_bars(reader, symbol, catalog.first_day, catalog.last_day)
            expected = _sql(
                settings, "select count(*) n from gold.mart_daily_ohlcv where symbol = ?", [symbol]
            )["n"][0]
            assert len(daily) == expected > 0
            assert daily["sma_20"].notna().sum() == max(0, expected - 19)
            bars = queries.intraday_bars(reader, symbol, catalog.last_day)
            assert bars["interval"].isin(["1day"]).sum() == 0
    for table, rows in health.rows_by_table.items():
        assert rows == _sql(settings, f"select count(*) n from {table}")["n"][0], table
    assert health.last_load_at is not None
    assert not health.dbt.empty
    assert health.dbt_failures.empty, health.dbt_failures
    assert queries.UNKNOWN_SECTOR in catalog.sectors  # a traded symbol without companies data
    summary = build_report(settings, tmp_path / "report.html")
    assert summary.symbols == tuple(catalog.symbols)
    counts = export_gold(settings, tmp_path / "export", "parquet")
    assert counts["fact_stock"] == health.rows_by_table["gold.fact_stock"]
