"""Write a small, consistent silver lake with pyarrow, exactly as docs/architecture.md (section 3).

Stages downstream of Spark (warehouse, dashboard, pipeline tests) use this instead of running
the cleaning job. Files are laid out the way Spark writes them: hive partition folders
(``trade_date=YYYY-MM-DD``), the partition column kept in the path only, ``part-…`` file names
that change on every rewrite, and a ``_SUCCESS`` marker. Daily bars go to the daily dataset
(``stock_prices_daily/trade_month=YYYY-MM``, ``trade_date`` kept in the files;
``write_daily_bars``); ``write_old_layout_partition`` writes a day the way silver looked before
that dataset existed (daily bars inside ``trade_date=D``). The schemas come from the silver
contract (``stockpipe.contract.silver``); tests/unit/test_contract_silver.py holds every other
derivation of it against the contract.

    ds = write_silver(tmp_path / "lake")                 # 3 symbols x 3 days x 30 bars (+2 pre-market)
    settings = Settings(data_dir=..., lake={"root": ds.lake_uri})
"""

from __future__ import annotations

import random
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stockpipe.contract import silver
from stockpipe.contract.bar import INTERVAL_MINUTES
from stockpipe.contract.layout import DAILY_PRICES, INTRADAY_PRICES

NEW_YORK = ZoneInfo("America/New_York")
TOPIC = "stock-prices"

STOCK_PRICES_SCHEMA = silver.silver_schema()
COMPANIES_SCHEMA = pa.schema(
    [
        (n, pa.string())
        for n in ("symbol", "asset_type", "name", "description", "exchange", "sector", "industry")
    ]
)
# the quarantine files: the partition column ingest_date lives in the folder name
QUARANTINE_SCHEMA = silver.without_partition(silver.quarantine_schema(), silver.QUARANTINE_PARTITION)

COMPANY_INFO: dict[str, tuple[str, str, str, str]] = {
    # symbol: (name, exchange, sector, industry)
    "AAPL": ("Apple Inc", "NASDAQ", "Technology", "Consumer Electronics"),
    "MSFT": ("Microsoft Corporation", "NASDAQ", "Technology", "Software"),
    "XOM": ("Exxon Mobil Corporation", "NYSE", "Energy", "Oil & Gas Integrated"),
    "JPM": ("JPMorgan Chase & Co", "NYSE", "Financial Services", "Banks"),
}


_KEY = ("symbol", "interval", "bar_ts")  # one silver row per key


def _intraday_of(table: pa.Table, trade_date: date) -> pa.Array:
    """Mask: the intraday rows of ``trade_date`` (what ``trade_date=D`` of ``stock_prices`` holds)."""
    daily = pc.is_in(table.column("interval"), value_set=pa.array(silver.DAILY_INTERVALS))
    return pc.and_(pc.equal(table.column("trade_date"), pa.scalar(trade_date)), pc.invert(daily))


@dataclass
class SilverDataset:
    """What was written: the full tables (with ``trade_date``; intraday and daily bars) and where."""

    lake_dir: Path
    stock_prices: pa.Table
    companies: pa.Table
    quarantine: pa.Table  # with its ingest_date partition column
    trade_dates: list[date] = field(default_factory=list)

    @property
    def lake_uri(self) -> str:
        return self.lake_dir.resolve().as_uri()

    def partition_dir(self, trade_date: date) -> Path:
        return self.lake_dir / "silver" / "stock_prices" / f"trade_date={trade_date.isoformat()}"

    def partition(self, trade_date: date) -> pa.Table:
        """The intraday rows of one trade date (its ``trade_date=`` partition; with ``trade_date``)."""
        return self.stock_prices.filter(_intraday_of(self.stock_prices, trade_date))

    def replace_partition(self, trade_date: date, table: pa.Table, *, files: int = 1) -> list[Path]:
        """Rewrite one intraday partition the way Spark does (new file names); ``stock_prices`` in step."""
        table = table.select(STOCK_PRICES_SCHEMA.names).cast(STOCK_PRICES_SCHEMA)
        others = self.stock_prices.filter(pc.invert(_intraday_of(self.stock_prices, trade_date)))
        self.stock_prices = pa.concat_tables([others, table])
        if trade_date not in self.trade_dates:
            self.trade_dates = sorted([*self.trade_dates, trade_date])
        return write_stock_prices_partition(self.lake_dir, trade_date, table, files=files)

    def remove_partition(self, trade_date: date) -> None:
        shutil.rmtree(self.partition_dir(trade_date))
        self.stock_prices = self.stock_prices.filter(pc.invert(_intraday_of(self.stock_prices, trade_date)))
        self.trade_dates = [d for d in self.trade_dates if d != trade_date]

    def add_daily(self, bars: pa.Table) -> list[Path]:
        """Write daily bars to their month partitions (merged with the bars there; a bar with the same
        key replaces the stored one) and keep ``stock_prices`` in step."""
        bars = bars.select(STOCK_PRICES_SCHEMA.names).cast(STOCK_PRICES_SCHEMA)
        months = {DAILY_PRICES.value(d) for d in bars.column("trade_date").to_pylist()}
        daily = pc.is_in(self.stock_prices.column("interval"), value_set=pa.array(silver.DAILY_INTERVALS))
        month_of = pc.utf8_slice_codeunits(pc.cast(self.stock_prices.column("trade_date"), pa.string()), 0, 7)
        touched = pc.and_(daily, pc.is_in(month_of, value_set=pa.array(sorted(months))))
        stored = self.stock_prices.filter(touched)
        new_keys = set(zip(*(bars.column(c).to_pylist() for c in _KEY), strict=True))
        old_keys = zip(*(stored.column(c).to_pylist() for c in _KEY), strict=True)
        stored = stored.filter(pa.array([k not in new_keys for k in old_keys], pa.bool_()))  # replaced
        self.stock_prices = pa.concat_tables([self.stock_prices.filter(pc.invert(touched)), stored, bars])
        return write_daily_bars(self.lake_dir, pa.concat_tables([stored, bars]))


def read_silver_stock_prices(lake_dir: Path) -> pa.Table:
    """Read every silver bar back from the Parquet files: ``stock_prices`` (trade_date from the
    folder names) and ``stock_prices_daily`` (trade_date in the files), in contract column order."""
    import pyarrow.dataset as pads

    part = pads.partitioning(pa.schema([("trade_date", pa.date32())]), flavor="hive")
    tables = []
    intraday = lake_dir / "silver" / INTRADAY_PRICES.name
    if intraday.exists():
        tables.append(pads.dataset(intraday, format="parquet", partitioning=part).to_table())
    daily = lake_dir / "silver" / DAILY_PRICES.name
    if daily.exists():
        tables.append(pads.dataset(daily, format="parquet").to_table())
    return (
        pa.concat_tables([t.select(STOCK_PRICES_SCHEMA.names).cast(STOCK_PRICES_SCHEMA) for t in tables])
        if tables
        else STOCK_PRICES_SCHEMA.empty_table()
    )


def aggregate_bars(bars: pa.Table, minutes: int) -> pa.Table:
    """Coarser bars built from finer ones (same symbol and day), OHLC-consistent by construction."""
    rows = sorted(bars.to_pylist(), key=lambda r: (r["symbol"], r["bar_ts"]))
    out: dict[tuple[str, datetime], dict[str, Any]] = {}
    for r in rows:
        ts: datetime = r["bar_ts"]
        start = ts - timedelta(minutes=(ts.hour * 60 + ts.minute) % minutes)
        key = (r["symbol"], start)
        if key not in out:
            out[key] = {
                **r,
                "bar_ts": start,
                "interval": f"{minutes}min",
                "kafka_offset": r["kafka_offset"] + 1_000_000,
            }
        else:
            agg = out[key]
            agg["high"] = max(agg["high"], r["high"])
            agg["low"] = min(agg["low"], r["low"])
            agg["close"] = r["close"]
            agg["volume"] = agg["volume"] + r["volume"]
    return pa.Table.from_pylist(list(out.values()), schema=bars.schema)


def trading_days(start: date, count: int) -> list[date]:
    """The first ``count`` weekdays from ``start``."""
    days: list[date] = []
    d = start
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def make_bars(
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "XOM"),
    *,
    days: int = 3,
    bars_per_day: int = 30,
    premarket_bars: int = 2,
    start: date = date(2024, 3, 4),
    seed: int = 7,
    interval: str = "1min",
) -> pa.Table:
    """Bars from 09:30 New York time (plus 1-minute pre-market bars from 09:00), a random walk.

    ``interval="1day"`` gives one bar per day at local midnight instead.
    """
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    offset = 0
    step = INTERVAL_MINUTES[interval]
    for d in trading_days(start, days):
        for si, symbol in enumerate(symbols):
            price = 100.0 + 50 * si + rng.uniform(-5, 5)
            if interval == "1day":  # one bar at local midnight; daily bars count as regular session
                local_times = [datetime.combine(d, time(0, 0), NEW_YORK)]
            else:
                local_times = [
                    datetime.combine(d, time(9, 0), NEW_YORK) + timedelta(minutes=i)
                    for i in range(premarket_bars)
                ]
                local_times += [
                    datetime.combine(d, time(9, 30), NEW_YORK) + timedelta(minutes=step * i)
                    for i in range(bars_per_day)
                ]
            for local in local_times:
                open_ = round(price, 2)
                close = round(max(1.0, price * (1 + rng.gauss(0, 0.002))), 2)
                high = round(max(open_, close) + rng.uniform(0, 0.3), 2)
                low = round(min(open_, close) - rng.uniform(0, 0.3), 2)
                price = close
                bar_ts = local.astimezone(UTC)
                regular = interval == "1day" or time(9, 30) <= local.time() < time(16, 0)
                rows.append(
                    {
                        "symbol": symbol,
                        "interval": interval,
                        "bar_ts": bar_ts,
                        "open": open_,
                        "high": high,
                        "low": low,
                        "close": close,
                        "volume": rng.randint(100, 50_000) if rng.random() > 0.05 else 0,
                        "source": "simulator",
                        "produced_at": bar_ts + timedelta(seconds=61),
                        "schema_version": 1,
                        "trade_date": d,
                        "is_regular_session": regular,
                        "kafka_topic": TOPIC,
                        "kafka_partition": si % 3,
                        "kafka_offset": offset,
                        "kafka_ts": bar_ts + timedelta(seconds=62),
                        "ingest_date": d,
                        "bronze_file": f"{TOPIC}+0123456789ab+{si % 3:05d}+{0:020d}+{999:020d}.parquet",
                    }
                )
                offset += 1
    return pa.Table.from_pylist(rows, schema=STOCK_PRICES_SCHEMA)


def make_companies(symbols: tuple[str, ...]) -> pa.Table:
    rows = []
    for s in symbols:
        default = (f"{s} Corp", "NYSE", "Industrials", "Machinery")
        name, exchange, sector, industry = COMPANY_INFO.get(s, default)
        rows.append(
            {
                "symbol": s,
                "asset_type": "Common Stock",
                "name": name,
                "description": f"{name} ({s}) test company.",
                "exchange": exchange,
                "sector": sector,
                "industry": industry,
            }
        )
    return pa.Table.from_pylist(rows, schema=COMPANIES_SCHEMA)


def make_quarantine(ingest_date: date, index: int = 0) -> pa.Table:
    """A few rejected records of one ingest date (2-4 records; one fails two rules)."""
    rows = []
    rule_sets = [["not_json"], ["price_not_positive", "high_below_low"], ["missing_symbol"], ["not_json"]]
    for j, rules in enumerate(rule_sets[: 2 + index % 3]):
        at = datetime.combine(ingest_date, time(15, 0), UTC) + timedelta(seconds=j)
        rows.append(
            {
                "kafka_topic": TOPIC,
                "kafka_partition": 0,
                "kafka_offset": 10_000 + 10 * index + j,
                "kafka_ts": at,
                "key": "AAPL",
                "raw_payload": "{oops" if rules == ["not_json"] else '{"symbol": "AAPL"}',
                "failed_rules": rules,
                "bronze_file": f"{TOPIC}+0123456789ab+00000+{0:020d}+{999:020d}.parquet",
                "quarantined_at": at,
            }
        )
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def _part_name() -> str:
    return f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"


def _write_spark_like(table: pa.Table, folder: Path, files: int, *, int96: bool) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()  # Spark's overwrite: the partition's old files go, new names come
    paths = []
    chunk = max(1, -(-table.num_rows // max(1, files)))
    for i in range(0, max(table.num_rows, 1), chunk):
        path = folder / _part_name()
        pq.write_table(
            table.slice(i, chunk), path, compression="snappy", use_deprecated_int96_timestamps=int96
        )
        paths.append(path)
    return paths


def write_stock_prices_partition(
    lake_dir: Path, trade_date: date, table: pa.Table, *, files: int = 1, int96: bool = False
) -> list[Path]:
    """(Re)write one ``trade_date`` partition; ``table`` may include ``trade_date`` (dropped)."""
    part = table.drop_columns(["trade_date"]) if "trade_date" in table.column_names else table
    folder = lake_dir / "silver" / "stock_prices" / f"trade_date={trade_date.isoformat()}"
    return _write_spark_like(part, folder, files, int96=int96)


def write_daily_bars(lake_dir: Path, table: pa.Table, *, int96: bool = False) -> list[Path]:
    """(Re)write the ``trade_month`` partitions of ``stock_prices_daily`` that ``table``'s daily bars
    fall in (one file per month, ``trade_date`` kept in the files)."""
    table = table.select(STOCK_PRICES_SCHEMA.names).cast(STOCK_PRICES_SCHEMA)
    month_of = pc.utf8_slice_codeunits(pc.cast(table.column("trade_date"), pa.string()), 0, 7)
    paths: list[Path] = []
    for month in sorted(set(month_of.to_pylist())):
        folder = lake_dir / "silver" / DAILY_PRICES.name / f"{DAILY_PRICES.partition}={month}"
        paths += _write_spark_like(table.filter(pc.equal(month_of, month)), folder, 1, int96=int96)
    return paths


def write_old_layout_partition(lake_dir: Path, trade_date: date, table: pa.Table) -> list[Path]:
    """A ``trade_date=D`` folder as silver stored it before the daily dataset: every bar of D,
    daily ones included (a lake that ``clean.migrate`` has to move)."""
    return write_stock_prices_partition(lake_dir, trade_date, table)


def write_old_layout(lake_dir: Path, table: pa.Table) -> list[Path]:
    """Every bar of ``table`` in its ``trade_date=`` folder, daily bars included (the layout
    before the daily dataset; see ``write_old_layout_partition``)."""
    dates = table.column("trade_date")
    paths: list[Path] = []
    for d in sorted(set(dates.to_pylist())):
        paths += write_old_layout_partition(lake_dir, d, table.filter(pc.equal(dates, d)))
    return paths


def write_silver(
    lake_dir: Path,
    *,
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "XOM"),
    days: int = 3,
    bars_per_day: int = 30,
    premarket_bars: int = 2,
    start: date = date(2024, 3, 4),
    seed: int = 7,
    files_per_partition: int = 1,
    company_symbols: tuple[str, ...] | None = None,
    int96: bool = False,
) -> SilverDataset:
    """Write stock_prices (partitioned by trade_date), companies and quarantine under ``lake_dir``."""
    bars = make_bars(
        symbols, days=days, bars_per_day=bars_per_day, premarket_bars=premarket_bars, start=start, seed=seed
    )
    dates = sorted(set(bars.column("trade_date").to_pylist()))
    for d in dates:
        mask = pc.equal(bars.column("trade_date"), pa.scalar(d, pa.date32()))
        write_stock_prices_partition(lake_dir, d, bars.filter(mask), files=files_per_partition, int96=int96)
    (lake_dir / "silver" / "stock_prices" / "_SUCCESS").touch()

    companies = make_companies(symbols if company_symbols is None else company_symbols)
    _write_spark_like(companies, lake_dir / "silver" / "companies", 1, int96=int96)

    parts = []
    for i, d in enumerate(dates):
        part = make_quarantine(d, i)
        _write_spark_like(
            part, lake_dir / "silver" / "quarantine" / f"ingest_date={d.isoformat()}", 1, int96=int96
        )
        parts.append(part.append_column("ingest_date", pa.array([d] * part.num_rows, pa.date32())))
    quarantine = pa.concat_tables(parts)
    return SilverDataset(lake_dir, bars, companies, quarantine, dates)
