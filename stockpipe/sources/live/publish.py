"""Puts a websocket feed on Kafka: trades -> ``stock-trades``, provider bars -> ``stock-prices``.

The live source does as little as possible (``docs`` design "live data"): the feed parses and
stamps ``received_at``; this loop produces each trade keyed by its symbol to the trades topic
(``settings.live.trades_topic``, created with ``retention.ms`` from
``settings.live.trades_retention_hours`` when missing) and each ready-made provider bar (Alpaca
``b``/``u``) to the bars topic (``settings.kafka.topic``), through one idempotent ``acks=all``
producer (``stockpipe.ingest.client.producer_config``). It flushes at least every
``publish_flush_seconds`` while messages flow and at the end; a delivery failure stops the feed
with ``FeedDeliveryError``.

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


def ensure_trades_topic(settings: Settings, bootstrap: str) -> str:
    """Create the trades topic (partitions as the bars topic, retention from settings) if missing."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    from stockpipe.ingest.topics import DEFAULT_TIMEOUT, connect_admin

    topic = settings.live.trades_topic
    admin, md = connect_admin(settings, bootstrap)
    existing = md.topics.get(topic)
    if existing is not None and existing.error is None:
        return topic
    retention_ms = str(int(settings.live.trades_retention_hours * 3_600_000))
    new = NewTopic(
        topic,
        settings.kafka.partitions,
        settings.kafka.replication_factor,
        config={"retention.ms": retention_ms},
    )
    try:
        admin.create_topics([new], request_timeout=DEFAULT_TIMEOUT)[topic].result(timeout=DEFAULT_TIMEOUT)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    return topic


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
    from stockpipe.ingest.topics import ensure_topic

    info = ensure_topic(settings)
    trades_topic = ensure_trades_topic(settings, info.bootstrap)
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
    return result


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
