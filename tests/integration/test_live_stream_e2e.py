"""Websocket server -> ``stockpipe stream --source finnhub`` -> gold.fact_stock equals a pandas resample.

The loopback server speaks the Finnhub protocol (token on the upgrade, subscribe, batched trade
messages); the trades are random, out of order by up to a second. Gold must hold exactly the bars
a bare pandas ``resample().ohlc()`` computes from the same trades: 0 mismatches, no duplicates,
also after the stream is killed with ``kill -9`` mid-minute and restarted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import REPO_ROOT, stockpipe_env, stop_embedded_broker
from tests.fixtures.faults import broker_bootstrap
from tests.helpers_live import read_topic
from tests.live_helpers import mismatches, pandas_bars, random_trades
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


def _env(data_dir: Path, url: str, quiet: float = 3) -> dict[str, str]:
    return stockpipe_env(
        data_dir,
        STOCKPIPE_FINNHUB_URL=url,
        STOCKPIPE_FINNHUB_API_KEY=TOKEN,
        STOCKPIPE_LIVE_QUIET_TIMEOUT_SECONDS=str(quiet),
    )


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    args = ["stream", "--source", "finnhub", "--symbols", ",".join(SYMBOLS), "--cycle", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "stockpipe", *args],
        env=env, cwd=str(REPO_ROOT), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _gold(db: Path) -> pd.DataFrame:
    """gold.fact_stock (read only after the stream stopped: a reader would lock out its loads)."""
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute(
            "select symbol, bar_ts, open_price as open, high_price as high, low_price as low, "
            "close_price as close, volume from gold.fact_stock"
        ).df()
    frame["bar_ts"] = pd.to_datetime(frame["bar_ts"], utc=True).dt.tz_convert("America/New_York")
    return frame


def _state(data_dir: Path, name: str) -> dict[str, Any]:
    path = data_dir / "state" / name
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def _wait(proc: subprocess.Popen[bytes], log: Path, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.5)


def _bars_out(data_dir: Path) -> int:
    return int(_state(data_dir, "live/status-aggregator.json").get("bars_emitted", 0))


def _feed_trades(data_dir: Path) -> int:
    return int(_state(data_dir, "live/status-finnhub.json").get("extra", {}).get("trades", 0))


def _trades_topic(data_dir: Path) -> list[Trade]:
    """The raw audit trail: every trade in ``stock-trades`` (read before the broker stops)."""
    records = read_topic(broker_bootstrap(data_dir), "stock-trades")
    return [Trade.from_json_bytes(v or b"") for _, v in records]


def _all_in(data_dir: Path, expected: int) -> Callable[[], bool]:
    """The aggregator emitted every bar and a stream cycle consumed all that was produced."""

    def done() -> bool:
        cycle = _state(data_dir, "last_stream.json")
        return _bars_out(data_dir) >= expected and cycle.get("consumed", -1) >= cycle.get("produced", 0) > 0

    return done


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 0, log.read_text(errors="replace")[-4000:]


def _check(db: Path, trades: list[Trade]) -> None:
    gold = _gold(db)
    assert not gold.duplicated(["symbol", "bar_ts"]).any(), "a bar is duplicated in gold"
    ours = gold.set_index(["symbol", "bar_ts"]).sort_index()
    ref = pandas_bars(trades)
    assert len(ours) == len(ref)
    assert mismatches(ours, ref) == 0


def test_finnhub_stream_to_gold_equals_pandas(tmp_path: Path) -> None:
    trades = _trades()
    expected = len(pandas_bars(trades))
    data_dir = tmp_path / "live"
    with FinnhubServer(scripts=[_paced(trades)], token=TOKEN, subscribe_wait=len(SYMBOLS)) as server:
        env = _env(data_dir, server.url)
        log = tmp_path / "stream.log"
        proc = _start(env, log)
        try:
            _wait(proc, log, _all_in(data_dir, expected), timeout=600)
            _stop(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    _check(data_dir / "warehouse.duckdb", trades)


def test_kill_9_mid_minute_and_restart_still_equals_pandas(tmp_path: Path) -> None:
    trades = _trades()
    expected = len(pandas_bars(trades))
    half = len(trades) // 2  # about two minutes in: the third minute's windows are open
    data_dir = tmp_path / "live-kill"
    scripts = [_paced(trades[:half]), _paced(trades[half:]), [Hold()]]
    with FinnhubServer(scripts=scripts, token=TOKEN, subscribe_wait=len(SYMBOLS)) as server:
        env = _env(data_dir, server.url, quiet=10)  # the third minute stays open until the kill
        db = data_dir / "warehouse.duckdb"
        log = tmp_path / "killed.log"
        proc = _start(env, log)
        try:
            # the first half is in the topic (a socket cannot be replayed: what a killed process had
            # read but not flushed is gone) and the first minute's bars are out; minute 3 is open
            _wait(proc, log, lambda: _feed_trades(data_dir) >= half and _bars_out(data_dir) >= 3, 600)
            assert _state(data_dir, "live/status-aggregator.json")["extra"]["open_windows"] > 0
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            log2 = tmp_path / "restart.log"
            proc = _start(env, log2)
            _wait(proc, log2, _all_in(data_dir, expected), timeout=600)
            _stop(proc, log2)
            raw = _trades_topic(data_dir)
        finally:
            if proc.poll() is None:
                proc.kill()
            stop_embedded_broker(env)
    assert len(raw) == len(trades)  # the raw trades once each: nothing lost, nothing twice
    _check(db, trades)
