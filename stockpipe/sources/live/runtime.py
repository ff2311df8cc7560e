"""Runs a live source into the idempotent producer: send a batch, flush, then acknowledge it.

One long-lived producer (acks=all, idempotent, the bar contract) serves the whole run. After each
batch the producer is flushed; only when every message of the batch is delivered is
``batch.ack()`` called (the source writes its checkpoint there). A delivery failure stops the run
with ``LiveDeliveryError`` and leaves the checkpoint where it was, so a restart sends the batch
again (same keys and values; silver keeps each bar once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockpipe.errors import StockpipeError
from stockpipe.faults import fault_point
from stockpipe.ingest.client import producer_config
from stockpipe.ingest.topics import ensure_topic
from stockpipe.sources.live.base import LiveBatch, LiveSource
from stockpipe.sources.live.status import StatusWriter

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
FLUSH_TIMEOUT = 120.0
AFTER_FLUSH_FAULT = "LIVE_AFTER_FLUSH"  # test-only crash point: flushed, checkpoint not yet written


class LiveDeliveryError(StockpipeError):
    """Some bars of a batch were not delivered; the batch was not acknowledged."""


@dataclass
class LiveResult:
    batches: int = 0
    sent: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_live(
    settings: Settings,
    source: LiveSource,
    *,
    stop: threading.Event | None = None,
    once: bool = False,
    on_batch: Callable[[LiveBatch], None] | None = None,
) -> LiveResult:
    """Send ``source``'s batches to ``settings.kafka.topic`` until it stops (see the module docstring)."""
    from confluent_kafka import Producer

    stop = stop or threading.Event()
    info = ensure_topic(settings)
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    conf = producer_config(settings, info.bootstrap)
    conf["on_delivery"] = on_delivery
    conf["error_cb"] = lambda err: log.warning("kafka producer: %s", err)
    producer = Producer(conf)
    result = LiveResult()
    started = time.perf_counter()
    status = StatusWriter(settings, source.name, "poller")
    status.status.connected = True
    status.write(force=True)
    try:
        for batch in source.batches(stop, once=once):
            for bar in batch.bars:
                _produce(producer, info.topic, bar.key(), bar.to_json_bytes())
            remaining = producer.flush(FLUSH_TIMEOUT)
            if errors or remaining:
                reason = (
                    errors[0] if errors else f"{remaining} messages not delivered in {FLUSH_TIMEOUT:.0f} s"
                )
                raise LiveDeliveryError(
                    f"{len(errors) + remaining} of {len(batch.bars)} bars from {source.name} were not "
                    f"delivered ({reason}); the checkpoint was not advanced."
                )
            fault_point(AFTER_FLUSH_FAULT)
            batch.ack()
            result.batches += 1
            result.sent += len(batch.bars)
            if batch.note:
                result.notes.append(batch.note)
                log.info("%s: %s", source.name, batch.note)
            status.message(1)
            status.status.bars_emitted += len(batch.bars)
            status.write(force=True)
            if on_batch is not None:
                on_batch(batch)
    finally:
        producer.flush(FLUSH_TIMEOUT)
        result.seconds = time.perf_counter() - started
        status.close()
    return result


def _produce(producer: Any, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)
