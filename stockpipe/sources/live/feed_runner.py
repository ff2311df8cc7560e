"""Runs a provider websocket feed into Kafka: trades to ``stock-trades``, ready-made bars to ``stock-prices``.

The feed does as little as possible (``docs/architecture.md`` section 1a): each ``Trade`` is produced
to the trades topic (key = symbol, so one symbol's trades stay in order), each provider ``Bar``
(Alpaca ``bars`` / ``updatedBars``: a correction is a newer version of the same key) straight to
the bars topic; one idempotent producer (acks=all), flushed about twice a second and at stop.
A websocket cannot be replayed, so what a ``kill -9`` takes with it is at most the trades the
socket delivered but the producer had not yet acknowledged; everything after the flush is in
Kafka, where the aggregator's snapshot and committed offsets take over.

A status thread writes ``status-<provider>.json`` (connected, last message, messages/s,
reconnects) once a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockpipe.contract import Bar
from stockpipe.errors import StockpipeError
from stockpipe.ingest.client import producer_config
from stockpipe.ingest.topics import ensure_topic, ensure_trades_topic
from stockpipe.sources.live.status import StatusWriter
from stockpipe.sources.live.trades import Trade

if TYPE_CHECKING:
    from stockpipe.settings import Settings
    from stockpipe.sources.live.feed import WebsocketFeed

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.5
FLUSH_TIMEOUT = 120.0


class FeedDeliveryError(StockpipeError):
    """Trades or bars from a feed could not be delivered to Kafka."""


@dataclass
class FeedResult:
    trades: int = 0
    bars: int = 0
    seconds: float = 0.0


def _sync_status(writer: StatusWriter, feed: WebsocketFeed) -> None:
    st = feed.status.as_dict()
    s = writer.status
    s.connected = bool(st["connected"])
    s.last_message_at = st["last_message_at"]
    s.messages = int(st["messages"])
    s.reconnects = int(st["reconnects"])
    s.bars_emitted = int(st["bars"])
    extra = {
        k: st[k] for k in ("url", "malformed", "duplicates", "trades", "last_error", "connection_attempts")
    }
    s.extra = extra


def run_feed(
    settings: Settings,
    feed: WebsocketFeed,
    *,
    stop: threading.Event | None = None,
    on_bars: Callable[[int], None] | None = None,
) -> FeedResult:
    """Produce ``feed``'s events until it ends (``stop`` set, or a refused/protocol error)."""
    from confluent_kafka import Producer

    stop = stop or threading.Event()
    trades_topic = ensure_trades_topic(settings)
    bars_topic = ensure_topic(settings)
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    conf = producer_config(settings, bars_topic.bootstrap)
    conf["on_delivery"] = on_delivery
    producer = Producer(conf)
    writer = StatusWriter(settings, feed.provider, "feed")
    done = threading.Event()

    def watch() -> None:  # stop the feed when asked; keep the status file current
        while not done.is_set():
            if stop.wait(1.0):
                feed.stop()
            _sync_status(writer, feed)
            writer.write(force=True)

    watcher = threading.Thread(target=watch, name=f"stockpipe-{feed.provider}-status", daemon=True)
    watcher.start()
    result = FeedResult()
    started = time.perf_counter()
    flushed_at = time.monotonic()
    pending_bars = 0

    def flush() -> None:
        nonlocal pending_bars
        remaining = producer.flush(FLUSH_TIMEOUT)
        if errors or remaining:
            reason = errors[0] if errors else f"{remaining} messages not delivered in {FLUSH_TIMEOUT:.0f} s"
            raise FeedDeliveryError(f"{feed.display_name}: delivery to Kafka failed ({reason}).")
        if pending_bars and on_bars is not None:
            on_bars(pending_bars)
        pending_bars = 0

    try:
        for event in feed.events():
            if isinstance(event, Trade):
                topic, value = trades_topic.topic, event.to_json_bytes()
                result.trades += 1
            elif isinstance(event, Bar):
                topic, value = bars_topic.topic, event.to_json_bytes()
                result.bars += 1
                pending_bars += 1
            else:  # pragma: no cover - the feed yields only the two
                continue
            while True:
                try:
                    producer.produce(topic, value, event.symbol.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if time.monotonic() - flushed_at >= FLUSH_SECONDS:
                flush()
                flushed_at = time.monotonic()
        flush()
    finally:
        done.set()
        watcher.join(5)  # its last write must not race the final one (same temp file name)
        producer.flush(FLUSH_TIMEOUT)
        result.seconds = time.perf_counter() - started
        _sync_status(writer, feed)
        writer.close()
    return result
