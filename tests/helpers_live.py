"""Helpers for live-source tests: a fake wall clock, a loopback Alpha Vantage market, topic reads."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


class WallClock:
    """A fake UTC wall clock: ``sleep`` advances it instantly and is recorded."""

    def __init__(self, start: datetime, stop_at: datetime | None = None) -> None:
        self.now = start
        self.sleeps: list[tuple[datetime, float]] = []
        self.stop_at = stop_at
        self.stop = threading.Event()

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append((self.now, seconds))
        self.now += timedelta(seconds=seconds)
        if self.stop_at is not None and self.now >= self.stop_at:
            self.stop.set()


def _bar_values(symbol: str, minute: datetime) -> tuple[float, float, float, float, int]:
    k = int(minute.timestamp() // 60) + sum(map(ord, symbol))
    base = 100.0 + (k % 37) * 0.25
    return base, base + 0.5, base - 0.5, base + 0.125, 1000 + k % 101


@dataclass
class Market:
    """Deterministic 1-minute bars on weekdays (09:30-16:00 New York, 04:00-20:00 with extended
    hours); the bar containing ``clock.now`` is still forming: its close and volume change with the
    second. ``full`` serves the last three weekdays, ``compact`` the last 100 bars."""

    clock: WallClock
    requests: list[tuple[datetime, dict[str, str]]] = field(default_factory=list)

    def minutes(self, extended: bool) -> list[datetime]:
        now = self.clock.now
        day = now.astimezone(NY).date()
        days: list[Any] = []
        while len(days) < 3:
            if day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        out = []
        for d in reversed(days):
            start = datetime(d.year, d.month, d.day, 4 if extended else 9, 0 if extended else 30, tzinfo=NY)
            end = datetime(d.year, d.month, d.day, 20 if extended else 16, tzinfo=NY)
            t = start
            while t < end and t <= now:
                out.append(t)
                t += timedelta(minutes=1)
        return out

    def reply(self, query: dict[str, str]) -> dict[str, Any]:
        symbol = query["symbol"]
        minutes = self.minutes(query.get("extended_hours", "true") == "true")
        if query.get("outputsize") == "compact":
            minutes = minutes[-100:]
        series = {}
        now = self.clock.now
        for m in reversed(minutes):
            o, h, lo, c, v = _bar_values(symbol, m)
            if m <= now < m + timedelta(minutes=1):  # forming
                c, v = o + now.second * 0.001, 10 * (now.second + 1)
            series[m.strftime("%Y-%m-%d %H:%M:%S")] = {
                "1. open": f"{o:.4f}", "2. high": f"{h:.4f}", "3. low": f"{lo:.4f}",
                "4. close": f"{c:.4f}", "5. volume": str(v),
            }  # fmt: skip
        return {
            "Meta Data": {
                "1. Information": "Intraday (1min) open, high, low, close prices and volume",
                "2. Symbol": symbol,
                "4. Interval": "1min",
                "5. Output Size": "Compact" if query.get("outputsize") == "compact" else "Full size",
                "6. Time Zone": "US/Eastern",
            },
            "Time Series (1min)": series,
        }

    def final_bar(self, symbol: str, minute: datetime) -> tuple[float, float, float, float, int]:
        return _bar_values(symbol, minute)


@contextmanager
def market_server(market: Market) -> Iterator[str]:
    """Serve ``market`` on 127.0.0.1; yields the query URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            market.requests.append((market.clock.now, query))
            data = json.dumps(market.reply(query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/query"
    finally:
        server.shutdown()
        server.server_close()


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of ``topic``, read from the beginning to the end of each partition."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        partitions = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while done != set(partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for m in c.consume(num_messages=10_000, timeout=0.5):
                err = m.error()
                if err is None:
                    out.append((m.key(), m.value()))
                elif err.code() == KafkaError._PARTITION_EOF:
                    done.add(int(m.partition() or 0))
        return out
    finally:
        c.close()


def as_utc(local: str) -> datetime:
    """``'2024-03-11 10:00'`` New York time as a UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=NY).astimezone(UTC)


class RealClock(WallClock):
    """The real UTC clock, for a market server serving a ``stockpipe`` subprocess."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    @property  # type: ignore[override]
    def now(self) -> datetime:
        return datetime.now(UTC)

    @now.setter
    def now(self, value: datetime) -> None:
        pass
