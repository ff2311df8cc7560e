"""``feed_runner.run_feed`` against loopback servers and the broker: Finnhub trades -> the trades
topic once each across a reconnect, Alpaca bars and corrections -> the bars topic, status file."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stockpipe.contract import Bar
from stockpipe.settings import Settings
from stockpipe.sources.live.alpaca import AlpacaFeed
from stockpipe.sources.live.feed import FeedOptions
from stockpipe.sources.live.feed_runner import run_feed
from stockpipe.sources.live.finnhub import FinnhubFeed
from stockpipe.sources.live.status import read_live_statuses
from stockpipe.sources.live.trades import Trade
from tests.live_helpers import random_trades
from tests.live_servers import AlpacaServer, Close, FinnhubServer, Send, finnhub_trade_messages

pytestmark = pytest.mark.integration

FAST = FeedOptions(reconnect_initial_seconds=0.02, reconnect_max_seconds=0.2, recv_poll_seconds=0.05)
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TOKEN = "fh-publish-token-5678"


def live_settings(kafka_settings: Settings) -> Settings:
    kafka = kafka_settings.kafka.model_copy(update={"trades_topic": f"{kafka_settings.kafka.topic}-trades"})
    return kafka_settings.model_copy(update={"kafka": kafka})


def read_topic(settings: Settings, topic: str, timeout: float = 30) -> list[tuple[Any, Any, int]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"read-{topic}",
         "enable.partition.eof": True, "enable.auto.commit": False}
    )  # fmt: skip
    parts = [TopicPartition(topic, p, 0) for p in range(settings.kafka.partitions)]
    consumer.assign(parts)
    seen: list[tuple[Any, Any, int]] = []
    eof: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(eof) < len(parts) and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=0.5):
            if m.error():
                eof.add(m.partition())
                continue
            seen.append((m.key(), m.value(), m.partition()))
    consumer.close()
    return seen


def run_until(settings: Settings, feed: Any, done: Any, timeout: float = 30) -> Any:
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()

    def watch() -> None:
        while not stop.is_set():
            if done(feed):
                stop.set()
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    try:
        return run_feed(settings, feed, stop=stop)
    finally:
        timer.cancel()
        stop.set()


def test_finnhub_trades_reach_the_trades_topic_once_each_despite_a_reconnect(
    kafka_settings: Settings,
) -> None:
    settings = live_settings(kafka_settings)
    trades = random_trades(["AAPL", "MSFT", "IBM"], T0, 120, 10, seed=21)
    cut = 500
    scripts = [[*finnhub_trade_messages(trades[:cut]), Close()], finnhub_trade_messages(trades[cut - 100 :])]
    with FinnhubServer(scripts=scripts, token=TOKEN, subscribe_wait=3) as server:
        feed = FinnhubFeed(server.url, TOKEN, ["AAPL", "MSFT", "IBM"], options=FAST)
        result = run_until(settings, feed, lambda f: f.status.trades >= len(trades))
    assert result.trades == len(trades)
    assert feed.status.duplicates == 100
    messages = read_topic(settings, settings.kafka.trades_topic)
    got = [Trade.from_json_bytes(v) for _, v, _ in messages]
    assert len(got) == len(trades)
    assert sorted((t.symbol, t.ts, t.price, t.size) for t in got) == sorted(
        (t.symbol, t.ts, t.price, t.size) for t in trades
    )
    by_symbol: dict[bytes, set[int]] = {}
    for key, _, partition in messages:
        by_symbol.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_symbol.values())  # keyed by symbol
    assert read_topic(settings, settings.kafka.topic, timeout=5) == []  # no bars from Finnhub
    (status,) = read_live_statuses(settings)
    assert status["name"] == "finnhub"
    assert status["stopped"] is True
    assert status["reconnects"] == 1
    assert status["extra"]["trades"] == len(trades)
    assert status["extra"]["duplicates"] == 100
    assert "token=***" in status["extra"]["url"]
    assert TOKEN not in json.dumps(status)


def test_alpaca_bars_and_corrections_reach_the_bars_topic(kafka_settings: Settings) -> None:
    settings = live_settings(kafka_settings)

    def bar(minute: int, close: float, kind: str) -> dict[str, Any]:
        t = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        return {"T": kind, "S": "AAPL", "o": 10.0, "h": 12.0, "l": 9.0, "c": close, "v": 100, "t": t}

    steps = [Send([bar(0, 11.0, "b"), bar(1, 11.5, "b")]), Send([bar(1, 11.7, "u")])]
    with AlpacaServer(scripts=[steps]) as server:
        feed = AlpacaFeed(server.url, server.key, server.secret, ["AAPL"], options=FAST)
        result = run_until(settings, feed, lambda f: f.status.bars >= 3)
    assert result.bars == 3
    bars = [Bar.model_validate_json(v) for _, v, _ in read_topic(settings, settings.kafka.topic)]
    assert [(b.bar_ts.isoformat(), b.close) for b in bars] == [
        ("2024-03-04T09:30:00-05:00", 11.0),
        ("2024-03-04T09:31:00-05:00", 11.5),
        ("2024-03-04T09:31:00-05:00", 11.7),
    ]
    assert bars[2].produced_at >= bars[1].produced_at
