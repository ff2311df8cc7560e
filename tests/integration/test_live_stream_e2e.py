"""Websocket server -> ``stockpipe stream --source finnhub`` -> gold.fact_stock equals a pandas resample.

The loopback server speaks the Finnhub protocol (token on the upgrade, subscribe, batched trade
messages); the trades are random, out of order by up to a second. Gold must hold exactly the bars
a bare pandas ``resample().ohlc()`` computes from the same trades: 0 mismatches, no duplicates,
also after the stream is killed with ``kill -9`` mid-minute and restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import stockpipe_env, stop_embedded_broker
from tests.helpers_stream_e2e import (
    bars_out,
    check_gold,
    feed_status,
    start_stream,
    state,
    stop_stream,
    topic_trades,
    wait_for,
)
from tests.live_helpers import pandas_bars, random_trades
from tests.live_servers import FinnhubServer, Hold, Sleep, Step, finnhub_trade_messages

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TOKEN = "fh-e2e-token"
SYMBOLS = ("AAPL", "MSFT", "NVDA")


def _trades() -> list[Trade]:
    return random_trades(SYMBOLS, START, seconds=240, per_second=10, seed=11, jitter=1.0)


def _paced(trades: list[Trade]) -> list[Step]:
    steps: list[Step] = []
    for step in finnhub_trade_messages(trades, batch=40):
        steps += [step, Sleep(0.05)]
    return [*steps, Hold()]


def _env(data_dir: Path, url: str, spark: dict[str, str], quiet: float = 3) -> dict[str, str]:
    return stockpipe_env(
        data_dir,
        **spark,
        STOCKPIPE_FINNHUB_URL=url,
        STOCKPIPE_FINNHUB_API_KEY=TOKEN,
        STOCKPIPE_LIVE_QUIET_TIMEOUT_SECONDS=str(quiet),
    )


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_stream(env, log, "finnhub", SYMBOLS)


def _feed_trades(data_dir: Path) -> int:
    return int(feed_status(data_dir, "finnhub").get("extra", {}).get("trades", 0))


def _all_in(data_dir: Path, expected: int) -> Callable[[], bool]:
    """The aggregator emitted every bar and a stream cycle consumed all that was produced."""

    def done() -> bool:
        cycle = state(data_dir, "last_stream.json")
        return bars_out(data_dir) >= expected and cycle.get("consumed", -1) >= cycle.get("produced", 0) > 0

    return done


def test_finnhub_stream_to_gold_equals_pandas(tmp_path: Path, warm_spark_env: dict[str, str]) -> None:
    trades = _trades()
    expected = len(pandas_bars(trades))
    data_dir = tmp_path / "live"
    with FinnhubServer(scripts=[_paced(trades)], token=TOKEN, subscribe_wait=len(SYMBOLS)) as server:
        env = _env(data_dir, server.url, warm_spark_env)
        log = tmp_path / "stream.log"
        proc = _start(env, log)
        try:
            wait_for(proc, log, _all_in(data_dir, expected), timeout=600)
            stop_stream(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    check_gold(data_dir / "warehouse.duckdb", pandas_bars(trades))


def test_kill_9_mid_minute_and_restart_still_equals_pandas(
    tmp_path: Path, warm_spark_env: dict[str, str]
) -> None:
    trades = _trades()
    expected = len(pandas_bars(trades))
    half = len(trades) // 2  # about two minutes in: the third minute's windows are open
    data_dir = tmp_path / "live-kill"
    scripts = [_paced(trades[:half]), _paced(trades[half:]), [Hold()]]
    with FinnhubServer(scripts=scripts, token=TOKEN, subscribe_wait=len(SYMBOLS)) as server:
        # the third minute stays open until the kill
        env = _env(data_dir, server.url, warm_spark_env, quiet=10)
        db = data_dir / "warehouse.duckdb"
        log = tmp_path / "killed.log"
        proc = _start(env, log)
        try:
            # the first half is in the topic (a socket cannot be replayed: what a killed process had
            # read but not flushed is gone) and the first minute's bars are out; minute 3 is open
            wait_for(proc, log, lambda: _feed_trades(data_dir) >= half and bars_out(data_dir) >= 3, 600)
            assert state(data_dir, "live/status-aggregator.json")["extra"]["open_windows"] > 0
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            log2 = tmp_path / "restart.log"
            proc = _start(env, log2)
            wait_for(proc, log2, _all_in(data_dir, expected), timeout=600)
            stop_stream(proc, log2)
            raw = topic_trades(data_dir)
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    assert len(raw) == len(trades)  # the raw trades once each: nothing lost, nothing twice
    check_gold(db, pandas_bars(trades))
