"""Puts a websocket feed on Kafka: trades -> ``stock-trades``, provider bars -> ``stock-prices``.

The live source does as little as possible (design note "live data"): the feed parses and stamps
``received_at``; this loop produces each trade keyed by its symbol to the trades topic
(``settings.kafka.trades_topic``, created with its own retention by ``ensure_trades_topic``) and
each ready-made provider bar (Alpaca ``b``/``u``) to the bars topic (``settings.kafka.topic``),
through one idempotent ``acks=all`` producer (``stockpipe.ingest.client.producer_config``). It
flushes at least every ``settings.live.publish_flush_seconds`` while messages flow and at the end;
a delivery failure stops the feed with ``FeedDeliveryError``. The feed's counters go to the live
status file ``status-<provider>.json`` (``stockpipe status``, the dashboard) after each flush.

What a crash loses: the trades the socket delivered that the producer had not yet acknowledged
(at most ``publish_flush_seconds`` of them). A websocket cannot be replayed; the trades topic can,
so everything after it (the aggregator consumer, ``stock-prices``) is exactly once.
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
from stockpipe.sources.live.feed import WebsocketFeed
from stockpipe.sources.live.status import StatusWriter
from stockpipe.sources.live.trades import Trade

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
FLUSH_TIMEOUT = 120.0


class FeedDeliveryError(StockpipeError):
    """Trades or bars of a live feed were not delivered to Kafka."""


@dataclass
class PublishResult:
    trades: int = 0
    bars: int = 0
    flushes: int = 0
    seconds: float = 0.0
    trades_topic: str = ""
    bars_topic: str = ""


def publish_feed(
    settings: Settings,
    feed: WebsocketFeed,
    *,
    stop: threading.Event | None = None,
    on_flush: Callable[[PublishResult], None] | None = None,
) -> PublishResult:
    """Run ``feed`` into Kafka until it ends, ``stop`` is set, or it fails (see the module doc)."""
    from confluent_kafka import Producer

    from stockpipe.ingest.client import producer_config
    from stockpipe.ingest.topics import ensure_topic, ensure_trades_topic

    info = ensure_topic(settings)
    trades_topic = ensure_trades_topic(settings).topic
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    conf = producer_config(settings, info.bootstrap)
    conf["on_delivery"] = on_delivery
    conf["error_cb"] = lambda err: log.warning("kafka producer: %s", err)
    producer = Producer(conf)
    result = PublishResult(trades_topic=trades_topic, bars_topic=info.topic)
    every = settings.live.publish_flush_seconds
    if stop is not None:
        threading.Thread(target=_stop_when_set, args=(stop, feed), daemon=True, name="feed-stop").start()
    status = StatusWriter(settings, feed.provider, "feed")
    started = last_flush = time.monotonic()
    pending = 0
    try:
        for event in feed.events():
            if isinstance(event, Trade):
                _produce(producer, trades_topic, event.key(), event.to_json_bytes())
                result.trades += 1
            elif isinstance(event, Bar):
                _produce(producer, info.topic, event.key(), event.to_json_bytes())
                result.bars += 1
            pending += 1
            producer.poll(0)
            now = time.monotonic()
            if now - last_flush >= every:
                _flush(producer, errors, pending, feed.display_name)
                pending, last_flush = 0, now
                result.flushes += 1
                _sync_status(status, feed, result)
                status.write()
                if on_flush is not None:
                    on_flush(result)
            if stop is not None and stop.is_set():
                break
        _flush(producer, errors, pending, feed.display_name)
        result.flushes += 1
    finally:
        feed.stop()
        producer.flush(FLUSH_TIMEOUT)
        result.seconds = time.monotonic() - started
        _sync_status(status, feed, result)
        status.close()
    return result


def _sync_status(writer: StatusWriter, feed: WebsocketFeed, result: PublishResult) -> None:
    fs = feed.status
    s = writer.status
    s.connected = fs.connected
    s.last_message_at = fs.last_message_at.isoformat() if fs.last_message_at else None
    s.messages = fs.messages
    s.reconnects = fs.reconnects
    s.bars_emitted = result.bars
    s.extra = {
        "url": fs.url,
        "trades": result.trades,
        "duplicates": fs.duplicates,
        "malformed": fs.malformed,
        "connection_attempts": fs.connection_attempts,
        "last_error": fs.last_error,
    }


def _stop_when_set(stop: threading.Event, feed: WebsocketFeed) -> None:
    stop.wait()
    feed.stop()


def _flush(producer: Any, errors: list[str], pending: int, name: str) -> None:
    remaining = producer.flush(FLUSH_TIMEOUT)
    if errors or remaining:
        reason = errors[0] if errors else f"{remaining} messages not delivered in {FLUSH_TIMEOUT:.0f} s"
        raise FeedDeliveryError(
            f"{len(errors) + remaining} of {pending} {name} messages were not delivered ({reason})."
        )


def _produce(producer: Any, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)
