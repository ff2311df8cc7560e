"""Trade generators and an independent pandas reference for the live-data tests."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pandas as pd

from stockpipe.contract import Bar
from stockpipe.sources.live.trades import Trade

RECEIVED = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def trade(
    symbol: str,
    ts: datetime,
    price: float,
    size: float = 100,
    *,
    trade_id: str | None = None,
    conditions: tuple[str, ...] = (),
    provider: str = "finnhub",
) -> Trade:
    return Trade(
        symbol, float(price), float(size), ts.astimezone(UTC), trade_id, conditions, provider, RECEIVED
    )


def random_trades(
    symbols: Iterable[str],
    start: datetime,
    seconds: float,
    per_second: float,
    *,
    seed: int = 7,
    jitter: float = 0.0,
) -> list[Trade]:
    """Trades in arrival order: event times uniform over [start, start+seconds), arrival
    shuffled by up to ``jitter`` seconds (out of order, never more than ``jitter`` behind)."""
    rng = random.Random(seed)
    syms = list(symbols)
    n = int(seconds * per_second)
    out: list[tuple[float, Trade]] = []
    prices = {s: 100.0 + 10 * i for i, s in enumerate(syms)}
    for _ in range(n):
        s = rng.choice(syms)
        offset = rng.random() * seconds
        ms = round(offset * 1000)
        prices[s] = max(1.0, round(prices[s] + rng.gauss(0, 0.05), 2))
        t = trade(s, start + timedelta(milliseconds=ms), prices[s], rng.randint(1, 500))
        out.append((ms / 1000 + rng.random() * jitter, t))
    # event-time order first (the price walk), then arrival order with the jitter
    out.sort(key=lambda p: p[0])
    return [t for _, t in out]


def pandas_bars(trades: list[Trade], interval: str = "1min", tz: str = "America/New_York") -> pd.DataFrame:
    """OHLCV per (symbol, bar_ts) with a bare pandas ``resample().ohlc()``, the reference."""
    df = pd.DataFrame(
        {
            "symbol": [t.symbol for t in trades],
            "ts": pd.to_datetime([t.ts for t in trades], utc=True),
            "price": [t.price for t in trades],
            "size": [t.size for t in trades],
        }
    )
    df["ts"] = df["ts"].dt.tz_convert(tz)
    df = df.sort_values("ts", kind="stable").set_index("ts")
    frames = []
    for sym, g in df.groupby("symbol", sort=True):
        r = g["price"].resample(interval).ohlc()
        r["volume"] = g["size"].resample(interval).sum()
        r = r.dropna(subset=["open"])
        r["symbol"] = sym
        frames.append(r)
    out = pd.concat(frames).reset_index().rename(columns={"ts": "bar_ts"})
    out["volume"] = out["volume"].round().astype("int64")
    return out.set_index(["symbol", "bar_ts"]).sort_index()


def bars_frame(bars: Iterable[Bar]) -> pd.DataFrame:
    """Newest version per (symbol, bar_ts), like downstream keeps them."""
    latest: dict[tuple[str, datetime], Bar] = {}
    for b in bars:
        key = (b.symbol, b.bar_ts)
        if key not in latest or b.produced_at > latest[key].produced_at:
            latest[key] = b
    rows = [
        {"symbol": b.symbol, "bar_ts": pd.Timestamp(b.bar_ts).tz_convert("America/New_York"), "open": b.open,
         "high": b.high, "low": b.low, "close": b.close, "volume": b.volume}
        for b in latest.values()
    ]  # fmt: skip
    return pd.DataFrame(rows).set_index(["symbol", "bar_ts"]).sort_index()


def mismatches(ours: pd.DataFrame, ref: pd.DataFrame) -> int:
    """Rows that differ (or exist on one side only)."""
    joined = ours.join(ref, how="outer", lsuffix="_o", rsuffix="_r")
    bad = 0
    for col in ("open", "high", "low", "close", "volume"):
        a, b = joined[f"{col}_o"], joined[f"{col}_r"]
        bad_col = ~((a - b).abs() < 1e-9)
        bad += int(bad_col.sum())
    return bad
