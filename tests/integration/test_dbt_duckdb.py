"""The dbt gold layer on DuckDB: quality passes, numbers are right, failures are reported by name."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from stockpipe.cli import app
from stockpipe.contract.bar import INTERVAL_MINUTES
from stockpipe.gold import runner as runner_module
from stockpipe.gold.runner import (
    SHIPPED_PROJECT_DIR,
    parse_project,
    project_manifest,
    run_docs,
    run_quality,
    run_transform,
)
from stockpipe.settings import Settings
from stockpipe.warehouse.loader import run_load
from tests.fixtures.warehouse import BuiltWarehouse, clone_warehouse, settings_env
from tests.helpers_silver import read_silver_stock_prices

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, params or []).df()


def iso_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def expected_daily(lake_dir: Path) -> pd.DataFrame:
    """Daily OHLCV + VWAP recomputed from the silver Parquet files with pandas (the documented rules)."""
    bars = read_silver_stock_prices(lake_dir).to_pandas()
    bars = bars[bars["is_regular_session"]].copy()
    bars["minutes"] = bars["interval"].map(INTERVAL_MINUTES)
    finest = bars.groupby(["symbol", "trade_date"])["minutes"].transform("min")
    bars = bars[bars["minutes"] == finest].sort_values(["symbol", "trade_date", "bar_ts"])
    bars["typical_x_volume"] = (bars["high"] + bars["low"] + bars["close"]) / 3 * bars["volume"]
    days = bars.groupby(["symbol", "trade_date"]).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        typical_x_volume=("typical_x_volume", "sum"),
        bar_count=("close", "size"),
    )
    days["vwap"] = days["typical_x_volume"] / days["volume"]
    return days.drop(columns="typical_x_volume").reset_index()


def test_quality_passes_and_results_are_recorded(duckdb_warehouse: BuiltWarehouse) -> None:
    result = run_quality(duckdb_warehouse.settings)
    assert result.success, [(n.name, n.message) for n in result.failed]
    names = {n.name for n in result.nodes}
    for expected in (
        "raw.stock_prices",  # freshness
        "raw_stock_prices_ohlc_consistent",
        "fact_stock_ohlc_consistent",
        "fact_stock_one_row_per_symbol_and_bar_time",
        "relationships_fact_stock_company_id__symbol__ref_dim_companies_",
        "relationships_fact_stock_date_key__date_key__ref_dim_date_",
        "assert_daily_ohlcv_reconciles_with_intraday",
        "unique_fact_stock_id",
    ):
        assert expected in names, expected
    assert len(result.passed) == len(result.nodes) > 60
    recorded = query(duckdb_warehouse.settings, "select invocation, status, node from raw.dbt_results")
    assert set(recorded[recorded.invocation == "transform"].status) == {"success"}
    quality = recorded[recorded.invocation == "quality"]
    assert "source.stockpipe.raw.stock_prices" in set(quality.node)
    assert len(quality) >= len(result.nodes)
    # dbt's own results files, for tools that read the target folder (stockpipe writes them
    # itself: it runs dbt with --no-write-json to skip rewriting manifest.json per command)
    target = duckdb_warehouse.settings.state_dir / "dbt" / "target"
    tests = json.loads((target / "run_results.json").read_text())
    assert tests["args"]["which"] == "test"
    assert {r["unique_id"] for r in tests["results"]} == {
        n.unique_id for n in result.nodes if n.resource_type == "test"
    }
    sources = json.loads((target / "sources.json").read_text())
    assert [r["unique_id"] for r in sources["results"]] == ["source.stockpipe.raw.stock_prices"]


def test_docs_generate_writes_catalog_and_lineage(duckdb_warehouse: BuiltWarehouse) -> None:
    target = run_docs(duckdb_warehouse.settings)
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.stockpipe.fact_stock" in catalog["nodes"]
    columns = catalog["nodes"]["model.stockpipe.dim_date"]["columns"]
    assert {"date_key", "date", "hour", "minute"} <= {c.lower() for c in columns}
    manifest = json.loads((target / "manifest.json").read_text())
    assert sorted(manifest["parent_map"]["model.stockpipe.fact_stock"]) == [
        "model.stockpipe.dim_companies",  # the exchange's time zone, part of date_key
        "model.stockpipe.stg_stock_prices",
    ]
    assert manifest["parent_map"]["model.stockpipe.dim_date"] == ["model.stockpipe.fact_stock"]
    assert "source.stockpipe.raw.stock_prices" in manifest["parent_map"]["model.stockpipe.stg_stock_prices"]
    assert (target / "index.html").exists()


def test_daily_ohlcv_and_vwap_match_an_independent_recomputation(duckdb_warehouse: BuiltWarehouse) -> None:
    expected = expected_daily(duckdb_warehouse.dataset.lake_dir).sort_values(["symbol", "trade_date"])
    mart = query(duckdb_warehouse.settings, "select * from gold.mart_daily_ohlcv order by symbol, trade_date")
    assert len(mart) == len(expected) == 4 * 22
    assert list(mart["symbol"]) == list(expected["symbol"])
    assert [d.date() if hasattr(d, "date") else d for d in mart["trade_date"]] == list(expected["trade_date"])
    for column in ("open", "high", "low", "close", "volume", "bar_count"):
        assert mart[column].tolist() == expected[column].tolist(), column
    for got, want in zip(mart["vwap"], expected["vwap"], strict=True):
        assert got == pytest.approx(want, rel=1e-9, nan_ok=True)
    # the rules really were exercised: MSFT's first day also has 5-minute bars, JPM only daily bars
    first = duckdb_warehouse.dataset.trade_dates[0]
    msft = mart[(mart.symbol == "MSFT")].iloc[0]
    assert (msft["source_interval"], msft["bar_count"]) == ("1min", 12)
    assert set(mart[mart.symbol == "JPM"]["source_interval"]) == {"1day"}
    assert pd.Timestamp(msft["trade_date"]).date() == first


def test_returns_moving_averages_and_sectors_match_pandas(duckdb_warehouse: BuiltWarehouse) -> None:
    settings = duckdb_warehouse.settings
    daily = expected_daily(duckdb_warehouse.dataset.lake_dir).sort_values(["symbol", "trade_date"])
    daily["prev_close"] = daily.groupby("symbol")["close"].shift(1)
    daily["daily_return"] = daily["close"] / daily["prev_close"] - 1
    grouped = daily.groupby("symbol")
    daily["sma_20"] = grouped["close"].transform(lambda s: s.rolling(20).mean())
    daily["sma_50"] = grouped["close"].transform(lambda s: s.rolling(50).mean())
    daily["volatility_20"] = grouped["daily_return"].transform(lambda s: s.rolling(20).std())

    returns = query(settings, "select * from gold.mart_daily_returns order by symbol, trade_date")
    moving = query(settings, "select * from gold.mart_moving_averages order by symbol, trade_date")
    for frame, columns in (
        (returns, ["prev_close", "daily_return"]),
        (moving, ["sma_20", "sma_50", "volatility_20"]),
    ):
        for column in columns:
            got, want = frame[column].to_numpy(dtype=float), daily[column].to_numpy(dtype=float)
            assert (pd.isna(got) == pd.isna(want)).all(), column
            assert got[~pd.isna(got)] == pytest.approx(want[~pd.isna(want)], rel=1e-9), column
    assert moving["sma_20"].notna().sum() == 4 * 3  # days 20, 21, 22 of each symbol
    assert moving["volatility_20"].notna().sum() == 4 * 2  # needs 20 returns = 21 days
    assert moving["sma_50"].isna().all()

    sectors = query(settings, "select * from gold.mart_sector_daily order by sector, trade_date")
    last = duckdb_warehouse.dataset.trade_dates[-1]
    day = sectors[sectors.trade_date.dt.date == last].set_index("sector")
    assert day.loc["Technology", "symbols"] == 2
    assert day.loc["Unknown", "symbols"] == 1  # JPM has no companies row
    on_day = daily[daily.trade_date == last]
    tech = on_day[on_day.symbol.isin(["AAPL", "MSFT"])]
    assert day.loc["Technology", "avg_return"] == pytest.approx(tech["daily_return"].mean(), rel=1e-9)
    assert day.loc["Technology", "total_volume"] == tech["volume"].sum()


def test_dim_date_and_keys_are_built_on_each_bars_own_timestamp(duckdb_warehouse: BuiltWarehouse) -> None:
    settings = duckdb_warehouse.settings
    dim = query(settings, "select * from gold.dim_date")
    bars = read_silver_stock_prices(duckdb_warehouse.dataset.lake_dir).to_pylist()
    assert len(dim) == len({b["bar_ts"] for b in bars})
    by_key = dim.set_index("date_key")
    for bar in bars[:: max(1, len(bars) // 60)]:
        local = bar["bar_ts"].astimezone(NEW_YORK)
        row: Any = by_key.loc[md5(iso_utc(bar["bar_ts"]))]
        assert pd.Timestamp(row["date"]).to_pydatetime() == local.replace(tzinfo=None)
        assert (row["year"], row["month"], row["day"]) == (local.year, local.month, local.day)
        assert (row["hour"], row["minute"]) == (local.hour, local.minute)
        assert row["day_of_week"] == local.isoweekday()
        assert row["week"] == local.isocalendar().week
        assert row["quarter"] == (local.month - 1) // 3 + 1
        assert pd.Timestamp(row["trade_date"]).date() == bar["trade_date"]
    # 09:30 New York is 14:30 UTC before the 2024-03-10 DST change and 13:30 after it
    opens = dim[(dim.hour == 9) & (dim.minute == 30)]
    utc_hours = {pd.Timestamp(t).tz_convert("UTC").hour for t in opens["bar_ts"]}
    assert utc_hours == {13, 14}

    fact = query(settings, "select id, symbol, interval, bar_ts, date_key, company_id from gold.fact_stock")
    assert len(fact) == len(bars)
    assert fact["id"].is_unique
    sample = fact.sample(50, random_state=1)
    for bar_row in sample.itertuples():
        ts = pd.Timestamp(bar_row.bar_ts).to_pydatetime()  # type: ignore[arg-type]
        assert bar_row.id == md5(f"{bar_row.symbol}|{bar_row.interval}|{iso_utc(ts)}")
        assert bar_row.date_key == md5(iso_utc(ts))
    companies = query(settings, "select * from gold.dim_companies").set_index("symbol")
    assert set(fact["company_id"]) == set(companies.index)
    assert not companies.loc["JPM", "has_reference_data"]
    assert companies.loc["AAPL", "sector"] == "Technology"


def test_the_project_is_parsed_once_until_a_file_changes(
    duckdb_warehouse: BuiltWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build, source freshness and test share one parse, in this process and the next; every
    data test still runs."""
    clone = clone_warehouse(duckdb_warehouse, tmp_path)
    project = tmp_path / "dbt"
    shutil.copytree(SHIPPED_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    dbt_settings = clone.settings.dbt.model_copy(update={"project_dir": project})
    settings = clone.settings.model_copy(update={"dbt": dbt_settings})

    first = project_manifest(settings)
    assert project_manifest(settings) is first
    built = run_transform(settings)
    checked = run_quality(settings)
    assert built.success, built.failed
    assert checked.success, checked.failed
    assert (
        len([n for n in checked.nodes if n.resource_type == "test"])
        == len([n for n in first.nodes.values() if n.resource_type == "test"])
        > 60
    )
    assert "source.stockpipe.raw.stock_prices" in {n.unique_id for n in checked.nodes}
    assert project_manifest(settings) is first  # still the one parse

    # a new process (no manifest in memory) on the unchanged project: the saved manifest, no
    # parse, manifest.json left as the first parse wrote it, and every test still runs on it
    written = settings.state_dir / "dbt" / "target" / "manifest.json"
    first_write = written.stat().st_mtime_ns
    runner_module._manifests.clear()
    parse = runner_module.parse_project

    def no_parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("parsed although the saved manifest is current")

    monkeypatch.setattr(runner_module, "parse_project", no_parse)
    again = project_manifest(settings)
    assert again is not first
    assert again.nodes.keys() == first.nodes.keys()
    assert {k: n.raw_code for k, n in again.nodes.items()} == {k: n.raw_code for k, n in first.nodes.items()}
    # the variables the parse read (running adds those read while compiling, read anew each time)
    assert again.env_vars
    assert again.env_vars.items() <= first.env_vars.items()
    assert written.stat().st_mtime_ns == first_write
    rechecked = run_quality(settings)
    assert rechecked.success, rechecked.failed
    assert sorted(n.unique_id for n in rechecked.nodes) == sorted(n.unique_id for n in checked.nodes)
    monkeypatch.setattr(runner_module, "parse_project", parse)

    # an environment variable the project reads changes, or the saved file is broken: parsed
    assert "STOCKPIPE_DBT_FRESHNESS_WARN_HOURS" in again.env_vars
    monkeypatch.setenv("STOCKPIPE_DBT_FRESHNESS_WARN_HOURS", "30")
    runner_module._manifests.clear()
    assert project_manifest(settings).env_vars["STOCKPIPE_DBT_FRESHNESS_WARN_HOURS"] == "30"
    saved = settings.state_dir / "dbt" / "target" / runner_module.SAVED_MANIFEST
    saved.write_bytes(saved.read_bytes()[:5000])
    runner_module._manifests.clear()
    assert project_manifest(settings).nodes.keys() == first.nodes.keys()
    monkeypatch.delenv("STOCKPIPE_DBT_FRESHNESS_WARN_HOURS")

    model = project / "models" / "marts" / "mart_daily_returns.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = project_manifest(settings)
    assert edited is not again  # a changed file: parsed again
    assert written.stat().st_mtime_ns > first_write  # and manifest.json is this parse's
    nodes = json.loads(written.read_text())["nodes"]
    assert "-- edited" in nodes["model.stockpipe.mart_daily_returns"]["raw_code"]


@pytest.mark.parametrize("warm", [False, True], ids=["parse", "warm-manifest"])
def test_resent_newer_bar_updates_fact_stock_incrementally(
    duckdb_warehouse: BuiltWarehouse, tmp_path: Path, warm: bool
) -> None:
    """Also through a manifest parsed beforehand (what ``stockpipe stream`` does every cycle)."""
    clone = clone_warehouse(duckdb_warehouse, tmp_path)
    settings, ds = clone.settings, clone.dataset
    last = ds.trade_dates[-1]
    part = ds.partition(last).to_pylist()
    regular = [r for r in part if r["symbol"] == "AAPL" and r["is_regular_session"]]
    target = max(regular, key=lambda r: r["bar_ts"])  # the day's last bar: it sets the close
    target.update(close=target["high"], produced_at=target["produced_at"] + timedelta(minutes=5))
    ds.replace_partition(last, pa.Table.from_pylist(part, schema=ds.stock_prices.schema))

    loaded = run_load(settings)
    assert loaded.partitions_loaded == 1
    before = query(settings, "select count(*) as n, max(loaded_at) as m from gold.fact_stock")
    result = run_transform(settings, manifest=parse_project(settings) if warm else None)
    assert result.success
    after = query(settings, "select count(*) as n from gold.fact_stock")
    assert after["n"][0] == before["n"][0]
    ts = target["bar_ts"]
    row = query(
        settings,
        "select close_price, loaded_at from gold.fact_stock where symbol = 'AAPL' and bar_ts = ?",
        [ts],
    )
    assert row["close_price"].tolist() == [target["high"]]
    assert row["loaded_at"][0] > before["m"][0]
    mart = query(
        settings, "select close from gold.mart_daily_ohlcv where symbol = 'AAPL' and trade_date = ?", [last]
    )
    assert mart["close"].tolist() == [target["high"]]
    unchanged = query(
        settings,
        "select count(*) as n from gold.fact_stock where trade_date < ? and loaded_at <= ?",
        [last, before["m"][0]],
    )
    assert unchanged["n"][0] == len([b for b in ds.stock_prices.to_pylist() if b["trade_date"] < last])


def test_fact_stock_built_before_exchange_zones_gains_the_column_and_keeps_its_keys(
    duckdb_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    """An incremental fact_stock from before `exchange_timezone` existed: the next build appends
    the column (older rows null = the default zone), dim_date still covers every key, quality passes."""
    clone = clone_warehouse(duckdb_warehouse, tmp_path)
    settings, ds = clone.settings, clone.dataset
    last = ds.trade_dates[-1]
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("alter table gold.fact_stock drop column exchange_timezone")
        for table in ("raw.stock_prices", "gold.fact_stock"):  # the older days came in an earlier load
            sql = f"update {table} set loaded_at = loaded_at - interval 1 hour where trade_date < ?"
            con.execute(sql, [last])
        old_keys = dict(con.execute("select id, date_key from gold.fact_stock").fetchall())
    part = ds.partition(last).to_pylist()
    for row in part:
        row["produced_at"] = row["produced_at"] + timedelta(minutes=5)  # re-sent: a newer version
    ds.replace_partition(last, pa.Table.from_pylist(part, schema=ds.stock_prices.schema))
    assert run_load(settings).partitions_loaded == 1
    assert run_transform(settings).success
    fact = query(settings, "select id, date_key, trade_date, exchange_timezone from gold.fact_stock")
    rebuilt = fact["trade_date"].dt.date == last
    assert fact.loc[rebuilt, "exchange_timezone"].eq("America/New_York").all()
    assert fact.loc[~rebuilt, "exchange_timezone"].isna().all()
    assert dict(zip(fact["id"], fact["date_key"], strict=True)) == old_keys  # New York keys unchanged
    dim = query(settings, "select date_key, exchange_timezone from gold.dim_date")
    assert set(dim["date_key"]) == set(fact["date_key"])
    assert dim["exchange_timezone"].eq("America/New_York").all()
    checked = run_quality(settings)
    assert checked.success, [(n.name, n.message) for n in checked.failed]


def test_quality_reports_an_ohlc_inconsistent_row_and_stale_source_by_name(
    duckdb_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    clone = clone_warehouse(duckdb_warehouse, tmp_path)
    settings = clone.settings
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("update raw.stock_prices set loaded_at = loaded_at - interval 100 hour")  # stale
        # one live bar (bar_ts an hour before its load; the fixture's 2024 bars are history), inconsistent
        con.execute(
            "insert into raw.stock_prices"
            " select * replace (high - 1000 as high, loaded_at - interval 1 hour as bar_ts)"
            " from raw.stock_prices where symbol = 'XOM' limit 1"
        )
    result = run_quality(settings, select="source:raw")
    assert not result.success
    assert "— 1 of " in result.note
    assert "bars are live, newest loaded 100." in result.note
    failed = {n.name: n for n in result.failed}
    assert set(failed) == {"raw_stock_prices_ohlc_consistent", "raw.stock_prices"}
    assert failed["raw.stock_prices"].resource_type == "source"
    assert "h old" in failed["raw.stock_prices"].message
    assert failed["raw_stock_prices_ohlc_consistent"].failures == 1
    assert "1 result" in failed["raw_stock_prices_ohlc_consistent"].message
    recorded = query(settings, "select node, status from raw.dbt_results where status = 'fail'")
    assert recorded["node"].str.contains("raw_stock_prices_ohlc_consistent").tolist() == [True]

    # the CLI, in-process (dbt reuses the parse): transform still builds, quality exits 1
    env = {**settings_env(settings), "COLUMNS": "200"}
    runner = CliRunner()
    built = runner.invoke(app, ["transform", "--select", "fact_stock"], env=env)
    assert built.exit_code == 0, built.output
    assert "passed" in built.output
    checked = runner.invoke(app, ["quality", "--select", "raw_stock_prices_ohlc_consistent"], env=env)
    assert checked.exit_code == 1, checked.output
    assert "raw_stock_prices_ohlc_consistent" in checked.output
    assert "quality failed" in checked.output
    assert (settings.state_dir / "dbt" / "target" / "manifest.json").exists()
