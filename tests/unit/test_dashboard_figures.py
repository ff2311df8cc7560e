"""Pure figure builders: trace types, data lengths, SMA lines, titles, empty states."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockpipe.dashboard import figures


def _daily(n: int, with_sma: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    close = 100 + rng.normal(0, 1, n).cumsum()
    frame = pd.DataFrame(
        {
            "trade_date": pd.bdate_range("2024-01-01", periods=n),
            "open": close + 0.5,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "volume": rng.integers(1000, 2000, n),
        }
    )
    if with_sma:
        frame["sma_20"] = frame["close"].rolling(20, min_periods=1).mean()
        frame["sma_50"] = np.nan  # not computed: no line
    return frame


def test_candlestick_has_candles_sma_and_volume_on_two_rows() -> None:
    daily = _daily(30)
    fig = figures.candlestick_figure(daily, "AAPL")
    types = [t.type for t in fig.data]
    assert types == ["candlestick", "scatter", "bar"]
    candle, sma, volume = fig.data
    assert len(candle.x) == 30
    assert list(candle.close) == list(daily["close"])
    assert sma.name == "SMA 20"
    assert list(volume.y) == list(daily["volume"])
    assert volume.yaxis == "y2"
    assert candle.yaxis == "y"
    up = [c >= o for o, c in zip(daily["open"], daily["close"], strict=True)]
    assert list(volume.marker.color) == [figures.UP if u else figures.DOWN for u in up]
    assert "AAPL" in fig.layout.title.text
    assert fig.layout.xaxis.rangeslider.visible is False


def test_candlestick_without_sma_columns_and_empty() -> None:
    fig = figures.candlestick_figure(_daily(5, with_sma=False), "X")
    assert [t.type for t in fig.data] == ["candlestick", "bar"]
    empty = figures.candlestick_figure(_daily(0), "X")
    assert len(empty.data) == 0
    assert "No daily bars" in empty.layout.annotations[0].text


def test_intraday_uses_local_time_axis() -> None:
    local = pd.date_range("2024-03-11 09:30", periods=5, freq="1min")
    bars = pd.DataFrame(
        {
            "local_ts": local,
            "open": [1.0] * 5,
            "high": [2.0] * 5,
            "low": [0.5] * 5,
            "close": [1.5] * 5,
            "volume": [7] * 5,
        }
    )
    fig = figures.intraday_figure(bars, "MSFT", "2024-03-11")
    assert [t.type for t in fig.data] == ["candlestick", "bar"]
    assert list(pd.to_datetime(fig.data[0].x)) == list(local)
    assert fig.layout.title.text == figures.intraday_title("MSFT", "2024-03-11")
    assert len(figures.intraday_figure(bars.iloc[:0], "MSFT", "2024-03-11").data) == 0


def test_sector_figure_percent_text_and_colors() -> None:
    sectors = pd.DataFrame(
        {
            "sector": ["TECH", "ENERGY"],
            "trade_date": pd.to_datetime(["2024-01-02", "2024-01-02"]),
            "symbols": [2, 1],
            "avg_return": [0.0123, -0.02],
            "total_volume": [10, 20],
        }
    )
    fig = figures.sector_figure(sectors)
    bar = fig.data[0]
    assert list(bar.y) == ["ENERGY", "TECH"]  # ascending, best on top
    assert list(bar.text) == ["-2.00%", "+1.23%"]
    assert list(bar.marker.color) == [figures.DOWN, figures.UP]
    assert "2024-01-02" in fig.layout.title.text


def test_sector_trend_compounds_returns() -> None:
    sectors = pd.DataFrame(
        {
            "sector": ["T", "T", "T"],
            "trade_date": pd.bdate_range("2024-01-01", periods=3),
            "avg_return": [None, 0.1, 0.1],
        }
    )
    fig = figures.sector_trend_figure(sectors)
    assert np.allclose(list(fig.data[0].y), [0.0, 10.0, 21.0])


def test_freshness_figure_has_three_lines() -> None:
    stream = pd.DataFrame(
        {
            "cycle_at": pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC"),
            "p50_seconds": [1.0, 2.0, 3.0],
            "p95_seconds": [2.0, 3.0, 4.0],
            "max_seconds": [3.0, 4.0, 5.0],
        }
    )
    fig = figures.freshness_figure(stream)
    assert [t.name for t in fig.data] == ["p50", "p95", "max"]
    assert list(fig.data[1].y) == [2.0, 3.0, 4.0]
