"""Alpaca websocket server -> ``stockpipe stream --source alpaca`` -> gold.fact_stock, 0 mismatches.

Two modes of the Alpaca market-data protocol, each against the loopback server in
``tests/live_servers.py`` (connected -> auth -> subscribe acknowledgements, batched JSON arrays):

* **bars** (the default): Alpaca's own minute bars (``b``) and their corrections (``updatedBars``,
  ``u``) go straight to the bars topic; gold must hold the newest version of every bar. The
  stream is killed with ``kill -9`` after the first half and restarted; a correction of a bar sent
  before the kill arrives after the restart and must still win. No bar is lost or duplicated.
* **trades** (``STOCKPIPE_ALPACA_TRADES=true``): trades with ids, out of order; the server drops
  the connection mid-minute and repeats the last 60 trades after the reconnect (same ids). Gold
  must equal a pandas resample of the trades counted once; the raw trades topic holds each once.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import stockpipe_env, stop_embedded_broker
from tests.helpers_stream_e2e import (
    bars_out,
    check_gold,
    committed,
    feed_status,
    start_stream,
    stop_stream,
    topic_count,
    topic_trades,
    wait_for,
)
from tests.live_helpers import pandas_bars, random_trades
from tests.live_servers import AlpacaServer, Close, Hold, Send, Sleep, Step, alpaca_trade_messages

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "NVDA")
KEY, SECRET = "alpaca-e2e-key", "alpaca-e2e-secret"
MINUTES = 6


def _env(data_dir: Path, url: str, spark: dict[str, str], **extra: str) -> dict[str, str]:
    return stockpipe_env(
        data_dir,
        STOCKPIPE_ALPACA_DATA_URL=url,
        STOCKPIPE_ALPACA_API_KEY_ID=KEY,
        STOCKPIPE_ALPACA_API_SECRET_KEY=SECRET,
        STOCKPIPE_LIVE_RECONNECT_INITIAL_SECONDS="0.2",
        **spark,
        **extra,
    )


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_stream(env, log, "alpaca", SYMBOLS)


# ---- bars + updatedBars ----
def _bar(kind: str, symbol: str, minute: int, version: int) -> dict[str, Any]:
    base = 100.0 + 10 * SYMBOLS.index(symbol) + minute * 0.25
    close = base + 0.1 + 0.05 * version
    t = (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    return {"T": kind, "S": symbol, "o": base, "h": max(base, close) + 0.2, "l": base - 0.3, "c": close,
            "v": 1000 + 7 * minute + version * 11, "t": t, "n": 12, "vw": base}  # fmt: skip


def _bar_messages() -> tuple[list[list[dict[str, Any]]], pd.DataFrame]:
    """One message per minute: that minute's bars plus corrections of the minute before (two
    versions for AAPL); and the newest version of each bar, indexed like ``pandas_bars``."""
    messages: list[list[dict[str, Any]]] = []
    newest: dict[tuple[str, int], dict[str, Any]] = {}
    for minute in range(MINUTES):
        msg = [_bar("b", s, minute, 0) for s in SYMBOLS]
        if minute:
            msg += [_bar("u", s, minute - 1, 1) for s in SYMBOLS[:2]] + [_bar("u", "AAPL", minute - 1, 2)]
        messages.append(msg)
        for m in msg:
            newest[(m["S"], int((datetime.fromisoformat(m["t"]) - START).total_seconds() // 60))] = m
    rows = [
        {"symbol": s, "bar_ts": pd.Timestamp(START + timedelta(minutes=m)).tz_convert("America/New_York"),
         "open": b["o"], "high": b["h"], "low": b["l"], "close": b["c"], "volume": b["v"]}
        for (s, m), b in newest.items()
    ]  # fmt: skip
    return messages, pd.DataFrame(rows).set_index(["symbol", "bar_ts"]).sort_index()


def _script(messages: list[list[dict[str, Any]]]) -> list[Step]:
    steps: list[Step] = []
    for msg in messages:
        steps += [Send(msg), Sleep(0.3)]
    return [*steps, Hold()]


def _in_topic(data_dir: Path) -> int:
    """Bar versions in the bars topic (acknowledged by the broker: they survive a kill -9)."""
    return topic_count(data_dir, "stock-prices")


def test_alpaca_bars_and_updated_bars_kill_9_restart_to_gold(
    tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    messages, expected = _bar_messages()
    half = MINUTES // 2
    first = sum(len(m) for m in messages[:half])
    total = sum(len(m) for m in messages)
    data_dir = tmp_path / "alpaca-bars"
    scripts = [_script(messages[:half]), _script(messages[half:]), [Hold()]]
    with AlpacaServer(scripts=scripts, key=KEY, secret=SECRET) as server:
        env = _env(data_dir, server.url, warm_spark_env)
        db = data_dir / "warehouse.duckdb"
        log = tmp_path / "killed.log"
        proc = _start(env, log)
        try:
            # the first half is in the bars topic
            wait_for(proc, log, lambda: _in_topic(data_dir) >= first, 600)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            log2 = tmp_path / "restart.log"
            proc = _start(env, log2)
            wait_for(proc, log2, lambda: _in_topic(data_dir) >= total and committed(data_dir) >= total, 600)
            stop_stream(proc, log2)
            assert topic_count(data_dir, "stock-prices") == total  # every version once: nothing lost
            assert topic_count(data_dir, "stock-trades") == 0  # bars mode: no trades subscribed
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    subscribe = [m for m in server.received if m.get("action") == "subscribe"]
    assert len(subscribe) == 2
    assert all(set(m["bars"]) == set(m["updatedBars"]) == set(SYMBOLS) for m in subscribe)
    assert all("trades" not in m for m in subscribe)
    check_gold(db, expected)


# ---- trades (aggregated by stockpipe) ----
def _trades() -> list[Trade]:
    return random_trades(SYMBOLS, START, seconds=240, per_second=10, seed=13, jitter=1.0)


def _paced(trades: list[Trade], ids: list[int]) -> list[Step]:
    steps: list[Step] = []
    for step in alpaca_trade_messages(trades, ids, batch=40):
        steps += [step, Sleep(0.05)]
    return steps


def _all_in(data_dir: Path, expected: int) -> Callable[[], bool]:
    def done() -> bool:
        if bars_out(data_dir) < expected:
            return False
        return committed(data_dir) >= _in_topic(data_dir) > 0

    return done


def test_alpaca_trades_with_a_reconnect_repeating_trades_to_gold_equals_pandas(
    tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    trades = _trades()
    ids = list(range(1, len(trades) + 1))
    cut, overlap = len(trades) // 2 + 17, 60  # mid-minute
    scripts = [
        [*_paced(trades[:cut], ids[:cut]), Close()],
        [*_paced(trades[cut - overlap :], ids[cut - overlap :]), Hold()],  # repeats the last 60
    ]
    expected = pandas_bars(trades)
    data_dir = tmp_path / "alpaca-trades"
    with AlpacaServer(scripts=scripts, key=KEY, secret=SECRET) as server:
        env = _env(
            data_dir,
            server.url,
            warm_spark_env,
            STOCKPIPE_ALPACA_TRADES="true",
            STOCKPIPE_LIVE_QUIET_TIMEOUT_SECONDS="3",
        )
        log = tmp_path / "stream.log"
        proc = _start(env, log)
        try:
            wait_for(proc, log, _all_in(data_dir, len(expected)), timeout=600)
            status = feed_status(data_dir, "alpaca")
            stop_stream(proc, log)
            raw = topic_trades(data_dir)
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    assert server.connections == 2
    assert status["reconnects"] == 1
    assert status["extra"]["duplicates"] == overlap  # dropped by provider trade id
    assert sorted(t.trade_id or "" for t in raw) == sorted(f"V:{i}" for i in ids)  # each trade once
    check_gold(data_dir / "warehouse.duckdb", expected)
