"""``stockpipe produce --source finnhub|alpaca --follow`` as a process against loopback servers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from stockpipe.settings import Settings
from stockpipe.sources.live.trades import Trade
from tests.e2e_helpers import REPO_ROOT
from tests.helpers_live import read_topic
from tests.live_helpers import random_trades
from tests.live_servers import AlpacaServer, FinnhubServer, finnhub_trade_messages

pytestmark = pytest.mark.integration
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TOKEN = "fh-cli-token-424242"


def _env(kafka_env: dict[str, str], settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **kafka_env,
        "STOCKPIPE_KAFKA_TRADES_TOPIC": f"{settings.kafka.topic}-trades",
        "STOCKPIPE_LIVE_RECONNECT_INITIAL_SECONDS": "0.05",
        "COLUMNS": "200",
        **extra,
    }


def _produce(source: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "stockpipe",
        "produce",
        "--source",
        source,
        "--follow",
        "--symbols",
        "AAPL,MSFT",
    ]
    return subprocess.run(args, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=timeout)


def test_refused_finnhub_token_exits_non_zero_with_one_sentence(
    kafka_env: dict[str, str], kafka_settings: Settings
) -> None:
    with FinnhubServer(token="the-right-token") as server:
        env = _env(
            kafka_env, kafka_settings, STOCKPIPE_FINNHUB_URL=server.url, STOCKPIPE_FINNHUB_API_KEY=TOKEN
        )
        done = _produce("finnhub", env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Finnhub refused the credentials (HTTP 401)" in output
    assert "Traceback" not in output
    assert TOKEN not in output
    assert server.attempts == 1  # no retry storm


def test_alpaca_connection_limit_exits_non_zero_with_one_sentence(
    kafka_env: dict[str, str], kafka_settings: Settings
) -> None:
    with AlpacaServer(connection_limit=True) as server:
        env = _env(
            kafka_env,
            kafka_settings,
            STOCKPIPE_ALPACA_DATA_URL=server.url,
            STOCKPIPE_ALPACA_API_KEY_ID=server.key,
            STOCKPIPE_ALPACA_API_SECRET_KEY=server.secret,
        )
        done = _produce("alpaca", env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "connection limit exceeded" in output
    assert "Traceback" not in output
    assert server.secret not in output
    assert server.attempts == 1


def test_finnhub_trades_reach_the_trades_topic_and_sigterm_exits_cleanly(
    kafka_env: dict[str, str], kafka_settings: Settings
) -> None:
    trades = random_trades(["AAPL", "MSFT"], T0, 60, 5, seed=31)
    with FinnhubServer(scripts=[finnhub_trade_messages(trades)], token=TOKEN, subscribe_wait=2) as server:
        env = _env(
            kafka_env, kafka_settings, STOCKPIPE_FINNHUB_URL=server.url, STOCKPIPE_FINNHUB_API_KEY=TOKEN
        )
        args = [
            sys.executable,
            "-m",
            "stockpipe",
            "produce",
            "--source",
            "finnhub",
            "--follow",
            "--symbols",
            "AAPL,MSFT",
        ]
        proc = subprocess.Popen(
            args, env=env, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        bootstrap, topic = str(kafka_settings.kafka.bootstrap_servers), f"{kafka_settings.kafka.topic}-trades"
        deadline = time.monotonic() + 90
        seen: list[tuple[bytes | None, bytes | None]] = []
        while time.monotonic() < deadline and proc.poll() is None:
            seen = read_topic(bootstrap, topic, timeout=10) if server.connections else []
            if len(seen) >= len(trades):
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")
    got = [Trade.from_json_bytes(v or b"") for _, v in read_topic(bootstrap, topic, timeout=10)]
    assert len(got) == len(trades)  # all there, none twice
    assert sorted((t.symbol, t.ts, t.size) for t in got) == sorted((t.symbol, t.ts, t.size) for t in trades)
    assert TOKEN.encode() not in out
