"""Build a small, self-consistent gold warehouse in DuckDB for the reporting tests.

The tables and columns are exactly those of docs/architecture.md section 4. Generated
1-minute regular-session bars for a few symbols x days are the single source: the raw table
holds them all, ``gold.fact_stock`` all but the last ``unmodelled_bars`` (dbt has not caught
up yet, so raw and gold counts differ on purpose), and every mart is derived from the fact
table with pandas the way the dbt models define it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from stockpipe.warehouse import tables
from tests.helpers_silver import trading_days

EXCHANGE_TZ = "America/New_York"
COMPANIES = {
    "AAPL": ("Apple Inc", "TECHNOLOGY", "ELECTRONIC COMPUTERS", 180.0),
    "MSFT": ("Microsoft Corporation", "TECHNOLOGY", "SERVICES-PREPACKAGED SOFTWARE", 410.0),
    "JPM": ("JPMorgan Chase & Co", "FINANCE", "NATIONAL COMMERCIAL BANKS", 190.0),
    "XOM": ("Exxon Mobil Corp", "ENERGY & TRANSPORTATION", "PETROLEUM REFINING", 110.0),
}


@dataclass(frozen=True)
class GoldSpec:
    """What to generate."""

    symbols: tuple[str, ...] = ("AAPL", "MSFT", "JPM", "XOM")
    days: int = 6
    bars_per_day: int = 390
    start: date = date(2024, 3, 4)
    seed: int = 7
    unmodelled_bars: int = 5
    with_health: bool = True
    with_freshness: bool = False


def _raw_columns(table: str) -> str:
    """A raw table's columns as DDL, from the warehouse's Arrow schema (itself from the contract)."""
    return ", ".join(f"{f.name} {tables.sql_type(f.type, 'duckdb')}" for f in tables.RAW_TABLES[table]())


DDL = {
    "raw.stock_prices": _raw_columns(tables.STOCK_PRICES),
    "raw.companies": """symbol varchar, asset_type varchar, name varchar, description varchar,
        exchange varchar, sector varchar, industry varchar""",
    "raw.quarantine_summary": _raw_columns(tables.QUARANTINE_SUMMARY),
    "raw.load_history": _raw_columns(tables.LOAD_HISTORY),
    "raw.dbt_results": _raw_columns(tables.DBT_RESULTS),
    "raw.freshness": _raw_columns(tables.FRESHNESS),
    "gold.dim_companies": """symbol varchar, asset_type varchar, name varchar, sector varchar,
        industry varchar, description varchar, exchange varchar, exchange_timezone varchar,
        has_reference_data boolean""",
    "gold.dim_date": """date_key varchar, date timestamp, bar_ts timestamptz, trade_date date,
        year integer, month integer, day integer, day_of_week integer, quarter integer,
        week integer, hour integer, minute integer, exchange_timezone varchar""",
    "gold.fact_stock": """id varchar, company_id varchar, date_key varchar, open_price double,
        close_price double, high_price double, low_price double, volume bigint, symbol varchar,
        interval varchar, interval_minutes integer, bar_ts timestamptz, trade_date date,
        is_regular_session boolean, source_name varchar, produced_at timestamptz,
        loaded_at timestamptz, exchange_timezone varchar""",
    "gold.mart_daily_ohlcv": """symbol varchar, trade_date date, open double, high double,
        low double, close double, volume bigint, vwap double, bar_count bigint,
        source_interval varchar""",
    "gold.mart_daily_returns": """symbol varchar, trade_date date, close double,
        prev_close double, daily_return double""",
    "gold.mart_moving_averages": """symbol varchar, trade_date date, close double,
        sma_20 double, sma_50 double, volatility_20 double""",
    "gold.mart_sector_daily": """sector varchar, trade_date date, symbols bigint,
        avg_return double, total_volume bigint""",
}
GOLD_TABLES = [t.split(".", 1)[1] for t in DDL if t.startswith("gold.")]


def generate_bars(spec: GoldSpec) -> pd.DataFrame:
    """Random-walk 1-minute regular-session bars (silver columns), one row per symbol x minute."""
    rng = np.random.default_rng(spec.seed)
    frames = []
    for i, symbol in enumerate(spec.symbols):
        base = COMPANIES.get(symbol, (symbol, "TECHNOLOGY", "", 50.0 + 10 * i))[3]
        for day_index, day in enumerate(trading_days(spec.start, spec.days)):
            open_local = pd.Timestamp(day).tz_localize(EXCHANGE_TZ) + pd.Timedelta(hours=9, minutes=30)
            ts = pd.date_range(open_local, periods=spec.bars_per_day, freq="1min").tz_convert("UTC")
            drift = rng.normal(0.0, 0.0015, spec.bars_per_day)
            start_px = base * (1 + 0.01 * rng.normal()) * (1 + 0.002 * day_index)
            close = start_px * np.exp(np.cumsum(drift))
            open_ = np.concatenate([[start_px], close[:-1]])
            high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0008, spec.bars_per_day)))
            low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0008, spec.bars_per_day)))
            frames.append(
                pd.DataFrame(
                    {
                        "symbol": symbol,
                        "interval": "1min",
                        "bar_ts": ts,
                        "open": open_.round(4),
                        "high": high.round(4),
                        "low": low.round(4),
                        "close": close.round(4),
                        "volume": rng.integers(1_000, 50_000, spec.bars_per_day),
                        "trade_date": day,
                    }
                )
            )
    bars = pd.concat(frames, ignore_index=True).sort_values(["bar_ts", "symbol"], ignore_index=True)
    bars["source"] = "simulator"
    bars["produced_at"] = bars["bar_ts"] + pd.Timedelta(seconds=61)
    bars["schema_version"] = 1
    bars["is_regular_session"] = True
    bars["kafka_topic"] = "stock-prices"
    bars["kafka_partition"] = bars["symbol"].map({s: i % 3 for i, s in enumerate(spec.symbols)})
    bars["kafka_offset"] = bars.groupby("kafka_partition").cumcount()
    bars["kafka_ts"] = bars["produced_at"]
    bars["ingest_date"] = bars["trade_date"]
    bars["bronze_file"] = "stock-prices+000000000000+00000+0+0.parquet"
    return bars


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def gold_frames(bars: pd.DataFrame, companies: pd.DataFrame, loaded_at: datetime) -> dict[str, pd.DataFrame]:
    """Every gold table derived from the modelled bars, as the dbt models define them."""
    iso = bars["bar_ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    local = bars["bar_ts"].dt.tz_convert(EXCHANGE_TZ)
    fact = pd.DataFrame(
        {
            "id": [
                _md5(f"{s}|{i}|{t}") for s, i, t in zip(bars["symbol"], bars["interval"], iso, strict=True)
            ],
            "company_id": bars["symbol"],
            "date_key": iso.map(_md5),
            "open_price": bars["open"],
            "close_price": bars["close"],
            "high_price": bars["high"],
            "low_price": bars["low"],
            "volume": bars["volume"],
            "symbol": bars["symbol"],
            "interval": bars["interval"],
            "interval_minutes": 1,
            "bar_ts": bars["bar_ts"],
            "trade_date": bars["trade_date"],
            "is_regular_session": bars["is_regular_session"],
            "source_name": bars["source"],
            "produced_at": bars["produced_at"],
            "loaded_at": loaded_at,
            "exchange_timezone": EXCHANGE_TZ,
        }
    )
    dim_date = pd.DataFrame(
        {
            "date_key": fact["date_key"],
            "date": local.dt.tz_localize(None),
            "bar_ts": bars["bar_ts"],
            "trade_date": bars["trade_date"],
            "year": local.dt.year,
            "month": local.dt.month,
            "day": local.dt.day,
            "day_of_week": local.dt.dayofweek + 1,  # ISO, 1 = Monday
            "quarter": local.dt.quarter,
            "week": local.dt.isocalendar().week.astype(int),
            "hour": local.dt.hour,
            "minute": local.dt.minute,
            "exchange_timezone": EXCHANGE_TZ,
        }
    ).drop_duplicates("date_key", ignore_index=True)
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3
    g = bars.assign(pv=typical * bars["volume"]).sort_values("bar_ts").groupby(["symbol", "trade_date"])
    ohlcv = g.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        pv=("pv", "sum"),
        bar_count=("close", "size"),
    ).reset_index()
    ohlcv["vwap"] = ohlcv["pv"] / ohlcv["volume"]
    ohlcv = ohlcv.drop(columns="pv").sort_values(["symbol", "trade_date"], ignore_index=True)
    ohlcv["source_interval"] = "1min"
    by_symbol = ohlcv.groupby("symbol")["close"]
    returns = ohlcv[["symbol", "trade_date", "close"]].assign(prev_close=by_symbol.shift(1))
    returns["daily_return"] = returns["close"] / returns["prev_close"] - 1
    ma = ohlcv[["symbol", "trade_date", "close"]].copy()
    ma["sma_20"] = by_symbol.transform(lambda s: s.rolling(20, min_periods=20).mean())
    ma["sma_50"] = by_symbol.transform(lambda s: s.rolling(50, min_periods=50).mean())
    ma["volatility_20"] = returns.groupby("symbol")["daily_return"].transform(
        lambda s: s.rolling(20, min_periods=20).std()
    )
    sector_of = companies.set_index("symbol")["sector"]
    sec = returns.merge(ohlcv[["symbol", "trade_date", "volume"]], on=["symbol", "trade_date"])
    sec["sector"] = sec["symbol"].map(sector_of)
    sector_daily = (
        sec.groupby(["sector", "trade_date"])
        .agg(
            symbols=("symbol", "nunique"), avg_return=("daily_return", "mean"), total_volume=("volume", "sum")
        )
        .reset_index()
    )
    dims = companies.assign(exchange_timezone=EXCHANGE_TZ, has_reference_data=True)
    return {
        "fact_stock": fact,
        "dim_companies": dims[dims["symbol"].isin(bars["symbol"].unique())],
        "dim_date": dim_date,
        "mart_daily_ohlcv": ohlcv,
        "mart_daily_returns": returns,
        "mart_moving_averages": ma,
        "mart_sector_daily": sector_daily,
    }


def companies_frame(symbols: tuple[str, ...]) -> pd.DataFrame:
    """The companies reference rows of ``symbols``."""
    rows = []
    for s in symbols:
        name, sector, industry, _ = COMPANIES.get(s, (s, "TECHNOLOGY", "", 0.0))
        rows.append((s, "Common Stock", name, f"{name} description", "NASDAQ", sector, industry))
    return pd.DataFrame(
        rows, columns=["symbol", "asset_type", "name", "description", "exchange", "sector", "industry"]
    )


def _health_frames(bars: pd.DataFrame, loaded_at: datetime, with_freshness: bool) -> dict[str, pd.DataFrame]:
    days = sorted(bars["trade_date"].unique())
    quarantine = pd.DataFrame(
        {
            "ingest_date": [days[0], days[-1], days[-1]],
            "rule": ["high_below_low", "high_below_low", "not_json"],
            "records": [3, 2, 4],
        }
    )
    load_history = pd.DataFrame(
        {
            "loaded_at": [loaded_at - timedelta(minutes=len(days) - i) for i in range(len(days))],
            "table_name": "stock_prices",
            "partition_key": [f"trade_date={d}" for d in days],
            "rows": bars.groupby("trade_date").size().loc[days].to_numpy(),
        }
    )
    older, newer = loaded_at - timedelta(hours=1), loaded_at
    dbt = pd.DataFrame(
        [
            (older, "test", "test.stockpipe.unique_fact_stock_id", "test", "fail", "1 duplicate"),
            (older, "run", "model.stockpipe.fact_stock", "model", "success", "OK"),
            (newer, "run", "model.stockpipe.fact_stock", "model", "success", "OK"),
            (newer, "run", "model.stockpipe.mart_daily_ohlcv", "model", "success", "OK"),
            (newer, "test", "test.stockpipe.unique_fact_stock_id", "test", "pass", ""),
            (newer, "test", "test.stockpipe.not_null_fact_stock_close_price", "test", "pass", ""),
            (newer, "test", "test.stockpipe.relationships_fact_stock_company_id", "test", "warn", "2 rows"),
        ],
        columns=["run_at", "invocation", "node", "resource_type", "status", "message"],
    )
    out = {"raw.quarantine_summary": quarantine, "raw.load_history": load_history, "raw.dbt_results": dbt}
    if with_freshness:
        cycles = pd.date_range(loaded_at - timedelta(minutes=10), periods=11, freq="1min")
        out["raw.freshness"] = pd.DataFrame(
            {
                "cycle_at": cycles,
                "bars": np.arange(11) * 4 + 4,
                "p50_seconds": np.linspace(1.0, 2.0, 11),
                "p95_seconds": np.linspace(3.0, 4.0, 11),
                "max_seconds": np.linspace(5.0, 6.0, 11),
            }
        )
    return out


def warehouse_frames(spec: GoldSpec | None = None) -> dict[str, pd.DataFrame]:
    """Every table (``schema.table`` -> rows in contract column order) of a consistent warehouse."""
    spec = spec or GoldSpec()
    bars = generate_bars(spec)
    companies = companies_frame(spec.symbols)
    loaded_at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    modelled = bars.iloc[: len(bars) - spec.unmodelled_bars] if spec.unmodelled_bars else bars
    raw = bars.assign(loaded_at=loaded_at)
    frames: dict[str, pd.DataFrame] = {"raw.stock_prices": raw, "raw.companies": companies}
    frames.update({f"gold.{k}": v for k, v in gold_frames(modelled, companies, loaded_at).items()})
    if spec.with_health:
        frames.update(_health_frames(bars, loaded_at, spec.with_freshness))
    return {table: frame[_columns(table)].reset_index(drop=True) for table, frame in frames.items()}


def build_gold_warehouse(
    path: Path, spec: GoldSpec | None = None, skip: tuple[str, ...] = ()
) -> dict[str, int]:
    """Create (or replace) a DuckDB warehouse at ``path``; return rows per ``schema.table``.

    ``skip`` leaves tables out (``"gold.mart_moving_averages"``) to test graceful degradation.
    The file is built next to ``path`` and renamed over it, so a reader never sees it half-built.
    """
    frames = {t: f for t, f in warehouse_frames(spec).items() if t not in skip}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("create schema if not exists raw")
        con.execute("create schema if not exists gold")
        for table, frame in frames.items():
            cols = _columns(table)
            con.execute(f"create table {table} ({_ddl(table)})")
            con.register("frame_view", frame)
            con.execute(f"insert into {table} select {', '.join(_quote(c) for c in cols)} from frame_view")
            con.unregister("frame_view")
            counts[table] = len(frame)
        con.execute("checkpoint")
    finally:
        con.close()
    tmp.replace(path)
    return counts


def build_empty_warehouse(path: Path) -> None:
    """A DuckDB warehouse with an empty raw schema and no gold tables (the loader ran, dbt not)."""
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("create schema raw")
        con.execute(f"create table raw.stock_prices ({_ddl('raw.stock_prices')})")
        con.execute("checkpoint")
    finally:
        con.close()
    tmp.replace(path)


SNOWFLAKE_TYPES = {"timestamptz": "timestamp_tz", "timestamp": "timestamp_ntz"}


def load_into_snowflake(con: Any, frames: dict[str, pd.DataFrame], database: str = "STOCKPIPE") -> None:
    """Create and fill ``frames`` in a Snowflake(-compatible, e.g. fakesnow) connection.

    Names are upper-cased like unquoted Snowflake identifiers; values are bound (qmark).
    """
    cur = con.cursor()
    try:
        cur.execute(f"create database if not exists {database}")
        cur.execute(f"use database {database}")
        for schema in sorted({t.split(".")[0] for t in frames}):
            cur.execute(f"create schema if not exists {schema.upper()}")
        for table, frame in frames.items():
            parts = [p.split(maxsplit=1) for p in " ".join(DDL[table].split()).split(", ")]
            ddl = ", ".join(f'"{n.upper()}" {SNOWFLAKE_TYPES.get(k, k)}' for n, k in parts)
            cur.execute(f"create table {table.upper()} ({ddl})")
            rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False)]
            marks = ", ".join("?" for _ in parts)
            if rows:
                cur.executemany(f"insert into {table.upper()} values ({marks})", rows)
    finally:
        cur.close()


def _plain(value: Any) -> Any:
    """numpy/pandas scalars -> Python values the connector binds."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _columns(table: str) -> list[str]:
    return [part.split()[0] for part in " ".join(DDL[table].split()).split(", ")]


def _ddl(table: str) -> str:
    parts = [part.split(maxsplit=1) for part in " ".join(DDL[table].split()).split(", ")]
    return ", ".join(f"{_quote(name)} {kind}" for name, kind in parts)


def _quote(name: str) -> str:
    return f'"{name}"'
