"""Pure reporting helpers: data shaping, formatting, ranges, server command and environment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from stockpipe.dashboard.app import default_range, normalize_range
from stockpipe.dashboard.export import star_tables
from stockpipe.dashboard.health import Health, format_age, rows_display, summarize_dbt, to_utc
from stockpipe.dashboard.queries import (
    Catalog,
    _fill_companies,
    latest_sector_day,
    prepare_intraday,
    rank_movers,
    with_moving_averages,
)
from stockpipe.dashboard.report import slug, table_html
from stockpipe.dashboard.server import settings_env, streamlit_command
from stockpipe.settings import Settings


def test_moving_averages_are_null_until_the_window_is_full() -> None:
    closes = [float(i) for i in range(1, 61)]
    daily = pd.DataFrame({"trade_date": pd.date_range("2024-01-01", periods=60), "close": closes})
    out = with_moving_averages(daily.iloc[::-1])  # unsorted input is sorted first
    assert out["sma_20"].iloc[:19].isna().all()
    assert out["sma_20"].iloc[19] == pytest.approx(sum(closes[:20]) / 20)
    assert out["sma_20"].iloc[59] == pytest.approx(sum(closes[40:60]) / 20)
    assert out["sma_50"].iloc[:49].isna().all()
    assert out["sma_50"].iloc[59] == pytest.approx(sum(closes[10:60]) / 50)


def test_prepare_intraday_converts_to_exchange_time_and_keeps_finest_interval() -> None:
    ts = pd.date_range("2024-03-11 13:30", periods=3, freq="1min", tz="UTC")  # 09:30 EDT
    rows = pd.DataFrame(
        {
            "bar_ts": [*ts, pd.Timestamp("2024-03-11 04:00", tz="UTC")],
            "interval": ["1min", "1min", "1min", "1day"],
            "open_price": [1.0, 2.0, 3.0, 9.0],
            "high_price": [1.5, 2.5, 3.5, 9.5],
            "low_price": [0.5, 1.5, 2.5, 8.5],
            "close_price": [1.2, 2.2, 3.2, 9.2],
            "volume": [10, 20, 30, 60],
        }
    )
    out = prepare_intraday(rows.iloc[::-1])
    assert out["interval"].unique().tolist() == ["1min"]
    assert out["close"].tolist() == [1.2, 2.2, 3.2]
    assert out["local_ts"].iloc[0] == pd.Timestamp("2024-03-11 09:30")
    assert str(out["bar_ts"].dt.tz) == "UTC"


def test_prepare_intraday_prefers_the_finest_interval_minutes() -> None:
    ts = pd.date_range("2024-03-11 13:30", periods=6, freq="1min", tz="UTC")
    rows = pd.DataFrame(
        {
            "bar_ts": ts,
            "interval": ["5min"] * 4 + ["1min"] * 2,
            "interval_minutes": [5] * 4 + [1] * 2,
            "open_price": 1.0,
            "high_price": 1.0,
            "low_price": 1.0,
            "close_price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "volume": 1,
        }
    )
    out = prepare_intraday(rows)
    assert out["interval"].tolist() == ["1min", "1min"]
    assert out["close"].tolist() == [5.0, 6.0]


def test_prepare_intraday_treats_naive_timestamps_as_utc_and_daily_only_as_empty() -> None:
    naive = pd.DataFrame(
        {
            "bar_ts": [pd.Timestamp("2024-01-02 15:00")],
            "open_price": [1.0],
            "high_price": [1.0],
            "low_price": [1.0],
            "close_price": [1.0],
            "volume": [1],
        }
    )
    assert prepare_intraday(naive)["local_ts"].iloc[0] == pd.Timestamp("2024-01-02 10:00")  # EST
    daily_only = naive.assign(interval="1day")
    assert prepare_intraday(daily_only).empty


def test_rank_movers_splits_by_sign_and_limits() -> None:
    returns = pd.DataFrame({"symbol": list("ABCDEF"), "daily_return": [0.03, -0.01, 0.01, None, -0.05, 0.02]})
    gainers, losers = rank_movers(returns, n=2)
    assert gainers["symbol"].tolist() == ["A", "F"]
    assert losers["symbol"].tolist() == ["E", "B"]


def test_latest_sector_day_sorts_best_first() -> None:
    frame = pd.DataFrame(
        {
            "sector": ["X", "Y", "X", "Y"],
            "trade_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"]),
            "avg_return": [0.5, 0.4, -0.1, 0.2],
        }
    )
    out = latest_sector_day(frame)
    assert out["sector"].tolist() == ["Y", "X"]
    assert set(out["trade_date"]) == {pd.Timestamp("2024-01-02")}


def test_catalog_defaults_names_and_sectors_and_filters() -> None:
    raw = pd.DataFrame(
        {
            "symbol": ["MSFT", "AAPL", "ZZZ"],
            "name": ["Microsoft", None, ""],
            "sector": ["TECH", "TECH", None],
            "first_day": [date(2024, 1, 2)] * 3,
            "last_day": [date(2024, 1, 5)] * 3,
        }
    )
    catalog = Catalog(_fill_companies(raw), date(2024, 1, 2), date(2024, 1, 5))
    assert catalog.symbols == ["AAPL", "MSFT", "ZZZ"]
    assert catalog.sectors == ["TECH", "Unknown"]
    assert catalog.symbols_in(["Unknown"]) == ["ZZZ"]
    assert catalog.symbols_in([]) == catalog.symbols
    assert catalog.label("MSFT") == "MSFT — Microsoft"
    assert catalog.label("AAPL") == "AAPL"


def test_date_ranges() -> None:
    assert default_range(date(2024, 1, 1), date(2024, 12, 31), days=30) == (
        date(2024, 12, 1),
        date(2024, 12, 31),
    )
    assert default_range(date(2024, 12, 20), date(2024, 12, 31)) == (date(2024, 12, 20), date(2024, 12, 31))
    fallback = (date(2024, 1, 1), date(2024, 1, 31))
    assert normalize_range((), fallback) == fallback
    assert normalize_range((date(2024, 1, 5),), fallback) == (date(2024, 1, 5), date(2024, 1, 5))
    assert normalize_range((date(2024, 1, 9), date(2024, 1, 5)), fallback) == (
        date(2024, 1, 5),
        date(2024, 1, 9),
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (4.4, "4 s"),
        (303, "5 min 3 s"),
        (3 * 3600 + 720, "3 h 12 min"),
        (86400 * 2 + 7200, "2 d 2 h"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def _health(**kw: object) -> Health:
    base: dict[str, object] = {
        "checked_at": datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        "last_load_at": None,
        "latest_bar_ts": datetime(2024, 6, 1, 11, 59, 30, tzinfo=UTC),
        "layer_rows": pd.DataFrame(
            {
                "layer": ["raw", "gold"],
                "table": ["raw.stock_prices", "gold.fact_stock"],
                "rows": [1234567, None],
            }
        ).astype({"rows": "Int64"}),
        "quarantine": pd.DataFrame({"rule": ["a", "b"], "records": [2, 3]}),
        "dbt": pd.DataFrame(
            {
                "run_at": [datetime(2024, 6, 1, tzinfo=UTC)] * 3,
                "node": ["m1", "t1", "t2"],
                "resource_type": ["model", "test", "test"],
                "status": ["success", "fail", "pass"],
            }
        ),
        "stream": None,
    }
    base.update(kw)
    return Health(**base)  # type: ignore[arg-type]


def test_health_derived_values() -> None:
    health = _health()
    assert health.freshness_seconds == 30.0
    assert health.quarantined_total == 5
    assert health.dbt_failures["node"].tolist() == ["t1"]
    assert health.rows_by_table == {"raw.stock_prices": 1234567, "gold.fact_stock": None}
    assert rows_display(health)["rows"].tolist() == ["1,234,567", "missing"]
    summary = summarize_dbt(health.dbt)
    assert summary.to_dict("records") == [
        {"resource_type": "model", "status": "success", "nodes": 1},
        {"resource_type": "test", "status": "fail", "nodes": 1},
        {"resource_type": "test", "status": "pass", "nodes": 1},
    ]
    assert _health(latest_bar_ts=None).freshness_seconds is None


def test_to_utc_handles_naive_aware_and_missing() -> None:
    assert to_utc(None) is None
    assert to_utc(pd.NaT) is None
    assert to_utc(pd.Timestamp("2024-01-01 12:00")) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    aware = pd.Timestamp("2024-01-01 07:00", tz="America/New_York")
    assert to_utc(aware) == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_star_tables_keeps_facts_dims_marts_only() -> None:
    names = {"fact_stock", "dim_date", "mart_x", "stg_prices", "dim_companies", "my_view"}
    assert star_tables(names) == ["dim_companies", "dim_date", "fact_stock", "mart_x"]


def test_report_html_helpers_escape_and_slug() -> None:
    assert slug("BRK.B") == "BRK_B"
    frame = pd.DataFrame({"name": ["<script>alert(1)</script>"], "v": [None]})
    text = table_html(frame, "t1")
    assert 'id="t1"' in text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "—" in text


def test_streamlit_command_is_headless_loopback_without_telemetry() -> None:
    cmd = streamlit_command("127.0.0.1", 8599, python="py")
    assert cmd[:4] == ["py", "-m", "streamlit", "run"]
    assert Path(cmd[4]).name == "app.py"
    assert Path(cmd[4]).exists()
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.headless"] == "true"
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.port"] == "8599"
    assert flags["--browser.gatherUsageStats"] == "false"


def test_settings_env_rebuilds_the_reporting_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(
        data_dir=tmp_path / "d",
        warehouse={"kind": "snowflake", "gold_schema": "gold2"},
        snowflake={"account": "acct-1", "user": "me", "password": SecretStr("pw-sentinel"), "role": "R1"},
        dashboard={"refresh_seconds": 7, "port": 9000},
        _env_file=None,
    )
    env = settings_env(original)
    assert env["STOCKPIPE_SNOWFLAKE_PASSWORD"] == "pw-sentinel"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rebuilt = Settings(_env_file=None)
    assert rebuilt.data_path == original.data_path
    assert rebuilt.duckdb_path == original.duckdb_path
    assert rebuilt.warehouse == original.warehouse
    assert rebuilt.snowflake == original.snowflake
    assert rebuilt.dashboard == original.dashboard
