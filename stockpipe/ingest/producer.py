"""Idempotent, batched producer of bars (key = symbol, value = the contract JSON)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stockpipe.contract.bar import Bar
    from stockpipe.settings import Settings

from stockpipe.faults import fault_point
from stockpipe.ingest.client import producer_config
from stockpipe.ingest.topics import ensure_topic

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
PROGRESS_EVERY = 5_000
# ...or after this many seconds: a paced source (the stream, a live API) yields a few hundred
# bars a second, and its "produced" count must stay current for the stream's lag figure.
PROGRESS_SECONDS = 0.25
FLUSH_TIMEOUT = 120.0
MID_PRODUCE_FAULT = "MID_PRODUCE"


@dataclass
class ProduceResult:
    """Outcome of one produce run. ``failed`` counts messages whose delivery failed."""

    sent: int
    failed: int
    seconds: float
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


@dataclass
class OpenProducer:
    """A connected producer with its topic and the delivery errors its callbacks collect."""

    producer: Any
    topic: str
    errors: list[str]


def open_producer(settings: Settings) -> OpenProducer:
    """Create the topic if missing and a producer for it.

    The client connects and (idempotence) asks the broker for its producer id in its own
    threads, which takes 0.5-1 s of librdkafka's timers: a caller with other start-up work
    (building the source) opens the producer first and hands it to ``produce_bars``.
    """
    from confluent_kafka import Producer

    info = ensure_topic(settings)
    errors: list[str] = []

    def on_error(err: Any) -> None:  # client-level errors (e.g. all brokers down): logged only
        log.warning("kafka producer: %s", err)

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    conf = producer_config(settings, info.bootstrap)
    conf["error_cb"] = on_error
    conf["on_delivery"] = on_delivery
    return OpenProducer(Producer(conf), info.topic, errors)


def produce_bars(
    settings: Settings,
    bars: Iterable[Bar],
    *,
    on_progress: ProgressCallback | None = None,
    opened: OpenProducer | None = None,
) -> ProduceResult:
    """Send ``bars`` to ``settings.kafka.topic`` (created if missing) and wait for delivery.

    ``on_progress(n)`` is called with the number of messages handed to the client since
    the previous call (so it can feed ``Progress.advance``). ``opened``: a producer from
    ``open_producer`` (else one is opened here).
    """
    return _produce(opened or open_producer(settings), bars, on_progress, encode=True)


def produce_raw(
    settings: Settings,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    on_progress: ProgressCallback | None = None,
) -> ProduceResult:
    """Send pre-serialised ``(key, value)`` pairs verbatim (``None`` value = tombstone).

    Used by tests that inject bad input (non-JSON, tombstones) and by callers that
    serialise themselves.
    """
    return _produce(open_producer(settings), records, on_progress, encode=False)


def _produce(
    opened: OpenProducer, items: Iterable[Any], on_progress: ProgressCallback | None, *, encode: bool
) -> ProduceResult:
    """Send every item, wait for delivery, count failures."""
    producer, errors = opened.producer, opened.errors
    started = time.perf_counter()
    if os.environ.get(f"STOCKPIPE_FAULT_{MID_PRODUCE_FAULT}"):  # test-only; never set in production
        items = _crash_mid_produce(producer, items)
    refused: list[str] = []  # refused by the client before sending (e.g. over message.max.bytes)
    handed = _produce_loop(producer, opened.topic, items, on_progress, encode, refused)
    remaining = producer.flush(FLUSH_TIMEOUT)
    seconds = time.perf_counter() - started
    failed = len(refused) + len(errors) + remaining
    first_error = (refused + errors)[0] if refused or errors else None
    if remaining and first_error is None:
        first_error = f"{remaining} messages not delivered within {FLUSH_TIMEOUT:.0f} s"
    return ProduceResult(sent=handed - failed, failed=failed, seconds=seconds, first_error=first_error)


def _crash_mid_produce(producer: Any, items: Iterable[Any]) -> Iterator[Any]:
    """Test-only: after each item is handed over, wait for its delivery, then hit the fault point.

    ``STOCKPIPE_FAULT_MID_PRODUCE=<n>`` so kills the producer with exactly ``n`` messages in the
    topic and the rest never sent (a producer crash part-way through a batch).
    """
    for item in items:
        yield item
        producer.flush(FLUSH_TIMEOUT)
        fault_point(MID_PRODUCE_FAULT)


def _produce_loop(
    producer: Any,
    topic: str,
    items: Iterable[Any],
    on_progress: ProgressCallback | None,
    encode: bool,
    refused: list[str],
) -> int:
    """Hand every item (a Bar if ``encode``, else a (key, value) pair) to the client.

    On a full local queue it serves callbacks and retries. A message the client refuses outright
    (e.g. larger than ``message.max.bytes``) is recorded in ``refused`` and the others still go
    out. This is the producer's hot path: no per-message allocation beyond the value itself.
    """
    from confluent_kafka import KafkaException

    produce = producer.produce
    poll = producer.poll
    clock = time.monotonic
    count = 0
    reported = 0
    reported_at = clock()
    for item in items:
        if encode:
            key, value = item.key(), item.to_json_bytes()
        else:
            key, value = item
        try:
            produce(topic, value, key)
        except BufferError:
            while True:
                poll(0.05)
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    continue
        except KafkaException as exc:
            err = exc.args[0] if exc.args else exc
            reason = err.str() if hasattr(err, "str") else str(err)
            refused.append(f"a message of {len(value or b''):,} bytes was refused: {reason}")
        count += 1
        if count % PROGRESS_EVERY == 0 or clock() - reported_at >= PROGRESS_SECONDS:
            poll(0)
            reported_at = clock()
            if on_progress is not None:
                on_progress(count - reported)
                reported = count
    if on_progress is not None and count > reported:
        on_progress(count - reported)
    return count
