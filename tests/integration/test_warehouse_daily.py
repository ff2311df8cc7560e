"""Both bar datasets into one raw.stock_prices: a reload of one never touches the other's rows.

``stock_prices/trade_date=D`` owns the intraday rows of D, ``stock_prices_daily/trade_month=M``
the daily rows of M; the same dates hold both kinds here. DuckDB and Snowflake (fakesnow).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from stockpipe.settings import Settings
from stockpipe.warehouse.connect import connect_warehouse
from stockpipe.warehouse.loader import run_load
from stockpipe.warehouse.state import state_path
from tests.fixtures.warehouse import FakesnowServer, settings_for
from tests.helpers_silver import (
    STOCK_PRICES_SCHEMA,
    SilverDataset,
    make_bars,
    write_old_layout_partition,
    write_silver,
)

pytestmark = pytest.mark.integration

KEY_COLUMNS = ("symbol", "interval", "bar_ts", "close", "trade_date")


def _lake(tmp_path: Path) -> SilverDataset:
    """AAPL/MSFT/XOM 1-minute bars on three days, and AAPL/JPM daily bars on the same days."""
    ds = write_silver(tmp_path / "lake", days=3, bars_per_day=4)
    ds.add_daily(make_bars(("AAPL", "JPM"), days=3, interval="1day", seed=3))
    return ds


def raw_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with connect_warehouse(settings) as wh:
        cols = ", ".join(wh.ident(c) for c in KEY_COLUMNS)
        rows = wh.query(f"select {cols} from {wh.qualified('stock_prices')}")
    return sorted((r[0], r[1], _utc(r[2]), float(r[3]), _date(r[4])) for r in rows)


def _utc(ts: Any) -> str:
    """A timestamp as UTC ISO text (a naive one is UTC already)."""
    return (ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _date(d: Any) -> date:
    return d if isinstance(d, date) else date.fromisoformat(str(d))


def expected(table: pa.Table) -> list[tuple[Any, ...]]:
    rows = table.select(list(KEY_COLUMNS)).to_pylist()
    return sorted((r["symbol"], r["interval"], _utc(r["bar_ts"]), r["close"], r["trade_date"]) for r in rows)


def _daily(table: pa.Table) -> pa.Table:
    return table.filter(pc.equal(table.column("interval"), "1day"))


def _history(settings: Settings) -> list[tuple[str, int]]:
    with connect_warehouse(settings) as wh:
        rows = wh.query(
            f"select partition_key, rows from {wh.qualified('load_history')} "
            f"where table_name = 'stock_prices' order by loaded_at desc, partition_key"
        )
    return [(str(r[0]), int(r[1])) for r in rows]


RawFn = Callable[[Settings], list[tuple[Any, ...]]]


def _check_reloads(ds: SilverDataset, settings: Settings, raw: RawFn) -> None:
    first = run_load(settings)
    assert first.rows_loaded == ds.stock_prices.num_rows
    assert raw(settings) == expected(ds.stock_prices)
    assert ("trade_month=2024-03", 6) in _history(settings)

    # an intraday day rewritten (one bar less, one close changed): the daily bars of that day stay
    d0 = ds.trade_dates[0]
    part = ds.partition(d0).slice(1)
    closes = part.column("close").to_pylist()
    closes[0] += 1.0
    ds.replace_partition(d0, part.set_column(part.schema.get_field_index("close"), "close", pa.array(closes)))
    again = run_load(settings)
    assert again.partitions_loaded == 1
    assert again.rows_loaded == part.num_rows
    assert raw(settings) == expected(ds.stock_prices)

    # a late daily correction: only its month is reloaded; the intraday rows of its days stay
    daily = _daily(ds.stock_prices)
    fixed = daily.set_column(
        daily.schema.get_field_index("close"), "close", pc.add(daily.column("close"), pa.scalar(0.5))
    )
    ds.add_daily(fixed)
    monthly = run_load(settings)
    assert (monthly.partitions_loaded, monthly.rows_loaded) == (1, daily.num_rows)
    assert raw(settings) == expected(ds.stock_prices)
    assert _history(settings)[0] == ("trade_month=2024-03", daily.num_rows)

    # an intraday day removed from silver: its intraday rows go, its daily rows stay
    d1 = ds.trade_dates[1]
    ds.remove_partition(d1)
    removed = run_load(settings)
    assert removed.rows_loaded == 0
    assert raw(settings) == expected(ds.stock_prices)
    assert sum(1 for r in raw(settings) if r[4] == d1 and r[1] == "1day") == 2


def test_intraday_and_daily_reloads_keep_each_others_rows_duckdb(tmp_path: Path) -> None:
    ds = _lake(tmp_path)
    settings = settings_for(ds.lake_uri, tmp_path / "data")
    _check_reloads(ds, settings, raw_rows)
    # the load state keeps the two datasets apart (an old state's "stock_prices" key stays valid)
    doc = json.loads(state_path(settings.state_dir).read_text())
    (tables,) = doc["targets"].values()
    assert all(k.startswith("trade_date=") for k in tables["stock_prices"])
    assert list(tables["stock_prices_daily"]) == ["trade_month=2024-03"]


def test_daily_bars_left_in_a_day_folder_are_never_loaded_twice(tmp_path: Path) -> None:
    """Silver from before the daily dataset (daily bars inside ``trade_date=D``) next to the same
    bars in their month: the day folder's daily rows are not stock_prices' to load."""
    ds = _lake(tmp_path)
    settings = settings_for(ds.lake_uri, tmp_path / "data")
    run_load(settings)
    d2 = ds.trade_dates[2]
    daily_d2 = _daily(ds.stock_prices).filter(pc.equal(_daily(ds.stock_prices).column("trade_date"), d2))
    assert daily_d2.num_rows == 2
    write_old_layout_partition(
        ds.lake_dir, d2, pa.concat_tables([ds.partition(d2), daily_d2]).cast(STOCK_PRICES_SCHEMA)
    )
    result = run_load(settings)
    assert (result.partitions_loaded, result.rows_loaded) == (1, ds.partition(d2).num_rows)
    assert raw_rows(settings) == expected(ds.stock_prices)


@pytest.mark.slow
def test_intraday_and_daily_reloads_keep_each_others_rows_snowflake(
    fakesnow_server: FakesnowServer, tmp_path: Path
) -> None:
    ds = _lake(tmp_path)
    sf = fakesnow_server.snowflake("DAILY")
    settings = settings_for(
        ds.lake_uri, tmp_path / "data", warehouse={"kind": "snowflake"}, snowflake=sf.model_dump()
    )
    _check_reloads(ds, settings, raw_rows)
    with connect_warehouse(settings) as wh:
        leftovers = wh.existing_tables(wh.raw_schema)
    assert not [t for t in leftovers if t.endswith("__load")], "no staging table is left"
